/*
 * api_alerts: alerts (SPEC 7) — event ingest from agents
 * (POST /agents/events), the alert list with its filters, one alert, status
 * changes, retention, and the alerts as JSON lines for SIEM pipelines
 * (--alerts-out).
 *
 * Aggregation: hits with the same cluster, kind, rule, source workload (or
 * address), destination workload (or address), destination port and applied
 * action on the same UTC day form one alert; its `attempts` sums them.
 * `allow` hits never become alerts (they are only counted in the answer). A
 * batch id is counted once per node: the batch record and the alerts it
 * made are written in one transaction. A batch's events are first folded by
 * key in memory, then each alert costs one store write (store tally, or an
 * insert for a new key). Events older than the retention are dropped; alerts
 * whose last_seen falls out of it are removed at startup and, on ingest, at
 * most once a minute.
 *
 * With --alerts-out, every alert a batch makes or changes is appended there
 * as one JSON line — the alert as GET /alerts/{id} shows it — after the
 * batch's commit, and the lines of each batch are flushed together.
 *
 * Event times: an event older than the retention is counted `expired` and
 * dropped; one more than EVENT_SKEW_S ahead of the server's clock is taken
 * as seen now and counted `clamped` (an agent's clock is off; an alert must
 * not stay the newest for ever, nor escape the retention).
 */
#include "audit.h"
#include "server.h"
#include "writer.h"

#include "jsonbound.h"
#include "model.h"

#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_MAX     10000
#define EVENT_SKEW_S   300  /* seconds an event time may be ahead of the server's clock */
#define EVENT_TEXT_MAX 253  /* bytes of an endpoint's namespace, name, app, object */
#define DETAILS_MAX    4096 /* bytes of an event's details as JSON */
#define DETAILS_DEPTH  4    /* levels of objects and arrays in details */

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
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    retention_start(srv, before);
    int err = srv->store.ops->purge(&srv->store, STORE_ALERT, "last_seen", before, &n);
    if (!err)
        err = srv->store.ops->purge(&srv->store, STORE_BATCH, "time", before, &n);
    if (!err)
        err = audit_expire(srv, before);
    if (!err) /* join tokens that expired before the retention window are of no more use */
        err = srv->store.ops->purge(&srv->store, STORE_JOIN, "expires", before, &n);
    if (!err)
        srv->expired_at = now.tv_sec ? now.tv_sec : 1;
    return err;
}

/* ---- event checks --------------------------------------------------------- */

static int ev_error(json_t *errs, size_t i, const char *field, const char *msg)
{
    char f[MOAT_BODY_KEY_MAX + 64];
    snprintf(f, sizeof(f), "events[%zu]%s%s", i, *field ? "." : "", field);
    return errs_add(errs, f, "%s", msg);
}

static bool ip_ok(const char *s)
{
    unsigned char buf[16];
    return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
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
    char f[MOAT_BODY_KEY_MAX + 32];
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
        if (strcmp(key, "address") == 0 && !ip_ok(json_string_value(v)))
            return ev_error(errs, i, f, "must be an IP address");
        size_t max = strcmp(key, "image") == 0 ? MOAT_IMAGE_MAX : EVENT_TEXT_MAX;
        if (json_is_string(v) && json_string_length(v) > max)
            return ev_error(errs, i, f, "too long");
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
    if (v && (!json_is_string(v) || json_string_length(v) > 16))
        return ev_error(errs, i, "protocol", "must be a string of at most 16 bytes");
    v = json_object_get(e, "attempts");
    if (v &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000000))
        return ev_error(errs, i, "attempts", "must be an integer >= 1");
    v = json_object_get(e, "rule");
    const json_t *rname = json_object_get(v, "name");
    if (v && !json_is_null(v) &&
        (!json_is_object(v) || json_object_size(v) > 2 ||
         !json_is_integer(json_object_get(v, "id")) ||
         (rname && (!json_is_string(rname) || json_string_length(rname) > MOAT_NAME_MAX))))
        return ev_error(errs, i, "rule",
                        "must be {\"id\": N, \"name\": \"...\"} (a name of at "
                        "most 64 bytes)");
    v = json_object_get(e, "details");
    if (v && !json_is_object(v))
        return ev_error(errs, i, "details", "must be an object");
    if (v) {
        const struct json_bounds b = {.depth = DETAILS_DEPTH,
                                      .string_bytes = DETAILS_MAX,
                                      .key_bytes = 64,
                                      .items = 64,
                                      .values = 256};
        char where[160], why[96];
        char *text = json_dumps(v, JSON_COMPACT);
        size_t len = text ? strlen(text) : 0;
        free(text);
        if (json_bounds_check(v, &b, where, sizeof(where), why, sizeof(why))) {
            char f[200];
            snprintf(f, sizeof(f), "details%s%s", *where ? "." : "", where);
            return ev_error(errs, i, f, why);
        }
        if (len > DETAILS_MAX)
            return ev_error(errs, i, "details", "longer than 4096 bytes as JSON");
    }
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

