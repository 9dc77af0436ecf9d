/*
 * Datapath unit tests: the real BPF programs (bpf/moat_tc.bpf.c), loaded by
 * the real backend (agent/dp_ebpf.c), run with BPF_PROG_TEST_RUN on crafted
 * frames (tests/bpf/frame.h) on the interfaces of three workloads (veths of
 * a private network namespace): verdicts for new flows and
 * replies over IPv4 and IPv6, the interface as the subject of every verdict,
 * spoofing, L2 and neighbour-discovery guards, IPv6 extension headers,
 * fragments, ICMP errors, truncated headers at every offset, TCP state and
 * the two conntrack tables, recovery of a flow whose entry was lost, policy
 * changes cutting established flows, monitor mode, defense off, the event
 * rate limit, and thousands of random flows against the compiled tables.
 *
 * Needs root. Runs in a private network namespace (unshare) and pins under
 * /sys/fs/bpf/moat/test-PID/, removed at the end.
 */
#include "../unit/testutil.h"
#include "agent.h"

#include "compile.h"
#include "datapath.h"
#include "frame.h"
#include "loader.h"
#include "mem.h"
#include "threatlist.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 4096
#define TCP_SYN    0x02
#define TCP_ACK    0x10
#define TCP_RST    0x04
#define TCP_FIN    0x01
#define TCP_PSH    0x08

enum { WEB, LB, OTH, NWL };

struct wl {
    const char *ifname, *v4, *v6;
    uint8_t mac[6];
    int ifindex;
};

static struct wl wls[NWL] = {
    [WEB] = {"d-web", "10.1.0.5", "fd00:1::5", {2, 0, 0, 0, 0, 5}, 0},
    [LB] = {"d-lb", "10.1.0.2", "fd00:1::2", {2, 0, 0, 0, 0, 2}, 0},
    [OTH] = {"d-oth", "10.1.0.9", "fd00:1::9", {2, 0, 0, 0, 0, 9}, 0},
};
static const uint8_t gw_mac[6] = {2, 0, 0, 0, 0, 1};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct fixture {
    struct datapath *dp;
    struct moat_policy *p;
    struct moat_tables *t;
    struct moat_event events[MAX_EVENTS];
    size_t nevents;
    char node[64];
    int prog_to, prog_from;
};

static void on_event(void *ctx, const struct moat_event *e)
{
    struct fixture *f = ctx;
    if (f->nevents < MAX_EVENTS)
        f->events[f->nevents++] = *e;
}

static const char *base_policy =
    "kind: Cluster\nname: prod\ndefense: on\n"
    "---\nkind: NetworkObject\nname: web\nnamespace: shop\napp: web\n"
    "---\nkind: NetworkObject\nname: lb\nnamespace: ingress\n"
    "---\nkind: NetworkObject\nname: bad\ncidrs: [192.0.2.0/24, '2001:db8:bad::/48']\n"
    "---\nkind: DefenseRule\ncluster: prod\nname: web-from-lb\nsource: lb\n"
    "destinations: [{object: web, ports: 80}]\nprotocol: tcp\naction: allow\npriority: 10\n"
    "---\nkind: DefenseRule\ncluster: prod\nname: web-alert\nsource: any\n"
    "destinations: [{object: web, ports: 8080}]\nprotocol: tcp\naction: alert\npriority: 20\n"
    "---\nkind: DefenseRule\ncluster: prod\nname: no-bad\nsource: any\n"
    "destinations: [{object: bad}]\naction: block\npriority: 5\n"
    "---\nkind: DefenseRule\ncluster: prod\nname: web-udp\nsource: lb\n"
    "destinations: [{object: web, ports: '5000/5999'}]\nprotocol: udp\naction: allow\n"
    "priority: 30\n"
    "---\nkind: Node\nname: n1\ncluster: prod\nips: [10.1.0.1, 'fd00:1::1']\n"
    "---\nkind: Workload\ncluster: prod\nnode: n1\nname: web-0\nnamespace: shop\n"
    "labels: {app: web}\nips: [10.1.0.5, 'fd00:1::5']\ninterface: d-web\n"
    "---\nkind: Workload\ncluster: prod\nnode: n1\nname: lb-0\nnamespace: ingress\n"
    "ips: [10.1.0.2, 'fd00:1::2']\ninterface: d-lb\n"
    "---\nkind: Workload\ncluster: prod\nnode: n1\nname: other-0\nnamespace: other\n"
    "ips: [10.1.0.9, 'fd00:1::9']\ninterface: d-oth\n";

static void load_policy(struct fixture *f, const char *text)
{
    struct moat_diags d;
    diags_init(&d);
    tables_free(f->t);
    policy_free(f->p);
    f->t = NULL;
    int err = policy_load_text(&f->p, text, strlen(text), "test.yaml", &d);
    for (size_t i = 0; i < d.count; i++)
        fprintf(stderr, "%s\n", d.items[i].text);
    diags_clear(&d);
    assert_int_equal(err, 0);
    struct moat_eval_opts opts = {.node = "n1"};
    assert_int_equal(policy_compile(f->p, &opts, &f->t), 0);
    uint32_t gen;
    assert_int_equal(datapath_ebpf.apply(f->dp, f->p, f->t, &gen), 0);
}

/* Attaches every workload's interface with its addresses, as moatd does. */
static void attach_all(struct fixture *f)
{
    for (size_t i = 0; i < f->p->nworkloads; i++) {
        const struct moat_workload *w = &f->p->workloads[i];
        assert_int_equal(datapath_ebpf.attach(f->dp, w->interface, w->cluster, w->addrs, w->naddrs),
                         0);
    }
}

static struct fixture fx;

static int setup(void **state)
{
    memset(&fx, 0, sizeof(fx));
    snprintf(fx.node, sizeof(fx.node), "test-%d", (int)getpid());
    for (int i = 0; i < NWL; i++) {
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %s-p && ip link set %s up",
                 wls[i].ifname, wls[i].ifname, wls[i].ifname);
        assert_int_equal(system(cmd), 0);
        wls[i].ifindex = (int)if_nametoindex(wls[i].ifname);
        assert_true(wls[i].ifindex > 0);
    }
    assert_int_equal(datapath_ebpf.open(fx.node, on_event, &fx, &fx.dp), 0);
    fx.prog_to = datapath_ebpf.prog_fd(fx.dp, true);
    fx.prog_from = datapath_ebpf.prog_fd(fx.dp, false);
    assert_true(fx.prog_to >= 0 && fx.prog_from >= 0);
    load_policy(&fx, base_policy);
    attach_all(&fx);
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    datapath_ebpf.close(f->dp, true);
    tables_free(f->t);
    policy_free(f->p);
    return 0;
}

/* Runs one frame through a hook of workload `w`'s interface; returns the tc verdict. */
static int run(struct fixture *f, int w, bool to_workload, const struct frame *fr)
{
    struct __sk_buff ctx = {0};
    ctx.ifindex = (uint32_t)wls[w].ifindex;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = fr->b, .data_size_in = (uint32_t)fr->len,
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
    int err = bpf_prog_test_run_opts(to_workload ? f->prog_to : f->prog_from, &opts);
    assert_int_equal(err, 0);
    datapath_ebpf.poll(f->dp, 0);
    return (int)opts.retval;
}

/*
 * As run(), for frames the kernel may refuse to test (it wants the IP header
 * whole for some lengths): a refusal counts as dropped, which is what the
 * frame would be on a real interface after the kernel's own checks.
 */
static int run_raw(struct fixture *f, int w, bool to_workload, const struct frame *fr)
{
    struct __sk_buff ctx = {0};
    ctx.ifindex = (uint32_t)wls[w].ifindex;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = fr->b, .data_size_in = (uint32_t)fr->len,
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
    int err = bpf_prog_test_run_opts(to_workload ? f->prog_to : f->prog_from, &opts);
    datapath_ebpf.poll(f->dp, 0);
    if (err == -EINVAL)
        return TC_ACT_SHOT;
    assert_int_equal(err, 0);
    return (int)opts.retval;
}

static const char *addr_of(int w, bool v6)
{
    return v6 ? wls[w].v6 : wls[w].v4;
}

/* L3 header with the right ethertype: IPv4 or IPv6 by the address's form. */
static void l3(struct frame *fr, const uint8_t *smac, const uint8_t *dmac, const char *src,
               const char *dst, uint8_t proto)
{
    bool v6 = strchr(src, ':') != NULL;
    frame_eth(fr, smac, dmac, v6 ? ETH_P_IPV6 : ETH_P_IP);
    if (v6)
        frame_ip6(fr, src, dst, proto);
    else
        frame_ip4(fr, src, dst, proto, 0, 0);
}

