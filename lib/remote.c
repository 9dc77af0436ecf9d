/* remote: server records into policy-file documents (see remote.h). */
#include "remote.h"
#include "loader.h"
#include "mem.h"

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

/* A remote workload as a compact record (see remote.h); NULL on OOM. */
static json_t *compact_workload_doc(const json_t *w, const json_t *label_keys,
                                    const json_t *ns_keys)
{
    /* node: a Workload document names its node (SPEC 10) */
    static const char *const keep[] = {"cluster", "node", "name", "namespace",
                                       "image",   "ips",  NULL};
    json_t *d = doc_pick(w, "Workload", keep);
    if (!d)
        return NULL;
    json_t *labels = json_object_get(w, "labels"), *nsl = json_object_get(w, "namespace_labels");
    json_t *l = json_is_object(labels) ? labels_pick(labels, label_keys, "app") : NULL;
    json_t *n = json_is_object(nsl) ? labels_pick(nsl, ns_keys, NULL) : NULL;
    /* a field that is not a map goes on as it is, for the loader to refuse by name */
    int bad = (json_is_object(labels) && !l) || (json_is_object(nsl) && !n) ||
              (l && json_object_size(l) && json_object_set(d, "labels", l) < 0) ||
              (n && json_object_size(n) && json_object_set(d, "namespace_labels", n) < 0) ||
              (labels && !json_is_object(labels) && json_object_set(d, "labels", labels) < 0) ||
              (nsl && !json_is_object(nsl) && json_object_set(d, "namespace_labels", nsl) < 0);
    json_decref(l);
    json_decref(n);
    if (bad) {
        json_decref(d);
        return NULL;
    }
    return d;
}

