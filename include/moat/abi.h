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
    moat_u32 generation;    /* bumped per policy update; low bit = active slot */
    moat_u32 ti_generation; /* the threat list in force (moat_ti_slots), 0: none */
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

/* Detections of a cluster (moat_cluster_cfg.det_flags), SPEC §6. */
#define MOAT_DET_BF_ON      0x01 /* brute force: count attempts on the auth ports */
#define MOAT_DET_BF_BLOCK   0x02 /* ... and quarantine the source */
#define MOAT_DET_SCAN_ON    0x04 /* port scan: count distinct (workload, port) per source */
#define MOAT_DET_SCAN_BLOCK 0x08
#define MOAT_DET_DNS_ON     0x10 /* DNS hijacking: approved resolvers, answers match queries */
#define MOAT_DET_DNS_BLOCK  0x20
#define MOAT_DET_TI_ON      0x40 /* threat intelligence: listed addresses */
#define MOAT_DET_TI_BLOCK   0x80

#define MOAT_ABI_AUTH_PORTS 32 /* as MOAT_BF_PORTS_MAX in lib/model.h */

struct moat_cluster_cfg {
    moat_u8 flags;
    moat_u8 default_action;
    moat_u16 det_flags;
    moat_u16 nauth;
    moat_u16 auth_ports[MOAT_ABI_AUTH_PORTS];
    moat_u16 nresolvers;   /* approved DNS resolvers known: none, no DNS checks */
    moat_u32 bf_threshold; /* attempts, above which it is brute force */
    moat_u32 bf_window_s;
    moat_u32 bf_quarantine_s;
    moat_u32 scan_threshold; /* distinct (workload, port) pairs */
    moat_u32 scan_window_s;
    moat_u32 scan_quarantine_s;
};

/* Approved DNS resolvers of a cluster (an inner map of the snapshot: hash). */
struct moat_resolver_key {
    moat_u32 cluster;
    moat_u8 addr[16];
};

/* A local workload's further addresses (hash), beyond those inline in its moat_iface. */
struct moat_ifaddr_key {
    moat_u32 ifindex;
    moat_u8 addr[16];
};

/*
 * Connection tracking: one entry per flow under a canonical key (the two
 * endpoints ordered, so both directions find the same entry with one
 * lookup); `orig_is_a` says which endpoint opened the flow. Flows start in
 * moat_ct_new and move to moat_ct_est once the other side answers (TCP: a
 * SYN-ACK or later non-RST packet back; UDP and ICMP: any packet back), so
 * a flood of new flows (blocked or not) can only evict other unanswered
 * flows, never an established one.
 */
struct moat_ct_key {
    moat_u8 a_addr[16];
    moat_u8 b_addr[16];
    moat_u16 a_port;
    moat_u16 b_port;
    moat_u8 proto;
    moat_u8 pad[3];
};

#define MOAT_CT_UNDECIDED 0 /* this direction was not judged on this node yet */
#define MOAT_CT_NA        4 /* this direction is not judged (not a workload here) */

/* Connection states (moat_ct_val.state); each has its own idle timeout. */
#define MOAT_CTS_NEW       0 /* only the opening side has sent (TCP: SYN sent) */
#define MOAT_CTS_EST       1 /* both sides have sent */
#define MOAT_CTS_CLOSING   2 /* TCP: FIN from both sides, or RST */
#define MOAT_CTS_RECOVERED 3 /* TCP met mid-stream (no SYN), not yet answered */

/* moat_ct_val.seen bits */
#define MOAT_CT_SEEN_ORIG  0x1
#define MOAT_CT_SEEN_REPLY 0x2
#define MOAT_CT_FIN_ORIG   0x4
#define MOAT_CT_FIN_REPLY  0x8

/*
 * Each flow has two judgments: ingress (for its destination workload) and
 * egress (for its source workload), each made at the hook of that workload's
 * interface and stamped with the snapshot generation it was made with; a
 * stale stamp means "judge again" (a rule change re-evaluates flows).
 */
struct moat_ct_val {
    moat_u64 last_seen_ns; /* bpf_ktime_get_coarse_ns() */
    moat_u32 in_gen;
    moat_u32 eg_gen;
    moat_u32 in_slot; /* counter slot of the rule behind the judgment (moat_rule_slot) */
    moat_u32 eg_slot;
    moat_u8 in_applied; /* MOAT_ABI_* or MOAT_CT_UNDECIDED / MOAT_CT_NA */
    moat_u8 eg_applied;
    moat_u8 orig_is_a; /* the flow was opened by endpoint a of the key */
    moat_u8 state;     /* MOAT_CTS_* */
    moat_u8 seen;      /* MOAT_CT_SEEN_* / MOAT_CT_FIN_* */
    moat_u8 det_block; /* a detection (quarantine, threat list) blocks the flow */
    moat_u16 pad;
    moat_u32 depoch; /* the detection epoch the flow was last checked at (moat_depoch) */
    moat_u32 pad2;
};

