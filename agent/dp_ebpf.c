/*
 * dp_ebpf: the eBPF datapath backend (see datapath.h and bpf/moat_tc.bpf.c).
 *
 * Maps are pinned by name under /sys/fs/bpf/moat/<node>/ and reused when
 * moatd starts again; tc filters keep running between two moatd processes.
 * A policy update builds fresh inner maps (addresses, rows, intervals,
 * clusters), puts them in the idle slot of the outer maps and then bumps the
 * generation, whose low bit selects the slot: one atomic step. Those maps
 * are made with room to spare, and update() writes a few workloads' changes
 * into the ones in force (rows first, then addresses), then bumps the
 * generation by two: the same slot, flows judged again.
 */
#include "datapath.h"
#include "mem.h"
#include "moat_tc.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define BPFFS       "/sys/fs/bpf"
#define PIN_BASE    BPFFS "/moat"
#define TC_HANDLE   MOAT_TC_HANDLE
#define TC_PRIORITY MOAT_TC_PRIORITY
#define BATCH       65536

struct attached {
    char ifname[IF_NAMESIZE];
    int ifindex;
};

struct datapath {
    struct moat_tc *skel;
    char pin_dir[PATH_MAX];
    struct ring_buffer *rb;
    datapath_event_fn on_event;
    void *ctx;
    struct attached *ifs;
    size_t nifs, cap_ifs;
    uint64_t summaries_at; /* monotonic ns of the last scan for idle rate-limit buckets */
    /* The inner maps of the snapshot in force, as the last apply made them (-1: none), for
     * update(): entries used and room (max_entries). */
    int live_addrs, live_rows, live_ivals;
    uint32_t live_gen;
    size_t addrs_n, addrs_cap, rows_n, rows_cap, ivals_n, ivals_cap;
};

static void forget_live(struct datapath *dp);

/* Room for updates in place: a quarter more addresses, an eighth more rows and intervals. */
static size_t with_room(size_t n, size_t div, size_t extra)
{
    return n + n / div + extra;
}

/* ---------- probe and bpffs ---------- */

static int probe_ebpf(char *why, size_t n)
{
    struct {
        enum bpf_map_type type;
        const char *name;
    } maps[] = {{BPF_MAP_TYPE_LPM_TRIE, "LPM trie maps"},
                {BPF_MAP_TYPE_LRU_HASH, "LRU hash maps"},
                {BPF_MAP_TYPE_RINGBUF, "ring buffers"},
                {BPF_MAP_TYPE_ARRAY_OF_MAPS, "array-of-maps"},
                {BPF_MAP_TYPE_PERCPU_HASH, "per-CPU hash maps"}};
    size_t len = 0;
    why[0] = '\0';
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        len += (size_t)snprintf(why + len, n - len, "kernel BTF (/sys/kernel/btf/vmlinux); ");
    if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, NULL) != 1)
        len += (size_t)snprintf(why + len, n - len, "tc (sched_cls) BPF programs; ");
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]) && len < n; i++)
        if (libbpf_probe_bpf_map_type(maps[i].type, NULL) != 1)
            len += (size_t)snprintf(why + len, n - len, "%s; ", maps[i].name);
    if (len >= 2 && len < n)
        why[len - 2] = '\0';
    return len ? -EOPNOTSUPP : 0;
}

static int ensure_bpffs(void)
{
    struct statfs st;
    if (statfs(BPFFS, &st) == 0 && st.f_type == BPF_FS_MAGIC)
        return 0;
    if (mkdir(BPFFS, 0700) != 0 && errno != EEXIST)
        return -errno;
    if (mount("bpf", BPFFS, "bpf", 0, "mode=0700") != 0)
        return -errno;
    return 0;
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -errno : 0;
}

/* ---------- open / close ---------- */

static int on_ringbuf(void *ctx, void *data, size_t size)
{
    struct datapath *dp = ctx;
    if (size >= sizeof(struct moat_event) && dp->on_event)
        dp->on_event(dp->ctx, data);
    return 0;
}

static bool node_name_ok(const char *node)
{
    return node[0] && !strchr(node, '/') && strcmp(node, ".") != 0 && strcmp(node, "..") != 0 &&
           strlen(node) < 64;
}

static int open_ebpf(const char *node, datapath_event_fn on_event, void *ctx, struct datapath **out)
{
    *out = NULL;
    if (!node_name_ok(node))
        return -EINVAL;
    struct datapath *dp = moat_calloc(1, sizeof(*dp));
    if (!dp)
        return -ENOMEM;
    dp->on_event = on_event;
    dp->ctx = ctx;
    dp->live_addrs = dp->live_rows = dp->live_ivals = -1;
    snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s/%s", PIN_BASE, node);
    int err = ensure_bpffs();
    if (!err)
        err = mkdir_p(dp->pin_dir);
    LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = dp->pin_dir);
    if (!err) {
        dp->skel = moat_tc__open_opts(&opts);
        err = dp->skel ? moat_tc__load(dp->skel) : -errno;
    }
    if (!err) {
        dp->rb = ring_buffer__new(bpf_map__fd(dp->skel->maps.moat_events), on_ringbuf, dp, NULL);
        err = dp->rb ? 0 : -errno;
    }
    if (err) {
        ring_buffer__free(dp->rb);
        moat_tc__destroy(dp->skel);
        free(dp);
        return err;
    }
    *out = dp;
    return 0;
}

static int tc_detach_ifindex(int ifindex)
{
    int first = 0;
    enum bpf_tc_attach_point points[] = {BPF_TC_INGRESS, BPF_TC_EGRESS};
    for (int i = 0; i < 2; i++) {
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = points[i]);
        LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIORITY);
        int err = bpf_tc_detach(&hook, &opts);
        if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL && !first)
            first = err;
    }
    return first;
}

/* Removes interface `ifindex`'s addresses beyond the inline ones. */
static void forget_extra_addrs(struct datapath *dp, int ifindex)
{
    int fd = bpf_map__fd(dp->skel->maps.moat_ifaddrs);
    struct moat_ifaddr_key key, next;
    bool has = bpf_map_get_next_key(fd, NULL, &next) == 0;
    while (has) {
        key = next;
        has = bpf_map_get_next_key(fd, &key, &next) == 0;
        if ((int)key.ifindex == ifindex)
            bpf_map_delete_elem(fd, &key);
    }
}

