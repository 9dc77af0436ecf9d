/*
 * ct: connection tracking with TCP state, two tables and lazy timeouts.
 *
 * A flow has one entry under a canonical key (endpoints ordered), found with
 * one lookup from either direction. New flows go to moat_ct_new; a flow
 * moves to moat_ct_est when the other side answers (TCP: anything but a RST
 * back; UDP/ICMP/other: any packet back). An attacker's flood of SYNs or
 * datagrams — blocked or allowed — only competes with other unanswered
 * flows; to take room in moat_ct_est it has to get answers.
 *
 * Idle timeouts per state are checked at lookup: an entry idle for longer
 * counts as gone. Which side opened a flow: for a new entry, the sender of a
 * packet; for TCP without an entry, the flags tell: a SYN's sender opened it,
 * a SYN-ACK's receiver did; a packet met mid-stream (the entry was lost) is
 * placed by the hook (see moat_tc.bpf.c), never as a new reverse flow.
 */
#ifndef MOAT_BPF_CT_H
#define MOAT_BPF_CT_H

#include "maps.h"
#include "parse.h"

#define MOAT_CT_TCP_NEW_S   60    /* SYN sent, no answer */
#define MOAT_CT_TCP_EST_S   21600 /* established: 6 h idle */
#define MOAT_CT_CLOSING_S   10    /* FIN both ways, or RST */
#define MOAT_CT_UDP_NEW_S   60    /* one way only */
#define MOAT_CT_UDP_EST_S   180   /* answered */
#define MOAT_CT_OTHER_NEW_S 30
#define MOAT_CT_OTHER_EST_S 60

struct moat_ct {
    struct moat_ct_key key;
    bool pkt_from_a; /* the packet's source is the key's endpoint a */
};

/* Orders the packet's endpoints into the canonical key. */
static __always_inline void ct_key_make(struct moat_ct *c, const __u8 *saddr, const __u8 *daddr,
                                        __u16 sport, __u16 dport, __u8 proto)
{
    __u64 s0, s1, d0, d1;
    __builtin_memcpy(&s0, saddr, 8);
    __builtin_memcpy(&s1, saddr + 8, 8);
    __builtin_memcpy(&d0, daddr, 8);
    __builtin_memcpy(&d1, daddr + 8, 8);
    bool s_first = s0 != d0 ? s0 < d0 : s1 != d1 ? s1 < d1 : sport <= dport;
    __builtin_memset(&c->key, 0, sizeof(c->key));
    __builtin_memcpy(c->key.a_addr, s_first ? saddr : daddr, 16);
    __builtin_memcpy(c->key.b_addr, s_first ? daddr : saddr, 16);
    c->key.a_port = s_first ? sport : dport;
    c->key.b_port = s_first ? dport : sport;
    c->key.proto = proto;
    c->pkt_from_a = s_first;
}

static __always_inline __u64 ct_timeout_ns(const struct moat_ct_val *v, __u8 proto)
{
    __u64 s;
    if (v->state == MOAT_CTS_CLOSING)
        s = MOAT_CT_CLOSING_S;
    else if (proto == IPPROTO_TCP)
        s = v->state == MOAT_CTS_EST ? MOAT_CT_TCP_EST_S : MOAT_CT_TCP_NEW_S;
    else if (proto == IPPROTO_UDP)
        s = v->state == MOAT_CTS_EST ? MOAT_CT_UDP_EST_S : MOAT_CT_UDP_NEW_S;
    else
        s = v->state == MOAT_CTS_EST ? MOAT_CT_OTHER_EST_S : MOAT_CT_OTHER_NEW_S;
    return s * 1000000000ull;
}

/*
 * The live entry of the flow (established table first), or NULL; *in_est
 * says which table. An entry idle past its state's timeout counts as gone
 * (*stale_est when it is in the established table, for ct_insert).
 */
static __always_inline struct moat_ct_val *ct_lookup(const struct moat_ct *c, __u64 now,
                                                     bool *in_est, bool *stale_est)
{
    struct moat_ct_val *v = bpf_map_lookup_elem(&moat_ct_est, &c->key);
    *in_est = v != NULL;
    *stale_est = false;
    if (!v)
        v = bpf_map_lookup_elem(&moat_ct_new, &c->key);
    if (v && now > v->last_seen_ns && now - v->last_seen_ns > ct_timeout_ns(v, c->key.proto)) {
        *stale_est = *in_est;
        return NULL;
    }
    return v;
}

/* Whether the packet comes from the side that opened the flow. */
static __always_inline bool ct_from_orig(const struct moat_ct *c, const struct moat_ct_val *v)
{
    return c->pkt_from_a == (bool)v->orig_is_a;
}

/*
 * Advances the flow's state for a packet from the opening side
 * (`from_orig`) or the other. Returns true when the flow is established:
 * both sides have sent (a RST is no answer) and it is not closing.
 */
static __always_inline bool ct_update(struct moat_ct_val *v, bool tcp, bool from_orig,
                                      __u8 tcp_flags, __u64 now)
{
    bool rst = tcp && (tcp_flags & MOAT_TCP_RST);
    __u8 seen = v->seen | (from_orig ? MOAT_CT_SEEN_ORIG : rst ? 0 : MOAT_CT_SEEN_REPLY);
    if (tcp && (tcp_flags & MOAT_TCP_FIN))
        seen |= from_orig ? MOAT_CT_FIN_ORIG : MOAT_CT_FIN_REPLY;
    __u8 both = MOAT_CT_SEEN_ORIG | MOAT_CT_SEEN_REPLY, fins = MOAT_CT_FIN_ORIG | MOAT_CT_FIN_REPLY;
    __u8 state = v->state;
    if (rst || (seen & fins) == fins)
        state = MOAT_CTS_CLOSING;
    else if ((seen & both) == both && state != MOAT_CTS_CLOSING)
        state = MOAT_CTS_EST;
    /* Write only what changed, and the idle clock at most every 1/8 s: fewer
     * writes to a line other CPUs read. */
    if (seen != v->seen)
        v->seen = seen;
    if (state != v->state)
        v->state = state;
    if (now - v->last_seen_ns > (1000000000ull >> 3))
        v->last_seen_ns = now;
    return state == MOAT_CTS_EST;
}

/* Moves an entry of moat_ct_new that became established to moat_ct_est. */
static __always_inline void ct_promote(const struct moat_ct *c, const struct moat_ct_val *v)
{
    struct moat_ct_val est = *v;
    if (bpf_map_update_elem(&moat_ct_est, &c->key, &est, BPF_ANY) == 0)
        bpf_map_delete_elem(&moat_ct_new, &c->key);
}

/* A fresh entry for a flow opened by the packet's source (or, `reverse`, its destination). */
static __always_inline void ct_fresh(const struct moat_ct *c, bool reverse, __u64 now,
                                     struct moat_ct_val *v)
{
    __builtin_memset(v, 0, sizeof(*v));
    v->orig_is_a = c->pkt_from_a != reverse;
    v->state = MOAT_CTS_NEW;
    v->last_seen_ns = now;
}

/*
 * Stores a fresh entry in the table its state belongs to; one that timed out
 * in the established table is replaced or removed.
 */
static __always_inline void ct_insert(const struct moat_ct *c, const struct moat_ct_val *v,
                                      bool est, bool stale_est)
{
    if (est) {
        bpf_map_update_elem(&moat_ct_est, &c->key, v, BPF_ANY);
        return;
    }
    bpf_map_update_elem(&moat_ct_new, &c->key, v, BPF_ANY);
    if (stale_est)
        bpf_map_delete_elem(&moat_ct_est, &c->key);
}

#endif
