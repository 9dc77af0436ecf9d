/*
 * store_sqlite: the embedded store (see store.h) — one SQLite file,
 * DIR/moat.db, in WAL mode, with foreign keys on and a busy timeout so that
 * `moat-server token create` can write while the server runs. The schema is
 * versioned by PRAGMA user_version; migrations[i] takes version i to i + 1
 * and runs in the same transaction as the version bump.
 *
 * Connections: one writer connection, which the caller uses one thread at a
 * time (in moat-server, the writer thread: writer.h), and a pool of read-only connections
 * (PRAGMA query_only). Between read_begin() and read_end() a thread's
 * operations run on a pooled read connection inside one read transaction: a
 * snapshot of the last commit, read beside the writer and other readers (WAL).
 * Every connection keeps its prepared statements (up to STMT_CACHE, least
 * recently used out first), keyed by their SQL text; a statement is reset
 * and its bindings cleared after each use, so no statement holds a snapshot
 * open between operations.
 *
 * Durability: synchronous = FULL, so COMMIT returns only after the WAL has
 * been fsync'ed, and the server answers a write only after its COMMIT. An
 * acknowledged write survives a killed process (NORMAL would too: the WAL is
 * written before COMMIT returns) and also a power loss or kernel crash, which
 * NORMAL does not promise for the last transactions. The price is one fsync
 * per write transaction (an event batch is one transaction).
 */
#include "store.h"
#include "doccache.h"
#include "store_kinds.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PER_CLUSTER                                                                                \
    "  cluster TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,"                         \
    "  name TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE(cluster, name)"

/* A rule's object references (source, destinations[].object) as text, into rule_refs. */
#define RULE_REFS(row)                                                                             \
    "INSERT INTO rule_refs(rule, ref) SELECT " row ".id,"                                          \
    "  CAST(json_extract(" row ".doc, '$.source') AS TEXT)"                                        \
    "  WHERE json_extract(" row ".doc, '$.source') IS NOT NULL;"                                   \
    "INSERT INTO rule_refs(rule, ref) SELECT " row ".id,"                                          \
    "  CAST(json_extract(d.value, '$.object') AS TEXT)"                                            \
    "  FROM json_each(" row ".doc, '$.destinations') AS d"                                         \
    "  WHERE json_extract(d.value, '$.object') IS NOT NULL;"

static const char *const migrations[] = {
    /* 0 -> 1: tokens, clusters, objects (ids after the built-ins 1..3), rules */
    "CREATE TABLE tokens(hash TEXT PRIMARY KEY, role TEXT NOT NULL,"
    "  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')));"
    "CREATE TABLE clusters(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
    "  doc TEXT NOT NULL);"
    "CREATE TABLE objects(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
    "  doc TEXT NOT NULL);"
    "CREATE TABLE rules(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  cluster TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,"
    "  name TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE(cluster, name));"
    "INSERT INTO sqlite_sequence(name, seq) VALUES('objects', 3);",
    /* 1 -> 2: nodes, workloads, alerts and agent bookkeeping, all per cluster */
    "CREATE TABLE nodes(id INTEGER PRIMARY KEY AUTOINCREMENT," PER_CLUSTER ");"
    "CREATE TABLE workloads(id INTEGER PRIMARY KEY AUTOINCREMENT," PER_CLUSTER ");"
    "CREATE TABLE alerts(id INTEGER PRIMARY KEY AUTOINCREMENT," PER_CLUSTER ");"
    "CREATE TABLE batches(id INTEGER PRIMARY KEY AUTOINCREMENT," PER_CLUSTER ");"
    "CREATE TABLE joins(id INTEGER PRIMARY KEY AUTOINCREMENT," PER_CLUSTER ");"
    "CREATE TABLE revisions(id INTEGER PRIMARY KEY AUTOINCREMENT," PER_CLUSTER ");",
    /* 2 -> 3: a cluster's records in id order without sorting (lists page by id) */
    "CREATE INDEX rules_by_cluster ON rules(cluster, id);"
    "CREATE INDEX nodes_by_cluster ON nodes(cluster, id);"
    "CREATE INDEX workloads_by_cluster ON workloads(cluster, id);"
    "CREATE INDEX alerts_by_cluster ON alerts(cluster, id);",
    /* 3 -> 4: a quarantine for rows that do not parse; migrate() then moves them there
     * (sweep_new), so that the statements of 5 can read every row */
    "CREATE TABLE quarantine(id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL,"
    "  source_id INTEGER, cluster TEXT, name TEXT, doc TEXT,"
    "  moved TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')));"
    "CREATE TABLE swept(source TEXT PRIMARY KEY, upto INTEGER NOT NULL);",
    /* 4 -> 5: tokens with ids, node credentials among them (found by one indexed lookup);
     * a record per join token; rules' object references kept by triggers; indexes for the
     * retention purges; audit records */
    "CREATE TABLE tokens4(id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL,"
    "  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),"
    "  node INTEGER REFERENCES nodes(id) ON DELETE CASCADE);"
    "INSERT INTO tokens4(hash, role, created) SELECT hash, role, created FROM tokens;"
    "INSERT INTO tokens4(hash, role, node) SELECT json_extract(doc, '$.token_sha256'), 'agent', id"
    "  FROM nodes WHERE json_type(doc, '$.token_sha256') = 'text';"
    "DROP TABLE tokens;"
    "ALTER TABLE tokens4 RENAME TO tokens;"
    "CREATE INDEX tokens_by_node ON tokens(node);"
    "UPDATE nodes SET doc = json_remove(doc, '$.token_sha256');"
    "UPDATE joins SET name = json_extract(doc, '$.hash'), doc = json_set(json_remove(doc, "
    "'$.hash'),"
    "  '$.expires', NULL, '$.uses', 0, '$.used', 0, '$.via', 'get')"
    "  WHERE name = 'join' AND json_type(doc, '$.hash') = 'text';"
    "CREATE TABLE rule_refs(rule INTEGER NOT NULL REFERENCES rules(id) ON DELETE CASCADE,"
    "  ref TEXT NOT NULL);"
    "CREATE INDEX rule_refs_by_ref ON rule_refs(ref, rule);"
    "CREATE INDEX rule_refs_by_rule ON rule_refs(rule);"
    "CREATE TRIGGER rule_refs_insert AFTER INSERT ON rules BEGIN " RULE_REFS(
        "NEW") " END;"
               "CREATE TRIGGER rule_refs_update AFTER UPDATE OF doc ON rules BEGIN"
               "  DELETE FROM rule_refs WHERE rule = OLD.id; " RULE_REFS(
                   "NEW") " END;"
                          "INSERT INTO rule_refs(rule, ref) SELECT id, CAST(json_extract(doc, "
                          "'$.source') AS TEXT)"
                          "  FROM rules WHERE json_extract(doc, '$.source') IS NOT NULL;"
                          "INSERT INTO rule_refs(rule, ref) SELECT r.id, "
                          "CAST(json_extract(d.value, '$.object') AS TEXT)"
                          "  FROM rules AS r, json_each(r.doc, '$.destinations') AS d"
                          "  WHERE json_extract(d.value, '$.object') IS NOT NULL;"
                          "CREATE INDEX alerts_by_last_seen ON alerts(json_extract(doc, "
                          "'$.last_seen'));"
                          "CREATE INDEX batches_by_time ON batches(json_extract(doc, '$.time'));"
                          "CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT "
                          "NULL,"
                          "  doc TEXT NOT NULL);"
                          "CREATE INDEX audit_by_time ON audit(json_extract(doc, '$.time'));",
    /* 5 -> 6: detections shared through the server: quarantines nodes report, releases
     * an operator asked for, each cluster's threat list */
    "CREATE TABLE quarantines(id INTEGER PRIMARY KEY AUTOINCREMENT," PER_CLUSTER ");"
    "CREATE TABLE releases(id INTEGER PRIMARY KEY AUTOINCREMENT," PER_CLUSTER ");"
    "CREATE TABLE threat_lists(id INTEGER PRIMARY KEY AUTOINCREMENT," PER_CLUSTER ");"
    "CREATE INDEX quarantines_by_cluster ON quarantines(cluster, id);",
};

