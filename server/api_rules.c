/*
 * api_rules: /api/v1/clusters/{cluster}/rules — defense rules (SPEC §3) of
 * one cluster: create, list (filters name, enabled, action, protocol, type,
 * id, source, destination, port; paged), get, replace, change (merge
 * patch), delete, and batch enable/disable. System rules can be switched on
 * and off (and their description changed) but not otherwise changed or
 * deleted (409).
 */
#include "audit.h"
#include "fleet.h"
#include "server.h"
#include "validate.h"

#include "canon.h"
#include "jsonpatch.h"
#include "loader.h"
#include "ports.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDS_MAX 1000

/* The store answers the first five; the others are matched here (struct rule_match). */
static const char *const filters[] = {"name", "enabled", "action",      "protocol", "type",
                                      "id",   "source",  "destination", "port",     NULL};
#define STORE_ANSWERS 5

/* A response was set: 1, or the error that kept it from being set. */
static int stop(int err)
{
    return err < 0 ? err : 1;
}

static bool is_system(const json_t *doc)
{
    return strcmp(jstr(doc, "type"), "system") == 0;
}

/* What `in_effect` needs to know about the path's cluster, read once per request. */
struct effect {
    json_int_t nodes, enforcing;
    bool defense_on;
};

/* Reads the path cluster's node counts and defense switch into *ef. 0 or a store error. */
static int effect_load(struct req *rq, struct effect *ef)
{
    struct store *st = &rq->srv->store;
    json_t *cluster = NULL;
    int64_t id, enforcing, nodes;
    int err = fleet_health(rq->srv, rq->params[0], NULL, &enforcing, &nodes);
    if (!err)
        err = st->ops->find(st, STORE_CLUSTER, NULL, rq->params[0], &id);
    if (!err)
        err = st->ops->get(st, STORE_CLUSTER, id, &cluster, NULL);
    if (!err) {
        ef->nodes = nodes;
        ef->enforcing = enforcing;
        ef->defense_on = strcmp(jstr(cluster, "defense"), "on") == 0;
    }
    json_decref(cluster);
    return err;
}

/*
 * Sets `in_effect` {"nodes": k, "of": n}: a rule takes effect on the
 * cluster's enforcing nodes when it is enabled and the cluster's defense is on.
 */
static int effect_set(const struct effect *ef, json_t *rule)
{
    bool on = ef->defense_on && json_is_true(json_object_get(rule, "enabled"));
    return json_object_set_new(rule, "in_effect",
                               json_pack("{s:I,s:I}", "nodes", on ? ef->enforcing : (json_int_t)0,
                                         "of", ef->nodes)) < 0
               ? -ENOMEM
               : 0;
}

/* effect_load + effect_set for one rule. */
static int in_effect(struct req *rq, json_t *rule)
{
    struct effect ef;
    int err = effect_load(rq, &ef);
    return err ? err : effect_set(&ef, rule);
}

/*
 * The filters the store cannot answer, matched over every rule that the
 * store's filters pass: `id` (one id or a list "1,2,3"), `source` and
 * `destination` (an object, by name or id: a rule naming it either way
 * passes) and `port` (a destination whose port ranges contain the port; a
 * destination without ports contains every port). With both `destination`
 * and `port`, one destination must have both.
 */
struct object_ref {
    bool given, known; /* known: the object exists (else no rule names it) */
    char *name;
    int64_t id;
    bool id_is_a_name; /* an object is named "<id>", so a string "<id>" means that one */
};

struct rule_match {
    int64_t *ids; /* sorted; NULL = no id filter */
    size_t nids;
    struct object_ref source, destination;
    unsigned port; /* 0 = no port filter */
};

static bool match_any(const struct rule_match *m)
{
    return m->ids || m->source.given || m->destination.given || m->port;
}

static void match_clear(struct rule_match *m)
{
    free(m->ids);
    free(m->source.name);
    free(m->destination.name);
}

