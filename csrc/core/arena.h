/* arena.h - ranges of a few large mappings for the layers' activation and
 * gradient buffers, merged with their free neighbours when handed back
 * (see arena.c). Thread-safe. */
#ifndef AC_ARENA_H
#define AC_ARENA_H

#include <stddef.h>

/* bytes a request of nbytes occupies (a multiple of 256) */
size_t ac_arena_size(size_t nbytes);
/* a range of at least nbytes, 256-byte aligned, contents unspecified; NULL
 * when out of memory. *owner receives the handle ac_arena_unref takes. */
void *ac_arena_alloc(size_t nbytes, void **owner);
/* hands back the range at p taken for nbytes (merged with free neighbours) */
void ac_arena_free(void *p, size_t nbytes);
/* one storage pointing into owner's memory is gone */
void ac_arena_unref(void *owner);
/* unmaps the chunks nothing uses or points into; returns the bytes */
size_t ac_arena_trim(void);
/* bytes mapped, and bytes in ranges handed out */
void ac_arena_stats(size_t *reserved, size_t *used);

#endif
