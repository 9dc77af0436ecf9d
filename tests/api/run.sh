#!/bin/sh
# API tests: starts a real moat-server (BUILD_DIR/moat-server) on 127.0.0.1
# with a free port and a temporary data folder, drives every route with curl
# and reads the answers with python3. Prints `ok NAME` per check and the
# closing line `N passed, N failed`; exits 0 only when nothing failed.
# Usage: tests/api/run.sh BUILD_DIR [sqlite|postgresql]
# The store is a parameter: with `postgresql` every check runs against a
# throwaway PostgreSQL server (tests/pg/pg.sh), a database per data folder,
# with the same expectations; the few checks that look inside SQLite's file
# have PostgreSQL equivalents or say that they do not apply.
set -u
B=${1:?build dir}
STORE=${2:-sqlite}
S=$B/moat-server
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d)
PASS=0
FAIL=0
PID=
URL=
SERVER_ARGS="--heartbeat-interval 2" # a node is offline after 6 s without a heartbeat
DATA=$T/data                          # start() serves this folder

cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    [ "$STORE" = postgresql ] && pg_stop
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() {
    PASS=$((PASS + 1))
    echo "ok $1"
}
nok() {
    FAIL=$((FAIL + 1))
    echo "FAIL $1: $2"
}

for tool in curl python3; do
    command -v "$tool" >/dev/null || {
        echo "api: $tool is missing (make deps)"
        echo "0 passed, 1 failed"
        exit 1
    }
done
[ -x "$S" ] || {
    echo "api: $S is not built"
    echo "0 passed, 1 failed"
    exit 1
}

case "$STORE" in
sqlite) ;;
postgresql)
    . "$ROOT/tests/pg/pg.sh"
    if ! pg_start >"$T/pg.log" 2>&1; then
        echo "api: cannot start a PostgreSQL server: $(tail -5 "$T/pg.log")"
        echo "0 passed, 1 failed"
        exit 1
    fi
    ;;
*)
    echo "api: store '$STORE': sqlite or postgresql"
    echo "0 passed, 1 failed"
    exit 1
    ;;
esac
# store_opt DIR: the options that name the store of data folder DIR (a database
# named after the folder with PostgreSQL). Expanded unquoted: no blank in either.
store_opt() {
    if [ "$STORE" = sqlite ]; then
        echo "--data $1"
    else
        db=moat_$(basename "$1" | tr -c 'a-zA-Z0-9\n' _)
        pg_url "$db" >/dev/null || return 1
        echo "--database postgresql:///$db?host=$PG_DIR&port=$PG_PORT&user=postgres"
    fi
}
# store_holds TEXT DIR: true when TEXT appears anywhere in the store of DIR.
store_holds() {
    if [ "$STORE" = sqlite ]; then
        grep -q "$1" "$2/moat.db" "$2/moat.db-wal" 2>/dev/null
    else
        pg_as "$PG_BIN/pg_dump" -h "$PG_DIR" -p "$PG_PORT" "moat_$(basename "$2")" | grep -q "$1"
    fi
}

# Starts the server and waits (bounded) until it prints its port.
start() {
    : >"$T/log"
    # shellcheck disable=SC2086
    "$S" --listen 127.0.0.1:0 $(store_opt "$DATA") $SERVER_ARGS >"$T/log" 2>&1 &
    PID=$!
    i=0
    port=
    while [ $i -lt 200 ]; do
        port=$(sed -n 's/^moat-server: listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$T/log")
        [ -n "$port" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    URL=http://127.0.0.1:$port
    [ -n "$port" ]
}

# Stops the server with SIGTERM; true when it exited 0 (no sanitizer report).
stop() {
    kill "$PID" 2>/dev/null
    wait "$PID"
    rc=$?
    PID=
    [ "$rc" -eq 0 ] && ! grep -q 'Sanitizer' "$T/log"
}

# req METHOD PATH [BODY|@FILE] [TOKEN]: the status goes to $CODE, the body to $T/out.
req() {
    tok=${4-$ADMIN}
    set -- "$1" "$2" "${3-}"
    if [ -n "$3" ]; then
        case "$3" in
        @*) cp "${3#@}" "$T/in" ;;
        *) printf '%s' "$3" >"$T/in" ;;
        esac
        CODE=$(curl -s -o "$T/out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $tok" \
            -H 'Content-Type: application/json' --data-binary @"$T/in" "$URL$2")
    else
        CODE=$(curl -s -o "$T/out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $tok" \
            "$URL$2")
    fi
}

# py EXPR: evaluates a Python expression with `j` = the last answer's JSON.
py() {
    python3 -c "
import json, sys
try:
    j = json.load(open('$T/out'))
except Exception:
    j = None
sys.exit(0 if ($1) else 1)" 2>/dev/null
}

# check NAME STATUS [EXPR]: the last answer had STATUS (and EXPR holds).
check() {
    if [ "$CODE" != "$2" ]; then
        nok "$1" "status $CODE, wanted $2: $(head -c 300 "$T/out")"
    elif [ -n "${3-}" ] && ! py "$3"; then
        nok "$1" "unexpected answer: $(head -c 300 "$T/out")"
    else
        ok "$1"
    fi
}

# An error list naming field F, each entry with a non-empty message.
err_field() {
    echo "all(e['message'] for e in j['errors']) and any(e['field'] == '$1' for e in j['errors'])"
}

# snapshot FILE: every cluster, object and rule as the API lists them.
snapshot() {
    : >"$1"
    for p in /api/v1/clusters /api/v1/objects /api/v1/clusters/prod/rules; do
        req GET "$p?limit=1000"
        cat "$T/out" >>"$1"
    done
}

# ---------- routes vs OpenAPI ----------
"$S" routes | awk '{print $1, $2}' | sort >"$T/routes"
python3 - "$ROOT/docs/api/openapi.yaml" >"$T/openapi" <<'PY'
import re, sys
path = None
for line in open(sys.argv[1]):
    m = re.match(r'^  (/\S*):\s*$', line)
    if m:
        path = m.group(1)
        continue
    m = re.match(r'^    (get|put|post|patch|delete):', line)
    if m and path:
        print(m.group(1).upper(), path)
    if re.match(r'^\S', line):
        path = None
PY
sort -o "$T/openapi" "$T/openapi"
if [ -s "$T/routes" ] && diff "$T/routes" "$T/openapi" >"$T/diff"; then
    ok "openapi lists every route"
else
    nok "openapi lists every route" "$(cat "$T/diff")"
fi

# ---------- tokens and start ----------
mkdir -p "$T/data"
ADMIN=$("$S" token create $(store_opt "$T/data") --role admin)
VIEWER=$("$S" token create $(store_opt "$T/data") --role viewer)
if [ "${#ADMIN}" -eq 69 ] && [ "${#VIEWER}" -eq 69 ] && [ "$ADMIN" != "$VIEWER" ]; then
    ok "token create"
else
    nok "token create" "tokens '$ADMIN' '$VIEWER'"
fi
"$S" token create $(store_opt "$T/data") --role root >/dev/null 2>&1
[ $? -eq 2 ] && ok "token create rejects unknown role" || nok "token create rejects unknown role" ""
if ! start; then
    nok "server starts" "$(cat "$T/log")"
    echo "$PASS passed, $FAIL failed"
    exit 1
fi
ok "server starts"
if store_holds "$ADMIN" "$T/data"; then
    nok "tokens stored hashed" "token in clear in the store"
else
    ok "tokens stored hashed"
fi

# ---------- auth ----------
req GET /healthz "" ""
check "healthz without token" 200 "j['status'] == 'ok'"
req GET /api/v1/clusters "" ""
check "no token 401" 401 "$(err_field Authorization)"
req GET /api/v1/clusters "" "moat_$(printf '%064d' 0)"
check "bad token 401" 401
req GET /api/v1/clusters "" "$VIEWER"
check "viewer reads" 200 "j == {'items': [], 'total': 0}"
req POST /api/v1/clusters '{"name":"prod"}' "$VIEWER"
check "viewer write 403" 403 "$(err_field Authorization)"
req GET /api/v1/nothing
check "unknown path 404" 404
req DELETE /api/v1/clusters
check "wrong method 405" 405

# ---------- clusters ----------
req POST /api/v1/clusters '{"name":"prod"}'
check "cluster create" 201 "j['id'] == 'prod' and j['defense'] == 'off' and j['mode'] == 'protect' and j['default_action'] == 'block'"
req POST /api/v1/clusters '{"kind":"Cluster","name":"dev","defense":"on","mode":"monitor"}'
check "cluster create with kind" 201 "j['defense'] == 'on' and j['mode'] == 'monitor'"
req POST /api/v1/clusters '{"name":"prod"}'
check "cluster duplicate 409" 409 "$(err_field name)"
req POST /api/v1/clusters '{"name":"Bad Name!","mode":"loud","default_action":5}'
check "cluster validation" 400 "$(err_field name) and $(err_field mode) and $(err_field default_action)"
req POST /api/v1/clusters '{"name":"x","detections":{"brute_force":{"threshold":"many"}}}'
check "cluster detections validation" 400 "$(err_field detections.brute_force.threshold)"
req GET /api/v1/clusters
check "cluster list" 200 "j['total'] == 2 and [c['id'] for c in j['items']] == ['prod', 'dev']"
req GET '/api/v1/clusters?mode=monitor'
check "cluster list filter" 200 "j['total'] == 1 and j['items'][0]['name'] == 'dev'"
req GET '/api/v1/clusters?defense=yes&default_action=deny'
check "cluster filters outside their values 400" 400 "[e['field'] for e in j['errors']] == ['defense', 'default_action']"
req GET /api/v1/clusters/prod
check "cluster get" 200 "j['name'] == 'prod'"
req GET /api/v1/clusters/nope
check "cluster get 404" 404
req PATCH /api/v1/clusters/prod '{"defense":"on","detections":{"spoofing":{"enabled":false}}}'
check "cluster patch defense" 200 "j['defense'] == 'on' and j['detections']['spoofing']['enabled'] is False"
req PATCH /api/v1/clusters/prod '{"mode":"watch"}'
check "cluster patch invalid 400" 400 "$(err_field mode)"
req PUT /api/v1/clusters/prod '{"name":"other"}'
check "cluster rename 400" 400 "$(err_field name)"
req PUT /api/v1/clusters/prod '{"defense":"on","default_action":"alert"}'
check "cluster put" 200 "j['default_action'] == 'alert' and 'detections' not in j"
req PATCH /api/v1/clusters/nope '{"defense":"on"}'
check "cluster patch 404" 404