/*
 * Fragments: the first fragment of a datagram records its ports under
 * (source, destination, protocol, fragment id); later fragments, which carry
 * no ports, take them from here and are then judged as packets of that flow.
 */
struct moat_frag_key {
    moat_u8 saddr[16];
    moat_u8 daddr[16];
    moat_u32 id; /* IPv4: 16 bits; IPv6: 32 */
    moat_u8 proto;
    moat_u8 v6;
    moat_u16 pad;
};

struct moat_frag_val {
    moat_u64 ts_ns;
    moat_u16 sport;
    moat_u16 dport;
    moat_u32 pad;
};

/*
 * Local workload interfaces (hash by ifindex). The verdict belongs to the
 * interface: its workload is the subject of every packet on it, found
 * through its first address in the snapshot's address map. Up to
 * MOAT_IFACE_ADDRS of its addresses are inline (the common case needs no
 * second lookup); further ones are in moat_ifaddrs. The workload's MAC is
 * learned by the datapath from its first frame (`mac_learned`); the agent
 * keeps it across re-attaches of the same interface.
 */
#define MOAT_IFACE_ADDRS 4

#define MOAT_IFF_MORE_ADDRS 0x1 /* further addresses in moat_ifaddrs */
#define MOAT_IFF_PRESENT    0x2 /* the entry is in use (moat_ifaces is an array) */

/* Interfaces with a smaller ifindex are found by index (moat_ifaces), the others by hash
 * (moat_ifaces_hi): an array lookup costs a fraction of a hash lookup per packet. */
#define MOAT_IFINDEX_DIRECT 16384

struct moat_iface {
    moat_u32 cluster;
    moat_u16 flags;
    moat_u8 naddrs; /* inline addresses used */
    moat_u8 mac_learned;
    moat_u8 mac[6];
    moat_u16 pad;
    moat_u8 addrs[MOAT_IFACE_ADDRS][16];
};

/* The owner of a learned MAC (hash: MAC in the first 6 bytes -> ifindex). */
struct moat_mac_key {
    moat_u8 mac[6];
    moat_u16 pad;
};

/*
 * Per-rule counters: a per-CPU array indexed by counter slot. The agent
 * gives every rule id a slot (moat_rule_slot, pinned, so slots and counts
 * survive restarts); slot 0 counts the default action, MOAT_SLOT_NONE what
 * no slot was found for. A judgment stores its slot in the flow's entry, so
 * a packet counts with one array lookup.
 */
#define MOAT_COUNTER_SLOTS 65536
#define MOAT_SLOT_DEFAULT  0
#define MOAT_SLOT_NONE     (MOAT_COUNTER_SLOTS - 1)

struct moat_rule_counters {
    moat_u64 flows;
    moat_u64 packets;
    moat_u64 bytes;
};

/*
 * Detections (SPEC §6). Counting is in the kernel, per CPU-shared LRU maps,
 * with two buckets per window: the estimate of attempts in the last window
 * W at time t is cur + prev * (1 - (t - start) / W), which is off by at most
 * the attempts of the previous bucket that fall outside the window (an
 * overestimate by at most prev: a burst is never missed, a slow trickle just
 * under the threshold can be reported one window early).
 */

/* A quarantined source (LRU hash): no new connection from it to the cluster's workloads. */
struct moat_quarantine_key {
    moat_u32 cluster;
    moat_u8 addr[16];
};

#define MOAT_Q_BRUTE_FORCE 1
#define MOAT_Q_PORT_SCAN   2
#define MOAT_Q_REASON_MASK 0xffu
#define MOAT_Q_FROM_SERVER 0x100u /* installed by moatd from the server (another node's) */

struct moat_quarantine_val {
    moat_u64 until_ns; /* bpf_ktime_get_ns() when it ends */
    moat_u64 since_ns;
    moat_u32 reason;  /* MOAT_Q_* (and MOAT_Q_FROM_SERVER) */
    moat_u32 secs;    /* as configured */
    moat_u64 dropped; /* connection attempts dropped meanwhile */
};

/* Brute force: attempts of one source on one workload's auth port. */
struct moat_burst_key {
    moat_u32 cluster;
    moat_u8 src[16];
    moat_u8 dst[16];
    moat_u16 port;
    moat_u16 pad;
};

