/*
 * cmd_object: `moat object list|get|create|update|delete` over
 * /api/v1/objects. Objects are named by id or by name (a name is looked up
 * with the list's name filter first). `object delete` sends every object
 * in one POST /api/v1/objects/batch: the server deletes all or none.
 */
#include "apicmd.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define V1_OBJECTS "/api/v1/objects"

static const struct out_col object_cols[] = {
    {"ID", "id"},         {"NAME", "name"},   {"NAMESPACE", "namespace"}, {"APP", "app"},
    {"LABELS", "labels"}, {"CIDRS", "cidrs"}, {"CLUSTER", "cluster"},     {NULL, NULL}};

int cmd_object_list(int argc, char **argv)
{
    const api_mask mask = API_BIT(API_OPT_CLUSTER) | API_BIT(API_OPT_NAME) |
                          API_BIT(API_OPT_NAMESPACE) | API_BIT(API_OPT_APP) |
                          API_BIT(API_OPT_IMAGE) | API_BIT(API_OPT_LABEL) | API_BIT(API_OPT_LIMIT) |
                          API_BIT(API_OPT_OFFSET);
    return api_list_command("object list", mask, V1_OBJECTS, object_cols, argc, argv);
}

static bool all_digits(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return *s != '\0';
}

/*
 * The id of object `ref` into *id: an exit code. As the server and the loader
 * resolve references: a name first, then (all digits) an id, so an object
 * named "5" is found by its name.
 */
static int object_id(struct api_client *c, const struct api_args *a, const char *ref, long long *id)
{
    char q[API_PATH_MAX] = V1_OBJECTS;
    json_t *list = NULL;
    if (api_query_append(q, sizeof(q), "name", ref) < 0)
        return cli_usage_error(a->cmd, "name too long");
    int rc = api_do(c, a->cmd->name, "GET", q, NULL, &list);
    if (rc)
        return rc;
    const json_t *j = json_object_get(json_array_get(json_object_get(list, "items"), 0), "id");
    bool found = json_is_integer(j);
    *id = found ? (long long)json_integer_value(j) : 0;
    json_decref(list);
    if (found)
        return MOAT_EXIT_OK;
    if (all_digits(ref)) {
        *id = strlen(ref) <= 15 ? strtoll(ref, NULL, 10) : 0;
        if (*id > 0)
            return MOAT_EXIT_OK;
        fprintf(stderr, "moat: %s: no object with id %s\n", a->cmd->name, ref);
        return MOAT_EXIT_NOT_FOUND;
    }
    fprintf(stderr, "moat: %s: no object named \"%s\"\n", a->cmd->name, ref);
    return MOAT_EXIT_NOT_FOUND;
}

/* The path of object `ref` (an id, or a name looked up): an exit code. */
static int object_path(struct api_client *c, const struct api_args *a, const char *ref, char *path)
{
    long long id;
    int rc = object_id(c, a, ref, &id);
    if (!rc)
        snprintf(path, API_PATH_MAX, V1_OBJECTS "/%lld", id);
    return rc;
}

/* One request on object `ref` with a client of its own; *doc as api_do. */
static int object_once(const struct api_args *a, const char *ref, const char *method,
                       const json_t *body, json_t **doc)
{
    struct api_client *c;
    char path[API_PATH_MAX];
    int rc = api_open(a, &c);
    if (!rc)
        rc = object_path(c, a, ref, path);
    if (!rc)
        rc = api_do(c, a->cmd->name, method, path, body, doc);
    api_client_free(c);
    return rc;
}

int cmd_object_get(int argc, char **argv)
{
    struct api_args a;
    json_t *doc = NULL;
    int rc = api_args_parse("object get", 0, 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    rc = object_once(&a, a.pos[0], "GET", NULL, &doc);
    return rc ? rc : out_doc(a.format, doc);
}

static int object_result(const struct api_args *a, json_t *doc, const char *verb)
{
    char line[512];
    snprintf(line, sizeof(line), "object %s (id %lld) %s",
             json_string_value(json_object_get(doc, "name")),
             (long long)json_integer_value(json_object_get(doc, "id")), verb);
    return out_result(a->format, line, doc);
}

int cmd_object_create(int argc, char **argv)
{
    struct api_args a;
    json_t *body = NULL, *doc = NULL;
    int rc = api_args_parse("object create", API_BIT(API_OPT_FILE), 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (!a.opt[API_OPT_FILE])
        return cli_usage_error(a.cmd, "-f FILE is required");
    rc = api_read_doc(a.cmd->name, a.opt[API_OPT_FILE], &body);
    if (!rc)
        rc = api_once(&a, "POST", V1_OBJECTS, body, &doc);
    json_decref(body);
    return rc ? rc : object_result(&a, doc, "created");
}

int cmd_object_update(int argc, char **argv)
{
    struct api_args a;
    json_t *body = NULL, *doc = NULL;
    int rc = api_args_parse("object update", API_BIT(API_OPT_FILE), 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (!a.opt[API_OPT_FILE])
        return cli_usage_error(a.cmd, "-f FILE is required");
    rc = api_read_doc(a.cmd->name, a.opt[API_OPT_FILE], &body);
    if (!rc)
        rc = object_once(&a, a.pos[0], "PUT", body, &doc);
    json_decref(body);
    return rc ? rc : object_result(&a, doc, "configured");
}

/* The ids of the objects `refs` (looked up by name where needed), each once, into `ids`. */
static int object_ids(struct api_client *c, const struct api_args *a, json_t *ids)
{
    int rc = MOAT_EXIT_OK;
    for (int i = 0; i < a->npos && !rc; i++) {
        long long id;
        rc = object_id(c, a, a->pos[i], &id);
        bool seen = false;
        for (size_t k = 0; !rc && k < json_array_size(ids); k++)
            seen |= json_integer_value(json_array_get(ids, k)) == id;
        if (!rc && !seen && json_array_append_new(ids, json_integer(id)) < 0)
            rc = MOAT_EXIT_ERROR;
    }
    return rc;
}

int cmd_object_delete(int argc, char **argv)
{
    struct api_args a;
    struct api_client *c = NULL;
    int rc = api_args_parse("object delete", 0, 1, API_ARGS_MAX, argc, argv, &a);
    if (rc || a.help)
        return rc;
    json_t *ids = json_array(), *body = NULL;
    rc = ids ? api_open(&a, &c) : MOAT_EXIT_ERROR;
    if (!rc)
        rc = object_ids(c, &a, ids);
    if (!rc) {
        body = json_pack("{s:s,s:O}", "action", "delete", "ids", ids);
        rc = body ? api_do(c, a.cmd->name, "POST", V1_OBJECTS "/batch", body, NULL)
                  : MOAT_EXIT_ERROR;
    }
    api_client_free(c);
    json_decref(body);
    json_decref(ids);
    if (rc)
        return rc;
    if (a.format != CLI_FORMAT_TABLE) {
        json_t *done = json_array();
        for (int i = 0; done && i < a.npos; i++)
            json_array_append_new(done, json_string(a.pos[i]));
        return out_doc(a.format, done ? json_pack("{s:o}", "deleted", done) : NULL);
    }
    for (int i = 0; i < a.npos; i++)
        printf("object %s deleted\n", a.pos[i]);
    return MOAT_EXIT_OK;
}
