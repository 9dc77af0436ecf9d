/*
 * guard: what a workload may send and what may be delivered to it, before
 * any policy (SPEC §3 "where verdicts are made"; docs/datapath.md lists it).
 *
 * From a workload (ingress of its host-side interface):
 *  - frames carry the workload's own MAC, learned from its first frame and
 *    owned by one interface only; group source MACs are dropped;
 *  - only IPv4, IPv6 and ARP (no VLAN tags, no LLDP, nothing else);
 *  - ARP: sender MAC is the frame's, sender address one of the workload's
 *    IPv4 addresses (or 0.0.0.0, an RFC 5227 probe);
 *  - neighbour discovery: router advertisements and redirects are dropped (a
 *    workload is never a router); NS/NA/RS come from the workload's own
 *    addresses, its link-local one (the EUI-64 of its MAC) or, for DAD,
 *    from ::; an NA (or a DAD NS) names only the workload's own addresses;
 *    link-layer options carry the frame's MAC; MLD passes;
 *  - IP sources: the workload's own addresses. Its link-local one and
 *    0.0.0.0 only for DHCPv6/DHCP client messages; any other link-local or
 *    unspecified source is dropped; any other address is spoofing (the
 *    cluster's spoofing detection says alert or block);
 *  - DHCP/DHCPv6 server messages and ICMP redirects are dropped.
 * Every drop of this list is counted and sends a spoofing event.
 *
 * Toward a workload (egress of its host-side interface):
 *  - IPv4/IPv6 to one of its addresses or its link-local one: judged, with
 *    connection tracking; to a group address (IP multicast or broadcast, or
 *    a group MAC: subnet broadcasts): judged as traffic to the workload,
 *    packet by packet (one flow key is shared by every receiver); any other
 *    unicast (a flooded frame, traffic meant for another workload) is dropped;
 *  - ARP and neighbour discovery pass unjudged: every workload's own are
 *    guarded on the way out, as above; other ethertypes are dropped.
 */
#ifndef MOAT_BPF_GUARD_H
#define MOAT_BPF_GUARD_H

#include "events.h"
#include "maps.h"
#include "parse.h"

/* What the guard decided; a negative value is -MOAT_DROP_*. */
#define MOAT_G_PASS  1 /* pass unjudged (ARP, ND) */
#define MOAT_G_JUDGE 2 /* judge, with connection tracking */
#define MOAT_G_GROUP 3 /* judge packet by packet (group destination) */

static __always_inline bool addr_eq(const __u8 *a, const __u8 *b)
{
    __u64 a0, a1, b0, b1;
    __builtin_memcpy(&a0, a, 8);
    __builtin_memcpy(&a1, a + 8, 8);
    __builtin_memcpy(&b0, b, 8);
    __builtin_memcpy(&b1, b + 8, 8);
    return a0 == b0 && a1 == b1;
}

static __always_inline bool addr_is_v4(const __u8 *a)
{
    __u64 a0;
    __u32 a1;
    __builtin_memcpy(&a0, a, 8);
    __builtin_memcpy(&a1, a + 8, 4);
    return a0 == 0 && a1 == bpf_htonl(0x0000ffff);
}

static __always_inline bool addr_is_zero(const __u8 *a)
{
    __u64 a0, a1;
    __builtin_memcpy(&a0, a, 8);
    __builtin_memcpy(&a1, a + 8, 8);
    return a0 == 0 && a1 == 0;
}

static __always_inline bool addr_is_link_local(const __u8 *a)
{
    return a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
}

/* IPv4 multicast, reserved and broadcast (224.0.0.0 and up); IPv6 multicast. */
static __always_inline bool addr_is_group(const __u8 *a)
{
    return a[0] == 0xff || (addr_is_v4(a) && a[12] >= 224);
}

static __always_inline bool mac_eq(const __u8 *a, const __u8 *b)
{
    __u32 a0, b0;
    __u16 a1, b1;
    __builtin_memcpy(&a0, a, 4);
    __builtin_memcpy(&b0, b, 4);
    __builtin_memcpy(&a1, a + 4, 2);
    __builtin_memcpy(&b1, b + 4, 2);
    return a0 == b0 && a1 == b1;
}

/* fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4291 App. A). */
static __always_inline bool is_eui64_link_local(const __u8 *a, const __u8 *mac)
{
    __u64 hi;
    __builtin_memcpy(&hi, a, 8);
    return hi == bpf_cpu_to_be64(0xfe80000000000000ull) && a[8] == (mac[0] ^ 0x02) &&
           a[9] == mac[1] && a[10] == mac[2] && a[11] == 0xff && a[12] == 0xfe && a[13] == mac[3] &&
           a[14] == mac[4] && a[15] == mac[5];
}

/* One of the workload's own addresses (inline ones, then moat_ifaddrs). */
static __always_inline bool is_own(__u32 ifindex, const struct moat_iface *ifc, const __u8 *a)
{
#pragma unroll
    for (int i = 0; i < MOAT_IFACE_ADDRS; i++)
        if (i < ifc->naddrs && addr_eq(ifc->addrs[i], a))
            return true;
    if (!(ifc->flags & MOAT_IFF_MORE_ADDRS))
        return false;
    struct moat_ifaddr_key k = {.ifindex = ifindex};
    __builtin_memcpy(k.addr, a, 16);
    return bpf_map_lookup_elem(&moat_ifaddrs, &k) != NULL;
}

/* The workload's own, or its link-local address (the EUI-64 of its learned MAC). */
static __always_inline bool is_own_or_ll(__u32 ifindex, const struct moat_iface *ifc, const __u8 *a)
{
    if (addr_is_link_local(a))
        return ifc->mac_learned && is_eui64_link_local(a, ifc->mac);
    return is_own(ifindex, ifc, a);
}

/* The frame's source MAC is the workload's: learned once, one interface per MAC. */
static __always_inline int mac_check(__u32 ifindex, struct moat_iface *ifc, const __u8 *smac)
{
    if (smac[0] & 1)
        return -MOAT_DROP_MAC_SPOOF;
    if (ifc->mac_learned)
        return mac_eq(ifc->mac, smac) ? 0 : -MOAT_DROP_MAC_SPOOF;
    struct moat_mac_key mk = {0};
    __builtin_memcpy(mk.mac, smac, 6);
    if (bpf_map_update_elem(&moat_mac_owner, &mk, &ifindex, BPF_NOEXIST) != 0) {
        __u32 *owner = bpf_map_lookup_elem(&moat_mac_owner, &mk);
        if (!owner || *owner != ifindex)
            return -MOAT_DROP_MAC_SPOOF; /* another workload's MAC */
    }
    __builtin_memcpy(ifc->mac, smac, 6);
    ifc->mac_learned = 1;
    return 0;
}

static __always_inline int guard_arp(__u32 ifindex, const struct moat_iface *ifc,
                                     const struct moat_pkt *p)
{
    if (!mac_eq(p->lla, p->smac))
        return -MOAT_DROP_ARP_SPOOF;
    if (!addr_is_v4(p->saddr))
        return -MOAT_DROP_ARP_SPOOF;
    __u32 spa;
    __builtin_memcpy(&spa, p->saddr + 12, 4);
    if (spa != 0 && !is_own(ifindex, ifc, p->saddr))
        return -MOAT_DROP_ARP_SPOOF;
    return MOAT_G_PASS;
}

static __always_inline int guard_nd(__u32 ifindex, const struct moat_iface *ifc,
                                    const struct moat_pkt *p)
{
    __u8 t = p->icmp_type;
    if (t == MOAT_ND_RA || t == MOAT_ND_REDIRECT)
        return -MOAT_DROP_ROUTER;
    bool unspec = addr_is_zero(p->saddr);
    if (!unspec && !is_own_or_ll(ifindex, ifc, p->saddr))
        return -MOAT_DROP_ND_SPOOF;
    if (p->has_lla && !mac_eq(p->lla, p->smac))
        return -MOAT_DROP_ND_SPOOF;
    if (t == MOAT_ND_NA || (t == MOAT_ND_NS && unspec)) {
        /* An NA claims its target; a DAD NS announces it. */
        if (!is_own_or_ll(ifindex, ifc, p->nd_target))
            return -MOAT_DROP_ND_SPOOF;
        if (unspec && p->has_lla)
            return -MOAT_DROP_ND_SPOOF; /* RFC 4861 7.1.1 */
    }
    return MOAT_G_PASS;
}

