/* jsonbound: size bounds on parsed JSON values (see jsonbound.h). */
#include "jsonbound.h"
#include "utf8.h"

#include <stdio.h>
#include <string.h>

struct walk {
    const struct json_bounds *b;
    size_t values;
    char *where;
    size_t wn;
    char *why;
    size_t yn;
};

/* Appends `piece` to w->where (where[0..len) is the path so far); the new length. */
static size_t path_put(const struct walk *w, size_t len, const char *piece)
{
    size_t plen = strlen(piece);
    if (len + plen + 1 > w->wn)
        plen = utf8_prefix(piece, plen, w->wn - len - 1);
    memcpy(w->where + len, piece, plen);
    w->where[len + plen] = '\0';
    return len + plen;
}

static size_t path_key(const struct walk *w, size_t len, const char *key)
{
    char piece[160];
    snprintf(piece, sizeof(piece), "%s%.*s", len ? "." : "",
             (int)utf8_prefix(key, strlen(key), 120), key);
    return path_put(w, len, piece);
}

static size_t path_index(const struct walk *w, size_t len, size_t index)
{
    char piece[32];
    snprintf(piece, sizeof(piece), "[%zu]", index);
    return path_put(w, len, piece);
}

static int fail(const struct walk *w, const char *fmt, size_t n)
{
    snprintf(w->why, w->yn, fmt, n);
    return 1;
}

static int check(struct walk *w, const json_t *v, size_t depth, size_t len)
{
    const struct json_bounds *b = w->b;
    if (++w->values > b->values)
        return fail(w, "more than %zu values in all", b->values);
    if (json_is_string(v)) {
        return json_string_length(v) > b->string_bytes
                   ? fail(w, "a string longer than %zu bytes", b->string_bytes)
                   : 0;
    }
    if (!json_is_object(v) && !json_is_array(v))
        return 0;
    if (depth > b->depth)
        return fail(w, "nested deeper than %zu levels", b->depth);
    size_t n = json_is_object(v) ? json_object_size(v) : json_array_size(v);
    if (n > b->items)
        return fail(w, "more than %zu members", b->items);
    if (json_is_array(v)) {
        for (size_t i = 0; i < n; i++) {
            size_t at = path_index(w, len, i);
            if (check(w, json_array_get(v, i), depth + 1, at))
                return 1;
            w->where[len] = '\0';
        }
        return 0;
    }
    const char *key;
    const json_t *x;
    json_object_foreach((json_t *)v, key, x)
    {
        size_t at = path_key(w, len, key);
        if (strlen(key) > b->key_bytes)
            return fail(w, "a key longer than %zu bytes", b->key_bytes);
        if (check(w, x, depth + 1, at))
            return 1;
        w->where[len] = '\0';
    }
    return 0;
}

int json_bounds_check(const json_t *v, const struct json_bounds *b, char *where, size_t wn,
                      char *why, size_t yn)
{
    struct walk w = {.b = b, .where = where, .wn = wn, .why = why, .yn = yn};
    where[0] = '\0';
    why[0] = '\0';
    return check(&w, v, 1, 0);
}
