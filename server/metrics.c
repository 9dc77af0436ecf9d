/* metrics: counters and histograms in Prometheus text format (see metrics.h). */
#include "metrics.h"
#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bounds[METRICS_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                               0.025,  0.05,  0.1,    0.5};

int metrics_init(struct metrics *m, size_t nroutes)
{
    m->routes = calloc(nroutes + 1, sizeof(*m->routes));
    if (!m->routes)
        return -ENOMEM;
    m->nroutes = nroutes;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m->routes);
        m->routes = NULL;
        return -ENOMEM;
    }
    return 0;
}

void metrics_free(struct metrics *m)
{
    if (!m->routes)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->clusters);
    m->clusters = NULL;
    free(m->routes);
    m->routes = NULL;
}

void metrics_record(struct metrics *m, int route, unsigned status, double seconds)
{
    size_t i = route < 0 || (size_t)route >= m->nroutes ? m->nroutes : (size_t)route;
    pthread_mutex_lock(&m->lock);
    struct metric_route *r = &m->routes[i];
    size_t s = 0;
    while (s < r->nstatus && r->status[s] != status)
        s++;
    if (s == r->nstatus && s < METRICS_STATUSES_MAX)
        r->status[r->nstatus++] = status;
    if (s < r->nstatus)
        r->count[s]++;
    for (size_t b = 0; b < METRICS_BUCKETS; b++)
        r->buckets[b] += seconds <= bounds[b];
    r->total++;
    r->sum += seconds;
    pthread_mutex_unlock(&m->lock);
}

/* A growable text with a cap; `failed` once anything could not be appended. */
struct text {
    char *data;
    size_t len, cap;
    int failed;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (t->failed || n < 0 || (size_t)n >= sizeof(line)) {
        t->failed = 1;
        return;
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *d = realloc(t->data, cap);
        if (!d) {
            t->failed = 1;
            return;
        }
        t->data = d;
        t->cap = cap;
    }
    memcpy(t->data + t->len, line, (size_t)n + 1);
    t->len += (size_t)n;
}

static void route_labels(char *buf, size_t n, const struct route *r)
{
    if (r)
        snprintf(buf, n, "method=\"%s\",route=\"%s\"", r->method, r->pattern);
    else
        snprintf(buf, n, "method=\"\",route=\"unmatched\"");
}

static void render_counts(struct text *t, const struct metrics *m, const struct route *tab)
{
    add(t, "# HELP moat_http_requests_total HTTP requests by route and status.\n");
    add(t, "# TYPE moat_http_requests_total counter\n");
    for (size_t i = 0; i <= m->nroutes; i++) {
        char labels[256];
        route_labels(labels, sizeof(labels), i < m->nroutes ? &tab[i] : NULL);
        for (size_t s = 0; s < m->routes[i].nstatus; s++)
            add(t, "moat_http_requests_total{%s,status=\"%u\"} %llu\n", labels,
                m->routes[i].status[s], (unsigned long long)m->routes[i].count[s]);
    }
}

static void render_histograms(struct text *t, const struct metrics *m, const struct route *tab)
{
    add(t, "# HELP moat_http_request_duration_seconds Time to answer a request.\n");
    add(t, "# TYPE moat_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->nroutes; i++) {
        const struct metric_route *r = &m->routes[i];
        char labels[256];
        route_labels(labels, sizeof(labels), i < m->nroutes ? &tab[i] : NULL);
        for (size_t b = 0; b < METRICS_BUCKETS; b++)
            add(t, "moat_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n", labels,
                bounds[b], (unsigned long long)r->buckets[b]);
        add(t, "moat_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n", labels,
            (unsigned long long)r->total);
        add(t, "moat_http_request_duration_seconds_sum{%s} %.6f\n", labels, r->sum);
        add(t, "moat_http_request_duration_seconds_count{%s} %llu\n", labels,
            (unsigned long long)r->total);
    }
}

void metrics_add_alerts(struct metrics *m, uint64_t n)
{
    pthread_mutex_lock(&m->lock);
    m->alerts_ingested += n;
    pthread_mutex_unlock(&m->lock);
}