/* The kinds this schema has tables for (store_kinds.h holds their names): all of them. */
#define NTABLES ((size_t)STORE_KINDS)
static const char *tables(enum store_kind k)
{
    return store_kind_table(k);
}

#define STMT_CACHE    64 /* prepared statements kept per connection */
#define POOL_IDLE_MAX 64 /* idle read connections kept for the next reader */

struct stmt_entry {
    uint64_t hash; /* of sql */
    char *sql;
    sqlite3_stmt *s;
    uint64_t used; /* conn.clock at the last use */
};

/* One SQLite connection and its prepared statements. */
struct conn {
    sqlite3 *db;
    struct stmt_entry cache[STMT_CACHE];
    size_t ncache;
    uint64_t clock;
    struct conn *next; /* in the idle pool */
};

struct sq {
    struct conn *writer;
    char path[PATH_MAX];
    pthread_key_t reading; /* the thread's read connection between read_begin and read_end */
    pthread_mutex_t lock;  /* guards idle and nidle */
    struct conn *idle;
    size_t nidle;
    struct doc_cache *docs; /* parsed documents (doccache.h) */
    struct conn *ckpt;      /* the checkpointer's connection */
    pthread_t ckpt_thread;
    pthread_mutex_t ckpt_lock; /* guards ckpt_due and ckpt_stop */
    pthread_cond_t ckpt_wake;
    bool ckpt_due, ckpt_stop, ckpt_running;
    bool synced; /* the locks, condition and key exist */
};

/* Whether records of kind k belong to a cluster (have a cluster column). */
static bool per_cluster(enum store_kind k)
{
    return store_kind_per_cluster(k);
}

/* The connection this thread's operations use: its read connection, else the writer. */
/*
 * A read-only request takes its read connection and opens its transaction
 * at its first read, not at read_begin(): a request that reads nothing (a
 * long-poll answered from memory) costs no SQL. Until then the thread's key
 * holds this marker.
 */
static const char read_pending; /* only its address is used */
#define READ_PENDING ((void *)&read_pending)

static int read_take(struct sq *q, struct conn **out);

static struct conn *conn_of(struct store *st)
{
    struct sq *q = st->impl;
    struct conn *c = pthread_getspecific(q->reading);
    if (c == READ_PENDING && read_take(q, &c) < 0)
        return NULL; /* stmt() fails with -EIO */
    return c ? c : q->writer;
}

static int db_fail(sqlite3 *db, const char *what)
{
    fprintf(stderr, "moat-server: store: %s: %s\n", what, sqlite3_errmsg(db));
    return -EIO;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "moat-server: store: %s\n", msg ? msg : "exec failed");
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *sql; sql++)
        h = (h ^ (unsigned char)*sql) * 1099511628211ull;
    return h;
}

/*
 * The prepared statement for `sql` on connection c, from its cache or newly
 * prepared (evicting the least recently used). The caller binds and steps it,
 * then hands it back with stmt_done(). A statement is not used twice at once:
 * every operation finishes its statements before it returns. -EIO when the
 * SQL does not compile, -ENOMEM.
 */
