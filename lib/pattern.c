/* pattern: `*` glob matching (see pattern.h). */
#include "pattern.h"

#include <string.h>

bool pattern_match(const char *p, const char *s)
{
    /* Greedy match with one backtrack point: the last `*` seen. This never
     * needs more, because `*` is the only wildcard. */
    const char *star = NULL;
    const char *resume = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

bool pattern_has_wildcard(const char *pattern)
{
    return strchr(pattern, '*') != NULL;
}

const char *pattern_check(const char *pattern)
{
    size_t n = strlen(pattern);
    if (n == 0)
        return "must not be empty";
    if (n > MOAT_PATTERN_MAX)
        return "is longer than 255 characters";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pattern[i];
        if (c <= ' ' || c == 0x7f)
            return "contains a space or control character";
    }
    return NULL;
}
