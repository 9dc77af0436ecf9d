/*
 * Unit tests for the lab's planning (cli/lab_plan.c) and its state as JSON
 * (cli/lab_state.c), without root: node subnets and the underlay that joins
 * the nodes (namespace, node k's address 100.64.0.k), addresses of the files
 * that clash with the underlay (planning errors), reserved names, and the
 * state's round trip, including state files from before labs had an underlay.
 *
 * Both modules live in cli/ (the `moat` program); libmoat, which the unit
 * tests link, does not hold them, so they are compiled into this test.
 */
#include "testutil.h"

#include "../../cli/lab_plan.c"
#include "../../cli/lab_state.c"

#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plans lab "t" from YAML text. Returns lab_plan's result; *out, *p and d as it leaves them. */
static int plan_text(const char *text, unsigned flags, struct moat_policy **p, struct lab **out,
                     struct moat_diags *d)
{
    diags_init(d);
    *out = NULL;
    int err = policy_load_text(p, text, strlen(text), "lab.yaml", d);
    if (err) {
        for (size_t i = 0; i < d->count && i < 5; i++)
            print_error("load: %s\n", d->items[i].text);
        fail_msg("the lab file does not load");
    }
    return lab_plan(*p, "t", flags, out, d);
}

static struct lab *plan_ok_flags(const char *text, unsigned flags, struct moat_policy **p)
{
    struct moat_diags d;
    struct lab *lab = NULL;
    int err = plan_text(text, flags, p, &lab, &d);
    for (size_t i = 0; i < d.count; i++)
        print_error("plan: %s\n", d.items[i].text);
    diags_clear(&d);
    assert_int_equal(err, 0);
    assert_non_null(lab);
    return lab;
}

static struct lab *plan_ok(const char *text, struct moat_policy **p)
{
    return plan_ok_flags(text, 0, p);
}

/*
 * The planning (with `flags`) fails with -EINVAL and some error holds every
 * string of `want` (NULL-ended).
 */
static void plan_fails_flags(const char *text, unsigned flags, const char *const *want)
{
    struct moat_policy *p = NULL;
    struct moat_diags d;
    struct lab *lab = NULL;
    int err = plan_text(text, flags, &p, &lab, &d);
    assert_int_equal(err, -EINVAL);
    assert_null(lab);
    for (; *want; want++) {
        bool found = false;
        for (size_t i = 0; i < d.count && !found; i++)
            found = strstr(d.items[i].text, *want) != NULL;
        if (!found) {
            for (size_t i = 0; i < d.count; i++)
                print_error("plan: %s\n", d.items[i].text);
            fail_msg("no error says \"%s\"", *want);
        }
    }
    diags_clear(&d);
    policy_free(p);
}

static void plan_fails(const char *text, const char *const *want)
{
    plan_fails_flags(text, 0, want);
}

static void assert_addr(const struct moat_addr *a, const char *want)
{
    char text[MOAT_ADDR_STRLEN];
    addr_format(a, text, sizeof(text));
    assert_string_equal(text, want);
}

static void assert_prefix(const struct moat_prefix *pf, const char *want)
{
    char text[MOAT_ADDR_STRLEN + 8];
    prefix_format(pf, text, sizeof(text));
    assert_string_equal(text, want);
}

static const char two_nodes[] = "kind: Workload\n"
                                "cluster: prod\n"
                                "node: node-1\n"
                                "name: web\n"
                                "namespace: shop\n"
                                "---\n"
                                "kind: Node\n"
                                "name: node-2\n"
                                "cluster: prod\n"
                                "ips: [10.244.7.1]\n"
                                "---\n"
                                "kind: Workload\n"
                                "cluster: prod\n"
                                "node: node-2\n"
                                "name: db\n"
                                "namespace: data\n";

