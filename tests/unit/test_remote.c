/* Unit tests of lib/remote: the server's records back into a policy. */
#include "testutil.h"

#include "loader.h"
#include "refeval.h"
#include "remote.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What GET /agents/policy holds for cluster "prod": records with derived fields. */
static const char *const answer =
    "{\"revision\": 7,"
    " \"cluster\": {\"name\": \"prod\", \"defense\": \"on\", \"mode\": \"protect\","
    "   \"default_action\": \"block\", \"status\": \"normal\", \"nodes\": 2, \"id\": \"prod\"},"
    " \"objects\": ["
    "   {\"id\": 10, \"name\": \"web\", \"namespace\": \"shop\", \"app\": \"web\"},"
    "   {\"id\": 11, \"name\": \"api\", \"namespace\": \"shop\", \"app\": \"api\","
    "    \"cluster\": \"prod\"}],"
    " \"rules\": ["
    "   {\"id\": 42, \"cluster\": \"prod\", \"name\": \"web-to-api\", \"source\": \"web\","
    "    \"destinations\": [{\"object\": \"api\", \"ports\": \"80\"}], \"protocol\": \"tcp\","
    "    \"action\": \"allow\", \"priority\": 10, \"enabled\": true, \"in_effect\": {\"nodes\": "
    "2}},"
    "   {\"id\": 2, \"cluster\": \"prod\", \"name\": \"allow-cluster-dns\", \"type\": \"system\","
    "    \"enabled\": false, \"priority\": 1000, \"action\": \"allow\", \"source\": \"any\"},"
    "   {\"id\": 1, \"cluster\": \"prod\", \"name\": \"allow-host\", \"type\": \"system\","
    "    \"enabled\": true}],"
    " \"workloads\": ["
    "   {\"id\": 5, \"cluster\": \"prod\", \"node\": \"n1\", \"name\": \"web-1\","
    "    \"namespace\": \"shop\", \"labels\": {\"app\": \"web\"}, \"ips\": [\"10.1.1.5\"]},"
    "   {\"id\": 6, \"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"api-1\","
    "    \"namespace\": \"shop\", \"labels\": {\"app\": \"api\"}, \"ips\": [\"10.1.2.6\"],"
    "    \"interface\": \"lxc-api-1\"}]}";

static struct moat_policy *load(const char *skip_node)
{
    json_t *r = json_loads(answer, 0, NULL);
    assert_non_null(r);
    json_t *clusters = json_pack("[O]", json_object_get(r, "cluster"));
    json_t *docs = json_array();
    assert_int_equal(remote_docs(clusters, json_object_get(r, "objects"),
                                 json_object_get(r, "rules"), json_object_get(r, "workloads"),
                                 skip_node, docs),
                     0);
    char *text = json_dumps(docs, JSON_COMPACT);
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    int err = policy_load_text(&p, text, strlen(text), "server", &d);
    for (size_t i = 0; i < d.count; i++)
        print_message("%s\n", d.items[i].text);
    assert_int_equal(err, 0);
    remote_take_ids(p, json_object_get(r, "rules"));
    diags_clear(&d);
    free(text);
    json_decref(docs);
    json_decref(clusters);
    json_decref(r);
    return p;
}

static const struct moat_rule *rule_named(const struct moat_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nrules; i++)
        if (strcmp(p->rules[i].name, name) == 0)
            return &p->rules[i];
    return NULL;
}

/* Derived fields are dropped, system rules keep only their switch, ids are the server's. */
static void test_records_load_with_server_ids(void **state)
{
    (void)state;
    struct moat_policy *p = load(NULL);
    assert_int_equal(p->nclusters, 1);
    assert_int_equal(p->nworkloads, 2);
    const struct moat_rule *r = rule_named(p, "web-to-api");
    assert_non_null(r);
    assert_int_equal(r->id, 42);
    r = rule_named(p, "allow-cluster-dns");
    assert_non_null(r);
    assert_int_equal(r->id, 2);
    assert_false(r->enabled);
    r = rule_named(p, "allow-host");
    assert_int_equal(r->id, 1);
    assert_true(r->enabled);
    policy_free(p);
}

/* The agent leaves its own node's workloads out: its inventory describes them. */
static void test_skip_node(void **state)
{
    (void)state;
    struct moat_policy *p = load("n2");
    assert_int_equal(p->nworkloads, 1);
    assert_string_equal(p->workloads[0].name, "web-1");
    policy_free(p);
}

/* An object restricted to another cluster is not offered. */
static void test_other_cluster_object_left_out(void **state)
{
    (void)state;
    json_t *clusters = json_pack("[{s:s}]", "name", "prod");
    json_t *objects = json_pack("[{s:s,s:s},{s:s,s:s,s:s}]", "name", "a", "namespace", "x", "name",
                                "b", "namespace", "y", "cluster", "staging");
    json_t *docs = json_array();
    assert_int_equal(remote_docs(clusters, objects, NULL, NULL, NULL, docs), 0);
    assert_int_equal(json_array_size(docs), 2); /* the cluster and object a */
    assert_string_equal(json_string_value(json_object_get(json_array_get(docs, 1), "name")), "a");
    json_decref(clusters);
    json_decref(objects);
    json_decref(docs);
}

/*
 * The agent's compact records: other nodes' workloads keep what objects
 * select on (here the label `tier` and the namespace label `env`) and what
 * an alert names (name, namespace, image, app); the rest is left out, and
 * the objects match them as before. This node's workloads are left out.
 */
