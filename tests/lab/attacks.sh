#!/bin/sh
# The attack suite (issue 10): attacks from inside a lab workload against
# moatd's datapath, over IPv4 and IPv6, each decided by what the victim's
# socket or a capture in the victim's namespace receives, each next to a
# control that must pass (tests/lab/attacks.py says how). Prints `held NAME`
# or `bypassed NAME`, `ok`/`FAIL` for controls, and `N passed, N failed`; a
# bypass fails the suite. DATAPATH (ebpf, the default, or iptables) is the
# backend moatd runs; attacks.py says where the iptables one must differ.
# Usage (root, repo root): tests/lab/attacks.sh BUILD [DATAPATH]
set -u
B=${1:?build dir}
B=$(cd "$B" && pwd)
DP=${2:-ebpf}
case "$DP" in ebpf | iptables) ;; *)
    echo "usage: $0 BUILD [ebpf|iptables]"
    exit 2
    ;;
esac
export MOAT_DATAPATH="$DP"
M="$B/moat"
T="$B/moat-traffic"
D="$B/moatd"
LAB="at$$"
NODE="an$$"
TMP=$(mktemp -d)
PIDS=""

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    "$D" remove --node "$NODE" >/dev/null 2>&1
    "$M" lab down --name "$LAB" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" != 0 ]; then
    echo "attacks: needs root"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! /usr/bin/python3 -c 'import scapy' 2>/dev/null; then
    echo "attacks: Debian's python3-scapy is missing (make deps installs it)"
    echo "0 passed, 1 failed"
    exit 1
fi

wl() { # NAME NAMESPACE APP HOST
    printf -- '---\nkind: Workload\ncluster: lab\nnode: %s\nname: %s\nnamespace: %s\nlabels: {app: %s}\nips: [10.79.0.%s, "fd79::%s"]\ninterface: lx%s\n' \
        "$NODE" "$1" "$2" "$3" "$4" "$4" "$1"
}
{
    printf 'kind: Node\nname: %s\ncluster: lab\nips: [10.79.0.1, "fd79::1"]\n' "$NODE"
    wl v1 shop api 10
    wl v2 shop db 11
    wl a1 evil evil 20
    wl p1 shop web 21
} >"$TMP/lab.yaml"
if ! "$M" lab up "$TMP/lab.yaml" --name "$LAB" --inventory "$TMP/inventory.yaml" >"$TMP/labup.out" 2>&1; then
    cat "$TMP/labup.out"
    echo "attacks: lab up failed"
    echo "0 passed, 1 failed"
    exit 1
fi

# Victims as easy to fool as a Linux host can be, so that an attack that got
# through would show: ARP replies override at once and create entries, ICMP
# errors are not rate-limited (a closed port always answers).
for n in v1 v2 a1 p1; do
    ip netns exec "mlab-$LAB-$NODE-$n" sysctl -qw net.ipv4.neigh.eth0.locktime=0 \
        net.ipv4.conf.eth0.arp_accept=1 net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
done

# servers are started by `moat lab exec` itself (it execs them): their PIDs are theirs
"$M" lab exec --name "$LAB" v1 -- "$T" serve --tcp 22 --tcp 80 --tcp 8080 --udp 5353 >"$TMP/v1.out" 2>&1 &
PIDS="$PIDS $!"
"$M" lab exec --name "$LAB" v2 -- "$T" serve --tcp 5432 --udp 5353 >"$TMP/v2.out" 2>&1 &
PIDS="$PIDS $!"
i=0
until grep -qs ready "$TMP/v1.out" && grep -qs ready "$TMP/v2.out"; do
    i=$((i + 1))
    if [ $i -ge 100 ]; then
        echo "attacks: servers did not start"
        echo "0 passed, 1 failed"
        exit 1
    fi
    sleep 0.05
done

printf 'kind: Cluster\nname: lab\ndefense: on\n' >"$TMP/policy.yaml"
if [ -n "${MOAT_ATTACKS_NO_FIREWALL:-}" ]; then
    # The suite checking itself: with no moatd, every attack must show as bypassed.
    MOAT="$M" /usr/bin/python3 tests/lab/attacks.py "$LAB" "$NODE" "$TMP/policy.yaml" "$TMP/alerts.jsonl"
    exit $?
fi
"$M" lab exec --name "$LAB" --node "$NODE" -- "$D" --node "$NODE" --policy "$TMP/policy.yaml" \
    --inventory "$TMP/inventory.yaml" --datapath "$DP" --alerts "$TMP/alerts.jsonl" >"$TMP/moatd.log" 2>&1 &
PIDS="$PIDS $!"
i=0
until grep -q "enforcing for workload evil/a1" "$TMP/moatd.log"; do
    i=$((i + 1))
    if [ $i -ge 200 ]; then
        tail -5 "$TMP/moatd.log"
        echo "attacks: moatd did not start"
        echo "0 passed, 1 failed"
        exit 1
    fi
    sleep 0.05
done

MOAT="$M" /usr/bin/python3 tests/lab/attacks.py "$LAB" "$NODE" "$TMP/policy.yaml" "$TMP/alerts.jsonl"
rc=$?
echo "   (datapath drops: $("$D" status --node "$NODE" -o json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin).get("drops",{}); print(", ".join("%s %d" % (k, v) for k, v in d.items() if v))' 2>/dev/null))"
exit $rc
