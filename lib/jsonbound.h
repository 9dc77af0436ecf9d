/*
 * jsonbound: size bounds on a parsed JSON value, checked before anything
 * stores or walks it — how deep arrays and objects nest, how long strings and
 * keys are (in bytes; jansson has already checked that they are UTF-8 without
 * NUL), how many members one array or object has, and how many values there
 * are in all. A value within bounds can be stored and read back by every
 * consumer (SQLite's JSON functions stop at 2,000 levels; the API's bounds are
 * far below).
 */
#ifndef MOAT_JSONBOUND_H
#define MOAT_JSONBOUND_H

#include <jansson.h>
#include <stddef.h>

struct json_bounds {
    size_t depth;        /* levels of arrays and objects, the outermost counted as 1 */
    size_t string_bytes; /* bytes of one string value */
    size_t key_bytes;    /* bytes of one object key */
    size_t items;        /* members of one array or object */
    size_t values;       /* values in all, containers included */
};

/*
 * Checks `v` against `b`. Returns 0 when it is within them, or 1 with the
 * first value that is not named in where[wn] (a path such as
 * `events[3].details.a`, "" for `v` itself; cut between UTF-8 characters
 * when long) and the reason in why[yn] ("nested deeper than 16 levels").
 */
int json_bounds_check(const json_t *v, const struct json_bounds *b, char *where, size_t wn,
                      char *why, size_t yn);

#endif
