/* remote_live: remote workloads changed in place (see remote_live.h). */
#include "remote_live.h"
#include "addr.h"
#include "mem.h"
#include "strpool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An index from record id to slot: open addressing, linear probing. */
struct remote_live {
    struct remote_workloads *r;
    struct moat_policy *p;
    struct moat_tables *t;
    size_t base;   /* p->workloads[base + j] is r->w[j] */
    uint32_t dns;  /* the cluster-dns object, or MOAT_NONE */
    int64_t *keys; /* REMOTE_HOLE: empty */
    uint32_t *vals;
    size_t cap, used;
    uint32_t *free_slots; /* holes to fill first */
    size_t nfree, cap_free;
};

static int fail(char *why, size_t wn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, wn, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static size_t slot_of(const struct remote_live *l, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & (l->cap - 1);
}

static int index_grow(struct remote_live *l);

static int index_put(struct remote_live *l, int64_t id, uint32_t j)
{
    if ((l->used + 1) * 2 > l->cap && index_grow(l) < 0)
        return -ENOMEM;
    size_t i = slot_of(l, id);
    while (l->keys[i] != REMOTE_HOLE && l->keys[i] != id)
        i = (i + 1) & (l->cap - 1);
    if (l->keys[i] == REMOTE_HOLE)
        l->used++;
    l->keys[i] = id;
    l->vals[i] = j;
    return 0;
}

static int index_grow(struct remote_live *l)
{
    size_t cap = l->cap ? l->cap * 2 : 64;
    int64_t *keys = moat_calloc(cap, sizeof(*keys));
    uint32_t *vals = moat_calloc(cap, sizeof(*vals));
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -ENOMEM;
    }
    for (size_t i = 0; i < cap; i++)
        keys[i] = REMOTE_HOLE;
    int64_t *ok = l->keys;
    uint32_t *ov = l->vals;
    size_t ocap = l->cap;
    l->keys = keys;
    l->vals = vals;
    l->cap = cap;
    l->used = 0;
    for (size_t i = 0; i < ocap; i++)
        if (ok[i] != REMOTE_HOLE)
            index_put(l, ok[i], ov[i]); /* room: no allocation */
    free(ok);
    free(ov);
    return 0;
}

/* The slot of record `id`, or -1. */
static long index_get(const struct remote_live *l, int64_t id)
{
    if (!l->cap)
        return -1;
    for (size_t i = slot_of(l, id); l->keys[i] != REMOTE_HOLE; i = (i + 1) & (l->cap - 1))
        if (l->keys[i] == id)
            return (long)l->vals[i];
    return -1;
}

/* Removes `id` (present), shifting back the entries its probe chain carried. */
static void index_del(struct remote_live *l, int64_t id)
{
    size_t i = slot_of(l, id);
    while (l->keys[i] != id)
        i = (i + 1) & (l->cap - 1);
    l->keys[i] = REMOTE_HOLE;
    l->used--;
    for (size_t j = (i + 1) & (l->cap - 1); l->keys[j] != REMOTE_HOLE; j = (j + 1) & (l->cap - 1)) {
        int64_t k = l->keys[j];
        uint32_t v = l->vals[j];
        l->keys[j] = REMOTE_HOLE;
        l->used--;
        index_put(l, k, v); /* room: no allocation */
    }
}

int remote_live_new(struct remote_workloads *r, struct moat_policy *p, struct moat_tables *t,
                    struct remote_live **out)
{
    *out = NULL;
    if (p->nworkloads < r->n || r->n > UINT32_MAX)
        return -EINVAL;
    size_t base = p->nworkloads - r->n;
    for (size_t j = 0; j < r->n; j++)
        if (p->workloads[base + j].name != r->w[j].name ||
            p->workloads[base + j].addrs != r->w[j].addrs)
            return -EINVAL;
    struct remote_live *l = moat_calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    *l = (struct remote_live){.r = r, .p = p, .t = t, .base = base};
    l->dns = policy_find_object(p, "cluster-dns");
    int err = index_grow(l);
    for (size_t j = 0; j < r->n && !err; j++) {
        if (r->ids[j] != REMOTE_HOLE)
            err = index_put(l, r->ids[j], (uint32_t)j);
        else if (moat_grow(&l->free_slots, &l->cap_free, l->nfree + 1, sizeof(uint32_t)) < 0)
            err = -ENOMEM;
        else
            l->free_slots[l->nfree++] = (uint32_t)j;
    }
    if (err) {
        remote_live_free(l);
        return err;
    }
    *out = l;
    return 0;
}

