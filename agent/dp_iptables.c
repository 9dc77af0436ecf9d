/*
 * dp_iptables: the iptables+ipset datapath backend (datapath.h), for kernels
 * the eBPF backend cannot run on (docs/datapath-iptables.md).
 *
 * The rules come from ipt_rules.c (pure); this file runs the tools —
 * `ipset restore`, `iptables-restore --noflush` / `ip6tables-restore`,
 * `ebtables-restore --noflush` — in the network namespace moatd runs in,
 * reads NFLOG (libnetfilter_log) for block and alert events, cuts flows a
 * new policy blocks (libnetfilter_conntrack), and learns each workload
 * port's MAC address from the bridge's forwarding database (rtnetlink).
 *
 * State lives in the kernel (chains, sets), so enforcement goes on while
 * moatd restarts: open() reads back which slot is in force, its generation
 * and the interfaces it guards.
 */
#include "datapath.h"
#include "hold.h"
#include "ipt_rules.h"
#include "mem.h"
#include "strset.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define OUT_MAX       (256u << 20) /* bytes read from a tool (iptables-save of a big slot) */
#define LEARN_EVERY   (200000000ull)
#define SUMMARY_EVERY (1000000000ull)
#define SUMMARY_IDLE  (2000000000ull)
#define BUCKETS       16384 /* rate-limit buckets (sources); a full table reuses the oldest */

/* ---------- tools ---------- */

enum tool {
    T_IPT_RESTORE,
    T_IP6T_RESTORE,
    T_IPT_SAVE,
    T_IP6T_SAVE,
    T_IPSET,
    T_EBT_RESTORE,
    T_EBTABLES,
    NTOOLS
};

static const char *const tool_names[NTOOLS] = {
    "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save", "ipset",
    "ebtables-restore", "ebtables"};

/* Finds `name` in PATH, then in the sbin folders a root shell has. */
static int find_tool(const char *name, char *out, size_t n)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s:/usr/sbin:/sbin:/usr/local/sbin", path ? path : "");
    for (char *sp = NULL, *dir = strtok_r(buf, ":", &sp); dir; dir = strtok_r(NULL, ":", &sp)) {
        if (!*dir)
            continue;
        snprintf(out, n, "%s/%s", dir, name);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -ENOENT;
}

/*
 * Runs tool `argv[0]` (a full path) with `input` on stdin; its stdout goes to
 * `out` when given, its stderr (first line kept) to `err`. Returns its exit
 * status (0: success), or -errno when it could not run.
 */
