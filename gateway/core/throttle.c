/* throttle.c - per-shard write limits (see throttle.h).
 *
 * An open-addressing table keyed by the shard pointer: the lookup is on the
 * PutRecords path, once per record. Deleted shards leave their slots behind
 * until a stream deletion clears the table (rare; buckets simply start full
 * again). */
#include "throttle.h"

#include <stdlib.h>
#include <time.h>

#include "mem.h"
#include "ratelimit.h"

#define RECORDS_PER_S 1000
#define BYTES_PER_S (1024 * 1024)
#define READS_PER_S 5 /* GetRecords calls per shard (Kinesis' limit) */

struct slot {
    const struct store_shard *shard;
    struct gw_ratelimit bytes, records, reads;
};

struct gw_throttle {
    bool enabled;
    struct slot *slots;
    size_t cap, used;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct gw_throttle *gw_throttle_new(bool enabled)
{
    struct gw_throttle *t = xcalloc(1, sizeof *t);
    t->enabled = enabled;
    return t;
}

void gw_throttle_forget(struct gw_throttle *t)
{
    if (!t)
        return;
    free(t->slots);
    t->slots = NULL;
    t->cap = t->used = 0;
}

void gw_throttle_free(struct gw_throttle *t)
{
    gw_throttle_forget(t);
    free(t);
}

static size_t hash(const struct store_shard *shard, size_t cap)
{
    return ((uintptr_t)shard >> 4) & (cap - 1);
}

static struct slot *slot_of(struct gw_throttle *t, const struct store_shard *shard)
{
    if (t->used * 2 >= t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct slot *ns = xcalloc(ncap, sizeof *ns);
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slots[i].shard)
                continue;
            size_t h = hash(t->slots[i].shard, ncap);
            while (ns[h].shard)
                h = (h + 1) & (ncap - 1);
            ns[h] = t->slots[i];
        }
        free(t->slots);
        t->slots = ns;
        t->cap = ncap;
    }
    size_t h = hash(shard, t->cap);
    while (t->slots[h].shard && t->slots[h].shard != shard)
        h = (h + 1) & (t->cap - 1);
    if (!t->slots[h].shard) {
        uint64_t now = mono_ns();
        t->slots[h].shard = shard;
        gw_ratelimit_init(&t->slots[h].bytes, BYTES_PER_S, BYTES_PER_S, now);
        gw_ratelimit_init(&t->slots[h].records, RECORDS_PER_S, RECORDS_PER_S, now);
        gw_ratelimit_init(&t->slots[h].reads, READS_PER_S, READS_PER_S, now);
        t->used++;
    }
    return &t->slots[h];
}

bool gw_throttle_read(struct gw_throttle *t, const struct store_shard *shard)
{
    if (!t || !t->enabled)
        return true;
    struct slot *s = slot_of(t, shard);
    uint64_t now = mono_ns();
    if (gw_ratelimit_available(&s->reads, now) < 1)
        return false;
    gw_ratelimit_take(&s->reads, now, 1);
    return true;
}

bool gw_throttle_take(struct gw_throttle *t, const struct store_shard *shard, uint32_t records,
                      uint64_t bytes)
{
    if (!t || !t->enabled)
        return true;
    struct slot *s = slot_of(t, shard);
    uint64_t now = mono_ns();
    if (gw_ratelimit_available(&s->records, now) < records ||
        gw_ratelimit_available(&s->bytes, now) < bytes)
        return false;
    gw_ratelimit_take_all(&s->records, now, records);
    gw_ratelimit_take_all(&s->bytes, now, bytes);
    return true;
}
