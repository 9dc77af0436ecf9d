/*
 * mem: the allocation helpers libmoat uses everywhere.
 *
 * They never abort: every function returns NULL when memory runs out and the
 * caller turns that into -ENOMEM. All of them go through malloc/realloc so the
 * allocation-failure tests can intercept them at link time (ld --wrap).
 */
#ifndef MOAT_MEM_H
#define MOAT_MEM_H

#include <stddef.h>

/* Zeroed array of n elements of size bytes; NULL on overflow or OOM. */
void *moat_calloc(size_t n, size_t size);
/* Resize p to n elements of size bytes; NULL (p untouched) on overflow or OOM. */
void *moat_reallocarray(void *p, size_t n, size_t size);
/* Copy of s (NULL when s is NULL or on OOM); the caller frees. */
char *moat_strdup(const char *s);
/* Copy of the first n bytes of s, NUL-terminated; the caller frees. */
char *moat_strndup(const char *s, size_t n);
/* printf into a new string; the caller frees; NULL on OOM. */
char *moat_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Grow *items (element size `size`) so that it holds at least `need` elements.
 * *cap is the current capacity. Returns 0 or -ENOMEM (the array is untouched).
 */
int moat_grow(void *items, size_t *cap, size_t need, size_t size);

#endif
