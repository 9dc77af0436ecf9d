#!/bin/sh
# Datapath throughput benchmark (root): TCP throughput (iperf3) and new
# connections per second (moat-traffic rate) between two lab workloads on one
# node, with no firewall, with Moat (moatd, eBPF) and with an equivalent
# iptables ruleset (one rule per Moat rule, established traffic accepted
# first, the matching rule last), at 10 and 10,000 rules, in one run; and at
# 10 rules with every detection off (moat-off) and every one on (moat-all:
# brute force, port scan, DNS hijacking with a resolver, spoofing, a threat
# list of 10,000 prefixes), the detections' cost being moat-all / moat-off.
# `moat` itself runs the SPEC §6 defaults.
# Prints one `mode=... rules=... gbps=... conns=...` line per measurement.
# Usage: bench/datapath.sh BUILD_DIR
set -u
B=$(cd "${1:?build dir}" && pwd)
M="$B/moat"
LAB="bd$$"
NODE="bn$$"
TMP=$(mktemp -d)
PIDS=""
SECS=${MOAT_BENCH_SECS:-4}
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    "$B/moatd" remove --node "$NODE" >/dev/null 2>&1
    "$M" lab down --name "$LAB" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

cat >"$TMP/lab.yaml" <<YAML
kind: Node
name: $NODE
cluster: bench
ips: [10.78.0.1]
---
kind: Workload
cluster: bench
node: $NODE
name: cli
namespace: bench
labels: {app: cli}
ips: [10.78.0.10]
interface: lxbcli
---
kind: Workload
cluster: bench
node: $NODE
name: srv
namespace: bench
labels: {app: srv}
ips: [10.78.0.11]
interface: lxbsrv
YAML
"$M" lab up "$TMP/lab.yaml" --name "$LAB" --inventory "$TMP/inv.yaml" >/dev/null || exit 1

"$M" lab exec --name "$LAB" srv -- iperf3 -s -p 5201 >/dev/null 2>&1 &
PIDS="$PIDS $!"
"$M" lab exec --name "$LAB" srv -- "$B/moat-traffic" serve --tcp 7000 >"$TMP/serve" 2>&1 &
PIDS="$PIDS $!"
i=0
until grep -q ready "$TMP/serve" || [ $i -ge 100 ]; do i=$((i + 1)); sleep 0.05; done
sleep 0.3

measure() { # MODE RULES
    g=$("$M" lab exec --name "$LAB" cli -- iperf3 -c 10.78.0.11 -p 5201 -t "$SECS" -J 2>/dev/null |
        python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' 2>/dev/null)
    c=$("$M" lab exec --name "$LAB" cli -- "$B/moat-traffic" rate --tcp 10.78.0.11 7000 \
        --duration-ms $((SECS * 1000)) --timeout-ms 1000 | sed -n 's/.*: \([0-9]*\)\/s.*/\1/p')
    echo "mode=$1 rules=$2 gbps=${g:-0} conns=${c:-0}"
}

# Moat policy: N-1 rules that do not match (sources without workloads), then the one that does;
# with N >= 10000 also 10,000 workloads of the cluster on another node (peers moatd compiles in).
# 10,000 threat-list prefixes near the workloads' addresses, none of them
/usr/bin/python3 - "$TMP/threats.txt" <<'PY'
import random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        a, b, c = r.randrange(256), r.randrange(256), r.randrange(256)
        if a == 78:
            a = 79
        f.write("10.%d.%d.%d/32 c2\n" % (a, b, c) if i % 2 else "10.%d.%d.0/24 scanner\n" % (a, b))
PY

detections() { # default|off|all
    case "$1" in
    off) printf 'detections:\n  brute_force: {enabled: false}\n  port_scan: {enabled: false}\n  dns_hijack: {enabled: false}\n  spoofing: {enabled: false}\n  threat_intel: {enabled: false}\n' ;;
    all) printf 'detections:\n  brute_force: {enabled: true, action: block}\n  port_scan: {enabled: true, action: block}\n  dns_hijack: {enabled: true, action: block, resolvers: [10.78.0.53]}\n  spoofing: {enabled: true, action: block}\n  threat_intel: {enabled: true, action: block, file: %s}\n' "$TMP/threats.txt" ;;
    esac
}

