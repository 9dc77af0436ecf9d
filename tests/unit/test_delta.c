/* Unit tests of lib/delta: policy deltas by revision, computed and applied. */
#include "testutil.h"

#include "addr.h"
#include "compile.h"
#include "delta.h"
#include "loader.h"
#include "remote.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Full answers as the server sends them (records by id). */
static const char *const full_a =
    "{\"revision\": 3,"
    " \"cluster\": {\"name\": \"prod\", \"defense\": \"on\", \"mode\": \"protect\","
    "   \"default_action\": \"block\", \"id\": \"prod\"},"
    " \"objects\": ["
    "   {\"id\": 10, \"name\": \"web\", \"namespace\": \"shop\", \"app\": \"web\"},"
    "   {\"id\": 11, \"name\": \"api\", \"namespace\": \"shop\", \"app\": \"api\"},"
    "   {\"id\": 12, \"name\": \"db\", \"namespace\": \"shop\", \"app\": \"db\"}],"
    " \"rules\": ["
    "   {\"id\": 40, \"cluster\": \"prod\", \"name\": \"web-to-api\", \"source\": \"web\","
    "    \"destinations\": [{\"object\": \"api\", \"ports\": \"80\"}], \"protocol\": \"tcp\","
    "    \"action\": \"allow\", \"priority\": 10, \"enabled\": true},"
    "   {\"id\": 41, \"cluster\": \"prod\", \"name\": \"api-to-db\", \"source\": \"api\","
    "    \"destinations\": [{\"object\": \"db\", \"ports\": \"5432\"}], \"protocol\": \"tcp\","
    "    \"action\": \"allow\", \"priority\": 20, \"enabled\": true}],"
    " \"workloads\": ["
    "   {\"id\": 5, \"cluster\": \"prod\", \"node\": \"n1\", \"name\": \"web-1\","
    "    \"namespace\": \"shop\", \"labels\": {\"app\": \"web\"}, \"ips\": [\"10.1.1.5\"]},"
    "   {\"id\": 6, \"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"api-1\","
    "    \"namespace\": \"shop\", \"labels\": {\"app\": \"api\"}, \"ips\": [\"10.1.2.6\"]},"
    "   {\"id\": 7, \"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"db-1\","
    "    \"namespace\": \"shop\", \"labels\": {\"app\": \"db\"}, \"ips\": [\"10.1.2.7\"]}],"
    " \"quarantines\": [], \"quarantine_releases\": [], \"threat_intel\": null}";

/*
 * Every kind of change from full_a: cluster settings, an object changed /
 * added / removed (db, still named by rule 41 in full_a, which now points
 * at cache), a rule changed / added / removed, a workload changed / added /
 * removed, a quarantine.
 */
static const char *const full_b =
    "{\"revision\": 9,"
    " \"cluster\": {\"name\": \"prod\", \"defense\": \"on\", \"mode\": \"monitor\","
    "   \"default_action\": \"block\", \"id\": \"prod\"},"
    " \"objects\": ["
    "   {\"id\": 10, \"name\": \"web\", \"namespace\": \"shop\", \"app\": \"web\","
    "    \"labels\": {\"tier\": \"front\"}},"
    "   {\"id\": 11, \"name\": \"api\", \"namespace\": \"shop\", \"app\": \"api\"},"
    "   {\"id\": 13, \"name\": \"cache\", \"namespace\": \"shop\", \"app\": \"cache\"}],"
    " \"rules\": ["
    "   {\"id\": 41, \"cluster\": \"prod\", \"name\": \"api-to-db\", \"source\": \"api\","
    "    \"destinations\": [{\"object\": \"cache\", \"ports\": \"6379\"}], \"protocol\": "
    "\"tcp\","
    "    \"action\": \"allow\", \"priority\": 20, \"enabled\": true},"
    "   {\"id\": 42, \"cluster\": \"prod\", \"name\": \"web-to-cache\", \"source\": \"web\","
    "    \"destinations\": [{\"object\": \"cache\", \"ports\": \"6379\"}], \"protocol\": "
    "\"tcp\","
    "    \"action\": \"block\", \"priority\": 30, \"enabled\": true}],"
    " \"workloads\": ["
    "   {\"id\": 5, \"cluster\": \"prod\", \"node\": \"n1\", \"name\": \"web-1\","
    "    \"namespace\": \"shop\", \"labels\": {\"app\": \"web\"}, \"ips\": [\"10.1.1.9\"]},"
    "   {\"id\": 6, \"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"api-1\","
    "    \"namespace\": \"shop\", \"labels\": {\"app\": \"api\"}, \"ips\": [\"10.1.2.6\"]},"
    "   {\"id\": 8, \"cluster\": \"prod\", \"node\": \"n2\", \"name\": \"cache-1\","
    "    \"namespace\": \"shop\", \"labels\": {\"app\": \"cache\"}, \"ips\": [\"10.1.2.8\"]}],"
    " \"quarantines\": [{\"address\": \"10.9.9.9\", \"reason\": \"scan\"}],"
    " \"quarantine_releases\": [], \"threat_intel\": null}";

