# The console's server side (issue 14): the embedded files at / with their
# Content-Security-Policy and ETags, GET /api/v1/whoami, the change feed GET
# /api/v1/changes (cursors, waits, topics), POST /api/v1/objects/preview and
# POST /api/v1/alerts/batch. Sourced by tests/api/run.sh, whose helpers
# (start, stop, req, check, err_field, jget, ok, nok, $S, $T) and counters it
# uses; a fresh server on its own data folder. The pages themselves are
# tested in a real browser by tests/browser.
DATA=$T/console
mkdir -p "$DATA"
C_ADMIN=$("$S" token create $(store_opt "$DATA") --role admin)
C_VIEWER=$("$S" token create $(store_opt "$DATA") --role viewer)
SERVER_ARGS=""
if start; then ok "console: server starts"; else nok "console: server starts" "$(cat "$T/log")"; fi

# head_of PATH [HEADER]: the status to $CODE, the headers to $T/head, the body to $T/out.
head_of() {
    rm -f "$T/out"
    if [ -n "${2-}" ]; then
        CODE=$(curl -s -D "$T/head" -o "$T/out" -w '%{http_code}' -H "$2" "$URL$1")
    else
        CODE=$(curl -s -D "$T/head" -o "$T/out" -w '%{http_code}' "$URL$1")
    fi
}
header() { sed -n "s/^$1: //Ip" "$T/head" | tr -d '\r' | head -1; }

head_of /
CSP=$(header Content-Security-Policy)
INDEX_TAG=$(header ETag)
if [ "$CODE" = 200 ] && grep -q '<script type="module" src="/assets/app.js">' "$T/out" &&
    header Content-Type | grep -q '^text/html' && [ "${CSP#default-src \'self\'}" != "$CSP" ] &&
    [ "$(header X-Content-Type-Options)" = nosniff ] && [ -n "$INDEX_TAG" ]; then
    ok "console: GET / is the console with its policy"
else
    nok "console: GET / is the console with its policy" "$CODE $(cat "$T/head")"
fi
case "$CSP" in *unsafe-inline* | *unsafe-eval* | *"*"*) nok "console: the policy allows no inline script, eval or other origin" "$CSP" ;;
*) ok "console: the policy allows no inline script, eval or other origin" ;; esac
same=0
for p in /status /management /management/prod /objects /alerts /nodes; do
    head_of "$p"
    [ "$CODE" = 200 ] && [ "$(header ETag)" = "$INDEX_TAG" ] && same=$((same + 1))
done
if [ "$same" = 6 ]; then ok "console: every page path answers the console"; else nok "console: every page path answers the console" "$same of 6"; fi
head_of /assets/app.js
APP_TAG=$(header ETag)
if [ "$CODE" = 200 ] && header Content-Type | grep -q '^text/javascript' && grep -q "import" "$T/out" &&
    [ "$(header Content-Security-Policy)" = "$CSP" ]; then
    ok "console: a script is served as JavaScript with the policy"
else
    nok "console: a script is served as JavaScript with the policy" "$CODE $(cat "$T/head")"
