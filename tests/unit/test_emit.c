/*
 * Unit tests for lib/emit: YAML scalars that read back as the same string
 * (plain or double-quoted, in block and flow context), and the round trip
 * workload/node -> YAML -> loader -> the same fields.
 */
#include "testutil.h"

#include "doc.h"
#include "emit.h"
#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strings that YAML would misread when written plain. */
static const char *const tricky[] = {
    "",
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "n",
    "~",
    "null",
    "NULL",
    "true",
    "False",
    "123",
    "0x1F",
    "0o17",
    "1_000",
    "1.5",
    "1e3",
    ".inf",
    ".nan",
    "10.244.1.5",
    "fd00::1",
    "::1",
    "- x",
    "-",
    "a: b",
    "a:b",
    "#c",
    "a #b",
    "'",
    "\"",
    "\\",
    "\\n",
    "tab\there",
    "line\nbreak",
    "cr\rx",
    "trailing ",
    " leading",
    "  ",
    "[x]",
    "{x}",
    "a,b",
    "*alias",
    "&anchor",
    "!tag",
    "%dir",
    "@at",
    "`tick",
    "|",
    ">",
    "?",
    "? x",
    "---",
    "...",
    "plain-1.2_x/y",
    "docker.io/library/nginx:1.27",
    "\x01\x02\x1b\x7f",
    "\xc3\xbc"
    "n\xc3\xaf"
    "c\xc3\xb6"
    "d\xc3\xa9",                    /* ünïcödé */
    "nel\xc2\x85x",                 /* U+0085 */
    "c1\xc2\x80\xc2\x9f",           /* C1 controls */
    "ls\xe2\x80\xa8ps\xe2\x80\xa9", /* U+2028, U+2029 */
    "bom\xef\xbb\xbf",              /* U+FEFF */
    "nc\xef\xbf\xbe\xef\xbf\xbf",   /* U+FFFE, U+FFFF */
    "\xf0\x9f\x90\x9f fish",        /* outside the BMP */
};

/* Parses `text` and returns the scalar at v (block), v[0] (flow list) or v.k (flow map). */
static void check_reads_back(const char *wrapped, const char *want, int shape)
{
    struct moat_diags d;
    diags_init(&d);
    struct doc_set *set = NULL;
    int err = doc_parse_text(wrapped, strlen(wrapped), "t.yaml", &set, &d);
    if (err)
        fail_msg("\"%s\" does not parse: %s", wrapped, d.count ? d.items[0].text : "?");
    assert_int_equal(set->count, 1);
    const struct doc_node *v = doc_map_get(set->docs[0], "v");
    assert_non_null(v);
    if (shape == 1) {
        assert_int_equal(v->type, DOC_SEQ);
        assert_int_equal(v->count, 2);
        v = v->items[0];
    } else if (shape == 2) {
        assert_int_equal(v->type, DOC_MAP);
        v = doc_map_get(v, want); /* the key is the same string */
        assert_non_null(v);
    }
    assert_int_equal(v->type, DOC_SCALAR);
    assert_int_equal(v->kind, DOC_STR);
    assert_string_equal(v->text, want);
    doc_set_free(set);
    diags_clear(&d);
}

static void test_scalars_read_back(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++) {
        const char *s = tricky[i];
        struct emit_buf b;
        emit_buf_init(&b, 0);
        /* block */
        assert_int_equal(emit_str(&b, "v: "), 0);
        assert_int_equal(emit_scalar(&b, s), 0);
        assert_int_equal(emit_str(&b, "\n"), 0);
        check_reads_back(emit_buf_text(&b), s, 0);
        emit_buf_free(&b);
        /* flow list */
        assert_int_equal(emit_str(&b, "v: ["), 0);
        assert_int_equal(emit_scalar(&b, s), 0);
        assert_int_equal(emit_str(&b, ", z]\n"), 0);
        check_reads_back(emit_buf_text(&b), s, 1);
        emit_buf_free(&b);
        /* flow map, the string as key and as value */
        assert_int_equal(emit_str(&b, "v: {"), 0);
        assert_int_equal(emit_scalar(&b, s), 0);
        assert_int_equal(emit_str(&b, ": "), 0);
        assert_int_equal(emit_scalar(&b, s), 0);
        assert_int_equal(emit_str(&b, "}\n"), 0);
        check_reads_back(emit_buf_text(&b), s, 2);
        emit_buf_free(&b);
    }
}

