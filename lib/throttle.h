/*
 * throttle: a token bucket per source address, for limiting how fast one
 * source may fail to authenticate. Each source may fail `burst` times at
 * once; its allowance then refills at `per_sec` failures a second. A source
 * whose allowance is used up must wait: throttle_wait() says how long.
 *
 * The table has a fixed number of entries (no growth under a flood of
 * addresses): sources are kept in sets of four by hash, and a new source
 * takes the place of the one in its set that has the most allowance back
 * (an entry with a full bucket tells nothing, so nothing is lost). Pure: the
 * caller passes the time and serializes calls.
 */
#ifndef MOAT_THROTTLE_H
#define MOAT_THROTTLE_H

#include <stddef.h>

#define THROTTLE_KEY_MAX 16 /* an IPv6 address */

struct throttle;

/* A table of `sets` * 4 sources. 0 with *out, or -ENOMEM / -EINVAL (bad numbers). */
int throttle_new(double burst, double per_sec, size_t sets, struct throttle **out);
void throttle_free(struct throttle *t);
/*
 * Seconds (rounded up) the source `key` (klen <= THROTTLE_KEY_MAX bytes) must
 * wait before its next failure is allowed at time `now` (seconds, any
 * monotonic origin); 0 when it may fail now.
 */
unsigned throttle_wait(struct throttle *t, const void *key, size_t klen, double now);
/* Counts one failure of `key` at `now`. */
void throttle_charge(struct throttle *t, const void *key, size_t klen, double now);

#endif
