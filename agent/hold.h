/*
 * hold: protected from the first packet. moatd watches rtnetlink for new
 * links in the namespace it enforces in; a new veth whose name matches one of
 * the hold patterns (a container's host-side end: `veth*`, `cali*`, `lxc*`)
 * or that is enslaved to a matching bridge gets bpf/moat_hold.bpf.c's
 * fail-closed programs on both tc hooks at once, while it has no carrier yet
 * (a veth carries packets only once both ends are up: the engine or the CNI
 * plugin moves one end into the container and brings it up after creating
 * the pair, and starts the container after that). Each hold records whether
 * the link had a carrier already (held_while_up: a packet may have crossed). When the workload is
 * identified, the datapath's attach replaces the filter (same handle and
 * priority, one tc operation): there is no moment with no program.
 *
 * The hold is added only where no moat filter is (tc refuses to add a filter
 * where one exists), so an interface that already enforces is never held.
 * At start every matching link without a moat filter is held too (a
 * container started while moatd was down); ones enforcing since the last
 * run keep their programs.
 *
 * Functions return 0 or -errno.
 */
#ifndef MOAT_AGENT_HOLD_H
#define MOAT_AGENT_HOLD_H

#include "datapath.h"

#include <jansson.h>
#include <stddef.h>

#define HOLD_PATTERNS_MAX 16

struct hold_config {
    const char *ifaces[HOLD_PATTERNS_MAX]; /* name patterns (`*`) of veths to hold */
    size_t nifaces;
    const char *bridges[HOLD_PATTERNS_MAX]; /* veths enslaved to these bridges too */
    size_t nbridges;
};

struct hold;

/* Loads the hold programs, subscribes to link events, holds what matches now. */
int hold_open(const struct hold_config *cfg, struct hold **out);
/* Closes (the filters stay: an interface held stays held while moatd is away). */
void hold_close(struct hold *h);
/* The netlink socket: readable when links changed. */
int hold_fd(const struct hold *h);
/* Reads the pending link events and holds new matching links. */
void hold_handle(struct hold *h);
/*
 * Holds interface `ifname` at once, without watching anything (`moatd hook`,
 * run by the container engine before the container starts). 0; -EEXIST when
 * moat's datapath enforces there already; -ENODEV no such interface; -errno.
 */
int hold_interface(const char *ifname);
/*
 * Takes the hold off interface `ifname` (both hooks), for a datapath that
 * enforces without tc programs of its own (iptables): called once its rules
 * for the interface are in force, so that there is no moment unjudged.
 * Returns how many hooks were released (0: none was held), -ENODEV, -errno.
 */
int hold_release(const char *ifname);
/* Forgets the links that are enforcing now (logged with how long they were held) or gone. */
void hold_refresh(struct hold *h);
/* {held: [{interface, since, packets_dropped}], held_total, held_while_down, held_while_up}. */
json_t *hold_status(struct hold *h);

#endif