static int run_tool(char *const argv[], const char *input, size_t len, struct ipt_text *out,
                    char *err, size_t nerr)
{
    if (err && nerr)
        err[0] = '\0';
    int in = memfd_create("moat-in", MFD_CLOEXEC);
    if (in < 0)
        return -errno;
    for (size_t done = 0; done < len;) {
        ssize_t w = write(in, input + done, len - done);
        if (w < 0) {
            int e = -errno;
            close(in);
            return e;
        }
        done += (size_t)w;
    }
    lseek(in, 0, SEEK_SET);
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0) {
        close(in);
        return -errno;
    }
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(in);
        close(po[0]);
        close(po[1]);
        return -errno;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none); /* moatd blocks SIGTERM for its signalfd */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(in);
    close(po[1]);
    close(pe[1]);
    if (rc != 0) {
        close(po[0]);
        close(pe[0]);
        return -rc;
    }
    struct pollfd p[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    char ebuf[1024];
    size_t elen = 0;
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[65536];
            ssize_t r = read(p[i].fd, buf, sizeof(buf));
            if (r <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
                continue;
            }
            if (i == 0 && out && out->n + (size_t)r < OUT_MAX)
                ipt_text_add(out, "%.*s", (int)r, buf);
            if (i == 1 && elen < sizeof(ebuf) - 1) {
                size_t k =
                    (size_t)r < sizeof(ebuf) - 1 - elen ? (size_t)r : sizeof(ebuf) - 1 - elen;
                memcpy(ebuf + elen, buf, k);
                elen += k;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    ebuf[elen] = '\0';
    if (err && nerr) {
        ebuf[strcspn(ebuf, "\n")] = '\0';
        snprintf(err, nerr, "%s", ebuf);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out && out->err)
        return out->err;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* ---------- state ---------- */

struct ifslot {
    struct ipt_iface ifc;
    uint8_t mac[6];
    bool mac_known;
};

struct bucket {
    uint8_t addr[16];
    uint16_t cluster;
    uint8_t kind, applied;
    bool used;
    uint64_t last_ns;
    uint32_t tokens; /* 1/1000 event */
    uint32_t held;
};

struct datapath {
    char node[64];
    char tool[NTOOLS][256];
    uint16_t group;
    char slot; /* the slot in force: 'A', 'B', or 0 */
    uint32_t generation;
    struct ifslot *ifs;
    size_t nifs, cap_ifs;
    const struct moat_policy *p; /* the policy in force (the agent's; valid until the next apply) */
    const struct moat_tables *t;
    char **vchains; /* verdict chains that exist */
    size_t nv, cap_v;
    datapath_event_fn on_event;
    void *ctx;
    struct nflog_handle *nfl;
    struct nflog_g_handle *nflg;
    int nfl_fd;
    bool seq_known;
    uint32_t last_seq;
    struct bucket *buckets;
    uint64_t events[MOAT_EVS_MAX];
    uint64_t learned_at, summaries_at;
    int rtnl;
    struct datapath_stats stats;      /* the last counted, at stats_at */
    uint64_t stats_at, stats_cost;    /* when, and how long the count took (ns) */
    struct burst *bursts;             /* brute force, per (source, destination, port) */
    struct scan *scans;               /* port scans, per (cluster, source) */
    struct moat_threatlist **threats; /* the caller's, per cluster index (set_threats) */
    size_t nthreats;
    struct qmeta *qm; /* the quarantines' metadata (the sets hold addresses and timeouts) */
    size_t nqm;
    uint64_t det_drops[MOAT_DROP_MAX]; /* the detections' drops, from their NFLOG events */
    bool no_hashlimit, no_scan_sets;   /* what the kernel lacks (caps_probe) */
    bool qm_dirty;                     /* a quarantine's count moved: written within 1 s */
};

/* Brute force past the kernel's hashlimit: what moatd tells of one key's burst. */
struct burst {
    uint8_t src[16], dst[16];
    uint16_t port, cluster;
    uint8_t proto, action, applied;
    bool used;
    uint64_t last_ns, reported_ns;
    uint32_t pending; /* attempts over the threshold not told yet */
};

/* A port scan: new (destination, port, protocol) pairs of one source (the kernel's set
 * logs a pair once per window), counted with eBPF's two buckets. */
struct scan {
    uint8_t src[16], dst[16];
    uint16_t cluster, dport;
    uint8_t proto;
    bool used;
    uint64_t start_ns, last_ns, reported_ns;
    uint32_t cur, prev, total, reported;
};

/* A quarantine as moatd started it (RUN_DIR/moatd-NODE.quarantines, one a line). */
struct qmeta {
    uint32_t cluster, reason, secs;
    struct moat_addr addr;
    int64_t since; /* wall clock, s */
    uint64_t dropped;
};

#define BURSTS 4096
#define SCANS  4096

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool node_name_ok(const char *node)
{
    return node[0] && !strchr(node, '/') && strlen(node) < 64;
}

/* NFLOG group of a node: netlink groups are per network namespace on current kernels,
 * global on old ones, so nodes sharing a kernel get distinct ones as far as a hash goes. */
static uint16_t group_of(const char *node)
{
    uint32_t h = 2166136261u;
    for (const char *s = node; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return (uint16_t)(1000 + h % 60000);
}

/*
 * The legacy xtables tools (iptables-legacy-*) when they are there and the
 * kernel takes them — what the old distributions run, and a whole table
 * replaced in one call, several times faster for a large slot than the
 * nftables-based iptables — else the system's iptables-restore/-save.
 */
static const char *const legacy_names[4] = {"iptables-legacy-restore", "ip6tables-legacy-restore",
                                            "iptables-legacy-save", "ip6tables-legacy-save"};

static int tools_find(char tool[NTOOLS][256], char *why, size_t n)
{
    size_t len = 0;
    bool legacy = true;
    char alt[4][256];
    for (int i = 0; i < 4 && legacy; i++)
        legacy = find_tool(legacy_names[i], alt[i], sizeof(alt[i])) == 0;
    if (legacy) {
        char *argv[] = {alt[2], "-t", "filter", NULL};
        legacy = run_tool(argv, "", 0, NULL, NULL, 0) == 0;
    }
    for (int i = 0; i < NTOOLS; i++) {
        if (legacy && i < 4) {
            snprintf(tool[i], sizeof(tool[i]), "%s", alt[i]);
            continue;
        }
        if (find_tool(tool_names[i], tool[i], sizeof(tool[i])) != 0)
            len += (size_t)snprintf(why + len, len < n ? n - len : 0, "%s%s", len ? ", " : "",
                                    tool_names[i]);
    }
    return len ? -ENOENT : 0;
}

static int restore(struct datapath *dp, int fam, const struct ipt_text *text, char *err, size_t n)
{
    if (!text->n)
        return 0;
    char *argv[] = {dp->tool[fam ? T_IP6T_RESTORE : T_IPT_RESTORE], "--noflush", NULL};
    int rc = run_tool(argv, text->s, text->n, NULL, err, n);
    return rc > 0 ? -EIO : rc;
}

/* iptables-save of `table` (NULL: every table), with counters. */
static int save(struct datapath *dp, int fam, const char *table, bool counters,
                struct ipt_text *out)
{
    char *argv[5] = {dp->tool[fam ? T_IP6T_SAVE : T_IPT_SAVE]};
    int k = 1;
    if (table) {
        argv[k++] = "-t";
        argv[k++] = (char *)table;
    }
    if (counters)
        argv[k++] = "-c";
    argv[k] = NULL;
    int rc = run_tool(argv, "", 0, out, NULL, 0);
    return rc > 0 ? -EIO : rc;
}

static int ipset_input(struct datapath *dp, const struct ipt_text *text, char *err, size_t n)
{
    if (!text->n)
        return 0;
    char *argv[] = {dp->tool[T_IPSET], "restore", NULL};
    int rc = run_tool(argv, text->s, text->n, NULL, err, n);
    return rc > 0 ? -EIO : rc;
}

/*
 * One ebtables-restore --noflush (ebtables 2.0.11 and the nft variant); an
 * older ebtables-restore that does not take it gets the same lines one by one
 * as `ebtables -t TABLE LINE` (quoted words kept whole).
 */
static int ebt_lines(struct datapath *dp, const struct ipt_text *text, char *err, size_t n)
{
    char *copy = moat_strndup(text->s, text->n);
    if (!copy)
        return -ENOMEM;
    char table[16] = "filter";
    int first = 0;
    for (char *sp = NULL, *l = strtok_r(copy, "\n", &sp); l; l = strtok_r(NULL, "\n", &sp)) {
        if (l[0] == '*') {
            snprintf(table, sizeof(table), "%s", l + 1);
            continue;
        }
        char *argv[48] = {dp->tool[T_EBTABLES], "-t", table};
        int argc = 3;
        if (l[0] == ':') { /* ":CHAIN POLICY": create it */
            argv[argc++] = "-N";
            l[strcspn(l, " ")] = '\0';
            argv[argc++] = l + 1;
        } else {
            for (char *p = l; *p && argc < 47;) {
                while (*p == ' ')
                    p++;
                if (!*p)
                    break;
                char *start = p;
                if (*p == '"') {
                    start = ++p;
                    while (*p && *p != '"')
                        p++;
                } else {
                    while (*p && *p != ' ')
                        p++;
                }
                if (*p)
                    *p++ = '\0';
                argv[argc++] = start;
            }
        }
        argv[argc] = NULL;
        int rc = run_tool(argv, "", 0, NULL, err, n);
        if (rc && !first && argv[3][1] != 'N' && argv[3][1] != 'D' && argv[3][1] != 'X')
            first = rc > 0 ? -EIO : rc;
    }
    free(copy);
    return first;
}

static int ebt_input(struct datapath *dp, const struct ipt_text *text, char *err, size_t n)
{
    if (!text->n)
        return 0;
    char *argv[] = {dp->tool[T_EBT_RESTORE], "--noflush", NULL};
    int rc = run_tool(argv, text->s, text->n, NULL, err, n);
    if (rc > 0 && (strstr(err, "noflush") || strstr(err, "unrecognized") || strstr(err, "nknown")))
        return ebt_lines(dp, text, err, n);
    return rc > 0 ? -EIO : rc;
}

/* The names of the sets in this namespace (`ipset list -n`), as a set: 0 or -errno. */
static int sets_known(struct datapath *dp, struct strset *out)
{
    *out = (struct strset){0};
    struct ipt_text list = {0};
    char *argv[] = {dp->tool[T_IPSET], "list", "-n", NULL};
    int rc = run_tool(argv, "", 0, &list, NULL, 0);
    int err = rc > 0 ? -EIO : rc;
    for (char *sp = NULL, *l = err || !list.s ? NULL : strtok_r(list.s, "\n", &sp); l;
         l = strtok_r(NULL, "\n", &sp))
        if (strset_add(out, l) < 0) {
            err = -ENOMEM;
            break;
        }
    ipt_text_free(&list);
    if (err)
        strset_clear(out);
    return err;
}

/* ctx: a strset of the verdict chains in the kernel */
static bool vchain_exists(void *ctx, const char *name)
{
    return strset_has(ctx, name);
}

/* The names v[0..n) as a set (for membership tests without a scan): 0 or -ENOMEM. */
static int names_set(char *const *v, size_t n, struct strset *out)
{
    *out = (struct strset){0};
    for (size_t i = 0; i < n; i++)
        if (strset_add(out, v[i]) < 0) {
            strset_clear(out);
            return -ENOMEM;
        }
    return 0;
}

static void vchains_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Chains declared in iptables-save text `s` whose names start with `prefix`, as a list. */
static int chains_with(const char *s, const char *prefix, char ***out, size_t *n, size_t *cap)
{
    size_t pl = strlen(prefix);
    for (const char *line = s; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (line[0] == ':' && len > pl && strncmp(line + 1, prefix, pl) == 0) {
            size_t nl = strcspn(line + 1, " \n");
            char *name = moat_strndup(line + 1, nl);
            if (!name || moat_grow(out, cap, *n + 1, sizeof(**out)) < 0) {
                free(name);
                return -ENOMEM;
            }
            (*out)[(*n)++] = name;
        }
        line = end ? end + 1 : NULL;
    }
    return 0;
}

/* ---------- what a previous moatd left ---------- */

struct seen {
    const char *v4raw, *v4filter, *v4mangle;
};

static bool base_exists(void *ctx, const char *name)
{
    const struct seen *s = ctx;
    char pat[96];
    if (strncmp(name, "jump:", 5) == 0) {
        char chain[32], target[32];
        if (sscanf(name + 5, "%31[^:]:%31s", chain, target) != 2)
            return false;
        snprintf(pat, sizeof(pat), "-A %s -j %s\n", chain, target);
        return strstr(s->v4raw, pat) || strstr(s->v4filter, pat) || strstr(s->v4mangle, pat);
    }
    snprintf(pat, sizeof(pat), ":%s ", name);
    return strstr(s->v4raw, pat) || strstr(s->v4filter, pat) || strstr(s->v4mangle, pat);
}

static int add_iface(struct datapath *dp, const struct ipt_iface *ifc)
{
    for (size_t i = 0; i < dp->nifs; i++)
        if (strcmp(dp->ifs[i].ifc.name, ifc->name) == 0) {
            dp->ifs[i].ifc = *ifc;
            return 0;
        }
    if (moat_grow(&dp->ifs, &dp->cap_ifs, dp->nifs + 1, sizeof(*dp->ifs)) < 0)
        return -ENOMEM;
    memset(&dp->ifs[dp->nifs], 0, sizeof(dp->ifs[0]));
    dp->ifs[dp->nifs++].ifc = *ifc;
    return 0;
}

/*
 * The slot in force, its generation and its interfaces, from iptables-save:
 * "-A MOAT-FWD -m comment --comment "moat generation N" -j MOAT-S-FWD" and
 * "-A MOAT-S-PRE -m physdev --physdev-in IF -m comment --comment "c C" -j MOAT-S-GK"
 * with the interface's addresses in MOAT-S-GK's "-s ADDR -j RETURN" rules.
 */
static int read_back(struct datapath *dp, const char *raw4, const char *raw6, const char *filter4)
{
    const char *g = strstr(filter4, "--comment \"moat node ");
    if (g) {
        unsigned gen = 0;
        char slot = 0, owner[64] = "";
        if (sscanf(g, "--comment \"moat node %63s generation %u\" -j MOAT-%c-FWD", owner, &gen,
                   &slot) == 3 &&
            (slot == 'A' || slot == 'B')) {
            if (strcmp(owner, dp->node) != 0) {
                fprintf(stderr,
                        "moatd: error: iptables datapath: this network namespace is node %s's "
                        "(one node per network namespace: its rules and sets are "
                        "namespace-wide)\n",
                        owner);
                return -EBUSY;
            }
            dp->generation = gen;
            dp->slot = slot;
        }
    }
    if (!dp->slot)
        return 0;
    char pat[32];
    snprintf(pat, sizeof(pat), "-A MOAT-%c-PRE ", dp->slot);
    for (const char *l = strstr(raw4, pat); l; l = strstr(l + 1, pat)) {
        struct ipt_iface ifc;
        memset(&ifc, 0, sizeof(ifc));
        char slot;
        unsigned cluster;
        if (sscanf(l,
                   "-A MOAT-%*c-PRE -m physdev --physdev-in %15s -m comment --comment \"c %u\" "
                   "-j MOAT-%c-G%d",
                   ifc.name, &cluster, &slot, &ifc.ifindex) != 4)
            continue;
        ifc.cluster = cluster;
        for (int fam = 0; fam < 2; fam++) {
            char gp[48];
            snprintf(gp, sizeof(gp), "-A MOAT-%c-G%d -s ", dp->slot, ifc.ifindex);
            for (const char *a = strstr(fam ? raw6 : raw4, gp); a; a = strstr(a + 1, gp)) {
                char text[64];
                struct moat_addr addr;
                if (sscanf(a + strlen(gp), "%63s -j RETURN", text) == 1 &&
                    strstr(a + strlen(gp), " -j RETURN\n") == a + strlen(gp) + strlen(text)) {
                    char *slash = strchr(text, '/');
                    if (slash && (strcmp(slash, "/32") == 0 || strcmp(slash, "/128") == 0))
                        *slash = '\0';
                    if (!strchr(text, '/') && addr_parse(text, &addr) == 0 &&
                        ifc.naddrs < IPT_IFACE_ADDRS)
                        ifc.addrs[ifc.naddrs++] = addr;
                }
            }
        }
        if (ifc.naddrs && add_iface(dp, &ifc) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---------- detections: quarantines, bursts, scans (docs/datapath-iptables.md) ---------- */

#define QMETA_PATH "/run/moat/moatd-%s.quarantines"
#define REPORT_NS  1000000000ull /* at most one detection event a second per key */

/* The agent's open datapath, for the ops that take a node name (quarantine, release):
 * they keep its quarantine metadata and cut only its cluster's flows. */
static struct datapath *open_dp;

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

static int qmeta_load(const char *node, struct qmeta **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char path[256];
    snprintf(path, sizeof(path), QMETA_PATH, node);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    char line[256];
    size_t cap = 0;
    int err = 0;
    while (fgets(line, sizeof(line), f)) {
        struct qmeta q = {0};
        char addr[MOAT_ADDR_STRLEN];
        long long since;
        unsigned long long dropped = 0; /* optional: the agent's count */
        if (sscanf(line, "%u %63s %u %u %lld %llu", &q.cluster, addr, &q.reason, &q.secs, &since,
                   &dropped) < 5 ||
            addr_parse(addr, &q.addr) < 0)
            continue;
        q.since = since;
        q.dropped = dropped;
        if (moat_grow(out, &cap, *n + 1, sizeof(**out)) < 0) {
            err = -ENOMEM;
            break;
        }
        (*out)[(*n)++] = q;
    }
    fclose(f);
    return err;
}

/* Writes the metadata whole (a new file renamed over the old), without expired entries. */
static int qmeta_save(const char *node, const struct qmeta *q, size_t n)
{
    char path[256], tmp[300];
    snprintf(path, sizeof(path), QMETA_PATH, node);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    mkdir("/run/moat", 0755);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    int64_t now = wall_now();
    for (size_t i = 0; i < n; i++) {
        if (q[i].since + (int64_t)q[i].secs < now)
            continue;
        char addr[MOAT_ADDR_STRLEN];
        addr_format(&q[i].addr, addr, sizeof(addr));
        fprintf(f, "%u %s %u %u %lld %llu\n", q[i].cluster, addr, q[i].reason, q[i].secs,
                (long long)q[i].since, (unsigned long long)q[i].dropped);
    }
    if (fclose(f) != 0) {
        unlink(tmp);
        return -EIO;
    }
    return rename(tmp, path) ? -errno : 0;
}

static struct qmeta *qmeta_find(struct qmeta *q, size_t n, uint32_t cluster,
                                const struct moat_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (q[i].cluster == cluster && memcmp(q[i].addr.b, a->b, 16) == 0)
            return &q[i];
    return NULL;
}

static void open_dp_reload(const char *node)
{
    if (!open_dp || strcmp(open_dp->node, node) != 0)
        return;
    struct qmeta *q;
    size_t n;
    if (qmeta_load(node, &q, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) { /* the counts of those still there */
        const struct qmeta *old = qmeta_find(open_dp->qm, open_dp->nqm, q[i].cluster, &q[i].addr);
        if (old && old->since == q[i].since && old->dropped > q[i].dropped)
            q[i].dropped = old->dropped;
    }
    free(open_dp->qm);
    open_dp->qm = q;
    open_dp->nqm = n;
}

/* `ipset restore` of `input` with the ipset in PATH: 0, -ENOENT (no ipset), -EIO. */
static int ipset_run(const char *input, struct ipt_text *out, const char *cmd)
{
    char tool[256];
    if (find_tool("ipset", tool, sizeof(tool)) != 0)
        return -ENOENT;
    char *argv[] = {tool, (char *)cmd, NULL};
    int rc = run_tool(argv, input, strlen(input), out, NULL, 0);
    return rc > 0 ? -EIO : rc;
}

static void cut_addr(const char *node, uint32_t cluster, const struct moat_addr *a);

static int quarantines_iptables(const char *node, struct datapath_quarantine **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!node_name_ok(node))
        return -EINVAL;
    struct ipt_text list = {0};
    int err = ipset_run("", &list, "list");
    struct qmeta *meta = NULL;
    size_t nmeta = 0;
    if (!err)
        err = qmeta_load(node, &meta, &nmeta);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t mono = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, wall = wall_now();
    size_t cap = 0;
    bool members = false, any_set = false;
    unsigned cluster = 0;
    for (char *sp = NULL, *l = err || !list.s ? NULL : strtok_r(list.s, "\n", &sp); l && !err;
         l = strtok_r(NULL, "\n", &sp)) {
        int fam;
        if (strncmp(l, "Name: ", 6) == 0) {
            members = false;
            cluster = UINT32_MAX;
            if (sscanf(l + 6, "mt-Q%u-%d", &cluster, &fam) != 2)
                cluster = UINT32_MAX;
            any_set |= strncmp(l + 6, "mt-", 3) == 0;
            continue;
        }
        if (strncmp(l, "Members:", 8) == 0) {
            members = cluster != UINT32_MAX;
            continue;
        }
        char addr[MOAT_ADDR_STRLEN];
        unsigned left;
        struct moat_addr a;
        if (!members || sscanf(l, "%63s timeout %u", addr, &left) != 2 || addr_parse(addr, &a) < 0)
            continue;
        if (moat_grow(out, &cap, *n + 1, sizeof(**out)) < 0) {
            err = -ENOMEM;
            break;
        }
        const struct qmeta *m = qmeta_find(meta, nmeta, cluster, &a);
        struct datapath_quarantine *q = &(*out)[(*n)++];
        memset(q, 0, sizeof(*q));
        q->cluster = cluster;
        q->addr = a;
        q->reason = m ? m->reason : MOAT_Q_BRUTE_FORCE; /* unknown: a brute force's */
        q->secs = m ? m->secs : left;
        int64_t since = m ? m->since : wall;
        q->since_ns = (uint64_t)(mono + (since - wall) * 1000000000);
        q->until_ns = (uint64_t)mono + (uint64_t)left * 1000000000u;
        q->dropped = m ? m->dropped : 0; /* as the agent last wrote it (every second) */
        if (open_dp && strcmp(open_dp->node, node) == 0) {
            const struct qmeta *live = qmeta_find(open_dp->qm, open_dp->nqm, cluster, &a);
            q->dropped = live ? live->dropped : 0;
        }
    }
    if (!err && !any_set)
        err = -ENOENT;
    if (err) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    free(meta);
    ipt_text_free(&list);
    return err;
}

static int quarantine_iptables(const char *node, const struct datapath_quarantine *q)
{
    if (!node_name_ok(node))
        return -EINVAL;
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    uint64_t now = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
    uint64_t secs = q->until_ns > now ? (q->until_ns - now + 999999999u) / 1000000000u : 1;
    if (secs > IPT_TIMEOUT_MAX)
        secs = IPT_TIMEOUT_MAX;
    int fam = addr_is_v4(&q->addr) ? 4 : 6;
    char addr[MOAT_ADDR_STRLEN], line[256];
    addr_format(&q->addr, addr, sizeof(addr));
    snprintf(line, sizeof(line), "add " IPT_QSET " %s timeout %llu -exist\n", q->cluster, fam, addr,
             (unsigned long long)secs);
    int err = ipset_run(line, NULL, "restore");
    if (err == -EIO) { /* no such set yet (the cluster has no workload here yet) */
        char make[512];
        snprintf(make, sizeof(make),
                 "create " IPT_QSET " hash:ip family %s timeout 600 maxelem %u -exist\n%s",
                 q->cluster, fam, fam == 4 ? "inet" : "inet6", IPT_QSET_MAX, line);
        err = ipset_run(make, NULL, "restore");
    }
    if (err)
        return err;
    struct qmeta *meta;
    size_t n;
    if (qmeta_load(node, &meta, &n) == 0) {
        struct qmeta *m = qmeta_find(meta, n, q->cluster, &q->addr);
        struct qmeta *grown = m ? meta : moat_reallocarray(meta, n + 1, sizeof(*meta));
        if (grown) {
            meta = grown;
            if (!m)
                m = &meta[n++];
            *m = (struct qmeta){.cluster = q->cluster,
                                .reason = q->reason,
                                .secs = q->secs ? q->secs : (uint32_t)secs,
                                .addr = q->addr,
                                .since = wall_now()};
            qmeta_save(node, meta, n);
        }
        free(meta);
    }
    open_dp_reload(node);
    cut_addr(node, q->cluster, &q->addr);
    return 0;
}

static int release_iptables(const char *node, uint32_t cluster, const struct moat_addr *addr)
{
    if (!node_name_ok(node))
        return -EINVAL;
    char a[MOAT_ADDR_STRLEN], line[128];
    addr_format(addr, a, sizeof(a));
    snprintf(line, sizeof(line), "del " IPT_QSET " %s\n", cluster, addr_is_v4(addr) ? 4 : 6, a);
    if (ipset_run(line, NULL, "restore") != 0)
        return -ENOENT;
    struct qmeta *meta;
    size_t n;
    if (qmeta_load(node, &meta, &n) == 0) {
        struct qmeta *m = qmeta_find(meta, n, cluster, addr);
        if (m) {
            *m = meta[--n];
            qmeta_save(node, meta, n);
        }
        free(meta);
    }
    open_dp_reload(node);
    return 0;
}

static const struct moat_cluster *cluster_at(const struct datapath *dp, uint32_t k)
{
    return dp->p && k < dp->p->nclusters ? &dp->p->clusters[k] : NULL;
}

/* A detection asked for a quarantine: started unless one runs already (it runs its course). */
static void quarantine_start(struct datapath *dp, uint32_t k, const uint8_t *src, uint32_t reason,
                             uint32_t secs)
{
    struct moat_addr a;
    memcpy(a.b, src, 16);
    const struct qmeta *m = qmeta_find(dp->qm, dp->nqm, k, &a);
    if (!secs || (m && m->since + (int64_t)m->secs > wall_now()))
        return;
    uint64_t now = mono_ns();
    struct datapath_quarantine q = {.cluster = k,
                                    .addr = a,
                                    .reason = reason,
                                    .secs = secs,
                                    .since_ns = now,
                                    .until_ns = now + (uint64_t)secs * 1000000000u};
    int err = quarantine_iptables(dp->node, &q);
    if (err)
        fprintf(stderr, "moatd: warning: iptables datapath: cannot start a quarantine: %s\n",
                strerror(-err));
}

static uint32_t hash_bytes(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static void deliver(struct datapath *dp, struct moat_event *e);

static void burst_tell(struct datapath *dp, const struct burst *b, uint32_t count)
{
    const struct moat_cluster *cl = cluster_at(dp, b->cluster);
    struct moat_event e = {.ts_ns = mono_ns(),
                           .kind = MOAT_EV_BRUTE_FORCE,
                           .dir = MOAT_ABI_DIR_INGRESS,
                           .action = b->action,
                           .applied = b->applied,
                           .proto = b->proto,
                           .cluster = b->cluster,
                           .dport = b->port,
                           .count = count,
                           .aux = cl ? cl->det.brute_force.window : 0};
    memcpy(e.saddr, b->src, 16);
    memcpy(e.daddr, b->dst, 16);
    deliver(dp, &e);
}

/*
 * An attempt the kernel's hashlimit found over the threshold. Its first one
 * in a burst stands for the threshold's attempts too (the bucket they
 * emptied); then at most one event a second with the attempts since, and the
 * tail when the burst is quiet (report_idle).
 */
static void burst_hit(struct datapath *dp, const struct moat_event *ev, uint32_t k, unsigned cfg,
                      unsigned applied)
{
    const struct moat_cluster *cl = cluster_at(dp, k);
    if (!cl || !dp->bursts)
        return;
    struct burst key = {.port = ev->dport, .cluster = (uint16_t)k, .used = true};
    memcpy(key.src, ev->saddr, 16);
    memcpy(key.dst, ev->daddr, 16);
    uint32_t h = hash_bytes(hash_bytes(2166136261u, key.src, 16), key.dst, 16);
    uint8_t pk[4];
    memcpy(pk, &key.port, 2);
    memcpy(pk + 2, &key.cluster, 2);
    h = hash_bytes(h, pk, 4);
    struct burst *b = &dp->bursts[h % BURSTS];
    if (!b->used || memcmp(b->src, key.src, 16) != 0 || memcmp(b->dst, key.dst, 16) != 0 ||
        b->port != key.port || b->cluster != key.cluster) {
        if (b->used && b->pending)
            burst_tell(dp, b, b->pending);
        *b = key;
    }
    b->action = (uint8_t)cfg;
    b->applied = (uint8_t)applied;
    b->proto = ev->proto;
    uint64_t now = ev->ts_ns, window = (uint64_t)cl->det.brute_force.window * 1000000000u;
    if (!b->last_ns || now - b->last_ns >= window) { /* the bucket is full again: a new burst */
        b->pending = 0;
        b->last_ns = b->reported_ns = now;
        burst_tell(dp, b, cl->det.brute_force.threshold + 1);
    } else {
        b->pending++;
        b->last_ns = now;
        if (now - b->reported_ns >= REPORT_NS) {
            burst_tell(dp, b, b->pending);
            b->pending = 0;
            b->reported_ns = now;
        }
    }
    if (applied == MOAT_ACTION_BLOCK)
        quarantine_start(dp, k, ev->saddr, MOAT_Q_BRUTE_FORCE, cl->det.brute_force.quarantine);
}

/*
 * A quarantined source's attempt on an auth port where its burst goes on:
 * an attempt of the burst (as eBPF counts it), not only a dropped one. The
 * kernel's bucket refills meanwhile, so hashlimit alone would not see them all.
 */
static bool burst_more(struct datapath *dp, const struct moat_event *ev, uint32_t k)
{
    const struct moat_cluster *cl = cluster_at(dp, k);
    if (!cl || !dp->bursts || !cl->det.brute_force.c.enabled)
        return false;
    uint32_t h = hash_bytes(hash_bytes(2166136261u, ev->saddr, 16), ev->daddr, 16);
    uint16_t port = ev->dport;
    uint16_t cluster = (uint16_t)k;
    uint8_t key[4];
    memcpy(key, &port, 2);
    memcpy(key + 2, &cluster, 2);
    h = hash_bytes(h, key, 4);
    struct burst *b = &dp->bursts[h % BURSTS];
    uint64_t window = (uint64_t)cl->det.brute_force.window * 1000000000u;
    if (!b->used || memcmp(b->src, ev->saddr, 16) != 0 || memcmp(b->dst, ev->daddr, 16) != 0 ||
        b->port != port || b->cluster != k || ev->ts_ns - b->last_ns >= window)
        return false;
    b->pending++;
    b->last_ns = ev->ts_ns;
    if (ev->ts_ns - b->reported_ns >= REPORT_NS) {
        burst_tell(dp, b, b->pending);
        b->pending = 0;
        b->reported_ns = ev->ts_ns;
    }
    return true;
}

static void scan_tell(struct datapath *dp, struct scan *s, uint64_t now)
{
    const struct moat_cluster *cl = cluster_at(dp, s->cluster);
    if (!cl)
        return;
    enum moat_action a = cl->det.port_scan.c.action, applied = a;
    if (cl->mode == MOAT_MODE_MONITOR && a == MOAT_ACTION_BLOCK)
        applied = MOAT_ACTION_ALERT;
    struct moat_event e = {.ts_ns = now,
                           .kind = MOAT_EV_PORT_SCAN,
                           .dir = MOAT_ABI_DIR_INGRESS,
                           .action = (uint8_t)a,
                           .applied = (uint8_t)applied,
                           .proto = s->proto,
                           .cluster = s->cluster,
                           .dport = s->dport,
                           .count = s->total - s->reported,
                           .aux = cl->det.port_scan.window};
    memcpy(e.saddr, s->src, 16);
    memcpy(e.daddr, s->dst, 16);
    s->reported = s->total;
    s->reported_ns = now;
    deliver(dp, &e);
}

/* A pair the kernel saw first in the window: counted per source as eBPF counts. */
static void scan_hit(struct datapath *dp, const struct moat_event *ev, uint32_t k)
{
    const struct moat_cluster *cl = cluster_at(dp, k);
    if (!cl || !dp->scans || !cl->det.port_scan.c.enabled)
        return;
    uint32_t h = hash_bytes(2166136261u, ev->saddr, 16);
    h = hash_bytes(h, &k, 4);
    struct scan *s = &dp->scans[h % SCANS];
    uint64_t now = ev->ts_ns, window = (uint64_t)cl->det.port_scan.window * 1000000000u;
    if (!s->used || memcmp(s->src, ev->saddr, 16) != 0 || s->cluster != k) {
        if (s->used && s->reported_ns && s->total > s->reported)
            scan_tell(dp, s, now);
        memset(s, 0, sizeof(*s));
        s->used = true;
        memcpy(s->src, ev->saddr, 16);
        s->cluster = (uint16_t)k;
        s->start_ns = now;
    }
    if (s->total && now - s->last_ns >= 2 * window) { /* quiet for two windows: afresh */
        s->total = s->reported = s->cur = s->prev = 0;
        s->reported_ns = 0;
        s->start_ns = now;
    }
    if (now - s->start_ns >= window) {
        s->prev = now - s->start_ns < 2 * window ? s->cur : 0;
        s->cur = 0;
        s->start_ns = now;
    }
    s->cur++;
    s->total++;
    s->last_ns = now;
    memcpy(s->dst, ev->daddr, 16);
    s->dport = ev->dport;
    s->proto = ev->proto;
    uint64_t in = now - s->start_ns;
    uint64_t est = s->cur + (in >= window ? 0 : (uint64_t)s->prev * (window - in) / window);
    if (est <= cl->det.port_scan.threshold)
        return;
    if (cl->det.port_scan.c.action == MOAT_ACTION_BLOCK && cl->mode != MOAT_MODE_MONITOR)
        quarantine_start(dp, k, ev->saddr, MOAT_Q_PORT_SCAN, cl->det.port_scan.quarantine);
    if (s->reported_ns && now - s->reported_ns < REPORT_NS)
        return;
    scan_tell(dp, s, now);
}

/* What a burst or scan held back once it went quiet (2 s), as eBPF's tails. */
static void detections_idle(struct datapath *dp, uint64_t now)
{
    for (size_t i = 0; dp->bursts && i < BURSTS; i++) {
        struct burst *b = &dp->bursts[i];
        if (b->used && b->pending && now - b->last_ns >= SUMMARY_IDLE) {
            burst_tell(dp, b, b->pending);
            b->pending = 0;
            b->reported_ns = now;
        }
    }
    for (size_t i = 0; dp->scans && i < SCANS; i++) {
        struct scan *s = &dp->scans[i];
        if (s->used && s->reported_ns && s->total > s->reported && now - s->last_ns >= SUMMARY_IDLE)
            scan_tell(dp, s, now);
    }
}

/* The detections' NFLOG events (prefixes in ipt_rules.h): false when not one or done here. */
static bool detection_event(struct datapath *dp, char kind, const char *prefix,
                            struct moat_event *e)
{
    unsigned k = 0, cfg = 0, applied = 0, dir = 0, aux = 0, reason = 0;
    switch (kind) {
    case 'f':
        if (sscanf(prefix, IPT_LOG_TAG " f %u %u %u", &k, &cfg, &applied) == 3)
            burst_hit(dp, e, k, cfg, applied);
        if (applied == MOAT_ACTION_BLOCK)
            dp->det_drops[MOAT_DROP_QUARANTINED]++;
        return false;
    case 'n':
        if (sscanf(prefix, IPT_LOG_TAG " n %u", &k) == 1)
            scan_hit(dp, e, k);
        return false;
    case 'q': {
        if (sscanf(prefix, IPT_LOG_TAG " q %u %u", &k, &applied) != 2)
            return false;
        if (applied == MOAT_ACTION_BLOCK && burst_more(dp, e, k)) {
            dp->det_drops[MOAT_DROP_QUARANTINED]++;
            return false;
        }
        struct moat_addr a;
        memcpy(a.b, e->saddr, 16);
        struct qmeta *m = qmeta_find(dp->qm, dp->nqm, k, &a);
        if (m) {
            m->dropped++;
            dp->qm_dirty = true;
        }
        e->kind = MOAT_EV_QUARANTINE;
        e->reason = MOAT_DROP_QUARANTINED;
        e->cluster = k;
        e->action = e->applied = (uint8_t)applied;
        e->dir = MOAT_ABI_DIR_INGRESS;
        e->aux = m ? m->reason : MOAT_Q_BRUTE_FORCE;
        e->count = 1;
        return true;
    }
    case 't': {
        if (sscanf(prefix, IPT_LOG_TAG " t %u %u %u %u", &k, &cfg, &applied, &dir) != 4)
            return false;
        struct moat_addr peer;
        memcpy(peer.b, dir ? e->daddr : e->saddr, 16);
        const struct moat_threat *t =
            k < dp->nthreats ? threatlist_lookup(dp->threats[k], &peer) : NULL;
        e->kind = MOAT_EV_THREAT;
        e->cluster = k;
        e->dir = (uint8_t)dir;
        e->action = (uint8_t)cfg;
        e->applied = (uint8_t)applied;
        e->reason = applied == MOAT_ACTION_BLOCK ? MOAT_DROP_THREAT : 0;
        e->aux = t ? t->label : UINT32_MAX;
        memcpy(e->waddr, t ? t->prefix.addr.b : peer.b, 16);
        e->count = t ? t->prefix.len : 128;
        return true;
    }
    case 'r':
        if (sscanf(prefix, IPT_LOG_TAG " r %u %u %u %u %u", &k, &cfg, &applied, &aux, &reason) != 5)
            return false;
        e->kind = MOAT_EV_DNS_HIJACK;
        e->cluster = k;
        e->action = (uint8_t)cfg;
        e->applied = (uint8_t)applied;
        e->aux = aux;
        e->reason = reason;
        e->dir = aux ? MOAT_ABI_DIR_INGRESS : MOAT_ABI_DIR_EGRESS;
        return true;
    default:
        return false;
    }
}

/* ---------- NFLOG events ---------- */

static uint32_t hash_key(const struct bucket *k)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ k->addr[i]) * 16777619u;
    h = (h ^ k->cluster) * 16777619u;
    h = (h ^ k->kind) * 16777619u;
    return (h ^ k->applied) * 16777619u;
}

static void summary(struct datapath *dp, const struct bucket *b, uint64_t now)
{
    if (!b->held || !dp->on_event)
        return;
    struct moat_event e = {.ts_ns = now,
                           .kind = MOAT_EV_SUMMARY,
                           .reason = b->kind,
                           .applied = b->applied,
                           .action = b->applied,
                           .cluster = b->cluster,
                           .held = b->held};
    memcpy(e.saddr, b->addr, 16);
    dp->on_event(dp->ctx, &e);
}

/*
 * The eBPF datapath's per-source token bucket (MOAT_EVL_*), here in user
 * space: 32 events at once per (source, cluster, kind, action), then 8 per
 * second; what it holds back rides on the next event sent, or is reported
 * as a summary once the source has been quiet for 2 s.
 */
static void deliver(struct datapath *dp, struct moat_event *e)
{
    if (!dp->on_event)
        return;
    struct bucket key = {
        .cluster = (uint16_t)e->cluster, .kind = (uint8_t)e->kind, .applied = e->applied};
    memcpy(key.addr, e->kind == MOAT_EV_SPOOFING ? e->waddr : e->saddr, 16);
    struct bucket *b = &dp->buckets[hash_key(&key) % BUCKETS];
    uint64_t now = mono_ns();
    if (!b->used || memcmp(b->addr, key.addr, 16) != 0 || b->cluster != key.cluster ||
        b->kind != key.kind || b->applied != key.applied) {
        if (b->used)
            summary(dp, b, now); /* its slot is taken: what it held is told now */
        *b = key;
        b->used = true;
        b->tokens = MOAT_EVL_BURST * 1000u;
        b->last_ns = now;
    }
    uint64_t add = (now - b->last_ns) * MOAT_EVL_PER_SEC / 1000000u;
    b->tokens = (uint32_t)(b->tokens + add > MOAT_EVL_BURST * 1000u ? MOAT_EVL_BURST * 1000u
                                                                    : b->tokens + add);
    b->last_ns = now;
    if (b->tokens < 1000) {
        b->held++;
        dp->events[MOAT_EVS_SUPPRESSED]++;
        return;
    }
    b->tokens -= 1000;
    e->held = b->held;
    b->held = 0;
    dp->events[MOAT_EVS_SENT]++;
    dp->on_event(dp->ctx, e);
}

static void report_idle(struct datapath *dp)
{
    uint64_t now = mono_ns();
    if (now - dp->summaries_at < SUMMARY_EVERY)
        return;
    dp->summaries_at = now;
    detections_idle(dp, now);
    if (dp->qm_dirty) { /* the counts, for moatd quarantine list in another process */
        struct qmeta *fresh;
        size_t n;
        if (qmeta_load(dp->node, &fresh, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                const struct qmeta *live =
                    qmeta_find(dp->qm, dp->nqm, fresh[i].cluster, &fresh[i].addr);
                if (live && live->since == fresh[i].since)
                    fresh[i].dropped = live->dropped;
            }
            qmeta_save(dp->node, fresh, n);
            free(fresh);
        }
        dp->qm_dirty = false;
    }
    for (size_t i = 0; i < BUCKETS; i++) {
        struct bucket *b = &dp->buckets[i];
        if (b->used && b->held && now - b->last_ns >= SUMMARY_IDLE) {
            summary(dp, b, now);
            b->held = 0;
        }
    }
}

static void map4(uint8_t out[16], const uint8_t *v4)
{
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, v4, 4);
}

/* Addresses, protocol and ports of an IP packet (the NFLOG payload). */
static void parse_ip(const uint8_t *d, size_t len, struct moat_event *e)
{
    if (len < 1)
        return;
    unsigned ver = d[0] >> 4;
    size_t off;
    uint8_t proto;
    bool first = true;
    if (ver == 4 && len >= 20) {
        off = (size_t)(d[0] & 0xf) * 4;
        proto = d[9];
        map4(e->saddr, d + 12);
        map4(e->daddr, d + 16);
        first = (((d[6] & 0x1f) << 8) | d[7]) == 0;
    } else if (ver == 6 && len >= 40) {
        memcpy(e->saddr, d + 8, 16);
        memcpy(e->daddr, d + 24, 16);
        proto = d[6];
        off = 40;
        for (int i = 0; i < 8 && off + 8 <= len; i++) {
            if (proto == 0 || proto == 43 || proto == 60) {
                proto = d[off];
                off += ((size_t)d[off + 1] + 1) * 8;
            } else if (proto == 44) {
                first = ((d[off + 2] << 8 | d[off + 3]) & 0xfff8) == 0;
                proto = d[off];
                off += 8;
            } else {
                break;
            }
        }
    } else {
        return;
    }
    e->proto = proto;
    if (first && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && off + 4 <= len) {
        e->sport = (uint16_t)(d[off] << 8 | d[off + 1]);
        e->dport = (uint16_t)(d[off + 2] << 8 | d[off + 3]);
    }
}

static struct ifslot *iface_by_index(struct datapath *dp, uint32_t ifindex)
{
    for (size_t i = 0; ifindex && i < dp->nifs; i++)
        if ((uint32_t)dp->ifs[i].ifc.ifindex == ifindex)
            return &dp->ifs[i];
    return NULL;
}

static int on_nflog(struct nflog_g_handle *gh, struct nfgenmsg *nfmsg, struct nflog_data *nfa,
                    void *data)
{
    (void)gh;
    struct datapath *dp = data;
    uint32_t seq;
    if (nflog_get_seq(nfa, &seq) == 0) {
        if (dp->seq_known && seq != dp->last_seq + 1)
            dp->events[MOAT_EVS_LOST] += seq - dp->last_seq - 1; /* lost in the socket buffer */
        dp->seq_known = true;
        dp->last_seq = seq;
    }
    const char *prefix = nflog_get_prefix(nfa);
    char kind;
    unsigned a = 0, b = 0, cfg = 0, applied = 0, dir = 0;
    if (!prefix || sscanf(prefix, IPT_LOG_TAG " %c", &kind) != 1)
        return 0;
    struct moat_event e = {.ts_ns = mono_ns()};
    char *payload = NULL;
    int plen = nflog_get_payload(nfa, &payload);
    uint32_t in_if = nflog_get_physindev(nfa);
    if (!in_if)
        in_if = nflog_get_indev(nfa);
    e.ifindex = in_if;
    if (nfmsg->nfgen_family == NFPROTO_BRIDGE) {
        /* ebtables: the frame's network part; ARP claims its sender address. */
        struct nfulnl_msg_packet_hdr *ph = nflog_get_msg_packet_hdr(nfa);
        uint16_t proto = ph ? ntohs(ph->hw_protocol) : 0;
        if (proto == ETH_P_ARP && plen >= 28)
            map4(e.saddr, (const uint8_t *)payload + 14);
        else if (plen > 0)
            parse_ip((const uint8_t *)payload, (size_t)plen, &e);
    } else if (plen > 0) {
        parse_ip((const uint8_t *)payload, (size_t)plen, &e);
    }
    if (kind == 'p' || kind == 'd') {
        if (sscanf(prefix, IPT_LOG_TAG " %*c %u %u %u %u %u", &a, &b, &cfg, &applied, &dir) != 5)
            return 0;
        e.kind = MOAT_EV_POLICY;
        e.rule_id = kind == 'p' ? a : 0;
        e.cluster = b;
        e.action = (uint8_t)cfg;
        e.applied = (uint8_t)applied;
        e.dir = (uint8_t)dir;
        e.reason = applied == MOAT_ABI_BLOCK ? MOAT_DROP_POLICY : 0;
    } else if (kind == 's') {
        if (sscanf(prefix, IPT_LOG_TAG " s %u %u", &a, &applied) != 2)
            return 0;
        struct ifslot *ifs = iface_by_index(dp, in_if);
        if (!ifs)
            return 0; /* not an interface of ours (any more) */
        e.kind = MOAT_EV_SPOOFING;
        e.reason = a;
        e.action = e.applied = (uint8_t)applied;
        e.cluster = ifs->ifc.cluster;
        memcpy(e.waddr, ifs->ifc.addrs[0].b, 16);
    } else if (!detection_event(dp, kind, prefix, &e)) {
        return 0;
    }
    if (kind != 'p' && kind != 'd' && kind != 's' && e.applied == MOAT_ACTION_BLOCK &&
        e.reason < MOAT_DROP_MAX)
        dp->det_drops[e.reason]++;
    deliver(dp, &e);
    return 0;
}

static int nflog_start(struct datapath *dp)
{
    dp->nfl = nflog_open();
    if (!dp->nfl)
        return errno ? -errno : -EOPNOTSUPP;
    /* Old kernels want the families bound; new ones ignore it. */
    static const uint16_t pfs[] = {AF_INET, AF_INET6, AF_BRIDGE};
    for (size_t i = 0; i < 3; i++) {
        nflog_unbind_pf(dp->nfl, pfs[i]);
        nflog_bind_pf(dp->nfl, pfs[i]);
    }
    dp->nflg = nflog_bind_group(dp->nfl, dp->group);
    if (!dp->nflg)
        return errno ? -errno : -EBUSY;
    if (nflog_set_mode(dp->nflg, NFULNL_COPY_PACKET, 160) < 0)
        return -errno;
    nflog_set_qthresh(dp->nflg, 64);
    nflog_set_timeout(dp->nflg, 2); /* 1/100 s: batches under load, prompt when quiet */
    nflog_set_flags(dp->nflg, NFULNL_CFG_F_SEQ);
    nflog_callback_register(dp->nflg, on_nflog, dp);
    dp->nfl_fd = nflog_fd(dp->nfl);
    int size = 8 << 20;
    setsockopt(dp->nfl_fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
    fcntl(dp->nfl_fd, F_SETFL, fcntl(dp->nfl_fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* ---------- bridge: L2 guards and MAC learning ---------- */

/*
 * ebtables, per workload port: what it may send (nat PREROUTING, before the
 * bridge learns its source MAC): its learned MAC only, ARP for its own IPv4
 * addresses, IPv4/IPv6/ARP only; and what it may be sent (filter FORWARD and
 * OUTPUT: frames bridged or routed to it): addressed to it or to a group.
 */
static void ebt_port(struct ipt_text *o, const struct ifslot *s, bool add)
{
    const struct ipt_iface *ifc = &s->ifc;
    int k = ifc->ifindex;
    ipt_text_add(o, "*nat\n");
    if (!add) {
        ipt_text_add(o, "-D PREROUTING -i %s -j MOATE-F%d\n-F MOATE-F%d\n-X MOATE-F%d\n", ifc->name,
                     k, k, k);
        ipt_text_add(o,
                     "*filter\n-D FORWARD -o %s -j MOATE-T%d\n-D OUTPUT -o %s -j MOATE-T%d\n"
                     "-F MOATE-T%d\n-X MOATE-T%d\n",
                     ifc->name, k, ifc->name, k, k, k);
        return;
    }
    ipt_text_add(o, "-F MOATE-F%d\n", k);
    if (s->mac_known) {
        const uint8_t *m = s->mac;
        ipt_text_add(o, "-A MOATE-F%d -s ! %02x:%02x:%02x:%02x:%02x:%02x -j MOATE-X-MAC\n", k, m[0],
                     m[1], m[2], m[3], m[4], m[5]);
        ipt_text_add(o,
                     "-A MOATE-F%d -p ARP --arp-mac-src ! %02x:%02x:%02x:%02x:%02x:%02x -j "
                     "MOATE-X-ARP\n",
                     k, m[0], m[1], m[2], m[3], m[4], m[5]);
    }
    ipt_text_add(o, "-A MOATE-F%d -s Multicast -j MOATE-X-MAC\n", k);
    for (size_t i = 0; i < ifc->naddrs; i++) {
        if (!addr_is_v4(&ifc->addrs[i]))
            continue;
        char a[MOAT_ADDR_STRLEN];
        addr_format(&ifc->addrs[i], a, sizeof(a));
        ipt_text_add(o, "-A MOATE-F%d -p ARP --arp-ip-src %s -j RETURN\n", k, a);
    }
    ipt_text_add(o, "-A MOATE-F%d -p ARP --arp-ip-src 0.0.0.0 -j RETURN\n", k);
    ipt_text_add(o, "-A MOATE-F%d -p ARP -j MOATE-X-ARP\n", k);
    ipt_text_add(o, "-A MOATE-F%d -p IPv4 -j RETURN\n-A MOATE-F%d -p IPv6 -j RETURN\n", k, k);
    ipt_text_add(o, "-A MOATE-F%d -j MOATE-X-ETH\n", k);
    ipt_text_add(o, "*filter\n-F MOATE-T%d\n", k);
    for (size_t i = 0; i < ifc->naddrs; i++) {
        char a[MOAT_ADDR_STRLEN];
        bool v4 = addr_is_v4(&ifc->addrs[i]);
        addr_format(&ifc->addrs[i], a, sizeof(a));
        ipt_text_add(o, "-A MOATE-T%d -p %s --%s %s -j RETURN\n", k, v4 ? "IPv4" : "IPv6",
                     v4 ? "ip-dst" : "ip6-dst", a);
    }
    ipt_text_add(o, "-A MOATE-T%d -p IPv6 --ip6-dst fe80::/10 -j RETURN\n", k);
    ipt_text_add(o, "-A MOATE-T%d -d Multicast -j RETURN\n-A MOATE-T%d -p ARP -j RETURN\n", k, k);
    ipt_text_add(o, "-A MOATE-T%d -j MOATE-X-NOTADDR\n", k);
}

static int ebt_apply(struct datapath *dp, const struct ifslot *s, bool add)
{
    struct ipt_text o = {0};
    char err[256];
    int k = s->ifc.ifindex, rc = 0;
    if (add) {
        /* Chains first (an existing one is only flushed below), the jumps once. */
        struct ipt_text have = {0};
        char *argv[] = {dp->tool[T_EBTABLES], "-t", "nat", "-L", "PREROUTING", NULL};
        run_tool(argv, "", 0, &have, NULL, 0);
        char want[64];
        snprintf(want, sizeof(want), "-i %s -j MOATE-F%d", s->ifc.name, k);
        bool jumps = have.s && strstr(have.s, want);
        ipt_text_free(&have);
        char f[32], t[32];
        snprintf(f, sizeof(f), "MOATE-F%d", k);
        snprintf(t, sizeof(t), "MOATE-T%d", k);
        char *nf[] = {dp->tool[T_EBTABLES], "-t", "nat", "-N", f, "-P", "RETURN", NULL};
        char *nt[] = {dp->tool[T_EBTABLES], "-t", "filter", "-N", t, "-P", "RETURN", NULL};
        run_tool(nf, "", 0, NULL, NULL, 0); /* fails when it exists: fine */
        run_tool(nt, "", 0, NULL, NULL, 0);
        ebt_port(&o, s, true);
        if (!jumps)
            ipt_text_add(&o,
                         "*nat\n-A PREROUTING -i %s -j MOATE-F%d\n*filter\n-A FORWARD -o %s -j "
                         "MOATE-T%d\n-A OUTPUT -o %s -j MOATE-T%d\n",
                         s->ifc.name, k, s->ifc.name, k, s->ifc.name, k);
    } else {
        ebt_port(&o, s, false);
    }
    rc = o.err ? o.err : ebt_input(dp, &o, err, sizeof(err));
    if (rc && add)
        fprintf(stderr, "moatd: error: interface '%s': ebtables: %s\n", s->ifc.name, err);
    ipt_text_free(&o);
    return add ? rc : 0;
}

/*
 * The bridge learns a port's MAC from its first frame; the first one it
 * learned that no other port of ours owns becomes the port's (as the eBPF
 * datapath learns it from the first frame), and from then on frames from
 * another MAC are dropped before the bridge learns from them.
 */
static void learn_macs(struct datapath *dp)
{
    bool need = false;
    for (size_t i = 0; i < dp->nifs && !need; i++)
        need = !dp->ifs[i].mac_known;
    uint64_t now = mono_ns();
    if (!need || now - dp->learned_at < LEARN_EVERY)
        return;
    dp->learned_at = now;
    if (dp->rtnl < 0)
        dp->rtnl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (dp->rtnl < 0)
        return;
    struct {
        struct nlmsghdr nh;
        struct ndmsg nd;
    } req = {.nh = {.nlmsg_len = sizeof(req),
                    .nlmsg_type = RTM_GETNEIGH,
                    .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                    .nlmsg_seq = (uint32_t)now},
             .nd = {.ndm_family = AF_BRIDGE}};
    if (send(dp->rtnl, &req, sizeof(req), 0) < 0)
        return;
    char buf[32768];
    bool done = false;
    while (!done) {
        struct pollfd pf = {.fd = dp->rtnl, .events = POLLIN};
        if (poll(&pf, 1, 200) <= 0)
            break;
        ssize_t n = recv(dp->rtnl, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                done = true;
                break;
            }
            if (h->nlmsg_type != RTM_NEWNEIGH)
                continue;
            struct ndmsg *nd = NLMSG_DATA(h);
            if (nd->ndm_state & NUD_PERMANENT)
                continue; /* the port's own address, or a static one */
            struct ifslot *s = iface_by_index(dp, (uint32_t)nd->ndm_ifindex);
            if (!s || s->mac_known)
                continue;
            int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*nd)));
            for (struct rtattr *a = (struct rtattr *)((char *)nd + NLMSG_ALIGN(sizeof(*nd)));
                 RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
                if (a->rta_type != NDA_LLADDR || RTA_PAYLOAD(a) != 6)
                    continue;
                const uint8_t *mac = RTA_DATA(a);
                if (mac[0] & 1)
                    continue;
                bool owned = false;
                for (size_t i = 0; i < dp->nifs && !owned; i++)
                    owned = dp->ifs[i].mac_known && memcmp(dp->ifs[i].mac, mac, 6) == 0;
                if (owned)
                    continue;
                memcpy(s->mac, mac, 6);
                s->mac_known = true;
                ebt_apply(dp, s, true);
            }
        }
    }
}

/* The MAC a previous moatd learned, from its rule ("-s ! MAC -j MOATE-X-MAC"). */
static void mac_read_back(struct datapath *dp, struct ifslot *s)
{
    struct ipt_text have = {0};
    char chain[32];
    snprintf(chain, sizeof(chain), "MOATE-F%d", s->ifc.ifindex);
    char *argv[] = {dp->tool[T_EBTABLES], "-t", "nat", "-L", chain, NULL};
    if (run_tool(argv, "", 0, &have, NULL, 0) == 0 && have.s) {
        const char *m = strstr(have.s, "-s ! ");
        unsigned v[6];
        if (m &&
            sscanf(m, "-s ! %x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6) {
            for (int i = 0; i < 6; i++)
                s->mac[i] = (uint8_t)v[i];
            s->mac_known = true;
        }
    }
    ipt_text_free(&have);
}

/* ---------- probe ---------- */

static bool readable(const char *path)
{
    return access(path, R_OK) == 0;
}

static int probe_iptables(char *why, size_t n)
{
    char tool[NTOOLS][256], missing[512];
    size_t len = 0;
    why[0] = '\0';
    if (tools_find(tool, missing, sizeof(missing)) != 0)
        len +=
            (size_t)snprintf(why, n, "the tools %s (packages iptables, ipset, ebtables)", missing);
    if (!readable("/proc/net/ip_tables_names") && !readable("/proc/net/netfilter") && len < n)
        len += (size_t)snprintf(why + len, n - len, "%snetfilter", len ? "; " : "");
    if (!readable("/proc/sys/net/bridge/bridge-nf-call-iptables") && len < n)
        len += (size_t)snprintf(why + len, n - len,
                                "%sbridge netfilter (br_netfilter: bridge-nf-call-iptables)",
                                len ? "; " : "");
    if (!len) {
        char *argv[] = {tool[T_IPSET], "list", "-n", NULL};
        char err[256];
        if (run_tool(argv, "", 0, NULL, err, sizeof(err)) != 0)
            len += (size_t)snprintf(why + len, n - len, "ipset in the kernel (ip_set): %s", err);
    }
    if (!len) {
        /* Every match and target the rules use, checked by the tool without committing. */
        static const char test4[] =
            "*raw\n:MOATPROBE - [0:0]\n-A MOATPROBE -m physdev --physdev-in x -j RETURN\n"
            "COMMIT\n*filter\n:MOATPROBE - [0:0]\n"
            "-A MOATPROBE -m conntrack --ctstate ESTABLISHED -j RETURN\n"
            "-A MOATPROBE -m pkttype ! --pkt-type unicast -j RETURN\n"
            "-A MOATPROBE -m comment --comment x -j NFLOG --nflog-group 1\nCOMMIT\n";
        char *argv[] = {tool[T_IPT_RESTORE], "--test", NULL};
        char err[256];
        if (run_tool(argv, test4, strlen(test4), NULL, err, sizeof(err)) != 0)
            len += (size_t)snprintf(why + len, n - len,
                                    "iptables matches (physdev, conntrack, "
                                    "pkttype, NFLOG): %s",
                                    err);
    }
    if (!len) {
        struct nfct_handle *h = nfct_open(CONNTRACK, 0);
        if (!h)
            len += (size_t)snprintf(why + len, n - len, "conntrack netlink (nf_conntrack_netlink)");
        else
            nfct_close(h);
    }
    return len ? -EOPNOTSUPP : 0;
}

/* ---------- open / close ---------- */

static void sysctl_one(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "1", 1) != 1)
            fprintf(stderr, "moatd: warning: cannot set %s\n", path);
        close(fd);
    }
}

static void close_iptables(struct datapath *dp, bool remove);
static void caps_probe(struct datapath *dp);

static int open_iptables(const char *node, datapath_event_fn on_event, void *ctx,
                         struct datapath **out)
{
    *out = NULL;
    if (!node_name_ok(node))
        return -EINVAL;
    struct datapath *dp = moat_calloc(1, sizeof(*dp));
    if (!dp)
        return -ENOMEM;
    snprintf(dp->node, sizeof(dp->node), "%s", node);
    dp->on_event = on_event;
    dp->ctx = ctx;
    dp->group = group_of(node);
    dp->rtnl = -1;
    dp->nfl_fd = -1;
    char why[512];
    int err = tools_find(dp->tool, why, sizeof(why));
    dp->buckets = err ? NULL : moat_calloc(BUCKETS, sizeof(*dp->buckets));
    dp->bursts = err ? NULL : moat_calloc(BURSTS, sizeof(*dp->bursts));
    dp->scans = err ? NULL : moat_calloc(SCANS, sizeof(*dp->scans));
    if (!err && (!dp->buckets || !dp->bursts || !dp->scans))
        err = -ENOMEM;
    if (!err)
        qmeta_load(node, &dp->qm, &dp->nqm); /* none yet: fine */
    /* Bridged traffic must meet iptables (this namespace's setting). */
    sysctl_one("/proc/sys/net/bridge/bridge-nf-call-iptables");
    sysctl_one("/proc/sys/net/bridge/bridge-nf-call-ip6tables");
    if (!err && on_event)
        err = nflog_start(dp);
    struct ipt_text raw4 = {0}, raw6 = {0}, fil4 = {0}, fil6 = {0}, mgl4 = {0};
    if (!err)
        err = save(dp, 0, "raw", false, &raw4);
    if (!err)
        err = save(dp, 1, "raw", false, &raw6);
    if (!err)
        err = save(dp, 0, "filter", false, &fil4);
    if (!err)
        err = save(dp, 1, "filter", false, &fil6);
    if (!err)
        err = save(dp, 0, "mangle", false, &mgl4);
    struct seen seen = {raw4.s ? raw4.s : "", fil4.s ? fil4.s : "", mgl4.s ? mgl4.s : ""};
    struct ipt_render_out base;
    memset(&base, 0, sizeof(base));
    if (!err)
        err = read_back(dp, seen.v4raw, raw6.s ? raw6.s : "", seen.v4filter);
    if (!err)
        err = ipt_render_base(dp->group, base_exists, &seen, &base);
    char msg[256] = "";
    for (int fam = 0; fam < 2 && !err; fam++)
        err = restore(dp, fam, &base.fam[fam], msg, sizeof(msg));
    if (!err) {
        err = chains_with(seen.v4filter, "MOAT-R", &dp->vchains, &dp->nv, &dp->cap_v);
        if (!err)
            err = chains_with(seen.v4filter, "MOAT-D", &dp->vchains, &dp->nv, &dp->cap_v);
    }
    if (!err) {
        static const char ebt_base[] =
            "*nat\n:MOATE-X-MAC ACCEPT\n:MOATE-X-ARP ACCEPT\n:MOATE-X-ETH ACCEPT\n"
            "*filter\n:MOATE-X-NOTADDR ACCEPT\n";
        struct ipt_text eb = {0};
        struct ipt_text have = {0};
        char *argv[] = {dp->tool[T_EBTABLES], "-t", "nat", "-L", "MOATE-X-MAC", NULL};
        if (run_tool(argv, "", 0, &have, NULL, 0) != 0) {
            ipt_text_add(&eb, "%s", ebt_base);
            ipt_text_add(&eb,
                         "*nat\n-A MOATE-X-MAC --nflog-group %u --nflog-prefix \"moat s %d 1\" -j "
                         "DROP\n-A MOATE-X-ARP --nflog-group %u --nflog-prefix \"moat s %d 1\" -j "
                         "DROP\n-A MOATE-X-ETH -j DROP\n*filter\n-A MOATE-X-NOTADDR -j DROP\n",
                         dp->group, MOAT_DROP_MAC_SPOOF, dp->group, MOAT_DROP_ARP_SPOOF);
            err = eb.err ? eb.err : ebt_input(dp, &eb, msg, sizeof(msg));
        }
        ipt_text_free(&eb);
        ipt_text_free(&have);
    }
    for (size_t i = 0; !err && i < dp->nifs; i++)
        mac_read_back(dp, &dp->ifs[i]);
    if (!err && on_event)
        caps_probe(dp);
    ipt_render_free(&base);
    ipt_text_free(&raw4);
    ipt_text_free(&raw6);
    ipt_text_free(&fil4);
    ipt_text_free(&fil6);
    ipt_text_free(&mgl4);
    if (err) {
        if (*msg)
            fprintf(stderr, "moatd: error: iptables datapath: %s\n", msg);
        close_iptables(dp, false);
        return err;
    }
    if (on_event)
        open_dp = dp;
    *out = dp;
    return 0;
}

/* Removes every chain named MOAT-* in `table` (and the jumps to them), per family. */
static void remove_tables(struct datapath *dp)
{
    for (int fam = 0; fam < 2; fam++)
        for (int tbl = 0; tbl < 3; tbl++) {
            const char *table = tbl == 2 ? "mangle" : tbl ? "filter" : "raw";
            struct ipt_text s = {0}, o = {0};
            char **names = NULL;
            size_t n = 0, cap = 0;
            if (save(dp, fam, table, false, &s) == 0 && s.s &&
                chains_with(s.s, "MOAT-", &names, &n, &cap) == 0 && n) {
                ipt_text_add(&o, "*%s\n", table);
                static const char *const builtins[] = {"PREROUTING", "FORWARD", "OUTPUT"};
                for (size_t b = 0; b < 3; b++)
                    for (const char *l = strstr(s.s, "-A "); l; l = strstr(l + 1, "\n-A ")) {
                        const char *line = *l == '\n' ? l + 1 : l;
                        char chain[32], target[32];
                        if (sscanf(line, "-A %31s -j %31s", chain, target) == 2 &&
                            strcmp(chain, builtins[b]) == 0 && strncmp(target, "MOAT-", 5) == 0)
                            ipt_text_add(&o, "-D %s -j %s\n", chain, target);
                    }
                for (size_t i = 0; i < n; i++)
                    ipt_text_add(&o, "-F %s\n", names[i]);
                for (size_t i = 0; i < n; i++)
                    ipt_text_add(&o, "-X %s\n", names[i]);
                ipt_text_add(&o, "COMMIT\n");
                char err[256];
                if (restore(dp, fam, &o, err, sizeof(err)) != 0)
                    fprintf(stderr, "moatd: warning: removing the %s rules: %s\n",
                            fam ? "ip6tables" : "iptables", err);
            }
            vchains_free(names, n);
            ipt_text_free(&s);
            ipt_text_free(&o);
        }
}

/* Destroys the sets whose names start with `prefix` ("mt-": all of moat's). */
static void destroy_sets(struct datapath *dp, const char *prefix)
{
    struct ipt_text list = {0}, o = {0};
    char *argv[] = {dp->tool[T_IPSET], "list", "-n", NULL};
    if (run_tool(argv, "", 0, &list, NULL, 0) == 0 && list.s)
        for (char *save_ptr = NULL, *l = strtok_r(list.s, "\n", &save_ptr); l;
             l = strtok_r(NULL, "\n", &save_ptr))
            if (strncmp(l, prefix, strlen(prefix)) == 0)
                ipt_text_add(&o, "destroy %s\n", l);
    char err[256];
    if (o.n && ipset_input(dp, &o, err, sizeof(err)) != 0)
        fprintf(stderr, "moatd: warning: removing sets: %s\n", err);
    ipt_text_free(&list);
    ipt_text_free(&o);
}

static void remove_bridge(struct datapath *dp)
{
    struct ipt_text s = {0}, o = {0};
    char *argv[] = {dp->tool[T_EBT_RESTORE], NULL};
    (void)argv;
    char save_path[256];
    snprintf(save_path, sizeof(save_path), "%s-save", dp->tool[T_EBTABLES]);
    char *sv[] = {save_path, NULL};
    if (run_tool(sv, "", 0, &s, NULL, 0) == 0 && s.s) {
        const char *table = NULL;
        char **names = NULL;
        size_t n = 0, cap = 0;
        /* per table: jumps, then flush and delete the chains */
        for (char *save_ptr = NULL, *l = strtok_r(s.s, "\n", &save_ptr); l;
             l = strtok_r(NULL, "\n", &save_ptr)) {
            if (l[0] == '*') {
                for (size_t i = 0; i < n; i++)
                    ipt_text_add(&o, "-F %s\n-X %s\n", names[i], names[i]);
                vchains_free(names, n);
                names = NULL;
                n = cap = 0;
                table = l;
                ipt_text_add(&o, "%s\n", table);
            } else if (l[0] == ':' && strncmp(l + 1, "MOATE-", 6) == 0) {
                char *name = moat_strndup(l + 1, strcspn(l + 1, " "));
                if (name && moat_grow(&names, &cap, n + 1, sizeof(*names)) == 0)
                    names[n++] = name;
                else
                    free(name);
            } else if (strncmp(l, "-A ", 3) == 0 && strstr(l, "-j MOATE-") &&
                       strncmp(l, "-A MOATE-", 9) != 0) {
                ipt_text_add(&o, "-D %s\n", l + 3);
            }
        }
        for (size_t i = 0; i < n; i++)
            ipt_text_add(&o, "-F %s\n-X %s\n", names[i], names[i]);
        vchains_free(names, n);
        char err[256];
        if (table && ebt_input(dp, &o, err, sizeof(err)) != 0)
            fprintf(stderr, "moatd: warning: removing the ebtables rules: %s\n", err);
    }
    ipt_text_free(&s);
    ipt_text_free(&o);
}

static void close_iptables(struct datapath *dp, bool remove)
{
    if (!dp)
        return;
    if (remove) {
        remove_tables(dp);
        destroy_sets(dp, "mt-");
        remove_bridge(dp);
    }
    if (dp->nflg)
        nflog_unbind_group(dp->nflg);
    if (dp->nfl)
        nflog_close(dp->nfl);
    if (dp->rtnl >= 0)
        close(dp->rtnl);
    if (remove) {
        char path[256];
        snprintf(path, sizeof(path), QMETA_PATH, dp->node);
        unlink(path);
    }
    if (open_dp == dp)
        open_dp = NULL;
    vchains_free(dp->vchains, dp->nv);
    free(dp->ifs);
    free(dp->buckets);
    free(dp->bursts);
    free(dp->scans);
    free(dp->threats);
    free(dp->qm);
    free(dp);
}

static int unpin_iptables(const char *node)
{
    /* The namespace is gone, and its chains and sets with it. */
    return node_name_ok(node) ? 0 : -EINVAL;
}

/* ---------- apply ---------- */

static size_t iface_count(const struct datapath *dp, struct ipt_iface **out)
{
    *out = moat_calloc(dp->nifs ? dp->nifs : 1, sizeof(**out));
    for (size_t i = 0; *out && i < dp->nifs; i++)
        (*out)[i] = dp->ifs[i].ifc;
    return *out ? dp->nifs : 0;
}

/* The "*TABLE" ... "COMMIT" part of iptables-save text `all`, as a new string ("" if none). */
static char *section_dup(const char *all, const char *table)
{
    char head[32];
    snprintf(head, sizeof(head), "*%s\n", table);
    const char *start = all ? strstr(all, head) : NULL;
    if (start && start != all && start[-1] != '\n')
        start = NULL;
    if (!start)
        return moat_strdup("");
    const char *end = strstr(start, "\nCOMMIT");
    return moat_strndup(start, end ? (size_t)(end - start) + 1 : strlen(start));
}

/* Flushes and deletes the chains of slot `s` and the verdict chains nothing uses now. */
static void drop_slot(struct datapath *dp, char s, char **keep, size_t nkeep)
{
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "MOAT-%c-", s);
    struct strset kept_set;
    if (names_set(keep, nkeep, &kept_set) < 0) {
        fprintf(stderr, "moatd: warning: removing slot %c: out of memory\n", s);
        return;
    }
    for (int fam = 0; fam < 2; fam++) {
        struct ipt_text all = {0};
        save(dp, fam, NULL, false, &all); /* once per family: a large slot takes a while */
        for (int tbl = 0; tbl < 3; tbl++) {
            const char *table = tbl == 2 ? "mangle" : tbl ? "filter" : "raw";
            struct ipt_text o = {0};
            char **names = NULL;
            size_t n = 0, cap = 0;
            char *sv = section_dup(all.s, table);
            if (sv) {
                chains_with(sv, prefix, &names, &n, &cap);
                if (tbl == 1) {
                    chains_with(sv, "MOAT-R", &names, &n, &cap);
                    chains_with(sv, "MOAT-D", &names, &n, &cap);
                }
            }
            size_t m = 0;
            for (size_t i = 0; i < n; i++) {
                if (strset_has(&kept_set, names[i]))
                    free(names[i]);
                else
                    names[m++] = names[i];
            }
            if (m) {
                ipt_text_add(&o, "*%s\n", table);
                for (size_t i = 0; i < m; i++)
                    ipt_text_add(&o, "-F %s\n", names[i]);
                for (size_t i = 0; i < m; i++)
                    ipt_text_add(&o, "-X %s\n", names[i]);
                ipt_text_add(&o, "COMMIT\n");
                char err[256];
                if (restore(dp, fam, &o, err, sizeof(err)) != 0)
                    fprintf(stderr, "moatd: warning: removing slot %c: %s\n", s, err);
            }
            vchains_free(names, m);
            free(sv);
            ipt_text_free(&o);
        }
        ipt_text_free(&all);
    }
    strset_clear(&kept_set);
    char sp[16];
    snprintf(sp, sizeof(sp), "mt-%c-", s);
    destroy_sets(dp, sp);
}

struct cut_ctx {
    struct datapath *dp; /* NULL: by address only (no policy known) */
    struct nf_conntrack **doomed;
    struct moat_event *why;
    size_t n, cap;
    bool by_addr; /* a quarantine's: the flows of `addr` with cluster `cluster`'s workloads */
    uint32_t cluster;
    struct moat_addr addr;
};

/* The cluster index of this node's workload at `a`, or UINT32_MAX. */
static uint32_t local_cluster(const struct datapath *dp, const struct moat_addr *a)
{
    const struct moat_policy *p = dp ? dp->p : NULL;
    for (size_t w = 0; p && w < p->nworkloads; w++) {
        const struct moat_workload *wl = &p->workloads[w];
        if (!wl->node || strcmp(wl->node, dp->node) != 0)
            continue;
        for (size_t i = 0; i < wl->naddrs; i++)
            if (memcmp(wl->addrs[i].b, a->b, 16) == 0)
                return wl->cluster;
    }
    return UINT32_MAX;
}

/* A flow whose peer is listed where the cluster blocks listed addresses: its threat event. */
static bool threat_cut(const struct datapath *dp, const struct moat_addr *local,
                       const struct moat_addr *peer, uint8_t dir, struct moat_event *e)
{
    uint32_t k = local_cluster(dp, local);
    const struct moat_cluster *cl = k == UINT32_MAX ? NULL : cluster_at(dp, k);
    if (!cl || !cl->defense || !cl->det.threat_intel.c.enabled ||
        cl->det.threat_intel.c.action != MOAT_ACTION_BLOCK || cl->mode == MOAT_MODE_MONITOR ||
        k >= dp->nthreats)
        return false;
    const struct moat_threat *t = threatlist_lookup(dp->threats[k], peer);
    if (!t)
        return false;
    e->kind = MOAT_EV_THREAT;
    e->reason = MOAT_DROP_THREAT;
    e->cluster = k;
    e->dir = dir;
    e->action = e->applied = MOAT_ACTION_BLOCK;
    e->aux = t->label;
    memcpy(e->waddr, t->prefix.addr.b, 16);
    e->count = t->prefix.len;
    return true;
}

static bool is_local_addr(const struct datapath *dp, const struct moat_addr *a)
{
    const struct moat_policy *p = dp->p;
    for (size_t w = 0; w < p->nworkloads; w++) {
        const struct moat_workload *wl = &p->workloads[w];
        if (!wl->node || strcmp(wl->node, dp->node) != 0)
            continue;
        for (size_t i = 0; i < wl->naddrs; i++)
            if (memcmp(wl->addrs[i].b, a->b, 16) == 0)
                return true;
    }
    return false;
}

/* Keeps flow `ct` to be deleted, with its event `e`. */
static int doom(struct cut_ctx *c, struct nf_conntrack *ct, const struct moat_event *e)
{
    if (moat_grow(&c->doomed, &c->cap, c->n + 1, sizeof(*c->doomed)) < 0)
        return NFCT_CB_CONTINUE;
    struct moat_event *w = moat_reallocarray(c->why, c->cap, sizeof(*c->why));
    if (!w)
        return NFCT_CB_CONTINUE;
    c->why = w;
    c->why[c->n] = *e;
    c->doomed[c->n++] = ct;
    return NFCT_CB_STOLEN;
}

static int on_ct(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
    (void)type;
    struct cut_ctx *c = data;
    struct moat_addr src, dst;
    uint8_t l3 = nfct_get_attr_u8(ct, ATTR_L3PROTO);
    if (l3 == AF_INET) {
        uint32_t s = nfct_get_attr_u32(ct, ATTR_IPV4_SRC), d = nfct_get_attr_u32(ct, ATTR_IPV4_DST);
        map4(src.b, (const uint8_t *)&s);
        map4(dst.b, (const uint8_t *)&d);
    } else if (l3 == AF_INET6) {
        memcpy(src.b, nfct_get_attr(ct, ATTR_IPV6_SRC), 16);
        memcpy(dst.b, nfct_get_attr(ct, ATTR_IPV6_DST), 16);
    } else {
        return NFCT_CB_CONTINUE;
    }
    uint8_t proto = nfct_get_attr_u8(ct, ATTR_L4PROTO);
    uint16_t sport = 0, dport = 0;
    if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
        sport = ntohs(nfct_get_attr_u16(ct, ATTR_PORT_SRC));
        dport = ntohs(nfct_get_attr_u16(ct, ATTR_PORT_DST));
    }
    struct moat_event te = {.ts_ns = mono_ns(), .proto = proto, .sport = sport, .dport = dport};
    memcpy(te.saddr, src.b, 16);
    memcpy(te.daddr, dst.b, 16);
    if (c->by_addr) {
        bool from = memcmp(src.b, c->addr.b, 16) == 0, to = memcmp(dst.b, c->addr.b, 16) == 0;
        if (!from && !to)
            return NFCT_CB_CONTINUE;
        if (c->dp && local_cluster(c->dp, from ? &dst : &src) != c->cluster)
            return NFCT_CB_CONTINUE;
        te.kind = 0; /* no event: the quarantine's attempts are its events */
        return doom(c, ct, &te);
    }
    if (c->dp->nthreats && (threat_cut(c->dp, &dst, &src, MOAT_ABI_DIR_INGRESS, &te) ||
                            threat_cut(c->dp, &src, &dst, MOAT_ABI_DIR_EGRESS, &te)))
        return doom(c, ct, &te);
    struct moat_verdict v = {0};
    enum moat_dir dir = MOAT_DIR_INGRESS;
    if (is_local_addr(c->dp, &dst))
        tables_decide(c->dp->t, MOAT_DIR_INGRESS, &src, &dst, proto, dport, &v);
    if (!(v.applies && v.applied == MOAT_ACTION_BLOCK) && is_local_addr(c->dp, &src)) {
        dir = MOAT_DIR_EGRESS;
        tables_decide(c->dp->t, MOAT_DIR_EGRESS, &src, &dst, proto, dport, &v);
    }
    if (!v.applies || v.defense_off || v.applied != MOAT_ACTION_BLOCK)
        return NFCT_CB_CONTINUE;
    struct moat_event e = {.ts_ns = mono_ns(),
                           .kind = MOAT_EV_CUT,
                           .reason = MOAT_DROP_CUT,
                           .dir = (uint8_t)dir,
                           .action = (uint8_t)v.action,
                           .applied = (uint8_t)v.applied,
                           .proto = proto,
                           .rule_id = v.rule_id,
                           .cluster = v.cluster,
                           .sport = sport,
                           .dport = dport};
    memcpy(e.saddr, src.b, 16);
    memcpy(e.daddr, dst.b, 16);
    return doom(c, ct, &e);
}

