/*
 * Unit tests for what moat-server reads from the network before anything
 * else does: lib/utf8 (valid UTF-8, cutting between characters), lib/uri
 * (request targets: segments decoded one by one, encoded slashes, NUL,
 * dot segments, bad escapes, query arguments twice or without a name) and
 * lib/jsonbound (depth, sizes and counts of a parsed JSON value, with the
 * path of the first value out of bounds).
 */
#include "testutil.h"

#include "jsonbound.h"
#include "uri.h"
#include "utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- utf8 ---- */

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(utf8_valid("", 0));
    assert_true(utf8_valid("plain", 5));
    assert_true(utf8_valid("caf\xc3\xa9", 5));       /* é */
    assert_true(utf8_valid("\xe2\x82\xac", 3));      /* € */
    assert_true(utf8_valid("\xf0\x9f\x98\x80", 4));  /* U+1F600 */
    assert_true(utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    assert_false(utf8_valid("\xff", 1));             /* never in UTF-8 */
    assert_false(utf8_valid("\xc3", 1));             /* cut */
    assert_false(utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(utf8_valid("\xed\xa0\x80", 3));     /* a surrogate */
    assert_false(utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(utf8_valid("a\x80z", 3));           /* a lone continuation byte */
    assert_false(utf8_valid("\xe2\x82", 2));         /* a cut € */
}

static void test_utf8_cut(void **state)
{
    (void)state;
    const char *s = "ab\xe2\x82\xac"
                    "cd"; /* a b € c d: 7 bytes */
    assert_int_equal(utf8_prefix(s, 7, 7), 7);
    assert_int_equal(utf8_prefix(s, 7, 4), 2); /* not inside the € */
    assert_int_equal(utf8_prefix(s, 7, 5), 5);
    assert_int_equal(utf8_prefix(s, 7, 0), 0);
    char out[6];
    utf8_copy(out, sizeof(out), s); /* room for 5 bytes */
    assert_string_equal(out, "ab\xe2\x82\xac");
    utf8_copy(out, 5, s); /* room for 4: the € does not fit */
    assert_string_equal(out, "ab");
    char bad[16];
    utf8_copy(bad, sizeof(bad),
              "x\xff"
              "y\xc3");
    assert_string_equal(bad, "x?y?");
    assert_true(utf8_valid(bad, strlen(bad)));
}

/* ---- uri ---- */

static void uri_ok(const char *raw, const char *path)
{
    struct uri u;
    char why[256];
    int err = uri_parse(raw, &u, why, sizeof(why));
    if (err)
        fail_msg("\"%s\" refused: %s", raw, why);
    assert_string_equal(u.path, path);
    assert_true(utf8_valid(u.path, strlen(u.path)));
    uri_clear(&u);
}

static void uri_bad(const char *raw, const char *reason)
{
    struct uri u;
    char why[256];
    assert_int_equal(uri_parse(raw, &u, why, sizeof(why)), -EINVAL);
    if (!strstr(why, reason))
        fail_msg("\"%s\": \"%s\" does not say \"%s\"", raw, why, reason);
    assert_true(utf8_valid(why, strlen(why)));
    uri_clear(&u);
}

static void test_uri_paths(void **state)
{
    (void)state;
    uri_ok("/", "/");
    uri_ok("/api/v1/clusters", "/api/v1/clusters");
    uri_ok("/api/v1/clusters/", "/api/v1/clusters/");
    uri_ok("/api/v1/clusters/pr%6Fd/rules", "/api/v1/clusters/prod/rules");
    uri_ok("/api/v1/objects/caf%C3%A9", "/api/v1/objects/caf\xc3\xa9");
    uri_ok("/a+b", "/a+b"); /* + is a plus in a path */
    uri_ok("/a..b/.c", "/a..b/.c");
    uri_bad("/api/v1/clusters/prod%2Frules", "encoded slash");
    uri_bad("/api/v1/clusters/prod%2frules", "encoded slash");
    uri_bad("/api/v1/objects%00/4", "NUL");
    uri_bad("/api/v1/objects/%zz", "hex digits");
    uri_bad("/api/v1/objects/%4", "hex digits");
    uri_bad("/api/v1/objects/%", "hex digits");
    uri_bad("/api/v1/%ff", "UTF-8");
    uri_bad("/api/v1/\xff", "UTF-8");
    uri_bad("/api/v1/caf%C3", "UTF-8");
    uri_bad("/api/../etc", ". or ..");
    uri_bad("/api/%2E%2E/etc", ". or ..");
    uri_bad("/./x", ". or ..");
    uri_bad("http://example.com/x", "must be a path");
    uri_bad("", "must be a path");
    uri_bad("/a\tb", "control character");
}

static void test_uri_query(void **state)
{
    (void)state;
    struct uri u;
    char why[256];
    assert_int_equal(uri_parse("/x?a=1&b=two+words&c=%26&flag&&d=", &u, why, sizeof(why)), 0);
    assert_string_equal(u.path, "/x");
    assert_int_equal(u.nargs, 5);
    assert_string_equal(uri_arg(&u, "a"), "1");
    assert_string_equal(uri_arg(&u, "b"), "two words");
    assert_string_equal(uri_arg(&u, "c"), "&");
    assert_string_equal(uri_arg(&u, "flag"), "");
    assert_string_equal(uri_arg(&u, "d"), "");
    assert_null(uri_arg(&u, "e"));
    uri_clear(&u);
    assert_int_equal(uri_parse("/x?", &u, why, sizeof(why)), 0);
    assert_int_equal(u.nargs, 0);
    uri_clear(&u);
    /* flags only: each needs two NULs and has one byte or fewer of '&' (found by fuzz_input) */
    assert_int_equal(uri_parse("/x?f", &u, why, sizeof(why)), 0);
    assert_string_equal(uri_arg(&u, "f"), "");
    uri_clear(&u);
    assert_int_equal(uri_parse("/x?a&b&c&d", &u, why, sizeof(why)), 0);
    assert_int_equal(u.nargs, 4);
    assert_string_equal(uri_arg(&u, "d"), "");
    uri_clear(&u);
    uri_bad("/x?cluster=a&cluster=b", "given twice");
    uri_bad("/x?a=%00", "NUL");
    uri_bad("/x?%00=a", "NUL");
    uri_bad("/x?a=%ff", "UTF-8");
    uri_bad("/x?a=%f", "hex digits");
    uri_bad("/x?=v", "without a name");
    char many[600] = "/x?";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "k%d=v&", i);
    uri_bad(many, "more than 32");
    /* a huge value: refused, and the message quotes nothing unbounded */
    size_t n = URI_ARG_VALUE_MAX + 100;
    char *big = malloc(n + 16);
    assert_non_null(big);
    strcpy(big, "/x?name=");
    memset(big + 8, 'a', n);
    big[8 + n] = '\0';
    uri_bad(big, "longer than");
    free(big);
}

/* ---- jsonbound ---- */

static const struct json_bounds bounds = {
    .depth = 4, .string_bytes = 8, .key_bytes = 6, .items = 3, .values = 12};

static void bound_ok(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    char where[128], why[128];
    if (json_bounds_check(j, &bounds, where, sizeof(where), why, sizeof(why)))
        fail_msg("%s refused at %s: %s", text, where, why);
    json_decref(j);
}

static void bound_bad(const char *text, const char *where_want, const char *why_want)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    char where[128], why[128];
    assert_int_equal(json_bounds_check(j, &bounds, where, sizeof(where), why, sizeof(why)), 1);
    assert_string_equal(where, where_want);
    if (!strstr(why, why_want))
        fail_msg("%s: \"%s\" does not say \"%s\"", text, why, why_want);
    json_decref(j);
}

