/* Unit tests of agent/spool: event batches on disk (a temporary folder). */
#include "testutil.h"

#include "spool.h"

#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/moat-spool-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static json_t *events(int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:i}", "kind", "policy", "attempts", i + 1));
    return a;
}

/* Batches come back oldest first, each with its own batch id; done removes them. */
static void test_fifo_and_ids(void **state)
{
    (void)state;
    struct spool *s;
    assert_int_equal(spool_open(dir, 10, &s), 0);
    for (int i = 1; i <= 3; i++) {
        json_t *e = events(i);
        assert_int_equal(spool_add(s, e), 0);
        json_decref(e);
    }
    assert_int_equal(spool_stats(s).pending, 3);
    char *text, first_id[40] = "";
    uint64_t seq;
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(spool_oldest(s, &text, &seq), 0);
        json_t *b = json_loads(text, 0, NULL);
        assert_int_equal(json_array_size(json_object_get(b, "events")), i);
        const char *id = json_string_value(json_object_get(b, "batch"));
        assert_int_equal(strlen(id), 32);
        assert_string_not_equal(id, first_id);
        snprintf(first_id, sizeof(first_id), "%s", id);
        json_decref(b);
        free(text);
        assert_int_equal(spool_done(s, seq), 0);
    }
    assert_int_equal(spool_oldest(s, &text, &seq), -ENOENT);
    spool_close(s);
}

/* A reopened spool finds the batches a previous run left, in order, same ids. */
static void test_survives_reopen(void **state)
{
    (void)state;
    struct spool *s;
    assert_int_equal(spool_open(dir, 10, &s), 0);
    json_t *e = events(2);
    assert_int_equal(spool_add(s, e), 0);
    assert_int_equal(spool_add(s, e), 0);
    json_decref(e);
    char *before;
    uint64_t seq;
    assert_int_equal(spool_oldest(s, &before, &seq), 0);
    spool_close(s);
    char tmp[128]; /* a crash mid-write leaves a .tmp: removed */
    snprintf(tmp, sizeof(tmp), "%s/0000000000000099.json.tmp", dir);
    FILE *f = fopen(tmp, "w");
    fputs("{\"batch\":", f);
    fclose(f);
    assert_int_equal(spool_open(dir, 10, &s), 0);
    assert_int_equal(spool_stats(s).pending, 2);
    char *after;
    uint64_t seq2;
    assert_int_equal(spool_oldest(s, &after, &seq2), 0);
    assert_string_equal(before, after);
    assert_int_equal(seq, seq2);
    assert_int_not_equal(access(tmp, F_OK), 0);
    free(before);
    free(after);
    spool_close(s);
}

/* Full: the oldest batches are dropped and counted, across restarts too. */
static void test_bounded_drops_oldest(void **state)
{
    (void)state;
    struct spool *s;
    assert_int_equal(spool_open(dir, 3, &s), 0);
    for (int i = 1; i <= 5; i++) {
        json_t *e = events(i);
        assert_int_equal(spool_add(s, e), 0);
        json_decref(e);
    }
    struct spool_stats st = spool_stats(s);
    assert_int_equal(st.pending, 3);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(st.dropped_events, 1 + 2);
    char *text;
    uint64_t seq;
    assert_int_equal(spool_oldest(s, &text, &seq), 0);
    json_t *b = json_loads(text, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(b, "events")), 3); /* batch 3 is oldest */
    json_decref(b);
    free(text);
    spool_close(s);
    assert_int_equal(spool_open(dir, 3, &s), 0);
    assert_int_equal(spool_stats(s).dropped, 2);
    spool_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_and_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_drops_oldest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
