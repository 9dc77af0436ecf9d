/*
 * compile: policy -> datapath tables (see compile.h).
 *
 * How precedence is resolved ahead of time: for every subject identity the
 * compiler gathers the (rule, destination) pairs that can apply to it, buckets
 * them by the peer identities their source object matches (or ANY), and for
 * each bucket and protocol class paints the port space in rule precedence
 * order (priority, then id), so each painted interval holds its winner.
 */
#include "compile.h"
#include "mem.h"
#include "pattern.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ident {
    enum moat_ident_kind kind;
    uint32_t cluster;
    uint32_t users;
    uint64_t hash;
    uint64_t *bits; /* nwords words: objects matched / ipblocks covering */
};

struct cand {
    uint32_t rule; /* index into p->rules */
    uint32_t dest; /* index into the rule's destinations */
};

struct interval {
    uint16_t lo, hi;
    uint32_t rule;
};

struct row {
    uint32_t peer;
    uint32_t pclass;
    size_t off, n; /* into subject.iv */
};

struct subject {
    struct row *rows;
    size_t nrows, cap_rows;
    struct interval *iv;
    size_t niv, cap_iv;
    struct cand *cands; /* what may apply to this subject, cached for updates */
    size_t ncands;
    uint64_t *peer_objs;     /* objects that pick this subject's peers (not `any`) */
    struct obj_cand *by_obj; /* cands by peer object, made by the first update that needs it */
};

struct obj_cand {
    uint32_t obj; /* the cand's peer object */
    uint32_t idx; /* into subject.cands */
};

struct list32 {
    uint32_t *v;
    size_t n, cap;
};

struct wl_state {
    struct moat_addr *addrs; /* as mapped, to unmap after the workload changed */
    uint32_t *ids;
    size_t n;
    uint32_t group; /* MOAT_NONE: none (no addresses) */
    bool owned;     /* addrs and ids are its own, not the full compile's block */
};

struct group;

struct moat_tables {
    const struct moat_policy *p;
    struct moat_eval_opts opts;
    char *node;
    size_t nobjects, nwords;
    struct ident *ids;
    size_t nids, cap_ids;
    size_t idle_ids; /* workload identities no address maps to (left by updates) */
    uint32_t *slots; /* identity hash table: id + 1, 0 = empty */
    size_t nslots;
    struct moat_addr_entry *exact; /* host prefixes, sorted by address */
    size_t nexact, cap_exact;
    struct moat_addr_entry *pfx; /* ipblock prefixes, longest first */
    size_t npfx, cap_pfx;
    uint32_t *pslots; /* hash index of pfx by (length, address): index + 1, 0 = empty */
    size_t npslots;
    uint8_t *plens; /* the distinct lengths of pfx, longest first */
    size_t nplens;
    struct wl_state *wl;
    size_t nwl;
    struct subject *subj[2]; /* per direction, indexed by identity */
    size_t cap_subj;
    struct list32 *by_dest; /* per object: packed ingress cands (rule, dest) */
    struct list32 egress;   /* every (rule, dest) whose object is an ipblock */
    struct list32 *inv;     /* per object: identities carrying it */
    uint32_t obj_any, obj_host;
    /* scratch for bucketing, sized to the identity count */
    uint32_t *bucket_head;
    uint64_t *scratch;     /* nwords */
    uint32_t *obj_cluster; /* per object: the cluster it is restricted to, MOAT_NONE: none */
    bool batch;            /* full compile: exact_insert appends, exact_finish sorts */
    /* workload groups (see struct group) */
    const char **label_keys; /* label keys selectors read, `app` included; borrowed */
    size_t nlabel_keys;
    const char **ns_keys; /* namespace label keys selectors read */
    size_t nns_keys;
    bool key_namespace, key_image;
    struct group **groups; /* NULL: a free slot */
    size_t ngroups, cap_groups, ngroups_live;
    struct list32 free_groups;
    uint32_t *gslots; /* hash table: group index + 1, 0 = empty */
    size_t ngslots;
    struct obj_bucket *ix; /* selector index (see build_selector_index) */
    size_t nix;
    uint32_t *ixslots; /* its hash table: index + 1, 0 = empty */
    size_t nixslots;
    struct list32 ix_always; /* selectors to check for every group */
    char *keybuf;            /* the key being built */
    size_t cap_keybuf;
    /* the full compile's block of workload states' addresses and ids */
    struct moat_addr *arena_addrs_base, *arena_addrs;
    uint32_t *arena_ids_base, *arena_ids;
    size_t arena_left;
};

/* ---------- small containers ---------- */

static int list_push(struct list32 *l, uint32_t v)
{
    if (moat_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v)) < 0)
        return -ENOMEM;
    l->v[l->n++] = v;
    return 0;
}

static inline bool bit_get(const uint64_t *bits, uint32_t i)
{
    return (bits[i / 64] >> (i % 64)) & 1u;
}

static inline void bit_set(uint64_t *bits, uint32_t i)
{
    bits[i / 64] |= (uint64_t)1 << (i % 64);
}

static inline uint32_t pack_cand(uint32_t rule, uint32_t dest)
{
    return rule * MOAT_DESTS_MAX + dest;
}

static uint64_t bytes_hash(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

/* ---------- identities ---------- */

static uint64_t *bits_new(const struct moat_tables *t)
{
    return moat_calloc(t->nwords ? t->nwords : 1, sizeof(uint64_t));
}

static uint64_t ident_hash(enum moat_ident_kind kind, uint32_t cluster, const uint64_t *bits,
                           size_t nwords)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)kind << 32) ^ cluster;
    for (size_t i = 0; i < nwords; i++) {
        h ^= bits[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        h *= 0xff51afd7ed558ccdull;
    }
    return h ^ (h >> 29);
}

static int slots_insert(struct moat_tables *t, uint32_t id);