/* Runs a conntrack dump through on_ct and deletes what it kept, telling each cut flow's event. */
static void cut_run(struct cut_ctx *c)
{
    struct nfct_handle *h = nfct_open(CONNTRACK, 0);
    if (!h)
        return;
    nfct_callback_register(h, NFCT_T_ALL, on_ct, c);
    uint32_t family = AF_UNSPEC;
    nfct_query(h, NFCT_Q_DUMP, &family);
    nfct_callback_unregister(h);
    for (size_t i = 0; i < c->n; i++) {
        if (nfct_query(h, NFCT_Q_DESTROY, c->doomed[i]) == 0 && c->dp && c->why[i].kind)
            deliver(c->dp, &c->why[i]);
        nfct_destroy(c->doomed[i]);
    }
    free(c->doomed);
    free(c->why);
    nfct_close(h);
}

/* A quarantine's start: the source's flows with the cluster's workloads here are cut. */
static void cut_addr(const char *node, uint32_t cluster, const struct moat_addr *a)
{
    struct datapath *dp = open_dp && strcmp(open_dp->node, node) == 0 ? open_dp : NULL;
    struct cut_ctx c = {.dp = dp, .by_addr = true, .cluster = cluster, .addr = *a};
    cut_run(&c);
}

/*
 * Established flows the new policy blocks are cut: their conntrack entries
 * are deleted, so their next packet is judged as a new flow and dropped
 * (the ESTABLISHED rule comes first, and would let them on otherwise).
 */
