/*
 * bench_datapath: per-packet cost of the eBPF datapath, measured by the
 * kernel with BPF_PROG_TEST_RUN, at several rule counts in one process, in
 * interleaved rounds (so a noisy moment of the machine hits every config).
 *
 * Usage: bench_datapath [--rules N,N,...] [--detections default,off,all]
 *                       [--threats N,N,...] [--workloads N] [--rounds N]  (root)
 * For each rule count (and detection setting, and threat-list size with
 * `all`), a synthetic cluster (bench/synth.h) loaded into its own datapath,
 * with 64 of its workloads attached to interfaces (veths of a private
 * network namespace) and measured on their to-workload hook. Detections:
 * `default` as SPEC §6 (no resolvers or threat list known), `off` all five
 * switched off, `all` all five on (alert; brute-force ports 22, 3306, 5432;
 * a workload as the resolver; a threat list of --threats prefixes, 10,000 by
 * default, near the workloads' addresses but not on them):
 *   new_flow_ns:    20,000 distinct new flows (SYNs from any workload to an
 *                   attached one), each judged in full; the mean of one test
 *                   run each (it includes the test-run call's own overhead);
 *   conn_ns:        20,000 new connections of known clients: SYNs from 64
 *                   workloads to one attached workload's port 80, new source
 *                   ports each (the pattern of a connection-rate test);
 *   established_ns: one established flow's ACK repeated 200,000 times;
 *   reply_ns:       its reply (the from-workload hook), likewise.
 * Prints `raw round=R rules=N ...` per round and config, then one
 * `rules=N ... (medians)` line per config, the ratio of the new-flow cost at
 * the largest rule count to the smallest, the programs' verified instruction
 * counts, and an eviction measure: 10,000 established flows, then a flood of
 * 1,000,000 distinct blocked SYNs; how many established entries survive.
 * With `all`, also dns_ns (a UDP query to the resolver and its answer, each
 * checked, one test run each: per packet) and, once per config, the threat
 * list's parse and load time and its kernel memory (the trie's memlock).
 */
#include "../tests/bpf/frame.h"
#include "compile.h"
#include "datapath.h"
#include "loader.h"
#include "mem.h"
#include "synth.h"
#include "threatlist.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ATTACHED  64
#define NEW_FLOWS 20000
#define EST_REPS  200000
#define MAX_CONFS 12
#define MAX_ROUND 32
#define DNS_PAIRS 2000

enum det_mode { DET_DEFAULT, DET_OFF, DET_ALL };
static const char *const det_names[] = {"default", "off", "all"};

struct conf {
    int rules;
    enum det_mode det;
    int threats;                       /* prefixes listed (DET_ALL) */
    double parse_ms, load_ms, mem_kib; /* the threat list's */
    double dns_ns[MAX_ROUND];
    struct moat_policy *p;
    struct moat_tables *t;
    struct datapath *dp;
    char node[32];
    int to, from;
    int ifindex[ATTACHED];
    uint32_t wl[ATTACHED]; /* workload index attached to ifindex[i] */
    double new_ns[MAX_ROUND], conn_ns[MAX_ROUND], est_ns[MAX_ROUND], reply_ns[MAX_ROUND];
    int dropped;
};

static const uint8_t mac_a[6] = {2, 0, 0, 0, 0, 1}, mac_b[6] = {2, 0, 0, 0, 0, 2};

static void addr_text(const struct moat_addr *a, char *buf)
{
    addr_format(a, buf, MOAT_ADDR_STRLEN);
}

static void tcp_frame(struct frame *f, const struct moat_addr *src, const struct moat_addr *dst,
                      uint16_t sport, uint16_t dport, uint8_t flags, bool outbound)
{
    char s[MOAT_ADDR_STRLEN], d[MOAT_ADDR_STRLEN];
    addr_text(src, s);
    addr_text(dst, d);
    frame_eth(f, outbound ? mac_b : mac_a, outbound ? mac_a : mac_b, ETH_P_IP);
    frame_ip4(f, s, d, IPPROTO_TCP, 0, 0);
    frame_tcp(f, sport, dport, flags);
    frame_done(f);
}

