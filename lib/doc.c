/* doc: YAML (libyaml) and JSON (jansson) into one document tree (see doc.h). */
#include "doc.h"
#include "mem.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const struct doc_limits doc_limits_file = {.max_bytes = MOAT_DOC_MAX_BYTES,
                                           .max_nodes = MOAT_DOC_MAX_NODES};
const struct doc_limits doc_limits_server = {.max_bytes = MOAT_DOC_SERVER_MAX_BYTES,
                                             .max_nodes = MOAT_DOC_SERVER_MAX_NODES};

struct build_ctx {
    const char *name;
    struct moat_diags *d;
    size_t nodes;
    size_t max_nodes; /* 0: MOAT_DOC_MAX_NODES */
    int err;          /* first error */
    /* YAML aliases: a node converted a second time is an alias being expanded. */
    unsigned char *seen; /* per node of the current YAML document */
    int in_alias;        /* > 0 while converting an alias */
    size_t alias_nodes;  /* nodes made by expanding aliases in this document */
    size_t alias_budget;
};

void doc_node_free(struct doc_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->count; i++) {
        doc_node_free(n->items[i]);
        if (n->keys)
            doc_node_free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->text);
    free(n);
}

void doc_set_free(struct doc_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        doc_node_free(set->docs[i]);
    free(set->docs);
    free(set->name);
    free(set);
}

static struct doc_node *node_new(struct build_ctx *c, enum doc_type type, int line)
{
    size_t max = c->max_nodes ? c->max_nodes : MOAT_DOC_MAX_NODES;
    if (++c->nodes > max) {
        if (!c->err)
            diags_add(c->d, c->name, line, NULL, "document has more than %zu nodes", max);
        c->err = c->err ? c->err : -EINVAL;
        return NULL;
    }
    if (c->in_alias && ++c->alias_nodes > c->alias_budget) {
        if (!c->err)
            diags_add(c->d, c->name, line, NULL, "YAML aliases expand to more than %zu nodes",
                      c->alias_budget);
        c->err = c->err ? c->err : -EINVAL;
        return NULL;
    }
    struct doc_node *n = moat_calloc(1, sizeof(*n));
    if (!n) {
        c->err = -ENOMEM;
        return NULL;
    }
    n->type = type;
    n->line = line;
    return n;
}

/* Appends child (and key, for maps) to parent; frees them on failure. */
static int node_append(struct build_ctx *c, struct doc_node *parent, struct doc_node *key,
                       struct doc_node *child)
{
    if (parent->count == parent->cap) {
        /* Grow geometrically: appending item by item must stay linear. */
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        struct doc_node **items = moat_reallocarray(parent->items, cap, sizeof(*items));
        if (items)
            parent->items = items;
        struct doc_node **keys = NULL;
        if (items && key) {
            keys = moat_reallocarray(parent->keys, cap, sizeof(*keys));
            if (keys)
                parent->keys = keys;
        }
        if (!items || (key && !keys)) {
            doc_node_free(key);
            doc_node_free(child);
            c->err = -ENOMEM;
            return -ENOMEM;
        }
        parent->cap = cap;
    }
    parent->items[parent->count] = child;
    if (key)
        parent->keys[parent->count] = key;
    parent->count++;
    return 0;
}

/* ---- duplicate keys: a hash set of a big mapping's keys ---- */

struct key_set {
    size_t *slot; /* index + 1 into the map's keys; 0 = empty */
    size_t mask;
};

