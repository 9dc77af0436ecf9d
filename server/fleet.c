/* fleet: nodes and revisions in memory (see fleet.h). */
#include "fleet.h"
#include "watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fcluster;

struct fnode {
    int64_t id;
    struct fnode *hnext;         /* hash chain by id */
    struct fnode *prev, *next;   /* the cluster's nodes by heartbeat, oldest first */
    struct fnode *bprev, *bnext; /* the cluster's online-and-not-enforcing list */
    bool on_bad;
    struct fcluster *cluster;
    char name[SERVER_NAME_MAX + 1];
    time_t heartbeat; /* 0: never (offline) */
    uint64_t seen;    /* fleet.gen of the last fleet_resync that found it */
    char state[24];   /* reported: enforcing, unsupported, not_installed */
    char *reason;     /* reported */
    char version[64]; /* the agent's */
    bool outdated;
};

struct fcluster {
    struct fcluster *hnext;
    char name[SERVER_NAME_MAX + 1];
    int64_t revision;
    bool gone; /* deleted (kept for its nodes' entries until they go) */
    struct fnode *oldest, *newest;
    struct fnode *bad;
    int64_t nodes;
};

#define CLUSTER_BUCKETS 1024

struct fleet {
    pthread_mutex_t lock;
    struct fnode **nodes; /* hash by id */
    size_t nbuckets, nnodes;
    struct fcluster *clusters[CLUSTER_BUCKETS];
    uint64_t gen; /* fleet_resync's count */
};

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct fcluster *cluster_of(struct fleet *f, const char *name, bool make)
{
    struct fcluster **b = &f->clusters[str_hash(name) % CLUSTER_BUCKETS];
    for (struct fcluster *c = *b; c; c = c->hnext)
        if (strcmp(c->name, name) == 0)
            return c;
    if (!make)
        return NULL;
    struct fcluster *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->revision = 1;
    c->hnext = *b;
    *b = c;
    return c;
}

static struct fnode **node_slot(struct fleet *f, int64_t id)
{
    struct fnode **p = &f->nodes[(uint64_t)id % f->nbuckets];
    while (*p && (*p)->id != id)
        p = &(*p)->hnext;
    return p;
}

static int grow(struct fleet *f)
{
    if (f->nnodes < 2 * f->nbuckets)
        return 0;
    size_t n = f->nbuckets * 4;
    struct fnode **b = calloc(n, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < f->nbuckets; i++)
        for (struct fnode *x = f->nodes[i], *next; x; x = next) {
            next = x->hnext;
            x->hnext = b[(uint64_t)x->id % n];
            b[(uint64_t)x->id % n] = x;
        }
    free(f->nodes);
    f->nodes = b;
    f->nbuckets = n;
    return 0;
}

/* Takes x off its cluster's lists. */
static void unlink_node(struct fnode *x)
{
    struct fcluster *c = x->cluster;
    if (x->prev)
        x->prev->next = x->next;
    else
        c->oldest = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        c->newest = x->prev;
    x->prev = x->next = NULL;
    if (x->on_bad) {
        if (x->bprev)
            x->bprev->bnext = x->bnext;
        else
            c->bad = x->bnext;
        if (x->bnext)
            x->bnext->bprev = x->bprev;
        x->bprev = x->bnext = NULL;
        x->on_bad = false;
    }
    c->nodes--;
}

/* Puts x into cluster c's lists: by heartbeat (from the newest end), and the bad list. */
static void link_node(struct fcluster *c, struct fnode *x)
{
    x->cluster = c;
    struct fnode *after = c->newest;
    while (after && after->heartbeat > x->heartbeat)
        after = after->prev;
    x->prev = after;
    x->next = after ? after->next : c->oldest;
    if (x->next)
        x->next->prev = x;
    else
        c->newest = x;
    if (after)
        after->next = x;
    else
        c->oldest = x;
    if (strcmp(x->state, "enforcing") != 0 || x->outdated) {
        x->on_bad = true;
        x->bnext = c->bad;
        if (c->bad)
            c->bad->bprev = x;
        c->bad = x;
    }
    c->nodes++;
}

