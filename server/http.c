/* http: the libmicrohttpd glue (see http.h). */
#include "http.h"
#include "auth.h"
#include "jsonmem.h"
#include "jsonout.h"
#include "watch.h"
#include "writer.h"

#include "throttle.h"
#include "uri.h"
#include "utf8.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/*
 * Request line and headers must fit in a connection's memory (libmicrohttpd's
 * pool; more is 414 or 431). The pool is resident for the connection's life
 * (libmicrohttpd zeroes it between requests), so it is most of what an idle
 * or waiting connection costs: 16 KiB holds any request the API takes (a
 * list of 1,000 rule ids is 7 KB) and keeps 10,000 long-polls near 250 MB
 * (docs/benchmarks.md; 8 KiB: 14 KB a connection, 40 KiB: 46 KB, measured).
 */
#define MEMORY_PER_CONN (16u << 10)
#define STOP_GRACE_S    2.0 /* for answers to reach clients when the server stops */

/* ---- shared response bodies ---- */

struct shared_text {
    atomic_int refs;
    size_t len;
    char *p;     /* the text: text[] below, or a buffer taken over */
    char *owned; /* the buffer taken over (shared_text_take), freed with it */
    char text[];
};

struct shared_text *shared_text_new(const char *text, size_t len)
{
    struct shared_text *t = malloc(sizeof(*t) + len + 1);
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1);
    t->len = len;
    t->p = t->text;
    t->owned = NULL;
    memcpy(t->text, text, len);
    t->text[len] = '\0';
    return t;
}

struct shared_text *shared_text_take(char *text, size_t len)
{
    struct shared_text *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1);
    t->len = len;
    t->p = t->owned = text;
    return t;
}

struct shared_text *shared_text_ref(struct shared_text *t)
{
    if (t)
        atomic_fetch_add(&t->refs, 1);
    return t;
}

void shared_text_unref(struct shared_text *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
        free(t->owned);
        free(t);
    }
}

const char *shared_text_bytes(const struct shared_text *t, size_t *len)
{
    *len = t->len;
    return t->p;
}

static void shared_release(void *cls)
{
    shared_text_unref(cls);
}

/* ---- one request ---- */

enum phase {
    PH_NEW,      /* nothing seen but the request line */
    PH_BODY,     /* headers checked; the body is arriving */
    PH_WRITING,  /* queued for the writer, suspended */
    PH_WAITING,  /* suspended in watch_wait */
    PH_ANSWERED, /* a response is queued */
};

/* One request, from its request line (uri_logged) to its end (on_completed). */
struct conn {
    struct timespec start;
    struct sock *sock;
    char *raw; /* the request target as received */
    struct uri uri;
    enum phase phase;
    bool begun, authorized;
    int route; /* index, or -1 */
    unsigned status;
    char *body;
    size_t len, cap;
    size_t expect;   /* Content-Length when given and within body_max: the body's room */
    size_t body_max; /* the route's */
    struct req rq;
    struct resp rs;
    struct job job;
    struct waiter waiter;
};

static double since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

void resp_reset(struct resp *rs)
{
    json_decref(rs->json);
    free(rs->text);
    shared_text_unref(rs->shared);
    if (rs->mhd)
        MHD_destroy_response(rs->mhd);
    *rs = (struct resp){0};
}

/* The client's address as throttle key bytes (IPv4 as 4 bytes, also when mapped) and text. */
static size_t client_key(struct MHD_Connection *c, unsigned char *key, char *text, size_t n)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    text[0] = '\0';
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        memcpy(key, &a->sin_addr, 4);
        inet_ntop(AF_INET, &a->sin_addr, text, (socklen_t)n);
        return 4;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        bool mapped = IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
        memcpy(key, mapped ? a->sin6_addr.s6_addr + 12 : a->sin6_addr.s6_addr, mapped ? 4 : 16);
        if (mapped)
            inet_ntop(AF_INET, a->sin6_addr.s6_addr + 12, text, (socklen_t)n);
        else
            inet_ntop(AF_INET6, &a->sin6_addr, text, (socklen_t)n);
        return mapped ? 4 : 16;
    }
    return 0;
}

