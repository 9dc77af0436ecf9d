/* cmd_quarantine: moatd quarantine list|release (see cmd_quarantine.h). */
#include "cmd_quarantine.h"
#include "datapath.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATUS_FILE "/run/moat/moatd-%s.json"

static const char *reason_name(uint32_t r)
{
    r &= MOAT_Q_REASON_MASK;
    return r == MOAT_Q_PORT_SCAN ? "port_scan" : r == MOAT_Q_BRUTE_FORCE ? "brute_force" : "other";
}

/* The cluster names of the node's policy, by index, from its status file (NULL if none). */
static json_t *cluster_names(const char *node)
{
    char path[512];
    snprintf(path, sizeof(path), STATUS_FILE, node);
    json_t *st = json_load_file(path, 0, NULL);
    json_t *names = json_incref(json_object_get(st, "clusters"));
    json_decref(st);
    return json_is_array(names) ? names : (json_decref(names), NULL);
}

static const char *cluster_name(json_t *names, uint32_t i, char *buf, size_t n)
{
    const char *s = json_string_value(json_array_get(names, i));
    if (s)
        return s;
    snprintf(buf, n, "#%u", i);
    return buf;
}

/* CLOCK_MONOTONIC nanoseconds to wall-clock `YYYY-MM-DDTHH:MM:SSZ`. */
static void wall_text(uint64_t mono_ns, char *buf, size_t n)
{
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    int64_t delta = (int64_t)mono_ns - ((int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec);
    time_t t = real.tv_sec + (time_t)(delta / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int list(const struct datapath_ops *ops, const char *node, const char *cluster, bool json)
{
    struct datapath_quarantine *q = NULL;
    size_t n = 0;
    int err = ops->quarantines(node, &q, &n);
    if (err) {
        fprintf(stderr, "moatd: quarantine list: node %s: %s\n", node,
                err == -ENOENT ? "no datapath state (never enforced here, or removed)"
                               : strerror(-err));
        return 1;
    }
    json_t *names = cluster_names(node);
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-16s %-40s %-12s %-21s %-21s %s\n", "CLUSTER", "ADDRESS", "REASON", "SINCE",
               "UNTIL", "DROPPED");
    for (size_t i = 0; i < n; i++) {
        char addr[MOAT_ADDR_STRLEN], since[32], until[32], cbuf[16];
        addr_format(&q[i].addr, addr, sizeof(addr));
        wall_text(q[i].since_ns, since, sizeof(since));
        wall_text(q[i].until_ns, until, sizeof(until));
        const char *cl = cluster_name(names, q[i].cluster, cbuf, sizeof(cbuf));
        if (cluster && strcmp(cluster, cl) != 0)
            continue;
        if (json)
            json_array_append_new(
                arr,
                json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s}", "cluster", cl, "address", addr,
                          "reason", reason_name(q[i].reason), "since", since, "until", until,
                          "seconds", (json_int_t)q[i].secs, "dropped", (json_int_t)q[i].dropped,
                          "origin", q[i].reason & MOAT_Q_FROM_SERVER ? "server" : "node"));
        else
            printf("%-16s %-40s %-12s %-21s %-21s %llu\n", cl, addr, reason_name(q[i].reason),
                   since, until, (unsigned long long)q[i].dropped);
    }
    if (json) {
        char *s = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", s ? s : "[]");
        free(s);
    }
    json_decref(arr);
    json_decref(names);
    free(q);
    return 0;
}

static int release(const struct datapath_ops *ops, const char *node, const char *addr_text,
                   const char *cluster)
{
    struct moat_addr a;
    if (addr_parse(addr_text, &a) < 0) {
        fprintf(stderr, "moatd: quarantine release: \"%s\" is not an IP address\n", addr_text);
        return 2;
    }
    struct datapath_quarantine *q = NULL;
    size_t n = 0;
    int err = ops->quarantines(node, &q, &n);
    if (err) {
        fprintf(stderr, "moatd: quarantine release: node %s: %s\n", node,
                err == -ENOENT ? "no datapath state" : strerror(-err));
        return 1;
    }
    json_t *names = cluster_names(node);
    size_t released = 0;
    for (size_t i = 0; i < n; i++) {
        char cbuf[16];
        const char *cl = cluster_name(names, q[i].cluster, cbuf, sizeof(cbuf));
        if (memcmp(q[i].addr.b, a.b, 16) != 0 || (cluster && strcmp(cluster, cl) != 0))
            continue;
        if (ops->release(node, q[i].cluster, &a) == 0) {
            printf("released %s in cluster %s\n", addr_text, cl);
            released++;
        }
    }
    json_decref(names);
    free(q);
    if (!released) {
        fprintf(stderr, "moatd: quarantine release: %s is not quarantined%s%s on node %s\n",
                addr_text, cluster ? " in cluster " : "", cluster ? cluster : "", node);
        return 1;
    }
    return 0;
}

int cmd_quarantine(int argc, char **argv, const struct datapath_ops *(*backend_of)(const char *))
{
    static const char usage[] =
        "usage: moatd quarantine list --node NAME [--cluster ID] [-o table|json]\n"
        "       moatd quarantine release ADDR --node NAME [--cluster ID]\n";
    if (argc < 2 || (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "release") != 0)) {
        fputs(usage, stderr);
        return 2;
    }
    bool is_list = strcmp(argv[1], "list") == 0;
    const char *node = NULL, *cluster = NULL, *out = "table";
    static const struct option opts[] = {{"node", required_argument, NULL, 'n'},
                                         {"cluster", required_argument, NULL, 'c'},
                                         {"output", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "n:c:o:", opts, NULL)) != -1) {
        if (c == 'n')
            node = optarg;
        else if (c == 'c')
            cluster = optarg;
        else if (c == 'o')
            out = optarg;
        else {
            fputs(usage, stderr);
            return 2;
        }
    }
    int rest = argc - 1 - optind;
    if (!node || (is_list && rest != 0) || (!is_list && rest != 1) ||
        (strcmp(out, "table") != 0 && strcmp(out, "json") != 0)) {
        fputs(usage, stderr);
        return 2;
    }
    const struct datapath_ops *ops = backend_of(node);
    if (!ops)
        return 1;
    return is_list ? list(ops, node, cluster, strcmp(out, "json") == 0)
                   : release(ops, node, argv[1 + optind], cluster);
}
