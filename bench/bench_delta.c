/*
 * bench_delta: the cost of policy deltas (lib/delta) at a cluster size, one
 * core, in-process. A full answer as the server builds it (N workloads as
 * agents report them, 1,000 rules, 500 objects) and, interleaved per round:
 *   full_dump   json_dumps of the answer (what the server did before deltas)
 *   snapshot    delta_snap_build: the same text with every record's span
 *   diff        delta_log_add: the records of two snapshots compared
 *   delta       delta_answer: the delta text from the previous revision
 *   agent_parse json_loads of the full text (the agent reading policy.json)
 *   agent_apply delta_apply of a delta to that base
 * and the bytes an agent receives per change, full vs delta: a rule changed,
 * one workload added, one removed. Prints one line of key=value (medians of
 * the rounds, raw rounds after `raw:`).
 * Usage: bench_delta WORKLOADS [ROUNDS]
 */
#include "delta.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static json_t *workload(int i)
{
    char name[32], ip[32], app[16], ns[16];
    snprintf(name, sizeof(name), "w-%d", i);
    snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    snprintf(app, sizeof(app), "app-%d", i % 20);
    snprintf(ns, sizeof(ns), "ns-%d", i % 50);
    return json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:[s]}", "id", 1000000 + i,
                     "cluster", "bench", "node", "node-1", "name", name, "namespace", ns, "image",
                     "registry.example/shop/app:1.2.3", "labels", "app", app, "tier", "back",
                     "team", "payments", "ips", ip);
}

static json_t *answer(int workloads, int64_t rev)
{
    json_t *objects = json_array(), *rules = json_array(), *wl = json_array();
    for (int i = 0; i < 500; i++)
        json_array_append_new(objects, json_pack("{s:i,s:s+,s:s,s:s+}", "id", 10 + i, "name", "o-",
                                                 "x", "namespace", "ns-1", "app", "app-", "y"));
    for (int i = 0; i < 1000; i++)
        json_array_append_new(rules, json_pack("{s:i,s:s,s:s,s:s,s:[{s:s,s:s}],s:s,s:s,s:i,s:b}",
                                               "id", 600 + i, "cluster", "bench", "name", "r",
                                               "source", "o-x", "destinations", "object", "o-x",
                                               "ports", "80", "protocol", "tcp", "action", "allow",
                                               "priority", 1 + i % 900, "enabled", 1));
    for (int i = 0; i < workloads; i++)
        json_array_append_new(wl, workload(i));
    return json_pack("{s:I,s:{s:s,s:s,s:s},s:o,s:o,s:o,s:[],s:[],s:n}", "revision", (json_int_t)rev,
                     "cluster", "name", "bench", "defense", "on", "id", "bench", "objects", objects,
                     "rules", rules, "workloads", wl, "quarantines", "quarantine_releases",
                     "threat_intel");
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    double *c = malloc(sizeof(double) * (size_t)n);
    memcpy(c, v, sizeof(double) * (size_t)n);
    qsort(c, (size_t)n, sizeof(double), cmp_d);
    double m = c[n / 2];
    free(c);
    return m;
}

enum { M_FULL, M_SNAP, M_DIFF, M_DELTA, M_PARSE, M_APPLY, M_N };
static const char *const names[M_N] = {"full_dump_ms", "snapshot_ms",    "diff_ms",
                                       "delta_ms",     "agent_parse_ms", "agent_apply_ms"};

/* Snapshot of `a` into buf/snap (text set). */
static void snap_of(const json_t *a, struct delta_buf *buf, struct delta_snap *snap)
{
    buf->len = 0;
    if (delta_snap_build(a, buf, snap) != 0) {
        fprintf(stderr, "bench_delta: snapshot failed\n");
        exit(1);
    }
    snap->text = buf->p;
}

/* Bytes of the full answer and of the delta after `change` was made to a copy of `base`. */
static void bytes_for(const json_t *base, void (*change)(json_t *), size_t *full, size_t *delta)
{
    json_t *b = json_deep_copy(base);
    json_object_set_new(b, "revision",
                        json_integer(json_integer_value(json_object_get(b, "revision")) + 1));
    change(b);
    struct delta_buf ta = {0}, tb = {0}, out = {0};
    struct delta_snap sa, sb;
    struct delta_log log = {.max_steps = 10, .max_bytes = (size_t)1 << 30};
    snap_of(base, &ta, &sa);
    snap_of(b, &tb, &sb);
    delta_log_add(&log, &sa, &sb);
    delta_answer(&log, &sb, sa.revision, (size_t)1 << 30, &out);
    *full = tb.len;
    *delta = out.len;
    delta_log_clear(&log);
    delta_snap_free(&sa);
    delta_snap_free(&sb);
    free(ta.p);
    free(tb.p);
    free(out.p);
    json_decref(b);
}

