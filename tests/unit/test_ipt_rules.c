/*
 * Unit tests for agent/ipt_rules (the iptables backend's rules, pure text)
 * and lib/compat's backends-by-kernel answer:
 *  - prefix subtraction: the result is exactly p minus the holes, disjoint
 *    (checked address by address on random prefixes);
 *  - the sets give what longest-prefix matching gives: for addresses of every
 *    outside prefix of the golden policies, the peer sets that hold them are
 *    exactly the one of their identity;
 *  - each subject chain lists its entries in precedence order (priority, id);
 *  - an interface's rules, added and deleted, are the same rules;
 *  - compat_backends on the reference table's kernels;
 *  - the detections: brute force as hashlimit (rate, burst, per source,
 *    destination and port, 15 ports a rule), the quarantine and threat sets
 *    made once and kept, threat lists swapped in whole, DNS checks only with
 *    a resolver known, monitor mode, and where in FWD each comes.
 */
#include "testutil.h"

#include "compat.h"
#include "ipt_rules.h"
#include "loader.h"
#include "threatlist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* An IPv4 prefix inside 10.0.0.0/16 (mapped form). */
static struct moat_prefix v4prefix(uint32_t host, int len)
{
    struct moat_prefix p = {.len = (uint8_t)(96 + len)};
    p.addr.b[10] = p.addr.b[11] = 0xff;
    uint32_t a = (10u << 24) | (host & 0xffff);
    if (len < 32)
        a &= ~((1u << (32 - len)) - 1);
    p.addr.b[12] = (uint8_t)(a >> 24);
    p.addr.b[13] = (uint8_t)(a >> 16);
    p.addr.b[14] = (uint8_t)(a >> 8);
    p.addr.b[15] = (uint8_t)a;
    return p;
}

static void test_subtract(void **state)
{
    (void)state;
    for (int round = 0; round < 200; round++) {
        struct moat_prefix p = v4prefix(rnd(65536), 16 + (int)rnd(8)), holes[8];
        size_t nh = rnd(8);
        for (size_t i = 0; i < nh; i++)
            holes[i] = v4prefix(rnd(65536), 16 + (int)rnd(17));
        struct moat_prefix *out = NULL;
        size_t n = 0, cap = 0;
        assert_int_equal(ipt_subtract(&p, holes, nh, &out, &n, &cap), 0);
        for (uint32_t h = 0; h < 65536; h += 1 + rnd(7)) {
            struct moat_addr a = v4prefix(h, 32).addr;
            bool want = prefix_contains(&p, &a);
            for (size_t i = 0; i < nh && want; i++)
                if (holes[i].len > p.len && prefix_contains(&holes[i], &a))
                    want = false;
            int got = 0;
            for (size_t i = 0; i < n; i++)
                got += prefix_contains(&out[i], &a);
            assert_int_equal(got, want ? 1 : 0); /* covered exactly once, or not at all */
        }
        free(out);
    }
}

struct rendered {
    struct moat_policy *p;
    struct moat_tables *t;
    struct ipt_render_out out;
};

static void render(const char *file, const char *node, struct rendered *r)
{
    struct moat_diags d;
    diags_init(&d);
    const char *files[] = {file};
    assert_int_equal(policy_load_files(&r->p, files, 1, &d), 0);
    diags_clear(&d);
    if (!node) /* the node of the file's first workload */
        for (size_t w = 0; w < r->p->nworkloads && !node; w++)
            node = r->p->workloads[w].node;
    assert_non_null(node);
    struct moat_eval_opts o = {.node = node};
    assert_int_equal(policy_compile(r->p, &o, &r->t), 0);
    struct ipt_iface ifc = {.name = "lxw0", .ifindex = 7};
    for (size_t w = 0; w < r->p->nworkloads && !ifc.naddrs; w++)
        if (r->p->workloads[w].node && strcmp(r->p->workloads[w].node, node) == 0) {
            ifc.cluster = r->p->workloads[w].cluster;
            for (size_t a = 0; a < r->p->workloads[w].naddrs && a < IPT_IFACE_ADDRS; a++)
                ifc.addrs[ifc.naddrs++] = r->p->workloads[w].addrs[a];
        }
    struct ipt_render_in in = {.p = r->p,
                               .t = r->t,
                               .node = node,
                               .slot = 'A',
                               .generation = 3,
                               .nflog_group = 9,
                               .ifs = &ifc,
                               .nifs = ifc.naddrs ? 1 : 0};
    assert_int_equal(ipt_render(&in, &r->out), 0);
}

