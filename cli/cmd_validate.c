/*
 * cmd_validate: `moat validate -f FILE...` — checks files together and prints
 * every error (file:line: document: field: problem). Exit 0 valid, 2 invalid.
 */
#include "cli.h"
#include "loader.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_command *self(void)
{
    return cli_find("validate");
}

static int parse_args(int argc, char **argv, struct cli_files *files, enum cli_format *format)
{
    static const struct option longopts[] = {{"file", required_argument, NULL, 'f'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":f:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (cli_files_add(files, optarg) < 0)
                return cli_usage_error(self(), "too many files");
            break;
        case 'o':
            if (cli_parse_format(optarg, format) < 0)
                return cli_usage_error(self(), "-o: \"%s\" is not table or json", optarg);
            break;
        case 'h':
            cli_print_help(stdout, self());
            return -1;
        case ':':
            return cli_usage_error(self(), "%s: needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(self(), "%s: unknown option", argv[optind - 1]);
        }
    }
    for (; optind < argc; optind++) /* `moat validate a.yaml b.yaml` works too */
        if (cli_files_add(files, argv[optind]) < 0)
            return cli_usage_error(self(), "too many files");
    if (files->count == 0)
        return cli_usage_error(self(), "-f: at least one file is required");
    return 0;
}

static void count_kinds(const struct moat_policy *p, size_t *sys, size_t *wl)
{
    *sys = 0;
    for (size_t i = 0; i < p->nrules; i++)
        *sys += p->rules[i].type == MOAT_RULE_SYSTEM;
    *wl = p->nworkloads;
}

static int print_json(const struct moat_policy *p, const struct moat_diags *d)
{
    json_t *errors = json_array();
    for (size_t i = 0; i < d->count; i++)
        json_array_append_new(errors, json_pack("{s:s?,s:i,s:s}", "file", d->items[i].file, "line",
                                                d->items[i].line, "message", d->items[i].text));
    json_t *j = json_pack("{s:b,s:o}", "valid", p != NULL, "errors", errors);
    if (j && p) {
        size_t sys, wl;
        count_kinds(p, &sys, &wl);
        json_object_set_new(j, "clusters", json_integer((json_int_t)p->nclusters));
        json_object_set_new(j, "objects", json_integer((json_int_t)p->nobjects));
        json_object_set_new(j, "rules", json_integer((json_int_t)p->nrules));
        json_object_set_new(j, "system_rules", json_integer((json_int_t)sys));
        json_object_set_new(j, "workloads", json_integer((json_int_t)wl));
    }
    return cli_print_json(j) == MOAT_EXIT_OK ? 0 : -1;
}

int cmd_validate(int argc, char **argv)
{
    struct cli_files files = {0};
    enum cli_format format = CLI_FORMAT_TABLE;
    int rc = parse_args(argc, argv, &files, &format);
    if (rc)
        return rc < 0 ? MOAT_EXIT_OK : rc;
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    int err = policy_load_files(&p, files.items, files.count, &d);
    if (format == CLI_FORMAT_JSON) {
        if (print_json(p, &d) < 0)
            err = -ENOMEM;
    } else {
        for (size_t i = 0; i < d.count; i++)
            fprintf(stderr, "%s\n", d.items[i].text);
        if (d.dropped)
            fprintf(stderr, "... and %zu more errors\n", d.dropped);
        if (p) {
            size_t sys, wl;
            count_kinds(p, &sys, &wl);
            printf("ok: %zu cluster%s, %zu objects (3 built-in), %zu rules (%zu system), %zu "
                   "workloads\n",
                   p->nclusters, p->nclusters == 1 ? "" : "s", p->nobjects, p->nrules, sys, wl);
        } else if (err == -EINVAL) {
            fprintf(stderr, "invalid: %zu error%s\n", diags_total(&d),
                    diags_total(&d) == 1 ? "" : "s");
        }
    }
    diags_clear(&d);
    policy_free(p);
    return cli_exit_for_load_error(err);
}
