/*
 * moat: the command-line tool. This file holds the command table (the one
 * place that names commands, their usage and help), dispatch and the helpers
 * every command shares.
 */
#include "cli.h"
#include "loader.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int cmd_help(int argc, char **argv);

static const struct cli_command commands[] = {
    {"explain",
     "-f POLICY... [-i INVENTORY...] --from WORKLOAD|IP|host --to WORKLOAD|IP --port N "
     "--proto tcp|udp|icmp [--node NAME] [-o table|json]",
     "Print the decision Moat takes for one flow, without touching the kernel.",
     "  -f, --file FILE        policy file (YAML or JSON); repeatable\n"
     "  -i, --inventory FILE   workload inventory file; repeatable\n"
     "      --from ENDPOINT    source: workload name (NAME, NAMESPACE/NAME or\n"
     "                         CLUSTER/NAMESPACE/NAME), an IP address, or `host`\n"
     "      --to ENDPOINT      destination, as --from\n"
     "      --port N           destination port (required for tcp and udp)\n"
     "      --proto P          tcp, udp, icmp or an IP protocol number (default tcp)\n"
     "      --node NAME        judge as node NAME's agent does (its addresses are `host`)\n"
     "  -o, --output FORMAT    table (default) or json\n"
     "Exit status: 0 whatever the decision; 2 for invalid input (every error printed).\n",
     cmd_explain},
    {"validate", "-f FILE... [-o table|json]",
     "Check policy, inventory and lab files and print every error found.",
     "  -f, --file FILE        file to check (YAML or JSON); repeatable; the files are\n"
     "                         checked together, so names may refer across them\n"
     "  -o, --output FORMAT    table (default) or json\n"
     "Exit status: 0 when valid, 2 when not (every error printed), 1 on I/O errors.\n",
     cmd_validate},
    {"compile", "-f FILE... [--node NAME] [-o table|json]",
     "Print the datapath tables the policy compiler makes from the files.",
     "  -f, --file FILE        policy and inventory files; repeatable\n"
     "      --node NAME        compile for node NAME (its addresses are `host`)\n"
     "  -o, --output FORMAT    table (default) or json\n",
     cmd_compile},
    {"compat check", "--os \"NAME VERSION\" --kernel RELEASE [-o table|json] [--table FILE]",
     "Say whether an OS and kernel are certified, offline (SPEC 5).",
     "      --os \"NAME VERSION\"  operating system, e.g. \"CentOS 7.9-2009\"\n"
     "      --kernel RELEASE     kernel release (uname -r)\n"
     "  -o, --output FORMAT      table (default) or json\n"
     "      --table FILE         kernel-support table to use; by default\n"
     "                           $MOAT_DATA_DIR/kernel-support.tsv, then the data/\n"
     "                           folder beside the program, then /usr/share/moat\n"
     "Exit status: 0 certified, 3 not certified, 2 invalid usage or table, 1 I/O error.\n",
     cmd_compat_check},
    {"lab up", "FILE [--inventory OUT] [--name LAB]",
     "Create a lab of nodes and workloads in network namespaces from an inventory file.",
     "  FILE                   lab file: Workload (and optional Node) documents (SPEC 10);\n"
     "                         addresses are assigned where `ips` is missing\n"
     "      --inventory OUT    write the completed inventory to OUT (default: stdout)\n"
     "      --name LAB         lab name (default: moat); several labs may coexist\n"
     "Needs root. Nothing in a lab routes out of the machine.\n",
     cmd_lab_up},
    {"lab exec", "[--name LAB] WORKLOAD|--node NODE -- CMD [ARGS...]",
     "Run a command inside a lab workload's (or node's) network namespace.",
     "      --name LAB         lab name (default: moat)\n"
     "      --node NODE        run in the node's namespace instead of a workload's\n"
     "Exit status: the command's.\n",
     cmd_lab_exec},
    {"lab down", "[--name LAB]", "Remove everything a lab made (namespaces, interfaces, state).",
     "      --name LAB         lab name (default: moat)\n", cmd_lab_down},
    {"lab status", "[--name LAB] [-o table|json]", "List a lab's nodes and workloads.",
     "      --name LAB         lab name (default: moat)\n"
     "  -o, --output FORMAT    table (default) or json\n",
     cmd_lab_status},
    {"help", "[COMMAND | exit-codes]", "Show help for moat or one command.", "", cmd_help},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct cli_command *cli_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void cli_print_help(FILE *out, const struct cli_command *cmd)
{
    fprintf(out, "usage: moat %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
    if (cmd->help[0])
        fprintf(out, "\n%s", cmd->help);
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "moat: %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: moat %s %s\n", cmd->name, cmd->usage);
    return MOAT_EXIT_INVALID;
}

int cli_print_json(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s) {
        fprintf(stderr, "moat: out of memory\n");
        return MOAT_EXIT_ERROR;
    }
    printf("%s\n", s);
    free(s);
    return MOAT_EXIT_OK;
}

