/* watch: connection deadlines and suspended requests (see watch.h). */
#include "watch.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define TICK_NS 250000000L /* the thread looks four times a second */

/*
 * Only connections with a deadline (idle or receiving a body) are on the
 * watch's list, oldest state change first; those being answered or
 * suspended (most of them, with many agents) cost the thread nothing. So do
 * waiters: they are kept by deadline, and a look stops at the first one
 * whose deadline is ahead.
 */
struct sock {
    struct sock *prev, *next;
    int fd;
    enum sock_state state;
    double since;
    bool listed;
};

#define KEY_CHAINS 256 /* waiters by a hash of their key */

struct watch {
    struct server *srv;
    pthread_mutex_t lock; /* everything below */
    pthread_cond_t tick;  /* on CLOCK_MONOTONIC: the thread's sleep, cut short by watch_stop */
    struct sock *socks, *socks_tail;       /* with a deadline, by `since` */
    struct waiter *waiters, *waiters_tail; /* by deadline */
    struct waiter *chains[KEY_CHAINS];     /* by key */
    size_t nwaiting;
    uint64_t seq; /* wake-ups so far (also read without the lock: __atomic builtins) */
    bool stopping, quit;
    pthread_t thread;
};

/* Takes s off the list (under the lock). */
static void sock_unlist(struct watch *w, struct sock *s)
{
    if (!s->listed)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        w->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        w->socks_tail = s->prev;
    s->prev = s->next = NULL;
    s->listed = false;
}

/* Puts s at the list's end: its `since` is now, the newest (under the lock). */
static void sock_list(struct watch *w, struct sock *s)
{
    s->prev = w->socks_tail;
    s->next = NULL;
    if (w->socks_tail)
        w->socks_tail->next = s;
    else
        w->socks = s;
    w->socks_tail = s;
    s->listed = true;
}

double watch_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sock *watch_sock_open(struct watch *w, int fd)
{
    struct sock *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->fd = fd;
    s->state = SOCK_IDLE;
    s->since = watch_now();
    pthread_mutex_lock(&w->lock);
    sock_list(w, s);
    pthread_mutex_unlock(&w->lock);
    return s;
}

void watch_sock_close(struct watch *w, struct sock *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&w->lock);
    sock_unlist(w, s);
    pthread_mutex_unlock(&w->lock);
    free(s);
}

void watch_sock_state(struct watch *w, struct sock *s, enum sock_state st)
{
    if (!s)
        return;
    double now = watch_now();
    pthread_mutex_lock(&w->lock);
    sock_unlist(w, s);
    s->state = st;
    s->since = now;
    if (st != SOCK_BUSY)
        sock_list(w, s);
    pthread_mutex_unlock(&w->lock);
}

/* FNV-1a of a key, to its chain. */
static unsigned chain_of(const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % KEY_CHAINS;
}

/* Takes waiter wt off the lists and resumes its connection. Under w->lock. */
static void resume(struct watch *w, struct waiter *wt)
{
    if (wt->kprev)
        wt->kprev->knext = wt->knext;
    else
        w->chains[chain_of(wt->key)] = wt->knext;
    if (wt->knext)
        wt->knext->kprev = wt->kprev;
    wt->kprev = wt->knext = NULL;
    if (wt->prev)
        wt->prev->next = wt->next;
    else
        w->waiters = wt->next;
    if (wt->next)
        wt->next->prev = wt->prev;
    else
        w->waiters_tail = wt->prev;
    wt->prev = wt->next = NULL;
    wt->listed = false;
    w->nwaiting--;
    /* Still under the lock: the connection stays suspended (so alive) until
     * libmicrohttpd's thread sees this, and nobody else holds wt. */
    MHD_resume_connection(wt->conn);
}

uint64_t watch_seq(struct watch *w)
{
    return __atomic_load_n(&w->seq, __ATOMIC_SEQ_CST);
}

