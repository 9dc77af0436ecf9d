#!/bin/sh
# Node protection states and cluster status (issue 15, SPEC 4) with a real
# moat-server and two lab nodes in cluster mode, each agent started where the
# kernel's BTF is hidden (a private mount namespace with an empty tmpfs over
# /sys/kernel/btf, so the eBPF probe truly fails for that agent and nothing
# else): node A is forced to `--datapath ebpf` and must report `unsupported`
# with the probe's reason; node B runs `--datapath auto`, which must fall back
# to iptables and enforce, saying why eBPF was not chosen. Then the cluster is
# `abnormal` with A and its reason, a rule is "in effect on 1/2 nodes", and a
# server restarted with --min-agent-version above the agents' turns both nodes
# `outdated` (0/2). (Offline after three missed heartbeats: cluster.sh.)
# Usage (root, repo root): tests/lab/node_states.sh BUILD
# Prints `ok NAME` per check and a closing `N passed, N failed`.
set -u
B=${1:?build dir}
B=$(cd "$B" && pwd)
M="$B/moat"
T="$B/moat-traffic"
D="$B/moatd"
S="$B/moat-server"
LAB="ns$$"
NA="sa$$"
NB="sb$$"
TMP=$(mktemp -d)
pass=0
fail=0
PIDS=""
SERVER=""

ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi; }
cleanup() {
    for p in $PIDS $SERVER; do kill "$p" 2>/dev/null; done
    for p in $PIDS $SERVER; do wait "$p" 2>/dev/null; done
    "$M" lab down --name "$LAB" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
if [ "$(id -u)" != 0 ]; then
    echo "node_states: needs root"
    echo "0 passed, 1 failed"
    exit 1
fi
ms() { echo $(($(date +%s%N) / 1000000)); }
wait_for() { # BOUND_S CMD...
    bound=$1
    shift
    t0=$(ms)
    while [ $(($(ms) - t0)) -lt $((bound * 1000)) ]; do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}

"$S" token create --data "$TMP/data" --role admin >"$TMP/admin" || exit 1
start_server() { # EXTRA ARGS...
    : >"$TMP/server.log"
    # Heartbeats every 2 s (offline after 6 s): offline is cluster.sh's; here a heartbeat
    # late on a loaded machine must not hide the state under test.
    "$S" --listen "127.0.0.1:${PORT:-0}" --data "$TMP/data" --heartbeat-interval 2 "$@" >>"$TMP/server.log" 2>&1 &
    SERVER=$!
    wait_for 10 grep -q "listening on" "$TMP/server.log"
}
start_server || { echo "node_states: server did not start: $(cat "$TMP/server.log")"; echo "0 passed, 1 failed"; exit 1; }
ADDR=$(sed -n 's/.*listening on //p' "$TMP/server.log" | head -1)
PORT=${ADDR##*:}
export MOAT_SERVER="http://$ADDR" MOAT_TOKEN="$(cat "$TMP/admin")"

cat >"$TMP/lab.yaml" <<YAML
kind: Workload
cluster: lab
node: $NA
name: wa
namespace: shop
labels: {app: web}
ips: [10.83.1.10]
---
kind: Workload
cluster: lab
node: $NB
name: wb
namespace: shop
labels: {app: api}
ips: [10.83.2.10]
YAML
"$M" lab up "$TMP/lab.yaml" --name "$LAB" --inventory "$TMP/inv.yaml" >"$TMP/labup.out" 2>&1 ||
    { cat "$TMP/labup.out"; echo "0 passed, 1 failed"; exit 1; }
cat >"$TMP/policy.yaml" <<YAML
kind: Cluster
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
app: api
---
kind: DefenseRule
cluster: lab
name: web-to-api
source: web
destinations: [{object: api, ports: "80"}]
protocol: tcp
action: allow
priority: 10
YAML
"$M" apply -f "$TMP/policy.yaml" >/dev/null || bad apply "moat apply failed"
JT=$("$M" cluster join-token lab -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["join_token"])')

# An agent that sees no kernel BTF: its own mount namespace (private: the host's mounts
# are untouched), the lab node's network namespace.
start_agent() { # NODE DATAPATH LOG
    unshare -m sh -c 'mount -t tmpfs moat-no-btf /sys/kernel/btf && exec "$@"' sh \
        "$D" --server "$MOAT_SERVER" --cluster lab --join-token "$JT" --node "$1" --inventory "$TMP/inv.yaml" \
        --netns "mlab-$LAB-$1" --datapath "$2" --state-dir "$TMP/state-$1" --alerts /dev/null >>"$3" 2>&1 &
    PIDS="$PIDS $!"
}
start_agent "$NA" ebpf "$TMP/a.log"
start_agent "$NB" auto "$TMP/b.log"

node() { # NODE FIELD(dotted)
    "$M" node list -o json 2>/dev/null | python3 -c '
import json, sys
for n in json.load(sys.stdin)["items"]:
    if n["name"] == sys.argv[1]:
        v = n
        for k in sys.argv[2].split("."):
            v = v.get(k) if isinstance(v, dict) else None
        print(v)
        break
else:
    print("-")' "$1" "$2"
}
state_is() { [ "$(node "$1" state)" = "$2" ]; }
cluster_field() { "$M" cluster get lab -o json | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]))' "$1"; }
in_effect() { "$M" rule list --cluster lab -o json | python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in d.get("items", d if isinstance(d, list) else []):
    if r["name"] == "web-to-api":
        print("%d/%d" % (r["in_effect"]["nodes"], r["in_effect"]["of"]))'; }

# ---- forced ebpf where its probe fails: unsupported, with the probe's reason
wait_for 20 state_is "$NA" unsupported && ok forced-ebpf-unsupported || bad forced-ebpf-unsupported "$(node "$NA" state); $(tail -3 "$TMP/a.log")"
case "$(node "$NA" reason)" in *"kernel BTF (/sys/kernel/btf/vmlinux)"*) ok unsupported-reason-names-btf ;; *) bad unsupported-reason-names-btf "$(node "$NA" reason)" ;; esac
check forced-ebpf-backend "$(node "$NA" datapath.backend)" ebpf
check forced-ebpf-probe-iptables-ok "$(node "$NA" datapath.probes.iptables)" ""

