/*
 * dns: the DNS header and question of a message, parsed the same way by the
 * datapath (a copy of the message in a per-CPU buffer) and by user space
 * (unit tests, the fuzz target): one header-only function over a buffer.
 *
 * Bounded everywhere, for the verifier and for hostile input: the buffer is
 * MOAT_DNS_BUF bytes and every index is checked against the message length
 * and masked into the buffer; the name walk consumes one byte per step, at
 * most MOAT_DNS_STEPS steps; a name is at most 255 bytes (RFC 1035); labels
 * at most 63; compression pointers must point strictly backward (no loops)
 * and at most MOAT_DNS_JUMPS of them are followed; the 0x40/0x80 label types
 * are refused. The question is summed up as a 32-bit FNV-1a hash of the name
 * (ASCII lower case, with its label lengths), type and class.
 */
#ifndef MOAT_DNS_H
#define MOAT_DNS_H

#include "moat/abi.h"

#define MOAT_DNS_BUF   512 /* bytes of a message looked at (a power of two) */
#define MOAT_DNS_STEPS 300 /* name bytes and pointers walked at most */
#define MOAT_DNS_JUMPS 8   /* compression pointers followed at most */

/* What dns_parse returns: 0, or one of these (negated). */
#define MOAT_DNS_ERR_SHORT 1 /* shorter than a header and a question */
#define MOAT_DNS_ERR_NAME  2 /* a bad name: label type, length, loop, too long */
#define MOAT_DNS_ERR_COUNT 3 /* not exactly one question */

struct moat_dns_q {
    moat_u16 txid;
    moat_u16 flags;    /* QR is 0x8000 */
    moat_u32 question; /* FNV-1a of name, type and class */
    moat_u16 qtype;
    moat_u16 qclass;
    moat_u32 end; /* offset just after the question */
};

#define MOAT_DNS_MASK (MOAT_DNS_BUF - 1)

static inline moat_u32 moat_dns_fnv(moat_u32 h, moat_u8 c)
{
    return (h ^ c) * 16777619u;
}

/* The walk over a question name: one byte (or one pointer) per step. */
struct moat_dns_walk {
    moat_u32 n;   /* message length (at most MOAT_DNS_BUF) */
    moat_u32 pos; /* where the next byte is */
    moat_u32 end; /* just after the name in the message (0: not known yet) */
    moat_u32 hash;
    moat_u32 namelen;
    moat_u32 left; /* bytes of the current label still to come */
    moat_u32 jumps;
    int done; /* 1 name complete; <0 -MOAT_DNS_ERR_* */
};

/*
 * One step of the walk over b[0..w->n): 0 to go on, 1 when it is over
 * (w->done says how). The datapath runs it under bpf_loop (checked once by
 * the verifier), user space in a plain loop; MOAT_DNS_STEPS steps at most.
 */
static inline int moat_dns_step(const moat_u8 *b, struct moat_dns_walk *w)
{
    moat_u32 pos = w->pos;
    if (pos >= w->n || pos >= MOAT_DNS_BUF) {
        w->done = -MOAT_DNS_ERR_SHORT;
        return 1;
    }
    moat_u8 c = b[pos & MOAT_DNS_MASK];
    if (w->left) { /* a byte of a label */
        if (c >= 'A' && c <= 'Z')
            c = (moat_u8)(c + 32);
        w->hash = moat_dns_fnv(w->hash, c);
        w->left--;
        w->pos = pos + 1;
        return 0;
    }
    if (c == 0) { /* the root: the name ends */
        w->hash = moat_dns_fnv(w->hash, 0);
        if (!w->end)
            w->end = pos + 1;
        w->done = 1;
        return 1;
    }
    if ((c & 0xc0) == 0xc0) { /* a compression pointer: strictly backward */
        if (pos + 1 >= w->n) {
            w->done = -MOAT_DNS_ERR_SHORT;
            return 1;
        }
        moat_u32 to = (moat_u32)(c & 0x3f) << 8 | b[(pos + 1) & MOAT_DNS_MASK];
        if (to >= pos || ++w->jumps > MOAT_DNS_JUMPS) {
            w->done = -MOAT_DNS_ERR_NAME;
            return 1;
        }
        if (!w->end)
            w->end = pos + 2;
        w->pos = to;
        return 0;
    }
    w->namelen += (moat_u32)c + 1;
    if ((c & 0xc0) || w->namelen > 255) { /* 0x40/0x80: no such label types in use */
        w->done = -MOAT_DNS_ERR_NAME;
        return 1;
    }
    w->hash = moat_dns_fnv(w->hash, c);
    w->left = c;
    w->pos = pos + 1;
    return 0;
}

/* Checks the header of b[0..n) and starts the walk over its question's name. */
static inline int moat_dns_begin(const moat_u8 *b, moat_u32 n, struct moat_dns_q *q,
                                 struct moat_dns_walk *w)
{
    if (n > MOAT_DNS_BUF)
        n = MOAT_DNS_BUF;
    if (n < 12 + 5)
        return -MOAT_DNS_ERR_SHORT;
    q->txid = (moat_u16)(b[0] << 8 | b[1]);
    q->flags = (moat_u16)(b[2] << 8 | b[3]);
    if (b[4] != 0 || b[5] != 1)
        return -MOAT_DNS_ERR_COUNT;
    w->n = n;
    w->pos = 12;
    w->end = w->namelen = w->left = w->jumps = 0;
    w->hash = 2166136261u;
    w->done = 0;
    return 0;
}

/* After the walk: the question's type and class, and its hash. 0 or -MOAT_DNS_ERR_*. */
static inline int moat_dns_finish(const moat_u8 *b, const struct moat_dns_walk *w,
                                  struct moat_dns_q *q)
{
    if (w->done != 1)
        return w->done < 0 ? w->done : -MOAT_DNS_ERR_NAME;
    moat_u32 end = w->end;
    if (end + 4 > w->n || end + 4 > MOAT_DNS_BUF)
        return -MOAT_DNS_ERR_SHORT;
    q->qtype = (moat_u16)(b[end & MOAT_DNS_MASK] << 8 | b[(end + 1) & MOAT_DNS_MASK]);
    q->qclass = (moat_u16)(b[(end + 2) & MOAT_DNS_MASK] << 8 | b[(end + 3) & MOAT_DNS_MASK]);
    moat_u32 h = w->hash;
    h = moat_dns_fnv(h, (moat_u8)(q->qtype >> 8));
    h = moat_dns_fnv(h, (moat_u8)q->qtype);
    h = moat_dns_fnv(h, (moat_u8)(q->qclass >> 8));
    h = moat_dns_fnv(h, (moat_u8)q->qclass);
    q->question = h;
    q->end = end + 4;
    return 0;
}

#ifndef __BPF__
/* The whole parse over b[0..n), for user space: 0 with *q, or -MOAT_DNS_ERR_*. */
static inline int moat_dns_parse(const moat_u8 *b, moat_u32 n, struct moat_dns_q *q)
{
    struct moat_dns_walk w;
    int err = moat_dns_begin(b, n, q, &w);
    if (err)
        return err;
    for (int step = 0; step < MOAT_DNS_STEPS; step++)
        if (moat_dns_step(b, &w))
            break;
    return moat_dns_finish(b, &w, q);
}
#endif

#endif
