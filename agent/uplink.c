/* uplink: HTTP calls to moat-server's agent endpoints (see uplink.h). */
#include "uplink.h"
#include "doc.h"
#include "mem.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A cluster's policy answer is the largest: bounded as the server's state is (doc.h). */
#define ANSWER_MAX MOAT_DOC_SERVER_MAX_BYTES

#define SERVERS_MAX 16

struct uplink {
    CURL *curl;
    char *server, *ca_file, *auth; /* server: the list, cut into servers[] */
    char *servers[SERVERS_MAX];
    size_t nservers, cur;
    const atomic_bool *stop;
    size_t last_bytes; /* of the last answer uplink_call received */
};

/* The length of entry `s` of a comma-separated list without its trailing '/'s. */
static size_t entry_len(const char *s)
{
    size_t n = strcspn(s, ",");
    while (n && s[n - 1] == '/')
        n--;
    return n;
}

const char *uplink_servers_check(const char *list)
{
    size_t count = 0;
    for (const char *s = list;; s += strcspn(s, ",") + 1) {
        size_t n = strcspn(s, ",");
        if (n == 0)
            return "an empty URL in the list";
        if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
            return "must start with http:// or https:// (each URL of a comma-separated list)";
        if (++count > SERVERS_MAX)
            return "at most 16 URLs";
        if (!s[n])
            return NULL;
    }
}

bool uplink_servers_overlap(const char *a, const char *b)
{
    for (const char *x = a;; x += strcspn(x, ",") + 1) {
        size_t nx = entry_len(x);
        for (const char *y = b;; y += strcspn(y, ",") + 1) {
            if (nx && entry_len(y) == nx && strncmp(x, y, nx) == 0)
                return true;
            if (!y[strcspn(y, ",")])
                break;
        }
        if (!x[strcspn(x, ",")])
            return false;
    }
}

const char *uplink_current(const struct uplink *u)
{
    return u->servers[u->cur];
}

struct answer {
    char *buf;
    size_t len, cap, max;
    bool too_big;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct answer *a = ctx;
    size_t n = size * nmemb;
    if (a->len + n + 1 > a->max) {
        a->too_big = true;
        return 0;
    }
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->len + n + 1)
            cap *= 2;
        char *b = moat_reallocarray(a->buf, cap, 1);
        if (!b)
            return 0;
        a->buf = b;
        a->cap = cap;
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
    a->buf[a->len] = '\0';
    return n;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const struct uplink *u = ctx;
    return u->stop && atomic_load(u->stop) ? 1 : 0; /* nonzero aborts the transfer */
}

struct uplink *uplink_new(const char *server, const char *ca_file, const atomic_bool *stop)
{
    struct uplink *u = moat_calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->curl = curl_easy_init();
    u->server = moat_strdup(server);
    u->ca_file = ca_file ? moat_strdup(ca_file) : NULL;
    u->stop = stop;
    if (!u->curl || !u->server || (ca_file && !u->ca_file)) {
        uplink_free(u);
        return NULL;
    }
    for (char *e = u->server; u->nservers < SERVERS_MAX;) {
        size_t len = strcspn(e, ","), keep = entry_len(e);
        bool last = !e[len];
        e[keep] = '\0';
        if (!keep) {
            uplink_free(u);
            return NULL;
        }
        u->servers[u->nservers++] = e;
        if (last)
            break;
        e += len + 1;
    }
    return u;
}

void uplink_free(struct uplink *u)
{
    if (!u)
        return;
    if (u->curl)
        curl_easy_cleanup(u->curl);
    free(u->server);
    free(u->ca_file);
    free(u->auth);
    free(u);
}

int uplink_set_token(struct uplink *u, const char *token)
{
    free(u->auth);
    u->auth = token ? moat_asprintf("Authorization: Bearer %s", token) : NULL;
    return token && !u->auth ? -ENOMEM : 0;
}