static void cut_flows(struct datapath *dp)
{
    struct cut_ctx c = {.dp = dp};
    cut_run(&c);
}

/*
 * What the detections need beyond the probe's features, committed for real
 * (a `--test` would not ask the kernel) in a chain no rule jumps to, then
 * removed: xt_hashlimit (brute force), hash:ip,port,ip and the SET target
 * (port scans). A kernel without them still enforces; those detections are
 * left out and the node says why (detection_gap).
 */
static const char *caps_missing_hashlimit, *caps_missing_scan;

static void caps_probe(struct datapath *dp)
{
    static const char hl[] =
        "*filter\n:MOAT-X-PROBE - [0:0]\n-A MOAT-X-PROBE -p tcp -m multiport --dports 1,2 -m "
        "hashlimit --hashlimit-above 1/second --hashlimit-burst 2 --hashlimit-mode "
        "srcip,dstip,dstport --hashlimit-name mbprobe --hashlimit-htable-expire 1000 -j RETURN\n"
        "COMMIT\n*filter\n-F MOAT-X-PROBE\n-X MOAT-X-PROBE\nCOMMIT\n";
    struct ipt_text t = {.s = (char *)hl, .n = sizeof(hl) - 1};
    char msg[256];
    dp->no_hashlimit = false;
    for (int fam = 0; fam < 2 && !dp->no_hashlimit; fam++)
        dp->no_hashlimit = restore(dp, fam, &t, msg, sizeof(msg)) != 0;
    static const char sets[] = "create mt-X-probe hash:ip,port,ip family inet timeout 1 -exist\n";
    static const char scan[] = "*filter\n:MOAT-X-PROBE - [0:0]\n-A MOAT-X-PROBE -m set ! "
                               "--match-set mt-X-probe src,dst,dst -j SET --add-set mt-X-probe "
                               "src,dst,dst\nCOMMIT\n*filter\n-F MOAT-X-PROBE\n-X "
                               "MOAT-X-PROBE\nCOMMIT\n";
    struct ipt_text st = {.s = (char *)sets, .n = sizeof(sets) - 1};
    struct ipt_text sc = {.s = (char *)scan, .n = sizeof(scan) - 1};
    dp->no_scan_sets =
        ipset_input(dp, &st, msg, sizeof(msg)) != 0 || restore(dp, 0, &sc, msg, sizeof(msg)) != 0;
    ipset_run("destroy mt-X-probe\n", NULL, "restore");
    caps_missing_hashlimit =
        dp->no_hashlimit ? "the kernel lacks the hashlimit match (xt_hashlimit)" : NULL;
    caps_missing_scan =
        dp->no_scan_sets ? "the kernel lacks ipset hash:ip,port,ip or the SET target" : NULL;
    if (dp->no_hashlimit || dp->no_scan_sets)
        fprintf(stderr, "moatd: warning: iptables datapath: %s%s%s: left out\n",
                dp->no_hashlimit ? "brute force (no hashlimit match)" : "",
                dp->no_hashlimit && dp->no_scan_sets ? ", " : "",
                dp->no_scan_sets ? "port scans (no hash:ip,port,ip set or SET target)" : "");
}

