/*
 * moat_tc: the datapath programs, attached with tc clsact on the host side
 * of every local workload's interface:
 *   moat_to_workload   (egress of the host-side interface: packets entering
 *                       the workload) judges ingress for flows toward it;
 *   moat_from_workload (ingress of the host-side interface: packets leaving
 *                       the workload) checks spoofing, judges egress for flows
 *                       it starts.
 * Connection tracking keeps both judgments of a flow with the snapshot
 * generation they were made with; replies pass when the flow's judgment for
 * this workload allows; a stale generation means judge again, so a rule
 * change cuts established flows at their next packet.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "lib/parse.h"
#include "lib/policy.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline void ct_key_of(const struct moat_pkt *p, bool reverse, struct moat_ct_key *k)
{
    __builtin_memset(k, 0, sizeof(*k));
    __builtin_memcpy(k->saddr, reverse ? p->daddr : p->saddr, 16);
    __builtin_memcpy(k->daddr, reverse ? p->saddr : p->daddr, 16);
    k->sport = reverse ? p->dport : p->sport;
    k->dport = reverse ? p->sport : p->dport;
    k->proto = p->proto;
}

static __always_inline void count(__u32 rule_id, __u32 len, bool new_flow)
{
    struct moat_rule_counters *c = bpf_map_lookup_elem(&moat_counters, &rule_id);
    if (!c) {
        struct moat_rule_counters init = {0};
        bpf_map_update_elem(&moat_counters, &rule_id, &init, BPF_NOEXIST);
        c = bpf_map_lookup_elem(&moat_counters, &rule_id);
        if (!c)
            return;
    }
    c->packets++;
    c->bytes += len;
    if (new_flow)
        c->flows++;
}

static __always_inline void emit(__u32 kind, __u32 reason, __u8 dir, const struct moat_judgment *j,
                                 const struct moat_ct_key *flow, struct __sk_buff *skb)
{
    struct moat_event *e = bpf_ringbuf_reserve(&moat_events, sizeof(*e), 0);
    if (!e)
        return;
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = bpf_ktime_get_ns();
    e->kind = kind;
    e->reason = reason;
    e->dir = dir;
    e->action = j->action;
    e->applied = j->applied;
    e->proto = flow->proto;
    e->rule_id = j->rule_id;
    e->cluster = j->cluster;
    e->ifindex = skb->ifindex;
    e->src_identity = dir == MOAT_ABI_DIR_INGRESS ? j->peer : j->subject;
    e->dst_identity = dir == MOAT_ABI_DIR_INGRESS ? j->subject : j->peer;
    __builtin_memcpy(e->saddr, flow->saddr, 16);
    __builtin_memcpy(e->daddr, flow->daddr, 16);
    e->sport = flow->sport;
    e->dport = flow->dport;
    bpf_ringbuf_submit(e, 0);
}

/* Packets leaving a workload must carry one of its own addresses. */
static __always_inline int spoofed(struct __sk_buff *skb, const struct moat_pkt *p,
                                   struct moat_snapshot *s)
{
    __u32 ifindex = skb->ifindex;
    struct moat_iface *iface = bpf_map_lookup_elem(&moat_ifaces, &ifindex);
    if (!iface || p->is_ndp)
        return TC_ACT_OK;
    /* IPv6 link-local and unspecified (::) sources are how neighbour discovery
     * and multicast listener reports work. */
    if ((p->saddr[0] == 0xfe && (p->saddr[1] & 0xc0) == 0x80))
        return TC_ACT_OK;
    __u64 hi, lo;
    __builtin_memcpy(&hi, p->saddr, 8);
    __builtin_memcpy(&lo, p->saddr + 8, 8);
    if (!hi && !lo)
        return TC_ACT_OK;
    struct moat_ifaddr_key key = {.ifindex = ifindex};
    __builtin_memcpy(key.addr, p->saddr, 16);
    if (bpf_map_lookup_elem(&moat_ifaddrs, &key))
        return TC_ACT_OK;
    __u32 c = iface->cluster;
    struct moat_cluster_cfg *cfg = bpf_map_lookup_elem(s->clusters, &c);
    if (!cfg || !(cfg->flags & (MOAT_ABI_CF_SPOOF_BLOCK | MOAT_ABI_CF_SPOOF_ALERT)))
        return TC_ACT_OK;
    bool block = cfg->flags & MOAT_ABI_CF_SPOOF_BLOCK;
    struct moat_judgment j = {.judged = 1,
                              .record = 1,
                              .cluster = c,
                              .action = block ? MOAT_ABI_BLOCK : MOAT_ABI_ALERT,
                              .applied = block ? MOAT_ABI_BLOCK : MOAT_ABI_ALERT};
    struct moat_ct_key k;
    ct_key_of(p, false, &k);
    emit(MOAT_EV_SPOOFING, block ? MOAT_DROP_SPOOFED : MOAT_DROP_NONE, MOAT_ABI_DIR_EGRESS, &j, &k,
         skb);
    return block ? TC_ACT_SHOT : TC_ACT_OK;
}

