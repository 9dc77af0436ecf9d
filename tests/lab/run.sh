#!/bin/sh
# The lab suites (root): the lab itself (test_lab.sh) and enforcement with
# moatd on real traffic (enforce.sh), cluster mode with moat-server and two
# nodes (cluster.sh) and without traffic (agent.sh), an agent following policy
# deltas against one restarted to fetch it all (delta.sh), and one agent per node with
# its status, removal and file watching (node_agent.sh), and attacks on the
# datapath from inside workloads (attacks.sh, IPv4 and IPv6), the detections
# (detections.sh: brute force, scans, quarantine, DNS, threat lists;
# cluster_detect.sh: the same through moat-server, quarantines spread and
# released, threat lists uploaded), two moat-server replicas on PostgreSQL with an
# agent failing over (replicas.sh), and node states with both backends
# (node_states.sh). The suites that send traffic through the datapath run over
# IPv4 and over IPv6 (FAMILY 4 and 6; their labs are dual-stack), and the
# enforcement, attack and detection suites once per datapath backend (eBPF, then
# iptables: the same expectations, except where a check says it differs).
# Prints each run's lines under a header,
# and a closing `N passed, N failed` over all of them.
# Usage: tests/lab/run.sh BUILD_DIR
set -u
B=${1:?build dir}
P=0
F=0
PROCS=$(mktemp)
trap 'rm -f "$PROCS"' EXIT
# Processes a suite starts in its lab (servers, resolvers, agents) must end
# with it: their PIDs, before and after each suite, by command line.
BA=$(cd "$B" && pwd)
lab_procs() {
    ps -eo pid=,args= | grep -E "($BA/(moat-traffic|moatd)|$PWD/tests/lab/dnsd.py) " |
        grep -v grep | awk '{ print $1 }' | sort
}
for s in "test_lab.sh" "enforce.sh 4" "enforce.sh 6" "agent.sh" "cluster.sh 4" "cluster.sh 6" "delta.sh" \
    "node_agent.sh 4" "node_agent.sh 6" "attacks.sh" "detections.sh" "cluster_detect.sh 4" \
    "cluster_detect.sh 6" "replicas.sh" \
    "enforce.sh 4 iptables" "enforce.sh 6 iptables" "cluster.sh 4 iptables" "cluster.sh 6 iptables" \
    "node_agent.sh 4 iptables" "node_agent.sh 6 iptables" "attacks.sh iptables" \
    "detections.sh iptables" "cluster_detect.sh 4 iptables" "cluster_detect.sh 6 iptables" \
    "node_states.sh"; do
    set -- $s
    echo "== tests/lab/$s"
    t0=$(date +%s)
    lab_procs >"$PROCS"
    script=$1
    shift
    out=$(sh "tests/lab/$script" "$B" "$@" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    i=0
    while left=$(lab_procs | comm -13 "$PROCS" - | tr '\n' ' ') && [ -n "$left" ] && [ $i -lt 30 ]; do
        i=$((i + 1))
        sleep 0.1
    done
    if [ -n "$left" ]; then
        echo "FAIL processes-ended: left running after tests/lab/$s: $left"
        F=$((F + 1))
    fi
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
