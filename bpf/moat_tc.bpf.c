/*
 * moat_tc: the datapath programs, attached with tc clsact on the host side
 * of every local workload's interface:
 *   moat_to_workload   (egress of the host-side interface: packets entering
 *                       the workload) judges ingress for flows toward it;
 *   moat_from_workload (ingress of the host-side interface: packets leaving
 *                       the workload) guards L2/ND and the source, judges
 *                       egress for flows it starts.
 * The verdict belongs to the interface: its workload is the subject of every
 * packet on it, whatever the packet's addresses claim (guard.h says what
 * passes unjudged and what is dropped before any policy).
 *
 * Per packet: parse (parse.h), guard (guard.h), fragments take their first
 * fragment's ports (frag.h), then one connection-tracking lookup (ct.h).
 * Each flow keeps both judgments (ingress for its destination workload,
 * egress for its source workload) stamped with the snapshot generation they
 * were made with; a stale stamp means judge again, so a rule change cuts
 * established flows at their next packet. Packets to a group address are
 * judged one by one. ICMP errors pass only as part of a flow they quote.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "moat/dns.h"

#include "lib/ct.h"
#include "lib/detect.h"
#include "lib/events.h"
#include "lib/frag.h"
#include "lib/guard.h"
#include "lib/parse.h"
#include "lib/policy.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * The packet being judged and what is worked out about it, per CPU (a tc
 * program runs to its end on one CPU): the BPF stack is too small for it.
 */
struct moat_work {
    struct moat_pkt p;
    struct moat_ct c;
    struct moat_ct_val fresh;
    struct moat_judgment j, rj;
    struct moat_event ev;
    struct moat_flowinfo f;
    struct moat_detscratch x;
    __u8 dns[MOAT_DNS_BUF];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct moat_work);
} moat_scratch SEC(".maps");

/*
 * Global functions: the verifier checks each once, on its own, instead of at
 * every place it is called from (which would multiply the states it walks).
 * They find the work area themselves; what they work on is in it.
 */

/* Parses the frame into the work area's packet; 0 or -MOAT_DROP_*. */
__noinline int moat_parse(struct __sk_buff *skb)
{
    __u32 zero = 0;
    struct moat_work *w = bpf_map_lookup_elem(&moat_scratch, &zero);
    if (!w)
        return -MOAT_DROP_TRUNCATED;
    return parse_packet(skb, &w->p);
}

/* Judges the work area's judgment `which` (0: j, 1: rj) by snapshot `generation`. */
__noinline int moat_judge(__u32 generation, __u32 which)
{
    __u32 zero = 0;
    struct moat_work *w = bpf_map_lookup_elem(&moat_scratch, &zero);
    struct moat_snapshot s;
    if (!w || snapshot_of(generation, &s) < 0)
        return -1;
    judge(&s, which ? &w->rj : &w->j);
    return 0;
}

/* Sends the work area's event, within its rate limit. */
__noinline int moat_emit(struct __sk_buff *skb)
{
    __u32 zero = 0;
    struct moat_work *w = bpf_map_lookup_elem(&moat_scratch, &zero);
    if (!w)
        return -1;
    emit(skb, &w->ev);
    return 0;
}

/* The cluster settings of snapshot `gen` for cluster index `cluster`, or NULL. */
static __always_inline struct moat_cluster_cfg *cluster_cfg(__u32 gen, __u32 cluster)
{
    struct moat_snapshot s;
    if (snapshot_of(gen, &s) < 0)
        return NULL;
    return bpf_map_lookup_elem(s.clusters, &cluster);
}

/*
 * Detections for the work area's flow (w->f), judged allowed or not by the
 * policy: a new connection attempt toward a workload is checked against the
 * quarantine and counted for brute force and port scans; a flow from or to a
 * listed address is checked against the threat list (in both directions);
 * with `recheck`, an existing flow at a new detection epoch: quarantine and
 * threat list only. Returns 0, or the MOAT_DROP_* reason the flow is blocked
 * for.
 */
