/*
 * Unit tests for lib/compat: the kernel-support table parser and the
 * certification check (SPEC 5), run against the real data/kernel-support.tsv
 * (the tests run from the repository root) and against small inline tables.
 */
#include "testutil.h"

#include "compat.h"
#include "diag.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REAL_TABLE "data/kernel-support.tsv"

static int setup_real(void **state)
{
    struct moat_diags d = {0};
    struct compat_table *t = NULL;
    int err = compat_table_load(&t, REAL_TABLE, &d);
    for (size_t i = 0; i < d.count; i++)
        fprintf(stderr, "%s\n", d.items[i].text);
    diags_clear(&d);
    if (err < 0)
        return -1;
    *state = t;
    return 0;
}

static int teardown_real(void **state)
{
    compat_table_free(*state);
    return 0;
}

/* Checks os + kernel against the table in *state and returns the result. */
static struct compat_result check(void **state, const char *os, const char *kernel)
{
    struct compat_result r;
    assert_int_equal(compat_check(*state, os, kernel, &r), 0);
    return r;
}

static void assert_certified(void **state, const char *os, const char *kernel, const char *pattern)
{
    struct compat_result r = check(state, os, kernel);
    if (!r.certified)
        fail_msg("%s / %s: expected certified, got: %s", os, kernel, r.why);
    assert_int_equal(r.reason, COMPAT_CERTIFIED);
    assert_string_equal(r.row.kernel, pattern);
    assert_string_equal(r.why, "");
}

static void assert_not_certified(void **state, const char *os, const char *kernel,
                                 enum compat_reason reason)
{
    struct compat_result r = check(state, os, kernel);
    if (r.certified)
        fail_msg("%s / %s: expected not certified, matched line %d", os, kernel, r.row.line);
    assert_int_equal(r.reason, reason);
    assert_true(r.why[0] != '\0');
}

/* ---- the real table ------------------------------------------------------ */

static void test_real_table_loads(void **state)
{
    const struct compat_table *t = *state;
    /* Ubuntu 4 versions x 35 kernels, CentOS 19 x 4, Alibaba Cloud Linux 1 x 14. */
    assert_int_equal(compat_table_count(t), 4 * 35 + 19 * 4 + 1 * 14);
    assert_string_equal(compat_table_name(t), REAL_TABLE);
}

static void test_every_listed_version_is_certified(void **state)
{
    static const char *const centos[] = {"6.5",      "6.6",      "6.7",      "6.8",      "6.9",
                                         "6.10",     "7.0-1406", "7.1-1503", "7.2-1511", "7.3-1611",
                                         "7.4-1708", "7.5-1804", "7.6-1810", "7.7-1908", "7.8-2003",
                                         "7.9-2009", "8.0-1905", "8.1-1911", "8.2-2004"};
    static const char *const ubuntu[] = {"14.04", "16.04", "18.04", "20.04"};
    char os[64];
    for (size_t i = 0; i < sizeof(centos) / sizeof(centos[0]); i++) {
        snprintf(os, sizeof(os), "CentOS %s", centos[i]);
        assert_certified(state, os, "3.10.0-1160.el7.x86_64", "3.10.0-**");
    }
    for (size_t i = 0; i < sizeof(ubuntu) / sizeof(ubuntu[0]); i++) {
        snprintf(os, sizeof(os), "Ubuntu %s", ubuntu[i]);
        assert_certified(state, os, "5.4.0-73-generic", "5.4.0-73-generic");
    }
    assert_certified(state, "Alibaba Cloud Linux 2.1903", "4.19.91-24.1.al7.x86_64",
                     "4.19.91-24.1.al7.x86_64");
}

static void test_row_of_a_match(void **state)
{
    struct compat_result r = check(state, "CentOS 7.9-2009", "3.10.0-1160.el7.x86_64");
    assert_true(r.certified);
    assert_int_equal(r.row.line, 220);
    assert_string_equal(r.row.os, "CentOS");
    assert_string_equal(r.row.version, "7.9-2009");
    assert_string_equal(r.row.kernel, "3.10.0-**");
    assert_null(r.row.max);
    assert_int_equal(r.elsewhere.line, 0);

    r = check(state, "CentOS 8.2-2004", "4.18.0-193.el8.x86_64");
    assert_true(r.certified);
    assert_int_equal(r.row.line, 233);
    assert_string_equal(r.row.max, "240.15.1");
}

