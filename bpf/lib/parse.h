/*
 * parse: what the datapath judges a frame by, into struct moat_pkt: read from
 * the frame's linear part directly, or with bpf_skb_load_bytes where it is
 * paged (hdr_load).
 *
 *  - Ethernet: source and destination MAC, the group bit; ARP (sender MAC and
 *    address, operation); any other ethertype is reported as such.
 *  - IPv4 (options skipped) and IPv6 with its extension headers walked to the
 *    transport header in a bounded loop (MOAT_EXTHDR_MAX headers; a longer
 *    chain is dropped). A routing header with segments left is dropped: the
 *    destination that would be judged is not the final one.
 *  - Fragments: the first one must hold the whole transport header (and,
 *    IPv6, the whole header chain: RFC 7112), else it is dropped; a later one
 *    carries no ports and is marked for frag.h to give it its flow's.
 *  - TCP and UDP ports, TCP flags; ICMP/ICMPv6 echo identifiers (as both
 *    ports, so each ping is its own flow); ICMP/ICMPv6 errors with the tuple
 *    of the packet they quote; neighbour discovery and MLD with the ND
 *    target and link-layer address option.
 *
 * parse_packet returns 0 or -MOAT_DROP_* (a frame to drop, for that reason).
 */
#ifndef MOAT_BPF_PARSE_H
#define MOAT_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "moat/abi.h"

#define MOAT_EXTHDR_MAX 8 /* IPv6 extension headers walked; more are dropped */
#define MOAT_ND_OPTS    4 /* ND options looked at for the link-layer address */

/* Frame classes (moat_pkt.kind). */
#define MOAT_PK_IP         0 /* IPv4/IPv6 with its transport header (or none: other protocols) */
#define MOAT_PK_FRAG_LATER 1 /* a non-first fragment: ports come from frag.h */
#define MOAT_PK_ICMP_ERROR 2 /* ICMP/ICMPv6 error: inner_* is the quoted packet */
#define MOAT_PK_ND         3 /* IPv6 neighbour discovery or MLD */
#define MOAT_PK_ARP        4
#define MOAT_PK_OTHER_L2   5 /* another ethertype */

/* From <linux/icmp.h> and <linux/icmpv6.h>, which drag in headers a BPF build cannot use. */
#define MOAT_ICMP_ECHOREPLY     0
#define MOAT_ICMP_DEST_UNREACH  3
#define MOAT_ICMP_REDIRECT      5
#define MOAT_ICMP_ECHO          8
#define MOAT_ICMP_TIME_EXCEEDED 11
#define MOAT_ICMP_PARAMETERPROB 12
#define MOAT_ICMP6_DEST_UNREACH 1
#define MOAT_ICMP6_PARAMPROB    4
#define MOAT_ICMP6_ECHO         128
#define MOAT_ICMP6_ECHOREPLY    129
#define MOAT_ND_RS              133
#define MOAT_ND_RA              134
#define MOAT_ND_NS              135
#define MOAT_ND_NA              136
#define MOAT_ND_REDIRECT        137
#define MOAT_ND_OPT_SLLA        1
#define MOAT_ND_OPT_TLLA        2

#define MOAT_TCP_FIN 0x01
#define MOAT_TCP_SYN 0x02
#define MOAT_TCP_RST 0x04
#define MOAT_TCP_ACK 0x10

#define MOAT_IPPROTO_HOPOPTS  0
#define MOAT_IPPROTO_ROUTING  43
#define MOAT_IPPROTO_FRAGMENT 44
#define MOAT_IPPROTO_AH       51
#define MOAT_IPPROTO_NONE     59
#define MOAT_IPPROTO_DSTOPTS  60
#define MOAT_IPPROTO_MH       135
#define MOAT_IPPROTO_HIP      139
#define MOAT_IPPROTO_SHIM6    140

