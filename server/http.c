/* http: the libmicrohttpd glue (see http.h). */
#include "http.h"
#include "auth.h"
#include "jsonmem.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One connection's request, kept between libmicrohttpd's calls. */
struct conn {
    struct timespec start;
    char *body;
    size_t len, cap;
    bool too_big;
    int route; /* index, or -1 */
    unsigned status;
    size_t expect; /* Content-Length when given and at most MOAT_BODY_MAX: the body's room */
};

static double since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* Appends uploaded bytes; past MOAT_BODY_MAX the body is dropped and marked too big. */
static int body_append(struct conn *cn, const char *data, size_t n)
{
    if (cn->too_big)
        return 0;
    if (cn->len + n > MOAT_BODY_MAX) {
        free(cn->body);
        cn->body = NULL;
        cn->len = cn->cap = 0;
        cn->too_big = true;
        return 0;
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

static int authorize(struct req *rq, const struct route *r, const struct conn *cn, struct resp *rs)
{
    const char *h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Authorization");
    int err = auth_role(&rq->srv->store, h, rq);
    if (err)
        return err;
    if (r->role > ROLE_NONE && rq->role == ROLE_NONE) {
        rs->extra = "WWW-Authenticate: Bearer";
        return resp_error(rs, 401, "Authorization", "a valid bearer token is required");
    }
    if (r->role == ROLE_AGENT && rq->role != ROLE_AGENT)
        return resp_error(rs, 403, "Authorization", "this needs a node credential");
    if (rq->role < r->role)
        return resp_error(rs, 403, "Authorization", "this needs the %s role", role_name(r->role));
    if (cn->too_big)
        return resp_error(rs, 413, "", "the request body is larger than %u bytes", MOAT_BODY_MAX);
    return 1; /* go on */
}

/* Route r's mode, matched with `method`: ROUTE_READ, ROUTE_SERIAL or ROUTE_OWN_LOCK. */
static enum route_mode mode_of(const struct route *r, const char *method)
{
    if (r->mode != ROUTE_BY_METHOD)
        return r->mode;
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ? ROUTE_READ : ROUTE_SERIAL;
}

/*
 * Matches the route, checks the token on a read snapshot and runs the
 * handler: a read-only one on that snapshot beside other requests, a
 * ROUTE_SERIAL one under server.lock on the writer connection, a
 * ROUTE_OWN_LOCK one with neither (it locks for itself).
 */
static int dispatch(struct req *rq, struct conn *cn, struct resp *rs)
{
    size_t n;
    const struct route *tab = routes_table(&n);
    int i = routes_match(rq->method, rq->path, rq);
    cn->route = i < 0 ? -1 : i;
    if (i == -ENOENT)
        return resp_error(rs, 404, "", "no such path: %s%s", rq->path,
                          strncmp(rq->path, "/api/v1/api/v1/", 15) == 0
                              ? " (the server URL should not end in /api/v1)"
                              : "");
    if (i == -EPERM)
        return resp_error(rs, 405, "", "method %s is not allowed here", rq->method);
    struct server *srv = rq->srv;
    struct store *st = &srv->store;
    enum route_mode mode = mode_of(&tab[i], rq->method);
    jsonmem_thread(mode == ROUTE_READ); /* see jsonmem.h: reads only */
    int go = st->ops->read_begin(st);
    if (!go)
        go = authorize(rq, &tab[i], cn, rs);
    rq->body = cn->body;
    rq->body_len = cn->len;
    if (go == 1 && mode == ROUTE_READ) {
        int err = tab[i].handler(rq, rs);
        go = err < 0 ? err : 0; /* never 1: the handler ran */
    }
    st->ops->read_end(st);
    if (go != 1)
        return go;
    int err;
    if (mode == ROUTE_OWN_LOCK) {
        err = tab[i].handler(rq, rs);
    } else {
        pthread_mutex_lock(&srv->lock);
        err = tab[i].handler(rq, rs);
        pthread_mutex_unlock(&srv->lock);
    }
    if (!err) /* the console's change feed (api_console.c) */
        changes_note(srv, &tab[i], rq->method, rs->status);
    return err;
}

/* ---- JSON text of a response ---------------------------------------------
 * What json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER) writes, byte for byte,
 * at a third of its cost: no callback per piece, no printf per integer.
 * Reals (no API document has them) are left to jansson.
 */

struct out {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void out_put(struct out *o, const char *p, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->failed = true;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

/* A JSON string: quotes, backslashes and control characters escaped as jansson does. */
static void out_string(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    out_put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        out_put(o, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', (char)ch};
        size_t len = 2;
        if (ch == '\b' || ch == '\f' || ch == '\n' || ch == '\r' || ch == '\t') {
            esc[1] = ch == '\b'   ? 'b'
                     : ch == '\f' ? 'f'
                     : ch == '\n' ? 'n'
                     : ch == '\r' ? 'r'
                                  : 't';
        } else if (ch < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            len = 6;
        }
        out_put(o, esc, len);
    }
    out_put(o, s + run, n - run);
    out_put(o, "\"", 1);
}

static void out_value(struct out *o, const json_t *v)
{
    size_t i;
    json_t *x;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        out_put(o, "{", 1);
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            if (it != json_object_iter((json_t *)v))
                out_put(o, ",", 1);
            out_string(o, json_object_iter_key(it), json_object_iter_key_len(it));
            out_put(o, ":", 1);
            out_value(o, json_object_iter_value(it));
        }
        out_put(o, "}", 1);
        break;
    case JSON_ARRAY:
        out_put(o, "[", 1);
        json_array_foreach(v, i, x)
        {
            if (i)
                out_put(o, ",", 1);
            out_value(o, x);
        }
        out_put(o, "]", 1);
        break;
    case JSON_STRING:
        out_string(o, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: {
        char num[24];
        json_int_t n = json_integer_value(v);
        unsigned long long u = n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n;
        size_t at = sizeof(num);
        do {
            num[--at] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (n < 0)
            num[--at] = '-';
        out_put(o, num + at, sizeof(num) - at);
        break;
    }
    case JSON_TRUE:
        out_put(o, "true", 4);
        break;
    case JSON_FALSE:
        out_put(o, "false", 5);
        break;
    case JSON_NULL:
        out_put(o, "null", 4);
        break;
    default: { /* JSON_REAL */
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (t)
            out_put(o, t, strlen(t));
        else
            o->failed = true;
        free(t);
    }
    }
}

/* The compact JSON text of `v` (caller frees), or NULL when out of memory. */
static char *json_text(const json_t *v)
{
    struct out o = {0};
    out_value(&o, v);
    if (o.failed || !o.buf) {
        free(o.buf);
        return NULL;
    }
    o.buf[o.len] = '\0';
    return o.buf;
}

static enum MHD_Result send_resp(struct MHD_Connection *c, struct resp *rs)
{
    char *text = rs->text;
    bool empty = !text && !rs->json;
    if (!text && rs->json)
        text = json_text(rs->json);
    json_decref(rs->json);
    if (!text && !empty)
        return MHD_NO;
    struct MHD_Response *r =
        empty ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
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
    enum MHD_Result ret = MHD_queue_response(c, rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct conn *cn = *con_cls;
    if (!cn) {
        cn = calloc(1, sizeof(*cn));
        if (!cn)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &cn->start);
        cn->route = -1;
        /* One allocation of the announced size instead of doubling copies (event batches). */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        unsigned long long want = cl ? strtoull(cl, NULL, 10) : 0;
        cn->expect = want <= MOAT_BODY_MAX ? (size_t)want : 0;
        *con_cls = cn;
        return MHD_YES;
    }
    if (*upload_size) {
        int err = body_append(cn, upload, *upload_size);
        *upload_size = 0;
        return err ? MHD_NO : MHD_YES;
    }
    struct req rq = {.srv = cls, .conn = c, .method = method, .path = url};
    struct resp rs = {0};
    int err = dispatch(&rq, cn, &rs);
    if (err < 0) {
        fprintf(stderr, "moat-server: %s %s: %s\n", method, url, strerror(-err));
        json_decref(rs.json);
        free(rs.text);
        rs = (struct resp){0};
        if (resp_error(&rs, 500, "", "internal error: %s", strerror(-err)) < 0)
            return MHD_NO;
    }
    cn->status = rs.status;
    return send_resp(c, &rs);
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
    free(cn->body);
    free(cn);
    *con_cls = NULL;
}

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

int http_serve(struct server *srv, const char *listen)
{
    struct sockaddr_storage ss;
    bool v6;
    if (parse_listen(listen, &ss, &v6) < 0)
        return -EINVAL;
    bool tls = srv->opts.tls_cert != NULL;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return -EPROTONOSUPPORT;
    /* poll(), not select(): connection sockets may be numbered past FD_SETSIZE. */
    bool poll = MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | (poll ? MHD_USE_POLL : 0) | (v6 ? MHD_USE_IPv6 : 0) |
                     (tls ? MHD_USE_TLS : 0);
    /* Without TLS the key and certificate options are left out (MHD_OPTION_END ends the list). */
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, srv->opts.tls_cert,
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
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true; /* long-polls answer now */
    pthread_cond_broadcast(&srv->changed);
    pthread_mutex_unlock(&srv->lock);
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    return 0;
}
