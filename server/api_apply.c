/*
 * api_apply: POST /api/v1/apply — policy documents (SPEC 10: Cluster,
 * NetworkObject, DefenseRule, as `moat apply -f` and `moat delete -f` read
 * them) applied or deleted in one transaction: all of them or none.
 *
 *   {"action": "apply" | "delete", "documents": [{"kind": ..., ...}, ...]}
 *
 * apply: clusters, then objects, then rules, each in the order given.
 * A document names its record (clusters and objects by name, rules by
 * cluster and name); a record the server has gets the document's fields as
 * a merge patch (fields left out keep their values), one it lacks is made
 * from the document (defaults filled in, as a POST would). The state they
 * leave is validated once (validate.h: the documents and their neighbours,
 * not the whole store); every error is named `documents[i].field`. Each
 * record is then settled (lib/canon.h) and compared with what the server
 * held: `created`, `configured` or `unchanged`. New rules get ids in
 * document order, so "equal priority, earlier rule first" holds as in files.
 *
 * delete: rules, then objects, then clusters (with their rules); `deleted`,
 * `absent`, or for a system rule `kept (system rule)`. Deleting what the
 * remaining rules need is refused (409), as single deletes are.
 *
 * Each change is an audit record; revisions move once per cluster touched
 * (every cluster when an object changed).
 */
#include "audit.h"
#include "server.h"
#include "validate.h"
#include "writer.h"

#include "canon.h"
#include "jsonpatch.h"
#include "loader.h"
#include "strset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APPLY_KINDS 3

static const char *const kind_names[APPLY_KINDS] = {"Cluster", "NetworkObject", "DefenseRule"};
static const char *const kind_short[APPLY_KINDS] = {"cluster", "object", "rule"};

/* One document of the request. */
struct item {
    size_t at;          /* its index in `documents` */
    enum store_kind k;  /* STORE_CLUSTER, STORE_OBJECT, STORE_RULE */
    json_t *given;      /* the document as sent, without kind (borrowed from the body) */
    json_t *held;       /* the stored record (with "id"), or NULL */
    json_t *doc;        /* the record after the change (apply) */
    int64_t id;         /* the stored record's id, or 0 */
    const char *result; /* what was done */
};

struct apply {
    struct req *rq;
    struct resp *rs;
    bool deleting;
    struct item *items;
    size_t n;
    bool bump_all;
    json_t *bumped; /* {cluster: true} */
};

/* A response was set: 1, or the error that kept it from being set. */
static int stop(int err)
{
    return err < 0 ? err : 1;
}

static void apply_clear(struct apply *a)
{
    for (size_t i = 0; i < a->n; i++) {
        json_decref(a->items[i].held);
        json_decref(a->items[i].doc);
    }
    free(a->items);
    json_decref(a->bumped);
}

static bool is_system(const json_t *doc)
{
    return strcmp(jstr(doc, "type"), "system") == 0;
}

/* Checks the shape of every document; fills a->items. 0, 1 with 400 set, or an error. */
static int read_documents(struct apply *a, json_t *docs)
{
    json_t *errs = json_array();
    size_t n = json_array_size(docs);
    a->items = calloc(n ? n : 1, sizeof(*a->items));
    if (!errs || !a->items) {
        json_decref(errs);
        return -ENOMEM;
    }
    int err = 0;
    for (size_t i = 0; !err && i < n; i++) {
        json_t *d = json_array_get(docs, i);
        char at[48];
        snprintf(at, sizeof(at), "documents[%zu].", i);
        const char *kind = json_string_value(json_object_get(d, "kind"));
        int k = 0;
        while (kind && k < APPLY_KINDS && strcmp(kind, kind_names[k]) != 0)
            k++;
        char field[64];
        if (!json_is_object(d)) {
            snprintf(field, sizeof(field), "documents[%zu]", i);
            err = errs_add(errs, field, "must be an object");
            continue;
        }
        snprintf(field, sizeof(field), "%skind", at);
        if (!kind || k == APPLY_KINDS) {
            err = errs_add(errs, field, "must be Cluster, NetworkObject or DefenseRule");
            continue;
        }
        snprintf(field, sizeof(field), "%sid", at);
        if (json_object_get(d, "id"))
            err = errs_add(errs, field, "is assigned by the server");
        snprintf(field, sizeof(field), "%sname", at);
        if (!err && !json_is_string(json_object_get(d, "name")))
            err = errs_add(errs, field, "required: a string");
        snprintf(field, sizeof(field), "%scluster", at);
        if (!err && k == 2 && !json_is_string(json_object_get(d, "cluster")))
            err = errs_add(errs, field, "required: a string");
        if (!err)
            err = doc_strings_check(errs, d, at);
        a->items[a->n++] = (struct item){.at = i, .k = (enum store_kind)k, .given = d};
    }
    struct strset seen = {0}; /* "KIND|CLUSTER|NAME" */
    for (size_t i = 0; !err && i < a->n; i++) {
        const struct item *x = &a->items[i];
        char key[3 * SERVER_NAME_MAX];
        snprintf(key, sizeof(key), "%d|%s|%s", (int)x->k,
                 x->k == STORE_RULE ? jstr(x->given, "cluster") : "", jstr(x->given, "name"));
        int added = strset_add(&seen, key);
        if (added < 0)
            err = added;
        for (size_t j = 0; !err && !added && j < i; j++) { /* which one: rare, so a scan */
            const struct item *y = &a->items[j];
            if (x->k == y->k && strcmp(jstr(x->given, "name"), jstr(y->given, "name")) == 0 &&
                (x->k != STORE_RULE ||
                 strcmp(jstr(x->given, "cluster"), jstr(y->given, "cluster")) == 0)) {
                char field[48];
                snprintf(field, sizeof(field), "documents[%zu]", x->at);
                err = errs_add(errs, field, "names the same %s as documents[%zu]", kind_short[x->k],
                               y->at);
                break;
            }
        }
    }
    strset_clear(&seen);
    if (err) {
        json_decref(errs);
        return err;
    }
    return resp_errors(a->rs, 400, errs);
}

