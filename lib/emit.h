/*
 * emit: YAML text for inventory documents (SPEC §10), the inverse of the
 * loader for workloads and nodes.
 *
 * `moat lab up` writes the completed inventory with these functions, and the
 * loader must read it back field for field, so every string is written either
 * as a YAML plain scalar that every YAML reader takes as the same string
 * (letters first, only [A-Za-z0-9._/-], never a YAML 1.1 boolean or null
 * word) or double-quoted with escapes. Pure: nothing here does I/O; text is
 * appended to a growable buffer with a maximum size.
 *
 * Errors: 0, -ENOMEM, -E2BIG (the buffer would pass its maximum) or -EILSEQ
 * (a string is not valid UTF-8, so no YAML can carry it). On error the
 * buffer is left as it was before the call.
 */
#ifndef MOAT_EMIT_H
#define MOAT_EMIT_H

#include "model.h"

#include <stdbool.h>
#include <stddef.h>

#define MOAT_EMIT_MAX_DEFAULT (64u << 20)

/* A growable text buffer; `data` is always NUL-terminated once non-NULL. */
struct emit_buf {
    char *data; /* owned; NULL while empty */
    size_t len;
    size_t cap;
    size_t max; /* the most text the buffer may hold, NUL excluded */
};

/* An empty buffer that may grow to `max` bytes (0 = MOAT_EMIT_MAX_DEFAULT). */
void emit_buf_init(struct emit_buf *b, size_t max);
/* Frees the text; the buffer is empty and usable again. NULL is a no-op. */
void emit_buf_free(struct emit_buf *b);
/* The text so far ("" when empty); valid until the next append or free. */
const char *emit_buf_text(const struct emit_buf *b);
/*
 * Hands the text to the caller (who frees it) and empties the buffer.
 * Returns NULL on OOM (only possible when the buffer is still empty).
 */
char *emit_buf_take(struct emit_buf *b);

/* Appends `n` bytes / a NUL-terminated string as they are. */
int emit_raw(struct emit_buf *b, const char *s, size_t n);
int emit_str(struct emit_buf *b, const char *s);

/* True when `s` may be written as a plain scalar (see above). */
bool emit_plain_ok(const char *s);
/* Appends `s` as one YAML scalar, plain when emit_plain_ok(s), else double-quoted. */
int emit_scalar(struct emit_buf *b, const char *s);

/*
 * Appends one `kind: Workload` document, starting with a `---` line: cluster
 * (w->cluster_ref), node, name, namespace, then image, labels, ips and
 * interface when set. Labels are a flow map, ips a flow list.
 */
int emit_workload(struct emit_buf *b, const struct moat_workload *w);
/* Appends one `kind: Node` document (name, then cluster and ips when set). */
int emit_node(struct emit_buf *b, const struct moat_node *n);

#endif
