#!/bin/sh
# System test of `moat lab` and moat-traffic (docs/lab.md), run as root from
# the repository root:  sh tests/lab/test_lab.sh BUILD_DIR
#
# Brings up a dual-stack lab of 2 nodes and 5 workloads in network namespaces,
# sends TCP and UDP over IPv4 and IPv6 between workloads of one node and, over
# the underlay, of two nodes (the receiver sees the sender's own address),
# pings across nodes (ICMP and ICMPv6), checks the namespaces' forwarding and
# router-advertisement settings (set by the lab, not inherited from the host),
# that nothing in the lab has a route out, that status, exec and a second
# `up` behave, that a failed `up` removes what it made, that `down` after an
# `up` killed half-way removes it, and that `down` removes every namespace,
# the underlay's included. Only lab namespaces carry traffic: nothing is sent
# to an address outside them (`ip route get` only looks a route up). The trap
# stops the servers and removes the labs even when a check fails. Prints
# `ok NAME` per check, then `N passed, N failed`.
set -u
B=${1:?usage: tests/lab/test_lab.sh BUILD_DIR}
B=$(cd "$B" && pwd)
M=$B/moat
T=$B/moat-traffic
LAB=t$$
LAB2=u$$
LAB3=k$$
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

forget() { # PID: waited for, so no longer ours to stop (its number may be reused)
    PIDS=$(for p in $PIDS; do [ "$p" = "$1" ] || printf '%s ' "$p"; done)
}

cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PIDS=""
    "$M" lab down --name "$LAB" >/dev/null 2>&1
    "$M" lab down --name "$LAB2" >/dev/null 2>&1
    "$M" lab down --name "$LAB3" >/dev/null 2>&1
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
# have addresses and interfaces, the others get them from the lab. Dual
# stack: node-1's /64 is the lab's (fd00:0:0:1::/64), node-2's that of
# queue's IPv6 address (fd00:7::/64, gateway fd00:7::1).
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
ips: [10.244.7.30, "fd00:7::30"]
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
check up "$M" lab up "$TMP/lab.yaml" --dual-stack --name "$LAB" --inventory "$TMP/inventory.yaml"
check inventory_loads "$M" validate -f "$TMP/inventory.yaml"
inventory_completed() {
    f=$TMP/inventory.yaml
    # assigned in order from .10, skipping used ones; gateways are node addresses;
    # IPv6: the IPv4 host number as the last group
    grep -q 'ips: \["10.244.1.1", "fd00:0:0:1::1"\]' "$f" &&
        grep -q 'ips: \["10.244.7.1", "fd00:7::1"\]' "$f" &&
        grep -q 'ips: \["10.244.1.10", "fd00:0:0:1::10"\]' "$f" &&
        grep -q 'ips: \["10.244.1.20", "fd00:0:0:1::20"\]' "$f" &&
        grep -q 'ips: \["10.244.1.11", "fd00:0:0:1::11"\]' "$f" &&
        grep -q 'ips: \["10.244.7.10", "fd00:7::10"\]' "$f" &&
        grep -q 'ips: \["10.244.7.30", "fd00:7::30"\]' "$f" && grep -q 'interface: veth-api' "$f" &&
        grep -q 'interface: lxc-web' "$f" && [ "$(grep -c '^kind: Node' "$f")" -eq 2 ] &&
        [ "$(grep -c '^kind: Workload' "$f")" -eq 5 ]
}
check inventory_completed inventory_completed
check inventory_explain "$M" explain -f "$TMP/inventory.yaml" --from web --to api --port 8080 \
    --proto tcp

namespaces_exist() {
    want="mlab-$LAB-underlay mlab-$LAB-node-1 mlab-$LAB-node-1-web mlab-$LAB-node-1-api
          mlab-$LAB-node-1-cache mlab-$LAB-node-2 mlab-$LAB-node-2-db mlab-$LAB-node-2-queue"
    have=$(netns_of_lab "$LAB")
    for n in $want; do
        echo "$have" | grep -qx "$n" || { echo "missing $n; have: $have"; return 1; }
    done
    [ "$(echo "$have" | wc -l)" -eq 8 ] || { echo "unexpected: $have"; return 1; }
}
check namespaces_exist namespaces_exist
check state_file test -s "/run/moat/lab/$LAB.state"

