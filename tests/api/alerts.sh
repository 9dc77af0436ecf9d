# Alerts: GET /api/v1/alerts/{id} and --alerts-out (SPEC 7: every alert as a
# JSON line for SIEM pipelines). Sourced by tests/api/run.sh, whose helpers
# (start, stop, req, check, err_field, jget, ok, nok, $S, $T) and counters it
# uses. A fresh server on its own data folder writes its alert lines to a
# file; each batch's lines must be there as soon as the batch is answered
# (flushed per batch), each line must be byte for byte what GET
# /alerts/{id} answers, and replayed, allow-only and refused batches must
# write nothing. Then `--alerts-out -` (stdout) and a file that cannot be
# opened (exit 2).
DATA=$T/alerts
mkdir -p "$DATA"
A_ADMIN=$("$S" token create $(store_opt "$DATA") --role admin)
A_VIEWER=$("$S" token create $(store_opt "$DATA") --role viewer)
A_OUT=$T/alerts.jsonl
SERVER_ARGS="--alerts-out $A_OUT"
if start; then ok "alerts: server starts with --alerts-out FILE"; else nok "alerts: server starts with --alerts-out FILE" "$(cat "$T/log")"; fi
req POST /api/v1/clusters '{"name":"siem","defense":"on"}' "$A_ADMIN"
check "alerts: cluster" 201
req GET /api/v1/clusters/siem/join-token "" "$A_ADMIN"
A_JT=$(jget "j['join_token']")
req POST /api/v1/agents/register "{\"cluster\":\"siem\",\"node\":\"n1\",\"join_token\":\"$A_JT\",\"os\":\"Debian 12\",\"kernel\":\"6.1.0\",\"agent_version\":\"0.1.0\"}" ""
check "alerts: agent registers" 201
A_AG=$(jget "j['token']")
A_DAY=$(date -u +%Y-%m-%d)

# a_lines: the number of lines in the alert file.
a_lines() { if [ -f "$A_OUT" ]; then wc -l <"$A_OUT" | tr -d ' '; else echo 0; fi; }
# a_same LINE NAME: line LINE of the file is exactly GET /alerts/{its id}'s body.
a_same() {
    sed -n "${1}p" "$A_OUT" >"$T/line"
    a_id=$(python3 -c "import json; print(json.load(open('$T/line'))['id'])" 2>/dev/null)
    req GET "/api/v1/alerts/${a_id:-0}" "" "$A_VIEWER"
    if [ "$CODE" = 200 ] && [ "$(cat "$T/line")" = "$(cat "$T/out")" ]; then
        ok "$2"
    else
        nok "$2" "line: $(cat "$T/line") / GET $CODE: $(head -c 400 "$T/out")"
    fi
}

A_EV1="{\"time\":\"${A_DAY}T00:00:05Z\",\"kind\":\"policy\",\"rule\":{\"id\":3,\"name\":\"r\"},\"applied_action\":\"block\",\"protocol\":\"tcp\",\"source\":{\"address\":\"10.9.0.1\",\"port\":40000},\"destination\":{\"address\":\"10.9.0.2\",\"port\":443,\"namespace\":\"shop\",\"name\":\"web-1\"}}"
A_EV1B="{\"time\":\"${A_DAY}T00:00:02Z\",\"kind\":\"policy\",\"rule\":{\"id\":3,\"name\":\"r\"},\"applied_action\":\"block\",\"protocol\":\"tcp\",\"attempts\":4,\"source\":{\"address\":\"10.9.0.1\",\"port\":40001},\"destination\":{\"address\":\"10.9.0.2\",\"port\":443,\"namespace\":\"shop\",\"name\":\"web-1\"}}"
A_EV2="{\"time\":\"${A_DAY}T00:00:03Z\",\"kind\":\"port_scan\",\"applied_action\":\"alert\",\"risk\":\"high\",\"source\":{\"address\":\"198.51.100.7\"},\"destination\":{\"address\":\"10.9.0.2\",\"port\":22},\"details\":{\"note\":\"tab\\tquote\\\" slash/ \\u00e9\"}}"
A_ALLOW="{\"kind\":\"policy\",\"applied_action\":\"allow\",\"source\":{\"address\":\"10.9.0.3\"},\"destination\":{\"address\":\"10.9.0.2\",\"port\":80}}"
req POST /api/v1/agents/events "{\"batch\":\"s1\",\"events\":[$A_EV1,$A_EV2,$A_EV1B,$A_ALLOW]}" "$A_AG"
check "alerts: a batch folds two hits into one alert" 200 "j['alerted'] == 3 and j['allowed'] == 1"
if [ "$(a_lines)" = 2 ]; then ok "alerts: one line per alert made, flushed with the answer"; else nok "alerts: one line per alert made, flushed with the answer" "$(cat "$A_OUT" 2>&1)"; fi
A_L1=$(sed -n 1p "$A_OUT")
if python3 -c "
import json, sys
a = json.loads(sys.argv[1])
assert a['attempts'] == 5 and a['first_seen'] == '${A_DAY}T00:00:02Z' and a['last_seen'] == '${A_DAY}T00:00:05Z', a
assert a['cluster'] == 'siem' and a['node'] == 'n1' and a['status'] == 'unhandled' and a['destination']['workload'] == 'shop/web-1', a
assert list(a)[-1] == 'id', a
" "$A_L1" 2>"$T/err"; then ok "alerts: a line has the alert's fields (folded attempts, first and last seen)"; else nok "alerts: a line has the alert's fields (folded attempts, first and last seen)" "$(cat "$T/err")"; fi
a_same 1 "alerts: a new alert's line is what GET /alerts/{id} answers"
a_same 2 "alerts: escapes in a line are what GET /alerts/{id} answers"
A_ID=$(python3 -c "import json, sys; print(json.loads(sys.argv[1])['id'])" "$A_L1")