/* Interface entries: by index below MOAT_IFINDEX_DIRECT (array), by hash above. */
static int iface_fd(struct datapath *dp, uint32_t ifindex)
{
    return ifindex < MOAT_IFINDEX_DIRECT ? bpf_map__fd(dp->skel->maps.moat_ifaces)
                                         : bpf_map__fd(dp->skel->maps.moat_ifaces_hi);
}

/* 0 with *out when interface `ifindex` has an entry; -ENOENT otherwise. */
static int iface_read(struct datapath *dp, uint32_t ifindex, struct moat_iface *out)
{
    if (bpf_map_lookup_elem(iface_fd(dp, ifindex), &ifindex, out) != 0)
        return -ENOENT;
    return ifindex >= MOAT_IFINDEX_DIRECT || (out->flags & MOAT_IFF_PRESENT) ? 0 : -ENOENT;
}

static int iface_write(struct datapath *dp, uint32_t ifindex, struct moat_iface *v)
{
    v->flags |= MOAT_IFF_PRESENT;
    return bpf_map_update_elem(iface_fd(dp, ifindex), &ifindex, v, BPF_ANY) ? -errno : 0;
}

static void iface_delete(struct datapath *dp, uint32_t ifindex)
{
    if (ifindex >= MOAT_IFINDEX_DIRECT) {
        bpf_map_delete_elem(iface_fd(dp, ifindex), &ifindex);
        return;
    }
    struct moat_iface none;
    memset(&none, 0, sizeof(none));
    bpf_map_update_elem(iface_fd(dp, ifindex), &ifindex, &none, BPF_ANY);
}

/* Forgets interface `ifindex`: its addresses, its entry and the MAC it owned. */
static void forget_ifaddrs(struct datapath *dp, int ifindex)
{
    forget_extra_addrs(dp, ifindex);
    uint32_t idx = (uint32_t)ifindex;
    struct moat_iface old;
    if (iface_read(dp, idx, &old) == 0 && old.mac_learned) {
        struct moat_mac_key mk;
        memset(&mk, 0, sizeof(mk));
        memcpy(mk.mac, old.mac, 6);
        uint32_t owner;
        int owners = bpf_map__fd(dp->skel->maps.moat_mac_owner);
        if (bpf_map_lookup_elem(owners, &mk, &owner) == 0 && owner == idx)
            bpf_map_delete_elem(owners, &mk);
    }
    iface_delete(dp, idx);
}

/* Detaches from every interface the maps know, including a previous moatd's. */
static void detach_all(struct datapath *dp)
{
    struct moat_iface v;
    for (uint32_t i = 1; i < MOAT_IFINDEX_DIRECT; i++)
        if (iface_read(dp, i, &v) == 0) {
            tc_detach_ifindex((int)i);
            forget_ifaddrs(dp, (int)i);
        }
    int fd = bpf_map__fd(dp->skel->maps.moat_ifaces_hi);
    uint32_t key, next;
    bool has = bpf_map_get_next_key(fd, NULL, &next) == 0;
    while (has) {
        key = next;
        has = bpf_map_get_next_key(fd, &key, &next) == 0;
        tc_detach_ifindex((int)key);
        forget_ifaddrs(dp, (int)key);
    }
    for (size_t i = 0; i < dp->nifs; i++)
        tc_detach_ifindex(dp->ifs[i].ifindex);
    dp->nifs = 0;
}

static void close_ebpf(struct datapath *dp, bool remove)
{
    if (!dp)
        return;
    if (remove) {
        detach_all(dp);
        /* One by one: bpf_object__unpin_maps stops at the first map that is not pinned. */
        struct bpf_map *m;
        bpf_object__for_each_map(m, dp->skel->obj) if (bpf_map__is_pinned(m))
            bpf_map__unpin(m, NULL);
        rmdir(dp->pin_dir);
        rmdir(PIN_BASE);
    }
    forget_live(dp);
    ring_buffer__free(dp->rb);
    moat_tc__destroy(dp->skel);
    free(dp->ifs);
    free(dp);
}

static int unpin_ebpf(const char *node)
{
    if (!node_name_ok(node))
        return -EINVAL;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s", PIN_BASE, node);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int err = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0 && !err)
            err = -errno;
    }
    closedir(d);
    if (rmdir(dir) != 0 && !err)
        err = -errno;
    rmdir(PIN_BASE); /* only when it is empty */
    return err;
}

/* ---------- apply ---------- */

static uint32_t read_ti_generation(struct datapath *dp)
{
    uint32_t zero = 0;
    struct moat_cfg cfg = {0};
    bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.moat_cfg), &zero, &cfg);
    return cfg.ti_generation;
}

static uint32_t read_generation(struct datapath *dp)
{
    uint32_t zero = 0;
    struct moat_cfg cfg = {0};
    bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.moat_cfg), &zero, &cfg);
    return cfg.generation;
}

static void addr_entry_kv(const struct moat_tables *t, const struct moat_addr_entry *e,
                          struct moat_addr_key *key, struct moat_addr_val *val)
{
    struct moat_ident_info info = tables_identity(t, e->identity);
    *key = (struct moat_addr_key){.prefixlen = e->prefix.len};
    memcpy(key->addr, e->prefix.addr.b, 16);
    *val = (struct moat_addr_val){
        .identity = e->identity,
        .kind = (uint16_t)info.kind,
        .cluster = info.kind == MOAT_IDENT_WORKLOAD ? (uint16_t)info.cluster : 0};
}

static int fill_addrs(const struct moat_tables *t, size_t cap)
{
    size_t n = tables_addr_count(t);
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
    int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "moat_addr", sizeof(struct moat_addr_key),
                            sizeof(struct moat_addr_val), (uint32_t)cap, &opts);
    if (fd < 0)
        return -errno;
    for (size_t i = 0; i < n; i++) {
        struct moat_addr_entry e = tables_addr_entry(t, i);
        struct moat_addr_key key;
        struct moat_addr_val val;
        addr_entry_kv(t, &e, &key, &val);
        if (bpf_map_update_elem(fd, &key, &val, BPF_ANY) < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
    }
    return fd;
}

struct row_build {
    struct moat_row_key *keys;
    struct moat_row_val *vals;
    size_t nrows, cap_rows, cap_vals;
    struct moat_interval *ivals;
    size_t nivals, cap_ivals;
    int err;
    uint32_t first_new; /* collect_new_entry: only rows with an identity from this one on */
};