/* ---- one batch: events folded by aggregation key, then one store write per alert ---- */

/* The events of one batch with one aggregation key, folded. */
struct agg {
    char *key;
    uint64_t hash;
    const json_t *event; /* the first: the alert's fields when it is new */
    char first[21], last[21];
    json_int_t attempts;
    json_int_t hours[24]; /* attempts by UTC hour of the day (the key's day) */
};

/* A batch's alerts by key (open addressing), in the order their keys first appear. */
struct fold {
    struct agg *aggs; /* in first-appearance order */
    size_t n;
    size_t *slots; /* index + 1 into aggs; 0 = empty */
    size_t nslots; /* a power of two, at least twice the events */
};

static void fold_free(struct fold *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->aggs[i].key);
    free(f->aggs);
    free(f->slots);
}

static int fold_init(struct fold *f, size_t events)
{
    *f = (struct fold){0};
    f->nslots = 16;
    while (f->nslots < 2 * events)
        f->nslots *= 2;
    f->aggs = calloc(events ? events : 1, sizeof(*f->aggs));
    f->slots = calloc(f->nslots, sizeof(*f->slots));
    if (!f->aggs || !f->slots) {
        fold_free(f);
        return -ENOMEM;
    }
    return 0;
}

static uint64_t key_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Appends s (n bytes) and a separator `sep` (0: none) to key[*at], within size (cut short). */
static void key_put(char *key, size_t size, size_t *at, const char *s, size_t n, char sep)
{
    size_t room = size - 1 - *at;
    n = n < room ? n : room;
    memcpy(key + *at, s, n);
    *at += n;
    if (sep && *at < size - 1)
        key[(*at)++] = sep;
    key[*at] = '\0';
}

static void key_num(char *key, size_t size, size_t *at, long long v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", v);
    key_put(key, size, at, num, (size_t)n, '|');
}

/*
 * An endpoint's identity into the key (endpoint_id: "NAMESPACE/NAME" for a workload,
 * else its address), cut to the 299 bytes endpoint_id's buffer holds, as keys always were.
 */
static void key_endpoint(char *key, size_t size, size_t *at, const json_t *ep)
{
    size_t start = *at;
    const char *name = jstr(ep, "name");
    if (*name) {
        const char *ns = jstr(ep, "namespace");
        key_put(key, size, at, ns, strlen(ns), '/');
        key_put(key, size, at, name, strlen(name), 0);
    } else {
        const char *addr = jstr(ep, "address");
        key_put(key, size, at, addr, strlen(addr), 0);
    }
    if (*at - start > 299) {
        *at = start + 299;
        key[*at] = '\0';
    }
    key_put(key, size, at, "|", 1, 0);
}

/*
 * SPEC 7's aggregation key of event e seen at `when` (the UTC day is its first 10
 * characters): "KIND|RULE|SOURCE|DESTINATION|PORT|ACTION|DAY", what
 * snprintf("%s|%lld|%s|%s|%lld|%s|%.10s") would write, without its cost per event.
 */
