# Fleet (issue 12): 3,000 simulated agents (tools/fleet/moat_fleet.c: one
# epoll loop, each agent a connection from 127.1.X.Y) register, hold a
# policy long-poll each and send heartbeats while a rule changes twice and
# an admin reads rules 50 times. Every agent must get every change, every
# read must be answered, the server must hold the polls on a fixed number of
# threads, and stop cleanly. The times are printed, not asserted (the
# benchmark, bench/server.sh, measures them). Sourced by tests/api/run.sh.
DATA=$T/fleet
mkdir -p "$DATA"
F_ADMIN=$("$S" token create --data "$DATA" --role admin)
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
    if [ -n "$F_THREADS" ] && [ "$F_THREADS" -le 16 ]; then ok "fleet: $F_N connections on $F_THREADS threads"; else nok "fleet: a fixed number of threads" "Threads: $F_THREADS"; fi
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
req GET '/api/v1/nodes?cluster=fleet&limit=1' "" "$F_ADMIN"
check "fleet: every node is listed" 200 "j['total'] == $F_N"
req GET /api/v1/clusters/fleet "" "$F_ADMIN"
check "fleet: the cluster counts every node, lists at most 100 abnormal ones" 200 "j['nodes'] == $F_N and j['abnormal'] == j['nodes'] - j['enforcing'] and len(j['abnormal_nodes']) == min(100, j['abnormal'])"
if stop; then ok "fleet: clean shutdown"; else nok "fleet: clean shutdown" "$(tail -20 "$T/log")"; fi
