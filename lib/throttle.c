/* throttle: token buckets per source address (see throttle.h). */
#include "throttle.h"
#include "mem.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4

struct entry {
    unsigned char key[THROTTLE_KEY_MAX];
    size_t klen;  /* 0: free */
    double level; /* failures still allowed at `at` */
    double at;
};

struct throttle {
    double burst, per_sec;
    size_t sets;
    struct entry *e; /* sets * WAYS */
};

int throttle_new(double burst, double per_sec, size_t sets, struct throttle **out)
{
    *out = NULL;
    if (!(burst >= 1) || !(per_sec > 0) || sets == 0)
        return -EINVAL;
    struct throttle *t = moat_calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->e = moat_calloc(sets * WAYS, sizeof(*t->e));
    if (!t->e) {
        free(t);
        return -ENOMEM;
    }
    t->burst = burst;
    t->per_sec = per_sec;
    t->sets = sets;
    *out = t;
    return 0;
}

void throttle_free(struct throttle *t)
{
    if (!t)
        return;
    free(t->e);
    free(t);
}

static uint64_t hash(const void *key, size_t n)
{
    const unsigned char *k = key;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 1099511628211ull;
    return h;
}

/* The allowance of e at `now`, refilled since it was last charged. */
static double level_at(const struct throttle *t, const struct entry *e, double now)
{
    double l = e->level + (now - e->at) * t->per_sec;
    return l > t->burst ? t->burst : l;
}

/* The entry of `key`, or NULL; *set gets its set. */
static struct entry *find(struct throttle *t, const void *key, size_t klen, struct entry **set)
{
    *set = &t->e[(hash(key, klen) % t->sets) * WAYS];
    for (size_t i = 0; i < WAYS; i++) {
        struct entry *e = &(*set)[i];
        if (e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
    return NULL;
}

unsigned throttle_wait(struct throttle *t, const void *key, size_t klen, double now)
{
    struct entry *set;
    if (klen > THROTTLE_KEY_MAX)
        klen = THROTTLE_KEY_MAX;
    const struct entry *e = find(t, key, klen, &set);
    double l = e ? level_at(t, e, now) : t->burst;
    return l >= 1 ? 0 : (unsigned)ceil((1 - l) / t->per_sec);
}

void throttle_charge(struct throttle *t, const void *key, size_t klen, double now)
{
    struct entry *set;
    if (klen > THROTTLE_KEY_MAX)
        klen = THROTTLE_KEY_MAX;
    struct entry *e = find(t, key, klen, &set);
    if (!e) {
        e = &set[0];
        for (size_t i = 0; i < WAYS; i++) { /* a free entry, else the one most refilled */
            if (!set[i].klen) {
                e = &set[i];
                break;
            }
            if (level_at(t, &set[i], now) > level_at(t, e, now))
                e = &set[i];
        }
        memcpy(e->key, key, klen);
        e->klen = klen;
        e->level = t->burst;
        e->at = now;
    }
    double l = level_at(t, e, now) - 1;
    e->level = l < -t->burst ? -t->burst : l; /* a flood does not lock a source out for ever */
    e->at = now;
}