# ---- traffic over IPv4 and IPv6 ----
check serve_node1 serve api srv1.log --tcp 8080 --tcp 8081 --udp 5353
check serve_node2 serve queue srv2.log --tcp 9000 --udp 9001
# IPv6 works as soon as `up` returns: no address, link-local ones included, is
# still `tentative` (no DAD), and the first connections, at once, are echoed.
ipv6_at_once() {
    lab_exec web "$T" connect --tcp fd00:0:0:1::20 8080 || return 1
    ll=$(ip -n "mlab-$LAB-node-1-api" -6 -o addr show dev eth0 scope link | awk '{print $4}')
    lab_exec web "$T" connect --tcp "${ll%/64}%eth0" 8080 || return 1
    for ns in $(netns_of_lab "$LAB"); do
        t=$(ip -n "$ns" -6 addr show tentative)
        [ -z "$t" ] || { echo "$ns: $t"; return 1; }
    done
}
check ipv6_works_at_once ipv6_at_once

# The workloads' addresses in family $1 (4 or 6).
family() {
    if [ "$1" = 4 ]; then
        WEB=10.244.1.10 API=10.244.1.20 DB=10.244.7.10 QUEUE=10.244.7.30 SFX=""
    else
        WEB=fd00:0:0:1::10 API=fd00:0:0:1::20 DB=fd00:7::10 QUEUE=fd00:7::30 SFX=_v6
    fi
}
refused() {
    out=$(lab_exec web "$T" connect --tcp "$API" 8099 --timeout-ms 1000)
    rc=$?
    [ $rc -eq 1 ] && [ "$out" = "fail: connection refused" ] || { echo "rc=$rc out=$out"; return 1; }
    out=$(lab_exec web "$T" connect --udp "$API" 5399 --timeout-ms 1000)
    rc=$?
    [ $rc -eq 1 ] && [ "$out" = "fail: connection refused" ] || { echo "udp rc=$rc out=$out"; return 1; }
}
for fam in 4 6; do
    family $fam
    # between workloads of one node
    check tcp_same_node$SFX lab_exec web "$T" connect --tcp "$API" 8080
    check tcp_second_port$SFX lab_exec cache "$T" connect --tcp "$API" 8081 --count 3
    check udp_same_node$SFX lab_exec web "$T" connect --udp "$API" 5353 --count 3 --payload hello
    check tcp_node2$SFX lab_exec db "$T" connect --tcp "$QUEUE" 9000
    check udp_node2$SFX lab_exec data/db "$T" connect --udp "$QUEUE" 9001
    check stream$SFX lab_exec web "$T" stream --tcp "$API" 8080 --interval-ms 20 --duration-ms 300
    check closed_port_fails$SFX refused
    # between nodes, over the underlay
    check tcp_cross_node$SFX lab_exec web "$T" connect --tcp "$QUEUE" 9000
    check udp_cross_node$SFX lab_exec web "$T" connect --udp "$QUEUE" 9001 --count 3
    check tcp_cross_node_back$SFX lab_exec queue "$T" connect --tcp "$API" 8081
    check udp_cross_node_back$SFX lab_exec db "$T" connect --udp "$API" 5353
    check stream_cross_node$SFX lab_exec cache "$T" stream --tcp "$QUEUE" 9000 --interval-ms 20 \
        --duration-ms 300
done

# A one-shot echo server (family $1) that prints the source address of one TCP
# connection and one UDP datagram, then exits (or gives up after 20 s).
cat >"$TMP/peers.py" <<'EOF'
import select, socket, sys, time
fam = socket.AF_INET if sys.argv[1] == "4" else socket.AF_INET6
t = socket.socket(fam, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("", int(sys.argv[2])))
t.listen(4)
u = socket.socket(fam, socket.SOCK_DGRAM)
u.bind(("", int(sys.argv[3])))
print("ready", flush=True)
deadline = time.monotonic() + 20
need = {"tcp", "udp"}
while need and time.monotonic() < deadline:
    ready, _, _ = select.select([t, u], [], [], max(0.0, deadline - time.monotonic()))
    if t in ready:
        c, peer = t.accept()
        c.settimeout(5)
        data = b""
        while not data.endswith(b"\n"):
            more = c.recv(4096)
            if not more:
                break
            data += more
        c.sendall(data)
        c.close()
        print("tcp", peer[0], flush=True)
        need.discard("tcp")
    if u in ready:
        data, peer = u.recvfrom(4096)
        u.sendto(data, peer)
        print("udp", peer[0], flush=True)
        need.discard("udp")
