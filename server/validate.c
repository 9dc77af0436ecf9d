/* validate: API changes checked by libmoat's loader (see validate.h). */
#include "validate.h"

#include "diag.h"
#include "loader.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"Cluster", "NetworkObject", "DefenseRule"};

/* Appends a copy of `doc` with kind set and "id" kept only for objects. */
static int add_doc(json_t *docs, enum store_kind k, const json_t *doc, bool keep_id)
{
    json_t *d = json_deep_copy(doc);
    if (!d)
        return -ENOMEM;
    if (!keep_id)
        json_object_del(d, "id");
    if (json_object_set_new(d, "kind", json_string(kind_names[k])) < 0 ||
        json_array_append_new(docs, d) < 0)
        return -ENOMEM;
    return 0;
}

/* A system rule goes to the loader as a file would name it: only its switch. */
static int add_system_rule(json_t *docs, const json_t *doc)
{
    json_t *d = json_pack("{s:s,s:O?,s:O?,s:O?}", "kind", "DefenseRule", "cluster",
                          json_object_get(doc, "cluster"), "name", json_object_get(doc, "name"),
                          "enabled", json_object_get(doc, "enabled"));
    return d && json_array_append_new(docs, d) == 0 ? 0 : -ENOMEM;
}

static bool skipped(const struct change *ch, enum store_kind k, const json_t *doc)
{
    if (ch->kind == k && ch->id && json_integer_value(json_object_get(doc, "id")) == ch->id)
        return true;
    return k == STORE_RULE && ch->kind == STORE_CLUSTER && !ch->doc && ch->cluster &&
           strcmp(jstr(doc, "cluster"), ch->cluster) == 0;
}

static int add_stored(struct server *srv, json_t *docs, enum store_kind k, const struct change *ch)
{
    struct store_query q = {.limit = -1};
    json_t *items;
    int64_t total;
    int err = srv->store.ops->list(&srv->store, k, &q, &items, &total);
    if (err)
        return err;
    size_t i;
    json_t *doc;
    json_array_foreach(items, i, doc)
    {
        if (skipped(ch, k, doc))
            continue;
        const char *type = json_string_value(json_object_get(doc, "type"));
        if (k == STORE_RULE && type && strcmp(type, "system") == 0)
            err = add_system_rule(docs, doc);
        else
            err = add_doc(docs, k, doc, k == STORE_OBJECT);
        if (err)
            break;
    }
    json_decref(items);
    return err;
}

/* The documents of the changed state, the request's own first. */
static int build_docs(struct server *srv, const struct change *ch, json_t **out)
{
    json_t *docs = json_array();
    int err = docs ? 0 : -ENOMEM;
    if (!err && ch->doc) {
        const char *type = json_string_value(json_object_get(ch->doc, "type"));
        bool sys = ch->kind == STORE_RULE && type && strcmp(type, "system") == 0;
        err = sys ? add_system_rule(docs, ch->doc) : add_doc(docs, ch->kind, ch->doc, true);
        if (!err && ch->kind == STORE_OBJECT && ch->id)
            err = json_object_set_new(json_array_get(docs, 0), "id", json_integer(ch->id)) < 0
                      ? -ENOMEM
                      : 0;
    }
    for (int k = STORE_CLUSTER; !err && k <= STORE_RULE; k++)
        err = add_stored(srv, docs, (enum store_kind)k, ch);
    if (err) {
        json_decref(docs);
        return err;
    }
    *out = docs;
    return 0;
}

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

/* The field to report: as is in the request's document, else prefixed by its document. */
static void field_of(const struct moat_diag *e, char *out, size_t n, const char **msg)
{
    char own[128];
    *msg = e->detail;
    if (e->field)
        snprintf(own, sizeof(own), "%s", e->field);
    else
        split_field(e->detail, own, sizeof(own), msg);
    const char *ctx = e->ctx ? e->ctx : "";
    bool mine = strncmp(ctx, "document 1:", 11) == 0 || strcmp(ctx, "document 1") == 0;
    const char *colon = strncmp(ctx, "document ", 9) == 0 ? strchr(ctx, ':') : NULL;
    if (colon)
        ctx = colon + 2;
    if (mine || !*ctx)
        snprintf(out, n, "%s", own);
    else
        snprintf(out, n, "%s%s%s", ctx, *own ? "." : "", own);
}

static int errors_body(const struct moat_diags *d, unsigned status, struct resp *rs)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < d->count; i++) {
        char field[256];
        const char *msg;
        field_of(&d->items[i], field, sizeof(field), &msg);
        if (json_array_append_new(list, json_pack("{s:s,s:s}", "field", field, "message", msg))) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    int err = resp_json(rs, status, list ? json_pack("{s:o}", "errors", list) : NULL);
    return err ? err : 1;
}

int validate_change(struct server *srv, const struct change *ch, unsigned status, struct resp *rs,
                    struct moat_policy **policy)
{
    json_t *docs;
    int err = build_docs(srv, ch, &docs);
    if (err)
        return err;
    char *text = json_dumps(docs, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(docs);
    if (!text)
        return -ENOMEM;
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    err = policy_load_text(&p, text, strlen(text), "api.json", &d);
    free(text);
    if (err == -EINVAL)
        err = errors_body(&d, status, rs);
    diags_clear(&d);
    if (!err && policy)
        *policy = p;
    else
        policy_free(p);
    return err;
}

int canon_cluster(json_t *doc, const struct moat_policy *p)
{
    uint32_t i = policy_find_cluster(p, jstr(doc, "name"));
    if (i == MOAT_NONE)
        return -ENOENT;
    const struct moat_cluster *c = &p->clusters[i];
    int rc = json_object_set_new(doc, "defense", json_string(c->defense ? "on" : "off"));
    rc |= json_object_set_new(doc, "mode", json_string(mode_name(c->mode)));
    rc |= json_object_set_new(doc, "default_action", json_string(action_name(c->default_action)));
    return rc ? -ENOMEM : 0;
}

int canon_rule(json_t *doc, const struct moat_policy *p, const char *cluster)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    for (size_t i = 0; name && i < p->nrules; i++) {
        const struct moat_rule *r = &p->rules[i];
        if (strcmp(r->name, name) != 0 || strcmp(r->cluster_ref, cluster) != 0)
            continue;
        int rc = json_object_set_new(doc, "enabled", json_boolean(r->enabled));
        rc |= json_object_set_new(doc, "protocol", json_string(proto_name(r->proto)));
        rc |= json_object_set_new(doc, "action", json_string(action_name(r->action)));
        rc |= json_object_set_new(doc, "priority", json_integer(r->priority));
        rc |= json_object_set_new(doc, "type", json_string(rule_type_name(r->type)));
        return rc ? -ENOMEM : 0;
    }
    return -ENOENT;
}
