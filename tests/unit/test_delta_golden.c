/*
 * Golden tests of policy deltas (issue 17): each tests/golden/delta/NN-name.json
 * holds a sequence of full answers and, for revisions R of it, the exact delta
 * answer the server must send an agent at R (written by hand: README.md
 * there). Per scenario: the snapshots of the states go into a history
 * (lib/delta, as the server keeps it), the answer since each R must be those
 * bytes, and applied to the state at R both ways the agent and the tests
 * apply deltas (polstate_apply: record texts spliced; delta_apply: JSON)
 * it must give the newest state. Run from the repository's root.
 */
#include "testutil.h"

#include "delta.h"
#include "polstate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_DIR    "tests/golden/delta"
#define MAX_SCENARIOS 64

struct scenario {
    const char *path;
    json_t *doc;
    size_t nstates;
    struct delta_buf *texts;
    struct delta_snap *snaps;
    struct delta_log log;
};

static int64_t member_int(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* The scenario's states, their snapshots and the history of the steps between them. */
static void scenario_load(struct scenario *sc)
{
    json_error_t e;
    sc->doc = json_load_file(sc->path, 0, &e);
    if (!sc->doc)
        fail_msg("%s:%d: %s", sc->path, e.line, e.text);
    const json_t *states = json_object_get(sc->doc, "states");
    sc->nstates = json_array_size(states);
    if (sc->nstates < 2)
        fail_msg("%s: \"states\" must list at least two full answers", sc->path);
    const json_t *lim = json_object_get(sc->doc, "log");
    sc->log.max_steps = (size_t)member_int(lim, "max_steps", 1000);
    sc->log.max_bytes = (size_t)member_int(lim, "max_bytes", 32 << 20);
    sc->texts = calloc(sc->nstates, sizeof(*sc->texts));
    sc->snaps = calloc(sc->nstates, sizeof(*sc->snaps));
    assert_non_null(sc->texts);
    assert_non_null(sc->snaps);
    for (size_t i = 0; i < sc->nstates; i++) {
        if (delta_snap_build(json_array_get(states, i), &sc->texts[i], &sc->snaps[i]) != 0)
            fail_msg("%s: states[%zu] is not a full answer", sc->path, i);
        sc->snaps[i].text = sc->texts[i].p;
        if (i && sc->snaps[i].revision <= sc->snaps[i - 1].revision)
            fail_msg("%s: states[%zu]: revisions must increase", sc->path, i);
        if (i)
            assert_int_equal(delta_log_add(&sc->log, &sc->snaps[i - 1], &sc->snaps[i]), 0);
    }
}

static void scenario_free(struct scenario *sc)
{
    delta_log_clear(&sc->log);
    for (size_t i = 0; i < sc->nstates; i++) {
        delta_snap_free(&sc->snaps[i]);
        free(sc->texts[i].p);
    }
    free(sc->snaps);
    free(sc->texts);
    json_decref(sc->doc);
}

/* The state of revision `rev`, or NULL. */
static const json_t *state_at(const struct scenario *sc, int64_t rev)
{
    const json_t *states = json_object_get(sc->doc, "states");
    for (size_t i = 0; i < sc->nstates; i++)
        if (sc->snaps[i].revision == rev)
            return json_array_get(states, i);
    return NULL;
}

/* Prints where two texts part, to read a failure without a JSON diff tool. */
static void print_parting(const char *what, const char *want, const char *got)
{
    size_t at = 0;
    while (want[at] && want[at] == got[at])
        at++;
    size_t from = at > 40 ? at - 40 : 0;
    print_message("%s: differs at byte %zu\n  want ...%.100s\n  got  ...%.100s\n", what, at,
                  want + from, got + from);
}

/* The delta applied to the state at its `since`, both ways, is the newest state. */
static void check_applied(const struct scenario *sc, const char *label, const json_t *want)
{
    const json_t *base = state_at(sc, member_int(want, "since", -1));
    const json_t *newest = json_array_get(json_object_get(sc->doc, "states"), sc->nstates - 1);
    const char *newest_text = sc->texts[sc->nstates - 1].p;
    if (!base)
        fail_msg("%s: no state has revision \"since\"", label);
    char why[300] = "";
    json_t *got = NULL;
    if (delta_apply(base, want, &got, why, sizeof(why)) != 0)
        fail_msg("%s: delta_apply refused it: %s", label, why);
    assert_true(json_equal(got, newest));
    json_decref(got);
    struct polstate *st = NULL, *next = NULL;
    assert_int_equal(polstate_from_json(base, &st, why, sizeof(why)), 0);
    if (polstate_apply(st, want, &next, why, sizeof(why)) != 0)
        fail_msg("%s: polstate_apply refused it: %s", label, why);
    /* the agent keeps (and saves) the newest full answer: the same members and records,
     * the whole members first (they are the delta's); each record's text is the server's */
    json_t *spliced = json_loadb(next->text, next->len, 0, NULL);
    if (!json_equal(spliced, newest)) {
        print_parting("spliced text vs the newest full answer", newest_text, next->text);
        fail_msg("%s: the spliced policy is not the newest full answer", label);
    }
    json_decref(spliced);
    for (int k = 0; k < DELTA_KINDS; k++)
        assert_int_equal(next->n[k], sc->snaps[sc->nstates - 1].n[k]);
    polstate_free(next);
    polstate_free(st);
}

/* One expected answer: {"since": R, ["max": BYTES,] "want": DELTA | "full: too old" | ...}. */
static void check_answer(const struct scenario *sc, size_t i, const json_t *a)
{
    char label[300];
    int64_t since = member_int(a, "since", -1);
    snprintf(label, sizeof(label), "%s: answers[%zu] (since %lld)", sc->path, i, (long long)since);
    const struct delta_snap *now = &sc->snaps[sc->nstates - 1];
    struct delta_buf out = {0};
    int err = delta_answer(&sc->log, now, since, (size_t)member_int(a, "max", 1 << 20), &out);
    const json_t *want = json_object_get(a, "want");
    const char *full = json_string_value(want);
    if (full) { /* the server then sends the full answer */
        int expect = strcmp(full, "full: too old") == 0   ? -ENOENT
                     : strcmp(full, "full: too big") == 0 ? -E2BIG
                                                          : 1;
        if (expect == 1)
            fail_msg("%s: want must be a delta, \"full: too old\" or \"full: too big\"", label);
        if (err != expect)
            fail_msg("%s: wanted %s, delta_answer gave %d", label, full, err);
        free(out.p);
        return;
    }
    if (err != 0)
        fail_msg("%s: delta_answer gave %d, wanted a delta", label, err);
    char *want_text = json_dumps(want, JSON_COMPACT);
    assert_non_null(want_text);
    if (strcmp(out.p, want_text) != 0) {
        print_parting(label, want_text, out.p);
        fail_msg("%s: not the delta written in the scenario", label);
    }
    free(want_text);
    free(out.p);
    check_applied(sc, label, want);
}

static void run_scenario(void **state)
{
    struct scenario sc = {.path = *state};
    scenario_load(&sc);
    const json_t *answers = json_object_get(sc.doc, "answers");
    if (json_array_size(answers) == 0)
        fail_msg("%s: \"answers\" is empty", sc.path);
    for (size_t i = 0; i < json_array_size(answers); i++)
        check_answer(&sc, i, json_array_get(answers, i));
    scenario_free(&sc);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    DIR *d = opendir(GOLDEN_DIR);
    if (!d) {
        fprintf(stderr, "test_delta_golden: %s: %s (run from the repository's root)\n", GOLDEN_DIR,
                strerror(errno));
        return 1;
    }
    char *names[MAX_SCENARIOS];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && len > 5 &&
            strcmp(e->d_name + len - 5, ".json") == 0) {
            if (n == MAX_SCENARIOS) { /* never left out quietly */
                fprintf(stderr, "test_delta_golden: more than %d scenarios\n", MAX_SCENARIOS);
                closedir(d);
                return 1;
            }
            size_t sz = sizeof(GOLDEN_DIR) + len + 1;
            names[n] = malloc(sz);
            if (!names[n])
                break;
            snprintf(names[n++], sz, GOLDEN_DIR "/%s", e->d_name);
        }
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "test_delta_golden: no scenarios in %s\n", GOLDEN_DIR);
        return 1;
    }
    qsort(names, n, sizeof(*names), by_name);
    struct CMUnitTest tests[MAX_SCENARIOS];
    for (size_t i = 0; i < n; i++)
        tests[i] = (struct CMUnitTest){.name = names[i] + sizeof(GOLDEN_DIR),
                                       .test_func = run_scenario,
                                       .initial_state = names[i]};
    /* the function behind cmocka_run_group_tests, which wants an array of known size */
    int rc = _cmocka_run_group_tests("delta_golden", tests, n, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return rc;
}
