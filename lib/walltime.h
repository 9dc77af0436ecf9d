/*
 * walltime: the wall-clock times of the API and the agent protocol, as
 * RFC 3339 UTC with seconds (`2026-12-01T23:00:00Z`, 20 characters).
 */
#ifndef MOAT_WALLTIME_H
#define MOAT_WALLTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define MOAT_WALLTIME_LEN 21 /* with the NUL */

/* `t` as text in buf (at least MOAT_WALLTIME_LEN bytes). */
void walltime_format(time_t t, char *buf);
/* The time `s` names: true with *t, false when `s` is not exactly that form. */
bool walltime_parse(const char *s, time_t *t);

#endif
