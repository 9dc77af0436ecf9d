/* cluster_det: quarantines shared through the server (see cluster_det.h). */
#include "cluster_det.h"
#include "addr.h"
#include "walltime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The kernel's clock and the wall clock, read together. */
struct clocks {
    int64_t mono_ns;
    time_t wall;
};

static struct clocks clocks_now(void)
{
    struct timespec m, w;
    clock_gettime(CLOCK_MONOTONIC, &m);
    clock_gettime(CLOCK_REALTIME, &w);
    return (struct clocks){(int64_t)m.tv_sec * 1000000000 + m.tv_nsec, w.tv_sec};
}

static time_t to_wall(const struct clocks *c, uint64_t mono_ns)
{
    return c->wall + (time_t)(((int64_t)mono_ns - c->mono_ns) / 1000000000);
}

static uint64_t to_mono(const struct clocks *c, time_t wall)
{
    int64_t ns = c->mono_ns + ((int64_t)wall - (int64_t)c->wall) * 1000000000;
    return ns > 0 ? (uint64_t)ns : 0;
}

static const char *reason_text(uint32_t r)
{
    return (r & MOAT_Q_REASON_MASK) == MOAT_Q_PORT_SCAN ? "port_scan" : "brute_force";
}

static int cmp_addr(const void *x, const void *y)
{
    const struct datapath_quarantine *a = x, *b = y;
    return memcmp(a->addr.b, b->addr.b, 16);
}

