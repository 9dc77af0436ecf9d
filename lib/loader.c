/* loader: documents into a validated policy (see loader.h). */
#include "loader.h"
#include "mem.h"
#include "pattern.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* State while loading one document. */
struct ld {
    struct moat_policy *p;
    struct moat_diags *d;
    const char *file; /* owned by p->files */
    bool json;
    int docno;
    int doc_line;
    char ctx[200];
    char path[64]; /* prefix of field names inside nested maps: "detections.spoofing." */
    int errors;
    int err; /* -ENOMEM once memory ran out */
};

static void bad(struct ld *l, const struct doc_node *at, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void bad(struct ld *l, const struct doc_node *at, const char *field, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line = at && at->line ? at->line : l->doc_line;
    if (field && *field) {
        char full[160];
        snprintf(full, sizeof(full), "%s%s", l->path, field);
        diags_add_field(l->d, l->file, line, l->ctx, full, "%s", msg);
    } else
        diags_add(l->d, l->file, line, l->ctx, "%s", msg);
    l->errors++;
}

static void oom(struct ld *l)
{
    l->err = -ENOMEM;
}

/* Keeps an allocation result; notes OOM when it failed. */
static char *keep(struct ld *l, char *s)
{
    if (!s)
        oom(l);
    return s;
}

static bool is_scalar(const struct doc_node *n)
{
    return n && n->type == DOC_SCALAR && n->kind != DOC_NULL;
}

static void check_fields(struct ld *l, const struct doc_node *map, const char *const *known)
{
    for (size_t i = 0; i < map->count; i++) {
        const char *k = map->keys[i]->text;
        bool found = false;
        for (const char *const *f = known; *f && !found; f++)
            found = strcmp(*f, k) == 0;
        if (!found)
            bad(l, map->keys[i], k, "unknown field");
    }
}

/* A string field. Returns the node's text (not copied) or NULL when absent/invalid. */
static const char *get_str(struct ld *l, const struct doc_node *map, const char *key, bool required)
{
    const struct doc_node *n = doc_map_get(map, key);
    if (!n || (n->type == DOC_SCALAR && n->kind == DOC_NULL)) {
        if (required)
            bad(l, map, key, "required");
        return NULL;
    }
    if (n->type != DOC_SCALAR || n->kind == DOC_BOOL || n->kind == DOC_FLOAT) {
        bad(l, n, key, "must be a string, not %s", doc_type_name(n));
        return NULL;
    }
    if (!n->text[0]) {
        bad(l, n, key, "must not be empty");
        return NULL;
    }
    return n->text;
}

static char *dup_str(struct ld *l, const struct doc_node *map, const char *key, bool required)
{
    const char *s = get_str(l, map, key, required);
    return s ? keep(l, moat_strdup(s)) : NULL;
}

/* Parses a non-negative integer scalar; false when it is not one (a quoted "5" is a string). */
static bool scalar_uint(const struct doc_node *n, unsigned long long *out)
{
    if (!is_scalar(n) || n->kind != DOC_INT)
        return false;
    const char *s = n->text;
    if (!isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return !*end && errno == 0;
}

static bool get_uint(struct ld *l, const struct doc_node *map, const char *key, unsigned long lo,
                     unsigned long hi, bool required, uint32_t *out)
{
    const struct doc_node *n = doc_map_get(map, key);
    if (!n || (n->type == DOC_SCALAR && n->kind == DOC_NULL)) {
        if (required)
            bad(l, map, key, "required (an integer %lu..%lu)", lo, hi);
        return false;
    }
    unsigned long long v;
    if (!scalar_uint(n, &v)) {
        bad(l, n, key, "must be an integer %lu..%lu, not %s%s%s%s", lo, hi, doc_type_name(n),
            is_scalar(n) ? " \"" : "", is_scalar(n) ? n->text : "", is_scalar(n) ? "\"" : "");
        return false;
    }
    if (v < lo || v > hi) {
        bad(l, n, key, "%llu is out of range %lu..%lu", v, lo, hi);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static void get_bool(struct ld *l, const struct doc_node *map, const char *key, bool *out)
{
    const struct doc_node *n = doc_map_get(map, key);
    if (!n)
        return;
    if (n->type == DOC_SCALAR && (n->kind == DOC_BOOL || n->kind == DOC_STR)) {
        static const char *const t[] = {"true", "on", "yes", NULL};
        static const char *const f[] = {"false", "off", "no", NULL};
        for (int i = 0; t[i]; i++) {
            if (strcmp(n->text, t[i]) == 0) {
                *out = true;
                return;
            }
            if (strcmp(n->text, f[i]) == 0) {
                *out = false;
                return;
            }
        }
    }
    bad(l, n, key, "must be true or false (or on/off)");
}

/* An enumerated string: names[i] maps to values[i]. */
static void get_enum(struct ld *l, const struct doc_node *map, const char *key,
                     const char *const *names, const int *values, bool required, int *out)
{
    const struct doc_node *n = doc_map_get(map, key);
    if (!n) {
        if (required)
            bad(l, map, key, "required");
        return;
    }
    char list[128] = "";
    for (size_t i = 0; names[i]; i++) {
        if (is_scalar(n) && n->kind != DOC_BOOL && strcmp(n->text, names[i]) == 0) {
            *out = values[i];
            return;
        }
        size_t len = strlen(list);
        snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", names[i]);
    }
    if (is_scalar(n) && n->kind != DOC_BOOL)
        bad(l, n, key, "\"%s\" is not one of %s", n->text, list);
    else
        bad(l, n, key, "must be one of %s, not %s", list, doc_type_name(n));
}

static const char *const action_names[] = {"block", "alert", "allow", NULL};
static const int action_values[] = {MOAT_ACTION_BLOCK, MOAT_ACTION_ALERT, MOAT_ACTION_ALLOW};

/* A list field; a single scalar is accepted as a one-item list when `scalar_ok`. */
static const struct doc_node *get_list(struct ld *l, const struct doc_node *map, const char *key)
{
    const struct doc_node *n = doc_map_get(map, key);
    if (!n || (n->type == DOC_SCALAR && n->kind == DOC_NULL))
        return NULL;
    if (n->type != DOC_SEQ) {
        bad(l, n, key, "must be a list, not %s", doc_type_name(n));
        return NULL;
    }
    return n;
}

/* A description: a string of at most MOAT_DESCR_MAX bytes (a note for people, not a store). */
static char *get_description(struct ld *l, const struct doc_node *map)
{
    char *s = dup_str(l, map, "description", false);
    if (s && strlen(s) > MOAT_DESCR_MAX)
        bad(l, doc_map_get(map, "description"), "description", "longer than %d bytes (%zu)",
            MOAT_DESCR_MAX, strlen(s));
    return s;
}

/* An object's list field `key` with more than MOAT_LIST_MAX entries is an error. */
static void check_list_size(struct ld *l, const struct doc_node *map, const char *key)
{
    const struct doc_node *n = doc_map_get(map, key);
    if (n && n->type != DOC_SCALAR && n->count > MOAT_LIST_MAX)
        bad(l, n, key, "more than %d entries (%zu)", MOAT_LIST_MAX, n->count);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > MOAT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

static char *get_name(struct ld *l, const struct doc_node *map, const char *key, bool required)
{
    const char *s = get_str(l, map, key, required);
    if (!s)
        return NULL;
    if (!name_ok(s)) {
        bad(l, doc_map_get(map, key), key, "\"%s\" must be 1-64 characters of A-Z a-z 0-9 . _ -",
            s);
        return NULL;
    }
    return keep(l, moat_strdup(s));
}

static char *get_pattern(struct ld *l, const struct doc_node *map, const char *key, bool required)
{
    const char *s = get_str(l, map, key, required);
    if (!s)
        return NULL;
    const char *why = pattern_check(s);
    if (why) {
        bad(l, doc_map_get(map, key), key, "pattern \"%s\" %s", s, why);
        return NULL;
    }
    return keep(l, moat_strdup(s));
}

static struct moat_origin origin(const struct ld *l)
{
    struct moat_origin o = {.file = l->file, .line = l->doc_line, .doc = l->docno};
    return o;
}

/* ---------- Cluster ---------- */

static bool cluster_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63 || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' ||
              s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

static void load_detection_common(struct ld *l, const struct doc_node *m,
                                  struct moat_detection_common *c)
{
    get_bool(l, m, "enabled", &c->enabled);
    static const char *const names[] = {"alert", "block", NULL};
    static const int values[] = {MOAT_ACTION_ALERT, MOAT_ACTION_BLOCK};
    int a = (int)c->action;
    get_enum(l, m, "action", names, values, false, &a);
    c->action = (enum moat_action)a;
}

/*
 * The map of detection `key`, with its fields checked; NULL when absent or
 * not a map. Field names in messages read `detections.KEY.FIELD` until
 * detection_done().
 */
static const struct doc_node *detection_map(struct ld *l, const struct doc_node *det,
                                            const char *key, const char *const *fields)
{
    const struct doc_node *m = doc_map_get(det, key);
    if (!m || (m->type == DOC_SCALAR && m->kind == DOC_NULL))
        return NULL;
    snprintf(l->path, sizeof(l->path), "detections.");
    if (m->type != DOC_MAP) {
        bad(l, m, key, "must be a map, not %s", doc_type_name(m));
        l->path[0] = '\0';
        return NULL;
    }
    snprintf(l->path, sizeof(l->path), "detections.%s.", key);
    check_fields(l, m, fields);
    return m;
}

static void detection_done(struct ld *l)
{
    l->path[0] = '\0';
}

static void load_brute_force(struct ld *l, const struct doc_node *det, struct moat_detections *d)
{
    static const char *const f[] = {"enabled",    "action", "threshold", "window",
                                    "quarantine", "ports",  NULL};
    const struct doc_node *m = detection_map(l, det, "brute_force", f);
    if (!m)
        return;
    load_detection_common(l, m, &d->brute_force.c);
    get_uint(l, m, "threshold", 1, 1000000, false, &d->brute_force.threshold);
    get_uint(l, m, "window", 1, 86400, false, &d->brute_force.window);
    get_uint(l, m, "quarantine", 0, 86400 * 30, false, &d->brute_force.quarantine);
    const struct doc_node *ports = get_list(l, m, "ports");
    if (ports && ports->count > MOAT_BF_PORTS_MAX) {
        bad(l, ports, "ports", "%zu ports given, at most %d are allowed", ports->count,
            MOAT_BF_PORTS_MAX);
    } else if (ports) {
        d->brute_force.nports = 0;
        for (size_t i = 0; i < ports->count; i++) {
            const struct doc_node *it = ports->items[i];
            unsigned long long v;
            char field[32];
            snprintf(field, sizeof(field), "ports[%zu]", i);
            if (!scalar_uint(it, &v) || v < 1 || v > 65535) {
                bad(l, it, field, "%s%s%s is not a port 1..65535", is_scalar(it) ? "\"" : "",
                    is_scalar(it) ? it->text : doc_type_name(it), is_scalar(it) ? "\"" : "");
                continue;
            }
            d->brute_force.ports[d->brute_force.nports++] = (uint16_t)v;
        }
    }
    detection_done(l);
}

static void load_port_scan(struct ld *l, const struct doc_node *det, struct moat_detections *d)
{
    static const char *const f[] = {"enabled", "action", "threshold", "window", "quarantine", NULL};
    const struct doc_node *m = detection_map(l, det, "port_scan", f);
    if (!m)
        return;
    load_detection_common(l, m, &d->port_scan.c);
    get_uint(l, m, "threshold", 1, 65535, false, &d->port_scan.threshold);
    get_uint(l, m, "window", 1, 86400, false, &d->port_scan.window);
    get_uint(l, m, "quarantine", 0, 86400 * 30, false, &d->port_scan.quarantine);
    detection_done(l);
}

static void load_dns_hijack(struct ld *l, const struct doc_node *det, struct moat_detections *d)
{
    static const char *const f[] = {"enabled", "action", "resolvers", NULL};
    const struct doc_node *m = detection_map(l, det, "dns_hijack", f);
    if (!m)
        return;
    load_detection_common(l, m, &d->dns_hijack.c);
    const struct doc_node *r = get_list(l, m, "resolvers");
    if (r && r->count > MOAT_RESOLVERS_MAX) {
        bad(l, r, "resolvers", "%zu resolvers given, at most %d are allowed", r->count,
            MOAT_RESOLVERS_MAX);
    } else if (r) {
        for (size_t i = 0; i < r->count; i++) {
            const struct doc_node *it = r->items[i];
            struct moat_addr a;
            char field[32];
            snprintf(field, sizeof(field), "resolvers[%zu]", i);
            if (!is_scalar(it) || addr_parse(it->text, &a) < 0) {
                bad(l, it, field, "\"%s\" is not an IP address", is_scalar(it) ? it->text : "");
                continue;
            }
            d->dns_hijack.resolvers[d->dns_hijack.nresolvers++] = a;
        }
    }
    detection_done(l);
}

static void load_detections(struct ld *l, const struct doc_node *det, struct moat_detections *d)
{
    if (det->type == DOC_SCALAR && det->kind == DOC_NULL)
        return;
    if (det->type != DOC_MAP) {
        bad(l, det, "detections", "must be a map, not %s", doc_type_name(det));
        return;
    }
    static const char *const f[] = {"brute_force", "port_scan",    "dns_hijack",
                                    "spoofing",    "threat_intel", NULL};
    snprintf(l->path, sizeof(l->path), "detections.");
    check_fields(l, det, f);
    detection_done(l);
    load_brute_force(l, det, d);
    load_port_scan(l, det, d);
    load_dns_hijack(l, det, d);
    static const char *const sf[] = {"enabled", "action", NULL};
    const struct doc_node *m = detection_map(l, det, "spoofing", sf);
    if (m)
        load_detection_common(l, m, &d->spoofing.c);
    detection_done(l);
    static const char *const tf[] = {"enabled", "action", "file", NULL};
    m = detection_map(l, det, "threat_intel", tf);
    if (m) {
        load_detection_common(l, m, &d->threat_intel.c);
        d->threat_intel.file = dup_str(l, m, "file", false);
    }
    detection_done(l);
}

static void load_cluster(struct ld *l, const struct doc_node *m)
{
    static const char *const f[] = {"kind",           "name",       "defense",     "mode",
                                    "default_action", "detections", "description", NULL};
    check_fields(l, m, f);
    struct moat_cluster c;
    cluster_defaults(&c);
    c.at = origin(l);
    const char *name = get_str(l, m, "name", true);
    if (name && !cluster_id_ok(name))
        bad(l, doc_map_get(m, "name"), "name",
            "\"%s\" must be 1-63 lower-case letters, digits, '-', '_' or '.' (a cluster id)", name);
    else if (name)
        c.name = keep(l, moat_strdup(name));
    get_bool(l, m, "defense", &c.defense);
    static const char *const modes[] = {"protect", "monitor", NULL};
    static const int mode_values[] = {MOAT_MODE_PROTECT, MOAT_MODE_MONITOR};
    int mode = (int)c.mode;
    get_enum(l, m, "mode", modes, mode_values, false, &mode);
    c.mode = (enum moat_mode)mode;
    int da = (int)c.default_action;
    get_enum(l, m, "default_action", action_names, action_values, false, &da);
    c.default_action = (enum moat_action)da;
    const struct doc_node *det = doc_map_get(m, "detections");
    if (det)
        load_detections(l, det, &c.det);
    c.description = get_description(l, m);
    if (l->errors || l->err ||
        moat_grow(&l->p->clusters, &l->p->cap_clusters, l->p->nclusters + 1, sizeof(c)) < 0) {
        if (!l->errors)
            oom(l);
        cluster_clear(&c);
        return;
    }
    l->p->clusters[l->p->nclusters++] = c;
}

/* ---------- NetworkObject ---------- */

static void load_object_images(struct ld *l, const struct doc_node *m, struct moat_object *o)
{
    const struct doc_node *list = get_list(l, m, "images");
    if (!list)
        return;
    o->images = moat_calloc(list->count, sizeof(char *));
    if (!o->images)
        return oom(l);
    for (size_t i = 0; i < list->count; i++) {
        const struct doc_node *n = list->items[i];
        char field[32], buf[MOAT_IMAGE_MAX + 16];
        const char *why = NULL;
        snprintf(field, sizeof(field), "images[%zu]", i);
        if (!is_scalar(n) || n->kind == DOC_BOOL) {
            bad(l, n, field, "must be an image pattern, not %s", doc_type_name(n));
            continue;
        }
        if (image_pattern_normalise(n->text, buf, sizeof(buf), &why) < 0) {
            bad(l, n, field, "\"%s\" %s", n->text, why);
            continue;
        }
        o->images[o->nimages] = keep(l, moat_strdup(buf));
        if (o->images[o->nimages])
            o->nimages++;
    }
}

static void add_label(struct ld *l, struct moat_label **labels, size_t *count, char *key,
                      char *value)
{
    struct moat_label *grown = moat_reallocarray(*labels, *count + 1, sizeof(**labels));
    if (!grown) {
        free(key);
        free(value);
        return oom(l);
    }
    *labels = grown;
    grown[*count].key = key;
    grown[*count].value = value;
    (*count)++;
}

/* Labels as a list of "k=v" / "k:v" strings, or as a map {k: v}. */
static void load_labels_at(struct ld *l, const struct doc_node *m, const char *name,
                           struct moat_label **labels, size_t *count)
{
    const struct doc_node *n = doc_map_get(m, name);
    if (!n || (n->type == DOC_SCALAR && n->kind == DOC_NULL))
        return;
    for (size_t i = 0; i < n->count && n->type != DOC_SCALAR; i++) {
        char field[64], *key = NULL, *value = NULL;
        snprintf(field, sizeof(field), "%s[%zu]", name, i);
        const struct doc_node *it = n->items[i];
        if (n->type == DOC_MAP) {
            snprintf(field, sizeof(field), "%s.%.20s", name, n->keys[i]->text);
            const char *kbad = label_key_check(n->keys[i]->text);
            const char *vbad = is_scalar(it) ? label_value_check(it->text) : "must be a string";
            if (kbad || vbad) {
                bad(l, it, field, "label %s %s", kbad ? "key" : "value", kbad ? kbad : vbad);
                continue;
            }
            key = moat_strdup(n->keys[i]->text);
            value = moat_strdup(it->text);
            if (!key || !value) {
                free(key);
                free(value);
                return oom(l);
            }
        } else {
            char why[256];
            int err = is_scalar(it)
                          ? label_parse(it->text, &key, &value, why, sizeof(why))
                          : (snprintf(why, sizeof(why), "must be a key=value string"), -EINVAL);
            if (err == -ENOMEM)
                return oom(l);
            if (err) {
                bad(l, it, field, "%s", why);
                continue;
            }
        }
        if (labels_get(*labels, *count, key)) {
            bad(l, it, field, "label \"%s\" is given twice", key);
            free(key);
            free(value);
            continue;
        }
        add_label(l, labels, count, key, value);
    }
    if (n->type == DOC_SCALAR)
        bad(l, n, name, "must be a list of key=value or a map");
}

static void load_labels(struct ld *l, const struct doc_node *m, struct moat_label **labels,
                        size_t *count)
{
    load_labels_at(l, m, "labels", labels, count);
}

/* One entry of `cidrs`: a prefix, or a map {cidr, except: [prefixes]}. */
static bool load_one_cidr(struct ld *l, const struct doc_node *it, const char *field,
                          struct moat_cidr *c)
{
    const struct doc_node *text = it;
    const struct doc_node *except = NULL;
    const char *entry = field; /* cidrs[0] */
    char sub[64];
    if (it->type == DOC_MAP) {
        static const char *const f[] = {"cidr", "except", NULL};
        snprintf(l->path, sizeof(l->path), "%s.", field);
        check_fields(l, it, f);
        l->path[0] = '\0';
        text = doc_map_get(it, "cidr");
        except = doc_map_get(it, "except");
        snprintf(sub, sizeof(sub), "%s.cidr", field);
        if (!text) {
            bad(l, it, sub, "required (a prefix such as 203.0.113.0/24)");
            return false;
        }
        field = sub;
    }
    const char *why = "must be a prefix such as 203.0.113.0/24";
    if (!is_scalar(text) || text->kind == DOC_BOOL ||
        prefix_parse(text->text, &c->prefix, &why) < 0) {
        if (is_scalar(text))
            bad(l, text, field, "\"%s\" %s", text->text, why);
        else
            bad(l, text, field, "%s, not %s", why, doc_type_name(text));
        return false;
    }
    if (!except || (except->type == DOC_SCALAR && except->kind == DOC_NULL))
        return true;
    if (except->type != DOC_SEQ) {
        snprintf(sub, sizeof(sub), "%s.except", entry);
        bad(l, except, sub, "must be a list of prefixes, not %s", doc_type_name(except));
        return false;
    }
    c->except = moat_calloc(except->count ? except->count : 1, sizeof(*c->except));
    if (!c->except) {
        oom(l);
        return false;
    }
    for (size_t j = 0; j < except->count; j++) {
        const struct doc_node *e = except->items[j];
        struct moat_prefix p;
        char ef[80];
        snprintf(ef, sizeof(ef), "%s.except[%zu]", entry, j);
        why = "must be a prefix";
        if (!is_scalar(e) || prefix_parse(e->text, &p, &why) < 0) {
            bad(l, e, ef, "\"%s\" %s", is_scalar(e) ? e->text : "", why);
            continue;
        }
        if (!prefix_covers(&c->prefix, &p) || p.len == c->prefix.len) {
            bad(l, e, ef, "\"%s\" is not inside %s", e->text, text->text);
            continue;
        }
        c->except[c->nexcept++] = p;
    }
    return true;
}

static void load_object_cidrs(struct ld *l, const struct doc_node *m, struct moat_object *o)
{
    const struct doc_node *n = doc_map_get(m, "cidrs");
    const struct doc_node *list = get_list(l, m, "cidrs");
    if (!list) {
        if (n && n->type == DOC_SCALAR && n->kind == DOC_NULL)
            bad(l, n, "cidrs", "must list at least one prefix");
        return;
    }
    if (list->count == 0) {
        bad(l, list, "cidrs", "must list at least one prefix");
        return;
    }
    o->cidrs = moat_calloc(list->count, sizeof(*o->cidrs));
    if (!o->cidrs)
        return oom(l);
    for (size_t i = 0; i < list->count; i++) {
        char field[32];
        snprintf(field, sizeof(field), "cidrs[%zu]", i);
        if (load_one_cidr(l, list->items[i], field, &o->cidrs[o->ncidrs])) {
            o->ncidrs++;
        } else {
            free(o->cidrs[o->ncidrs].except);
            o->cidrs[o->ncidrs].except = NULL;
        }
    }
}

static void load_object(struct ld *l, const struct doc_node *m)
{
    static const char *const f[] = {"kind",    "id",          "name",   "namespace",
                                    "app",     "images",      "labels", "namespace_labels",
                                    "cluster", "description", "cidrs",  NULL};
    check_fields(l, m, f);
    struct moat_object o = {.at = origin(l)};
    o.name = get_name(l, m, "name", true);
    if (o.name && (strcmp(o.name, "any") == 0 || strcmp(o.name, "host") == 0))
        bad(l, doc_map_get(m, "name"), "name",
            "\"%s\" is a built-in object and cannot be redefined", o.name);
    uint32_t id;
    if (get_uint(l, m, "id", 1, 0x3fffffff, false, &id)) {
        o.id = id;
        o.explicit_id = true;
    }
    bool ipblock = doc_map_get(m, "cidrs") != NULL;
    o.kind = ipblock ? MOAT_OBJ_IPBLOCK : MOAT_OBJ_SELECTOR;
    check_list_size(l, m, "images");
    check_list_size(l, m, "labels");
    check_list_size(l, m, "namespace_labels");
    check_list_size(l, m, "cidrs");
    if (ipblock) {
        static const char *const sel[] = {"namespace",        "app", "images", "labels",
                                          "namespace_labels", NULL};
        for (int i = 0; sel[i]; i++)
            if (doc_map_get(m, sel[i]))
                bad(l, doc_map_get(m, sel[i]), sel[i],
                    "an ipblock object (cidrs) cannot also select workloads");
        load_object_cidrs(l, m, &o);
    } else {
        o.namespace = get_pattern(l, m, "namespace", true);
        o.app = get_pattern(l, m, "app", false);
        load_object_images(l, m, &o);
        load_labels(l, m, &o.labels, &o.nlabels);
        load_labels_at(l, m, "namespace_labels", &o.ns_labels, &o.nns_labels);
    }
    const char *cl = get_str(l, m, "cluster", false);
    if (cl)
        o.cluster = keep(l, moat_strdup(cl));
    o.description = get_description(l, m);
    if (l->errors || l->err ||
        moat_grow(&l->p->objects, &l->p->cap_objects, l->p->nobjects + 1, sizeof(o)) < 0) {
        if (!l->errors)
            oom(l);
        object_clear(&o);
        return;
    }
    l->p->objects[l->p->nobjects++] = o;
}

/* ---------- DefenseRule ---------- */

struct port_report {
    struct ld *l;
    const struct doc_node *at;
    const char *field;
};

static void report_port_problem(void *ctx, const char *message)
{
    struct port_report *r = ctx;
    bad(r->l, r->at, r->field, "%s", message);
}

static void add_port_text(struct ld *l, const struct doc_node *at, const char *field,
                          const char *text, struct moat_dest *dst, size_t *seen)
{
    struct port_range r;
    char why[200];
    (*seen)++;
    if (port_range_parse(text, &r, why, sizeof(why)) < 0) {
        bad(l, at, field, "%s", why);
        return;
    }
    if (dst->nports < MOAT_PORT_RANGES_MAX)
        dst->ports[dst->nports++] = r;
}

/* Splits "20/30,80/90" and adds each part. */
static void add_port_string(struct ld *l, const struct doc_node *at, const char *field,
                            const char *text, struct moat_dest *dst, size_t *seen)
{
    char buf[512];
    if (strlen(text) >= sizeof(buf)) {
        bad(l, at, field, "is longer than %zu characters", sizeof(buf) - 1);
        return;
    }
    snprintf(buf, sizeof(buf), "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        add_port_text(l, at, field, tok, dst, seen);
    if (!strpbrk(text, "0123456789"))
        bad(l, at, field, "\"%s\" lists no port", text);
}

static void load_dest_ports(struct ld *l, const struct doc_node *ports, const char *field,
                            struct moat_dest *dst)
{
    size_t seen = 0;
    if (!ports || (ports->type == DOC_SCALAR && ports->kind == DOC_NULL)) {
        dst->all_ports = true;
        dst->ports[0] = (struct port_range){1, 65535};
        dst->nports = 1;
        return;
    }
    if (ports->type == DOC_MAP || (ports->type == DOC_SCALAR && ports->kind == DOC_BOOL)) {
        bad(l, ports, field, "must be \"lo/hi,...\", a port or a list of ranges");
        return;
    }
    if (ports->type == DOC_SCALAR) {
        add_port_string(l, ports, field, ports->text, dst, &seen);
    } else {
        for (size_t i = 0; i < ports->count; i++) {
            char f[64];
            snprintf(f, sizeof(f), "%s[%zu]", field, i);
            const struct doc_node *it = ports->items[i];
            if (!is_scalar(it) || it->kind == DOC_BOOL)
                bad(l, it, f, "must be a range such as \"80/90\" or a port");
            else
                add_port_text(l, it, f, it->text, dst, &seen);
        }
        if (ports->count == 0) {
            dst->all_ports = true;
            dst->ports[0] = (struct port_range){1, 65535};
            dst->nports = 1;
            return;
        }
    }
    struct port_report rep = {l, ports, field};
    if (seen > MOAT_PORT_RANGES_MAX) {
        char msg[80];
        snprintf(msg, sizeof(msg), "%zu ranges given, at most %d are allowed", seen,
                 MOAT_PORT_RANGES_MAX);
        report_port_problem(&rep, msg);
    }
    port_ranges_check(dst->ports, dst->nports, report_port_problem, &rep);
}

static char *object_ref(struct ld *l, const struct doc_node *n, const char *field)
{
    if (!is_scalar(n) || n->kind == DOC_BOOL || n->kind == DOC_FLOAT || !n->text[0]) {
        bad(l, n, field, "must be an object name or id");
        return NULL;
    }
    return keep(l, moat_strdup(n->text));
}

static void load_rule_dests(struct ld *l, const struct doc_node *m, struct moat_rule *r)
{
    const struct doc_node *list = doc_map_get(m, "destinations");
    if (!list || (list->type == DOC_SCALAR && list->kind == DOC_NULL)) {
        bad(l, m, "destinations", "required (a list of 1-8 entries {object, ports})");
        return;
    }
    if (list->type != DOC_SEQ) {
        bad(l, list, "destinations", "must be a list of 1-8 entries {object, ports}, not %s",
            doc_type_name(list));
        return;
    }
    if (list->count < 1 || list->count > MOAT_DESTS_MAX) {
        bad(l, list, "destinations", "%zu entries given, 1-%d are allowed", list->count,
            MOAT_DESTS_MAX);
        return;
    }
    for (size_t i = 0; i < list->count; i++) {
        const struct doc_node *it = list->items[i];
        char field[48];
        snprintf(field, sizeof(field), "destinations[%zu]", i);
        if (it->type != DOC_MAP) {
            bad(l, it, field, "must be a map {object, ports}, not %s", doc_type_name(it));
            continue;
        }
        static const char *const f[] = {"object", "ports", NULL};
        snprintf(l->path, sizeof(l->path), "%s.", field);
        check_fields(l, it, f);
        l->path[0] = '\0';
        struct moat_dest *d = &r->dests[r->ndests++];
        const struct doc_node *obj = doc_map_get(it, "object");
        char of[64];
        snprintf(of, sizeof(of), "%s.object", field);
        if (!obj) {
            bad(l, it, of, "required");
        } else {
            d->object_ref = object_ref(l, obj, of);
            d->object_line = obj->line;
        }
        snprintf(of, sizeof(of), "%s.ports", field);
        load_dest_ports(l, doc_map_get(it, "ports"), of, d);
    }
}

static bool is_system_rule_name(const char *name)
{
    return name && (strcmp(name, MOAT_SYSRULE_HOST) == 0 || strcmp(name, MOAT_SYSRULE_DNS) == 0);
}

static void load_rule_body(struct ld *l, const struct doc_node *m, struct moat_rule *r)
{
    const struct doc_node *src = doc_map_get(m, "source");
    if (!src) {
        bad(l, m, "source", "required (an object name or id, or any)");
    } else {
        r->source_ref = object_ref(l, src, "source");
        r->source_line = src->line;
    }
    load_rule_dests(l, m, r);
    static const char *const protos[] = {"tcp", "udp", "any", NULL};
    static const int proto_values[] = {MOAT_PROTO_TCP, MOAT_PROTO_UDP, MOAT_PROTO_ANY};
    int proto = MOAT_PROTO_ANY;
    get_enum(l, m, "protocol", protos, proto_values, false, &proto);
    r->proto = (enum moat_proto)proto;
    int action = 0;
    get_enum(l, m, "action", action_names, action_values, true, &action);
    r->action = (enum moat_action)action;
    uint32_t prio = 0;
    if (get_uint(l, m, "priority", MOAT_PRIORITY_MIN, MOAT_PRIORITY_MAX, true, &prio))
        r->priority = (uint16_t)prio;
    static const char *const types[] = {"custom", "suggested", NULL};
    static const int type_values[] = {MOAT_RULE_CUSTOM, MOAT_RULE_SUGGESTED};
    int type = MOAT_RULE_CUSTOM;
    get_enum(l, m, "type", types, type_values, false, &type);
    r->type = (enum moat_rule_type)type;
}

/* A document naming a system rule may only switch it on or off. */
static void load_system_override(struct ld *l, const struct doc_node *m, struct moat_rule *r)
{
    static const char *const allowed[] = {"kind", "cluster",     "name", "enabled",
                                          "type", "description", NULL};
    for (size_t i = 0; i < m->count; i++) {
        const char *k = m->keys[i]->text;
        bool ok = false;
        for (int j = 0; allowed[j] && !ok; j++)
            ok = strcmp(allowed[j], k) == 0;
        if (!ok)
            bad(l, m->keys[i], k,
                "\"%s\" is a system rule: only enabled and description can be changed", r->name);
    }
    const struct doc_node *t = doc_map_get(m, "type");
    if (t && (!is_scalar(t) || strcmp(t->text, "system") != 0))
        bad(l, t, "type", "a system rule's type is system");
    r->type = MOAT_RULE_SYSTEM;
}

static void load_rule(struct ld *l, const struct doc_node *m)
{
    static const char *const f[] = {"kind",   "id",           "cluster",  "name",   "enabled",
                                    "source", "destinations", "protocol", "action", "priority",
                                    "type",   "description",  NULL};
    struct moat_rule r = {.enabled = true, .at = origin(l)};
    r.name = get_name(l, m, "name", true);
    r.cluster_ref = dup_str(l, m, "cluster", true);
    get_bool(l, m, "enabled", &r.enabled);
    r.description = get_description(l, m);
    if (is_system_rule_name(r.name)) {
        load_system_override(l, m, &r);
    } else {
        check_fields(l, m, f);
        uint32_t id;
        if (get_uint(l, m, "id", 1, 0x3fffffff, false, &id)) {
            r.id = id;
            r.explicit_id = true;
        }
        load_rule_body(l, m, &r);
    }
    if (l->errors || l->err ||
        moat_grow(&l->p->rules, &l->p->cap_rules, l->p->nrules + 1, sizeof(r)) < 0) {
        if (!l->errors)
            oom(l);
        rule_clear(&r);
        return;
    }
    l->p->rules[l->p->nrules++] = r;
}

/* ---------- Workload and Node ---------- */

static void load_addrs(struct ld *l, const struct doc_node *m, struct moat_addr **out,
                       size_t *count)
{
    const struct doc_node *list = get_list(l, m, "ips");
    if (!list)
        return;
    *out = moat_calloc(list->count, sizeof(**out));
    if (!*out)
        return oom(l);
    for (size_t i = 0; i < list->count; i++) {
        const struct doc_node *it = list->items[i];
        char field[32];
        snprintf(field, sizeof(field), "ips[%zu]", i);
        if (!is_scalar(it)) {
            bad(l, it, field, "must be an IP address, not %s", doc_type_name(it));
            continue;
        }
        if (addr_parse(it->text, &(*out)[*count]) < 0) {
            bad(l, it, field, "\"%s\" is not an IP address", it->text);
            continue;
        }
        for (size_t j = 0; j < *count; j++)
            if (addr_cmp(&(*out)[j], &(*out)[*count]) == 0)
                bad(l, it, field, "%s is listed twice", it->text);
        (*count)++;
    }
}

/* Validates Workload document `m` into *w; false when it has errors (w then holds part). */
static bool workload_fields(struct ld *l, const struct doc_node *m, struct moat_workload *w)
{
    static const char *const f[] = {"kind",   "cluster", "node", "name",      "namespace",
                                    "image",  "labels",  "ips",  "interface", "namespace_labels",
                                    "source", NULL};
    check_fields(l, m, f);
    *w = (struct moat_workload){.at = origin(l)};
    w->cluster_ref = dup_str(l, m, "cluster", true);
    w->node = get_name(l, m, "node", true);
    w->name = get_name(l, m, "name", true);
    w->namespace = get_name(l, m, "namespace", true);
    const char *image = get_str(l, m, "image", false);
    if (image) {
        int err;
        w->forms = image_forms_pack(image, &err);
        if (err == -ENOMEM)
            oom(l);
        else if (err)
            bad(l, doc_map_get(m, "image"), "image", "\"%s\" is not an image reference", image);
        w->image = keep(l, moat_strdup(image));
    }
    load_labels(l, m, &w->labels, &w->nlabels);
    load_labels_at(l, m, "namespace_labels", &w->ns_labels, &w->nns_labels);
    load_addrs(l, m, &w->addrs, &w->naddrs);
    const char *source = get_str(l, m, "source", false);
    if (source && (strlen(source) > 300 || strpbrk(source, " \t\n")))
        bad(l, doc_map_get(m, "source"), "source",
            "\"%.40s\" is not a source (RUNTIME:ID or file:PATH, at most 300 characters)", source);
    else if (source)
        w->source = keep(l, moat_strdup(source));
    const char *ifname = get_str(l, m, "interface", false);
    if (ifname && (strlen(ifname) > 15 || strpbrk(ifname, "/ \t:")))
        bad(l, doc_map_get(m, "interface"), "interface",
            "\"%s\" is not an interface name (1-15 characters, no '/', ':' or spaces)", ifname);
    else if (ifname)
        w->interface = keep(l, moat_strdup(ifname));
    return !l->errors && !l->err;
}

static void load_workload(struct ld *l, const struct doc_node *m)
{
    struct moat_workload w;
    if (!workload_fields(l, m, &w) ||
        moat_grow(&l->p->workloads, &l->p->cap_workloads, l->p->nworkloads + 1, sizeof(w)) < 0) {
        if (!l->errors)
            oom(l);
        workload_clear(&w);
        return;
    }
    l->p->workloads[l->p->nworkloads++] = w;
}

static void load_node(struct ld *l, const struct doc_node *m)
{
    static const char *const f[] = {"kind", "name", "cluster", "ips", NULL};
    check_fields(l, m, f);
    struct moat_node n = {.at = origin(l)};
    n.name = get_name(l, m, "name", true);
    n.cluster_ref = dup_str(l, m, "cluster", false);
    load_addrs(l, m, &n.addrs, &n.naddrs);
    if (l->errors || l->err ||
        moat_grow(&l->p->nodes, &l->p->cap_nodes, l->p->nnodes + 1, sizeof(n)) < 0) {
        if (!l->errors)
            oom(l);
        node_clear(&n);
        return;
    }
    l->p->nodes[l->p->nnodes++] = n;
}

/* ---------- documents ---------- */

struct kind_entry {
    const char *kind;
    const char *plural; /* for messages: rules "web" */
    void (*load)(struct ld *l, const struct doc_node *m);
};

static const struct kind_entry kinds[] = {
    {"Cluster", "clusters", load_cluster}, {"NetworkObject", "objects", load_object},
    {"DefenseRule", "rules", load_rule},   {"Workload", "workloads", load_workload},
    {"Node", "nodes", load_node},
};

static void set_context(struct ld *l, const struct doc_node *m, const char *plural)
{
    const struct doc_node *name = doc_map_get(m, "name");
    char where[32] = "";
    if (l->json)
        snprintf(where, sizeof(where), "document %d: ", l->docno);
    if (is_scalar(name) && name->text[0])
        snprintf(l->ctx, sizeof(l->ctx), "%s%s \"%.64s\"", where, plural, name->text);
    else
        snprintf(l->ctx, sizeof(l->ctx), "%s%s (document %d)", where, plural, l->docno);
}

/* Notes that the document for `plural` `name` was not accepted (see struct moat_policy). */
static int remember_rejected(struct moat_policy *p, const char *plural, const char *name)
{
    if (moat_grow(&p->rejected, &p->cap_rejected, p->nrejected + 1, sizeof(char *)) < 0)
        return -ENOMEM;
    char *entry = moat_asprintf("%s/%s", plural, name);
    if (!entry)
        return -ENOMEM;
    p->rejected[p->nrejected++] = entry;
    return 0;
}

static bool was_rejected(const struct moat_policy *p, const char *plural, const char *name)
{
    size_t n = strlen(plural);
    for (size_t i = 0; i < p->nrejected; i++)
        if (strncmp(p->rejected[i], plural, n) == 0 && p->rejected[i][n] == '/' &&
            strcmp(p->rejected[i] + n + 1, name) == 0)
            return true;
    return false;
}

static void load_doc(struct ld *l, const struct doc_node *m)
{
    l->doc_line = m->line;
    l->errors = 0;
    l->path[0] = '\0';
    snprintf(l->ctx, sizeof(l->ctx), "document %d", l->docno);
    if (!l->json && m->type == DOC_SCALAR && m->kind == DOC_NULL)
        return; /* an empty YAML document, as after a trailing `---` */
    if (m->type != DOC_MAP) {
        bad(l, m, NULL, "a document must be a map with a kind, not %s", doc_type_name(m));
        return;
    }
    const struct doc_node *kind = doc_map_get(m, "kind");
    for (size_t i = 0; is_scalar(kind) && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kind->text, kinds[i].kind) == 0) {
            set_context(l, m, kinds[i].plural);
            kinds[i].load(l, m);
            const struct doc_node *name = doc_map_get(m, "name");
            if (l->errors && is_scalar(name) && kinds[i].load != load_rule &&
                remember_rejected(l->p, kinds[i].plural, name->text) < 0)
                oom(l);
            return;
        }
    }
    static const char *const known = "Cluster, NetworkObject, DefenseRule, Workload, Node";
    if (!kind || (kind->type == DOC_SCALAR && kind->kind == DOC_NULL))
        bad(l, m, "kind", "required (one of %s)", known);
    else if (is_scalar(kind))
        bad(l, kind, "kind", "\"%s\" is not one of %s", kind->text, known);
    else
        bad(l, kind, "kind", "must be one of %s, not %s", known, doc_type_name(kind));
}

static const char *remember_file(struct moat_policy *p, const char *name)
{
    char **files = moat_reallocarray(p->files, p->nfiles + 1, sizeof(char *));
    if (!files)
        return NULL;
    p->files = files;
    files[p->nfiles] = moat_strdup(name);
    return files[p->nfiles] ? files[p->nfiles++] : NULL;
}

int policy_load_docs(struct moat_policy *p, const struct doc_set *set, struct moat_diags *d)
{
    struct ld l = {.p = p, .d = d, .json = set->json};
    l.file = remember_file(p, set->name);
    if (!l.file)
        return -ENOMEM;
    size_t before = diags_total(d);
    for (size_t i = 0; i < set->count && !l.err; i++) {
        l.docno = (int)i + 1;
        load_doc(&l, set->docs[i]);
    }
    if (l.err || diags_oom(d))
        return -ENOMEM;
    return diags_total(d) > before ? -EINVAL : 0;
}

int workload_from_doc(const struct doc_node *m, const char *file, int docno,
                      struct moat_workload *out, struct moat_diags *d)
{
    struct ld l = {.d = d, .file = file, .json = true, .docno = docno, .doc_line = m->line};
    snprintf(l.ctx, sizeof(l.ctx), "document %d", docno);
    if (m->type != DOC_MAP) {
        *out = (struct moat_workload){0};
        bad(&l, m, NULL, "a workload must be a map, not %s", doc_type_name(m));
        return -EINVAL;
    }
    set_context(&l, m, "workloads");
    if (workload_fields(&l, m, out))
        return 0;
    workload_clear(out);
    *out = (struct moat_workload){0};
    return l.err ? l.err : -EINVAL;
}

/* ---------- finishing: names, built-ins, ids ---------- */

static void fin_err(struct moat_diags *d, const struct moat_origin *at, const char *ctx,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void fin_err(struct moat_diags *d, const struct moat_origin *at, const char *ctx,
                    const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char where[256];
    if (at && at->line == 0 && at->doc > 0) { /* JSON: no lines, name the document */
        snprintf(where, sizeof(where), "document %d: %s", at->doc, ctx);
        ctx = where;
    }
    diags_add(d, at ? at->file : NULL, at ? at->line : 0, ctx, "%s", msg);
}

/* "file:line", or "file document N" when lines are unknown (JSON). */
static const char *origin_text(char *buf, size_t n, const struct moat_origin *at)
{
    if (!at->file)
        snprintf(buf, n, "built-in");
    else if (at->line > 0)
        snprintf(buf, n, "%s:%d", at->file, at->line);
    else
        snprintf(buf, n, "%s document %d", at->file, at->doc);
    return buf;
}

static void ctx_of(char *buf, size_t n, const char *plural, const char *name)
{
    snprintf(buf, n, "%s \"%s\"", plural, name ? name : "?");
}

static int add_implicit_cluster(struct moat_policy *p, const char *name)
{
    struct moat_cluster c;
    cluster_defaults(&c);
    c.implicit = true;
    c.name = moat_strdup(name);
    if (!c.name || moat_grow(&p->clusters, &p->cap_clusters, p->nclusters + 1, sizeof(c)) < 0) {
        free(c.name);
        return -ENOMEM;
    }
    p->clusters[p->nclusters++] = c;
    return 0;
}

static void check_clusters(struct moat_policy *p, struct moat_diags *d)
{
    for (size_t i = 0; i < p->nclusters; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->clusters[i].name, p->clusters[j].name) == 0) {
                char ctx[128], at[300];
                ctx_of(ctx, sizeof(ctx), "clusters", p->clusters[i].name);
                fin_err(d, &p->clusters[i].at, ctx, "name: defined twice (also in %s)",
                        origin_text(at, sizeof(at), &p->clusters[j].at));
            }
}

/* Workloads and nodes may name a cluster no document defines: it gets defaults. */
static int resolve_workload_clusters(struct moat_policy *p)
{
    for (size_t i = 0; i < p->nworkloads; i++) {
        struct moat_workload *w = &p->workloads[i];
        w->cluster = policy_find_cluster(p, w->cluster_ref);
        if (w->cluster == MOAT_NONE) {
            if (add_implicit_cluster(p, w->cluster_ref) < 0)
                return -ENOMEM;
            w->cluster = (uint32_t)(p->nclusters - 1);
        }
    }
    return 0;
}

static int add_builtin_object(struct moat_policy *p, const char *name, enum moat_object_kind kind)
{
    if (policy_find_object(p, name) != MOAT_NONE)
        return 0; /* cluster-dns redefined by the user */
    struct moat_object o = {.kind = kind, .builtin = true};
    o.name = moat_strdup(name);
    if (!o.name)
        return -ENOMEM;
    if (strcmp(name, "cluster-dns") == 0) {
        o.namespace = moat_strdup("kube-system");
        o.labels = moat_calloc(1, sizeof(*o.labels));
        if (o.labels) {
            o.labels[0].key = moat_strdup("k8s-app");
            o.labels[0].value = moat_strdup("kube-dns");
            o.nlabels = 1;
        }
        if (!o.namespace || !o.labels || !o.labels[0].key || !o.labels[0].value) {
            object_clear(&o);
            return -ENOMEM;
        }
    }
    if (moat_grow(&p->objects, &p->cap_objects, p->nobjects + 1, sizeof(o)) < 0) {
        object_clear(&o);
        return -ENOMEM;
    }
    p->objects[p->nobjects++] = o;
    return 0;
}

static bool object_id_taken(const struct moat_policy *p, uint32_t id)
{
    for (size_t i = 0; i < p->nobjects; i++)
        if (p->objects[i].id == id)
            return true;
    return false;
}

/* Built-ins take ids 1..3 in that order, then file objects in file order. */
static void assign_object_ids(struct moat_policy *p, struct moat_diags *d)
{
    static const char *const order[] = {"any", "host", "cluster-dns"};
    for (size_t i = 0; i < p->nobjects; i++)
        for (size_t j = 0; j < i; j++)
            if (p->objects[i].explicit_id && p->objects[j].explicit_id &&
                p->objects[i].id == p->objects[j].id) {
                char ctx[128];
                ctx_of(ctx, sizeof(ctx), "objects", p->objects[i].name);
                fin_err(d, &p->objects[i].at, ctx, "id: %u is also the id of object \"%s\"",
                        p->objects[i].id, p->objects[j].name);
            }
    uint32_t next = 1;
    for (size_t k = 0; k < 3; k++) {
        struct moat_object *o = &p->objects[policy_find_object(p, order[k])];
        if (!o->explicit_id) {
            while (object_id_taken(p, next))
                next++;
            o->id = next++;
        }
    }
    for (size_t i = 0; i < p->nobjects; i++) {
        if (p->objects[i].id)
            continue;
        while (object_id_taken(p, next))
            next++;
        p->objects[i].id = next++;
    }
}

/* Indices sorted by a name (then by index), to find names used twice in O(n log n). */
struct name_key {
    const char *a, *b; /* b may be NULL */
    size_t i;
};

static int cmp_name_key(const void *x, const void *y)
{
    const struct name_key *p = x, *q = y;
    int c = strcmp(p->a, q->a);
    if (!c && p->b && q->b)
        c = strcmp(p->b, q->b);
    return c ? c : (p->i > q->i) - (p->i < q->i);
}

static bool same_name_key(const struct name_key *p, const struct name_key *q)
{
    return strcmp(p->a, q->a) == 0 && (!p->b || !q->b || strcmp(p->b, q->b) == 0);
}

/*
 * For each of the n keys, the start of its run of equal names in the sorted
 * array (run[i] = position of i's group's first member; sorted by index
 * within a run). Returns the sorted array (caller frees) with *pos[i] = the
 * position of key i in it, or NULL on OOM.
 */
static struct name_key *name_runs(struct name_key *keys, size_t n, size_t **pos, size_t **run)
{
    *pos = moat_calloc(n ? n : 1, sizeof(**pos));
    *run = moat_calloc(n ? n : 1, sizeof(**run));
    if (!*pos || !*run) {
        free(*pos);
        free(*run);
        free(keys);
        return NULL;
    }
    if (n > 1)
        qsort(keys, n, sizeof(*keys), cmp_name_key);
    for (size_t k = 0, start = 0; k < n; k++) {
        if (k > 0 && !same_name_key(&keys[k - 1], &keys[k]))
            start = k;
        (*pos)[keys[k].i] = k;
        (*run)[keys[k].i] = start;
    }
    return keys;
}

static int check_objects(struct moat_policy *p, struct moat_diags *d)
{
    size_t n = p->nobjects, *pos, *run;
    struct name_key *keys = moat_calloc(n ? n : 1, sizeof(*keys));
    for (size_t i = 0; keys && i < n; i++)
        keys[i] = (struct name_key){p->objects[i].name, NULL, i};
    if (!keys || !(keys = name_runs(keys, n, &pos, &run)))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct moat_object *o = &p->objects[i];
        char ctx[128];
        ctx_of(ctx, sizeof(ctx), "objects", o->name);
        for (size_t k = run[i]; k < pos[i]; k++) { /* each earlier object of that name */
            char at[300];
            fin_err(d, &o->at, ctx, "name: defined twice (also in %s)",
                    origin_text(at, sizeof(at), &p->objects[keys[k].i].at));
        }
        if (o->cluster) {
            uint32_t c = policy_find_cluster(p, o->cluster);
            if ((c == MOAT_NONE || p->clusters[c].implicit) &&
                !was_rejected(p, "clusters", o->cluster))
                fin_err(d, &o->at, ctx, "cluster: no Cluster document named \"%s\"", o->cluster);
        }
    }
    free(keys);
    free(pos);
    free(run);
    return 0;
}

static struct moat_rule system_rule(uint32_t cluster, const char *name, uint32_t source,
                                    uint32_t dest, bool dns)
{
    struct moat_rule r = {.cluster = cluster,
                          .enabled = true,
                          .source = source,
                          .ndests = 1,
                          .proto = MOAT_PROTO_ANY,
                          .action = MOAT_ACTION_ALLOW,
                          .priority = MOAT_PRIORITY_MAX,
                          .type = MOAT_RULE_SYSTEM};
    r.name = moat_strdup(name);
    r.dests[0].object = dest;
    if (dns) {
        r.dests[0].ports[0] = (struct port_range){53, 53};
    } else {
        r.dests[0].ports[0] = (struct port_range){1, 65535};
        r.dests[0].all_ports = true;
    }
    r.dests[0].nports = 1;
    return r;
}

/* Each cluster's system rules, placed before the file's rules. */
static int add_system_rules(struct moat_policy *p)
{
    size_t n = p->nclusters * 2;
    if (n == 0)
        return 0; /* and p->rules may be NULL: no memmove */
    if (moat_grow(&p->rules, &p->cap_rules, p->nrules + n, sizeof(*p->rules)) < 0)
        return -ENOMEM;
    memmove(p->rules + n, p->rules, p->nrules * sizeof(*p->rules));
    uint32_t any = policy_find_object(p, "any");
    uint32_t host = policy_find_object(p, "host");
    uint32_t dns = policy_find_object(p, "cluster-dns");
    for (size_t c = 0; c < p->nclusters; c++) {
        p->rules[2 * c] = system_rule((uint32_t)c, MOAT_SYSRULE_HOST, host, any, false);
        p->rules[2 * c + 1] = system_rule((uint32_t)c, MOAT_SYSRULE_DNS, any, dns, true);
    }
    p->nrules += n;
    for (size_t i = 0; i < n; i++) {
        p->rules[i].cluster_ref = moat_strdup(p->clusters[i / 2].name);
        if (!p->rules[i].name || !p->rules[i].cluster_ref)
            return -ENOMEM;
    }
    return 0;
}

/* Applies (and removes) documents that switch a system rule on or off. */
static void apply_system_overrides(struct moat_policy *p, size_t nsys)
{
    size_t out = nsys;
    for (size_t i = nsys; i < p->nrules; i++) {
        struct moat_rule *r = &p->rules[i];
        if (r->type != MOAT_RULE_SYSTEM || r->cluster == MOAT_NONE) {
            p->rules[out++] = *r;
            continue;
        }
        for (size_t s = 0; s < nsys; s++) {
            struct moat_rule *sys = &p->rules[s];
            if (sys->cluster != r->cluster || strcmp(sys->name, r->name) != 0)
                continue;
            sys->enabled = r->enabled;
            if (r->description) {
                free(sys->description);
                sys->description = r->description;
                r->description = NULL;
            }
        }
        rule_clear(r);
    }
    p->nrules = out;
}

static int cmp_u32_id(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * System rules take the lowest ids (1..nsys), so an explicit id must be above
 * them; automatic ids fill the gaps between explicit ones, in file order.
 */
static int assign_rule_ids(struct moat_policy *p, struct moat_diags *d)
{
    size_t nsys = 0, nexp = 0;
    for (size_t i = 0; i < p->nrules; i++) {
        nsys += p->rules[i].type == MOAT_RULE_SYSTEM;
        nexp += p->rules[i].explicit_id;
    }
    uint32_t *taken = moat_calloc(nexp ? nexp : 1, sizeof(*taken));
    if (!taken)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < p->nrules; i++) {
        struct moat_rule *r = &p->rules[i];
        if (!r->explicit_id)
            continue;
        char ctx[128];
        ctx_of(ctx, sizeof(ctx), "rules", r->name);
        if (r->id <= nsys)
            fin_err(d, &r->at, ctx, "id: %u is reserved for the system rules (ids 1..%zu)", r->id,
                    nsys);
        taken[k++] = r->id;
    }
    qsort(taken, k, sizeof(*taken), cmp_u32_id);
    for (size_t i = 1; i < k; i++) {
        if (taken[i] != taken[i - 1] || (i > 1 && taken[i - 2] == taken[i]))
            continue; /* report each duplicated id once */
        const struct moat_rule *first = NULL;
        for (size_t j = 0; j < p->nrules; j++) {
            const struct moat_rule *r = &p->rules[j];
            if (!r->explicit_id || r->id != taken[i])
                continue;
            if (first) {
                char ctx[128];
                ctx_of(ctx, sizeof(ctx), "rules", r->name);
                fin_err(d, &r->at, ctx, "id: %u is also the id of rule \"%s\"", r->id, first->name);
            } else {
                first = r;
            }
        }
    }
    uint32_t next = 1;
    size_t t = 0;
    for (size_t i = 0; i < p->nrules; i++) {
        if (p->rules[i].explicit_id)
            continue;
        for (;;) {
            while (t < k && taken[t] < next)
                t++;
            if (t == k || taken[t] != next)
                break;
            next++;
        }
        p->rules[i].id = next++;
    }
    free(taken);
    return 0;
}

/* An object reference: a name, or an integer id. */
static uint32_t find_object_ref(const struct moat_policy *p, const char *ref)
{
    uint32_t idx = policy_find_object(p, ref);
    if (idx != MOAT_NONE)
        return idx;
    char *end;
    unsigned long id = strtoul(ref, &end, 10);
    if (*end || end == ref)
        return MOAT_NONE;
    for (size_t i = 0; i < p->nobjects; i++)
        if (p->objects[i].id == id)
            return (uint32_t)i;
    return MOAT_NONE;
}

/* The rule's origin at `line` (a field's line; 0 keeps the document's). */
static struct moat_origin at_line(const struct moat_rule *r, int line)
{
    struct moat_origin at = r->at;
    if (line > 0 && at.line > 0)
        at.line = line;
    return at;
}

static void resolve_rule_objects(struct moat_policy *p, struct moat_rule *r, const char *ctx,
                                 struct moat_diags *d)
{
    const char *cluster = p->clusters[r->cluster].name;
    struct moat_origin at = at_line(r, r->source_line);
    r->source = find_object_ref(p, r->source_ref);
    if (r->source == MOAT_NONE) {
        if (!was_rejected(p, "objects", r->source_ref))
            fin_err(d, &at, ctx, "source: no object named \"%s\"", r->source_ref);
    } else if (!object_in_cluster(&p->objects[r->source], cluster)) {
        fin_err(d, &at, ctx, "source: object \"%s\" belongs to cluster \"%s\"", r->source_ref,
                p->objects[r->source].cluster);
    }
    for (size_t i = 0; i < r->ndests; i++) {
        struct moat_dest *dst = &r->dests[i];
        at = at_line(r, dst->object_line);
        dst->object = find_object_ref(p, dst->object_ref);
        if (dst->object == MOAT_NONE) {
            if (!was_rejected(p, "objects", dst->object_ref))
                fin_err(d, &at, ctx, "destinations[%zu].object: no object named \"%s\"", i,
                        dst->object_ref);
            continue;
        }
        const struct moat_object *o = &p->objects[dst->object];
        if (o->kind == MOAT_OBJ_HOST)
            fin_err(d, &at, ctx,
                    "destinations[%zu].object: \"host\" cannot be a destination: rules protect "
                    "traffic destined for workloads (and, with ipblocks, leaving them)",
                    i);
        else if (!object_in_cluster(o, cluster))
            fin_err(d, &at, ctx,
                    "destinations[%zu].object: object \"%s\" belongs to cluster \"%s\"", i, o->name,
                    o->cluster);
    }
}

static int resolve_rules(struct moat_policy *p, size_t nsys, struct moat_diags *d)
{
    size_t n = p->nrules - nsys, *pos, *run;
    struct name_key *keys = moat_calloc(n ? n : 1, sizeof(*keys));
    size_t nk = 0;
    for (size_t i = nsys; keys && i < p->nrules; i++) {
        struct moat_rule *r = &p->rules[i];
        r->cluster = policy_find_cluster(p, r->cluster_ref);
        if (r->cluster == MOAT_NONE || p->clusters[r->cluster].implicit)
            r->cluster = MOAT_NONE;
        /* rules of one cluster may not share a name (those without a cluster are reported so) */
        keys[i - nsys] = (struct name_key){r->cluster == MOAT_NONE ? "" : r->cluster_ref,
                                           r->cluster == MOAT_NONE ? NULL : r->name, i - nsys};
        nk++;
    }
    if (!keys || !(keys = name_runs(keys, nk, &pos, &run)))
        return -ENOMEM;
    for (size_t i = nsys; i < p->nrules; i++) {
        struct moat_rule *r = &p->rules[i];
        char ctx[128];
        ctx_of(ctx, sizeof(ctx), "rules", r->name);
        if (r->cluster == MOAT_NONE) {
            if (!was_rejected(p, "clusters", r->cluster_ref))
                fin_err(d, &r->at, ctx, "cluster: no Cluster document named \"%s\"",
                        r->cluster_ref);
            continue;
        }
        for (size_t k = run[i - nsys]; k < pos[i - nsys]; k++) { /* each earlier rule so named */
            char at[300];
            fin_err(d, &r->at, ctx, "name: defined twice in cluster \"%s\" (also in %s)",
                    r->cluster_ref, origin_text(at, sizeof(at), &p->rules[nsys + keys[k].i].at));
        }
        if (r->type != MOAT_RULE_SYSTEM)
            resolve_rule_objects(p, r, ctx, d);
    }
    free(keys);
    free(pos);
    free(run);
    return 0;
}

/* Workloads sorted by (cluster, namespace, name) find duplicate names in O(n log n). */
struct wl_key {
    const struct moat_workload *w;
    size_t i;
};

static int cmp_workload_name(const struct moat_workload *x, const struct moat_workload *y)
{
    if (x->cluster != y->cluster)
        return x->cluster < y->cluster ? -1 : 1;
    int c = strcmp(x->namespace, y->namespace);
    return c ? c : strcmp(x->name, y->name);
}

static int cmp_wl_key(const void *a, const void *b)
{
    const struct wl_key *x = a, *y = b;
    int c = cmp_workload_name(x->w, y->w);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Every workload address, sorted by address, then workload, then position. */
struct addr_key {
    struct moat_addr a;
    size_t w, i;
};

static int cmp_addr_key(const void *a, const void *b)
{
    const struct addr_key *x = a, *y = b;
    int c = addr_cmp(&x->a, &y->a);
    if (c)
        return c;
    if (x->w != y->w)
        return x->w < y->w ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The first key holding `a` (the earliest workload that has it), or NULL. */
static const struct addr_key *addr_first(const struct addr_key *k, size_t n,
                                         const struct moat_addr *a)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (addr_cmp(&k[mid].a, a) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && addr_cmp(&k[lo].a, a) == 0 ? &k[lo] : NULL;
}

static void check_workload(struct moat_policy *p, size_t i, const struct moat_workload *first,
                           const struct addr_key *ak, size_t nak, struct moat_diags *d)
{
    struct moat_workload *w = &p->workloads[i];
    char ctx[128];
    ctx_of(ctx, sizeof(ctx), "workloads", w->name);
    if (first) {
        char at[300];
        fin_err(d, &w->at, ctx, "name: defined twice in %s/%s (also in %s)", w->cluster_ref,
                w->namespace, origin_text(at, sizeof(at), &first->at));
    }
    for (size_t a = 0; a < w->naddrs; a++) {
        const struct addr_key *k = addr_first(ak, nak, &w->addrs[a]);
        if (k && (k->w != i || k->i != a)) {
            char buf[MOAT_ADDR_STRLEN];
            addr_format(&w->addrs[a], buf, sizeof(buf));
            fin_err(d, &w->at, ctx, "ips[%zu]: %s is also an address of workload \"%s\"", a, buf,
                    p->workloads[k->w].name);
        }
    }
}

/* Duplicate workload names and addresses, node names and addresses. 0 or -ENOMEM. */
static int check_workloads(struct moat_policy *p, struct moat_diags *d)
{
    size_t nak = 0;
    for (size_t i = 0; i < p->nworkloads; i++)
        nak += p->workloads[i].naddrs;
    struct wl_key *wk = moat_calloc(p->nworkloads ? p->nworkloads : 1, sizeof(*wk));
    const struct moat_workload **first =
        moat_calloc(p->nworkloads ? p->nworkloads : 1, sizeof(*first));
    struct addr_key *ak = moat_calloc(nak ? nak : 1, sizeof(*ak));
    if (!wk || !first || !ak) {
        free(wk);
        free(first);
        free(ak);
        return -ENOMEM;
    }
    nak = 0;
    for (size_t i = 0; i < p->nworkloads; i++) {
        wk[i] = (struct wl_key){&p->workloads[i], i};
        for (size_t a = 0; a < p->workloads[i].naddrs; a++)
            ak[nak++] = (struct addr_key){p->workloads[i].addrs[a], i, a};
    }
    if (p->nworkloads > 1)
        qsort(wk, p->nworkloads, sizeof(*wk), cmp_wl_key);
    if (nak > 1)
        qsort(ak, nak, sizeof(*ak), cmp_addr_key);
    for (size_t i = 1, run = 0; i < p->nworkloads; i++) {
        if (cmp_workload_name(wk[run].w, wk[i].w) == 0)
            first[wk[i].i] = wk[run].w;
        else
            run = i;
    }
    for (size_t i = 0; i < p->nworkloads; i++)
        check_workload(p, i, first[i], ak, nak, d);
    for (size_t i = 0; i < p->nnodes; i++) {
        char ctx[128];
        ctx_of(ctx, sizeof(ctx), "nodes", p->nodes[i].name);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p->nodes[i].name, p->nodes[j].name) != 0)
                continue;
            char at[300];
            fin_err(d, &p->nodes[i].at, ctx, "name: defined twice (also in %s)",
                    origin_text(at, sizeof(at), &p->nodes[j].at));
            break;
        }
        for (size_t a = 0; a < p->nodes[i].naddrs; a++) {
            const struct addr_key *k = addr_first(ak, nak, &p->nodes[i].addrs[a]);
            char buf[MOAT_ADDR_STRLEN];
            addr_format(&p->nodes[i].addrs[a], buf, sizeof(buf));
            if (k)
                fin_err(d, &p->nodes[i].at, ctx,
                        "ips[%zu]: %s is also an address of workload \"%s\"", a, buf,
                        p->workloads[k->w].name);
        }
    }
    free(wk);
    free(first);
    free(ak);
    return 0;
}

static int cmp_rule_id(const void *a, const void *b)
{
    const struct moat_rule *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

int policy_finish(struct moat_policy *p, struct moat_diags *d)
{
    size_t before = diags_total(d);
    check_clusters(p, d);
    if (resolve_workload_clusters(p) < 0 || add_builtin_object(p, "any", MOAT_OBJ_ANY) < 0 ||
        add_builtin_object(p, "host", MOAT_OBJ_HOST) < 0 ||
        add_builtin_object(p, "cluster-dns", MOAT_OBJ_SELECTOR) < 0)
        return -ENOMEM;
    if (check_objects(p, d) < 0)
        return -ENOMEM;
    assign_object_ids(p, d);
    /* A rule's cluster index is needed before system overrides can be matched. */
    for (size_t i = 0; i < p->nrules; i++)
        p->rules[i].cluster = policy_find_cluster(p, p->rules[i].cluster_ref);
    size_t nsys = p->nclusters * 2;
    if (add_system_rules(p) < 0)
        return -ENOMEM;
    if (resolve_rules(p, nsys, d) < 0)
        return -ENOMEM;
    apply_system_overrides(p, nsys);
    if (assign_rule_ids(p, d) < 0)
        return -ENOMEM;
    if (check_workloads(p, d) < 0 || diags_oom(d))
        return -ENOMEM;
    if (diags_total(d) > before)
        return -EINVAL;
    if (p->nrules > 1)
        qsort(p->rules, p->nrules, sizeof(*p->rules), cmp_rule_id);
    p->finished = true;
    return 0;
}

static int load_set_into(struct moat_policy *p, struct doc_set *set, struct moat_diags *d)
{
    int err = policy_load_docs(p, set, d);
    doc_set_free(set);
    return err;
}

int policy_load_sources(struct moat_policy **out, const struct policy_source *src, size_t n,
                        struct moat_diags *d)
{
    return policy_load_sources_then(out, src, n, NULL, NULL, d);
}

int policy_load_sources_then(struct moat_policy **out, const struct policy_source *src, size_t n,
                             int (*then)(void *arg, struct moat_policy *p), void *arg,
                             struct moat_diags *d)
{
    *out = NULL;
    struct moat_policy *p = policy_new();
    if (!p)
        return -ENOMEM;
    int first = 0;
    bool unreadable = false;
    for (size_t i = 0; i < n; i++) {
        struct doc_set *set;
        int err = src[i].path ? doc_parse_file(src[i].path, &set, d)
                              : doc_parse_text_limited(src[i].text, src[i].len, src[i].name,
                                                       src[i].limits, &set, d);
        if (err)
            unreadable = true;
        else
            err = load_set_into(p, set, d);
        if (err == -ENOMEM) {
            policy_free(p);
            return err;
        }
        first = first ? first : err;
    }
    if (then) {
        int err = then(arg, p);
        if (err == -ENOMEM) {
            policy_free(p);
            return err;
        }
        first = first ? first : err;
    }
    /* Documents with errors were left out; checking the rest still reports
     * every other problem (references to those documents are not reported). */
    if (!unreadable) {
        int err = policy_finish(p, d);
        if (!first || err == -ENOMEM)
            first = err;
    }
    if (first) {
        policy_free(p);
        return first;
    }
    *out = p;
    return 0;
}

int policy_load_files(struct moat_policy **out, const char *const *paths, size_t n,
                      struct moat_diags *d)
{
    struct policy_source *src = moat_calloc(n ? n : 1, sizeof(*src));
    if (!src) {
        *out = NULL;
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        src[i].path = paths[i];
    int err = policy_load_sources(out, src, n, d);
    free(src);
    return err;
}

int policy_load_json(struct moat_policy **out, const json_t *docs, const char *name,
                     struct moat_diags *d)
{
    *out = NULL;
    struct doc_set *set;
    int err = doc_set_from_json(docs, name, &set, d);
    if (err)
        return err;
    struct moat_policy *p = policy_new();
    if (!p) {
        doc_set_free(set);
        return -ENOMEM;
    }
    int first = load_set_into(p, set, d);
    if (first != -ENOMEM) {
        int fin = policy_finish(p, d);
        first = !first || fin == -ENOMEM ? fin : first;
    }
    if (first) {
        policy_free(p);
        return first;
    }
    *out = p;
    return 0;
}

int policy_load_text(struct moat_policy **out, const char *text, size_t len, const char *name,
                     struct moat_diags *d)
{
    struct policy_source src = {.text = text, .len = len, .name = name};
    return policy_load_sources(out, &src, 1, d);
}