/* The stored record each document names, into item->held. */
static int find_held(struct apply *a)
{
    struct store *st = &a->rq->srv->store;
    for (size_t i = 0; i < a->n; i++) {
        struct item *it = &a->items[i];
        const char *cluster = it->k == STORE_RULE ? jstr(it->given, "cluster") : NULL;
        int err = st->ops->find(st, it->k, cluster, jstr(it->given, "name"), &it->id);
        if (!err)
            err = st->ops->get(st, it->k, it->id, &it->held, NULL);
        if (err == -ENOENT) {
            it->id = 0;
            err = 0;
        }
        if (err)
            return err;
    }
    return 0;
}

/* The record after applying the document: the held one with the document merged in. */
static int new_doc(struct item *it, struct resp *rs)
{
    json_t *given = json_copy(it->given); /* without kind; the values are shared */
    if (!given)
        return -ENOMEM;
    json_object_del(given, "kind");
    if (!it->held) {
        if (it->k == STORE_RULE && is_system(given)) {
            json_decref(given);
            char field[48];
            snprintf(field, sizeof(field), "documents[%zu].type", it->at);
            return stop(resp_error(rs, 400, field,
                                   "only the built-in rules allow-host and allow-cluster-dns "
                                   "are system rules: custom or suggested"));
        }
        it->doc = given;
        return 0;
    }
    it->doc = json_deep_copy(it->held);
    int err = it->doc ? 0 : -ENOMEM;
    json_object_del(it->doc, "id");
    if (!err)
        err = json_merge_patch(it->doc, given);
    json_decref(given);
    return err;
}

/* The change that validation sees for an item. */
static struct change change_of(const struct apply *a, const struct item *it)
{
    struct change c = {
        .kind = it->k, .id = it->id, .name = it->held ? jstr(it->held, "name") : NULL};
    if (it->k == STORE_RULE)
        c.cluster = jstr(it->given, "cluster");
    if (!a->deleting) /* a system rule: what a file may say of it, as the loader checks it */
        c.doc = it->k == STORE_RULE && it->held && is_system(it->held) ? it->given : it->doc;
    return c;
}

/* The items in the order the work goes: by kind (reversed when deleting), then as given. */
static size_t *work_order(const struct apply *a)
{
    size_t *order = calloc(a->n ? a->n : 1, sizeof(*order)), m = 0;
    for (int step = 0; order && step < APPLY_KINDS; step++) {
        int k = a->deleting ? APPLY_KINDS - 1 - step : step;
        for (size_t i = 0; i < a->n; i++)
            if ((int)a->items[i].k == k)
                order[m++] = i;
    }
    return order;
}

