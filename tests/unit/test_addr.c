/*
 * Unit tests for lib/addr: IPv4 and IPv6 addresses and prefixes in one
 * 128-bit form (IPv4 kept as ::ffff:a.b.c.d, an IPv4 /n as /(96+n)).
 */
#include "testutil.h"

#include "addr.h"

#include <errno.h>
#include <string.h>

static struct moat_addr A(const char *text) {
    struct moat_addr a;
    if (addr_parse(text, &a) != 0)
        fail_msg("address \"%s\" rejected", text);
    return a;
}

static struct moat_prefix
P(const char *text) {
    struct moat_prefix p;
    const char *why = NULL;
    if (prefix_parse(text, &p, &why) != 0)
        fail_msg("prefix \"%s\" rejected: %s", text, why);
    assert_null(why);
    return p;
}

static void
prefix_bad(const char *text, const char *why_expected)
{
    struct moat_prefix p;
    const char *why = NULL;
    if (prefix_parse(text, &p, &why) != -EINVAL)
        fail_msg("prefix \"%s\" accepted", text);
    assert_string_equal(why, why_expected);
}

static void test_addr_parse_format(void **state)
{
    (void)state;
    static const char *const round[] = {
        "10.244.1.5", "0.0.0.0", "255.255.255.255", "2001:db8::1",
        "::1",        "::",      "fe80::1:2",       "2001:db8:0:1:2:3:4:5"};
    char buf[MOAT_ADDR_STRLEN];
    for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
        struct moat_addr a = A(round[i]);
        addr_format(&a, buf, sizeof(buf));
        assert_string_equal(buf, round[i]);
    }
    struct moat_addr a = A("2001:DB8:0:0::1");
    addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "2001:db8::1");
    /* IPv4 is stored v4-mapped; the mapped IPv6 spelling is the same address. */
    a = A("10.1.2.3");
    assert_true(addr_is_v4(&a));
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
    assert_memory_equal(a.b, mapped, 16);
    struct moat_addr b = A("::ffff:10.1.2.3");
    assert_int_equal(addr_cmp(&a, &b), 0);
    addr_format(&b, buf, sizeof(buf));
    assert_string_equal(buf, "10.1.2.3");
    a = A("2001:db8::1");
    assert_false(addr_is_v4(&a));
    a = A("::10.1.2.3"); /* IPv4-compatible, not mapped: an IPv6 address */
    assert_false(addr_is_v4(&a));
}

static void test_addr_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",          "10.0.0",      "10.0.0.256",        "10.0.0.1.2", "10.0.0.1/32", " 10.0.0.1",
        "10.0.0.1 ", "2001:db8::g", "1:2:3:4:5:6:7:8:9", ":::",        "localhost",   "010.0.0.1x"};
    struct moat_addr a;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (addr_parse(bad[i], &a) != -EINVAL)
            fail_msg("address \"%s\" accepted", bad[i]);
}

static void test_addr_cmp(void **state)
{
    (void)state;
    struct moat_addr a = A("10.0.0.1"), b = A("10.0.0.2"), c = A("2001:db8::1");
    assert_true(addr_cmp(&a, &b) < 0);
    assert_true(addr_cmp(&b, &a) > 0);
    assert_int_equal(addr_cmp(&a, &a), 0);
    assert_true(addr_cmp(&a, &c) != 0);
}

static void test_prefix_parse_format(void **state)
{
    (void)state;
    char buf[MOAT_ADDR_STRLEN + 8];
    struct {
        const char *in, *out;
        unsigned len;
    } c[] = {
        {"203.0.113.0/24", "203.0.113.0/24", 120},
        {"0.0.0.0/0", "0.0.0.0/0", 96},
        {"10.0.0.1/32", "10.0.0.1/32", 128},
        {"10.0.0.1", "10.0.0.1/32", 128},
        {"10.0.0.0/8", "10.0.0.0/8", 104},
        {"2001:db8::/32", "2001:db8::/32", 32},
        {"::/0", "::/0", 0},
        {"2001:db8::1", "2001:db8::1/128", 128},
        {"2001:db8::1/128", "2001:db8::1/128", 128},
        {"::ffff:10.0.0.0/104", "10.0.0.0/8", 104}, /* the mapped spelling of 10.0.0.0/8 */
        {"::ffff:0:0/96", "0.0.0.0/0", 96},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        struct moat_prefix p = P(c[i].in);
        if (p.len != c[i].len)
            fail_msg("%s: length %u, expected %u", c[i].in, p.len, c[i].len);
        prefix_format(&p, buf, sizeof(buf));
        assert_string_equal(buf, c[i].out);
    }
}

