/* lab_plan: a lab's topology from an inventory, no system calls (see lab_plan.h). */
#include "lab_plan.h"
#include "mem.h"
#include "model.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOSTS 256 /* addresses in a /24 */

bool lab_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > LAB_NAME_MAX)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return false;
    return true;
}

struct lab *lab_new(const char *name)
{
    struct lab *lab = moat_calloc(1, sizeof(*lab));
    if (!lab)
        return NULL;
    lab->name = moat_strdup(name);
    if (!lab->name) {
        free(lab);
        return NULL;
    }
    return lab;
}

void lab_free(struct lab *lab)
{
    if (!lab)
        return;
    for (size_t i = 0; i < lab->nnodes; i++) {
        free(lab->nodes[i].name);
        free(lab->nodes[i].cluster);
        free(lab->nodes[i].netns);
    }
    for (size_t i = 0; i < lab->nworkloads; i++) {
        struct lab_workload *w = &lab->workloads[i];
        free(w->cluster);
        free(w->namespace);
        free(w->name);
        free(w->netns);
        free(w->ifname);
        free(w->addrs);
    }
    free(lab->nodes);
    free(lab->workloads);
    free(lab->underlay.netns);
    free(lab->name);
    free(lab);
}

/* ---------- IPv4 in the 128-bit form ---------- */

static uint32_t v4_of(const struct moat_addr *a)
{
    return (uint32_t)a->b[12] << 24 | (uint32_t)a->b[13] << 16 | (uint32_t)a->b[14] << 8 | a->b[15];
}

static struct moat_addr addr_v4(uint32_t v)
{
    struct moat_addr a = {{0}};
    a.b[10] = a.b[11] = 0xff;
    a.b[12] = (uint8_t)(v >> 24);
    a.b[13] = (uint8_t)(v >> 16);
    a.b[14] = (uint8_t)(v >> 8);
    a.b[15] = (uint8_t)v;
    return a;
}

static struct moat_prefix subnet_of(uint32_t net)
{
    struct moat_prefix p = {addr_v4(net & 0xffffff00u), 96 + LAB_PREFIX_LEN};
    return p;
}

struct moat_prefix lab_ul_subnet(void)
{
    return subnet_of(LAB_UL_NET);
}

void lab_ul_port(size_t i, char *buf, size_t n)
{
    snprintf(buf, n, "node%zu", i + 1);
}

static const struct moat_addr *first_v4(const struct moat_addr *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (addr_is_v4(&a[i]))
            return &a[i];
    return NULL;
}

/* ---------- IPv6 ---------- */

static const struct moat_addr *first_v6(const struct moat_addr *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!addr_is_v4(&a[i]))
            return &a[i];
    return NULL;
}

/* The interface identifier: the low 64 bits. */
static uint64_t iid_of(const struct moat_addr *a)
{
    uint64_t v = 0;
    for (int i = 8; i < 16; i++)
        v = v << 8 | a->b[i];
    return v;
}

static struct moat_addr addr6_in(const struct moat_prefix *net, uint64_t iid)
{
    struct moat_addr a = net->addr;
    for (int i = 15; i >= 8; i--, iid >>= 8)
        a.b[i] = (uint8_t)iid;
    return a;
}

static struct moat_prefix subnet6_of(const struct moat_addr *a)
{
    struct moat_prefix p = {*a, LAB_PREFIX6_LEN};
    memset(p.addr.b + 8, 0, 8);
    return p;
}

/*
 * n (0..9999) written with its decimal digits as a hexadecimal group, so that
 * node 12 is fd00:0:0:12:: and host .10 is ::10 — what a reader expects.
 */
static uint16_t decimal_group(unsigned n)
{
    uint16_t g = 0;
    for (unsigned shift = 0; n && shift < 16; shift += 4, n /= 10)
        g = (uint16_t)(g | (n % 10) << shift);
    return g;
}

#define GROUP_MAX 9999 /* the largest number decimal_group writes */

/* fd00:0:0:G::/64, G the decimal group of x. */
static struct moat_prefix default_subnet6(unsigned x)
{
    struct moat_prefix p = {{{0xfd, 0x00}}, LAB_PREFIX6_LEN};
    uint16_t g = decimal_group(x);
    p.addr.b[6] = (uint8_t)(g >> 8);
    p.addr.b[7] = (uint8_t)g;
    return p;
}

struct moat_prefix lab_ul_subnet6(void)
{
    struct moat_prefix p = {{{0xfd, 0x00, 0xff, 0xff}}, LAB_PREFIX6_LEN};
    return p;
}

bool lab_has_ipv6(const struct lab *lab)
{
    for (size_t i = 0; i < lab->nnodes; i++)
        if (lab->nodes[i].subnet6.len)
            return true;
    return false;
}

/*
 * Why `a` cannot be a lab node's or workload's address, or NULL: only
 * unicast addresses can be configured (and routed between nodes).
 */