/* A TCP segment entering workload `to` from `src` (a workload index, or -1: from the gateway). */
static int tcp_in(struct fixture *f, int to, int from, const char *src, uint16_t sport,
                  uint16_t dport, uint8_t flags, bool v6)
{
    struct frame fr;
    l3(&fr, from >= 0 ? wls[from].mac : gw_mac, wls[to].mac, src ? src : addr_of(from, v6),
       addr_of(to, v6), IPPROTO_TCP);
    frame_tcp(&fr, sport, dport, flags);
    frame_done(&fr);
    return run(f, to, true, &fr);
}

/* A TCP segment leaving workload `from` toward address `dst`. */
static int tcp_out(struct fixture *f, int from, const char *src, const char *dst, uint16_t sport,
                   uint16_t dport, uint8_t flags)
{
    struct frame fr;
    bool v6 = strchr(dst, ':') != NULL;
    l3(&fr, wls[from].mac, gw_mac, src ? src : addr_of(from, v6), dst, IPPROTO_TCP);
    frame_tcp(&fr, sport, dport, flags);
    frame_done(&fr);
    return run(f, from, false, &fr);
}

static int udp_in(struct fixture *f, int to, int from, const char *dst, uint16_t sport,
                  uint16_t dport, bool v6)
{
    struct frame fr;
    const uint8_t *dmac = dst ? bcast : wls[to].mac;
    l3(&fr, wls[from].mac, dmac, addr_of(from, v6), dst ? dst : addr_of(to, v6), IPPROTO_UDP);
    frame_udp(&fr, sport, dport);
    frame_done(&fr);
    return run(f, to, true, &fr);
}

static size_t count_events(struct fixture *f, uint32_t kind, uint32_t reason)
{
    size_t n = 0;
    for (size_t i = 0; i < f->nevents; i++)
        if (f->events[i].kind == kind && (reason == UINT32_MAX || f->events[i].reason == reason))
            n++;
    return n;
}

static uint64_t drops(struct fixture *f, uint32_t reason)
{
    struct datapath_stats st;
    assert_int_equal(datapath_ebpf.stats(f->dp, &st), 0);
    return st.drops[reason];
}

/* ---------- policy verdicts, IPv4 and IPv6 ---------- */

static void test_allow_rule_and_reply(void **state)
{
    struct fixture *f = *state;
    for (int v6 = 0; v6 < 2; v6++) {
        f->nevents = 0;
        assert_int_equal(tcp_in(f, WEB, LB, NULL, 40000, 80, TCP_SYN, v6), TC_ACT_OK);
        /* the reply leaves the workload: passes as part of the allowed flow */
        assert_int_equal(tcp_out(f, WEB, NULL, addr_of(LB, v6), 80, 40000, TCP_SYN | TCP_ACK),
                         TC_ACT_OK);
        assert_int_equal(tcp_in(f, WEB, LB, NULL, 40000, 80, TCP_ACK, v6), TC_ACT_OK);
        assert_int_equal(f->nevents, 0); /* allow is never an alert */
    }
}

static void test_default_block_and_ct_reuse(void **state)
{
    struct fixture *f = *state;
    for (int v6 = 0; v6 < 2; v6++) {
        f->nevents = 0;
        assert_int_equal(tcp_in(f, WEB, OTH, NULL, 40001, 80, TCP_SYN, v6), TC_ACT_SHOT);
        assert_int_equal(f->nevents, 1);
        struct moat_event *e = &f->events[0];
        assert_int_equal(e->kind, MOAT_EV_POLICY);
        assert_int_equal(e->applied, MOAT_ABI_BLOCK);
        assert_int_equal(e->rule_id, 0); /* the cluster default */
        assert_int_equal(e->dport, 80);
        assert_int_equal(e->sport, 40001);
        assert_int_equal(e->dir, MOAT_ABI_DIR_INGRESS);
        /* the same flow again: dropped from the cache, no second event */
        assert_int_equal(tcp_in(f, WEB, OTH, NULL, 40001, 80, TCP_SYN, v6), TC_ACT_SHOT);
        assert_int_equal(f->nevents, 1);
    }
}

static void test_alert_rule_passes_with_event(void **state)
{
    struct fixture *f = *state;
    for (int v6 = 0; v6 < 2; v6++) {
        f->nevents = 0;
        assert_int_equal(tcp_in(f, WEB, OTH, NULL, 40002, 8080, TCP_SYN, v6), TC_ACT_OK);
        assert_int_equal(f->nevents, 1);
        assert_int_equal(f->events[0].applied, MOAT_ABI_ALERT);
        assert_int_equal(f->events[0].rule_id, f->p->rules[3].id); /* web-alert */
    }
}

static void test_egress_ipblock_block(void **state)
{
    struct fixture *f = *state;
    const char *bad[2] = {"192.0.2.7", "2001:db8:bad::7"};
    const char *ok[2] = {"198.51.100.1", "2001:db8:1::1"};
    for (int v6 = 0; v6 < 2; v6++) {
        f->nevents = 0;
        assert_int_equal(tcp_out(f, WEB, NULL, bad[v6], 5000, 53, TCP_SYN), TC_ACT_SHOT);
        assert_int_equal(f->nevents, 1);
        assert_int_equal(f->events[0].dir, MOAT_ABI_DIR_EGRESS);
        /* to an address no rule names: egress default allow */
        assert_int_equal(tcp_out(f, WEB, NULL, ok[v6], 5000, 53, TCP_SYN), TC_ACT_OK);
    }
}

static void test_host_reaches_workload(void **state)
{
    struct fixture *f = *state;
    /* the node's own address is `host`: the system rule host -> any allows it */
    assert_int_equal(tcp_in(f, WEB, -1, "10.1.0.1", 40003, 22, TCP_SYN, false), TC_ACT_OK);
    assert_int_equal(tcp_in(f, WEB, -1, "fd00:1::1", 40003, 22, TCP_SYN, true), TC_ACT_OK);
}

/* ---------- the interface is the subject ---------- */

static void test_not_addressed_dropped(void **state)
{
    struct fixture *f = *state;
    /* a flooded copy of lb's traffic arriving at web's interface: not web's */
    uint64_t before = drops(f, MOAT_DROP_NOT_ADDRESSED);
    struct frame fr;
    l3(&fr, wls[OTH].mac, wls[WEB].mac, wls[OTH].v4, wls[LB].v4, IPPROTO_TCP);
    frame_tcp(&fr, 40010, 80, TCP_SYN);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, true, &fr), TC_ACT_SHOT);
    /* and a frame to another MAC, even with web's address */
    l3(&fr, wls[LB].mac, wls[OTH].mac, wls[LB].v4, wls[WEB].v4, IPPROTO_TCP);
    frame_tcp(&fr, 40011, 80, TCP_SYN);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, true, &fr), TC_ACT_SHOT);
    assert_int_equal(drops(f, MOAT_DROP_NOT_ADDRESSED), before + 2);
}

static void test_group_destinations_judged(void **state)
{
    struct fixture *f = *state;
    const char *groups[] = {"255.255.255.255", "10.1.0.255", "224.0.0.1"};
    for (size_t i = 0; i < 3; i++) {
        f->nevents = 0;
        /* other -> web on UDP: no rule, default block, also to a group address */
        assert_int_equal(udp_in(f, WEB, OTH, groups[i], 6000, 6000, false), TC_ACT_SHOT);
        assert_int_equal(count_events(f, MOAT_EV_POLICY, MOAT_DROP_POLICY), 1);
        /* lb -> web on UDP 5000-5999 is allowed, to a group address too */
        assert_int_equal(udp_in(f, WEB, LB, groups[i], 6000, 5353, false), TC_ACT_OK);
    }
    assert_int_equal(udp_in(f, WEB, OTH, "ff02::1", 6000, 6000, true), TC_ACT_SHOT);
    assert_int_equal(udp_in(f, WEB, LB, "ff02::1", 6000, 5353, true), TC_ACT_OK);
    /* judged packet by packet: one receiver's verdict is not another's */
    assert_int_equal(udp_in(f, LB, OTH, "255.255.255.255", 6001, 5353, false), TC_ACT_SHOT);
    assert_int_equal(udp_in(f, WEB, LB, "255.255.255.255", 6001, 5353, false), TC_ACT_OK);
}

