#!/usr/bin/env bash
# What `npm run bench` needs on a fresh Debian machine with Node 20: everything the tests need
# (scripts/setup.sh: iptables, iproute2, util-linux, the native addon, the TypeScript build), plus
# the load generators and the servers the bench compares against. Cheap when all is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'bench setup: %s\n' "$*" >&2; }

bash scripts/setup.sh

# Debian package → a file it installs, to tell whether it is there.
declare -A wanted=(
  [wrk]=/usr/bin/wrk
  [nghttp2-client]=/usr/bin/h2load
  [haproxy]=/usr/sbin/haproxy
)
missing=()
for pkg in "${!wanted[@]}"; do
  [ -x "${wanted[$pkg]}" ] || missing+=("$pkg")
done
if [ ! -x /usr/sbin/nginx ]; then
  # nginx-light is the smallest build with the HTTP/2 module; newer Debian folds it into nginx.
  if apt-cache show nginx-light >/dev/null 2>&1; then missing+=(nginx-light); else missing+=(nginx); fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing system packages: ${missing[*]}; run as root or install them with apt-get"
    exit 1
  fi
  say "installing system packages: ${missing[*]}"
  # The packages would start nginx and haproxy as services on the host's port 80; the bench runs
  # its own instances inside lab namespaces, so service starts are refused for this install
  # (policy-rc.d is honoured by invoke-rc.d and deb-systemd-invoke). An existing policy is kept.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# h2load speaks prior-knowledge h2c to nginx; a build without the module would fail only later.
if ! /usr/sbin/nginx -V 2>&1 | grep -q -- '--with-http_v2_module'; then
  say "this nginx has no HTTP/2 module (--with-http_v2_module); install nginx-light or nginx from Debian"
  exit 1
fi
