/*
 * bench_compile: policy compiler cost on a synthetic cluster.
 *
 * Usage: bench_compile WORKLOADS RULES [OBJECTS [VARIANT,...]]
 * Builds a cluster of WORKLOADS workloads (50 namespaces x 20 apps, replicas
 * spread over them), OBJECTS network objects (default 500: per-app, per-
 * namespace, label and ipblock objects) and RULES rules between them, then
 * measures: load time, full compile time, incremental recompile after one
 * workload change (same identity and new identity), after one workload removed
 * and added back, and after one rule change, table sizes and the process's peak
 * RSS. Prints one `key=value` line. VARIANTs (synth.h) make the cluster
 * harder: `shuffled` addresses, `pods` (a group per workload), `ipblocks`.
 */
#include "compile.h"
#include "loader.h"
#include "mem.h"
#include "synth.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static uint64_t state = 0x2545f4914f6cdd1dull;
static uint32_t rnd(uint32_t n)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state % n);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Mean time of `reps` incremental workload updates; `new_shape` gives each a new identity. */
static double time_workload_updates(struct moat_policy *p, struct moat_tables *t, int reps,
                                    bool new_shape)
{
    double total = 0;
    for (int r = 0; r < reps; r++) {
        uint32_t idx = (uint32_t)rnd((uint32_t)p->nworkloads);
        struct moat_workload *w = &p->workloads[idx];
        if (new_shape) { /* labels no workload had: a new identity */
            for (size_t i = 0; i < w->nlabels; i++)
                if (strcmp(w->labels[i].key, "tier") == 0) {
                    free(w->labels[i].value);
                    w->labels[i].value = moat_asprintf("new%d", r);
                }
        } else { /* a replica replaced: same labels, new address */
            char ip[32];
            snprintf(ip, sizeof(ip), "10.250.%d.%d", r / 250, r % 250 + 1);
            addr_parse(ip, &w->addrs[0]);
        }
        double t0 = now();
        if (tables_update_workload(t, idx) < 0)
            abort();
        total += now() - t0;
    }
    return total / reps;
}

/*
 * Mean times of removing one workload (its addresses cleared, as compile.h
 * says) and of adding it back, over `reps` random workloads.
 */
static void time_remove_add(struct moat_policy *p, struct moat_tables *t, int reps, double *remove,
                            double *add)
{
    *remove = *add = 0;
    for (int r = 0; r < reps; r++) {
        uint32_t idx = (uint32_t)rnd((uint32_t)p->nworkloads);
        struct moat_workload *w = &p->workloads[idx];
        size_t naddrs = w->naddrs;
        w->naddrs = 0;
        double t0 = now();
        if (tables_update_workload(t, idx) < 0)
            abort();
        double t1 = now();
        w->naddrs = naddrs;
        if (tables_update_workload(t, idx) < 0)
            abort();
        *remove += t1 - t0;
        *add += now() - t1;
    }
    *remove /= reps;
    *add /= reps;
}

static double time_rule_updates(struct moat_policy *p, struct moat_tables *t, int reps)
{
    double total = 0;
    for (int r = 0; r < reps; r++) {
        uint32_t idx = (uint32_t)rnd((uint32_t)p->nrules);
        struct moat_rule old = p->rules[idx];
        p->rules[idx].priority = (uint16_t)(1 + rnd(1000));
        double t0 = now();
        if (tables_update_rule(t, idx, &old) < 0)
            abort();
        total += now() - t0;
    }
    return total / reps;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_compile WORKLOADS RULES [OBJECTS]\n");
        return 2;
    }
    int nwl = atoi(argv[1]), nrules = atoi(argv[2]), nobj = argc > 3 ? atoi(argv[3]) : 500;
    unsigned flags = 0;
    const char *variant = argc > 4 ? argv[4] : "";
    flags |= strstr(variant, "shuffled") ? SYNTH_SHUFFLED : 0;
    flags |= strstr(variant, "pods") ? SYNTH_POD_LABELS : 0;
    flags |= strstr(variant, "ipblocks") ? SYNTH_IPBLOCKS : 0;
    size_t len;
    char *text = synth_policy_flags(nwl, nrules, nobj, flags, &len);
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p;
    double t0 = now();
    /* Bounded as the agent bounds the server's answer: a cluster, not a user's file. */
    struct policy_source src = {
        .text = text, .len = len, .name = "bench.yaml", .limits = &doc_limits_server};
    if (policy_load_sources(&p, &src, 1, &d) != 0) {
        fprintf(stderr, "load failed: %s\n", d.count ? d.items[0].text : "?");
        return 1;
    }
    double load = now() - t0;
    free(text);
    struct moat_tables *t;
    t0 = now();
    if (policy_compile(p, NULL, &t) != 0)
        return 1;
    double compile = now() - t0;
    long rss_after = peak_rss_kib();
    printf("workloads=%d rules=%d objects=%d load_s=%.3f compile_s=%.3f identities=%zu "
           "addr_entries=%zu intervals=%zu lpm_entries=%zu peak_rss_mib=%.1f",
           nwl, nrules, nobj, load, compile, tables_identity_count(t), tables_addr_count(t),
           tables_policy_count(t), tables_lpm_entry_count(t), rss_after / 1024.0);
    double same = time_workload_updates(p, t, 200, false);
    double fresh = time_workload_updates(p, t, 50, true);
    double removed, added;
    time_remove_add(p, t, 200, &removed, &added);
    double rule = time_rule_updates(p, t, 20);
    printf(" incr_workload_same_ms=%.3f incr_workload_new_ms=%.3f incr_remove_ms=%.3f "
           "incr_add_ms=%.3f incr_rule_ms=%.3f\n",
           same * 1e3, fresh * 1e3, removed * 1e3, added * 1e3, rule * 1e3);
    tables_free(t);
    policy_free(p);
    return 0;
}
