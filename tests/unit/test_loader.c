/*
 * Unit tests for lib/loader (and the matching in lib/model): policy,
 * inventory and lab files (SPEC 10) into a validated policy. Every
 * validation error is checked with its exact message; a file with several
 * problems reports all of them and yields no policy. Also: ids (system rules
 * first), system rule overrides, built-in objects, JSON input, and object
 * matching against workloads and addresses (SPEC 2).
 */
#include "testutil.h"

#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- helpers ---------- */

static struct moat_diags diags;

static void print_diags(void)
{
    for (size_t i = 0; i < diags.count; i++)
        print_message("  got: %s\n", diags.items[i].text);
}

/* Loads `text` as file `name`; returns the policy or NULL (messages in `diags`). */
static struct moat_policy *load(const char *text, const char *name)
{
    diags_clear(&diags);
    struct moat_policy *p = (struct moat_policy *)&diags;
    int err = policy_load_text(&p, text, strlen(text), name, &diags);
    if (err) {
        assert_null(p);
        assert_int_equal(err, -EINVAL);
        assert_true(diags.count > 0);
    } else {
        assert_non_null(p);
        assert_int_equal(diags.count, 0);
        assert_true(p->finished);
    }
    return p;
}

static struct moat_policy *load_ok_named(const char *text, const char *name)
{
    struct moat_policy *p = load(text, name);
    if (!p) {
        print_diags();
        fail_msg("%s: expected to load", name);
    }
    return p;
}

static struct moat_policy *load_ok(const char *text)
{
    return load_ok_named(text, "t.yaml");
}

/* Expects loading to fail with exactly `msgs` (NULL-terminated), in order. */
static void expect_errors_named(const char *name, const char *text, const char *const *msgs)
{
    struct moat_policy *p = load(text, name);
    if (p) {
        policy_free(p);
        fail_msg("%s: loaded, expected %s", name, msgs[0]);
    }
    size_t n = 0;
    while (msgs[n])
        n++;
    bool same = diags.count == n && diags_total(&diags) == n;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(diags.items[i].text, msgs[i]) == 0;
    if (!same) {
        for (size_t i = 0; i < n; i++)
            print_message("  want: %s\n", msgs[i]);
        print_diags();
        fail_msg("%s: messages differ", name);
    }
}

#define EXPECT_ERRORS(text, ...)                                                                   \
    expect_errors_named("t.yaml", text, (const char *const[]){__VA_ARGS__, NULL})
#define EXPECT_ERRORS_NAMED(name, text, ...)                                                       \
    expect_errors_named(name, text, (const char *const[]){__VA_ARGS__, NULL})

static int teardown_diags(void **state)
{
    (void)state;
    diags_clear(&diags);
    return 0;
}

static const struct moat_rule *rule_named(const struct moat_policy *p, const char *cluster,
                                          const char *name)
{
    for (size_t i = 0; i < p->nrules; i++)
        if (strcmp(p->rules[i].name, name) == 0 &&
            strcmp(p->clusters[p->rules[i].cluster].name, cluster) == 0)
            return &p->rules[i];
    fail_msg("no rule %s/%s", cluster, name);
    return NULL;
}

static const struct moat_object *object_named(const struct moat_policy *p, const char *name)
{
    uint32_t i = policy_find_object(p, name);
    if (i == MOAT_NONE)
        fail_msg("no object %s", name);
    return &p->objects[i];
}

static const struct moat_workload *workload_named(const struct moat_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nworkloads; i++)
        if (strcmp(p->workloads[i].name, name) == 0)
            return &p->workloads[i];
    fail_msg("no workload %s", name);
    return NULL;
}

static struct moat_addr addr(const char *text)
{
    struct moat_addr a;
    assert_int_equal(addr_parse(text, &a), 0);
    return a;
}

/* Lines 1-11: a cluster and two objects; the next document starts on line 12. */
#define BASE                                                                                       \
    "kind: Cluster\n"                                                                              \
    "name: prod\n"                                                                                 \
    "---\n"                                                                                        \
    "kind: NetworkObject\n"                                                                        \
    "name: web\n"                                                                                  \
    "namespace: shop\n"                                                                            \
    "---\n"                                                                                        \
    "kind: NetworkObject\n"                                                                        \
    "name: lb\n"                                                                                   \
    "namespace: infra\n"                                                                           \
    "---\n"

/* A rule document at line 12 (name on line 14); fields on lines 15... follow. */
#define RULE_HEAD                                                                                  \
    BASE "kind: DefenseRule\n"                                                                     \
         "cluster: prod\n"                                                                         \
         "name: r1\n"

/* The rest of a valid rule, lines 15-20. */
#define RULE_BODY                                                                                  \
    "source: lb\n"                                                                                 \
    "destinations:\n"                                                                              \
    "  - object: web\n"                                                                            \
    "    ports: 80/80\n"                                                                           \
    "action: allow\n"                                                                              \
    "priority: 10\n"

/* ---------- the SPEC examples ---------- */

/* SPEC 10's documents as written, plus the `lb` object its rule names and the inventory. */
static const char spec_policy[] =
    "kind: Cluster\n"
    "name: prod                 # cluster id\n"
    "defense: on                # on | off\n"
    "mode: protect              # protect | monitor\n"
    "default_action: block      # block | alert | allow\n"
    "---\n"
    "kind: NetworkObject\n"
    "name: web\n"
    "namespace: shop            # pattern, required\n"
    "app: web*                  # pattern on label app, optional\n"
    "images: [\"nginx:*\"]        # optional, any matches\n"
    "labels: [tier=frontend]    # optional, all must match\n"
    "---\n"
    "kind: NetworkObject\n"
    "name: office\n"
    "cidrs: [203.0.113.0/24]    # ipblock object (extension)\n"
    "---\n"
    "kind: DefenseRule\n"
    "cluster: prod\n"
    "name: web-from-lb\n"
    "source: lb                 # object name, or any\n"
    "destinations:\n"
    "  - object: web\n"
    "    ports: 80/80,443/443   # or a list [\"80/80\", \"443/443\"], or omitted = all\n"
    "protocol: tcp              # tcp | udp | any\n"
    "action: allow              # block | alert | allow\n"
    "priority: 10               # 1..1000, smaller wins\n"
    "enabled: true\n"
    "---\n"
    "kind: NetworkObject\n"
    "name: lb\n"
    "namespace: infra\n"
    "app: haproxy\n"
    "---\n"
    "kind: Workload\n"
    "cluster: prod\n"
    "node: node-1\n"
    "name: web-7d9f\n"
    "namespace: shop\n"
    "image: docker.io/library/nginx:1.27\n"
    "labels: {app: web, tier: frontend}\n"
    "ips: [10.244.1.5]\n"
    "interface: lxc-web-7d9f    # host-side interface, when on this node\n"
    "---\n";

/* The same documents as one JSON array. */
static const char spec_policy_json[] =
    "[\n"
    " {\"kind\": \"Cluster\", \"name\": \"prod\", \"defense\": \"on\", \"mode\": \"protect\","
    "  \"default_action\": \"block\"},\n"
    " {\"kind\": \"NetworkObject\", \"name\": \"web\", \"namespace\": \"shop\", \"app\": \"web*\","
    "  \"images\": [\"nginx:*\"], \"labels\": [\"tier=frontend\"]},\n"
    " {\"kind\": \"NetworkObject\", \"name\": \"office\", \"cidrs\": [\"203.0.113.0/24\"]},\n"
    " {\"kind\": \"DefenseRule\", \"cluster\": \"prod\", \"name\": \"web-from-lb\","
    "  \"source\": \"lb\", \"destinations\": [{\"object\": \"web\", \"ports\": [\"80/80\","
    "  \"443/443\"]}], \"protocol\": \"tcp\", \"action\": \"allow\", \"priority\": 10,"
    "  \"enabled\": true},\n"
    " {\"kind\": \"NetworkObject\", \"name\": \"lb\", \"namespace\": \"infra\","
    "  \"app\": \"haproxy\"},\n"
    " {\"kind\": \"Workload\", \"cluster\": \"prod\", \"node\": \"node-1\", \"name\": \"web-7d9f\","
    "  \"namespace\": \"shop\", \"image\": \"docker.io/library/nginx:1.27\","
    "  \"labels\": {\"app\": \"web\", \"tier\": \"frontend\"}, \"ips\": [\"10.244.1.5\"],"
    "  \"interface\": \"lxc-web-7d9f\"}\n"
    "]\n";

static void check_spec_policy(const struct moat_policy *p)
{
    assert_int_equal(p->nclusters, 1);
    const struct moat_cluster *c = &p->clusters[0];
    assert_string_equal(c->name, "prod");
    assert_true(c->defense);
    assert_int_equal(c->mode, MOAT_MODE_PROTECT);
    assert_int_equal(c->default_action, MOAT_ACTION_BLOCK);
    assert_false(c->implicit);

    /* Built-ins first (ids 1-3), then the file's objects in file order. */
    assert_int_equal(p->nobjects, 6);
    assert_int_equal(object_named(p, "any")->id, 1);
    assert_int_equal(object_named(p, "any")->kind, MOAT_OBJ_ANY);
    assert_int_equal(object_named(p, "host")->id, 2);
    assert_int_equal(object_named(p, "host")->kind, MOAT_OBJ_HOST);
    const struct moat_object *dns = object_named(p, "cluster-dns");
    assert_int_equal(dns->id, 3);
    assert_true(dns->builtin);
    assert_string_equal(dns->namespace, "kube-system");
    assert_int_equal(dns->nlabels, 1);
    assert_string_equal(dns->labels[0].key, "k8s-app");
    assert_string_equal(dns->labels[0].value, "kube-dns");

    const struct moat_object *web = object_named(p, "web");
    assert_int_equal(web->id, 4);
    assert_int_equal(web->kind, MOAT_OBJ_SELECTOR);
    assert_string_equal(web->namespace, "shop");
    assert_string_equal(web->app, "web*");
    assert_int_equal(web->nimages, 1);
    assert_string_equal(web->images[0], "nginx:*");
    assert_int_equal(web->nlabels, 1);
    assert_string_equal(web->labels[0].key, "tier");
    assert_string_equal(web->labels[0].value, "frontend");
    assert_null(web->cluster);
    assert_false(web->builtin);

    const struct moat_object *office = object_named(p, "office");
    assert_int_equal(office->id, 5);
    assert_int_equal(office->kind, MOAT_OBJ_IPBLOCK);
    assert_int_equal(office->ncidrs, 1);
    char buf[80];
    prefix_format(&office->cidrs[0].prefix, buf, sizeof(buf));
    assert_string_equal(buf, "203.0.113.0/24");
    assert_int_equal(office->cidrs[0].nexcept, 0);
    assert_null(office->namespace);
    assert_int_equal(object_named(p, "lb")->id, 6);

    /* System rules take the lowest ids; the file's rule follows. Sorted by id. */
    assert_int_equal(p->nrules, 3);
    assert_string_equal(p->rules[0].name, MOAT_SYSRULE_HOST);
    assert_int_equal(p->rules[0].id, 1);
    assert_string_equal(p->rules[1].name, MOAT_SYSRULE_DNS);
    assert_int_equal(p->rules[1].id, 2);
    const struct moat_rule *r = &p->rules[2];
    assert_string_equal(r->name, "web-from-lb");
    assert_int_equal(r->id, 3);
    assert_string_equal(r->cluster_ref, "prod");
    assert_int_equal(r->cluster, 0);
    assert_true(r->enabled);
    assert_string_equal(r->source_ref, "lb");
    assert_int_equal(r->source, policy_find_object(p, "lb"));
    assert_int_equal(r->ndests, 1);
    assert_int_equal(r->dests[0].object, policy_find_object(p, "web"));
    assert_int_equal(r->dests[0].nports, 2);
    assert_false(r->dests[0].all_ports);
    assert_int_equal(r->dests[0].ports[0].lo, 80);
    assert_int_equal(r->dests[0].ports[0].hi, 80);
    assert_int_equal(r->dests[0].ports[1].lo, 443);
    assert_int_equal(r->dests[0].ports[1].hi, 443);
    assert_int_equal(r->proto, MOAT_PROTO_TCP);
    assert_int_equal(r->action, MOAT_ACTION_ALLOW);
    assert_int_equal(r->priority, 10);
    assert_int_equal(r->type, MOAT_RULE_CUSTOM);

    assert_int_equal(p->nworkloads, 1);
    const struct moat_workload *w = &p->workloads[0];
    assert_string_equal(w->cluster_ref, "prod");
    assert_int_equal(w->cluster, 0);
    assert_string_equal(w->node, "node-1");
    assert_string_equal(w->name, "web-7d9f");
    assert_string_equal(w->namespace, "shop");
    assert_string_equal(w->image, "docker.io/library/nginx:1.27");
    assert_non_null(w->forms);
    assert_int_equal(w->nlabels, 2);
    assert_string_equal(labels_get(w->labels, w->nlabels, "app"), "web");
    assert_string_equal(labels_get(w->labels, w->nlabels, "tier"), "frontend");
    assert_int_equal(w->naddrs, 1);
    struct moat_addr a = addr("10.244.1.5");
    assert_int_equal(addr_cmp(&w->addrs[0], &a), 0);
    assert_string_equal(w->interface, "lxc-web-7d9f");

    /* The object picks the workload: namespace, app pattern, image, label. */
    assert_true(object_matches_workload(web, w, "prod"));
    assert_false(object_matches_workload(object_named(p, "lb"), w, "prod"));
    struct moat_addr inside = addr("203.0.113.77"), outside = addr("203.0.114.1");
    assert_true(object_covers_address(office, &inside));
    assert_false(object_covers_address(office, &outside));
}