static int stmt(struct conn *c, const char *sql, sqlite3_stmt **out)
{
    if (!c)
        return -EIO; /* no read connection could be had (conn_of) */
    uint64_t h = sql_hash(sql);
    struct stmt_entry *e = NULL;
    for (size_t i = 0; i < c->ncache; i++) {
        e = &c->cache[i];
        if (e->hash == h && strcmp(e->sql, sql) == 0) {
            e->used = ++c->clock;
            *out = e->s;
            return 0;
        }
    }
    sqlite3_stmt *s;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
        return db_fail(c->db, sql);
    char *copy = strdup(sql);
    if (!copy) {
        sqlite3_finalize(s);
        return -ENOMEM;
    }
    if (c->ncache < STMT_CACHE) {
        e = &c->cache[c->ncache++];
    } else {
        e = &c->cache[0];
        for (size_t i = 1; i < c->ncache; i++)
            if (c->cache[i].used < e->used)
                e = &c->cache[i];
        sqlite3_finalize(e->s);
        free(e->sql);
    }
    *e = (struct stmt_entry){.hash = h, .sql = copy, .s = s, .used = ++c->clock};
    *out = s;
    return 0;
}

/* Hands a statement back: reset (its snapshot ends) with its bindings cleared. */
static void stmt_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Runs a statement that returns no rows and hands it back; -EEXIST on a unique constraint. */
static int step_done(sqlite3 *db, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    int ext = sqlite3_extended_errcode(db);
    int err = 0;
    if (rc != SQLITE_DONE)
        err = ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY
                  ? -EEXIST
                  : db_fail(db, "write");
    stmt_done(s);
    return err;
}

/* Runs `sql` (no rows, no parameters) through c's statement cache. */
static int run(struct conn *c, const char *sql)
{
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    return err ? err : step_done(c->db, s);
}

static void conn_close(struct conn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ncache; i++) {
        sqlite3_finalize(c->cache[i].s);
        free(c->cache[i].sql);
    }
    sqlite3_close(c->db);
    free(c);
}

/* What a connection is for: the PRAGMAs it starts with. */
#define CONN_WRITER                                                                                \
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"              \
    "PRAGMA cache_size = -16384;" /* 16 MiB: a day's alerts stay in memory */
#define CONN_READER       "PRAGMA query_only = 1;"
#define CONN_CHECKPOINTER "PRAGMA synchronous = FULL;" /* a query_only one cannot checkpoint */

/*
 * Opens a connection to `path` and runs `pragmas` (CONN_*); the writer's
 * creates the file. Connections are used by one thread at a time (NOMUTEX).
 */
static int conn_open(const char *path, const char *pragmas, struct conn **out)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                (strcmp(pragmas, CONN_WRITER) == 0 ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        int err = c->db ? db_fail(c->db, path) : -ENOMEM;
        conn_close(c);
        return err;
    }
    sqlite3_busy_timeout(c->db, 5000);
    int err = exec(c->db, pragmas);
    if (err) {
        conn_close(c);
        return err;
    }
    *out = c;
    return 0;
}

#define SWEEP_VERSION 4 /* the schema that has the quarantine */
#define SWEEP_TABLES  9 /* the tables before schema 5 (audit came with it) */

/*
 * Moves the rows added since the last start that SQLite's JSON functions
 * cannot read into quarantine (store.h), for the first `ntables` tables.
 * The migration to schema 4 sweeps every row once; `swept` keeps how far
 * each table was looked at.
 */
static int sweep_new(sqlite3 *db, size_t ntables)
{
    int err = exec(db, "BEGIN IMMEDIATE;");
    int64_t moved = 0;
    for (size_t t = 0; !err && t < ntables; t++) {
        char sql[512];
        const char *cl = per_cluster((enum store_kind)t) ? "cluster" : "NULL";
        snprintf(sql, sizeof(sql),
                 "INSERT INTO quarantine(source, source_id, cluster, name, doc) SELECT '%s', id, "
                 "%s, name, doc FROM %s WHERE id > (SELECT coalesce(max(upto), 0) FROM swept "
                 "WHERE source = '%s') AND NOT json_valid(doc)",
                 tables((enum store_kind)t), cl, tables((enum store_kind)t),
                 tables((enum store_kind)t));
        err = exec(db, sql);
        moved += err ? 0 : sqlite3_changes(db);
        snprintf(sql, sizeof(sql),
                 "DELETE FROM %s WHERE id > (SELECT coalesce(max(upto), 0) FROM swept WHERE "
                 "source = '%s') AND NOT json_valid(doc)",
                 tables((enum store_kind)t), tables((enum store_kind)t));
        if (!err)
            err = exec(db, sql);
        snprintf(sql, sizeof(sql),
                 "INSERT OR REPLACE INTO swept(source, upto) SELECT '%s', coalesce(max(id), 0) "
                 "FROM %s",
                 tables((enum store_kind)t), tables((enum store_kind)t));
        if (!err)
            err = exec(db, sql);
    }
    err = err ? (exec(db, "ROLLBACK;"), err) : exec(db, "COMMIT;");
    if (!err && moved)
        fprintf(stderr,
                "moat-server: store: %lld stored rows do not parse: moved aside into the table "
                "quarantine\n",
                (long long)moved);
    return err;
}

static int user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, "user_version");
    int rc = sqlite3_step(s);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : db_fail(db, "user_version");
}

static int migrate(sqlite3 *db)
{
    int v;
    int err = user_version(db, &v);
    int n = (int)(sizeof(migrations) / sizeof(migrations[0]));
    if (!err && v > n) {
        fprintf(stderr, "moat-server: store: schema version %d is newer than this server (%d)\n", v,
                n);
        return -EPROTO;
    }
    for (; !err && v < n; v++) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d;", v + 1);
        err = exec(db, "BEGIN IMMEDIATE;");
        if (!err)
            err = exec(db, migrations[v]);
        if (!err)
            err = exec(db, bump);
        err = err ? (exec(db, "ROLLBACK;"), err) : exec(db, "COMMIT;");
        if (!err && v + 1 == SWEEP_VERSION)
            err = sweep_new(db, SWEEP_TABLES);
    }
    return err;
}

