/* netns: a workload's host-side interface from its namespace (see netns.h). */
#include "netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define NL_BUF 32768

struct link_info {
    int index, link; /* link: IFLA_LINK (a veth's peer index), 0 none */
    int link_nsid;   /* IFLA_LINK_NETNSID: the peer's namespace id here; -1 none */
    bool veth, bridge;
    char name[IF_NAMESIZE];
};

/* A netlink socket opened inside namespace `nsfd` (-1: here). */
static int rtnl_open_in(int nsfd)
{
    if (nsfd < 0)
        return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        return -errno;
    if (setns(nsfd, CLONE_NEWNET) != 0) {
        int err = -errno;
        close(self);
        return err;
    }
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        fd = -errno;
    if (setns(self, CLONE_NEWNET) != 0) { /* back home: cannot fail with our own fd */
        if (fd >= 0)
            close(fd);
        fd = -errno;
    }
    close(self);
    return fd;
}

static void parse_linkinfo(struct rtattr *nest, struct link_info *li)
{
    int len = (int)RTA_PAYLOAD(nest);
    for (struct rtattr *a = RTA_DATA(nest); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == IFLA_INFO_KIND) {
            const char *kind = RTA_DATA(a);
            li->veth = strncmp(kind, "veth", RTA_PAYLOAD(a)) == 0;
            li->bridge = strncmp(kind, "bridge", RTA_PAYLOAD(a)) == 0;
        }
}

static void parse_link(struct nlmsghdr *h, struct link_info *li)
{
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    memset(li, 0, sizeof(*li));
    li->link_nsid = -1;
    li->index = ifi->ifi_index;
    int len = (int)IFLA_PAYLOAD(h);
    for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFLA_IFNAME)
            snprintf(li->name, sizeof(li->name), "%s", (const char *)RTA_DATA(a));
        else if (a->rta_type == IFLA_LINK && RTA_PAYLOAD(a) >= 4)
            li->link = *(int *)RTA_DATA(a);
        else if (a->rta_type == IFLA_LINK_NETNSID && RTA_PAYLOAD(a) >= 4)
            li->link_nsid = *(int *)RTA_DATA(a);
        else if (a->rta_type == IFLA_LINKINFO)
            parse_linkinfo(a, li);
    }
}

/* Sends `req` and reads the answer(s); each message goes to fn. Returns 0 or -errno. */
static int rtnl_talk(int fd, struct nlmsghdr *req, int (*fn)(struct nlmsghdr *h, void *ctx),
                     void *ctx)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (sendto(fd, req, req->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -errno;
    char *buf = malloc(NL_BUF);
    if (!buf)
        return -ENOMEM;
    int err = 0;
    bool done = false;
    while (!done && !err) {
        ssize_t n = recv(fd, buf, NL_BUF, 0);
        if (n < 0) {
            err = -errno;
            break;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                done = true;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                err = e->error;
                done = true;
                break;
            }
            int r = fn(h, ctx);
            if (r) {
                err = r > 0 ? 0 : r;
                done = true;
                break;
            }
            if (!(h->nlmsg_flags & NLM_F_MULTI))
                done = true;
        }
    }
    free(buf);
    return err;
}

struct link_query {
    const char *name; /* by name, or */
    int index;        /* by index */
    struct link_info found;
    bool ok;
};

static int on_link(struct nlmsghdr *h, void *ctx)
{
    struct link_query *q = ctx;
    if (h->nlmsg_type != RTM_NEWLINK)
        return 0;
    struct link_info li;
    parse_link(h, &li);
    if ((q->name && strcmp(li.name, q->name) == 0) || (!q->name && li.index == q->index)) {
        q->found = li;
        q->ok = true;
    }
    return 0;
}

/* Looks a link up by name or index over socket fd. */
static int get_link(int fd, const char *name, int index, struct link_info *out)
{
    struct {
        struct nlmsghdr h;
        struct ifinfomsg ifi;
        char attrs[64];
    } req = {0};
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifi));
    req.h.nlmsg_type = RTM_GETLINK;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    req.ifi.ifi_family = AF_UNSPEC;
    req.ifi.ifi_index = index;
    if (name) {
        struct rtattr *a = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.h.nlmsg_len));
        size_t n = strlen(name) + 1;
        if (n > IF_NAMESIZE)
            return -ENOENT;
        a->rta_type = IFLA_IFNAME;
        a->rta_len = (unsigned short)RTA_LENGTH(n);
        memcpy(RTA_DATA(a), name, n);
        req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_ALIGN(a->rta_len);
    }
    struct link_query q = {.name = name, .index = index};
    int err = rtnl_talk(fd, &req.h, on_link, &q);
    if (err == -ENODEV)
        err = -ENOENT;
    if (!err && !q.ok)
        err = -ENOENT;
    if (!err)
        *out = q.found;
    return err;
}

