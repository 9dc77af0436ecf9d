/* ipt_rules: iptables+ipset rules from compiled tables (see ipt_rules.h). */
#include "ipt_rules.h"
#include "mem.h"
#include "moat/abi.h"
#include "strset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX (512u << 20) /* a restore input larger than this is refused (-E2BIG) */
#define SET_MIN  65536        /* ipset's default maxelem; larger sets say theirs */

void ipt_text_add(struct ipt_text *b, const char *fmt, ...)
{
    if (b->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0 || b->n + (size_t)len + 1 > TEXT_MAX) {
        b->err = -E2BIG;
        return;
    }
    if (moat_grow(&b->s, &b->cap, b->n + (size_t)len + 1, 1) < 0) {
        b->err = -ENOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

void ipt_text_free(struct ipt_text *b)
{
    free(b->s);
    memset(b, 0, sizeof(*b));
}

static void text_cat(struct ipt_text *b, const struct ipt_text *src)
{
    if (src->err && !b->err)
        b->err = src->err;
    if (src->n)
        ipt_text_add(b, "%.*s", (int)src->n, src->s);
}

void ipt_render_free(struct ipt_render_out *out)
{
    ipt_text_free(&out->sets);
    ipt_text_free(&out->fam[0]);
    ipt_text_free(&out->fam[1]);
    for (size_t i = 0; i < out->nverdict; i++)
        free(out->verdict_chains[i]);
    free(out->verdict_chains);
    memset(out, 0, sizeof(*out));
}

/* ---------- prefixes ---------- */

static void set_bit(struct moat_addr *a, unsigned i)
{
    a->b[i / 8] |= (uint8_t)(1u << (7 - i % 8));
}

static int push_prefix(struct moat_prefix **out, size_t *n, size_t *cap,
                       const struct moat_prefix *p)
{
    if (moat_grow(out, cap, *n + 1, sizeof(**out)) < 0)
        return -ENOMEM;
    (*out)[(*n)++] = *p;
    return 0;
}

/* `holes` are all strictly inside the prefix `p` started from. */
static int subtract_rec(const struct moat_prefix *p, const struct moat_prefix *holes, size_t nholes,
                        struct moat_prefix **out, size_t *n, size_t *cap)
{
    bool any = false;
    for (size_t i = 0; i < nholes && !any; i++)
        if (holes[i].len > p->len && prefix_covers(p, &holes[i]))
            any = true;
    for (size_t i = 0; i < nholes; i++)
        if (holes[i].len <= p->len && prefix_covers(&holes[i], p))
            return 0; /* a hole takes all of this part */
    if (!any || p->len >= 128)
        return push_prefix(out, n, cap, p);
    /* Two halves, each minus the holes inside it. */
    for (int half = 0; half < 2; half++) {
        struct moat_prefix h = *p;
        h.len = (uint8_t)(p->len + 1);
        if (half)
            set_bit(&h.addr, p->len);
        int err = subtract_rec(&h, holes, nholes, out, n, cap);
        if (err)
            return err;
    }
    return 0;
}

int ipt_subtract(const struct moat_prefix *p, const struct moat_prefix *holes, size_t nholes,
                 struct moat_prefix **out, size_t *n, size_t *cap)
{
    struct moat_prefix *inside = moat_calloc(nholes ? nholes : 1, sizeof(*inside));
    if (!inside)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < nholes; i++)
        if (holes[i].len > p->len && prefix_covers(p, &holes[i]))
            inside[k++] = holes[i];
    int err = subtract_rec(p, inside, k, out, n, cap);
    free(inside);
    return err;
}

/* ---------- rendering context ---------- */

enum { TBL_RAW = 0, TBL_FILTER = 1, TBL_MANGLE = 2, NTABLES = 3 };

struct famtext {
    struct ipt_text decl[NTABLES], rules[NTABLES];
};

struct ctx {
    const struct ipt_render_in *in;
    const struct moat_tables *t;
    char s; /* slot letter */
    struct famtext f[2];
    struct ipt_render_out *out;
    /* per identity */
    size_t nids;
    bool *local;        /* a local workload has it: ingress subject */
    bool *peer_used;    /* some entry names it as a peer */
    bool *has_egress;   /* it has egress entries */
    bool *cluster_used; /* egress: its cluster's workloads are exempt */
    struct moat_policy_entry *ents;
    size_t nents, cap_ents;
    struct strset verdicts; /* out->verdict_chains, to find one without a scan */
    int err;
};

static void fam_add(struct ctx *c, int fam, int tbl, bool decl, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void fam_add(struct ctx *c, int fam, int tbl, bool decl, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    struct ipt_text *b = decl ? &c->f[fam].decl[tbl] : &c->f[fam].rules[tbl];
    ipt_text_add(b, "%s\n", line);
    if (!decl)
        c->out->nrules++;
}

/* Both families get the same line (no address in it). */
static void both(struct ctx *c, int tbl, bool decl, const char *line)
{
    fam_add(c, 0, tbl, decl, "%s", line);
    fam_add(c, 1, tbl, decl, "%s", line);
}

static void declare(struct ctx *c, int tbl, const char *name)
{
    char line[64];
    snprintf(line, sizeof(line), ":%s - [0:0]", name);
    both(c, tbl, true, line);
}

/* ---------- addresses ---------- */

/* "10.0.0.0/8" or "2001:db8::/32" in family `fam` (0: IPv4); false if not of that family. */
static bool prefix_text(const struct moat_prefix *p, int fam, char *buf, size_t n)
{
    if (prefix_is_v4(p) != (fam == 0))
        return false;
    prefix_format(p, buf, n);
    return true;
}

static bool addr_text(const struct moat_addr *a, int fam, char *buf, size_t n)
{
    if (addr_is_v4(a) != (fam == 0))
        return false;
    addr_format(a, buf, n);
    return true;
}

static const char *fam_name(int fam)
{
    return fam ? "inet6" : "inet";
}

static void set_create(struct ctx *c, const char *name, const char *type, int fam, size_t n)
{
    size_t max = n * 2 > SET_MIN ? n * 2 : SET_MIN;
    ipt_text_add(&c->out->sets, "create %s-%d %s family %s maxelem %zu -exist\nflush %s-%d\n", name,
                 fam ? 6 : 4, type, fam_name(fam), max, name, fam ? 6 : 4);
    c->out->nsets++;
}

/*
 * One hash:net entry per prefix; /0 (which hash:net cannot hold) as its two halves.
 * An IPv6 prefix that covers the IPv4-mapped space also covers every IPv4 address.
 */
static void set_add_prefix(struct ctx *c, const char *name, int fam, const struct moat_prefix *p)
{
    static const struct moat_prefix mapped = {.addr = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}},
                                              .len = 96};
    struct moat_prefix q = *p;
    if (fam == 0 && !prefix_is_v4(p)) {
        if (!prefix_covers(p, &mapped))
            return;
        q = mapped;
    }
    unsigned base = fam == 0 ? 96 : 0;
    if (q.len == base) { /* /0 of the family */
        for (int half = 0; half < 2; half++) {
            struct moat_prefix h = q;
            h.len = (uint8_t)(base + 1);
            if (half)
                set_bit(&h.addr, base);
            set_add_prefix(c, name, fam, &h);
        }
        return;
    }
    char text[MOAT_ADDR_STRLEN + 8];
    if (prefix_text(&q, fam, text, sizeof(text)))
        ipt_text_add(&c->out->sets, "add %s-%d %s -exist\n", name, fam ? 6 : 4, text);
}

static void set_add_addr(struct ctx *c, const char *name, int fam, const struct moat_addr *a)
{
    char text[MOAT_ADDR_STRLEN];
    if (addr_text(a, fam, text, sizeof(text)))
        ipt_text_add(&c->out->sets, "add %s-%d %s -exist\n", name, fam ? 6 : 4, text);
}

static bool is_exact_kind(enum moat_ident_kind k)
{
    return k == MOAT_IDENT_WORKLOAD || k == MOAT_IDENT_HOST;
}

