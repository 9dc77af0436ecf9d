/*
 * api_status: protection status (SPEC 8) for every cluster (/status) or one
 * (/clusters/{cluster}/status): alerts whose last_seen is within 24 h, 30 d
 * and 180 d; unprotected clusters (defense off, or not every node enforcing)
 * of the total; rules total/enabled/disabled/suggested; alerts of the last 7
 * days per cluster; the top 5 rules, sources, destinations and destination
 * ports of the last 30 days by attempts; the 10 newest alerts; and the
 * per-hour series of blocked and alerted connections over the last 24 hours.
 * Computed from the stored alerts on each request.
 *
 * The series: 24 UTC hours, oldest first, the last one being the current
 * (partial) hour, zeros included. Alerts are aggregated per UTC day; ingest
 * keeps each alert's attempts per UTC hour of its day (`hours`: "HH" ->
 * attempts), which the series adds up exactly. An alert stored before
 * ingest kept hours has only first_seen, last_seen and attempts: its
 * attempts are spread evenly over the hours from its first_seen hour to its
 * last_seen hour (hour i of k gets floor(n(i+1)/k) - floor(n i/k), which
 * sums to n). Its applied action says whether they count as blocked
 * (`block`) or alerted (`alert`).
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP_N    5
#define NEWEST_N 10
#define HOURS    24

/* counts[key] += n */
static int bump(json_t *counts, const char *key, json_int_t n)
{
    if (!*key)
        return 0;
    json_int_t v = json_integer_value(json_object_get(counts, key));
    return json_object_set_new(counts, key, json_integer(v + n)) < 0 ? -ENOMEM : 0;
}

