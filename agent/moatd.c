/*
 * moatd: the Moat node agent (SPEC §9, §10; docs/moatd.md).
 *
 *   standalone:   moatd --node NAME --policy FILE... --inventory FILE ...
 *   cluster mode: moatd --server URL --cluster ID --join-token T --node NAME
 *                       [--inventory FILE] [--state-dir DIR] ...
 *   moatd status --node NAME [-o table|json]
 *   moatd remove --node NAME [--netns NAME]
 *   moatd quarantine list|release ... (cmd_quarantine.h)
 *
 * One agent per node: the node's lock (nodelock.h) is taken before anything
 * touches the datapath, and held until exit. Watches its files and applies
 * a file once it is complete (closed after writing, or renamed into place;
 * inotify, also SIGHUP); in cluster mode also every policy the server long-poll brings
 * (sync.h). Keeps local workload interfaces attached as they come and go,
 * writes aggregated alerts as JSON lines. SIGTERM/SIGINT stop it and leave
 * enforcement in place unless --cleanup was given.
 */
#include "agent.h"
#include "cmd_quarantine.h"
#include "hold.h"
#include "moat/version.h"
#include "labels.h"
#include "loader.h"
#include "netns.h"
#include "nodelock.h"
#include "pattern.h"
#include "sync.h"
#include "uplink.h"
#include "wsource.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define RUN_DIR       "/run/moat"
#define STATE_DIR     "/var/lib/moat"
#define MAX_FILES     16
#define SPOOL_DEFAULT 10000 /* batches: at 2 a second, over an hour of a busy node */
#define MOATD_VERSION MOAT_VERSION

struct options {
    const char *node, *alerts, *netns, *datapath;
    const char *server, *cluster, *join_token, *state_dir, *ca_file;
    const char *runtime, *runtime_socket, *kubeconfig, *ns_label, *app_label, *default_ns;
    long spool_max;
    const char *files[MAX_FILES];
    size_t nfiles;
    struct hold_config hold;
    bool hold_set, no_hold;
    bool check, cleanup, verbose, have_inventory, have_policy;
};

/*
 * The options: getopt's table, --help and the man page (mk/man.py reads
 * --help) come from this one list.
 */
struct moatd_option {
    const char *name, *arg; /* arg NULL: a flag */
    int id;
    const char *help; /* lines after the first are indented under it */
};

enum {
    OPT_NODE = 'n',
    OPT_POLICY = 'p',
    OPT_INVENTORY = 'i',
    OPT_ALERTS = 'a',
    OPT_NETNS = 'N',
    OPT_DATAPATH = 'd',
    OPT_CHECK = 'c',
    OPT_CLEANUP = 'C',
    OPT_VERBOSE = 'v',
    OPT_SERVER = 'S',
    OPT_CLUSTER = 'K',
    OPT_JOIN = 'J',
    OPT_STATE = 'D',
    OPT_CA = 'A',
    OPT_SPOOL = 'M',
    OPT_HELP = 'h',
    OPT_RUNTIME = 256,
    OPT_SOCKET,
    OPT_KUBECONFIG,
    OPT_NS_LABEL,
    OPT_APP_LABEL,
    OPT_DEFAULT_NS,
    OPT_HOLD_IF,
    OPT_HOLD_BR,
    OPT_NO_HOLD,
    OPT_VERSION,
};

static const struct moatd_option moatd_options[] = {
    {"node", "NAME", OPT_NODE, "this node's name (workloads with node: NAME\nare local)"},
    {"policy", "FILE", OPT_POLICY, "policy file (YAML or JSON); repeatable"},
    {"inventory", "FILE", OPT_INVENTORY, "workload inventory file; repeatable"},
    {"runtime", "NAME", OPT_RUNTIME,
     "where workloads come from: file, podman, docker\n"
     "or kubernetes. Default: file with --inventory,\n"
     "else the engine whose socket exists (podman,\n"
     "then docker), else kubernetes inside a pod"},
    {"runtime-socket", "PATH", OPT_SOCKET,
     "the engine's API socket (default\n/run/podman/podman.sock, /var/run/docker.sock)"},
    {"kubeconfig", "FILE", OPT_KUBECONFIG,
     "kubernetes: a kubeconfig (default: the pod's\nservice account)"},
    {"namespace-label", "KEY", OPT_NS_LABEL,
     "engine: the label naming a container's namespace\n"
     "when it has no io.kubernetes.pod.namespace label"},
    {"app-label", "KEY", OPT_APP_LABEL,
     "engine: the label naming its app when it has\nno app label"},
    {"default-namespace", "NS", OPT_DEFAULT_NS,
     "engine: the namespace of containers no label\nplaces (default: default)"},
    {"hold-interfaces", "PATTERN", OPT_HOLD_IF,
     "hold new veths so named fail-closed until their\n"
     "workload is known; repeatable (default: veth*,\n"
     "and for kubernetes also cali* and lxc*)"},
    {"hold-bridges", "PATTERN", OPT_HOLD_BR,
     "also hold new veths enslaved to bridges so named;\n"
     "repeatable (default: cni-podman*, podman*,\ndocker0, br-*, cni0, cbr0)"},
    {"no-hold", NULL, OPT_NO_HOLD,
     "hold nothing: a new container's traffic is not\njudged until it is identified"},
    {"server", "URL", OPT_SERVER,
     "cluster mode: moat-server's URL\n(http[s]://HOST:PORT), or several replicas'\n"
     "URLs, comma-separated: the next is used\nwhen one cannot be reached"},
    {"cluster", "ID", OPT_CLUSTER,
     "the node's cluster (cluster mode), or the one a\n"
     "standalone runtime puts its workloads in"},
    {"join-token", "T", OPT_JOIN,
     "cluster mode: the cluster's join token (moat\n"
     "cluster join-token ID); not needed once registered"},
    {"state-dir", "DIR", OPT_STATE,
     "cluster mode: credential, last policy, event\nspool (default " STATE_DIR "/NODE)"},
    {"ca-file", "FILE", OPT_CA, "cluster mode: CA certificates for an https server"},
    {"spool-max", "N", OPT_SPOOL,
     "cluster mode: event batches kept while the server\n"
     "is away (default 10000; then the oldest go)"},
    {"alerts", "FILE", OPT_ALERTS, "append alerts as JSON lines to FILE (default:\nstdout)"},
    {"netns", "NAME", OPT_NETNS, "join network namespace NAME first\n(/run/netns/NAME)"},
    {"datapath", "NAME", OPT_DATAPATH,
     "auto (default: ebpf when its probe succeeds, else\n"
     "iptables), ebpf or iptables"},
    {"check", NULL, OPT_CHECK, "validate the files and probe the kernel, then exit"},
    {"cleanup", NULL, OPT_CLEANUP, "on exit, detach and remove all kernel state"},
    {"verbose", NULL, OPT_VERBOSE, "log more (libbpf warnings, discovery details)"},
    {"version", NULL, OPT_VERSION, "print the version and exit"},
    {"help", NULL, OPT_HELP, "print this help and exit"},
};
#define NOPTIONS (sizeof(moatd_options) / sizeof(moatd_options[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: moatd --node NAME --policy FILE... [--inventory FILE]... [--alerts FILE]\n"
            "             [--netns NAME] [--datapath auto|ebpf|iptables] [--check] [--cleanup]\n"
            "             [--verbose]\n"
            "       moatd --node NAME --cluster ID --runtime podman|docker|kubernetes\n"
            "             --policy FILE... [--runtime-socket PATH] [--kubeconfig FILE] ...\n"
            "       moatd --server URL --cluster ID --join-token T --node NAME\n"
            "             [--inventory FILE] [--runtime NAME] [--state-dir DIR] ...\n"
            "       moatd status --node NAME [-o table|json]\n"
            "       moatd remove --node NAME [--netns NAME]\n"
            "       moatd --version | --help\n\n"
            "moatd is Moat's node agent: it enforces the policy on this node's workloads\n"
            "with the kernel datapath and reports alerts (see moatd(8)).\n\nOptions:\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct moatd_option *op = &moatd_options[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", op->name, op->arg ? " " : "",
                 op->arg ? op->arg : "");
        fprintf(out, "  %-25s ", left);
        for (const char *p = op->help; *p; p++) {
            fputc(*p, out);
            if (*p == '\n')
                fprintf(out, "  %-25s ", "");
        }
        fputc('\n', out);
    }
    fprintf(out, "\nExit status: 0 ok, 1 cannot run (kernel, I/O, another moatd runs for the\n"
                 "node), 2 invalid files or usage; status: 3 not running; remove: 1 a moatd\n"
                 "runs for the node, 3 its state belongs to another network namespace.\n");
}

