/* Unit tests of lib/remote: the server's records back into a policy. */
#include "testutil.h"

#include "compile.h"
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
 * Workload record i of a synthetic cluster: 1,000 nodes, 50 namespaces, 20
 * apps, 140 images, labels app, tier and team, one address.
 */
static json_t *synthetic_workload(int i)
{
    char name[32], ns[16], node[16], app[16], image[64], ip[32];
    snprintf(name, sizeof(name), "pod-%d", i);
    snprintf(ns, sizeof(ns), "ns%d", i % 50);
    snprintf(node, sizeof(node), "node-%d", i % 1000);
    snprintf(app, sizeof(app), "app%d", i % 20);
    snprintf(image, sizeof(image), "registry.example.com/team/app%d:1.%d", i % 20, i % 7);
    snprintf(ip, sizeof(ip), "10.%d.%d.%d", 64 + i / 65536, i / 256 % 256, i % 256);
    json_t *w = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:[s]}", "cluster", "prod", "node",
                          node, "name", name, "namespace", ns, "image", image, "labels", "app", app,
                          "tier", i % 2 ? "web" : "api", "team", "core", "ips", ip);
    assert_non_null(w);
    return w;
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
    for (int i = 0; i < n; i++)
        assert_int_equal(json_array_append_new(workloads, synthetic_workload(i)), 0);
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

/* ---------- remote workloads built straight from the records ---------- */

/*
 * Objects selecting on every field a selector reads — labels, namespace
 * labels, app, namespace, every image form (Docker Hub short and
 * `library/`, a registry with a port, tags, digests, tag + digest) — and an
 * ipblock, against workloads with v4 and v6 addresses.
 */
static const char *const rich_objects =
    "[{\"name\": \"front\", \"namespace\": \"*\", \"labels\": {\"tier\": \"web\"}},"
    " {\"name\": \"staging\", \"namespace\": \"*\", \"namespace_labels\": {\"env\": \"stage\"}},"
    " {\"name\": \"both\", \"namespace\": \"shop\", \"labels\": {\"tier\": \"web\", \"team\": "
    "\"a\"}},"
    " {\"name\": \"web\", \"namespace\": \"shop\", \"app\": \"web*\"},"
    " {\"name\": \"nginx\", \"namespace\": \"*\", \"images\": [\"nginx:1.27\"]},"
    " {\"name\": \"nginx-any\", \"namespace\": \"*\", \"images\": [\"library/nginx:*\"]},"
    " {\"name\": \"hub-full\", \"namespace\": \"*\", \"images\": "
    "[\"docker.io/library/redis:7\"]},"
    " {\"name\": \"team-api\", \"namespace\": \"*\", \"images\": [\"myteam/api:*\"]},"
    " {\"name\": \"port-reg\", \"namespace\": \"*\", \"images\": "
    "[\"registry.example.com:5000/team/db*\"]},"
    " {\"name\": \"digest\", \"namespace\": \"*\", \"images\": [\"*@sha256:abc*\"]},"
    " {\"name\": \"latest\", \"namespace\": \"*\", \"images\": [\"busybox\"]},"
    " {\"name\": \"ns-only\", \"namespace\": \"kube-*\"},"
    " {\"name\": \"nets\", \"kind\": \"ipblock\", \"cidrs\": [\"10.9.0.0/16\", \"fd00::/8\"]},"
    " {\"name\": \"other\", \"namespace\": \"*\", \"cluster\": \"staging\"}]";

