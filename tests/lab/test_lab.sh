#!/bin/sh
# System test of `moat lab` and moat-traffic (docs/lab.md), run as root from
# the repository root:  sh tests/lab/test_lab.sh BUILD_DIR
#
# Brings up a lab of 2 nodes and 5 workloads in network namespaces, sends TCP
# and UDP between workloads, checks that nothing in the lab has a route out,
# that status, exec and a second `up` behave, that a failed `up` removes what
# it made, and that `down` removes every namespace. Only lab namespaces carry
# traffic: nothing is sent to an address outside them (`ip route get` only
# looks a route up). The trap stops the servers and removes the lab even when
# a check fails. Prints `ok NAME` per check, then `N passed, N failed`.
set -u
B=${1:?usage: tests/lab/test_lab.sh BUILD_DIR}
B=$(cd "$B" && pwd)
M=$B/moat
T=$B/moat-traffic
LAB=t$$
LAB2=u$$
PASS=0
FAIL=0
PIDS=""
TMP=$(mktemp -d)

ok() {
    echo "ok $1"
    PASS=$((PASS + 1))
}
bad() {
    echo "FAIL $1: $2"
    FAIL=$((FAIL + 1))
}
check() { # NAME COMMAND...: passes when the command succeeds
    name=$1
    shift
    if "$@" >"$TMP/out" 2>&1; then ok "$name"; else bad "$name" "$(head -c 600 "$TMP/out")"; fi
}

cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PIDS=""
    "$M" lab down --name "$LAB" >/dev/null 2>&1
    "$M" lab down --name "$LAB2" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}

if [ "$(id -u)" != 0 ]; then
    bad root "the lab test needs root (network namespaces)"
    finish
fi
if ! ip netns add "mlab-$LAB-probe" 2>"$TMP/probe"; then
    echo "skip: this kernel cannot make network namespaces: $(cat "$TMP/probe")"
    finish
fi
ip netns delete "mlab-$LAB-probe"

# Two nodes; node-2's gateway comes from its Node document; some workloads
# have addresses and interfaces, the others get them from the lab.
cat >"$TMP/lab.yaml" <<'EOF'
kind: Workload
cluster: prod
node: node-1
name: web
namespace: shop
image: docker.io/library/nginx:1.27
labels: {app: web}
---
kind: Workload
cluster: prod
node: node-1
name: api
namespace: shop
labels: {app: api}
ips: [10.244.1.20]
interface: veth-api
---
kind: Workload
cluster: prod
node: node-1
name: cache
namespace: shop
---
kind: Node
name: node-2
cluster: prod
ips: [10.244.7.1]
---
kind: Workload
cluster: prod
node: node-2
name: db
namespace: data
---
kind: Workload
cluster: prod
node: node-2
name: queue
namespace: data
ips: [10.244.7.30]
EOF

lab() { # SUBCOMMAND ARGS...: on this run's lab
    sub=$1
    shift
    "$M" lab "$sub" --name "$LAB" "$@"
}
lab_exec() { # WORKLOAD CMD...
    w=$1
    shift
    "$M" lab exec --name "$LAB" "$w" -- "$@"
}
netns_of_lab() { ip netns list | sed 's/ .*//' | grep "^mlab-$1-" | sort; }

# Starts an echo server in a workload and waits (bounded) for its `ready`.
serve() { # WORKLOAD LOGNAME ARGS...
    w=$1
    log=$TMP/$2
    shift 2
    "$M" lab exec --name "$LAB" "$w" -- "$T" serve "$@" >"$log" 2>&1 &
    pid=$!
    PIDS="$PIDS $pid"
    i=0
    while [ $i -lt 200 ]; do
        grep -q '^ready$' "$log" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    echo "server in $w not ready: $(cat "$log")"
    return 1
}

# ---- up ----
check up "$M" lab up "$TMP/lab.yaml" --name "$LAB" --inventory "$TMP/inventory.yaml"
check inventory_loads "$M" validate -f "$TMP/inventory.yaml"
inventory_completed() {
    f=$TMP/inventory.yaml
    # assigned in order from .10, skipping used ones; gateways are node addresses
    grep -q 'ips: \["10.244.1.1"\]' "$f" && grep -q 'ips: \["10.244.7.1"\]' "$f" &&
        grep -q 'ips: \["10.244.1.10"\]' "$f" && grep -q 'ips: \["10.244.1.11"\]' "$f" &&
        grep -q 'ips: \["10.244.7.10"\]' "$f" && grep -q 'interface: veth-api' "$f" &&
        grep -q 'interface: lxc-web' "$f" && [ "$(grep -c '^kind: Node' "$f")" -eq 2 ] &&
        [ "$(grep -c '^kind: Workload' "$f")" -eq 5 ]
}
check inventory_completed inventory_completed
check inventory_explain "$M" explain -f "$TMP/inventory.yaml" --from web --to api --port 8080 \
    --proto tcp