static int collect_entry(void *ctx, const struct moat_policy_entry *e)
{
    struct row_build *b = ctx;
    struct moat_row_key key = {.dir = (uint8_t)e->dir,
                               .pclass = (uint8_t)e->pclass,
                               .subject = e->subject,
                               .peer = e->peer};
    bool same = b->nrows && memcmp(&b->keys[b->nrows - 1], &key, sizeof(key)) == 0;
    if (!same) {
        if (moat_grow(&b->keys, &b->cap_rows, b->nrows + 1, sizeof(*b->keys)) < 0 ||
            moat_grow(&b->vals, &b->cap_vals, b->nrows + 1, sizeof(*b->vals)) < 0)
            return b->err = -ENOMEM;
        b->keys[b->nrows] = key;
        b->vals[b->nrows] = (struct moat_row_val){.off = (uint32_t)b->nivals, .n = 0};
        b->nrows++;
    }
    if (moat_grow(&b->ivals, &b->cap_ivals, b->nivals + 1, sizeof(*b->ivals)) < 0)
        return b->err = -ENOMEM;
    b->ivals[b->nivals++] = (struct moat_interval){.lo = e->port_lo,
                                                   .hi = e->port_hi,
                                                   .rule_id = e->rule_id,
                                                   .priority = e->priority,
                                                   .action = (uint8_t)e->action};
    b->vals[b->nrows - 1].n++;
    return 0;
}

static int collect_new_entry(void *ctx, const struct moat_policy_entry *e)
{
    const struct row_build *b = ctx;
    if (e->subject < b->first_new && (e->peer < b->first_new || e->peer == MOAT_ID_ANY))
        return 0;
    return collect_entry(ctx, e);
}

static int batch_update(int fd, const void *keys, size_t key_size, const void *vals,
                        size_t val_size, size_t n)
{
    for (size_t done = 0; done < n;) {
        uint32_t count = (uint32_t)(n - done < BATCH ? n - done : BATCH);
        if (bpf_map_update_batch(fd, (const char *)keys + done * key_size,
                                 (const char *)vals + done * val_size, &count, NULL) < 0) {
            /* Older kernels: one by one. */
            for (size_t i = done; i < n; i++)
                if (bpf_map_update_elem(fd, (const char *)keys + i * key_size,
                                        (const char *)vals + i * val_size, BPF_ANY) < 0)
                    return -errno;
            return 0;
        }
        done += count;
    }
    return 0;
}

static int fill_rows(struct datapath *dp, const struct moat_tables *t, int *rows_fd, int *ivals_fd)
{
    struct row_build b = {0};
    int err = tables_policy_foreach(t, collect_entry, &b);
    uint32_t *idx = err ? NULL : moat_calloc(b.nivals ? b.nivals : 1, sizeof(*idx));
    if (!err && !idx)
        err = -ENOMEM;
    for (size_t i = 0; idx && i < b.nivals; i++)
        idx[i] = (uint32_t)i;
    *rows_fd = *ivals_fd = -1;
    if (!err) {
        dp->rows_n = b.nrows;
        dp->rows_cap = with_room(b.nrows, 8, 1024);
        dp->ivals_n = b.nivals;
        dp->ivals_cap = with_room(b.nivals, 8, 4096);
        *rows_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "moat_rows", sizeof(struct moat_row_key),
                                  sizeof(struct moat_row_val), (uint32_t)dp->rows_cap, NULL);
        LIBBPF_OPTS(bpf_map_create_opts, aopts, .map_flags = BPF_F_INNER_MAP);
        *ivals_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "moat_ivals", sizeof(uint32_t),
                                   sizeof(struct moat_interval), (uint32_t)dp->ivals_cap, &aopts);
        if (*rows_fd < 0 || *ivals_fd < 0)
            err = -errno;
    }
    if (!err)
        err = batch_update(*rows_fd, b.keys, sizeof(*b.keys), b.vals, sizeof(*b.vals), b.nrows);
    if (!err)
        err = batch_update(*ivals_fd, idx, sizeof(*idx), b.ivals, sizeof(*b.ivals), b.nivals);
    free(b.keys);
    free(b.vals);
    free(b.ivals);
    free(idx);
    if (err) {
        if (*rows_fd >= 0)
            close(*rows_fd);
        if (*ivals_fd >= 0)
            close(*ivals_fd);
    }
    return err;
}

static uint8_t cluster_flags(const struct moat_cluster *c)
{
    uint8_t f = 0;
    if (c->defense)
        f |= MOAT_ABI_CF_DEFENSE;
    if (c->mode == MOAT_MODE_MONITOR)
        f |= MOAT_ABI_CF_MONITOR;
    if (c->det.spoofing.c.enabled)
        f |= c->det.spoofing.c.action == MOAT_ACTION_BLOCK ? MOAT_ABI_CF_SPOOF_BLOCK
                                                           : MOAT_ABI_CF_SPOOF_ALERT;
    return f;
}

static uint16_t det_flag(const struct moat_detection_common *c, uint16_t on, uint16_t block)
{
    if (!c->enabled)
        return 0;
    return (uint16_t)(on | (c->action == MOAT_ACTION_BLOCK ? block : 0));
}

/* A cluster's settings as the datapath reads them (SPEC §4, §6). */
static struct moat_cluster_cfg cluster_cfg_of(const struct moat_cluster *c)
{
    const struct moat_detections *d = &c->det;
    struct moat_cluster_cfg cfg = {
        .flags = cluster_flags(c),
        .default_action = (uint8_t)c->default_action,
        .det_flags = (uint16_t)(det_flag(&d->brute_force.c, MOAT_DET_BF_ON, MOAT_DET_BF_BLOCK) |
                                det_flag(&d->port_scan.c, MOAT_DET_SCAN_ON, MOAT_DET_SCAN_BLOCK) |
                                det_flag(&d->dns_hijack.c, MOAT_DET_DNS_ON, MOAT_DET_DNS_BLOCK) |
                                det_flag(&d->threat_intel.c, MOAT_DET_TI_ON, MOAT_DET_TI_BLOCK)),
        .bf_threshold = d->brute_force.threshold,
        .bf_window_s = d->brute_force.window,
        .bf_quarantine_s = d->brute_force.quarantine,
        .scan_threshold = d->port_scan.threshold,
        .scan_window_s = d->port_scan.window,
        .scan_quarantine_s = d->port_scan.quarantine};
    for (size_t i = 0; i < d->brute_force.nports && i < MOAT_ABI_AUTH_PORTS; i++)
        cfg.auth_ports[cfg.nauth++] = d->brute_force.ports[i];
    return cfg;
}

