/* synth: synthetic clusters for the benchmarks (see synth.h). */
#include "synth.h"
#include "mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

#define SEED 88172645463325252ull
static uint64_t state = SEED;
static uint32_t rnd(uint32_t n)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state % n);
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
    static const char *const ports[] = {"80", "443",       "8080/8089", "5432", "6379",
                                        "53", "9000/9100", "22",        "3306", "10000/20000"};
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
        put(b, "protocol: %s\naction: %s\npriority: %u\n", rnd(5) ? "tcp" : "any", actions[rnd(5)],
            1 + rnd(1000));
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

char *synth_policy(int nwl, int nrules, int nobj, size_t *len)
{
    struct sbuf b = {0};
    state = SEED; /* the same text for the same arguments, call after call */
    put(&b, "kind: Cluster\nname: bench\ndefense: on\n");
    gen_objects(&b, nobj);
    gen_rules(&b, nrules, nobj);
    gen_workloads(&b, nwl);
    *len = b.n;
    return b.s;
}
