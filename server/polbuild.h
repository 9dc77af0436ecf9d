/*
 * polbuild: a cluster's full policy answer (GET /agents/policy), built from
 * the one built before it at the cost of the records that changed.
 *
 * The answer is {"revision", "cluster", "objects", "rules", "workloads",
 * "quarantines", "quarantine_releases", "threat_intel"}, byte for byte what
 * json_dumps(answer, JSON_COMPACT) made of the store's records before. The
 * object, rule and workload lists are read as their stored texts in one
 * scan per kind (store_ops.scan); a row whose id and stored text are those
 * of the last build keeps the record text it had in the last answer (no
 * parse, no dump), and only the others are parsed and dumped. Nothing is
 * trusted but the text read in this build's own store snapshot, so every
 * write (of this server or another on the same database) shows, whatever
 * path it took. The small members (cluster, quarantines, threat list) are
 * built from their records every time.
 */
#ifndef MOAT_SERVER_POLBUILD_H
#define MOAT_SERVER_POLBUILD_H

#include "delta.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

struct shared_text;

/* What a build kept from the one before, for the next (owned by the cluster's cache entry). */
struct pol_recs;

struct pol_stats {
    size_t reused, parsed; /* records taken from the last answer / parsed and dumped */
};

/*
 * Builds the answer of `cluster` at revision `rev` from the store (the
 * caller's read transaction), reusing what `prev` (may be NULL) holds:
 * *out gets its text, *snap its snapshot (spans into out->p; snap->text
 * NULL), *next what the next build reuses once pol_recs_bind() has given it
 * the text. The build takes the stored texts it reuses out of `prev`: free
 * prev after it, whatever it answered. 0, -ENOENT (no such cluster),
 * -ENOMEM, -EIO.
 */
int pol_build(struct store *st, const char *cluster, int64_t rev, struct pol_recs *prev,
              struct delta_buf *out, struct delta_snap *snap, struct pol_recs **next,
              struct pol_stats *stats);

/* Gives `r` the answer text its spans are in (takes a reference). */
void pol_recs_bind(struct pol_recs *r, struct shared_text *t);
void pol_recs_free(struct pol_recs *r);

#endif
