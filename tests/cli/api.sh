#!/bin/sh
# End-to-end tests of the `moat` commands over moat-server's API: config
# precedence, errors and exit codes, cluster/object/rule/node/workload/alert
# commands with every output format, apply -f / delete -f, agents (register,
# heartbeat, workloads, events) feeding nodes, alerts and `moat status`,
# `moat alerts --follow`, `moat explain` against the server. Starts a real BUILD_DIR/moat-server on
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
FPID=
pass=0
fail=0

cleanup() {
    if [ -n "$FPID" ]; then
        kill "$FPID" 2>/dev/null
    fi
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
# state FILE: every cluster, object and rule of the server, as JSON lines; fields the
# server derives from node heartbeats (which move with time) are left out.
undrift() {
    python3 -c 'import json,sys
DERIVED = {"status", "enforcing", "abnormal", "abnormal_nodes", "nodes", "in_effect"}
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in DERIVED}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
print(json.dumps(strip(json.load(sys.stdin)), indent=1, sort_keys=True))'
}
state() {
    {
        "$M" cluster list -o json --limit 1000 | undrift
        "$M" object list -o json --limit 1000 | undrift
        for c in $("$M" cluster list -o json --limit 1000 | python3 -c 'import json,sys
for i in json.load(sys.stdin)["items"]: print(i["id"])'); do
            "$M" rule list --cluster "$c" -o json --limit 1000 | undrift
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
# --- agents (as tests/api/run.sh drives them): a node joins prod, beats, reports
# examples/inventory.yaml's workloads; nodes and workloads; join tokens
expect cluster-join-token 0 "$M" cluster join-token prod
JOIN=$(cat "$T/out")
case $JOIN in moat_*) ok cluster-join-token-printed ;; *) bad cluster-join-token-printed "$JOIN" ;; esac
expect cluster-join-token-json 0 "$M" cluster join-token prod -o json
py cluster-join-token-json-fields 'j["cluster"] == "prod" and j["join_token"].startswith("moat_")'
JOIN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["join_token"])' "$T/out")
expect cluster-join-token-missing 5 "$M" cluster join-token nope
# agent METHOD PATH BODY: an agent request with the node credential $AG; answer in $T/out
agent() {
    curl -s -o "$T/out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer ${AG:-}" \
        -H 'Content-Type: application/json' --data-binary "$3" "$URL/api/v1/agents/$2"
}
code=$(agent POST register "{\"cluster\":\"prod\",\"node\":\"node-1\",\"join_token\":\"$JOIN\",\"os\":\"Ubuntu 14.04\",\"kernel\":\"3.13.0-32-generic\",\"agent_version\":\"0.1.0\"}")
if [ "$code" = 201 ]; then ok agent-register; else bad agent-register "$code $(head -c 300 "$T/out")"; fi
AG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("token",""))' "$T/out" 2>/dev/null)
WL=$(python3 -c 'import json,sys,yaml
ws = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "Workload" and d.get("node") == "node-1"]
for w in ws:
    for k in ("kind", "cluster", "node"): w.pop(k, None)