# ---------- objects ----------
req POST /api/v1/objects '{"name":"web","namespace":"shop","app":"web*","images":["nginx:*"],"labels":["tier=frontend"]}'
check "object create" 201 "j['id'] >= 4 and j['name'] == 'web'"
WEB=$(python3 -c "import json;print(json.load(open('$T/out'))['id'])")
req POST /api/v1/objects '{"name":"lb","namespace":"shop","app":"lb"}'
check "object create 2" 201
req POST /api/v1/objects '{"name":"db","namespace":"data","cluster":"dev"}'
check "object create restricted" 201 "j['cluster'] == 'dev'"
req POST /api/v1/objects '{"name":"office","cidrs":["203.0.113.0/24"]}'
check "object create ipblock" 201
req POST /api/v1/objects '{"name":"web","namespace":"x"}'
check "object duplicate 409" 409 "$(err_field name)"
req POST /api/v1/objects '{"name":"bad","namespace":"shop","labels":["app==x"]}'
check "object labels validation" 400 "$(err_field 'labels[0]')"
req POST /api/v1/objects '{"name":"bad","namespace":5}'
check "object wrong type 400" 400 "$(err_field namespace)"
req POST /api/v1/objects '{"name":"bad","namespace":"shop","colour":"red"}'
check "object unknown field 400" 400 "$(err_field colour)"
req POST /api/v1/objects '{"name":"bad","namespace":"shop","cluster":"nope"}'
check "object unknown cluster 400" 400 "$(err_field cluster)"
req POST /api/v1/objects '{"name":"any","namespace":"shop"}'
check "object built-in name 400" 400 "$(err_field name)"
req POST /api/v1/objects '{"name":"bad","namespace":"shop","id":77}'
check "object id is the server's" 400 "$(err_field id)"
req GET "/api/v1/objects/$WEB"
check "object get" 200 "j['name'] == 'web' and j['id'] == $WEB"
req GET /api/v1/objects/9999
check "object get 404" 404
req GET /api/v1/objects/abc
check "object get bad id 404" 404
req GET '/api/v1/objects?namespace=shop'
check "object filter namespace" 200 "j['total'] == 2 and {o['name'] for o in j['items']} == {'web', 'lb'}"
req GET '/api/v1/objects?app=lb'
check "object filter app" 200 "j['total'] == 1 and j['items'][0]['name'] == 'lb'"
req GET '/api/v1/objects?cluster=dev'
check "object filter cluster" 200 "j['total'] == 1 and j['items'][0]['name'] == 'db'"
req GET '/api/v1/objects?name=office'
check "object filter name" 200 "j['total'] == 1"
req GET '/api/v1/objects?limit=2&offset=1'
check "object paging" 200 "j['total'] == 4 and [o['name'] for o in j['items']] == ['lb', 'db']"
req GET '/api/v1/objects?limit=2&offset=3'
check "object paging last page" 200 "j['total'] == 4 and [o['name'] for o in j['items']] == ['office']"
req GET '/api/v1/objects?limit=0'
check "paging bad limit 400" 400 "$(err_field limit)"
req GET '/api/v1/objects?offset=-1'
check "paging bad offset 400" 400 "$(err_field offset)"
req GET '/api/v1/objects?colour=red'
check "unknown filter 400" 400 "$(err_field colour)"
req PATCH "/api/v1/objects/$WEB" '{"app":null,"description":"the shop front"}'
check "object patch" 200 "'app' not in j and j['description'] == 'the shop front'"
req PUT "/api/v1/objects/$WEB" '{"name":"web","namespace":"shop","app":"web*"}'
check "object put" 200 "j['app'] == 'web*' and 'description' not in j"
req PUT "/api/v1/objects/$WEB" '{"name":"lb","namespace":"shop"}'
check "object rename onto another 409" 409
req PUT /api/v1/objects/9999 '{"name":"zz","namespace":"shop"}'
check "object put 404" 404

# ---------- rules ----------
req GET /api/v1/clusters/prod/rules
check "system rules created" 200 "j['total'] == 2 and {r['name'] for r in j['items']} == {'allow-host', 'allow-cluster-dns'} and all(r['type'] == 'system' and r['priority'] == 1000 for r in j['items'])"
SYS=$(python3 -c "import json;print([r['id'] for r in json.load(open('$T/out'))['items'] if r['name']=='allow-host'][0])")
req POST /api/v1/clusters/prod/rules '{"name":"web-from-lb","source":"lb","destinations":[{"object":"web","ports":"80/80,443/443"}],"protocol":"tcp","action":"allow","priority":10}'
check "rule create" 201 "j['enabled'] is True and j['type'] == 'custom' and j['cluster'] == 'prod' and j['protocol'] == 'tcp'"
RULE=$(python3 -c "import json;print(json.load(open('$T/out'))['id'])")
req POST /api/v1/clusters/prod/rules "{\"name\":\"office-web\",\"source\":\"office\",\"destinations\":[{\"object\":\"$WEB\"}],\"action\":\"alert\",\"priority\":20}"
check "rule create by object id" 201 "j['protocol'] == 'any'"
RULE2=$(python3 -c "import json;print(json.load(open('$T/out'))['id'])")
req POST /api/v1/clusters/prod/rules '{"name":"web-from-lb","source":"lb","destinations":[{"object":"web"}],"action":"allow","priority":10}'
check "rule duplicate 409" 409 "$(err_field name)"
req POST /api/v1/clusters/prod/rules '{"name":"bad","source":"lb","destinations":[{"object":"web","ports":"80/90,85/100"}],"action":"drop","priority":1001}'
check "rule validation" 400 "$(err_field destinations[0].ports) and $(err_field action) and $(err_field priority)"
req POST /api/v1/clusters/prod/rules '{"name":"bad","source":"ghost","destinations":[{"object":"web"}],"action":"allow","priority":5}'
check "rule unknown object 400" 400 "$(err_field source)"
req POST /api/v1/clusters/prod/rules '{"name":"bad","source":"db","destinations":[{"object":"web"}],"action":"allow","priority":5}'
check "rule object of another cluster 400" 400 "$(err_field source)"
req POST /api/v1/clusters/prod/rules '{"name":"bad","cluster":"dev","source":"lb","destinations":[{"object":"web"}],"action":"allow","priority":5}'
check "rule other cluster in body 400" 400 "$(err_field cluster)"
req POST /api/v1/clusters/nope/rules '{"name":"bad","source":"lb","destinations":[{"object":"web"}],"action":"allow","priority":5}'
check "rule in missing cluster 404" 404
req GET "/api/v1/clusters/prod/rules/$RULE"
check "rule get" 200 "j['name'] == 'web-from-lb'"
req GET "/api/v1/clusters/dev/rules/$RULE"
check "rule of another cluster 404" 404
req GET /api/v1/clusters/prod/rules/9999
check "rule get 404" 404
req GET "/api/v1/clusters/nope/rules/$RULE"
check "rule of a missing cluster: 404 naming the cluster" 404 "'no cluster' in j['errors'][0]['message']"
req GET /api/v1/api/v1/clusters
check "a server URL ending in /api/v1: 404 with a hint" 404 "'should not end in /api/v1' in j['errors'][0]['message']"
req GET '/api/v1/clusters/prod/rules?type=custom'
check "rule filter type" 200 "j['total'] == 2"
req GET '/api/v1/clusters/prod/rules?action=alert'
check "rule filter action" 200 "j['total'] == 1 and j['items'][0]['name'] == 'office-web'"
req GET '/api/v1/clusters/prod/rules?limit=1&offset=2'
check "rule paging" 200 "j['total'] == 4 and len(j['items']) == 1"
req PATCH "/api/v1/clusters/prod/rules/$RULE" '{"priority":5,"enabled":"off"}'
check "rule patch" 200 "j['priority'] == 5 and j['enabled'] is False"
req GET '/api/v1/clusters/prod/rules?enabled=false'
check "rule filter enabled" 200 "j['total'] == 1 and j['items'][0]['id'] == $RULE"
req GET '/api/v1/clusters/prod/rules?enabled=yes'
check "rule filter enabled=yes 400" 400 "$(err_field enabled)"
req GET '/api/v1/clusters/prod/rules?action=deny&protocol=sctp&type=user'
check "rule filters outside their values 400 (each named)" 400 "[e['field'] for e in j['errors']] == ['action', 'protocol', 'type']"
req PUT "/api/v1/clusters/prod/rules/$RULE" '{"name":"web-from-lb","source":"lb","destinations":[{"object":"web","ports":[80]}],"action":"block","priority":7}'
check "rule put" 200 "j['action'] == 'block' and j['enabled'] is True"
req POST /api/v1/clusters/prod/rules/batch "{\"ids\":[$RULE,$RULE2,$SYS],\"enabled\":false}"
check "rule batch disable" 200 "j['total'] == 3 and all(r['enabled'] is False for r in j['items'])"
req POST /api/v1/clusters/prod/rules/batch "{\"ids\":[$RULE,9999],\"enabled\":true}"
check "rule batch missing id 404" 404
req GET "/api/v1/clusters/prod/rules/$RULE"
check "rule batch all or nothing" 200 "j['enabled'] is False"
req POST /api/v1/clusters/prod/rules/batch "{\"ids\":[$RULE],\"enabled\":\"yes\",\"x\":1}"
check "rule batch bad body 400" 400 "$(err_field x)"
req POST /api/v1/clusters/prod/rules/batch "{\"ids\":[$RULE,$RULE2,$SYS],\"enabled\":true}"
check "rule batch enable" 200 "all(r['enabled'] is True for r in j['items'])"
req PATCH "/api/v1/clusters/prod/rules/$SYS" '{"enabled":false}'
check "system rule disable" 200 "j['enabled'] is False and j['type'] == 'system'"
req PATCH "/api/v1/clusters/prod/rules/$SYS" '{"priority":3}'
check "system rule change 400" 400 "$(err_field priority)"
req PATCH "/api/v1/clusters/prod/rules/$SYS" '{"description":"host health checks"}'
check "system rule description keeps it disabled" 200 "j['enabled'] is False and j['description'] == 'host health checks'"
req PATCH "/api/v1/clusters/prod/rules/$SYS" '{"name":"my-host"}'
check "system rule rename 400" 400 "$(err_field name)"
req POST /api/v1/clusters/prod/rules '{"name":"fake-sys","source":"any","destinations":[{"object":"web"}],"action":"allow","priority":5,"type":"system"}'
check "rule of type system 400 (one error)" 400 "[e['field'] for e in j['errors']] == ['type']"
req PATCH "/api/v1/clusters/prod/rules/$RULE" '{"type":"system"}'
check "custom rule to type system 400" 400 "[e['field'] for e in j['errors']] == ['type']"
req POST /api/v1/clusters/prod/rules/batch "{\"ids\":[$RULE,$RULE],\"enabled\":true}"
check "rule batch repeated id 400" 400 "$(err_field ids)"
req POST /api/v1/clusters/prod/rules/batch "{\"ids\":[$RULE],\"enabled\":\"no\"}"
check "rule batch enabled not a boolean 400" 400 "$(err_field enabled) and 'must be' in j['errors'][0]['message']"
CODE=$(curl -s -o "$T/out" -w '%{http_code}' -H "Authorization: bearer $ADMIN" "$URL/api/v1/clusters")
check "auth scheme is case-insensitive" 200
req DELETE "/api/v1/clusters/prod/rules/$SYS"
check "system rule delete 409" 409

# ---------- conflicts ----------
req DELETE "/api/v1/objects/$WEB"
check "delete referenced object 409" 409 "any('web-from-lb' in e['message'] for e in j['errors']) and any('office-web' in e['message'] for e in j['errors'])"
req PATCH "/api/v1/objects/$WEB" '{"name":"web2"}'
check "rename referenced object 400" 400 "any('rules' in e['field'] for e in j['errors'])"
req DELETE /api/v1/clusters/dev
check "delete cluster with restricted object 409" 409 "any('db' in e['field'] for e in j['errors'])"

