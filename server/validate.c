/* validate: API changes checked by libmoat's loader over their neighbourhood (see validate.h). */
#include "validate.h"

#include "diag.h"
#include "loader.h"
#include "strset.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"Cluster", "NetworkObject", "DefenseRule"};

/* ---- the documents the loader sees ---- */

struct vset {
    struct server *srv;
    const struct change *ch;
    size_t n;
    json_t *docs;
    size_t *doc_change; /* document i (0-based) -> its change, for the changed ones */
    size_t nchanged;    /* documents that are changes: the first ones */
    struct strset keys; /* "k:ID" records changed; "X:NAME" clusters removed; lookups done */
};

/* The keys: a tag and a text ("c:5" cluster 5 changed, "N:prod" cluster prod defined...). */
static int key_add(struct vset *v, const char *tag, const char *text)
{
    char key[SERVER_NAME_MAX * 2 + 32];
    snprintf(key, sizeof(key), "%s:%s", tag, text);
    return strset_add(&v->keys, key);
}

static bool key_has(const struct vset *v, const char *tag, const char *text)
{
    char key[SERVER_NAME_MAX * 2 + 32];
    snprintf(key, sizeof(key), "%s:%s", tag, text);
    return strset_has(&v->keys, key);
}

/* An id as a key's text, in buf[24]. */
static const char *id_text(char *buf, int64_t id)
{
    snprintf(buf, 24, "%lld", (long long)id);
    return buf;
}

/* Whether stored record (k, id) is one of the changes (its stored version does not count). */
static bool changed(const struct vset *v, enum store_kind k, int64_t id)
{
    char buf[24];
    return key_has(v, k == STORE_CLUSTER ? "c" : k == STORE_OBJECT ? "o" : "r", id_text(buf, id));
}

static bool is_system(const json_t *doc)
{
    const char *type = json_string_value(json_object_get(doc, "type"));
    return type && strcmp(type, "system") == 0;
}

/* Appends `doc` as a document of kind k: rules without their id, system rules as a file
 * names them (their switch and description only). */
static int add_doc(struct vset *v, enum store_kind k, const json_t *doc, int64_t object_id)
{
    json_t *d;
    if (k == STORE_RULE && is_system(doc))
        d = json_pack("{s:s,s:O?,s:O?,s:O?,s:O?}", "kind", "DefenseRule", "cluster",
                      json_object_get(doc, "cluster"), "name", json_object_get(doc, "name"),
                      "enabled", json_object_get(doc, "enabled"), "description",
                      json_object_get(doc, "description"));
    else /* only top-level keys change: the values are shared */
        d = json_copy((json_t *)doc);
    if (!d)
        return -ENOMEM;
    if (k != STORE_OBJECT)
        json_object_del(d, "id");
    if (json_object_set_new(d, "kind", json_string(kind_names[k])) < 0 ||
        (object_id && json_object_set_new(d, "id", json_integer(object_id)) < 0) ||
        json_array_append_new(v->docs, d) < 0)
        return -ENOMEM;
    return 0;
}

/* The stored cluster `name`, unless a change defines or removes it. */
static int need_cluster(struct vset *v, const char *name)
{
    int rc = key_add(v, "C", name);
    if (rc <= 0)
        return rc;
    if (key_has(v, "N", name) || key_has(v, "X", name))
        return 0; /* a changed document, or removed */
    struct store *st = &v->srv->store;
    int64_t id;
    json_t *doc = NULL;
    int err = st->ops->find(st, STORE_CLUSTER, NULL, name, &id);
    if (!err)
        err = st->ops->get(st, STORE_CLUSTER, id, &doc, NULL);
    if (!err)
        err = add_doc(v, STORE_CLUSTER, doc, 0);
    json_decref(doc);
    return err == -ENOENT ? 0 : err;
}

/* Adds stored object `id` (unless changed) and the cluster it is restricted to. */
static int add_object(struct vset *v, int64_t id)
{
    char buf[24];
    if (changed(v, STORE_OBJECT, id) || key_add(v, "O", id_text(buf, id)) == 0)
        return 0;
    struct store *st = &v->srv->store;
    json_t *doc = NULL;
    int err = st->ops->get(st, STORE_OBJECT, id, &doc, NULL);
    if (!err)
        err = add_doc(v, STORE_OBJECT, doc, id);
    const char *cluster = json_string_value(json_object_get(doc, "cluster"));
    if (!err && cluster)
        err = need_cluster(v, cluster);
    json_decref(doc);
    return err == -ENOENT ? 0 : err;
}

