#!/bin/sh
# Scale-out benchmark (issue 16): reads/s, writes/s and events/s of moat-server
# on SQLite, on PostgreSQL with one replica and with two replicas on one
# database, measured in interleaved rounds (sqlite, pg-1, pg-2, then again),
# every round kept; then the propagation of a rule written through one
# replica to AGENTS long-polling agents spread over both (p50/p99). A
# throwaway PostgreSQL (tests/pg/pg.sh) on a UNIX socket; the servers on
# 127.0.0.1. Prints key=value lines, then markdown tables.
# Usage: bench/replicas.sh BUILD_DIR   (root: PostgreSQL runs as postgres)
# Environment: DURATION (seconds per wrk run, default 5), ROUNDS (default 2),
#              CONNS (connections per measure, split over the replicas, default 32),
#              AGENTS (propagation, default 1000), BATCHES (per agent, default 5).
set -u
B=${1:?build dir}
S=$B/moat-server
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-32}
AGENTS=${AGENTS:-1000}
BATCHES=${BATCHES:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
. "$HERE/../tests/pg/pg.sh"
for tool in wrk; do
    command -v "$tool" >/dev/null || {
        echo "bench/replicas: $tool is missing (make deps)" >&2
        exit 1
    }
done
T=$(mktemp -d)
DATA=$(mktemp -d "$B/bench-replicas.XXXXXX")
PIDS=
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    pg_stop
    rm -rf "$T" "$DATA"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pg_start >"$T/pg.log" 2>&1 || {
    echo "bench/replicas: PostgreSQL: $(tail -3 "$T/pg.log")" >&2
    exit 1
}
pg_url bench1 >/dev/null && pg_url bench2 >/dev/null || exit 1
DB1="postgresql:///bench1?host=$PG_DIR&port=$PG_PORT&user=postgres"
DB2="postgresql:///bench2?host=$PG_DIR&port=$PG_PORT&user=postgres"

serve() { # NAME STORE-OPTIONS... -> URL_NAME
    name=$1
    shift
    : >"$T/$name.log"
    "$S" --listen 127.0.0.1:0 --max-connections-per-source 4000 "$@" >"$T/$name.log" 2>&1 &
    PIDS="$PIDS $!"
    i=0
    while [ $i -lt 200 ]; do
        a=$(sed -n 's/.*listening on //p' "$T/$name.log" | head -1)
        [ -n "$a" ] && eval "URL_$name=http://$a" && return 0
        i=$((i + 1))
        sleep 0.05
    done
    echo "bench/replicas: $name did not start: $(cat "$T/$name.log")" >&2
    exit 1
}
A_SQ=$("$S" token create --data "$DATA" --role admin) || exit 1
A_P1=$("$S" token create --database "$DB1" --role admin) || exit 1
A_P2=$("$S" token create --database "$DB2" --role admin) || exit 1
serve SQ --data "$DATA"
serve P1 --database "$DB1"
serve P2A --database "$DB2"
serve P2B --database "$DB2"
$PY "$HERE/replicas.py" setup "$URL_SQ" "$A_SQ" || exit 1
$PY "$HERE/replicas.py" setup "$URL_P1" "$A_P1" || exit 1
$PY "$HERE/replicas.py" setup "$URL_P2A" "$A_P2" || exit 1

cat >"$T/post.lua" <<'LUA'
-- POSTs network objects with names unique per wrk process, thread and request.
local counter = 0
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end
function init(args)
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    prefix = os.getenv("WPREFIX") or "w"
end
function request()
    counter = counter + 1
    local body = string.format('{"name":"%s-%d-%d","namespace":"bench","app":"a%d"}',
        prefix, tid, counter, counter)
    return wrk.format(nil, nil, nil, body)
end
LUA
rps() { sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' "$1"; }
# measure KIND TOKEN URL... : requests/s summed over one wrk per URL, run at once
measure() {
    kind=$1 tok=$2
    shift 2
    n=$#
    c=$((CONNS / n))
    k=0
    wpids=
    for u in "$@"; do
        k=$((k + 1))
        if [ "$kind" = read ]; then
            wrk -t1 -c"$c" -d"${DURATION}s" --timeout 5s -H "Authorization: Bearer $tok" \
                "$u/api/v1/clusters/bench/rules?limit=50" >"$T/wrk.$k" 2>&1 &
        else
            WPREFIX="w$ROUND$k$(date +%s%N)" wrk -t1 -c"$c" -d"${DURATION}s" --timeout 5s \
                -H "Authorization: Bearer $tok" -s "$T/post.lua" "$u/api/v1/objects" >"$T/wrk.$k" 2>&1 &
        fi
        wpids="$wpids $!"
    done
    for p in $wpids; do wait "$p"; done
    sum=0
    k=0
    for u in "$@"; do
        k=$((k + 1))
        if grep -q 'Non-2xx' "$T/wrk.$k"; then
            echo "bench/replicas: $kind on $u: $(grep Non-2xx "$T/wrk.$k")" >&2
        fi
        sum=$($PY -c "print(round($sum + float('$(rps "$T/wrk.$k")' or 0)))")
    done
    echo "$sum"
}
events() { # TAG TOKEN URL...
    tag=$1 tok=$2
    shift 2
    $PY "$HERE/replicas.py" events "$tok" "$tag" 4 "$BATCHES" "$@" | sed -n 's/^events_per_s=//p'
}

echo "| round | store | reads/s | writes/s | events/s |" >"$T/rounds"
echo "|---:|---|---:|---:|---:|" >>"$T/rounds"
ROUND=0
while [ $ROUND -lt "$ROUNDS" ]; do
    ROUND=$((ROUND + 1))
    for cfg in sqlite pg-1 pg-2; do
        case $cfg in
        sqlite) set -- "$A_SQ" "$URL_SQ" ;;
        pg-1) set -- "$A_P1" "$URL_P1" ;;
        pg-2) set -- "$A_P2" "$URL_P2A" "$URL_P2B" ;;
        esac
        r=$(measure read "$@")
        w=$(measure write "$@")
        e=$(events "r$ROUND" "$@")
        echo "round=$ROUND store=$cfg reads_per_s=$r writes_per_s=$w events_per_s=$e"
        echo "| $ROUND | $cfg | $r | $w | $e |" >>"$T/rounds"
        echo "$cfg $r $w $e" >>"$T/raw"
    done
