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

#define MOAT_BODY_MAX     (1u << 20) /* request bodies above this are answered 413 (by default) */
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
struct uri;
struct watch;
struct writer;
struct fleet;
struct revs;
struct throttle;
struct auth_cache;
struct MHD_Connection;
struct MHD_Response;

/* Server options (command line). */
struct server_opts {
    int heartbeat_interval;            /* seconds; a node is offline after 3 missed heartbeats */
    int retention_days;                /* alerts and audit records older than this are removed */
    const char *min_agent_version;     /* below it a node is `outdated` */
    const struct compat_table *compat; /* the kernel-support table, or NULL */
    const char *tls_cert;      /* PEM text of the certificate (chain), or NULL: plain HTTP */
    const char *tls_key;       /* PEM text of its private key (with tls_cert) */
    unsigned threads;          /* libmicrohttpd worker threads */
    unsigned max_conns;        /* connections in all (0: HTTP_MAX_CONNS, or what fds allow) */
    unsigned max_conns_source; /* connections from one source address */
    unsigned header_timeout;   /* seconds for a request's headers (and idle keep-alive) */
    unsigned body_timeout;     /* seconds for a request's body once its headers are in */
    unsigned auth_burst;       /* failed authentications one source may make at once */
    double auth_rate;          /* ... and then per second */
    bool metrics_public;       /* GET /metrics without a token */
};

/*
 * The last policy long-poll answer per cluster (api_agents.c, under
 * server.cache_lock), so that the agents of a cluster asking for one
 * revision cost one build. Every change an answer shows moves the cluster's
 * revision, so the revision is the key.
 */
struct policy_cache {
    struct policy_cache *next;
    char cluster[SERVER_NAME_MAX + 1];
    char build_key[SERVER_NAME_MAX + 1]; /* "#build:CLUSTER": who waits for a build (watch.h) */
    int64_t cluster_id;                  /* the cluster record's store id */
    int64_t revision;
    struct shared_text *text; /* the answer (JSON) */
    struct policy_hist *hist; /* the changes by revision, for delta answers (api_agents.c) */
    struct pol_recs *recs;    /* the records of text, for the next build (polbuild.h) */
    bool building;            /* a request builds the next text (without the lock) */
    uint64_t generation;      /* moves when the entry is forgotten: a build under way is dropped */
};

/*
 * The threat list agents fetch (api_detect.c, under server.cache_lock): the
 * newest text per cluster, by version, shared by every agent that asks.
 */
struct threat_cache {
    struct threat_cache *next;
    char cluster[SERVER_NAME_MAX + 1];
    char version[17];
    struct shared_text *text;
};

/*
 * A response body shared by many connections (a policy answer sent to every
 * agent of a cluster): reference counted, freed with its last user.
 */
struct shared_text;
/* A new shared text holding a copy of text[0..len) with one reference; NULL on OOM. */
struct shared_text *shared_text_new(const char *text, size_t len);
/* Takes over `text` (malloc'ed, text[len] == '\0'; freed with the last reference). NULL on OOM
 * (text is then still the caller's). */
struct shared_text *shared_text_take(char *text, size_t len);
struct shared_text *shared_text_ref(struct shared_text *t);
void shared_text_unref(struct shared_text *t);
/* The text a shared text holds (NUL-terminated) and its length. */
const char *shared_text_bytes(const struct shared_text *t, size_t *len);

/*
 * The console's change feed (api_console.c): successful writes counted per
 * topic once their transaction has committed (writer.c carries out
 * effects.topics), in atomics (__atomic builtins). `boot` is drawn at start
 * (changes_init), so a cursor of an earlier run never looks current.
 */
enum change_topic {
    CHANGE_CONFIG = 0, /* clusters, objects, rules */
    CHANGE_ALERTS,     /* event batches, alert status */
    CHANGE_NODES,      /* registrations, workload reports, node deletes */
    CHANGE_HEARTBEATS,
    CHANGE_TOPICS,
};

struct change_feed {
    uint32_t boot;
    int64_t count[CHANGE_TOPICS];
};