static void test_underlay_planned(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok(two_nodes, &p);
    assert_string_equal(lab->underlay.netns, "mlab-t-underlay");
    assert_false(lab->underlay.created);
    assert_int_equal(lab->nnodes, 2);
    assert_string_equal(lab->nodes[0].netns, "mlab-t-node-1");
    assert_addr(&lab->nodes[0].ul_addr, "100.64.0.1");
    assert_addr(&lab->nodes[1].ul_addr, "100.64.0.2");
    assert_prefix(&lab->nodes[0].subnet, "10.244.1.0/24");
    assert_prefix(&lab->nodes[1].subnet, "10.244.7.0/24");
    struct moat_prefix ul = lab_ul_subnet();
    assert_prefix(&ul, LAB_UL_TEXT);
    for (size_t i = 0; i < lab->nnodes; i++) {
        assert_true(prefix_contains(&ul, &lab->nodes[i].ul_addr));
        assert_false(prefix_covers(&ul, &lab->nodes[i].subnet));
    }
    char port[LAB_IFNAME_MAX + 1];
    lab_ul_port(1, port, sizeof(port));
    assert_string_equal(port, "node2");
    lab_free(lab);
    policy_free(p);
}

/* One node: the lab still has its underlay (the same topology at every size). */
static void test_single_node_has_underlay(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok("kind: Workload\ncluster: c\nnode: n\nname: w\nnamespace: x\n", &p);
    assert_string_equal(lab->underlay.netns, "mlab-t-underlay");
    assert_int_equal(lab->nnodes, 1);
    assert_addr(&lab->nodes[0].ul_addr, "100.64.0.1");
    lab_free(lab);
    policy_free(p);
}

static void test_workload_in_underlay(void **state)
{
    (void)state;
    const char *want[] = {"lab.yaml:", "workloads \"w\"", "ips[0]: 100.64.0.7 is in 100.64.0.0/24",
                          "underlay", NULL};
    plan_fails("kind: Workload\ncluster: c\nnode: n\nname: w\nnamespace: x\n"
               "ips: [100.64.0.7]\n",
               want);
}

static void test_node_in_underlay(void **state)
{
    (void)state;
    const char *want[] = {"nodes \"n\"", "ips[0]: 100.64.0.1 is in 100.64.0.0/24", NULL};
    plan_fails("kind: Node\nname: n\ncluster: c\nips: [100.64.0.1]\n", want);
    /* Any address of a node counts, not only the first (its gateway). */
    const char *second[] = {"nodes \"n\"", "ips[1]: 100.64.0.200 is in", NULL};
    plan_fails("kind: Node\nname: n\ncluster: c\nips: [10.9.9.1, 100.64.0.200]\n", second);
}

/* Every clash is reported, beside the other planning errors. */
static void test_every_clash_reported(void **state)
{
    (void)state;
    const char *want[] = {"workloads \"a\"",
                          "ips[1]: 100.64.0.10 is in",
                          "workloads \"b\"",
                          "ips[0]: 100.64.0.11 is in",
                          "workloads \"c\"",
                          "ips[0]: 10.1.1.5 is not in node \"n\"'s subnet",
                          NULL};
    plan_fails("kind: Node\nname: n\ncluster: c\nips: [10.9.9.1]\n"
               "---\nkind: Workload\ncluster: c\nnode: n\nname: a\nnamespace: x\n"
               "ips: [10.9.9.5, 100.64.0.10]\n"
               "---\nkind: Workload\ncluster: c\nnode: n\nname: b\nnamespace: x\n"
               "ips: [100.64.0.11]\n"
               "---\nkind: Workload\ncluster: c\nnode: n\nname: c\nnamespace: x\n"
               "ips: [10.1.1.5]\n",
               want);
}

/* Next to the underlay's /24 is fine; an IPv6 address gives its node a /64. */
static void test_near_underlay_ok(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok("kind: Workload\ncluster: c\nnode: n\nname: w\nnamespace: x\n"
                              "ips: [100.64.1.5, \"fd00::100:64:0:1\"]\n"
                              "---\nkind: Workload\ncluster: c\nnode: m\nname: v\nnamespace: x\n"
                              "ips: [100.63.255.5]\n",
                              &p);
    assert_prefix(&lab->nodes[0].subnet, "100.64.1.0/24");
    assert_prefix(&lab->nodes[1].subnet, "100.63.255.0/24");
    assert_prefix(&lab->nodes[0].subnet6, "fd00::/64");
    assert_addr(&lab->nodes[0].gateway6, "fd00::1");
    assert_int_equal(lab->nodes[1].subnet6.len, 0);
    lab_free(lab);
    policy_free(p);
}

