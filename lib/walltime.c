/* walltime: RFC 3339 UTC times (see walltime.h). */
#include "walltime.h"

#include <string.h>

void walltime_format(time_t t, char *buf)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, MOAT_WALLTIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        strcpy(buf, "1970-01-01T00:00:00Z");
}

bool walltime_parse(const char *s, time_t *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!s || strlen(s) != MOAT_WALLTIME_LEN - 1)
        return false;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return false;
    *t = timegm(&tm);
    return true;
}
