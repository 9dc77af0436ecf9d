/*
 * agent: moatd's node logic — load the policy (standalone: policy and
 * inventory files; cluster mode: the server's policy plus the node's own
 * inventory), compile it for this node, install the snapshot, keep the
 * local workloads' interfaces attached, turn datapath events into alerts
 * (cluster mode: also into event batches for the server, see sync.h).
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

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

struct sync;
struct wsource;
struct hold;

struct agent_config {
    const char *node;
    const char *const *files; /* policy and inventory files, loaded together */
    size_t nfiles;
    const char *alerts_path; /* NULL: stdout */
    const char *status_path; /* status file moatd status reads */
    bool verbose;
    /* Cluster mode (both set): files are inventory only, the policy comes
     * from the server through agent_set_remote, reports go to `sync`. */
    const char *cluster;
    struct sync *sync;
    /* Workload discovery (--runtime docker|podman|kubernetes): the source's
     * workloads join the files' (agent_set_discovered); `hold` keeps new
     * interfaces fail-closed until then. Both only shown in the status here. */
    struct wsource *source;
    struct hold *hold;
    json_t *discovered; /* the source's workloads at start (agent_start takes it over) */
    /* What each backend's probe said ({"ebpf": "", "iptables": "missing ..."}, ""
     * when it can run): shown in the status and reported to the server. Borrowed. */
    const json_t *probes;
};

/* A cluster's threat list as the agent holds it (index = cluster index in the policy). */
struct agent_threats {
    char *cluster;
    char *path; /* the file it came from; NULL: none */
    struct stat st;
    struct moat_threatlist *list; /* NULL: none in force */
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
    /* cluster mode */
    char *remote_text; /* the server's newest cluster, objects and rules as documents (JSON) */
    struct remote_workloads *remote_wl; /* and its other nodes' workloads (remote.h) */
    json_t *remote_rules;               /* its rules, for their ids */
    json_t *remote_objects; /* its objects: a delta of objects and rules is applied to them */
    int64_t remote_revision;
    int64_t revision;         /* revision of the policy in force (0: none) */
    json_t *local_workloads;  /* this node's workloads as reported (owned) */
    struct alert_agg *window; /* hits not yet sent to the server */
    double window_started;    /* monotonic seconds; 0: empty */
    char dp_state[16];        /* enforcing | unsupported | not_installed */
    char dp_reason[512];
    double applied_at;             /* wall-clock seconds the policy in force was applied */
    json_t *discovered;            /* Workload documents from cfg.source (owned); NULL: none */
    struct agent_threats *threats; /* per cluster of the policy in force */
    size_t nthreats;
    double threats_checked_at; /* monotonic seconds */
    /* cluster mode: quarantines shared through the server (cluster_det.h) */
    json_t *remote_quarantines, *remote_releases; /* from the newest answer (owned) */
    double quarantines_checked_at;                /* monotonic seconds */
    /* cluster mode: workload deltas applied in place (remote_live.h, agent_apply_delta) */
    struct remote_live *live;           /* ties remote_wl, policy and tables; NULL: full path */
    json_t *remote_cluster, *remote_ti; /* the answer's cluster record and threat_intel member */
    unsigned long applies_incremental, applies_full, applies_objects_rules;
    const char *last_apply_path; /* "incremental" | "objects_rules" | "full" | NULL */
    double last_apply_ms;        /* from taking the answer to its revision in force */
    double last_received_ms;     /* from the sync thread receiving it (-1: not known) */
    bool stale; /* the policy in force was changed in place and failed: only a full apply now */
    bool docs_staged;    /* remote_text and remote_revision are ahead of the policy in force */
    bool documents_only; /* the install under way keeps the remote workloads (the status path) */
};

/* Stable names of the datapath's drop reasons (MOAT_DROP_*, NULL for none) and event counts. */
const char *agent_drop_name(uint32_t reason);
const char *agent_event_stat_name(uint32_t which);

/* Prints a log line: "moatd: LEVEL: message". */
void agent_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Loads the files and opens the datapath; applies the policy and attaches
 * local workloads. Returns 0, -EINVAL (invalid files, errors printed),
 * -EOPNOTSUPP (datapath unavailable, reason printed) or another -errno.
 * In cluster mode a datapath that cannot run is reported (`unsupported`)
 * rather than fatal, and a start without a policy yet waits for one.
 */
int agent_start(struct moat_agent *a, const struct agent_config *cfg,
                const struct datapath_ops *ops);
/* Loads the files again; on any error the running policy stays. Returns 0 or -errno. */
int agent_reload(struct moat_agent *a);
/*
 * Cluster mode: takes over `policy` (the server's answer) and applies it with
 * the node's inventory; on any error the running policy stays. 0 or -errno.
 */
int agent_set_remote(struct moat_agent *a, json_t *policy);
/*
 * Cluster mode: takes over delta answer `d` (sync_take_policy: workloads
 * changed since the revision in force) and applies it in place — the remote
 * workloads, the tables (tables_update_workload) and the datapath's snapshot
 * (datapath_ops.update) — or, when it cannot (another base, a change only a
 * full load handles, any error), the full policy kept (sync_full_policy).
 * 0 or -errno (the policy in force then stays).
 */
int agent_apply_delta(struct moat_agent *a, json_t *d);
/*
 * Takes over `deltas` (a JSON array, in revision order, as sync_take_policy
 * hands them) and applies each with agent_apply_delta, except that a run of
 * deltas changing objects and rules only is compiled and applied once, at its
 * last: while the agent applies one, the poller may queue several.
 */
int agent_apply_deltas(struct moat_agent *a, json_t *deltas);
/*
 * Takes over `docs` (a JSON array of Workload documents a discovery source
 * reported: this node's, of this cluster) and applies the policy with them;
 * on any error the running policy stays. 0 or -errno.
 */
int agent_set_discovered(struct moat_agent *a, json_t *docs);
/* Attaches interfaces that appeared, forgets ones that went away. */
void agent_rescan(struct moat_agent *a);
/* Writes alert lines changed since the last flush, and the status file. */
void agent_flush(struct moat_agent *a);
/* Stops; with `remove` the datapath's kernel state goes too. */
void agent_stop(struct moat_agent *a, bool remove);

#endif