static void test_link_local_and_unspecified_sources(void **state)
{
    struct fixture *f = *state;
    uint64_t before = drops(f, MOAT_DROP_LINK_LOCAL);
    f->nevents = 0;
    /* TCP from a link-local address (web's own, even) and from :: */
    assert_int_equal(tcp_out(f, WEB, "fe80::ff:fe00:5", wls[OTH].v6, 40020, 22, TCP_SYN),
                     TC_ACT_SHOT);
    assert_int_equal(tcp_out(f, WEB, "fe80::bad", "fe80::9", 40020, 22, TCP_SYN), TC_ACT_SHOT);
    assert_int_equal(tcp_out(f, WEB, "::", wls[OTH].v6, 40021, 22, TCP_SYN), TC_ACT_SHOT);
    assert_int_equal(tcp_out(f, WEB, "0.0.0.0", wls[OTH].v4, 40021, 22, TCP_SYN), TC_ACT_SHOT);
    assert_int_equal(drops(f, MOAT_DROP_LINK_LOCAL), before + 4);
    assert_int_equal(count_events(f, MOAT_EV_SPOOFING, MOAT_DROP_LINK_LOCAL), 4);
    /* DHCP clients: from 0.0.0.0 and from the workload's EUI-64 link-local address */
    struct frame fr;
    l3(&fr, wls[WEB].mac, bcast, "0.0.0.0", "255.255.255.255", IPPROTO_UDP);
    frame_udp(&fr, 68, 67);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_OK);
    uint8_t mc[6] = {0x33, 0x33, 0, 1, 0, 2};
    l3(&fr, wls[WEB].mac, mc, "fe80::ff:fe00:5", "ff02::1:2", IPPROTO_UDP);
    frame_udp(&fr, 546, 547);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_OK);
    /* ... but not from a link-local address that is not its own */
    l3(&fr, wls[WEB].mac, mc, "fe80::ff:fe00:9", "ff02::1:2", IPPROTO_UDP);
    frame_udp(&fr, 546, 547);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
}

static void test_spoofed_source_dropped(void **state)
{
    struct fixture *f = *state;
    for (int v6 = 0; v6 < 2; v6++) {
        f->nevents = 0;
        const char *claimed = v6 ? "fd00:1::77" : "10.1.0.77";
        assert_int_equal(tcp_out(f, WEB, claimed, addr_of(LB, v6), 1234, 80, TCP_SYN), TC_ACT_SHOT);
        assert_int_equal(f->nevents, 1);
        assert_int_equal(f->events[0].kind, MOAT_EV_SPOOFING);
        assert_int_equal(f->events[0].reason, MOAT_DROP_SPOOFED);
        struct moat_addr real;
        addr_parse(wls[WEB].v4, &real);
        assert_memory_equal(f->events[0].waddr, real.b, 16); /* the real sender */
        /* claiming lb's address to reach lb's allowed port of web does not work either */
        assert_int_equal(tcp_out(f, WEB, addr_of(LB, v6), addr_of(OTH, v6), 1235, 80, TCP_SYN),
                         TC_ACT_SHOT);
        /* its own address passes the check */
        assert_int_equal(tcp_out(f, WEB, NULL, addr_of(LB, v6), 1236, 80, TCP_SYN), TC_ACT_OK);
    }
}

/* ---------- L2 and neighbour discovery ---------- */

static void test_mac_learned_and_pinned(void **state)
{
    struct fixture *f = *state;
    uint8_t other[6] = {2, 0, 0, 0, 0, 0x77};
    uint64_t before = drops(f, MOAT_DROP_MAC_SPOOF);
    /* web's MAC was learned from its first frame: another source MAC is dropped */
    struct frame fr;
    l3(&fr, other, gw_mac, wls[WEB].v4, wls[LB].v4, IPPROTO_TCP);
    frame_tcp(&fr, 40030, 80, TCP_SYN);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
    /* oth learns its MAC first, then cannot take web's */
    assert_int_equal(tcp_out(f, OTH, NULL, wls[LB].v4, 40031, 80, TCP_SYN), TC_ACT_OK);
    l3(&fr, wls[WEB].mac, gw_mac, wls[OTH].v4, wls[LB].v4, IPPROTO_TCP);
    frame_tcp(&fr, 40032, 80, TCP_SYN);
    frame_done(&fr);
    assert_int_equal(run(f, OTH, false, &fr), TC_ACT_SHOT);
    /* a group source MAC is never a workload's */
    l3(&fr, bcast, gw_mac, wls[WEB].v4, wls[LB].v4, IPPROTO_TCP);
    frame_tcp(&fr, 40033, 80, TCP_SYN);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
    assert_int_equal(drops(f, MOAT_DROP_MAC_SPOOF), before + 3);
    /* a re-attach (as after every policy update) keeps the learned MAC */
    attach_all(f);
    l3(&fr, other, gw_mac, wls[WEB].v4, wls[LB].v4, IPPROTO_TCP);
    frame_tcp(&fr, 40034, 80, TCP_SYN);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
}

static void test_arp_guard(void **state)
{
    struct fixture *f = *state;
    struct frame fr;
    /* a reply claiming web's own address passes; a probe from 0.0.0.0 too */
    frame_eth(&fr, wls[WEB].mac, wls[LB].mac, ETH_P_ARP);
    frame_arp(&fr, 2, wls[WEB].mac, wls[WEB].v4, wls[LB].mac, wls[LB].v4);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_OK);
    frame_eth(&fr, wls[WEB].mac, bcast, ETH_P_ARP);
    frame_arp(&fr, 1, wls[WEB].mac, "0.0.0.0", bcast, wls[WEB].v4);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_OK);
    f->nevents = 0;
    /* claiming lb's address (the classic ARP spoof), or the gateway's */
    frame_eth(&fr, wls[WEB].mac, wls[OTH].mac, ETH_P_ARP);
    frame_arp(&fr, 2, wls[WEB].mac, wls[LB].v4, wls[OTH].mac, wls[OTH].v4);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
    frame_eth(&fr, wls[WEB].mac, bcast, ETH_P_ARP);
    frame_arp(&fr, 2, wls[WEB].mac, "10.1.0.1", bcast, "10.1.0.1"); /* gratuitous */
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
    /* a sender MAC that is not the frame's */
    uint8_t other[6] = {2, 0, 0, 0, 0, 0x66};
    frame_eth(&fr, wls[WEB].mac, wls[LB].mac, ETH_P_ARP);
    frame_arp(&fr, 2, other, wls[WEB].v4, wls[LB].mac, wls[LB].v4);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
    assert_int_equal(count_events(f, MOAT_EV_SPOOFING, MOAT_DROP_ARP_SPOOF), 3);
    /* ARP toward a workload passes (the sender's own hook guards it) */
    frame_eth(&fr, gw_mac, bcast, ETH_P_ARP);
    frame_arp(&fr, 1, gw_mac, "10.1.0.1", bcast, wls[WEB].v4);
    assert_int_equal(run(f, WEB, true, &fr), TC_ACT_OK);
}

static int nd(struct fixture *f, int w, uint8_t type, const char *src, const char *dst,
              const char *target, const uint8_t *lla)
{
    struct frame fr;
    uint8_t mc[6] = {0x33, 0x33, 0, 0, 0, 1};
    frame_eth(&fr, wls[w].mac, mc, ETH_P_IPV6);
    frame_ip6(&fr, src, dst, IPPROTO_ICMPV6);
    frame_icmp(&fr, type, 0, 0);
    if (target)
        frame_nd(&fr, target, type == 135 ? 1 : 2, lla);
    frame_done(&fr);
    return run(f, w, false, &fr);
}

static void test_nd_guard(void **state)
{
    struct fixture *f = *state;
    const uint8_t *mac = wls[WEB].mac;
    const char *ll = "fe80::ff:fe00:5"; /* EUI-64 of 02:00:00:00:00:05 */
    /* NS and NA for its own addresses, DAD from ::, MLD: pass */
    assert_int_equal(nd(f, WEB, 135, ll, "ff02::1:ff00:2", wls[LB].v6, mac), TC_ACT_OK);
    assert_int_equal(nd(f, WEB, 136, wls[WEB].v6, "ff02::1", wls[WEB].v6, mac), TC_ACT_OK);
    assert_int_equal(nd(f, WEB, 136, ll, "ff02::1", ll, mac), TC_ACT_OK);
    assert_int_equal(nd(f, WEB, 135, "::", "ff02::1:ff00:5", wls[WEB].v6, NULL), TC_ACT_OK);
    assert_int_equal(nd(f, WEB, 143, ll, "ff02::16", NULL, NULL), TC_ACT_OK);
    assert_int_equal(nd(f, WEB, 133, ll, "ff02::2", NULL, NULL), TC_ACT_OK);
    f->nevents = 0;
    /* router advertisements and redirects from a workload */
    assert_int_equal(nd(f, WEB, 134, ll, "ff02::1", NULL, NULL), TC_ACT_SHOT);
    assert_int_equal(nd(f, WEB, 137, ll, "ff02::1", NULL, NULL), TC_ACT_SHOT);
    assert_int_equal(count_events(f, MOAT_EV_SPOOFING, MOAT_DROP_ROUTER), 2);
    /* NA for lb's address, for the gateway's link-local one, with a foreign MAC option */
    uint8_t other[6] = {2, 0, 0, 0, 0, 0x55};
    assert_int_equal(nd(f, WEB, 136, ll, "ff02::1", wls[LB].v6, mac), TC_ACT_SHOT);
    assert_int_equal(nd(f, WEB, 136, ll, "ff02::1", "fe80::1", mac), TC_ACT_SHOT);
    assert_int_equal(nd(f, WEB, 136, wls[WEB].v6, "ff02::1", wls[WEB].v6, other), TC_ACT_SHOT);
    /* NS from another's link-local address (it would poison caches), DAD for lb's address */
    assert_int_equal(nd(f, WEB, 135, "fe80::1", "ff02::1:ff00:2", wls[LB].v6, mac), TC_ACT_SHOT);
    assert_int_equal(nd(f, WEB, 135, "::", "ff02::1:ff00:2", wls[LB].v6, NULL), TC_ACT_SHOT);
    assert_int_equal(count_events(f, MOAT_EV_SPOOFING, MOAT_DROP_ND_SPOOF), 5);
    /* ND toward a workload passes (from the node, say) */
    struct frame fr;
    frame_eth(&fr, gw_mac, mac, ETH_P_IPV6);
    frame_ip6(&fr, "fe80::1", ll, IPPROTO_ICMPV6);
    frame_icmp(&fr, 134, 0, 0);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, true, &fr), TC_ACT_OK);
}

