/*
 * api_objects: /api/v1/objects — network objects (SPEC §2): create, list
 * (filters name, namespace, app, cluster, image, label; paged), get,
 * replace, change (merge patch), delete, and batch delete. Ids are assigned
 * by the store, after the built-in objects' 1..3. An object a rule
 * references cannot be deleted (409 naming the rules).
 */
#include "audit.h"
#include "server.h"
#include "validate.h"

#include "image.h"
#include "labels.h"
#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 1000

static const char *const filters[] = {"name",  "namespace", "app", "cluster",
                                      "image", "label",     NULL};

/* A response was set: 1, or the error that kept it from being set. */
static int stop(int err)
{
    return err < 0 ? err : 1;
}

/*
 * The `image` and `label` filters, which the store cannot answer: an
 * object passes `image` when one of its image patterns matches the image
 * as the policy matches workloads (lib/image.h), and `label` when its label
 * selectors include that label (same key and value).
 */
struct object_match {
    bool image, label;
    struct image_forms forms;
    char *key, *value;
};

/* Reads ?image= and ?label=: 0, or 1 with 400 set, or -ENOMEM. */
static int match_init(const struct req *rq, struct resp *rs, struct object_match *m)
{
    const char *image = req_query(rq, "image"), *label = req_query(rq, "label");
    char why[160];
    m->image = image != NULL;
    m->label = label != NULL;
    if (image && image_forms(image, &m->forms) < 0)
        return stop(resp_error(rs, 400, "image", "\"%s\" is not an image reference", image));
    if (!label)
        return 0;
    int err = label_parse(label, &m->key, &m->value, why, sizeof(why));
    if (err == -ENOMEM)
        return err;
    return err ? stop(resp_error(rs, 400, "label", "%s", why)) : 0;
}

static void match_clear(struct object_match *m)
{
    free(m->key);
    free(m->value);
}

static bool image_matches(const struct object_match *m, const json_t *obj)
{
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(obj, "images"), i, p)
    {
        char norm[MOAT_IMAGE_MAX + 16];
        const char *why;
        if (json_is_string(p) &&
            image_pattern_normalise(json_string_value(p), norm, sizeof(norm), &why) == 0 &&
            image_forms_match(&m->forms, norm))
            return true;
    }
    return false;
}

static bool label_matches(const struct object_match *m, const json_t *obj)
{
    size_t i;
    const json_t *l;
    json_array_foreach(json_object_get(obj, "labels"), i, l)
    {
        char *k = NULL, *v = NULL, why[160];
        bool same = json_is_string(l) &&
                    label_parse(json_string_value(l), &k, &v, why, sizeof(why)) == 0 &&
                    strcmp(k, m->key) == 0 && strcmp(v, m->value) == 0;
        free(k);
        free(v);
        if (same)
            return true;
    }
    return false;
}

/* Keeps the items that pass `m`, then the page limit/offset of them; *total = how many passed. */
static int match_page(const struct object_match *m, json_t **items, int64_t limit, int64_t offset,
                      int64_t *total)
{
    json_t *page = json_array();
    int err = page ? 0 : -ENOMEM;
    int64_t n = 0;
    for (size_t i = 0; !err && i < json_array_size(*items); i++) {
        json_t *o = json_array_get(*items, i);
        if ((m->image && !image_matches(m, o)) || (m->label && !label_matches(m, o)))
            continue;
        if (n >= offset && n - offset < limit && json_array_append(page, o) < 0)
            err = -ENOMEM;
        n++;
    }
    json_decref(*items);
    *items = page; /* the caller releases it, also on error */
    *total = n;
    return err;
}

