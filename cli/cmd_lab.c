/*
 * cmd_lab: `moat lab up|exec|down|status` — a disposable lab of nodes and
 * workloads in network namespaces (docs/lab.md, SPEC §9–§10).
 *
 * `up` loads the lab file, works out the topology without touching the
 * kernel (lab_plan), checks that the completed inventory reads back, and
 * only then claims the lab's state file and creates namespaces (lab_net),
 * recording each one in the state file (lab_state) as soon as it exists.
 * Any failure removes what was made. `down` removes exactly the namespaces
 * the state file lists, and first what moatd agents of the lab's nodes left
 * (with `moatd remove`, which refuses while an agent runs, so `down` stops
 * then and kills nothing); `exec` enters a namespace with setns(2) and runs a
 * command; `status` prints the state file and whether each namespace exists.
 */
#include "cli.h"
#include "emit.h"
#include "lab_net.h"
#include "lab_plan.h"
#include "lab_state.h"
#include "loader.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LAB_DEFAULT_NAME "moat"

/* Set by SIGINT/SIGTERM/SIGHUP while `lab up` works: stop and undo. */
static volatile sig_atomic_t up_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    up_interrupted = 1;
}

struct lab_args {
    const char *name;
    const char *inventory;
    const char *node;
    bool dual_stack;
    enum cli_format format;
    int first_arg; /* index of the first positional argument */
};

/* Common option parsing; `allowed` lists the long options the command takes. */
static int parse_args(const struct cli_command *self, int argc, char **argv, const char *allowed,
                      struct lab_args *a)
{
    static const struct option longopts[] = {{"name", required_argument, NULL, 'N'},
                                             {"inventory", required_argument, NULL, 'i'},
                                             {"node", required_argument, NULL, 'n'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"dual-stack", no_argument, NULL, 'D'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    a->name = LAB_DEFAULT_NAME;
    optind = 1;
    opterr = 0;
    int c, idx = -1;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, &idx)) != -1) {
        const char *opt = argv[optind - 1];
        if (c != 'h' && c != ':' && c != '?' && !strchr(allowed, c))
            return cli_usage_error(self, "%s: unknown option", opt);
        switch (c) {
        case 'N':
            if (!lab_name_ok(optarg))
                return cli_usage_error(self,
                                       "--name: \"%s\" is not a lab name (1-%d of A-Z a-z "
                                       "0-9 _)",
                                       optarg, LAB_NAME_MAX);
            a->name = optarg;
            break;
        case 'i':
            a->inventory = optarg;
            break;
        case 'n':
            a->node = optarg;
            break;
        case 'D':
            a->dual_stack = true;
            break;
        case 'o':
            if (cli_parse_format(optarg, &a->format) < 0)
                return cli_usage_error(self, "-o: \"%s\" is not table or json", optarg);
            break;
        case 'h':
            cli_print_help(stdout, self);
            return -1;
        case ':':
            return cli_usage_error(self, "%s: needs a value", opt);
        default:
            return cli_usage_error(self, "%s: unknown option", opt);
        }
    }
    a->first_arg = optind;
    return 0;
}

/* Exit code of a handler after parse_args returned `rc` (-1: help printed). */
static int parsed(int rc)
{
    return rc < 0 ? MOAT_EXIT_OK : rc;
}

static int need_root(const char *cmd)
{
    if (geteuid() == 0)
        return 0;
    fprintf(stderr, "moat: %s: needs root (network namespaces); run it as root\n", cmd);
    return MOAT_EXIT_ERROR;
}

/*
 * Loads lab `name`'s state. Returns MOAT_EXIT_OK with *out, or prints why not
 * and returns the exit code (unknown lab: invalid input).
 */
static int load_lab(const char *cmd, const char *name, struct lab **out)
{
    char why[512] = "";
    int err = lab_state_load(name, out, why, sizeof(why));
    if (!err)
        return MOAT_EXIT_OK;
    if (err == -ENOENT) {
        fprintf(stderr, "moat: %s: no lab named \"%s\" (see `moat lab up`)\n", cmd, name);
        return MOAT_EXIT_INVALID;
    }
    if (err == -ENODATA)
        fprintf(stderr,
                "moat: %s: lab \"%s\" is being created, or its creation was cut short "
                "(`moat lab down --name %s` removes it)\n",
                cmd, name, name);
    else if (err == -EINVAL)
        fprintf(stderr, "moat: %s: damaged state: %s\n", cmd, why);
    else
        fprintf(stderr, "moat: %s: cannot read the state of lab \"%s\": %s\n", cmd, name,
                strerror(-err));
    return MOAT_EXIT_ERROR;
}