/* ---- sending ---- */

static enum MHD_Result send_resp(struct MHD_Connection *c, struct conn *cn)
{
    struct resp *rs = &cn->rs;
    struct MHD_Response *r = rs->mhd;
    rs->mhd = NULL;
    if (!r && rs->shared) {
        struct shared_text *t = rs->shared;
        rs->shared = NULL;
        r = MHD_create_response_from_buffer_with_free_callback_cls(t->len, t->p, shared_release, t);
        if (!r)
            shared_text_unref(t);
    } else if (!r) {
        size_t len = 0;
        char *text = rs->text;
        rs->text = NULL;
        if (text)
            len = strlen(text);
        else if (rs->json)
            text = json_text(rs->json, &len);
        bool empty = !text && !rs->json;
        if (!text && !empty)
            return MHD_NO;
        r = empty ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)
                  : MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!r)
            free(text);
    }
    if (!r)
        return MHD_NO;
    if (!rs->mhd)
        MHD_add_response_header(r, "Content-Type", rs->ctype ? rs->ctype : "application/json");
    for (const char *h = rs->extra; h && *h;) { /* "Name: value" lines */
        char name[64], value[512];
        const char *colon = strchr(h, ':'), *eol = strchrnul(h, '\n');
        if (!colon || colon > eol)
            break;
        snprintf(name, sizeof(name), "%.*s", (int)(colon - h), h);
        const char *v = colon + 1;
        while (v < eol && *v == ' ')
            v++;
        snprintf(value, sizeof(value), "%.*s", (int)(eol - v), v);
        MHD_add_response_header(r, name, value);
        h = *eol ? eol + 1 : eol;
    }
    if (rs->retry_after) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%u", rs->retry_after);
        MHD_add_response_header(r, "Retry-After", secs);
    }
    cn->status = rs->status;
    cn->phase = PH_ANSWERED;
    enum MHD_Result ret = MHD_queue_response(c, rs->status, r);
    MHD_destroy_response(r);
    resp_reset(rs);
    return ret;
}

/* Queues the response in cn->rs; a handler's internal error (err < 0) becomes a 500 first. */
static enum MHD_Result answer(struct MHD_Connection *c, struct conn *cn, int err)
{
    struct server *srv = cn->rq.srv;
    if (err < 0) {
        fprintf(stderr, "moat-server: %s %s: %s\n", cn->rq.method, cn->rq.path ? cn->rq.path : "",
                strerror(-err));
        resp_reset(&cn->rs);
        /* -EAGAIN: the writes of other replicas kept conflicting with this one (store.h) */
        if (err == -EAGAIN) {
            cn->rs.retry_after = 1;
            if (resp_error(&cn->rs, 503, "",
                           "the database is busy with conflicting writes: "
                           "nothing was changed, try again") < 0)
                return MHD_NO;
        } else if (resp_error(&cn->rs, 500, "", "internal error: %s", strerror(-err)) < 0) {
            return MHD_NO;
        }
    }
    if (cn->rs.status == 401) { /* a failed authentication costs its source */
        unsigned char key[16];
        char text[64];
        size_t klen = client_key(c, key, text, sizeof(text));
        pthread_mutex_lock(&srv->throttle_lock);
        throttle_charge(srv->throttle, key, klen, watch_now());
        pthread_mutex_unlock(&srv->throttle_lock);
        metrics_add_auth_failure(&srv->metrics);
    }
    return send_resp(c, cn);
}

/* ---- checks before the body ---- */

struct header_count {
    const char *name;
    unsigned n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    (void)value;
    struct header_count *hc = cls;
    hc->n += strcasecmp(key, hc->name) == 0;
    return MHD_YES;
}

static unsigned headers_named(struct MHD_Connection *c, const char *name)
{
    struct header_count hc = {name, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &hc);
    return hc.n;
}

