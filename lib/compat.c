/*
 * compat: parses the kernel-support table and checks a node's OS and kernel
 * against it (see compat.h for the rules and docs/compat.md for the format).
 *
 * Each row keeps one copy of its line, split in place at the tabs; the row's
 * strings point into that copy. Checking walks the rows once and allocates
 * nothing, so it cannot fail half-way.
 */
#include "compat.h"
#include "diag.h"
#include "mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TABLE_NONAME "<table>"

struct entry {
    int line;
    char *buf; /* the line copy the strings below point into */
    const char *os;
    const char *version;
    const char *kernel;
    const char *max;   /* NULL when the row has no 4th column */
    size_t prefix_len; /* length of the text before "**"; 0 for a literal kernel */
};

struct compat_table {
    char *name;
    struct entry *rows;
    size_t count;
    size_t cap;
    const char **os_names; /* distinct OS names in order of appearance (point into rows) */
    size_t os_count;
    size_t os_cap;
};

/* A piece of a string that need not be NUL-terminated. */
struct span {
    const char *s;
    size_t n;
};

/* ---- parsing ---------------------------------------------------------- */

struct parser {
    const char *name;
    struct moat_diags *d;
    int line;
    size_t errors;
    bool stop; /* too many rows: the rest of the text is not read */
};

static void report(struct parser *p, int line, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report(struct parser *p, int line, const char *ctx, const char *fmt, ...)
{
    p->errors++;
    if (!p->d)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diags_add(p->d, p->name, line, ctx, "%s", msg);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the UTF-8 sequence at s; 0 if invalid (overlong, surrogate, > U+10FFFF). */
static size_t utf8_len(const unsigned char *s)
{
    size_t n;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        size_t n = utf8_len(u);
        if (n == 0)
            return false;
        u += n;
    }
    return true;
}

/* Checks one column; `spaces_ok` allows single inner spaces (the OS name). */
static void check_field(struct parser *p, const char *ctx, const char *s, bool spaces_ok)
{
    size_t n = strlen(s);
    if (n == 0) {
        report(p, p->line, ctx, "empty");
        return;
    }
    if (!utf8_valid(s)) {
        report(p, p->line, ctx, "not valid UTF-8");
        return;
    }
    if (is_space(s[0]) || is_space(s[n - 1])) {
        report(p, p->line, ctx, "\"%s\": leading or trailing whitespace", s);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            report(p, p->line, ctx, "contains a control character (0x%02x)", c);
            return;
        }
        if (c == ' ' && !spaces_ok) {
            report(p, p->line, ctx, "\"%s\": contains a space", s);
            return;
        }
    }
}

/* True when s is one or more runs of digits separated by single dots. */
static bool is_dotted_number(const char *s)
{
    for (;;) {
        size_t n = strspn(s, "0123456789");
        if (n == 0)
            return false;
        s += n;
        if (*s == '\0')
            return true;
        if (*s++ != '.')
            return false;
    }
}

/* Validates the kernel column and sets e->prefix_len for a "**" pattern. */
static void check_kernel(struct parser *p, struct entry *e)
{
    const char *star = strchr(e->kernel, '*');
    if (!star)
        return;
    size_t n = strlen(e->kernel);
    size_t at = (size_t)(star - e->kernel);
    if (at + 2 != n || star[1] != '*') {
        report(p, p->line, "kernel", "\"%s\": '*' is only allowed as a trailing \"**\"", e->kernel);
        return;
    }
    if (at == 0) {
        report(p, p->line, "kernel", "\"**\" needs a prefix, as in \"3.10.0-**\"");
        return;
    }
    e->prefix_len = at;
}

static void check_max(struct parser *p, const struct entry *e)
{
    if (!e->max)
        return;
    if (e->prefix_len == 0) {
        report(p, p->line, "max", "only allowed with a \"**\" kernel pattern, not \"%s\"",
               e->kernel);
        return;
    }
    if (!is_dotted_number(e->max))
        report(p, p->line, "max", "\"%s\" is not dot-separated numbers such as 240.15.1", e->max);
}