static const char *const rich_workloads =
    "[{\"id\": 1, \"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"web-1\", \"namespace\": "
    "\"shop\", \"image\": \"nginx:1.27\", \"labels\": {\"app\": \"web\", \"tier\": \"web\", "
    "\"team\": \"a\", \"hash\": \"x1\"}, \"namespace_labels\": {\"env\": \"stage\", \"owner\": "
    "\"t\"}, \"ips\": [\"10.1.2.3\", \"fd00::3\"], \"interface\": \"lxc1\", \"source\": "
    "\"kubernetes:u1\"},"
    " {\"id\": 2, \"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"web-2\", \"namespace\": "
    "\"shop\", \"image\": \"docker.io/library/nginx\", \"labels\": {\"app\": \"webapp\", "
    "\"tier\": \"web\"}, \"ips\": [\"10.1.2.4\"]},"
    " {\"id\": 3, \"cluster\": \"prod\", \"node\": \"n3\", \"name\": \"cache\", \"namespace\": "
    "\"shop\", \"image\": \"index.docker.io/library/redis:7@sha256:abcdef\", \"ips\": "
    "[\"2001:db8::7\"]},"
    " {\"id\": 4, \"cluster\": \"prod\", \"node\": \"n3\", \"name\": \"api\", \"namespace\": "
    "\"shop\", \"image\": \"registry.example.com/myteam/api:2.1\", \"labels\": {\"app\": "
    "\"api\"}, \"ips\": [\"10.9.1.1\"]},"
    " {\"id\": 5, \"cluster\": \"prod\", \"node\": \"n4\", \"name\": \"db\", \"namespace\": "
    "\"data\", \"image\": \"registry.example.com:5000/team/db:15\", \"ips\": [\"10.1.3.1\"]},"
    " {\"id\": 6, \"cluster\": \"prod\", \"node\": \"n4\", \"name\": \"box\", \"namespace\": "
    "\"data\", \"image\": \"busybox\", \"ips\": [\"10.1.3.2\"]},"
    " {\"id\": 7, \"cluster\": \"prod\", \"node\": \"n4\", \"name\": \"dns\", \"namespace\": "
    "\"kube-system\", \"labels\": {\"k8s-app\": \"kube-dns\"}, \"ips\": [\"10.1.0.10\"]},"
    " {\"id\": 8, \"cluster\": \"prod\", \"node\": \"n1\", \"name\": \"mine\", \"namespace\": "
    "\"shop\", \"ips\": [\"10.1.1.1\"]},"
    " {\"id\": 9, \"cluster\": \"staging\", \"node\": \"s1\", \"name\": \"elsewhere\", "
    "\"namespace\": \"shop\", \"ips\": [\"10.2.0.1\"]}]";

static const char *const rich_rules =
    "[{\"id\": 40, \"cluster\": \"prod\", \"name\": \"r1\", \"source\": \"front\","
    "  \"destinations\": [{\"object\": \"nginx\", \"ports\": \"80\"},"
    "  {\"object\": \"digest\", \"ports\": \"6379\"}], \"action\": \"allow\", \"priority\": 10},"
    " {\"id\": 41, \"cluster\": \"prod\", \"name\": \"r2\", \"source\": \"nets\","
    "  \"destinations\": [{\"object\": \"port-reg\", \"ports\": \"5432\"},"
    "  {\"object\": \"team-api\"}], \"action\": \"block\", \"priority\": 20},"
    " {\"id\": 42, \"cluster\": \"prod\", \"name\": \"r3\", \"source\": \"staging\","
    "  \"destinations\": [{\"object\": \"both\"}, {\"object\": \"web\"}, {\"object\": "
    "\"latest\"}, {\"object\": \"nginx-any\"}, {\"object\": \"hub-full\"}, {\"object\": "
    "\"ns-only\"}], \"action\": \"alert\", \"priority\": 30}]";

static json_t *parsed(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        print_message("%s\n", e.text);
    assert_non_null(j);
    return j;
}

static int add_set(void *arg, struct moat_policy *p)
{
    return remote_workloads_add(arg, p);
}

/* The documents path: compact documents (workloads included) as text, loaded. */
static struct moat_policy *via_documents(const json_t *clusters, const json_t *objects,
                                         const json_t *rules, const json_t *workloads)
{
    json_t *docs = json_array();
    assert_int_equal(remote_docs_compact(clusters, objects, rules, workloads, "n1", docs), 0);
    char *text = json_dumps(docs, JSON_COMPACT);
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    struct policy_source src = {
        .text = text, .len = strlen(text), .name = "server", .limits = &doc_limits_server};
    int err = policy_load_sources(&p, &src, 1, &d);
    for (size_t i = 0; i < d.count; i++)
        print_message("%s\n", d.items[i].text);
    assert_int_equal(err, 0);
    diags_clear(&d);
    free(text);
    json_decref(docs);
    return p;
}

