/* api_common: what every resource handler uses — error bodies, query
 * arguments and paging, JSON bodies, merge patches (see server.h). */
#include "server.h"

#include "writer.h"

#include "jsonbound.h"
#include "jsonpatch.h"
#include "uri.h"
#include "utf8.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int resp_json(struct resp *rs, unsigned status, json_t *json)
{
    if (!json)
        return -ENOMEM;
    json_decref(rs->json);
    rs->json = json;
    rs->status = status;
    return 0;
}

/* {"field": F, "message": M}, both made valid UTF-8 (a cut quote never breaks the answer). */
static json_t *error_entry(const char *field, const char *msg)
{
    char f[512], m[1024];
    return json_pack("{s:s,s:s}", "field", utf8_copy(f, sizeof(f), field), "message",
                     utf8_copy(m, sizeof(m), msg));
}

int resp_error(struct resp *rs, unsigned status, const char *field, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return resp_json(rs, status, json_pack("{s:[o]}", "errors", error_entry(field, msg)));
}

int errs_add(json_t *errs, const char *field, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *e = error_entry(field, msg);
    return e && json_array_append_new(errs, e) == 0 ? 0 : -ENOMEM;
}

int resp_errors(struct resp *rs, unsigned status, json_t *errs)
{
    if (json_array_size(errs) == 0) {
        json_decref(errs);
        return 0;
    }
    int err = resp_json(rs, status, json_pack("{s:o}", "errors", errs));
    return err < 0 ? err : 1;
}

int resp_store_error(struct resp *rs, int err, const char *what)
{
    if (err == -ENOENT)
        return resp_error(rs, 404, "", "no such %s", what);
    if (err == -EEXIST)
        return resp_error(rs, 409, "name", "a %s with this name exists", what);
    return err;
}

/* A response was set: 1, or the error that kept it from being set. */
static int stop(int err)
{
    return err < 0 ? err : 1;
}

const char *req_query(const struct req *rq, const char *key)
{
    return rq->uri ? uri_arg(rq->uri, key) : NULL;
}

/* A query argument as an integer lo..hi; false when it is something else. */
static bool arg_int(const struct req *rq, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const char *s = req_query(rq, key);
    if (!s)
        return true;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!isdigit((unsigned char)*s) || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int req_cluster_check(struct req *rq, struct resp *rs)
{
    int64_t id;
    int err = rq->srv->store.ops->find(&rq->srv->store, STORE_CLUSTER, NULL, rq->params[0], &id);
    if (err == -ENOENT)
        return stop(resp_error(rs, 404, "", "no cluster \"%s\"", rq->params[0]));
    return err;
}

int req_query_check(const struct req *rq, struct resp *rs, const char *const *allowed, bool paged,
                    struct store_query *q)
{
    const char *unknown = NULL;
    for (size_t i = 0; !unknown && rq->uri && i < rq->uri->nargs; i++) {
        const char *k = rq->uri->args[i].key;
        const char *const *a = allowed;
        while (*a && strcmp(*a, k) != 0)
            a++;
        if (!*a && !(paged && (strcmp(k, "limit") == 0 || strcmp(k, "offset") == 0)))
            unknown = k;
    }
    if (unknown)
        return stop(resp_error(rs, 400, unknown, "unknown query argument"));
    q->limit = paged ? MOAT_PAGE_DEFAULT : -1;
    q->offset = 0;
    if (paged && !arg_int(rq, "limit", 1, MOAT_PAGE_MAX, &q->limit))
        return stop(resp_error(rs, 400, "limit", "must be an integer 1..%d", MOAT_PAGE_MAX));
    if (paged && !arg_int(rq, "offset", 0, INT32_MAX, &q->offset))
        return stop(resp_error(rs, 400, "offset", "must be an integer 0..%d", INT32_MAX));
    for (const char *const *a = allowed; *a && q->nfilters < STORE_FILTERS_MAX; a++) {
        const char *v = req_query(rq, *a);
        if (v)
            q->filters[q->nfilters++] = (struct store_filter){*a, v};
    }
    return 0;
}

/* "a, b or c" for an error message. */
static void values_text(const char *const *values, char *out, size_t n)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; values[i] && at < n; i++) {
        const char *sep = i == 0 ? "" : values[i + 1] ? ", " : " or ";
        int w = snprintf(out + at, n - at, "%s%s", sep, values[i]);
        at += w > 0 ? (size_t)w : 0;
    }
}