static int run(int prog, int ifindex, const struct frame *f, int repeat, uint32_t *ns,
               uint32_t *verdict)
{
    struct __sk_buff ctx = {0};
    ctx.ifindex = (uint32_t)ifindex;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f->b, .data_size_in = (uint32_t)f->len,
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = repeat);
    int err = bpf_prog_test_run_opts(prog, &opts);
    *ns = opts.duration;
    if (verdict)
        *verdict = opts.retval;
    return err;
}

/* A DNS query for `www.bench.` (A) with `txid`, or its answer from the resolver. */
static void dns_frame(struct frame *f, const struct moat_addr *wl, const struct moat_addr *res,
                      uint16_t txid, bool answer)
{
    char w[MOAT_ADDR_STRLEN], r[MOAT_ADDR_STRLEN];
    addr_text(wl, w);
    addr_text(res, r);
    static const uint8_t question[] = {3, 'w', 'w', 'w', 5, 'b', 'e', 'n', 'c', 'h', 0, 0, 1, 0, 1};
    uint8_t head[12] = {(uint8_t)(txid >> 8),
                        (uint8_t)txid,
                        answer ? 0x81 : 0x01,
                        answer ? 0x80 : 0,
                        0,
                        1,
                        0,
                        answer ? 1 : 0,
                        0,
                        0,
                        0,
                        0};
    static const uint8_t record[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 9, 9, 9};
    frame_eth(f, answer ? mac_a : mac_b, answer ? mac_b : mac_a, ETH_P_IP);
    frame_ip4(f, answer ? r : w, answer ? w : r, IPPROTO_UDP, 0, 0);
    frame_udp(f, answer ? 53 : 40000, answer ? 40000 : 53);
    frame_data(f, head, sizeof(head));
    frame_data(f, question, sizeof(question));
    if (answer)
        frame_data(f, record, sizeof(record));
    frame_done(f);
}

/* DNS_PAIRS queries to the resolver and their answers: the mean per packet, both checked. */
static int measure_dns(struct conf *c, int round)
{
    struct moat_addr res;
    addr_parse("10.100.0.5", &res);
    const struct moat_addr *wl = &c->p->workloads[c->wl[0]].addrs[0];
    struct frame q, a;
    uint64_t total = 0;
    for (int i = 0; i < DNS_PAIRS; i++) {
        uint16_t txid = (uint16_t)(round * DNS_PAIRS + i);
        dns_frame(&q, wl, &res, txid, false);
        dns_frame(&a, wl, &res, txid, true);
        uint32_t ns1, ns2, v;
        if (run(c->from, c->ifindex[0], &q, 1, &ns1, NULL) ||
            run(c->to, c->ifindex[0], &a, 1, &ns2, &v))
            return -1;
        if (v == TC_ACT_SHOT) {
            fprintf(stderr, "bench_datapath: a matching DNS answer was dropped\n");
            return -1;
        }
        total += ns1 + ns2;
    }
    c->dns_ns[round] = (double)total / (2.0 * DNS_PAIRS);
    return 0;
}

static int make_ifaces(void)
{
    for (int i = 0; i < ATTACHED; i++) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "ip link add b%d type veth peer name b%dp && ip link set b%d up",
                 i, i, i);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

static const char det_off[] = "detections:\n  brute_force: {enabled: false}\n"
                              "  port_scan: {enabled: false}\n  dns_hijack: {enabled: false}\n"
                              "  spoofing: {enabled: false}\n  threat_intel: {enabled: false}\n";
/* the resolver: workload 5 (10.100.0.5), not attached to the measured interface 0 */
static const char det_all[] =
    "detections:\n  brute_force: {enabled: true, action: alert, ports: [22, 3306, 5432]}\n"
    "  port_scan: {enabled: true, action: alert}\n"
    "  dns_hijack: {enabled: true, action: alert, resolvers: [10.100.0.5]}\n"
    "  spoofing: {enabled: true, action: block}\n  threat_intel: {enabled: true, action: alert}\n";