print(json.dumps({"workloads": ws}))' examples/inventory.yaml)
code=$(agent PUT workloads "$WL")
if [ "$code" = 200 ]; then ok agent-workloads; else bad agent-workloads "$code $(head -c 300 "$T/out")"; fi
code=$(agent POST heartbeat '{"datapath":{"state":"enforcing","reason":""},"workload_count":5}')
if [ "$code" = 200 ]; then ok agent-heartbeat; else bad agent-heartbeat "$code $(head -c 300 "$T/out")"; fi
# --- detections kept by the server: quarantines and the threat list
# (a node's quarantines are spread only when its cluster's detection blocks: docs/server.md)
code=$(curl -s -o "$T/out" -w '%{http_code}' -X PATCH -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' "$URL/api/v1/clusters/prod" \
    --data-binary '{"detections":{"brute_force":{"action":"block"},"port_scan":{"action":"block"}}}')
if [ "$code" = 200 ]; then ok prod-detections-block; else bad prod-detections-block "$code $(head -c 300 "$T/out")"; fi
until=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
since=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)
code=$(agent PUT quarantines "{\"quarantines\":[{\"address\":\"192.0.2.66\",\"reason\":\"brute_force\",\"since\":\"$since\",\"until\":\"$until\"}]}")
if [ "$code" = 200 ]; then ok agent-quarantines; else bad agent-quarantines "$code $(head -c 300 "$T/out")"; fi
expect quarantine-list 0 "$M" quarantine list
has quarantine-list-row "$T/out" "192.0.2.66"
has quarantine-list-head "$T/out" "NODES"
expect quarantine-list-json 0 "$M" quarantine list --cluster prod -o json
py quarantine-list-fields 'j["total"] == 1 and j["items"][0]["cluster"] == "prod" and j["items"][0]["nodes"] == ["node-1"] and j["items"][0]["reason"] == "brute_force"'
expect quarantine-list-missing 5 "$M" quarantine list --cluster nope
expect quarantine-release-needs-cluster 2 "$M" quarantine release 192.0.2.66
expect quarantine-release-viewer 4 env MOAT_TOKEN="$VIEWER" "$M" quarantine release 192.0.2.66 --cluster prod
expect quarantine-release-bad 2 "$M" quarantine release nonsense --cluster prod
has quarantine-release-bad-msg "$T/err" "address"
expect quarantine-release 0 "$M" quarantine release 192.0.2.66 --cluster prod
has quarantine-release-msg "$T/out" "quarantine of 192.0.2.66 in cluster prod released on every node"
expect quarantine-release-again 5 "$M" quarantine release 192.0.2.66 --cluster prod
expect quarantine-list-after 0 "$M" quarantine list --cluster prod -o json
py quarantine-list-empty 'j["total"] == 0'
printf '# feed\n198.51.100.0/24 botnet\n203.0.113.9\n' >"$T/ti"
printf '198.51.100.0/24\n10.0.0.0/40\nbad\n' >"$T/ti-bad"
expect threat-intel-set 0 "$M" threat-intel set --cluster prod -f "$T/ti"
has threat-intel-set-msg "$T/out" "threat list of cluster prod: 2 prefixes, version"
expect threat-intel-set-bad 2 "$M" threat-intel set --cluster prod -f "$T/ti-bad"
has threat-intel-set-bad-line2 "$T/err" "line 2"
has threat-intel-set-bad-line3 "$T/err" "line 3"
expect threat-intel-get 0 "$M" threat-intel get --cluster prod
has threat-intel-kept "$T/out" "198.51.100.0/24 botnet"
has threat-intel-host "$T/out" "203.0.113.9/32 listed"
expect threat-intel-set-stdin 0 sh -c "\"$M\" threat-intel set --cluster prod -f - -o json <\"$T/ti\""
py threat-intel-set-json 'j["prefixes"] == 2 and len(j["version"]) == 16'
expect threat-intel-set-missing-file 2 "$M" threat-intel set --cluster prod -f "$T/none"
expect threat-intel-set-viewer 4 env MOAT_TOKEN="$VIEWER" "$M" threat-intel set --cluster prod -f "$T/ti"
expect threat-intel-get-missing-cluster 5 "$M" threat-intel get --cluster nope
expect threat-intel-delete 0 "$M" threat-intel delete --cluster prod
has threat-intel-delete-msg "$T/out" "threat list of cluster prod removed"
expect threat-intel-get-none 5 "$M" threat-intel get --cluster prod

for f in json yaml; do
    expect "node-list-$f" 0 "$M" node list -o $f
    parses "node-list-$f-parses" $f
    expect "workload-list-$f" 0 "$M" workload list -o $f
    parses "workload-list-$f-parses" $f
done
expect node-list 0 "$M" node list --cluster prod -o json
py node-list-json 'j["total"] == 1 and j["items"][0]["name"] == "node-1" and j["items"][0]["state"] == "enforcing"'
expect node-list-table 0 "$M" node list
has node-list-table-row "$T/out" "enforcing"
expect node-get-name 0 "$M" node get node-1 -o json
py node-get-name-json 'j["name"] == "node-1" and j["certified"] is True and j["agent_version"] == "0.1.0" and j["workload_count"] == 5'
NODE_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/out")
expect node-get-id 0 "$M" node get "$NODE_ID"
has node-get-table-state "$T/out" "state            enforcing"
has node-get-table-kernel "$T/out" "3.13.0-32-generic"
expect node-get-missing 5 "$M" node get node-9
expect node-get-missing-id 5 "$M" node get 9999
expect workload-list-filter 0 "$M" workload list --cluster prod --node node-1 --namespace shop -o json
py workload-list-filter-json '{w["name"] for w in j["items"]} == {"web-7d9f", "api-5c4b", "db-0"}'
expect workload-list-table 0 "$M" workload list
has workload-list-table-labels "$T/out" "app=web"

