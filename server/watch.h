/*
 * watch: what moat-server keeps an eye on between requests' events — every
 * connection's deadline and every suspended long-poll — with one thread that
 * wakes four times a second.
 *
 * Deadlines: a connection must send a request's headers within
 * opts.header_timeout seconds of opening or of its previous answer (so an
 * idle keep-alive connection is closed after that long too), and a body
 * within opts.body_timeout seconds of its headers; one that does not is shut
 * down (shutdown(2) on its socket: libmicrohttpd then closes it as it would
 * any connection the client ended). A connection whose request is being
 * answered (or suspended in a long-poll) has no deadline here.
 *
 * Waiting: a read handler may ask to wait on a key (a cluster's name, or
 * CHANGES_WAIT_KEY for the console's change feed) until a deadline; its
 * connection is suspended (libmicrohttpd's MHD_suspend_connection) and
 * resumed by watch_wake() of its key, by its deadline, or by
 * watch_wake_all() when the server stops. Waiters are also kept by key (a
 * hash of chains), so a wake-up costs the waiters of its key, not all of
 * them: heartbeats wake the change feed often, beside 10,000 agents' polls.
 * A wake-up that comes between a handler's look and its wait is not lost:
 * the caller takes watch_seq() before the look, and watch_wait() refuses
 * to suspend when any wake-up came since (the handler looks again).
 */
#ifndef MOAT_SERVER_WATCH_H
#define MOAT_SERVER_WATCH_H

#include "server.h"

/* One connection, from accept to close (libmicrohttpd's socket context). */
enum sock_state {
    SOCK_IDLE, /* waiting for a request's headers: header deadline */
    SOCK_BODY, /* receiving a body: body deadline */
    SOCK_BUSY, /* being answered: no deadline */
};
struct sock;

/* One suspended request; lives in the request's state (http.c). */
struct waiter {
    struct waiter *prev, *next;   /* by deadline */
    struct waiter *kprev, *knext; /* in its key's chain */
    struct MHD_Connection *conn;
    char key[SERVER_NAME_MAX + 1];
    double deadline; /* CLOCK_MONOTONIC seconds */
    bool listed;
};

/* Starts the watch and its thread. 0, -ENOMEM or -EAGAIN. */
int watch_start(struct server *srv);
/* Stops the thread and frees the watch (no connection may remain). */
void watch_stop(struct server *srv);
/* CLOCK_MONOTONIC seconds. */
double watch_now(void);

/* A connection opened on socket `fd` (NOTIFY_CONNECTION STARTED); NULL on OOM. */
struct sock *watch_sock_open(struct watch *w, int fd);
/* The connection closed (NOTIFY_CONNECTION CLOSED): forgotten before its socket closes. */
void watch_sock_close(struct watch *w, struct sock *s);
/* The connection's state changes; its deadline starts now. */
void watch_sock_state(struct watch *w, struct sock *s, enum sock_state st);

/* How many wake-ups there have been (any key): take it before looking at what to wait for. */
uint64_t watch_seq(struct watch *w);
/*
 * Suspends connection `c` (call it from the access handler, which then
 * returns without touching the request again) until watch_wake(key), the
 * deadline, or the server stopping: 1. Without suspending: 0 when the
 * server is stopping, -EAGAIN when a wake-up came since watch_seq() gave
 * `seen` (look again).
 */
int watch_wait(struct watch *w, struct waiter *wt, struct MHD_Connection *c, const char *key,
               double deadline, uint64_t seen);
/* Resumes every request waiting on `key`. */
void watch_wake(struct watch *w, const char *key);
/* The server stops: resumes every waiting request; later waits return 0. */
void watch_wake_all(struct watch *w);
/* How many requests wait now. */
size_t watch_waiting(struct watch *w);

#endif