/* The synthetic cluster's text with the config's detections in its Cluster document. */
static char *conf_text(const struct conf *c, int nwl)
{
    size_t len;
    char *synth = synth_policy(nwl, c->rules, 500, &len);
    if (!synth)
        return NULL;
    static const char head[] = "kind: Cluster\nname: bench\ndefense: on\n";
    const char *det = c->det == DET_OFF ? det_off : c->det == DET_ALL ? det_all : "";
    char *out = strncmp(synth, head, strlen(head)) == 0
                    ? moat_asprintf("%s%s%s", head, det, synth + strlen(head))
                    : NULL;
    free(synth);
    return out;
}

/*
 * `n` prefixes near the workloads (10.100.0.0/16) but not on them: /32s and
 * /24s elsewhere in 10/8, /128s and /64s in 2001:db8::/32.
 */
static char *threat_text(int n, size_t *len)
{
    size_t cap = (size_t)n * 48 + 64, at = 0;
    char *t = moat_calloc(cap, 1);
    if (!t)
        return NULL;
    uint64_t r = 7;
    for (int i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t x = (uint32_t)(r >> 32);
        uint8_t b1 = (uint8_t)(x >> 16), b2 = (uint8_t)(x >> 8), b3 = (uint8_t)x;
        if (b1 == 100)
            b1 = 101;
        int k = (int)(r >> 20) & 3;
        if (k == 0)
            at += (size_t)snprintf(t + at, cap - at, "10.%u.%u.%u/32 c2\n", b1, b2, b3);
        else if (k == 1)
            at += (size_t)snprintf(t + at, cap - at, "10.%u.%u.0/24 scanner\n", b1, b2);
        else if (k == 2)
            at +=
                (size_t)snprintf(t + at, cap - at, "2001:db8:%x::%x/128 c2\n", x >> 16, x & 0xffff);
        else
            at += (size_t)snprintf(t + at, cap - at, "2001:db8:%x:%x::/64 botnet\n", x >> 16,
                                   (x & 0xffff) | 1);
    }
    *len = at;
    return t;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The kernel memory of the threat trie in force (its memlock in fdinfo), KiB; <0 if unknown. */
static double threat_mem_kib(const char *node)
{
    char path[160];
    snprintf(path, sizeof(path), "/sys/fs/bpf/moat/%s/moat_cfg", node);
    int cfd = bpf_obj_get(path);
    snprintf(path, sizeof(path), "/sys/fs/bpf/moat/%s/moat_ti_slots", node);
    int sfd = bpf_obj_get(path);
    struct moat_cfg cfg = {0};
    uint32_t zero = 0, id = 0;
    double kib = -1;
    if (cfd >= 0 && sfd >= 0 && bpf_map_lookup_elem(cfd, &zero, &cfg) == 0) {
        uint32_t slot = cfg.ti_generation & 1;
        int mfd = bpf_map_lookup_elem(sfd, &slot, &id) == 0 ? bpf_map_get_fd_by_id(id) : -1;
        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", mfd);
        FILE *f = mfd >= 0 ? fopen(path, "r") : NULL;
        char line[128];
        while (f && fgets(line, sizeof(line), f))
            if (strncmp(line, "memlock:", 8) == 0)
                kib = strtod(line + 8, NULL) / 1024;
        if (f)
            fclose(f);
        if (mfd >= 0)
            close(mfd);
    }
    if (cfd >= 0)
        close(cfd);
    if (sfd >= 0)
        close(sfd);
    return kib;
}

/* Parses and installs the config's threat list, timing both. */
static int conf_threats(struct conf *c)
{
    size_t len;
    char *text = threat_text(c->threats, &len);
    if (!text)
        return -1;
    struct moat_threatlist *tl = NULL;
    struct moat_diags d;
    diags_init(&d);
    double t0 = now_ms();
    int err = threatlist_parse(text, len, "bench", &tl, &d);
    double t1 = now_ms();
    for (size_t i = 0; err && i < d.count && i < 3; i++)
        fprintf(stderr, "bench_datapath: %s\n", d.items[i].text);
    diags_clear(&d);
    free(text);
    if (err)
        return -1;
    struct moat_threatlist *lists[1] = {tl};
    err = datapath_ebpf.set_threats(c->dp, lists, 1);
    double t2 = now_ms();
    c->parse_ms = t1 - t0;
    c->load_ms = t2 - t1;
    c->mem_kib = threat_mem_kib(c->node);
    threatlist_free(tl);
    return err;
}

static int conf_load(struct conf *c, int nwl)
{
    /* the measured established flows go to workload 0 (ns0/app0) on ports 80 and 9 */
    char *synth = conf_text(c, nwl);
    if (!synth)
        return -1;
    char *text = moat_asprintf("%s---\nkind: NetworkObject\nname: bench-dst\nnamespace: ns0\n"
                               "app: app0\n---\nkind: DefenseRule\ncluster: bench\nname: "
                               "bench-allow\nsource: any\ndestinations: [{object: bench-dst, "
                               "ports: '9,80'}]\nprotocol: tcp\naction: allow\npriority: 1\n"
                               "---\nkind: NetworkObject\nname: bench-dns\nnamespace: ns0\n"
                               "app: app5\n---\nkind: DefenseRule\ncluster: bench\nname: "
                               "bench-dns\nsource: any\ndestinations: [{object: bench-dns, "
                               "ports: '53'}]\nprotocol: udp\naction: allow\npriority: 1\n",
                               synth);
    free(synth);
    if (!text)
        return -1;
    size_t len = strlen(text);
    struct moat_diags d;
    diags_init(&d);
    int err =
        policy_load_text(&c->p, text, len, "bench.yaml", &d) || policy_compile(c->p, NULL, &c->t);
    for (size_t i = 0; err && i < d.count; i++)
        fprintf(stderr, "bench_datapath: %s\n", d.items[i].text);
    diags_clear(&d);
    free(text);
    if (err)
        return -1;
    snprintf(c->node, sizeof(c->node), "bench-%d-%d-%d-%d", (int)getpid(), c->rules, (int)c->det,
             c->threats);
    uint32_t gen;
    err = datapath_ebpf.open(c->node, NULL, NULL, &c->dp);
    if (!err)
        err = datapath_ebpf.apply(c->dp, c->p, c->t, &gen);
    if (err) {
        fprintf(stderr, "bench_datapath: datapath: %s\n", strerror(-err));
        return -1;
    }
    c->to = datapath_ebpf.prog_fd(c->dp, true);
    c->from = datapath_ebpf.prog_fd(c->dp, false);
    err = c->det == DET_ALL && c->threats ? conf_threats(c) : 0;
    if (err)
        fprintf(stderr, "bench_datapath: threat list: %s\n", strerror(err < 0 ? -err : EINVAL));
    return err ? -1 : 0;
}

/* Attaches the 64 interfaces to this config's first workloads (one datapath at a time). */
static int conf_attach(struct conf *c)
{
    for (int i = 0; i < ATTACHED; i++) {
        char name[16];
        snprintf(name, sizeof(name), "b%d", i);
        c->ifindex[i] = (int)if_nametoindex(name);
        c->wl[i] = (uint32_t)(i % c->p->nworkloads);
        const struct moat_workload *w = &c->p->workloads[c->wl[i]];
        if (datapath_ebpf.attach(c->dp, name, w->cluster, w->addrs, w->naddrs))
            return -1;
    }
    return 0;
}

static void conf_detach(struct conf *c)
{
    for (int i = 0; i < ATTACHED; i++) {
        char name[16];
        snprintf(name, sizeof(name), "b%d", i);
        datapath_ebpf.detach(c->dp, name);
    }
}

static uint64_t rng = 1;
static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((rng >> 33) % n);
}

