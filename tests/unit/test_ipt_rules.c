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
 *  - compat_backends on the reference table's kernels.
 */
#include "testutil.h"

#include "compat.h"
#include "ipt_rules.h"
#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subtract),           cmocka_unit_test(test_sets_are_longest_prefix),
        cmocka_unit_test(test_precedence_order),   cmocka_unit_test(test_iface_add_delete),
        cmocka_unit_test(test_backends_by_kernel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
