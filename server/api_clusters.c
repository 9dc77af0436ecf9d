/*
 * api_clusters: /api/v1/clusters — clusters (SPEC §4): create, list, get,
 * replace, change (merge patch: defense, mode, default_action, detections),
 * delete, and the defense switch of many clusters at once (POST
 * /clusters/batch, all or none). A cluster's id is its name. GET adds the derived `status`
 * (normal/abnormal/unknown), `nodes`, `enforcing` and `abnormal_nodes`. Creating a cluster also
 * creates its two system rules (SPEC §3); deleting it deletes its rules, and is refused (409) while
 * objects are restricted to it.
 */
#include "audit.h"
#include "server.h"
#include "validate.h"
#include "writer.h"

#include "canon.h"
#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define BATCH_MAX 1000

static const char *const filters[] = {"name", "defense", "mode", "default_action", NULL};

/* A stored cluster as the API shows it: its id is its name. */
static int show(json_t *doc)
{
    json_t *name = json_object_get(doc, "name");
    return json_object_set(doc, "id", name ? name : json_null()) < 0 ? -ENOMEM : 0;
}

int api_clusters_list(struct req *rq, struct resp *rs)
{
    static const char *const on_off[] = {"on", "off", NULL};
    static const char *const modes[] = {"protect", "monitor", NULL};
    static const char *const actions[] = {"block", "alert", "allow", NULL};
    static const struct query_enum enums[] = {
        {"defense", on_off}, {"mode", modes}, {"default_action", actions}, {NULL, NULL}};
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, filters, true, &q);
    if (!rc)
        rc = req_query_enums(rq, rs, enums);
    if (rc)
        return rc < 0 ? rc : 0;
    json_t *items;
    int64_t total;
    int err = rq->srv->store.ops->list(&rq->srv->store, STORE_CLUSTER, &q, &items, &total);
    if (err)
        return err;
    for (size_t i = 0; !err && i < json_array_size(items); i++) {
        json_t *doc = json_array_get(items, i);
        err = show(doc) < 0 ? -ENOMEM : cluster_health(rq->srv, jstr(doc, "name"), doc);
    }
    if (err) {
        json_decref(items);
        return err;
    }
    return resp_json(rs, 200, list_body(items, total));
}

/* The stored document (with "id") and row id of the cluster named in the path. */
static int load(struct req *rq, struct resp *rs, json_t **doc, int64_t *id)
{
    struct store *st = &rq->srv->store;
    *doc = NULL;
    int err = st->ops->find(st, STORE_CLUSTER, NULL, rq->params[0], id);
    if (!err)
        err = st->ops->get(st, STORE_CLUSTER, *id, doc, NULL);
    if (err == -ENOENT)
        return resp_error(rs, 404, "", "no cluster \"%s\"", rq->params[0]) < 0 ? -ENOMEM : 1;
    return err;
}

int api_clusters_get(struct req *rq, struct resp *rs)
{
    json_t *doc;
    int64_t id;
    int rc = load(rq, rs, &doc, &id);
    if (rc)
        return rc < 0 ? rc : 0;
    int err = show(doc) < 0 ? -ENOMEM : cluster_health(rq->srv, rq->params[0], doc);
    if (err) {
        json_decref(doc);
        return err;
    }
    return resp_json(rs, 200, doc);
}

static json_t *system_rule(const char *cluster, bool dns)
{
    if (dns)
        return json_pack("{s:s,s:s,s:b,s:s,s:[{s:s,s:[s]}],s:s,s:s,s:i,s:s,s:s}", "cluster",
                         cluster, "name", MOAT_SYSRULE_DNS, "enabled", 1, "source", "any",
                         "destinations", "object", "cluster-dns", "ports", "53/53", "protocol",
                         "any", "action", "allow", "priority", 1000, "type", "system",
                         "description", "DNS queries to the cluster's resolver");
    return json_pack("{s:s,s:s,s:b,s:s,s:[{s:s}],s:s,s:s,s:i,s:s,s:s}", "cluster", cluster, "name",
                     MOAT_SYSRULE_HOST, "enabled", 1, "source", "host", "destinations", "object",
                     "any", "protocol", "any", "action", "allow", "priority", 1000, "type",
                     "system", "description", "health checks from the node");
}