int req_query_enums(const struct req *rq, struct resp *rs, const struct query_enum *enums)
{
    json_t *errs = json_array();
    if (!errs)
        return -ENOMEM;
    for (const struct query_enum *e = enums; e->arg; e++) {
        const char *v = req_query(rq, e->arg);
        size_t i = 0;
        while (v && e->values[i] && strcmp(v, e->values[i]) != 0)
            i++;
        if (!v || e->values[i])
            continue;
        char allowed[256], msg[512];
        values_text(e->values, allowed, sizeof(allowed));
        char quoted[204];
        utf8_copy(quoted, sizeof(quoted), v);
        snprintf(msg, sizeof(msg), "\"%s\" is not %s", quoted, allowed);
        if (errs_add(errs, e->arg, "%s", msg) < 0) {
            json_decref(errs);
            return -ENOMEM;
        }
    }
    if (json_array_size(errs) == 0) {
        json_decref(errs);
        return 0;
    }
    return stop(resp_json(rs, 400, json_pack("{s:o}", "errors", errs)));
}

int req_body_object(const struct req *rq, struct resp *rs, json_t **out)
{
    *out = NULL;
    if (!rq->body || rq->body_len == 0)
        return stop(resp_error(rs, 400, "", "a JSON object is required as the request body"));
    json_error_t jerr;
    json_t *j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return stop(resp_error(rs, 400, "", "invalid JSON at line %d column %d: %s", jerr.line,
                               jerr.column, jerr.text));
    if (!json_is_object(j)) {
        json_decref(j);
        return stop(resp_error(rs, 400, "", "the request body must be a JSON object"));
    }
    /* Bounded before anything walks or stores it (lib/jsonbound.h). */
    const struct json_bounds b = {.depth = MOAT_BODY_DEPTH,
                                  .string_bytes = MOAT_BODY_STRING_MAX,
                                  .key_bytes = MOAT_BODY_KEY_MAX,
                                  .items = rq->body_items ? rq->body_items : 10000,
                                  .values = 50 * (rq->body_items ? rq->body_items : 10000)};
    char where[256], why[128];
    if (json_bounds_check(j, &b, where, sizeof(where), why, sizeof(why))) {
        json_decref(j);
        return stop(resp_error(rs, 400, where, "%s", why));
    }
    *out = j;
    return 0;
}

int req_ids(struct resp *rs, const json_t *ids, size_t max, const char *what)
{
    size_t n = json_array_size(ids);
    if (!json_is_array(ids) || n < 1 || n > max)
        return stop(resp_error(rs, 400, "ids", "required: a list of 1-%zu %s ids", max, what));
    for (size_t i = 0; i < n; i++) {
        char field[32];
        snprintf(field, sizeof(field), "ids[%zu]", i);
        const json_t *v = json_array_get(ids, i);
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return stop(resp_error(rs, 400, field, "is not an %s id", what));
        for (size_t k = 0; k < i; k++)
            if (json_integer_value(json_array_get(ids, k)) == json_integer_value(v))
                return stop(resp_error(rs, 400, field, "repeats ids[%zu]", k));
    }
    return 0;
}

bool req_param_id(const struct req *rq, size_t i, int64_t *id)
{
    const char *s = i < rq->nparams ? rq->params[i] : NULL;
    if (!s || !isdigit((unsigned char)*s) || strlen(s) > 15)
        return false;
    char *end;
    long long v = strtoll(s, &end, 10);
    *id = v;
    return !*end && v > 0;
}

json_t *list_body(json_t *items, int64_t total)
{
    if (!items)
        return NULL;
    return json_pack("{s:o,s:I}", "items", items, "total", (json_int_t)total);
}

int list_newest(struct req *rq, struct resp *rs, enum store_kind kind, struct store_query *q,
                const char *range_field)
{
    q->range_field = range_field;
    q->since = req_query(rq, "since");
    q->until = req_query(rq, "until");
    time_t t;
    if (q->since && !time_parse(q->since, &t))
        return resp_error(rs, 400, "since", "must be YYYY-MM-DDTHH:MM:SSZ (UTC)");
    if (q->until && !time_parse(q->until, &t))
        return resp_error(rs, 400, "until", "must be YYYY-MM-DDTHH:MM:SSZ (UTC)");
    q->newest_first = 1;
    json_t *items;
    int64_t total;
    int err = rq->srv->store.ops->list(&rq->srv->store, kind, q, &items, &total);
    return err ? err : resp_json(rs, 200, list_body(items, total));
}

const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

int doc_strings_check(json_t *errs, const json_t *doc, const char *prefix)
{
    static const char *const fields[] = {"name",    "namespace",   "app",
                                         "cluster", "description", NULL};
    for (size_t i = 0; fields[i]; i++) {
        const json_t *v = json_object_get(doc, fields[i]);
        char field[96];
        snprintf(field, sizeof(field), "%s%s", prefix, fields[i]);
        if (v && !json_is_string(v) && !json_is_null(v) &&
            errs_add(errs, field, "must be a string") < 0)
            return -ENOMEM;
    }
    return 0;
}

/* The API's string fields must be JSON strings: 0, or 1 with a 400 naming each. */
static int check_strings(struct resp *rs, const json_t *doc)
{
    json_t *errs = json_array();
    if (!errs || doc_strings_check(errs, doc, "") < 0) {
        json_decref(errs);
        return -ENOMEM;
    }
    return resp_errors(rs, 400, errs);
}

