/*
 * abi: the structures, map layouts and codes shared by the eBPF datapath
 * (bpf/) and user space (agent/). One definition, checked by static asserts
 * on sizes, so kernel and user space cannot drift apart.
 *
 * Addresses are 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so IPv6
 * is an addition to the parsers, not a change of any key.
 *
 * A policy snapshot (address map, policy rows, port intervals, clusters)
 * lives in inner maps reached through outer array-of-maps with two slots; the
 * agent fills fresh inner maps in the idle slot and then bumps the
 * generation in moat_cfg, whose low bit names the active slot. A packet reads
 * the generation once, so it is judged by one whole snapshot, never a
 * half-written one, and there is no allow-all moment.
 */
#ifndef MOAT_ABI_H
#define MOAT_ABI_H

#ifdef __BPF__
#include <linux/types.h>
typedef __u8 moat_u8;
typedef __u16 moat_u16;
typedef __u32 moat_u32;
typedef __u64 moat_u64;
#define MOAT_STATIC_ASSERT(c, m) _Static_assert(c, m)
#else
#include <assert.h>
#include <stdint.h>
typedef uint8_t moat_u8;
typedef uint16_t moat_u16;
typedef uint32_t moat_u32;
typedef uint64_t moat_u64;
#define MOAT_STATIC_ASSERT(c, m) static_assert(c, m)
#endif

/* Verdict actions: the same numbers as enum moat_action in lib/model.h. */
#define MOAT_ABI_BLOCK 1
#define MOAT_ABI_ALERT 2
#define MOAT_ABI_ALLOW 3

#define MOAT_ABI_DIR_INGRESS 0 /* judged for the destination workload */
#define MOAT_ABI_DIR_EGRESS  1 /* judged for the source workload (ipblock rules) */

#define MOAT_ABI_PCLASS_OTHER 0
#define MOAT_ABI_PCLASS_TCP   1
#define MOAT_ABI_PCLASS_UDP   2

#define MOAT_ABI_ID_ANY   0
#define MOAT_ABI_ID_WORLD 1

#define MOAT_ABI_IDENT_WORLD    0
#define MOAT_ABI_IDENT_WORKLOAD 1
#define MOAT_ABI_IDENT_HOST     2
#define MOAT_ABI_IDENT_OUTSIDE  3

#define MOAT_ABI_MAX_CLUSTERS 256
#define MOAT_ABI_SEARCH_STEPS 17 /* binary search over at most 65536 intervals per row */

/* moat_cfg[0] */
struct moat_cfg {
    moat_u32 generation; /* bumped per policy update; low bit = active slot */
    moat_u32 flags;
};

/* Address map (LPM trie). */
struct moat_addr_key {
    moat_u32 prefixlen; /* 0..128 */
    moat_u8 addr[16];
};

struct moat_addr_val {
    moat_u32 identity;
    moat_u16 kind;    /* MOAT_ABI_IDENT_* */
    moat_u16 cluster; /* index into the cluster array; workloads only */
};

/* Policy rows (hash): (direction, class, subject, peer) -> intervals[off, off+n). */
struct moat_row_key {
    moat_u8 dir;
    moat_u8 pclass;
    moat_u16 pad;
    moat_u32 subject;
    moat_u32 peer;
};

struct moat_row_val {
    moat_u32 off;
    moat_u32 n;
};

/* Port intervals (array), sorted per row; each holds its winning rule. */
struct moat_interval {
    moat_u16 lo;
    moat_u16 hi;
    moat_u32 rule_id;
    moat_u16 priority;
    moat_u8 action;
    moat_u8 pad;
};

/* Cluster settings (array, by cluster index). */
#define MOAT_ABI_CF_DEFENSE     0x1
#define MOAT_ABI_CF_MONITOR     0x2
#define MOAT_ABI_CF_SPOOF_BLOCK 0x4 /* spoofing detection on, action block */
#define MOAT_ABI_CF_SPOOF_ALERT 0x8 /* spoofing detection on, action alert */

