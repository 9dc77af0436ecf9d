/*
 * jsonmem: a per-thread cache of freed small blocks under jansson (see
 * jsonmem.h).
 *
 * Size classes follow glibc's chunk sizes on 64-bit systems: a block of
 * class k has at least 24 + 16k usable bytes. A request of n bytes takes a
 * block of the smallest class that holds n; a freed block goes to the
 * largest class its malloc_usable_size() covers, so a cached block is never
 * smaller than what it is handed out for. A thread's cache is released when
 * the thread ends (libmicrohttpd's workers live as long as the server).
 *
 * The byte limits: a cache holds `credit` bytes of the process budget
 * (JSONMEM_TOTAL_MAX), taken and given back CREDIT bytes at a time with one
 * atomic operation, so keeping a block costs no atomic operation as a rule.
 *
 * jansson's allocator hooks take no context, so the thread key and the budget
 * are the process state here; the key is set once, before threads start.
 */
#include "jsonmem.h"

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#define CLASSES 16          /* 24 .. 264 bytes */
#define CREDIT  (64u << 10) /* budget taken or given back at a time */

/*
 * Free blocks are kept in an array per class, not in a list threaded through
 * the blocks: taking one reads the array, not the block, whose memory is
 * usually out of the CPU's caches by then (other connection threads ran in
 * between), and consecutive takes do not wait for one another.
 */
struct cache {
    void **free[CLASSES];
    unsigned n[CLASSES], room[CLASSES];
    size_t bytes;  /* held in blocks (by class size) */
    size_t credit; /* of the process budget: bytes <= credit */
    bool on;       /* jsonmem_thread */
};

static pthread_key_t cache_key;
static bool ready;                /* jsonmem_init made cache_key */
static atomic_size_t budget_used; /* the credit of every cache */

static bool budget_take(size_t n)
{
    size_t used = atomic_load(&budget_used);
    do {
        if (used + n > JSONMEM_TOTAL_MAX)
            return false;
    } while (!atomic_compare_exchange_weak(&budget_used, &used, used + n));
    return true;
}

static void budget_give(size_t n)
{
    atomic_fetch_sub(&budget_used, n);
}

static size_t class_size(unsigned k)
{
    return 24 + 16 * (size_t)k;
}

static void cache_free(void *arg)
{
    struct cache *c = arg;
    for (unsigned k = 0; k < CLASSES; k++) {
        while (c->n[k])
            free(c->free[k][--c->n[k]]);
        free(c->free[k]);
    }
    budget_give(c->credit);
    free(c);
}

static void *jm_malloc(size_t n)
{
    if (n <= class_size(CLASSES - 1)) {
        unsigned k = n <= 24 ? 0 : (unsigned)((n - 24 + 15) / 16);
        struct cache *c = pthread_getspecific(cache_key);
        if (c && c->on && c->n[k]) {
            c->bytes -= class_size(k);
            if (c->credit - c->bytes >= 2 * CREDIT) { /* keep one spare CREDIT */
                c->credit -= CREDIT;
                budget_give(CREDIT);
            }
            return c->free[k][--c->n[k]];
        }
    }
    return malloc(n);
}

/* Room for one more block of class k in c; false when out of memory. */
static bool cache_room(struct cache *c, unsigned k)
{
    if (c->n[k] < c->room[k])
        return true;
    unsigned room = c->room[k] ? 2 * c->room[k] : 256;
    void **a = realloc(c->free[k], room * sizeof(*a));
    if (!a)
        return false;
    c->free[k] = a;
    c->room[k] = room;
    return true;
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
    if (c && !c->on)
        c = NULL;
    if (c && c->bytes + class_size(k) > c->credit) {
        if (c->credit + CREDIT <= JSONMEM_THREAD_MAX && budget_take(CREDIT))
            c->credit += CREDIT;
        else
            c = NULL; /* this thread's or the process's share is full */
    }
    if (!c || !cache_room(c, k)) {
        free(p);
        return;
    }
    c->free[k][c->n[k]++] = p;
    c->bytes += class_size(k);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* sanitizers see every allocation */
#else
#define SANITIZED 0
#endif

void jsonmem_thread(bool on)
{
    if (SANITIZED || !ready)
        return;
    struct cache *c = pthread_getspecific(cache_key);
    if (!c && on && (c = calloc(1, sizeof(*c))) != NULL && pthread_setspecific(cache_key, c) != 0) {
        free(c);
        c = NULL;
    }
    if (c)
        c->on = on;
}

int jsonmem_init(void)
{
    if (SANITIZED)
        return 0;
    if (pthread_key_create(&cache_key, cache_free) != 0)
        return -ENOMEM;
    ready = true;
    json_set_alloc_funcs(jm_malloc, jm_free);
    return 0;
}
