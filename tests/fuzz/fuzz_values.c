/*
 * libFuzzer target for the small value parsers: port ranges, patterns, image
 * references and patterns, label selectors, addresses and prefixes. Each must
 * accept or reject any string without crashing, and accepted values must
 * satisfy their invariants.
 */
#include "addr.h"
#include "image.h"
#include "labels.h"
#include "pattern.h"
#include "ports.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ports(const char *s)
{
    struct port_range r;
    char why[256];
    if (port_range_parse(s, &r, why, sizeof(why)) != 0)
        return;
    if (r.lo < 1 || r.lo > r.hi)
        abort();
    struct port_prefix pp[MOAT_PORT_PREFIXES_MAX];
    size_t n = port_range_prefixes(r.lo, r.hi, pp);
    uint32_t covered = 0;
    for (size_t i = 0; i < n; i++)
        covered += 1u << (16 - pp[i].len);
    if (covered != (uint32_t)r.hi - r.lo + 1u)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_ports(s);
    if (!pattern_check(s) && !pattern_match(s, s) && !strchr(s, '*'))
        abort(); /* a pattern without `*` matches itself */
    struct image_forms forms;
    if (image_forms(s, &forms) == 0 && forms.count == 0)
        abort();
    char norm[1024];
    const char *why;
    image_pattern_normalise(s, norm, sizeof(norm), &why);
    char *k = NULL, *v = NULL, msg[256];
    if (label_parse(s, &k, &v, msg, sizeof(msg)) == 0) {
        free(k);
        free(v);
    }
    struct moat_prefix p;
    if (prefix_parse(s, &p, &why) == 0 && !prefix_contains(&p, &p.addr))
        abort();
    free(s);
    return 0;
}