/* Splits buf at tabs into at most 4 fields; returns the number of fields found. */
static size_t split_tabs(char *buf, char **fields)
{
    size_t n = 0;
    char *s = buf;
    for (;;) {
        char *tab = strchr(s, '\t');
        if (n < 4)
            fields[n] = s;
        n++;
        if (!tab)
            return n;
        *tab = '\0';
        s = tab + 1;
    }
}

/* Fills e from one table line (a copy the entry owns); reports problems. */
static void parse_fields(struct parser *p, struct entry *e)
{
    char *f[4] = {NULL, NULL, NULL, NULL};
    size_t n = split_tabs(e->buf, f);
    if (n < 3 || n > 4) {
        report(p, p->line, NULL,
               "expected 3 or 4 tab-separated columns (os, os_version, kernel[, max]), found %zu",
               n);
        return;
    }
    e->os = f[0];
    e->version = f[1];
    e->kernel = f[2];
    e->max = f[3];
    size_t before = p->errors;
    check_field(p, "os", e->os, true);
    check_field(p, "os_version", e->version, false);
    check_field(p, "kernel", e->kernel, false);
    if (e->max)
        check_field(p, "max", e->max, false);
    if (p->errors != before)
        return;
    check_kernel(p, e);
    if (p->errors == before)
        check_max(p, e);
}

static bool os_name_known(const struct compat_table *t, const char *os)
{
    for (size_t i = 0; i < t->os_count; i++)
        if (strcmp(t->os_names[i], os) == 0)
            return true;
    return false;
}

/* Appends a valid entry; takes ownership of e->buf (freed on failure). */
static int table_push(struct compat_table *t, struct entry *e)
{
    if (moat_grow(&t->rows, &t->cap, t->count + 1, sizeof(*t->rows)) < 0) {
        free(e->buf);
        return -ENOMEM;
    }
    t->rows[t->count++] = *e;
    if (os_name_known(t, e->os))
        return 0;
    if (moat_grow(&t->os_names, &t->os_cap, t->os_count + 1, sizeof(*t->os_names)) < 0)
        return -ENOMEM;
    t->os_names[t->os_count++] = e->os;
    return 0;
}

/* True for a line that holds no row: blank, or a '#' comment. */
static bool is_skipped_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_space(s[i]))
        i++;
    return i == n || s[i] == '#';
}

/* Handles one line (without its '\n'); returns 0 or -ENOMEM. */
static int parse_line(struct parser *p, struct compat_table *t, const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (is_skipped_line(s, n))
        return 0;
    if (t->count >= COMPAT_TABLE_MAX_ROWS) {
        report(p, p->line, NULL, "more than %d rows", COMPAT_TABLE_MAX_ROWS);
        p->stop = true;
        return 0;
    }
    struct entry e = {.line = p->line, .buf = moat_strndup(s, n)};
    if (!e.buf)
        return -ENOMEM;
    size_t before = p->errors;
    parse_fields(p, &e);
    if (p->errors != before) {
        free(e.buf);
        return 0;
    }
    return table_push(t, &e);
}

static int parse_text(struct parser *p, struct compat_table *t, const char *text)
{
    const char *s = text;
    for (p->line = 1; *s; p->line++) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        int err = parse_line(p, t, s, n);
        if (err < 0)
            return err;
        if (!nl || p->stop || p->errors >= MOAT_DIAGS_MAX)
            break;
        s = nl + 1;
    }
    if (t->count == 0 && p->errors == 0)
        report(p, 0, NULL, "no rows (expected lines of os<TAB>os_version<TAB>kernel[<TAB>max])");
    return 0;
}

static struct compat_table *table_new(const char *name)
{
    struct compat_table *t = moat_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->name = moat_strdup(name ? name : TABLE_NONAME);
    if (!t->name) {
        free(t);
        return NULL;
    }
    return t;
}