# ---------- bad bodies change nothing ----------
snapshot "$T/before"
req POST /api/v1/objects '{"name":"trunc","namespace":"sh'
check "truncated JSON 400" 400 "$(err_field '')"
req POST /api/v1/objects '[{"name":"arr","namespace":"shop"}]'
check "array body 400" 400
req POST /api/v1/objects ''
check "empty body 400" 400
req POST /api/v1/objects '{"name":"dup","name":"dup2","namespace":"shop"}'
check "duplicate keys 400" 400
req PATCH /api/v1/clusters/prod '{"defense":3}'
check "wrong type patch 400" 400 "$(err_field defense)"
req POST /api/v1/clusters/prod/rules '{"name":"t","source":"lb","destinations":"web","action":"allow","priority":5}'
check "wrong type rule 400" 400 "$(err_field destinations)"
python3 -c "
import json
print(json.dumps({'name': 'huge', 'namespace': 'shop', 'description': 'x' * (2 << 20)}))" >"$T/huge"
req POST /api/v1/objects "@$T/huge"
check "huge body 413" 413
req PUT "/api/v1/objects/$WEB" "@$T/huge"
check "huge put 413" 413
req POST /api/v1/clusters '{"name":"new","mode":"never"}'
check "failed cluster create 400" 400
snapshot "$T/after"
if cmp -s "$T/before" "$T/after"; then
    ok "failed requests change nothing"
else
    nok "failed requests change nothing" "state differs"
fi

# ---------- deletes ----------
req DELETE "/api/v1/clusters/prod/rules/$RULE2"
check "rule delete" 204
req GET "/api/v1/clusters/prod/rules/$RULE2"
check "deleted rule 404" 404
req DELETE "/api/v1/clusters/prod/rules/$RULE2"
check "rule delete twice 404" 404
req DELETE "/api/v1/objects/$WEB" "" "$VIEWER"
check "viewer delete 403" 403

# ---------- agents: join tokens and registration ----------
# jget EXPR: prints a Python expression over the last answer's JSON.
jget() {
    python3 -c "import json; j = json.load(open('$T/out')); print($1)"
}
day() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
req GET /api/v1/clusters/prod/join-token "" "$VIEWER"
check "join token needs admin" 403
req GET /api/v1/clusters/nope/join-token
check "join token 404" 404
req GET /api/v1/clusters/prod/join-token
check "join token" 200 "j['cluster'] == 'prod' and len(j['join_token']) == 69"
JOIN_OLD=$(jget "j['join_token']")
req GET /api/v1/clusters/prod/join-token
check "join token regenerated" 200 "j['join_token'] != '$JOIN_OLD'"
JOIN=$(jget "j['join_token']")
if store_holds "$JOIN" "$T/data"; then
    nok "join token stored hashed" "join token in clear"
else
    ok "join token stored hashed"
fi
req POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"node-1\",\"join_token\":\"$JOIN_OLD\"}" ""
check "register with an old join token 401" 401 "$(err_field join_token)"
req POST /api/v1/agents/register "{\"cluster\":\"dev\",\"node\":\"node-1\",\"join_token\":\"$JOIN\"}" ""
check "register with another cluster's token 401" 401
req POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"bad/name\",\"join_token\":\"$JOIN\"}" ""
check "register bad node name 400" 400 "$(err_field node)"
req POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"n\",\"join_token\":\"$JOIN\",\"colour\":1}" ""
check "register unknown field 400" 400 "$(err_field colour)"
req POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"node-1\",\"join_token\":\"$JOIN\",\"os\":\"Ubuntu 14.04\",\"kernel\":\"3.13.0-32-generic\",\"agent_version\":\"0.1.0\"}" ""
check "register" 201 "len(j['token']) == 69 and j['node']['name'] == 'node-1' and j['node']['cluster'] == 'prod' and j['node']['certified'] is True and j['node']['state'] == 'not_installed' and 'token_sha256' not in j['node']"
AG1=$(jget "j['token']")
N1=$(jget "j['node']['id']")
req POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"node-2\",\"join_token\":\"$JOIN\",\"os\":\"Ubuntu 14.04\",\"kernel\":\"9.9.9-custom\",\"agent_version\":\"0.1.0\"}" ""
check "register a second node" 201 "j['node']['certified'] is False and j['node']['compat_reason'] == 'kernel-not-listed'"
AG2=$(jget "j['token']")
req POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"node-2\",\"join_token\":\"$JOIN\",\"os\":\"Ubuntu 14.04\",\"kernel\":\"9.9.9-custom\",\"agent_version\":\"0.1.0\"}" ""
check "register a registered node name 409" 409 "$(err_field node)"
req POST /api/v1/agents/heartbeat '{}' "$AG2"
check "the registered agent keeps its credential" 200
req GET "/api/v1/nodes?name=node-2"
N2=$(jget "j['items'][0]['id']")
req DELETE "/api/v1/nodes/$N2" "" "$VIEWER"
check "node delete needs admin" 403
req DELETE "/api/v1/nodes/$N2"
check "node delete" 200 "j['node']['name'] == 'node-2' and j['workloads_removed'] == 0"
req DELETE "/api/v1/nodes/$N2"
check "node delete twice 404" 404
req POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"node-2\",\"join_token\":\"$JOIN\",\"os\":\"Ubuntu 14.04\",\"kernel\":\"9.9.9-custom\",\"agent_version\":\"0.1.0\"}" ""
check "register again after the node was deleted" 201 "j['token'] != '$AG2'"
AG2_OLD=$AG2
AG2=$(jget "j['token']")
req POST /api/v1/agents/heartbeat '{}' "$AG2_OLD"
check "a deleted node's credential 401" 401

# ---------- agents: credentials are bound ----------
req GET /api/v1/clusters "" "$AG1"
check "agent credential on a viewer route 403" 403
req POST /api/v1/agents/heartbeat '{}' "$ADMIN"
check "admin on an agent route 403" 403
req POST /api/v1/agents/heartbeat '{"cluster":"dev"}' "$AG1"
check "agent acting for another cluster 403" 403 "$(err_field cluster)"
req POST /api/v1/agents/heartbeat '{"node":"node-2"}' "$AG1"
check "agent acting for another node 403" 403 "$(err_field node)"
req GET '/api/v1/agents/policy?cluster=dev' "" "$AG1"
check "policy of another cluster 403" 403
req POST /api/v1/agents/events '{"cluster":"dev","batch":"x","events":[]}' "$AG1"
check "events for another cluster 403" 403

# ---------- agents: heartbeats, nodes, cluster status ----------
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"running"}}' "$AG1"
check "heartbeat bad state 400" 400 "$(err_field datapath.state)"
req POST /api/v1/agents/heartbeat '{"workload_count":-1}' "$AG1"
check "heartbeat bad count 400" 400 "$(err_field workload_count)"
req POST /api/v1/agents/heartbeat '{"policy_revision":-1}' "$AG1"
check "heartbeat bad policy_revision 400" 400 "$(err_field policy_revision)"
req POST /api/v1/agents/heartbeat '{"spool":{"pending":1,"lost":2}}' "$AG1"
check "heartbeat spool unknown field 400" 400 "$(err_field lost)"
req POST /api/v1/agents/heartbeat '{"spool":{"dropped":"3"}}' "$AG1"
check "heartbeat spool bad count 400" 400 "$(err_field dropped)"
req POST /api/v1/agents/heartbeat '{"policy_revision":7,"spool":{"pending":2,"dropped":1,"dropped_events":40}}' "$AG1"
check "heartbeat revision and spool kept" 200 "j['policy_revision'] == 7 and j['spool'] == {'pending': 2, 'dropped': 1, 'dropped_events': 40} and j['heartbeat_interval'] == 2"
req POST /api/v1/agents/heartbeat '{"os":"Ubuntu 14.04","kernel":"3.13.0-32-generic","agent_version":"0.1.0","datapath":{"state":"enforcing","reason":""},"workload_count":0}' "$AG1"
check "heartbeat" 200 "j['state'] == 'enforcing' and j['certified'] is True and j['last_heartbeat'].endswith('Z')"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"unsupported","reason":"kernel 9.9.9-custom lacks BPF_PROG_TYPE_SK_LOOKUP"}}' "$AG2"
check "heartbeat unsupported" 200 "j['state'] == 'unsupported' and j['certified'] is False"
req GET /api/v1/clusters/prod
check "cluster abnormal" 200 "j['status'] == 'abnormal' and j['nodes'] == 2 and j['enforcing'] == 1 and j['abnormal'] == 1 and j['abnormal_nodes'] == [{'name': 'node-2', 'state': 'unsupported', 'reason': 'kernel 9.9.9-custom lacks BPF_PROG_TYPE_SK_LOOKUP'}]"
req GET "/api/v1/clusters/prod/rules/$RULE"
check "rule in effect on 1/2 nodes" 200 "j['in_effect'] == {'nodes': 1, 'of': 2}"
# beat: both prod nodes send a heartbeat.
beat() {
    req POST /api/v1/agents/heartbeat '{}' "$AG1"
    req POST /api/v1/agents/heartbeat '{}' "$AG2"
}
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing"}}' "$AG2"
check "heartbeat enforcing" 200 "j['state'] == 'enforcing'"
# the backend an agent runs and each backend's probe (issue 15)
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","reason":"","backend":"iptables","probes":{"ebpf":"kernel BTF (/sys/kernel/btf/vmlinux)","iptables":""}}}' "$AG2"
check "heartbeat backend and probes kept" 200 "j['datapath']['backend'] == 'iptables' and j['datapath']['probes'] == {'ebpf': 'kernel BTF (/sys/kernel/btf/vmlinux)', 'iptables': ''}"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","backend":"nftables"}}' "$AG2"
check "heartbeat unknown backend 400" 400 "$(err_field datapath.backend)"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","backend":1}}' "$AG2"
check "heartbeat backend not a string 400" 400 "$(err_field datapath.backend)"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","probes":{"xdp":""}}}' "$AG2"
check "heartbeat probe of no backend 400" 400 "any('xdp' in e['message'] or 'xdp' in e['field'] for e in j['errors'])"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","probes":{"ebpf":5}}}' "$AG2"
check "heartbeat probe not a string 400" 400 "$(err_field datapath.probes)"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","probes":[]}}' "$AG2"
check "heartbeat probes not an object 400" 400 "$(err_field datapath.probes)"
req POST /api/v1/agents/heartbeat "{\"datapath\":{\"state\":\"enforcing\",\"probes\":{\"ebpf\":\"$(head -c 1025 /dev/zero | tr '\0' x)\"}}}" "$AG2"
check "heartbeat probe text too long 400" 400 "$(err_field datapath.probes)"
# the detections the backend runs, and why an enabled one does not (as configured)
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","reason":"","backend":"iptables","probes":{"ebpf":"kernel BTF (/sys/kernel/btf/vmlinux)","iptables":""},"detections":["brute_force","dns_hijack","threat_intel"],"detection_gaps":{"dns_hijack":"answers are matched by connection tracking only"}}}' "$AG2"
check "heartbeat detections kept" 200 "j['datapath']['detections'] == ['brute_force', 'dns_hijack', 'threat_intel'] and j['datapath']['detection_gaps'] == {'dns_hijack': 'answers are matched by connection tracking only'}"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","detections":["sniffing"]}}' "$AG2"
check "heartbeat unknown detection 400" 400 "$(err_field datapath.detections)"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","detections":["spoofing","spoofing"]}}' "$AG2"
check "heartbeat detection twice 400" 400 "$(err_field datapath.detections)"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","detections":"spoofing"}}' "$AG2"
check "heartbeat detections not an array 400" 400 "$(err_field datapath.detections)"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","detections":[1]}}' "$AG2"
check "heartbeat detection not a string 400" 400 "$(err_field datapath.detections)"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","detection_gaps":{"port_scan":3}}}' "$AG2"
check "heartbeat detection gap not a string 400" 400 "$(err_field datapath.detection_gaps)"
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing","detection_gaps":{"sniffing":"no"}}}' "$AG2"
check "heartbeat gap of no detection 400" 400 "any('sniffing' in e['message'] or 'sniffing' in e['field'] for e in j['errors'])"
req POST /api/v1/agents/heartbeat "{\"datapath\":{\"state\":\"enforcing\",\"detection_gaps\":{\"spoofing\":\"$(head -c 1025 /dev/zero | tr '\0' x)\"}}}" "$AG2"
check "heartbeat detection gap too long 400" 400 "$(err_field datapath.detection_gaps)"
req GET '/api/v1/nodes?cluster=prod'
check "failed heartbeats changed nothing" 200 "[(n['datapath'].get('backend'), n['datapath'].get('detections')) for n in j['items'] if n['name'] == 'node-2'] == [('iptables', ['brute_force', 'dns_hijack', 'threat_intel'])]"
beat # both nodes fresh: node-2's last good heartbeat was many requests ago (offline after 6 s)
req GET /api/v1/clusters
check "cluster list status" 200 "[(c['id'], c['status']) for c in j['items']] == [('prod', 'normal'), ('dev', 'unknown')]"
beat # node-2's last good heartbeat was many requests ago: under load, more than the 6 s it stays online
req GET /api/v1/clusters/prod/rules
check "rules in effect on 2/2 nodes" 200 "all(r['in_effect'] == {'nodes': 2, 'of': 2} for r in j['items'] if r['enabled'])"
req GET '/api/v1/nodes?cluster=prod'
check "node list" 200 "j['total'] == 2 and [n['name'] for n in j['items']] == ['node-1', 'node-2'] and all('token_sha256' not in n for n in j['items'])"
req GET '/api/v1/nodes?cluster=dev'
check "node list filter" 200 "j['total'] == 0"
req GET "/api/v1/nodes/$N1"
check "node get" 200 "j['name'] == 'node-1' and j['os'] == 'Ubuntu 14.04' and j['kernel'] == '3.13.0-32-generic' and j['agent_version'] == '0.1.0' and j['workload_count'] == 0"
req GET /api/v1/nodes/9999
check "node get 404" 404