static uint16_t resolver_count(const struct moat_policy *p, uint32_t c);

static int fill_clusters(const struct moat_policy *p)
{
    if (p->nclusters > MOAT_ABI_MAX_CLUSTERS)
        return -E2BIG;
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "moat_clusters", sizeof(uint32_t),
                            sizeof(struct moat_cluster_cfg), MOAT_ABI_MAX_CLUSTERS, NULL);
    if (fd < 0)
        return -errno;
    for (uint32_t i = 0; i < p->nclusters; i++) {
        struct moat_cluster_cfg cfg = cluster_cfg_of(&p->clusters[i]);
        cfg.nresolvers = resolver_count(p, i);
        if (bpf_map_update_elem(fd, &i, &cfg, BPF_ANY) < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
    }
    return fd;
}

static int add_resolver(int fd, uint32_t cluster, const struct moat_addr *a)
{
    struct moat_resolver_key k = {.cluster = cluster};
    memcpy(k.addr, a->b, 16);
    uint8_t one = 1;
    return bpf_map_update_elem(fd, &k, &one, BPF_ANY) < 0 ? -errno : 0;
}

static int count_one(void *arg, const struct moat_addr *a)
{
    (void)a;
    size_t *n = arg;
    ++*n;
    return 0;
}

/* How many approved resolvers cluster `c` has. */
static uint16_t resolver_count(const struct moat_policy *p, uint32_t c)
{
    size_t n = 0;
    cluster_resolvers(p, c, count_one, &n);
    return (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n);
}

struct resolver_fill {
    int fd;
    uint32_t cluster;
};

static int add_one(void *arg, const struct moat_addr *a)
{
    const struct resolver_fill *f = arg;
    return add_resolver(f->fd, f->cluster, a);
}

/* The approved DNS resolvers of every cluster, rebuilt with every snapshot. */
static int fill_resolvers(const struct moat_policy *p)
{
    size_t n = 0;
    for (uint32_t c = 0; c < p->nclusters; c++)
        cluster_resolvers(p, c, count_one, &n);
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "moat_resolvers", sizeof(struct moat_resolver_key),
                            sizeof(uint8_t), n ? (uint32_t)n : 1, NULL);
    if (fd < 0)
        return -errno;
    int err = 0;
    for (uint32_t c = 0; c < p->nclusters && !err; c++) {
        struct resolver_fill f = {.fd = fd, .cluster = c};
        err = cluster_resolvers(p, c, add_one, &f);
    }
    if (err) {
        close(fd);
        return err;
    }
    return fd;
}

/* ---------- counter slots ---------- */

#define SLOT_WORDS (MOAT_COUNTER_SLOTS / 64)

/*
 * Gives every rule of `p` a counter slot before the snapshot that uses them
 * is switched in. Slots are kept in the pinned map, so a restarted moatd
 * counts on where the last one left off. -ENOSPC when slots run out.
 */
