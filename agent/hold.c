/* hold: fail-closed programs on new workload interfaces (see hold.h). */
#include "hold.h"
#include "agent.h"
#include "mem.h"
#include "moat_hold.skel.h"
#include "pattern.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NL_BUF 65536

struct held {
    int ifindex;
    char name[IF_NAMESIZE];
    double since; /* wall-clock seconds */
};

struct hold {
    struct hold_config cfg;
    struct moat_hold *skel;
    int nl; /* RTMGRP_LINK subscription */
    struct held *held;
    size_t nheld, cap;
    unsigned long total, while_down, while_up, failures;
};

struct link_msg {
    int index, master;
    unsigned flags;
    bool veth;
    char name[IF_NAMESIZE];
};

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void parse(struct nlmsghdr *h, struct link_msg *m)
{
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    memset(m, 0, sizeof(*m));
    m->index = ifi->ifi_index;
    m->flags = ifi->ifi_flags;
    int len = (int)IFLA_PAYLOAD(h);
    for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFLA_IFNAME) {
            snprintf(m->name, sizeof(m->name), "%s", (const char *)RTA_DATA(a));
        } else if (a->rta_type == IFLA_MASTER && RTA_PAYLOAD(a) >= 4) {
            m->master = *(int *)RTA_DATA(a);
        } else if (a->rta_type == IFLA_LINKINFO) {
            int n = (int)RTA_PAYLOAD(a);
            for (struct rtattr *b = RTA_DATA(a); RTA_OK(b, n); b = RTA_NEXT(b, n))
                if (b->rta_type == IFLA_INFO_KIND)
                    m->veth = strncmp(RTA_DATA(b), "veth", RTA_PAYLOAD(b)) == 0;
        }
    }
}

static bool any_match(const char *const *patterns, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (pattern_match(patterns[i], s))
            return true;
    return false;
}

static bool wanted(const struct hold *h, const struct link_msg *m)
{
    if (!m->veth || !m->name[0])
        return false;
    if (any_match(h->cfg.ifaces, h->cfg.nifaces, m->name))
        return true;
    char master[IF_NAMESIZE];
    return m->master && if_indextoname((unsigned)m->master, master) &&
           any_match(h->cfg.bridges, h->cfg.nbridges, master);
}

static struct held *find(struct hold *h, int ifindex)
{
    for (size_t i = 0; i < h->nheld; i++)
        if (h->held[i].ifindex == ifindex)
            return &h->held[i];
    return NULL;
}

static void forget(struct hold *h, int ifindex)
{
    struct held *x = find(h, ifindex);
    if (x)
        *x = h->held[--h->nheld];
}

/* The name of the program in our tc filter on (ifindex, point), "" if none. */
static void filter_prog(int ifindex, enum bpf_tc_attach_point point, char *name, size_t n)
{
    name[0] = '\0';
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = MOAT_TC_HANDLE, .priority = MOAT_TC_PRIORITY);
    if (bpf_tc_query(&hook, &opts) != 0)
        return;
    int fd = bpf_prog_get_fd_by_id(opts.prog_id);
    if (fd < 0)
        return;
    struct bpf_prog_info info = {0};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
        snprintf(name, n, "%s", info.name);
    close(fd);
}

/*
 * Puts the hold program on one hook: added where no moat filter is; a hold
 * left by an earlier moatd is replaced by ours (so drops are counted here);
 * a filter of moat_tc (the interface enforces) is left alone: -EEXIST.
 */
static int hold_hook(int ifindex, enum bpf_tc_attach_point point, int prog_fd)
{
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST)
        return err;
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .handle = MOAT_TC_HANDLE,
                .priority = MOAT_TC_PRIORITY);
    err = bpf_tc_attach(&hook, &opts);
    if (err != -EEXIST)
        return err;
    char name[BPF_OBJ_NAME_LEN];
    filter_prog(ifindex, point, name, sizeof(name));
    if (strncmp(name, "moat_hold", 9) != 0)
        return -EEXIST;
    LIBBPF_OPTS(bpf_tc_opts, again, .prog_fd = prog_fd, .handle = MOAT_TC_HANDLE,
                .priority = MOAT_TC_PRIORITY, .flags = BPF_TC_F_REPLACE);
    return bpf_tc_attach(&hook, &again);
}