static int add_file(struct options *o, const char *path)
{
    if (o->nfiles >= MAX_FILES) {
        fprintf(stderr, "moatd: too many files (at most %d)\n", MAX_FILES);
        return -1;
    }
    o->files[o->nfiles++] = path;
    return 0;
}

static bool cluster_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._-", *s)))
            return false;
    return true;
}

/* Cluster mode: --server and --cluster together, no --policy, a URL that can work. */
static int check_cluster_args(const struct options *o)
{
    const char *why = NULL, *opt = NULL;
    bool discovering = o->runtime && strcmp(o->runtime, "file") != 0;
    if (!o->server && !discovering)
        opt = "--server", why = "required with --cluster (or a --runtime that discovers)";
    else if (!o->cluster)
        opt = "--cluster", why = o->server ? "required with --server" : "required with --runtime";
    else if (o->server && uplink_servers_check(o->server))
        opt = "--server", why = uplink_servers_check(o->server);
    else if (!cluster_id_ok(o->cluster))
        opt = "--cluster", why = "1-63 letters, digits, '.', '_', '-'";
    else if (o->server && o->have_policy)
        opt = "--policy",
        why = "not with --server: in cluster mode the policy comes from the server";
    else if (o->server && o->check)
        opt = "--check", why = "only in standalone mode";
    if (!why)
        return 0;
    fprintf(stderr, "moatd: %s: %s\n", opt, why);
    return 2;
}

static int add_pattern(const char **list, size_t *n, const char *opt, const char *value)
{
    const char *why = pattern_check(value);
    if (!why && (strlen(value) >= IF_NAMESIZE && !strchr(value, '*')))
        why = "is longer than an interface name";
    if (why) {
        fprintf(stderr, "moatd: --%s: \"%s\" %s\n", opt, value, why);
        return 2;
    }
    if (*n >= HOLD_PATTERNS_MAX) {
        fprintf(stderr, "moatd: --%s: at most %d patterns\n", opt, HOLD_PATTERNS_MAX);
        return 2;
    }
    list[(*n)++] = value;
    return 0;
}

/* Which source, when --runtime is not given: file with --inventory, else the engine there is. */
static const char *detect_runtime(const struct options *o)
{
    if (o->have_inventory || o->check)
        return "file";
    if (access(o->runtime_socket ? o->runtime_socket : "/run/podman/podman.sock", F_OK) == 0)
        return "podman";
    if (access("/var/run/docker.sock", F_OK) == 0)
        return "docker";
    if (getenv("KUBERNETES_SERVICE_HOST"))
        return "kubernetes";
    return "file";
}

/* The defaults of the hold patterns for the runtime. */
static void hold_defaults(struct options *o)
{
    static const char *const bridges[] = {"cni-podman*", "podman*", "docker0",
                                          "br-*",        "cni0",    "cbr0"};
    struct hold_config *h = &o->hold;
    if (!h->nifaces) {
        h->ifaces[h->nifaces++] = "veth*";
        if (strcmp(o->runtime, "kubernetes") == 0) {
            h->ifaces[h->nifaces++] = "cali*";
            h->ifaces[h->nifaces++] = "lxc*";
        }
    }
    for (size_t i = 0; !h->nbridges && i < sizeof(bridges) / sizeof(bridges[0]); i++)
        h->bridges[h->nbridges++] = bridges[i];
}