static size_t key_hash(const char *s)
{
    size_t h = 14695981039346656037u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int key_set_init(struct key_set *ks, size_t n)
{
    size_t size = 64;
    while (size < 2 * n)
        size *= 2;
    ks->slot = moat_calloc(size, sizeof(*ks->slot));
    ks->mask = size - 1;
    return ks->slot ? 0 : -ENOMEM;
}

/* The slot of `key` in map `m`: it holds the key's index + 1, or 0 when absent. */
static size_t *key_set_find(struct key_set *ks, const struct doc_node *m, const char *key)
{
    size_t i = key_hash(key) & ks->mask;
    while (ks->slot[i] && strcmp(m->keys[ks->slot[i] - 1]->text, key) != 0)
        i = (i + 1) & ks->mask;
    return &ks->slot[i];
}

/* ---- YAML ---- */

static bool text_in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static bool looks_integer(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* YAML 1.1 resolution of a plain scalar. */
static enum doc_kind plain_kind(const char *s, const char **canon)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes",
                                        "YES",  "on",   "On",   "ON",  NULL};
    static const char *const falses[] = {"false", "False", "FALSE", "no",  "No",
                                         "NO",    "off",   "Off",   "OFF", NULL};
    *canon = NULL;
    if (text_in(s, nulls))
        return DOC_NULL;
    if (text_in(s, trues)) {
        *canon = "true";
        return DOC_BOOL;
    }
    if (text_in(s, falses)) {
        *canon = "false";
        return DOC_BOOL;
    }
    return looks_integer(s) ? DOC_INT : DOC_STR;
}

static struct doc_node *yaml_convert(struct build_ctx *c, yaml_document_t *doc, yaml_node_t *yn,
                                     int depth);

static struct doc_node *yaml_scalar(struct build_ctx *c, yaml_node_t *yn)
{
    int line = (int)yn->start_mark.line + 1;
    struct doc_node *n = node_new(c, DOC_SCALAR, line);
    if (!n)
        return NULL;
    const char *text = (const char *)yn->data.scalar.value;
    const char *canon = NULL;
    n->kind = yn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_kind(text, &canon) : DOC_STR;
    n->text = moat_strdup(canon ? canon : text);
    if (!n->text) {
        c->err = -ENOMEM;
        doc_node_free(n);
        return NULL;
    }
    return n;
}