/* The stored objects a reference may resolve to: the one named so, and for a number the
 * one with that id (the loader resolves a name first). */
static int need_object(struct vset *v, const json_t *ref)
{
    char text[64];
    if (json_is_integer(ref))
        snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(ref));
    else if (json_is_string(ref) && json_string_length(ref) < sizeof(text))
        snprintf(text, sizeof(text), "%s", json_string_value(ref));
    else
        return 0; /* the loader reports what is wrong with it */
    int rc = key_add(v, "ref", text);
    if (rc <= 0)
        return rc;
    struct store *st = &v->srv->store;
    int64_t id;
    int err = st->ops->find(st, STORE_OBJECT, NULL, text, &id);
    if (!err)
        err = add_object(v, id);
    else if (err == -ENOENT)
        err = 0;
    bool digits = *text;
    for (const char *p = text; *p; p++)
        digits = digits && isdigit((unsigned char)*p);
    if (!err && digits && strlen(text) < 16)
        err = add_object(v, strtoll(text, NULL, 10));
    return err;
}

/* A rule's cluster and the objects it names. */
static int need_rule_refs(struct vset *v, const json_t *rule)
{
    const char *cluster = json_string_value(json_object_get(rule, "cluster"));
    int err = cluster ? need_cluster(v, cluster) : 0;
    if (!err && !is_system(rule))
        err = need_object(v, json_object_get(rule, "source"));
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(rule, "destinations"), i, d)
    {
        if (!err && json_is_object(d) && !is_system(rule))
            err = need_object(v, json_object_get(d, "object"));
    }
    return err;
}

/* The stored rules that name `text` (as an object name or id), with their neighbours. */
static int need_rules_naming(struct vset *v, const char *text)
{
    if (!text || key_add(v, "R", text) <= 0)
        return 0;
    struct store *st = &v->srv->store;
    struct store_query q = {.ref = text, .limit = -1};
    json_t *items = NULL;
    int64_t total;
    int err = st->ops->list(st, STORE_RULE, &q, &items, &total);
    size_t i;
    const json_t *r;
    json_array_foreach(items, i, r)
    {
        int64_t id = json_integer_value(json_object_get(r, "id"));
        if (err || changed(v, STORE_RULE, id) || key_has(v, "X", jstr(r, "cluster")))
            continue;
        char buf[24];
        if (key_add(v, "r", id_text(buf, id)) == 0)
            continue; /* added for another name already */
        err = add_doc(v, STORE_RULE, r, 0);
        if (!err)
            err = need_rule_refs(v, r);
    }
    json_decref(items);
    return err;
}

/* The objects restricted to a cluster that is removed. */
static int need_objects_of(struct vset *v, const char *cluster)
{
    struct store *st = &v->srv->store;
    struct store_query q = {.limit = -1};
    q.filters[q.nfilters++] = (struct store_filter){"cluster", cluster};
    json_t *items = NULL;
    int64_t total;
    int err = st->ops->list(st, STORE_OBJECT, &q, &items, &total);
    for (size_t i = 0; !err && i < json_array_size(items); i++)
        err = add_object(v, json_integer_value(json_object_get(json_array_get(items, i), "id")));
    json_decref(items);
    return err;
}

static int neighbours(struct vset *v, const struct change *c)
{
    char idtext[24];
    snprintf(idtext, sizeof(idtext), "%lld", (long long)c->id);
    if (c->kind == STORE_RULE)
        return c->doc ? need_rule_refs(v, c->doc) : 0;
    if (c->kind == STORE_CLUSTER)
        return c->doc ? 0 : need_objects_of(v, c->name ? c->name : c->cluster);
    /* an object: the rules naming it by its name now, its new name or its id */
    const char *cluster = c->doc ? json_string_value(json_object_get(c->doc, "cluster")) : NULL;
    int err = cluster ? need_cluster(v, cluster) : 0;
    if (!err)
        err = need_rules_naming(v, c->name);
    if (!err && c->doc)
        err = need_rules_naming(v, json_string_value(json_object_get(c->doc, "name")));
    if (!err && c->id)
        err = need_rules_naming(v, idtext);
    return err;
}

