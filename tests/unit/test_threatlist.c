/* Unit tests of threat-list parsing (lib/threatlist.c). */
#include "testutil.h"

#include "threatlist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *text, struct moat_threatlist **tl, struct moat_diags *d)
{
    diags_init(d);
    return threatlist_parse(text, strlen(text), "list.txt", tl, d);
}

static void test_lines_labels_comments(void **state)
{
    (void)state;
    struct moat_threatlist *tl;
    struct moat_diags d;
    assert_int_equal(parse("# a feed\n\n203.0.113.0/24 botnet C2\n  198.51.100.7\tscanner # why\n"
                           "2001:db8:bad::/48 botnet C2\n10.0.0.0/8\n",
                           &tl, &d),
                     0);
    assert_int_equal(tl->n, 4);
    assert_int_equal(tl->nlabels, 3); /* "botnet C2" once, "scanner", "listed" */
    char *text = threatlist_format(tl);
    assert_non_null(strstr(text, "203.0.113.0/24 botnet C2\n"));
    assert_non_null(strstr(text, "198.51.100.7/32 scanner\n"));
    assert_non_null(strstr(text, "10.0.0.0/8 listed\n"));
    assert_non_null(strstr(text, "2001:db8:bad::/48 botnet C2\n"));
    free(text);
    threatlist_free(tl);
    diags_clear(&d);
}

static void test_errors_name_their_lines(void **state)
{
    (void)state;
    struct moat_threatlist *tl;
    struct moat_diags d;
    assert_int_equal(
        parse("203.0.113.0/24 ok\n300.1.1.1 x\n10.0.0.1/8 y\n1.2.3.4 \001bell\n", &tl, &d),
        -EINVAL);
    assert_null(tl);
    assert_int_equal(d.count, 3);
    assert_non_null(strstr(d.items[0].text, "list.txt:2:"));
    assert_non_null(strstr(d.items[1].text, "list.txt:3:"));
    assert_non_null(strstr(d.items[1].text, "host bits"));
    assert_non_null(strstr(d.items[2].text, "list.txt:4:"));
    diags_clear(&d);
    assert_int_equal(parse("1.2.3.4 \xff\xfe\n", &tl, &d), -EINVAL);
    assert_non_null(strstr(d.items[0].text, "UTF-8"));
    diags_clear(&d);
}

static void test_duplicates_keep_the_first(void **state)
{
    (void)state;
    struct moat_threatlist *tl;
    struct moat_diags d;
    assert_int_equal(parse("198.51.100.0/24 first\n198.51.100.0/24 second\n", &tl, &d), 0);
    assert_int_equal(tl->n, 1);
    assert_string_equal(tl->labels[tl->items[0].label], "first");
    threatlist_free(tl);
    diags_clear(&d);
}

static void test_a_million_prefixes(void **state)
{
    (void)state;
    size_t n = 1000000, cap = n * 24 + 1, at = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(text + at, cap - at, "%zu.%zu.%zu.0/24 l%zu\n", 10 + i / 65536,
                               (i / 256) % 256, i % 256, i % 7);
    struct moat_threatlist *tl;
    struct moat_diags d;
    diags_init(&d);
    assert_int_equal(threatlist_parse(text, at, "big", &tl, &d), 0);
    assert_int_equal(tl->n, n);
    assert_int_equal(tl->nlabels, 7);
    threatlist_free(tl);
    diags_clear(&d);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_labels_comments),
        cmocka_unit_test(test_errors_name_their_lines),
        cmocka_unit_test(test_duplicates_keep_the_first),
        cmocka_unit_test(test_a_million_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