/*
 * Checkpoints: a commit only appends to the WAL; copying the WAL back into
 * the database file (and fsyncing it) is the checkpointer thread's job, on a
 * connection of its own, once the WAL holds CKPT_PAGES pages. It runs beside
 * the writer and the readers (PASSIVE), so no request waits for it. Should
 * it fall far behind, the committing writer checkpoints itself.
 */
#define CKPT_PAGES        1000  /* 4 MiB of WAL wakes the checkpointer */
#define CKPT_INLINE_PAGES 25000 /* ~100 MiB: the writer checkpoints at once */

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct sq *q = arg;
    if (pages >= CKPT_INLINE_PAGES) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (pages >= CKPT_PAGES) {
        pthread_mutex_lock(&q->ckpt_lock);
        q->ckpt_due = true;
        pthread_cond_signal(&q->ckpt_wake);
        pthread_mutex_unlock(&q->ckpt_lock);
    }
    return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
    struct sq *q = arg;
    pthread_mutex_lock(&q->ckpt_lock);
    while (!q->ckpt_stop) {
        if (!q->ckpt_due) {
            pthread_cond_wait(&q->ckpt_wake, &q->ckpt_lock);
            continue;
        }
        q->ckpt_due = false;
        pthread_mutex_unlock(&q->ckpt_lock);
        int rc =
            sqlite3_wal_checkpoint_v2(q->ckpt->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            db_fail(q->ckpt->db, "checkpoint");
        pthread_mutex_lock(&q->ckpt_lock);
    }
    pthread_mutex_unlock(&q->ckpt_lock);
    return NULL;
}

static void sq_close(struct store *st)
{
    struct sq *q = st ? st->impl : NULL;
    if (!q)
        return;
    if (q->ckpt_running) {
        pthread_mutex_lock(&q->ckpt_lock);
        q->ckpt_stop = true;
        pthread_cond_signal(&q->ckpt_wake);
        pthread_mutex_unlock(&q->ckpt_lock);
        pthread_join(q->ckpt_thread, NULL);
    }
    conn_close(q->ckpt);
    while (q->idle) {
        struct conn *c = q->idle;
        q->idle = c->next;
        conn_close(c);
    }
    conn_close(q->writer); /* the last connection: SQLite checkpoints and removes the WAL */
    doc_cache_free(q->docs);
    if (q->synced) {
        pthread_key_delete(q->reading);
        pthread_mutex_destroy(&q->lock);
        pthread_mutex_destroy(&q->ckpt_lock);
        pthread_cond_destroy(&q->ckpt_wake);
    }
    free(q);
    st->impl = NULL;
}

/* The locks, the condition and the thread key of q: all or none. 0 or -ENOMEM. */
static int sq_sync_init(struct sq *q)
{
    int done = 0;
    if (pthread_key_create(&q->reading, NULL) == 0 && ++done &&
        pthread_mutex_init(&q->lock, NULL) == 0 && ++done &&
        pthread_mutex_init(&q->ckpt_lock, NULL) == 0 && ++done &&
        pthread_cond_init(&q->ckpt_wake, NULL) == 0) {
        q->synced = true;
        return doc_cache_new(&q->docs);
    }
    if (done > 2)
        pthread_mutex_destroy(&q->ckpt_lock);
    if (done > 1)
        pthread_mutex_destroy(&q->lock);
    if (done > 0)
        pthread_key_delete(q->reading);
    return -ENOMEM;
}

static int sq_open(struct store *st, const char *dir)
{
    struct sq *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    st->impl = q;
    int err = (size_t)snprintf(q->path, sizeof(q->path), "%s/moat.db", dir) >= sizeof(q->path)
                  ? -ENAMETOOLONG
                  : sq_sync_init(q);
    if (!err)
        err = conn_open(q->path, CONN_WRITER, &q->writer);
    if (!err)
        err = migrate(q->writer->db);
    if (!err)
        err = sweep_new(q->writer->db, NTABLES);
    if (!err)
        err = conn_open(q->path, CONN_CHECKPOINTER, &q->ckpt);
    if (!err && pthread_create(&q->ckpt_thread, NULL, checkpointer, q) != 0)
        err = -EAGAIN;
    if (!err) {
        q->ckpt_running = true;
        sqlite3_wal_hook(q->writer->db, wal_hook, q);
    }
    if (err)
        sq_close(st);
    return err;
}

static int sq_read_begin(struct store *st)
{
    struct sq *q = st->impl;
    if (pthread_getspecific(q->reading))
        return -EBUSY;
    return pthread_setspecific(q->reading, READ_PENDING) != 0 ? -ENOMEM : 0;
}

/* The first read of a read-only request: a pooled connection in a read transaction. */
static int read_take(struct sq *q, struct conn **out)
{
    *out = NULL;
    pthread_mutex_lock(&q->lock);
    struct conn *c = q->idle;
    if (c) {
        q->idle = c->next;
        q->nidle--;
    }
    pthread_mutex_unlock(&q->lock);
    int err = c ? 0 : conn_open(q->path, CONN_READER, &c);
    if (!err && (err = run(c, "BEGIN")) < 0)
        conn_close(c);
    if (!err && pthread_setspecific(q->reading, c) != 0) {
        conn_close(c);
        err = -ENOMEM;
    }
    if (!err)
        *out = c;
    return err;
}

