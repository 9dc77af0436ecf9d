/*
 * Property test: for random (policy, inventory, flow) triples, a lookup in the
 * compiled tables gives exactly the reference evaluator's verdict (applies,
 * defense off, default, configured and applied action, rule id), in both
 * directions, over IPv4 and IPv6 (workloads and nodes are dual-stack, ipblocks
 * of both families, with excepts, over the workload ranges too), and every
 * workload is selected alike through its addresses of either family. Then
 * random incremental changes (workloads changed or added, rules changed) must
 * keep the tables in step with the evaluator, and equal (up to identity
 * numbers) to the tables of a full compile of the same policy. Targeted
 * cases cover what the compiler's workload groups could get wrong.
 *
 * The seed is printed; MOAT_SEED=N reruns one case set, MOAT_POLICIES=N
 * changes how many policies are generated.
 */
#include "testutil.h"

#include "compile.h"
#include "loader.h"
#include "mem.h"
#include "refeval.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rng {
    uint64_t s;
};

static uint32_t rnd(struct rng *r, uint32_t n)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return n ? (uint32_t)(r->s % n) : 0;
}

static const char *pick(struct rng *r, const char *const *list, size_t n)
{
    return list[rnd(r, (uint32_t)n)];
}
#define PICK(r, arr) pick(r, arr, sizeof(arr) / sizeof(arr[0]))

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
    assert_int_equal(moat_grow(&b->s, &b->cap, b->n + (size_t)len + 1, 1), 0);
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

static const char *const ns_pats[] = {"ns0", "ns1", "ns*", "*", "n*1", "ns2"};
static const char *const app_pats[] = {"a0", "a1", "a*", "*0", "a2x"};
static const char *const image_pats[] = {
    "img0:*", "img0:1", "team/img1:*", "img2", "registry.example.com/*", "*:2"};
static const char *const label_sels[] = {"tier=t0", "tier=t1", "env=e0", "env=e1"};
static const char *const namespaces[] = {"ns0", "ns1", "ns2", "kube-system"};
static const char *const apps[] = {"a0", "a1", "a2x", "b0"};
static const char *const images[] = {"docker.io/library/img0:1", "img0:7",
                                     "registry.example.com/team/img1:2", "img2",
                                     "img2@sha256:abcd"};
static const char *const tiers[] = {"t0", "t1"};
static const char *const envs[] = {"e0", "e1"};
static const char *const teams[] = {"a", "b"};

static void gen_cluster(struct rng *r, struct sbuf *b, int i)
{
    static const char *const modes[] = {"protect", "protect", "monitor"};
    static const char *const defaults[] = {"block", "block", "alert", "allow"};
    put(b, "---\nkind: Cluster\nname: c%d\ndefense: %s\nmode: %s\ndefault_action: %s\n", i,
        rnd(r, 6) ? "on" : "off", PICK(r, modes), PICK(r, defaults));
}

static void gen_selector(struct rng *r, struct sbuf *b, int nclusters)
{
    put(b, "namespace: \"%s\"\n", PICK(r, ns_pats));
    if (rnd(r, 2))
        put(b, "app: \"%s\"\n", PICK(r, app_pats));
    if (!rnd(r, 3))
        put(b, "images: [\"%s\", \"%s\"]\n", PICK(r, image_pats), PICK(r, image_pats));
    if (!rnd(r, 3))
        put(b, "labels: [%s]\n", PICK(r, label_sels));
    if (!rnd(r, 6))
        put(b, "namespace_labels: [team=%s]\n", PICK(r, teams));
    if (!rnd(r, 5))
        put(b, "cluster: c%u\n", rnd(r, (uint32_t)nclusters));
}

static void gen_ipblock(struct rng *r, struct sbuf *b)
{
    /* Blocks over the workload range too: workloads must still win. */
    static const char *const cidrs[] = {"10.99.0.0/16", "10.99.1.0/24",    "10.1.0.0/24",
                                        "10.0.0.0/8",   "0.0.0.0/0",       "10.99.1.128/25",
                                        "'fd99::/32'",  "'fd99:1::/48'",   "'fd00:1::/64'",
                                        "'::/0'",       "'2001:db8::/32'", "'fd99:1:0:80::/57'"};
    const char *c = PICK(r, cidrs);
    if (!rnd(r, 3) && strcmp(c, "10.99.0.0/16") == 0)
        put(b, "cidrs:\n  - cidr: %s\n    except: [10.99.1.0/24]\n", c);
    else if (!rnd(r, 3) && strcmp(c, "'fd99::/32'") == 0)
        put(b, "cidrs:\n  - cidr: %s\n    except: ['fd99:0:1::/48']\n", c);
    else if (!rnd(r, 4))
        put(b, "cidrs: [%s, %s]\n", c, PICK(r, cidrs));
    else
        put(b, "cidrs: [%s]\n", c);
}