/* Adds {field, message} to `errs`: 0 or -ENOMEM. */
static int add_error(json_t *errs, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_array_append_new(errs, json_pack("{s:s,s:s}", "field", field, "message", msg)) < 0
               ? -ENOMEM
               : 0;
}

/* s[0..n) as an integer lo..hi (decimal digits only). */
static bool parse_int(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v = 0;
    if (n < 1 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return v >= lo && v <= hi;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ?id=N or ?id=N,N,...: 0 (bad values are added to errs) or -ENOMEM. */
static int ids_init(const struct req *rq, struct rule_match *m, json_t *errs)
{
    const char *v = req_query(rq, "id");
    if (!v)
        return 0;
    size_t n = 1;
    for (const char *p = v; *p; p++)
        n += *p == ',';
    if (n > IDS_MAX)
        return add_error(errs, "id", "%zu ids given, at most %d are allowed", n, IDS_MAX);
    m->ids = calloc(n, sizeof(*m->ids));
    if (!m->ids)
        return -ENOMEM;
    for (const char *p = v;; p++) {
        size_t len = strcspn(p, ",");
        if (!parse_int(p, len, 1, INT64_MAX, &m->ids[m->nids++]))
            return add_error(errs, "id",
                             "\"%.*s\" is not a rule id (an integer from 1; several: 1,2,3)",
                             (int)(len < 40 ? len : 40), p);
        p += len;
        if (!*p)
            break;
    }
    qsort(m->ids, m->nids, sizeof(*m->ids), cmp_id);
    return 0;
}

/* ?port=N: 0 (a bad value is added to errs) or -ENOMEM. */
static int port_init(const struct req *rq, struct rule_match *m, json_t *errs)
{
    const char *v = req_query(rq, "port");
    int64_t port;
    if (!v)
        return 0;
    if (!parse_int(v, strlen(v), 1, 65535, &port))
        return add_error(errs, "port", "\"%.40s\" is not a port (1..65535)", v);
    m->port = (unsigned)port;
    return 0;
}

/* The built-in objects, ids 1..3 in this order (lib/loader.c); cluster-dns may be redefined. */
static const char *const builtins[] = {"any", "host", "cluster-dns"};

/* The object called `name` (stored, else built in): 0 with *id, -ENOENT, or an error. */
static int object_by_name(struct store *st, const char *name, int64_t *id)
{
    int err = st->ops->find(st, STORE_OBJECT, NULL, name, id);
    for (int i = 0; err == -ENOENT && i < 3; i++) {
        if (strcmp(name, builtins[i]) == 0) {
            *id = i + 1;
            err = 0;
        }
    }
    return err;
}

/* The name of object `id` into *name (caller frees): 0, -ENOENT, or an error. */
static int object_by_id(struct store *st, int64_t id, char **name)
{
    json_t *doc = NULL;
    int64_t other;
    int err = st->ops->get(st, STORE_OBJECT, id, &doc, NULL);
    if (!err)
        *name = strdup(jstr(doc, "name"));
    json_decref(doc);
    if (err != -ENOENT || id < 1 || id > 3)
        return !err && !*name ? -ENOMEM : err;
    /* a built-in, unless the user's own object of that name replaced it */
    err = st->ops->find(st, STORE_OBJECT, NULL, builtins[id - 1], &other);
    if (err != -ENOENT)
        return err ? err : -ENOENT;
    *name = strdup(builtins[id - 1]);
    return *name ? 0 : -ENOMEM;
}

/*
 * ?key=OBJECT (`source`, `destination`): the object named so, else the one
 * with that id, as the loader resolves references. An unknown object is
 * not an error: no rule names it. 0 (an empty value is added to errs) or an error.
 */
static int ref_init(const struct req *rq, const char *key, struct object_ref *o, json_t *errs)
{
    struct store *st = &rq->srv->store;
    const char *v = req_query(rq, key);
    if (!v)
        return 0;
    o->given = true;
    if (!*v)
        return add_error(errs, key, "must be an object name or id");
    int err = object_by_name(st, v, &o->id);
    if (!err)
        err = (o->name = strdup(v)) ? 0 : -ENOMEM;
    else if (err == -ENOENT && parse_int(v, strlen(v), 1, INT64_MAX, &o->id))
        err = object_by_id(st, o->id, &o->name);
    if (err)
        return err == -ENOENT ? 0 : err;
    o->known = true;
    char idtext[24];
    int64_t other;
    snprintf(idtext, sizeof(idtext), "%lld", (long long)o->id);
    err = object_by_name(st, idtext, &other);
    o->id_is_a_name = !err;
    return err == -ENOENT ? 0 : err;
}

/* Reads the query's filters into *m: 0, 1 with 400 set (naming each bad one), or an error. */
static int match_init(const struct req *rq, struct resp *rs, struct rule_match *m)
{
    json_t *errs = json_array();
    int err = errs ? ids_init(rq, m, errs) : -ENOMEM;
    if (!err)
        err = ref_init(rq, "source", &m->source, errs);
    if (!err)
        err = ref_init(rq, "destination", &m->destination, errs);
    if (!err)
        err = port_init(rq, m, errs);
    if (err || json_array_size(errs) == 0) {
        json_decref(errs);
        return err;
    }
    return stop(resp_json(rs, 400, json_pack("{s:o}", "errors", errs)));
}

/* True when a rule's object reference `ref` (a name, an id, or an id as a string) names o. */
static bool refers(const struct object_ref *o, const json_t *ref)
{
    char idtext[24];
    if (!o->known)
        return false;
    if (json_is_integer(ref))
        return json_integer_value(ref) == o->id;
    const char *s = json_string_value(ref);
    snprintf(idtext, sizeof(idtext), "%lld", (long long)o->id);
    return s && (strcmp(s, o->name) == 0 || (!o->id_is_a_name && strcmp(s, idtext) == 0));
}

/* One entry of a destination's `ports`: a port, or "lo/hi" ranges separated by commas. */
static bool port_entry_has(const json_t *entry, unsigned port)
{
    char buf[512], why[160];
    const char *s = json_string_value(entry);
    if (json_is_integer(entry))
        return json_integer_value(entry) == (json_int_t)port;
    if (!s || strlen(s) >= sizeof(buf))
        return false;
    snprintf(buf, sizeof(buf), "%s", s);
    char *rest = NULL;
    for (char *tok = strtok_r(buf, ",", &rest); tok; tok = strtok_r(NULL, ",", &rest)) {
        struct port_range r;
        if (port_range_parse(tok, &r, why, sizeof(why)) == 0 && r.lo <= port && port <= r.hi)
            return true;
    }
    return false;
}

/* True when a destination's `ports` as stored contain `port` (none given: every port). */
static bool ports_have(const json_t *ports, unsigned port)
{
    size_t i;
    const json_t *e;
    if (!ports || json_is_null(ports) || (json_is_array(ports) && json_array_size(ports) == 0))
        return true;
    if (!json_is_array(ports))
        return port_entry_has(ports, port);
    json_array_foreach(ports, i, e)
    {
        if (port_entry_has(e, port))
            return true;
    }
    return false;
}

static bool rule_matches(const struct rule_match *m, const json_t *rule)
{
    int64_t id = json_integer_value(json_object_get(rule, "id"));
    if (m->ids && !bsearch(&id, m->ids, m->nids, sizeof(*m->ids), cmp_id))
        return false;
    if (m->source.given && !refers(&m->source, json_object_get(rule, "source")))
        return false;
    if (!m->destination.given && !m->port)
        return true;
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(rule, "destinations"), i, d)
    {
        if ((!m->destination.given || refers(&m->destination, json_object_get(d, "object"))) &&
            (!m->port || ports_have(json_object_get(d, "ports"), m->port)))
            return true;
    }
    return false;
}

/* Keeps the items that pass `m`, then the page limit/offset of them; *total = how many passed. */
static int match_page(const struct rule_match *m, json_t **items, int64_t limit, int64_t offset,
                      int64_t *total)
{
    json_t *page = json_array();
    int err = page ? 0 : -ENOMEM;
    int64_t n = 0;
    for (size_t i = 0; !err && i < json_array_size(*items); i++) {
        json_t *r = json_array_get(*items, i);
        if (!rule_matches(m, r))
            continue;
        if (n >= offset && n - offset < limit && json_array_append(page, r) < 0)
            err = -ENOMEM;
        n++;
    }
    json_decref(*items);
    *items = page; /* the caller releases it, also on error */
    *total = n;
    return err;
}

int api_rules_list(struct req *rq, struct resp *rs)
{
    struct store_query q = {.cluster = rq->params[0]};
    struct rule_match m = {0};
    static const char *const booleans[] = {"true", "false", NULL};
    static const char *const actions[] = {"block", "alert", "allow", NULL};
    static const char *const protocols[] = {"tcp", "udp", "any", NULL};
    static const char *const types[] = {"custom", "suggested", "system", NULL};
    static const struct query_enum enums[] = {{"enabled", booleans},
                                              {"action", actions},
                                              {"protocol", protocols},
                                              {"type", types},
                                              {NULL, NULL}};
    int rc = req_cluster_check(rq, rs);
    if (!rc)
        rc = req_query_check(rq, rs, filters, true, &q);
    if (!rc)
        rc = req_query_enums(rq, rs, enums);
    if (!rc)
        rc = match_init(rq, rs, &m);
    if (rc) {
        match_clear(&m);
        return rc < 0 ? rc : 0;
    }
    /* the store answers its own filters; the rest are matched here over all it passes */
    size_t kept = 0;
    for (size_t i = 0; i < q.nfilters; i++)
        for (size_t k = 0; k < STORE_ANSWERS; k++)
            if (strcmp(q.filters[i].field, filters[k]) == 0)
                q.filters[kept++] = q.filters[i];
    q.nfilters = kept;
    int64_t limit = q.limit, offset = q.offset;
    if (match_any(&m)) {
        q.limit = -1;
        q.offset = 0;
    }
    json_t *items = NULL;
    int64_t total;
    struct effect ef;
    int err = effect_load(rq, &ef);
    if (!err)
        err = rq->srv->store.ops->list(&rq->srv->store, STORE_RULE, &q, &items, &total);
    if (!err && match_any(&m))
        err = match_page(&m, &items, limit, offset, &total);
    match_clear(&m);
    for (size_t i = 0; !err && i < json_array_size(items); i++)
        err = effect_set(&ef, json_array_get(items, i));
    if (err) {
        json_decref(items);
        return err;
    }
    return resp_json(rs, 200, list_body(items, total));
}

/* The rule `id` of the path's cluster: 0, 1 with 404 set, or an error. */
static int load_id(struct req *rq, struct resp *rs, int64_t id, json_t **doc)
{
    char *cluster = NULL;
    *doc = NULL;
    int err = rq->srv->store.ops->get(&rq->srv->store, STORE_RULE, id, doc, &cluster);
    if (!err && (!cluster || strcmp(cluster, rq->params[0]) != 0)) {
        json_decref(*doc);
        *doc = NULL;
        err = -ENOENT;
    }
    free(cluster);
    if (err == -ENOENT)
        return resp_error(rs, 404, "", "no rule %lld in cluster \"%s\"", (long long)id,
                          rq->params[0]) < 0
                   ? -ENOMEM
                   : 1;
    return err;
}

static int load(struct req *rq, struct resp *rs, json_t **doc, int64_t *id)
{
    *doc = NULL;
    int rc = req_cluster_check(rq, rs);
    if (rc)
        return rc;
    if (!req_param_id(rq, 1, id))
        return resp_error(rs, 404, "", "no rule %s", rq->params[1]) < 0 ? -ENOMEM : 1;
    return load_id(rq, rs, *id, doc);
}

int api_rules_get(struct req *rq, struct resp *rs)
{
    json_t *doc;
    int64_t id;
    int rc = load(rq, rs, &doc, &id);
    if (rc)
        return rc < 0 ? rc : 0;
    int err = in_effect(rq, doc);
    if (err) {
        json_decref(doc);
        return err;
    }
    return resp_json(rs, 200, doc);
}

/* The body with the path's cluster: 0, or 1 with 400 set when it names another. */
static int set_cluster(struct req *rq, struct resp *rs, json_t *doc)
{
    const json_t *c = json_object_get(doc, "cluster");
    if (c && (!json_is_string(c) || strcmp(json_string_value(c), rq->params[0]) != 0))
        return resp_error(rs, 400, "cluster", "must be \"%s\" (the cluster in the path)",
                          rq->params[0]) < 0
                   ? -ENOMEM
                   : 1;
    return json_object_set_new(doc, "cluster", json_string(rq->params[0])) < 0 ? -ENOMEM : 0;
}

static int check_name(struct req *rq, struct resp *rs, const json_t *doc, int64_t id)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    int64_t other;
    int err =
        name ? rq->srv->store.ops->find(&rq->srv->store, STORE_RULE, rq->params[0], name, &other)
             : -ENOENT;
    if (err == -ENOENT || (!err && other == id))
        return 0;
    if (err)
        return err;
    return resp_error(rs, 409, "name", "rule \"%s\" exists in cluster \"%s\"", name,
                      rq->params[0]) < 0
               ? -ENOMEM
               : 1;
}

