/*
 * output: how the API commands print answers — human tables (columns sized
 * to their contents), JSON (jansson, indented) and YAML (block style, strings
 * quoted whenever a plain scalar could be read as something else).
 */
#include "apicmd.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CELL_MAX 256
#define OUT_COLS_MAX 16

static void cell_append(char *buf, size_t n, const char *s)
{
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, "%s%s", len ? "," : "", s);
}

static void cell(const json_t *v, char *buf, size_t n);

/* Any other map (labels, a reported state) as "key=value" pairs joined by commas. */
static void cell_pairs(const json_t *v, char *buf, size_t n)
{
    const char *key;
    const json_t *x;
    buf[0] = '\0';
    json_object_foreach((json_t *)v, key, x)
    {
        char one[OUT_CELL_MAX], pair[OUT_CELL_MAX * 2];
        cell(x, one, sizeof(one));
        snprintf(pair, sizeof(pair), "%s=%s", key, one);
        cell_append(buf, n, pair);
    }
}

/*
 * A destination {object, ports} as "object:ports", a cidr {cidr, except} as
 * its cidr, any other map as key=value pairs.
 */
static void cell_object(const json_t *v, char *buf, size_t n)
{
    const json_t *obj = json_object_get(v, "object"), *cidr = json_object_get(v, "cidr");
    const json_t *ports = json_object_get(v, "ports");
    char inner[OUT_CELL_MAX] = "", p[OUT_CELL_MAX] = "";
    if (!obj && !cidr) {
        cell_pairs(v, buf, n);
        return;
    }
    if (cidr) {
        snprintf(buf, n, "%s", json_string_value(cidr) ? json_string_value(cidr) : "?");
        return;
    }
    if (json_is_integer(obj))
        snprintf(inner, sizeof(inner), "%lld", (long long)json_integer_value(obj));
    else
        snprintf(inner, sizeof(inner), "%s", json_string_value(obj) ? json_string_value(obj) : "?");
    size_t i;
    const json_t *x;
    if (json_is_array(ports)) {
        json_array_foreach(ports, i, x)
            cell_append(p, sizeof(p), json_string_value(x) ? json_string_value(x) : "?");
    } else if (json_is_string(ports)) {
        snprintf(p, sizeof(p), "%s", json_string_value(ports));
    } else if (json_is_integer(ports)) {
        snprintf(p, sizeof(p), "%lld", (long long)json_integer_value(ports));
    }
    snprintf(buf, n, "%s%s%s", inner, p[0] ? ":" : "", p);
}

/* One value as table text: scalars as they read, lists joined by commas, "-" for none. */
static void cell(const json_t *v, char *buf, size_t n)
{
    buf[0] = '\0';
    size_t i;
    const json_t *x;
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        snprintf(buf, n, "%s", json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, n, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
        break;
    case JSON_ARRAY:
        json_array_foreach(v, i, x)
        {
            char one[OUT_CELL_MAX];
            cell(x, one, sizeof(one));
            cell_append(buf, n, one);
        }
        break;
    case JSON_OBJECT:
        cell_object(v, buf, n);
        break;
    default:
        break;
    }
    if (!v || !buf[0])
        snprintf(buf, n, "-");
}

/* A column's value: `key`, or `a.b` for member b of object a. */
static const json_t *col_value(const json_t *item, const char *key)
{
    const char *dot = strchr(key, '.');
    if (!dot)
        return json_object_get(item, key);
    char head[64];
    snprintf(head, sizeof(head), "%.*s", (int)(dot - key), key);
    return json_object_get(json_object_get(item, head), dot + 1);
}

static void print_row(const json_t *item, const struct out_col *cols, const int *width)
{
    for (size_t c = 0; cols[c].head; c++) {
        char text[OUT_CELL_MAX];
        if (item)
            cell(col_value(item, cols[c].key), text, sizeof(text));
        else
            snprintf(text, sizeof(text), "%s", cols[c].head);
        printf("%-*s%s", cols[c + 1].head ? width[c] : 0, text, cols[c + 1].head ? "  " : "\n");
    }
}

static void print_table(const json_t *items, const struct out_col *cols)
{
    int width[OUT_COLS_MAX] = {0};
    size_t i;
    const json_t *item;
    for (size_t c = 0; cols[c].head && c < OUT_COLS_MAX; c++)
        width[c] = (int)strlen(cols[c].head);
    json_array_foreach(items, i, item)
    {
        for (size_t c = 0; cols[c].head && c < OUT_COLS_MAX; c++) {
            char text[OUT_CELL_MAX];
            cell(col_value(item, cols[c].key), text, sizeof(text));
            if ((int)strlen(text) > width[c])
                width[c] = (int)strlen(text);
        }
    }
    print_row(NULL, cols, width);
    json_array_foreach(items, i, item) print_row(item, cols, width);
}