static int gen_objects(struct rng *r, struct sbuf *b, int nclusters)
{
    int n = 2 + (int)rnd(r, 6);
    for (int i = 0; i < n; i++) {
        put(b, "---\nkind: NetworkObject\nname: o%d\n", i);
        if (rnd(r, 4))
            gen_selector(r, b, nclusters);
        else
            gen_ipblock(r, b);
    }
    return n;
}

static void gen_ports(struct rng *r, struct sbuf *b)
{
    if (!rnd(r, 4))
        return; /* all ports */
    int k = 1 + (int)rnd(r, 3);
    uint32_t at = 1 + rnd(r, 30);
    put(b, "    ports: \"");
    for (int i = 0; i < k; i++) {
        uint32_t lo = at, hi = lo + rnd(r, 3) * rnd(r, 20);
        put(b, "%s%u/%u", i ? "," : "", lo, hi);
        at = hi + 1 + rnd(r, 40);
    }
    put(b, "\"\n");
}

/* Rules refer to objects that may be restricted to another cluster: skip those by
 * drawing the object only among unrestricted names plus built-ins. */
static void gen_rules(struct rng *r, struct sbuf *b, int nclusters, int nobj,
                      const char *restricted)
{
    static const char *const protos[] = {"tcp", "udp", "any"};
    static const char *const actions[] = {"block", "alert", "allow"};
    static const unsigned prios[] = {1, 5, 5, 10, 500, 1000};
    int n = (int)rnd(r, 12);
    for (int i = 0; i < n; i++) {
        int c = (int)rnd(r, (uint32_t)nclusters);
        put(b, "---\nkind: DefenseRule\ncluster: c%d\nname: r%d\n", c, i);
        char src[16];
        do {
            uint32_t k = rnd(r, (uint32_t)nobj + 3);
            snprintf(src, sizeof(src), "%s",
                     k == (uint32_t)nobj       ? "any"
                     : k == (uint32_t)nobj + 1 ? "host"
                     : k == (uint32_t)nobj + 2 ? "cluster-dns"
                                               : "");
            if (!src[0])
                snprintf(src, sizeof(src), "o%u", k);
        } while (restricted[src[0] == 'o' ? atoi(src + 1) : 63] &&
                 restricted[src[0] == 'o' ? atoi(src + 1) : 63] != 'a' + c);
        put(b, "source: %s\ndestinations:\n", src);
        int nd = 1 + (int)rnd(r, 2);
        for (int d = 0; d < nd; d++) {
            uint32_t k;
            do
                k = rnd(r, (uint32_t)nobj + 1);
            while (k < (uint32_t)nobj && restricted[k] && restricted[k] != 'a' + c);
            if (k == (uint32_t)nobj)
                put(b, "  - object: any\n");
            else
                put(b, "  - object: o%u\n", k);
            gen_ports(r, b);
        }
        put(b, "protocol: %s\naction: %s\npriority: %u\nenabled: %s\n", PICK(r, protos),
            PICK(r, actions), prios[rnd(r, 6)], rnd(r, 6) ? "true" : "false");
    }
}

static void gen_workloads(struct rng *r, struct sbuf *b, int nclusters)
{
    int n = 1 + (int)rnd(r, 9);
    for (int i = 0; i < n; i++) {
        put(b, "---\nkind: Workload\ncluster: c%u\nnode: n%u\nname: w%d\nnamespace: %s\n",
            rnd(r, (uint32_t)nclusters), 1 + rnd(r, 2), i, PICK(r, namespaces));
        int v6only = !rnd(r, 8);
        /* `build` is a label no object selects on: it must not split identities. */
        put(b, "image: \"%s\"\nlabels: {app: %s, tier: %s, env: %s, build: b%u%s}\n",
            PICK(r, images), PICK(r, apps), PICK(r, tiers), PICK(r, envs), rnd(r, 3),
            rnd(r, 5) ? "" : ", k8s-app: kube-dns");
        if (rnd(r, 2))
            put(b, "namespace_labels: {team: %s}\n", PICK(r, teams));
        if (v6only)
            put(b, "ips: ['fd00:1::%x']\n", 16 + i);
        else
            put(b, "ips: [10.1.0.%d, 'fd00:1::%x']\n", 10 + i, 16 + i);
    }
    put(b, "---\nkind: Node\nname: n1\nips: [10.0.0.1, 'fd00::1']\n---\nkind: Node\nname: "
           "n2\nips: [10.0.0.2, 'fd00::2']\n");
}

/* Records which objects were restricted to a cluster, by scanning the text. */
static void scan_restricted(const char *text, char *restricted)
{
    memset(restricted, 0, 64);
    const char *p = text;
    while ((p = strstr(p, "name: o")) != NULL) {
        int idx = atoi(p + 7);
        const char *next = strstr(p, "---");
        const char *cl = strstr(p, "cluster: c");
        if (cl && (!next || cl < next) && idx < 63)
            restricted[idx] = (char)('a' + atoi(cl + 10));
        p += 7;
    }
}

