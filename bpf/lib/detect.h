/*
 * detect: the detections of SPEC §6 in the datapath — brute force, port
 * scans, quarantine, threat intelligence (DNS is dns.h) — for the flow the
 * hook is judging (struct moat_flowinfo in the work area).
 *
 * Counting uses two buckets per window (abi.h says the error bound); maps
 * are LRU, so a flood of sources evicts the oldest counts, never a
 * quarantine younger than the others (moat_quarantine is its own map).
 * Quarantine is judged here by timestamp: no agent round trip, it ends by
 * itself. Starting one bumps the detection epoch, so every established flow
 * is checked again at its next packet and a quarantined source's flows are
 * cut.
 */
#ifndef MOAT_BPF_DETECT_H
#define MOAT_BPF_DETECT_H

#include "events.h"
#include "maps.h"
#include "policy.h"

/* Keys and values the detections build, kept in the per-CPU work area: the stack is small. */
struct moat_detscratch {
    struct moat_burst_key bk;
    struct moat_burst_val bv;
    struct moat_seen_key sk;
    struct moat_scan_key ck;
    struct moat_scan_val cv;
    struct moat_quarantine_key qk;
    struct moat_quarantine_val qv;
    struct moat_ti_key tk;
};

/* The flow a detection looks at, as the hook knows it. */
struct moat_flowinfo {
    __u8 src[16]; /* the flow's source (as opened) */
    __u8 dst[16];
    __u8 waddr[16]; /* the hook's workload's address */
    __u16 sport, dport;
    __u8 proto;
    __u8 ingress; /* the hook's workload is the flow's destination */
    __u8 attempt; /* a new connection attempt (TCP SYN, a new UDP or other flow) */
    __u8 pad;
    __u32 cluster; /* the hook's workload's cluster index */
    __u32 ifindex;
};

static __always_inline __u32 depoch_now(void)
{
    __u32 zero = 0;
    __u32 *e = bpf_map_lookup_elem(&moat_depoch, &zero);
    return e ? *(volatile __u32 *)e : 0;
}

static __always_inline void depoch_bump(void)
{
    __u32 zero = 0;
    __u32 *e = bpf_map_lookup_elem(&moat_depoch, &zero);
    if (e)
        __sync_fetch_and_add(e, 1);
}

/* Two-bucket estimate of events in the last `window_ns` (see abi.h). */
static __always_inline __u64 estimate(__u64 now, __u64 start, __u32 cur, __u32 prev,
                                      __u64 window_ns)
{
    __u64 in = now - start;
    if (in >= window_ns)
        return cur;
    return cur + (__u64)prev * (window_ns - in) / window_ns;
}

/* Moves the buckets on when the current one is over; returns whether it did. */
static __always_inline void roll(__u64 now, __u64 *start, __u32 *cur, __u32 *prev, __u64 window_ns)
{
    if (now - *start < window_ns)
        return;
    *prev = now - *start < 2 * window_ns ? *cur : 0;
    *cur = 0;
    *start = now;
}

static __always_inline bool is_auth_port(const struct moat_cluster_cfg *cfg, __u16 port)
{
    __u16 n = cfg->nauth;
#pragma unroll
    for (int i = 0; i < MOAT_ABI_AUTH_PORTS; i++)
        if (i < n && cfg->auth_ports[i] == port)
            return true;
    return false;
}

/* The source is in quarantine for the cluster: true (and counted) if so. */
static __always_inline struct moat_quarantine_val *
quarantined(struct moat_detscratch *x, __u32 cluster, const __u8 *src, __u64 now)
{
    struct moat_quarantine_key *k = &x->qk;
    k->cluster = cluster;
    __builtin_memcpy(k->addr, src, 16);
    struct moat_quarantine_val *q = bpf_map_lookup_elem(&moat_quarantine, k);
    if (!q || now >= q->until_ns)
        return NULL;
    return q;
}