/* A node named `underlay` gets a hashed namespace name; the underlay keeps its own. */
static void test_node_named_underlay(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab =
        plan_ok("kind: Workload\ncluster: c\nnode: underlay\nname: w\nnamespace: x\n", &p);
    assert_string_equal(lab->underlay.netns, "mlab-t-underlay");
    assert_string_not_equal(lab->nodes[0].netns, "mlab-t-underlay");
    assert_int_equal(strncmp(lab->nodes[0].netns, "mlab-t-underlay-", 16), 0);
    assert_int_equal(strlen(lab->nodes[0].netns), strlen("mlab-t-underlay-") + 8);
    lab_free(lab);
    policy_free(p);
}

static void test_ul0_reserved(void **state)
{
    (void)state;
    const char *want[] = {"interface: \"ul0\" is reserved", NULL};
    plan_fails("kind: Workload\ncluster: c\nnode: n\nname: w\nnamespace: x\ninterface: ul0\n",
               want);
}

/* YAML for `n` nodes, each with one workload. The caller frees. */
static char *many_nodes(size_t n)
{
    size_t cap = n * 96 + 1, used = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    text[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(text + used, cap - used,
                                 "---\nkind: Workload\ncluster: c\nnode: n%zu\nname: w%zu\n"
                                 "namespace: x\n",
                                 i, i);
    return text;
}

/* 254 nodes: 100.64.0.1 .. .254; one more is an error. */
static void test_node_limit(void **state)
{
    (void)state;
    char *text = many_nodes(LAB_NODES_MAX);
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok(text, &p);
    assert_int_equal(lab->nnodes, LAB_NODES_MAX);
    assert_addr(&lab->nodes[LAB_NODES_MAX - 1].ul_addr, "100.64.0.254");
    struct moat_prefix ul = lab_ul_subnet();
    for (size_t i = 0; i < lab->nnodes; i++)
        assert_false(prefix_covers(&ul, &lab->nodes[i].subnet));
    lab_free(lab);
    policy_free(p);
    free(text);
    text = many_nodes(LAB_NODES_MAX + 1);
    const char *want[] = {"at most 254 nodes, not 255", NULL};
    plan_fails(text, want);
    free(text);
}

/* The state round trip keeps the underlay and the `created` marks. */
static void test_state_round_trip(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok(two_nodes, &p);
    lab->underlay.created = true;
    lab->nodes[0].created = true;
    json_t *j = lab_to_json(lab, true);
    assert_non_null(j);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "underlay"), "bridge")), "ubr0");
    json_t *n2u = json_object_get(json_array_get(json_object_get(j, "nodes"), 1), "underlay");
    assert_string_equal(json_string_value(json_object_get(n2u, "address")), "100.64.0.2");
    assert_string_equal(json_string_value(json_object_get(n2u, "port")), "node2");
    assert_string_equal(json_string_value(json_object_get(n2u, "interface")), "ul0");
    struct lab *back = NULL;
    char why[256] = "";
    assert_int_equal(lab_from_json(j, &back, why, sizeof(why)), 0);
    assert_string_equal(back->underlay.netns, "mlab-t-underlay");
    assert_true(back->underlay.created);
    assert_true(back->nodes[0].created);
    assert_false(back->nodes[1].created);
    assert_addr(&back->nodes[1].ul_addr, "100.64.0.2");
    /* Without `created` (what `status -o json` starts from) nothing is marked made. */
    json_t *plain = lab_to_json(lab, false);
    struct lab *back2 = NULL;
    assert_int_equal(lab_from_json(plain, &back2, why, sizeof(why)), 0);
    assert_false(back2->underlay.created);
    assert_null(json_object_get(json_object_get(plain, "underlay"), "created"));
    lab_free(back2);
    json_decref(plain);
    /* An underlay whose nodes have no underlay address is damaged. */
    json_object_del(n2u, "address");
    lab_free(back);
    back = NULL;
    assert_int_equal(lab_from_json(j, &back, why, sizeof(why)), -EINVAL);
    assert_null(back);
    assert_non_null(strstr(why, "underlay"));
    json_decref(j);
    lab_free(lab);
    policy_free(p);
}