/*
 * The judgment this hook owns for the flow: ingress when this workload is the
 * flow's destination, egress when it is the source. Made (or made again when
 * stale) here, then applied.
 */
static __always_inline int enforce(struct __sk_buff *skb, struct moat_snapshot *s,
                                   const struct moat_pkt *p, bool to_workload)
{
    struct moat_ct_key fwd, rev;
    ct_key_of(p, false, &fwd);
    ct_key_of(p, true, &rev);
    struct moat_ct_val *ct = bpf_map_lookup_elem(&moat_ct, &fwd);
    bool reply = false;
    if (!ct) {
        ct = bpf_map_lookup_elem(&moat_ct, &rev);
        reply = ct != NULL;
    }
    if (!ct && p->is_icmp_error)
        return TC_ACT_SHOT; /* an ICMP error for no known flow */
    struct moat_ct_key *flow = reply ? &rev : &fwd;
    bool is_dst = to_workload != reply; /* this workload is the flow's destination */
    __u8 dir = is_dst ? MOAT_ABI_DIR_INGRESS : MOAT_ABI_DIR_EGRESS;
    struct moat_ct_val fresh = {0};
    bool new_flow = !ct;
    if (!ct)
        ct = &fresh;
    __u32 *gen = is_dst ? &ct->in_gen : &ct->eg_gen;
    __u8 *applied = is_dst ? &ct->in_applied : &ct->eg_applied;
    __u32 *rule = is_dst ? &ct->in_rule : &ct->eg_rule;
    bool judged_now = false;
    struct moat_judgment j;
    if (*gen != s->generation || *applied == MOAT_CT_UNDECIDED) {
        __u8 before = *applied;
        judge(s, dir, flow->saddr, flow->daddr, flow->proto, flow->dport, &j);
        *applied = j.judged ? j.applied : MOAT_CT_NA;
        *rule = j.rule_id;
        *gen = s->generation;
        judged_now = j.judged;
        if (j.record && before == MOAT_CT_UNDECIDED)
            emit(MOAT_EV_POLICY, j.applied == MOAT_ABI_BLOCK ? MOAT_DROP_POLICY : 0, dir, &j, flow,
                 skb);
        else if (j.applied == MOAT_ABI_BLOCK && before != MOAT_ABI_BLOCK)
            emit(MOAT_EV_CUT, MOAT_DROP_CUT, dir, &j, flow, skb);
    }
    ct->last_seen_ns = bpf_ktime_get_ns();
    if (new_flow)
        bpf_map_update_elem(&moat_ct, &fwd, &fresh, BPF_ANY);
    if (*applied != MOAT_CT_NA)
        count(*rule, p->len, judged_now);
    return *applied == MOAT_ABI_BLOCK ? TC_ACT_SHOT : TC_ACT_OK;
}

static __always_inline int handle(struct __sk_buff *skb, bool to_workload)
{
    struct moat_pkt p;
    int rc = parse_packet(skb, &p);
    if (rc > 0)
        return TC_ACT_OK; /* not IP (ARP): not judged */
    if (rc < 0)
        return TC_ACT_SHOT; /* truncated IP header */
    if (p.is_ndp)
        return TC_ACT_OK;
    struct moat_snapshot s;
    if (snapshot_get(&s) < 0)
        return TC_ACT_OK;
    if (!to_workload && spoofed(skb, &p, &s) == TC_ACT_SHOT)
        return TC_ACT_SHOT;
    return enforce(skb, &s, &p, to_workload);
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
