#!/bin/sh
# Podman with moatd on the iptables datapath: see engine.sh. The same checks as
# on eBPF: the hold on a new container's interface is taken off once its
# iptables rules are in force (hold.h, dp_iptables.c).
# Usage (root, repo root): tests/containers/podman_iptables.sh BUILD
DATAPATH=iptables ENGINE=podman exec sh tests/containers/engine.sh "$@"
