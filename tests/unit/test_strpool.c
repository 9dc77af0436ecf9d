/* Unit tests of lib/strpool: packed, interned strings shared by reference. */
#include "testutil.h"

#include "strpool.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Equal content, one copy; different content, different copies; all 8-byte aligned. */
static void test_intern_once(void **state)
{
    (void)state;
    struct strpool *pool = strpool_new();
    assert_non_null(pool);
    char buf[16];
    snprintf(buf, sizeof(buf), "shop");
    const char *a = strpool_str(pool, buf), *b = strpool_str(pool, "shop");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, buf);
    assert_string_equal(a, "shop");
    const char *c = strpool_str(pool, "shop2");
    assert_ptr_not_equal(a, c);
    assert_int_equal((uintptr_t)a % 8, 0);
    assert_int_equal((uintptr_t)c % 8, 0);
    /* blocks with the same bytes but another length are others */
    const void *x = strpool_intern(pool, "ab\0cd", 5), *y = strpool_intern(pool, "ab\0cd", 6);
    assert_ptr_not_equal(x, y);
    assert_ptr_equal(x, strpool_intern(pool, "ab\0cd", 5));
    /* copies are never shared */
    assert_ptr_not_equal(strpool_copy(pool, "shop", 5), a);
    strpool_unref(pool);
}

/* Many strings (the table grows), a block larger than a chunk, sealing, references. */
static void test_grow_seal_and_refs(void **state)
{
    (void)state;
    struct strpool *pool = strpool_new();
    const char *first[5000];
    for (int i = 0; i < 5000; i++) {
        char s[32];
        snprintf(s, sizeof(s), "value-%d", i);
        first[i] = strpool_str(pool, s);
        assert_non_null(first[i]);
    }
    for (int i = 0; i < 5000; i++) {
        char s[32];
        snprintf(s, sizeof(s), "value-%d", i);
        assert_ptr_equal(strpool_str(pool, s), first[i]);
    }
    static char big[200000];
    memset(big, 'x', sizeof(big) - 1);
    const char *b = strpool_str(pool, big);
    assert_non_null(b);
    assert_int_equal(strlen(b), sizeof(big) - 1);
    const char *after = strpool_str(pool, "after the big one");
    assert_string_equal(after, "after the big one");
    size_t held = strpool_bytes(pool);
    assert_true(held >= sizeof(big));
    strpool_seal(pool);
    assert_true(strpool_bytes(pool) < held);        /* the table is gone */
    assert_string_equal(first[4999], "value-4999"); /* what was handed out stays */
    assert_non_null(strpool_str(pool, "value-1"));  /* interning again: a new table */
    struct strpool *shared = strpool_ref(pool);
    strpool_unref(pool);
    assert_string_equal(first[0], "value-0"); /* one reference left */
    strpool_unref(shared);
    strpool_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern_once),
        cmocka_unit_test(test_grow_seal_and_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
