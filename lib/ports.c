/* ports: port range parsing, checks and prefix splitting (see ports.h). */
#include "ports.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses a decimal port; returns -1 when not a number, else its value (may exceed 65535). */
static long parse_port_number(const char *s, size_t n)
{
    if (n == 0 || n > 6)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int port_range_parse(const char *text, struct port_range *r, char *why, size_t n)
{
    const char *s = text;
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    const char *slash = memchr(s, '/', len);
    size_t lo_len = slash ? (size_t)(slash - s) : len;
    long lo = parse_port_number(s, lo_len);
    long hi = slash ? parse_port_number(slash + 1, len - lo_len - 1) : lo;
    if (lo < 0 || hi < 0) {
        snprintf(why, n, "\"%s\" is not a port range (lo/hi or a single port)", text);
        return -EINVAL;
    }
    if (lo < 1 || lo > 65535 || hi < 1 || hi > 65535) {
        snprintf(why, n, "\"%s\": ports must be in 1..65535", text);
        return -EINVAL;
    }
    if (lo > hi) {
        snprintf(why, n, "\"%s\": lo %ld is greater than hi %ld", text, lo, hi);
        return -EINVAL;
    }
    r->lo = (uint16_t)lo;
    r->hi = (uint16_t)hi;
    return 0;
}

int port_ranges_check(const struct port_range *r, size_t count,
                      void (*report)(void *ctx, const char *message), void *ctx)
{
    char msg[128];
    int problems = 0;
    if (count > MOAT_PORT_RANGES_MAX) {
        snprintf(msg, sizeof(msg), "%zu ranges given, at most %d are allowed", count,
                 MOAT_PORT_RANGES_MAX);
        report(ctx, msg);
        problems++;
    }
    for (size_t i = 0; i < count; i++) {
        for (size_t j = i + 1; j < count; j++) {
            if (r[i].lo <= r[j].hi && r[j].lo <= r[i].hi) {
                snprintf(msg, sizeof(msg), "ranges %u/%u and %u/%u overlap", r[i].lo, r[i].hi,
                         r[j].lo, r[j].hi);
                report(ctx, msg);
                problems++;
            }
        }
    }
    return problems;
}

size_t port_range_prefixes(uint16_t lo, uint16_t hi, struct port_prefix *out)
{
    size_t count = 0;
    uint32_t cur = lo;
    while (cur <= hi) {
        /* Largest aligned block starting at cur that stays within hi. */
        uint8_t bits = 0;
        while (bits < 16) {
            uint32_t size = 1u << (bits + 1);
            if ((cur & (size - 1)) != 0 || cur + size - 1 > hi)
                break;
            bits++;
        }
        out[count].port = (uint16_t)cur;
        out[count].len = (uint8_t)(16 - bits);
        count++;
        cur += 1u << bits;
    }
    return count;
}

void port_range_format(const struct port_range *r, char *buf, size_t n)
{
    snprintf(buf, n, "%u/%u", r->lo, r->hi);
}
