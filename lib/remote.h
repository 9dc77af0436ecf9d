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
 */
#ifndef MOAT_REMOTE_H
#define MOAT_REMOTE_H

#include "model.h"

#include <jansson.h>

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

/* Gives each rule of `p` the id its record in `rules` has (matched by cluster and name). */
void remote_take_ids(struct moat_policy *p, const json_t *rules);

#endif
