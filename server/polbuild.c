/* polbuild: the policy answer built from the last one (see polbuild.h). */
#include "polbuild.h"
#include "server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A record read by a build: its stored text, and its text in that build's answer. */
struct pol_rec {
    int64_t id;
    char *stored; /* owned; NULL once a later build took it over */
    size_t slen;
    size_t off, len; /* in the answer; len 0: not in it (another cluster's object, unreadable) */
};

struct pol_list {
    struct pol_rec *r;
    size_t n, cap;
};

struct pol_recs {
    struct pol_list kinds[DELTA_KINDS];
    struct shared_text *text; /* the answer the spans are in */
};

static const enum store_kind store_kind_of[DELTA_KINDS] = {STORE_OBJECT, STORE_RULE,
                                                           STORE_WORKLOAD};

void pol_recs_bind(struct pol_recs *r, struct shared_text *t)
{
    shared_text_unref(r->text);
    r->text = shared_text_ref(t);
}

void pol_recs_free(struct pol_recs *r)
{
    if (!r)
        return;
    for (int k = 0; k < DELTA_KINDS; k++) {
        for (size_t i = 0; i < r->kinds[k].n; i++)
            free(r->kinds[k].r[i].stored);
        free(r->kinds[k].r);
    }
    shared_text_unref(r->text);
    free(r);
}

static int add_str(struct delta_buf *b, const char *s)
{
    return delta_buf_add(b, s, strlen(s));
}

/* One kind's scan: the rows in id order against the last build's, into the answer. */
struct scan {
    int kind;
    const char *cluster;
    struct pol_list *old; /* the last build's rows of this kind (stored texts taken over) */
    size_t at;            /* the first of old not passed yet */
    const char *old_text; /* the last answer */
    struct pol_list *new;
    struct delta_buf *out;
    struct delta_rec *recs; /* the snapshot's records of this kind */
    size_t nrecs, cap;
    struct pol_stats *stats;
};

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 256;
    void *q = realloc(*p, c * size);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

/* Another cluster's object (its `cluster` names another): not in this cluster's answer. */
static bool foreign_object(const json_t *doc, const char *cluster)
{
    const json_t *oc = json_object_get(doc, "cluster");
    const char *v = json_string_value(oc);
    return oc && strcmp(v ? v : "", cluster) != 0;
}

/* The record's text in the answer from its stored text: parse, "id" set, dump. */
static int parsed_record(struct scan *x, struct pol_rec *nr, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    int err = 0;
    x->stats->parsed++;
    if (!json_is_object(doc)) { /* as the store's list() does: said and skipped */
        fprintf(stderr, "moat-server: store: %s record %lld does not parse: skipped\n",
                delta_kind_key[x->kind], (long long)nr->id);
    } else if (!(x->kind == DELTA_OBJECTS && foreign_object(doc, x->cluster))) {
        if (json_object_set_new(doc, "id", json_integer(nr->id)) < 0)
            err = -ENOMEM;
        if (!err && x->nrecs)
            err = delta_buf_add(x->out, ",", 1);
        nr->off = x->out->len;
        if (!err)
            err = delta_buf_json(x->out, doc);
        nr->len = x->out->len - nr->off;
    }
    json_decref(doc);
    return err;
}

static int scan_row(void *arg, int64_t id, const char *text, size_t len)
{
    struct scan *x = arg;
    while (x->at < x->old->n && x->old->r[x->at].id < id)
        x->at++;
    struct pol_rec *o = x->at < x->old->n && x->old->r[x->at].id == id ? &x->old->r[x->at] : NULL;
    struct pol_rec nr = {.id = id};
    int err = 0;
    if (o && o->stored && o->slen == len && memcmp(o->stored, text, len) == 0) {
        nr.stored = o->stored; /* the same text: the same record text, no parse */
        nr.slen = len;
        o->stored = NULL;
        x->stats->reused++;
        if (o->len && x->nrecs)
            err = delta_buf_add(x->out, ",", 1);
        nr.off = x->out->len;
        if (!err && o->len)
            err = delta_buf_add(x->out, x->old_text + o->off, o->len);
        nr.len = o->len;
    } else {
        nr.stored = malloc(len + 1);
        nr.slen = len;
        if (!nr.stored)
            return -ENOMEM;
        memcpy(nr.stored, text, len);
        nr.stored[len] = '\0';
        err = parsed_record(x, &nr, text, len);
    }
    if (!err)
        err = grow((void **)&x->new->r, &x->new->cap, x->new->n, sizeof(*x->new->r));
    if (err) {
        free(nr.stored);
        return err;
    }
    x->new->r[x->new->n++] = nr;
    if (!nr.len)
        return 0;
    if (grow((void **)&x->recs, &x->cap, x->nrecs, sizeof(*x->recs)) < 0)
        return -ENOMEM;
    x->recs[x->nrecs++] = (struct delta_rec){id, nr.off, nr.len};
    return 0;
}