static int set_option(struct options *o, int c, const char *arg)
{
    switch (c) {
    case OPT_NODE:
        o->node = arg;
        break;
    case OPT_POLICY:
        o->have_policy = true;
        return add_file(o, arg) ? 2 : 0;
    case OPT_INVENTORY:
        o->have_inventory = true;
        return add_file(o, arg) ? 2 : 0;
    case OPT_ALERTS:
        o->alerts = arg;
        break;
    case OPT_NETNS:
        o->netns = arg;
        break;
    case OPT_DATAPATH:
        o->datapath = arg;
        break;
    case OPT_CHECK:
        o->check = true;
        break;
    case OPT_CLEANUP:
        o->cleanup = true;
        break;
    case OPT_VERBOSE:
        o->verbose = true;
        break;
    case OPT_SERVER:
        o->server = arg;
        break;
    case OPT_CLUSTER:
        o->cluster = arg;
        break;
    case OPT_JOIN:
        o->join_token = arg;
        break;
    case OPT_STATE:
        o->state_dir = arg;
        break;
    case OPT_CA:
        o->ca_file = arg;
        break;
    case OPT_SPOOL: {
        char *end;
        o->spool_max = strtol(arg, &end, 10);
        if (*end || end == arg || o->spool_max < 1 || o->spool_max > 10000000) {
            fprintf(stderr, "moatd: --spool-max: \"%s\" is not a number 1..10000000\n", arg);
            return 2;
        }
        break;
    }
    case OPT_RUNTIME:
        if (strcmp(arg, "file") != 0 && !wsource_find(arg)) {
            fprintf(stderr, "moatd: --runtime: \"%s\" is not file, podman, docker or kubernetes\n",
                    arg);
            return 2;
        }
        o->runtime = arg;
        break;
    case OPT_SOCKET:
        o->runtime_socket = arg;
        break;
    case OPT_KUBECONFIG:
        o->kubeconfig = arg;
        break;
    case OPT_NS_LABEL:
    case OPT_APP_LABEL:
        if (label_key_check(arg)) {
            fprintf(stderr, "moatd: --%s: \"%s\" is not a label key: %s\n",
                    c == OPT_NS_LABEL ? "namespace-label" : "app-label", arg, label_key_check(arg));
            return 2;
        }
        *(c == OPT_NS_LABEL ? &o->ns_label : &o->app_label) = arg;
        break;
    case OPT_DEFAULT_NS:
        if (!*arg || strlen(arg) > 64 ||
            arg[strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                            "qrstuvwxyz0123456789._-")]) {
            fprintf(stderr,
                    "moatd: --default-namespace: \"%s\" must be 1-64 characters of "
                    "A-Z a-z 0-9 . _ -\n",
                    arg);
            return 2;
        }
        o->default_ns = arg;
        break;
    case OPT_HOLD_IF:
        o->hold_set = true;
        return add_pattern(o->hold.ifaces, &o->hold.nifaces, "hold-interfaces", arg);
    case OPT_HOLD_BR:
        o->hold_set = true;
        return add_pattern(o->hold.bridges, &o->hold.nbridges, "hold-bridges", arg);
    case OPT_NO_HOLD:
        o->no_hold = true;
        break;
    }
    return 0;
}

/* The discovery options only mean something with their runtime. */
static int check_runtime_args(const struct options *o)
{
    bool engine = strcmp(o->runtime, "podman") == 0 || strcmp(o->runtime, "docker") == 0;
    bool kube = strcmp(o->runtime, "kubernetes") == 0;
    const char *opt = NULL;
    if (o->runtime_socket && !engine)
        opt = "--runtime-socket";
    else if ((o->ns_label || o->app_label || o->default_ns) && !engine)
        opt = o->ns_label    ? "--namespace-label"
              : o->app_label ? "--app-label"
                             : "--default-namespace";
    else if (o->kubeconfig && !kube)
        opt = "--kubeconfig";
    else if ((o->hold_set || o->no_hold) && !engine && !kube)
        opt = o->no_hold ? "--no-hold" : "--hold-interfaces/--hold-bridges";
    if (opt) {
        fprintf(stderr, "moatd: %s: not with --runtime %s\n", opt, o->runtime);
        return 2;
    }
    if (o->no_hold && o->hold_set) {
        fprintf(stderr, "moatd: --no-hold: not with --hold-interfaces or --hold-bridges\n");
        return 2;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    struct option longopts[NOPTIONS + 1];
    for (size_t i = 0; i < NOPTIONS; i++)
        longopts[i] = (struct option){moatd_options[i].name,
                                      moatd_options[i].arg ? required_argument : no_argument, NULL,
                                      moatd_options[i].id};
    longopts[NOPTIONS] = (struct option){NULL, 0, NULL, 0};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            usage(stdout);
            return -1;
        }
        if (c == OPT_VERSION) {
            printf("moatd %s\n", MOATD_VERSION);
            return -1;
        }
        if (c == ':') {
            fprintf(stderr, "moatd: %s: needs a value\n", argv[optind - 1]);
            return 2;
        }
        if (c == '?') {
            fprintf(stderr, "moatd: %s: unknown option\n", argv[optind - 1]);
            return 2;
        }
        int rc = set_option(o, c, optarg);
        if (rc)
            return rc;
    }
    if (!o->runtime)
        o->runtime = detect_runtime(o);
    bool discovering = strcmp(o->runtime, "file") != 0;
    int rc = o->server || o->cluster ? check_cluster_args(o) : 0;
    if (!rc)
        rc = check_runtime_args(o);
    if (rc)
        return rc;
    const char *missing = !o->node                        ? "--node"
                          : !o->server && !o->have_policy ? "--policy"
                          : discovering && !o->cluster    ? "--cluster"
                                                          : NULL;
    if (missing) {
        fprintf(stderr, "moatd: %s: required (moatd --help)\n", missing);
        return 2;
    }
    if (!discovering && !o->server && !o->have_inventory && !o->check) {
        fprintf(stderr, "moatd: no workload source: give --inventory FILE or --runtime "
                        "podman|docker|kubernetes (no engine socket found)\n");
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "moatd: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (o->datapath && strcmp(o->datapath, "auto") != 0 && strcmp(o->datapath, "ebpf") != 0 &&
        strcmp(o->datapath, "iptables") != 0) {
        fprintf(stderr, "moatd: --datapath: \"%s\" is not auto, ebpf or iptables\n", o->datapath);
        return 2;
    }
    if (discovering && !o->no_hold)
        hold_defaults(o);
    return 0;
}

static int join_netns(const char *name)
{
    char path[300];
    snprintf(path, sizeof(path), "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "moatd: --netns %s: %s\n", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static int libbpf_silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    (void)level;
    (void)fmt;
    (void)ap;
    return 0;
}

/*
 * Watches the folders of the files (editors replace files rather than write
 * them). A file is read once it is complete: closed after writing
 * (IN_CLOSE_WRITE) or renamed into place (IN_MOVED_TO). Not on IN_CREATE: a
 * file being written (`gen > policy.yaml`) would be read half-written. A file
 * deleted or moved away is only reported; the policy in force stays until the
 * file is back.
 */
#define WATCH_APPLY  (IN_CLOSE_WRITE | IN_MOVED_TO)
#define WATCH_REPORT (IN_DELETE | IN_MOVED_FROM)

static int watch_files(const struct options *o)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    for (size_t i = 0; fd >= 0 && i < o->nfiles; i++) {
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s", o->files[i]);
        inotify_add_watch(fd, dirname(buf), WATCH_APPLY | WATCH_REPORT);
    }
    return fd;
}

static bool names_our_file(const struct options *o, const char *name)
{
    for (size_t i = 0; i < o->nfiles; i++) {
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s", o->files[i]);
        if (strcmp(basename(buf), name) == 0)
            return true;
    }
    return false;
}

/* True when one of our files was completed (closed after writing, renamed in). */
static bool drain_inotify(int fd, const struct options *o)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool ours = false;
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->len && names_our_file(o, ev->name)) {
                if (ev->mask & WATCH_APPLY)
                    ours = true;
                else if (ev->mask & WATCH_REPORT)
                    agent_log("warning", "file '%s' %s: the policy in force stays until it is back",
                              ev->name, ev->mask & IN_DELETE ? "deleted" : "moved away");
            }
            p += sizeof(*ev) + ev->len;
        }
    return ours;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* True when a workload or a Node document of `p` names node `node`. */
