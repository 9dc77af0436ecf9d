/*
 * datapath: what moatd needs from an enforcement backend, behind one table of
 * operations (eBPF now; an iptables+ipset backend can follow).
 *
 * A backend keeps its state in the kernel (for eBPF: pinned under
 * /sys/fs/bpf/moat/<node>/), so enforcement continues while moatd restarts.
 * apply() swaps in a whole new policy snapshot atomically; attach()/detach()
 * manage the workload interfaces it enforces on.
 */
#ifndef MOAT_DATAPATH_H
#define MOAT_DATAPATH_H

#include "compile.h"
#include "moat/abi.h"
#include "model.h"

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

typedef void (*datapath_event_fn)(void *ctx, const struct moat_event *e);

struct datapath_ops {
    const char *name;
    /* 0 when the backend can run here; else -errno and what is missing in `why`. */
    int (*probe)(char *why, size_t n);
    /* Loads (or reuses the pinned state of) node `node`. */
    int (*open)(const char *node, datapath_event_fn on_event, void *ctx, struct datapath **out);
    /* Installs tables `t` (compiled from `p`) as the new snapshot; *generation set. */
    int (*apply)(struct datapath *dp, const struct moat_policy *p, const struct moat_tables *t,
                 uint32_t *generation);
    /* Enforces on interface `ifname` of a workload of cluster index `cluster`. */
    int (*attach)(struct datapath *dp, const char *ifname, uint32_t cluster,
                  const struct moat_addr *addrs, size_t naddrs);
    int (*detach)(struct datapath *dp, const char *ifname);
    /* Delivers pending events to the callback; waits up to timeout_ms. */
    int (*poll)(struct datapath *dp, int timeout_ms);
    /* A file descriptor that becomes readable when events are pending (-1: none). */
    int (*event_fd)(struct datapath *dp);
    /* Per-rule counters, summed over CPUs; caller frees *out. */
    int (*counters)(struct datapath *dp, struct datapath_counter **out, size_t *n);
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

#endif
