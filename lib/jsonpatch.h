/*
 * jsonpatch: JSON merge patch (RFC 7396) over jansson values, for the
 * server's PATCH routes and for `moat apply`, which computes what a PATCH
 * would leave. A null member removes the key; an object member is merged
 * into the target's object (made when the target has none); anything else
 * replaces the target's value with a copy.
 */
#ifndef MOAT_JSONPATCH_H
#define MOAT_JSONPATCH_H

#include <jansson.h>

/* Merges `patch` (an object) into `target` (an object). 0 or -ENOMEM. */
int json_merge_patch(json_t *target, const json_t *patch);

#endif