/* ---------- lab up ---------- */

/* The completed inventory: nodes in lab order, then workloads in file order. */
static char *inventory_text(const struct moat_policy *p, const struct lab *lab, int *err)
{
    struct emit_buf b;
    emit_buf_init(&b, 0);
    *err = emit_str(&b, "# Lab inventory written by `moat lab up`.\n");
    for (size_t i = 0; !*err && i < lab->nnodes; i++) {
        uint32_t nd = policy_find_node(p, lab->nodes[i].name);
        if (nd != MOAT_NONE)
            *err = emit_node(&b, &p->nodes[nd]);
    }
    for (size_t i = 0; !*err && i < p->nworkloads; i++)
        *err = emit_workload(&b, &p->workloads[i]);
    char *text = *err ? NULL : emit_buf_take(&b);
    if (!*err && !text)
        *err = -ENOMEM;
    emit_buf_free(&b);
    return text;
}

/* The inventory must read back as what was planned (it is what moatd will read). */
static int check_inventory(const char *text, const struct moat_policy *p)
{
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *q = NULL;
    int err = policy_load_text(&q, text, strlen(text), "inventory", &d);
    if (!err && (q->nworkloads != p->nworkloads || q->nnodes != p->nnodes))
        err = -EINVAL;
    for (size_t i = 0; i < d.count; i++)
        fprintf(stderr, "moat: lab up: internal error: the inventory does not read back: %s\n",
                d.items[i].text);
    diags_clear(&d);
    policy_free(q);
    return err;
}

static int write_file_atomic(const char *path, const char *text)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    int err = 0;
    FILE *f = fopen(tmp, "w");
    if (!f)
        err = -errno;
    if (!err && fputs(text, f) == EOF)
        err = errno ? -errno : -EIO;
    if (f && fclose(f) != 0 && !err)
        err = errno ? -errno : -EIO;
    if (!err && rename(tmp, path) < 0)
        err = -errno;
    if (err && f)
        unlink(tmp);
    free(tmp);
    return err;
}

static int save_state(const struct lab *lab)
{
    int err = lab_state_save(lab);
    if (err)
        fprintf(stderr, "moat: lab up: cannot write the state of lab \"%s\": %s\n", lab->name,
                strerror(-err));
    return err;
}

/*
 * Removes every namespace `up` created (workloads, nodes, then the underlay),
 * then the state file.
 */
