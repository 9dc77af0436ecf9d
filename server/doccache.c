/* doccache: parsed documents by kind, id and text (see doccache.h). */
#include "doccache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A cached document is kept alive by reference while another thread copies it.
 * (JANSSON_VERSION_HEX: only where jansson.h was read, so not under cppcheck.) */
#if defined(JANSSON_VERSION_HEX) && !defined(JANSSON_THREAD_SAFE_REFCOUNT)
#error "jansson without atomic reference counts: cached documents cannot be shared by threads"
#endif

#define DOC_CACHE 4096 /* parsed documents kept (by kind and id) */

/* A parsed document and the stored text it was parsed from. */
struct doc_entry {
    int kind;
    int64_t id;
    char *text; /* not NUL-terminated */
    size_t len;
    json_t *doc; /* never handed out: callers get copies */
};

struct doc_cache {
    pthread_mutex_t doc_lock; /* guards docs */
    struct doc_entry docs[DOC_CACHE];
};

int doc_cache_new(struct doc_cache **out)
{
    struct doc_cache *c = calloc(1, sizeof(*c));
    if (!c || pthread_mutex_init(&c->doc_lock, NULL) != 0) {
        free(c);
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

void doc_cache_free(struct doc_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < DOC_CACHE; i++) {
        free(c->docs[i].text);
        json_decref(c->docs[i].doc);
    }
    pthread_mutex_destroy(&c->doc_lock);
    free(c);
}

/* Parses a stored document; -EBADMSG when it is not a JSON object (the row is skipped). */
static int doc_parse(const char *text, size_t len, json_t **doc)
{
    json_error_t jerr;
    json_t *d = text ? json_loadb(text, len, 0, &jerr) : NULL;
    if (!json_is_object(d)) {
        json_decref(d);
        return -EBADMSG;
    }
    *doc = d;
    return 0;
}

/*
 * A copy of a parsed document (which has no loops): what json_deep_copy
 * makes, without its loop check (a formatted key and a hash insertion per
 * object). Strings and numbers are copied too: sharing them with the cached
 * tree saved allocations but made two cores' copies of the same documents
 * fight over their reference counts (jsonmem makes the allocations cheap).
 * NULL when out of memory.
 */
static json_t *doc_copy(const json_t *v)
{
    json_t *out = NULL, *x;
    const char *key;
    size_t i, klen;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        out = json_object();
        json_object_keylen_foreach((json_t *)v, key, klen, x)
        {
            if (out && json_object_setn_new_nocheck(out, key, klen, doc_copy(x)) < 0) {
                json_decref(out);
                out = NULL;
            }
        }
        return out;
    case JSON_ARRAY:
        out = json_array();
        json_array_foreach(v, i, x)
        {
            if (out && json_array_append_new(out, doc_copy(x)) < 0) {
                json_decref(out);
                out = NULL;
            }
        }
        return out;
    case JSON_STRING:
        return json_stringn_nocheck(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return json_integer(json_integer_value(v));
    case JSON_REAL:
        return json_real(json_real_value(v));
    default: /* true, false, null: jansson's constants */
        return json_incref((json_t *)v);
    }
}

/*
 * The document of record (k, id) whose stored text is `text`: a copy of the
 * cached parse when the cache holds this record with this very text (so the
 * cache is never stale: the text is compared, not trusted), else parsed and
 * remembered. Copying a parsed document costs a quarter of parsing it.
 */
int doc_cache_get(struct doc_cache *q, int k, int64_t id, const char *text, size_t len,
                  json_t **doc)
{
    struct doc_entry *e = &q->docs[((uint64_t)id * 31u + (unsigned)k) % DOC_CACHE];
    json_t *hit = NULL;
    pthread_mutex_lock(&q->doc_lock);
    if (e->doc && e->kind == k && e->id == id && e->len == len && memcmp(e->text, text, len) == 0)
        hit = json_incref(e->doc); /* kept alive while copied outside the lock */
    pthread_mutex_unlock(&q->doc_lock);
    if (hit) {
        *doc = doc_copy(hit);
        json_decref(hit);
        return *doc ? 0 : -ENOMEM;
    }
    int err = doc_parse(text, len, doc);
    json_t *keep = err ? NULL : doc_copy(*doc); /* the caller may change its copy */
    char *t = keep ? malloc(len) : NULL;
    if (!t) {
        json_decref(keep);
        return err;
    }
    memcpy(t, text, len);
    pthread_mutex_lock(&q->doc_lock);
    json_t *old = e->doc;
    free(e->text);
    *e = (struct doc_entry){.kind = k, .id = id, .text = t, .len = len, .doc = keep};
    pthread_mutex_unlock(&q->doc_lock);
    json_decref(old);
    return 0;
}