static int measure(struct conf *c, int round)
{
    static const uint16_t ports[] = {80, 443, 8080, 5432, 6379, 53, 9000, 22, 3306, 15000};
    if (conf_attach(c) < 0)
        return -1;
    struct frame f;
    uint64_t total = 0;
    c->dropped = 0;
    rng = (uint64_t)round + 1; /* the same flows for every config of a round */
    for (int i = 0; i < NEW_FLOWS; i++) {
        int k = (int)rnd(ATTACHED);
        const struct moat_workload *src = &c->p->workloads[rnd((uint32_t)c->p->nworkloads)];
        const struct moat_workload *dst = &c->p->workloads[c->wl[k]];
        tcp_frame(&f, &src->addrs[0], &dst->addrs[0],
                  (uint16_t)(1024 + (round * NEW_FLOWS + i) % 60000), ports[rnd(10)], 0x02, false);
        uint32_t ns, v;
        if (run(c->to, c->ifindex[k], &f, 1, &ns, &v))
            return -1;
        c->dropped += v == TC_ACT_SHOT;
        total += ns;
    }
    c->new_ns[round] = (double)total / NEW_FLOWS;
    total = 0;
    for (int i = 0; i < NEW_FLOWS; i++) {
        const struct moat_workload *src = &c->p->workloads[c->wl[1 + i % (ATTACHED - 1)]];
        tcp_frame(&f, &src->addrs[0], &c->p->workloads[c->wl[0]].addrs[0],
                  (uint16_t)(1024 + (round * NEW_FLOWS + i) % 60000), 80, 0x02, false);
        uint32_t ns;
        if (run(c->to, c->ifindex[0], &f, 1, &ns, NULL))
            return -1;
        total += ns;
    }
    c->conn_ns[round] = (double)total / NEW_FLOWS;
    /* one established flow: handshake, then its ACK and its reply repeated */
    const struct moat_workload *a = &c->p->workloads[c->wl[1]], *b = &c->p->workloads[c->wl[0]];
    struct frame syn, synack, ack, reply;
    uint16_t sport = (uint16_t)(61000 + round);
    tcp_frame(&syn, &a->addrs[0], &b->addrs[0], sport, 80, 0x02, false);
    tcp_frame(&synack, &b->addrs[0], &a->addrs[0], 80, sport, 0x12, true);
    tcp_frame(&ack, &a->addrs[0], &b->addrs[0], sport, 80, 0x10, false);
    tcp_frame(&reply, &b->addrs[0], &a->addrs[0], 80, sport, 0x10, true);
    uint32_t ns;
    run(c->to, c->ifindex[0], &syn, 1, &ns, NULL);
    run(c->from, c->ifindex[0], &synack, 1, &ns, NULL);
    run(c->to, c->ifindex[0], &ack, 1, &ns, NULL);
    if (run(c->to, c->ifindex[0], &ack, EST_REPS, &ns, NULL))
        return -1;
    c->est_ns[round] = ns;
    if (run(c->from, c->ifindex[0], &reply, EST_REPS, &ns, NULL))
        return -1;
    c->reply_ns[round] = ns;
    if (c->det == DET_ALL && measure_dns(c, round) < 0)
        return -1;
    conf_detach(c);
    return 0;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double median(const double *v, int n)
{
    double s[MAX_ROUND];
    memcpy(s, v, (size_t)n * sizeof(*v));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static uint32_t verified_insns(int prog)
{
    struct bpf_prog_info info;
    uint32_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(prog, &info, &len) != 0)
        return 0;
    return info.verified_insns;
}

static size_t count_entries(int fd)
{
    struct moat_ct_key key, next;
    size_t n = 0;
    bool has = bpf_map_get_next_key(fd, NULL, &next) == 0;
    while (has) {
        key = next;
        n++;
        has = bpf_map_get_next_key(fd, &key, &next) == 0;
    }
    return n;
}

/* 10,000 established flows, then 1,000,000 distinct blocked SYNs: how many entries survive. */
static int eviction(struct conf *c)
{
    if (conf_attach(c) < 0)
        return -1;
    char path[128];
    snprintf(path, sizeof(path), "/sys/fs/bpf/moat/%s/moat_ct_est", c->node);
    int est = bpf_obj_get(path);
    if (est < 0)
        return -1;
    const struct moat_workload *a = &c->p->workloads[c->wl[1]], *b = &c->p->workloads[c->wl[0]];
    struct frame f;
    uint32_t ns;
    size_t before = count_entries(est);
    for (int i = 0; i < 10000; i++) {
        uint16_t sport = (uint16_t)(1024 + i);
        tcp_frame(&f, &a->addrs[0], &b->addrs[0], sport, 9, 0x02, false);
        run(c->to, c->ifindex[0], &f, 1, &ns, NULL);
        tcp_frame(&f, &b->addrs[0], &a->addrs[0], 9, sport, 0x12, true);
        run(c->from, c->ifindex[0], &f, 1, &ns, NULL);
    }
    size_t made = count_entries(est) - before;
    /* the flood: sources that no rule lets in (outside addresses), distinct tuples */
    struct moat_addr out;
    addr_parse("198.51.100.1", &out);
    tcp_frame(&f, &out, &b->addrs[0], 1, 1, 0x02, false);
    for (uint32_t i = 0; i < 1000000; i++) {
        f.b[29] = (uint8_t)(i >> 16); /* the source address's last two bytes */
        f.b[34] = (uint8_t)(i >> 8);
        f.b[35] = (uint8_t)i;
        run(c->to, c->ifindex[0], &f, 1, &ns, NULL);
    }
    size_t after = count_entries(est) - before;
    printf("eviction: %zu established flows, then 1000000 distinct blocked SYNs: %zu of them "
           "still established\n",
           made, after);
    close(est);
    conf_detach(c);
    return 0;
}

static int parse_det(const char *s, enum det_mode *out, int *n)
{
    for (*n = 0; *s && *n < 3;) {
        size_t len = strcspn(s, ",");
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (strlen(det_names[i]) == len && strncmp(s, det_names[i], len) == 0)
                k = i;
        if (k < 0)
            return -1;
        out[(*n)++] = (enum det_mode)k;
        s += len + (s[len] == ',');
    }
    return *n ? 0 : -1;
}

static int parse_ints(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        out[n++] = atoi(s);
        s += strcspn(s, ",");
        s += *s == ',';
    }
    return n;
}