/* The direct path as the agent takes it: documents without workloads, then the pooled set. */
static struct moat_policy *via_records(const json_t *clusters, const json_t *objects,
                                       const json_t *rules, const json_t *workloads,
                                       struct remote_workloads **set)
{
    json_t *docs = json_array();
    assert_int_equal(remote_docs_compact(clusters, objects, rules, NULL, "n1", docs), 0);
    char *text = json_dumps(docs, JSON_COMPACT);
    struct moat_diags d;
    diags_init(&d);
    assert_int_equal(remote_workloads_build(clusters, objects, workloads, "n1", "server", set, &d),
                     0);
    assert_int_equal(d.count, 0);
    struct moat_policy *p = NULL;
    struct policy_source src = {
        .text = text, .len = strlen(text), .name = "server", .limits = &doc_limits_server};
    int err = policy_load_sources_then(&p, &src, 1, add_set, *set, &d);
    for (size_t i = 0; i < d.count; i++)
        print_message("%s\n", d.items[i].text);
    assert_int_equal(err, 0);
    diags_clear(&d);
    free(text);
    json_decref(docs);
    return p;
}

static void assert_same_strings(const char *a, const char *b)
{
    if (!a || !b)
        assert_true(a == b);
    else
        assert_string_equal(a, b);
}

static void assert_same_labels(const struct moat_label *a, size_t na, const struct moat_label *b,
                               size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].key, b[i].key);
        assert_string_equal(a[i].value, b[i].value);
    }
}

static void assert_same_forms(const char *a, const char *b)
{
    assert_true((a == NULL) == (b == NULL));
    for (; a && *a; a += strlen(a) + 1, b += strlen(b) + 1)
        assert_string_equal(a, b);
    assert_true(!b || !*b);
}

static void assert_same_workload(const struct moat_workload *a, const struct moat_workload *b)
{
    assert_string_equal(a->cluster_ref, b->cluster_ref);
    assert_int_equal(a->cluster, b->cluster);
    assert_string_equal(a->node, b->node);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->namespace, b->namespace);
    assert_same_strings(a->image, b->image);
    assert_same_forms(a->forms, b->forms);
    assert_same_labels(a->labels, a->nlabels, b->labels, b->nlabels);
    assert_same_labels(a->ns_labels, a->nns_labels, b->ns_labels, b->nns_labels);
    assert_int_equal(a->naddrs, b->naddrs);
    assert_memory_equal(a->addrs, b->addrs, a->naddrs * sizeof(*a->addrs));
    assert_same_strings(a->interface, b->interface);
    assert_same_strings(a->source, b->source);
}

struct entries {
    struct moat_policy_entry e[4096];
    size_t n;
};

static int collect(void *ctx, const struct moat_policy_entry *e)
{
    struct entries *x = ctx;
    assert_true(x->n < 4096);
    x->e[x->n++] = *e;
    return 0;
}