void remote_live_free(struct remote_live *l)
{
    if (!l)
        return;
    free(l->keys);
    free(l->vals);
    free(l->free_slots);
    free(l);
}

void remote_change_clear(struct remote_change *c)
{
    free(c->addrs);
    memset(c, 0, sizeof(*c));
}

size_t remote_live_pool_growth(const struct remote_live *l)
{
    size_t now = strpool_bytes(l->r->pool);
    return now > l->r->pool_built ? now - l->r->pool_built : 0;
}

static int touch(struct remote_change *c, const struct moat_workload *w)
{
    if (moat_grow(&c->addrs, &c->cap, c->naddrs + w->naddrs, sizeof(*c->addrs)) < 0)
        return -ENOMEM;
    memcpy(c->addrs + c->naddrs, w->addrs, w->naddrs * sizeof(*w->addrs));
    c->naddrs += w->naddrs;
    return 0;
}

/* Whether `w` is an approved DNS resolver of its cluster (model.h: cluster_resolvers). */
static bool is_resolver(const struct remote_live *l, const struct moat_workload *w)
{
    const struct moat_policy *p = l->p;
    if (!w->naddrs || l->dns == MOAT_NONE || w->cluster >= p->nclusters ||
        p->clusters[w->cluster].det.dns_hijack.nresolvers)
        return false;
    return object_matches_workload(&p->objects[l->dns], w, p->clusters[w->cluster].name);
}

static int remove_slot(struct remote_live *l, uint32_t j, struct remote_change *c)
{
    struct moat_workload *w = &l->r->w[j];
    c->resolvers = c->resolvers || is_resolver(l, w);
    if (touch(c, w) < 0 ||
        moat_grow(&l->free_slots, &l->cap_free, l->nfree + 1, sizeof(uint32_t)) < 0)
        return -ENOMEM;
    index_del(l, l->r->ids[j]);
    l->r->ids[j] = REMOTE_HOLE;
    l->r->holes++;
    l->free_slots[l->nfree++] = j;
    w->addrs = NULL;
    w->naddrs = 0;
    l->p->workloads[l->base + j] = *w;
    c->removed++;
    return tables_update_workload(l->t, (uint32_t)(l->base + j));
}

/* A slot for a new record: a hole, or one more at the end of r and p. */
static int new_slot(struct remote_live *l, uint32_t *j, char *why, size_t wn)
{
    struct remote_workloads *r = l->r;
    struct moat_policy *p = l->p;
    if (l->nfree) {
        *j = l->free_slots[--l->nfree];
        r->holes--;
        return 0;
    }
    if (p->nworkloads != l->base + r->n || r->n >= UINT32_MAX)
        return fail(why, wn, "the policy's workloads do not end with the remote ones");
    if (moat_grow(&r->w, &r->cap, r->n + 1, sizeof(*r->w)) < 0 ||
        moat_grow(&r->ids, &r->cap_ids, r->n + 1, sizeof(*r->ids)) < 0 ||
        moat_grow(&p->workloads, &p->cap_workloads, p->nworkloads + 1, sizeof(*p->workloads)) < 0)
        return -ENOMEM;
    *j = (uint32_t)r->n;
    r->w[r->n] = (struct moat_workload){0};
    r->ids[r->n++] = REMOTE_HOLE;
    p->workloads[p->nworkloads++] = (struct moat_workload){0};
    return 0;
}

static bool has_addr(const struct moat_workload *w, const struct moat_addr *a)
{
    for (size_t i = 0; i < w->naddrs; i++)
        if (addr_cmp(&w->addrs[i], a) == 0)
            return true;
    return false;
}