void compat_table_free(struct compat_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->count; i++)
        free(t->rows[i].buf);
    free(t->rows);
    free(t->os_names);
    free(t->name);
    free(t);
}

int compat_table_parse(struct compat_table **out, const char *text, const char *name,
                       struct moat_diags *d)
{
    *out = NULL;
    struct compat_table *t = table_new(name);
    if (!t)
        return -ENOMEM;
    bool oom_before = d && diags_oom(d);
    struct parser p = {.name = t->name, .d = d};
    int err = 0;
    if (!text)
        report(&p, 0, NULL, "no text");
    else if (strlen(text) > COMPAT_TABLE_MAX_BYTES)
        report(&p, 0, NULL, "larger than %d bytes", COMPAT_TABLE_MAX_BYTES);
    else
        err = parse_text(&p, t, text);
    if (!err && p.errors)
        err = (d && diags_oom(d) && !oom_before) ? -ENOMEM : -EINVAL;
    if (err) {
        compat_table_free(t);
        return err;
    }
    *out = t;
    return 0;
}

/* Reads at most COMPAT_TABLE_MAX_BYTES + 1 bytes of f into a new string. */
static int read_all(FILE *f, char **out, size_t *len)
{
    size_t cap = 64 * 1024, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return -ENOMEM;
    errno = 0;
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f)) {
            int err = errno ? -errno : -EIO;
            free(buf);
            return err;
        }
        if (n < cap || cap > COMPAT_TABLE_MAX_BYTES)
            break;
        char *nb = moat_reallocarray(buf, cap * 2 + 1, 1);
        if (!nb) {
            free(buf);
            return -ENOMEM;
        }
        buf = nb;
        cap *= 2;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* 1-based line number of offset `at` in buf. */
static int line_of(const char *buf, size_t at)
{
    int line = 1;
    for (size_t i = 0; i < at; i++)
        line += buf[i] == '\n';
    return line;
}

int compat_table_load(struct compat_table **out, const char *path, struct moat_diags *d)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno ? -errno : -EIO;
    char *buf = NULL;
    size_t len = 0;
    int err = read_all(f, &buf, &len);
    fclose(f);
    if (err < 0)
        return err;
    bool oom_before = d && diags_oom(d);
    struct parser p = {.name = path, .d = d};
    const char *nul = memchr(buf, '\0', len);
    if (len > COMPAT_TABLE_MAX_BYTES)
        report(&p, 0, NULL, "larger than %d bytes", COMPAT_TABLE_MAX_BYTES);
    else if (nul)
        report(&p, line_of(buf, (size_t)(nul - buf)), NULL, "contains a NUL byte");
    if (p.errors) {
        free(buf);
        return (d && diags_oom(d) && !oom_before) ? -ENOMEM : -EINVAL;
    }
    err = compat_table_parse(out, buf, path, d);
    free(buf);
    return err;
}

size_t compat_table_count(const struct compat_table *t)
{
    return t ? t->count : 0;
}

const char *compat_table_name(const struct compat_table *t)
{
    return t ? t->name : TABLE_NONAME;
}

const char *compat_reason_name(enum compat_reason reason)
{
    switch (reason) {
    case COMPAT_CERTIFIED:
        return "certified";
    case COMPAT_UNKNOWN_OS:
        return "unknown-os";
    case COMPAT_VERSION_NOT_LISTED:
        return "version-not-listed";
    case COMPAT_KERNEL_NOT_LISTED:
        return "kernel-not-listed";
    }
    return "unknown";
}

/* ---- kernel matching --------------------------------------------------- */

/* Length of the all-digit part at s (up to '.' or end), 0 when s starts the suffix. */
static size_t numeric_part(const char *s, const char *end)
{
    size_t n = 0;
    while (s + n < end && is_digit(s[n]))
        n++;
    if (n == 0 || (s + n < end && s[n] != '.'))
        return 0;
    return n;
}

