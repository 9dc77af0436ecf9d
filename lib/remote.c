/* remote: server records into policy-file documents (see remote.h). */
#include "remote.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The string at doc[key], or "" when it is missing or not a string. */
static const char *jstr_or(const json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return s ? s : "";
}

/* A copy of `doc` with only the `keep` fields (NULL-terminated), and "kind". */
static json_t *doc_pick(const json_t *doc, const char *kind, const char *const *keep)
{
    json_t *d = json_pack("{s:s}", "kind", kind);
    for (size_t i = 0; d && keep[i]; i++) {
        json_t *v = json_object_get(doc, keep[i]);
        if (v && !json_is_null(v) && json_object_set(d, keep[i], v) < 0) {
            json_decref(d);
            d = NULL;
        }
    }
    return d;
}

static int add(json_t *docs, json_t *d)
{
    return d && json_array_append_new(docs, d) == 0 ? 0 : -ENOMEM;
}

static int add_cluster(json_t *docs, const json_t *c)
{
    static const char *const keep[] = {"name",       "defense",     "mode", "default_action",
                                       "detections", "description", NULL};
    return add(docs, doc_pick(c, "Cluster", keep));
}

static int add_object(json_t *docs, const json_t *o)
{
    static const char *const keep[] = {
        "id",      "name",        "namespace", "app", "images", "labels", "namespace_labels",
        "cluster", "description", "cidrs",     NULL};
    return add(docs, doc_pick(o, "NetworkObject", keep));
}

static int add_rule(json_t *docs, const json_t *r)
{
    static const char *const keep[] = {"cluster",      "name",        "enabled", "source",
                                       "destinations", "protocol",    "action",  "priority",
                                       "type",         "description", NULL};
    static const char *const keep_system[] = {"cluster", "name", "enabled", "description", NULL};
    bool sys = strcmp(jstr_or(r, "type"), "system") == 0;
    return add(docs, doc_pick(r, "DefenseRule", sys ? keep_system : keep));
}

static int add_workload(json_t *docs, const json_t *w)
{
    static const char *const keep[] = {"cluster", "node", "name",      "namespace",        "image",
                                       "labels",  "ips",  "interface", "namespace_labels", "source",
                                       NULL};
    return add(docs, doc_pick(w, "Workload", keep));
}

/* The keys of the label maps `field` of every object: those a selector reads. */
static json_t *selected_keys(const json_t *objects, const char *field)
{
    json_t *keys = json_object();
    size_t i;
    const json_t *o;
    json_array_foreach(objects, i, o)
    {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)json_object_get(o, field), k, v)
        {
            if (keys && json_object_set_new(keys, k, json_true()) < 0) {
                json_decref(keys);
                keys = NULL;
            }
        }
    }
    return keys;
}

/* A copy of map `labels` with only the keys in `keep` (and `also`, when not NULL). */
static json_t *labels_pick(const json_t *labels, const json_t *keep, const char *also)
{
    json_t *out = json_object();
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)labels, k, v)
    {
        bool wanted = json_object_get(keep, k) || (also && strcmp(k, also) == 0);
        if (out && wanted && json_object_set(out, k, (json_t *)v) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* A remote workload as a compact record (see remote.h). */
static int add_workload_compact(json_t *docs, const json_t *w, const json_t *label_keys,
                                const json_t *ns_keys)
{
    /* node: a Workload document names its node (SPEC 10) */
    static const char *const keep[] = {"cluster", "node", "name", "namespace",
                                       "image",   "ips",  NULL};
    json_t *d = doc_pick(w, "Workload", keep);
    if (!d)
        return -ENOMEM;
    json_t *labels = json_object_get(w, "labels"), *nsl = json_object_get(w, "namespace_labels");
    json_t *l = labels ? labels_pick(labels, label_keys, "app") : NULL;
    json_t *n = nsl ? labels_pick(nsl, ns_keys, NULL) : NULL;
    int bad = (labels && !l) || (nsl && !n) ||
              (l && json_object_size(l) && json_object_set(d, "labels", l) < 0) ||
              (n && json_object_size(n) && json_object_set(d, "namespace_labels", n) < 0);
    json_decref(l);
    json_decref(n);
    if (bad) {
        json_decref(d);
        return -ENOMEM;
    }
    return add(docs, d);
}

/* qsort: rules by id. */
static int by_id(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "id"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "id"));
    return x < y ? -1 : x > y;
}

/* Appends the rules of `list` to `docs` in id order. */
static int add_rules(json_t *docs, const json_t *list)
{
    size_t n = json_array_size(list);
    json_t **v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(list, i);
    qsort(v, n, sizeof(*v), by_id);
    int err = 0;
    for (size_t i = 0; !err && i < n; i++)
        err = add_rule(docs, v[i]);
    free(v);
    return err;
}

/* Whether `name` is one of the clusters. */
static bool in_clusters(const json_t *clusters, const char *name)
{
    for (size_t i = 0; i < json_array_size(clusters); i++)
        if (strcmp(name, jstr_or(json_array_get(clusters, i), "name")) == 0)
            return true;
    return false;
}

/* remote_docs and remote_docs_compact: `compact` keeps other nodes' workloads compact. */
static int make_docs(const json_t *clusters, const json_t *objects, const json_t *rules,
                     const json_t *workloads, const char *node, bool compact, json_t *docs)
{
    int err = 0;
    for (size_t i = 0; !err && i < json_array_size(clusters); i++)
        err = add_cluster(docs, json_array_get(clusters, i));
    for (size_t i = 0; !err && i < json_array_size(objects); i++) {
        const json_t *o = json_array_get(objects, i);
        const char *only = json_string_value(json_object_get(o, "cluster"));
        if (!only || in_clusters(clusters, only))
            err = add_object(docs, o);
    }
    if (!err)
        err = add_rules(docs, rules);
    json_t *label_keys = compact ? selected_keys(objects, "labels") : NULL;
    json_t *ns_keys = compact ? selected_keys(objects, "namespace_labels") : NULL;
    if (!err && compact && (!label_keys || !ns_keys))
        err = -ENOMEM;
    for (size_t i = 0; !err && i < json_array_size(workloads); i++) {
        const json_t *w = json_array_get(workloads, i);
        if (!in_clusters(clusters, jstr_or(w, "cluster")))
            continue;
        if (node && strcmp(jstr_or(w, "node"), node) == 0)
            continue; /* the agent describes its own from its inventory */
        err = compact ? add_workload_compact(docs, w, label_keys, ns_keys) : add_workload(docs, w);
    }
    json_decref(label_keys);
    json_decref(ns_keys);
    return err;
}

int remote_docs(const json_t *clusters, const json_t *objects, const json_t *rules,
                const json_t *workloads, const char *skip_node, json_t *docs)
{
    return make_docs(clusters, objects, rules, workloads, skip_node, false, docs);
}

int remote_docs_compact(const json_t *clusters, const json_t *objects, const json_t *rules,
                        const json_t *workloads, const char *node, json_t *docs)
{
    return make_docs(clusters, objects, rules, workloads, node, true, docs);
}

void remote_take_ids(struct moat_policy *p, const json_t *rules)
{
    size_t i;
    const json_t *r;
    json_array_foreach(rules, i, r)
    {
        for (size_t k = 0; k < p->nrules; k++) {
            struct moat_rule *m = &p->rules[k];
            if (m->name && m->cluster_ref && strcmp(m->name, jstr_or(r, "name")) == 0 &&
                strcmp(m->cluster_ref, jstr_or(r, "cluster")) == 0)
                m->id = (uint32_t)json_integer_value(json_object_get(r, "id"));
        }
    }
}
