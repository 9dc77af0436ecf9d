/*
 * store: where moat-server keeps its state, behind one table of operations.
 *
 * The server sees records of several kinds (enum store_kind) — clusters,
 * network objects, defense rules, nodes, workloads, alerts and agent
 * bookkeeping — each a JSON document (jansson) with an integer id the store
 * assigns, a name that is unique (per cluster for kinds that have one), and
 * the cluster it belongs to. Removing a cluster removes its records. Bearer tokens
 * are kept as SHA-256 hashes with their role. Every write happens inside
 * begin()/commit(); rollback() undoes all of it, so a request that fails
 * changes nothing. Writes go through one connection, which callers use one
 * thread at a time; reads between read_begin() and read_end() run on a
 * connection of their own, side by side. store_sqlite.c is the embedded
 * backend (one SQLite file in WAL mode, schema migrations by PRAGMA
 * user_version); store_pg.c keeps the same records in PostgreSQL, where
 * several servers share one database (their write transactions are
 * serializable: commit() may answer -EAGAIN, see there).
 *
 * Every operation returns 0 or a negative errno: -ENOENT (no such record or
 * token), -EEXIST (the name is taken), -ENOMEM, -EIO (the database failed;
 * the backend logs why to stderr). Documents handed in are not taken over;
 * documents handed out belong to the caller (json_decref).
 */
#ifndef MOAT_SERVER_STORE_H
#define MOAT_SERVER_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Record kinds. Every kind but clusters and objects belongs to a cluster
 * (removed with it); its names are unique per cluster:
 *   nodes      name = node name; doc holds the node's facts and token_sha256;
 *   workloads  name = "NODE/NAMESPACE/NAME"; doc holds `node`;
 *   alerts     name = the SPEC 7 aggregation key;
 *   batches    name = "NODE/BATCH" (event batches already counted);
 *   joins      name = the SHA-256 of a join token; doc {created, expires, uses, used, ...};
 *   revisions  name = "revision"; doc {"revision": N};
 *   quarantines  name = "NODE/ADDRESS"; doc {node, address, reason, since, until}:
 *              what a node's kernel holds in quarantine, as the node reported it;
 *   releases   name = ADDRESS; doc {address, at, actor}: an operator ended the
 *              address's quarantines at `at` (kept while one could still run);
 *   threat_lists  name = "threat-intel"; doc {text, version, prefixes, updated}.
 * Audit records belong to no cluster (they outlive what they describe) and
 * their names (what was changed) repeat.
 *
 * Nothing stored is unreadable: documents nested deeper than
 * STORE_DOC_DEPTH_MAX are refused (-EINVAL), reads skip a row whose text
 * does not parse (and say so on stderr), and rows that SQLite's JSON
 * functions cannot read are moved aside into a quarantine table: at
 * startup (rows added since the last start) and when a write meets one.
 */
enum store_kind {
    STORE_CLUSTER = 0,
    STORE_OBJECT = 1,
    STORE_RULE = 2,
    STORE_NODE = 3,
    STORE_WORKLOAD = 4,
    STORE_ALERT = 5,
    STORE_BATCH = 6,
    STORE_JOIN = 7,
    STORE_REVISION = 8,
    STORE_AUDIT = 9,
    STORE_QUARANTINE = 10, /* per cluster */
    STORE_RELEASE = 11,    /* per cluster */
    STORE_THREATS = 12,    /* per cluster */
    STORE_KINDS            /* how many (store_kinds.h has each one's table) */
};

#define STORE_DOC_DEPTH_MAX 32

/* A bearer token's record (store_ops.token_find). */
struct store_token {
    int64_t id;
    char role[16];   /* admin, viewer, agent */
    int64_t node_id; /* agent: the node record it belongs to */
};

/* One equality filter on a top-level document field (booleans read "true"/"false"). */
struct store_filter {
    const char *field; /* a plain field name: letters, digits, '_' */
    const char *value;
};

#define STORE_FILTERS_MAX 8

