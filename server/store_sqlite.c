/*
 * store_sqlite: the embedded store (see store.h) — one SQLite file,
 * DIR/moat.db, in WAL mode, with foreign keys on and a busy timeout so that
 * `moat-server token create` can write while the server runs. The schema is
 * versioned by PRAGMA user_version; migrations[i] takes version i to i + 1
 * and runs in the same transaction as the version bump.
 *
 * Durability: synchronous = FULL, so COMMIT returns only after the WAL has
 * been fsync'ed, and the server answers a write only after its COMMIT. An
 * acknowledged write survives a killed process (NORMAL would too: the WAL is
 * written before COMMIT returns) and also a power loss or kernel crash, which
 * NORMAL does not promise for the last transactions. The price is one fsync
 * per write transaction (an event batch is one transaction).
 */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PER_CLUSTER                                                                                \
    "  cluster TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,"                         \
    "  name TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE(cluster, name)"

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
};

static const char *const tables[] = {"clusters", "objects", "rules", "nodes",    "workloads",
                                     "alerts",   "batches", "joins", "revisions"};

/* Whether records of kind k belong to a cluster (have a cluster column). */
static bool per_cluster(enum store_kind k)
{
    return k != STORE_CLUSTER && k != STORE_OBJECT;
}

static sqlite3 *db_of(struct store *st)
{
    return st->impl;
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
    }
    return err;
}

static int sq_open(struct store *st, const char *dir)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/moat.db", dir) >= sizeof(path))
        return -ENAMETOOLONG;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        int err = db ? db_fail(db, path) : -ENOMEM;
        sqlite3_close(db);
        return err;
    }
    sqlite3_busy_timeout(db, 5000);
    int err = exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                       "PRAGMA foreign_keys = ON;");
    if (!err)
        err = migrate(db);
    if (err) {
        sqlite3_close(db);
        return err;
    }
    st->impl = db;
    return 0;
}

static void sq_close(struct store *st)
{
    if (st && st->impl)
        sqlite3_close(db_of(st));
    if (st)
        st->impl = NULL;
}

static int sq_begin(struct store *st)
{
    return exec(db_of(st), "BEGIN IMMEDIATE;");
}

static int sq_commit(struct store *st)
{
    return exec(db_of(st), "COMMIT;");
}

static int sq_rollback(struct store *st)
{
    return exec(db_of(st), "ROLLBACK;");
}

/* Prepares `sql`; -EIO when it does not compile. */
static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **s)
{
    return sqlite3_prepare_v2(db, sql, -1, s, NULL) == SQLITE_OK ? 0 : db_fail(db, sql);
}

/* Runs a statement that returns no rows; -EEXIST on a unique constraint. */
static int step_done(sqlite3 *db, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    int ext = sqlite3_extended_errcode(db);
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE)
        return 0;
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return -EEXIST;
    return db_fail(db, "write");
}

static int sq_token_add(struct store *st, const char *hash, const char *role)
{
    sqlite3_stmt *s;
    int err = prep(db_of(st), "INSERT INTO tokens(hash, role) VALUES(?, ?)", &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, role, -1, SQLITE_STATIC);
    return step_done(db_of(st), s);
}

static int sq_token_role(struct store *st, const char *hash, char *role, size_t n)
{
    sqlite3_stmt *s;
    int err = prep(db_of(st), "SELECT role FROM tokens WHERE hash = ?", &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        snprintf(role, n, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : db_fail(db_of(st), "token");
}

static int bind_doc(sqlite3_stmt *s, int i, const json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return -ENOMEM;
    sqlite3_bind_text(s, i, text, -1, free);
    return 0;
}

static int sq_insert(struct store *st, enum store_kind k, const char *cluster, const char *name,
                     const json_t *doc, int64_t *id)
{
    char sql[160];
    if (per_cluster(k))
        snprintf(sql, sizeof(sql), "INSERT INTO %s(cluster, name, doc) VALUES(?3, ?1, ?2)",
                 tables[k]);
    else
        snprintf(sql, sizeof(sql), "INSERT INTO %s(name, doc) VALUES(?1, ?2)", tables[k]);
    sqlite3_stmt *s;
    int err = prep(db_of(st), sql, &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (per_cluster(k))
        sqlite3_bind_text(s, 3, cluster, -1, SQLITE_STATIC);
    if (bind_doc(s, 2, doc) < 0) {
        sqlite3_finalize(s);
        return -ENOMEM;
    }
    err = step_done(db_of(st), s);
    if (!err)
        *id = sqlite3_last_insert_rowid(db_of(st));
    return err;
}

static int sq_update(struct store *st, enum store_kind k, int64_t id, const char *name,
                     const json_t *doc)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "UPDATE %s SET name = COALESCE(?1, name), doc = ?2 WHERE id = ?3",
             tables[k]);
    sqlite3_stmt *s;
    int err = prep(db_of(st), sql, &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, id);
    if (bind_doc(s, 2, doc) < 0) {
        sqlite3_finalize(s);
        return -ENOMEM;
    }
    err = step_done(db_of(st), s);
    if (!err && sqlite3_changes(db_of(st)) == 0)
        return -ENOENT;
    return err;
}

static int sq_remove(struct store *st, enum store_kind k, int64_t id)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", tables[k]);
    sqlite3_stmt *s;
    int err = prep(db_of(st), sql, &s);
    if (err)
        return err;
    sqlite3_bind_int64(s, 1, id);
    err = step_done(db_of(st), s);
    if (!err && sqlite3_changes(db_of(st)) == 0)
        return -ENOENT;
    return err;
}