# ---------- agents: workloads and the policy long-poll ----------
req GET /api/v1/agents/policy "" "$AG1"
check "policy" 200 "j['revision'] >= 1 and j['cluster']['name'] == 'prod' and {r['name'] for r in j['rules']} == {'allow-host', 'allow-cluster-dns', 'web-from-lb'} and all(isinstance(r['id'], int) for r in j['rules']) and 'db' not in [o['name'] for o in j['objects']] and 'web' in [o['name'] for o in j['objects']] and j['workloads'] == []"
REV=$(jget "j['revision']")
req GET "/api/v1/agents/policy?revision=$REV&wait=0" "" "$AG1"
check "policy unchanged 304" 304
req GET "/api/v1/agents/policy?wait=600" "" "$AG1"
check "policy bad wait 400" 400 "$(err_field wait)"
req PUT /api/v1/agents/workloads '{"workloads":[{"name":"web-1","namespace":"shop","ips":["10.0.0.300"]},{"name":"x"}]}' "$AG1"
check "workloads validation" 400 "$(err_field 'workloads[0].ips') and $(err_field 'workloads[1].namespace')"
req PUT /api/v1/agents/workloads '{"workloads":[{"name":"web-1","namespace":"shop","image":"nginx:1.27","labels":{"app":"web"},"ips":["10.244.1.5"]},{"name":"lb-1","namespace":"shop","labels":{"app":"lb"},"ips":["10.244.1.6","fd00::6"]}]}' "$AG1"
check "workloads report" 200 "j['workloads'] == 2 and j['revision'] > $REV"
req PUT /api/v1/agents/workloads '{"workloads":[{"kind":"Workload","name":"db-1","namespace":"data","ips":["10.244.2.7"]}]}' "$AG2"
check "workloads of a second node" 200
req GET '/api/v1/workloads?cluster=prod'
check "workload list" 200 "j['total'] == 3 and {w['node'] for w in j['items']} == {'node-1', 'node-2'}"
req GET '/api/v1/workloads?node=node-1&namespace=shop'
check "workload list filters" 200 "j['total'] == 2 and all(w['cluster'] == 'prod' for w in j['items'])"
req GET "/api/v1/nodes/$N1"
check "node workload count" 200 "j['workload_count'] == 2"
req GET "/api/v1/agents/policy?revision=$REV" "" "$AG2"
check "policy has every workload of the cluster" 200 "len(j['workloads']) == 3 and sorted(w['name'] for w in j['workloads']) == ['db-1', 'lb-1', 'web-1'] and any(w['ips'] == ['10.244.1.6', 'fd00::6'] for w in j['workloads'])"
REV=$(jget "j['revision']")
req PUT /api/v1/agents/workloads '{"workloads":[{"name":"web-1","namespace":"shop","ips":["10.244.1.5"]}]}' "$AG1"
check "workloads replaced" 200 "j['workloads'] == 1 and j['revision'] == $REV + 1"
REV=$((REV + 1))
req GET '/api/v1/workloads?cluster=prod'
check "workload set replaced" 200 "j['total'] == 2"
# A waiting long-poll does not block other requests, and a write wakes it.
curl -s -o "$T/poll" -w '%{http_code} %{time_total}' -H "Authorization: Bearer $AG2" \
    "$URL/api/v1/agents/policy?revision=$REV&wait=20" >"$T/pollcode" &
POLL=$!
sleep 0.3
t0=$(date +%s.%N)
req GET /api/v1/clusters
t1=$(date +%s.%N)
if [ "$CODE" = 200 ] && python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 3 else 1)"; then
    ok "a long-poll does not block other requests"
else
    nok "a long-poll does not block other requests" "status $CODE after $t0..$t1"
fi
req PATCH "/api/v1/clusters/prod/rules/$RULE" '{"priority":6}'
check "rule change while an agent waits" 200
wait "$POLL"
if python3 -c "
import json, sys
code, secs = open('$T/pollcode').read().split()
j = json.load(open('$T/poll'))
r = [x for x in j['rules'] if x['id'] == $RULE][0]
print('propagation to a waiting agent: %.3f s' % float(secs))
sys.exit(0 if code == '200' and float(secs) < 3 and j['revision'] > $REV and r['priority'] == 6 else 1)"; then
    ok "a write wakes the long-poll"
else
    nok "a write wakes the long-poll" "$(cat "$T/pollcode") $(head -c 300 "$T/poll")"
fi
for p in "/api/v1/objects/$WEB" /api/v1/clusters/prod; do
    req GET "/api/v1/agents/policy?revision=0" "" "$AG1"
    before=$(jget "j['revision']")
    req PATCH "$p" '{"description":"rev"}'
    [ "$p" = /api/v1/clusters/prod ] && req PATCH "$p" '{"mode":"protect"}'
    req GET "/api/v1/agents/policy?revision=$before" "" "$AG1"
    check "revision moves on PATCH $p" 200 "j['revision'] > $before"
done
req PATCH "/api/v1/objects/$WEB" '{"description":null}'

# ---------- agents: events become alerts ----------
D10=$(day '-10 days' | cut -c1-10)
D9=$(day '-9 days' | cut -c1-10)
D100=$(day '-100 days')
D200=$(day '-200 days')
SRC='"source":{"address":"10.244.1.6","port":40000,"namespace":"shop","name":"lb-1","app":"lb"}'
DST='"destination":{"address":"10.244.1.5","port":80,"namespace":"shop","name":"web-1","app":"web"}'
RULEREF="\"rule\":{\"id\":$RULE,\"name\":\"web-from-lb\"}"
cat >"$T/batch1" <<JSON
{"batch":"b1","events":[
 {"time":"${D10}T10:00:00Z","kind":"policy",$RULEREF,"configured_action":"block","applied_action":"block","protocol":"tcp",$SRC,$DST},
 {"time":"${D10}T11:30:00Z","kind":"policy",$RULEREF,"configured_action":"block","applied_action":"block","protocol":"tcp",$SRC,$DST,"attempts":2},
 {"time":"${D9}T01:00:00Z","kind":"policy",$RULEREF,"configured_action":"block","applied_action":"block","protocol":"tcp",$SRC,$DST},
 {"time":"${D10}T12:00:00Z","kind":"policy","rule":{"id":1,"name":"allow-host"},"applied_action":"allow",$SRC,$DST},
 {"kind":"port_scan","applied_action":"alert","risk":"high","source":{"address":"198.51.100.9"},"destination":{"address":"10.244.1.5","port":22},"details":{"ports":40}},
 {"time":"$D100","kind":"policy",$RULEREF,"applied_action":"alert","configured_action":"block",$SRC,"destination":{"address":"10.244.1.5","port":443,"namespace":"shop","name":"web-1"}},
 {"time":"$D200","kind":"spoofing","applied_action":"block",$SRC,$DST}
]}
JSON
req POST /api/v1/agents/events '{"batch":"bad","events":[{"kind":"nope","applied_action":"block"},{"kind":"policy","applied_action":"block","time":"yesterday"},{"kind":"policy","applied_action":"block","source":{"port":70000}}]}' "$AG1"
check "events validation" 400 "$(err_field 'events[0].kind') and $(err_field 'events[1].time') and $(err_field 'events[2].source.port')"
req POST /api/v1/agents/events '{"events":[]}' "$AG1"
check "events need a batch id" 400 "$(err_field batch)"
req POST /api/v1/agents/events "@$T/batch1" "$AG1"
check "events batch" 200 "j['duplicate'] is False and j['alerted'] == 5 and j['allowed'] == 1 and j['expired'] == 1"
req POST /api/v1/agents/events "@$T/batch1" "$AG1"
check "replayed batch counted once" 200 "j['duplicate'] is True and j['alerted'] == 0"
req POST /api/v1/agents/events "@$T/batch1" "$AG2"
check "same batch id from another node counts" 200 "j['duplicate'] is False"
req GET '/api/v1/alerts?cluster=prod&limit=1000'
check "alerts aggregate per SPEC 7" 200 "j['total'] == 4 and sorted(a['attempts'] for a in j['items']) == [2, 2, 2, 6] and all(a['kind'] != 'spoofing' for a in j['items'])"
req GET "/api/v1/alerts?since=${D10}T00:00:00Z&until=${D9}T00:00:00Z"
check "alert aggregated over one UTC day" 200 "j['total'] == 1 and j['items'][0]['attempts'] == 6 and j['items'][0]['first_seen'] == '${D10}T10:00:00Z' and j['items'][0]['last_seen'] == '${D10}T11:30:00Z' and j['items'][0]['source']['workload'] == 'shop/lb-1' and j['items'][0]['rule'] == {'id': $RULE, 'name': 'web-from-lb'} and j['items'][0]['status'] == 'unhandled'"
ALERT=$(jget "j['items'][0]['id']")
req GET '/api/v1/alerts?kind=port_scan'
check "alert filter kind" 200 "j['total'] == 1 and j['items'][0]['risk'] == 'high' and j['items'][0]['details'] == {'ports': 40}"
req GET '/api/v1/alerts?action=alert'
check "alert filter action" 200 "j['total'] == 2"
req GET '/api/v1/alerts?workload=shop/web-1'
check "alert filter workload" 200 "j['total'] == 3"
req GET '/api/v1/alerts?cluster=dev'
check "alert filter cluster" 200 "j['total'] == 0"
req GET '/api/v1/alerts?limit=2&offset=1'
check "alert paging" 200 "j['total'] == 4 and len(j['items']) == 2"
req GET '/api/v1/alerts?kind=scan&action=deny&status=open'
check "alert filters outside their values 400 (each named)" 400 "[e['field'] for e in j['errors']] == ['kind', 'action', 'status']"
req GET '/api/v1/alerts?since=yesterday'
check "alert bad since 400" 400 "$(err_field since)"
req PATCH "/api/v1/alerts/$ALERT" '{"status":"handled"}' "$VIEWER"
check "alert status needs admin" 403
req PATCH "/api/v1/alerts/$ALERT" '{"status":"done"}'
check "alert bad status 400" 400 "$(err_field status) and j['errors'][0]['message'].startswith('must be one of')"
req PATCH "/api/v1/alerts/$ALERT" '{"status":"handled","attempts":1}'
check "alert other field 400" 400 "$(err_field attempts)"
req PATCH /api/v1/alerts/9999 '{"status":"handled"}'
check "alert 404" 404
req PATCH "/api/v1/alerts/$ALERT" '{"status":"handled"}'
check "alert status change" 200 "j['status'] == 'handled' and j['attempts'] == 6"
req GET '/api/v1/alerts?status=handled'
check "alert filter status" 200 "j['total'] == 1 and j['items'][0]['id'] == $ALERT"
req POST /api/v1/alerts/batch "{\"ids\":[$ALERT],\"status\":\"ignored\"}"
check "alert status in bulk (the console's)" 200 "j['items'][0]['status'] == 'ignored'"
req POST /api/v1/alerts/batch "{\"ids\":[$ALERT],\"status\":\"handled\"}"
check "... and back" 200 "j['items'][0]['status'] == 'handled'"
cat >"$T/batch2" <<JSON
{"batch":"b2","events":[{"time":"${D10}T20:00:00Z","kind":"policy",$RULEREF,"configured_action":"block","applied_action":"block","protocol":"tcp",$SRC,$DST,"attempts":4}]}
JSON
req POST /api/v1/agents/events "@$T/batch2" "$AG1"
req GET "/api/v1/alerts/$ALERT" 2>/dev/null
req GET "/api/v1/alerts?since=${D10}T00:00:00Z&until=${D9}T00:00:00Z"
check "a later batch adds to the day's alert" 200 "j['total'] == 1 and j['items'][0]['attempts'] == 10 and j['items'][0]['last_seen'] == '${D10}T20:00:00Z' and j['items'][0]['status'] == 'handled'"