/* A state file from before labs had an underlay still loads: `down` must work on it. */
static void test_state_without_underlay(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *j = json_loads(
        "{\"lab\": \"old\", \"nodes\": [{\"name\": \"n\", \"netns\": \"mlab-old-n\", "
        "\"bridge\": \"mbr0\", \"address\": \"10.244.1.1\", \"subnet\": \"10.244.1.0/24\", "
        "\"created\": true}], \"workloads\": []}",
        0, &jerr);
    assert_non_null(j);
    struct lab *lab = NULL;
    char why[256] = "";
    assert_int_equal(lab_from_json(j, &lab, why, sizeof(why)), 0);
    assert_null(lab->underlay.netns);
    assert_true(lab->nodes[0].created);
    json_t *again = lab_to_json(lab, true);
    assert_null(json_object_get(again, "underlay"));
    assert_null(json_object_get(json_array_get(json_object_get(again, "nodes"), 0), "underlay"));
    json_decref(again);
    lab_free(lab);
    /* A malformed underlay is damaged, not ignored. */
    json_object_set_new(j, "underlay", json_string("x"));
    assert_int_equal(lab_from_json(j, &lab, why, sizeof(why)), -EINVAL);
    json_object_set_new(j, "underlay", json_object());
    assert_int_equal(lab_from_json(j, &lab, why, sizeof(why)), -EINVAL);
    json_decref(j);
}

/* ---------- IPv6 ---------- */

/* node-1: nothing IPv6 written; node-2: a workload's IPv6 address gives its /64. */
static const char dual[] = "kind: Workload\n" /* line 1 */
                           "cluster: prod\n"
                           "node: node-1\n"
                           "name: web\n"
                           "namespace: shop\n"
                           "---\n"
                           "kind: Workload\n" /* line 7 */
                           "cluster: prod\n"
                           "node: node-1\n"
                           "name: api\n"
                           "namespace: shop\n"
                           "ips: [10.244.1.20]\n"
                           "---\n"
                           "kind: Node\n" /* line 14 */
                           "name: node-2\n"
                           "cluster: prod\n"
                           "ips: [10.244.7.1]\n"
                           "---\n"
                           "kind: Workload\n" /* line 19 */
                           "cluster: prod\n"
                           "node: node-2\n"
                           "name: db\n"
                           "namespace: data\n"
                           "---\n"
                           "kind: Workload\n" /* line 25 */
                           "cluster: prod\n"
                           "node: node-2\n"
                           "name: queue\n"
                           "namespace: data\n"
                           "ips: [10.244.7.30, \"fd00:7::30\"]\n";

static const struct moat_workload *policy_workload(const struct moat_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nworkloads; i++)
        if (strcmp(p->workloads[i].name, name) == 0)
            return &p->workloads[i];
    fail_msg("no workload %s", name);
    return NULL;
}

/* The workload's addresses, comma-separated. */
static void assert_ips(const struct moat_addr *a, size_t n, const char *want)
{
    char text[512] = "";
    for (size_t i = 0; i < n; i++) {
        char one[MOAT_ADDR_STRLEN];
        addr_format(&a[i], one, sizeof(one));
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s", i ? "," : "", one);
    }
    assert_string_equal(text, want);
}

static void assert_wl_ips(const struct moat_policy *p, const char *name, const char *want)
{
    const struct moat_workload *w = policy_workload(p, name);
    assert_ips(w->addrs, w->naddrs, want);
}

static void assert_node_ips(const struct moat_policy *p, const char *name, const char *want)
{
    uint32_t nd = policy_find_node(p, name);
    assert_int_not_equal(nd, MOAT_NONE);
    assert_ips(p->nodes[nd].addrs, p->nodes[nd].naddrs, want);
}