/* True when a Content-Type value is the media type `want` (any parameters, any case). */
static bool content_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    if (!ct || strncasecmp(ct, want, n) != 0)
        return false;
    char next = ct[n];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* Route r's mode, matched with `method`: ROUTE_READ or ROUTE_WRITE. */
static enum route_mode mode_of(const struct route *r, const char *method)
{
    if (r->mode != ROUTE_BY_METHOD)
        return r->mode;
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ? ROUTE_READ : ROUTE_WRITE;
}

/* The role a route needs here: /metrics needs none with --metrics-public. */
static enum role role_needed(const struct server *srv, const struct route *r)
{
    if (r->handler == api_metrics && srv->opts.metrics_public)
        return ROLE_NONE;
    return r->role;
}

/* 1 with 429 set when the source has failed to authenticate too often; else 0. */
static int throttled(struct MHD_Connection *c, struct conn *cn)
{
    struct server *srv = cn->rq.srv;
    unsigned char key[16];
    size_t klen = client_key(c, key, cn->rq.source, sizeof(cn->rq.source));
    pthread_mutex_lock(&srv->throttle_lock);
    unsigned wait = throttle_wait(srv->throttle, key, klen, watch_now());
    pthread_mutex_unlock(&srv->throttle_lock);
    if (!wait)
        return 0;
    metrics_add_throttled(&srv->metrics);
    cn->rs.retry_after = wait;
    int err = resp_error(&cn->rs, 429, "Authorization",
                         "too many failed authentications from %s: try again in %u s",
                         cn->rq.source, wait);
    return err < 0 ? err : 1;
}

/*
 * Checks the bearer token (on a read snapshot of its own) against the
 * route's role. 0 to go on, 1 with a response set (401, 403, 429), or an error.
 */
static int authorize(struct MHD_Connection *c, struct conn *cn)
{
    struct req *rq = &cn->rq;
    struct resp *rs = &cn->rs;
    struct store *st = &rq->srv->store;
    size_t n;
    const struct route *r = &routes_table(&n)[cn->route];
    enum role need = role_needed(rq->srv, r);
    cn->authorized = true;
    if (need == ROLE_NONE && r->handler != api_agents_register)
        return 0;
    int rc = throttled(c, cn);
    if (rc || need == ROLE_NONE)
        return rc;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    int err = st->ops->read_begin(st);
    if (!err)
        err = auth_role(st, h, rq);
    st->ops->read_end(st);
    if (err)
        return err;
    if (rq->role == ROLE_NONE) {
        rs->extra = "WWW-Authenticate: Bearer";
        err = resp_error(rs, 401, "Authorization", "a valid bearer token is required");
    } else if (need == ROLE_AGENT && rq->role != ROLE_AGENT) {
        err = resp_error(rs, 403, "Authorization", "this needs a node credential");
    } else if (rq->role < need) {
        err = resp_error(rs, 403, "Authorization", "this needs the %s role", role_name(need));
    } else {
        return 0;
    }
    return err < 0 ? err : 1;
}

/*
 * What can be decided from the request line and headers: the target (400),
 * the route (404, 405), duplicated or contradicting headers (400), the body's
 * type (415) and announced size (413); and for a request with a body, its
 * authorization, so that nobody uploads without the right to. 0 to go on,
 * 1 with a response set, or an error.
 */
