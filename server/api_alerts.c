/*
 * api_alerts: alerts (SPEC 7) — event ingest from agents
 * (POST /agents/events), the alert list with its filters, status changes,
 * and retention.
 *
 * Aggregation: hits with the same cluster, kind, rule, source workload (or
 * address), destination workload (or address), destination port and applied
 * action on the same UTC day form one alert; its `attempts` sums them.
 * `allow` hits never become alerts (they are only counted in the answer). A
 * batch id is counted once per node: the batch record and the alerts it
 * made are written in one transaction. Events older than the retention are
 * dropped; alerts whose last_seen falls out of it are removed on ingest and
 * at startup.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_MAX 10000

static const char *const kinds[] = {"policy",   "brute_force",  "port_scan", "dns_hijack",
                                    "spoofing", "threat_intel", NULL};
static const char *const actions[] = {"block", "alert", "allow", NULL};
static const char *const risks[] = {"low", "medium", "high", NULL};
static const char *const statuses[] = {"unhandled", "handled", "ignored", NULL};

/* A response was set: 1, or the error that kept it from being set. */
static int stop(int err)
{
    return err < 0 ? err : 1;
}

static bool one_of(const char *s, const char *const *set)
{
    for (; s && *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

static void retention_start(const struct server *srv, char *out)
{
    time_iso(time(NULL) - (time_t)srv->opts.retention_days * 86400, out);
}

int alerts_expire(struct server *srv)
{
    char before[21];
    int64_t n;
    retention_start(srv, before);
    int err = srv->store.ops->purge(&srv->store, STORE_ALERT, "last_seen", before, &n);
    if (!err)
        err = srv->store.ops->purge(&srv->store, STORE_BATCH, "time", before, &n);
    return err;
}

/* ---- event checks --------------------------------------------------------- */

static int ev_error(json_t *errs, size_t i, const char *field, const char *msg)
{
    char f[96];
    snprintf(f, sizeof(f), "events[%zu].%s", i, field);
    return json_array_append_new(errs, json_pack("{s:s,s:s}", "field", f, "message", msg)) < 0
               ? -ENOMEM
               : 0;
}

static int endpoint_check(json_t *errs, size_t i, const char *which, const json_t *ep)
{
    static const char *const fields[] = {"address", "port",  "namespace", "name",
                                         "app",     "image", "object",    NULL};
    if (!ep)
        return 0;
    if (!json_is_object(ep))
        return ev_error(errs, i, which, "must be an object");
    const char *key;
    const json_t *v;
    char f[64];
    json_object_foreach((json_t *)ep, key, v)
    {
        snprintf(f, sizeof(f), "%s.%s", which, key);
        if (!one_of(key, fields))
            return ev_error(errs, i, f, "unknown field");
        if (strcmp(key, "port") == 0 &&
            (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535))
            return ev_error(errs, i, f, "must be a port 0..65535");
        if (strcmp(key, "port") != 0 && !json_is_string(v))
            return ev_error(errs, i, f, "must be a string");
    }
    return 0;
}

static int event_check(json_t *errs, size_t i, const json_t *e)
{
    static const char *const fields[] = {
        "time",           "kind",     "rule",    "configured_action",
        "applied_action", "protocol", "source",  "destination",
        "attempts",       "risk",     "details", NULL};
    if (!json_is_object(e))
        return ev_error(errs, i, "", "must be an object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)e, key, v)
    {
        if (!one_of(key, fields))
            return ev_error(errs, i, key, "unknown field");
    }
    time_t t;
    const json_t *time_v = json_object_get(e, "time");
    if (time_v && !time_parse(json_string_value(time_v), &t))
        return ev_error(errs, i, "time", "must be YYYY-MM-DDTHH:MM:SSZ (UTC)");
    if (!one_of(json_string_value(json_object_get(e, "kind")), kinds))
        return ev_error(errs, i, "kind",
                        "required: policy, brute_force, port_scan, dns_hijack, spoofing or "
                        "threat_intel");
    if (!one_of(json_string_value(json_object_get(e, "applied_action")), actions))
        return ev_error(errs, i, "applied_action", "required: block, alert or allow");
    v = json_object_get(e, "configured_action");
    if (v && !one_of(json_string_value(v), actions))
        return ev_error(errs, i, "configured_action", "must be block, alert or allow");
    v = json_object_get(e, "risk");
    if (v && !one_of(json_string_value(v), risks))
        return ev_error(errs, i, "risk", "must be low, medium or high");
    v = json_object_get(e, "protocol");
    if (v && !json_is_string(v))
        return ev_error(errs, i, "protocol", "must be a string");
    v = json_object_get(e, "attempts");
    if (v &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000000))
        return ev_error(errs, i, "attempts", "must be an integer >= 1");
    v = json_object_get(e, "rule");
    if (v && !json_is_null(v) &&
        (!json_is_object(v) || !json_is_integer(json_object_get(v, "id")) ||
         (json_object_get(v, "name") && !json_is_string(json_object_get(v, "name")))))
        return ev_error(errs, i, "rule", "must be {\"id\": N, \"name\": \"...\"}");
    v = json_object_get(e, "details");
    if (v && !json_is_object(v))
        return ev_error(errs, i, "details", "must be an object");
    int err = endpoint_check(errs, i, "source", json_object_get(e, "source"));
    if (!err)
        err = endpoint_check(errs, i, "destination", json_object_get(e, "destination"));
    return err;
}

/* ---- aggregation ---------------------------------------------------------- */

/* An endpoint's identity: "NAMESPACE/NAME" for a workload, else its address. */
static void endpoint_id(const json_t *ep, char *out, size_t n)
{
    if (*jstr(ep, "name"))
        snprintf(out, n, "%s/%s", jstr(ep, "namespace"), jstr(ep, "name"));
    else
        snprintf(out, n, "%s", jstr(ep, "address"));
}

/* The stored endpoint: the event's, with `workload` ("NAMESPACE/NAME") when it names one. */
static json_t *endpoint_doc(const json_t *ep)
{
    json_t *d = json_is_object(ep) ? json_deep_copy(ep) : json_object();
    if (d && *jstr(ep, "name")) {
        char id[300];
        endpoint_id(ep, id, sizeof(id));
        if (json_object_set_new(d, "workload", json_string(id)) < 0) {
            json_decref(d);
            return NULL;
        }
    }
    return d;
}

static json_t *alert_new(const struct req *rq, const json_t *e, const char *when)
{
    const json_t *rule = json_object_get(e, "rule");
    const char *applied = jstr(e, "applied_action");
    const json_t *cfg = json_object_get(e, "configured_action");
    const json_t *det = json_object_get(e, "details");
    const json_t *att = json_object_get(e, "attempts");
    const char *risk = jstr(e, "risk");
    return json_pack("{s:s,s:s,s:s,s:O,s:s,s:s,s:o*,s:o*,s:s,s:s,s:s,s:I,s:s,s:s,s:o*}", "cluster",
                     rq->agent_cluster, "node", rq->agent_node, "kind", jstr(e, "kind"), "rule",
                     json_is_object(rule) ? rule : json_null(), "configured_action",
                     cfg ? json_string_value(cfg) : applied, "applied_action", applied, "source",
                     endpoint_doc(json_object_get(e, "source")), "destination",
                     endpoint_doc(json_object_get(e, "destination")), "protocol",
                     *jstr(e, "protocol") ? jstr(e, "protocol") : "any", "first_seen", when,
                     "last_seen", when, "attempts", (json_int_t)(att ? json_integer_value(att) : 1),
                     "risk", *risk ? risk : "medium", "status", "unhandled", "details",
                     det ? json_deep_copy(det) : json_object());
}

/* Adds a hit to an existing alert. */
static int alert_merge(json_t *a, const json_t *e, const char *when)
{
    const json_t *att = json_object_get(e, "attempts");
    json_int_t n =
        json_integer_value(json_object_get(a, "attempts")) + (att ? json_integer_value(att) : 1);
    int bad = json_object_set_new(a, "attempts", json_integer(n)) < 0;
    if (strcmp(when, jstr(a, "first_seen")) < 0)
        bad |= json_object_set_new(a, "first_seen", json_string(when)) < 0;
    if (strcmp(when, jstr(a, "last_seen")) > 0)
        bad |= json_object_set_new(a, "last_seen", json_string(when)) < 0;
    return bad ? -ENOMEM : 0;
}

/* Stores one non-allow event as (part of) an alert. */
static int ingest_one(struct req *rq, const json_t *e, const char *when)
{
    struct store *st = &rq->srv->store;
    char key[1024], src[300], dst[300];
    const json_t *d = json_object_get(e, "destination");
    const json_t *port = json_object_get(d, "port");
    endpoint_id(json_object_get(e, "source"), src, sizeof(src));
    endpoint_id(d, dst, sizeof(dst));
    snprintf(key, sizeof(key), "%s|%lld|%s|%s|%lld|%s|%.10s", jstr(e, "kind"),
             (long long)json_integer_value(json_object_get(json_object_get(e, "rule"), "id")), src,
             dst, port ? (long long)json_integer_value(port) : -1LL, jstr(e, "applied_action"),
             when);
    int64_t id;
    json_t *a = NULL;
    int err = st->ops->find(st, STORE_ALERT, rq->agent_cluster, key, &id);
    if (!err)
        err = st->ops->get(st, STORE_ALERT, id, &a, NULL);
    if (!err) {
        json_object_del(a, "id");
        err = alert_merge(a, e, when);
        if (!err)
            err = st->ops->update(st, STORE_ALERT, id, key, a);
    } else if (err == -ENOENT) {
        a = alert_new(rq, e, when);
        err = a ? st->ops->insert(st, STORE_ALERT, rq->agent_cluster, key, a, &id) : -ENOMEM;
    }
    json_decref(a);
    return err;
}

struct ingest_count {
    int64_t alerted, allowed, expired;
};

static int ingest(struct req *rq, struct resp *rs, const char *batch, const json_t *events)
{
    struct store *st = &rq->srv->store;
    char name[2 * SERVER_NAME_MAX + 2], now[21], oldest[21];
    time_iso(time(NULL), now);
    retention_start(rq->srv, oldest);
    snprintf(name, sizeof(name), "%s/%s", rq->agent_node, batch);
    json_t *rec = json_pack("{s:s,s:s,s:I}", "node", rq->agent_node, "time", now, "events",
                            (json_int_t)json_array_size(events));
    int64_t id;
    int err = rec ? alerts_expire(rq->srv) : -ENOMEM;
    if (!err)
        err = st->ops->insert(st, STORE_BATCH, rq->agent_cluster, name, rec, &id);
    json_decref(rec);
    if (err == -EEXIST)
        return resp_json(rs, 200,
                         json_pack("{s:s,s:b,s:i,s:i,s:i}", "batch", batch, "duplicate", 1,
                                   "alerted", 0, "allowed", 0, "expired", 0));
    struct ingest_count c = {0};
    for (size_t i = 0; !err && i < json_array_size(events); i++) {
        const json_t *e = json_array_get(events, i);
        const char *when = json_object_get(e, "time") ? jstr(e, "time") : now;
        if (strcmp(jstr(e, "applied_action"), "allow") == 0)
            c.allowed++;
        else if (strcmp(when, oldest) < 0)
            c.expired++;
        else if (!(err = ingest_one(rq, e, when)))
            c.alerted++;
    }
    if (err)
        return err;
    metrics_add_alerts(&rq->srv->metrics, (uint64_t)c.alerted);
    return resp_json(rs, 200,
                     json_pack("{s:s,s:b,s:I,s:I,s:I}", "batch", batch, "duplicate", 0, "alerted",
                               (json_int_t)c.alerted, "allowed", (json_int_t)c.allowed, "expired",
                               (json_int_t)c.expired));
}

int api_agents_events(struct req *rq, struct resp *rs)
{
    json_t *body, *errs = NULL;
    int rc = req_body_object(rq, rs, &body);
    const char *key;
    const json_t *v;
    json_object_foreach(body, key, v)
    {
        if (!rc && strcmp(key, "batch") && strcmp(key, "events") && strcmp(key, "cluster") &&
            strcmp(key, "node"))
            rc = stop(resp_error(rs, 400, key, "unknown field"));
    }
    const char *cl = json_string_value(json_object_get(body, "cluster"));
    const char *nd = json_string_value(json_object_get(body, "node"));
    if (!rc && ((cl && strcmp(cl, rq->agent_cluster)) || (nd && strcmp(nd, rq->agent_node))))
        rc = stop(resp_error(rs, 403, cl && strcmp(cl, rq->agent_cluster) ? "cluster" : "node",
                             "this node credential belongs to %s/%s", rq->agent_cluster,
                             rq->agent_node));
    const char *batch = json_string_value(json_object_get(body, "batch"));
    if (!rc && (!batch || !*batch || strlen(batch) > SERVER_NAME_MAX))
        rc = stop(resp_error(rs, 400, "batch", "required: a batch id of 1-%d characters",
                             SERVER_NAME_MAX));
    const json_t *events = json_object_get(body, "events");
    if (!rc && (!json_is_array(events) || json_array_size(events) > EVENTS_MAX))
        rc = stop(
            resp_error(rs, 400, "events", "required: a list of at most %d events", EVENTS_MAX));
    if (!rc && !(errs = json_array()))
        rc = -ENOMEM;
    for (size_t i = 0; !rc && i < json_array_size(events); i++)
        rc = event_check(errs, i, json_array_get(events, i));
    if (!rc && json_array_size(errs) > 0)
        rc = stop(resp_json(rs, 400, json_pack("{s:O}", "errors", errs)));
    if (!rc) {
        rc = txn_begin(rq);
        if (!rc)
            rc = txn_end(rq, ingest(rq, rs, batch, events), rs);
    }
    json_decref(errs);
    json_decref(body);
    return rc < 0 ? rc : 0;
}

/* ---- the alert list and status changes ----------------------------------- */

int api_alerts_list(struct req *rq, struct resp *rs)
{
    static const char *const args[] = {"cluster",  "node",  "kind",  "action", "status",
                                       "workload", "since", "until", NULL};
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, args, true, &q);
    if (rc)
        return rc < 0 ? rc : 0;
    q.nfilters = 0;
    static const char *const plain[] = {"cluster", "node", "kind", "status", NULL};
    for (size_t i = 0; plain[i]; i++)
        if (req_query(rq, plain[i]))
            q.filters[q.nfilters++] = (struct store_filter){plain[i], req_query(rq, plain[i])};
    if (req_query(rq, "action"))
        q.filters[q.nfilters++] = (struct store_filter){"applied_action", req_query(rq, "action")};
    q.any_value = req_query(rq, "workload");
    q.any_fields[0] = "source.workload";
    q.any_fields[1] = "destination.workload";
    q.range_field = "last_seen";
    q.since = req_query(rq, "since");
    q.until = req_query(rq, "until");
    time_t t;
    if (q.since && !time_parse(q.since, &t))
        return resp_error(rs, 400, "since", "must be YYYY-MM-DDTHH:MM:SSZ (UTC)");
    if (q.until && !time_parse(q.until, &t))
        return resp_error(rs, 400, "until", "must be YYYY-MM-DDTHH:MM:SSZ (UTC)");
    q.newest_first = 1;
    json_t *items;
    int64_t total;
    int err = rq->srv->store.ops->list(&rq->srv->store, STORE_ALERT, &q, &items, &total);
    return err ? err : resp_json(rs, 200, list_body(items, total));
}

static int patch_alert(struct req *rq, struct resp *rs, const json_t *body)
{
    struct store *st = &rq->srv->store;
    int64_t id;
    json_t *a = NULL;
    char *cluster = NULL;
    int err = req_param_id(rq, 0, &id) ? st->ops->get(st, STORE_ALERT, id, &a, &cluster) : -ENOENT;
    free(cluster);
    if (err == -ENOENT)
        return resp_error(rs, 404, "", "no alert %s", rq->params[0]);
    json_object_del(a, "id");
    if (!err && json_object_set(a, "status", json_object_get(body, "status")) < 0)
        err = -ENOMEM;
    if (!err) /* NULL name: the aggregation key stays */
        err = st->ops->update(st, STORE_ALERT, id, NULL, a);
    if (!err && json_object_set_new(a, "id", json_integer(id)) < 0)
        err = -ENOMEM;
    if (!err)
        err = resp_json(rs, 200, json_incref(a));
    json_decref(a);
    return err;
}

int api_alerts_patch(struct req *rq, struct resp *rs)
{
    json_t *body;
    int rc = req_body_object(rq, rs, &body);
    const char *key;
    const json_t *v;
    json_object_foreach(body, key, v)
    {
        if (!rc && strcmp(key, "status") != 0)
            rc = stop(resp_error(rs, 400, key, "unknown field (only status can change)"));
    }
    if (!rc && !one_of(json_string_value(json_object_get(body, "status")), statuses))
        rc = stop(resp_error(rs, 400, "status", "required: unhandled, handled or ignored"));
    if (!rc) {
        rc = txn_begin(rq);
        if (!rc)
            rc = txn_end(rq, patch_alert(rq, rs, body), rs);
    }
    json_decref(body);
    return rc < 0 ? rc : 0;
}