/* Adds outside prefix outs[i] to set `name`, minus the prefixes inside it. */
static int add_outside(struct ctx *c, const char *name, int fam, const struct moat_prefix *outs,
                       size_t nouts, size_t i)
{
    struct moat_prefix *regions = NULL;
    size_t nr = 0, cap = 0;
    int err = ipt_subtract(&outs[i], outs, nouts, &regions, &nr, &cap);
    for (size_t r = 0; !err && r < nr; r++)
        set_add_prefix(c, name, fam, &regions[r]);
    free(regions);
    return err;
}

/* ---------- detections (SPEC §6; docs/datapath-iptables.md, "Detections") ---------- */

static bool set_known(struct ctx *c, const char *name)
{
    return c->in->set_exists && c->in->set_exists(c->in->set_ctx, name);
}

/* Clusters the detections run for on this node: defense on, a local workload. */
static bool det_cluster(const struct ctx *c, uint32_t k)
{
    const struct moat_policy *p = c->in->p;
    if (k >= p->nclusters || !p->clusters[k].defense)
        return false;
    for (size_t w = 0; w < p->nworkloads; w++)
        if (p->workloads[w].cluster == k && p->workloads[w].node &&
            strcmp(p->workloads[w].node, c->in->node) == 0 && p->workloads[w].naddrs)
            return true;
    return false;
}

static int add_resolver(void *arg, const struct moat_addr *a)
{
    void **v = arg;
    struct ctx *c = v[0];
    const char *name = v[1];
    const int *fam = v[2];
    bool *any = v[3];
    set_add_addr(c, name, *fam, a);
    if (addr_is_v4(a) == (*fam == 0))
        *any = true;
    return 0;
}

/* Whether cluster k has an approved resolver of family `fam` (DNS is checked only then). */
static bool has_resolver(const struct moat_policy *p, uint32_t k, int fam);

/*
 * Per cluster the detections run for: N<k> (its workloads' addresses on this
 * node), R<k> (its approved resolvers), and, outside the slots, the
 * quarantine and threat sets, made once (their entries outlive policy updates).
 */
static void detection_sets(struct ctx *c, int fam)
{
    const struct moat_policy *p = c->in->p;
    char name[48];
    for (uint32_t k = 0; k < p->nclusters; k++) {
        if (!det_cluster(c, k))
            continue;
        snprintf(name, sizeof(name), "mt-%c-N%u", c->s, k);
        set_create(c, name, "hash:ip", fam, 16);
        for (size_t w = 0; w < p->nworkloads; w++) {
            const struct moat_workload *wl = &p->workloads[w];
            if (wl->cluster != k || !wl->node || strcmp(wl->node, c->in->node) != 0)
                continue;
            for (size_t a = 0; a < wl->naddrs; a++)
                set_add_addr(c, name, fam, &wl->addrs[a]);
        }
        if (p->clusters[k].det.dns_hijack.c.enabled) {
            snprintf(name, sizeof(name), "mt-%c-R%u", c->s, k);
            set_create(c, name, "hash:ip", fam, 16);
            bool any = false;
            void *arg[] = {c, name, &fam, &any};
            cluster_resolvers(p, k, add_resolver, arg);
        }
        snprintf(name, sizeof(name), IPT_QSET, k, fam ? 6 : 4);
        if (!set_known(c, name)) {
            /* timeouts per entry (ipset 6.x); the default one is never used */
            ipt_text_add(&c->out->sets,
                         "create %s hash:ip family %s timeout 600 maxelem %u -exist\n", name,
                         fam_name(fam), IPT_QSET_MAX);
            c->out->nsets++;
        }
        snprintf(name, sizeof(name), IPT_TSET, k, fam ? 6 : 4);
        if (!set_known(c, name)) {
            ipt_text_add(&c->out->sets, "create %s hash:net family %s maxelem %u -exist\n", name,
                         fam_name(fam), IPT_TSET_MAX);
            c->out->nsets++;
        }
        const struct moat_detections *d = &p->clusters[k].det;
        if (d->port_scan.c.enabled && !c->in->no_scan_sets) {
            /* a pair seen within the window is not logged again (timeout: the window) */
            snprintf(name, sizeof(name), IPT_SCAN_SEEN, c->s, k, fam ? 6 : 4);
            ipt_text_add(&c->out->sets,
                         "create %s hash:ip,port,ip family %s timeout %u maxelem 262144 -exist\n",
                         name, fam_name(fam), d->port_scan.window);
            c->out->nsets++;
        }
    }
}

static int count_resolver(void *arg, const struct moat_addr *a)
{
    const int *fam = arg;
    return addr_is_v4(a) == (*fam == 0);
}

static bool has_resolver(const struct moat_policy *p, uint32_t k, int fam)
{
    return cluster_resolvers(p, k, count_resolver, &fam) != 0;
}

/*
 * The sets of the slot: per family, `X` (every workload and host address:
 * the peers matched exactly), `P<id>` per peer identity (its addresses;
 * outside identities as disjoint prefixes, so a set lookup gives what the
 * longest-prefix lookup of the eBPF datapath gives), `L<id>` per local
 * subject (this node's addresses of it), `C<n>` per cluster whose local
 * workloads judge egress (its workloads' addresses: not egress).
 */
static int render_sets(struct ctx *c)
{
    const struct moat_tables *t = c->t;
    size_t na = tables_addr_count(t);
    char name[32];
    struct moat_prefix *outs = NULL;
    uint32_t *out_ids = NULL;
    size_t nouts = 0, cap_outs = 0, cap_ids = 0;
    int err = 0;
    for (size_t i = 0; i < na && !err; i++) {
        struct moat_addr_entry e = tables_addr_entry(t, i);
        struct moat_ident_info info = tables_identity(t, e.identity);
        if (is_exact_kind(info.kind) || e.prefix.len == 0)
            continue;
        if (moat_grow(&outs, &cap_outs, nouts + 1, sizeof(*outs)) < 0 ||
            moat_grow(&out_ids, &cap_ids, nouts + 1, sizeof(*out_ids)) < 0) {
            err = -ENOMEM;
            break;
        }
        outs[nouts] = e.prefix;
        out_ids[nouts++] = e.identity;
    }
    for (int fam = 0; fam < 2 && !err; fam++) {
        snprintf(name, sizeof(name), "mt-%c-X", c->s);
        set_create(c, name, "hash:ip", fam, na);
        for (size_t i = 0; i < na; i++) {
            struct moat_addr_entry e = tables_addr_entry(t, i);
            if (is_exact_kind(tables_identity(t, e.identity).kind))
                set_add_addr(c, name, fam, &e.prefix.addr);
        }
        for (uint32_t id = 0; id < c->nids && !err; id++) {
            if (!c->peer_used[id] || id == MOAT_ID_ANY || id == MOAT_ID_WORLD)
                continue;
            bool exact = is_exact_kind(tables_identity(t, id).kind);
            snprintf(name, sizeof(name), "mt-%c-P%u", c->s, id);
            set_create(c, name, exact ? "hash:ip" : "hash:net", fam, na);
            if (exact) {
                for (size_t i = 0; i < na; i++) {
                    struct moat_addr_entry e = tables_addr_entry(t, i);
                    if (e.identity == id)
                        set_add_addr(c, name, fam, &e.prefix.addr);
                }
                continue;
            }
            for (size_t i = 0; i < nouts && !err; i++) {
                if (out_ids[i] != id)
                    continue;
                err = add_outside(c, name, fam, outs, nouts, i);
            }
        }
        /* A peer of identity WORLD: an address in no other set. */
        if (c->peer_used[MOAT_ID_WORLD]) {
            snprintf(name, sizeof(name), "mt-%c-K", c->s);
            set_create(c, name, "hash:net", fam, nouts);
            for (size_t i = 0; i < nouts && !err; i++) {
                if (out_ids[i] == MOAT_ID_WORLD)
                    continue;
                err = add_outside(c, name, fam, outs, nouts, i);
            }
        }
        const struct moat_policy *p = c->in->p;
        for (uint32_t id = 0; id < c->nids; id++) {
            if (!c->local[id])
                continue;
            snprintf(name, sizeof(name), "mt-%c-L%u", c->s, id);
            set_create(c, name, "hash:ip", fam, 16);
            for (size_t w = 0; w < p->nworkloads; w++) {
                const struct moat_workload *wl = &p->workloads[w];
                if (!wl->node || strcmp(wl->node, c->in->node) != 0)
                    continue;
                for (size_t a = 0; a < wl->naddrs; a++)
                    if (tables_identity_of(t, &wl->addrs[a]) == id)
                        set_add_addr(c, name, fam, &wl->addrs[a]);
            }
        }
        for (uint32_t cl = 0; cl < p->nclusters; cl++) {
            if (!c->cluster_used[cl])
                continue;
            snprintf(name, sizeof(name), "mt-%c-C%u", c->s, cl);
            set_create(c, name, "hash:ip", fam, p->nworkloads);
            for (size_t w = 0; w < p->nworkloads; w++)
                for (size_t a = 0; p->workloads[w].cluster == cl && a < p->workloads[w].naddrs; a++)
                    set_add_addr(c, name, fam, &p->workloads[w].addrs[a]);
        }
        detection_sets(c, fam);
    }
    free(outs);
    free(out_ids);
    return err ? err : c->out->sets.err;
}

