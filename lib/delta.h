/*
 * delta: the policy answer's changes by revision (GET /agents/policy?delta=1).
 *
 * A full policy answer holds three record lists keyed by their store `id`
 * (objects, rules, workloads) beside members sent whole (revision, cluster,
 * quarantines, ...). A delta answer since revision R holds, per list,
 * {"set": [records added or changed], "removed": [ids gone]}, every whole
 * member as the full answer has it, and "since": R, "delta": true.
 *
 * The server side: a snapshot is the full answer's text with each record's
 * span (delta_snap_build); a log keeps the record changes between successive
 * snapshots (delta_log_add: an exact byte comparison of the records), bounded
 * by steps and bytes, and composes the net change since any revision it
 * holds (delta_log_text). The agent side: delta_apply turns the full answer
 * it has (revision R) and a delta since R into the full answer of the delta's
 * revision, or says why the delta does not apply (then it asks for it all).
 * delta_between computes a delta from two full answers (tests, benchmarks).
 */
#ifndef MOAT_DELTA_H
#define MOAT_DELTA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum delta_kind { DELTA_OBJECTS, DELTA_RULES, DELTA_WORKLOADS, DELTA_KINDS };

/* "objects", "rules", "workloads". */
extern const char *const delta_kind_key[DELTA_KINDS];

/* A growing text; free `p` when done. */
struct delta_buf {
    char *p;
    size_t len, cap;
};
int delta_buf_add(struct delta_buf *b, const char *s, size_t n);
/* Appends the compact JSON of `j` (any value), as json_dumps(j, JSON_COMPACT) writes it. */
int delta_buf_json(struct delta_buf *b, const json_t *j);

/* A record of a snapshot: its id and its compact JSON at text[off..off+len). */
struct delta_rec {
    int64_t id;
    size_t off, len;
};

/*
 * A full answer as text (`text`, owned by the caller) with its records by
 * kind, in the order of the answer (the store's: by id), and `extras`: the
 * whole members but `revision`, as `"key":value,...` (owned).
 */
struct delta_snap {
    const char *text;
    struct delta_rec *recs[DELTA_KINDS];
    size_t n[DELTA_KINDS];
    char *extras;
    int64_t revision;
};

/*
 * Dumps `answer` (a full policy answer) compactly into `out` (exactly as
 * json_dumps(answer, JSON_COMPACT)) and fills `snap` (text left NULL: set it
 * to where the text ends up). 0, -ENOMEM, or -EINVAL when a record list is not
 * a list of objects with distinct integer ids in increasing order.
 */
int delta_snap_build(const json_t *answer, struct delta_buf *out, struct delta_snap *snap);
void delta_snap_free(struct delta_snap *snap);

enum delta_op { DELTA_ADD, DELTA_CHANGE, DELTA_REMOVE };

struct delta_change {
    int64_t id;
    unsigned char kind, op;
    char *text; /* ADD / CHANGE: the record's new text (owned); REMOVE: NULL */
    size_t len;
};

/* The changes from snapshot revision `from` to the next one, `to`. */
struct delta_step {
    int64_t from, to;
    struct delta_change *ch;
    size_t n, bytes;
};

/*
 * The changes between successive snapshots, oldest first, at most
 * `max_steps` steps and `max_bytes` bytes of record text (the oldest steps
 * go first; a step alone above max_bytes empties the log).
 */
struct delta_log {
    struct delta_step *steps;
    size_t n, cap, bytes;
    size_t max_steps, max_bytes;
};

/* Adds the step old -> new (old->revision < new->revision). 0 or -ENOMEM (log emptied). */
int delta_log_add(struct delta_log *log, const struct delta_snap *old,
                  const struct delta_snap *new);
void delta_log_clear(struct delta_log *log);
/* The oldest revision a delta can start from (0: none). */
int64_t delta_log_oldest(const struct delta_log *log);

/*
 * Appends the net change of the record lists since revision `since` up to
 * the log's newest snapshot, as `"objects":{"set":[...],"removed":[...]},
 * "rules":{...},"workloads":{...}`, to `out`. 0; -ENOENT when the log cannot
 * answer from `since`; -E2BIG when the text would pass `max` bytes (`out`
 * then holds a part); -ENOMEM.
 */
int delta_log_text(const struct delta_log *log, int64_t since, size_t max, struct delta_buf *out);

/*
 * The whole delta answer since `since` to snapshot `now` (the log's newest):
 * {"revision", "since", "delta": true, now's whole members, the lists'
 * changes}. Errors as delta_log_text; -ENOENT also when `now` is not the
 * log's newest snapshot.
 */
int delta_answer(const struct delta_log *log, const struct delta_snap *now, int64_t since,
                 size_t max, struct delta_buf *out);

/*
 * Applies delta answer `d` to full answer `base` (revision d.since): *out is
 * the full answer at d.revision (records by id, increasing). 0, -ENOMEM, or
 * -EINVAL with why[] saying what does not fit (another base revision, a
 * removed id that is not there, a malformed delta).
 */
int delta_apply(const json_t *base, const json_t *d, json_t **out, char *why, size_t n);

/* The delta answer from full answer `a` to full answer `b`; NULL on OOM or malformed input. */
json_t *delta_between(const json_t *a, const json_t *b);

#endif