/* Compares two digit strings as numbers of any length: <0, 0, >0. */
static int cmp_number(const char *a, size_t an, const char *b, size_t bn)
{
    while (an > 1 && *a == '0')
        a++, an--;
    while (bn > 1 && *b == '0')
        b++, bn--;
    if (an != bn)
        return an < bn ? -1 : 1;
    return memcmp(a, b, an);
}

/* Moves past a numeric part of length n; returns the next part's length (0 = none). */
static size_t next_part(const char **s, size_t n, const char *end)
{
    *s += n;
    if (*s >= end || **s != '.')
        return 0;
    (*s)++;
    return numeric_part(*s, end);
}

/*
 * True when the release numbers in rel (after the pattern prefix) are <= max:
 * parts compared one by one, missing parts = 0, the suffix ignored. A release
 * without any number is out.
 */
static bool within_max(struct span rel, const char *max)
{
    const char *r = rel.s, *rend = rel.s + rel.n;
    const char *m = max, *mend = max + strlen(max);
    size_t rn = numeric_part(r, rend), mn = numeric_part(m, mend);
    if (rn == 0)
        return false;
    while (rn || mn) {
        int c = cmp_number(rn ? r : "0", rn ? rn : 1, mn ? m : "0", mn ? mn : 1);
        if (c != 0)
            return c < 0;
        rn = rn ? next_part(&r, rn, rend) : 0;
        mn = mn ? next_part(&m, mn, mend) : 0;
    }
    return true;
}

/* True when e's kernel prefix starts the release k (pattern rows only). */
static bool has_prefix(const struct entry *e, struct span k)
{
    return e->prefix_len && k.n >= e->prefix_len && memcmp(k.s, e->kernel, e->prefix_len) == 0;
}

static bool kernel_matches(const struct entry *e, struct span k)
{
    if (e->prefix_len == 0)
        return strlen(e->kernel) == k.n && memcmp(e->kernel, k.s, k.n) == 0;
    if (!has_prefix(e, k))
        return false;
    if (!e->max)
        return true;
    struct span rest = {k.s + e->prefix_len, k.n - e->prefix_len};
    return within_max(rest, e->max);
}

/* ---- OS matching ------------------------------------------------------- */

static struct span trim(const char *s)
{
    size_t n = strlen(s);
    while (n && is_space(*s))
        s++, n--;
    while (n && is_space(s[n - 1]))
        n--;
    return (struct span){s, n};
}

/* Next whitespace-separated word of *rest, or a zero span at the end. */
static struct span word_next(struct span *rest)
{
    while (rest->n && is_space(*rest->s))
        rest->s++, rest->n--;
    size_t n = 0;
    while (n < rest->n && !is_space(rest->s[n]))
        n++;
    struct span w = {rest->s, n};
    rest->s += n;
    rest->n -= n;
    return w;
}

/* Next word of a name, skipping parenthesised words such as "(Aliyun Linux)". */
static struct span name_word_next(struct span *rest)
{
    struct span w = word_next(rest);
    while (w.n && w.s[0] == '(') {
        while (w.n && w.s[w.n - 1] != ')')
            w = word_next(rest);
        w = word_next(rest);
    }
    return w;
}

static bool word_is(struct span w, const char *s)
{
    return strlen(s) == w.n && strncasecmp(w.s, s, w.n) == 0;
}

/* True when the given name (words) is the table name, allowing an extra trailing "Linux". */
static bool name_matches(struct span given, const char *table_name)
{
    struct span t = {table_name, strlen(table_name)};
    struct span gw = name_word_next(&given), tw = name_word_next(&t), last = {NULL, 0};
    while (tw.n) {
        if (gw.n != tw.n || strncasecmp(gw.s, tw.s, tw.n) != 0)
            return false;
        last = tw;
        gw = name_word_next(&given);
        tw = name_word_next(&t);
    }
    if (gw.n && word_is(gw, "Linux") && !word_is(last, "Linux"))
        gw = name_word_next(&given);
    return gw.n == 0 && last.n != 0;
}