done
$PY "$HERE/replicas.py" propagation "$A_P2" "$AGENTS" 3 "$URL_P2A" "$URL_P2B" >"$T/prop" || exit 1
cat "$T/prop"
retries=$(curl -s -H "Authorization: Bearer $A_P2" "$URL_P2A/metrics" | sed -n 's/^moat_write_retries_total //p')
r2=$(curl -s -H "Authorization: Bearer $A_P2" "$URL_P2B/metrics" | sed -n 's/^moat_write_retries_total //p')
echo "write_retries_pg2=$((${retries:-0} + ${r2:-0}))"
echo
echo "Interleaved rounds ($(nproc) cores; wrk $CONNS connections in all, split over the replicas;"
echo "events: 4 agents, batches of 1,000, spread over the replicas):"
echo
cat "$T/rounds"
echo
$PY - "$T/raw" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for cfg in ('sqlite', 'pg-1', 'pg-2'):
    mine = [list(map(float, r[1:])) for r in rows if r[0] == cfg]
    med[cfg] = [statistics.median(c) for c in zip(*mine)]
print('| medians | reads/s | writes/s | events/s |')
print('|---|---:|---:|---:|')
for cfg, m in med.items():
    print('| %s | %.0f | %.0f | %.0f |' % (cfg, *m))
r = lambda a, b, i: med[a][i] / med[b][i] if med[b][i] else 0
print('| pg-1 / sqlite | %.2f | %.2f | %.2f |' % tuple(r('pg-1', 'sqlite', i) for i in range(3)))
print('| pg-2 / pg-1 | %.2f | %.2f | %.2f |' % tuple(r('pg-2', 'pg-1', i) for i in range(3)))
PY
