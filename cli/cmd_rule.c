/*
 * cmd_rule: `moat rule list|get|create|update|delete|enable|disable` over
 * /api/v1/clusters/{cluster}/rules. Every command needs --cluster. Rules are
 * named by id or by name; enable/disable change all the rules given or none
 * (the API's batch route).
 */
#include "apicmd.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const struct out_col rule_cols[] = {{"ID", "id"},
                                           {"NAME", "name"},
                                           {"TYPE", "type"},
                                           {"ENABLED", "enabled"},
                                           {"PRIORITY", "priority"},
                                           {"SOURCE", "source"},
                                           {"DESTINATIONS", "destinations"},
                                           {"PROTOCOL", "protocol"},
                                           {"ACTION", "action"},
                                           {"IN EFFECT", "in_effect_nodes"},
                                           {NULL, NULL}};

/*
 * For the table: "k/n" from each rule's in_effect {nodes, of} (SPEC 4: the CLI
 * says when a rule does not take effect on every node). JSON and YAML show
 * the server's answer as it is.
 */
static int add_effect_column(json_t *list)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(list, "items"), i, r)
    {
        const json_t *e = json_object_get(r, "in_effect");
        char text[48];
        snprintf(text, sizeof(text), "%lld/%lld",
                 (long long)json_integer_value(json_object_get(e, "nodes")),
                 (long long)json_integer_value(json_object_get(e, "of")));
        if (e && json_object_set_new(r, "in_effect_nodes", json_string(text)) < 0)
            return MOAT_EXIT_ERROR;
    }
    return MOAT_EXIT_OK;
}

/* Parses and checks that --cluster was given. */
static int rule_args(const char *name, api_mask mask, int min_pos, int max_pos, int argc,
                     char **argv, struct api_args *a)
{
    int rc = api_args_parse(name, mask | API_BIT(API_OPT_CLUSTER), min_pos, max_pos, argc, argv, a);
    if (!rc && !a->help && !a->opt[API_OPT_CLUSTER])
        return cli_usage_error(a->cmd, "--cluster CLUSTER is required");
    return rc;
}

/* /api/v1/clusters/C/rules into path: an exit code. */
static int rules_path(const struct api_args *a, char *path)
{
    snprintf(path, API_PATH_MAX, "/api/v1/clusters");
    if (api_path_add(path, API_PATH_MAX, a->opt[API_OPT_CLUSTER]) < 0)
        return cli_usage_error(a->cmd, "cluster name too long");
    strcat(path, "/rules");
    return MOAT_EXIT_OK;
}

/* Prints a list of rules (releases `list`): for a table with add_effect_column. */
static int print_rules(enum cli_format f, json_t *list)
{
    int rc = f == CLI_FORMAT_TABLE ? add_effect_column(list) : MOAT_EXIT_OK;
    if (rc) {
        json_decref(list);
        return rc;
    }
    return out_list(f, list, rule_cols);
}

