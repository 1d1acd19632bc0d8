# One image for both containers of a meshed pod:
#   init container:  mesh-init   (needs NET_ADMIN + NET_RAW, runs once)
#   sidecar:         mesh-proxy  (uid 2102, the uid mesh-init exempts)
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /mesh
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/build/Release/mesh_net.node ./build/Release/
COPY --from=build /src/dist ./dist
# mesh-proxy gets the Node flags of proxy/runtime.ts (smaller young generation, single-threaded GC).
RUN for b in mesh mesh-init; do printf '#!/bin/sh\nexec node /mesh/dist/cli/%s.js "$@"\n' "$b" > /usr/local/bin/$b && chmod +x /usr/local/bin/$b; done \
 && printf '#!/bin/sh\nexec node --max-semi-space-size=2 --single-threaded-gc /mesh/dist/cli/mesh-proxy.js "$@"\n' > /usr/local/bin/mesh-proxy && chmod +x /usr/local/bin/mesh-proxy \
 && groupadd -g 2102 mesh && useradd -u 2102 -g 2102 -M -s /usr/sbin/nologin mesh
USER 2102:2102
EXPOSE 4143 4140 4191
ENTRYPOINT ["mesh-proxy"]
