#!/bin/sh
# Lab system tests of cluster mode (issue 5): a real moat-server, a two-node
# lab joined by its underlay, one moatd per node in cluster mode, and real
# traffic within and across nodes. Checks propagation of rules written with
# the CLI (and prints the time it took), cross-node block and alert records
# on the server, a workload added on one node identified on the other,
# enforcement and spooling while the server is down (also across a moatd
# restart), exactly-once delivery when it returns, and node/cluster states.
# The lab is dual-stack; FAMILY (4, the default, or 6) is the address family
# of the traffic (tests/lab/family.sh).
# DATAPATH (ebpf, the default, or iptables): the backend both agents run.
# Usage (root, repo root): tests/lab/cluster.sh BUILD [FAMILY [DATAPATH]]
# Prints `ok NAME` per check (NAME-v6 over IPv6) and a closing `N passed, N failed`.
set -u
B=${1:?build dir}
B=$(cd "$B" && pwd)
. tests/lab/family.sh
family_check "${2:-4}" "${3:-ebpf}"
M="$B/moat"
T="$B/moat-traffic"
D="$B/moatd"
S="$B/moat-server"
LAB="c$$"
NA="ca$$"
NB="cb$$"
TMP=$(mktemp -d)
pass=0
fail=0
PIDS=""
SERVER=""
MA=""
MB=""