namespaces_exist() {
    want="mlab-$LAB-node-1 mlab-$LAB-node-1-web mlab-$LAB-node-1-api mlab-$LAB-node-1-cache
          mlab-$LAB-node-2 mlab-$LAB-node-2-db mlab-$LAB-node-2-queue"
    have=$(netns_of_lab "$LAB")
    for n in $want; do
        echo "$have" | grep -qx "$n" || { echo "missing $n; have: $have"; return 1; }
    done
    [ "$(echo "$have" | wc -l)" -eq 7 ] || { echo "unexpected: $have"; return 1; }
}
check namespaces_exist namespaces_exist
check state_file test -s "/run/moat/lab/$LAB.state"

# ---- traffic between workloads of one node ----
check serve_node1 serve api srv1.log --tcp 8080 --tcp 8081 --udp 5353
check serve_node2 serve queue srv2.log --tcp 9000 --udp 9001
check tcp_same_node lab_exec web "$T" connect --tcp 10.244.1.20 8080
check tcp_second_port lab_exec cache "$T" connect --tcp 10.244.1.20 8081 --count 3
check udp_same_node lab_exec web "$T" connect --udp 10.244.1.20 5353 --count 3 --payload hello
check tcp_node2 lab_exec db "$T" connect --tcp 10.244.7.30 9000
check udp_node2 lab_exec data/db "$T" connect --udp 10.244.7.30 9001
check stream lab_exec web "$T" stream --tcp 10.244.1.20 8080 --interval-ms 20 --duration-ms 300
refused() {
    out=$(lab_exec web "$T" connect --tcp 10.244.1.20 8099 --timeout-ms 1000)
    rc=$?
    [ $rc -eq 1 ] && [ "$out" = "fail: connection refused" ] || { echo "rc=$rc out=$out"; return 1; }
    out=$(lab_exec web "$T" connect --udp 10.244.1.20 5399 --timeout-ms 1000)
    rc=$?
    [ $rc -eq 1 ] && [ "${out#fail: }" != "$out" ] || { echo "udp rc=$rc out=$out"; return 1; }
}
check closed_port_fails refused