int cluster_add_system_rules(struct store *st, const char *cluster)
{
    for (int dns = 0; dns < 2; dns++) {
        json_t *doc = system_rule(cluster, dns);
        int64_t id;
        int err =
            doc ? st->ops->insert(st, STORE_RULE, cluster, jstr(doc, "name"), doc, &id) : -ENOMEM;
        json_decref(doc);
        if (err)
            return err;
    }
    return 0;
}

/* Settles cluster document `doc` from the loaded policy p (lib/canon.h). */
static int settle(json_t *doc, const struct moat_policy *p)
{
    struct canon *c;
    int err = canon_new(p, &c);
    if (!err)
        err = canon_cluster(c, doc);
    canon_free(c);
    return err;
}

/*
 * Validates `doc` as the new version of cluster `id` (0 = new; `before` its
 * stored document) and stores it.
 */
static int save(struct req *rq, struct resp *rs, json_t *doc, int64_t id, const json_t *before)
{
    struct store *st = &rq->srv->store;
    struct change ch = {.kind = STORE_CLUSTER, .id = id, .doc = doc, .name = jstr(doc, "name")};
    struct moat_policy *p = NULL;
    int rc = validate_change(rq->srv, &ch, 400, rs, &p);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = settle(doc, p);
    policy_free(p);
    int64_t newid = id;
    if (!rc && id)
        rc = st->ops->update(st, STORE_CLUSTER, id, jstr(doc, "name"), doc);
    else if (!rc)
        rc = st->ops->insert(st, STORE_CLUSTER, NULL, jstr(doc, "name"), doc, &newid);
    if (!rc && !id)
        rc = cluster_add_system_rules(st, jstr(doc, "name"));
    if (!rc && !id)
        effects_bump(&rq->fx, jstr(doc, "name"), 1); /* a new cluster starts at revision 1 */
    if (!rc)
        rc = audit_record(rq, id ? "update" : "create", "cluster", jstr(doc, "name"),
                          jstr(doc, "name"), newid, before, doc);
    if (!rc)
        rc = show(doc);
    if (!rc)
        rc = resp_json(rs, id ? 200 : 201, json_incref(doc));
    return resp_store_error(rs, rc, "cluster");
}

static int create(struct req *rq, struct resp *rs, json_t *doc)
{
    int64_t id;
    const char *name = json_string_value(json_object_get(doc, "name"));
    int err =
        name ? rq->srv->store.ops->find(&rq->srv->store, STORE_CLUSTER, NULL, name, &id) : -ENOENT;
    if (!err)
        return resp_error(rs, 409, "name", "cluster \"%s\" exists", name);
    if (err != -ENOENT)
        return err;
    return save(rq, rs, doc, 0, NULL);
}

/* POST: the body is a new document (the write_doc signature; `patch` is unused). */
static int create_doc(struct req *rq, struct resp *rs, json_t *doc, bool patch)
{
    (void)patch;
    return create(rq, rs, doc);
}

int api_clusters_create(struct req *rq, struct resp *rs)
{
    return write_doc(rq, rs, "Cluster", create_doc, false);
}

/* PUT and PATCH: `doc` is the new document; its name must be the path's. */
static int change(struct req *rq, struct resp *rs, json_t *body, bool patch)
{
    json_t *doc;
    int64_t id;
    int rc = load(rq, rs, &doc, &id);
    if (rc)
        return rc < 0 ? rc : 0;
    json_object_del(doc, "id");
    json_t *before = json_deep_copy(doc);
    rc = before ? doc_apply_body(&doc, body, patch) : -ENOMEM;
    const json_t *name = json_object_get(doc, "name");
    if (!rc && !name)
        rc = json_object_set_new(doc, "name", json_string(rq->params[0])) < 0 ? -ENOMEM : 0;
    else if (!rc && (!json_is_string(name) || strcmp(json_string_value(name), rq->params[0])))
        rc = resp_error(rs, 400, "name", "a cluster cannot be renamed") < 0 ? -ENOMEM : 1;
    if (!rc)
        rc = save(rq, rs, doc, id, before);
    json_decref(doc);
    json_decref(before);
    return rc < 0 ? rc : 0;
}

static int put_or_patch(struct req *rq, struct resp *rs, bool patch)
{
    return write_doc(rq, rs, "Cluster", change, patch);
}