int watch_wait(struct watch *w, struct waiter *wt, struct MHD_Connection *c, const char *key,
               double deadline, uint64_t seen)
{
    pthread_mutex_lock(&w->lock);
    int ok = w->stopping ? 0 : w->seq != seen ? -EAGAIN : 1;
    if (ok == 1) {
        *wt = (struct waiter){.conn = c, .deadline = deadline, .listed = true};
        size_t n = strlen(key);
        n = n < sizeof(wt->key) ? n : sizeof(wt->key) - 1;
        memcpy(wt->key, key, n);
        wt->key[n] = '\0';
        /* Suspended before it is listed: a wake-up can only find a suspended connection. */
        MHD_suspend_connection(c);
        struct waiter *after = w->waiters_tail; /* by deadline: usually the last */
        while (after && after->deadline > deadline)
            after = after->prev;
        wt->prev = after;
        wt->next = after ? after->next : w->waiters;
        if (wt->next)
            wt->next->prev = wt;
        else
            w->waiters_tail = wt;
        if (after)
            after->next = wt;
        else
            w->waiters = wt;
        struct waiter **chain = &w->chains[chain_of(wt->key)];
        wt->knext = *chain;
        if (*chain)
            (*chain)->kprev = wt;
        *chain = wt;
        w->nwaiting++;
    }
    pthread_mutex_unlock(&w->lock);
    return ok;
}

void watch_wake(struct watch *w, const char *key)
{
    pthread_mutex_lock(&w->lock);
    __atomic_add_fetch(&w->seq, 1, __ATOMIC_SEQ_CST);
    for (struct waiter *wt = w->chains[chain_of(key)], *next; wt; wt = next) {
        next = wt->knext;
        if (strcmp(wt->key, key) == 0)
            resume(w, wt);
    }
    pthread_mutex_unlock(&w->lock);
}

void watch_wake_all(struct watch *w)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    while (w->waiters)
        resume(w, w->waiters);
    pthread_mutex_unlock(&w->lock);
}

size_t watch_waiting(struct watch *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->nwaiting;
    pthread_mutex_unlock(&w->lock);
    return n;
}

/* One look: resumes waiters past their deadline, shuts down connections past theirs. */
static void look(struct watch *w)
{
    const struct server_opts *o = &w->srv->opts;
    double now = watch_now();
    while (w->waiters && w->waiters->deadline <= now)
        resume(w, w->waiters);
    double oldest =
        now - (double)(o->header_timeout < o->body_timeout ? o->header_timeout : o->body_timeout);
    for (struct sock *s = w->socks, *next; s && s->since < oldest; s = next) {
        next = s->next;
        double limit = s->state == SOCK_IDLE ? (double)o->header_timeout : (double)o->body_timeout;
        if (now - s->since > limit) {
            /* The socket is still open: it closes only after watch_sock_close, which
             * waits for this lock. libmicrohttpd sees the end and closes it. */
            shutdown(s->fd, SHUT_RDWR);
            sock_unlist(w, s); /* once */
            s->state = SOCK_BUSY;
        }
    }
}

static void *watch_main(void *arg)
{
    struct watch *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->quit) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TICK_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->tick, &w->lock, &ts);
        if (!w->quit)
            look(w);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int watch_start(struct server *srv)
{
    struct watch *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->srv = srv;
    pthread_condattr_t ca;
    int err = pthread_condattr_init(&ca) ? -ENOMEM : 0;
    if (!err) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        err = pthread_cond_init(&w->tick, &ca) ? -ENOMEM : 0;
        pthread_condattr_destroy(&ca);
    }
    if (!err && pthread_mutex_init(&w->lock, NULL) != 0) {
        pthread_cond_destroy(&w->tick);
        err = -ENOMEM;
    }
    if (!err && pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->tick);
        err = -EAGAIN;
    }
    if (err) {
        free(w);
        return err;
    }
    srv->watch = w;
    return 0;
}

void watch_stop(struct server *srv)
{
    struct watch *w = srv->watch;
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_signal(&w->tick);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    while (w->socks) { /* connections libmicrohttpd did not report closed */
        struct sock *s = w->socks;
        w->socks = s->next;
        free(s);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->tick);
    free(w);
    srv->watch = NULL;
}