/* The two compilations agree on identities, the objects they carry, addresses and entries. */
static void assert_same_tables(const struct moat_tables *a, const struct moat_tables *b,
                               size_t nobjects)
{
    assert_int_equal(tables_identity_count(a), tables_identity_count(b));
    for (uint32_t id = 0; id < tables_identity_count(a); id++) {
        struct moat_ident_info x = tables_identity(a, id), y = tables_identity(b, id);
        assert_int_equal(x.kind, y.kind);
        assert_int_equal(x.cluster, y.cluster);
        assert_int_equal(x.users, y.users);
        for (uint32_t o = 0; o < nobjects; o++)
            assert_int_equal(tables_identity_has(a, id, o), tables_identity_has(b, id, o));
    }
    assert_int_equal(tables_addr_count(a), tables_addr_count(b));
    for (size_t i = 0; i < tables_addr_count(a); i++) {
        struct moat_addr_entry x = tables_addr_entry(a, i), y = tables_addr_entry(b, i);
        assert_memory_equal(&x.prefix.addr, &y.prefix.addr, sizeof(x.prefix.addr));
        assert_int_equal(x.prefix.len, y.prefix.len);
        assert_int_equal(x.identity, y.identity);
    }
    static struct entries ea, eb;
    ea.n = eb.n = 0;
    assert_int_equal(tables_policy_foreach(a, collect, &ea), 0);
    assert_int_equal(tables_policy_foreach(b, collect, &eb), 0);
    assert_int_equal(ea.n, eb.n);
    assert_true(ea.n > 0);
    for (size_t i = 0; i < ea.n; i++) {
        const struct moat_policy_entry *x = &ea.e[i], *y = &eb.e[i];
        assert_int_equal(x->dir, y->dir);
        assert_int_equal(x->pclass, y->pclass);
        assert_int_equal(x->subject, y->subject);
        assert_int_equal(x->peer, y->peer);
        assert_int_equal(x->port_lo, y->port_lo);
        assert_int_equal(x->port_hi, y->port_hi);
        assert_int_equal(x->rule_id, y->rule_id);
        assert_int_equal(x->priority, y->priority);
        assert_int_equal(x->action, y->action);
    }
}

/*
 * Issue 17: the model built straight from the records is the one the
 * documents path builds — every workload field objects select on, every
 * object's verdict on every workload, and the compiled tables — and it
 * stays valid after the set it came from is freed (the policy shares the pool).
 */
static void test_direct_same_as_documents(void **state)
{
    (void)state;
    json_t *clusters = json_pack("[{s:s,s:s}]", "name", "prod", "defense", "on");
    json_t *objects = parsed(rich_objects), *rules = parsed(rich_rules);
    json_t *workloads = parsed(rich_workloads);
    struct moat_policy *a = via_documents(clusters, objects, rules, workloads);
    struct remote_workloads *set;
    struct moat_policy *b = via_records(clusters, objects, rules, workloads, &set);
    assert_int_equal(set->n, 7); /* n1 is this node, staging another cluster */
    assert_int_equal(set->left_out, 0);
    remote_workloads_free(set);
    json_decref(workloads); /* nothing of the records is kept */
    assert_int_equal(a->nworkloads, 7);
    assert_int_equal(b->nworkloads, a->nworkloads);
    assert_int_equal(b->nobjects, a->nobjects);
    size_t matched = 0;
    for (size_t w = 0; w < a->nworkloads; w++) {
        assert_true(b->workloads[w].pooled);
        assert_same_workload(&a->workloads[w], &b->workloads[w]);
        for (size_t o = 0; o < a->nobjects; o++) {
            bool m = object_matches_workload(&a->objects[o], &a->workloads[w], "prod");
            assert_int_equal(m, object_matches_workload(&b->objects[o], &b->workloads[w], "prod"));
            matched += m && !a->objects[o].builtin;
        }
    }
    assert_true(matched >= 12); /* the objects do select: not a comparison of nothing */
    /* compact: only the labels objects select on, and app */
    assert_int_equal(b->workloads[0].nlabels, 3); /* app, tier, team: not hash */
    assert_int_equal(b->workloads[0].nns_labels, 1);
    assert_null(b->workloads[0].interface);
    struct moat_tables *ta, *tb;
    assert_int_equal(policy_compile(a, NULL, &ta), 0);
    assert_int_equal(policy_compile(b, NULL, &tb), 0);
    assert_same_tables(ta, tb, a->nobjects);
    tables_free(ta);
    tables_free(tb);
    policy_free(a);
    policy_free(b);
    json_decref(clusters);
    json_decref(objects);
    json_decref(rules);
}

