#!/bin/sh
# Lab test of policy deltas (issue 17): a real moat-server, a two-node lab,
# one moatd per node in cluster mode. Node A's agent follows a sequence of
# changes (a rule added, changed and deleted, a workload added and removed on
# node B, an object changed) through deltas (GET /agents/policy?delta=1). At
# each step it must enforce the expected verdicts on real traffic to api-a,
# then be restarted without its kept policy (so it fetches the full state)
# and enforce the same verdicts again. Workload changes on node B (added,
# relabelled, removed) must reach A's kernel in place (moatd status
# policy_apply: the incremental path), object and rule changes keep the other
# nodes' workloads (the objects_rules path), a new label key goes the full path; real
# packets from late-b's address get late-b's verdict once it is added, and
# not once it is removed.
# Usage (root, repo root): tests/lab/delta.sh BUILD [4] [ebpf|iptables]
# (the old form BUILD DATAPATH works too). The lab is IPv4 only.
# Prints `ok NAME` per check and a closing `N passed, N failed`.
set -u
B=${1:?build dir}
B=$(cd "$B" && pwd)
. tests/lab/family.sh
case "${2:-}" in
ebpf | iptables) family_check 4 "$2" ;;
*) family_check "${2:-4}" "${3:-ebpf}" ;;
esac
if [ "$FAM" != 4 ]; then
    echo "delta: the lab is IPv4 only (family $FAM)"
    echo "0 passed, 1 failed"
    exit 2