static int lab_teardown(struct lab *lab)
{
    int failed = 0;
    for (size_t i = lab->nworkloads; i-- > 0;)
        if (lab->workloads[i].created) {
            if (lab_net_delete(lab->workloads[i].netns) < 0)
                failed++;
            else
                lab->workloads[i].created = false;
        }
    for (size_t i = lab->nnodes; i-- > 0;)
        if (lab->nodes[i].created) {
            if (lab_net_delete(lab->nodes[i].netns) < 0)
                failed++;
            else
                lab->nodes[i].created = false;
        }
    if (lab->underlay.created) {
        if (lab_net_delete(lab->underlay.netns) < 0)
            failed++;
        else
            lab->underlay.created = false;
    }
    if (failed) {
        /* Keep the state file so that `lab down` can try again. */
        lab_state_save(lab);
        return -EIO;
    }
    int err = lab_state_remove(lab->name);
    if (err)
        fprintf(stderr, "moat: lab: cannot remove the state of lab \"%s\": %s\n", lab->name,
                strerror(-err));
    return err;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/*
 * Creates every namespace of the lab — the underlay, the nodes (each linked
 * to the underlay), the workloads — and on failure removes them. 0 or -errno.
 */
static int lab_build(struct lab *lab)
{
    int err = 0;
    for (size_t i = 0; i < 1 + lab->nnodes + lab->nworkloads && !err; i++) {
        if (up_interrupted) {
            fprintf(stderr, "moat: lab up: interrupted\n");
            err = -EINTR;
        } else if (i == 0) {
            err = lab_net_underlay_up(lab, save_state);
        } else if (i <= lab->nnodes) {
            err = lab_net_node_up(lab, i - 1, save_state);
        } else {
            err = lab_net_workload_up(lab, i - 1 - lab->nnodes, save_state);
        }
    }
    if (!err && up_interrupted)
        err = -EINTR;
    if (err) {
        fprintf(stderr, "moat: lab up: removing what lab \"%s\" made so far\n", lab->name);
        if (lab_teardown(lab) < 0)
            fprintf(stderr,
                    "moat: lab up: some namespaces remain; run `moat lab down --name "
                    "%s`\n",
                    lab->name);
    }
    return err;
}

/* Claims the name and checks that no namespace of the plan exists yet. */
static int lab_claim(const struct lab *lab)
{
    int err = lab_state_claim(lab->name);
    if (err == -EEXIST) {
        fprintf(stderr,
                "moat: lab up: lab \"%s\" already exists (`moat lab status --name %s`; "
                "`moat lab down --name %s` removes it)\n",
                lab->name, lab->name, lab->name);
        return MOAT_EXIT_ERROR;
    }
    if (err) {
        char path[256];
        lab_state_path(lab->name, path, sizeof(path));
        fprintf(stderr, "moat: lab up: cannot create %s: %s\n", path, strerror(-err));
        return MOAT_EXIT_ERROR;
    }
    int clash = 0;
    for (size_t i = 0; i < 1 + lab->nnodes + lab->nworkloads; i++) {
        const char *ns = i == 0             ? lab->underlay.netns
                         : i <= lab->nnodes ? lab->nodes[i - 1].netns
                                            : lab->workloads[i - 1 - lab->nnodes].netns;
        if (lab_netns_exists(ns)) {
            fprintf(stderr,
                    "moat: lab up: network namespace \"%s\" already exists (left over? "
                    "`ip netns delete %s`)\n",
                    ns, ns);
            clash++;
        }
    }
    if (clash || save_state(lab) < 0) {
        lab_state_remove(lab->name);
        return MOAT_EXIT_ERROR;
    }
    return MOAT_EXIT_OK;
}

static int up_plan(const char *file, const struct lab_args *a, struct moat_policy **p,
                   struct lab **lab, char **inventory)
{
    int rc = cli_load_policy(&file, 1, p);
    if (rc != MOAT_EXIT_OK)
        return rc;
    struct moat_diags d;
    diags_init(&d);
    int err = lab_plan(*p, a->name, a->dual_stack ? LAB_PLAN_DUAL_STACK : 0, lab, &d);
    for (size_t i = 0; i < d.count; i++)
        fprintf(stderr, "%s\n", d.items[i].text);
    if (d.dropped)
        fprintf(stderr, "... and %zu more errors\n", d.dropped);
    diags_clear(&d);
    if (err == -EINVAL)
        return MOAT_EXIT_INVALID;
    if (!err)
        *inventory = inventory_text(*p, *lab, &err);
    if (!err)
        err = check_inventory(*inventory, *p);
    if (err == -ENOMEM)
        fprintf(stderr, "moat: out of memory\n");
    else if (err)
        fprintf(stderr, "moat: lab up: cannot write the inventory: %s\n", strerror(-err));
    return err ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
}

static int write_inventory(const char *out, const char *text)
{
    int err = 0;
    if (out && strcmp(out, "-") != 0) {
        err = write_file_atomic(out, text);
    } else {
        if (fputs(text, stdout) == EOF || fflush(stdout) == EOF)
            err = -EIO;
    }
    if (err)
        fprintf(stderr, "moat: lab up: cannot write the inventory to %s: %s\n",
                out ? out : "stdout", strerror(-err));
    return err;
}

int cmd_lab_up(int argc, char **argv)
{
    const struct cli_command *self = cli_find("lab up");
    struct lab_args a;
    int rc = parse_args(self, argc, argv, "NiD", &a);
    if (rc)
        return parsed(rc);
    if (a.first_arg >= argc)
        return cli_usage_error(self, "FILE: the lab file is required");
    if (a.first_arg + 1 < argc)
        return cli_usage_error(self, "unexpected argument \"%s\"", argv[a.first_arg + 1]);
    struct moat_policy *p = NULL;
    struct lab *lab = NULL;
    char *inventory = NULL;
    rc = up_plan(argv[a.first_arg], &a, &p, &lab, &inventory);
    if (rc == MOAT_EXIT_OK)
        rc = need_root("lab up");
    if (rc == MOAT_EXIT_OK && lab_has_ipv6(lab) && !lab_kernel_has_ipv6()) {
        fprintf(stderr,
                "moat: lab up: the lab has IPv6 addresses%s, but this kernel has IPv6 "
                "disabled (ipv6.disable=1?)\n",
                a.dual_stack ? " (--dual-stack)" : "");
        rc = MOAT_EXIT_ERROR;
    }
    if (rc == MOAT_EXIT_OK)
        rc = lab_claim(lab);
    if (rc == MOAT_EXIT_OK) {
        catch_signals();
        if (lab_build(lab) < 0) {
            rc = MOAT_EXIT_ERROR;
        } else if (write_inventory(a.inventory, inventory) < 0) {
            lab_teardown(lab);
            rc = MOAT_EXIT_ERROR;
        } else {
            fprintf(stderr, "moat: lab \"%s\" is up: %zu node%s, %zu workload%s%s\n", lab->name,
                    lab->nnodes, lab->nnodes == 1 ? "" : "s", lab->nworkloads,
                    lab->nworkloads == 1 ? "" : "s", lab_has_ipv6(lab) ? ", IPv4 and IPv6" : "");
        }
    }
    free(inventory);
    lab_free(lab);
    policy_free(p);
    return rc;
}

/* ---------- lab exec ---------- */

/* Matches NAME, NAMESPACE/NAME or CLUSTER/NAMESPACE/NAME. */
static bool workload_named(const struct lab_workload *w, const char *text)
{
    char full[512];
    snprintf(full, sizeof(full), "%s/%s/%s", w->cluster, w->namespace, w->name);
    size_t fl = strlen(full), tl = strlen(text);
    return tl <= fl && strcmp(full + fl - tl, text) == 0 && (tl == fl || full[fl - tl - 1] == '/');
}

/* The namespace to enter, or NULL (the problem printed, *rc set). */
static const char *exec_target(const struct lab *lab, const char *node, const char *workload,
                               int *rc)
{
    *rc = MOAT_EXIT_INVALID;
    if (node) {
        for (size_t i = 0; i < lab->nnodes; i++)
            if (strcmp(lab->nodes[i].name, node) == 0)
                return lab->nodes[i].netns;
        fprintf(stderr, "moat: lab exec: lab \"%s\" has no node \"%s\"\n", lab->name, node);
        return NULL;
    }
    const struct lab_workload *found = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < lab->nworkloads; i++)
        if (workload_named(&lab->workloads[i], workload)) {
            found = found ? found : &lab->workloads[i];
            matches++;
        }
    if (matches == 1)
        return found->netns;
    if (!matches) {
        fprintf(stderr,
                "moat: lab exec: lab \"%s\" has no workload \"%s\" (`moat lab status "
                "--name %s` lists them)\n",
                lab->name, workload, lab->name);
        return NULL;
    }
    fprintf(stderr,
            "moat: lab exec: \"%s\" names %zu workloads; write NAMESPACE/NAME or "
            "CLUSTER/NAMESPACE/NAME:\n",
            workload, matches);
    for (size_t i = 0; i < lab->nworkloads; i++)
        if (workload_named(&lab->workloads[i], workload))
            fprintf(stderr, "  %s/%s/%s\n", lab->workloads[i].cluster, lab->workloads[i].namespace,
                    lab->workloads[i].name);
    return NULL;
}

