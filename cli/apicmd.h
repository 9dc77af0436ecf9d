/*
 * apicmd: what the commands over moat-server's API share — their options
 * (one table, parsed the same way by every command), opening a client, and
 * printing answers as a table, JSON or YAML.
 */
#ifndef MOAT_CLI_APICMD_H
#define MOAT_CLI_APICMD_H

#include "cli.h"
#include "client.h"

#include <jansson.h>
#include <stdbool.h>

/* Options a command may accept (besides --server, --token, -o and --help). */
enum api_opt {
    API_OPT_FILE,
    API_OPT_CLUSTER,
    API_OPT_NAME,
    API_OPT_NAMESPACE,
    API_OPT_APP,
    API_OPT_DEFENSE,
    API_OPT_MODE,
    API_OPT_DEFAULT_ACTION,
    API_OPT_ENABLED,
    API_OPT_ACTION,
    API_OPT_SOURCE,
    API_OPT_PROTOCOL,
    API_OPT_TYPE,
    API_OPT_PRIORITY,
    API_OPT_DESCRIPTION,
    API_OPT_LIMIT,
    API_OPT_OFFSET,
    API_OPT_NODE,
    API_OPT_KIND,
    API_OPT_STATUS,
    API_OPT_WORKLOAD,
    API_OPT_SINCE,
    API_OPT_UNTIL,
    API_OPT_FOLLOW, /* a flag: "true" when given */
    API_OPT_IMAGE,
    API_OPT_LABEL,
    API_OPT_ALL, /* a flag */
    API_OPT_ID,
    API_OPT_DESTINATION,
    API_OPT_PORT,
    API_OPT_TTL,
    API_OPT_USES,
    API_OPT_LIST, /* a flag */
    API_OPT_REVOKE,
    API_OPT_ACTOR,
    API_OPT_COUNT
};
/* A set of options, one bit each. */
typedef unsigned long long api_mask;
#define API_BIT(o) (1ull << (o))
_Static_assert(API_OPT_COUNT <= 64, "API_BIT gives each option one bit of an api_mask");

#define API_ARGS_MAX 256
#define API_PATH_MAX 2048

struct api_args {
    const struct cli_command *cmd;
    const char *server, *token;
    enum cli_format format;
    const char *opt[API_OPT_COUNT]; /* NULL when not given */
    const char *pos[API_ARGS_MAX];  /* positional arguments */
    int npos;
    bool help; /* --help was given and printed: the command is done */
};

/*
 * Parses argv[1..argc) of the command named `name`, accepting the options
 * in the `allowed` mask and between min_pos and max_pos positional
 * arguments. Returns MOAT_EXIT_OK (check a->help) or MOAT_EXIT_INVALID with
 * the usage printed.
 */
int api_args_parse(const char *name, api_mask allowed, int min_pos, int max_pos, int argc,
                   char **argv, struct api_args *a);
/* Opens the client for parsed arguments; returns an exit code (see api_client_new). */
int api_open(const struct api_args *a, struct api_client **out);
/*
 * Opens a client, sends one request (api_do, errors named by the command),
 * closes the client. Returns an exit code; *resp as api_do.
 */
int api_once(const struct api_args *a, const char *method, const char *path, const json_t *body,
             json_t **resp);
/*
 * A --since/--until value as the server's time (YYYY-MM-DDTHH:MM:SSZ): an age
 * (90s, 30m, 24h, 7d, 2w) before now, a day YYYY-MM-DD at 00:00:00Z, else as
 * given (the server checks it), into out[n].
 */
void api_time_arg(const char *in, char *out, size_t n);
/* Appends `seg` to the path in buf (size n) as one encoded segment after a '/'; 0 or -1. */
int api_path_add(char *buf, size_t n, const char *seg);
/* The query string for the options in `mask` that were given, as ?key=value&... */
int api_filters(const struct api_args *a, api_mask mask, char *buf, size_t n);
/*
 * GETs every page of the list at `path` (which may hold a query already) with
 * the client `c`, errors named by `what`. Returns MOAT_EXIT_OK with *items (a
 * JSON array the caller releases), or the exit code of the failed request.
 * Stops at API_LIST_MAX items.
 */
#define API_LIST_MAX 100000
int api_list_all(struct api_client *c, const char *what, const char *path, json_t **items);

struct moat_policy;
/*
 * Fetches what the server holds for `cluster` (NULL: every cluster) — the
 * cluster settings, the network objects it may use, its rules and the
 * workloads agents reported — and loads it with libmoat's loader as the
 * policy files would be (Cluster, NetworkObject, DefenseRule and Workload
 * documents); rules keep the server's ids. Returns MOAT_EXIT_OK with *out
 * (policy_free), or an exit code with the problem printed.
 */
int api_fetch_policy(struct api_client *c, const char *what, const char *cluster,
                     struct moat_policy **out);
/*
 * The records behind api_fetch_policy, as the API lists them: the clusters
 * (`cluster`, or all when NULL), every network object and the clusters'
 * rules. Returns MOAT_EXIT_OK with three JSON arrays the caller releases, or
 * an exit code with the problem printed (and the arrays NULL).
 */
int api_fetch_records(struct api_client *c, const char *what, const char *cluster,
                      json_t **clusters, json_t **objects, json_t **rules);

/*
 * Reads the one document of a YAML or JSON file ("-" is stdin) as a JSON
 * object (caller releases it). Returns MOAT_EXIT_OK, or INVALID/ERROR with
 * the problem printed.
 */
int api_read_doc(const char *what, const char *path, json_t **out);

struct doc_node;
/*
 * A document tree (lib/doc.h) as JSON with its scalars typed, except that
 * numbers in string fields (name, namespace, app, cluster, description,
 * source, destinations[].object, images, labels, cidrs, mode, action, ...)
 * become strings, as the loader reads them and the API wants them; ports,
 * priority and the detections' numbers stay numbers. NULL on OOM.
 */
json_t *api_doc_json(const struct doc_node *n);

/* A column of a table: its header and the document key it shows. */
struct out_col {
    const char *head;
    const char *key;
};

/*
 * Prints a list answer ({"items": [...], "total": N}) as a table of `cols`
 * (NULL-terminated), JSON (the whole answer) or YAML. Releases `list`.
 * Returns an exit code.
 */
int out_list(enum cli_format f, json_t *list, const struct out_col *cols);
/*
 * A whole `moat X list` command: parses `argc/argv` for the table row `name`
 * with the filter options in `mask`, GETs `base` with those filters and prints
 * the list with `cols`. Returns the exit code.
 */
int api_list_command(const char *name, api_mask mask, const char *base, const struct out_col *cols,
                     int argc, char **argv);
/*
 * Prints the per-hour series of a protection status document (`hourly`:
 * [{hour, blocked, alerted}]) compactly for tables: the hours it covers, then
 * one line each for blocked and alerted with a bar of one character per hour
 * (height scaled to the largest hour), the total and the busiest hour.
 */
void api_print_hourly(const json_t *status);
/* Prints one document: table (key value lines), JSON or YAML. Releases `doc`. */
int out_doc(enum cli_format f, json_t *doc);
/* Prints `j` as YAML on `out`. */
void out_yaml(FILE *out, const json_t *j);
/*
 * Prints what a write did: for tables the `line` (e.g. "cluster prod
 * created"), else `doc` as JSON or YAML. Releases `doc`.
 */
int out_result(enum cli_format f, const char *line, json_t *doc);

#endif