fi
head_of /assets/uPlot.esm.js
if [ "$CODE" = 200 ] && grep -q "export" "$T/out"; then ok "console: the chart library is served from the binary"; else nok "console: the chart library is served from the binary" "$CODE"; fi
head_of /assets/app.js "If-None-Match: $APP_TAG"
if [ "$CODE" = 304 ] && [ ! -s "$T/out" ]; then ok "console: a current ETag answers 304"; else nok "console: a current ETag answers 304" "$CODE"; fi
head_of /assets/app.js 'If-None-Match: "other"'
if [ "$CODE" = 200 ]; then ok "console: another ETag gets the file"; else nok "console: another ETag gets the file" "$CODE"; fi
req GET /assets/nope.js "" ""
check "console: an unknown file is 404" 404 "$(err_field '')"
req GET /assets/index.html "" ""
check "console: index.html only at the page paths" 404
# Targets with dot segments or encoded slashes are refused before any route (issue 12's
# strict targets: 400 naming the problem), so no path can leave the embedded files.
CODE=$(curl -s --path-as-is -o "$T/out" -w '%{http_code}' "$URL/assets/../server/static.c")
check "console: no path outside the files (a .. segment is 400)" 400 "'. or ..' in j['errors'][0]['message']"
CODE=$(curl -s --path-as-is -o "$T/out" -w '%{http_code}' "$URL/assets/%2e%2e%2fMakefile")
check "console: ... also escaped (an encoded slash is 400)" 400 "$(err_field '')"
CODE=$(curl -s --path-as-is -o "$T/out" -w '%{http_code}' "$URL/assets/%2e%2e")
check "console: ... also an escaped .. segment" 400 "'. or ..' in j['errors'][0]['message']"
head_of '/alerts?status=unhandled&cluster=prod'
if [ "$CODE" = 200 ] && [ "$(header ETag)" = "$INDEX_TAG" ]; then ok "console: a page path with its query (the page's filters) answers the console"; else nok "console: a page path with its query answers the console" "$CODE"; fi
head_of '/management/prod?rule=3&new=1'
if [ "$CODE" = 200 ] && [ "$(header ETag)" = "$INDEX_TAG" ]; then ok "console: ... also a cluster's rules page"; else nok "console: ... also a cluster's rules page" "$CODE"; fi
CODE=$(curl -s -o "$T/out" -w '%{http_code}' "$URL/alerts?status=%ff")
check "console: a page query that is not UTF-8 is 400" 400
CODE=$(curl -s -o "$T/out" -w '%{http_code}' "$URL/assets/app.js?v=1")
check "console: an asset takes no query argument" 400 "$(err_field v)"
req POST / '{}' ""
check "console: POST / is 405" 405
req GET /status/x "" ""
check "console: an unknown page path is 404" 404

# ---- whoami
req GET /api/v1/whoami "" "$C_ADMIN"
check "whoami: admin" 200 "j == {'role': 'admin'}"
req GET /api/v1/whoami "" "$C_VIEWER"
check "whoami: viewer" 200 "j == {'role': 'viewer'}"
req GET /api/v1/whoami "" ""
check "whoami: no token 401" 401
req GET /api/v1/whoami "" "moat_0000000000000000000000000000000000000000000000000000000000000000"
check "whoami: unknown token 401" 401

