/*
 * threatlist: threat-intelligence lists (SPEC §6, §10) — text of `CIDR label`
 * lines, IPv4 and IPv6, `#` starting a comment, blank lines ignored — parsed
 * and validated (every error with its line), for the agent (a file of
 * `threat_intel.file`), the server (PUT .../threat-intel) and the CLI.
 *
 * Bounds: MOAT_THREATS_MAX entries, MOAT_THREAT_LABEL_MAX bytes per label
 * (printable, valid UTF-8). A label is optional (`listed` then); labels are
 * kept once however many lines share them. A prefix listed twice keeps its
 * first label. The list owns everything; threatlist_free(NULL) is a no-op.
 */
#ifndef MOAT_THREATLIST_H
#define MOAT_THREATLIST_H

#include "addr.h"
#include "diag.h"

#include <stddef.h>
#include <stdint.h>

#define MOAT_THREATS_MAX      2000000
#define MOAT_THREAT_LABEL_MAX 128
#define MOAT_THREAT_TEXT_MAX  (256u << 20) /* bytes of list text */

struct moat_threat {
    struct moat_prefix prefix;
    uint32_t label; /* index into labels */
    uint32_t line;  /* where it was listed (1-based) */
};

struct moat_threatlist {
    struct moat_threat *items; /* sorted by prefix, no duplicates */
    size_t n;
    char **labels;
    size_t nlabels;
};

/*
 * Parses `len` bytes of `text` (named `name` in messages). 0 with *out;
 * -EINVAL with every problem in `d` (nothing returned); -ENOMEM; -E2BIG
 * when over the bounds (said in `d`).
 */
int threatlist_parse(const char *text, size_t len, const char *name, struct moat_threatlist **out,
                     struct moat_diags *d);
void threatlist_free(struct moat_threatlist *tl);
/* The most specific entry covering address `a` (IPv4 mapped as everywhere), or NULL:
 * a binary search per prefix length. */
const struct moat_threat *threatlist_lookup(const struct moat_threatlist *tl,
                                            const struct moat_addr *a);
/* The list as text again, one `CIDR label` line per entry; the caller frees. NULL on OOM. */
char *threatlist_format(const struct moat_threatlist *tl);

#endif
