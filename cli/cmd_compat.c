/*
 * cmd_compat: `moat compat check --os "NAME VERSION" --kernel RELEASE`, and
 * the fleet report `moat compat check --file FILE` (one `OS|kernel` per line,
 * or JSON objects {"os", "kernel"[, "name"]}): per node, certified or not,
 * the datapath backend that would run (lib/compat's estimate by kernel
 * version) and what the others miss, then a summary line; exit 1 when a node
 * could not enforce at all.
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
    const char *file;
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
    if (o->file && (o->os || o->kernel))
        return usage("--file: not with --os or --kernel (the file names the nodes)");
    if (o->file && !o->file[0])
        return usage("--file: must not be empty");
    if (output && strcmp(output, "json") != 0 && strcmp(output, "table") != 0)
        return usage("-o: expected 'table' or 'json', not '%s'", output);
    if (o->file) {
        o->json = output && strcmp(output, "json") == 0;
        return CONTINUE;
    }
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
            r = take_once(argc, argv, &i, "--file", &o->file);
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

/* ---- the fleet report ------------------------------------------------- */

#define FLEET_FILE_MAX  (4 * 1024 * 1024)
#define FLEET_NODES_MAX 100000
#define FLEET_FIELD_MAX 256

struct fleet_node {
    int line;
    char *name, *os, *kernel;
};

struct fleet {
    struct fleet_node *nodes;
    size_t n;
    int errors;
};

static void fleet_free(struct fleet *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->nodes[i].name);
        free(f->nodes[i].os);
        free(f->nodes[i].kernel);
    }
    free(f->nodes);
}

static void fleet_error(struct fleet *f, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fleet_error(struct fleet *f, const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (f->errors++ < 100)
        fprintf(stderr, "moat: %s: %s:%d: %s\n", CMD_NAME, file, line, msg);
}

/* Checks one node's fields (trimmed copies kept); errors are reported, not fatal here. */
static int fleet_add(struct fleet *f, const char *file, int line, const char *name, const char *os,
                     const char *kernel)
{
    const char *what[] = {"os", "kernel"}, *val[] = {os, kernel};
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        if (!val[i] || strspn(val[i], " \t\r") == strlen(val[i])) {
            fleet_error(f, file, line, "%s: missing", what[i]);
            ok = false;
        } else if (strlen(val[i]) > FLEET_FIELD_MAX) {
            fleet_error(f, file, line, "%s: longer than %d bytes", what[i], FLEET_FIELD_MAX);
            ok = false;
        }
    }
    if (name && strlen(name) > FLEET_FIELD_MAX) {
        fleet_error(f, file, line, "name: longer than %d bytes", FLEET_FIELD_MAX);
        ok = false;
    }
    if (!ok)
        return 0;
    if (f->n >= FLEET_NODES_MAX) {
        fleet_error(f, file, line, "more than %d nodes", FLEET_NODES_MAX);
        return 0;
    }
    struct fleet_node *nodes = realloc(f->nodes, (f->n + 1) * sizeof(*nodes));
    if (!nodes)
        return -ENOMEM;
    f->nodes = nodes;
    struct fleet_node *nd = &f->nodes[f->n];
    nd->line = line;
    nd->name = name ? strdup(name) : NULL;
    nd->os = strdup(os);
    nd->kernel = strdup(kernel);
    f->n++;
    if ((name && !nd->name) || !nd->os || !nd->kernel)
        return -ENOMEM;
    return 0;
}

static char *trim_inplace(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* `OS|kernel` lines; blank lines and lines starting with # are skipped. */
static int fleet_lines(struct fleet *f, const char *file, char *text)
{
    int line = 0, err = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && !err;
         l = strtok_r(NULL, "\n", &save)) {
        line++;
        char *t = trim_inplace(l);
        if (!*t || *t == '#')
            continue;
        char *bar = strchr(t, '|');
        if (!bar) {
            fleet_error(f, file, line,
                        "expected OS|KERNEL (e.g. \"CentOS 7.9-2009|3.10.0-1160.el7.x86_64\")");
            continue;
        }
        *bar = '\0';
        if (strchr(bar + 1, '|')) {
            fleet_error(f, file, line, "expected OS|KERNEL: more than one '|'");
            continue;
        }
        err = fleet_add(f, file, line, NULL, trim_inplace(t), trim_inplace(bar + 1));
    }
    return err;
}