# ---- the change feed
cursor() { jget "j['cursor']"; }
# post TOKEN PATH BODY: POSTs BODY to PATH (the answer is not kept).
post() {
    curl -s -o /dev/null -X POST -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
        --data "$3" "$URL$2"
}
# post_later S TOKEN PATH BODY: post after S seconds, in the background ($LATER).
post_later() {
    (sleep "$1" && post "$2" "$3" "$4") &
    LATER=$!
}
# timed_get PATH: req GET PATH as the viewer; how long it took in $MS.
timed_get() {
    t0=$(date +%s%N)
    req GET "$1" "" "$C_VIEWER"
    t1=$(date +%s%N)
    MS=$(((t1 - t0) / 1000000))
}
req GET /api/v1/changes "" "$C_VIEWER"
check "changes: without a cursor: the cursor, nothing changed" 200 "j['changed'] == [] and len(j['cursor'].split('.')) == 5"
C0=$(cursor)
t0=$(date +%s%N)
req GET "/api/v1/changes?cursor=$C0&wait=1" "" "$C_VIEWER"
t1=$(date +%s%N)
check "changes: nothing changed: waits and answers the same cursor" 200 "j['changed'] == [] and j['cursor'] == '$C0'"
if [ $(((t1 - t0) / 1000000)) -ge 900 ]; then ok "changes: ... after the wait"; else nok "changes: ... after the wait" "$(((t1 - t0) / 1000000)) ms"; fi
req POST /api/v1/clusters '{"name":"feed","defense":"on"}' "$C_ADMIN"
check "changes: a cluster" 201
req GET "/api/v1/changes?cursor=$C0&wait=5" "" "$C_VIEWER"
check "changes: a write moves config" 200 "j['changed'] == ['config'] and j['cursor'] != '$C0'"
C1=$(cursor)
req POST /api/v1/clusters '{"name":"feed","defense":"on"}' "$C_ADMIN"
check "changes: a refused write" 409
req GET "/api/v1/clusters/feed/join-token" "" "$C_ADMIN"
FEED_JT=$(jget "j['join_token']")
req GET "/api/v1/changes?cursor=$C1" "" "$C_VIEWER"
check "changes: a refused write and a GET move nothing" 200 "j['changed'] == [] and j['cursor'] == '$C1'"
# a waiting long-poll is answered by a write made while it waits
post_later 0.5 "$C_ADMIN" /api/v1/objects '{"name":"feed-obj","namespace":"shop"}'
timed_get "/api/v1/changes?cursor=$C1&wait=20"
wait "$LATER"
check "changes: a waiting long-poll is answered by a write" 200 "j['changed'] == ['config']"
if [ "$MS" -lt 5000 ]; then ok "changes: ... at once (${MS} ms, the write came after 500)"; else nok "changes: ... at once" "${MS} ms"; fi
C2=$(cursor)
req POST /api/v1/agents/register "{\"cluster\":\"feed\",\"node\":\"n1\",\"join_token\":\"$FEED_JT\",\"os\":\"Debian 12\",\"kernel\":\"6.1.0\",\"agent_version\":\"0.1.0\"}" ""
check "changes: an agent registers" 201
FEED_AG=$(jget "j['token']")
req PUT /api/v1/agents/workloads '{"workloads":[{"name":"web-1","namespace":"shop","image":"docker.io/library/nginx:1.27","labels":{"app":"web","tier":"frontend"},"ips":["10.9.1.5"]},{"name":"api-1","namespace":"shop","image":"registry.example.com/shop/api:2.1","labels":{"app":"api"},"ips":["10.9.1.6"]},{"name":"dns-1","namespace":"kube-system","labels":{"k8s-app":"kube-dns"},"ips":["10.9.1.7"]}]}' "$FEED_AG"
check "changes: the agent reports workloads" 200
req GET "/api/v1/changes?cursor=$C2" "" "$C_VIEWER"
check "changes: registration and workloads move nodes" 200 "j['changed'] == ['nodes']"
C3=$(cursor)
req POST /api/v1/agents/heartbeat '{"datapath":{"state":"enforcing"}}' "$FEED_AG"
check "changes: a heartbeat" 200
req GET "/api/v1/changes?cursor=$C3" "" "$C_VIEWER"
check "changes: a heartbeat moves heartbeats" 200 "j['changed'] == ['heartbeats']"
C4=$(cursor)
DAY=$(date -u +%Y-%m-%dT%H:%M:%SZ)
req POST /api/v1/agents/events "{\"batch\":\"b1\",\"events\":[{\"time\":\"$DAY\",\"kind\":\"policy\",\"applied_action\":\"block\",\"protocol\":\"tcp\",\"source\":{\"address\":\"10.9.9.1\",\"port\":4000},\"destination\":{\"address\":\"10.9.1.5\",\"port\":80,\"namespace\":\"shop\",\"name\":\"web-1\"}},{\"time\":\"$DAY\",\"kind\":\"port_scan\",\"applied_action\":\"alert\",\"source\":{\"address\":\"10.9.9.2\"},\"destination\":{\"address\":\"10.9.1.5\",\"port\":22}}]}" "$FEED_AG"
check "changes: an event batch" 200 "j['alerted'] == 2"
req GET "/api/v1/changes?cursor=$C4" "" "$C_VIEWER"
check "changes: an event batch moves alerts" 200 "j['changed'] == ['alerts']"
# beat=S: heartbeats alone are held until S s after the request came (thousands of agents
# move them every few ms); any other topic answers at once. Bounds below are lower bounds
# (the server cannot answer before them) or far above what a loaded machine needs.
CB=$(cursor)
post_later 0.3 "$FEED_AG" /api/v1/agents/heartbeat '{}'
timed_get "/api/v1/changes?cursor=$CB&wait=30&beat=2"
wait "$LATER"
check "changes: beat: heartbeats alone are answered..." 200 "j['changed'] == ['heartbeats']"
if [ "$MS" -ge 2000 ]; then ok "changes: ... no sooner than beat after the request (${MS} ms)"; else nok "changes: ... no sooner than beat" "${MS} ms"; fi
CB=$(cursor)
(sleep 0.3 && post "$FEED_AG" /api/v1/agents/heartbeat '{}' && sleep 0.5 &&
    post "$C_ADMIN" /api/v1/clusters '{"name":"beat","defense":"off"}') &