struct store_query {
    const char *cluster; /* kinds with a cluster: NULL = every cluster */
    struct store_filter filters[STORE_FILTERS_MAX];
    size_t nfilters;
    /* Range on the text field `range_field` (e.g. "last_seen"): since <= v < until. */
    const char *range_field;
    const char *since, *until; /* NULL = open */
    /* When any_value is set: at least one of any_fields[] equals it (paths "a.b"). */
    const char *any_fields[2];
    const char *any_value;
    /* When ref is set (rules only): rules whose source or a destination object is `ref`
     * as text (a name, or an id: 5 and "5" both read "5"). */
    const char *ref;
    /* When set: records whose name begins with it (at most STORE_PREFIX_MAX bytes, the last
     * one ASCII below DEL), served by the (cluster, name) index: "NODE/" is a node's
     * workloads without reading the others. */
    const char *name_prefix;
    int newest_first; /* order by id descending */
    int64_t limit;    /* < 0: no limit */
    int64_t offset;
};

#define STORE_PREFIX_MAX 255

/* The least text above every text that begins with `prefix` (store_query.name_prefix) into
 * out (STORE_PREFIX_MAX + 1 bytes); false when the prefix is empty, too long or ends in a
 * byte that is not ASCII below DEL. */
bool store_prefix_upper(const char *prefix, char *out);

#define STORE_TALLY_EXTRA 24 /* extra counters one tally can add to */

/* An integer field one level down ("parent.key"), made (from 0) when missing. */
struct store_count {
    const char *parent, *key;
    int64_t add;
};

/* What store_ops.tally adds to a record (fields are plain top-level names). */
struct store_tally {
    const char *count; /* integer field, grows by add */
    int64_t add;
    const char *low, *low_value;     /* text field, becomes min(itself, low_value) */
    const char *high, *high_value;   /* text field, becomes max(itself, high_value) */
    const struct store_count *extra; /* nextra (<= STORE_TALLY_EXTRA) more counters */
    size_t nextra;
};

struct store;

struct store_ops {
    const char *name;
    /* Opens (creating and migrating when needed) the store in folder `dir`. */
    int (*open)(struct store *st, const char *dir);
    /* Closes the store; no thread may be between read_begin() and read_end(). */
    void (*close)(struct store *st);
    /*
     * Starts a read-only request on the calling thread: until read_end(), this
     * thread's operations run on a read connection of its own (taken from a
     * pool) inside one read transaction, so they see one snapshot (the last
     * commit before the first read) while other threads read and one writes.
     * Writes and begin() fail there (-EROFS for begin/commit/rollback, -EIO
     * otherwise). Outside read_begin()/read_end() a thread uses the one writer
     * connection, and callers must take turns on it (in moat-server only
     * the writer thread uses it, writer.h). 0, -EBUSY when the thread is already reading, -ENOMEM,
     * -EIO.
     */
    int (*read_begin)(struct store *st);
    /* Ends the calling thread's read-only request (none: nothing happens). */
    void (*read_end)(struct store *st);
    /* A write transaction on the writer connection (see read_begin). */
    int (*begin)(struct store *st);
    /*
     * -EAGAIN: the transaction conflicted with another server's on the same
     * database (PostgreSQL's serialization failure, met by commit or by any
     * operation of the transaction): nothing of it stays, and running the
     * whole transaction again from begin() is the way on. SQLite never
     * answers it (one writer).
     */
    int (*commit)(struct store *st);
    int (*rollback)(struct store *st);
    /* Runs SQL that returns nothing on the writer connection (the writer's savepoints). */
    int (*exec)(struct store *st, const char *sql);
    /*
     * Adds a token: its hash, its role, and for an agent's credential the node
     * record it belongs to (removed with it); *id gets its id (may be NULL).
     */
    int (*token_add)(struct store *st, const char *hash, const char *role, int64_t node_id,
                     int64_t *id);
    /* The token with this hash (one indexed lookup); -ENOENT when unknown. */
    int (*token_find)(struct store *st, const char *hash, struct store_token *out);
    /* The admin and viewer tokens as [{id, role, created}] (no hashes). */
    int (*token_list)(struct store *st, json_t **items);
    /* Adds a record; `cluster` is for kinds that have one (NULL otherwise). *id gets the new id. */
    int (*insert)(struct store *st, enum store_kind k, const char *cluster, const char *name,
                  const json_t *doc, int64_t *id);
    /* Replaces a record's name (NULL keeps it) and document. */
    int (*update)(struct store *st, enum store_kind k, int64_t id, const char *name,
                  const json_t *doc);
    int (*remove)(struct store *st, enum store_kind k, int64_t id);
    /* The document of record `id` with "id" set; *cluster (may be NULL) gets a copy to free. */
    int (*get)(struct store *st, enum store_kind k, int64_t id, json_t **doc, char **cluster);
    /* The id of the record named `name` (in `cluster`, for rules). */
    int (*find)(struct store *st, enum store_kind k, const char *cluster, const char *name,
                int64_t *id);
    /* Records matching `q`, by id, each document with "id" set; *total counts all matches. */
    int (*list)(struct store *st, enum store_kind k, const struct store_query *q, json_t **items,
                int64_t *total);
    /*
     * Every record of kind k (of `cluster` for kinds that have one; NULL:
     * all), by id, as the text it is stored as: fn(arg, id, text, len) per
     * row (text valid during the call only). A nonzero return of fn ends
     * the scan and is returned. The policy answer's builder (polbuild.h)
     * compares these texts with the ones it read last and parses only the
     * rows that changed.
     */
    int (*scan)(struct store *st, enum store_kind k, const char *cluster,
                int (*fn)(void *arg, int64_t id, const char *text, size_t len), void *arg);
    /*
     * Adds to the counters of the record named `name` in `cluster` (kinds
     * with a cluster), changing its document in place in the store: the
     * integer field t->count grows by t->add, the text field t->low becomes
     * the smaller of itself and t->low_value and t->high the larger of itself
     * and t->high_value (string order; timestamps "YYYY-MM-DDTHH:MM:SSZ"),
     * and each of t->extra grows by its add.
     * When `text` is not NULL, *id gets the record's id and *text the new
     * document with "id" as compact JSON (as `get` would show it; caller
     * frees); else *id is 0. -ENOENT when there is no such record (nothing
     * changes).
     */
    int (*tally)(struct store *st, enum store_kind k, const char *cluster, const char *name,
                 const struct store_tally *t, int64_t *id, char **text);
    /*
     * Removes the records whose text field `field` (a plain name) is below
     * `before`; *n gets how many. An index on the field serves it.
     */
    int (*purge)(struct store *st, enum store_kind k, const char *field, const char *before,
                 int64_t *n);

