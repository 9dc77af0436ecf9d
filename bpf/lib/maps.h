/*
 * maps: every map of the datapath, pinned by name under the node's bpffs
 * folder (/sys/fs/bpf/moat/<node>/), so enforcement and connection state
 * survive a restart of moatd. Layouts are in include/moat/abi.h.
 */
#ifndef MOAT_BPF_MAPS_H
#define MOAT_BPF_MAPS_H

#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

#include "moat/abi.h"

/* Inner map templates: the agent creates maps like these for every snapshot. */
struct moat_addr_inner {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct moat_addr_key);
    __type(value, struct moat_addr_val);
};

struct moat_rows_inner {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1);
    __type(key, struct moat_row_key);
    __type(value, struct moat_row_val);
};

struct moat_ivals_inner {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_INNER_MAP); /* each snapshot sizes its own array */
    __type(key, __u32);
    __type(value, struct moat_interval);
};

struct moat_clusters_inner {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MOAT_ABI_MAX_CLUSTERS);
    __type(key, __u32);
    __type(value, struct moat_cluster_cfg);
};

struct moat_resolvers_inner {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1);
    __type(key, struct moat_resolver_key);
    __type(value, __u8);
};

struct moat_ti_inner {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct moat_ti_key);
    __type(value, struct moat_ti_val);
};

/* See struct moat_btf_anchor in abi.h. */
struct moat_btf_anchor moat_btf_anchor;

#define MOAT_SLOTS(name, inner)                                                                    \
    struct {                                                                                       \
        __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);                                                  \
        __uint(max_entries, 2);                                                                    \
        __type(key, __u32);                                                                        \
        __uint(pinning, LIBBPF_PIN_BY_NAME);                                                       \
        __array(values, struct inner);                                                             \
    } name SEC(".maps")

MOAT_SLOTS(moat_addr_slots, moat_addr_inner);
MOAT_SLOTS(moat_rows_slots, moat_rows_inner);
MOAT_SLOTS(moat_ivals_slots, moat_ivals_inner);
MOAT_SLOTS(moat_cluster_slots, moat_clusters_inner);
MOAT_SLOTS(moat_resolver_slots, moat_resolvers_inner);
/* The threat list has its own generation (moat_cfg.ti_generation): a list of a
 * million prefixes is not rebuilt with every policy. */
MOAT_SLOTS(moat_ti_slots, moat_ti_inner);

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct moat_cfg);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_cfg SEC(".maps");

/* Connection tracking (abi.h: struct moat_ct_key): established flows apart
 * from unanswered ones, so floods of new flows cannot evict established
 * ones. Per-CPU LRU lists: no list shared (and locked) across CPUs. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 262144);
    __uint(map_flags, BPF_F_NO_COMMON_LRU);
    __type(key, struct moat_ct_key);
    __type(value, struct moat_ct_val);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_ct_est SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 131072);
    __uint(map_flags, BPF_F_NO_COMMON_LRU);
    __type(key, struct moat_ct_key);
    __type(value, struct moat_ct_val);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_ct_new SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __uint(map_flags, BPF_F_NO_COMMON_LRU);
    __type(key, struct moat_frag_key);
    __type(value, struct moat_frag_val);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_frags SEC(".maps");

/* Local workload interfaces: by index below MOAT_IFINDEX_DIRECT, by hash above. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MOAT_IFINDEX_DIRECT);
    __type(key, __u32);
    __type(value, struct moat_iface);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_ifaces SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct moat_iface);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_ifaces_hi SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct moat_ifaddr_key);
    __type(value, __u32);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_ifaddrs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct moat_mac_key);
    __type(value, __u32); /* ifindex */
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_mac_owner SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MOAT_COUNTER_SLOTS);
    __type(key, __u32);
    __type(value, struct moat_rule_counters);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_counters SEC(".maps");

/* Rule id -> counter slot (written by the agent before a snapshot using the rule). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MOAT_COUNTER_SLOTS);
    __type(key, __u32);
    __type(value, __u32);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_rule_slot SEC(".maps");

/* ---- detections (abi.h) ---- */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct moat_quarantine_key);
    __type(value, struct moat_quarantine_val);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_quarantine SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct moat_burst_key);
    __type(value, struct moat_burst_val);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_bursts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct moat_scan_key);
    __type(value, struct moat_scan_val);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_scans SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 262144);
    __type(key, struct moat_seen_key);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_scan_seen SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct moat_dnsq_key);
    __type(value, struct moat_dnsq_val);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_dnsq SEC(".maps");

/* The detection epoch: bumped when a quarantine starts (here) or a threat list changes
 * (the agent); a flow checked at an older one is checked again at its next packet. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_depoch SEC(".maps");

/* Dropped packets per MOAT_DROP_* reason. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MOAT_DROP_MAX);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_drops SEC(".maps");

/* Events sent, held back and lost, per MOAT_EVS_*. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MOAT_EVS_MAX);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_evstats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct moat_evlimit_key);
    __type(value, struct moat_evlimit_val);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_evlimit SEC(".maps");

/* The node-wide token bucket of each CPU (index 0), and per cluster index
 * the events it held back (1 + cluster), which the agent reports. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1 + MOAT_ABI_MAX_CLUSTERS);
    __type(key, __u32);
    __type(value, struct moat_evlimit_val);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_evnode SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_events SEC(".maps");

#endif