/* ipt_detection_gap, and what the kernel lacks (caps_probe). */
static const char *detection_gap_iptables(const struct moat_cluster *cl, const char *name,
                                          bool *partly)
{
    *partly = false;
    if (strcmp(name, "brute_force") == 0 && cl->det.brute_force.c.enabled && caps_missing_hashlimit)
        return caps_missing_hashlimit;
    if (strcmp(name, "port_scan") == 0 && cl->det.port_scan.c.enabled && caps_missing_scan)
        return caps_missing_scan;
    return ipt_detection_gap(cl, name, partly);
}

static int apply_iptables(struct datapath *dp, const struct moat_policy *p,
                          const struct moat_tables *t, uint32_t *generation)
{
    char slot = dp->slot == 'A' ? 'B' : 'A';
    uint32_t gen = dp->generation == UINT32_MAX ? 1 : dp->generation + 1;
    struct ipt_iface *ifs;
    size_t nifs = iface_count(dp, &ifs);
    if (!ifs)
        return -ENOMEM;
    struct ipt_render_in in = {.p = p,
                               .t = t,
                               .node = dp->node,
                               .slot = slot,
                               .generation = gen,
                               .nflog_group = dp->group,
                               .ifs = ifs,
                               .nifs = nifs,
                               .chain_exists = vchain_exists};
    struct strset known;
    if (names_set(dp->vchains, dp->nv, &known) < 0) {
        free(ifs);
        return -ENOMEM;
    }
    in.ctx = &known;
    struct strset sets;
    int err = sets_known(dp, &sets);
    if (err) {
        strset_clear(&known);
        free(ifs);
        return err;
    }
    in.set_exists = vchain_exists;
    in.set_ctx = &sets;
    in.no_hashlimit = dp->no_hashlimit;
    in.no_scan_sets = dp->no_scan_sets;
    struct ipt_render_out out;
    err = ipt_render(&in, &out);
    strset_clear(&known);
    strset_clear(&sets);
    free(ifs);
    if (err)
        return err;
    char msg[256] = "";
    destroy_sets(dp, slot == 'A' ? "mt-A-" : "mt-B-"); /* a failed apply's leftovers */
    err = ipset_input(dp, &out.sets, msg, sizeof(msg));
    if (err)
        fprintf(stderr, "moatd: error: iptables datapath: ipset: %s\n", msg);
    int done = 0;
    for (int fam = 0; fam < 2 && !err; fam++) {
        err = restore(dp, fam, &out.fam[fam], msg, sizeof(msg));
        if (err)
            fprintf(stderr, "moatd: error: iptables datapath: %s: %s\n",
                    fam ? "ip6tables-restore" : "iptables-restore", msg);
        else
            done++;
    }
    if (err) {
        if (done && dp->slot) {
            /* IPv4 switched, IPv6 not: point IPv4 back at the slot in force. */
            struct ipt_text back = {0};
            ipt_text_add(&back,
                         "*raw\n:MOAT-PRE - [0:0]\n-A MOAT-PRE -j MOAT-%c-PRE\nCOMMIT\n*filter\n"
                         ":MOAT-FWD - [0:0]\n:MOAT-OUT - [0:0]\n-A MOAT-FWD -m comment --comment "
                         "\"moat node %s generation %u\" -j MOAT-%c-FWD\n-A MOAT-OUT -j "
                         "MOAT-%c-OUT\nCOMMIT\n",
                         dp->slot, dp->node, dp->generation, dp->slot, dp->slot);
            restore(dp, 0, &back, msg, sizeof(msg));
            ipt_text_free(&back);
        }
        drop_slot(dp, slot, dp->vchains, dp->nv);
        ipt_render_free(&out);
        return err;
    }
    char old = dp->slot;
    vchains_free(dp->vchains, dp->nv);
    dp->vchains = out.verdict_chains;
    dp->nv = out.nverdict;
    dp->cap_v = out.cap_verdict;
    out.verdict_chains = NULL;
    out.nverdict = out.cap_verdict = 0;
    ipt_render_free(&out);
    dp->slot = slot;
    dp->generation = gen;
    dp->p = p;
    dp->t = t;
    drop_slot(dp, old ? old : (slot == 'A' ? 'B' : 'A'), dp->vchains, dp->nv);
    cut_flows(dp);
    *generation = gen;
    return 0;
}

