# Fleet (issue 12): 3,000 simulated agents (tools/fleet/moat_fleet.c: one
# epoll loop, each agent a connection from 127.1.X.Y) register, hold a
# policy long-poll each and send heartbeats while a rule changes twice and
# an admin reads rules 50 times. Every agent must get every change, every
# read must be answered, the server must hold the polls on a fixed number of
# threads, and stop cleanly. Beside them, 20 consoles long-poll the change
# feed (beat=5) and must see every rule change, be answered throughout, and
# never be answered for heartbeats alone sooner than the beat. The times are
# printed, not asserted (the benchmark, bench/server.sh, measures them).
# Sourced by tests/api/run.sh.
DATA=$T/fleet
mkdir -p "$DATA"
F_ADMIN=$("$S" token create $(store_opt "$DATA") --role admin)
F_N=3000
FLEET=$ROOT/build/rel/moat-fleet
[ -x "$FLEET" ] || FLEET=$B/moat-fleet
SERVER_ARGS=
if start; then ok "fleet: server starts"; else nok "fleet: server starts" "$(cat "$T/log")"; fi
req POST /api/v1/clusters '{"name":"fleet","defense":"on"}' "$F_ADMIN"
req POST /api/v1/objects '{"name":"fweb","namespace":"shop","app":"web"}' "$F_ADMIN"
for i in $(seq 1 20); do
    req POST /api/v1/clusters/fleet/rules "{\"name\":\"f$i\",\"source\":\"any\",\"destinations\":[{\"object\":\"fweb\",\"ports\":\"$((8000 + i))\"}],\"action\":\"allow\",\"priority\":$i}" "$F_ADMIN"
done
F_RULE=$(jget "j['id']")
req POST /api/v1/clusters/fleet/join-tokens '{"ttl":"1h"}' "$F_ADMIN"
check "fleet: a join token" 201
F_JT=$(jget "j['join_token']")
# Consoles beside the fleet: 20 change long-polls (the console's, beat=5) from 127.0.0.3,
# each re-polling at once with its new cursor as web/app.js does, until $T/feeds.stop.
F_FEEDS=20
/usr/bin/python3 - "$URL" "$F_ADMIN" "$F_FEEDS" "$T/feeds.stop" >"$T/feeds.json" 2>"$T/feeds.err" <<'PY' &
import http.client, json, os, sys, threading, time, urllib.parse
url, token, n, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
out = [None] * n
lock, ready = threading.Lock(), []
def feed(i):
    c = http.client.HTTPConnection(host, port, timeout=90, source_address=('127.0.0.3', 0))
    def get(q):
        c.request('GET', '/api/v1/changes' + q, headers={'Authorization': 'Bearer ' + token})
        r = c.getresponse()
        return r.status, json.loads(r.read())
    r = {'answers': 0, 'beats_only': 0, 'beats_early': 0, 'errors': 0, 'config_seen': 0}
    st, j = get('')
    first = cursor = j['cursor']
    with lock:
        ready.append(i)
        if len(ready) == n:
            open(stop + '.ready', 'w').close()
    while not os.path.exists(stop):
        t0 = time.monotonic()
        try:
            st, j = get('?cursor=%s&wait=25&beat=5' % cursor)
        except Exception as e:
            r['errors'] += 1
            r['last_error'] = repr(e)
            break
        took = time.monotonic() - t0
        if st != 200:
            r['errors'] += 1
            r['last_error'] = 'status %d' % st
            break
        r['answers'] += 1
        if j['changed'] == ['heartbeats']:
            r['beats_only'] += 1
            r['beats_early'] += took < 5.0
        r['config_seen'] += 'config' in j['changed']
        cursor = j['cursor']
    r['config_moves'] = int(cursor.split('.')[1]) - int(first.split('.')[1])
    out[i] = r
