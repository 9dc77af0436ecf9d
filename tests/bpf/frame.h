/*
 * frame: crafting Ethernet frames for the datapath tests — IPv4 (options,
 * fragments), IPv6 with any chain of extension headers, TCP, UDP, ICMP and
 * ICMPv6 (echo, errors quoting a packet, neighbour discovery), ARP and other
 * ethertypes. Lengths in the IP headers are filled in by frame_done();
 * checksums are left zero (the datapath does not read them).
 */
#ifndef MOAT_TEST_FRAME_H
#define MOAT_TEST_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX 4096

struct frame {
    uint8_t b[FRAME_MAX];
    size_t len;
    size_t l3;    /* offset of the (outermost) IP header */
    bool v6;      /* the outermost IP header is IPv6 */
    size_t inner; /* offset of a quoted IP header (ICMP errors), 0 if none */
    bool inner_v6;
};

void frame_eth(struct frame *f, const uint8_t src[6], const uint8_t dst[6], uint16_t ethertype);
/* IPv4 header; `frag` is the host-order flags|offset field (0x2000: more fragments). */
void frame_ip4(struct frame *f, const char *src, const char *dst, uint8_t proto, uint16_t id,
               uint16_t frag);
void frame_ip6(struct frame *f, const char *src, const char *dst, uint8_t next);
/* An IPv6 extension header (hop-by-hop, routing, destination options...) of (len8 + 1) * 8 bytes.
 */
void frame_ext6(struct frame *f, uint8_t next, uint8_t len8);
/* A routing header (type 4) with `segments_left`. */
void frame_routing6(struct frame *f, uint8_t next, uint8_t segments_left);
/* A fragment header: `offset8` in 8-byte units. */
void frame_frag6(struct frame *f, uint8_t next, uint16_t offset8, bool more, uint32_t id);
void frame_tcp(struct frame *f, uint16_t sport, uint16_t dport, uint8_t flags);
void frame_udp(struct frame *f, uint16_t sport, uint16_t dport);
/* ICMP (or ICMPv6 after frame_ip6) header: type, code and the 4 bytes after the checksum. */
void frame_icmp(struct frame *f, uint8_t type, uint8_t code, uint32_t rest);
/* Marks the start of the packet an ICMP error quotes (the next frame_ip4/6 call). */
void frame_quote(struct frame *f);
/* Neighbour solicitation/advertisement body: target, and a link-layer option when `lla`. */
void frame_nd(struct frame *f, const char *target, uint8_t opt_type, const uint8_t *lla);
void frame_arp(struct frame *f, uint16_t op, const uint8_t sha[6], const char *spa,
               const uint8_t tha[6], const char *tpa);
void frame_bytes(struct frame *f, size_t n);
/* `n` bytes of `data`. */
void frame_data(struct frame *f, const void *data, size_t n);
/* Fills in the IP length fields; returns the frame's length. */
size_t frame_done(struct frame *f);

#endif