static int fleet_object(struct fleet *f, const char *file, int line, const json_t *o)
{
    if (!json_is_object(o)) {
        fleet_error(f, file, line, "expected an object {\"os\", \"kernel\"}");
        return 0;
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (strcmp(k, "os") != 0 && strcmp(k, "kernel") != 0 && strcmp(k, "name") != 0)
            fleet_error(f, file, line, "%s: unknown field (os, kernel, name)", k);
        else if (!json_is_string(v))
            fleet_error(f, file, line, "%s: must be a string", k);
    }
    return fleet_add(f, file, line, json_string_value(json_object_get(o, "name")),
                     json_string_value(json_object_get(o, "os")),
                     json_string_value(json_object_get(o, "kernel")));
}

/* A JSON array of objects, or one object per line (JSON lines). */
static int fleet_json(struct fleet *f, const char *file, const char *text)
{
    json_error_t je;
    json_t *all = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    int err = 0;
    if (json_is_array(all)) {
        size_t i;
        json_t *o;
        json_array_foreach(all, i, o)
        {
            err = fleet_object(f, file, (int)i + 1, o);
            if (err)
                break;
        }
        json_decref(all);
        return err;
    }
    if (json_is_object(all)) {
        err = fleet_object(f, file, 1, all);
        json_decref(all);
        return err;
    }
    json_decref(all);
    /* JSON lines */
    char *copy = strdup(text);
    if (!copy)
        return -ENOMEM;
    int line = 0;
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l && !err;
         l = strtok_r(NULL, "\n", &save)) {
        line++;
        char *t = trim_inplace(l);
        if (!*t)
            continue;
        json_t *o = json_loads(t, JSON_REJECT_DUPLICATES, &je);
        if (!o)
            fleet_error(f, file, line, "not JSON: %s", je.text);
        else
            err = fleet_object(f, file, line, o);
        json_decref(o);
    }
    free(copy);
    return err;
}

static int fleet_read(const char *file, struct fleet *f)
{
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (!in) {
        fprintf(stderr, "moat: %s: --file %s: %s\n", CMD_NAME, file, strerror(errno));
        return MOAT_EXIT_ERROR;
    }
    char *text = malloc(FLEET_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, FLEET_FILE_MAX + 1, in) : 0;
    if (in != stdin)
        fclose(in);
    if (!text)
        return MOAT_EXIT_ERROR;
    if (n > FLEET_FILE_MAX) {
        free(text);
        fprintf(stderr, "moat: %s: --file %s: larger than %d bytes\n", CMD_NAME, file,
                FLEET_FILE_MAX);
        return MOAT_EXIT_INVALID;
    }
    text[n] = '\0';
    if (memchr(text, '\0', n)) {
        free(text);
        fprintf(stderr, "moat: %s: --file %s: holds a NUL byte\n", CMD_NAME, file);
        return MOAT_EXIT_INVALID;
    }
    const char *p = text + strspn(text, " \t\r\n");
    int err = *p == '[' || *p == '{' ? fleet_json(f, file, text) : fleet_lines(f, file, text);
    free(text);
    if (err)
        return MOAT_EXIT_ERROR;
    if (f->errors) {
        fprintf(stderr, "moat: %s: --file %s: %d error%s, nothing checked\n", CMD_NAME, file,
                f->errors, f->errors == 1 ? "" : "s");
        return MOAT_EXIT_INVALID;
    }
    if (!f->n) {
        fprintf(stderr, "moat: %s: --file %s: no node in it\n", CMD_NAME, file);
        return MOAT_EXIT_INVALID;
    }
    return 0;
}

static json_t *backend_json(enum compat_verdict v, const char *missing)
{
    return json_pack("{s:s,s:s}", "runs", compat_verdict_name(v), "missing", missing);
}

