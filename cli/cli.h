/*
 * cli: the `moat` command table and the pieces every command shares.
 *
 * Each command is a row in the table in moat.c (name, usage, summary, handler);
 * `moat help` and `moat CMD --help` print from that table, so help never drifts
 * from what is dispatched. A handler gets argv starting at its own name and
 * returns one of the exit codes below.
 */
#ifndef MOAT_CLI_H
#define MOAT_CLI_H

#include <stdio.h>

/* Exit codes of `moat` (stable; documented by `moat help exit-codes`). */
enum moat_exit {
    MOAT_EXIT_OK = 0,        /* done; for queries: the answer is "yes" */
    MOAT_EXIT_ERROR = 1,     /* could not complete (I/O, out of memory, server down) */
    MOAT_EXIT_INVALID = 2,   /* invalid input or usage; every error was printed */
    MOAT_EXIT_NEGATIVE = 3,  /* a query answered "no" (e.g. not certified) */
    MOAT_EXIT_DENIED = 4,    /* the server refused the token (HTTP 401) or its role (403) */
    MOAT_EXIT_NOT_FOUND = 5, /* the server has no such cluster, object or rule (HTTP 404) */
    MOAT_EXIT_CONFLICT = 6,  /* the server refused a change that conflicts (HTTP 409) */
};

struct cli_command {
    const char *name;    /* "explain", "compat check" */
    const char *usage;   /* one line of arguments */
    const char *summary; /* one sentence */
    const char *help;    /* options, one per line */
    int (*run)(int argc, char **argv);
};

/* Prints usage and help of `cmd` to `out`. */
void cli_print_help(FILE *out, const struct cli_command *cmd);
/* Prints "moat: <cmd>: <message>" and the usage line to stderr; returns MOAT_EXIT_INVALID. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The table row for a command name such as "compat check"; NULL when unknown. */
const struct cli_command *cli_find(const char *name);

/*
 * Prints `j` as indented JSON and a newline on stdout, then releases `j` (NULL
 * is fine: it means a build step ran out of memory). Returns MOAT_EXIT_OK, or
 * MOAT_EXIT_ERROR with a message on stderr.
 */
typedef struct json_t json_t;
int cli_print_json(json_t *j);

/* Output formats shared by commands. */
enum cli_format { CLI_FORMAT_TABLE = 0, CLI_FORMAT_JSON = 1, CLI_FORMAT_YAML = 2 };
/* Parses -o VALUE ("table"/"text" or "json"); returns 0 or -1. */
int cli_parse_format(const char *value, enum cli_format *out);
/* Same, and also "yaml" (the API commands); returns 0 or -1. */
int cli_parse_format_yaml(const char *value, enum cli_format *out);

struct moat_policy;
/*
 * Loads the files as one policy, printing every error to stderr.
 * Returns MOAT_EXIT_OK with *out set, MOAT_EXIT_INVALID or MOAT_EXIT_ERROR.
 */
int cli_load_policy(const char *const *files, size_t n, struct moat_policy **out);
/* The exit code for an error of policy_load_files (0, -EINVAL, -ENOENT, -ENOMEM...). */
int cli_exit_for_load_error(int err);

/* Collects repeatable -f/-i FILE arguments. */
struct cli_files {
    const char *items[64];
    size_t count;
};
/* Adds one file; returns 0, or -1 when there are too many. */
int cli_files_add(struct cli_files *f, const char *path);

int cmd_explain(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_compat_check(int argc, char **argv);
int cmd_lab_up(int argc, char **argv);
int cmd_lab_exec(int argc, char **argv);
int cmd_lab_down(int argc, char **argv);
int cmd_lab_status(int argc, char **argv);

/*
 * Commands over moat-server's API (cmd_cluster.c, cmd_object.c, cmd_rule.c,
 * cmd_apply.c, cmd_node.c, cmd_alert.c).
 */
int cmd_cluster_list(int argc, char **argv);
int cmd_cluster_get(int argc, char **argv);
int cmd_cluster_create(int argc, char **argv);
int cmd_cluster_update(int argc, char **argv);
int cmd_cluster_delete(int argc, char **argv);
int cmd_cluster_defense(int argc, char **argv);
int cmd_cluster_join_token(int argc, char **argv);
int cmd_object_list(int argc, char **argv);
int cmd_object_get(int argc, char **argv);
int cmd_object_create(int argc, char **argv);
int cmd_object_update(int argc, char **argv);
int cmd_object_delete(int argc, char **argv);
int cmd_rule_list(int argc, char **argv);
int cmd_rule_get(int argc, char **argv);
int cmd_rule_create(int argc, char **argv);
int cmd_rule_update(int argc, char **argv);
int cmd_rule_delete(int argc, char **argv);
int cmd_rule_enable(int argc, char **argv);
int cmd_rule_disable(int argc, char **argv);
int cmd_node_list(int argc, char **argv);
int cmd_node_get(int argc, char **argv);
int cmd_node_delete(int argc, char **argv);
int cmd_audit_list(int argc, char **argv);
int cmd_quarantine_list(int argc, char **argv);
int cmd_quarantine_release(int argc, char **argv);
int cmd_threats_set(int argc, char **argv);
int cmd_threats_get(int argc, char **argv);
int cmd_threats_delete(int argc, char **argv);
int cmd_workload_list(int argc, char **argv);
int cmd_alert_list(int argc, char **argv);
int cmd_alert_get(int argc, char **argv);
int cmd_alert_status(int argc, char **argv);
int cmd_alerts(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_delete(int argc, char **argv);

#endif