/* "7.9-2009" is matched by "7.9-2009" and by "7.9" (case-insensitive). */
static bool version_matches(struct span given, const char *table_version)
{
    size_t tn = strlen(table_version);
    const char *dash = strchr(table_version, '-');
    if (dash && given.n == (size_t)(dash - table_version))
        tn = given.n;
    return given.n == tn && strncasecmp(given.s, table_version, tn) == 0;
}

/* Splits "NAME VERSION" at the last word; returns false when there is one word only. */
static bool split_os(struct span os, struct span *name, struct span *version)
{
    size_t n = os.n;
    while (n && !is_space(os.s[n - 1]))
        n--;
    if (n == 0)
        return false;
    *version = (struct span){os.s + n, os.n - n};
    while (n && is_space(os.s[n - 1]))
        n--;
    *name = (struct span){os.s, n};
    return true;
}

/* ---- checking ---------------------------------------------------------- */

static void view_of(const struct entry *e, struct compat_row *v)
{
    *v = (struct compat_row){e->line, e->os, e->version, e->kernel, e->max};
}

static size_t common_prefix(const char *a, size_t an, const char *b, size_t bn, bool fold)
{
    size_t i = 0;
    while (i < an && i < bn && (fold ? strncasecmp(a + i, b + i, 1) == 0 : a[i] == b[i]))
        i++;
    return i;
}

/* How close row e's kernel is to k: the shared prefix, patterns whose prefix is k's first. */
static size_t kernel_score(const struct entry *e, struct span k)
{
    size_t n = e->prefix_len ? e->prefix_len : strlen(e->kernel);
    size_t s = common_prefix(e->kernel, n, k.s, k.n, false);
    return has_prefix(e, k) ? s + 1024 : s;
}

struct search {
    const struct entry *os_row;   /* first row with the OS name */
    const struct entry *ver_near; /* OS matches, version does not: the closest version */
    size_t ver_score;
    const struct entry *ver_row;     /* first row with the OS and version */
    const struct entry *kernel_near; /* OS and version match: the closest kernel */
    size_t kernel_score;
    const struct entry *match;
};

static void search_row(struct search *s, const struct entry *e, struct span name,
                       struct span version, struct span k)
{
    if (!name_matches(name, e->os))
        return;
    if (!s->os_row)
        s->os_row = e;
    if (!version_matches(version, e->version)) {
        /* the closest version; among its rows, one that lists the kernel */
        size_t sc = 2 * common_prefix(e->version, strlen(e->version), version.s, version.n, true) +
                    kernel_matches(e, k);
        if (!s->ver_near || sc > s->ver_score)
            s->ver_near = e, s->ver_score = sc;
        return;
    }
    if (!s->ver_row)
        s->ver_row = e;
    if (kernel_matches(e, k)) {
        s->match = e;
        return;
    }
    size_t sc = kernel_score(e, k);
    if (!s->kernel_near || sc > s->kernel_score)
        s->kernel_near = e, s->kernel_score = sc;
}

/* appends to r->why, truncating at the end of the buffer */
static void why_add(struct compat_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void why_add(struct compat_result *r, const char *fmt, ...)
{
    size_t used = strlen(r->why);
    if (used + 1 >= sizeof(r->why))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why + used, sizeof(r->why) - used, fmt, ap);
    va_end(ap);
}

static void why_unknown_os(const struct compat_table *t, struct compat_result *r, struct span os)
{
    why_add(r, "OS \"%.*s\" is not in the table (it lists", (int)os.n, os.s);
    for (size_t i = 0; i < t->os_count; i++)
        why_add(r, "%s %s", i ? "," : "", t->os_names[i]);
    why_add(r, ")");
}

