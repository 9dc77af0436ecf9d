/*
 * store_kinds: the one table of record kinds both store backends read —
 * each kind's table name and whether its records belong to a cluster. A new
 * kind is one line here (and its enum value in store.h); the PostgreSQL
 * backend makes the tables of kinds it does not find at startup, the SQLite
 * backend by a schema migration.
 */
#ifndef MOAT_SERVER_STORE_KINDS_H
#define MOAT_SERVER_STORE_KINDS_H

#include "store.h"

#include <stdbool.h>

struct store_kind_info {
    const char *table; /* the table's name (also what logs call the kind) */
    bool per_cluster;  /* has a cluster column; removed with its cluster */
};

extern const struct store_kind_info store_kinds[STORE_KINDS];

/* Kind k's table name ("?" for a value outside the enum). */
const char *store_kind_table(enum store_kind k);
/* Whether kind k's records belong to a cluster. */
bool store_kind_per_cluster(enum store_kind k);
/*
 * token_list() from token_dump()'s rows (taken): the admin and viewer tokens as
 * [{id, role, created}], without hashes or node credentials. 0 or -ENOMEM.
 */
int store_token_list_of(json_t *rows, json_t **items);
/* The depth of arrays and objects in v, counted up to limit + 1 (documents deeper than
 * STORE_DOC_DEPTH_MAX are refused by both backends). */
size_t store_doc_depth(const json_t *v, size_t limit);

#endif
