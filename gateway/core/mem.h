/* mem.h - allocation that aborts on exhaustion, and a per-request arena.
 *
 * Allocation failure aborts (like h2o_mem_alloc and Redis's zmalloc). That is
 * only safe because every size that comes from a client is checked against a
 * named limit (config.h) before anything is allocated for it. */
#ifndef SLUICE_GW_MEM_H
#define SLUICE_GW_MEM_H

#include <stddef.h>

/* Like malloc/calloc/realloc/strdup but never return NULL: on exhaustion they
 * log and abort. xmalloc(0) returns a valid unique pointer. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* A bump allocator freed all at once (h2o's h2o_mem_pool_t). Objects live
 * until gw_arena_clear(). Embedded in its owner: _init/_clear. */
struct gw_arena {
    struct gw_arena_chunk *chunks;
    size_t used;     /* bytes used in the head chunk */
    size_t total;    /* bytes handed out over the arena's life */
};

void gw_arena_init(struct gw_arena *a);
void gw_arena_clear(struct gw_arena *a);
/* Returns new memory owned by the arena, aligned for any type. */
void *gw_arena_alloc(struct gw_arena *a, size_t n);
/* Copies "n" bytes of "s" and appends a NUL; returns arena memory. */
char *gw_arena_strndup(struct gw_arena *a, const char *s, size_t n);

#endif