static void test_other_ethertypes_and_dhcp_servers(void **state)
{
    struct fixture *f = *state;
    struct frame fr;
    uint16_t types[] = {0x88cc /* LLDP */, 0x8100 /* VLAN */, 0x88a8, 0x8863 /* PPPoE */};
    for (size_t i = 0; i < 4; i++) {
        frame_eth(&fr, wls[WEB].mac, bcast, types[i]);
        frame_bytes(&fr, 46);
        assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
        frame_eth(&fr, gw_mac, wls[WEB].mac, types[i]);
        frame_bytes(&fr, 46);
        assert_int_equal(run(f, WEB, true, &fr), TC_ACT_SHOT);
    }
    f->nevents = 0;
    l3(&fr, wls[WEB].mac, bcast, wls[WEB].v4, "255.255.255.255", IPPROTO_UDP);
    frame_udp(&fr, 67, 68);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
    l3(&fr, wls[WEB].mac, bcast, "fe80::ff:fe00:5", "fe80::9", IPPROTO_UDP);
    frame_udp(&fr, 547, 546);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
    assert_int_equal(count_events(f, MOAT_EV_SPOOFING, MOAT_DROP_DHCP_SERVER), 2);
}

/* ---------- IPv6 extension headers ---------- */

/* lb -> web TCP on `dport` behind a chain of `n` destination-options headers. */
static int tcp_in_exthdrs(struct fixture *f, int n, uint8_t first_type, uint16_t sport,
                          uint16_t dport)
{
    struct frame fr;
    frame_eth(&fr, wls[LB].mac, wls[WEB].mac, ETH_P_IPV6);
    frame_ip6(&fr, wls[LB].v6, wls[WEB].v6, n ? first_type : IPPROTO_TCP);
    for (int i = 0; i < n; i++)
        frame_ext6(&fr, i + 1 < n ? 60 : IPPROTO_TCP, (uint8_t)(i % 3));
    frame_tcp(&fr, sport, dport, TCP_SYN);
    frame_done(&fr);
    return run(f, WEB, true, &fr);
}

static void test_ipv6_extension_headers(void **state)
{
    struct fixture *f = *state;
    /* hop-by-hop, destination options: the real port is judged */
    assert_int_equal(tcp_in_exthdrs(f, 1, 0, 41000, 80), TC_ACT_OK);
    assert_int_equal(tcp_in_exthdrs(f, 1, 0, 41001, 22), TC_ACT_SHOT);
    assert_int_equal(tcp_in_exthdrs(f, 3, 60, 41002, 80), TC_ACT_OK);
    assert_int_equal(tcp_in_exthdrs(f, 3, 60, 41003, 22), TC_ACT_SHOT);
    assert_int_equal(tcp_in_exthdrs(f, 8, 0, 41004, 80), TC_ACT_OK);
    /* more than eight: dropped, even to an allowed port */
    uint64_t before = drops(f, MOAT_DROP_EXTHDR_CHAIN);
    assert_int_equal(tcp_in_exthdrs(f, 9, 0, 41005, 80), TC_ACT_SHOT);
    assert_int_equal(drops(f, MOAT_DROP_EXTHDR_CHAIN), before + 1);
    /* hop-by-hop anywhere but first is malformed */
    struct frame fr;
    frame_eth(&fr, wls[LB].mac, wls[WEB].mac, ETH_P_IPV6);
    frame_ip6(&fr, wls[LB].v6, wls[WEB].v6, 60);
    frame_ext6(&fr, 0, 0);
    frame_ext6(&fr, IPPROTO_TCP, 0);
    frame_tcp(&fr, 41006, 80, TCP_SYN);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, true, &fr), TC_ACT_SHOT);
    /* a routing header: passed through with segments left 0, dropped otherwise */
    for (int left = 0; left < 2; left++) {
        frame_eth(&fr, wls[LB].mac, wls[WEB].mac, ETH_P_IPV6);
        frame_ip6(&fr, wls[LB].v6, wls[WEB].v6, 43);
        frame_routing6(&fr, IPPROTO_TCP, (uint8_t)left);
        frame_tcp(&fr, (uint16_t)(41007 + left), 80, TCP_SYN);
        frame_done(&fr);
        assert_int_equal(run(f, WEB, true, &fr), left ? TC_ACT_SHOT : TC_ACT_OK);
    }
    /* an atomic fragment (offset 0, no more fragments) is a whole packet */
    for (int i = 0; i < 2; i++) {
        frame_eth(&fr, wls[LB].mac, wls[WEB].mac, ETH_P_IPV6);
        frame_ip6(&fr, wls[LB].v6, wls[WEB].v6, 44);
        frame_frag6(&fr, IPPROTO_TCP, 0, false, 99);
        frame_tcp(&fr, (uint16_t)(41009 + i), i ? 22 : 80, TCP_SYN);
        frame_done(&fr);
        assert_int_equal(run(f, WEB, true, &fr), i ? TC_ACT_SHOT : TC_ACT_OK);
    }
    /* from a workload too: destination options before a blocked egress port */
    frame_eth(&fr, wls[WEB].mac, gw_mac, ETH_P_IPV6);
    frame_ip6(&fr, wls[WEB].v6, "2001:db8:bad::1", 60);
    frame_ext6(&fr, IPPROTO_UDP, 1);
    frame_udp(&fr, 5000, 53);
    frame_done(&fr);
    assert_int_equal(run(f, WEB, false, &fr), TC_ACT_SHOT);
}

/* ---------- fragments ---------- */

static int frag4(struct fixture *f, int from, int to, uint16_t id, uint16_t frag, bool with_udp,
                 uint16_t dport, size_t payload)
{
    struct frame fr;
    frame_eth(&fr, wls[from].mac, wls[to].mac, ETH_P_IP);
    frame_ip4(&fr, wls[from].v4, wls[to].v4, IPPROTO_UDP, id, frag);
    if (with_udp)
        frame_udp(&fr, 7000, dport);
    frame_bytes(&fr, payload);
    frame_done(&fr);
    return run(f, to, true, &fr);
}

static int frag6(struct fixture *f, int from, int to, uint32_t id, uint16_t off8, bool more,
                 bool with_udp, uint16_t dport, size_t payload)
{
    struct frame fr;
    frame_eth(&fr, wls[from].mac, wls[to].mac, ETH_P_IPV6);
    frame_ip6(&fr, wls[from].v6, wls[to].v6, 44);
    frame_frag6(&fr, IPPROTO_UDP, off8, more, id);
    if (with_udp)
        frame_udp(&fr, 7000, dport);
    frame_bytes(&fr, payload);
    frame_done(&fr);
    return run(f, to, true, &fr);
}