static void rendered_free(struct rendered *r)
{
    ipt_render_free(&r->out);
    tables_free(r->t);
    policy_free(r->p);
}

/* The ids of the peer sets (mt-A-P<id>-4/6) whose entries hold address `a`. */
static size_t sets_holding(const char *sets, const struct moat_addr *a, uint32_t *ids, size_t max)
{
    size_t n = 0;
    for (const char *l = strstr(sets, "add mt-A-P"); l; l = strstr(l + 1, "add mt-A-P")) {
        unsigned id;
        int fam;
        char text[80];
        if (sscanf(l, "add mt-A-P%u-%d %79s", &id, &fam, text) != 3)
            continue;
        struct moat_prefix p;
        const char *why;
        if (!strchr(text, '/') || prefix_parse(text, &p, &why) != 0 || !prefix_contains(&p, a))
            continue;
        bool seen = false;
        for (size_t i = 0; i < n; i++)
            seen |= ids[i] == id;
        if (!seen && n < max)
            ids[n++] = id;
    }
    return n;
}

static void test_sets_are_longest_prefix(void **state)
{
    (void)state;
    static const char *const golden[] = {
        "tests/golden/07-ipblock-except.yaml", "tests/golden/08-workload-in-ipblock.yaml",
        "tests/golden/11-egress-ipblock.yaml", "tests/golden/17-ipblock-ipv6-default.yaml"};
    for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
        struct rendered r;
        render(golden[g], NULL, &r);
        size_t checked = 0;
        for (size_t i = 0; i < tables_addr_count(r.t); i++) {
            struct moat_addr_entry e = tables_addr_entry(r.t, i);
            for (int k = 0; k < 4; k++) {
                struct moat_addr a = e.prefix.addr; /* the first address, then random ones */
                for (unsigned bit = e.prefix.len; k && bit < 128; bit++)
                    if (rnd(2))
                        a.b[bit / 8] |= (uint8_t)(1u << (7 - bit % 8));
                uint32_t id = tables_identity_of(r.t, &a);
                struct moat_ident_info info = tables_identity(r.t, id);
                if (info.kind != MOAT_IDENT_OUTSIDE)
                    continue;
                uint32_t ids[8];
                size_t n = sets_holding(r.out.sets.s, &a, ids, 8);
                char want[32];
                snprintf(want, sizeof(want), "add mt-A-P%u-", id);
                if (!strstr(r.out.sets.s, want))
                    continue; /* no rule names this identity: no set */
                assert_int_equal(n, 1);
                assert_int_equal(ids[0], id);
                checked++;
            }
        }
        /* every file with peer sets had addresses checked against them */
        assert_true(checked > 0 || !strstr(r.out.sets.s, "add mt-A-P"));
        rendered_free(&r);
    }
}

static uint32_t priority_of(const struct moat_policy *p, uint32_t id)
{
    for (size_t i = 0; i < p->nrules; i++)
        if (p->rules[i].id == id)
            return p->rules[i].priority;
    fail_msg("no rule %u", id);
    return 0;
}

/* Within each W/Z chain the jumps to rule chains come in (priority, id) order. */
static void test_precedence_order(void **state)
{
    (void)state;
    static const char *const golden[] = {
        "tests/golden/02-equal-priority.yaml", "tests/golden/03-interval-painting.yaml",
        "tests/golden/05-source-any.yaml", "tests/golden/16-multi-destination.yaml"};
    for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
        struct rendered r;
        render(golden[g], NULL, &r);
        char last_chain[64] = "";
        uint32_t last_pri = 0, last_id = 0;
        size_t seen = 0;
        for (const char *l = strstr(r.out.fam[0].s, "\n-A MOAT-A-I"); l;
             l = strstr(l + 1, "\n-A MOAT-A-I")) {
            char chain[64];
            const char *go = strstr(l, " -g MOAT-R");
            const char *eol = strchr(l + 1, '\n');
            unsigned id;
            if (sscanf(l + 1, "-A %63s", chain) != 1 || !go || (eol && go > eol) ||
                sscanf(go, " -g MOAT-R%u", &id) != 1)
                continue;
            uint32_t pri = priority_of(r.p, id);
            if (strcmp(chain, last_chain) == 0)
                assert_true(pri > last_pri || (pri == last_pri && id >= last_id));
            snprintf(last_chain, sizeof(last_chain), "%s", chain);
            last_pri = pri;
            last_id = id;
            seen++;
        }
        assert_true(seen > 0);
        rendered_free(&r);
    }
}