static void event_key(const json_t *e, const char *when, char *key, size_t n)
{
    const json_t *d = json_object_get(e, "destination");
    const json_t *port = json_object_get(d, "port");
    const char *kind = jstr(e, "kind"), *action = jstr(e, "applied_action");
    size_t at = 0;
    key[0] = '\0';
    key_put(key, n, &at, kind, strlen(kind), '|');
    key_num(key, n, &at,
            (long long)json_integer_value(json_object_get(json_object_get(e, "rule"), "id")));
    key_endpoint(key, n, &at, json_object_get(e, "source"));
    key_endpoint(key, n, &at, d);
    key_num(key, n, &at, port ? (long long)json_integer_value(port) : -1LL);
    key_put(key, n, &at, action, strlen(action), '|');
    key_put(key, n, &at, when, strnlen(when, 10), 0);
}

/* The UTC hour (0-23) of a checked "YYYY-MM-DDTHH:MM:SSZ" time. */
static int time_hour(const char *when)
{
    int h = (when[11] - '0') * 10 + (when[12] - '0');
    return h >= 0 && h < 24 ? h : 0;
}

/* Adds one non-allow event seen at `when` to its key's entry. 0 or -ENOMEM. */
static int fold_add(struct fold *f, const json_t *e, const char *when)
{
    char key[1024];
    event_key(e, when, key, sizeof(key));
    uint64_t h = key_hash(key);
    size_t at = (size_t)h & (f->nslots - 1);
    while (f->slots[at]) {
        struct agg *a = &f->aggs[f->slots[at] - 1];
        if (a->hash == h && strcmp(a->key, key) == 0)
            break;
        at = (at + 1) & (f->nslots - 1);
    }
    const json_t *att = json_object_get(e, "attempts");
    json_int_t n = att ? json_integer_value(att) : 1;
    int hour = time_hour(when);
    if (f->slots[at]) {
        struct agg *a = &f->aggs[f->slots[at] - 1];
        a->attempts += n;
        a->hours[hour] += n;
        if (strcmp(when, a->first) < 0)
            snprintf(a->first, sizeof(a->first), "%s", when);
        if (strcmp(when, a->last) > 0)
            snprintf(a->last, sizeof(a->last), "%s", when);
        return 0;
    }
    struct agg *a = &f->aggs[f->n];
    *a = (struct agg){.key = strdup(key), .hash = h, .event = e, .attempts = n};
    if (!a->key)
        return -ENOMEM;
    a->hours[hour] = n;
    snprintf(a->first, sizeof(a->first), "%s", when);
    snprintf(a->last, sizeof(a->last), "%s", when);
    f->slots[at] = ++f->n;
    return 0;
}

/* Appends `text` and a newline to the batch's SIEM lines (when they are kept). */
static int line_add(FILE *lines, const char *text)
{
    if (lines && fprintf(lines, "%s\n", text) < 0)
        return -ENOMEM;
    return 0;
}

/*
 * Writes one folded alert: its hits are added to the stored alert with its
 * key, or a new alert is made from its first event. The alert as the API
 * shows it goes to `lines` (may be NULL).
 */
