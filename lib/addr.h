/*
 * addr: IPv4 and IPv6 addresses and prefixes in one 128-bit form.
 *
 * IPv4 is kept as an IPv4-mapped IPv6 address (::ffff:a.b.c.d) and an IPv4
 * prefix /n as /(96+n), so every table in Moat (and the datapath's LPM keys)
 * has one layout for both families.
 */
#ifndef MOAT_ADDR_H
#define MOAT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOAT_ADDR_STRLEN 64

struct moat_addr {
    uint8_t b[16];
};

struct moat_prefix {
    struct moat_addr addr; /* host bits are zero */
    uint8_t len;           /* 0..128, in the 128-bit space */
};

/* Parses an IPv4 or IPv6 address. Returns 0 or -EINVAL. */
int addr_parse(const char *text, struct moat_addr *out);
/*
 * Parses `a.b.c.d/n`, `x::/n` or a bare address (a host prefix). The length
 * counts in the family the address is written in (`::ffff:10.0.0.0/104` is
 * `10.0.0.0/8`).
 * Returns 0, or -EINVAL with a static reason in *why ("host bits are set", ...).
 */
int prefix_parse(const char *text, struct moat_prefix *out, const char **why);
bool addr_is_v4(const struct moat_addr *a);
/*
 * Why `a` cannot be the source of a connection worth holding in quarantine
 * ("unspecified", "loopback", "multicast", "broadcast", "link-local"), or
 * NULL when it can (any other unicast address).
 */
const char *addr_not_source(const struct moat_addr *a);
/* Formats into buf (size >= MOAT_ADDR_STRLEN): IPv4 as dotted quad. */
void addr_format(const struct moat_addr *a, char *buf, size_t n);
/* Formats `addr/len`, with an IPv4 length for IPv4 prefixes. */
void prefix_format(const struct moat_prefix *p, char *buf, size_t n);
/* True for IPv4 prefixes (inside ::ffff:0:0/96). */
bool prefix_is_v4(const struct moat_prefix *p);
/* True when `a` is inside `p`; an IPv6 prefix never contains an IPv4 address. */
bool prefix_contains(const struct moat_prefix *p, const struct moat_addr *a);
/* True when `inner` lies entirely inside `outer`. */
bool prefix_covers(const struct moat_prefix *outer, const struct moat_prefix *inner);
int addr_cmp(const struct moat_addr *a, const struct moat_addr *b);
/* Makes the host prefix (/128) of an address. */
struct moat_prefix prefix_host(const struct moat_addr *a);

#endif