static int validate_all(struct apply *a, const size_t *order, struct moat_policy **p)
{
    struct change *ch = calloc(a->n ? a->n : 1, sizeof(*ch));
    size_t m = 0;
    if (!ch)
        return -ENOMEM;
    for (size_t i = 0; i < a->n; i++) {
        const struct item *it = &a->items[order[i]];
        if (a->deleting && (!it->held || (it->k == STORE_RULE && is_system(it->held))))
            continue; /* absent, or kept */
        ch[m++] = change_of(a, it);
    }
    int rc = validate_changes(a->rq->srv, ch, m, true, a->deleting ? 409 : 400, a->rs, p);
    free(ch);
    /* validation numbers documents by change: map them back to the request's */
    if (rc == 1 && m > 0) {
        json_t *errs = json_object_get(a->rs->json, "errors");
        size_t i;
        json_t *e;
        json_array_foreach(errs, i, e)
        {
            const char *f = jstr(e, "field");
            size_t idx;
            int used = 0;
            if (sscanf(f, "documents[%zu]%n", &idx, &used) == 1 && idx < m) {
                size_t j = 0, seen = 0;
                for (; j < a->n; j++) {
                    const struct item *it = &a->items[order[j]];
                    if (a->deleting && (!it->held || (it->k == STORE_RULE && is_system(it->held))))
                        continue;
                    if (seen++ == idx)
                        break;
                }
                char field[600];
                snprintf(field, sizeof(field), "documents[%zu]%s", a->items[order[j]].at, f + used);
                json_object_set_new(e, "field", json_string(field));
            }
        }
    }
    return rc;
}

/* Notes the revisions an item's change moves. */
static int note_bump(struct apply *a, const struct item *it)
{
    if (it->k == STORE_OBJECT) {
        a->bump_all = true;
        return 0;
    }
    const char *cluster =
        it->k == STORE_RULE ? jstr(it->given, "cluster") : jstr(it->given, "name");
    return json_object_set_new(a->bumped, cluster, json_true()) < 0 ? -ENOMEM : 0;
}

/* Settles, compares and stores one item (apply). */
static int store_one(struct apply *a, struct item *it, const struct canon *cn)
{
    struct req *rq = a->rq;
    struct store *st = &rq->srv->store;
    const char *cluster = it->k == STORE_RULE ? jstr(it->given, "cluster") : NULL;
    int err = 0;
    if (it->k == STORE_RULE && !it->held &&
        (strcmp(jstr(it->given, "name"), MOAT_SYSRULE_HOST) == 0 ||
         strcmp(jstr(it->given, "name"), MOAT_SYSRULE_DNS) == 0)) {
        /* a system rule of a cluster this request made: it exists now */
        err = st->ops->find(st, STORE_RULE, cluster, jstr(it->given, "name"), &it->id);
        if (!err)
            err = st->ops->get(st, STORE_RULE, it->id, &it->held, NULL);
        json_decref(it->doc);
        it->doc = NULL;
        if (!err)
            err = new_doc(it, a->rs);
        if (err)
            return err;
    }
    err = it->k == STORE_CLUSTER ? canon_cluster(cn, it->doc)
          : it->k == STORE_RULE  ? canon_rule(cn, it->doc, cluster)
                                 : 0;
    if (err)
        return err;
    json_t *held = it->held ? json_deep_copy(it->held) : NULL;
    json_object_del(held, "id");
    bool same = held && json_equal(held, it->doc);
    json_decref(held);
    if (same) {
        it->result = "unchanged";
        return 0;
    }
    const char *name = jstr(it->doc, "name");
    int64_t id = it->id;
    if (it->id)
        err = st->ops->update(st, it->k, it->id, name, it->doc);
    else
        err = st->ops->insert(st, it->k, cluster, name, it->doc, &id);
    if (!err && it->k == STORE_CLUSTER && !it->id) {
        err = cluster_add_system_rules(st, name);
        effects_bump(&rq->fx, name, 1);
    }
    if (!err)
        err = audit_record(rq, it->id ? "update" : "create", kind_short[it->k],
                           it->k == STORE_CLUSTER ? name : cluster, name, id, it->held, it->doc);
    if (!err)
        err = note_bump(a, it);
    it->id = id;
    it->result = it->held ? "configured" : "created";
    return err;
}

