/* strset: a set of strings (see strset.h). */
#include "strset.h"
#include "mem.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t slot_of(const struct strset *s, const char *key)
{
    size_t i = (size_t)str_hash(key) & (s->cap - 1);
    while (s->slot[i] && strcmp(s->slot[i], key) != 0)
        i = (i + 1) & (s->cap - 1);
    return i;
}

bool strset_has(const struct strset *s, const char *key)
{
    return s->cap && s->slot[slot_of(s, key)];
}

int strset_add(struct strset *s, const char *key)
{
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct strset bigger = {moat_calloc(cap, sizeof(char *)), cap, s->n};
        if (!bigger.slot)
            return -ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i])
                bigger.slot[slot_of(&bigger, s->slot[i])] = s->slot[i];
        free(s->slot);
        *s = bigger;
    }
    size_t i = slot_of(s, key);
    if (s->slot[i])
        return 0;
    if (!(s->slot[i] = moat_strdup(key)))
        return -ENOMEM;
    s->n++;
    return 1;
}

void strset_clear(struct strset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
    *s = (struct strset){0};
}
