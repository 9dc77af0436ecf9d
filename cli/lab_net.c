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

/* One sysctl of a lab namespace: /proc/sys/KEY = VALUE. */
struct sysctl_kv {
    const char *key, *value;
};

/*
 * Writes each value to /proc/sys/KEY as seen from inside namespace `netns`
 * (net.* sysctls follow the network namespace of the task that opens them),
 * in one child process so this one stays where it is. Returns 0, or -EIO
 * with the first setting that failed printed.
 */
static int netns_sysctls(const char *netns, const struct sysctl_kv *kv, size_t n)
{
    fflush(NULL); /* nothing buffered is written twice by the child */
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        if (lab_netns_enter(netns) < 0)
            _exit(1);
        for (size_t i = 0; i < n; i++) {
            char path[256];
            snprintf(path, sizeof(path), "/proc/sys/%s", kv[i].key);
            int fd = open(path, O_WRONLY | O_CLOEXEC);
            size_t len = strlen(kv[i].value);
            if (fd < 0 || write(fd, kv[i].value, len) != (ssize_t)len || close(fd) < 0)
                _exit(2 + (int)i); /* n is small: the status says which one */
        }
        _exit(0);
    }
    int rc = wait_child(pid);
    if (rc == 1)
        fprintf(stderr, "moat: lab: %s: cannot enter the namespace to set its sysctls\n", netns);
    else if (rc >= 2 && (size_t)rc - 2 < n)
        fprintf(stderr, "moat: lab: %s: cannot set %s=%s\n", netns, kv[rc - 2].key,
                kv[rc - 2].value);
    else if (rc != 0)
        fprintf(stderr, "moat: lab: %s: setting sysctls failed (status %d)\n", netns, rc);
    return rc == 0 ? 0 : -EIO;
}

bool lab_kernel_has_ipv6(void)
{
    return access("/proc/sys/net/ipv6/conf/default", F_OK) == 0;
}

enum ns_role { NS_UNDERLAY, NS_NODE, NS_WORKLOAD };

/*
 * The settings every lab namespace gets at once, before its links exist
 * (links take the `default` values when they are made), so that nothing is
 * inherited from the host (a new namespace copies the host's IPv4 `all` and
 * `default` settings, and with net.core.devconf_inherit_init_net=1 the IPv6
 * ones too): nodes forward IPv4 and IPv6, the underlay and workloads forward
 * nothing; reverse-path filtering is off everywhere, so what a workload sends
 * meets the datapath's checks, not the kernel's; workloads take router
 * advertisements (accept_ra=1, the kernel's default for a host) and nodes
 * and the underlay none; IPv6 is on, with EUI-64 link-local addresses, and
 * without duplicate address detection: the lab's addresses are unique by
 * construction and its MACs random, and DAD would leave every new address,
 * link-local ones included, unusable (`tentative`) for a second or two after
 * `lab up` returns. Without IPv6 in the kernel, only the IPv4 settings are
 * written.
 */