# --- explain against the server = explain against the same policy in files
for flow in "lb-0 web-7d9f 443 tcp" "lb-0 web-7d9f 8080 tcp" "web-7d9f db-0 5432 tcp" \
    "api-5c4b db-0 5432 tcp" "10.244.1.6 10.244.1.7 5432 tcp" "203.0.113.77 shop/api-5c4b 22 tcp" \
    "198.51.100.1 api-5c4b 22 tcp" "web-7d9f 169.254.169.254 80 tcp" "web-7d9f coredns-1 53 udp"; do
    # shellcheck disable=SC2086 # the flow's four words on purpose
    set -- $flow
    name="explain-server-$1-$2-$3"
    "$M" explain -f $P -i examples/inventory.yaml --from "$1" --to "$2" --port "$3" --proto "$4" -o json >"$T/files.json" 2>&1
    expect "$name" 0 "$M" explain --from "$1" --to "$2" --port "$3" --proto "$4" -o json
    if cmp -s "$T/files.json" "$T/out"; then ok "$name-same"; else bad "$name-same" "$(diff "$T/files.json" "$T/out" | head -6)"; fi
done
expect explain-server-cluster 0 "$M" explain --cluster prod --from lb-0 --to web-7d9f --port 443
has explain-server-cluster-rule "$T/out" "web-from-lb"
expect explain-server-no-cluster 5 "$M" explain --cluster nope --from lb-0 --to web-7d9f --port 443
expect explain-server-no-workload 2 "$M" explain --from nobody --to web-7d9f --port 443
expect explain-server-with-file 2 "$M" explain -f $P --cluster prod --from lb-0 --to web-7d9f --port 443

