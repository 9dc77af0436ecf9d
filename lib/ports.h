/*
 * ports: destination port ranges of defense rules (SPEC §3).
 *
 * A range is written `lo/hi`; a bare `80` means `80/80`; a list may be given
 * as a comma-separated string `20/30,80/90`. 1 <= lo <= hi <= 65535, at most
 * MOAT_PORT_RANGES_MAX ranges, no two overlapping. The datapath looks ports
 * up in an LPM trie, so a range is also expressed as aligned port prefixes.
 */
#ifndef MOAT_PORTS_H
#define MOAT_PORTS_H

#include <stddef.h>
#include <stdint.h>

#define MOAT_PORT_RANGES_MAX   8
#define MOAT_PORT_PREFIXES_MAX 32 /* a 16-bit range splits into at most 30 prefixes */

struct port_range {
    uint16_t lo;
    uint16_t hi;
};

struct port_prefix {
    uint16_t port; /* first port of the block */
    uint8_t len;   /* significant leading bits, 0..16 */
};

/*
 * Parses one range (`80`, `80/90`, surrounding spaces allowed) into *r.
 * Returns 0 or -EINVAL with the reason written to `why` (size n).
 */
int port_range_parse(const char *text, struct port_range *r, char *why, size_t n);
/*
 * Checks a set of ranges: count and overlaps. Calls `report(ctx, message)`
 * once per problem and returns how many it found.
 */
int port_ranges_check(const struct port_range *r, size_t count,
                      void (*report)(void *ctx, const char *message), void *ctx);
/*
 * Splits [lo, hi] into the fewest aligned prefixes, written to `out`
 * (room for MOAT_PORT_PREFIXES_MAX). Returns how many.
 */
size_t port_range_prefixes(uint16_t lo, uint16_t hi, struct port_prefix *out);
/* Writes "lo/hi" into buf (size >= 12). */
void port_range_format(const struct port_range *r, char *buf, size_t n);

#endif
