/*
 * validate: the API accepts exactly what policy files accept, at a cost that
 * does not grow with the store.
 *
 * A write is checked by libmoat's loader (lib/loader.h) over the documents a
 * policy file would hold for the part of the state the change can affect:
 * the changed documents first, then their neighbourhood from the store —
 * a rule's cluster and the objects it names (by name, and by id for a
 * number; with those objects' clusters), an object's cluster and the rules
 * that name it (by its old name, its new name or its id: the store keeps
 * rules' references indexed), the objects restricted to a cluster being
 * removed — and the neighbours of those rules. What the loader can find
 * wrong about a change lies there: unknown fields and values, unresolved or
 * misplaced references, names used twice within the documents. Names used
 * twice in the store are the store's to refuse (UNIQUE), before this runs.
 *
 * Loader errors become the API's `{"errors": [{"field", "message"}]}`: fields
 * of a changed document are named as they are (`destinations[0].ports`), or
 * with the document's place in a batch (`documents[3].destinations[0].ports`);
 * errors in other documents carry that document's name
 * (`rules "web-from-lb".source`).
 */
#ifndef MOAT_SERVER_VALIDATE_H
#define MOAT_SERVER_VALIDATE_H

#include "server.h"

#include "model.h"

/* One document of a change to the stored state. */
struct change {
    enum store_kind kind; /* STORE_CLUSTER, STORE_OBJECT or STORE_RULE */
    int64_t id;           /* the record replaced or removed; 0 for a new one */
    const json_t *doc;    /* the new document as a file would hold it, without kind (a system
                             rule: only cluster, name, enabled, description); NULL = removal */
    const char *name;     /* the record's name now (objects, clusters: replaced or removed) */
    const char *cluster;  /* rules: their cluster; removal of a cluster: its name */
};

/*
 * Validates the state with the n changes applied. `batch` names each
 * changed document's errors `documents[i].` (i = its index) when true.
 * Returns 0 with *policy (the loaded documents; caller frees with
 * policy_free) when `policy` is not NULL, 1 with an error response of
 * status `status` set in `rs`, or -errno (-ENOMEM, store errors).
 */
int validate_changes(struct server *srv, const struct change *ch, size_t n, bool batch,
                     unsigned status, struct resp *rs, struct moat_policy **policy);
/* validate_changes() of one change. */
int validate_change(struct server *srv, const struct change *ch, unsigned status, struct resp *rs,
                    struct moat_policy **policy);

#endif
