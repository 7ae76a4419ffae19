/* metrics.h - the gateway's counters: what /metrics (Prometheus) and
 * /v1/stats (the console) report.
 *
 * Counting is cheap and always on: plain integers bumped on the loop thread
 * (the only thread that serves requests), looked up by stream name or
 * consumer ARN in small hash tables. Per-shard counters are kept for every
 * shard; whether they are *shown* is the exposition's choice (streams with
 * enhanced monitoring, or all with --metrics-all-shards), so enabling
 * monitoring shows history rather than starting from zero.
 *
 * Entries for streams and consumers that no longer exist are dropped by
 * gw_metrics_prune(), which the scrape calls with the live set; a stream
 * re-created under the same name starts again from zero (Prometheus sees an
 * ordinary counter reset).
 *
 * Upstream: ops_records.c (puts, reads, throttles), fanout.c (pushes, token
 * bucket waits), router.c (requests and their latency). Downstream: the
 * exposition in ops_metrics.c. */
#ifndef SLUICE_GW_METRICS_H
#define SLUICE_GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* A histogram with fixed upper bounds (in base units: seconds, records...).
 * counts[i] counts observations <= bounds[i] and > bounds[i-1]; the last
 * slot, counts[nbounds], those above every bound. Cumulative sums are made
 * when exposed. */
#define GW_HIST_MAX_BOUNDS 24
struct gw_hist {
    const double *bounds;
    size_t nbounds;
    uint64_t counts[GW_HIST_MAX_BOUNDS + 1];
    uint64_t count;
    double sum;
};

void gw_hist_init(struct gw_hist *h, const double *bounds, size_t nbounds);
void gw_hist_observe(struct gw_hist *h, double v);

/* Request latency buckets, seconds (100 us .. 10 s). */
extern const double gw_latency_bounds[];
extern const size_t gw_latency_nbounds;

/* Counters of one shard, indexed by shard index within its stream. */
struct gw_shard_counters {
    uint64_t in_records, in_bytes;   /* acknowledged puts */
    uint64_t out_records, out_bytes; /* GetRecords */
    uint64_t push_records, push_bytes;
    uint64_t write_throttled, read_throttled;
    int64_t iterator_age_ms; /* of the last GetRecords answer; 0 if caught up. Per shard
                              * only: see gw_metrics_iterator_age() for the stream's. */
};

/* Counters of one stream: the sums of its shards' plus what is per stream. */
struct gw_stream_counters {
    struct gw_shard_counters total;
    struct gw_shard_counters *shards; /* nshards entries, grown on demand */
    uint32_t nshards;
};

/* Counters of one consumer (by ARN); survive its subscriptions. */
struct gw_consumer_counters {
    uint64_t push_records, push_bytes;
    double throttle_wait_seconds; /* time subscriptions waited for tokens */
    uint64_t subscriptions_total; /* subscriptions started */
};

struct gw_metrics;

struct gw_metrics *gw_metrics_new(void);
void gw_metrics_free(struct gw_metrics *m); /* NULL is fine */

/* Every counting call accepts m == NULL (tests without an app). */
void gw_metrics_put(struct gw_metrics *m, const char *stream, uint32_t shard, uint64_t records,
                    uint64_t bytes);
void gw_metrics_write_throttled(struct gw_metrics *m, const char *stream, uint32_t shard);
void gw_metrics_read_throttled(struct gw_metrics *m, const char *stream, uint32_t shard);
void gw_metrics_get(struct gw_metrics *m, const char *stream, uint32_t shard, uint64_t records,
                    uint64_t bytes, int64_t iterator_age_ms);
/* A push to a consumer ("consumer_arn" NULL or "": a console tail, counted
 * for the stream only). */
void gw_metrics_push(struct gw_metrics *m, const char *stream, uint32_t shard,
                     const char *consumer_arn, uint64_t records, uint64_t bytes);
void gw_metrics_throttle_wait(struct gw_metrics *m, const char *consumer_arn, double seconds);
void gw_metrics_subscribed(struct gw_metrics *m, const char *consumer_arn);

/* The stream's iterator age: its oldest shard's. */
int64_t gw_metrics_iterator_age(const struct gw_stream_counters *sc);

/* Lookups for the exposition; NULL if nothing was counted yet. */
const struct gw_stream_counters *gw_metrics_stream(const struct gw_metrics *m, const char *stream);
const struct gw_consumer_counters *gw_metrics_consumer(const struct gw_metrics *m,
                                                       const char *consumer_arn);

/* Drops every stream entry for which "alive(arg, name)" is false, and every
 * consumer entry for which "consumer_alive(arg, arn)" is false. */
void gw_metrics_prune(struct gw_metrics *m, int (*alive)(void *arg, const char *stream),
                      int (*consumer_alive)(void *arg, const char *arn), void *arg);

/* ---- the scrape itself ---- */

/* One slice of a /metrics scrape held the loop for "seconds". */
void gw_metrics_scrape_slice(struct gw_metrics *m, double seconds);
/* Their histogram (never NULL; empty for m == NULL). */
const struct gw_hist *gw_metrics_scrape_slices(const struct gw_metrics *m);

/* ---- requests ---- */

/* Operations are identified by their row in the router's table (0..nops-1);
 * one more slot, nops, is for requests that matched no operation.
 * Outcomes are "ok" (0) or a Kinesis error type (1 + enum gw_errtype). */
int gw_metrics_requests_init(struct gw_metrics *m, size_t nops, size_t nerrtypes);
void gw_metrics_request(struct gw_metrics *m, size_t op, size_t outcome, double seconds);
uint64_t gw_metrics_request_count(const struct gw_metrics *m, size_t op, size_t outcome);
const struct gw_hist *gw_metrics_request_latency(const struct gw_metrics *m, size_t op);

#endif
