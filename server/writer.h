/*
 * writer: the one thread that writes moat-server's store, committing the
 * requests that queue up meanwhile together (group commit).
 *
 * A request of a route that writes is parsed and authorized on a worker,
 * which suspends its connection and queues a job. The writer takes every job
 * queued (up to WRITER_GROUP_MAX), opens one transaction, runs each job's
 * handler inside a savepoint of its own — released when the handler answered
 * 2xx, rolled back otherwise, so a failed request changes nothing — and
 * commits once: one fsync for the whole group. Only then does it carry out
 * what the requests noted for after the commit (struct effects: revisions,
 * the fleet's index, JSON lines) and resume their connections, so no
 * request is answered before its change is durable. When the commit fails,
 * every request of the group gets 500 and nothing of the group stays.
 */
#ifndef MOAT_SERVER_WRITER_H
#define MOAT_SERVER_WRITER_H

#include "server.h"

#define WRITER_GROUP_MAX 128
/*
 * With several replicas on PostgreSQL a group's transaction may conflict
 * with another replica's (store.h: commit answers -EAGAIN); then the whole
 * group runs again, each job from scratch (its response and effects
 * emptied), after a random pause that doubles, up to this many more times;
 * after that its requests are answered 503 with Retry-After.
 */
#define WRITER_ATTEMPTS 8

struct job {
    struct job *next;
    struct req *rq;
    struct resp *rs;
    route_fn handler;
    struct MHD_Connection *conn; /* suspended until the job is done */
    int err;                     /* the handler's (or the commit's) error, for a 500 */
    unsigned topics;             /* the change-feed topics http.c noted (kept for a retry) */
    volatile int done;
};

/* Starts the writer thread. 0, -ENOMEM or -EAGAIN. */
int writer_start(struct server *srv);
/* Runs what is queued, then stops the thread and frees the writer. */
void writer_stop(struct server *srv);
/*
 * Suspends connection `c` and queues job j (call it from the access handler,
 * which then returns without touching the request again). When the job is
 * done, j->done is set and the connection resumed. False (nothing done) once
 * the writer is closed.
 */
bool writer_submit(struct writer *w, struct job *j, struct MHD_Connection *c);
/* Takes no more jobs and waits until every queued one is done (the server stops). */
void writer_close(struct writer *w);

/* ---- effects (struct effects, in every request) ---- */
/* Notes that cluster `cluster`'s revision is now `revision`. */
void effects_bump(struct effects *fx, const char *cluster, int64_t revision);
/* Notes that node record `id` was written or removed. */
void effects_node(struct effects *fx, int64_t id);
/* Appends one JSON line (text without its newline) for --alerts-out or --audit-out. */
void effects_line(struct effects *fx, bool audit, const char *text, size_t len);
/* Drops what was noted (the request failed). */
void effects_clear(struct effects *fx);

#endif