static void test_spec_example_yaml(void **state)
{
    (void)state;
    struct moat_policy *p = load_ok_named(spec_policy, "policy.yaml");
    check_spec_policy(p);
    assert_string_equal(p->rules[2].at.file, "policy.yaml");
    assert_int_equal(p->rules[2].at.line, 18);
    assert_int_equal(p->rules[2].at.doc, 4);
    policy_free(p);
}

static void test_spec_example_json(void **state)
{
    (void)state;
    struct moat_policy *p = load_ok_named(spec_policy_json, "policy.json");
    check_spec_policy(p);
    assert_int_equal(p->rules[2].at.line, 0);
    assert_int_equal(p->rules[2].at.doc, 4);
    policy_free(p);
    /* One JSON object is one document. */
    p = load_ok_named("{\"kind\": \"Cluster\", \"name\": \"prod\"}", "c.json");
    assert_int_equal(p->nclusters, 1);
    assert_false(p->clusters[0].defense);
    policy_free(p);
}

/* SPEC 3's example message, produced by a rule whose ports sit on line 14. */
static void test_spec_overlap_message(void **state)
{
    (void)state;
    static const char text[] = "kind: Cluster\n"       /* 1 */
                               "name: prod\n"          /* 2 */
                               "---\n"                 /* 3 */
                               "kind: NetworkObject\n" /* 4 */
                               "name: web\n"           /* 5 */
                               "namespace: shop\n"     /* 6 */
                               "---\n"                 /* 7 */
                               "kind: DefenseRule\n"   /* 8 */
                               "cluster: prod\n"       /* 9 */
                               "name: web-from-lb\n"   /* 10 */
                               "source: any\n"         /* 11 */
                               "destinations:\n"       /* 12 */
                               "  - object: web\n"     /* 13 */
                               "    ports: 80/90,85/100\n"
                               "action: allow\n"
                               "priority: 10\n";
    EXPECT_ERRORS_NAMED("policy.yaml", text,
                        "policy.yaml:14: rules \"web-from-lb\": destinations[0].ports: ranges "
                        "80/90 and 85/100 overlap");
    /* The same from a file on disk: the message starts with its path. */
    const char *path = testutil_write_file("policy.yaml", text);
    struct moat_policy *p = (struct moat_policy *)&diags;
    diags_clear(&diags);
    assert_int_equal(policy_load_files(&p, &path, 1, &diags), -EINVAL);
    assert_null(p);
    assert_int_equal(diags.count, 1);
    char want[600];
    snprintf(want, sizeof(want),
             "%s:14: rules \"web-from-lb\": destinations[0].ports: ranges 80/90 and 85/100 "
             "overlap",
             path);
    assert_string_equal(diags.items[0].text, want);
    assert_string_equal(diags.items[0].file, path);
    assert_int_equal(diags.items[0].line, 14);
}

static void test_spec_detections(void **state)
{
    (void)state;
    struct moat_policy *p = load_ok(
        "kind: Cluster\n"
        "name: prod\n"
        "detections:\n"
        "  brute_force:  {enabled: true, action: alert, threshold: 20, window: 10, quarantine: "
        "600, ports: [22, 3389]}\n"
        "  port_scan:    {enabled: true, action: alert, threshold: 30, window: 10, quarantine: "
        "600}\n"
        "  dns_hijack:   {enabled: true, action: alert, resolvers: [10.96.0.10]}\n"
        "  spoofing:     {enabled: true, action: block}\n"
        "  threat_intel: {enabled: true, action: alert, file: /etc/moat/threats.txt}\n");
    const struct moat_detections *d = &p->clusters[0].det;
    assert_true(d->brute_force.c.enabled);
    assert_int_equal(d->brute_force.c.action, MOAT_ACTION_ALERT);
    assert_int_equal(d->brute_force.threshold, 20);
    assert_int_equal(d->brute_force.window, 10);
    assert_int_equal(d->brute_force.quarantine, 600);
    assert_int_equal(d->brute_force.nports, 2);
    assert_int_equal(d->brute_force.ports[0], 22);
    assert_int_equal(d->brute_force.ports[1], 3389);
    assert_int_equal(d->port_scan.threshold, 30);
    assert_int_equal(d->dns_hijack.nresolvers, 1);
    struct moat_addr r = addr("10.96.0.10");
    assert_int_equal(addr_cmp(&d->dns_hijack.resolvers[0], &r), 0);
    assert_true(d->spoofing.c.enabled);
    assert_int_equal(d->spoofing.c.action, MOAT_ACTION_BLOCK);
    assert_string_equal(d->threat_intel.file, "/etc/moat/threats.txt");
    policy_free(p);

    /* Omitted fields take the defaults; a detection can be switched off alone. */
    p = load_ok("kind: Cluster\n"
                "name: prod\n"
                "detections:\n"
                "  brute_force: {enabled: off, action: block}\n"
                "  port_scan: {threshold: 100}\n");
    d = &p->clusters[0].det;
    assert_false(d->brute_force.c.enabled);
    assert_int_equal(d->brute_force.c.action, MOAT_ACTION_BLOCK);
    assert_int_equal(d->brute_force.threshold, 20);
    assert_int_equal(d->brute_force.nports, 11);
    assert_int_equal(d->brute_force.ports[0], 22);
    assert_int_equal(d->brute_force.ports[10], 9200);
    assert_true(d->port_scan.c.enabled);
    assert_int_equal(d->port_scan.threshold, 100);
    assert_int_equal(d->port_scan.window, 10);
    assert_int_equal(d->port_scan.quarantine, 600);
    assert_true(d->dns_hijack.c.enabled);
    assert_int_equal(d->dns_hijack.nresolvers, 0);
    assert_int_equal(d->spoofing.c.action, MOAT_ACTION_BLOCK);
    assert_true(d->threat_intel.c.enabled);
    assert_int_equal(d->threat_intel.c.action, MOAT_ACTION_ALERT);
    assert_null(d->threat_intel.file);
    policy_free(p);
}

static void test_cluster_defaults(void **state)
{
    (void)state;
    struct moat_policy *p = load_ok("kind: Cluster\nname: dev\n---\n"
                                    "kind: Cluster\nname: stage\ndefense: yes\nmode: monitor\n"
                                    "default_action: alert\ndescription: staging\n---\n"
                                    "kind: Cluster\nname: lab\ndefense: \"off\"\n"
                                    "default_action: allow\n");
    assert_int_equal(p->nclusters, 3);
    assert_false(p->clusters[0].defense);
    assert_int_equal(p->clusters[0].mode, MOAT_MODE_PROTECT);
    assert_int_equal(p->clusters[0].default_action, MOAT_ACTION_BLOCK);
    assert_true(p->clusters[1].defense);
    assert_int_equal(p->clusters[1].mode, MOAT_MODE_MONITOR);
    assert_int_equal(p->clusters[1].default_action, MOAT_ACTION_ALERT);
    assert_string_equal(p->clusters[1].description, "staging");
    assert_false(p->clusters[2].defense);
    assert_int_equal(p->clusters[2].default_action, MOAT_ACTION_ALLOW);
    policy_free(p);
}

/* ---------- documents and kinds ---------- */

static void test_kinds(void **state)
{
    (void)state;
    EXPECT_ERRORS("kind: Policy\nname: x\n",
                  "t.yaml:1: document 1: kind: \"Policy\" is not one of Cluster, NetworkObject, "
                  "DefenseRule, Workload, Node");
    EXPECT_ERRORS("name: x\n", "t.yaml:1: document 1: kind: required (one of Cluster, "
                               "NetworkObject, DefenseRule, Workload, Node)");
    EXPECT_ERRORS("kind: ~\nname: x\n", "t.yaml:1: document 1: kind: required (one of Cluster, "
                                        "NetworkObject, DefenseRule, Workload, Node)");
    EXPECT_ERRORS("kind: [Cluster]\nname: x\n",
                  "t.yaml:1: document 1: kind: must be one of Cluster, NetworkObject, "
                  "DefenseRule, Workload, Node, not a list");
    EXPECT_ERRORS("kind: cluster\nname: x\n",
                  "t.yaml:1: document 1: kind: \"cluster\" is not one of Cluster, NetworkObject, "
                  "DefenseRule, Workload, Node");
    EXPECT_ERRORS("kind: Cluster\nname: a\n---\n- kind: Cluster\n---\njust text\n",
                  "t.yaml:4: document 2: a document must be a map with a kind, not a list",
                  "t.yaml:6: document 3: a document must be a map with a kind, not a string");
    EXPECT_ERRORS_NAMED("t.json", "[{\"kind\": \"Cluster\", \"name\": \"a\"}, \"Cluster\", 5]",
                        "t.json: document 2: a document must be a map with a kind, not a string",
                        "t.json: document 3: a document must be a map with a kind, not a number");
}

static void test_empty_documents(void **state)
{
    (void)state;
    /* Empty YAML documents (a leading, doubled or trailing `---`) are skipped. */
    struct moat_policy *p = load_ok("---\n---\nkind: Cluster\nname: a\n---\n---\n");
    assert_int_equal(p->nclusters, 1);
    assert_int_equal(p->clusters[0].at.doc, 2);
    policy_free(p);
    p = load_ok("");
    assert_int_equal(p->nclusters, 0);
    assert_int_equal(p->nrules, 0);
    assert_int_equal(p->nobjects, 3); /* the built-ins */
    policy_free(p);
    p = load_ok_named("[]", "e.json");
    policy_free(p);
    /* A JSON null is not a document. */
    EXPECT_ERRORS_NAMED("n.json", "[null]",
                        "n.json: document 1: a document must be a map with a kind, not null");
}

static void test_unknown_fields(void **state)
{
    (void)state;
    EXPECT_ERRORS("kind: Cluster\nname: prod\ndefence: on\n",
                  "t.yaml:3: clusters \"prod\": defence: unknown field");
    EXPECT_ERRORS(BASE "kind: NetworkObject\nname: db\nnamespace: shop\nimage: [x]\n",
                  "t.yaml:15: objects \"db\": image: unknown field");
    EXPECT_ERRORS(RULE_HEAD RULE_BODY "ports: 80\n",
                  "t.yaml:21: rules \"r1\": ports: unknown field");
    EXPECT_ERRORS(RULE_HEAD "source: lb\n"
                            "destinations:\n"
                            "  - object: web\n"
                            "    port: 80\n"
                            "action: allow\n"
                            "priority: 10\n",
                  "t.yaml:18: rules \"r1\": destinations[0].port: unknown field");
    EXPECT_ERRORS("kind: Workload\ncluster: prod\nnode: n1\nname: w\nnamespace: shop\nip: 1\n",
                  "t.yaml:6: workloads \"w\": ip: unknown field");
    EXPECT_ERRORS("kind: Node\nname: n1\naddress: 10.0.0.1\n",
                  "t.yaml:3: nodes \"n1\": address: unknown field");
    EXPECT_ERRORS("kind: Cluster\nname: prod\ndetections:\n  brute_force: {treshold: 5}\n"
                  "  scan: {}\n",
                  "t.yaml:5: clusters \"prod\": detections.scan: unknown field",
                  "t.yaml:4: clusters \"prod\": detections.brute_force.treshold: unknown field");
    EXPECT_ERRORS("kind: NetworkObject\nname: o\ncidrs:\n  - {cidr: 10.0.0.0/8, exclude: []}\n",
                  "t.yaml:4: objects \"o\": cidrs[0].exclude: unknown field");
}