# ---- auto: eBPF cannot run, iptables can: it enforces with iptables and says why
wait_for 20 state_is "$NB" enforcing && ok auto-enforcing || bad auto-enforcing "$(node "$NB" state); $(tail -3 "$TMP/b.log")"
check auto-chose-iptables "$(node "$NB" datapath.backend)" iptables
case "$(node "$NB" datapath.probes.ebpf)" in *"kernel BTF"*) ok auto-says-why-not-ebpf ;; *) bad auto-says-why-not-ebpf "$(node "$NB" datapath.probes.ebpf)" ;; esac
grep -q "datapath auto chose iptables; ebpf cannot run: missing kernel BTF" "$TMP/b.log" && ok auto-logs-choice || bad auto-logs-choice "$(head -3 "$TMP/b.log")"
case "$("$M" node list 2>&1)" in *"$NB"*enforcing*iptables*) ok node-list-shows-backend ;; *) bad node-list-shows-backend "$("$M" node list 2>&1)" ;; esac
# node B really enforces: the API's rule allows web -> api:80 only (10.83.1.10 is on node A)
"$M" lab exec --name "$LAB" wb -- "$T" serve --tcp 80 --tcp 81 >"$TMP/srv.out" 2>&1 &
PIDS="$PIDS $!"
wait_for 10 grep -q ready "$TMP/srv.out"
conn() { "$M" lab exec --name "$LAB" wa -- "$T" connect --tcp 10.83.2.10 "$1" --timeout-ms 400 >/dev/null 2>&1 && echo ok || echo blocked; }
wait_for 10 sh -c "[ \"\$(\"$M\" lab exec --name \"$LAB\" wa -- \"$T\" connect --tcp 10.83.2.10 80 --timeout-ms 400 2>/dev/null)\" = ok ]" &&
    ok iptables-node-allows-the-rule || bad iptables-node-allows-the-rule "$(conn 80)"
check iptables-node-blocks-the-rest "$(conn 81)" blocked

# ---- the cluster: abnormal, with the node and its reason; the rule in effect on 1 of 2
check cluster-abnormal "$(cluster_field status)" abnormal
case "$("$M" cluster get lab -o json)" in *"$NA"*unsupported*"kernel BTF"*) ok cluster-names-node-and-reason ;; *) bad cluster-names-node-and-reason "$(cluster_field abnormal_nodes)" ;; esac
case "$("$M" cluster list 2>&1)" in *lab*abnormal*) ok cluster-list-shows-status ;; *) bad cluster-list-shows-status "$("$M" cluster list 2>&1)" ;; esac
check rule-in-effect-1-of-2 "$(in_effect)" 1/2
case "$("$M" rule list --cluster lab 2>&1)" in *web-to-api*1/2*) ok rule-list-shows-k-of-n ;; *) bad rule-list-shows-k-of-n "$("$M" rule list --cluster lab 2>&1)" ;; esac

# ---- a server whose minimum agent version is above the agents': both outdated
kill "$SERVER"
wait "$SERVER" 2>/dev/null
start_server --min-agent-version 99.0 || bad server-restart "$(cat "$TMP/server.log")"
wait_for 15 state_is "$NB" outdated && ok agent-below-minimum-outdated || bad agent-below-minimum-outdated "$(node "$NB" state)"
# each agent comes back to the new server on its own retry: wait for A too
wait_for 15 state_is "$NA" outdated && ok outdated-too-when-unsupported ||
    bad outdated-too-when-unsupported "$(node "$NA" state) ($(node "$NA" reason))"
case "$(node "$NB" reason)" in *"below 99.0"*) ok outdated-reason ;; *) bad outdated-reason "$(node "$NB" reason)" ;; esac
check rule-in-effect-0-of-2 "$(in_effect)" 0/2
check cluster-abnormal-outdated "$(cluster_field status)" abnormal

for f in "$TMP"/*.log; do
    if grep -q "ERROR: AddressSanitizer\|runtime error:" "$f"; then bad sanitizer "$(grep -m3 'ERROR\|runtime error' "$f")"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