/* Settles `doc` (rule of `cluster`) from the loaded policy p (lib/canon.h). */
static int settle(json_t *doc, const struct moat_policy *p, const char *cluster)
{
    struct canon *c;
    int err = canon_new(p, &c);
    if (!err)
        err = canon_rule(c, doc, cluster);
    canon_free(c);
    return err;
}

/*
 * Validates and stores `doc` as rule `id` (0 = new; `before` its stored
 * document). `checked` is what the loader sees as the request's document:
 * the rule itself, or for a system rule the body alone (a file may only
 * switch a system rule).
 */
static int save(struct req *rq, struct resp *rs, json_t *doc, const json_t *checked, int64_t id,
                const json_t *before)
{
    struct store *st = &rq->srv->store;
    int rc = check_name(rq, rs, doc, id);
    if (rc)
        return rc < 0 ? rc : 0;
    struct change ch = {.kind = STORE_RULE, .id = id, .doc = checked, .cluster = rq->params[0]};
    struct moat_policy *p = NULL;
    rc = validate_change(rq->srv, &ch, 400, rs, &p);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = settle(doc, p, rq->params[0]);
    policy_free(p);
    int64_t newid = id;
    if (!rc && id)
        rc = st->ops->update(st, STORE_RULE, id, jstr(doc, "name"), doc);
    else if (!rc)
        rc = st->ops->insert(st, STORE_RULE, rq->params[0], jstr(doc, "name"), doc, &newid);
    if (!rc)
        rc = json_object_set_new(doc, "id", json_integer(newid)) < 0 ? -ENOMEM : 0;
    if (!rc)
        rc = audit_record(rq, id ? "update" : "create", "rule", rq->params[0], jstr(doc, "name"),
                          newid, before, doc);
    if (!rc)
        rc = resp_json(rs, id ? 200 : 201, json_incref(doc));
    return resp_store_error(rs, rc, "rule");
}