static void test_plain_ok(void **state)
{
    (void)state;
    assert_true(emit_plain_ok("web-7d9f"));
    assert_true(emit_plain_ok("node-1"));
    assert_true(emit_plain_ok("lxc-web.1_a/b"));
    assert_true(emit_plain_ok("Workload"));
    assert_true(emit_plain_ok("yesterday"));
    for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++)
        if (strcmp(tricky[i], "plain-1.2_x/y") != 0)
            assert_false(emit_plain_ok(tricky[i]));
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xff",
        "a\x80",
        "\xc0\xaf" /* overlong '/' */,
        "\xed\xa0\x80" /* surrogate */,
        "\xf4\x90\x80\x80" /* past U+10FFFF */,
        "\xe2\x82" /* cut short */,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct emit_buf b;
        emit_buf_init(&b, 0);
        assert_int_equal(emit_str(&b, "v: "), 0);
        assert_int_equal(emit_scalar(&b, bad[i]), -EILSEQ);
        assert_string_equal(emit_buf_text(&b), "v: "); /* unchanged */
        emit_buf_free(&b);
    }
}

static void test_max_size(void **state)
{
    (void)state;
    struct emit_buf b;
    emit_buf_init(&b, 8);
    assert_int_equal(emit_str(&b, "12345678"), 0);
    assert_int_equal(emit_str(&b, "9"), -E2BIG);
    assert_string_equal(emit_buf_text(&b), "12345678");
    emit_buf_free(&b);
    emit_buf_init(&b, 40);
    struct moat_node n = {.name = "a-node-with-a-long-name", .cluster_ref = "prod"};
    assert_int_equal(emit_node(&b, &n), -E2BIG);
    assert_int_equal(b.len, 0);
    assert_string_equal(emit_buf_text(&b), "");
    char *s = emit_buf_take(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    emit_buf_free(NULL);
}

static struct moat_policy *load(const char *text)
{
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    int err = policy_load_text(&p, text, strlen(text), "emitted.yaml", &d);
    if (err)
        fail_msg("does not load (%d): %s\n---\n%s", err, d.count ? d.items[0].text : "?", text);
    diags_clear(&d);
    return p;
}

static void same_addrs(const struct moat_addr *a, size_t na, const struct moat_addr *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_int_equal(addr_cmp(&a[i], &b[i]), 0);
}

static void same_str(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void same_workload(const struct moat_workload *a, const struct moat_workload *b)
{
    same_str(a->cluster_ref, b->cluster_ref);
    same_str(a->node, b->node);
    same_str(a->name, b->name);
    same_str(a->namespace, b->namespace);
    same_str(a->image, b->image);
    same_str(a->interface, b->interface);
    assert_int_equal(a->nlabels, b->nlabels);
    for (size_t i = 0; i < a->nlabels; i++) {
        assert_string_equal(a->labels[i].key, b->labels[i].key);
        assert_string_equal(a->labels[i].value, b->labels[i].value);
    }
    same_addrs(a->addrs, a->naddrs, b->addrs, b->naddrs);
}

static void same_node(const struct moat_node *a, const struct moat_node *b)
{
    same_str(a->name, b->name);
    same_str(a->cluster_ref, b->cluster_ref);
    same_addrs(a->addrs, a->naddrs, b->addrs, b->naddrs);
}

/* Emits every workload and node of `p`, loads the text and compares. */
static void round_trip(const struct moat_policy *p)
{
    struct emit_buf b;
    emit_buf_init(&b, 0);
    for (size_t i = 0; i < p->nnodes; i++)
        assert_int_equal(emit_node(&b, &p->nodes[i]), 0);
    for (size_t i = 0; i < p->nworkloads; i++)
        assert_int_equal(emit_workload(&b, &p->workloads[i]), 0);
    struct moat_policy *q = load(emit_buf_text(&b));
    assert_int_equal(q->nnodes, p->nnodes);
    assert_int_equal(q->nworkloads, p->nworkloads);
    for (size_t i = 0; i < p->nnodes; i++)
        same_node(&p->nodes[i], &q->nodes[i]);
    for (size_t i = 0; i < p->nworkloads; i++)
        same_workload(&p->workloads[i], &q->workloads[i]);
    policy_free(q);
    emit_buf_free(&b);
}

static void test_round_trip_loaded(void **state)
{
    (void)state;
    static const char src[] = "kind: Node\n"
                              "name: node-1\n"
                              "cluster: prod\n"
                              "ips: [10.244.1.1, 'fd00::1']\n"
                              "---\n"
                              "kind: Node\n"
                              "name: bare\n"
                              "---\n"
                              "kind: Workload\n"
                              "cluster: 'yes'\n"
                              "node: node-1\n"
                              "name: web-7d9f\n"
                              "namespace: shop\n"
                              "image: docker.io/library/nginx:1.27\n"
                              "labels: {app: web, 'on': '', tier: frontend, "
                              "example.com/x: 'y', '123': 'null'}\n"
                              "ips: [10.244.1.5, 'fd00::5']\n"
                              "interface: lxc-web-7d9f\n"
                              "---\n"
                              "kind: Workload\n"
                              "cluster: \"odd: cluster #1 \\\"q\\\"\\n\"\n"
                              "node: '123'\n"
                              "name: '0x10'\n"
                              "namespace: 'no'\n"
                              "---\n"
                              "{kind: Workload, cluster: prod, node: n, name: db-0, namespace: "
                              "data, labels: [app=db], interface: 'eth@0'}\n";
    struct moat_policy *p = load(src);
    assert_int_equal(p->nnodes, 2);
    assert_int_equal(p->nworkloads, 3);
    round_trip(p);
    policy_free(p);
}

static void test_round_trip_built(void **state)
{
    (void)state;
    struct moat_addr a[3];
    assert_int_equal(addr_parse("10.0.0.7", &a[0]), 0);
    assert_int_equal(addr_parse("2001:db8::7", &a[1]), 0);
    assert_int_equal(addr_parse("10.0.0.1", &a[2]), 0);
    struct moat_label labels[] = {{"app", "x"}, {"k8s.io/name", "v-1"}};
    struct moat_workload w = {.cluster_ref = "tab\tand \xc3\xbc \xe2\x80\xa8 \\ ~",
                              .node = "node-1",
                              .name = "true",
                              .namespace = "NULL",
                              .image = "r.example/a/b@sha256:"
                                       "0123456789abcdef0123456789abcdef0123456789abcdef"
                                       "0123456789abcdef",
                              .labels = labels,
                              .nlabels = 2,
                              .addrs = a,
                              .naddrs = 2,
                              .interface = "lxc-x"};
    struct moat_node n = {.name = "node-1", .cluster_ref = "#prod", .addrs = &a[2], .naddrs = 1};
    struct moat_policy p = {.workloads = &w, .nworkloads = 1, .nodes = &n, .nnodes = 1};
    round_trip(&p);

    /* The text itself: plain where safe, quoted elsewhere. */
    struct emit_buf b;
    emit_buf_init(&b, 0);
    assert_int_equal(emit_node(&b, &n), 0);
    assert_string_equal(emit_buf_text(&b), "---\nkind: Node\nname: node-1\ncluster: \"#prod\"\n"
                                           "ips: [\"10.0.0.1\"]\n");
    emit_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_read_back), cmocka_unit_test(test_plain_ok),
        cmocka_unit_test(test_invalid_utf8),      cmocka_unit_test(test_max_size),
        cmocka_unit_test(test_round_trip_loaded), cmocka_unit_test(test_round_trip_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
