/*
 * libFuzzer target for what moat-server reads from the network before any
 * handler (issue 12): request targets (lib/uri.h), JSON bodies against their
 * bounds (lib/jsonbound.h) and UTF-8 cutting (lib/utf8.h). Each must accept
 * or refuse any input without crashing, and what it accepts must keep its
 * promises: a path of valid UTF-8 segments that are neither empty, `.` nor
 * `..`, named and distinct query arguments, values within bounds, messages
 * and cut strings that are valid UTF-8.
 */
#include "jsonbound.h"
#include "uri.h"
#include "utf8.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_uri(const char *s)
{
    struct uri u;
    char why[256];
    int err = uri_parse(s, &u, why, sizeof(why));
    if (err == -EINVAL && !utf8_valid(why, strlen(why)))
        abort();
    if (err) {
        uri_clear(&u);
        return;
    }
    const char *p = u.path;
    if (p[0] != '/' || !utf8_valid(p, strlen(p)))
        abort();
    for (const char *seg = p + 1; *seg;) {
        size_t n = strcspn(seg, "/");
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            abort();
        seg += n;
        if (*seg == '/')
            seg++;
    }
    for (size_t i = 0; i < u.nargs; i++) {
        const char *k = u.args[i].key, *v = u.args[i].value;
        if (!*k || !utf8_valid(k, strlen(k)) || !utf8_valid(v, strlen(v)))
            abort();
        for (size_t j = 0; j < i; j++)
            if (!strcmp(u.args[j].key, k))
                abort();
        if (uri_arg(&u, k) != u.args[i].value)
            abort();
    }
    uri_clear(&u);
}

/* The depth of v, the outermost array or object counted as 1 (0 for a scalar). */
static size_t depth_of(const json_t *v)
{
    size_t d = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t x = depth_of(json_array_get(v, i));
            d = x > d ? x : d;
        }
        return d + 1;
    }
    if (json_is_object(v)) {
        const char *key;
        const json_t *x;
        json_object_foreach((json_t *)v, key, x)
        {
            size_t y = depth_of(x);
            d = y > d ? y : d;
        }
        return d + 1;
    }
    return 0;
}

static void check_json(const uint8_t *data, size_t size)
{
    json_t *v =
        json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!v)
        return;
    static const struct json_bounds b = {
        .depth = 6, .string_bytes = 64, .key_bytes = 16, .items = 8, .values = 64};
    char where[96], why[96];
    if (json_bounds_check(v, &b, where, sizeof(where), why, sizeof(why))) {
        if (!*why || !utf8_valid(where, strlen(where)))
            abort();
    } else if (depth_of(v) > b.depth) {
        abort();
    }
    json_decref(v);
}

static void check_utf8(const char *s, size_t n)
{
    char out[40];
    utf8_copy(out, sizeof(out), s);
    if (!utf8_valid(out, strlen(out)) || strlen(out) >= sizeof(out))
        abort();
    if (utf8_valid(s, n))
        for (size_t max = 0; max <= n && max < 12; max++) {
            size_t k = utf8_prefix(s, n, max);
            if (k > max || !utf8_valid(s, k))
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_uri(s);
    check_utf8(s, strlen(s));
    check_json(data, size);
    free(s);
    return 0;
}