static void test_required_fields(void **state)
{
    (void)state;
    EXPECT_ERRORS("kind: Cluster\ndefense: on\n",
                  "t.yaml:1: clusters (document 1): name: required");
    EXPECT_ERRORS("kind: NetworkObject\napp: web\n",
                  "t.yaml:1: objects (document 1): name: required",
                  "t.yaml:1: objects (document 1): namespace: required");
    EXPECT_ERRORS("kind: NetworkObject\nname: web\nnamespace:\n",
                  "t.yaml:1: objects \"web\": namespace: required");
    /* Every missing field of a rule at once. */
    EXPECT_ERRORS("kind: DefenseRule\nenabled: true\n",
                  "t.yaml:1: rules (document 1): name: required",
                  "t.yaml:1: rules (document 1): cluster: required",
                  "t.yaml:1: rules (document 1): source: required (an object name or id, or any)",
                  "t.yaml:1: rules (document 1): destinations: required (a list of 1-8 entries "
                  "{object, ports})",
                  "t.yaml:1: rules (document 1): action: required",
                  "t.yaml:1: rules (document 1): priority: required (an integer 1..1000)");
    EXPECT_ERRORS(RULE_HEAD "source: lb\n"
                            "destinations:\n"
                            "  - ports: 80\n"
                            "action: allow\n"
                            "priority: 10\n",
                  "t.yaml:17: rules \"r1\": destinations[0].object: required");
    EXPECT_ERRORS("kind: Workload\nimage: nginx\n",
                  "t.yaml:1: workloads (document 1): cluster: required",
                  "t.yaml:1: workloads (document 1): node: required",
                  "t.yaml:1: workloads (document 1): name: required",
                  "t.yaml:1: workloads (document 1): namespace: required");
    EXPECT_ERRORS("kind: Node\n", "t.yaml:1: nodes (document 1): name: required");
}

static void test_names(void **state)
{
    (void)state;
    EXPECT_ERRORS(BASE "kind: NetworkObject\nname: my web\nnamespace: shop\n",
                  "t.yaml:13: objects \"my web\": name: \"my web\" must be 1-64 characters of "
                  "A-Z a-z 0-9 . _ -");
    EXPECT_ERRORS(BASE "kind: NetworkObject\nname: web/1\nnamespace: shop\n",
                  "t.yaml:13: objects \"web/1\": name: \"web/1\" must be 1-64 characters of "
                  "A-Z a-z 0-9 . _ -");
    EXPECT_ERRORS("kind: NetworkObject\nname: \"\"\nnamespace: shop\n",
                  "t.yaml:2: objects (document 1): name: must not be empty");
    EXPECT_ERRORS("kind: NetworkObject\nname: true\nnamespace: shop\n",
                  "t.yaml:2: objects \"true\": name: must be a string, not a boolean");
    char text[400];
    snprintf(text, sizeof(text), "kind: NetworkObject\nname: %065d\nnamespace: shop\n", 0);
    char want[400];
    snprintf(want, sizeof(want),
             "t.yaml:2: objects \"%064d\": name: \"%065d\" must be 1-64 characters of A-Z a-z "
             "0-9 . _ -",
             0, 0);
    EXPECT_ERRORS(text, want);
    snprintf(text, sizeof(text), "kind: NetworkObject\nname: %064d\nnamespace: shop\n", 0);
    policy_free(load_ok(text));
    /* Names may use letters of both cases, digits, '.', '_' and '-'. */
    policy_free(load_ok(BASE "kind: NetworkObject\nname: Web_1.a-b\nnamespace: shop\n"));
    /* Cluster ids are lower-case slugs. */
    EXPECT_ERRORS("kind: Cluster\nname: Prod\n",
                  "t.yaml:2: clusters \"Prod\": name: \"Prod\" must be 1-63 lower-case letters, "
                  "digits, '-', '_' or '.' (a cluster id)");
    EXPECT_ERRORS("kind: Cluster\nname: -prod\n",
                  "t.yaml:2: clusters \"-prod\": name: \"-prod\" must be 1-63 lower-case "
                  "letters, digits, '-', '_' or '.' (a cluster id)");
    EXPECT_ERRORS(BASE "kind: DefenseRule\ncluster: prod\nname: r 1\n" RULE_BODY,
                  "t.yaml:14: rules \"r 1\": name: \"r 1\" must be 1-64 characters of A-Z a-z "
                  "0-9 . _ -");
    EXPECT_ERRORS("kind: Workload\ncluster: prod\nnode: node 1\nname: w\nnamespace: shop\n",
                  "t.yaml:3: workloads \"w\": node: \"node 1\" must be 1-64 characters of A-Z "
                  "a-z 0-9 . _ -");
}

static void test_patterns(void **state)
{
    (void)state;
    EXPECT_ERRORS("kind: NetworkObject\nname: o\nnamespace: shop x\napp: \"a\\tb\"\n",
                  "t.yaml:3: objects \"o\": namespace: pattern \"shop x\" contains a space or "
                  "control character",
                  "t.yaml:4: objects \"o\": app: pattern \"a\tb\" contains a space or control "
                  "character");
    EXPECT_ERRORS("kind: NetworkObject\nname: o\nnamespace: [shop]\n",
                  "t.yaml:3: objects \"o\": namespace: must be a string, not a list");
    EXPECT_ERRORS("kind: NetworkObject\nname: o\nnamespace: shop\nimages: nginx\n",
                  "t.yaml:4: objects \"o\": images: must be a list, not a string");
    EXPECT_ERRORS("kind: NetworkObject\nname: o\nnamespace: shop\n"
                  "images: [\"nginx:\", \"a b\", \"team/\", [x]]\n",
                  "t.yaml:4: objects \"o\": images[0]: \"nginx:\" has an empty tag",
                  "t.yaml:4: objects \"o\": images[1]: \"a b\" contains a space or control "
                  "character",
                  "t.yaml:4: objects \"o\": images[2]: \"team/\" ends with '/'",
                  "t.yaml:4: objects \"o\": images[3]: must be an image pattern, not a list");
    struct moat_policy *p = load_ok("kind: NetworkObject\nname: o\nnamespace: \"*\"\n"
                                    "images: [nginx, \"redis:*\", \"myteam/*\"]\n");
    const struct moat_object *o = object_named(p, "o");
    assert_int_equal(o->nimages, 3);
    assert_string_equal(o->images[0], "nginx:latest");
    assert_string_equal(o->images[1], "redis:*");
    assert_string_equal(o->images[2], "myteam/*");
    assert_null(o->app);
    policy_free(p);
}

/* ---------- rules ---------- */

static void test_rule_priority(void **state)
{
    (void)state;
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: allow\n"
                            "priority: 0\n",
                  "t.yaml:18: rules \"r1\": priority: 0 is out of range 1..1000");
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: allow\n"
                            "priority: 1001\n",
                  "t.yaml:18: rules \"r1\": priority: 1001 is out of range 1..1000");
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: allow\n"
                            "priority: ten\n",
                  "t.yaml:18: rules \"r1\": priority: must be an integer 1..1000, not a string "
                  "\"ten\"");
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: allow\n"
                            "priority: -5\n",
                  "t.yaml:18: rules \"r1\": priority: must be an integer 1..1000, not a number "
                  "\"-5\"");
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: allow\n"
                            "priority: [1]\n",
                  "t.yaml:18: rules \"r1\": priority: must be an integer 1..1000, not a list");
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: allow\n"
                            "priority: 99999999999999999999999\n",
                  "t.yaml:18: rules \"r1\": priority: must be an integer 1..1000, not a number "
                  "\"99999999999999999999999\"");
    EXPECT_ERRORS_NAMED("t.json",
                        "[{\"kind\": \"Cluster\", \"name\": \"prod\"}, {\"kind\": \"DefenseRule\","
                        " \"cluster\": \"prod\", \"name\": \"r1\", \"source\": \"any\","
                        " \"destinations\": [{\"object\": \"any\"}], \"action\": \"allow\","
                        " \"priority\": 1.5}]",
                        "t.json: document 2: rules \"r1\": priority: must be an integer 1..1000, "
                        "not a number \"1.5\"");
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: allow\n"
                            "priority: ~\n",
                  "t.yaml:12: rules \"r1\": priority: required (an integer 1..1000)");
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: allow\n"
                            "priority: \"10\"\n",
                  "t.yaml:18: rules \"r1\": priority: must be an integer 1..1000, not a string "
                  "\"10\"");
    /* The edges load. */
    struct moat_policy *p = load_ok(RULE_HEAD "source: lb\ndestinations: [{object: web}]\n"
                                              "action: allow\npriority: 1\n---\n"
                                              "kind: DefenseRule\ncluster: prod\nname: r2\n"
                                              "source: lb\ndestinations: [{object: web}]\n"
                                              "action: allow\npriority: 1000\n");
    assert_int_equal(rule_named(p, "prod", "r1")->priority, 1);
    assert_int_equal(rule_named(p, "prod", "r2")->priority, 1000);
    policy_free(p);
}

static void test_rule_enums(void **state)
{
    (void)state;
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: deny\n"
                            "priority: 5\nprotocol: icmp\ntype: system\nenabled: maybe\n",
                  "t.yaml:21: rules \"r1\": enabled: must be true or false (or on/off)",
                  "t.yaml:19: rules \"r1\": protocol: \"icmp\" is not one of tcp, udp, any",
                  "t.yaml:17: rules \"r1\": action: \"deny\" is not one of block, alert, allow",
                  "t.yaml:20: rules \"r1\": type: \"system\" is not one of custom, suggested");
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: [allow]\n"
                            "priority: 5\nprotocol: on\n",
                  "t.yaml:19: rules \"r1\": protocol: must be one of tcp, udp, any, not a "
                  "boolean",
                  "t.yaml:17: rules \"r1\": action: must be one of block, alert, allow, not a "
                  "list");
    EXPECT_ERRORS("kind: Cluster\nname: prod\ndefense: enabled\nmode: dry-run\n"
                  "default_action: drop\n",
                  "t.yaml:3: clusters \"prod\": defense: must be true or false (or on/off)",
                  "t.yaml:4: clusters \"prod\": mode: \"dry-run\" is not one of protect, monitor",
                  "t.yaml:5: clusters \"prod\": default_action: \"drop\" is not one of block, "
                  "alert, allow");
    /* Every value of each enumeration. */
    static const char *const actions[] = {"block", "alert", "allow"};
    static const enum moat_action action_values[] = {MOAT_ACTION_BLOCK, MOAT_ACTION_ALERT,
                                                     MOAT_ACTION_ALLOW};
    static const char *const protos[] = {"tcp", "udp", "any"};
    static const enum moat_proto proto_values[] = {MOAT_PROTO_TCP, MOAT_PROTO_UDP, MOAT_PROTO_ANY};
    for (int i = 0; i < 3; i++) {
        char text[1024];
        snprintf(text, sizeof(text),
                 RULE_HEAD "source: lb\ndestinations: [{object: web}]\naction: %s\n"
                           "priority: 5\nprotocol: %s\nenabled: off\ntype: suggested\n",
                 actions[i], protos[i]);
        struct moat_policy *p = load_ok(text);
        const struct moat_rule *r = rule_named(p, "prod", "r1");
        assert_int_equal(r->action, action_values[i]);
        assert_int_equal(r->proto, proto_values[i]);
        assert_false(r->enabled);
        assert_int_equal(r->type, MOAT_RULE_SUGGESTED);
        policy_free(p);
    }
    /* Protocol defaults to any, enabled to true, type to custom. */
    struct moat_policy *p = load_ok(RULE_HEAD RULE_BODY);
    const struct moat_rule *r = rule_named(p, "prod", "r1");
    assert_int_equal(r->proto, MOAT_PROTO_ANY);
    assert_true(r->enabled);
    assert_int_equal(r->type, MOAT_RULE_CUSTOM);
    assert_null(r->description);
    policy_free(p);
}

/* A rule whose only destination has `ports` written as PORTS (line 18). */
#define PORTS_RULE(PORTS)                                                                          \
    RULE_HEAD "source: lb\n"                                                                       \
              "destinations:\n"                                                                    \
              "  - object: web\n"                                                                  \
              "    ports: " PORTS "\n"                                                             \
              "action: allow\n"                                                                    \
              "priority: 10\n"

static void expect_ports(const char *text, const unsigned *lohi, size_t n, bool all)
{
    struct moat_policy *p = load_ok(text);
    const struct moat_rule *r = rule_named(p, "prod", "r1");
    assert_int_equal(r->dests[0].nports, n);
    assert_int_equal(r->dests[0].all_ports, all);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r->dests[0].ports[i].lo, lohi[2 * i]);
        assert_int_equal(r->dests[0].ports[i].hi, lohi[2 * i + 1]);
    }
    policy_free(p);
}

