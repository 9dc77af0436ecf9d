/*
 * api_console: the answers the web console (web/, served by static.c) needs
 * beyond the resource routes:
 *
 *   GET  /api/v1/whoami            the role of the caller's token;
 *   GET  /api/v1/changes?cursor=C&wait=S
 *        the change feed: a cursor names how many successful writes of each
 *        topic (config, alerts, nodes, heartbeats) this server has seen; the
 *        answer says which topics moved since C, waiting up to S seconds
 *        (at most 60) while none did. The console re-reads what a moved topic
 *        shows, so changes made elsewhere (another browser, the CLI, an
 *        agent's events) appear without a reload;
 *   POST /api/v1/objects/preview[?id=N]
 *        the workloads a network object selects now: the body is a draft
 *        object document as POST /objects takes it (name optional), checked
 *        the same way; `id` is the object it will replace. A draft that is not
 *        valid yet is answered 200 with `valid: false` and the errors POST
 *        /objects would give (a form previews while it is typed); a body
 *        that is not an object document at all is a 400.
 *
 * changes_note() is the hook http.c calls after each request; it moves the
 * feed's counters for successful writes. The counters live in this server
 * process only: replicas sharing a database each count their own writes (the
 * console also re-reads on a timer, see docs/console.md).
 */
#include "server.h"
#include "validate.h"

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

/* Sets up the feed on first use (caller holds srv->lock). 0 or -errno. */
static int feed_ready(struct server *srv)
{
    struct change_feed *f = &srv->feed;
    if (f->ready)
        return 0;
    /* A cursor from an earlier run of the server must not look current. */
    while (f->boot == 0)
        if (getrandom(&f->boot, sizeof(f->boot), 0) != sizeof(f->boot))
            return -errno;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -ENOMEM;
    int err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ? -EINVAL : 0;
    if (!err && pthread_cond_init(&f->moved, &ca) != 0)
        err = -ENOMEM;
    pthread_condattr_destroy(&ca);
    f->ready = !err;
    return err;
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

void changes_note(struct server *srv, const struct route *r, const char *method, unsigned status)
{
    if (status < 200 || status > 299 || r->mode == ROUTE_READ || strcmp(method, "GET") == 0 ||
        strcmp(method, "HEAD") == 0)
        return;
    pthread_mutex_lock(&srv->lock);
    if (feed_ready(srv) == 0) {
        srv->feed.count[topic_of(r->pattern)]++;
        pthread_cond_broadcast(&srv->feed.moved);
    }
    pthread_mutex_unlock(&srv->lock);
}

static void cursor_text(const struct change_feed *f, char *out, size_t n)
{
    snprintf(out, n, "%08" PRIx32 ".%" PRId64 ".%" PRId64 ".%" PRId64 ".%" PRId64, f->boot,
             f->count[0], f->count[1], f->count[2], f->count[3]);
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
static json_t *moved_topics(const struct change_feed *f, uint32_t boot, const int64_t *count)
{
    json_t *list = json_array();
    for (int t = 0; list && t < CHANGE_TOPICS; t++)
        if ((boot != f->boot || count[t] != f->count[t]) &&
            json_array_append_new(list, json_string(topic_names[t])) < 0) {
            json_decref(list);
            return NULL;
        }
    return list;
}

static int feed_args(struct req *rq, struct resp *rs, bool *given, uint32_t *boot, int64_t *count,
                     long *wait)
{
    static const char *const args[] = {"cursor", "wait", NULL};
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, args, false, &q);
    if (rc)
        return rc;
    const char *cursor = req_query(rq, "cursor"), *w = req_query(rq, "wait");
    *given = cursor != NULL;
    if (cursor && !cursor_parse(cursor, boot, count))
        return stop(resp_error(rs, 400, "cursor", "is not a cursor from GET /api/v1/changes"));
    *wait = 0;
    if (w) {
        char *end;
        *wait = strtol(w, &end, 10);
        if (!*w || *end || *wait < 0 || *wait > FEED_WAIT_MAX)
            return stop(resp_error(rs, 400, "wait", "must be 0..%d (seconds)", FEED_WAIT_MAX));
    }
    return 0;
}

int api_changes(struct req *rq, struct resp *rs)
{
    struct server *srv = rq->srv;
    bool given;
    uint32_t boot = 0;
    int64_t count[CHANGE_TOPICS] = {0};
    long wait;
    int rc = feed_args(rq, rs, &given, &boot, count, &wait);
    if (rc)
        return rc < 0 ? rc : 0;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait;
    pthread_mutex_lock(&srv->lock);
    int err = feed_ready(srv);
    json_t *moved = NULL;
    while (!err) {
        moved = moved_topics(&srv->feed, boot, count);
        if (!moved || !given || json_array_size(moved) > 0 || srv->stopping)
            break;
        /* Wait in slices of a second: shutdown wakes server.changed, not this. */
        struct timespec now, until;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
            break;
        until = now;
        until.tv_sec += 1;
        if (until.tv_sec > deadline.tv_sec ||
            (until.tv_sec == deadline.tv_sec && until.tv_nsec > deadline.tv_nsec))
            until = deadline;
        json_decref(moved);
        moved = NULL;
        pthread_cond_timedwait(&srv->feed.moved, &srv->lock, &until);
    }
    char cursor[128];
    cursor_text(&srv->feed, cursor, sizeof(cursor));
    pthread_mutex_unlock(&srv->lock);
    if (err) {
        json_decref(moved);
        return err;
    }
    if (!given && moved) /* a first call only learns the cursor */
        json_array_clear(moved);
    return resp_json(rs, 200,
                     moved ? json_pack("{s:s,s:o}", "cursor", cursor, "changed", moved) : NULL);
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
        w->forms = malloc(sizeof(*w->forms));
        if (!w->forms)
            return -ENOMEM;
        if (image_forms(image, w->forms) < 0) { /* no readable image: matches no image pattern */
            free(w->forms);
            w->forms = NULL;
        }
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

static int preview_args(struct req *rq, struct resp *rs, int64_t *id, struct store_query *page)
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
    json_t *old = NULL;
    int err = rq->srv->store.ops->get(&rq->srv->store, STORE_OBJECT, v, &old, NULL);
    json_decref(old);
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
    json_t *doc = NULL, *items = NULL;
    struct moat_policy *p = NULL;
    int rc = preview_args(rq, rs, &id, &page);
    if (!rc)
        rc = preview_doc(rq, rs, &doc);
    if (!rc)
        rc = preview_name_taken(rq, rs, doc, id);
    bool invalid = false;
    if (!rc) {
        struct change ch = {.kind = STORE_OBJECT, .id = id, .doc = doc};
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
    policy_free(p);
    return rc < 0 ? rc : 0;
}
