/*
 * lab_plan: the topology of a `moat lab` worked out from an inventory, with
 * no system calls — which network namespaces, bridges, veths and addresses
 * a lab has (docs/lab.md).
 *
 * Node N of lab L (nodes numbered 1.. in order of first appearance in the
 * files) is namespace `mlab-L-N` holding bridge `mbr0` with the node's
 * gateway address; workload W on it is namespace `mlab-L-N-W`, its `eth0`
 * joined by a veth to the bridge, the host-side end named after the
 * workload's `interface` (default `lxc-W`, cut to 15 characters). Namespace
 * names longer than LAB_NETNS_MAX, and any name that would clash with one
 * before it, are cut and end in a hash; namespace names keep the `mlab-L-`
 * prefix, and lab names have no '-', so the prefix says which lab a
 * namespace is of.
 *
 * IPv4 addresses: node k's /24 is that of its Node document's first IPv4
 * address, which is then the gateway; else that of the first IPv4 address
 * one of its workloads is given (gateway: the lowest free address); else
 * 10.244.k.0/24, or the next /24 of 10.244/16 nothing uses (gateway .1).
 * Workloads without an IPv4 address get .10, .11, ... skipping addresses in
 * use. Each node has its own /24; every node and workload has IPv4.
 *
 * IPv6 addresses, the same way with /64s: node k's /64 is that of its Node
 * document's first IPv6 address (the gateway), else that of the first IPv6
 * address one of its workloads is given (gateway: the lowest free host,
 * ::1 up), else — only with LAB_PLAN_DUAL_STACK — fd00:0:0:K::/64, or the
 * next such /64 nothing uses (gateway ::1). K and host numbers are written
 * with the decimal digits of the number (node 12: fd00:0:0:12::/64). With
 * LAB_PLAN_DUAL_STACK, a workload without an IPv6 address gets the host
 * number of its IPv4 address (10.244.1.10 -> fd00:0:0:1::10) when that is
 * free, else the first free of ::10, ::11, ... A node without a /64 has no
 * IPv6; so has a workload without an IPv6 address.
 *
 * The underlay joins the nodes: namespace `mlab-L-underlay` (reserved before
 * any node's name, so a node called `underlay` gets a hashed name) holds the
 * bridge `ubr0`; node k's `ul0` is a veth whose other end, `nodeK`, is a
 * port of that bridge, and holds 100.64.0.k/24 (LAB_UL_NET). Every node
 * routes each other node's /24 via that node's underlay address. When some
 * node has a /64, ul0 holds fd00:ffff::k/64 (LAB_UL6_TEXT) too and every
 * node routes each other node's /64 via that node's underlay IPv6 address.
 * No address of the files may lie in either underlay subnet (a planning
 * error). Every lab, even one of a single node, has an underlay.
 *
 * The same struct lab is what the state file holds (lab_state.h).
 */
#ifndef MOAT_LAB_PLAN_H
#define MOAT_LAB_PLAN_H

#include "addr.h"
#include "diag.h"

#include <stdbool.h>
#include <stddef.h>

struct moat_policy;

#define LAB_NAME_MAX      16          /* lab names: 1..16 of [A-Za-z0-9_] */
#define LAB_NETNS_MAX     60          /* namespace names are cut to this */
#define LAB_IFNAME_MAX    15          /* IFNAMSIZ - 1 */
#define LAB_BRIDGE        "mbr0"      /* the bridge in every node namespace */
#define LAB_WL_IFNAME     "eth0"      /* the workload end of its veth */
#define LAB_PREFIX_LEN    24          /* every node has one IPv4 /24 */
#define LAB_FIRST_HOST    10          /* assigned workload addresses start at .10 */
#define LAB_UL_NETNS      "underlay"  /* the underlay namespace is mlab-L-underlay */
#define LAB_UL_BRIDGE     "ubr0"      /* the bridge in the underlay namespace */
#define LAB_UL_IFNAME     "ul0"       /* a node's end of its underlay veth */
#define LAB_UL_NET        0x64400000u /* 100.64.0.0/24: node k (1..254) is 100.64.0.k */
#define LAB_UL_TEXT       "100.64.0.0/24"
#define LAB_NODES_MAX     254               /* one underlay address each */
#define LAB_PREFIX6_LEN   64                /* every node with IPv6 has one /64 */
#define LAB_UL6_TEXT      "fd00:ffff::/64"  /* node k is fd00:ffff::k */
#define LAB_DEFAULT6_TEXT "fd00:0:0:K::/64" /* node K's /64 with --dual-stack */

