# Audit trail (issue 12): every route that writes left records while the main run drove
# it; a refused write leaves none; records carry who, when, what, before and after; the
# filters; --audit-out lines are the records. Sourced by tests/api/run.sh after the main
# run (its helpers, $ADMIN and $VIEWER, its data folder $T/data, now stopped).
DATA=$T/data
SERVER_ARGS="--audit-out $T/audit.jsonl"
if start; then ok "audit: the main data folder restarts with --audit-out"; else nok "audit: server starts" "$(cat "$T/log")"; fi
# every record of the main run, all pages
/usr/bin/python3 - "$URL" "$ADMIN" "$S" >"$T/audit-cover" 2>&1 <<'PY'
import json, re, subprocess, sys, urllib.request
url, token, server = sys.argv[1], sys.argv[2], sys.argv[3]
records, offset = [], 0
while True:
    req = urllib.request.Request('%s/api/v1/audit?limit=1000&offset=%d' % (url, offset),
                                 headers={'Authorization': 'Bearer ' + token})
    page = json.load(urllib.request.urlopen(req))
    records += page['items']
    offset += len(page['items'])
    if not page['items'] or offset >= page['total']:
        break
# the routes that write: every method but GET, and GET .../join-token; heartbeats, event
# batches and quarantine reports are not audited (docs/server.md, "Audit trail"), and the console's object
# preview is a read (a POST that stores nothing; console.sh checks it leaves no record)
routes = [l.split()[:2] for l in subprocess.run([server, 'routes'], capture_output=True,
                                                text=True).stdout.splitlines()]
writes = [(m, p) for m, p in routes if (m != 'GET' or p.endswith('/join-token'))
          and p not in ('/api/v1/agents/heartbeat', '/api/v1/agents/events', '/api/v1/agents/quarantines',
                        '/api/v1/objects/preview')]
missing = []
for m, p in writes:
    rx = re.compile('^' + re.sub(r'\{[^}]+\}', '[^/]+', p) + '$')
    if not any(r['method'] == m and rx.match(r['path']) for r in records):
        missing.append(m + ' ' + p)
print('records %d' % len(records))
print('missing ' + (' | '.join(missing) if missing else 'none'))
bad = [r for r in records if not (r.get('time') and r.get('actor') and r.get('action')
                                  and r.get('kind') and 'before' in r and 'after' in r)]
print('incomplete %d' % len(bad))
leaks = [r for r in records if 'token_sha256' in json.dumps(r) or 'moat_' in json.dumps(r.get('after'))]
print('secrets %d' % len(leaks))
PY
if grep -q '^missing none$' "$T/audit-cover"; then ok "audit: every route that writes left records"; else nok "audit: every route that writes left records" "$(cat "$T/audit-cover")"; fi
if grep -q '^incomplete 0$' "$T/audit-cover"; then ok "audit: each record has time, actor, action, kind, before, after"; else nok "audit: records complete" "$(cat "$T/audit-cover")"; fi
if grep -q '^secrets 0$' "$T/audit-cover"; then ok "audit: no token or hash in a record"; else nok "audit: no token or hash in a record" "$(cat "$T/audit-cover")"; fi
req GET '/api/v1/audit?kind=cluster&action=create&limit=1000' "" "$VIEWER"
check "audit: filters kind and action" 200 "j['total'] >= 2 and all(r['kind'] == 'cluster' and r['action'] == 'create' for r in j['items'])"
req GET '/api/v1/audit?actor=token:1&limit=1' "" "$VIEWER"
check "audit: filter actor" 200 "j['total'] > 0 and j['items'][0]['actor'] == 'token:1' and j['items'][0]['role'] == 'admin'"
req GET '/api/v1/audit?action=register&limit=1000' "" "$VIEWER"
check "audit: registrations name their join token" 200 "j['total'] > 0 and all(r['actor'].startswith('join-token:') and r['kind'] == 'node' for r in j['items'])"
req GET '/api/v1/audit?kind=workloads&limit=1' "" "$VIEWER"
check "audit: workload reports name their node" 200 "j['total'] > 0 and j['items'][0]['actor'].startswith('node:prod/') and isinstance(j['items'][0]['after'], list)"
req GET '/api/v1/audit?kind=token&limit=10' "" "$VIEWER"
check "audit: moat-server token create is recorded, actor local" 200 "j['total'] >= 2 and all(r['actor'] == 'local' and r['after']['role'] in ('admin', 'viewer') for r in j['items'])"
req GET '/api/v1/audit?since=nonsense' "" "$VIEWER"
check "audit: a bad since 400" 400 "$(err_field since)"
req GET '/api/v1/audit?colour=red' "" "$VIEWER"
check "audit: an unknown filter 400" 400 "$(err_field colour)"
req GET /api/v1/audit "" ""
check "audit: needs a token" 401
# a change: before and after; a refused write: no record; the JSON lines
req GET '/api/v1/audit?limit=1' "" "$VIEWER"
A_TOTAL=$(jget "j['total']")
req POST /api/v1/clusters '{"name":"audited","defense":"off"}'
check "audit: a cluster made" 201
req PATCH /api/v1/clusters/audited '{"defense":"on"}'
check "audit: ... and changed" 200
req PATCH /api/v1/clusters/audited '{"defense":"sideways"}'
check "audit: ... a refused change" 400
req POST /api/v1/objects '{"name":"bad name!","namespace":"x"}'
check "audit: ... a refused object" 400
req GET '/api/v1/audit?cluster=audited' "" "$VIEWER"
check "audit: the change has before and after, the refused ones no record" 200 "j['total'] == 2 and j['items'][0]['action'] == 'update' and j['items'][0]['before']['defense'] == 'off' and j['items'][0]['after']['defense'] == 'on' and j['items'][1]['action'] == 'create' and j['items'][1]['before'] is None"
req GET '/api/v1/audit?limit=1' "" "$VIEWER"
check "audit: nothing else was recorded" 200 "j['total'] == $A_TOTAL + 2"
req DELETE /api/v1/clusters/audited
check "audit: ... deleted" 204
req GET '/api/v1/audit?cluster=audited&action=delete' "" "$VIEWER"
check "audit: a delete keeps the record before" 200 "j['total'] == 1 and j['items'][0]['before']['name'] == 'audited' and j['items'][0]['after'] is None"
if [ "$(wc -l <"$T/audit.jsonl")" -eq 3 ] && /usr/bin/python3 - "$T/audit.jsonl" "$URL" "$VIEWER" <<'PY'; then
import json, sys, urllib.request
lines = [json.loads(l) for l in open(sys.argv[1])]
for l in lines:
    req = urllib.request.Request('%s/api/v1/audit?cluster=audited&limit=10' % sys.argv[2],
                                 headers={'Authorization': 'Bearer ' + sys.argv[3]})
    items = json.load(urllib.request.urlopen(req))['items']
    assert any(i == l for i in items), l
assert [l['action'] for l in lines] == ['create', 'update', 'delete']
PY
    ok "audit: --audit-out has one line per record, each the record itself, in commit order"
else
    nok "audit: --audit-out lines" "$(head -c 600 "$T/audit.jsonl")"
fi
if stop; then ok "audit: clean shutdown"; else nok "audit: clean shutdown" "$(tail -20 "$T/log")"; fi
SERVER_ARGS=