static bool node_named(const struct moat_policy *p, const char *node)
{
    if (policy_find_node(p, node) != MOAT_NONE)
        return true;
    for (size_t i = 0; i < p->nworkloads; i++)
        if (p->workloads[i].node && strcmp(p->workloads[i].node, node) == 0)
            return true;
    return false;
}

/* Says that no document names `node`, after `prefix` ("" or "warning: "). */
static void say_node_unknown(const char *prefix, const char *node)
{
    fprintf(stderr,
            "moatd: %s--node %s: no workload and no Node document names this node: nothing to "
            "enforce on (is the name right?)\n",
            prefix, node);
}

/*
 * The discovered workloads are kept in RUN_DIR/moatd-NODE.discovered.json, so
 * a restarted moatd enforces on them at once even while the engine or the API
 * server does not answer yet (the kernel state it left in place keeps going
 * meanwhile; a policy without those workloads would judge them as strangers).
 */
static void discovered_path(const struct options *o, char *buf, size_t n)
{
    snprintf(buf, n, RUN_DIR "/moatd-%s.discovered.json", o->node);
}

static void save_discovered(const struct options *o, const json_t *docs)
{
    char path[512], tmp[520];
    discovered_path(o, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (json_dump_file(docs, tmp, JSON_COMPACT) == 0)
        rename(tmp, path);
}

/*
 * The workloads to start with: the source's first complete listing (waited
 * for up to START_WAIT_S, new links held meanwhile), else what the last run
 * saved. NULL when there is neither.
 */
#define START_WAIT_S 5.0

static json_t *initial_discovered(const struct options *o, struct wsource *src, struct hold *h)
{
    double until = now_s() + START_WAIT_S;
    int src_fd = wsource_fd(src), hfd = h ? hold_fd(h) : -1;
    while (!wsource_synced(src) && now_s() < until) {
        struct pollfd p[2] = {{.fd = src_fd, .events = POLLIN}, {.fd = hfd, .events = POLLIN}};
        if (poll(p, h ? 2 : 1, 50) > 0 && h && (p[1].revents & POLLIN))
            hold_handle(h);
    }
    if (wsource_synced(src)) {
        json_t *docs = wsource_take(src);
        if (docs)
            save_discovered(o, docs);
        return docs;
    }
    char path[512];
    discovered_path(o, path, sizeof(path));
    json_t *saved = json_load_file(path, 0, NULL);
    if (json_is_array(saved)) {
        agent_log("warning",
                  "%s has not answered within %.0f s: enforcing on the %zu workloads it "
                  "reported last until it does",
                  o->runtime, START_WAIT_S, json_array_size(saved));
        return saved;
    }
    json_decref(saved);
    agent_log("warning", "%s has not answered within %.0f s: starting without its workloads",
              o->runtime, START_WAIT_S);
    return NULL;
}

/* Returns the exit status. */
static int run_loop(struct moat_agent *a, const struct options *o, int sigfd, int ino)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int evfd = a->dp ? a->ops->event_fd(a->dp) : -1;
    int wakefd = a->cfg.sync ? sync_wake_fd(a->cfg.sync) : -1;
    int srcfd = a->cfg.source ? wsource_fd(a->cfg.source) : -1;
    int holdfd = a->cfg.hold ? hold_fd(a->cfg.hold) : -1;
    struct epoll_event ev = {.events = EPOLLIN};
    int fds[6] = {sigfd, ino, evfd, wakefd, srcfd, holdfd};
    for (int i = 0; i < 6; i++)
        if (fds[i] >= 0) {
            ev.data.fd = fds[i];
            epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        }
    bool stop = false;
    double reload_at = 0; /* a change seen: reload shortly after (files settle) */
    while (!stop) {
        struct epoll_event got[6];
        int n = epoll_wait(ep, got, 6, 100);
        /* New links first: a hold must not wait behind a policy compile. */
        for (int i = 0; i < n; i++)
            if (got[i].data.fd == holdfd) {
                hold_handle(a->cfg.hold);
                a->status_dirty = true;
            }
        for (int i = 0; i < n; i++) {
            if (got[i].data.fd == holdfd) {
                continue;
            } else if (got[i].data.fd == srcfd) {
                json_t *docs = wsource_take(a->cfg.source);
                if (docs) {
                    save_discovered(o, docs);
                    agent_set_discovered(a, docs);
                    if (a->cfg.hold)
                        hold_refresh(a->cfg.hold);
                }
            } else if (got[i].data.fd == sigfd) {
                struct signalfd_siginfo si;
                while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
                    if (si.ssi_signo == SIGHUP)
                        reload_at = now_s();
                    else
                        stop = true;
                }
            } else if (got[i].data.fd == ino) {
                if (drain_inotify(ino, o) && reload_at == 0)
                    reload_at = now_s() + 0.05;
            } else if (got[i].data.fd == wakefd) {
                json_t *deltas;
                json_t *policy = sync_take_policy(a->cfg.sync, &deltas);
                if (policy)
                    agent_set_remote(a, policy);
                agent_apply_deltas(a, deltas);
            }
        }
        if (a->dp)
            a->ops->poll(a->dp, 0);
        if (reload_at && now_s() >= reload_at) {
            reload_at = 0;
            agent_reload(a);
        }
        agent_rescan(a);
        agent_flush(a);
    }
    close(ep);
    if (ino >= 0)
        close(ino);
    return 0;
}

/* ---------- the datapath backend ---------- */

static const struct datapath_ops *const backends[] = {&datapath_ebpf, &datapath_iptables};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

/*
 * Probes every backend into `probes` ({"ebpf": "", "iptables": "missing
 * ..."}: "" when it can run) and picks: the one --datapath names, or with
 * `auto` the first that can run (eBPF, else iptables; eBPF when neither can,
 * so its reason is the one reported). `note` says why, for the log.
 */
static const struct datapath_ops *pick_datapath(const char *want, json_t *probes, char *note,
                                                size_t n)
{
    const struct datapath_ops *chosen = NULL;
    char whys[NBACKENDS][512];
    for (size_t i = 0; i < NBACKENDS; i++) {
        whys[i][0] = '\0';
        int err = backends[i]->probe(whys[i], sizeof(whys[i]));
        if (err && !whys[i][0])
            snprintf(whys[i], sizeof(whys[i]), "%s", strerror(-err));
        if (probes)
            json_object_set_new(probes, backends[i]->name, json_string(err ? whys[i] : ""));
        bool named = want && strcmp(want, "auto") != 0 && strcmp(want, backends[i]->name) == 0;
        if (named || (!chosen && !named && (!want || strcmp(want, "auto") == 0) && !err))
            chosen = backends[i];
    }
    if (!chosen)
        chosen = backends[0];
    note[0] = '\0';
    if (!want || strcmp(want, "auto") == 0) {
        size_t len = (size_t)snprintf(note, n, "--datapath auto chose %s", chosen->name);
        for (size_t i = 0; i < NBACKENDS && len < n; i++)
            if (whys[i][0])
                len += (size_t)snprintf(note + len, n - len, "; %s cannot run: missing %s",
                                        backends[i]->name, whys[i]);
    }
    return chosen;
}

