/*
 * libFuzzer target for what parses attacker-controlled bytes of detections:
 * the DNS header and question (include/moat/dns.h, the same code the
 * datapath runs under bpf_loop) and threat lists (lib/threatlist.c). Any
 * input is accepted or refused without a crash or a hang; what the DNS
 * parser accepts satisfies its bounds (the question ends inside the message,
 * one question, a name of at most 255 bytes), and the walk always ends
 * within MOAT_DNS_STEPS steps.
 */
#include "moat/dns.h"
#include "threatlist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_dns(const uint8_t *data, size_t size)
{
    uint8_t buf[MOAT_DNS_BUF];
    size_t n = size < sizeof(buf) ? size : sizeof(buf);
    memset(buf, 0, sizeof(buf));
    memcpy(buf, data, n);
    struct moat_dns_q q;
    struct moat_dns_walk w;
    if (moat_dns_begin(buf, (moat_u32)n, &q, &w) != 0)
        return;
    int steps = 0;
    while (steps < MOAT_DNS_STEPS && !moat_dns_step(buf, &w))
        steps++;
    if (moat_dns_finish(buf, &w, &q) != 0)
        return;
    if (q.end > n || q.end < 12 + 5 || w.namelen > 255 || w.jumps > MOAT_DNS_JUMPS)
        abort();
    struct moat_dns_q again;
    if (moat_dns_parse(buf, (moat_u32)n, &again) != 0 || again.question != q.question)
        abort(); /* the one-call parse and the stepped walk agree */
}

static void check_threats(const uint8_t *data, size_t size)
{
    struct moat_diags d;
    diags_init(&d);
    struct moat_threatlist *tl = NULL;
    if (threatlist_parse((const char *)data, size, "fuzz", &tl, &d) == 0) {
        for (size_t i = 0; i < tl->n; i++)
            if (tl->items[i].label >= tl->nlabels || tl->items[i].prefix.len > 128)
                abort();
        char *text = threatlist_format(tl);
        struct moat_threatlist *back = NULL;
        struct moat_diags d2;
        diags_init(&d2);
        if (!text || threatlist_parse(text, strlen(text), "again", &back, &d2) != 0 ||
            back->n != tl->n)
            abort(); /* what it accepts it writes back in a form it accepts again */
        threatlist_free(back);
        diags_clear(&d2);
        free(text);
    }
    threatlist_free(tl);
    diags_clear(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_dns(data, size);
    check_threats(data, size);
    return 0;
}
