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
 * Addresses (IPv4; the lab configures no IPv6): node k's /24 is that of its
 * Node document's first IPv4 address, which is then the gateway; else that
 * of the first IPv4 address one of its workloads is given (gateway: the
 * lowest free address); else 10.244.k.0/24, or the next /24 of 10.244/16
 * nothing uses (gateway .1). Workloads without an IPv4 address get .10,
 * .11, ... skipping addresses in use. Each node has its own /24.
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

#define LAB_NAME_MAX   16     /* lab names: 1..16 of [A-Za-z0-9_] */
#define LAB_NETNS_MAX  60     /* namespace names are cut to this */
#define LAB_IFNAME_MAX 15     /* IFNAMSIZ - 1 */
#define LAB_BRIDGE     "mbr0" /* the bridge in every node namespace */
#define LAB_WL_IFNAME  "eth0" /* the workload end of its veth */
#define LAB_PREFIX_LEN 24     /* every node has one IPv4 /24 */
#define LAB_FIRST_HOST 10     /* assigned workload addresses start at .10 */

struct lab_node {
    char *name;
    char *cluster; /* may be NULL */
    char *netns;
    struct moat_addr gateway;  /* IPv4: on mbr0, the node's address (`host`) */
    struct moat_prefix subnet; /* gateway's /24 */
    bool created;              /* its namespace exists because `lab up` made it */
};

struct lab_workload {
    char *cluster;
    char *namespace;
    char *name;
    size_t node; /* index into lab.nodes */
    char *netns;
    char *ifname;            /* host-side veth end, in the node's namespace */
    struct moat_addr *addrs; /* every address; the IPv4 ones are put on eth0 */
    size_t naddrs;
    bool created; /* as lab_node.created */
};

struct lab {
    char *name;
    struct lab_node *nodes;
    size_t nnodes;
    struct lab_workload *workloads;
    size_t nworkloads;
};

/* True when `name` may name a lab (1..LAB_NAME_MAX of [A-Za-z0-9_]). */
bool lab_name_ok(const char *name);

/*
 * Works out lab `name` from the finished policy `p` and completes `p` for the
 * inventory that `lab up` writes: workloads without an IPv4 address get one,
 * workloads without an interface get one, nodes get their gateway address,
 * and nodes that only workloads name get a Node entry (cluster: that of their
 * first workload). Returns 0 with *out (free with lab_free), -EINVAL with
 * every problem in `d` (addresses outside the node's subnet, clashing
 * interface names, full subnets...), or -ENOMEM. `p` may be half-completed
 * on error: throw it away.
 */
int lab_plan(struct moat_policy *p, const char *name, struct lab **out, struct moat_diags *d);

/* A new empty lab named `name` (NULL on OOM). */
struct lab *lab_new(const char *name);
/* Frees a lab and all it owns; NULL is a no-op. */
void lab_free(struct lab *lab);

#endif