int cmd_rule_list(int argc, char **argv)
{
    const api_mask mask = API_BIT(API_OPT_NAME) | API_BIT(API_OPT_ENABLED) |
                          API_BIT(API_OPT_ACTION) | API_BIT(API_OPT_SOURCE) |
                          API_BIT(API_OPT_PROTOCOL) | API_BIT(API_OPT_TYPE) | API_BIT(API_OPT_ID) |
                          API_BIT(API_OPT_DESTINATION) | API_BIT(API_OPT_PORT) |
                          API_BIT(API_OPT_LIMIT) | API_BIT(API_OPT_OFFSET);
    struct api_args a;
    char path[API_PATH_MAX];
    json_t *list = NULL;
    int rc = rule_args("rule list", mask, 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    rc = rules_path(&a, path);
    if (!rc && api_filters(&a, mask, path, sizeof(path)) < 0)
        rc = cli_usage_error(a.cmd, "filters too long");
    if (!rc)
        rc = api_once(&a, "GET", path, NULL, &list);
    return rc ? rc : print_rules(a.format, list);
}

static bool all_digits(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return *s != '\0';
}

/* The id of rule `ref` (an id, or a name looked up in the cluster): an exit code. */
static int rule_id(struct api_client *c, const struct api_args *a, const char *ref, long long *id)
{
    char q[API_PATH_MAX];
    json_t *list = NULL;
    if (all_digits(ref)) {
        *id = strtoll(ref, NULL, 10);
        return MOAT_EXIT_OK;
    }
    int rc = rules_path(a, q);
    if (!rc && api_query_append(q, sizeof(q), "name", ref) < 0)
        rc = cli_usage_error(a->cmd, "name too long");
    if (!rc)
        rc = api_do(c, a->cmd->name, "GET", q, NULL, &list);
    if (rc)
        return rc;
    const json_t *j = json_object_get(json_array_get(json_object_get(list, "items"), 0), "id");
    bool found = json_is_integer(j);
    *id = json_integer_value(j);
    json_decref(list);
    if (found)
        return MOAT_EXIT_OK;
    fprintf(stderr, "moat: %s: no rule named \"%s\" in cluster \"%s\"\n", a->cmd->name, ref,
            a->opt[API_OPT_CLUSTER]);
    return MOAT_EXIT_NOT_FOUND;
}

static int rule_path(struct api_client *c, const struct api_args *a, const char *ref, char *path)
{
    long long id = 0;
    int rc = rule_id(c, a, ref, &id);
    if (!rc)
        rc = rules_path(a, path);
    if (!rc)
        snprintf(path + strlen(path), API_PATH_MAX - strlen(path), "/%lld", id);
    return rc;
}

static int rule_once(const struct api_args *a, const char *ref, const char *method,
                     const json_t *body, json_t **doc)
{
    struct api_client *c;
    char path[API_PATH_MAX];
    int rc = api_open(a, &c);
    if (!rc)
        rc = ref ? rule_path(c, a, ref, path) : rules_path(a, path);
    if (!rc)
        rc = api_do(c, a->cmd->name, method, path, body, doc);
    api_client_free(c);
    return rc;
}

int cmd_rule_get(int argc, char **argv)
{
    struct api_args a;
    json_t *doc = NULL;
    int rc = rule_args("rule get", 0, 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    rc = rule_once(&a, a.pos[0], "GET", NULL, &doc);
    return rc ? rc : out_doc(a.format, doc);
}

static int rule_result(const struct api_args *a, json_t *doc, const char *verb)
{
    char line[512];
    snprintf(line, sizeof(line), "rule %s/%s (id %lld) %s", a->opt[API_OPT_CLUSTER],
             json_string_value(json_object_get(doc, "name")),
             (long long)json_integer_value(json_object_get(doc, "id")), verb);
    return out_result(a->format, line, doc);
}

int cmd_rule_create(int argc, char **argv)
{
    struct api_args a;
    json_t *body = NULL, *doc = NULL;
    int rc = rule_args("rule create", API_BIT(API_OPT_FILE), 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (!a.opt[API_OPT_FILE])
        return cli_usage_error(a.cmd, "-f FILE is required");
    rc = api_read_doc(a.cmd->name, a.opt[API_OPT_FILE], &body);
    if (!rc)
        rc = rule_once(&a, NULL, "POST", body, &doc);
    json_decref(body);
    return rc ? rc : rule_result(&a, doc, "created");
}

/* The merge patch of --enabled, --priority, --action, --description; NULL when none. */
static json_t *rule_patch(const struct api_args *a)
{
    json_t *p = json_object();
    const char *en = a->opt[API_OPT_ENABLED], *prio = a->opt[API_OPT_PRIORITY];
    if (p && en)
        json_object_set_new(p, "enabled",
                            strcmp(en, "true") == 0    ? json_true()
                            : strcmp(en, "false") == 0 ? json_false()
                                                       : json_string(en));
    if (p && prio)
        json_object_set_new(p, "priority",
                            all_digits(prio) ? json_integer(strtoll(prio, NULL, 10))
                                             : json_string(prio));
    if (p && a->opt[API_OPT_ACTION])
        json_object_set_new(p, "action", json_string(a->opt[API_OPT_ACTION]));
    if (p && a->opt[API_OPT_DESCRIPTION])
        json_object_set_new(p, "description", json_string(a->opt[API_OPT_DESCRIPTION]));
    if (p && json_object_size(p) == 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

int cmd_rule_update(int argc, char **argv)
{
    const api_mask mask = API_BIT(API_OPT_FILE) | API_BIT(API_OPT_ENABLED) |
                          API_BIT(API_OPT_PRIORITY) | API_BIT(API_OPT_ACTION) |
                          API_BIT(API_OPT_DESCRIPTION);
    struct api_args a;
    json_t *body, *doc = NULL;
    int rc = rule_args("rule update", mask, 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    body = rule_patch(&a);
    if (a.opt[API_OPT_FILE] && body) {
        json_decref(body);
        return cli_usage_error(a.cmd, "-f replaces the rule: give either -f or flags");
    }
    if (a.opt[API_OPT_FILE])
        rc = api_read_doc(a.cmd->name, a.opt[API_OPT_FILE], &body);
    else if (!body)
        return cli_usage_error(a.cmd, "nothing to change: give -f FILE or a flag");
    if (!rc)
        rc = rule_once(&a, a.pos[0], a.opt[API_OPT_FILE] ? "PUT" : "PATCH", body, &doc);
    json_decref(body);
    return rc ? rc : rule_result(&a, doc, "configured");
}

int cmd_rule_delete(int argc, char **argv)
{
    struct api_args a;
    struct api_client *c;
    int rc = rule_args("rule delete", 0, 1, API_ARGS_MAX, argc, argv, &a);
    if (rc || a.help)
        return rc;
    json_t *done = json_array();
    rc = done ? api_open(&a, &c) : MOAT_EXIT_ERROR;
    if (rc) {
        json_decref(done);
        return rc;
    }
    for (int i = 0; i < a.npos && !rc; i++) {
        char path[API_PATH_MAX];
        rc = rule_path(c, &a, a.pos[i], path);
        if (!rc)
            rc = api_do(c, a.cmd->name, "DELETE", path, NULL, NULL);
        if (!rc && a.format == CLI_FORMAT_TABLE)
            printf("rule %s/%s deleted\n", a.opt[API_OPT_CLUSTER], a.pos[i]);
        if (!rc)
            json_array_append_new(done, json_string(a.pos[i]));
    }
    api_client_free(c);
    if (a.format != CLI_FORMAT_TABLE)
        out_doc(a.format, json_pack("{s:o}", "deleted", done));
    else
        json_decref(done);
    return rc;
}

/* The batch body {"ids": [...], "enabled": on} with names looked up: an exit code. */
static int batch_body(struct api_client *c, const struct api_args *a, bool on, json_t **out)
{
    json_t *ids = json_array();
    int rc = ids ? MOAT_EXIT_OK : MOAT_EXIT_ERROR;
    for (int i = 0; i < a->npos && !rc; i++) {
        long long id = 0;
        rc = rule_id(c, a, a->pos[i], &id);
        if (!rc)
            json_array_append_new(ids, json_integer(id));
    }
    *out = rc ? NULL : json_pack("{s:o,s:b}", "ids", ids, "enabled", on);
    if (rc)
        json_decref(ids);
    return rc ? rc : *out ? MOAT_EXIT_OK : MOAT_EXIT_ERROR;
}

static int rule_switch(const char *name, bool on, int argc, char **argv)
{
    struct api_args a;
    struct api_client *c;
    char path[API_PATH_MAX];
    json_t *body = NULL, *list = NULL;
    int rc = rule_args(name, 0, 1, API_ARGS_MAX, argc, argv, &a);
    if (rc || a.help)
        return rc;
    rc = api_open(&a, &c);
    if (rc)
        return rc;
    rc = batch_body(c, &a, on, &body);
    if (!rc)
        rc = rules_path(&a, path);
    if (!rc && strlen(path) + 6 < sizeof(path))
        strcat(path, "/batch");
    if (!rc)
        rc = api_do(c, a.cmd->name, "POST", path, body, &list);
    json_decref(body);
    api_client_free(c);
    return rc ? rc : print_rules(a.format, list);
}

int cmd_rule_enable(int argc, char **argv)
{
    return rule_switch("rule enable", true, argc, argv);
}

int cmd_rule_disable(int argc, char **argv)
{
    return rule_switch("rule disable", false, argc, argv);
}