static int slots_grow(struct moat_tables *t)
{
    size_t n = t->nslots ? t->nslots * 2 : 256;
    uint32_t *slots = moat_calloc(n, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    for (uint32_t id = 0; id < t->nids; id++)
        if (t->ids[id].kind != MOAT_IDENT_WORLD)
            slots_insert(t, id);
    return 0;
}

static int slots_insert(struct moat_tables *t, uint32_t id)
{
    size_t mask = t->nslots - 1;
    for (size_t i = t->ids[id].hash & mask;; i = (i + 1) & mask) {
        if (!t->slots[i]) {
            t->slots[i] = id + 1;
            return 0;
        }
    }
}

static uint32_t ident_find(const struct moat_tables *t, enum moat_ident_kind kind, uint32_t cluster,
                           const uint64_t *bits, uint64_t hash)
{
    size_t mask = t->nslots - 1;
    for (size_t i = hash & mask; t->slots[i]; i = (i + 1) & mask) {
        const struct ident *x = &t->ids[t->slots[i] - 1];
        if (x->hash == hash && x->kind == kind && x->cluster == cluster &&
            memcmp(x->bits, bits, t->nwords * sizeof(*bits)) == 0)
            return t->slots[i] - 1;
    }
    return MOAT_NONE;
}

/*
 * The identity for (kind, cluster, bits), made when new (with a copy of
 * `bits`). *created tells which. Returns the id or MOAT_NONE on OOM.
 */
static uint32_t ident_get(struct moat_tables *t, enum moat_ident_kind kind, uint32_t cluster,
                          const uint64_t *bits, bool *created)
{
    uint64_t hash = ident_hash(kind, cluster, bits, t->nwords);
    *created = false;
    uint32_t id = ident_find(t, kind, cluster, bits, hash);
    if (id != MOAT_NONE)
        return id;
    if ((t->nids + 1) * 2 > t->nslots && slots_grow(t) < 0)
        return MOAT_NONE;
    if (moat_grow(&t->ids, &t->cap_ids, t->nids + 1, sizeof(*t->ids)) < 0)
        return MOAT_NONE;
    uint64_t *copy = bits_new(t);
    if (!copy)
        return MOAT_NONE;
    memcpy(copy, bits, t->nwords * sizeof(*bits));
    id = (uint32_t)t->nids++;
    t->ids[id] = (struct ident){.kind = kind, .cluster = cluster, .hash = hash, .bits = copy};
    if (kind == MOAT_IDENT_WORKLOAD)
        t->idle_ids++; /* until map_workload gives it its first address */
    slots_insert(t, id);
    for (uint32_t o = 0; o < t->nobjects; o++)
        if (bit_get(bits, o) && list_push(&t->inv[o], id) < 0)
            return MOAT_NONE;
    if (kind == MOAT_IDENT_HOST && list_push(&t->inv[t->obj_host], id) < 0)
        return MOAT_NONE;
    *created = true;
    return id;
}

/* ---------- addresses ---------- */

static size_t exact_lower_bound(const struct moat_tables *t, const struct moat_addr *a)
{
    size_t lo = 0, hi = t->nexact;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (addr_cmp(&t->exact[mid].prefix.addr, a) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int exact_insert(struct moat_tables *t, const struct moat_addr *a, uint32_t id)
{
    if (t->batch) {
        if (moat_grow(&t->exact, &t->cap_exact, t->nexact + 1, sizeof(*t->exact)) < 0)
            return -ENOMEM;
        t->exact[t->nexact++] = (struct moat_addr_entry){.prefix = prefix_host(a), .identity = id};
        return 0;
    }
    size_t at = exact_lower_bound(t, a);
    if (at < t->nexact && addr_cmp(&t->exact[at].prefix.addr, a) == 0) {
        t->exact[at].identity = id;
        return 0;
    }
    if (moat_grow(&t->exact, &t->cap_exact, t->nexact + 1, sizeof(*t->exact)) < 0)
        return -ENOMEM;
    memmove(t->exact + at + 1, t->exact + at, (t->nexact - at) * sizeof(*t->exact));
    t->exact[at] = (struct moat_addr_entry){.prefix = prefix_host(a), .identity = id};
    t->nexact++;
    return 0;
}

struct seq_entry {
    struct moat_addr_entry e;
    size_t seq;
};

static int cmp_seq_entry(const void *a, const void *b)
{
    const struct seq_entry *x = a, *y = b;
    int c = addr_cmp(&x->e.prefix.addr, &y->e.prefix.addr);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Ends the full compile's batch: sorts the host prefixes appended in mapping
 * order and keeps, of one address listed twice, the last mapping — what
 * inserting them one by one gives, without moving the array 100,000 times.
 */
static int exact_finish(struct moat_tables *t)
{
    t->batch = false;
    bool sorted = true;
    for (size_t i = 1; i < t->nexact && sorted; i++)
        sorted = addr_cmp(&t->exact[i - 1].prefix.addr, &t->exact[i].prefix.addr) < 0;
    if (sorted)
        return 0;
    struct seq_entry *v = moat_calloc(t->nexact, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < t->nexact; i++)
        v[i] = (struct seq_entry){t->exact[i], i};
    qsort(v, t->nexact, sizeof(*v), cmp_seq_entry);
    size_t n = 0;
    for (size_t i = 0; i < t->nexact; i++) {
        if (n && addr_cmp(&t->exact[n - 1].prefix.addr, &v[i].e.prefix.addr) == 0)
            t->exact[n - 1] = v[i].e;
        else
            t->exact[n++] = v[i].e;
    }
    t->nexact = n;
    free(v);
    return 0;
}

static void exact_remove(struct moat_tables *t, const struct moat_addr *a)
{
    size_t at = exact_lower_bound(t, a);
    if (at < t->nexact && addr_cmp(&t->exact[at].prefix.addr, a) == 0) {
        memmove(t->exact + at, t->exact + at + 1, (t->nexact - at - 1) * sizeof(*t->exact));
        t->nexact--;
    }
}

/* `a` with every bit past the first `len` cleared. */
static struct moat_addr addr_masked(const struct moat_addr *a, unsigned len)
{
    struct moat_addr m = {0};
    unsigned full = len / 8, rest = len % 8;
    memcpy(m.b, a->b, full);
    if (rest)
        m.b[full] = (uint8_t)(a->b[full] & (0xff << (8 - rest)));
    return m;
}

static uint64_t pfx_hash(const struct moat_addr *a, unsigned len)
{
    return bytes_hash((const char *)a->b, sizeof(a->b)) ^ ((uint64_t)len * 0x9e3779b97f4a7c15ull);
}

/*
 * Index of the longest listed prefix holding `a` (the first in t->pfx's
 * longest-first order), SIZE_MAX when none: one hash probe per distinct
 * prefix length instead of a scan of every prefix.
 */
static size_t pfx_lookup(const struct moat_tables *t, const struct moat_addr *a)
{
    size_t mask = t->npslots - 1;
    for (size_t l = 0; l < t->nplens; l++) {
        struct moat_addr m = addr_masked(a, t->plens[l]);
        for (size_t i = pfx_hash(&m, t->plens[l]) & mask; t->pslots[i]; i = (i + 1) & mask) {
            const struct moat_prefix *p = &t->pfx[t->pslots[i] - 1].prefix;
            if (p->len == t->plens[l] && addr_cmp(&p->addr, &m) == 0) {
                if (prefix_contains(p, a)) /* not when the families differ */
                    return t->pslots[i] - 1;
                break;
            }
        }
    }
    return SIZE_MAX;
}

/* The lengths and hash index of the listed prefixes (sorted, no repeats). */
static int pfx_index(struct moat_tables *t)
{
    t->npslots = 16;
    while (t->npslots < t->npfx * 2)
        t->npslots *= 2;
    t->pslots = moat_calloc(t->npslots, sizeof(*t->pslots));
    t->plens = moat_calloc(t->npfx, sizeof(*t->plens));
    if (!t->pslots || !t->plens)
        return -ENOMEM;
    size_t mask = t->npslots - 1;
    for (size_t k = 0; k < t->npfx; k++) {
        const struct moat_prefix *p = &t->pfx[k].prefix;
        if (t->nplens == 0 || t->plens[t->nplens - 1] != p->len)
            t->plens[t->nplens++] = p->len;
        size_t i = pfx_hash(&p->addr, p->len) & mask;
        while (t->pslots[i])
            i = (i + 1) & mask;
        t->pslots[i] = (uint32_t)k + 1;
    }
    return 0;
}

uint32_t tables_identity_of(const struct moat_tables *t, const struct moat_addr *a)
{
    size_t at = exact_lower_bound(t, a);
    if (at < t->nexact && addr_cmp(&t->exact[at].prefix.addr, a) == 0)
        return t->exact[at].identity;
    size_t i = pfx_lookup(t, a);
    return i == SIZE_MAX ? MOAT_ID_WORLD : t->pfx[i].identity;
}

/* Lists prefix `p` (build_outside sorts the list and drops repeats). */
static int pfx_add(struct moat_tables *t, const struct moat_prefix *p)
{
    if (moat_grow(&t->pfx, &t->cap_pfx, t->npfx + 1, sizeof(*t->pfx)) < 0)
        return -ENOMEM;
    t->pfx[t->npfx++] = (struct moat_addr_entry){.prefix = *p, .identity = MOAT_ID_WORLD};
    return 0;
}

/* True when ipblock `o` holds every address of prefix `p` that no longer prefix claims. */
static bool object_holds_prefix(const struct moat_object *o, const struct moat_prefix *p)
{
    for (size_t i = 0; i < o->ncidrs; i++) {
        const struct moat_cidr *c = &o->cidrs[i];
        if (!prefix_covers(&c->prefix, p))
            continue;
        bool excepted = false;
        for (size_t j = 0; j < c->nexcept && !excepted; j++)
            excepted = prefix_covers(&c->except[j], p);
        if (!excepted)
            return true;
    }
    return false;
}

static int cmp_pfx_len_desc(const void *a, const void *b)
{
    const struct moat_addr_entry *x = a, *y = b;
    if (x->prefix.len != y->prefix.len)
        return x->prefix.len > y->prefix.len ? -1 : 1;
    return addr_cmp(&x->prefix.addr, &y->prefix.addr);
}

/* Outside identities: one per distinct set of ipblocks, for every listed prefix. */
static int build_outside(struct moat_tables *t)
{
    const struct moat_policy *p = t->p;
    for (size_t o = 0; o < p->nobjects; o++)
        for (size_t i = 0; i < p->objects[o].ncidrs; i++) {
            const struct moat_cidr *c = &p->objects[o].cidrs[i];
            if (pfx_add(t, &c->prefix) < 0)
                return -ENOMEM;
            for (size_t j = 0; j < c->nexcept; j++)
                if (pfx_add(t, &c->except[j]) < 0)
                    return -ENOMEM;
        }
    /* Every address has a longest match: 0.0.0.0/0 and ::/0, WORLD unless an
     * ipblock lists them. Two entries because the families never mix. */
    struct moat_prefix all4 = {.addr.b = {[10] = 0xff, [11] = 0xff}, .len = 96};
    struct moat_prefix all6 = {.len = 0};
    if (pfx_add(t, &all4) < 0 || pfx_add(t, &all6) < 0)
        return -ENOMEM;
    if (t->npfx > 1)
        qsort(t->pfx, t->npfx, sizeof(*t->pfx), cmp_pfx_len_desc);
    size_t u = 0;
    for (size_t i = 0; i < t->npfx; i++)
        if (u == 0 || cmp_pfx_len_desc(&t->pfx[u - 1], &t->pfx[i]) != 0)
            t->pfx[u++] = t->pfx[i];
    t->npfx = u;
    struct list32 ipblocks = {0};
    for (uint32_t o = 0; o < t->nobjects; o++)
        if (p->objects[o].kind == MOAT_OBJ_IPBLOCK && list_push(&ipblocks, o) < 0) {
            free(ipblocks.v);
            return -ENOMEM;
        }
    int err = pfx_index(t);
    for (size_t i = 0; i < t->npfx && !err; i++) {
        uint64_t *bits = t->scratch;
        memset(bits, 0, t->nwords * sizeof(*bits));
        bool any = false;
        for (size_t k = 0; k < ipblocks.n; k++)
            if (object_holds_prefix(&p->objects[ipblocks.v[k]], &t->pfx[i].prefix)) {
                bit_set(bits, ipblocks.v[k]);
                any = true;
            }
        if (!any)
            continue; /* only excepts cover it: the world */
        bool created;
        t->pfx[i].identity = ident_get(t, MOAT_IDENT_OUTSIDE, MOAT_NONE, bits, &created);
        if (t->pfx[i].identity == MOAT_NONE)
            err = -ENOMEM;
    }
    free(ipblocks.v);
    return err;
}

/*
 * The ipblocks covering address `a` (object_covers_address of each), read
 * from the outside identity of its longest listed prefix L: the listed
 * prefixes holding `a` are exactly those covering L (they nest, and none is
 * longer than L), and every cidr and except is listed, so a cidr holds `a`,
 * or an except takes it out, exactly when it does so for all of L. One scan
 * of the few prefixes instead of every object's cidrs per address.
 */
static const uint64_t *coverage_of(const struct moat_tables *t, const struct moat_addr *a)
{
    size_t i = pfx_lookup(t, a);
    /* SIZE_MAX is not reached: ::/0 and 0.0.0.0/0 are listed. */
    return t->ids[i == SIZE_MAX ? MOAT_ID_WORLD : t->pfx[i].identity].bits;
}

static int build_hosts(struct moat_tables *t)
{
    const struct moat_policy *p = t->p;
    for (size_t n = 0; n < p->nnodes; n++) {
        const struct moat_node *node = &p->nodes[n];
        if (t->opts.node && strcmp(t->opts.node, node->name) != 0)
            continue;
        for (size_t a = 0; a < node->naddrs; a++) {
            memcpy(t->scratch, coverage_of(t, &node->addrs[a]), t->nwords * sizeof(uint64_t));
            bool created;
            uint32_t id = ident_get(t, MOAT_IDENT_HOST, MOAT_NONE, t->scratch, &created);
            if (id == MOAT_NONE || exact_insert(t, &node->addrs[a], id) < 0)
                return -ENOMEM;
            t->ids[id].users++;
        }
    }
    return 0;
}

/* ---------- candidates ---------- */

static int build_rule_index(struct moat_tables *t)
{
    const struct moat_policy *p = t->p;
    for (size_t o = 0; o < t->nobjects; o++)
        t->by_dest[o].n = 0;
    t->egress.n = 0;
    for (uint32_t r = 0; r < p->nrules; r++) {
        const struct moat_rule *rule = &p->rules[r];
        if (!rule->enabled)
            continue;
        for (uint32_t d = 0; d < rule->ndests; d++) {
            uint32_t o = rule->dests[d].object;
            bool ipblock = p->objects[o].kind == MOAT_OBJ_IPBLOCK;
            struct list32 *l = ipblock ? &t->egress : &t->by_dest[o];
            if (list_push(l, pack_cand(r, d)) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* Does object `o` match identity `s` as seen from cluster `c`? (refeval_object_matches) */
static bool view_matches(const struct moat_tables *t, uint32_t o, uint32_t s, uint32_t c)
{
    const struct moat_object *obj = &t->p->objects[o];
    const struct ident *id = &t->ids[s];
    bool member = id->kind == MOAT_IDENT_WORKLOAD && id->cluster == c;
    if (t->obj_cluster[o] != MOAT_NONE && t->obj_cluster[o] != c)
        return false; /* object_in_cluster, by index */
    switch (obj->kind) {
    case MOAT_OBJ_ANY:
        return true;
    case MOAT_OBJ_HOST:
        return id->kind == MOAT_IDENT_HOST;
    case MOAT_OBJ_IPBLOCK:
        return !member && bit_get(id->bits, o);
    case MOAT_OBJ_SELECTOR:
        return member && bit_get(id->bits, o);
    }
    return false;
}

static int cand_push(struct cand **v, size_t *n, size_t *cap, uint32_t packed)
{
    if (moat_grow(v, cap, *n + 1, sizeof(**v)) < 0)
        return -ENOMEM;
    (*v)[(*n)++] = (struct cand){packed / MOAT_DESTS_MAX, packed % MOAT_DESTS_MAX};
    return 0;
}

/* Every (rule, destination) that can apply to subject `s` in direction `dir`. */
static int collect_cands(struct moat_tables *t, enum moat_dir dir, uint32_t s, struct subject *sub)
{
    const struct ident *id = &t->ids[s];
    size_t cap = 0;
    sub->ncands = 0;
    if (dir == MOAT_DIR_INGRESS) {
        for (uint32_t o = 0; o < t->nobjects; o++) {
            if (!bit_get(id->bits, o) || t->p->objects[o].kind == MOAT_OBJ_IPBLOCK)
                continue;
            for (size_t i = 0; i < t->by_dest[o].n; i++) {
                uint32_t packed = t->by_dest[o].v[i];
                if (t->p->rules[packed / MOAT_DESTS_MAX].cluster == id->cluster &&
                    cand_push(&sub->cands, &sub->ncands, &cap, packed) < 0)
                    return -ENOMEM;
            }
        }
        return 0;
    }
    for (size_t i = 0; i < t->egress.n; i++) {
        uint32_t packed = t->egress.v[i];
        const struct moat_rule *r = &t->p->rules[packed / MOAT_DESTS_MAX];
        if (r->cluster == id->cluster && view_matches(t, r->source, s, id->cluster) &&
            cand_push(&sub->cands, &sub->ncands, &cap, packed) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---------- painting intervals ---------- */

struct prange {
    uint32_t lo, hi;
    uint32_t rule;
};

struct painter {
    const struct moat_policy *p;
    struct prange *ranges;
    size_t nranges, cap_ranges;
    uint32_t *bounds;
    size_t cap_bounds;
    uint32_t *paint, *next;
    size_t cap_paint, cap_next;
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Insertion sort for the few bounds of most rows; qsort beyond. */
static void sort_u32(uint32_t *v, size_t n)
{
    if (n > 24) {
        qsort(v, n, sizeof(*v), cmp_u32);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        uint32_t x = v[i];
        size_t j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static bool proto_in_class(enum moat_proto proto, enum moat_pclass pc)
{
    if (proto == MOAT_PROTO_ANY)
        return true;
    return (pc == MOAT_PCLASS_TCP && proto == MOAT_PROTO_TCP) ||
           (pc == MOAT_PCLASS_UDP && proto == MOAT_PROTO_UDP);
}

static uint32_t find_next(uint32_t *next, uint32_t i)
{
    uint32_t root = i;
    while (next[root] != root)
        root = next[root];
    while (next[i] != root) {
        uint32_t n = next[i];
        next[i] = root;
        i = n;
    }
    return root;
}

static int subject_push_iv(struct subject *sub, size_t row_start, uint16_t lo, uint16_t hi,
                           uint32_t rule)
{
    if (sub->niv > row_start && sub->iv[sub->niv - 1].rule == rule &&
        sub->iv[sub->niv - 1].hi + 1u == lo) {
        sub->iv[sub->niv - 1].hi = hi; /* merge with the previous interval of the row */
        return 0;
    }
    if (moat_grow(&sub->iv, &sub->cap_iv, sub->niv + 1, sizeof(*sub->iv)) < 0)
        return -ENOMEM;
    sub->iv[sub->niv++] = (struct interval){lo, hi, rule};
    return 0;
}

/* Paints the ranges (sorted by precedence) and appends the winners as intervals. */
static int paint_ranges(struct painter *pt, struct subject *sub, size_t row_start)
{
    size_t nb = 0;
    if (moat_grow(&pt->bounds, &pt->cap_bounds, pt->nranges * 2, sizeof(uint32_t)) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < pt->nranges; i++) {
        pt->bounds[nb++] = pt->ranges[i].lo;
        pt->bounds[nb++] = pt->ranges[i].hi + 1;
    }
    sort_u32(pt->bounds, nb);
    size_t u = 0;
    for (size_t i = 0; i < nb; i++)
        if (u == 0 || pt->bounds[u - 1] != pt->bounds[i])
            pt->bounds[u++] = pt->bounds[i];
    size_t nseg = u - 1; /* segment i = [bounds[i], bounds[i+1]) */
    if (moat_grow(&pt->paint, &pt->cap_paint, nseg + 1, sizeof(uint32_t)) < 0 ||
        moat_grow(&pt->next, &pt->cap_next, nseg + 1, sizeof(uint32_t)) < 0)
        return -ENOMEM;
    for (size_t i = 0; i <= nseg; i++) {
        pt->paint[i] = MOAT_NONE;
        pt->next[i] = (uint32_t)i;
    }
    for (size_t r = 0; r < pt->nranges; r++) {
        const struct prange *pr = &pt->ranges[r];
        uint32_t *b = bsearch(&pr->lo, pt->bounds, u, sizeof(uint32_t), cmp_u32);
        for (uint32_t i = find_next(pt->next, (uint32_t)(b - pt->bounds));
             i < nseg && pt->bounds[i] <= pr->hi; i = find_next(pt->next, i)) {
            pt->paint[i] = pr->rule;
            pt->next[i] = i + 1;
        }
    }
    for (size_t i = 0; i < nseg; i++)
        if (pt->paint[i] != MOAT_NONE &&
            subject_push_iv(sub, row_start, (uint16_t)pt->bounds[i],
                            (uint16_t)(pt->bounds[i + 1] - 1), pt->paint[i]) < 0)
            return -ENOMEM;
    return 0;
}

/*
 * Intervals of one (peer, class) row from candidates `c[0..n)`, which come in
 * precedence order (build_subject sorts them): the ranges need no sort. Ties
 * are ranges of one rule (rule ids are unique), which paint alike.
 */
static int build_row(struct painter *pt, struct subject *sub, const struct cand *c, size_t n,
                     enum moat_pclass pc)
{
    const struct moat_policy *p = pt->p;
    pt->nranges = 0;
    for (size_t i = 0; i < n; i++) {
        const struct moat_rule *r = &p->rules[c[i].rule];
        const struct moat_dest *d = &r->dests[c[i].dest];
        if (!proto_in_class(r->proto, pc) || (pc == MOAT_PCLASS_OTHER && !d->all_ports))
            continue;
        size_t k = pc == MOAT_PCLASS_OTHER ? 1 : d->nports;
        if (moat_grow(&pt->ranges, &pt->cap_ranges, pt->nranges + k, sizeof(*pt->ranges)) < 0)
            return -ENOMEM;
        for (size_t j = 0; j < k; j++) {
            struct prange *pr = &pt->ranges[pt->nranges++];
            pr->rule = c[i].rule;
            pr->lo = pc == MOAT_PCLASS_OTHER ? 0 : d->ports[j].lo;
            pr->hi = pc == MOAT_PCLASS_OTHER ? 0 : d->ports[j].hi;
        }
    }
    if (pt->nranges == 0)
        return 0;
    if (pt->nranges == 1) /* most rows: one rule, one range */
        return subject_push_iv(sub, sub->niv, (uint16_t)pt->ranges[0].lo,
                               (uint16_t)pt->ranges[0].hi, pt->ranges[0].rule);
    return paint_ranges(pt, sub, sub->niv);
}

static int subject_add_rows(struct painter *pt, struct subject *sub, uint32_t peer,
                            const struct cand *c, size_t n)
{
    for (uint32_t pc = MOAT_PCLASS_OTHER; pc <= MOAT_PCLASS_UDP; pc++) {
        size_t before = sub->niv;
        if (build_row(pt, sub, c, n, (enum moat_pclass)pc) < 0)
            return -ENOMEM;
        if (sub->niv == before)
            continue;
        if (moat_grow(&sub->rows, &sub->cap_rows, sub->nrows + 1, sizeof(*sub->rows)) < 0)
            return -ENOMEM;
        sub->rows[sub->nrows++] = (struct row){peer, pc, before, sub->niv - before};
    }
    return 0;
}

static void painter_free(struct painter *pt)
{
    free(pt->ranges);
    free(pt->bounds);
    free(pt->paint);
    free(pt->next);
}

/* ---------- subjects ---------- */

struct bucket_node {
    struct cand c;
    uint32_t next; /* index + 1 of the next node, 0 = end */
};

struct bucketing {
    struct bucket_node *nodes;
    size_t n, cap;
    struct list32 touched;
    struct list32 hits; /* bucket_peer's cands */
    struct cand *tmp;
    size_t cap_tmp;
};

static int bucket_add(struct moat_tables *t, struct bucketing *b, uint32_t peer, struct cand c)
{
    if (moat_grow(&b->nodes, &b->cap, b->n + 1, sizeof(*b->nodes)) < 0)
        return -ENOMEM;
    if (t->bucket_head[peer] == 0 && list_push(&b->touched, peer) < 0)
        return -ENOMEM;
    b->nodes[b->n] = (struct bucket_node){c, t->bucket_head[peer]};
    t->bucket_head[peer] = (uint32_t)++b->n;
    return 0;
}

/* The object whose matches decide the peer: the source (ingress) or the destination (egress). */
static uint32_t peer_object(const struct moat_tables *t, enum moat_dir dir, struct cand c)
{
    const struct moat_rule *r = &t->p->rules[c.rule];
    return dir == MOAT_DIR_INGRESS ? r->source : r->dests[c.dest].object;
}

/* Buckets a subject's candidates by peer. */
static int bucket_cands(struct moat_tables *t, struct bucketing *b, enum moat_dir dir,
                        const struct subject *sub, uint32_t cluster)
{
    /* Backwards: bucket lists are built head first, so they read in cand order. */
    for (size_t i = sub->ncands; i-- > 0;) {
        struct cand c = sub->cands[i];
        uint32_t o = peer_object(t, dir, c);
        if (o == t->obj_any) {
            if (bucket_add(t, b, MOAT_ID_ANY, c) < 0)
                return -ENOMEM;
            continue;
        }
        for (size_t k = 0; k < t->inv[o].n; k++) {
            uint32_t x = t->inv[o].v[k];
            if (view_matches(t, o, x, cluster) && bucket_add(t, b, x, c) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static int cmp_row(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->peer != y->peer)
        return x->peer < y->peer ? -1 : 1;
    return x->pclass < y->pclass ? -1 : x->pclass > y->pclass;
}

/* Turns every touched bucket into rows of `sub`, then empties the buckets. */
static int flush_buckets(struct moat_tables *t, struct painter *pt, struct bucketing *b,
                         struct subject *sub, bool sort)
{
    int err = 0;
    pt->p = t->p;
    for (size_t i = 0; i < b->touched.n && !err; i++) {
        uint32_t peer = b->touched.v[i];
        size_t n = 0;
        for (uint32_t k = t->bucket_head[peer]; k && !err; k = b->nodes[k - 1].next) {
            err = moat_grow(&b->tmp, &b->cap_tmp, n + 1, sizeof(*b->tmp));
            if (!err)
                b->tmp[n++] = b->nodes[k - 1].c;
        }
        if (!err)
            err = subject_add_rows(pt, sub, peer, b->tmp, n);
    }
    for (size_t i = 0; i < b->touched.n; i++)
        t->bucket_head[b->touched.v[i]] = 0;
    b->touched.n = 0;
    b->n = 0;
    if (sort && sub->nrows > 1)
        qsort(sub->rows, sub->nrows, sizeof(*sub->rows), cmp_row);
    return err;
}

/* Moves rows [from, nrows) — all of one new peer — into their sorted place. */
static void place_new_rows(struct subject *sub, size_t from)
{
    size_t k = sub->nrows - from;
    if (k == 0 || from == 0)
        return;
    struct row moved[MOAT_PCLASS_UDP + 1];
    memcpy(moved, sub->rows + from, k * sizeof(*moved));
    size_t lo = 0, hi = from;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cmp_row(&sub->rows[mid], &moved[0]) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(sub->rows + lo + k, sub->rows + lo, (from - lo) * sizeof(*sub->rows));
    memcpy(sub->rows + lo, moved, k * sizeof(*moved));
}

static void bucketing_free(struct bucketing *b)
{
    free(b->nodes);
    free(b->touched.v);
    free(b->hits.v);
    free(b->tmp);
}

struct builder {
    struct painter pt;
    struct bucketing b;
};

static void builder_free(struct builder *bl)
{
    painter_free(&bl->pt);
    bucketing_free(&bl->b);
}

static void subject_clear(struct subject *sub)
{
    free(sub->rows);
    free(sub->iv);
    free(sub->cands);
    free(sub->peer_objs);
    free(sub->by_obj);
    memset(sub, 0, sizeof(*sub));
}

static size_t total_intervals_delta(const struct subject *sub)
{
    return sub->niv;
}

/* Precedence (rule_precedes: priority, then id), then destination. */
static int cmp_cand(const void *a, const void *b, void *ctx)
{
    const struct moat_policy *p = ctx;
    const struct cand *x = a, *y = b;
    const struct moat_rule *rx = &p->rules[x->rule], *ry = &p->rules[y->rule];
    if (rx->priority != ry->priority)
        return rx->priority < ry->priority ? -1 : 1;
    if (rx->id != ry->id)
        return rx->id < ry->id ? -1 : 1;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    return x->dest < y->dest ? -1 : x->dest > y->dest;
}

/* (Re)builds every row of subject `s` in direction `dir`. */
static int build_subject(struct moat_tables *t, struct builder *bl, enum moat_dir dir, uint32_t s)
{
    struct subject *sub = &t->subj[dir][s];
    subject_clear(sub);
    if (t->ids[s].kind != MOAT_IDENT_WORKLOAD)
        return 0;
    if (collect_cands(t, dir, s, sub) < 0)
        return -ENOMEM;
    if (sub->ncands > 1)
        qsort_r(sub->cands, sub->ncands, sizeof(*sub->cands), cmp_cand, (void *)t->p);
    if (bucket_cands(t, &bl->b, dir, sub, t->ids[s].cluster) < 0)
        return -ENOMEM;
    sub->peer_objs = bits_new(t);
    if (!sub->peer_objs)
        return -ENOMEM;
    for (size_t i = 0; i < sub->ncands; i++)
        bit_set(sub->peer_objs, peer_object(t, dir, sub->cands[i]));
    return flush_buckets(t, &bl->pt, &bl->b, sub, true);
}

/* Could identity `peer` be picked by one of the subject's peer objects? */
static bool may_be_peer(const struct moat_tables *t, const struct subject *sub, uint32_t peer)
{
    const uint64_t *bits = t->ids[peer].bits;
    if (t->ids[peer].kind == MOAT_IDENT_HOST && bit_get(sub->peer_objs, t->obj_host))
        return true;
    for (size_t w = 0; w < t->nwords; w++)
        if (sub->peer_objs[w] & bits[w])
            return true;
    return false;
}

static int cmp_obj_cand(const void *a, const void *b)
{
    const struct obj_cand *x = a, *y = b;
    if (x->obj != y->obj)
        return x->obj < y->obj ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int subject_index(const struct moat_tables *t, enum moat_dir dir, struct subject *sub)
{
    sub->by_obj = moat_calloc(sub->ncands, sizeof(*sub->by_obj));
    if (!sub->by_obj)
        return -ENOMEM;
    for (size_t i = 0; i < sub->ncands; i++)
        sub->by_obj[i] = (struct obj_cand){peer_object(t, dir, sub->cands[i]), (uint32_t)i};
    qsort(sub->by_obj, sub->ncands, sizeof(*sub->by_obj), cmp_obj_cand);
    return 0;
}

/* Lists the cands of `sub` whose peer object is `o` into `hits`, when `o` picks `peer`. */
static int hits_of_object(const struct moat_tables *t, const struct subject *sub, uint32_t o,
                          uint32_t peer, uint32_t cluster, struct list32 *hits)
{
    if (o == t->obj_any || !view_matches(t, o, peer, cluster))
        return 0;
    size_t lo = 0, hi = sub->ncands;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sub->by_obj[mid].obj < o)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < sub->ncands && sub->by_obj[lo].obj == o; lo++)
        if (list_push(hits, sub->by_obj[lo].idx) < 0)
            return -ENOMEM;
    return 0;
}

/*
 * Buckets the cands of `sub` that a new identity `peer` can be the peer of:
 * what bucket_cands gives for that peer, found through the objects `peer`
 * carries instead of a pass over every cand of every subject.
 */
static int bucket_peer(struct moat_tables *t, struct bucketing *b, enum moat_dir dir,
                       struct subject *sub, uint32_t cluster, uint32_t peer)
{
    if (!sub->by_obj && subject_index(t, dir, sub) < 0)
        return -ENOMEM;
    const uint64_t *bits = t->ids[peer].bits;
    b->hits.n = 0;
    int err = 0;
    for (size_t k = 0; k < t->nwords && !err; k++)
        for (uint64_t m = bits[k] & sub->peer_objs[k]; m && !err; m &= m - 1)
            err = hits_of_object(t, sub, (uint32_t)(k * 64 + (unsigned)__builtin_ctzll(m)), peer,
                                 cluster, &b->hits);
    /* `host` is the one object a peer matches without carrying it. */
    if (!err && t->ids[peer].kind == MOAT_IDENT_HOST && t->obj_host != MOAT_NONE &&
        !bit_get(bits, t->obj_host))
        err = hits_of_object(t, sub, t->obj_host, peer, cluster, &b->hits);
    if (err)
        return err;
    sort_u32(b->hits.v, b->hits.n);
    /* Backwards, as bucket_cands: the list reads in cand (precedence) order. */
    for (size_t i = b->hits.n; i-- > 0;)
        if (bucket_add(t, b, peer, sub->cands[b->hits.v[i]]) < 0)
            return -ENOMEM;
    return 0;
}

/* Adds the rows of a new peer identity `peer` to subject `s`. */
static int add_peer_rows(struct moat_tables *t, struct builder *bl, enum moat_dir dir, uint32_t s,
                         uint32_t peer)
{
    struct subject *sub = &t->subj[dir][s];
    if (t->ids[s].kind != MOAT_IDENT_WORKLOAD || sub->ncands == 0 || !may_be_peer(t, sub, peer))
        return 0;
    if (bucket_peer(t, &bl->b, dir, sub, t->ids[s].cluster, peer) < 0)
        return -ENOMEM;
    size_t before = sub->nrows;
    int err = flush_buckets(t, &bl->pt, &bl->b, sub, false);
    if (!err)
        place_new_rows(sub, before);
    return err;
}

/* Room for per-identity arrays (subjects, bucket heads) up to nids. */
static int ensure_identity_room(struct moat_tables *t)
{
    if (t->nids <= t->cap_subj)
        return 0;
    size_t n = t->nids * 2;
    for (int dir = 0; dir < 2; dir++) {
        struct subject *s = moat_reallocarray(t->subj[dir], n, sizeof(*s));
        if (!s)
            return -ENOMEM;
        memset(s + t->cap_subj, 0, (n - t->cap_subj) * sizeof(*s));
        t->subj[dir] = s;
    }
    uint32_t *heads = moat_reallocarray(t->bucket_head, n, sizeof(*heads));
    if (!heads)
        return -ENOMEM;
    memset(heads + t->cap_subj, 0, (n - t->cap_subj) * sizeof(*heads));
    t->bucket_head = heads;
    t->cap_subj = n;
    return 0;
}

/* ---------- workloads ---------- */

/*
 * Workload groups. Whether an object selects a workload depends only on the
 * workload's cluster, namespace, image forms, the values of the label keys
 * some selector names (`app` included) and of the namespace label keys some
 * selector names; a group is one distinct value of all that (its key). Each
 * selector is matched once per group, not once per workload: a cluster of
 * 100,000 replicas has about as many groups as deployments. A group lives as
 * long as a workload with addresses is in it.
 */
struct group {
    uint64_t hash;
    uint32_t users; /* workloads in it */
    uint32_t klen;
    char *key;       /* klen bytes, in the same allocation */
    uint64_t bits[]; /* nwords: the selectors (and `any`) that pick its workloads */
};

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts and deduplicates a list of borrowed strings. */
static size_t unique_strs(const char **v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_str_ptr);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(v[u - 1], v[i]) != 0)
            v[u++] = v[i];
    return u;
}

/* What the selectors read of a workload (the group key's fields). */
static int collect_key_fields(struct moat_tables *t)
{
    const struct moat_policy *p = t->p;
    size_t nl = 0, nns = 0;
    for (size_t o = 0; o < p->nobjects; o++) {
        const struct moat_object *obj = &p->objects[o];
        if (obj->kind != MOAT_OBJ_SELECTOR)
            continue;
        nl += obj->nlabels + (obj->app != NULL);
        nns += obj->nns_labels;
    }
    t->label_keys = moat_calloc(nl, sizeof(*t->label_keys));
    t->ns_keys = moat_calloc(nns, sizeof(*t->ns_keys));
    if (!t->label_keys || !t->ns_keys)
        return -ENOMEM;
    nl = nns = 0;
    for (size_t o = 0; o < p->nobjects; o++) {
        const struct moat_object *obj = &p->objects[o];
        if (obj->kind != MOAT_OBJ_SELECTOR)
            continue;
        t->key_namespace |= obj->namespace != NULL;
        t->key_image |= obj->nimages > 0;
        if (obj->app)
            t->label_keys[nl++] = "app";
        for (size_t i = 0; i < obj->nlabels; i++)
            t->label_keys[nl++] = obj->labels[i].key;
        for (size_t i = 0; i < obj->nns_labels; i++)
            t->ns_keys[nns++] = obj->ns_labels[i].key;
    }
    t->nlabel_keys = unique_strs(t->label_keys, nl);
    t->nns_keys = unique_strs(t->ns_keys, nns);
    return 0;
}

#define KEY_ABSENT UINT32_MAX

/* Appends one field (length, then bytes; KEY_ABSENT for none) to the key being built. */
static int key_put(struct moat_tables *t, size_t *n, const char *s, size_t len)
{
    uint32_t l = s ? (uint32_t)len : KEY_ABSENT;
    if (moat_grow(&t->keybuf, &t->cap_keybuf, *n + sizeof(l) + (s ? len : 0), 1) < 0)
        return -ENOMEM;
    memcpy(t->keybuf + *n, &l, sizeof(l));
    *n += sizeof(l);
    if (s) {
        memcpy(t->keybuf + *n, s, len);
        *n += len;
    }
    return 0;
}

static int key_put_str(struct moat_tables *t, size_t *n, const char *s)
{
    return key_put(t, n, s, s ? strlen(s) : 0);
}

/* Bytes of packed image forms, up to and with the empty string that ends them. */
static size_t forms_len(const char *forms)
{
    const char *f = forms;
    while (*f)
        f += strlen(f) + 1;
    return (size_t)(f - forms) + 1;
}

/* Builds workload `w`'s group key into t->keybuf; its length in *len. */
static int group_key(struct moat_tables *t, const struct moat_workload *w, size_t *len)
{
    size_t n = 0;
    int err = key_put(t, &n, (const char *)&w->cluster, sizeof(w->cluster));
    if (!err && t->key_namespace)
        err = key_put_str(t, &n, w->namespace);
    if (!err && t->key_image)
        err = key_put(t, &n, w->forms, w->forms ? forms_len(w->forms) : 0);
    for (size_t i = 0; i < t->nlabel_keys && !err; i++)
        err = key_put_str(t, &n, labels_get(w->labels, w->nlabels, t->label_keys[i]));
    for (size_t i = 0; i < t->nns_keys && !err; i++)
        err = key_put_str(t, &n, labels_get(w->ns_labels, w->nns_labels, t->ns_keys[i]));
    *len = n;
    return err;
}

static void gslot_put(struct moat_tables *t, uint32_t g)
{
    size_t mask = t->ngslots - 1;
    size_t i = t->groups[g]->hash & mask;
    while (t->gslots[i])
        i = (i + 1) & mask;
    t->gslots[i] = g + 1;
}

static int gslots_grow(struct moat_tables *t)
{
    size_t n = t->ngslots ? t->ngslots * 2 : 256;
    uint32_t *slots = moat_calloc(n, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    free(t->gslots);
    t->gslots = slots;
    t->ngslots = n;
    for (uint32_t g = 0; g < t->ngroups; g++)
        if (t->groups[g])
            gslot_put(t, g);
    return 0;
}

/* Takes group `g` out of the hash table (linear probing: later entries move back). */
static void gslot_remove(struct moat_tables *t, uint32_t g)
{
    size_t mask = t->ngslots - 1;
    size_t i = t->groups[g]->hash & mask;
    while (t->gslots[i] != g + 1)
        i = (i + 1) & mask;
    for (size_t j = (i + 1) & mask; t->gslots[j]; j = (j + 1) & mask) {
        size_t home = t->groups[t->gslots[j] - 1]->hash & mask;
        /* Moves back unless its home lies cyclically in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->gslots[i] = t->gslots[j];
            i = j;
        }
    }
    t->gslots[i] = 0;
}

/*
 * Selector index: a selector with a literal namespace can only pick
 * workloads of that namespace; one with a literal `app`, or a label (all are
 * literal), only workloads carrying that label; one with a namespace label,
 * only workloads whose namespace carries it. Each selector is filed under one
 * such requirement (the first that applies), the rest (and `any`) under
 * none. A new group checks the selectors filed under none and under its
 * namespace and labels only, in full, instead of every object.
 */
enum { IX_NAMESPACE = 0, IX_LABEL = 1, IX_NS_LABEL = 2 };

struct obj_bucket {
    uint64_t hash;
    int kind;
    const char *key; /* NULL for IX_NAMESPACE */
    const char *value;
    struct list32 objs;
};

static uint64_t ix_hash(int kind, const char *key, const char *value)
{
    uint64_t h = bytes_hash(value, strlen(value)) ^ (uint64_t)kind;
    return key ? h ^ (bytes_hash(key, strlen(key)) * 0x9e3779b97f4a7c15ull) : h;
}

static struct obj_bucket *ix_find(const struct moat_tables *t, int kind, const char *key,
                                  const char *value, uint64_t hash)
{
    if (!t->nixslots)
        return NULL;
    size_t mask = t->nixslots - 1;
    for (size_t i = hash & mask; t->ixslots[i]; i = (i + 1) & mask) {
        struct obj_bucket *b = &t->ix[t->ixslots[i] - 1];
        if (b->hash == hash && b->kind == kind && strcmp(b->value, value) == 0 &&
            (!key || strcmp(b->key, key) == 0))
            return b;
    }
    return NULL;
}

static int ix_file(struct moat_tables *t, int kind, const char *key, const char *value, uint32_t o)
{
    uint64_t hash = ix_hash(kind, key, value);
    struct obj_bucket *b = ix_find(t, kind, key, value, hash);
    if (!b) {
        size_t mask = t->nixslots - 1;
        size_t i = hash & mask;
        while (t->ixslots[i])
            i = (i + 1) & mask;
        t->ix[t->nix] = (struct obj_bucket){.hash = hash, .kind = kind, .key = key, .value = value};
        t->ixslots[i] = (uint32_t)++t->nix;
        b = &t->ix[t->nix - 1];
    }
    return list_push(&b->objs, o);
}

static int build_selector_index(struct moat_tables *t)
{
    const struct moat_policy *p = t->p;
    t->nixslots = 16;
    while (t->nixslots < p->nobjects * 2)
        t->nixslots *= 2;
    t->ixslots = moat_calloc(t->nixslots, sizeof(*t->ixslots));
    t->ix = moat_calloc(p->nobjects, sizeof(*t->ix));
    if (!t->ixslots || !t->ix)
        return -ENOMEM;
    for (uint32_t o = 0; o < p->nobjects; o++) {
        const struct moat_object *obj = &p->objects[o];
        int err = 0;
        if (obj->kind == MOAT_OBJ_ANY)
            err = list_push(&t->ix_always, o);
        else if (obj->kind != MOAT_OBJ_SELECTOR)
            continue;
        else if (obj->namespace && !pattern_has_wildcard(obj->namespace))
            err = ix_file(t, IX_NAMESPACE, NULL, obj->namespace, o);
        else if (obj->app && !pattern_has_wildcard(obj->app))
            err = ix_file(t, IX_LABEL, "app", obj->app, o);
        else if (obj->nlabels)
            err = ix_file(t, IX_LABEL, obj->labels[0].key, obj->labels[0].value, o);
        else if (obj->nns_labels)
            err = ix_file(t, IX_NS_LABEL, obj->ns_labels[0].key, obj->ns_labels[0].value, o);
        else
            err = list_push(&t->ix_always, o);
        if (err)
            return -ENOMEM;
    }
    return 0;
}

static void match_list(const struct moat_tables *t, const struct moat_workload *w,
                       const struct list32 *objs, uint64_t *bits)
{
    const char *cname = t->p->clusters[w->cluster].name;
    for (size_t i = 0; i < objs->n; i++)
        if (object_matches_workload(&t->p->objects[objs->v[i]], w, cname))
            bit_set(bits, objs->v[i]);
}

static void match_bucket(const struct moat_tables *t, const struct moat_workload *w, int kind,
                         const char *key, const char *value, uint64_t *bits)
{
    if (!value)
        return;
    const struct obj_bucket *b = ix_find(t, kind, key, value, ix_hash(kind, key, value));
    if (b)
        match_list(t, w, &b->objs, bits);
}

/* The selectors (and `any`) that pick workload `w`: object_matches_workload of each. */
static void match_selectors(const struct moat_tables *t, const struct moat_workload *w,
                            uint64_t *bits)
{
    match_list(t, w, &t->ix_always, bits);
    match_bucket(t, w, IX_NAMESPACE, NULL, w->namespace, bits);
    for (size_t i = 0; i < w->nlabels; i++)
        match_bucket(t, w, IX_LABEL, w->labels[i].key, w->labels[i].value, bits);
    for (size_t i = 0; i < w->nns_labels; i++)
        match_bucket(t, w, IX_NS_LABEL, w->ns_labels[i].key, w->ns_labels[i].value, bits);
}

/* A new group for key t->keybuf[0..len) of workload `w`; its index or MOAT_NONE on OOM. */
static uint32_t group_new(struct moat_tables *t, const struct moat_workload *w, size_t len,
                          uint64_t hash)
{
    if ((t->ngroups_live + 1) * 2 > t->ngslots && gslots_grow(t) < 0)
        return MOAT_NONE;
    if (!t->free_groups.n &&
        moat_grow(&t->groups, &t->cap_groups, t->ngroups + 1, sizeof(*t->groups)) < 0)
        return MOAT_NONE;
    struct group *gr = malloc(sizeof(*gr) + t->nwords * sizeof(uint64_t) + len);
    if (!gr)
        return MOAT_NONE;
    uint32_t g = t->free_groups.n ? t->free_groups.v[--t->free_groups.n] : (uint32_t)t->ngroups++;
    gr->hash = hash;
    gr->users = 0;
    gr->klen = (uint32_t)len;
    gr->key = (char *)(gr->bits + t->nwords);
    memcpy(gr->key, t->keybuf, len);
    memset(gr->bits, 0, t->nwords * sizeof(uint64_t));
    match_selectors(t, w, gr->bits);
    t->groups[g] = gr;
    t->ngroups_live++;
    gslot_put(t, g);
    return g;
}

/* The group of workload `w`, made when new, with one more user; MOAT_NONE on OOM. */
static uint32_t group_ref(struct moat_tables *t, const struct moat_workload *w)
{
    size_t len;
    if (group_key(t, w, &len) < 0)
        return MOAT_NONE;
    uint64_t hash = bytes_hash(t->keybuf, len);
    uint32_t g = MOAT_NONE;
    if (t->ngslots) {
        size_t mask = t->ngslots - 1;
        for (size_t i = hash & mask; t->gslots[i]; i = (i + 1) & mask) {
            const struct group *x = t->groups[t->gslots[i] - 1];
            if (x->hash == hash && x->klen == len && memcmp(x->key, t->keybuf, len) == 0) {
                g = t->gslots[i] - 1;
                break;
            }
        }
    }
    if (g == MOAT_NONE)
        g = group_new(t, w, len, hash);
    if (g != MOAT_NONE)
        t->groups[g]->users++;
    return g;
}

static void group_unref(struct moat_tables *t, uint32_t g)
{
    if (g == MOAT_NONE || --t->groups[g]->users > 0)
        return;
    gslot_remove(t, g);
    free(t->groups[g]);
    t->groups[g] = NULL;
    t->ngroups_live--;
    /* The slot is reused by the next new group; when the list cannot grow it stays unused. */
    (void)list_push(&t->free_groups, g);
}

/*
 * Maps workload `idx`'s addresses to identities (its state must be empty);
 * new identities are listed in `created`. `g` is its group, already
 * referenced for it (MOAT_NONE when it has no addresses).
 */
static int map_workload(struct moat_tables *t, uint32_t idx, uint32_t g, struct list32 *created)
{
    const struct moat_workload *w = &t->p->workloads[idx];
    struct wl_state *st = &t->wl[idx];
    st->group = g;
    if (w->naddrs == 0)
        return 0;
    if (t->arena_left >= w->naddrs) { /* full compile: one block for every workload */
        st->addrs = t->arena_addrs;
        st->ids = t->arena_ids;
        t->arena_addrs += w->naddrs;
        t->arena_ids += w->naddrs;
        t->arena_left -= w->naddrs;
    } else {
        st->addrs = moat_calloc(w->naddrs, sizeof(*st->addrs));
        st->ids = moat_calloc(w->naddrs, sizeof(*st->ids));
        st->owned = true;
        if (!st->addrs || !st->ids)
            return -ENOMEM;
    }
    const uint64_t *sel = t->groups[g]->bits;
    for (size_t a = 0; a < w->naddrs; a++) {
        const uint64_t *cov = coverage_of(t, &w->addrs[a]);
        for (size_t k = 0; k < t->nwords; k++)
            t->scratch[k] = sel[k] | cov[k];
        bool made = false;
        uint32_t id = ident_get(t, MOAT_IDENT_WORKLOAD, w->cluster, t->scratch, &made);
        if (id == MOAT_NONE || exact_insert(t, &w->addrs[a], id) < 0 ||
            (made && list_push(created, id) < 0))
            return -ENOMEM;
        st->addrs[st->n] = w->addrs[a];
        st->ids[st->n++] = id;
        if (t->ids[id].users++ == 0)
            t->idle_ids--;
    }
    return 0;
}

static void wl_state_free(struct wl_state *st)
{
    if (st->owned) {
        free(st->addrs);
        free(st->ids);
    }
    memset(st, 0, sizeof(*st));
    st->group = MOAT_NONE;
}

static void unmap_workload(struct moat_tables *t, uint32_t idx)
{
    struct wl_state *st = &t->wl[idx];
    for (size_t a = 0; a < st->n; a++) {
        exact_remove(t, &st->addrs[a]);
        if (--t->ids[st->ids[a]].users == 0)
            t->idle_ids++;
    }
    group_unref(t, st->group);
    wl_state_free(st);
}

/* ---------- full compile ---------- */

static int tables_alloc(const struct moat_policy *p, const struct moat_eval_opts *opts,
                        struct moat_tables **out)
{
    struct moat_tables *t = moat_calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    *out = t;
    t->p = p;
    if (opts && opts->node) {
        t->node = moat_strdup(opts->node);
        if (!t->node)
            return -ENOMEM;
        t->opts.node = t->node;
    }
    t->nobjects = p->nobjects;
    t->nwords = (p->nobjects + 63) / 64;
    t->obj_any = policy_find_object(p, "any");
    t->obj_host = policy_find_object(p, "host");
    t->by_dest = moat_calloc(p->nobjects, sizeof(*t->by_dest));
    t->inv = moat_calloc(p->nobjects, sizeof(*t->inv));
    t->wl = moat_calloc(p->nworkloads, sizeof(*t->wl));
    t->nwl = p->nworkloads;
    t->scratch = bits_new(t);
    t->obj_cluster = moat_calloc(p->nobjects, sizeof(*t->obj_cluster));
    if (!t->by_dest || !t->inv || !t->wl || !t->scratch || !t->obj_cluster || slots_grow(t) < 0 ||
        collect_key_fields(t) < 0 || build_selector_index(t) < 0)
        return -ENOMEM;
    for (size_t o = 0; o < p->nobjects; o++) {
        const char *c = p->objects[o].cluster;
        /* A cluster no document defines: in none (MOAT_NONE - 1 is no index). */
        uint32_t k = c ? policy_find_cluster(p, c) : MOAT_NONE;
        t->obj_cluster[o] = c && k == MOAT_NONE ? MOAT_NONE - 1 : k;
    }
    for (size_t i = 0; i < t->nwl; i++)
        t->wl[i].group = MOAT_NONE;
    /* id 0: ANY (a wildcard, never an address); id 1: WORLD. */
    if (moat_grow(&t->ids, &t->cap_ids, 2, sizeof(*t->ids)) < 0)
        return -ENOMEM;
    for (int i = 0; i < 2; i++) {
        t->ids[i] = (struct ident){.kind = MOAT_IDENT_WORLD, .cluster = MOAT_NONE};
        t->ids[i].bits = bits_new(t);
        if (!t->ids[i].bits)
            return -ENOMEM;
        t->nids++;
    }
    return 0;
}

/* One block for the mapped addresses of every workload (updates allocate their own). */
static int alloc_arena(struct moat_tables *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->p->nworkloads; i++)
        n += t->p->workloads[i].naddrs;
    t->arena_addrs = t->arena_addrs_base = moat_calloc(n, sizeof(*t->arena_addrs));
    t->arena_ids = t->arena_ids_base = moat_calloc(n, sizeof(*t->arena_ids));
    t->arena_left = n;
    return t->arena_addrs && t->arena_ids ? 0 : -ENOMEM;
}

int policy_compile(const struct moat_policy *p, const struct moat_eval_opts *opts,
                   struct moat_tables **out)
{
    struct moat_tables *t = NULL;
    struct builder bl = {0};
    struct list32 created = {0};
    *out = NULL;
    int err = tables_alloc(p, opts, &t);
    if (!err)
        err = build_outside(t);
    if (!err)
        err = alloc_arena(t);
    if (!err) {
        t->batch = true;
        err = build_hosts(t);
    }
    for (uint32_t i = 0; i < p->nworkloads && !err; i++) {
        const struct moat_workload *w = &p->workloads[i];
        uint32_t g = w->naddrs ? group_ref(t, w) : MOAT_NONE;
        err = w->naddrs && g == MOAT_NONE ? -ENOMEM : map_workload(t, i, g, &created);
    }
    if (!err) {
        t->arena_left = 0; /* spent: updates allocate their own */
        err = exact_finish(t);
    }
    if (!err)
        err = build_rule_index(t);
    if (!err)
        err = ensure_identity_room(t);
    for (uint32_t s = 2; !err && s < t->nids; s++)
        for (int dir = 0; dir < 2 && !err; dir++)
            err = build_subject(t, &bl, (enum moat_dir)dir, s);
    builder_free(&bl);
    free(created.v);
    if (err) {
        tables_free(t);
        return err;
    }
    *out = t;
    return 0;
}

void tables_free(struct moat_tables *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nids; i++)
        free(t->ids[i].bits);
    for (int dir = 0; dir < 2; dir++) {
        for (size_t i = 0; t->subj[dir] && i < t->cap_subj; i++)
            subject_clear(&t->subj[dir][i]);
        free(t->subj[dir]);
    }
    for (size_t i = 0; t->wl && i < t->nwl; i++)
        wl_state_free(&t->wl[i]);
    for (size_t g = 0; g < t->ngroups; g++)
        free(t->groups[g]);
    free(t->groups);
    free(t->gslots);
    free(t->free_groups.v);
    free(t->keybuf);
    for (size_t i = 0; i < t->nix; i++)
        free(t->ix[i].objs.v);
    free(t->ix);
    free(t->ixslots);
    free(t->ix_always.v);
    free(t->label_keys);
    free(t->ns_keys);
    free(t->arena_addrs_base);
    free(t->arena_ids_base);
    free(t->scratch);
    free(t->obj_cluster);
    for (size_t o = 0; t->by_dest && o < t->nobjects; o++)
        free(t->by_dest[o].v);
    for (size_t o = 0; t->inv && o < t->nobjects; o++)
        free(t->inv[o].v);
    free(t->by_dest);
    free(t->inv);
    free(t->egress.v);
    free(t->wl);
    free(t->ids);
    free(t->slots);
    free(t->exact);
    free(t->pfx);
    free(t->pslots);
    free(t->plens);
    free(t->bucket_head);
    free(t->node);
    free(t);
}

/* ---------- lookups ---------- */

static const struct interval *row_lookup(const struct moat_tables *t, enum moat_dir dir,
                                         uint32_t subject, uint32_t peer, enum moat_pclass pc,
                                         uint16_t port)
{
    if (subject >= t->cap_subj)
        return NULL;
    const struct subject *sub = &t->subj[dir][subject];
    struct row key = {.peer = peer, .pclass = pc};
    if (sub->nrows == 0)
        return NULL;
    const struct row *r = bsearch(&key, sub->rows, sub->nrows, sizeof(*r), cmp_row);
    if (!r)
        return NULL;
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct interval *iv = &sub->iv[r->off + mid];
        if (port < iv->lo)
            hi = mid;
        else if (port > iv->hi)
            lo = mid + 1;
        else
            return iv;
    }
    return NULL;
}

static enum moat_pclass pclass_of(uint8_t proto)
{
    return proto == MOAT_PROTO_TCP   ? MOAT_PCLASS_TCP
           : proto == MOAT_PROTO_UDP ? MOAT_PCLASS_UDP
                                     : MOAT_PCLASS_OTHER;
}

void tables_decide(const struct moat_tables *t, enum moat_dir dir, const struct moat_addr *src,
                   const struct moat_addr *dst, uint8_t proto, uint16_t port,
                   struct moat_verdict *out)
{
    memset(out, 0, sizeof(*out));
    out->action = out->applied = MOAT_ACTION_ALLOW;
    uint32_t s = tables_identity_of(t, dir == MOAT_DIR_INGRESS ? dst : src);
    uint32_t peer = tables_identity_of(t, dir == MOAT_DIR_INGRESS ? src : dst);
    const struct ident *subj = &t->ids[s];
    if (subj->kind != MOAT_IDENT_WORKLOAD)
        return;
    const struct ident *pi = &t->ids[peer];
    if (dir == MOAT_DIR_EGRESS && pi->kind == MOAT_IDENT_WORKLOAD && pi->cluster == subj->cluster)
        return;
    out->applies = true;
    out->cluster = subj->cluster;
    const struct moat_cluster *c = &t->p->clusters[subj->cluster];
    if (!c->defense) {
        out->defense_off = true;
        return;
    }
    enum moat_pclass pc = pclass_of(proto);
    uint16_t key_port = pc == MOAT_PCLASS_OTHER ? 0 : port;
    /* Precedence: each probe returns its row's winner; the two winners are compared
     * by (priority, id), which is the same order the compiler painted with. */
    const struct interval *a = row_lookup(t, dir, s, peer, pc, key_port);
    const struct interval *b =
        dir == MOAT_DIR_INGRESS ? row_lookup(t, dir, s, MOAT_ID_ANY, pc, key_port) : NULL;
    const struct interval *win = a;
    if (b && (!a || rule_precedes(&t->p->rules[b->rule], &t->p->rules[a->rule])))
        win = b;
    if (win) {
        out->action = t->p->rules[win->rule].action;
        out->rule_id = t->p->rules[win->rule].id;
    } else {
        out->is_default = true;
        out->action = dir == MOAT_DIR_INGRESS ? c->default_action : MOAT_ACTION_ALLOW;
    }
    out->applied = out->action;
    if (c->mode == MOAT_MODE_MONITOR && out->action == MOAT_ACTION_BLOCK)
        out->applied = MOAT_ACTION_ALERT;
}

/* ---------- iteration ---------- */

size_t tables_identity_count(const struct moat_tables *t)
{
    return t->nids;
}

size_t tables_idle_identity_count(const struct moat_tables *t)
{
    return t->idle_ids;
}

bool tables_compaction_due(const struct moat_tables *t)
{
    return t->idle_ids >= MOAT_IDLE_IDS_MIN && t->idle_ids * 4 >= t->nids;
}

struct moat_ident_info tables_identity(const struct moat_tables *t, uint32_t id)
{
    struct moat_ident_info info = {
        .kind = t->ids[id].kind, .cluster = t->ids[id].cluster, .users = t->ids[id].users};
    return info;
}

bool tables_identity_has(const struct moat_tables *t, uint32_t id, uint32_t obj)
{
    return obj < t->nobjects && bit_get(t->ids[id].bits, obj);
}

size_t tables_addr_count(const struct moat_tables *t)
{
    return t->nexact + t->npfx;
}

struct moat_addr_entry tables_addr_entry(const struct moat_tables *t, size_t i)
{
    if (i < t->nexact)
        return t->exact[i];
    return t->pfx[i - t->nexact];
}

int tables_policy_foreach(const struct moat_tables *t,
                          int (*fn)(void *ctx, const struct moat_policy_entry *e), void *ctx)
{
    for (int dir = 0; dir < 2; dir++)
        for (uint32_t s = 0; s < t->nids && s < t->cap_subj; s++) {
            const struct subject *sub = &t->subj[dir][s];
            for (size_t r = 0; r < sub->nrows; r++) {
                const struct row *row = &sub->rows[r];
                for (size_t i = 0; i < row->n; i++) {
                    const struct interval *iv = &sub->iv[row->off + i];
                    const struct moat_rule *rule = &t->p->rules[iv->rule];
                    struct moat_policy_entry e = {.dir = (enum moat_dir)dir,
                                                  .pclass = (enum moat_pclass)row->pclass,
                                                  .subject = s,
                                                  .peer = row->peer,
                                                  .port_lo = iv->lo,
                                                  .port_hi = iv->hi,
                                                  .rule_id = rule->id,
                                                  .priority = rule->priority,
                                                  .action = rule->action};
                    int rc = fn(ctx, &e);
                    if (rc)
                        return rc;
                }
            }
        }
    return 0;
}

size_t tables_policy_count(const struct moat_tables *t)
{
    size_t n = 0;
    for (int dir = 0; dir < 2; dir++)
        for (size_t s = 0; s < t->nids && s < t->cap_subj; s++)
            n += total_intervals_delta(&t->subj[dir][s]);
    return n;
}

static int count_lpm(void *ctx, const struct moat_policy_entry *e)
{
    struct port_prefix pp[MOAT_PORT_PREFIXES_MAX];
    *(size_t *)ctx +=
        e->pclass == MOAT_PCLASS_OTHER ? 1 : port_range_prefixes(e->port_lo, e->port_hi, pp);
    return 0;
}

size_t tables_lpm_entry_count(const struct moat_tables *t)
{
    size_t n = 0;
    tables_policy_foreach(t, count_lpm, &n);
    return n;
}

/* ---------- incremental recompile ---------- */

static bool listed(const struct list32 *l, uint32_t v)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == v)
            return true;
    return false;
}

/*
 * The rows of new identities `created`: their own (every identity, the other
 * new ones too, is a peer already), then theirs as peers of every older
 * subject. An older subject only: a new one built before another new one
 * already has its rows, and adding them again doubled them (one update that
 * made a workload's IPv4 and IPv6 identities both new did).
 */
static int add_identities(struct moat_tables *t, struct builder *bl, const struct list32 *created)
{
    int err = 0;
    for (size_t i = 0; i < created->n && !err; i++)
        for (int dir = 0; dir < 2 && !err; dir++)
            err = build_subject(t, bl, (enum moat_dir)dir, created->v[i]);
    for (int dir = 0; dir < 2 && !err; dir++)
        for (uint32_t s = 2; s < t->nids && !err; s++)
            for (size_t i = 0; i < created->n && !err && !listed(created, s); i++)
                err = add_peer_rows(t, bl, (enum moat_dir)dir, s, created->v[i]);
    return err;
}

int tables_update_workload(struct moat_tables *t, uint32_t idx)
{
    if (idx >= t->nwl) {
        struct wl_state *wl = moat_reallocarray(t->wl, idx + 1, sizeof(*wl));
        if (!wl)
            return -ENOMEM;
        memset(wl + t->nwl, 0, (idx + 1 - t->nwl) * sizeof(*wl));
        for (size_t i = t->nwl; i <= idx; i++)
            wl[i].group = MOAT_NONE;
        t->wl = wl;
        t->nwl = idx + 1;
    }
    /* The new group first: a workload that stays in its group does not remake it. */
    const struct moat_workload *w = &t->p->workloads[idx];
    uint32_t g = w->naddrs ? group_ref(t, w) : MOAT_NONE;
    if (w->naddrs && g == MOAT_NONE)
        return -ENOMEM;
    unmap_workload(t, idx);
    struct list32 created = {0};
    struct builder bl = {0};
    int err = map_workload(t, idx, g, &created);
    if (!err)
        err = ensure_identity_room(t);
    if (!err)
        err = add_identities(t, &bl, &created);
    builder_free(&bl);
    free(created.v);
    return err;
}

/* Could rule `r` (its cluster, source and destinations) apply to subject `s`? */
static bool rule_touches(const struct moat_tables *t, const struct moat_rule *r, uint32_t s)
{
    const struct ident *id = &t->ids[s];
    if (id->kind != MOAT_IDENT_WORKLOAD || id->cluster != r->cluster)
        return false;
    for (size_t d = 0; d < r->ndests; d++) {
        uint32_t o = r->dests[d].object;
        if (t->p->objects[o].kind == MOAT_OBJ_IPBLOCK) {
            if (view_matches(t, r->source, s, r->cluster))
                return true;
        } else if (bit_get(id->bits, o)) {
            return true;
        }
    }
    return false;
}

int tables_update_rule(struct moat_tables *t, uint32_t idx, const struct moat_rule *old)
{
    int err = build_rule_index(t);
    struct builder bl = {0};
    const struct moat_rule *now = &t->p->rules[idx];
    for (uint32_t s = 2; s < t->nids && !err; s++) {
        if (!rule_touches(t, now, s) && !(old && rule_touches(t, old, s)))
            continue;
        for (int dir = 0; dir < 2 && !err; dir++)
            err = build_subject(t, &bl, (enum moat_dir)dir, s);
    }
    builder_free(&bl);
    return err;
}
