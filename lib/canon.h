/*
 * canon: what the loader settled, written back into JSON documents — one
 * implementation for every front end that keeps documents (the server stores
 * them so; `moat apply` sends documents that the server settles the same way).
 *
 * A document of a loaded policy gets its settled values: a cluster's
 * `defense` ("on"/"off"), `mode` and `default_action`; a rule's `enabled`,
 * `protocol`, `action`, `priority` and `type` (defaults included). Filters and
 * comparisons then see one spelling of each value (`on` and `true` are the
 * same switch; an omitted protocol is `any`).
 */
#ifndef MOAT_CANON_H
#define MOAT_CANON_H

#include "model.h"

#include <jansson.h>

struct canon;

/*
 * An index over finished policy `p` (which must outlive it) for finding
 * rules by cluster and name in O(log n). 0 with *out, or -ENOMEM.
 */
int canon_new(const struct moat_policy *p, struct canon **out);
void canon_free(struct canon *c);
/* Settles cluster document `doc` (found by its `name`). 0, -ENOENT (not in the policy), -ENOMEM. */
int canon_cluster(const struct canon *c, json_t *doc);
/* Settles rule document `doc` of cluster `cluster` (found by its `name`). 0, -ENOENT, -ENOMEM. */
int canon_rule(const struct canon *c, json_t *doc, const char *cluster);

#endif
