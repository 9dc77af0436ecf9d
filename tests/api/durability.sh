# Durability (issue 4): sourced by tests/api/run.sh, whose helpers (start, ok,
# nok, $S, $T, $PID) and counters it uses. A fresh server on its own data
# folder takes creates from CLIENTS shell loops (one curl per create, so each
# client has at most one request in flight); each client records the name it
# is about to send and, on a 201, the id the server answered. The server is
# killed with SIGKILL mid-stream and restarted on the same folder; then every
# acknowledged object must be there with its id and content, every stored
# object must be complete (its content is a function of its name), and each
# client's stored objects must be its acknowledged ones plus at most the one
# that was in flight.
CLIENTS=4
DUR_MAX=400 # creates per client at most: the loops are bounded even if the kill never comes
D_OLD_DATA=$DATA
DATA=$T/durable
mkdir -p "$DATA"
D_ADMIN=$("$S" token create $(store_opt "$DATA") --role admin)
SERVER_ARGS=""
if start; then
    ok "durability: server starts"
else
    nok "durability: server starts" "$(cat "$T/log")"
fi
# The payload of object c-K-I (2 KiB of description, so a torn write would show).
D_PAD=$(printf '%2048s' '' | tr ' ' 'x')
d_client() {
    k=$1
    : >"$T/sent.$k"
    : >"$T/acked.$k"
    i=0
    while [ $i -lt $DUR_MAX ] && [ ! -e "$T/dur-stop" ]; do
        name="c-$k-$i"
        echo "$name" >>"$T/sent.$k"
        out=$(curl -s -m 5 -w '\n%{http_code}' -X POST -H "Authorization: Bearer $D_ADMIN" \
            -H 'Content-Type: application/json' \
            --data-binary "{\"name\":\"$name\",\"namespace\":\"ns-$k\",\"app\":\"app-$i\",\"labels\":[\"seq=$i\"],\"description\":\"$name $D_PAD\"}" \
            "$URL/api/v1/objects") || break
        code=$(printf '%s\n' "$out" | tail -n 1)
        [ "$code" = 201 ] || break
        id=$(printf '%s\n' "$out" | head -n 1 | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
        echo "$name $id" >>"$T/acked.$k"
        i=$((i + 1))
    done
}
rm -f "$T/dur-stop"
D_PIDS=
k=0
while [ $k -lt $CLIENTS ]; do
    d_client $k &
    D_PIDS="$D_PIDS $!"
    k=$((k + 1))
done
# Kill once at least 60 creates are acknowledged (bounded wait: 30 s).
i=0
while [ $i -lt 300 ]; do
    n=$(cat "$T"/acked.* 2>/dev/null | wc -l)
    [ "$n" -ge 60 ] && break
    sleep 0.1
    i=$((i + 1))
done
kill -9 "$PID" 2>/dev/null
wait "$PID" 2>/dev/null
PID=
touch "$T/dur-stop"
for p in $D_PIDS; do wait "$p"; done
D_ACKED=$(cat "$T"/acked.* | wc -l)
if [ "$D_ACKED" -ge 60 ]; then
    ok "durability: $D_ACKED creates acknowledged by $CLIENTS clients before kill -9"
else
    nok "durability: creates acknowledged before kill -9" "only $D_ACKED"
fi
if start; then
    ok "durability: restart after kill -9"
else
    nok "durability: restart after kill -9" "$(cat "$T/log")"
fi
if python3 - "$URL" "$D_ADMIN" "$T" "$CLIENTS" "$([ "$STORE" = sqlite ] && echo "$DATA/moat.db")" >"$T/dur-report" 2>&1 <<'PY'; then
import json, sqlite3, sys, urllib.request
url, tok, tmp, clients, db = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
pad = 'x' * 2048
def get(path):
    r = urllib.request.Request(url + path, headers={'Authorization': 'Bearer ' + tok})
    return json.load(urllib.request.urlopen(r, timeout=30))
stored, off = {}, 0
while True:
    page = get('/api/v1/objects?limit=1000&offset=%d' % off)
    for o in page['items']:
        stored[o['name']] = o
    off += len(page['items'])
    if not page['items'] or off >= page['total']:
        break
bad = []
def expect(name):
    _, k, i = name.split('-')
    return {'name': name, 'namespace': 'ns-' + k, 'app': 'app-' + i, 'labels': ['seq=' + i],
            'description': name + ' ' + pad}
# Every stored object is complete: exactly the document its name implies.
for name, o in stored.items():
    want = dict(expect(name), id=o.get('id'))
    if o != want:
        bad.append('incomplete or wrong: %s' % name)
for k in range(clients):
    acked = [l.split() for l in open('%s/acked.%d' % (tmp, k)) if l.strip()]
    sent = [l.strip() for l in open('%s/sent.%d' % (tmp, k)) if l.strip()]
    for name, ident in acked:
        o = stored.get(name)
        if o is None:
            bad.append('acknowledged but missing: %s' % name)
        elif str(o['id']) != ident:
            bad.append('%s: id %s, acknowledged %s' % (name, o['id'], ident))
    mine = {n for n in stored if n.startswith('c-%d-' % k)}
    extra = mine - {n for n, _ in acked}
    # At most the one in flight: the last name this client sent without an answer.
    inflight = set(sent[len(acked):len(acked) + 1])
    if not extra <= inflight:
        bad.append('client %d: unacknowledged objects %s (in flight: %s)' % (k, sorted(extra), inflight))
    print('client %d: sent %d, acknowledged %d, stored %d' % (k, len(sent), len(acked), len(mine)))
if db: # SQLite's own check of its file (PostgreSQL: the transactions' durability is its own)
    c = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
    ic = c.execute('PRAGMA integrity_check').fetchone()[0]
    if ic != 'ok':
        bad.append('integrity_check: ' + ic)
for b in bad[:20]:
    print(b)
sys.exit(1 if bad else 0)
PY
    ok "durability: every acknowledged object kept, nothing half-written ($(grep -c acknowledged "$T/dur-report") clients)"
else
    nok "durability: every acknowledged object kept, nothing half-written" "$(cat "$T/dur-report")"
fi
req POST /api/v1/objects '{"name":"after-crash","namespace":"shop"}' "$D_ADMIN"
check "durability: writes go on after the crash" 201
if stop; then ok "durability: clean shutdown"; else nok "durability: clean shutdown" "$(tail -20 "$T/log")"; fi
DATA=$D_OLD_DATA