/* /run/moat/moatd-NODE.datapath: the backend a node's agent used, for moatd status and remove. */
static void datapath_record_path(const char *node, char *buf, size_t n)
{
    snprintf(buf, n, RUN_DIR "/moatd-%s.datapath", node);
}

static const struct datapath_ops *datapath_recorded(const char *node)
{
    char path[512], name[32] = "";
    datapath_record_path(node, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(name, sizeof(name), f))
            name[0] = '\0';
        fclose(f);
    }
    name[strcspn(name, "\n")] = '\0';
    for (size_t i = 0; i < NBACKENDS; i++)
        if (strcmp(name, backends[i]->name) == 0)
            return backends[i];
    return &datapath_ebpf;
}

static void datapath_record(const char *node, const struct datapath_ops *ops)
{
    char path[512];
    datapath_record_path(node, path, sizeof(path));
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s\n", ops->name);
        fclose(f);
    }
}

/* For moatd quarantine: the backend node `node` ran, in the namespace its state is in. */
static const struct datapath_ops *quarantine_backend(const char *node)
{
    const struct datapath_ops *ops = datapath_recorded(node);
    struct nodelock_info li;
    if (ops == &datapath_iptables && nodelock_probe(node, &li) == 0 && li.netns[0] &&
        join_netns(li.netns) < 0)
        return NULL;
    return ops;
}

/* ---------- moatd status ---------- */

/* Sums a pinned per-CPU array of u64 counters into json {name: value}; NULL if not pinned. */
static json_t *percpu_counts(const char *node, const char *map, uint32_t n,
                             const char *(*name)(uint32_t))
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "/sys/fs/bpf/moat/%s/%s", node, map);
    int fd = bpf_obj_get(path);
    int ncpu = libbpf_num_possible_cpus();
    uint64_t *per = fd >= 0 && ncpu > 0 ? calloc((size_t)ncpu, sizeof(*per)) : NULL;
    json_t *out = per ? json_object() : NULL;
    for (uint32_t i = 0; out && i < n; i++) {
        if (!name(i) || bpf_map_lookup_elem(fd, &i, per) < 0)
            continue;
        uint64_t sum = 0;
        for (int c = 0; c < ncpu; c++)
            sum += per[c];
        json_object_set_new(out, name(i), json_integer((json_int_t)sum));
    }
    free(per);
    if (fd >= 0)
        close(fd);
    return out;
}

/* Drops and event counts read live from the pinned maps (the status file's may be 5 s old). */
static void add_live_stats(json_t *st, const char *node)
{
    json_t *d = percpu_counts(node, "moat_drops", MOAT_DROP_MAX, agent_drop_name);
    json_t *e = percpu_counts(node, "moat_evstats", MOAT_EVS_MAX, agent_event_stat_name);
    if (d)
        json_object_set_new(st, "drops", d);
    if (e)
        json_object_set_new(st, "event_stats", e);
}

static void print_nonzero(const char *title, const json_t *counts)
{
    const char *k;
    json_t *v;
    int shown = 0;
    printf("%-11s", title);
    json_object_foreach((json_t *)counts, k, v) if (json_integer_value(v))
    {
        printf("%s %s %lld", shown++ ? "," : "", k, json_integer_value(v));
    }
    printf("%s\n", shown ? "" : " none");
}

/* Per cluster: the detections the datapath runs, and why an enabled one does not as configured. */
static void print_detections(const json_t *per_cluster)
{
    const char *cl;
    json_t *d;
    json_object_foreach((json_t *)per_cluster, cl, d)
    {
        printf("detections  %s:", cl);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(d, "detections"), i, v)
            printf("%s %s", i ? "," : "", json_string_value(v));
        if (!json_array_size(json_object_get(d, "detections")))
            printf(" none");
        printf("\n");
        const char *name;
        json_object_foreach(json_object_get(d, "detection_gaps"), name, v)
            printf("              %s: %s\n", name, json_string_value(v));
    }
}

