/*
 * bench_datapath: per-packet cost of the eBPF datapath, measured by the
 * kernel with BPF_PROG_TEST_RUN, at several rule counts.
 *
 * Usage: bench_datapath RULES [WORKLOADS]   (root; runs in a private netns)
 * For a synthetic cluster it measures, on the to-workload hook:
 *   new_flow_ns:   20,000 distinct new flows, each judged in full (address
 *                  lookups, two row probes, two binary searches, conntrack
 *                  insert, counters);
 *   established_ns: one established flow repeated 200,000 times (conntrack hit).
 * Prints one key=value line.
 */
#include "compile.h"
#include "datapath.h"
#include "loader.h"
#include "synth.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t craft(uint8_t *buf, const struct moat_addr *src, const struct moat_addr *dst,
                    uint16_t sport, uint16_t dport)
{
    struct ethhdr eth = {.h_proto = htons(ETH_P_IP)};
    struct iphdr ip = {
        .version = 4, .ihl = 5, .ttl = 64, .protocol = IPPROTO_TCP, .tot_len = htons(40)};
    memcpy(&ip.saddr, src->b + 12, 4);
    memcpy(&ip.daddr, dst->b + 12, 4);
    struct tcphdr tcp = {.source = htons(sport), .dest = htons(dport), .doff = 5, .syn = 1};
    memcpy(buf, &eth, sizeof(eth));
    memcpy(buf + sizeof(eth), &ip, sizeof(ip));
    memcpy(buf + sizeof(eth) + sizeof(ip), &tcp, sizeof(tcp));
    return sizeof(eth) + sizeof(ip) + sizeof(tcp);
}

static int run(int fd, const uint8_t *pkt, size_t len, int repeat, uint32_t *ns)
{
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = (uint32_t)len,
                .repeat = repeat);
    int err = bpf_prog_test_run_opts(fd, &opts);
    *ns = opts.duration;
    return err;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_datapath RULES [WORKLOADS]\n");
        return 2;
    }
    int nrules = atoi(argv[1]), nwl = argc > 2 ? atoi(argv[2]) : 1000;
    if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) {
        fprintf(stderr, "bench_datapath: needs root\n");
        return 1;
    }
    libbpf_set_print(NULL);
    size_t len;
    char *text = synth_policy(nwl, nrules, 500, &len);
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p;
    struct moat_tables *t;
    if (policy_load_text(&p, text, len, "bench.yaml", &d) || policy_compile(p, NULL, &t))
        return 1;
    free(text);
    char node[32];
    snprintf(node, sizeof(node), "bench-%d", (int)getpid());
    struct datapath *dp;
    uint32_t gen;
    if (datapath_ebpf.open(node, NULL, NULL, &dp) || datapath_ebpf.apply(dp, p, t, &gen)) {
        fprintf(stderr, "bench_datapath: cannot load the datapath\n");
        return 1;
    }
    int fd = datapath_ebpf.prog_fd(dp, true);
    static const uint16_t ports[] = {80, 443, 8080, 5432, 6379, 53, 9000, 22, 3306, 15000};
    uint8_t pkt[64];
    uint64_t total = 0;
    int flows = 20000, dropped = 0;
    uint64_t s = 1;
    for (int i = 0; i < flows; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const struct moat_workload *a = &p->workloads[(s >> 33) % p->nworkloads];
        const struct moat_workload *b = &p->workloads[(s >> 45) % p->nworkloads];
        size_t n = craft(pkt, &a->addrs[0], &b->addrs[0], (uint16_t)(1024 + i % 60000),
                         ports[(s >> 20) % 10]);
        uint32_t ns;
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = (uint32_t)n);
        if (bpf_prog_test_run_opts(fd, &opts))
            return 1;
        ns = opts.duration;
        dropped += opts.retval == 2;
        total += ns;
    }
    uint32_t est_ns = 0;
    size_t n = craft(pkt, &p->workloads[0].addrs[0], &p->workloads[1].addrs[0], 999, 80);
    run(fd, pkt, n, 1, &est_ns);
    run(fd, pkt, n, 200000, &est_ns);
    printf("rules=%d workloads=%d intervals=%zu new_flow_ns=%.0f established_ns=%u "
           "new_flows_dropped=%d\n",
           nrules, nwl, tables_policy_count(t), (double)total / flows, est_ns, dropped);
    datapath_ebpf.close(dp, true);
    tables_free(t);
    policy_free(p);
    return 0;
}
