/*
 * dp_ebpf: the eBPF datapath backend (see datapath.h and bpf/moat_tc.bpf.c).
 *
 * Maps are pinned by name under /sys/fs/bpf/moat/<node>/ and reused when
 * moatd starts again; tc filters keep running between two moatd processes.
 * A policy update builds fresh inner maps (addresses, rows, intervals,
 * clusters), puts them in the idle slot of the outer maps and then bumps the
 * generation, whose low bit selects the slot: one atomic step.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
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
};

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

static void forget_ifaddrs(struct datapath *dp, int ifindex)
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
    uint32_t idx = (uint32_t)ifindex;
    bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.moat_ifaces), &idx);
}

/* Detaches from every interface the maps know, including a previous moatd's. */
static void detach_all(struct datapath *dp)
{
    int fd = bpf_map__fd(dp->skel->maps.moat_ifaces);
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
        bpf_object__unpin_maps(dp->skel->obj, dp->pin_dir);
        rmdir(dp->pin_dir);
        rmdir(PIN_BASE);
    }
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

static uint32_t read_generation(struct datapath *dp)
{
    uint32_t zero = 0;
    struct moat_cfg cfg = {0};
    bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.moat_cfg), &zero, &cfg);
    return cfg.generation;
}

static int fill_addrs(const struct moat_tables *t)
{
    size_t n = tables_addr_count(t);
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
    int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "moat_addr", sizeof(struct moat_addr_key),
                            sizeof(struct moat_addr_val), (uint32_t)n, &opts);
    if (fd < 0)
        return -errno;
    for (size_t i = 0; i < n; i++) {
        struct moat_addr_entry e = tables_addr_entry(t, i);
        struct moat_ident_info info = tables_identity(t, e.identity);
        struct moat_addr_key key = {.prefixlen = e.prefix.len};
        memcpy(key.addr, e.prefix.addr.b, 16);
        struct moat_addr_val val = {
            .identity = e.identity,
            .kind = (uint16_t)info.kind,
            .cluster = info.kind == MOAT_IDENT_WORKLOAD ? (uint16_t)info.cluster : 0};
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

static int fill_rows(const struct moat_tables *t, int *rows_fd, int *ivals_fd)
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
        *rows_fd =
            bpf_map_create(BPF_MAP_TYPE_HASH, "moat_rows", sizeof(struct moat_row_key),
                           sizeof(struct moat_row_val), b.nrows ? (uint32_t)b.nrows : 1, NULL);
        LIBBPF_OPTS(bpf_map_create_opts, aopts, .map_flags = BPF_F_INNER_MAP);
        *ivals_fd =
            bpf_map_create(BPF_MAP_TYPE_ARRAY, "moat_ivals", sizeof(uint32_t),
                           sizeof(struct moat_interval), b.nivals ? (uint32_t)b.nivals : 1, &aopts);
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

static int fill_clusters(const struct moat_policy *p)
{
    if (p->nclusters > MOAT_ABI_MAX_CLUSTERS)
        return -E2BIG;
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "moat_clusters", sizeof(uint32_t),
                            sizeof(struct moat_cluster_cfg), MOAT_ABI_MAX_CLUSTERS, NULL);
    if (fd < 0)
        return -errno;
    for (uint32_t i = 0; i < p->nclusters; i++) {
        struct moat_cluster_cfg cfg = {.flags = cluster_flags(&p->clusters[i]),
                                       .default_action = (uint8_t)p->clusters[i].default_action};
        if (bpf_map_update_elem(fd, &i, &cfg, BPF_ANY) < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
    }
    return fd;
}

static int apply_ebpf(struct datapath *dp, const struct moat_policy *p, const struct moat_tables *t,
                      uint32_t *generation)
{
    uint32_t gen = read_generation(dp) + 1;
    if (gen == 0)
        gen = 2; /* 0 means "no policy"; 2 keeps the slot alternating */
    uint32_t slot = gen & 1;
    int fds[4] = {-1, -1, -1, -1};
    int err = 0;
    fds[0] = fill_addrs(t);
    if (fds[0] < 0)
        err = fds[0];
    if (!err)
        err = fill_rows(t, &fds[1], &fds[2]);
    if (!err && (fds[3] = fill_clusters(p)) < 0)
        err = fds[3];
    struct bpf_map *outer[4] = {dp->skel->maps.moat_addr_slots, dp->skel->maps.moat_rows_slots,
                                dp->skel->maps.moat_ivals_slots, dp->skel->maps.moat_cluster_slots};
    for (int i = 0; i < 4 && !err; i++)
        if (bpf_map_update_elem(bpf_map__fd(outer[i]), &slot, &fds[i], BPF_ANY) < 0)
            err = -errno;
    if (!err) {
        /* The switch: one 4-byte write that every later packet reads first. */
        uint32_t zero = 0;
        struct moat_cfg cfg = {.generation = gen};
        if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.moat_cfg), &zero, &cfg, BPF_ANY) < 0)
            err = -errno;
    }
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (!err)
        *generation = gen;
    return err;
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
    forget_ifaddrs(dp, ifindex); /* the workload's addresses may have changed */
    for (size_t i = 0; i < naddrs; i++) {
        struct moat_ifaddr_key key = {.ifindex = (uint32_t)ifindex};
        memcpy(key.addr, addrs[i].b, 16);
        uint32_t one = 1;
        if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.moat_ifaddrs), &key, &one, BPF_ANY))
            return -errno;
    }
    struct moat_iface iface = {.cluster = cluster};
    uint32_t idx = (uint32_t)ifindex;
    if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.moat_ifaces), &idx, &iface, BPF_ANY))
        return -errno;
    int err =
        tc_attach_prog(ifindex, BPF_TC_EGRESS, bpf_program__fd(dp->skel->progs.moat_to_workload));
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

static int poll_ebpf(struct datapath *dp, int timeout_ms)
{
    int n = ring_buffer__poll(dp->rb, timeout_ms);
    return n < 0 && n != -EINTR ? n : 0;
}

static int event_fd_ebpf(struct datapath *dp)
{
    return ring_buffer__epoll_fd(dp->rb);
}

static int counters_ebpf(struct datapath *dp, struct datapath_counter **out, size_t *n)
{
    int fd = bpf_map__fd(dp->skel->maps.moat_counters);
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return -EINVAL;
    struct moat_rule_counters *per = moat_calloc((size_t)ncpu, sizeof(*per));
    struct datapath_counter *res = NULL;
    size_t cap = 0, count = 0;
    uint32_t key, next;
    bool has = per && bpf_map_get_next_key(fd, NULL, &next) == 0;
    int err = per ? 0 : -ENOMEM;
    while (has && !err) {
        key = next;
        has = bpf_map_get_next_key(fd, &key, &next) == 0;
        if (bpf_map_lookup_elem(fd, &key, per) < 0)
            continue;
        if (moat_grow(&res, &cap, count + 1, sizeof(*res)) < 0) {
            err = -ENOMEM;
            break;
        }
        struct datapath_counter c = {.rule_id = key};
        for (int cpu = 0; cpu < ncpu; cpu++) {
            c.flows += per[cpu].flows;
            c.packets += per[cpu].packets;
            c.bytes += per[cpu].bytes;
        }
        res[count++] = c;
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
    .attach = attach_ebpf,
    .detach = detach_ebpf,
    .poll = poll_ebpf,
    .event_fd = event_fd_ebpf,
    .counters = counters_ebpf,
    .generation = read_generation,
    .prog_fd = prog_fd_ebpf,
    .close = close_ebpf,
    .unpin = unpin_ebpf,
};
