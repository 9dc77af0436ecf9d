/*
 * Datapath unit tests: the real BPF programs (bpf/moat_tc.bpf.c), loaded by
 * the real backend (agent/dp_ebpf.c), run with BPF_PROG_TEST_RUN on crafted
 * packets: verdicts for new flows, replies, connection-tracking reuse,
 * spoofed sources, policy changes cutting established flows, monitor mode,
 * defense off, ICMP errors, egress rules, and the events each one emits.
 * The last test runs thousands of random flows through the maps and compares
 * every verdict with the compiled tables' own lookup.
 *
 * Needs root. Runs in a private network namespace (unshare) and pins under
 * /sys/fs/bpf/moat/test-PID/, removed at the end.
 */
#include "../unit/testutil.h"

#include "compile.h"
#include "datapath.h"
#include "loader.h"
#include "mem.h"
#include "moat_tc.skel.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_EVENTS 256

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
    assert_int_equal(policy_compile(f->p, NULL, &f->t), 0);
    uint32_t gen;
    assert_int_equal(datapath_ebpf.apply(f->dp, f->p, f->t, &gen), 0);
}

static const char *base_policy =
    "kind: Cluster\nname: prod\ndefense: on\n"
    "---\nkind: NetworkObject\nname: web\nnamespace: shop\napp: web\n"
    "---\nkind: NetworkObject\nname: lb\nnamespace: ingress\n"
    "---\nkind: NetworkObject\nname: bad\ncidrs: [192.0.2.0/24]\n"
    "---\nkind: DefenseRule\ncluster: prod\nname: web-from-lb\nsource: lb\n"
    "destinations: [{object: web, ports: 80}]\nprotocol: tcp\naction: allow\npriority: 10\n"
    "---\nkind: DefenseRule\ncluster: prod\nname: web-alert\nsource: any\n"
    "destinations: [{object: web, ports: 8080}]\nprotocol: tcp\naction: alert\npriority: 20\n"
    "---\nkind: DefenseRule\ncluster: prod\nname: no-bad\nsource: any\n"
    "destinations: [{object: bad}]\naction: block\npriority: 5\n"
    "---\nkind: Workload\ncluster: prod\nnode: n1\nname: web-0\nnamespace: shop\n"
    "labels: {app: web}\nips: [10.1.0.5]\ninterface: lo\n"
    "---\nkind: Workload\ncluster: prod\nnode: n1\nname: lb-0\nnamespace: ingress\n"
    "ips: [10.1.0.2]\n"
    "---\nkind: Workload\ncluster: prod\nnode: n1\nname: other-0\nnamespace: other\n"
    "ips: [10.1.0.9]\n";

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    snprintf(f.node, sizeof(f.node), "test-%d", (int)getpid());
    assert_int_equal(datapath_ebpf.open(f.node, on_event, &f, &f.dp), 0);
    f.prog_to = datapath_ebpf.prog_fd(f.dp, true);
    f.prog_from = datapath_ebpf.prog_fd(f.dp, false);
    assert_true(f.prog_to >= 0 && f.prog_from >= 0);
    load_policy(&f, base_policy);
    *state = &f;
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