/*
 * Whether the link has a carrier: a veth has one only when both ends are up,
 * so without it no packet of the other end (the container's) has crossed.
 */
static bool link_carries(const char *name)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool up = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_RUNNING);
    if (fd >= 0)
        close(fd);
    return up;
}

static void try_hold(struct hold *h, const struct link_msg *m)
{
    if (find(h, m->index))
        return;
    bool up = link_carries(m->name); /* a packet might have crossed before the hold */
    int err =
        hold_hook(m->index, BPF_TC_EGRESS, bpf_program__fd(h->skel->progs.moat_hold_to_workload));
    if (!err)
        err = hold_hook(m->index, BPF_TC_INGRESS,
                        bpf_program__fd(h->skel->progs.moat_hold_from_workload));
    if (err == -EEXIST || err == -ENODEV || err == -EINVAL)
        return; /* already enforcing, or gone again */
    if (err) {
        h->failures++;
        agent_log("error", "interface '%s': cannot hold it: %s", m->name, strerror(-err));
        return;
    }
    if (moat_grow(&h->held, &h->cap, h->nheld + 1, sizeof(*h->held)) < 0)
        return; /* held all the same; only not listed */
    struct held *x = &h->held[h->nheld++];
    x->ifindex = m->index;
    snprintf(x->name, sizeof(x->name), "%s", m->name);
    x->since = wall_s();
    h->total++;
    if (up)
        h->while_up++;
    else
        h->while_down++;
    agent_log("info", "interface '%s': held (fail-closed) until its workload is known%s", m->name,
              up ? " (it had a carrier already)" : " (before it had a carrier)");
}

static void on_msg(struct hold *h, struct nlmsghdr *nh)
{
    if (nh->nlmsg_type != RTM_NEWLINK && nh->nlmsg_type != RTM_DELLINK)
        return;
    struct link_msg m;
    parse(nh, &m);
    if (nh->nlmsg_type == RTM_DELLINK)
        forget(h, m.index);
    else if (wanted(h, &m))
        try_hold(h, &m);
}

/* Reads what is pending on fd; `dump` stops at NLMSG_DONE. */
static void drain(struct hold *h, int fd, bool dump)
{
    char *buf = malloc(NL_BUF);
    if (!buf)
        return;
    for (;;) {
        ssize_t n = recv(fd, buf, NL_BUF, dump ? 0 : MSG_DONTWAIT);
        if (n < 0 && errno == ENOBUFS) {
            /* events were lost: look at every link again */
            agent_log("warning", "link events overflowed; checking every interface");
            continue;
        }
        if (n <= 0)
            break;
        bool done = false;
        for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
             nh = NLMSG_NEXT(nh, n)) {
            if (nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR)
                done = true;
            else
                on_msg(h, nh);
        }
        if (dump && done)
            break;
    }
    free(buf);
}

/* Every link now (at start, and after lost events). */
static int sweep(struct hold *h)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    struct {
        struct nlmsghdr h;
        struct ifinfomsg ifi;
    } req = {.h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
                   .nlmsg_type = RTM_GETLINK,
                   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
             .ifi = {.ifi_family = AF_UNSPEC}};
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    int err =
        sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
    if (!err)
        drain(h, fd, true);
    close(fd);
    return err;
}

