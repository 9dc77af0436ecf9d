/*
 * migrate: copies one store into another (`moat-server migrate --from-data
 * DIR --database URL`: an SQLite installation into PostgreSQL) — every kind
 * of record and every token, keeping ids, in one transaction of the target,
 * which must be empty (nothing is written to one that is not). Then the
 * records of each kind are counted in both and must agree. Prints what it
 * copied, kind by kind, to `out`.
 */
#ifndef MOAT_SERVER_MIGRATE_H
#define MOAT_SERVER_MIGRATE_H

#include "store.h"

#include <stdio.h>

/*
 * 0 when everything was copied and the counts agree; -ENOTEMPTY (the target
 * holds records: nothing copied), -EOPNOTSUPP (the target cannot be loaded),
 * -EPROTO (the counts differ after the copy: said on stderr), or a store
 * error.
 */
int store_migrate(struct store *from, struct store *to, FILE *out);

#endif
