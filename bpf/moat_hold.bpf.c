/*
 * moat_hold: the fail-closed program moatd puts on a new host-side interface
 * the moment it appears on a watched bridge (agent/hold.c), before the
 * container engine or the API server has said which workload it belongs to.
 * It drops every packet in both directions, ARP and neighbour discovery
 * included: nothing of an unidentified workload is let through. Once the
 * workload is identified, moatd replaces this filter with moat_tc's programs
 * in one tc operation (same handle and priority), so there is no moment with
 * neither. Drops are counted per interface so `moatd status` can show them.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

/* ifindex -> packets dropped while held (both directions). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u64);
} moat_hold_drops SEC(".maps");

static __always_inline int hold(struct __sk_buff *skb)
{
    __u32 ifindex = skb->ifindex;
    __u64 *n = bpf_map_lookup_elem(&moat_hold_drops, &ifindex);
    if (n) {
        __sync_fetch_and_add(n, 1);
    } else {
        __u64 one = 1;
        bpf_map_update_elem(&moat_hold_drops, &ifindex, &one, BPF_NOEXIST);
    }
    return TC_ACT_SHOT;
}

SEC("tc")
int moat_hold_to_workload(struct __sk_buff *skb)
{
    return hold(skb);
}

SEC("tc")
int moat_hold_from_workload(struct __sk_buff *skb)
{
    return hold(skb);
}
