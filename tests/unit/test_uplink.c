/* Unit tests of agent/uplink's server lists (moatd --server URL1,URL2,...). */
#include "testutil.h"

#include "uplink.h"

#include <stdio.h>
#include <string.h>

static void test_check(void **state)
{
    (void)state;
    assert_null(uplink_servers_check("http://a:1"));
    assert_null(uplink_servers_check("http://a:1,https://b:2/"));
    assert_non_null(uplink_servers_check(""));
    assert_non_null(uplink_servers_check("http://a:1,"));
    assert_non_null(uplink_servers_check(",http://a:1"));
    assert_non_null(uplink_servers_check("http://a:1,,http://b:2"));
    assert_non_null(uplink_servers_check("http://a:1,ftp://b"));
    assert_non_null(uplink_servers_check("a:1"));
    char many[1024] = "";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%shttp://h%d", i ? "," : "", i);
    assert_string_equal(uplink_servers_check(many), "at most 16 URLs");
}

static void test_overlap(void **state)
{
    (void)state;
    assert_true(uplink_servers_overlap("http://a:1", "http://a:1"));
    assert_true(uplink_servers_overlap("http://a:1/", "http://a:1"));
    assert_true(uplink_servers_overlap("http://a:1", "http://b:2,http://a:1/"));
    assert_true(uplink_servers_overlap("http://b:2,http://a:1", "http://a:1,http://c:3"));
    assert_false(uplink_servers_overlap("http://a:1", "http://a:12"));
    assert_false(uplink_servers_overlap("http://a:12", "http://a:1"));
    assert_false(uplink_servers_overlap("http://a:1,http://b:2", "http://c:3"));
    assert_false(uplink_servers_overlap("", "http://a:1"));
}

static void test_current(void **state)
{
    (void)state;
    struct uplink *u = uplink_new("http://a:1//,http://b:2", NULL, NULL);
    assert_non_null(u);
    assert_string_equal(uplink_current(u), "http://a:1");
    uplink_free(u);
    assert_null(uplink_new("http://a:1,,http://b:2", NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