/* The TOP_N largest entries of counts as [{label: key, "attempts": n}]. */
static json_t *top(json_t *counts, const char *label)
{
    json_t *out = json_array();
    for (int k = 0; out && k < TOP_N; k++) {
        const char *best = NULL, *key;
        json_int_t bv = 0;
        json_t *v;
        json_object_foreach(counts, key, v)
        {
            if (json_integer_value(v) > bv) {
                best = key;
                bv = json_integer_value(v);
            }
        }
        if (!best)
            break;
        if (json_array_append_new(out, json_pack("{s:s,s:I}", label, best, "attempts", bv)) < 0 ||
            json_object_set_new(counts, best, json_integer(0)) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* qsort: alerts by last_seen, newest first (then by id, newest first). */
static int newer_first(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    int c = strcmp(jstr(y, "last_seen"), jstr(x, "last_seen"));
    if (c)
        return c;
    json_int_t ix = json_integer_value(json_object_get(x, "id"));
    json_int_t iy = json_integer_value(json_object_get(y, "id"));
    return ix < iy ? 1 : ix > iy ? -1 : 0;
}

struct windows {
    char d1[21], d7[21], d30[21], d180[21];
    time_t h0; /* the start of the series' first hour */
};

/* Attempts per hour of the series, by applied action. */
struct series {
    json_int_t blocked[HOURS], alerted[HOURS];
};

/* Adds the attempts of an alert's `hours` ("HH" -> n) of the day `last` falls in. */
static void series_add_hours(json_int_t *row, time_t h0, time_t last, const json_t *hours)
{
    const char *key;
    const json_t *n;
    time_t day = last - last % 86400;
    json_object_foreach((json_t *)hours, key, n)
    {
        char *end;
        long hour = strtol(key, &end, 10);
        time_t t = day + (time_t)hour * 3600;
        if (!*end && hour >= 0 && hour < 24 && t >= h0 && t < h0 + HOURS * 3600)
            row[(t - h0) / 3600] += json_integer_value(n);
    }
}

/* Adds an alert's attempts to the series by hour (see the top of the file). */
static void series_add(struct series *h, time_t h0, const json_t *a)
{
    const char *applied = jstr(a, "applied_action");
    json_int_t *row = strcmp(applied, "block") == 0   ? h->blocked
                      : strcmp(applied, "alert") == 0 ? h->alerted
                                                      : NULL;
    time_t first, last;
    if (!row || !time_parse(jstr(a, "last_seen"), &last))
        return;
    const json_t *hours = json_object_get(a, "hours");
    if (json_is_object(hours)) {
        series_add_hours(row, h0, last, hours);
        return;
    }
    if (!time_parse(jstr(a, "first_seen"), &first) || first > last)
        first = last;
    first -= first % 3600;
    last -= last % 3600;
    if (last - first >= HOURS * 3600) /* an alert spans one UTC day; never more */
        first = last - (HOURS - 1) * 3600;
    json_int_t k = (json_int_t)(last - first) / 3600 + 1;
    json_int_t n = json_integer_value(json_object_get(a, "attempts"));
    for (json_int_t i = 0; i < k; i++) {
        time_t t = first + (time_t)i * 3600;
        if (t >= h0 && t < h0 + HOURS * 3600)
            row[(t - h0) / 3600] += n * (i + 1) / k - n * i / k;
    }
}

/* The series as [{"hour": "YYYY-MM-DDTHH:00:00Z", "blocked": N, "alerted": N}], oldest first. */
static json_t *series_json(const struct series *h, time_t h0)
{
    json_t *out = json_array();
    for (int i = 0; out && i < HOURS; i++) {
        char hour[21];
        time_iso(h0 + (time_t)i * 3600, hour);
        if (json_array_append_new(out, json_pack("{s:s,s:I,s:I}", "hour", hour, "blocked",
                                                 h->blocked[i], "alerted", h->alerted[i])) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static int alert_stats(struct server *srv, const char *cluster, const struct windows *w,
                       json_t *out, json_t *per_cluster)
{
    struct store_query q = {.cluster = cluster,
                            .limit = -1,
                            .range_field = "last_seen",
                            .since = w->d180,
                            .newest_first = 1};
    json_t *items;
    int64_t total;
    int err = srv->store.ops->list(&srv->store, STORE_ALERT, &q, &items, &total);
    if (err)
        return err;
    int64_t n1 = 0, n30 = 0;
    struct series hourly = {0};
    json_t *rules = json_object(), *srcs = json_object(), *dsts = json_object(),
           *ports = json_object(), *kinds = json_object();
    if (!rules || !srcs || !dsts || !ports || !kinds)
        err = -ENOMEM;
    for (int k = 0; !err && k < ALERT_KINDS; k++)
        err = bump(kinds, alert_kind_name((enum alert_kind)k), 0);
    size_t i;
    json_t *a;
    json_array_foreach(items, i, a)
    {
        const char *seen = jstr(a, "last_seen");
        json_int_t att = json_integer_value(json_object_get(a, "attempts"));
        n1 += strcmp(seen, w->d1) >= 0;
        series_add(&hourly, w->h0, a);
        if (!err && strcmp(seen, w->d7) >= 0)
            err = bump(per_cluster, jstr(a, "cluster"), 1);
        if (err || strcmp(seen, w->d30) < 0)
            continue;
        n30++;
        err = bump(kinds, jstr(a, "kind"), 1);
        const json_t *rule = json_object_get(a, "rule");
        const json_t *src = json_object_get(a, "source"), *dst = json_object_get(a, "destination");
        char buf[320];
        if (json_is_object(rule)) {
            snprintf(buf, sizeof(buf), "%lld %s",
                     (long long)json_integer_value(json_object_get(rule, "id")),
                     jstr(rule, "name"));
            err = bump(rules, buf, att);
        }
        if (!err)
            err = bump(srcs, *jstr(src, "workload") ? jstr(src, "workload") : jstr(src, "address"),
                       att);
        if (!err)
            err = bump(dsts, *jstr(dst, "workload") ? jstr(dst, "workload") : jstr(dst, "address"),
                       att);
        if (!err && json_object_get(dst, "port")) {
            snprintf(buf, sizeof(buf), "%lld",
                     (long long)json_integer_value(json_object_get(dst, "port")));
            err = bump(ports, buf, att);
        }
    }
    json_t *newest = json_array();
    size_t na = json_array_size(items);
    const json_t **byseen = na ? calloc(na, sizeof(*byseen)) : NULL;
    for (size_t k = 0; byseen && k < na; k++)
        byseen[k] = json_array_get(items, k);
    if (byseen)
        qsort(byseen, na, sizeof(*byseen), newer_first);
    else if (na)
        err = -ENOMEM;
    for (size_t k = 0; !err && newest && k < na && k < NEWEST_N; k++)
        if (json_array_append(newest, (json_t *)byseen[k]) < 0)
            err = -ENOMEM;
    free(byseen);
    if (!err &&
        json_object_set_new(out, "alerts",
                            json_pack("{s:I,s:I,s:I}", "last_24h", (json_int_t)n1, "last_30d",
                                      (json_int_t)n30, "last_180d", (json_int_t)total)) < 0)
        err = -ENOMEM;
    if (!err &&
        json_object_set_new(out, "top",
                            json_pack("{s:o*,s:o*,s:o*,s:o*}", "rules", top(rules, "rule"),
                                      "sources", top(srcs, "source"), "destinations",
                                      top(dsts, "destination"), "ports", top(ports, "port"))) < 0)
        err = -ENOMEM;
    if (!err && json_object_set(out, "alerts_by_kind_30d", kinds) < 0)
        err = -ENOMEM;
    if (!err && json_object_set(out, "newest", newest) < 0)
        err = -ENOMEM;
    if (!err && json_object_set_new(out, "hourly", series_json(&hourly, w->h0)) < 0)
        err = -ENOMEM;
    json_decref(newest);
    json_decref(rules);
    json_decref(srcs);
    json_decref(dsts);
    json_decref(ports);
    json_decref(kinds);
    json_decref(items);
    return err;
}

/* Clusters, their 7-day alert counts, unprotected count, and rule counts. */
static int cluster_stats(struct server *srv, const char *cluster, json_t *out, json_t *per_cluster)
{
    struct store *st = &srv->store;
    struct store_query q = {.limit = -1};
    if (cluster)
        q.filters[q.nfilters++] = (struct store_filter){"name", cluster};
    json_t *clusters, *rules = NULL, *week = json_array();
    int64_t total, unprotected = 0, enabled = 0, suggested = 0, nrules = 0, held = 0;
    int err = st->ops->list(st, STORE_CLUSTER, &q, &clusters, &total);
    size_t i;
    json_t *c;
    json_array_foreach(clusters, i, c)
    {
        json_t *h = json_object();
        if (!err)
            err = h ? cluster_health(srv, jstr(c, "name"), h) : -ENOMEM;
        if (!err &&
            (strcmp(jstr(c, "defense"), "on") != 0 || strcmp(jstr(h, "status"), "normal") != 0))
            unprotected++;
        json_decref(h);
        int64_t nq = 0;
        if (!err)
            err = detect_quarantined(st, jstr(c, "name"), &nq);
        held += nq;
        json_int_t n = json_integer_value(json_object_get(per_cluster, jstr(c, "name")));
        if (!err &&
            (!week || json_array_append_new(week, json_pack("{s:s,s:I}", "cluster", jstr(c, "name"),
                                                            "alerts", n)) < 0))
            err = -ENOMEM;
    }
    struct store_query rq = {.cluster = cluster, .limit = -1};
    if (!err)
        err = st->ops->list(st, STORE_RULE, &rq, &rules, &nrules);
    json_array_foreach(rules, i, c)
    {
        enabled += json_is_true(json_object_get(c, "enabled"));
        suggested += strcmp(jstr(c, "type"), "suggested") == 0;
    }
    if (!err && (json_object_set_new(out, "clusters",
                                     json_pack("{s:I,s:I}", "total", (json_int_t)total,
                                               "unprotected", (json_int_t)unprotected)) < 0 ||
                 json_object_set_new(out, "rules",
                                     json_pack("{s:I,s:I,s:I,s:I}", "total", (json_int_t)nrules,
                                               "enabled", (json_int_t)enabled, "disabled",
                                               (json_int_t)(nrules - enabled), "suggested",
                                               (json_int_t)suggested)) < 0 ||
                 json_object_set(out, "alerts_7d_per_cluster", week) < 0 ||
                 json_object_set_new(out, "quarantines",
                                     json_pack("{s:I}", "active", (json_int_t)held)) < 0))
        err = -ENOMEM;
    json_decref(week);
    json_decref(rules);
    json_decref(clusters);
    return err;
}

static int status(struct req *rq, struct resp *rs, const char *cluster)
{
    struct windows w = {.d1 = ""};
    time_t now = time(NULL);
    time_iso(now - 86400, w.d1);
    time_iso(now - 7 * 86400, w.d7);
    time_iso(now - 30 * 86400, w.d30);
    time_iso(now - 180 * 86400, w.d180);
    w.h0 = now - now % 3600 - (HOURS - 1) * 3600;
    json_t *out = json_object(), *per = json_object();
    int err = out && per ? alert_stats(rq->srv, cluster, &w, out, per) : -ENOMEM;
    if (!err)
        err = cluster_stats(rq->srv, cluster, out, per);
    json_decref(per);
    if (err) {
        json_decref(out);
        return err;
    }
    return resp_json(rs, 200, out);
}

int api_status(struct req *rq, struct resp *rs)
{
    static const char *const none[] = {NULL};
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, none, false, &q);
    if (rc)
        return rc < 0 ? rc : 0;
    return status(rq, rs, NULL);
}

int api_cluster_status(struct req *rq, struct resp *rs)
{
    int64_t id;
    int err = rq->srv->store.ops->find(&rq->srv->store, STORE_CLUSTER, NULL, rq->params[0], &id);
    if (err == -ENOENT)
        return resp_error(rs, 404, "", "no cluster \"%s\"", rq->params[0]);
    return err ? err : status(rq, rs, rq->params[0]);
}
