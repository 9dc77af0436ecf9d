/* polstate: a full policy answer as text with its records' spans (see polstate.h). */
#include "polstate.h"
#include "mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD ((size_t)-1)

static int bad(char *why, size_t wn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, wn, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* ---- scanning a text we wrote (or read back): spans, not values ---------- */

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[i] is '"': the index after the closing quote. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return BAD;
}

static size_t skip_value(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return BAD;
    if (s[i] == '"')
        return skip_string(s, n, i);
    if (s[i] != '{' && s[i] != '[') {
        size_t j = i;
        while (j < n && !strchr(",}] \t\r\n", s[j]))
            j++;
        return j > i ? j : BAD;
    }
    size_t depth = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, n, i);
            if (i == BAD)
                return BAD;
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return i + 1;
        i++;
    }
    return BAD;
}

static bool key_is(const char *s, size_t k0, size_t k1, const char *key)
{
    size_t len = strlen(key);
    return k1 - k0 == len + 2 && memcmp(s + k0 + 1, key, len) == 0;
}

static bool parse_int(const char *s, size_t i, size_t end, int64_t *out)
{
    char *e;
    errno = 0;
    long long v = strtoll(s + i, &e, 10);
    if (errno || e != s + end)
        return false;
    *out = v;
    return true;
}

/*
 * One member `"key":value` of the object at s[i] (after '{' or ','): the key's
 * span [*k0, *k1) with its quotes, the value's [*v0, *v1). The index after
 * the value, or BAD.
 */
static size_t member(const char *s, size_t n, size_t i, size_t *k0, size_t *k1, size_t *v0,
                     size_t *v1)
{
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != '"')
        return BAD;
    *k0 = i;
    i = skip_string(s, n, i);
    if (i == BAD)
        return BAD;
    *k1 = i;
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != ':')
        return BAD;
    *v0 = i = skip_ws(s, n, i + 1);
    *v1 = i = skip_value(s, n, i);
    return i;
}

/* The integer "id" of the record object at s[i..end). */
static bool record_id(const char *s, size_t i, size_t end, int64_t *id)
{
    if (s[i] != '{')
        return false;
    i = skip_ws(s, end, i + 1);
    if (i < end && s[i] == '}')
        return false;
    for (;;) {
        size_t k0, k1, v0, v1;
        i = member(s, end, i, &k0, &k1, &v0, &v1);
        if (i == BAD)
            return false;
        if (key_is(s, k0, k1, "id"))
            return parse_int(s, v0, v1, id);
        i = skip_ws(s, end, i);
        if (i >= end || s[i] != ',')
            return false;
        i++;
    }
}

static int kind_of(const char *s, size_t k0, size_t k1)
{
    for (int k = 0; k < DELTA_KINDS; k++)
        if (key_is(s, k0, k1, delta_kind_key[k]))
            return k;
    return -1;
}