/* Equal records give equal sets; one changed label value does not. */
static void test_direct_sets_compare(void **state)
{
    (void)state;
    json_t *clusters = json_pack("[{s:s}]", "name", "prod");
    json_t *objects = parsed(rich_objects), *workloads = parsed(rich_workloads);
    struct moat_diags d;
    diags_init(&d);
    struct remote_workloads *x, *y, *z;
    assert_int_equal(remote_workloads_build(clusters, objects, workloads, "n1", "s", &x, &d), 0);
    assert_int_equal(remote_workloads_build(clusters, objects, workloads, "n1", "s", &y, &d), 0);
    assert_true(remote_workloads_equal(x, y));
    json_object_set_new(json_object_get(json_array_get(workloads, 1), "labels"), "tier",
                        json_string("api"));
    assert_int_equal(remote_workloads_build(clusters, objects, workloads, "n1", "s", &z, &d), 0);
    assert_false(remote_workloads_equal(x, z));
    assert_false(remote_workloads_equal(x, NULL));
    assert_true(remote_workloads_equal(NULL, NULL));
    /* shared strings: both workloads of namespace shop point at one copy */
    assert_ptr_equal(x->w[0].namespace, x->w[1].namespace);
    assert_ptr_equal(x->w[0].labels[1].value, x->w[1].labels[1].value); /* tier=web */
    assert_int_equal(d.count, 0);
    remote_workloads_free(x);
    remote_workloads_free(y);
    remote_workloads_free(z);
    json_decref(clusters);
    json_decref(objects);
    json_decref(workloads);
}

/* Bad records are left out one by one, each refused with the field named; the rest load. */
static void test_direct_bad_records_left_out(void **state)
{
    (void)state;
    json_t *clusters = json_pack("[{s:s}]", "name", "prod");
    json_t *objects = parsed("[{\"name\": \"front\", \"namespace\": \"*\", \"labels\": "
                             "{\"tier\": \"web\"}}]");
    json_t *workloads = parsed(
        "[{\"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"good\", \"namespace\": \"shop\","
        "  \"ips\": [\"10.1.0.1\"]},"
        " {\"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"bad-ip\", \"namespace\": \"shop\","
        "  \"ips\": [\"10.1.0.300\"]},"
        " {\"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"bad-image\", \"namespace\": "
        "\"shop\", \"image\": \"nginx:1:2\", \"ips\": [\"10.1.0.3\"]},"
        " {\"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"bad-label\", \"namespace\": "
        "\"shop\", \"labels\": {\"tier\": \"we b\"}, \"ips\": [\"10.1.0.4\"]},"
        " {\"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"bad-ns\", \"namespace\": true,"
        "  \"ips\": [\"10.1.0.5\"]},"
        " {\"cluster\": \"prod\", \"node\": \"n2\", \"namespace\": \"shop\", \"ips\": "
        "[\"10.1.0.6\"]},"
        " {\"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"twice\", \"namespace\": \"shop\","
        "  \"ips\": [\"10.1.0.7\", \"10.1.0.7\"]},"
        " {\"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"good-2\", \"namespace\": "
        "\"shop\", \"labels\": {\"tier\": \"web\"}, \"ips\": [\"fd00::8\"]}]");
    struct moat_diags d;
    diags_init(&d);
    struct remote_workloads *r;
    assert_int_equal(remote_workloads_build(clusters, objects, workloads, "n1",
                                            "server policy revision 3", &r, &d),
                     0);
    assert_int_equal(r->n, 2);
    assert_string_equal(r->w[0].name, "good");
    assert_string_equal(r->w[1].name, "good-2");
    assert_int_equal(r->left_out, 6);
    static const char *const want[] = {
        "server policy revision 3: document 2: workloads \"bad-ip\": ips[0]: \"10.1.0.300\" is "
        "not an IP address",
        "server policy revision 3: document 3: workloads \"bad-image\": image: \"nginx:1:2\" is "
        "not an image reference",
        "server policy revision 3: document 4: workloads \"bad-label\": labels.tier: label value",
        "server policy revision 3: document 5: workloads \"bad-ns\": namespace: must be a string",
        "server policy revision 3: document 6: workloads (document 6): name: required",
        "server policy revision 3: document 7: workloads \"twice\": ips[1]: 10.1.0.7 is listed "
        "twice",
    };
    assert_int_equal(d.count, 6);
    for (size_t i = 0; i < 6; i++) {
        print_message("%s\n", d.items[i].text);
        assert_non_null(strstr(d.items[i].text, want[i]) == d.items[i].text ? d.items[i].text
                                                                            : NULL);
    }
    diags_clear(&d);
    remote_workloads_free(r);
    json_decref(clusters);
    json_decref(objects);
    json_decref(workloads);
}