struct moat_pkt {
    __u8 saddr[16]; /* the packet's own addresses (IPv4 mapped) */
    __u8 daddr[16];
    __u8 inner_saddr[16]; /* ICMP errors: the quoted packet's */
    __u8 inner_daddr[16];
    __u8 nd_target[16]; /* NS/NA target */
    __u16 sport, dport; /* TCP/UDP ports; ICMP echo: the identifier twice */
    __u16 inner_sport, inner_dport;
    __u32 frag_id;
    __u32 len;
    __u8 kind; /* MOAT_PK_* */
    __u8 proto;
    __u8 inner_proto;
    __u8 v6;
    __u8 tcp_flags;
    __u8 icmp_type;
    __u8 frag_first; /* the first fragment of a fragmented datagram */
    __u8 l2_group;   /* the destination MAC is a group (multicast/broadcast) address */
    __u8 smac[6];
    __u8 dmac[6];
    __u8 lla[6]; /* ND: the source/target link-layer address option; ARP: sender MAC */
    __u8 has_lla;
    __u8 arp_op;
    /* not cleared per packet: where Ethernet and IP headers are loaded to (the stack is small) */
    __u8 raw[ETH_HLEN + sizeof(struct ipv6hdr)];
};

/*
 * Copies `len` bytes (a constant) at `off` of the frame: straight from the
 * linear part when they are there (the common case: a few nanoseconds),
 * else with bpf_skb_load_bytes (paged data). 0, or <0 when the frame is
 * shorter than off + len.
 */
#define MOAT_DIRECT_MAX 4096 /* offsets the direct path takes (a bound for the verifier) */
static __always_inline int hdr_load(struct __sk_buff *skb, __u32 off, void *dst, __u32 len)
{
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    if (off < MOAT_DIRECT_MAX && data + off + len <= end) {
        __builtin_memcpy(dst, data + off, len);
        return 0;
    }
    return bpf_skb_load_bytes(skb, off, dst, len);
}

static __always_inline void v4_mapped(__u8 *dst, __u32 addr)
{
    __builtin_memset(dst, 0, 10);
    dst[10] = 0xff;
    dst[11] = 0xff;
    __builtin_memcpy(dst + 12, &addr, 4);
}