static int status_cmd(int argc, char **argv)
{
    const char *node = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
            node = argv[++i];
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            json = strcmp(argv[++i], "json") == 0;
        else {
            fprintf(stderr, "usage: moatd status --node NAME [-o table|json]\n");
            return 2;
        }
    }
    if (!node) {
        fprintf(stderr, "moatd status: --node: required\n");
        return 2;
    }
    char path[512];
    snprintf(path, sizeof(path), RUN_DIR "/moatd-%s.json", node);
    json_error_t jerr;
    json_t *st = json_load_file(path, 0, &jerr);
    /* The status file alone proves nothing (a killed agent leaves it): an
     * agent runs when it holds the node's lock. */
    struct nodelock_info li;
    int err = nodelock_probe(node, &li);
    if (err) {
        fprintf(stderr, "moatd status: node %s: cannot read its lock: %s\n", node, strerror(-err));
        json_decref(st);
        return 1;
    }
    long st_pid = (long)json_integer_value(json_object_get(st, "pid"));
    if (!li.held) {
        char pin[512];
        snprintf(pin, sizeof(pin), "/sys/fs/bpf/moat/%s", node);
        long last = st_pid ? st_pid : li.pid;
        char lastbuf[64] = "no moatd ran for it since boot";
        if (last)
            snprintf(lastbuf, sizeof(lastbuf), "last pid %ld", last);
        /* iptables: its rules stay in the agent's namespace until moatd remove */
        bool ipt_left = datapath_recorded(node) == &datapath_iptables;
        fprintf(stderr, "moatd for node %s is not running (%s; enforcement %s)\n", node, lastbuf,
                ipt_left                 ? "still in place"
                : access(pin, F_OK) == 0 ? "still pinned"
                                         : "not pinned");
        json_decref(st);
        return 3;
    }
    if (!st || (li.pid && st_pid != li.pid)) {
        fprintf(stderr, "moatd for node %s (pid %ld) is starting: no status yet\n", node, li.pid);
        json_decref(st);
        return 1;
    }
    /* Counters live in the kernel, readable whether or not moatd runs: the eBPF
     * backend's in its pinned maps, the iptables one's in the rules of the network
     * namespace the agent runs in (the lock file names it). */
    const struct datapath_ops *ops = datapath_recorded(node);
    bool ipt = ops == &datapath_iptables;
    if (ipt && li.netns[0] && join_netns(li.netns) < 0) {
        json_decref(st);
        return 1;
    }
    json_t *counters = json_object();
    struct datapath_counter *cs = NULL;
    size_t ncs = 0;
    if (ops->counters(node, &cs, &ncs) == 0)
        for (size_t i = 0; counters && i < ncs; i++) {
            char k[16];
            snprintf(k, sizeof(k), "%u", cs[i].rule_id);
            json_object_set_new(counters, k,
                                json_pack("{s:I,s:I,s:I}", "flows", (json_int_t)cs[i].flows,
                                          "packets", (json_int_t)cs[i].packets, "bytes",
                                          (json_int_t)cs[i].bytes));
        }
    free(cs);
    json_object_set_new(st, "counters", counters);
    if (!ipt)
        add_live_stats(st, node); /* iptables: the agent's status file has them */
    if (json) {
        char *s = json_dumps(st, JSON_INDENT(2));
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        printf("node        %s (pid %lld, datapath %s)\n",
               json_string_value(json_object_get(st, "node")),
               json_integer_value(json_object_get(st, "pid")),
               json_string_value(json_object_get(st, "datapath")));
        printf("generation  %lld\n", json_integer_value(json_object_get(st, "generation")));
        json_t *cl = json_object_get(st, "cluster");
        if (cl) {
            json_t *sp = json_object_get(cl, "spool");
            printf("cluster     %s at %s (%s, %s)\n",
                   json_string_value(json_object_get(cl, "cluster")),
                   json_string_value(json_object_get(cl, "server")),
                   json_is_true(json_object_get(cl, "registered")) ? "registered"
                                                                   : "not registered",
                   json_is_true(json_object_get(cl, "reachable")) ? "reachable" : "unreachable");
            printf("revision    %lld in force, %lld received; datapath %s%s%s\n",
                   json_integer_value(json_object_get(st, "revision")),
                   json_integer_value(json_object_get(cl, "revision_received")),
                   json_string_value(json_object_get(st, "state")),
                   *json_string_value(json_object_get(st, "reason")) ? ": " : "",
                   json_string_value(json_object_get(st, "reason")));
            printf("spool       %lld batches waiting, %lld delivered, %lld dropped\n",
                   json_integer_value(json_object_get(sp, "pending")),
                   json_integer_value(json_object_get(sp, "delivered")),
                   json_integer_value(json_object_get(sp, "dropped")));
        }
        json_t *dis = json_object_get(st, "discovery");
        if (dis)
            printf("discovery   %s at %s (%s%s%s)\n",
                   json_string_value(json_object_get(dis, "runtime")),
                   json_string_value(json_object_get(dis, "endpoint")),
                   json_is_true(json_object_get(dis, "connected")) ? "connected" : "not connected",
                   json_is_true(json_object_get(dis, "synced")) ? "" : ", not listed yet",
                   *json_string_value(json_object_get(dis, "last_error")) &&
                           !json_is_true(json_object_get(dis, "connected"))
                       ? "; see the log"
                       : "");
        printf("interfaces\n");
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(st, "interfaces"), i, v)
            printf("  %-15s %s/%s %s  %s\n", json_string_value(json_object_get(v, "interface")),
                   json_string_value(json_object_get(v, "namespace")),
                   json_string_value(json_object_get(v, "workload")),
                   json_is_true(json_object_get(v, "attached")) ? "enforcing" : "waiting",
                   json_string_value(json_object_get(v, "source")));
        json_t *hold = json_object_get(st, "hold");
        json_array_foreach(json_object_get(hold, "held"), i, v)
            printf("  %-15s (not identified yet) held: %lld packets dropped\n",
                   json_string_value(json_object_get(v, "interface")),
                   json_integer_value(json_object_get(v, "packets_dropped")));
        printf("rules (flows / packets / bytes)\n");
        json_array_foreach(json_object_get(st, "rules"), i, v)
        {
            char k[16];
            snprintf(k, sizeof(k), "%lld", json_integer_value(json_object_get(v, "id")));
            json_t *c = json_object_get(counters, k);
            printf("  %5s %-28s %8lld %10lld %12lld\n", k,
                   json_string_value(json_object_get(v, "name")),
                   json_integer_value(json_object_get(c, "flows")),
                   json_integer_value(json_object_get(c, "packets")),
                   json_integer_value(json_object_get(c, "bytes")));
        }
        json_t *d = json_object_get(counters, "0");
        printf("  %5s %-28s %8lld %10lld %12lld\n", "-", "(default action)",
               json_integer_value(json_object_get(d, "flows")),
               json_integer_value(json_object_get(d, "packets")),
               json_integer_value(json_object_get(d, "bytes")));
        print_nonzero("drops", json_object_get(st, "drops"));
        print_nonzero("events", json_object_get(st, "event_stats"));
        print_detections(json_object_get(st, "detections"));
    }
    json_decref(st);
    return 0;
}

/*
 * moatd remove --node NAME [--netns NS]: detach and remove the node's kernel
 * state, status file and lock file. Holds the node's lock meanwhile, so it
 * refuses while an agent runs (that agent would go on believing it enforces).
 * The lock file says in which network namespace the last agent ran:
 *   - this one (or no record): detach there and unpin;
 *   - one that is gone (its interfaces and their filters went with it): unpin;
 *   - another one that exists: leave everything alone (exit 3).
 * A --netns that no longer exists is not joined: only that namespace's
 * leftovers are removed then (`moat lab down` after a half-made lab).
 */