static void test_pattern_2_6_32(void **state)
{
    assert_certified(state, "CentOS 6.10", "2.6.32-754.35.1.el6.x86_64", "2.6.32-**");
    assert_certified(state, "CentOS 6.5", "2.6.32-431.el6.x86_64", "2.6.32-**");
    assert_not_certified(state, "CentOS 6.10", "2.6.33-1.el6", COMPAT_KERNEL_NOT_LISTED);
    assert_not_certified(state, "CentOS 6.10", "2.6.32", COMPAT_KERNEL_NOT_LISTED);
    assert_not_certified(state, "CentOS 6.10", "12.6.32-1", COMPAT_KERNEL_NOT_LISTED);
}

static void test_pattern_3_10_0(void **state)
{
    assert_certified(state, "CentOS 7.9-2009", "3.10.0-1160.el7.x86_64", "3.10.0-**");
    assert_certified(state, "CentOS 7.0-1406", "3.10.0-123.el7.x86_64", "3.10.0-**");
    assert_certified(state, "CentOS 7.9-2009", "3.10.0-1160.al7.1.x86_64", "3.10.0-**");
    assert_not_certified(state, "CentOS 7.9-2009", "3.10.1-1", COMPAT_KERNEL_NOT_LISTED);
    assert_not_certified(state, "CentOS 7.9-2009", "3.10.0", COMPAT_KERNEL_NOT_LISTED);
    assert_not_certified(state, "CentOS 7.9-2009", "3.10.00-1", COMPAT_KERNEL_NOT_LISTED);
}

static void test_pattern_4_18_0_bound(void **state)
{
    static const struct {
        const char *kernel;
        bool in;
    } cases[] = {
        {"4.18.0-240.15.1", true},
        {"4.18.0-240.15.1.el8_3.x86_64", true},
        {"4.18.0-240.15.1.el8_3", true},
        {"4.18.0-240.15", true},
        {"4.18.0-240", true},
        {"4.18.0-240.15.1.0", true},
        {"4.18.0-239.99.99", true},
        {"4.18.0-193.el8.x86_64", true},
        {"4.18.0-80.el8.x86_64", true},
        {"4.18.0-0.1", true},
        {"4.18.0-0240.015.001.el8", true},
        {"4.18.0-240.22.1.el8_3", false},
        {"4.18.0-240.15.2", false},
        {"4.18.0-240.15.1.1", false},
        {"4.18.0-240.16", false},
        {"4.18.0-241", false},
        {"4.18.0-305.3.1.el8.x86_64", false},
        {"4.18.0-99999999999999999999999.1", false},
        {"4.18.1-1", false},
        {"4.18.0", false},
        {"4.18.0-", false},
        {"4.18.0-el8", false},
        {"4.18.0-.240", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].in)
            assert_certified(state, "CentOS 8.2-2004", cases[i].kernel, "4.18.0-**");
        else
            assert_not_certified(state, "CentOS 8.2-2004", cases[i].kernel,
                                 COMPAT_KERNEL_NOT_LISTED);
    }
}

static void test_bound_explained(void **state)
{
    struct compat_result r = check(state, "CentOS 8.2-2004", "4.18.0-240.22.1.el8_3");
    assert_false(r.certified);
    assert_string_equal(r.row.kernel, "4.18.0-**");
    assert_string_equal(r.why, "kernel \"4.18.0-240.22.1.el8_3\" is past the bound of 4.18.0-** "
                               "(up to 4.18.0-240.15.1) for CentOS 8.2-2004");

    r = check(state, "CentOS 8.2-2004", "4.18.0-");
    assert_non_null(strstr(r.why, "has no build number"));
}

static void test_literal_rows(void **state)
{
    assert_certified(state, "Ubuntu 16.04", "4.4.0-104-generic", "4.4.0-104-generic");
    assert_certified(state, "Ubuntu 14.04", "4.15.0-1047-gcp", "4.15.0-1047-gcp");
    assert_certified(state, "CentOS 7.9-2009", "5.4.42-200.el7.x86_64", "5.4.42-200.el7.x86_64");
    assert_certified(state, "Alibaba Cloud Linux 2.1903", "3.10.0-1160.al7.1.x86_64",
                     "3.10.0-1160.al7.1.x86_64");
    assert_not_certified(state, "Ubuntu 16.04", "4.4.0-104-generic-x", COMPAT_KERNEL_NOT_LISTED);
    assert_not_certified(state, "Ubuntu 16.04", "4.4.0-104-GENERIC", COMPAT_KERNEL_NOT_LISTED);
    assert_not_certified(state, "Alibaba Cloud Linux 2.1903", "3.10.0-1160.el7.x86_64",
                         COMPAT_KERNEL_NOT_LISTED);
}