static void test_fragments_follow_first(void **state)
{
    struct fixture *f = *state;
    /* allowed port (lb -> web UDP 5000-5999): every fragment passes */
    assert_int_equal(frag4(f, LB, WEB, 100, 0x2000, true, 5500, 1472), TC_ACT_OK);
    assert_int_equal(frag4(f, LB, WEB, 100, 0x2000 | 185, false, 0, 1480), TC_ACT_OK);
    assert_int_equal(frag4(f, LB, WEB, 100, 370, false, 0, 1000), TC_ACT_OK);
    /* blocked port: every fragment dropped */
    assert_int_equal(frag4(f, LB, WEB, 101, 0x2000, true, 6500, 1472), TC_ACT_SHOT);
    assert_int_equal(frag4(f, LB, WEB, 101, 185, false, 0, 1000), TC_ACT_SHOT);
    /* a later fragment whose first never came */
    uint64_t before = drops(f, MOAT_DROP_FRAG_NO_FIRST);
    assert_int_equal(frag4(f, LB, WEB, 102, 185, false, 0, 1000), TC_ACT_SHOT);
    assert_int_equal(drops(f, MOAT_DROP_FRAG_NO_FIRST), before + 1);
    /* a first fragment too short for the transport header */
    assert_int_equal(frag4(f, LB, WEB, 103, 0x2000, false, 0, 4), TC_ACT_SHOT);
    /* the same over IPv6 */
    assert_int_equal(frag6(f, LB, WEB, 7, 0, true, true, 5500, 1440), TC_ACT_OK);
    assert_int_equal(frag6(f, LB, WEB, 7, 181, false, false, 0, 500), TC_ACT_OK);
    assert_int_equal(frag6(f, LB, WEB, 8, 0, true, true, 6500, 1440), TC_ACT_SHOT);
    assert_int_equal(frag6(f, LB, WEB, 8, 181, false, false, 0, 500), TC_ACT_SHOT);
    assert_int_equal(frag6(f, LB, WEB, 9, 181, false, false, 0, 500), TC_ACT_SHOT);
    /* an overlapping first fragment with other ports is judged by its own ports */
    assert_int_equal(frag4(f, LB, WEB, 104, 0x2000, true, 5501, 64), TC_ACT_OK);
    assert_int_equal(frag4(f, LB, WEB, 104, 0x2000, true, 6501, 64), TC_ACT_SHOT);
    assert_int_equal(frag4(f, LB, WEB, 104, 9, false, 0, 64), TC_ACT_SHOT);
}

/* ---------- truncated headers ---------- */

static void test_truncated_at_every_offset(void **state)
{
    struct fixture *f = *state;
    struct frame full, fr;
    frame_eth(&full, wls[LB].mac, wls[WEB].mac, ETH_P_IPV6);
    frame_ip6(&full, wls[LB].v6, wls[WEB].v6, 0);
    frame_ext6(&full, 60, 0);
    frame_ext6(&full, IPPROTO_TCP, 1);
    frame_tcp(&full, 42000, 80, TCP_SYN);
    size_t hdrs = frame_done(&full) - 20 + 14; /* up to the TCP flags */
    for (size_t len = 14; len < hdrs; len++) {
        fr = full;
        fr.len = len;
        int v = run_raw(f, WEB, true, &fr);
        if (v != TC_ACT_SHOT)
            fail_msg("IPv6 frame cut at %zu bytes: verdict %d", len, v);
    }
    assert_int_equal(run(f, WEB, true, &full), TC_ACT_OK);
    frame_eth(&full, wls[LB].mac, wls[WEB].mac, ETH_P_IP);
    frame_ip4(&full, wls[LB].v4, wls[WEB].v4, IPPROTO_TCP, 0, 0);
    frame_tcp(&full, 42001, 80, TCP_SYN);
    hdrs = frame_done(&full) - 6;
    for (size_t len = 14; len < hdrs; len++) {
        fr = full;
        fr.len = len;
        int v = run_raw(f, WEB, true, &fr);
        if (v != TC_ACT_SHOT)
            fail_msg("IPv4 frame cut at %zu bytes: verdict %d", len, v);
    }
}

/* ---------- ICMP errors ---------- */

/* An ICMP(v6) error from `from_addr` (leaving `hook_wl` or entering it) quoting a TCP packet. */
static int icmp_error(struct fixture *f, int hook_wl, bool to, const char *src, const char *dst,
                      const char *qsrc, const char *qdst, uint16_t qsport, uint16_t qdport)
{
    struct frame fr;
    bool v6 = strchr(src, ':') != NULL;
    frame_eth(&fr, to ? gw_mac : wls[hook_wl].mac, to ? wls[hook_wl].mac : gw_mac,
              v6 ? ETH_P_IPV6 : ETH_P_IP);
    if (v6)
        frame_ip6(&fr, src, dst, IPPROTO_ICMPV6);
    else
        frame_ip4(&fr, src, dst, IPPROTO_ICMP, 0, 0);
    frame_icmp(&fr, v6 ? 1 : 3, v6 ? 4 : 3, 0);
    frame_quote(&fr);
    if (v6)
        frame_ip6(&fr, qsrc, qdst, IPPROTO_TCP);
    else
        frame_ip4(&fr, qsrc, qdst, IPPROTO_TCP, 0, 0);
    frame_tcp(&fr, qsport, qdport, TCP_SYN);
    frame_done(&fr);
    return run(f, hook_wl, to, &fr);
}

static void test_icmp_errors(void **state)
{
    struct fixture *f = *state;
    for (int v6 = 0; v6 < 2; v6++) {
        const char *web = addr_of(WEB, v6), *lb = addr_of(LB, v6), *oth = addr_of(OTH, v6);
        /* lb -> web:80 exists; an error about it from web back to lb passes */
        assert_int_equal(tcp_in(f, WEB, LB, NULL, 43000, 80, TCP_SYN, v6), TC_ACT_OK);
        assert_int_equal(icmp_error(f, WEB, false, web, lb, lb, web, 43000, 80), TC_ACT_OK);
        /* ... but not sent to another workload, nor with another outer source */
        assert_int_equal(icmp_error(f, WEB, false, web, oth, lb, web, 43000, 80), TC_ACT_SHOT);
        assert_int_equal(icmp_error(f, WEB, false, lb, lb, lb, web, 43000, 80), TC_ACT_SHOT);
        /* an error about a flow nobody saw */
        assert_int_equal(icmp_error(f, WEB, false, web, lb, lb, web, 43999, 81), TC_ACT_SHOT);
        /* web -> outside: an error from a router on the way (not a workload) passes */
        const char *far = v6 ? "2001:db8:1::9" : "198.51.100.9";
        const char *rtr = v6 ? "2001:db8:ff::1" : "203.0.113.1";
        assert_int_equal(tcp_out(f, WEB, NULL, far, 43001, 443, TCP_SYN), TC_ACT_OK);
        assert_int_equal(icmp_error(f, WEB, true, rtr, web, web, far, 43001, 443), TC_ACT_OK);
        /* ... but not from another workload posing as a router */
        assert_int_equal(icmp_error(f, WEB, true, oth, web, web, far, 43001, 443), TC_ACT_SHOT);
        /* an error quoting a blocked flow does not pass either */
        assert_int_equal(tcp_in(f, WEB, OTH, NULL, 43002, 22, TCP_SYN, v6), TC_ACT_SHOT);
        assert_int_equal(icmp_error(f, WEB, false, web, oth, oth, web, 43002, 22), TC_ACT_SHOT);
    }
}

/* ---------- connection tracking ---------- */

static int pinned_map(struct fixture *f, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "/sys/fs/bpf/moat/%s/%s", f->node, name);
    int fd = bpf_obj_get(path);
    assert_true(fd >= 0);
    return fd;
}

static size_t map_entries(int fd, size_t key_size)
{
    uint8_t key[64], next[64];
    size_t n = 0;
    void *prev = NULL;
    assert_true(key_size <= sizeof(key));
    while (bpf_map_get_next_key(fd, prev, next) == 0) {
        memcpy(key, next, key_size);
        prev = key;
        n++;
    }
    return n;
}

static void test_tcp_states_and_tables(void **state)
{
    struct fixture *f = *state;
    int est = pinned_map(f, "moat_ct_est"), fresh = pinned_map(f, "moat_ct_new");
    size_t e0 = map_entries(est, sizeof(struct moat_ct_key));
    size_t n0 = map_entries(fresh, sizeof(struct moat_ct_key));
    /* SYN: a new entry; SYN-ACK back: established */
    assert_int_equal(tcp_in(f, WEB, LB, NULL, 44000, 80, TCP_SYN, false), TC_ACT_OK);
    assert_int_equal(map_entries(fresh, sizeof(struct moat_ct_key)), n0 + 1);
    assert_int_equal(tcp_out(f, WEB, NULL, wls[LB].v4, 80, 44000, TCP_SYN | TCP_ACK), TC_ACT_OK);
    assert_int_equal(map_entries(fresh, sizeof(struct moat_ct_key)), n0);
    assert_int_equal(map_entries(est, sizeof(struct moat_ct_key)), e0 + 1);
    /* a blocked flow never reaches the established table */
    assert_int_equal(tcp_in(f, WEB, OTH, NULL, 44001, 80, TCP_SYN, false), TC_ACT_SHOT);
    assert_int_equal(map_entries(est, sizeof(struct moat_ct_key)), e0 + 1);
    /* a RST back is no answer */
    assert_int_equal(tcp_in(f, WEB, LB, NULL, 44002, 80, TCP_SYN, false), TC_ACT_OK);
    assert_int_equal(tcp_out(f, WEB, NULL, wls[LB].v4, 80, 44002, TCP_RST | TCP_ACK), TC_ACT_OK);
    assert_int_equal(map_entries(est, sizeof(struct moat_ct_key)), e0 + 1);
    close(est);
    close(fresh);
}