static int on_nsid(struct nlmsghdr *h, void *ctx)
{
    int *nsid = ctx;
    if (h->nlmsg_type != RTM_NEWNSID)
        return 0;
    struct rtgenmsg *g = NLMSG_DATA(h);
    int len = (int)(h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(*g))));
    for (struct rtattr *a = (struct rtattr *)((char *)g + NLMSG_ALIGN(sizeof(*g))); RTA_OK(a, len);
         a = RTA_NEXT(a, len))
        if (a->rta_type == NETNSA_NSID && RTA_PAYLOAD(a) >= 4)
            *nsid = *(int *)RTA_DATA(a);
    return 0;
}

/* The id namespace `nsfd` has in the namespace of socket fd (-1: none assigned). */
static int nsid_of(int fd, int nsfd)
{
    struct {
        struct nlmsghdr h;
        struct rtgenmsg g;
        char pad[3];
        struct rtattr a;
        uint32_t fd;
    } req = {0};
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = RTM_GETNSID;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    req.g.rtgen_family = AF_UNSPEC;
    req.a.rta_type = NETNSA_FD;
    req.a.rta_len = RTA_LENGTH(sizeof(uint32_t));
    req.fd = (uint32_t)nsfd;
    int nsid = -1;
    return rtnl_talk(fd, &req.h, on_nsid, &nsid) == 0 ? nsid : -1;
}

/*
 * The home-side check: `peer` is a veth there whose own peer is index `inner`
 * and, when the kernel says in which namespace that peer lives, namespace
 * `nsfd` (indexes are per namespace: two namespaces can both have an index 5).
 */
static int peer_in_home(int home_fd, int peer, int inner, int nsfd, char out[IF_NAMESIZE])
{
    int fd = rtnl_open_in(home_fd);
    if (fd < 0)
        return fd;
    struct link_info li;
    int err = get_link(fd, NULL, peer, &li);
    int nsid = !err && li.link_nsid >= 0 && nsfd >= 0 ? nsid_of(fd, nsfd) : -1;
    close(fd);
    if (err)
        return err == -ENOENT ? -ENODEV : err;
    if (!li.veth || li.link != inner || (li.link_nsid >= 0 && nsid >= 0 && nsid != li.link_nsid))
        return -ENODEV;
    snprintf(out, IF_NAMESIZE, "%s", li.name);
    return 0;
}

/*
 * The home-side peer of the link named `name` (or with index `index`) of
 * namespace `nsfd`, queried over fd (a socket there, closed here).
 */
static int peer_of_link(int fd, const char *name, int index, int nsfd, int home_fd,
                        char out[IF_NAMESIZE])
{
    struct link_info li = {0};
    int err = get_link(fd, name, index, &li);
    close(fd);
    if (err)
        return err;
    if (!li.veth || !li.link)
        return -ENODEV;
    return peer_in_home(home_fd, li.link, li.index, nsfd, out);
}

int netns_peer_name(int nsfd, const char *ifname, int home_fd, char out[IF_NAMESIZE])
{
    int fd = rtnl_open_in(nsfd);
    return fd < 0 ? fd : peer_of_link(fd, ifname, 0, nsfd, home_fd, out);
}

/* ---------- by address ---------- */

struct addr_query {
    int family;
    unsigned char addr[16];
    int index; /* found: the interface holding it */
};

static int on_addr(struct nlmsghdr *h, void *ctx)
{
    struct addr_query *q = ctx;
    if (h->nlmsg_type != RTM_NEWADDR)
        return 0;
    struct ifaddrmsg *ifa = NLMSG_DATA(h);
    if (ifa->ifa_family != q->family)
        return 0;
    int len = (int)IFA_PAYLOAD(h);
    size_t alen = q->family == AF_INET ? 4 : 16;
    for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if ((a->rta_type == IFA_ADDRESS || a->rta_type == IFA_LOCAL) && RTA_PAYLOAD(a) >= alen &&
            memcmp(RTA_DATA(a), q->addr, alen) == 0)
            q->index = (int)ifa->ifa_index;
    return 0;
}