static char *gen_policy(struct rng *r)
{
    struct sbuf b = {0};
    int nclusters = 1 + (int)rnd(r, 2);
    for (int i = 0; i < nclusters; i++)
        gen_cluster(r, &b, i);
    int nobj = gen_objects(r, &b, nclusters);
    char restricted[64];
    scan_restricted(b.s, restricted);
    gen_rules(r, &b, nclusters, nobj, restricted);
    gen_workloads(r, &b, nclusters);
    return b.s;
}

static struct moat_addr random_addr(struct rng *r, const struct moat_policy *p)
{
    struct moat_addr a;
    char buf[48];
    switch (rnd(r, 11)) {
    case 0:
    case 1:
    case 2:
    case 3: {
        const struct moat_workload *w =
            p->nworkloads ? &p->workloads[rnd(r, (uint32_t)p->nworkloads)] : NULL;
        if (w && w->naddrs)
            return w->addrs[rnd(r, (uint32_t)w->naddrs)];
        snprintf(buf, sizeof(buf), "10.1.0.%u", 10 + rnd(r, 12));
        break;
    }
    case 4:
        snprintf(buf, sizeof(buf), "10.0.0.%u", 1 + rnd(r, 2));
        break;
    case 5:
        snprintf(buf, sizeof(buf), "fd00::%u", 1 + rnd(r, 2));
        break;
    case 6:
        snprintf(buf, sizeof(buf), "10.99.%u.%u", rnd(r, 3), rnd(r, 256));
        break;
    case 7:
        snprintf(buf, sizeof(buf), "fd99:%x:0:%x::%x", rnd(r, 3), rnd(r, 256), 1 + rnd(r, 999));
        break;
    case 8:
        snprintf(buf, sizeof(buf), "fd00:1::%x", 10 + rnd(r, 20)); /* some no workload has */
        break;
    case 9:
        snprintf(buf, sizeof(buf), "2001:db8:%x::%x", rnd(r, 65536), 1 + rnd(r, 999));
        break;
    default:
        snprintf(buf, sizeof(buf), "192.0.2.%u", rnd(r, 256));
        break;
    }
    assert_int_equal(addr_parse(buf, &a), 0);
    return a;
}

static uint16_t random_port(struct rng *r)
{
    static const uint16_t edges[] = {1, 2, 20, 21, 40, 53, 65535, 0};
    return rnd(r, 3) ? (uint16_t)(1 + rnd(r, 120)) : edges[rnd(r, 8)];
}

struct counts {
    unsigned long flows, checks;
};

static void check_flow(const struct moat_policy *p, const struct moat_tables *t,
                       const struct moat_eval_opts *o, struct rng *r, struct counts *cnt,
                       const char *text)
{
    static const uint8_t protos[] = {6, 6, 17, 17, 1};
    struct moat_flow f = {.proto = protos[rnd(r, 5)], .port = random_port(r)};
    struct moat_addr src = random_addr(r, p), dst = random_addr(r, p);
    f.src = refeval_identify(p, o, &src);
    f.dst = refeval_identify(p, o, &dst);
    if (f.proto != 6 && f.proto != 17)
        f.port = 0;
    cnt->flows++;
    for (int dir = 0; dir < 2; dir++) {
        struct moat_decision want;
        struct moat_verdict got;
        refeval_decide(p, o, &f, (enum moat_dir)dir, &want);
        tables_decide(t, (enum moat_dir)dir, &src, &dst, f.proto, f.port, &got);
        cnt->checks++;
        bool same =
            want.applies == got.applies &&
            (!want.applies || (want.defense_off == got.defense_off && want.action == got.action &&
                               want.applied == got.applied && want.rule_id == got.rule_id &&
                               want.is_default == got.is_default));
        if (!same) {
            char s[64], d[64];
            addr_format(&src, s, sizeof(s));
            addr_format(&dst, d, sizeof(d));
            fprintf(stderr,
                    "MISMATCH dir=%d %s -> %s proto %u port %u node=%s\n  reference: applies=%d "
                    "off=%d default=%d action=%d applied=%d rule=%u\n  tables:    applies=%d "
                    "off=%d default=%d action=%d applied=%d rule=%u\npolicy:\n%s\n",
                    dir, s, d, f.proto, f.port, o->node ? o->node : "-", want.applies,
                    want.defense_off, want.is_default, want.action, want.applied, want.rule_id,
                    got.applies, got.defense_off, got.is_default, got.action, got.applied,
                    got.rule_id, text);
            fail();
        }
    }
}

static uint64_t seed_from_env(void)
{
    const char *s = getenv("MOAT_SEED");
    return s ? strtoull(s, NULL, 10) : 20261128u;
}

static unsigned long policies_from_env(unsigned long dflt)
{
    const char *s = getenv("MOAT_POLICIES");
    return s ? strtoul(s, NULL, 10) : dflt;
}

