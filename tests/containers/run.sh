#!/bin/sh
# The real-container suites (root): Podman (podman.sh, and podman_iptables.sh with
# moatd on the iptables datapath), Docker Engine where its
# daemon can run (docker.sh), the Kubernetes source against a recorded API
# (kube.sh), and the install and deploy files (deploy.sh). Prints each suite's
# lines and a closing `N passed, N failed` over all of them.
# Usage: tests/containers/run.sh BUILD_DIR
set -u
B=${1:?build dir}
P=0
F=0
for s in tests/containers/podman.sh tests/containers/podman_iptables.sh tests/containers/docker.sh tests/containers/kube.sh \
    tests/containers/deploy.sh; do
    [ -f "$s" ] || continue
    out=$(sh "$s" "$B" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "$(basename "$s" .sh): $p passed, $f failed"
    P=$((P + p))
    F=$((F + f))
done
echo "$P passed, $F failed"
[ "$F" -eq 0 ]