static int fleet_report(const struct opts *o, const struct compat_table *t, const char *path,
                        const struct fleet *f)
{
    size_t certified = 0, ebpf = 0, ipt = 0, unknown = 0, none = 0;
    json_t *items = o->json ? json_array() : NULL;
    if (!o->json)
        printf("%-6s %-28s %-32s %-9s %-9s %s\n", "NODE", "OS", "KERNEL", "CERTIFIED", "BACKEND",
               "MISSING");
    for (size_t i = 0; i < f->n; i++) {
        const struct fleet_node *nd = &f->nodes[i];
        struct compat_result r;
        struct compat_backends b;
        compat_check(t, nd->os, nd->kernel, &r);
        compat_backends(nd->kernel, &b);
        certified += r.certified;
        bool probe = b.ebpf == COMPAT_UNKNOWN;
        if (b.would_run && strcmp(b.would_run, "ebpf") == 0)
            ebpf++;
        else if (b.would_run)
            ipt++;
        if (probe)
            unknown++;
        if (!b.would_run)
            none++;
        char missing[700] = "";
        if (b.ebpf != COMPAT_YES && b.ebpf_missing[0])
            snprintf(missing, sizeof(missing), "ebpf: %s", b.ebpf_missing);
        if (b.iptables != COMPAT_YES && b.iptables_missing[0])
            snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%siptables: %s",
                     missing[0] ? "; " : "", b.iptables_missing);
        char label[32];
        snprintf(label, sizeof(label), "%d", nd->line);
        if (!o->json) {
            printf("%-6s %-28s %-32s %-9s %-9s %s%s%s\n", nd->name ? nd->name : label, nd->os,
                   nd->kernel, r.certified ? "yes" : "no", b.would_run ? b.would_run : "none",
                   missing[0] ? missing : "-", b.note[0] ? "; " : "", b.note);
            continue;
        }
        json_t *e = json_pack("{s:i,s:s?,s:s,s:s,s:b,s:s?,s:s?,s:o,s:o,s:s?}", "line", nd->line,
                              "name", nd->name, "os", nd->os, "kernel", nd->kernel, "certified",
                              r.certified, "reason", r.certified ? NULL : r.why, "backend",
                              b.would_run, "ebpf", backend_json(b.ebpf, b.ebpf_missing), "iptables",
                              backend_json(b.iptables, b.iptables_missing), "note",
                              b.note[0] ? b.note : NULL);
        if (!e || json_array_append_new(items, e) < 0) {
            json_decref(items);
            return -ENOMEM;
        }
    }
    if (o->json) {
        json_t *root =
            json_pack("{s:s,s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "table", path, "nodes", items,
                      "summary", "nodes", (json_int_t)f->n, "certified", (json_int_t)certified,
                      "ebpf", (json_int_t)ebpf, "iptables", (json_int_t)ipt, "probe_decides",
                      (json_int_t)unknown, "cannot_enforce", (json_int_t)none);
        char *text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
        json_decref(root);
        if (!text)
            return -ENOMEM;
        printf("%s\n", text);
        free(text);
    } else {
        printf("%zu node%s: %zu certified, %zu would run ebpf, %zu iptables (%zu of them ebpf if "
               "the node's probe finds it), %zu cannot enforce\n",
               f->n, f->n == 1 ? "" : "s", certified, ebpf, ipt, unknown, none);
    }
    return none ? 1 : 0;
}

int cmd_compat_check(int argc, char **argv)
{
    struct opts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc != CONTINUE)
        return rc;
    struct compat_table *t = NULL;
    char path[PATH_MAX];
    if (o.file) {
        struct fleet f = {0};
        rc = fleet_read(o.file, &f);
        if (!rc)
            rc = load_table(&o, &t, path, sizeof(path));
        if (!rc) {
            rc = fleet_report(&o, t, path, &f);
            if (rc < 0) {
                fprintf(stderr, "moat: %s: out of memory\n", CMD_NAME);
                rc = MOAT_EXIT_ERROR;
            }
        }
        compat_table_free(t);
        fleet_free(&f);
        if (fflush(stdout) != 0)
            rc = MOAT_EXIT_ERROR;
        return rc;
    }
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