static void load(const char *text, struct moat_policy **p)
{
    struct moat_diags d;
    diags_init(&d);
    int err = policy_load_text(p, text, strlen(text), "generated.yaml", &d);
    if (err) {
        for (size_t i = 0; i < d.count; i++)
            fprintf(stderr, "%s\n", d.items[i].text);
        fprintf(stderr, "%s\n", text);
    }
    diags_clear(&d);
    assert_int_equal(err, 0);
}

/* ---------- tables compared with the model and with a full compile ---------- */

/*
 * Every address of every workload maps to an identity that carries exactly
 * the selectors that pick the workload and the ipblocks that cover the
 * address (addresses another workload listed later takes over are skipped).
 */
static void check_identities_against_model(const struct moat_policy *p, const struct moat_tables *t)
{
    for (size_t i = 0; i < p->nworkloads; i++) {
        const struct moat_workload *w = &p->workloads[i];
        const char *cname = p->clusters[w->cluster].name;
        for (size_t a = 0; a < w->naddrs; a++) {
            bool taken = false;
            for (size_t j = i + 1; j < p->nworkloads && !taken; j++)
                for (size_t b = 0; b < p->workloads[j].naddrs && !taken; b++)
                    taken = addr_cmp(&p->workloads[j].addrs[b], &w->addrs[a]) == 0;
            if (taken)
                continue;
            uint32_t id = tables_identity_of(t, &w->addrs[a]);
            struct moat_ident_info info = tables_identity(t, id);
            assert_int_equal(info.kind, MOAT_IDENT_WORKLOAD);
            assert_int_equal(info.cluster, w->cluster);
            for (uint32_t o = 0; o < p->nobjects; o++) {
                const struct moat_object *obj = &p->objects[o];
                bool want = obj->kind == MOAT_OBJ_IPBLOCK ? object_covers_address(obj, &w->addrs[a])
                                                          : object_matches_workload(obj, w, cname);
                if (tables_identity_has(t, id, o) != want) {
                    char buf[64];
                    addr_format(&w->addrs[a], buf, sizeof(buf));
                    fprintf(stderr, "workload %s address %s: object %s %s\n", w->name, buf,
                            obj->name, want ? "missing" : "extra");
                    fail();
                }
            }
        }
    }
}

struct lines {
    char **v;
    size_t n, cap;
};

static void lines_add(struct lines *l, char *line)
{
    assert_non_null(line);
    assert_int_equal(moat_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v)), 0);
    l->v[l->n++] = line;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct canon_ctx {
    char **sig;       /* per identity: kind, cluster and objects */
    const bool *live; /* ANY, WORLD and identities some address maps to */
    struct lines *out;
};

static int canon_entry(void *ctx, const struct moat_policy_entry *e)
{
    struct canon_ctx *c = ctx;
    if (c->live[e->subject] && c->live[e->peer])
        lines_add(c->out, moat_asprintf("P %d %d [%s] [%s] %u-%u rule %u", e->dir, e->pclass,
                                        c->sig[e->subject], c->sig[e->peer], e->port_lo, e->port_hi,
                                        e->rule_id));
    return 0;
}

/*
 * The tables as sorted lines that do not depend on identity numbers: each
 * address with its identity's contents, each policy entry with its subject's
 * and peer's. Identities no address maps to any more (an incremental update
 * leaves them behind) and their entries are left out.
 */
static void canon_tables(const struct moat_policy *p, const struct moat_tables *t,
                         struct lines *out)
{
    size_t nids = tables_identity_count(t);
    char **sig = moat_calloc(nids, sizeof(*sig));
    bool *live = moat_calloc(nids, sizeof(*live));
    assert_true(sig && live);
    live[MOAT_ID_ANY] = live[MOAT_ID_WORLD] = true;
    for (uint32_t id = 0; id < nids; id++) {
        struct moat_ident_info info = tables_identity(t, id);
        struct sbuf b = {0};
        put(&b, "%s%d c%d:", id == MOAT_ID_ANY ? "any " : "", info.kind,
            info.cluster == MOAT_NONE ? -1 : (int)info.cluster);
        for (uint32_t o = 0; o < p->nobjects; o++)
            if (tables_identity_has(t, id, o))
                put(&b, " %s", p->objects[o].name);
        sig[id] = b.s;
    }
    for (size_t i = 0; i < tables_addr_count(t); i++) {
        struct moat_addr_entry e = tables_addr_entry(t, i);
        char buf[64];
        addr_format(&e.prefix.addr, buf, sizeof(buf));
        live[e.identity] = true;
        lines_add(out, moat_asprintf("A %s/%u [%s]", buf, e.prefix.len, sig[e.identity]));
    }
    struct canon_ctx c = {sig, live, out};
    tables_policy_foreach(t, canon_entry, &c);
    qsort(out->v, out->n, sizeof(*out->v), cmp_line);
    for (size_t id = 0; id < nids; id++)
        free(sig[id]);
    free(sig);
    free(live);
}

