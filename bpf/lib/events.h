/*
 * events: drop counters and rate-limited events to the agent.
 *
 * Every dropped packet is counted by reason (moat_drops). Events go through
 * two token buckets on each CPU: one per (source, cluster, kind, applied
 * action) — MOAT_EVL_BURST at once, then MOAT_EVL_PER_SEC — and one for the
 * whole node (MOAT_EVL_NODE_RATE per second). What a bucket holds back is
 * counted, never lost: the next event of the same key carries the count in
 * `held`; the agent reports counts left in idle buckets (and the node
 * bucket's, per cluster) as summaries. So an attacker who sends one packet
 * to each of 10,000 ports costs a few dozen events, not 10,000.
 */
#ifndef MOAT_BPF_EVENTS_H
#define MOAT_BPF_EVENTS_H

#include "maps.h"
#include "parse.h"

#define MOAT_NS_PER_S 1000000000ull

static __always_inline void count_drop(__u32 reason)
{
    __u64 *c = bpf_map_lookup_elem(&moat_drops, &reason);
    if (c)
        *c += 1; /* per-CPU: no atomics needed */
}

static __always_inline void count_evstat(__u32 which)
{
    __u64 *c = bpf_map_lookup_elem(&moat_evstats, &which);
    if (c)
        *c += 1;
}

/* Takes one token (1000 units) from bucket `b`, refilled at `rate` per second up to `burst`. */
static __always_inline bool bucket_take(struct moat_evlimit_val *b, __u64 now, __u32 rate,
                                        __u32 burst)
{
    __u64 elapsed = now - b->last_ns;
    __u64 add = elapsed / (MOAT_NS_PER_S / 1000) * rate; /* units: ms x events/s */
    __u64 tokens = (__u64)b->tokens + add;
    if (tokens > (__u64)burst * 1000)
        tokens = (__u64)burst * 1000;
    if (add)
        b->last_ns = now;
    if (tokens < 1000) {
        b->tokens = (__u32)tokens;
        return false;
    }
    b->tokens = (__u32)(tokens - 1000);
    return true;
}

/* The node-wide bucket; what it holds back is counted for cluster `cluster`. */
static __always_inline bool node_budget(__u32 cluster, __u64 now)
{
    __u32 zero = 0;
    struct moat_evlimit_val *b = bpf_map_lookup_elem(&moat_evnode, &zero);
    if (!b)
        return false;
    if (b->last_ns == 0) {
        b->last_ns = now;
        b->tokens = MOAT_EVL_NODE_RATE * 1000;
    }
    if (bucket_take(b, now, MOAT_EVL_NODE_RATE, MOAT_EVL_NODE_RATE))
        return true;
    __u32 idx = 1 + (cluster < MOAT_ABI_MAX_CLUSTERS ? cluster : 0);
    struct moat_evlimit_val *h = bpf_map_lookup_elem(&moat_evnode, &idx);
    if (h)
        h->held++;
    count_evstat(MOAT_EVS_NODE_LIMIT);
    return false;
}

/*
 * Whether an event of `key` may be sent now; *held is set to what its key
 * held back since the last one sent (and reset).
 */
static __always_inline bool event_budget(const struct moat_evlimit_key *key, __u64 now, __u32 *held)
{
    struct moat_evlimit_val *b = bpf_map_lookup_elem(&moat_evlimit, key);
    if (!b) {
        struct moat_evlimit_val fresh = {.last_ns = now, .tokens = MOAT_EVL_BURST * 1000};
        bpf_map_update_elem(&moat_evlimit, key, &fresh, BPF_NOEXIST);
        b = bpf_map_lookup_elem(&moat_evlimit, key);
        if (!b)
            return node_budget(key->cluster, now);
    }
    if (!bucket_take(b, now, MOAT_EVL_PER_SEC, MOAT_EVL_BURST) || !node_budget(key->cluster, now)) {
        b->held++;
        count_evstat(MOAT_EVS_SUPPRESSED);
        return false;
    }
    *held = b->held;
    b->held = 0;
    return true;
}

/*
 * Sends event `e` (filled by the hook, in the per-CPU work area) unless its
 * bucket is empty; sets its time, interface and held-back count. The
 * bucket's source is the flow's source (e->saddr), except for spoofing,
 * where it is the workload itself (e->waddr: a claimed address costs nothing).
 */
static __always_inline void emit(struct __sk_buff *skb, struct moat_event *e)
{
    __u64 now = bpf_ktime_get_ns();
    struct moat_evlimit_key key = {
        .cluster = (__u16)e->cluster, .kind = (__u8)e->kind, .applied = e->applied};
    __builtin_memcpy(key.addr, e->kind == MOAT_EV_SPOOFING ? e->waddr : e->saddr, 16);
    __u32 held = 0;
    if (!event_budget(&key, now, &held))
        return;
    e->ts_ns = now;
    e->ifindex = skb->ifindex;
    e->held = held;
    if (bpf_ringbuf_output(&moat_events, e, sizeof(*e), 0) == 0)
        count_evstat(MOAT_EVS_SENT);
    else
        count_evstat(MOAT_EVS_LOST);
}

#endif