static void test_flood_cannot_evict_established(void **state)
{
    struct fixture *f = *state;
    /* an allowed connection, established and then idle */
    assert_int_equal(tcp_in(f, WEB, LB, NULL, 45000, 80, TCP_SYN, false), TC_ACT_OK);
    assert_int_equal(tcp_out(f, WEB, NULL, wls[LB].v4, 80, 45000, TCP_SYN | TCP_ACK), TC_ACT_OK);
    assert_int_equal(tcp_in(f, WEB, LB, NULL, 45000, 80, TCP_ACK, false), TC_ACT_OK);
    /* 200,000 SYNs of distinct flows from a blocked peer, more than the new table holds */
    struct frame fr;
    l3(&fr, wls[OTH].mac, wls[WEB].mac, wls[OTH].v4, wls[WEB].v4, IPPROTO_TCP);
    frame_tcp(&fr, 1, 1, TCP_SYN);
    frame_done(&fr);
    struct __sk_buff ctx = {0};
    ctx.ifindex = (uint32_t)wls[WEB].ifindex;
    for (uint32_t i = 0; i < 200000; i++) {
        fr.b[34] = (uint8_t)(i >> 8); /* source port */
        fr.b[35] = (uint8_t)i;
        fr.b[36] = (uint8_t)(1 + (i >> 16)); /* destination port */
        fr.b[37] = (uint8_t)(i >> 3);
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = fr.b, .data_size_in = (uint32_t)fr.len,
                    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
        assert_int_equal(bpf_prog_test_run_opts(f->prog_to, &opts), 0);
        if (i % 4096 == 0)
            datapath_ebpf.poll(f->dp, 0);
    }
    datapath_ebpf.poll(f->dp, 0);
    f->nevents = 0;
    /* the idle connection's reply still passes, judged as the allowed flow it is */
    assert_int_equal(tcp_out(f, WEB, NULL, wls[LB].v4, 80, 45000, TCP_ACK | TCP_PSH), TC_ACT_OK);
    assert_int_equal(tcp_in(f, WEB, LB, NULL, 45000, 80, TCP_ACK, false), TC_ACT_OK);
    assert_int_equal(f->nevents, 0);
}

static void test_lost_entry_recovered_in_right_direction(void **state)
{
    struct fixture *f = *state;
    /* web opens a connection out to oth's port 7000 (egress inside the cluster: judged
     * at oth); its entry is lost; oth's next segment enters web mid-stream */
    assert_int_equal(tcp_out(f, WEB, NULL, wls[OTH].v4, 46000, 7000, TCP_SYN), TC_ACT_OK);
    int est = pinned_map(f, "moat_ct_est"), fresh = pinned_map(f, "moat_ct_new");
    struct moat_ct_key k = {0};
    /* delete both orientations' canonical key: whichever it is */
    for (int t = 0; t < 2; t++) {
        struct moat_addr a, b;
        addr_parse(t ? wls[OTH].v4 : wls[WEB].v4, &a);
        addr_parse(t ? wls[WEB].v4 : wls[OTH].v4, &b);
        memcpy(k.a_addr, a.b, 16);
        memcpy(k.b_addr, b.b, 16);
        k.a_port = t ? 7000 : 46000;
        k.b_port = t ? 46000 : 7000;
        k.proto = IPPROTO_TCP;
        bpf_map_delete_elem(est, &k);
        bpf_map_delete_elem(fresh, &k);
    }
    f->nevents = 0;
    /* judged as the reply it is (web's own flow), not as oth -> web:46000 (default block) */
    assert_int_equal(tcp_in(f, WEB, OTH, NULL, 7000, 46000, TCP_ACK | TCP_PSH, false), TC_ACT_OK);
    assert_int_equal(f->nevents, 0);
    /* a mid-stream packet to a privileged port is never taken for a reply */
    assert_int_equal(tcp_in(f, WEB, OTH, NULL, 46001, 22, TCP_ACK, false), TC_ACT_SHOT);
    /* a SYN is judged strictly in its direction: oth cannot open web:46000 */
    assert_int_equal(tcp_in(f, WEB, OTH, NULL, 7001, 46002, TCP_SYN, false), TC_ACT_SHOT);
    /* a SYN-ACK whose SYN this node missed is the reply of a flow web opened */
    assert_int_equal(tcp_in(f, WEB, OTH, NULL, 7000, 46003, TCP_SYN | TCP_ACK, false), TC_ACT_OK);
    close(est);
    close(fresh);
}

/* ---------- policy changes, modes ---------- */

static void test_rule_change_cuts_established_flow(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tcp_in(f, WEB, LB, NULL, 41000, 80, TCP_SYN, false), TC_ACT_OK);
    char *text = moat_strdup(base_policy);
    char *at = strstr(text, "action: allow");
    memcpy(at, "action: block", 13);
    load_policy(f, text);
    free(text);
    f->nevents = 0;
    /* next packet of the established flow, either direction, is judged again */
    assert_int_equal(tcp_out(f, WEB, NULL, wls[LB].v4, 80, 41000, TCP_ACK), TC_ACT_SHOT);
    assert_int_equal(f->nevents, 1);
    assert_int_equal(f->events[0].kind, MOAT_EV_CUT);
    assert_int_equal(tcp_in(f, WEB, LB, NULL, 41000, 80, TCP_ACK, false), TC_ACT_SHOT);
    load_policy(f, base_policy);
    assert_int_equal(tcp_in(f, WEB, LB, NULL, 41000, 80, TCP_ACK, false), TC_ACT_OK);
}

static void test_monitor_mode_and_defense_off(void **state)
{
    struct fixture *f = *state;
    char *text = moat_asprintf("%s", base_policy);
    char *at = strstr(text, "defense: on");
    char *mon = moat_asprintf("%.*sdefense: on\nmode: monitor%s", (int)(at - text), text, at + 11);
    char *off = moat_asprintf("%.*sdefense: off%s", (int)(at - text), text, at + 11);
    load_policy(f, mon);
    f->nevents = 0;
    assert_int_equal(tcp_in(f, WEB, OTH, NULL, 42000, 22, TCP_SYN, false), TC_ACT_OK);
    assert_int_equal(f->nevents, 1);
    assert_int_equal(f->events[0].action, MOAT_ABI_BLOCK);
    assert_int_equal(f->events[0].applied, MOAT_ABI_ALERT); /* would block */
    load_policy(f, off);
    f->nevents = 0;
    assert_int_equal(tcp_in(f, WEB, OTH, NULL, 42001, 22, TCP_SYN, false), TC_ACT_OK);
    assert_int_equal(f->nevents, 0);
    free(text);
    free(mon);
    free(off);
    load_policy(f, base_policy);
}

/* ---------- events ---------- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_event_rate_limit_counts_what_it_holds(void **state)
{
    struct fixture *f = *state;
    f->nevents = 0;
    /* one outside source, 2,000 blocked flows to distinct ports of web */
    for (uint16_t i = 0; i < 2000; i++)
        assert_int_equal(
            tcp_in(f, WEB, -1, "198.51.100.200", 50000, (uint16_t)(10000 + i), TCP_SYN, false),
            TC_ACT_SHOT);
    struct moat_addr src;
    addr_parse("198.51.100.200", &src);
    size_t sent = 0;
    for (size_t i = 0; i < f->nevents; i++)
        sent += f->events[i].kind == MOAT_EV_POLICY && !memcmp(f->events[i].saddr, src.b, 16);
    assert_true(sent >= MOAT_EVL_BURST && sent < 200);
    /* what was held back arrives, as held counts on later events and as a summary */
    double deadline = mono_s() + 10;
    uint64_t held = 0;
    size_t summaries = 0;
    while (mono_s() < deadline) {
        datapath_ebpf.poll(f->dp, 100);
        held = summaries = 0;
        for (size_t i = 0; i < f->nevents; i++) {
            if (memcmp(f->events[i].saddr, src.b, 16) != 0)
                continue;
            held += f->events[i].held;
            summaries += f->events[i].kind == MOAT_EV_SUMMARY;
        }
        if (held + sent >= 2000)
            break;
    }
    assert_int_equal(held + sent, 2000);
    assert_true(summaries >= 1);
}

/* ---------- detections ---------- */

/* base_policy with detections that act at once: small thresholds, block, a resolver. */
static char *detection_policy(void)
{
    const char *at = strstr(base_policy, "defense: on\n") + strlen("defense: on\n");
    return moat_asprintf(
        "%.*sdetections:\n"
        "  brute_force: {enabled: true, action: block, threshold: 5, window: 10, quarantine: 2,"
        " ports: [22, 3306]}\n"
        "  port_scan: {enabled: true, action: alert, threshold: 10, window: 10}\n"
        "  dns_hijack: {enabled: true, action: block, resolvers: [10.1.0.9, 'fd00:1::9']}\n"
        "  threat_intel: {enabled: true, action: block}\n%s",
        (int)(at - base_policy), base_policy, at);
}

