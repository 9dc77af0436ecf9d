/*
 * cmd_compat: `moat compat check --os "NAME VERSION" --kernel RELEASE`.
 *
 * Answers offline whether a node is certified (SPEC 5): its OS and kernel are
 * in the kernel-support table. The matching itself is lib/compat; this file
 * parses the options, finds the table file and prints the answer as text or
 * JSON. Exit codes: 0 certified, 3 not certified, 2 invalid usage or table,
 * 1 I/O error or out of memory.
 *
 * The table is --table FILE when given, otherwise the first that exists of
 * $MOAT_DATA_DIR/kernel-support.tsv, then beside the executable
 * (/proc/self/exe): ../../data/ (the build tree), ../data/, ../share/moat/,
 * and finally /usr/share/moat/kernel-support.tsv.
 */
#include "cli.h"
#include "compat.h"
#include "diag.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD_NAME     "compat check"
#define TABLE_FILE   "kernel-support.tsv"
#define SYSTEM_TABLE "/usr/share/moat/" TABLE_FILE
#define CONTINUE     (-1) /* parse_args: go on and run the check */

struct opts {
    const char *os;
    const char *kernel;
    const char *table;
    bool json;
};

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct cli_command *cmd = cli_find(CMD_NAME);
    if (cmd)
        return cli_usage_error(cmd, "%s", msg);
    fprintf(stderr, "moat: %s: %s\n", CMD_NAME, msg);
    return MOAT_EXIT_INVALID;
}

/*
 * When argv[*i] is option `name` ("--os", "-o"), stores its value ("--os X",
 * "--os=X", "-oX") in *val, advances *i and returns 1; returns 0 when it is
 * another option, or an exit code (usage error) when the value is missing.
 */
static int take(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=' && name[1] == '-') {
        *val = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0' && name[1] != '-') {
        *val = arg + n;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return usage("%s: missing value", name);
    *val = argv[++*i];
    return 1;
}

/* Stores one option's value; returns 1, 0 (not this option) or an exit code. */
static int take_once(int argc, char **argv, int *i, const char *name, const char **slot)
{
    const char *val = NULL;
    int r = take(argc, argv, i, name, &val);
    if (r != 1)
        return r;
    if (*slot)
        return usage("%s: given more than once", name);
    *slot = val;
    return 1;
}

static int check_opts(struct opts *o, const char *output)
{
    if (!o->os)
        return usage("--os: required (e.g. --os \"CentOS 7.9-2009\")");
    if (!o->kernel)
        return usage("--kernel: required (e.g. --kernel \"$(uname -r)\")");
    if (strspn(o->os, " \t\n") == strlen(o->os))
        return usage("--os: must not be empty");
    if (strspn(o->kernel, " \t\n") == strlen(o->kernel))
        return usage("--kernel: must not be empty");
    if (output && strcmp(output, "json") != 0 && strcmp(output, "table") != 0)
        return usage("-o: expected 'table' or 'json', not '%s'", output);
    if (o->table && !o->table[0])
        return usage("--table: must not be empty");
    o->json = output && strcmp(output, "json") == 0;
    json_t *os = json_string(o->os), *kernel = json_string(o->kernel);
    json_decref(os);
    json_decref(kernel);
    if (!os)
        return usage("--os: not valid UTF-8");
    if (!kernel)
        return usage("--kernel: not valid UTF-8");
    return CONTINUE;
}

/* Returns CONTINUE when the check should run, otherwise the exit code. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    const char *output = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            const struct cli_command *cmd = cli_find(CMD_NAME);
            if (cmd)
                cli_print_help(stdout, cmd);
            return MOAT_EXIT_OK;
        }
        int r = take_once(argc, argv, &i, "--os", &o->os);
        if (r == 0)
            r = take_once(argc, argv, &i, "--kernel", &o->kernel);
        if (r == 0)
            r = take_once(argc, argv, &i, "--table", &o->table);
        if (r == 0)
            r = take_once(argc, argv, &i, "--output", &output);
        if (r == 0)
            r = take_once(argc, argv, &i, "-o", &output);
        if (r == 0 && arg[0] == '-')
            return usage("unknown option '%s'", arg);
        if (r == 0)
            return usage("unexpected argument '%s'", arg);
        if (r != 1)
            return r;
    }
    return check_opts(o, output);
}

/* ---- finding and loading the table ------------------------------------ */

/* Prints the table's errors; returns the exit code for a failed load. */
static int report_load_error(int err, const char *path, const struct moat_diags *d)
{
    for (size_t i = 0; i < d->count; i++)
        fprintf(stderr, "moat: %s: %s\n", CMD_NAME, d->items[i].text);
    if (d->dropped)
        fprintf(stderr, "moat: %s: ... and %zu more errors\n", CMD_NAME, d->dropped);
    if (err == -EINVAL)
        return MOAT_EXIT_INVALID;
    fprintf(stderr, "moat: %s: %s: %s\n", CMD_NAME, path, strerror(-err));
    return MOAT_EXIT_ERROR;
}

/*
 * Shortens an absolute path under the current directory to a relative one
 * (for messages such as "data/kernel-support.tsv:220") into out.
 */
static void display_path(const char *path, char *out, size_t len)
{
    char cwd[PATH_MAX];
    size_t n = 0;
    if (getcwd(cwd, sizeof(cwd)))
        n = strlen(cwd);
    if (n > 1 && strncmp(path, cwd, n) == 0 && path[n] == '/')
        path += n + 1;
    snprintf(out, len, "%s", path);
}

/* out = a + b + c; false (and nothing added) when it does not fit in PATH_MAX. */
static bool add_path(char cand[][PATH_MAX], size_t *n, const char *a, const char *b, const char *c)
{
    int len = snprintf(cand[*n], PATH_MAX, "%s%s%s", a, b, c);
    if (len < 0 || len >= PATH_MAX)
        return false;
    (*n)++;
    return true;
}

