/*
 * policy_fetch: a cluster's policy as moat-server holds it, loaded into a
 * struct moat_policy by libmoat's loader, so that `moat explain` judges the
 * server's state with the same reference evaluator as files (see apicmd.h).
 *
 * The server's documents become the documents of a policy file: its
 * Cluster (without the derived status fields), the NetworkObjects it may use
 * (those of every cluster and its own, with their ids), its DefenseRules in
 * id order (system rules as files name them: only their switch) and the
 * Workloads its agents reported. After loading, every rule takes the id the
 * server gave it, so decisions name the rules as the API does and "equal
 * priority: the lower id wins" holds as on the nodes. Nodes are not part of
 * it: the server keeps no node addresses, so `host` has none.
 */
#include "apicmd.h"
#include "loader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define V1 "/api/v1"

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
    static const char *const keep[] = {"id",     "name",    "namespace",   "app",   "images",
                                       "labels", "cluster", "description", "cidrs", NULL};
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
    static const char *const keep[] = {"cluster", "node", "name",      "namespace", "image",
                                       "labels",  "ips",  "interface", NULL};
    return add(docs, doc_pick(w, "Workload", keep));
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

/* Gives each loaded rule the id the server holds for it (by cluster and name). */
static void take_server_ids(struct moat_policy *p, const json_t *rules)
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

/* GETs every page of the list at `base`, filtered by key=value when value is not NULL. */
static int fetch(struct api_client *c, const char *what, const char *base, const char *key,
                 const char *value, json_t **items)
{
    char path[API_PATH_MAX];
    snprintf(path, sizeof(path), "%s", base);
    if (api_query_append(path, sizeof(path), key, value) < 0) {
        fprintf(stderr, "moat: %s: cluster name too long\n", what);
        return MOAT_EXIT_INVALID;
    }
    return api_list_all(c, what, path, items);
}

static int fetch_clusters(struct api_client *c, const char *what, const char *cluster, json_t **out)
{
    if (!cluster)
        return fetch(c, what, V1 "/clusters", NULL, NULL, out);
    char path[API_PATH_MAX] = V1 "/clusters";
    json_t *doc = NULL;
    if (api_path_add(path, sizeof(path), cluster) < 0) {
        fprintf(stderr, "moat: %s: cluster name too long\n", what);
        return MOAT_EXIT_INVALID;
    }
    int rc = api_do(c, what, "GET", path, NULL, &doc);
    if (rc)
        return rc;
    *out = json_array();
    if (!*out || json_array_append_new(*out, doc) < 0) {
        json_decref(doc);
        return MOAT_EXIT_ERROR;
    }
    return MOAT_EXIT_OK;
}

/* Every rule of the clusters, one list per cluster, into `rules`. */
static int fetch_rules(struct api_client *c, const char *what, const json_t *clusters,
                       json_t *rules)
{
    size_t i;
    const json_t *cl;
    json_array_foreach(clusters, i, cl)
    {
        char path[API_PATH_MAX] = V1 "/clusters";
        json_t *items = NULL;
        if (api_path_add(path, sizeof(path), jstr_or(cl, "name")) < 0 ||
            strlen(path) + 7 > sizeof(path))
            return MOAT_EXIT_INVALID;
        strcat(path, "/rules");
        int rc = api_list_all(c, what, path, &items);
        if (!rc && json_array_extend(rules, items) < 0)
            rc = MOAT_EXIT_ERROR;
        json_decref(items);
        if (rc)
            return rc;
    }
    return MOAT_EXIT_OK;
}

/* Whether `name` is one of the clusters fetched. */
static bool in_clusters(const json_t *clusters, const char *name)
{
    for (size_t i = 0; i < json_array_size(clusters); i++)
        if (strcmp(name, jstr_or(json_array_get(clusters, i), "name")) == 0)
            return true;
    return false;
}

static int build_docs(const json_t *clusters, const json_t *objects, const json_t *rules,
                      const json_t *workloads, json_t *docs)
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
    for (size_t i = 0; !err && i < json_array_size(workloads); i++) {
        const json_t *w = json_array_get(workloads, i);
        if (in_clusters(clusters, jstr_or(w, "cluster")))
            err = add_workload(docs, w);
    }
    return err;
}

static int load(const char *what, const json_t *docs, struct moat_policy **out)
{
    char *text = json_dumps(docs, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        fprintf(stderr, "moat: out of memory\n");
        return MOAT_EXIT_ERROR;
    }
    struct moat_diags d;
    diags_init(&d);
    int err = policy_load_text(out, text, strlen(text), "server", &d);
    free(text);
    for (size_t i = 0; i < d.count; i++)
        fprintf(stderr, "moat: %s: the server's policy: %s\n", what, d.items[i].text);
    diags_clear(&d);
    if (err == -ENOMEM)
        fprintf(stderr, "moat: out of memory\n");
    /* The server only holds what the loader accepted: an error here is moat's. */
    return err ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
}

int api_fetch_policy(struct api_client *c, const char *what, const char *cluster,
                     struct moat_policy **out)
{
    json_t *clusters = NULL, *objects = NULL, *workloads = NULL;
    json_t *rules = json_array(), *docs = json_array();
    *out = NULL;
    int rc = rules && docs ? fetch_clusters(c, what, cluster, &clusters) : MOAT_EXIT_ERROR;
    if (!rc)
        rc = fetch(c, what, V1 "/objects", NULL, NULL, &objects);
    if (!rc)
        rc = fetch_rules(c, what, clusters, rules);
    if (!rc)
        rc = fetch(c, what, V1 "/workloads", "cluster", cluster, &workloads);
    if (!rc && build_docs(clusters, objects, rules, workloads, docs) < 0)
        rc = MOAT_EXIT_ERROR;
    if (!rc)
        rc = load(what, docs, out);
    if (!rc)
        take_server_ids(*out, rules);
    json_decref(clusters);
    json_decref(objects);
    json_decref(workloads);
    json_decref(rules);
    json_decref(docs);
    return rc;
}