/* near: the closest row of the node's OS version (there is always one). */
static void why_kernel(struct compat_result *r, const struct entry *near, struct span k)
{
    if (near->max && has_prefix(near, k)) {
        struct span rest = {k.s + near->prefix_len, k.n - near->prefix_len};
        why_add(r, "kernel \"%.*s\" %s %s (up to %.*s%s) for %s %s", (int)k.n, k.s,
                numeric_part(rest.s, rest.s + rest.n) ? "is past the bound of"
                                                      : "has no build number for",
                near->kernel, (int)near->prefix_len, near->kernel, near->max, near->os,
                near->version);
        return;
    }
    why_add(r, "kernel \"%.*s\" is not listed for %s %s", (int)k.n, k.s, near->os, near->version);
}

/*
 * Fills the not-certified parts of *r from what the search found. `os` is the
 * whole OS string, `version` its version word (empty when there is none).
 */
static void explain(const struct compat_table *t, const struct search *s, struct compat_result *r,
                    struct span os, struct span version, struct span k)
{
    if (!s->os_row) {
        r->reason = COMPAT_UNKNOWN_OS;
        why_unknown_os(t, r, os);
    } else if (!s->ver_row) {
        r->reason = COMPAT_VERSION_NOT_LISTED;
        view_of(s->ver_near, &r->row);
        why_add(r, "%s version \"%.*s\" is not in the table", s->os_row->os, (int)version.n,
                version.s);
    } else {
        r->reason = COMPAT_KERNEL_NOT_LISTED;
        view_of(s->kernel_near, &r->row);
        why_kernel(r, s->kernel_near, k);
    }
    const struct entry *other = NULL;
    if (s->ver_near && kernel_matches(s->ver_near, k))
        other = s->ver_near;
    for (size_t i = 0; i < t->count && !other; i++)
        if (kernel_matches(&t->rows[i], k))
            other = &t->rows[i];
    if (other) {
        view_of(other, &r->elsewhere);
        why_add(r, "; the kernel is listed for %s %s", other->os, other->version);
    }
}

/* The whole OS string is a known name with no version ("CentOS"): not listed. */
static bool explain_no_version(const struct compat_table *t, struct compat_result *r,
                               struct span os)
{
    for (size_t i = 0; i < t->count; i++) {
        if (name_matches(os, t->rows[i].os)) {
            r->reason = COMPAT_VERSION_NOT_LISTED;
            view_of(&t->rows[i], &r->row);
            why_add(r, "no version given for %s (expected \"%s %s\")", t->rows[i].os, t->rows[i].os,
                    t->rows[i].version);
            return true;
        }
    }
    return false;
}

int compat_check(const struct compat_table *t, const char *os, const char *kernel,
                 struct compat_result *r)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    r->reason = COMPAT_UNKNOWN_OS;
    if (!t || !os || !kernel)
        return -EINVAL;
    struct span o = trim(os), k = trim(kernel), name = {NULL, 0}, version = {NULL, 0};
    if (o.n == 0 || k.n == 0)
        return -EINVAL;
    if (explain_no_version(t, r, o))
        return 0;
    struct search s = {0};
    if (split_os(o, &name, &version)) {
        for (size_t i = 0; i < t->count && !s.match; i++)
            search_row(&s, &t->rows[i], name, version, k);
    }
    if (s.match) {
        r->certified = true;
        r->reason = COMPAT_CERTIFIED;
        view_of(s.match, &r->row);
        return 0;
    }
    explain(t, &s, r, o, version, k);
    return 0;
}

/* ---- datapath backends by kernel version ---------------------------------- */

struct kfeature {
    int major, minor;
    const char *what;
};

/* What the eBPF datapath needs (bpf/, agent/dp_ebpf.c), with the upstream version of each. */
static const struct kfeature ebpf_needs[] = {
    {4, 5, "tc clsact with BPF programs"},
    {4, 10, "LRU hash maps"},
    {4, 11, "LPM trie maps"},
    {4, 12, "array-of-maps"},
    {5, 4, "kernel BTF (/sys/kernel/btf/vmlinux)"},
    {5, 8, "BPF ring buffers"},
    {5, 11, "bpf_ktime_get_coarse_ns"},
    {5, 17, "bpf_loop"},
};