static void test_near_miss_kernel(void **state)
{
    struct compat_result r = check(state, "Ubuntu 16.04", "4.4.0-104-generi");
    assert_false(r.certified);
    assert_int_equal(r.reason, COMPAT_KERNEL_NOT_LISTED);
    assert_int_equal(r.row.line, 54);
    assert_string_equal(r.row.kernel, "4.4.0-104-generic");
    assert_int_equal(r.elsewhere.line, 0);
    assert_string_equal(r.why, "kernel \"4.4.0-104-generi\" is not listed for Ubuntu 16.04");
}

static void test_kernel_of_another_os(void **state)
{
    struct compat_result r = check(state, "CentOS 7.9-2009", "5.4.0-31-generic");
    assert_false(r.certified);
    assert_int_equal(r.reason, COMPAT_KERNEL_NOT_LISTED);
    assert_string_equal(r.row.os, "CentOS");
    assert_string_equal(r.row.version, "7.9-2009");
    assert_string_equal(r.elsewhere.os, "Ubuntu");
    assert_string_equal(r.elsewhere.kernel, "5.4.0-31-generic");
    assert_string_equal(r.why, "kernel \"5.4.0-31-generic\" is not listed for CentOS 7.9-2009; "
                               "the kernel is listed for Ubuntu 14.04");
}

static void test_ubuntu_18_04(void **state)
{
    assert_certified(state, "Ubuntu 18.04", "4.15.0-23-generic", "4.15.0-23-generic");
    struct compat_result r = check(state, "Ubuntu 18.40", "4.15.0-23-generic");
    assert_false(r.certified);
    assert_int_equal(r.reason, COMPAT_VERSION_NOT_LISTED);
    assert_string_equal(r.row.version, "18.04");
    assert_string_equal(r.row.kernel, "4.15.0-23-generic");
    assert_string_equal(r.elsewhere.version, "18.04");
    assert_string_equal(r.why, "Ubuntu version \"18.40\" is not in the table; "
                               "the kernel is listed for Ubuntu 18.04");
}

static void test_unknown_os(void **state)
{
    struct compat_result r = check(state, "Debian 12", "6.1.0-18-amd64");
    assert_false(r.certified);
    assert_int_equal(r.reason, COMPAT_UNKNOWN_OS);
    assert_int_equal(r.row.line, 0);
    assert_string_equal(r.why, "OS \"Debian 12\" is not in the table (it lists Ubuntu, CentOS, "
                               "Alibaba Cloud Linux)");
    assert_not_certified(state, "Debian", "6.1.0-18-amd64", COMPAT_UNKNOWN_OS);
    assert_not_certified(state, "Alibaba Cloud 2.1903", "4.19.91-23.al7.x86_64", COMPAT_UNKNOWN_OS);
    assert_not_certified(state, "Red Hat Enterprise Linux 8.2", "4.18.0-193.el8.x86_64",
                         COMPAT_UNKNOWN_OS);
}

static void test_os_spellings(void **state)
{
    const char *k = "3.10.0-1160.el7.x86_64";
    assert_certified(state, "centos 7.9-2009", k, "3.10.0-**");
    assert_certified(state, "CENTOS 7.9-2009", k, "3.10.0-**");
    assert_certified(state, "  CentOS \t 7.9-2009 \n", k, "3.10.0-**");
    assert_certified(state, "CentOS Linux 7.9-2009", k, "3.10.0-**");
    assert_certified(state, "CentOS 7.9", k, "3.10.0-**");
    assert_certified(state, "alibaba cloud linux 2.1903", "4.19.91-23.al7.x86_64",
                     "4.19.91-23.al7.x86_64");
    assert_certified(state, "Alibaba Cloud Linux (Aliyun Linux) 2.1903", "4.19.91-23.al7.x86_64",
                     "4.19.91-23.al7.x86_64");
    assert_certified(state, "CentOS 7.9-2009", " 3.10.0-1160.el7.x86_64\n", "3.10.0-**");
}

