/*
 * server: what moat-server's modules share — the server context, one request
 * and its response, the route table, and the helpers handlers use.
 *
 * The HTTP layer (http.c) matches a request against the route table
 * (routes.c), checks the bearer token's role (auth.c), reads the body up to
 * MOAT_BODY_MAX and calls the route's handler, which fills a struct resp.
 * Handlers return 0 when the response is filled (whatever its status) and a
 * negative errno only for internal failures, which become 500. There is no
 * global state: everything hangs off struct server.
 */
#ifndef MOAT_SERVER_H
#define MOAT_SERVER_H

#include "metrics.h"
#include "store.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define MOAT_BODY_MAX     (1u << 20) /* request bodies above this are answered 413 */
#define MOAT_PAGE_DEFAULT 100
#define MOAT_PAGE_MAX     1000
#define MOAT_PARAMS_MAX   4

/*
 * Roles, ordered: a route needing `viewer` also admits `admin`. `agent` is a
 * node credential (bound to one cluster and node): it admits only routes
 * that need exactly `agent`, and no other route admits it.
 */
enum role { ROLE_NONE = 0, ROLE_AGENT = 1, ROLE_VIEWER = 2, ROLE_ADMIN = 3 };

#define SERVER_NAME_MAX 128 /* node names, batch ids */

struct compat_table;

/* Server options (command line). */
struct server_opts {
    int heartbeat_interval;            /* seconds; a node is offline after 3 missed heartbeats */
    int retention_days;                /* alerts older than this are removed */
    const char *min_agent_version;     /* below it a node is `outdated` */
    const struct compat_table *compat; /* the kernel-support table, or NULL */
    const char *tls_cert; /* PEM text of the certificate (chain), or NULL: plain HTTP */
    const char *tls_key;  /* PEM text of its private key (with tls_cert) */
};

/*
 * libmicrohttpd runs a thread per connection. Read-only routes run side by
 * side, each on a store snapshot of its own; `lock` lets one ROUTE_SERIAL
 * request at a time use the store's writer connection (http.c holds it
 * around those handlers). A policy long-poll waits on `changed` (with
 * `lock`), which is broadcast whenever a cluster's revision moves and when
 * the server stops.
 */
/*
 * The last policy long-poll answer per cluster, kept (under server.lock) so
 * that the agents of a cluster asking for one revision cost one build.
 * Every change an answer shows moves the cluster's revision, so the revision
 * is the key.
 */
struct policy_cache {
    struct policy_cache *next;
    char cluster[SERVER_NAME_MAX + 1];
    int64_t cluster_id; /* the cluster record's store id */
    int64_t revision;
    char *text; /* the answer (JSON) */
};

/*
 * The console's change feed (api_console.c): successful writes counted per
 * topic, under server.lock; `moved` (CLOCK_MONOTONIC) is broadcast on each.
 * Set up on first use; `boot` is random per server start.
 */
enum change_topic {
    CHANGE_CONFIG = 0, /* clusters, objects, rules */
    CHANGE_ALERTS,     /* event batches, alert status */
    CHANGE_NODES,      /* registrations, workload reports */
    CHANGE_HEARTBEATS,
    CHANGE_TOPICS,
};

struct change_feed {
    bool ready;
    uint32_t boot;
    int64_t count[CHANGE_TOPICS];
    pthread_cond_t moved;
};

struct server {
    struct store store;
    struct metrics metrics;
    struct MHD_Daemon *daemon;
    struct server_opts opts;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* on CLOCK_MONOTONIC */
    bool stopping;
    time_t expired_at; /* CLOCK_MONOTONIC seconds of the last retention purge (under lock) */
    FILE *alerts_out;  /* --alerts-out: a JSON line per alert ingest creates or changes, or NULL */
    struct policy_cache *policy_cache; /* api_agents.c (under lock) */
    struct change_feed feed;           /* api_console.c (under lock) */
};

struct req {
    struct server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *params[MOAT_PARAMS_MAX]; /* path parameters, in pattern order */
    size_t nparams;
    char pbuf[512];   /* where the path parameters are kept */
    const char *body; /* NUL-terminated; NULL when there is none */
    size_t body_len;
    enum role role;
    /* For ROLE_AGENT: the node the credential belongs to. */
    int64_t node_id;
    char agent_cluster[SERVER_NAME_MAX + 1];
    char agent_node[SERVER_NAME_MAX + 1];
};

struct resp {
    unsigned status;
    json_t *json;      /* body as JSON (owned), or */
    char *text;        /* body as text (owned, malloc) with */
    const char *ctype; /* its content type */
    const char *extra; /* extra headers, "Name: value" lines split at '\n' (static), or NULL */
};

typedef int (*route_fn)(struct req *rq, struct resp *rs);