# ---------- protection status ----------
beat
req GET /api/v1/status
check "status windows" 200 "j['alerts'] == {'last_24h': 1, 'last_30d': 3, 'last_180d': 4}"
check "status clusters and rules" 200 "j['clusters'] == {'total': 2, 'unprotected': 1} and j['rules']['total'] == 5 and j['rules']['enabled'] + j['rules']['disabled'] == 5 and j['rules']['disabled'] == 1"
check "status 7 days per cluster" 200 "j['alerts_7d_per_cluster'] == [{'cluster': 'prod', 'alerts': 1}, {'cluster': 'dev', 'alerts': 0}]"
check "status tops" 200 "j['top']['ports'][0] == {'port': '80', 'attempts': 12} and j['top']['rules'][0]['rule'] == '$RULE web-from-lb' and j['top']['sources'][0]['source'] == 'shop/lb-1' and j['top']['destinations'][0]['destination'] == 'shop/web-1'"
check "status newest" 200 "len(j['newest']) == 4 and j['newest'][0]['kind'] == 'port_scan'"
check "status alerts by kind" 200 "j['alerts_by_kind_30d'] == {'policy': 2, 'brute_force': 0, 'port_scan': 1, 'dns_hijack': 0, 'spoofing': 0, 'threat_intel': 0} and j['quarantines'] == {'active': 0}"
req GET /api/v1/clusters/dev/status
check "cluster status" 200 "j['alerts']['last_180d'] == 0 and j['clusters'] == {'total': 1, 'unprotected': 1} and j['rules']['total'] == 2"
req GET /api/v1/clusters/nope/status
check "cluster status 404" 404

# ---------- detections: quarantines and threat lists ----------
. "$HERE/detect.sh"

# ---------- offline ----------
beat
req GET /metrics "" "$VIEWER"
if grep -q '^moat_alerts_ingested_total 11$' "$T/out" && grep -q '^moat_agents_online 2$' "$T/out" &&
    grep -q '^moat_alert_events_total{cluster="prod",kind="policy"} 9$' "$T/out" &&
    grep -q '^moat_alert_events_total{cluster="prod",kind="port_scan"} 2$' "$T/out" &&
    grep -q '^moat_alert_events_total{cluster="prod",kind="spoofing"} 0$' "$T/out" &&
    grep -q "^moat_cluster_revision{cluster=\"prod\"} [0-9]" "$T/out"; then
    ok "metrics: alerts (per cluster and kind), agents, revisions"
else
    nok "metrics: alerts, agents, revisions" "$(grep -E '^moat_(alert|agents|cluster)' "$T/out")"
fi
# wait_cluster SECONDS EXPR [TOKEN...]: GETs cluster prod until EXPR holds for the answer
# (false after SECONDS), each time after a heartbeat of each TOKEN's node.
wait_cluster() {
    limit=$(($(date +%s) + $1))
    expr=$2
    shift 2
    while :; do
        for tok in "$@"; do req POST /api/v1/agents/heartbeat '{}' "$tok"; done
        req GET /api/v1/clusters/prod
        py "$expr" && return 0
        [ "$(date +%s)" -ge "$limit" ] && return 1
        sleep 0.2
    done
}
# node-1 keeps beating, node-2 is silent: node-2 goes offline (3 missed 2 s heartbeats)
wait_cluster 20 "j['status'] == 'abnormal'" "$AG1"
check "silent node offline, cluster abnormal" 200 "j['status'] == 'abnormal' and [(n['name'], n['state']) for n in j['abnormal_nodes']] == [('node-2', 'offline')]"
req GET "/api/v1/clusters/prod/rules/$RULE"
check "rule in effect on 1/2 nodes when one is offline" 200 "j['in_effect'] == {'nodes': 1, 'of': 2}"
# both offline: the derived state is stable across the restart below
wait_cluster 20 "len(j['abnormal_nodes']) == 2"
check "both silent nodes offline" 200 "j['enforcing'] == 0 and [n['state'] for n in j['abnormal_nodes']] == ['offline', 'offline']"

# ---------- metrics ----------
req GET /metrics "" "$VIEWER"
if [ "$CODE" = 200 ] &&
    grep -q 'moat_http_requests_total{method="POST",route="/api/v1/objects",status="201"} 4' "$T/out" &&
    grep -q 'moat_http_requests_total{method="GET",route="/api/v1/clusters",status="401"} 2' "$T/out" &&
    grep -q 'moat_http_request_duration_seconds_bucket{method="GET",route="/api/v1/objects/{id}",le="+Inf"}' "$T/out" &&
    grep -q '^# TYPE moat_http_request_duration_seconds histogram' "$T/out"; then
    ok "metrics"
else
    nok "metrics" "$(head -c 600 "$T/out")"
fi

# ---------- restart keeps the data ----------
snapshot "$T/before"
if stop; then ok "clean shutdown"; else nok "clean shutdown" "$(tail -20 "$T/log")"; fi
if start; then ok "restart"; else nok "restart" "$(cat "$T/log")"; fi
snapshot "$T/after"
if cmp -s "$T/before" "$T/after" && [ -s "$T/after" ]; then
    ok "restart keeps the data"
else
    nok "restart keeps the data" "state differs"
fi
req GET /api/v1/clusters "" "$VIEWER"
check "tokens survive restart" 200
req GET /api/v1/clusters/prod/threat-intel "" "$VIEWER"
check "the threat list survives restart" 200
req GET /api/v1/clusters/prod/quarantines/10.9.9.9 "" "$VIEWER"
check "quarantines survive restart" 200 "j['nodes'] == ['node-2']"
req POST /api/v1/objects '{"name":"after","namespace":"shop"}'
check "ids continue after restart" 201 "j['id'] > $WEB"

