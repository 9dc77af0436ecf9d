/*
 * Tests of the hold (agent/hold.c, bpf/moat_hold.bpf.c): the fail-closed
 * programs drop every packet (BPF_PROG_TEST_RUN on IPv4, IPv6 and ARP
 * frames); a new veth whose name matches is held from its netlink event,
 * before it has a carrier; one that does not match is left alone; a link
 * present at start is held by the sweep; the datapath's attach replaces a
 * hold in one step, and an interface that enforces is never held again.
 *
 * Needs root. Runs in a private network namespace (unshare), pins under
 * /sys/fs/bpf/moat/test-PID and removes them.
 */
#include "../unit/testutil.h"

#include "agent.h"
#include "datapath.h"
#include "hold.h"
#include "moat_hold.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int run(int prog, const void *pkt, size_t len)
{
    struct __sk_buff ctx = {.ifindex = 1};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = (uint32_t)len,
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
    assert_int_equal(bpf_prog_test_run_opts(prog, &opts), 0);
    return (int)opts.retval;
}

static void test_programs_drop_everything(void **state)
{
    (void)state;
    struct moat_hold *skel = moat_hold__open_and_load();
    assert_non_null(skel);
    unsigned char ip4[64] = {0}, ip6[80] = {0}, arp[42] = {0};
    ip4[12] = 0x08, ip4[13] = 0x00, ip4[14] = 0x45, ip4[23] = 6;  /* IPv4 TCP */
    ip6[12] = 0x86, ip6[13] = 0xdd, ip6[14] = 0x60, ip6[20] = 17; /* IPv6 UDP */
    arp[12] = 0x08, arp[13] = 0x06;                               /* ARP */
    const struct {
        const void *p;
        size_t n;
    } pkts[] = {{ip4, sizeof(ip4)}, {ip6, sizeof(ip6)}, {arp, sizeof(arp)}};
    int progs[] = {bpf_program__fd(skel->progs.moat_hold_to_workload),
                   bpf_program__fd(skel->progs.moat_hold_from_workload)};
    for (size_t p = 0; p < 2; p++)
        for (size_t i = 0; i < 3; i++)
            assert_int_equal(run(progs[p], pkts[i].p, pkts[i].n), TC_ACT_SHOT);
    uint32_t key = 1;
    uint64_t drops = 0;
    assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.moat_hold_drops), &key, &drops), 0);
    assert_int_equal(drops, 6);
    moat_hold__destroy(skel);
}

/* The name of the program in moat's tc filter on the egress hook of `ifname`, "" if none. */
static void filter_name(const char *ifname, char *out, size_t n)
{
    out[0] = '\0';
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)if_nametoindex(ifname),
                .attach_point = BPF_TC_EGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = MOAT_TC_HANDLE, .priority = MOAT_TC_PRIORITY);
    if (bpf_tc_query(&hook, &opts) != 0)
        return;
    int fd = bpf_prog_get_fd_by_id(opts.prog_id);
    struct bpf_prog_info info = {0};
    uint32_t len = sizeof(info);
    if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
        snprintf(out, n, "%s", info.name);
    if (fd >= 0)
        close(fd);
}

static json_t *status_of(struct hold *h, const char *key)
{
    json_t *st = hold_status(h);
    json_t *v = json_deep_copy(json_object_get(st, key));
    json_decref(st);
    return v;
}

static void test_new_links_held_and_replaced(void **state)
{
    (void)state;
    assert_int_equal(system("ip link add vtold0 type veth peer name xpold0"), 0);
    struct hold_config cfg = {.ifaces = {"vt*"}, .nifaces = 1};
    struct hold *h;
    assert_int_equal(hold_open(&cfg, &h), 0);
    char name[64];
    filter_name("vtold0", name, sizeof(name));
    assert_string_equal(name, "moat_hold_to_wo"); /* the sweep at start */
    filter_name("xpold0", name, sizeof(name));
    assert_string_equal(name, ""); /* not a hold pattern */

    assert_int_equal(system("ip link add vtnew0 type veth peer name xpnew0"), 0);
    hold_handle(h);
    filter_name("vtnew0", name, sizeof(name));
    assert_string_equal(name, "moat_hold_to_wo");
    json_t *n = status_of(h, "held_while_down");
    assert_int_equal(json_integer_value(n), 2); /* neither had a carrier */
    json_decref(n);

    /* the datapath replaces the hold (same handle and priority) */
    struct datapath *dp;
    char node[64];
    snprintf(node, sizeof(node), "test-%d", (int)getpid());
    assert_int_equal(datapath_ebpf.open(node, NULL, NULL, &dp), 0);
    struct moat_addr a = {.b = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 0, 1}};
    assert_int_equal(datapath_ebpf.attach(dp, "vtnew0", 0, &a, 1), 0);
    filter_name("vtnew0", name, sizeof(name));
    assert_string_equal(name, "moat_to_workloa"); /* names are cut to 15 */
    hold_refresh(h);
    json_t *held = status_of(h, "held");
    assert_int_equal(json_array_size(held), 1); /* vtold0 only */
    assert_string_equal(json_string_value(json_object_get(json_array_get(held, 0), "interface")),
                        "vtold0");
    json_decref(held);

    /* an interface that enforces is never held again (its link changes later) */
    assert_int_equal(system("ip link set vtnew0 up && ip link set xpnew0 up"), 0);
    hold_handle(h);
    filter_name("vtnew0", name, sizeof(name));
    assert_string_equal(name, "moat_to_workloa"); /* names are cut to 15 */

    datapath_ebpf.close(dp, true);
    hold_close(h);
    assert_int_equal(system("ip link del vtold0 && ip link del vtnew0"), 0);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("test_hold: needs root (BPF); skipped\n");
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
        cmocka_unit_test(test_programs_drop_everything),
        cmocka_unit_test(test_new_links_held_and_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