static int remove_cmd(int argc, char **argv)
{
    const char *node = NULL, *netns = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
            node = argv[++i];
        else if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc)
            netns = argv[++i];
        else {
            fprintf(stderr, "usage: moatd remove --node NAME [--netns NAME]\n");
            return 2;
        }
    }
    if (!node) {
        fprintf(stderr, "moatd remove: --node: required\n");
        return 2;
    }
    char path[512], here[256];
    unsigned long long here_ino = 0; /* 0: --netns names a namespace that is gone */
    snprintf(path, sizeof(path), "/run/netns/%s", netns ? netns : "");
    if (netns && access(path, F_OK) != 0) {
        snprintf(here, sizeof(here), "%s", netns);
    } else {
        if (netns && join_netns(netns) < 0)
            return 1;
        nodelock_netns_self(here, sizeof(here), &here_ino);
    }
    struct nodelock *lk;
    struct nodelock_info last;
    int err = nodelock_acquire(node, &lk, &last);
    bool elsewhere = last.netns_ino && last.netns_ino != here_ino;
    char where[300]; /* the kernel's name for an unnamed one: the host's, a container's */
    if (last.netns[0])
        snprintf(where, sizeof(where), "%s", last.netns);
    else
        snprintf(where, sizeof(where), "net:[%llu]", last.netns_ino);
    if (err == -EBUSY && elsewhere) {
        fprintf(stderr,
                "moatd remove: node %s: a moatd (pid %ld) runs for it in network namespace %s: "
                "left alone\n",
                node, last.pid, where);
        return 3;
    }
    if (err == -EBUSY) {
        fprintf(stderr,
                "moatd remove: node %s: moatd (pid %ld) is running: stop it first (SIGTERM "
                "leaves enforcement in place for remove to take away)\n",
                node, last.pid);
        return 1;
    }
    if (err) {
        fprintf(stderr, "moatd remove: node %s: cannot take its lock: %s\n", node, strerror(-err));
        return 1;
    }
    snprintf(path, sizeof(path), "/sys/fs/bpf/moat/%s", node);
    const struct datapath_ops *ops = datapath_recorded(node);
    /* iptables: the rules and sets live in the agent's namespace (none is pinned) */
    bool pinned = ops == &datapath_iptables ? last.exists : access(path, F_OK) == 0;
    /* Detach only where the agent ran, which is here; a namespace that is
     * gone took its interfaces and their filters with it: unpin only. */
    bool detach = here_ino != 0 && !elsewhere;
    if ((elsewhere && !nodelock_netns_gone(&last)) || (!last.exists && !here_ino && pinned)) {
        if (last.exists && last.netns[0])
            fprintf(stderr,
                    "moatd remove: node %s: its last moatd (pid %ld) ran in network namespace "
                    "%s, not here: left alone (moatd remove --node %s --netns %s)\n",
                    node, last.pid, where, node, last.netns);
        else if (last.exists)
            fprintf(stderr,
                    "moatd remove: node %s: its last moatd (pid %ld) ran in network namespace "
                    "%s, not here: left alone\n",
                    node, last.pid, where);
        else
            fprintf(stderr,
                    "moatd remove: node %s: no record of where its moatd ran, and %s is gone: "
                    "left alone\n",
                    node, here);
        if (!last.exists)
            nodelock_unlink(lk); /* the empty one this command made */
        nodelock_release(lk);
        return 3;
    }
    libbpf_set_print(libbpf_silent);
    if (pinned && detach) {
        struct datapath *dp;
        err = ops->open(node, NULL, NULL, &dp);
        if (!err)
            ops->close(dp, true);
    } else if (pinned) {
        err = ops->unpin(node);
    }
    if (err) {
        fprintf(stderr, "moatd remove: node %s: %s\n", node, strerror(-err));
        nodelock_release(lk);
        return 1;
    }
    snprintf(path, sizeof(path), RUN_DIR "/moatd-%s.json", node);
    unlink(path);
    snprintf(path, sizeof(path), RUN_DIR "/moatd-%s.discovered.json", node);
    unlink(path);
    datapath_record_path(node, path, sizeof(path));
    unlink(path);
    nodelock_unlink(lk);
    nodelock_release(lk);
    if (!pinned)
        printf("moatd remove: nothing pinned for node %s\n", node);
    else
        printf("moatd remove: node %s: enforcement removed%s\n", node,
               detach ? "" : " (its network namespace was gone)");
    return 0;
}

/* "NAME VERSION_ID" from os-release, as the kernel-support table names systems. */
static void os_name(char *buf, size_t n)
{
    char name[128] = "", version[64] = "", line[512];
    FILE *f = fopen("/etc/os-release", "r");
    if (!f)
        f = fopen("/usr/lib/os-release", "r");
    while (f && fgets(line, sizeof(line), f)) {
        char *v = strchr(line, '=');
        if (!v)
            continue;
        *v++ = '\0';
        v[strcspn(v, "\n")] = '\0';
        if (*v == '"' && strlen(v) >= 2) {
            v++;
            v[strlen(v) - 1] = '\0';
        }
        if (strcmp(line, "NAME") == 0)
            snprintf(name, sizeof(name), "%s", v);
        else if (strcmp(line, "VERSION_ID") == 0)
            snprintf(version, sizeof(version), "%s", v);
    }
    if (f)
        fclose(f);
    snprintf(buf, n, "%s%s%s", name, *version ? " " : "", version);
}

static int start_sync(const struct options *o, struct sync **out)
{
    char state[4096], os[200];
    struct utsname u;
    if (o->state_dir)
        snprintf(state, sizeof(state), "%s", o->state_dir);
    else
        snprintf(state, sizeof(state), STATE_DIR "/%s", o->node);
    os_name(os, sizeof(os));
    uname(&u);
    struct sync_config sc = {.server = o->server,
                             .cluster = o->cluster,
                             .node = o->node,
                             .join_token = o->join_token,
                             .state_dir = state,
                             .ca_file = o->ca_file,
                             .os = os,
                             .kernel = u.release,
                             .agent_version = MOATD_VERSION,
                             .spool_max = o->spool_max > 0 ? (size_t)o->spool_max : SPOOL_DEFAULT};
    int err = sync_start(&sc, out);
    if (err)
        fprintf(stderr, "moatd: --state-dir %s: %s\n", state, strerror(-err));
    return err;
}

/*
 * moatd hook: an OCI prestart hook (docs/moatd.md, "Protected from the first
 * packet"). The engine runs it with the container's state on stdin
 * ({"pid": N, "id": ...}) once the container's network is set up and before
 * its process starts; it holds the host-side peer of the container's eth0
 * with the fail-closed program, so a container started while moatd is not
 * running is held all the same. Exit 0: held, or nothing to hold (no eth0
 * veth: the host's network, none), or moat enforces there already; 1: it
 * could not be held (the engine then does not start the container:
 * fail-closed); 2: usage or no state.
 */
#define HOOK_STATE_MAX 65536

