/* migrate: copying a store (see migrate.h). */
#include "migrate.h"
#include "store_kinds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 1000 /* records read and written at a time */

/* How many records of kind k st holds (-EOPNOTSUPP: a kind it has no table for). */
static int count(struct store *st, enum store_kind k, int64_t *n)
{
    struct store_query q = {.limit = 0};
    json_t *items = NULL;
    int err = st->ops->list(st, k, &q, &items, n);
    json_decref(items);
    return err;
}

static int count_tokens(struct store *st, int64_t *n)
{
    json_t *rows = NULL;
    int err = st->ops->token_dump(st, &rows);
    *n = err ? 0 : (int64_t)json_array_size(rows);
    json_decref(rows);
    return err;
}

/* Refuses a target that holds anything. */
static int target_empty(struct store *to)
{
    int64_t n = 0;
    int err = count_tokens(to, &n);
    if (!err && n > 0) {
        fprintf(stderr, "moat-server: migrate: the target database holds %lld tokens\n",
                (long long)n);
        return -ENOTEMPTY;
    }
    for (int k = 0; !err && k < STORE_KINDS; k++) {
        err = count(to, (enum store_kind)k, &n);
        if (!err && n > 0) {
            fprintf(stderr, "moat-server: migrate: the target database holds %lld %s records\n",
                    (long long)n, store_kind_table((enum store_kind)k));
            return -ENOTEMPTY;
        }
    }
    return err;
}

/* Copies kind k page by page; *n gets how many. -EOPNOTSUPP: the source has no such kind. */
static int copy_kind(struct store *from, struct store *to, enum store_kind k, int64_t *n)
{
    int64_t after = 0;
    *n = 0;
    for (;;) {
        json_t *rows = NULL;
        int err = from->ops->dump(from, k, after, PAGE, &rows);
        if (err)
            return err;
        size_t got = json_array_size(rows);
        for (size_t i = 0; !err && i < got; i++) {
            const json_t *row = json_array_get(rows, i);
            err = to->ops->load(to, k, row);
            after = json_integer_value(json_object_get(row, "id"));
        }
        json_decref(rows);
        if (err)
            return err;
        *n += (int64_t)got;
        if (got < PAGE)
            return 0;
    }
}

static int copy_tokens(struct store *from, struct store *to, int64_t *n)
{
    json_t *rows = NULL;
    int err = from->ops->token_dump(from, &rows);
    for (size_t i = 0; !err && i < json_array_size(rows); i++)
        err = to->ops->token_load(to, json_array_get(rows, i));
    *n = (int64_t)json_array_size(rows);
    json_decref(rows);
    return err;
}

/* Copies everything inside the target's transaction; copied[k] (tokens last) get the counts. */
static int copy_all(struct store *from, struct store *to, int64_t *copied, bool *have)
{
    int err = target_empty(to);
    /* clusters first (the others refer to them), nodes before the tokens that belong to them */
    for (int k = 0; !err && k < STORE_KINDS; k++) {
        err = copy_kind(from, to, (enum store_kind)k, &copied[k]);
        have[k] = err != -EOPNOTSUPP;
        if (err == -EOPNOTSUPP)
            err = 0;
    }
    if (!err)
        err = copy_tokens(from, to, &copied[STORE_KINDS]);
    if (!err)
        err = to->ops->load_end(to);
    return err;
}

/* The counts in both stores after the copy: -EPROTO when any differs. */
static int verify(struct store *from, struct store *to, const int64_t *copied, const bool *have,
                  FILE *out)
{
    int bad = 0;
    fprintf(out, "%-14s %10s %10s %10s\n", "KIND", "SOURCE", "COPIED", "TARGET");
    for (int k = 0; k <= STORE_KINDS; k++) {
        int64_t src = 0, dst = 0;
        int err = 0;
        if (k == STORE_KINDS) {
            err = count_tokens(from, &src);
            if (!err)
                err = count_tokens(to, &dst);
        } else if (have[k]) {
            err = count(from, (enum store_kind)k, &src);
            if (!err)
                err = count(to, (enum store_kind)k, &dst);
        } else {
            continue; /* the source has no such kind */
        }
        if (err)
            return err;
        const char *name = k == STORE_KINDS ? "tokens" : store_kind_table((enum store_kind)k);
        fprintf(out, "%-14s %10lld %10lld %10lld%s\n", name, (long long)src, (long long)copied[k],
                (long long)dst, src == copied[k] && dst == src ? "" : "  MISMATCH");
        if (src != copied[k] || dst != src) {
            fprintf(stderr,
                    "moat-server: migrate: %s: %lld in the source, %lld copied, %lld in the "
                    "target%s\n",
                    name, (long long)src, (long long)copied[k], (long long)dst,
                    src > copied[k] ? " (records that do not parse are not copied)" : "");
            bad++;
        }
    }
    return bad ? -EPROTO : 0;
}

int store_migrate(struct store *from, struct store *to, FILE *out)
{
    if (!to->ops->load || !to->ops->token_load || !to->ops->load_end || !from->ops->dump ||
        !from->ops->token_dump)
        return -EOPNOTSUPP;
    int64_t copied[STORE_KINDS + 1] = {0};
    bool have[STORE_KINDS] = {false};
    int err = to->ops->begin(to);
    if (err)
        return err;
    err = copy_all(from, to, copied, have);
    if (!err)
        err = to->ops->commit(to);
    else
        to->ops->rollback(to);
    if (!err)
        err = verify(from, to, copied, have, out);
    return err;
}
