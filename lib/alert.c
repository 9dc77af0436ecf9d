/* alert: aggregation of hits into alerts and their JSON form (see alert.h). */
#include "alert.h"
#include "mem.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct alert_agg {
    struct alert **items;
    size_t n, cap;
    /* open addressing over items: index + 1, 0 = empty */
    uint32_t *slots;
    size_t nslots;
    uint64_t *hashes;
    size_t cap_hashes;
};

const char *alert_kind_name(enum alert_kind k)
{
    static const char *const names[] = {"policy",     "brute_force", "port_scan",
                                        "dns_hijack", "spoofing",    "threat_intel"};
    return (unsigned)k < ALERT_KINDS ? names[k] : "?";
}

int alert_kind_named(const char *name)
{
    for (int k = 0; name && k < ALERT_KINDS; k++)
        if (strcmp(alert_kind_name((enum alert_kind)k), name) == 0)
            return k;
    return -1;
}

const char *alert_risk(const struct alert *al)
{
    if (al->kind == ALERT_SPOOFING || al->kind == ALERT_DNS_HIJACK ||
        al->kind == ALERT_THREAT_INTEL || al->kind == ALERT_BRUTE_FORCE)
        return "high";
    return al->applied == MOAT_ACTION_BLOCK ? "medium" : "low";
}

struct alert_agg *alert_agg_new(void)
{
    return moat_calloc(1, sizeof(struct alert_agg));
}

static void alert_free(struct alert *al)
{
    if (!al)
        return;
    free(al->cluster);
    free(al->node);
    free(al->rule_name);
    free(al->details);
    free(al->src_ns);
    free(al->src_name);
    free(al->src_app);
    free(al->src_image);
    free(al->dst_ns);
    free(al->dst_name);
    free(al->dst_app);
    free(al->dst_image);
    free(al);
}

void alert_agg_free(struct alert_agg *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        alert_free(a->items[i]);
    free(a->items);
    free(a->slots);
    free(a->hashes);
    free(a);
}

size_t alert_agg_count(const struct alert_agg *a)
{
    return a->n;
}

