/* frame: crafting frames for the datapath tests (see frame.h). */
#include "frame.h"

#include <arpa/inet.h>
#include <assert.h>
#include <string.h>

static uint8_t *room(struct frame *f, size_t n)
{
    assert(f->len + n <= FRAME_MAX);
    uint8_t *at = f->b + f->len;
    memset(at, 0, n);
    f->len += n;
    return at;
}

static void put16(uint8_t *at, uint16_t v)
{
    at[0] = (uint8_t)(v >> 8);
    at[1] = (uint8_t)v;
}

static void put32(uint8_t *at, uint32_t v)
{
    put16(at, (uint16_t)(v >> 16));
    put16(at + 2, (uint16_t)v);
}

void frame_eth(struct frame *f, const uint8_t src[6], const uint8_t dst[6], uint16_t ethertype)
{
    memset(f, 0, sizeof(*f));
    uint8_t *e = room(f, 14);
    memcpy(e, dst, 6);
    memcpy(e + 6, src, 6);
    put16(e + 12, ethertype);
}

static void mark_ip(struct frame *f, bool v6)
{
    if (f->inner == SIZE_MAX) {
        f->inner = f->len;
        f->inner_v6 = v6;
    } else if (!f->l3) {
        f->l3 = f->len;
        f->v6 = v6;
    }
}

void frame_ip4(struct frame *f, const char *src, const char *dst, uint8_t proto, uint16_t id,
               uint16_t frag)
{
    mark_ip(f, false);
    uint8_t *h = room(f, 20);
    h[0] = 0x45;
    h[8] = 64;
    h[9] = proto;
    put16(h + 4, id);
    put16(h + 6, frag);
    int ok = inet_pton(AF_INET, src, h + 12) == 1 && inet_pton(AF_INET, dst, h + 16) == 1;
    assert(ok);
    (void)ok;
}

void frame_ip6(struct frame *f, const char *src, const char *dst, uint8_t next)
{
    mark_ip(f, true);
    uint8_t *h = room(f, 40);
    h[0] = 0x60;
    h[6] = next;
    h[7] = 255;
    int ok = inet_pton(AF_INET6, src, h + 8) == 1 && inet_pton(AF_INET6, dst, h + 24) == 1;
    assert(ok);
    (void)ok;
}

void frame_ext6(struct frame *f, uint8_t next, uint8_t len8)
{
    uint8_t *h = room(f, ((size_t)len8 + 1) * 8);
    h[0] = next;
    h[1] = len8;
    h[2] = 1; /* a PadN option filling the rest */
    h[3] = (uint8_t)(((size_t)len8 + 1) * 8 - 4);
}

void frame_routing6(struct frame *f, uint8_t next, uint8_t segments_left)
{
    uint8_t *h = room(f, 24);
    h[0] = next;
    h[1] = 2;
    h[2] = 4;
    h[3] = segments_left;
}

void frame_frag6(struct frame *f, uint8_t next, uint16_t offset8, bool more, uint32_t id)
{
    uint8_t *h = room(f, 8);
    h[0] = next;
    put16(h + 2, (uint16_t)(offset8 << 3 | (more ? 1 : 0)));
    put32(h + 4, id);
}

void frame_tcp(struct frame *f, uint16_t sport, uint16_t dport, uint8_t flags)
{
    uint8_t *h = room(f, 20);
    put16(h, sport);
    put16(h + 2, dport);
    h[12] = 5 << 4;
    h[13] = flags;
}

void frame_udp(struct frame *f, uint16_t sport, uint16_t dport)
{
    uint8_t *h = room(f, 8);
    put16(h, sport);
    put16(h + 2, dport);
    put16(h + 4, 8); /* the datapath does not read it */
}

void frame_icmp(struct frame *f, uint8_t type, uint8_t code, uint32_t rest)
{
    uint8_t *h = room(f, 8);
    h[0] = type;
    h[1] = code;
    put32(h + 4, rest);
}

void frame_quote(struct frame *f)
{
    f->inner = SIZE_MAX;
}

void frame_nd(struct frame *f, const char *target, uint8_t opt_type, const uint8_t *lla)
{
    uint8_t *h = room(f, 16);
    int ok = inet_pton(AF_INET6, target, h) == 1;
    assert(ok);
    (void)ok;
    if (lla) {
        uint8_t *o = room(f, 8);
        o[0] = opt_type;
        o[1] = 1;
        memcpy(o + 2, lla, 6);
    }
}

void frame_arp(struct frame *f, uint16_t op, const uint8_t sha[6], const char *spa,
               const uint8_t tha[6], const char *tpa)
{
    uint8_t *a = room(f, 28);
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, sha, 6);
    memcpy(a + 18, tha, 6);
    int ok = inet_pton(AF_INET, spa, a + 14) == 1 && inet_pton(AF_INET, tpa, a + 24) == 1;
    assert(ok);
    (void)ok;
}

void frame_bytes(struct frame *f, size_t n)
{
    uint8_t *b = room(f, n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)i;
}

void frame_data(struct frame *f, const void *data, size_t n)
{
    memcpy(room(f, n), data, n);
}

static void fix_lengths(struct frame *f, size_t at, bool v6, size_t end)
{
    if (v6)
        put16(f->b + at + 4, (uint16_t)(end - at - 40));
    else
        put16(f->b + at + 2, (uint16_t)(end - at));
}

size_t frame_done(struct frame *f)
{
    if (f->l3)
        fix_lengths(f, f->l3, f->v6, f->len);
    if (f->inner && f->inner != SIZE_MAX)
        fix_lengths(f, f->inner, f->inner_v6, f->len);
    return f->len;
}