A_EV1C="{\"time\":\"${A_DAY}T00:00:09Z\",\"kind\":\"policy\",\"rule\":{\"id\":3,\"name\":\"r\"},\"applied_action\":\"block\",\"protocol\":\"tcp\",\"source\":{\"address\":\"10.9.0.1\",\"port\":40002},\"destination\":{\"address\":\"10.9.0.2\",\"port\":443,\"namespace\":\"shop\",\"name\":\"web-1\"}}"
req POST /api/v1/agents/events "{\"batch\":\"s2\",\"events\":[$A_EV1C]}" "$A_AG"
check "alerts: a later batch adds to the alert" 200 "j['alerted'] == 1"
if [ "$(a_lines)" = 3 ]; then ok "alerts: a changed alert writes a line"; else nok "alerts: a changed alert writes a line" "$(cat "$A_OUT")"; fi
a_same 3 "alerts: a changed alert's line is what GET /alerts/{id} answers"
req GET "/api/v1/alerts/$A_ID" "" "$A_VIEWER"
check "alerts: get one alert (viewer)" 200 "j['id'] == $A_ID and j['attempts'] == 6 and j['last_seen'] == '${A_DAY}T00:00:09Z' and j['first_seen'] == '${A_DAY}T00:00:02Z'"
req POST /api/v1/agents/events "{\"batch\":\"s2\",\"events\":[$A_EV1C]}" "$A_AG"
check "alerts: replayed batch" 200 "j['duplicate'] is True"
req POST /api/v1/agents/events "{\"batch\":\"s3\",\"events\":[$A_ALLOW]}" "$A_AG"
check "alerts: allow-only batch" 200 "j['alerted'] == 0"
req POST /api/v1/agents/events "{\"batch\":\"s4\",\"events\":[$A_EV1C,{\"kind\":\"nope\",\"applied_action\":\"block\"}]}" "$A_AG"
check "alerts: refused batch" 400 "$(err_field 'events[1].kind')"
if [ "$(a_lines)" = 3 ]; then ok "alerts: replayed, allow-only and refused batches write no line"; else nok "alerts: replayed, allow-only and refused batches write no line" "$(cat "$A_OUT")"; fi

req GET /api/v1/alerts/999999 "" "$A_VIEWER"
check "alerts: unknown alert 404" 404 "$(err_field id)"
req GET /api/v1/alerts/abc "" "$A_VIEWER"
check "alerts: malformed id 400" 400 "$(err_field id)"
req GET /api/v1/alerts/0 "" "$A_VIEWER"
check "alerts: id 0 400" 400 "$(err_field id)"
req GET "/api/v1/alerts/$A_ID" "" ""
check "alerts: get needs a token" 401
req GET "/api/v1/alerts/$A_ID" "" "$A_AG"
check "alerts: get refuses a node credential" 403
req PATCH "/api/v1/alerts/$A_ID" '{"status":"handled"}' "$A_ADMIN"
check "alerts: status change" 200 "j['status'] == 'handled'"
req GET "/api/v1/alerts/$A_ID" "" "$A_VIEWER"
check "alerts: get shows the new status" 200 "j['status'] == 'handled' and j['attempts'] == 6"
if stop; then ok "alerts: clean shutdown"; else nok "alerts: clean shutdown" "$(tail -20 "$T/log")"; fi

# A restart appends to the same file.
if start; then ok "alerts: restart with the same --alerts-out"; else nok "alerts: restart with the same --alerts-out" "$(cat "$T/log")"; fi
req POST /api/v1/agents/events "{\"batch\":\"s5\",\"events\":[$A_EV2]}" "$A_AG"
check "alerts: batch after the restart" 200 "j['alerted'] == 1"
if [ "$(a_lines)" = 4 ]; then ok "alerts: lines are appended across restarts"; else nok "alerts: lines are appended across restarts" "$(cat "$A_OUT")"; fi
a_same 4 "alerts: the appended line is what GET /alerts/{id} answers"
stop

# --alerts-out - writes to stdout (after the listening line).
SERVER_ARGS="--alerts-out -"
if start; then ok "alerts: --alerts-out - starts"; else nok "alerts: --alerts-out - starts" "$(cat "$T/log")"; fi
req POST /api/v1/agents/events "{\"batch\":\"s6\",\"events\":[$A_EV1C]}" "$A_AG"
check "alerts: batch with --alerts-out -" 200 "j['alerted'] == 1"
if grep -q "^{\"cluster\":\"siem\".*\"attempts\":7,.*\"id\":$A_ID}\$" "$T/log"; then ok "alerts: --alerts-out - prints the line on stdout"; else nok "alerts: --alerts-out - prints the line on stdout" "$(cat "$T/log")"; fi
if stop; then ok "alerts: clean shutdown with --alerts-out -"; else nok "alerts: clean shutdown with --alerts-out -" "$(tail -20 "$T/log")"; fi

# A file that cannot be opened is a usage error (exit 2) with the reason.
"$S" --listen 127.0.0.1:0 $(store_opt "$DATA") --alerts-out "$T/no/such/dir/a.jsonl" >"$T/log" 2>&1
rc=$?
if [ "$rc" = 2 ] && grep -q "alerts-out '$T/no/such/dir/a.jsonl': No such file or directory" "$T/log"; then
    ok "alerts: an --alerts-out that cannot be opened: exit 2, $(cat "$T/log")"
else
    nok "alerts: an --alerts-out that cannot be opened: exit 2" "exit $rc: $(cat "$T/log")"
fi
SERVER_ARGS=""