static struct doc_node *yaml_mapping(struct build_ctx *c, yaml_document_t *doc, yaml_node_t *yn,
                                     int depth)
{
    struct doc_node *n = node_new(c, DOC_MAP, (int)yn->start_mark.line + 1);
    if (!n)
        return NULL;
    size_t npairs = (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
    struct key_set ks = {NULL, 0};
    if (npairs > 16 && key_set_init(&ks, npairs) < 0) {
        c->err = -ENOMEM;
        doc_node_free(n);
        return NULL;
    }
    for (yaml_node_pair_t *p = yn->data.mapping.pairs.start; p < yn->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        if (!kn || kn->type != YAML_SCALAR_NODE) {
            diags_add(c->d, c->name, kn ? (int)kn->start_mark.line + 1 : n->line, NULL,
                      "map keys must be plain strings");
            c->err = c->err ? c->err : -EINVAL;
            continue;
        }
        const char *text = (const char *)kn->data.scalar.value;
        size_t *slot = ks.slot ? key_set_find(&ks, n, text) : NULL;
        if (slot ? *slot != 0 : doc_map_get(n, text) != NULL) {
            diags_add(c->d, c->name, (int)kn->start_mark.line + 1, NULL, "duplicate key \"%s\"",
                      text);
            c->err = c->err ? c->err : -EINVAL;
            continue;
        }
        struct doc_node *key = yaml_scalar(c, kn);
        struct doc_node *val = key ? yaml_convert(c, doc, vn, depth + 1) : NULL;
        if (!key || !val) {
            doc_node_free(key);
            doc_node_free(n);
            free(ks.slot);
            return NULL;
        }
        key->kind = DOC_STR;
        if (node_append(c, n, key, val) < 0) {
            doc_node_free(n);
            free(ks.slot);
            return NULL;
        }
        if (slot)
            *slot = n->count;
    }
    free(ks.slot);
    return n;
}

static struct doc_node *yaml_sequence(struct build_ctx *c, yaml_document_t *doc, yaml_node_t *yn,
                                      int depth)
{
    struct doc_node *n = node_new(c, DOC_SEQ, (int)yn->start_mark.line + 1);
    if (!n)
        return NULL;
    for (yaml_node_item_t *it = yn->data.sequence.items.start; it < yn->data.sequence.items.top;
         it++) {
        struct doc_node *child = yaml_convert(c, doc, yaml_document_get_node(doc, *it), depth + 1);
        if (!child || node_append(c, n, NULL, child) < 0) {
            doc_node_free(n);
            return NULL;
        }
    }
    return n;
}

static struct doc_node *yaml_convert(struct build_ctx *c, yaml_document_t *doc, yaml_node_t *yn,
                                     int depth)
{
    if (!yn) {
        c->err = c->err ? c->err : -EINVAL;
        return NULL;
    }
    if (depth > MOAT_DOC_MAX_DEPTH) {
        diags_add(c->d, c->name, (int)yn->start_mark.line + 1, NULL,
                  "nesting deeper than %d levels", MOAT_DOC_MAX_DEPTH);
        c->err = c->err ? c->err : -EINVAL;
        return NULL;
    }
    size_t idx = (size_t)(yn - doc->nodes.start);
    bool again = c->seen[idx];
    c->seen[idx] = 1;
    c->in_alias += again;
    struct doc_node *n = NULL;
    switch (yn->type) {
    case YAML_SCALAR_NODE:
        n = yaml_scalar(c, yn);
        break;
    case YAML_SEQUENCE_NODE:
        n = yaml_sequence(c, doc, yn, depth);
        break;
    case YAML_MAPPING_NODE:
        n = yaml_mapping(c, doc, yn, depth);
        break;
    default:
        c->err = c->err ? c->err : -EINVAL;
        break;
    }
    c->in_alias -= again;
    return n;
}

/*
 * Converts one YAML document. Aliases may expand to at most as many nodes as
 * the document itself holds, or MOAT_DOC_MAX_ALIASED, whichever is more: the
 * guard against "billion laughs" documents.
 */
static struct doc_node *yaml_convert_document(struct build_ctx *c, yaml_document_t *doc,
                                              yaml_node_t *root)
{
    size_t count = (size_t)(doc->nodes.top - doc->nodes.start);
    c->seen = moat_calloc(count, 1);
    if (!c->seen) {
        c->err = -ENOMEM;
        return NULL;
    }
    c->in_alias = 0;
    c->alias_nodes = 0;
    c->alias_budget = count > MOAT_DOC_MAX_ALIASED ? count : MOAT_DOC_MAX_ALIASED;
    struct doc_node *n = yaml_convert(c, doc, root, 0);
    free(c->seen);
    c->seen = NULL;
    return n;
}

static int set_append(struct doc_set *set, struct doc_node *n)
{
    if (moat_grow(&set->docs, &set->cap, set->count + 1, sizeof(*set->docs)) < 0) {
        doc_node_free(n);
        return -ENOMEM;
    }
    set->docs[set->count++] = n;
    return 0;
}

/*
 * Checks the nesting depth with libyaml's event parser before loading: the
 * scanner costs O(size * flow depth), so `[[[[...` a few hundred kilobytes
 * deep would take seconds to load before the depth check in yaml_convert
 * could reject it. Syntax errors are left to the loader to report.
 */
static int yaml_check_depth(const char *text, size_t len, struct build_ctx *c)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int err = 0, depth = 0;
    for (bool done = false; !done && !err;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            err = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : 0;
            break;
        }
        if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
            if (++depth > MOAT_DOC_MAX_DEPTH + 1) {
                diags_add(c->d, c->name, (int)ev.start_mark.line + 1, NULL,
                          "nesting deeper than %d levels", MOAT_DOC_MAX_DEPTH);
                err = -EINVAL;
            }
        } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return err;
}

static int parse_yaml(const char *text, size_t len, struct doc_set *set, struct build_ctx *c)
{
    int check = yaml_check_depth(text, len, c);
    if (check)
        return check;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int err = 0;
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            diags_add(c->d, c->name, (int)parser.problem_mark.line + 1, NULL, "YAML: %s%s%s",
                      parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                      parser.context ? parser.context : "");
            err = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            break; /* end of stream */
        }
        struct doc_node *n = yaml_convert_document(c, &doc, root);
        yaml_document_delete(&doc);
        if (!n || (err = set_append(set, n)) < 0) {
            err = err ? err : (c->err ? c->err : -ENOMEM);
            break;
        }
        if (c->err) {
            err = c->err;
            break;
        }
    }
    yaml_parser_delete(&parser);
    return err ? err : c->err;
}

/* ---- JSON ---- */

static struct doc_node *json_convert(struct build_ctx *c, json_t *j, int depth);

