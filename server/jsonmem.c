/*
 * jsonmem: a per-thread cache of freed small blocks under jansson (see
 * jsonmem.h).
 *
 * Size classes follow glibc's chunk sizes on 64-bit systems: a block of
 * class k has at least 24 + 16k usable bytes. A request of n bytes takes a
 * block of the smallest class that holds n; a freed block goes to the
 * largest class its malloc_usable_size() covers, so a cached block is never
 * smaller than what it is handed out for. A thread's cache is released when
 * the thread ends (libmicrohttpd runs a thread per connection).
 *
 * jansson's allocator hooks take no context, so the thread key is the one
 * piece of process state here; it is set once, before threads start.
 */
#include "jsonmem.h"

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#define CLASSES 16 /* 24 .. 264 bytes */

struct block {
    struct block *next;
};

struct cache {
    struct block *head[CLASSES];
    size_t bytes;
};

static pthread_key_t cache_key;

static size_t class_size(unsigned k)
{
    return 24 + 16 * (size_t)k;
}

static void cache_free(void *arg)
{
    struct cache *c = arg;
    for (unsigned k = 0; k < CLASSES; k++) {
        while (c->head[k]) {
            struct block *b = c->head[k];
            c->head[k] = b->next;
            free(b);
        }
    }
    free(c);
}

static void *jm_malloc(size_t n)
{
    if (n <= class_size(CLASSES - 1)) {
        unsigned k = n <= 24 ? 0 : (unsigned)((n - 24 + 15) / 16);
        struct cache *c = pthread_getspecific(cache_key);
        struct block *b = c ? c->head[k] : NULL;
        if (b) {
            c->head[k] = b->next;
            c->bytes -= class_size(k);
            return b;
        }
    }
    return malloc(n);
}

static void jm_free(void *p)
{
    size_t u = p ? malloc_usable_size(p) : 0;
    if (u < class_size(0) || u >= class_size(CLASSES)) { /* NULL, or not a small block */
        free(p);
        return;
    }
    unsigned k = (unsigned)((u - 24) / 16);
    struct cache *c = pthread_getspecific(cache_key);
    if (!c && (c = calloc(1, sizeof(*c))) != NULL && pthread_setspecific(cache_key, c) != 0) {
        free(c);
        c = NULL;
    }
    if (!c || c->bytes + class_size(k) > JSONMEM_THREAD_MAX) {
        free(p);
        return;
    }
    struct block *b = p;
    b->next = c->head[k];
    c->head[k] = b;
    c->bytes += class_size(k);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* sanitizers see every allocation */
#else
#define SANITIZED 0
#endif

int jsonmem_init(void)
{
    if (SANITIZED)
        return 0;
    if (pthread_key_create(&cache_key, cache_free) != 0)
        return -ENOMEM;
    json_set_alloc_funcs(jm_malloc, jm_free);
    return 0;
}
