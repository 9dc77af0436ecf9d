#!/bin/sh
# The detection suite (issue 11): brute force, port scans, quarantine, DNS
# hijacking, spoofing and threat intelligence against a real moatd in a
# dual-stack lab (tests/lab/detections.py says what each check does).
# Prints `ok`/`FAIL` lines and `N passed, N failed`.
# DATAPATH (ebpf, the default, or iptables) is the backend moatd runs: the same
# checks, except where one names how the iptables backend differs
# (docs/datapath-iptables.md, "Detections").
# Usage (root, repo root): tests/lab/detections.sh BUILD [DATAPATH]
set -u
B=${1:?build dir}
DP=${2:-ebpf}
B=$(cd "$B" && pwd)
M="$B/moat"
T="$B/moat-traffic"
D="$B/moatd"
LAB="dt$$"
NODE="dn$$"
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

fail() {
    echo "detections: $1"
    echo "0 passed, 1 failed"
    exit 1
}
[ "$(id -u)" = 0 ] || fail "needs root"
/usr/bin/python3 -c 'import scapy' 2>/dev/null || fail "Debian's python3-scapy is missing (make deps)"

wl() { # NAME NAMESPACE HOST [LABELS]
    printf -- '---\nkind: Workload\ncluster: lab\nnode: %s\nname: %s\nnamespace: %s\nlabels: {%s}\nips: [10.80.0.%s, "fd80::%s"]\ninterface: lx%s\n' \
        "$NODE" "$1" "$2" "${4:-app: $1}" "$3" "$3" "$1"
}
{
    printf 'kind: Node\nname: %s\ncluster: lab\nips: [10.80.0.1, "fd80::1"]\n' "$NODE"
    wl srv shop 10 "app: api"
    wl atk evil 20
    wl cli shop 21 "app: web"
    wl dns kube-system 30 "k8s-app: kube-dns"
    wl rogue evil 31
    wl bad outside 99
} >"$TMP/lab.yaml"
"$M" lab up "$TMP/lab.yaml" --name "$LAB" --inventory "$TMP/full.yaml" >"$TMP/labup.out" 2>&1 ||
    { cat "$TMP/labup.out"; fail "lab up failed"; }
# moatd's inventory: everything but `bad`, which is then an outside address
/usr/bin/python3 - "$TMP/lab.yaml" "$TMP/inventory.yaml" <<'PY'
import sys
docs = open(sys.argv[1]).read().split("---\n")
open(sys.argv[2], "w").write("---\n".join(d for d in docs if "name: bad\n" not in d))
PY

# servers are started by `moat lab exec` itself (it execs them): their PIDs are theirs
"$M" lab exec --name "$LAB" srv -- "$T" serve --tcp 22 --tcp 80 --tcp 3306 --tcp 8080 >"$TMP/srv.out" 2>&1 &
PIDS="$PIDS $!"
"$M" lab exec --name "$LAB" bad -- "$T" serve --tcp 443 >"$TMP/bad.out" 2>&1 &
PIDS="$PIDS $!"
"$M" lab exec --name "$LAB" dns -- /usr/bin/python3 "$PWD/tests/lab/dnsd.py" 192.0.2.53 2001:db8::53 >"$TMP/dns.out" 2>&1 &
PIDS="$PIDS $!"
"$M" lab exec --name "$LAB" rogue -- /usr/bin/python3 "$PWD/tests/lab/dnsd.py" 203.0.113.66 2001:db8::66 >"$TMP/rogue.out" 2>&1 &
PIDS="$PIDS $!"
i=0
until grep -qs ready "$TMP/srv.out" && grep -qs ready "$TMP/bad.out" &&
    grep -qs ready "$TMP/dns.out" && grep -qs ready "$TMP/rogue.out"; do
    i=$((i + 1))
    [ $i -lt 200 ] || fail "servers did not start"
    sleep 0.05
done

printf 'kind: Cluster\nname: lab\ndefense: on\ndefault_action: allow\n' >"$TMP/policy.yaml"
: >"$TMP/threats.txt"
"$M" lab exec --name "$LAB" --node "$NODE" -- "$D" --node "$NODE" --datapath "$DP" --policy "$TMP/policy.yaml" \
    --inventory "$TMP/inventory.yaml" --alerts "$TMP/alerts.jsonl" >"$TMP/moatd.log" 2>&1 &
PIDS="$PIDS $!"
i=0
# the first policy in force (the status file says so): later changes are then new generations
until grep -q "enforcing for workload evil/atk" "$TMP/moatd.log" &&
    grep -qs '"generation": [1-9]' "/run/moat/moatd-$NODE.json"; do
    i=$((i + 1))
    [ $i -lt 200 ] || { tail -5 "$TMP/moatd.log"; fail "moatd did not start"; }
    sleep 0.05
done

MOAT="$M" MOAT_DATAPATH="$DP" /usr/bin/python3 tests/lab/detections.py "$LAB" "$NODE" "$TMP/policy.yaml" \
    "$TMP/alerts.jsonl" "$TMP/threats.txt" "$D"
rc=$?
[ $rc -ne 0 ] && tail -20 "$TMP/moatd.log"
exit $rc
