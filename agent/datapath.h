/*
 * datapath: what moatd needs from an enforcement backend, behind one table of
 * operations (eBPF, and iptables+ipset for older kernels).
 *
 * A backend keeps its state in the kernel (for eBPF: pinned under
 * /sys/fs/bpf/moat/<node>/), so enforcement continues while moatd restarts.
 * apply() swaps in a whole new policy snapshot atomically; update() changes
 * the one in force for a few workloads (issue 17: pod churn);
 * attach()/detach() manage the workload interfaces it enforces on.
 */
#ifndef MOAT_DATAPATH_H
#define MOAT_DATAPATH_H

#include "compile.h"
#include "moat/abi.h"
#include "model.h"
#include "threatlist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct datapath;

/* The tc filter (handle, priority) moat's programs take on a workload
 * interface, on both hooks. The hold program (hold.h) takes the same one, so
 * attach() replaces a hold in one tc operation. */
#define MOAT_TC_HANDLE   0x4d4f /* "MO" */
#define MOAT_TC_PRIORITY 1

struct datapath_counter {
    uint32_t rule_id; /* 0: default action */
    uint64_t flows, packets, bytes;
};

/* Packets dropped per MOAT_DROP_* reason and events per MOAT_EVS_*, since the state was made. */
struct datapath_stats {
    uint64_t drops[MOAT_DROP_MAX];
    uint64_t events[MOAT_EVS_MAX];
};

/*
 * Events from the datapath. Besides the kernel's own, MOAT_EV_SUMMARY: what
 * the rate limit held back for one key and was not yet carried by a later
 * event — `held` events of kind `reason` with action `applied` from source
 * `saddr` (all zero: the node-wide limit, many sources) in cluster `cluster`.
 */
typedef void (*datapath_event_fn)(void *ctx, const struct moat_event *e);

/* An active quarantine (SPEC §6): new connections from `addr` to the cluster are dropped. */
struct datapath_quarantine {
    uint32_t cluster; /* index in the policy in force */
    struct moat_addr addr;
    uint32_t reason; /* MOAT_Q_* */
    uint32_t secs;
    uint64_t since_ns, until_ns; /* CLOCK_MONOTONIC */
    uint64_t dropped;            /* connection attempts dropped so far */
};

struct datapath_ops {
    const char *name;
    /* 0 when the backend can run here; else -errno and what is missing in `why`. */
    int (*probe)(char *why, size_t n);
    /* Loads (or reuses the pinned state of) node `node`. */
    int (*open)(const char *node, datapath_event_fn on_event, void *ctx, struct datapath **out);
    /* Installs tables `t` (compiled from `p`) as the new snapshot; *generation set. */
    int (*apply)(struct datapath *dp, const struct moat_policy *p, const struct moat_tables *t,
                 uint32_t *generation);
    /*
     * Changes the snapshot in force in place, for tables `t` of `p` that
     * tables_update_workload changed since the last apply/update: the host
     * entries of `addrs` (now t's, or gone) and identities from `first_new` on
     * (new: their policy rows, and other identities' rows with them as peer).
     * Rows go in before the addresses that lead to them, so a packet sees the
     * old state or the new, never an address without its rows; flows in
     * progress are judged again. *generation set. NULL: not supported (use
     * apply). -ENOSPC: no room in the snapshot; any error: the snapshot may
     * hold part of the change — apply() then (it replaces it whole).
     */
    int (*update)(struct datapath *dp, const struct moat_policy *p, const struct moat_tables *t,
                  uint32_t first_new, const struct moat_addr *addrs, size_t naddrs,
                  uint32_t *generation);
    /*
     * Enforces on interface `ifname` of a workload of cluster index `cluster`
     * with addresses `addrs` (at least one: the first identifies the workload
     * in every verdict on this interface; -EDESTADDRREQ without).
     */
    int (*attach)(struct datapath *dp, const char *ifname, uint32_t cluster,
                  const struct moat_addr *addrs, size_t naddrs);
    int (*detach)(struct datapath *dp, const char *ifname);
    /* Delivers pending events to the callback; waits up to timeout_ms. */
    int (*poll)(struct datapath *dp, int timeout_ms);
    /* A file descriptor that becomes readable when events are pending (-1: none). */
    int (*event_fd)(struct datapath *dp);
    /*
     * Per-rule counters of node `node` (rule 0: the default action), summed over
     * CPUs, read from its kernel state whether or not an agent runs; caller
     * frees *out. -ENOENT when the node has no state.
     */
    int (*counters)(const char *node, struct datapath_counter **out, size_t *n);
    int (*stats)(struct datapath *dp, struct datapath_stats *out);
    /*
     * Installs the threat lists, lists[i] for cluster index i (NULL or empty:
     * none), as one switch; flows in progress are checked again. The lists
     * stay the caller's (events carry their label indexes).
     */
    int (*set_threats)(struct datapath *dp, struct moat_threatlist *const *lists, size_t n);
    /* Active quarantines of node `node`, from its kernel state; caller frees *out. */
    int (*quarantines)(const char *node, struct datapath_quarantine **out, size_t *n);
    /*
     * Puts q->addr in quarantine for cluster index q->cluster until q->until_ns
     * (CLOCK_MONOTONIC), with q->reason (MOAT_Q_*, MOAT_Q_FROM_SERVER) and
     * q->secs; an existing one is replaced. Flows in progress are checked again.
     */
    int (*quarantine)(const char *node, const struct datapath_quarantine *q);
    /* Ends a quarantine at once: 0, -ENOENT when there is none. */
    int (*release)(const char *node, uint32_t cluster, const struct moat_addr *addr);
    /*
     * Why detection `name` (SPEC §6: brute_force, port_scan, dns_hijack,
     * spoofing, threat_intel) of cluster `cl` does not run here as configured:
     * NULL when it does; *partly set when it runs with a difference (the
     * reason says which). NULL op: every detection runs as configured.
     */
    const char *(*detection_gap)(const struct moat_cluster *cl, const char *name, bool *partly);
    uint32_t (*generation)(struct datapath *dp);
    /* The program fd of one hook (tests and benchmarks run it with BPF_PROG_TEST_RUN); -1 if none.
     */
    int (*prog_fd)(struct datapath *dp, bool to_workload);
    /* Closes; with `remove`, also detaches everything and removes kernel state. */
    void (*close)(struct datapath *dp, bool remove);
    /* Removes node `node`'s kernel state without detaching anything: for when
     * the interfaces it enforced on are gone (their namespace was deleted). */
    int (*unpin)(const char *node);
};

extern const struct datapath_ops datapath_ebpf;
/* iptables + ipset + ebtables, for kernels without the eBPF features (dp_iptables.c). */
extern const struct datapath_ops datapath_iptables;

#endif
