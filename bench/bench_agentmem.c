/*
 * bench_agentmem: where an agent's memory per remote workload goes (issue 17).
 *
 * Usage: bench_agentmem WORKLOADS
 * Builds the server's answer for a cluster of WORKLOADS workloads (1,000
 * nodes, Kubernetes-like records: namespace, image, three labels, one
 * address; 500 objects as bench/synth makes them is not needed here: two
 * objects, one selecting on a label), then does what moatd does with it —
 * the compact documents as text (agent.c keep_remote), the policy loaded
 * from that text, the tables compiled — and reports the heap in use after
 * each step (mallinfo2), per remote workload. The heap, not the resident
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

static size_t heap_in_use(void)
{
    malloc_trim(0);
    return mallinfo2().uordblks;
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

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_agentmem WORKLOADS\n");
        return 2;
    }
    int n = atoi(argv[1]);
    json_t *clusters = json_pack("[{s:s,s:s}]", "name", "prod", "defense", "on");
    json_t *objects =
        json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:{s:s}}]", "name", "web", "namespace", "*", "app",
                  "app1", "name", "front", "namespace", "*", "labels", "tier", "web");
    json_t *workloads = json_array();
    for (int i = 0; workloads && i < n; i++)
        if (json_array_append_new(workloads, workload(i)) < 0)
            return 1;
    json_t *docs = json_array();
    if (!clusters || !objects || !workloads || !docs)
        return 1;
    size_t h0 = heap_in_use();
    if (remote_docs_compact(clusters, objects, NULL, workloads, "node-0", docs) < 0)
        return 1;
    char *text = json_dumps(docs, JSON_COMPACT);
    json_decref(docs);
    json_decref(workloads);
    json_decref(objects);
    json_decref(clusters);
    if (!text)
        return 1;
    size_t base = heap_in_use(); /* the answer's tree is gone: what stays is ours */
    size_t h_text = base;
    struct moat_diags d;
    diags_init(&d);
    struct policy_source src = {
        .text = text, .len = strlen(text), .name = "server", .limits = &doc_limits_server};
    struct moat_policy *p;
    if (policy_load_sources(&p, &src, 1, &d) != 0) {
        fprintf(stderr, "load failed: %s\n", d.count ? d.items[0].text : "?");
        return 1;
    }
    size_t h_policy = heap_in_use();
    struct moat_tables *t;
    if (policy_compile(p, NULL, &t) != 0)
        return 1;
    size_t h_tables = heap_in_use();
    double per = (double)p->nworkloads;
    (void)h0;
    printf("workloads=%zu text_bytes=%zu text_per_wl=%.0f policy_per_wl=%.0f tables_per_wl=%.0f "
           "total_per_wl=%.0f\n",
           p->nworkloads, strlen(text), (double)strlen(text) / per,
           (double)(h_policy - h_text) / per, (double)(h_tables - h_policy) / per,
           ((double)strlen(text) + (double)(h_tables - h_text)) / per);
    tables_free(t);
    policy_free(p);
    free(text);
    return 0;
}