ok() { pass=$((pass + 1)); echo "ok $1$SFX"; }
bad() { fail=$((fail + 1)); echo "FAIL $1$SFX: $2"; }
check() { # NAME GOT WANT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}

cleanup() {
    for p in $PIDS $MA $MB $SERVER; do kill "$p" 2>/dev/null; done
    for p in $PIDS $MA $MB $SERVER; do wait "$p" 2>/dev/null; done
    "$D" remove --node "$NA" >/dev/null 2>&1
    "$D" remove --node "$NB" >/dev/null 2>&1
    "$M" lab down --name "$LAB" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" != 0 ]; then
    echo "cluster: needs root"
    echo "0 passed, 1 failed"
    exit 1
fi
ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- the server
"$S" token create --data "$TMP/data" --role admin >"$TMP/admin" || exit 1
start_server() { # [PORT]
    : >"$TMP/server.log"
    "$S" --listen "127.0.0.1:${1:-0}" --data "$TMP/data" --heartbeat-interval 1 >>"$TMP/server.log" 2>&1 &
    SERVER=$!
    i=0
    while [ $i -lt 200 ]; do
        grep -q "listening on" "$TMP/server.log" && return 0
        i=$((i + 1))
        sleep 0.05
    done
    echo "cluster: moat-server did not start: $(cat "$TMP/server.log")"
    return 1
}
start_server || { echo "0 passed, 1 failed"; exit 1; }
ADDR=$(sed -n 's/.*listening on //p' "$TMP/server.log" | head -1)
PORT=${ADDR##*:}
export MOAT_SERVER="http://$ADDR" MOAT_TOKEN="$(cat "$TMP/admin")"

# ---- the lab: two nodes, web and api workloads on each, a late workload on A
cat >"$TMP/lab.yaml" <<YAML
kind: Node
name: $NA
cluster: lab
ips: [10.81.1.1]
---
kind: Node
name: $NB
cluster: lab
ips: [10.81.2.1]
---
kind: Workload
cluster: lab
node: $NA
name: web-a
namespace: shop
labels: {app: web}
ips: [10.81.1.10]
---
kind: Workload
cluster: lab
node: $NA
name: api-a
namespace: shop
labels: {app: api}
ips: [10.81.1.11]
---
kind: Workload
cluster: lab
node: $NA
name: late-a
namespace: shop
labels: {app: web}
ips: [10.81.1.12]
---
kind: Workload
cluster: lab
node: $NB
name: web-b
namespace: shop
labels: {app: web}
ips: [10.81.2.10]
---
kind: Workload
cluster: lab
node: $NB
name: api-b
namespace: shop
labels: {app: api}
ips: [10.81.2.11]
YAML
if ! "$M" lab up "$TMP/lab.yaml" --dual-stack --name "$LAB" --inventory "$TMP/full.yaml" >"$TMP/labup.out" 2>&1; then
    cat "$TMP/labup.out"
    echo "cluster: lab up failed"
    echo "0 passed, 1 failed"
    exit 1
fi
family_nets "$M" "$LAB"
if out=$(family_inventory_ok "$TMP/full.yaml"); then ok lab-addresses-mapped; else bad lab-addresses-mapped "$out"; fi
# Node A's inventory leaves late-a out until the test adds it.
python3 - "$TMP/full.yaml" "$TMP/inv-a.yaml" "$TMP/inv-a-late.yaml" <<'PY'
import sys
docs = [d for d in open(sys.argv[1]).read().split("---\n") if d.strip()]
open(sys.argv[2], "w").write("---\n".join(d for d in docs if "name: late-a" not in d))
open(sys.argv[3], "w").write("---\n".join(docs))
PY
cp "$TMP/inv-a.yaml" "$TMP/a.yaml"

# ---- the policy on the server: defense on, no rule yet (default block)
cat >"$TMP/policy.yaml" <<YAML
kind: Cluster
name: lab
defense: on
mode: protect
default_action: block
---
kind: NetworkObject
name: web
namespace: shop
app: web
---
kind: NetworkObject
name: api
namespace: shop
app: api
---
kind: DefenseRule
cluster: lab
name: alert-web-api
source: web
destinations:
  - object: api
    ports: "81"
protocol: tcp
action: alert
priority: 20
YAML
"$M" apply -f "$TMP/policy.yaml" >/dev/null || bad apply "moat apply failed"
JT=$("$M" cluster join-token lab -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["join_token"])')

# servers: api-a and api-b listen on 80, 81, 443
for w in api-a api-b; do
    "$M" lab exec --name "$LAB" "$w" -- "$T" serve --tcp 80 --tcp 81 --tcp 443 >"$TMP/srv-$w.out" 2>&1 &
    PIDS="$PIDS $!"
done
wait_file() { # FILE TEXT
    i=0
    while [ $i -lt 400 ]; do # 20 s: a restarted ASan moatd on a loaded machine
        grep -q "$2" "$1" 2>/dev/null && return 0
        i=$((i + 1))
        sleep 0.05
    done
    return 1
}
wait_file "$TMP/srv-api-a.out" ready
wait_file "$TMP/srv-api-b.out" ready

start_agent() { # NODE INVENTORY LOG -> $AGENT
    "$D" --server "$MOAT_SERVER" --cluster lab --join-token "$JT" --node "$1" --inventory "$2" --datapath "$DP" \
        --netns "mlab-$LAB-$1" --state-dir "$TMP/state-$1" --alerts "$TMP/alerts-$1.jsonl" >>"$3" 2>&1 &
    AGENT=$!
}
# The agents run in their node's namespace (--netns): moatd opens its server
# connections before it joins it.
start_agent "$NA" "$TMP/a.yaml" "$TMP/moatd-a.log"
MA=$AGENT
start_agent "$NB" "$TMP/full.yaml" "$TMP/moatd-b.log"
MB=$AGENT

# conn FROM DSTADDR PORT -> ok / blocked (the attempt timed out) / error: WHY;
# DSTADDR is written as IPv4 and sent to in the run's family
conn() {
    if out=$("$M" lab exec --name "$LAB" "$1" -- "$T" connect --tcp "$(fa "$2")" "$3" --timeout-ms 400 2>&1); then
        echo ok
    elif printf '%s' "$out" | grep -q "timed out"; then
        echo blocked
    else
        echo "error: $out"
    fi
}
# until_conn FROM DSTADDR PORT WANT BOUND_MS -> prints elapsed ms, or "timeout"
until_conn() {
    t0=$(ms)
    while :; do
        [ "$(conn "$1" "$2" "$3")" = "$4" ] && { echo $(($(ms) - t0)); return 0; }
        [ $(($(ms) - t0)) -gt "$5" ] && { echo timeout; return 1; }
    done
}
node_field() { # NODE FIELD
    "$M" node list -o json 2>/dev/null | python3 -c '
import json, sys
name, field = sys.argv[1], sys.argv[2]
d = json.load(sys.stdin)
for n in d.get("items", d if isinstance(d, list) else []):
    if n.get("name") == name:
        v = n
        for k in field.split("."):
            v = v.get(k) if isinstance(v, dict) else None
        print(v)
        break
else:
    print("-")' "$1" "$2"
}
cluster_status() {
    "$M" cluster get lab -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status"))'
}
wait_for() { # BOUND_S CMD... : until CMD succeeds
    bound=$1
    shift
    t0=$(ms)
    while [ $(($(ms) - t0)) -lt $((bound * 1000)) ]; do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
enforcing() { [ "$(node_field "$1" datapath.state)" = enforcing ] && [ "$(node_field "$1" state)" = enforcing ]; }
# applied NODE -> "REVISION APPLIED_AT_MS" from the agent's status file
applied() {
    "$D" status --node "$1" -o json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d.get("revision", 0), int(d.get("applied_at", 0) * 1000))' 2>/dev/null || echo "0 0"
}
# propagated T0_MS REV_A REV_B -> ms from T0 until both agents applied a newer revision
propagated() {
    i=0
    while [ $i -lt 100 ]; do
        set -- "$1" "$2" "$3" $(applied "$NA") $(applied "$NB")
        if [ "$4" -gt "$2" ] && [ "$6" -gt "$3" ]; then
            last=$5
            [ "$7" -gt "$last" ] && last=$7
            echo $((last - $1))
            return 0
        fi
        i=$((i + 1))
        sleep 0.05
    done
    echo timeout
    return 1
}
alerts() { "$M" alert list --cluster lab --limit 1000 -o json 2>/dev/null | python3 tests/lab/server_alerts.py "$@"; }

# ---- 1. both agents join, enforce, the cluster is normal
wait_for 60 enforcing "$NA" && ok node-a-enforcing || bad node-a-enforcing "$(node_field "$NA" state); $(tail -3 "$TMP/moatd-a.log")"
wait_for 60 enforcing "$NB" && ok node-b-enforcing || bad node-b-enforcing "$(node_field "$NB" state); $(tail -3 "$TMP/moatd-b.log")"
wait_for 10 sh -c "[ \"\$(\"$M\" cluster get lab -o json | python3 -c 'import json,sys; print(json.load(sys.stdin).get(\"status\"))')\" = normal ]" &&
    ok cluster-normal || bad cluster-normal "$(cluster_status)"
check workloads-reported "$("$M" workload list --cluster lab -o json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d.get("items", [])))')" 4

# ---- 2. default block, across nodes and within one; alerts on the server
check cross-node-default-block "$(conn web-a 10.81.2.11 80)" blocked
check same-node-default-block "$(conn web-a 10.81.1.11 80)" blocked
wait_for 10 sh -c "[ \$(\"$M\" alert list --cluster lab -o json | python3 tests/lab/server_alerts.py count src=web-a dst=api-b dport=80 applied=block node=$NB) = 1 ]" &&
    ok cross-node-block-alert || bad cross-node-block-alert "$(alerts count src=web-a dst=api-b dport=80)"

# ---- 3. a rule written with the CLI is enforced on both nodes; measure it
cat >"$TMP/rule.yaml" <<YAML
kind: DefenseRule
cluster: lab
name: web-to-api
source: web
destinations:
  - object: api
    ports: "80"
protocol: tcp
action: allow
priority: 10
YAML
ra=$(applied "$NA" | cut -d' ' -f1)
rb=$(applied "$NB" | cut -d' ' -f1)
t0=$(ms)
"$M" rule create --cluster lab -f "$TMP/rule.yaml" >/dev/null || bad rule-create "moat rule create failed"
p=$(propagated "$t0" "$ra" "$rb")
[ "$p" != timeout ] && ok rule-create-applied-on-both || bad rule-create-applied-on-both "$p ms"
echo "propagation: moat rule create -> applied on both nodes in $p ms"
r1=$(until_conn web-a 10.81.2.11 80 ok 15000)
r2=$(until_conn web-b 10.81.1.11 80 ok 15000)
r3=$(until_conn web-a 10.81.1.11 80 ok 15000)
total=$(($(ms) - t0))
[ "$r1" != timeout ] && [ "$r2" != timeout ] && [ "$r3" != timeout ] && ok rule-enforced-on-both-nodes ||
    bad rule-enforced-on-both-nodes "web-a->api-b $r1, web-b->api-a $r2, web-a->api-a $r3"
echo "traffic: allowed on both nodes $total ms after the write (probes take ~0.3 s each)"
check rule-other-port-still-blocked "$(conn web-a 10.81.2.11 443)" blocked

# ---- 4. cross-node alert rule: the connection passes, the server has the alert
for i in 1 2 3; do conn web-a 10.81.2.11 81 >/dev/null; done
wait_for 10 sh -c "[ \$(\"$M\" alert list --cluster lab -o json | python3 tests/lab/server_alerts.py attempts src=web-a dst=api-b dport=81 applied=alert rule=alert-web-api node=$NB) = 3 ]" &&
    ok cross-node-alert-record || bad cross-node-alert-record "$(alerts attempts src=web-a dst=api-b dport=81 applied=alert)"
check alert-passes "$(conn web-b 10.81.1.11 81)" ok

# ---- 5. a workload added on node A is identified as a source on node B
check late-unknown-blocked "$(conn late-a 10.81.2.11 80)" blocked
cp "$TMP/inv-a-late.yaml" "$TMP/a.yaml.tmp" && mv "$TMP/a.yaml.tmp" "$TMP/a.yaml"
r=$(until_conn late-a 10.81.2.11 80 ok 15000)
[ "$r" != timeout ] && ok late-workload-identified-on-b || bad late-workload-identified-on-b "$(tail -3 "$TMP/moatd-b.log")"
echo "propagation: workload added on node A -> identified on node B in $r ms"
conn late-a 10.81.2.11 443 >/dev/null
wait_for 10 sh -c "[ \$(\"$M\" alert list --cluster lab -o json | python3 tests/lab/server_alerts.py count src=late-a dst=api-b dport=443 node=$NB) = 1 ]" &&
    ok late-workload-alert-source || bad late-workload-alert-source "$(alerts count src=late-a dport=443)"

# ---- 6. a rule deleted stops being enforced on both nodes
ra=$(applied "$NA" | cut -d' ' -f1)
rb=$(applied "$NB" | cut -d' ' -f1)
t0=$(ms)
"$M" rule delete --cluster lab web-to-api >/dev/null || bad rule-delete "moat rule delete failed"
p=$(propagated "$t0" "$ra" "$rb")
[ "$p" != timeout ] && ok rule-delete-applied-on-both || bad rule-delete-applied-on-both "$p ms"
echo "propagation: moat rule delete -> applied on both nodes in $p ms"
r1=$(until_conn web-a 10.81.2.11 80 blocked 15000)
r2=$(until_conn web-b 10.81.1.11 80 blocked 15000)
total=$(($(ms) - t0))
[ "$r1" != timeout ] && [ "$r2" != timeout ] && ok rule-delete-enforced || bad rule-delete-enforced "$r1 $r2"
echo "traffic: blocked on both nodes $total ms after the write"
"$M" rule create --cluster lab -f "$TMP/rule.yaml" >/dev/null
until_conn web-a 10.81.2.11 80 ok 15000 >/dev/null

# ---- 7. the server goes away: agents keep enforcing and spool
before=$(alerts attempts src=web-a dst=api-b dport=443 applied=block)
kill -9 "$SERVER"
wait "$SERVER" 2>/dev/null
SERVER=""
made=0
check down-allowed-stays-allowed "$(conn web-a 10.81.2.11 80)" ok
check down-blocked-stays-blocked "$(conn web-a 10.81.2.11 443)" blocked
made=$((made + 1))
for i in 1 2 3 4; do conn web-a 10.81.2.11 443 >/dev/null; made=$((made + 1)); done
# moatd of node B restarts while the server is down: the last policy is on disk
kill "$MB"
wait "$MB" 2>/dev/null
grep -q "stopping; enforcement stays in place" "$TMP/moatd-b.log" && ok sigterm-stops-cleanly ||
    bad sigterm-stops-cleanly "$(tail -3 "$TMP/moatd-b.log")"
start_agent "$NB" "$TMP/full.yaml" "$TMP/moatd-b2.log"
MB=$AGENT
wait_file "$TMP/moatd-b2.log" "applied" && ok restart-without-server-applies-last-policy ||
    bad restart-without-server-applies-last-policy "$(cat "$TMP/moatd-b2.log")"
check restarted-allowed-stays-allowed "$(conn web-a 10.81.2.11 80)" ok
check restarted-blocked-stays-blocked "$(conn web-a 10.81.2.11 443)" blocked
made=$((made + 1))
for i in 1 2; do conn web-a 10.81.2.11 443 >/dev/null; made=$((made + 1)); done
pending=$(ls "$TMP/state-$NB/spool" 2>/dev/null | grep -c '\.json$')
[ "$pending" -ge 1 ] && ok events-spooled || bad events-spooled "no batch in $TMP/state-$NB/spool"

# ---- 8. the server returns: every spooled event arrives exactly once
start_server "$PORT" || bad server-restart "$(cat "$TMP/server.log")"
want=$((before + made))
wait_for 20 sh -c "[ \$(\"$M\" alert list --cluster lab -o json | python3 tests/lab/server_alerts.py attempts src=web-a dst=api-b dport=443 applied=block) -ge $want ]"
wait_for 10 sh -c "[ -z \"\$(ls $TMP/state-$NB/spool | grep '\.json\$')\" ]" || bad spool-drained "$(ls "$TMP/state-$NB/spool")"
got=$(alerts attempts src=web-a dst=api-b dport=443 applied=block)
check delivered-exactly-once "$got" "$want"
if [ "$got" != "$want" ]; then # what node B saw, by process: its alert lines
    echo "   made $made after $before; node B's alert lines for :443:"
    grep '"port":443' "$TMP/alerts-$NB.jsonl" | python3 -c '
import json, sys
for l in sys.stdin:
    a = json.loads(l)
    print("   ", a["id"], a["source"]["workload"], a["attempts"], a["last_seen"])'
fi

# ---- 9. an agent stops: its node turns offline, the cluster abnormal; and back
kill "$MA"
wait "$MA" 2>/dev/null
MA=""
t0=$(ms)
wait_for 15 sh -c "[ \"\$(\"$M\" node list -o json | python3 -c 'import json,sys; print([n[\"state\"] for n in json.load(sys.stdin)[\"items\"] if n[\"name\"]==\"$NA\"][0])')\" = offline ]" &&
    ok node-offline || bad node-offline "$(node_field "$NA" state)"
echo "node offline after $(($(ms) - t0)) ms without heartbeats (interval 1 s)"
check cluster-abnormal "$(cluster_status)" abnormal
check offline-node-still-enforces "$(conn web-b 10.81.1.11 443)" blocked
start_agent "$NA" "$TMP/a.yaml" "$TMP/moatd-a2.log"
MA=$AGENT
wait_for 15 enforcing "$NA" && ok node-back || bad node-back "$(node_field "$NA" state)"
wait_for 10 sh -c "[ \"\$(\"$M\" cluster get lab -o json | python3 -c 'import json,sys; print(json.load(sys.stdin).get(\"status\"))')\" = normal ]" &&
    ok cluster-normal-again || bad cluster-normal-again "$(cluster_status)"

for f in "$TMP"/moatd-*.log; do
    if grep -q "ERROR: AddressSanitizer\|runtime error:" "$f"; then bad sanitizer "$(grep -m3 'ERROR\|runtime error' "$f")"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
