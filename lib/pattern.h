/*
 * pattern: the `*` patterns of network objects (SPEC §2).
 *
 * `*` stands for any run of characters (also none); every other character
 * matches itself, case-sensitively. `*` alone matches anything, `a*` every
 * string starting with "a". There is no escape and no `?`.
 */
#ifndef MOAT_PATTERN_H
#define MOAT_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#define MOAT_PATTERN_MAX 255

/* True when `s` matches `pattern`. Runs in O(len(pattern) * len(s)) at worst. */
bool pattern_match(const char *pattern, const char *s);
/* True when the pattern contains a `*`. */
bool pattern_has_wildcard(const char *pattern);
/*
 * Checks a pattern: 1..MOAT_PATTERN_MAX characters, printable, no spaces.
 * Returns NULL when valid, else a static description of the problem.
 */
const char *pattern_check(const char *pattern);

#endif
