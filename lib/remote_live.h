/*
 * remote_live: the other nodes' workloads of a policy in force, changed in
 * place by a delta's workload changes (issue 17: pod churn in O(changes)).
 *
 * It ties three things the agent holds: its compact remote workloads
 * (remote.h), the policy they were added to (they are its last workloads, in
 * the same order) and the tables compiled from that policy. A change updates
 * all three: the record parsed into the pool, the workload written in place
 * (a removed one leaves a hole: no addresses) or appended, then
 * tables_update_workload. What a datapath must write follows in a
 * struct remote_change.
 *
 * It refuses (-EINVAL, nothing left half-done that a full compile would not
 * redo) what only a full load checks or builds: an address another
 * workload or node already has, a workload of a cluster the policy does not
 * name. Duplicate workload names are not checked here (the server keys
 * workloads by node and name).
 */
#ifndef MOAT_REMOTE_LIVE_H
#define MOAT_REMOTE_LIVE_H

#include "compile.h"
#include "diag.h"
#include "remote.h"

#include <jansson.h>

struct remote_live;

/*
 * Ties r, p (r's workloads are p's last ones) and t (compiled from p), all
 * borrowed: they must outlive it. 0, -ENOMEM, or -EINVAL when p does not end
 * with r's workloads.
 */
int remote_live_new(struct remote_workloads *r, struct moat_policy *p, struct moat_tables *t,
                    struct remote_live **out);
void remote_live_free(struct remote_live *l);

/* What one remote_live_apply changed, for the datapath. */
struct remote_change {
    struct moat_addr *addrs; /* every address a workload lost or gained (owned) */
    size_t naddrs, cap;
    uint32_t first_new; /* identities from this one on are new (their policy rows too) */
    bool resolvers;     /* a workload changed was or is an approved DNS resolver */
    size_t set, removed, left_out;
};
void remote_change_clear(struct remote_change *c);

/*
 * Applies `chg` ({"set": [records], "removed": [ids]}, a delta's "workloads")
 * to r, p and t. Set records not kept (remote_workload_kept) remove the one
 * of their id; records that fail a check are left out (messages to `d`) and
 * remove it too. 0; -EINVAL with why[] (see above) or -ENOMEM: r, p and t
 * may be partly changed — compile afresh from r.
 */
int remote_live_apply(struct remote_live *l, const json_t *chg, struct remote_change *out,
                      struct moat_diags *d, char *why, size_t wn);

/* Bytes the pool took for records since it was built (churn grows it; rebuild to compact). */
size_t remote_live_pool_growth(const struct remote_live *l);

#endif
