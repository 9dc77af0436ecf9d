/*
 * moatd: the Moat node agent, standalone mode (SPEC §9, §10).
 *
 *   moatd --node NAME --policy FILE [--policy FILE]... --inventory FILE
 *         [--alerts FILE] [--netns NAME] [--datapath auto|ebpf] [--check]
 *         [--cleanup] [--verbose]
 *   moatd status --node NAME [-o table|json]
 *
 * Watches its files and applies changes within a second (inotify, also
 * SIGHUP), keeps local workload interfaces attached as they come and go,
 * writes aggregated alerts as JSON lines. SIGTERM/SIGINT stop it and leave
 * enforcement in place unless --cleanup was given.
 */
#include "agent.h"
#include "loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RUN_DIR   "/run/moat"
#define MAX_FILES 16

struct options {
    const char *node, *alerts, *netns, *datapath;
    const char *files[MAX_FILES];
    size_t nfiles;
    bool check, cleanup, verbose, have_inventory, have_policy;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: moatd --node NAME --policy FILE --inventory FILE [--alerts FILE]\n"
                 "             [--netns NAME] [--datapath auto|ebpf] [--check] [--cleanup] "
                 "[--verbose]\n"
                 "       moatd status --node NAME [-o table|json]\n"
                 "       moatd remove --node NAME [--netns NAME]\n\n"
                 "  --node NAME        this node's name (workloads with node: NAME are local)\n"
                 "  --policy FILE      policy file (YAML or JSON); repeatable\n"
                 "  --inventory FILE   workload inventory file; repeatable\n"
                 "  --alerts FILE      append alerts as JSON lines to FILE (default: stdout)\n"
                 "  --netns NAME       join network namespace NAME first (/run/netns/NAME)\n"
                 "  --datapath NAME    auto (default) or ebpf\n"
                 "  --check            validate the files and probe the kernel, then exit\n"
                 "  --cleanup          on exit, detach and remove all kernel state\n"
                 "Exit status: 0 ok, 1 cannot run (kernel, I/O), 2 invalid files or usage.\n");
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

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"node", required_argument, NULL, 'n'},
                                             {"policy", required_argument, NULL, 'p'},
                                             {"inventory", required_argument, NULL, 'i'},
                                             {"alerts", required_argument, NULL, 'a'},
                                             {"netns", required_argument, NULL, 'N'},
                                             {"datapath", required_argument, NULL, 'd'},
                                             {"check", no_argument, NULL, 'c'},
                                             {"cleanup", no_argument, NULL, 'C'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->node = optarg;
            break;
        case 'p':
            o->have_policy = true;
            if (add_file(o, optarg))
                return 2;
            break;
        case 'i':
            o->have_inventory = true;
            if (add_file(o, optarg))
                return 2;
            break;
        case 'a':
            o->alerts = optarg;
            break;
        case 'N':
            o->netns = optarg;
            break;
        case 'd':
            o->datapath = optarg;
            break;
        case 'c':
            o->check = true;
            break;
        case 'C':
            o->cleanup = true;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        case ':':
            fprintf(stderr, "moatd: %s: needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "moatd: %s: unknown option\n", argv[optind - 1]);
            return 2;
        }
    }
    const char *missing = !o->node ? "--node" : !o->have_policy ? "--policy" : NULL;
    if (missing) {
        fprintf(stderr, "moatd: %s: required (moatd --help)\n", missing);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "moatd: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (o->datapath && strcmp(o->datapath, "auto") != 0 && strcmp(o->datapath, "ebpf") != 0) {
        fprintf(stderr,
                "moatd: --datapath: \"%s\" is not auto or ebpf (the iptables backend "
                "is not available yet)\n",
                o->datapath);
        return 2;
    }
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

/* Watches the folders of the files (editors replace files rather than write them). */
static int watch_files(const struct options *o)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    for (size_t i = 0; fd >= 0 && i < o->nfiles; i++) {
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s", o->files[i]);
        inotify_add_watch(fd, dirname(buf), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE);
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

static bool drain_inotify(int fd, const struct options *o)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool ours = false;
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->len && names_our_file(o, ev->name))
                ours = true;
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