/*
 * How a route's handler uses the store. A ROUTE_READ handler runs beside
 * other requests on a read-only snapshot of its own (store read_begin); a
 * write there fails. A ROUTE_SERIAL handler holds server.lock and uses the
 * writer connection: every route that writes, and the policy long-poll, which
 * waits on server.changed. A ROUTE_OWN_LOCK handler writes too, but is called
 * without server.lock and takes it itself around its store work, so that
 * what needs no store (parsing and checking an event batch) runs beside
 * other requests.
 */
enum route_mode {
    ROUTE_BY_METHOD = 0, /* GET: ROUTE_READ; other methods: ROUTE_SERIAL */
    ROUTE_READ,
    ROUTE_SERIAL,
    ROUTE_OWN_LOCK,
};

struct route {
    const char *method;
    const char *pattern; /* "/api/v1/objects/{id}": {x} matches one path segment */
    route_fn handler;
    enum role role;
    const char *summary;
    enum route_mode mode; /* left out: ROUTE_BY_METHOD */
};

/* ---- routes.c ---- */
/* The route table and its length. */
const struct route *routes_table(size_t *n);
/*
 * The route for method + path, with the path parameters in rq->params.
 * Returns its index, -ENOENT when no pattern matches the path (404), or
 * -EPERM when a pattern matches but not with this method (405).
 */
int routes_match(const char *method, const char *path, struct req *rq);
const char *role_name(enum role r);
/* Prints "METHOD PATTERN ROLE" per route, for `moat-server routes`. */
void routes_print(void);

