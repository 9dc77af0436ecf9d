/*
 * cmd_detect: the detections' state moat-server keeps (SPEC 6) —
 * `moat quarantine list|release` over /api/v1/clusters/{c}/quarantines and
 * `moat threat-intel set|get|delete` over /api/v1/clusters/{c}/threat-intel.
 * A quarantine starts in a node's kernel; the server lists one row per
 * address with the nodes holding it, and a release ends it on every node.
 * The threat list travels as text (one prefix a line); the server checks it
 * and answers errors by line.
 */
#include "apicmd.h"
#include "doc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREATS_FILE_MAX (128u << 20) /* the server's bound for PUT .../threat-intel */

static const struct out_col quarantine_cols[] = {
    {"CLUSTER", "cluster"}, {"ADDRESS", "address"}, {"REASON", "reason"}, {"SINCE", "since"},
    {"UNTIL", "until"},     {"NODES", "nodes"},     {NULL, NULL}};

/* GET /api/v1/clusters/{cluster}/quarantines, each item tagged with its cluster, into all. */
static int quarantines_of(struct api_client *c, const char *what, const char *cluster, json_t *all)
{
    char path[API_PATH_MAX] = "/api/v1/clusters";
    if (api_path_add(path, sizeof(path), cluster) < 0 ||
        api_path_add(path, sizeof(path), "quarantines") < 0) {
        fprintf(stderr, "moat: %s: cluster name too long\n", what);
        return MOAT_EXIT_INVALID;
    }
    json_t *list = NULL;
    int rc = api_list_all(c, what, path, &list);
    size_t i;
    json_t *q;
    json_array_foreach(list, i, q)
    {
        if (json_object_set_new(q, "cluster", json_string(cluster)) < 0 ||
            json_array_append(all, q) < 0) {
            rc = MOAT_EXIT_ERROR;
            break;
        }
    }
    json_decref(list);
    return rc;
}

int cmd_quarantine_list(int argc, char **argv)
{
    struct api_args a;
    struct api_client *c = NULL;
    json_t *clusters = NULL, *all = json_array();
    int rc = api_args_parse("quarantine list", API_BIT(API_OPT_CLUSTER), 0, 0, argc, argv, &a);
    if (rc || a.help) {
        json_decref(all);
        return rc;
    }
    rc = all ? api_open(&a, &c) : MOAT_EXIT_ERROR;
    if (!rc && a.opt[API_OPT_CLUSTER])
        rc = quarantines_of(c, a.cmd->name, a.opt[API_OPT_CLUSTER], all);
    else if (!rc)
        rc = api_list_all(c, a.cmd->name, "/api/v1/clusters", &clusters);
    size_t i;
    const json_t *cl;
    json_array_foreach(clusters, i, cl)
    {
        if (rc)
            break;
        rc = quarantines_of(c, a.cmd->name, json_string_value(json_object_get(cl, "name")), all);
    }
    json_decref(clusters);
    api_client_free(c);
    if (rc) {
        json_decref(all);
        return rc;
    }
    return out_list(a.format,
                    json_pack("{s:o,s:I}", "items", all, "total", (json_int_t)json_array_size(all)),
                    quarantine_cols);
}

