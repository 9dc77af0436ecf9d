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

/* Next to the underlay's /24 is fine; IPv6 addresses are never configured. */
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