/*
 * Threads: libmicrohttpd's workers (opts.threads, each with its own epoll
 * set) read requests and run read-only handlers, each on a store snapshot
 * of its own. Handlers of routes that write run on the one writer thread
 * (writer.c), which takes the queued requests in turns, runs each in a
 * savepoint of one transaction and commits them together: one fsync for
 * all (group commit); their connections are suspended meanwhile. A policy
 * long-poll, and the console's change long-poll, suspend their connection
 * until what they wait for moves or their wait is over (watch.c). Nothing
 * blocks a worker on another request.
 */
struct server {
    struct store store;
    struct metrics metrics;
    struct MHD_Daemon *daemon;
    struct server_opts opts;
    struct watch *watch;           /* connection deadlines, suspended long-polls (watch.c) */
    struct writer *writer;         /* the writer thread (writer.c) */
    struct fleet *fleet;           /* nodes' states and cluster revisions in memory (fleet.c) */
    struct throttle *throttle;     /* failed authentications per source (under throttle_lock) */
    struct auth_cache *auth_cache; /* known tokens (auth.c) */
    uint64_t auth_gen;             /* moves when a credential may have gone (__atomic builtins) */
    pthread_mutex_t throttle_lock;
    volatile int stopping;  /* set once, when the server stops (long-polls answer then) */
    int inflight;           /* requests being read or answered (__atomic builtins) */
    uint64_t write_retries; /* groups run again after a conflict (__atomic builtins) */
    /* Policy answers built (api_agents.c, atomics): how many, their time, and their records
     * parsed (changed since the last build) or taken from the last answer as they were. */
    uint64_t policy_builds, policy_build_us, policy_parsed, policy_reused;
    time_t expired_at; /* CLOCK_MONOTONIC seconds of the last retention purge (writer thread) */
    FILE *alerts_out;  /* --alerts-out: a JSON line per alert ingest creates or changes, or NULL */
    FILE *audit_out;   /* --audit-out: a JSON line per audit record, or NULL */
    pthread_mutex_t cache_lock;
    struct policy_cache *policy_cache; /* api_agents.c (under cache_lock) */
    struct threat_cache *threat_cache; /* api_detect.c (under cache_lock) */
    struct change_feed feed;           /* api_console.c */
};

/*
 * What a write does besides its store writes, done only once its
 * transaction has committed (writer.c): revisions moved (long-polls woken),
 * nodes changed (the fleet's index), and lines for --alerts-out and
 * --audit-out. A request that fails drops them with its savepoint.
 */
struct effects {
    char **bumped; /* clusters whose revision moved, with the new revision */
    int64_t *revisions;
    size_t nbumped;
    int64_t *nodes; /* node records written or removed (the fleet re-reads them) */
    size_t nnodes;
    char *alert_lines, *audit_lines; /* JSON lines, '\n'-terminated, or NULL */
    size_t alert_len, audit_len;
    unsigned topics; /* change-feed topics the write moves (1 << enum change_topic) */
    bool revoked;    /* a node or cluster went: credentials may have gone with it */
    bool failed;     /* out of memory while noting one: the request fails */
};

struct req {
    struct server *srv;
    const char *method;
    const char *path;                    /* decoded (lib/uri.h) */
    const struct uri *uri;               /* the decoded query arguments */
    const char *params[MOAT_PARAMS_MAX]; /* path parameters, in pattern order */
    size_t nparams;
    char pbuf[1024];  /* where the path parameters are kept */
    const char *body; /* NUL-terminated; NULL when there is none */
    size_t body_len;
    size_t body_items; /* the route's bound on members of one array or object */
    enum role role;
    int64_t token_id; /* the admin/viewer token's id, or 0 */
    /* For ROLE_AGENT: the node the credential belongs to. */
    int64_t node_id;
    char agent_cluster[SERVER_NAME_MAX + 1];
    char agent_node[SERVER_NAME_MAX + 1];
    char source[64];           /* the client's address, as text */
    char actor[96];            /* who acts when no token says (register: "join-token:ID") */
    const char *if_none_match; /* the If-None-Match header, or NULL (static.c) */
    /* Long-polls (see resp.wait): set when the handler runs again after waiting. */
    bool resumed;
    double deadline; /* CLOCK_MONOTONIC seconds the handler asked to wait until */
    void *prepared;  /* what a route's `prepare` left for its handler (json_t *) */
    bool unchanged;  /* a write that found nothing to change: no revision moves */
    struct effects fx;
};

