/*
 * api_console: the answers the web console (web/, served by static.c) needs
 * beyond the resource routes:
 *
 *   GET  /api/v1/whoami            the role of the caller's token;
 *   GET  /api/v1/changes?cursor=C&wait=S[&beat=B]
 *        the change feed: a cursor names how many successful writes of each
 *        topic (config, alerts, nodes, heartbeats) this server has seen; the
 *        answer says which topics moved since C, waiting up to S seconds
 *        (at most 60) while none did, and with B, while heartbeats alone did
 *        and the request is younger than B seconds. The console re-reads
 *        what a moved topic shows, so changes made elsewhere (another
 *        browser, the CLI, an agent's events) appear without a reload;
 *   POST /api/v1/objects/preview[?id=N]
 *        the workloads a network object selects now: the body is a draft
 *        object document as POST /objects takes it (name optional), checked
 *        the same way; `id` is the object it will replace. A draft that is not
 *        valid yet is answered 200 with `valid: false` and the errors POST
 *        /objects would give (a form previews while it is typed); a body
 *        that is not an object document at all is a 400.
 *
 * The feed's counters move after a write's commit (writer.c carries out the
 * topics http.c noted in the request's effects, changes_topics()), and the
 * change long-polls are suspended connections (watch.c, CHANGES_WAIT_KEY):
 * an open console holds a socket, not a thread. The counters live in this
 * server process only: replicas sharing a database each count their own
 * writes (the console also re-reads on a timer, see docs/console.md).
 */
#include "server.h"
#include "validate.h"
#include "watch.h"

#include "image.h"
#include "model.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define FEED_WAIT_MAX 60 /* seconds a change long-poll may wait */
/* The name a draft object without one is checked under (a valid name, unlikely to be taken). */
#define PREVIEW_NAME "--preview--"

static const char *const topic_names[CHANGE_TOPICS] = {"config", "alerts", "nodes", "heartbeats"};

/* A response was set: 1, or the error that kept it from being set. */
static int stop(int err)
{
    return err < 0 ? err : 1;
}

/* ---- the change feed ------------------------------------------------------ */

int changes_init(struct server *srv)
{
    /* A cursor from an earlier run of the server must not look current. */
    while (srv->feed.boot == 0)
        if (getrandom(&srv->feed.boot, sizeof(srv->feed.boot), 0) != sizeof(srv->feed.boot))
            return -errno;
    return 0;
}

/* The topic a write route belongs to, by its path pattern. */
static enum change_topic topic_of(const char *pattern)
{
    if (strncmp(pattern, "/api/v1/agents/events", 21) == 0 ||
        strncmp(pattern, "/api/v1/alerts", 14) == 0)
        return CHANGE_ALERTS;
    if (strcmp(pattern, "/api/v1/agents/heartbeat") == 0)
        return CHANGE_HEARTBEATS;
    if (strncmp(pattern, "/api/v1/agents/", 15) == 0 || strncmp(pattern, "/api/v1/nodes", 13) == 0)
        return CHANGE_NODES;
    return CHANGE_CONFIG;
}

