/*
 * client: moat-server's REST API over libcurl, and where its URL and token
 * come from (see client.h). One easy handle per client; answers are read
 * into a capped buffer and parsed as JSON.
 */
#include "client.h"
#include "cli.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_URL_MAX    1024
#define API_TOKEN_MAX  512
#define API_ANSWER_MAX (64u << 20)

struct api_client {
    CURL *curl;
    char url[API_URL_MAX];         /* one URL, or several (replicas) comma-separated */
    size_t cur;                    /* the offset in url of the one that answered last */
    char auth[API_TOKEN_MAX + 32]; /* "Authorization: Bearer T" */
};

struct api_config {
    char server[API_URL_MAX];
    char token[API_TOKEN_MAX];
    char file[API_URL_MAX]; /* the config file looked at */
};

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static void config_path(char *out, size_t n)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(out, n, "%s/moat/config", xdg);
    else
        snprintf(out, n, "%s/.config/moat/config", home ? home : "");
}

/* Reads `server = ...` and `token = ...` lines of the config file; a missing file is fine. */
static void config_read(struct api_config *cfg)
{
    FILE *f = fopen(cfg->file, "r");
    if (!f)
        return;
    char line[2048];
    for (int no = 1; fgets(line, sizeof(line), f); no++) {
        char *s = trim(line);
        char *eq = strchr(s, '=');
        if (!*s || *s == '#')
            continue;
        if (!eq) {
            fprintf(stderr, "moat: %s:%d: ignored: not `key = value`\n", cfg->file, no);
            continue;
        }
        *eq = '\0';
        const char *key = trim(s), *val = trim(eq + 1);
        if (strcmp(key, "server") == 0)
            snprintf(cfg->server, sizeof(cfg->server), "%s", val);
        else if (strcmp(key, "token") == 0)
            snprintf(cfg->token, sizeof(cfg->token), "%s", val);
        else
            fprintf(stderr, "moat: %s:%d: ignored: unknown key \"%s\"\n", cfg->file, no, key);
    }
    fclose(f);
}

/* Flags beat the environment, which beats the file. */
static void config_resolve(struct api_config *cfg, const char *server, const char *token)
{
    const char *env_server = getenv("MOAT_SERVER"), *env_token = getenv("MOAT_TOKEN");
    config_path(cfg->file, sizeof(cfg->file));
    config_read(cfg);
    if (!server && env_server && *env_server)
        server = env_server;
    if (!token && env_token && *env_token)
        token = env_token;
    if (server)
        snprintf(cfg->server, sizeof(cfg->server), "%s", server);
    if (token)
        snprintf(cfg->token, sizeof(cfg->token), "%s", token);
    size_t n = strlen(cfg->server);
    while (n > 0 && cfg->server[n - 1] == '/')
        cfg->server[--n] = '\0';
}

int api_client_new(const char *server_flag, const char *token_flag, struct api_client **out)
{
    struct api_config cfg = {{0}, {0}, {0}};
    *out = NULL;
    config_resolve(&cfg, server_flag, token_flag);
    const char *missing = !cfg.server[0] ? "server URL" : !cfg.token[0] ? "token" : NULL;
    if (missing) {
        fprintf(stderr, "moat: no %s: give --%s, set MOAT_%s or write `%s = ...` in %s\n", missing,
                cfg.server[0] ? "token T" : "server URL", cfg.server[0] ? "TOKEN" : "SERVER",
                cfg.server[0] ? "token" : "server", cfg.file);
        return MOAT_EXIT_INVALID;
    }
    struct api_client *c = calloc(1, sizeof(*c));
    if (c)
        c->curl = curl_easy_init();
    if (!c || !c->curl) {
        api_client_free(c);
        fprintf(stderr, "moat: out of memory\n");
        return MOAT_EXIT_ERROR;
    }
    snprintf(c->url, sizeof(c->url), "%s", cfg.server);
    snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", cfg.token);
    *out = c;
    return MOAT_EXIT_OK;
}

void api_client_free(struct api_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c);
}

struct answer {
    char *data;
    size_t len;
    bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct answer *a = user;
    size_t n = size * nmemb;
    if (a->len + n > API_ANSWER_MAX) {
        a->too_big = true;
        return 0;
    }
    char *p = realloc(a->data, a->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + a->len, ptr, n);
    a->data = p;
    a->len += n;
    a->data[a->len] = '\0';
    return n;
}

/* Sets up the handle for one request: `body` (len bytes of `ctype`) or NULL; the answer into a. */
static struct curl_slist *prepare(struct api_client *c, const char *method, const char *url,
                                  const char *body, size_t len, const char *ctype, struct answer *a)
{
    char type[128];
    snprintf(type, sizeof(type), "Content-Type: %s", ctype ? ctype : "application/json");
    struct curl_slist *h = curl_slist_append(NULL, c->auth);
    struct curl_slist *h2 = h ? curl_slist_append(h, "Accept: application/json") : NULL;
    struct curl_slist *h3 = h2 && body ? curl_slist_append(h2, type) : h2;
    if (!h3) {
        curl_slist_free_all(h);
        return NULL;
    }
    CURL *e = c->curl;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h3);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    }
    return h3;
}

/* Whether a failed transfer never reached the server (the next replica may take it). */
static bool not_sent(CURL *e, CURLcode cc)
{
    long connected = 0;
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
           (cc == CURLE_OPERATION_TIMEDOUT &&
            curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connected) == CURLE_OK &&
            connected == 0);
}