moat_policy() { # N [DETECTIONS]
    {
        printf 'kind: Cluster\nname: bench\ndefense: on\n'
        detections "${2:-default}"
        printf -- '---\nkind: NetworkObject\nname: cli\nnamespace: bench\napp: cli\n'
        printf -- '---\nkind: NetworkObject\nname: srv\nnamespace: bench\napp: srv\n'
        printf -- '---\nkind: NetworkObject\nname: others\ncidrs: [10.200.0.0/16]\n'
        k=1
        while [ $k -lt "$1" ]; do
            printf -- '---\nkind: DefenseRule\ncluster: bench\nname: f%d\nsource: others\ndestinations: [{object: srv, ports: "%d"}]\nprotocol: tcp\naction: allow\npriority: %d\n' \
                $k $((10000 + k % 50000)) $((1 + k % 999))
            k=$((k + 1))
        done
        printf -- '---\nkind: DefenseRule\ncluster: bench\nname: bench\nsource: cli\ndestinations: [{object: srv, ports: "5201,7000"}]\nprotocol: tcp\naction: allow\npriority: 1000\n'
        if [ "$1" -ge 10000 ]; then
            k=0
            while [ $k -lt 10000 ]; do
                printf -- '---\nkind: Workload\ncluster: bench\nnode: far\nname: far%d\nnamespace: ns%d\nlabels: {app: a%d}\nips: [10.90.%d.%d]\n' \
                    $k $((k % 50)) $((k % 20)) $((k / 250)) $((k % 250 + 1))
                k=$((k + 1))
            done
        fi
    } >"$TMP/policy.yaml"
}

iptables_rules() { # N
    {
        echo "*filter"
        echo ":FORWARD DROP [0:0]"
        echo "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
        k=1
        while [ $k -lt "$1" ]; do
            echo "-A FORWARD -s 10.200.$((k / 256 % 256)).$((k % 256)) -d 10.78.0.11 -p tcp --dport $((10000 + k % 50000)) -j ACCEPT"
            k=$((k + 1))
        done
        echo "-A FORWARD -s 10.78.0.10 -d 10.78.0.11 -p tcp -m multiport --dports 5201,7000 -j ACCEPT"
        echo "COMMIT"
    } >"$TMP/rules.v4"
}

with_moat() { # MODE RULES [DETECTIONS]
    moat_policy "$2" "${3:-default}"
    "$M" lab exec --name "$LAB" --node "$NODE" -- "$B/moatd" --node "$NODE" --policy "$TMP/policy.yaml" \
        --inventory "$TMP/lab.yaml" --alerts /dev/null 2>"$TMP/moatd.log" &
    MP=$!
    i=0
    until [ "$(grep -cs enforcing "$TMP/moatd.log")" -ge 2 ] 2>/dev/null || [ $i -ge 600 ]; do i=$((i + 1)); sleep 0.05; done
    measure "$1" "$2"
    kill "$MP"
    wait "$MP" 2>/dev/null
    "$B/moatd" remove --node "$NODE" >/dev/null 2>&1
}

one_round() {
measure none 0
for n in 10 10000; do
    with_moat moat $n
done
with_moat moat-off 10 off
with_moat moat-all 10 all
for n in 10 10000; do
    iptables_rules $n
    "$M" lab exec --name "$LAB" --node "$NODE" -- sh -c "sysctl -qw net.bridge.bridge-nf-call-iptables=1 && iptables-restore < $TMP/rules.v4" || echo "iptables setup failed"
    measure iptables $n
    "$M" lab exec --name "$LAB" --node "$NODE" -- sh -c "iptables -F FORWARD && iptables -P FORWARD ACCEPT && sysctl -qw net.bridge.bridge-nf-call-iptables=0"
done
}

# The machine is noisy (2 shared cores): rounds interleave the modes, and the
# median of each is reported; the raw lines are printed too.
ROUNDS=${MOAT_BENCH_ROUNDS:-3}
r=0
while [ $r -lt "$ROUNDS" ]; do
    one_round | sed 's/^/raw /' | tee -a "$TMP/raw"
    r=$((r + 1))
done
for key in "none 0" "moat 10" "moat 10000" "moat-off 10" "moat-all 10" "iptables 10" "iptables 10000"; do
    set -- $key
    med() { grep "mode=$1 rules=$2 " "$TMP/raw" | tr ' ' '\n' | sed -n "s/^$3=//p" | sort -n |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    echo "mode=$1 rules=$2 gbps=$(med "$1" "$2" gbps) conns=$(med "$1" "$2" conns) rounds=$ROUNDS"
done