# --- events through the agent endpoint: alerts, protection status, alert status
ago() { python3 -c 'import datetime,sys; print((datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=float(sys.argv[1]))).strftime("%Y-%m-%dT%H:%M:%SZ"))' "$1"; }
SRC='"source":{"address":"10.244.1.2","port":40000,"namespace":"ingress","name":"lb-0","app":"lb"}'
DST='"destination":{"address":"10.244.1.5","port":8080,"namespace":"shop","name":"web-7d9f","app":"web"}'
code=$(agent POST events "{\"batch\":\"b1\",\"events\":[
 {\"time\":\"$(ago 0.01)\",\"kind\":\"policy\",\"rule\":{\"id\":3,\"name\":\"web-from-lb\"},\"configured_action\":\"block\",\"applied_action\":\"block\",\"protocol\":\"tcp\",$SRC,$DST,\"attempts\":3},
 {\"time\":\"$(ago 10)\",\"kind\":\"brute_force\",\"applied_action\":\"alert\",\"risk\":\"high\",$SRC,$DST},
 {\"time\":\"$(ago 100)\",\"kind\":\"spoofing\",\"applied_action\":\"block\",$SRC,$DST},
 {\"kind\":\"policy\",\"applied_action\":\"allow\",$SRC,$DST}]}")
if [ "$code" = 200 ]; then ok agent-events; else bad agent-events "$code $(head -c 300 "$T/out")"; fi
agent POST heartbeat '{}' >/dev/null # keep node-1 online (enforcing) for the status counts
code=$(agent PUT quarantines "{\"quarantines\":[{\"address\":\"192.0.2.77\",\"reason\":\"port_scan\",\"since\":\"$(ago 0.001)\",\"until\":\"$until\"}]}")
[ "$code" = 200 ] && ok agent-quarantine-for-status || bad agent-quarantine-for-status "$code $(head -c 300 "$T/out")"
expect status-json 0 "$M" status -o json
py status-json-alerts 'j["alerts"] == {"last_24h": 1, "last_30d": 2, "last_180d": 3}'
py status-json-clusters 'j["clusters"]["total"] == 1 and j["clusters"]["unprotected"] == 0'
py status-json-rules 'j["rules"]["total"] == 8 and j["rules"]["enabled"] == 8'
py status-json-newest 'len(j["newest"]) == 3 and j["newest"][0]["kind"] == "policy"'
py status-json-kinds 'j["alerts_by_kind_30d"]["policy"] == 1 and j["alerts_by_kind_30d"]["brute_force"] == 1 and j["alerts_by_kind_30d"]["spoofing"] == 0 and j["quarantines"] == {"active": 1}'
expect status-yaml 0 "$M" status -o yaml
parses status-yaml-parses yaml
expect status-table 0 "$M" status
has status-table-risks "$T/out" "1 in 24 hours, 2 in 30 days, 3 in 180 days"
has status-table-clusters "$T/out" "1 total, 0 unprotected"
has status-table-top-rule "$T/out" "web-from-lb (3)"
has status-table-rules "$T/out" "8 total, 8 enabled, 0 disabled, 0 suggested"
has status-table-kinds "$T/out" "by kind, 30 days   policy 1, brute_force 1"
has status-table-quarantines "$T/out" "quarantines        1 active"
has status-table-hourly "$T/out" "per hour (UTC)     24 hours, "
if grep -Eq '^  blocked +\|[ .:=+*#%@-]{24}\| 3, most 3 at [0-9]{2}:00$' "$T/out" &&
    grep -Eq '^  alerted +\| {24}\| 0$' "$T/out"; then
    ok status-table-hourly-bars
else
    bad status-table-hourly-bars "$(grep -A2 'per hour' "$T/out")"
fi
expect status-json-hourly-run 0 "$M" status -o json
py status-json-hourly 'len(j["hourly"]) == 24 and sum(h["blocked"] for h in j["hourly"]) == 3 and sum(h["alerted"] for h in j["hourly"]) == 0 and j["rules"]["suggested"] == 0'
expect status-cluster 0 "$M" status prod -o json
py status-cluster-json 'j["alerts"]["last_180d"] == 3'
expect status-cluster-missing 5 "$M" status nope
for f in json yaml; do
    expect "alert-list-$f" 0 "$M" alert list -o $f
    parses "alert-list-$f-parses" $f
done
expect alert-list-table 0 "$M" alert list
has alert-list-table-row "$T/out" "lb-0"
expect alert-list-kind 0 "$M" alert list --kind brute_force -o json
py alert-list-kind-json 'j["total"] == 1 and j["items"][0]["kind"] == "brute_force"'
expect alert-list-since 0 "$M" alert list --since 30d --action block -o json
py alert-list-since-json 'j["total"] == 1 and j["items"][0]["rule"]["name"] == "web-from-lb"'
expect alert-list-workload 0 "$M" alert list --workload shop/web-7d9f --cluster prod -o json
py alert-list-workload-json 'j["total"] == 3'
expect alert-list-bad-since 2 "$M" alert list --since yesterday
ALERT=$("$M" alert list --kind policy -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
expect alert-get 0 "$M" alert get "$ALERT" -o json
py alert-get-json "j['id'] == $ALERT and j['status'] == 'unhandled' and j['attempts'] == 3"
expect alert-get-missing 5 "$M" alert get 99999
expect alert-status 0 "$M" alert status "$ALERT" handled
has alert-status-line "$T/out" "alert $ALERT handled"
expect alert-status-get 0 "$M" alert get "$ALERT" -o json
py alert-status-changed 'j["status"] == "handled"'
expect alert-status-filter 0 "$M" alert list --status handled -o json
py alert-status-filter-json "j['total'] == 1 and j['items'][0]['id'] == $ALERT"
expect alert-status-json 0 "$M" alert status "$ALERT" ignored -o json
py alert-status-json-items 'j["items"][0]["status"] == "ignored"'
expect alert-status-bad 2 "$M" alert status "$ALERT" finished
expect alert-status-missing 5 "$M" alert status 99999 handled
expect viewer-alert-status 4 env MOAT_TOKEN="$VIEWER" "$M" alert status "$ALERT" handled
expect alerts 0 "$M" alerts
has alerts-line "$T/out" "attempts=3"
expect alerts-json 0 "$M" alerts -o json --limit 2
py alerts-json-limit 'len(j["items"]) == 2'

# --- alerts --follow prints an alert that arrives while it runs
: >"$T/follow" # exists before the background job starts: the wait below reads it at once
"$M" alerts --follow -o json >"$T/follow" 2>"$T/follow.err" &
FPID=$!
i=0
while [ "$(wc -l <"$T/follow")" -lt 3 ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ "$(wc -l <"$T/follow")" -eq 3 ]; then ok alerts-follow-first; else bad alerts-follow-first "$(cat "$T/follow" "$T/follow.err")"; fi
code=$(agent POST events "{\"batch\":\"b2\",\"events\":[{\"kind\":\"port_scan\",\"applied_action\":\"alert\",\"risk\":\"high\",\"source\":{\"address\":\"198.51.100.9\"},\"destination\":{\"address\":\"10.244.1.5\",\"port\":22}}]}")
if [ "$code" = 200 ]; then ok agent-events-2; else bad agent-events-2 "$code"; fi
i=0
until grep -q port_scan "$T/follow" || [ $i -ge 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
kill -INT "$FPID" 2>/dev/null
wait "$FPID"
frc=$?
FPID=
if grep -q port_scan "$T/follow"; then ok alerts-follow-new; else bad alerts-follow-new "$(cat "$T/follow" "$T/follow.err")"; fi
if [ "$frc" -eq 0 ]; then ok alerts-follow-sigint; else bad alerts-follow-sigint "exit $frc"; fi
n=$(wc -l <"$T/follow")
if [ "$n" -eq 4 ]; then ok alerts-follow-once; else bad alerts-follow-once "$n lines: $(cat "$T/follow")"; fi
if python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$T/follow"; then ok alerts-follow-json-lines; else bad alerts-follow-json-lines "$(head -3 "$T/follow")"; fi

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
expect cluster-defense-table 0 "$M" cluster defense off stage
has cluster-defense-table-line "$T/out" "cluster stage defense off"
expect cluster-defense-missing 5 "$M" cluster defense on stage nope
has cluster-defense-missing-msg "$T/err" 'no cluster "nope"'
expect cluster-defense-missing-get 0 "$M" cluster get stage -o json
py cluster-defense-all-or-none 'j["defense"] == "off"'
expect cluster-defense-all 0 "$M" cluster defense on --all -o json
py cluster-defense-all-json 'j["total"] == 2 and sorted(c["id"] for c in j["items"]) == ["prod", "stage"] and all(c["defense"] == "on" for c in j["items"])'
expect cluster-defense-all-and-names 2 "$M" cluster defense on --all stage
expect cluster-defense-no-cluster 2 "$M" cluster defense on
expect viewer-cluster-defense-all 4 env MOAT_TOKEN="$VIEWER" "$M" cluster defense off --all

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
expect object-list-image 0 "$M" object list --image docker.io/library/nginx:1.27 -o json
py object-list-image-json '[o["name"] for o in j["items"]] == ["web"]'
expect object-list-label 0 "$M" object list --label tier=db -o json
py object-list-label-json '[o["name"] for o in j["items"]] == ["db"]'
expect object-list-image-label 0 "$M" object list --image nginx:1.27 --label tier=db -o json
py object-list-image-label-json 'j["total"] == 0'
expect object-list-label-table 0 "$M" object list --label tier:frontend --namespace shop
has object-list-label-table-row "$T/out" "web"
expect object-list-bad-image 2 "$M" object list --image "a b"
has object-list-bad-image-msg "$T/err" "image:"
expect object-list-bad-label 2 "$M" object list --label tier
has object-list-bad-label-msg "$T/err" "label:"
for o in tmp1 tmp2 tmp3 tmp4; do
    printf '{"name": "%s", "namespace": "tmp"}\n' "$o" >"$T/$o.json"
    "$M" object create -f "$T/$o.json" >/dev/null 2>&1
done
expect object-delete-unknown-name 5 "$M" object delete tmp1 nope
has object-delete-unknown-name-msg "$T/err" 'no object named "nope"'
expect object-delete-unknown-id 5 "$M" object delete tmp1 99999
has object-delete-unknown-id-msg "$T/err" "no object with id 99999"
expect object-delete-one-in-use 6 "$M" object delete tmp1 web tmp2
has object-delete-one-in-use-msg "$T/err" 'object "web" is referenced by rule "web-from-lb"'
expect object-delete-all-or-none 0 "$M" object list --namespace tmp -o json
py object-delete-all-or-none-json 'j["total"] == 4'
expect viewer-object-delete 4 env MOAT_TOKEN="$VIEWER" "$M" object delete tmp1
expect object-delete-many 0 "$M" object delete tmp1 tmp2 -o json
py object-delete-many-json 'j["deleted"] == ["tmp1", "tmp2"]'
TMP4=$("$M" object get tmp4 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect object-delete-same-twice 0 "$M" object delete tmp3 tmp4 "$TMP4"
has object-delete-table "$T/out" "object tmp3 deleted"
expect object-delete-many-gone 0 "$M" object list --namespace tmp -o json
py object-delete-many-gone-json 'j["total"] == 0'
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
# rule list --id/--destination/--port (the server's id, destination and port filters)
expect rule-list-port 0 "$M" rule list --cluster prod --port 5432 -o json
py rule-list-port-json 'j["total"] == 4 and {r["name"] for r in j["items"]} == {"allow-host","db-from-api","db-watch","no-metadata"}'
expect rule-list-port-range 0 "$M" rule list --cluster prod --port 8085 -o json
py rule-list-port-range-json '{r["name"] for r in j["items"]} == {"allow-host","api-from-web","no-metadata"}'
expect rule-list-destination 0 "$M" rule list --cluster prod --destination db -o json
py rule-list-destination-json '{r["name"] for r in j["items"]} == {"db-from-api","db-watch"}'
expect rule-list-destination-port-action 0 "$M" rule list --cluster prod --destination db --port 5432 --action alert -o json
py rule-list-destination-port-action-json '[r["name"] for r in j["items"]] == ["db-watch"]'
expect rule-list-destination-table 0 "$M" rule list --cluster prod --destination db
has rule-list-destination-table-row "$T/out" "db-from-api"
hasnt rule-list-destination-table-other "$T/out" "web-from-lb"
has rule-list-table-in-effect "$T/out" "IN EFFECT"
if grep 'db-from-api' "$T/out" | grep -qE ' [0-9]+/[0-9]+ *$'; then ok rule-list-table-in-effect-k-of-n; else bad rule-list-table-in-effect-k-of-n "$(cat "$T/out")"; fi
# an object named by digits is found by its name first (as the server resolves references)
printf '{"name":"4","namespace":"digits"}' >"$T/digits.json"
expect object-named-4-create 0 "$M" object create -f "$T/digits.json"
expect object-get-4-by-name 0 "$M" object get 4 -o json
py object-get-4-by-name-json 'j["name"] == "4" and j["namespace"] == "digits"'
expect object-delete-4-by-name 0 "$M" object delete 4
expect object-get-4-gone-then-id 0 "$M" object get 4 -o json
py object-get-4-then-by-id 'j["id"] == 4 and j["name"] != "4"'
WLB=$("$M" rule get --cluster prod web-from-lb -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
DBW=$("$M" rule get --cluster prod db-watch -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect rule-list-id 0 "$M" rule list --cluster prod --id "$WLB" -o json
py rule-list-id-json '[r["name"] for r in j["items"]] == ["web-from-lb"]'
expect rule-list-ids 0 "$M" rule list --cluster prod --id="$DBW,$WLB" --port 443 -o json
py rule-list-ids-json 'j["total"] == 1 and [r["name"] for r in j["items"]] == ["web-from-lb"]'
expect rule-list-port-paged 0 "$M" rule list --cluster prod --port 5432 --limit 2 -o json
py rule-list-port-paged-json 'j["total"] == 4 and len(j["items"]) == 2'
expect rule-list-bad-port 2 "$M" rule list --cluster prod --port 70000
has rule-list-bad-port-msg "$T/err" "port: "
expect rule-list-bad-id 2 "$M" rule list --cluster prod --id 1,x
has rule-list-bad-id-msg "$T/err" "id: "
expect rule-list-port-needs-value 2 "$M" rule list --cluster prod --port
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

# --- apply/delete against the server's state: files with only some documents
expect apply-state-setup 0 "$M" apply -f $P
cat >"$T/rule-only.yaml" <<'EOF'
kind: DefenseRule
cluster: prod
name: web-from-any
source: any
destinations: [{object: web, ports: 8443}]
protocol: tcp
action: alert
priority: 60
EOF
expect apply-rule-only 0 "$M" apply -f "$T/rule-only.yaml"
has apply-rule-only-created "$T/out" "rule/prod/web-from-any created"
expect apply-rule-only-there 0 "$M" rule get --cluster prod web-from-any -o json
py apply-rule-only-fields 'j["source"] == "any" and j["priority"] == 60 and j["enabled"] is True'
expect apply-rule-only-again 0 "$M" apply -f "$T/rule-only.yaml"
has apply-rule-only-unchanged "$T/out" "rule/prod/web-from-any unchanged"
expect delete-rule-only 0 "$M" delete -f "$T/rule-only.yaml"
has delete-rule-only-deleted "$T/out" "rule/prod/web-from-any deleted"
expect delete-rule-only-gone 5 "$M" rule get --cluster prod web-from-any
# a delete whose result the server would refuse: an object a remaining rule uses
state "$T/before"
printf 'kind: NetworkObject\nname: web\nnamespace: shop\n' >"$T/del-web.yaml"
expect delete-in-use-refused 6 "$M" delete -f "$T/del-web.yaml"
has delete-in-use-refused-msg "$T/err" 'rules "web-from-lb".destinations[0].object: no object named "web"'
has delete-in-use-refused-nothing "$T/err" 'refused (HTTP 409): nothing was changed'
same_state delete-in-use-no-change "$T/before"

# --- apply changes only the fields the file gives (merge patch)
expect apply-partial-defense 0 "$M" cluster get prod -o json
py apply-partial-defense-on 'j["defense"] == "on"'
printf 'kind: Cluster\nname: prod\n' >"$T/prod-only.yaml"
expect apply-partial-cluster 0 "$M" apply -f "$T/prod-only.yaml"
has apply-partial-cluster-unchanged "$T/out" "cluster/prod unchanged"
expect apply-partial-cluster-get 0 "$M" cluster get prod -o json
py apply-partial-cluster-kept 'j["defense"] == "on" and j["mode"] == "protect"'
printf 'kind: Cluster\nname: prod\ndefense: off\n' >"$T/prod-off.yaml"
expect apply-partial-defense-off 0 "$M" apply -f "$T/prod-off.yaml" -o json
py apply-partial-defense-off-json '[(r["kind"], r["name"], r["result"]) for r in j["results"]] == [("Cluster", "prod", "configured")]'
expect apply-partial-defense-off-get 0 "$M" cluster get prod -o json
py apply-partial-defense-off-value 'j["defense"] == "off" and j["default_action"] == "block"'
"$M" cluster update prod --description "set by update" >/dev/null 2>&1
"$M" rule update --cluster prod web-from-lb --description "rule note" >/dev/null 2>&1
expect apply-keeps-description 0 "$M" apply -f $P
has apply-keeps-description-defense "$T/out" "cluster/prod configured"
has apply-keeps-description-rule "$T/out" "rule/prod/web-from-lb unchanged"
expect apply-keeps-description-get 0 "$M" cluster get prod -o json
py apply-keeps-description-value 'j["description"] == "set by update" and j["defense"] == "on"'
expect apply-keeps-rule-description 0 "$M" rule get --cluster prod web-from-lb -o json
py apply-keeps-rule-description-value 'j["description"] == "rule note"'

# --- numeric object references are refused: ids differ between files and the server
state "$T/before"
cat >"$T/numeric.yaml" <<'EOF'
kind: DefenseRule
cluster: prod
name: by-id
source: 4
destinations: [{object: "5", ports: 80}, {object: any}]
protocol: tcp
action: allow
priority: 70
EOF
expect apply-numeric-ref 2 "$M" apply -f "$T/numeric.yaml"
has apply-numeric-ref-source "$T/err" "numeric.yaml:4: rules \"by-id\": source: \"4\" is an object id"
has apply-numeric-ref-dest "$T/err" 'destinations[0].object: "5" is an object id'
hasnt apply-numeric-ref-any "$T/err" "destinations[1]"
same_state apply-numeric-ref-no-change "$T/before"
printf '[{"kind": "DefenseRule", "cluster": "prod", "name": "j", "source": 4, "destinations": [{"object": "web"}], "action": "allow", "priority": 70}]\n' >"$T/numeric.json"
expect apply-numeric-ref-json 2 "$M" apply -f "$T/numeric.json"
has apply-numeric-ref-json-msg "$T/err" 'document 1: rules "j": source: "4" is an object id'

# --- files from a pipe are read once
expect apply-stdin 0 sh -c "cat '$T/rule-only.yaml' | '$M' apply -f -"
has apply-stdin-created "$T/out" "rule/prod/web-from-any created"
expect apply-stdin-again 0 sh -c "cat '$T/rule-only.yaml' | '$M' apply -f /dev/stdin"
has apply-stdin-unchanged "$T/out" "rule/prod/web-from-any unchanged"
expect delete-stdin 0 sh -c "cat '$T/rule-only.yaml' | '$M' delete -f -"
has delete-stdin-deleted "$T/out" "rule/prod/web-from-any deleted"
expect delete-stdin-gone 5 "$M" rule get --cluster prod web-from-any
expect apply-stdin-invalid 2 sh -c "cat '$T/numeric.yaml' | '$M' apply -f -"
has apply-stdin-invalid-name "$T/err" "stdin:4: rules"

# --- string fields are sent as strings; a refusal says why
printf 'kind: NetworkObject\nname: y2024\nnamespace: 2024\nlabels: {year: 2024}\n' >"$T/y2024.yaml"
expect apply-viewer-refused 4 env MOAT_TOKEN="$VIEWER" "$M" apply -f "$T/y2024.yaml"
has apply-viewer-refused-msg "$T/err" "apply: Authorization: this needs the admin role"
expect apply-int-namespace 0 "$M" apply -f "$T/y2024.yaml"
has apply-int-namespace-created "$T/out" "object/y2024 created"
expect apply-int-namespace-get 0 "$M" object get y2024 -o json
py apply-int-namespace-string 'j["namespace"] == "2024" and j["labels"] == {"year": "2024"}'
expect apply-int-namespace-again 0 "$M" apply -f "$T/y2024.yaml"
has apply-int-namespace-unchanged "$T/out" "object/y2024 unchanged"
printf 'name: y2025\nnamespace: 2025\n' >"$T/y2025.yaml"
expect object-create-int-namespace 0 "$M" object create -f "$T/y2025.yaml" -o json
py object-create-int-namespace-json 'j["namespace"] == "2025"'
expect delete-int-namespace 0 "$M" delete -f "$T/y2024.yaml"
has delete-int-namespace-deleted "$T/out" "object/y2024 deleted"

# --- join tokens with an expiry and uses, node delete, the audit trail (issue 12)
expect join-token-issue 0 "$M" cluster join-token prod --ttl 1h --uses 1 --description cli-test
JT=$(cat "$T/out")
if [ "${#JT}" -eq 69 ]; then ok join-token-printed; else bad join-token-printed "got '$JT'"; fi
expect join-token-list 0 "$M" cluster join-token prod --list -o json
py join-token-list-fields 'any(t["uses"] == 1 and t["used"] == 0 and t["description"] == "cli-test" and not t["expired"] and "join_token" not in t and "hash" not in t for t in j["items"])'
JTID=$(python3 -c 'import json,sys; print([t["id"] for t in json.load(open(sys.argv[1]))["items"] if t.get("description") == "cli-test"][0])' "$T/out")
expect join-token-list-table 0 "$M" cluster join-token prod --list
has join-token-list-head "$T/out" "EXPIRES"
reg() {
    curl -s -o "$T/reg" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"cluster\":\"prod\",\"node\":\"$1\",\"join_token\":\"$JT\"}" "$URL/api/v1/agents/register"
}
[ "$(reg n-cli)" = 201 ] && ok join-token-registers || bad join-token-registers "$(cat "$T/reg")"
[ "$(reg n-cli-2)" = 401 ] && ok join-token-used-up || bad join-token-used-up "$(cat "$T/reg")"
expect join-token-list-used 0 "$M" cluster join-token prod --list -o json
py join-token-list-used-up 'any(t["id"] == '"$JTID"' and t["used"] == 1 and t["used_up"] for t in j["items"])'
expect join-token-revoke 0 "$M" cluster join-token prod --revoke "$JTID"
has join-token-revoke-msg "$T/out" "join token $JTID of cluster prod revoked"
expect join-token-revoke-again 5 "$M" cluster join-token prod --revoke "$JTID"
expect join-token-bad-ttl 2 "$M" cluster join-token prod --ttl 2y
has join-token-bad-ttl-msg "$T/err" "ttl"
expect join-token-bad-uses 2 "$M" cluster join-token prod --uses -1
expect join-token-two-things 2 "$M" cluster join-token prod --list --revoke 1
expect join-token-viewer 4 env MOAT_TOKEN="$VIEWER" "$M" cluster join-token prod
expect node-delete 0 "$M" node delete n-cli --cluster prod
has node-delete-msg "$T/out" "node n-cli of cluster prod deleted"
expect node-delete-again 5 "$M" node delete n-cli --cluster prod
expect node-delete-viewer 5 env MOAT_TOKEN="$VIEWER" "$M" node delete n-cli --cluster prod
expect audit-list 0 "$M" audit list --kind node -o json
py audit-list-node 'any(r["action"] == "delete" and r["name"] == "n-cli" and r["actor"].startswith("token:") for r in j["items"]) and any(r["action"] == "register" and r["actor"] == "join-token:'"$JTID"'" for r in j["items"])'
expect audit-list-since 0 "$M" audit list --kind join_token --since 1h -o json
py audit-list-join-tokens 'sorted({r["action"] for r in j["items"]}) == ["create", "revoke"]'
expect audit-list-table 0 "$M" audit list --limit 3
has audit-list-head "$T/out" "ACTOR"
expect audit-list-bad-since 2 "$M" audit list --since yesterday

# --- help for the new commands
for c in "cluster list" "cluster defense" "object delete" "rule enable" apply delete \
    "node list" "node get" "node delete" "workload list" "alert list" "alert get" \
    "alert status" alerts status "cluster join-token" "audit list" "quarantine list" \
    "quarantine release" "threat-intel set" "threat-intel get" "threat-intel delete"; do
    # shellcheck disable=SC2086 # two-word commands on purpose
    expect "help-$c" 0 "$M" help $c
    has "help-$c-usage" "$T/out" "usage: moat $c"
done
expect help-exit-codes-api 0 "$M" help exit-codes
has help-exit-codes-denied "$T/out" "4  the server refused the token"

finish
