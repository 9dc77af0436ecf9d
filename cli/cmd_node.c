/*
 * cmd_node: `moat node list|get|delete` over /api/v1/nodes and `moat workload list`
 * over /api/v1/workloads — what the agents reported, and each node's
 * derived datapath state (SPEC 4). A node is named by its id or by its name
 * (looked up with the list's name filter, and --cluster when names repeat
 * across clusters).
 */
#include "apicmd.h"

#include <stdlib.h>
#include <string.h>

#define V1_NODES     "/api/v1/nodes"
#define V1_WORKLOADS "/api/v1/workloads"

static const struct out_col node_cols[] = {{"ID", "id"},
                                           {"NAME", "name"},
                                           {"CLUSTER", "cluster"},
                                           {"STATE", "state"},
                                           {"DATAPATH", "datapath.backend"},
                                           {"DETECTIONS", "datapath.detections"},
                                           {"OS", "os"},
                                           {"KERNEL", "kernel"},
                                           {"CERTIFIED", "certified"},
                                           {"AGENT", "agent_version"},
                                           {"HEARTBEAT", "last_heartbeat"},
                                           {"WORKLOADS", "workload_count"},
                                           {"REASON", "reason"},
                                           {NULL, NULL}};

/* SOURCE: where the agent found it (RUNTIME:ID of a container or pod, or file:PATH). */
static const struct out_col workload_cols[] = {
    {"CLUSTER", "cluster"}, {"NODE", "node"},     {"NAMESPACE", "namespace"},
    {"NAME", "name"},       {"IPS", "ips"},       {"IMAGE", "image"},
    {"LABELS", "labels"},   {"SOURCE", "source"}, {NULL, NULL}};

int cmd_node_list(int argc, char **argv)
{
    const api_mask mask = API_BIT(API_OPT_CLUSTER) | API_BIT(API_OPT_NAME) |
                          API_BIT(API_OPT_LIMIT) | API_BIT(API_OPT_OFFSET);
    return api_list_command("node list", mask, V1_NODES, node_cols, argc, argv);
}

/* True when `s` is a decimal id. */
static bool is_id(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* The node named by id or name; *doc on success. */
static int node_fetch(const struct api_args *a, struct api_client *c, const char *ref, json_t **doc)
{
    char path[API_PATH_MAX] = V1_NODES;
    if (is_id(ref)) {
        if (api_path_add(path, sizeof(path), ref) < 0)
            return cli_usage_error(a->cmd, "node id too long");
        return api_do(c, a->cmd->name, "GET", path, NULL, doc);
    }
    json_t *list = NULL;
    if (api_query_append(path, sizeof(path), "name", ref) < 0 ||
        api_query_append(path, sizeof(path), "cluster", a->opt[API_OPT_CLUSTER]) < 0)
        return cli_usage_error(a->cmd, "node name too long");
    int rc = api_do(c, a->cmd->name, "GET", path, NULL, &list);
    if (rc)
        return rc;
    const json_t *items = json_object_get(list, "items");
    if (json_array_size(items) == 1) {
        *doc = json_incref(json_array_get(items, 0));
    } else if (json_array_size(items) == 0) {
        fprintf(stderr, "moat: %s: no node named \"%s\"\n", a->cmd->name, ref);
        rc = MOAT_EXIT_NOT_FOUND;
    } else {
        fprintf(stderr,
                "moat: %s: %zu clusters have a node named \"%s\": give --cluster or the id\n",
                a->cmd->name, json_array_size(items), ref);
        rc = MOAT_EXIT_INVALID;
    }
    json_decref(list);
    return rc;
}

/* The table form of a node: the fields that matter, in a fixed order. */
static json_t *node_summary(const json_t *n)
{
    static const char *const keys[] = {"id",
                                       "name",
                                       "cluster",
                                       "state",
                                       "reason",
                                       "os",
                                       "kernel",
                                       "certified",
                                       "compat_reason",
                                       "agent_version",
                                       "registered",
                                       "last_heartbeat",
                                       "workload_count",
                                       NULL};
    json_t *s = json_object();
    for (size_t i = 0; s && keys[i]; i++) {
        json_t *v = json_object_get(n, keys[i]);
        if (v && json_object_set(s, keys[i], v) < 0) {
            json_decref(s);
            return NULL;
        }
    }
    const json_t *dp = json_object_get(n, "datapath");
    const char *state = json_string_value(json_object_get(dp, "state"));
    const char *reason = json_string_value(json_object_get(dp, "reason"));
    char text[512];
    snprintf(text, sizeof(text), "%s%s%s", state ? state : "-", reason && *reason ? ": " : "",
             reason ? reason : "");
    if (s && json_object_set_new(s, "reported", json_string(text)) < 0) {
        json_decref(s);
        return NULL;
    }
    /* what runs of the cluster's detections, and why an enabled one does not */
    static const char *const det[][2] = {{"detections", "detections"},
                                         {"detection_gaps", "detections_not_as_configured"}};
    for (size_t i = 0; s && i < 2; i++) {
        json_t *v = json_object_get(dp, det[i][0]);
        if (v && json_object_set(s, det[i][1], v) < 0) {
            json_decref(s);
            return NULL;
        }
    }
    return s;
}

int cmd_node_get(int argc, char **argv)
{
    struct api_args a;
    struct api_client *c;
    json_t *doc = NULL;
    int rc = api_args_parse("node get", API_BIT(API_OPT_CLUSTER), 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    rc = api_open(&a, &c);
    if (!rc)
        rc = node_fetch(&a, c, a.pos[0], &doc);
    api_client_free(c);
    if (rc)
        return rc;
    if (a.format == CLI_FORMAT_TABLE) {
        json_t *s = node_summary(doc);
        json_decref(doc);
        doc = s;
        if (!doc) {
            fprintf(stderr, "moat: out of memory\n");
            return MOAT_EXIT_ERROR;
        }
    }
    return out_doc(a.format, doc);
}

int cmd_node_delete(int argc, char **argv)
{
    struct api_args a;
    struct api_client *c = NULL;
    json_t *doc = NULL, *done = NULL;
    int rc = api_args_parse("node delete", API_BIT(API_OPT_CLUSTER), 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    rc = api_open(&a, &c);
    if (!rc)
        rc = node_fetch(&a, c, a.pos[0], &doc);
    if (!rc) {
        char path[API_PATH_MAX];
        snprintf(path, sizeof(path), V1_NODES "/%lld",
                 (long long)json_integer_value(json_object_get(doc, "id")));
        rc = api_do(c, a.cmd->name, "DELETE", path, NULL, &done);
    }
    if (!rc && a.format == CLI_FORMAT_TABLE)
        printf("node %s of cluster %s deleted (its credential revoked, %lld workloads "
               "forgotten)\n",
               json_string_value(json_object_get(doc, "name")),
               json_string_value(json_object_get(doc, "cluster")),
               (long long)json_integer_value(json_object_get(done, "workloads_removed")));
    else if (!rc)
        rc = out_doc(a.format, json_incref(done));
    json_decref(done);
    json_decref(doc);
    api_client_free(c);
    return rc;
}

int cmd_workload_list(int argc, char **argv)
{
    const api_mask mask = API_BIT(API_OPT_CLUSTER) | API_BIT(API_OPT_NODE) |
                          API_BIT(API_OPT_NAMESPACE) | API_BIT(API_OPT_NAME) |
                          API_BIT(API_OPT_LIMIT) | API_BIT(API_OPT_OFFSET);
    return api_list_command("workload list", mask, V1_WORKLOADS, workload_cols, argc, argv);
}