static int assign_slots(struct datapath *dp, const struct moat_policy *p)
{
    int fd = bpf_map__fd(dp->skel->maps.moat_rule_slot);
    uint64_t *used = moat_calloc(SLOT_WORDS, sizeof(*used));
    if (!used)
        return -ENOMEM;
    used[MOAT_SLOT_DEFAULT / 64] |= 1ull << (MOAT_SLOT_DEFAULT % 64);
    used[MOAT_SLOT_NONE / 64] |= 1ull << (MOAT_SLOT_NONE % 64);
    uint32_t key, next, slot;
    bool has = bpf_map_get_next_key(fd, NULL, &next) == 0;
    while (has) {
        key = next;
        has = bpf_map_get_next_key(fd, &key, &next) == 0;
        if (bpf_map_lookup_elem(fd, &key, &slot) == 0 && slot < MOAT_COUNTER_SLOTS)
            used[slot / 64] |= 1ull << (slot % 64);
    }
    uint32_t free_at = 0;
    int err = 0;
    for (size_t i = 0; i < p->nrules && !err; i++) {
        uint32_t id = p->rules[i].id;
        if (bpf_map_lookup_elem(fd, &id, &slot) == 0)
            continue;
        while (free_at < MOAT_COUNTER_SLOTS && (used[free_at / 64] >> (free_at % 64)) & 1)
            free_at++;
        if (free_at >= MOAT_COUNTER_SLOTS) {
            err = -ENOSPC;
            break;
        }
        used[free_at / 64] |= 1ull << (free_at % 64);
        if (bpf_map_update_elem(fd, &id, &free_at, BPF_ANY) < 0)
            err = -errno;
    }
    free(used);
    return err;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* After a switch: the slots of rules no longer in `p` are freed and their counts zeroed. */
static void release_slots(struct datapath *dp, const struct moat_policy *p)
{
    int fd = bpf_map__fd(dp->skel->maps.moat_rule_slot);
    int counters = bpf_map__fd(dp->skel->maps.moat_counters);
    int ncpu = libbpf_num_possible_cpus();
    uint32_t *ids = moat_calloc(p->nrules ? p->nrules : 1, sizeof(*ids));
    struct moat_rule_counters *zeros = ncpu > 0 ? moat_calloc((size_t)ncpu, sizeof(*zeros)) : NULL;
    if (!ids || !zeros) {
        free(ids);
        free(zeros);
        return; /* kept: freed at a later apply */
    }
    for (size_t i = 0; i < p->nrules; i++)
        ids[i] = p->rules[i].id;
    qsort(ids, p->nrules, sizeof(*ids), cmp_u32);
    uint32_t key, next, slot;
    bool has = bpf_map_get_next_key(fd, NULL, &next) == 0;
    while (has) {
        key = next;
        has = bpf_map_get_next_key(fd, &key, &next) == 0;
        if (bsearch(&key, ids, p->nrules, sizeof(*ids), cmp_u32))
            continue;
        if (bpf_map_lookup_elem(fd, &key, &slot) == 0 && slot < MOAT_COUNTER_SLOTS)
            bpf_map_update_elem(counters, &slot, zeros, BPF_ANY);
        bpf_map_delete_elem(fd, &key);
    }
    free(ids);
    free(zeros);
}

static void forget_live(struct datapath *dp)
{
    int *fds[3] = {&dp->live_addrs, &dp->live_rows, &dp->live_ivals};
    for (int i = 0; i < 3; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

static int apply_ebpf(struct datapath *dp, const struct moat_policy *p, const struct moat_tables *t,
                      uint32_t *generation)
{
    uint32_t gen = read_generation(dp) + 1;
    if (gen == 0)
        gen = 2; /* 0 means "no policy"; 2 keeps the slot alternating */
    uint32_t slot = gen & 1;
    int fds[5] = {-1, -1, -1, -1, -1};
    int err = assign_slots(dp, p);
    size_t naddrs = tables_addr_count(t), addrs_cap = with_room(naddrs, 4, 1024);
    if (!err && (fds[0] = fill_addrs(t, addrs_cap)) < 0)
        err = fds[0];
    if (!err)
        err = fill_rows(dp, t, &fds[1], &fds[2]);
    if (!err && (fds[3] = fill_clusters(p)) < 0)
        err = fds[3];
    if (!err && (fds[4] = fill_resolvers(p)) < 0)
        err = fds[4];
    struct bpf_map *outer[5] = {dp->skel->maps.moat_addr_slots, dp->skel->maps.moat_rows_slots,
                                dp->skel->maps.moat_ivals_slots, dp->skel->maps.moat_cluster_slots,
                                dp->skel->maps.moat_resolver_slots};
    for (int i = 0; i < 5 && !err; i++)
        if (bpf_map_update_elem(bpf_map__fd(outer[i]), &slot, &fds[i], BPF_ANY) < 0)
            err = -errno;
    if (!err) {
        /* The switch: one 4-byte write that every later packet reads first (the
         * threat list's generation, the other half, is the agent's too). */
        uint32_t zero = 0;
        struct moat_cfg cfg = {.generation = gen, .ti_generation = read_ti_generation(dp)};
        if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.moat_cfg), &zero, &cfg, BPF_ANY) < 0)
            err = -errno;
    }
    forget_live(dp);
    if (!err) { /* the maps in force, for update() */
        dp->live_addrs = fds[0];
        dp->live_rows = fds[1];
        dp->live_ivals = fds[2];
        fds[0] = fds[1] = fds[2] = -1;
        dp->live_gen = gen;
        dp->addrs_n = naddrs;
        dp->addrs_cap = addrs_cap;
    }
    for (int i = 0; i < 5; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (!err) {
        release_slots(dp, p);
        *generation = gen;
    }
    return err;
}

/* Writes the rows of the new identities (from b->first_new) after the intervals in force. */
static int update_rows(struct datapath *dp, const struct moat_tables *t, uint32_t first_new)
{
    if (first_new >= tables_identity_count(t))
        return 0;
    struct row_build b = {.first_new = first_new};
    int err = tables_policy_foreach(t, collect_new_entry, &b);
    if (!err && b.err)
        err = b.err;
    if (!err && (dp->rows_n + b.nrows > dp->rows_cap || dp->ivals_n + b.nivals > dp->ivals_cap))
        err = -ENOSPC;
    uint32_t *idx = err ? NULL : moat_calloc(b.nivals ? b.nivals : 1, sizeof(*idx));
    if (!err && !idx)
        err = -ENOMEM;
    for (size_t i = 0; idx && i < b.nivals; i++)
        idx[i] = (uint32_t)(dp->ivals_n + i);
    for (size_t r = 0; !err && r < b.nrows; r++)
        b.vals[r].off += (uint32_t)dp->ivals_n;
    /* intervals first: no row leads to them yet; then the rows, all new keys */
    if (!err)
        err = batch_update(dp->live_ivals, idx, sizeof(*idx), b.ivals, sizeof(*b.ivals), b.nivals);
    if (!err)
        err =
            batch_update(dp->live_rows, b.keys, sizeof(*b.keys), b.vals, sizeof(*b.vals), b.nrows);
    if (!err) {
        dp->ivals_n += b.nivals;
        dp->rows_n += b.nrows;
    }
    free(b.keys);
    free(b.vals);
    free(b.ivals);
    free(idx);
    return err;
}

/*
 * The host entry of each address as `t` has it: written, or deleted when t has none. (A
 * lookup in an LPM trie finds the longest prefix, not the exact one: the flags of the
 * update and the result of the delete say whether the host entry was there.)
 */
static int update_addrs(struct datapath *dp, const struct moat_tables *t,
                        const struct moat_addr *addrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct moat_addr_entry e = {.prefix = {.addr = addrs[i], .len = 128},
                                    .identity = tables_identity_of(t, &addrs[i])};
        struct moat_ident_info info = tables_identity(t, e.identity);
        struct moat_addr_key key;
        struct moat_addr_val val;
        addr_entry_kv(t, &e, &key, &val);
        if (info.kind != MOAT_IDENT_WORKLOAD && info.kind != MOAT_IDENT_HOST) {
            /* no host entry: the address falls to the prefix that covers it */
            if (bpf_map_delete_elem(dp->live_addrs, &key) == 0)
                dp->addrs_n--;
            else if (errno != ENOENT)
                return -errno;
            continue;
        }
        if (bpf_map_update_elem(dp->live_addrs, &key, &val, BPF_EXIST) == 0)
            continue;
        if (errno != ENOENT)
            return -errno;
        if (dp->addrs_n >= dp->addrs_cap)
            return -ENOSPC;
        if (bpf_map_update_elem(dp->live_addrs, &key, &val, BPF_NOEXIST) < 0)
            return errno == E2BIG ? -ENOSPC : -errno;
        dp->addrs_n++;
    }
    return 0;
}

static int update_ebpf(struct datapath *dp, const struct moat_policy *p,
                       const struct moat_tables *t, uint32_t first_new,
                       const struct moat_addr *addrs, size_t naddrs, uint32_t *generation)
{
    (void)p;
    uint32_t gen = read_generation(dp);
    if (dp->live_addrs < 0 || gen != dp->live_gen || gen + 2 < gen)
        return -ENOSPC; /* no snapshot of ours in force (or the counter would wrap): apply() */
    int err = update_rows(dp, t, first_new);
    if (!err)
        err = update_addrs(dp, t, addrs, naddrs);
    if (!err) {
        /* same slot (low bit), a new stamp: flows in progress are judged again */
        uint32_t zero = 0;
        struct moat_cfg cfg = {.generation = gen + 2, .ti_generation = read_ti_generation(dp)};
        if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.moat_cfg), &zero, &cfg, BPF_ANY) < 0)
            err = -errno;
    }
    if (err) {
        forget_live(dp); /* the next change goes through apply() */
        return err;
    }
    dp->live_gen = gen + 2;
    *generation = gen + 2;
    return 0;
}

/* ---------- interfaces ---------- */