static const char *not_unicast(const struct moat_addr *a)
{
    if (addr_is_v4(a)) {
        uint8_t o = a->b[12];
        if (o == 0)
            return "in 0.0.0.0/8 (\"this network\")";
        if (o == 127)
            return "a loopback address";
        if (o == 169 && a->b[13] == 254)
            return "a link-local address";
        if (o >= 224 && o < 240)
            return "a multicast address";
        if (o >= 240)
            return "in 240.0.0.0/4 (reserved, and the broadcast address)";
        return NULL;
    }
    static const struct moat_addr unspecified = {{0}}, loopback = {{[15] = 1}};
    if (a->b[0] == 0xff)
        return "a multicast address";
    if (a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80)
        return "a link-local address (the lab gives every interface its own)";
    if (addr_cmp(a, &loopback) == 0)
        return "the loopback address";
    if (addr_cmp(a, &unspecified) == 0)
        return "the unspecified address";
    return NULL;
}

/* ---------- names ---------- */

static uint32_t fnv1a(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static bool name_taken(char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], s) == 0)
            return true;
    return false;
}

/*
 * `want` if it fits in `max` characters and no name in `taken` has it;
 * otherwise its first characters and a hash of `key` (`-` and `hexdigits` hex
 * digits), salted until free. Returns a new string or NULL on OOM.
 */
static char *unique_name(const char *want, size_t max, const char *key, int hexdigits,
                         char *const *taken, size_t ntaken)
{
    if (strlen(want) <= max && !name_taken(taken, ntaken, want))
        return moat_strdup(want);
    size_t keep = max - 1 - (size_t)hexdigits;
    for (uint32_t salt = 0;; salt++) {
        char saltbuf[16];
        snprintf(saltbuf, sizeof(saltbuf), "#%u", salt);
        uint32_t h = fnv1a(fnv1a(2166136261u, key), saltbuf);
        if (hexdigits < 8)
            h &= (1u << (4 * hexdigits)) - 1;
        char *s = moat_asprintf("%.*s-%0*x", (int)keep, want, hexdigits, h);
        if (!s || !name_taken(taken, ntaken, s))
            return s;
        free(s);
    }
}

/* Interface names the lab may give to a host-side veth end. */
static const char *ifname_problem(const char *s)
{
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strcmp(s, "lo") == 0 ||
        strcmp(s, LAB_BRIDGE) == 0 || strcmp(s, LAB_UL_IFNAME) == 0)
        return "is reserved in a node's namespace";
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.' || *c == '-'))
            return "may only hold A-Z a-z 0-9 . _ - in a lab";
    return NULL;
}

/* ---------- planning ---------- */

struct plan {
    struct moat_policy *p;
    struct lab *lab;
    struct moat_diags *d;
    size_t *wnode;           /* per policy workload: its lab node */
    bool *gw_pending;        /* per lab node: gateway still to choose */
    bool (*used)[HOSTS];     /* per lab node: host numbers taken in its /24 */
    unsigned flags;          /* LAB_PLAN_* */
    bool *gw6_pending;       /* per lab node: IPv6 gateway still to choose */
    struct moat_addr *used6; /* IPv6 addresses taken (files, gateways, assigned), sorted */
    size_t nused6, cap_used6;
};

static size_t file_index(const struct moat_policy *p, const char *file)
{
    for (size_t i = 0; i < p->nfiles; i++)
        if (p->files[i] == file || (file && strcmp(p->files[i], file) == 0))
            return i;
    return p->nfiles;
}

struct appearance {
    const char *node;
    size_t file;
    int doc;
    size_t seq;
};