/* What attach adds is what detach deletes; the slot names its generation and node. */
static void test_iface_add_delete(void **state)
{
    (void)state;
    struct rendered r;
    render("tests/golden/11-egress-ipblock.yaml", "node-1", &r);
    assert_non_null(strstr(r.out.fam[0].s, "moat node node-1 generation 3"));
    struct ipt_iface ifc = {.name = "lxq", .ifindex = 42, .naddrs = 1};
    ifc.addrs[0] = r.p->workloads[0].addrs[0];
    struct ipt_render_in in = {
        .p = r.p, .t = r.t, .node = "node-1", .slot = 'A', .generation = 3, .nflog_group = 9};
    struct ipt_render_out add, del;
    assert_int_equal(ipt_render_iface(&in, &ifc, true, &add), 0);
    assert_int_equal(ipt_render_iface(&in, &ifc, false, &del), 0);
    for (int fam = 0; fam < 2; fam++)
        for (const char *l = strstr(del.fam[fam].s, "\n-D "); l; l = strstr(l + 1, "\n-D ")) {
            char line[512];
            const char *eol = strchr(l + 1, '\n');
            snprintf(line, sizeof(line), "\n-A %.*s\n", (int)(eol - l - 4), l + 4);
            assert_non_null(strstr(add.fam[fam].s, line));
        }
    assert_non_null(strstr(add.fam[0].s, "-m physdev --physdev-in lxq"));
    assert_non_null(strstr(del.fam[1].s, "-X MOAT-A-G42"));
    ipt_render_free(&add);
    ipt_render_free(&del);
    rendered_free(&r);
}

static void test_backends_by_kernel(void **state)
{
    (void)state;
    static const struct {
        const char *kernel, *runs;
        enum compat_verdict ebpf;
    } cases[] = {
        {"2.6.32-754.el6.x86_64", "iptables", COMPAT_NO},
        {"2.6.32-5-amd64", NULL, COMPAT_NO}, /* no ip_set backport */
        {"2.6.18-398.el5", NULL, COMPAT_NO},
        {"3.10.0-1160.el7.x86_64", "iptables", COMPAT_NO},
        {"4.4.0-104-generic", "iptables", COMPAT_NO},
        {"4.18.0-240.15.1.el8_3.x86_64", "iptables", COMPAT_UNKNOWN},
        {"5.4.0-42-generic", "iptables", COMPAT_NO},
        {"5.17.0", "ebpf", COMPAT_YES},
        {"6.18.44-fc-v1045", "ebpf", COMPAT_YES},
        {"not-a-version", NULL, COMPAT_NO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct compat_backends b;
        assert_int_equal(compat_backends(cases[i].kernel, &b), 0);
        if (cases[i].runs)
            assert_string_equal(b.would_run, cases[i].runs);
        else
            assert_null(b.would_run);
        assert_int_equal(b.ebpf, cases[i].ebpf);
    }
    struct compat_backends b;
    compat_backends("5.4.0-42-generic", &b);
    assert_non_null(strstr(b.ebpf_missing, "BPF ring buffers (5.8)"));
    assert_int_equal(compat_backends(NULL, &b), -EINVAL);
}

/* Renders policy text `yaml` for node n1 into `r` (sets that `have` names exist already). */
static bool named_set(void *ctx, const char *name)
{
    const char *const *have = ctx;
    for (size_t i = 0; have && have[i]; i++)
        if (strcmp(have[i], name) == 0)
            return true;
    return false;
}

static bool lacking; /* render_text: as for a kernel without hashlimit and scan sets */

static void render_text(const char *yaml, const char *const *have, struct rendered *r)
{
    char path[] = "/tmp/moat-ipt-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    struct moat_diags d;
    diags_init(&d);
    const char *files[] = {path};
    int err = policy_load_files(&r->p, files, 1, &d);
    for (size_t i = 0; i < d.count; i++)
        fprintf(stderr, "%s\n", d.items[i].text);
    diags_clear(&d);
    unlink(path);
    assert_int_equal(err, 0);
    struct moat_eval_opts o = {.node = "n1"};
    assert_int_equal(policy_compile(r->p, &o, &r->t), 0);
    struct ipt_render_in in = {.p = r->p,
                               .t = r->t,
                               .node = "n1",
                               .slot = 'B',
                               .generation = 1,
                               .nflog_group = 9,
                               .set_exists = named_set,
                               .set_ctx = (void *)have,
                               .no_hashlimit = lacking,
                               .no_scan_sets = lacking};
    assert_int_equal(ipt_render(&in, &r->out), 0);
}

#define DET_LAB                                                                                    \
    "kind: Node\nname: n1\ncluster: c\nips: [10.1.0.1]\n---\n"                                     \
    "kind: Workload\ncluster: c\nnode: n1\nname: s\nnamespace: shop\nips: [10.1.0.10, "            \
    "\"fd01::10\"]\n---\n"                                                                         \
    "kind: Workload\ncluster: c\nnode: n2\nname: far\nnamespace: shop\nips: [10.1.0.20]\n"

static size_t count_of(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = s ? strstr(s, what) : NULL; p; p = strstr(p + 1, what))
        n++;
    return n;
}