static void test_prefix_invalid(void **state)
{
    (void)state;
    prefix_bad("10.0.0.1/8", "has host bits set");
    prefix_bad("11.0.0.0/7", "has host bits set");
    prefix_bad("::ffff:10.0.0.0/8", "has host bits set");
    prefix_bad("203.0.113.1/24", "has host bits set");
    prefix_bad("2001:db8::1/64", "has host bits set");
    prefix_bad("::1/127", "has host bits set");
    prefix_bad("10.0.0.0/33", "has an invalid prefix length");
    prefix_bad("2001:db8::/129", "has an invalid prefix length");
    prefix_bad("10.0.0.0/", "has an invalid prefix length");
    prefix_bad("10.0.0.0/-1", "has an invalid prefix length");
    prefix_bad("10.0.0.0/+8", "has an invalid prefix length");
    prefix_bad("10.0.0.0/ 8", "has an invalid prefix length");
    prefix_bad("10.0.0.0/8x", "has an invalid prefix length");
    prefix_bad("10.0.0.0/8/8", "has an invalid prefix length");
    prefix_bad("10.0.0.0/99999999999999999999", "has an invalid prefix length");
    prefix_bad("", "is not an IP address or prefix");
    prefix_bad("/8", "is not an IP address or prefix");
    prefix_bad("10.0.0/8", "is not an IP address or prefix");
    prefix_bad("example.com/8", "is not an IP address or prefix");
    prefix_bad("2001:db8::/32 ", "has an invalid prefix length");
    char longtext[200];
    memset(longtext, '1', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = '\0';
    prefix_bad(longtext, "is not an IP address or prefix");
}

static void test_contains(void **state)
{
    (void)state;
    struct moat_prefix p = P("10.0.0.0/8");
    struct moat_addr in1 = A("10.0.0.0"), in2 = A("10.255.255.255"), out1 = A("11.0.0.0"),
                     out2 = A("9.255.255.255");
    assert_true(prefix_contains(&p, &in1));
    assert_true(prefix_contains(&p, &in2));
    assert_false(prefix_contains(&p, &out1));
    assert_false(prefix_contains(&p, &out2));

    /* Lengths that do not fall on a byte. */
    p = P("192.168.4.0/22");
    struct moat_addr x = A("192.168.7.255"), y = A("192.168.8.0"), z = A("192.168.3.255");
    assert_true(prefix_contains(&p, &x));
    assert_false(prefix_contains(&p, &y));
    assert_false(prefix_contains(&p, &z));

    p = P("10.0.0.1/32");
    x = A("10.0.0.1");
    y = A("10.0.0.0");
    assert_true(prefix_contains(&p, &x));
    assert_false(prefix_contains(&p, &y));

    p = P("0.0.0.0/0");
    x = A("255.255.255.255");
    assert_true(prefix_contains(&p, &x));

    p = P("2001:db8::/33");
    x = A("2001:db8:7fff::1");
    y = A("2001:db8:8000::");
    assert_true(prefix_contains(&p, &x));
    assert_false(prefix_contains(&p, &y));

    struct moat_prefix h = prefix_host(&x);
    assert_int_equal(h.len, 128);
    assert_true(prefix_contains(&h, &x));
    assert_false(prefix_contains(&h, &y));
}

/* IPv4 prefixes hold only IPv4 addresses, IPv6 prefixes outside ::ffff:0:0/96 only IPv6. */
static void test_families_do_not_mix(void **state)
{
    (void)state;
    struct moat_prefix v4all = P("0.0.0.0/0"), v4 = P("10.0.0.0/8"), v6 = P("2000::/3"),
                       v6doc = P("2001:db8::/32");
    struct moat_addr a4 = A("10.1.2.3"), a6 = A("2001:db8::a01:203"), compat = A("::a01:203"),
                     low6 = A("::1");
    assert_true(prefix_contains(&v4all, &a4));
    assert_false(prefix_contains(&v4all, &a6));
    assert_false(prefix_contains(&v4all, &compat));
    assert_false(prefix_contains(&v4all, &low6));
    assert_false(prefix_contains(&v4, &compat));
    assert_false(prefix_contains(&v4, &a6));
    assert_false(prefix_contains(&v6, &a4));
    assert_false(prefix_contains(&v6doc, &a4));
    assert_true(prefix_contains(&v6doc, &a6));
    assert_false(prefix_covers(&v6, &v4all));
    assert_false(prefix_covers(&v4all, &v6));
    /* Even ::/0, the whole 128-bit space, holds no IPv4 address. */
    struct moat_prefix all6 = P("::/0"), low = P("::/80"), mapped = P("::ffff:0:0/96");
    assert_false(prefix_contains(&all6, &a4));
    assert_true(prefix_contains(&all6, &a6));
    assert_true(prefix_contains(&all6, &compat));
    assert_false(prefix_contains(&low, &a4));
    assert_false(prefix_covers(&all6, &v4all));
    assert_false(prefix_covers(&all6, &v4));
    assert_true(prefix_covers(&all6, &v6));
    /* ::ffff:0:0/96 is the IPv6 spelling of 0.0.0.0/0. */
    assert_true(prefix_contains(&mapped, &a4));
    assert_true(prefix_covers(&mapped, &v4));
    assert_true(prefix_is_v4(&mapped));
    assert_true(prefix_is_v4(&v4all));
    assert_true(prefix_is_v4(&v4));
    assert_false(prefix_is_v4(&all6));
    assert_false(prefix_is_v4(&low));
    assert_false(prefix_is_v4(&v6));
}

static void test_covers(void **state)
{
    (void)state;
    struct moat_prefix p8 = P("10.0.0.0/8"), p16 = P("10.1.0.0/16"), other = P("11.0.0.0/16"),
                       h = P("10.1.2.3/32"), all = P("0.0.0.0/0");
    assert_true(prefix_covers(&p8, &p16));
    assert_true(prefix_covers(&p8, &p8));
    assert_false(prefix_covers(&p16, &p8));
    assert_false(prefix_covers(&p8, &other));
    assert_true(prefix_covers(&p16, &h));
    assert_true(prefix_covers(&all, &p8));
    assert_false(prefix_covers(&p8, &all));
    struct moat_prefix q = P("2001:db8::/32"), r = P("2001:db8:1::/48"), s = P("2001:db9::/48");
    assert_true(prefix_covers(&q, &r));
    assert_false(prefix_covers(&q, &s));
    assert_false(prefix_covers(&r, &q));
}

/* What a quarantine may hold: unicast sources only, in both families. */
static void test_not_source(void **state)
{
    (void)state;
    static const struct {
        const char *addr, *why;
    } cases[] = {
        {"10.1.2.3", NULL},
        {"203.0.113.9", NULL},
        {"2001:db8::7", NULL},
        {"::ffff:10.0.0.1", NULL},
        {"::ffff:127.0.0.1", "loopback"},
        {"::ffff:224.0.0.5", "multicast"},
        {"fec0::1", NULL},
        {"0.0.0.0", "unspecified"},
        {"0.1.2.3", "unspecified"},
        {"127.0.0.1", "loopback"},
        {"127.9.9.9", "loopback"},
        {"224.0.0.1", "multicast"},
        {"239.255.255.250", "multicast"},
        {"255.255.255.255", "broadcast"},
        {"169.254.1.1", "link-local"},
        {"::", "unspecified"},
        {"::1", "loopback"},
        {"ff02::1", "multicast"},
        {"fe80::1", "link-local"},
        {"febf::1", "link-local"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct moat_addr a;
        assert_int_equal(addr_parse(cases[i].addr, &a), 0);
        const char *why = addr_not_source(&a);
        if (!cases[i].why)
            assert_null(why);
        else
            assert_string_equal(why, cases[i].why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse_format),
        cmocka_unit_test(test_addr_invalid),
        cmocka_unit_test(test_addr_cmp),
        cmocka_unit_test(test_prefix_parse_format),
        cmocka_unit_test(test_prefix_invalid),
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_families_do_not_mix),
        cmocka_unit_test(test_covers),
        cmocka_unit_test(test_not_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