static void test_rule_ports(void **state)
{
    (void)state;
    expect_ports(PORTS_RULE("80"), (const unsigned[]){80, 80}, 1, false);
    expect_ports(PORTS_RULE("\"20/30,80/90\""), (const unsigned[]){20, 30, 80, 90}, 2, false);
    expect_ports(PORTS_RULE("20/30, 80/90 , 443"), (const unsigned[]){20, 30, 80, 90, 443, 443}, 3,
                 false);
    expect_ports(PORTS_RULE("[\"80/80\", \"443/443\", 8080]"),
                 (const unsigned[]){80, 80, 443, 443, 8080, 8080}, 3, false);
    expect_ports(PORTS_RULE("80/90,91/100"), (const unsigned[]){80, 90, 91, 100}, 2, false);
    expect_ports(PORTS_RULE("1/65535"), (const unsigned[]){1, 65535}, 1, false);
    expect_ports(PORTS_RULE("1/10,11/20,21/30,31/40,41/50,51/60,61/70,71/80"),
                 (const unsigned[]){1, 10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61, 70, 71, 80},
                 8, false);
    /* Omitted, null or empty: every port. */
    expect_ports(PORTS_RULE("[]"), (const unsigned[]){1, 65535}, 1, true);
    expect_ports(PORTS_RULE("~"), (const unsigned[]){1, 65535}, 1, true);
    expect_ports(RULE_HEAD RULE_BODY "---\nkind: DefenseRule\ncluster: prod\nname: r2\n"
                                     "source: lb\ndestinations: [{object: web}]\n"
                                     "action: allow\npriority: 10\n",
                 (const unsigned[]){80, 80}, 1, false);
    struct moat_policy *p = load_ok(RULE_HEAD "source: lb\ndestinations: [{object: web}]\n"
                                              "action: allow\npriority: 10\n");
    assert_true(rule_named(p, "prod", "r1")->dests[0].all_ports);
    policy_free(p);
}