static int remember_if(struct datapath *dp, const char *ifname, int ifindex)
{
    for (size_t i = 0; i < dp->nifs; i++)
        if (strcmp(dp->ifs[i].ifname, ifname) == 0) {
            dp->ifs[i].ifindex = ifindex;
            return 0;
        }
    if (moat_grow(&dp->ifs, &dp->cap_ifs, dp->nifs + 1, sizeof(*dp->ifs)) < 0)
        return -ENOMEM;
    snprintf(dp->ifs[dp->nifs].ifname, IF_NAMESIZE, "%s", ifname);
    dp->ifs[dp->nifs++].ifindex = ifindex;
    return 0;
}

static int tc_attach_prog(int ifindex, enum bpf_tc_attach_point point, int prog_fd)
{
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .handle = TC_HANDLE, .priority = TC_PRIORITY,
                .flags = BPF_TC_F_REPLACE);
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST)
        return err;
    return bpf_tc_attach(&hook, &opts);
}

static int attach_ebpf(struct datapath *dp, const char *ifname, uint32_t cluster,
                       const struct moat_addr *addrs, size_t naddrs)
{
    int ifindex = (int)if_nametoindex(ifname);
    if (!ifindex)
        return -ENODEV;
    if (naddrs == 0)
        return -EDESTADDRREQ; /* a workload without an address cannot be the subject of verdicts */
    uint32_t idx = (uint32_t)ifindex;
    /* The MAC the datapath learned stays (a re-attach must not reopen learning). */
    struct moat_iface iface;
    if (iface_read(dp, idx, &iface) != 0)
        memset(&iface, 0, sizeof(iface));
    uint8_t learned = iface.mac_learned, mac[6];
    memcpy(mac, iface.mac, 6);
    memset(&iface, 0, sizeof(iface));
    iface.cluster = cluster;
    iface.mac_learned = learned;
    memcpy(iface.mac, mac, 6);
    forget_extra_addrs(dp, ifindex); /* the workload's addresses may have changed */
    for (size_t i = 0; i < naddrs; i++) {
        if (i < MOAT_IFACE_ADDRS) {
            memcpy(iface.addrs[i], addrs[i].b, 16);
            iface.naddrs++;
            continue;
        }
        struct moat_ifaddr_key key = {.ifindex = idx};
        memcpy(key.addr, addrs[i].b, 16);
        uint32_t one = 1;
        if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.moat_ifaddrs), &key, &one, BPF_ANY))
            return -errno;
        iface.flags |= MOAT_IFF_MORE_ADDRS;
    }
    int err = iface_write(dp, idx, &iface);
    if (err)
        return err;
    err = tc_attach_prog(ifindex, BPF_TC_EGRESS, bpf_program__fd(dp->skel->progs.moat_to_workload));
    if (!err)
        err = tc_attach_prog(ifindex, BPF_TC_INGRESS,
                             bpf_program__fd(dp->skel->progs.moat_from_workload));
    return err ? err : remember_if(dp, ifname, ifindex);
}

static int detach_ebpf(struct datapath *dp, const char *ifname)
{
    for (size_t i = 0; i < dp->nifs; i++) {
        if (strcmp(dp->ifs[i].ifname, ifname) != 0)
            continue;
        int err = tc_detach_ifindex(dp->ifs[i].ifindex);
        forget_ifaddrs(dp, dp->ifs[i].ifindex);
        dp->ifs[i] = dp->ifs[--dp->nifs];
        return err;
    }
    return -ENOENT;
}

/* ---------- events and counters ---------- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void summary_event(struct datapath *dp, const uint8_t *addr, uint32_t cluster, uint32_t kind,
                          uint8_t applied, uint64_t held, uint64_t now)
{
    struct moat_event e = {.ts_ns = now,
                           .kind = MOAT_EV_SUMMARY,
                           .reason = kind,
                           .applied = applied,
                           .action = applied,
                           .cluster = cluster,
                           .held = held > UINT32_MAX ? UINT32_MAX : (uint32_t)held};
    if (addr)
        memcpy(e.saddr, addr, 16);
    if (dp->on_event)
        dp->on_event(dp->ctx, &e);
}

/*
 * Rate-limit buckets idle for SUMMARY_IDLE_NS whose CPUs held events back:
 * taken out of the map (so a count is reported once) and reported as
 * summary events; likewise what the node-wide bucket held per cluster.
 */
#define SUMMARY_EVERY_NS (1000000000ull)
#define SUMMARY_IDLE_NS  (2000000000ull)

static void report_held(struct datapath *dp)
{
    uint64_t now = mono_ns();
    if (now - dp->summaries_at < SUMMARY_EVERY_NS)
        return;
    dp->summaries_at = now;
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return;
    struct moat_evlimit_val *per = moat_calloc((size_t)ncpu, sizeof(*per));
    if (!per)
        return;
    int fd = bpf_map__fd(dp->skel->maps.moat_evlimit);
    struct moat_evlimit_key key, next;
    bool has = bpf_map_get_next_key(fd, NULL, &next) == 0;
    while (has) {
        key = next;
        has = bpf_map_get_next_key(fd, &key, &next) == 0;
        if (bpf_map_lookup_elem(fd, &key, per) != 0)
            continue;
        uint64_t held = 0, last = 0;
        for (int c = 0; c < ncpu; c++) {
            held += per[c].held;
            if (per[c].last_ns > last)
                last = per[c].last_ns;
        }
        if (held == 0 || now - last < SUMMARY_IDLE_NS)
            continue;
        if (bpf_map_lookup_and_delete_elem(fd, &key, per) != 0)
            continue;
        held = 0;
        for (int c = 0; c < ncpu; c++)
            held += per[c].held;
        if (held)
            summary_event(dp, key.addr, key.cluster, key.kind, key.applied, held, now);
    }
    int nfd = bpf_map__fd(dp->skel->maps.moat_evnode);
    for (uint32_t i = 1; i <= MOAT_ABI_MAX_CLUSTERS; i++) {
        if (bpf_map_lookup_elem(nfd, &i, per) != 0)
            continue;
        uint64_t held = 0;
        for (int c = 0; c < ncpu; c++)
            held += per[c].held;
        if (!held)
            continue;
        /* Per-CPU values are written whole: counts added meanwhile wait for the next scan. */
        for (int c = 0; c < ncpu; c++)
            per[c].held = 0;
        bpf_map_update_elem(nfd, &i, per, BPF_ANY);
        summary_event(dp, NULL, i - 1, MOAT_EV_POLICY, MOAT_ABI_BLOCK, held, now);
    }
    free(per);
}

