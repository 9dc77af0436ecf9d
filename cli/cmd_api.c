/*
 * cmd_api: the pieces the commands over moat-server's API share — one table
 * of their options, argument parsing, opening the client, reading a
 * document file as JSON (see apicmd.h).
 */
#include "apicmd.h"
#include "doc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct opt_spec {
    const char *name;  /* long name without "--" */
    char short_name;   /* 0 when none */
    const char *query; /* the API's query argument, for filters */
    bool flag;         /* takes no value */
};

/* Indexed by enum api_opt. */
static const struct opt_spec opt_specs[API_OPT_COUNT] = {
    [API_OPT_FILE] = {"file", 'f', NULL},
    [API_OPT_CLUSTER] = {"cluster", 0, "cluster"},
    [API_OPT_NAME] = {"name", 0, "name"},
    [API_OPT_NAMESPACE] = {"namespace", 0, "namespace"},
    [API_OPT_APP] = {"app", 0, "app"},
    [API_OPT_DEFENSE] = {"defense", 0, "defense"},
    [API_OPT_MODE] = {"mode", 0, "mode"},
    [API_OPT_DEFAULT_ACTION] = {"default-action", 0, "default_action"},
    [API_OPT_ENABLED] = {"enabled", 0, "enabled"},
    [API_OPT_ACTION] = {"action", 0, "action"},
    [API_OPT_SOURCE] = {"source", 0, "source"},
    [API_OPT_PROTOCOL] = {"protocol", 0, "protocol"},
    [API_OPT_TYPE] = {"type", 0, "type"},
    [API_OPT_PRIORITY] = {"priority", 0, NULL},
    [API_OPT_DESCRIPTION] = {"description", 0, NULL},
    [API_OPT_LIMIT] = {"limit", 0, "limit"},
    [API_OPT_OFFSET] = {"offset", 0, "offset"},
    [API_OPT_NODE] = {"node", 0, "node"},
    [API_OPT_KIND] = {"kind", 0, "kind"},
    [API_OPT_STATUS] = {"status", 0, "status"},
    [API_OPT_WORKLOAD] = {"workload", 0, "workload"},
    [API_OPT_SINCE] = {"since", 0, "since"},
    [API_OPT_UNTIL] = {"until", 0, "until"},
    [API_OPT_FOLLOW] = {"follow", 0, NULL, true},
    [API_OPT_IMAGE] = {"image", 0, "image"},
    [API_OPT_LABEL] = {"label", 0, "label"},
    [API_OPT_ALL] = {"all", 0, NULL, true},
    [API_OPT_ID] = {"id", 0, "id"},
    [API_OPT_DESTINATION] = {"destination", 0, "destination"},
    [API_OPT_PORT] = {"port", 0, "port"},
    [API_OPT_TTL] = {"ttl", 0, NULL},
    [API_OPT_USES] = {"uses", 0, NULL},
    [API_OPT_LIST] = {"list", 0, NULL, true},
    [API_OPT_REVOKE] = {"revoke", 0, NULL},
    [API_OPT_ACTOR] = {"actor", 0, "actor"},
};

int cli_parse_format_yaml(const char *value, enum cli_format *out)
{
    if (strcmp(value, "yaml") == 0) {
        *out = CLI_FORMAT_YAML;
        return 0;
    }
    return cli_parse_format(value, out);
}

/* The option `arg` names ("--name", "--name=v", "-f"): its index, or -1. */
static int find_opt(const char *arg, api_mask allowed, const char **inline_value)
{
    *inline_value = NULL;
    for (int i = 0; i < API_OPT_COUNT; i++) {
        const struct opt_spec *s = &opt_specs[i];
        if (!(allowed & API_BIT(i)))
            continue;
        if (s->short_name && arg[0] == '-' && arg[1] == s->short_name && !arg[2])
            return i;
        size_t n = strlen(s->name);
        if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, s->name, n) != 0)
            continue;
        if (arg[2 + n] == '=')
            *inline_value = arg + 3 + n;
        if (arg[2 + n] == '=' || !arg[2 + n])
            return i;
    }
    return -1;
}

/* The common options: 1 when `arg` was one (value taken), 0 when not, or an exit code < 0. */
static int common_opt(struct api_args *a, const char *arg, const char *value)
{
    if (strcmp(arg, "--server") == 0)
        a->server = value;
    else if (strcmp(arg, "--token") == 0)
        a->token = value;
    else if (strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0) {
        if (value && cli_parse_format_yaml(value, &a->format) < 0)
            return -cli_usage_error(a->cmd, "-o: \"%s\" is not table, json or yaml", value);
    } else
        return 0;
    if (!value)
        return -cli_usage_error(a->cmd, "%s: needs a value", arg);
    return 1;
}

