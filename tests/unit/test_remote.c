/* Unit tests of lib/remote: the server's records back into a policy. */
#include "testutil.h"

#include "loader.h"
#include "remote.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_load_with_server_ids),
        cmocka_unit_test(test_skip_node),
        cmocka_unit_test(test_other_cluster_object_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
