/*
 * jsonmem: where moat-server's JSON values get their memory. A rule list
 * answer builds and frees a few thousand small jansson values; glibc keeps
 * only 7 freed blocks per size and thread (tcache), so most of them went
 * through the arena (a lock and a cold free list); an event batch's tree is
 * 25,000 of them. jsonmem keeps freed small blocks in a cache per thread and
 * hands them out again; anything else goes to malloc and free. A thread's
 * cache holds at most JSONMEM_THREAD_MAX bytes and all caches together at most
 * JSONMEM_TOTAL_MAX, however many connection threads there are (plus the
 * arrays that list them, 8 bytes a block); a thread's cache goes back to
 * malloc when the thread ends.
 *
 * Blocks are ordinary malloc blocks, so memory jansson hands out (json_dumps
 * text) is still released with free(). Sanitizer builds leave jansson on
 * malloc, so that a use after free is still caught.
 */
#ifndef MOAT_SERVER_JSONMEM_H
#define MOAT_SERVER_JSONMEM_H

#define JSONMEM_THREAD_MAX (4u << 20)  /* bytes of free blocks one thread keeps */
#define JSONMEM_TOTAL_MAX  (32u << 20) /* ... and all threads together */

/*
 * Installs the cache as jansson's allocator (json_set_alloc_funcs). Call it
 * once, first thing in main, before any JSON value exists and before threads
 * start. 0, or -ENOMEM (jansson then keeps malloc).
 */
int jsonmem_init(void);

#endif
