/*
 * bench_datapath: per-packet cost of the eBPF datapath, measured by the
 * kernel with BPF_PROG_TEST_RUN, at several rule counts in one process, in
 * interleaved rounds (so a noisy moment of the machine hits every config).
 *
 * Usage: bench_datapath [--rules N,N,...] [--workloads N] [--rounds N]  (root)
 * For each rule count, a synthetic cluster (bench/synth.h) loaded into its
 * own datapath, with 64 of its workloads attached to interfaces (veths of a
 * private network namespace) and measured on their to-workload hook:
 *   new_flow_ns:    20,000 distinct new flows (SYNs from any workload to an
 *                   attached one), each judged in full; the mean of one test
 *                   run each (it includes the test-run call's own overhead);
 *   established_ns: one established flow's ACK repeated 200,000 times;
 *   reply_ns:       its reply (the from-workload hook), likewise.
 * Prints `raw round=R rules=N ...` per round and config, then one
 * `rules=N ... (medians)` line per config, the ratio of the new-flow cost at
 * the largest rule count to the smallest, the programs' verified instruction
 * counts, and an eviction measure: 10,000 established flows, then a flood of
 * 1,000,000 distinct blocked SYNs; how many established entries survive.
 */
#include "../tests/bpf/frame.h"
#include "compile.h"
#include "datapath.h"
#include "loader.h"
#include "mem.h"
#include "synth.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATTACHED  64
#define NEW_FLOWS 20000
#define EST_REPS  200000
#define MAX_CONFS 8
#define MAX_ROUND 32

struct conf {
    int rules;
    struct moat_policy *p;
    struct moat_tables *t;
    struct datapath *dp;
    char node[32];
    int to, from;
    int ifindex[ATTACHED];
    uint32_t wl[ATTACHED]; /* workload index attached to ifindex[i] */
    double new_ns[MAX_ROUND], est_ns[MAX_ROUND], reply_ns[MAX_ROUND];
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

static int conf_load(struct conf *c, int nwl)
{
    size_t len;
    char *synth = synth_policy(nwl, c->rules, 500, &len);
    /* the measured established flows go to workload 0 (ns0/app0) on ports 80 and 9 */
    char *text = moat_asprintf("%s---\nkind: NetworkObject\nname: bench-dst\nnamespace: ns0\n"
                               "app: app0\n---\nkind: DefenseRule\ncluster: bench\nname: "
                               "bench-allow\nsource: any\ndestinations: [{object: bench-dst, "
                               "ports: '9,80'}]\nprotocol: tcp\naction: allow\npriority: 1\n",
                               synth);
    free(synth);
    if (!text)
        return -1;
    len = strlen(text);
    struct moat_diags d;
    diags_init(&d);
    int err =
        policy_load_text(&c->p, text, len, "bench.yaml", &d) || policy_compile(c->p, NULL, &c->t);
    diags_clear(&d);
    free(text);
    if (err)
        return -1;
    snprintf(c->node, sizeof(c->node), "bench-%d-%d", (int)getpid(), c->rules);
    uint32_t gen;
    if (datapath_ebpf.open(c->node, NULL, NULL, &c->dp) ||
        datapath_ebpf.apply(c->dp, c->p, c->t, &gen))
        return -1;
    c->to = datapath_ebpf.prog_fd(c->dp, true);
    c->from = datapath_ebpf.prog_fd(c->dp, false);
    return 0;
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

int main(int argc, char **argv)
{
    struct conf confs[MAX_CONFS];
    int nconfs = 0, nwl = 1000, rounds = 5;
    memset(confs, 0, sizeof(confs));
    const char *rules = "10,1000,10000";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rules") == 0)
            rules = argv[i + 1];
        else if (strcmp(argv[i], "--workloads") == 0)
            nwl = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
    }
    if (rounds < 1 || rounds > MAX_ROUND || nwl < ATTACHED) {
        fprintf(stderr,
                "usage: bench_datapath [--rules N,N,...] [--workloads N>=64] [--rounds 1..32]\n");
        return 2;
    }
    for (const char *s = rules; *s && nconfs < MAX_CONFS; nconfs++) {
        confs[nconfs].rules = atoi(s);
        s = strchr(s, ',');
        if (!s)
            s = "";
        else
            s++;
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
            printf("raw round=%d rules=%d new_flow_ns=%.0f established_ns=%.0f reply_ns=%.0f\n",
                   r + 1, c->rules, c->new_ns[r], c->est_ns[r], c->reply_ns[r]);
        }
    for (int i = 0; i < nconfs; i++) {
        struct conf *c = &confs[i];
        printf("rules=%d workloads=%d intervals=%zu new_flow_ns=%.0f established_ns=%.0f "
               "reply_ns=%.0f new_flows_dropped=%d rounds=%d\n",
               c->rules, nwl, tables_policy_count(c->t), median(c->new_ns, rounds),
               median(c->est_ns, rounds), median(c->reply_ns, rounds), c->dropped, rounds);
    }
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