LATER=$!
timed_get "/api/v1/changes?cursor=$CB&wait=50&beat=40"
wait "$LATER"
check "changes: beat: another topic answers at once, with the heartbeats held back" 200 "j['changed'] == ['config', 'heartbeats']"
if [ "$MS" -lt 30000 ]; then ok "changes: ... before the beat (${MS} ms of 40 s)"; else nok "changes: ... before the beat" "${MS} ms"; fi
CB=$(cursor)
req POST /api/v1/agents/heartbeat '{}' "$FEED_AG"
req GET "/api/v1/changes?cursor=$CB&beat=30" "" "$C_VIEWER"
check "changes: beat without a wait answers at once" 200 "j['changed'] == ['heartbeats']"
for bad in 61 -1 x ""; do
    req GET "/api/v1/changes?cursor=$CB&beat=$bad" "" "$C_VIEWER"
    check "changes: beat=$bad is 400" 400 "$(err_field beat)"
done
req GET /api/v1/changes "" "$C_VIEWER"
C5=$(cursor)
req GET "/api/v1/changes?cursor=00000000.0.0.0.0" "" "$C_VIEWER"
check "changes: a cursor of another server run: everything changed" 200 "j['changed'] == ['config', 'alerts', 'nodes', 'heartbeats']"
refused=""
for bad in x 12345678 12345678.1.2.3 12345678.1.2.3.4.5 12345678.1.2.3.x 1234567g.1.2.3.4 12345678.-1.2.3.4 ""; do
    req GET "/api/v1/changes?cursor=$bad" "" "$C_VIEWER"
    if [ "$CODE" != 400 ] || ! py "$(err_field cursor)"; then refused="$refused '$bad': $CODE"; fi
done
if [ -z "$refused" ]; then ok "changes: a bad cursor is 400 naming cursor"; else nok "changes: a bad cursor is 400 naming cursor" "$refused"; fi
req GET "/api/v1/changes?cursor=$C5&wait=61" "" "$C_VIEWER"
check "changes: wait above 60 is 400" 400 "$(err_field wait)"
req GET "/api/v1/changes?cursor=$C5&wait=-1" "" "$C_VIEWER"
check "changes: a negative wait is 400" 400 "$(err_field wait)"
req GET "/api/v1/changes?since=1" "" "$C_VIEWER"
check "changes: an unknown argument is 400" 400 "$(err_field since)"
req GET /api/v1/changes "" ""
check "changes: no token 401" 401
req GET /api/v1/changes "" "$FEED_AG"
check "changes: a node credential 403" 403