__noinline int moat_detect(struct __sk_buff *skb, __u32 gen, __u32 recheck)
{
    __u32 zero = 0;
    struct moat_work *w = bpf_map_lookup_elem(&moat_scratch, &zero);
    if (!w)
        return 0;
    struct moat_flowinfo *f = &w->f;
    struct moat_cluster_cfg *cfg = cluster_cfg(gen, f->cluster);
    if (!cfg || !(cfg->flags & MOAT_ABI_CF_DEFENSE))
        return 0;
    __u64 now = bpf_ktime_get_ns();
    __u16 det = cfg->det_flags;
    /* Attempts count first, quarantined or not: a burst's alert counts all of them. */
    if (!recheck && f->ingress && f->attempt) {
        if ((det & MOAT_DET_BF_ON) && is_auth_port(cfg, f->dport))
            brute_force(skb, &w->ev, &w->x, f, cfg, now);
        if (det & MOAT_DET_SCAN_ON)
            port_scan(skb, &w->ev, &w->x, f, cfg, now);
    }
    if (f->ingress) {
        struct moat_quarantine_val *q = quarantined(&w->x, f->cluster, f->src, now);
        if (q) {
            __sync_fetch_and_add(&q->dropped, 1);
            det_event(skb, &w->ev, f, MOAT_EV_QUARANTINE, MOAT_DROP_QUARANTINED, true, 1,
                      q->reason);
            return MOAT_DROP_QUARANTINED;
        }
    }
    if (det & MOAT_DET_TI_ON) {
        const __u8 *peer = f->ingress ? f->src : f->dst;
        struct moat_ti_val *t = threat_listed(&w->x, f->cluster, peer);
        if (t) {
            bool block = det & MOAT_DET_TI_BLOCK;
            __builtin_memcpy(w->ev.waddr, t->addr, 16);
            det_event(skb, &w->ev, f, MOAT_EV_THREAT, block ? MOAT_DROP_THREAT : 0, block, t->plen,
                      t->label);
            if (block)
                return MOAT_DROP_THREAT;
        }
    }
    return 0;
}

static __always_inline bool resolver_ok(__u32 gen, __u32 cluster, const __u8 *addr)
{
    __u32 slot = gen & 1;
    void *resolvers = bpf_map_lookup_elem(&moat_resolver_slots, &slot);
    if (!resolvers)
        return false;
    struct moat_resolver_key k = {.cluster = cluster};
    __builtin_memcpy(k.addr, addr, 16);
    return bpf_map_lookup_elem(resolvers, &k) != NULL;
}

/* One step of the name walk, under bpf_loop: the buffer is the work area's. */
static long dns_step(__u32 i, void *ctx)
{
    (void)i;
    __u32 zero = 0;
    struct moat_work *w = bpf_map_lookup_elem(&moat_scratch, &zero);
    if (!w)
        return 1;
    return moat_dns_step(w->dns, ctx);
}

/* The DNS message of the work area's UDP packet into w->dns, parsed; 0 or <0. */
static __always_inline int dns_read(struct __sk_buff *skb, struct moat_work *w,
                                    struct moat_dns_q *q)
{
    __u32 off = (__u32)w->p.l4_off + 8;
    if (off >= skb->len)
        return -1;
    __u32 len = skb->len - off;
    if (len > MOAT_DNS_BUF - 1)
        len = MOAT_DNS_BUF - 1;
    barrier_var(len);
    len &= MOAT_DNS_BUF - 1; /* the verifier's bound: the header and question are early */
    if (len < 17)
        return -1;
    if (bpf_skb_load_bytes(skb, off, w->dns, len) < 0)
        return -1;
    struct moat_dns_walk walk;
    if (moat_dns_begin(w->dns, len, q, &walk) < 0)
        return -1;
    bpf_loop(MOAT_DNS_STEPS, dns_step, &walk, 0);
    return moat_dns_finish(w->dns, &walk, q);
}

/* A DNS event: a query (aux 0) from the flow's source, or an answer (aux 1) to it. */
static __always_inline int dns_drop(struct __sk_buff *skb, struct moat_work *w, __u32 reason,
                                    bool block, bool answer)
{
    det_event(skb, &w->ev, &w->f, MOAT_EV_DNS_HIJACK, reason, block, 1, answer);
    return block ? (int)reason : 0;
}

/*
 * DNS hijacking (SPEC §6) for a packet the policy lets through, to or from
 * port 53: a query from a workload goes to an approved resolver (else alert,
 * or drop with `block`) and is remembered; an answer to a workload passes
 * only from an approved resolver and as the answer of an outstanding query
 * of that workload — transaction id, both ports, resolver, question name,
 * type and class — else it is dropped whatever the action (it would be
 * believed). Over TCP, the connection tracking stands for the query match.
 * Returns 0 or the MOAT_DROP_* reason.
 */
