/*
 * Unit tests for lib/ports: destination port ranges (SPEC 3) — parsing,
 * the count and overlap checks, and the split into aligned prefixes that
 * the datapath's LPM lookup uses.
 */
#include "testutil.h"

#include "ports.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void parse_ok(const char *text, unsigned lo, unsigned hi)
{
    struct port_range r = {0, 0};
    char why[200] = "";
    if (port_range_parse(text, &r, why, sizeof(why)) != 0)
        fail_msg("\"%s\" rejected: %s", text, why);
    assert_int_equal(r.lo, lo);
    assert_int_equal(r.hi, hi);
}

static void parse_bad(const char *text, const char *message)
{
    struct port_range r = {7, 7};
    char why[200] = "";
    assert_int_equal(port_range_parse(text, &r, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, message);
    assert_int_equal(r.lo, 7); /* untouched on error */
}

static void test_parse(void **state)
{
    (void)state;
    parse_ok("80", 80, 80);
    parse_ok("80/80", 80, 80);
    parse_ok("20/30", 20, 30);
    parse_ok(" 20/30 ", 20, 30);
    parse_ok("\t443\n", 443, 443);
    parse_ok("1/65535", 1, 65535);
    parse_ok("65535", 65535, 65535);
    parse_ok("1", 1, 1);
    parse_ok("0080/0090", 80, 90);
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_bad("0/10", "\"0/10\": ports must be in 1..65535");
    parse_bad("10/0", "\"10/0\": ports must be in 1..65535");
    parse_bad("0", "\"0\": ports must be in 1..65535");
    parse_bad("65536", "\"65536\": ports must be in 1..65535");
    parse_bad("1/65536", "\"1/65536\": ports must be in 1..65535");
    parse_bad("90/80", "\"90/80\": lo 90 is greater than hi 80");
    parse_bad("abc", "\"abc\" is not a port range (lo/hi or a single port)");
    parse_bad("", "\"\" is not a port range (lo/hi or a single port)");
    parse_bad("   ", "\"   \" is not a port range (lo/hi or a single port)");
    parse_bad("80/", "\"80/\" is not a port range (lo/hi or a single port)");
    parse_bad("/80", "\"/80\" is not a port range (lo/hi or a single port)");
    parse_bad("80-90", "\"80-90\" is not a port range (lo/hi or a single port)");
    parse_bad("80/90/100", "\"80/90/100\" is not a port range (lo/hi or a single port)");
    parse_bad("8 0", "\"8 0\" is not a port range (lo/hi or a single port)");
    parse_bad("80 / 90", "\"80 / 90\" is not a port range (lo/hi or a single port)");
    parse_bad("-1", "\"-1\" is not a port range (lo/hi or a single port)");
    parse_bad("+80", "\"+80\" is not a port range (lo/hi or a single port)");
    parse_bad("0x50", "\"0x50\" is not a port range (lo/hi or a single port)");
    parse_bad("99999999999999999999",
              "\"99999999999999999999\" is not a port range (lo/hi or a single port)");
}

struct collected {
    int n;
    char msg[16][128];
};

static void collect(void *ctx, const char *message)
{
    struct collected *c = ctx;
    if (c->n < 16)
        snprintf(c->msg[c->n], sizeof(c->msg[0]), "%s", message);
    c->n++;
}

static void test_ranges_check(void **state)
{
    (void)state;
    struct collected c = {0};
    struct port_range ok[] = {{80, 90}, {91, 100}, {1, 79}, {443, 443}, {101, 101}};
    assert_int_equal(port_ranges_check(ok, 5, collect, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(port_ranges_check(ok, 0, collect, &c), 0);

    struct port_range overlap[] = {{80, 90}, {85, 100}};
    assert_int_equal(port_ranges_check(overlap, 2, collect, &c), 1);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.msg[0], "ranges 80/90 and 85/100 overlap");

    memset(&c, 0, sizeof(c));
    struct port_range touching[] = {{80, 90}, {90, 100}};
    assert_int_equal(port_ranges_check(touching, 2, collect, &c), 1);
    assert_string_equal(c.msg[0], "ranges 80/90 and 90/100 overlap");

    memset(&c, 0, sizeof(c));
    struct port_range inside[] = {{1, 65535}, {53, 53}, {22, 22}};
    assert_int_equal(port_ranges_check(inside, 3, collect, &c), 2);
    assert_string_equal(c.msg[0], "ranges 1/65535 and 53/53 overlap");
    assert_string_equal(c.msg[1], "ranges 1/65535 and 22/22 overlap");

    memset(&c, 0, sizeof(c));
    struct port_range dup[] = {{443, 443}, {443, 443}};
    assert_int_equal(port_ranges_check(dup, 2, collect, &c), 1);
    assert_string_equal(c.msg[0], "ranges 443/443 and 443/443 overlap");
}

static void test_ranges_check_count(void **state)
{
    (void)state;
    struct port_range r[9];
    for (unsigned i = 0; i < 9; i++)
        r[i] = (struct port_range){(uint16_t)(10 * i + 1), (uint16_t)(10 * i + 5)};
    struct collected c = {0};
    assert_int_equal(port_ranges_check(r, 8, collect, &c), 0);
    assert_int_equal(port_ranges_check(r, 9, collect, &c), 1);
    assert_string_equal(c.msg[0], "9 ranges given, at most 8 are allowed");
    /* Count and overlap problems are reported together. */
    memset(&c, 0, sizeof(c));
    r[8] = (struct port_range){3, 4};
    assert_int_equal(port_ranges_check(r, 9, collect, &c), 2);
    assert_string_equal(c.msg[0], "9 ranges given, at most 8 are allowed");
    assert_string_equal(c.msg[1], "ranges 1/5 and 3/4 overlap");
}

/* Checks that `p[0..n)` is disjoint, aligned, minimal in count, and covers exactly [lo, hi]. */
static void check_prefixes(unsigned lo, unsigned hi)
{
    struct port_prefix p[MOAT_PORT_PREFIXES_MAX];
    size_t n = port_range_prefixes((uint16_t)lo, (uint16_t)hi, p);
    if (n == 0 || n > 30)
        fail_msg("[%u, %u]: %zu prefixes", lo, hi, n);
    uint32_t next = lo;
    for (size_t i = 0; i < n; i++) {
        if (p[i].len > 16)
            fail_msg("[%u, %u]: prefix %zu has length %u", lo, hi, i, p[i].len);
        uint32_t size = 1u << (16 - p[i].len);
        if (p[i].port % size != 0)
            fail_msg("[%u, %u]: prefix %u/%u is not aligned", lo, hi, p[i].port, p[i].len);
        /* In order, touching: so disjoint and without holes. */
        if (p[i].port != next)
            fail_msg("[%u, %u]: prefix %zu starts at %u, expected %u", lo, hi, i, p[i].port, next);
        next = p[i].port + size;
        /* Fewest prefixes: two neighbours of one size never form an aligned pair. */
        if (i > 0 && p[i - 1].len == p[i].len && p[i - 1].len > 0 &&
            p[i - 1].port % (2 * size) == 0)
            fail_msg("[%u, %u]: prefixes %zu and %zu could be merged", lo, hi, i - 1, i);
    }
    if (next != hi + 1)
        fail_msg("[%u, %u]: prefixes end at %u", lo, hi, next - 1);
}

static void test_prefixes_examples(void **state)
{
    (void)state;
    struct port_prefix p[MOAT_PORT_PREFIXES_MAX];
    assert_int_equal(port_range_prefixes(80, 80, p), 1);
    assert_int_equal(p[0].port, 80);
    assert_int_equal(p[0].len, 16);

    assert_int_equal(port_range_prefixes(1, 65535, p), 16);
    assert_int_equal(p[0].port, 1);
    assert_int_equal(p[0].len, 16);
    assert_int_equal(p[15].port, 32768);
    assert_int_equal(p[15].len, 1);

    assert_int_equal(port_range_prefixes(0, 65535, p), 1);
    assert_int_equal(p[0].port, 0);
    assert_int_equal(p[0].len, 0);

    assert_int_equal(port_range_prefixes(1024, 2047, p), 1);
    assert_int_equal(p[0].port, 1024);
    assert_int_equal(p[0].len, 6);

    /* The worst case: 30 prefixes. */
    assert_int_equal(port_range_prefixes(1, 65534, p), 30);
    check_prefixes(1, 65534);

    assert_int_equal(port_range_prefixes(65535, 65535, p), 1);
    assert_int_equal(p[0].port, 65535);
}

static void test_prefixes_exhaustive_small(void **state)
{
    (void)state;
    for (unsigned lo = 1; lo <= 300; lo++)
        for (unsigned hi = lo; hi <= 300; hi++)
            check_prefixes(lo, hi);
    for (unsigned lo = 65000; lo <= 65535; lo += 7)
        for (unsigned hi = lo; hi <= 65535; hi += 3)
            check_prefixes(lo, hi);
}

static void test_prefixes_random(void **state)
{
    (void)state;
    unsigned seed = 4242;
    for (int i = 0; i < 100000; i++) {
        unsigned a = (unsigned)rand_r(&seed) % 65536;
        unsigned b = (unsigned)rand_r(&seed) % 65536;
        if (i % 4 == 0) /* also short ranges */
            b = a + (unsigned)rand_r(&seed) % 64;
        if (b > 65535)
            b = 65535;
        check_prefixes(a < b ? a : b, a < b ? b : a);
    }
}

static void test_format(void **state)
{
    (void)state;
    char buf[12];
    struct port_range r = {1, 65535};
    port_range_format(&r, buf, sizeof(buf));
    assert_string_equal(buf, "1/65535");
    r = (struct port_range){80, 80};
    port_range_format(&r, buf, sizeof(buf));
    assert_string_equal(buf, "80/80");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_ranges_check),
        cmocka_unit_test(test_ranges_check_count),
        cmocka_unit_test(test_prefixes_examples),
        cmocka_unit_test(test_prefixes_exhaustive_small),
        cmocka_unit_test(test_prefixes_random),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
