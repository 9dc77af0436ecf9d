#!/bin/sh
# Installs the Debian packages Moat needs to build, test and run its demo,
# only those missing, then the web console's npm packages (web/package.json,
# pinned by web/package-lock.json) into web/node_modules when they are not
# there yet. Run as root on Debian 12 (what `make deps` does).
# chromium, chromium-driver and python3-selenium run the console's browser
# tests (tests/browser); nodejs and npm install the console's chart library.
# libpq-dev builds the PostgreSQL store; postgresql runs the throwaway database
# servers its tests start (tests/pg.sh).
set -eu
PKGS="gcc make pkg-config libc6-dev libyaml-dev libjansson-dev libcmocka-dev
      clang-format cppcheck python3 clang llvm libclang-rt-14-dev libbpf-dev bpftool libelf-dev zlib1g-dev
      iproute2 iperf3 iptables ipset libnetfilter-log-dev libnetfilter-conntrack-dev python3-scapy
      libmicrohttpd-dev libsqlite3-dev libpq-dev postgresql libssl-dev curl libcurl4-openssl-dev openssl wrk
      chromium chromium-driver python3-selenium fonts-dejavu-core
      podman runc busybox-static docker.io systemd"
# kubectl validates the Kubernetes manifests (tests/containers/deploy.sh):
# Debian's kubernetes-client, unless a kubectl is installed already (another
# package's /usr/bin/kubectl would conflict with it).
command -v kubectl >/dev/null 2>&1 || PKGS="$PKGS kubernetes-client"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# npm may come with a nodejs package of another origin; Debian's npm would clash with it.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing packages:$missing (run 'make deps' as root)" >&2
        exit 1
    fi
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The console's npm packages: `npm ci` installs exactly what the lock file pins.
web="$(dirname "$0")/../web"
stamp="$web/node_modules/.moat-installed"
if [ ! -f "$stamp" ] || [ "$web/package-lock.json" -nt "$stamp" ] ||
    [ "$web/package.json" -nt "$stamp" ]; then
    echo "deps: npm ci in web/"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$stamp"
fi