static void test_dual_stack_planned(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok_flags(dual, LAB_PLAN_DUAL_STACK, &p);
    assert_true(lab_has_ipv6(lab));
    /* node-1: fd00:0:0:1::/64 (node 1), gateway ::1 */
    assert_prefix(&lab->nodes[0].subnet6, "fd00:0:0:1::/64");
    assert_addr(&lab->nodes[0].gateway6, "fd00:0:0:1::1");
    /* node-2: the /64 of queue's address; the gateway is the lowest free one */
    assert_prefix(&lab->nodes[1].subnet6, "fd00:7::/64");
    assert_addr(&lab->nodes[1].gateway6, "fd00:7::1");
    assert_addr(&lab->nodes[0].ul_addr6, "fd00:ffff::1");
    assert_addr(&lab->nodes[1].ul_addr6, "fd00:ffff::2");
    /* assigned: the IPv4 host number as the last group */
    assert_wl_ips(p, "web", "10.244.1.10,fd00:0:0:1::10");
    assert_wl_ips(p, "api", "10.244.1.20,fd00:0:0:1::20");
    assert_wl_ips(p, "db", "10.244.7.10,fd00:7::10");
    assert_wl_ips(p, "queue", "10.244.7.30,fd00:7::30");
    /* the inventory's Node documents hold both gateways */
    assert_node_ips(p, "node-1", "10.244.1.1,fd00:0:0:1::1");
    assert_node_ips(p, "node-2", "10.244.7.1,fd00:7::1");
    /* the lab's workloads carry the same addresses (all configured on eth0) */
    assert_ips(lab->workloads[0].addrs, lab->workloads[0].naddrs, "10.244.1.10,fd00:0:0:1::10");
    struct moat_prefix ul6 = lab_ul_subnet6();
    assert_prefix(&ul6, LAB_UL6_TEXT);
    lab_free(lab);
    policy_free(p);
}

/* Without --dual-stack only what the file writes has IPv6. */
static void test_ipv6_as_written(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok(dual, &p);
    assert_true(lab_has_ipv6(lab));
    assert_int_equal(lab->nodes[0].subnet6.len, 0);
    assert_prefix(&lab->nodes[1].subnet6, "fd00:7::/64");
    assert_addr(&lab->nodes[1].gateway6, "fd00:7::1");
    /* every node reaches the others' /64s over the underlay */
    assert_addr(&lab->nodes[0].ul_addr6, "fd00:ffff::1");
    assert_wl_ips(p, "web", "10.244.1.10");
    assert_wl_ips(p, "db", "10.244.7.10");
    assert_wl_ips(p, "queue", "10.244.7.30,fd00:7::30");
    assert_node_ips(p, "node-1", "10.244.1.1");
    assert_node_ips(p, "node-2", "10.244.7.1,fd00:7::1");
    lab_free(lab);
    policy_free(p);
    /* A file without IPv6 makes an IPv4 lab. */
    lab = plan_ok(two_nodes, &p);
    assert_false(lab_has_ipv6(lab));
    static const struct moat_addr none = {{0}};
    for (size_t i = 0; i < lab->nnodes; i++) {
        assert_int_equal(lab->nodes[i].subnet6.len, 0);
        assert_int_equal(addr_cmp(&lab->nodes[i].ul_addr6, &none), 0);
    }
    lab_free(lab);
    policy_free(p);
}

/* A Node document's first IPv6 address is its gateway; workloads are numbered in its /64. */
static void test_node_gateway6(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok_flags("kind: Node\nname: n\ncluster: c\n"
                                    "ips: [10.9.9.1, \"fd00:9::abc\", \"fd00:9::abd\"]\n"
                                    "---\nkind: Workload\ncluster: c\nnode: n\nname: w\n"
                                    "namespace: x\n",
                                    LAB_PLAN_DUAL_STACK, &p);
    assert_prefix(&lab->nodes[0].subnet6, "fd00:9::/64");
    assert_addr(&lab->nodes[0].gateway6, "fd00:9::abc");
    assert_wl_ips(p, "w", "10.9.9.10,fd00:9::10");
    assert_node_ips(p, "n", "10.9.9.1,fd00:9::abc,fd00:9::abd");
    lab_free(lab);
    policy_free(p);
}