__noinline int moat_dns(struct __sk_buff *skb, __u32 gen, __u32 to_wl)
{
    __u32 zero = 0;
    struct moat_work *w = bpf_map_lookup_elem(&moat_scratch, &zero);
    if (!w)
        return 0;
    struct moat_pkt *p = &w->p;
    struct moat_cluster_cfg *cfg = cluster_cfg(gen, w->f.cluster);
    if (!cfg || !(cfg->flags & MOAT_ABI_CF_DEFENSE) || !(cfg->det_flags & MOAT_DET_DNS_ON) ||
        !cfg->nresolvers)
        return 0; /* no resolver known to compare with: checking would break all DNS */
    bool block = cfg->det_flags & MOAT_DET_DNS_BLOCK;
    bool udp = p->proto == IPPROTO_UDP;
    struct moat_dns_q q;
    /* events name the message as it goes: query client -> resolver, answer sender -> client */
    __builtin_memcpy(w->f.src, p->saddr, 16);
    __builtin_memcpy(w->f.dst, p->daddr, 16);
    w->f.sport = p->sport;
    w->f.dport = p->dport;
    if (!to_wl && p->dport == 53) { /* a query leaving the workload */
        if (!resolver_ok(gen, w->f.cluster, p->daddr))
            return dns_drop(skb, w, MOAT_DROP_DNS_RESOLVER, block, false);
        if (!udp || p->kind == MOAT_PK_FRAG_LATER || dns_read(skb, w, &q) < 0 || (q.flags & 0x8000))
            return 0; /* not a query we can hold an answer to: its answer will not match */
        struct moat_dnsq_key k = {.client_port = p->sport, .txid = q.txid, .cluster = w->f.cluster};
        __builtin_memcpy(k.client, p->saddr, 16);
        __builtin_memcpy(k.resolver, p->daddr, 16);
        struct moat_dnsq_val v = {.ts_ns = bpf_ktime_get_ns(), .question = q.question};
        bpf_map_update_elem(&moat_dnsq, &k, &v, BPF_ANY);
        return 0;
    }
    if (!to_wl || p->sport != 53)
        return 0;
    /* an answer toward the workload */
    if (!resolver_ok(gen, w->f.cluster, p->saddr))
        return dns_drop(skb, w, MOAT_DROP_DNS_RESOLVER, true, true);
    if (!udp || p->kind == MOAT_PK_FRAG_LATER)
        return 0;
    if (dns_read(skb, w, &q) < 0)
        return dns_drop(skb, w, MOAT_DROP_DNS_MALFORMED, true, true);
    if (!(q.flags & 0x8000))
        return 0; /* a query from port 53, not an answer */
    struct moat_dnsq_key k = {.client_port = p->dport, .txid = q.txid, .cluster = w->f.cluster};
    __builtin_memcpy(k.client, p->daddr, 16);
    __builtin_memcpy(k.resolver, p->saddr, 16);
    struct moat_dnsq_val *v = bpf_map_lookup_elem(&moat_dnsq, &k);
    if (!v || bpf_ktime_get_ns() - v->ts_ns > 30 * MOAT_NS_PER_S)
        return dns_drop(skb, w, MOAT_DROP_DNS_NO_QUERY, true, true);
    if (v->question != q.question)
        return dns_drop(skb, w, MOAT_DROP_DNS_QUESTION, true, true);
    bpf_map_delete_elem(&moat_dnsq, &k); /* one answer per query */
    return 0;
}

/* What one hook knows of its packet. */
struct hook {
    struct __sk_buff *skb;
    struct moat_work *w;
    struct moat_iface *ifc;
    __u32 gen; /* the snapshot in force, read once per packet */
    __u64 now;
    bool to_wl; /* toward the workload (moat_to_workload) */
};

static __always_inline int drop(__u32 reason)
{
    count_drop(reason);
    return TC_ACT_SHOT;
}

/* Counts a packet (and a flow) on counter slot `slot` (per CPU: no atomics). */
static __always_inline void count(__u32 slot, __u32 len, bool new_flow)
{
    struct moat_rule_counters *c = bpf_map_lookup_elem(&moat_counters, &slot);
    if (!c)
        return;
    c->packets++;
    c->bytes += len;
    if (new_flow)
        c->flows++;
}

