#!/bin/sh
# moatd cluster mode without traffic (root): command-line errors, a wrong join
# token, registration over HTTPS with --ca-file (and refusal without it), the
# saved credential used after a restart without --join-token, the node's
# facts and spool in the API, and a node whose kernel state moatd reports.
# Usage (root, repo root): tests/lab/agent.sh BUILD
# Prints `ok NAME` per check and a closing `N passed, N failed`.
set -u
B=${1:?build dir}
B=$(cd "$B" && pwd)
M="$B/moat"
D="$B/moatd"
S="$B/moat-server"
TMP=$(mktemp -d)
NODE="ag$$"
pass=0
fail=0
SERVER=""
AGENT=""

ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }
check() { # NAME GOT WANT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}
cleanup() {
    for p in $AGENT $SERVER; do kill "$p" 2>/dev/null; done
    for p in $AGENT $SERVER; do wait "$p" 2>/dev/null; done
    "$D" remove --node "$NODE" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
if [ "$(id -u)" != 0 ]; then
    echo "agent: needs root"
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
        sleep 0.1
    done
    return 1
}

# ---- command line (no server needed)
usage() { # NAME WANT_TEXT ARGS...
    name=$1
    want=$2
    shift 2
    out=$("$D" "$@" 2>&1)
    rc=$?
    if [ "$rc" = 2 ] && printf '%s' "$out" | grep -q -- "$want"; then ok "$name"; else bad "$name" "rc=$rc: $out"; fi
}
usage usage-server-needs-cluster "\-\-cluster: required with --server" --server http://127.0.0.1:1 --node n
usage usage-cluster-needs-server "\-\-server: required with --cluster" --cluster c --node n
usage usage-no-policy-in-cluster-mode "\-\-policy: not with --server" --server http://127.0.0.1:1 --cluster c --node n --policy x.yaml
usage usage-url-scheme "\-\-server: must start with http:// or https://" --server 127.0.0.1:1 --cluster c --node n
usage usage-bad-cluster-id "\-\-cluster: 1-63 letters" --server http://127.0.0.1:1 --cluster "a b" --node n
usage usage-spool-max "\-\-spool-max: \"0\" is not a number" --server http://127.0.0.1:1 --cluster c --node n --spool-max 0

# ---- a TLS server
if ! openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1; then
    bad openssl "$(cat "$TMP/openssl.log")"
fi
"$S" token create --data "$TMP/data" --role admin >"$TMP/admin"
"$S" --listen 127.0.0.1:0 --data "$TMP/data" --heartbeat-interval 1 --tls-cert "$TMP/cert.pem" \
    --tls-key "$TMP/key.pem" >"$TMP/server.log" 2>&1 &
SERVER=$!
wait_for 10 grep -q "listening on" "$TMP/server.log" || bad server-start "$(cat "$TMP/server.log")"
ADDR=$(sed -n 's/.*listening on //p' "$TMP/server.log" | head -1)
URL="https://$ADDR"
export MOAT_SERVER="$URL" MOAT_TOKEN="$(cat "$TMP/admin")" CURL_CA_BUNDLE="$TMP/cert.pem"
api() { curl -s --cacert "$TMP/cert.pem" -H "Authorization: Bearer $MOAT_TOKEN" "$URL/api/v1$1"; }
curl -s --cacert "$TMP/cert.pem" -H "Authorization: Bearer $MOAT_TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"edge","defense":"on"}' "$URL/api/v1/clusters" >/dev/null
JT=$(api /clusters/edge/join-token | python3 -c 'import json,sys; print(json.load(sys.stdin)["join_token"])')
node_field() { # FIELD (dotted)
    api /nodes | python3 -c '
import json, sys
for n in json.load(sys.stdin)["items"]:
    if n["name"] == sys.argv[1]:
        v = n
        for k in sys.argv[2].split("."):
            v = v.get(k) if isinstance(v, dict) else None
        print(v)
        break
else:
    print("-")' "$NODE" "$1"
}
start() { # LOG ARGS...
    log=$1
    shift
    "$D" --server "$URL" --cluster edge --node "$NODE" --state-dir "$TMP/state" --alerts /dev/null "$@" >"$log" 2>&1 &
    AGENT=$!
}
stop() {
    kill "$AGENT" 2>/dev/null
    wait "$AGENT" 2>/dev/null
    AGENT=""
}

# ---- a wrong join token: refused, said so, no node
start "$TMP/a1.log" --join-token moat_0000 --ca-file "$TMP/cert.pem"
wait_for 10 grep -q "registration refused: HTTP 401" "$TMP/a1.log" && ok wrong-join-token-refused ||
    bad wrong-join-token-refused "$(cat "$TMP/a1.log")"
check wrong-join-token-no-node "$(node_field name)" -
stop

# ---- HTTPS without the CA: the agent cannot trust the server
start "$TMP/a2.log" --join-token "$JT"
wait_for 10 grep -q "server unreachable" "$TMP/a2.log" && ok tls-untrusted-refused ||
    bad tls-untrusted-refused "$(cat "$TMP/a2.log")"
check tls-untrusted-no-node "$(node_field name)" -
stop

# ---- HTTPS with --ca-file: registers, heartbeats with its facts
start "$TMP/a3.log" --join-token "$JT" --ca-file "$TMP/cert.pem"
wait_for 10 sh -c "[ \"\$(curl -s --cacert $TMP/cert.pem -H 'Authorization: Bearer $MOAT_TOKEN' $URL/api/v1/nodes | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"items\"]))')\" = 1 ]" &&
    ok tls-registered || bad tls-registered "$(cat "$TMP/a3.log")"
wait_for 10 sh -c "[ \"\$(curl -s --cacert $TMP/cert.pem -H 'Authorization: Bearer $MOAT_TOKEN' $URL/api/v1/nodes | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"items\"][0][\"datapath\"][\"state\"])')\" = enforcing ]" &&
    ok reports-enforcing || bad reports-enforcing "$(node_field datapath)"
check reports-kernel "$(node_field kernel)" "$(uname -r)"
check reports-os "$(node_field os)" "$(. /etc/os-release && echo "$NAME $VERSION_ID")"
check reports-spool "$(node_field spool.pending)" 0
wait_for 5 sh -c "[ \"\$(curl -s --cacert $TMP/cert.pem -H 'Authorization: Bearer $MOAT_TOKEN' $URL/api/v1/nodes | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"items\"][0].get(\"policy_revision\", 0) > 0)')\" = True ]" &&
    ok reports-revision || bad reports-revision "$(node_field policy_revision)"
check credential-saved "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["node"], d["token"][:5])' "$TMP/state/credential.json")" "$NODE moat_"
check credential-private "$(stat -c %a "$TMP/state/credential.json")" 600
check policy-saved "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cluster"]["name"])' "$TMP/state/policy.json")" edge
st=$("$D" status --node "$NODE" -o json | python3 -c 'import json,sys; d=json.load(sys.stdin); c=d["cluster"]; print(d["state"], c["registered"], c["reachable"])')
check status-shows-cluster "$st" "enforcing True True"
stop

# ---- restart without --join-token: the saved credential is used
registered=$(grep -c "registered with" "$TMP/a3.log")
start "$TMP/a4.log" --ca-file "$TMP/cert.pem"
wait_for 10 grep -q "policy revision" "$TMP/a4.log" && ok restart-uses-credential ||
    bad restart-uses-credential "$(cat "$TMP/a4.log")"
check restart-did-not-register "$(grep -c "registered with" "$TMP/a4.log")" 0
check one-node "$(api /nodes | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')" 1
check first-run-registered-once "$registered" 1
stop

for f in "$TMP"/a*.log; do
    if grep -q "ERROR: AddressSanitizer\|runtime error:" "$f"; then bad sanitizer "$(grep -m3 'ERROR\|runtime error' "$f")"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
