/* whttp: HTTP for the workload sources (see whttp.h). */
#include "whttp.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES (16u << 20) /* one watch event: a pod with many containers */
#define ERRBODY_MAX    4096

struct whttp {
    CURL *curl;
    char *unix_socket, *ca_file, *ca_pem, *cert_file, *key_file, *cert_pem, *key_pem, *auth;
    bool insecure;
    const atomic_bool *stop;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

struct whttp *whttp_new(const struct whttp_opts *o)
{
    struct whttp *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->curl = curl_easy_init();
    h->unix_socket = dup_or_null(o->unix_socket);
    h->ca_file = dup_or_null(o->ca_file);
    h->ca_pem = dup_or_null(o->ca_pem);
    h->cert_file = dup_or_null(o->cert_file);
    h->key_file = dup_or_null(o->key_file);
    h->cert_pem = dup_or_null(o->cert_pem);
    h->key_pem = dup_or_null(o->key_pem);
    if (o->token) {
        size_t n = strlen(o->token) + 32;
        h->auth = malloc(n);
        if (h->auth)
            snprintf(h->auth, n, "Authorization: Bearer %s", o->token);
    }
    h->insecure = o->insecure;
    h->stop = o->stop;
    if (!h->curl || (o->unix_socket && !h->unix_socket) || (o->token && !h->auth) ||
        (o->ca_file && !h->ca_file) || (o->ca_pem && !h->ca_pem) || (o->cert_pem && !h->cert_pem) ||
        (o->key_pem && !h->key_pem)) {
        whttp_free(h);
        return NULL;
    }
    return h;
}

void whttp_free(struct whttp *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->unix_socket);
    free(h->ca_file);
    free(h->ca_pem);
    free(h->cert_file);
    free(h->key_file);
    free(h->cert_pem);
    free(h->key_pem);
    free(h->auth);
    free(h);
}

struct xfer {
    struct whttp *h;
    char *buf;
    size_t len, cap, max;
    bool too_big;
    /* streams */
    int (*on_line)(void *ctx, char *line, size_t len);
    void *ctx;
    bool stream, ended_by_caller;
    long status;
    double last_data, idle_s;
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int append(struct xfer *x, const char *p, size_t n)
{
    if (x->len + n + 1 > x->max) {
        x->too_big = true;
        return -1;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *b = realloc(x->buf, cap);
        if (!b)
            return -1;
        x->buf = b;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    x->buf[x->len] = '\0';
    return 0;
}

/* Hands the complete lines of the buffer to on_line; keeps the partial last one. */
static int deliver_lines(struct xfer *x)
{
    size_t start = 0;
    for (size_t i = 0; i < x->len; i++) {
        if (x->buf[i] != '\n')
            continue;
        x->buf[i] = '\0';
        size_t n = i - start;
        if (n && x->buf[start + n - 1] == '\r')
            x->buf[start + --n] = '\0';
        if (n && x->on_line(x->ctx, x->buf + start, n) != 0) {
            x->ended_by_caller = true;
            return -1;
        }
        start = i + 1;
    }
    memmove(x->buf, x->buf + start, x->len - start);
    x->len -= start;
    if (x->buf)
        x->buf[x->len] = '\0';
    return 0;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t n = size * nmemb;
    x->last_data = mono();
    if (!x->stream)
        return append(x, p, n) < 0 ? 0 : n;
    if (!x->status)
        curl_easy_getinfo(x->h->curl, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->status != 200) { /* an error answer: keep its start for the caller */
        size_t room = x->len < ERRBODY_MAX ? ERRBODY_MAX - x->len : 0;
        append(x, p, n < room ? n : room);
        return n;
    }
    if (append(x, p, n) < 0 || deliver_lines(x) < 0)
        return 0;
    return n;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const struct xfer *x = ctx;
    if (x->h->stop && atomic_load(x->h->stop))
        return 1; /* nonzero aborts the transfer */
    return x->idle_s > 0 && mono() - x->last_data > x->idle_s;
}

static void setup(struct whttp *h, const char *url, struct xfer *x, struct curl_slist *hdr)
{
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* the engine and the API server are direct */
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    if (h->unix_socket)
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->unix_socket);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    if (h->ca_pem) {
        struct curl_blob b = {.data = h->ca_pem, .len = strlen(h->ca_pem), .flags = 0};
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
    }
    if (h->cert_file)
        curl_easy_setopt(c, CURLOPT_SSLCERT, h->cert_file);
    if (h->key_file)
        curl_easy_setopt(c, CURLOPT_SSLKEY, h->key_file);
    if (h->cert_pem) {
        struct curl_blob b = {.data = h->cert_pem, .len = strlen(h->cert_pem), .flags = 0};
        curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &b);
    }
    if (h->key_pem) {
        struct curl_blob b = {.data = h->key_pem, .len = strlen(h->key_pem), .flags = 0};
        curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &b);
    }
    if (h->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

static struct curl_slist *headers(const struct whttp *h)
{
    struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
    if (hdr && h->auth)
        hdr = curl_slist_append(hdr, h->auth);
    return hdr;
}

static int finish(struct whttp *h, CURLcode rc, struct xfer *x, char *why, size_t n)
{
    if (rc == CURLE_OK || (x->stream && x->ended_by_caller)) {
        long status = 0;
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
        return (int)status;
    }
    if (x->too_big) {
        snprintf(why, n, "answer larger than %zu bytes", x->max);
        return -EFBIG;
    }
    if (h->stop && atomic_load(h->stop)) {
        snprintf(why, n, "stopped");
        return -ECANCELED;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(why, n, "nothing received for %.0f s", x->idle_s);
        return -ETIMEDOUT;
    }
    snprintf(why, n, "%s", curl_easy_strerror(rc));
    return rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
}

int whttp_get(struct whttp *h, const char *url, long timeout_s, size_t max, char **body, char *why,
              size_t n)
{
    *body = NULL;
    struct xfer x = {.h = h, .max = max, .last_data = mono()};
    struct curl_slist *hdr = headers(h);
    if (!hdr)
        return -ENOMEM;
    setup(h, url, &x, hdr);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, timeout_s);
    CURLcode rc = curl_easy_perform(h->curl);
    curl_slist_free_all(hdr);
    int status = finish(h, rc, &x, why, n);
    if (status < 0) {
        free(x.buf);
        return status;
    }
    *body = x.buf;
    return status;
}

int whttp_stream(struct whttp *h, const char *url, long idle_s,
                 int (*on_line)(void *ctx, char *line, size_t len), void *ctx, char **errbody,
                 char *why, size_t n)
{
    *errbody = NULL;
    struct xfer x = {.h = h,
                     .max = LINE_MAX_BYTES,
                     .on_line = on_line,
                     .ctx = ctx,
                     .stream = true,
                     .idle_s = (double)idle_s,
                     .last_data = mono()};
    struct curl_slist *hdr = headers(h);
    if (!hdr)
        return -ENOMEM;
    setup(h, url, &x, hdr);
    CURLcode rc = curl_easy_perform(h->curl);
    curl_slist_free_all(hdr);
    int status = finish(h, rc, &x, why, n);
    if (status == 200 && !x.ended_by_caller && x.len) /* a last line without its newline */
        on_line(ctx, x.buf, x.len);
    if (status > 0 && status != 200)
        *errbody = x.buf;
    else
        free(x.buf);
    return status;
}