static void test_brute_force_hashlimit(void **state)
{
    (void)state;
    struct rendered r;
    render_text("kind: Cluster\nname: c\ndefense: on\ndetections:\n  brute_force: {enabled: true, "
                "action: block, threshold: 20, window: 10, ports: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "
                "11, 12, 13, 14, 15, 16, 17]}\n---\n" DET_LAB,
                NULL, &r);
    for (int fam = 0; fam < 2; fam++) {
        const char *f = r.out.fam[fam].s;
        /* 17 ports: two rules per protocol, over the threshold per (source, destination, port) */
        assert_int_equal(count_of(f, "--hashlimit-above 2/second --hashlimit-burst 20 "
                                     "--hashlimit-mode srcip,dstip,dstport"),
                         4);
        assert_non_null(
            strstr(f, "-p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 "));
        assert_non_null(strstr(f, "-p udp -m multiport --dports 16,17 "));
        assert_non_null(strstr(f, "--hashlimit-htable-expire 10000 -j MOAT-B-BF0"));
        /* block: logged and dropped; before the quarantine and the policy */
        assert_non_null(
            strstr(f, "-A MOAT-B-BF0 -j NFLOG --nflog-group 9 --nflog-prefix \"moat f 0 1 1\"\n"
                      "-A MOAT-B-BF0 -j DROP\n"));
        const char *bf = strstr(f, "-A MOAT-B-DI0 -p tcp"),
                   *q = strstr(f, "-A MOAT-B-DI0 -m set --match-set mt-Q0-");
        assert_non_null(bf);
        assert_non_null(q);
        assert_true(bf < q);
        const char *est =
            strstr(f, "-A MOAT-B-FWD -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN");
        const char *jump = strstr(f, "-A MOAT-B-FWD -m set --match-set mt-B-N0-");
        const char *subj = strstr(f, "-A MOAT-B-FWD -m set --match-set mt-B-L");
        assert_true(est && jump && subj && est < jump && jump < subj);
    }
    /* the quarantine and threat sets are made when missing, never flushed */
    assert_non_null(strstr(r.out.sets.s, "create mt-Q0-4 hash:ip family inet timeout 600"));
    assert_non_null(strstr(r.out.sets.s, "create mt-T0-6 hash:net family inet6"));
    assert_null(strstr(r.out.sets.s, "flush mt-Q0"));
    assert_null(strstr(r.out.sets.s, "flush mt-T0"));
    /* this node's workloads only */
    assert_non_null(strstr(r.out.sets.s, "add mt-B-N0-4 10.1.0.10 -exist"));
    assert_null(strstr(r.out.sets.s, "add mt-B-N0-4 10.1.0.20"));
    rendered_free(&r);

    static const char *const have[] = {"mt-Q0-4", "mt-Q0-6", "mt-T0-4", "mt-T0-6", NULL};
    render_text("kind: Cluster\nname: c\ndefense: on\nmode: monitor\ndetections:\n  brute_force: "
                "{enabled: true, action: block, threshold: 30000}\n  threat_intel: {enabled: true, "
                "action: block}\n---\n" DET_LAB,
                have, &r);
    assert_null(strstr(r.out.sets.s, "create mt-Q0"));
    assert_null(strstr(r.out.sets.s, "create mt-T0"));
    /* over hashlimit's burst: not rendered, and the reason is given */
    assert_null(strstr(r.out.fam[0].s, "hashlimit"));
    bool partly;
    assert_non_null(ipt_detection_gap(&r.p->clusters[0], "brute_force", &partly));
    assert_false(partly);
    assert_null(ipt_detection_gap(&r.p->clusters[0], "threat_intel", &partly));
    /* monitor mode: a block is an alert (logged, not dropped), the quarantine too */
    assert_non_null(strstr(r.out.fam[0].s, "\"moat t 0 1 2 0\"\n-A MOAT-B-TH0i -j RETURN\n"));
    assert_non_null(
        strstr(r.out.fam[1].s, "-A MOAT-B-DE0 -m set --match-set mt-T0-6 dst -j MOAT-B-TH0e"));
    assert_non_null(
        strstr(r.out.fam[0].s, "-A MOAT-B-DI0 -m set --match-set mt-T0-4 src -j MOAT-B-TH0i"));
    assert_non_null(strstr(r.out.fam[0].s, "\"moat q 0 2\"\n-A MOAT-B-QD0 -j RETURN\n"));
    rendered_free(&r);

    /* defense off: no detection rules at all */
    render_text("kind: Cluster\nname: c\ndefense: off\n---\n" DET_LAB, NULL, &r);
    assert_null(strstr(r.out.fam[0].s, "MOAT-B-DI0"));
    rendered_free(&r);
}