# ---------- cluster delete ----------
req DELETE /api/v1/objects/$(python3 -c "
import json, urllib.request
r = urllib.request.Request('$URL/api/v1/objects?name=db', headers={'Authorization': 'Bearer $ADMIN'})
print(json.load(urllib.request.urlopen(r))['items'][0]['id'])")
check "object delete" 204
req DELETE /api/v1/clusters/dev
check "cluster delete" 204
req GET /api/v1/clusters/dev/rules
check "deleted cluster's rules gone" 404
req GET /api/v1/clusters
check "cluster list after delete" 200 "j['total'] == 1"

# ---------- retention, and stopping while an agent waits ----------
req GET '/api/v1/alerts?cluster=prod'
check "alerts before the retention shrinks" 200 "j['total'] == 4"
req GET /api/v1/agents/policy "" "$AG1"
REV=$(jget "j['revision']")
curl -s -o /dev/null "$URL/api/v1/agents/policy?revision=$REV&wait=30" -H "Authorization: Bearer $AG1" &
POLL=$!
sleep 0.3
t0=$(date +%s)
if stop; then ok "clean shutdown with a waiting long-poll"; else nok "clean shutdown with a waiting long-poll" "$(tail -20 "$T/log")"; fi
wait "$POLL"
if [ $(($(date +%s) - t0)) -le 3 ]; then ok "shutdown does not wait for long-polls"; else nok "shutdown does not wait for long-polls" "took $(($(date +%s) - t0)) s"; fi
SERVER_ARGS="--heartbeat-interval 2 --retention-days 50"
if start; then ok "restart with --retention-days 50"; else nok "restart with --retention-days 50" "$(cat "$T/log")"; fi
req GET '/api/v1/alerts?cluster=prod'
check "retention applied at startup" 200 "j['total'] == 3 and all(a['last_seen'] >= '$(day '-50 days')' for a in j['items'])"
req POST /api/v1/agents/heartbeat '{}' "$AG1"
check "node credentials survive a restart" 200 "j['state'] == 'enforcing'"

# ---------- an all-digit object name is a name first (as the loader reads references) ----------
req POST /api/v1/objects '{"name":"numref-target","namespace":"numref"}'
NT=$(jget "j['id']")
req POST /api/v1/objects "{\"name\":\"$NT\",\"namespace\":\"numref\"}"
check "an object named as another's id" 201
NN=$(jget "j['id']")
req POST /api/v1/clusters/prod/rules "{\"name\":\"numref-rule\",\"source\":\"$NT\",\"destinations\":[{\"object\":\"web\"}],\"action\":\"alert\",\"priority\":900}"
check "a rule naming it" 201
NR=$(jget "j['id']")
req DELETE "/api/v1/objects/$NN"
check "the object named \"$NT\" is held by the rule" 409
req DELETE "/api/v1/objects/$NT"
check "object $NT is not held by a rule naming object \"$NT\"" 204
req DELETE "/api/v1/clusters/prod/rules/$NR"
check "numref rule deleted" 204
req DELETE "/api/v1/objects/$NN"
check "numref object deleted" 204

# ---------- object filters, batch delete, many-cluster defense, per-hour series ----------
# Here: cluster prod; objects web, lb, office, after; rule web-from-lb uses lb and web.
# stored FILE: like snapshot, without what node heartbeats move (the nodes go offline here).
stored() {
    : >"$1"
    for p in /api/v1/clusters /api/v1/objects /api/v1/clusters/prod/rules; do
        req GET "$p?limit=1000"
        python3 -c "
import json
drift = {'status', 'nodes', 'enforcing', 'abnormal', 'abnormal_nodes', 'in_effect'}
for i in json.load(open('$T/out'))['items']:
    print(json.dumps({k: v for k, v in i.items() if k not in drift}, sort_keys=True))" >>"$1"
    done
}
req POST /api/v1/objects '{"name":"img1","namespace":"shop","images":["nginx:*"],"labels":["tier=frontend"]}'
IMG1=$(jget "j['id']")
req POST /api/v1/objects '{"name":"img2","namespace":"data","images":["myteam/api:*","redis:7"],"labels":["tier:backend","team=a"]}'
IMG2=$(jget "j['id']")
req POST /api/v1/objects '{"name":"img3","namespace":"shop","labels":["tier=frontend"]}'
check "objects for the filters" 201
IMG3=$(jget "j['id']")
# names NAME...: the answer's items are exactly these objects, in this order
names() {
    echo "[o['name'] for o in j['items']] == [$(printf "'%s'," "$@")]"
}
req GET '/api/v1/objects?image=docker.io/library/nginx:1.27'
check "object filter image (full reference)" 200 "j['total'] == 1 and $(names img1)"
req GET '/api/v1/objects?image=nginx:1.27'
check "object filter image (short form)" 200 "j['total'] == 1 and $(names img1)"
req GET '/api/v1/objects?image=registry.example.com/myteam/api:2.1'
check "object filter image (other registry)" 200 "$(names img2)"
req GET '/api/v1/objects?image=redis'
check "object filter image (no tag reads :latest)" 200 "j['total'] == 0 and j['items'] == []"
req GET '/api/v1/objects?image=redis:7'
check "object filter image (any pattern of the list)" 200 "$(names img2)"
req GET '/api/v1/objects?label=tier=frontend'
check "object filter label" 200 "j['total'] == 2 and $(names img1 img3)"
req GET '/api/v1/objects?label=tier=backend'
check "object filter label (stored as key:value)" 200 "$(names img2)"
req GET '/api/v1/objects?label=team:a'
check "object filter label (asked as key:value)" 200 "$(names img2)"
req GET '/api/v1/objects?label=tier=frontend&image=nginx:1.27'
check "object filters image and label together" 200 "$(names img1)"
req GET '/api/v1/objects?label=tier=frontend&name=img3'
check "object filter label with name" 200 "$(names img3)"
req GET '/api/v1/objects?label=tier=frontend&namespace=data'
check "object filter label with namespace" 200 "j['total'] == 0"
req GET '/api/v1/objects?label=tier=frontend&limit=1&offset=1'
check "object filter label paged" 200 "j['total'] == 2 and $(names img3)"
req GET '/api/v1/objects?image=nginx:1.27&offset=1'
check "object filter image past the end" 200 "j['total'] == 1 and j['items'] == []"
req GET '/api/v1/objects?image=a%20b'
check "object filter bad image 400" 400 "$(err_field image)"
req GET '/api/v1/objects?image='
check "object filter empty image 400" 400 "$(err_field image)"
req GET '/api/v1/objects?label=tier'
check "object filter label without value 400" 400 "$(err_field label)"
req GET '/api/v1/objects?label=a==b'
check "object filter bad label 400" 400 "$(err_field label)"
req GET '/api/v1/objects?label=tier=frontend&limit=0'
check "object filter label bad limit 400" 400 "$(err_field limit)"
LB=$(python3 -c "
import json, urllib.request
r = urllib.request.Request('$URL/api/v1/objects?name=lb', headers={'Authorization': 'Bearer $ADMIN'})
print(json.load(urllib.request.urlopen(r))['items'][0]['id'])")

req POST /api/v1/objects/batch "{\"action\":\"delete\",\"ids\":[$IMG1]}" "$VIEWER"
check "object batch: viewer 403" 403
stored "$T/before"
req POST /api/v1/objects/batch "{\"action\":\"delete\",\"ids\":[$IMG1],\"x\":1}"
check "object batch: unknown field 400" 400 "$(err_field x)"
req POST /api/v1/objects/batch "{\"ids\":[$IMG1]}"
check "object batch: action required 400" 400 "$(err_field action)"
req POST /api/v1/objects/batch "{\"action\":\"purge\",\"ids\":[$IMG1]}"
check "object batch: unknown action 400" 400 "$(err_field action)"
req POST /api/v1/objects/batch '{"action":"delete","ids":[]}'
check "object batch: empty ids 400" 400 "$(err_field ids)"
req POST /api/v1/objects/batch '{"action":"delete","ids":"4"}'
check "object batch: ids not a list 400" 400 "$(err_field ids)"
req POST /api/v1/objects/batch "{\"action\":\"delete\",\"ids\":[$IMG1,\"x\"]}"
check "object batch: bad id 400" 400 "$(err_field 'ids[1]')"
req POST /api/v1/objects/batch "{\"action\":\"delete\",\"ids\":[$IMG1,$IMG2,$IMG1]}"
check "object batch: repeated id 400" 400 "$(err_field 'ids[2]')"
req POST /api/v1/objects/batch "[$IMG1]"
check "object batch: array body 400" 400
req POST /api/v1/objects/batch "{\"action\":\"delete\",\"ids\":[$IMG1,99999,$IMG2,99998]}"
check "object batch: unknown ids 404, each named" 404 "sorted(e['field'] for e in j['errors']) == ['ids[1]', 'ids[3]'] and '99999' in j['errors'][0]['message']"
req POST /api/v1/objects/batch "{\"action\":\"delete\",\"ids\":[$IMG1,$WEB,$LB]}"
check "object batch: referenced objects 409 naming the rules" 409 "sorted(e['field'] for e in j['errors']) == ['ids[1]', 'ids[2]'] and all('web-from-lb' in e['message'] for e in j['errors']) and 'object \"web\"' in j['errors'][0]['message']"
stored "$T/after"
if cmp -s "$T/before" "$T/after"; then
    ok "object batch: failed requests delete nothing"
else
    nok "object batch: failed requests delete nothing" "$(diff "$T/before" "$T/after" | head -5)"
fi
req GET /api/v1/agents/policy "" "$AG1"
REV=$(jget "j['revision']")
req POST /api/v1/objects/batch "{\"action\":\"delete\",\"ids\":[$IMG3,$IMG1,$IMG2]}"
check "object batch delete" 200 "j['total'] == 3 and $(names img3 img1 img2) and j['items'][0]['id'] == $IMG3"
req GET "/api/v1/objects/$IMG2"
check "object batch: deleted" 404
req GET '/api/v1/objects?label=tier=frontend'
check "object batch: gone from the list" 200 "j['total'] == 0"
req GET "/api/v1/agents/policy?revision=$REV&wait=0" "" "$AG1"
check "object batch moves the revision" 200 "j['revision'] > $REV"

req POST /api/v1/clusters '{"name":"qa"}'
req POST /api/v1/clusters '{"name":"stage"}'
check "clusters for the defense batch" 201 "j['defense'] == 'off'"
req POST /api/v1/clusters/batch '{"defense":"on","clusters":["qa"]}' "$VIEWER"
check "defense batch: viewer 403" 403
stored "$T/before"
req POST /api/v1/clusters/batch '{"clusters":["qa"]}'
check "defense batch: defense required 400" 400 "$(err_field defense)"
req POST /api/v1/clusters/batch '{"defense":"maybe","clusters":["qa"]}'
check "defense batch: bad defense 400" 400 "$(err_field defense)"
req POST /api/v1/clusters/batch '{"defense":true,"clusters":["qa"]}'
check "defense batch: defense not a string 400" 400 "$(err_field defense)"
req POST /api/v1/clusters/batch '{"defense":"on"}'
check "defense batch: clusters or all required 400" 400 "$(err_field clusters)"
req POST /api/v1/clusters/batch '{"defense":"on","clusters":[]}'
check "defense batch: empty clusters 400" 400 "$(err_field clusters)"
req POST /api/v1/clusters/batch '{"defense":"on","clusters":["qa",5]}'
check "defense batch: bad cluster id 400" 400 "$(err_field 'clusters[1]')"
req POST /api/v1/clusters/batch '{"defense":"on","clusters":["qa","qa"]}'
check "defense batch: repeated cluster 400" 400 "$(err_field 'clusters[1]')"
req POST /api/v1/clusters/batch '{"defense":"on","clusters":["qa"],"all":true}'
check "defense batch: clusters and all 400" 400 "$(err_field all)"
req POST /api/v1/clusters/batch '{"defense":"on","all":false}'
check "defense batch: all false 400" 400 "$(err_field all)"
req POST /api/v1/clusters/batch '{"defense":"on","clusters":["qa"],"mode":"monitor"}'
check "defense batch: unknown field 400" 400 "$(err_field mode)"
req POST /api/v1/clusters/batch '{"defense":"on","clusters":["qa","nope","stage","gone"]}'
check "defense batch: unknown clusters 404, each named" 404 "sorted(e['field'] for e in j['errors']) == ['clusters[1]', 'clusters[3]'] and 'nope' in j['errors'][0]['message']"
stored "$T/after"
if cmp -s "$T/before" "$T/after"; then
    ok "defense batch: failed requests switch nothing"
else
    nok "defense batch: failed requests switch nothing" "$(diff "$T/before" "$T/after" | head -5)"
fi
req GET /api/v1/agents/policy "" "$AG1"
REV=$(jget "j['revision']")
req POST /api/v1/clusters/batch '{"defense":"on","clusters":["stage","qa"]}'
check "defense batch on" 200 "j['total'] == 2 and [c['id'] for c in j['items']] == ['stage', 'qa'] and all(c['defense'] == 'on' and c['status'] == 'unknown' for c in j['items'])"
req GET /api/v1/clusters/qa
check "defense batch: stored" 200 "j['defense'] == 'on' and j['mode'] == 'protect'"
req GET "/api/v1/agents/policy?revision=$REV&wait=0" "" "$AG1"
check "defense batch leaves other clusters' revisions" 304
req POST /api/v1/clusters/batch '{"defense":"off","all":true}'
check "defense batch all off" 200 "j['total'] == 3 and sorted(c['id'] for c in j['items']) == ['prod', 'qa', 'stage'] and all(c['defense'] == 'off' for c in j['items'])"
req GET "/api/v1/agents/policy?revision=$REV&wait=0" "" "$AG1"
check "defense batch moves each cluster's revision" 200 "j['revision'] > $REV and j['cluster']['defense'] == 'off'"
req POST /api/v1/clusters/batch '{"defense":"on","clusters":["prod"]}'
check "defense batch one cluster" 200 "j['total'] == 1 and j['items'][0]['defense'] == 'on'"

req POST /api/v1/clusters/qa/rules '{"name":"suggest-web","source":"any","destinations":[{"object":"web"}],"action":"alert","priority":50,"type":"suggested"}'
check "a suggested rule" 201 "j['type'] == 'suggested'"
req GET /api/v1/status
check "status counts suggested rules" 200 "j['rules']['suggested'] == 1 and j['rules']['total'] == 8"
req GET /api/v1/clusters/qa/status
check "cluster status counts suggested rules" 200 "j['rules'] == {'total': 3, 'enabled': 3, 'disabled': 0, 'suggested': 1}"
# The hours of one UTC day that lie in the last 24 hours and not after now: today 00..02,
# or before 02:00 yesterday's 21..23.
set -- $(python3 -c "
import datetime as d
now = d.datetime.now(d.timezone.utc)
day = now if now.hour >= 2 else now - d.timedelta(days=1)
h = 0 if now.hour >= 2 else 21
print(' '.join(day.strftime('%Y-%m-%dT') + '%02d' % (h + i) for i in range(3)))")
Y0=$1 Y1=$2 Y2=$3
EP='"destination":{"address":"10.9.9.9","port"'
cat >"$T/batch3" <<JSON
{"batch":"hourly","events":[
 {"time":"$Y1:10:00Z","kind":"policy","applied_action":"block",$EP:81},"attempts":4},
 {"time":"$Y0:05:00Z","kind":"policy","applied_action":"block",$EP:82}},
 {"time":"$Y2:00:00Z","kind":"policy","applied_action":"block",$EP:82},"attempts":2},
 {"time":"$Y2:00:00Z","kind":"brute_force","applied_action":"alert",$EP:83},"attempts":5}]}