    /*
     * Several servers on one store (NULL where a store has one server):
     * notify() queues a notice (text up to STORE_NOTICE_MAX bytes) inside the
     * write transaction, sent to every other server listening only when it
     * commits; listen() starts a thread that calls fn(arg, text) for each
     * notice another server sent, and fn(arg, NULL) after its connection was
     * lost and made again (notices may have been missed: look at everything
     * again). listen(st, NULL, NULL) ends the thread (before what fn uses
     * goes away); close() does too.
     */
    int (*notify)(struct store *st, const char *text);
    int (*listen)(struct store *st, void (*fn)(void *arg, const char *text), void *arg);

    /*
     * Copying a store (moat-server migrate). dump(): the records of kind k
     * with id > after, at most max, by id, as [{id, cluster, name, doc}]
     * (cluster null for kinds without); token_dump(): every token as [{id,
     * hash, role, created, node}] (node null or the node record's id).
     * load() and token_load() add one such row keeping its id (inside a
     * transaction), load_end() makes new ids continue after the largest.
     * NULL where a backend cannot be a target.
     */
    int (*dump)(struct store *st, enum store_kind k, int64_t after, size_t max, json_t **rows);
    int (*token_dump)(struct store *st, json_t **rows);
    int (*load)(struct store *st, enum store_kind k, const json_t *row);
    int (*token_load)(struct store *st, const json_t *row);
    int (*load_end)(struct store *st);
};

#define STORE_NOTICE_MAX 7900 /* PostgreSQL's NOTIFY takes up to 8000 bytes */

struct store {
    const struct store_ops *ops;
    void *impl;           /* the backend's own state */
    const char *password; /* PostgreSQL: a password to connect with, or NULL (not owned) */
};

extern const struct store_ops store_sqlite_ops;
/* The PostgreSQL backend: open()'s `dir` is a libpq connection URI or conninfo string. */
extern const struct store_ops store_pg_ops;

#endif