/* The delta answer text from snapshot a to snapshot b, through a log (the server's way). */
static json_t *log_delta(const json_t *a, const json_t *b)
{
    struct delta_buf ta = {0}, tb = {0}, out = {0};
    struct delta_snap sa, sb;
    assert_int_equal(delta_snap_build(a, &ta, &sa), 0);
    assert_int_equal(delta_snap_build(b, &tb, &sb), 0);
    sa.text = ta.p;
    sb.text = tb.p;
    struct delta_log log = {.max_steps = 8, .max_bytes = 1 << 20};
    assert_int_equal(delta_log_add(&log, &sa, &sb), 0);
    assert_int_equal(delta_answer(&log, &sb, sa.revision, 1 << 20, &out), 0);
    json_t *d = testutil_parse_json(out.p);
    delta_log_clear(&log);
    delta_snap_free(&sa);
    delta_snap_free(&sb);
    free(ta.p);
    free(tb.p);
    free(out.p);
    return d;
}

static void ids_are(const json_t *list, const char *want)
{
    char got[256] = "";
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        const json_t *id = json_is_integer(v) ? v : json_object_get(v, "id");
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", i ? "," : "",
                 (long long)json_integer_value(id));
    }
    assert_string_equal(got, want);
}

static void test_snapshot_text_is_the_answer(void **state)
{
    (void)state;
    json_t *a = testutil_parse_json(full_a);
    struct delta_buf t = {0};
    struct delta_snap s;
    assert_int_equal(delta_snap_build(a, &t, &s), 0);
    char *want = json_dumps(a, JSON_COMPACT);
    assert_string_equal(t.p, want);
    assert_int_equal(s.revision, 3);
    assert_int_equal(s.n[DELTA_OBJECTS], 3);
    assert_int_equal(s.n[DELTA_RULES], 2);
    assert_int_equal(s.n[DELTA_WORKLOADS], 3);
    /* a record's span is its own compact text */
    json_t *w7 =
        json_loadb(t.p + s.recs[DELTA_WORKLOADS][2].off, s.recs[DELTA_WORKLOADS][2].len, 0, NULL);
    assert_true(json_equal(w7, json_array_get(json_object_get(a, "workloads"), 2)));
    assert_non_null(strstr(s.extras, "\"cluster\":{"));
    assert_null(strstr(s.extras, "\"revision\""));
    json_decref(w7);
    free(want);
    delta_snap_free(&s);
    free(t.p);
    json_decref(a);
}

