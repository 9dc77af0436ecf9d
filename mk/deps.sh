#!/bin/sh
# Installs the Debian packages Moat needs to build, test and run its demo,
# only those missing. Run as root on Debian 12 (what `make deps` does).
set -eu
PKGS="gcc make pkg-config libc6-dev libyaml-dev libjansson-dev libcmocka-dev
      clang-format cppcheck python3 clang llvm libclang-rt-14-dev libbpf-dev bpftool libelf-dev zlib1g-dev
      iproute2 iperf3 iptables
      libmicrohttpd-dev libsqlite3-dev libssl-dev curl libcurl4-openssl-dev openssl wrk
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
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages:$missing (run 'make deps' as root)" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