/* Tables `t` (updated incrementally) equal a full compile of their policy. */
static void check_same_as_full_compile(const struct moat_policy *p, const struct moat_tables *t,
                                       const struct moat_eval_opts *o)
{
    struct moat_tables *fresh;
    assert_int_equal(policy_compile(p, o, &fresh), 0);
    struct lines a = {0}, b = {0};
    canon_tables(p, t, &a);
    canon_tables(p, fresh, &b);
    size_t i = 0;
    while (i < a.n && i < b.n && strcmp(a.v[i], b.v[i]) == 0)
        i++;
    if (i < a.n || i < b.n) {
        fprintf(stderr,
                "incremental tables differ from a full compile at line %zu:\n"
                "  incremental: %s\n  full:        %s\n",
                i, i < a.n ? a.v[i] : "(end)", i < b.n ? b.v[i] : "(end)");
        fail();
    }
    lines_free(&a);
    lines_free(&b);
    tables_free(fresh);
}

static void test_tables_agree_with_reference(void **state)
{
    (void)state;
    uint64_t seed = seed_from_env();
    struct rng r = {seed * 2654435761u + 1};
    struct counts cnt = {0};
    unsigned long npol = policies_from_env(500);
    for (unsigned long i = 0; i < npol; i++) {
        char *text = gen_policy(&r);
        struct moat_policy *p;
        load(text, &p);
        struct moat_eval_opts o = {.node = rnd(&r, 2) ? NULL : "n1"};
        struct moat_tables *t;
        assert_int_equal(policy_compile(p, &o, &t), 0);
        for (int k = 0; k < 50; k++)
            check_flow(p, t, &o, &r, &cnt, text);
        /* A workload is selected alike whatever the family of its address (the
         * identities may differ by the ipblocks that cover one address only:
         * other clusters see its addresses as outside addresses). */
        for (size_t w = 0; w < p->nworkloads; w++)
            for (size_t a = 1; a < p->workloads[w].naddrs; a++) {
                uint32_t i0 = tables_identity_of(t, &p->workloads[w].addrs[0]);
                uint32_t ia = tables_identity_of(t, &p->workloads[w].addrs[a]);
                for (uint32_t ob = 0; ob < p->nobjects; ob++)
                    if (p->objects[ob].kind != MOAT_OBJ_IPBLOCK)
                        assert_int_equal(tables_identity_has(t, i0, ob),
                                         tables_identity_has(t, ia, ob));
            }
        check_identities_against_model(p, t);
        tables_free(t);
        policy_free(p);
        free(text);
    }
    printf("property: seed %llu, %lu policies, %lu flows, %lu direction checks agree\n",
           (unsigned long long)seed, npol, cnt.flows, cnt.checks);
    assert_true(cnt.flows >= 20000);
}

/* Changes one workload's labels and address (or clears it) in place. */
static void mutate_workload(struct rng *r, struct moat_policy *p, uint32_t w, int serial)
{
    struct moat_workload *wl = &p->workloads[w];
    for (size_t i = 0; i < wl->nlabels; i++) {
        if (strcmp(wl->labels[i].key, "tier") == 0 || strcmp(wl->labels[i].key, "app") == 0) {
            free(wl->labels[i].value);
            wl->labels[i].value = moat_strdup(
                strcmp(wl->labels[i].key, "tier") == 0 ? PICK(r, tiers) : PICK(r, apps));
        }
    }
    if (wl->naddrs && !rnd(r, 4)) {
        wl->naddrs = 0; /* removed */
    } else if (wl->naddrs) {
        char buf[32];
        snprintf(buf, sizeof(buf), "10.1.%d.%d", 1 + serial / 200, serial % 200 + 1);
        addr_parse(buf, &wl->addrs[0]);
    }
}

static uint32_t append_workload(struct rng *r, struct moat_policy *p, int serial)
{
    assert_int_equal(
        moat_grow(&p->workloads, &p->cap_workloads, p->nworkloads + 1, sizeof(*p->workloads)), 0);
    struct moat_workload *w = &p->workloads[p->nworkloads];
    memset(w, 0, sizeof(*w));
    w->cluster = rnd(r, (uint32_t)p->nclusters);
    w->cluster_ref = moat_strdup(p->clusters[w->cluster].name);
    w->node = moat_strdup("n1");
    w->name = moat_asprintf("added%d", serial);
    w->namespace = moat_strdup(PICK(r, namespaces));
    w->image = moat_strdup(PICK(r, images));
    int err;
    w->forms = image_forms_pack(w->image, &err);
    assert_int_equal(err, 0);
    w->labels = moat_calloc(2, sizeof(*w->labels));
    w->labels[0] = (struct moat_label){moat_strdup("app"), moat_strdup(PICK(r, apps))};
    w->labels[1] = (struct moat_label){moat_strdup("tier"), moat_strdup(PICK(r, tiers))};
    w->nlabels = 2;
    w->addrs = moat_calloc(1, sizeof(*w->addrs));
    char buf[32];
    snprintf(buf, sizeof(buf), "10.2.%d.%d", serial / 200, serial % 200 + 1);
    addr_parse(buf, &w->addrs[0]);
    w->naddrs = 1;
    return (uint32_t)p->nworkloads++;
}

