/* threatlist: threat-intelligence lists (see threatlist.h). */
#include "threatlist.h"
#include "mem.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct labelset {
    char **names;
    size_t n, cap;
    uint32_t *slots; /* open addressing: index + 1, 0 empty */
    size_t nslots;
};

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int labels_grow(struct labelset *ls)
{
    size_t nslots = ls->nslots ? ls->nslots * 2 : 64;
    uint32_t *slots = moat_calloc(nslots, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < ls->n; i++) {
        size_t j = hash_str(ls->names[i], strlen(ls->names[i])) & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(ls->slots);
    ls->slots = slots;
    ls->nslots = nslots;
    return 0;
}

/* The index of label s[0..n) (added when new), or -ENOMEM. */
static long label_index(struct labelset *ls, const char *s, size_t n)
{
    if ((ls->n + 1) * 2 > ls->nslots && labels_grow(ls) < 0)
        return -ENOMEM;
    size_t j = hash_str(s, n) & (ls->nslots - 1);
    for (; ls->slots[j]; j = (j + 1) & (ls->nslots - 1)) {
        const char *have = ls->names[ls->slots[j] - 1];
        if (strlen(have) == n && memcmp(have, s, n) == 0)
            return ls->slots[j] - 1;
    }
    char *copy = moat_strndup(s, n);
    if (!copy || moat_grow(&ls->names, &ls->cap, ls->n + 1, sizeof(*ls->names)) < 0) {
        free(copy);
        return -ENOMEM;
    }
    ls->names[ls->n] = copy;
    ls->slots[j] = (uint32_t)ls->n + 1;
    return (long)ls->n++;
}

/* A label: printable, no control characters, valid UTF-8. NULL or what is wrong. */
static const char *label_problem(const unsigned char *s, size_t n)
{
    if (n > MOAT_THREAT_LABEL_MAX)
        return "is longer than 128 bytes";
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xe0) == 0xc0 ? 2
                     : (c & 0xf0) == 0xe0 ? 3
                     : (c & 0xf8) == 0xf0 ? 4
                                          : 0;
        if (c < 0x20 || c == 0x7f)
            return "has a control character";
        if (!len || i + len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4))
            return "is not valid UTF-8";
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return "is not valid UTF-8";
        i += len;
    }
    return NULL;
}

static int cmp_prefix(const struct moat_threat *x, const struct moat_threat *y)
{
    int c = memcmp(x->prefix.addr.b, y->prefix.addr.b, 16);
    return c ? c : x->prefix.len - y->prefix.len;
}