static int parse_one(struct api_args *a, api_mask allowed, int *i, int argc, char **argv)
{
    const char *arg = argv[*i], *value = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        cli_print_help(stdout, a->cmd);
        a->help = true;
        return MOAT_EXIT_OK;
    }
    int rc = common_opt(a, arg, value);
    if (rc < 0)
        return -rc;
    if (rc > 0) {
        (*i)++;
        return MOAT_EXIT_OK;
    }
    const char *inl;
    int o = find_opt(arg, allowed, &inl);
    if (o < 0)
        return cli_usage_error(a->cmd, "%s: unknown option", arg);
    if (opt_specs[o].flag) {
        if (inl)
            return cli_usage_error(a->cmd, "--%s: takes no value", opt_specs[o].name);
        a->opt[o] = "true";
        return MOAT_EXIT_OK;
    }
    if (!inl && !value)
        return cli_usage_error(a->cmd, "%s: needs a value", arg);
    a->opt[o] = inl ? inl : value;
    if (!inl)
        (*i)++;
    return MOAT_EXIT_OK;
}

int api_args_parse(const char *name, api_mask allowed, int min_pos, int max_pos, int argc,
                   char **argv, struct api_args *a)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cli_find(name);
    bool rest = false;
    for (int i = 1; i < argc && !a->help; i++) {
        if (!rest && strcmp(argv[i], "--") == 0) {
            rest = true;
        } else if (rest || argv[i][0] != '-' || !argv[i][1]) {
            if (a->npos >= API_ARGS_MAX || a->npos >= max_pos)
                return cli_usage_error(a->cmd, "\"%s\": too many arguments", argv[i]);
            a->pos[a->npos++] = argv[i];
        } else {
            int rc = parse_one(a, allowed, &i, argc, argv);
            if (rc)
                return rc;
        }
    }
    if (!a->help && a->npos < min_pos)
        return cli_usage_error(a->cmd, "missing argument");
    return MOAT_EXIT_OK;
}

int api_open(const struct api_args *a, struct api_client **out)
{
    return api_client_new(a->server, a->token, out);
}

int api_once(const struct api_args *a, const char *method, const char *path, const json_t *body,
             json_t **resp)
{
    struct api_client *c;
    int rc = api_open(a, &c);
    if (!rc)
        rc = api_do(c, a->cmd->name, method, path, body, resp);
    api_client_free(c);
    return rc;
}

int api_path_add(char *buf, size_t n, const char *seg)
{
    size_t len = strlen(buf);
    if (len + 1 >= n)
        return -1;
    buf[len] = '/';
    buf[len + 1] = '\0';
    return api_escape_append(buf, n, seg);
}

int api_filters(const struct api_args *a, api_mask mask, char *buf, size_t n)
{
    for (int i = 0; i < API_OPT_COUNT; i++)
        if ((mask & API_BIT(i)) && opt_specs[i].query &&
            api_query_append(buf, n, opt_specs[i].query, a->opt[i]) < 0)
            return -1;
    return 0;
}

int api_list_all(struct api_client *c, const char *what, const char *path, json_t **items)
{
    json_t *all = json_array();
    int rc = all ? MOAT_EXIT_OK : MOAT_EXIT_ERROR;
    for (size_t offset = 0; !rc;) {
        char page[API_PATH_MAX], num[32];
        json_t *resp = NULL;
        snprintf(page, sizeof(page), "%s", path);
        snprintf(num, sizeof(num), "%zu", offset);
        if (api_query_append(page, sizeof(page), "limit", "1000") < 0 ||
            api_query_append(page, sizeof(page), "offset", num) < 0) {
            fprintf(stderr, "moat: %s: request path too long\n", what);
            rc = MOAT_EXIT_INVALID;
            break;
        }
        rc = api_do(c, what, "GET", page, NULL, &resp);
        const json_t *got = json_object_get(resp, "items");
        json_int_t total = json_integer_value(json_object_get(resp, "total"));
        if (!rc && json_array_extend(all, (json_t *)got) < 0)
            rc = MOAT_EXIT_ERROR;
        offset += json_array_size(got);
        bool done = !json_array_size(got) || (json_int_t)offset >= total ||
                    json_array_size(all) >= API_LIST_MAX;
        json_decref(resp);
        if (done)
            break;
    }
    if (rc) {
        json_decref(all);
        all = NULL;
    }
    *items = all;
    return rc;
}

/*
 * Fields whose values are strings (or lists and maps of strings) in the
 * documents the server keeps. YAML reads `namespace: 2024` as an integer and
 * the loader takes it as the string "2024"; the API wants a JSON string there.
 * `ports`, `priority`, `threshold` and the like keep their numbers.
 */
static const char *const string_fields[] = {
    "kind",   "name",   "namespace", "app",   "cluster",        "description", "source",
    "object", "images", "labels",    "cidrs", "cidr",           "except",      "mode",
    "action", "type",   "protocol",  "file",  "default_action", "resolvers",   NULL};

static bool is_string_field(const char *key)
{
    for (size_t i = 0; string_fields[i]; i++)
        if (strcmp(string_fields[i], key) == 0)
            return true;
    return false;
}

