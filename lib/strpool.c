/* strpool: packed, interned strings (see strpool.h). */
#include "strpool.h"
#include "mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (64u << 10)

struct chunk {
    struct chunk *next;
    size_t used, size;
    _Alignas(8) unsigned char data[];
};

struct slot {
    const unsigned char *p; /* NULL: empty */
    uint32_t len, hash;
};

struct strpool {
    unsigned refs;
    struct chunk *chunks; /* newest first */
    size_t bytes;
    struct slot *slot;
    size_t cap, n;
};

struct strpool *strpool_new(void)
{
    struct strpool *pool = moat_calloc(1, sizeof(*pool));
    if (pool)
        pool->refs = 1;
    return pool;
}

struct strpool *strpool_ref(struct strpool *pool)
{
    pool->refs++;
    return pool;
}

void strpool_seal(struct strpool *pool)
{
    free(pool->slot);
    pool->slot = NULL;
    pool->cap = pool->n = 0;
}

void strpool_unref(struct strpool *pool)
{
    if (!pool || --pool->refs)
        return;
    strpool_seal(pool);
    for (struct chunk *c = pool->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(pool);
}

void *strpool_copy(struct strpool *pool, const void *data, size_t len)
{
    size_t need = (len + 7) & ~(size_t)7;
    struct chunk *c = pool->chunks;
    if (!c || c->size - c->used < need) {
        /* a block larger than a chunk gets a chunk of its own, behind the current one */
        size_t size = need > CHUNK_BYTES / 4 ? need : CHUNK_BYTES;
        struct chunk *fresh = malloc(sizeof(*fresh) + size);
        if (!fresh)
            return NULL;
        *fresh = (struct chunk){.size = size};
        pool->bytes += sizeof(*fresh) + size;
        if (c && size != CHUNK_BYTES) {
            fresh->next = c->next;
            c->next = fresh;
        } else {
            fresh->next = c;
            pool->chunks = fresh;
        }
        c = fresh;
    }
    void *at = c->data + c->used;
    c->used += need;
    if (len)
        memcpy(at, data, len);
    return at;
}

static uint32_t hash_of(const unsigned char *p, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static size_t slot_of(const struct slot *slot, size_t cap, const void *p, size_t len, uint32_t h)
{
    size_t i = h & (cap - 1);
    while (slot[i].p && (slot[i].hash != h || slot[i].len != len || memcmp(slot[i].p, p, len)))
        i = (i + 1) & (cap - 1);
    return i;
}

static int grow_table(struct strpool *pool)
{
    size_t cap = pool->cap ? 2 * pool->cap : 1024;
    struct slot *slot = moat_calloc(cap, sizeof(*slot));
    if (!slot)
        return -1;
    for (size_t i = 0; i < pool->cap; i++)
        if (pool->slot[i].p)
            slot[slot_of(slot, cap, pool->slot[i].p, pool->slot[i].len, pool->slot[i].hash)] =
                pool->slot[i];
    free(pool->slot);
    pool->slot = slot;
    pool->cap = cap;
    return 0;
}

const void *strpool_intern(struct strpool *pool, const void *data, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    if (2 * (pool->n + 1) > pool->cap && grow_table(pool) < 0)
        return NULL;
    uint32_t h = hash_of(data, len);
    size_t i = slot_of(pool->slot, pool->cap, data, len, h);
    if (pool->slot[i].p)
        return pool->slot[i].p;
    const unsigned char *copy = strpool_copy(pool, data, len);
    if (!copy)
        return NULL;
    pool->slot[i] = (struct slot){copy, (uint32_t)len, h};
    pool->n++;
    return copy;
}

const char *strpool_str(struct strpool *pool, const char *s)
{
    return strpool_intern(pool, s, strlen(s) + 1);
}

size_t strpool_bytes(const struct strpool *pool)
{
    return pool->bytes + pool->cap * sizeof(struct slot);
}