/* 1 with 400 set when a new or custom rule's document says it is a system rule. */
static int refuse_system_type(struct resp *rs, const json_t *doc)
{
    if (!is_system(doc))
        return 0;
    return stop(resp_error(rs, 400, "type",
                           "only the built-in rules allow-host and allow-cluster-dns are system "
                           "rules: custom or suggested"));
}

static int create(struct req *rq, struct resp *rs, json_t *doc)
{
    int rc = refuse_system_type(rs, doc);
    if (!rc)
        rc = req_cluster_check(rq, rs);
    if (!rc)
        rc = set_cluster(rq, rs, doc);
    if (rc)
        return rc < 0 ? rc : 0;
    return save(rq, rs, doc, doc, 0, NULL);
}

/* POST: the body is a new document (the write_doc signature; `patch` is unused). */
static int create_doc(struct req *rq, struct resp *rs, json_t *doc, bool patch)
{
    (void)patch;
    return create(rq, rs, doc);
}

int api_rules_create(struct req *rq, struct resp *rs)
{
    return write_doc(rq, rs, "DefenseRule", create_doc, false);
}

/*
 * A system rule: the body (with cluster, name and the switch it leaves as it
 * is) is checked, then merged in. It keeps its name.
 */
static int change_system(struct req *rq, struct resp *rs, json_t *doc, json_t *body, int64_t id,
                         const json_t *before)
{
    const json_t *name = json_object_get(body, "name");
    if (name && !json_equal(name, json_object_get(doc, "name")))
        return resp_error(rs, 400, "name", "\"%s\" is a system rule: it cannot be renamed",
                          jstr(doc, "name"));
    json_t *checked = json_deep_copy(body);
    int rc = checked ? set_cluster(rq, rs, checked) : -ENOMEM;
    if (!rc && json_object_set(checked, "name", json_object_get(doc, "name")) < 0)
        rc = -ENOMEM;
    if (!rc && !json_object_get(body, "enabled") &&
        json_object_set(checked, "enabled", json_object_get(doc, "enabled")) < 0)
        rc = -ENOMEM;
    json_object_del(body, "cluster");
    if (!rc)
        rc = json_merge_patch(doc, body);
    if (!rc)
        rc = save(rq, rs, doc, checked, id, before);
    json_decref(checked);
    return rc < 0 ? rc : 0;
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
    if (!before) {
        rc = -ENOMEM;
    } else if (is_system(doc)) {
        rc = change_system(rq, rs, doc, body, id, before);
    } else {
        rc = doc_apply_body(&doc, body, patch);
        if (!rc)
            rc = refuse_system_type(rs, doc);
        if (!rc)
            rc = set_cluster(rq, rs, doc);
        if (!rc)
            rc = save(rq, rs, doc, doc, id, before);
    }
    json_decref(doc);
    json_decref(before);
    return rc < 0 ? rc : 0;
}

