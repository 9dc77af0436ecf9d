#!/bin/sh
# The lab suites (root): the lab itself (test_lab.sh) and enforcement with
# moatd on real traffic (enforce.sh), cluster mode with moat-server and two
# nodes (cluster.sh) and without traffic (agent.sh), and one agent per node with
# its status, removal and file watching (node_agent.sh), and attacks on the
# datapath from inside workloads (attacks.sh, IPv4 and IPv6), and the detections
# (detections.sh: brute force, scans, quarantine, DNS, threat lists). The suites that send
# traffic through the datapath run twice, over IPv4 and over IPv6 (FAMILY 4
# and 6; their labs are dual-stack). Prints each run's lines under a header,
# and a closing `N passed, N failed` over all of them.
# Usage: tests/lab/run.sh BUILD_DIR
set -u
B=${1:?build dir}
P=0
F=0
for s in "test_lab.sh" "enforce.sh 4" "enforce.sh 6" "agent.sh" "cluster.sh 4" "cluster.sh 6" \
    "node_agent.sh 4" "node_agent.sh 6" "attacks.sh" "detections.sh"; do
    set -- $s
    echo "== tests/lab/$s"
    t0=$(date +%s)
    out=$(sh "tests/lab/$1" "$B" ${2:-} 2>&1)
    rc=$?
    printf '%s\n' "$out"
    echo "   ($(($(date +%s) - t0)) s)"
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