int hold_open(const struct hold_config *cfg, struct hold **out)
{
    *out = NULL;
    struct hold *h = moat_calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->cfg = *cfg;
    h->nl = -1;
    h->skel = moat_hold__open_and_load();
    int err = h->skel ? 0 : -errno;
    if (!err) {
        h->nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
        int rcvbuf = 4 << 20;
        if (h->nl < 0 || bind(h->nl, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            err = -errno;
        else
            setsockopt(h->nl, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    if (!err) /* subscribed first: a link made during the sweep is an event then */
        err = sweep(h);
    if (err) {
        hold_close(h);
        return err;
    }
    *out = h;
    return 0;
}

void hold_close(struct hold *h)
{
    if (!h)
        return;
    if (h->nl >= 0)
        close(h->nl);
    moat_hold__destroy(h->skel); /* tc filters keep their programs */
    free(h->held);
    free(h);
}

int hold_fd(const struct hold *h)
{
    return h->nl;
}

void hold_handle(struct hold *h)
{
    char *buf = malloc(NL_BUF);
    if (!buf)
        return;
    bool lost = false;
    for (;;) {
        ssize_t n = recv(h->nl, buf, NL_BUF, MSG_DONTWAIT);
        if (n < 0 && errno == ENOBUFS) {
            lost = true;
            continue;
        }
        if (n <= 0)
            break;
        for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
             nh = NLMSG_NEXT(nh, n))
            on_msg(h, nh);
    }
    free(buf);
    if (lost) {
        agent_log("warning", "link events were lost; checking every interface");
        sweep(h);
    }
}

void hold_refresh(struct hold *h)
{
    for (size_t i = 0; i < h->nheld;) {
        struct held *x = &h->held[i];
        char name[BPF_OBJ_NAME_LEN];
        filter_prog(x->ifindex, BPF_TC_EGRESS, name, sizeof(name));
        if (strncmp(name, "moat_hold", 9) == 0) {
            i++;
            continue;
        }
        char ifname[IF_NAMESIZE];
        /* replaced by the datapath's programs, or released by the iptables datapath (else:
         * the link is gone) */
        if (name[0] || if_indextoname((unsigned)x->ifindex, ifname))
            agent_log("info", "interface '%s': identified, enforcing %.1f ms after it was held",
                      x->name, (wall_s() - x->since) * 1e3);
        *x = h->held[--h->nheld];
    }
}

int hold_release(const char *ifname)
{
    int ifindex = (int)if_nametoindex(ifname);
    if (!ifindex)
        return -ENODEV;
    static const enum bpf_tc_attach_point points[] = {BPF_TC_EGRESS, BPF_TC_INGRESS};
    int released = 0;
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        char name[BPF_OBJ_NAME_LEN];
        filter_prog(ifindex, points[i], name, sizeof(name));
        if (strncmp(name, "moat_hold", 9) != 0)
            continue;
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = points[i]);
        LIBBPF_OPTS(bpf_tc_opts, opts, .handle = MOAT_TC_HANDLE, .priority = MOAT_TC_PRIORITY);
        int err = bpf_tc_detach(&hook, &opts);
        if (err)
            return err < 0 ? err : -EIO;
        released++;
    }
    if (released)
        agent_log("info", "interface '%s': hold released, the datapath's rules are in force",
                  ifname);
    return released;
}

int hold_interface(const char *ifname)
{
    int ifindex = (int)if_nametoindex(ifname);
    if (!ifindex)
        return -ENODEV;
    struct moat_hold *skel = moat_hold__open_and_load();
    if (!skel)
        return -errno;
    int err = hold_hook(ifindex, BPF_TC_EGRESS, bpf_program__fd(skel->progs.moat_hold_to_workload));
    if (!err)
        err = hold_hook(ifindex, BPF_TC_INGRESS,
                        bpf_program__fd(skel->progs.moat_hold_from_workload));
    moat_hold__destroy(skel); /* the filters keep the programs */
    return err;
}

json_t *hold_status(struct hold *h)
{
    json_t *list = json_array();
    int fd = bpf_map__fd(h->skel->maps.moat_hold_drops);
    hold_refresh(h);
    for (size_t i = 0; i < h->nheld; i++) {
        struct held *x = &h->held[i];
        uint32_t key = (uint32_t)x->ifindex;
        uint64_t drops = 0;
        bpf_map_lookup_elem(fd, &key, &drops);
        json_array_append_new(list, json_pack("{s:s,s:f,s:I}", "interface", x->name, "since",
                                              x->since, "packets_dropped", (json_int_t)drops));
    }
    return json_pack("{s:o,s:I,s:I,s:I,s:I}", "held", list, "held_total", (json_int_t)h->total,
                     "held_while_down", (json_int_t)h->while_down, "held_while_up",
                     (json_int_t)h->while_up, "failures", (json_int_t)h->failures);
}