/* Builds eth + IPv4 + TCP/UDP/ICMP into buf; returns its length. */
static size_t craft(uint8_t *buf, const char *src, const char *dst, uint8_t proto, uint16_t sport,
                    uint16_t dport)
{
    memset(buf, 0, 64);
    struct ethhdr eth = {.h_proto = htons(ETH_P_IP)};
    struct iphdr ip = {.version = 4, .ihl = 5, .ttl = 64, .protocol = proto};
    inet_pton(AF_INET, src, &ip.saddr);
    inet_pton(AF_INET, dst, &ip.daddr);
    uint8_t l4[20] = {0};
    size_t l4len = 8;
    if (proto == IPPROTO_TCP) {
        struct tcphdr tcp = {.source = htons(sport), .dest = htons(dport), .doff = 5, .syn = 1};
        memcpy(l4, &tcp, sizeof(tcp));
        l4len = sizeof(tcp);
    } else if (proto == IPPROTO_UDP) {
        struct udphdr udp = {.source = htons(sport), .dest = htons(dport), .len = htons(8)};
        memcpy(l4, &udp, sizeof(udp));
    } else {
        l4[0] = 8; /* ICMP echo request; its identifier tells pings apart */
        uint16_t id = htons(sport);
        memcpy(l4 + 4, &id, 2);
    }
    ip.tot_len = htons((uint16_t)(sizeof(ip) + l4len));
    memcpy(buf, &eth, sizeof(eth));
    memcpy(buf + sizeof(eth), &ip, sizeof(ip));
    memcpy(buf + sizeof(eth) + sizeof(ip), l4, l4len);
    return sizeof(eth) + sizeof(ip) + l4len;
}

/* Runs one packet; returns the tc verdict (TC_ACT_OK / TC_ACT_SHOT). */
static int run(struct fixture *f, bool to_workload, const uint8_t *pkt, size_t len)
{
    struct __sk_buff ctx = {0};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = (uint32_t)len,
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
    ctx.ifindex = 1; /* lo of this test's namespace: "the workload interface" */
    int err = bpf_prog_test_run_opts(to_workload ? f->prog_to : f->prog_from, &opts);
    assert_int_equal(err, 0);
    datapath_ebpf.poll(f->dp, 0);
    return (int)opts.retval;
}

static int flow(struct fixture *f, bool to, const char *src, const char *dst, uint8_t proto,
                uint16_t sport, uint16_t dport)
{
    uint8_t pkt[128];
    size_t len = craft(pkt, src, dst, proto, sport, dport);
    return run(f, to, pkt, len);
}

static void test_allow_rule_and_reply(void **state)
{
    struct fixture *f = *state;
    f->nevents = 0;
    assert_int_equal(flow(f, true, "10.1.0.2", "10.1.0.5", IPPROTO_TCP, 40000, 80), TC_ACT_OK);
    /* the reply leaves the workload: passes as part of the allowed flow */
    assert_int_equal(flow(f, false, "10.1.0.5", "10.1.0.2", IPPROTO_TCP, 80, 40000), TC_ACT_OK);
    assert_int_equal(f->nevents, 0); /* allow is never an alert */
}

static void test_default_block_and_ct_reuse(void **state)
{
    struct fixture *f = *state;
    f->nevents = 0;
    assert_int_equal(flow(f, true, "10.1.0.9", "10.1.0.5", IPPROTO_TCP, 40001, 80), TC_ACT_SHOT);
    assert_int_equal(f->nevents, 1);
    struct moat_event *e = &f->events[0];
    assert_int_equal(e->kind, MOAT_EV_POLICY);
    assert_int_equal(e->applied, MOAT_ABI_BLOCK);
    assert_int_equal(e->rule_id, 0); /* the cluster default */
    assert_int_equal(e->dport, 80);
    assert_int_equal(e->sport, 40001);
    assert_int_equal(e->dir, MOAT_ABI_DIR_INGRESS);
    /* the same flow again: dropped from the cache, no second event */
    assert_int_equal(flow(f, true, "10.1.0.9", "10.1.0.5", IPPROTO_TCP, 40001, 80), TC_ACT_SHOT);
    assert_int_equal(f->nevents, 1);
}

static void test_alert_rule_passes_with_event(void **state)
{
    struct fixture *f = *state;
    f->nevents = 0;
    assert_int_equal(flow(f, true, "10.1.0.9", "10.1.0.5", IPPROTO_TCP, 40002, 8080), TC_ACT_OK);
    assert_int_equal(f->nevents, 1);
    assert_int_equal(f->events[0].applied, MOAT_ABI_ALERT);
    assert_int_equal(f->events[0].rule_id, f->p->rules[3].id); /* web-alert */
}

