# The mesh image: one image for every container mesh puts on a cluster.
#   init container   mesh-init          NET_ADMIN + NET_RAW, runs once (iptables-nft and -legacy, iproute2)
#   sidecar          mesh-proxy         uid 2102, the uid mesh-init exempts
#                    mesh-proxy-tproxy  the same, with CAP_NET_ADMIN as a file capability (TPROXY's IP_TRANSPARENT)
#                    mesh-await         the sidecar's postStart hook: waits for the proxy's /ready
#   control plane    mesh-controller    identity, injector
#   operator         mesh               install, inject, check
#
# Build (no container engine runs where this repository is developed: this file
# is checked by cli/dockerfile.test.ts against the tree, not built there):
#   docker build -t mesh:$(node -p "require('./package.json').version") .
# `mesh install` and `mesh inject --manual` default to the image mesh:<package version>;
# push it where your cluster pulls from and pass --image REGISTRY/mesh:TAG.
# Build arguments:
#   NODE_VERSION  the Node.js major of both stages (default 20, the version the project supports)
#   DEBIAN        the Debian release of both stages (default bookworm)
ARG NODE_VERSION=20
ARG DEBIAN=bookworm

FROM node:${NODE_VERSION}-${DEBIAN} AS build
WORKDIR /src
# Dependencies first, so a source change does not reinstall them. The native
# addon (SO_ORIGINAL_DST, IP_TRANSPARENT) is compiled by npm ci's install script.
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
COPY scripts/build-native.sh ./scripts/build-native.sh
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY contract ./contract
COPY shared ./shared
COPY ca ./ca
COPY init ./init
COPY proxy ./proxy
COPY controller ./controller
COPY dashboard ./dashboard
COPY injector ./injector
COPY cli ./cli
COPY lab ./lab
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:${NODE_VERSION}-${DEBIAN}-slim
ARG NODE_VERSION
LABEL org.opencontainers.image.title="mesh" \
      org.opencontainers.image.description="mesh-proxy, mesh-init, mesh-controller and the mesh CLI" \
      org.opencontainers.image.licenses="Apache-2.0"
# iptables brings both backends (iptables-nft, iptables-legacy); mesh-init picks the one the node uses.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /mesh
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/build/Release/mesh_net.node ./build/Release/
COPY --from=build /src/dist ./dist
# The dashboard's page is served from the source tree (plain files, no build step): dist/dashboard finds it at ../../dashboard/web.
COPY --from=build /src/dashboard/web ./dashboard/web
# mesh-proxy gets the Node flags of proxy/runtime.ts (smaller young generation, single-threaded GC).
# mesh-proxy-tproxy runs a copy of node that holds CAP_NET_ADMIN as a file capability:
# a non-root process gets it only that way, and only a container that adds NET_ADMIN
# and allows privilege escalation may exec it (the injector sets both in tproxy mode).
RUN for b in mesh mesh-init mesh-controller mesh-await; do printf '#!/bin/sh\nexec node /mesh/dist/cli/%s.js "$@"\n' "$b" > /usr/local/bin/$b && chmod +x /usr/local/bin/$b; done \
 && printf '#!/bin/sh\nexec node --max-semi-space-size=4 --single-threaded-gc /mesh/dist/cli/mesh-proxy.js "$@"\n' > /usr/local/bin/mesh-proxy \
 && cp "$(command -v node)" /usr/local/bin/node-net-admin && setcap cap_net_admin+ep /usr/local/bin/node-net-admin \
 && printf '#!/bin/sh\nexec /usr/local/bin/node-net-admin --max-semi-space-size=4 --single-threaded-gc /mesh/dist/cli/mesh-proxy.js "$@"\n' > /usr/local/bin/mesh-proxy-tproxy \
 && chmod +x /usr/local/bin/mesh-proxy /usr/local/bin/mesh-proxy-tproxy \
 && groupadd -g 2102 mesh && useradd -u 2102 -g 2102 -M -s /usr/sbin/nologin mesh
USER 2102:2102
EXPOSE 4143 4140 4191
ENTRYPOINT ["mesh-proxy"]