static void test_every_kind_of_change(void **state)
{
    (void)state;
    json_t *a = testutil_parse_json(full_a), *b = testutil_parse_json(full_b);
    json_t *d = log_delta(a, b);
    assert_true(json_is_true(json_object_get(d, "delta")));
    assert_int_equal(json_integer_value(json_object_get(d, "since")), 3);
    assert_int_equal(json_integer_value(json_object_get(d, "revision")), 9);
    ids_are(json_object_get(json_object_get(d, "objects"), "set"), "10,13");
    ids_are(json_object_get(json_object_get(d, "objects"), "removed"), "12");
    ids_are(json_object_get(json_object_get(d, "rules"), "set"), "41,42");
    ids_are(json_object_get(json_object_get(d, "rules"), "removed"), "40");
    ids_are(json_object_get(json_object_get(d, "workloads"), "set"), "5,8");
    ids_are(json_object_get(json_object_get(d, "workloads"), "removed"), "7");
    /* whole members as the new full answer has them */
    assert_true(json_equal(json_object_get(d, "cluster"), json_object_get(b, "cluster")));
    assert_true(json_equal(json_object_get(d, "quarantines"), json_object_get(b, "quarantines")));
    json_t *got = NULL;
    char why[200];
    assert_int_equal(delta_apply(a, d, &got, why, sizeof(why)), 0);
    assert_true(json_equal(got, b));
    /* the same from the JSON diff */
    json_t *d2 = delta_between(a, b), *got2 = NULL;
    assert_true(json_equal(d2, d));
    assert_int_equal(delta_apply(a, d2, &got2, why, sizeof(why)), 0);
    assert_true(json_equal(got2, b));
    json_decref(got2);
    json_decref(d2);
    json_decref(got);
    json_decref(d);
    json_decref(a);
    json_decref(b);
}

/* The applied answer still loads: the rule that named the removed object names another. */
static void test_removed_object_of_changed_rule_loads(void **state)
{
    (void)state;
    json_t *a = testutil_parse_json(full_a), *b = testutil_parse_json(full_b);
    json_t *d = log_delta(a, b), *got = NULL;
    char why[200];
    assert_int_equal(delta_apply(a, d, &got, why, sizeof(why)), 0);
    json_t *clusters = json_pack("[O]", json_object_get(got, "cluster"));
    json_t *docs = json_array();
    assert_int_equal(remote_docs(clusters, json_object_get(got, "objects"),
                                 json_object_get(got, "rules"), json_object_get(got, "workloads"),
                                 NULL, docs),
                     0);
    char *text = json_dumps(docs, JSON_COMPACT);
    assert_null(strstr(text, "\"db\""));
    struct moat_diags diags;
    diags_init(&diags);
    struct moat_policy *p = NULL;
    int err = policy_load_text(&p, text, strlen(text), "server", &diags);
    for (size_t i = 0; i < diags.count; i++)
        print_message("%s\n", diags.items[i].text);
    assert_int_equal(err, 0);
    policy_free(p);
    diags_clear(&diags);
    free(text);
    json_decref(docs);
    json_decref(clusters);
    json_decref(got);
    json_decref(d);
    json_decref(a);
    json_decref(b);
}

static void expect_refused(const json_t *base, const char *delta, const char *what)
{
    json_t *d = testutil_parse_json(delta), *got = (json_t *)1;
    char why[200] = "";
    assert_int_equal(delta_apply(base, d, &got, why, sizeof(why)), -EINVAL);
    assert_null(got);
    if (!strstr(why, what))
        print_message("why: %s (wanted %s)\n", why, what);
    assert_non_null(strstr(why, what));
    json_decref(d);
}

static void test_delta_that_does_not_apply(void **state)
{
    (void)state;
    json_t *a = testutil_parse_json(full_a);
    expect_refused(a, "{\"revision\": 9, \"since\": 4, \"delta\": true}", "this agent has 3");
    expect_refused(a, "{\"revision\": 9, \"since\": 3}", "not a delta");
    expect_refused(a, "{\"revision\": 3, \"since\": 3, \"delta\": true}", "since < revision");
    expect_refused(a,
                   "{\"revision\": 9, \"since\": 3, \"delta\": true,"
                   " \"rules\": {\"set\": [], \"removed\": [99]}}",
                   "rules.removed[0]");
    expect_refused(a,
                   "{\"revision\": 9, \"since\": 3, \"delta\": true,"
                   " \"rules\": {\"set\": [{\"id\": 40}], \"removed\": [40]}}",
                   "also set");
    expect_refused(a,
                   "{\"revision\": 9, \"since\": 3, \"delta\": true,"
                   " \"workloads\": {\"set\": [{\"name\": \"x\"}], \"removed\": []}}",
                   "workloads.set");
    expect_refused(a, "{\"revision\": 9, \"since\": 3, \"delta\": true, \"objects\": []}",
                   "objects: must be");
    json_decref(a);
}

