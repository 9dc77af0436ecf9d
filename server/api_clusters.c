/*
 * api_clusters: /api/v1/clusters — clusters (SPEC §4): create, list, get,
 * replace, change (merge patch: defense, mode, default_action, detections),
 * delete. A cluster's id is its name. GET adds the derived `status`
 * (normal/abnormal/unknown), `nodes`, `enforcing` and `abnormal_nodes`. Creating a cluster also
 * creates its two system rules (SPEC §3); deleting it deletes its rules, and is refused (409) while
 * objects are restricted to it.
 */
#include "server.h"
#include "validate.h"

#include "loader.h"

#include <errno.h>
#include <string.h>

static const char *const filters[] = {"name", "defense", "mode", "default_action", NULL};

/* A stored cluster as the API shows it: its id is its name. */
static int show(json_t *doc)
{
    json_t *name = json_object_get(doc, "name");
    return json_object_set(doc, "id", name ? name : json_null()) < 0 ? -ENOMEM : 0;
}

int api_clusters_list(struct req *rq, struct resp *rs)
{
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, filters, true, &q);
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

static int add_system_rules(struct store *st, const char *cluster)
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

/* Validates `doc` as the new version of cluster `id` (0 = new) and stores it. */
static int save(struct req *rq, struct resp *rs, json_t *doc, int64_t id)
{
    struct store *st = &rq->srv->store;
    struct change ch = {.kind = STORE_CLUSTER, .id = id, .doc = doc};
    struct moat_policy *p = NULL;
    int rc = validate_change(rq->srv, &ch, 400, rs, &p);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = canon_cluster(doc, p);
    policy_free(p);
    int64_t newid = id;
    if (!rc && id)
        rc = st->ops->update(st, STORE_CLUSTER, id, jstr(doc, "name"), doc);
    else if (!rc)
        rc = st->ops->insert(st, STORE_CLUSTER, NULL, jstr(doc, "name"), doc, &newid);
    if (!rc && !id)
        rc = add_system_rules(st, jstr(doc, "name"));
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
    return save(rq, rs, doc, 0);
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
    rc = doc_apply_body(&doc, body, patch);
    const json_t *name = json_object_get(doc, "name");
    if (!rc && !name)
        rc = json_object_set_new(doc, "name", json_string(rq->params[0])) < 0 ? -ENOMEM : 0;
    else if (!rc && (!json_is_string(name) || strcmp(json_string_value(name), rq->params[0])))
        rc = resp_error(rs, 400, "name", "a cluster cannot be renamed") < 0 ? -ENOMEM : 1;
    if (!rc)
        rc = save(rq, rs, doc, id);
    json_decref(doc);
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

static int remove_cluster(struct req *rq, struct resp *rs)
{
    json_t *doc;
    int64_t id;
    int rc = load(rq, rs, &doc, &id);
    if (rc)
        return rc < 0 ? rc : 0;
    json_decref(doc);
    struct change ch = {.kind = STORE_CLUSTER, .id = id, .cluster = rq->params[0]};
    rc = validate_change(rq->srv, &ch, 409, rs, NULL);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = rq->srv->store.ops->remove(&rq->srv->store, STORE_CLUSTER, id);
    if (!rc)
        rs->status = 204;
    return resp_store_error(rs, rc, "cluster");
}

int api_clusters_delete(struct req *rq, struct resp *rs)
{
    int err = txn_begin(rq);
    if (!err)
        err = txn_end(rq, remove_cluster(rq, rs), rs);
    return err;
}