fi
M="$B/moat"
T="$B/moat-traffic"
D="$B/moatd"
S="$B/moat-server"
LAB="dl$$" # names no other suite uses: dl*, dla*, dlb*
NA="dla$$"
NB="dlb$$"
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
    if [ "$fail" -gt 0 ]; then # what the agents and the server said, to tell why
        for f in moatd-a.log moatd-b.log server.log; do
            [ -f "$TMP/$f" ] && tail -n 40 "$TMP/$f" | sed "s/^/# $f: /"
        done
    fi
    [ -n "${MOAT_KEEP_LOGS:-}" ] && cp "$TMP"/*.log "$MOAT_KEEP_LOGS"/ 2>/dev/null
    "$D" remove --node "$NA" >/dev/null 2>&1
    "$D" remove --node "$NB" >/dev/null 2>&1
    "$M" lab down --name "$LAB" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" != 0 ]; then
    echo "delta: needs root"
    echo "0 passed, 1 failed"
    exit 1
fi
ms() { echo $(($(date +%s%N) / 1000000)); }
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

# ---- the server
"$S" token create --data "$TMP/data" --role admin >"$TMP/admin" || exit 1
"$S" --listen 127.0.0.1:0 --data "$TMP/data" --heartbeat-interval 1 >"$TMP/server.log" 2>&1 &
SERVER=$!
wait_for 10 grep -q "listening on" "$TMP/server.log" || {
    echo "delta: moat-server did not start: $(cat "$TMP/server.log")"
    echo "0 passed, 1 failed"
    exit 1
}
ADDR=$(sed -n 's/.*listening on //p' "$TMP/server.log" | head -1)
export MOAT_SERVER="http://$ADDR" MOAT_TOKEN="$(cat "$TMP/admin")"

# ---- the lab: api-a and web-a on A; web-b, api-b and late-b (reported later) on B
cat >"$TMP/lab.yaml" <<YAML
kind: Node
name: $NA
cluster: dlab
ips: [10.83.1.1]
---
kind: Node
name: $NB
cluster: dlab
ips: [10.83.2.1]
---
kind: Workload
cluster: dlab
node: $NA
name: web-a
namespace: shop
labels: {app: web}
ips: [10.83.1.10]
---
kind: Workload
cluster: dlab
node: $NA
name: api-a
namespace: shop
labels: {app: api}
ips: [10.83.1.11]
---
kind: Workload
cluster: dlab
node: $NB
name: web-b
namespace: shop
labels: {app: web}
ips: [10.83.2.10]
---
kind: Workload
cluster: dlab
node: $NB
name: api-b
namespace: shop
labels: {app: api}
ips: [10.83.2.11]
---
kind: Workload
cluster: dlab
node: $NB
name: late-b
namespace: shop
labels: {app: web}
ips: [10.83.2.12]
YAML
if ! "$M" lab up "$TMP/lab.yaml" --name "$LAB" --inventory "$TMP/full.yaml" >"$TMP/labup.out" 2>&1; then
    cat "$TMP/labup.out"
    echo "delta: lab up failed"
    echo "0 passed, 1 failed"
    exit 1
fi
python3 - "$TMP/full.yaml" "$TMP/b-early.yaml" "$TMP/a.yaml" "$NB" <<'PY'
import sys
docs = [d for d in open(sys.argv[1]).read().split("---\n") if d.strip()]
open(sys.argv[2], "w").write("---\n".join(d for d in docs if "name: late-b" not in d))
# node A's inventory: the nodes and its own workloads
open(sys.argv[3], "w").write("---\n".join(d for d in docs if "node: " + sys.argv[4] not in d))
PY
cp "$TMP/b-early.yaml" "$TMP/b.yaml"

cat >"$TMP/policy.yaml" <<YAML
kind: Cluster
name: dlab
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
YAML
"$M" apply -f "$TMP/policy.yaml" >/dev/null || bad apply "moat apply failed"
JT=$("$M" cluster join-token dlab -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["join_token"])')
# An observer node (no agent) reads the server's revision through the agents' route.
OBS=$(curl -s -X POST -H 'Content-Type: application/json' \
    -d "{\"cluster\":\"dlab\",\"node\":\"dlo$$\",\"join_token\":\"$JT\"}" \
    "$MOAT_SERVER/api/v1/agents/register" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
server_rev() {
    curl -s -H "Authorization: Bearer $OBS" "$MOAT_SERVER/api/v1/agents/policy?revision=0" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["revision"])'
}

"$M" lab exec --name "$LAB" api-a -- "$T" serve --tcp 80 --tcp 443 >"$TMP/srv.out" 2>&1 &
PIDS="$PIDS $!"
wait_for 10 grep -q ready "$TMP/srv.out" || bad server-ready "$(cat "$TMP/srv.out")"

start_agent() { # NODE INVENTORY LOG -> $AGENT
    "$D" --server "$MOAT_SERVER" --cluster dlab --join-token "$JT" --node "$1" --inventory "$2" --datapath "$DP" \
        --netns "mlab-$LAB-$1" --state-dir "$TMP/state-$1" >>"$3" 2>&1 &
    AGENT=$!
}
start_agent "$NA" "$TMP/a.yaml" "$TMP/moatd-a.log"
MA=$AGENT
start_agent "$NB" "$TMP/b.yaml" "$TMP/moatd-b.log"
MB=$AGENT

conn() { # FROM DSTADDR PORT -> ok / blocked / error: WHY
    if out=$("$M" lab exec --name "$LAB" "$1" -- "$T" connect --tcp "$2" "$3" --timeout-ms 400 2>&1); then
        echo ok
    elif printf '%s' "$out" | grep -q "timed out"; then
        echo blocked
    else
        echo "error: $out"
    fi
}
apply_field() { # NODE FIELD: moatd status policy_apply.FIELD
    "$D" status --node "$1" -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("policy_apply", {}).get(sys.argv[1]))' "$2" 2>/dev/null
}
path_is() { [ "$(apply_field "$NA" last_path)" = "$1" ]; }
applied_rev() { "$D" status --node "$1" -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("revision", 0))' 2>/dev/null || echo 0; }
# A's agent applied the server's revision (the same one twice: nothing moved in between)
caught_up() {
    r=$(server_rev)
    [ "$(applied_rev "$NA")" = "$r" ] && [ "$(server_rev)" = "$r" ]
}
# verdicts: what api-a's node does to web-b:80, web-b:443, late-b:80, api-b:80, web-a:443
verdicts() {
    echo "$(conn web-b 10.83.1.11 80) $(conn web-b 10.83.1.11 443) $(conn late-b 10.83.1.11 80)" \
        "$(conn api-b 10.83.1.11 80) $(conn web-a 10.83.1.11 443)"
}
rev_past() { [ "$(applied_rev "$NA")" -gt "$1" ] && caught_up; }
# mark: the server's revision before a change, so that the step after it waits for a
# newer one (B's inventory change reaches the server through B's agent: until it
# does, A is "caught up" with the revision before it)
R0=0
mark() { R0=$(server_rev); }
# step NAME WANT: A's agent (following deltas) gives WANT; then restarted to fetch
# everything, the same verdicts
step() { # NAME WANT [PATH: incremental | objects_rules | full]
    if wait_for 30 rev_past "$R0"; then ok "$1: node A applied the revision"; else bad "$1: node A applied the revision" "A $(applied_rev "$NA"), server $(server_rev), before the change $R0"; fi
    if [ -n "${3:-}" ]; then
        # the status file is written at most once a second: wait (bounded) for the path
        wait_for 10 path_is "$3"
        check "$1: node A took the $3 path" "$(apply_field "$NA" last_path)" "$3"
        if [ "$3" != full ]; then
            n=$(apply_field "$NA" "$3")
            [ "${n:-0}" -ge 1 ] && ok "$1: $3 applies counted ($n)" || bad "$1: $3 applies counted" "$n"
        fi
    fi
    # wait (bounded) for the verdicts: the datapath follows the applied revision
    got=
    t0=$(ms)
    while [ $(($(ms) - t0)) -lt 10000 ]; do
        got=$(verdicts)
        [ "$got" = "$2" ] && break
    done
    check "$1: verdicts through deltas" "$got" "$2"
    kill "$MA"
    wait "$MA" 2>/dev/null
    MA=
    rm -f "$TMP/state-$NA/policy.json"
    n=$(grep -c "full state" "$TMP/moatd-a.log")
    start_agent "$NA" "$TMP/a.yaml" "$TMP/moatd-a.log"
    MA=$AGENT
    wait_for 30 sh -c "[ \$(grep -c 'full state' '$TMP/moatd-a.log') -gt $n ]" &&
        ok "$1: restarted, A fetched the full state" || bad "$1: restarted, A fetched the full state" "$(tail -3 "$TMP/moatd-a.log")"
    wait_for 30 caught_up || bad "$1: restarted A applied the revision" "A $(applied_rev "$NA"), server $(server_rev)"
    got2=
    t0=$(ms)
    while [ $(($(ms) - t0)) -lt 10000 ]; do
        got2=$(verdicts)
        [ "$got2" = "$got" ] && break
    done
    check "$1: the same verdicts after a full fetch" "$got2" "$got"
}
wait_for 60 sh -c "\"$M\" node list -o json | grep -q '\"enforcing\"'" || bad agents-enforcing "$(tail -3 "$TMP/moatd-a.log")"
deltas_now() { grep -c "delta since" "$TMP/moatd-a.log"; }

# ---- the steps (B = blocked, the default; web->api allowed by the rules below)
step start "blocked blocked blocked blocked blocked"

mark
"$M" rule create --cluster dlab -f - >/dev/null <<YAML || bad rule-create "failed"
kind: DefenseRule
cluster: dlab
name: web-to-api
source: web
destinations:
  - object: api
    ports: "80"
protocol: tcp
action: allow
priority: 10
YAML
step rule-added "ok blocked blocked blocked blocked" objects_rules

mark
cp "$TMP/full.yaml" "$TMP/b.yaml.tmp" && mv "$TMP/b.yaml.tmp" "$TMP/b.yaml"
step workload-added-on-b "ok blocked ok blocked blocked" incremental

# late-b relabelled: its address now carries api's identity (api -> api: no rule)
mark
sed 's/^labels: {app: web}$/labels: {app: WEB}/' "$TMP/full.yaml" | python3 -c '
import sys
docs = sys.stdin.read().split("---\n")
print("---\n".join(d.replace("{app: WEB}", "{app: api}") if "name: late-b" in d else
                 d.replace("{app: WEB}", "{app: web}") for d in docs), end="")' >"$TMP/b.yaml.tmp" &&
    mv "$TMP/b.yaml.tmp" "$TMP/b.yaml"
step workload-relabelled-on-b "ok blocked blocked blocked blocked" incremental
mark
cp "$TMP/full.yaml" "$TMP/b.yaml.tmp" && mv "$TMP/b.yaml.tmp" "$TMP/b.yaml"
step workload-back-on-b "ok blocked ok blocked blocked" incremental

RULE=$("$M" rule list --cluster dlab -o json | python3 -c 'import json,sys; print([r["id"] for r in json.load(sys.stdin)["items"] if r["name"] == "web-to-api"][0])')
mark
curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $MOAT_TOKEN" -H 'Content-Type: application/json' \
    -d '{"destinations":[{"object":"api","ports":"80,443"}]}' "$MOAT_SERVER/api/v1/clusters/dlab/rules/$RULE"
step rule-changed "ok ok ok blocked ok" objects_rules

# a burst of rule changes: the poller may queue several deltas while A applies one;
# a run of them is compiled once, at its last (moatd: "staged with the next delta")
mark
for ports in 443 80 '"80,443"' 22 '"80,443"'; do
    curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $MOAT_TOKEN" -H 'Content-Type: application/json' \
        -d "{\"destinations\":[{\"object\":\"api\",\"ports\":$ports}]}" "$MOAT_SERVER/api/v1/clusters/dlab/rules/$RULE"
done
step rule-burst "ok ok ok blocked ok" objects_rules
echo "  (rule burst: $(grep -c 'staged with the next delta' "$TMP/moatd-a.log") deltas staged)"

OBJ=$("$M" object list -o json | python3 -c 'import json,sys; print([o["id"] for o in json.load(sys.stdin)["items"] if o["name"] == "api"][0])')
mark
curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $MOAT_TOKEN" -H 'Content-Type: application/json' \
    -d '{"app":"none"}' "$MOAT_SERVER/api/v1/objects/$OBJ"
step object-changed "blocked blocked blocked blocked blocked" objects_rules

mark
curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $MOAT_TOKEN" -H 'Content-Type: application/json' \
    -d '{"app":"api"}' "$MOAT_SERVER/api/v1/objects/$OBJ"
step object-back "ok ok ok blocked ok" objects_rules
mark
cp "$TMP/b-early.yaml" "$TMP/b.yaml.tmp" && mv "$TMP/b.yaml.tmp" "$TMP/b.yaml"
step workload-removed-on-b "ok ok blocked blocked ok" incremental

mark
curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $MOAT_TOKEN" "$MOAT_SERVER/api/v1/clusters/dlab/rules/$RULE"
step rule-deleted "blocked blocked blocked blocked blocked" objects_rules

# A restarted with the policy it kept (deltas spliced into policy.json) starts from it
r0=$(server_rev)
cp "$TMP/full.yaml" "$TMP/b.yaml.tmp" && mv "$TMP/b.yaml.tmp" "$TMP/b.yaml"
wait_for 30 rev_past "$r0" || bad "late-b again: node A applied the revision" "A $(applied_rev "$NA"), server $(server_rev)"
wait_for 10 path_is incremental
check "late-b again: node A took the incremental path" "$(apply_field "$NA" last_path)" incremental
kept_is() { # the kept file is the full answer of the server's revision, late-b in it
    [ "$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["revision"], any(w["name"] == "late-b" for w in p["workloads"]))' "$TMP/state-$NA/policy.json" 2>/dev/null)" = "$(server_rev) True" ]
}
wait_for 10 kept_is && ok "policy.json is the spliced full answer" || bad "policy.json is the spliced full answer" "$(head -c 300 "$TMP/state-$NA/policy.json")"
kill "$MA"
wait "$MA" 2>/dev/null
n=$(grep -c "full state" "$TMP/moatd-a.log")
start_agent "$NA" "$TMP/a.yaml" "$TMP/moatd-a.log"
MA=$AGENT
wait_for 30 caught_up && ok "restarted from policy.json: A applied the revision" || bad "restarted from policy.json: A applied the revision" "A $(applied_rev "$NA"), server $(server_rev)"
check "restarted from policy.json: no full fetch" "$(grep -c "full state" "$TMP/moatd-a.log")" "$n"
r0=$(server_rev)
cp "$TMP/b-early.yaml" "$TMP/b.yaml.tmp" && mv "$TMP/b.yaml.tmp" "$TMP/b.yaml"
wait_for 30 rev_past "$r0" && wait_for 10 path_is incremental
check "restarted from policy.json: the next workload delta in place" "$(apply_field "$NA" last_path)" incremental

# ---- idle identities: 300 objects (label v=0..299); the observer node reports
# 300 workloads, one per object (300 identities, in place), then one of them (299
# left idle, in place); the change after that takes the full path, whose compile
# drops them (lib/compile.h tables_compaction_due).
python3 -c '
print("---\n".join("kind: NetworkObject\nname: v%d\nnamespace: shop\nlabels: {v: \"%d\"}\n" % (i, i)
                 for i in range(300)), end="")' >"$TMP/versions.yaml"
"$M" apply -f "$TMP/versions.yaml" >/dev/null || bad versions-apply "moat apply failed"
wait_for 30 caught_up || bad "versions: node A applied the revision" "A $(applied_rev "$NA"), server $(server_rev)"
# objects selecting on a label key none did before: the remote workloads are built anew
wait_for 10 path_is full
check "versions: a new label key takes the full path" "$(apply_field "$NA" last_path)" full
observe() { # N: the observer node reports workloads v0..v(N-1), one address each
    python3 -c '
import json, sys
n = int(sys.argv[1])
print(json.dumps({"workloads": [{"name": "ver-%d" % i, "namespace": "shop", "labels": {"v": str(i)},
                                 "ips": ["10.83.%d.%d" % (9 + i // 250, 1 + i % 250)]} for i in range(n)]}))' "$1" |
        curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $OBS" \
            -H 'Content-Type: application/json' --data-binary @- "$MOAT_SERVER/api/v1/agents/workloads"
}
idle_at_least() { [ "$(apply_field "$NA" identities_idle)" -ge "$1" ] 2>/dev/null; }
check "versions: 300 workloads reported" "$(observe 300)" 200
# (a full answer: the delta would be more than half of it)
ids_at_least() { [ "$(apply_field "$NA" identities)" -ge "$1" ] 2>/dev/null; }
wait_for 30 caught_up && wait_for 10 ids_at_least 300
ids_at_least 300 && ok "versions: node A has an identity each" || bad "versions: node A has an identity each" "$(apply_field "$NA" identities)"
check "versions: one down to one workload" "$(observe 1)" 200
wait_for 30 caught_up && wait_for 10 idle_at_least 299
check "versions: 299 identities idle" "$(apply_field "$NA" identities_idle)" 299
check "versions: still in place" "$(apply_field "$NA" last_path)" incremental
full0=$(apply_field "$NA" full)
check "versions: none left" "$(observe 0)" 200
full_since() { [ "$(apply_field "$NA" full)" -gt "$full0" ] 2>/dev/null; }
wait_for 30 caught_up && wait_for 10 full_since
check "versions: the next change compacted them" "$(apply_field "$NA" identities_idle)" 0
check "versions: through the full path" "$(apply_field "$NA" last_path)" full
if grep -q "due a compaction" "$TMP/moatd-a.log"; then ok "versions: moatd said why"; else bad "versions: moatd said why" "$(grep 'policy delta' "$TMP/moatd-a.log" | tail -2)"; fi
check "versions: the verdicts kept" "$(verdicts)" "blocked blocked blocked blocked blocked"

# Node A took every change as a delta, and none failed to apply.
n=$(deltas_now)
[ "$n" -ge 9 ] && ok "node A received deltas ($n)" || bad "node A received deltas" "$n: $(grep policy "$TMP/moatd-a.log" | tail -5)"
if grep -q "does not apply" "$TMP/moatd-a.log"; then bad "no delta failed to apply" "$(grep 'does not apply' "$TMP/moatd-a.log" | head -3)"; else ok "no delta failed to apply"; fi
grep "policy [0-9]*: " "$TMP/moatd-a.log" | tail -3 | sed 's/^/  /'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