/* Sets node `id` from its stored document (NULL: it is gone). Under the lock. */
static int node_put(struct server *srv, int64_t id, const json_t *doc, const char *cluster)
{
    struct fleet *f = srv->fleet;
    struct fnode **slot = node_slot(f, id), *x = *slot;
    if (x)
        unlink_node(x);
    if (!doc) {
        if (x) {
            *slot = x->hnext;
            f->nnodes--;
            free(x->reason);
            free(x);
        }
        return 0;
    }
    struct fcluster *c = cluster_of(f, cluster, true);
    if (!x) {
        if (!c || grow(f) < 0 || !(x = calloc(1, sizeof(*x))))
            return -ENOMEM;
        x->id = id;
        slot = node_slot(f, id);
        x->hnext = *slot;
        *slot = x;
        f->nnodes++;
    }
    const json_t *dp = json_object_get(doc, "datapath");
    snprintf(x->name, sizeof(x->name), "%s", jstr(doc, "name"));
    snprintf(x->state, sizeof(x->state), "%s",
             *jstr(dp, "state") ? jstr(dp, "state") : "not_installed");
    free(x->reason);
    x->reason = strdup(jstr(dp, "reason"));
    time_t hb;
    x->heartbeat = time_parse(jstr(doc, "last_heartbeat"), &hb) ? hb : 0;
    snprintf(x->version, sizeof(x->version), "%s", jstr(doc, "agent_version"));
    x->outdated = node_outdated(srv, x->version);
    if (!c) { /* out of memory for its cluster: forget it rather than keep it half */
        *node_slot(f, id) = x->hnext;
        f->nnodes--;
        free(x->reason);
        free(x);
        return -ENOMEM;
    }
    link_node(c, x);
    return x->reason ? 0 : -ENOMEM;
}

void fleet_node_reload(struct server *srv, int64_t id)
{
    struct store *st = &srv->store;
    json_t *doc = NULL;
    char *cluster = NULL;
    int err = st->ops->get(st, STORE_NODE, id, &doc, &cluster);
    if (err && err != -ENOENT)
        fprintf(stderr, "moat-server: fleet: node %lld: %s\n", (long long)id, strerror(-err));
    pthread_mutex_lock(&srv->fleet->lock);
    if (!err || err == -ENOENT)
        err = node_put(srv, id, err ? NULL : doc, cluster);
    pthread_mutex_unlock(&srv->fleet->lock);
    if (err == -ENOMEM)
        fprintf(stderr, "moat-server: fleet: node %lld: out of memory\n", (long long)id);
    json_decref(doc);
    free(cluster);
}

int64_t fleet_revision(struct fleet *f, const char *cluster)
{
    pthread_mutex_lock(&f->lock);
    struct fcluster *c = cluster_of(f, cluster, false);
    int64_t rev = c ? c->revision : 1;
    pthread_mutex_unlock(&f->lock);
    return rev;
}

void fleet_revision_set(struct fleet *f, const char *cluster, int64_t revision)
{
    pthread_mutex_lock(&f->lock);
    struct fcluster *c = cluster_of(f, cluster, true);
    if (c) {
        c->revision = revision > 0 ? revision : 1;
        c->gone = revision <= 0;
    }
    pthread_mutex_unlock(&f->lock);
}

static bool offline(const struct server *srv, const struct fnode *x, time_t now)
{
    return !x->heartbeat || now - x->heartbeat > 3 * (time_t)srv->opts.heartbeat_interval;
}

struct bad_node {
    int64_t id;
    json_t *entry;
};

static int cmp_bad(const void *a, const void *b)
{
    int64_t x = ((const struct bad_node *)a)->id, y = ((const struct bad_node *)b)->id;
    return (x > y) - (x < y);
}

static json_t *bad_entry(const struct server *srv, const struct fnode *x)
{
    char reason[512];
    const char *state = node_state(srv, x->heartbeat, x->version, x->state,
                                   x->reason ? x->reason : "", reason, sizeof(reason));
    return json_pack("{s:s,s:s,s:s}", "name", x->name, "state", state, "reason", reason);
}

/*
 * The abnormal nodes of c: *total counts them all; bad[*n] (room for
 * FLEET_ABNORMAL_LISTED) holds the first of them — the offline ones silent
 * longest first, then the online ones that do not enforce — sorted by id,
 * each with its entry. Under the lock.
 */
static int collect_bad(const struct server *srv, const struct fcluster *c, struct bad_node *bad,
                       size_t *n, int64_t *total, time_t now)
{
    size_t listed = bad ? FLEET_ABNORMAL_LISTED : 0; /* none when only counts are wanted */
    *n = 0;
    *total = 0;
    for (int pass = 0; pass < 2; pass++) {
        const struct fnode *x = pass ? c->bad : c->oldest;
        for (; x && (pass || offline(srv, x, now)); x = pass ? x->bnext : x->next) {
            if (pass && offline(srv, x, now))
                continue; /* counted in the first pass */
            (*total)++;
            if (*n < listed)
                bad[(*n)++] = (struct bad_node){x->id, NULL};
        }
    }
    if (*n > 1)
        qsort(bad, *n, sizeof(*bad), cmp_bad);
    for (size_t i = 0; i < *n; i++) {
        struct fnode *const *slot = (struct fnode *const *)node_slot(srv->fleet, bad[i].id);
        if (!(bad[i].entry = bad_entry(srv, *slot)))
            return -ENOMEM;
    }
    return 0;
}

