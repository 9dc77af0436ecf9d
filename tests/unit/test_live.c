/*
 * Unit and property tests of what moatd uses to follow workload deltas in
 * place (issue 17): lib/polstate (the kept full answer, spliced) and
 * lib/remote_live (remote workloads, policy and tables changed in place).
 *
 * Properties: random sequences of deltas spliced into the kept text give the
 * full answer delta_apply gives; random sequences of workload deltas applied
 * in place give the verdicts, address map and identities (by the objects
 * they carry) of compiling the final state from scratch; and the datapath's
 * write set (new identities' rows, the touched addresses' host entries)
 * turns the tables in force before into exactly the tables after.
 */
#include "testutil.h"

#include "addr.h"
#include "compile.h"
#include "delta.h"
#include "loader.h"
#include "mem.h"
#include "polstate.h"
#include "remote.h"
#include "remote_live.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned rnd_state;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % n;
}

static const char *const base_answer =
    "{\"revision\": 1, \"cluster\": {\"name\": \"prod\", \"defense\": \"on\", \"mode\": "
    "\"protect\", \"default_action\": \"block\", \"id\": \"prod\"},"
    " \"objects\": [{\"id\": 1, \"name\": \"o1\", \"namespace\": \"shop\", \"app\": \"a1\"},"
    "  {\"id\": 2, \"name\": \"o2\", \"namespace\": \"shop\", \"app\": \"a2\"},"
    "  {\"id\": 3, \"name\": \"o3\", \"namespace\": \"*\", \"labels\": {\"tier\": \"t1\"}},"
    "  {\"id\": 4, \"name\": \"nets\", \"kind\": \"ipblock\", \"cidrs\": [\"10.1.2.0/24\"]}],"
    " \"rules\": ["
    "  {\"id\": 10, \"cluster\": \"prod\", \"name\": \"r1\", \"source\": \"o1\","
    "   \"destinations\": [{\"object\": \"o2\", \"ports\": \"80\"}], \"protocol\": \"tcp\","
    "   \"action\": \"allow\", \"priority\": 10, \"enabled\": true},"
    "  {\"id\": 11, \"cluster\": \"prod\", \"name\": \"r2\", \"source\": \"any\","
    "   \"destinations\": [{\"object\": \"o3\", \"ports\": \"443\"}], \"protocol\": \"tcp\","
    "   \"action\": \"alert\", \"priority\": 20, \"enabled\": true},"
    "  {\"id\": 12, \"cluster\": \"prod\", \"name\": \"r3\", \"source\": \"o3\","
    "   \"destinations\": [{\"object\": \"o1\", \"ports\": \"8000/8100\"}], \"protocol\": "
    "\"tcp\", \"action\": \"block\", \"priority\": 5, \"enabled\": true},"
    "  {\"id\": 13, \"cluster\": \"prod\", \"name\": \"r4\", \"source\": \"nets\","
    "   \"destinations\": [{\"object\": \"o2\", \"ports\": \"22\"}], \"protocol\": \"tcp\","
    "   \"action\": \"allow\", \"priority\": 30, \"enabled\": true}],"
    " \"workloads\": [], \"quarantines\": [], \"quarantine_releases\": [],"
    " \"threat_intel\": null}";

/* ---- polstate ------------------------------------------------------------ */

static struct polstate *index_of(const json_t *a)
{
    struct polstate *st;
    char why[200] = "";
    int err = polstate_from_json(a, &st, why, sizeof(why));
    if (err)
        print_message("polstate: %s\n", why);
    assert_int_equal(err, 0);
    return st;
}

static void assert_text_is(const struct polstate *st, const json_t *want)
{
    json_t *got = testutil_parse_json(st->text);
    if (!json_equal(got, want)) {
        char *w = json_dumps(want, JSON_COMPACT);
        print_message("got  %s\nwant %s\n", st->text, w);
        free(w);
    }
    assert_true(json_equal(got, want));
    json_decref(got);
    /* the spans are the records, by increasing id */
    for (int k = 0; k < DELTA_KINDS; k++) {
        const json_t *list = json_object_get(want, delta_kind_key[k]);
        assert_int_equal(st->n[k], json_array_size(list));
        for (size_t i = 0; i < st->n[k]; i++) {
            json_error_t e;
            json_t *r = json_loadb(st->text + st->recs[k][i].off, st->recs[k][i].len, 0, &e);
            assert_non_null(r);
            assert_int_equal(json_integer_value(json_object_get(r, "id")), st->recs[k][i].id);
            assert_true(i == 0 || st->recs[k][i - 1].id < st->recs[k][i].id);
            json_decref(r);
        }
    }
}