static void sq_read_end(struct store *st)
{
    struct sq *q = st->impl;
    struct conn *c = pthread_getspecific(q->reading);
    if (!c)
        return;
    pthread_setspecific(q->reading, NULL);
    if (c == READ_PENDING)
        return;                 /* it read nothing */
    if (run(c, "COMMIT") < 0) { /* a read transaction; should it fail, drop the connection */
        conn_close(c);
        return;
    }
    pthread_mutex_lock(&q->lock);
    if (q->nidle < POOL_IDLE_MAX) {
        c->next = q->idle;
        q->idle = c;
        q->nidle++;
        c = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    conn_close(c);
}

static int sq_begin(struct store *st)
{
    struct sq *q = st->impl;
    if (pthread_getspecific(q->reading)) {
        fprintf(stderr, "moat-server: store: a write transaction inside a read-only request\n");
        return -EROFS;
    }
    return run(q->writer, "BEGIN IMMEDIATE");
}

/* COMMIT or ROLLBACK of the writer's transaction; -EROFS inside a read-only request. */
static int writer_end(struct store *st, const char *sql)
{
    struct sq *q = st->impl;
    return pthread_getspecific(q->reading) ? -EROFS : run(q->writer, sql);
}

static int sq_commit(struct store *st)
{
    return writer_end(st, "COMMIT");
}

static int sq_rollback(struct store *st)
{
    return writer_end(st, "ROLLBACK");
}

static int sq_exec(struct store *st, const char *sql)
{
    struct sq *q = st->impl;
    return pthread_getspecific(q->reading) ? -EROFS : run(q->writer, sql);
}

static int sq_token_add(struct store *st, const char *hash, const char *role, int64_t node_id,
                        int64_t *id)
{
    struct conn *c = conn_of(st);
    sqlite3_stmt *s;
    int err = stmt(c, "INSERT INTO tokens(hash, role, node) VALUES(?, ?, ?)", &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, role, -1, SQLITE_STATIC);
    if (node_id > 0)
        sqlite3_bind_int64(s, 3, node_id);
    err = step_done(c->db, s);
    if (!err && id)
        *id = sqlite3_last_insert_rowid(c->db);
    return err;
}

static int sq_token_find(struct store *st, const char *hash, struct store_token *out)
{
    struct conn *c = conn_of(st);
    sqlite3_stmt *s;
    int err = stmt(c, "SELECT id, role, node FROM tokens WHERE hash = ?", &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *role = (const char *)sqlite3_column_text(s, 1);
        *out = (struct store_token){.id = sqlite3_column_int64(s, 0),
                                    .node_id = sqlite3_column_int64(s, 2)};
        snprintf(out->role, sizeof(out->role), "%s", role ? role : "");
    }
    err = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : db_fail(c->db, "token");
    stmt_done(s);
    return err;
}

static int sq_token_dump(struct store *st, json_t **rows);

static int sq_token_list(struct store *st, json_t **items)
{
    json_t *rows = NULL;
    int err = sq_token_dump(st, &rows);
    return err ? err : store_token_list_of(rows, items);
}

/* Binds a document's text; -EINVAL for one nested too deep to be read back. */
static int bind_doc(sqlite3_stmt *s, int i, const json_t *doc)
{
    if (store_doc_depth(doc, STORE_DOC_DEPTH_MAX) > STORE_DOC_DEPTH_MAX) {
        fprintf(stderr, "moat-server: store: a document nested deeper than %d levels refused\n",
                STORE_DOC_DEPTH_MAX);
        return -EINVAL;
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return -ENOMEM;
    sqlite3_bind_text(s, i, text, -1, free);
    return 0;
}

static int sq_insert(struct store *st, enum store_kind k, const char *cluster, const char *name,
                     const json_t *doc, int64_t *id)
{
    struct conn *c = conn_of(st);
    char sql[160];
    if (per_cluster(k))
        snprintf(sql, sizeof(sql), "INSERT INTO %s(cluster, name, doc) VALUES(?3, ?1, ?2)",
                 tables(k));
    else
        snprintf(sql, sizeof(sql), "INSERT INTO %s(name, doc) VALUES(?1, ?2)", tables(k));
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (per_cluster(k))
        sqlite3_bind_text(s, 3, cluster, -1, SQLITE_STATIC);
    if ((err = bind_doc(s, 2, doc)) < 0) {
        stmt_done(s);
        return err;
    }
    err = step_done(c->db, s);
    if (!err)
        *id = sqlite3_last_insert_rowid(c->db);
    return err;
}

static int sq_update(struct store *st, enum store_kind k, int64_t id, const char *name,
                     const json_t *doc)
{
    struct conn *c = conn_of(st);
    char sql[128];
    snprintf(sql, sizeof(sql), "UPDATE %s SET name = COALESCE(?1, name), doc = ?2 WHERE id = ?3",
             tables(k));
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, id);
    if ((err = bind_doc(s, 2, doc)) < 0) {
        stmt_done(s);
        return err;
    }
    err = step_done(c->db, s);
    if (!err && sqlite3_changes(c->db) == 0)
        return -ENOENT;
    return err;
}

static int sq_remove(struct store *st, enum store_kind k, int64_t id)
{
    struct conn *c = conn_of(st);
    char sql[96];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", tables(k));
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    if (err)
        return err;
    sqlite3_bind_int64(s, 1, id);
    err = step_done(c->db, s);
    if (!err && sqlite3_changes(c->db) == 0)
        return -ENOENT;
    return err;
}

/* A row's document (column 1) of kind k with "id" (column 0) set. */
static int row_doc(struct sq *q, enum store_kind k, sqlite3_stmt *s, json_t **doc)
{
    int64_t id = sqlite3_column_int64(s, 0);
    const char *text = (const char *)sqlite3_column_text(s, 1);
    int err =
        text ? doc_cache_get(q->docs, (int)k, id, text, (size_t)sqlite3_column_bytes(s, 1), doc)
             : -EBADMSG;
    if (!err && json_object_set_new(*doc, "id", json_integer(id)) < 0) {
        json_decref(*doc);
        err = -ENOMEM;
    }
    return err;
}

/* Says that a row was skipped because its document does not parse. */
static void skipped_row(enum store_kind k, sqlite3_stmt *s)
{
    fprintf(stderr, "moat-server: store: %s record %lld does not parse: skipped\n", tables(k),
            (long long)sqlite3_column_int64(s, 0));
}

static int sq_get(struct store *st, enum store_kind k, int64_t id, json_t **doc, char **cluster)
{
    struct conn *c = conn_of(st);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT id, doc, %s FROM %s WHERE id = ?",
             per_cluster(k) ? "cluster" : "NULL", tables(k));
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    if (err)
        return err;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        err = rc == SQLITE_DONE ? -ENOENT : db_fail(c->db, "get");
        stmt_done(s);
        return err;
    }
    err = row_doc(st->impl, k, s, doc);
    if (err == -EBADMSG) {
        skipped_row(k, s);
        err = -ENOENT;
    }
    if (!err && cluster) {
        const char *cl = (const char *)sqlite3_column_text(s, 2);
        *cluster = cl ? strdup(cl) : NULL;
        if (cl && !*cluster) {
            json_decref(*doc);
            err = -ENOMEM;
        }
    }
    stmt_done(s);
    return err;
}

