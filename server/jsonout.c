/* jsonout: the JSON writer of answers (see jsonout.h). */
#include "jsonout.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

char *json_text(const json_t *v, size_t *len)
{
    struct out o = {0};
    out_value(&o, v);
    if (o.failed || !o.buf) {
        free(o.buf);
        return NULL;
    }
    o.buf[o.len] = '\0';
    *len = o.len;
    return o.buf;
}