static void mutate_rule(struct rng *r, struct moat_policy *p, uint32_t i)
{
    static const unsigned prios[] = {1, 5, 10, 500, 1000};
    struct moat_rule *rule = &p->rules[i];
    switch (rnd(r, 4)) {
    case 0:
        rule->priority = (uint16_t)prios[rnd(r, 5)];
        break;
    case 1:
        rule->action = (enum moat_action)(1 + rnd(r, 3));
        break;
    case 2:
        rule->enabled = !rule->enabled;
        break;
    default:
        rule->dests[0].ports[0].hi = rule->dests[0].ports[0].lo; /* narrower: still no overlap */
        rule->dests[0].all_ports = false;
        break;
    }
}

static void test_incremental_matches_reference(void **state)
{
    (void)state;
    uint64_t seed = seed_from_env() + 7;
    struct rng r = {seed * 2654435761u + 1};
    struct counts cnt = {0};
    unsigned long npol = policies_from_env(500) / 2;
    for (unsigned long i = 0; i < npol; i++) {
        char *text = gen_policy(&r);
        struct moat_policy *p;
        load(text, &p);
        struct moat_eval_opts o = {.node = NULL};
        struct moat_tables *t;
        assert_int_equal(policy_compile(p, &o, &t), 0);
        for (int step = 0; step < 6; step++) {
            uint32_t which = rnd(&r, 3);
            if (which == 0 && p->nworkloads) {
                uint32_t w = rnd(&r, (uint32_t)p->nworkloads);
                mutate_workload(&r, p, w, (int)(i * 10 + (unsigned long)step));
                assert_int_equal(tables_update_workload(t, w), 0);
            } else if (which == 1) {
                uint32_t w = append_workload(&r, p, (int)(i * 10 + (unsigned long)step));
                assert_int_equal(tables_update_workload(t, w), 0);
            } else if (p->nrules) {
                uint32_t k = rnd(&r, (uint32_t)p->nrules);
                struct moat_rule old = p->rules[k];
                mutate_rule(&r, p, k);
                assert_int_equal(tables_update_rule(t, k, &old), 0);
            }
            for (int k = 0; k < 10; k++)
                check_flow(p, t, &o, &r, &cnt, text);
            check_identities_against_model(p, t);
            check_same_as_full_compile(p, t, &o);
        }
        tables_free(t);
        policy_free(p);
        free(text);
    }
    printf("incremental: seed %llu, %lu policies, %lu flows, %lu direction checks agree\n",
           (unsigned long long)seed, npol, cnt.flows, cnt.checks);
}

/* ---------- targeted cases: what workload groups could get wrong ---------- */

static const char group_policy[] =
    "kind: Cluster\nname: c\ndefense: on\n"
    "---\nkind: NetworkObject\nname: web\nnamespace: shop\napp: web\n"
    "---\nkind: NetworkObject\nname: front\nnamespace: \"*\"\nlabels: [tier=front]\n"
    "---\nkind: NetworkObject\nname: nginx\nnamespace: \"*\"\nimages: [\"nginx:*\"]\n"
    "---\nkind: NetworkObject\nname: team-a\nnamespace: \"*\"\nnamespace_labels: [team=a]\n"
    "---\nkind: NetworkObject\nname: inside\ncidrs:\n  - cidr: 10.5.0.0/16\n"
    "    except: [10.5.1.0/24]\n"
    "---\nkind: NetworkObject\nname: v6\ncidrs: ['fd05::/32']\n"
    "---\nkind: DefenseRule\ncluster: c\nname: r1\nsource: web\ndestinations:\n"
    "  - object: front\n    ports: \"80\"\nprotocol: tcp\naction: allow\npriority: 10\n"
    "---\nkind: DefenseRule\ncluster: c\nname: r2\nsource: inside\ndestinations:\n"
    "  - object: web\n    ports: \"80,443\"\nprotocol: tcp\naction: block\npriority: 5\n"
    "---\nkind: DefenseRule\ncluster: c\nname: r3\nsource: any\ndestinations:\n"
    "  - object: nginx\n    ports: \"8080\"\nprotocol: tcp\naction: alert\npriority: 20\n"
    "---\nkind: DefenseRule\ncluster: c\nname: r4\nsource: team-a\ndestinations:\n"
    "  - object: web\n    ports: \"53\"\nprotocol: udp\naction: allow\npriority: 1\n"
    "---\nkind: DefenseRule\ncluster: c\nname: r5\nsource: web\ndestinations:\n"
    "  - object: inside\n    ports: \"5432\"\n  - object: v6\nprotocol: any\naction: block\n"
    "priority: 3\n"
