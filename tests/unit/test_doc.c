/*
 * Unit tests for lib/doc: YAML (several documents) and JSON (an object or an
 * array of objects) into one document tree, YAML 1.1 scalar typing, duplicate
 * keys, syntax errors with line numbers, and the limits that guard against
 * hostile input (depth, alias expansion, size).
 */
#include "testutil.h"

#include "doc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Parses `text` as file `name`; expects success. The caller frees. */
static struct doc_set *parse_ok(const char *text, const char *name)
{
    struct moat_diags d = {0};
    struct doc_set *set = NULL;
    int err = doc_parse_text(text, strlen(text), name, &set, &d);
    if (err != 0 || d.count != 0)
        fail_msg("%s: err %d, first message: %s", name, err, d.count ? d.items[0].text : "-");
    assert_non_null(set);
    diags_clear(&d);
    return set;
}

/* Parses `text`; expects -EINVAL and exactly the messages given (NULL-terminated). */
static void parse_bad(const char *text, const char *name, const char *const *messages)
{
    struct moat_diags d = {0};
    struct doc_set *set = (struct doc_set *)&d;
    assert_int_equal(doc_parse_text(text, strlen(text), name, &set, &d), -EINVAL);
    assert_null(set);
    size_t n = 0;
    while (messages[n])
        n++;
    for (size_t i = 0; i < d.count && i < n; i++)
        assert_string_equal(d.items[i].text, messages[i]);
    if (d.count != n)
        fail_msg("%zu messages, expected %zu; first: %s", d.count, n,
                 d.count ? d.items[0].text : "-");
    diags_clear(&d);
}

static const struct doc_node *get(const struct doc_node *m, const char *key)
{
    const struct doc_node *n = doc_map_get(m, key);
    if (!n)
        fail_msg("no key \"%s\"", key);
    return n;
}

static void assert_scalar(const struct doc_node *n, enum doc_kind kind, const char *text)
{
    assert_int_equal(n->type, DOC_SCALAR);
    if (n->kind != kind)
        fail_msg("\"%s\": kind %d, expected %d", n->text, n->kind, kind);
    assert_string_equal(n->text, text);
}

static void test_yaml_multi_document(void **state)
{
    (void)state;
    struct doc_set *s = parse_ok("kind: Cluster\n"
                                 "name: prod\n"
                                 "---\n"
                                 "# a comment\n"
                                 "kind: NetworkObject\n"
                                 "name: web\n"
                                 "labels: [tier=frontend, app=web]\n"
                                 "---\n"
                                 "kind: DefenseRule\n"
                                 "destinations:\n"
                                 "  - object: web\n"
                                 "    ports: 80/80\n",
                                 "policy.yaml");
    assert_false(s->json);
    assert_string_equal(s->name, "policy.yaml");
    assert_int_equal(s->count, 3);
    assert_int_equal(s->docs[0]->type, DOC_MAP);
    assert_int_equal(s->docs[0]->line, 1);
    assert_scalar(get(s->docs[0], "name"), DOC_STR, "prod");
    assert_int_equal(s->docs[1]->line, 5);
    const struct doc_node *labels = get(s->docs[1], "labels");
    assert_int_equal(labels->type, DOC_SEQ);
    assert_int_equal(labels->count, 2);
    assert_scalar(labels->items[1], DOC_STR, "app=web");
    assert_int_equal(labels->line, 7);
    const struct doc_node *dests = get(s->docs[2], "destinations");
    assert_int_equal(dests->count, 1);
    const struct doc_node *ports = get(dests->items[0], "ports");
    assert_scalar(ports, DOC_STR, "80/80");
    assert_int_equal(ports->line, 12);
    /* Keys keep their order. */
    assert_string_equal(s->docs[2]->keys[0]->text, "kind");
    assert_string_equal(s->docs[2]->keys[1]->text, "destinations");
    doc_set_free(s);

    /* A leading `---`, and an empty input. */
    s = parse_ok("---\nkind: Cluster\n", "a.yaml");
    assert_int_equal(s->count, 1);
    assert_int_equal(s->docs[0]->line, 2);
    doc_set_free(s);
    s = parse_ok("", "empty.yaml");
    assert_int_equal(s->count, 0);
    doc_set_free(s);
    s = parse_ok("# nothing but a comment\n", "c.yaml");
    assert_int_equal(s->count, 0);
    doc_set_free(s);
    /* A trailing `---` makes an empty (null) document; the loader skips it. */
    s = parse_ok("a: 1\n---\n", "t.yaml");
    assert_int_equal(s->count, 2);
    assert_scalar(s->docs[1], DOC_NULL, "");
    doc_set_free(s);
}

