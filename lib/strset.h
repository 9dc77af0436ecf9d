/*
 * strset: a set of strings (open addressing, grows by doubling), for
 * "seen already?" questions over many names without an O(n^2) scan.
 */
#ifndef MOAT_STRSET_H
#define MOAT_STRSET_H

#include <stdbool.h>
#include <stddef.h>

struct strset {
    char **slot; /* copies, owned */
    size_t cap, n;
};

/* True when `key` is in the set. */
bool strset_has(const struct strset *s, const char *key);
/* Adds a copy of `key`: 1 when it was new, 0 when it was there already, -ENOMEM. */
int strset_add(struct strset *s, const char *key);
/* Frees what the set holds; it is empty (and usable) again. */
void strset_clear(struct strset *s);

#endif