static void print_conf(const struct conf *c, const char *prefix, double new_ns, double conn_ns,
                       double est_ns, double reply_ns, double dns_ns)
{
    printf("%srules=%d detections=%s threats=%d new_flow_ns=%.0f new_conn_ns=%.0f "
           "established_ns=%.0f reply_ns=%.0f",
           prefix, c->rules, det_names[c->det], c->det == DET_ALL ? c->threats : 0, new_ns, conn_ns,
           est_ns, reply_ns);
    if (c->det == DET_ALL)
        printf(" dns_ns=%.0f", dns_ns);
}

int main(int argc, char **argv)
{
    static struct conf confs[MAX_CONFS];
    int nconfs = 0, nwl = 1000, rounds = 5;
    const char *rules = "10,1000,10000", *dets = "default", *threats = "10000";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rules") == 0)
            rules = argv[i + 1];
        else if (strcmp(argv[i], "--workloads") == 0)
            nwl = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--detections") == 0)
            dets = argv[i + 1];
        else if (strcmp(argv[i], "--threats") == 0)
            threats = argv[i + 1];
    }
    int nrules, ndet, nthreats, rule_counts[MAX_CONFS], threat_counts[MAX_CONFS];
    enum det_mode det_modes[3];
    nrules = parse_ints(rules, rule_counts, MAX_CONFS);
    nthreats = parse_ints(threats, threat_counts, MAX_CONFS);
    if (rounds < 1 || rounds > MAX_ROUND || nwl < ATTACHED || nrules < 1 || nthreats < 1 ||
        parse_det(dets, det_modes, &ndet) < 0) {
        fprintf(stderr, "usage: bench_datapath [--rules N,N,...] [--detections "
                        "default,off,all] [--threats N,N,...] [--workloads N>=64] "
                        "[--rounds 1..32]\n");
        return 2;
    }
    for (int r = 0; r < nrules; r++)
        for (int d = 0; d < ndet; d++)
            for (int t = 0; t < (det_modes[d] == DET_ALL ? nthreats : 1); t++) {
                if (nconfs == MAX_CONFS) {
                    fprintf(stderr, "bench_datapath: at most %d configurations\n", MAX_CONFS);
                    return 2;
                }
                confs[nconfs++] = (struct conf){
                    .rules = rule_counts[r], .det = det_modes[d], .threats = threat_counts[t]};
            }
    if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0 || system("ip link set lo up") != 0) {
        fprintf(stderr, "bench_datapath: needs root\n");
        return 1;
    }
    libbpf_set_print(NULL);
    if (make_ifaces() < 0)
        return 1;
    for (int i = 0; i < nconfs; i++)
        if (conf_load(&confs[i], nwl) < 0) {
            fprintf(stderr, "bench_datapath: cannot load %d rules\n", confs[i].rules);
            return 1;
        }
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < nconfs; i++) {
            struct conf *c = &confs[i];
            if (measure(c, r) < 0) {
                fprintf(stderr, "bench_datapath: measuring %d rules failed\n", c->rules);
                return 1;
            }
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "raw round=%d ", r + 1);
            print_conf(c, prefix, c->new_ns[r], c->conn_ns[r], c->est_ns[r], c->reply_ns[r],
                       c->dns_ns[r]);
            printf("\n");
        }
    for (int i = 0; i < nconfs; i++) {
        struct conf *c = &confs[i];
        print_conf(c, "", median(c->new_ns, rounds), median(c->conn_ns, rounds),
                   median(c->est_ns, rounds), median(c->reply_ns, rounds),
                   median(c->dns_ns, rounds));
        printf(" workloads=%d intervals=%zu new_flows_dropped=%d rounds=%d\n", nwl,
               tables_policy_count(c->t), c->dropped, rounds);
    }
    for (int i = 0; i < nconfs; i++)
        if (confs[i].det == DET_ALL && confs[i].threats)
            printf("threat_list prefixes=%d parse_ms=%.0f load_ms=%.0f kernel_kib=%.0f\n",
                   confs[i].threats, confs[i].parse_ms, confs[i].load_ms, confs[i].mem_kib);
    /* detections' cost: each config against the `off` one of its rule count */
    for (int i = 0; i < nconfs; i++) {
        const struct conf *off = NULL;
        for (int k = 0; k < nconfs; k++)
            if (confs[k].rules == confs[i].rules && confs[k].det == DET_OFF)
                off = &confs[k];
        if (!off || off == &confs[i])
            continue;
        printf("detections_ratio rules=%d detections=%s threats=%d new_flow=%.2f new_conn=%.2f "
               "established=%.2f reply=%.2f (vs off)\n",
               confs[i].rules, det_names[confs[i].det],
               confs[i].det == DET_ALL ? confs[i].threats : 0,
               median(confs[i].new_ns, rounds) / median(off->new_ns, rounds),
               median(confs[i].conn_ns, rounds) / median(off->conn_ns, rounds),
               median(confs[i].est_ns, rounds) / median(off->est_ns, rounds),
               median(confs[i].reply_ns, rounds) / median(off->reply_ns, rounds));
    }
    if (confs[nconfs - 1].rules != confs[0].rules)
        printf("new_flow_ratio=%.2f (%d rules vs %d)\n",
               median(confs[nconfs - 1].new_ns, rounds) / median(confs[0].new_ns, rounds),
               confs[nconfs - 1].rules, confs[0].rules);
    printf("verified_insns to_workload=%u from_workload=%u\n", verified_insns(confs[0].to),
           verified_insns(confs[0].from));
    if (eviction(&confs[nconfs - 1]) < 0)
        fprintf(stderr, "bench_datapath: eviction measure failed\n");
    for (int i = 0; i < nconfs; i++) {
        datapath_ebpf.close(confs[i].dp, true);
        tables_free(confs[i].t);
        policy_free(confs[i].p);
    }
    return 0;
}