/* What the iptables backend needs (agent/dp_iptables.c, docs/datapath-iptables.md). */
static const struct kfeature ipt_needs[] = {
    {2, 6, "bridge netfilter, physdev, pkttype"},
    {2, 6, "raw tables (IPv4 2.6.10, IPv6 2.6.11)"},
    {2, 6, "NFLOG and conntrack netlink (2.6.14)"},
    {2, 6, "the conntrack match (2.6.20)"},
    {2, 6, "u32 (2.6.23), ebtables ip6 and nflog (2.6.26, 2.6.27)"},
    {2, 6, "ipset: ip_set and xt_set (2.6.39; RHEL/CentOS 6 backport it to 2.6.32)"},
};

const char *compat_verdict_name(enum compat_verdict v)
{
    return v == COMPAT_YES ? "yes" : v == COMPAT_UNKNOWN ? "unknown" : "no";
}

static void add_missing(char *buf, size_t n, const char *what, int major, int minor)
{
    size_t len = strlen(buf);
    if (len < n)
        snprintf(buf + len, n - len, "%s%s (%d.%d)", len ? ", " : "", what, major, minor);
}

int compat_backends(const char *kernel, struct compat_backends *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!kernel)
        return -EINVAL;
    struct span k = trim(kernel);
    int major = 0, minor = 0, patch = 0, used = 0;
    char text[128];
    snprintf(text, sizeof(text), "%.*s", (int)(k.n < sizeof(text) - 1 ? k.n : sizeof(text) - 1),
             k.s ? k.s : "");
    if (sscanf(text, "%d.%d%n", &major, &minor, &used) < 2 || major < 0 || minor < 0) {
        snprintf(out->ebpf_missing, sizeof(out->ebpf_missing), "a kernel version (\"%s\")", text);
        snprintf(out->iptables_missing, sizeof(out->iptables_missing), "a kernel version");
        return 0;
    }
    if (text[used] == '.')
        sscanf(text + used + 1, "%d", &patch);
    out->parsed = true;
    int v = major * 1000 + minor;
    for (size_t i = 0; i < sizeof(ebpf_needs) / sizeof(ebpf_needs[0]); i++)
        if (v < ebpf_needs[i].major * 1000 + ebpf_needs[i].minor)
            add_missing(out->ebpf_missing, sizeof(out->ebpf_missing), ebpf_needs[i].what,
                        ebpf_needs[i].major, ebpf_needs[i].minor);
    out->ebpf = out->ebpf_missing[0] ? COMPAT_NO : COMPAT_YES;
    bool el = strstr(text, ".el") != NULL;
    if (out->ebpf == COMPAT_NO && el && v >= 4018) {
        out->ebpf = COMPAT_UNKNOWN; /* RHEL 8 and later: BPF backports the version hides */
        snprintf(out->note, sizeof(out->note),
                 "a RHEL kernel carries BPF backports its version does not show: the node's "
                 "probe (moatd --check) decides between ebpf and iptables");
    }
    if (v < 2006 || (v == 2006 && patch < 32)) {
        snprintf(out->iptables_missing, sizeof(out->iptables_missing),
                 "a kernel of 2.6.32 or later (%s is older)", text);
        out->iptables = COMPAT_NO;
    } else if (v == 2006 && patch < 39 && !el) {
        snprintf(out->iptables_missing, sizeof(out->iptables_missing), "%s", ipt_needs[5].what);
        out->iptables = COMPAT_NO;
    } else {
        out->iptables = COMPAT_YES;
        if (v == 2006 && patch < 39)
            snprintf(out->note, sizeof(out->note),
                     "ipset comes from the RHEL/CentOS 6 backport of ip_set (ipset 6.11)");
    }
    out->would_run = out->ebpf == COMPAT_YES       ? "ebpf"
                     : out->iptables == COMPAT_YES ? "iptables"
                                                   : NULL;
    return 0;
}