static int cmp_appearance(const void *a, const void *b)
{
    const struct appearance *x = a, *y = b;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    if (x->doc != y->doc)
        return x->doc < y->doc ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static size_t lab_node_index(const struct lab *lab, const char *name)
{
    for (size_t i = 0; i < lab->nnodes; i++)
        if (strcmp(lab->nodes[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

/* Lab nodes, in order of first appearance (Node documents and workloads' `node`). */
static int plan_nodes(struct plan *pl)
{
    struct moat_policy *p = pl->p;
    size_t n = p->nnodes + p->nworkloads;
    struct appearance *ap = moat_calloc(n, sizeof(*ap));
    pl->lab->nodes = moat_calloc(n, sizeof(*pl->lab->nodes));
    if (!ap || !pl->lab->nodes) {
        free(ap);
        return -ENOMEM;
    }
    for (size_t i = 0; i < p->nnodes; i++)
        ap[i] = (struct appearance){p->nodes[i].name, file_index(p, p->nodes[i].at.file),
                                    p->nodes[i].at.doc, i};
    for (size_t i = 0; i < p->nworkloads; i++)
        ap[p->nnodes + i] =
            (struct appearance){p->workloads[i].node, file_index(p, p->workloads[i].at.file),
                                p->workloads[i].at.doc, p->nnodes + i};
    qsort(ap, n, sizeof(*ap), cmp_appearance);
    int err = 0;
    for (size_t i = 0; i < n && !err; i++) {
        if (lab_node_index(pl->lab, ap[i].node) != SIZE_MAX)
            continue;
        struct lab_node *ln = &pl->lab->nodes[pl->lab->nnodes];
        ln->name = moat_strdup(ap[i].node);
        if (!ln->name)
            err = -ENOMEM;
        else
            pl->lab->nnodes++;
    }
    free(ap);
    return err;
}

static void node_err(struct plan *pl, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void node_err(struct plan *pl, size_t i, const char *fmt, ...)
{
    char msg[512], ctx[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *name = pl->lab->nodes[i].name;
    uint32_t nd = policy_find_node(pl->p, name);
    const struct moat_origin *at = nd == MOAT_NONE ? NULL : &pl->p->nodes[nd].at;
    snprintf(ctx, sizeof(ctx), "nodes \"%s\"", name);
    diags_add(pl->d, at ? at->file : NULL, at ? at->line : 0, ctx, "%s", msg);
}

static void wl_err(struct plan *pl, const struct moat_workload *w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void wl_err(struct plan *pl, const struct moat_workload *w, const char *fmt, ...)
{
    char msg[512], ctx[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ctx, sizeof(ctx), "workloads \"%s\"", w->name);
    diags_add(pl->d, w->at.file, w->at.line, ctx, "%s", msg);
}

static bool host_ok(uint32_t v)
{
    uint32_t h = v & 0xff;
    return h != 0 && h != 255;
}

/* The first address of the family (IPv6 when `v6`), or NULL. */
static const struct moat_addr *first_of(const struct moat_addr *a, size_t n, bool v6)
{
    return v6 ? first_v6(a, n) : first_v4(a, n);
}

/* A node's subnet: the /24 or /64 of `a`. */
static struct moat_prefix node_subnet_of(const struct moat_addr *a)
{
    return addr_is_v4(a) ? subnet_of(v4_of(a)) : subnet6_of(a);
}

/*
 * The subnets the files give, in one family: a Node's first address (its
 * gateway), else that of the first address one of its workloads has (the
 * gateway is then still to choose: gw_pending / gw6_pending).
 */
static void plan_explicit_subnets(struct plan *pl, bool v6)
{
    struct moat_policy *p = pl->p;
    for (size_t i = 0; i < pl->lab->nnodes; i++) {
        struct lab_node *ln = &pl->lab->nodes[i];
        struct moat_prefix *subnet = v6 ? &ln->subnet6 : &ln->subnet;
        uint32_t nd = policy_find_node(p, ln->name);
        const struct moat_addr *gw =
            nd == MOAT_NONE ? NULL : first_of(p->nodes[nd].addrs, p->nodes[nd].naddrs, v6);
        (v6 ? pl->gw6_pending : pl->gw_pending)[i] = !gw;
        if (gw) {
            char text[MOAT_ADDR_STRLEN];
            addr_format(gw, text, sizeof(text));
            if (v6 ? iid_of(gw) == 0 : !host_ok(v4_of(gw)))
                node_err(pl, i, "ips: %s cannot be a gateway (%s)", text,
                         v6 ? "the subnet-router anycast address of its /64"
                            : "network or broadcast address of its /24");
            *(v6 ? &ln->gateway6 : &ln->gateway) = *gw;
            *subnet = node_subnet_of(gw);
            continue;
        }
        for (size_t j = 0; j < p->nworkloads && !subnet->len; j++) {
            const struct moat_workload *w = &p->workloads[j];
            const struct moat_addr *a = first_of(w->addrs, w->naddrs, v6);
            if (pl->wnode[j] == i && a)
                *subnet = node_subnet_of(a);
        }
    }
}

/* Each node needs a subnet of its own, in each family. */
static void plan_shared_subnets(struct plan *pl, bool v6)
{
    for (size_t i = 0; i < pl->lab->nnodes; i++) {
        const struct moat_prefix *si = v6 ? &pl->lab->nodes[i].subnet6 : &pl->lab->nodes[i].subnet;
        for (size_t j = 0; j < i && si->len; j++) {
            const struct moat_prefix *sj =
                v6 ? &pl->lab->nodes[j].subnet6 : &pl->lab->nodes[j].subnet;
            if (!prefix_covers(si, sj))
                continue;
            char text[MOAT_ADDR_STRLEN + 8];
            prefix_format(si, text, sizeof(text));
            node_err(pl, i, "ips: %ssubnet %s is also node \"%s\"'s; each node needs its own %s",
                     v6 ? "IPv6 " : "", text, pl->lab->nodes[j].name, v6 ? "/64" : "/24");
        }
    }
}

static bool subnet_in_use(const struct plan *pl, uint32_t net)
{
    for (size_t i = 0; i < pl->lab->nnodes; i++)
        if (pl->lab->nodes[i].subnet.len && v4_of(&pl->lab->nodes[i].subnet.addr) == net)
            return true;
    const struct moat_policy *p = pl->p;
    for (size_t i = 0; i < p->nworkloads; i++)
        for (size_t j = 0; j < p->workloads[i].naddrs; j++)
            if (addr_is_v4(&p->workloads[i].addrs[j]) &&
                (v4_of(&p->workloads[i].addrs[j]) & 0xffffff00u) == net)
                return true;
    for (size_t i = 0; i < p->nnodes; i++)
        for (size_t j = 0; j < p->nodes[i].naddrs; j++)
            if (addr_is_v4(&p->nodes[i].addrs[j]) &&
                (v4_of(&p->nodes[i].addrs[j]) & 0xffffff00u) == net)
                return true;
    return false;
}

/*
 * Why an address of the files cannot be in the lab, or NULL: not unicast,
 * or in a subnet the lab keeps for its underlay (node subnets come from the
 * files' addresses, so they never meet the underlay's).
 */
static const char *address_problem(const struct moat_addr *a, char *buf, size_t n)
{
    const char *why = not_unicast(a);
    if (why) {
        snprintf(buf, n, "is %s, not an address a lab node or workload can have", why);
        return buf;
    }
    struct moat_prefix ul = lab_ul_subnet(), ul6 = lab_ul_subnet6();
    if (prefix_contains(&ul, a) || prefix_contains(&ul6, a)) {
        snprintf(buf, n, "is in %s, which the lab keeps for its underlay (the links between nodes)",
                 addr_is_v4(a) ? LAB_UL_TEXT : LAB_UL6_TEXT);
        return buf;
    }
    return NULL;
}

static void plan_address_checks(struct plan *pl)
{
    const struct moat_policy *p = pl->p;
    char text[MOAT_ADDR_STRLEN], why[160];
    for (size_t i = 0; i < p->nnodes; i++)
        for (size_t j = 0; j < p->nodes[i].naddrs; j++)
            if (address_problem(&p->nodes[i].addrs[j], why, sizeof(why))) {
                addr_format(&p->nodes[i].addrs[j], text, sizeof(text));
                node_err(pl, lab_node_index(pl->lab, p->nodes[i].name), "ips[%zu]: %s %s", j, text,
                         why);
            }
    for (size_t i = 0; i < p->nworkloads; i++)
        for (size_t j = 0; j < p->workloads[i].naddrs; j++)
            if (address_problem(&p->workloads[i].addrs[j], why, sizeof(why))) {
                addr_format(&p->workloads[i].addrs[j], text, sizeof(text));
                wl_err(pl, &p->workloads[i], "ips[%zu]: %s %s", j, text, why);
            }
}

/* 10.244.k.0/24 for node k, or the next /24 of 10.244/16 nothing uses. */
static void plan_default_subnets(struct plan *pl)
{
    for (size_t i = 0; i < pl->lab->nnodes; i++) {
        struct lab_node *ln = &pl->lab->nodes[i];
        if (ln->subnet.len)
            continue;
        bool found = false;
        for (uint32_t t = 0; t < 254 && !found; t++) {
            uint32_t x = (uint32_t)((i + t) % 254) + 1;
            uint32_t net = (10u << 24) | (244u << 16) | (x << 8);
            if (!subnet_in_use(pl, net)) {
                ln->subnet = subnet_of(net);
                found = true;
            }
        }
        if (!found)
            node_err(pl, i, "no free /24 left in 10.244.0.0/16 for this node");
    }
    plan_shared_subnets(pl, false);
}

/* Marks every address of the policy that lies in a node's /24, and the gateways. */
static void plan_used(struct plan *pl)
{
    const struct moat_policy *p = pl->p;
    for (size_t i = 0; i < pl->lab->nnodes; i++) {
        const struct moat_prefix *s = &pl->lab->nodes[i].subnet;
        pl->used[i][0] = pl->used[i][255] = true;
        if (!pl->gw_pending[i])
            pl->used[i][v4_of(&pl->lab->nodes[i].gateway) & 0xff] = true;
        for (size_t w = 0; w < p->nworkloads; w++)
            for (size_t j = 0; j < p->workloads[w].naddrs; j++)
                if (prefix_contains(s, &p->workloads[w].addrs[j]))
                    pl->used[i][v4_of(&p->workloads[w].addrs[j]) & 0xff] = true;
        for (size_t n = 0; n < p->nnodes; n++)
            for (size_t j = 0; j < p->nodes[n].naddrs; j++)
                if (prefix_contains(s, &p->nodes[n].addrs[j]))
                    pl->used[i][v4_of(&p->nodes[n].addrs[j]) & 0xff] = true;
    }
}

/* The first free host number from `from`, marked used; 0 when the /24 is full. */
static uint32_t take_host(bool used[HOSTS], uint32_t from)
{
    for (uint32_t h = from; h < 255; h++)
        if (!used[h]) {
            used[h] = true;
            return h;
        }
    return 0;
}

static int append_addr(struct moat_addr **addrs, size_t *n, struct moat_addr a)
{
    struct moat_addr *grown = moat_reallocarray(*addrs, *n + 1, sizeof(**addrs));
    if (!grown)
        return -ENOMEM;
    grown[(*n)++] = a;
    *addrs = grown;
    return 0;
}

static void plan_gateways(struct plan *pl)
{
    for (size_t i = 0; i < pl->lab->nnodes; i++) {
        struct lab_node *ln = &pl->lab->nodes[i];
        if (!pl->gw_pending[i] || !ln->subnet.len)
            continue;
        uint32_t h = take_host(pl->used[i], 1);
        if (!h)
            node_err(pl, i, "no free address left for the gateway");
        ln->gateway = addr_v4(v4_of(&ln->subnet.addr) | h);
    }
}

static int plan_addresses(struct plan *pl)
{
    struct moat_policy *p = pl->p;
    for (size_t i = 0; i < p->nworkloads; i++) {
        struct moat_workload *w = &p->workloads[i];
        const struct lab_node *ln = &pl->lab->nodes[pl->wnode[i]];
        if (!ln->subnet.len)
            continue;
        bool has_v4 = false;
        for (size_t j = 0; j < w->naddrs; j++) {
            if (!addr_is_v4(&w->addrs[j]))
                continue;
            has_v4 = true;
            char text[MOAT_ADDR_STRLEN], sub[MOAT_ADDR_STRLEN + 8];
            addr_format(&w->addrs[j], text, sizeof(text));
            prefix_format(&ln->subnet, sub, sizeof(sub));
            if (!prefix_contains(&ln->subnet, &w->addrs[j]))
                wl_err(pl, w, "ips[%zu]: %s is not in node \"%s\"'s subnet %s", j, text, ln->name,
                       sub);
            else if (!host_ok(v4_of(&w->addrs[j])))
                wl_err(pl, w, "ips[%zu]: %s is the network or broadcast address of %s", j, text,
                       sub);
            else if (addr_cmp(&w->addrs[j], &ln->gateway) == 0)
                wl_err(pl, w, "ips[%zu]: %s is node \"%s\"'s gateway address", j, text, ln->name);
        }
        if (has_v4)
            continue;
        uint32_t h = take_host(pl->used[pl->wnode[i]], LAB_FIRST_HOST);
        if (!h) {
            wl_err(pl, w, "ips: no free address left in node \"%s\"'s /24", ln->name);
            continue;
        }
        if (append_addr(&w->addrs, &w->naddrs, addr_v4(v4_of(&ln->subnet.addr) | h)) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---------- IPv6 planning ---------- */

static int cmp_addr(const void *a, const void *b)
{
    return addr_cmp(a, b);
}

static bool used6_has(const struct plan *pl, const struct moat_addr *a)
{
    return pl->nused6 && bsearch(a, pl->used6, pl->nused6, sizeof(*a), cmp_addr) != NULL;
}

/* Marks `a` taken (kept sorted; a few per workload, so insertion is fine). 0 or -ENOMEM. */
static int used6_add(struct plan *pl, const struct moat_addr *a)
{
    size_t lo = 0, hi = pl->nused6;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = addr_cmp(&pl->used6[mid], a);
        if (c == 0)
            return 0;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (moat_grow(&pl->used6, &pl->cap_used6, pl->nused6 + 1, sizeof(*a)) < 0)
        return -ENOMEM;
    memmove(&pl->used6[lo + 1], &pl->used6[lo], (pl->nused6 - lo) * sizeof(*a));
    pl->used6[lo] = *a;
    pl->nused6++;
    return 0;
}

/* Every IPv6 address of the files is taken. 0 or -ENOMEM. */
static int plan_used6(struct plan *pl)
{
    const struct moat_policy *p = pl->p;
    int err = 0;
    for (size_t i = 0; i < p->nworkloads && !err; i++)
        for (size_t j = 0; j < p->workloads[i].naddrs && !err; j++)
            if (!addr_is_v4(&p->workloads[i].addrs[j]))
                err = used6_add(pl, &p->workloads[i].addrs[j]);
    for (size_t i = 0; i < p->nnodes && !err; i++)
        for (size_t j = 0; j < p->nodes[i].naddrs && !err; j++)
            if (!addr_is_v4(&p->nodes[i].addrs[j]))
                err = used6_add(pl, &p->nodes[i].addrs[j]);
    return err;
}

static bool subnet6_in_use(const struct plan *pl, const struct moat_prefix *net)
{
    for (size_t i = 0; i < pl->lab->nnodes; i++)
        if (pl->lab->nodes[i].subnet6.len && prefix_covers(net, &pl->lab->nodes[i].subnet6))
            return true;
    /* used6 holds every IPv6 address of the files: one inside `net` makes it used. */
    for (size_t i = 0; i < pl->nused6; i++)
        if (prefix_contains(net, &pl->used6[i]))
            return true;
    return false;
}

/* With --dual-stack: fd00:0:0:K::/64 for node K, or the next one nothing uses. */
static void plan_default_subnets6(struct plan *pl)
{
    for (size_t i = 0; i < pl->lab->nnodes && (pl->flags & LAB_PLAN_DUAL_STACK); i++) {
        struct lab_node *ln = &pl->lab->nodes[i];
        if (ln->subnet6.len)
            continue;
        for (unsigned t = 0; t < GROUP_MAX && !ln->subnet6.len; t++) {
            struct moat_prefix net = default_subnet6((unsigned)((i + t) % GROUP_MAX) + 1);
            if (!subnet6_in_use(pl, &net))
                ln->subnet6 = net;
        }
        if (!ln->subnet6.len)
            node_err(pl, i, "no free /64 left in fd00::/48 for this node");
    }
    plan_shared_subnets(pl, true);
}

/* The first free address of `net` from host number `from` up (plain, or decimal groups). */
static bool take_host6(struct plan *pl, const struct moat_prefix *net, unsigned from, bool decimal,
                       struct moat_addr *out, int *err)
{
    for (unsigned h = from; h <= GROUP_MAX; h++) {
        struct moat_addr a = addr6_in(net, decimal ? decimal_group(h) : h);
        if (!used6_has(pl, &a)) {
            *err = used6_add(pl, &a);
            *out = a;
            return true;
        }
    }
    return false;
}

/* IPv6 gateways not written: the lowest free address of the node's /64 (::1 when free). */
static int plan_gateways6(struct plan *pl)
{
    int err = 0;
    for (size_t i = 0; i < pl->lab->nnodes && !err; i++) {
        struct lab_node *ln = &pl->lab->nodes[i];
        if (pl->gw6_pending[i] && ln->subnet6.len &&
            !take_host6(pl, &ln->subnet6, 1, false, &ln->gateway6, &err))
            node_err(pl, i, "no free IPv6 address left for the gateway");
    }
    return err;
}

/* A workload's IPv6 addresses: in its node's /64, not the gateway nor the subnet-router anycast. */
static void check_addresses6(struct plan *pl, const struct moat_workload *w,
                             const struct lab_node *ln)
{
    for (size_t j = 0; j < w->naddrs; j++) {
        const struct moat_addr *a = &w->addrs[j];
        char text[MOAT_ADDR_STRLEN], sub[MOAT_ADDR_STRLEN + 8], why[160];
        if (addr_is_v4(a) || address_problem(a, why, sizeof(why)))
            continue; /* reported by plan_address_checks */
        addr_format(a, text, sizeof(text));
        prefix_format(&ln->subnet6, sub, sizeof(sub));
        if (!prefix_contains(&ln->subnet6, a))
            wl_err(pl, w, "ips[%zu]: %s is not in node \"%s\"'s IPv6 subnet %s", j, text, ln->name,
                   sub);
        else if (iid_of(a) == 0)
            wl_err(pl, w, "ips[%zu]: %s is the subnet-router anycast address of %s", j, text, sub);
        else if (addr_cmp(a, &ln->gateway6) == 0)
            wl_err(pl, w, "ips[%zu]: %s is node \"%s\"'s gateway address", j, text, ln->name);
    }
}

/*
 * Checks the IPv6 addresses written for workloads; with --dual-stack gives
 * one to each workload without: its IPv4 host number as the last group
 * (10.244.1.10 -> ::10) when free, else the first free of ::10, ::11, ...
 */
static int plan_addresses6(struct plan *pl)
{
    struct moat_policy *p = pl->p;
    int err = 0;
    for (size_t i = 0; i < p->nworkloads && !err; i++) {
        struct moat_workload *w = &p->workloads[i];
        const struct lab_node *ln = &pl->lab->nodes[pl->wnode[i]];
        if (!ln->subnet6.len)
            continue; /* no IPv6 address of the workload (its node's /64 would come from it) */
        if (first_v6(w->addrs, w->naddrs)) {
            check_addresses6(pl, w, ln);
            continue;
        }
        if (!(pl->flags & LAB_PLAN_DUAL_STACK))
            continue;
        const struct moat_addr *v4 = first_v4(w->addrs, w->naddrs);
        struct moat_addr a = addr6_in(&ln->subnet6, v4 ? decimal_group(v4_of(v4) & 0xff) : 0);
        if (v4 && iid_of(&a) != 0 && !used6_has(pl, &a))
            err = used6_add(pl, &a);
        else if (!take_host6(pl, &ln->subnet6, LAB_FIRST_HOST, true, &a, &err)) {
            wl_err(pl, w, "ips: no free IPv6 address left in node \"%s\"'s /64", ln->name);
            continue;
        }
        if (!err)
            err = append_addr(&w->addrs, &w->naddrs, a);
    }
    return err;
}

/* The underlay's IPv6 addresses, fd00:ffff::k, when some node has a /64. */
static void plan_underlay6(struct plan *pl)
{
    if (!lab_has_ipv6(pl->lab))
        return;
    struct moat_prefix ul6 = lab_ul_subnet6();
    for (size_t i = 0; i < pl->lab->nnodes; i++)
        pl->lab->nodes[i].ul_addr6 = addr6_in(&ul6, decimal_group((unsigned)(i + 1)));
}

/* Node entries in the policy: the gateways are the node's addresses. */
static int plan_policy_nodes(struct plan *pl)
{
    struct moat_policy *p = pl->p;
    for (size_t i = 0; i < pl->lab->nnodes; i++) {
        struct lab_node *ln = &pl->lab->nodes[i];
        uint32_t nd = policy_find_node(p, ln->name);
        if (nd == MOAT_NONE) {
            struct moat_node n = {0};
            n.name = moat_strdup(ln->name);
            for (size_t j = 0; j < p->nworkloads && !n.cluster_ref; j++)
                if (pl->wnode[j] == i)
                    n.cluster_ref = moat_strdup(p->workloads[j].cluster_ref);
            if (!n.name || !n.cluster_ref ||
                moat_grow(&p->nodes, &p->cap_nodes, p->nnodes + 1, sizeof(n)) < 0) {
                node_clear(&n);
                return -ENOMEM;
            }
            p->nodes[p->nnodes++] = n;
            nd = (uint32_t)(p->nnodes - 1);
        }
        struct moat_node *n = &p->nodes[nd];
        if (!first_v4(n->addrs, n->naddrs) && append_addr(&n->addrs, &n->naddrs, ln->gateway) < 0)
            return -ENOMEM;
        if (ln->subnet6.len && !first_v6(n->addrs, n->naddrs) &&
            append_addr(&n->addrs, &n->naddrs, ln->gateway6) < 0)
            return -ENOMEM;
        if (n->cluster_ref && !(ln->cluster = moat_strdup(n->cluster_ref)))
            return -ENOMEM;
    }
    return 0;
}

/* Host-side interface names: as written (checked), else `lxc-NAME`, unique per node. */
static int plan_interfaces(struct plan *pl)
{
    struct moat_policy *p = pl->p;
    char **names = moat_calloc(p->nworkloads, sizeof(*names));
    if (!names)
        return -ENOMEM;
    int err = 0;
    for (size_t i = 0; i < p->nworkloads; i++) {
        const struct moat_workload *w = &p->workloads[i];
        if (!w->interface)
            continue;
        const char *why = ifname_problem(w->interface);
        if (why) {
            wl_err(pl, w, "interface: \"%s\" %s", w->interface, why);
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (pl->wnode[j] == pl->wnode[i] && names[j] && strcmp(names[j], w->interface) == 0)
                wl_err(pl, w, "interface: \"%s\" is also workload \"%s\"'s on node \"%s\"",
                       w->interface, p->workloads[j].name, w->node);
        names[i] = w->interface;
    }
    /* Generated names must avoid every name on the same node. */
    char **same = moat_calloc(p->nworkloads, sizeof(*same));
    for (size_t i = 0; same && i < p->nworkloads && !err; i++) {
        struct moat_workload *w = &p->workloads[i];
        if (w->interface)
            continue;
        size_t n = 0;
        for (size_t j = 0; j < p->nworkloads; j++)
            if (pl->wnode[j] == pl->wnode[i] && p->workloads[j].interface)
                same[n++] = p->workloads[j].interface;
        char want[64], key[256];
        snprintf(want, sizeof(want), "lxc-%s", w->name);
        want[LAB_IFNAME_MAX] = '\0'; /* cut first; a hash only when that clashes */
        snprintf(key, sizeof(key), "%s/%s/%s", w->cluster_ref, w->namespace, w->name);
        w->interface = unique_name(want, LAB_IFNAME_MAX, key, 4, same, n);
        if (!w->interface)
            err = -ENOMEM;
    }
    if (!same)
        err = -ENOMEM;
    free(same);
    free(names);
    return err;
}

/*
 * Namespace names: mlab-LAB-underlay first (so that it is always that),
 * then mlab-LAB-NODE and mlab-LAB-NODE-WORKLOAD, unique.
 */
static int plan_netns(struct plan *pl)
{
    struct lab *lab = pl->lab;
    struct moat_policy *p = pl->p;
    size_t total = 1 + lab->nnodes + p->nworkloads, n = 0;
    char **taken = moat_calloc(total, sizeof(*taken));
    if (!taken)
        return -ENOMEM;
    int err = 0;
    lab->underlay.netns = moat_asprintf("mlab-%s-%s", lab->name, LAB_UL_NETNS);
    if (!lab->underlay.netns)
        err = -ENOMEM;
    else
        taken[n++] = lab->underlay.netns;
    for (size_t i = 0; i < lab->nnodes && !err; i++) {
        char *want = moat_asprintf("mlab-%s-%s", lab->name, lab->nodes[i].name);
        lab->nodes[i].netns = want ? unique_name(want, LAB_NETNS_MAX, want, 8, taken, n) : NULL;
        free(want);
        if (!lab->nodes[i].netns)
            err = -ENOMEM;
        else
            taken[n++] = lab->nodes[i].netns;
    }
    for (size_t i = 0; i < p->nworkloads && !err; i++) {
        const struct moat_workload *w = &p->workloads[i];
        struct lab_workload *lw = &lab->workloads[i];
        char *want = moat_asprintf("mlab-%s-%s-%s", lab->name, w->node, w->name);
        char *key = moat_asprintf("%s/%s/%s/%s", w->node, w->cluster_ref, w->namespace, w->name);
        lw->netns = want && key ? unique_name(want, LAB_NETNS_MAX, key, 8, taken, n) : NULL;
        free(want);
        free(key);
        if (!lw->netns)
            err = -ENOMEM;
        else
            taken[n++] = lw->netns;
    }
    free(taken);
    return err;
}

static int plan_workloads(struct plan *pl)
{
    struct moat_policy *p = pl->p;
    for (size_t i = 0; i < p->nworkloads; i++) {
        const struct moat_workload *w = &p->workloads[i];
        struct lab_workload *lw = &pl->lab->workloads[pl->lab->nworkloads++];
        lw->node = pl->wnode[i];
        lw->cluster = moat_strdup(w->cluster_ref);
        lw->namespace = moat_strdup(w->namespace);
        lw->name = moat_strdup(w->name);
        lw->ifname = moat_strdup(w->interface);
        lw->addrs = moat_calloc(w->naddrs, sizeof(*lw->addrs));
        if (!lw->cluster || !lw->namespace || !lw->name || !lw->ifname || !lw->addrs)
            return -ENOMEM;
        memcpy(lw->addrs, w->addrs, w->naddrs * sizeof(*lw->addrs));
        lw->naddrs = w->naddrs;
    }
    return 0;
}

static int plan_run(struct plan *pl)
{
    struct moat_policy *p = pl->p;
    int err = plan_nodes(pl);
    if (err)
        return err;
    if (pl->lab->nnodes == 0) {
        diags_add(pl->d, p->nfiles ? p->files[0] : NULL, 0, NULL,
                  "no Workload or Node documents: a lab needs at least one node");
        return -EINVAL;
    }
    if (pl->lab->nnodes > LAB_NODES_MAX) {
        diags_add(pl->d, NULL, 0, NULL, "a lab holds at most %d nodes, not %zu", LAB_NODES_MAX,
                  pl->lab->nnodes);
        return -EINVAL;
    }
    pl->wnode = moat_calloc(p->nworkloads, sizeof(*pl->wnode));
    pl->gw_pending = moat_calloc(pl->lab->nnodes, sizeof(*pl->gw_pending));
    pl->used = moat_calloc(pl->lab->nnodes, sizeof(*pl->used));
    pl->gw6_pending = moat_calloc(pl->lab->nnodes, sizeof(*pl->gw6_pending));
    pl->lab->workloads = moat_calloc(p->nworkloads, sizeof(*pl->lab->workloads));
    if (!pl->wnode || !pl->gw_pending || !pl->used || !pl->gw6_pending || !pl->lab->workloads)
        return -ENOMEM;
    for (size_t i = 0; i < p->nworkloads; i++)
        pl->wnode[i] = lab_node_index(pl->lab, p->workloads[i].node);
    size_t before = diags_total(pl->d);
    plan_explicit_subnets(pl, false);
    plan_address_checks(pl);
    plan_default_subnets(pl);
    plan_used(pl);
    plan_gateways(pl);
    if ((err = plan_addresses(pl)) != 0 || (err = plan_used6(pl)) != 0)
        return err;
    plan_explicit_subnets(pl, true);
    plan_default_subnets6(pl);
    if ((err = plan_gateways6(pl)) != 0 || (err = plan_addresses6(pl)) != 0 ||
        (err = plan_interfaces(pl)) != 0)
        return err;
    if (diags_oom(pl->d))
        return -ENOMEM;
    if (diags_total(pl->d) > before)
        return -EINVAL;
    if ((err = plan_policy_nodes(pl)) != 0 || (err = plan_workloads(pl)) != 0)
        return err;
    for (size_t i = 0; i < pl->lab->nnodes; i++)
        pl->lab->nodes[i].ul_addr = addr_v4(LAB_UL_NET | (uint32_t)(i + 1));
    plan_underlay6(pl);
    return plan_netns(pl);
}

int lab_plan(struct moat_policy *p, const char *name, unsigned flags, struct lab **out,
             struct moat_diags *d)
{
    *out = NULL;
    struct plan pl = {.p = p, .d = d, .flags = flags, .lab = lab_new(name)};
    if (!pl.lab)
        return -ENOMEM;
    int err = plan_run(&pl);
    free(pl.wnode);
    free(pl.gw_pending);
    free(pl.used);
    free(pl.gw6_pending);
    free(pl.used6);
    if (err) {
        lab_free(pl.lab);
        return err;
    }
    *out = pl.lab;
    return 0;
}
