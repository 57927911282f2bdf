# Build: compile src/ to dist/ with the dev dependencies (TypeScript), then bundle the workflow code (webpack) into
# dist/workflow-bundle.js and dist/workflow-bundle.traced.js: a worker started from dist/ loads the one for its
# tracing choice and never runs webpack itself (src/worker.ts, defaultWorkflowBundle).
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY simulator ./simulator
COPY scripts/bundle-workflows.ts ./scripts/
RUN npm run build && test -s dist/workflow-bundle.js && test -s dist/workflow-bundle.traced.js

# Run: compiled JavaScript, the workflow bundles and the production dependencies only.
FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
# The operators' CLI: `docker compose exec downgrade-worker node bin/cronofy-downgrade.mjs status --domain …`.
COPY bin ./bin
USER node
# Callback server, HTTP API, codec server, Prometheus metrics; 7070 is the simulator's (dist/simulator/main.js).
EXPOSE 8080 8090 8234 9464 7070
# Up is what the process's roles answer on 127.0.0.1: the callback server's /healthz (callbacks), else the API's
# /healthz (api), else the metrics endpoint (a worker or codec server alone; METRICS_BIND_ADDRESS); for the simulator
# (SIMULATOR_PORT set), its /_sim/state. Node's fetch: the slim image has no curl or wget.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const e=process.env,r=(e.SERVICE_ROLES||'worker,callbacks,codec,api').split(',').map(s=>s.trim()),h='http://127.0.0.1:';fetch(e.SIMULATOR_PORT?h+e.SIMULATOR_PORT+'/_sim/state':r.includes('callbacks')?h+(e.CALLBACK_PORT||8080)+'/healthz':r.includes('api')?h+(e.API_PORT||8090)+'/healthz':h+(e.METRICS_BIND_ADDRESS||'127.0.0.1:9464').split(':').pop()+'/metrics',{signal:AbortSignal.timeout(4000)}).then(a=>process.exit(a.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/src/main.js"]
