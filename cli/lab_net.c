/* lab_net: namespaces, bridge and veths of a lab (see lab_net.h). */
#include "lab_net.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void argv_text(const char *const argv[], char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; argv[i] && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? " " : "", argv[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static int wait_child(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int lab_run(const char *const argv[])
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return -ENOMEM;
    /* Our stdout may be the inventory: whatever the tool prints goes to stderr. */
    int err = posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    pid_t pid;
    if (!err)
        /* posix_spawnp does not change the strings; its prototype predates const. */
        err = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err)
        return -err;
    return wait_child(pid);
}

/* Runs an `ip` command; prints what failed. 0 or -EIO. */
static int ip(const char *const argv[])
{
    int rc = lab_run(argv);
    if (rc == 0)
        return 0;
    char text[512];
    argv_text(argv, text, sizeof(text));
    if (rc < 0)
        fprintf(stderr, "moat: lab: %s: cannot run: %s%s\n", text, strerror(-rc),
                rc == -ENOENT ? " (install iproute2)" : "");
    else
        fprintf(stderr, "moat: lab: %s: failed (exit status %d)\n", text, rc);
    return -EIO;
}

#define IP(...) ip((const char *const[]){"ip", __VA_ARGS__, NULL})

bool lab_netns_exists(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", LAB_NETNS_DIR, name);
    struct stat st;
    return lstat(path, &st) == 0;
}

int lab_netns_enter(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", LAB_NETNS_DIR, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
    close(fd);
    return err;
}

/*
 * Writes `value` to /proc/sys/`key` as seen from inside namespace `netns`
 * (net.* sysctls follow the network namespace of the task that opens them),
 * in a child process so this one stays where it is.
 */
static int netns_sysctl(const char *netns, const char *key, const char *value)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        char path[256];
        snprintf(path, sizeof(path), "/proc/sys/%s", key);
        if (lab_netns_enter(netns) < 0)
            _exit(1);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        size_t len = strlen(value);
        if (fd < 0 || write(fd, value, len) != (ssize_t)len || close(fd) < 0)
            _exit(2);
        _exit(0);
    }
    int rc = wait_child(pid);
    if (rc != 0) {
        fprintf(stderr, "moat: lab: %s: cannot set %s=%s (step %d failed)\n", netns, key, value,
                rc);
        return -EIO;
    }
    return 0;
}

static int mark_created(struct lab *lab, bool *created, int (*saved)(const struct lab *))
{
    *created = true;
    return saved ? saved(lab) : 0;
}

int lab_net_underlay_up(struct lab *lab, int (*saved)(const struct lab *))
{
    const char *ns = lab->underlay.netns;
    int err = IP("netns", "add", ns);
    if (!err)
        err = mark_created(lab, &lab->underlay.created, saved);
    if (!err)
        err = IP("-n", ns, "link", "set", "dev", "lo", "up");
    if (!err)
        err = IP("-n", ns, "link", "add", "name", LAB_UL_BRIDGE, "type", "bridge");
    if (!err)
        err = IP("-n", ns, "link", "set", "dev", LAB_UL_BRIDGE, "up");
    return err;
}

/* `ADDR/LEN` into buf. */
static void addr_len_text(const struct moat_addr *a, int len, char *buf, size_t n)
{
    addr_format(a, buf, n);
    snprintf(buf + strlen(buf), n - strlen(buf), "/%d", len);
}

/*
 * Node i's link to the underlay: veth ul0 (in the node) <-> nodeK (a port
 * of ubr0), ul0 holding 100.64.0.k/24, and a route to every other node's
 * /24 via its underlay address. The routes' `src` is the node's gateway, so
 * what the node itself sends to another node carries its own address (the
 * one rules know as `host`); forwarded packets keep their source (no NAT).
 */