static int alert_write(struct req *rq, const struct agg *a, FILE *lines)
{
    struct store *st = &rq->srv->store;
    static const char *const hour_keys[24] = {"00", "01", "02", "03", "04", "05", "06", "07",
                                              "08", "09", "10", "11", "12", "13", "14", "15",
                                              "16", "17", "18", "19", "20", "21", "22", "23"};
    struct store_count hours[24];
    size_t nhours = 0;
    for (int h = 0; h < 24; h++)
        if (a->hours[h])
            hours[nhours++] = (struct store_count){"hours", hour_keys[h], a->hours[h]};
    const struct store_tally t = {.count = "attempts",
                                  .add = a->attempts,
                                  .low = "first_seen",
                                  .low_value = a->first,
                                  .high = "last_seen",
                                  .high_value = a->last,
                                  .extra = hours,
                                  .nextra = nhours};
    int64_t id;
    char *text = NULL;
    int err =
        st->ops->tally(st, STORE_ALERT, rq->agent_cluster, a->key, &t, &id, lines ? &text : NULL);
    if (!err)
        err = line_add(lines, text);
    free(text);
    if (err != -ENOENT)
        return err;
    json_t *doc = alert_new(rq, a->event, a->first);
    err = doc ? 0 : -ENOMEM;
    json_t *by_hour = json_object();
    for (size_t i = 0; by_hour && i < nhours; i++)
        if (json_object_set_new(by_hour, hours[i].key, json_integer(hours[i].add)) < 0) {
            json_decref(by_hour);
            by_hour = NULL;
        }
    if (!err && (!by_hour || json_object_set_new(doc, "last_seen", json_string(a->last)) < 0 ||
                 json_object_set_new(doc, "attempts", json_integer(a->attempts)) < 0 ||
                 json_object_set(doc, "hours", by_hour) < 0))
        err = -ENOMEM;
    json_decref(by_hour);
    if (!err)
        err = st->ops->insert(st, STORE_ALERT, rq->agent_cluster, a->key, doc, &id);
    if (!err && lines) {
        text = json_object_set_new(doc, "id", json_integer(id)) < 0
                   ? NULL
                   : json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
        err = text ? line_add(lines, text) : -ENOMEM;
        free(text);
    }
    json_decref(doc);
    return err;
}

/* Runs the retention purge when the last one (at startup, or here) is a minute old. */
static int expire_now_and_then(struct server *srv)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (srv->expired_at && now.tv_sec - srv->expired_at < 60)
        return 0;
    return alerts_expire(srv);
}

struct ingest_count {
    int64_t alerted, allowed, expired, clamped;
    uint64_t by_kind[ALERT_KINDS]; /* of alerted */
};

/*
 * Records the batch and stores its alerts (inside the caller's transaction).
 * `lines` (may be NULL) gets a JSON line per alert made or changed.
 */
static int ingest(struct req *rq, struct resp *rs, const char *batch, const json_t *events,
                  FILE *lines)
{
    struct store *st = &rq->srv->store;
    char name[2 * SERVER_NAME_MAX + 2], now[21], oldest[21], latest[21];
    time_t t = time(NULL);
    time_iso(t, now);
    time_iso(t + EVENT_SKEW_S, latest);
    retention_start(rq->srv, oldest);
    snprintf(name, sizeof(name), "%s/%s", rq->agent_node, batch);
    json_t *rec = json_pack("{s:s,s:s,s:I}", "node", rq->agent_node, "time", now, "events",
                            (json_int_t)json_array_size(events));
    int64_t id;
    int err = rec ? expire_now_and_then(rq->srv) : -ENOMEM;
    if (!err)
        err = st->ops->insert(st, STORE_BATCH, rq->agent_cluster, name, rec, &id);
    json_decref(rec);
    if (err == -EEXIST)
        return resp_json(rs, 200,
                         json_pack("{s:s,s:b,s:i,s:i,s:i,s:i}", "batch", batch, "duplicate", 1,
                                   "alerted", 0, "allowed", 0, "expired", 0, "clamped", 0));
    struct ingest_count c = {0};
    struct fold f;
    if (!err)
        err = fold_init(&f, json_array_size(events));
    if (err)
        return err;
    for (size_t i = 0; !err && i < json_array_size(events); i++) {
        const json_t *e = json_array_get(events, i);
        const char *when = json_object_get(e, "time") ? jstr(e, "time") : now;
        if (strcmp(when, latest) > 0) {
            when = now;
            c.clamped++;
        }
        if (strcmp(jstr(e, "applied_action"), "allow") == 0)
            c.allowed++;
        else if (strcmp(when, oldest) < 0)
            c.expired++;
        else if (!(err = fold_add(&f, e, when))) {
            c.alerted++;
            int k = alert_kind_named(jstr(e, "kind"));
            c.by_kind[k < 0 ? 0 : k]++;
        }
    }
    for (size_t i = 0; !err && i < f.n; i++)
        err = alert_write(rq, &f.aggs[i], lines);
    fold_free(&f);
    if (err)
        return err;
    metrics_add_alerts(&rq->srv->metrics, (uint64_t)c.alerted);
    for (int k = 0; k < ALERT_KINDS; k++)
        metrics_add_alert_kind(&rq->srv->metrics, rq->agent_cluster,
                               alert_kind_name((enum alert_kind)k), c.by_kind[k]);
    return resp_json(rs, 200,
                     json_pack("{s:s,s:b,s:I,s:I,s:I,s:I}", "batch", batch, "duplicate", 0,
                               "alerted", (json_int_t)c.alerted, "allowed", (json_int_t)c.allowed,
                               "expired", (json_int_t)c.expired, "clamped", (json_int_t)c.clamped));
}