static void random_record_change(json_t *st, int64_t *next_id)
{
    const char *key = delta_kind_key[rnd(DELTA_KINDS)];
    json_t *list = json_object_get(st, key);
    size_t n = json_array_size(list);
    switch (rnd(3)) {
    case 0: { /* add, keeping ids increasing */
        char name[32];
        snprintf(name, sizeof(name), "n\"%u\\", rnd(1000)); /* escapes in the text */
        json_array_append_new(list, json_pack("{s:I,s:s,s:{s:i}}", "id", (json_int_t)(*next_id)++,
                                              "name", name, "x", "y", (int)rnd(5)));
        break;
    }
    case 1:
        if (n)
            json_object_set_new(json_array_get(list, rnd((unsigned)n)), "v",
                                json_string(rnd(2) ? "[{,}]" : "b"));
        break;
    default:
        if (n)
            json_array_remove(list, rnd((unsigned)n));
    }
    if (!rnd(4))
        json_object_set_new(json_object_get(st, "cluster"), "mode",
                            json_string(rnd(2) ? "monitor" : "protect"));
    if (!rnd(4))
        json_object_set_new(st, "quarantines", json_pack("[{s:s}]", "addr", "10.0.0.1"));
}

static void test_polstate_splices_like_delta_apply(void **state)
{
    (void)state;
    for (unsigned round = 0; round < 20; round++) {
        rnd_state = 4242u + round;
        json_t *st = testutil_parse_json(base_answer);
        int64_t next_id = 100;
        struct polstate *held = index_of(st);
        assert_text_is(held, st);
        json_t *prev = json_deep_copy(st);
        for (int step = 0; step < 30; step++) {
            for (unsigned c = 1 + rnd(4); c > 0; c--)
                random_record_change(st, &next_id);
            json_object_set_new(st, "revision", json_integer(2 + step));
            json_t *d = delta_between(prev, st);
            assert_non_null(d);
            json_t *want = NULL;
            char why[200] = "";
            assert_int_equal(delta_apply(prev, d, &want, why, sizeof(why)), 0);
            struct polstate *next;
            int err = polstate_apply(held, d, &next, why, sizeof(why));
            if (err)
                print_message("polstate_apply: %s\n", why);
            assert_int_equal(err, 0);
            assert_int_equal(next->revision, 2 + step);
            assert_text_is(next, want);
            /* and the text indexes back to the same spans */
            struct polstate *again;
            char *copy = strdup(next->text);
            assert_int_equal(polstate_index(copy, strlen(copy), &again, why, sizeof(why)), 0);
            for (int k = 0; k < DELTA_KINDS; k++) {
                assert_int_equal(again->n[k], next->n[k]);
                for (size_t i = 0; i < next->n[k]; i++)
                    assert_int_equal(again->recs[k][i].off, next->recs[k][i].off);
            }
            polstate_free(again);
            polstate_free(held);
            held = next;
            json_decref(want);
            json_decref(d);
            json_decref(prev);
            prev = json_deep_copy(st);
        }
        polstate_free(held);
        json_decref(prev);
        json_decref(st);
    }
}

static void test_polstate_refuses_what_does_not_apply(void **state)
{
    (void)state;
    json_t *a = testutil_parse_json(base_answer);
    struct polstate *st = index_of(a);
    char why[200] = "";
    struct polstate *out = (struct polstate *)1;
    const char *bad[] = {
        "{\"revision\": 3, \"since\": 2, \"delta\": true}", /* another base */
        "{\"revision\": 1, \"since\": 1, \"delta\": true}", /* not newer */
        "{\"revision\": 2, \"since\": 1}",                  /* not a delta */
        "{\"revision\": 2, \"since\": 1, \"delta\": true, \"rules\": {\"removed\": [99]}}",
        "{\"revision\": 2, \"since\": 1, \"delta\": true, \"rules\": {\"removed\": [10, 10]}}",
        "{\"revision\": 2, \"since\": 1, \"delta\": true, \"rules\": {\"set\": [{\"id\": 10}],"
        " \"removed\": [10]}}",
        "{\"revision\": 2, \"since\": 1, \"delta\": true, \"objects\": {\"set\": [{\"x\": 1}]}}",
        "{\"revision\": 2, \"since\": 1, \"delta\": true, \"objects\": []}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *d = testutil_parse_json(bad[i]);
        why[0] = '\0';
        assert_int_equal(polstate_apply(st, d, &out, why, sizeof(why)), -EINVAL);
        assert_null(out);
        assert_true(why[0] != '\0');
        json_decref(d);
    }
    assert_text_is(st, a); /* left as it was */
    /* what the agent reads back may be damaged: refused, with a reason */
    const char *texts[] = {"",
                           "[]",
                           "{\"revision\": \"x\"}",
                           "{\"revision\": 1, \"rules\": [1]}",
                           "{\"revision\": 1, \"rules\": [{\"id\": 1}, {\"id\": 1}]}",
                           "{\"revision\": 1, \"rules\": [{\"id\": 1}"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct polstate *p;
        char *t = strdup(texts[i]);
        assert_int_equal(polstate_index(t, strlen(t), &p, why, sizeof(why)), -EINVAL);
    }
    /* a workload-only delta is told apart */
    json_t *w = testutil_parse_json(
        "{\"revision\": 2, \"since\": 1, \"delta\": true, \"objects\": {\"set\": [],"
        " \"removed\": []}, \"workloads\": {\"removed\": [1]}}");
    json_t *r = testutil_parse_json(
        "{\"revision\": 2, \"since\": 1, \"delta\": true, \"rules\": {\"set\": [],"
        " \"removed\": [10]}}");
    assert_true(polstate_workloads_only(w));
    assert_false(polstate_workloads_only(r));
    json_decref(w);
    json_decref(r);
    polstate_free(st);
    json_decref(a);
}