/*
 * The threat lists, each family's set built aside and swapped in (ipset swap:
 * a lookup meets the old list or the new one); then flows in progress to or
 * from a newly listed address, where the cluster blocks, are cut.
 */
static int set_threats_iptables(struct datapath *dp, struct moat_threatlist *const *lists, size_t n)
{
    struct strset sets;
    int err = sets_known(dp, &sets);
    if (err)
        return err;
    struct ipt_text text = {0};
    err = ipt_render_threats(lists, n, vchain_exists, &sets, &text);
    strset_clear(&sets);
    char msg[256] = "";
    if (!err)
        err = ipset_input(dp, &text, msg, sizeof(msg));
    ipt_text_free(&text);
    if (err) {
        fprintf(stderr, "moatd: error: iptables datapath: threat lists: %s\n", msg);
        return err;
    }
    struct moat_threatlist **copy = moat_calloc(n ? n : 1, sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        copy[i] = lists[i];
    free(dp->threats);
    dp->threats = copy;
    dp->nthreats = n;
    if (dp->p)
        cut_flows(dp);
    return 0;
}

/* ---------- interfaces ---------- */

static struct ifslot *iface_by_name(struct datapath *dp, const char *name)
{
    for (size_t i = 0; i < dp->nifs; i++)
        if (strcmp(dp->ifs[i].ifc.name, name) == 0)
            return &dp->ifs[i];
    return NULL;
}

static int iface_rules(struct datapath *dp, const struct ipt_iface *ifc, bool add)
{
    if (!dp->slot || !dp->p)
        return 0; /* no policy yet: the first apply renders it */
    struct ipt_render_in in = {.p = dp->p,
                               .t = dp->t,
                               .node = dp->node,
                               .slot = dp->slot,
                               .generation = dp->generation,
                               .nflog_group = dp->group};
    struct ipt_render_out out;
    int err = ipt_render_iface(&in, ifc, add, &out);
    char msg[256] = "";
    for (int fam = 0; fam < 2 && !err; fam++)
        err = restore(dp, fam, &out.fam[fam], msg, sizeof(msg));
    if (err && add)
        fprintf(stderr, "moatd: error: interface '%s': %s\n", ifc->name, msg);
    ipt_render_free(&out);
    return add ? err : 0;
}

static bool same_iface(const struct ipt_iface *a, const struct ipt_iface *b)
{
    return a->ifindex == b->ifindex && a->cluster == b->cluster && a->naddrs == b->naddrs &&
           memcmp(a->addrs, b->addrs, a->naddrs * sizeof(a->addrs[0])) == 0;
}

/*
 * Takes moatd's hold (tc programs that drop everything, put on a new
 * container's interface before it is identified: hold.h) off an interface
 * whose rules are in force now. Without this the container would stay held:
 * this datapath judges in netfilter and has no tc program to replace the
 * hold with. A kernel without tc BPF has no hold to take off.
 */
static int release_hold(const char *ifname)
{
    int n = hold_release(ifname);
    return n < 0 && n != -ENODEV ? n : 0;
}

static int attach_iptables(struct datapath *dp, const char *ifname, uint32_t cluster,
                           const struct moat_addr *addrs, size_t naddrs)
{
    int ifindex = (int)if_nametoindex(ifname);
    if (!ifindex)
        return -ENODEV;
    if (naddrs == 0)
        return -EDESTADDRREQ;
    struct ipt_iface ifc;
    memset(&ifc, 0, sizeof(ifc));
    snprintf(ifc.name, sizeof(ifc.name), "%s", ifname);
    ifc.ifindex = ifindex;
    ifc.cluster = cluster;
    for (size_t i = 0; i < naddrs && i < IPT_IFACE_ADDRS; i++)
        ifc.addrs[ifc.naddrs++] = addrs[i];
    struct ifslot *s = iface_by_name(dp, ifname);
    if (s && same_iface(&s->ifc, &ifc))
        return release_hold(ifname);
    if (s) {
        iface_rules(dp, &s->ifc, false);
        if (s->ifc.ifindex != ifindex) {
            ebt_apply(dp, s, false);
            s->mac_known = false;
        }
    }
    int err = add_iface(dp, &ifc);
    s = err ? NULL : iface_by_name(dp, ifname);
    if (s && !s->mac_known)
        mac_read_back(dp, s);
    if (s)
        err = ebt_apply(dp, s, true);
    if (!err)
        err = iface_rules(dp, &ifc, true);
    return err ? err : release_hold(ifname);
}

static int detach_iptables(struct datapath *dp, const char *ifname)
{
    struct ifslot *s = iface_by_name(dp, ifname);
    if (!s)
        return -ENOENT;
    iface_rules(dp, &s->ifc, false);
    ebt_apply(dp, s, false);
    *s = dp->ifs[--dp->nifs];
    return 0;
}

/* ---------- events, counters ---------- */

static int poll_iptables(struct datapath *dp, int timeout_ms)
{
    if (dp->nfl_fd >= 0) {
        struct pollfd p = {.fd = dp->nfl_fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) > 0) {
            char buf[65536] __attribute__((aligned));
            for (int i = 0; i < 256; i++) { /* bounded: the main loop has other work */
                ssize_t n = recv(dp->nfl_fd, buf, sizeof(buf), 0);
                if (n < 0 && errno == ENOBUFS)
                    continue; /* messages lost; the sequence numbers count them */
                if (n <= 0)
                    break;
                nflog_handle_packet(dp->nfl, buf, (int)n);
            }
        }
    }
    report_idle(dp);
    learn_macs(dp);
    return 0;
}