/* ---------- verdict chains ---------- */
void ipt_hashlimit_rate(uint32_t threshold, uint32_t window, char *buf, size_t n)
{
    static const struct {
        uint32_t secs;
        const char *unit;
    } units[] = {{1, "second"}, {60, "minute"}, {3600, "hour"}, {86400, "day"}};
    if (!window)
        window = 1;
    for (size_t i = 0; i < 4; i++) {
        uint64_t per = (uint64_t)threshold * units[i].secs;
        if (per % window == 0 || i == 3) {
            uint64_t r = (per + window / 2) / window; /* a day: rounded, at least 1 */
            snprintf(buf, n, "%llu/%s", (unsigned long long)(r ? r : 1), units[i].unit);
            return;
        }
    }
}

const char *ipt_detection_gap(const struct moat_cluster *cl, const char *name, bool *partly)
{
    const struct moat_detections *d = &cl->det;
    *partly = false;
    if (strcmp(name, "brute_force") == 0 && d->brute_force.c.enabled &&
        d->brute_force.threshold > IPT_BURST_MAX)
        return "a threshold above 10000 is more than the iptables backend's hashlimit burst takes";
    if (strcmp(name, "dns_hijack") == 0 && d->dns_hijack.c.enabled) {
        *partly = true;
        return "answers are matched to queries by connection tracking (addresses and ports), not "
               "by id or question, and are not parsed (iptables backend)";
    }
    return NULL;
}

/* A detection's verdict chain in the slot: log (NFLOG prefix `tag`), then drop or go on. */
static void det_chain(struct ctx *c, const char *chain, const char *tag, bool drop)
{
    char line[256];
    declare(c, TBL_FILTER, chain);
    snprintf(line, sizeof(line), "-A %s -j NFLOG --nflog-group %u --nflog-prefix \"%s %s\"", chain,
             c->in->nflog_group, IPT_LOG_TAG, tag);
    both(c, TBL_FILTER, false, line);
    snprintf(line, sizeof(line), "-A %s -j %s", chain, drop ? "DROP" : "RETURN");
    both(c, TBL_FILTER, false, line);
}

static enum moat_action det_applied(const struct moat_cluster *cl, enum moat_action a)
{
    return cl->mode == MOAT_MODE_MONITOR && a == MOAT_ACTION_BLOCK ? MOAT_ACTION_ALERT : a;
}

/* hashlimit names outlive rules (a table of that name is reused, settings and all): the
 * settings are in the name, so a changed threshold or window gets a fresh table. */
static void hashlimit_name(const struct ctx *c, uint32_t k, const struct moat_cluster *cl,
                           char *buf, size_t n)
{
    uint32_t h = 2166136261u;
    const uint32_t v[4] = {c->in->nflog_group, k, cl->det.brute_force.threshold,
                           cl->det.brute_force.window};
    for (size_t i = 0; i < 4; i++)
        for (int b = 0; b < 4; b++)
            h = (h ^ ((v[i] >> (8 * b)) & 0xff)) * 16777619u;
    snprintf(buf, n, "mb%08x", h);
}

static bool brute_gap(const struct moat_cluster *cl)
{
    bool partly;
    return ipt_detection_gap(cl, "brute_force", &partly) != NULL;
}

/* Brute force: attempts over the threshold per (source, destination, port), hashlimit. */
static void brute_force_rules(struct ctx *c, uint32_t k, const char *di)
{
    const struct moat_cluster *cl = &c->in->p->clusters[k];
    const struct moat_detections *d = &cl->det;
    if (!d->brute_force.c.enabled || !d->brute_force.nports || brute_gap(cl) || c->in->no_hashlimit)
        return;
    enum moat_action applied = det_applied(cl, d->brute_force.c.action);
    char chain[40], tag[48], rate[32], hl[16];
    snprintf(chain, sizeof(chain), "MOAT-%c-BF%u", c->s, k);
    snprintf(tag, sizeof(tag), "f %u %d %d", k, (int)d->brute_force.c.action, (int)applied);
    det_chain(c, chain, tag, applied == MOAT_ACTION_BLOCK);
    ipt_hashlimit_rate(d->brute_force.threshold, d->brute_force.window, rate, sizeof(rate));
    hashlimit_name(c, k, cl, hl, sizeof(hl));
    for (size_t from = 0; from < d->brute_force.nports; from += 15) { /* multiport: 15 a rule */
        char ports[15 * 6 + 1] = "";
        size_t len = 0;
        for (size_t i = from; i < d->brute_force.nports && i < from + 15; i++)
            len += (size_t)snprintf(ports + len, sizeof(ports) - len, "%s%u", len ? "," : "",
                                    d->brute_force.ports[i]);
        for (int tcp = 1; tcp >= 0; tcp--) {
            char line[512];
            snprintf(line, sizeof(line),
                     "-A %s -p %s -m multiport --dports %s -m hashlimit --hashlimit-above %s "
                     "--hashlimit-burst %u --hashlimit-mode srcip,dstip,dstport --hashlimit-name "
                     "%s --hashlimit-htable-expire %u -j %s",
                     di, tcp ? "tcp" : "udp", ports, rate, d->brute_force.threshold, hl,
                     d->brute_force.window * 1000u, chain);
            both(c, TBL_FILTER, false, line);
        }
    }
}

/*
 * The detections of cluster k, for new flows toward its workloads here
 * (MOAT-<slot>-DI<k>: brute force, quarantine, threat list, scan pairs,
 * unsolicited DNS answers) and from them (DE<k>: threat list, DNS queries).
 * Before the policy: a blocked attempt is an attempt too.
 */