/* ---- remote_live: the agent's in-place path ------------------------------ */

static int add_set(void *arg, struct moat_policy *p)
{
    return remote_workloads_add(arg, p);
}

/* What the agent holds for answer `a`: the compact remote workloads, the policy, its tables. */
struct held {
    struct remote_workloads *r;
    struct moat_policy *p;
    struct moat_tables *t;
};

static struct held hold(const json_t *a)
{
    struct held h = {0};
    json_t *clusters = json_pack("[O]", json_object_get(a, "cluster"));
    json_t *docs = json_array();
    const json_t *objects = json_object_get(a, "objects"), *rules = json_object_get(a, "rules");
    assert_int_equal(remote_docs_compact(clusters, objects, rules, NULL, "me", docs), 0);
    char *text = json_dumps(docs, JSON_COMPACT);
    struct moat_diags d;
    diags_init(&d);
    assert_int_equal(remote_workloads_build(clusters, objects, json_object_get(a, "workloads"),
                                            "me", "server", &h.r, &d),
                     0);
    struct policy_source src = {
        .text = text, .len = strlen(text), .name = "server", .limits = &doc_limits_server};
    int err = policy_load_sources_then(&h.p, &src, 1, add_set, h.r, &d);
    for (size_t i = 0; err && i < d.count; i++)
        print_message("%s\n", d.items[i].text);
    assert_int_equal(err, 0);
    remote_take_ids(h.p, rules);
    struct moat_eval_opts o = {.node = "me"};
    assert_int_equal(policy_compile(h.p, &o, &h.t), 0);
    diags_clear(&d);
    free(text);
    json_decref(docs);
    json_decref(clusters);
    return h;
}

static void held_free(struct held *h)
{
    tables_free(h->t);
    policy_free(h->p);
    remote_workloads_free(h->r);
}

static const char *const apps[] = {"a1", "a2", "a3"};
static const char *const nodes[] = {"n1", "n2", "me"};

static void ip_of(int k, char *buf, size_t n)
{
    /* some in 10.1.2.0/24 (the ipblock), some v6 */
    if (k % 5 == 4)
        snprintf(buf, n, "fd00::%x", k);
    else
        snprintf(buf, n, "10.1.%d.%d", k % 3 + 1, 1 + k / 3 % 250);
}

static json_t *random_workload(int64_t id, int *next_ip)
{
    char name[16], ip[64];
    snprintf(name, sizeof(name), "w%lld", (long long)id);
    ip_of((*next_ip)++, ip, sizeof(ip));
    json_t *ips = json_pack("[s]", ip);
    if (!rnd(4)) {
        char ip2[64];
        ip_of((*next_ip)++, ip2, sizeof(ip2));
        json_array_append_new(ips, json_string(ip2));
    }
    json_t *labels = json_pack("{s:s}", "app", apps[rnd(3)]);
    if (rnd(2))
        json_object_set_new(labels, "tier", json_string(rnd(2) ? "t1" : "t2"));
    return json_pack("{s:I,s:s,s:s,s:s,s:s,s:o,s:o}", "id", (json_int_t)id, "cluster",
                     rnd(8) ? "prod" : "other", "node", nodes[rnd(3)], "name", name, "namespace",
                     rnd(4) ? "shop" : "ns0", "labels", labels, "ips", ips);
}

