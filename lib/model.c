/* model: configuration data and object matching (see model.h). */
#include "model.h"
#include "mem.h"
#include "pattern.h"

#include <stdlib.h>
#include <string.h>

struct moat_policy *policy_new(void)
{
    return moat_calloc(1, sizeof(struct moat_policy));
}

static const uint16_t default_auth_ports[] = {22,   23,    21,   3389,  3306, 5432,
                                              6379, 27017, 1433, 11211, 9200};

void cluster_defaults(struct moat_cluster *c)
{
    memset(c, 0, sizeof(*c));
    c->mode = MOAT_MODE_PROTECT;
    c->default_action = MOAT_ACTION_BLOCK;
    struct moat_detections *d = &c->det;
    d->brute_force.c = (struct moat_detection_common){true, MOAT_ACTION_ALERT};
    d->brute_force.threshold = 20;
    d->brute_force.window = 10;
    d->brute_force.quarantine = 600;
    d->brute_force.nports = sizeof(default_auth_ports) / sizeof(default_auth_ports[0]);
    memcpy(d->brute_force.ports, default_auth_ports, sizeof(default_auth_ports));
    d->port_scan.c = (struct moat_detection_common){true, MOAT_ACTION_ALERT};
    d->port_scan.threshold = 30;
    d->port_scan.window = 10;
    d->port_scan.quarantine = 600;
    d->dns_hijack.c = (struct moat_detection_common){true, MOAT_ACTION_ALERT};
    d->spoofing.c = (struct moat_detection_common){true, MOAT_ACTION_BLOCK};
    d->threat_intel.c = (struct moat_detection_common){true, MOAT_ACTION_ALERT};
}

void cluster_clear(struct moat_cluster *c)
{
    free(c->name);
    free(c->description);
    free(c->det.threat_intel.file);
}

void object_clear(struct moat_object *o)
{
    free(o->name);
    free(o->cluster);
    free(o->namespace);
    free(o->app);
    for (size_t i = 0; i < o->nimages; i++)
        free(o->images[i]);
    free(o->images);
    labels_free(o->labels, o->nlabels);
    labels_free(o->ns_labels, o->nns_labels);
    for (size_t i = 0; i < o->ncidrs; i++)
        free(o->cidrs[i].except);
    free(o->cidrs);
    free(o->description);
}

void rule_clear(struct moat_rule *r)
{
    free(r->cluster_ref);
    free(r->name);
    free(r->source_ref);
    for (size_t i = 0; i < r->ndests; i++)
        free(r->dests[i].object_ref);
    free(r->description);
}

void workload_clear(struct moat_workload *w)
{
    if (w->pooled)
        return;
    free(w->cluster_ref);
    free(w->node);
    free(w->name);
    free(w->namespace);
    free(w->image);
    free(w->forms);
    labels_free(w->labels, w->nlabels);
    free(w->addrs);
    free(w->interface);
    labels_free(w->ns_labels, w->nns_labels);
    free(w->source);
}

void node_clear(struct moat_node *n)
{
    free(n->name);
    free(n->cluster_ref);
    free(n->addrs);
}

void policy_free(struct moat_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nclusters; i++)
        cluster_clear(&p->clusters[i]);
    for (size_t i = 0; i < p->nobjects; i++)
        object_clear(&p->objects[i]);
    for (size_t i = 0; i < p->nrules; i++)
        rule_clear(&p->rules[i]);
    for (size_t i = 0; i < p->nworkloads; i++)
        workload_clear(&p->workloads[i]);
    for (size_t i = 0; i < p->nnodes; i++)
        node_clear(&p->nodes[i]);
    for (size_t i = 0; i < p->nfiles; i++)
        free(p->files[i]);
    free(p->files);
    for (size_t i = 0; i < p->nrejected; i++)
        free(p->rejected[i]);
    free(p->rejected);
    free(p->clusters);
    free(p->objects);
    free(p->rules);
    free(p->workloads);
    free(p->nodes);
    strpool_unref(p->pool);
    free(p);
}

uint32_t policy_find_cluster(const struct moat_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nclusters; i++)
        if (strcmp(p->clusters[i].name, name) == 0)
            return (uint32_t)i;
    return MOAT_NONE;
}

uint32_t policy_find_object(const struct moat_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nobjects; i++)
        if (strcmp(p->objects[i].name, name) == 0)
            return (uint32_t)i;
    return MOAT_NONE;
}

