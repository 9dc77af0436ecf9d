/*
 * utf8: checking and cutting UTF-8 text (RFC 3629), for inputs that must be
 * valid UTF-8 (request paths, query arguments, names) and for messages that
 * quote them: a string cut to fit a buffer is cut between characters, never
 * inside one, so that what is cut is still valid UTF-8 (JSON needs it).
 */
#ifndef MOAT_UTF8_H
#define MOAT_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True when s[0..n) is well-formed UTF-8: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. NUL bytes are allowed here; callers
 * that refuse them check for them themselves.
 */
bool utf8_valid(const char *s, size_t n);
/*
 * The length of the longest prefix of the valid UTF-8 text s[0..n) that is at
 * most `max` bytes and ends between characters.
 */
size_t utf8_prefix(const char *s, size_t n, size_t max);
/*
 * Copies the NUL-terminated `src` into out[size] (size >= 4) as valid UTF-8:
 * each byte that does not start a well-formed character becomes '?', and the
 * copy is cut between characters when it does not fit. Returns out.
 */
char *utf8_copy(char *out, size_t size, const char *src);

#endif