unsigned changes_topics(const struct route *r, const char *method)
{
    if (r->mode == ROUTE_READ || strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return 0;
    return 1u << topic_of(r->pattern);
}

void changes_count(struct server *srv, unsigned topics)
{
    for (int t = 0; t < CHANGE_TOPICS; t++)
        if (topics & (1u << t))
            __atomic_add_fetch(&srv->feed.count[t], 1, __ATOMIC_SEQ_CST);
}

void changes_wake(struct server *srv, unsigned topics)
{
    if (topics)
        watch_wake(srv->watch, CHANGES_WAIT_KEY);
    if (topics & ~(1u << CHANGE_HEARTBEATS))
        watch_wake(srv->watch, CHANGES_WAIT_NOBEAT);
}

/* The counters now (each read atomically; a write between two reads shows at the next look). */
static void feed_now(const struct server *srv, int64_t *count)
{
    for (int t = 0; t < CHANGE_TOPICS; t++)
        count[t] = __atomic_load_n(&srv->feed.count[t], __ATOMIC_SEQ_CST);
}

static void cursor_text(uint32_t boot, const int64_t *count, char *out, size_t n)
{
    snprintf(out, n, "%08" PRIx32 ".%" PRId64 ".%" PRId64 ".%" PRId64 ".%" PRId64, boot, count[0],
             count[1], count[2], count[3]);
}

/* Parses a cursor into boot and counts: false when it is not one. */
static bool cursor_parse(const char *s, uint32_t *boot, int64_t *count)
{
    char *end;
    errno = 0;
    unsigned long b = strtoul(s, &end, 16);
    if (end != s + 8 || *end != '.' || errno || b > UINT32_MAX)
        return false;
    *boot = (uint32_t)b;
    for (int t = 0; t < CHANGE_TOPICS; t++) {
        const char *at = end + 1;
        if (*end != '.' || *at < '0' || *at > '9')
            return false;
        count[t] = strtoll(at, &end, 10);
        if (errno)
            return false;
    }
    return *end == '\0';
}

/* The topics whose counts differ from the cursor's (all of them for another boot). */
static json_t *moved_topics(uint32_t boot_now, const int64_t *now, uint32_t boot,
                            const int64_t *count)
{
    json_t *list = json_array();
    for (int t = 0; list && t < CHANGE_TOPICS; t++)
        if ((boot != boot_now || count[t] != now[t]) &&
            json_array_append_new(list, json_string(topic_names[t])) < 0) {
            json_decref(list);
            return NULL;
        }
    return list;
}

/* Query argument `name`, seconds 0..FEED_WAIT_MAX, into *v (0 when not given). 0 or 1 (400). */
static int feed_seconds(struct req *rq, struct resp *rs, const char *name, long *v)
{
    const char *s = req_query(rq, name);
    *v = 0;
    if (!s)
        return 0;
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    if (!*s || *end || errno || *v < 0 || *v > FEED_WAIT_MAX)
        return stop(resp_error(rs, 400, name, "must be 0..%d (seconds)", FEED_WAIT_MAX));
    return 0;
}

static int feed_args(struct req *rq, struct resp *rs, bool *given, uint32_t *boot, int64_t *count,
                     long *wait, long *beat)
{
    static const char *const args[] = {"cursor", "wait", "beat", NULL};
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, args, false, &q);
    if (rc)
        return rc;
    const char *cursor = req_query(rq, "cursor");
    *given = cursor != NULL;
    if (cursor && !cursor_parse(cursor, boot, count))
        return stop(resp_error(rs, 400, "cursor", "is not a cursor from GET /api/v1/changes"));
    rc = feed_seconds(rq, rs, "wait", wait);
    return rc ? rc : feed_seconds(rq, rs, "beat", beat);
}

/*
 * A read route: when nothing moved since the cursor, the request asks to
 * wait (resp.wait_key) and http.c suspends its connection until a commit
 * moves a topic (changes_wake), the wait is over, or the server stops; then
 * this runs again (rq->resumed) and answers. With `beat=S`, an answer that
 * would name heartbeats alone is held until S seconds after the request
 * came (woken early only by another topic): with thousands of agents the
 * heartbeats move every few milliseconds, and a console re-polling at each
 * would never wait at all.
 */