struct resp {
    unsigned status;
    json_t *json;               /* body as JSON (owned), or */
    char *text;                 /* body as text (owned, malloc) with */
    const char *ctype;          /* its content type, or */
    struct shared_text *shared; /* a shared body (one reference owned; JSON) */
    struct MHD_Response *mhd;   /* a response the handler made itself (owned) */
    const char *extra;          /* extra headers, "Name: value" lines split at '\n' (static) */
    unsigned retry_after;       /* seconds for a Retry-After header, or 0 */
    /*
     * A read handler that sets wait_key (static or in the request) instead of
     * a status asks to wait: its connection is suspended until watch_wake()
     * of that key or rq->deadline, then the handler runs again with
     * rq->resumed set.
     */
    const char *wait_key;
    double wait_until; /* with wait_key: resumed by then (CLOCK_MONOTONIC s); 0: rq->deadline */
};

typedef int (*route_fn)(struct req *rq, struct resp *rs);

/* Frees what a response holds and empties it (http.c; the writer runs a group again). */
void resp_reset(struct resp *rs);

/*
 * How a route's handler uses the store. A ROUTE_READ handler runs on a
 * worker on a read-only snapshot of its own (store read_begin); a write
 * there fails. A ROUTE_WRITE handler runs on the writer thread inside a
 * savepoint of the group's transaction (see struct server). ROUTE_BY_METHOD
 * is READ for GET and WRITE for the other methods.
 */
enum route_mode {
    ROUTE_BY_METHOD = 0,
    ROUTE_READ,
    ROUTE_WRITE,
};