int out_list(enum cli_format f, json_t *list, const struct out_col *cols)
{
    if (f == CLI_FORMAT_JSON)
        return cli_print_json(list);
    if (f == CLI_FORMAT_YAML)
        out_yaml(stdout, list);
    else
        print_table(json_object_get(list, "items"), cols);
    const json_t *items = json_object_get(list, "items");
    long long total = (long long)json_integer_value(json_object_get(list, "total"));
    if (f == CLI_FORMAT_TABLE && total > (long long)json_array_size(items))
        printf("(%zu of %lld shown; use --limit and --offset for more)\n", json_array_size(items),
               total);
    json_decref(list);
    return MOAT_EXIT_OK;
}

int out_doc(enum cli_format f, json_t *doc)
{
    if (f == CLI_FORMAT_JSON)
        return cli_print_json(doc);
    if (f == CLI_FORMAT_YAML) {
        out_yaml(stdout, doc);
    } else {
        const char *key;
        const json_t *v;
        json_object_foreach(doc, key, v)
        {
            char text[OUT_CELL_MAX * 4];
            cell(v, text, sizeof(text));
            printf("%-16s %s\n", key, text);
        }
    }
    json_decref(doc);
    return MOAT_EXIT_OK;
}

int out_result(enum cli_format f, const char *line, json_t *doc)
{
    if (f == CLI_FORMAT_TABLE) {
        printf("%s\n", line);
        json_decref(doc);
        return MOAT_EXIT_OK;
    }
    return out_doc(f, doc ? doc : json_object());
}

/* True when `s` reads back as the same string when written plain. */
static bool yaml_plain(const char *s)
{
    static const char *const special[] = {"true", "false", "yes", "no", "on", "off",
                                          "null", "y",     "n",   "~",  NULL};
    if (!isalpha((unsigned char)s[0]))
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_./", *p))
            return false;
    for (size_t i = 0; special[i]; i++)
        if (strcasecmp(s, special[i]) == 0)
            return false;
    return true;
}

static void yaml_scalar(FILE *out, const json_t *j)
{
    if (json_is_string(j) && yaml_plain(json_string_value(j))) {
        fprintf(out, "%s\n", json_string_value(j));
        return;
    }
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    fprintf(out, "%s\n", s ? s : "null");
    free(s);
}

static void yaml_key(FILE *out, const char *key)
{
    json_t *k = yaml_plain(key) ? NULL : json_string(key);
    char *s = k ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
    fprintf(out, "%s:", s ? s : key);
    free(s);
    json_decref(k);
}

static bool yaml_empty_or_scalar(const json_t *j)
{
    return (!json_is_object(j) && !json_is_array(j)) ||
           (json_is_object(j) && !json_object_size(j)) || (json_is_array(j) && !json_array_size(j));
}

static void yaml_node(FILE *out, const json_t *j, int indent, bool inline_first);

static void yaml_value(FILE *out, const json_t *v, int indent)
{
    if (yaml_empty_or_scalar(v)) {
        fputc(' ', out);
        yaml_node(out, v, indent, true);
    } else {
        fputc('\n', out);
        yaml_node(out, v, indent + 2, false);
    }
}

static void yaml_node(FILE *out, const json_t *j, int indent, bool inline_first)
{
    size_t i;
    const char *key;
    const json_t *v;
    bool first = true;
    if (yaml_empty_or_scalar(j)) {
        if (json_is_object(j) || json_is_array(j))
            fprintf(out, "%s\n", json_is_object(j) ? "{}" : "[]");
        else
            yaml_scalar(out, j);
        return;
    }
    if (json_is_object(j)) {
        json_object_foreach((json_t *)j, key, v)
        {
            fprintf(out, "%*s", inline_first && first ? 0 : indent, "");
            first = false;
            yaml_key(out, key);
            yaml_value(out, v, indent);
        }
        return;
    }
    json_array_foreach(j, i, v)
    {
        fprintf(out, "%*s- ", inline_first && first ? 0 : indent, "");
        first = false;
        yaml_node(out, v, indent + 2, true);
    }
}

void out_yaml(FILE *out, const json_t *j)
{
    yaml_node(out, j, 0, false);
}