/* One random workload change of answer `st`: add, relabel, move, readdress, remove, break. */
static void workload_change(json_t *st, int64_t *next_id, int *next_ip)
{
    json_t *wl = json_object_get(st, "workloads");
    size_t n = json_array_size(wl);
    json_t *w = n ? json_array_get(wl, rnd((unsigned)n)) : NULL;
    switch (w ? rnd(7) : 0) {
    case 0:
    case 1:
        json_array_append_new(wl, random_workload((*next_id)++, next_ip));
        break;
    case 2:
        json_object_set_new(json_object_get(w, "labels"), "app", json_string(apps[rnd(3)]));
        break;
    case 3:
        json_object_set_new(w, "node", json_string(nodes[rnd(3)]));
        break;
    case 4: {
        char ip[64];
        ip_of((*next_ip)++, ip, sizeof(ip));
        json_object_set_new(w, "ips", json_pack("[s]", ip));
        break;
    }
    case 5:
        if (!rnd(3)) /* refused by the loader's checks: left out, like the full path does */
            json_object_set_new(w, "ips", json_pack("[s]", "not-an-address"));
        else
            json_object_set_new(w, "namespace", json_string(rnd(2) ? "shop" : "ns0"));
        break;
    default:
        json_array_remove(wl, rnd((unsigned)n));
    }
}

/* Every address the test used, and outside ones. */
static size_t all_addrs(int next_ip, struct moat_addr *out, size_t cap)
{
    size_t n = 0;
    char ip[64];
    for (int k = 0; k < next_ip && n < cap; k++) {
        ip_of(k, ip, sizeof(ip));
        assert_int_equal(addr_parse(ip, &out[n++]), 0);
    }
    const char *extra[] = {"10.1.2.250", "192.0.2.1", "fd00::ffff"};
    for (size_t i = 0; i < 3 && n < cap; i++)
        assert_int_equal(addr_parse(extra[i], &out[n++]), 0);
    return n;
}

static void same_identity(const struct moat_tables *a, uint32_t ia, const struct moat_tables *b,
                          uint32_t ib, size_t nobjects)
{
    struct moat_ident_info x = tables_identity(a, ia), y = tables_identity(b, ib);
    assert_int_equal(x.kind, y.kind);
    assert_int_equal(x.cluster, y.cluster);
    for (uint32_t o = 0; o < nobjects; o++)
        assert_int_equal(tables_identity_has(a, ia, o), tables_identity_has(b, ib, o));
}

static void same_as_fresh(const struct held *h, const json_t *st, int next_ip)
{
    struct held f = hold(st);
    assert_int_equal(tables_addr_count(h->t), tables_addr_count(f.t));
    assert_int_equal(h->p->nobjects, f.p->nobjects);
    static struct moat_addr addrs[512];
    size_t n = all_addrs(next_ip, addrs, 512);
    for (size_t i = 0; i < n; i++)
        same_identity(h->t, tables_identity_of(h->t, &addrs[i]), f.t,
                      tables_identity_of(f.t, &addrs[i]), f.p->nobjects);
    static const uint16_t ports[] = {80, 443, 8050, 22, 9999};
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j += 1 + i % 3)
            for (size_t k = 0; k < sizeof(ports) / sizeof(ports[0]); k++)
                for (int dir = 0; dir < 2; dir++) {
                    struct moat_verdict v1, v2;
                    tables_decide(h->t, (enum moat_dir)dir, &addrs[i], &addrs[j], 6, ports[k], &v1);
                    tables_decide(f.t, (enum moat_dir)dir, &addrs[i], &addrs[j], 6, ports[k], &v2);
                    assert_int_equal(v1.applies, v2.applies);
                    assert_int_equal(v1.defense_off, v2.defense_off);
                    assert_int_equal(v1.is_default, v2.is_default);
                    assert_int_equal(v1.applied, v2.applied);
                    assert_int_equal(v1.rule_id, v2.rule_id);
                    assert_int_equal(v1.cluster, v2.cluster);
                }
    held_free(&f);
}

/* ---- a datapath as update() writes it: host entries and policy rows ------ */

struct kernel {
    struct moat_addr_entry *addrs;
    size_t naddrs, cap_addrs;
    struct moat_policy_entry *rows;
    size_t nrows, cap_rows;
    uint32_t first_new; /* collecting: only rows with an identity from this one on */
};

static int collect_row(void *ctx, const struct moat_policy_entry *e)
{
    struct kernel *k = ctx;
    if (e->subject < k->first_new && e->peer < k->first_new)
        return 0;
    assert_int_equal(moat_grow(&k->rows, &k->cap_rows, k->nrows + 1, sizeof(*k->rows)), 0);
    k->rows[k->nrows++] = *e;
    return 0;
}