uint32_t policy_find_node(const struct moat_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nnodes; i++)
        if (strcmp(p->nodes[i].name, name) == 0)
            return (uint32_t)i;
    return MOAT_NONE;
}

bool object_in_cluster(const struct moat_object *o, const char *cluster)
{
    return !o->cluster || (cluster && strcmp(o->cluster, cluster) == 0);
}

/* True when every label of `want` is in `have` with the same value. */
static bool labels_all_present(const struct moat_label *want, size_t nwant,
                               const struct moat_label *have, size_t nhave)
{
    for (size_t i = 0; i < nwant; i++) {
        const char *v = labels_get(have, nhave, want[i].key);
        if (!v || strcmp(v, want[i].value) != 0)
            return false;
    }
    return true;
}

static bool images_any_match(const struct moat_object *o, const struct moat_workload *w)
{
    if (o->nimages == 0)
        return true;
    if (!w->forms)
        return false;
    for (size_t i = 0; i < o->nimages; i++)
        if (image_packed_match(w->forms, o->images[i]))
            return true;
    return false;
}

bool object_matches_workload(const struct moat_object *o, const struct moat_workload *w,
                             const char *cluster)
{
    if (!object_in_cluster(o, cluster))
        return false;
    if (o->kind == MOAT_OBJ_ANY)
        return true;
    if (o->kind != MOAT_OBJ_SELECTOR)
        return false;
    if (o->namespace && !pattern_match(o->namespace, w->namespace))
        return false;
    if (o->app) {
        const char *app = labels_get(w->labels, w->nlabels, "app");
        if (!app || !pattern_match(o->app, app))
            return false;
    }
    return images_any_match(o, w) &&
           labels_all_present(o->labels, o->nlabels, w->labels, w->nlabels) &&
           labels_all_present(o->ns_labels, o->nns_labels, w->ns_labels, w->nns_labels);
}

int cluster_resolvers(const struct moat_policy *p, uint32_t c,
                      int (*fn)(void *arg, const struct moat_addr *a), void *arg)
{
    const struct moat_detections *d = &p->clusters[c].det;
    size_t named = d->dns_hijack.nresolvers;
    int r = 0;
    for (size_t i = 0; i < named && !r; i++)
        r = fn(arg, &d->dns_hijack.resolvers[i]);
    uint32_t dns = policy_find_object(p, "cluster-dns");
    if (named || dns == MOAT_NONE)
        return r;
    for (size_t w = 0; w < p->nworkloads && !r; w++) {
        const struct moat_workload *wl = &p->workloads[w];
        if (wl->cluster != c || !object_matches_workload(&p->objects[dns], wl, p->clusters[c].name))
            continue;
        for (size_t a = 0; a < wl->naddrs && !r; a++)
            r = fn(arg, &wl->addrs[a]);
    }
    return r;
}

bool object_covers_address(const struct moat_object *o, const struct moat_addr *a)
{
    if (o->kind != MOAT_OBJ_IPBLOCK)
        return false;
    for (size_t i = 0; i < o->ncidrs; i++) {
        const struct moat_cidr *c = &o->cidrs[i];
        if (!prefix_contains(&c->prefix, a))
            continue;
        bool excepted = false;
        for (size_t j = 0; j < c->nexcept && !excepted; j++)
            excepted = prefix_contains(&c->except[j], a);
        if (!excepted)
            return true;
    }
    return false;
}

const char *action_name(enum moat_action a)
{
    switch (a) {
    case MOAT_ACTION_BLOCK:
        return "block";
    case MOAT_ACTION_ALERT:
        return "alert";
    case MOAT_ACTION_ALLOW:
        return "allow";
    }
    return "?";
}

const char *proto_name(enum moat_proto p)
{
    return p == MOAT_PROTO_TCP ? "tcp" : p == MOAT_PROTO_UDP ? "udp" : "any";
}

const char *mode_name(enum moat_mode m)
{
    return m == MOAT_MODE_MONITOR ? "monitor" : "protect";
}

const char *rule_type_name(enum moat_rule_type t)
{
    return t == MOAT_RULE_SYSTEM ? "system" : t == MOAT_RULE_SUGGESTED ? "suggested" : "custom";
}

const char *object_kind_name(enum moat_object_kind k)
{
    static const char *const names[] = {"selector", "ipblock", "any", "host"};
    return (unsigned)k < 4 ? names[k] : "?";
}