/*
 * Bursts and scans that went quiet with attempts the datapath has not told
 * yet (it tells at most once a second while they go on): told now, as events
 * of their kind, so every attempt is counted in an alert.
 */
static void report_detection_tails(struct datapath *dp, uint64_t now)
{
    int fd = bpf_map__fd(dp->skel->maps.moat_bursts);
    struct moat_burst_key bk, bnext;
    struct moat_burst_val bv;
    bool has = bpf_map_get_next_key(fd, NULL, &bnext) == 0;
    while (has) {
        bk = bnext;
        has = bpf_map_get_next_key(fd, &bk, &bnext) == 0;
        if (bpf_map_lookup_elem(fd, &bk, &bv) != 0 || !bv.alerted || bv.reported >= bv.total ||
            now - bv.last_ns < SUMMARY_IDLE_NS)
            continue;
        struct moat_event e = {.ts_ns = bv.last_ns,
                               .kind = MOAT_EV_BRUTE_FORCE,
                               .cluster = bk.cluster,
                               .proto = IPPROTO_TCP,
                               .dport = bv.port,
                               .count = bv.total - bv.reported};
        memcpy(e.saddr, bk.src, 16);
        memcpy(e.daddr, bk.dst, 16);
        bv.reported = bv.total;
        bpf_map_update_elem(fd, &bk, &bv, BPF_EXIST);
        if (dp->on_event)
            dp->on_event(dp->ctx, &e);
    }
    fd = bpf_map__fd(dp->skel->maps.moat_scans);
    struct moat_scan_key sk, snext;
    struct moat_scan_val sv;
    has = bpf_map_get_next_key(fd, NULL, &snext) == 0;
    while (has) {
        sk = snext;
        has = bpf_map_get_next_key(fd, &sk, &snext) == 0;
        if (bpf_map_lookup_elem(fd, &sk, &sv) != 0 || !sv.reported_ns || sv.reported >= sv.total ||
            now - sv.last_ns < SUMMARY_IDLE_NS)
            continue;
        struct moat_event e = {.ts_ns = sv.last_ns,
                               .kind = MOAT_EV_PORT_SCAN,
                               .cluster = sk.cluster,
                               .count = sv.total - sv.reported};
        memcpy(e.saddr, sk.src, 16);
        sv.reported = sv.total;
        bpf_map_update_elem(fd, &sk, &sv, BPF_EXIST);
        if (dp->on_event)
            dp->on_event(dp->ctx, &e);
    }
}

static int poll_ebpf(struct datapath *dp, int timeout_ms)
{
    int n = ring_buffer__poll(dp->rb, timeout_ms);
    uint64_t before = dp->summaries_at;
    report_held(dp);
    if (dp->summaries_at != before)
        report_detection_tails(dp, dp->summaries_at);
    return n < 0 && n != -EINTR ? n : 0;
}

static int event_fd_ebpf(struct datapath *dp)
{
    return ring_buffer__epoll_fd(dp->rb);
}

/* Sums one counter slot over the CPUs into *c; `per` holds ncpu entries. */
static int read_slot(int fd, uint32_t slot, struct moat_rule_counters *per, int ncpu,
                     struct datapath_counter *c)
{
    if (bpf_map_lookup_elem(fd, &slot, per) < 0)
        return -errno;
    for (int cpu = 0; cpu < ncpu; cpu++) {
        c->flows += per[cpu].flows;
        c->packets += per[cpu].packets;
        c->bytes += per[cpu].bytes;
    }
    return 0;
}

/* Per-rule counters from the slot map and the counters array (rule 0: the default action). */
static int read_counters(int slots_fd, int counters_fd, struct datapath_counter **out, size_t *n)
{
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return -EINVAL;
    struct moat_rule_counters *per = moat_calloc((size_t)ncpu, sizeof(*per));
    struct datapath_counter *res = NULL;
    size_t cap = 0, count = 0;
    int err = per && moat_grow(&res, &cap, 1, sizeof(*res)) == 0 ? 0 : -ENOMEM;
    if (!err) {
        res[0] = (struct datapath_counter){.rule_id = 0};
        err = read_slot(counters_fd, MOAT_SLOT_DEFAULT, per, ncpu, &res[0]);
        count = 1;
    }
    uint32_t key, next, slot;
    bool has = !err && bpf_map_get_next_key(slots_fd, NULL, &next) == 0;
    while (has && !err) {
        key = next;
        has = bpf_map_get_next_key(slots_fd, &key, &next) == 0;
        if (bpf_map_lookup_elem(slots_fd, &key, &slot) < 0 || slot >= MOAT_COUNTER_SLOTS)
            continue;
        if (moat_grow(&res, &cap, count + 1, sizeof(*res)) < 0) {
            err = -ENOMEM;
            break;
        }
        res[count] = (struct datapath_counter){.rule_id = key};
        if (read_slot(counters_fd, slot, per, ncpu, &res[count]) == 0)
            count++;
    }
    free(per);
    if (err) {
        free(res);
        return err;
    }
    *out = res;
    *n = count;
    return 0;
}

static int counters_ebpf(const char *node, struct datapath_counter **out, size_t *n)
{
    if (!node_name_ok(node))
        return -EINVAL;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s/moat_rule_slot", PIN_BASE, node);
    int slots = bpf_obj_get(path);
    snprintf(path, sizeof(path), "%s/%s/moat_counters", PIN_BASE, node);
    int counters = bpf_obj_get(path);
    int err = slots < 0 || counters < 0 ? -ENOENT : read_counters(slots, counters, out, n);
    if (slots >= 0)
        close(slots);
    if (counters >= 0)
        close(counters);
    return err;
}

static int sum_percpu_array(int fd, uint32_t n, uint64_t *out)
{
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return -EINVAL;
    uint64_t *per = moat_calloc((size_t)ncpu, sizeof(*per));
    if (!per)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        out[i] = 0;
        if (bpf_map_lookup_elem(fd, &i, per) != 0)
            continue;
        for (int c = 0; c < ncpu; c++)
            out[i] += per[c];
    }
    free(per);
    return 0;
}

static int stats_ebpf(struct datapath *dp, struct datapath_stats *out)
{
    memset(out, 0, sizeof(*out));
    int err = sum_percpu_array(bpf_map__fd(dp->skel->maps.moat_drops), MOAT_DROP_MAX, out->drops);
    if (!err)
        err = sum_percpu_array(bpf_map__fd(dp->skel->maps.moat_evstats), MOAT_EVS_MAX, out->events);
    return err;
}

