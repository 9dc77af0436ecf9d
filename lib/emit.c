/* emit: YAML text for workloads and nodes (see emit.h). */
#include "emit.h"
#include "mem.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void emit_buf_init(struct emit_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : MOAT_EMIT_MAX_DEFAULT;
}

void emit_buf_free(struct emit_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

const char *emit_buf_text(const struct emit_buf *b)
{
    return b->data ? b->data : "";
}

char *emit_buf_take(struct emit_buf *b)
{
    char *s = b->data ? b->data : moat_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

int emit_raw(struct emit_buf *b, const char *s, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -E2BIG;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int emit_str(struct emit_buf *b, const char *s)
{
    return emit_raw(b, s, strlen(s));
}

/* Puts the buffer back to `len` bytes after a failed append; returns err. */
static int rewind_to(struct emit_buf *b, size_t len, int err)
{
    if (b->data) {
        b->len = len;
        b->data[len] = '\0';
    }
    return err;
}

bool emit_plain_ok(const char *s)
{
    /* YAML 1.1 reads these (in any case) as booleans or null. */
    static const char *const words[] = {"y",   "n",    "yes",   "no",   "on",
                                        "off", "true", "false", "null", NULL};
    char c = s[0];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return false;
    for (const char *p = s; *p; p++) {
        c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '/' || c == '-';
        if (!ok)
            return false;
    }
    for (const char *const *w = words; *w; w++)
        if (strcasecmp(s, *w) == 0)
            return false;
    return true;
}

/*
 * Decodes one UTF-8 sequence at s (strictly: no overlong forms, surrogates
 * or code points past U+10FFFF). Returns its length and sets *cp, or 0.
 */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2, v = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3, v = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4, v = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* The escape for code point cp inside double quotes, or NULL to copy it as is. */
static const char *escape_of(uint32_t cp, char *buf, size_t n)
{
    switch (cp) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\t':
        return "\\t";
    case '\r':
        return "\\r";
    default:
        break;
    }
    /* Controls, C1 controls (NEL is a YAML line break), and what YAML may not carry. */
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
        snprintf(buf, n, "\\x%02X", (unsigned)cp);
        return buf;
    }
    if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff) {
        snprintf(buf, n, "\\u%04X", (unsigned)cp);
        return buf;
    }
    return NULL;
}

static int emit_quoted(struct emit_buf *b, const char *s)
{
    int err = emit_raw(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (!err && *p) {
        uint32_t cp;
        size_t n = utf8_decode(p, &cp);
        if (!n)
            return -EILSEQ;
        char esc[16];
        const char *e = escape_of(cp, esc, sizeof(esc));
        err = e ? emit_str(b, e) : emit_raw(b, (const char *)p, n);
        p += n;
    }
    return err ? err : emit_raw(b, "\"", 1);
}

int emit_scalar(struct emit_buf *b, const char *s)
{
    size_t start = b->len;
    int err = emit_plain_ok(s) ? emit_str(b, s) : emit_quoted(b, s);
    return err ? rewind_to(b, start, err) : 0;
}

/* `key: value\n`; value NULL writes nothing. */
static int emit_field(struct emit_buf *b, const char *key, const char *value)
{
    if (!value)
        return 0;
    int err = emit_str(b, key);
    if (!err)
        err = emit_raw(b, ": ", 2);
    if (!err)
        err = emit_scalar(b, value);
    return err ? err : emit_raw(b, "\n", 1);
}

static int emit_addrs(struct emit_buf *b, const struct moat_addr *addrs, size_t n)
{
    if (!n)
        return 0;
    int err = emit_str(b, "ips: [");
    for (size_t i = 0; i < n && !err; i++) {
        char text[MOAT_ADDR_STRLEN];
        addr_format(&addrs[i], text, sizeof(text));
        if (i)
            err = emit_raw(b, ", ", 2);
        if (!err)
            err = emit_scalar(b, text);
    }
    return err ? err : emit_raw(b, "]\n", 2);
}

static int emit_labels(struct emit_buf *b, const struct moat_label *labels, size_t n)
{
    if (!n)
        return 0;
    int err = emit_str(b, "labels: {");
    for (size_t i = 0; i < n && !err; i++) {
        if (i)
            err = emit_raw(b, ", ", 2);
        if (!err)
            err = emit_scalar(b, labels[i].key);
        if (!err)
            err = emit_raw(b, ": ", 2);
        if (!err)
            err = emit_scalar(b, labels[i].value);
    }
    return err ? err : emit_raw(b, "}\n", 2);
}

int emit_workload(struct emit_buf *b, const struct moat_workload *w)
{
    size_t start = b->len;
    int err = emit_str(b, "---\nkind: Workload\n");
    if (!err)
        err = emit_field(b, "cluster", w->cluster_ref);
    if (!err)
        err = emit_field(b, "node", w->node);
    if (!err)
        err = emit_field(b, "name", w->name);
    if (!err)
        err = emit_field(b, "namespace", w->namespace);
    if (!err)
        err = emit_field(b, "image", w->image);
    if (!err)
        err = emit_labels(b, w->labels, w->nlabels);
    if (!err)
        err = emit_addrs(b, w->addrs, w->naddrs);
    if (!err)
        err = emit_field(b, "interface", w->interface);
    return err ? rewind_to(b, start, err) : 0;
}

int emit_node(struct emit_buf *b, const struct moat_node *n)
{
    size_t start = b->len;
    int err = emit_str(b, "---\nkind: Node\n");
    if (!err)
        err = emit_field(b, "name", n->name);
    if (!err)
        err = emit_field(b, "cluster", n->cluster_ref);
    if (!err)
        err = emit_addrs(b, n->addrs, n->naddrs);
    return err ? rewind_to(b, start, err) : 0;
}