static void detection_chains(struct ctx *c, uint32_t k)
{
    const struct moat_cluster *cl = &c->in->p->clusters[k];
    const struct moat_detections *d = &cl->det;
    char di[32], de[32], chain[40], tag[48];
    snprintf(di, sizeof(di), "MOAT-%c-DI%u", c->s, k);
    snprintf(de, sizeof(de), "MOAT-%c-DE%u", c->s, k);
    declare(c, TBL_FILTER, di);
    declare(c, TBL_FILTER, de);
    for (int fam = 0; fam < 2; fam++) {
        fam_add(c, fam, TBL_FILTER, false,
                "-A MOAT-%c-FWD -m set --match-set mt-%c-N%u-%d dst -j %s", c->s, c->s, k,
                fam ? 6 : 4, di);
        fam_add(c, fam, TBL_FILTER, false,
                "-A MOAT-%c-FWD -m set --match-set mt-%c-N%u-%d src -j %s", c->s, c->s, k,
                fam ? 6 : 4, de);
    }
    brute_force_rules(c, k, di);
    /* quarantine: every new flow from the source to the cluster's workloads */
    enum moat_action qa = det_applied(cl, MOAT_ACTION_BLOCK);
    snprintf(chain, sizeof(chain), "MOAT-%c-QD%u", c->s, k);
    snprintf(tag, sizeof(tag), "q %u %d", k, (int)qa);
    det_chain(c, chain, tag, qa == MOAT_ACTION_BLOCK);
    for (int fam = 0; fam < 2; fam++) {
        char q[32];
        snprintf(q, sizeof(q), IPT_QSET, k, fam ? 6 : 4);
        fam_add(c, fam, TBL_FILTER, false, "-A %s -m set --match-set %s src -j %s", di, q, chain);
    }
    if (d->threat_intel.c.enabled) {
        enum moat_action ta = det_applied(cl, d->threat_intel.c.action);
        for (int dir = 0; dir < 2; dir++) { /* MOAT_ABI_DIR_INGRESS 0, EGRESS 1 */
            snprintf(chain, sizeof(chain), "MOAT-%c-TH%u%c", c->s, k, dir ? 'e' : 'i');
            snprintf(tag, sizeof(tag), "t %u %d %d %d", k, (int)d->threat_intel.c.action, (int)ta,
                     dir);
            det_chain(c, chain, tag, ta == MOAT_ACTION_BLOCK);
            for (int fam = 0; fam < 2; fam++) {
                char t[32];
                snprintf(t, sizeof(t), IPT_TSET, k, fam ? 6 : 4);
                fam_add(c, fam, TBL_FILTER, false, "-A %s -m set --match-set %s %s -j %s",
                        dir ? de : di, t, dir ? "dst" : "src", chain);
            }
        }
    }
    if (d->port_scan.c.enabled && !c->in->no_scan_sets) {
        char line[256];
        snprintf(chain, sizeof(chain), "MOAT-%c-SC%u", c->s, k);
        declare(c, TBL_FILTER, chain);
        for (int fam = 0; fam < 2; fam++) {
            char seen[32];
            snprintf(seen, sizeof(seen), IPT_SCAN_SEEN, c->s, k, fam ? 6 : 4);
            fam_add(c, fam, TBL_FILTER, false, "-A %s -m set ! --match-set %s src,dst,dst -j %s",
                    di, seen, chain);
            fam_add(c, fam, TBL_FILTER, false, "-A %s -j SET --add-set %s src,dst,dst", chain,
                    seen);
        }
        snprintf(line, sizeof(line), "-A %s -j NFLOG --nflog-group %u --nflog-prefix \"%s n %u\"",
                 chain, c->in->nflog_group, IPT_LOG_TAG, k);
        both(c, TBL_FILTER, false, line);
    }
    if (d->dns_hijack.c.enabled) {
        enum moat_action da = det_applied(cl, d->dns_hijack.c.action);
        char dq[40], dn[40];
        snprintf(dq, sizeof(dq), "MOAT-%c-DQ%u", c->s, k);
        snprintf(tag, sizeof(tag), "r %u %d %d 0 %d", k, (int)d->dns_hijack.c.action, (int)da,
                 MOAT_DROP_DNS_RESOLVER);
        det_chain(c, dq, tag, da == MOAT_ACTION_BLOCK);
        /* an answer from an approved resolver that conntrack knows no query for */
        snprintf(dn, sizeof(dn), "MOAT-%c-DN%u", c->s, k);
        snprintf(tag, sizeof(tag), "r %u %d %d 1 %d", k, (int)d->dns_hijack.c.action,
                 MOAT_ACTION_BLOCK, MOAT_DROP_DNS_NO_QUERY);
        det_chain(c, dn, tag, true);
        for (int fam = 0; fam < 2; fam++) {
            if (!has_resolver(c->in->p, k, fam))
                continue; /* none known: not checked (every lookup would fail) */
            for (int tcp = 0; tcp < 2; tcp++)
                fam_add(c, fam, TBL_FILTER, false,
                        "-A %s -p %s -m %s --dport 53 -m set ! --match-set mt-%c-R%u-%d dst -j %s",
                        de, tcp ? "tcp" : "udp", tcp ? "tcp" : "udp", c->s, k, fam ? 6 : 4, dq);
            fam_add(c, fam, TBL_FILTER, false,
                    "-A %s -p udp -m udp --sport 53 -m set --match-set mt-%c-R%u-%d src -j %s", di,
                    c->s, k, fam ? 6 : 4, dn);
        }
    }
}

/*
 * DNS answers toward a cluster's workloads that do not come from an approved
 * resolver are dropped whatever the action (the workload would believe them),
 * before the established-flow rule: a rogue resolver's answer to a query the
 * alert action let through is a reply conntrack knows.
 */
static void dns_answer_rules(struct ctx *c, uint32_t k)
{
    const struct moat_cluster *cl = &c->in->p->clusters[k];
    if (!cl->det.dns_hijack.c.enabled)
        return;
    char da[40], tag[48];
    snprintf(da, sizeof(da), "MOAT-%c-DA%u", c->s, k);
    snprintf(tag, sizeof(tag), "r %u %d %d 1 %d", k, (int)cl->det.dns_hijack.c.action,
             MOAT_ACTION_BLOCK, MOAT_DROP_DNS_RESOLVER);
    det_chain(c, da, tag, true);
    for (int fam = 0; fam < 2; fam++)
        if (has_resolver(c->in->p, k, fam))
            fam_add(c, fam, TBL_FILTER, false,
                    "-A MOAT-%c-FWD -p udp -m udp --sport 53 -m set --match-set mt-%c-N%u-%d dst "
                    "-m set ! --match-set mt-%c-R%u-%d src -j %s",
                    c->s, c->s, k, fam ? 6 : 4, c->s, k, fam ? 6 : 4, da);
}

/* One threat set per family: prefixes of that family (/0 as two halves). */
static void threat_set(struct ipt_text *o, const struct moat_threatlist *tl, uint32_t k, int fam,
                       bool cur_exists)
{
    char next[32], cur[32];
    snprintf(next, sizeof(next), IPT_TSET_NEXT, k, fam ? 6 : 4);
    snprintf(cur, sizeof(cur), IPT_TSET, k, fam ? 6 : 4);
    ipt_text_add(o, "create %s hash:net family %s maxelem %u -exist\nflush %s\n", next,
                 fam_name(fam), IPT_TSET_MAX, next);
    if (!cur_exists)
        ipt_text_add(o, "create %s hash:net family %s maxelem %u -exist\n", cur, fam_name(fam),
                     IPT_TSET_MAX);
    for (size_t i = 0; tl && i < tl->n; i++) {
        const struct moat_prefix *p = &tl->items[i].prefix;
        if (prefix_is_v4(p) != (fam == 0))
            continue;
        unsigned base = fam == 0 ? 96 : 0;
        for (int half = 0; half < (p->len == base ? 2 : 1); half++) {
            struct moat_prefix h = *p;
            if (p->len == base) { /* hash:net holds no /0 */
                h.len = (uint8_t)(base + 1);
                if (half)
                    set_bit(&h.addr, base);
            }
            char text[MOAT_ADDR_STRLEN + 8];
            prefix_format(&h, text, sizeof(text));
            ipt_text_add(o, "add %s %s -exist\n", next, text);
        }
    }
    ipt_text_add(o, "swap %s %s\ndestroy %s\n", next, cur, next);
}

int ipt_render_threats(struct moat_threatlist *const *lists, size_t n,
                       bool (*set_exists)(void *ctx, const char *name), void *ctx,
                       struct ipt_text *out)
{
    for (size_t k = 0; k < n; k++)
        for (int fam = 0; fam < 2; fam++) {
            char cur[32];
            snprintf(cur, sizeof(cur), IPT_TSET, (unsigned)k, fam ? 6 : 4);
            threat_set(out, lists[k], (uint32_t)k, fam, set_exists && set_exists(ctx, cur));
        }
    return out->err;
}

static char action_letter(enum moat_action a)
{
    return a == MOAT_ACTION_BLOCK ? 'b' : a == MOAT_ACTION_ALERT ? 'a' : 'p';
}

static bool chain_known(struct ctx *c, const char *name)
{
    return c->in->chain_exists && c->in->chain_exists(c->in->ctx, name);
}

static int note_verdict(struct ctx *c, const char *name, bool *fresh)
{
    struct ipt_render_out *o = c->out;
    int added = strset_add(&c->verdicts, name);
    if (added <= 0) {
        *fresh = false;
        return added;
    }
    char *copy = moat_strdup(name);
    if (!copy || moat_grow(&o->verdict_chains, &o->cap_verdict, o->nverdict + 1,
                           sizeof(*o->verdict_chains)) < 0) {
        free(copy);
        return -ENOMEM;
    }
    o->verdict_chains[o->nverdict++] = copy;
    *fresh = !chain_known(c, name);
    return 0;
}