static void test_rates(void **state)
{
    (void)state;
    static const struct {
        uint32_t threshold, window;
        const char *rate;
    } cases[] = {{20, 10, "2/second"},  {5, 10, "30/minute"}, {1, 3600, "1/hour"},
                 {20, 7, "246857/day"}, {1, 86400, "1/day"},  {10000, 1, "10000/second"},
                 {7, 86399, "7/day"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        ipt_hashlimit_rate(cases[i].threshold, cases[i].window, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].rate);
    }
}

static void test_dns_and_scan(void **state)
{
    (void)state;
    struct rendered r;
    render_text("kind: Cluster\nname: c\ndefense: on\ndetections:\n  dns_hijack: {enabled: true, "
                "action: block, resolvers: [10.1.0.53]}\n  port_scan: {enabled: true, window: 7}\n"
                "---\n" DET_LAB,
                NULL, &r);
    const char *f4 = r.out.fam[0].s, *f6 = r.out.fam[1].s;
    /* queries to another resolver: dropped (block); answers from one: before established */
    assert_non_null(strstr(
        f4,
        "-A MOAT-B-DE0 -p udp -m udp --dport 53 -m set ! --match-set mt-B-R0-4 dst -j MOAT-B-DQ0"));
    assert_non_null(strstr(
        f4,
        "-A MOAT-B-DE0 -p tcp -m tcp --dport 53 -m set ! --match-set mt-B-R0-4 dst -j MOAT-B-DQ0"));
    const char *ans = strstr(f4, "-A MOAT-B-FWD -p udp -m udp --sport 53 -m set --match-set "
                                 "mt-B-N0-4 dst -m set ! --match-set mt-B-R0-4 src -j MOAT-B-DA0");
    const char *est =
        strstr(f4, "-A MOAT-B-FWD -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN");
    assert_true(ans && est && ans < est);
    assert_non_null(strstr(r.out.sets.s, "add mt-B-R0-4 10.1.0.53 -exist"));
    /* no IPv6 resolver known: IPv6 DNS is not checked */
    assert_null(strstr(f6, "--dport 53"));
    /* scans: a pair logged once per window (the set's timeout) */
    assert_non_null(strstr(r.out.sets.s, "create mt-B-S0-4 hash:ip,port,ip family inet timeout 7"));
    assert_non_null(
        strstr(f4, "-A MOAT-B-DI0 -m set ! --match-set mt-B-S0-4 src,dst,dst -j MOAT-B-SC0"));
    assert_non_null(strstr(f4, "-A MOAT-B-SC0 -j SET --add-set mt-B-S0-4 src,dst,dst"));
    rendered_free(&r);
    /* a kernel without them: brute force and scans left out, the rest stays */
    lacking = true;
    render_text("kind: Cluster\nname: c\ndefense: on\n---\n" DET_LAB, NULL, &r);
    lacking = false;
    assert_null(strstr(r.out.fam[0].s, "hashlimit"));
    assert_null(strstr(r.out.fam[0].s, "MOAT-B-SC0"));
    assert_null(strstr(r.out.sets.s, "hash:ip,port,ip"));
    assert_non_null(
        strstr(r.out.fam[0].s, "-A MOAT-B-DI0 -m set --match-set mt-Q0-4 src -j MOAT-B-QD0"));
    rendered_free(&r);
}