int fleet_health(struct server *srv, const char *cluster, json_t *out, int64_t *enforcing,
                 int64_t *nodes)
{
    struct fleet *f = srv->fleet;
    time_t now = time(NULL);
    pthread_mutex_lock(&f->lock);
    struct fcluster *c = cluster_of(f, cluster, false);
    int64_t total = c ? c->nodes : 0, abnormal = 0;
    struct bad_node *bad = out ? calloc(FLEET_ABNORMAL_LISTED, sizeof(*bad)) : NULL;
    size_t nbad = 0;
    int err = out && !bad ? -ENOMEM : c ? collect_bad(srv, c, bad, &nbad, &abnormal, now) : 0;
    pthread_mutex_unlock(&f->lock);
    json_t *list = err ? NULL : json_array();
    for (size_t i = 0; i < nbad; i++) {
        if (list && json_array_append_new(list, bad[i].entry) < 0) {
            json_decref(list);
            list = NULL;
        } else if (!list) {
            json_decref(bad[i].entry);
        }
    }
    free(bad);
    int64_t good = total - abnormal;
    const char *status = total == 0 ? "unknown" : good == total ? "normal" : "abnormal";
    if (enforcing)
        *enforcing = good;
    if (nodes)
        *nodes = total;
    if (!list || (out && (json_object_set_new(out, "status", json_string(status)) < 0 ||
                          json_object_set_new(out, "nodes", json_integer(total)) < 0 ||
                          json_object_set_new(out, "enforcing", json_integer(good)) < 0 ||
                          json_object_set_new(out, "abnormal", json_integer(abnormal)) < 0 ||
                          json_object_set(out, "abnormal_nodes", list) < 0)))
        err = -ENOMEM;
    json_decref(list);
    return err;
}

int64_t fleet_online(struct server *srv)
{
    struct fleet *f = srv->fleet;
    time_t now = time(NULL);
    int64_t online = 0;
    pthread_mutex_lock(&f->lock);
    for (size_t b = 0; b < CLUSTER_BUCKETS; b++)
        for (const struct fcluster *c = f->clusters[b]; c; c = c->hnext) {
            int64_t off = 0;
            for (const struct fnode *x = c->oldest; x && offline(srv, x, now); x = x->next)
                off++;
            online += c->nodes - off;
        }
    pthread_mutex_unlock(&f->lock);
    return online;
}

void fleet_revisions_print(struct fleet *f, FILE *out)
{
    pthread_mutex_lock(&f->lock);
    for (size_t b = 0; b < CLUSTER_BUCKETS; b++)
        for (const struct fcluster *c = f->clusters[b]; c; c = c->hnext)
            if (!c->gone)
                fprintf(out, "moat_cluster_revision{cluster=\"%s\"} %lld\n", c->name,
                        (long long)c->revision);
    pthread_mutex_unlock(&f->lock);
}

/*
 * The revision of every cluster in `clusters`, as [{cluster, revision}]: a
 * revision record's doc does not name its cluster (the store keeps that
 * beside it), so each is looked up by cluster (revision_get: 1 when none).
 */
static int revisions_of(struct server *srv, const json_t *clusters, json_t **out)
{
    json_t *revs = json_array();
    int err = revs ? 0 : -ENOMEM;
    for (size_t i = 0; !err && i < json_array_size(clusters); i++) {
        const char *name = jstr(json_array_get(clusters, i), "name");
        int64_t rev = 1;
        err = revision_get(srv, name, &rev);
        if (!err && json_array_append_new(revs, json_pack("{s:s,s:I}", "cluster", name, "revision",
                                                          (json_int_t)rev)) < 0)
            err = -ENOMEM;
    }
    if (err)
        json_decref(revs);
    else
        *out = revs;
    return err;
}

static int load_all(struct server *srv)
{
    struct store *st = &srv->store;
    struct store_query q = {.limit = -1};
    json_t *items = NULL, *revs = NULL, *clusters = NULL;
    int64_t total;
    int err = st->ops->list(st, STORE_CLUSTER, &q, &clusters, &total);
    for (size_t i = 0; !err && i < json_array_size(clusters); i++)
        if (!cluster_of(srv->fleet, jstr(json_array_get(clusters, i), "name"), true))
            err = -ENOMEM;
    if (!err)
        err = st->ops->list(st, STORE_NODE, &q, &items, &total);
    for (size_t i = 0; !err && i < json_array_size(items); i++) {
        const json_t *n = json_array_get(items, i);
        err = node_put(srv, json_integer_value(json_object_get(n, "id")), n, jstr(n, "cluster"));
    }
    if (!err)
        err = revisions_of(srv, clusters, &revs);
    for (size_t i = 0; !err && i < json_array_size(revs); i++) {
        const json_t *r = json_array_get(revs, i);
        struct fcluster *c = cluster_of(srv->fleet, jstr(r, "cluster"), true);
        if (!c)
            err = -ENOMEM;
        else
            c->revision = json_integer_value(json_object_get(r, "revision"));
    }
    json_decref(items);
    json_decref(revs);
    json_decref(clusters);
    return err;
}