JSON
req POST /api/v1/agents/events "@$T/batch3" "$AG1"
check "events for the per-hour series" 200 "j['alerted'] == 4"
# the same alert (port 82) again, in another hour: added to its hours in the store
cat >"$T/batch4" <<JSON
{"batch":"hourly-2","events":[{"time":"$Y1:30:00Z","kind":"policy","applied_action":"block",$EP:82},"attempts":3}]}
JSON
req POST /api/v1/agents/events "@$T/batch4" "$AG1"
check "more events for the per-hour series" 200 "j['alerted'] == 1"
H0=${Y0#*T} H1=${Y1#*T} H2=${Y2#*T}
req GET '/api/v1/alerts?limit=1000'
check "alert keeps attempts per UTC hour, also when added to" 200 "[a['hours'] for a in j['items'] if a['destination']['address'] == '10.9.9.9' and a['destination']['port'] == 82] == [{'$H0': 1, '$H2': 2, '$H1': 3}] and all(sum(a['hours'].values()) == a['attempts'] for a in j['items'] if 'hours' in a)"
req GET /api/v1/status
cp "$T/out" "$T/status"
check "status hourly: 24 hours, oldest first, the current hour last" 200 "len(j['hourly']) == 24 and all(h['hour'].endswith(':00:00Z') for h in j['hourly']) and [int(__import__('calendar').timegm(__import__('time').strptime(h['hour'], '%Y-%m-%dT%H:%M:%SZ'))) for h in j['hourly']] == list(range(__import__('calendar').timegm(__import__('time').strptime(j['hourly'][0]['hour'], '%Y-%m-%dT%H:%M:%SZ')), __import__('calendar').timegm(__import__('time').strptime(j['hourly'][0]['hour'], '%Y-%m-%dT%H:%M:%SZ')) + 24 * 3600, 3600)) and __import__('time').time() - 3600 * 2 < __import__('calendar').timegm(__import__('time').strptime(j['hourly'][-1]['hour'], '%Y-%m-%dT%H:%M:%SZ')) <= __import__('time').time()"
check "status hourly: blocked per hour, exact" 200 "{h['hour'][:13]: h['blocked'] for h in j['hourly'] if h['blocked']} == {'$Y0': 1, '$Y1': 7, '$Y2': 2}"
check "status hourly: alerted" 200 "[h['alerted'] >= 5 for h in j['hourly'] if h['hour'].startswith('$Y2')] == [True]"
req GET '/api/v1/alerts?limit=1000'
if python3 - "$T/status" "$T/out" <<'PY'; then
import calendar, json, sys, time
st, alerts = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))['items']
ts = lambda s: calendar.timegm(time.strptime(s, '%Y-%m-%dT%H:%M:%SZ'))
h0 = ts(st['hourly'][0]['hour'])
want = {'block': [0] * 24, 'alert': [0] * 24}
for a in alerts:
    day = ts(a['last_seen']) // 86400 * 86400
    for hh, n in a['hours'].items():
        t = day + int(hh) * 3600
        if h0 <= t < h0 + 24 * 3600:
            want[a['applied_action']][(t - h0) // 3600] += n
got = {'block': [h['blocked'] for h in st['hourly']], 'alert': [h['alerted'] for h in st['hourly']]}
sys.exit(0 if got == want and sum(want['alert']) > 5 else 1)
PY
    ok "status hourly: every alert's attempts in their hours"
else
    nok "status hourly: every alert's attempts in their hours" "$(head -c 600 "$T/status")"
fi
# An alert stored before ingest kept hours (no `hours`): its attempts are spread evenly
# over its first..last seen hours (6 over Y0..Y2: 2 each).
# (behind the server's back: SQL into the store)
unhour() {
    if [ "$STORE" = postgresql ]; then
        [ "$(pg_sql "moat_$(basename "$DATA")" "WITH u AS (UPDATE alerts SET doc = (doc::jsonb - 'hours')::json
            WHERE doc->'destination'->>'address' = '10.9.9.9' AND doc->'destination'->>'port' = '82'
            RETURNING 1) SELECT count(*) FROM u")" = 1 ]
        return
    fi
    python3 - "$DATA/moat.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("UPDATE alerts SET doc = json_remove(doc, '$.hours') WHERE"
               " json_extract(doc, '$.destination.address') = '10.9.9.9' AND"
               " json_extract(doc, '$.destination.port') = 82").rowcount
db.commit()
sys.exit(0 if n == 1 else 1)
PY
}
if stop && unhour; then
    start
    req GET /api/v1/status
    check "status hourly: an alert without hours spread over its hours" 200 "{h['hour'][:13]: h['blocked'] for h in j['hourly'] if h['blocked']} == {'$Y0': 2, '$Y1': 6, '$Y2': 2}"
    req GET /api/v1/status
    cp "$T/out" "$T/status"
else
    nok "status hourly: an alert without hours spread over its hours" "could not remove its hours"
fi
req GET /api/v1/clusters/prod/status
check "cluster status hourly" 200 "j['hourly'] == $(python3 -c "import json; print(json.load(open('$T/status'))['hourly'])")"
req GET /api/v1/clusters/qa/status
check "cluster status hourly without alerts: zeros" 200 "len(j['hourly']) == 24 and all(h['blocked'] == 0 and h['alerted'] == 0 for h in j['hourly'])"
# ---------- rule filters id, source, destination, port ----------
# Cluster rf with its own objects; rules name objects by name, by id and by id as a string.
req POST /api/v1/clusters '{"name":"rf"}'
check "cluster for the rule filters" 201
for o in rf-web rf-api rf-db; do
    req POST /api/v1/objects "{\"name\":\"$o\",\"namespace\":\"rf\",\"app\":\"$o\"}"