/* The entry of c->url at offset `at` (without trailing '/') into out[n]; the next offset. */
static size_t url_entry(const struct api_client *c, size_t at, char *out, size_t n)
{
    size_t len = strcspn(c->url + at, ","), keep = len;
    while (keep && c->url[at + keep - 1] == '/')
        keep--;
    snprintf(out, n, "%.*s", (int)keep, c->url + at);
    return c->url[at + len] ? at + len + 1 : 0;
}

/*
 * One call: to the server that answered last, then (when it cannot be
 * connected to: the request was not sent) to the others in their order.
 */
int api_call_raw(struct api_client *c, const char *method, const char *path, const char *body,
                 size_t len, const char *ctype, long *status, char **answer, size_t *answer_len)
{
    char url[API_URL_MAX * 4], base[API_URL_MAX];
    *answer = NULL;
    *answer_len = 0;
    size_t at = c->cur, entries = 1;
    for (const char *p = c->url; (p = strchr(p, ',')); p++)
        entries++;
    for (size_t tried = 0; tried < entries; tried++) {
        struct answer a = {NULL, 0, false};
        size_t next = url_entry(c, at, base, sizeof(base));
        snprintf(url, sizeof(url), "%s%s", base, path);
        struct curl_slist *h = prepare(c, method, url, body, len, ctype, &a);
        if (!h) {
            fprintf(stderr, "moat: out of memory\n");
            return MOAT_EXIT_ERROR;
        }
        CURLcode cc = curl_easy_perform(c->curl);
        curl_slist_free_all(h);
        if (cc == CURLE_OK) {
            c->cur = at;
            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
            *answer = a.data;
            *answer_len = a.len;
            return MOAT_EXIT_OK;
        }
        bool more = not_sent(c->curl, cc) && tried + 1 < entries;
        fprintf(stderr, "moat: cannot reach the server at %s: %s%s\n", base,
                a.too_big ? "answer too large" : curl_easy_strerror(cc),
                more ? " (trying the next)" : "");
        free(a.data);
        if (!more)
            break;
        at = next;
    }
    return MOAT_EXIT_ERROR;
}

int api_call(struct api_client *c, const char *method, const char *path, const json_t *body,
             long *status, json_t **resp)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL, *data;
    size_t len;
    *resp = NULL;
    if (body && !text) {
        fprintf(stderr, "moat: out of memory\n");
        return MOAT_EXIT_ERROR;
    }
    int rc =
        api_call_raw(c, method, path, text, text ? strlen(text) : 0, NULL, status, &data, &len);
    free(text);
    if (!rc && len)
        *resp = json_loadb(data, len, 0, NULL);
    free(data);
    return rc;
}

int api_exit_for_status(long status)
{
    if (status >= 200 && status < 300)
        return MOAT_EXIT_OK;
    switch (status) {
    case 400:
    case 413:
        return MOAT_EXIT_INVALID;
    case 401:
    case 403:
        return MOAT_EXIT_DENIED;
    case 404:
        return MOAT_EXIT_NOT_FOUND;
    case 409:
        return MOAT_EXIT_CONFLICT;
    default:
        return MOAT_EXIT_ERROR;
    }
}

static const char *status_hint(long status)
{
    switch (status) {
    case 401:
        return "not authenticated: the token is missing, wrong or revoked";
    case 403:
        return "permission denied: this token's role may not do this (writes need admin)";
    case 404:
        return "not found";
    case 409:
        return "conflict";
    default:
        return "request failed";
    }
}

void api_print_errors(const char *what, long status, const json_t *resp)
{
    const json_t *errs = json_object_get(resp, "errors");
    size_t i;
    const json_t *e;
    if (status == 401 || status == 403 || json_array_size(errs) == 0)
        fprintf(stderr, "moat: %s: %s (HTTP %ld)\n", what, status_hint(status), status);
    json_array_foreach(errs, i, e)
    {
        const char *field = json_string_value(json_object_get(e, "field"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (field && *field)
            fprintf(stderr, "moat: %s: %s: %s\n", what, field, msg ? msg : "");
        else
            fprintf(stderr, "moat: %s: %s\n", what, msg ? msg : "");
    }
}

int api_do(struct api_client *c, const char *what, const char *method, const char *path,
           const json_t *body, json_t **resp)
{
    long status = 0;
    json_t *answer = NULL;
    int rc = api_call(c, method, path, body, &status, &answer);
    if (rc)
        return rc;
    rc = api_exit_for_status(status);
    if (rc)
        api_print_errors(what, status, answer);
    if (!rc && resp)
        *resp = answer;
    else
        json_decref(answer);
    return rc;
}

int api_escape_append(char *buf, size_t n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(buf);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = isalnum(ch) || strchr("-._~", ch);
        if (len + (plain ? 1 : 3) >= n)
            return -1;
        if (plain) {
            buf[len++] = (char)ch;
        } else {
            buf[len++] = '%';
            buf[len++] = hex[ch >> 4];
            buf[len++] = hex[ch & 15];
        }
    }
    buf[len] = '\0';
    return 0;
}

int api_query_append(char *buf, size_t n, const char *key, const char *value)
{
    if (!value)
        return 0;
    size_t len = strlen(buf);
    int w = snprintf(buf + len, n - len, "%c%s=", strchr(buf, '?') ? '&' : '?', key);
    if (w < 0 || (size_t)w >= n - len)
        return -1;
    return api_escape_append(buf, n, value);
}
