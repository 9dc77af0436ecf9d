/*
 * remote: the policy documents moat-server hands out (clusters, network
 * objects, defense rules and workloads as JSON records) turned back into the
 * documents of a policy file, so that libmoat's loader — the same one that
 * reads files — builds the struct moat_policy the CLI explains and the
 * agent enforces.
 *
 * Records keep only the fields a file may carry (derived fields such as a
 * cluster's status are dropped); rules come in id order with system rules
 * reduced to their switch, and after loading every rule takes the id the
 * server gave it, so alerts and decisions name rules as the API does.
 *
 * An agent takes the workloads of other nodes another way, straight from the
 * records into the model (remote_workloads_build below): at 100,000
 * workloads, document text parsed again at every load costs more memory and
 * time than the workloads themselves.
 */
#ifndef MOAT_REMOTE_H
#define MOAT_REMOTE_H

#include "diag.h"
#include "model.h"

#include <jansson.h>
#include <stdint.h>

/*
 * Appends to the JSON array `docs` the documents of `clusters` (records), the
 * `objects` usable by them (global ones and their own), their `rules` and
 * their `workloads`, leaving out workloads of node `skip_node` (NULL: none;
 * the agent describes its own workloads from its inventory). The arrays are
 * only read. Returns 0 or -ENOMEM.
 */
int remote_docs(const json_t *clusters, const json_t *objects, const json_t *rules,
                const json_t *workloads, const char *skip_node, json_t *docs);

/*
 * The same for an agent: the workloads of other nodes are kept as compact
 * records — what the datapath selects on and what an alert names, no more:
 * cluster, node, name, namespace, image, addresses, the `app` label and the
 * labels and namespace labels whose keys some object of `objects` selects on.
 * Their interface, source and every other label are left out (issue 17:
 * agent memory per remote workload). This node's workloads stay whole.
 */
int remote_docs_compact(const json_t *clusters, const json_t *objects, const json_t *rules,
                        const json_t *workloads, const char *node, json_t *docs);

/*
 * The workloads of other nodes as an agent keeps them, built straight from
 * the server's records (issue 17): no document text, no second parse. Each
 * record of `workloads` of one of `clusters`, not of node `node`, becomes
 * the compact record remote_docs_compact makes of it, validated by the
 * loader's own checks (workload_from_doc), its strings, labels, image forms
 * and addresses packed into one shared pool (strpool.h): a namespace, image,
 * node or label set many workloads share is stored once.
 */
struct remote_workloads {
    struct strpool *pool;    /* one reference */
    struct moat_workload *w; /* pooled workloads, in the answer's order */
    size_t n, cap;
    size_t left_out; /* records refused */
    /* For changes in place (remote_live.h): each workload's record id
     * (REMOTE_HOLE: a slot left by a removed one, no addresses), how many
     * holes, and what a record is read with. */
    int64_t *ids;
    size_t cap_ids, holes;
    json_t *clusters, *label_keys, *ns_keys; /* owned */
    const char *node, *file;                 /* in the pool */
    size_t pool_built;                       /* strpool_bytes() once built */
};

#define REMOTE_HOLE INT64_MIN

/*
 * Builds *out (caller frees with remote_workloads_free). A record that fails
 * a check is left out and counted; the messages of the first 20 (naming
 * `name`, the record's number in `workloads`, the workload and the field)
 * go to `d`, then one line counting the rest. 0 or -ENOMEM.
 */
int remote_workloads_build(const json_t *clusters, const json_t *objects, const json_t *workloads,
                           const char *node, const char *name, struct remote_workloads **out,
                           struct moat_diags *d);
/*
 * Appends copies of r's workloads to `p` (not finished yet), which takes a
 * reference to r's pool: they stay valid after r is freed. 0, -ENOMEM, or
 * -EINVAL when `p` already holds another pool's workloads.
 */
int remote_workloads_add(const struct remote_workloads *r, struct moat_policy *p);
/*
 * True when r's records are those remote_workloads_build would make with
 * `objects` instead of the objects r was built with: they select on the same
 * label and namespace label keys (its clusters and node unchanged), so a
 * change of objects or rules can keep r. False also on OOM.
 */
bool remote_workloads_fit(const struct remote_workloads *r, const json_t *objects);
/* Whether record `rec` is one r keeps: of its clusters, not of its node. */
bool remote_workload_kept(const struct remote_workloads *r, const json_t *rec);
/*
 * Record `rec` as r keeps it (the checks and compact form of
 * remote_workloads_build) into *out, pooled in r's pool; not added to r.
 * 0, -EINVAL (refused: counted in r->left_out, messages to `d`) or -ENOMEM.
 */
int remote_workload_parse(struct remote_workloads *r, const json_t *rec, struct moat_workload *out,
                          struct moat_diags *d);
/* Drops the holes (remote_workloads_add refuses r while it has some); ids stay matched. */
void remote_workloads_compact(struct remote_workloads *r);
/* True when a and b hold the same workloads in the same order (NULL: none). */
bool remote_workloads_equal(const struct remote_workloads *a, const struct remote_workloads *b);
void remote_workloads_free(struct remote_workloads *r);

/* Gives each rule of `p` the id its record in `rules` has (matched by cluster and name). */
void remote_take_ids(struct moat_policy *p, const json_t *rules);

#endif