done
check "objects for the rule filters" 201
RFDB=$(jget "j['id']")
req GET /api/v1/objects?name=rf-web
RFWEB=$(jget "j['items'][0]['id']")
req GET /api/v1/objects?name=rf-api
RFAPI=$(jget "j['items'][0]['id']")
rf_rule() { # NAME FIELDS: creates rule NAME in cluster rf with the other FIELDS
    req POST /api/v1/clusters/rf/rules "{\"name\":\"$1\",$2}"
    check "rule $1 for the filters" 201
}
rf_rule web-in '"source":"any","destinations":[{"object":"rf-web","ports":"80/80,443/443"}],"protocol":"tcp","action":"allow","priority":10'
RF1=$(jget "j['id']")
rf_rule api-in "\"source\":$RFWEB,\"destinations\":[{\"object\":\"rf-api\",\"ports\":[\"8080/8089\",9000]}],\"protocol\":\"tcp\",\"action\":\"allow\",\"priority\":20"
RF2=$(jget "j['id']")
rf_rule db-in "\"source\":\"rf-api\",\"destinations\":[{\"object\":$RFDB,\"ports\":5432}],\"protocol\":\"tcp\",\"action\":\"allow\",\"priority\":30"
RF3=$(jget "j['id']")
rf_rule db-watch "\"source\":\"any\",\"destinations\":[{\"object\":\"$RFDB\",\"ports\":[5432]}],\"action\":\"alert\",\"priority\":40,\"enabled\":false"
RF4=$(jget "j['id']")
rf_rule multi '"source":"rf-web","destinations":[{"object":"rf-db","ports":"22"},{"object":"rf-api"}],"action":"block","priority":50'
RF5=$(jget "j['id']")
# the system rules: allow-host (host to any, every port), allow-cluster-dns (any to cluster-dns 53/53)
req GET "/api/v1/clusters/rf/rules?id=$RF3"
check "rule filter id" 200 "j['total'] == 1 and $(names db-in) and j['items'][0]['in_effect'] == {'nodes': 0, 'of': 0}"
req GET "/api/v1/clusters/rf/rules?id=$RF5,$RF1,$RF3"
check "rule filter id list (in id order)" 200 "j['total'] == 3 and $(names web-in db-in multi)"
req GET "/api/v1/clusters/rf/rules?id=$RF1,999999"
check "rule filter id list with an unknown id" 200 "j['total'] == 1 and $(names web-in)"
req GET "/api/v1/clusters/rf/rules?id=$RULE"
check "rule filter id of another cluster's rule" 200 "j['total'] == 0 and j['items'] == []"
req GET '/api/v1/clusters/rf/rules?destination=rf-db'
check "rule filter destination (by name, as id, as id string)" 200 "j['total'] == 3 and $(names db-in db-watch multi)"
req GET "/api/v1/clusters/rf/rules?destination=$RFDB"
check "rule filter destination by id" 200 "j['total'] == 3 and $(names db-in db-watch multi)"
req GET '/api/v1/clusters/rf/rules?destination=rf-api'
check "rule filter destination (any of the destinations)" 200 "$(names api-in multi)"
req GET '/api/v1/clusters/rf/rules?destination=any'
check "rule filter destination built-in any" 200 "$(names allow-host)"
req GET '/api/v1/clusters/rf/rules?destination=3'
check "rule filter destination built-in cluster-dns by id" 200 "$(names allow-cluster-dns)"
req GET '/api/v1/clusters/rf/rules?destination=ghost'
check "rule filter destination unknown object: none" 200 "j['total'] == 0"
req GET "/api/v1/clusters/rf/rules?source=$RFWEB"
check "rule filter source by id (rules name it by id or name)" 200 "$(names api-in multi)"
req GET '/api/v1/clusters/rf/rules?source=rf-web'
check "rule filter source by name" 200 "$(names api-in multi)"
req GET '/api/v1/clusters/rf/rules?source=any'
check "rule filter source any" 200 "$(names allow-cluster-dns web-in db-watch)"
req GET '/api/v1/clusters/rf/rules?port=5432'
check "rule filter port (no ports = every port)" 200 "j['total'] == 4 and $(names allow-host db-in db-watch multi)"
req GET '/api/v1/clusters/rf/rules?port=8085'
check "rule filter port in a range" 200 "$(names allow-host api-in multi)"
req GET '/api/v1/clusters/rf/rules?port=9000'
check "rule filter port as a number in a list" 200 "$(names allow-host api-in multi)"
req GET '/api/v1/clusters/rf/rules?port=443'
check "rule filter port in a comma list" 200 "$(names allow-host web-in multi)"
req GET '/api/v1/clusters/rf/rules?port=53'
check "rule filter port of a system rule" 200 "$(names allow-host allow-cluster-dns multi)"
req GET '/api/v1/clusters/rf/rules?destination=rf-db&port=5432'
check "rule filter destination and port on one destination" 200 "$(names db-in db-watch)"
req GET '/api/v1/clusters/rf/rules?destination=rf-db&port=22'
check "rule filter destination and port (22)" 200 "$(names multi)"
req GET '/api/v1/clusters/rf/rules?destination=rf-api&port=22'
check "rule filter destination and port (every port)" 200 "$(names multi)"
req GET '/api/v1/clusters/rf/rules?port=5432&action=alert'
check "rule filter port with action" 200 "$(names db-watch)"
req GET '/api/v1/clusters/rf/rules?port=5432&enabled=false'
check "rule filter port with enabled" 200 "$(names db-watch)"
req GET '/api/v1/clusters/rf/rules?port=5432&protocol=tcp'
check "rule filter port with protocol" 200 "$(names db-in)"
req GET '/api/v1/clusters/rf/rules?port=5432&type=system'
check "rule filter port with type" 200 "$(names allow-host)"
req GET "/api/v1/clusters/rf/rules?id=$RF1,$RF2,$RF3&port=5432"
check "rule filter id with port" 200 "$(names db-in)"
req GET '/api/v1/clusters/rf/rules?name=multi&destination=rf-db&source=rf-web'
check "rule filter name, source and destination" 200 "$(names multi)"
req GET "/api/v1/clusters/rf/rules?id=$RF1,$RF2,$RF3,$RF4,$RF5&source=any&destination=rf-db&port=5432&action=alert&enabled=false&protocol=any&type=custom&name=db-watch"
check "rule filter all nine together" 200 "$(names db-watch)"
req GET '/api/v1/clusters/rf/rules?port=5432&limit=2'
check "rule filter paged (total counts after filtering)" 200 "j['total'] == 4 and $(names allow-host db-in)"
req GET '/api/v1/clusters/rf/rules?port=5432&limit=2&offset=2'
check "rule filter second page" 200 "j['total'] == 4 and $(names db-watch multi)"
req GET '/api/v1/clusters/rf/rules?port=5432&offset=4'
check "rule filter past the end" 200 "j['total'] == 4 and j['items'] == []"
req GET '/api/v1/clusters/rf/rules?destination=rf-db&port=5432' "" "$VIEWER"
check "rule filters for viewers" 200 "$(names db-in db-watch)"
req GET '/api/v1/clusters/rf/rules?id=abc'
check "rule filter bad id 400" 400 "$(err_field id)"
req GET "/api/v1/clusters/rf/rules?id=$RF1,,$RF2"
check "rule filter empty id in a list 400" 400 "$(err_field id)"
req GET '/api/v1/clusters/rf/rules?id='
check "rule filter empty id 400" 400 "$(err_field id)"
req GET '/api/v1/clusters/rf/rules?id=0'
check "rule filter id 0 400" 400 "$(err_field id)"
req GET '/api/v1/clusters/rf/rules?id=-1'
check "rule filter negative id 400" 400 "$(err_field id)"
req GET "/api/v1/clusters/rf/rules?id=$(python3 -c "print(','.join(['1'] * 1001))")"
check "rule filter more than 1000 ids 400" 400 "$(err_field id)"
req GET '/api/v1/clusters/rf/rules?port=0'
check "rule filter port 0 400" 400 "$(err_field port)"
req GET '/api/v1/clusters/rf/rules?port=65536'
check "rule filter port 65536 400" 400 "$(err_field port)"
req GET '/api/v1/clusters/rf/rules?port=http'
check "rule filter port not a number 400" 400 "$(err_field port)"
req GET '/api/v1/clusters/rf/rules?port=80/90'
check "rule filter port range 400" 400 "$(err_field port)"
req GET '/api/v1/clusters/rf/rules?port='
check "rule filter empty port 400" 400 "$(err_field port)"
req GET '/api/v1/clusters/rf/rules?destination='
check "rule filter empty destination 400" 400 "$(err_field destination)"
req GET '/api/v1/clusters/rf/rules?source='
check "rule filter empty source 400" 400 "$(err_field source)"
req GET '/api/v1/clusters/rf/rules?id=x&port=0&destination='
check "rule filter 400 names every bad filter" 400 "sorted(e['field'] for e in j['errors']) == ['destination', 'id', 'port']"
req GET '/api/v1/clusters/rf/rules?port=80&ports=80'
check "rule filter unknown argument 400" 400 "$(err_field ports)"
req GET '/api/v1/clusters/rf/rules?port=80&limit=0'
check "rule filter bad limit 400" 400 "$(err_field limit)"
req GET '/api/v1/clusters/nope/rules?port=80'
check "rule filter unknown cluster 404" 404
req DELETE /api/v1/clusters/rf
check "rule filters: cluster gone" 204
req POST /api/v1/objects/batch "{\"action\":\"delete\",\"ids\":[$RFWEB,$RFAPI,$RFDB]}"
check "rule filters: objects gone" 200 "j['total'] == 3"
# ---------- POST /apply (moat apply -f in one transaction) and join tokens ----------
AP='{"documents":[{"kind":"Cluster","name":"ap","defense":true},{"kind":"NetworkObject","name":"apweb","namespace":"shop"},{"kind":"DefenseRule","cluster":"ap","name":"ap1","source":"any","destinations":[{"object":"apweb","ports":"80"}],"action":"allow","priority":5},{"kind":"DefenseRule","cluster":"ap","name":"ap2","source":"apweb","destinations":[{"object":"apweb"}],"action":"block","priority":5}]}'
req POST /api/v1/apply "$AP" "$VIEWER"
check "apply needs admin" 403
req POST /api/v1/apply "$AP"
check "apply creates" 200 "[r['result'] for r in j['results']] == ['created'] * 4 and j['results'][2]['id'] < j['results'][3]['id']"
req GET /api/v1/clusters/ap
check "apply settles values as it stores them" 200 "j['defense'] == 'on' and j['mode'] == 'protect'"
req POST /api/v1/apply "$AP"
check "apply again: unchanged" 200 "[r['result'] for r in j['results']] == ['unchanged'] * 4"
req POST /api/v1/apply '{"documents":[{"kind":"DefenseRule","cluster":"ap","name":"ap1","priority":7}]}'
check "apply merges the given fields" 200 "j['results'][0]['result'] == 'configured'"
req GET '/api/v1/clusters/ap/rules?name=ap1'
check "... and keeps the others" 200 "j['items'][0]['priority'] == 7 and j['items'][0]['action'] == 'allow'"
snapshot "$T/ap-before"
req POST /api/v1/apply '{"documents":[{"kind":"NetworkObject","name":"apdb","namespace":"shop"},{"kind":"DefenseRule","cluster":"ap","name":"ap3","source":"nope","destinations":[{"object":"apdb","ports":"99999"}],"action":"allow","priority":5}]}'
check "apply: errors name the document" 400 "any(e['field'].startswith('documents[1].destinations[0].ports') for e in j['errors'])"
req POST /api/v1/apply '{"documents":[{"kind":"NetworkObject","name":"apdb","namespace":"shop"},{"kind":"DefenseRule","cluster":"ap","name":"ap3","source":"nope","destinations":[{"object":"apdb","ports":"5432"}],"action":"allow","priority":5}]}'
check "apply: an unknown object is named at its document" 400 "$(err_field documents[1].source)"
req POST /api/v1/apply '{"documents":[{"kind":"Workload","name":"w"},{"kind":"NetworkObject","name":"x","namespace":"y","id":9},{"kind":"NetworkObject","name":"z"},{"kind":"NetworkObject","name":"z","namespace":"q"}]}'
check "apply: kinds, ids and doubles refused" 400 "$(err_field documents[0].kind) and $(err_field documents[1].id) and $(err_field documents[3])"
req POST /api/v1/apply '{"action":"delete","documents":[{"kind":"NetworkObject","name":"apweb"}]}'
check "apply delete of an object rules use: 409" 409 "any('no object named' in e['message'] for e in j['errors'])"
snapshot "$T/ap-after"
if cmp -s "$T/ap-before" "$T/ap-after"; then ok "refused applies change nothing"; else nok "refused applies change nothing" "state differs"; fi
req POST /api/v1/apply '{"action":"delete","documents":[{"kind":"DefenseRule","cluster":"ap","name":"allow-host"},{"kind":"DefenseRule","cluster":"ap","name":"ap1"},{"kind":"DefenseRule","cluster":"ap","name":"ap2"},{"kind":"NetworkObject","name":"apweb"},{"kind":"NetworkObject","name":"gone"},{"kind":"Cluster","name":"ap"}]}'
check "apply delete" 200 "[r['result'] for r in j['results']] == ['kept (system rule)', 'deleted', 'deleted', 'deleted', 'absent', 'deleted']"
req POST /api/v1/apply '{"action":"sideways","documents":[]}'
check "apply: a bad action 400" 400 "$(err_field action)"
req POST /api/v1/clusters/prod/join-tokens '{"ttl":"2h","uses":3,"description":"rack 4"}'
check "join token with ttl and uses" 201 "len(j['join_token']) == 69 and j['uses'] == 3 and j['used'] == 0 and j['description'] == 'rack 4'"
JTID=$(jget "j['id']")
req GET /api/v1/clusters/prod/join-tokens "" "$VIEWER"
check "join token list needs admin" 403
req GET /api/v1/clusters/prod/join-tokens
check "join token list" 200 "any(t['id'] == $JTID and 'join_token' not in t and not t['expired'] for t in j['items'])"
req DELETE "/api/v1/clusters/prod/join-tokens/$JTID"
check "join token revoke" 204
req DELETE "/api/v1/clusters/prod/join-tokens/$JTID"
check "join token revoke twice 404" 404
req GET /api/v1/clusters/prod/join-tokens
check "... gone from the list" 200 "all(t['id'] != $JTID for t in j['items'])"

if stop; then ok "clean shutdown at the end"; else nok "clean shutdown at the end" "$(tail -20 "$T/log")"; fi

# ---------- audit records of everything above ----------
. "$HERE/audit.sh"

# ---------- durability (kill -9 during concurrent writes), TLS, alert lines, the console ----------
. "$HERE/durability.sh"
. "$HERE/tls.sh"
. "$HERE/alerts.sh"
. "$HERE/console.sh"
. "$HERE/hostile.sh"
. "$HERE/fleet.sh"
. "$HERE/delta.sh"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