struct moat_burst_val {
    moat_u64 start_ns; /* start of the current bucket */
    moat_u64 first_ns; /* first attempt of this burst */
    moat_u64 last_ns;
    moat_u64 reported_ns; /* last event */
    moat_u32 cur, prev;   /* attempts in the current and the previous bucket */
    moat_u32 total;       /* attempts since the first */
    moat_u32 reported;    /* of total, told in events */
    moat_u16 port;
    moat_u8 alerted;
    moat_u8 pad[3];
    moat_u32 pad2[2];
};

/* Port scan: distinct (workload, port) pairs one source touched. */
struct moat_scan_key {
    moat_u32 cluster;
    moat_u8 src[16];
};

#define MOAT_SCAN_SAMPLE 8

struct moat_scan_val {
    moat_u64 start_ns;
    moat_u64 first_ns;
    moat_u64 last_ns;
    moat_u64 reported_ns;
    moat_u32 cur, prev; /* distinct pairs first seen in the current / previous bucket */
    moat_u32 total, reported;
    moat_u16 sample[MOAT_SCAN_SAMPLE]; /* the first ports touched */
};

/* An outstanding DNS query (LRU hash): a workload's, to a resolver, by transaction id. */
struct moat_dnsq_key {
    moat_u8 client[16];
    moat_u8 resolver[16];
    moat_u16 client_port;
    moat_u16 txid;
    moat_u32 cluster;
};

struct moat_dnsq_val {
    moat_u64 ts_ns;
    moat_u32 question; /* hash of the question name (lower case), type and class */
    moat_u32 pad;
};

/* Threat intelligence (LPM trie per list generation): (cluster, prefix) -> label. */
struct moat_ti_key {
    moat_u32 prefixlen; /* 32 (the cluster) + the address prefix length */
    moat_u32 cluster;
    moat_u8 addr[16];
};

/* Port scan: when a source last touched one (workload, port) pair. */
struct moat_seen_key {
    moat_u32 cluster;
    moat_u8 src[16];
    moat_u8 dst[16];
    moat_u16 port;
    moat_u8 proto;
    moat_u8 pad;
};

struct moat_ti_val {
    moat_u32 label; /* index into the agent's list of labels */
    moat_u8 plen;   /* the matched prefix: length in the 128-bit form */
    moat_u8 pad[3];
    moat_u8 addr[16];
};

/* Events (ring buffer). Kinds and drop reasons have stable numbers. */
#define MOAT_EV_POLICY      1 /* a new flow judged block or alert (or would-block) */
#define MOAT_EV_SPOOFING    2 /* a workload sent what it may not: a foreign address, ARP/ND, RA... */
#define MOAT_EV_CUT         3 /* an established flow became blocked after a policy change */
#define MOAT_EV_SUMMARY     4 /* events of one (source, kind) not sent one by one (rate limit) */
#define MOAT_EV_BRUTE_FORCE 5 /* count: attempts since the last event; aux: the window (s) */
#define MOAT_EV_PORT_SCAN   6 /* count: distinct pairs since the last event; aux: the window */
#define MOAT_EV_DNS_HIJACK  7 /* reason: MOAT_DROP_DNS_* */
#define MOAT_EV_THREAT      8 /* aux: the list's label index; waddr: the matched prefix */
#define MOAT_EV_QUARANTINE  9 /* a quarantined source's connection dropped; aux: MOAT_Q_* */

/*
 * Why a packet was dropped (also moat_drops' index). Every drop is counted;
 * those marked (event) also send a spoofing event.
 */
#define MOAT_DROP_NONE          0
#define MOAT_DROP_POLICY        1  /* a block verdict */
#define MOAT_DROP_SPOOFED       2  /* source not the workload's own (event) */
#define MOAT_DROP_CUT           3  /* established flow, now blocked */
#define MOAT_DROP_TRUNCATED     4  /* headers cut short */
#define MOAT_DROP_EXTHDR_CHAIN  5  /* IPv6 extension headers longer than the bound */
#define MOAT_DROP_ROUTING_HDR   6  /* IPv6 routing header with segments left */
#define MOAT_DROP_FRAG_NO_FIRST 7  /* a later fragment whose first was never seen */
#define MOAT_DROP_FRAG_SHORT    8  /* a first fragment too short for the transport header */
#define MOAT_DROP_ICMP_ERROR    9  /* an ICMP error that belongs to no known flow */
#define MOAT_DROP_NOT_ADDRESSED 10 /* unicast to an address that is not the workload's */
#define MOAT_DROP_ETHERTYPE     11 /* not IPv4, IPv6 or ARP */
#define MOAT_DROP_ARP_SPOOF     12 /* ARP claiming an address not the workload's (event) */
#define MOAT_DROP_ND_SPOOF      13 /* NS/NA claiming an address not the workload's (event) */
#define MOAT_DROP_ROUTER        14 /* router advertisement or redirect from a workload (event) */
#define MOAT_DROP_DHCP_SERVER   15 /* DHCP/DHCPv6 server message from a workload (event) */
#define MOAT_DROP_LINK_LOCAL    16 /* link-local or unspecified source outside ND/DHCP (event) */
#define MOAT_DROP_MAC_SPOOF     17 /* frame from a MAC not the workload's (event) */
#define MOAT_DROP_NO_WORKLOAD   18 /* the interface's workload is not in the policy */
#define MOAT_DROP_QUARANTINED   19 /* from a quarantined source (brute force, port scan) */
#define MOAT_DROP_DNS_RESOLVER  20 /* DNS to or from a resolver that is not approved */
#define MOAT_DROP_DNS_NO_QUERY  21 /* a DNS answer no outstanding query asked for */
#define MOAT_DROP_DNS_QUESTION  22 /* a DNS answer to another question */
#define MOAT_DROP_DNS_MALFORMED 23 /* a DNS message that does not parse */
#define MOAT_DROP_THREAT        24 /* to or from a listed address (threat intelligence) */
#define MOAT_DROP_MAX           25

