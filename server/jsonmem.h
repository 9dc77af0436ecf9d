/*
 * jsonmem: where moat-server's JSON values get their memory. A rule list
 * answer builds and frees a few thousand small jansson values; glibc keeps
 * only 7 freed blocks per size and thread (tcache), so most of them went
 * through the arena (a lock and a cold free list). jsonmem keeps freed
 * small blocks in a cache per thread and hands them out again, but only on
 * threads that turned it on for their request (http.c: read-only routes).
 * Measured on the bench: +20-30% rule lists, but -25% event ingest and -20%
 * object creates when on for them too. Those build big trees (an event batch
 * is 25,000 values) that read better from glibc's fresh, contiguous memory
 * than from recycled blocks, and their other allocations (the policy
 * loader's) could not reuse the memory the cache held.
 *
 * A thread's cache holds at most JSONMEM_THREAD_MAX bytes of blocks and all
 * caches together at most JSONMEM_TOTAL_MAX (plus the arrays that list them,
 * 8 bytes a block), however many connection threads there are; a thread's
 * cache goes back to malloc when the thread ends. Blocks are ordinary malloc
 * blocks, so memory jansson hands out (json_dumps text) is still released
 * with free(). Sanitizer builds leave jansson on malloc, so that a use after
 * free is still caught.
 */
#ifndef MOAT_SERVER_JSONMEM_H
#define MOAT_SERVER_JSONMEM_H

#include <stdbool.h>

#define JSONMEM_THREAD_MAX (1u << 20)  /* bytes of free blocks one thread keeps */
#define JSONMEM_TOTAL_MAX  (16u << 20) /* ... and all threads together */

/*
 * Installs the cache as jansson's allocator (json_set_alloc_funcs). Call it
 * once, first thing in main, before any JSON value exists and before threads
 * start. 0, or -ENOMEM (jansson then keeps malloc).
 */
int jsonmem_init(void);
/*
 * Turns the calling thread's cache on or off (off: its JSON values come from
 * and go back to malloc; blocks already kept stay for a later `on`). Threads
 * start off. Cheap: call it per request.
 */
void jsonmem_thread(bool on);

#endif
