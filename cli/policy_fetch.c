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
 *
 * api_fetch_records() hands out the records themselves (clusters, objects,
 * rules), which `moat apply -f` and `moat delete -f` validate files against.
 */
#include "apicmd.h"
#include "loader.h"
#include "remote.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define V1 "/api/v1"

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
        if (api_path_add(path, sizeof(path),
                         json_string_value(json_object_get(cl, "name"))
                             ? json_string_value(json_object_get(cl, "name"))
                             : "") < 0 ||
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

static int load(const char *what, const json_t *docs, struct moat_policy **out)
{
    char *text = json_dumps(docs, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        fprintf(stderr, "moat: out of memory\n");
        return MOAT_EXIT_ERROR;
    }
    struct moat_diags d;
    diags_init(&d);
    /* The server's state, sized for whole clusters (doc.h), not a user's file. */
    struct policy_source src = {
        .text = text, .len = strlen(text), .name = "server", .limits = &doc_limits_server};
    int err = policy_load_sources(out, &src, 1, &d);
    free(text);
    for (size_t i = 0; i < d.count; i++)
        fprintf(stderr, "moat: %s: the server's policy: %s\n", what, d.items[i].text);
    diags_clear(&d);
    if (err == -ENOMEM)
        fprintf(stderr, "moat: out of memory\n");
    /* The server only holds what the loader accepted: an error here is moat's. */
    return err ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
}

int api_fetch_records(struct api_client *c, const char *what, const char *cluster,
                      json_t **clusters, json_t **objects, json_t **rules)
{
    *clusters = *objects = NULL;
    *rules = json_array();
    int rc = *rules ? fetch_clusters(c, what, cluster, clusters) : MOAT_EXIT_ERROR;
    if (!rc)
        rc = fetch(c, what, V1 "/objects", NULL, NULL, objects);
    if (!rc)
        rc = fetch_rules(c, what, *clusters, *rules);
    if (rc) {
        json_decref(*clusters);
        json_decref(*objects);
        json_decref(*rules);
        *clusters = *objects = *rules = NULL;
    }
    return rc;
}

int api_fetch_policy(struct api_client *c, const char *what, const char *cluster,
                     struct moat_policy **out)
{
    json_t *clusters = NULL, *objects = NULL, *rules = NULL, *workloads = NULL;
    json_t *docs = json_array();
    *out = NULL;
    int rc =
        docs ? api_fetch_records(c, what, cluster, &clusters, &objects, &rules) : MOAT_EXIT_ERROR;
    if (!rc)
        rc = fetch(c, what, V1 "/workloads", "cluster", cluster, &workloads);
    if (!rc && remote_docs(clusters, objects, rules, workloads, NULL, docs) < 0)
        rc = MOAT_EXIT_ERROR;
    if (!rc)
        rc = load(what, docs, out);
    if (!rc)
        remote_take_ids(*out, rules);
    json_decref(clusters);
    json_decref(objects);
    json_decref(workloads);
    json_decref(rules);
    json_decref(docs);
    return rc;
}
