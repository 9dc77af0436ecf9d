#!/bin/sh
# moatd's life on a lab node (root): one agent per node (a second is refused
# and the first keeps enforcing), `moatd remove` refused while the agent runs,
# `moatd status` after kill -9 (not running), a restart after kill -9 (a stale
# lock does not block it), a policy file written slowly after `rm` applied
# only once complete, a node no document names, and `moat lab down` removing
# what the agents left (and refusing while one runs). The agents run as the
# lab docs show them: `moatd --node N --netns mlab-LAB-N`, from the host.
# The lab is dual-stack; FAMILY (4, the default, or 6) is the address family
# of the traffic that shows enforcement (tests/lab/family.sh).
# DATAPATH (ebpf, the default, or iptables): the backend moatd runs.
# Usage (root, repo root): tests/lab/node_agent.sh BUILD [FAMILY [DATAPATH]]
# Prints `ok NAME` per check (NAME-v6 over IPv6) and a closing `N passed, N failed`.
set -u
B=${1:?build dir}
B=$(cd "$B" && pwd)
. tests/lab/family.sh
family_check "${2:-4}" "${3:-ebpf}"
# What moatd status says of a stopped agent's enforcement: the eBPF backend's is
# pinned, the iptables one's stays in the node's namespace.
LEFT=$([ "$DP" = iptables ] && echo "still in place" || echo "still pinned")
M="$B/moat"
T="$B/moat-traffic"
D="$B/moatd"
LAB="na$$"
NODE="nn$$"
NS="mlab-$LAB-$NODE"
TMP=$(mktemp -d)
POLICY="$TMP/policy.yaml"
INV="$TMP/inventory.yaml"
PIN="/sys/fs/bpf/moat/$NODE"
STATUS="/run/moat/moatd-$NODE.json"
LOCK="/run/moat/moatd-$NODE.lock"
pass=0
fail=0
PIDS=""

ok() { pass=$((pass + 1)); echo "ok $1$SFX"; }
bad() { fail=$((fail + 1)); echo "FAIL $1$SFX: $2"; }
check() { # NAME GOT WANT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    "$M" lab down --name "$LAB" >/dev/null 2>&1
    "$D" remove --node "zz$$" >/dev/null 2>&1
    "$D" remove --node "$NODE" --netns "$NS" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
if [ "$(id -u)" != 0 ]; then
    echo "node_agent: needs root"
    echo "0 passed, 1 failed"
    exit 1
fi
ms() { echo $(($(date +%s%N) / 1000000)); }
wait_for() { # BOUND_S CMD...: polls CMD until it succeeds or the bound passes
    bound=$1
    shift
    t0=$(ms)
    while [ $(($(ms) - t0)) -lt $((bound * 1000)) ]; do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}
# holds_for MS CMD...: CMD keeps succeeding for MS milliseconds (checked every 50 ms)
holds_for() {
    bound=$1
    shift
    t0=$(ms)
    while [ $(($(ms) - t0)) -lt "$bound" ]; do
        "$@" || return 1
        sleep 0.05
    done
    return 0
}

cat >"$TMP/lab.yaml" <<YAML
kind: Node
name: $NODE
cluster: lab
ips: [10.78.0.1]
---
kind: Workload
cluster: lab
node: $NODE
name: s1
namespace: shop
labels: {app: api}
ips: [10.78.0.20]
interface: lxs1
---
kind: Workload
cluster: lab
node: $NODE
name: c1
namespace: shop
labels: {app: web}
ips: [10.78.0.21]
interface: lxc1
YAML
if ! "$M" lab up "$TMP/lab.yaml" --dual-stack --name "$LAB" --inventory "$INV" >"$TMP/labup.out" 2>&1; then
    cat "$TMP/labup.out"
    echo "node_agent: lab up failed"
    echo "0 passed, 1 failed"
    exit 1
fi
family_nets "$M" "$LAB"
if out=$(family_inventory_ok "$INV"); then ok lab-addresses-mapped; else bad lab-addresses-mapped "$out"; fi
S1=$(fa 10.78.0.20)

"$M" lab exec --name "$LAB" s1 -- "$T" serve --tcp 80 --tcp 81 >"$TMP/srv.out" 2>&1 &
PIDS="$PIDS $!"
wait_for 5 grep -q ready "$TMP/srv.out" || echo "node_agent: server did not start: $(cat "$TMP/srv.out")"

conn() { # PORT -> ok / blocked
    if "$M" lab exec --name "$LAB" c1 -- "$T" connect --tcp "$S1" "$1" --timeout-ms 400 >/dev/null 2>&1; then
        echo ok
    else
        echo blocked
    fi
}
generation() {
    g=$("$D" status --node "$NODE" -o json 2>/dev/null | sed -n 's/^ *"generation": *\([0-9]*\).*/\1/p')
    echo "${g:-0}"
}
gen_above() { [ "$(generation)" -gt "$1" ]; }
gen_is() { [ "$(generation)" -eq "$1" ]; }
status_pid() {
    "$D" status --node "$NODE" -o json 2>/dev/null | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p'
}
pid_is() { [ "$(status_pid)" = "$1" ]; }

HEAD='kind: Cluster
name: lab
defense: on
---
kind: NetworkObject
name: web
namespace: shop
app: web
---
kind: NetworkObject
name: api
namespace: shop
app: api'
rule() { # NAME PORT ACTION
    printf -- '---\nkind: DefenseRule\ncluster: lab\nname: %s\nsource: web\ndestinations:\n  - object: api\n    ports: "%s"\nprotocol: tcp\naction: %s\npriority: 10\n' "$1" "$2" "$3"
}
printf '%s\n' "$HEAD" >"$POLICY"

start_agent() { # LOG -> $AGENT; the agent runs until it is stopped
    "$D" --node "$NODE" --netns "$NS" --datapath "$DP" --policy "$POLICY" --inventory "$INV" --alerts "$TMP/alerts.jsonl" >>"$1" 2>&1 &
    AGENT=$!
    PIDS="$PIDS $AGENT"
}
stop_agent() { # PID SIGNAL
    kill "-$2" "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# ---- the first agent: defense on and no rule, so port 80 is blocked
start_agent "$TMP/a1.log"
A1=$AGENT
wait_for 10 pid_is "$A1" && ok first-agent-enforcing || bad first-agent-enforcing "$(tail -3 "$TMP/a1.log")"
check blocked-before "$(conn 80)" blocked

# ---- 1. a second agent for the same node is refused; the first keeps enforcing
out=$(timeout 20 "$D" --node "$NODE" --netns "$NS" --policy "$POLICY" --inventory "$INV" --alerts "$TMP/alerts2.jsonl" 2>&1)
rc=$?
check second-agent-exit "$rc" 1
case "$out" in
*"moatd: node $NODE: another moatd is running (pid $A1)"*) ok second-agent-message ;;
*) bad second-agent-message "$out" ;;
esac
if kill -0 "$A1" 2>/dev/null; then ok first-agent-still-running; else bad first-agent-still-running "exited"; fi
check first-agent-still-in-status "$(status_pid)" "$A1"
check still-blocked-after-second "$(conn 80)" blocked
if [ -f "$STATUS" ]; then ok status-file-kept; else bad status-file-kept "$STATUS gone"; fi
check second-agent-no-alerts-file "$([ -e "$TMP/alerts2.jsonl" ] && echo made || echo none)" none

