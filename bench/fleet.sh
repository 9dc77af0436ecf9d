#!/bin/sh
# moat-server at fleet scale and under hostile load (issue 12), on 127.0.0.1:
#  A. long-polls: 1,000 and 10,000 simulated agents (tools/fleet: one epoll
#     loop) each hold a policy long-poll and heartbeat (one per agent every
#     10 s) while a rule changes ROUNDS_PROP times and an admin reads a rule
#     list 200 times: connections, resident memory and threads of the server,
#     propagation to all agents (p50, p99), admin read latency (p50, p99);
#  B. cost per request at 10 and at 10,000 nodes: a wrong token, an agent's
#     heartbeat, an admin's cluster list — wrk on two servers at once, runs
#     interleaved (small, big, big, small, ...), throttling off;
#  C. writes at 1,000 and at 100,000 rules (the big store also holds
#     1,000,000 alerts): wrk POSTing rules with unique names, interleaved; and
#     `moat apply -f` of 10,000 new rules into each, interleaved.
# Prints `key=value` lines (raw rounds as `raw ...`), then markdown tables.
# Usage: bench/fleet.sh BUILD_DIR (release). Environment: ROUNDS (B and C,
# default 3), DURATION (seconds per wrk run, default 5), ROUNDS_PROP (rule
# changes per fleet, default 5), BIG (agents of the big fleet, default 10000),
# RULES_BIG and ALERTS_BIG (the big store, default 100000 and 1000000), STAGES
# (which of A B C to run, default all).
set -u
B=${1:?build dir}
S=$B/moat-server
F=$B/moat-fleet
M=$B/moat
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
ROUNDS_PROP=${ROUNDS_PROP:-5}
BIG=${BIG:-10000}
RULES_BIG=${RULES_BIG:-100000}
ALERTS_BIG=${ALERTS_BIG:-1000000}
STAGES=${STAGES:-A B C}
stage() {
    case " $STAGES " in *" $1 "*) return 0 ;; esac
    return 1
}
for tool in wrk python3; do
    command -v "$tool" >/dev/null || {
        echo "bench/fleet: $tool is missing (make deps)" >&2
        exit 1
    }
done
for x in "$S" "$F" "$M"; do
    [ -x "$x" ] || {
        echo "bench/fleet: $x is not built" >&2
        exit 1
    }
done
T=$(mktemp -d)
DATA=$(mktemp -d "$B/bench-fleet.XXXXXX") # beside the build: fsync costs what it costs on disk
PIDS=
cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$T" "$DATA"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# serve NAME [ARGS]: starts a server on data folder $DATA/NAME; sets NAME_PID, NAME_PORT,
# NAME_ADMIN (an admin token).
serve() {
    name=$1
    shift
    mkdir -p "$DATA/$name"
    tok=$("$S" token create --data "$DATA/$name" --role admin) || exit 1
    : >"$T/$name.log"
    "$S" --listen 127.0.0.1:0 --data "$DATA/$name" "$@" >"$T/$name.log" 2>&1 &
    pid=$!
    PIDS="$PIDS $pid"
    i=0
    port=
    while [ $i -lt 200 ]; do
        port=$(sed -n 's/^moat-server: listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$T/$name.log")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    [ -n "$port" ] || {
        echo "bench/fleet: server $name did not start: $(cat "$T/$name.log")" >&2
        exit 1
    }
    eval "${name}_PID=$pid ${name}_PORT=$port ${name}_ADMIN=$tok"
}
# unserve NAME: stops it.
unserve() {
    eval "p=\$${1}_PID"
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}
# api NAME METHOD PATH [BODY]: one request to server NAME as its admin; the answer on stdout.
api() {
    eval "p=\$${1}_PORT t=\$${1}_ADMIN"
    if [ -n "${4-}" ]; then
        curl -s -m 120 -X "$2" -H "Authorization: Bearer $t" -H 'Content-Type: application/json' \
            --data-binary "$4" "http://127.0.0.1:$p$3"
    else
        curl -s -m 120 -X "$2" -H "Authorization: Bearer $t" "http://127.0.0.1:$p$3"
    fi
}
jfield() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# setup NAME RULES: a cluster `bench`, 100 objects and RULES rules (moat apply, 10,000 at a
# time); a join token in NAME_JT.
setup() {
    api "$1" POST /api/v1/clusters '{"name":"bench","defense":"on"}' >/dev/null
    n=0
    while [ "$n" -lt "$2" ]; do
        k=$(($2 - n < 10000 ? $2 - n : 10000))
        python3 - "$T/setup-$1.yaml" "$n" "$k" <<'PY'
import sys
path, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, 'w') as f:
    if start == 0:
        for i in range(100):
            f.write('---\nkind: NetworkObject\nname: o%d\nnamespace: ns%d\napp: a%d\n' % (i, i % 10, i))
    for i in range(start, start + count):
        f.write('---\nkind: DefenseRule\ncluster: bench\nname: s%d\nsource: o%d\ndestinations:\n'
                '  - object: o%d\n    ports: %d/%d\nprotocol: tcp\naction: allow\npriority: %d\n'
                % (i, i % 100, (i * 7 + 1) % 100, 1 + i % 60000, 1 + i % 60000, 1 + i % 1000))
