/*
 * policy: judging one direction of a flow against a snapshot.
 *
 * The subject is the workload of the interface the packet crosses, whatever
 * the packet's addresses claim (SPEC §3 "where verdicts are made").
 *
 * Precedence (SPEC §3), resolved by the compiler except for one comparison:
 *   1. subject not a workload of a cluster           -> not judged here
 *   2. the cluster's defense is off                  -> allow, record nothing
 *   3. row (dir, class, subject, peer) and, for ingress, row (dir, class,
 *      subject, ANY): each holds per port interval the winner among its rules;
 *      the two winners compare by (priority, rule id), smaller wins
 *   4. no winner                                     -> ingress: cluster default;
 *                                                       egress: allow
 *   5. monitor mode: an applied block becomes alert (would block)
 * Cost: 2 address lookups, 2 row lookups, 2 bounded binary searches —
 * independent of the number of rules and workloads.
 */
#ifndef MOAT_BPF_POLICY_H
#define MOAT_BPF_POLICY_H

#include "maps.h"

struct moat_snapshot {
    void *addrs;
    void *rows;
    void *ivals;
    void *clusters;
    __u32 generation;
};

/* A judgment: what is asked (in), and the answer (out). Kept in the per-CPU work area. */
struct moat_judgment {
    /* in */
    __u8 subj_addr[16]; /* the interface's workload's (first) address */
    __u8 peer_addr[16]; /* the other end of the flow */
    __u16 dport;        /* the flow's destination port */
    __u8 dir;           /* MOAT_ABI_DIR_* */
    __u8 proto;
    /* out */
    __u8 judged;          /* 0: not judged in this direction */
    __u8 record;          /* worth an event (block/alert, defense on) */
    __u8 action;          /* configured */
    __u8 applied;         /* done */
    __u8 unknown_subject; /* the interface's workload is not in the snapshot */
    __u8 pad[3];
    __u32 rule_id; /* 0: the default */
    __u32 cluster;
    __u32 subject;
    __u32 peer;
};

/* The maps of snapshot `gen` (its low bit names the slot). */
static __always_inline int snapshot_of(__u32 gen, struct moat_snapshot *s)
{
    if (!gen)
        return -1; /* no policy yet: the agent attaches only after the first one */
    __u32 slot = gen & 1;
    s->generation = gen;
    s->addrs = bpf_map_lookup_elem(&moat_addr_slots, &slot);
    s->rows = bpf_map_lookup_elem(&moat_rows_slots, &slot);
    s->ivals = bpf_map_lookup_elem(&moat_ivals_slots, &slot);
    s->clusters = bpf_map_lookup_elem(&moat_cluster_slots, &slot);
    if (!s->addrs || !s->rows || !s->ivals || !s->clusters)
        return -1;
    return 0;
}

/*
 * The generation in force (0: none). Read once per packet, and the maps of
 * that generation's slot taken only when needed, so one packet is judged by
 * one whole snapshot.
 */
static __always_inline __u32 generation_now(void)
{
    __u32 zero = 0;
    struct moat_cfg *cfg = bpf_map_lookup_elem(&moat_cfg, &zero);
    return cfg ? *(volatile __u32 *)&cfg->generation : 0;
}

static __always_inline struct moat_addr_val *identify(struct moat_snapshot *s, const __u8 *addr)
{
    struct moat_addr_key key = {.prefixlen = 128};
    __builtin_memcpy(key.addr, addr, 16);
    return bpf_map_lookup_elem(s->addrs, &key);
}

static __always_inline struct moat_interval *
row_search(struct moat_snapshot *s, __u8 dir, __u8 pclass, __u32 subject, __u32 peer, __u16 port)
{
    struct moat_row_key key = {.dir = dir, .pclass = pclass, .subject = subject, .peer = peer};
    struct moat_row_val *row = bpf_map_lookup_elem(s->rows, &key);
    if (!row)
        return NULL;
    __u32 lo = 0, hi = row->n, off = row->off;
#pragma clang loop unroll(disable)
    for (int i = 0; i < MOAT_ABI_SEARCH_STEPS; i++) {
        if (lo >= hi)
            break;
        __u32 mid = (lo + hi) >> 1;
        __u32 idx = off + mid;
        struct moat_interval *iv = bpf_map_lookup_elem(s->ivals, &idx);
        if (!iv)
            return NULL;
        if (port < iv->lo)
            hi = mid;
        else if (port > iv->hi)
            lo = mid + 1;
        else
            return iv;
    }
    return NULL;
}

static __always_inline __u8 pclass_of(__u8 proto)
{
    return proto == IPPROTO_TCP   ? MOAT_ABI_PCLASS_TCP
           : proto == IPPROTO_UDP ? MOAT_ABI_PCLASS_UDP
                                  : MOAT_ABI_PCLASS_OTHER;
}

/*
 * Judges one direction of a flow (j's in-fields) for the workload whose
 * address is j->subj_addr: ingress when it is the flow's destination, egress
 * when it is the source. Fills j's out-fields.
 */
static __always_inline void judge(struct moat_snapshot *s, struct moat_judgment *j)
{
    j->judged = j->record = j->unknown_subject = 0;
    j->rule_id = j->cluster = j->subject = j->peer = 0;
    j->action = j->applied = MOAT_ABI_ALLOW;
    __u8 dir = j->dir;
    struct moat_addr_val *sv = identify(s, j->subj_addr);
    struct moat_addr_val *peer = identify(s, j->peer_addr);
    if (!sv || sv->kind != MOAT_ABI_IDENT_WORKLOAD) {
        j->unknown_subject = 1;
        return;
    }
    if (!peer)
        return; /* no address map entry at all (the compiler always adds ::/0) */
    if (dir == MOAT_ABI_DIR_EGRESS && peer->kind == MOAT_ABI_IDENT_WORKLOAD &&
        peer->cluster == sv->cluster)
        return; /* inside the cluster: judged on ingress */
    j->judged = 1;
    j->cluster = sv->cluster;
    j->subject = sv->identity;
    j->peer = peer->identity;
    __u32 c = sv->cluster;
    struct moat_cluster_cfg *cfg = bpf_map_lookup_elem(s->clusters, &c);
    if (!cfg || !(cfg->flags & MOAT_ABI_CF_DEFENSE))
        return;
    __u8 pc = pclass_of(j->proto);
    __u16 port = pc == MOAT_ABI_PCLASS_OTHER ? 0 : j->dport;
    struct moat_interval *a = row_search(s, dir, pc, sv->identity, peer->identity, port);
    struct moat_interval *b = NULL;
    if (dir == MOAT_ABI_DIR_INGRESS)
        b = row_search(s, dir, pc, sv->identity, MOAT_ABI_ID_ANY, port);
    struct moat_interval *win = a;
    if (b && (!a || b->priority < a->priority ||
              (b->priority == a->priority && b->rule_id < a->rule_id)))
        win = b;
    if (win) {
        j->action = win->action;
        j->rule_id = win->rule_id;
    } else {
        j->action = dir == MOAT_ABI_DIR_INGRESS ? cfg->default_action : MOAT_ABI_ALLOW;
    }
    j->applied = j->action;
    if ((cfg->flags & MOAT_ABI_CF_MONITOR) && j->action == MOAT_ABI_BLOCK)
        j->applied = MOAT_ABI_ALERT;
    j->record = j->action != MOAT_ABI_ALLOW;
}

#endif