/*
 * The chain a judgment jumps to: counts it, logs it for an alert (NFLOG,
 * read by moatd), drops it for a block. Made once (name = content).
 */
static const char *verdict_chain(struct ctx *c, char *name, size_t n, bool is_default, uint32_t id,
                                 uint32_t cluster, enum moat_action cfg, enum moat_action applied,
                                 enum moat_dir dir)
{
    if (is_default)
        snprintf(name, n, "MOAT-D%u%c%c", cluster, action_letter(cfg), action_letter(applied));
    else
        snprintf(name, n, "MOAT-R%uc%u%c%c%c", id, cluster, action_letter(cfg),
                 action_letter(applied), dir == MOAT_DIR_INGRESS ? 'i' : 'e');
    bool fresh;
    if ((c->err = c->err ? c->err : note_verdict(c, name, &fresh)) || !fresh)
        return name;
    declare(c, TBL_FILTER, name);
    if (applied != MOAT_ACTION_ALLOW) {
        char line[256];
        snprintf(line, sizeof(line),
                 "-A %s -j NFLOG --nflog-group %u --nflog-prefix \"%s %c %u %u %d %d %d\"", name,
                 c->in->nflog_group, IPT_LOG_TAG, is_default ? 'd' : 'p', id, cluster, (int)cfg,
                 (int)applied, (int)dir);
        both(c, TBL_FILTER, false, line);
    }
    char line[128];
    snprintf(line, sizeof(line), "-A %s -j %s", name,
             applied == MOAT_ACTION_BLOCK ? "DROP" : "RETURN");
    both(c, TBL_FILTER, false, line);
    return name;
}

/* ---------- policy chains ---------- */

static int cmp_entry(const void *x, const void *y)
{
    const struct moat_policy_entry *a = x, *b = y;
    if (a->dir != b->dir)
        return a->dir < b->dir ? -1 : 1;
    if (a->subject != b->subject)
        return a->subject < b->subject ? -1 : 1;
    if (a->pclass != b->pclass)
        return a->pclass < b->pclass ? -1 : 1;
    if (a->priority != b->priority)
        return a->priority < b->priority ? -1 : 1;
    if (a->rule_id != b->rule_id)
        return a->rule_id < b->rule_id ? -1 : 1;
    return a->port_lo < b->port_lo ? -1 : a->port_lo > b->port_lo;
}

static int collect(void *ctx, const struct moat_policy_entry *e)
{
    struct ctx *c = ctx;
    if (moat_grow(&c->ents, &c->cap_ents, c->nents + 1, sizeof(*c->ents)) < 0)
        return -ENOMEM;
    c->ents[c->nents++] = *e;
    if (e->peer < c->nids)
        c->peer_used[e->peer] = true;
    if (e->dir == MOAT_DIR_EGRESS && e->subject < c->nids) {
        c->has_egress[e->subject] = true;
        uint32_t cl = tables_identity(c->t, e->subject).cluster;
        if (cl < c->in->p->nclusters)
            c->cluster_used[cl] = true;
    }
    return 0;
}

static const char pclass_letter[] = {'O', 'T', 'U'};

static uint32_t rule_cluster(const struct moat_policy *p, uint32_t id)
{
    for (size_t i = 0; i < p->nrules; i++)
        if (p->rules[i].id == id)
            return p->rules[i].cluster;
    return 0;
}

/* One policy entry as a rule of chain `chain` (W: exact peers, Z: outside peers). */
static void entry_rule(struct ctx *c, const char *chain, const struct moat_policy_entry *e)
{
    const struct moat_policy *p = c->in->p;
    uint32_t cl = rule_cluster(p, e->rule_id);
    const struct moat_cluster *cluster = &p->clusters[cl];
    enum moat_action applied = e->action;
    if (cluster->mode == MOAT_MODE_MONITOR && applied == MOAT_ACTION_BLOCK)
        applied = MOAT_ACTION_ALERT;
    char target[40];
    verdict_chain(c, target, sizeof(target), false, e->rule_id, cl, e->action, applied, e->dir);
    const char *side = e->dir == MOAT_DIR_INGRESS ? "src" : "dst";
    for (int fam = 0; fam < 2; fam++) {
        char peer[80] = "", ports[64] = "";
        if (e->peer == MOAT_ID_WORLD)
            snprintf(peer, sizeof(peer), " -m set ! --match-set mt-%c-K-%d %s", c->s, fam ? 6 : 4,
                     side);
        else if (e->peer != MOAT_ID_ANY)
            snprintf(peer, sizeof(peer), " -m set --match-set mt-%c-P%u-%d %s", c->s, e->peer,
                     fam ? 6 : 4, side);
        if (e->pclass != MOAT_PCLASS_OTHER && !(e->port_lo <= 1 && e->port_hi == 65535)) {
            const char *proto = e->pclass == MOAT_PCLASS_TCP ? "tcp" : "udp";
            if (e->port_lo == e->port_hi)
                snprintf(ports, sizeof(ports), " -p %s -m %s --dport %u", proto, proto, e->port_lo);
            else
                snprintf(ports, sizeof(ports), " -p %s -m %s --dport %u:%u", proto, proto,
                         e->port_lo, e->port_hi);
        }
        fam_add(c, fam, TBL_FILTER, false, "-A %s%s%s -g %s", chain, peer, ports, target);
    }
}

/*
 * The chains of one subject in one direction: I<S> (ingress) or E<S>
 * (egress) splits by protocol class, then by whether the peer is a workload
 * or host (set X) or an outside address; each list holds its entries in
 * precedence order ((priority, id): the first match wins, as the eBPF
 * datapath's two-probe compare), then the default.
 */
static void subject_chains(struct ctx *c, enum moat_dir dir, uint32_t subj, size_t from, size_t to)
{
    const struct moat_policy *p = c->in->p;
    struct moat_ident_info info = tables_identity(c->t, subj);
    const struct moat_cluster *cl = &p->clusters[info.cluster];
    char d = dir == MOAT_DIR_INGRESS ? 'I' : 'E';
    const char *side = dir == MOAT_DIR_INGRESS ? "src" : "dst";
    char top[32];
    snprintf(top, sizeof(top), "MOAT-%c-%c%u", c->s, d, subj);
    declare(c, TBL_FILTER, top);
    char line[256];
    if (!cl->defense) { /* allowed, nothing recorded */
        snprintf(line, sizeof(line), "-A %s -j RETURN", top);
        both(c, TBL_FILTER, false, line);
        return;
    }
    if (dir == MOAT_DIR_EGRESS)
        for (int fam = 0; fam < 2; fam++) /* toward its own cluster's workloads: not egress */
            fam_add(c, fam, TBL_FILTER, false,
                    "-A %s -m set --match-set mt-%c-C%u-%d dst -j RETURN", top, c->s, info.cluster,
                    fam ? 6 : 4);
    char dflt[40] = "";
    if (dir == MOAT_DIR_INGRESS) {
        enum moat_action a = cl->default_action, applied = a;
        if (cl->mode == MOAT_MODE_MONITOR && a == MOAT_ACTION_BLOCK)
            applied = MOAT_ACTION_ALERT;
        verdict_chain(c, dflt, sizeof(dflt), true, 0, info.cluster, a, applied, dir);
    }
    for (int pc = 0; pc < 3; pc++) {
        char cls[40], w[40], z[40];
        snprintf(cls, sizeof(cls), "%s%c", top, pclass_letter[pc]);
        snprintf(w, sizeof(w), "%sW", cls);
        snprintf(z, sizeof(z), "%sZ", cls);
        declare(c, TBL_FILTER, cls);
        declare(c, TBL_FILTER, w);
        declare(c, TBL_FILTER, z);
        for (int fam = 0; fam < 2; fam++)
            fam_add(c, fam, TBL_FILTER, false, "-A %s -m set --match-set mt-%c-X-%d %s -g %s", cls,
                    c->s, fam ? 6 : 4, side, w);
        snprintf(line, sizeof(line), "-A %s -g %s", cls, z);
        both(c, TBL_FILTER, false, line);
        for (size_t i = from; i < to; i++) {
            const struct moat_policy_entry *e = &c->ents[i];
            if ((int)e->pclass != pc)
                continue;
            bool exact =
                e->peer == MOAT_ID_ANY ||
                (e->peer != MOAT_ID_WORLD && is_exact_kind(tables_identity(c->t, e->peer).kind));
            bool outside = e->peer == MOAT_ID_ANY || !exact;
            if (exact)
                entry_rule(c, w, e);
            if (outside)
                entry_rule(c, z, e);
        }
        for (int k = 0; k < 2 && *dflt; k++) {
            snprintf(line, sizeof(line), "-A %s -g %s", k ? z : w, dflt);
            both(c, TBL_FILTER, false, line);
        }
    }
    snprintf(line, sizeof(line), "-A %s -p tcp -g %sT", top, top);
    both(c, TBL_FILTER, false, line);
    snprintf(line, sizeof(line), "-A %s -p udp -g %sU", top, top);
    both(c, TBL_FILTER, false, line);
    snprintf(line, sizeof(line), "-A %s -g %sO", top, top);
    both(c, TBL_FILTER, false, line);
}

