# Sourced by tests/pg/run.sh: `moat-server migrate` of a populated SQLite
# install into an empty database, then every list the API has, read from a
# server on each store, compared field by field; and the refusals.
M_DATA=$T/mig-sqlite
mkdir -p "$M_DATA"
M_ADMIN=$("$S" token create --data "$M_DATA" --role admin)
"$S" token create --data "$M_DATA" --role viewer >/dev/null
if serve MS --data "$M_DATA" --heartbeat-interval 2; then ok "migrate: an SQLite install serves"; else nok "migrate: an SQLite install serves" "$(cat "$T/MS.log")"; fi
# populate: clusters, objects, rules, join tokens, nodes, workloads, alerts, audit
if $PY -c "
import sys; sys.path.insert(0, '$HERE')
from replicas import call, register
base, admin = '$URL_MS', '$M_ADMIN'
for c in ('prod', 'dev'):
    assert call(base, 'POST', '/api/v1/clusters', admin, {'name': c, 'defense': 'on'})[0] == 201
for i in range(30):
    st, o = call(base, 'POST', '/api/v1/objects', admin, {'name': 'o%d' % i, 'namespace': 'ns%d' % (i % 3), 'app': 'a', 'labels': ['k=%d' % i], 'description': 'é ünïcode %d' % i})
    assert st == 201, (st, o)
for i in range(10):
    assert call(base, 'POST', '/api/v1/clusters/prod/rules', admin, {'name': 'r%d' % i, 'source': 'o%d' % i, 'destinations': [{'object': 'o%d' % (i + 1), 'ports': [80 + i]}], 'action': 'block', 'priority': 10 + i})[0] == 201
st, j = call(base, 'DELETE', '/api/v1/objects/%d' % o['id'], admin)
assert st in (200, 204), (st, j)
for n in ('n1', 'n2'):
    tok = register(base, admin, 'prod', n)
    assert call(base, 'POST', '/api/v1/agents/heartbeat', tok, {'agent_version': '0.1.0', 'datapath': {'state': 'enforcing', 'reason': ''}})[0] == 200
    assert call(base, 'PUT', '/api/v1/agents/workloads', tok, {'workloads': [{'kind': 'Workload', 'name': 'w-' + n, 'namespace': 'ns0', 'ips': ['10.0.0.%d' % len(n)]}]})[0] == 200
    for b in range(5):
        ev = {'kind': 'policy', 'applied_action': 'block', 'rule': {'id': 3, 'name': 'r'}, 'protocol': 'tcp', 'source': {'address': '10.9.0.%d' % b}, 'destination': {'address': '10.9.1.1', 'port': 443}}
        assert call(base, 'POST', '/api/v1/agents/events', tok, {'batch': 'b%d' % b, 'events': [ev, ev]})[0] == 200
open('$T/mig-agent', 'w').write(tok)
assert call(base, 'POST', '/api/v1/clusters/dev/join-tokens', admin, {'ttl': '1h', 'uses': 3})[0] == 201
" >"$T/populate" 2>&1; then ok "migrate: the SQLite install populated"; else nok "migrate: the SQLite install populated" "$(cat "$T/populate")"; fi

# what every list answers, as JSON, from the server at $1
m_lists() {
    $PY -c "
import json, sys; sys.path.insert(0, '$HERE')
from replicas import call
base, admin = sys.argv[1], '$M_ADMIN'
out = {}
for path in ['/api/v1/clusters', '/api/v1/objects?limit=1000', '/api/v1/clusters/prod/rules?limit=1000',
             '/api/v1/clusters/dev/rules', '/api/v1/nodes?limit=1000', '/api/v1/workloads?limit=1000',
             '/api/v1/alerts?limit=1000', '/api/v1/audit?limit=1000', '/api/v1/clusters/prod/join-tokens',
             '/api/v1/clusters/dev/join-tokens', '/api/v1/clusters/prod/status']:
    st, j = call(base, 'GET', path, admin)
    out[path] = [st, j]
print(json.dumps(out, sort_keys=True, indent=1))
" "$1"
}
m_lists "$URL_MS" >"$T/mig-before.json"
stop_one MS || nok "migrate: the SQLite server stops" "$(tail -5 "$T/MS.log")"
pg_url moat_mig >/dev/null
M_DB="postgresql:///moat_mig?host=$PG_DIR&port=$PG_PORT&user=postgres"
if "$S" migrate --from-data "$M_DATA" --database "$M_DB" >"$T/mig.out" 2>"$T/mig.err"; then
    ok "migrate: copied ($(grep -c . "$T/mig.out") lines of counts)"
