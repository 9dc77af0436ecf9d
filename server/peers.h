/*
 * peers: what replicas of moat-server on one database tell each other
 * (PostgreSQL: the store's notify/listen, store.h). Each server keeps in
 * memory what answers its long-polls and health views without a query —
 * cluster revisions and nodes' states (fleet.h), the console's change
 * counters, known credentials (auth.c) — and updates it after its own
 * commits (writer.c). A committed group's notice tells the others the same:
 * the revisions it moved, the node records it wrote, the change-feed topics
 * it counted and whether a credential may have gone. A replica that gets it
 * updates its memory and wakes its own long-polls, so an agent polling any
 * replica sees a change made through any other within the propagation
 * bound (docs/server.md has the figures). A store with one server (SQLite)
 * has no notices: all of this is a no-op there.
 */
#ifndef MOAT_SERVER_PEERS_H
#define MOAT_SERVER_PEERS_H

#include "server.h"
#include "writer.h"

/* Starts listening to the other replicas' notices, when the store has them. 0 or an error. */
int peers_start(struct server *srv);
/* Stops listening (before the fleet and the watch go). */
void peers_stop(struct server *srv);
/*
 * Queues the notice of a group's effects (inside its transaction, before the
 * commit: it is sent only if the group commits). 0 (also when the store has
 * no notices) or a store error.
 */
int peers_notify(struct server *srv, const struct job *group);

#endif
