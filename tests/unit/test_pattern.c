/*
 * Unit tests for lib/pattern: the `*` patterns of network objects (SPEC 2).
 * `*` is any run of characters (also none), everything else matches itself.
 */
#include "testutil.h"

#include "pattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct case_ {
    const char *pattern;
    const char *s;
    bool match;
};

static void check_cases(const struct case_ *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pattern_match(c[i].pattern, c[i].s) != c[i].match)
            fail_msg("pattern \"%s\" vs \"%s\": expected %s", c[i].pattern, c[i].s,
                     c[i].match ? "match" : "no match");
}

static void test_star_alone(void **state)
{
    (void)state;
    static const struct case_ c[] = {
        {"*", "", true},  {"*", "a", true},     {"*", "anything at all", true},
        {"**", "", true}, {"***", "abc", true},
    };
    check_cases(c, sizeof(c) / sizeof(c[0]));
}

static void test_literal(void **state)
{
    (void)state;
    static const struct case_ c[] = {
        {"shop", "shop", true},  {"shop", "shops", false}, {"shop", "sho", false},
        {"shop", "Shop", false}, {"shop", "", false},      {"", "", true},
        {"", "a", false},        {"a.b", "a.b", true},     {"a.b", "axb", false},
        {"?", "a", false},       {"[a]", "a", false},      {"[a]", "[a]", true},
        {"a\\*", "a\\x", true}, /* no escapes: the backslash is literal */
    };
    check_cases(c, sizeof(c) / sizeof(c[0]));
}

static void test_prefix(void **state)
{
    (void)state;
    static const struct case_ c[] = {
        {"a*", "a", true},          {"a*", "abc", true},    {"a*", "ba", false},
        {"a*", "", false},          {"abc*", "abc", true},  {"abc*", "abcdef", true},
        {"abc*", "ab", false},      {"abc*", "abd", false}, {"abc*", "xabc", false},
        {"web*", "web-7d9f", true}, {"web*", "we", false},
    };
    check_cases(c, sizeof(c) / sizeof(c[0]));
}

static void test_suffix_and_infix(void **state)
{
    (void)state;
    static const struct case_ c[] = {
        {"*x", "x", true},
        {"*x", "abx", true},
        {"*x", "xa", false},
        {"*x", "", false},
        {"a*b", "ab", true},
        {"a*b", "axxb", true},
        {"a*b", "axxbc", false},
        {"a*b*c", "abc", true},
        {"a*b*c", "aXbYc", true},
        {"a*b*c", "aXcYb", false},
        {"a*b*c", "abcc", true},
        {"a*b*c", "acb", false},
        {"*a*", "a", true},
        {"*a*", "bab", true},
        {"*a*", "bbb", false},
        {"a**b", "ab", true},
        {"a**b", "a-b", true},
        {"*.example.com", "x.example.com", true},
        {"*.example.com", "example.com", false},
    };
    check_cases(c, sizeof(c) / sizeof(c[0]));
}

/* Cases where a greedy first choice is wrong and the match must backtrack. */
static void test_backtracking(void **state)
{
    (void)state;
    static const struct case_ c[] = {
        {"*ab", "aab", true},
        {"*ab", "abab", true},
        {"*ab", "aba", false},
        {"*aab", "aaab", true},
        {"a*ab", "aab", true},
        {"a*ab", "ab", false},
        {"*abc*abd", "abcabcabd", true},
        {"*abc*abd", "abdabc", false},
        {"a*b*c*d", "abcbcbcd", true},
        {"a*b*c*d", "abcbcbc", false},
        {"*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", true},
        {"*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
        {"mississippi", "mississippi", true},
        {"*sip*", "mississippi", true},
        {"m*iss*ppi", "mississippi", true},
        {"m*iss*ppi", "mississippy", false},
    };
    check_cases(c, sizeof(c) / sizeof(c[0]));
}

/* A naive recursive matcher, the reference for the random comparison below. */
static bool reference_match(const char *p, const char *s)
{
    if (!*p)
        return !*s;
    if (*p == '*')
        return reference_match(p + 1, s) || (*s && reference_match(p, s + 1));
    return *s == *p && reference_match(p + 1, s + 1);
}

static void random_text(char *buf, size_t max, const char *alphabet, unsigned *seed)
{
    size_t n = (size_t)(rand_r(seed) % (int)max);
    size_t k = strlen(alphabet);
    for (size_t i = 0; i < n; i++)
        buf[i] = alphabet[(size_t)rand_r(seed) % k];
    buf[n] = '\0';
}

static void test_random_against_reference(void **state)
{
    (void)state;
    unsigned seed = 12345;
    char p[10], s[12];
    for (int i = 0; i < 20000; i++) {
        random_text(p, sizeof(p) - 1, "ab*", &seed);
        random_text(s, sizeof(s) - 1, "ab", &seed);
        if (pattern_match(p, s) != reference_match(p, s))
            fail_msg("pattern \"%s\" vs \"%s\": got %d, reference says %d", p, s,
                     pattern_match(p, s), reference_match(p, s));
    }
}

/* Long inputs stay fast (no exponential backtracking). */
static void test_long_input(void **state)
{
    (void)state;
    char s[4097];
    memset(s, 'a', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    assert_false(pattern_match("*a*a*a*a*a*a*a*a*a*a*b", s));
    assert_true(pattern_match("*a*a*a*a*a*a*a*a*a*a*", s));
}

static void test_has_wildcard(void **state)
{
    (void)state;
    assert_true(pattern_has_wildcard("*"));
    assert_true(pattern_has_wildcard("web*"));
    assert_false(pattern_has_wildcard("web"));
    assert_false(pattern_has_wildcard(""));
}

static void test_check(void **state)
{
    (void)state;
    assert_null(pattern_check("*"));
    assert_null(pattern_check("shop"));
    assert_null(pattern_check("web-*.x"));
    assert_string_equal(pattern_check(""), "must not be empty");
    assert_string_equal(pattern_check("a b"), "contains a space or control character");
    assert_string_equal(pattern_check("a\tb"), "contains a space or control character");
    assert_string_equal(pattern_check("a\nb"), "contains a space or control character");
    assert_string_equal(pattern_check("a\x7f"), "contains a space or control character");
    char longp[MOAT_PATTERN_MAX + 2];
    memset(longp, 'x', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_string_equal(pattern_check(longp), "is longer than 255 characters");
    longp[MOAT_PATTERN_MAX] = '\0';
    assert_null(pattern_check(longp));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_star_alone),   cmocka_unit_test(test_literal),
        cmocka_unit_test(test_prefix),       cmocka_unit_test(test_suffix_and_infix),
        cmocka_unit_test(test_backtracking), cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_long_input),   cmocka_unit_test(test_has_wildcard),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