static int cmp_rec(const void *a, const void *b)
{
    const struct delta_rec *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int index_list(struct polstate *st, int k, size_t i, size_t end, char *why, size_t wn)
{
    const char *s = st->text;
    size_t cap = 0;
    i = skip_ws(s, end, i + 1);
    if (i < end && s[i] == ']')
        return 0;
    for (;;) {
        size_t e = skip_value(s, end, i);
        int64_t id;
        if (e == BAD || !record_id(s, i, e, &id))
            return bad(why, wn, "%s[%zu]: not a record with an integer id", delta_kind_key[k],
                       st->n[k]);
        if (moat_grow(&st->recs[k], &cap, st->n[k] + 1, sizeof(*st->recs[k])) < 0)
            return -ENOMEM;
        st->recs[k][st->n[k]++] = (struct delta_rec){.id = id, .off = i, .len = e - i};
        i = skip_ws(s, end, e);
        if (i < end && s[i] == ']')
            break;
        if (i >= end || s[i] != ',')
            return bad(why, wn, "%s: not a list", delta_kind_key[k]);
        i = skip_ws(s, end, i + 1);
    }
    if (st->n[k] > 1)
        qsort(st->recs[k], st->n[k], sizeof(*st->recs[k]), cmp_rec);
    for (size_t r = 1; r < st->n[k]; r++)
        if (st->recs[k][r].id == st->recs[k][r - 1].id)
            return bad(why, wn, "%s: id %lld twice", delta_kind_key[k],
                       (long long)st->recs[k][r].id);
    return 0;
}

static int index_text(struct polstate *st, char *why, size_t wn)
{
    const char *s = st->text;
    size_t n = st->len, i = skip_ws(s, n, 0);
    bool have_rev = false;
    if (i >= n || s[i] != '{')
        return bad(why, wn, "not a JSON object");
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}')
        return bad(why, wn, "revision: missing");
    for (;;) {
        size_t k0, k1, v0, v1;
        i = member(s, n, i, &k0, &k1, &v0, &v1);
        if (i == BAD)
            return bad(why, wn, "not a JSON object");
        int k = kind_of(s, k0, k1);
        if (key_is(s, k0, k1, "revision"))
            have_rev = parse_int(s, v0, v1, &st->revision);
        else if (k >= 0 && s[v0] == '[') {
            int err = index_list(st, k, v0, v1, why, wn);
            if (err)
                return err;
        }
        i = skip_ws(s, n, i);
        if (i < n && s[i] == '}')
            break;
        if (i >= n || s[i] != ',')
            return bad(why, wn, "not a JSON object");
        i++;
    }
    return have_rev ? 0 : bad(why, wn, "revision: not an integer");
}

int polstate_index(char *text, size_t len, struct polstate **out, char *why, size_t wn)
{
    *out = NULL;
    struct polstate *st = moat_calloc(1, sizeof(*st));
    if (!st) {
        free(text);
        return -ENOMEM;
    }
    st->text = text;
    st->len = len;
    int err = index_text(st, why, wn);
    if (err) {
        polstate_free(st);
        return err;
    }
    *out = st;
    return 0;
}

int polstate_from_json(const json_t *answer, struct polstate **out, char *why, size_t wn)
{
    *out = NULL;
    char *text = json_dumps(answer, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    return polstate_index(text, strlen(text), out, why, wn);
}

void polstate_free(struct polstate *st)
{
    if (!st)
        return;
    for (int k = 0; k < DELTA_KINDS; k++)
        free(st->recs[k]);
    free(st->text);
    free(st);
}

/* ---- applying a delta ---------------------------------------------------- */

/* A set record as text. */
struct setrec {
    int64_t id;
    char *text;
};

static int cmp_setrec(const void *a, const void *b)
{
    const struct setrec *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static const struct delta_rec *find_rec(const struct polstate *st, int k, int64_t id)
{
    size_t lo = 0, hi = st->n[k];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->recs[k][mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < st->n[k] && st->recs[k][lo].id == id ? &st->recs[k][lo] : NULL;
}

static bool set_has(const struct setrec *v, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].id == id;
}

/* The changes of one list: set records (sorted, as text) and a mark per removed base record. */
struct kind_chg {
    struct setrec *set;
    size_t nset;
    bool *gone; /* per base record; NULL when nothing is removed */
};

static void kind_chg_free(struct kind_chg *c)
{
    for (size_t i = 0; i < c->nset; i++)
        free(c->set[i].text);
    free(c->set);
    free(c->gone);
}

static int read_kind(const struct polstate *base, int k, const json_t *chg, struct kind_chg *out,
                     char *why, size_t wn)
{
    const char *key = delta_kind_key[k];
    const json_t *set = json_object_get(chg, "set"), *removed = json_object_get(chg, "removed");
    if (!json_is_object(chg) || (set && !json_is_array(set)) ||
        (removed && !json_is_array(removed)))
        return bad(why, wn, "%s: must be {\"set\": [...], \"removed\": [...]}", key);
    size_t n = json_array_size(set);
    out->set = moat_calloc(n ? n : 1, sizeof(*out->set));
    if (!out->set)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(set, i), *id = json_object_get(r, "id");
        if (!json_is_object(r) || !json_is_integer(id))
            return bad(why, wn, "%s.set[%zu]: not a record with an integer id", key, i);
        out->set[i].id = json_integer_value(id);
        out->set[i].text = json_dumps(r, JSON_COMPACT);
        out->nset++;
        if (!out->set[i].text)
            return -ENOMEM;
    }
    if (n > 1)
        qsort(out->set, n, sizeof(*out->set), cmp_setrec);
    for (size_t i = 1; i < n; i++)
        if (out->set[i].id == out->set[i - 1].id)
            return bad(why, wn, "%s.set: id %lld twice", key, (long long)out->set[i].id);
    if (!json_array_size(removed))
        return 0;
    out->gone = moat_calloc(base->n[k] ? base->n[k] : 1, sizeof(bool));
    if (!out->gone)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(removed); i++) {
        const json_t *id = json_array_get(removed, i);
        const struct delta_rec *hit =
            json_is_integer(id) ? find_rec(base, k, json_integer_value(id)) : NULL;
        if (!hit || out->gone[hit - base->recs[k]] ||
            set_has(out->set, out->nset, json_integer_value(id)))
            return bad(why, wn, "%s.removed[%zu]: not a record held (or also set)", key, i);
        out->gone[hit - base->recs[k]] = true;
    }
    return 0;
}

