/* fanout.h - the enhanced fan-out engine: live subscriptions, grouped by
 * shard, each pushed through its own token bucket.
 *
 * A subscription is (consumer, shard, position, token bucket, streamed
 * reply). The store wakes a shard's subscriptions when an append becomes
 * readable; gw_fanout_deliver() (called by loop.c, before producers are
 * acknowledged) pushes to each of them; the transport pulls more as the peer
 * takes it. Each event is framed once per shard position and reused by every
 * subscription at that position. A slow reader is simply not pulled: it
 * costs at most one event of buffering, never drops records, and falls
 * behind (MillisBehindLatest says by how much).
 *
 * Upstream: ops_subscribe.c (starts subscriptions), ops_streams.c and
 * ops_consumers.c (end them when their stream or consumer goes), loop.c
 * (delivery), ops_admin.c (count). Downstream: store.h (cursor reads, shard
 * listeners), eventstream.h (framing), ratelimit.h (buckets). */
#ifndef SLUICE_GW_FANOUT_H
#define SLUICE_GW_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "request.h"
#include "store.h"

struct event_base;
struct gw_fanout;
struct gw_metrics;

/* "metrics" (may be NULL) is borrowed: pushes and token waits count there. */
struct gw_fanout *gw_fanout_new(struct event_base *base, const struct gw_config *cfg,
                                struct gw_metrics *metrics);
/* Frees the engine; every subscription must have ended (the server, freed
 * first, aborts their requests). NULL is fine. */
void gw_fanout_free(struct gw_fanout *f);

enum gw_fanout_format {
    GW_FANOUT_EVENT_STREAM, /* application/vnd.amazon.eventstream (the Kinesis door) */
    GW_FANOUT_SSE,          /* text/event-stream (the REST door, browsers) */
};

/* Starts pushing shard "shard" of stream "stream" from "start" to consumer
 * "consumer_arn" over "req" (the reply becomes a stream). "consumer_arn"
 * NULL is a console tail: no consumer, any number per shard. A live
 * subscription of the same consumer to the same shard younger than 5 s is
 * refused (ResourceInUseException); an older one is ended, as Kinesis hands
 * a shard to the newer call. Returns 0, or -1 with "err" set and "req"
 * untouched. */
int gw_fanout_subscribe(struct gw_fanout *f, struct gw_req *req, enum gw_fanout_format fmt,
                        const char *stream, struct store_shard *shard, const char *consumer_arn,
                        struct store_pos start, struct gw_error *err);

/* Ends every live subscription of consumer "consumer_arn" (NULL: of every
 * consumer) of stream "stream" with an "exception_type" message, and drops
 * their store handles at once (so the stream may be deleted right after). */
void gw_fanout_end(struct gw_fanout *f, const char *stream, const char *consumer_arn,
                   const char *exception_type, const char *message);

/* Another gateway took over the subscription of "consumer_arn" to shard
 * "shard" of "stream": the one here ends with ResourceInUseException. */
void gw_fanout_taken(struct gw_fanout *f, const char *stream, uint32_t shard,
                     const char *consumer_arn);

/* Pushes to every subscription the store woke since the last call, writing
 * to their connections now. Called by loop.c after each commit and sync
 * result, before the producers' acknowledgements. NULL is fine. */
void gw_fanout_deliver(struct gw_fanout *f);

/* Live subscriptions (for /healthz and tests). */
size_t gw_fanout_count(const struct gw_fanout *f);

/* One live subscription, as metrics and the console show it (strings
 * borrowed for the call). */
struct gw_fanout_sub_info {
    const char *stream;
    uint32_t shard;           /* index */
    const char *consumer_arn; /* "" for a console tail */
    enum gw_fanout_format fmt;
    int64_t started_ms;
    uint64_t pushed_records, pushed_bytes;
    int64_t millis_behind;     /* of the last event sent */
    uint64_t rate_bytes_per_s; /* its token bucket's rate (--consumer-rate) */
    bool throttled;            /* records are waiting for tokens now */
};

/* Calls "fn" for every live subscription. "fn" must not start or end any. */
void gw_fanout_each(const struct gw_fanout *f,
                    void (*fn)(void *arg, const struct gw_fanout_sub_info *info), void *arg);

#endif
