/*
 * fleet: what moat-server keeps in memory about its nodes and clusters so
 * that no request's cost grows with the fleet — each node's last heartbeat,
 * reported datapath state and agent version, and each cluster's policy
 * revision. The store stays the truth: the index is loaded from it at
 * startup and every committed write that changes a node or a revision
 * updates it (writer.c, after the commit).
 *
 * A cluster's health (SPEC 4) costs O(1 + its abnormal nodes): each
 * cluster's nodes are kept in heartbeat order, oldest first, so the offline
 * ones (no heartbeat for 3 intervals) are a prefix of the list, and the
 * online nodes that are not enforcing (reported unsupported/not_installed,
 * or outdated) are kept on a list of their own.
 *
 * With several servers on one database (PostgreSQL) each keeps its own
 * index; the others' commits reach it as notices (peers.h), and
 * fleet_resync() reads it all again when notices may have been missed.
 */
#ifndef MOAT_SERVER_FLEET_H
#define MOAT_SERVER_FLEET_H

#include "server.h"

/* Loads every node and revision from the store into a new index (srv->fleet). 0 or an error. */
int fleet_load(struct server *srv);
void fleet_free(struct fleet *f);
/*
 * Re-reads node record `id` from the store (the writer's connection, after a
 * commit): updated when it exists, forgotten when it does not.
 */
void fleet_node_reload(struct server *srv, int64_t id);
/*
 * Reads every node and revision again (on a read snapshot of the calling
 * thread's, which must not be reading already), forgets the nodes and
 * clusters that are gone and wakes every cluster's long-polls (peers.c).
 * 0 or a store error.
 */
int fleet_resync(struct server *srv);
/* Cluster `cluster`'s revision (1 until it changes). */
int64_t fleet_revision(struct fleet *f, const char *cluster);
/* Sets it (0: the cluster is gone, so it starts again at 1). */
void fleet_revision_set(struct fleet *f, const char *cluster, int64_t revision);
#define FLEET_ABNORMAL_LISTED 100 /* abnormal nodes a cluster's health lists (all are counted) */

/*
 * Sets `status` (normal/abnormal/unknown), `nodes`, `enforcing`, `abnormal`
 * (how many are not enforcing) and `abnormal_nodes` [{name, state, reason}]
 * (at most FLEET_ABNORMAL_LISTED, by node id: the offline ones silent longest
 * first, then the others; GET /nodes?cluster=C lists every node) of
 * `cluster` into `out` (may be NULL), and *enforcing / *nodes
 * when not NULL. O(abnormal nodes). 0 or -ENOMEM.
 */
int fleet_health(struct server *srv, const char *cluster, json_t *out, int64_t *enforcing,
                 int64_t *nodes);
/* Nodes whose agent sent a heartbeat within 3 intervals. */
int64_t fleet_online(struct server *srv);
/* Every cluster's revision, as Prometheus gauge lines appended to f. */
void fleet_revisions_print(struct fleet *f, FILE *out);

#endif