/* The gateway is the lowest address nothing uses; assigned ones skip what is taken. */
static void test_taken_addresses6(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok_flags(
        "kind: Workload\ncluster: c\nnode: n\nname: a\nnamespace: x\nips: [\"fd00:5::1\"]\n"
        "---\nkind: Workload\ncluster: c\nnode: n\nname: b\nnamespace: x\n"
        "ips: [\"fd00:5::2\", \"fd00:5::10\"]\n"
        "---\nkind: Workload\ncluster: c\nnode: n\nname: d\nnamespace: x\n"
        "---\nkind: Workload\ncluster: c\nnode: n\nname: e\nnamespace: x\nips: [10.244.1.40]\n",
        LAB_PLAN_DUAL_STACK, &p);
    assert_prefix(&lab->nodes[0].subnet6, "fd00:5::/64");
    assert_addr(&lab->nodes[0].gateway6, "fd00:5::3");
    /* assigned addresses follow those of the file */
    assert_wl_ips(p, "a", "fd00:5::1,10.244.1.10");
    assert_wl_ips(p, "b", "fd00:5::2,fd00:5::10,10.244.1.11");
    /* d is 10.244.1.12 -> ::12 */
    assert_wl_ips(p, "d", "10.244.1.12,fd00:5::12");
    assert_wl_ips(p, "e", "10.244.1.40,fd00:5::40");
    lab_free(lab);
    policy_free(p);
    /* ::10 is taken by c's file address: the workload at .10 gets the next free, ::11. */
    lab = plan_ok_flags("kind: Workload\ncluster: c\nnode: n\nname: a\nnamespace: x\n"
                        "---\nkind: Workload\ncluster: c\nnode: n\nname: b\nnamespace: x\n"
                        "ips: [10.244.1.50, \"fd00:0:0:1::10\"]\n",
                        LAB_PLAN_DUAL_STACK, &p);
    assert_prefix(&lab->nodes[0].subnet6, "fd00:0:0:1::/64");
    assert_addr(&lab->nodes[0].gateway6, "fd00:0:0:1::1");
    assert_wl_ips(p, "a", "10.244.1.10,fd00:0:0:1::11");
    lab_free(lab);
    policy_free(p);
}

/* fd00:0:0:K::/64 goes to node K unless the files use it; then the next free one. */
static void test_default_subnet6_next_free(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab =
        plan_ok_flags("kind: Workload\ncluster: c\nnode: n1\nname: a\nnamespace: x\n"
                      "---\nkind: Workload\ncluster: c\nnode: n2\nname: b\nnamespace: x\n"
                      "ips: [\"fd00:0:0:1::99\"]\n"
                      "---\nkind: Workload\ncluster: c\nnode: n3\nname: d\nnamespace: x\n",
                      LAB_PLAN_DUAL_STACK, &p);
    assert_prefix(&lab->nodes[1].subnet6, "fd00:0:0:1::/64");
    assert_prefix(&lab->nodes[0].subnet6, "fd00:0:0:2::/64");
    assert_prefix(&lab->nodes[2].subnet6, "fd00:0:0:3::/64");
    assert_wl_ips(p, "a", "10.244.1.10,fd00:0:0:2::10");
    assert_wl_ips(p, "b", "fd00:0:0:1::99,10.244.2.10");
    lab_free(lab);
    policy_free(p);
}

/* Node numbers are written with their decimal digits: node 12 is fd00:0:0:12::/64. */
static void test_decimal_groups(void **state)
{
    (void)state;
    char *text = many_nodes(LAB_NODES_MAX);
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok_flags(text, LAB_PLAN_DUAL_STACK, &p);
    assert_prefix(&lab->nodes[11].subnet6, "fd00:0:0:12::/64");
    assert_addr(&lab->nodes[11].gateway6, "fd00:0:0:12::1");
    assert_addr(&lab->nodes[11].ul_addr6, "fd00:ffff::12");
    assert_prefix(&lab->nodes[LAB_NODES_MAX - 1].subnet6, "fd00:0:0:254::/64");
    assert_addr(&lab->nodes[LAB_NODES_MAX - 1].ul_addr6, "fd00:ffff::254");
    assert_wl_ips(p, "w11", "10.244.12.10,fd00:0:0:12::10");
    struct moat_prefix ul6 = lab_ul_subnet6();
    for (size_t i = 0; i < lab->nnodes; i++) {
        assert_true(prefix_contains(&ul6, &lab->nodes[i].ul_addr6));
        assert_false(prefix_covers(&ul6, &lab->nodes[i].subnet6));
        for (size_t j = 0; j < i; j++)
            assert_false(prefix_covers(&lab->nodes[i].subnet6, &lab->nodes[j].subnet6));
    }
    lab_free(lab);
    policy_free(p);
    free(text);
}