static int begin(struct MHD_Connection *c, struct conn *cn, bool *has_body)
{
    struct req *rq = &cn->rq;
    struct resp *rs = &cn->rs;
    char why[256];
    *has_body = false;
    int err = uri_parse(cn->raw ? cn->raw : "", &cn->uri, why, sizeof(why));
    if (err == -EINVAL)
        return resp_error(rs, 400, "", "%s", why) < 0 ? -ENOMEM : 1;
    if (err)
        return err;
    rq->path = cn->uri.path;
    rq->uri = &cn->uri;
    size_t n;
    const struct route *tab = routes_table(&n);
    int i = routes_match(rq->method, rq->path, rq);
    cn->route = i < 0 ? -1 : i;
    if (i == -ENOENT)
        err = resp_error(rs, 404, "", "no such path: %s%s", rq->path,
                         strncmp(rq->path, "/api/v1/api/v1/", 15) == 0
                             ? " (the server URL should not end in /api/v1)"
                             : "");
    else if (i == -EPERM)
        err = resp_error(rs, 405, "", "method %s is not allowed here", rq->method);
    else if (rq->srv->stopping)
        err = resp_error(rs, 503, "", "the server is stopping");
    if (err < 0)
        return err;
    if (rs->status)
        return 1;
    const struct route *r = &tab[i];
    unsigned auths = headers_named(c, "Authorization");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    unsigned long long want = cl ? strtoull(cl, NULL, 10) : 0;
    cn->body_max = r->body_max ? r->body_max : MOAT_BODY_MAX;
    rq->body_items = r->body_items ? r->body_items : 10000;
    *has_body = want > 0 || te;
    if (auths > 1)
        err = resp_error(rs, 400, "Authorization", "given %u times: give it once", auths);
    else if (cl && te)
        err = resp_error(rs, 400, "Content-Length",
                         "a request cannot have both Content-Length and Transfer-Encoding");
    else if (*has_body && (strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "DELETE") == 0))
        err = resp_error(rs, 400, "", "a %s request has no body", rq->method);
    else if (*has_body &&
             !content_is(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
                         r->body_type ? r->body_type : "application/json"))
        err = resp_error(rs, 415, "Content-Type", "the request body must be %s",
                         r->body_type ? r->body_type : "application/json");
    else if (want > cn->body_max)
        err = resp_error(rs, 413, "", "the request body is larger than %zu bytes", cn->body_max);
    else
        cn->expect = (size_t)want;
    rq->if_none_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    if (err || rs->status)
        return err < 0 ? err : 1;
    if (!r->query_own && cn->uri.nargs > 0)
        return resp_error(rs, 400, cn->uri.args[0].key, "unknown query argument") < 0 ? -ENOMEM : 1;
    return *has_body ? authorize(c, cn) : 0;
}

/* Appends uploaded bytes; past the route's limit the request is answered 413 at once. */
static int body_append(struct conn *cn, const char *data, size_t n)
{
    if (cn->len + n > cn->body_max) {
        int err =
            resp_error(&cn->rs, 413, "", "the request body is larger than %zu bytes", cn->body_max);
        return err < 0 ? err : 1;
    }
    if (cn->len + n + 1 > cn->cap) {
        size_t cap = cn->cap ? cn->cap : cn->expect ? cn->expect + 1 : 4096;
        while (cap < cn->len + n + 1)
            cap *= 2;
        char *b = realloc(cn->body, cap);
        if (!b)
            return -ENOMEM;
        cn->body = b;
        cn->cap = cap;
    }
    memcpy(cn->body + cn->len, data, n);
    cn->len += n;
    cn->body[cn->len] = '\0';
    return 0;
}

/* ---- running handlers ---- */

/* Runs a read handler on a snapshot; it may answer or ask to wait. */
static enum MHD_Result run_read(struct MHD_Connection *c, struct conn *cn)
{
    struct req *rq = &cn->rq;
    struct store *st = &rq->srv->store;
    size_t n;
    const struct route *r = &routes_table(&n)[cn->route];
    for (;;) {
        /* Taken before the handler looks: a wake-up after its look is not missed. */
        uint64_t seen = watch_seq(rq->srv->watch);
        jsonmem_thread(true); /* see jsonmem.h: reads only */
        int err = st->ops->read_begin(st);
        if (!err)
            err = r->handler(rq, &cn->rs);
        st->ops->read_end(st);
        jsonmem_thread(false);
        if (err < 0 || !cn->rs.wait_key || cn->rs.status)
            return answer(c, cn, err);
        const char *key = cn->rs.wait_key;
        double until = cn->rs.wait_until > 0 ? cn->rs.wait_until : rq->deadline;
        cn->rs.wait_key = NULL;
        cn->rs.wait_until = 0;
        cn->phase = PH_WAITING;
        int waits = watch_wait(rq->srv->watch, &cn->waiter, c, key, until, seen);
        if (waits > 0)
            return MHD_YES; /* cn is not touched again until resumed */
        rq->resumed = true;
        if (waits == 0) /* the server stops: answer as when the wait is over */
            rq->deadline = 0;
        /* else something was woken while the handler looked: it looks again */
    }
}