static __always_inline bool is_dhcp_client(const struct moat_pkt *p)
{
    if (p->proto != IPPROTO_UDP)
        return false;
    return p->v6 ? p->sport == 546 && p->dport == 547 : p->sport == 68 && p->dport == 67;
}

static __always_inline bool is_dhcp_server(const struct moat_pkt *p)
{
    if (p->proto != IPPROTO_UDP)
        return false;
    return p->v6 ? p->sport == 547 && p->dport == 546 : p->sport == 67 && p->dport == 68;
}

/*
 * From-workload checks of an IP packet's source. MOAT_G_JUDGE when it is the
 * workload's own; 0 when it is another address (spoofing: the caller asks
 * the cluster's setting); -MOAT_DROP_* to drop.
 */
static __always_inline int guard_source(__u32 ifindex, const struct moat_iface *ifc,
                                        const struct moat_pkt *p)
{
    if (is_dhcp_server(p))
        return -MOAT_DROP_DHCP_SERVER;
    if (!p->v6 && p->proto == IPPROTO_ICMP && p->icmp_type == MOAT_ICMP_REDIRECT)
        return -MOAT_DROP_ROUTER;
    if (is_own(ifindex, ifc, p->saddr))
        return MOAT_G_JUDGE;
    if (addr_is_link_local(p->saddr)) {
        if (is_own_or_ll(ifindex, ifc, p->saddr) && is_dhcp_client(p))
            return MOAT_G_JUDGE;
        return -MOAT_DROP_LINK_LOCAL;
    }
    if (addr_is_zero(p->saddr))
        return -MOAT_DROP_LINK_LOCAL;
    if (addr_is_v4(p->saddr)) {
        __u32 a;
        __builtin_memcpy(&a, p->saddr + 12, 4);
        if (a == 0)
            return is_dhcp_client(p) ? MOAT_G_JUDGE : -MOAT_DROP_LINK_LOCAL;
    }
    return 0;
}

/* From a workload: MOAT_G_* or -MOAT_DROP_*; 0 for a spoofed IP source. */
static __always_inline int guard_from(__u32 ifindex, struct moat_iface *ifc,
                                      const struct moat_pkt *p)
{
    int rc = mac_check(ifindex, ifc, p->smac);
    if (rc < 0)
        return rc;
    if (p->kind == MOAT_PK_OTHER_L2)
        return -MOAT_DROP_ETHERTYPE;
    if (p->kind == MOAT_PK_ARP)
        return guard_arp(ifindex, ifc, p);
    if (p->kind == MOAT_PK_ND)
        return guard_nd(ifindex, ifc, p);
    rc = guard_source(ifindex, ifc, p);
    if (rc <= 0)
        return rc;
    return p->l2_group || addr_is_group(p->daddr) ? MOAT_G_GROUP : MOAT_G_JUDGE;
}

/* Toward a workload: MOAT_G_* or -MOAT_DROP_*. */
static __always_inline int guard_to(__u32 ifindex, const struct moat_iface *ifc,
                                    const struct moat_pkt *p)
{
    if (p->kind == MOAT_PK_OTHER_L2)
        return -MOAT_DROP_ETHERTYPE;
    if (p->kind == MOAT_PK_ARP || p->kind == MOAT_PK_ND)
        return MOAT_G_PASS;
    if (p->l2_group || addr_is_group(p->daddr))
        return MOAT_G_GROUP;
    if (ifc->mac_learned && !mac_eq(p->dmac, ifc->mac))
        return -MOAT_DROP_NOT_ADDRESSED;
    if (addr_is_link_local(p->daddr) || is_own(ifindex, ifc, p->daddr))
        return MOAT_G_JUDGE;
    return -MOAT_DROP_NOT_ADDRESSED;
}

/* Drops that tell of a workload misbehaving: worth a spoofing event. */
static __always_inline bool drop_is_spoofing(__u32 reason)
{
    return reason == MOAT_DROP_SPOOFED || reason == MOAT_DROP_ARP_SPOOF ||
           reason == MOAT_DROP_ND_SPOOF || reason == MOAT_DROP_ROUTER ||
           reason == MOAT_DROP_DHCP_SERVER || reason == MOAT_DROP_LINK_LOCAL ||
           reason == MOAT_DROP_MAC_SPOOF;
}

#endif
