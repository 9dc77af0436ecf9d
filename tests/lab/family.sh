# Sourced (from the repository root) by the lab suites whose enforcement
# checks run over IPv4 and over IPv6: enforce.sh, cluster.sh, node_agent.sh;
# tests/lab/run.sh runs each with FAMILY 4 and 6. Their labs are dual-stack
# (`moat lab up --dual-stack`) and written with IPv4 addresses only, so a
# workload's IPv6 address is its node's /64 with the IPv4 host number as the
# last group (10.77.0.20 -> fd00:0:0:1::20; docs/lab.md). The checks name
# their targets by IPv4 address and send to `fa ADDR`, the address of the
# same workload in the run's family.
#
#   family_check FAMILY [DP]  exits 2 unless FAMILY is 4 or 6 and DP (the
#                             datapath backend, default ebpf) ebpf or iptables;
#                             sets FAM, DP and SFX (-v6, -ipt: check names)
#   dp_present NODE NETNS     the backend's kernel state of NODE exists (eBPF: its
#                             pinned folder; iptables: moat's chains in NETNS)
#   family_nets MOAT LAB      reads each node's /24 and /64 from `lab status`
#   fa ADDR                   ADDR in family FAM (IPv4: itself)
#   fa6 ADDR                  ADDR's IPv6 counterpart, whatever FAM is
#   family_inventory_ok INV   the lab gave every workload of INV the mapped
#                             IPv6 address (prints what differs)

family_check() {
    case "${1:-}" in
    4 | 6) FAM=$1 ;;
    *)
        echo "usage: $0 BUILD_DIR 4|6 [ebpf|iptables] (the address family of the traffic; got '${1:-}')"
        exit 2
        ;;
    esac
    case "${2:-ebpf}" in
    ebpf | iptables) DP=${2:-ebpf} ;;
    *)
        echo "usage: $0 BUILD_DIR 4|6 [ebpf|iptables] (the datapath backend; got '$2')"
        exit 2
        ;;
    esac
    SFX=$([ "$FAM" = 6 ] && echo -v6)$([ "$DP" = iptables ] && echo -ipt)
}

dp_present() {
    if [ "$DP" = ebpf ]; then
        [ -d "/sys/fs/bpf/moat/$1" ]
    else
        [ -e "/run/netns/$2" ] && ip netns exec "$2" sh -c 'iptables-legacy-save -t filter; iptables-save -t filter' 2>/dev/null |
            grep -q '^:MOAT-FWD '
    fi
}

family_nets() {
    FAM_NETS=$("$1" lab status --name "$2" -o json | python3 -c '
import json, sys
for n in json.load(sys.stdin)["nodes"]:
    if "subnet6" in n:  # "10.77.0.0/24" "fd00:0:0:1::/64" -> "10.77.0." "fd00:0:0:1::"
        print(n["subnet"].rsplit(".", 1)[0] + ".", n["subnet6"].split("/")[0])')
}

fa6() {
    for net in $(printf '%s\n' "$FAM_NETS" | tr ' ' '='); do
        case "$1" in "${net%%=*}"*)
            echo "${net#*=}${1##*.}"
            return 0
            ;;
        esac
    done
    echo "no-ipv6-for-$1"
    return 1
}

fa() {
    if [ "$FAM" = 4 ]; then echo "$1"; else fa6 "$1"; fi
}

family_inventory_ok() {
    for pair in $(python3 -c '
import re, sys
for doc in open(sys.argv[1]).read().split("---\n"):
    m = re.search(r"^ips: \[(.*)\]$", doc, re.M)
    if "kind: Workload" in doc and m:
        ips = [a.strip().strip("\"") for a in m.group(1).split(",")]
        v4 = [a for a in ips if "." in a and ":" not in a]
        v6 = [a for a in ips if ":" in a]
        print("%s=%s" % (v4[0] if v4 else "-", ",".join(v6) or "-"))' "$1"); do
        want=$(fa6 "${pair%%=*}")
        case ",${pair#*=}," in *",$want,"*) ;; *)
            echo "${pair%%=*}: the lab gave ${pair#*=}, the mapping says $want"
            return 1
            ;;
        esac
    done
}
