/*
 * moat: the command-line tool. This file holds the command table (the one
 * place that names commands, their usage and help), dispatch and the helpers
 * every command shares.
 */
#include "cli.h"
#include "loader.h"
#include "moat/version.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int cmd_help(int argc, char **argv);

/* Help text the commands over moat-server's API share. */
#define SERVER_OPTS                                                                                \
    "      --server URL       moat-server URL (else $MOAT_SERVER, else `server =` in\n"            \
    "                         ~/.config/moat/config); several replicas' URLs,\n"                   \
    "                         comma-separated: the first that can be reached\n"                    \
    "      --token T          bearer token (else $MOAT_TOKEN, else `token =` in the file)\n"       \
    "  -o, --output FORMAT    table (default), json or yaml\n"
#define API_EXIT "Exit status: see `moat help exit-codes`.\n"

static const struct cli_command commands[] = {
    {"explain",
     "[-f POLICY... [-i INVENTORY...] | --cluster C] --from WORKLOAD|IP|host --to WORKLOAD|IP "
     "--port N --proto tcp|udp|icmp [--node NAME] [-o table|json]",
     "Print the decision Moat takes for one flow, without touching the kernel.",
     "  -f, --file FILE        policy file (YAML or JSON); repeatable. Without -f, the\n"
     "                         policy is the server's: its clusters, objects, rules and\n"
     "                         the workloads agents reported (node addresses excepted)\n"
     "  -i, --inventory FILE   workload inventory file (with -f); repeatable\n"
     "      --cluster C        without -f: judge with cluster C only (default: every\n"
     "                         cluster of the server)\n"
     "      --server URL, --token T   without -f: as for the API commands\n"
     "      --from ENDPOINT    source: workload name (NAME, NAMESPACE/NAME or\n"
     "                         CLUSTER/NAMESPACE/NAME), an IP address, or `host`\n"
     "      --to ENDPOINT      destination, as --from\n"
     "      --port N           destination port (required for tcp and udp)\n"
     "      --proto P          tcp, udp, icmp or an IP protocol number (default tcp)\n"
     "      --node NAME        judge as node NAME's agent does (its addresses are `host`);\n"
     "                         without it, ingress is judged on the destination\n"
     "                         workload's node and egress on the source's\n"
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
    {"compat check",
     "--os \"NAME VERSION\" --kernel RELEASE | --file FILE [-o table|json] [--table FILE]",
     "Say whether an OS and kernel are certified, and which datapath would run, offline (SPEC 5).",
     "      --os \"NAME VERSION\"  operating system, e.g. \"CentOS 7.9-2009\"\n"
     "      --kernel RELEASE     kernel release (uname -r)\n"
     "      --file FILE          a fleet report: one node per line, OS|KERNEL, or JSON\n"
     "                           objects {\"os\", \"kernel\", \"name\"} (an array or one per\n"
     "                           line; - reads stdin): per node certified, the datapath\n"
     "                           backend that would run and what is missing, then a\n"
     "                           summary; exit 1 when a node could not enforce at all\n"
     "  -o, --output FORMAT      table (default) or json\n"
     "      --table FILE         kernel-support table to use; by default\n"
     "                           $MOAT_DATA_DIR/kernel-support.tsv, then the data/\n"
     "                           folder beside the program, then /usr/share/moat\n"
     "Exit status: 0 certified, 3 not certified, 2 invalid usage or table, 1 I/O error.\n",
     cmd_compat_check},
    {"lab up", "FILE [--dual-stack] [--inventory OUT] [--name LAB]",
     "Create a lab of nodes and workloads in network namespaces from an inventory file.",
     "  FILE                   lab file: Workload (and optional Node) documents (SPEC 10);\n"
     "                         IPv4 addresses are assigned where `ips` has none; IPv6 is\n"
     "                         configured for the IPv6 addresses the file gives\n"
     "      --dual-stack       also give every node an IPv6 /64 and every workload\n"
     "                         without one an IPv6 address (fd00:0:0:K::/64)\n"
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
    {"lab status", "[--name LAB] [-o table|json]", "List a lab's underlay, nodes and workloads.",
     "      --name LAB         lab name (default: moat)\n"
     "  -o, --output FORMAT    table (default) or json\n",
     cmd_lab_status},
    {"cluster list",
     "[--name N] [--defense on|off] [--mode M] [--default-action A] [--limit N] [--offset N]",
     "List the server's clusters.",
     "      --name, --defense, --mode, --default-action   filters (exact values)\n"
     "      --limit N, --offset N   paging (the server's default limit is 100)\n" SERVER_OPTS
         API_EXIT,
     cmd_cluster_list},
    {"cluster get", "CLUSTER", "Show one cluster.", SERVER_OPTS API_EXIT, cmd_cluster_get},
    {"cluster create", "-f FILE", "Create a cluster (and its system rules) from a file.",
     "  -f, --file FILE        one Cluster document, YAML or JSON (`-` is stdin)\n" SERVER_OPTS
         API_EXIT,
     cmd_cluster_create},
    {"cluster update",
     "CLUSTER [-f FILE | --defense on|off --mode protect|monitor "
     "--default-action block|alert|allow --description D]",
     "Replace a cluster from a file, or change the fields given.",
     "  -f, --file FILE        the whole new Cluster document (replaces it)\n"
     "      --defense on|off   defense switch\n"
     "      --mode M           protect or monitor\n"
     "      --default-action A block, alert or allow\n"
     "      --description D    description\n" SERVER_OPTS API_EXIT,
     cmd_cluster_update},
    {"cluster delete", "CLUSTER...", "Delete clusters and their rules, in the order given.",
     "Stops at the first cluster the server refuses (409 while objects are restricted to "
     "it).\n" SERVER_OPTS API_EXIT,
     cmd_cluster_delete},
    {"cluster defense", "on|off CLUSTER... | on|off --all",
     "Switch defense on or off for one or more clusters, or all of them.",
     "One request (POST /clusters/batch): the server switches all of the clusters or\n"
     "none of them (an unknown cluster: exit 5, nothing switched).\n"
     "      --all              every cluster the server has\n" SERVER_OPTS API_EXIT,
     cmd_cluster_defense},
    {"cluster join-token",
     "CLUSTER [--ttl DURATION] [--uses N] [--description D] | CLUSTER --list | "
     "CLUSTER --revoke ID",
     "Print a new join token for the cluster's agents; list or revoke join tokens.",
     "      --ttl DURATION     how long the token works: 90s, 30m, 1h, 7d (default 24h,\n"
     "                         at most 365d)\n"
     "      --uses N           how many nodes may register with it (default 0: any number\n"
     "                         until it expires)\n"
     "      --description D    what it is for (shown by --list)\n"
     "      --list             the cluster's join tokens: id, expiry, uses (never the token)\n"
     "      --revoke ID        the token stops working (nodes that joined keep their\n"
     "                         credentials)\n"
     "The server keeps only a hash of each token: it is printed once. A node name that is\n"
     "registered cannot be registered again until `moat node delete` removes the node.\n"
     "The table form prints the token alone; json/yaml print the whole answer.\n"
     "Needs an admin token.\n" SERVER_OPTS API_EXIT,
     cmd_cluster_join_token},
    {"object list",
     "[--cluster C] [--name N] [--namespace NS] [--app A] [--image REF] [--label K=V] "
     "[--limit N] [--offset N]",
     "List the server's network objects.",
     "      --cluster, --name, --namespace, --app   filters (exact values)\n"
     "      --image REF        objects one of whose image patterns matches the image REF\n"
     "                         (as the policy matches workloads: nginx:1.27 matches nginx:*)\n"
     "      --label K=V        objects whose labels include K=V\n"
     "      --limit N, --offset N   paging (the server's default limit is 100)\n" SERVER_OPTS
         API_EXIT,
     cmd_object_list},
    {"object get", "ID|NAME", "Show one network object.", SERVER_OPTS API_EXIT, cmd_object_get},
    {"object create", "-f FILE", "Create a network object from a file.",
     "  -f, --file FILE        one NetworkObject document, YAML or JSON (`-` is "
     "stdin)\n" SERVER_OPTS API_EXIT,
     cmd_object_create},
    {"object update", "ID|NAME -f FILE", "Replace a network object from a file.",
     "  -f, --file FILE        the whole new NetworkObject document\n" SERVER_OPTS API_EXIT,
     cmd_object_update},
    {"object delete", "ID|NAME...", "Delete network objects: all of them or none.",
     "One request (POST /objects/batch). An unknown object (exit 5) or one that rules\n"
     "use (exit 6, naming the rules) and nothing is deleted.\n" SERVER_OPTS API_EXIT,
     cmd_object_delete},
    {"rule list",
     "--cluster C [--id ID[,ID...]] [--name N] [--enabled true|false] [--action A] "
     "[--source OBJ] [--destination OBJ] [--port N] [--protocol P] "
     "[--type custom|system|suggested] [--limit N] [--offset N]",
     "List a cluster's defense rules.",
     "      --cluster C        the cluster (required)\n"
     "      --id, --name, --enabled, --action, --protocol, --type   filters\n"
     "      --source OBJ, --destination OBJ   rules naming that object (name or id)\n"
     "      --port N           rules whose destination ports contain N (no ports: all)\n"
     "      --limit N, --offset N   paging (the server's default limit is 100)\n" SERVER_OPTS
         API_EXIT,
     cmd_rule_list},
    {"rule get", "--cluster C ID|NAME", "Show one defense rule.",
     "      --cluster C        the cluster (required)\n" SERVER_OPTS API_EXIT, cmd_rule_get},
    {"rule create", "--cluster C -f FILE", "Create a defense rule from a file.",
     "      --cluster C        the cluster (required)\n"
     "  -f, --file FILE        one DefenseRule document, YAML or JSON (`-` is "
     "stdin)\n" SERVER_OPTS API_EXIT,
     cmd_rule_create},
    {"rule update",
     "--cluster C ID|NAME [-f FILE | --enabled true|false --priority N --action A "
     "--description D]",
     "Replace a defense rule from a file, or change the fields given.",
     "      --cluster C        the cluster (required)\n"
     "  -f, --file FILE        the whole new DefenseRule document (replaces it)\n"
     "      --enabled B, --priority N, --action A, --description D   fields to change\n"
     "System rules take only --enabled and --description.\n" SERVER_OPTS API_EXIT,
     cmd_rule_update},
    {"rule delete", "--cluster C ID|NAME...", "Delete defense rules, in the order given.",
     "      --cluster C        the cluster (required)\n"
     "System rules cannot be deleted (409): disable them.\n" SERVER_OPTS API_EXIT,
     cmd_rule_delete},
    {"rule enable", "--cluster C ID|NAME...", "Enable defense rules: all of them or none.",
     "      --cluster C        the cluster (required)\n" SERVER_OPTS API_EXIT, cmd_rule_enable},
    {"rule disable", "--cluster C ID|NAME...", "Disable defense rules: all of them or none.",
     "      --cluster C        the cluster (required)\n" SERVER_OPTS API_EXIT, cmd_rule_disable},
    {"node list", "[--cluster C] [--name N] [--limit N] [--offset N]",
     "List the nodes agents registered, with their datapath state.",
     "      --cluster, --name  filters (exact values)\n"
     "      --limit N, --offset N   paging (the server's default limit is 100)\n"
     "STATE is enforcing, unsupported, not_installed, outdated or offline (SPEC 4);\n"
     "REASON says why a node is not enforcing.\n" SERVER_OPTS API_EXIT,
     cmd_node_list},
    {"node get", "ID|NAME [--cluster C]", "Show one node.",
     "      --cluster C        the cluster, when several have a node of that name\n"
     "Shows state and reason, OS, kernel, certified, agent version, last heartbeat and\n"
     "workload count; json/yaml print the server's whole document.\n" SERVER_OPTS API_EXIT,
     cmd_node_get},
    {"node delete", "ID|NAME [--cluster C]",
     "Delete a node: revoke its credential and forget its workloads.",
     "      --cluster C        the cluster, when several have a node of that name\n"
     "The node's agent is refused from then on (it must register again with a join\n"
     "token), other nodes stop counting its workloads, and its name may be registered\n"
     "again. Needs an admin token.\n" SERVER_OPTS API_EXIT,
     cmd_node_delete},
    {"workload list",
     "[--cluster C] [--node N] [--namespace NS] [--name N] [--limit N] [--offset N]",
     "List the workloads agents reported, and where each came from.",
     "      --cluster, --node, --namespace, --name   filters (exact values)\n"
     "      --limit N, --offset N   paging (the server's default limit is 100)\n"
     "SOURCE says where the node's agent found the workload: RUNTIME:ID for a\n"
     "container (podman:ID, docker:ID) or a pod (kubernetes:UID), file:PATH for\n"
     "an inventory file.\n" SERVER_OPTS API_EXIT,
     cmd_workload_list},
    {"alert list",
     "[--cluster C] [--node N] [--since T] [--until T] [--kind K] [--action A] [--status S] "
     "[--workload NS/NAME] [--limit N] [--offset N]",
     "List alerts, newest first (SPEC 7).",
     "      --cluster C, --node N   where the alert was raised\n"
     "      --since T, --until T    last seen in this window: YYYY-MM-DDTHH:MM:SSZ (UTC),\n"
     "                              a day YYYY-MM-DD, or an age such as 30m, 24h, 7d\n"
     "      --kind K           policy, brute_force, port_scan, dns_hijack, spoofing,\n"
     "                         threat_intel\n"
     "      --action A         the applied action: block or alert\n"
     "      --status S         unhandled, handled or ignored\n"
     "      --workload NS/NAME source or destination workload\n"
     "      --limit N, --offset N   paging (the server's default limit is 100)\n" SERVER_OPTS
         API_EXIT,
     cmd_alert_list},
    {"alert get", "ID", "Show one alert.", SERVER_OPTS API_EXIT, cmd_alert_get},
    {"alert status", "ID... handled|ignored|unhandled", "Change the status of alerts.",
     "One request per alert, in the order given; stops at the first failure (the alerts\n"
     "changed before it stay changed). Needs an admin token.\n" SERVER_OPTS API_EXIT,
     cmd_alert_status},
    {"alerts", "[--follow] [--limit N] [alert list filters]",
     "Print the newest alerts; with --follow, keep printing new and changed ones.",
     "      --follow           poll the server every second and print each alert that is\n"
     "                         new or changed (last seen, attempts or status) until\n"
     "                         interrupted (SIGINT or SIGTERM: exit 0)\n"
     "      --limit N          how many of the newest alerts to print first (1..100,\n"
     "                         default 20)\n"
     "      --cluster, --node, --since, --until, --kind, --action, --status, --workload\n"
     "                         filters, as for `moat alert list`\n"
     "The table form prints one line per alert, oldest first; -o json prints the list,\n"
     "or with --follow one JSON object per line; -o yaml one document per alert.\n" SERVER_OPTS
         API_EXIT,
     cmd_alerts},
    {"status", "[CLUSTER]", "Show the protection status of every cluster, or of one (SPEC 8).",
     "Risks (alerts) in the last 24 hours, 30 and 180 days; unprotected clusters of the\n"
     "total; rules total, enabled and disabled; alerts of the last 7 days per cluster;\n"
     "the top rules, sources, destinations and ports of the last 30 days by attempts;\n"
     "the newest alerts. -o json prints the server's document as it is.\n" SERVER_OPTS API_EXIT,
     cmd_status},
    {"apply", "-f FILE [FILE...]",
     "Make the server hold the clusters, objects and rules of policy files.",
     "  -f, --file FILE        policy files (SPEC 10; - reads stdin): their syntax and\n"
     "                         fields are checked here (file:line in every error), then\n"
     "                         all of them go in one request (POST /api/v1/apply)\n"
     "The server validates them with its state and applies all of them or none. It\n"
     "creates what is missing; for what exists, it merges in the fields the file gives\n"
     "(fields the file leaves out are kept). Prints created, configured or unchanged per\n"
     "document: clusters, then objects, then rules (matched by name; rules by cluster\n"
     "and name). Objects are named, not numbered, in rules. Workload and Node documents\n"
     "are ignored with a note. Any error: exit 2 (4 for a viewer token), nothing\n"
     "changed; errors the server finds are printed at their document's file and line.\n"
     "At most 20,000 documents (8 MiB) per run.\n" SERVER_OPTS API_EXIT,
     cmd_apply},
    {"delete", "-f FILE [FILE...]", "Delete from the server what policy files name.",
     "  -f, --file FILE        policy files, checked first as for apply\n"
     "Deletes rules, then objects, then clusters named by the files (deleting a cluster\n"
     "deletes its rules too), in one request: all of them or none (exit 6, nothing\n"
     "deleted, when a remaining rule uses an object). Prints deleted or absent per\n"
     "document. System rules are kept.\n" SERVER_OPTS API_EXIT,
     cmd_delete},
    {"audit list",
     "[--actor A] [--action A] [--kind K] [--cluster C] [--name N] [--since T] [--until T] "
     "[--limit N] [--offset N]",
     "List the server's audit records, newest first: every change it accepted.",
     "      --actor A          token:ID (an admin token), node:CLUSTER/NODE,\n"
     "                         join-token:ID (a registration) or local\n"
     "      --action A         create, update, delete, register, report, revoke\n"
     "      --kind K           cluster, object, rule, node, workloads, join_token, alert,\n"
     "                         token\n"
     "      --cluster C, --name N   the record changed\n"
     "      --since T, --until T    as for `moat alert list`\n"
     "      --limit N, --offset N   paging (the server's default limit is 100)\n"
     "json/yaml print each record whole, with the record before and after.\n" SERVER_OPTS API_EXIT,
     cmd_audit_list},
    {"quarantine list", "[--cluster C]",
     "List the sources in quarantine (brute force, port scans; SPEC 6), one row per address.",
     "      --cluster C        one cluster (default: every cluster)\n"
     "A quarantine starts in a node's kernel when a detection with action block fires;\n"
     "the node reports it and the server holds it at every node of the cluster. NODES\n"
     "are the nodes where it started; SINCE the earliest start, UNTIL the latest end.\n"
     "Standalone nodes: `moatd quarantine list --node N`.\n" SERVER_OPTS API_EXIT,
     cmd_quarantine_list},
    {"quarantine release", "ADDRESS --cluster C",
     "End the quarantine of ADDRESS on every node of the cluster.",
     "      --cluster C        the cluster (required)\n"
     "Every node of the cluster lets the address connect again within the propagation\n"
     "bound (1 s); established flows it had were cut when the quarantine started.\n"
     "Standalone nodes: `moatd quarantine release ADDRESS --node N`.\n" SERVER_OPTS API_EXIT,
     cmd_quarantine_release},
    {"threat-intel set", "--cluster C -f FILE",
     "Replace the cluster's threat-intelligence list (SPEC 6) with FILE.",
     "      --cluster C        the cluster (required)\n"
     "  -f, --file FILE        the list: one address or CIDR prefix a line, an optional\n"
     "                         label after it, `#` comments; - reads stdin; at most\n"
     "                         128 MiB\n"
     "The server checks the whole list (errors name their line) and stores nothing when\n"
     "it does not parse; agents fetch it by version and match new connections from\n"
     "listed sources (alert or block as the cluster's detections say).\n" SERVER_OPTS API_EXIT,
     cmd_threats_set},
    {"threat-intel get", "--cluster C",
     "Print the cluster's threat list as the server keeps it (one `PREFIX LABEL` a line).",
     "      --cluster C        the cluster (required)\n" SERVER_OPTS API_EXIT, cmd_threats_get},
    {"threat-intel delete", "--cluster C", "Remove the cluster's threat list.",
     "      --cluster C        the cluster (required)\n" SERVER_OPTS API_EXIT, cmd_threats_delete},
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
        fprintf(out, "  %-18s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun `moat help COMMAND` or `moat COMMAND --help` for details, and\n"
                 "`moat help exit-codes` for exit statuses.\n");
}

static void print_exit_codes(void)
{
    printf("Exit codes of moat:\n"
           "  %d  success; for questions (compat check), the answer is yes\n"
           "  %d  could not complete: I/O error, out of memory, server unreachable\n"
           "  %d  invalid input or usage: every error was printed\n"
           "  %d  a question was answered no (e.g. not certified)\n"
           "  %d  the server refused the token (HTTP 401) or its role (403: writes need admin)\n"
           "  %d  the server has no such cluster, object or rule (HTTP 404)\n"
           "  %d  the server refused a conflicting change (HTTP 409, e.g. an object in use)\n"
           "Commands that talk to the server exit 1 when it cannot be reached (the URL is\n"
           "printed) and 2 when it rejects the input (HTTP 400: each field and message).\n",
           MOAT_EXIT_OK, MOAT_EXIT_ERROR, MOAT_EXIT_INVALID, MOAT_EXIT_NEGATIVE, MOAT_EXIT_DENIED,
           MOAT_EXIT_NOT_FOUND, MOAT_EXIT_CONFLICT);
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
    if (strcmp(argv[1], "--version") == 0) {
        printf("moat %s\n", MOAT_VERSION);
        return MOAT_EXIT_OK;
    }
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