PY
        eval "MOAT_SERVER=http://127.0.0.1:\$${1}_PORT MOAT_TOKEN=\$${1}_ADMIN" \
            "$M" apply -f "$T/setup-$1.yaml" >/dev/null || {
            echo "bench/fleet: setup of $1 failed" >&2
            exit 1
        }
        n=$((n + k))
    done
    jt=$(api "$1" POST /api/v1/clusters/bench/join-tokens '{"ttl":"1d"}' | jfield "['join_token']")
    eval "${1}_JT=$jt"
}
say() { printf '%s\n' "$*" | tee -a "$T/out"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# ---------- A: long-polls ----------
if stage A; then
    for N in 1000 "$BIG"; do
        serve "p$N"
        setup "p$N" 20
        rule=$(api "p$N" GET '/api/v1/clusters/bench/rules?name=s0' | jfield "['items'][0]['id']")
        eval "port=\$p${N}_PORT admin=\$p${N}_ADMIN jt=\$p${N}_JT pid=\$p${N}_PID"
        rm -f "$T/pause"
        "$F" --port "$port" --cluster bench --join-token "$jt" --agents "$N" --admin-token "$admin" \
            --change "/api/v1/clusters/bench/rules/$rule" --rounds "$ROUNDS_PROP" --reads 200 \
            --heartbeats-per-s $((N / 10)) --metrics --hold 300 --pause "$T/pause" >"$T/fleet$N.json" &
        fp=$!
        i=0
        while [ ! -f "$T/pause" ] && kill -0 "$fp" 2>/dev/null && [ $i -lt 6000 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status")
        thr=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$pid/status")
        fds=$(ls "/proc/$pid/fd" | wc -l)
        rm -f "$T/pause"
        wait "$fp" || echo "bench/fleet: the fleet of $N ended with errors: $(head -c 400 "$T/fleet$N.json")" >&2
        python3 - "$T/fleet$N.json" "$N" "$rss" "$thr" "$fds" <<'PY' | tee -a "$T/out"
import json, statistics, sys
r = json.load(open(sys.argv[1]))
n, rss, thr, fds = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
rounds = r['rounds']
print('fleet%s_holding=%d' % (n, r['holding']))
print('fleet%s_server_long_polls=%d' % (n, r['server_long_polls']))
print('fleet%s_server_connections=%d' % (n, r['server_connections']))
print('fleet%s_rss_mib=%.0f' % (n, rss / 1024))
print('fleet%s_rss_per_conn_kib=%.1f' % (n, rss / max(1, r['server_connections'])))
print('fleet%s_threads=%s' % (n, thr))
print('fleet%s_fds=%s' % (n, fds))
print('fleet%s_register_s=%.1f' % (n, r['register_s']))
print('fleet%s_propagation_p50_ms=%.0f' % (n, statistics.median(x['propagation']['p50_ms'] for x in rounds)))
print('fleet%s_propagation_p99_ms=%.0f' % (n, statistics.median(x['propagation']['p99_ms'] for x in rounds)))
print('fleet%s_propagation_missing=%d' % (n, sum(x['missing'] for x in rounds)))
print('fleet%s_admin_read_p50_ms=%.1f' % (n, r['admin_reads']['p50_ms']))
print('fleet%s_admin_read_p99_ms=%.1f' % (n, r['admin_reads']['p99_ms']))
print('fleet%s_heartbeats=%d' % (n, r['heartbeats_ok']))
print('raw fleet%s propagation p50/p99 ms per round: %s' % (n, ', '.join(
    '%.0f/%.0f' % (x['propagation']['p50_ms'], x['propagation']['p99_ms']) for x in rounds)))
PY
        unserve "p$N"
    done
fi

# ---------- B: cost per request at 10 and at 10,000 nodes ----------
if stage B; then
    cat >"$T/hb.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"datapath":{"state":"enforcing","reason":""}}'
wrk.headers["Content-Type"] = "application/json"
LUA
    for size in 10 10000; do
        serve "n$size" --auth-failures 1000000/1 # no throttling: each lookup is measured
        setup "n$size" 20
        eval "port=\$n${size}_PORT jt=\$n${size}_JT"
        "$F" --port "$port" --cluster bench --join-token "$jt" --agents "$size" --register-only \
            --tokens "$T/tokens$size" >/dev/null || echo "bench/fleet: registering $size nodes failed" >&2
    done
    cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
    # wrkrps PID PORT PATH TOKEN [SCRIPT]: requests/s, p99 ms and the server's CPU time per
    # request (microseconds: what the machine's other load does not change much) of a wrk run.
    wrkrps() {
        set -- "$1" "$2" "$3" "$4" "${5-}"
        c0=$(cputicks "$1")
        if [ -n "$5" ]; then
            wrk -t2 -c32 -d"${DURATION}s" --latency -H "Authorization: Bearer $4" -s "$5" \
                "http://127.0.0.1:$2$3" >"$T/wrk" 2>&1
        else
            wrk -t2 -c32 -d"${DURATION}s" --latency -H "Authorization: Bearer $4" \
                "http://127.0.0.1:$2$3" >"$T/wrk" 2>&1
        fi
        c1=$(cputicks "$1")
        python3 - "$T/wrk" "$c0" "$c1" "$(getconf CLK_TCK)" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = re.search(r'Requests/sec:\s*([\d.]+)', t)
n = re.search(r'(\d+) requests in', t)
p99 = re.search(r'\b99%\s+([\d.]+)(us|ms|s)\b', t)
ms = float(p99.group(1)) * {'us': 0.001, 'ms': 1, 's': 1000}[p99.group(2)] if p99 else -1
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
reqs = int(n.group(1)) if n else 0
print('%.0f %.2f %.0f' % (float(rps.group(1)) if rps else 0, ms, cpu / reqs * 1e6 if reqs else -1))
PY
    }
    WRONG=moat_$(printf '%064d' 7)
    for r in $(seq 1 "$ROUNDS"); do
        order="10 10000"
        [ $((r % 2)) -eq 0 ] && order="10000 10"
        for size in $order; do
            eval "port=\$n${size}_PORT admin=\$n${size}_ADMIN pid=\$n${size}_PID"
            cred=$(sed -n '1p' "$T/tokens$size")
            set -- $(wrkrps "$pid" "$port" /api/v1/clusters "$WRONG")
            eval "wrong_${size}_$r=$1 wrongcpu_${size}_$r=$3"
            set -- $(wrkrps "$pid" "$port" /api/v1/agents/heartbeat "$cred" "$T/hb.lua")
            eval "hb_${size}_$r=$1 hbcpu_${size}_$r=$3"
            set -- $(wrkrps "$pid" "$port" /api/v1/clusters "$admin")
            eval "list_${size}_$r=$1 listcpu_${size}_$r=$3"
            eval "say \"raw round $r nodes $size: wrong-token \$wrong_${size}_$r/s (\$wrongcpu_${size}_$r us CPU each), heartbeat \$hb_${size}_$r/s (\$hbcpu_${size}_$r us), cluster list \$list_${size}_$r/s (\$listcpu_${size}_$r us)\""
        done
    done
    for m in wrong hb list; do
        for size in 10 10000; do
            vals= cpus=
            for r in $(seq 1 "$ROUNDS"); do eval "vals=\"\$vals \$${m}_${size}_$r\" cpus=\"\$cpus \$${m}cpu_${size}_$r\""; done
            # shellcheck disable=SC2086 # lists on purpose
            eval "${m}_${size}=$(median $vals) ${m}cpu_${size}=$(median $cpus)"
            eval "say ${m}_${size}_per_s=\$${m}_${size}"
            eval "say ${m}_${size}_cpu_us=\$${m}cpu_${size}"
        done
        eval "a=\$${m}cpu_10 b=\$${m}cpu_10000"
        say "${m}_cost_ratio_10000_vs_10=$(python3 -c "print('%.2f' % ($b / $a if $a else 0))")"
    done
    unserve n10
    unserve n10000
fi

# ---------- C: writes at 1,000 and at 100,000 rules ----------
if stage C; then
    serve w1k
    setup w1k 1000
    serve w100k
    t0=$(date +%s.%N)
    setup w100k "$RULES_BIG"
    t1=$(date +%s.%N)
    say "setup_100k_rules_s=$(python3 -c "print('%.1f' % ($t1 - $t0))")"
    # ALERTS_BIG alerts in the big store: batches of 4,000 events (1 MiB bodies), each a distinct alert
    node=$("$F" --port "$w100k_PORT" --cluster bench --join-token "$w100k_JT" --agents 1 --register-only --tokens "$T/alert-node" --prefix alerts >/dev/null && cat "$T/alert-node")
    t0=$(date +%s.%N)
    python3 - "$w100k_PORT" "$node" "$ALERTS_BIG" <<'PY' || echo "bench/fleet: loading alerts failed" >&2
import http.client, json, sys, time
port, cred, total = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
now = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
for b in range(total // 4000):
    ev = []
    for i in range(4000):
        n = b * 4000 + i
        ev.append({'time': now, 'kind': 'policy', 'rule': {'id': 3, 'name': 's0'},
                   'applied_action': 'block', 'protocol': 'tcp',
                   'source': {'address': '10.%d.%d.%d' % (n // 65536 % 256, n // 256 % 256, n % 256)},
                   'destination': {'address': '10.200.0.1', 'port': 443}})
    c.request('POST', '/api/v1/agents/events', json.dumps({'batch': 'a%d' % b, 'events': ev}),
              {'Authorization': 'Bearer ' + cred, 'Content-Type': 'application/json'})
    r = c.getresponse()
    out = json.loads(r.read())
    if r.status != 200 or out['alerted'] != 4000:
        sys.exit('alerts: %d %s' % (r.status, out))
PY
    t1=$(date +%s.%N)
    say "load_1m_alerts_s=$(python3 -c "print('%.1f' % ($t1 - $t0))")"
    say "alerts_in_big_store=$(api w100k GET '/api/v1/alerts?limit=1' | jfield "['total']")"
    cat >"$T/rule.lua" <<'LUA'
-- POSTs rules with names unique per wrk thread and request.
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
    local body = string.format('{"name":"w-%d-%d-%d","source":"o%d","destinations":[{"object":"o%d","ports":"%d"}],"action":"alert","priority":%d}',
        os.time(), tid, counter, counter % 100, (counter * 3) % 100, 1 + counter % 60000, 1 + counter % 1000)
    return wrk.format(nil, nil, nil, body)
end
LUA
    for r in $(seq 1 "$ROUNDS"); do
        order="w1k w100k"
        [ $((r % 2)) -eq 0 ] && order="w100k w1k"
        for s in $order; do
            eval "port=\$${s}_PORT admin=\$${s}_ADMIN pid=\$${s}_PID"
            set -- $(wrkrps "$pid" "$port" /api/v1/clusters/bench/rules "$admin" "$T/rule.lua")
            eval "wr_${s}_$r=$1 wrp99_${s}_$r=$2 wrcpu_${s}_$r=$3"
            say "raw round $r $s: rule writes $1/s (p99 $2 ms, $3 us server CPU each)"
        done
    done
    # moat apply of 10,000 new rules, interleaved
    for r in $(seq 1 "$ROUNDS"); do
        order="w1k w100k"
        [ $((r % 2)) -eq 0 ] && order="w100k w1k"
        for s in $order; do
            python3 - "$T/apply.yaml" "$r" <<'PY'
import sys
path, r = sys.argv[1], int(sys.argv[2])
with open(path, 'w') as f:
    for i in range(10000):
        f.write('---\nkind: DefenseRule\ncluster: bench\nname: ap%d-%d\nsource: o%d\ndestinations:\n'
                '  - object: o%d\n    ports: %d/%d\nprotocol: tcp\naction: allow\npriority: %d\n'
                % (r, i, i % 100, (i * 3 + 2) % 100, 1 + i % 60000, 1 + i % 60000, 1 + i % 1000))
PY
            eval "pid=\$${s}_PID"
            c0=$(cputicks "$pid")
            t0=$(date +%s.%N)
            eval "MOAT_SERVER=http://127.0.0.1:\$${s}_PORT MOAT_TOKEN=\$${s}_ADMIN" \
                "$M" apply -f "$T/apply.yaml" >/dev/null || echo "bench/fleet: apply on $s failed" >&2
            t1=$(date +%s.%N)
            c1=$(cputicks "$pid")
            secs=$(python3 -c "print('%.2f' % ($t1 - $t0))")
            scpu=$(python3 -c "print('%.2f' % (($c1 - $c0) / $(getconf CLK_TCK)))")
            eval "ap_${s}_$r=$secs apcpu_${s}_$r=$scpu"
            say "raw round $r $s: moat apply of 10,000 rules ${secs} s (server CPU ${scpu} s)"
        done
    done
    for s in w1k w100k; do
        wv= av= pv= cv=
        for r in $(seq 1 "$ROUNDS"); do
            eval "wv=\"\$wv \$wr_${s}_$r\" av=\"\$av \$ap_${s}_$r\" pv=\"\$pv \$wrp99_${s}_$r\" cv=\"\$cv \$wrcpu_${s}_$r\" acv=\"\${acv-} \$apcpu_${s}_$r\""
        done
        # shellcheck disable=SC2086 # lists on purpose
        eval "writes_$s=$(median $wv) apply_$s=$(median $av) writes_p99_$s=$(median $pv) writes_cpu_$s=$(median $cv)"
        eval "say writes_${s}_per_s=\$writes_$s"
        eval "say writes_${s}_cpu_us=\$writes_cpu_$s"
        eval "say writes_${s}_p99_ms=\$writes_p99_$s"
        eval "say apply_10k_rules_${s}_s=\$apply_$s"
        # shellcheck disable=SC2086 # a list on purpose
        say "apply_10k_rules_${s}_server_cpu_s=$(median $acv)"
        acv=
    done
    unserve w1k
    unserve w100k
fi

python3 - "$T/out" "$BIG" <<'PY'
import sys
kv = {}
for line in open(sys.argv[1]):
    if '=' in line and not line.startswith('raw'):
        k, v = line.strip().split('=', 1)
        kv[k] = v
big = sys.argv[2]
g = lambda k: kv.get(k, '-')
print()
print('| measure (2 cores, shared) | 1,000 agents | %s agents | goal |' % big)
print('|---|---:|---:|---|')
for label, key, goal in [
        ('long-polls held (server gauge)', 'server_long_polls', '10,000'),
        ('connections open', 'server_connections', ''),
        ('server threads', 'threads', 'fixed'),
        ('server resident memory, MiB', 'rss_mib', ''),
        ('... per connection, KiB', 'rss_per_conn_kib', ''),
        ('propagation to all, p50 ms (median of rounds)', 'propagation_p50_ms', ''),
        ('propagation to all, p99 ms (median of rounds)', 'propagation_p99_ms', '< 1,000'),
        ('admin rule-list read under load, p50 ms', 'admin_read_p50_ms', ''),
        ('admin rule-list read under load, p99 ms', 'admin_read_p99_ms', '< 100')]:
    print('| %s | %s | %s | %s |' % (label, g('fleet1000_' + key), g('fleet%s_%s' % (big, key)), goal))
print()
print('| per request (wrk -c32, medians of interleaved rounds) | 10 nodes | 10,000 nodes | cost ratio (CPU) | goal |')
print('|---|---:|---:|---:|---|')
for label, m in [('wrong token', 'wrong'), ('agent heartbeat', 'hb'),
                 ('admin GET /clusters', 'list')]:
    print('| %s: requests/s (server CPU us each) | %s (%s) | %s (%s) | %s | %s |' % (
        label, g(m + '_10_per_s'), g(m + '_10_cpu_us'), g(m + '_10000_per_s'),
        g(m + '_10000_cpu_us'), g(m + '_cost_ratio_10000_vs_10'), '<= 1.5' if m != 'list' else ''))
print()
print('| writes (medians of interleaved rounds) | 1,000 rules | 100,000 rules + 1,000,000 alerts | goal |')
print('|---|---:|---:|---|')
print('| POST .../rules (32 writers), writes/s | %s | %s | >= 1,000 |' % (g('writes_w1k_per_s'), g('writes_w100k_per_s')))
print('| ... server CPU per write, us | %s | %s | |' % (g('writes_w1k_cpu_us'), g('writes_w100k_cpu_us')))
print('| ... p99 ms | %s | %s | |' % (g('writes_w1k_p99_ms'), g('writes_w100k_p99_ms')))
print('| moat apply -f of 10,000 rules, s | %s | %s | < 3 |' % (g('apply_10k_rules_w1k_s'), g('apply_10k_rules_w100k_s')))
print('| ... server CPU, s | %s | %s | |' % (g('apply_10k_rules_w1k_server_cpu_s'), g('apply_10k_rules_w100k_server_cpu_s')))
PY
