/* addr: address and prefix parsing and tests (see addr.h). */
#include "addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool addr_is_v4(const struct moat_addr *a)
{
    return memcmp(a->b, v4_mapped, sizeof(v4_mapped)) == 0;
}

const char *addr_not_source(const struct moat_addr *a)
{
    const uint8_t *b = a->b;
    if (addr_is_v4(a)) {
        const uint8_t *v4 = b + 12;
        if (v4[0] == 0)
            return "unspecified";
        if (v4[0] == 127)
            return "loopback";
        if ((v4[0] & 0xf0) == 0xe0)
            return "multicast";
        if (v4[0] == 255 && v4[1] == 255 && v4[2] == 255 && v4[3] == 255)
            return "broadcast";
        if (v4[0] == 169 && v4[1] == 254)
            return "link-local";
        return NULL;
    }
    static const uint8_t zero[15] = {0};
    if (memcmp(b, zero, 15) == 0 && b[15] <= 1)
        return b[15] ? "loopback" : "unspecified";
    if (b[0] == 0xff)
        return "multicast";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return "link-local";
    return NULL;
}

int addr_parse(const char *text, struct moat_addr *out)
{
    struct in_addr v4;
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, text, &v4) == 1) {
        memcpy(out->b, v4_mapped, sizeof(v4_mapped));
        memcpy(out->b + 12, &v4, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->b) == 1)
        return 0;
    return -EINVAL;
}

static bool host_bits_clear(const struct moat_addr *a, unsigned len)
{
    for (unsigned bit = len; bit < 128; bit++)
        if (a->b[bit / 8] & (0x80 >> (bit % 8)))
            return false;
    return true;
}

int prefix_parse(const char *text, struct moat_prefix *out, const char **why)
{
    char buf[MOAT_ADDR_STRLEN];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    *why = "is not an IP address or prefix";
    if (alen == 0 || alen >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, text, alen);
    buf[alen] = '\0';
    if (addr_parse(buf, &out->addr) < 0)
        return -EINVAL;
    /* The length is counted in the family the address is written in: an IPv6
     * spelling of an IPv4 address (::ffff:10.0.0.0/104) has an IPv6 length. */
    unsigned base = strchr(buf, ':') ? 0 : 96;
    unsigned max = 128 - base;
    unsigned len = max;
    if (slash) {
        char *end;
        unsigned long v = strtoul(slash + 1, &end, 10);
        if (!isdigit((unsigned char)slash[1]) || *end || v > max) {
            *why = "has an invalid prefix length";
            return -EINVAL;
        }
        len = (unsigned)v;
    }
    out->len = (uint8_t)(base + len);
    if (!host_bits_clear(&out->addr, out->len)) {
        *why = "has host bits set";
        return -EINVAL;
    }
    *why = NULL;
    return 0;
}

void addr_format(const struct moat_addr *a, char *buf, size_t n)
{
    if (addr_is_v4(a))
        inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)n);
    else
        inet_ntop(AF_INET6, a->b, buf, (socklen_t)n);
}

void prefix_format(const struct moat_prefix *p, char *buf, size_t n)
{
    char a[MOAT_ADDR_STRLEN];
    addr_format(&p->addr, a, sizeof(a));
    unsigned len = addr_is_v4(&p->addr) && p->len >= 96 ? p->len - 96u : p->len;
    snprintf(buf, n, "%s/%u", a, len);
}

bool prefix_is_v4(const struct moat_prefix *p)
{
    return p->len >= 96 && addr_is_v4(&p->addr);
}

bool prefix_contains(const struct moat_prefix *p, const struct moat_addr *a)
{
    /* IPv4 lives inside ::ffff:0:0/96 here, but an IPv6 prefix (even ::/0)
     * never covers IPv4 addresses: the families stay apart, as in iptables. */
    if (prefix_is_v4(p) != addr_is_v4(a))
        return false;
    unsigned full = p->len / 8;
    if (memcmp(p->addr.b, a->b, full) != 0)
        return false;
    unsigned rest = p->len % 8;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (p->addr.b[full] & mask) == (a->b[full] & mask);
}

bool prefix_covers(const struct moat_prefix *outer, const struct moat_prefix *inner)
{
    return outer->len <= inner->len && prefix_contains(outer, &inner->addr);
}

int addr_cmp(const struct moat_addr *a, const struct moat_addr *b)
{
    return memcmp(a->b, b->b, sizeof(a->b));
}

struct moat_prefix prefix_host(const struct moat_addr *a)
{
    struct moat_prefix p = {.addr = *a, .len = 128};
    return p;
}