static void test_versions_not_listed(void **state)
{
    const char *k = "3.10.0-1160.el7.x86_64";
    assert_not_certified(state, "CentOS 7", k, COMPAT_VERSION_NOT_LISTED);
    assert_not_certified(state, "CentOS 7.9-2010", k, COMPAT_VERSION_NOT_LISTED);
    assert_not_certified(state, "CentOS 2009", k, COMPAT_VERSION_NOT_LISTED);
    assert_not_certified(state, "CentOS 6", k, COMPAT_VERSION_NOT_LISTED);
    assert_not_certified(state, "Ubuntu 18.04.5", "4.15.0-23-generic", COMPAT_VERSION_NOT_LISTED);
    assert_not_certified(state, "Ubuntu 22.04", "5.15.0-91-generic", COMPAT_VERSION_NOT_LISTED);
    assert_not_certified(state, "CentOS Linux Linux 7.9-2009", k, COMPAT_UNKNOWN_OS);

    struct compat_result r = check(state, "CentOS", k);
    assert_int_equal(r.reason, COMPAT_VERSION_NOT_LISTED);
    assert_string_equal(r.why, "no version given for CentOS (expected \"CentOS 6.5\")");
    r = check(state, "CentOS Linux", k);
    assert_int_equal(r.reason, COMPAT_VERSION_NOT_LISTED);
    r = check(state, "CentOS 7", k);
    assert_string_equal(r.row.version, "7.0-1406");
}

static void test_check_rejects_bad_arguments(void **state)
{
    struct compat_result r;
    assert_int_equal(compat_check(*state, "", "3.10.0-1", &r), -EINVAL);
    assert_false(r.certified);
    assert_int_equal(compat_check(*state, "CentOS 7.9-2009", " \t", &r), -EINVAL);
    assert_int_equal(compat_check(*state, NULL, "3.10.0-1", &r), -EINVAL);
    assert_int_equal(compat_check(*state, "CentOS 7.9-2009", NULL, &r), -EINVAL);
    assert_int_equal(compat_check(NULL, "CentOS 7.9-2009", "3.10.0-1", &r), -EINVAL);
    assert_int_equal(compat_check(*state, "CentOS 7.9-2009", "3.10.0-1", NULL), -EINVAL);
}

/* ---- inline tables ------------------------------------------------------- */

static void test_parse_comments_blanks_crlf(void **state)
{
    (void)state;
    const char *text = "# header\r\n"
                       "\r\n"
                       "   # indented comment\n"
                       "Foo OS\t1.0\t5.10.**\r\n"
                       "Foo OS\t1.0\t6.1.0-1\n"
                       "\t\n"
                       "Bar\t2\t4.18.0-**\t240.15.1"; /* no final newline */
    struct moat_diags d = {0};
    struct compat_table *t = NULL;
    assert_int_equal(compat_table_parse(&t, text, "inline.tsv", &d), 0);
    assert_int_equal(d.count, 0);
    assert_int_equal(compat_table_count(t), 3);

    struct compat_result r;
    assert_int_equal(compat_check(t, "foo os 1.0", "5.10.0-26-amd64", &r), 0);
    assert_true(r.certified);
    assert_int_equal(r.row.line, 4);
    assert_int_equal(compat_check(t, "Foo OS 1.0", "5.10.anything", &r), 0);
    assert_true(r.certified); /* a pattern without max is a plain string prefix */
    assert_int_equal(compat_check(t, "Foo OS 1.0", "5.100.1", &r), 0);
    assert_false(r.certified);
    assert_int_equal(compat_check(t, "Foo OS 1.0", "6.1.0-1", &r), 0);
    assert_true(r.certified);
    assert_int_equal(r.row.line, 5);
    assert_int_equal(compat_check(t, "Bar 2", "4.18.0-240.15.1", &r), 0);
    assert_true(r.certified);
    assert_int_equal(r.row.line, 7);
    assert_int_equal(compat_check(t, "Bar 2", "4.18.0-240.15.1.1", &r), 0);
    assert_false(r.certified);
    compat_table_free(t);
    diags_clear(&d);
}