/*
 * The part of an event batch that needs no store, run on a worker before the
 * batch is queued for the writer (so several agents' batches are parsed and
 * checked side by side): the body, its fields, every event. The parsed body
 * is left in rq->prepared.
 */
int agents_events_prepare(struct req *rq, struct resp *rs)
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
    json_decref(errs);
    if (rc) {
        json_decref(body);
        return rc < 0 ? rc : 0;
    }
    rq->prepared = body;
    return 0;
}

/* The store part of an event batch, on the writer thread (see agents_events_prepare). */
int api_agents_events(struct req *rq, struct resp *rs)
{
    const json_t *body = rq->prepared;
    const char *batch = json_string_value(json_object_get(body, "batch"));
    const json_t *events = json_object_get(body, "events");
    char *text = NULL;
    size_t len = 0;
    FILE *lines = rq->srv->alerts_out ? open_memstream(&text, &len) : NULL;
    int rc = rq->srv->alerts_out && !lines ? -ENOMEM : txn_begin(rq);
    if (!rc)
        rc = txn_end(rq, ingest(rq, rs, batch, events, lines), rs);
    if (lines && fclose(lines) != 0 && !rc)
        rc = -ENOMEM;
    if (!rc && len > 0) /* written after the commit, in commit order (writer.c) */
        effects_line(&rq->fx, false, text, len - 1);
    free(text);
    return rc;
}

/* ---- the alert list and status changes ----------------------------------- */

int api_alerts_list(struct req *rq, struct resp *rs)
{
    static const char *const args[] = {"cluster",  "node",  "kind",  "action", "status",
                                       "workload", "since", "until", NULL};
    static const struct query_enum enums[] = {
        {"kind", kinds}, {"action", actions}, {"status", statuses}, {NULL, NULL}};
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, args, true, &q);
    if (!rc)
        rc = req_query_enums(rq, rs, enums);
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
    return list_newest(rq, rs, STORE_ALERT, &q, "last_seen");
}

int api_alerts_get(struct req *rq, struct resp *rs)
{
    int64_t id;
    if (!req_param_id(rq, 0, &id))
        return resp_error(rs, 400, "id", "\"%s\" is not an alert id (an integer from 1)",
                          rq->params[0]);
    json_t *a;
    int err = rq->srv->store.ops->get(&rq->srv->store, STORE_ALERT, id, &a, NULL);
    if (err == -ENOENT)
        return resp_error(rs, 404, "id", "no alert %lld", (long long)id);
    return err ? err : resp_json(rs, 200, a);
}

/*
 * Sets the status of alert `id` (document `a`, whose `id` member is dropped
 * and put back) to `status`, with its audit record. 0 or an error.
 */