/* Candidate table paths in lookup order into cand[] (room for 5); returns how many. */
static size_t default_candidates(char cand[][PATH_MAX])
{
    static const char *const beside_exe[] = {"/../../data/", "/../data/", "/../share/moat/"};
    size_t n = 0;
    const char *dir = getenv("MOAT_DATA_DIR");
    if (dir && dir[0])
        add_path(cand, &n, dir, "/", TABLE_FILE);
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash = len > 0 ? memrchr(exe, '/', (size_t)len) : NULL;
    if (slash) {
        *slash = '\0';
        for (size_t i = 0; i < sizeof(beside_exe) / sizeof(beside_exe[0]); i++)
            add_path(cand, &n, exe, beside_exe[i], TABLE_FILE);
    }
    add_path(cand, &n, SYSTEM_TABLE, "", "");
    return n;
}

/*
 * Loads the default table (see the top of this file) into *out and its
 * display path into path. A missing candidate is skipped; any other failure
 * stops the search. Returns 0 or an exit code (the error is printed).
 */
static int load_default_table(struct compat_table **out, struct moat_diags *d, char *path,
                              size_t len)
{
    char cand[5][PATH_MAX];
    size_t n = default_candidates(cand);
    for (size_t i = 0; i < n; i++) {
        char real[PATH_MAX];
        if (!realpath(cand[i], real)) {
            if (errno == ENOENT || errno == ENOTDIR)
                continue;
            snprintf(real, sizeof(real), "%s", cand[i]);
        }
        display_path(real, path, len);
        int err = compat_table_load(out, path, d);
        return err ? report_load_error(err, path, d) : 0;
    }
    fprintf(stderr, "moat: %s: %s not found (looked in", CMD_NAME, TABLE_FILE);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s %s", i ? "," : "", cand[i]);
    fprintf(stderr, "); set MOAT_DATA_DIR or use --table FILE\n");
    return MOAT_EXIT_ERROR;
}

static int load_table(const struct opts *o, struct compat_table **out, char *path, size_t len)
{
    struct moat_diags d;
    diags_init(&d);
    int rc = 0;
    if (o->table) {
        snprintf(path, len, "%s", o->table);
        int err = compat_table_load(out, o->table, &d);
        if (err)
            rc = report_load_error(err, o->table, &d);
    } else {
        rc = load_default_table(out, &d, path, len);
    }
    diags_clear(&d);
    return rc;
}

/* ---- printing the answer ----------------------------------------------- */

/* "PATH:LINE (OS VERSION, kernel K[ up to PREFIXMAX])" */
static void print_row(const char *label, const char *path, const struct compat_row *row)
{
    if (row->line == 0)
        return;
    printf("%s: %s:%d (%s %s, kernel %s", label, path, row->line, row->os, row->version,
           row->kernel);
    size_t n = strlen(row->kernel);
    if (row->max && n >= 2)
        printf(" up to %.*s%s", (int)(n - 2), row->kernel, row->max);
    printf(")\n");
}

static int print_text(const struct compat_result *r, const char *path)
{
    printf("certified: %s\n", r->certified ? "yes" : "no");
    if (r->certified) {
        print_row("row", path, &r->row);
        return 0;
    }
    printf("reason: %s\n", r->why);
    print_row("closest", path, &r->row);
    if (r->elsewhere.line != r->row.line)
        print_row("elsewhere", path, &r->elsewhere);
    return 0;
}

/* {"line", "os", "version", "kernel", "max"} or NULL (JSON null) for no row. */
static json_t *row_json(const struct compat_row *row, bool *oom)
{
    if (row->line == 0)
        return NULL;
    json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:s?}", "line", row->line, "os", row->os, "version",
                          row->version, "kernel", row->kernel, "max", row->max);
    if (!j)
        *oom = true;
    return j;
}

static int print_json(const struct opts *o, const struct compat_result *r, const char *path)
{
    bool oom = false;
    json_t *row = r->certified ? row_json(&r->row, &oom) : NULL;
    json_t *closest = r->certified ? NULL : row_json(&r->row, &oom);
    json_t *elsewhere = row_json(&r->elsewhere, &oom);
    json_t *root = json_pack(
        "{s:b, s:s, s:s, s:s, s:o?, s:s?, s:s, s:o?, s:o?}", "certified", r->certified, "os", o->os,
        "kernel", o->kernel, "table", path, "row", row, "reason", r->certified ? NULL : r->why,
        "reason_code", compat_reason_name(r->reason), "closest", closest, "elsewhere", elsewhere);
    char *text = root && !oom ? json_dumps(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    if (!text) {
        fprintf(stderr, "moat: %s: out of memory\n", CMD_NAME);
        return -ENOMEM;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

int cmd_compat_check(int argc, char **argv)
{
    struct opts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc != CONTINUE)
        return rc;
    struct compat_table *t = NULL;
    char path[PATH_MAX];
    rc = load_table(&o, &t, path, sizeof(path));
    if (rc)
        return rc;
    struct compat_result r;
    rc = compat_check(t, o.os, o.kernel, &r);
    if (rc == 0)
        rc = o.json ? print_json(&o, &r, path) : print_text(&r, path);
    compat_table_free(t);
    if (rc < 0)
        return rc == -EINVAL ? MOAT_EXIT_INVALID : MOAT_EXIT_ERROR;
    if (fflush(stdout) != 0) {
        fprintf(stderr, "moat: %s: writing the answer: %s\n", CMD_NAME, strerror(errno));
        return MOAT_EXIT_ERROR;
    }
    return r.certified ? MOAT_EXIT_OK : MOAT_EXIT_NEGATIVE;
}
