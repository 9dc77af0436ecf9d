/*
 * diag: a list of validation errors, each with where it is and what is wrong.
 *
 * Validation in libmoat reports every problem it finds, not just the first.
 * A message reads `FILE:LINE: CONTEXT: FIELD: PROBLEM`, for example
 * `policy.yaml:14: rules "web-from-lb": destinations[0].ports: ranges 80/90 and 85/100 overlap`.
 * The list owns its strings. When memory runs out while recording an error the
 * list remembers it (diags_oom) so the caller can report -ENOMEM.
 */
#ifndef MOAT_DIAG_H
#define MOAT_DIAG_H

#include <stdbool.h>
#include <stddef.h>

#define MOAT_DIAGS_MAX 1000 /* more than this is noise: the rest is counted, not kept */

struct moat_diag {
    char *file; /* may be NULL */
    int line;   /* 1-based; 0 when unknown (JSON input) */
    char *text; /* the full message, location included */
    /* The same message in parts, for programs that answer per field (the API):
     * `ctx` and `field` may be NULL (not known), `detail` is the problem alone. */
    char *ctx;
    char *field;
    char *detail;
};

struct moat_diags {
    struct moat_diag *items;
    size_t count;
    size_t cap;
    size_t dropped; /* errors past MOAT_DIAGS_MAX */
    bool oom;
};

/* Empty list, ready to use (a zeroed struct is one too). */
void diags_init(struct moat_diags *d);
/* Frees every message; the list is empty and usable afterwards. */
void diags_clear(struct moat_diags *d);
/*
 * Records an error at file:line (line 0 = unknown) with a printf-style message.
 * `ctx` (may be NULL) is the object the error belongs to, e.g. `rules "web"`.
 */
void diags_add(struct moat_diags *d, const char *file, int line, const char *ctx, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));
/*
 * Same as diags_add, with the field the error is about (may be NULL) kept apart:
 * the text reads `FILE:LINE: CTX: FIELD: PROBLEM` as before.
 */
void diags_add_field(struct moat_diags *d, const char *file, int line, const char *ctx,
                     const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Total number of errors, including dropped ones. */
size_t diags_total(const struct moat_diags *d);
bool diags_oom(const struct moat_diags *d);

#endif
