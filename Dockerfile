# syntax=docker/dockerfile:1
# Sinker's image. The sources are TypeScript run by Node 24's type stripping (no build output): the image runs
# exactly the files that the tests run, through the same entry point (bin/sinker.js → src/cli/main.ts).
# Type stripping only works for files outside node_modules: the code lives in /app/src.

ARG NODE_VERSION=24.21.0
# Both stages run on the same Debian (glibc) Node image: the production dependencies are installed where they
# run, and the test tier can reproduce the base from Debian packages and Node's own binary (docs/install.md).
# Override it to build on another Node 24 image of the same layout (node in PATH, a `node` user with uid 1000).
ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim

# --- build: all dependencies, type-check the sources (a type error fails the image build) -------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install scripts needed (the `node` devDependency's binary download is for developers).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
RUN node node_modules/typescript/bin/tsc --noEmit -p tsconfig.json

# --- runtime: small, non-root, production dependencies only -----------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# Two malloc arenas instead of glibc's eight per core: V8's helper threads (GC, the optimizing compiler) each take
# an arena in a burst of work, such as the pass over every ResourceSync after a restart, and keep its memory.
# Peak RSS at 1,000 ResourceSyncs 4-10 MiB lower (npm run bench, where both systems get it), CPU within noise.
ENV NODE_ENV=production MALLOC_ARENA_MAX=2
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/bin ./bin
COPY --from=build /app/src ./src
# The base image's unprivileged user (uid/gid 1000); the Deployment also enforces runAsNonRoot.
USER node
EXPOSE 8080
# A small young generation (2 MiB semi-spaces instead of V8's 16): peak RSS at 1,000 ResourceSyncs 158 MiB instead
# of 224, for about 4 % more CPU. An old generation that grows by 30 % of what survived the last full GC before the
# next one (V8 lets it double or more): peak RSS at 10,000 ResourceSyncs about 260 MiB instead of about 450.
# (npm run bench; the benchmark starts Sinker with the same flags.)
ENTRYPOINT ["node", "--max-semi-space-size=2", "--heap-growing-percent=30", "bin/sinker.js"]
