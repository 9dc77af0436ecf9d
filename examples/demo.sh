#!/bin/sh
# `make demo`: Moat end to end on this machine.
#  1. validates the sample policy and inventory (examples/) and prints
#     `moat explain` decisions for a handful of flows;
#  2. (as root, with eBPF) the whole product: moat-server (SQLite in a
#     temporary folder), a two-node lab (examples/cluster-lab.yaml) with one
#     moatd per node in cluster mode, the policy applied with `moat apply`,
#     allowed, alerted and blocked connections within and across nodes, then
#     `moat status`, `moat alert list`, `moat node list` and `moat cluster
#     list`, and the web console's URL with an admin and a viewer token. With a
#     terminal it leaves the server running until Ctrl-C; then, or at once
#     without a terminal, it tears everything down.
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
    echo "(part 2, the live cluster in a lab, needs root: run 'make demo' as root)"
    exit 0
fi
if ! "$B/moatd" --check --node demo --policy "$P" --inventory "$I" >/dev/null 2>&1; then
    echo
    echo "(part 2 skipped: $("$B/moatd" --check --node demo --policy "$P" --inventory "$I" 2>&1 | tail -1))"
    exit 0
fi

L=examples/cluster-lab.yaml
LAB=demo$$
TMP=$(mktemp -d)
PIDS=""
AGENTS=""
SERVER=""
cleanup() {
    for p in $PIDS $AGENTS $SERVER; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS $AGENTS $SERVER; do wait "$p" 2>/dev/null || true; done
    for n in node-1 node-2; do "$B/moatd" remove --node "$n" >/dev/null 2>&1 || true; done
    "$M" lab down --name "$LAB" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
wait_for() { # FILE TEXT: up to 10 s
    i=0
    until grep -q "$2" "$1" 2>/dev/null || [ $i -ge 200 ]; do
        i=$((i + 1))
        sleep 0.05
    done
}

echo
echo "== 2. live: moat-server, a two-node lab ($L), moatd on each node"
"$B/moat-server" token create --data "$TMP/data" --role admin >"$TMP/admin"
"$B/moat-server" token create --data "$TMP/data" --role viewer >"$TMP/viewer"
"$B/moat-server" --listen 127.0.0.1:0 --data "$TMP/data" --heartbeat-interval 2 \
    >"$TMP/server.log" 2>&1 &
SERVER=$!
wait_for "$TMP/server.log" "listening on"
ADDR=$(sed -n 's/.*listening on //p' "$TMP/server.log" | head -1)
export MOAT_SERVER="http://$ADDR" MOAT_TOKEN="$(cat "$TMP/admin")"
echo "moat-server listening on $MOAT_SERVER (data in $TMP/data)"
echo
echo "\$ moat apply -f $P"
"$M" apply -f "$P"
echo
"$M" lab up "$L" --name "$LAB" --inventory "$TMP/inventory.yaml" >/dev/null
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
for w in web-7d9f api-5c4b db-0 coredns-1; do wait_for "$TMP/serve-$w" ready; done

JT=$("$M" cluster join-token prod -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["join_token"])')
echo
echo "\$ moatd --server $MOAT_SERVER --cluster prod --join-token ... --node NODE --inventory ... (one per node)"
for n in node-1 node-2; do
    "$B/moatd" --server "$MOAT_SERVER" --cluster prod --join-token "$JT" --node "$n" \
        --inventory "$TMP/inventory.yaml" --netns "mlab-$LAB-$n" --state-dir "$TMP/state-$n" \
        --alerts "$TMP/alerts-$n.jsonl" 2>"$TMP/moatd-$n.log" &
    AGENTS="$AGENTS $!"
done
for n in node-1 node-2; do wait_for "$TMP/moatd-$n.log" "policy revision"; done
i=0
until [ "$("$M" cluster get prod -o json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status"))')" = normal ] || [ $i -ge 100 ]; do
    i=$((i + 1))
    sleep 0.1
done
for n in node-1 node-2; do sed "s/^/   [$n] /" "$TMP/moatd-$n.log"; done

echo
echo "== traffic (node-1: lb-0, web-7d9f; node-2: api-5c4b, db-0, coredns-1)"
printf '%-10s %-12s %-6s %-5s %-11s %s\n' FROM TO PORT PROTO PATH RESULT
conn() { # from to-address to-name port proto path
    if "$M" lab exec --name "$LAB" "$1" -- "$B/moat-traffic" connect "--$5" "$2" "$4" \
        --timeout-ms 400 >/dev/null 2>&1; then r=connected; else r="BLOCKED"; fi
    printf '%-10s %-12s %-6s %-5s %-11s %s\n' "$1" "$3" "$4" "$5" "$6" "$r"
}
conn lb-0 10.244.1.5 web-7d9f 80 tcp same-node
conn lb-0 10.244.1.5 web-7d9f 8080 tcp same-node
conn web-7d9f 10.244.2.6 api-5c4b 8081 tcp cross-node
conn web-7d9f 10.244.2.6 api-5c4b 9000 tcp cross-node
conn api-5c4b 10.244.2.7 db-0 5432 tcp same-node
conn web-7d9f 10.244.2.7 db-0 5432 tcp cross-node
conn web-7d9f 10.244.2.7 db-0 5432 tcp cross-node
conn lb-0 10.244.2.7 db-0 22 tcp cross-node
conn api-5c4b 10.244.2.10 coredns-1 53 udp same-node

echo
echo "== a rule changed through the API reaches both nodes within a second"
echo "\$ moat rule update --cluster prod api-from-web --action block"
"$M" rule update --cluster prod api-from-web --action block >/dev/null
i=0
until ! "$M" lab exec --name "$LAB" web-7d9f -- "$B/moat-traffic" connect --tcp 10.244.2.6 8081 \
    --timeout-ms 300 >/dev/null 2>&1 || [ $i -ge 20 ]; do i=$((i + 1)); done
conn web-7d9f 10.244.2.6 api-5c4b 8081 tcp cross-node
"$M" rule update --cluster prod api-from-web --action allow >/dev/null
sleep 1.5 # one heartbeat (2 s) and the alert batches (0.5 s) reach the server

echo
echo "\$ moat node list"
"$M" node list
echo
echo "\$ moat cluster list"
"$M" cluster list
echo
echo "\$ moat alert list --cluster prod"
"$M" alert list --cluster prod
echo
echo "\$ moat status"
"$M" status

echo
echo "== the web console: $MOAT_SERVER/  (sign in with the Token below; docs/console.md)"
echo "   admin token:  $MOAT_TOKEN"
echo "   viewer token: $(cat "$TMP/viewer")  (sees everything, changes nothing)"
if [ -t 0 ]; then
    echo
    echo "== the server keeps running: open the console, or try the CLI or the API against it"
    echo "   export MOAT_SERVER=$MOAT_SERVER"
    echo "   export MOAT_TOKEN=$MOAT_TOKEN"
    echo "   $M rule list --cluster prod"
    echo "   curl -H \"Authorization: Bearer \$MOAT_TOKEN\" $MOAT_SERVER/api/v1/status"
    echo "   lab: $M lab exec --name $LAB web-7d9f -- $B/moat-traffic connect --tcp 10.244.2.6 8081"
    echo "Press Ctrl-C to stop and tear everything down."
    trap 'echo; echo "== tearing down"; exit 0' INT TERM
    while kill -0 "$SERVER" 2>/dev/null; do sleep 1; done
fi
echo
echo "== tearing down"
