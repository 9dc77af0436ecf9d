/* delta: policy answers by revision (see delta.h). */
#include "delta.h"
#include "mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const delta_kind_key[DELTA_KINDS] = {"objects", "rules", "workloads"};

static int kind_of(const char *key)
{
    for (int k = 0; k < DELTA_KINDS; k++)
        if (strcmp(key, delta_kind_key[k]) == 0)
            return k;
    return -1;
}

int delta_buf_add(struct delta_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_str(struct delta_buf *b, const char *s)
{
    return delta_buf_add(b, s, strlen(s));
}

static int buf_fmt(struct delta_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int buf_fmt(struct delta_buf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= sizeof(tmp) ? -EINVAL : delta_buf_add(b, tmp, (size_t)n);
}

int delta_buf_json(struct delta_buf *b, const json_t *j)
{
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t room = b->cap > b->len ? b->cap - b->len - 1 : 0;
    size_t need = json_dumpb(j, room ? b->p + b->len : NULL, room, flags);
    if (need == 0)
        return -ENOMEM;
    if (need > room) {
        if (delta_buf_add(b, "", 0) < 0) /* makes sure p exists */
            return -ENOMEM;
        size_t keep = b->len;
        char *tmp = malloc(need);
        if (!tmp)
            return -ENOMEM;
        json_dumpb(j, tmp, need, flags);
        int err = delta_buf_add(b, tmp, need);
        free(tmp);
        if (err)
            b->len = keep;
        return err;
    }
    b->len += need;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_key(struct delta_buf *b, const char *key)
{
    json_t *s = json_string(key);
    int err = s ? delta_buf_json(b, s) : -ENOMEM;
    json_decref(s);
    return err ? err : delta_buf_add(b, ":", 1);
}

/* ---- snapshots ----------------------------------------------------------- */

static int snap_records(const json_t *list, struct delta_buf *out, struct delta_snap *snap, int k)
{
    size_t n = json_array_size(list);
    if (!json_is_array(list))
        return -EINVAL;
    snap->recs[k] = moat_calloc(n ? n : 1, sizeof(struct delta_rec));
    if (!snap->recs[k])
        return -ENOMEM;
    int err = delta_buf_add(out, "[", 1);
    for (size_t i = 0; !err && i < n; i++) {
        const json_t *r = json_array_get(list, i);
        const json_t *id = json_object_get(r, "id");
        if (!json_is_integer(id) || (i > 0 && json_integer_value(id) <= snap->recs[k][i - 1].id))
            return -EINVAL;
        if (i > 0)
            err = delta_buf_add(out, ",", 1);
        size_t off = out->len;
        if (!err)
            err = delta_buf_json(out, r);
        snap->recs[k][i] = (struct delta_rec){json_integer_value(id), off, out->len - off};
        snap->n[k] = i + 1;
    }
    return err ? err : delta_buf_add(out, "]", 1);
}

int delta_snap_build(const json_t *answer, struct delta_buf *out, struct delta_snap *snap)
{
    *snap = (struct delta_snap){0};
    struct delta_buf extras = {0};
    const char *key;
    const json_t *v;
    int err = json_is_object(answer) ? delta_buf_add(out, "{", 1) : -EINVAL;
    bool first = true;
    json_object_foreach((json_t *)answer, key, v)
    {
        if (err)
            break;
        int k = kind_of(key);
        if (!first)
            err = delta_buf_add(out, ",", 1);
        first = false;
        if (!err)
            err = buf_key(out, key);
        if (!err && k >= 0) {
            err = snap_records(v, out, snap, k);
            continue;
        }
        size_t off = out->len;
        if (!err)
            err = delta_buf_json(out, v);
        if (!err && strcmp(key, "revision") == 0)
            snap->revision = json_integer_value(v);
        else if (!err) {
            if (extras.len)
                err = delta_buf_add(&extras, ",", 1);
            if (!err)
                err = buf_key(&extras, key);
            if (!err)
                err = delta_buf_add(&extras, out->p + off, out->len - off);
        }
    }
    if (!err)
        err = delta_buf_add(out, "}", 1);
    if (!err && !extras.p)
        err = delta_buf_add(&extras, "", 0);
    snap->extras = extras.p;
    if (err)
        delta_snap_free(snap);
    return err;
}

void delta_snap_free(struct delta_snap *snap)
{
    for (int k = 0; k < DELTA_KINDS; k++)
        free(snap->recs[k]);
    free(snap->extras);
    *snap = (struct delta_snap){0};
}

/* ---- the log ------------------------------------------------------------- */

static void step_free(struct delta_step *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->ch[i].text);
    free(s->ch);
    *s = (struct delta_step){0};
}

void delta_log_clear(struct delta_log *log)
{
    for (size_t i = 0; i < log->n; i++)
        step_free(&log->steps[i]);
    free(log->steps);
    log->steps = NULL;
    log->n = log->cap = log->bytes = 0;
}

int64_t delta_log_oldest(const struct delta_log *log)
{
    return log->n ? log->steps[0].from : 0;
}

static int step_change(struct delta_step *s, size_t *cap, int k, enum delta_op op, int64_t id,
                       const char *text, size_t len)
{
    if (moat_grow(&s->ch, cap, s->n + 1, sizeof(*s->ch)) < 0)
        return -ENOMEM;
    char *copy = text ? moat_strndup(text, len) : NULL;
    if (text && !copy)
        return -ENOMEM;
    s->ch[s->n++] = (struct delta_change){id, (unsigned char)k, (unsigned char)op, copy, len};
    s->bytes += sizeof(struct delta_change) + len;
    return 0;
}

/* The changes of one kind between two id-ordered record lists, compared byte for byte. */
static int diff_kind(struct delta_step *s, size_t *cap, int k, const struct delta_snap *a,
                     const struct delta_snap *b)
{
    size_t i = 0, j = 0;
    int err = 0;
    while (!err && (i < a->n[k] || j < b->n[k])) {
        const struct delta_rec *ra = i < a->n[k] ? &a->recs[k][i] : NULL;
        const struct delta_rec *rb = j < b->n[k] ? &b->recs[k][j] : NULL;
        if (rb && (!ra || rb->id < ra->id)) {
            err = step_change(s, cap, k, DELTA_ADD, rb->id, b->text + rb->off, rb->len);
            j++;
        } else if (ra && (!rb || ra->id < rb->id)) {
            err = step_change(s, cap, k, DELTA_REMOVE, ra->id, NULL, 0);
            i++;
        } else if (ra && rb) {
            if (ra->len != rb->len || memcmp(a->text + ra->off, b->text + rb->off, ra->len) != 0)
                err = step_change(s, cap, k, DELTA_CHANGE, rb->id, b->text + rb->off, rb->len);
            i++;
            j++;
        }
    }
    return err;
}

static void drop_oldest(struct delta_log *log)
{
    log->bytes -= log->steps[0].bytes;
    step_free(&log->steps[0]);
    memmove(log->steps, log->steps + 1, (log->n - 1) * sizeof(*log->steps));
    log->n--;
}

int delta_log_add(struct delta_log *log, const struct delta_snap *old, const struct delta_snap *new)
{
    if (log->n && log->steps[log->n - 1].to != old->revision)
        delta_log_clear(log); /* not the next step: what came before cannot be composed */
    struct delta_step s = {.from = old->revision, .to = new->revision};
    size_t cap = 0;
    int err = 0;
    for (int k = 0; !err && k < DELTA_KINDS; k++)
        err = diff_kind(&s, &cap, k, old, new);
    if (!err && moat_grow(&log->steps, &log->cap, log->n + 1, sizeof(*log->steps)) < 0)
        err = -ENOMEM;
    if (err) {
        step_free(&s);
        delta_log_clear(log);
        return err;
    }
    log->steps[log->n++] = s;
    log->bytes += s.bytes;
    while (log->n && (log->n > log->max_steps || log->bytes > log->max_bytes))
        drop_oldest(log);
    return 0;
}

/* One change seen in the steps since R, in the order they happened (seq). */
struct seen {
    int64_t id;
    size_t seq;
    const struct delta_change *ch;
};

static int seen_cmp(const void *pa, const void *pb)
{
    const struct seen *a = pa, *b = pb;
    if (a->ch->kind != b->ch->kind)
        return a->ch->kind < b->ch->kind ? -1 : 1;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Writes the "set" (want_set) or "removed" members of kind k from the sorted changes. */
static int emit_net(struct delta_buf *out, const struct seen *v, size_t n, int k, bool want_set)
{
    int err = buf_str(out, want_set ? "\"set\":[" : "\"removed\":[");
    bool first = true;
    for (size_t i = 0; !err && i < n;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1].ch->kind == v[i].ch->kind && v[j + 1].id == v[i].id)
            j++;
        const struct delta_change *head = v[i].ch, *last = v[j].ch;
        bool was = head->op != DELTA_ADD, is = last->op != DELTA_REMOVE;
        if (head->kind == k && want_set && is) {
            err = first ? 0 : delta_buf_add(out, ",", 1);
            if (!err)
                err = delta_buf_add(out, last->text, last->len);
            first = false;
        } else if (head->kind == k && !want_set && was && !is) {
            err = buf_fmt(out, first ? "%lld" : ",%lld", (long long)head->id);
            first = false;
        }
        i = j + 1;
    }
    return err ? err : delta_buf_add(out, "]", 1);
}

int delta_log_text(const struct delta_log *log, int64_t since, size_t max, struct delta_buf *out)
{
    size_t first = 0, total = 0;
    while (first < log->n && log->steps[first].from != since)
        first++;
    if (first == log->n)
        return -ENOENT;
    for (size_t i = first; i < log->n; i++)
        total += log->steps[i].n;
    struct seen *v = moat_calloc(total ? total : 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t seq = 0;
    for (size_t i = first; i < log->n; i++)
        for (size_t c = 0; c < log->steps[i].n; c++, seq++)
            v[seq] = (struct seen){log->steps[i].ch[c].id, seq, &log->steps[i].ch[c]};
    qsort(v, total, sizeof(*v), seen_cmp);
    int err = 0;
    for (int k = 0; !err && k < DELTA_KINDS; k++) {
        err = buf_fmt(out, "%s\"%s\":{", k ? "," : "", delta_kind_key[k]);
        if (!err)
            err = emit_net(out, v, total, k, true);
        if (!err)
            err = delta_buf_add(out, ",", 1);
        if (!err)
            err = emit_net(out, v, total, k, false);
        if (!err)
            err = delta_buf_add(out, "}", 1);
        if (!err && out->len > max)
            err = -E2BIG;
    }
    free(v);
    return err;
}

int delta_answer(const struct delta_log *log, const struct delta_snap *now, int64_t since,
                 size_t max, struct delta_buf *out)
{
    if (!log->n || log->steps[log->n - 1].to != now->revision)
        return -ENOENT;
    int err = buf_fmt(out, "{\"revision\":%lld,\"since\":%lld,\"delta\":true,",
                      (long long)now->revision, (long long)since);
    if (!err && now->extras[0])
        err = buf_str(out, now->extras);
    if (!err && now->extras[0])
        err = delta_buf_add(out, ",", 1);
    if (!err)
        err = delta_log_text(log, since, max, out);
    if (!err)
        err = delta_buf_add(out, "}", 1);
    return err;
}

/* ---- applying ------------------------------------------------------------ */

/* A record by id, with where it came from. */
struct byid {
    int64_t id;
    const json_t *rec;
    size_t base; /* index in the base list, or SIZE_MAX */
};

static int byid_cmp(const void *pa, const void *pb)
{
    const struct byid *a = pa, *b = pb;
    return a->id < b->id ? -1 : a->id > b->id;
}

static const struct byid *find(const struct byid *v, size_t n, int64_t id)
{
    struct byid key = {.id = id};
    return bsearch(&key, v, n, sizeof(*v), byid_cmp);
}

static int bad(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* The records of `list` by id, sorted; -EINVAL when an id is missing or repeated. */
static int index_list(const json_t *list, struct byid **out, size_t *count)
{
    size_t n = json_array_size(list);
    struct byid *v = moat_calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(list, i);
        const json_t *id = json_object_get(r, "id");
        if (!json_is_integer(id)) {
            free(v);
            return -EINVAL;
        }
        v[i] = (struct byid){json_integer_value(id), r, i};
    }
    qsort(v, n, sizeof(*v), byid_cmp);
    for (size_t i = 1; i < n; i++)
        if (v[i].id == v[i - 1].id) {
            free(v);
            return -EINVAL;
        }
    *out = v;
    *count = n;
    return 0;
}

/* base list + {set, removed} -> the new list (by id). */
static int apply_kind(const json_t *list, const json_t *chg, const char *kind, json_t **out,
                      char *why, size_t wn)
{
    const json_t *set = json_object_get(chg, "set"), *removed = json_object_get(chg, "removed");
    if (!json_is_object(chg) || (set && !json_is_array(set)) ||
        (removed && !json_is_array(removed)))
        return bad(why, wn, "%s: must be {\"set\": [...], \"removed\": [...]}", kind);
    struct byid *b = NULL, *s = NULL;
    size_t nb = 0, ns = 0;
    int err = index_list(list, &b, &nb);
    if (err == -EINVAL)
        return bad(why, wn, "%s: the records held have no distinct ids", kind);
    if (!err && (err = index_list(set, &s, &ns)) == -EINVAL)
        err = bad(why, wn, "%s.set: records without distinct integer ids", kind);
    bool *gone = err ? NULL : moat_calloc(nb ? nb : 1, sizeof(bool));
    if (!err && !gone)
        err = -ENOMEM;
    for (size_t i = 0; !err && i < json_array_size(removed); i++) {
        const json_t *id = json_array_get(removed, i);
        const struct byid *hit = json_is_integer(id) ? find(b, nb, json_integer_value(id)) : NULL;
        if (!hit || gone[hit - b] || find(s, ns, json_integer_value(id)))
            err = bad(why, wn, "%s.removed[%zu]: not a record held (or also set)", kind, i);
        else
            gone[hit - b] = true;
    }
    json_t *res = err ? NULL : json_array();
    if (!err && !res)
        err = -ENOMEM;
    /* both lists are sorted by id: merge them */
    for (size_t i = 0, j = 0; !err && (i < nb || j < ns);) {
        const json_t *r;
        if (j >= ns || (i < nb && b[i].id < s[j].id)) {
            r = gone[i] ? NULL : b[i].rec;
            i++;
        } else {
            if (i < nb && b[i].id == s[j].id)
                i++;
            r = s[j++].rec;
        }
        if (r && json_array_append((json_t *)res, (json_t *)r) < 0)
            err = -ENOMEM;
    }
    free(gone);
    free(b);
    free(s);
    if (err)
        json_decref(res);
    else
        *out = res;
    return err;
}

int delta_apply(const json_t *base, const json_t *d, json_t **out, char *why, size_t wn)
{
    *out = NULL;
    const json_t *since = json_object_get(d, "since"), *rev = json_object_get(d, "revision");
    const json_t *have = json_object_get(base, "revision");
    if (!json_is_object(d) || !json_is_true(json_object_get(d, "delta")))
        return bad(why, wn, "not a delta answer");
    if (!json_is_integer(since) || !json_is_integer(rev) ||
        json_integer_value(rev) <= json_integer_value(since))
        return bad(why, wn, "since/revision: must be integers, since < revision");
    if (!json_is_integer(have) || json_integer_value(have) != json_integer_value(since))
        return bad(why, wn, "the delta is since revision %lld, this agent has %lld",
                   (long long)json_integer_value(since), (long long)json_integer_value(have));
    json_t *res = json_object();
    int err = res ? 0 : -ENOMEM;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)d, key, v)
    {
        if (err || strcmp(key, "since") == 0 || strcmp(key, "delta") == 0)
            continue;
        if (kind_of(key) < 0) {
            err = json_object_set(res, key, (json_t *)v) < 0 ? -ENOMEM : 0;
            continue;
        }
        const json_t *list = json_object_get(base, key);
        json_t *applied = NULL;
        if (list && !json_is_array(list))
            err = bad(why, wn, "%s: the records held are not a list", key);
        if (!err)
            err = apply_kind(list, v, key, &applied, why, wn);
        if (!err && json_object_set_new(res, key, applied) < 0)
            err = -ENOMEM;
    }
    for (int k = 0; !err && k < DELTA_KINDS; k++) {
        const json_t *list = json_object_get(base, delta_kind_key[k]);
        if (!json_object_get(d, delta_kind_key[k]) && list &&
            json_object_set(res, delta_kind_key[k], (json_t *)list) < 0)
            err = -ENOMEM; /* a list the delta leaves out did not change */
    }
    if (err)
        json_decref(res);
    else
        *out = res;
    return err;
}