static size_t events_of(struct fixture *f, uint32_t kind, uint64_t *count)
{
    size_t n = 0;
    if (count)
        *count = 0;
    for (size_t i = 0; i < f->nevents; i++)
        if (f->events[i].kind == kind) {
            n++;
            if (count)
                *count += f->events[i].count;
        }
    return n;
}

static void test_brute_force_quarantine(void **state)
{
    struct fixture *f = *state;
    char *text = detection_policy();
    load_policy(f, text);
    free(text);
    const char *evil = "203.0.113.50"; /* an outside attacker nothing else here used */
    /* evil -> web:8080 is allowed (alert): an established flow before the attack */
    assert_int_equal(tcp_in(f, WEB, -1, evil, 51000, 8080, TCP_SYN, false), TC_ACT_OK);
    assert_int_equal(tcp_out(f, WEB, NULL, evil, 8080, 51000, TCP_SYN | TCP_ACK), TC_ACT_OK);
    f->nevents = 0;
    /* five attempts on port 22 (blocked by policy, counted all the same): no detection */
    for (uint16_t i = 0; i < 5; i++)
        tcp_in(f, WEB, -1, evil, (uint16_t)(51100 + i), 22, TCP_SYN, false);
    assert_int_equal(events_of(f, MOAT_EV_BRUTE_FORCE, NULL), 0);
    /* the sixth: brute force, the source quarantined */
    tcp_in(f, WEB, -1, evil, 51105, 22, TCP_SYN, false);
    uint64_t attempts;
    assert_int_equal(events_of(f, MOAT_EV_BRUTE_FORCE, &attempts), 1);
    assert_int_equal(attempts, 6);
    /* its new connections anywhere in the cluster fail, its established flow is cut */
    assert_int_equal(tcp_in(f, WEB, -1, evil, 51200, 8080, TCP_SYN, false), TC_ACT_SHOT);
    assert_int_equal(tcp_in(f, LB, -1, evil, 51201, 22, TCP_SYN, false), TC_ACT_SHOT);
    assert_int_equal(tcp_in(f, WEB, -1, evil, 51000, 8080, TCP_ACK, false), TC_ACT_SHOT);
    /* another source is untouched */
    assert_int_equal(tcp_in(f, WEB, LB, NULL, 51202, 80, TCP_SYN, false), TC_ACT_OK);
    struct datapath_quarantine *q;
    size_t nq;
    assert_int_equal(datapath_ebpf.quarantines(f->node, &q, &nq), 0);
    assert_int_equal(nq, 1);
    assert_int_equal(q[0].reason, MOAT_Q_BRUTE_FORCE);
    free(q);
    /* the quarantine ends by itself (2 s) */
    double deadline = mono_s() + 6;
    int v = TC_ACT_SHOT;
    for (uint16_t port = 51300; v == TC_ACT_SHOT && mono_s() < deadline; port++) {
        usleep(100000);
        v = tcp_in(f, WEB, -1, evil, port, 8080, TCP_SYN, false);
    }
    assert_int_equal(v, TC_ACT_OK);
    /* another burst (on another port of the list), and a release lifts it at once */
    for (uint16_t i = 0; i < 7; i++)
        tcp_in(f, LB, -1, evil, (uint16_t)(51400 + i), 3306, TCP_SYN, false);
    assert_int_equal(tcp_in(f, WEB, -1, evil, 51500, 8080, TCP_SYN, false), TC_ACT_SHOT);
    struct moat_addr ev;
    addr_parse(evil, &ev);
    assert_int_equal(datapath_ebpf.release(f->node, 0, &ev), 0);
    assert_int_equal(tcp_in(f, WEB, -1, evil, 51501, 8080, TCP_SYN, false), TC_ACT_OK);
    assert_int_equal(datapath_ebpf.release(f->node, 0, &ev), -ENOENT);
    load_policy(f, base_policy);
}

static void test_port_scan_distinct_pairs(void **state)
{
    struct fixture *f = *state;
    char *text = detection_policy();
    load_policy(f, text);
    free(text);
    f->nevents = 0;
    /* 100 connections to one port: not a scan */
    for (uint16_t i = 0; i < 100; i++)
        tcp_in(f, WEB, LB, NULL, (uint16_t)(52000 + i), 80, TCP_SYN, true);
    assert_int_equal(events_of(f, MOAT_EV_PORT_SCAN, NULL), 0);
    /* eleven distinct ports: a scan (alert only: traffic unchanged) */
    for (uint16_t i = 0; i < 11; i++)
        tcp_in(f, WEB, LB, NULL, (uint16_t)(52200 + i), (uint16_t)(7000 + i), TCP_SYN, true);
    uint64_t pairs;
    assert_int_equal(events_of(f, MOAT_EV_PORT_SCAN, &pairs), 1);
    assert_true(pairs >= 11);
    assert_int_equal(tcp_in(f, WEB, LB, NULL, 52300, 80, TCP_SYN, true), TC_ACT_OK);
    load_policy(f, base_policy);
}

static void test_threat_list_both_directions(void **state)
{
    struct fixture *f = *state;
    char *text = detection_policy();
    load_policy(f, text);
    free(text);
    const char *feed = "198.51.100.0/24 botnet\n2001:db8:77::/48 scanners\n";
    struct moat_threatlist *tl;
    struct moat_diags d;
    diags_init(&d);
    assert_int_equal(threatlist_parse(feed, strlen(feed), "feed", &tl, &d), 0);
    diags_clear(&d);
    /* before the list: a flow out to 198.51.100.5 works */
    assert_int_equal(tcp_out(f, WEB, NULL, "198.51.100.5", 53000, 443, TCP_SYN), TC_ACT_OK);
    struct moat_threatlist *lists[1] = {tl};
    assert_int_equal(datapath_ebpf.set_threats(f->dp, lists, 1), 0);
    f->nevents = 0;
    /* the established flow is cut, new ones fail both ways, IPv6 too */
    assert_int_equal(tcp_out(f, WEB, NULL, "198.51.100.5", 53000, 443, TCP_ACK), TC_ACT_SHOT);
    assert_int_equal(tcp_out(f, WEB, NULL, "198.51.100.6", 53001, 443, TCP_SYN), TC_ACT_SHOT);
    assert_int_equal(tcp_out(f, WEB, NULL, "2001:db8:77::1", 53002, 443, TCP_SYN), TC_ACT_SHOT);
    assert_int_equal(tcp_in(f, WEB, -1, "198.51.100.9", 53003, 8080, TCP_SYN, false), TC_ACT_SHOT);
    assert_true(events_of(f, MOAT_EV_THREAT, NULL) >= 4);
    for (size_t i = 0; i < f->nevents; i++) /* the matched prefix: the /24, or the /48 */
        if (f->events[i].kind == MOAT_EV_THREAT)
            assert_true(f->events[i].count == 96 + 24 || f->events[i].count == 48);
    /* unlisted addresses are untouched */
    assert_int_equal(tcp_out(f, WEB, NULL, "203.0.113.5", 53004, 443, TCP_SYN), TC_ACT_OK);
    struct moat_threatlist *none[1] = {NULL};
    assert_int_equal(datapath_ebpf.set_threats(f->dp, none, 1), 0);
    assert_int_equal(tcp_out(f, WEB, NULL, "198.51.100.6", 53005, 443, TCP_SYN), TC_ACT_OK);
    threatlist_free(tl);
    load_policy(f, base_policy);
}

/* A UDP DNS message from `src` (workload index, or -1 for an address) through `hook_wl`. */
static int dns_frame(struct fixture *f, int hook_wl, bool to, const char *src, const char *dst,
                     uint16_t sport, uint16_t dport, uint16_t txid, bool answer, const char *qname)
{
    uint8_t m[128] = {
        (uint8_t)(txid >> 8), (uint8_t)txid, answer ? 0x81 : 0x01, answer ? 0x80 : 0, 0, 1};
    size_t n = 12;
    for (const char *p = qname; *p;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        m[n++] = (uint8_t)l;
        memcpy(m + n, p, l);
        n += l;
        p += l + (dot ? 1 : 0);
    }
    m[n++] = 0;
    m[n++] = 0;
    m[n++] = 1;
    m[n++] = 0;
    m[n++] = 1;
    struct frame fr;
    bool v6 = strchr(src, ':') != NULL;
    l3(&fr, to ? gw_mac : wls[hook_wl].mac, to ? wls[hook_wl].mac : gw_mac, src, dst, IPPROTO_UDP);
    (void)v6;
    frame_udp(&fr, sport, dport);
    frame_data(&fr, m, n);
    frame_done(&fr);
    return run(f, hook_wl, to, &fr);
}