int cmd_lab_exec(int argc, char **argv)
{
    const struct cli_command *self = cli_find("lab exec");
    /* Options end at `--`; everything after it is the command, untouched. */
    int dd = 1;
    while (dd < argc && strcmp(argv[dd], "--") != 0)
        dd++;
    struct lab_args a;
    int rc = parse_args(self, dd, argv, "Nn", &a);
    if (rc)
        return parsed(rc);
    int npos = dd - a.first_arg;
    if (a.node && npos > 0)
        return cli_usage_error(self, "give a WORKLOAD or --node, not both");
    if (!a.node && npos != 1)
        return cli_usage_error(
            self, npos ? "unexpected argument \"%s\"" : "WORKLOAD (or --node NODE) is required%s",
            npos ? argv[a.first_arg + 1] : "");
    if (dd >= argc || dd + 1 >= argc)
        return cli_usage_error(self, "the command to run goes after `--`");
    struct lab *lab = NULL;
    rc = load_lab("lab exec", a.name, &lab);
    if (rc)
        return rc;
    const char *netns = exec_target(lab, a.node, a.node ? NULL : argv[a.first_arg], &rc);
    int err = netns ? lab_netns_enter(netns) : 0;
    if (netns && err) {
        if (err == -EPERM)
            fprintf(stderr, "moat: lab exec: needs root (setns); run it as root\n");
        else
            fprintf(stderr, "moat: lab exec: cannot enter namespace \"%s\": %s%s\n", netns,
                    strerror(-err), err == -ENOENT ? " (lab damaged? `moat lab down`)" : "");
        rc = MOAT_EXIT_ERROR;
    }
    lab_free(lab);
    if (!netns || err)
        return rc;
    char **cmd = argv + dd + 1;
    fflush(NULL);
    execvp(cmd[0], cmd);
    err = errno;
    fprintf(stderr, "moat: lab exec: %s: %s\n", cmd[0], strerror(err));
    return err == ENOENT ? 127 : 126;
}