int api_objects_list(struct req *rq, struct resp *rs)
{
    struct store_query q = {0};
    struct object_match m = {0};
    int rc = req_query_check(rq, rs, filters, true, &q);
    if (!rc)
        rc = match_init(rq, rs, &m);
    if (rc) {
        match_clear(&m);
        return rc < 0 ? rc : 0;
    }
    /* image and label are matched here, over every object the store's filters pass */
    size_t kept = 0;
    for (size_t i = 0; i < q.nfilters; i++)
        if (strcmp(q.filters[i].field, "image") != 0 && strcmp(q.filters[i].field, "label") != 0)
            q.filters[kept++] = q.filters[i];
    q.nfilters = kept;
    int64_t limit = q.limit, offset = q.offset;
    if (m.image || m.label) {
        q.limit = -1;
        q.offset = 0;
    }
    json_t *items = NULL;
    int64_t total;
    int err = rq->srv->store.ops->list(&rq->srv->store, STORE_OBJECT, &q, &items, &total);
    if (!err && (m.image || m.label))
        err = match_page(&m, &items, limit, offset, &total);
    match_clear(&m);
    if (err) {
        json_decref(items);
        return err;
    }
    return resp_json(rs, 200, list_body(items, total));
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

/*
 * Validates `doc` as object `id` (0 = new; `before` its stored document),
 * stores it and answers with it.
 */
static int save(struct req *rq, struct resp *rs, json_t *doc, int64_t id, const json_t *before)
{
    struct store *st = &rq->srv->store;
    int rc = check_name(rq, rs, doc, id);
    if (rc)
        return rc < 0 ? rc : 0;
    struct change ch = {
        .kind = STORE_OBJECT, .id = id, .doc = doc, .name = before ? jstr(before, "name") : NULL};
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
        rc = audit_record(rq, id ? "update" : "create", "object", NULL, jstr(doc, "name"), newid,
                          before, doc);
    if (!rc)
        rc = resp_json(rs, id ? 200 : 201, json_incref(doc));
    return resp_store_error(rs, rc, "object");
}

/* POST: the body is a new document (the write_doc signature; `patch` is unused). */
static int create_doc(struct req *rq, struct resp *rs, json_t *doc, bool patch)
{
    (void)patch;
    return save(rq, rs, doc, 0, NULL);
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
    json_t *before = json_deep_copy(doc);
    json_object_del(doc, "id");
    rc = before ? doc_apply_body(&doc, body, patch) : -ENOMEM;
    if (!rc)
        rc = save(rq, rs, doc, id, before);
    json_decref(doc);
    json_decref(before);
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

/*
 * True when a rule's object reference `ref` names the object: by name, by id,
 * or by its id as a string unless `id_is_a_name` (another object is named
 * so: the loader resolves a name first).
 */
static bool refers(const json_t *ref, const char *name, int64_t id, bool id_is_a_name)
{
    char idtext[24];
    snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
    if (json_is_integer(ref))
        return json_integer_value(ref) == id;
    const char *s = json_string_value(ref);
    return s && (strcmp(s, name) == 0 || (!id_is_a_name && strcmp(s, idtext) == 0));
}

static bool rule_uses(const json_t *rule, const char *name, int64_t id, bool id_is_a_name)
{
    if (refers(json_object_get(rule, "source"), name, id, id_is_a_name))
        return true;
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(rule, "destinations"), i, d)
    {
        if (refers(json_object_get(d, "object"), name, id, id_is_a_name))
            return true;
    }
    return false;
}

/* True when an object other than `id` is named as id's digits ("4"). */
static bool id_is_a_name(struct req *rq, int64_t id)
{
    char idtext[24];
    int64_t other;
    snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
    return rq->srv->store.ops->find(&rq->srv->store, STORE_OBJECT, NULL, idtext, &other) == 0 &&
           other != id;
}

/*
 * The rules of every cluster that name object `obj` (id `id`) by its name or
 * its id (the store keeps rules' references indexed), appended to *rules
 * (made when NULL) once each. 0 or a store error.
 */
static int rules_naming(struct req *rq, const json_t *obj, int64_t id, json_t **rules)
{
    struct store *st = &rq->srv->store;
    char idtext[24];
    snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
    const char *refs[2] = {jstr(obj, "name"), idtext};
    if (!*rules && !(*rules = json_array()))
        return -ENOMEM;
    for (int k = 0; k < 2; k++) {
        struct store_query q = {.ref = refs[k], .limit = -1};
        json_t *items;
        int64_t total;
        int err = st->ops->list(st, STORE_RULE, &q, &items, &total);
        if (err)
            return err;
        size_t i;
        json_t *r;
        json_array_foreach(items, i, r)
        {
            json_int_t rid = json_integer_value(json_object_get(r, "id"));
            bool seen = false;
            for (size_t j = 0; !seen && j < json_array_size(*rules); j++)
                seen = json_integer_value(json_object_get(json_array_get(*rules, j), "id")) == rid;
            if (!seen && json_array_append(*rules, r) < 0) {
                json_decref(items);
                return -ENOMEM;
            }
        }
        json_decref(items);
    }
    return 0;
}

/*
 * Appends to `errs` one entry per rule that references object `id`: field
 * `field`, message `prefix` + "referenced by rule ... of cluster ...". 0 or -ENOMEM.
 */
static int add_users(struct req *rq, json_t *errs, const json_t *rules, const json_t *obj,
                     int64_t id, const char *field, const char *prefix)
{
    size_t i;
    const json_t *r;
    bool named = id_is_a_name(rq, id);
    json_array_foreach(rules, i, r)
    {
        if (rule_uses(r, jstr(obj, "name"), id, named) &&
            json_array_append_new(errs, json_pack("{s:s,s:s+++++}", "field", field, "message",
                                                  prefix, "referenced by rule \"", jstr(r, "name"),
                                                  "\" of cluster \"", jstr(r, "cluster"), "\"")))
            return -ENOMEM;
    }
    return 0;
}

/* Answers `status` with the errors in `errs` when there are any: 1, 0 when none, or -ENOMEM. */
static int errors_if_any(struct resp *rs, unsigned status, json_t *errs)
{
    if (json_array_size(errs) == 0) {
        json_decref(errs);
        return 0;
    }
    return stop(resp_json(rs, status, json_pack("{s:o}", "errors", errs)));
}

/* 409 naming every rule that references the object; 0 when none does. */
static int check_unused(struct req *rq, struct resp *rs, const json_t *obj, int64_t id)
{
    json_t *rules = NULL, *errs = json_array();
    int err = errs ? rules_naming(rq, obj, id, &rules) : -ENOMEM;
    if (!err)
        err = add_users(rq, errs, rules, obj, id, "", "");
    json_decref(rules);
    if (err) {
        json_decref(errs);
        return err;
    }
    return errors_if_any(rs, 409, errs);
}

static int remove_object(struct req *rq, struct resp *rs)
{
    json_t *doc;
    int64_t id;
    int rc = load(rq, rs, &doc, &id);
    if (!rc)
        rc = check_unused(rq, rs, doc, id);
    struct change ch = {.kind = STORE_OBJECT, .id = id, .name = jstr(doc, "name")};
    if (!rc)
        rc = validate_change(rq->srv, &ch, 409, rs, NULL);
    if (!rc)
        rc = rq->srv->store.ops->remove(&rq->srv->store, STORE_OBJECT, id);
    if (!rc)
        rc = audit_record(rq, "delete", "object", NULL, jstr(doc, "name"), id, doc, NULL);
    if (!rc)
        rs->status = 204;
    json_decref(doc);
    if (rc > 0)
        return 0;
    return resp_store_error(rs, rc, "object");
}

int api_objects_delete(struct req *rq, struct resp *rs)
{
    int err = txn_begin(rq);
    if (!err)
        err = txn_end(rq, remove_object(rq, rs), rs);
    return err;
}

/*
 * The batch body {"action": "delete", "ids": [1..BATCH_MAX distinct object
 * ids]}: 0, or 1 with 400 set (or -ENOMEM).
 */
static int batch_body(struct resp *rs, const json_t *body, const json_t **ids)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "action") != 0 && strcmp(key, "ids") != 0)
            return stop(resp_error(rs, 400, key, "unknown field"));
    }
    v = json_object_get(body, "action");
    if (!json_is_string(v) || strcmp(json_string_value(v), "delete") != 0)
        return stop(resp_error(rs, 400, "action", "required: \"delete\""));
    *ids = json_object_get(body, "ids");
    return req_ids(rs, *ids, BATCH_MAX, "object");
}

