/*
 * bench_agentmem: where an agent's memory per remote workload goes (issue 17).
 *
 * Usage: bench_agentmem WORKLOADS [docs]
 * Builds the server's answer for a cluster of WORKLOADS workloads (1,000
 * nodes, Kubernetes-like records: namespace, image, three labels, one
 * address; two objects, one selecting on a label), then does what moatd
 * does with it (agent.c keep_remote, load_remote) and reports the heap in
 * use after each step (mallinfo2, mapped blocks included), per remote workload:
 *   direct (default): the remote workloads built straight from the records
 *     (remote_workloads_build: pool of shared strings + the workload array),
 *     the policy loaded with copies of them, the tables compiled;
 *   docs: the path before it, for comparison: the compact documents as text
 *     (remote_docs_compact), the policy loaded from that text, the tables.
 * Also the time of each step and the peak RSS. The heap, not the resident
 * set: bench/cluster.py measures the real moatd's RSS.
 */
#include "compile.h"
#include "loader.h"
#include "remote.h"

#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Bytes in use: small blocks and those glibc gives their own mapping (large arrays). */
static size_t heap_in_use(void)
{
    malloc_trim(0);
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static json_t *workload(int i)
{
    char name[32], ns[16], node[16], app[16], image[64], ip[32];
    snprintf(name, sizeof(name), "pod-%d", i);
    snprintf(ns, sizeof(ns), "ns%d", i % 50);
    snprintf(node, sizeof(node), "node-%d", i % 1000);
    snprintf(app, sizeof(app), "app%d", i % 20);
    snprintf(image, sizeof(image), "registry.example.com/team/app%d:1.%d", i % 20, i % 7);
    snprintf(ip, sizeof(ip), "10.%d.%d.%d", 64 + i / 65536, i / 256 % 256, i % 256);
    return json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:[s],s:s,s:s}", "id", i + 1,
                     "cluster", "prod", "node", node, "name", name, "namespace", ns, "image", image,
                     "labels", "app", app, "tier", i % 2 ? "web" : "api", "pod-template-hash",
                     "5d8f7c9b4", "ips", ip, "interface", "eth0", "source", "kubernetes:uid");
}

static int add_set(void *arg, struct moat_policy *p)
{
    return remote_workloads_add(arg, p);
}

struct step {
    size_t text, set, pool, policy, tables;
    double build_ms, load_ms, compile_ms;
    size_t n;
};

/*
 * Loads `text` (and the workloads of `r`, when not NULL) as moatd does and
 * compiles it, into s: the heap the policy and the tables add to `base`,
 * and their times.
 */
static int load_and_compile(const char *text, struct remote_workloads *r, size_t base,
                            struct step *s)
{
    struct moat_diags d;
    diags_init(&d);
    struct policy_source src = {
        .text = text, .len = strlen(text), .name = "server", .limits = &doc_limits_server};
    struct moat_policy *p;
    double t0 = now_ms();
    if (policy_load_sources_then(&p, &src, 1, r ? add_set : NULL, r, &d) != 0) {
        fprintf(stderr, "load failed: %s\n", d.count ? d.items[0].text : "?");
        return 1;
    }
    double t1 = now_ms();
    size_t h_policy = heap_in_use();
    struct moat_tables *t;
    if (policy_compile(p, NULL, &t) != 0)
        return 1;
    double t2 = now_ms();
    s->policy = h_policy - base;
    s->tables = heap_in_use() - h_policy;
    s->load_ms = t1 - t0;
    s->compile_ms = t2 - t1;
    s->n = p->nworkloads;
    tables_free(t);
    policy_free(p);
    return 0;
}

/* The documents path: compact documents as text, then parsed and loaded. */
static int run_docs(json_t *clusters, json_t *objects, json_t *workloads, struct step *s)
{
    json_t *docs = json_array();
    double t0 = now_ms();
    if (!docs || remote_docs_compact(clusters, objects, NULL, workloads, "node-0", docs) < 0)
        return 1;
    char *text = json_dumps(docs, JSON_COMPACT);
    json_decref(docs);
    json_decref(workloads);
    if (!text)
        return 1;
    s->build_ms = now_ms() - t0;
    s->text = strlen(text);
    int err = load_and_compile(text, NULL, heap_in_use(), s); /* the answer's tree is gone */
    free(text);
    return err;
}

/* The direct path: pooled workloads from the records, the rest as (small) documents. */
static int run_direct(json_t *clusters, json_t *objects, json_t *workloads, struct step *s)
{
    json_t *docs = json_array();
    if (!docs || remote_docs_compact(clusters, objects, NULL, NULL, "node-0", docs) < 0)
        return 1;
    char *text = json_dumps(docs, JSON_COMPACT);
    json_decref(docs);
    size_t h0 = heap_in_use();
    struct moat_diags d;
    diags_init(&d);
    struct remote_workloads *r;
    double t0 = now_ms();
    if (!text || remote_workloads_build(clusters, objects, workloads, "node-0", "server", &r, &d))
        return 1;
    s->build_ms = now_ms() - t0;
    s->set = heap_in_use() - h0;
    s->pool = strpool_bytes(r->pool);
    s->text = strlen(text);
    json_decref(workloads);
    int err = load_and_compile(text, r, heap_in_use(), s);
    remote_workloads_free(r);
    free(text);
    return err;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_agentmem WORKLOADS [docs]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    bool docs_path = argc > 2 && strcmp(argv[2], "docs") == 0;
    json_t *clusters = json_pack("[{s:s,s:s}]", "name", "prod", "defense", "on");
    json_t *objects =
        json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:{s:s}}]", "name", "web", "namespace", "*", "app",
                  "app1", "name", "front", "namespace", "*", "labels", "tier", "web");
    json_t *workloads = json_array();
    for (int i = 0; workloads && i < n; i++)
        if (json_array_append_new(workloads, workload(i)) < 0)
            return 1;
    if (!clusters || !objects || !workloads)
        return 1;
    struct step s = {0};
    if ((docs_path ? run_docs : run_direct)(clusters, objects, workloads, &s))
        return 1;
    json_decref(objects);
    json_decref(clusters);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double per = (double)s.n;
    printf("path=%s workloads=%zu text_bytes=%zu text_per_wl=%.0f kept_set_per_wl=%.0f "
           "pool_per_wl=%.0f policy_per_wl=%.0f tables_per_wl=%.0f total_per_wl=%.0f "
           "build_ms=%.1f load_ms=%.1f compile_ms=%.1f peak_rss_mib=%.1f\n",
           docs_path ? "docs" : "direct", s.n, s.text, docs_path ? (double)s.text / per : 0.0,
           (double)s.set / per, (double)s.pool / per, (double)s.policy / per,
           (double)s.tables / per,
           ((double)(docs_path ? s.text : s.set) + (double)(s.policy + s.tables)) / per, s.build_ms,
           s.load_ms, s.compile_ms, (double)ru.ru_maxrss / 1024.0);
    return 0;
}
