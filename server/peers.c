/* peers: notices between replicas (see peers.h). */
#include "peers.h"
#include "fleet.h"
#include "watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A notice is compact JSON: {"r": [[cluster, revision], ...], "n": [node ids],
 * "t": [count per change topic], "v": 1 when a credential may have gone}.
 * A group that touched more than fits into one notice sends several.
 */
struct notice {
    json_t *r, *n, *t;
    bool revoked;
    int64_t counts[CHANGE_TOPICS];
};

static int notice_init(struct notice *nt)
{
    *nt = (struct notice){.r = json_array(), .n = json_array()};
    return nt->r && nt->n ? 0 : -ENOMEM;
}

static void notice_free(struct notice *nt)
{
    json_decref(nt->r);
    json_decref(nt->n);
    json_decref(nt->t);
}

static bool notice_empty(const struct notice *nt)
{
    if (json_array_size(nt->r) || json_array_size(nt->n) || nt->revoked)
        return false;
    for (int t = 0; t < CHANGE_TOPICS; t++)
        if (nt->counts[t])
            return false;
    return true;
}

/* Sends what nt holds (when anything) and empties it. */
static int notice_send(struct server *srv, struct notice *nt)
{
    if (notice_empty(nt))
        return 0;
    json_t *t = json_array();
    for (int i = 0; t && i < CHANGE_TOPICS; i++)
        if (json_array_append_new(t, json_integer(nt->counts[i])) < 0) {
            json_decref(t);
            t = NULL;
        }
    json_t *body =
        t ? json_pack("{s:O,s:O,s:o,s:b}", "r", nt->r, "n", nt->n, "t", t, "v", nt->revoked) : NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    int err = text ? srv->store.ops->notify(&srv->store, text) : -ENOMEM;
    free(text);
    json_array_clear(nt->r);
    json_array_clear(nt->n);
    nt->revoked = false;
    memset(nt->counts, 0, sizeof(nt->counts));
    return err;
}

/* Room for one more entry: SERVER_NAME_MAX and a revision, or a node id, with margin. */
static bool notice_full(const struct notice *nt)
{
    size_t size =
        json_array_size(nt->r) * (SERVER_NAME_MAX * 2 + 32) + json_array_size(nt->n) * 22 + 200;
    return size + SERVER_NAME_MAX * 2 + 32 > STORE_NOTICE_MAX;
}

int peers_notify(struct server *srv, const struct job *group)
{
    if (!srv->store.ops->notify)
        return 0;
    struct notice nt;
    int err = notice_init(&nt);
    for (const struct job *j = group; !err && j; j = j->next) {
        const struct effects *fx = &j->rq->fx;
        for (int t = 0; t < CHANGE_TOPICS; t++)
            nt.counts[t] += (fx->topics >> t) & 1u;
        nt.revoked |= fx->revoked;
        for (size_t i = 0; !err && i < fx->nbumped; i++) {
            if (notice_full(&nt))
                err = notice_send(srv, &nt);
            json_t *e = json_pack("[s,I]", fx->bumped[i], (json_int_t)fx->revisions[i]);
            if (!err && (!e || json_array_append_new(nt.r, e) < 0))
                err = -ENOMEM;
        }
        for (size_t i = 0; !err && i < fx->nnodes; i++) {
            if (notice_full(&nt))
                err = notice_send(srv, &nt);
            if (!err && json_array_append_new(nt.n, json_integer(fx->nodes[i])) < 0)
                err = -ENOMEM;
        }
    }
    if (!err)
        err = notice_send(srv, &nt);
    notice_free(&nt);
    return err;
}

/* What another replica committed: the same updates writer.c makes after its own commits. */
static void notice_apply(struct server *srv, const char *text)
{
    json_error_t jerr;
    json_t *body = json_loads(text, 0, &jerr);
    const json_t *r = json_object_get(body, "r"), *n = json_object_get(body, "n"),
                 *t = json_object_get(body, "t");
    if (!json_is_array(r) || !json_is_array(n) || !json_is_array(t)) {
        fprintf(stderr, "moat-server: peers: a notice that does not parse: ignored\n");
        json_decref(body);
        return;
    }
    size_t i;
    const json_t *v;
    if (json_array_size(n) && srv->store.ops->read_begin(&srv->store) == 0) {
        json_array_foreach(n, i, v) fleet_node_reload(srv, json_integer_value(v));
        srv->store.ops->read_end(&srv->store);
    }
    if (json_is_true(json_object_get(body, "v")))
        __atomic_add_fetch(&srv->auth_gen, 1, __ATOMIC_RELEASE);
    json_array_foreach(r, i, v)
    {
        const char *cluster = json_string_value(json_array_get(v, 0));
        int64_t rev = json_integer_value(json_array_get(v, 1));
        if (!cluster || strlen(cluster) > SERVER_NAME_MAX)
            continue;
        if (rev <= 0)
            agents_cache_forget(srv, cluster);
        fleet_revision_set(srv->fleet, cluster, rev);
        watch_wake(srv->watch, cluster);
    }
    unsigned topics = 0;
    json_array_foreach(t, i, v)
    {
        int64_t c = json_integer_value(v);
        if (i < CHANGE_TOPICS && c > 0) {
            __atomic_add_fetch(&srv->feed.count[i], c, __ATOMIC_SEQ_CST);
            topics |= 1u << i;
        }
    }
    changes_wake(srv, topics);
    json_decref(body);
}

static void on_notice(void *arg, const char *text)
{
    struct server *srv = arg;
    if (text) {
        notice_apply(srv, text);
        return;
    }
    /* Notices may have been missed: everything in memory is read again. */
    int err = fleet_resync(srv);
    if (err)
        fprintf(stderr, "moat-server: peers: cannot read the fleet again: %s\n", strerror(-err));
    __atomic_add_fetch(&srv->auth_gen, 1, __ATOMIC_RELEASE);
    unsigned all = 0;
    for (int i = 0; i < CHANGE_TOPICS; i++) {
        __atomic_add_fetch(&srv->feed.count[i], 1, __ATOMIC_SEQ_CST);
        all |= 1u << i;
    }
    changes_wake(srv, all);
}

int peers_start(struct server *srv)
{
    if (!srv->store.ops->listen)
        return 0;
    return srv->store.ops->listen(&srv->store, on_notice, srv);
}

void peers_stop(struct server *srv)
{
    if (srv->store.ops->listen)
        srv->store.ops->listen(&srv->store, NULL, NULL);
}
