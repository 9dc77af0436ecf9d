/*
 * Unit tests for lib/labels: label keys and values by Kubernetes' rules and
 * `key=value` selectors (`key:value` accepted on input), SPEC 2.
 */
#include "testutil.h"

#include "labels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_key_check_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "app",
        "k8s-app",
        "a",
        "A1",
        "tier.name_x-1",
        "9lives",
        "example.com/name",
        "app.kubernetes.io/name",
        "a/b",
        "x-1.y/Z_9",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (label_key_check(good[i]))
            fail_msg("key \"%s\" rejected: %s", good[i], label_key_check(good[i]));
}

static void test_key_check_invalid(void **state)
{
    (void)state;
    assert_string_equal(label_key_check(""), "name part is empty");
    assert_string_equal(label_key_check("example.com/"), "name part is empty");
    assert_string_equal(label_key_check("-app"), "must start and end with a letter or digit");
    assert_string_equal(label_key_check("app-"), "must start and end with a letter or digit");
    assert_string_equal(label_key_check("_app"), "must start and end with a letter or digit");
    assert_string_equal(label_key_check("a pp"),
                        "may only contain letters, digits, '-', '_' and '.'");
    assert_string_equal(label_key_check("a=b"),
                        "may only contain letters, digits, '-', '_' and '.'");
    assert_string_equal(label_key_check("a/b/c"),
                        "may only contain letters, digits, '-', '_' and '.'");
    assert_string_equal(label_key_check("/app"), "prefix must be 1..253 characters");
    assert_string_equal(label_key_check("Example.com/app"), "prefix must be a lower-case DNS name");
    static const char *const bad_prefixes[] = {
        "exa_mple.com/app", "-example.com/app", "example.com-/app", "example..com/app",
        ".example.com/app", "example.com./app", "a.-b/app",         "a b/app"};
    for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++)
        if (!label_key_check(bad_prefixes[i]) ||
            strcmp(label_key_check(bad_prefixes[i]), "prefix must be a lower-case DNS name") != 0)
            fail_msg("key \"%s\": prefix accepted", bad_prefixes[i]);
    assert_null(label_key_check("a-b.c-d.io/app"));
    assert_null(label_key_check("1.2/app"));

    char name[70];
    memset(name, 'a', 63);
    name[63] = '\0';
    assert_null(label_key_check(name));
    name[63] = 'a';
    name[64] = '\0';
    assert_string_equal(label_key_check(name), "name part is longer than 63 characters");

    char key[300];
    memset(key, 'p', 253);
    strcpy(key + 253, "/app");
    assert_null(label_key_check(key));
    memset(key, 'p', 254);
    strcpy(key + 254, "/app");
    assert_string_equal(label_key_check(key), "prefix must be 1..253 characters");
}

static void test_value_check(void **state)
{
    (void)state;
    assert_null(label_value_check(""));
    assert_null(label_value_check("web"));
    assert_null(label_value_check("kube-dns"));
    assert_null(label_value_check("v1.2_3"));
    assert_string_equal(label_value_check("-web"), "must start and end with a letter or digit");
    assert_string_equal(label_value_check("a/b"),
                        "may only contain letters, digits, '-', '_' and '.'");
    assert_string_equal(label_value_check("a:b"),
                        "may only contain letters, digits, '-', '_' and '.'");
    char v[70];
    memset(v, 'v', 63);
    v[63] = '\0';
    assert_null(label_value_check(v));
    v[63] = 'v';
    v[64] = '\0';
    assert_string_equal(label_value_check(v), "name part is longer than 63 characters");
}

/* Parses `text`, expects success and the given key and value. */
static void parse_ok(const char *text, const char *key, const char *value)
{
    char *k = NULL, *v = NULL, why[256] = "";
    if (label_parse(text, &k, &v, why, sizeof(why)) != 0)
        fail_msg("\"%s\" rejected: %s", text, why);
    assert_string_equal(k, key);
    assert_string_equal(v, value);
    free(k);
    free(v);
}

/* Parses `text`, expects -EINVAL with exactly `message`. */
static void parse_bad(const char *text, const char *message)
{
    char *k = (char *)"x", *v = (char *)"y", why[256] = "";
    assert_int_equal(label_parse(text, &k, &v, why, sizeof(why)), -EINVAL);
    assert_null(k);
    assert_null(v);
    assert_string_equal(why, message);
}

static void test_parse(void **state)
{
    (void)state;
    parse_ok("app=web", "app", "web");
    parse_ok("tier=frontend", "tier", "frontend");
    parse_ok("app:web", "app", "web");
    parse_ok("example.com/name=x", "example.com/name", "x");
    parse_ok("example.com/name:x", "example.com/name", "x");
    parse_ok("k8s-app=kube-dns", "k8s-app", "kube-dns");
    parse_ok("app=", "app", "");
    parse_ok("app:", "app", "");
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_bad("app==x", "\"app==x\" is not key=value");
    parse_bad("app", "\"app\" is not key=value");
    parse_bad("", "\"\" is not key=value");
    parse_bad("=x", "\"=x\" is not key=value");
    parse_bad(":x", "\":x\" is not key=value");
    parse_bad("a=b=c", "\"a=b=c\" is not key=value");
    parse_bad("a:b=c", "\"a:b=c\" is not key=value");
    parse_bad("-a=b", "\"-a=b\": label key must start and end with a letter or digit");
    parse_bad("a b=c", "\"a b=c\": label key may only contain letters, digits, '-', '_' and '.'");
    parse_bad("a=-b", "\"a=-b\": label value must start and end with a letter or digit");
    parse_bad("a=b c", "\"a=b c\": label value may only contain letters, digits, '-', '_' and '.'");

    char text[80];
    memset(text, 'k', 64);
    strcpy(text + 64, "=v");
    char want[160];
    strcpy(want, "\"");
    strcat(want, text);
    strcat(want, "\": label key name part is longer than 63 characters");
    parse_bad(text, want);
    text[63] = '=';
    text[64] = 'v';
    text[65] = '\0';
    parse_ok(text, "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "v");
}

static void test_get_and_free(void **state)
{
    (void)state;
    struct moat_label *l = calloc(2, sizeof(*l));
    assert_non_null(l);
    l[0].key = strdup("app");
    l[0].value = strdup("web");
    l[1].key = strdup("tier");
    l[1].value = strdup("");
    assert_string_equal(labels_get(l, 2, "app"), "web");
    assert_string_equal(labels_get(l, 2, "tier"), "");
    assert_null(labels_get(l, 2, "ap"));
    assert_null(labels_get(l, 0, "app"));
    labels_free(l, 2);
    labels_free(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_check_valid), cmocka_unit_test(test_key_check_invalid),
        cmocka_unit_test(test_value_check),     cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_errors),    cmocka_unit_test(test_get_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