static void test_yaml_scalar_types(void **state)
{
    (void)state;
    struct doc_set *s = parse_ok("t1: on\nt2: yes\nt3: true\nt4: True\nt5: ON\nt6: Yes\n"
                                 "f1: off\nf2: no\nf3: false\nf4: FALSE\nf5: Off\n"
                                 "q1: \"on\"\nq2: 'off'\nq3: \"10\"\nq4: \"\"\nq5: 'null'\n"
                                 "n1: ~\nn2: null\nn3:\nn4: NULL\n"
                                 "i1: 10\ni2: -5\ni3: +7\ni4: 007\n"
                                 "s1: 1.5\ns2: 10.0.0.1\ns3: 80/80\ns4: 'yes'\ns5: onion\n"
                                 "s6: web*\ns7: \"*\"\ns8: 1e3\n",
                                 "types.yaml");
    const struct doc_node *m = s->docs[0];
    static const char *const trues[] = {"t1", "t2", "t3", "t4", "t5", "t6"};
    for (size_t i = 0; i < 6; i++)
        assert_scalar(get(m, trues[i]), DOC_BOOL, "true");
    static const char *const falses[] = {"f1", "f2", "f3", "f4", "f5"};
    for (size_t i = 0; i < 5; i++)
        assert_scalar(get(m, falses[i]), DOC_BOOL, "false");
    assert_scalar(get(m, "q1"), DOC_STR, "on");
    assert_scalar(get(m, "q2"), DOC_STR, "off");
    assert_scalar(get(m, "q3"), DOC_STR, "10");
    assert_scalar(get(m, "q4"), DOC_STR, "");
    assert_scalar(get(m, "q5"), DOC_STR, "null");
    assert_scalar(get(m, "n1"), DOC_NULL, "~");
    assert_scalar(get(m, "n2"), DOC_NULL, "null");
    assert_scalar(get(m, "n3"), DOC_NULL, "");
    assert_scalar(get(m, "n4"), DOC_NULL, "NULL");
    assert_scalar(get(m, "i1"), DOC_INT, "10");
    assert_scalar(get(m, "i2"), DOC_INT, "-5");
    assert_scalar(get(m, "i3"), DOC_INT, "+7");
    assert_scalar(get(m, "i4"), DOC_INT, "007");
    assert_scalar(get(m, "s1"), DOC_STR, "1.5");
    assert_scalar(get(m, "s2"), DOC_STR, "10.0.0.1");
    assert_scalar(get(m, "s3"), DOC_STR, "80/80");
    assert_scalar(get(m, "s4"), DOC_STR, "yes");
    assert_scalar(get(m, "s5"), DOC_STR, "onion");
    assert_scalar(get(m, "s6"), DOC_STR, "web*");
    assert_scalar(get(m, "s7"), DOC_STR, "*");
    assert_scalar(get(m, "s8"), DOC_STR, "1e3");
    /* Keys are strings, even when they look like booleans. */
    doc_set_free(s);
    s = parse_ok("on: 1\n", "k.yaml");
    assert_string_equal(s->docs[0]->keys[0]->text, "true");
    assert_int_equal(s->docs[0]->keys[0]->kind, DOC_STR);
    doc_set_free(s);
}