static int put_or_patch(struct req *rq, struct resp *rs, bool patch)
{
    return write_doc(rq, rs, "DefenseRule", change, patch);
}

int api_rules_replace(struct req *rq, struct resp *rs)
{
    return put_or_patch(rq, rs, false);
}

int api_rules_patch(struct req *rq, struct resp *rs)
{
    return put_or_patch(rq, rs, true);
}

static int remove_rule(struct req *rq, struct resp *rs)
{
    json_t *doc;
    int64_t id;
    int rc = load(rq, rs, &doc, &id);
    if (rc)
        return rc < 0 ? rc : 0;
    if (is_system(doc)) {
        json_decref(doc);
        return resp_error(rs, 409, "", "system rules cannot be deleted; disable them instead");
    }
    rc = rq->srv->store.ops->remove(&rq->srv->store, STORE_RULE, id);
    if (!rc)
        rc = audit_record(rq, "delete", "rule", rq->params[0], jstr(doc, "name"), id, doc, NULL);
    if (!rc)
        rs->status = 204;
    json_decref(doc);
    return resp_store_error(rs, rc, "rule");
}

int api_rules_delete(struct req *rq, struct resp *rs)
{
    int err = txn_begin(rq);
    if (!err)
        err = txn_end(rq, remove_rule(rq, rs), rs);
    return err;
}

