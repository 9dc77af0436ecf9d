/*
 * polstate: the agent's copy of the server's full policy answer (issue 17),
 * kept as its text with the span of every record of the three record lists
 * (objects, rules, workloads: delta.h), so that a delta answer is applied by
 * splicing record texts — O(bytes copied), no JSON tree of 100,000 records.
 *
 * The text is always a whole full answer (`{"revision":R,...}`), the one the
 * agent writes to its state folder and reads back at a restart. Records of
 * each list are in increasing id order, as the server sends them.
 */
#ifndef MOAT_POLSTATE_H
#define MOAT_POLSTATE_H

#include "delta.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct polstate {
    char *text; /* owned, NUL-terminated */
    size_t len;
    int64_t revision;
    struct delta_rec *recs[DELTA_KINDS]; /* spans into text, by increasing id */
    size_t n[DELTA_KINDS];
};

/*
 * Indexes full answer `text` (len bytes; the state takes it: freed with the
 * state, also on error). 0, -ENOMEM, or -EINVAL with why[] when it is not a
 * JSON object with an integer revision and lists of records with distinct
 * integer ids (in any order: they are sorted).
 */
int polstate_index(char *text, size_t len, struct polstate **out, char *why, size_t wn);
/* json_dumps(answer, JSON_COMPACT), indexed. */
int polstate_from_json(const json_t *answer, struct polstate **out, char *why, size_t wn);

/*
 * The full answer of delta answer `d` (since base->revision) applied to
 * `base`: `d`'s whole members and revision, each list with `d`'s `removed`
 * ids taken out and its `set` records put in (replacing a record of the same
 * id). 0, -ENOMEM, or -EINVAL with why[] (another base revision, a removed id
 * not held or also set, a malformed delta); `base` is left as it was.
 */
int polstate_apply(const struct polstate *base, const json_t *d, struct polstate **out, char *why,
                   size_t wn);

/* True when delta `d` changes no object and no rule (only workloads and whole members). */
bool polstate_workloads_only(const json_t *d);
/* True when delta `d` changes no workload (only objects, rules and whole members). */
bool polstate_no_workload_change(const json_t *d);

void polstate_free(struct polstate *st);

#endif
