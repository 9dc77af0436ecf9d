/*
 * cmd_cluster: `moat cluster list|get|create|update|delete|defense` over
 * /api/v1/clusters. A cluster's id is its name. `cluster defense on|off`
 * switches several clusters (or --all) in one POST /api/v1/clusters/batch:
 * the server switches all of them or none.
 * `cluster join-token` asks the server for a new join token for agents
 * (POST .../join-tokens: --ttl, --uses, --description), lists a cluster's
 * join tokens (--list) or revokes one (--revoke ID).
 */
#include "apicmd.h"

#include <stdlib.h>
#include <string.h>

#define V1_CLUSTERS "/api/v1/clusters"

static const struct out_col cluster_cols[] = {{"ID", "id"},
                                              {"STATUS", "status"},
                                              {"NODES", "nodes"},
                                              {"ENFORCING", "enforcing"},
                                              {"DEFENSE", "defense"},
                                              {"MODE", "mode"},
                                              {"DEFAULT-ACTION", "default_action"},
                                              {"DESCRIPTION", "description"},
                                              {NULL, NULL}};

static int cluster_path(const struct api_args *a, const char *id, char *buf)
{
    snprintf(buf, API_PATH_MAX, V1_CLUSTERS);
    if (id && api_path_add(buf, API_PATH_MAX, id) < 0)
        return cli_usage_error(a->cmd, "cluster id too long");
    return MOAT_EXIT_OK;
}

int cmd_cluster_list(int argc, char **argv)
{
    const api_mask mask = API_BIT(API_OPT_NAME) | API_BIT(API_OPT_DEFENSE) | API_BIT(API_OPT_MODE) |
                          API_BIT(API_OPT_DEFAULT_ACTION) | API_BIT(API_OPT_LIMIT) |
                          API_BIT(API_OPT_OFFSET);
    return api_list_command("cluster list", mask, V1_CLUSTERS, cluster_cols, argc, argv);
}