# ---- 2. moatd remove is refused while the agent runs
out=$("$D" remove --node "$NODE" --netns "$NS" 2>&1)
rc=$?
check remove-while-running-exit "$rc" 1
case "$out" in
*"pid $A1"*"running"*) ok remove-while-running-message ;;
*) bad remove-while-running-message "$out" ;;
esac
if dp_present "$NODE" "$NS"; then ok remove-refused-keeps-pins; else bad remove-refused-keeps-pins "$DP state gone"; fi
check remove-refused-still-blocked "$(conn 80)" blocked
"$D" status --node "$NODE" >/dev/null 2>&1
check remove-refused-status-running "$?" 0

# ---- 3. a file written slowly after rm is applied only once it is complete
g0=$(generation)
rm "$POLICY"
wait_for 5 grep -q "file 'policy.yaml' deleted" "$TMP/a1.log" && ok deletion-reported ||
    bad deletion-reported "$(tail -3 "$TMP/a1.log")"
(
    printf '%s\n%s\n' "$HEAD" "$(rule allow-80 80 allow)"
    i=0
    while [ ! -f "$TMP/finish" ] && [ $i -lt 400 ]; do
        sleep 0.05 >/dev/null
        i=$((i + 1))
    done
    printf '%s\n' "$(rule allow-81 81 allow)"
) >"$POLICY" &
WRITER=$!
PIDS="$PIDS $WRITER"
# The first half is a valid policy on its own: the old reload applied it within ~150 ms.
wait_for 5 grep -q "allow-80" "$POLICY"
if holds_for 1500 gen_is "$g0"; then ok half-written-not-applied; else bad half-written-not-applied "generation $(generation), was $g0"; fi
check half-written-80-still-blocked "$(conn 80)" blocked
touch "$TMP/finish"
wait "$WRITER"
wait_for 5 gen_above "$g0" && ok complete-file-applied || bad complete-file-applied "generation stayed $g0"
check complete-file-80 "$(conn 80)" ok
check complete-file-81 "$(conn 81)" ok
printf '%s\n' "$HEAD" >"$POLICY.tmp" # back to no rule, the safe way: write, then rename
g1=$(generation)
mv "$POLICY.tmp" "$POLICY"
wait_for 5 gen_above "$g1" && ok rename-applied || bad rename-applied "generation stayed $g1"
check rename-80-blocked "$(conn 80)" blocked