/* ---------- lab down ---------- */

/* The moatd beside this moat (in build/rel, /usr/bin, ...), else the one in PATH. */
static void moatd_path(char *buf, size_t n)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len > 0) {
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, n, "%s/moatd", self);
            if (access(buf, X_OK) == 0)
                return;
        }
    }
    snprintf(buf, n, "moatd");
}

/* What a moatd of node `name` leaves in /run/moat and /sys/fs/bpf (docs/moatd.md). */
static bool agent_left_something(const char *name)
{
    const char *fmt[] = {"/sys/fs/bpf/moat/%s", "/run/moat/moatd-%s.json",
                         "/run/moat/moatd-%s.lock"};
    for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), fmt[i], name);
        if (access(path, F_OK) == 0)
            return true;
    }
    return false;
}

/*
 * Removes what moatd agents of the lab's nodes left (pinned maps, status and
 * lock files) with `moatd remove --node NODE --netns NETNS`, before the
 * namespaces go. moatd leaves alone what belongs to an agent of the same node
 * name in another namespace (exit 3). Returns -EBUSY when moatd refused
 * (exit 1: an agent still runs for a node of the lab, and moatd said which
 * pid; nothing is killed) or failed, else 0.
 */
static int remove_agents_state(const struct lab *lab)
{
    char moatd[4200];
    moatd_path(moatd, sizeof(moatd));
    int busy = 0;
    for (size_t i = 0; i < lab->nnodes; i++) {
        const struct lab_node *nd = &lab->nodes[i];
        if (!agent_left_something(nd->name))
            continue;
        const char *argv[] = {moatd, "remove", "--node", nd->name, "--netns", nd->netns, NULL};
        int rc = lab_run(argv);
        if (rc == 1) {
            fprintf(stderr,
                    "moat: lab down: node %s: moatd's state not removed (above: stop its moatd "
                    "first); the lab stays as it is\n",
                    nd->name);
            busy++;
        } else if (rc < 0) {
            fprintf(stderr,
                    "moat: lab down: node %s: cannot run %s: %s; what moatd left stays "
                    "(moatd remove --node %s)\n",
                    nd->name, moatd, strerror(-rc), nd->name);
        } else if (rc != 0 && rc != 3) {
            fprintf(stderr,
                    "moat: lab down: node %s: `%s remove --node %s --netns %s` exited %d; what "
                    "moatd left stays\n",
                    nd->name, moatd, nd->name, nd->netns, rc);
        }
    }
    return busy ? -EBUSY : 0;
}

/* Without a readable state: the lab's namespaces are those named `mlab-LAB-*`. */
static int down_by_prefix(const char *name)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "mlab-%s-", name);
    DIR *dir = opendir(LAB_NETNS_DIR);
    int failed = 0, removed = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (lab_net_delete(e->d_name) < 0)
            failed++;
        else
            removed++;
    }
    if (dir)
        closedir(dir);
    fprintf(stderr, "moat: lab down: removed %d namespace%s named %s*\n", removed,
            removed == 1 ? "" : "s", prefix);
    return failed ? -EIO : 0;
}