static void test_egress_ipblock_block(void **state)
{
    struct fixture *f = *state;
    f->nevents = 0;
    assert_int_equal(flow(f, false, "10.1.0.5", "192.0.2.7", IPPROTO_UDP, 5000, 53), TC_ACT_SHOT);
    assert_int_equal(f->nevents, 1);
    assert_int_equal(f->events[0].dir, MOAT_ABI_DIR_EGRESS);
    /* to an address no rule names: egress default allow */
    assert_int_equal(flow(f, false, "10.1.0.5", "198.51.100.1", IPPROTO_UDP, 5000, 53), TC_ACT_OK);
}

static void test_icmp_error_follows_flow(void **state)
{
    struct fixture *f = *state;
    /* Flow lb -> web:80 exists (test 1). An ICMP error about it from web to lb. */
    uint8_t pkt[128];
    size_t len = craft(pkt, "10.1.0.5", "10.1.0.2", IPPROTO_ICMP, 0, 0);
    uint8_t *icmp = pkt + ETH_HLEN + 20;
    icmp[0] = 3; /* destination unreachable */
    uint8_t inner[28];
    size_t ilen = craft(pkt + 64, "10.1.0.2", "10.1.0.5", IPPROTO_TCP, 40000, 80);
    (void)ilen;
    memcpy(inner, pkt + 64 + ETH_HLEN, 28);
    memcpy(icmp + 8, inner, 28);
    len = ETH_HLEN + 20 + 8 + 28;
    assert_int_equal(run(f, false, pkt, len), TC_ACT_OK);
    /* an ICMP error about a flow nobody saw is dropped */
    craft(pkt + 64, "10.1.0.2", "10.1.0.5", IPPROTO_TCP, 49999, 81);
    memcpy(icmp + 8, pkt + 64 + ETH_HLEN, 28);
    assert_int_equal(run(f, false, pkt, len), TC_ACT_SHOT);
}

static void test_spoofed_source_dropped(void **state)
{
    struct fixture *f = *state;
    struct moat_addr own;
    addr_parse("10.1.0.5", &own);
    assert_int_equal(datapath_ebpf.attach(f->dp, "lo", 0, &own, 1), 0);
    f->nevents = 0;
    assert_int_equal(flow(f, false, "10.1.0.77", "10.1.0.2", IPPROTO_TCP, 1234, 80), TC_ACT_SHOT);
    assert_int_equal(f->nevents, 1);
    assert_int_equal(f->events[0].kind, MOAT_EV_SPOOFING);
    assert_int_equal(f->events[0].reason, MOAT_DROP_SPOOFED);
    /* its own address passes the check */
    assert_int_equal(flow(f, false, "10.1.0.5", "10.1.0.2", IPPROTO_TCP, 1235, 80), TC_ACT_OK);
    assert_int_equal(datapath_ebpf.detach(f->dp, "lo"), 0);
    assert_int_equal(flow(f, false, "10.1.0.77", "10.1.0.2", IPPROTO_TCP, 1236, 80), TC_ACT_OK);
}

static void test_rule_change_cuts_established_flow(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(flow(f, true, "10.1.0.2", "10.1.0.5", IPPROTO_TCP, 41000, 80), TC_ACT_OK);
    char *text = moat_strdup(base_policy);
    char *at = strstr(text, "action: allow");
    memcpy(at, "action: block", 13);
    load_policy(f, text);
    free(text);
    f->nevents = 0;
    /* next packet of the established flow, either direction, is judged again */
    assert_int_equal(flow(f, false, "10.1.0.5", "10.1.0.2", IPPROTO_TCP, 80, 41000), TC_ACT_SHOT);
    assert_int_equal(f->nevents, 1);
    assert_int_equal(f->events[0].kind, MOAT_EV_CUT);
    assert_int_equal(flow(f, true, "10.1.0.2", "10.1.0.5", IPPROTO_TCP, 41000, 80), TC_ACT_SHOT);
    load_policy(f, base_policy);
    assert_int_equal(flow(f, true, "10.1.0.2", "10.1.0.5", IPPROTO_TCP, 41000, 80), TC_ACT_OK);
}