threads = [threading.Thread(target=feed, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(out))
PY
F_FEEDS_PID=$!
i=0
while [ ! -f "$T/feeds.stop.ready" ] && kill -0 "$F_FEEDS_PID" 2>/dev/null && [ $i -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ -x "$FLEET" ]; then
    "$FLEET" --port "${URL##*:}" --cluster fleet --join-token "$F_JT" --agents "$F_N" \
        --admin-token "$F_ADMIN" --change "/api/v1/clusters/fleet/rules/$F_RULE" --rounds 2 \
        --reads 50 --heartbeats-per-s 300 --metrics --hold 150 --pause "$T/fleet.pause" \
        >"$T/fleet.json" 2>"$T/fleet.err" &
    F_PID=$!
    i=0
    while [ ! -f "$T/fleet.pause" ] && kill -0 "$F_PID" 2>/dev/null && [ $i -lt 3000 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    F_THREADS=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$PID/status")
    req GET /metrics "" "$F_ADMIN"
    F_POLLS=$(sed -n 's/^moat_long_polls //p' "$T/out")
    F_RSS=$(sed -n 's/^VmRSS:[[:space:]]*//p' "/proc/$PID/status")
    rm -f "$T/fleet.pause"
    wait "$F_PID"
    F_RC=$?
    fpy() { # NAME EXPR over r = the fleet tool's answer
        if /usr/bin/python3 -c "import json,sys; r=json.load(open('$T/fleet.json')); sys.exit(0 if ($2) else 1)" 2>/dev/null; then ok "fleet: $1"; else nok "fleet: $1" "$(head -c 600 "$T/fleet.json") $(head -c 300 "$T/fleet.err")"; fi
    }
    [ "$F_RC" -eq 0 ] && ok "fleet: the fleet tool succeeds" || nok "fleet: the fleet tool succeeds" "exit $F_RC: $(head -c 600 "$T/fleet.json")"
    fpy "$F_N agents register" "r['registered'] == $F_N"
    fpy "$F_N long-polls held" "r['holding'] == $F_N and r['server_long_polls'] >= $F_N * 0.99"
    fpy "every agent gets both rule changes" "len(r['rounds']) == 2 and all(x['all'] and x['missing'] == 0 and x['patch_status'] == 200 for x in r['rounds'])"
    fpy "50 admin reads answered meanwhile" "r['admin_reads']['n'] == 50"
    fpy "heartbeats answered meanwhile" "r['heartbeats_sent'] > 0 and r['heartbeats_ok'] >= r['heartbeats_sent'] - 16"
    fpy "no errors" "r['errors'] == 0"
    if [ -n "$F_THREADS" ] && [ "$F_THREADS" -le 16 ]; then ok "fleet: $F_N connections and $F_FEEDS consoles on $F_THREADS threads"; else nok "fleet: a fixed number of threads" "Threads: $F_THREADS"; fi
    /usr/bin/python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
p = [x['propagation'] for x in r['rounds']]
print('fleet: %d agents, %s threads, RSS %s; registered in %.1f s; propagation p50/p99 %s ms; admin reads p50/p99 %.1f/%.1f ms'
      % (r['agents'], sys.argv[2], sys.argv[3], r['register_s'], ', '.join('%.0f/%.0f' % (x['p50_ms'], x['p99_ms']) for x in p),
         r['admin_reads']['p50_ms'], r['admin_reads']['p99_ms']))" "$T/fleet.json" "$F_THREADS" "$F_RSS" 2>/dev/null
else
    nok "fleet: the fleet tool is built" "$FLEET missing (make build/rel/moat-fleet)"
fi
# the consoles stop: a write wakes the feeds still waiting
touch "$T/feeds.stop"
req POST /api/v1/objects '{"name":"fleet-end","namespace":"shop"}' "$F_ADMIN"
wait "$F_FEEDS_PID"
ffpy() { # NAME EXPR over f = the feeds' results
    if /usr/bin/python3 -c "import json,sys; f=json.load(open('$T/feeds.json')); sys.exit(0 if ($2) else 1)" 2>/dev/null; then ok "fleet: $1"; else nok "fleet: $1" "$(head -c 600 "$T/feeds.json") $(head -c 300 "$T/feeds.err")"; fi
}
ffpy "$F_FEEDS console change feeds answered throughout, no error" "len(f) == $F_FEEDS and all(x and x['errors'] == 0 and x['answers'] > 0 for x in f)"
ffpy "... each saw both rule changes" "all(x['config_seen'] >= 1 and x['config_moves'] >= 2 for x in f)"
ffpy "... heartbeats alone (300/s) answered no sooner than beat" "all(x['beats_early'] == 0 for x in f)"
if [ -n "${F_POLLS-}" ] && [ "$F_POLLS" -ge "$F_N" ]; then ok "fleet: the long-polls gauge counts the agents' and consoles' waits ($F_POLLS)"; else nok "fleet: the long-polls gauge" "${F_POLLS-none}"; fi
/usr/bin/python3 -c "
import json, sys
f = json.load(open(sys.argv[1]))
print('fleet: %d consoles: %d answers in all, %d of heartbeats alone' % (len(f), sum(x['answers'] for x in f), sum(x['beats_only'] for x in f)))" "$T/feeds.json" 2>/dev/null
req GET '/api/v1/nodes?cluster=fleet&limit=1' "" "$F_ADMIN"
check "fleet: every node is listed" 200 "j['total'] == $F_N"
req GET /api/v1/clusters/fleet "" "$F_ADMIN"
check "fleet: the cluster counts every node, lists at most 100 abnormal ones" 200 "j['nodes'] == $F_N and j['abnormal'] == j['nodes'] - j['enforcing'] and len(j['abnormal_nodes']) == min(100, j['abnormal'])"
if stop; then ok "fleet: clean shutdown"; else nok "fleet: clean shutdown" "$(tail -20 "$T/log")"; fi
