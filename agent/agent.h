/*
 * agent: moatd's node logic in standalone mode — load policy and inventory
 * files, compile them for this node, install the snapshot, keep the local
 * workloads' interfaces attached, turn datapath events into alerts.
 *
 * Everything hangs off one struct moat_agent (no globals). Reloading is
 * atomic: a new policy is loaded, compiled and applied completely, or the
 * old one stays in force.
 */
#ifndef MOAT_AGENT_H
#define MOAT_AGENT_H

#include "alert.h"
#include "compile.h"
#include "datapath.h"
#include "model.h"

#include <stdbool.h>
#include <stdio.h>

struct agent_config {
    const char *node;
    const char *const *files; /* policy and inventory files, loaded together */
    size_t nfiles;
    const char *alerts_path; /* NULL: stdout */
    const char *status_path; /* status file moatd status reads */
    bool verbose;
};

struct agent_iface {
    char name[16];
    uint32_t workload; /* index in the current policy */
    bool attached;
};

struct moat_agent {
    struct agent_config cfg;
    const struct datapath_ops *ops;
    struct datapath *dp;
    struct moat_policy *policy;
    struct moat_tables *tables;
    uint32_t generation;
    struct agent_iface *ifaces;
    size_t nifaces;
    struct alert_agg *alerts;
    FILE *alerts_out;
    unsigned long reloads, reload_failures, events;
    bool status_dirty;        /* something the status file shows changed */
    double status_written_at; /* monotonic seconds */
};

/* Prints a log line: "moatd: LEVEL: message". */
void agent_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Loads the files and opens the datapath; applies the policy and attaches
 * local workloads. Returns 0, -EINVAL (invalid files, errors printed),
 * -EOPNOTSUPP (datapath unavailable, reason printed) or another -errno.
 */
int agent_start(struct moat_agent *a, const struct agent_config *cfg,
                const struct datapath_ops *ops);
/* Loads the files again; on any error the running policy stays. Returns 0 or -errno. */
int agent_reload(struct moat_agent *a);
/* Attaches interfaces that appeared, forgets ones that went away. */
void agent_rescan(struct moat_agent *a);
/* Writes alert lines changed since the last flush, and the status file. */
void agent_flush(struct moat_agent *a);
/* Stops; with `remove` the datapath's kernel state goes too. */
void agent_stop(struct moat_agent *a, bool remove);

#endif