static int hook_cmd(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: moatd hook  (an OCI prestart hook: the container's state on "
                        "stdin)\n");
        return 2;
    }
    char *buf = malloc(HOOK_STATE_MAX);
    size_t n = buf ? fread(buf, 1, HOOK_STATE_MAX - 1, stdin) : 0;
    if (!buf)
        return 1;
    buf[n] = '\0';
    json_t *st = json_loads(buf, 0, NULL);
    free(buf);
    long pid = (long)json_integer_value(json_object_get(st, "pid"));
    char id[16];
    snprintf(id, sizeof(id), "%.12s",
             json_string_value(json_object_get(st, "id"))
                 ? json_string_value(json_object_get(st, "id"))
                 : "?");
    json_decref(st);
    if (pid <= 0) {
        fprintf(stderr, "moatd hook: the state on stdin has no \"pid\" (is this an OCI hook?)\n");
        return 2;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
    struct stat theirs, ours;
    if (stat(path, &theirs) != 0 || stat("/proc/self/ns/net", &ours) != 0) {
        fprintf(stderr, "moatd hook: container %s: %s: %s\n", id, path, strerror(errno));
        return 1;
    }
    if (theirs.st_ino == ours.st_ino)
        return 0; /* the host's network: no interface of its own */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char ifname[IF_NAMESIZE];
    int err = fd < 0 ? -errno : netns_peer_name(fd, "eth0", -1, ifname);
    if (fd >= 0)
        close(fd);
    if (err == -ENOENT || err == -ENODEV)
        return 0; /* no eth0 whose peer is here */
    libbpf_set_print(libbpf_silent);
    if (!err)
        err = hold_interface(ifname);
    if (err == -EEXIST)
        return 0;
    if (err) {
        fprintf(stderr, "moatd hook: container %s: cannot hold its interface: %s\n", id,
                strerror(-err));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return status_cmd(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "remove") == 0)
        return remove_cmd(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "quarantine") == 0)
        return cmd_quarantine(argc - 1, argv + 1, quarantine_backend);
    if (argc > 1 && strcmp(argv[1], "hook") == 0)
        return hook_cmd(argc - 1, argv + 1);
    struct options o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    libbpf_set_print(o.verbose ? libbpf_quiet : libbpf_silent);
    if (o.check) {
        struct moat_policy *p;
        struct moat_diags d;
        diags_init(&d);
        int err = policy_load_files(&p, o.files, o.nfiles, &d);
        for (size_t i = 0; i < d.count; i++)
            fprintf(stderr, "%s\n", d.items[i].text);
        diags_clear(&d);
        if (err)
            return err == -ENOMEM ? 1 : 2;
        bool known = node_named(p, o.node);
        policy_free(p);
        /* a warning only: scripts run --check as "can this kernel enforce?" for any name */
        if (!known)
            say_node_unknown("warning: ", o.node);
        json_t *probes = json_object();
        char note[1200];
        const struct datapath_ops *ops = pick_datapath(o.datapath, probes, note, sizeof(note));
        const char *why = json_string_value(json_object_get(probes, ops->name));
        int rc_check = why && *why ? 1 : 0;
        for (size_t i = 0; i < NBACKENDS; i++) {
            const char *w = json_string_value(json_object_get(probes, backends[i]->name));
            if (w && *w)
                fprintf(stderr, "moatd: the %s datapath cannot run here: missing %s\n",
                        backends[i]->name, w);
        }
        if (rc_check)
            fprintf(stderr, "moatd: files ok; the %s datapath cannot run here\n", ops->name);
        else
            printf("moatd: files ok; the %s datapath can run here\n", ops->name);
        json_decref(probes);
        return rc_check;
    }
    /* One agent per node, before anything touches the datapath or the server. */
    struct nodelock *lock;
    struct nodelock_info holder;
    int err = nodelock_acquire(o.node, &lock, &holder);
    if (err == -EBUSY) {
        fprintf(stderr, "moatd: node %s: another moatd is running (pid %ld)\n", o.node, holder.pid);
        return 1;
    }
    if (err) {
        char lp[512];
        nodelock_path(o.node, lp, sizeof(lp));
        fprintf(stderr, "moatd: node %s: cannot lock %s: %s\n", o.node, lp, strerror(-err));
        return 1;
    }
    nodelock_record(lock, NULL);
    struct sync *sy = NULL;
    if (o.server) {
        /* Before --netns: the threads stay where the server is reachable. */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (start_sync(&o, &sy) != 0) {
            nodelock_release(lock);
            return 1;
        }
    }
    struct wsource *src = NULL;
    if (strcmp(o.runtime, "file") != 0) {
        /* Before --netns too: the engine's socket and the API server are here. */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        struct wsource_config wc = {.runtime = o.runtime,
                                    .socket = o.runtime_socket,
                                    .kubeconfig = o.kubeconfig,
                                    .cluster = o.cluster,
                                    .node = o.node,
                                    .netns = o.netns,
                                    .namespace_label = o.ns_label,
                                    .app_label = o.app_label,
                                    .default_namespace = o.default_ns,
                                    .verbose = o.verbose};
        err = wsource_start(wsource_find(o.runtime), &wc, &src);
        if (err) {
            fprintf(stderr, "moatd: --runtime %s: cannot start: %s\n", o.runtime, strerror(-err));
            sync_stop(sy);
            nodelock_release(lock);
            return 1;
        }
    }
    if (o.netns && join_netns(o.netns) < 0) {
        wsource_stop(src);
        sync_stop(sy);
        nodelock_release(lock);
        return 1;
    }
    struct hold *hold = NULL;
    if (src && !o.no_hold) {
        err = hold_open(&o.hold, &hold);
        if (err)
            agent_log("error",
                      "cannot watch for new interfaces (%s): a container is judged only once "
                      "it is identified",
                      strerror(-err));
    }
    if (o.netns)
        nodelock_record(lock, o.netns); /* where it enforces, for moatd remove */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    mkdir(RUN_DIR, 0755);
    char status_path[512];
    snprintf(status_path, sizeof(status_path), RUN_DIR "/moatd-%s.json", o.node);
    struct agent_config cfg = {.node = o.node,
                               .files = o.files,
                               .nfiles = o.nfiles,
                               .alerts_path = o.alerts,
                               .status_path = status_path,
                               .verbose = o.verbose,
                               .cluster = o.server ? o.cluster : NULL,
                               .sync = sy,
                               .source = src,
                               .hold = hold,
                               .discovered = src ? initial_discovered(&o, src, hold) : NULL};
    json_t *probes = json_object();
    char note[1200];
    const struct datapath_ops *ops = pick_datapath(o.datapath, probes, note, sizeof(note));
    if (*note)
        agent_log("info", "%s", note);
    cfg.probes = probes;
    datapath_record(o.node, ops);
    struct moat_agent a;
    /* The files are watched before they are first read: a change while the agent
     * starts (attaching takes a while) is applied, not missed. */
    int ino = watch_files(&o);
    err = agent_start(&a, &cfg, ops);
    if (err) {
        if (ino >= 0)
            close(ino);
        agent_stop(&a, false);
        hold_close(hold);
        wsource_stop(src);
        sync_stop(sy);
        json_decref(probes);
        nodelock_release(lock);
        return err == -EINVAL ? 2 : 1;
    }
    if (!o.server && !src && a.policy && !node_named(a.policy, o.node))
        say_node_unknown("warning: ", o.node);
    agent_flush(&a);
    rc = run_loop(&a, &o, sigfd, ino);
    agent_log("info", "stopping%s",
              o.cleanup ? "; removing enforcement (--cleanup)" : "; enforcement stays in place");
    agent_stop(&a, o.cleanup);
    hold_close(hold);
    wsource_stop(src);
    sync_stop(sy); /* after agent_stop: its last alert events are spooled */
    json_decref(probes);
    close(sigfd);
    nodelock_release(lock); /* last: the next agent may start now */
    return rc;
}
