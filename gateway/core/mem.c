/* mem.c - aborting allocators and the per-request arena (see mem.h). */
#include "mem.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    /* Logging itself may need memory; write(2)-level stdio is enough here. */
    fprintf(stderr, "{\"level\":\"error\",\"event\":\"oom\",\"msg\":\"allocation of %zu bytes failed\"}\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- arena ---------------------------------------------------------------- */

#define ARENA_CHUNK 4096
#define ALIGN (alignof(max_align_t))

struct gw_arena_chunk {
    struct gw_arena_chunk *next;
    size_t size;
    alignas(max_align_t) unsigned char data[];
};

/* Standard chunks freed by gw_arena_clear are kept for the next request on
 * the same thread: a fresh 4 KiB malloc per request is a large-bin request
 * that makes glibc consolidate its fastbins every time (measured ~3 us per
 * request). Bounded: past ARENA_CACHE_MAX chunks they are freed. */
#define ARENA_CACHE_MAX 64
static _Thread_local struct gw_arena_chunk *cache;
static _Thread_local size_t ncache;

static struct gw_arena_chunk *chunk_get(void)
{
    struct gw_arena_chunk *c = cache;
    if (c) {
        cache = c->next;
        ncache--;
        return c;
    }
    c = xmalloc(sizeof *c + ARENA_CHUNK);
    c->size = ARENA_CHUNK;
    return c;
}

static void chunk_put(struct gw_arena_chunk *c)
{
    if (c->size != ARENA_CHUNK || ncache >= ARENA_CACHE_MAX) {
        free(c);
        return;
    }
    c->next = cache;
    cache = c;
    ncache++;
}

void gw_arena_init(struct gw_arena *a)
{
    a->chunks = NULL;
    a->used = 0;
    a->total = 0;
}

void gw_arena_clear(struct gw_arena *a)
{
    struct gw_arena_chunk *c = a->chunks;
    while (c) {
        struct gw_arena_chunk *next = c->next;
        chunk_put(c);
        c = next;
    }
    gw_arena_init(a);
}

void *gw_arena_alloc(struct gw_arena *a, size_t n)
{
    n = (n + ALIGN - 1) & ~(ALIGN - 1);
    a->total += n;
    if (n > ARENA_CHUNK / 4) {
        /* Big objects get their own chunk, linked behind the head so the head's
         * free space is not wasted. */
        struct gw_arena_chunk *c = xmalloc(sizeof *c + n);
        c->size = n;
        if (a->chunks) {
            c->next = a->chunks->next;
            a->chunks->next = c;
        } else {
            c->next = NULL;
            a->chunks = c;
            a->used = n;
        }
        return c->data;
    }
    if (!a->chunks || a->chunks->size - a->used < n) {
        struct gw_arena_chunk *c = chunk_get();
        c->next = a->chunks;
        a->chunks = c;
        a->used = 0;
    }
    void *p = a->chunks->data + a->used;
    a->used += n;
    return p;
}

char *gw_arena_strndup(struct gw_arena *a, const char *s, size_t n)
{
    char *p = gw_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