/* Snapshots of successive states, the log bounded by steps: a revision too old is not answered. */
static void test_too_old_and_too_big(void **state)
{
    (void)state;
    json_t *a = testutil_parse_json(full_a);
    struct delta_buf t[5] = {{0}};
    struct delta_snap s[5];
    struct delta_log log = {.max_steps = 2, .max_bytes = 1 << 20};
    for (int i = 0; i < 5; i++) {
        json_object_set_new(a, "revision", json_integer(10 + i));
        json_t *w = json_array_get(json_object_get(a, "workloads"), 0);
        json_object_set_new(w, "name", json_sprintf("web-%d", i));
        assert_int_equal(delta_snap_build(a, &t[i], &s[i]), 0);
        s[i].text = t[i].p;
        if (i > 0)
            assert_int_equal(delta_log_add(&log, &s[i - 1], &s[i]), 0);
    }
    assert_int_equal(log.n, 2);
    assert_int_equal(delta_log_oldest(&log), 12);
    struct delta_buf out = {0};
    assert_int_equal(delta_answer(&log, &s[4], 11, 1 << 20, &out), -ENOENT);
    assert_int_equal(delta_answer(&log, &s[3], 12, 1 << 20, &out), -ENOENT); /* not the newest */
    out.len = 0;
    assert_int_equal(delta_answer(&log, &s[4], 12, 1 << 20, &out), 0);
    json_t *d = testutil_parse_json(out.p);
    ids_are(json_object_get(json_object_get(d, "workloads"), "set"), "5");
    json_decref(d);
    out.len = 0;
    assert_int_equal(delta_answer(&log, &s[4], 12, 40, &out), -E2BIG);
    /* a step out of sequence empties the log */
    s[2].revision = 99;
    assert_int_equal(delta_log_add(&log, &s[2], &s[3]), 0);
    assert_int_equal(log.n, 1);
    assert_int_equal(delta_log_oldest(&log), 99);
    /* a step above max_bytes empties it too */
    log.max_bytes = 10;
    assert_int_equal(delta_log_add(&log, &s[3], &s[4]), 0);
    assert_int_equal(log.n, 0);
    free(out.p);
    delta_log_clear(&log);
    for (int i = 0; i < 5; i++) {
        delta_snap_free(&s[i]);
        free(t[i].p);
    }
    json_decref(a);
}

/* ---- property: random change sequences ----------------------------------- */

static unsigned rnd_state;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % n;
}

/* One random change to `st` (a full answer): add, change or remove a record, or a setting. */
static void random_change(json_t *st, int64_t *next_id)
{
    int k = (int)rnd(4);
    if (k == 3) {
        json_object_set_new(json_object_get(st, "cluster"), "mode",
                            json_string(rnd(2) ? "protect" : "monitor"));
        return;
    }
    json_t *list = json_object_get(st, delta_kind_key[k]);
    size_t n = json_array_size(list);
    unsigned what = n ? rnd(3) : 0;
    if (what == 0) { /* ids grow: the store's */
        json_t *r = json_pack("{s:I,s:s+}", "id", (json_int_t)(*next_id)++, "name", "r-",
                              delta_kind_key[k]);
        json_object_set_new(r, "v", json_integer(rnd(1000)));
        json_array_append_new(list, r);
    } else if (what == 1) {
        json_object_set_new(json_array_get(list, rnd((unsigned)n)), "v", json_integer(rnd(1000)));
    } else {
        json_array_remove(list, rnd((unsigned)n));
    }
}