struct moat_cluster_cfg {
    moat_u8 flags;
    moat_u8 default_action;
    moat_u16 pad;
};

/* Local workload interfaces and their own addresses (hash), for spoofing checks. */
struct moat_ifaddr_key {
    moat_u32 ifindex;
    moat_u8 addr[16];
};

/* Connection tracking (LRU hash), keyed by the tuple of the flow's first packet. */
struct moat_ct_key {
    moat_u8 saddr[16];
    moat_u8 daddr[16];
    moat_u16 sport;
    moat_u16 dport;
    moat_u8 proto;
    moat_u8 pad[3];
};

#define MOAT_CT_UNDECIDED 0 /* this direction was not judged on this node yet */
#define MOAT_CT_NA        4 /* this direction is not judged (not a workload here) */

/*
 * Each flow has two judgments: ingress (for its destination workload) and
 * egress (for its source workload), each made at the hook of that workload's
 * interface and stamped with the snapshot generation it was made with; a
 * stale stamp means "judge again" (a rule change re-evaluates flows).
 */
struct moat_ct_val {
    moat_u32 in_gen;
    moat_u32 eg_gen;
    moat_u8 in_applied; /* MOAT_ABI_* or MOAT_CT_UNDECIDED / MOAT_CT_NA */
    moat_u8 eg_applied;
    moat_u16 pad;
    moat_u32 in_rule;
    moat_u32 eg_rule;
    moat_u32 pad2;
    moat_u64 last_seen_ns;
};

/* Local workload interfaces (hash by ifindex). */
struct moat_iface {
    moat_u32 cluster;
    moat_u32 flags;
};

/* Per-rule counters (per-CPU hash by rule id; 0 = the default action). */
struct moat_rule_counters {
    moat_u64 flows;
    moat_u64 packets;
    moat_u64 bytes;
};

/* Events (ring buffer). Kinds and drop reasons have stable numbers. */
#define MOAT_EV_POLICY   1 /* a new flow judged block or alert (or would-block) */
#define MOAT_EV_SPOOFING 2 /* a packet left a workload with an address not its own */
#define MOAT_EV_CUT      3 /* an established flow became blocked after a policy change */

#define MOAT_DROP_NONE    0
#define MOAT_DROP_POLICY  1
#define MOAT_DROP_SPOOFED 2
#define MOAT_DROP_CUT     3

struct moat_event {
    moat_u64 ts_ns;
    moat_u32 kind;
    moat_u32 reason; /* MOAT_DROP_* */
    moat_u8 dir;
    moat_u8 action;  /* configured */
    moat_u8 applied; /* what the datapath did */
    moat_u8 proto;
    moat_u32 rule_id;
    moat_u32 cluster;
    moat_u32 ifindex;
    moat_u32 src_identity;
    moat_u32 dst_identity;
    moat_u8 saddr[16];
    moat_u8 daddr[16];
    moat_u16 sport;
    moat_u16 dport;
    moat_u32 pad;
};

/*
 * The datapath's inner map templates name their key and value types through
 * pointers only, which leaves them as forward declarations in BTF; a global of
 * this type makes clang emit the full types so libbpf can size the maps.
 */
struct moat_btf_anchor {
    struct moat_addr_key addr_key;
    struct moat_addr_val addr_val;
    struct moat_row_key row_key;
    struct moat_row_val row_val;
    struct moat_interval interval;
    struct moat_cluster_cfg cluster;
    struct moat_event event;
};

MOAT_STATIC_ASSERT(sizeof(struct moat_cfg) == 8, "moat_cfg layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_addr_key) == 20, "moat_addr_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_addr_val) == 8, "moat_addr_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_row_key) == 12, "moat_row_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_row_val) == 8, "moat_row_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_interval) == 12, "moat_interval layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_cluster_cfg) == 4, "moat_cluster_cfg layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_ifaddr_key) == 20, "moat_ifaddr_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_ct_key) == 40, "moat_ct_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_ct_val) == 32, "moat_ct_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_iface) == 8, "moat_iface layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_event) == 80, "moat_event layout");

#endif