/* moat_evstats indexes (per-CPU array): what happened to events. */
#define MOAT_EVS_SENT       0
#define MOAT_EVS_SUPPRESSED 1 /* held back by the per-source limit (reported in summaries) */
#define MOAT_EVS_NODE_LIMIT 2 /* held back by the node-wide limit */
#define MOAT_EVS_LOST       3 /* the ring buffer was full */
#define MOAT_EVS_MAX        4

/*
 * Event rate limit: a token bucket per (source, cluster, kind, applied
 * action) on each CPU (LRU per-CPU hash). The source is the flow's source
 * address, for spoofing the sending workload's own address. An event sent
 * carries the number held back for its key since the previous one; the
 * agent reports what is left in idle buckets as a summary.
 */
#define MOAT_EVL_BURST     32   /* events at once per key and CPU */
#define MOAT_EVL_PER_SEC   8    /* then this many per second */
#define MOAT_EVL_NODE_RATE 2000 /* events per second per CPU, all keys together */

struct moat_evlimit_key {
    moat_u8 addr[16];
    moat_u16 cluster;
    moat_u8 kind;
    moat_u8 applied;
};

struct moat_evlimit_val {
    moat_u64 last_ns; /* when tokens were last counted */
    moat_u32 tokens;  /* in 1/1000 of an event */
    moat_u32 held;    /* events held back since the last one sent */
};

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
    moat_u8 saddr[16]; /* the flow's (as claimed, for spoofing) */
    moat_u8 daddr[16];
    moat_u16 sport;
    moat_u16 dport;
    moat_u32 held;     /* events of this key held back since the previous one (rate limit) */
    moat_u8 waddr[16]; /* the hook's workload's own (first) address; threat: the prefix */
    moat_u32 count;    /* detections: attempts or pairs this event stands for; threat: length */
    moat_u32 aux;      /* detections: the window (s); quarantine: MOAT_Q_*; threat: label */
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
    struct moat_resolver_key resolver_key;
    struct moat_ti_key ti_key;
    struct moat_ti_val ti_val;
};

MOAT_STATIC_ASSERT(sizeof(struct moat_cfg) == 8, "moat_cfg layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_addr_key) == 20, "moat_addr_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_addr_val) == 8, "moat_addr_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_row_key) == 12, "moat_row_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_row_val) == 8, "moat_row_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_interval) == 12, "moat_interval layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_cluster_cfg) == 96, "moat_cluster_cfg layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_resolver_key) == 20, "moat_resolver_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_quarantine_key) == 20, "moat_quarantine_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_quarantine_val) == 32, "moat_quarantine_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_burst_key) == 40, "moat_burst_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_burst_val) == 64, "moat_burst_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_scan_key) == 20, "moat_scan_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_scan_val) == 64, "moat_scan_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_dnsq_key) == 40, "moat_dnsq_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_dnsq_val) == 16, "moat_dnsq_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_ti_key) == 24, "moat_ti_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_seen_key) == 40, "moat_seen_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_ti_val) == 24, "moat_ti_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_ifaddr_key) == 20, "moat_ifaddr_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_ct_key) == 40, "moat_ct_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_ct_val) == 40, "moat_ct_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_frag_key) == 40, "moat_frag_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_frag_val) == 16, "moat_frag_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_iface) == 80, "moat_iface layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_mac_key) == 8, "moat_mac_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_evlimit_key) == 20, "moat_evlimit_key layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_evlimit_val) == 16, "moat_evlimit_val layout");
MOAT_STATIC_ASSERT(sizeof(struct moat_event) == 104, "moat_event layout");

#endif