int api_clusters_replace(struct req *rq, struct resp *rs)
{
    return put_or_patch(rq, rs, false);
}

int api_clusters_patch(struct req *rq, struct resp *rs)
{
    return put_or_patch(rq, rs, true);
}

/* Notes every node of the cluster for the fleet's index (they go with it). */
static int note_nodes(struct req *rq)
{
    struct store_query q = {.cluster = rq->params[0], .limit = -1};
    json_t *nodes = NULL;
    int64_t total;
    int err = rq->srv->store.ops->list(&rq->srv->store, STORE_NODE, &q, &nodes, &total);
    for (size_t i = 0; !err && i < json_array_size(nodes); i++)
        effects_node(&rq->fx, json_integer_value(json_object_get(json_array_get(nodes, i), "id")));
    json_decref(nodes);
    return err;
}

static int remove_cluster(struct req *rq, struct resp *rs)
{
    json_t *doc;
    int64_t id;
    int rc = load(rq, rs, &doc, &id);
    if (rc)
        return rc < 0 ? rc : 0;
    struct change ch = {.kind = STORE_CLUSTER, .id = id, .name = rq->params[0]};
    rc = validate_change(rq->srv, &ch, 409, rs, NULL);
    if (!rc)
        rc = note_nodes(rq);
    if (!rc)
        rc = rq->srv->store.ops->remove(&rq->srv->store, STORE_CLUSTER, id);
    if (!rc)
        rc = audit_record(rq, "delete", "cluster", rq->params[0], rq->params[0], id, doc, NULL);
    json_decref(doc);
    if (rc)
        return rc < 0 ? resp_store_error(rs, rc, "cluster") : 0;
    effects_bump(&rq->fx, rq->params[0], 0); /* a cluster made again starts at revision 1 */
    rq->fx.revoked = true;                   /* its nodes' credentials went with it */
    rs->status = 204;
    return 0;
}

int api_clusters_delete(struct req *rq, struct resp *rs)
{
    int err = txn_begin(rq);
    if (!err)
        err = txn_end(rq, remove_cluster(rq, rs), rs);
    return err;
}

/* A response was set: 1, or the error that kept it from being set. */
static int stop(int err)
{
    return err < 0 ? err : 1;
}

/*
 * The batch body {"defense": "on"|"off", "clusters": [1..BATCH_MAX distinct
 * ids]} or {"defense": ..., "all": true}: 0 with *defense and *ids (NULL for
 * all), or 1 with 400 set (or -ENOMEM).
 */
static int batch_body(struct resp *rs, const json_t *body, const char **defense, const json_t **ids)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "defense") != 0 && strcmp(key, "clusters") != 0 && strcmp(key, "all") != 0)
            return stop(resp_error(rs, 400, key, "unknown field"));
    }
    *defense = json_string_value(json_object_get(body, "defense"));
    if (!*defense || (strcmp(*defense, "on") != 0 && strcmp(*defense, "off") != 0))
        return stop(resp_error(rs, 400, "defense", "required: \"on\" or \"off\""));
    const json_t *all = json_object_get(body, "all");
    *ids = json_object_get(body, "clusters");
    if (all && !json_is_true(all))
        return stop(resp_error(rs, 400, "all", "must be true (or left out)"));
    if (all && *ids)
        return stop(resp_error(rs, 400, "all", "give either \"clusters\" or \"all\", not both"));
    if (all)
        return 0;
    size_t n = json_array_size(*ids);
    if (!json_is_array(*ids) || n < 1 || n > BATCH_MAX)
        return stop(resp_error(rs, 400, "clusters",
                               "required: a list of 1-%d cluster ids, or \"all\": true",
                               BATCH_MAX));
    for (size_t i = 0; i < n; i++) {
        char field[32];
        snprintf(field, sizeof(field), "clusters[%zu]", i);
        v = json_array_get(*ids, i);
        if (!json_is_string(v))
            return stop(resp_error(rs, 400, field, "must be a cluster id (a string)"));
        for (size_t k = 0; k < i; k++)
            if (strcmp(json_string_value(json_array_get(*ids, k)), json_string_value(v)) == 0)
                return stop(resp_error(rs, 400, field, "repeats clusters[%zu]", k));
    }
    return 0;
}

