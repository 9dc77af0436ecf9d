/*
 * Allocation-failure injection over the loader and the compiler (SQLite/curl
 * style torture): the test binary is linked with `ld --wrap=malloc,realloc`,
 * so every allocation libmoat makes can be made to fail. For each n, the
 * n-th allocation fails; loading, compiling and updating must then return
 * -ENOMEM (or succeed when the failure hit nothing essential), never crash,
 * and free everything: LeakSanitizer checks that at exit.
 */
#include "testutil.h"

#include "compile.h"
#include "loader.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);

static long alloc_count;
static long fail_at = -1; /* -1: never fail */

static bool should_fail(void)
{
    return fail_at >= 0 && alloc_count++ == fail_at;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

static const char *const files[] = {"examples/policy.yaml", "examples/inventory.yaml"};

/* Loads, compiles and updates once; returns 0 or the first error. */
static int run_once(void)
{
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    struct moat_tables *t = NULL;
    int err = policy_load_files(&p, files, 2, &d);
    diags_clear(&d);
    if (!err)
        err = policy_compile(p, NULL, &t);
    if (!err) {
        /* A changed workload and a changed rule, recompiled incrementally. */
        struct moat_workload *w = &p->workloads[1];
        addr_parse("10.244.9.9", &w->addrs[0]);
        err = tables_update_workload(t, 1);
    }
    if (!err) {
        struct moat_rule old = p->rules[3];
        p->rules[3].priority = 1;
        err = tables_update_rule(t, 3, &old);
    }
    tables_free(t);
    policy_free(p);
    return err;
}

static void test_every_allocation_failure(void **state)
{
    (void)state;
    alloc_count = 0;
    fail_at = -1;
    assert_int_equal(run_once(), 0);
    /* Count the allocations of one full run. */
    fail_at = 1L << 40;
    alloc_count = 0;
    assert_int_equal(run_once(), 0);
    long total = alloc_count;
    long enomem = 0;
    for (long n = 0; n < total; n++) {
        alloc_count = 0;
        fail_at = n;
        int err = run_once();
        if (err != 0 && err != -ENOMEM)
            fail_msg("allocation %ld failed: got %d, want 0 or -ENOMEM", n, err);
        enomem += err == -ENOMEM;
    }
    fail_at = -1;
    printf("alloc: %ld allocations per run, each failed once: %ld runs reported -ENOMEM\n", total,
           enomem);
    assert_true(enomem > 0);
}

/* A validation error and an allocation failure together: still no leak, no crash. */
static void test_failure_with_invalid_input(void **state)
{
    (void)state;
    const char *bad = "kind: DefenseRule\ncluster: nope\nname: r\nsource: x\n"
                      "destinations: [{object: y, ports: 80/90,85/100}]\naction: block\n"
                      "priority: 0\n";
    for (long n = 0; n < 400; n++) {
        struct moat_diags d;
        diags_init(&d);
        struct moat_policy *p = NULL;
        alloc_count = 0;
        fail_at = n;
        int err = policy_load_text(&p, bad, strlen(bad), "bad.yaml", &d);
        fail_at = -1;
        assert_true(err == -EINVAL || err == -ENOMEM);
        assert_null(p);
        diags_clear(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_failure),
        cmocka_unit_test(test_failure_with_invalid_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