/* The event's flow: the packet's own tuple, or (`reverse`) the tuple of the flow it answers. */
static __always_inline void ev_flow(struct hook *h, bool reverse)
{
    struct moat_pkt *p = &h->w->p;
    struct moat_event *e = &h->w->ev;
    __builtin_memcpy(e->saddr, reverse ? p->daddr : p->saddr, 16);
    __builtin_memcpy(e->daddr, reverse ? p->saddr : p->daddr, 16);
    e->sport = reverse ? p->dport : p->sport;
    e->dport = reverse ? p->sport : p->dport;
    e->proto = p->proto;
    __builtin_memcpy(e->waddr, h->ifc->addrs[0], 16);
}

static __always_inline void emit_judgment(struct hook *h, const struct moat_judgment *j, __u32 kind,
                                          __u32 reason, bool pkt_is_orig)
{
    struct moat_event *e = &h->w->ev;
    ev_flow(h, !pkt_is_orig);
    e->kind = kind;
    e->reason = reason;
    e->dir = j->dir;
    e->action = j->action;
    e->applied = j->applied;
    e->rule_id = j->rule_id;
    e->cluster = j->cluster;
    e->src_identity = j->dir == MOAT_ABI_DIR_INGRESS ? j->peer : j->subject;
    e->dst_identity = j->dir == MOAT_ABI_DIR_INGRESS ? j->subject : j->peer;
    moat_emit(h->skb);
}

/* A spoofing event for a drop (or, spoofing detection on alert, a pass) on a from-hook. */
static __always_inline void emit_spoofing(struct hook *h, __u32 reason, bool blocked)
{
    struct moat_event *e = &h->w->ev;
    ev_flow(h, false);
    e->kind = MOAT_EV_SPOOFING;
    e->reason = reason;
    e->dir = MOAT_ABI_DIR_EGRESS;
    e->action = e->applied = blocked ? MOAT_ABI_BLOCK : MOAT_ABI_ALERT;
    e->rule_id = 0;
    e->cluster = h->ifc->cluster;
    e->src_identity = e->dst_identity = 0;
    moat_emit(h->skb);
}

/*
 * This hook's judgment of the flow the packet belongs to, into *j.
 * `pkt_is_orig`: the packet goes the way the flow was opened. The workload is
 * the flow's destination (ingress) when the packet enters it in the opening
 * direction or leaves it in the other; the peer is always the packet's other
 * address.
 */
static __always_inline void hook_judge(struct hook *h, bool pkt_is_orig, struct moat_judgment *j)
{
    struct moat_pkt *p = &h->w->p;
    bool is_dst = h->to_wl == pkt_is_orig;
    j->dir = is_dst ? MOAT_ABI_DIR_INGRESS : MOAT_ABI_DIR_EGRESS;
    __builtin_memcpy(j->subj_addr, h->ifc->addrs[0], 16);
    __builtin_memcpy(j->peer_addr, h->to_wl ? p->saddr : p->daddr, 16);
    j->proto = p->proto;
    j->dport = pkt_is_orig ? p->dport : p->sport;
    if (moat_judge(h->gen, j == &h->w->rj) < 0)
        j->unknown_subject = 1; /* no snapshot: fail closed */
}

/* The flow as the detections see it (w->f): opened as `pkt_is_orig` says. */
static __always_inline void flowinfo(struct hook *h, bool pkt_is_orig, bool ingress, bool attempt)
{
    struct moat_pkt *p = &h->w->p;
    struct moat_flowinfo *f = &h->w->f;
    __builtin_memcpy(f->src, pkt_is_orig ? p->saddr : p->daddr, 16);
    __builtin_memcpy(f->dst, pkt_is_orig ? p->daddr : p->saddr, 16);
    __builtin_memcpy(f->waddr, h->ifc->addrs[0], 16);
    f->sport = pkt_is_orig ? p->sport : p->dport;
    f->dport = pkt_is_orig ? p->dport : p->sport;
    f->proto = p->proto;
    f->ingress = ingress;
    f->attempt = attempt;
    f->cluster = h->ifc->cluster;
    f->ifindex = h->skb->ifindex;
}

static __always_inline bool is_dns(const struct moat_pkt *p, bool to_wl)
{
    return (p->proto == IPPROTO_UDP || p->proto == IPPROTO_TCP) &&
           (to_wl ? p->sport == 53 : p->dport == 53);
}

static __always_inline bool blocks(const struct moat_judgment *j)
{
    return j->judged && j->applied == MOAT_ABI_BLOCK;
}