/* Many bad records: the messages of the first 20, then one line counting the rest. */
static void test_direct_bad_records_bounded(void **state)
{
    (void)state;
    json_t *clusters = json_pack("[{s:s}]", "name", "prod");
    json_t *workloads = json_array();
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%d", i);
        json_array_append_new(workloads,
                              json_pack("{s:s,s:s,s:s,s:s,s:[s]}", "cluster", "prod", "node", "n2",
                                        "name", name, "namespace", "shop", "ips", "nope"));
    }
    struct moat_diags d;
    diags_init(&d);
    struct remote_workloads *r;
    assert_int_equal(remote_workloads_build(clusters, NULL, workloads, "n1", "server", &r, &d), 0);
    assert_int_equal(r->n, 0);
    assert_int_equal(r->left_out, 100);
    assert_int_equal(d.count, 21);
    assert_string_equal(d.items[20].text, "server: 80 more workloads left out");
    diags_clear(&d);
    remote_workloads_free(r);
    json_decref(clusters);
    json_decref(workloads);
}

/*
 * 100,000 workloads straight from the records: all of another node's load,
 * and the strings many share are stored once — the pool holds less than
 * 64 bytes per workload (a name and an address each, the rest shared).
 */
static void test_direct_100k_workloads(void **state)
{
    (void)state;
    json_t *clusters = json_pack("[{s:s,s:s}]", "name", "prod", "defense", "on");
    json_t *objects = json_pack("[{s:s,s:s,s:s}]", "name", "web", "namespace", "ns1", "app", "web");
    json_t *workloads = json_array();
    for (int i = 0; i < 100000; i++)
        assert_int_equal(json_array_append_new(workloads, synthetic_workload(i)), 0);
    struct moat_diags d;
    diags_init(&d);
    struct remote_workloads *r;
    assert_int_equal(
        remote_workloads_build(clusters, objects, workloads, "node-0", "server", &r, &d), 0);
    json_decref(workloads);
    assert_int_equal(d.count, 0);
    assert_int_equal(r->n, 99900);
    print_message("pool: %zu bytes per workload\n", strpool_bytes(r->pool) / r->n);
    assert_true(strpool_bytes(r->pool) < 64 * r->n);
    json_t *docs = json_array();
    assert_int_equal(remote_docs_compact(clusters, objects, NULL, NULL, "node-0", docs), 0);
    char *text = json_dumps(docs, JSON_COMPACT);
    struct policy_source src = {.text = text, .len = strlen(text), .name = "server"};
    struct moat_policy *p;
    assert_int_equal(policy_load_sources_then(&p, &src, 1, add_set, r, &d), 0);
    assert_int_equal(p->nworkloads, 99900);
    remote_workloads_free(r);
    struct moat_tables *t;
    assert_int_equal(policy_compile(p, NULL, &t), 0);
    struct moat_addr a;
    assert_int_equal(addr_parse("10.64.0.1", &a), 0);
    assert_int_not_equal(tables_identity_of(t, &a), MOAT_ID_WORLD);
    tables_free(t);
    policy_free(p);
    free(text);
    json_decref(docs);
    json_decref(clusters);
    json_decref(objects);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_load_with_server_ids),
        cmocka_unit_test(test_skip_node),
        cmocka_unit_test(test_other_cluster_object_left_out),
        cmocka_unit_test(test_compact_remote_workloads),
        cmocka_unit_test(test_cluster_of_100k_workloads),
        cmocka_unit_test(test_direct_same_as_documents),
        cmocka_unit_test(test_direct_sets_compare),
        cmocka_unit_test(test_direct_bad_records_left_out),
        cmocka_unit_test(test_direct_bad_records_bounded),
        cmocka_unit_test(test_direct_100k_workloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