static int alert_set_status(struct req *rq, int64_t id, json_t *a, const json_t *status)
{
    struct store *st = &rq->srv->store;
    json_object_del(a, "id");
    json_t *before = json_pack("{s:O?}", "status", json_object_get(a, "status"));
    int err = before ? 0 : -ENOMEM;
    if (!err && json_object_set(a, "status", (json_t *)status) < 0)
        err = -ENOMEM;
    if (!err) /* NULL name: the aggregation key stays */
        err = st->ops->update(st, STORE_ALERT, id, NULL, a);
    if (!err && json_object_set_new(a, "id", json_integer(id)) < 0)
        err = -ENOMEM;
    json_t *after = err ? NULL : json_pack("{s:O?}", "status", json_object_get(a, "status"));
    if (!err && !after)
        err = -ENOMEM;
    if (!err)
        err = audit_record(rq, "update", "alert", jstr(a, "cluster"), "", id, before, after);
    json_decref(before);
    json_decref(after);
    return err;
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
    if (!err)
        err = alert_set_status(rq, id, a, json_object_get(body, "status"));
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
    const json_t *status = json_object_get(body, "status");
    if (!rc && !one_of(json_string_value(status), statuses))
        rc = stop(resp_error(rs, 400, "status", "%s: unhandled, handled or ignored",
                             status ? "must be one of" : "required"));
    if (!rc) {
        rc = txn_begin(rq);
        if (!rc)
            rc = txn_end(rq, patch_alert(rq, rs, body), rs);
    }
    json_decref(body);
    return rc < 0 ? rc : 0;
}

/* ---- status of many alerts (the console's bulk action) -------------------- */

#define ALERT_BATCH_MAX 1000

/* {"ids": [1-1000 distinct alert ids], "status": S}: 0, or 1 with 400 set. */
static int batch_body(struct resp *rs, const json_t *body, const json_t **ids)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "ids") != 0 && strcmp(key, "status") != 0)
            return stop(resp_error(rs, 400, key, "unknown field"));
    }
    v = json_object_get(body, "status");
    if (!one_of(json_string_value(v), statuses))
        return stop(resp_error(rs, 400, "status", "%s: unhandled, handled or ignored",
                               v ? "must be one of" : "required"));
    *ids = json_object_get(body, "ids");
    return req_ids(rs, *ids, ALERT_BATCH_MAX, "alert");
}

/* Sets the status of every alert of `ids`, or answers 404 naming each unknown one. */
static int batch_status(struct req *rq, struct resp *rs, const json_t *ids, const json_t *status)
{
    struct store *st = &rq->srv->store;
    json_t *docs = json_array(), *errs = json_array();
    int err = docs && errs ? 0 : -ENOMEM;
    for (size_t i = 0; !err && i < json_array_size(ids); i++) {
        json_int_t id = json_integer_value(json_array_get(ids, i));
        json_t *a = NULL;
        err = st->ops->get(st, STORE_ALERT, id, &a, NULL);
        if (err == -ENOENT) {
            char field[32], msg[48];
            snprintf(field, sizeof(field), "ids[%zu]", i);
            snprintf(msg, sizeof(msg), "no alert %lld", (long long)id);
            err = json_array_append_new(errs,
                                        json_pack("{s:s,s:s}", "field", field, "message", msg)) < 0
                      ? -ENOMEM
                      : 0;
        } else if (!err && json_array_append_new(docs, a) < 0) {
            err = -ENOMEM;
        }
    }
    if (!err && json_array_size(errs) > 0) {
        err = resp_json(rs, 404, json_pack("{s:O}", "errors", errs));
        json_decref(errs);
        json_decref(docs);
        return err;
    }
    json_decref(errs);
    for (size_t i = 0; !err && i < json_array_size(docs); i++) {
        json_t *a = json_array_get(docs, i);
        err = alert_set_status(rq, json_integer_value(json_object_get(a, "id")), a, status);
    }
    if (err) {
        json_decref(docs);
        return err;
    }
    return resp_json(rs, 200, list_body(docs, (int64_t)json_array_size(docs)));
}

int api_alerts_batch(struct req *rq, struct resp *rs)
{
    json_t *body;
    const json_t *ids = NULL;
    int rc = req_body_object(rq, rs, &body);
    if (!rc)
        rc = batch_body(rs, body, &ids);
    if (!rc) {
        rc = txn_begin(rq);
        if (!rc)
            rc = txn_end(rq, batch_status(rq, rs, ids, json_object_get(body, "status")), rs);
    }
    json_decref(body);
    return rc < 0 ? rc : 0;
}