static __always_inline void quarantine(struct moat_detscratch *x, __u32 cluster, const __u8 *src,
                                       __u64 now, __u32 secs, __u32 reason)
{
    if (!secs)
        return;
    if (quarantined(x, cluster, src, now))
        return; /* already: the first quarantine runs its course */
    struct moat_quarantine_val *v = &x->qv;
    v->until_ns = now + (__u64)secs * MOAT_NS_PER_S;
    v->since_ns = now;
    v->reason = reason;
    v->secs = secs;
    v->dropped = 0;
    bpf_map_update_elem(&moat_quarantine, &x->qk, v, BPF_ANY);
    depoch_bump();
}

int moat_emit(struct __sk_buff *skb);

/* A detection event about flow `f` (sent by moat_emit: the event is the work area's). */
static __always_inline void det_event(struct __sk_buff *skb, struct moat_event *e,
                                      const struct moat_flowinfo *f, __u32 kind, __u32 reason,
                                      bool block, __u32 count, __u32 aux)
{
    __builtin_memcpy(e->saddr, f->src, 16);
    __builtin_memcpy(e->daddr, f->dst, 16);
    if (kind != MOAT_EV_THREAT) /* a threat event's waddr is the matched prefix, set before */
        __builtin_memcpy(e->waddr, f->waddr, 16);
    e->sport = f->sport;
    e->dport = f->dport;
    e->proto = f->proto;
    e->kind = kind;
    e->reason = reason;
    e->dir = f->ingress ? MOAT_ABI_DIR_INGRESS : MOAT_ABI_DIR_EGRESS;
    e->action = e->applied = block ? MOAT_ABI_BLOCK : MOAT_ABI_ALERT;
    e->rule_id = 0;
    e->cluster = f->cluster;
    e->src_identity = e->dst_identity = 0;
    e->count = count;
    e->aux = aux;
    moat_emit(skb);
}

#define MOAT_DET_REPORT_NS (1000000000ull) /* at most one event a second per burst or scan */

/* Brute force: an attempt of f->src on f->dst's auth port f->dport. */
static __always_inline void brute_force(struct __sk_buff *skb, struct moat_event *e,
                                        struct moat_detscratch *x, const struct moat_flowinfo *f,
                                        const struct moat_cluster_cfg *cfg, __u64 now)
{
    struct moat_burst_key *k = &x->bk;
    k->cluster = f->cluster;
    k->port = f->dport;
    k->pad = 0;
    __builtin_memcpy(k->src, f->src, 16);
    __builtin_memcpy(k->dst, f->dst, 16);
    __u64 window = (__u64)(cfg->bf_window_s ? cfg->bf_window_s : 1) * MOAT_NS_PER_S;
    struct moat_burst_val *b = bpf_map_lookup_elem(&moat_bursts, k);
    if (!b) {
        __builtin_memset(&x->bv, 0, sizeof(x->bv));
        x->bv.start_ns = x->bv.first_ns = now;
        x->bv.port = f->dport;
        bpf_map_update_elem(&moat_bursts, k, &x->bv, BPF_NOEXIST);
        b = bpf_map_lookup_elem(&moat_bursts, k);
        if (!b)
            return;
    }
    /* a burst that went quiet for a whole window ends; the next one starts afresh */
    if (now - b->last_ns >= 2 * window && b->total) {
        b->first_ns = now;
        b->total = b->reported = 0;
        b->alerted = 0;
    }
    roll(now, &b->start_ns, &b->cur, &b->prev, window);
    __sync_fetch_and_add(&b->cur, 1);
    __sync_fetch_and_add(&b->total, 1);
    b->last_ns = now;
    b->port = f->dport;
    if (estimate(now, b->start_ns, b->cur, b->prev, window) <= cfg->bf_threshold)
        return;
    bool block = cfg->det_flags & MOAT_DET_BF_BLOCK;
    if (block) /* above the threshold with `block`: quarantined (once: it is idempotent) */
        quarantine(x, f->cluster, f->src, now, cfg->bf_quarantine_s, MOAT_Q_BRUTE_FORCE);
    if (!b->alerted)
        b->alerted = 1;
    else if (now - b->reported_ns < MOAT_DET_REPORT_NS)
        return;
    __u32 total = b->total, count = total - b->reported;
    b->reported = total;
    b->reported_ns = now;
    det_event(skb, e, f, MOAT_EV_BRUTE_FORCE, 0, block, count, cfg->bf_window_s);
}

