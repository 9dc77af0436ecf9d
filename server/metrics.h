/*
 * metrics: request counters and latency histograms for `GET /metrics`
 * (Prometheus text format 0.0.4).
 *
 * One slot per route plus one for requests no route matched; each counts
 * requests by status code and keeps a latency histogram. The HTTP layer
 * records every finished request. A mutex guards the counters, so recording
 * and rendering may happen on different threads.
 */
#ifndef MOAT_SERVER_METRICS_H
#define MOAT_SERVER_METRICS_H

#include "alert.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_STATUSES_MAX 16
#define METRICS_BUCKETS      9

struct metric_route {
    unsigned status[METRICS_STATUSES_MAX];
    uint64_t count[METRICS_STATUSES_MAX];
    size_t nstatus;
    uint64_t buckets[METRICS_BUCKETS]; /* requests at or below metrics_bounds[i] */
    uint64_t total;
    double sum; /* seconds */
};

/* Events stored as alerts per cluster and kind (at most METRICS_CLUSTERS clusters). */
#define METRICS_CLUSTERS 1024
struct metric_cluster {
    char name[129]; /* a cluster name (at most SERVER_NAME_MAX bytes) */
    uint64_t by_kind[ALERT_KINDS];
};

struct metrics {
    struct metric_route *routes; /* nroutes + 1: the last is "unmatched" */
    size_t nroutes;
    uint64_t alerts_ingested;        /* events stored as (part of) alerts */
    uint64_t auth_failures;          /* requests answered 401 */
    uint64_t throttled;              /* requests answered 429 (too many failed authentications) */
    int64_t connections;             /* open now */
    struct metric_cluster *clusters; /* in the order first seen; past the cap: "_other" */
    size_t nclusters, cap_clusters;
    pthread_mutex_t lock;
};

/* Room for `nroutes` routes. 0 or -ENOMEM; metrics_free() undoes it. */
int metrics_init(struct metrics *m, size_t nroutes);
void metrics_free(struct metrics *m);
/* Counts one request of route `route` (-1 = unmatched) answered `status` in `seconds`. */
void metrics_record(struct metrics *m, int route, unsigned status, double seconds);
/* Counts `n` events ingested as alerts. */
void metrics_add_alerts(struct metrics *m, uint64_t n);
/* Counts `n` events of alert kind `kind` (a name) of `cluster` stored as alerts. */
void metrics_add_alert_kind(struct metrics *m, const char *cluster, const char *kind, uint64_t n);
/* Counts a request answered 401, one answered 429, a connection opened (+1) or closed (-1). */
void metrics_add_auth_failure(struct metrics *m);
void metrics_add_throttled(struct metrics *m);
void metrics_add_connection(struct metrics *m, int delta);
/* The Prometheus text followed by `extra` (may be NULL); caller frees; NULL on OOM. */
char *metrics_render(struct metrics *m, const char *extra);

#endif