static void test_random_sequences(void **state)
{
    (void)state;
    enum { STATES = 40, ROUNDS = 30 };
    for (unsigned round = 0; round < ROUNDS; round++) {
        rnd_state = 1234u + round;
        json_t *st = testutil_parse_json(
            "{\"revision\": 1, \"cluster\": {\"name\": \"c\", \"mode\": \"monitor\"},"
            " \"objects\": [], \"rules\": [], \"workloads\": [],"
            " \"quarantines\": [], \"threat_intel\": null}");
        int64_t next_id = 1, rev = 1;
        json_t *states[STATES];
        struct delta_buf t[STATES];
        struct delta_snap s[STATES];
        struct delta_log log = {.max_steps = 1000, .max_bytes = 1 << 24};
        for (int i = 0; i < STATES; i++) {
            for (unsigned c = rnd(4); c > 0; c--) /* several changes, or none, per revision */
                random_change(st, &next_id);
            rev += 1 + rnd(3);
            json_object_set_new(st, "revision", json_integer(rev));
            states[i] = json_deep_copy(st);
            t[i] = (struct delta_buf){0};
            assert_int_equal(delta_snap_build(states[i], &t[i], &s[i]), 0);
            s[i].text = t[i].p;
            if (i > 0)
                assert_int_equal(delta_log_add(&log, &s[i - 1], &s[i]), 0);
        }
        const json_t *last = states[STATES - 1];
        for (int r = 0; r < STATES - 1; r++) {
            struct delta_buf out = {0};
            assert_int_equal(delta_answer(&log, &s[STATES - 1], s[r].revision, 1 << 24, &out), 0);
            json_t *d = testutil_parse_json(out.p), *got = NULL, *got2 = NULL;
            char why[200];
            int err = delta_apply(states[r], d, &got, why, sizeof(why));
            if (err)
                print_message("round %u from %d: %s\n", round, r, why);
            assert_int_equal(err, 0);
            assert_true(json_equal(got, last));
            /* the log's net change is the JSON diff's */
            json_t *d2 = delta_between(states[r], last);
            assert_true(json_equal(d, d2));
            assert_int_equal(delta_apply(states[r], d2, &got2, why, sizeof(why)), 0);
            assert_true(json_equal(got2, last));
            /* applied deltas chain: R -> R+1 -> ... gives the same */
            json_decref(d2);
            json_decref(got2);
            json_decref(got);
            json_decref(d);
            free(out.p);
        }
        json_t *chained = json_deep_copy(states[0]);
        for (int i = 1; i < STATES; i++) {
            json_t *d = delta_between(states[i - 1], states[i]), *next = NULL;
            char why[200];
            assert_int_equal(delta_apply(chained, d, &next, why, sizeof(why)), 0);
            json_decref(chained);
            json_decref(d);
            chained = next;
        }
        assert_true(json_equal(chained, last));
        char *x = json_dumps(chained, JSON_COMPACT), *y = json_dumps(last, JSON_COMPACT);
        assert_string_equal(x, y); /* records in the same (id) order */
        free(x);
        free(y);
        json_decref(chained);
        delta_log_clear(&log);
        for (int i = 0; i < STATES; i++) {
            delta_snap_free(&s[i]);
            free(t[i].p);
            json_decref(states[i]);
        }
        json_decref(st);
    }
}

/* ---- property: the tables compiled from the applied deltas ----------------- */

static struct moat_policy *load_answer(const json_t *a)
{
    json_t *clusters = json_pack("[O]", json_object_get(a, "cluster"));
    json_t *docs = json_array();
    assert_int_equal(remote_docs(clusters, json_object_get(a, "objects"),
                                 json_object_get(a, "rules"), json_object_get(a, "workloads"), NULL,
                                 docs),
                     0);
    char *text = json_dumps(docs, JSON_COMPACT);
    struct moat_diags diags;
    diags_init(&diags);
    struct moat_policy *p = NULL;
    int err = policy_load_text(&p, text, strlen(text), "server", &diags);
    for (size_t i = 0; err && i < diags.count; i++)
        print_message("%s\n", diags.items[i].text);
    assert_int_equal(err, 0);
    remote_take_ids(p, json_object_get(a, "rules"));
    diags_clear(&diags);
    free(text);
    json_decref(docs);
    json_decref(clusters);
    return p;
}

static const char *const ports_of[] = {"80", "443", "5432", "8000/8100", "22"};
static const char *const actions[] = {"allow", "block", "alert"};

static json_t *valid_rule(int64_t id)
{
    char name[32];
    snprintf(name, sizeof(name), "r%lld", (long long)id);
    return json_pack("{s:I,s:s,s:s,s:s,s:[{s:s,s:s}],s:s,s:s,s:i,s:b}", "id", (json_int_t)id,
                     "cluster", "prod", "name", name, "source", rnd(3) ? "o1" : "any",
                     "destinations", "object", rnd(2) ? "o2" : "o3", "ports", ports_of[rnd(5)],
                     "protocol", "tcp", "action", actions[rnd(3)], "priority", 1 + (int)rnd(900),
                     "enabled", 1);
}

