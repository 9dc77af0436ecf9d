/* audit: records of accepted changes (see audit.h). */
#include "audit.h"
#include "writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "token:ID", "node:CLUSTER/NODE", or what the route's own actor is (register: set by it). */
static void actor_of(const struct req *rq, char *out, size_t n, const char **role)
{
    *role = role_name(rq->role);
    if (rq->role == ROLE_AGENT)
        snprintf(out, n, "node:%s/%s", rq->agent_cluster, rq->agent_node);
    else if (rq->token_id)
        snprintf(out, n, "token:%lld", (long long)rq->token_id);
    else if (rq->actor[0])
        snprintf(out, n, "%s", rq->actor);
    else
        snprintf(out, n, "anonymous");
}

/* rec[key] = doc (a reference: the record is written out before anyone changes doc). */
static int add_copy(json_t *rec, const char *key, const json_t *doc)
{
    json_t *v = doc ? json_incref((json_t *)doc) : json_null();
    return json_object_set_new(rec, key, v) == 0 ? 0 : -ENOMEM;
}

/* Stores a record; the --audit-out line is noted for after the commit (rq may be NULL). */
static int store_record(struct store *st, struct req *rq, json_t *rec, const char *name)
{
    int64_t id;
    int err = st->ops->insert(st, STORE_AUDIT, NULL, name, rec, &id);
    if (err || !rq || !rq->srv->audit_out)
        return err;
    if (json_object_set_new(rec, "id", json_integer(id)) < 0)
        return -ENOMEM;
    char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return -ENOMEM;
    effects_line(&rq->fx, true, text, strlen(text));
    free(text);
    return 0;
}

int audit_record(struct req *rq, const char *action, const char *kind, const char *cluster,
                 const char *name, int64_t id, const json_t *before, const json_t *after)
{
    char now[21], actor[3 * SERVER_NAME_MAX];
    const char *role;
    time_iso(time(NULL), now);
    actor_of(rq, actor, sizeof(actor), &role);
    json_t *rec =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s?,s:s}", "time", now, "actor", actor, "role",
                  role, "source", rq->source, "method", rq->method, "path", rq->path, "action",
                  action, "kind", kind, "cluster", cluster, "name", name ? name : "");
    int err = rec ? 0 : -ENOMEM;
    if (!err && id && json_object_set_new(rec, "record", json_integer(id)) < 0)
        err = -ENOMEM;
    if (!err)
        err = add_copy(rec, "before", before);
    if (!err)
        err = add_copy(rec, "after", after);
    if (!err)
        err = store_record(&rq->srv->store, rq, rec, name ? name : "");
    json_decref(rec);
    return err;
}

int audit_local(struct store *st, const char *action, const char *kind, const char *name,
                int64_t id, const json_t *after)
{
    char now[21];
    time_iso(time(NULL), now);
    json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:n}", "time", now, "actor", "local",
                            "role", "local", "source", "", "action", action, "kind", kind, "name",
                            name, "record", (json_int_t)id, "before");
    int err = rec ? add_copy(rec, "after", after) : -ENOMEM;
    if (!err)
        err = store_record(st, NULL, rec, name);
    json_decref(rec);
    return err;
}

int audit_expire(struct server *srv, const char *before)
{
    int64_t n;
    return srv->store.ops->purge(&srv->store, STORE_AUDIT, "time", before, &n);
}

int api_audit_list(struct req *rq, struct resp *rs)
{
    static const char *const args[] = {"actor", "action", "kind",  "cluster",
                                       "name",  "since",  "until", NULL};
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, args, true, &q);
    if (rc)
        return rc < 0 ? rc : 0;
    q.nfilters = 0;
    for (size_t i = 0; i < 5; i++)
        if (req_query(rq, args[i]))
            q.filters[q.nfilters++] = (struct store_filter){args[i], req_query(rq, args[i])};
    return list_newest(rq, rs, STORE_AUDIT, &q, "time");
}
