# syntax=docker/dockerfile:1
# Every image of the stack, one target each; docker-compose.yml builds them. From the repository
# root, for example:
#   docker build --target broker -t srcnet/broker .
# The services are TypeScript that tsx runs with the `source` condition, as `npm start` does:
# no compile step, so the image runs exactly the sources that were tested (README, Deploy).

# The manifests alone, so that the install below is redone when a manifest or the lockfile
# changes, not when a source file does.
FROM node:20-bookworm AS manifests
WORKDIR /app
COPY . .
RUN find . -type f ! -name package.json ! -name package-lock.json -delete && find . -type d -empty -delete

# Production dependencies, with better-sqlite3's native module (the full image has python3, make
# and g++ for when no prebuilt binary fits). Every workspace's: the manifests do not declare the
# workspaces they import (@srcnet/service-kit, the schema), so one workspace's install would miss them.
FROM node:20-bookworm AS deps
WORKDIR /app
COPY --from=manifests /app ./
RUN npm ci --omit=dev --no-audit --no-fund

# Packages the services need at run time that the lockfile has as devDependencies (tsx above
# all), installed on their own at the lockfile's versions. e2e/deploy/compose.test.ts checks that
# every package an entry reaches is a production dependency or listed here. Their peers (graphql)
# come from the production install, not from here. vite is the portal's: its server rebuilds the
# page when the sources are newer than the build (never in its image, whose build comes last, but
# the import is there); one list for all images keeps one install.
FROM node:20-bookworm AS runtime-extras
ARG RUNTIME_EXTRAS="tsx esbuild vite"
WORKDIR /extras
COPY package-lock.json /tmp/lock.json
RUN node -e 'const lock = require("/tmp/lock.json").packages; const dependencies = Object.fromEntries(process.argv.slice(1).map((name) => [name, lock["node_modules/" + name].version])); require("node:fs").writeFileSync("package.json", JSON.stringify({ private: true, dependencies }));' $RUNTIME_EXTRAS \
  && npm install --no-audit --no-fund --legacy-peer-deps

# The portal's page: every dependency, then `vite build` into portal/dist.
FROM node:20-bookworm AS page
WORKDIR /app
COPY --from=manifests /app ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build -w portal

# What every image holds besides its own workspace: the production dependencies, the runtime
# extras, the schema and the shared service kit. The workers keep their SQLite files in /app/data.
FROM node:20-bookworm-slim AS service
WORKDIR /app
COPY --from=deps /app ./
COPY --from=runtime-extras /extras/node_modules ./node_modules/
COPY tsconfig.json ./
COPY schema/ schema/
COPY subgraphs/shared/ subgraphs/shared/
RUN mkdir data && chown node:node data
USER node
ENV HOST=0.0.0.0

FROM service AS gateway
COPY gateway/ gateway/
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.GATEWAY_PORT || 4000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--conditions=source", "--import", "tsx", "gateway/src/main.ts"]

FROM service AS broker
COPY subgraphs/broker/ subgraphs/broker/
EXPOSE 4001
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.BROKER_PORT || 4001) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--conditions=source", "--import", "tsx", "subgraphs/broker/src/main.ts"]

FROM service AS skaha
COPY subgraphs/skaha/ subgraphs/skaha/
EXPOSE 4002
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4002) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--conditions=source", "--import", "tsx", "subgraphs/skaha/src/main.ts"]

FROM service AS preparedata
COPY subgraphs/preparedata/ subgraphs/preparedata/
EXPOSE 4003
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4003) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--conditions=source", "--import", "tsx", "subgraphs/preparedata/src/main.ts"]

FROM service AS harbor
COPY subgraphs/harbor/ subgraphs/harbor/
EXPOSE 4004
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4004) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--conditions=source", "--import", "tsx", "subgraphs/harbor/src/main.ts"]

FROM service AS portal
COPY portal/ portal/
# Built after the sources were copied, so the server finds it current and does not rebuild.
COPY --from=page /app/portal/dist portal/dist/
EXPOSE 4005
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORTAL_PORT || 4005) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--conditions=source", "--import", "tsx", "portal/server/main.ts"]

# The backend emulators: stand-ins for a site's Skaha, prepareData and Harbor APIs.
FROM service AS skaha-emulator
COPY subgraphs/skaha/ subgraphs/skaha/
ENV SKAHA_EMULATOR_HOST=0.0.0.0
ENV SKAHA_EMULATOR_PORT=4102
EXPOSE 4102
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SKAHA_EMULATOR_PORT || 4102) + '/_emulator/stats').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--conditions=source", "--import", "tsx", "subgraphs/skaha/emulator/main.ts"]

FROM service AS preparedata-emulator
COPY subgraphs/preparedata/ subgraphs/preparedata/
ENV PREPAREDATA_EMULATOR_HOST=0.0.0.0
ENV PREPAREDATA_EMULATOR_PORT=4103
EXPOSE 4103
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PREPAREDATA_EMULATOR_PORT || 4103) + '/_emulator/stats').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--conditions=source", "--import", "tsx", "subgraphs/preparedata/emulator/main.ts"]

FROM service AS harbor-emulator
COPY subgraphs/harbor/ subgraphs/harbor/
ENV HARBOR_EMULATOR_HOST=0.0.0.0
ENV HARBOR_EMULATOR_PORT=4104
EXPOSE 4104
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HARBOR_EMULATOR_PORT || 4104) + '/_emulator/stats').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--conditions=source", "--import", "tsx", "subgraphs/harbor/emulator/main.ts"]