static void test_rule_port_errors(void **state)
{
    (void)state;
    EXPECT_ERRORS(PORTS_RULE("0/10"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: \"0/10\": ports must be in "
                  "1..65535");
    EXPECT_ERRORS(PORTS_RULE("80/80,10/0"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: \"10/0\": ports must be in "
                  "1..65535");
    EXPECT_ERRORS(PORTS_RULE("90/80"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: \"90/80\": lo 90 is greater "
                  "than hi 80");
    EXPECT_ERRORS(PORTS_RULE("65536"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: \"65536\": ports must be in "
                  "1..65535");
    EXPECT_ERRORS(PORTS_RULE("http"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: \"http\" is not a port range "
                  "(lo/hi or a single port)",
                  "t.yaml:18: rules \"r1\": destinations[0].ports: \"http\" lists no port");
    EXPECT_ERRORS(PORTS_RULE("\",\""),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: \",\" lists no port");
    EXPECT_ERRORS(PORTS_RULE("[\"80/80\", \"90/80\", abc]"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports[1]: \"90/80\": lo 90 is "
                  "greater than hi 80",
                  "t.yaml:18: rules \"r1\": destinations[0].ports[2]: \"abc\" is not a port "
                  "range (lo/hi or a single port)");
    EXPECT_ERRORS(PORTS_RULE("[80, [90], true]"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports[1]: must be a range such as "
                  "\"80/90\" or a port",
                  "t.yaml:18: rules \"r1\": destinations[0].ports[2]: must be a range such as "
                  "\"80/90\" or a port");
    EXPECT_ERRORS(PORTS_RULE("{lo: 1}"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: must be \"lo/hi,...\", a port "
                  "or a list of ranges");
    EXPECT_ERRORS(PORTS_RULE("80/90,85/100"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: ranges 80/90 and 85/100 "
                  "overlap");
    EXPECT_ERRORS(PORTS_RULE("[\"80/90\", \"85/100\", 443, 443]"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: ranges 80/90 and 85/100 "
                  "overlap",
                  "t.yaml:18: rules \"r1\": destinations[0].ports: ranges 443/443 and 443/443 "
                  "overlap");
    EXPECT_ERRORS(PORTS_RULE("1,2,3,4,5,6,7,8,9"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: 9 ranges given, at most 8 are "
                  "allowed");
    EXPECT_ERRORS(PORTS_RULE("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"),
                  "t.yaml:18: rules \"r1\": destinations[0].ports: 10 ranges given, at most 8 "
                  "are allowed");
    char text[2048];
    snprintf(text, sizeof(text), PORTS_RULE("\"80%600s,90\""), "");
    EXPECT_ERRORS(text, "t.yaml:18: rules \"r1\": destinations[0].ports: is longer than 511 "
                        "characters");
    /* The index names the destination. */
    EXPECT_ERRORS(RULE_HEAD "source: lb\n"
                            "destinations:\n"
                            "  - object: web\n"
                            "  - object: lb\n"
                            "    ports: [\"80/80\", 0]\n"
                            "action: allow\n"
                            "priority: 10\n",
                  "t.yaml:19: rules \"r1\": destinations[1].ports[1]: \"0\": ports must be in "
                  "1..65535");
}

static void test_rule_destinations(void **state)
{
    (void)state;
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: []\naction: allow\npriority: 10\n",
                  "t.yaml:16: rules \"r1\": destinations: 0 entries given, 1-8 are allowed");
    EXPECT_ERRORS(RULE_HEAD "source: lb\n"
                            "destinations: [{object: web}, {object: web}, {object: web},"
                            " {object: web}, {object: web}, {object: web}, {object: web},"
                            " {object: web}, {object: web}]\n"
                            "action: allow\npriority: 10\n",
                  "t.yaml:16: rules \"r1\": destinations: 9 entries given, 1-8 are allowed");
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: web\naction: allow\npriority: 10\n",
                  "t.yaml:16: rules \"r1\": destinations: must be a list of 1-8 entries "
                  "{object, ports}, not a string");
    EXPECT_ERRORS(RULE_HEAD "source: lb\ndestinations: [web]\naction: allow\npriority: 10\n",
                  "t.yaml:16: rules \"r1\": destinations[0]: must be a map {object, ports}, not "
                  "a string");
    EXPECT_ERRORS(RULE_HEAD "source: [lb]\ndestinations: [{object: {a: b}}, {object: \"\"}]\n"
                            "action: allow\npriority: 10\n",
                  "t.yaml:15: rules \"r1\": source: must be an object name or id",
                  "t.yaml:16: rules \"r1\": destinations[0].object: must be an object name or id",
                  "t.yaml:16: rules \"r1\": destinations[1].object: must be an object name or "
                  "id");
    /* Eight destinations, each with its ports. */
    struct moat_policy *p =
        load_ok(RULE_HEAD "source: any\n"
                          "destinations: [{object: web, ports: 1}, {object: lb, ports: 2},"
                          " {object: any, ports: 3}, {object: cluster-dns, ports: 53},"
                          " {object: web, ports: 5}, {object: lb, ports: 6}, {object: 1},"
                          " {object: \"4\", ports: 8}]\n"
                          "action: block\npriority: 10\n");
    const struct moat_rule *r = rule_named(p, "prod", "r1");
    assert_int_equal(r->ndests, 8);
    assert_int_equal(r->source, policy_find_object(p, "any"));
    assert_int_equal(r->dests[3].object, policy_find_object(p, "cluster-dns"));
    assert_int_equal(r->dests[3].ports[0].lo, 53);
    /* Objects may be named by id: 1 is `any`, 4 the first file object. */
    assert_int_equal(r->dests[6].object, policy_find_object(p, "any"));
    assert_true(r->dests[6].all_ports);
    assert_int_equal(r->dests[7].object, policy_find_object(p, "web"));
    policy_free(p);
}

static void test_rule_references(void **state)
{
    (void)state;
    EXPECT_ERRORS(RULE_HEAD "source: nobody\ndestinations: [{object: web}, {object: ghost},"
                            " {object: \"99\"}]\naction: allow\npriority: 10\n",
                  "t.yaml:15: rules \"r1\": source: no object named \"nobody\"",
                  "t.yaml:16: rules \"r1\": destinations[1].object: no object named \"ghost\"",
                  "t.yaml:16: rules \"r1\": destinations[2].object: no object named \"99\"");
    /* `host` is a source, never a destination. */
    struct moat_policy *p = load_ok(RULE_HEAD "source: host\ndestinations: [{object: web}]\n"
                                              "action: allow\npriority: 10\n");
    assert_int_equal(rule_named(p, "prod", "r1")->source, policy_find_object(p, "host"));
    policy_free(p);
    EXPECT_ERRORS(RULE_HEAD "source: web\ndestinations: [{object: web}, {object: host}]\n"
                            "action: allow\npriority: 10\n",
                  "t.yaml:16: rules \"r1\": destinations[1].object: \"host\" cannot be a "
                  "destination: rules protect traffic destined for workloads (and, with "
                  "ipblocks, leaving them)");
    /* A rule names a Cluster document; a cluster only named by a workload does not count. */
    EXPECT_ERRORS(BASE "kind: DefenseRule\ncluster: qa\nname: r1\n" RULE_BODY
                       "---\nkind: Workload\ncluster: dev\nnode: n1\nname: w\nnamespace: x\n"
                       "---\nkind: DefenseRule\ncluster: dev\nname: r2\n" RULE_BODY,
                  "t.yaml:12: rules \"r1\": cluster: no Cluster document named \"qa\"",
                  "t.yaml:28: rules \"r2\": cluster: no Cluster document named \"dev\"");
    /* Objects restricted to a cluster are usable there only. */
    static const char restricted[] = "kind: Cluster\nname: prod\n---\n"
                                     "kind: Cluster\nname: dev\n---\n"
                                     "kind: NetworkObject\nname: devweb\nnamespace: shop\n"
                                     "cluster: dev\n---\n"
                                     "kind: NetworkObject\nname: prodweb\nnamespace: shop\n"
                                     "cluster: prod\n---\n"
                                     "kind: DefenseRule\ncluster: prod\nname: r1\n"
                                     "source: devweb\n"
                                     "destinations: [{object: prodweb}, {object: devweb}]\n"
                                     "action: allow\npriority: 10\n---\n"
                                     "kind: DefenseRule\ncluster: dev\nname: r1\n"
                                     "source: devweb\ndestinations: [{object: devweb}]\n"
                                     "action: allow\npriority: 10\n";
    EXPECT_ERRORS(restricted,
                  "t.yaml:20: rules \"r1\": source: object \"devweb\" belongs to cluster \"dev\"",
                  "t.yaml:21: rules \"r1\": destinations[1].object: object \"devweb\" belongs to "
                  "cluster \"dev\"");
    EXPECT_ERRORS("kind: NetworkObject\nname: o\nnamespace: shop\ncluster: nowhere\n",
                  "t.yaml:1: objects \"o\": cluster: no Cluster document named \"nowhere\"");
}

static void test_rule_duplicates_and_ids(void **state)
{
    (void)state;
    /* Rule names are unique per cluster; the same name in another cluster is fine. */
    EXPECT_ERRORS(RULE_HEAD RULE_BODY "---\nkind: DefenseRule\ncluster: prod\nname: r1\n" RULE_BODY,
                  "t.yaml:22: rules \"r1\": name: defined twice in cluster \"prod\" (also in "
                  "t.yaml:12)");
    struct moat_policy *p =
        load_ok(RULE_HEAD RULE_BODY "---\nkind: Cluster\nname: dev\n---\n"
                                    "kind: DefenseRule\ncluster: dev\nname: r1\n" RULE_BODY);
    /* prod's system rules 1-2, dev's 3-4, then the file's rules in file order. */
    assert_int_equal(p->nrules, 6);
    assert_int_equal(rule_named(p, "prod", MOAT_SYSRULE_HOST)->id, 1);
    assert_int_equal(rule_named(p, "prod", MOAT_SYSRULE_DNS)->id, 2);
    assert_int_equal(rule_named(p, "dev", MOAT_SYSRULE_HOST)->id, 3);
    assert_int_equal(rule_named(p, "dev", MOAT_SYSRULE_DNS)->id, 4);
    assert_int_equal(rule_named(p, "prod", "r1")->id, 5);
    assert_int_equal(rule_named(p, "dev", "r1")->id, 6);
    for (size_t i = 0; i + 1 < p->nrules; i++)
        assert_true(p->rules[i].id < p->rules[i + 1].id);
    policy_free(p);

    /* An explicit id is kept and automatic ids go around it. */
    p = load_ok(RULE_HEAD RULE_BODY
                "---\nkind: DefenseRule\ncluster: prod\nname: r2\nid: 4\n" RULE_BODY
                "---\nkind: DefenseRule\ncluster: prod\nname: r3\n"
                "id: 3\n" RULE_BODY "---\nkind: DefenseRule\ncluster: prod\n"
                "name: r4\n" RULE_BODY);
    assert_int_equal(rule_named(p, "prod", "r3")->id, 3);
    assert_true(rule_named(p, "prod", "r3")->explicit_id);
    assert_int_equal(rule_named(p, "prod", "r2")->id, 4);
    assert_int_equal(rule_named(p, "prod", MOAT_SYSRULE_HOST)->id, 1);
    assert_int_equal(rule_named(p, "prod", MOAT_SYSRULE_DNS)->id, 2);
    assert_int_equal(rule_named(p, "prod", "r1")->id, 5);
    assert_int_equal(rule_named(p, "prod", "r4")->id, 6);
    assert_false(rule_named(p, "prod", "r4")->explicit_id);
    assert_string_equal(p->rules[2].name, "r3"); /* sorted by id */
    policy_free(p);

    /* System rules keep the lowest ids: explicit ids may not take them. */
    EXPECT_ERRORS(RULE_HEAD "id: 2\n" RULE_BODY,
                  "t.yaml:12: rules \"r1\": id: 2 is reserved for the system rules (ids 1..2)");

    EXPECT_ERRORS(RULE_HEAD "id: 7\n" RULE_BODY
                            "---\nkind: DefenseRule\ncluster: prod\nname: r2\nid: 7\n" RULE_BODY,
                  "t.yaml:23: rules \"r2\": id: 7 is also the id of rule \"r1\"");
    EXPECT_ERRORS(RULE_HEAD "id: 0\n" RULE_BODY,
                  "t.yaml:15: rules \"r1\": id: 0 is out of range 1..1073741823");
    EXPECT_ERRORS(RULE_HEAD "id: seven\n" RULE_BODY,
                  "t.yaml:15: rules \"r1\": id: must be an integer 1..1073741823, not a string "
                  "\"seven\"");
}

/* ---------- objects ---------- */

/* Descriptions and an object's lists have sizes a person could mean. */
static void test_size_limits(void **state)
{
    (void)state;
    size_t n = (MOAT_LIST_MAX + 1) * 12 + MOAT_DESCR_MAX + 200;
    char *text = malloc(n), *want = malloc(200);
    assert_non_null(text);
    assert_non_null(want);
    int at = snprintf(text, n, "kind: NetworkObject\nname: o\nnamespace: shop\nlabels: [");
    for (int i = 0; i < MOAT_LIST_MAX + 1; i++)
        at += snprintf(text + at, n - (size_t)at, "%sk%d=v", i ? ", " : "", i);
    at += snprintf(text + at, n - (size_t)at, "]\ndescription: \"");
    memset(text + at, 'x', MOAT_DESCR_MAX + 1);
    at += MOAT_DESCR_MAX + 1;
    snprintf(text + at, n - (size_t)at, "\"\n");
    snprintf(want, 200, "t.yaml:4: objects \"o\": labels: more than %d entries (%d)", MOAT_LIST_MAX,
             MOAT_LIST_MAX + 1);
    char want2[200];
    snprintf(want2, sizeof(want2),
             "t.yaml:5: objects \"o\": description: longer than %d bytes (%d)", MOAT_DESCR_MAX,
             MOAT_DESCR_MAX + 1);
    EXPECT_ERRORS(text, want, want2);
    free(text);
    free(want);
}

static void test_object_labels(void **state)
{
    (void)state;
    EXPECT_ERRORS("kind: NetworkObject\nname: o\nnamespace: shop\n"
                  "labels: [tier=frontend, app==x, \"app:web\", example.com/name=v, -x=1, a=b=c,"
                  " tier=backend, [x]]\n",
                  "t.yaml:4: objects \"o\": labels[1]: \"app==x\" is not key=value",
                  "t.yaml:4: objects \"o\": labels[4]: \"-x=1\": label key must start and end "
                  "with a letter or digit",
                  "t.yaml:4: objects \"o\": labels[5]: \"a=b=c\" is not key=value",
                  "t.yaml:4: objects \"o\": labels[6]: label \"tier\" is given twice",
                  "t.yaml:4: objects \"o\": labels[7]: must be a key=value string");
    char text[400], want[400];
    snprintf(text, sizeof(text),
             "kind: NetworkObject\nname: o\nnamespace: shop\nlabels: [%064d=1]\n", 0);
    snprintf(want, sizeof(want),
             "t.yaml:4: objects \"o\": labels[0]: \"%064d=1\": label key name part is longer "
             "than 63 characters",
             0);
    EXPECT_ERRORS(text, want);
    EXPECT_ERRORS("kind: NetworkObject\nname: o\nnamespace: shop\nlabels: app=web\n",
                  "t.yaml:4: objects \"o\": labels: must be a list of key=value or a map");
    /* The map form, as workloads write it, is accepted for objects too. */
    EXPECT_ERRORS("kind: NetworkObject\nname: o\nnamespace: shop\n"
                  "labels: {app: -web, \"a b\": x, tier: [x]}\n",
                  "t.yaml:4: objects \"o\": labels.app: label value must start and end with a "
                  "letter or digit",
                  "t.yaml:4: objects \"o\": labels.a b: label key may only contain letters, "
                  "digits, '-', '_' and '.'",
                  "t.yaml:4: objects \"o\": labels.tier: label value must be a string");

    struct moat_policy *p = load_ok("kind: NetworkObject\nname: o\nnamespace: shop\n"
                                    "labels: [\"app:web\", example.com/name=v, empty=, n=1]\n"
                                    "---\n"
                                    "kind: NetworkObject\nname: m\nnamespace: shop\n"
                                    "labels: {app: web, version: 1, debug: \"\"}\n");
    const struct moat_object *o = object_named(p, "o");
    assert_int_equal(o->nlabels, 4);
    assert_string_equal(o->labels[0].key, "app");
    assert_string_equal(o->labels[0].value, "web");
    assert_string_equal(o->labels[1].key, "example.com/name");
    assert_string_equal(o->labels[2].value, "");
    assert_string_equal(labels_get(o->labels, o->nlabels, "n"), "1");
    const struct moat_object *m = object_named(p, "m");
    assert_int_equal(m->nlabels, 3);
    assert_string_equal(labels_get(m->labels, m->nlabels, "version"), "1");
    policy_free(p);
}

static void test_ipblocks(void **state)
{
    (void)state;
    struct moat_policy *p =
        load_ok("kind: NetworkObject\nname: net\n"
                "cidrs:\n"
                "  - 10.0.0.0/8\n"
                "  - {cidr: 192.168.0.0/16, except: [192.168.1.0/24, 192.168.2.128/25]}\n"
                "  - 2001:db8::/32\n"
                "  - 198.51.100.7\n"
                "description: outside\n");
    const struct moat_object *o = object_named(p, "net");
    assert_int_equal(o->kind, MOAT_OBJ_IPBLOCK);
    assert_int_equal(o->ncidrs, 4);
    assert_int_equal(o->cidrs[1].nexcept, 2);
    assert_int_equal(o->cidrs[3].prefix.len, 128);
    assert_string_equal(o->description, "outside");
    static const char *const in[] = {"10.1.2.3", "192.168.0.1", "192.168.2.127", "2001:db8::5",
                                     "198.51.100.7"};
    static const char *const out[] = {"11.0.0.1",    "192.168.1.1",  "192.168.2.200",
                                      "2001:db9::1", "198.51.100.8", "::a01:203"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct moat_addr a = addr(in[i]);
        if (!object_covers_address(o, &a))
            fail_msg("%s should be covered", in[i]);
    }
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
        struct moat_addr a = addr(out[i]);
        if (object_covers_address(o, &a))
            fail_msg("%s should not be covered", out[i]);
    }
    /* An ipblock never picks workloads; a selector never covers addresses. */
    struct moat_workload w = {.name = "w", .namespace = "shop"};
    assert_false(object_matches_workload(o, &w, "prod"));
    struct moat_addr a = addr("10.1.2.3");
    assert_false(object_covers_address(object_named(p, "any"), &a));
    assert_false(object_covers_address(object_named(p, "cluster-dns"), &a));
    policy_free(p);

    /* IPv6 prefixes never hold IPv4 addresses, even ::/0. */
    p = load_ok("kind: NetworkObject\nname: v6\ncidrs: [\"::/0\"]\n---\n"
                "kind: NetworkObject\nname: v4\ncidrs: [0.0.0.0/0]\n");
    struct moat_addr a4 = addr("8.8.8.8"), a6 = addr("2606:4700::1");
    assert_false(object_covers_address(object_named(p, "v6"), &a4));
    assert_true(object_covers_address(object_named(p, "v6"), &a6));
    assert_true(object_covers_address(object_named(p, "v4"), &a4));
    assert_false(object_covers_address(object_named(p, "v4"), &a6));
    policy_free(p);
}

static void test_ipblock_errors(void **state)
{
    (void)state;
    EXPECT_ERRORS("kind: NetworkObject\nname: o\nnamespace: shop\nlabels: [a=b]\n"
                  "cidrs: [10.0.0.0/8]\n",
                  "t.yaml:3: objects \"o\": namespace: an ipblock object (cidrs) cannot also "
                  "select workloads",
                  "t.yaml:4: objects \"o\": labels: an ipblock object (cidrs) cannot also select "
                  "workloads");
    EXPECT_ERRORS("kind: NetworkObject\nname: o\n"
                  "cidrs: [10.0.0.0/33, 10.0.0.1/8, not-an-ip, \"2001:db8::/129\", [1]]\n",
                  "t.yaml:3: objects \"o\": cidrs[0]: \"10.0.0.0/33\" has an invalid prefix "
                  "length",
                  "t.yaml:3: objects \"o\": cidrs[1]: \"10.0.0.1/8\" has host bits set",
                  "t.yaml:3: objects \"o\": cidrs[2]: \"not-an-ip\" is not an IP address or "
                  "prefix",
                  "t.yaml:3: objects \"o\": cidrs[3]: \"2001:db8::/129\" has an invalid prefix "
                  "length",
                  "t.yaml:3: objects \"o\": cidrs[4]: must be a prefix such as 203.0.113.0/24, "
                  "not a list");
    EXPECT_ERRORS("kind: NetworkObject\nname: o\n"
                  "cidrs:\n"
                  "  - cidr: 10.0.0.0/16\n"
                  "    except: [10.1.0.0/24, 10.0.0.0/16, 10.0.1.0/24, 10.0.0.0/8, bad]\n"
                  "  - {cidr: 2001:db8::/32, except: [10.0.0.0/24]}\n"
                  "  - {except: [10.0.0.0/24]}\n"
                  "  - {cidr: 10.0.0.0/8, except: 10.1.0.0/16}\n",
                  "t.yaml:5: objects \"o\": cidrs[0].except[0]: \"10.1.0.0/24\" is not inside "
                  "10.0.0.0/16",
                  "t.yaml:5: objects \"o\": cidrs[0].except[1]: \"10.0.0.0/16\" is not inside "
                  "10.0.0.0/16",
                  "t.yaml:5: objects \"o\": cidrs[0].except[3]: \"10.0.0.0/8\" is not inside "
                  "10.0.0.0/16",
                  "t.yaml:5: objects \"o\": cidrs[0].except[4]: \"bad\" is not an IP address or "
                  "prefix",
                  "t.yaml:6: objects \"o\": cidrs[1].except[0]: \"10.0.0.0/24\" is not inside "
                  "2001:db8::/32",
                  "t.yaml:7: objects \"o\": cidrs[2].cidr: required (a prefix such as "
                  "203.0.113.0/24)",
                  "t.yaml:8: objects \"o\": cidrs[3].except: must be a list of prefixes, not a "
                  "string");
    EXPECT_ERRORS("kind: NetworkObject\nname: o\ncidrs: []\n---\n"
                  "kind: NetworkObject\nname: p\ncidrs: ~\n---\n"
                  "kind: NetworkObject\nname: q\ncidrs: 10.0.0.0/8\n",
                  "t.yaml:3: objects \"o\": cidrs: must list at least one prefix",
                  "t.yaml:7: objects \"p\": cidrs: must list at least one prefix",
                  "t.yaml:11: objects \"q\": cidrs: must be a list, not a string");
}

static void test_object_duplicates_and_builtins(void **state)
{
    (void)state;
    EXPECT_ERRORS(BASE "kind: NetworkObject\nname: web\nnamespace: other\n",
                  "t.yaml:12: objects \"web\": name: defined twice (also in t.yaml:4)");
    EXPECT_ERRORS("kind: Cluster\nname: prod\n---\nkind: Cluster\nname: prod\ndefense: on\n",
                  "t.yaml:4: clusters \"prod\": name: defined twice (also in t.yaml:1)");
    EXPECT_ERRORS("kind: NetworkObject\nname: any\nnamespace: shop\n---\n"
                  "kind: NetworkObject\nname: host\ncidrs: [10.0.0.0/8]\n",
                  "t.yaml:2: objects \"any\": name: \"any\" is a built-in object and cannot be "
                  "redefined",
                  "t.yaml:6: objects \"host\": name: \"host\" is a built-in object and cannot be "
                  "redefined");
    /* cluster-dns is editable: the system DNS rule then uses the file's object. */
    struct moat_policy *p = load_ok("kind: Cluster\nname: prod\n---\n"
                                    "kind: NetworkObject\nname: cluster-dns\n"
                                    "namespace: dns\nlabels: [app=coredns]\n");
    const struct moat_object *dns = object_named(p, "cluster-dns");
    assert_false(dns->builtin);
    assert_string_equal(dns->namespace, "dns");
    assert_int_equal(dns->id, 3);
    const struct moat_rule *r = rule_named(p, "prod", MOAT_SYSRULE_DNS);
    assert_int_equal(r->dests[0].object, policy_find_object(p, "cluster-dns"));
    size_t count = 0;
    for (size_t i = 0; i < p->nobjects; i++)
        count += strcmp(p->objects[i].name, "cluster-dns") == 0;
    assert_int_equal(count, 1);
    policy_free(p);

    /* Object ids: explicit ids kept, built-ins and the rest go around them. */
    p = load_ok("kind: NetworkObject\nname: a\nnamespace: x\nid: 2\n---\n"
                "kind: NetworkObject\nname: b\nnamespace: x\n---\n"
                "kind: NetworkObject\nname: c\nnamespace: x\nid: 100\n");
    assert_int_equal(object_named(p, "any")->id, 1);
    assert_int_equal(object_named(p, "a")->id, 2);
    assert_true(object_named(p, "a")->explicit_id);
    assert_int_equal(object_named(p, "host")->id, 3);
    assert_int_equal(object_named(p, "cluster-dns")->id, 4);
    assert_int_equal(object_named(p, "b")->id, 5);
    assert_int_equal(object_named(p, "c")->id, 100);
    policy_free(p);
    EXPECT_ERRORS("kind: NetworkObject\nname: a\nnamespace: x\nid: 9\n---\n"
                  "kind: NetworkObject\nname: b\nnamespace: x\nid: 9\n",
                  "t.yaml:6: objects \"b\": id: 9 is also the id of object \"a\"");
}

/* ---------- workloads and nodes ---------- */

#define WL(NAME, IPS)                                                                              \
    "kind: Workload\ncluster: prod\nnode: n1\nname: " NAME "\nnamespace: shop\nips: " IPS "\n"

static int collect_resolver(void *arg, const struct moat_addr *a)
{
    char(*out)[8][64] = arg;
    for (int i = 0; i < 8; i++)
        if (!(*out)[i][0]) {
            addr_format(a, (*out)[i], sizeof((*out)[i]));
            return 0;
        }
    return -1;
}

/* Approved resolvers: named ones win; else the workloads `cluster-dns` picks, of that cluster. */
static void test_cluster_resolvers(void **state)
{
    (void)state;
    const char *wls = "---\nkind: Workload\ncluster: prod\nnode: n1\nname: coredns\n"
                      "namespace: kube-system\nlabels: {k8s-app: kube-dns}\n"
                      "ips: [10.0.0.53, \"fd00::53\"]\n"
                      "---\nkind: Workload\ncluster: prod\nnode: n1\nname: web\n"
                      "namespace: shop\nips: [10.0.0.7]\n"
                      "---\nkind: Workload\ncluster: dev\nnode: n2\nname: coredns\n"
                      "namespace: kube-system\nlabels: {k8s-app: kube-dns}\nips: [10.1.0.53]\n";
    char text[2048];
    snprintf(text, sizeof(text), "kind: Cluster\nname: prod\n%s", wls);
    struct moat_policy *p = load_ok(text);
    char got[8][64] = {{0}};
    assert_int_equal(cluster_resolvers(p, policy_find_cluster(p, "prod"), collect_resolver, &got),
                     0);
    assert_string_equal(got[0], "10.0.0.53");
    assert_string_equal(got[1], "fd00::53");
    assert_string_equal(got[2], "");
    policy_free(p);

    snprintf(text, sizeof(text),
             "kind: Cluster\nname: prod\ndetections:\n  dns_hijack: {resolvers: [10.96.0.10]}\n%s",
             wls);
    p = load_ok(text);
    memset(got, 0, sizeof(got));
    assert_int_equal(cluster_resolvers(p, policy_find_cluster(p, "prod"), collect_resolver, &got),
                     0);
    assert_string_equal(got[0], "10.96.0.10");
    assert_string_equal(got[1], "");
    policy_free(p);
}

static void test_workloads(void **state)
{
    (void)state;
    struct moat_policy *p = load_ok(WL("a", "[10.0.0.1, \"2001:db8::1\"]") "---\n" WL(
        "b", "[10.0.0.2]") "---\n"
                           "kind: Workload\ncluster: prod\nnode: n1\nname: a\n"
                           "namespace: other\nips: [10.0.0.3]\n---\n"
                           "kind: Workload\ncluster: prod\nnode: n2\nname: c\n"
                           "namespace: shop\n---\n"
                           "kind: Node\nname: n1\ncluster: prod\nips: [192.168.0.1]\n");
    /* A cluster named only by workloads is made up with the defaults. */
    assert_int_equal(p->nclusters, 1);
    assert_true(p->clusters[0].implicit);
    assert_false(p->clusters[0].defense);
    assert_int_equal(p->nworkloads, 4);
    assert_int_equal(workload_named(p, "a")->naddrs, 2);
    const struct moat_workload *c = workload_named(p, "c");
    assert_int_equal(c->naddrs, 0);
    assert_null(c->image);
    assert_null(c->forms);
    assert_null(c->interface);
    assert_int_equal(p->nnodes, 1);
    assert_int_equal(p->nodes[0].naddrs, 1);
    assert_string_equal(p->nodes[0].cluster_ref, "prod");
    /* System rules for the implicit cluster too. */
    assert_int_equal(p->nrules, 2);
    policy_free(p);
}

static void test_workload_errors(void **state)
{
    (void)state;
    EXPECT_ERRORS(WL("a", "[10.0.0.1, 10.0.0.300, 10.0.0.1, \"::1::\", [x], 10.0.0.0/24]"),
                  "t.yaml:6: workloads \"a\": ips[1]: \"10.0.0.300\" is not an IP address",
                  "t.yaml:6: workloads \"a\": ips[2]: 10.0.0.1 is listed twice",
                  "t.yaml:6: workloads \"a\": ips[3]: \"::1::\" is not an IP address",
                  "t.yaml:6: workloads \"a\": ips[4]: must be an IP address, not a list",
                  "t.yaml:6: workloads \"a\": ips[5]: \"10.0.0.0/24\" is not an IP address");
    EXPECT_ERRORS(WL("a", "10.0.0.1"),
                  "t.yaml:6: workloads \"a\": ips: must be a list, not a string");
    /* Workload addresses are unique, across namespaces and clusters too. */
    EXPECT_ERRORS(
        WL("a", "[10.0.0.1, \"2001:db8::1\"]") "---\n" WL(
            "b", "[10.0.0.2]") "---\n"
                               "kind: Workload\ncluster: dev\nnode: n1\nname: c\nnamespace: x\n"
                               "ips: [10.0.0.2, \"2001:DB8::1\"]\n",
        "t.yaml:15: workloads \"c\": ips[0]: 10.0.0.2 is also an address of workload "
        "\"b\"",
        "t.yaml:15: workloads \"c\": ips[1]: 2001:db8::1 is also an address of "
        "workload \"a\"");
    EXPECT_ERRORS(WL("a", "[10.0.0.1]") "---\n" WL("a", "[10.0.0.2]"),
                  "t.yaml:8: workloads \"a\": name: defined twice in prod/shop (also in "
                  "t.yaml:1)");
    /* Three of a kind: each later one names the first. */
    EXPECT_ERRORS(WL("a", "[10.0.0.1]") "---\n" WL("b", "[10.0.0.1]") "---\n" WL("a", "[10.0.0.1]"),
                  "t.yaml:8: workloads \"b\": ips[0]: 10.0.0.1 is also an address of workload "
                  "\"a\"",
                  "t.yaml:15: workloads \"a\": name: defined twice in prod/shop (also in "
                  "t.yaml:1)",
                  "t.yaml:15: workloads \"a\": ips[0]: 10.0.0.1 is also an address of workload "
                  "\"a\"");
    EXPECT_ERRORS("kind: Workload\ncluster: prod\nnode: n1\nname: a\nnamespace: shop\n"
                  "interface: lxc-0123456789abc\n---\n"
                  "kind: Workload\ncluster: prod\nnode: n1\nname: b\nnamespace: shop\n"
                  "interface: eth0/1\n---\n"
                  "kind: Workload\ncluster: prod\nnode: n1\nname: c\nnamespace: shop\n"
                  "interface: \"veth 1\"\n",
                  "t.yaml:6: workloads \"a\": interface: \"lxc-0123456789abc\" is not an "
                  "interface name (1-15 characters, no '/', ':' or spaces)",
                  "t.yaml:13: workloads \"b\": interface: \"eth0/1\" is not an interface name "
                  "(1-15 characters, no '/', ':' or spaces)",
                  "t.yaml:20: workloads \"c\": interface: \"veth 1\" is not an interface name "
                  "(1-15 characters, no '/', ':' or spaces)");
    EXPECT_ERRORS("kind: Workload\ncluster: prod\nnode: n1\nname: a\nnamespace: shop\n"
                  "image: \"nginx:\"\nlabels: {app: \"x y\"}\n",
                  "t.yaml:6: workloads \"a\": image: \"nginx:\" is not an image reference",
                  "t.yaml:7: workloads \"a\": labels.app: label value may only contain letters, "
                  "digits, '-', '_' and '.'");
    policy_free(load_ok("kind: Workload\ncluster: prod\nnode: n1\nname: a\nnamespace: shop\n"
                        "interface: lxc-0123456789a\n"));
    /* A node's address may not be a workload's. */
    EXPECT_ERRORS(WL("a", "[10.0.0.1]") "---\nkind: Node\nname: n1\nips: [10.0.0.1]\n---\n"
                                        "kind: Node\nname: n1\n",
                  "t.yaml:8: nodes \"n1\": ips[0]: 10.0.0.1 is also an address of workload "
                  "\"a\"",
                  "t.yaml:12: nodes \"n1\": name: defined twice (also in t.yaml:8)");
}

/* ---------- detections ---------- */

static void test_detection_errors(void **state)
{
    (void)state;
    EXPECT_ERRORS("kind: Cluster\nname: prod\n"
                  "detections:\n"
                  "  brute_force: {enabled: maybe, action: allow, threshold: x, window: 0,"
                  " ports: [22, 0, http]}\n"
                  "  port_scan: {quarantine: -1, threshold: 70000}\n"
                  "  dns_hijack: {resolvers: [10.96.0.10, dns.local], action: [block]}\n"
                  "  spoofing: on\n"
                  "  threat_intel: {file: [a], enabled: 1}\n",
                  "t.yaml:4: clusters \"prod\": detections.brute_force.enabled: must be true or "
                  "false (or on/off)",
                  "t.yaml:4: clusters \"prod\": detections.brute_force.action: \"allow\" is not "
                  "one of alert, block",
                  "t.yaml:4: clusters \"prod\": detections.brute_force.threshold: must be an "
                  "integer 1..1000000, not a string \"x\"",
                  "t.yaml:4: clusters \"prod\": detections.brute_force.window: 0 is out of range "
                  "1..86400",
                  "t.yaml:4: clusters \"prod\": detections.brute_force.ports[1]: \"0\" is not a "
                  "port 1..65535",
                  "t.yaml:4: clusters \"prod\": detections.brute_force.ports[2]: \"http\" is not "
                  "a port 1..65535",
                  "t.yaml:5: clusters \"prod\": detections.port_scan.threshold: 70000 is out of "
                  "range 1..65535",
                  "t.yaml:5: clusters \"prod\": detections.port_scan.quarantine: must be an "
                  "integer 0..2592000, not a number \"-1\"",
                  "t.yaml:6: clusters \"prod\": detections.dns_hijack.action: must be one of "
                  "alert, block, not a list",
                  "t.yaml:6: clusters \"prod\": detections.dns_hijack.resolvers[1]: \"dns.local\" "
                  "is not an IP address",
                  "t.yaml:7: clusters \"prod\": detections.spoofing: must be a map, not a boolean",
                  "t.yaml:8: clusters \"prod\": detections.threat_intel.enabled: must be true or "
                  "false (or on/off)",
                  "t.yaml:8: clusters \"prod\": detections.threat_intel.file: must be a string, "
                  "not a list");
    EXPECT_ERRORS("kind: Cluster\nname: prod\ndetections: [brute_force]\n",
                  "t.yaml:3: clusters \"prod\": detections: must be a map, not a list");
    EXPECT_ERRORS("kind: Cluster\nname: prod\ndetections:\n  brute_force:\n    ports: 22\n",
                  "t.yaml:5: clusters \"prod\": detections.brute_force.ports: must be a list, not "
                  "a number");
    /* Too many ports or resolvers. */
    char text[1024] = "kind: Cluster\nname: prod\ndetections:\n  brute_force: {ports: [";
    for (int i = 1; i <= 33; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%d", i > 1 ? ", " : "", i);
    snprintf(text + strlen(text), sizeof(text) - strlen(text), "]}\n");
    EXPECT_ERRORS(text, "t.yaml:4: clusters \"prod\": detections.brute_force.ports: 33 ports "
                        "given, at most 32 are allowed");
}

/* ---------- every error at once, nothing partial ---------- */

static void test_every_error_reported(void **state)
{
    (void)state;
    /* Five distinct problems in five documents: five messages, no policy. */
    EXPECT_ERRORS("kind: Cluster\nname: prod\nmode: fast\n---\n"
                  "kind: NetworkObject\nname: web\nnamespace: shop\nlabels: [app==x]\n---\n"
                  "kind: NetworkObject\nname: office\ncidrs: [10.0.0.1/8]\n---\n"
                  "kind: DefenseRule\ncluster: prod\nname: r1\nsource: any\n"
                  "destinations: [{object: web, ports: \"80/90,85/100\"}]\naction: allow\n"
                  "priority: 10\n---\n"
                  "kind: Workload\ncluster: prod\nnode: n1\nname: w\nnamespace: shop\n"
                  "ips: [10.0.0.x]\n",
                  "t.yaml:3: clusters \"prod\": mode: \"fast\" is not one of protect, monitor",
                  "t.yaml:8: objects \"web\": labels[0]: \"app==x\" is not key=value",
                  "t.yaml:12: objects \"office\": cidrs[0]: \"10.0.0.1/8\" has host bits set",
                  "t.yaml:18: rules \"r1\": destinations[0].ports: ranges 80/90 and 85/100 "
                  "overlap",
                  "t.yaml:27: workloads \"w\": ips[0]: \"10.0.0.x\" is not an IP address");

    /* Problems across documents are reported beside problems inside them; references
     * to a document that was rejected are not reported again. */
    EXPECT_ERRORS(BASE "kind: NetworkObject\nname: broken\nnamespace: \"a b\"\n---\n"
                       "kind: Cluster\nname: dev\ndefense: maybe\n---\n"
                       "kind: DefenseRule\ncluster: prod\nname: r1\nsource: broken\n"
                       "destinations: [{object: ghost}]\naction: allow\npriority: 10\n---\n"
                       "kind: DefenseRule\ncluster: dev\nname: r2\nsource: any\n"
                       "destinations: [{object: broken}]\naction: allow\npriority: 10\n---\n"
                       "kind: NetworkObject\nname: web\nnamespace: x\n",
                  "t.yaml:14: objects \"broken\": namespace: pattern \"a b\" contains a space "
                  "or control character",
                  "t.yaml:18: clusters \"dev\": defense: must be true or false (or on/off)",
                  "t.yaml:36: objects \"web\": name: defined twice (also in t.yaml:4)",
                  "t.yaml:24: rules \"r1\": destinations[0].object: no object named \"ghost\"");

    /* Nothing partial from files either: one bad file spoils the set. */
    const char *paths[2];
    char p0[512];
    snprintf(p0, sizeof(p0), "%s", testutil_write_file("good.yaml", BASE));
    paths[0] = p0;
    paths[1] = testutil_write_file("bad.yaml", "kind: DefenseRule\ncluster: prod\nname: r1\n"
                                               "source: lb\ndestinations: [{object: web}]\n"
                                               "action: allow\npriority: 1001\n");
    struct moat_policy *p = (struct moat_policy *)&diags;
    diags_clear(&diags);
    assert_int_equal(policy_load_files(&p, paths, 2, &diags), -EINVAL);
    assert_null(p);
    assert_int_equal(diags.count, 1);
    char want[600];
    snprintf(want, sizeof(want), "%s:7: rules \"r1\": priority: 1001 is out of range 1..1000",
             paths[1]);
    assert_string_equal(diags.items[0].text, want);
}

static void test_files(void **state)
{
    (void)state;
    /* Several files are one policy: a rule in one names objects in another. */
    char p0[512], p1[512];
    snprintf(p0, sizeof(p0), "%s", testutil_write_file("objects.yaml", BASE));
    snprintf(p1, sizeof(p1), "%s",
             testutil_write_file("rules.json",
                                 "{\"kind\": \"DefenseRule\", \"cluster\": \"prod\", \"name\": "
                                 "\"r1\", \"source\": \"lb\", \"destinations\": [{\"object\": "
                                 "\"web\"}], \"action\": \"allow\", \"priority\": 7}"));
    const char *paths[3] = {p0, p1, NULL};
    struct moat_policy *p = NULL;
    diags_clear(&diags);
    assert_int_equal(policy_load_files(&p, paths, 2, &diags), 0);
    assert_int_equal(diags.count, 0);
    assert_int_equal(p->nfiles, 2);
    const struct moat_rule *r = rule_named(p, "prod", "r1");
    assert_int_equal(r->id, 3);
    assert_string_equal(r->at.file, p1);
    assert_int_equal(r->dests[0].object, policy_find_object(p, "web"));
    policy_free(p);

    /* A file that cannot be read or parsed: its error only, no noise from the others. */
    paths[2] = "/nonexistent/policy.yaml";
    char p2[512];
    snprintf(p2, sizeof(p2), "%s", testutil_write_file("broken.yaml", "kind: [\n"));
    const char *bad[3] = {p1, p2, "/nonexistent/policy.yaml"};
    diags_clear(&diags);
    p = (struct moat_policy *)&diags;
    assert_int_equal(policy_load_files(&p, bad, 3, &diags), -EINVAL);
    assert_null(p);
    assert_int_equal(diags.count, 2);
    char want[600];
    snprintf(want, sizeof(want),
             "%s:2: YAML: did not find expected node content while parsing a "
             "flow node",
             p2);
    assert_string_equal(diags.items[0].text, want);
    assert_string_equal(diags.items[1].text,
                        "/nonexistent/policy.yaml: cannot open: No such file or directory");
}

/* ---------- system rules ---------- */

static void test_system_rules(void **state)
{
    (void)state;
    struct moat_policy *p = load_ok("kind: Cluster\nname: prod\n");
    assert_int_equal(p->nrules, 2);
    const struct moat_rule *h = rule_named(p, "prod", MOAT_SYSRULE_HOST);
    assert_int_equal(h->type, MOAT_RULE_SYSTEM);
    assert_true(h->enabled);
    assert_int_equal(h->priority, 1000);
    assert_int_equal(h->action, MOAT_ACTION_ALLOW);
    assert_int_equal(h->proto, MOAT_PROTO_ANY);
    assert_int_equal(h->source, policy_find_object(p, "host"));
    assert_int_equal(h->ndests, 1);
    assert_int_equal(h->dests[0].object, policy_find_object(p, "any"));
    assert_true(h->dests[0].all_ports);
    const struct moat_rule *d = rule_named(p, "prod", MOAT_SYSRULE_DNS);
    assert_int_equal(d->type, MOAT_RULE_SYSTEM);
    assert_int_equal(d->priority, 1000);
    assert_int_equal(d->proto, MOAT_PROTO_ANY);
    assert_int_equal(d->source, policy_find_object(p, "any"));
    assert_int_equal(d->dests[0].object, policy_find_object(p, "cluster-dns"));
    assert_int_equal(d->dests[0].nports, 1);
    assert_int_equal(d->dests[0].ports[0].lo, 53);
    assert_int_equal(d->dests[0].ports[0].hi, 53);
    assert_false(d->dests[0].all_ports);
    policy_free(p);

    /* A document naming a system rule may switch it off (and describe it). */
    p = load_ok("kind: Cluster\nname: prod\n---\nkind: Cluster\nname: dev\n---\n"
                "kind: DefenseRule\ncluster: prod\nname: allow-host\nenabled: false\n"
                "type: system\ndescription: health checks go through the LB\n");
    assert_int_equal(p->nrules, 4);
    assert_false(rule_named(p, "prod", MOAT_SYSRULE_HOST)->enabled);
    assert_string_equal(rule_named(p, "prod", MOAT_SYSRULE_HOST)->description,
                        "health checks go through the LB");
    assert_int_equal(rule_named(p, "prod", MOAT_SYSRULE_HOST)->id, 1);
    assert_true(rule_named(p, "prod", MOAT_SYSRULE_DNS)->enabled);
    assert_true(rule_named(p, "dev", MOAT_SYSRULE_HOST)->enabled);
    policy_free(p);

    /* ...but change nothing else. */
    EXPECT_ERRORS("kind: Cluster\nname: prod\n---\n"
                  "kind: DefenseRule\ncluster: prod\nname: allow-cluster-dns\nenabled: off\n"
                  "priority: 5\naction: block\ntype: custom\nid: 9\n",
                  "t.yaml:8: rules \"allow-cluster-dns\": priority: \"allow-cluster-dns\" is a "
                  "system rule: only enabled and description can be changed",
                  "t.yaml:9: rules \"allow-cluster-dns\": action: \"allow-cluster-dns\" is a "
                  "system rule: only enabled and description can be changed",
                  "t.yaml:11: rules \"allow-cluster-dns\": id: \"allow-cluster-dns\" is a "
                  "system rule: only enabled and description can be changed",
                  "t.yaml:10: rules \"allow-cluster-dns\": type: a system rule's type is system");
    EXPECT_ERRORS("kind: DefenseRule\ncluster: qa\nname: allow-host\nenabled: off\n",
                  "t.yaml:1: rules \"allow-host\": cluster: no Cluster document named \"qa\"");
    EXPECT_ERRORS("kind: Cluster\nname: prod\n---\n"
                  "kind: DefenseRule\ncluster: prod\nname: allow-host\nenabled: off\n---\n"
                  "kind: DefenseRule\ncluster: prod\nname: allow-host\nenabled: on\n",
                  "t.yaml:9: rules \"allow-host\": name: defined twice in cluster \"prod\" (also "
                  "in t.yaml:4)");
}

/* ---------- JSON ---------- */

static void test_json_errors(void **state)
{
    (void)state;
    EXPECT_ERRORS_NAMED(
        "p.json",
        "[{\"kind\": \"Cluster\", \"name\": \"prod\"},\n"
        " {\"kind\": \"NetworkObject\", \"name\": \"web\", \"namespace\": \"shop\","
        "  \"labels\": [\"app==x\"]},\n"
        " {\"kind\": \"NetworkObject\", \"name\": \"lb\", \"namespace\": \"x\"},\n"
        " {\"kind\": \"NetworkObject\", \"name\": \"lb\", \"namespace\": \"y\"},\n"
        " {\"kind\": \"DefenseRule\", \"cluster\": \"prod\", \"name\": \"r1\", \"source\": \"lb\","
        "  \"destinations\": [{\"object\": \"nope\", \"ports\": \"80/90,85/100\"}],"
        "  \"action\": \"allow\", \"priority\": \"high\"},\n"
        " {\"kind\": \"Widget\"}]\n",
        "p.json: document 2: objects \"web\": labels[0]: \"app==x\" is not key=value",
        "p.json: document 5: rules \"r1\": destinations[0].ports: ranges 80/90 and 85/100 overlap",
        "p.json: document 5: rules \"r1\": priority: must be an integer 1..1000, not a string "
        "\"high\"",
        "p.json: document 6: kind: \"Widget\" is not one of Cluster, NetworkObject, DefenseRule, "
        "Workload, Node",
        "p.json: document 4: objects \"lb\": name: defined twice (also in p.json document 3)");
    EXPECT_ERRORS_NAMED(
        "p.json",
        "[{\"kind\": \"Cluster\", \"name\": \"prod\"},\n"
        " {\"kind\": \"DefenseRule\", \"cluster\": \"prod\", \"name\": \"r1\", \"source\": \"lb\","
        "  \"destinations\": [{\"object\": \"any\"}], \"action\": \"allow\", \"priority\": 3}]\n",
        "p.json: document 2: rules \"r1\": source: no object named \"lb\"");
    /* JSON booleans and strings for the switches. */
    struct moat_policy *p =
        load_ok_named("[{\"kind\": \"Cluster\", \"name\": \"prod\", \"defense\": true},"
                      " {\"kind\": \"Cluster\", \"name\": \"dev\", \"defense\": \"off\"}]",
                      "c.json");
    assert_true(p->clusters[0].defense);
    assert_false(p->clusters[1].defense);
    policy_free(p);
}

/* ---------- matching objects and workloads ---------- */

static const char match_policy[] =
    "kind: Cluster\nname: prod\n---\n"
    "kind: Cluster\nname: dev\n---\n"
    "kind: NetworkObject\nname: shop-all\nnamespace: shop\n---\n"
    "kind: NetworkObject\nname: shop-star\nnamespace: \"shop*\"\n---\n"
    "kind: NetworkObject\nname: every-ns\nnamespace: \"*\"\n---\n"
    "kind: NetworkObject\nname: web-app\nnamespace: \"*\"\napp: \"web*\"\n---\n"
    "kind: NetworkObject\nname: any-app\nnamespace: \"*\"\napp: \"*\"\n---\n"
    "kind: NetworkObject\nname: front\nnamespace: shop\nlabels: [tier=frontend, env=prod]\n---\n"
    "kind: NetworkObject\nname: images\nnamespace: \"*\"\n"
    "images: [\"nginx:1.27\", \"myteam/api:*\"]\n---\n"
    "kind: NetworkObject\nname: all-fields\nnamespace: shop\napp: web\n"
    "images: [\"nginx:*\"]\nlabels: [tier=frontend]\n---\n"
    "kind: NetworkObject\nname: prod-only\nnamespace: \"*\"\ncluster: prod\n---\n"
    "kind: NetworkObject\nname: empty-label\nnamespace: \"*\"\nlabels: [\"debug=\"]\n---\n"
    "kind: Workload\ncluster: prod\nnode: n1\nname: web-1\nnamespace: shop\n"
    "image: docker.io/library/nginx:1.27\n"
    "labels: {app: web-frontend, tier: frontend, env: prod}\n---\n"
    "kind: Workload\ncluster: prod\nnode: n1\nname: api-1\nnamespace: shop-api\n"
    "image: registry.example.com/myteam/api:2.1\nlabels: {app: api, tier: backend, debug: \"\"}\n"
    "---\n"
    "kind: Workload\ncluster: prod\nnode: n1\nname: bare\nnamespace: tools\n---\n"
    "kind: Workload\ncluster: dev\nnode: n2\nname: web-dev\nnamespace: shop\n"
    "image: nginx:1.26\nlabels: {app: web, tier: frontend}\n";

static void expect_match(const struct moat_policy *p, const char *object, const char *workload,
                         bool want)
{
    const struct moat_workload *w = workload_named(p, workload);
    const char *cluster = p->clusters[w->cluster].name;
    if (object_matches_workload(object_named(p, object), w, cluster) != want)
        fail_msg("object %s vs workload %s: expected %s", object, workload,
                 want ? "match" : "no match");
}

static void test_object_matching(void **state)
{
    (void)state;
    struct moat_policy *p = load_ok(match_policy);
    /* namespace: exact and patterns */
    expect_match(p, "shop-all", "web-1", true);
    expect_match(p, "shop-all", "api-1", false);
    expect_match(p, "shop-star", "api-1", true);
    expect_match(p, "shop-star", "bare", false);
    expect_match(p, "every-ns", "bare", true);
    /* app: a pattern on label `app`; a workload without the label never matches */
    expect_match(p, "web-app", "web-1", true);
    expect_match(p, "web-app", "api-1", false);
    expect_match(p, "web-app", "bare", false);
    expect_match(p, "any-app", "api-1", true);
    expect_match(p, "any-app", "bare", false);
    /* labels: all must be present with the same value (AND) */
    expect_match(p, "front", "web-1", true);
    expect_match(p, "front", "web-dev", false); /* no env=prod */
    expect_match(p, "front", "api-1", false);
    expect_match(p, "empty-label", "api-1", true);
    expect_match(p, "empty-label", "web-1", false);
    /* images: any pattern (OR); a workload without an image never matches */
    expect_match(p, "images", "web-1", true);
    expect_match(p, "images", "api-1", true);
    expect_match(p, "images", "web-dev", false);
    expect_match(p, "images", "bare", false);
    /* every field set must match (AND across fields) */
    expect_match(p, "all-fields", "web-1", false); /* app is web-frontend, not web */
    expect_match(p, "all-fields", "web-dev", true);
    /* cluster restriction */
    expect_match(p, "prod-only", "web-1", true);
    expect_match(p, "prod-only", "web-dev", false);
    const struct moat_workload *w = workload_named(p, "web-1");
    assert_false(object_matches_workload(object_named(p, "prod-only"), w, NULL));
    assert_true(object_matches_workload(object_named(p, "every-ns"), w, NULL));
    /* built-ins */
    expect_match(p, "any", "bare", true);
    expect_match(p, "any", "web-dev", true);
    expect_match(p, "host", "web-1", false);
    expect_match(p, "cluster-dns", "web-1", false);
    assert_true(object_in_cluster(object_named(p, "prod-only"), "prod"));
    assert_false(object_in_cluster(object_named(p, "prod-only"), "dev"));
    assert_true(object_in_cluster(object_named(p, "any"), "dev"));
    policy_free(p);

    /* The built-in cluster-dns picks kube-dns in kube-system. */
    p = load_ok("kind: Workload\ncluster: prod\nnode: n1\nname: coredns-1\n"
                "namespace: kube-system\nlabels: {k8s-app: kube-dns}\n---\n"
                "kind: Workload\ncluster: prod\nnode: n1\nname: other\n"
                "namespace: kube-system\nlabels: {k8s-app: metrics}\n");
    expect_match(p, "cluster-dns", "coredns-1", true);
    expect_match(p, "cluster-dns", "other", false);
    policy_free(p);
}

/* namespace_labels (objects and workloads) and a workload's `source` (issue 13). */
static const char ns_label_policy[] =
    "kind: Cluster\nname: prod\n---\n"
    "kind: NetworkObject\nname: payments\nnamespace: \"*\"\n"
    "namespace_labels: [team=payments]\n---\n"
    "kind: NetworkObject\nname: pay-web\nnamespace: shop\n"
    "app: web\nnamespace_labels: {team: payments, tier: \"1\"}\n---\n"
    "kind: Workload\ncluster: prod\nnode: n1\nname: w1\nnamespace: shop\n"
    "labels: {app: web}\n"
    "namespace_labels: {team: payments, tier: \"1\"}\n"
    "source: kubernetes:0d1f-uid\nips: [10.1.0.1]\n---\n"
    "kind: Workload\ncluster: prod\nnode: n1\nname: w2\nnamespace: shop\n"
    "labels: {app: web, team: payments}\nips: [10.1.0.2]\n---\n"
    "kind: Workload\ncluster: prod\nnode: n1\nname: w3\nnamespace: shop\n"
    "labels: {app: web}\nnamespace_labels: {team: payments}\n"
    "source: podman:abc\nips: [10.1.0.3]\n";

static void test_namespace_labels(void **state)
{
    (void)state;
    struct moat_policy *p = load_ok(ns_label_policy);
    /* all of them must be the namespace's: AND, as labels */
    expect_match(p, "payments", "w1", true);
    expect_match(p, "pay-web", "w1", true);
    expect_match(p, "pay-web", "w3", false); /* no tier=1 on its namespace */
    expect_match(p, "payments", "w3", true);
    /* a workload label is not a namespace label; no source reports none */
    expect_match(p, "payments", "w2", false);
    assert_string_equal(workload_named(p, "w1")->source, "kubernetes:0d1f-uid");
    assert_null(workload_named(p, "w2")->source);
    assert_int_equal(workload_named(p, "w1")->nns_labels, 2);
    policy_free(p);
    const char *bad =
        "kind: Cluster\nname: prod\n---\n"
        "kind: NetworkObject\nname: o\nnamespace: a\nnamespace_labels: [team]\n---\n"
        "kind: NetworkObject\nname: ip\ncidrs: [10.0.0.0/8]\nnamespace_labels: [a=b]\n"
        "---\nkind: Workload\ncluster: prod\nnode: n1\nname: w\nnamespace: a\n"
        "namespace_labels: {\"bad key\": x}\nsource: a b\n";
    diags_clear(&diags);
    struct moat_policy *q = NULL;
    assert_int_equal(policy_load_text(&q, bad, strlen(bad), "t.yaml", &diags), -EINVAL);
    assert_null(q);
    bool saw[4] = {false};
    for (size_t i = 0; i < diags.count; i++) {
        const char *t = diags.items[i].text;
        saw[0] |= strstr(t, "namespace_labels[0]") != NULL;
        saw[1] |= strstr(t, "an ipblock object (cidrs) cannot also select workloads") != NULL &&
                  strstr(t, "namespace_labels") != NULL;
        saw[2] |= strstr(t, "namespace_labels.bad key") != NULL;
        saw[3] |= strstr(t, "source:") != NULL && strstr(t, "is not a source") != NULL;
    }
    if (!saw[0] || !saw[1] || !saw[2] || !saw[3])
        print_diags();
    assert_true(saw[0] && saw[1] && saw[2] && saw[3]);
}

static void test_names_and_kinds(void **state)
{
    (void)state;
    assert_string_equal(action_name(MOAT_ACTION_BLOCK), "block");
    assert_string_equal(action_name(MOAT_ACTION_ALERT), "alert");
    assert_string_equal(action_name(MOAT_ACTION_ALLOW), "allow");
    assert_string_equal(proto_name(MOAT_PROTO_TCP), "tcp");
    assert_string_equal(proto_name(MOAT_PROTO_UDP), "udp");
    assert_string_equal(proto_name(MOAT_PROTO_ANY), "any");
    assert_string_equal(mode_name(MOAT_MODE_MONITOR), "monitor");
    assert_string_equal(mode_name(MOAT_MODE_PROTECT), "protect");
    assert_string_equal(rule_type_name(MOAT_RULE_SYSTEM), "system");
    assert_string_equal(rule_type_name(MOAT_RULE_CUSTOM), "custom");
    assert_string_equal(rule_type_name(MOAT_RULE_SUGGESTED), "suggested");
    assert_string_equal(object_kind_name(MOAT_OBJ_IPBLOCK), "ipblock");
    assert_string_equal(object_kind_name(MOAT_OBJ_SELECTOR), "selector");
    policy_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example_yaml),
        cmocka_unit_test(test_spec_example_json),
        cmocka_unit_test(test_spec_overlap_message),
        cmocka_unit_test(test_spec_detections),
        cmocka_unit_test(test_cluster_resolvers),
        cmocka_unit_test(test_cluster_defaults),
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_empty_documents),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_required_fields),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_rule_priority),
        cmocka_unit_test(test_rule_enums),
        cmocka_unit_test(test_rule_ports),
        cmocka_unit_test(test_rule_port_errors),
        cmocka_unit_test(test_rule_destinations),
        cmocka_unit_test(test_rule_references),
        cmocka_unit_test(test_rule_duplicates_and_ids),
        cmocka_unit_test(test_object_labels),
        cmocka_unit_test(test_ipblocks),
        cmocka_unit_test(test_ipblock_errors),
        cmocka_unit_test(test_object_duplicates_and_builtins),
        cmocka_unit_test(test_workloads),
        cmocka_unit_test(test_workload_errors),
        cmocka_unit_test(test_detection_errors),
        cmocka_unit_test(test_every_error_reported),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_system_rules),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_object_matching),
        cmocka_unit_test(test_namespace_labels),
        cmocka_unit_test(test_names_and_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_diags);
}