/* ---- computing (from two full answers) ------------------------------------ */

static json_t *between_kind(const json_t *a, const json_t *b)
{
    struct byid *va = NULL, *vb = NULL;
    size_t na = 0, nb = 0;
    json_t *set = json_array(), *removed = json_array();
    int err = set && removed ? 0 : -ENOMEM;
    if (!err)
        err = index_list(a, &va, &na);
    if (!err)
        err = index_list(b, &vb, &nb);
    for (size_t j = 0; !err && j < nb; j++) {
        const struct byid *hit = find(va, na, vb[j].id);
        if ((!hit || !json_equal((json_t *)hit->rec, (json_t *)vb[j].rec)) &&
            json_array_append(set, (json_t *)vb[j].rec) < 0)
            err = -ENOMEM;
    }
    for (size_t i = 0; !err && i < na; i++)
        if (!find(vb, nb, va[i].id) && json_array_append_new(removed, json_integer(va[i].id)) < 0)
            err = -ENOMEM;
    free(va);
    free(vb);
    json_t *r = err ? NULL : json_pack("{s:O,s:O}", "set", set, "removed", removed);
    json_decref(set);
    json_decref(removed);
    return r;
}

json_t *delta_between(const json_t *a, const json_t *b)
{
    json_t *d = json_pack("{s:O,s:O,s:b}", "revision", json_object_get(b, "revision"), "since",
                          json_object_get(a, "revision"), "delta", 1);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)b, key, v)
    {
        if (!d || strcmp(key, "revision") == 0)
            continue;
        json_t *x =
            kind_of(key) >= 0 ? between_kind(json_object_get(a, key), v) : json_incref((json_t *)v);
        if (!x || json_object_set_new(d, key, x) < 0) {
            json_decref(d);
            d = NULL;
        }
    }
    return d;
}
