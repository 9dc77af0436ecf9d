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

#endif