/* Port scan: f->src touched (f->dst, f->dport). */
static __always_inline void port_scan(struct __sk_buff *skb, struct moat_event *e,
                                      struct moat_detscratch *x, const struct moat_flowinfo *f,
                                      const struct moat_cluster_cfg *cfg, __u64 now)
{
    __u64 window = (__u64)(cfg->scan_window_s ? cfg->scan_window_s : 1) * MOAT_NS_PER_S;
    struct moat_seen_key *sk = &x->sk;
    sk->cluster = f->cluster;
    sk->port = f->dport;
    sk->proto = f->proto;
    sk->pad = 0;
    __builtin_memcpy(sk->src, f->src, 16);
    __builtin_memcpy(sk->dst, f->dst, 16);
    __u64 *seen = bpf_map_lookup_elem(&moat_scan_seen, sk);
    if (seen && now - *seen < window) {
        *seen = now;
        return; /* the same pair again: not a new one */
    }
    bpf_map_update_elem(&moat_scan_seen, sk, &now, BPF_ANY);
    struct moat_scan_key *k = &x->ck;
    k->cluster = f->cluster;
    __builtin_memcpy(k->src, f->src, 16);
    struct moat_scan_val *s = bpf_map_lookup_elem(&moat_scans, k);
    if (!s) {
        __builtin_memset(&x->cv, 0, sizeof(x->cv));
        x->cv.start_ns = x->cv.first_ns = now;
        bpf_map_update_elem(&moat_scans, k, &x->cv, BPF_NOEXIST);
        s = bpf_map_lookup_elem(&moat_scans, k);
        if (!s)
            return;
    }
    if (now - s->last_ns >= 2 * window && s->total) {
        s->first_ns = now;
        s->total = s->reported = 0;
        s->reported_ns = 0;
    }
    roll(now, &s->start_ns, &s->cur, &s->prev, window);
    __u32 n = s->total; /* the sample slot: a race may overwrite one, never overflow */
    __sync_fetch_and_add(&s->total, 1);
    __sync_fetch_and_add(&s->cur, 1);
    if (n < MOAT_SCAN_SAMPLE)
        s->sample[n & (MOAT_SCAN_SAMPLE - 1)] = f->dport;
    s->last_ns = now;
    if (estimate(now, s->start_ns, s->cur, s->prev, window) <= cfg->scan_threshold)
        return;
    bool block = cfg->det_flags & MOAT_DET_SCAN_BLOCK;
    if (block)
        quarantine(x, f->cluster, f->src, now, cfg->scan_quarantine_s, MOAT_Q_PORT_SCAN);
    if (s->reported_ns && now - s->reported_ns < MOAT_DET_REPORT_NS)
        return;
    __u32 total = s->total, count = total - s->reported;
    s->reported = total;
    s->reported_ns = now;
    det_event(skb, e, f, MOAT_EV_PORT_SCAN, 0, block, count, cfg->scan_window_s);
}

/*
 * The threat list in force: is `addr` listed for the cluster? Returns the
 * entry or NULL.
 */
static __always_inline struct moat_ti_val *threat_listed(struct moat_detscratch *x, __u32 cluster,
                                                         const __u8 *addr)
{
    __u32 zero = 0;
    struct moat_cfg *cfg = bpf_map_lookup_elem(&moat_cfg, &zero);
    __u32 gen = cfg ? *(volatile __u32 *)&cfg->ti_generation : 0;
    if (!gen)
        return NULL;
    __u32 slot = gen & 1;
    void *trie = bpf_map_lookup_elem(&moat_ti_slots, &slot);
    if (!trie)
        return NULL;
    struct moat_ti_key *k = &x->tk;
    k->prefixlen = 32 + 128;
    k->cluster = cluster;
    __builtin_memcpy(k->addr, addr, 16);
    return bpf_map_lookup_elem(trie, k);
}

#endif