static void rule_changed(json_t *a)
{
    json_object_set_new(json_array_get(json_object_get(a, "rules"), 7), "priority",
                        json_integer(999));
}
static void workload_added(json_t *a)
{
    json_t *w = workload(5000000);
    json_object_set_new(w, "id", json_integer(9000000));
    json_array_append_new(json_object_get(a, "workloads"), w);
}
static void workload_removed(json_t *a)
{
    json_array_remove(json_object_get(a, "workloads"), 3);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (n <= 0 || rounds <= 0 || rounds > 100) {
        fprintf(stderr, "usage: bench_delta WORKLOADS [ROUNDS]\n");
        return 2;
    }
    json_t *a = answer(n, 1);
    double t[M_N][100];
    struct delta_buf ba = {0}, bb = {0};
    for (int r = 0; r < rounds; r++) {
        /* the next revision: one workload changed (pod churn) */
        json_t *b = json_deep_copy(a);
        json_object_set_new(b, "revision", json_integer(2 + r));
        json_object_set_new(
            json_array_get(json_object_get(b, "workloads"), (size_t)(r * 7) % (size_t)n), "name",
            json_sprintf("moved-%d", r));
        double t0 = now_ms();
        char *full = json_dumps(b, JSON_COMPACT);
        t[M_FULL][r] = now_ms() - t0;
        struct delta_snap sa, sb;
        snap_of(a, &ba, &sa);
        t0 = now_ms();
        snap_of(b, &bb, &sb);
        t[M_SNAP][r] = now_ms() - t0;
        struct delta_log log = {.max_steps = 1000, .max_bytes = (size_t)32 << 20};
        t0 = now_ms();
        delta_log_add(&log, &sa, &sb);
        t[M_DIFF][r] = now_ms() - t0;
        struct delta_buf out = {0};
        t0 = now_ms();
        delta_answer(&log, &sb, sa.revision, (size_t)8 << 20, &out);
        t[M_DELTA][r] = now_ms() - t0;
        char *base_text = json_dumps(a, JSON_COMPACT);
        t0 = now_ms();
        json_t *base = json_loads(base_text, 0, NULL);
        t[M_PARSE][r] = now_ms() - t0;
        json_t *d = json_loads(out.p, 0, NULL), *got = NULL;
        char why[200];
        t0 = now_ms();
        int err = delta_apply(base, d, &got, why, sizeof(why));
        t[M_APPLY][r] = now_ms() - t0;
        if (err || !json_equal(got, b)) {
            fprintf(stderr, "bench_delta: the delta did not give the new answer (%s)\n", why);
            return 1;
        }
        json_decref(got);
        json_decref(d);
        json_decref(base);
        free(base_text);
        free(out.p);
        free(full);
        delta_log_clear(&log);
        delta_snap_free(&sa);
        delta_snap_free(&sb);
        json_decref(a);
        a = b;
    }
    size_t fr, dr, fa, da, fd, dd;
    bytes_for(a, rule_changed, &fr, &dr);
    bytes_for(a, workload_added, &fa, &da);
    bytes_for(a, workload_removed, &fd, &dd);
    printf("workloads=%d rounds=%d", n, rounds);
    for (int m = 0; m < M_N; m++)
        printf(" %s=%.2f", names[m], median(t[m], rounds));
    printf(" rule_full_b=%zu rule_delta_b=%zu add_full_b=%zu add_delta_b=%zu del_full_b=%zu "
           "del_delta_b=%zu raw:",
           fr, dr, fa, da, fd, dd);
    for (int m = 0; m < M_N; m++) {
        printf(" %s=", names[m]);
        for (int r = 0; r < rounds; r++)
            printf("%s%.2f", r ? "," : "", t[m][r]);
    }
    printf("\n");
    free(ba.p);
    free(bb.p);
    json_decref(a);
    return 0;
}