static int event_fd_iptables(struct datapath *dp)
{
    return dp->nfl_fd;
}

static uint32_t generation_iptables(struct datapath *dp)
{
    return dp->generation;
}

static int prog_fd_iptables(struct datapath *dp, bool to_workload)
{
    (void)dp;
    (void)to_workload;
    return -1;
}

/* Counters of the final rule of each verdict chain, from `iptables-save -c` text. */
static int parse_counters(const char *s, struct datapath_counter **res, size_t *n, size_t *cap,
                          uint64_t *policy_drops)
{
    for (const char *l = strstr(s, "\n["); l; l = strstr(l + 1, "\n[")) {
        unsigned long long pk, by;
        char chain[40], target[16];
        if (sscanf(l + 1, "[%llu:%llu] -A %39s -j %15s", &pk, &by, chain, target) != 4)
            continue;
        if (strcmp(target, "DROP") != 0 && strcmp(target, "RETURN") != 0)
            continue;
        unsigned id = 0, cl;
        char cfg, app;
        if (sscanf(chain, "MOAT-R%uc%u%c%c", &id, &cl, &cfg, &app) == 4) {
        } else if (sscanf(chain, "MOAT-D%u%c%c", &cl, &cfg, &app) == 3) {
            id = 0;
        } else {
            continue;
        }
        if (app == 'b' && policy_drops)
            *policy_drops += pk;
        size_t i = 0;
        while (i < *n && (*res)[i].rule_id != id)
            i++;
        if (i == *n) {
            if (moat_grow(res, cap, *n + 1, sizeof(**res)) < 0)
                return -ENOMEM;
            (*res)[(*n)++] = (struct datapath_counter){.rule_id = id};
        }
        (*res)[i].flows += pk;
        (*res)[i].packets += pk;
        (*res)[i].bytes += by;
    }
    return 0;
}

