#!/bin/sh
# The Kubernetes source (issue 13) against a recorded API: kubeapi.py replays
# real-format PodList/NamespaceList answers and watch streams (a bookmark, an
# added pod, a dropped watch, a 410 Gone) on 127.0.0.1, and moatd --runtime
# kubernetes --kubeconfig runs on a lab node whose workload namespaces hold
# the pods' addresses, so each pod is mapped to its host-side interface and
# enforced on with real traffic. Checks what moatd asks the API (list, watch
# from the right resourceVersion with bookmarks, resume after a drop, re-list
# after 410), what it makes of the answers (host-network and pending pods
# left out, namespace labels selectable and followed), and that an interface
# no pod explains stays held.
# Usage (root, repo root): tests/containers/kube.sh BUILD
set -u
B=${1:?build dir}
B=$(cd "$B" && pwd)
D="$B/moatd"
M="$B/moat"
S="$B/moat-server"
T="$B/moat-traffic"
ID=$$
LAB="k$ID"
NODE="kn$ID"
TMP=$(mktemp -d)
TOKEN="tok-$ID-recorded"
ST="/usr/bin/python3 tests/containers/status.py"
pass=0
fail=0
API=""
AGENT=""
SERVER=""
PIDS=""

ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }
check() { # NAME GOT WANT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    [ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null
    [ -n "$API" ] && kill "$API" 2>/dev/null
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
    for p in $PIDS $AGENT $API $SERVER; do wait "$p" 2>/dev/null; done
    "$D" remove --node "$NODE" --netns "mlab-$LAB-$NODE" >/dev/null 2>&1
    "$M" lab down --name "$LAB" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if [ "$(id -u)" != 0 ]; then
    echo "kube: needs root"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---- the node: five workload namespaces; the pods' addresses are theirs
{
    printf 'kind: Node\nname: %s\ncluster: kc%s\nips: [10.78.0.1]\n' "$NODE" "$ID"
    n=10
    for w in web cli db job stranger; do
        printf -- '---\nkind: Workload\ncluster: kc%s\nnode: %s\nname: %s\nnamespace: lab\nips: [10.78.0.%s]\n' \
            "$ID" "$NODE" "$w" "$n"
        n=$((n + 1))
    done
} >"$TMP/lab.yaml"
if ! "$M" lab up "$TMP/lab.yaml" --name "$LAB" --inventory "$TMP/lab-out.yaml" >"$TMP/labup.out" 2>&1; then
    cat "$TMP/labup.out"
    echo "kube: lab up failed"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---- the recorded API and a kubeconfig for it (token auth, plain http on loopback)
/usr/bin/python3 tests/containers/kubeapi.py "$TMP" "$NODE" "$TOKEN" >"$TMP/api.port" 2>"$TMP/api.err" &
API=$!
i=0
while [ ! -s "$TMP/api.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
PORT=$(cat "$TMP/api.port")
cat >"$TMP/kubeconfig" <<YAML
apiVersion: v1
kind: Config
current-context: recorded
clusters:
- name: rec
  cluster: {server: "http://127.0.0.1:$PORT"}
users:
- name: agent
  user: {token: $TOKEN}
contexts:
- name: recorded
  context: {cluster: rec, user: agent}
YAML

cat >"$TMP/policy.yaml" <<YAML
kind: Cluster
name: kc$ID
defense: on
default_action: allow
---
kind: NetworkObject
name: payments$ID
namespace: "*"
namespace_labels: [team=payments]
---
kind: DefenseRule
cluster: kc$ID
name: block-to-payments
source: any
destinations: [{object: payments$ID, ports: 8080}]
protocol: tcp
action: block
priority: 10
YAML

status() { "$D" status --node "$NODE" -o json 2>/dev/null | $ST "$@"; }
field() { # WORKLOAD FIELD: one field of its status entry
    "$D" status --node "$NODE" -o json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
try:
    st = json.load(sys.stdin)
except ValueError:
    st = {}
for w in st.get("interfaces", []):
    if w["workload"] == sys.argv[1]:
        v = w.get(sys.argv[2], "")
        print(",".join("%s=%s" % kv for kv in sorted(v.items())) if isinstance(v, dict) else v)
        break
else:
    print("absent")' "$1" "$2"
}
wait_until() { # CMD WANT: within 10 s
    i=0
    while [ "$($1)" != "$2" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
x() { "$M" lab exec --name "$LAB" "$@"; }
conn() { # FROM ADDR -> ok | blocked
    if x "$1" -- "$T" connect --tcp "$2" 8080 --timeout-ms 600 >/dev/null 2>&1; then echo ok; else echo blocked; fi
}
for w in web db job stranger; do
    "$M" lab exec --name "$LAB" $w -- "$T" serve --tcp 8080 >"$TMP/srv-$w.out" 2>&1 &
    PIDS="$PIDS $!"
done

"$D" --node "$NODE" --cluster "kc$ID" --runtime kubernetes --kubeconfig "$TMP/kubeconfig" \
    --policy "$TMP/policy.yaml" --netns "mlab-$LAB-$NODE" --alerts "$TMP/alerts.jsonl" \
    >"$TMP/moatd.log" 2>&1 &
AGENT=$!
names() { status names; }
wait_until names "cli-5c4b-fghij,job-28411-pqrst,web-7d9f-abcde"
check first-list "$(names)" "cli-5c4b-fghij,job-28411-pqrst,web-7d9f-abcde"
check web-namespace "$(field web-7d9f-abcde namespace)" shop
check web-labels "$(field web-7d9f-abcde labels)" "app=web,pod-template-hash=7d9f"
check web-namespace-labels "$(field web-7d9f-abcde namespace_labels)" \
    "kubernetes.io/metadata.name=shop,team=payments"
check web-image "$(field web-7d9f-abcde image)" "docker.io/library/nginx:1.27"
check web-ips "$(field web-7d9f-abcde ips)" "['10.78.0.10']"
check web-interface "$(field web-7d9f-abcde interface)" lxc-web
check web-source "$(field web-7d9f-abcde source)" "kubernetes:0d1f6a52-1111-4c1e-9a6e-000000000001"
check cli-image "$(field cli-5c4b-fghij image)" "registry.example.com/ops/cli:2.1"
# the namespaces listed first (their labels); then their watch and the pods'
# list go side by side (two threads): whichever the log has first
first_asked() {
    printf '%s|%s|%s|' "$(head -1 "$TMP/requests.log")" \
        "$(grep -m1 '^GET /api/v1/namespaces watch' "$TMP/requests.log")" \
        "$(grep -m1 '^GET /api/v1/pods' "$TMP/requests.log")"
}
wait_until first_asked "GET /api/v1/namespaces list|GET /api/v1/namespaces watch rv=100 bookmarks|GET /api/v1/pods list|"
check asked-first "$(first_asked)" \
    "GET /api/v1/namespaces list|GET /api/v1/namespaces watch rv=100 bookmarks|GET /api/v1/pods list|"

# namespace labels select: shop is team=payments, so web is blocked; job (tools) is not
check ns-label-blocks "$(conn cli 10.78.0.10)" blocked
check other-ns-passes "$(conn cli 10.78.0.13)" ok
# an interface no pod explains stays held (fail-closed, although the default allows)
check unexplained-held "$(conn cli 10.78.0.14)" blocked
held() {
    "$D" status --node "$NODE" -o json | /usr/bin/python3 -c '
import json, sys
print(",".join(sorted(h["interface"] for h in json.load(sys.stdin)["hold"]["held"])))'
}
check unexplained-listed-held "$(held)" lxc-db,lxc-stranger # db-0 comes with the watch

# ---- the watch: an added pod
touch "$TMP/step1"
wait_until names "cli-5c4b-fghij,db-0,job-28411-pqrst,web-7d9f-abcde"
check watch-added "$(names)" "cli-5c4b-fghij,db-0,job-28411-pqrst,web-7d9f-abcde"
check watch-added-blocked "$(conn cli 10.78.0.12)" blocked
check watch-added-image "$(field db-0 image)" "docker.io/library/postgres:16"
check watch-added-not-held "$(held)" lxc-stranger

# ---- the watch drops: resumed from the last resourceVersion; 410: listed again
touch "$TMP/step2"
wait_until names "cli-5c4b-fghij,db-0,web-7d9f-abcde"
check relist-after-410 "$(names)" "cli-5c4b-fghij,db-0,web-7d9f-abcde"
check relist-relabelled "$(field web-7d9f-abcde labels)" "app=web,pod-template-hash=7d9f,tier=front"
pods_asked() { grep -E '^(GET /api/v1/pods|DROP|UNEXPECTED)' "$TMP/requests.log" | tr '\n' '|'; }
want_pods="GET /api/v1/pods list|GET /api/v1/pods watch rv=105 bookmarks|DROP pods watch|GET /api/v1/pods watch rv=110 bookmarks|GET /api/v1/pods list|GET /api/v1/pods watch rv=200 bookmarks|"
wait_until pods_asked "$want_pods" # the watch from 200 follows the new list's status
check pods-requests "$(pods_asked)" "$want_pods"
check job-gone-unjudged-again "$(field job-28411-pqrst interface)" absent

# ---- a namespace's labels change: its pods are selected again
touch "$TMP/step3"
wait_until "field web-7d9f-abcde namespace_labels" "kubernetes.io/metadata.name=shop,team=fraud"
check ns-relabelled "$(field web-7d9f-abcde namespace_labels)" "kubernetes.io/metadata.name=shop,team=fraud"
check ns-relabel-unblocks "$(conn cli 10.78.0.10)" ok
check still-held "$(conn cli 10.78.0.14)" blocked
check no-unexpected "$(grep -c UNEXPECTED "$TMP/requests.log")" 0

# ---- cluster mode: the same source, the policy from moat-server, the pods reported
kill "$AGENT"
wait "$AGENT" 2>/dev/null
AGENT=""
"$S" token create --data "$TMP/data" --role admin >"$TMP/admin"
"$S" --listen 127.0.0.1:0 --data "$TMP/data" --heartbeat-interval 1 >"$TMP/server.log" 2>&1 &
SERVER=$!
i=0
while ! grep -q "listening on" "$TMP/server.log" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
export MOAT_SERVER="http://$(sed -n 's/.*listening on //p' "$TMP/server.log" | head -1)"
export MOAT_TOKEN="$(cat "$TMP/admin")"
"$M" apply -f "$TMP/policy.yaml" >"$TMP/apply.out" 2>&1 || bad apply "$(cat "$TMP/apply.out")"
JOIN=$("$M" cluster join-token "kc$ID" -o json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["join_token"])')
"$D" --server "$MOAT_SERVER" --cluster "kc$ID" --join-token "$JOIN" --node "$NODE" \
    --state-dir "$TMP/state" --runtime kubernetes --kubeconfig "$TMP/kubeconfig" \
    --netns "mlab-$LAB-$NODE" >"$TMP/moatd-cluster.log" 2>&1 &
AGENT=$!
listed() {
    "$M" workload list --cluster "kc$ID" -o json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
try:
    items = json.load(sys.stdin)
except ValueError:
    items = []
items = items.get("items", items) if isinstance(items, dict) else items
print(" ".join(sorted("%s/%s=%s" % (w["namespace"], w["name"], w.get("source", "").split(":")[0])
                      for w in items)))'
}
want="shop/db-0=kubernetes shop/web-7d9f-abcde=kubernetes tools/cli-5c4b-fghij=kubernetes"
wait_until listed "$want"
check cluster-reported "$(listed)" "$want"
check cluster-source-column "$("$M" workload list --cluster "kc$ID" | head -1 | grep -c SOURCE)" 1
check cluster-source-id "$("$M" workload list --cluster "kc$ID" | grep -c 'kubernetes:0d1f6a52-1111-4c1e-9a6e-000000000001')" 1
# The first report may go out before the namespace watch's MODIFIED event
# (team=fraud) is taken in; the next report carries it.
web_ns_labels() {
    "$M" workload list --cluster "kc$ID" --name web-7d9f-abcde -o json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
try:
    items = json.load(sys.stdin)
except ValueError:
    items = []
items = items.get("items", items) if isinstance(items, dict) else items
print(",".join("%s=%s" % kv for kv in sorted(items[0].get("namespace_labels", {}).items())) if items else "absent")'
}
wait_until web_ns_labels "kubernetes.io/metadata.name=shop,team=fraud"
check cluster-namespace-labels "$(web_ns_labels)" "kubernetes.io/metadata.name=shop,team=fraud"
wait_until "field web-7d9f-abcde attached" True
check cluster-enforcing "$(field web-7d9f-abcde attached)" True
cli_to_web() { conn cli 10.78.0.10; }
wait_until cli_to_web ok
check cluster-policy-passes "$(cli_to_web)" ok
check cluster-still-held "$(conn cli 10.78.0.14)" blocked

if [ "$fail" -ne 0 ]; then
    echo "--- moatd log"
    tail -30 "$TMP/moatd.log"
    echo "--- moatd (cluster mode) log"
    tail -30 "$TMP/moatd-cluster.log" 2>/dev/null
    echo "--- requests"
    cat "$TMP/requests.log"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
