/*
 * api_objects: /api/v1/objects — network objects (SPEC §2): create, list
 * (filters name, namespace, app, cluster; paged), get, replace, change
 * (merge patch), delete. Ids are assigned by the store, after the built-in
 * objects' 1..3. An object a rule references cannot be deleted (409 naming
 * the rules).
 */
#include "server.h"
#include "validate.h"

#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const filters[] = {"name", "namespace", "app", "cluster", NULL};

int api_objects_list(struct req *rq, struct resp *rs)
{
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, filters, true, &q);
    if (rc)
        return rc < 0 ? rc : 0;
    json_t *items;
    int64_t total;
    int err = rq->srv->store.ops->list(&rq->srv->store, STORE_OBJECT, &q, &items, &total);
    return err ? err : resp_json(rs, 200, list_body(items, total));
}

/* The stored object of the path's id: 0, 1 with 404 set, or an error. */
static int load(struct req *rq, struct resp *rs, json_t **doc, int64_t *id)
{
    *doc = NULL;
    int err = req_param_id(rq, 0, id)
                  ? rq->srv->store.ops->get(&rq->srv->store, STORE_OBJECT, *id, doc, NULL)
                  : -ENOENT;
    if (err == -ENOENT)
        return resp_error(rs, 404, "", "no object with id %s", rq->params[0]) < 0 ? -ENOMEM : 1;
    return err;
}

int api_objects_get(struct req *rq, struct resp *rs)
{
    json_t *doc;
    int64_t id;
    int rc = load(rq, rs, &doc, &id);
    if (rc)
        return rc < 0 ? rc : 0;
    return resp_json(rs, 200, doc);
}

/* 409 when another object already has this document's name. */
static int check_name(struct req *rq, struct resp *rs, const json_t *doc, int64_t id)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    int64_t other;
    int err = name ? rq->srv->store.ops->find(&rq->srv->store, STORE_OBJECT, NULL, name, &other)
                   : -ENOENT;
    if (err == -ENOENT || (!err && other == id))
        return 0;
    if (err)
        return err;
    return resp_error(rs, 409, "name", "object \"%s\" exists", name) < 0 ? -ENOMEM : 1;
}

/* Validates `doc` as object `id` (0 = new), stores it and answers with it. */
static int save(struct req *rq, struct resp *rs, json_t *doc, int64_t id)
{
    struct store *st = &rq->srv->store;
    int rc = check_name(rq, rs, doc, id);
    if (rc)
        return rc < 0 ? rc : 0;
    struct change ch = {.kind = STORE_OBJECT, .id = id, .doc = doc};
    rc = validate_change(rq->srv, &ch, 400, rs, NULL);
    if (rc)
        return rc < 0 ? rc : 0;
    int64_t newid = id;
    if (id)
        rc = st->ops->update(st, STORE_OBJECT, id, jstr(doc, "name"), doc);
    else
        rc = st->ops->insert(st, STORE_OBJECT, NULL, jstr(doc, "name"), doc, &newid);
    if (!rc)
        rc = json_object_set_new(doc, "id", json_integer(newid)) < 0 ? -ENOMEM : 0;
    if (!rc)
        rc = resp_json(rs, id ? 200 : 201, json_incref(doc));
    return resp_store_error(rs, rc, "object");
}

/* POST: the body is a new document (the write_doc signature; `patch` is unused). */
static int create_doc(struct req *rq, struct resp *rs, json_t *doc, bool patch)
{
    (void)patch;
    return save(rq, rs, doc, 0);
}

int api_objects_create(struct req *rq, struct resp *rs)
{
    return write_doc(rq, rs, "NetworkObject", create_doc, false);
}

static int change(struct req *rq, struct resp *rs, json_t *body, bool patch)
{
    json_t *doc;
    int64_t id;
    int rc = load(rq, rs, &doc, &id);
    if (rc)
        return rc < 0 ? rc : 0;
    json_object_del(doc, "id");
    rc = doc_apply_body(&doc, body, patch);
    if (!rc)
        rc = save(rq, rs, doc, id);
    json_decref(doc);
    return rc;
}

static int put_or_patch(struct req *rq, struct resp *rs, bool patch)
{
    return write_doc(rq, rs, "NetworkObject", change, patch);
}

int api_objects_replace(struct req *rq, struct resp *rs)
{
    return put_or_patch(rq, rs, false);
}

int api_objects_patch(struct req *rq, struct resp *rs)
{
    return put_or_patch(rq, rs, true);
}

/* True when a rule's object reference `ref` names the object (by name or id). */
static bool refers(const json_t *ref, const char *name, int64_t id)
{
    char idtext[24];
    snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
    if (json_is_integer(ref))
        return json_integer_value(ref) == id;
    const char *s = json_string_value(ref);
    return s && (strcmp(s, name) == 0 || strcmp(s, idtext) == 0);
}

static bool rule_uses(const json_t *rule, const char *name, int64_t id)
{
    if (refers(json_object_get(rule, "source"), name, id))
        return true;
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(rule, "destinations"), i,
                       d) if (refers(json_object_get(d, "object"), name, id)) return true;
    return false;
}

/* 409 naming every rule that references the object; 0 when none does. */
static int check_unused(struct req *rq, struct resp *rs, const json_t *obj, int64_t id)
{
    struct store_query q = {.limit = -1};
    json_t *rules, *errs = json_array();
    int64_t total;
    int err =
        errs ? rq->srv->store.ops->list(&rq->srv->store, STORE_RULE, &q, &rules, &total) : -ENOMEM;
    if (err) {
        json_decref(errs);
        return err;
    }
    size_t i;
    const json_t *r;
    json_array_foreach(rules, i, r)
    {
        if (rule_uses(r, jstr(obj, "name"), id) &&
            json_array_append_new(errs, json_pack("{s:s,s:s++++}", "field", "", "message",
                                                  "referenced by rule \"", jstr(r, "name"),
                                                  "\" of cluster \"", jstr(r, "cluster"), "\"")))
            break;
    }
    if (i < json_array_size(rules))
        err = -ENOMEM;
    json_decref(rules);
    if (err || json_array_size(errs) == 0) {
        json_decref(errs);
        return err;
    }
    return resp_json(rs, 409, json_pack("{s:o}", "errors", errs)) < 0 ? -ENOMEM : 1;
}

static int remove_object(struct req *rq, struct resp *rs)
{
    json_t *doc;
    int64_t id;
    int rc = load(rq, rs, &doc, &id);
    if (!rc)
        rc = check_unused(rq, rs, doc, id);
    json_decref(doc);
    if (rc)
        return rc < 0 ? rc : 0;
    struct change ch = {.kind = STORE_OBJECT, .id = id};
    rc = validate_change(rq->srv, &ch, 409, rs, NULL);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = rq->srv->store.ops->remove(&rq->srv->store, STORE_OBJECT, id);
    if (!rc)
        rs->status = 204;
    return resp_store_error(rs, rc, "object");
}

int api_objects_delete(struct req *rq, struct resp *rs)
{
    int err = txn_begin(rq);
    if (!err)
        err = txn_end(rq, remove_object(rq, rs), rs);
    return err;
}