/* ---------- detections ---------- */

static int pinned(const char *node, const char *map)
{
    if (!node_name_ok(node))
        return -EINVAL;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s/%s", PIN_BASE, node, map);
    int fd = bpf_obj_get(path);
    return fd < 0 ? -ENOENT : fd;
}

/* Flows in progress are checked against quarantines and threat lists again. */
static void bump_depoch(int fd)
{
    uint32_t zero = 0, e = 0;
    bpf_map_lookup_elem(fd, &zero, &e);
    e++;
    bpf_map_update_elem(fd, &zero, &e, BPF_ANY);
}

static int set_threats_ebpf(struct datapath *dp, struct moat_threatlist *const *lists, size_t n)
{
    size_t total = 0;
    for (size_t c = 0; c < n; c++)
        total += lists[c] ? lists[c]->n : 0;
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
    int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "moat_threats", sizeof(struct moat_ti_key),
                            sizeof(struct moat_ti_val), total ? (uint32_t)total : 1, &opts);
    if (fd < 0)
        return -errno;
    int err = 0;
    for (size_t c = 0; c < n && !err; c++)
        for (size_t i = 0; lists[c] && i < lists[c]->n && !err; i++) {
            const struct moat_threat *t = &lists[c]->items[i];
            struct moat_ti_key k = {.prefixlen = 32 + t->prefix.len, .cluster = (uint32_t)c};
            struct moat_ti_val v = {.label = t->label, .plen = t->prefix.len};
            memcpy(k.addr, t->prefix.addr.b, 16);
            memcpy(v.addr, t->prefix.addr.b, 16);
            if (bpf_map_update_elem(fd, &k, &v, BPF_ANY) < 0)
                err = -errno;
        }
    uint32_t zero = 0;
    struct moat_cfg cfg = {0};
    int cfd = bpf_map__fd(dp->skel->maps.moat_cfg);
    if (!err && bpf_map_lookup_elem(cfd, &zero, &cfg) < 0)
        err = -errno;
    uint32_t gen = cfg.ti_generation + 1, slot;
    if (gen == 0)
        gen = 2;
    slot = gen & 1;
    if (!err &&
        bpf_map_update_elem(bpf_map__fd(dp->skel->maps.moat_ti_slots), &slot, &fd, BPF_ANY) < 0)
        err = -errno;
    if (!err) {
        cfg.ti_generation = total ? gen : 0; /* 0: no list, no lookup per flow */
        if (bpf_map_update_elem(cfd, &zero, &cfg, BPF_ANY) < 0)
            err = -errno;
    }
    close(fd);
    if (!err)
        bump_depoch(bpf_map__fd(dp->skel->maps.moat_depoch));
    return err;
}

static int quarantines_ebpf(const char *node, struct datapath_quarantine **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int fd = pinned(node, "moat_quarantine");
    if (fd < 0)
        return fd;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    struct datapath_quarantine *res = NULL;
    size_t cap = 0, count = 0;
    struct moat_quarantine_key k, next;
    struct moat_quarantine_val v;
    int err = 0;
    bool has = bpf_map_get_next_key(fd, NULL, &next) == 0;
    while (has && !err) {
        k = next;
        has = bpf_map_get_next_key(fd, &k, &next) == 0;
        if (bpf_map_lookup_elem(fd, &k, &v) != 0 || v.until_ns <= now)
            continue;
        if (moat_grow(&res, &cap, count + 1, sizeof(*res)) < 0) {
            err = -ENOMEM;
            break;
        }
        struct datapath_quarantine q = {.cluster = k.cluster,
                                        .reason = v.reason,
                                        .secs = v.secs,
                                        .since_ns = v.since_ns,
                                        .until_ns = v.until_ns,
                                        .dropped = v.dropped};
        memcpy(q.addr.b, k.addr, 16);
        res[count++] = q;
    }
    close(fd);
    if (err) {
        free(res);
        return err;
    }
    *out = res;
    *n = count;
    return 0;
}

static int quarantine_ebpf(const char *node, const struct datapath_quarantine *q)
{
    int fd = pinned(node, "moat_quarantine");
    if (fd < 0)
        return fd;
    struct moat_quarantine_key k = {.cluster = q->cluster};
    memcpy(k.addr, q->addr.b, 16);
    struct moat_quarantine_val v = {.until_ns = q->until_ns,
                                    .since_ns = q->since_ns,
                                    .reason = q->reason,
                                    .secs = q->secs,
                                    .dropped = q->dropped};
    int err = bpf_map_update_elem(fd, &k, &v, BPF_ANY) < 0 ? -errno : 0;
    close(fd);
    /* established flows of the source are cut at their next packet */
    int efd = err ? -1 : pinned(node, "moat_depoch");
    if (efd >= 0) {
        bump_depoch(efd);
        close(efd);
    }
    return err;
}

static int release_ebpf(const char *node, uint32_t cluster, const struct moat_addr *addr)
{
    int fd = pinned(node, "moat_quarantine");
    if (fd < 0)
        return fd;
    struct moat_quarantine_key k = {.cluster = cluster};
    memcpy(k.addr, addr->b, 16);
    int err = bpf_map_delete_elem(fd, &k) < 0 ? -ENOENT : 0;
    close(fd);
    /* what the quarantine cut is judged again (its flows come back as new ones) */
    int efd = pinned(node, "moat_depoch");
    if (efd >= 0) {
        bump_depoch(efd);
        close(efd);
    }
    return err;
}

static int prog_fd_ebpf(struct datapath *dp, bool to_workload)
{
    return bpf_program__fd(to_workload ? dp->skel->progs.moat_to_workload
                                       : dp->skel->progs.moat_from_workload);
}

const struct datapath_ops datapath_ebpf = {
    .name = "ebpf",
    .probe = probe_ebpf,
    .open = open_ebpf,
    .apply = apply_ebpf,
    .update = update_ebpf,
    .attach = attach_ebpf,
    .detach = detach_ebpf,
    .poll = poll_ebpf,
    .event_fd = event_fd_ebpf,
    .counters = counters_ebpf,
    .stats = stats_ebpf,
    .set_threats = set_threats_ebpf,
    .quarantines = quarantines_ebpf,
    .quarantine = quarantine_ebpf,
    .release = release_ebpf,
    .generation = read_generation,
    .prog_fd = prog_fd_ebpf,
    .close = close_ebpf,
    .unpin = unpin_ebpf,
};