sys.exit(1 if need else 0)
EOF
# The receiving node's firewall must see the real source workload: no NAT.
source_kept() { # FAMILY
    log=$TMP/peers$1.log
    "$M" lab exec --name "$LAB" db -- python3 "$TMP/peers.py" "$1" 9100 9101 >"$log" 2>&1 &
    pid=$!
    PIDS="$PIDS $pid"
    i=0
    while [ $i -lt 200 ] && ! grep -q '^ready$' "$log"; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    grep -q '^ready$' "$log" || { echo "peers.py not ready: $(cat "$log")"; return 1; }
    family "$1"
    lab_exec web "$T" connect --tcp "$DB" 9100 || return 1
    lab_exec web "$T" connect --udp "$DB" 9101 || return 1
    wait "$pid"
    rc=$?
    forget "$pid"
    [ $rc -eq 0 ] || { echo "peers.py: rc=$rc $(cat "$log")"; return 1; }
    grep -qx "tcp $WEB" "$log" && grep -qx "udp $WEB" "$log" ||
        { echo "the server saw: $(cat "$log")"; return 1; }
}
check cross_node_source_kept source_kept 4
check cross_node_source_kept_v6 source_kept 6

# ICMP or ICMPv6 echo with a raw socket (root; ping may not be installed):
# prints `reply from SRC to DST` (DST: where the reply went, our source
# address) and exits 0, or exits 1 after 2 s.
cat >"$TMP/ping.py" <<'EOF'
import os, socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF
dst = sys.argv[1]
v6 = ":" in dst
ident = os.getpid() & 0xFFFF
if v6:  # the kernel fills in the ICMPv6 checksum; replies come without their IPv6 header
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    pkt = struct.pack("!BBHHH", 128, 0, 0, ident, 1) + b"moat-ping!"
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    pkt = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"moat-ping!"
    pkt = pkt[:2] + struct.pack("!H", csum(pkt)) + pkt[4:]
s.sendto(pkt, (dst, 0))
deadline = time.monotonic() + 2
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        data, anc, _, peer = s.recvmsg(2048, socket.CMSG_SPACE(20))
    except socket.timeout:
        break
    if v6:
        to = [socket.inet_ntop(socket.AF_INET6, d[:16]) for l, t, d in anc
              if l == socket.IPPROTO_IPV6 and t == socket.IPV6_PKTINFO]
        to, icmp, want = (to[0] if to else "?"), data, 129
    else:
        to, icmp, want = socket.inet_ntoa(data[16:20]), data[(data[0] & 15) * 4:], 0
    typ, _, _, i, _ = struct.unpack("!BBHHH", icmp[:8])
    if typ == want and i == ident and peer[0] == dst:
        print("reply from", peer[0], "to", to)
        sys.exit(0)
print("no reply from", dst)
sys.exit(1)
EOF
ping_is() { # WORKLOAD|--node NODE DST WANT
    if [ "$1" = --node ]; then
        r=$("$M" lab exec --name "$LAB" --node "$2" -- python3 "$TMP/ping.py" "$3")
        want=$4
    else
        r=$(lab_exec "$1" python3 "$TMP/ping.py" "$2")
        want=$3
    fi
    [ "$r" = "$want" ] || { echo "$r (wanted: $want)"; return 1; }
}
ping_cross_node() {
    ping_is web 10.244.7.30 "reply from 10.244.7.30 to 10.244.1.10" &&
        ping_is queue 10.244.1.1 "reply from 10.244.1.1 to 10.244.7.30" &&
        # What a node sends to another node carries its own address (the route's src).
        ping_is --node node-1 10.244.7.10 "reply from 10.244.7.10 to 10.244.1.1" &&
        ping_is --node node-2 100.64.0.1 "reply from 100.64.0.1 to 100.64.0.2"
}
check ping_cross_node ping_cross_node
ping6_cross_node() {
    ping_is web fd00:7::30 "reply from fd00:7::30 to fd00:0:0:1::10" &&
        ping_is queue fd00:0:0:1::1 "reply from fd00:0:0:1::1 to fd00:7::30" &&
        ping_is --node node-1 fd00:7::10 "reply from fd00:7::10 to fd00:0:0:1::1" &&
        ping_is --node node-2 fd00:ffff::1 "reply from fd00:ffff::1 to fd00:ffff::2"
}
check ping_cross_node_v6 ping6_cross_node