/* lab_plan flags */
#define LAB_PLAN_DUAL_STACK 1u /* every node gets a /64, every workload an IPv6 address */

struct lab_node {
    char *name;
    char *cluster; /* may be NULL */
    char *netns;
    struct moat_addr gateway;   /* IPv4: on mbr0, the node's address (`host`) */
    struct moat_prefix subnet;  /* gateway's /24 */
    struct moat_addr ul_addr;   /* on ul0 (100.64.0.k); unset when the lab has no underlay */
    struct moat_addr gateway6;  /* IPv6 on mbr0, when subnet6 is set */
    struct moat_prefix subnet6; /* gateway6's /64; len 0: the node has no IPv6 */
    struct moat_addr ul_addr6;  /* on ul0 (fd00:ffff::k), when lab_has_ipv6 */
    bool created;               /* its namespace exists because `lab up` made it */
};

struct lab_workload {
    char *cluster;
    char *namespace;
    char *name;
    size_t node; /* index into lab.nodes */
    char *netns;
    char *ifname;            /* host-side veth end, in the node's namespace */
    struct moat_addr *addrs; /* every address, all put on eth0 */
    size_t naddrs;
    bool created; /* as lab_node.created */
};

/* The namespace and bridge that join the nodes. */
struct lab_underlay {
    char *netns;  /* NULL: the lab has none (a state file from before labs had one) */
    bool created; /* as lab_node.created */
};

struct lab {
    char *name;
    struct lab_underlay underlay;
    struct lab_node *nodes;
    size_t nnodes;
    struct lab_workload *workloads;
    size_t nworkloads;
};

/* True when `name` may name a lab (1..LAB_NAME_MAX of [A-Za-z0-9_]). */
bool lab_name_ok(const char *name);

/*
 * Works out lab `name` from the finished policy `p` and completes `p` for the
 * inventory that `lab up` writes: workloads without an IPv4 address get one
 * (and, with LAB_PLAN_DUAL_STACK in `flags`, without an IPv6 address an IPv6
 * one), workloads without an interface get one, nodes get their gateway
 * addresses, and nodes that only workloads name get a Node entry (cluster:
 * that of their first workload). The lab it returns has its underlay:
 * namespace, node k's address 100.64.0.k, and fd00:ffff::k when some node
 * has IPv6. Returns 0 with *out (free with lab_free), -EINVAL with every
 * problem in `d` (addresses outside the node's subnets, inside the
 * underlay's, a gateway's, not unicast; clashing interface names, full
 * subnets...), or -ENOMEM. `p` may be half-completed on error: throw it away.
 */
int lab_plan(struct moat_policy *p, const char *name, unsigned flags, struct lab **out,
             struct moat_diags *d);

/* The underlay /24, LAB_UL_NET, as a prefix. */
struct moat_prefix lab_ul_subnet(void);
/* The underlay /64, LAB_UL6_TEXT, as a prefix. */
struct moat_prefix lab_ul_subnet6(void);
/* True when the lab configures IPv6: some node has a /64 (then every ul0 has fd00:ffff::k). */
bool lab_has_ipv6(const struct lab *lab);
/*
 * The name of node i's (0-based) port on the underlay bridge, `node` and
 * i + 1, into buf (LAB_IFNAME_MAX + 1 bytes or more).
 */
void lab_ul_port(size_t i, char *buf, size_t n);

/* A new empty lab named `name` (NULL on OOM). */
struct lab *lab_new(const char *name);
/* Frees a lab and all it owns; NULL is a no-op. */
void lab_free(struct lab *lab);

#endif