static void test_monitor_mode_and_defense_off(void **state)
{
    struct fixture *f = *state;
    char *text = moat_asprintf("%s", base_policy);
    char *at = strstr(text, "defense: on");
    char *mon = moat_asprintf("%.*sdefense: on\nmode: monitor%s", (int)(at - text), text, at + 11);
    load_policy(f, mon);
    f->nevents = 0;
    assert_int_equal(flow(f, true, "10.1.0.9", "10.1.0.5", IPPROTO_TCP, 42000, 22), TC_ACT_OK);
    assert_int_equal(f->nevents, 1);
    assert_int_equal(f->events[0].action, MOAT_ABI_BLOCK);
    assert_int_equal(f->events[0].applied, MOAT_ABI_ALERT); /* would block */
    char *off = moat_asprintf("%.*sdefense: off%s", (int)(at - text), text, at + 11);
    load_policy(f, off);
    f->nevents = 0;
    assert_int_equal(flow(f, true, "10.1.0.9", "10.1.0.5", IPPROTO_TCP, 42001, 22), TC_ACT_OK);
    assert_int_equal(f->nevents, 0);
    free(text);
    free(mon);
    free(off);
    load_policy(f, base_policy);
}

/* Thousands of fresh flows through the real maps vs. the compiled tables' lookup. */
static void test_maps_agree_with_tables(void **state)
{
    struct fixture *f = *state;
    const char *addrs[] = {"10.1.0.5", "10.1.0.2", "10.1.0.9", "192.0.2.9", "198.51.100.3"};
    const uint16_t ports[] = {80, 8080, 22, 53, 81, 7999};
    const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP};
    uint64_t s = 12345;
    size_t checks = 0;
    for (uint16_t i = 0; i < 3000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const char *src = addrs[(s >> 33) % 5], *dst = addrs[(s >> 40) % 5];
        uint16_t port = ports[(s >> 20) % 6];
        uint8_t proto = protos[(s >> 50) % 3];
        bool to = (s >> 60) & 1;
        struct moat_addr a, b;
        addr_parse(src, &a);
        addr_parse(dst, &b);
        struct moat_verdict v;
        tables_decide(f->t, to ? MOAT_DIR_INGRESS : MOAT_DIR_EGRESS, &a, &b, proto,
                      proto == IPPROTO_ICMP ? 0 : port, &v);
        int want = v.applies && v.applied == MOAT_ACTION_BLOCK ? TC_ACT_SHOT : TC_ACT_OK;
        int got = flow(f, to, src, dst, proto, (uint16_t)(20000 + i), port);
        if (got != want)
            fail_msg("%s -> %s proto %u port %u (%s hook): datapath %d, tables %d", src, dst, proto,
                     port, to ? "to" : "from", got, want);
        checks++;
    }
    printf("datapath: %zu random flows agree with the compiled tables\n", checks);
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
    /* lo must be up for the program's ifindex */
    if (system("ip link set lo up") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_rule_and_reply),
        cmocka_unit_test(test_default_block_and_ct_reuse),
        cmocka_unit_test(test_alert_rule_passes_with_event),
        cmocka_unit_test(test_egress_ipblock_block),
        cmocka_unit_test(test_icmp_error_follows_flow),
        cmocka_unit_test(test_spoofed_source_dropped),
        cmocka_unit_test(test_rule_change_cuts_established_flow),
        cmocka_unit_test(test_monitor_mode_and_defense_off),
        cmocka_unit_test(test_maps_agree_with_tables),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