static void test_json_object_and_array(void **state)
{
    (void)state;
    struct doc_set *s = parse_ok("{\"kind\": \"Cluster\", \"name\": \"prod\", \"defense\": true,"
                                 " \"n\": 10, \"x\": 1.5, \"z\": null, \"l\": [1, \"a\"]}",
                                 "c.json");
    assert_true(s->json);
    assert_int_equal(s->count, 1);
    const struct doc_node *m = s->docs[0];
    assert_int_equal(m->type, DOC_MAP);
    assert_int_equal(m->line, 0);
    assert_scalar(get(m, "kind"), DOC_STR, "Cluster");
    assert_scalar(get(m, "defense"), DOC_BOOL, "true");
    assert_scalar(get(m, "n"), DOC_INT, "10");
    assert_scalar(get(m, "x"), DOC_FLOAT, "1.5");
    assert_scalar(get(m, "z"), DOC_NULL, "");
    const struct doc_node *l = get(m, "l");
    assert_int_equal(l->type, DOC_SEQ);
    assert_scalar(l->items[0], DOC_INT, "1");
    assert_scalar(l->items[1], DOC_STR, "a");
    doc_set_free(s);

    /* An array: one document per element. JSON strings are never booleans. */
    s = parse_ok("[{\"kind\": \"Cluster\"}, {\"kind\": \"NetworkObject\", \"d\": \"on\"}, {}]",
                 "list.json");
    assert_true(s->json);
    assert_int_equal(s->count, 3);
    assert_scalar(get(s->docs[1], "kind"), DOC_STR, "NetworkObject");
    assert_scalar(get(s->docs[1], "d"), DOC_STR, "on");
    assert_int_equal(s->docs[2]->count, 0);
    doc_set_free(s);

    /* Recognised by its first character, whatever the name. */
    s = parse_ok("  \n {\"kind\": \"Cluster\"}", "-");
    assert_true(s->json);
    doc_set_free(s);
    s = parse_ok("[]", "stdin");
    assert_true(s->json);
    assert_int_equal(s->count, 0);
    doc_set_free(s);
    /* And by its name; a bare JSON scalar is not a policy file. */
    s = parse_ok("\n{}", "x.json");
    assert_true(s->json);
    doc_set_free(s);
    parse_bad("\"just a string\"", "x.json",
              (const char *const[]){"x.json:1: JSON: '[' or '{' expected near '\"just a string\"'",
                                    NULL});
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    parse_bad("kind: Cluster\nname: a\nname: b\n", "d.yaml",
              (const char *const[]){"d.yaml:3: duplicate key \"name\"", NULL});
    /* In nested maps too, each reported. */
    parse_bad("a:\n  x: 1\n  y: 2\n  x: 3\nb: 1\nb: 2\n", "n.yaml",
              (const char *const[]){"n.yaml:4: duplicate key \"x\"",
                                    "n.yaml:6: duplicate key \"b\"", NULL});
    /* In the second document. */
    parse_bad("a: 1\n---\nb: 1\nb: 1\n", "m.yaml",
              (const char *const[]){"m.yaml:4: duplicate key \"b\"", NULL});
    parse_bad("{\n \"kind\": \"Cluster\",\n \"name\": \"a\",\n \"name\": \"b\"\n}\n", "d.json",
              (const char *const[]){"d.json:4: JSON: duplicate object key near '\"name\"'", NULL});

    /* A big map: found by the hash set, in linear time. */
    size_t n = 20000, cap = n * 16 + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "key%zu: %zu\n", i, i);
    struct doc_set *s = parse_ok(text, "big.yaml");
    assert_int_equal(s->docs[0]->count, n);
    assert_scalar(get(s->docs[0], "key19999"), DOC_INT, "19999");
    doc_set_free(s);
    snprintf(text + len, cap - len, "key777: again\n");
    parse_bad(text, "big.yaml",
              (const char *const[]){"big.yaml:20001: duplicate key \"key777\"", NULL});
    free(text);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    parse_bad("kind: Cluster\nname: [a, b\ndefense: on\n", "s.yaml",
              (const char *const[]){"s.yaml:3: YAML: did not find expected ',' or ']' while "
                                    "parsing a flow sequence",
                                    NULL});
    parse_bad("kind: Cluster\nname: a\n  mode: protect\n", "s.yaml",
              (const char *const[]){"s.yaml:3: YAML: mapping values are not allowed in this "
                                    "context",
                                    NULL});
    parse_bad("a: 1\n---\nb: \"open\n", "s.yaml",
              (const char *const[]){"s.yaml:4: YAML: found unexpected end of stream while "
                                    "scanning a quoted scalar",
                                    NULL});
    parse_bad("a: *nowhere\n", "s.yaml",
              (const char *const[]){"s.yaml:1: YAML: found undefined alias", NULL});
    parse_bad("{\n  \"a\": 1,\n}\n", "s.json",
              (const char *const[]){"s.json:3: JSON: string or '}' expected near '}'", NULL});
    parse_bad("[{\"a\": 1}\n{\"b\": 2}]", "s.json",
              (const char *const[]){"s.json:2: JSON: ']' expected near '{'", NULL});
    parse_bad("? [a, b]\n: 1\n", "k.yaml",
              (const char *const[]){"k.yaml:1: map keys must be plain strings", NULL});
}

