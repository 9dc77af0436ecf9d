/*
 * uri: the request target of an HTTP request (RFC 9112 origin form:
 * /path?query) read strictly, for moat-server's routing. The path is split
 * into segments first and each segment is percent-decoded on its own, so an
 * encoded slash (%2F) can never act as a separator; a segment that decodes
 * to a slash, a NUL byte, `.` or `..`, or to bytes that are not UTF-8 is
 * refused, and so is a query argument that decodes to a NUL or non-UTF-8
 * bytes, that has no name, or that is given twice. What passes is plain
 * UTF-8 text with no ambiguity left for the handlers.
 */
#ifndef MOAT_URI_H
#define MOAT_URI_H

#include <stddef.h>

#define URI_ARGS_MAX      32
#define URI_ARG_VALUE_MAX 16384 /* bytes of one decoded query value */

struct uri_arg {
    const char *key;   /* decoded, NUL-terminated */
    const char *value; /* decoded ("" for `?flag`) */
};

struct uri {
    char *path; /* the decoded path: "/" + segments joined by '/' (owned) */
    struct uri_arg args[URI_ARGS_MAX];
    size_t nargs;
    char *store; /* where the decoded arguments live (owned) */
};

/*
 * Parses `raw` (the request target as received, NUL-terminated) into *u.
 * Returns 0; -EINVAL with the reason in why[n] when the target is refused
 * (the message names the argument or the problem, and quotes nothing that
 * is not valid UTF-8); or -ENOMEM. uri_clear() releases what *u holds, also
 * after an error.
 */
int uri_parse(const char *raw, struct uri *u, char *why, size_t n);
void uri_clear(struct uri *u);
/* The decoded value of query argument `key`, or NULL when it was not given. */
const char *uri_arg(const struct uri *u, const char *key);

#endif