/* The batch body {"ids": [1..1000 ids], "enabled": bool}: 0, or 1 with 400 set. */
static int batch_body(struct resp *rs, const json_t *body, const json_t **ids, bool *enabled)
{
    const char *key;
    const char *unknown = NULL;
    const json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "ids") != 0 && strcmp(key, "enabled") != 0)
            unknown = key;
    }
    if (unknown)
        return stop(resp_error(rs, 400, unknown, "unknown field"));
    *ids = json_object_get(body, "ids");
    const json_t *en = json_object_get(body, "enabled");
    if (!json_is_array(*ids) || json_array_size(*ids) < 1 || json_array_size(*ids) > 1000)
        return stop(resp_error(rs, 400, "ids", "required: a list of 1-1000 rule ids"));
    for (size_t i = 0; i < json_array_size(*ids); i++) {
        v = json_array_get(*ids, i);
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return stop(resp_error(rs, 400, "ids", "ids[%zu] is not a rule id", i));
        for (size_t j = 0; j < i; j++)
            if (json_equal(v, json_array_get(*ids, j)))
                return stop(resp_error(rs, 400, "ids", "ids[%zu]: rule %lld is listed twice", i,
                                       (long long)json_integer_value(v)));
    }
    if (!en)
        return stop(resp_error(rs, 400, "enabled", "required: true or false"));
    if (!json_is_boolean(en))
        return stop(resp_error(rs, 400, "enabled", "must be true or false"));
    *enabled = json_is_true(en);
    return 0;
}

