/* metrics.c - counters by stream, shard and consumer; request counts and
 * latency by operation and outcome. See metrics.h. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

const double gw_latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const size_t gw_latency_nbounds = sizeof gw_latency_bounds / sizeof gw_latency_bounds[0];

void gw_hist_init(struct gw_hist *h, const double *bounds, size_t nbounds)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->nbounds = nbounds > GW_HIST_MAX_BOUNDS ? GW_HIST_MAX_BOUNDS : nbounds;
}

void gw_hist_observe(struct gw_hist *h, double v)
{
    /* Bounds are few (<= 24): a linear scan beats a branchy search. */
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

/* ---- a small string-keyed table ------------------------------------------- */

struct entry {
    struct entry *next;
    char *key;
    union {
        struct gw_stream_counters stream;
        struct gw_consumer_counters consumer;
    } u;
};

struct table {
    struct entry **slots;
    size_t nslots, n;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct entry *table_find(const struct table *t, const char *key)
{
    if (!t->nslots)
        return NULL;
    for (struct entry *e = t->slots[hash(key) & (t->nslots - 1)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void table_grow(struct table *t)
{
    size_t n = t->nslots ? t->nslots * 2 : 16;
    struct entry **slots = xcalloc(n, sizeof *slots);
    for (size_t i = 0; i < t->nslots; i++)
        for (struct entry *e = t->slots[i], *next; e; e = next) {
            next = e->next;
            size_t k = hash(e->key) & (n - 1);
            e->next = slots[k];
            slots[k] = e;
        }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
}

static struct entry *table_get(struct table *t, const char *key)
{
    struct entry *e = table_find(t, key);
    if (e)
        return e;
    if (t->n + 1 > t->nslots)
        table_grow(t);
    e = xcalloc(1, sizeof *e);
    e->key = xstrdup(key);
    size_t k = hash(key) & (t->nslots - 1);
    e->next = t->slots[k];
    t->slots[k] = e;
    t->n++;
    return e;
}

static void entry_free(struct entry *e, int stream)
{
    if (stream)
        free(e->u.stream.shards);
    free(e->key);
    free(e);
}

static void table_prune(struct table *t, int stream, int (*alive)(void *, const char *), void *arg)
{
    for (size_t i = 0; i < t->nslots; i++)
        for (struct entry **p = &t->slots[i]; *p;) {
            struct entry *e = *p;
            if (alive(arg, e->key)) {
                p = &e->next;
                continue;
            }
            *p = e->next;
            entry_free(e, stream);
            t->n--;
        }
}

static void table_free(struct table *t, int stream)
{
    for (size_t i = 0; i < t->nslots; i++)
        for (struct entry *e = t->slots[i], *next; e; e = next) {
            next = e->next;
            entry_free(e, stream);
        }
    free(t->slots);
}

/* ---- the registry --------------------------------------------------------- */

struct gw_metrics {
    struct table streams, consumers;
    size_t nops, noutcomes;
    uint64_t *requests;      /* (nops + 1) x noutcomes */
    struct gw_hist *latency; /* nops + 1 */
    struct gw_hist slices;   /* /metrics slices */
};

/* Slices are meant to stay well under a millisecond. */
static const double slice_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                      0.0025,  0.005,  0.01,    0.025,  0.1};

struct gw_metrics *gw_metrics_new(void)
{
    struct gw_metrics *m = xcalloc(1, sizeof(struct gw_metrics));
    gw_hist_init(&m->slices, slice_bounds, sizeof slice_bounds / sizeof slice_bounds[0]);
    return m;
}

void gw_metrics_scrape_slice(struct gw_metrics *m, double seconds)
{
    if (m)
        gw_hist_observe(&m->slices, seconds);
}

const struct gw_hist *gw_metrics_scrape_slices(const struct gw_metrics *m)
{
    static const struct gw_hist empty;
    return m ? &m->slices : &empty;
}

void gw_metrics_free(struct gw_metrics *m)
{
    if (!m)
        return;
    table_free(&m->streams, 1);
    table_free(&m->consumers, 0);
    free(m->requests);
    free(m->latency);
    free(m);
}

/* Shard counters are grown to cover "shard"; shard indices are dense (0 to
 * the stream's shard count), so an array is the right map. */
static struct gw_shard_counters *shard_of(struct gw_metrics *m, const char *stream, uint32_t shard,
                                          struct gw_shard_counters **total)
{
    struct gw_stream_counters *sc = &table_get(&m->streams, stream)->u.stream;
    if (shard >= sc->nshards) {
        uint32_t n = sc->nshards ? sc->nshards : 4;
        while (n <= shard)
            n *= 2;
        sc->shards = xrealloc(sc->shards, (size_t)n * sizeof *sc->shards);
        memset(sc->shards + sc->nshards, 0, (size_t)(n - sc->nshards) * sizeof *sc->shards);
        sc->nshards = n;
    }
    *total = &sc->total;
    return &sc->shards[shard];
}

void gw_metrics_put(struct gw_metrics *m, const char *stream, uint32_t shard, uint64_t records,
                    uint64_t bytes)
{
    if (!m)
        return;
    struct gw_shard_counters *t, *s = shard_of(m, stream, shard, &t);
    s->in_records += records;
    s->in_bytes += bytes;
    t->in_records += records;
    t->in_bytes += bytes;
}

void gw_metrics_write_throttled(struct gw_metrics *m, const char *stream, uint32_t shard)
{
    if (!m)
        return;
    struct gw_shard_counters *t, *s = shard_of(m, stream, shard, &t);
    s->write_throttled++;
    t->write_throttled++;
}

void gw_metrics_read_throttled(struct gw_metrics *m, const char *stream, uint32_t shard)
{
    if (!m)
        return;
    struct gw_shard_counters *t, *s = shard_of(m, stream, shard, &t);
    s->read_throttled++;
    t->read_throttled++;
}

void gw_metrics_get(struct gw_metrics *m, const char *stream, uint32_t shard, uint64_t records,
                    uint64_t bytes, int64_t iterator_age_ms)
{
    if (!m)
        return;
    struct gw_shard_counters *t, *s = shard_of(m, stream, shard, &t);
    s->out_records += records;
    s->out_bytes += bytes;
    s->iterator_age_ms = iterator_age_ms;
    t->out_records += records;
    t->out_bytes += bytes;
}

int64_t gw_metrics_iterator_age(const struct gw_stream_counters *sc)
{
    /* The stream's age is its oldest shard's, as CloudWatch's Maximum
     * statistic reads it; taken at scrape time so a GetRecords costs O(1). */
    int64_t worst = 0;
    for (uint32_t i = 0; i < sc->nshards; i++)
        if (sc->shards[i].iterator_age_ms > worst)
            worst = sc->shards[i].iterator_age_ms;
    return worst;
}

void gw_metrics_push(struct gw_metrics *m, const char *stream, uint32_t shard,
                     const char *consumer_arn, uint64_t records, uint64_t bytes)
{
    if (!m)
        return;
    struct gw_shard_counters *t, *s = shard_of(m, stream, shard, &t);
    s->push_records += records;
    s->push_bytes += bytes;
    t->push_records += records;
    t->push_bytes += bytes;
    if (consumer_arn && *consumer_arn) {
        struct gw_consumer_counters *c = &table_get(&m->consumers, consumer_arn)->u.consumer;
        c->push_records += records;
        c->push_bytes += bytes;
    }
}

void gw_metrics_throttle_wait(struct gw_metrics *m, const char *consumer_arn, double seconds)
{
    if (!m || !consumer_arn || !*consumer_arn)
        return;
    table_get(&m->consumers, consumer_arn)->u.consumer.throttle_wait_seconds += seconds;
}

void gw_metrics_subscribed(struct gw_metrics *m, const char *consumer_arn)
{
    if (!m || !consumer_arn || !*consumer_arn)
        return;
    table_get(&m->consumers, consumer_arn)->u.consumer.subscriptions_total++;
}

const struct gw_stream_counters *gw_metrics_stream(const struct gw_metrics *m, const char *stream)
{
    const struct entry *e = m ? table_find(&m->streams, stream) : NULL;
    return e ? &e->u.stream : NULL;
}

const struct gw_consumer_counters *gw_metrics_consumer(const struct gw_metrics *m,
                                                       const char *consumer_arn)
{
    const struct entry *e = m ? table_find(&m->consumers, consumer_arn) : NULL;
    return e ? &e->u.consumer : NULL;
}

void gw_metrics_prune(struct gw_metrics *m, int (*alive)(void *arg, const char *stream),
                      int (*consumer_alive)(void *arg, const char *arn), void *arg)
{
    if (!m)
        return;
    table_prune(&m->streams, 1, alive, arg);
    table_prune(&m->consumers, 0, consumer_alive, arg);
}

/* ---- requests ------------------------------------------------------------- */

int gw_metrics_requests_init(struct gw_metrics *m, size_t nops, size_t nerrtypes)
{
    free(m->requests);
    free(m->latency);
    m->nops = nops;
    m->noutcomes = nerrtypes + 1;
    m->requests = xcalloc((nops + 1) * m->noutcomes, sizeof *m->requests);
    m->latency = xcalloc(nops + 1, sizeof *m->latency);
    for (size_t i = 0; i <= nops; i++)
        gw_hist_init(&m->latency[i], gw_latency_bounds, gw_latency_nbounds);
    return 0;
}

void gw_metrics_request(struct gw_metrics *m, size_t op, size_t outcome, double seconds)
{
    if (!m || !m->requests)
        return;
    if (op > m->nops)
        op = m->nops;
    if (outcome >= m->noutcomes)
        outcome = 0;
    m->requests[op * m->noutcomes + outcome]++;
    gw_hist_observe(&m->latency[op], seconds);
}

uint64_t gw_metrics_request_count(const struct gw_metrics *m, size_t op, size_t outcome)
{
    if (!m || !m->requests || op > m->nops || outcome >= m->noutcomes)
        return 0;
    return m->requests[op * m->noutcomes + outcome];
}

const struct gw_hist *gw_metrics_request_latency(const struct gw_metrics *m, size_t op)
{
    if (!m || !m->latency || op > m->nops)
        return NULL;
    return &m->latency[op];
}