/* Removes one item (delete). */
static int remove_one(struct apply *a, struct item *it)
{
    struct req *rq = a->rq;
    struct store *st = &rq->srv->store;
    if (!it->held) {
        it->result = "absent";
        return 0;
    }
    if (it->k == STORE_RULE && is_system(it->held)) {
        it->result = "kept (system rule)";
        return 0;
    }
    const char *name = jstr(it->held, "name");
    const char *cluster = it->k == STORE_RULE      ? jstr(it->given, "cluster")
                          : it->k == STORE_CLUSTER ? name
                                                   : NULL;
    int err = 0;
    if (it->k == STORE_CLUSTER) { /* its nodes go with it: the fleet's index forgets them */
        struct store_query q = {.cluster = name, .limit = -1};
        json_t *nodes = NULL;
        int64_t total;
        err = st->ops->list(st, STORE_NODE, &q, &nodes, &total);
        for (size_t i = 0; !err && i < json_array_size(nodes); i++)
            effects_node(&rq->fx,
                         json_integer_value(json_object_get(json_array_get(nodes, i), "id")));
        json_decref(nodes);
    }
    /* a rule whose cluster goes in the same request is gone with it already */
    if (!err)
        err = st->ops->remove(st, it->k, it->id);
    if (err == -ENOENT && it->k == STORE_RULE)
        err = 0;
    if (!err)
        err = audit_record(rq, "delete", kind_short[it->k], cluster, name, it->id, it->held, NULL);
    if (!err && it->k == STORE_CLUSTER) {
        effects_bump(&rq->fx, name, 0);
        rq->fx.revoked = true; /* its nodes' credentials went with it */
    } else if (!err)
        err = note_bump(a, it);
    it->result = "deleted";
    return err;
}

static int answer(struct apply *a)
{
    json_t *results = json_array();
    for (size_t i = 0; results && i < a->n; i++) {
        const struct item *it = &a->items[i];
        json_t *r = json_pack("{s:s,s:s,s:s?,s:s}", "kind", kind_names[it->k], "name",
                              jstr(it->given, "name"), "cluster",
                              it->k == STORE_RULE ? jstr(it->given, "cluster") : NULL, "result",
                              it->result ? it->result : "");
        if (r && it->id &&
            json_object_set_new(r, "id",
                                it->k == STORE_CLUSTER ? json_string(jstr(it->given, "name"))
                                                       : json_integer(it->id)) < 0) {
            json_decref(r);
            r = NULL;
        }
        if (!r || json_array_append_new(results, r) < 0) {
            json_decref(results);
            results = NULL;
        }
    }
    return resp_json(a->rs, 200, results ? json_pack("{s:o}", "results", results) : NULL);
}

static int bump_revisions(struct apply *a)
{
    if (a->bump_all)
        return revision_bump(a->rq, NULL);
    const char *cluster;
    json_t *v;
    json_object_foreach(a->bumped, cluster, v)
    {
        int err = revision_bump(a->rq, cluster);
        if (err)
            return err;
    }
    return 0;
}

static int run(struct apply *a)
{
    int rc = find_held(a);
    for (size_t i = 0; !rc && !a->deleting && i < a->n; i++)
        rc = new_doc(&a->items[i], a->rs);
    size_t *order = rc ? NULL : work_order(a);
    if (!rc && !order)
        rc = -ENOMEM;
    struct moat_policy *p = NULL;
    if (!rc)
        rc = validate_all(a, order, a->deleting ? NULL : &p);
    struct canon *cn = NULL;
    if (!rc && p)
        rc = canon_new(p, &cn);
    for (size_t i = 0; !rc && i < a->n; i++) {
        struct item *it = &a->items[order[i]];
        rc = a->deleting ? remove_one(a, it) : store_one(a, it, cn);
    }
    canon_free(cn);
    policy_free(p);
    free(order);
    if (!rc)
        rc = bump_revisions(a);
    if (!rc)
        rc = answer(a);
    return rc;
}

int api_apply(struct req *rq, struct resp *rs)
{
    struct apply a = {.rq = rq, .rs = rs, .bumped = json_object()};
    json_t *body = NULL;
    int rc = a.bumped ? req_body_object(rq, rs, &body) : -ENOMEM;
    const char *key;
    const json_t *v;
    json_object_foreach(body, key, v)
    {
        if (!rc && strcmp(key, "action") != 0 && strcmp(key, "documents") != 0)
            rc = stop(resp_error(rs, 400, key, "unknown field"));
    }
    const json_t *action = json_object_get(body, "action");
    json_t *docs = json_object_get(body, "documents");
    if (!rc && action &&
        !(json_is_string(action) && (strcmp(json_string_value(action), "apply") == 0 ||
                                     strcmp(json_string_value(action), "delete") == 0)))
        rc = stop(resp_error(rs, 400, "action", "must be apply or delete"));
    if (!rc && !json_is_array(docs))
        rc = stop(resp_error(rs, 400, "documents", "required: a list of policy documents"));
    a.deleting = !rc && action && strcmp(json_string_value(action), "delete") == 0;
    if (!rc)
        rc = read_documents(&a, docs);
    if (!rc)
        rc = txn_begin(rq);
    if (!rc)
        rc = run(&a);
    apply_clear(&a);
    json_decref(body);
    return rc < 0 ? rc : 0;
}