else
    nok "migrate: copied" "$(cat "$T/mig.out" "$T/mig.err")"
fi
if grep -q '^clusters .* 2 .* 2 .* 2$' "$T/mig.out" && grep -q '^tokens ' "$T/mig.out" && ! grep -q MISMATCH "$T/mig.out"; then
    ok "migrate: the counts of every kind agree"
else
    nok "migrate: the counts of every kind agree" "$(cat "$T/mig.out")"
fi
if ! "$S" migrate --from-data "$M_DATA" --database "$M_DB" >"$T/mig2.out" 2>"$T/mig2.err" &&
    grep -q "not empty" "$T/mig2.err"; then
    ok "migrate: a target that is not empty is refused"
else
    nok "migrate: a target that is not empty is refused" "$(cat "$T/mig2.out" "$T/mig2.err")"
fi
if ! "$S" migrate --from-data "$T/nowhere" --database "$M_DB" >/dev/null 2>"$T/mig3.err" &&
    grep -q "no moat.db" "$T/mig3.err"; then
    ok "migrate: a folder without an install is refused"
else
    nok "migrate: a folder without an install is refused" "$(cat "$T/mig3.err")"
fi
if serve MP --database "$M_DB" --heartbeat-interval 2; then ok "migrate: a server on the copy"; else nok "migrate: a server on the copy" "$(cat "$T/MP.log")"; fi
m_lists "$URL_MP" >"$T/mig-after.json"
if $PY - "$T/mig-before.json" "$T/mig-after.json" >"$T/mig-diff" 2>&1 <<'PY'; then
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def walk(x, y, at, out):
    if type(x) != type(y):
        out.append('%s: %r / %r' % (at, x, y))
    elif isinstance(x, dict):
        for k in set(x) | set(y):
            if k in ('state', 'reason', 'abnormal_nodes', 'status', 'enforcing', 'abnormal') and at.count('/') > 3:
                continue  # derived from the time since the last heartbeat
            walk(x.get(k), y.get(k), at + '.' + k, out)
    elif isinstance(x, list):
        if len(x) != len(y):
            out.append('%s: %d / %d items' % (at, len(x), len(y)))
        for i, (p, q) in enumerate(zip(x, y)):
            walk(p, q, '%s[%d]' % (at, i), out)
    elif x != y:
        out.append('%s: %r / %r' % (at, x, y))
out = []
walk(a, b, '', out)
fields = sum(1 for _ in json.dumps(a).split(','))
print('%d values compared, %d differ' % (fields, len(out)))
for o in out[:20]:
    print(o)
sys.exit(1 if out else 0)
PY
    ok "migrate: every list answers the same on the copy, field by field ($(head -1 "$T/mig-diff"))"
else
    nok "migrate: every list answers the same on the copy, field by field" "$(cat "$T/mig-diff")"
fi
api "$URL_MP" GET /api/v1/agents/policy "" "$(cat "$T/mig-agent")"
expect "migrate: a node credential works on the copy" 200
api "$URL_MP" POST /api/v1/objects '{"name":"new-after","namespace":"x"}' "$M_ADMIN"
expect "migrate: new ids continue after the copied ones" 201 "j['id'] > 29"
stop_one MP || nok "migrate: the server on the copy stops" "$(tail -5 "$T/MP.log")"
