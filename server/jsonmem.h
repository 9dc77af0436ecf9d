/*
 * jsonmem: where moat-server's JSON values get their memory. A rule list
 * answer builds and frees a few thousand small jansson values; glibc keeps
 * only 7 freed blocks per size and thread (tcache), so most of them went
 * through the arena (a lock and a cold free list). jsonmem keeps freed
 * small blocks in a cache per thread (up to JSONMEM_THREAD_MAX bytes) and
 * hands them out again; anything else goes to malloc and free.
 *
 * Blocks are ordinary malloc blocks, so memory jansson hands out (json_dumps
 * text) is still released with free(). Sanitizer builds leave jansson on
 * malloc, so that a use after free is still caught.
 */
#ifndef MOAT_SERVER_JSONMEM_H
#define MOAT_SERVER_JSONMEM_H

#define JSONMEM_THREAD_MAX (1u << 20) /* bytes of free blocks a thread keeps */

/*
 * Installs the cache as jansson's allocator (json_set_alloc_funcs). Call it
 * once, first thing in main, before any JSON value exists and before threads
 * start. 0, or -ENOMEM (jansson then keeps malloc).
 */
int jsonmem_init(void);

#endif