int req_doc(const struct req *rq, struct resp *rs, const char *kind, json_t **out)
{
    json_t *doc;
    int rc = req_body_object(rq, rs, &doc);
    if (rc)
        return rc;
    const json_t *k = json_object_get(doc, "kind");
    if (k && (!json_is_string(k) || strcmp(json_string_value(k), kind) != 0))
        rc = stop(resp_error(rs, 400, "kind", "must be %s here", kind));
    else if (json_object_get(doc, "id"))
        rc = stop(resp_error(rs, 400, "id", "is assigned by the server"));
    else
        rc = check_strings(rs, doc);
    if (rc) {
        json_decref(doc);
        return rc;
    }
    json_object_del(doc, "kind");
    *out = doc;
    return 0;
}

int txn_begin(struct req *rq)
{
    (void)rq; /* the writer runs every write in a savepoint of its own (writer.c) */
    return 0;
}

/*
 * The revision a successful write moves: objects may be used by every
 * cluster; anything under /clusters/{cluster} is that cluster's. Agent
 * routes bump explicitly.
 */
static int bump_for(struct req *rq)
{
    if (strcmp(rq->method, "GET") == 0 || rq->unchanged)
        return 0;
    if (strncmp(rq->path, "/api/v1/objects", 15) == 0)
        return revision_bump(rq, NULL);
    if (strncmp(rq->path, "/api/v1/clusters/", 17) == 0 && rq->nparams > 0 &&
        strstr(rq->path, "/join-token") == NULL)
        return revision_bump(rq, rq->params[0]);
    return 0;
}

int txn_end(struct req *rq, int err, const struct resp *rs)
{
    /* Commit or rollback is the writer's, by the answer's status. */
    if (!err && rs->status >= 200 && rs->status < 300)
        err = bump_for(rq);
    return err;
}

void time_iso(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool time_parse(const char *s, time_t *t)
{
    struct tm tm = {0};
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (!end || *end || strlen(s) != 20)
        return false;
    *t = timegm(&tm);
    return true;
}

/* The revision record of `cluster`: its id (0 when none) and value (1 when none). */
static int revision_find(struct store *st, const char *cluster, int64_t *id, int64_t *rev)
{
    json_t *doc = NULL;
    *id = 0;
    *rev = 1;
    int err = st->ops->find(st, STORE_REVISION, cluster, "revision", id);
    if (!err)
        err = st->ops->get(st, STORE_REVISION, *id, &doc, NULL);
    if (!err)
        *rev = json_integer_value(json_object_get(doc, "revision"));
    json_decref(doc);
    if (err == -ENOENT)
        *id = 0;
    return err == -ENOENT ? 0 : err;
}

int revision_get(struct server *srv, const char *cluster, int64_t *rev)
{
    int64_t id;
    return revision_find(&srv->store, cluster, &id, rev);
}

static int bump_one(struct req *rq, struct store *st, const char *cluster)
{
    int64_t id, rev;
    int err = st->ops->find(st, STORE_CLUSTER, NULL, cluster, &id);
    if (err == -ENOENT)
        return 0; /* a deleted cluster has no revision */
    if (!err)
        err = revision_find(st, cluster, &id, &rev);
    json_t *doc = err ? NULL : json_pack("{s:I}", "revision", (json_int_t)(rev + 1));
    if (!err && !doc)
        err = -ENOMEM;
    if (!err && id)
        err = st->ops->update(st, STORE_REVISION, id, "revision", doc);
    else if (!err)
        err = st->ops->insert(st, STORE_REVISION, cluster, "revision", doc, &id);
    json_decref(doc);
    if (!err)
        effects_bump(&rq->fx, cluster, rev + 1);
    return err;
}

int revision_bump(struct req *rq, const char *cluster)
{
    struct store *st = &rq->srv->store;
    int err = 0;
    if (cluster) {
        err = bump_one(rq, st, cluster);
    } else {
        struct store_query q = {.limit = -1};
        json_t *items = NULL;
        int64_t total;
        err = st->ops->list(st, STORE_CLUSTER, &q, &items, &total);
        for (size_t i = 0; !err && i < json_array_size(items); i++)
            err = bump_one(rq, st, jstr(json_array_get(items, i), "name"));
        json_decref(items);
    }
    return err;
}

int write_doc(struct req *rq, struct resp *rs, const char *kind, doc_change_fn change, bool patch)
{
    json_t *body;
    int rc = req_doc(rq, rs, kind, &body);
    if (rc)
        return rc < 0 ? rc : 0;
    int err = txn_begin(rq);
    if (!err)
        err = txn_end(rq, change(rq, rs, body, patch), rs);
    json_decref(body);
    return err;
}

int doc_apply_body(json_t **doc, json_t *body, bool patch)
{
    if (patch)
        return json_merge_patch(*doc, body);
    json_decref(*doc);
    *doc = json_incref(body);
    return 0;
}
