#!/bin/sh
# `make demo` (this stage): validates the sample policy and inventory in
# examples/ and prints `moat explain` decisions for a handful of flows.
# Usage: examples/demo.sh PATH/TO/moat
set -eu
M=${1:-build/rel/moat}
P=examples/policy.yaml
I=examples/inventory.yaml

echo "== moat validate -f $P -f $I"
"$M" validate -f "$P" -f "$I"
echo
echo "== moat explain: decisions for sample flows (cluster prod, defense on, default block)"
printf '%-12s %-22s %-6s %-6s %-7s %-8s %-20s %s\n' FROM TO PORT PROTO ACTION APPLIED RULE DEFAULT
flow() { # from to port proto
    out=$("$M" explain -f "$P" -i "$I" --from "$1" --to "$2" --port "$3" --proto "$4" -o json)
    printf '%s\n' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
a = sys.argv[1:]
rule = "%d %s" % (d["rule"]["id"], d["rule"]["name"]) if d["rule"] else "-"
print("%-12s %-22s %-6s %-6s %-7s %-8s %-20s %s" % (a[0], a[1], a[2], a[3], d["action"],
      d["applied_action"], rule, "yes" if d["default"] else "no"))' "$@"
}
flow lb-0 web-7d9f 80 tcp
flow lb-0 web-7d9f 443 tcp
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
echo "== moat explain (human form): why is the web tier not allowed to reach the api on 9000?"
"$M" explain -f "$P" -i "$I" --from web-7d9f --to api-5c4b --port 9000 --proto tcp
echo
echo "== an invalid file: every error is reported, exit status 2"
printf 'kind: DefenseRule\ncluster: prod\nname: bad\nsource: nobody\ndestinations:\n  - object: web\n    ports: 80/90,85/100\naction: deny\npriority: 0\n' >/tmp/moat-demo-bad.$$.yaml
set +e
"$M" validate -f "$P" -f /tmp/moat-demo-bad.$$.yaml
echo "exit status: $?"
rm -f /tmp/moat-demo-bad.$$.yaml
