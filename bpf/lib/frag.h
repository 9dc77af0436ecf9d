/*
 * frag: fragments judged as their datagram's flow.
 *
 * A first fragment records its ports under (source, destination, protocol,
 * fragment id) in an LRU map (moat_frags); a later fragment, which has no
 * ports, takes them from there and is then judged (and passed or dropped)
 * as a packet of that flow, so a datagram is passed or dropped whole. A
 * later fragment whose first was never seen, or was seen more than
 * MOAT_FRAG_TIMEOUT_S ago, is dropped: nothing can say what it belongs to.
 * A new first fragment with the same key replaces the record (IDs wrap).
 */
#ifndef MOAT_BPF_FRAG_H
#define MOAT_BPF_FRAG_H

#include "maps.h"
#include "parse.h"

#define MOAT_FRAG_TIMEOUT_S 30 /* as the kernel's own reassembly (ipfrag_time) */

static __always_inline void frag_key_of(const struct moat_pkt *p, struct moat_frag_key *k)
{
    __builtin_memset(k, 0, sizeof(*k));
    __builtin_memcpy(k->saddr, p->saddr, 16);
    __builtin_memcpy(k->daddr, p->daddr, 16);
    k->id = p->frag_id;
    k->proto = p->proto;
    k->v6 = p->v6;
}

static __always_inline void frag_record(const struct moat_pkt *p, __u64 now)
{
    struct moat_frag_key k;
    frag_key_of(p, &k);
    struct moat_frag_val v = {.ts_ns = now, .sport = p->sport, .dport = p->dport};
    bpf_map_update_elem(&moat_frags, &k, &v, BPF_ANY);
}

/* Gives a later fragment its datagram's ports; 0, or -MOAT_DROP_FRAG_NO_FIRST. */
static __always_inline int frag_resolve(struct moat_pkt *p, __u64 now)
{
    struct moat_frag_key k;
    frag_key_of(p, &k);
    struct moat_frag_val *v = bpf_map_lookup_elem(&moat_frags, &k);
    if (!v || now - v->ts_ns > MOAT_FRAG_TIMEOUT_S * 1000000000ull)
        return -MOAT_DROP_FRAG_NO_FIRST;
    p->sport = v->sport;
    p->dport = v->dport;
    return 0;
}

#endif
