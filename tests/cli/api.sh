#!/bin/sh
# End-to-end tests of the `moat` commands over moat-server's API: config
# precedence, errors and exit codes, cluster/object/rule commands with every
# output format, apply -f / delete -f. Starts a real BUILD_DIR/moat-server on
# a free 127.0.0.1 port with a temporary data folder and kills it (by PID)
# on exit. Usage: tests/cli/api.sh BUILD_DIR
# Prints `ok NAME` per check and a closing `N passed, N failed`.
set -u
B=${1:?build dir}
M="$B/moat"
S="$B/moat-server"
P=examples/policy.yaml
T=$(mktemp -d)
PID=
pass=0
fail=0

cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

# expect NAME WANT_RC CMD... : runs CMD, keeps stdout in $T/out and stderr in $T/err.
expect() {
    name=$1 want=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$name"; else bad "$name" "exit $rc, want $want: $(head -5 "$T/err")"; fi
}
has() {
    if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1" "no \"$3\" in: $(head -20 "$2")"; fi
}
hasnt() {
    if grep -qF -- "$3" "$2"; then bad "$1" "\"$3\" in: $(head -20 "$2")"; else ok "$1"; fi
}
# parses NAME [FORMAT]: $T/out parses as JSON (or YAML)
parses() {
    if python3 -c 'import json,sys
if sys.argv[2] == "yaml":
    import yaml; yaml.safe_load(open(sys.argv[1]))
else:
    json.load(open(sys.argv[1]))' "$T/out" "${2:-json}" 2>"$T/perr"; then
        ok "$1"
    else
        bad "$1" "$(tail -1 "$T/perr"): $(head -5 "$T/out")"
    fi
}
# py NAME EXPR: a python expression over j (the JSON in $T/out) is True
py() {
    if python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$T/out" "$2" 2>"$T/perr"; then ok "$1"; else bad "$1" "$2 is false: $(head -c 400 "$T/out")"; fi
}
# state FILE: every cluster, object and rule of the server, as JSON lines
state() {
    {
        "$M" cluster list -o json --limit 1000
        "$M" object list -o json --limit 1000
        for c in $("$M" cluster list -o json --limit 1000 | python3 -c 'import json,sys
for i in json.load(sys.stdin)["items"]: print(i["id"])'); do
            "$M" rule list --cluster "$c" -o json --limit 1000
        done
    } >"$1" 2>&1
}
same_state() {
    state "$T/after"
    if cmp -s "$2" "$T/after"; then ok "$1"; else bad "$1" "state changed: $(diff "$2" "$T/after" | head -10)"; fi
}

for tool in curl python3; do
    command -v "$tool" >/dev/null || {
        bad setup "$tool is missing (make deps)"
        finish
    }
done
[ -x "$S" ] && [ -x "$M" ] || {
    bad setup "$S or $M is not built"
    finish
}

# --- server: a free port, tokens, bounded wait for /healthz
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADMIN=$("$S" token create --data "$T/data" --role admin)
VIEWER=$("$S" token create --data "$T/data" --role viewer)
"$S" --listen "127.0.0.1:$PORT" --data "$T/data" >"$T/server.log" 2>&1 &
PID=$!
URL=http://127.0.0.1:$PORT
i=0
until curl -fs "$URL/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -ge 200 ] || ! kill -0 "$PID" 2>/dev/null; then
        bad server-start "no /healthz at $URL: $(head -5 "$T/server.log")"
        finish
    fi
    sleep 0.05
done
ok server-start

# --- configuration: flags beat env beat file; missing and unreachable
export HOME="$T/home"
unset XDG_CONFIG_HOME MOAT_SERVER MOAT_TOKEN
mkdir -p "$HOME/.config/moat"
expect config-missing-server 2 "$M" cluster list
has config-missing-server-msg "$T/err" "no server URL"
printf '# test config\nserver = %s\ntoken = %s\n' "$URL" "$ADMIN" >"$HOME/.config/moat/config"
expect config-file 0 "$M" cluster list
printf 'server = http://127.0.0.1:1\ntoken = %s\n' "$ADMIN" >"$HOME/.config/moat/config"
expect config-env-beats-file 0 env MOAT_SERVER="$URL" "$M" cluster list
expect config-flag-beats-env 0 env MOAT_SERVER=http://127.0.0.1:1 "$M" cluster list --server "$URL"
expect config-token-flag-beats-env 4 env MOAT_SERVER="$URL" MOAT_TOKEN="$ADMIN" "$M" cluster list --token moat_wrong
expect unreachable 1 "$M" cluster list
has unreachable-url "$T/err" "http://127.0.0.1:1"
printf 'server = %s\n' "$URL" >"$HOME/.config/moat/config"
expect config-missing-token 2 "$M" cluster list
has config-missing-token-msg "$T/err" "no token"
rm -f "$HOME/.config/moat/config"
export MOAT_SERVER="$URL" MOAT_TOKEN="$ADMIN"

# --- apply: everything created, then a no-op
expect apply 0 "$M" apply -f $P
n=$(grep -c ' created$' "$T/out")
if [ "$n" -eq 13 ]; then ok apply-created-all; else bad apply-created-all "$n created, want 13: $(cat "$T/out")"; fi
expect apply-again 0 "$M" apply -f $P -o json
py apply-again-unchanged 'len(j["results"]) == 13 and all(r["result"] == "unchanged" for r in j["results"])'
expect apply-again-table 0 "$M" apply -f $P
hasnt apply-again-no-change "$T/out" "created"
hasnt apply-again-no-config "$T/out" "configured"
expect apply-inventory-note 0 "$M" apply -f $P -f examples/inventory.yaml
has apply-inventory-note-msg "$T/err" "kind Workload ignored"

# --- clusters
for f in json yaml; do
    expect "cluster-list-$f" 0 "$M" cluster list -o $f
    parses "cluster-list-$f-parses" $f
done
expect cluster-list-table 0 "$M" cluster list
has cluster-list-table-row "$T/out" "prod"
expect cluster-get 0 "$M" cluster get prod -o json
py cluster-get-fields 'j["id"] == "prod" and j["defense"] == "on"'
expect cluster-get-missing 5 "$M" cluster get nope
printf 'kind: Cluster\nname: stage\ndefense: off\n' >"$T/stage.yaml"
expect cluster-create 0 "$M" cluster create -f "$T/stage.yaml" -o json
py cluster-create-json 'j["id"] == "stage" and j["defense"] == "off"'
expect cluster-create-dup 6 "$M" cluster create -f "$T/stage.yaml"
expect cluster-update 0 "$M" cluster update stage --mode monitor --default-action alert -o json
py cluster-update-json 'j["mode"] == "monitor" and j["default_action"] == "alert"'
expect cluster-update-invalid 2 "$M" cluster update stage --mode sideways
has cluster-update-invalid-field "$T/err" "mode:"
expect cluster-defense-many 0 "$M" cluster defense on stage prod -o json
py cluster-defense-many-json 'all(c["defense"] == "on" for c in j["items"]) and len(j["items"]) == 2'
expect cluster-defense-bad 2 "$M" cluster defense maybe stage

# --- objects
for f in json yaml; do
    expect "object-list-$f" 0 "$M" object list -o $f
    parses "object-list-$f-parses" $f
done
expect object-list-filter 0 "$M" object list --namespace shop -o json
py object-list-filter-json 'j["total"] == 3 and {o["name"] for o in j["items"]} == {"web","api","db"}'
expect object-get-name 0 "$M" object get web -o json
py object-get-name-json 'j["name"] == "web" and isinstance(j["id"], int)'
printf '{"name": "cache", "namespace": "shop", "app": "redis"}\n' >"$T/cache.json"
expect object-create 0 "$M" object create -f "$T/cache.json" -o json
py object-create-json 'j["name"] == "cache"'
printf 'name: cache\nnamespace: shop\napp: redis*\n' >"$T/cache2.yaml"
expect object-update 0 "$M" object update cache -f "$T/cache2.yaml" -o json
py object-update-json 'j["app"] == "redis*"'
printf 'name: bad\nnamespace: shop\nlabels: ["a==b"]\nbogus: 1\n' >"$T/badobj.yaml"
expect object-create-invalid 2 "$M" object create -f "$T/badobj.yaml"
has object-create-invalid-field "$T/err" "labels[0]:"
n=$(grep -c '^moat: object create: ' "$T/err")
if [ "$n" -ge 2 ]; then ok object-create-invalid-all; else bad object-create-invalid-all "$n errors printed"; fi
expect object-delete-in-use 6 "$M" object delete web
has object-delete-in-use-msg "$T/err" 'referenced by rule "web-from-lb"'
expect object-delete 0 "$M" object delete cache -o json
py object-delete-json 'j["deleted"] == ["cache"]'

# --- rules
for f in json yaml; do
    expect "rule-list-$f" 0 "$M" rule list --cluster prod -o $f
    parses "rule-list-$f-parses" $f
done
expect rule-list-filter 0 "$M" rule list --cluster prod --action alert -o json
py rule-list-filter-json '{r["name"] for r in j["items"]} == {"db-watch","office-ssh"}'
expect rule-list-no-cluster 2 "$M" rule list
expect rule-get 0 "$M" rule get --cluster prod web-from-lb -o json
py rule-get-json 'j["name"] == "web-from-lb" and j["priority"] == 10'
printf 'name: web-from-office\nsource: office\ndestinations: [{object: web, ports: "443"}]\nprotocol: tcp\naction: alert\npriority: 40\n' >"$T/rule.yaml"
expect rule-create 0 "$M" rule create --cluster prod -f "$T/rule.yaml" -o json
py rule-create-json 'j["name"] == "web-from-office" and j["cluster"] == "prod"'
expect rule-update 0 "$M" rule update --cluster prod web-from-office --priority 45 -o json
py rule-update-json 'j["priority"] == 45'
expect rule-update-invalid 2 "$M" rule update --cluster prod web-from-office --priority 5000
has rule-update-invalid-field "$T/err" "priority:"
expect rule-disable 0 "$M" rule disable --cluster prod web-from-office allow-host -o json
py rule-disable-json 'len(j["items"]) == 2 and not any(r["enabled"] for r in j["items"])'
expect rule-enable 0 "$M" rule enable --cluster prod allow-host -o json
py rule-enable-json 'j["items"][0]["enabled"] is True'
expect rule-delete-system 6 "$M" rule delete --cluster prod allow-host
expect rule-delete 0 "$M" rule delete --cluster prod web-from-office -o json
py rule-delete-json 'j["deleted"] == ["web-from-office"]'
expect rule-get-missing 5 "$M" rule get --cluster prod 9999

# --- viewer tokens read but cannot write
expect viewer-read 0 env MOAT_TOKEN="$VIEWER" "$M" rule list --cluster prod
expect viewer-write 4 env MOAT_TOKEN="$VIEWER" "$M" cluster defense off prod
has viewer-write-msg "$T/err" "permission denied"
expect viewer-apply 4 env MOAT_TOKEN="$VIEWER" "$M" delete -f $P

# --- apply changes what differs
expect apply-after-change 0 "$M" apply -f $P
has apply-configured "$T/out" "rule/prod/web-from-lb unchanged"
"$M" rule update --cluster prod web-from-lb --priority 11 >/dev/null 2>&1
expect apply-reconfigure 0 "$M" apply -f $P
has apply-reconfigure-line "$T/out" "rule/prod/web-from-lb configured"
expect apply-reconfigure-again 0 "$M" apply -f $P
hasnt apply-reconfigure-idem "$T/out" "configured"

# --- an invalid file changes nothing
state "$T/before"
cat >"$T/invalid.yaml" <<'EOF'
kind: Cluster
name: qa
---
kind: NetworkObject
name: qa-web
namespace: qa
---
kind: DefenseRule
cluster: qa
name: broken
source: qa-web
destinations: [{object: nowhere}]
action: deny
priority: 0
EOF
expect apply-invalid 2 "$M" apply -f "$T/invalid.yaml"
has apply-invalid-errors "$T/err" 'priority: 0 is out of range'
same_state apply-invalid-no-change "$T/before"
expect delete-invalid 2 "$M" delete -f "$T/invalid.yaml"
same_state delete-invalid-no-change "$T/before"

# --- delete -f removes exactly what the file names
expect delete-file 0 "$M" delete -f $P
n=$(grep -c ' deleted$' "$T/out")
if [ "$n" -eq 13 ]; then ok delete-file-count; else bad delete-file-count "$n deleted, want 13: $(cat "$T/out")"; fi
expect delete-left-stage 0 "$M" cluster get stage
expect delete-gone-prod 5 "$M" cluster get prod
expect delete-objects-gone 0 "$M" object list -o json
py delete-objects-gone-json 'j["total"] == 0'
expect delete-again 0 "$M" delete -f $P -o json
py delete-again-absent 'all(r["result"] == "absent" for r in j["results"])'

# --- help for the new commands
for c in "cluster list" "cluster defense" "object delete" "rule enable" apply delete; do
    # shellcheck disable=SC2086 # two-word commands on purpose
    expect "help-$c" 0 "$M" help $c
    has "help-$c-usage" "$T/out" "usage: moat $c"
done
expect help-exit-codes-api 0 "$M" help exit-codes
has help-exit-codes-denied "$T/out" "4  the server refused the token"

finish
