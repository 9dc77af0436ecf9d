/* writer: the writer thread and group commit (see writer.h). */
#include "writer.h"
#include "fleet.h"
#include "peers.h"
#include "watch.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct writer {
    struct server *srv;
    pthread_mutex_t lock; /* the queue and quit */
    pthread_cond_t wake;
    struct job *head, *tail;
    bool quit, closed, busy;
    pthread_cond_t idle; /* the queue is empty and no group runs */
    pthread_t thread;
};

/* ---- effects ---- */

void effects_bump(struct effects *fx, const char *cluster, int64_t revision)
{
    for (size_t i = 0; i < fx->nbumped; i++)
        if (strcmp(fx->bumped[i], cluster) == 0) {
            fx->revisions[i] = revision;
            return;
        }
    char **b = realloc(fx->bumped, (fx->nbumped + 1) * sizeof(*b));
    if (b)
        fx->bumped = b;
    int64_t *r = b ? realloc(fx->revisions, (fx->nbumped + 1) * sizeof(*r)) : NULL;
    if (r)
        fx->revisions = r;
    char *name = r ? strdup(cluster) : NULL;
    if (!name) {
        fx->failed = true;
        return;
    }
    fx->bumped[fx->nbumped] = name;
    fx->revisions[fx->nbumped++] = revision;
}

void effects_node(struct effects *fx, int64_t id)
{
    int64_t *n = realloc(fx->nodes, (fx->nnodes + 1) * sizeof(*n));
    if (!n) {
        fx->failed = true;
        return;
    }
    fx->nodes = n;
    fx->nodes[fx->nnodes++] = id;
}

void effects_line(struct effects *fx, bool audit, const char *text, size_t len)
{
    char **buf = audit ? &fx->audit_lines : &fx->alert_lines;
    size_t *have = audit ? &fx->audit_len : &fx->alert_len;
    char *b = realloc(*buf, *have + len + 2);
    if (!b) {
        fx->failed = true;
        return;
    }
    memcpy(b + *have, text, len);
    b[*have + len] = '\n';
    b[*have + len + 1] = '\0';
    *buf = b;
    *have += len + 1;
}

void effects_clear(struct effects *fx)
{
    for (size_t i = 0; i < fx->nbumped; i++)
        free(fx->bumped[i]);
    free(fx->bumped);
    free(fx->revisions);
    free(fx->nodes);
    free(fx->alert_lines);
    free(fx->audit_lines);
    *fx = (struct effects){0};
}

/* ---- the thread ---- */

bool writer_submit(struct writer *w, struct job *j, struct MHD_Connection *c)
{
    j->conn = c;
    j->next = NULL;
    j->done = 0;
    pthread_mutex_lock(&w->lock);
    if (w->closed) {
        pthread_mutex_unlock(&w->lock);
        return false;
    }
    /* Suspended before it is queued: the writer can only resume a suspended connection. */
    MHD_suspend_connection(c);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    return true;
}