/* Every IPv6 planning error at once, each with its file, line, document and field. */
static void test_ipv6_errors(void **state)
{
    (void)state;
    const char *want[] = {
        "lab.yaml:6: workloads \"out\": ips[1]: fd00:8::5 is not in node \"n\"'s IPv6 subnet "
        "fd00:9::/64",
        "lab.yaml:13: workloads \"any\": ips[0]: fd00:9:: is the subnet-router anycast address "
        "of fd00:9::/64",
        "lab.yaml:20: workloads \"ul\": ips[0]: fd00:ffff::5 is in fd00:ffff::/64, which the lab "
        "keeps for its underlay",
        "lab.yaml:27: workloads \"ll\": ips[0]: fe80::5 is a link-local address",
        "workloads \"mc\": ips[0]: ff02::1 is a multicast address",
        "workloads \"lo\": ips[0]: ::1 is the loopback address",
        NULL};
    plan_fails("kind: Node\nname: n\ncluster: c\nips: [10.9.9.1, \"fd00:9::1\"]\n"
               "---\nkind: Workload\ncluster: c\nnode: n\nname: out\nnamespace: x\n"
               "ips: [10.9.9.5, \"fd00:8::5\"]\n"
               "---\nkind: Workload\ncluster: c\nnode: n\nname: any\nnamespace: x\n"
               "ips: [\"fd00:9::\"]\n"
               "---\nkind: Workload\ncluster: c\nnode: n\nname: ul\nnamespace: x\n"
               "ips: [\"fd00:ffff::5\"]\n"
               "---\nkind: Workload\ncluster: c\nnode: n\nname: ll\nnamespace: x\n"
               "ips: [\"fe80::5\"]\n"
               "---\nkind: Workload\ncluster: c\nnode: n\nname: mc\nnamespace: x\n"
               "ips: [\"ff02::1\"]\n"
               "---\nkind: Workload\ncluster: c\nnode: n\nname: lo\nnamespace: x\n"
               "ips: [\"::1\"]\n",
               want);
    /* A Node's gateway cannot be the subnet-router anycast address, nor in the underlay. */
    const char *gw[] = {"lab.yaml:1: nodes \"n\": ips: fd00:9:: cannot be a gateway", NULL};
    plan_fails("kind: Node\nname: n\ncluster: c\nips: [10.9.9.1, \"fd00:9::\"]\n", gw);
    const char *ul[] = {"nodes \"n\": ips[1]: fd00:ffff::1 is in fd00:ffff::/64", NULL};
    plan_fails("kind: Node\nname: n\ncluster: c\nips: [10.9.9.1, \"fd00:ffff::1\"]\n", ul);
    /* Two nodes in one /64. */
    const char *shared[] = {
        "nodes \"n2\": ips: IPv6 subnet fd00:5::/64 is also node \"n1\"'s; each node needs its "
        "own /64",
        NULL};
    plan_fails("kind: Workload\ncluster: c\nnode: n1\nname: a\nnamespace: x\n"
               "ips: [\"fd00:5::10\"]\n"
               "---\nkind: Workload\ncluster: c\nnode: n2\nname: b\nnamespace: x\n"
               "ips: [\"fd00:5::20\"]\n",
               shared);
    /* The same with --dual-stack. */
    plan_fails_flags("kind: Workload\ncluster: c\nnode: n1\nname: a\nnamespace: x\n"
                     "ips: [\"fd00:5::10\"]\n"
                     "---\nkind: Workload\ncluster: c\nnode: n2\nname: b\nnamespace: x\n"
                     "ips: [\"fd00:5::20\"]\n",
                     LAB_PLAN_DUAL_STACK, shared);
}

/* IPv4 addresses that are not unicast are refused too. */
static void test_ipv4_not_unicast(void **state)
{
    (void)state;
    const char *want[] = {"workloads \"a\": ips[0]: 127.0.0.5 is a loopback address",
                          "workloads \"b\": ips[0]: 224.0.0.1 is a multicast address",
                          "workloads \"d\": ips[0]: 169.254.1.1 is a link-local address",
                          "workloads \"e\": ips[0]: 0.1.2.3 is in 0.0.0.0/8",
                          "workloads \"f\": ips[0]: 255.255.255.255 is in 240.0.0.0/4",
                          "nodes \"n\": ips[0]: 127.0.0.1 is a loopback address",
                          NULL};
    plan_fails("kind: Node\nname: n\ncluster: c\nips: [127.0.0.1]\n"
               "---\nkind: Workload\ncluster: c\nnode: m\nname: a\nnamespace: x\n"
               "ips: [127.0.0.5]\n"
               "---\nkind: Workload\ncluster: c\nnode: m\nname: b\nnamespace: x\n"
               "ips: [224.0.0.1]\n"
               "---\nkind: Workload\ncluster: c\nnode: m\nname: d\nnamespace: x\n"
               "ips: [169.254.1.1]\n"
               "---\nkind: Workload\ncluster: c\nnode: m\nname: e\nnamespace: x\n"
               "ips: [0.1.2.3]\n"
               "---\nkind: Workload\ncluster: c\nnode: m\nname: f\nnamespace: x\n"
               "ips: [255.255.255.255]\n",
               want);
}