static struct doc_node *json_scalar(struct build_ctx *c, json_t *j)
{
    struct doc_node *n = node_new(c, DOC_SCALAR, 0);
    if (!n)
        return NULL;
    char num[64];
    const char *text = num;
    switch (json_typeof(j)) {
    case JSON_STRING:
        n->kind = DOC_STR;
        text = json_string_value(j);
        break;
    case JSON_INTEGER:
        n->kind = DOC_INT;
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        break;
    case JSON_REAL:
        n->kind = DOC_FLOAT;
        snprintf(num, sizeof(num), "%.17g", json_real_value(j));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        n->kind = DOC_BOOL;
        text = json_is_true(j) ? "true" : "false";
        break;
    default:
        n->kind = DOC_NULL;
        text = "";
        break;
    }
    n->text = moat_strdup(text);
    if (!n->text) {
        c->err = -ENOMEM;
        doc_node_free(n);
        return NULL;
    }
    return n;
}

static struct doc_node *json_object_node(struct build_ctx *c, json_t *j, int depth)
{
    struct doc_node *n = node_new(c, DOC_MAP, 0);
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (!n)
            return NULL;
        struct doc_node *key = node_new(c, DOC_SCALAR, 0);
        if (key)
            key->text = moat_strdup(k);
        struct doc_node *val = key && key->text ? json_convert(c, v, depth + 1) : NULL;
        if (!val) {
            c->err = c->err ? c->err : -ENOMEM;
            doc_node_free(key);
            doc_node_free(n);
            return NULL;
        }
        if (node_append(c, n, key, val) < 0) {
            doc_node_free(n);
            return NULL;
        }
    }
    return n;
}

static struct doc_node *json_convert(struct build_ctx *c, json_t *j, int depth)
{
    if (depth > MOAT_DOC_MAX_DEPTH) {
        diags_add(c->d, c->name, 0, NULL, "nesting deeper than %d levels", MOAT_DOC_MAX_DEPTH);
        c->err = c->err ? c->err : -EINVAL;
        return NULL;
    }
    if (json_is_object(j))
        return json_object_node(c, j, depth);
    if (!json_is_array(j))
        return json_scalar(c, j);
    struct doc_node *n = node_new(c, DOC_SEQ, 0);
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v)
    {
        if (!n)
            return NULL;
        struct doc_node *child = json_convert(c, v, depth + 1);
        if (!child || node_append(c, n, NULL, child) < 0) {
            doc_node_free(n);
            return NULL;
        }
    }
    return n;
}

static int parse_json(const char *text, size_t len, struct doc_set *set, struct build_ctx *c)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        diags_add(c->d, c->name, jerr.line > 0 ? jerr.line : 0, NULL, "JSON: %s", jerr.text);
        return -EINVAL;
    }
    int err = 0;
    if (json_is_array(root)) {
        size_t i;
        json_t *v;
        json_array_foreach(root, i, v)
        {
            struct doc_node *n = json_convert(c, v, 1);
            if (!n || (err = set_append(set, n)) < 0)
                break;
        }
    } else {
        struct doc_node *n = json_convert(c, root, 0);
        if (n)
            err = set_append(set, n);
    }
    json_decref(root);
    return err ? err : c->err;
}

int doc_set_from_json(const json_t *docs, const char *name, struct doc_set **out,
                      struct moat_diags *d)
{
    *out = NULL;
    struct doc_set *set = moat_calloc(1, sizeof(*set));
    if (!set)
        return -ENOMEM;
    set->name = moat_strdup(name ? name : "-");
    set->json = true;
    if (!set->name) {
        free(set);
        return -ENOMEM;
    }
    struct build_ctx c = {.name = set->name, .d = d};
    int err = 0;
    size_t i;
    json_t *v;
    json_array_foreach(docs, i, v)
    {
        struct doc_node *n = json_convert(&c, v, 1);
        if (!n || (err = set_append(set, n)) < 0)
            break;
    }
    err = err ? err : c.err;
    if (err || diags_oom(d)) {
        doc_set_free(set);
        return err ? err : -ENOMEM;
    }
    *out = set;
    return 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* By the file name when it says (.json, .yaml, .yml), else by the first character. */
static bool is_json(const char *text, size_t len, const char *name)
{
    size_t nl = name ? strlen(name) : 0;
    if (nl && ends_with(name, nl, ".json"))
        return true;
    if (nl && (ends_with(name, nl, ".yaml") || ends_with(name, nl, ".yml")))
        return false; /* flow-style YAML ({kind: Cluster, ...}) is YAML too */
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')
            continue;
        return text[i] == '{' || text[i] == '[';
    }
    return false;
}