static int add_workload_compact(json_t *docs, const json_t *w, const json_t *label_keys,
                                const json_t *ns_keys)
{
    return add(docs, compact_workload_doc(w, label_keys, ns_keys));
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

/* Whether workload record `w` is of one of `clusters` and not of node `node` (NULL: none). */
static bool other_nodes(const json_t *clusters, const char *node, const json_t *w)
{
    /* the agent describes its own workloads from its inventory */
    return in_clusters(clusters, jstr_or(w, "cluster")) &&
           !(node && strcmp(jstr_or(w, "node"), node) == 0);
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
        if (other_nodes(clusters, node, w))
            err = compact ? add_workload_compact(docs, w, label_keys, ns_keys)
                          : add_workload(docs, w);
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

/* ---------- remote workloads straight into the model ---------- */

/* Messages of at most this many refused records are kept; the rest are counted. */
#define REMOTE_DIAGS_MAX 20

/* The length of packed forms (image.h): up to and with the empty string at the end. */
static size_t forms_len(const char *forms)
{
    const char *s = forms;
    while (*s)
        s += strlen(s) + 1;
    return (size_t)(s - forms) + 1;
}

static const char *pool_str_or_null(struct strpool *pool, const char *s, bool *oom)
{
    const char *c = s ? strpool_str(pool, s) : NULL;
    *oom = *oom || (s && !c);
    return c;
}

/* Labels with interned keys and values, the array itself interned too: label sets repeat. */
static struct moat_label *pool_labels(struct strpool *pool, const struct moat_label *l, size_t n,
                                      bool *oom)
{
    if (!n)
        return NULL;
    struct moat_label tmp[16], *v = n <= 16 ? tmp : moat_calloc(n, sizeof(*v));
    if (!v) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        v[i].key = (char *)pool_str_or_null(pool, l[i].key, oom);
        v[i].value = (char *)pool_str_or_null(pool, l[i].value, oom);
    }
    struct moat_label *out =
        *oom ? NULL : (struct moat_label *)strpool_intern(pool, v, n * sizeof(*v));
    *oom = *oom || !out;
    if (v != tmp)
        free(v);
    return out;
}

/* `w` (validated, owning its memory) as a pooled workload in *out; w is cleared. */
static int pool_workload(struct strpool *pool, struct moat_workload *w, struct moat_workload *out,
                         const char *file)
{
    bool oom = false;
    *out = (struct moat_workload){.pooled = true, .at = w->at};
    out->at.file = file;
    out->cluster_ref = (char *)pool_str_or_null(pool, w->cluster_ref, &oom);
    out->node = (char *)pool_str_or_null(pool, w->node, &oom);
    out->name = w->name ? strpool_copy(pool, w->name, strlen(w->name) + 1) : NULL;
    oom = oom || (w->name && !out->name);
    out->namespace = (char *)pool_str_or_null(pool, w->namespace, &oom);
    out->image = (char *)pool_str_or_null(pool, w->image, &oom);
    if (w->forms) {
        out->forms = (char *)strpool_intern(pool, w->forms, forms_len(w->forms));
        oom = oom || !out->forms;
    }
    out->labels = pool_labels(pool, w->labels, w->nlabels, &oom);
    out->nlabels = w->nlabels;
    out->ns_labels = pool_labels(pool, w->ns_labels, w->nns_labels, &oom);
    out->nns_labels = w->nns_labels;
    if (w->naddrs) {
        out->addrs = strpool_copy(pool, w->addrs, w->naddrs * sizeof(*w->addrs));
        oom = oom || !out->addrs;
    }
    out->naddrs = w->naddrs;
    out->interface = (char *)pool_str_or_null(pool, w->interface, &oom);
    out->source = (char *)pool_str_or_null(pool, w->source, &oom);
    workload_clear(w);
    return oom ? -ENOMEM : 0;
}

/*
 * Record `rec` (number `docno` of the answer) through the loader's checks
 * into *out, pooled in r's pool: 0, -EINVAL (messages in `mine`), -ENOMEM.
 */
static int parse_workload(struct remote_workloads *r, const json_t *rec, int docno,
                          struct moat_workload *out, struct moat_diags *mine)
{
    json_t *doc = compact_workload_doc(rec, r->label_keys, r->ns_keys);
    json_t *one = doc ? json_pack("[o]", doc) : NULL;
    if (!one)
        return -ENOMEM;
    struct doc_set *set;
    int err = doc_set_from_json(one, r->file, &set, mine);
    json_decref(one);
    struct moat_workload w;
    if (!err) {
        err = workload_from_doc(set->docs[0], r->file, docno, &w, mine);
        doc_set_free(set);
    }
    if (!err)
        err = pool_workload(r->pool, &w, out, r->file);
    return err;
}

/*
 * Record `rec` (number `docno` of the answer) through the loader's checks
 * into r: 0 (taken or refused: refused ones are counted, their messages
 * kept while few) or -ENOMEM.
 */
static int take_workload(struct remote_workloads *r, const json_t *rec, int docno,
                         struct moat_diags *d)
{
    struct moat_diags mine;
    diags_init(&mine);
    int err = moat_grow(&r->w, &r->cap, r->n + 1, sizeof(*r->w)) < 0 ||
                      moat_grow(&r->ids, &r->cap_ids, r->n + 1, sizeof(*r->ids)) < 0
                  ? -ENOMEM
                  : parse_workload(r, rec, docno, &r->w[r->n], &mine);
    if (!err)
        r->ids[r->n++] = json_integer_value(json_object_get(rec, "id"));
    if (err == -EINVAL) {
        if (r->left_out++ < REMOTE_DIAGS_MAX)
            for (size_t i = 0; i < mine.count; i++)
                diags_add(d, NULL, 0, NULL, "%s", mine.items[i].text);
        err = diags_oom(&mine) ? -ENOMEM : 0;
    }
    diags_clear(&mine);
    return err;
}

bool remote_workloads_fit(const struct remote_workloads *r, const json_t *objects)
{
    json_t *labels = selected_keys(objects, "labels");
    json_t *ns = selected_keys(objects, "namespace_labels");
    bool fit = labels && ns && json_equal(labels, r->label_keys) && json_equal(ns, r->ns_keys);
    json_decref(labels);
    json_decref(ns);
    return fit;
}

int remote_workloads_build(const json_t *clusters, const json_t *objects, const json_t *workloads,
                           const char *node, const char *name, struct remote_workloads **out,
                           struct moat_diags *d)
{
    *out = NULL;
    struct remote_workloads *r = moat_calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->label_keys = selected_keys(objects, "labels");
    r->ns_keys = selected_keys(objects, "namespace_labels");
    r->clusters = json_deep_copy(clusters);
    int err = (r->pool = strpool_new()) && r->label_keys && r->ns_keys && r->clusters ? 0 : -ENOMEM;
    r->file = err ? NULL : strpool_str(r->pool, name);
    r->node = err || !node ? NULL : strpool_str(r->pool, node);
    if (!err && (!r->file || (node && !r->node)))
        err = -ENOMEM;
    for (size_t i = 0; !err && i < json_array_size(workloads); i++) {
        const json_t *w = json_array_get(workloads, i);
        if (other_nodes(clusters, node, w))
            err = take_workload(r, w, (int)i + 1, d);
    }
    if (err) {
        remote_workloads_free(r);
        return err;
    }
    strpool_seal(r->pool); /* the table is for building only */
    if (r->n < r->cap) {   /* keep no slack: the array lives as long as the answer */
        struct moat_workload *fit = moat_reallocarray(r->w, r->n ? r->n : 1, sizeof(*r->w));
        if (fit) {
            r->w = fit;
            r->cap = r->n;
        }
        int64_t *ids = moat_reallocarray(r->ids, r->n ? r->n : 1, sizeof(*r->ids));
        if (ids) {
            r->ids = ids;
            r->cap_ids = r->n;
        }
    }
    r->pool_built = strpool_bytes(r->pool);
    if (r->left_out > REMOTE_DIAGS_MAX)
        diags_add(d, name, 0, NULL, "%zu more workloads left out", r->left_out - REMOTE_DIAGS_MAX);
    *out = r;
    return 0;
}

int remote_workloads_add(const struct remote_workloads *r, struct moat_policy *p)
{
    if (!r || !r->n)
        return 0;
    if ((p->pool && p->pool != r->pool) || r->holes)
        return -EINVAL;
    if (moat_grow(&p->workloads, &p->cap_workloads, p->nworkloads + r->n, sizeof(*r->w)) < 0)
        return -ENOMEM;
    memcpy(&p->workloads[p->nworkloads], r->w, r->n * sizeof(*r->w));
    p->nworkloads += r->n;
    if (!p->pool)
        p->pool = strpool_ref(r->pool);
    return 0;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_labels(const struct moat_label *a, size_t na, const struct moat_label *b,
                        size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!same_str(a[i].key, b[i].key) || !same_str(a[i].value, b[i].value))
            return false;
    return true;
}

static bool same_workload(const struct moat_workload *a, const struct moat_workload *b)
{
    return same_str(a->cluster_ref, b->cluster_ref) && same_str(a->node, b->node) &&
           same_str(a->name, b->name) && same_str(a->namespace, b->namespace) &&
           same_str(a->image, b->image) && same_str(a->interface, b->interface) &&
           same_str(a->source, b->source) &&
           same_labels(a->labels, a->nlabels, b->labels, b->nlabels) &&
           same_labels(a->ns_labels, a->nns_labels, b->ns_labels, b->nns_labels) &&
           a->naddrs == b->naddrs &&
           (!a->naddrs || memcmp(a->addrs, b->addrs, a->naddrs * sizeof(*a->addrs)) == 0);
}

bool remote_workloads_equal(const struct remote_workloads *a, const struct remote_workloads *b)
{
    if (!a || !b)
        return a == b;
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!same_workload(&a->w[i], &b->w[i]))
            return false;
    return true;
}

