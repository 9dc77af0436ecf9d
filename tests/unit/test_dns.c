/*
 * Unit tests of the DNS question parser (include/moat/dns.h), the code the
 * datapath runs to match answers to queries: names, case, compression,
 * every kind of malformed message, truncation at every offset.
 */
#include "testutil.h"

#include "moat/dns.h"

#include <stdio.h>
#include <string.h>

/* A message: header (id, flags, counts) then `body`. */
static size_t msg(uint8_t *out, uint16_t id, uint16_t flags, uint16_t qd, const void *body,
                  size_t blen)
{
    uint8_t h[12] = {(uint8_t)(id >> 8), (uint8_t)id,        (uint8_t)(flags >> 8),
                     (uint8_t)flags,     (uint8_t)(qd >> 8), (uint8_t)qd};
    memcpy(out, h, 12);
    memcpy(out + 12, body, blen);
    return 12 + blen;
}

static const uint8_t www_a[] = "\3www\7example\3com\0\0\1\0\1";
#define WWW_A_LEN (sizeof(www_a) - 1)

static void test_question_parsed(void **state)
{
    (void)state;
    uint8_t m[512];
    size_t n = msg(m, 0xbeef, 0x0100, 1, www_a, WWW_A_LEN);
    struct moat_dns_q q;
    assert_int_equal(moat_dns_parse(m, (moat_u32)n, &q), 0);
    assert_int_equal(q.txid, 0xbeef);
    assert_int_equal(q.flags & 0x8000, 0);
    assert_int_equal(q.qtype, 1);
    assert_int_equal(q.qclass, 1);
    assert_int_equal(q.end, n);
}

static void test_case_and_type_matter_as_resolvers_do(void **state)
{
    (void)state;
    uint8_t a[512], b[512];
    struct moat_dns_q qa, qb;
    size_t na = msg(a, 1, 0x0100, 1, www_a, WWW_A_LEN);
    uint8_t upper[sizeof(www_a)];
    memcpy(upper, www_a, sizeof(www_a));
    upper[1] = 'W'; /* DNS names are case-insensitive: same question */
    size_t nb = msg(b, 1, 0x8180, 1, upper, WWW_A_LEN);
    assert_int_equal(moat_dns_parse(a, (moat_u32)na, &qa), 0);
    assert_int_equal(moat_dns_parse(b, (moat_u32)nb, &qb), 0);
    assert_int_equal(qa.question, qb.question);
    upper[WWW_A_LEN - 3] = 28; /* AAAA: another question */
    msg(b, 1, 0x8180, 1, upper, WWW_A_LEN);
    assert_int_equal(moat_dns_parse(b, (moat_u32)nb, &qb), 0);
    assert_true(qa.question != qb.question);
    static const uint8_t other[] = "\3www\7example\3org\0\0\1\0\1";
    nb = msg(b, 1, 0x8180, 1, other, sizeof(other) - 1);
    assert_int_equal(moat_dns_parse(b, (moat_u32)nb, &qb), 0);
    assert_true(qa.question != qb.question);
}

static void test_compression_pointers(void **state)
{
    (void)state;
    uint8_t m[512];
    /* a question that points back into an earlier name (of a crafted message) */
    static const uint8_t body[] = "\3www\7example\3com\0\0\1\0\1";
    size_t n = msg(m, 7, 0x8180, 1, body, sizeof(body) - 1);
    struct moat_dns_q q1, q2;
    assert_int_equal(moat_dns_parse(m, (moat_u32)n, &q1), 0);
    /* the same name as `www` + pointer to `example.com` placed before it */
    uint8_t m2[512];
    static const uint8_t body2[] = "\3www\300\014\0\1\0\1";
    size_t n2 = msg(m2, 7, 0x8180, 1, body2, sizeof(body2) - 1);
    /* pointing at offset 12 is pointing at itself: refused (not strictly backward... a loop) */
    assert_true(moat_dns_parse(m2, (moat_u32)n2, &q2) < 0);
    /* a pointer forward, and loops, are refused */
    static const uint8_t fwd[] = "\300\040\0\1\0\1";
    n2 = msg(m2, 7, 0x8180, 1, fwd, sizeof(fwd) - 1);
    assert_int_equal(moat_dns_parse(m2, (moat_u32)n2, &q2), -MOAT_DNS_ERR_NAME);
    (void)q1;
}

static void test_malformed_names(void **state)
{
    (void)state;
    uint8_t m[600], label[80];
    struct moat_dns_q q;
    /* a label of 64 bytes: the 0x40 type, refused */
    label[0] = 64;
    memset(label + 1, 'a', 64);
    label[65] = 0;
    memset(label + 66, 1, 4);
    size_t n = msg(m, 1, 0, 1, label, 66 + 4);
    assert_int_equal(moat_dns_parse(m, (moat_u32)n, &q), -MOAT_DNS_ERR_NAME);
    /* a name longer than 255 bytes */
    uint8_t longname[400];
    size_t at = 0;
    for (int i = 0; i < 5; i++) {
        longname[at++] = 63;
        memset(longname + at, 'x', 63);
        at += 63;
    }
    longname[at++] = 0;
    memset(longname + at, 1, 4);
    n = msg(m, 1, 0, 1, longname, at + 4);
    assert_int_equal(moat_dns_parse(m, (moat_u32)n, &q), -MOAT_DNS_ERR_NAME);
    /* not exactly one question */
    n = msg(m, 1, 0, 2, www_a, WWW_A_LEN);
    assert_int_equal(moat_dns_parse(m, (moat_u32)n, &q), -MOAT_DNS_ERR_COUNT);
    n = msg(m, 1, 0, 0, www_a, WWW_A_LEN);
    assert_int_equal(moat_dns_parse(m, (moat_u32)n, &q), -MOAT_DNS_ERR_COUNT);
}

static void test_truncated_at_every_offset(void **state)
{
    (void)state;
    uint8_t m[512];
    size_t n = msg(m, 1, 0x8180, 1, www_a, WWW_A_LEN);
    struct moat_dns_q q;
    for (size_t len = 0; len < n; len++)
        assert_true(moat_dns_parse(m, (moat_u32)len, &q) < 0);
    assert_int_equal(moat_dns_parse(m, (moat_u32)n, &q), 0);
}

static void test_walk_is_bounded(void **state)
{
    (void)state;
    /* a chain of pointers, each to the one before: stops after MOAT_DNS_JUMPS */
    uint8_t m[512];
    memset(m, 0, sizeof(m));
    m[5] = 1;
    size_t at = 12;
    m[at++] = 0xc0; /* the first points nowhere valid... */
    m[at++] = 0x0c;
    struct moat_dns_q q;
    assert_true(moat_dns_parse(m, (moat_u32)at + 4, &q) < 0);
    /* 500 bytes of zero-length... garbage: every step consumes a byte, so it ends */
    memset(m + 12, 1, 500);
    assert_true(moat_dns_parse(m, sizeof(m), &q) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_question_parsed),
        cmocka_unit_test(test_case_and_type_matter_as_resolvers_do),
        cmocka_unit_test(test_compression_pointers),
        cmocka_unit_test(test_malformed_names),
        cmocka_unit_test(test_truncated_at_every_offset),
        cmocka_unit_test(test_walk_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