/* Under the lock: every listed node put, and the nodes not listed forgotten. */
static int resync_nodes(struct server *srv, const json_t *nodes)
{
    struct fleet *f = srv->fleet;
    uint64_t gen = ++f->gen;
    int err = 0;
    for (size_t i = 0; !err && i < json_array_size(nodes); i++) {
        const json_t *n = json_array_get(nodes, i);
        int64_t id = json_integer_value(json_object_get(n, "id"));
        err = node_put(srv, id, n, jstr(n, "cluster"));
        if (!err && *node_slot(f, id))
            (*node_slot(f, id))->seen = gen;
    }
    for (size_t b = 0; !err && b < f->nbuckets; b++)
        for (struct fnode *x = f->nodes[b], *next; x; x = next) {
            next = x->hnext;
            if (x->seen != gen)
                node_put(srv, x->id, NULL, NULL);
        }
    return err;
}

/* Whether `name` is a cluster of the list. */
static bool cluster_listed(const json_t *clusters, const char *name)
{
    for (size_t i = 0; i < json_array_size(clusters); i++)
        if (strcmp(jstr(json_array_get(clusters, i), "name"), name) == 0)
            return true;
    return false;
}

int fleet_resync(struct server *srv)
{
    struct store *st = &srv->store;
    struct fleet *f = srv->fleet;
    struct store_query q = {.limit = -1};
    json_t *nodes = NULL, *revs = NULL, *clusters = NULL;
    int64_t total;
    int err = st->ops->read_begin(st);
    if (err)
        return err;
    err = st->ops->list(st, STORE_CLUSTER, &q, &clusters, &total);
    if (!err)
        err = st->ops->list(st, STORE_NODE, &q, &nodes, &total);
    if (!err)
        err = revisions_of(srv, clusters, &revs);
    st->ops->read_end(st);
    json_t *gone = json_array();
    if (!err && !gone)
        err = -ENOMEM;
    pthread_mutex_lock(&f->lock);
    if (!err)
        err = resync_nodes(srv, nodes);
    for (size_t i = 0; !err && i < json_array_size(revs); i++) {
        const json_t *r = json_array_get(revs, i);
        struct fcluster *c = cluster_of(f, jstr(r, "cluster"), true);
        if (!c) {
            err = -ENOMEM;
        } else {
            c->revision = json_integer_value(json_object_get(r, "revision"));
            c->gone = false;
        }
    }
    for (size_t b = 0; !err && b < CLUSTER_BUCKETS; b++)
        for (struct fcluster *c = f->clusters[b]; c; c = c->hnext)
            if (!c->gone && !cluster_listed(clusters, c->name)) {
                c->gone = true;
                c->revision = 1;
                if (json_array_append_new(gone, json_string(c->name)) < 0)
                    err = -ENOMEM;
            }
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < json_array_size(gone); i++)
        agents_cache_forget(srv, json_string_value(json_array_get(gone, i)));
    for (size_t i = 0; i < json_array_size(clusters); i++) /* they look again */
        watch_wake(srv->watch, jstr(json_array_get(clusters, i), "name"));
    for (size_t i = 0; i < json_array_size(gone); i++)
        watch_wake(srv->watch, json_string_value(json_array_get(gone, i)));
    json_decref(gone);
    json_decref(nodes);
    json_decref(revs);
    json_decref(clusters);
    return err;
}

int fleet_load(struct server *srv)
{
    struct fleet *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->nbuckets = 1024;
    f->nodes = calloc(f->nbuckets, sizeof(*f->nodes));
    if (!f->nodes || pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f->nodes);
        free(f);
        return -ENOMEM;
    }
    srv->fleet = f;
    int err = load_all(srv);
    if (err) {
        fleet_free(f);
        srv->fleet = NULL;
    }
    return err;
}

void fleet_free(struct fleet *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nbuckets; i++)
        for (struct fnode *x = f->nodes[i], *next; x; x = next) {
            next = x->hnext;
            free(x->reason);
            free(x);
        }
    for (size_t b = 0; b < CLUSTER_BUCKETS; b++)
        for (struct fcluster *c = f->clusters[b], *next; c; c = next) {
            next = c->hnext;
            free(c);
        }
    free(f->nodes);
    pthread_mutex_destroy(&f->lock);
    free(f);
}
