/*
 * jsonout: moat-server's JSON writer — what json_dumps(JSON_COMPACT |
 * JSON_PRESERVE_ORDER) writes, byte for byte, at a third of its cost (no
 * callback per piece, no printf per integer). Reals (no API document has
 * them) are left to jansson.
 */
#ifndef MOAT_SERVER_JSONOUT_H
#define MOAT_SERVER_JSONOUT_H

#include <jansson.h>
#include <stddef.h>

/* The compact JSON text of `v` (caller frees) and its length in *len, or NULL when out of memory.
 */
char *json_text(const json_t *v, size_t *len);

#endif