static int sq_find(struct store *st, enum store_kind k, const char *cluster, const char *name,
                   int64_t *id)
{
    struct conn *c = conn_of(st);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT id FROM %s WHERE name = ?1%s", tables(k),
             per_cluster(k) ? " AND cluster = ?2" : "");
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (per_cluster(k))
        sqlite3_bind_text(s, 2, cluster, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    err = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : db_fail(c->db, "find");
    stmt_done(s);
    return err;
}

/*
 * The WHERE clause of a query: parameters ?1 (cluster, only when given, so
 * that the (cluster, name) index serves it), ?2n+2, ?2n+3 per filter, ?40
 * range path, ?41 since, ?42 until, ?43 ?44 any paths, ?45 any value. The
 * text depends only on which parts are present, so the statement cache
 * keeps one statement per shape.
 */
static void where_clause(char *buf, size_t n, const struct store_query *q)
{
    /* Rows SQLite cannot parse match no JSON filter (and do not fail the query); the
     * check reuses the parse the filters make. */
    bool json = q->nfilters || q->range_field || q->any_value;
    size_t len = (size_t)snprintf(buf, n, " WHERE %s%s", q->cluster ? "cluster = ?1" : "1",
                                  json ? " AND json_valid(doc)" : "");
    if (q->ref && len < n)
        len += (size_t)snprintf(buf + len, n - len,
                                " AND id IN (SELECT rule FROM rule_refs WHERE ref = ?48)");
    if (q->name_prefix && len < n)
        len += (size_t)snprintf(buf + len, n - len, " AND name >= ?49 AND name < ?50");
    for (size_t i = 0; i < q->nfilters && len < n; i++) {
        int p = (int)(2 * i + 2);
        len += (size_t)snprintf(buf + len, n - len,
                                " AND (CASE json_type(doc, ?%d) WHEN 'true' THEN 'true'"
                                " WHEN 'false' THEN 'false' ELSE CAST(json_extract(doc, ?%d)"
                                " AS TEXT) END) = ?%d",
                                p, p, p + 1);
    }
    if (q->range_field && len < n)
        len += (size_t)snprintf(buf + len, n - len,
                                " AND (?41 IS NULL OR json_extract(doc, ?40) >= ?41)"
                                " AND (?42 IS NULL OR json_extract(doc, ?40) < ?42)");
    if (q->any_value && len < n)
        snprintf(buf + len, n - len,
                 " AND (CAST(json_extract(doc, ?43) AS TEXT) = ?45"
                 " OR CAST(json_extract(doc, ?44) AS TEXT) = ?45)");
}

static void bind_path(sqlite3_stmt *s, int i, const char *field)
{
    char path[80];
    snprintf(path, sizeof(path), "$.%s", field ? field : "");
    sqlite3_bind_text(s, i, path, -1, SQLITE_TRANSIENT);
}

static void bind_query(sqlite3_stmt *s, const struct store_query *q)
{
    if (q->cluster)
        sqlite3_bind_text(s, 1, q->cluster, -1, SQLITE_STATIC);
    for (size_t i = 0; i < q->nfilters; i++) {
        bind_path(s, (int)(2 * i + 2), q->filters[i].field);
        sqlite3_bind_text(s, (int)(2 * i + 3), q->filters[i].value, -1, SQLITE_STATIC);
    }
    if (q->range_field) {
        bind_path(s, 40, q->range_field);
        sqlite3_bind_text(s, 41, q->since, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 42, q->until, -1, SQLITE_STATIC);
    }
    if (q->ref)
        sqlite3_bind_text(s, 48, q->ref, -1, SQLITE_STATIC);
    char upper[STORE_PREFIX_MAX + 1];
    if (q->name_prefix && store_prefix_upper(q->name_prefix, upper)) {
        sqlite3_bind_text(s, 49, q->name_prefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 50, upper, -1, SQLITE_TRANSIENT);
    }
    if (q->any_value) {
        bind_path(s, 43, q->any_fields[0]);
        bind_path(s, 44, q->any_fields[1] ? q->any_fields[1] : q->any_fields[0]);
        sqlite3_bind_text(s, 45, q->any_value, -1, SQLITE_STATIC);
    }
}