# ---- object preview
req GET '/api/v1/objects?limit=1000' "" "$C_ADMIN"
OBJECTS_BEFORE=$(cat "$T/out")
req POST /api/v1/objects/preview '{"namespace":"shop","app":"web*"}' "$C_VIEWER"
check "preview: a draft without a name selects what it would (viewer)" 200 "j['valid'] and j['kind'] == 'selector' and j['total'] == 1 and j['items'][0]['name'] == 'web-1' and j['items'][0]['node'] == 'n1' and j['items'][0]['cluster'] == 'feed'"
req POST /api/v1/objects/preview '{"name":"p","namespace":"*","images":["nginx:*","shop/api:*"]}' "$C_VIEWER"
check "preview: images match by any pattern, in their short forms" 200 "sorted(w['name'] for w in j['items']) == ['api-1', 'web-1']"
req POST /api/v1/objects/preview '{"name":"p","namespace":"*","labels":["app=web","tier:frontend"]}' "$C_VIEWER"
check "preview: labels must all be present" 200 "[w['name'] for w in j['items']] == ['web-1']"
req POST /api/v1/objects/preview '{"name":"p","namespace":"*","cluster":"feed"}' "$C_VIEWER"
check "preview: an object of one cluster" 200 "j['total'] == 3"
req POST '/api/v1/objects/preview?limit=1&offset=1' '{"name":"p","namespace":"*"}' "$C_VIEWER"
check "preview: paged" 200 "j['total'] == 3 and len(j['items']) == 1"
req POST /api/v1/objects/preview '{"name":"p","cidrs":["203.0.113.0/24"]}' "$C_VIEWER"
check "preview: an IP block selects no workload" 200 "j['valid'] and j['kind'] == 'ipblock' and j['total'] == 0"
req POST /api/v1/objects/preview '{"name":"p","namespace":"shop","labels":["app==x"],"images":["bad image"]}' "$C_VIEWER"
check "preview: a draft that is not valid yet: 200 with the create's errors" 200 "not j['valid'] and j['items'] == [] and $(err_field 'labels[0]') and $(err_field 'images[0]')"
req POST /api/v1/objects/preview '{"name":"feed-obj","namespace":"shop"}' "$C_VIEWER"
check "preview: a name taken by another object is the create's error" 200 "not j['valid'] and j['errors'] == [{'field': 'name', 'message': 'object \"feed-obj\" exists'}]"
req GET '/api/v1/objects?name=feed-obj' "" "$C_ADMIN"
FEED_OBJ=$(jget "j['items'][0]['id']")
req POST "/api/v1/objects/preview?id=$FEED_OBJ" '{"name":"feed-obj","namespace":"kube-system"}' "$C_VIEWER"
check "preview: ?id= previews a change of that object" 200 "j['valid'] and [w['name'] for w in j['items']] == ['dns-1']"
req POST "/api/v1/objects/preview?id=99999" '{"namespace":"shop"}' "$C_VIEWER"
check "preview: an unknown id is 404" 404 "$(err_field id)"
req POST "/api/v1/objects/preview?id=x" '{"namespace":"shop"}' "$C_VIEWER"
check "preview: a bad id is 400" 400 "$(err_field id)"
req POST /api/v1/objects/preview '{"id":4,"namespace":"shop"}' "$C_VIEWER"
check "preview: an id in the body is 400" 400 "$(err_field id)"
req POST /api/v1/objects/preview '[1]' "$C_VIEWER"
check "preview: a body that is not an object is 400" 400
req POST /api/v1/objects/preview '{"namespace":5}' "$C_VIEWER"
check "preview: a namespace that is not a string is 400" 400 "$(err_field namespace)"
req POST /api/v1/objects/preview '{"namespace":"shop"}' ""
check "preview: no token 401" 401
req GET "/api/v1/changes?cursor=$C5" "" "$C_VIEWER"
check "preview: moves no change counter" 200 "j['changed'] == []"
req GET '/api/v1/objects?limit=1000' "" "$C_ADMIN"
if [ "$(cat "$T/out")" = "$OBJECTS_BEFORE" ]; then ok "preview: stores nothing"; else nok "preview: stores nothing" "$(cat "$T/out")"; fi
req GET '/api/v1/audit?limit=1000' "" "$C_VIEWER"
check "preview: leaves no audit record" 200 "j['total'] > 0 and not any((r.get('path') or '').startswith('/api/v1/objects/preview') for r in j['items'])"

