#!/bin/sh
# Browser tests of the web console (issue 14): headless Chromium (Debian's
# chromium and chromium-driver) driven by Debian's python3-selenium
# (console.py, run with /usr/bin/python3), against a real moat-server with a
# one-node lab and a moatd agent enforcing its cluster's policy in the kernel.
# Screenshots of each page go to BUILD/browser/ (docs/console.md shows copies).
# Usage (root, repo root): tests/browser/run.sh BUILD
# Prints `ok NAME` per check and a closing `N passed, N failed`.
set -u
B=${1:?build dir}
B=$(cd "$B" && pwd)
M="$B/moat"
T="$B/moat-traffic"
D="$B/moatd"
S="$B/moat-server"
LAB="w$$"
NODE="wn$$"
CLUSTER="shop$$"
TMP=$(mktemp -d)
OUT="$B/browser"
SERVER=""
AGENT=""
PIDS=""

fail_early() { # MESSAGE
    echo "browser: $1"
    echo "0 passed, 1 failed"
    exit 1
}

cleanup() {
    for p in $PIDS $AGENT $SERVER; do kill "$p" 2>/dev/null; done
    for p in $PIDS $AGENT $SERVER; do wait "$p" 2>/dev/null; done
    "$D" remove --node "$NODE" >/dev/null 2>&1
    "$M" lab down --name "$LAB" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ "$(id -u)" = 0 ] || fail_early "needs root (the lab and the agent's datapath)"
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || fail_early "needs chromium and chromium-driver (make deps)"
/usr/bin/python3 -c 'import selenium' 2>/dev/null || fail_early "needs python3-selenium (make deps)"

wait_file() { # FILE TEXT: up to 10 s
    i=0
    while [ $i -lt 200 ]; do
        grep -q "$2" "$1" 2>/dev/null && return 0
        i=$((i + 1))
        sleep 0.05
    done
    return 1
}

# ---- the server, with an admin and a viewer token
"$S" token create --data "$TMP/data" --role admin >"$TMP/admin" || fail_early "token create failed"
"$S" token create --data "$TMP/data" --role viewer >"$TMP/viewer" || fail_early "token create failed"
"$S" --listen 127.0.0.1:0 --data "$TMP/data" --heartbeat-interval 1 >"$TMP/server.log" 2>&1 &
SERVER=$!
wait_file "$TMP/server.log" "listening on" || fail_early "moat-server did not start: $(cat "$TMP/server.log")"
ADDR=$(sed -n 's/.*listening on //p' "$TMP/server.log" | head -1)
export MOAT_SERVER="http://$ADDR" MOAT_TOKEN="$(cat "$TMP/admin")"

# ---- the cluster (defense off: the test switches it on in the console) and its lab
printf 'kind: Cluster\nname: %s\ndefense: off\n' "$CLUSTER" >"$TMP/cluster.yaml"
"$M" apply -f "$TMP/cluster.yaml" >/dev/null || fail_early "moat apply failed"
cat >"$TMP/lab.yaml" <<YAML
kind: Node
name: $NODE
cluster: $CLUSTER
ips: [10.83.1.1]
---
kind: Workload
cluster: $CLUSTER
node: $NODE
name: client-1
namespace: shop
image: docker.io/library/alpine:3.20
labels: {app: client}
ips: [10.83.1.10]
---
kind: Workload
cluster: $CLUSTER
node: $NODE
name: web-1
namespace: shop
image: docker.io/library/nginx:1.27
labels: {app: web, tier: frontend}
ips: [10.83.1.11]
YAML
"$M" lab up "$TMP/lab.yaml" --name "$LAB" --inventory "$TMP/inventory.yaml" >"$TMP/labup.out" 2>&1 ||
    fail_early "lab up failed: $(cat "$TMP/labup.out")"
"$M" lab exec --name "$LAB" web-1 -- "$T" serve --tcp 80 >"$TMP/serve.out" 2>&1 &
PIDS="$PIDS $!"
wait_file "$TMP/serve.out" ready || fail_early "the echo server did not start"
JT=$("$M" cluster join-token "$CLUSTER" -o json |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["join_token"])') || fail_early "no join token"
"$D" --server "$MOAT_SERVER" --cluster "$CLUSTER" --join-token "$JT" --node "$NODE" \
    --inventory "$TMP/inventory.yaml" --netns "mlab-$LAB-$NODE" --state-dir "$TMP/state" \
    --alerts "$TMP/alerts.jsonl" >"$TMP/moatd.log" 2>&1 &
AGENT=$!
wait_file "$TMP/moatd.log" "policy revision" || fail_early "moatd did not apply a policy: $(cat "$TMP/moatd.log")"

rm -rf "$OUT"
mkdir -p "$OUT"
MOAT_URL="$MOAT_SERVER" MOAT_ADMIN="$(cat "$TMP/admin")" MOAT_VIEWER="$(cat "$TMP/viewer")" \
    MOAT_CLUSTER="$CLUSTER" MOAT_LAB="$LAB" MOAT_BIN="$M" MOAT_TRAFFIC="$T" MOAT_NODE="$NODE" \
    MOAT_WEB_IP=10.83.1.11 MOAT_OUT="$OUT" MOAT_WEB_DIR="$(pwd)/web" MOAT_AGENT_PID="$AGENT" \
    timeout 600 /usr/bin/python3 tests/browser/console.py >"$TMP/console.out" 2>&1
rc=$?
cat "$TMP/console.out"
echo "browser: screenshots in $OUT"
# The server stops cleanly (SIGTERM), so that the sanitizers report what they found.
kill "$SERVER" 2>/dev/null
wait "$SERVER" 2>/dev/null
SERVER=""
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$TMP/console.out" | tail -1)
p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
p=${p:-0}
f=${f:-0}
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$TMP/server.log"; then
    echo "FAIL moat-server sanitizer report:"
    grep -A12 -m2 "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$TMP/server.log"
    f=$((f + 1))
else
    echo "ok moat-server stopped without a sanitizer report"
    p=$((p + 1))
fi
if [ "$f" -gt 0 ]; then
    echo "browser: the agent's last log lines:"
    tail -n 40 "$TMP/moatd.log"
fi
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
