/*
 * api_joins: join tokens — what an agent shows once to register a node
 * (SPEC 10: `moat cluster join-token C [--ttl DURATION] [--uses N]`).
 *
 *   POST   /clusters/{cluster}/join-tokens {ttl, uses, description}  issues one
 *   GET    /clusters/{cluster}/join-tokens                            lists them
 *   DELETE /clusters/{cluster}/join-tokens/{id}                       revokes one
 *   GET    /clusters/{cluster}/join-token   issues one with the defaults and
 *          revokes the one this route issued before (its old contract)
 *
 * A token expires after its ttl (default 24 h, at most 365 days) and may be
 * used `uses` times (0, the default: any number of times before it
 * expires). Only its SHA-256 is kept, as the name of the cluster's join
 * record; the record keeps when it was made and by whom, when it expires,
 * how often it may be and was used.
 */
#include "audit.h"
#include "auth.h"
#include "server.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TTL_DEFAULT     (24 * 3600)
#define TTL_MAX         (365 * 86400)
#define USES_MAX        1000000
#define DESCRIPTION_MAX 256

/* A response was set: 1, or the error that kept it from being set. */
static int stop(int err)
{
    return err < 0 ? err : 1;
}

/* "90", "90s", "30m", "1h", "7d" as seconds; -1 when it is something else. */
static long long duration(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    const char *s = json_string_value(v);
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    long long n = strtoll(s, &end, 10);
    long long unit = !*end                   ? 1
                     : strcmp(end, "s") == 0 ? 1
                     : strcmp(end, "m") == 0 ? 60
                     : strcmp(end, "h") == 0 ? 3600
                     : strcmp(end, "d") == 0 ? 86400
                                             : 0;
    return unit && n <= TTL_MAX ? n * unit : -1;
}

/* The join record (without the hash, with its id) as the API shows it. */
static json_t *join_show(const json_t *doc, const char *cluster)
{
    json_t *d = json_deep_copy(doc);
    time_t exp;
    bool expired = time_parse(jstr(doc, "expires"), &exp) && exp <= time(NULL);
    json_int_t uses = json_integer_value(json_object_get(doc, "uses"));
    json_int_t used = json_integer_value(json_object_get(doc, "used"));
    if (d && (json_object_set_new(d, "cluster", json_string(cluster)) < 0 ||
              json_object_set_new(d, "expired", json_boolean(expired)) < 0 ||
              json_object_set_new(d, "used_up", json_boolean(uses > 0 && used >= uses)) < 0)) {
        json_decref(d);
        return NULL;
    }
    return d;
}

/* Revokes the tokens an earlier GET .../join-token issued (its one-token contract). */
static int revoke_legacy(struct req *rq)
{
    struct store *st = &rq->srv->store;
    struct store_query q = {.cluster = rq->params[0], .limit = -1};
    q.filters[q.nfilters++] = (struct store_filter){"via", "get"};
    json_t *items = NULL;
    int64_t total;
    int err = st->ops->list(st, STORE_JOIN, &q, &items, &total);
    for (size_t i = 0; !err && i < json_array_size(items); i++) {
        json_t *j = json_array_get(items, i);
        int64_t id = json_integer_value(json_object_get(j, "id"));
        err = st->ops->remove(st, STORE_JOIN, id);
        if (!err)
            err = audit_record(rq, "revoke", "join_token", rq->params[0], "", id, j, NULL);
    }
    json_decref(items);
    return err;
}

/* Issues a token: ttl seconds, `uses` (0: unlimited), made by `via` ("get" or "post"). */
static int issue(struct req *rq, struct resp *rs, long long ttl, json_int_t uses,
                 const char *description, const char *via)
{
    struct store *st = &rq->srv->store;
    char token[AUTH_TOKEN_LEN + 1], hash[AUTH_HASH_LEN + 1], now[21], expires[21], actor[64];
    time_t t = time(NULL);
    time_iso(t, now);
    time_iso(t + (time_t)ttl, expires);
    snprintf(actor, sizeof(actor), "token:%lld", (long long)rq->token_id);
    int err = auth_token_new(token);
    if (!err)
        err = auth_hash(token, hash);
    json_t *doc = err ? NULL
                      : json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s?}", "created", now, "expires",
                                  expires, "uses", uses, "used", (json_int_t)0, "created_by", actor,
                                  "via", via, "description", description);
    if (!err && !doc)
        err = -ENOMEM;
    int64_t id = 0;
    if (!err)
        err = st->ops->insert(st, STORE_JOIN, rq->params[0], hash, doc, &id);
    if (!err && json_object_set_new(doc, "id", json_integer(id)) < 0)
        err = -ENOMEM;
    if (!err)
        err = audit_record(rq, "create", "join_token", rq->params[0], "", id, NULL, doc);
    json_t *shown = err ? NULL : join_show(doc, rq->params[0]);
    if (!err && (!shown || json_object_set_new(shown, "join_token", json_string(token)) < 0))
        err = -ENOMEM;
    json_decref(doc);
    if (err) {
        json_decref(shown);
        return err;
    }
    return resp_json(rs, strcmp(via, "get") == 0 ? 200 : 201, shown);
}

int api_join_token(struct req *rq, struct resp *rs)
{
    int err = txn_begin(rq);
    int rc = err ? err : req_cluster_check(rq, rs);
    if (!rc)
        rc = revoke_legacy(rq);
    if (!rc)
        rc = issue(rq, rs, TTL_DEFAULT, 0, NULL, "get");
    return txn_end(rq, rc < 0 ? rc : 0, rs);
}