static enum MHD_Result run(struct MHD_Connection *c, struct conn *cn)
{
    struct req *rq = &cn->rq;
    size_t n;
    const struct route *r = &routes_table(&n)[cn->route];
    int err = cn->authorized ? 0 : authorize(c, cn);
    if (err)
        return answer(c, cn, err < 0 ? err : 0);
    rq->body = cn->body;
    rq->body_len = cn->len;
    if (mode_of(r, rq->method) == ROUTE_READ)
        return run_read(c, cn);
    if (r->prepare) {
        err = r->prepare(rq, &cn->rs);
        if (err < 0 || cn->rs.status)
            return answer(c, cn, err);
    }
    rq->fx.topics = changes_topics(r, rq->method); /* dropped with the request if it fails */
    cn->job = (struct job){.rq = rq, .rs = &cn->rs, .handler = r->handler};
    cn->phase = PH_WRITING;
    if (writer_submit(rq->srv->writer, &cn->job, c))
        return MHD_YES; /* cn is not touched again until resumed */
    err = resp_error(&cn->rs, 503, "", "the server is stopping");
    return answer(c, cn, err);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)url; /* cut at a NUL and decoded: the raw target (uri_logged) is read instead */
    (void)version;
    (void)cls;
    struct conn *cn = *con_cls;
    if (!cn)
        return MHD_NO;
    struct server *srv = cn->rq.srv;
    if (cn->phase == PH_ANSWERED) { /* answered before the body: the rest is dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (!cn->begun) {
        cn->begun = true;
        cn->rq.method = method;
        bool has_body;
        int err = begin(c, cn, &has_body);
        watch_sock_state(srv->watch, cn->sock, has_body && !err ? SOCK_BODY : SOCK_BUSY);
        if (err)
            return answer(c, cn, err < 0 ? err : 0);
        cn->phase = has_body ? PH_BODY : PH_NEW;
        return MHD_YES;
    }
    if (*upload_size) {
        int err = body_append(cn, upload, *upload_size);
        *upload_size = 0;
        return err ? answer(c, cn, err < 0 ? err : 0) : MHD_YES;
    }
    if (cn->phase == PH_WRITING) { /* resumed by the writer: the job is done */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return answer(c, cn, cn->job.err);
    }
    if (cn->phase == PH_WAITING) { /* resumed: woken, or the wait is over */
        cn->rq.resumed = true;
        return run_read(c, cn);
    }
    watch_sock_state(srv->watch, cn->sock, SOCK_BUSY);
    return run(c, cn);
}

/* The request line arrived: the request's state, with the target as received. */
static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct server *srv = cls;
    struct conn *cn = calloc(1, sizeof(*cn));
    if (!cn)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &cn->start);
    cn->route = -1;
    cn->raw = strdup(uri ? uri : "");
    cn->rq.srv = srv;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    cn->sock = ci ? ci->socket_context : NULL;
    __atomic_add_fetch(&srv->inflight, 1, __ATOMIC_SEQ_CST);
    return cn;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    struct server *srv = cls;
    struct conn *cn = *con_cls;
    if (!cn)
        return;
    metrics_record(&srv->metrics, cn->route, cn->status ? cn->status : 500, since(&cn->start));
    watch_sock_state(srv->watch, cn->sock, SOCK_IDLE);
    effects_clear(&cn->rq.fx);
    json_decref(cn->rq.prepared);
    resp_reset(&cn->rs);
    uri_clear(&cn->uri);
    free(cn->raw);
    free(cn->body);
    free(cn);
    *con_cls = NULL;
    __atomic_sub_fetch(&srv->inflight, 1, __ATOMIC_SEQ_CST);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? watch_sock_open(srv->watch, ci->connect_fd) : NULL;
        metrics_add_connection(&srv->metrics, 1);
    } else {
        watch_sock_close(srv->watch, *socket_context);
        *socket_context = NULL;
        metrics_add_connection(&srv->metrics, -1);
    }
}