static int netns_configure(const char *netns, enum ns_role role)
{
    const char *fwd = role == NS_NODE ? "1\n" : "0\n";
    const char *ra = role == NS_WORKLOAD ? "1\n" : "0\n";
    const struct sysctl_kv kv[] = {
        {"net/ipv4/ip_forward", fwd}, /* also sets conf/all and conf/default */
        {"net/ipv4/conf/all/rp_filter", "0\n"},
        {"net/ipv4/conf/default/rp_filter", "0\n"},
        {"net/ipv6/conf/all/disable_ipv6", "0\n"},
        {"net/ipv6/conf/default/disable_ipv6", "0\n"},
        {"net/ipv6/conf/all/forwarding", fwd},
        {"net/ipv6/conf/default/forwarding", fwd},
        {"net/ipv6/conf/default/accept_ra", ra},
        {"net/ipv6/conf/default/addr_gen_mode", "0\n"},
        {"net/ipv6/conf/all/accept_dad", "0\n"},
        {"net/ipv6/conf/default/accept_dad", "0\n"},
    };
    size_t n = sizeof(kv) / sizeof(kv[0]);
    return netns_sysctls(netns, kv, lab_kernel_has_ipv6() ? n : 3);
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
        err = netns_configure(ns, NS_UNDERLAY);
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

/* Adds ADDR/LEN to a link; IPv6 addresses without duplicate address detection. */
static int addr_add(const char *netns, const struct moat_addr *a, int len, const char *dev)
{
    char text[MOAT_ADDR_STRLEN + 8];
    addr_len_text(a, len, text, sizeof(text));
    if (addr_is_v4(a))
        return IP("-n", netns, "addr", "add", text, "dev", dev);
    /* nodad: usable at once, not `tentative` for a second after `lab up` returns. The
     * plan gives every address once, so there is no duplicate to detect. */
    return IP("-n", netns, "addr", "add", text, "dev", dev, "nodad");
}

/* A route in `netns`: NET via VIA on DEV, with source SRC when given. */
static int route_add(const char *netns, const struct moat_prefix *net, const struct moat_addr *via,
                     const char *dev, const struct moat_addr *src)
{
    char sub[MOAT_ADDR_STRLEN + 8], gw[MOAT_ADDR_STRLEN], from[MOAT_ADDR_STRLEN];
    prefix_format(net, sub, sizeof(sub));
    addr_format(via, gw, sizeof(gw));
    if (!src)
        return IP("-n", netns, "route", "add", sub, "via", gw, "dev", dev);
    addr_format(src, from, sizeof(from));
    return IP("-n", netns, "route", "add", sub, "via", gw, "dev", dev, "src", from);
}

/*
 * Node i's link to the underlay: veth ul0 (in the node) <-> nodeK (a port
 * of ubr0), ul0 holding 100.64.0.k/24 (and fd00:ffff::k/64 in a lab with
 * IPv6), and a route to every other node's /24 (and /64) via its underlay
 * address. The routes' `src` is the node's gateway, so what the node itself
 * sends to another node carries its own address (the one rules know as
 * `host`); forwarded packets keep their source (no NAT). A node without a
 * /64 sends from its underlay IPv6 address.
 */
static int node_underlay_up(const struct lab *lab, size_t i)
{
    const struct lab_node *n = &lab->nodes[i];
    const char *ul = lab->underlay.netns;
    bool v6 = lab_has_ipv6(lab);
    char port[LAB_IFNAME_MAX + 1];
    lab_ul_port(i, port, sizeof(port));
    /* Both ends are made inside lab namespaces, as for workloads. */
    int err = IP("-n", n->netns, "link", "add", "name", LAB_UL_IFNAME, "type", "veth", "peer",
                 "name", port, "netns", ul);
    if (!err)
        err = IP("-n", ul, "link", "set", "dev", port, "master", LAB_UL_BRIDGE);
    if (!err)
        err = IP("-n", ul, "link", "set", "dev", port, "up");
    if (!err)
        err = addr_add(n->netns, &n->ul_addr, LAB_PREFIX_LEN, LAB_UL_IFNAME);
    if (!err && v6)
        err = addr_add(n->netns, &n->ul_addr6, LAB_PREFIX6_LEN, LAB_UL_IFNAME);
    if (!err)
        err = IP("-n", n->netns, "link", "set", "dev", LAB_UL_IFNAME, "up");
    for (size_t j = 0; !err && j < lab->nnodes; j++)
        if (j != i)
            err = route_add(n->netns, &lab->nodes[j].subnet, &lab->nodes[j].ul_addr, LAB_UL_IFNAME,
                            &n->gateway);
    for (size_t j = 0; !err && v6 && j < lab->nnodes; j++)
        if (j != i && lab->nodes[j].subnet6.len)
            err = route_add(n->netns, &lab->nodes[j].subnet6, &lab->nodes[j].ul_addr6,
                            LAB_UL_IFNAME, n->subnet6.len ? &n->gateway6 : NULL);
    return err;
}

int lab_net_node_up(struct lab *lab, size_t i, int (*saved)(const struct lab *))
{
    struct lab_node *n = &lab->nodes[i];
    int err = IP("netns", "add", n->netns);
    if (!err)
        err = mark_created(lab, &n->created, saved);
    if (!err)
        err = netns_configure(n->netns, NS_NODE);
    if (!err)
        err = IP("-n", n->netns, "link", "set", "dev", "lo", "up");
    if (!err)
        err = IP("-n", n->netns, "link", "add", "name", LAB_BRIDGE, "type", "bridge");
    if (!err)
        err = addr_add(n->netns, &n->gateway, LAB_PREFIX_LEN, LAB_BRIDGE);
    if (!err && n->subnet6.len)
        err = addr_add(n->netns, &n->gateway6, LAB_PREFIX6_LEN, LAB_BRIDGE);
    if (!err)
        err = IP("-n", n->netns, "link", "set", "dev", LAB_BRIDGE, "up");
    if (!err && lab->underlay.netns)
        err = node_underlay_up(lab, i);
    return err;
}

int lab_net_workload_up(struct lab *lab, size_t i, int (*saved)(const struct lab *))
{
    struct lab_workload *w = &lab->workloads[i];
    const struct lab_node *n = &lab->nodes[w->node];
    char gw[MOAT_ADDR_STRLEN], gw6[MOAT_ADDR_STRLEN];
    addr_format(&n->gateway, gw, sizeof(gw));
    addr_format(&n->gateway6, gw6, sizeof(gw6));
    bool has_v6 = false;
    int err = IP("netns", "add", w->netns);
    if (!err)
        err = mark_created(lab, &w->created, saved);
    if (!err)
        err = netns_configure(w->netns, NS_WORKLOAD);
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
    /* The datapath's neighbour-discovery guard knows a workload's link-local
     * address as the EUI-64 one of its MAC: say so, whatever the defaults. */
    if (!err)
        err = IP("-n", w->netns, "link", "set", "dev", LAB_WL_IFNAME, "addrgenmode", "eui64");
    for (size_t a = 0; !err && a < w->naddrs; a++) {
        bool v4 = addr_is_v4(&w->addrs[a]);
        if ((!v4 && !n->subnet6.len) ||
            !prefix_contains(v4 ? &n->subnet : &n->subnet6, &w->addrs[a]))
            continue; /* the plan allows none such; a hand-edited state file might */
        has_v6 |= !v4;
        err =
            addr_add(w->netns, &w->addrs[a], v4 ? LAB_PREFIX_LEN : LAB_PREFIX6_LEN, LAB_WL_IFNAME);
    }
    if (!err)
        err = IP("-n", w->netns, "link", "set", "dev", LAB_WL_IFNAME, "up");
    if (!err)
        err = IP("-n", w->netns, "route", "add", "default", "via", gw, "dev", LAB_WL_IFNAME);
    if (!err && has_v6)
        err = IP("-n", w->netns, "-6", "route", "add", "default", "via", gw6, "dev", LAB_WL_IFNAME);
    return err;
}

int lab_net_delete(const char *netns)
{
    if (!lab_netns_exists(netns))
        return 0;
    return IP("netns", "delete", netns);
}