static int batch(struct req *rq, struct resp *rs, const json_t *ids, bool enabled)
{
    struct store *st = &rq->srv->store;
    size_t n = json_array_size(ids);
    json_t *items = json_array(), *befores = json_array();
    struct change *ch = calloc(n ? n : 1, sizeof(*ch));
    int rc = items && befores && ch ? req_cluster_check(rq, rs) : -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *doc;
        int64_t id = json_integer_value(json_array_get(ids, i));
        rc = load_id(rq, rs, id, &doc);
        if (rc)
            break;
        rc = json_array_append(befores, doc) < 0 ? -ENOMEM : 0;
        json_t *after = rc ? NULL : json_deep_copy(doc);
        json_decref(doc);
        json_object_del(after, "id");
        if (!rc && (!after || json_object_set_new(after, "enabled", json_boolean(enabled)) < 0 ||
                    json_array_append_new(items, after) < 0))
            rc = -ENOMEM;
        ch[i] =
            (struct change){.kind = STORE_RULE, .id = id, .doc = after, .cluster = rq->params[0]};
    }
    if (!rc)
        rc = validate_changes(rq->srv, ch, n, false, 400, rs, NULL);
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *doc = json_array_get(items, i);
        int64_t id = ch[i].id;
        rc = st->ops->update(st, STORE_RULE, id, jstr(doc, "name"), doc);
        if (!rc)
            rc = json_object_set_new(doc, "id", json_integer(id)) < 0 ? -ENOMEM : 0;
        if (!rc)
            rc = audit_record(rq, "update", "rule", rq->params[0], jstr(doc, "name"), id,
                              json_array_get(befores, i), doc);
    }
    free(ch);
    json_decref(befores);
    if (!rc)
        return resp_json(rs, 200, list_body(items, (int64_t)n));
    json_decref(items);
    return rc < 0 ? rc : 0;
}

int api_rules_batch(struct req *rq, struct resp *rs)
{
    json_t *body;
    const json_t *ids;
    bool enabled;
    int rc = req_body_object(rq, rs, &body);
    if (!rc)
        rc = batch_body(rs, body, &ids, &enabled);
    if (!rc) {
        rc = txn_begin(rq);
        if (!rc)
            rc = txn_end(rq, batch(rq, rs, ids, enabled), rs);
    }
    json_decref(body);
    return rc < 0 ? rc : 0;
}