static int cmp_u(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

/* Field by field (no padding compared). */
static int cmp_entry(const void *pa, const void *pb)
{
    const struct moat_policy_entry *a = pa, *b = pb;
    int c = cmp_u(a->dir, b->dir);
    c = c ? c : cmp_u(a->pclass, b->pclass);
    c = c ? c : cmp_u(a->subject, b->subject);
    c = c ? c : cmp_u(a->peer, b->peer);
    c = c ? c : cmp_u(a->port_lo, b->port_lo);
    c = c ? c : cmp_u(a->port_hi, b->port_hi);
    c = c ? c : cmp_u(a->rule_id, b->rule_id);
    c = c ? c : cmp_u(a->priority, b->priority);
    return c ? c : cmp_u(a->action, b->action);
}

static long find_addr(const struct kernel *k, const struct moat_prefix *p)
{
    for (size_t i = 0; i < k->naddrs; i++)
        if (k->addrs[i].prefix.len == p->len && addr_cmp(&k->addrs[i].prefix.addr, &p->addr) == 0)
            return (long)i;
    return -1;
}

static void kernel_load(struct kernel *k, const struct moat_tables *t)
{
    memset(k, 0, sizeof(*k));
    for (size_t i = 0; i < tables_addr_count(t); i++) {
        assert_int_equal(moat_grow(&k->addrs, &k->cap_addrs, k->naddrs + 1, sizeof(*k->addrs)), 0);
        k->addrs[k->naddrs++] = tables_addr_entry(t, i);
    }
    tables_policy_foreach(t, collect_row, k);
}

/* What update_ebpf writes: the new identities' rows, then each touched address's host entry. */
static void kernel_update(struct kernel *k, const struct moat_tables *t,
                          const struct remote_change *c)
{
    k->first_new = c->first_new;
    tables_policy_foreach(t, collect_row, k);
    for (size_t i = 0; i < c->naddrs; i++) {
        struct moat_prefix p = {.addr = c->addrs[i], .len = 128};
        uint32_t id = tables_identity_of(t, &c->addrs[i]);
        enum moat_ident_kind kind = tables_identity(t, id).kind;
        long at = find_addr(k, &p);
        if (kind != MOAT_IDENT_WORKLOAD && kind != MOAT_IDENT_HOST) {
            if (at >= 0)
                k->addrs[at] = k->addrs[--k->naddrs];
            continue;
        }
        if (at < 0) {
            assert_int_equal(moat_grow(&k->addrs, &k->cap_addrs, k->naddrs + 1, sizeof(*k->addrs)),
                             0);
            at = (long)k->naddrs++;
        }
        k->addrs[at] = (struct moat_addr_entry){.prefix = p, .identity = id};
    }
    k->first_new = UINT32_MAX;
}

static void kernel_is(struct kernel *k, const struct moat_tables *t)
{
    struct kernel want;
    kernel_load(&want, t);
    assert_int_equal(k->naddrs, want.naddrs);
    for (size_t i = 0; i < want.naddrs; i++) {
        long at = find_addr(k, &want.addrs[i].prefix);
        assert_true(at >= 0);
        assert_int_equal(k->addrs[at].identity, want.addrs[i].identity);
    }
    assert_int_equal(k->nrows, want.nrows);
    if (k->nrows) {
        qsort(k->rows, k->nrows, sizeof(*k->rows), cmp_entry);
        qsort(want.rows, want.nrows, sizeof(*want.rows), cmp_entry);
    }
    for (size_t i = 0; i < k->nrows; i++)
        assert_int_equal(cmp_entry(&k->rows[i], &want.rows[i]), 0);
    free(want.addrs);
    free(want.rows);
}

/* The idle count as tables_idle_identity_count keeps it, counted the long way. */
static size_t idle_by_scan(const struct moat_tables *t)
{
    size_t n = 0;
    for (uint32_t id = 0; id < tables_identity_count(t); id++) {
        struct moat_ident_info i = tables_identity(t, id);
        n += i.kind == MOAT_IDENT_WORKLOAD && i.users == 0;
    }
    return n;
}

static void test_workload_deltas_in_place_match_a_fresh_compile(void **state)
{
    (void)state;
    unsigned applied = 0, refused = 0;
    for (unsigned round = 0; round < 30; round++) {
        rnd_state = 9000u + round;
        json_t *st = testutil_parse_json(base_answer);
        int64_t next_id = 100;
        int next_ip = 0;
        for (int i = 0; i < 8; i++)
            workload_change(st, &next_id, &next_ip);
        struct held h = hold(st);
        struct remote_live *live;
        assert_int_equal(remote_live_new(h.r, h.p, h.t, &live), 0);
        struct kernel k;
        kernel_load(&k, h.t);
        k.first_new = UINT32_MAX;
        json_t *prev = json_deep_copy(st);
        for (int step = 0; step < 25; step++) {
            for (unsigned c = 1 + rnd(5); c > 0; c--)
                workload_change(st, &next_id, &next_ip);
            json_object_set_new(st, "revision", json_integer(2 + step));
            json_t *d = delta_between(prev, st);
            assert_non_null(d);
            assert_true(polstate_workloads_only(d));
            struct remote_change c;
            struct moat_diags diags;
            diags_init(&diags);
            char why[200] = "";
            int err = remote_live_apply(live, json_object_get(d, "workloads"), &c, &diags, why,
                                        sizeof(why));
            diags_clear(&diags);
            if (err) /* only what a full load checks: addresses reused within one delta */
                print_message("in place refused: %s\n", why);
            assert_int_equal(err, 0);
            applied++;
            kernel_update(&k, h.t, &c);
            kernel_is(&k, h.t);
            same_as_fresh(&h, st, next_ip);
            assert_int_equal(tables_idle_identity_count(h.t), idle_by_scan(h.t));
            remote_change_clear(&c);
            json_decref(d);
            json_decref(prev);
            prev = json_deep_copy(st);
        }
        /* a full rebuild starts from the compacted set: the same verdicts again */
        remote_live_free(live);
        remote_workloads_compact(h.r);
        assert_int_equal(h.r->holes, 0);
        free(k.addrs);
        free(k.rows);
        held_free(&h);
        json_decref(prev);
        json_decref(st);
    }
    print_message("%u deltas applied in place, %u refused\n", applied, refused);
}

static void test_in_place_refuses_a_taken_address(void **state)
{
    (void)state;
    json_t *st = testutil_parse_json(base_answer);
    json_t *wl = json_object_get(st, "workloads");
    json_array_append_new(
        wl, testutil_parse_json("{\"id\": 1, \"cluster\": \"prod\", \"node\": \"n1\","
                                " \"name\": \"a\", \"namespace\": \"shop\","
                                " \"labels\": {\"app\": \"a1\"}, \"ips\": [\"10.1.1.1\"]}"));
    struct held h = hold(st);
    struct remote_live *live;
    assert_int_equal(remote_live_new(h.r, h.p, h.t, &live), 0);
    /* a second workload on the first one's address: only a full load says what is wrong */
    json_t *chg = testutil_parse_json(
        "{\"set\": [{\"id\": 2, \"cluster\": \"prod\", \"node\": \"n2\","
        " \"name\": \"b\", \"namespace\": \"shop\", \"ips\": [\"10.1.1.1\"]}]}");
    struct remote_change c;
    struct moat_diags d;
    diags_init(&d);
    char why[200] = "";
    assert_int_equal(remote_live_apply(live, chg, &c, &d, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "10.1.1.1"));
    remote_change_clear(&c);
    /* the same address moving from one workload to another in one delta is fine */
    json_t *move =
        testutil_parse_json("{\"removed\": [1], \"set\": [{\"id\": 3, \"cluster\": \"prod\","
                            " \"node\": \"n2\", \"name\": \"c\", \"namespace\": \"shop\","
                            " \"labels\": {\"app\": \"a2\"}, \"ips\": [\"10.1.1.1\"]}]}");
    remote_live_free(live);
    held_free(&h);
    h = hold(st);
    assert_int_equal(remote_live_new(h.r, h.p, h.t, &live), 0);
    assert_int_equal(remote_live_apply(live, move, &c, &d, why, sizeof(why)), 0);
    assert_int_equal(c.set, 1);
    assert_int_equal(c.removed, 1);
    struct moat_addr a;
    assert_int_equal(addr_parse("10.1.1.1", &a), 0);
    uint32_t id = tables_identity_of(h.t, &a);
    assert_true(tables_identity_has(h.t, id, policy_find_object(h.p, "o2")));
    assert_false(tables_identity_has(h.t, id, policy_find_object(h.p, "o1")));
    remote_change_clear(&c);
    diags_clear(&d);
    remote_live_free(live);
    held_free(&h);
    json_decref(move);
    json_decref(chg);
    json_decref(st);
}

/* One workload on n1 with label v=V, as a delta's "set". */
static json_t *versioned(int64_t id, const char *ip, int v)
{
    char val[16];
    snprintf(val, sizeof(val), "%d", v);
    return json_pack("{s:[{s:I,s:s,s:s,s:s,s:s,s:{s:s},s:[s]}]}", "set", "id", (json_int_t)id,
                     "cluster", "prod", "node", "n1", "name", "w", "namespace", "shop", "labels",
                     "v", val, "ips", ip);
}

static void apply_in_place(struct remote_live *live, json_t *chg)
{
    struct remote_change c;
    struct moat_diags d;
    diags_init(&d);
    char why[200] = "";
    int err = remote_live_apply(live, chg, &c, &d, why, sizeof(why));
    if (err)
        print_message("in place refused: %s\n", why);
    assert_int_equal(err, 0);
    remote_change_clear(&c);
    diags_clear(&d);
    json_decref(chg);
}

/*
 * A rollout that gives a workload a new set of objects each time (one object
 * per version label) leaves one idle identity per step; the agent is told to
 * compile afresh once MOAT_IDLE_IDS_MIN are idle, and a fresh compile has none.
 */
static void test_idle_identities_come_due_for_compaction(void **state)
{
    (void)state;
    enum { VERSIONS = MOAT_IDLE_IDS_MIN + 10 };
    json_t *st = testutil_parse_json(base_answer);
    json_t *objects = json_object_get(st, "objects");
    for (int v = 0; v < VERSIONS; v++) {
        char name[16], val[16];
        snprintf(name, sizeof(name), "v%d", v);
        snprintf(val, sizeof(val), "%d", v);
        json_array_append_new(objects, json_pack("{s:i,s:s,s:s,s:{s:s}}", "id", 100 + v, "name",
                                                 name, "namespace", "*", "labels", "v", val));
    }
    json_t *first = versioned(1, "10.1.1.1", 0);
    json_object_set(st, "workloads", json_object_get(first, "set"));
    json_decref(first);
    struct held h = hold(st);
    assert_int_equal(tables_idle_identity_count(h.t), 0);
    struct remote_live *live;
    assert_int_equal(remote_live_new(h.r, h.p, h.t, &live), 0);
    for (int v = 1; v < MOAT_IDLE_IDS_MIN; v++) {
        apply_in_place(live, versioned(1, "10.1.1.1", v));
        assert_int_equal(tables_idle_identity_count(h.t), (size_t)v);
        assert_false(tables_compaction_due(h.t));
    }
    apply_in_place(live, versioned(1, "10.1.1.1", MOAT_IDLE_IDS_MIN));
    assert_int_equal(tables_idle_identity_count(h.t), MOAT_IDLE_IDS_MIN);
    assert_true(tables_compaction_due(h.t));
    /* back to an earlier version: its identity again, the one left goes idle */
    size_t ids = tables_identity_count(h.t);
    apply_in_place(live, versioned(1, "10.1.1.1", 3));
    assert_int_equal(tables_identity_count(h.t), ids);
    assert_int_equal(tables_idle_identity_count(h.t), MOAT_IDLE_IDS_MIN);
    /* a second workload takes an idle identity; removing the first leaves its own */
    apply_in_place(live, versioned(2, "10.1.1.2", 7));
    assert_int_equal(tables_idle_identity_count(h.t), MOAT_IDLE_IDS_MIN - 1);
    apply_in_place(live, json_pack("{s:[i]}", "removed", 1));
    assert_int_equal(tables_idle_identity_count(h.t), MOAT_IDLE_IDS_MIN);
    assert_int_equal(tables_idle_identity_count(h.t), idle_by_scan(h.t));
    /* the full path: what is in force compiled afresh keeps only the identity in use */
    json_t *now = versioned(2, "10.1.1.2", 7);
    json_object_set(st, "workloads", json_object_get(now, "set"));
    json_decref(now);
    struct held f = hold(st);
    assert_int_equal(tables_idle_identity_count(f.t), 0);
    assert_false(tables_compaction_due(f.t));
    assert_true(tables_identity_count(f.t) < ids / 4);
    held_free(&f);
    remote_live_free(live);
    held_free(&h);
    json_decref(st);
}

/* One random change of `objects`: a field, a label value or key, one added or removed. */
static void object_change(json_t *objects, int *next_id)
{
    static const char *const keys[] = {"tier", "team", "zone"};
    size_t n = json_array_size(objects);
    json_t *o = n ? json_array_get(objects, rnd((unsigned)n)) : NULL;
    switch (o ? rnd(6) : 0) {
    case 0: {
        char name[16];
        snprintf(name, sizeof(name), "x%d", *next_id);
        json_array_append_new(objects, json_pack("{s:i,s:s,s:s,s:{s:s}}", "id", (*next_id)++,
                                                 "name", name, "namespace", "*", "labels",
                                                 keys[rnd(3)], rnd(2) ? "t1" : "t2"));
        break;
    }
    case 1:
        json_object_set_new(o, "app", json_string(apps[rnd(3)]));
        break;
    case 2:
        json_object_set_new(o, "namespace", json_string(rnd(2) ? "shop" : "*"));
        break;
    case 3:
        json_object_set_new(o, "labels", json_pack("{s:s}", keys[rnd(3)], rnd(2) ? "t1" : "t2"));
        break;
    case 4:
        json_object_set_new(o, "namespace_labels", json_pack("{s:s}", keys[rnd(3)], "t1"));
        break;
    default:
        json_array_remove(objects, rnd((unsigned)n));
    }
}

/*
 * What moatd's objects_rules path rests on: while objects select on the same
 * label keys, the remote workloads built with the new objects are those built
 * with the old ones (so they are kept); when the keys differ, it says so.
 */
static void test_remote_workloads_fit_changed_objects(void **state)
{
    (void)state;
    unsigned fit = 0, refit = 0;
    for (unsigned round = 0; round < 40; round++) {
        rnd_state = 7000u + round;
        json_t *st = testutil_parse_json(base_answer);
        int64_t next_id = 100;
        int next_ip = 0, next_obj = 50;
        for (int i = 0; i < 30; i++)
            workload_change(st, &next_id, &next_ip);
        json_t *wl = json_object_get(st, "workloads");
        for (size_t i = 0; i < json_array_size(wl); i++) /* labels objects may select on */
            json_object_set_new(json_object_get(json_array_get(wl, i), "labels"),
                                rnd(2) ? "team" : "zone", json_string("t1"));
        json_t *clusters = json_pack("[O]", json_object_get(st, "cluster"));
        json_t *objects = json_deep_copy(json_object_get(st, "objects"));
        struct moat_diags d;
        diags_init(&d);
        struct remote_workloads *r;
        assert_int_equal(remote_workloads_build(clusters, objects, wl, "me", "t", &r, &d), 0);
        for (int step = 0; step < 10; step++) {
            object_change(objects, &next_obj);
            struct remote_workloads *again;
            assert_int_equal(remote_workloads_build(clusters, objects, wl, "me", "t", &again, &d),
                             0);
            if (remote_workloads_fit(r, objects)) {
                fit++;
                assert_true(remote_workloads_equal(r, again));
                remote_workloads_free(again);
            } else { /* the full path: built anew, and that one fits */
                refit++;
                assert_true(remote_workloads_fit(again, objects));
                remote_workloads_free(r);
                r = again;
            }
        }
        remote_workloads_free(r);
        diags_clear(&d);
        json_decref(objects);
        json_decref(clusters);
        json_decref(st);
    }
    print_message("%u object changes kept the remote workloads, %u built them anew\n", fit, refit);
    assert_true(fit > 0 && refit > 0);
}

static void test_polstate_tells_which_lists_change(void **state)
{
    (void)state;
    json_t *w = testutil_parse_json("{\"workloads\": {\"set\": [{\"id\": 1}], \"removed\": []}}");
    json_t *r = testutil_parse_json("{\"rules\": {\"set\": [], \"removed\": [4]},"
                                    " \"workloads\": {\"set\": [], \"removed\": []}}");
    json_t *both = testutil_parse_json("{\"objects\": {\"set\": [{\"id\": 2}], \"removed\": []},"
                                       " \"workloads\": {\"set\": [], \"removed\": [3]}}");
    json_t *none = testutil_parse_json("{\"quarantines\": []}");
    assert_true(polstate_workloads_only(w) && !polstate_no_workload_change(w));
    assert_true(!polstate_workloads_only(r) && polstate_no_workload_change(r));
    assert_true(!polstate_workloads_only(both) && !polstate_no_workload_change(both));
    assert_true(polstate_workloads_only(none) && polstate_no_workload_change(none));
    json_decref(w);
    json_decref(r);
    json_decref(both);
    json_decref(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_polstate_splices_like_delta_apply),
        cmocka_unit_test(test_polstate_refuses_what_does_not_apply),
        cmocka_unit_test(test_workload_deltas_in_place_match_a_fresh_compile),
        cmocka_unit_test(test_in_place_refuses_a_taken_address),
        cmocka_unit_test(test_idle_identities_come_due_for_compaction),
        cmocka_unit_test(test_remote_workloads_fit_changed_objects),
        cmocka_unit_test(test_polstate_tells_which_lists_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