int cli_parse_format(const char *value, enum cli_format *out)
{
    if (strcmp(value, "table") == 0 || strcmp(value, "text") == 0)
        *out = CLI_FORMAT_TABLE;
    else if (strcmp(value, "json") == 0)
        *out = CLI_FORMAT_JSON;
    else
        return -1;
    return 0;
}

int cli_files_add(struct cli_files *f, const char *path)
{
    if (f->count >= sizeof(f->items) / sizeof(f->items[0]))
        return -1;
    f->items[f->count++] = path;
    return 0;
}

int cli_load_policy(const char *const *files, size_t n, struct moat_policy **out)
{
    struct moat_diags d;
    diags_init(&d);
    int err = policy_load_files(out, files, n, &d);
    for (size_t i = 0; i < d.count; i++)
        fprintf(stderr, "%s\n", d.items[i].text);
    if (d.dropped)
        fprintf(stderr, "... and %zu more errors\n", d.dropped);
    diags_clear(&d);
    if (err == -ENOMEM) {
        fprintf(stderr, "moat: out of memory\n");
        return MOAT_EXIT_ERROR;
    }
    return cli_exit_for_load_error(err);
}

int cli_exit_for_load_error(int err)
{
    /* A file that is not there is a wrong argument, not a failure of moat. */
    if (err == -EINVAL || err == -ENOENT || err == -EISDIR || err == -EACCES)
        return MOAT_EXIT_INVALID;
    return err ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
}

static void print_overview(FILE *out)
{
    fprintf(out, "usage: moat COMMAND [OPTIONS]\n\nMoat container firewall CLI.\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun `moat help COMMAND` or `moat COMMAND --help` for details, and\n"
                 "`moat help exit-codes` for exit statuses.\n");
}

static void print_exit_codes(void)
{
    printf("Exit codes of moat:\n"
           "  %d  success; for questions (compat check), the answer is yes\n"
           "  %d  could not complete: I/O error, out of memory\n"
           "  %d  invalid input or usage: every error was printed\n"
           "  %d  a question was answered no (e.g. not certified)\n",
           MOAT_EXIT_OK, MOAT_EXIT_ERROR, MOAT_EXIT_INVALID, MOAT_EXIT_NEGATIVE);
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stdout);
        return MOAT_EXIT_OK;
    }
    if (strcmp(argv[1], "exit-codes") == 0) {
        print_exit_codes();
        return MOAT_EXIT_OK;
    }
    char name[64];
    snprintf(name, sizeof(name), "%s%s%s", argv[1], argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
    const struct cli_command *cmd = cli_find(name);
    if (!cmd)
        cmd = cli_find(argv[1]);
    if (!cmd) {
        fprintf(stderr, "moat: help: unknown command \"%s\"\n", name);
        return MOAT_EXIT_INVALID;
    }
    cli_print_help(stdout, cmd);
    return MOAT_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stderr);
        return MOAT_EXIT_INVALID;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(1, argv);
    if (argc >= 3) {
        char name[128];
        snprintf(name, sizeof(name), "%s %s", argv[1], argv[2]);
        const struct cli_command *two = cli_find(name);
        if (two)
            return two->run(argc - 2, argv + 2);
    }
    const struct cli_command *cmd = cli_find(argv[1]);
    if (!cmd) {
        for (size_t i = 0; i < NCOMMANDS; i++)
            if (strncmp(commands[i].name, argv[1], strlen(argv[1])) == 0 &&
                commands[i].name[strlen(argv[1])] == ' ') {
                fprintf(stderr, "moat: %s: missing subcommand (try `moat help %s`)\n", argv[1],
                        argv[1]);
                return MOAT_EXIT_INVALID;
            }
        fprintf(stderr, "moat: unknown command \"%s\" (try `moat help`)\n", argv[1]);
        return MOAT_EXIT_INVALID;
    }
    return cmd->run(argc - 1, argv + 1);
}
