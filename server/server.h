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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOAT_BODY_MAX     (1u << 20) /* request bodies above this are answered 413 */
#define MOAT_PAGE_DEFAULT 100
#define MOAT_PAGE_MAX     1000
#define MOAT_PARAMS_MAX   4

/* Roles, ordered: a route needing `viewer` also admits `admin`. */
enum role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_ADMIN = 2 };

struct server {
    struct store store;
    struct metrics metrics;
    struct MHD_Daemon *daemon;
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
};

struct resp {
    unsigned status;
    json_t *json;      /* body as JSON (owned), or */
    char *text;        /* body as text (owned, malloc) with */
    const char *ctype; /* its content type */
    const char *extra; /* an extra header "Name: value" split at ':' (static), or NULL */
};

typedef int (*route_fn)(struct req *rq, struct resp *rs);

struct route {
    const char *method;
    const char *pattern; /* "/api/v1/objects/{id}": {x} matches one path segment */
    route_fn handler;
    enum role role;
    const char *summary;
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
/*
 * Parses the body as one JSON object. Returns 0 with *out (caller decrefs), 1
 * with a 400 response set, or -ENOMEM.
 */
int req_body_object(const struct req *rq, struct resp *rs, json_t **out);
/* Parses a path parameter as a positive id; false when it is not one. */
bool req_param_id(const struct req *rq, size_t i, int64_t *id);
/* RFC 7396 merge patch: applies `patch` to `target` in place. 0 or -ENOMEM. */
int json_merge_patch(json_t *target, const json_t *patch);
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
/* A JSON `{"items": items, "total": total}` (takes items). */
json_t *list_body(json_t *items, int64_t total);

/* ---- handlers ---- */
int api_health(struct req *rq, struct resp *rs);
int api_metrics(struct req *rq, struct resp *rs);
int api_clusters_list(struct req *rq, struct resp *rs);
int api_clusters_create(struct req *rq, struct resp *rs);
int api_clusters_get(struct req *rq, struct resp *rs);
int api_clusters_replace(struct req *rq, struct resp *rs);
int api_clusters_patch(struct req *rq, struct resp *rs);
int api_clusters_delete(struct req *rq, struct resp *rs);
int api_objects_list(struct req *rq, struct resp *rs);
int api_objects_create(struct req *rq, struct resp *rs);
int api_objects_get(struct req *rq, struct resp *rs);
int api_objects_replace(struct req *rq, struct resp *rs);
int api_objects_patch(struct req *rq, struct resp *rs);
int api_objects_delete(struct req *rq, struct resp *rs);
int api_rules_list(struct req *rq, struct resp *rs);
int api_rules_create(struct req *rq, struct resp *rs);
int api_rules_get(struct req *rq, struct resp *rs);
int api_rules_replace(struct req *rq, struct resp *rs);
int api_rules_patch(struct req *rq, struct resp *rs);
int api_rules_delete(struct req *rq, struct resp *rs);
int api_rules_batch(struct req *rq, struct resp *rs);

#endif