/* The counters of `cluster` (under m->lock); NULL on OOM. */
static struct metric_cluster *cluster_slot(struct metrics *m, const char *cluster)
{
    for (size_t i = 0; i < m->nclusters; i++)
        if (strcmp(m->clusters[i].name, cluster) == 0)
            return &m->clusters[i];
    if (m->nclusters == METRICS_CLUSTERS) /* the last slot takes every cluster past the cap */
        cluster = "_other";
    if (m->nclusters > METRICS_CLUSTERS)
        return &m->clusters[METRICS_CLUSTERS];
    if (m->nclusters == m->cap_clusters) {
        size_t cap = m->cap_clusters ? 2 * m->cap_clusters : 16;
        if (cap > METRICS_CLUSTERS + 1)
            cap = METRICS_CLUSTERS + 1;
        struct metric_cluster *c = realloc(m->clusters, cap * sizeof(*c));
        if (!c)
            return NULL;
        m->clusters = c;
        m->cap_clusters = cap;
    }
    struct metric_cluster *c = &m->clusters[m->nclusters++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", cluster);
    return c;
}

void metrics_add_alert_kind(struct metrics *m, const char *cluster, const char *kind, uint64_t n)
{
    int k = alert_kind_named(kind);
    if (k < 0 || !n)
        return;
    pthread_mutex_lock(&m->lock);
    struct metric_cluster *c = cluster_slot(m, cluster);
    if (c)
        c->by_kind[k] += n;
    pthread_mutex_unlock(&m->lock);
}

static void render_alert_kinds(struct text *t, const struct metrics *m)
{
    add(t, "# HELP moat_alert_events_total Events stored as alerts, by cluster and kind.\n");
    add(t, "# TYPE moat_alert_events_total counter\n");
    for (size_t i = 0; i < m->nclusters; i++)
        for (int k = 0; k < ALERT_KINDS; k++)
            add(t, "moat_alert_events_total{cluster=\"%s\",kind=\"%s\"} %llu\n",
                m->clusters[i].name, alert_kind_name((enum alert_kind)k),
                (unsigned long long)m->clusters[i].by_kind[k]);
}

void metrics_add_auth_failure(struct metrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->auth_failures++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_add_throttled(struct metrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->throttled++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_add_connection(struct metrics *m, int delta)
{
    pthread_mutex_lock(&m->lock);
    m->connections += delta;
    pthread_mutex_unlock(&m->lock);
}

char *metrics_render(struct metrics *m, const char *extra)
{
    size_t n;
    const struct route *tab = routes_table(&n);
    struct text t = {0};
    pthread_mutex_lock(&m->lock);
    render_counts(&t, m, tab);
    render_histograms(&t, m, tab);
    add(&t, "# HELP moat_alerts_ingested_total Events stored as (part of) alerts.\n");
    add(&t, "# TYPE moat_alerts_ingested_total counter\n");
    add(&t, "moat_alerts_ingested_total %llu\n", (unsigned long long)m->alerts_ingested);
    render_alert_kinds(&t, m);
    add(&t,
        "# HELP moat_auth_failures_total Requests refused for a missing or wrong token (401).\n");
    add(&t, "# TYPE moat_auth_failures_total counter\n");
    add(&t, "moat_auth_failures_total %llu\n", (unsigned long long)m->auth_failures);
    add(&t, "# HELP moat_auth_throttled_total Requests refused because their source failed to "
            "authenticate too often (429).\n");
    add(&t, "# TYPE moat_auth_throttled_total counter\n");
    add(&t, "moat_auth_throttled_total %llu\n", (unsigned long long)m->throttled);
    add(&t, "# HELP moat_http_connections Connections open now.\n");
    add(&t, "# TYPE moat_http_connections gauge\n");
    add(&t, "moat_http_connections %lld\n", (long long)m->connections);
    pthread_mutex_unlock(&m->lock);
    size_t xn = extra ? strlen(extra) : 0;
    if (!t.failed && xn) {
        char *d = realloc(t.data, t.len + xn + 1);
        if (d) {
            memcpy(d + t.len, extra, xn + 1);
            t.data = d;
            t.len += xn;
        } else {
            t.failed = 1;
        }
    }
    if (t.failed || !t.data) {
        free(t.data);
        return NULL;
    }
    return t.data;
}
