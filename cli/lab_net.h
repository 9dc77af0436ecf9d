/*
 * lab_net: what `moat lab` does to the kernel — network namespaces, the
 * bridges, veths, addresses and routes, made with iproute2's `ip` (run with
 * posix_spawn, arguments passed as a vector: no shell), and entering a
 * namespace with setns(2).
 *
 * Nothing here links a lab namespace to the root namespace or to any
 * physical interface: every link is created inside a lab namespace, and the
 * only veths join a workload namespace to its node namespace, or a node
 * namespace to the lab's underlay namespace. No namespace gets a default
 * route except workloads (via their node's bridge, IPv4 and, when they have
 * an IPv6 address, IPv6).
 *
 * Every namespace is configured as soon as it exists, never inheriting the
 * host's settings: nodes forward IPv4 and IPv6, the underlay and workloads
 * do not; rp_filter is off; workloads accept router advertisements, nodes
 * and the underlay do not; workloads' eth0 has an EUI-64 link-local address.
 * No IPv6 address goes through duplicate address detection (accept_dad=0,
 * and `nodad` on the addresses the lab adds): every one, link-local ones
 * included, works as soon as `lab up` returns.
 *
 * Failures are printed to stderr as `moat: lab: COMMAND: what failed` (this
 * is CLI code) and returned as -errno / -EIO.
 */
#ifndef MOAT_LAB_NET_H
#define MOAT_LAB_NET_H

#include "lab_plan.h"

#include <stdbool.h>
#include <stddef.h>

#define LAB_NETNS_DIR "/run/netns" /* where `ip netns` keeps named namespaces */

/*
 * Runs argv (argv[0] looked up in PATH, stdout sent to stderr) and waits.
 * Returns its exit status (0..255), 128 + signal when killed, or -errno when
 * it could not be started.
 */
int lab_run(const char *const argv[]);
/* True when the named network namespace exists (LAB_NETNS_DIR/NAME). */
bool lab_netns_exists(const char *name);
/* Moves this process into the named network namespace. 0 or -errno. */
int lab_netns_enter(const char *name);
/* True when the kernel has IPv6 (not disabled at boot). */
bool lab_kernel_has_ipv6(void);

/*
 * Creates the underlay namespace (lo up, bridge ubr0 up, no address, no
 * route). Sets lab->underlay.created as soon as the namespace exists and
 * calls `saved` (may be NULL) then, so the state file can record it before
 * anything else can fail. Returns 0 or a negative error.
 */
int lab_net_underlay_up(struct lab *lab, int (*saved)(const struct lab *));
/*
 * Creates node i's namespace (forwarding on, lo up, bridge mbr0 with the
 * gateway addresses) and, when the lab has an underlay (made before), its
 * veth ul0 <-> nodeK on ubr0 with the node's underlay addresses and a route
 * to every other node's /24 (and /64) via that node's underlay address
 * (source: this node's gateway address). Sets lab->nodes[i].created and
 * calls `saved` as above. Returns 0 or a negative error.
 */
int lab_net_node_up(struct lab *lab, size_t i, int (*saved)(const struct lab *));
/*
 * Creates workload i's namespace and veth (eth0 <-> interface on mbr0), its
 * addresses on eth0 and default routes via the node's gateways, as above.
 */
int lab_net_workload_up(struct lab *lab, size_t i, int (*saved)(const struct lab *));
/* Deletes a namespace (with every link in it); 0 also when it is not there. */
int lab_net_delete(const char *netns);

#endif