#define GROUP_WL(name, labels, image, team, ips)                                                   \
    "---\nkind: Workload\ncluster: c\nnode: n1\nname: " name "\nnamespace: shop\nimage: " image    \
    "\nlabels: {app: web, tier: front, " labels "}\nnamespace_labels: {team: " team "}\nips: " ips \
    "\n"
    /* w0..w3: one group (build is no selector's key); addresses inside, outside, excepted */
    GROUP_WL("w0", "build: b1", "nginx:1.27", "a", "[10.5.0.10]") GROUP_WL(
        "w1", "build: b2", "nginx:1.27", "a",
        "[10.6.0.10]") GROUP_WL("w2", "build: b1", "nginx:1.27", "a",
                                "[10.5.1.10]") GROUP_WL("w3", "build: b3", "nginx:1.27", "a",
                                                        "[10.6.0.11]") GROUP_WL("w4", "build: b1",
                                                                                "redis:7", "a",
                                                                                "[10.6.0.12]")
        GROUP_WL("w5", "build: b1", "nginx:1.27", "b", "[10.6.0.13]") GROUP_WL(
            "w6", "build: b1", "nginx:1.27", "a",
            "[10.6.0.14, 'fd05::14']") "---\nkind: Node\nname: n1\nips: [10.5.0.1, 'fd00::1']\n";

static uint32_t ident_of_workload(const struct moat_policy *p, const struct moat_tables *t,
                                  const char *name, size_t addr)
{
    for (size_t i = 0; i < p->nworkloads; i++)
        if (strcmp(p->workloads[i].name, name) == 0)
            return tables_identity_of(t, &p->workloads[i].addrs[addr]);
    fail_msg("no workload %s", name);
    return 0;
}

static struct moat_workload *workload_named(struct moat_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nworkloads; i++)
        if (strcmp(p->workloads[i].name, name) == 0)
            return &p->workloads[i];
    fail_msg("no workload %s", name);
    return NULL;
}

/* The tables of `p` as updated so far agree with the model, a full compile and the reference. */
static void check_all(const struct moat_policy *p, const struct moat_tables *t, struct rng *r,
                      const char *text)
{
    struct moat_eval_opts o = {.node = NULL};
    struct counts cnt = {0};
    check_identities_against_model(p, t);
    check_same_as_full_compile(p, t, &o);
    for (int k = 0; k < 300; k++)
        check_flow(p, t, &o, r, &cnt, text);
}

static void update_named(struct moat_policy *p, struct moat_tables *t, const char *name)
{
    struct moat_workload *w = workload_named(p, name);
    assert_int_equal(tables_update_workload(t, (uint32_t)(w - p->workloads)), 0);
}

static void set_string(char **field, const char *value)
{
    free(*field);
    *field = moat_strdup(value);
    assert_non_null(*field);
}

static void test_groups_share_selectors_not_addresses(void **state)
{
    (void)state;
    struct rng r = {42};
    struct moat_policy *p;
    load(group_policy, &p);
    struct moat_eval_opts o = {.node = NULL};
    struct moat_tables *t;
    assert_int_equal(policy_compile(p, &o, &t), 0);
    uint32_t inside = policy_find_object(p, "inside"), nginx = policy_find_object(p, "nginx");
    uint32_t team_a = policy_find_object(p, "team-a");
    uint32_t w0 = ident_of_workload(p, t, "w0", 0), w1 = ident_of_workload(p, t, "w1", 0);
    uint32_t w2 = ident_of_workload(p, t, "w2", 0), w3 = ident_of_workload(p, t, "w3", 0);
    /* One group, but the ipblock covers w0's address only (w2's is excepted). */
    assert_true(tables_identity_has(t, w0, inside));
    assert_false(tables_identity_has(t, w1, inside));
    assert_false(tables_identity_has(t, w2, inside));
    assert_int_equal(w1, w2);
    /* A label no object selects on does not make an identity. */
    assert_int_equal(w1, w3);
    /* The image and the namespace labels do. */
    assert_false(tables_identity_has(t, ident_of_workload(p, t, "w4", 0), nginx));
    assert_false(tables_identity_has(t, ident_of_workload(p, t, "w5", 0), team_a));
    /* Both families of one workload: same selectors, the IPv6 ipblock on one only. */
    uint32_t v4 = ident_of_workload(p, t, "w6", 0), v6 = ident_of_workload(p, t, "w6", 1);
    assert_int_equal(v4, w1);
    assert_true(tables_identity_has(t, v6, policy_find_object(p, "v6")));
    check_all(p, t, &r, group_policy);

    /* The last workloads of a group go (w0..w3, w6 share it), then one comes back. */
    const char *const group[] = {"w0", "w1", "w2", "w3", "w6"};
    size_t naddrs[5];
    for (int i = 0; i < 5; i++) {
        struct moat_workload *w = workload_named(p, group[i]);
        naddrs[i] = w->naddrs;
        w->naddrs = 0;
        update_named(p, t, group[i]);
        check_all(p, t, &r, group_policy);
    }
    workload_named(p, "w3")->naddrs = naddrs[3];
    update_named(p, t, "w3");
    check_all(p, t, &r, group_policy);
    assert_false(tables_identity_has(t, ident_of_workload(p, t, "w3", 0), inside));
    /* An address moved into the ipblock; the group stays. */
    assert_int_equal(addr_parse("10.5.2.3", &workload_named(p, "w3")->addrs[0]), 0);
    update_named(p, t, "w3");
    check_all(p, t, &r, group_policy);
    assert_true(tables_identity_has(t, ident_of_workload(p, t, "w3", 0), inside));
    /* Only the unselected label changes: the same identity. */
    uint32_t before = ident_of_workload(p, t, "w3", 0);
    set_string(&workload_named(p, "w3")->labels[2].value, "b9");
    update_named(p, t, "w3");
    assert_int_equal(ident_of_workload(p, t, "w3", 0), before);
    check_all(p, t, &r, group_policy);
    /* A new image (and its forms) and a namespace label change the group. */
    struct moat_workload *w4 = workload_named(p, "w4");
    set_string(&w4->image, "docker.io/library/nginx:1.25");
    free(w4->forms);
    int err;
    w4->forms = image_forms_pack(w4->image, &err);
    assert_int_equal(err, 0);
    update_named(p, t, "w4");
    assert_true(tables_identity_has(t, ident_of_workload(p, t, "w4", 0), nginx));
    set_string(&workload_named(p, "w5")->ns_labels[0].value, "a");
    update_named(p, t, "w5");
    assert_true(tables_identity_has(t, ident_of_workload(p, t, "w5", 0), team_a));
    check_all(p, t, &r, group_policy);
    /* The rest come back. */
    for (int i = 0; i < 5; i++) {
        struct moat_workload *w = workload_named(p, group[i]);
        if (w->naddrs == 0) {
            w->naddrs = naddrs[i];
            update_named(p, t, group[i]);
        }
    }
    check_all(p, t, &r, group_policy);
    tables_free(t);
    policy_free(p);
}