/* An address of `w` another workload (not `was`) or a node has in the tables. */
static const struct moat_addr *taken_addr(const struct remote_live *l,
                                          const struct moat_workload *w,
                                          const struct moat_workload *was)
{
    for (size_t i = 0; i < w->naddrs; i++) {
        struct moat_ident_info info = tables_identity(l->t, tables_identity_of(l->t, &w->addrs[i]));
        bool exact = info.kind == MOAT_IDENT_WORKLOAD || info.kind == MOAT_IDENT_HOST;
        if (exact && !(was && has_addr(was, &w->addrs[i])))
            return &w->addrs[i];
        for (size_t k = 0; k < i; k++)
            if (addr_cmp(&w->addrs[k], &w->addrs[i]) == 0)
                return &w->addrs[i];
    }
    return NULL;
}

static int set_record(struct remote_live *l, const json_t *rec, size_t i, struct remote_change *c,
                      struct moat_diags *d, char *why, size_t wn)
{
    const json_t *idv = json_object_get(rec, "id");
    if (!json_is_integer(idv) || json_integer_value(idv) == REMOTE_HOLE)
        return fail(why, wn, "workloads.set[%zu]: no integer id", i);
    int64_t id = json_integer_value(idv);
    long at = index_get(l, id);
    if (!remote_workload_kept(l->r, rec))
        return at < 0 ? 0 : remove_slot(l, (uint32_t)at, c);
    struct moat_workload w;
    int err = remote_workload_parse(l->r, rec, &w, d);
    if (err == -EINVAL) {
        c->left_out++;
        return at < 0 ? 0 : remove_slot(l, (uint32_t)at, c);
    }
    if (err)
        return err;
    w.cluster = policy_find_cluster(l->p, w.cluster_ref);
    if (w.cluster == MOAT_NONE)
        return fail(why, wn, "workload %s: cluster %s is not in the policy", w.name, w.cluster_ref);
    const struct moat_workload *was = at < 0 ? NULL : &l->r->w[at];
    const struct moat_addr *dup = taken_addr(l, &w, was);
    if (dup) {
        char buf[MOAT_ADDR_STRLEN];
        addr_format(dup, buf, sizeof(buf));
        return fail(why, wn, "workload %s: address %s is taken", w.name, buf);
    }
    c->resolvers = c->resolvers || is_resolver(l, &w) || (was && is_resolver(l, was));
    if (was && touch(c, was) < 0)
        return -ENOMEM;
    uint32_t j = 0;
    if (at >= 0)
        j = (uint32_t)at;
    else if ((err = new_slot(l, &j, why, wn)) < 0)
        return err;
    if (touch(c, &w) < 0 || index_put(l, id, j) < 0)
        return -ENOMEM;
    l->r->w[j] = w;
    l->r->ids[j] = id;
    l->p->workloads[l->base + j] = w;
    c->set++;
    return tables_update_workload(l->t, (uint32_t)(l->base + j));
}

int remote_live_apply(struct remote_live *l, const json_t *chg, struct remote_change *out,
                      struct moat_diags *d, char *why, size_t wn)
{
    memset(out, 0, sizeof(*out));
    out->first_new = (uint32_t)tables_identity_count(l->t);
    const json_t *set = json_object_get(chg, "set"), *removed = json_object_get(chg, "removed");
    if (chg && (!json_is_object(chg) || (set && !json_is_array(set)) ||
                (removed && !json_is_array(removed))))
        return fail(why, wn, "workloads: must be {\"set\": [...], \"removed\": [...]}");
    int err = 0;
    for (size_t i = 0; i < json_array_size(removed) && !err; i++) {
        const json_t *id = json_array_get(removed, i);
        if (!json_is_integer(id))
            return fail(why, wn, "workloads.removed[%zu]: not an integer id", i);
        long at = index_get(l, json_integer_value(id));
        if (at >= 0) /* else not one kept here: this node's, or another cluster's */
            err = remove_slot(l, (uint32_t)at, out);
    }
    for (size_t i = 0; i < json_array_size(set) && !err; i++)
        err = set_record(l, json_array_get(set, i), i, out, d, why, wn);
    strpool_seal(l->r->pool);
    return err;
}
