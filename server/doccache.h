/*
 * doccache: parsed store documents kept by (kind, id) and the exact text they
 * were parsed from, so that a record read again costs a copy of its tree,
 * not a parse (both store backends; lists of rules and objects are read far
 * more often than they change). The cache is never stale: a hit needs the
 * same text byte for byte. Thread-safe; callers get copies of their own.
 */
#ifndef MOAT_SERVER_DOCCACHE_H
#define MOAT_SERVER_DOCCACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct doc_cache;

/* 0 with *out, or -ENOMEM. */
int doc_cache_new(struct doc_cache **out);
void doc_cache_free(struct doc_cache *c);
/*
 * The document of record (kind k, id) whose stored text is text[0..len):
 * *doc gets a tree of the caller's own. -EBADMSG when the text is not a JSON
 * object, -ENOMEM.
 */
int doc_cache_get(struct doc_cache *c, int k, int64_t id, const char *text, size_t len,
                  json_t **doc);

#endif
