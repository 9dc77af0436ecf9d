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

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct moat_cfg);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_cfg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 262144);
    __type(key, struct moat_ct_key);
    __type(value, struct moat_ct_val);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_ct SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct moat_iface);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_ifaces SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct moat_ifaddr_key);
    __type(value, __u32);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_ifaddrs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u32);
    __type(value, struct moat_rule_counters);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} moat_events SEC(".maps");

#endif