/* `levels` nested flow sequences around a scalar, as YAML or JSON. */
static char *nested(size_t levels, bool json)
{
    char *t = malloc(2 * levels + 16);
    assert_non_null(t);
    size_t n = 0;
    if (!json) {
        memcpy(t, "a: ", 3);
        n = 3;
    }
    for (size_t i = 0; i < levels; i++)
        t[n++] = '[';
    t[n++] = '1';
    for (size_t i = 0; i < levels; i++)
        t[n++] = ']';
    t[n] = '\0';
    return t;
}

static void test_depth_limit(void **state)
{
    (void)state;
    /* YAML: the root map is level 0, so 64 sequences put the scalar at level 65. */
    char *t = nested(63, false);
    doc_set_free(parse_ok(t, "ok.yaml"));
    free(t);
    t = nested(64, false);
    parse_bad(t, "deep.yaml",
              (const char *const[]){"deep.yaml:1: nesting deeper than 64 levels", NULL});
    free(t);
    /* Block style counts the same. */
    char block[4096] = "";
    size_t n = 0;
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(block + n, sizeof(block) - n, "%*sk%d:\n", i, "", i);
    snprintf(block + n, sizeof(block) - n, "%*sv: 1\n", 70, "");
    parse_bad(block, "b.yaml",
              (const char *const[]){"b.yaml:66: nesting deeper than 64 levels", NULL});

    t = nested(64, true);
    doc_set_free(parse_ok(t, "ok.json"));
    free(t);
    t = nested(65, true);
    parse_bad(t, "deep.json",
              (const char *const[]){"deep.json: nesting deeper than 64 levels", NULL});
    free(t);

    /* Very deep input is rejected fast: libyaml's scanner is slow on deep flow nesting,
     * so the depth is checked before loading. */
    clock_t start = clock();
    t = nested(200000, false);
    parse_bad(t, "huge.yaml",
              (const char *const[]){"huge.yaml:1: nesting deeper than 64 levels", NULL});
    free(t);
    t = nested(200000, true);
    parse_bad(
        t, "huge.json",
        (const char *const[]){"huge.json:1: JSON: maximum parsing depth reached near '['", NULL});
    free(t);
    double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
    if (secs > 2.0)
        fail_msg("deep input took %.1f s", secs);
}