static void test_parse_errors_name_file_and_line(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "Foo\t1.0\n"                 /* 2: too few columns */
                       "Foo\t1.0\t\n"               /* 3: empty kernel */
                       "Foo\t1.0\t5.*.1\n"          /* 4: '*' inside */
                       "Foo\t1.0\t5.4.0-1\t2\n"     /* 5: max on a literal */
                       "Foo\t1.0\t5.4.0-**\t2.x\n"  /* 6: bad max */
                       "Foo\t1.0\t5.4.0-**\t1\tx\n" /* 7: too many columns */
                       "\t1.0\t5.4.0-1\n"           /* 8: empty os */
                       "Foo\t1 0\t5.4.0-1\n"        /* 9: space in version */
                       "Foo \t1.0\t5.4.0-1\n"       /* 10: trailing space */
                       "Foo\t1.0\t**\n"             /* 11: no prefix */
                       "Foo\xff\t1.0\t5.4.0-1\n"    /* 12: not UTF-8 */
                       "Foo\t1.0\t5.4.0-1\n";       /* 13: fine */
    static const char *const want[] = {
        "bad.tsv:2: expected 3 or 4 tab-separated columns (os, os_version, kernel[, max]), "
        "found 2",
        "bad.tsv:3: kernel: empty",
        "bad.tsv:4: kernel: \"5.*.1\": '*' is only allowed as a trailing \"**\"",
        "bad.tsv:5: max: only allowed with a \"**\" kernel pattern, not \"5.4.0-1\"",
        "bad.tsv:6: max: \"2.x\" is not dot-separated numbers such as 240.15.1",
        "bad.tsv:7: expected 3 or 4 tab-separated columns (os, os_version, kernel[, max]), "
        "found 5",
        "bad.tsv:8: os: empty",
        "bad.tsv:9: os_version: \"1 0\": contains a space",
        "bad.tsv:10: os: \"Foo \": leading or trailing whitespace",
        "bad.tsv:11: kernel: \"**\" needs a prefix, as in \"3.10.0-**\"",
        "bad.tsv:12: os: not valid UTF-8",
    };
    struct moat_diags d = {0};
    struct compat_table *t = (struct compat_table *)&d; /* must be reset to NULL */
    assert_int_equal(compat_table_parse(&t, text, "bad.tsv", &d), -EINVAL);
    assert_null(t);
    assert_int_equal(d.count, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < d.count; i++) {
        assert_string_equal(d.items[i].text, want[i]);
        assert_string_equal(d.items[i].file, "bad.tsv");
    }
    assert_int_equal(d.items[1].line, 3);
    diags_clear(&d);
}

static void test_parse_errors_without_diags(void **state)
{
    (void)state;
    struct compat_table *t = NULL;
    assert_int_equal(compat_table_parse(&t, "Foo\t1\n", NULL, NULL), -EINVAL);
    assert_null(t);
    assert_int_equal(compat_table_parse(&t, NULL, NULL, NULL), -EINVAL);
}

static void test_parse_empty_table(void **state)
{
    (void)state;
    struct moat_diags d = {0};
    struct compat_table *t = NULL;
    assert_int_equal(compat_table_parse(&t, "# only a comment\n\n", "empty.tsv", &d), -EINVAL);
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0].text,
                        "empty.tsv: no rows (expected lines of os<TAB>os_version<TAB>kernel"
                        "[<TAB>max])");
    diags_clear(&d);
    assert_int_equal(compat_table_parse(&t, "", NULL, &d), -EINVAL);
    assert_string_equal(d.items[0].text,
                        "<table>: no rows (expected lines of os<TAB>os_version<TAB>kernel"
                        "[<TAB>max])");
    diags_clear(&d);
}