int api_changes(struct req *rq, struct resp *rs)
{
    struct server *srv = rq->srv;
    bool given;
    uint32_t boot = 0;
    int64_t count[CHANGE_TOPICS] = {0}, now[CHANGE_TOPICS];
    long wait, beat;
    int rc = feed_args(rq, rs, &given, &boot, count, &wait, &beat);
    if (rc)
        return rc < 0 ? rc : 0;
    double t = watch_now();
    if (!rq->resumed)
        rq->deadline = t + (double)wait;
    double beat_at =
        rq->deadline - (double)wait + (double)beat; /* the request came at deadline - wait */
    feed_now(srv, now);
    json_t *moved = moved_topics(srv->feed.boot, now, boot, count);
    if (!moved)
        return -ENOMEM;
    size_t n = json_array_size(moved);
    bool beats_only = n == 1 && strcmp(json_string_value(json_array_get(moved, 0)),
                                       topic_names[CHANGE_HEARTBEATS]) == 0;
    if (given && t < rq->deadline && !srv->stopping && (n == 0 || (beats_only && t < beat_at))) {
        json_decref(moved);
        /* suspended until a topic moves (watch.h); holding heartbeats back, until another does */
        rs->wait_key = n == 0 ? CHANGES_WAIT_KEY : CHANGES_WAIT_NOBEAT;
        rs->wait_until = n == 0 ? 0 : beat_at;
        return 0;
    }
    if (!given) /* a first call only learns the cursor */
        json_array_clear(moved);
    char cursor[128];
    cursor_text(srv->feed.boot, now, cursor, sizeof(cursor));
    return resp_json(rs, 200, json_pack("{s:s,s:o}", "cursor", cursor, "changed", moved));
}

/* ---- who am I ------------------------------------------------------------- */

int api_whoami(struct req *rq, struct resp *rs)
{
    return resp_json(rs, 200, json_pack("{s:s}", "role", role_name(rq->role)));
}

/* ---- object preview ------------------------------------------------------- */

/*
 * A stored workload as libmoat's matcher reads it. The strings are borrowed
 * from `doc` (they stay its own: nothing here writes or frees them); labels
 * and forms are allocated and freed by preview_workload_clear.
 */
static int preview_workload(const json_t *doc, struct moat_workload *w)
{
    memset(w, 0, sizeof(*w));
    w->name = (char *)jstr(doc, "name");
    w->namespace = (char *)jstr(doc, "namespace");
    const json_t *labels = json_object_get(doc, "labels");
    size_t n = json_object_size(labels);
    if (n) {
        w->labels = calloc(n, sizeof(*w->labels));
        if (!w->labels)
            return -ENOMEM;
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)labels, key, v)
        {
            if (!json_is_string(v))
                continue;
            w->labels[w->nlabels].key = (char *)key;
            w->labels[w->nlabels++].value = (char *)json_string_value(v);
        }
    }
    const char *image = json_string_value(json_object_get(doc, "image"));
    if (image) {
        int err;
        w->forms = image_forms_pack(image, &err);
        if (err == -ENOMEM)
            return err; /* -EINVAL: no readable image, matches no image pattern */
    }
    return 0;
}

static void preview_workload_clear(struct moat_workload *w)
{
    free(w->labels); /* the strings are the document's */
    free(w->forms);
}

/* The stored workloads `o` selects: the page `page` of them into items, how many in *total. */
static int preview_match(struct server *srv, const struct moat_object *o,
                         const struct store_query *page, json_t *items, int64_t *total)
{
    struct store_query q = {.limit = -1};
    json_t *all;
    int64_t n;
    int err = srv->store.ops->list(&srv->store, STORE_WORKLOAD, &q, &all, &n);
    *total = 0;
    for (size_t i = 0; !err && i < json_array_size(all); i++) {
        json_t *doc = json_array_get(all, i);
        struct moat_workload w;
        err = preview_workload(doc, &w);
        bool hit = !err && object_matches_workload(o, &w, jstr(doc, "cluster"));
        preview_workload_clear(&w);
        if (!hit)
            continue;
        if (*total >= page->offset && *total - page->offset < page->limit &&
            json_array_append(items, doc) < 0)
            err = -ENOMEM;
        (*total)++;
    }
    json_decref(all);
    return err;
}

/* The request's draft object, named PREVIEW_NAME when it has no name yet. */
static int preview_doc(struct req *rq, struct resp *rs, json_t **doc)
{
    int rc = req_doc(rq, rs, "NetworkObject", doc);
    if (rc)
        return rc;
    const json_t *name = json_object_get(*doc, "name");
    if ((!name || (json_is_string(name) && !*json_string_value(name))) &&
        json_object_set_new(*doc, "name", json_string(PREVIEW_NAME)) < 0)
        return -ENOMEM;
    return 0;
}

