/* jsonbound: size bounds on parsed JSON values (see jsonbound.h). */
#include "jsonbound.h"
#include "utf8.h"

#include <stdio.h>
#include <string.h>

/* The path to the value that failed is written only on failure: each level adds its
 * key or index on the way back up (innermost first), and the string is built at the
 * end; paths nested deeper than PATH_LEVELS keep their outer levels. */
#define PATH_LEVELS 64

struct level {
    const char *key; /* NULL for an array index */
    size_t index;
};

struct walk {
    const struct json_bounds *b;
    size_t values;
    struct level up[PATH_LEVELS]; /* up[0] is the innermost level recorded */
    size_t nup;
    char *why;
    size_t yn;
};

static int fail(const struct walk *w, const char *fmt, size_t n)
{
    snprintf(w->why, w->yn, fmt, n);
    return 1;
}

/* Records one level of the path while unwinding from a failure; returns 1. */
static int level_up(struct walk *w, const char *key, size_t index)
{
    if (w->nup == PATH_LEVELS) {
        memmove(w->up, w->up + 1, (PATH_LEVELS - 1) * sizeof(w->up[0]));
        w->nup--;
    }
    w->up[w->nup++] = (struct level){key, index};
    return 1;
}

static int check(struct walk *w, const json_t *v, size_t depth)
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
        for (size_t i = 0; i < n; i++)
            if (check(w, json_array_get(v, i), depth + 1))
                return level_up(w, NULL, i);
        return 0;
    }
    const char *key;
    const json_t *x;
    json_object_foreach((json_t *)v, key, x)
    {
        if (strlen(key) > b->key_bytes) {
            fail(w, "a key longer than %zu bytes", b->key_bytes);
            return level_up(w, key, 0);
        }
        if (check(w, x, depth + 1))
            return level_up(w, key, 0);
    }
    return 0;
}

/* Appends `piece` to where[0..len) within wn bytes (cut between UTF-8 characters). */
static size_t path_put(char *where, size_t wn, size_t len, const char *piece)
{
    size_t plen = strlen(piece);
    if (len + plen + 1 > wn)
        plen = utf8_prefix(piece, plen, wn - len - 1);
    memcpy(where + len, piece, plen);
    where[len + plen] = '\0';
    return len + plen;
}

int json_bounds_check(const json_t *v, const struct json_bounds *b, char *where, size_t wn,
                      char *why, size_t yn)
{
    struct walk w = {.b = b, .why = why, .yn = yn};
    where[0] = '\0';
    why[0] = '\0';
    if (!check(&w, v, 1))
        return 0;
    size_t len = 0;
    for (size_t i = w.nup; i-- > 0;) {
        char piece[160];
        if (w.up[i].key)
            snprintf(piece, sizeof(piece), "%s%.*s", len ? "." : "",
                     (int)utf8_prefix(w.up[i].key, strlen(w.up[i].key), 120), w.up[i].key);
        else
            snprintf(piece, sizeof(piece), "[%zu]", w.up[i].index);
        len = path_put(where, wn, len, piece);
    }
    return 1;
}