# ---- isolation: nothing routes out of the lab (lookups only, nothing is sent) ----
workload_routes() {
    r=$(lab_exec web ip route get 8.8.8.8) || return 1
    echo "$r" | grep -q "via 10.244.1.1 dev eth0" || { echo "$r"; return 1; }
    routes=$(lab_exec web ip -4 route show)
    [ "$(echo "$routes" | wc -l)" -eq 2 ] &&
        echo "$routes" | grep -qx "default via 10.244.1.1 dev eth0 *" &&
        echo "$routes" | grep -q "^10.244.1.0/24 dev eth0" || { echo "$routes"; return 1; }
    links=$(lab_exec web ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')
    [ "$links" = "eth0 lo " ] || { echo "links: $links"; return 1; }
}
check workload_routes_only_to_gateway workload_routes
node_isolated() {
    for n in node-1 node-2; do
        routes=$("$M" lab exec --name "$LAB" --node $n -- ip -4 route show)
        echo "$routes" | grep -q default && { echo "$n: $routes"; return 1; }
        [ "$(echo "$routes" | wc -l)" -eq 1 ] || { echo "$n: $routes"; return 1; }
        if "$M" lab exec --name "$LAB" --node $n -- ip route get 8.8.8.8 >/dev/null 2>&1; then
            echo "$n has a route to 8.8.8.8"
            return 1
        fi
        if "$M" lab exec --name "$LAB" --node $n -- ip -6 route get 2001:4860::8888 \
            >/dev/null 2>&1; then
            echo "$n has an IPv6 route out"
            return 1
        fi
    done
}
check nodes_have_no_route_out node_isolated
node_links() {
    links=$("$M" lab exec --name "$LAB" --node node-1 -- ip -o link show | awk -F': ' '{print $2}' |
        sed 's/@.*//' | sort | tr '\n' ' ')
    [ "$links" = "lo lxc-cache lxc-web mbr0 veth-api " ] || { echo "links: $links"; return 1; }
    ip -o link show | grep "mlab-$LAB" && { echo "a root link leads into the lab"; return 1; }
    return 0
}
check node_links_only_lab node_links
ip_forward() {
    v=$("$M" lab exec --name "$LAB" --node node-1 -- cat /proc/sys/net/ipv4/ip_forward)
    [ "$v" = 1 ] || { echo "ip_forward=$v"; return 1; }
}
check ip_forward_in_node ip_forward

# ---- status and exec ----
status_json() {
    "$M" lab status --name "$LAB" -o json >"$TMP/status.json" || return 1
    python3 - "$TMP/status.json" "$LAB" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
lab = sys.argv[2]
assert d["lab"] == lab, d
assert [n["name"] for n in d["nodes"]] == ["node-1", "node-2"], d["nodes"]
assert d["nodes"][1]["address"] == "10.244.7.1" and d["nodes"][1]["subnet"] == "10.244.7.0/24"
assert all(n["present"] and n["bridge"] == "mbr0" for n in d["nodes"])
w = {x["namespace"] + "/" + x["name"]: x for x in d["workloads"]}
assert len(w) == 5, w
assert w["shop/web"]["ips"] == ["10.244.1.10"] and w["shop/web"]["interface"] == "lxc-web"
assert w["shop/api"]["interface"] == "veth-api"
assert w["data/queue"]["node"] == "node-2"
assert w["data/db"]["netns"] == "mlab-%s-node-2-db" % lab
assert all(x["present"] for x in d["workloads"])
EOF
}
check status_json status_json
check status_table lab status
exec_status() {
    lab_exec shop/web sh -c 'exit 7'
    [ $? -eq 7 ]
}
check exec_exit_status exec_status
exec_unknown() {
    lab_exec nosuch true
    [ $? -eq 2 ]
}
check exec_unknown_workload exec_unknown
exec_missing() {
    lab_exec web /nonexistent/cmd
    [ $? -eq 127 ]
}
check exec_missing_command exec_missing

# ---- a second `up` of the same lab fails and leaves the first alone ----
second_up() {
    before=$(netns_of_lab "$LAB")
    "$M" lab up "$TMP/lab.yaml" --name "$LAB" >/dev/null
    rc=$?
    [ $rc -eq 1 ] || { echo "rc=$rc"; return 1; }
    [ "$(netns_of_lab "$LAB")" = "$before" ] || { echo "namespaces changed"; return 1; }
    lab_exec web "$T" connect --tcp 10.244.1.20 8080 >/dev/null
}
check second_up_fails second_up

# ---- a failed `up` removes what it made ----
failed_up() {
    mkdir -p "$TMP/fakebin"
    real=$(command -v ip)
    cat >"$TMP/fakebin/ip" <<EOF
#!/bin/sh
case " \$* " in *" route add "*) echo "fake ip: refusing route add" >&2; exit 1 ;; esac
exec "$real" "\$@"
EOF
    chmod +x "$TMP/fakebin/ip"
    PATH="$TMP/fakebin:$PATH" "$M" lab up "$TMP/lab.yaml" --name "$LAB2" >/dev/null 2>"$TMP/err2"
    rc=$?
    [ $rc -eq 1 ] || { echo "rc=$rc"; return 1; }
    [ -z "$(netns_of_lab "$LAB2")" ] || { echo "left: $(netns_of_lab "$LAB2")"; return 1; }
    [ ! -e "/run/moat/lab/$LAB2.state" ] || { echo "state file left"; return 1; }
}
check failed_up_rolls_back failed_up
invalid_up() {
    printf 'kind: Workload\nname: x\n' >"$TMP/bad.yaml"
    "$M" lab up "$TMP/bad.yaml" --name "$LAB2" >/dev/null 2>&1
    [ $? -eq 2 ] && [ ! -e "/run/moat/lab/$LAB2.state" ] && [ -z "$(netns_of_lab "$LAB2")" ]
}
check invalid_file_exits_2 invalid_up

# ---- down ----
for p in $PIDS; do
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
done
PIDS=""
check down lab down
down_removed() {
    left=$(netns_of_lab "$LAB")
    [ -z "$left" ] || { echo "left: $left"; return 1; }
    [ ! -e "/run/moat/lab/$LAB.state" ] || { echo "state file left"; return 1; }
}
check down_removes_everything down_removed
check down_again_is_ok lab down
status_gone() {
    lab status >/dev/null 2>&1
    [ $? -eq 2 ]
}
check status_after_down status_gone

finish
