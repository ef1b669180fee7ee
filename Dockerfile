# syntax=docker/dockerfile:1
#
# Portcullis: one image for every process. The CLI picks the role:
#   serve (default: console + worker together), console, worker, migrate.
# docker-compose.yml runs PostgreSQL, `migrate` once, one console and one or more workers.
#
# The TypeScript sources run through tsx at runtime (bin/portcullis.mjs), so tsx is a production
# dependency and the sources ship in the image; only the console's Next.js build is precompiled.

# ---- base: Node plus the tools that better-sqlite3's node-gyp build needs -----------------------
FROM node:24-bookworm-slim AS base
WORKDIR /app
ENV NEXT_TELEMETRY_DISABLED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

# ---- deps: production dependencies only (what the runtime image gets) ---------------------------
# `npm prune --omit=dev` after the build would do too, but a clean `npm ci --omit=dev` in its own
# stage keeps build-only leftovers (and the dev toolchain's native builds) out of the image.
FROM base AS deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# ---- build: full install and the console's production build -------------------------------------
FROM base AS build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN NEXT_TELEMETRY_DISABLED=1 npm run build \
 && rm -rf .next/cache

# ---- runtime ------------------------------------------------------------------------------------
FROM node:24-bookworm-slim AS runtime
WORKDIR /app

# PORTCULLIS_HOST=0.0.0.0 so the console is reachable from outside the container. On a
# non-loopback address the default TLS mode (auto) refuses to start in this version: run the
# console with PORTCULLIS_TLS_MODE=behind_proxy behind a TLS-terminating proxy (docker-compose.yml
# does), or PORTCULLIS_TLS_MODE=off with PORTCULLIS_ALLOW_INSECURE_HTTP=true if you accept the risk.
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    PORTCULLIS_DATA_DIR=/data \
    PORTCULLIS_HOST=0.0.0.0
# What `portcullis serve` gives the worker it spawns (worker/environment.ts), here for every role, so that a
# `portcullis worker` container (docker-compose.yml) gets it too: glibc's per-thread cache of freed memory.
ENV GLIBC_TUNABLES=glibc.malloc.tcache_count=256

# Sources (root-owned, read-only for the app user), production node_modules, then the build.
COPY . .
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/.next ./.next
# `portcullis console` rebuilds when a source file looks newer than .next/BUILD_ID; the image has
# no dev dependencies to build with, so make the copied build the newest file. Next.js may write
# its runtime cache under .next, hence the node ownership above.
RUN touch .next/BUILD_ID \
 && mkdir -p /data \
 && chown node:node /data

USER node
VOLUME /data
EXPOSE 8443

# No curl in the slim image: Node's own fetch checks the console's public health endpoint.
# (The worker has its own endpoint; docker-compose.yml overrides this check for the worker.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORTCULLIS_PORT || 8443) + '/api/v1/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "bin/portcullis.mjs"]
CMD ["serve"]