/* The index of the interface of socket fd's namespace that holds the address, or 0. */
static int holder_of(int fd, struct addr_query *q)
{
    struct {
        struct nlmsghdr h;
        struct ifaddrmsg ifa;
    } req = {0};
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifa));
    req.h.nlmsg_type = RTM_GETADDR;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.ifa.ifa_family = (unsigned char)q->family;
    q->index = 0;
    int err = rtnl_talk(fd, &req.h, on_addr, q);
    return err ? err : q->index;
}

struct route_query {
    int oif;
};

static int on_route(struct nlmsghdr *h, void *ctx)
{
    struct route_query *q = ctx;
    if (h->nlmsg_type != RTM_NEWROUTE)
        return 0;
    struct rtmsg *rt = NLMSG_DATA(h);
    int len = (int)RTM_PAYLOAD(h);
    for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= 4)
            q->oif = *(int *)RTA_DATA(a);
    return 0;
}

/* The interface a route to the address leaves by, when it is a veth (not a bridge). */
static int routed_veth(int home_fd, const struct addr_query *aq, char out[IF_NAMESIZE])
{
    int fd = rtnl_open_in(home_fd);
    if (fd < 0)
        return fd;
    struct {
        struct nlmsghdr h;
        struct rtmsg rt;
        char attrs[64];
    } req = {0};
    size_t alen = aq->family == AF_INET ? 4 : 16;
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(req.rt));
    req.h.nlmsg_type = RTM_GETROUTE;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    req.rt.rtm_family = (unsigned char)aq->family;
    req.rt.rtm_dst_len = (unsigned char)(alen * 8);
    struct rtattr *a = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.h.nlmsg_len));
    a->rta_type = RTA_DST;
    a->rta_len = (unsigned short)RTA_LENGTH(alen);
    memcpy(RTA_DATA(a), aq->addr, alen);
    req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_ALIGN(a->rta_len);
    struct route_query q = {0};
    int err = rtnl_talk(fd, &req.h, on_route, &q);
    struct link_info li = {0};
    if (!err && q.oif)
        err = get_link(fd, NULL, q.oif, &li);
    close(fd);
    if (err || !q.oif || !li.veth)
        return -ENOENT;
    snprintf(out, IF_NAMESIZE, "%s", li.name);
    return 0;
}

/* Tries namespace `nsfd`: does it hold the address, and is that interface's peer at home? */
static int try_ns(int nsfd, int home_fd, struct addr_query *aq, char out[IF_NAMESIZE])
{
    int fd = rtnl_open_in(nsfd);
    if (fd < 0)
        return fd;
    int idx = holder_of(fd, aq);
    if (idx <= 0) {
        close(fd);
        return idx < 0 ? idx : -ENOENT;
    }
    return peer_of_link(fd, NULL, idx, nsfd, home_fd, out);
}

/* Namespaces already tried in this scan (by inode), so each is entered once. */
struct seen {
    ino_t ino[4096];
    size_t n;
};

static bool seen_before(struct seen *s, ino_t ino)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->ino[i] == ino)
            return true;
    if (s->n < sizeof(s->ino) / sizeof(s->ino[0]))
        s->ino[s->n++] = ino;
    return false;
}

static int try_path(const char *path, int home_fd, ino_t home_ino, struct seen *s,
                    struct addr_query *aq, char out[IF_NAMESIZE])
{
    struct stat st;
    if (stat(path, &st) != 0 || st.st_ino == home_ino || seen_before(s, st.st_ino))
        return -ENOENT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ENOENT;
    int err = try_ns(fd, home_fd, aq, out);
    close(fd);
    return err;
}

int netns_iface_of_addr(const char *ip, int home_fd, char out[IF_NAMESIZE])
{
    struct addr_query aq = {.family = strchr(ip, ':') ? AF_INET6 : AF_INET};
    if (inet_pton(aq.family, ip, aq.addr) != 1)
        return -EINVAL;
    if (routed_veth(home_fd, &aq, out) == 0)
        return 0;
    struct stat st;
    ino_t home_ino = 0;
    if (home_fd >= 0 ? fstat(home_fd, &st) == 0 : stat("/proc/thread-self/ns/net", &st) == 0)
        home_ino = st.st_ino;
    struct seen *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int err = -ENOENT;
    char path[300];
    DIR *d = opendir("/run/netns");
    struct dirent *e;
    while (err && d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/run/netns/%s", e->d_name);
        err = try_path(path, home_fd, home_ino, s, &aq, out);
    }
    if (d)
        closedir(d);
    d = err ? opendir("/proc") : NULL;
    while (err && d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/ns/net", e->d_name);
        err = try_path(path, home_fd, home_ino, s, &aq, out);
    }
    if (d)
        closedir(d);
    free(s);
    return err == -ENODEV ? -ENOENT : err;
}