static void test_compact_remote_workloads(void **state)
{
    (void)state;
    json_t *clusters = json_pack("[{s:s,s:s}]", "name", "prod", "defense", "on");
    json_t *objects = json_pack("[{s:s,s:s,s:{s:s}},{s:s,s:s,s:{s:s}}]", "name", "front",
                                "namespace", "*", "labels", "tier", "web", "name", "staging",
                                "namespace", "*", "namespace_labels", "env", "stage");
    json_t *workloads =
        json_pack("[{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:{s:s,s:s},s:[s],s:s,s:s},"
                  " {s:s,s:s,s:s,s:s,s:[s]}]",
                  "cluster", "prod", "node", "n2", "name", "web-1", "namespace", "shop", "image",
                  "registry.example.com/web:1", "labels", "app", "web", "tier", "web", "pod-hash",
                  "abc123", "namespace_labels", "env", "stage", "owner", "team-a", "ips",
                  "10.1.2.3", "interface", "lxc123", "source", "kubernetes:uid-1", "cluster",
                  "prod", "node", "n1", "name", "mine", "namespace", "shop", "ips", "10.1.1.1");
    json_t *docs = json_array();
    assert_int_equal(remote_docs_compact(clusters, objects, NULL, workloads, "n1", docs), 0);
    json_t *w = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(docs, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "kind")), "Workload") == 0) {
            assert_null(w); /* only the other node's */
            w = v;
        }
    }
    assert_non_null(w);
    json_t *want =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:{s:s},s:[s]}", "kind", "Workload",
                  "cluster", "prod", "node", "n2", "name", "web-1", "namespace", "shop", "image",
                  "registry.example.com/web:1", "labels", "app", "web", "tier", "web",
                  "namespace_labels", "env", "stage", "ips", "10.1.2.3");
    assert_true(json_equal(w, want));
    char *text = json_dumps(docs, JSON_COMPACT);
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    int err = policy_load_text(&p, text, strlen(text), "server", &d);
    for (size_t k = 0; k < d.count; k++)
        print_message("%s\n", d.items[k].text);
    assert_int_equal(err, 0);
    struct moat_endpoint e = {.kind = MOAT_EP_WORKLOAD, .workload = 0};
    assert_true(refeval_object_matches(p, policy_find_object(p, "front"), 0, &e));
    assert_true(refeval_object_matches(p, policy_find_object(p, "staging"), 0, &e));
    policy_free(p);
    diags_clear(&d);
    free(text);
    json_decref(want);
    json_decref(docs);
    json_decref(workloads);
    json_decref(objects);
    json_decref(clusters);
}

/*
 * A cluster of `n` workloads (1,000 nodes of n/1000, Kubernetes-like records
 * with namespace, image, three labels and one address) as the agent keeps
 * the server's answer: remote_docs_compact into JSON text (node-0's 100
 * workloads are the agent's own, left out). Caller frees.
 */
static char *cluster_text(int n)
{
    json_t *clusters = json_pack("[{s:s,s:s}]", "name", "prod", "defense", "on");
    json_t *objects = json_pack("[{s:s,s:s,s:s}]", "name", "web", "namespace", "ns1", "app", "web");
    json_t *rules = json_array(), *workloads = json_array(), *docs = json_array();
    assert_true(clusters && objects && rules && workloads && docs);
    for (int i = 0; i < n; i++) {
        char name[32], ns[16], node[16], app[16], image[64], ip[32];
        snprintf(name, sizeof(name), "pod-%d", i);
        snprintf(ns, sizeof(ns), "ns%d", i % 50);
        snprintf(node, sizeof(node), "node-%d", i % 1000);
        snprintf(app, sizeof(app), "app%d", i % 20);
        snprintf(image, sizeof(image), "registry.example.com/team/app%d:1.%d", i % 20, i % 7);
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", 64 + i / 65536, i / 256 % 256, i % 256);
        json_t *w = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:[s]}", "cluster", "prod",
                              "node", node, "name", name, "namespace", ns, "image", image, "labels",
                              "app", app, "tier", i % 2 ? "web" : "api", "team", "core", "ips", ip);
        assert_non_null(w);
        assert_int_equal(json_array_append_new(workloads, w), 0);
    }
    assert_int_equal(remote_docs_compact(clusters, objects, rules, workloads, "node-0", docs), 0);
    char *text = json_dumps(docs, JSON_COMPACT);
    assert_non_null(text);
    json_decref(clusters);
    json_decref(objects);
    json_decref(rules);
    json_decref(workloads);
    json_decref(docs);
    return text;
}

/*
 * Issue 17: the server's answer for a cluster of 100,000 workloads loads
 * within the bounds of the server's state (as the agent and the CLI read
 * it), while the same text passed as a user's file is refused by the
 * file's bound, with a message naming the file, the line and the limit.
 */
static void test_cluster_of_100k_workloads(void **state)
{
    (void)state;
    char *text = cluster_text(100000);
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    struct policy_source src = {
        .text = text, .len = strlen(text), .name = "server", .limits = &doc_limits_server};
    int err = policy_load_sources(&p, &src, 1, &d);
    for (size_t i = 0; i < d.count; i++)
        print_message("%s\n", d.items[i].text);
    assert_int_equal(err, 0);
    assert_int_equal(p->nworkloads, 99900);
    policy_free(p);
    diags_clear(&d);

    const char *path = testutil_write_file("cluster.json", text);
    const char *paths[] = {path};
    assert_int_equal(policy_load_files(&p, paths, 1, &d), -EINVAL);
    assert_null(p);
    assert_int_equal(d.count, 1);
    char want[4200];
    snprintf(want, sizeof(want), "%s: document has more than 1000000 nodes", path);
    assert_string_equal(d.items[0].text, want);
    diags_clear(&d);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_load_with_server_ids),
        cmocka_unit_test(test_skip_node),
        cmocka_unit_test(test_other_cluster_object_left_out),
        cmocka_unit_test(test_compact_remote_workloads),
        cmocka_unit_test(test_cluster_of_100k_workloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
