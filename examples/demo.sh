#!/bin/sh
# `make demo`: Moat end to end on this machine.
#  1. validates the sample policy and inventory (examples/) and prints
#     `moat explain` decisions for a handful of flows;
#  2. (as root, with eBPF) brings up a lab of network namespaces from the
#     inventory, starts moatd enforcing the policy with the eBPF datapath,
#     drives allowed, alerted and blocked connections, prints the alerts and
#     per-rule counters, and tears everything down.
# Usage: examples/demo.sh BUILD_DIR
set -eu
B=${1:-build/rel}
M="$B/moat"
P=examples/policy.yaml
I=examples/inventory.yaml

echo "== 1. moat validate -f $P -f $I"
"$M" validate -f "$P" -f "$I"
echo
echo "== moat explain: decisions for sample flows (cluster prod, defense on, default block)"
printf '%-12s %-16s %-6s %-6s %-7s %-8s %-20s %s\n' FROM TO PORT PROTO ACTION APPLIED RULE DEFAULT
flow() { # from to port proto
    "$M" explain -f "$P" -i "$I" --from "$1" --to "$2" --port "$3" --proto "$4" -o json |
        python3 -c '
import json, sys
d = json.load(sys.stdin)
a = sys.argv[1:]
rule = "%d %s" % (d["rule"]["id"], d["rule"]["name"]) if d["rule"] else "-"
print("%-12s %-16s %-6s %-6s %-7s %-8s %-20s %s" % (a[0], a[1], a[2], a[3], d["action"],
      d["applied_action"], rule, "yes" if d["default"] else "no"))' "$@"
}
flow lb-0 web-7d9f 80 tcp
flow lb-0 web-7d9f 8080 tcp
flow web-7d9f api-5c4b 8081 tcp
flow api-5c4b db-0 5432 tcp
flow web-7d9f db-0 5432 tcp
flow 203.0.113.7 db-0 22 tcp
flow 198.51.100.7 db-0 22 tcp
flow api-5c4b coredns-1 53 udp
flow host db-0 9187 tcp
flow web-7d9f 169.254.169.254 80 tcp
echo
echo "== moat explain (human form): why can the web tier not reach the api on 9000?"
"$M" explain -f "$P" -i "$I" --from web-7d9f --to api-5c4b --port 9000 --proto tcp
echo
echo "== an invalid file: every error is reported, exit status 2"
BAD=$(mktemp --suffix=.yaml)
printf 'kind: DefenseRule\ncluster: prod\nname: bad\nsource: web\ndestinations:\n  - object: web\n    ports: 80/90,85/100\naction: deny\npriority: 0\n' >"$BAD"
set +e
"$M" validate -f "$P" -f "$BAD"
echo "exit status: $?"
set -e
rm -f "$BAD"

if [ "$(id -u)" != 0 ]; then
    echo
    echo "(part 2, live enforcement in a lab, needs root: run 'make demo' as root)"
    exit 0
fi
if ! "$B/moatd" --check --node demo --policy "$P" --inventory "$I" >/dev/null 2>&1; then
    echo
    echo "(part 2 skipped: $("$B/moatd" --check --node demo --policy "$P" --inventory "$I" 2>&1 | tail -1))"
    exit 0
fi

echo
echo "== 2. live: a lab from $I, moatd enforcing $P with the eBPF datapath"
LAB=demo$$
NODE=node-1
TMP=$(mktemp -d)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    "$B/moatd" remove --node "$NODE" >/dev/null 2>&1 || true
    "$M" lab down --name "$LAB" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
"$M" lab up "$I" --name "$LAB" --inventory "$TMP/inventory.yaml" >/dev/null
"$M" lab status --name "$LAB"
serve() { # workload args...
    w=$1
    shift
    "$M" lab exec --name "$LAB" "$w" -- "$B/moat-traffic" serve "$@" >"$TMP/serve-$w" 2>&1 &
    PIDS="$PIDS $!"
}
serve web-7d9f --tcp 80 --tcp 443 --tcp 8080
serve api-5c4b --tcp 8081 --tcp 9000
serve db-0 --tcp 5432 --tcp 22
serve coredns-1 --udp 53
for w in web-7d9f api-5c4b db-0 coredns-1; do
    i=0
    until grep -q ready "$TMP/serve-$w" 2>/dev/null || [ $i -ge 100 ]; do
        i=$((i + 1))
        sleep 0.05
    done
done
"$M" lab exec --name "$LAB" --node "$NODE" -- "$B/moatd" --node "$NODE" --policy "$P" \
    --inventory "$I" --alerts "$TMP/alerts.jsonl" 2>"$TMP/moatd.log" &
PIDS="$PIDS $!"
i=0
until [ "$(grep -c enforcing "$TMP/moatd.log" 2>/dev/null)" -ge 5 ] || [ $i -ge 100 ]; do
    i=$((i + 1))
    sleep 0.05
done
sed 's/^/   /' "$TMP/moatd.log"
echo
printf '%-10s %-12s %-6s %-5s %s\n' FROM TO PORT PROTO RESULT
conn() { # from to-address to-name port proto
    if "$M" lab exec --name "$LAB" "$1" -- "$B/moat-traffic" connect "--$5" "$2" "$4" \
        --timeout-ms 400 >/dev/null 2>&1; then r=connected; else r="BLOCKED"; fi
    printf '%-10s %-12s %-6s %-5s %s\n' "$1" "$3" "$4" "$5" "$r"
}
conn lb-0 10.244.1.5 web-7d9f 80 tcp
conn lb-0 10.244.1.5 web-7d9f 443 tcp
conn lb-0 10.244.1.5 web-7d9f 8080 tcp
conn web-7d9f 10.244.1.6 api-5c4b 8081 tcp
conn web-7d9f 10.244.1.6 api-5c4b 9000 tcp
conn api-5c4b 10.244.1.7 db-0 5432 tcp
conn web-7d9f 10.244.1.7 db-0 5432 tcp
conn web-7d9f 10.244.1.7 db-0 5432 tcp
conn lb-0 10.244.1.7 db-0 22 tcp
conn api-5c4b 10.244.1.10 coredns-1 53 udp
sleep 0.5
echo
echo "== alerts (aggregated; JSON lines in the file, summarised here)"
python3 - "$TMP/alerts.jsonl" <<'PY'
import json, sys
last = {}
for line in open(sys.argv[1]):
    if line.strip():
        a = json.loads(line)
        last[a["id"]] = a
print("%-9s %-7s %-7s %-10s %-10s %-6s %-14s %s" % ("KIND", "ACTION", "APPLIED", "SOURCE", "DEST", "PORT", "RULE", "ATTEMPTS"))
for a in last.values():
    src = (a["source"]["workload"] or {}).get("name", a["source"]["address"])
    dst = (a["destination"]["workload"] or {}).get("name", a["destination"]["address"])
    rule = a["rule"]["name"] if a["rule"] else "(default)"
    print("%-9s %-7s %-7s %-10s %-10s %-6s %-14s %s" % (a["kind"], a["configured_action"], a["applied_action"], src, dst, a["destination"]["port"], rule, a["attempts"]))
PY
echo
echo "== moatd status (per-rule counters from the datapath)"
"$B/moatd" status --node "$NODE"
echo
echo "== tearing down"
