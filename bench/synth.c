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

/* Its own generator, so that variants leave the main stream (and the default text) alone. */
static uint64_t vstate;
static uint32_t vrnd(uint32_t n)
{
    vstate ^= vstate << 13;
    vstate ^= vstate >> 7;
    vstate ^= vstate << 17;
    return (uint32_t)(vstate % n);
}

/* Objects in no rule that make the compiler's job harder (synth.h's flags). */
static void gen_extra_objects(struct sbuf *b, int nwl, unsigned flags)
{
    if (flags & SYNTH_POD_LABELS) /* each workload its own group */
        for (int i = 0; i < 10; i++)
            put(b, "---\nkind: NetworkObject\nname: pod%d\nnamespace: \"*\"\nlabels: [pod=w%d]\n",
                i, i * (nwl / 10 + 1));
    if (flags & SYNTH_IPBLOCKS) /* 500 outside prefixes of several lengths, both families */
        for (int i = 0; i < 500; i++) {
            if (i % 5 == 4)
                put(b, "---\nkind: NetworkObject\nname: block%d\ncidrs: ['fd%02x:%x::/%u']\n", i,
                    vrnd(256), vrnd(65536), 32 + 16 * vrnd(3));
            else {
                uint32_t wide = vrnd(2), c = 16 * vrnd(16);
                put(b, "---\nkind: NetworkObject\nname: block%d\ncidrs: [10.%u.%u.%u/%u]\n", i,
                    200 + vrnd(56), vrnd(256), wide ? 0 : c, wide ? 24 : 28);
            }
        }
}

static void gen_workloads(struct sbuf *b, int nwl, unsigned flags)
{
    uint32_t *addr = malloc(sizeof(*addr) * (size_t)(nwl ? nwl : 1));
    if (!addr)
        abort();
    for (int i = 0; i < nwl; i++)
        addr[i] = (uint32_t)i;
    for (int i = nwl - 1; i > 0 && (flags & SYNTH_SHUFFLED); i--) { /* addresses out of order */
        uint32_t j = vrnd((uint32_t)i + 1), x = addr[i];
        addr[i] = addr[j];
        addr[j] = x;
    }
    for (int i = 0; i < nwl; i++) {
        int dep = i % 1000;
        uint32_t a = addr[i];
        put(b,
            "---\nkind: Workload\ncluster: bench\nnode: n%d\nname: w%d\nnamespace: ns%d\n"
            "image: registry.example.com/team/app%d:1\nlabels: {app: app%d, tier: t%d",
            i % 10, i, dep / 20, dep % 20, dep % 20, dep % 5);
        if (flags & SYNTH_POD_LABELS)
            put(b, ", pod: w%d", i);
        put(b, "}\nips: [10.%u.%u.%u]\n", 100 + a / 65536, (a / 256) % 256, a % 256);
    }
    free(addr);
}

char *synth_policy_flags(int nwl, int nrules, int nobj, unsigned flags, size_t *len)
{
    struct sbuf b = {0};
    state = SEED; /* the same text for the same arguments, call after call */
    vstate = SEED ^ 0x5851f42d4c957f2dull;
    put(&b, "kind: Cluster\nname: bench\ndefense: on\n");
    gen_objects(&b, nobj);
    gen_extra_objects(&b, nwl, flags);
    gen_rules(&b, nrules, nobj);
    gen_workloads(&b, nwl, flags);
    *len = b.n;
    return b.s;
}

char *synth_policy(int nwl, int nrules, int nobj, size_t *len)
{
    return synth_policy_flags(nwl, nrules, nobj, 0, len);
}