/* ---------- interfaces ---------- */

static uint32_t iface_identity(const struct ctx *c, const struct ipt_iface *ifc)
{
    return ifc->naddrs ? tables_identity_of(c->t, &ifc->addrs[0]) : MOAT_ID_WORLD;
}

static const struct moat_cluster *iface_cluster(const struct ctx *c, const struct ipt_iface *ifc)
{
    const struct moat_policy *p = c->in->p;
    return ifc->cluster < p->nclusters ? &p->clusters[ifc->cluster] : NULL;
}

/* IPv6 neighbour advertisements (and DAD solicitations) may name only the workload's own
 * addresses or a link-local one: the target is read at a fixed offset (u32), so no
 * extension header may come before the ICMPv6 header. */
static void nd_chain(struct ctx *c, const struct ipt_iface *ifc, const char *op)
{
    char nd[32];
    snprintf(nd, sizeof(nd), "MOAT-%c-N%d", c->s, ifc->ifindex);
    if (*op == 'A')
        fam_add(c, 1, TBL_RAW, true, ":%s - [0:0]", nd);
    if (*op != 'A') {
        fam_add(c, 1, TBL_RAW, false, "-F %s", nd);
        fam_add(c, 1, TBL_RAW, false, "-X %s", nd);
        return;
    }
    fam_add(c, 1, TBL_RAW, false, "-A %s -m u32 ! --u32 \"4>>8&0xFF=58\" -j MOAT-X-ND", nd);
    for (size_t i = 0; i < ifc->naddrs; i++) {
        if (addr_is_v4(&ifc->addrs[i]))
            continue;
        const uint8_t *b = ifc->addrs[i].b;
        fam_add(c, 1, TBL_RAW, false,
                "-A %s -m u32 --u32 \"48=0x%02x%02x%02x%02x&&52=0x%02x%02x%02x%02x&&"
                "56=0x%02x%02x%02x%02x&&60=0x%02x%02x%02x%02x\" -j RETURN",
                nd, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                b[13], b[14], b[15]);
    }
    fam_add(c, 1, TBL_RAW, false, "-A %s -m u32 --u32 \"48&0xFFC00000=0xFE800000\" -j RETURN", nd);
    fam_add(c, 1, TBL_RAW, false, "-A %s -j MOAT-X-ND", nd);
}

/*
 * What a workload may send, before conntrack (raw PREROUTING, every packet
 * that enters from its interface, bridged or routed): its own source
 * addresses only, no router advertisements, redirects or DHCP server
 * messages, neighbour discovery only about itself.
 */
static void guard_chain(struct ctx *c, const struct ipt_iface *ifc)
{
    char g[32];
    snprintf(g, sizeof(g), "MOAT-%c-G%d", c->s, ifc->ifindex);
    declare(c, TBL_RAW, g);
    nd_chain(c, ifc, "A");
    /* IPv4 */
    fam_add(c, 0, TBL_RAW, false, "-A %s -p icmp -m icmp --icmp-type 5 -j MOAT-X-ROUTER", g);
    fam_add(c, 0, TBL_RAW, false, "-A %s -p udp -m udp --sport 67 --dport 68 -j MOAT-X-DHCP", g);
    /* IPv6 */
    fam_add(c, 1, TBL_RAW, false, "-A %s -p ipv6-icmp -m icmp6 --icmpv6-type 134 -j MOAT-X-ROUTER",
            g);
    fam_add(c, 1, TBL_RAW, false, "-A %s -p ipv6-icmp -m icmp6 --icmpv6-type 137 -j MOAT-X-ROUTER",
            g);
    fam_add(c, 1, TBL_RAW, false, "-A %s -p udp -m udp --sport 547 --dport 546 -j MOAT-X-DHCP", g);
    fam_add(c, 1, TBL_RAW, false, "-A %s -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j MOAT-%c-N%d", g,
            c->s, ifc->ifindex);
    fam_add(c, 1, TBL_RAW, false,
            "-A %s -s ::/128 -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j MOAT-%c-N%d", g, c->s,
            ifc->ifindex);
    static const int nd_types[] = {133, 135, 136, 130, 131, 132, 143};
    for (size_t i = 0; i < sizeof(nd_types) / sizeof(nd_types[0]); i++) {
        fam_add(c, 1, TBL_RAW, false,
                "-A %s -s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type %d -j RETURN", g,
                nd_types[i]);
        fam_add(c, 1, TBL_RAW, false,
                "-A %s -s ::/128 -p ipv6-icmp -m icmp6 --icmpv6-type %d -j RETURN", g, nd_types[i]);
    }
    for (size_t i = 0; i < ifc->naddrs; i++) {
        char a[MOAT_ADDR_STRLEN];
        int fam = addr_is_v4(&ifc->addrs[i]) ? 0 : 1;
        addr_format(&ifc->addrs[i], a, sizeof(a));
        fam_add(c, fam, TBL_RAW, false, "-A %s -s %s -j RETURN", g, a);
    }
    fam_add(c, 0, TBL_RAW, false,
            "-A %s -s 0.0.0.0/32 -p udp -m udp --sport 68 --dport 67 -j RETURN", g);
    fam_add(c, 1, TBL_RAW, false,
            "-A %s -s fe80::/10 -p udp -m udp --sport 546 --dport 547 -j RETURN", g);
    fam_add(c, 0, TBL_RAW, false, "-A %s -s 0.0.0.0/8 -j MOAT-X-LLSRC", g);
    fam_add(c, 0, TBL_RAW, false, "-A %s -s 169.254.0.0/16 -j MOAT-X-LLSRC", g);
    fam_add(c, 1, TBL_RAW, false, "-A %s -s fe80::/10 -j MOAT-X-LLSRC", g);
    fam_add(c, 1, TBL_RAW, false, "-A %s -s ::/128 -j MOAT-X-LLSRC", g);
    const struct moat_cluster *cl = iface_cluster(c, ifc);
    if (cl && cl->det.spoofing.c.enabled) {
        char line[128];
        snprintf(line, sizeof(line), "-A %s -j %s", g,
                 cl->det.spoofing.c.action == MOAT_ACTION_BLOCK ? "MOAT-X-SPOOF" : "MOAT-W-SPOOF");
        both(c, TBL_RAW, false, line);
    }
}

/* The dispatch rules of one interface; `op` "A" appends them, "D" deletes them. */
static void iface_rules(struct ctx *c, const struct ipt_iface *ifc, const char *op)
{
    char line[256];
    uint32_t id = iface_identity(c, ifc);
    snprintf(line, sizeof(line),
             "-%s MOAT-%c-PRE -m physdev --physdev-in %s -m comment --comment \"c %u\" -j "
             "MOAT-%c-G%d",
             op, c->s, ifc->name, ifc->cluster, c->s, ifc->ifindex);
    both(c, TBL_RAW, false, line);
    if (id < c->nids && c->local[id]) {
        snprintf(line, sizeof(line), "-%s MOAT-%c-GRP -m physdev --physdev-out %s -g MOAT-%c-I%u",
                 op, c->s, ifc->name, c->s, id);
        both(c, TBL_FILTER, false, line);
        fam_add(c, 1, TBL_FILTER, false,
                "-%s MOAT-%c-LL -m physdev --physdev-out %s -g MOAT-%c-I%u", op, c->s, ifc->name,
                c->s, id);
    }
    if (id < c->nids && c->has_egress[id]) {
        snprintf(line, sizeof(line), "-%s MOAT-%c-FWD -m physdev --physdev-in %s -j MOAT-%c-E%u",
                 op, c->s, ifc->name, c->s, id);
        both(c, TBL_FILTER, false, line);
    }
    snprintf(line, sizeof(line), "-%s MOAT-%c-MGL -m physdev --physdev-in %s -j MOAT-%c-MGE", op,
             c->s, ifc->name, c->s);
    both(c, TBL_MANGLE, false, line);
}