static void test_parse_limits(void **state)
{
    (void)state;
    size_t rows = COMPAT_TABLE_MAX_ROWS + 1, row_len = strlen("A\t1\tk\n");
    char *text = malloc(rows * row_len + 1);
    assert_non_null(text);
    for (size_t i = 0; i < rows; i++)
        memcpy(text + i * row_len, "A\t1\tk\n", row_len);
    text[rows * row_len] = '\0';
    struct moat_diags d = {0};
    struct compat_table *t = NULL;
    assert_int_equal(compat_table_parse(&t, text, "big.tsv", &d), -EINVAL);
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0].text, "big.tsv:100001: more than 100000 rows");
    diags_clear(&d);
    text[(rows - 1) * row_len] = '\0';
    assert_int_equal(compat_table_parse(&t, text, "big.tsv", &d), 0);
    assert_int_equal(compat_table_count(t), COMPAT_TABLE_MAX_ROWS);
    compat_table_free(t);
    free(text);

    text = malloc(COMPAT_TABLE_MAX_BYTES + 2);
    assert_non_null(text);
    memset(text, '#', COMPAT_TABLE_MAX_BYTES + 1);
    text[COMPAT_TABLE_MAX_BYTES + 1] = '\0';
    assert_int_equal(compat_table_parse(&t, text, "huge.tsv", &d), -EINVAL);
    assert_string_equal(d.items[0].text, "huge.tsv: larger than 1048576 bytes");
    diags_clear(&d);
    const char *path = testutil_write_file("huge.tsv", text);
    assert_int_equal(compat_table_load(&t, path, &d), -EINVAL);
    assert_int_equal(d.count, 1);
    assert_non_null(strstr(d.items[0].text, "larger than 1048576 bytes"));
    diags_clear(&d);
    free(text);
}

static void test_load_file_errors(void **state)
{
    (void)state;
    struct moat_diags d = {0};
    struct compat_table *t = NULL;
    assert_int_equal(compat_table_load(&t, "/nonexistent/kernel-support.tsv", &d), -ENOENT);
    assert_null(t);
    assert_int_equal(d.count, 0);
    assert_int_equal(compat_table_load(&t, "data", &d), -EISDIR);
    assert_int_equal(d.count, 0);

    const char *path = testutil_write_file("bad.tsv", "Foo\t1.0\t5.4.0-1\nFoo\t1.0\n");
    char want[600];
    snprintf(want, sizeof(want),
             "%s:2: expected 3 or 4 tab-separated columns (os, os_version, kernel[, max]), "
             "found 2",
             path);
    assert_int_equal(compat_table_load(&t, path, &d), -EINVAL);
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0].text, want);
    diags_clear(&d);
}

static void test_load_rejects_nul_byte(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof(path), "%s", testutil_write_file("nul.tsv", ""));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    static const char bytes[] = "Foo\t1\t5.4.0-1\nFoo\t1\t5.4\0.0-1\n";
    assert_int_equal(fwrite(bytes, 1, sizeof(bytes) - 1, f), sizeof(bytes) - 1);
    fclose(f);
    struct moat_diags d = {0};
    struct compat_table *t = NULL;
    assert_int_equal(compat_table_load(&t, path, &d), -EINVAL);
    assert_null(t);
    assert_int_equal(d.count, 1);
    assert_int_equal(d.items[0].line, 2);
    assert_non_null(strstr(d.items[0].text, "contains a NUL byte"));
    diags_clear(&d);
}

static void test_misc(void **state)
{
    (void)state;
    compat_table_free(NULL);
    assert_int_equal(compat_table_count(NULL), 0);
    assert_string_equal(compat_reason_name(COMPAT_CERTIFIED), "certified");
    assert_string_equal(compat_reason_name(COMPAT_UNKNOWN_OS), "unknown-os");
    assert_string_equal(compat_reason_name(COMPAT_VERSION_NOT_LISTED), "version-not-listed");
    assert_string_equal(compat_reason_name(COMPAT_KERNEL_NOT_LISTED), "kernel-not-listed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_real_table_loads, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_every_listed_version_is_certified, setup_real,
                                        teardown_real),
        cmocka_unit_test_setup_teardown(test_row_of_a_match, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_pattern_2_6_32, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_pattern_3_10_0, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_pattern_4_18_0_bound, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_bound_explained, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_literal_rows, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_near_miss_kernel, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_kernel_of_another_os, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_ubuntu_18_04, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_unknown_os, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_os_spellings, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_versions_not_listed, setup_real, teardown_real),
        cmocka_unit_test_setup_teardown(test_check_rejects_bad_arguments, setup_real,
                                        teardown_real),
        cmocka_unit_test(test_parse_comments_blanks_crlf),
        cmocka_unit_test(test_parse_errors_name_file_and_line),
        cmocka_unit_test(test_parse_errors_without_diags),
        cmocka_unit_test(test_parse_empty_table),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_load_rejects_nul_byte),
        cmocka_unit_test(test_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
