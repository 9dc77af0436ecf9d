/*
 * audit: the record of every change the server accepted — who made it (an
 * admin token's id, a node, a join token, or `local` for moat-server's own
 * commands), from where, when, through which route, to which record, and the
 * record before and after. A record is written in the same transaction as
 * the change, so there is one exactly when the change stayed; with
 * --audit-out its JSON line follows the commit (writer.c). Records are kept
 * as long as alerts (--retention-days).
 *
 * What is recorded: every write of an admin (clusters, objects, rules,
 * apply, join tokens, node deletes, alert status changes), every node
 * registration and workload report. Heartbeats and event batches are not:
 * they change no configuration, come every few seconds from every node, and
 * alerts are their own record.
 */
#ifndef MOAT_SERVER_AUDIT_H
#define MOAT_SERVER_AUDIT_H

#include "server.h"

/*
 * Records a change made by request rq (inside its transaction): `action`
 * (create, update, delete, register, ...), the record's `kind` (cluster,
 * object, rule, node, workloads, join_token, alert), its cluster (or NULL),
 * name and id (0 when none), and its documents before and after (NULL when
 * there is none; copied). 0 or a store error.
 */
int audit_record(struct req *rq, const char *action, const char *kind, const char *cluster,
                 const char *name, int64_t id, const json_t *before, const json_t *after);
/* Records a change made outside any request (moat-server token create): actor `local`. */
int audit_local(struct store *st, const char *action, const char *kind, const char *name,
                int64_t id, const json_t *after);
/* Removes the records older than `before` ("YYYY-MM-DDTHH:MM:SSZ"). 0 or a store error. */
int audit_expire(struct server *srv, const char *before);

#endif