static int read_counters(struct datapath *dp, struct datapath_counter **out, size_t *n,
                         uint64_t *policy_drops)
{
    struct datapath_counter *res = NULL;
    size_t count = 0, cap = 0;
    int err = moat_grow(&res, &cap, 1, sizeof(*res));
    if (!err)
        res[count++] = (struct datapath_counter){.rule_id = 0};
    for (int fam = 0; fam < 2 && !err; fam++) {
        struct ipt_text s = {0};
        err = save(dp, fam, "filter", true, &s);
        if (!err && s.s)
            err = parse_counters(s.s, &res, &count, &cap, policy_drops);
        ipt_text_free(&s);
    }
    if (err) {
        free(res);
        return err;
    }
    *out = res;
    *n = count;
    return 0;
}

static int counters_iptables(const char *node, struct datapath_counter **out, size_t *n)
{
    if (!node_name_ok(node))
        return -EINVAL;
    struct datapath dp;
    memset(&dp, 0, sizeof(dp));
    char why[256];
    if (tools_find(dp.tool, why, sizeof(why)) != 0)
        return -ENOENT;
    return read_counters(&dp, out, n, NULL);
}

/* Packets a drop chain's last rule counted ("[P:B] -A CHAIN -j DROP"). */
static uint64_t drop_count(const char *s, const char *chain)
{
    char pat[48];
    snprintf(pat, sizeof(pat), " -A %s ", chain);
    uint64_t sum = 0;
    for (const char *l = strstr(s, pat); l; l = strstr(l + 1, pat)) {
        const char *start = l;
        while (start > s && start[-1] != '\n')
            start--;
        unsigned long long pk, by;
        if (strstr(l, "-j DROP") && strchr(l, '\n') > strstr(l, "-j DROP") &&
            sscanf(start, "[%llu:%llu]", &pk, &by) == 2)
            sum += pk;
    }
    return sum;
}

static uint64_t ebt_count(struct datapath *dp, const char *table, const char *chain)
{
    struct ipt_text o = {0};
    char *argv[] = {dp->tool[T_EBTABLES], "-t", (char *)table, "-L", (char *)chain, "--Lc", NULL};
    uint64_t n = 0;
    if (run_tool(argv, "", 0, &o, NULL, 0) == 0 && o.s) {
        const char *p = strstr(o.s, "pcnt = ");
        unsigned long long v;
        if (p && sscanf(p, "pcnt = %llu", &v) == 1)
            n = v;
    }
    ipt_text_free(&o);
    return n;
}

/*
 * Counting reads every rule of every table (a save per family): at most every
 * 10 s, and no sooner than 100 times the last count's duration after it,
 * so that it costs at most ~1% of a core (at 10,000 rules a count is two saves of
 * ~25,000 rules each: idle moatd took 7.4 s of CPU a minute counting every 10 s).
 */
#define STATS_EVERY     (10000000000ull)
#define STATS_COST_RATE 100

static int stats_iptables(struct datapath *dp, struct datapath_stats *out)
{
    uint64_t now = mono_ns();
    uint64_t every = dp->stats_cost * STATS_COST_RATE;
    if (every < STATS_EVERY)
        every = STATS_EVERY;
    if (dp->stats_at && now - dp->stats_at < every) {
        *out = dp->stats;
        memcpy(out->events, dp->events, sizeof(out->events));
        for (int i = 0; i < MOAT_DROP_MAX; i++)
            out->drops[i] += dp->det_drops[i];
        return 0;
    }
    memset(out, 0, sizeof(*out));
    static const struct {
        const char *chain; /* raw, but ICMPERR filter and ICMPM mangle: names are unique */
        int reason;
    } drops[] = {{"MOAT-X-ROUTER", MOAT_DROP_ROUTER},    {"MOAT-X-DHCP", MOAT_DROP_DHCP_SERVER},
                 {"MOAT-X-LLSRC", MOAT_DROP_LINK_LOCAL}, {"MOAT-X-ND", MOAT_DROP_ND_SPOOF},
                 {"MOAT-X-SPOOF", MOAT_DROP_SPOOFED},    {"MOAT-X-ICMPERR", MOAT_DROP_ICMP_ERROR},
                 {"MOAT-X-ICMPM", MOAT_DROP_ICMP_ERROR}};
    uint64_t policy = 0;
    for (int fam = 0; fam < 2; fam++) { /* one save of every table (chain names are unique) */
        struct ipt_text s = {0};
        if (save(dp, fam, NULL, true, &s) == 0 && s.s) {
            for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
                out->drops[drops[i].reason] += drop_count(s.s, drops[i].chain);
            struct datapath_counter *cs = NULL;
            size_t n = 0, cap = 0;
            parse_counters(s.s, &cs, &n, &cap, &policy);
            free(cs);
        }
        ipt_text_free(&s);
    }
    out->drops[MOAT_DROP_POLICY] = policy;
    out->drops[MOAT_DROP_MAC_SPOOF] = ebt_count(dp, "nat", "MOATE-X-MAC");
    out->drops[MOAT_DROP_ARP_SPOOF] = ebt_count(dp, "nat", "MOATE-X-ARP");
    out->drops[MOAT_DROP_ETHERTYPE] = ebt_count(dp, "nat", "MOATE-X-ETH");
    out->drops[MOAT_DROP_NOT_ADDRESSED] = ebt_count(dp, "filter", "MOATE-X-NOTADDR");
    memcpy(out->events, dp->events, sizeof(out->events));
    dp->stats = *out;
    dp->stats_at = mono_ns();
    dp->stats_cost = dp->stats_at - now;
    for (int i = 0; i < MOAT_DROP_MAX; i++) /* live: not read from the tables */
        out->drops[i] += dp->det_drops[i];
    return 0;
}

const struct datapath_ops datapath_iptables = {
    .name = "iptables",
    .probe = probe_iptables,
    .open = open_iptables,
    .apply = apply_iptables,
    .attach = attach_iptables,
    .detach = detach_iptables,
    .poll = poll_iptables,
    .event_fd = event_fd_iptables,
    .counters = counters_iptables,
    .stats = stats_iptables,
    .set_threats = set_threats_iptables,
    .quarantines = quarantines_iptables,
    .quarantine = quarantine_iptables,
    .release = release_iptables,
    .detection_gap = detection_gap_iptables,
    .generation = generation_iptables,
    .prog_fd = prog_fd_iptables,
    .close = close_iptables,
    .unpin = unpin_iptables,
};
