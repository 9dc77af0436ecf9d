/*
 * cluster_det: the detections' state a node shares through moat-server in
 * cluster mode (SPEC §6, §9) — quarantines.
 *
 * A quarantine starts in one node's kernel (brute force or a port scan from
 * a source, with `block`); the node reports the ones its kernel started, the
 * server lists them and hands every node of the cluster the active ones and
 * the releases an operator asked for, and each node installs the others'
 * (marked MOAT_Q_FROM_SERVER, so they are not reported back) and ends
 * released ones. Times on the wire are wall-clock (RFC 3339, UTC); the kernel
 * keeps CLOCK_MONOTONIC, converted here.
 */
#ifndef MOAT_AGENT_CLUSTER_DET_H
#define MOAT_AGENT_CLUSTER_DET_H

#include "datapath.h"

#include <jansson.h>
#include <stdint.h>

/*
 * The active quarantines of cluster index `cluster` that node `node`'s own
 * kernel started, as [{address, reason, since, until}] sorted by address;
 * NULL on error (-errno in *err; -ENOENT: no kernel state yet).
 */
json_t *cluster_det_local(const struct datapath_ops *ops, const char *node, uint32_t cluster,
                          int *err);

/*
 * Brings node `node`'s kernel in line with the server's view of cluster
 * index `cluster`: `quarantines` ([{address, reason, until}]) installed where
 * the kernel has none of its own, server-installed ones the list no longer
 * has ended, and every quarantine of an address in `releases`
 * ([{address, at}]) that started at or before `at` ended. Entries that do
 * not parse are skipped. Returns how many kernel entries changed, or -errno.
 */
int cluster_det_apply(const struct datapath_ops *ops, const char *node, uint32_t cluster,
                      const json_t *quarantines, const json_t *releases);

/*
 * What runs of cluster `cl`'s detections with backend `ops`, for the node's
 * report (heartbeat datapath.detections and datapath.detection_gaps, moatd
 * status): {"detections": [names], "detection_gaps": {name: why}} — a
 * detection the cluster enables that does not run, or runs with a
 * difference, has its reason. Nothing runs with defense off. NULL on OOM.
 */
json_t *cluster_det_running(const struct datapath_ops *ops, const struct moat_cluster *cl);

#endif