int cmd_cluster_get(int argc, char **argv)
{
    struct api_args a;
    char path[API_PATH_MAX];
    json_t *doc = NULL;
    int rc = api_args_parse("cluster get", 0, 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    rc = cluster_path(&a, a.pos[0], path);
    if (!rc)
        rc = api_once(&a, "GET", path, NULL, &doc);
    return rc ? rc : out_doc(a.format, doc);
}

int cmd_cluster_create(int argc, char **argv)
{
    struct api_args a;
    json_t *body = NULL, *doc = NULL;
    char line[512];
    int rc = api_args_parse("cluster create", API_BIT(API_OPT_FILE), 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (!a.opt[API_OPT_FILE])
        return cli_usage_error(a.cmd, "-f FILE is required");
    rc = api_read_doc(a.cmd->name, a.opt[API_OPT_FILE], &body);
    if (!rc)
        rc = api_once(&a, "POST", V1_CLUSTERS, body, &doc);
    json_decref(body);
    if (rc)
        return rc;
    snprintf(line, sizeof(line), "cluster %s created",
             json_string_value(json_object_get(doc, "id")));
    return out_result(a.format, line, doc);
}

/* The merge patch of the --defense, --mode and --default-action flags; NULL when none. */
static json_t *cluster_patch(const struct api_args *a)
{
    json_t *p = json_object();
    static const struct {
        enum api_opt opt;
        const char *key;
    } fields[] = {{API_OPT_DEFENSE, "defense"},
                  {API_OPT_MODE, "mode"},
                  {API_OPT_DEFAULT_ACTION, "default_action"},
                  {API_OPT_DESCRIPTION, "description"}};
    for (size_t i = 0; p && i < sizeof(fields) / sizeof(fields[0]); i++)
        if (a->opt[fields[i].opt])
            json_object_set_new(p, fields[i].key, json_string(a->opt[fields[i].opt]));
    if (p && json_object_size(p) == 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static int cluster_write(const struct api_args *a, const char *method, const char *id,
                         const json_t *body, const char *verb)
{
    char path[API_PATH_MAX], line[512];
    json_t *doc = NULL;
    int rc = cluster_path(a, id, path);
    if (!rc)
        rc = api_once(a, method, path, body, &doc);
    if (rc)
        return rc;
    snprintf(line, sizeof(line), "cluster %s %s", id, verb);
    return out_result(a->format, line, doc);
}

int cmd_cluster_update(int argc, char **argv)
{
    const api_mask mask = API_BIT(API_OPT_FILE) | API_BIT(API_OPT_DEFENSE) | API_BIT(API_OPT_MODE) |
                          API_BIT(API_OPT_DEFAULT_ACTION) | API_BIT(API_OPT_DESCRIPTION);
    struct api_args a;
    json_t *body = NULL;
    int rc = api_args_parse("cluster update", mask, 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    body = cluster_patch(&a);
    if (a.opt[API_OPT_FILE] && body) {
        json_decref(body);
        return cli_usage_error(a.cmd, "-f replaces the cluster: give either -f or flags");
    }
    if (a.opt[API_OPT_FILE])
        rc = api_read_doc(a.cmd->name, a.opt[API_OPT_FILE], &body);
    else if (!body)
        return cli_usage_error(a.cmd, "nothing to change: give -f FILE or a flag");
    if (!rc)
        rc = cluster_write(&a, a.opt[API_OPT_FILE] ? "PUT" : "PATCH", a.pos[0], body, "configured");
    json_decref(body);
    return rc;
}

/* Runs one request per cluster id with one client; stops at the first failure. */
static int cluster_each(const struct api_args *a, const char *const *ids, int n, const char *method,
                        const json_t *body, const char *verb)
{
    struct api_client *c;
    json_t *done = json_array();
    int rc = done ? api_open(a, &c) : MOAT_EXIT_ERROR;
    if (rc) {
        json_decref(done);
        return rc;
    }
    for (int i = 0; i < n && !rc; i++) {
        char path[API_PATH_MAX];
        json_t *doc = NULL;
        rc = cluster_path(a, ids[i], path);
        if (!rc)
            rc = api_do(c, a->cmd->name, method, path, body, &doc);
        if (!rc && a->format == CLI_FORMAT_TABLE)
            printf("cluster %s %s\n", ids[i], verb);
        if (!rc)
            json_array_append_new(done, doc ? doc : json_pack("{s:s}", "id", ids[i]));
    }
    api_client_free(c);
    if (a->format != CLI_FORMAT_TABLE)
        out_doc(a->format, json_pack("{s:o}", "items", done));
    else
        json_decref(done);
    return rc;
}

int cmd_cluster_delete(int argc, char **argv)
{
    struct api_args a;
    int rc = api_args_parse("cluster delete", 0, 1, API_ARGS_MAX, argc, argv, &a);
    if (rc || a.help)
        return rc;
    return cluster_each(&a, a.pos, a.npos, "DELETE", NULL, "deleted");
}

int cmd_cluster_defense(int argc, char **argv)
{
    struct api_args a;
    int rc =
        api_args_parse("cluster defense", API_BIT(API_OPT_ALL), 1, API_ARGS_MAX, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (strcmp(a.pos[0], "on") != 0 && strcmp(a.pos[0], "off") != 0)
        return cli_usage_error(a.cmd, "\"%s\": want on or off", a.pos[0]);
    bool all = a.opt[API_OPT_ALL] != NULL;
    if (all && a.npos > 1)
        return cli_usage_error(a.cmd, "give either clusters or --all");
    if (!all && a.npos < 2)
        return cli_usage_error(a.cmd, "missing argument: CLUSTER... or --all");
    json_t *body = json_pack("{s:s}", "defense", a.pos[0]), *ids = json_array(), *doc = NULL;
    for (int i = 1; ids && !rc && i < a.npos; i++)
        if (json_array_append_new(ids, json_string(a.pos[i])) < 0)
            rc = MOAT_EXIT_ERROR;
    if (!body || !ids ||
        json_object_set_new(body, all ? "all" : "clusters", all ? json_true() : json_incref(ids)) <
            0)
        rc = MOAT_EXIT_ERROR;
    json_decref(ids);
    if (!rc)
        rc = api_once(&a, "POST", V1_CLUSTERS "/batch", body, &doc);
    json_decref(body);
    if (rc)
        return rc;
    if (a.format != CLI_FORMAT_TABLE)
        return out_doc(a.format, doc);
    const json_t *items = json_object_get(doc, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        printf("cluster %s defense %s\n",
               json_string_value(json_object_get(json_array_get(items, i), "id")), a.pos[0]);
    if (!json_array_size(items))
        printf("no clusters\n");
    json_decref(doc);
    return MOAT_EXIT_OK;
}

static const struct out_col join_cols[] = {{"ID", "id"},
                                           {"CREATED", "created"},
                                           {"EXPIRES", "expires"},
                                           {"EXPIRED", "expired"},
                                           {"USES", "uses"},
                                           {"USED", "used"},
                                           {"BY", "created_by"},
                                           {"DESCRIPTION", "description"},
                                           {NULL, NULL}};

/* --uses N as the JSON the server takes; false when it is not a count 0..1000000. */
static bool uses_value(const char *s, json_int_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1000000)
        return false;
    *out = (json_int_t)v;
    return true;
}

/* Issues a join token: {ttl, uses, description} as given; prints the token. */
static int join_issue(const struct api_args *a, const char *path)
{
    json_int_t uses = 0;
    if (a->opt[API_OPT_USES] && !uses_value(a->opt[API_OPT_USES], &uses))
        return cli_usage_error(a->cmd, "--uses: \"%s\" is not a count 0..1000000 (0: any)",
                               a->opt[API_OPT_USES]);
    json_t *body = json_object(), *doc = NULL;
    if (!body ||
        (a->opt[API_OPT_TTL] &&
         json_object_set_new(body, "ttl", json_string(a->opt[API_OPT_TTL])) < 0) ||
        (a->opt[API_OPT_USES] && json_object_set_new(body, "uses", json_integer(uses)) < 0) ||
        (a->opt[API_OPT_DESCRIPTION] &&
         json_object_set_new(body, "description", json_string(a->opt[API_OPT_DESCRIPTION])) < 0)) {
        json_decref(body);
        fprintf(stderr, "moat: out of memory\n");
        return MOAT_EXIT_ERROR;
    }
    int rc = api_once(a, "POST", path, body, &doc);
    json_decref(body);
    if (rc)
        return rc;
    if (a->format != CLI_FORMAT_TABLE)
        return out_doc(a->format, doc);
    const char *token = json_string_value(json_object_get(doc, "join_token"));
    printf("%s\n", token ? token : "");
    json_decref(doc);
    return MOAT_EXIT_OK;
}

int cmd_cluster_join_token(int argc, char **argv)
{
    struct api_args a;
    char path[API_PATH_MAX];
    const api_mask mask = API_BIT(API_OPT_TTL) | API_BIT(API_OPT_USES) |
                          API_BIT(API_OPT_DESCRIPTION) | API_BIT(API_OPT_LIST) |
                          API_BIT(API_OPT_REVOKE);
    int rc = api_args_parse("cluster join-token", mask, 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    bool issuing = a.opt[API_OPT_TTL] || a.opt[API_OPT_USES] || a.opt[API_OPT_DESCRIPTION];
    if ((a.opt[API_OPT_LIST] != NULL) + (a.opt[API_OPT_REVOKE] != NULL) + issuing > 1)
        return cli_usage_error(a.cmd, "give one of --list, --revoke ID, or the options of a new "
                                      "token (--ttl, --uses, --description)");
    rc = cluster_path(&a, a.pos[0], path);
    if (!rc && strlen(path) + sizeof("/join-tokens") > sizeof(path))
        rc = cli_usage_error(a.cmd, "cluster id too long");
    if (rc)
        return rc;
    strcat(path, "/join-tokens");
    if (a.opt[API_OPT_LIST]) {
        json_t *list = NULL;
        rc = api_once(&a, "GET", path, NULL, &list);
        return rc ? rc : out_list(a.format, list, join_cols);
    }
    if (a.opt[API_OPT_REVOKE]) {
        if (api_path_add(path, sizeof(path), a.opt[API_OPT_REVOKE]) < 0)
            return cli_usage_error(a.cmd, "--revoke: id too long");
        rc = api_once(&a, "DELETE", path, NULL, NULL);
        if (!rc && a.format == CLI_FORMAT_TABLE)
            printf("join token %s of cluster %s revoked\n", a.opt[API_OPT_REVOKE], a.pos[0]);
        return rc;
    }
    return join_issue(&a, path);
}