/* ---------- the slot ---------- */

static int ctx_init(struct ctx *c, const struct ipt_render_in *in, struct ipt_render_out *out)
{
    memset(out, 0, sizeof(*out));
    memset(c, 0, sizeof(*c));
    c->in = in;
    c->t = in->t;
    c->s = in->slot;
    c->out = out;
    c->nids = tables_identity_count(in->t);
    size_t nc = in->p->nclusters ? in->p->nclusters : 1;
    c->local = moat_calloc(c->nids + 1, sizeof(bool));
    c->peer_used = moat_calloc(c->nids + 1, sizeof(bool));
    c->has_egress = moat_calloc(c->nids + 1, sizeof(bool));
    c->cluster_used = moat_calloc(nc, sizeof(bool));
    if (!c->local || !c->peer_used || !c->has_egress || !c->cluster_used)
        return -ENOMEM;
    for (size_t w = 0; w < in->p->nworkloads; w++) {
        const struct moat_workload *wl = &in->p->workloads[w];
        if (!wl->node || strcmp(wl->node, in->node) != 0 || !wl->naddrs)
            continue;
        uint32_t id = tables_identity_of(in->t, &wl->addrs[0]);
        if (id < c->nids && tables_identity(in->t, id).kind == MOAT_IDENT_WORKLOAD)
            c->local[id] = true;
        for (size_t a = 1; a < wl->naddrs; a++) {
            uint32_t other = tables_identity_of(in->t, &wl->addrs[a]);
            if (other < c->nids && tables_identity(in->t, other).kind == MOAT_IDENT_WORKLOAD)
                c->local[other] = true;
        }
    }
    return tables_policy_foreach(in->t, collect, c);
}

static void ctx_free(struct ctx *c)
{
    for (int f = 0; f < 2; f++)
        for (int t = 0; t < NTABLES; t++) {
            ipt_text_free(&c->f[f].decl[t]);
            ipt_text_free(&c->f[f].rules[t]);
        }
    free(c->local);
    free(c->peer_used);
    free(c->has_egress);
    free(c->cluster_used);
    free(c->ents);
    strset_clear(&c->verdicts);
}

static const char *const table_names[NTABLES] = {"raw", "filter", "mangle"};

/* Joins the declarations and rules of each table into the restore inputs. */
static int finish(struct ctx *c)
{
    for (int fam = 0; fam < 2; fam++)
        for (int tbl = 0; tbl < NTABLES; tbl++) {
            struct ipt_text *o = &c->out->fam[fam];
            if (!c->f[fam].decl[tbl].n && !c->f[fam].rules[tbl].n)
                continue;
            ipt_text_add(o, "*%s\n", table_names[tbl]);
            text_cat(o, &c->f[fam].decl[tbl]);
            text_cat(o, &c->f[fam].rules[tbl]);
            ipt_text_add(o, "COMMIT\n");
        }
    for (int fam = 0; fam < 2; fam++)
        if (c->out->fam[fam].err)
            return c->out->fam[fam].err;
    return c->err;
}

int ipt_render(const struct ipt_render_in *in, struct ipt_render_out *out)
{
    struct ctx c;
    int err = ctx_init(&c, in, out);
    if (!err) {
        if (c.nents)
            qsort(c.ents, c.nents, sizeof(*c.ents), cmp_entry);
        err = render_sets(&c);
    }
    if (!err) {
        char line[256];
        static const struct {
            int table;
            const char *name;
        } slot_chains[] = {{TBL_RAW, "PRE"},    {TBL_FILTER, "FWD"}, {TBL_FILTER, "OUT"},
                           {TBL_FILTER, "GRP"}, {TBL_FILTER, "REL"}, {TBL_FILTER, "LL"},
                           {TBL_MANGLE, "MGL"}, {TBL_MANGLE, "MGE"}};
        for (size_t i = 0; i < sizeof(slot_chains) / sizeof(slot_chains[0]); i++) {
            snprintf(line, sizeof(line), "MOAT-%c-%s", c.s, slot_chains[i].name);
            declare(&c, slot_chains[i].table, line);
        }
        /* MGL (mangle PREROUTING, after conntrack, before the bridge passes a frame up or
         * on): ICMP errors a workload sends about no flow at all are dropped there. */
        snprintf(line, sizeof(line), "-A MOAT-%c-MGL -m conntrack ! --ctstate INVALID -j RETURN",
                 c.s);
        both(&c, TBL_MANGLE, false, line);
        static const int err4[] = {3, 11, 12}, err6[] = {1, 2, 3, 4};
        for (size_t i = 0; i < 3; i++)
            fam_add(&c, 0, TBL_MANGLE, false,
                    "-A MOAT-%c-MGE -p icmp -m icmp --icmp-type %d -j MOAT-X-ICMPM", c.s, err4[i]);
        for (size_t i = 0; i < 4; i++)
            fam_add(&c, 1, TBL_MANGLE, false,
                    "-A MOAT-%c-MGE -p ipv6-icmp -m icmp6 --icmpv6-type %d -j MOAT-X-ICMPM", c.s,
                    err6[i]);
        /* Subjects: ingress for local workloads, egress where they have egress rules. */
        for (size_t i = 0; i < c.nents;) {
            size_t j = i;
            while (j < c.nents && c.ents[j].dir == c.ents[i].dir &&
                   c.ents[j].subject == c.ents[i].subject)
                j++;
            uint32_t s = c.ents[i].subject;
            if (s < c.nids && (c.ents[i].dir == MOAT_DIR_EGRESS || c.local[s]))
                subject_chains(&c, c.ents[i].dir, s, i, j);
            i = j;
        }
        /* Local subjects without entries: the default applies. */
        for (uint32_t s = 0; s < c.nids; s++) {
            if (!c.local[s])
                continue;
            bool has = false;
            for (size_t i = 0; i < c.nents && !has; i++)
                has = c.ents[i].dir == MOAT_DIR_INGRESS && c.ents[i].subject == s;
            if (!has)
                subject_chains(&c, MOAT_DIR_INGRESS, s, 0, 0);
        }
        /* FWD: neighbour discovery unjudged (guarded on the way out), group destinations packet
         * by packet, ICMP errors only about their own flows, then established flows, then new
         * ones toward this node's workloads (by destination) and from them (by interface). */
        static const int nd_types[] = {130, 131, 132, 133, 134, 135, 136, 143};
        for (size_t i = 0; i < sizeof(nd_types) / sizeof(nd_types[0]); i++)
            fam_add(&c, 1, TBL_FILTER, false,
                    "-A MOAT-%c-FWD -p ipv6-icmp -m icmp6 --icmpv6-type %d -j RETURN", c.s,
                    nd_types[i]);
        snprintf(line, sizeof(line),
                 "-A MOAT-%c-FWD -m pkttype ! --pkt-type unicast -g MOAT-%c-GRP", c.s, c.s);
        both(&c, TBL_FILTER, false, line);
        snprintf(line, sizeof(line), "-A MOAT-%c-FWD -m conntrack --ctstate RELATED -j MOAT-%c-REL",
                 c.s, c.s);
        both(&c, TBL_FILTER, false, line);
        for (uint32_t k = 0; k < in->p->nclusters; k++)
            if (det_cluster(&c, k))
                dns_answer_rules(&c, k);
        snprintf(line, sizeof(line),
                 "-A MOAT-%c-FWD -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN", c.s);
        both(&c, TBL_FILTER, false, line);
        snprintf(line, sizeof(line),
                 "-A MOAT-%c-OUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN", c.s);
        both(&c, TBL_FILTER, false, line);
        fam_add(&c, 1, TBL_FILTER, false, "-A MOAT-%c-FWD -d fe80::/10 -g MOAT-%c-LL", c.s, c.s);
        for (uint32_t k = 0; k < in->p->nclusters; k++)
            if (det_cluster(&c, k))
                detection_chains(&c, k);
        for (uint32_t s = 0; s < c.nids; s++) {
            if (!c.local[s])
                continue;
            for (int fam = 0; fam < 2; fam++) {
                fam_add(&c, fam, TBL_FILTER, false,
                        "-A MOAT-%c-FWD -m set --match-set mt-%c-L%u-%d dst -j MOAT-%c-I%u", c.s,
                        c.s, s, fam ? 6 : 4, c.s, s);
                fam_add(&c, fam, TBL_FILTER, false,
                        "-A MOAT-%c-OUT -m set --match-set mt-%c-L%u-%d dst -j MOAT-%c-I%u", c.s,
                        c.s, s, fam ? 6 : 4, c.s, s);
            }
        }
        /* REL: an ICMP error to or from a local workload must belong to its own flow. */
        const struct moat_policy *p = in->p;
        for (size_t w = 0; w < p->nworkloads; w++) {
            const struct moat_workload *wl = &p->workloads[w];
            if (!wl->node || strcmp(wl->node, in->node) != 0)
                continue;
            for (size_t a = 0; a < wl->naddrs; a++) {
                char at[MOAT_ADDR_STRLEN];
                int fam = addr_is_v4(&wl->addrs[a]) ? 0 : 1;
                addr_format(&wl->addrs[a], at, sizeof(at));
                for (int k = 0; k < 2; k++)
                    fam_add(&c, fam, TBL_FILTER, false,
                            "-A MOAT-%c-REL %s %s -m conntrack ! --ctorigsrc %s ! --ctorigdst %s "
                            "-j MOAT-X-ICMPERR",
                            c.s, k ? "-d" : "-s", at, at, at);
            }
        }
        for (size_t i = 0; i < in->nifs; i++) {
            guard_chain(&c, &in->ifs[i]);
            iface_rules(&c, &in->ifs[i], "A");
        }
        /* The switch: the entry chains point at this slot, in the same commit. */
        declare(&c, TBL_RAW, "MOAT-PRE");
        snprintf(line, sizeof(line), "-A MOAT-PRE -j MOAT-%c-PRE", c.s);
        both(&c, TBL_RAW, false, line);
        declare(&c, TBL_FILTER, "MOAT-FWD");
        declare(&c, TBL_FILTER, "MOAT-OUT");
        snprintf(line, sizeof(line),
                 "-A MOAT-FWD -m comment --comment \"moat node %s generation %u\" -j MOAT-%c-FWD",
                 in->node, in->generation, c.s);
        both(&c, TBL_FILTER, false, line);
        snprintf(line, sizeof(line), "-A MOAT-OUT -j MOAT-%c-OUT", c.s);
        both(&c, TBL_FILTER, false, line);
        declare(&c, TBL_MANGLE, "MOAT-MGL");
        snprintf(line, sizeof(line), "-A MOAT-MGL -j MOAT-%c-MGL", c.s);
        both(&c, TBL_MANGLE, false, line);
        err = finish(&c);
    }
    ctx_free(&c);
    if (err)
        ipt_render_free(out);
    return err;
}