/* The objects `ids` into *docs (in order): 0, 1 with a 404 naming every unknown id, or an error. */
static int batch_load(struct req *rq, struct resp *rs, const json_t *ids, json_t *docs)
{
    struct store *st = &rq->srv->store;
    json_t *errs = json_array();
    int err = errs ? 0 : -ENOMEM;
    for (size_t i = 0; !err && i < json_array_size(ids); i++) {
        json_int_t id = json_integer_value(json_array_get(ids, i));
        json_t *doc = NULL;
        char field[32];
        snprintf(field, sizeof(field), "ids[%zu]", i);
        err = st->ops->get(st, STORE_OBJECT, id, &doc, NULL);
        if (!err)
            err = json_array_append_new(docs, doc) < 0 ? -ENOMEM : 0;
        else if (err == -ENOENT) {
            char msg[64];
            snprintf(msg, sizeof(msg), "no object with id %lld", (long long)id);
            err = json_array_append_new(errs,
                                        json_pack("{s:s,s:s}", "field", field, "message", msg)) < 0
                      ? -ENOMEM
                      : 0;
        }
    }
    if (err) {
        json_decref(errs);
        return err;
    }
    return errors_if_any(rs, 404, errs);
}

/* Deletes every object of `ids` or none: 404 for unknown ids, 409 for objects rules use. */
static int batch_delete(struct req *rq, struct resp *rs, const json_t *ids)
{
    json_t *docs = json_array(), *errs = NULL;
    int rc = docs ? batch_load(rq, rs, ids, docs) : -ENOMEM;
    if (!rc)
        rc = (errs = json_array()) ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < json_array_size(docs); i++) {
        const json_t *doc = json_array_get(docs, i);
        int64_t id = json_integer_value(json_array_get(ids, i));
        json_t *rules = NULL;
        char field[32], prefix[160];
        snprintf(field, sizeof(field), "ids[%zu]", i);
        snprintf(prefix, sizeof(prefix), "object \"%s\" is ", jstr(doc, "name"));
        rc = rules_naming(rq, doc, id, &rules);
        if (!rc)
            rc = add_users(rq, errs, rules, doc, id, field, prefix);
        json_decref(rules);
    }
    if (!rc) {
        rc = errors_if_any(rs, 409, errs);
        errs = NULL;
    }
    json_decref(errs);
    size_t n = json_array_size(docs);
    struct change *ch = rc ? NULL : calloc(n ? n : 1, sizeof(*ch)); /* the state without them */
    if (!rc && !ch)
        rc = -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        ch[i] = (struct change){.kind = STORE_OBJECT,
                                .id = json_integer_value(json_array_get(ids, i)),
                                .name = jstr(json_array_get(docs, i), "name")};
    if (!rc)
        rc = validate_changes(rq->srv, ch, n, false, 409, rs, NULL);
    free(ch);
    for (size_t i = 0; !rc && i < n; i++) {
        const json_t *doc = json_array_get(docs, i);
        int64_t id = json_integer_value(json_array_get(ids, i));
        rc = rq->srv->store.ops->remove(&rq->srv->store, STORE_OBJECT, id);
        if (!rc)
            rc = audit_record(rq, "delete", "object", NULL, jstr(doc, "name"), id, doc, NULL);
    }
    if (!rc)
        return resp_json(rs, 200, list_body(docs, (int64_t)n));
    json_decref(docs);
    return rc < 0 ? rc : 0;
}

int api_objects_batch(struct req *rq, struct resp *rs)
{
    json_t *body;
    const json_t *ids = NULL;
    int rc = req_body_object(rq, rs, &body);
    if (!rc)
        rc = batch_body(rs, body, &ids);
    if (!rc) {
        rc = txn_begin(rq);
        if (!rc)
            rc = txn_end(rq, batch_delete(rq, rs, ids), rs);
    }
    json_decref(body);
    return rc < 0 ? rc : 0;
}
