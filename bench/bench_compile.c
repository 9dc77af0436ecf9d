/*
 * bench_compile: policy compiler cost on a synthetic cluster.
 *
 * Usage: bench_compile WORKLOADS RULES [OBJECTS]
 * Builds a cluster of WORKLOADS workloads (50 namespaces x 20 apps, replicas
 * spread over them), OBJECTS network objects (default 500: per-app, per-
 * namespace, label and ipblock objects) and RULES rules between them, then
 * measures: load time, full compile time, incremental recompile after one
 * workload change (same identity and new identity) and after one rule change,
 * table sizes and the process's peak RSS. Prints one `key=value` line.
 */
#include "compile.h"
#include "loader.h"
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct sbuf {
    char *s;
    size_t n, cap;
};

static void put(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (moat_grow(&b->s, &b->cap, b->n + (size_t)len + 1, 1) < 0)
        abort();
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

static uint64_t state = 88172645463325252ull;
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

static void gen_objects(struct sbuf *b, int nobj)
{
    for (int i = 0; i < nobj; i++) {
        put(b, "---\nkind: NetworkObject\nname: o%d\n", i);
        int kind = i % 25;
        if (kind < 20) /* one deployment */
            put(b, "namespace: ns%u\napp: app%u\n", rnd(50), rnd(20));
        else if (kind < 22) /* a namespace */
            put(b, "namespace: ns%u\n", rnd(50));
        else if (kind < 24) /* a tier everywhere */
            put(b, "namespace: \"*\"\nlabels: [tier=t%u]\n", rnd(5));
        else
            put(b, "cidrs: [10.200.%u.0/24]\n", rnd(256));
    }
}

static void gen_rules(struct sbuf *b, int nrules, int nobj)
{
    static const char *const ports[] = {"80", "443", "8080/8089", "5432", "6379", "53",
                                        "9000/9100", "22", "3306", "10000/20000"};
    static const char *const actions[] = {"allow", "allow", "allow", "alert", "block"};
    for (int i = 0; i < nrules; i++) {
        put(b, "---\nkind: DefenseRule\ncluster: bench\nname: r%d\n", i);
        if (rnd(10) == 0)
            put(b, "source: any\n");
        else
            put(b, "source: o%u\n", rnd((uint32_t)nobj));
        uint32_t dst;
        do
            dst = rnd((uint32_t)nobj);
        while (dst % 25 == 24); /* ingress rules: selector destinations */
        uint32_t p1 = rnd(10), p2 = (p1 + 1 + rnd(9)) % 10;
        put(b, "destinations:\n  - object: o%u\n    ports: \"%s%s%s\"\n", dst, ports[p1],
            rnd(2) ? "," : "", "");
        if (b->s[b->n - 3] == ',')
            b->n -= 3, put(b, ",%s\"\n", ports[p2]);
        put(b, "protocol: %s\naction: %s\npriority: %u\n", rnd(5) ? "tcp" : "any",
            actions[rnd(5)], 1 + rnd(1000));
    }
}

static void gen_workloads(struct sbuf *b, int nwl)
{
    for (int i = 0; i < nwl; i++) {
        int dep = i % 1000;
        put(b,
            "---\nkind: Workload\ncluster: bench\nnode: n%d\nname: w%d\nnamespace: ns%d\n"
            "image: registry.example.com/team/app%d:1\nlabels: {app: app%d, tier: t%d}\n"
            "ips: [10.%d.%d.%d]\n",
            i % 10, i, dep / 20, dep % 20, dep % 20, dep % 5, 100 + i / 65536, (i / 256) % 256,
            i % 256);
    }
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
    struct sbuf b = {0};
    put(&b, "kind: Cluster\nname: bench\ndefense: on\n");
    gen_objects(&b, nobj);
    gen_rules(&b, nrules, nobj);
    gen_workloads(&b, nwl);
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p;
    double t0 = now();
    if (policy_load_text(&p, b.s, b.n, "bench.yaml", &d) != 0) {
        fprintf(stderr, "load failed: %s\n", d.count ? d.items[0].text : "?");
        return 1;
    }
    double load = now() - t0;
    free(b.s);
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
    double rule = time_rule_updates(p, t, 20);
    printf(" incr_workload_same_ms=%.3f incr_workload_new_ms=%.3f incr_rule_ms=%.3f\n",
           same * 1e3, fresh * 1e3, rule * 1e3);
    tables_free(t);
    policy_free(p);
    return 0;
}