# ---- 4. kill -9: status says not running and exits non-zero; enforcement stays
stop_agent "$A1" 9
out=$("$D" status --node "$NODE" 2>&1)
rc=$?
check status-after-kill-exit "$rc" 3
check status-after-kill-message "$out" "moatd for node $NODE is not running (last pid $A1; enforcement $LEFT)"
"$D" status --node "$NODE" -o json >/dev/null 2>&1
check status-json-after-kill-exit "$?" 3
check blocked-after-kill "$(conn 80)" blocked

# ---- 5. a restart after kill -9 works (the stale lock is no obstacle)
start_agent "$TMP/a2.log"
A2=$AGENT
wait_for 10 pid_is "$A2" && ok restart-after-kill || bad restart-after-kill "$(tail -3 "$TMP/a2.log")"
check restart-blocked "$(conn 80)" blocked

# ---- 6. lab down refuses while an agent runs on a node of the lab
out=$("$M" lab down --name "$LAB" 2>&1)
rc=$?
check lab-down-while-running-exit "$rc" 1
case "$out" in *"pid $A2"*) ok lab-down-while-running-names-pid ;; *) bad lab-down-while-running-names-pid "$out" ;; esac
if kill -0 "$A2" 2>/dev/null; then ok lab-down-killed-nothing; else bad lab-down-killed-nothing "agent gone"; fi
if [ -e "/run/netns/$NS" ] && dp_present "$NODE" "$NS"; then ok lab-down-refused-kept-lab; else bad lab-down-refused-kept-lab "namespace or $DP state gone"; fi
check lab-down-refused-still-blocked "$(conn 80)" blocked

# ---- 7. a node no document names: a warning (also under --check, whose exit status is
# the probe's: scripts use it as "can this kernel enforce?")
out=$("$D" --check --node "zz$$" --policy "$POLICY" --inventory "$INV" 2>&1)
rc=$?
check unknown-node-check-exit "$rc" 0
case "$out" in *"warning: --node zz$$: no workload and no Node document names this node"*) ok unknown-node-check-message ;; *) bad unknown-node-check-message "$out" ;; esac
# iptables: one node per network namespace (its chains and sets are the namespace's), so
# this agent runs in the lab's underlay namespace; the eBPF one shares the node's.
ZZNS=$([ "$DP" = iptables ] && echo "mlab-$LAB-underlay" || echo "$NS")
"$D" --node "zz$$" --netns "$ZZNS" --datapath "$DP" --policy "$POLICY" --inventory "$INV" --alerts /dev/null --cleanup >"$TMP/zz.log" 2>&1 &
ZZ=$!
PIDS="$PIDS $ZZ"
wait_for 10 grep -q "applied" "$TMP/zz.log"
grep -q "warning: --node zz$$: no workload and no Node document" "$TMP/zz.log" && ok unknown-node-warning ||
    bad unknown-node-warning "$(cat "$TMP/zz.log")"
stop_agent "$ZZ" TERM

# ---- 8. what a stopped (and a killed) agent left: lab down removes it
stop_agent "$A2" TERM
out=$("$D" status --node "$NODE" 2>&1)
check status-after-sigterm "$?:$out" "3:moatd for node $NODE is not running (last pid $A2; enforcement $LEFT)"
start_agent "$TMP/a3.log"
A3=$AGENT
wait_for 10 pid_is "$A3" || bad third-agent "$(tail -3 "$TMP/a3.log")"
stop_agent "$A3" 9
if dp_present "$NODE" "$NS" && [ -f "$STATUS" ] && [ -f "$LOCK" ]; then ok killed-agent-left-state; else bad killed-agent-left-state "$(ls -d "$PIN" "$STATUS" "$LOCK" 2>&1)"; fi
# From the host, remove leaves alone what an agent of another namespace left.
"$D" remove --node "$NODE" >"$TMP/rm.out" 2>&1
check remove-elsewhere-exit "$?" 3
if dp_present "$NODE" "$NS"; then ok remove-elsewhere-left-alone; else bad remove-elsewhere-left-alone "$(cat "$TMP/rm.out")"; fi
"$M" lab down --name "$LAB" >"$TMP/down.out" 2>&1
check lab-down-exit "$?" 0
check lab-down-pins-removed "$(dp_present "$NODE" "$NS" && echo left || echo gone)" gone
check lab-down-status-removed "$([ -e "$STATUS" ] && echo left || echo gone)" gone
check lab-down-lock-removed "$([ -e "$LOCK" ] && echo left || echo gone)" gone
check lab-down-netns-removed "$([ -e "/run/netns/$NS" ] && echo left || echo gone)" gone
out=$("$D" status --node "$NODE" 2>&1)
check status-after-lab-down "$?:$out" "3:moatd for node $NODE is not running (no moatd ran for it since boot; enforcement not pinned)"

for f in "$TMP"/*.log; do
    if grep -q "ERROR: AddressSanitizer\|runtime error:" "$f"; then bad sanitizer "$f: $(grep -m3 'ERROR\|runtime error' "$f")"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