json_t *cluster_det_local(const struct datapath_ops *ops, const char *node, uint32_t cluster,
                          int *err)
{
    struct datapath_quarantine *q = NULL;
    size_t n = 0;
    *err = ops->quarantines ? ops->quarantines(node, &q, &n) : -EOPNOTSUPP;
    if (*err)
        return NULL;
    if (n > 1)
        qsort(q, n, sizeof(*q), cmp_addr);
    struct clocks now = clocks_now();
    json_t *out = json_array();
    for (size_t i = 0; out && i < n; i++) {
        if (q[i].cluster != cluster || (q[i].reason & MOAT_Q_FROM_SERVER))
            continue;
        char addr[MOAT_ADDR_STRLEN], since[MOAT_WALLTIME_LEN], until[MOAT_WALLTIME_LEN];
        addr_format(&q[i].addr, addr, sizeof(addr));
        walltime_format(to_wall(&now, q[i].since_ns), since);
        walltime_format(to_wall(&now, q[i].until_ns), until);
        json_t *e = json_pack("{s:s,s:s,s:s,s:s}", "address", addr, "reason",
                              reason_text(q[i].reason), "since", since, "until", until);
        if (!e || json_array_append_new(out, e) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    free(q);
    if (!out)
        *err = -ENOMEM;
    return out;
}

static const struct datapath_quarantine *find(const struct datapath_quarantine *q, size_t n,
                                              uint32_t cluster, const struct moat_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (q[i].cluster == cluster && memcmp(q[i].addr.b, a->b, 16) == 0)
            return &q[i];
    return NULL;
}

/* Entry `e`'s address and time field `key`: false when either does not parse. */
static bool entry(const json_t *e, const char *key, struct moat_addr *a, time_t *t)
{
    return addr_parse(json_string_value(json_object_get(e, "address")), a) == 0 &&
           walltime_parse(json_string_value(json_object_get(e, key)), t);
}

static bool listed(const json_t *list, const struct moat_addr *a)
{
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        struct moat_addr b;
        if (addr_parse(json_string_value(json_object_get(e, "address")), &b) == 0 &&
            memcmp(a->b, b.b, 16) == 0)
            return true;
    }
    return false;
}

/* Ends what `releases` asks for; returns how many ended. */
static int apply_releases(const struct datapath_ops *ops, const char *node, uint32_t cluster,
                          const struct datapath_quarantine *q, size_t n, const json_t *releases,
                          const struct clocks *now)
{
    int changed = 0;
    size_t i;
    const json_t *e;
    json_array_foreach(releases, i, e)
    {
        struct moat_addr a;
        time_t at;
        if (!entry(e, "at", &a, &at))
            continue;
        const struct datapath_quarantine *k = find(q, n, cluster, &a);
        /* one that started after the release is a new attack: it stays (1 s of slack
         * for the wall clock's seconds) */
        if (k && to_wall(now, k->since_ns) <= at + 1 && ops->release(node, cluster, &a) == 0)
            changed++;
    }
    return changed;
}

int cluster_det_apply(const struct datapath_ops *ops, const char *node, uint32_t cluster,
                      const json_t *quarantines, const json_t *releases)
{
    if (!ops->quarantines || !ops->quarantine || !ops->release)
        return -EOPNOTSUPP;
    struct datapath_quarantine *q = NULL;
    size_t n = 0;
    int err = ops->quarantines(node, &q, &n);
    if (err)
        return err;
    struct clocks now = clocks_now();
    int changed = apply_releases(ops, node, cluster, q, n, releases, &now);
    /* the server's own that it no longer lists (released, or gone with their node) */
    for (size_t i = 0; i < n; i++)
        if (q[i].cluster == cluster && (q[i].reason & MOAT_Q_FROM_SERVER) &&
            !listed(quarantines, &q[i].addr) && ops->release(node, cluster, &q[i].addr) == 0)
            changed++;
    size_t i;
    const json_t *e;
    json_array_foreach(quarantines, i, e)
    {
        struct moat_addr a;
        time_t until;
        if (!entry(e, "until", &a, &until) || until <= now.wall)
            continue;
        const struct datapath_quarantine *k = find(q, n, cluster, &a);
        uint64_t until_ns = to_mono(&now, until);
        /* this node's own runs its course; the server's is changed only when it moved
         * (every install makes every flow be checked again) */
        int64_t moved = k ? (int64_t)k->until_ns - (int64_t)until_ns : 0;
        if (k && (!(k->reason & MOAT_Q_FROM_SERVER) || (moved < 2000000000 && moved > -2000000000)))
            continue;
        const char *r = json_string_value(json_object_get(e, "reason"));
        struct datapath_quarantine nq = {
            .cluster = cluster,
            .addr = a,
            .reason = (r && strcmp(r, "port_scan") == 0 ? MOAT_Q_PORT_SCAN : MOAT_Q_BRUTE_FORCE) |
                      MOAT_Q_FROM_SERVER,
            .secs = (uint32_t)(until - now.wall),
            .since_ns = (uint64_t)now.mono_ns,
            .until_ns = until_ns};
        if (ops->quarantine(node, &nq) == 0)
            changed++;
    }
    free(q);
    return changed;
}

json_t *cluster_det_running(const struct datapath_ops *ops, const struct moat_cluster *cl)
{
    const struct moat_detections *d = &cl->det;
    const struct {
        const char *name;
        bool enabled;
    } all[] = {{"brute_force", d->brute_force.c.enabled},
               {"port_scan", d->port_scan.c.enabled},
               {"dns_hijack", d->dns_hijack.c.enabled},
               {"spoofing", d->spoofing.c.enabled},
               {"threat_intel", d->threat_intel.c.enabled}};
    json_t *run = json_array(), *gaps = json_object();
    json_t *out =
        run && gaps ? json_pack("{s:o,s:o}", "detections", run, "detection_gaps", gaps) : NULL;
    if (!out) {
        json_decref(run);
        json_decref(gaps);
        return NULL;
    }
    for (size_t i = 0; cl->defense && i < sizeof(all) / sizeof(all[0]); i++) {
        if (!all[i].enabled)
            continue;
        bool partly = false;
        const char *why = ops->detection_gap ? ops->detection_gap(cl, all[i].name, &partly) : NULL;
        if ((!why || partly) && json_array_append_new(run, json_string(all[i].name)) < 0)
            goto oom;
        if (why && json_object_set_new(gaps, all[i].name, json_string(why)) < 0)
            goto oom;
    }
    return out;
oom:
    json_decref(out);
    return NULL;
}