/*
 * The stored documents (with "id" = row id) of clusters `ids`, or of every
 * cluster when `ids` is NULL, into *docs: 0, 1 with a 404 naming every
 * unknown cluster, or an error.
 */
static int batch_load(struct req *rq, struct resp *rs, const json_t *ids, json_t **docs)
{
    struct store *st = &rq->srv->store;
    if (!ids) {
        struct store_query q = {.limit = -1};
        int64_t total;
        return st->ops->list(st, STORE_CLUSTER, &q, docs, &total);
    }
    json_t *errs = json_array();
    *docs = json_array();
    int err = errs && *docs ? 0 : -ENOMEM;
    for (size_t i = 0; !err && i < json_array_size(ids); i++) {
        const char *name = json_string_value(json_array_get(ids, i));
        json_t *doc = NULL;
        int64_t id;
        err = st->ops->find(st, STORE_CLUSTER, NULL, name, &id);
        if (!err)
            err = st->ops->get(st, STORE_CLUSTER, id, &doc, NULL);
        if (!err) {
            err = json_array_append_new(*docs, doc) < 0 ? -ENOMEM : 0;
        } else if (err == -ENOENT) {
            char field[32];
            snprintf(field, sizeof(field), "clusters[%zu]", i);
            err = json_array_append_new(errs, json_pack("{s:s,s:s++}", "field", field, "message",
                                                        "no cluster \"", name, "\"")) < 0
                      ? -ENOMEM
                      : 0;
        }
    }
    if (!err && json_array_size(errs) > 0)
        return stop(resp_json(rs, 404, json_pack("{s:o}", "errors", errs)));
    json_decref(errs);
    return err;
}

/* Sets the defense of every listed cluster (or all) or of none, moving each one's revision. */
static int batch(struct req *rq, struct resp *rs, const char *defense, const json_t *ids)
{
    struct store *st = &rq->srv->store;
    json_t *docs = NULL, *befores = json_array();
    int rc = befores ? batch_load(rq, rs, ids, &docs) : -ENOMEM;
    size_t n = json_array_size(docs);
    struct change *ch = rc ? NULL : calloc(n ? n : 1, sizeof(*ch));
    if (!rc && !ch)
        rc = -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *doc = json_array_get(docs, i);
        int64_t id = json_integer_value(json_object_get(doc, "id"));
        json_object_del(doc, "id");
        rc = json_array_append_new(befores, json_deep_copy(doc)) < 0 ? -ENOMEM : 0;
        if (!rc)
            rc = json_object_set_new(doc, "defense", json_string(defense)) < 0 ? -ENOMEM : 0;
        ch[i] =
            (struct change){.kind = STORE_CLUSTER, .id = id, .doc = doc, .name = jstr(doc, "name")};
    }
    if (!rc) /* the state with every switch set */
        rc = validate_changes(rq->srv, ch, n, false, 400, rs, NULL);
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *doc = json_array_get(docs, i);
        rc = st->ops->update(st, STORE_CLUSTER, ch[i].id, jstr(doc, "name"), doc);
        if (!rc)
            rc = audit_record(rq, "update", "cluster", jstr(doc, "name"), jstr(doc, "name"),
                              ch[i].id, json_array_get(befores, i), doc);
        if (!rc)
            rc = revision_bump(rq, jstr(doc, "name"));
        if (!rc)
            rc = show(doc) < 0 ? -ENOMEM : cluster_health(rq->srv, jstr(doc, "name"), doc);
    }
    free(ch);
    json_decref(befores);
    if (!rc)
        return resp_json(rs, 200, list_body(docs, (int64_t)json_array_size(docs)));
    json_decref(docs);
    return rc < 0 ? rc : 0;
}

int api_clusters_batch(struct req *rq, struct resp *rs)
{
    json_t *body;
    const char *defense = NULL;
    const json_t *ids = NULL;
    int rc = req_body_object(rq, rs, &body);
    if (!rc)
        rc = batch_body(rs, body, &defense, &ids);
    if (!rc) {
        rc = txn_begin(rq);
        if (!rc)
            rc = txn_end(rq, batch(rq, rs, defense, ids), rs);
    }
    json_decref(body);
    return rc < 0 ? rc : 0;
}
