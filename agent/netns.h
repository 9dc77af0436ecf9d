/*
 * netns: finding a workload's host-side interface from its network
 * namespace (rtnetlink; no /sys of the container needed).
 *
 * A container's eth0 is one end of a veth pair; the other end lives in the
 * namespace moatd enforces in, and its ifindex is eth0's IFLA_LINK. To read
 * it, the calling thread enters the container's namespace only long enough
 * to open a netlink socket there (the socket stays bound to it) and comes
 * back; the answer is checked on the home side (a veth whose peer is that
 * eth0), so an index that happens to exist in both namespaces is not
 * mistaken for the peer.
 *
 * Functions return 0 or -errno: -ENOENT no such interface or address,
 * -ENODEV the peer is not in the home namespace (another kind of link).
 */
#ifndef MOAT_AGENT_NETNS_H
#define MOAT_AGENT_NETNS_H

#include <net/if.h>

/*
 * The host-side peer of interface `ifname` of network namespace `nsfd`, as
 * an interface name of namespace `home_fd` (-1: the calling thread's) in
 * out[IF_NAMESIZE].
 */
int netns_peer_name(int nsfd, const char *ifname, int home_fd, char out[IF_NAMESIZE]);

/*
 * The host-side interface of the workload holding address `ip` (text) in
 * namespace `home_fd` (-1: the caller's): the interface a route to it leaves
 * by when that is not a bridge (routed CNIs: one veth per pod), else the
 * peer of the interface that holds `ip` in one of the node's network
 * namespaces (/run/netns/ *, and those of running processes).
 */
int netns_iface_of_addr(const char *ip, int home_fd, char out[IF_NAMESIZE]);

#endif
