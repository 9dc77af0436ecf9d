#!/bin/sh
# The lab suites (root): the lab itself (test_lab.sh) and enforcement with
# moatd on real traffic (enforce.sh), cluster mode with moat-server and two
# nodes (cluster.sh) and without traffic (agent.sh), and one agent per node with
# its status, removal and file watching (node_agent.sh). Prints each suite's lines and a closing
# `N passed, N failed` over all of them. Usage: tests/lab/run.sh BUILD_DIR
set -u
B=${1:?build dir}
P=0
F=0
for s in tests/lab/test_lab.sh tests/lab/enforce.sh tests/lab/agent.sh tests/lab/cluster.sh tests/lab/node_agent.sh tests/lab/attacks.sh; do
    out=$(sh "$s" "$B" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    P=$((P + p))
    F=$((F + f))
done
echo "$P passed, $F failed"
[ "$F" -eq 0 ]
