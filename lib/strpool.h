/*
 * strpool: strings and small byte blocks packed into large chunks, with an
 * intern table so that equal content is stored once — for data kept for
 * many records that share most of their values (issue 17: the namespace,
 * image, node and labels of 100,000 remote workloads), where a malloc per
 * string costs more than the string.
 *
 * Everything a pool hands out lives as long as the pool; nothing is freed
 * alone. A pool is reference-counted, so that several policies may share
 * the strings of one pool (strpool_ref / strpool_unref).
 */
#ifndef MOAT_STRPOOL_H
#define MOAT_STRPOOL_H

#include <stddef.h>

struct strpool;

/* An empty pool with one reference (caller drops it with strpool_unref), or NULL on OOM. */
struct strpool *strpool_new(void);
/* Takes one more reference; returns `pool`. */
struct strpool *strpool_ref(struct strpool *pool);
/* Drops one reference; the last frees the pool and all it handed out. NULL: no-op. */
void strpool_unref(struct strpool *pool);

/* A copy of `len` bytes (8-byte aligned) in the pool, not interned; NULL on OOM. */
void *strpool_copy(struct strpool *pool, const void *data, size_t len);
/*
 * The pool's copy of `len` bytes: the same pointer for the same content
 * (8-byte aligned); NULL on OOM. Blocks whose content holds pointers are
 * equal only when the pointers are (intern what they point to first).
 */
const void *strpool_intern(struct strpool *pool, const void *data, size_t len);
/* strpool_intern of a NUL-terminated string. */
const char *strpool_str(struct strpool *pool, const char *s);
/*
 * Frees the intern table once no more interning is coming (what was handed
 * out stays); interning afterwards starts a new table.
 */
void strpool_seal(struct strpool *pool);
/* Bytes the pool holds in chunks and table, for benchmarks. */
size_t strpool_bytes(const struct strpool *pool);

#endif