/* ---- the daemon ---- */

/* "ADDR:PORT" or "[V6]:PORT" into a socket address. 0 or -EINVAL. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, bool *v6)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -EINVAL;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    size_t hl = strlen(host);
    *v6 = hl > 2 && host[0] == '[' && host[hl - 1] == ']';
    if (*v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1 ? 0 : -EINVAL;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

int http_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    return -pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/*
 * The connection limit that the file-descriptor limit allows: the soft limit
 * is raised to the hard one, and a few dozen descriptors stay for the store,
 * logs and the listening socket.
 */
/* The default of --max-connections: 10,000 moatd agents hold two connections each (the
 * long-poll, and the reporter's between heartbeats), and admins and consoles need room. */
#define HTTP_MAX_CONNS 32768u

/* Raises the file-descriptor limit to its hard limit; the connections it leaves room for,
 * at most `wanted` (0: HTTP_MAX_CONNS, cut silently; an explicit number cut with a warning). */
static unsigned conn_limit(unsigned wanted)
{
    unsigned want = wanted ? wanted : HTTP_MAX_CONNS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t room = rl.rlim_cur > 128 ? rl.rlim_cur - 128 : 16;
    if (room >= want)
        return want;
    if (wanted)
        fprintf(stderr,
                "moat-server: --max-connections %u: the file descriptor limit (%llu) allows "
                "%llu\n",
                wanted, (unsigned long long)rl.rlim_cur, (unsigned long long)room);
    return (unsigned)room;
}

/* Stops taking requests, answers those that wait, lets the writer finish, stops the daemon. */
static void stop(struct server *srv)
{
    srv->stopping = 1;
    watch_wake_all(srv->watch);
    writer_close(srv->writer);
    double until = watch_now() + STOP_GRACE_S;
    while (__atomic_load_n(&srv->inflight, __ATOMIC_SEQ_CST) > 0 && watch_now() < until)
        usleep(10000);
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}

int http_serve(struct server *srv, const char *listen)
{
    struct sockaddr_storage ss;
    bool v6;
    if (parse_listen(listen, &ss, &v6) < 0)
        return -EINVAL;
    bool tls = srv->opts.tls_cert != NULL;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return -EPROTONOSUPPORT;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES)
        return -ENOSYS;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0) | (tls ? MHD_USE_TLS : 0);
    unsigned limit = conn_limit(srv->opts.max_conns);
    /* Idle connections are closed by watch.c's header deadline; this catches a stalled
     * upload or a client that stops reading its answer. */
    unsigned idle = srv->opts.body_timeout > srv->opts.header_timeout ? srv->opts.body_timeout
                                                                      : srv->opts.header_timeout;
    /* Without TLS the key and certificate options are left out (MHD_OPTION_END ends the list). */
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, srv->opts.threads, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, srv->opts.max_conns_source,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_PER_CONN, MHD_OPTION_CONNECTION_TIMEOUT,
        idle, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_URI_LOG_CALLBACK, uri_logged, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, srv->opts.tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, srv->opts.tls_key, MHD_OPTION_END);
    if (!srv->daemon)
        return -EIO;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    char host[64];
    snprintf(host, sizeof(host), "%.*s", (int)(strrchr(listen, ':') - listen), listen);
    printf("moat-server: listening on %s:%u\n", host, info ? info->port : 0);
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    sigwait(&set, &sig);
    stop(srv);
    return 0;
}