/* One valid random change: workloads, rules, objects' apps, the cluster's mode. */
static void valid_change(json_t *st, int64_t *next_id, int *next_ip)
{
    json_t *wl = json_object_get(st, "workloads"), *rules = json_object_get(st, "rules");
    switch (rnd(8)) {
    case 0:
    case 1: {
        char name[16], ip[32];
        snprintf(name, sizeof(name), "w%d", *next_ip);
        snprintf(ip, sizeof(ip), "10.1.%d.%d", *next_ip / 250, 1 + *next_ip % 250);
        (*next_ip)++;
        json_array_append_new(wl, json_pack("{s:I,s:s,s:s,s:s,s:s,s:{s:s},s:[s]}", "id",
                                            (json_int_t)(*next_id)++, "cluster", "prod", "node",
                                            rnd(2) ? "n1" : "n2", "name", name, "namespace", "shop",
                                            "labels", "app", rnd(2) ? "a1" : "a2", "ips", ip));
        break;
    }
    case 2:
        if (json_array_size(wl))
            json_object_set_new(
                json_object_get(json_array_get(wl, rnd((unsigned)json_array_size(wl))), "labels"),
                "app", json_string(rnd(2) ? "a1" : "a3"));
        break;
    case 3:
        if (json_array_size(wl))
            json_array_remove(wl, rnd((unsigned)json_array_size(wl)));
        break;
    case 4:
        json_array_append_new(rules, valid_rule((*next_id)++));
        break;
    case 5:
        if (json_array_size(rules)) {
            size_t i = rnd((unsigned)json_array_size(rules));
            json_t *r =
                valid_rule(json_integer_value(json_object_get(json_array_get(rules, i), "id")));
            json_array_set_new(rules, i, r);
        }
        break;
    case 6:
        if (json_array_size(rules))
            json_array_remove(rules, rnd((unsigned)json_array_size(rules)));
        break;
    default:
        json_object_set_new(json_array_get(json_object_get(st, "objects"), rnd(3)), "app",
                            json_string(rnd(2)   ? "a1"
                                        : rnd(2) ? "a2"
                                                 : "a3"));
        json_object_set_new(json_object_get(st, "cluster"), "mode",
                            json_string(rnd(3) ? "protect" : "monitor"));
    }
}

/* Every flow between the workloads of `a` on the ports above gets the same verdict from both. */
static void same_verdicts(const json_t *a, const struct moat_tables *t1,
                          const struct moat_tables *t2)
{
    static const uint16_t ports[] = {80, 443, 5432, 8050, 22, 9999};
    const json_t *wl = json_object_get(a, "workloads");
    assert_int_equal(tables_identity_count(t1), tables_identity_count(t2));
    assert_int_equal(tables_addr_count(t1), tables_addr_count(t2));
    assert_int_equal(tables_policy_count(t1), tables_policy_count(t2));
    for (size_t i = 0; i < json_array_size(wl); i++)
        for (size_t j = 0; j < json_array_size(wl); j++) {
            struct moat_addr src, dst;
            const json_t *ws = json_array_get(wl, i), *wd = json_array_get(wl, j);
            assert_int_equal(
                addr_parse(json_string_value(json_array_get(json_object_get(ws, "ips"), 0)), &src),
                0);
            assert_int_equal(
                addr_parse(json_string_value(json_array_get(json_object_get(wd, "ips"), 0)), &dst),
                0);
            for (size_t k = 0; k < sizeof(ports) / sizeof(ports[0]); k++)
                for (int dir = 0; dir < 2; dir++) {
                    struct moat_verdict v1, v2;
                    tables_decide(t1, (enum moat_dir)dir, &src, &dst, 6, ports[k], &v1);
                    tables_decide(t2, (enum moat_dir)dir, &src, &dst, 6, ports[k], &v2);
                    assert_int_equal(v1.applies, v2.applies);
                    assert_int_equal(v1.defense_off, v2.defense_off);
                    assert_int_equal(v1.is_default, v2.is_default);
                    assert_int_equal(v1.action, v2.action);
                    assert_int_equal(v1.applied, v2.applied);
                    assert_int_equal(v1.rule_id, v2.rule_id);
                }
        }
}

