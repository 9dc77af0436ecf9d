/*
 * alert: turning datapath hits into aggregated alerts (SPEC §7).
 *
 * Hits with the same cluster, kind, rule, source workload (or source address
 * when the source is not a workload), destination workload (or address),
 * destination port and applied action on the same UTC day form one alert
 * whose `attempts` counts them. Allow decisions are never alerts. Each alert
 * can be written as one JSON line (the SIEM form); the aggregator owns its
 * alerts and hands out pointers valid until alert_agg_free.
 */
#ifndef MOAT_ALERT_H
#define MOAT_ALERT_H

#include "addr.h"
#include "model.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

enum alert_kind {
    ALERT_POLICY = 0,
    ALERT_BRUTE_FORCE = 1,
    ALERT_PORT_SCAN = 2,
    ALERT_DNS_HIJACK = 3,
    ALERT_SPOOFING = 4,
    ALERT_THREAT_INTEL = 5,
};
#define ALERT_KINDS 6

struct alert_endpoint {
    struct moat_addr addr;
    uint16_t port;
    const struct moat_workload *workload; /* NULL when not a workload */
};

/* One hit as the agent resolved it from a datapath event. */
struct alert_hit {
    const char *cluster;
    const char *node;
    enum alert_kind kind;
    uint32_t rule_id; /* 0: none / the default action */
    const char *rule_name;
    enum moat_action configured, applied;
    uint8_t proto;
    struct alert_endpoint src, dst;
    time_t when; /* UTC seconds */
    const char *details;
    uint64_t count; /* hits this one stands for (0: one) */
};

struct alert {
    char id[17]; /* hex of the aggregation key's hash */
    char *cluster, *node, *rule_name, *details;
    enum alert_kind kind;
    uint32_t rule_id;
    enum moat_action configured, applied;
    uint8_t proto;
    struct moat_addr src_addr, dst_addr;
    uint16_t src_port, dst_port;
    char *src_ns, *src_name, *src_app, *src_image;
    char *dst_ns, *dst_name, *dst_app, *dst_image;
    time_t first_seen, last_seen;
    uint64_t attempts;
    bool dirty; /* changed since alert_agg_take_dirty last listed it */
};

struct alert_agg;

struct alert_agg *alert_agg_new(void);
void alert_agg_free(struct alert_agg *a);
/* Adds a hit. Returns the alert it counted in (NULL for allow hits), or NULL with *err = -ENOMEM.
 */
const struct alert *alert_agg_add(struct alert_agg *a, const struct alert_hit *h, int *err);
size_t alert_agg_count(const struct alert_agg *a);
/* Calls fn for every alert changed since the last call, and clears the marks. */
void alert_agg_take_dirty(struct alert_agg *a, void (*fn)(void *ctx, const struct alert *al),
                          void *ctx);
/* The alert as one JSON line (no newline); the caller frees. NULL on OOM. */
char *alert_to_json(const struct alert *al);
const char *alert_kind_name(enum alert_kind k);
/* The kind named `name`, or -1. */
int alert_kind_named(const char *name);
/*
 * The alert as one event of moat-server's ingest (POST /agents/events) that
 * counts `attempts` hits, dated at its last_seen. NULL on OOM; caller releases.
 */
json_t *alert_to_event(const struct alert *al, uint64_t attempts);
/* low / medium / high. */
const char *alert_risk(const struct alert *al);

#endif
