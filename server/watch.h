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
 * Waiting: a read handler may ask to wait on a key (a cluster's name) until
 * a deadline; its connection is suspended (libmicrohttpd's
 * MHD_suspend_connection) and resumed by watch_wake() of its key, by its
 * deadline, or by watch_wake_all() when the server stops.
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
    struct waiter *prev, *next;
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

/*
 * Suspends connection `c` (call it from the access handler, which then
 * returns without touching the request again) until watch_wake(key), the
 * deadline, or the server stopping. Returns false without suspending when
 * the server is stopping.
 */
bool watch_wait(struct watch *w, struct waiter *wt, struct MHD_Connection *c, const char *key,
                double deadline);
/* Resumes every request waiting on `key`. */
void watch_wake(struct watch *w, const char *key);
/* The server stops: resumes every waiting request; later waits return false. */
void watch_wake_all(struct watch *w);
/* How many requests wait now. */
size_t watch_waiting(struct watch *w);

#endif
