/*
 * synth: synthetic clusters for the benchmarks — 50 namespaces x 20 apps,
 * workloads spread over them, ~500 objects (per-app, per-namespace, label
 * and ipblock objects) and rules between random objects with 1-2 port
 * ranges. The same seed gives the same text.
 */
#ifndef MOAT_BENCH_SYNTH_H
#define MOAT_BENCH_SYNTH_H

#include <stddef.h>

/* A new YAML text (caller frees) with a Cluster `bench`, objects, rules, workloads. */
char *synth_policy(int workloads, int rules, int objects, size_t *len);

/* Variants, for the compiler's harder cases; the objects they add are in no rule. */
#define SYNTH_SHUFFLED   1u /* workload addresses in random order, not ascending */
#define SYNTH_POD_LABELS 2u /* a label unique to each workload, which 10 objects select on */
#define SYNTH_IPBLOCKS   4u /* 500 more ipblocks (IPv4 /24 and /28, IPv6 /32../64), outside */
char *synth_policy_flags(int workloads, int rules, int objects, unsigned flags, size_t *len);

#endif