# ---- alerts in bulk
req GET '/api/v1/alerts?cluster=feed' "" "$C_VIEWER"
A1=$(jget "j['items'][0]['id']")
A2=$(jget "j['items'][1]['id']")
req POST /api/v1/alerts/batch "{\"ids\":[$A1,$A2],\"status\":\"handled\"}" "$C_VIEWER"
check "alerts batch: viewer 403" 403
req POST /api/v1/alerts/batch "{\"ids\":[$A1,99999,$A2,99998],\"status\":\"handled\"}" "$C_ADMIN"
check "alerts batch: unknown ids 404 naming each" 404 "sorted(e['field'] for e in j['errors']) == ['ids[1]', 'ids[3]']"
req GET '/api/v1/alerts?cluster=feed&status=unhandled' "" "$C_VIEWER"
check "alerts batch: ... and nothing changed" 200 "j['total'] == 2"
req GET "/api/v1/changes?cursor=$C5" "" "$C_VIEWER"
check "alerts batch: a refused batch moves no counter" 200 "j['changed'] == []"
req POST /api/v1/alerts/batch "{\"ids\":[$A1,$A2],\"status\":\"ignored\"}" "$C_ADMIN"
check "alerts batch: all at once" 200 "j['total'] == 2 and all(a['status'] == 'ignored' for a in j['items']) and sorted(a['id'] for a in j['items']) == sorted([$A1, $A2])"
req GET "/api/v1/alerts/$A2" "" "$C_VIEWER"
check "alerts batch: stored" 200 "j['status'] == 'ignored' and j['attempts'] == 1"
req GET '/api/v1/audit?kind=alert&limit=100' "" "$C_VIEWER"
check "alerts batch: an audit record per alert, before and after" 200 "sorted(r['record'] for r in j['items'] if r.get('path') == '/api/v1/alerts/batch') == sorted([$A1, $A2]) and all(r['before'] == {'status': 'unhandled'} and r['after'] == {'status': 'ignored'} and r['actor'] == 'token:1' for r in j['items'] if r.get('path') == '/api/v1/alerts/batch')"
req GET "/api/v1/changes?cursor=$C5" "" "$C_VIEWER"
check "alerts batch: moves alerts" 200 "j['changed'] == ['alerts']"
req POST /api/v1/alerts/batch "{\"ids\":[$A1],\"status\":\"done\"}" "$C_ADMIN"
check "alerts batch: a bad status is 400" 400 "$(err_field status)"
req POST /api/v1/alerts/batch "{\"ids\":[$A1]}" "$C_ADMIN"
check "alerts batch: a missing status is 400" 400 "$(err_field status)"
req POST /api/v1/alerts/batch "{\"ids\":[$A1,$A1],\"status\":\"handled\"}" "$C_ADMIN"
check "alerts batch: a repeated id is 400" 400 "$(err_field 'ids[1]')"
req POST /api/v1/alerts/batch '{"ids":[],"status":"handled"}' "$C_ADMIN"
check "alerts batch: no id is 400" 400 "$(err_field ids)"
req POST /api/v1/alerts/batch '{"ids":["1"],"status":"handled"}' "$C_ADMIN"
check "alerts batch: an id that is not an integer is 400" 400 "$(err_field 'ids[0]')"
req POST /api/v1/alerts/batch "{\"ids\":[$A1],\"status\":\"handled\",\"note\":1}" "$C_ADMIN"
check "alerts batch: an unknown field is 400" 400 "$(err_field note)"
python3 -c "import json; print(json.dumps({'ids': list(range(1, 1002)), 'status': 'handled'}))" >"$T/big"
req POST /api/v1/alerts/batch "@$T/big" "$C_ADMIN"
check "alerts batch: more than 1000 ids is 400" 400 "$(err_field ids)"
if stop; then ok "console: clean shutdown"; else nok "console: clean shutdown" "$(tail -20 "$T/log")"; fi