int cmd_lab_down(int argc, char **argv)
{
    const struct cli_command *self = cli_find("lab down");
    struct lab_args a;
    int rc = parse_args(self, argc, argv, "N", &a);
    if (rc)
        return parsed(rc);
    if (a.first_arg < argc)
        return cli_usage_error(self, "unexpected argument \"%s\"", argv[a.first_arg]);
    struct lab *lab = NULL;
    char why[512] = "";
    int err = lab_state_load(a.name, &lab, why, sizeof(why));
    if (err == -ENOENT) {
        fprintf(stderr, "moat: lab down: no lab named \"%s\"; nothing to do\n", a.name);
        return MOAT_EXIT_OK;
    }
    if ((rc = need_root("lab down")) != 0) {
        lab_free(lab);
        return rc;
    }
    if (err == -ENODATA || err == -EINVAL) {
        if (err == -EINVAL)
            fprintf(stderr, "moat: lab down: damaged state: %s\n", why);
        err = down_by_prefix(a.name);
        if (!err)
            err = lab_state_remove(a.name);
        return err ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
    }
    if (err) {
        fprintf(stderr, "moat: lab down: cannot read the state of lab \"%s\": %s\n", a.name,
                strerror(-err));
        return MOAT_EXIT_ERROR;
    }
    if (remove_agents_state(lab) == -EBUSY) {
        lab_free(lab);
        return MOAT_EXIT_ERROR;
    }
    size_t n = lab->underlay.created;
    for (size_t i = 0; i < lab->nnodes; i++)
        n += lab->nodes[i].created;
    for (size_t i = 0; i < lab->nworkloads; i++)
        n += lab->workloads[i].created;
    err = lab_teardown(lab);
    if (!err)
        fprintf(stderr, "moat: lab \"%s\" is down (%zu namespace%s removed)\n", a.name, n,
                n == 1 ? "" : "s");
    else
        fprintf(stderr, "moat: lab down: some namespaces of lab \"%s\" remain\n", a.name);
    lab_free(lab);
    return err ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
}

/* ---------- lab status ---------- */

#define CELL_MAX 128

struct table {
    size_t cols, rows;
    char (*cells)[CELL_MAX]; /* rows * cols; row 0 is the header */
};

static void table_print(const struct table *t)
{
    size_t width[8] = {0};
    for (size_t r = 0; r < t->rows; r++)
        for (size_t c = 0; c < t->cols; c++) {
            size_t len = strlen(t->cells[r * t->cols + c]);
            width[c] = len > width[c] ? len : width[c];
        }
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t c = 0; c + 1 < t->cols; c++)
            printf("%-*s  ", (int)width[c], t->cells[r * t->cols + c]);
        printf("%s\n", t->cells[r * t->cols + t->cols - 1]);
    }
}

static void set_cell(struct table *t, size_t r, size_t c, const char *s)
{
    snprintf(t->cells[r * t->cols + c], CELL_MAX, "%s", s ? s : "-");
}

static void addrs_text(const struct moat_addr *a, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        char text[MOAT_ADDR_STRLEN];
        addr_format(&a[i], text, sizeof(text));
        int w = snprintf(buf + used, len - used, "%s%s", i ? "," : "", text);
        used += w > 0 ? (size_t)w : 0;
    }
}

static void status_underlay(const struct lab *lab)
{
    const struct lab_underlay *u = &lab->underlay;
    if (!u->netns) {
        printf("underlay: none (the lab was made before labs had one)\n\n");
        return;
    }
    char cells[2 * 4][CELL_MAX];
    struct table t = {4, 2, cells};
    const char *subnets = lab_has_ipv6(lab) ? LAB_UL_TEXT "," LAB_UL6_TEXT : LAB_UL_TEXT;
    const char *row[] = {
        "UNDERLAY", "BRIDGE",      "SUBNET", "PRESENT",
        u->netns,   LAB_UL_BRIDGE, subnets,  lab_netns_exists(u->netns) ? "yes" : "no"};
    for (size_t c = 0; c < 8; c++)
        set_cell(&t, c / 4, c % 4, row[c]);
    table_print(&t);
    printf("\n");
}