static int count_rows(struct conn *c, const char *table, const char *where,
                      const struct store_query *q, int64_t *total)
{
    char sql[2048];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s%s", table, where);
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    if (err)
        return err;
    bind_query(s, q);
    int rc = sqlite3_step(s);
    *total = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    err = rc == SQLITE_ROW ? 0 : db_fail(c->db, "count");
    stmt_done(s);
    return err;
}

static int collect_rows(struct sq *q, enum store_kind k, sqlite3 *db, sqlite3_stmt *s,
                        json_t *items)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *doc;
        int err = row_doc(q, k, s, &doc);
        if (err == -EBADMSG) {
            skipped_row(k, s);
            continue;
        }
        if (!err && json_array_append_new(items, doc) < 0)
            err = -ENOMEM;
        if (err)
            return err;
    }
    return rc == SQLITE_DONE ? 0 : db_fail(db, "list");
}

static int sq_list(struct store *st, enum store_kind k, const struct store_query *q, json_t **items,
                   int64_t *total)
{
    struct conn *c = conn_of(st);
    char where[1800], sql[2048];
    char upper[STORE_PREFIX_MAX + 1];
    if (q->nfilters > STORE_FILTERS_MAX ||
        (q->name_prefix && !store_prefix_upper(q->name_prefix, upper)))
        return -EINVAL;
    struct store_query plain = *q;
    if (!per_cluster(k))
        plain.cluster = NULL; /* only these kinds have a cluster column */
    where_clause(where, sizeof(where), &plain);
    int err = count_rows(c, tables(k), where, &plain, total);
    if (err)
        return err;
    snprintf(sql, sizeof(sql), "SELECT id, doc FROM %s%s ORDER BY id%s LIMIT ?46 OFFSET ?47",
             tables(k), where, q->newest_first ? " DESC" : "");
    sqlite3_stmt *s;
    err = stmt(c, sql, &s);
    if (err)
        return err;
    bind_query(s, &plain);
    sqlite3_bind_int64(s, 46, q->limit < 0 ? -1 : q->limit);
    sqlite3_bind_int64(s, 47, q->offset);
    json_t *arr = json_array();
    err = arr ? collect_rows(st->impl, k, c->db, s, arr) : -ENOMEM;
    stmt_done(s);
    if (err) {
        json_decref(arr);
        return err;
    }
    *items = arr;
    return 0;
}

static int sq_scan(struct store *st, enum store_kind k, const char *cluster,
                   int (*fn)(void *arg, int64_t id, const char *text, size_t len), void *arg)
{
    struct conn *c = conn_of(st);
    char sql[128];
    bool by_cluster = cluster && per_cluster(k);
    snprintf(sql, sizeof(sql), "SELECT id, doc FROM %s%s ORDER BY id", tables(k),
             by_cluster ? " WHERE cluster = ?1" : "");
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    if (err)
        return err;
    if (by_cluster)
        sqlite3_bind_text(s, 1, cluster, -1, SQLITE_STATIC);
    int rc;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(s, 1);
        if (text)
            err = fn(arg, sqlite3_column_int64(s, 0), text, (size_t)sqlite3_column_bytes(s, 1));
    }
    if (!err && rc != SQLITE_DONE)
        err = db_fail(c->db, "scan");
    stmt_done(s);
    return err;
}

/* Moves record (cluster, name) of kind k into quarantine: -ENOENT when done (it is gone). */
static int quarantine_one(struct conn *c, enum store_kind k, const char *cluster, const char *name)
{
    static const char *const sql[2] = {
        "INSERT INTO quarantine(source, source_id, cluster, name, doc) SELECT ?3, id, cluster, "
        "name, doc FROM %s WHERE cluster = ?1 AND name = ?2",
        "DELETE FROM %s WHERE cluster = ?1 AND name = ?2"};
    for (int i = 0; i < 2; i++) {
        char text[256];
        snprintf(text, sizeof(text), sql[i], tables(k));
        sqlite3_stmt *s;
        int err = stmt(c, text, &s);
        if (err)
            return err;
        sqlite3_bind_text(s, 1, cluster, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
        if (i == 0)
            sqlite3_bind_text(s, 3, tables(k), -1, SQLITE_STATIC);
        if ((err = step_done(c->db, s)) < 0)
            return err;
    }
    fprintf(stderr, "moat-server: store: %s record \"%s\" does not parse: moved into quarantine\n",
            tables(k), name);
    return -ENOENT;
}

/* The path of a store_count: $.parent."key" (the key quoted: it may be all digits). */
static void bind_count_path(sqlite3_stmt *s, int i, const struct store_count *c)
{
    char path[160];
    snprintf(path, sizeof(path), "$.%s.\"%s\"", c->parent, c->key);
    sqlite3_bind_text(s, i, path, -1, SQLITE_TRANSIENT);
}

static int sq_tally(struct store *st, enum store_kind k, const char *cluster, const char *name,
                    const struct store_tally *t, int64_t *id, char **text)
{
    struct conn *c = conn_of(st);
    char sql[400 + STORE_TALLY_EXTRA * 64], extra[STORE_TALLY_EXTRA * 64] = "";
    if (!per_cluster(k) || t->nextra > STORE_TALLY_EXTRA)
        return -EINVAL;
    size_t at = 0;
    for (size_t i = 0; i < t->nextra; i++) { /* ?9, ?10 for the first; ?11, ?12 ... */
        int p = 9 + 2 * (int)i;
        at += (size_t)snprintf(extra + at, sizeof(extra) - at,
                               ", ?%d, coalesce(json_extract(doc, ?%d), 0) + ?%d", p, p, p + 1);
    }
    /* RETURNING costs a temporary table per statement: only when the text is wanted. */
    snprintf(sql, sizeof(sql),
             "UPDATE %s SET doc = json_set(doc, ?1, json_extract(doc, ?1) + ?2,"
             " ?3, min(json_extract(doc, ?3), ?4), ?5, max(json_extract(doc, ?5), ?6)%s)"
             " WHERE cluster = ?7 AND name = ?8%s",
             tables(k), extra, text ? " RETURNING id, json_set(doc, '$.id', id)" : "");
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    if (err)
        return err;
    bind_path(s, 1, t->count);
    sqlite3_bind_int64(s, 2, t->add);
    bind_path(s, 3, t->low);
    sqlite3_bind_text(s, 4, t->low_value, -1, SQLITE_STATIC);
    bind_path(s, 5, t->high);
    sqlite3_bind_text(s, 6, t->high_value, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, cluster, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, name, -1, SQLITE_STATIC);
    for (size_t i = 0; i < t->nextra; i++) {
        bind_count_path(s, 9 + 2 * (int)i, &t->extra[i]);
        sqlite3_bind_int64(s, 10 + 2 * (int)i, t->extra[i].add);
    }
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        const char *doc = (const char *)sqlite3_column_text(s, 1);
        if (!(*text = doc ? strdup(doc) : NULL))
            err = -ENOMEM;
    } else if (rc == SQLITE_DONE && !text && sqlite3_changes(c->db) == 1) {
        *id = 0; /* not asked for: the record's id is only read with its text */
    } else if (rc == SQLITE_DONE) {
        err = -ENOENT;
    } else {
        bool unreadable = strstr(sqlite3_errmsg(c->db), "JSON") != NULL;
        err = unreadable ? 0 : db_fail(c->db, "tally");
        stmt_done(s);
        /* The record does not parse: moved aside, and the caller makes it anew. */
        return unreadable ? quarantine_one(c, k, cluster, name) : err;
    }
    stmt_done(s);
    return err;
}