/* Packets to a group address: judged one by one, never cached. */
static __always_inline int enforce_group(struct hook *h)
{
    struct moat_judgment *j = &h->w->j;
    hook_judge(h, true, j);
    if (j->unknown_subject)
        return drop(MOAT_DROP_NO_WORKLOAD);
    if (j->record)
        emit_judgment(h, j, MOAT_EV_POLICY, blocks(j) ? MOAT_DROP_POLICY : 0, true);
    if (j->judged)
        count(j->slot, h->w->p.len, true);
    if (blocks(j))
        return drop(MOAT_DROP_POLICY);
    flowinfo(h, true, h->to_wl, false);
    if (j->judged) { /* a quarantined or listed source reaches no one this way either */
        int det = moat_detect(h->skb, h->gen, 1);
        if (det)
            return drop((__u32)det);
    }
    /* DNS to a group MAC or address is DNS all the same (a forged answer sent to
     * the broadcast MAC must not skip the check) */
    if (is_dns(&h->w->p, h->to_wl)) {
        int dr = moat_dns(h->skb, h->gen, h->to_wl);
        if (dr)
            return drop((__u32)dr);
    }
    return TC_ACT_OK;
}

/*
 * A TCP packet without SYN whose flow has no entry (lost, or opened before
 * the datapath ran), judged into w->j: the packet's own direction if that is
 * allowed, else the reverse (it answers a flow the workload opened) if that
 * is allowed and the workload's port is not a privileged one (clients never
 * use those), else the packet's direction, blocked. Returns whether the
 * packet is the opening direction.
 */
static __always_inline bool place_midstream(struct hook *h)
{
    struct moat_work *w = h->w;
    hook_judge(h, true, &w->j);
    if (!blocks(&w->j) || w->j.unknown_subject)
        return true;
    __u16 wl_port = h->to_wl ? w->p.dport : w->p.sport;
    if (wl_port < 1024)
        return true;
    hook_judge(h, false, &w->rj);
    if (blocks(&w->rj))
        return true;
    w->j = w->rj;
    return false;
}

static __always_inline bool tcp_opens(__u8 flags)
{
    return (flags & (MOAT_TCP_SYN | MOAT_TCP_ACK)) == MOAT_TCP_SYN;
}

