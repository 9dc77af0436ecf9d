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
    MOAT_EXIT_OK = 0,       /* done; for queries: the answer is "yes" */
    MOAT_EXIT_ERROR = 1,    /* could not complete (I/O, out of memory, server down) */
    MOAT_EXIT_INVALID = 2,  /* invalid input or usage; every error was printed */
    MOAT_EXIT_NEGATIVE = 3, /* a query answered "no" (e.g. not certified) */
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
enum cli_format { CLI_FORMAT_TABLE = 0, CLI_FORMAT_JSON = 1 };
/* Parses -o VALUE ("table"/"text" or "json"); returns 0 or -1. */
int cli_parse_format(const char *value, enum cli_format *out);

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

#endif
