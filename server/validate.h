/*
 * validate: the API accepts exactly what policy files accept.
 *
 * A write is checked by turning the stored state, with the requested change
 * applied, into the documents a policy file would hold (`kind: Cluster`,
 * `NetworkObject`, `DefenseRule`; the request's document first) and running
 * libmoat's loader over them (lib/loader.h). Loader errors become the API's
 * `{"errors": [{"field", "message"}]}`: fields of the request's document are
 * named as they are (`destinations[0].ports`), errors in other documents
 * carry that document's name (`rules "web-from-lb".source`).
 */
#ifndef MOAT_SERVER_VALIDATE_H
#define MOAT_SERVER_VALIDATE_H

#include "server.h"

#include "model.h"

/* A proposed change to the stored state. */
struct change {
    enum store_kind kind;
    int64_t id;        /* the record replaced or removed; 0 for a new one */
    const json_t *doc; /* the new document as a file would hold it, without kind; NULL = removal */
    const char *cluster; /* removal of a cluster: its rules go too */
};

/*
 * Validates the state with `ch` applied. Returns 0 with *policy (caller frees
 * with policy_free) when `policy` is not NULL, 1 with an error response of
 * status `status` set in `rs`, or -errno (-ENOMEM, store errors).
 */
int validate_change(struct server *srv, const struct change *ch, unsigned status, struct resp *rs,
                    struct moat_policy **policy);

/* Writes the values the loader settled (defaults included) into a stored cluster document. */
int canon_cluster(json_t *doc, const struct moat_policy *p);
/* Same for a rule of cluster `cluster`: enabled, protocol, action, priority, type. */
int canon_rule(json_t *doc, const struct moat_policy *p, const char *cluster);

#endif