int api_join_tokens_create(struct req *rq, struct resp *rs)
{
    json_t *body = NULL;
    int rc = rq->body_len ? req_body_object(rq, rs, &body) : 0;
    const char *key;
    const json_t *v;
    json_object_foreach(body, key, v)
    {
        if (!rc && strcmp(key, "ttl") && strcmp(key, "uses") && strcmp(key, "description"))
            rc = stop(resp_error(rs, 400, key, "unknown field"));
    }
    const json_t *ttl_v = json_object_get(body, "ttl"), *uses_v = json_object_get(body, "uses");
    const json_t *descr = json_object_get(body, "description");
    long long ttl = ttl_v ? duration(ttl_v) : TTL_DEFAULT;
    if (!rc && (ttl < 1 || ttl > TTL_MAX))
        rc = stop(resp_error(rs, 400, "ttl",
                             "must be a duration of 1 s to 365 d: seconds, or a number with s, "
                             "m, h or d (90s, 30m, 1h, 7d)"));
    if (!rc && uses_v &&
        (!json_is_integer(uses_v) || json_integer_value(uses_v) < 0 ||
         json_integer_value(uses_v) > USES_MAX))
        rc =
            stop(resp_error(rs, 400, "uses", "must be an integer 0..%d (0: any number)", USES_MAX));
    if (!rc && descr && (!json_is_string(descr) || json_string_length(descr) > DESCRIPTION_MAX))
        rc = stop(resp_error(rs, 400, "description", "must be a string of at most %d bytes",
                             DESCRIPTION_MAX));
    if (!rc)
        rc = txn_begin(rq);
    if (!rc)
        rc = req_cluster_check(rq, rs);
    if (!rc)
        rc = issue(rq, rs, ttl, uses_v ? json_integer_value(uses_v) : 0, json_string_value(descr),
                   "post");
    json_decref(body);
    return txn_end(rq, rc < 0 ? rc : 0, rs);
}

int api_join_tokens_list(struct req *rq, struct resp *rs)
{
    int rc = req_cluster_check(rq, rs);
    if (rc)
        return rc < 0 ? rc : 0;
    struct store_query q = {.cluster = rq->params[0], .limit = -1};
    json_t *items = NULL, *out = json_array();
    int64_t total;
    int err =
        out ? rq->srv->store.ops->list(&rq->srv->store, STORE_JOIN, &q, &items, &total) : -ENOMEM;
    for (size_t i = 0; !err && i < json_array_size(items); i++)
        if (json_array_append_new(out, join_show(json_array_get(items, i), rq->params[0])) < 0)
            err = -ENOMEM;
    json_decref(items);
    if (err) {
        json_decref(out);
        return err;
    }
    return resp_json(rs, 200, list_body(out, (int64_t)json_array_size(out)));
}

int api_join_tokens_delete(struct req *rq, struct resp *rs)
{
    struct store *st = &rq->srv->store;
    int64_t id;
    json_t *doc = NULL;
    char *cluster = NULL;
    int rc = txn_begin(rq);
    if (!rc)
        rc = req_cluster_check(rq, rs);
    if (!rc) {
        int err =
            req_param_id(rq, 1, &id) ? st->ops->get(st, STORE_JOIN, id, &doc, &cluster) : -ENOENT;
        if (!err && (!cluster || strcmp(cluster, rq->params[0]) != 0))
            err = -ENOENT;
        if (err == -ENOENT)
            rc = stop(resp_error(rs, 404, "id", "no join token %s in cluster \"%s\"", rq->params[1],
                                 rq->params[0]));
        else
            rc = err;
    }
    if (!rc)
        rc = st->ops->remove(st, STORE_JOIN, id);
    if (!rc)
        rc = audit_record(rq, "revoke", "join_token", rq->params[0], "", id, doc, NULL);
    if (!rc)
        rs->status = 204;
    json_decref(doc);
    free(cluster);
    return txn_end(rq, rc < 0 ? rc : 0, rs);
}

int join_use(struct req *rq, struct resp *rs, const char *cluster, const char *token,
             int64_t *join_id)
{
    struct store *st = &rq->srv->store;
    char hash[AUTH_HASH_LEN + 1];
    int64_t id = 0;
    json_t *doc = NULL;
    int err = strlen(token) == AUTH_TOKEN_LEN ? auth_hash(token, hash) : -ENOENT;
    if (!err)
        err = st->ops->find(st, STORE_JOIN, cluster, hash, &id);
    if (!err)
        err = st->ops->get(st, STORE_JOIN, id, &doc, NULL);
    if (err == -ENOENT)
        return stop(
            resp_error(rs, 401, "join_token", "not a join token of cluster \"%s\"", cluster));
    time_t exp;
    json_int_t uses = json_integer_value(json_object_get(doc, "uses"));
    json_int_t used = json_integer_value(json_object_get(doc, "used"));
    if (!err && time_parse(jstr(doc, "expires"), &exp) && exp <= time(NULL))
        err = stop(resp_error(rs, 401, "join_token", "this join token expired at %s",
                              jstr(doc, "expires")));
    else if (!err && uses > 0 && used >= uses)
        err = stop(resp_error(rs, 401, "join_token",
                              "this join token was used %lld times: all "
                              "its uses are spent",
                              (long long)used));
    json_object_del(doc, "id");
    if (!err && json_object_set_new(doc, "used", json_integer(used + 1)) < 0)
        err = -ENOMEM;
    if (!err)
        err = st->ops->update(st, STORE_JOIN, id, NULL, doc);
    json_decref(doc);
    *join_id = id;
    return err;
}