static uint64_t mix(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    return mix(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

/* The aggregation key: everything SPEC §7 names, and the UTC day. */
static uint64_t key_hash(const struct alert_hit *h)
{
    uint64_t x = 0xcbf29ce484222325ull;
    int64_t day = (int64_t)(h->when / 86400);
    x = mix_str(x, h->cluster);
    x = mix(x, &h->kind, sizeof(h->kind));
    x = mix(x, &h->rule_id, sizeof(h->rule_id));
    if (h->src.workload) {
        x = mix_str(x, h->src.workload->namespace);
        x = mix_str(x, h->src.workload->name);
    } else {
        x = mix(x, h->src.addr.b, 16);
    }
    if (h->dst.workload) {
        x = mix_str(x, h->dst.workload->namespace);
        x = mix_str(x, h->dst.workload->name);
    } else {
        x = mix(x, h->dst.addr.b, 16);
    }
    x = mix(x, &h->dst.port, sizeof(h->dst.port));
    x = mix(x, &h->applied, sizeof(h->applied));
    return mix(x, &day, sizeof(day));
}

static int rehash(struct alert_agg *a)
{
    size_t n = a->nslots ? a->nslots * 2 : 64;
    uint32_t *slots = moat_calloc(n, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < a->n; i++) {
        size_t j = a->hashes[i] & (n - 1);
        while (slots[j])
            j = (j + 1) & (n - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(a->slots);
    a->slots = slots;
    a->nslots = n;
    return 0;
}

static int dup_endpoint(const struct alert_endpoint *e, char **ns, char **name, char **app,
                        char **image)
{
    if (!e->workload)
        return 0;
    const struct moat_workload *w = e->workload;
    *ns = moat_strdup(w->namespace);
    *name = moat_strdup(w->name);
    const char *a = labels_get(w->labels, w->nlabels, "app");
    *app = a ? moat_strdup(a) : NULL;
    *image = w->image ? moat_strdup(w->image) : NULL;
    return !*ns || !*name || (a && !*app) || (w->image && !*image) ? -ENOMEM : 0;
}

static struct alert *alert_make(const struct alert_hit *h, uint64_t hash)
{
    struct alert *al = moat_calloc(1, sizeof(*al));
    if (!al)
        return NULL;
    snprintf(al->id, sizeof(al->id), "%016llx", (unsigned long long)hash);
    al->cluster = moat_strdup(h->cluster);
    al->node = moat_strdup(h->node);
    al->rule_name = h->rule_name ? moat_strdup(h->rule_name) : NULL;
    al->details = h->details ? moat_strdup(h->details) : NULL;
    al->kind = h->kind;
    al->rule_id = h->rule_id;
    al->configured = h->configured;
    al->applied = h->applied;
    al->proto = h->proto;
    al->src_addr = h->src.addr;
    al->dst_addr = h->dst.addr;
    al->src_port = h->src.port;
    al->dst_port = h->dst.port;
    al->first_seen = h->when;
    int err = dup_endpoint(&h->src, &al->src_ns, &al->src_name, &al->src_app, &al->src_image);
    if (!err)
        err = dup_endpoint(&h->dst, &al->dst_ns, &al->dst_name, &al->dst_app, &al->dst_image);
    if (err || !al->cluster || (h->node && !al->node) || (h->rule_name && !al->rule_name) ||
        (h->details && !al->details)) {
        alert_free(al);
        return NULL;
    }
    return al;
}

static struct alert *find(const struct alert_agg *a, uint64_t hash)
{
    if (!a->nslots)
        return NULL;
    for (size_t j = hash & (a->nslots - 1); a->slots[j]; j = (j + 1) & (a->nslots - 1))
        if (a->hashes[a->slots[j] - 1] == hash)
            return a->items[a->slots[j] - 1];
    return NULL;
}

#define DETAILS_MAX 1024 /* bytes of an alert's details, reasons added included */

/*
 * Hits of one alert may say different things (a DNS answer with no query,
 * another with the wrong question): each new one is added, once, while room
 * lasts, so the alert says every reason it counts.
 */
static void add_details(struct alert *al, const char *details)
{
    if (!details || !al->details || strstr(al->details, details))
        return;
    size_t have = strlen(al->details), add = strlen(details);
    if (have + 2 + add > DETAILS_MAX)
        return;
    char *grown = moat_reallocarray(al->details, have + 2 + add + 1, 1);
    if (!grown)
        return; /* the reasons known so far stay */
    memcpy(grown + have, "; ", 2);
    memcpy(grown + have + 2, details, add + 1);
    al->details = grown;
}

const struct alert *alert_agg_add(struct alert_agg *a, const struct alert_hit *h, int *err)
{
    *err = 0;
    if (h->applied == MOAT_ACTION_ALLOW && h->configured == MOAT_ACTION_ALLOW)
        return NULL;
    uint64_t hash = key_hash(h);
    struct alert *al = find(a, hash);
    if (!al) {
        if ((a->n + 1) * 2 > a->nslots && rehash(a) < 0)
            goto oom;
        if (moat_grow(&a->items, &a->cap, a->n + 1, sizeof(*a->items)) < 0 ||
            moat_grow(&a->hashes, &a->cap_hashes, a->n + 1, sizeof(*a->hashes)) < 0)
            goto oom;
        al = alert_make(h, hash);
        if (!al)
            goto oom;
        a->items[a->n] = al;
        a->hashes[a->n] = hash;
        size_t j = hash & (a->nslots - 1);
        while (a->slots[j])
            j = (j + 1) & (a->nslots - 1);
        a->slots[j] = (uint32_t)++a->n;
    }
    al->attempts += h->count ? h->count : 1;
    add_details(al, h->details);
    if (h->when < al->first_seen)
        al->first_seen = h->when;
    if (h->when > al->last_seen)
        al->last_seen = h->when;
    al->dirty = true;
    return al;
oom:
    *err = -ENOMEM;
    return NULL;
}

void alert_agg_take_dirty(struct alert_agg *a, void (*fn)(void *ctx, const struct alert *al),
                          void *ctx)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i]->dirty) {
            a->items[i]->dirty = false;
            fn(ctx, a->items[i]);
        }
}

static void iso_time(time_t t, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *endpoint_json(const struct moat_addr *addr, uint16_t port, const char *ns,
                             const char *name, const char *app, const char *image)
{
    char buf[MOAT_ADDR_STRLEN];
    addr_format(addr, buf, sizeof(buf));
    json_t *w = json_null();
    if (name)
        w = json_pack("{s:s,s:s,s:s?,s:s?}", "namespace", ns, "name", name, "app", app, "image",
                      image);
    return json_pack("{s:s,s:i,s:o}", "address", buf, "port", port, "workload", w);
}

static const char *proto_text(uint8_t p)
{
    return p == 6 ? "tcp" : p == 17 ? "udp" : p == 1 ? "icmp" : p == 58 ? "icmpv6" : "other";
}

char *alert_to_json(const struct alert *al)
{
    char first[32], last[32];
    iso_time(al->first_seen, first, sizeof(first));
    iso_time(al->last_seen, last, sizeof(last));
    json_t *rule = json_null();
    if (al->rule_id)
        rule = json_pack("{s:I,s:s?}", "id", (json_int_t)al->rule_id, "name", al->rule_name);
    json_t *j = json_pack(
        "{s:s,s:s,s:s?,s:s,s:o,s:s,s:s,s:b,s:o,s:o,s:s,s:s,s:s,s:I,s:s,s:s,s:s?}", "id", al->id,
        "cluster", al->cluster, "node", al->node, "kind", alert_kind_name(al->kind), "rule", rule,
        "configured_action", action_name(al->configured), "applied_action",
        action_name(al->applied), "would_block",
        al->configured == MOAT_ACTION_BLOCK && al->applied == MOAT_ACTION_ALERT, "source",
        endpoint_json(&al->src_addr, al->src_port, al->src_ns, al->src_name, al->src_app,
                      al->src_image),
        "destination",
        endpoint_json(&al->dst_addr, al->dst_port, al->dst_ns, al->dst_name, al->dst_app,
                      al->dst_image),
        "protocol", proto_text(al->proto), "first_seen", first, "last_seen", last, "attempts",
        (json_int_t)al->attempts, "risk", alert_risk(al), "status", "unhandled", "details",
        al->details);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    return s;
}

/* An endpoint as moat-server's event ingest takes it (flat; workload fields when known). */
static json_t *event_endpoint(const struct moat_addr *addr, uint16_t port, const char *ns,
                              const char *name, const char *app, const char *image)
{
    char buf[MOAT_ADDR_STRLEN];
    addr_format(addr, buf, sizeof(buf));
    json_t *e = json_pack("{s:s,s:i}", "address", buf, "port", port);
    json_t *w = name ? json_pack("{s:s,s:s,s:s*,s:s*}", "namespace", ns, "name", name, "app", app,
                                 "image", image)
                     : json_object();
    if (!e || !w || json_object_update(e, w) < 0) {
        json_decref(e);
        e = NULL;
    }
    json_decref(w);
    return e;
}

json_t *alert_to_event(const struct alert *al, uint64_t attempts)
{
    char last[32];
    iso_time(al->last_seen, last, sizeof(last));
    json_t *rule = json_null();
    if (al->rule_id)
        rule = json_pack("{s:I,s:s*}", "id", (json_int_t)al->rule_id, "name", al->rule_name);
    json_t *details = al->details ? json_pack("{s:s}", "text", al->details) : json_object();
    return json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:o,s:o,s:I,s:s,s:o}", "time", last, "kind",
                     alert_kind_name(al->kind), "rule", rule, "configured_action",
                     action_name(al->configured), "applied_action", action_name(al->applied),
                     "protocol", proto_text(al->proto), "source",
                     event_endpoint(&al->src_addr, al->src_port, al->src_ns, al->src_name,
                                    al->src_app, al->src_image),
                     "destination",
                     event_endpoint(&al->dst_addr, al->dst_port, al->dst_ns, al->dst_name,
                                    al->dst_app, al->dst_image),
                     "attempts", (json_int_t)attempts, "risk", alert_risk(al), "details", details);
}
