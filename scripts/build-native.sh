#!/bin/sh
# Builds the native addon (native/mesh_net.c) with the node-gyp that npm bundles.
# Where Node's headers are installed with the system (Debian's nodejs puts them in
# /usr/include/node) we point node-gyp at them so the build never needs the network.
set -e
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then
  export npm_config_nodedir=/usr
fi
exec node-gyp rebuild
