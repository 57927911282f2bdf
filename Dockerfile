# Build: compile src/ to dist/ with the dev dependencies (TypeScript).
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY simulator ./simulator
RUN npm run build

# Run: compiled JavaScript and the production dependencies only.
FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
# The operators' CLI: `docker compose exec worker node bin/cronofy-downgrade.mjs status --domain …`.
COPY bin ./bin
USER node
EXPOSE 8080 7070
CMD ["node", "dist/src/main.js"]