/* A row's document (column 1) with "id" (column 0) set. */
static int row_doc(sqlite3_stmt *s, json_t **doc)
{
    json_error_t jerr;
    const char *text = (const char *)sqlite3_column_text(s, 1);
    json_t *d = text ? json_loads(text, 0, &jerr) : NULL;
    if (!json_is_object(d)) {
        json_decref(d);
        fprintf(stderr, "moat-server: store: a stored document does not parse\n");
        return -EIO;
    }
    if (json_object_set_new(d, "id", json_integer(sqlite3_column_int64(s, 0))) < 0) {
        json_decref(d);
        return -ENOMEM;
    }
    *doc = d;
    return 0;
}

static int sq_get(struct store *st, enum store_kind k, int64_t id, json_t **doc, char **cluster)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT id, doc, %s FROM %s WHERE id = ?",
             per_cluster(k) ? "cluster" : "NULL", tables[k]);
    sqlite3_stmt *s;
    int err = prep(db_of(st), sql, &s);
    if (err)
        return err;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(s);
        return rc == SQLITE_DONE ? -ENOENT : db_fail(db_of(st), "get");
    }
    err = row_doc(s, doc);
    if (!err && cluster) {
        const char *c = (const char *)sqlite3_column_text(s, 2);
        *cluster = c ? strdup(c) : NULL;
        if (c && !*cluster) {
            json_decref(*doc);
            err = -ENOMEM;
        }
    }
    sqlite3_finalize(s);
    return err;
}

static int sq_find(struct store *st, enum store_kind k, const char *cluster, const char *name,
                   int64_t *id)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT id FROM %s WHERE name = ?1%s", tables[k],
             per_cluster(k) ? " AND cluster = ?2" : "");
    sqlite3_stmt *s;
    int err = prep(db_of(st), sql, &s);
    if (err)
        return err;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (per_cluster(k))
        sqlite3_bind_text(s, 2, cluster, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : db_fail(db_of(st), "find");
}

/*
 * The WHERE clause of a query: parameters ?1 (cluster), ?2n+2, ?2n+3 per
 * filter, ?40 range path, ?41 since, ?42 until, ?43 ?44 any paths, ?45 any value.
 */
static void where_clause(char *buf, size_t n, const struct store_query *q, bool has_cluster)
{
    size_t len = (size_t)snprintf(buf, n, " WHERE %s",
                                  has_cluster ? "(?1 IS NULL OR cluster = ?1)" : "?1 IS NULL");
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
    sqlite3_bind_text(s, 1, q->cluster, -1, SQLITE_STATIC);
    for (size_t i = 0; i < q->nfilters; i++) {
        char path[80];
        snprintf(path, sizeof(path), "$.%s", q->filters[i].field);
        sqlite3_bind_text(s, (int)(2 * i + 2), path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, (int)(2 * i + 3), q->filters[i].value, -1, SQLITE_STATIC);
    }
    if (q->range_field) {
        bind_path(s, 40, q->range_field);
        sqlite3_bind_text(s, 41, q->since, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 42, q->until, -1, SQLITE_STATIC);
    }
    if (q->any_value) {
        bind_path(s, 43, q->any_fields[0]);
        bind_path(s, 44, q->any_fields[1] ? q->any_fields[1] : q->any_fields[0]);
        sqlite3_bind_text(s, 45, q->any_value, -1, SQLITE_STATIC);
    }
}

static int count_rows(sqlite3 *db, const char *table, const char *where,
                      const struct store_query *q, int64_t *total)
{
    char sql[2048];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s%s", table, where);
    sqlite3_stmt *s;
    int err = prep(db, sql, &s);
    if (err)
        return err;
    bind_query(s, q);
    int rc = sqlite3_step(s);
    *total = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : db_fail(db, "count");
}

static int collect_rows(sqlite3 *db, sqlite3_stmt *s, json_t *items)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *doc;
        int err = row_doc(s, &doc);
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
    sqlite3 *db = db_of(st);
    char where[1800], sql[2048];
    if (q->nfilters > STORE_FILTERS_MAX)
        return -EINVAL;
    struct store_query plain = *q;
    if (!per_cluster(k))
        plain.cluster = NULL; /* only these kinds have a cluster column */
    where_clause(where, sizeof(where), &plain, per_cluster(k));
    int err = count_rows(db, tables[k], where, &plain, total);
    if (err)
        return err;
    snprintf(sql, sizeof(sql), "SELECT id, doc FROM %s%s ORDER BY id%s LIMIT %lld OFFSET %lld",
             tables[k], where, q->newest_first ? " DESC" : "",
             (long long)(q->limit < 0 ? -1 : q->limit), (long long)q->offset);
    sqlite3_stmt *s;
    err = prep(db, sql, &s);
    if (err)
        return err;
    bind_query(s, &plain);
    json_t *arr = json_array();
    err = arr ? collect_rows(db, s, arr) : -ENOMEM;
    sqlite3_finalize(s);
    if (err) {
        json_decref(arr);
        return err;
    }
    *items = arr;
    return 0;
}

static int sq_purge(struct store *st, enum store_kind k, const char *field, const char *before,
                    int64_t *n)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE json_extract(doc, ?1) < ?2", tables[k]);
    sqlite3_stmt *s;
    int err = prep(db_of(st), sql, &s);
    if (err)
        return err;
    bind_path(s, 1, field);
    sqlite3_bind_text(s, 2, before, -1, SQLITE_STATIC);
    err = step_done(db_of(st), s);
    *n = err ? 0 : sqlite3_changes(db_of(st));
    return err;
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .token_add = sq_token_add,
    .token_role = sq_token_role,
    .insert = sq_insert,
    .update = sq_update,
    .remove = sq_remove,
    .get = sq_get,
    .find = sq_find,
    .list = sq_list,
    .purge = sq_purge,
};
