#!/bin/sh
# Datapath throughput benchmark (root): TCP throughput (iperf3) and new
# connections per second (moat-traffic rate) between two lab workloads on one
# node, with no firewall and with moatd on each backend (--datapath ebpf,
# --datapath iptables), at 10, 1,000 and 10,000 rules (the matching rule
# last in precedence), in interleaved rounds in one run; the time moatd
# takes to re-apply a changed policy of 10,000 rules on each backend; and,
# on eBPF at 10 rules, every detection off (moat-off) and every one on
# (moat-all: brute force, port scan, DNS hijacking with a resolver, spoofing,
# a threat list of 10,000 prefixes), the detections' cost being moat-all /
# moat-off, and the same on iptables (ipt-off, ipt-all). The ebpf and iptables
# modes run the SPEC §6 detection defaults. MOAT_BENCH_ONLY=detections runs the
# baseline and the four detection modes only.
# Prints `raw ...` lines per round, then one `mode=... rules=... gbps=...
# conns=...` line per configuration and one `update mode=... ms=...` line
# per backend (medians).
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

# Moat policy: N-1 rules that do not match (every other one from `any`, the rest from an
# ipblock without workloads: other ports), then the one that does;
# with N >= 10000 also 10,000 workloads of the cluster on another node (peers moatd compiles in).
moat_policy() { # N [DETECTIONS]
    {
        printf 'kind: Cluster\nname: bench\ndefense: on\n'
        detections "${2:-default}"
        printf -- '---\nkind: NetworkObject\nname: cli\nnamespace: bench\napp: cli\n'
        printf -- '---\nkind: NetworkObject\nname: srv\nnamespace: bench\napp: srv\n'
        printf -- '---\nkind: NetworkObject\nname: others\ncidrs: [10.200.0.0/16]\n'
        k=1
        while [ $k -lt "$1" ]; do
            printf -- '---\nkind: DefenseRule\ncluster: bench\nname: f%d\nsource: %s\ndestinations: [{object: srv, ports: "%d"}]\nprotocol: tcp\naction: allow\npriority: %d\n' \
                $k "$([ $((k % 2)) = 1 ] && echo any || echo others)" $((10000 + k % 50000)) $((1 + k % 999))
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

# The policy again with one rule's action changed (priority 1000 "bench" stays allow, the
# first filler flips between allow and alert): what `moatd` re-applies in an update.
flip_policy() {
    sed -i '0,/^action: allow$/s//action: alert/;t;0,/^action: alert$/s//action: allow/' "$TMP/policy.yaml"
}

# update_ms: moatd's own figure for the last reload ("compile and install X ms").
update_ms() {
    sed -n 's/.*compile and install \([0-9.]*\) ms.*/\1/p' "$TMP/moatd.log" | tail -1
}

with_moat() { # BACKEND MODE RULES [DETECTIONS]
    moat_policy "$3" "${4:-default}"
    : >"$TMP/moatd.log"
    "$M" lab exec --name "$LAB" --node "$NODE" -- "$B/moatd" --node "$NODE" --datapath "$1" \
        --policy "$TMP/policy.yaml" --inventory "$TMP/lab.yaml" --alerts /dev/null 2>"$TMP/moatd.log" &
    MP=$!
    i=0
    until [ "$(grep -cs enforcing "$TMP/moatd.log")" -ge 2 ] || [ $i -ge 1200 ]; do i=$((i + 1)); sleep 0.05; done
    measure "$2" "$3"
    if [ "$3" -ge 10000 ] && [ "$2" = "$1" ]; then # a policy update at 10,000 rules, three times
        for k in 1 2 3; do
            before=$(grep -c "compile and install" "$TMP/moatd.log")
            flip_policy
            i=0
            until [ "$(grep -c "compile and install" "$TMP/moatd.log")" -gt "$before" ] || [ $i -ge 1200 ]; do
                i=$((i + 1))
                sleep 0.05
            done
            echo "update mode=$1 rules=$3 ms=$(update_ms)"
        done
    fi
    kill "$MP"
    wait "$MP" 2>/dev/null
    "$M" lab exec --name "$LAB" --node "$NODE" -- "$B/moatd" remove --node "$NODE" >/dev/null 2>&1
}

one_round() {
measure none 0
for n in 10 1000 10000; do
    [ "${MOAT_BENCH_ONLY:-}" = detections ] && break
    for dp in ebpf iptables; do
        with_moat "$dp" "$dp" $n
    done
done
with_moat ebpf moat-off 10 off
with_moat ebpf moat-all 10 all
with_moat iptables ipt-off 10 off
with_moat iptables ipt-all 10 all
}

# The machine is noisy (2 shared cores): rounds interleave the modes, and the
# median of each is reported; the raw lines are printed too.
ROUNDS=${MOAT_BENCH_ROUNDS:-3}
r=0
while [ $r -lt "$ROUNDS" ]; do
    one_round | sed 's/^/raw /' | tee -a "$TMP/raw"
    r=$((r + 1))
done
med() { grep "^raw $4mode=$1 rules=$2 " "$TMP/raw" | tr ' ' '\n' | sed -n "s/^$3=//p" | sort -n |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for key in "none 0" "ebpf 10" "iptables 10" "ebpf 1000" "iptables 1000" "ebpf 10000" "iptables 10000" \
    "moat-off 10" "moat-all 10" "ipt-off 10" "ipt-all 10"; do
    set -- $key
    grep -q "^raw mode=$1 rules=$2 " "$TMP/raw" || continue # not run (MOAT_BENCH_ONLY)
    echo "mode=$1 rules=$2 gbps=$(med "$1" "$2" gbps "") conns=$(med "$1" "$2" conns "") rounds=$ROUNDS"
done
for dp in ebpf iptables; do
    grep -q "^raw update mode=$dp " "$TMP/raw" || continue
    echo "update mode=$dp rules=10000 ms=$(med "$dp" 10000 ms "update ") updates=$(grep -c "^raw update mode=$dp " "$TMP/raw")"
done