static int node_underlay_up(const struct lab *lab, size_t i)
{
    const struct lab_node *n = &lab->nodes[i];
    const char *ul = lab->underlay.netns;
    char port[LAB_IFNAME_MAX + 1], addr[MOAT_ADDR_STRLEN + 8], src[MOAT_ADDR_STRLEN];
    lab_ul_port(i, port, sizeof(port));
    addr_len_text(&n->ul_addr, LAB_PREFIX_LEN, addr, sizeof(addr));
    addr_format(&n->gateway, src, sizeof(src));
    /* Both ends are made inside lab namespaces, as for workloads. */
    int err = IP("-n", n->netns, "link", "add", "name", LAB_UL_IFNAME, "type", "veth", "peer",
                 "name", port, "netns", ul);
    if (!err)
        err = IP("-n", ul, "link", "set", "dev", port, "master", LAB_UL_BRIDGE);
    if (!err)
        err = IP("-n", ul, "link", "set", "dev", port, "up");
    if (!err)
        err = IP("-n", n->netns, "addr", "add", addr, "dev", LAB_UL_IFNAME);
    if (!err)
        err = IP("-n", n->netns, "link", "set", "dev", LAB_UL_IFNAME, "up");
    for (size_t j = 0; !err && j < lab->nnodes; j++) {
        if (j == i)
            continue;
        char sub[MOAT_ADDR_STRLEN + 8], via[MOAT_ADDR_STRLEN];
        prefix_format(&lab->nodes[j].subnet, sub, sizeof(sub));
        addr_format(&lab->nodes[j].ul_addr, via, sizeof(via));
        err = IP("-n", n->netns, "route", "add", sub, "via", via, "dev", LAB_UL_IFNAME, "src", src);
    }
    return err;
}

int lab_net_node_up(struct lab *lab, size_t i, int (*saved)(const struct lab *))
{
    struct lab_node *n = &lab->nodes[i];
    char gw[MOAT_ADDR_STRLEN + 8];
    addr_len_text(&n->gateway, LAB_PREFIX_LEN, gw, sizeof(gw));
    int err = IP("netns", "add", n->netns);
    if (!err)
        err = mark_created(lab, &n->created, saved);
    if (!err)
        err = IP("-n", n->netns, "link", "set", "dev", "lo", "up");
    if (!err)
        err = IP("-n", n->netns, "link", "add", "name", LAB_BRIDGE, "type", "bridge");
    if (!err)
        err = IP("-n", n->netns, "addr", "add", gw, "dev", LAB_BRIDGE);
    if (!err)
        err = IP("-n", n->netns, "link", "set", "dev", LAB_BRIDGE, "up");
    if (!err)
        err = netns_sysctl(n->netns, "net/ipv4/ip_forward", "1\n");
    if (!err && lab->underlay.netns)
        err = node_underlay_up(lab, i);
    return err;
}

int lab_net_workload_up(struct lab *lab, size_t i, int (*saved)(const struct lab *))
{
    struct lab_workload *w = &lab->workloads[i];
    const struct lab_node *n = &lab->nodes[w->node];
    char gw[MOAT_ADDR_STRLEN];
    addr_format(&n->gateway, gw, sizeof(gw));
    int err = IP("netns", "add", w->netns);
    if (!err)
        err = mark_created(lab, &w->created, saved);
    if (!err)
        err = IP("-n", w->netns, "link", "set", "dev", "lo", "up");
    /* Both ends are made inside lab namespaces: the veth never touches the root one. */
    if (!err)
        err = IP("-n", n->netns, "link", "add", "name", w->ifname, "type", "veth", "peer", "name",
                 LAB_WL_IFNAME, "netns", w->netns);
    if (!err)
        err = IP("-n", n->netns, "link", "set", "dev", w->ifname, "master", LAB_BRIDGE);
    if (!err)
        err = IP("-n", n->netns, "link", "set", "dev", w->ifname, "up");
    for (size_t a = 0; !err && a < w->naddrs; a++) {
        if (!addr_is_v4(&w->addrs[a]) || !prefix_contains(&n->subnet, &w->addrs[a]))
            continue; /* the lab is IPv4; other addresses stay in the inventory only */
        char text[MOAT_ADDR_STRLEN + 8];
        addr_len_text(&w->addrs[a], LAB_PREFIX_LEN, text, sizeof(text));
        err = IP("-n", w->netns, "addr", "add", text, "dev", LAB_WL_IFNAME);
    }
    if (!err)
        err = IP("-n", w->netns, "link", "set", "dev", LAB_WL_IFNAME, "up");
    if (!err)
        err = IP("-n", w->netns, "route", "add", "default", "via", gw, "dev", LAB_WL_IFNAME);
    return err;
}

int lab_net_delete(const char *netns)
{
    if (!lab_netns_exists(netns))
        return 0;
    return IP("netns", "delete", netns);
}