static json_t *scalar_json(const struct doc_node *n, bool text)
{
    if (text && (n->kind == DOC_INT || n->kind == DOC_FLOAT))
        return json_string(n->text);
    switch (n->kind) {
    case DOC_INT:
        return json_integer(strtoll(n->text, NULL, 0));
    case DOC_FLOAT:
        return json_real(strtod(n->text, NULL));
    case DOC_BOOL:
        return json_boolean(strcmp(n->text, "true") == 0);
    case DOC_NULL:
        return json_null();
    default:
        return json_string(n->text);
    }
}

/* `text`: numbers under this node are strings (a string field, see above). */
static json_t *node_json(const struct doc_node *n, bool text)
{
    if (n->type == DOC_SCALAR)
        return scalar_json(n, text);
    json_t *j = n->type == DOC_MAP ? json_object() : json_array();
    for (size_t i = 0; j && i < n->count; i++) {
        bool sub = text || (n->type == DOC_MAP && is_string_field(n->keys[i]->text));
        json_t *v = node_json(n->items[i], sub);
        int rc = !v                   ? -1
                 : n->type == DOC_MAP ? json_object_set_new(j, n->keys[i]->text, v)
                                      : json_array_append_new(j, v);
        if (rc < 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

json_t *api_doc_json(const struct doc_node *n)
{
    return node_json(n, false);
}

static void print_diags(const struct moat_diags *d)
{
    for (size_t i = 0; i < d->count; i++)
        fprintf(stderr, "%s\n", d->items[i].text);
}

int api_read_doc(const char *what, const char *path, json_t **out)
{
    struct moat_diags d;
    struct doc_set *set = NULL;
    *out = NULL;
    diags_init(&d);
    int err = doc_parse_file(path, &set, &d);
    print_diags(&d);
    diags_clear(&d);
    if (err)
        return err == -ENOMEM ? MOAT_EXIT_ERROR : MOAT_EXIT_INVALID;
    int rc = MOAT_EXIT_INVALID;
    if (set->count != 1 || set->docs[0]->type != DOC_MAP)
        fprintf(stderr, "moat: %s: %s: want exactly one document (a map)\n", what, path);
    else if (!(*out = api_doc_json(set->docs[0])))
        rc = MOAT_EXIT_ERROR;
    else
        rc = MOAT_EXIT_OK;
    doc_set_free(set);
    return rc;
}

void api_time_arg(const char *in, char *out, size_t n)
{
    char *end;
    long long v = strtoll(in, &end, 10);
    static const struct {
        char unit;
        long long secs;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    for (size_t i = 0;
         end != in && v >= 0 && end[1] == '\0' && i < sizeof(units) / sizeof(units[0]); i++) {
        if (*end != units[i].unit || v > 100LL * 365 * 86400 / units[i].secs)
            continue;
        time_t t = time(NULL) - (time_t)(v * units[i].secs);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return;
    }
    if (strlen(in) == 10 && in[4] == '-' && in[7] == '-')
        snprintf(out, n, "%sT00:00:00Z", in);
    else
        snprintf(out, n, "%s", in);
}

int api_list_command(const char *name, api_mask mask, const char *base, const struct out_col *cols,
                     int argc, char **argv)
{
    struct api_args a;
    char path[API_PATH_MAX];
    json_t *list = NULL;
    int rc = api_args_parse(name, mask, 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    snprintf(path, sizeof(path), "%s", base);
    if (api_filters(&a, mask, path, sizeof(path)) < 0)
        return cli_usage_error(a.cmd, "filters too long");
    rc = api_once(&a, "GET", path, NULL, &list);
    return rc ? rc : out_list(a.format, list, cols);
}

void api_print_hourly(const json_t *status)
{
    static const char levels[] = " .:-=+*#%@"; /* 0, then 9 heights */
    const json_t *series = json_object_get(status, "hourly");
    size_t n = json_array_size(series);
    if (!n)
        return;
    const char *first = json_string_value(json_object_get(json_array_get(series, 0), "hour"));
    const char *last = json_string_value(json_object_get(json_array_get(series, n - 1), "hour"));
    printf("%-18s %zu hours, %.5s .. %.5s, one column per hour\n", "per hour (UTC)", n,
           first && strlen(first) >= 16 ? first + 11 : "?",
           last && strlen(last) >= 16 ? last + 11 : "?");
    static const char *const keys[] = {"blocked", "alerted"};
    for (size_t k = 0; k < 2; k++) {
        json_int_t max = 0, total = 0;
        const char *peak = NULL;
        for (size_t i = 0; i < n; i++) {
            const json_t *h = json_array_get(series, i);
            json_int_t v = json_integer_value(json_object_get(h, keys[k]));
            total += v;
            if (v > max) {
                max = v;
                peak = json_string_value(json_object_get(h, "hour"));
            }
        }
        printf("  %-16s |", keys[k]);
        for (size_t i = 0; i < n; i++) {
            json_int_t v = json_integer_value(json_object_get(json_array_get(series, i), keys[k]));
            putchar(v <= 0 || max <= 0 ? levels[0] : levels[1 + (v * 9 - 1) / max]);
        }
        printf("| %lld", (long long)total);
        if (peak && strlen(peak) >= 16)
            printf(", most %lld at %.5s", (long long)max, peak + 11);
        printf("\n");
    }
}