struct route {
    const char *method;
    const char *pattern; /* "/api/v1/objects/{id}": {x} matches one path segment,
                            a last {x*} the rest of the path */
    route_fn handler;
    enum role role;
    const char *summary;
    enum route_mode mode; /* left out: ROUTE_BY_METHOD */
    /*
     * For a WRITE route, optional: runs on the worker before the request is
     * queued for the writer (parsing and checking a big body beside other
     * requests). It returns 0 with rq->prepared set, or sets a response
     * (which ends the request) and returns 0, or a negative errno.
     */
    route_fn prepare;
    size_t body_max;       /* bytes; 0: MOAT_BODY_MAX */
    const char *body_type; /* the body's media type; NULL: application/json */
    size_t body_items;     /* members of one array or object in the body; 0: 10,000 */
    bool query_own;        /* the handler checks its query arguments; else none are allowed */
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
/*
 * Sets a JSON body `{"errors": [{"field", "message"}]}` with one entry. The
 * field and message are made valid UTF-8 (cut between characters). 0 or -ENOMEM.
 */
int resp_error(struct resp *rs, unsigned status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Appends {"field", "message"} (made valid UTF-8) to the array errs. 0 or -ENOMEM. */
int errs_add(json_t *errs, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers `status` with `errs` (taken) when it has entries: 1; 0 (errs freed) when empty. */
int resp_errors(struct resp *rs, unsigned status, json_t *errs);
/* Sets status and takes `json` (NULL = -ENOMEM). */
int resp_json(struct resp *rs, unsigned status, json_t *json);
/* Maps a store error to 404/409/500 responses; other values are returned as they are. */
int resp_store_error(struct resp *rs, int err, const char *what);

/* ---- api_common.c: requests ---- */
/* 0 when the cluster the path names (params[0]) exists, 1 with a 404 set, or an error. */
int req_cluster_check(struct req *rq, struct resp *rs);
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
/* Bounds on every JSON body (lib/jsonbound.h); members per array/object: the route's. */
#define MOAT_BODY_DEPTH      16
#define MOAT_BODY_STRING_MAX 16384
#define MOAT_BODY_KEY_MAX    256
/*
 * Parses the body as one JSON object within the bounds above. Returns 0 with
 * *out (caller decrefs), 1 with a 400 response set (naming the value out of
 * bounds), or -ENOMEM.
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
 * JSON has types that YAML plain scalars lack: where a document holds a
 * string (name, namespace, app, cluster, description), the API wants a JSON
 * string (a file's `namespace: 5` is still read as the string "5" by the
 * loader). Appends an error `PREFIXfield` for each one that is not. 0 or -ENOMEM.
 */
int doc_strings_check(json_t *errs, const json_t *doc, const char *prefix);
/*
 * The request body as a resource document: a JSON object whose `kind`, when
 * given, is `kind` (it is removed), without `id`. 0 with *out, 1 with a 400
 * response set, or -ENOMEM.
 */
int req_doc(const struct req *rq, struct resp *rs, const char *kind, json_t **out);
/*
 * A write's transaction: the writer thread runs every write handler in a
 * savepoint of its own and keeps its changes only when the answer is 2xx
 * (writer.h). txn_begin() is where a handler's writes start; txn_end()
 * moves the revisions a successful write moves. Returns err or a store error.
 */
int txn_begin(struct req *rq);
int txn_end(struct req *rq, int err, const struct resp *rs);
/* Applies a PUT (patch false) or PATCH body of one resource: `kind`'s document from the
 * request, then `change` inside a store transaction (rolled back unless it succeeds). */
typedef int (*doc_change_fn)(struct req *rq, struct resp *rs, json_t *body, bool patch);
int write_doc(struct req *rq, struct resp *rs, const char *kind, doc_change_fn change, bool patch);
/* The document after a PUT (`body` replaces *doc) or PATCH (merged into *doc). 0 or -ENOMEM. */
int doc_apply_body(json_t **doc, json_t *body, bool patch);
/* A JSON `{"items": items, "total": total}` (takes items). */
json_t *list_body(json_t *items, int64_t total);
/* Answers a list of `kind` newest first (alerts, audit records): the query's `since`
 * and `until` arguments bound `range_field` (400 unless both are UTC times), `q` holds
 * the filters and paging already checked by req_query_check. */
int list_newest(struct req *rq, struct resp *rs, enum store_kind kind, struct store_query *q,
                const char *range_field);

/* ---- api_common.c: time and revisions ---- */
/* `t` as "YYYY-MM-DDTHH:MM:SSZ" (UTC) in out[21]. */
void time_iso(time_t t, char *out);
/* Parses "YYYY-MM-DDTHH:MM:SSZ"; false when `s` is something else. */
bool time_parse(const char *s, time_t *t);
/* Cluster `cluster`'s revision (1 until its first change). 0 or a store error. */
int revision_get(struct server *srv, const char *cluster, int64_t *rev);
/* Moves the revision of `cluster` (NULL: every cluster) on; long-polls wake after the commit. */
int revision_bump(struct req *rq, const char *cluster);

/* ---- api_nodes.c: derived states ---- */
/* Whether an agent of this version is below --min-agent-version. */
bool node_outdated(const struct server *srv, const char *agent_version);
/*
 * A node's state (SPEC 4): `offline` when its last heartbeat (0: none) is 3
 * intervals old, else `outdated` below the minimum agent version, else what
 * the agent reported (`not_installed` when nothing); its reason into reason[n].
 */
const char *node_state(const struct server *srv, time_t heartbeat, const char *agent_version,
                       const char *reported, const char *reported_reason, char *reason, size_t n);
/*
 * Turns a stored node document into what the API shows: adds `state` and
 * `reason` (node_state). 0 or -ENOMEM.
 */
int node_show(const struct server *srv, json_t *node);
/*
 * The health of `cluster`: `status` (normal/abnormal/unknown), `nodes`,
 * `enforcing` and `abnormal_nodes` [{name, state, reason}], set into `out`.
 */
int cluster_health(struct server *srv, const char *cluster, json_t *out);

/* ---- api_console.c: the console's change feed ---- */
/*
 * The keys change long-polls wait on (watch.h; no cluster name can be one):
 * CHANGES_WAIT_KEY is woken by a move of any topic, CHANGES_WAIT_NOBEAT by
 * a move of any topic but heartbeats (a long-poll that holds back a
 * heartbeats-only answer, see `beat` in api_console.c).
 */
#define CHANGES_WAIT_KEY    "@changes"
#define CHANGES_WAIT_NOBEAT "@changes-nobeat"
/* Draws the feed's boot id (at start, before any request). 0 or -errno. */
int changes_init(struct server *srv);
/*
 * The change-feed topics (1 << enum change_topic) a request to route `r`
 * moves when it succeeds: a write (not GET/HEAD, not a ROUTE_READ route),
 * by the route's path; else 0. http.c notes them in the request's effects.
 */
unsigned changes_topics(const struct route *r, const char *method);
/* Counts one committed write of `topics` (writer.c, after the commit). */
void changes_count(struct server *srv, unsigned topics);
/* Wakes the change long-polls that `topics` concern (writer.c, once per committed group). */
void changes_wake(struct server *srv, unsigned topics);

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
/* Stores a new cluster's two system rules (SPEC 3), inside the caller's transaction. */
int cluster_add_system_rules(struct store *st, const char *cluster);
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
int api_join_tokens_create(struct req *rq, struct resp *rs);
int api_join_tokens_list(struct req *rq, struct resp *rs);
int api_join_tokens_delete(struct req *rq, struct resp *rs);
/*
 * Spends one use of join token `token` of `cluster` (api_joins.c): 0 with
 * *join_id, 1 with 401 set (unknown, expired or used up), or an error.
 */
int join_use(struct req *rq, struct resp *rs, const char *cluster, const char *token,
             int64_t *join_id);
int api_agents_register(struct req *rq, struct resp *rs);
int api_agents_heartbeat(struct req *rq, struct resp *rs);
/* Frees the policy answers api_agents_policy kept (at shutdown). */
void agents_cache_free(struct server *srv);
/* Forgets the policy answer kept for `cluster` (it was deleted: its revisions start anew). */
void agents_cache_forget(struct server *srv, const char *cluster);
int api_agents_workloads(struct req *rq, struct resp *rs);
int api_agents_policy(struct req *rq, struct resp *rs);
int agents_events_prepare(struct req *rq, struct resp *rs);
int api_agents_events(struct req *rq, struct resp *rs);
int api_nodes_list(struct req *rq, struct resp *rs);
int api_nodes_get(struct req *rq, struct resp *rs);
int api_nodes_delete(struct req *rq, struct resp *rs);
int api_audit_list(struct req *rq, struct resp *rs);
int api_apply(struct req *rq, struct resp *rs);
int api_workloads_list(struct req *rq, struct resp *rs);
int api_alerts_list(struct req *rq, struct resp *rs);
int api_alerts_patch(struct req *rq, struct resp *rs);
int api_status(struct req *rq, struct resp *rs);
int api_cluster_status(struct req *rq, struct resp *rs);
/*
 * Removes alerts, batch records, audit records and join tokens older than the
 * retention (at startup, then from event ingest at most once a minute). 0 or
 * a store error.
 */
int alerts_expire(struct server *srv);
int api_alerts_get(struct req *rq, struct resp *rs);
int api_alerts_batch(struct req *rq, struct resp *rs);
int api_whoami(struct req *rq, struct resp *rs);
int api_changes(struct req *rq, struct resp *rs);
int api_objects_preview(struct req *rq, struct resp *rs);
/* ---- api_detect.c: quarantines and threat lists (SPEC 6) ---- */
int api_quarantines_list(struct req *rq, struct resp *rs);
int api_quarantines_get(struct req *rq, struct resp *rs);
int api_quarantines_delete(struct req *rq, struct resp *rs);
int api_agents_quarantines(struct req *rq, struct resp *rs);
int api_threats_get(struct req *rq, struct resp *rs);
int api_threats_summary(struct req *rq, struct resp *rs);
int threats_prepare(struct req *rq, struct resp *rs);
int api_threats_put(struct req *rq, struct resp *rs);
int api_threats_delete(struct req *rq, struct resp *rs);
int api_agents_threats(struct req *rq, struct resp *rs);
/*
 * Adds to a policy answer for `cluster` what its agents need of the
 * detections: `quarantines` [{address, reason, since, until}] active on any
 * node, `quarantine_releases` [{address, at}], and `threat_intel` ({version,
 * prefixes} or null). 0 or a store error.
 */
int detect_policy_fields(struct store *st, const char *cluster, json_t *answer);
/* How many addresses are in quarantine in `cluster` now (*n). 0 or a store error. */
int detect_quarantined(struct store *st, const char *cluster, int64_t *n);
/* Removes the quarantine records node `node` of `cluster` reported (the node is removed). */
int detect_node_forget(struct store *st, const char *cluster, const char *node);
/* Frees the threat lists kept for agents (at shutdown). */
void detect_cache_free(struct server *srv);

#endif
