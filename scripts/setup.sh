#!/usr/bin/env bash
# Everything `npm test` and `npm run demo` need, on a fresh Debian machine with
# Node 20: system packages, npm dependencies (which build the native addon), and
# the TypeScript build. Cheap when all is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

# Debian package → a file it installs, to tell whether it is there (a glob where
# the path carries a version). The database servers are for test/opaque-db.test.ts,
# which runs its own instances inside pods: any the packages start on the host are
# neither used nor in the way. Chromium is the real browser test/dashboard.test.ts
# drives (through playwright-core, which brings no browser of its own).
declare -A wanted=(
  [iptables]=/usr/sbin/iptables-nft-restore
  [iproute2]=/usr/sbin/ip
  [curl]=/usr/bin/curl
  [util-linux]=/usr/bin/setpriv
  [python3]=/usr/bin/python3
  [make]=/usr/bin/make
  [g++]=/usr/bin/g++
  [postgresql]='/usr/lib/postgresql/*/bin/postgres'
  [redis-server]=/usr/bin/redis-server
  [mariadb-server]=/usr/sbin/mariadbd
  [mariadb-client]=/usr/bin/mariadb
  [prometheus]=/usr/bin/prometheus
  [openssl]=/usr/bin/openssl
  [tcpdump]=/usr/bin/tcpdump
  [chromium]=/usr/bin/chromium
)
missing=()
for pkg in "${!wanted[@]}"; do
  compgen -G "${wanted[$pkg]}" >/dev/null || command -v "$(basename "${wanted[$pkg]}")" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing system packages: ${missing[*]}; run as root or install them with apt-get"
    exit 1
  fi
  say "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (builds the native addon)"
  npm ci --no-audit --no-fund --loglevel=error
elif [ ! -f build/Release/mesh_net.node ] || [ native/mesh_net.c -nt build/Release/mesh_net.node ]; then
  say "building the native addon"
  npm run --silent install >/dev/null
fi

say "compiling TypeScript"
rm -rf dist
npx --no-install tsc -p tsconfig.json
# The bins carry the proxy's Node flags in their shebang: only if they can be run directly.
chmod +x dist/cli/*.js