struct writer {
    struct delta_buf b;
    struct polstate *st;
    size_t cap[DELTA_KINDS];
};

static int put_rec(struct writer *w, int k, int64_t id, const char *text, size_t len, bool *first)
{
    int err = *first ? 0 : delta_buf_add(&w->b, ",", 1);
    *first = false;
    if (!err && moat_grow(&w->st->recs[k], &w->cap[k], w->st->n[k] + 1, sizeof(**w->st->recs)) < 0)
        err = -ENOMEM;
    if (!err)
        w->st->recs[k][w->st->n[k]++] = (struct delta_rec){.id = id, .off = w->b.len, .len = len};
    return err ? err : delta_buf_add(&w->b, text, len);
}

/* Writes list k: base's records but the removed ones, merged by id with the set ones. */
static int write_kind(struct writer *w, const struct polstate *base, int k,
                      const struct kind_chg *c)
{
    int err = delta_buf_add(&w->b, "[", 1);
    bool first = true;
    const struct delta_rec *b = base->recs[k];
    for (size_t i = 0, j = 0; !err && (i < base->n[k] || j < c->nset);) {
        if (j >= c->nset || (i < base->n[k] && b[i].id < c->set[j].id)) {
            if (!c->gone || !c->gone[i])
                err = put_rec(w, k, b[i].id, base->text + b[i].off, b[i].len, &first);
            i++;
        } else {
            if (i < base->n[k] && b[i].id == c->set[j].id)
                i++;
            err = put_rec(w, k, c->set[j].id, c->set[j].text, strlen(c->set[j].text), &first);
            j++;
        }
    }
    return err ? err : delta_buf_add(&w->b, "]", 1);
}

static int put_member(struct writer *w, const char *key, const json_t *v)
{
    json_t *k = json_string(key);
    char *kt = k ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
    char *vt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(k);
    int err = kt && vt ? 0 : -ENOMEM;
    if (!err)
        err = delta_buf_add(&w->b, ",", 1);
    if (!err)
        err = delta_buf_add(&w->b, kt, strlen(kt));
    if (!err)
        err = delta_buf_add(&w->b, ":", 1);
    if (!err)
        err = delta_buf_add(&w->b, vt, strlen(vt));
    free(kt);
    free(vt);
    return err;
}