static __always_inline __u32 l4_min_len(__u8 proto)
{
    if (proto == IPPROTO_TCP)
        return 20;
    if (proto == IPPROTO_UDP || proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
        return 8;
    return 0;
}

/* TCP/UDP ports (and TCP flags) at `off`; 0, or -1 when cut short. */
static __always_inline int load_ports(struct __sk_buff *skb, __u32 off, __u8 proto, __u16 *sport,
                                      __u16 *dport, __u8 *flags)
{
    if (proto == IPPROTO_TCP) {
        __u8 h[14];
        if (hdr_load(skb, off, h, sizeof(h)) < 0)
            return -1;
        *sport = (__u16)h[0] << 8 | h[1];
        *dport = (__u16)h[2] << 8 | h[3];
        if (flags)
            *flags = h[13];
        return 0;
    }
    if (proto == IPPROTO_UDP) {
        __u8 h[4];
        if (hdr_load(skb, off, h, sizeof(h)) < 0)
            return -1;
        *sport = (__u16)h[0] << 8 | h[1];
        *dport = (__u16)h[2] << 8 | h[3];
    }
    return 0;
}

/* The state of a walk over IPv6 extension headers. */
struct moat_ext6 {
    __u32 off;  /* in: the first header after the IPv6 header; out: the transport header */
    __u32 id;   /* fragment id, when there is a fragment header */
    __u8 next;  /* in: the IPv6 header's next header; out: the transport protocol */
    __u8 later; /* a non-first fragment (the walk stops at its fragment header) */
    __u8 first; /* the first fragment of several */
    __u8 pad;
};

/*
 * Walks IPv6 extension headers to the transport header, at most
 * MOAT_EXTHDR_MAX of them. Returns 0, or -MOAT_DROP_*.
 */
static __noinline int walk_ext6(struct __sk_buff *skb, struct moat_ext6 *x)
{
#pragma clang loop unroll(disable)
    for (int i = 0; i < MOAT_EXTHDR_MAX + 1; i++) {
        __u8 h[8];
        __u8 nh = x->next;
        if (nh != MOAT_IPPROTO_HOPOPTS && nh != MOAT_IPPROTO_ROUTING &&
            nh != MOAT_IPPROTO_FRAGMENT && nh != MOAT_IPPROTO_AH && nh != MOAT_IPPROTO_DSTOPTS &&
            nh != MOAT_IPPROTO_MH && nh != MOAT_IPPROTO_HIP && nh != MOAT_IPPROTO_SHIM6)
            return 0; /* the transport header (or one without a next-header field) */
        if (i == MOAT_EXTHDR_MAX)
            return -MOAT_DROP_EXTHDR_CHAIN;
        if (nh == MOAT_IPPROTO_HOPOPTS && i != 0)
            return -MOAT_DROP_TRUNCATED; /* only right after the IPv6 header (RFC 8200) */
        if (hdr_load(skb, x->off, h, sizeof(h)) < 0)
            return -MOAT_DROP_TRUNCATED;
        x->next = h[0];
        if (nh == MOAT_IPPROTO_FRAGMENT) {
            __u16 fo = (__u16)h[2] << 8 | h[3];
            __builtin_memcpy(&x->id, h + 4, 4);
            x->off += 8;
            if (fo & 0xfff8) {
                x->later = 1;
                return 0;
            }
            if (fo & 1)
                x->first = 1; /* offset 0 without "more": an atomic fragment, a whole packet */
            continue;
        }
        if (nh == MOAT_IPPROTO_ROUTING && h[3] != 0)
            return -MOAT_DROP_ROUTING_HDR;
        x->off += nh == MOAT_IPPROTO_AH ? ((__u32)h[1] + 2) * 4 : ((__u32)h[1] + 1) * 8;
    }
    return -MOAT_DROP_EXTHDR_CHAIN;
}

/* The packet an ICMP error quotes, at `off`: its addresses, protocol and ports. */
static __always_inline void parse_quoted4(struct __sk_buff *skb, __u32 off, struct moat_pkt *p)
{
    struct iphdr in;
    if (hdr_load(skb, off, &in, sizeof(in)) < 0 || in.ihl < 5)
        return;
    v4_mapped(p->inner_saddr, in.saddr);
    v4_mapped(p->inner_daddr, in.daddr);
    p->inner_proto = in.protocol;
    if (in.frag_off & bpf_htons(0x1fff))
        return; /* a later fragment quoted: no ports */
    load_ports(skb, off + in.ihl * 4, in.protocol, &p->inner_sport, &p->inner_dport, NULL);
}

static __always_inline void parse_quoted6(struct __sk_buff *skb, __u32 off, struct moat_pkt *p)
{
    struct ipv6hdr in;
    if (hdr_load(skb, off, &in, sizeof(in)) < 0)
        return;
    __builtin_memcpy(p->inner_saddr, &in.saddr, 16);
    __builtin_memcpy(p->inner_daddr, &in.daddr, 16);
    struct moat_ext6 x = {.off = off + sizeof(in), .next = in.nexthdr};
    if (walk_ext6(skb, &x) < 0)
        return;
    p->inner_proto = x.next;
    if (!x.later)
        load_ports(skb, x.off, x.next, &p->inner_sport, &p->inner_dport, NULL);
}

static __always_inline bool icmp4_is_error(__u8 type)
{
    return type == MOAT_ICMP_DEST_UNREACH || type == MOAT_ICMP_TIME_EXCEEDED ||
           type == MOAT_ICMP_PARAMETERPROB || type == MOAT_ICMP_REDIRECT;
}

static __always_inline int parse_icmp4(struct __sk_buff *skb, __u32 off, struct moat_pkt *p)
{
    __u8 h[8];
    if (hdr_load(skb, off, h, sizeof(h)) < 0)
        return -MOAT_DROP_TRUNCATED;
    p->icmp_type = h[0];
    if (h[0] == MOAT_ICMP_ECHO || h[0] == MOAT_ICMP_ECHOREPLY) {
        p->sport = p->dport = (__u16)h[4] << 8 | h[5];
    } else if (icmp4_is_error(h[0])) {
        p->kind = MOAT_PK_ICMP_ERROR;
        parse_quoted4(skb, off + 8, p);
    }
    return 0;
}

/* ND options: the first source/target link-layer address option. */
static __always_inline void parse_nd_opts(struct __sk_buff *skb, __u32 off, struct moat_pkt *p)
{
    for (int i = 0; i < MOAT_ND_OPTS; i++) {
        __u8 o[8];
        if (hdr_load(skb, off, o, sizeof(o)) < 0 || o[1] == 0)
            return;
        if ((o[0] == MOAT_ND_OPT_SLLA || o[0] == MOAT_ND_OPT_TLLA) && o[1] == 1) {
            __builtin_memcpy(p->lla, o + 2, 6);
            p->has_lla = 1;
            return;
        }
        off += (__u32)o[1] * 8;
    }
}

static __always_inline int parse_icmp6(struct __sk_buff *skb, __u32 off, struct moat_pkt *p)
{
    __u8 h[8];
    if (hdr_load(skb, off, h, sizeof(h)) < 0)
        return -MOAT_DROP_TRUNCATED;
    __u8 t = h[0];
    p->icmp_type = t;
    if (t == MOAT_ICMP6_ECHO || t == MOAT_ICMP6_ECHOREPLY) {
        p->sport = p->dport = (__u16)h[4] << 8 | h[5];
    } else if (t >= MOAT_ICMP6_DEST_UNREACH && t <= MOAT_ICMP6_PARAMPROB) {
        p->kind = MOAT_PK_ICMP_ERROR;
        parse_quoted6(skb, off + 8, p);
    } else if ((t >= 130 && t <= MOAT_ND_REDIRECT) || t == 143) {
        p->kind = MOAT_PK_ND;
        if (t == MOAT_ND_NS || t == MOAT_ND_NA) {
            if (hdr_load(skb, off + 8, p->nd_target, 16) < 0)
                return -MOAT_DROP_TRUNCATED;
            parse_nd_opts(skb, off + 24, p);
        }
    }
    return 0;
}

static __always_inline int parse_l4(struct __sk_buff *skb, __u32 off, __u32 room,
                                    struct moat_pkt *p)
{
    /* A first fragment must carry the whole transport header (RFC 1858: no
     * tiny fragments that push the TCP flags into the second one). */
    if (p->frag_first && room < l4_min_len(p->proto))
        return -MOAT_DROP_FRAG_SHORT;
    if (p->proto == IPPROTO_ICMP && !p->v6)
        return parse_icmp4(skb, off, p);
    if (p->proto == IPPROTO_ICMPV6 && p->v6)
        return parse_icmp6(skb, off, p);
    if (load_ports(skb, off, p->proto, &p->sport, &p->dport, &p->tcp_flags) < 0)
        return -MOAT_DROP_TRUNCATED;
    return 0;
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, const struct iphdr *ipp,
                                      struct moat_pkt *p)
{
    const struct iphdr ip = *ipp;
    if (ip.ihl < 5 || ip.version != 4)
        return -MOAT_DROP_TRUNCATED;
    v4_mapped(p->saddr, ip.saddr);
    v4_mapped(p->daddr, ip.daddr);
    p->proto = ip.protocol;
    __u16 fo = bpf_ntohs(ip.frag_off);
    __u32 hlen = ip.ihl * 4;
    if (fo & 0x1fff) {
        p->kind = MOAT_PK_FRAG_LATER;
        p->frag_id = bpf_ntohs(ip.id);
        return 0;
    }
    if (fo & 0x2000) {
        p->frag_first = 1;
        p->frag_id = bpf_ntohs(ip.id);
    }
    __u32 tot = bpf_ntohs(ip.tot_len);
    return parse_l4(skb, ETH_HLEN + hlen, tot > hlen ? tot - hlen : 0, p);
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, const struct ipv6hdr *ip6,
                                      struct moat_pkt *p)
{
    if (ip6->version != 6)
        return -MOAT_DROP_TRUNCATED;
    p->v6 = 1;
    __builtin_memcpy(p->saddr, &ip6->saddr, 16);
    __builtin_memcpy(p->daddr, &ip6->daddr, 16);
    __u16 payload_len = bpf_ntohs(ip6->payload_len);
    struct moat_ext6 x = {.off = ETH_HLEN + sizeof(*ip6), .next = ip6->nexthdr};
    int err = walk_ext6(skb, &x);
    if (err < 0)
        return err;
    p->proto = x.next;
    p->frag_first = x.first;
    p->frag_id = x.id;
    if (x.later) {
        p->kind = MOAT_PK_FRAG_LATER;
        return 0;
    }
    __u32 end = ETH_HLEN + sizeof(*ip6) + payload_len;
    return parse_l4(skb, x.off, end > x.off ? end - x.off : 0, p);
}

static __always_inline int parse_arp(struct __sk_buff *skb, struct moat_pkt *p)
{
    __u8 a[28]; /* htype, ptype, hlen, plen, op, sha, spa, tha, tpa */
    p->kind = MOAT_PK_ARP;
    if (hdr_load(skb, ETH_HLEN, a, sizeof(a)) < 0)
        return -MOAT_DROP_TRUNCATED;
    if (a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != 6 || a[5] != 4)
        return -MOAT_DROP_ETHERTYPE; /* ARP for something other than IPv4 over Ethernet */
    p->arp_op = a[7];
    __builtin_memcpy(p->lla, a + 8, 6);
    p->has_lla = 1;
    __u32 spa, tpa;
    __builtin_memcpy(&spa, a + 14, 4);
    __builtin_memcpy(&tpa, a + 24, 4);
    v4_mapped(p->saddr, spa);
    v4_mapped(p->daddr, tpa);
    return 0;
}

static __always_inline void set_macs(struct moat_pkt *p, const struct ethhdr *eth)
{
    __builtin_memcpy(p->smac, eth->h_source, 6);
    __builtin_memcpy(p->dmac, eth->h_dest, 6);
    p->l2_group = eth->h_dest[0] & 1;
}

/*
 * Parses the frame; 0 (fields in *p) or -MOAT_DROP_* to drop it. IPv4 and
 * IPv6 frames load their Ethernet and IP headers in one call (the kernel's
 * skb->protocol says which to try; the frame's own ethertype decides).
 */
static __always_inline int parse_packet(struct __sk_buff *skb, struct moat_pkt *p)
{
    __builtin_memset(p, 0, __builtin_offsetof(struct moat_pkt, raw));
    p->len = skb->len;
    if (skb->vlan_present)
        return -MOAT_DROP_ETHERTYPE; /* a VLAN tag the device took off: not ours to pass */
    const struct ethhdr *eth = (const void *)p->raw;
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        if (hdr_load(skb, 0, p->raw, ETH_HLEN + sizeof(struct iphdr)) == 0 &&
            eth->h_proto == bpf_htons(ETH_P_IP)) {
            set_macs(p, eth);
            return parse_ipv4(skb, (const void *)(p->raw + ETH_HLEN), p);
        }
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        if (hdr_load(skb, 0, p->raw, ETH_HLEN + sizeof(struct ipv6hdr)) == 0 &&
            eth->h_proto == bpf_htons(ETH_P_IPV6)) {
            set_macs(p, eth);
            return parse_ipv6(skb, (const void *)(p->raw + ETH_HLEN), p);
        }
    }
    if (hdr_load(skb, 0, p->raw, ETH_HLEN) < 0)
        return -MOAT_DROP_TRUNCATED;
    set_macs(p, eth);
    if (eth->h_proto == bpf_htons(ETH_P_IP) || eth->h_proto == bpf_htons(ETH_P_IPV6))
        return -MOAT_DROP_TRUNCATED; /* too short for its IP header */
    if (eth->h_proto == bpf_htons(ETH_P_ARP))
        return parse_arp(skb, p);
    p->kind = MOAT_PK_OTHER_L2;
    return 0;
}

#endif