static int sq_purge(struct store *st, enum store_kind k, const char *field, const char *before,
                    int64_t *n)
{
    struct conn *c = conn_of(st);
    char sql[256];
    for (const char *f = field; *f; f++)
        if (!isalnum((unsigned char)*f) && *f != '_')
            return -EINVAL;
    /* The path is written out, so that an index on json_extract(doc, '$.field') serves it. */
    snprintf(sql, sizeof(sql),
             "DELETE FROM %s WHERE json_extract(doc, '$.%s') < ?1 AND json_valid(doc)", tables(k),
             field);
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, before, -1, SQLITE_STATIC);
    err = step_done(c->db, s);
    *n = err ? 0 : sqlite3_changes(c->db);
    return err;
}

/* ---- copying out (moat-server migrate) ---- */

static int sq_dump(struct store *st, enum store_kind k, int64_t after, size_t max, json_t **rows)
{
    struct conn *c = conn_of(st);
    char sql[160];
    if ((size_t)k >= NTABLES)
        return -EOPNOTSUPP; /* a kind this schema has no table for */
    snprintf(sql, sizeof(sql),
             "SELECT id, doc, %s, name FROM %s WHERE id > ?1 ORDER BY id LIMIT ?2",
             per_cluster(k) ? "cluster" : "NULL", tables(k));
    sqlite3_stmt *s;
    int err = stmt(c, sql, &s);
    if (err)
        return err;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
    json_t *arr = json_array();
    int rc = SQLITE_DONE;
    while (arr && !err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *doc;
        err = row_doc(st->impl, k, s, &doc);
        if (err == -EBADMSG) { /* what cannot be read is not copied (and is said) */
            skipped_row(k, s);
            err = 0;
            continue;
        }
        if (err)
            break;
        json_object_del(doc, "id");
        const char *cl = (const char *)sqlite3_column_text(s, 2);
        json_t *row =
            json_pack("{s:I,s:s?,s:s,s:o}", "id", (json_int_t)sqlite3_column_int64(s, 0), "cluster",
                      cl, "name", (const char *)sqlite3_column_text(s, 3), "doc", doc);
        if (!row || json_array_append_new(arr, row) < 0)
            err = -ENOMEM;
    }
    if (!err && arr && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = db_fail(c->db, "dump");
    stmt_done(s);
    if (!arr || err) {
        json_decref(arr);
        return err ? err : -ENOMEM;
    }
    *rows = arr;
    return 0;
}

static int sq_token_dump(struct store *st, json_t **rows)
{
    struct conn *c = conn_of(st);
    sqlite3_stmt *s;
    int err = stmt(c, "SELECT id, hash, role, created, node FROM tokens ORDER BY id", &s);
    if (err)
        return err;
    json_t *arr = json_array();
    int rc = SQLITE_DONE;
    while (arr && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *node = sqlite3_column_type(s, 4) == SQLITE_NULL
                           ? json_null()
                           : json_integer(sqlite3_column_int64(s, 4));
        json_t *row =
            json_pack("{s:I,s:s,s:s,s:s,s:o}", "id", (json_int_t)sqlite3_column_int64(s, 0), "hash",
                      (const char *)sqlite3_column_text(s, 1), "role",
                      (const char *)sqlite3_column_text(s, 2), "created",
                      (const char *)sqlite3_column_text(s, 3), "node", node);
        if (!row || json_array_append_new(arr, row) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    err = !arr ? -ENOMEM : rc == SQLITE_DONE ? 0 : db_fail(c->db, "tokens");
    stmt_done(s);
    if (err)
        json_decref(arr);
    else
        *rows = arr;
    return err;
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .exec = sq_exec,
    .token_add = sq_token_add,
    .token_find = sq_token_find,
    .token_list = sq_token_list,
    .insert = sq_insert,
    .update = sq_update,
    .remove = sq_remove,
    .get = sq_get,
    .find = sq_find,
    .list = sq_list,
    .scan = sq_scan,
    .tally = sq_tally,
    .purge = sq_purge,
    .dump = sq_dump,
    .token_dump = sq_token_dump,
};
