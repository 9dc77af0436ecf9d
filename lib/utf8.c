/* utf8: checking and cutting UTF-8 text (see utf8.h). */
#include "utf8.h"

#include <string.h>

/* The length of the well-formed character at s[0..n), or 0 when there is none. */
static size_t char_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xC2 && c <= 0xDF   ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    /* The second byte's range rules out overlong forms, surrogates and > U+10FFFF. */
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = char_len(u + i, n - i);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

size_t utf8_prefix(const char *s, size_t n, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t at = 0;
    while (at < n) {
        size_t len = char_len(u + at, n - at);
        if (!len)
            len = 1; /* not valid: the caller promised it is; count the byte */
        if (at + len > max)
            break;
        at += len;
    }
    return at;
}

char *utf8_copy(char *out, size_t size, const char *src)
{
    const unsigned char *u = (const unsigned char *)src;
    size_t n = strlen(src), at = 0;
    for (size_t i = 0; i < n;) {
        size_t len = char_len(u + i, n - i);
        const char *piece = len ? src + i : "?";
        size_t plen = len ? len : 1;
        if (at + plen >= size)
            break;
        memcpy(out + at, piece, plen);
        at += plen;
        i += len ? len : 1;
    }
    out[at] = '\0';
    return out;
}