static int status_table(const struct lab *lab)
{
    struct table nodes = {7, lab->nnodes + 1, NULL}, wls = {7, lab->nworkloads + 1, NULL};
    nodes.cells = calloc(nodes.cols * nodes.rows, CELL_MAX);
    wls.cells = calloc(wls.cols * wls.rows, CELL_MAX);
    if (!nodes.cells || !wls.cells) {
        free(nodes.cells);
        free(wls.cells);
        return MOAT_EXIT_ERROR;
    }
    const char *nh[] = {"NODE", "CLUSTER", "ADDRESS", "SUBNET", "UNDERLAY", "NAMESPACE", "PRESENT"};
    for (size_t c = 0; c < 7; c++)
        set_cell(&nodes, 0, c, nh[c]);
    for (size_t i = 0; i < lab->nnodes; i++) {
        const struct lab_node *n = &lab->nodes[i];
        char gw[2 * MOAT_ADDR_STRLEN], sub[2 * MOAT_ADDR_STRLEN + 16],
            ul[2 * MOAT_ADDR_STRLEN + 16] = "-";
        addr_format(&n->gateway, gw, sizeof(gw));
        prefix_format(&n->subnet, sub, sizeof(sub));
        if (n->subnet6.len) { /* IPv4,IPv6 as in the workloads' ADDRESSES */
            strcat(gw, ",");
            addr_format(&n->gateway6, gw + strlen(gw), sizeof(gw) - strlen(gw));
            strcat(sub, ",");
            prefix_format(&n->subnet6, sub + strlen(sub), sizeof(sub) - strlen(sub));
        }
        if (lab->underlay.netns) {
            char port[LAB_IFNAME_MAX + 1];
            addr_format(&n->ul_addr, ul, sizeof(ul));
            if (lab_has_ipv6(lab)) {
                strcat(ul, ",");
                addr_format(&n->ul_addr6, ul + strlen(ul), sizeof(ul) - strlen(ul));
            }
            lab_ul_port(i, port, sizeof(port));
            snprintf(ul + strlen(ul), sizeof(ul) - strlen(ul), " (%s)", port);
        }
        const char *row[] = {
            n->name, n->cluster, gw, sub, ul, n->netns, lab_netns_exists(n->netns) ? "yes" : "no"};
        for (size_t c = 0; c < 7; c++)
            set_cell(&nodes, i + 1, c, row[c]);
    }
    const char *wh[] = {"WORKLOAD",  "CLUSTER",   "NODE",   "ADDRESSES",
                        "INTERFACE", "NAMESPACE", "PRESENT"};
    for (size_t c = 0; c < 7; c++)
        set_cell(&wls, 0, c, wh[c]);
    for (size_t i = 0; i < lab->nworkloads; i++) {
        const struct lab_workload *w = &lab->workloads[i];
        char name[CELL_MAX], ips[CELL_MAX];
        snprintf(name, sizeof(name), "%s/%s", w->namespace, w->name);
        addrs_text(w->addrs, w->naddrs, ips, sizeof(ips));
        const char *row[] = {name,
                             w->cluster,
                             lab->nodes[w->node].name,
                             ips,
                             w->ifname,
                             w->netns,
                             lab_netns_exists(w->netns) ? "yes" : "no"};
        for (size_t c = 0; c < 7; c++)
            set_cell(&wls, i + 1, c, row[c]);
    }
    printf("lab %s: %zu node%s, %zu workload%s\n\n", lab->name, lab->nnodes,
           lab->nnodes == 1 ? "" : "s", lab->nworkloads, lab->nworkloads == 1 ? "" : "s");
    status_underlay(lab);
    table_print(&nodes);
    printf("\n");
    table_print(&wls);
    free(nodes.cells);
    free(wls.cells);
    return MOAT_EXIT_OK;
}

static int status_json(const struct lab *lab)
{
    json_t *j = lab_to_json(lab, false);
    if (j && lab->underlay.netns)
        json_object_set_new(json_object_get(j, "underlay"), "present",
                            json_boolean(lab_netns_exists(lab->underlay.netns)));
    for (size_t i = 0; j && i < lab->nnodes; i++)
        json_object_set_new(json_array_get(json_object_get(j, "nodes"), i), "present",
                            json_boolean(lab_netns_exists(lab->nodes[i].netns)));
    for (size_t i = 0; j && i < lab->nworkloads; i++)
        json_object_set_new(json_array_get(json_object_get(j, "workloads"), i), "present",
                            json_boolean(lab_netns_exists(lab->workloads[i].netns)));
    return cli_print_json(j);
}

int cmd_lab_status(int argc, char **argv)
{
    const struct cli_command *self = cli_find("lab status");
    struct lab_args a;
    int rc = parse_args(self, argc, argv, "No", &a);
    if (rc)
        return parsed(rc);
    if (a.first_arg < argc)
        return cli_usage_error(self, "unexpected argument \"%s\"", argv[a.first_arg]);
    struct lab *lab = NULL;
    rc = load_lab("lab status", a.name, &lab);
    if (rc)
        return rc;
    rc = a.format == CLI_FORMAT_JSON ? status_json(lab) : status_table(lab);
    lab_free(lab);
    return rc;
}