bool remote_workload_kept(const struct remote_workloads *r, const json_t *rec)
{
    return other_nodes(r->clusters, r->node, rec);
}

int remote_workload_parse(struct remote_workloads *r, const json_t *rec, struct moat_workload *out,
                          struct moat_diags *d)
{
    struct moat_diags mine;
    diags_init(&mine);
    int err = parse_workload(r, rec, 0, out, &mine);
    if (err == -EINVAL) {
        r->left_out++;
        for (size_t i = 0; i < mine.count; i++)
            diags_add(d, NULL, 0, NULL, "%s", mine.items[i].text);
        if (diags_oom(&mine))
            err = -ENOMEM;
    }
    diags_clear(&mine);
    return err;
}

void remote_workloads_compact(struct remote_workloads *r)
{
    if (!r || !r->holes)
        return;
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->ids[i] != REMOTE_HOLE) {
            r->w[n] = r->w[i];
            r->ids[n++] = r->ids[i];
        }
    r->n = n;
    r->holes = 0;
}

void remote_workloads_free(struct remote_workloads *r)
{
    if (!r)
        return;
    free(r->ids);
    json_decref(r->clusters);
    json_decref(r->label_keys);
    json_decref(r->ns_keys);
    free(r->w);
    strpool_unref(r->pool);
    free(r);
}