/* By prefix, then by line: the first listing of a prefix sorts first. */
static int cmp_threat(const void *a, const void *b)
{
    const struct moat_threat *x = a, *y = b;
    int c = cmp_prefix(x, y);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* One line (without its newline): into the list, or an error in d. */
static int parse_line(const char *s, size_t n, int line, const char *name, struct labelset *ls,
                      struct moat_threatlist *tl, size_t *cap, struct moat_diags *d)
{
    const char *hash = memchr(s, '#', n);
    if (hash)
        n = (size_t)(hash - s);
    while (n && is_space(s[n - 1]))
        n--;
    size_t i = 0;
    while (i < n && is_space(s[i]))
        i++;
    if (i == n)
        return 0;
    size_t start = i;
    while (i < n && !is_space(s[i]))
        i++;
    char cidr[96];
    size_t clen = i - start;
    if (clen >= sizeof(cidr)) {
        diags_add(d, name, line, NULL, "\"%.40s...\" is not a CIDR", s + start);
        return 0;
    }
    memcpy(cidr, s + start, clen);
    cidr[clen] = '\0';
    struct moat_prefix p;
    const char *why = NULL;
    if (prefix_parse(cidr, &p, &why) < 0) {
        diags_add(d, name, line, NULL, "\"%s\" %s", cidr, why ? why : "is not a CIDR");
        return 0;
    }
    while (i < n && is_space(s[i]))
        i++;
    const char *label = n > i ? s + i : "listed";
    size_t llen = n > i ? n - i : strlen("listed");
    const char *lp = label_problem((const unsigned char *)label, llen);
    if (lp) {
        diags_add(d, name, line, NULL, "label %s", lp);
        return 0;
    }
    if (tl->n >= MOAT_THREATS_MAX) {
        diags_add(d, name, line, NULL, "more than %d entries", MOAT_THREATS_MAX);
        return -E2BIG;
    }
    long li = label_index(ls, label, llen);
    if (li < 0 || moat_grow(&tl->items, cap, tl->n + 1, sizeof(*tl->items)) < 0)
        return -ENOMEM;
    tl->items[tl->n++] =
        (struct moat_threat){.prefix = p, .label = (uint32_t)li, .line = (uint32_t)line};
    return 0;
}

/* Sorts by prefix and keeps the first listing of each. */
static void dedup(struct moat_threatlist *tl)
{
    if (tl->n < 2)
        return;
    qsort(tl->items, tl->n, sizeof(*tl->items), cmp_threat);
    size_t w = 1;
    for (size_t r = 1; r < tl->n; r++)
        if (cmp_prefix(&tl->items[w - 1], &tl->items[r]) != 0)
            tl->items[w++] = tl->items[r];
    tl->n = w;
}

int threatlist_parse(const char *text, size_t len, const char *name, struct moat_threatlist **out,
                     struct moat_diags *d)
{
    *out = NULL;
    if (len > MOAT_THREAT_TEXT_MAX) {
        diags_add(d, name, 0, NULL, "the list is larger than %u MiB", MOAT_THREAT_TEXT_MAX >> 20);
        return -E2BIG;
    }
    struct moat_threatlist *tl = moat_calloc(1, sizeof(*tl));
    struct labelset ls = {0};
    if (!tl)
        return -ENOMEM;
    size_t cap = 0, before = diags_total(d);
    int err = 0, line = 1;
    for (size_t at = 0; at < len && !err; line++) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (memchr(text + at, '\0', end - at)) {
            diags_add(d, name, line, NULL, "has a NUL byte");
        } else {
            err = parse_line(text + at, end - at, line, name, &ls, tl, &cap, d);
        }
        at = end + 1;
    }
    if (!err && diags_oom(d))
        err = -ENOMEM;
    if (!err && diags_total(d) > before)
        err = -EINVAL;
    if (!err) {
        dedup(tl);
        /* hand the labels over: the list owns them from here */
        tl->labels = ls.names;
        tl->nlabels = ls.n;
        ls.names = NULL;
        ls.n = 0;
    }
    for (size_t i = 0; i < ls.n; i++)
        free(ls.names[i]);
    free(ls.names);
    free(ls.slots);
    if (err) {
        threatlist_free(tl);
        return err;
    }
    *out = tl;
    return 0;
}

void threatlist_free(struct moat_threatlist *tl)
{
    if (!tl)
        return;
    for (size_t i = 0; i < tl->nlabels; i++)
        free(tl->labels[i]);
    free(tl->labels);
    free(tl->items);
    free(tl);
}

char *threatlist_format(const struct moat_threatlist *tl)
{
    size_t cap = 1, n = 0;
    for (size_t i = 0; i < tl->n; i++)
        cap += MOAT_ADDR_STRLEN + 8 + strlen(tl->labels[tl->items[i].label]) + 2;
    char *out = moat_calloc(cap, 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < tl->n; i++) {
        char pfx[MOAT_ADDR_STRLEN + 8];
        prefix_format(&tl->items[i].prefix, pfx, sizeof(pfx));
        n += (size_t)snprintf(out + n, cap - n, "%s %s\n", pfx, tl->labels[tl->items[i].label]);
    }
    out[n] = '\0';
    return out;
}

const struct moat_threat *threatlist_lookup(const struct moat_threatlist *tl,
                                            const struct moat_addr *a)
{
    if (!tl || !tl->n)
        return NULL;
    unsigned low = addr_is_v4(a) ? 96 : 0;
    for (int len = 128; len >= (int)low; len--) {
        struct moat_threat key = {.prefix = {.addr = *a, .len = (uint8_t)len}};
        for (int bit = len; bit < 128; bit++)
            key.prefix.addr.b[bit / 8] &= (uint8_t) ~(1u << (7 - bit % 8));
        size_t lo = 0, hi = tl->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = cmp_prefix(&tl->items[mid], &key);
            if (c == 0)
                return &tl->items[mid];
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    return NULL;
}