static void test_random_sequences_same_tables(void **state)
{
    (void)state;
    enum { STATES = 25, ROUNDS = 8 };
    for (unsigned round = 0; round < ROUNDS; round++) {
        rnd_state = 777u + round;
        json_t *st = testutil_parse_json(
            "{\"revision\": 1, \"cluster\": {\"name\": \"prod\", \"defense\": \"on\", \"mode\": "
            "\"protect\", \"default_action\": \"block\", \"id\": \"prod\"},"
            " \"objects\": [{\"id\": 1, \"name\": \"o1\", \"namespace\": \"shop\", \"app\": "
            "\"a1\"},"
            "  {\"id\": 2, \"name\": \"o2\", \"namespace\": \"shop\", \"app\": \"a2\"},"
            "  {\"id\": 3, \"name\": \"o3\", \"namespace\": \"shop\", \"app\": \"a3\"}],"
            " \"rules\": [], \"workloads\": [], \"quarantines\": [], \"threat_intel\": null}");
        int64_t next_id = 100;
        int next_ip = 1;
        json_t *states[STATES];
        struct delta_buf t[STATES];
        struct delta_snap s[STATES];
        struct delta_log log = {.max_steps = 1000, .max_bytes = 1 << 24};
        json_t *held = NULL; /* an agent that follows every revision through the server's deltas */
        for (int i = 0; i < STATES; i++) {
            for (unsigned c = 1 + rnd(3); c > 0; c--)
                valid_change(st, &next_id, &next_ip);
            json_object_set_new(st, "revision", json_integer(2 + i));
            states[i] = json_deep_copy(st);
            t[i] = (struct delta_buf){0};
            assert_int_equal(delta_snap_build(states[i], &t[i], &s[i]), 0);
            s[i].text = t[i].p;
            if (i == 0) {
                held = json_deep_copy(states[0]);
                continue;
            }
            assert_int_equal(delta_log_add(&log, &s[i - 1], &s[i]), 0);
            struct delta_buf step = {0};
            assert_int_equal(delta_answer(&log, &s[i], s[i - 1].revision, 1 << 24, &step), 0);
            json_t *sd = testutil_parse_json(step.p), *next = NULL;
            char why[200];
            assert_int_equal(delta_apply(held, sd, &next, why, sizeof(why)), 0);
            json_decref(sd);
            json_decref(held);
            held = next;
            free(step.p);
        }
        /* and one that jumps from a random revision with the server's delta */
        int from = (int)rnd(STATES - 1);
        struct delta_buf out = {0};
        assert_int_equal(delta_answer(&log, &s[STATES - 1], s[from].revision, 1 << 24, &out), 0);
        json_t *d = testutil_parse_json(out.p), *jumped = NULL;
        char why[200];
        assert_int_equal(delta_apply(states[from], d, &jumped, why, sizeof(why)), 0);
        const json_t *last = states[STATES - 1];
        struct moat_policy *pf = load_answer(last), *ph = load_answer(held),
                           *pj = load_answer(jumped);
        struct moat_eval_opts o = {.node = "n1"};
        struct moat_tables *tf, *th, *tj;
        assert_int_equal(policy_compile(pf, &o, &tf), 0);
        assert_int_equal(policy_compile(ph, &o, &th), 0);
        assert_int_equal(policy_compile(pj, &o, &tj), 0);
        same_verdicts(last, tf, th);
        same_verdicts(last, tf, tj);
        tables_free(tf);
        tables_free(th);
        tables_free(tj);
        policy_free(pf);
        policy_free(ph);
        policy_free(pj);
        json_decref(d);
        json_decref(jumped);
        json_decref(held);
        free(out.p);
        delta_log_clear(&log);
        for (int i = 0; i < STATES; i++) {
            delta_snap_free(&s[i]);
            free(t[i].p);
            json_decref(states[i]);
        }
        json_decref(st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_text_is_the_answer),
        cmocka_unit_test(test_every_kind_of_change),
        cmocka_unit_test(test_removed_object_of_changed_rule_loads),
        cmocka_unit_test(test_delta_that_does_not_apply),
        cmocka_unit_test(test_too_old_and_too_big),
        cmocka_unit_test(test_random_sequences),
        cmocka_unit_test(test_random_sequences_same_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
