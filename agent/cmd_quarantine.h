/*
 * cmd_quarantine: `moatd quarantine list|release` for a standalone node
 * (SPEC §10): the active quarantines of the detections, read from the
 * node's datapath state (with or without a running moatd) — the eBPF
 * backend's pinned maps, the iptables one's sets — cluster names from its
 * status file.
 *
 *   moatd quarantine list --node NAME [-o table|json]
 *   moatd quarantine release ADDR --node NAME [--cluster ID]
 *
 * Exit status: 0 done; 1 nothing to release, or no datapath state for the
 * node; 2 usage.
 */
#ifndef MOAT_CMD_QUARANTINE_H
#define MOAT_CMD_QUARANTINE_H

#include "datapath.h"

/* `backend_of(node)`: the backend node's agent ran (the process joined its network
 * namespace where that backend's state lives there), NULL when it cannot be reached. */
int cmd_quarantine(int argc, char **argv, const struct datapath_ops *(*backend_of)(const char *));

#endif