/* Unicast to or from the workload: the flow's entry, judged when due. */
static __always_inline int enforce_flow(struct hook *h)
{
    struct moat_work *w = h->w;
    struct moat_pkt *p = &w->p;
    struct moat_ct *c = &w->c;
    struct moat_judgment *j = &w->j;
    ct_key_make(c, p->saddr, p->daddr, p->sport, p->dport, p->proto);
    bool in_est, stale_est;
    struct moat_ct_val *v = ct_lookup(c, h->now, &in_est, &stale_est);
    bool tcp = p->proto == IPPROTO_TCP;
    if (v && tcp && tcp_opens(p->tcp_flags) &&
        (v->state == MOAT_CTS_CLOSING || !ct_from_orig(c, v)))
        v = NULL; /* a new connection on this tuple */
    /* From the far side of a flow that was blocked before it was ever answered:
     * nothing reached this side, so it is no reply but a flow of its own (the
     * unicast answer to a broadcast, say, made the first entry). */
    if (v && v->state == MOAT_CTS_NEW && !ct_from_orig(c, v) &&
        (v->in_applied == MOAT_ABI_BLOCK || v->eg_applied == MOAT_ABI_BLOCK))
        v = NULL;
    bool pkt_is_orig, judged_now = false, new_flow = !v;
    if (v) {
        pkt_is_orig = ct_from_orig(c, v);
    } else if (tcp && !(p->tcp_flags & MOAT_TCP_SYN) && !p->frag_first &&
               p->kind != MOAT_PK_FRAG_LATER) {
        pkt_is_orig = place_midstream(h);
        judged_now = true;
    } else {
        /* A SYN-ACK answers a SYN this node did not see: its receiver opened the flow. */
        pkt_is_orig = !(tcp && (p->tcp_flags & MOAT_TCP_SYN) && (p->tcp_flags & MOAT_TCP_ACK));
    }
    if (!v) {
        ct_fresh(c, !pkt_is_orig, h->now, &w->fresh);
        if (judged_now)
            w->fresh.state = MOAT_CTS_RECOVERED;
        v = &w->fresh;
    }
    bool is_dst = h->to_wl == pkt_is_orig;
    __u32 *gen = is_dst ? &v->in_gen : &v->eg_gen;
    __u8 *applied = is_dst ? &v->in_applied : &v->eg_applied;
    __u32 *slot = is_dst ? &v->in_slot : &v->eg_slot;
    __u32 reason = MOAT_DROP_POLICY;
    bool count_flow = false, rejudged = false;
    bool first_here = false; /* this hook judges the flow for the first time */
    if (judged_now || *gen != h->gen || *applied == MOAT_CT_UNDECIDED) {
        rejudged = true;
        __u8 before = *applied;
        first_here = before == MOAT_CT_UNDECIDED;
        __u32 old_slot = *slot;
        if (!judged_now)
            hook_judge(h, pkt_is_orig, j);
        if (j->unknown_subject)
            return drop(MOAT_DROP_NO_WORKLOAD);
        *applied = j->judged ? j->applied : MOAT_CT_NA;
        *slot = j->slot;
        *gen = h->gen;
        count_flow = j->judged && (new_flow || before == MOAT_CT_UNDECIDED || old_slot != j->slot);
        if (j->record && before == MOAT_CT_UNDECIDED) {
            emit_judgment(h, j, MOAT_EV_POLICY, blocks(j) ? MOAT_DROP_POLICY : 0, pkt_is_orig);
        } else if (blocks(j) && before != MOAT_ABI_BLOCK) {
            reason = MOAT_DROP_CUT;
            emit_judgment(h, j, MOAT_EV_CUT, MOAT_DROP_CUT, pkt_is_orig);
        }
    }
    __u8 verdict = *applied;
    __u32 slot_now = *slot;
    /* Detections: with every judgment, and again when the detection epoch moved
     * (a quarantine started, the threat list changed) — once per flow. */
    __u32 epoch = depoch_now();
    if ((rejudged && j->judged) || (v->depoch != epoch && verdict != MOAT_CT_NA)) {
        /* a connection attempt: the flow's first judgment toward the workload (its
         * first packet may have passed the sender's hook on this node already) */
        bool attempt = first_here && is_dst && (!tcp || tcp_opens(p->tcp_flags));
        flowinfo(h, pkt_is_orig, is_dst, attempt);
        v->det_block = (__u8)moat_detect(h->skb, h->gen, !rejudged);
        v->depoch = epoch;
    }
    if (v->det_block && verdict != MOAT_ABI_BLOCK) {
        verdict = MOAT_ABI_BLOCK;
        reason = v->det_block;
    }
    /* DNS is checked whether or not the policy judges this direction (the cluster's
     * resolvers are its own workloads: egress to them is judged at their end). */
    if (verdict != MOAT_ABI_BLOCK && is_dns(p, h->to_wl)) {
        flowinfo(h, pkt_is_orig, is_dst, false);
        int dr = moat_dns(h->skb, h->gen, h->to_wl);
        if (dr) {
            verdict = MOAT_ABI_BLOCK;
            reason = (__u32)dr;
        }
    }
    bool est = ct_update(v, tcp, pkt_is_orig, p->tcp_flags, h->now);
    if (new_flow)
        ct_insert(c, &w->fresh, est, stale_est);
    else if (est && !in_est)
        ct_promote(c, v);
    if (verdict != MOAT_CT_NA)
        count(slot_now, p->len, count_flow);
    return verdict == MOAT_ABI_BLOCK ? drop(reason) : TC_ACT_OK;
}

/*
 * An ICMP/ICMPv6 error passes as part of the flow it quotes: it goes back to
 * the quoted packet's sender, comes from its destination or from a router
 * (an address that is no workload's), and the flow's judgment at this hook
 * lets that flow through. Nothing else passes; no entry is made.
 */
