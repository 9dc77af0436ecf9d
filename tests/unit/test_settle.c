/*
 * Unit tests for lib/canon (the values the loader settles, written back into
 * JSON documents: the one implementation the server's writes and
 * `POST /apply` use), lib/throttle (failed authentications per source: the
 * burst, the refill, Retry-After, a table that does not grow under a flood
 * of addresses) and lib/strset.
 */
#include "testutil.h"

#include "canon.h"
#include "loader.h"
#include "strset.h"
#include "throttle.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct moat_policy *load(const char *yaml)
{
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    int err = policy_load_text(&p, yaml, strlen(yaml), "t.yaml", &d);
    if (err)
        fail_msg("policy refused: %s", d.count ? d.items[0].text : "?");
    diags_clear(&d);
    return p;
}

static void test_canon(void **state)
{
    (void)state;
    struct moat_policy *p = load("kind: Cluster\nname: prod\ndefense: on\n---\n"
                                 "kind: Cluster\nname: dev\nmode: monitor\n---\n"
                                 "kind: NetworkObject\nname: web\nnamespace: shop\n---\n"
                                 "kind: DefenseRule\ncluster: prod\nname: r1\nsource: any\n"
                                 "destinations: [{object: web, ports: 80}]\naction: alert\n"
                                 "priority: 7\nenabled: off\n---\n"
                                 "kind: DefenseRule\ncluster: dev\nname: r1\nsource: web\n"
                                 "destinations: [{object: web}]\naction: block\npriority: 3\n"
                                 "protocol: tcp\ntype: suggested\n");
    struct canon *c;
    assert_int_equal(canon_new(p, &c), 0);
    json_t *cl = json_pack("{s:s,s:b}", "name", "prod", "defense", 1);
    assert_int_equal(canon_cluster(c, cl), 0);
    assert_string_equal(json_string_value(json_object_get(cl, "defense")), "on");
    assert_string_equal(json_string_value(json_object_get(cl, "mode")), "protect");
    assert_string_equal(json_string_value(json_object_get(cl, "default_action")), "block");
    json_decref(cl);
    json_t *r = json_pack("{s:s}", "name", "r1");
    assert_int_equal(canon_rule(c, r, "prod"), 0);
    assert_false(json_is_true(json_object_get(r, "enabled")));
    assert_string_equal(json_string_value(json_object_get(r, "protocol")), "any");
    assert_string_equal(json_string_value(json_object_get(r, "action")), "alert");
    assert_int_equal(json_integer_value(json_object_get(r, "priority")), 7);
    assert_string_equal(json_string_value(json_object_get(r, "type")), "custom");
    assert_int_equal(canon_rule(c, r, "dev"), 0); /* the same name in another cluster */
    assert_true(json_is_true(json_object_get(r, "enabled")));
    assert_string_equal(json_string_value(json_object_get(r, "protocol")), "tcp");
    assert_string_equal(json_string_value(json_object_get(r, "type")), "suggested");
    json_decref(r);
    json_t *sys = json_pack("{s:s}", "name", MOAT_SYSRULE_DNS);
    assert_int_equal(canon_rule(c, sys, "dev"), 0);
    assert_string_equal(json_string_value(json_object_get(sys, "type")), "system");
    json_decref(sys);
    json_t *none = json_pack("{s:s}", "name", "nope");
    assert_int_equal(canon_rule(c, none, "prod"), -ENOENT);
    assert_int_equal(canon_cluster(c, none), -ENOENT);
    assert_int_equal(canon_rule(c, none, NULL), -ENOENT);
    json_decref(none);
    canon_free(c);
    canon_free(NULL);
    policy_free(p);
}

static void test_throttle(void **state)
{
    (void)state;
    struct throttle *t;
    assert_int_equal(throttle_new(0, 1, 4, &t), -EINVAL);
    assert_int_equal(throttle_new(3, 0.5, 4, &t), 0); /* 3 at once, then one per 2 s */
    const unsigned char a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
    double now = 1000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(throttle_wait(t, a, 4, now), 0);
        throttle_charge(t, a, 4, now);
    }
    assert_int_equal(throttle_wait(t, a, 4, now), 2); /* used up: a failure back in 2 s */
    assert_int_equal(throttle_wait(t, b, 4, now), 0); /* another source is not affected */
    assert_int_equal(throttle_wait(t, a, 4, now + 1), 1);
    assert_int_equal(throttle_wait(t, a, 4, now + 2), 0);
    assert_int_equal(throttle_wait(t, a, 4, now + 100), 0); /* back to the full burst */
    for (int i = 0; i < 3; i++)
        throttle_charge(t, a, 4, now + 100);
    assert_true(throttle_wait(t, a, 4, now + 100) > 0);
    /* a flood of addresses: the table keeps its size; a busy source is not forgotten
     * before quiet ones (the entry with the most allowance back goes first) */
    for (unsigned i = 0; i < 100000; i++) {
        unsigned char k[16];
        memcpy(k, &i, sizeof(i));
        memset(k + 4, 0x5a, 12);
        throttle_charge(t, k, 16, now + 100);
    }
    throttle_free(t);
    throttle_free(NULL);
}

static void test_strset(void **state)
{
    (void)state;
    struct strset s = {0};
    assert_false(strset_has(&s, "a"));
    assert_int_equal(strset_add(&s, "a"), 1);
    assert_int_equal(strset_add(&s, "a"), 0);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(strset_add(&s, key), 1);
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_true(strset_has(&s, key));
    }
    assert_false(strset_has(&s, "k5000"));
    assert_int_equal(s.n, 5001);
    strset_clear(&s);
    assert_false(strset_has(&s, "a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon),
        cmocka_unit_test(test_throttle),
        cmocka_unit_test(test_strset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