/*
 * A group per workload (a label unique to each that objects select on), then
 * churn: workloads leave and come back in random order, so groups are freed,
 * their hash slots emptied and reused, and made again.
 */
static void test_group_churn(void **state)
{
    (void)state;
    struct rng r = {7};
    struct sbuf b = {0};
    put(&b, "kind: Cluster\nname: c\ndefense: on\n");
    for (int i = 0; i < 6; i++)
        put(&b, "---\nkind: NetworkObject\nname: pod%d\nnamespace: \"*\"\nlabels: [pod=p%d]\n", i,
            i * 37);
    put(&b, "---\nkind: NetworkObject\nname: ns1\nnamespace: ns1\n");
    put(&b, "---\nkind: DefenseRule\ncluster: c\nname: r0\nsource: pod0\ndestinations:\n"
            "  - object: ns1\n    ports: \"80\"\nprotocol: tcp\naction: block\npriority: 1\n");
    put(&b, "---\nkind: DefenseRule\ncluster: c\nname: r1\nsource: ns1\ndestinations:\n"
            "  - object: pod1\nprotocol: any\naction: alert\npriority: 2\n");
    for (int i = 0; i < 200; i++)
        put(&b,
            "---\nkind: Workload\ncluster: c\nnode: n1\nname: w%d\nnamespace: ns%d\n"
            "labels: {pod: p%d, app: a%d}\nips: [10.7.%d.%d]\n",
            i, i % 3, i, i % 4, i / 200, i % 200 + 1);
    struct moat_policy *p;
    load(b.s, &p);
    struct moat_eval_opts o = {.node = NULL};
    struct moat_tables *t;
    assert_int_equal(policy_compile(p, &o, &t), 0);
    check_all(p, t, &r, b.s);
    for (int step = 0; step < 600; step++) {
        uint32_t i = rnd(&r, (uint32_t)p->nworkloads);
        struct moat_workload *w = &p->workloads[i];
        w->naddrs = w->naddrs ? 0 : 1; /* leaves, or comes back */
        if (!rnd(&r, 4))
            set_string(&w->labels[0].value, rnd(&r, 2) ? "p0" : "p37"); /* joins another group */
        assert_int_equal(tables_update_workload(t, i), 0);
        if (step % 100 == 99)
            check_all(p, t, &r, b.s);
    }
    for (uint32_t i = 0; i < p->nworkloads; i++)
        if (!p->workloads[i].naddrs) {
            p->workloads[i].naddrs = 1;
            assert_int_equal(tables_update_workload(t, i), 0);
        }
    check_all(p, t, &r, b.s);
    tables_free(t);
    policy_free(p);
    free(b.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_agree_with_reference),
        cmocka_unit_test(test_incremental_matches_reference),
        cmocka_unit_test(test_groups_share_selectors_not_addresses),
        cmocka_unit_test(test_group_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