/* The query: paging, and `id`, the object the draft will replace (*old: its stored document). */
static int preview_args(struct req *rq, struct resp *rs, int64_t *id, json_t **old,
                        struct store_query *page)
{
    static const char *const args[] = {"id", NULL};
    int rc = req_query_check(rq, rs, args, true, page);
    if (rc)
        return rc;
    page->nfilters = 0; /* `id` is not a workload filter */
    *id = 0;
    const char *s = req_query(rq, "id");
    if (!s)
        return 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 1)
        return stop(resp_error(rs, 400, "id", "\"%s\" is not an object id", s));
    int err = rq->srv->store.ops->get(&rq->srv->store, STORE_OBJECT, v, old, NULL);
    if (err == -ENOENT)
        return stop(resp_error(rs, 404, "id", "no object %lld", v));
    *id = v;
    return err;
}

/* Answers that the draft is not valid yet, with `errors` (taken). */
static int preview_invalid(struct resp *rs, json_t *errors)
{
    return resp_json(rs, 200,
                     errors ? json_pack("{s:b,s:o,s:s,s:[],s:i}", "valid", 0, "errors", errors,
                                        "kind", "", "items", "total", 0)
                            : NULL);
}

/* 1 with the answer set when another object has the draft's name (POST /objects: 409). */
static int preview_name_taken(struct req *rq, struct resp *rs, const json_t *doc, int64_t id)
{
    const char *name = jstr(doc, "name");
    int64_t other;
    int err = rq->srv->store.ops->find(&rq->srv->store, STORE_OBJECT, NULL, name, &other);
    if (err == -ENOENT || (!err && other == id))
        return 0;
    if (err)
        return err;
    char msg[128];
    snprintf(msg, sizeof(msg), "object \"%s\" exists", name);
    return stop(preview_invalid(rs, json_pack("[{s:s,s:s}]", "field", "name", "message", msg)));
}

int api_objects_preview(struct req *rq, struct resp *rs)
{
    int64_t id, total = 0;
    struct store_query page = {0};
    json_t *doc = NULL, *items = NULL, *old = NULL;
    struct moat_policy *p = NULL;
    int rc = preview_args(rq, rs, &id, &old, &page);
    if (!rc)
        rc = preview_doc(rq, rs, &doc);
    if (!rc)
        rc = preview_name_taken(rq, rs, doc, id);
    bool invalid = false;
    if (!rc) {
        struct change ch = {
            .kind = STORE_OBJECT, .id = id, .doc = doc, .name = old ? jstr(old, "name") : NULL};
        rc = validate_change(rq->srv, &ch, 400, rs, &p);
        invalid = rc == 1;
        if (invalid) /* the draft is not valid yet: that is the preview's answer, not a failure */
            rc = preview_invalid(rs, json_incref(json_object_get(rs->json, "errors")));
    }
    uint32_t at = rc || invalid ? MOAT_NONE : policy_find_object(p, jstr(doc, "name"));
    if (!rc && !invalid && at == MOAT_NONE)
        rc = -ENOENT; /* validated, so it is there */
    if (!rc && !invalid)
        rc = (items = json_array()) ? 0 : -ENOMEM;
    if (!rc && !invalid)
        rc = preview_match(rq->srv, &p->objects[at], &page, items, &total);
    if (!rc && !invalid) {
        rc = resp_json(rs, 200,
                       json_pack("{s:b,s:[],s:s,s:O,s:I}", "valid", 1, "errors", "kind",
                                 object_kind_name(p->objects[at].kind), "items", items, "total",
                                 (json_int_t)total));
    }
    json_decref(items);
    json_decref(doc);
    json_decref(old);
    policy_free(p);
    return rc < 0 ? rc : 0;
}