/* Returns the exit status. */
static int run_loop(struct moat_agent *a, const struct options *o, int sigfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int ino = watch_files(o);
    int evfd = a->ops->event_fd(a->dp);
    struct epoll_event ev = {.events = EPOLLIN};
    int fds[3] = {sigfd, ino, evfd};
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0) {
            ev.data.fd = fds[i];
            epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        }
    bool stop = false;
    double reload_at = 0; /* a change seen: reload shortly after (files settle) */
    while (!stop) {
        struct epoll_event got[4];
        int n = epoll_wait(ep, got, 4, 100);
        for (int i = 0; i < n; i++) {
            if (got[i].data.fd == sigfd) {
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
            }
        }
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

/* ---------- moatd status ---------- */

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
    if (!st) {
        fprintf(stderr, "moatd status: no moatd running for node %s (%s)\n", node, path);
        return 1;
    }
    /* Counters live in the pinned map, readable whether or not moatd runs. */
    snprintf(path, sizeof(path), "/sys/fs/bpf/moat/%s/moat_counters", node);
    int fd = bpf_obj_get(path);
    json_t *counters = json_object();
    int ncpu = libbpf_num_possible_cpus();
    struct moat_rule_counters *per = calloc((size_t)(ncpu > 0 ? ncpu : 1), sizeof(*per));
    uint32_t key, next;
    bool has = fd >= 0 && per && bpf_map_get_next_key(fd, NULL, &next) == 0;
    while (has) {
        key = next;
        has = bpf_map_get_next_key(fd, &key, &next) == 0;
        if (bpf_map_lookup_elem(fd, &key, per) < 0)
            continue;
        struct moat_rule_counters sum = {0};
        for (int c = 0; c < ncpu; c++) {
            sum.flows += per[c].flows;
            sum.packets += per[c].packets;
            sum.bytes += per[c].bytes;
        }
        char k[16];
        snprintf(k, sizeof(k), "%u", key);
        json_object_set_new(counters, k,
                            json_pack("{s:I,s:I,s:I}", "flows", (json_int_t)sum.flows, "packets",
                                      (json_int_t)sum.packets, "bytes", (json_int_t)sum.bytes));
    }
    free(per);
    if (fd >= 0)
        close(fd);
    json_object_set_new(st, "counters", counters);
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
        printf("interfaces\n");
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(st, "interfaces"), i, v)
            printf("  %-15s %s/%s %s\n", json_string_value(json_object_get(v, "interface")),
                   json_string_value(json_object_get(v, "namespace")),
                   json_string_value(json_object_get(v, "workload")),
                   json_is_true(json_object_get(v, "attached")) ? "enforcing" : "waiting");
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
    }
    json_decref(st);
    return 0;
}

/* moatd remove --node NAME [--netns NS]: detach everywhere and remove pinned state. */
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
    if (netns && join_netns(netns) < 0)
        return 1;
    libbpf_set_print(libbpf_silent);
    char path[512];
    snprintf(path, sizeof(path), "/sys/fs/bpf/moat/%s", node);
    if (access(path, F_OK) != 0) {
        printf("moatd remove: nothing pinned for node %s\n", node);
        return 0;
    }
    struct datapath *dp;
    int err = datapath_ebpf.open(node, NULL, NULL, &dp);
    if (err) {
        fprintf(stderr, "moatd remove: %s\n", strerror(-err));
        return 1;
    }
    datapath_ebpf.close(dp, true);
    printf("moatd remove: node %s: enforcement removed\n", node);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return status_cmd(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "remove") == 0)
        return remove_cmd(argc - 1, argv + 1);
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
        policy_free(p);
        char why[512];
        if (datapath_ebpf.probe(why, sizeof(why)) != 0) {
            fprintf(stderr, "moatd: files ok; the ebpf datapath cannot run here: missing %s\n",
                    why);
            return 1;
        }
        printf("moatd: files ok; the ebpf datapath can run here\n");
        return 0;
    }
    if (o.netns && join_netns(o.netns) < 0)
        return 1;
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
                               .verbose = o.verbose};
    struct moat_agent a;
    int err = agent_start(&a, &cfg, &datapath_ebpf);
    if (err) {
        agent_stop(&a, false);
        return err == -EINVAL ? 2 : 1;
    }
    agent_flush(&a);
    rc = run_loop(&a, &o, sigfd);
    agent_log("info", "stopping%s",
              o.cleanup ? "; removing enforcement (--cleanup)" : "; enforcement stays in place");
    agent_stop(&a, o.cleanup);
    close(sigfd);
    return rc;
}