int ipt_render_iface(const struct ipt_render_in *in, const struct ipt_iface *ifc, bool add,
                     struct ipt_render_out *out)
{
    struct ctx c;
    int err = ctx_init(&c, in, out);
    if (!err) {
        if (add) {
            guard_chain(&c, ifc);
            iface_rules(&c, ifc, "A");
        } else {
            char line[64];
            iface_rules(&c, ifc, "D");
            snprintf(line, sizeof(line), "-F MOAT-%c-G%d", c.s, ifc->ifindex);
            both(&c, TBL_RAW, false, line);
            snprintf(line, sizeof(line), "-X MOAT-%c-G%d", c.s, ifc->ifindex);
            both(&c, TBL_RAW, false, line);
            nd_chain(&c, ifc, "D");
        }
        err = finish(&c);
    }
    ctx_free(&c);
    if (err)
        ipt_render_free(out);
    return err;
}

/* Drop reasons whose chains log a spoofing event (moatd's NFLOG reader turns them into
 * alerts); the numbers are the eBPF datapath's (MOAT_DROP_*, include/moat/abi.h). */
static const struct {
    const char *chain;
    int table, reason;
    bool event, drop;
} base_chains[] = {
    {"MOAT-X-ROUTER", TBL_RAW, MOAT_DROP_ROUTER, true, true},
    {"MOAT-X-DHCP", TBL_RAW, MOAT_DROP_DHCP_SERVER, true, true},
    {"MOAT-X-LLSRC", TBL_RAW, MOAT_DROP_LINK_LOCAL, true, true},
    {"MOAT-X-ND", TBL_RAW, MOAT_DROP_ND_SPOOF, true, true},
    {"MOAT-X-SPOOF", TBL_RAW, MOAT_DROP_SPOOFED, true, true},
    {"MOAT-W-SPOOF", TBL_RAW, MOAT_DROP_SPOOFED, true, false},
    {"MOAT-X-ICMPERR", TBL_FILTER, MOAT_DROP_ICMP_ERROR, false, true},
    {"MOAT-X-ICMPM", TBL_MANGLE, MOAT_DROP_ICMP_ERROR, false, true},
};

int ipt_render_base(uint16_t nflog_group, bool (*exists)(void *ctx, const char *name), void *ctx,
                    struct ipt_render_out *out)
{
    memset(out, 0, sizeof(*out));
    for (int fam = 0; fam < 2; fam++) {
        struct ipt_text *o = &out->fam[fam];
        for (int tbl = 0; tbl < NTABLES; tbl++) {
            ipt_text_add(o, "*%s\n", table_names[tbl]);
            static const char *const entry[NTABLES][2] = {
                {"MOAT-PRE", NULL}, {"MOAT-FWD", "MOAT-OUT"}, {"MOAT-MGL", NULL}};
            for (int i = 0; i < 2; i++)
                if (entry[tbl][i] && !(exists && exists(ctx, entry[tbl][i])))
                    ipt_text_add(o, ":%s - [0:0]\n", entry[tbl][i]);
            for (size_t i = 0; i < sizeof(base_chains) / sizeof(base_chains[0]); i++) {
                if (base_chains[i].table != tbl || (exists && exists(ctx, base_chains[i].chain)))
                    continue;
                const char *ch = base_chains[i].chain;
                ipt_text_add(o, ":%s - [0:0]\n", ch);
                if (base_chains[i].event)
                    ipt_text_add(o,
                                 "-A %s -j NFLOG --nflog-group %u --nflog-prefix \"%s s %d %d\"\n",
                                 ch, nflog_group, IPT_LOG_TAG, base_chains[i].reason,
                                 base_chains[i].drop ? MOAT_ACTION_BLOCK : MOAT_ACTION_ALERT);
                ipt_text_add(o, "-A %s -j %s\n", ch, base_chains[i].drop ? "DROP" : "RETURN");
            }
            /* The jumps from the built-in chains, first in each. */
            static const char *const jumps[NTABLES][2][2] = {
                {{"PREROUTING", "MOAT-PRE"}, {NULL, NULL}},
                {{"FORWARD", "MOAT-FWD"}, {"OUTPUT", "MOAT-OUT"}},
                {{"PREROUTING", "MOAT-MGL"}, {NULL, NULL}}};
            for (int i = 0; i < 2; i++) {
                if (!jumps[tbl][i][0])
                    continue;
                char key[64];
                snprintf(key, sizeof(key), "jump:%s:%s", jumps[tbl][i][0], jumps[tbl][i][1]);
                if (!(exists && exists(ctx, key)))
                    ipt_text_add(o, "-I %s 1 -j %s\n", jumps[tbl][i][0], jumps[tbl][i][1]);
            }
            ipt_text_add(o, "COMMIT\n");
        }
        if (o->err)
            return o->err;
    }
    return 0;
}