/* The state keeps the IPv6 addresses and subnets; damaged IPv6 members are refused. */
static void test_state_ipv6(void **state)
{
    (void)state;
    struct moat_policy *p = NULL;
    struct lab *lab = plan_ok_flags(dual, LAB_PLAN_DUAL_STACK, &p);
    json_t *j = lab_to_json(lab, true);
    assert_non_null(j);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "underlay"), "subnet6")),
        LAB_UL6_TEXT);
    json_t *n2 = json_array_get(json_object_get(j, "nodes"), 1);
    assert_string_equal(json_string_value(json_object_get(n2, "address6")), "fd00:7::1");
    assert_string_equal(json_string_value(json_object_get(n2, "subnet6")), "fd00:7::/64");
    json_t *n2u = json_object_get(n2, "underlay");
    assert_string_equal(json_string_value(json_object_get(n2u, "address6")), "fd00:ffff::2");
    struct lab *back = NULL;
    char why[256] = "";
    assert_int_equal(lab_from_json(j, &back, why, sizeof(why)), 0);
    assert_true(lab_has_ipv6(back));
    assert_prefix(&back->nodes[1].subnet6, "fd00:7::/64");
    assert_addr(&back->nodes[1].gateway6, "fd00:7::1");
    assert_addr(&back->nodes[1].ul_addr6, "fd00:ffff::2");
    assert_ips(back->workloads[0].addrs, back->workloads[0].naddrs, "10.244.1.10,fd00:0:0:1::10");
    lab_free(back);
    /* a node's underlay without its IPv6 address, in a lab with IPv6 */
    json_t *a6 = json_incref(json_object_get(n2u, "address6"));
    json_object_del(n2u, "address6");
    back = NULL;
    assert_int_equal(lab_from_json(j, &back, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "address6"));
    json_object_set_new(n2u, "address6", a6);
    /* address6 without subnet6, or not IPv6, or outside its subnet */
    const char *bad[][2] = {{"fd00:7::1", NULL},
                            {"10.244.7.1", "fd00:7::/64"},
                            {"fd00:8::1", "fd00:7::/64"},
                            {"fd00:7::1", "10.244.7.0/24"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object_set_new(n2, "address6", json_string(bad[i][0]));
        if (bad[i][1])
            json_object_set_new(n2, "subnet6", json_string(bad[i][1]));
        else
            json_object_del(n2, "subnet6");
        back = NULL;
        assert_int_equal(lab_from_json(j, &back, why, sizeof(why)), -EINVAL);
        assert_null(back);
        assert_non_null(strstr(why, "subnet6"));
    }
    json_decref(j);
    lab_free(lab);
    policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_underlay_planned),
        cmocka_unit_test(test_single_node_has_underlay),
        cmocka_unit_test(test_workload_in_underlay),
        cmocka_unit_test(test_node_in_underlay),
        cmocka_unit_test(test_every_clash_reported),
        cmocka_unit_test(test_near_underlay_ok),
        cmocka_unit_test(test_node_named_underlay),
        cmocka_unit_test(test_ul0_reserved),
        cmocka_unit_test(test_node_limit),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_without_underlay),
        cmocka_unit_test(test_dual_stack_planned),
        cmocka_unit_test(test_ipv6_as_written),
        cmocka_unit_test(test_node_gateway6),
        cmocka_unit_test(test_taken_addresses6),
        cmocka_unit_test(test_default_subnet6_next_free),
        cmocka_unit_test(test_decimal_groups),
        cmocka_unit_test(test_ipv6_errors),
        cmocka_unit_test(test_ipv4_not_unicast),
        cmocka_unit_test(test_state_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
