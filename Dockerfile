FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# The operators' CLI: `docker compose exec worker node bin/cronofy-downgrade.mjs status --domain …`.
COPY bin ./bin
USER node
EXPOSE 8080 7070
CMD ["node", "--import", "tsx", "src/main.ts"]
