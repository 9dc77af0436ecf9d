/*
 * parse: the packet fields the datapath judges by (addresses as 16 bytes,
 * protocol, ports), read with bpf_skb_load_bytes so paged (GRO) skbs work.
 * IPv4 and IPv6 (without extension headers: those packets count as portless).
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

/* From <linux/icmp.h>, which drags in libc headers a BPF build cannot use. */
#define MOAT_ICMP_ECHOREPLY     0
#define MOAT_ICMP_ECHO          8
#define MOAT_ICMP_DEST_UNREACH  3
#define MOAT_ICMP_TIME_EXCEEDED 11
#define MOAT_ICMP_PARAMETERPROB 12
struct moat_icmphdr {
    __u8 type;
    __u8 code;
    __u16 checksum;
    __u32 rest;
};

struct moat_pkt {
    __u8 saddr[16];
    __u8 daddr[16];
    __u16 sport;
    __u16 dport;
    __u8 proto;
    __u8 is_icmp_error; /* an ICMP error: the tuple is the quoted packet's */
    __u8 is_ndp;        /* IPv6 neighbour discovery / MLD: never judged */
    __u8 pad;
    __u32 len;
};

static __always_inline void v4_mapped(__u8 *dst, __u32 addr)
{
    __builtin_memset(dst, 0, 10);
    dst[10] = 0xff;
    dst[11] = 0xff;
    __builtin_memcpy(dst + 12, &addr, 4);
}

static __always_inline int load_ports(struct __sk_buff *skb, __u32 off, struct moat_pkt *p)
{
    __u16 ports[2];
    if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
        return 0;
    if (bpf_skb_load_bytes(skb, off, ports, sizeof(ports)) < 0)
        return -1;
    p->sport = bpf_ntohs(ports[0]);
    p->dport = bpf_ntohs(ports[1]);
    return 0;
}

/*
 * ICMP errors carry the offending packet: judge them as part of that flow.
 * Echo requests and replies use their identifier as both "ports", so each
 * ping is its own flow and its replies match it.
 */
static __always_inline int parse_icmp4_error(struct __sk_buff *skb, __u32 off, struct moat_pkt *p)
{
    struct moat_icmphdr icmp;
    if (bpf_skb_load_bytes(skb, off, &icmp, sizeof(icmp)) < 0)
        return 0;
    if (icmp.type == MOAT_ICMP_ECHO || icmp.type == MOAT_ICMP_ECHOREPLY) {
        p->sport = p->dport = bpf_ntohs((__u16)(icmp.rest & 0xffff));
        return 0;
    }
    if (icmp.type != MOAT_ICMP_DEST_UNREACH && icmp.type != MOAT_ICMP_TIME_EXCEEDED &&
        icmp.type != MOAT_ICMP_PARAMETERPROB)
        return 0;
    struct iphdr inner;
    __u32 ioff = off + sizeof(icmp);
    if (bpf_skb_load_bytes(skb, ioff, &inner, sizeof(inner)) < 0 || inner.ihl < 5)
        return 0;
    /* The quoted packet went the other way: its tuple reversed is this packet's. */
    v4_mapped(p->saddr, inner.daddr);
    v4_mapped(p->daddr, inner.saddr);
    p->proto = inner.protocol;
    p->sport = p->dport = 0;
    if (load_ports(skb, ioff + inner.ihl * 4, p) < 0)
        return -1;
    __u16 t = p->sport;
    p->sport = p->dport;
    p->dport = t;
    p->is_icmp_error = 1;
    return 0;
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, struct moat_pkt *p)
{
    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl < 5)
        return -1;
    v4_mapped(p->saddr, ip.saddr);
    v4_mapped(p->daddr, ip.daddr);
    p->proto = ip.protocol;
    __u32 off = ETH_HLEN + ip.ihl * 4;
    if (ip.frag_off & bpf_htons(0x1fff)) /* a later fragment has no ports */
        return 0;
    if (p->proto == IPPROTO_ICMP)
        return parse_icmp4_error(skb, off, p);
    return load_ports(skb, off, p);
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, struct moat_pkt *p)
{
    struct ipv6hdr ip6;
    if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
        return -1;
    __builtin_memcpy(p->saddr, &ip6.saddr, 16);
    __builtin_memcpy(p->daddr, &ip6.daddr, 16);
    p->proto = ip6.nexthdr;
    __u32 off = ETH_HLEN + sizeof(ip6);
    if (p->proto == 0) { /* hop-by-hop options (MLD reports carry one): skip it */
        __u8 hbh[2];
        if (bpf_skb_load_bytes(skb, off, hbh, 2) < 0)
            return -1;
        p->proto = hbh[0];
        off += (hbh[1] + 1) * 8;
    }
    if (p->proto == IPPROTO_ICMPV6) {
        __u8 type;
        /* Neighbour discovery (133-137) and multicast listener messages (130-132,
         * 143) are the link's own plumbing, sent from :: or link-local sources. */
        if (bpf_skb_load_bytes(skb, off, &type, 1) == 0 &&
            ((type >= 130 && type <= 137) || type == 143))
            p->is_ndp = 1;
        return 0;
    }
    return load_ports(skb, off, p);
}

/* Returns 0 for an IP packet (fields in *p), 1 for anything else, -1 if truncated. */
static __always_inline int parse_packet(struct __sk_buff *skb, struct moat_pkt *p)
{
    __builtin_memset(p, 0, sizeof(*p));
    p->len = skb->len;
    if (skb->protocol == bpf_htons(ETH_P_IP))
        return parse_ipv4(skb, p);
    if (skb->protocol == bpf_htons(ETH_P_IPV6))
        return parse_ipv6(skb, p);
    return 1;
}

#endif