/* Notes what the changes replace, define and remove. */
static int note_changes(struct vset *v)
{
    static const char *const idkey[] = {"c", "o", "r"};
    int err = 0;
    char buf[24];
    for (size_t i = 0; !err && i < v->n; i++) {
        const struct change *c = &v->ch[i];
        if (c->id)
            err = key_add(v, idkey[c->kind], id_text(buf, c->id)) < 0 ? -ENOMEM : 0;
        if (!err && c->kind == STORE_CLUSTER) {
            const char *name = c->doc ? jstr(c->doc, "name") : c->name ? c->name : c->cluster;
            err = key_add(v, c->doc ? "N" : "X", name) < 0 ? -ENOMEM : 0;
        }
    }
    return err;
}

static int build_docs(struct vset *v)
{
    int err = note_changes(v);
    for (size_t i = 0; !err && i < v->n; i++) {
        const struct change *c = &v->ch[i];
        if (!c->doc)
            continue;
        v->doc_change[v->nchanged++] = i;
        err = add_doc(v, c->kind, c->doc, c->kind == STORE_OBJECT ? c->id : 0);
    }
    for (size_t i = 0; !err && i < v->n; i++)
        err = neighbours(v, &v->ch[i]);
    return err;
}

/* ---- errors ---- */

/* Splits a message "field: problem" (as finishing errors read) at its field. */
static void split_field(const char *detail, char *field, size_t n, const char **msg)
{
    size_t len = 0;
    while (isalnum((unsigned char)detail[len]) || strchr("_.[]", detail[len]))
        len++;
    field[0] = '\0';
    *msg = detail;
    if (len > 0 && len < n && detail[len] == ':' && detail[len + 1] == ' ') {
        snprintf(field, n, "%.*s", (int)len, detail);
        *msg = detail + len + 2;
    }
}

/* The field to report: a changed document's as is (or documents[i]. in a batch), another's
 * prefixed by its document's name. */
static void field_of(const struct vset *v, bool batch, const struct moat_diag *e, char *out,
                     size_t n, const char **msg)
{
    char own[256];
    *msg = e->detail;
    if (e->field)
        snprintf(own, sizeof(own), "%s", e->field);
    else
        split_field(e->detail, own, sizeof(own), msg);
    const char *ctx = e->ctx ? e->ctx : "";
    long docno = strncmp(ctx, "document ", 9) == 0 ? strtol(ctx + 9, NULL, 10) : 0;
    const char *colon = docno ? strchr(ctx, ':') : NULL;
    const char *name = colon ? colon + 2 : docno ? "" : ctx;
    bool mine = docno >= 1 && (size_t)docno <= v->nchanged;
    if (mine && batch)
        snprintf(out, n, "documents[%zu]%s%s", v->doc_change[docno - 1], *own ? "." : "", own);
    else if (mine || !*name)
        snprintf(out, n, "%s", own);
    else
        snprintf(out, n, "%s%s%s", name, *own ? "." : "", own);
}

static int errors_body(const struct vset *v, bool batch, const struct moat_diags *d,
                       unsigned status, struct resp *rs)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < d->count; i++) {
        char field[512];
        const char *msg;
        field_of(v, batch, &d->items[i], field, sizeof(field), &msg);
        if (errs_add(list, field, "%s", msg) < 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list && d->dropped && errs_add(list, "", "... and %zu more errors", d->dropped) < 0) {
        json_decref(list);
        list = NULL;
    }
    int err = resp_json(rs, status, list ? json_pack("{s:o}", "errors", list) : NULL);
    return err ? err : 1;
}

int validate_changes(struct server *srv, const struct change *ch, size_t n, bool batch,
                     unsigned status, struct resp *rs, struct moat_policy **policy)
{
    struct vset v = {.srv = srv, .ch = ch, .n = n, .docs = json_array()};
    v.doc_change = calloc(n ? n : 1, sizeof(*v.doc_change));
    int err = v.docs && v.doc_change ? build_docs(&v) : -ENOMEM;
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    if (!err)
        err = policy_load_json(&p, v.docs, "api.json", &d);
    json_decref(v.docs);
    if (err == -EINVAL)
        err = errors_body(&v, batch, &d, status, rs);
    diags_clear(&d);
    free(v.doc_change);
    strset_clear(&v.keys);
    if (!err && policy)
        *policy = p;
    else
        policy_free(p);
    return err;
}

int validate_change(struct server *srv, const struct change *ch, unsigned status, struct resp *rs,
                    struct moat_policy **policy)
{
    return validate_changes(srv, ch, 1, false, status, rs, policy);
}