static __always_inline int enforce_icmp_error(struct hook *h)
{
    struct moat_pkt *p = &h->w->p;
    struct moat_ct *c = &h->w->c;
    if (!addr_eq(p->daddr, p->inner_saddr))
        return drop(MOAT_DROP_ICMP_ERROR);
    if (!addr_eq(p->saddr, p->inner_daddr)) {
        struct moat_snapshot s;
        if (snapshot_of(h->gen, &s) < 0)
            return drop(MOAT_DROP_NO_WORKLOAD);
        struct moat_addr_val *from = identify(&s, p->saddr);
        if (!from || from->kind == MOAT_ABI_IDENT_WORKLOAD)
            return drop(MOAT_DROP_ICMP_ERROR);
    }
    ct_key_make(c, p->inner_saddr, p->inner_daddr, p->inner_sport, p->inner_dport, p->inner_proto);
    bool in_est, stale_est;
    struct moat_ct_val *v = ct_lookup(c, h->now, &in_est, &stale_est);
    if (!v)
        return drop(MOAT_DROP_ICMP_ERROR);
    bool err_is_orig = !ct_from_orig(c, v); /* the error goes against the quoted packet */
    bool is_dst = h->to_wl == err_is_orig;
    __u8 applied = is_dst ? v->in_applied : v->eg_applied;
    if (applied == MOAT_CT_UNDECIDED || applied == MOAT_ABI_BLOCK)
        return drop(MOAT_DROP_ICMP_ERROR);
    return TC_ACT_OK;
}

/* The interface's workload: by index for small ifindexes, by hash for the others. */
static __always_inline struct moat_iface *iface_of(__u32 ifindex)
{
    if (ifindex < MOAT_IFINDEX_DIRECT) {
        struct moat_iface *ifc = bpf_map_lookup_elem(&moat_ifaces, &ifindex);
        return ifc && (ifc->flags & MOAT_IFF_PRESENT) ? ifc : NULL;
    }
    return bpf_map_lookup_elem(&moat_ifaces_hi, &ifindex);
}

static __always_inline bool to_group(const struct moat_pkt *p)
{
    return p->l2_group || addr_is_group(p->daddr);
}

static __always_inline int handle(struct __sk_buff *skb, bool to_wl)
{
    __u32 zero = 0;
    struct hook h = {.skb = skb, .to_wl = to_wl};
    h.w = bpf_map_lookup_elem(&moat_scratch, &zero);
    if (!h.w)
        return TC_ACT_SHOT;
    struct moat_pkt *p = &h.w->p;
    int rc = moat_parse(skb);
    if (rc < 0)
        return drop((__u32)-rc);
    __u32 ifindex = skb->ifindex;
    h.ifc = iface_of(ifindex);
    if (!h.ifc)
        return drop(MOAT_DROP_NO_WORKLOAD); /* attached, but not known: fail closed */
    rc = to_wl ? guard_to(ifindex, h.ifc, p) : guard_from(ifindex, h.ifc, p);
    if (rc < 0) {
        if (drop_is_spoofing((__u32)-rc))
            emit_spoofing(&h, (__u32)-rc, true);
        return drop((__u32)-rc);
    }
    if (rc == MOAT_G_PASS)
        return TC_ACT_OK;
    h.gen = generation_now();
    if (!h.gen)
        return drop(MOAT_DROP_NO_WORKLOAD);
    if (rc == 0) { /* a foreign source: the cluster's spoofing detection decides */
        __u32 cl = h.ifc->cluster;
        struct moat_snapshot s;
        if (snapshot_of(h.gen, &s) < 0)
            return drop(MOAT_DROP_NO_WORKLOAD);
        struct moat_cluster_cfg *cfg = bpf_map_lookup_elem(s.clusters, &cl);
        __u8 f = cfg ? cfg->flags : 0;
        if (f & MOAT_ABI_CF_SPOOF_BLOCK) {
            emit_spoofing(&h, MOAT_DROP_SPOOFED, true);
            return drop(MOAT_DROP_SPOOFED);
        }
        if (f & MOAT_ABI_CF_SPOOF_ALERT)
            emit_spoofing(&h, MOAT_DROP_NONE, false);
        rc = to_group(p) ? MOAT_G_GROUP : MOAT_G_JUDGE;
    }
    h.now = bpf_ktime_get_coarse_ns();
    if (p->kind == MOAT_PK_ICMP_ERROR)
        return enforce_icmp_error(&h);
    if (p->kind == MOAT_PK_FRAG_LATER && frag_resolve(p, h.now) < 0)
        return drop(MOAT_DROP_FRAG_NO_FIRST);
    if (p->frag_first)
        frag_record(p, h.now);
    if (rc == MOAT_G_GROUP)
        return enforce_group(&h);
    return enforce_flow(&h);
}

SEC("tc")
int moat_to_workload(struct __sk_buff *skb)
{
    return handle(skb, true);
}

SEC("tc")
int moat_from_workload(struct __sk_buff *skb)
{
    return handle(skb, false);
}
