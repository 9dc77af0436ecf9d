/*
 * cmd_quarantine: `moatd quarantine list|release` for a standalone node
 * (SPEC §10): the active quarantines of the detections, read from the
 * node's pinned datapath state (with or without a running moatd), cluster
 * names from its status file.
 *
 *   moatd quarantine list --node NAME [-o table|json]
 *   moatd quarantine release ADDR --node NAME [--cluster ID]
 *
 * Exit status: 0 done; 1 nothing to release, or no datapath state for the
 * node; 2 usage.
 */
#ifndef MOAT_CMD_QUARANTINE_H
#define MOAT_CMD_QUARANTINE_H

int cmd_quarantine(int argc, char **argv);

#endif