void writer_close(struct writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->closed = true;
    while (w->head || w->busy)
        pthread_cond_wait(&w->idle, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

static int exec_sql(struct store *st, const char *sql)
{
    return st->ops->exec(st, sql);
}

/* Runs one job inside a savepoint; its writes stay only when it answered 2xx. */
static void run_job(struct server *srv, struct job *j)
{
    struct store *st = &srv->store;
    j->err = exec_sql(st, "SAVEPOINT job");
    if (!j->err)
        j->err = j->handler(j->rq, j->rs);
    bool ok = !j->err && j->rs->status >= 200 && j->rs->status < 300 && !j->rq->fx.failed;
    if (!j->err && j->rq->fx.failed)
        j->err = -ENOMEM;
    if (!ok) {
        effects_clear(&j->rq->fx);
        int rb = exec_sql(st, "ROLLBACK TO job");
        if (!j->err && rb)
            j->err = rb;
    }
    int rel = exec_sql(st, "RELEASE job");
    if (!j->err && rel)
        j->err = rel;
}

static void write_lines(FILE *f, const char *text, size_t len, const char *what)
{
    if (!f || !len)
        return;
    if (fwrite(text, 1, len, f) != len || fflush(f) != 0)
        fprintf(stderr, "moat-server: --%s-out: %s\n", what, strerror(errno));
}

/* After the commit: what the group's requests noted, in their order. */
static void carry_out(struct server *srv, struct job *group)
{
    for (struct job *j = group; j; j = j->next) {
        struct effects *fx = &j->rq->fx;
        for (size_t i = 0; i < fx->nnodes; i++)
            fleet_node_reload(srv, fx->nodes[i]);
        write_lines(srv->alerts_out, fx->alert_lines, fx->alert_len, "alerts");
        write_lines(srv->audit_out, fx->audit_lines, fx->audit_len, "audit");
    }
    /* Revisions and the change feed last: a woken long-poll finds the nodes' and the
     * store's new state. */
    unsigned topics = 0;
    for (struct job *j = group; j; j = j->next) {
        struct effects *fx = &j->rq->fx;
        changes_count(srv, fx->topics);
        topics |= fx->topics;
        if (fx->revoked) /* cached credentials are checked again (auth.c) */
            __atomic_add_fetch(&srv->auth_gen, 1, __ATOMIC_RELEASE);
        for (size_t i = 0; i < fx->nbumped; i++) {
            if (fx->revisions[i] <= 0) /* the cluster is gone */
                agents_cache_forget(srv, fx->bumped[i]);
            fleet_revision_set(srv->fleet, fx->bumped[i], fx->revisions[i]);
            watch_wake(srv->watch, fx->bumped[i]);
        }
        effects_clear(fx);
    }
    if (topics)
        changes_wake(srv, topics);
}

/* Makes a job as it was before its handler ran (the group runs again). */
static void job_reset(struct job *j)
{
    effects_clear(&j->rq->fx);
    j->rq->fx.topics = j->topics;
    resp_reset(j->rs);
    j->err = 0;
}

/*
 * One attempt at the group: every job in its savepoint, the notice to the
 * other replicas (peers.h), the commit. -EAGAIN when the store says the
 * transaction conflicted with another replica's (store.h): nothing stayed.
 */
static int group_once(struct server *srv, struct job *group)
{
    struct store *st = &srv->store;
    int err = st->ops->begin(st);
    for (struct job *j = group; !err && j; j = j->next)
        run_job(srv, j);
    if (!err)
        err = peers_notify(srv, group);
    if (!err)
        err = st->ops->commit(st);
    if (err)
        st->ops->rollback(st);
    return err;
}

/* Microseconds to wait before attempt `n` (1, 2, ...): random, up to 2^n ms. */
static useconds_t backoff_us(unsigned n)
{
    unsigned max = 1000u << (n < 8 ? n : 8);
    return (useconds_t)((unsigned long)random() % max); /* only the writer thread draws */
}

static void run_group(struct server *srv, struct job *group)
{
    for (struct job *j = group; j; j = j->next)
        j->topics = j->rq->fx.topics; /* http.c noted them before the handler runs */
    int err = group_once(srv, group);
    for (unsigned n = 1; err == -EAGAIN && n <= WRITER_ATTEMPTS; n++) {
        __atomic_add_fetch(&srv->write_retries, 1, __ATOMIC_RELAXED);
        for (struct job *j = group; j; j = j->next)
            job_reset(j);
        usleep(backoff_us(n));
        err = group_once(srv, group);
    }
    if (err) {
        if (err != -EAGAIN)
            fprintf(stderr, "moat-server: a group of writes failed to commit: %s\n",
                    strerror(-err));
        for (struct job *j = group; j; j = j->next) {
            effects_clear(&j->rq->fx);
            j->err = err; /* nothing of the group stays */
        }
    } else {
        carry_out(srv, group);
    }
    for (struct job *j = group, *next; j; j = next) {
        next = j->next;
        struct MHD_Connection *c = j->conn;
        j->done = 1;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        MHD_resume_connection(c); /* j may be gone once the worker sees it resumed */
    }
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->quit) {
            pthread_cond_broadcast(&w->idle);
            pthread_cond_wait(&w->wake, &w->lock);
        }
        if (!w->head)
            break; /* quit with nothing queued */
        struct job *group = w->head, *last = group;
        for (size_t n = 1; last->next && n < WRITER_GROUP_MAX; n++)
            last = last->next;
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        w->busy = true;
        pthread_mutex_unlock(&w->lock);
        run_group(w->srv, group);
        pthread_mutex_lock(&w->lock);
        w->busy = false;
    }
    pthread_cond_broadcast(&w->idle);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int writer_start(struct server *srv)
{
    struct writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->srv = srv;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        return -ENOMEM;
    }
    if (pthread_cond_init(&w->wake, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        return -ENOMEM;
    }
    if (pthread_cond_init(&w->idle, NULL) != 0) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return -ENOMEM;
    }
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->idle);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return -EAGAIN;
    }
    srv->writer = w;
    return 0;
}

void writer_stop(struct server *srv)
{
    struct writer *w = srv->writer;
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->idle);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
    srv->writer = NULL;
}