int doc_parse_text(const char *text, size_t len, const char *name, struct doc_set **out,
                   struct moat_diags *d)
{
    return doc_parse_text_limited(text, len, name, NULL, out, d);
}

int doc_parse_text_limited(const char *text, size_t len, const char *name,
                           const struct doc_limits *lim, struct doc_set **out, struct moat_diags *d)
{
    *out = NULL;
    lim = lim ? lim : &doc_limits_file;
    if (len > lim->max_bytes) {
        diags_add(d, name, 0, NULL, "input is larger than %zu bytes", lim->max_bytes);
        return -EINVAL;
    }
    struct doc_set *set = moat_calloc(1, sizeof(*set));
    if (!set)
        return -ENOMEM;
    set->name = moat_strdup(name ? name : "-");
    if (!set->name) {
        free(set);
        return -ENOMEM;
    }
    struct build_ctx c = {.name = set->name, .d = d, .max_nodes = lim->max_nodes};
    set->json = is_json(text, len, name);
    int err = set->json ? parse_json(text, len, set, &c) : parse_yaml(text, len, set, &c);
    if (err || diags_oom(d)) {
        doc_set_free(set);
        return err ? err : -ENOMEM;
    }
    *out = set;
    return 0;
}

static int read_stream(FILE *f, size_t max, char **buf, size_t *len)
{
    size_t cap = 0;
    *buf = NULL;
    *len = 0;
    for (;;) {
        if (moat_grow(buf, &cap, *len + 65536, 1) < 0) {
            free(*buf);
            return -ENOMEM;
        }
        size_t got = fread(*buf + *len, 1, cap - *len - 1, f);
        *len += got;
        if (got == 0)
            break;
        if (*len > max) {
            free(*buf);
            return -EFBIG;
        }
    }
    if (ferror(f)) {
        free(*buf);
        return -EIO;
    }
    (*buf)[*len] = '\0';
    return 0;
}

int doc_read_file(const char *path, char **text, size_t *len)
{
    return doc_read_file_max(path, MOAT_DOC_MAX_BYTES, text, len);
}

int doc_read_file_max(const char *path, size_t max, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    bool std = strcmp(path, "-") == 0;
    FILE *f = std ? stdin : fopen(path, "rb");
    if (!f)
        return -errno;
    int err = read_stream(f, max, text, len);
    if (!std)
        fclose(f);
    return err;
}

int doc_parse_file(const char *path, struct doc_set **out, struct moat_diags *d)
{
    *out = NULL;
    char *buf;
    size_t len;
    int err = doc_read_file(path, &buf, &len);
    if (err == -EFBIG) {
        diags_add(d, path, 0, NULL, "input is larger than %u bytes", MOAT_DOC_MAX_BYTES);
        return -EINVAL;
    }
    if (err == -ENOMEM || err == -EIO) {
        diags_add(d, path, 0, NULL, "cannot read: %s", strerror(-err));
        return err;
    }
    if (err) {
        diags_add(d, path, 0, NULL, "cannot open: %s", strerror(-err));
        return err;
    }
    err = doc_parse_text(buf, len, path, out, d);
    free(buf);
    return err;
}

const struct doc_node *doc_map_get(const struct doc_node *map, const char *key)
{
    if (!map || map->type != DOC_MAP)
        return NULL;
    for (size_t i = 0; i < map->count; i++)
        if (strcmp(map->keys[i]->text, key) == 0)
            return map->items[i];
    return NULL;
}

const char *doc_type_name(const struct doc_node *n)
{
    if (n->type == DOC_MAP)
        return "a map";
    if (n->type == DOC_SEQ)
        return "a list";
    switch (n->kind) {
    case DOC_INT:
        return "a number";
    case DOC_FLOAT:
        return "a number";
    case DOC_BOOL:
        return "a boolean";
    case DOC_NULL:
        return "null";
    default:
        return "a string";
    }
}