/* One request; the answer's bytes in *ans (at most `max`). The status, or -errno with why. */
/* Whether a failed transfer never reached the server (so it can go to another at once). */
static bool not_sent(CURL *c, CURLcode rc)
{
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
        return true;
    long connected = 0;
    if (rc == CURLE_OPERATION_TIMEDOUT &&
        curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected) == CURLE_OK && connected == 0)
        return true; /* the connect timeout: no connection was made */
    return false;
}

static int perform_one(struct uplink *u, const char *method, const char *path, const char *body,
                       long timeout_s, struct answer *ans, char *why, size_t n, bool *unsent);

/* The call on the current server, then on the next ones while they cannot be reached. */
static int perform(struct uplink *u, const char *method, const char *path, const char *body,
                   long timeout_s, struct answer *ans, char *why, size_t n)
{
    int ret = -EIO;
    for (size_t tried = 0; tried < u->nservers; tried++) {
        bool unsent = false;
        ans->len = 0;
        ans->too_big = false;
        ret = perform_one(u, method, path, body, timeout_s, ans, why, n, &unsent);
        if (ret >= 0 || ret == -ENOMEM || ret == -EINTR)
            return ret;
        u->cur = (u->cur + 1) % u->nservers; /* this one failed: the next call goes on */
        if (!unsent)
            return ret;
    }
    return ret;
}

static int perform_one(struct uplink *u, const char *method, const char *path, const char *body,
                       long timeout_s, struct answer *ans, char *why, size_t n, bool *unsent)
{
    why[0] = '\0';
    char *url = moat_asprintf("%s%s", u->servers[u->cur], path);
    if (!url)
        return -ENOMEM;
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    if (u->auth)
        hdr = curl_slist_append(hdr, u->auth);
    CURL *c = u->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ans);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* the control plane is reached directly */
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, u);
    if (u->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, u->ca_file);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    int ret;
    if (rc != CURLE_OK) {
        snprintf(why, n, "%s: %s", url, ans->too_big ? "answer too large" : curl_easy_strerror(rc));
        ret = rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : rc == CURLE_ABORTED_BY_CALLBACK ? -EINTR : -EIO;
        *unsent = not_sent(c, rc);
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        ret = (int)status;
    }
    curl_slist_free_all(hdr);
    free(url);
    return ret;
}

int uplink_call(struct uplink *u, const char *method, const char *path, const char *body,
                long timeout_s, json_t **resp, char *why, size_t n)
{
    *resp = NULL;
    struct answer ans = {.max = ANSWER_MAX};
    int ret = perform(u, method, path, body, timeout_s, &ans, why, n);
    u->last_bytes = ret > 0 ? ans.len : 0;
    if (ret > 0 && ans.len)
        *resp = json_loadb(ans.buf, ans.len, 0, NULL);
    free(ans.buf);
    return ret;
}

size_t uplink_last_bytes(const struct uplink *u)
{
    return u->last_bytes;
}

int uplink_get_text(struct uplink *u, const char *path, size_t max, long timeout_s, char **text,
                    size_t *len, char *why, size_t n)
{
    *text = NULL;
    *len = 0;
    struct answer ans = {.max = max};
    int ret = perform(u, "GET", path, NULL, timeout_s, &ans, why, n);
    if (ret == 200) {
        *text = ans.buf ? ans.buf : moat_strdup("");
        *len = ans.len;
        return *text ? ret : -ENOMEM;
    }
    free(ans.buf);
    return ret;
}

const char *uplink_error_text(const json_t *resp, char *buf, size_t n)
{
    const json_t *e = json_array_get(json_object_get(resp, "errors"), 0);
    const char *f = json_string_value(json_object_get(e, "field"));
    const char *m = json_string_value(json_object_get(e, "message"));
    snprintf(buf, n, "%s%s%s", f && *f ? f : "", f && *f ? ": " : "", m ? m : "");
    return buf;
}
