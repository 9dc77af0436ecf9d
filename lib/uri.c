/* uri: strict reading of HTTP request targets (see uri.h). */
#include "uri.h"
#include "utf8.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes s[0..n) into out (room for n + 1 bytes), '+' as a space when
 * `plus`. Returns the decoded length, or -1 for a bad escape (`%` not
 * followed by two hex digits).
 */
static long decode(const char *s, size_t n, bool plus, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = plus && s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return (long)o;
}

static int refuse(char *why, size_t n, const char *msg)
{
    snprintf(why, n, "%s", msg);
    return -EINVAL;
}

/* Control characters and spaces have no place in a request target. */
static bool raw_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] == 0x7F)
            return false;
    return true;
}

static int parse_path(const char *raw, size_t n, struct uri *u, char *why, size_t wn)
{
    if (n == 0 || raw[0] != '/')
        return refuse(why, wn, "the request target must be a path starting with /");
    if (!raw_ok(raw, n))
        return refuse(why, wn, "the path holds a space or a control character");
    u->path = malloc(n + 1);
    if (!u->path)
        return -ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n;) { /* raw[i] == '/' */
        size_t len = 0;
        while (i + 1 + len < n && raw[i + 1 + len] != '/')
            len++;
        u->path[at++] = '/';
        long d = decode(raw + i + 1, len, false, u->path + at);
        if (d < 0)
            return refuse(why, wn, "the path holds a % that is not followed by two hex digits");
        const char *seg = u->path + at;
        if (memchr(seg, '\0', (size_t)d))
            return refuse(why, wn, "the path holds an encoded NUL byte (%00)");
        if (memchr(seg, '/', (size_t)d))
            return refuse(why, wn, "a path segment holds an encoded slash (%2F)");
        if (!utf8_valid(seg, (size_t)d))
            return refuse(why, wn, "the path is not valid UTF-8");
        if ((d == 1 && seg[0] == '.') || (d == 2 && seg[0] == '.' && seg[1] == '.'))
            return refuse(why, wn, "the path holds a . or .. segment");
        at += (size_t)d;
        i += 1 + len;
    }
    u->path[at] = '\0';
    return 0;
}

/* Quotes a (valid UTF-8) key in a message, cut short when long. */
static int refuse_arg(char *why, size_t wn, const char *key, const char *msg)
{
    char k[80];
    snprintf(why, wn, "query argument \"%s\": %s", utf8_copy(k, sizeof(k), key), msg);
    return -EINVAL;
}

static int parse_query(const char *q, size_t n, struct uri *u, char *why, size_t wn)
{
    if (!raw_ok(q, n))
        return refuse(why, wn, "the query holds a space or a control character");
    /* Each argument is stored as key, NUL, value, NUL: its bytes in the query plus two
     * (a `flag` without `=` adds both NULs); the '&' between arguments make room for one
     * each, so n + 2 + URI_ARGS_MAX (the arguments decoded at most) always suffices. */
    u->store = malloc(n + 2 + URI_ARGS_MAX);
    if (!u->store)
        return -ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i <= n;) {
        size_t len = 0;
        while (i + len < n && q[i + len] != '&')
            len++;
        const char *piece = q + i;
        i += len + 1;
        if (len == 0)
            continue; /* "a&&b": nothing between */
        const char *eq = memchr(piece, '=', len);
        size_t klen = eq ? (size_t)(eq - piece) : len;
        if (klen == 0)
            return refuse(why, wn, "the query holds an argument without a name");
        if (u->nargs == URI_ARGS_MAX)
            return refuse(why, wn, "the query holds more than 32 arguments");
        char *key = u->store + at;
        long dk = decode(piece, klen, true, key);
        at += dk < 0 ? 0 : (size_t)dk + 1;
        char *value = u->store + at;
        long dv = eq ? decode(eq + 1, len - klen - 1, true, value) : (value[0] = '\0', 0);
        at += dv < 0 ? 0 : (size_t)dv + 1;
        if (dk < 0 || dv < 0)
            return refuse(why, wn, "the query holds a % that is not followed by two hex digits");
        if (memchr(key, '\0', (size_t)dk) || memchr(value, '\0', (size_t)dv))
            return refuse(why, wn, "the query holds an encoded NUL byte (%00)");
        if (!utf8_valid(key, (size_t)dk) || !utf8_valid(value, (size_t)dv))
            return refuse(why, wn, "the query is not valid UTF-8");
        if (dv > URI_ARG_VALUE_MAX)
            return refuse_arg(why, wn, key, "the value is longer than 16384 bytes");
        if (uri_arg(u, key))
            return refuse_arg(why, wn, key, "given twice");
        u->args[u->nargs++] = (struct uri_arg){key, value};
    }
    return 0;
}

int uri_parse(const char *raw, struct uri *u, char *why, size_t n)
{
    *u = (struct uri){0};
    why[0] = '\0';
    const char *q = strchr(raw, '?');
    size_t plen = q ? (size_t)(q - raw) : strlen(raw);
    int err = parse_path(raw, plen, u, why, n);
    if (!err && q)
        err = parse_query(q + 1, strlen(q + 1), u, why, n);
    return err;
}

void uri_clear(struct uri *u)
{
    free(u->path);
    free(u->store);
    *u = (struct uri){0};
}

const char *uri_arg(const struct uri *u, const char *key)
{
    for (size_t i = 0; i < u->nargs; i++)
        if (strcmp(u->args[i].key, key) == 0)
            return u->args[i].value;
    return NULL;
}