static void test_dns_answers_match_queries(void **state)
{
    struct fixture *f = *state;
    char *text = detection_policy();
    load_policy(f, text);
    free(text);
    for (int v6 = 0; v6 < 2; v6++) {
        const char *web = addr_of(WEB, v6), *res = addr_of(OTH, v6), *lb = addr_of(LB, v6);
        f->nevents = 0;
        /* web asks the approved resolver (other); the real answer passes */
        assert_int_equal(dns_frame(f, WEB, false, web, res, 5300, 53, 0x1111, false, "a.shop"),
                         TC_ACT_OK);
        assert_int_equal(dns_frame(f, WEB, true, res, web, 53, 5300, 0x1111, true, "a.shop"),
                         TC_ACT_OK);
        /* ... once: a second answer to the same query is no answer to anything */
        assert_int_equal(dns_frame(f, WEB, true, res, web, 53, 5300, 0x1111, true, "a.shop"),
                         TC_ACT_SHOT);
        /* an answer from a resolver that is not approved, with the right id */
        assert_int_equal(dns_frame(f, WEB, false, web, res, 5301, 53, 0x2222, false, "b.shop"),
                         TC_ACT_OK);
        assert_int_equal(dns_frame(f, WEB, true, lb, web, 53, 5301, 0x2222, true, "b.shop"),
                         TC_ACT_SHOT);
        /* an id never asked, and the right id with another question */
        assert_int_equal(dns_frame(f, WEB, true, res, web, 53, 5301, 0x9999, true, "b.shop"),
                         TC_ACT_SHOT);
        assert_int_equal(dns_frame(f, WEB, true, res, web, 53, 5301, 0x2222, true, "evil.example"),
                         TC_ACT_SHOT);
        assert_int_equal(dns_frame(f, WEB, true, res, web, 53, 5301, 0x2222, true, "b.shop"),
                         TC_ACT_OK);
        /* a query to a resolver that is not approved: dropped (action block) */
        assert_int_equal(dns_frame(f, WEB, false, web, lb, 5302, 53, 0x3333, false, "c.shop"),
                         TC_ACT_SHOT);
        uint64_t dummy;
        assert_true(events_of(f, MOAT_EV_DNS_HIJACK, &dummy) >= 5);
        uint32_t want[] = {MOAT_DROP_DNS_NO_QUERY, MOAT_DROP_DNS_RESOLVER, MOAT_DROP_DNS_QUESTION};
        for (size_t w = 0; w < 3; w++)
            if (count_events(f, MOAT_EV_DNS_HIJACK, want[w]) < 1)
                fail_msg("no dns_hijack event of reason %u (ipv%d)", want[w], v6 ? 6 : 4);
    }
    /* malformed answers (a loop in the name), counted */
    uint64_t before = drops(f, MOAT_DROP_DNS_MALFORMED);
    struct frame fr;
    l3(&fr, gw_mac, wls[WEB].mac, wls[OTH].v4, wls[WEB].v4, IPPROTO_UDP);
    frame_udp(&fr, 53, 5300);
    static const uint8_t loop[] = {0, 1, 0x81, 0x80, 0,   1,    0,  0, 0, 0, 0,
                                   0, 3, 'a',  'b',  'c', 0xc0, 12, 0, 1, 0, 1};
    frame_data(&fr, loop, sizeof(loop));
    frame_done(&fr);
    assert_int_equal(run(f, WEB, true, &fr), TC_ACT_SHOT);
    assert_int_equal(drops(f, MOAT_DROP_DNS_MALFORMED), before + 1);
    load_policy(f, base_policy);
}

/* ---------- random flows vs the compiled tables ---------- */

/* Thousands of fresh flows through the real maps vs. the compiled tables' lookup. */
/* Every drop reason and event counter has a name in moatd status (a missing
 * one would vanish from the JSON, its count with it). */
static void test_every_counter_named(void **state)
{
    (void)state;
    for (uint32_t r = 1; r < MOAT_DROP_MAX; r++)
        assert_non_null(agent_drop_name(r));
    for (uint32_t e = 0; e < MOAT_EVS_MAX; e++)
        assert_non_null(agent_event_stat_name(e));
}

static void test_maps_agree_with_tables(void **state)
{
    struct fixture *f = *state;
    const char *peers[2][5] = {
        {"10.1.0.5", "10.1.0.2", "10.1.0.9", "192.0.2.9", "198.51.100.3"},
        {"fd00:1::5", "fd00:1::2", "fd00:1::9", "2001:db8:bad::9", "2001:db8:77::3"}};
    const uint16_t ports[] = {80, 8080, 22, 53, 5353, 7999};
    const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP};
    uint64_t s = 12345;
    size_t checks = 0;
    for (uint16_t i = 0; i < 4000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int v6 = (int)((s >> 10) & 1);
        int w = (int)((s >> 33) % NWL);
        const char *peer = peers[v6][(s >> 40) % 5];
        if (strcmp(peer, addr_of(w, v6)) == 0)
            continue;
        uint16_t port = ports[(s >> 20) % 6];
        uint8_t proto = protos[(s >> 50) & 1];
        bool to = (s >> 60) & 1;
        struct moat_addr a, b;
        addr_parse(to ? peer : addr_of(w, v6), &a);
        addr_parse(to ? addr_of(w, v6) : peer, &b);
        struct moat_verdict v;
        tables_decide(f->t, to ? MOAT_DIR_INGRESS : MOAT_DIR_EGRESS, &a, &b, proto, port, &v);
        int want = v.applies && v.applied == MOAT_ACTION_BLOCK ? TC_ACT_SHOT : TC_ACT_OK;
        struct frame fr;
        bool peer_is_wl = false;
        int pw = -1;
        for (int k = 0; k < NWL; k++)
            if (strcmp(peer, addr_of(k, v6)) == 0) {
                peer_is_wl = true;
                pw = k;
            }
        const uint8_t *pmac = peer_is_wl ? wls[pw].mac : gw_mac;
        l3(&fr, to ? pmac : wls[w].mac, to ? wls[w].mac : pmac, to ? peer : addr_of(w, v6),
           to ? addr_of(w, v6) : peer, proto);
        if (proto == IPPROTO_TCP)
            frame_tcp(&fr, (uint16_t)(20000 + i), port, TCP_SYN);
        else
            frame_udp(&fr, (uint16_t)(20000 + i), port);
        frame_done(&fr);
        int got = run(f, w, to, &fr);
        if (got != want)
            fail_msg("%s %s %s proto %u port %u (%s hook of %s): datapath %d, tables %d",
                     to ? peer : addr_of(w, v6), "->", to ? addr_of(w, v6) : peer, proto, port,
                     to ? "to" : "from", wls[w].ifname, got, want);
        checks++;
    }
    printf("datapath: %zu random flows (IPv4 and IPv6) agree with the compiled tables\n", checks);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("test_datapath: needs root (BPF); skipped\n");
        return 1;
    }
    if (unshare(CLONE_NEWNET) != 0) {
        perror("unshare");
        return 1;
    }
    if (system("ip link set lo up") != 0)
        return 1;
    libbpf_set_print(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_rule_and_reply),
        cmocka_unit_test(test_default_block_and_ct_reuse),
        cmocka_unit_test(test_alert_rule_passes_with_event),
        cmocka_unit_test(test_egress_ipblock_block),
        cmocka_unit_test(test_host_reaches_workload),
        cmocka_unit_test(test_not_addressed_dropped),
        cmocka_unit_test(test_group_destinations_judged),
        cmocka_unit_test(test_link_local_and_unspecified_sources),
        cmocka_unit_test(test_spoofed_source_dropped),
        cmocka_unit_test(test_mac_learned_and_pinned),
        cmocka_unit_test(test_arp_guard),
        cmocka_unit_test(test_nd_guard),
        cmocka_unit_test(test_other_ethertypes_and_dhcp_servers),
        cmocka_unit_test(test_ipv6_extension_headers),
        cmocka_unit_test(test_fragments_follow_first),
        cmocka_unit_test(test_truncated_at_every_offset),
        cmocka_unit_test(test_icmp_errors),
        cmocka_unit_test(test_tcp_states_and_tables),
        cmocka_unit_test(test_flood_cannot_evict_established),
        cmocka_unit_test(test_lost_entry_recovered_in_right_direction),
        cmocka_unit_test(test_rule_change_cuts_established_flow),
        cmocka_unit_test(test_monitor_mode_and_defense_off),
        cmocka_unit_test(test_event_rate_limit_counts_what_it_holds),
        cmocka_unit_test(test_brute_force_quarantine),
        cmocka_unit_test(test_port_scan_distinct_pairs),
        cmocka_unit_test(test_threat_list_both_directions),
        cmocka_unit_test(test_dns_answers_match_queries),
        cmocka_unit_test(test_maps_agree_with_tables),
        cmocka_unit_test(test_every_counter_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