static void test_json_bounds(void **state)
{
    (void)state;
    bound_ok("{}");
    bound_ok("{\"a\": {\"b\": {\"c\": [1]}}}"); /* four levels */
    bound_ok("{\"a\": \"12345678\"}");
    bound_bad("{\"a\": {\"b\": {\"c\": [[1]]}}}", "a.b.c[0]", "deeper than 4");
    bound_bad("{\"a\": \"123456789\"}", "a", "longer than 8 bytes");
    bound_bad("{\"abcdefg\": 1}", "abcdefg", "key longer than 6");
    bound_bad("{\"a\": [1, 2, 3, 4]}", "a", "more than 3 members");
    bound_bad("{\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4}", "", "more than 3 members");
    bound_bad("{\"a\": [1, 2, 3], \"b\": [1, 2, 3], \"c\": [1, 2, 3]}", "c[2]", "more than 12");
    bound_bad("{\"e\": [{\"x\": \"toolongstring\"}]}", "e[0].x", "longer than 8");
    /* a deep value: the path is cut to its buffer, between characters */
    json_t *deep = json_integer(1);
    for (int i = 0; i < 50; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "\xc3\xa9\xc3\xa9", deep);
        deep = o;
    }
    struct json_bounds b = bounds;
    b.key_bytes = 64;
    b.items = 10;
    b.values = 1000;
    char where[9], why[64];
    assert_int_equal(json_bounds_check(deep, &b, where, sizeof(where), why, sizeof(why)), 1);
    assert_true(utf8_valid(where, strlen(where)));
    json_decref(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid),  cmocka_unit_test(test_utf8_cut),
        cmocka_unit_test(test_uri_paths),   cmocka_unit_test(test_uri_query),
        cmocka_unit_test(test_json_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