static void test_aliases(void **state)
{
    (void)state;
    /* Ordinary aliases are expanded. */
    struct doc_set *s = parse_ok("common: &c [tier=frontend, app=web]\n"
                                 "labels: *c\n"
                                 "more: [*c, *c]\n",
                                 "a.yaml");
    const struct doc_node *l = get(s->docs[0], "labels");
    assert_int_equal(l->type, DOC_SEQ);
    assert_scalar(l->items[0], DOC_STR, "tier=frontend");
    assert_int_equal(get(s->docs[0], "more")->count, 2);
    doc_set_free(s);

    /* A recursive alias stops at the depth limit. */
    parse_bad("a: &x [1, *x]\n", "r.yaml",
              (const char *const[]){"r.yaml:1: nesting deeper than 64 levels", NULL});

    /* Billion laughs: 9^9 nodes if expanded; stopped early, in little time and memory. */
    char text[2048];
    size_t n =
        (size_t)snprintf(text, sizeof(text), "a0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    for (int i = 1; i < 10; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "a%d: &a%d [", i, i);
        for (int j = 0; j < 9; j++)
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s*a%d", j ? "," : "", i - 1);
        n += (size_t)snprintf(text + n, sizeof(text) - n, "]\n");
    }
    clock_t start = clock();
    parse_bad(
        text, "lol.yaml",
        (const char *const[]){"lol.yaml:1: YAML aliases expand to more than 10000 nodes", NULL});
    double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
    if (secs > 1.0)
        fail_msg("billion laughs took %.1f s", secs);
}

static void test_size_limit(void **state)
{
    (void)state;
    size_t len = (size_t)MOAT_DOC_MAX_BYTES + 1;
    char *big = malloc(len); /* never read: the size is checked first */
    assert_non_null(big);
    struct moat_diags d = {0};
    struct doc_set *set = NULL;
    assert_int_equal(doc_parse_text(big, len, "big.yaml", &set, &d), -EINVAL);
    assert_null(set);
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0].text, "big.yaml: input is larger than 33554432 bytes");
    diags_clear(&d);
    free(big);
}

static void test_parse_file(void **state)
{
    (void)state;
    const char *path = testutil_write_file("doc.yaml", "kind: Cluster\nname: prod\n");
    struct moat_diags d = {0};
    struct doc_set *set = NULL;
    assert_int_equal(doc_parse_file(path, &set, &d), 0);
    assert_string_equal(set->name, path);
    assert_int_equal(set->count, 1);
    doc_set_free(set);

    path = testutil_write_file("doc.json", "[{\"kind\": \"Cluster\"}]");
    assert_int_equal(doc_parse_file(path, &set, &d), 0);
    assert_true(set->json);
    doc_set_free(set);

    assert_int_equal(doc_parse_file("/nonexistent/moat.yaml", &set, &d), -ENOENT);
    assert_null(set);
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0].text,
                        "/nonexistent/moat.yaml: cannot open: No such file or directory");
    diags_clear(&d);
}

static void test_helpers(void **state)
{
    (void)state;
    struct doc_set *s = parse_ok("m: {a: 1}\nl: [1]\ns: x\nn: 1\nb: on\nz: ~\n", "h.yaml");
    const struct doc_node *m = s->docs[0];
    assert_string_equal(doc_type_name(get(m, "m")), "a map");
    assert_string_equal(doc_type_name(get(m, "l")), "a list");
    assert_string_equal(doc_type_name(get(m, "s")), "a string");
    assert_string_equal(doc_type_name(get(m, "n")), "a number");
    assert_string_equal(doc_type_name(get(m, "b")), "a boolean");
    assert_string_equal(doc_type_name(get(m, "z")), "null");
    assert_null(doc_map_get(m, "missing"));
    assert_null(doc_map_get(get(m, "l"), "a"));
    assert_null(doc_map_get(NULL, "a"));
    assert_non_null(doc_map_get(get(m, "m"), "a"));
    doc_set_free(s);
    doc_set_free(NULL);
    doc_node_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_multi_document),
        cmocka_unit_test(test_yaml_scalar_types),
        cmocka_unit_test(test_json_object_and_array),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