static void test_threat_sets(void **state)
{
    (void)state;
    static const char text[] =
        "0.0.0.0/0 all\n10.0.0.0/8 ten\n10.1.2.0/24 inner\n2001:db8::/32 doc\n";
    struct moat_diags d;
    diags_init(&d);
    struct moat_threatlist *tl = NULL;
    assert_int_equal(threatlist_parse(text, strlen(text), "t", &tl, &d), 0);
    diags_clear(&d);
    struct moat_threatlist *lists[2] = {NULL, tl};
    static const char *const have[] = {"mt-T0-4", "mt-T0-6", NULL};
    struct ipt_text out = {0};
    assert_int_equal(ipt_render_threats(lists, 2, named_set, (void *)have, &out), 0);
    /* cluster 0: emptied by a swap with an empty set; cluster 1's sets made first */
    assert_non_null(strstr(out.s,
                           "create mt-U0-4 hash:net family inet maxelem 4194304 -exist\nflush "
                           "mt-U0-4\nswap mt-U0-4 mt-T0-4\ndestroy mt-U0-4\n"));
    assert_non_null(strstr(out.s, "create mt-T1-4 hash:net family inet maxelem 4194304 -exist\n"));
    assert_null(strstr(out.s, "create mt-T0-4"));
    /* a /0 as its two halves; each family its own */
    assert_non_null(
        strstr(out.s, "add mt-U1-4 0.0.0.0/1 -exist\nadd mt-U1-4 128.0.0.0/1 -exist\n"));
    assert_non_null(strstr(out.s, "add mt-U1-6 2001:db8::/32 -exist\n"));
    assert_null(strstr(out.s, "add mt-U1-4 2001"));
    assert_non_null(strstr(out.s, "swap mt-U1-6 mt-T1-6\n"));
    ipt_text_free(&out);
    /* the most specific entry names the event's label */
    struct moat_addr a;
    addr_parse("10.1.2.3", &a);
    assert_string_equal(tl->labels[threatlist_lookup(tl, &a)->label], "inner");
    addr_parse("10.9.0.1", &a);
    assert_string_equal(tl->labels[threatlist_lookup(tl, &a)->label], "ten");
    addr_parse("192.0.2.1", &a);
    assert_string_equal(tl->labels[threatlist_lookup(tl, &a)->label], "all");
    addr_parse("2001:db9::1", &a);
    assert_null(threatlist_lookup(tl, &a));
    threatlist_free(tl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subtract),
        cmocka_unit_test(test_sets_are_longest_prefix),
        cmocka_unit_test(test_precedence_order),
        cmocka_unit_test(test_iface_add_delete),
        cmocka_unit_test(test_backends_by_kernel),
        cmocka_unit_test(test_brute_force_hashlimit),
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_dns_and_scan),
        cmocka_unit_test(test_threat_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