# ---- isolation: nothing routes out of the lab (lookups only, nothing is sent) ----
workload_routes() {
    r=$(lab_exec web ip route get 8.8.8.8) || return 1
    echo "$r" | grep -q "via 10.244.1.1 dev eth0" || { echo "$r"; return 1; }
    r=$(lab_exec web ip -6 route get 2001:4860::8888) || return 1
    echo "$r" | grep -q "via fd00:0:0:1::1 dev eth0" || { echo "$r"; return 1; }
    routes=$(lab_exec web ip -4 route show)
    [ "$(echo "$routes" | wc -l)" -eq 2 ] &&
        echo "$routes" | grep -qx "default via 10.244.1.1 dev eth0 *" &&
        echo "$routes" | grep -q "^10.244.1.0/24 dev eth0" || { echo "$routes"; return 1; }
    # its /64 and fe80::/64 on eth0, the default via the node's gateway: nothing else
    routes=$(lab_exec web ip -6 route show)
    [ "$(echo "$routes" | wc -l)" -eq 3 ] &&
        echo "$routes" | grep -q "^default via fd00:0:0:1::1 dev eth0 " &&
        echo "$routes" | grep -q "^fd00:0:0:1::/64 dev eth0 " &&
        echo "$routes" | grep -q "^fe80::/64 dev eth0 " || { echo "$routes"; return 1; }
    links=$(lab_exec web ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')
    [ "$links" = "eth0 lo " ] || { echo "links: $links"; return 1; }
}
check workload_routes_only_to_gateway workload_routes
# Every namespace of the lab: only workloads have a default route (IPv4 and
# IPv6), via their own node's gateways; nodes and the underlay have none.
no_default_routes() {
    for ns in $(netns_of_lab "$LAB"); do
        d4=$(ip -n "$ns" -4 route show default | sed 's/ *$//')
        d6=$(ip -n "$ns" -6 route show default | sed 's/ metric .*//; s/ *$//')
        case "$ns" in
        mlab-$LAB-underlay | mlab-$LAB-node-1 | mlab-$LAB-node-2) want4="" want6="" ;;
        mlab-$LAB-node-1-*) want4="default via 10.244.1.1 dev eth0" want6="default via fd00:0:0:1::1 dev eth0" ;;
        mlab-$LAB-node-2-*) want4="default via 10.244.7.1 dev eth0" want6="default via fd00:7::1 dev eth0" ;;
        *)
            echo "unexpected namespace $ns"
            return 1
            ;;
        esac
        [ "$d4" = "$want4" ] && [ "$d6" = "$want6" ] || { echo "$ns: default routes: $d4 / $d6"; return 1; }
    done
}
check no_default_route_but_workloads_to_node no_default_routes
node_isolated() {
    for n in node-1 node-2; do
        routes=$("$M" lab exec --name "$LAB" --node $n -- ip -4 route show)
        echo "$routes" | grep -q default && { echo "$n: $routes"; return 1; }
        # its /24 on mbr0, the underlay's /24 on ul0, the other node's /24 via it
        [ "$(echo "$routes" | wc -l)" -eq 3 ] || { echo "$n: $routes"; return 1; }
        # the same for IPv6, besides the links' fe80::/64
        routes=$("$M" lab exec --name "$LAB" --node $n -- ip -6 route show | grep -v '^fe80::/64 ')
        echo "$routes" | grep -q default && { echo "$n: $routes"; return 1; }
        [ "$(echo "$routes" | wc -l)" -eq 3 ] || { echo "$n: $routes"; return 1; }
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
    # Even what a workload hands its node for an outside address goes nowhere.
    if "$M" lab exec --name "$LAB" --node node-1 -- ip route get 8.8.8.8 from 10.244.1.10 \
        iif mbr0 >/dev/null 2>&1; then
        echo "node-1 forwards to 8.8.8.8"
        return 1
    fi
    if "$M" lab exec --name "$LAB" --node node-1 -- ip -6 route get 2001:4860::8888 \
        from fd00:0:0:1::10 iif mbr0 >/dev/null 2>&1; then
        echo "node-1 forwards to 2001:4860::8888"
        return 1
    fi
}
check nodes_have_no_route_out node_isolated
node_routes() {
    r=$("$M" lab exec --name "$LAB" --node node-1 -- ip -4 route show) || return 1
    echo "$r" | grep -qx "10.244.7.0/24 via 100.64.0.2 dev ul0 src 10.244.1.1 *" &&
        echo "$r" | grep -q "^100.64.0.0/24 dev ul0 .*src 100.64.0.1" &&
        echo "$r" | grep -q "^10.244.1.0/24 dev mbr0 " || { echo "node-1: $r"; return 1; }
    r=$("$M" lab exec --name "$LAB" --node node-2 -- ip -4 route show) || return 1
    echo "$r" | grep -qx "10.244.1.0/24 via 100.64.0.1 dev ul0 src 10.244.7.1 *" &&
        echo "$r" | grep -q "^100.64.0.0/24 dev ul0 .*src 100.64.0.2" || { echo "node-2: $r"; return 1; }
    r=$("$M" lab exec --name "$LAB" --node node-1 -- ip -6 route show) || return 1
    echo "$r" | grep -q "^fd00:7::/64 via fd00:ffff::2 dev ul0 src fd00:0:0:1::1 " &&
        echo "$r" | grep -q "^fd00:ffff::/64 dev ul0 " &&
        echo "$r" | grep -q "^fd00:0:0:1::/64 dev mbr0 " || { echo "node-1: $r"; return 1; }
    r=$("$M" lab exec --name "$LAB" --node node-2 -- ip -6 route show) || return 1
    echo "$r" | grep -q "^fd00:0:0:1::/64 via fd00:ffff::1 dev ul0 src fd00:7::1 " &&
        echo "$r" | grep -q "^fd00:7::/64 dev mbr0 " || { echo "node-2: $r"; return 1; }
    a=$("$M" lab exec --name "$LAB" --node node-2 -- ip -6 -o addr show scope global |
        awk '{print $2, $4}' | sort | tr '\n' ' ')
    [ "$a" = "mbr0 fd00:7::1/64 ul0 fd00:ffff::2/64 " ] || { echo "node-2 addresses: $a"; return 1; }
}
check node_routes_over_underlay node_routes
underlay_isolated() {
    U=mlab-$LAB-underlay
    r=$(
        ip -n "$U" -4 route show
        ip -n "$U" -6 route show | grep -v '^fe80::/64 '
    )
    [ -z "$r" ] || { echo "underlay routes: $r"; return 1; }
    a=$(ip -n "$U" -4 -o addr show | awk '{print $2, $4}')
    [ "$a" = "lo 127.0.0.1/8" ] || { echo "underlay addresses: $a"; return 1; }
    a=$(ip -n "$U" -6 -o addr show scope global)
    [ -z "$a" ] || { echo "underlay IPv6 addresses: $a"; return 1; }
    links=$(ip -n "$U" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')
    [ "$links" = "lo node1 node2 ubr0 " ] || { echo "underlay links: $links"; return 1; }
    for p in node1 node2; do
        ip -n "$U" -o link show dev $p | grep -q "master ubr0" || { echo "$p not on ubr0"; return 1; }
    done
    if ip -n "$U" route get 8.8.8.8 >/dev/null 2>&1; then
        echo "the underlay has a route to 8.8.8.8"
        return 1
    fi
}
check underlay_only_a_bridge underlay_isolated
node_links() {
    links=$("$M" lab exec --name "$LAB" --node node-1 -- ip -o link show | awk -F': ' '{print $2}' |
        sed 's/@.*//' | sort | tr '\n' ' ')
    [ "$links" = "lo lxc-cache lxc-web mbr0 ul0 veth-api " ] || { echo "links: $links"; return 1; }
    ip -o link show | grep "mlab-$LAB" && { echo "a root link leads into the lab"; return 1; }
    return 0
}
check node_links_only_lab node_links

# ---- the namespaces' settings: the lab's, whatever the host's are ----
# sysctl NS KEY...: the values, space-separated (/proc/sys follows the reader's namespace)
sysctls() {
    ns=$1
    shift
    for k in "$@"; do printf '%s ' "$(ip netns exec "$ns" cat "/proc/sys/net/$k")"; done
}
# Nodes forward IPv4 and IPv6 (on every link) and take no router advertisement.
node_settings() {
    for n in node-1 node-2; do
        v=$(sysctls "mlab-$LAB-$n" ipv4/ip_forward ipv4/conf/mbr0/forwarding ipv4/conf/ul0/forwarding \
            ipv6/conf/all/forwarding ipv6/conf/mbr0/forwarding ipv6/conf/ul0/forwarding \
            ipv6/conf/mbr0/accept_ra ipv6/conf/ul0/accept_ra ipv4/conf/all/rp_filter)
        [ "$v" = "1 1 1 1 1 1 0 0 0 " ] || { echo "$n: $v"; return 1; }
    done
}
check forwarding_on_in_nodes node_settings
# The underlay forwards nothing, on any link.
underlay_settings() {
    U=mlab-$LAB-underlay
    v=$(sysctls "$U" ipv4/ip_forward ipv4/conf/ubr0/forwarding ipv4/conf/node1/forwarding \
        ipv6/conf/all/forwarding ipv6/conf/ubr0/forwarding ipv6/conf/node2/forwarding ipv6/conf/ubr0/accept_ra)
    [ "$v" = "0 0 0 0 0 0 0 " ] || { echo "underlay: $v"; return 1; }
}
check forwarding_off_in_underlay underlay_settings
# Workloads forward nothing, take router advertisements (a host's default: the
# datapath must stop rogue ones) and have the EUI-64 link-local address of their MAC.
eui64() { # MAC -> fe80::... as ip prints it
    python3 -c '
import ipaddress, sys
m = bytes.fromhex(sys.argv[1].replace(":", ""))
iid = bytes([m[0] ^ 2]) + m[1:3] + b"\xff\xfe" + m[3:]
print(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid))' "$1"
}
workload_settings() {
    for w in node-1-web node-1-api node-2-queue; do
        ns=mlab-$LAB-$w
        v=$(sysctls "$ns" ipv4/ip_forward ipv4/conf/eth0/forwarding ipv6/conf/all/forwarding \
            ipv6/conf/eth0/forwarding ipv6/conf/eth0/accept_ra ipv6/conf/eth0/autoconf \
            ipv6/conf/eth0/addr_gen_mode ipv4/conf/all/rp_filter ipv4/conf/eth0/rp_filter \
            ipv6/conf/eth0/accept_dad)
        [ "$v" = "0 0 0 0 1 1 0 0 0 0 " ] || { echo "$w: $v"; return 1; }
        mac=$(ip -n "$ns" -o link show dev eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
        ll=$(ip -n "$ns" -6 -o addr show dev eth0 scope link | awk '{print $4}')
        [ "$ll" = "$(eui64 "$mac")/64" ] || { echo "$w: link-local $ll, MAC $mac"; return 1; }
    done
}
check workloads_forward_nothing_take_ra workload_settings

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
assert [(n["address6"], n["subnet6"]) for n in d["nodes"]] == [
    ("fd00:0:0:1::1", "fd00:0:0:1::/64"), ("fd00:7::1", "fd00:7::/64")], d["nodes"]
assert all(n["present"] and n["bridge"] == "mbr0" for n in d["nodes"])
assert d["underlay"] == {"netns": "mlab-%s-underlay" % lab, "bridge": "ubr0",
                         "subnet": "100.64.0.0/24", "subnet6": "fd00:ffff::/64",
                         "present": True}, d["underlay"]
assert [n["underlay"] for n in d["nodes"]] == [
    {"interface": "ul0", "address": "100.64.0.1", "address6": "fd00:ffff::1", "port": "node1"},
    {"interface": "ul0", "address": "100.64.0.2", "address6": "fd00:ffff::2", "port": "node2"}], d["nodes"]
w = {x["namespace"] + "/" + x["name"]: x for x in d["workloads"]}
assert len(w) == 5, w
assert w["shop/web"]["ips"] == ["10.244.1.10", "fd00:0:0:1::10"], w["shop/web"]
assert w["shop/web"]["interface"] == "lxc-web"
assert w["shop/api"]["interface"] == "veth-api"
assert w["data/queue"]["node"] == "node-2"
assert w["data/db"]["netns"] == "mlab-%s-node-2-db" % lab
assert all(x["present"] for x in d["workloads"])
EOF
}
check status_json status_json
status_table() {
    lab status >"$TMP/status.txt" || return 1
    grep -q "^mlab-$LAB-underlay  *ubr0  *100.64.0.0/24,fd00:ffff::/64  *yes$" "$TMP/status.txt" &&
        grep -q "^node-2  *prod  *10.244.7.1,fd00:7::1  *10.244.7.0/24,fd00:7::/64  *100.64.0.2,fd00:ffff::2 (node2) *mlab-$LAB-node-2 *yes$" "$TMP/status.txt" &&
        grep -q "^shop/web  *prod  *node-1  *10.244.1.10,fd00:0:0:1::10  *lxc-web " "$TMP/status.txt" ||
        { cat "$TMP/status.txt"; return 1; }
}
check status_table status_table
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
    "$M" lab up "$TMP/lab.yaml" --dual-stack --name "$LAB" >/dev/null
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
    PATH="$TMP/fakebin:$PATH" "$M" lab up "$TMP/lab.yaml" --dual-stack --name "$LAB2" >/dev/null 2>"$TMP/err2"
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
# Addresses in the underlay's /24 are planning errors: every one listed, exit 2.
underlay_clash() {
    cat >"$TMP/clash.yaml" <<'EOF'
kind: Node
name: n1
cluster: c
ips: [100.64.0.1]
---
kind: Workload
cluster: c
node: n2
name: w
namespace: x
ips: [100.64.0.9]
---
kind: Workload
cluster: c
node: n2
name: v
namespace: x
ips: ["fd00:ffff::9"]
---
kind: Workload
cluster: c
node: n1
name: u
namespace: x
ips: ["fe80::9"]
EOF
    "$M" lab up "$TMP/clash.yaml" --dual-stack --name "$LAB2" >"$TMP/clash.out" 2>"$TMP/clash.err"
    rc=$?
    [ $rc -eq 2 ] || { echo "rc=$rc"; return 1; }
    grep -q 'clash.yaml:1: nodes "n1": ips\[0\]: 100.64.0.1 is in 100.64.0.0/24' "$TMP/clash.err" &&
        grep -q 'clash.yaml:6: workloads "w": ips\[0\]: 100.64.0.9 is in 100.64.0.0/24' "$TMP/clash.err" &&
        grep -q 'clash.yaml:13: workloads "v": ips\[0\]: fd00:ffff::9 is in fd00:ffff::/64' "$TMP/clash.err" &&
        grep -q 'clash.yaml:20: workloads "u": ips\[0\]: fe80::9 is a link-local address' "$TMP/clash.err" ||
        { cat "$TMP/clash.err"; return 1; }
    [ ! -s "$TMP/clash.out" ] && [ ! -e "/run/moat/lab/$LAB2.state" ] &&
        [ -z "$(netns_of_lab "$LAB2")" ]
}
check underlay_and_ipv6_errors_exit_2 underlay_clash
# `up` killed outright half-way (SIGKILL: no cleanup) after the underlay and
# node-1 exist: `down` still removes them, from the state file.
killed_up() {
    mkdir -p "$TMP/killbin"
    real=$(command -v ip)
    cat >"$TMP/killbin/ip" <<EOF
#!/bin/sh
case " \$* " in *" route add "*" via 100.64."*) kill -KILL \$PPID; exit 1 ;; esac
exec "$real" "\$@"
EOF
    chmod +x "$TMP/killbin/ip"
    PATH="$TMP/killbin:$PATH" "$M" lab up "$TMP/lab.yaml" --dual-stack --name "$LAB3" >/dev/null 2>&1
    rc=$?
    [ $rc -eq 137 ] || { echo "up: rc=$rc"; return 1; }
    left=$(netns_of_lab "$LAB3" | tr '\n' ' ')
    [ "$left" = "mlab-$LAB3-node-1 mlab-$LAB3-underlay " ] || { echo "made: $left"; return 1; }
    "$M" lab status --name "$LAB3" -o json >"$TMP/killed.json" 2>&1 || {
        cat "$TMP/killed.json"
        return 1
    }
    grep -q '"underlay"' "$TMP/killed.json" || { cat "$TMP/killed.json"; return 1; }
    "$M" lab down --name "$LAB3" || { echo "down failed"; return 1; }
    [ -z "$(netns_of_lab "$LAB3")" ] || { echo "left: $(netns_of_lab "$LAB3")"; return 1; }
    [ ! -e "/run/moat/lab/$LAB3.state" ] || { echo "state file left"; return 1; }
}
check down_after_killed_up killed_up

# ---- down ----
for p in $PIDS; do
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
done
PIDS=""
check down lab down
down_removed() {
    [ ! -e "/run/netns/mlab-$LAB-underlay" ] || { echo "the underlay is left"; return 1; }
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