int cmd_quarantine_release(int argc, char **argv)
{
    struct api_args a;
    char path[API_PATH_MAX] = "/api/v1/clusters", line[256];
    json_t *doc = NULL;
    int rc = api_args_parse("quarantine release", API_BIT(API_OPT_CLUSTER), 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (!a.opt[API_OPT_CLUSTER])
        return cli_usage_error(a.cmd, "--cluster C is required");
    if (api_path_add(path, sizeof(path), a.opt[API_OPT_CLUSTER]) < 0 ||
        api_path_add(path, sizeof(path), "quarantines") < 0 ||
        api_path_add(path, sizeof(path), a.pos[0]) < 0)
        return cli_usage_error(a.cmd, "cluster name or address too long");
    rc = api_once(&a, "DELETE", path, NULL, &doc);
    if (rc)
        return rc;
    snprintf(line, sizeof(line), "quarantine of %s in cluster %s released on every node",
             json_string_value(json_object_get(doc, "address")), a.opt[API_OPT_CLUSTER]);
    return out_result(a.format, line, doc);
}

/* The path of the cluster's threat list, or a usage error. */
static int threats_path(const struct api_args *a, char *path, size_t n)
{
    if (!a->opt[API_OPT_CLUSTER])
        return cli_usage_error(a->cmd, "--cluster C is required");
    snprintf(path, n, "/api/v1/clusters");
    if (api_path_add(path, n, a->opt[API_OPT_CLUSTER]) < 0 ||
        api_path_add(path, n, "threat-intel") < 0)
        return cli_usage_error(a->cmd, "cluster name too long");
    return MOAT_EXIT_OK;
}

/* Reads `file` ("-": stdin) whole, at most THREATS_FILE_MAX bytes, into *text (caller frees). */
static int read_list(const char *what, const char *file, char **text, size_t *len)
{
    int err = doc_read_file_max(file, THREATS_FILE_MAX, text, len);
    if (err == -EFBIG)
        fprintf(stderr, "moat: %s: %s: larger than %u MiB\n", what, file, THREATS_FILE_MAX >> 20);
    else if (err)
        fprintf(stderr, "moat: %s: %s: %s\n", what, file, strerror(-err));
    return err == -ENOMEM ? MOAT_EXIT_ERROR : err ? MOAT_EXIT_INVALID : MOAT_EXIT_OK;
}

/* Sends one request about the threat list; prints an error answer. Returns an exit code. */
static int threats_call(const struct api_args *a, const char *method, const char *body, size_t len,
                        char **answer, size_t *answer_len)
{
    char path[API_PATH_MAX];
    struct api_client *c = NULL;
    long status = 0;
    int rc = threats_path(a, path, sizeof(path));
    if (!rc)
        rc = api_open(a, &c);
    if (!rc)
        rc = api_call_raw(c, method, path, body, len, body ? "text/plain" : NULL, &status, answer,
                          answer_len);
    api_client_free(c);
    if (!rc && (status < 200 || status >= 300)) {
        json_t *resp = *answer ? json_loadb(*answer, *answer_len, 0, NULL) : NULL;
        api_print_errors(a->cmd->name, status, resp);
        json_decref(resp);
        free(*answer);
        *answer = NULL;
        rc = api_exit_for_status(status);
    }
    return rc;
}

int cmd_threats_set(int argc, char **argv)
{
    struct api_args a;
    char *text = NULL, *answer = NULL, line[256];
    size_t len = 0, answer_len = 0;
    const api_mask mask = API_BIT(API_OPT_CLUSTER) | API_BIT(API_OPT_FILE);
    int rc = api_args_parse("threat-intel set", mask, 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (!a.opt[API_OPT_FILE])
        return cli_usage_error(a.cmd, "-f FILE is required (- for stdin)");
    rc = read_list(a.cmd->name, a.opt[API_OPT_FILE], &text, &len);
    if (!rc)
        rc = threats_call(&a, "PUT", text, len, &answer, &answer_len);
    free(text);
    if (rc)
        return rc;
    json_t *doc = json_loadb(answer, answer_len, 0, NULL);
    free(answer);
    snprintf(line, sizeof(line), "threat list of cluster %s: %lld prefixes, version %s",
             a.opt[API_OPT_CLUSTER],
             (long long)json_integer_value(json_object_get(doc, "prefixes")),
             json_string_value(json_object_get(doc, "version")));
    return out_result(a.format, line, doc);
}

int cmd_threats_get(int argc, char **argv)
{
    struct api_args a;
    char *answer = NULL;
    size_t len = 0;
    int rc = api_args_parse("threat-intel get", API_BIT(API_OPT_CLUSTER), 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    rc = threats_call(&a, "GET", NULL, 0, &answer, &len);
    if (!rc && len && fwrite(answer, 1, len, stdout) != len)
        rc = MOAT_EXIT_ERROR;
    free(answer);
    return rc;
}

int cmd_threats_delete(int argc, char **argv)
{
    struct api_args a;
    char *answer = NULL, line[256];
    size_t len = 0;
    int rc = api_args_parse("threat-intel delete", API_BIT(API_OPT_CLUSTER), 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    rc = threats_call(&a, "DELETE", NULL, 0, &answer, &len);
    json_t *doc = rc || !answer ? NULL : json_loadb(answer, len, 0, NULL);
    free(answer);
    if (rc)
        return rc;
    snprintf(line, sizeof(line), "threat list of cluster %s removed", a.opt[API_OPT_CLUSTER]);
    return out_result(a.format, line, doc);
}