/* ---- api_common.c: responses ---- */
/* Sets a JSON body `{"errors": [{"field", "message"}]}` with one entry. 0 or -ENOMEM. */
int resp_error(struct resp *rs, unsigned status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sets status and takes `json` (NULL = -ENOMEM). */
int resp_json(struct resp *rs, unsigned status, json_t *json);
/* Maps a store error to 404/409/500 responses; other values are returned as they are. */
int resp_store_error(struct resp *rs, int err, const char *what);

/* ---- api_common.c: requests ---- */
/* A query-string argument, or NULL. */
const char *req_query(const struct req *rq, const char *key);
/*
 * Checks that every query argument is one of `allowed` (NULL-terminated),
 * then reads limit/offset (when `paged`) into q. Returns 0, or 1 with a 400
 * response set, or -ENOMEM.
 */
int req_query_check(const struct req *rq, struct resp *rs, const char *const *allowed, bool paged,
                    struct store_query *q);
/* A query argument that takes one of a fixed set of values (`values` NULL-terminated). */
struct query_enum {
    const char *arg;
    const char *const *values;
};
/*
 * Checks every argument of `enums` (ended by {NULL}) that the query has: a
 * value outside its set would only match nothing, so it is refused. Returns
 * 0, or 1 with a 400 response naming each bad argument, or -ENOMEM.
 */
int req_query_enums(const struct req *rq, struct resp *rs, const struct query_enum *enums);
/*
 * Parses the body as one JSON object. Returns 0 with *out (caller decrefs), 1
 * with a 400 response set, or -ENOMEM.
 */
int req_body_object(const struct req *rq, struct resp *rs, json_t **out);
/*
 * Checks a batch's `ids`: a list of 1..max distinct positive integers. 0, or 1
 * with a 400 naming `ids` or the bad entry (`ids[2]`, "is not an WHAT id").
 */
int req_ids(struct resp *rs, const json_t *ids, size_t max, const char *what);
/* Parses a path parameter as a positive id; false when it is not one. */
bool req_param_id(const struct req *rq, size_t i, int64_t *id);
/* The string value of obj[key], or "" when it is not a string. */
const char *jstr(const json_t *obj, const char *key);
/*
 * The request body as a resource document: a JSON object whose `kind`, when
 * given, is `kind` (it is removed), without `id`. 0 with *out, 1 with a 400
 * response set, or -ENOMEM.
 */
int req_doc(const struct req *rq, struct resp *rs, const char *kind, json_t **out);
/* Starts a store transaction for a write. 0 or a store error. */
int txn_begin(struct req *rq);
/* Commits when err is 0 and the response is a success, else rolls back. Returns err or the
 * commit's error. */
int txn_end(struct req *rq, int err, const struct resp *rs);
/* Applies a PUT (patch false) or PATCH body of one resource: `kind`'s document from the
 * request, then `change` inside a store transaction (rolled back unless it succeeds). */
typedef int (*doc_change_fn)(struct req *rq, struct resp *rs, json_t *body, bool patch);
int write_doc(struct req *rq, struct resp *rs, const char *kind, doc_change_fn change, bool patch);
/* The document after a PUT (`body` replaces *doc) or PATCH (merged into *doc). 0 or -ENOMEM. */
int doc_apply_body(json_t **doc, json_t *body, bool patch);
/* A JSON `{"items": items, "total": total}` (takes items). */
json_t *list_body(json_t *items, int64_t total);

/* ---- api_common.c: time and revisions ---- */
/* `t` as "YYYY-MM-DDTHH:MM:SSZ" (UTC) in out[21]. */
void time_iso(time_t t, char *out);
/* Parses "YYYY-MM-DDTHH:MM:SSZ"; false when `s` is something else. */
bool time_parse(const char *s, time_t *t);
/* Cluster `cluster`'s revision (1 until its first change). 0 or a store error. */
int revision_get(struct server *srv, const char *cluster, int64_t *rev);
/* Moves the revision of `cluster` (NULL: every cluster) on and wakes long-polls. */
int revision_bump(struct server *srv, const char *cluster);

/* ---- api_nodes.c: derived states ---- */
/*
 * Turns a stored node document into what the API shows: drops the token
 * hash and adds `state` and `reason` (offline, outdated, or what the agent
 * reported). 0 or -ENOMEM.
 */
int node_show(const struct server *srv, json_t *node);
/*
 * The health of `cluster`: `status` (normal/abnormal/unknown), `nodes`,
 * `enforcing` and `abnormal_nodes` [{name, state, reason}], set into `out`.
 */
int cluster_health(struct server *srv, const char *cluster, json_t *out);

/* ---- api_console.c: the console's change feed ---- */
/*
 * Counts a finished request in the change feed when it was a successful
 * write (2xx, not GET/HEAD, not a ROUTE_READ route), by the topic of route
 * `r`, and wakes the feed's long-polls. Takes server.lock: call it without.
 */
void changes_note(struct server *srv, const struct route *r, const char *method, unsigned status);

/* ---- static.c: the console's files ---- */
/* GET / and the console's page paths: index.html; GET /assets/{file}: that file. */
int static_page(struct req *rq, struct resp *rs);
int static_asset(struct req *rq, struct resp *rs);

/* ---- handlers ---- */
int api_health(struct req *rq, struct resp *rs);
int api_metrics(struct req *rq, struct resp *rs);
int api_clusters_list(struct req *rq, struct resp *rs);
int api_clusters_create(struct req *rq, struct resp *rs);
int api_clusters_get(struct req *rq, struct resp *rs);
int api_clusters_replace(struct req *rq, struct resp *rs);
int api_clusters_patch(struct req *rq, struct resp *rs);
int api_clusters_delete(struct req *rq, struct resp *rs);
int api_clusters_batch(struct req *rq, struct resp *rs);
int api_objects_list(struct req *rq, struct resp *rs);
int api_objects_create(struct req *rq, struct resp *rs);
int api_objects_get(struct req *rq, struct resp *rs);
int api_objects_replace(struct req *rq, struct resp *rs);
int api_objects_patch(struct req *rq, struct resp *rs);
int api_objects_delete(struct req *rq, struct resp *rs);
int api_objects_batch(struct req *rq, struct resp *rs);
int api_rules_list(struct req *rq, struct resp *rs);
int api_rules_create(struct req *rq, struct resp *rs);
int api_rules_get(struct req *rq, struct resp *rs);
int api_rules_replace(struct req *rq, struct resp *rs);
int api_rules_patch(struct req *rq, struct resp *rs);
int api_rules_delete(struct req *rq, struct resp *rs);
int api_rules_batch(struct req *rq, struct resp *rs);
int api_join_token(struct req *rq, struct resp *rs);
int api_agents_register(struct req *rq, struct resp *rs);
int api_agents_heartbeat(struct req *rq, struct resp *rs);
/* Frees the policy answers api_agents_policy kept (at shutdown). */
void agents_cache_free(struct server *srv);
int api_agents_workloads(struct req *rq, struct resp *rs);
int api_agents_policy(struct req *rq, struct resp *rs);
int api_agents_events(struct req *rq, struct resp *rs);
int api_nodes_list(struct req *rq, struct resp *rs);
int api_nodes_get(struct req *rq, struct resp *rs);
int api_workloads_list(struct req *rq, struct resp *rs);
int api_alerts_list(struct req *rq, struct resp *rs);
int api_alerts_patch(struct req *rq, struct resp *rs);
int api_status(struct req *rq, struct resp *rs);
int api_cluster_status(struct req *rq, struct resp *rs);
/*
 * Removes alerts and batch records older than the retention (at startup, then
 * from event ingest at most once a minute). 0 or a store error.
 */
int alerts_expire(struct server *srv);
int api_alerts_get(struct req *rq, struct resp *rs);
int api_alerts_batch(struct req *rq, struct resp *rs);
int api_whoami(struct req *rq, struct resp *rs);
int api_changes(struct req *rq, struct resp *rs);
int api_objects_preview(struct req *rq, struct resp *rs);

#endif