/* The whole members but the lists: the cluster record (its id its name) and detect's fields. */
static int whole_members(struct store *st, const char *cluster, json_t **cl, json_t **detect)
{
    int64_t id;
    *cl = NULL;
    *detect = json_object();
    int err = *detect ? st->ops->find(st, STORE_CLUSTER, NULL, cluster, &id) : -ENOMEM;
    if (!err)
        err = st->ops->get(st, STORE_CLUSTER, id, cl, NULL);
    if (!err && json_object_set_new(*cl, "id", json_string(cluster)) < 0)
        err = -ENOMEM;
    if (!err)
        err = detect_policy_fields(st, cluster, *detect);
    return err;
}

/* Appends `"key":value` to the answer and to the snapshot's extras. */
static int whole_member(struct delta_buf *out, struct delta_buf *extras, const char *key,
                        const json_t *v)
{
    int err = delta_buf_add(out, ",\"", 2);
    if (!err)
        err = add_str(out, key);
    if (!err)
        err = delta_buf_add(out, "\":", 2);
    size_t off = out->len;
    if (!err)
        err = delta_buf_json(out, v);
    if (!err && extras->len)
        err = delta_buf_add(extras, ",", 1);
    if (!err)
        err = delta_buf_add(extras, "\"", 1);
    if (!err)
        err = add_str(extras, key);
    if (!err)
        err = delta_buf_add(extras, "\":", 2);
    if (!err)
        err = delta_buf_add(extras, out->p + off, out->len - off);
    return err;
}

int pol_build(struct store *st, const char *cluster, int64_t rev, struct pol_recs *prev,
              struct delta_buf *out, struct delta_snap *snap, struct pol_recs **next,
              struct pol_stats *stats)
{
    struct pol_recs *nr = calloc(1, sizeof(*nr));
    struct delta_buf extras = {0};
    json_t *cl = NULL, *detect = NULL;
    char head[48];
    *snap = (struct delta_snap){.revision = rev};
    *next = NULL;
    *stats = (struct pol_stats){0};
    int err = nr ? whole_members(st, cluster, &cl, &detect) : -ENOMEM;
    snprintf(head, sizeof(head), "{\"revision\":%lld", (long long)rev);
    if (!err)
        err = add_str(out, head);
    if (!err)
        err = whole_member(out, &extras, "cluster", cl);
    size_t plen = 0;
    const char *ptext = prev && prev->text ? shared_text_bytes(prev->text, &plen) : NULL;
    if (!err && plen > out->cap) { /* about the last one's size: no copies while it grows */
        char *p = realloc(out->p, plen + plen / 16 + 4096);
        if (p) {
            out->p = p;
            out->cap = plen + plen / 16 + 4096;
        }
    }
    for (int k = 0; !err && k < DELTA_KINDS; k++) {
        struct pol_list empty = {0};
        struct pol_list *old = ptext ? &prev->kinds[k] : &empty;
        struct scan x = {.kind = k,
                         .cluster = cluster,
                         .old = old,
                         .old_text = ptext,
                         .new = &nr->kinds[k],
                         .out = out,
                         .stats = stats};
        err = delta_buf_add(out, ",\"", 2);
        if (!err)
            err = add_str(out, delta_kind_key[k]);
        if (!err)
            err = delta_buf_add(out, "\":[", 3);
        if (!err)
            err = st->ops->scan(st, store_kind_of[k], k == DELTA_OBJECTS ? NULL : cluster, scan_row,
                                &x);
        if (!err)
            err = delta_buf_add(out, "]", 1);
        snap->recs[k] = x.recs;
        snap->n[k] = x.nrecs;
    }
    const char *key;
    json_t *v;
    json_object_foreach(detect, key, v) if (!err) err = whole_member(out, &extras, key, v);
    if (!err)
        err = delta_buf_add(out, "}", 1);
    snap->extras = extras.p;
    json_decref(cl);
    json_decref(detect);
    if (err) {
        delta_snap_free(snap);
        pol_recs_free(nr);
        return err;
    }
    *next = nr;
    return 0;
}