static int write_answer(struct writer *w, const struct polstate *base, const json_t *d,
                        const struct kind_chg *chg)
{
    char head[64];
    int len = snprintf(head, sizeof(head), "{\"revision\":%lld", (long long)w->st->revision);
    int err = delta_buf_add(&w->b, head, (size_t)len);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)d, key, v)
    {
        bool list = false;
        for (int k = 0; k < DELTA_KINDS; k++)
            list = list || strcmp(key, delta_kind_key[k]) == 0;
        if (!err && !list && strcmp(key, "revision") != 0 && strcmp(key, "since") != 0 &&
            strcmp(key, "delta") != 0)
            err = put_member(w, key, v);
    }
    for (int k = 0; k < DELTA_KINDS && !err; k++) {
        char lk[32];
        len = snprintf(lk, sizeof(lk), ",\"%s\":", delta_kind_key[k]);
        err = delta_buf_add(&w->b, lk, (size_t)len);
        if (!err)
            err = write_kind(w, base, k, &chg[k]);
    }
    if (!err)
        err = delta_buf_add(&w->b, "}", 1);
    return err;
}

int polstate_apply(const struct polstate *base, const json_t *d, struct polstate **out, char *why,
                   size_t wn)
{
    *out = NULL;
    const json_t *since = json_object_get(d, "since"), *rev = json_object_get(d, "revision");
    if (!json_is_object(d) || !json_is_true(json_object_get(d, "delta")))
        return bad(why, wn, "not a delta answer");
    if (!json_is_integer(since) || !json_is_integer(rev) ||
        json_integer_value(rev) <= json_integer_value(since))
        return bad(why, wn, "since/revision: must be integers, since < revision");
    if (json_integer_value(since) != base->revision)
        return bad(why, wn, "the delta is since revision %lld, this agent has %lld",
                   (long long)json_integer_value(since), (long long)base->revision);
    struct kind_chg chg[DELTA_KINDS];
    memset(chg, 0, sizeof(chg));
    int err = 0;
    for (int k = 0; k < DELTA_KINDS && !err; k++) {
        const json_t *c = json_object_get(d, delta_kind_key[k]);
        err = c ? read_kind(base, k, c, &chg[k], why, wn) : 0;
    }
    struct writer w = {0};
    w.st = err ? NULL : moat_calloc(1, sizeof(*w.st));
    if (!err && !w.st)
        err = -ENOMEM;
    if (!err) { /* room for it all at once: no copy of 20 MB each time the text grows */
        size_t bytes = base->len + 4096;
        for (int k = 0; k < DELTA_KINDS; k++) {
            for (size_t i = 0; i < chg[k].nset; i++)
                bytes += strlen(chg[k].set[i].text) + 1;
            w.cap[k] = base->n[k] + chg[k].nset;
            w.st->recs[k] = moat_calloc(w.cap[k] ? w.cap[k] : 1, sizeof(*w.st->recs[k]));
            if (!w.st->recs[k])
                err = -ENOMEM;
        }
        w.b.p = err ? NULL : malloc(bytes);
        w.b.cap = bytes;
        if (!w.b.p)
            err = -ENOMEM;
    }
    if (!err) {
        w.st->revision = json_integer_value(rev);
        err = write_answer(&w, base, d, chg);
    }
    for (int k = 0; k < DELTA_KINDS; k++)
        kind_chg_free(&chg[k]);
    if (!err)
        err = delta_buf_add(&w.b, "", 1); /* the NUL */
    if (err) {
        free(w.b.p);
        polstate_free(w.st);
        return err;
    }
    w.st->text = w.b.p;
    w.st->len = w.b.len - 1;
    *out = w.st;
    return 0;
}

static bool list_unchanged(const json_t *c)
{
    return !c || (json_array_size(json_object_get(c, "set")) == 0 &&
                  json_array_size(json_object_get(c, "removed")) == 0);
}

bool polstate_workloads_only(const json_t *d)
{
    return list_unchanged(json_object_get(d, "objects")) &&
           list_unchanged(json_object_get(d, "rules"));
}

bool polstate_no_workload_change(const json_t *d)
{
    return list_unchanged(json_object_get(d, "workloads"));
}
