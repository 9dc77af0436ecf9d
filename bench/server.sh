#!/bin/sh
# moat-server benchmarks (issue 4): API read throughput and p99 latency under
# concurrency (wrk), write throughput (wrk with a Lua script POSTing objects
# with unique names) and the event-ingest rate through POST /api/v1/agents/events
# (batches of 1000 events), from one agent on one connection and from AGENTS
# agents (nodes) sending at once. Runs as any user; all traffic goes to
# 127.0.0.1 and every run is bounded in time. Prints `key=value` lines, then a
# markdown table.
# Usage: bench/server.sh BUILD_DIR   (a release build: make build/rel/moat-server)
# Environment: DURATION (seconds per wrk run, default 10), CONNS (default 32),
#              THREADS (default 2), BATCHES (event batches, default 40),
#              AGENTS (concurrent agents for the second ingest run, default 4).
set -u
B=${1:?build dir}
S=$B/moat-server
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
BATCHES=${BATCHES:-40}
AGENTS=${AGENTS:-4}
for tool in wrk python3; do
    command -v "$tool" >/dev/null || {
        echo "bench/server: $tool is missing (make deps)" >&2
        exit 1
    }
done
[ -x "$S" ] || {
    echo "bench/server: $S is not built" >&2
    exit 1
}
T=$(mktemp -d)
# The data folder lives beside the build, not in /tmp, so an fsync costs what it costs on disk.
DATA=$(mktemp -d "$B/bench-server.XXXXXX")
PID=
cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$T" "$DATA"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ADMIN=$("$S" token create --data "$DATA" --role admin) || exit 1
"$S" --listen 127.0.0.1:0 --data "$DATA" >"$T/log" 2>&1 &
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
[ -n "$port" ] || {
    echo "bench/server: the server did not start: $(cat "$T/log")" >&2
    exit 1
}
URL=http://127.0.0.1:$port

# Setup and event ingest, over one kept-alive connection each.
python3 - "$port" "$ADMIN" "$BATCHES" "$AGENTS" >"$T/setup" <<'PY' || exit 1
import http.client, json, sys, threading, time
port, admin, batches, agents = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)

def call(method, path, body=None, token=admin, want=(200, 201)):
    h = {'Authorization': 'Bearer ' + token}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h['Content-Type'] = 'application/json'
    c.request(method, path, data, h)
    r = c.getresponse()
    out = r.read()
    if r.status not in want:
        sys.exit('bench/server: %s %s: %d %s' % (method, path, r.status, out[:300]))
    return json.loads(out) if out else None

call('POST', '/api/v1/clusters', {'name': 'bench', 'defense': 'on'})
t0 = time.monotonic()
obj = None
for i in range(200):
    obj = call('POST', '/api/v1/objects',
               {'name': 'obj-%d' % i, 'namespace': 'ns-%d' % (i % 10), 'app': 'app-%d' % i,
                'labels': ['tier=t%d' % (i % 3)]})['id']
for i in range(500):
    call('POST', '/api/v1/clusters/bench/rules',
         {'name': 'rule-%d' % i, 'source': 'obj-%d' % (i % 200),
          'destinations': [{'object': 'obj-%d' % ((i * 7 + 1) % 200), 'ports': '%d/%d' % (1000 + i, 1000 + i)}],
          'protocol': 'tcp', 'action': 'allow', 'priority': 1 + i % 1000})
setup = time.monotonic() - t0
print('setup_writes_per_s=%.0f' % (700 / setup))
print('object_id=%d' % obj)

# Agents: join, register, then batches of 1000 events. Every event carries its
# own source address, port and time, so a batch makes 1000 alerts the first
# time a key is seen; later batches repeat keys and add attempts, as a
# real node reporting the same flows would. Both runs send `batches` batches
# over 5000 distinct flows (5000 inserts, the rest adds attempts): first one
# agent, then `agents` agents at once, each with its own node, connection
# and flows (5000 / agents each).
jt = call('GET', '/api/v1/clusters/bench/join-token')['join_token']
def register(node):
    return call('POST', '/api/v1/agents/register',
                {'cluster': 'bench', 'node': node, 'join_token': jt, 'os': 'Debian 12',
                 'kernel': '6.1.0', 'agent_version': '0.1.0'}, token='')['token']
now = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
def batch(name, b, flows, base):
    ev = []
    for i in range(1000):
        n = base + (b * 1000 + i) % flows
        ev.append({'time': now, 'kind': 'policy', 'rule': {'id': 5, 'name': 'rule-0'},
                   'configured_action': 'block', 'applied_action': 'block', 'protocol': 'tcp',
                   'source': {'address': '10.%d.%d.%d' % (1 + n // 62500, n // 250 % 250, n % 250 + 1),
                              'port': 40000 + i},
                   'destination': {'address': '10.2.0.1', 'port': 80 + n % 7}})
    return json.dumps({'batch': name, 'events': ev}).encode()

def send(cred, bodies, errors):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    for body in bodies:
        conn.request('POST', '/api/v1/agents/events', body,
                     {'Authorization': 'Bearer ' + cred, 'Content-Type': 'application/json'})
        r = conn.getresponse()
        out = r.read()
        if r.status != 200 or json.loads(out)['alerted'] != 1000:
            errors.append('%d %s' % (r.status, out[:300]))
            return

def run(creds, bodies):
    errors = []
    threads = [threading.Thread(target=send, args=(cr, bs, errors)) for cr, bs in zip(creds, bodies)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit('bench/server: events: ' + errors[0])
    return time.monotonic() - t0

one = [[batch('b%d' % b, b, 5000, 0) for b in range(batches)]]
dt = run([register('node-1')], one)
print('ingest_events=%d' % (batches * 1000))
print('ingest_seconds=%.2f' % dt)
print('ingest_events_per_s=%.0f' % (batches * 1000 / dt))
print('ingest_batch_ms=%.1f' % (dt / batches * 1000))
per = max(1, batches // agents)
many = [[batch('b%d' % b, b, 5000 // agents, 5000 * (a + 1)) for b in range(per)]
        for a in range(agents)]
dt = run([register('agent-%d' % a) for a in range(agents)], many)
print('ingest_agents=%d' % agents)
print('ingest_agents_events_per_s=%.0f' % (per * agents * 1000 / dt))
PY
OBJ=$(sed -n 's/^object_id=//p' "$T/setup")

# wrk_run NAME PATH [SCRIPT]: one bounded wrk run; its summary goes to $T/NAME.
wrk_run() {
    name=$1
    path=$2
    script=${3-}
    set -- -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency \
        -H "Authorization: Bearer $ADMIN"
    [ -n "$script" ] && set -- "$@" -s "$script"
    wrk "$@" "$URL$path" >"$T/$name" 2>&1
}

# wrk_key NAME: requests/s, p50 and p99 latency (ms) and non-2xx count of a run, as
# "rps p50 p99 errors".
wrk_key() {
    python3 - "$T/$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = re.search(r'Requests/sec:\s*([\d.]+)', t)
p50 = re.search(r'\b50%\s+([\d.]+)(us|ms|s)\b', t)
p99 = re.search(r'\b99%\s+([\d.]+)(us|ms|s)\b', t)
bad = re.search(r'Non-2xx or 3xx responses:\s*(\d+)', t)
errs = re.search(r'Socket errors:.*', t)
def ms(m):
    return float(m.group(1)) * {'us': 0.001, 'ms': 1, 's': 1000}[m.group(2)] if m else -1
n = int(bad.group(1)) if bad else 0
if errs:
    n += sum(int(x) for x in re.findall(r'\d+', errs.group(0)))
print('%.0f %.2f %.2f %d' % (float(rps.group(1)) if rps else 0, ms(p50), ms(p99), n))
PY
}

cat >"$T/post.lua" <<'LUA'
-- POSTs network objects with names unique per wrk thread and request.
local counter = 0
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end
function init(args)
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
end
function request()
    counter = counter + 1
    local body = string.format('{"name":"w-%d-%d","namespace":"bench","app":"a%d"}',
        tid, counter, counter)
    return wrk.format(nil, nil, nil, body)
end
LUA

wrk_run rules "/api/v1/clusters/bench/rules?limit=50"
wrk_run object "/api/v1/objects/$OBJ"
wrk_run write /api/v1/objects "$T/post.lua"
kill "$PID" 2>/dev/null
wait "$PID"
rc=$?
PID=
[ "$rc" -eq 0 ] || echo "bench/server: the server exited $rc: $(tail -5 "$T/log")" >&2

set -- $(wrk_key rules)
R_RPS=$1 R_P50=$2 R_P99=$3 R_ERR=$4
set -- $(wrk_key object)
O_RPS=$1 O_P50=$2 O_P99=$3 O_ERR=$4
set -- $(wrk_key write)
W_RPS=$1 W_P50=$2 W_P99=$3 W_ERR=$4
ING=$(sed -n 's/^ingest_events_per_s=//p' "$T/setup")
INGN=$(sed -n 's/^ingest_agents_events_per_s=//p' "$T/setup")
met() { python3 -c "import sys; print('yes' if float('$1') >= $2 else 'no')"; }

cat "$T/setup" | grep -v '^object_id='
echo "cores=$(nproc)"
echo "wrk=-t$THREADS -c$CONNS -d${DURATION}s"
for m in R:rules O:object W:write; do
    v=${m%%:*}
    for f in RPS:per_s P50:p50_ms P99:p99_ms ERR:errors; do
        eval "x=\$${v}_${f%%:*}"
        case $v in R) k=read_rules ;; O) k=read_object ;; W) k=write_objects ;; esac
        echo "${k}_${f#*:}=$x"
    done
done
echo "goal_reads_5000_met=$(met "$R_RPS" 5000)"
echo "goal_ingest_50000_met=$(met "$ING" 50000)"
echo "goal_ingest_50000_${AGENTS}_agents_met=$(met "$INGN" 50000)"
echo
echo "| measure ($(nproc) cores, wrk -t$THREADS -c$CONNS -d${DURATION}s) | per second | p50 ms | p99 ms | goal | met |"
echo "|---|---:|---:|---:|---|---|"
echo "| GET /api/v1/clusters/bench/rules?limit=50 | $R_RPS | $R_P50 | $R_P99 | >= 5,000 reads/s | $(met "$R_RPS" 5000) |"
echo "| GET /api/v1/objects/ID | $O_RPS | $O_P50 | $O_P99 | >= 5,000 reads/s | $(met "$O_RPS" 5000) |"
echo "| POST /api/v1/objects (unique names) | $W_RPS | $W_P50 | $W_P99 | - | - |"
echo "| POST /api/v1/agents/events (1000/batch, 1 agent), events | $ING | - | - | >= 50,000 events/s | $(met "$ING" 50000) |"
echo "| POST /api/v1/agents/events (1000/batch, $AGENTS agents at once), events | $INGN | - | - | >= 50,000 events/s | $(met "$INGN" 50000) |"
[ "$R_ERR" -eq 0 ] && [ "$O_ERR" -eq 0 ] && [ "$W_ERR" -eq 0 ]
