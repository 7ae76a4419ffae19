/* test_metrics.c - the counters registry (metrics.c): per stream and shard,
 * per consumer, requests by operation and outcome, pruning. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

Test(metrics, null_registry_is_a_no_op)
{
    gw_metrics_put(NULL, "s", 0, 1, 1);
    gw_metrics_push(NULL, "s", 0, "arn", 1, 1);
    gw_metrics_request(NULL, 0, 0, 0.1);
    cr_assert_null(gw_metrics_stream(NULL, "s"));
    cr_assert_eq(gw_metrics_request_count(NULL, 0, 0), 0);
}

Test(metrics, shard_counters_sum_into_the_stream)
{
    struct gw_metrics *m = gw_metrics_new();
    cr_assert_null(gw_metrics_stream(m, "a"));
    gw_metrics_put(m, "a", 0, 2, 20);
    gw_metrics_put(m, "a", 9, 3, 30); /* grows the shard array past its first size */
    gw_metrics_write_throttled(m, "a", 9);
    gw_metrics_read_throttled(m, "a", 1);
    gw_metrics_get(m, "a", 9, 4, 40, 1500);
    gw_metrics_get(m, "a", 0, 1, 10, 200);
    gw_metrics_push(m, "a", 0, "arn:c1", 5, 50);
    gw_metrics_push(m, "a", 0, "", 1, 10); /* a tail: the stream only */
    const struct gw_stream_counters *c = gw_metrics_stream(m, "a");
    cr_assert_not_null(c);
    cr_assert_geq(c->nshards, 10);
    cr_assert_eq(c->total.in_records, 5);
    cr_assert_eq(c->total.in_bytes, 50);
    cr_assert_eq(c->shards[9].in_records, 3);
    cr_assert_eq(c->shards[9].write_throttled, 1);
    cr_assert_eq(c->total.write_throttled, 1);
    cr_assert_eq(c->total.read_throttled, 1);
    cr_assert_eq(c->total.out_records, 5);
    cr_assert_eq(c->total.push_records, 6);
    cr_assert_eq(c->total.push_bytes, 60);
    /* The stream's iterator age is its oldest shard's. */
    cr_assert_eq(gw_metrics_iterator_age(c), 1500);
    gw_metrics_get(m, "a", 9, 0, 0, 0); /* shard 9 caught up */
    cr_assert_eq(gw_metrics_iterator_age(c), 200);
    const struct gw_consumer_counters *cc = gw_metrics_consumer(m, "arn:c1");
    cr_assert_not_null(cc);
    cr_assert_eq(cc->push_records, 5);
    cr_assert_eq(cc->push_bytes, 50);
    cr_assert_null(gw_metrics_consumer(m, ""));
    gw_metrics_free(m);
}

Test(metrics, many_streams_and_consumers)
{
    struct gw_metrics *m = gw_metrics_new();
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "s%d", i);
        gw_metrics_put(m, name, (uint32_t)(i % 7), (uint64_t)i, 1);
        gw_metrics_throttle_wait(m, name, 0.5);
        gw_metrics_subscribed(m, name);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "s%d", i);
        cr_assert_eq(gw_metrics_stream(m, name)->total.in_records, (uint64_t)i);
        cr_assert_eq(gw_metrics_consumer(m, name)->throttle_wait_seconds, 0.5);
        cr_assert_eq(gw_metrics_consumer(m, name)->subscriptions_total, 1);
    }
    gw_metrics_free(m);
}

static int keep_even(void *arg, const char *name)
{
    (void)arg;
    return (name[strlen(name) - 1] - '0') % 2 == 0;
}

Test(metrics, prune_drops_what_is_gone)
{
    struct gw_metrics *m = gw_metrics_new();
    gw_metrics_put(m, "s1", 0, 1, 1);
    gw_metrics_put(m, "s2", 0, 1, 1);
    gw_metrics_push(m, "s2", 0, "c3", 1, 1);
    gw_metrics_push(m, "s2", 0, "c4", 1, 1);
    gw_metrics_prune(m, keep_even, keep_even, NULL);
    cr_assert_null(gw_metrics_stream(m, "s1"));
    cr_assert_not_null(gw_metrics_stream(m, "s2"));
    cr_assert_null(gw_metrics_consumer(m, "c3"));
    cr_assert_not_null(gw_metrics_consumer(m, "c4"));
    /* A stream re-created under a pruned name starts from zero. */
    gw_metrics_put(m, "s1", 0, 7, 1);
    cr_assert_eq(gw_metrics_stream(m, "s1")->total.in_records, 7);
    gw_metrics_free(m);
}

Test(metrics, requests_by_operation_and_outcome)
{
    struct gw_metrics *m = gw_metrics_new();
    gw_metrics_requests_init(m, 3, 5);
    gw_metrics_request(m, 0, 0, 0.0002);
    gw_metrics_request(m, 0, 2, 0.003);
    gw_metrics_request(m, 2, 0, 20);
    gw_metrics_request(m, 99, 0, 0.001);   /* past the table: the "unknown" slot */
    gw_metrics_request(m, SIZE_MAX, 0, 0); /* no operation at all: also unknown */
    gw_metrics_request(m, 1, 99, 0.001);   /* an outcome out of range counts as ok */
    cr_assert_eq(gw_metrics_request_count(m, 0, 0), 1);
    cr_assert_eq(gw_metrics_request_count(m, 0, 2), 1);
    cr_assert_eq(gw_metrics_request_count(m, 3, 0), 2);
    cr_assert_eq(gw_metrics_request_count(m, 1, 0), 1);
    const struct gw_hist *h = gw_metrics_request_latency(m, 2);
    cr_assert_eq(h->count, 1);
    cr_assert_eq(h->counts[h->nbounds], 1); /* 20 s is above every bound */
    cr_assert_float_eq(h->sum, 20.0, 1e-9);
    h = gw_metrics_request_latency(m, 0);
    cr_assert_eq(h->count, 2);
    cr_assert_eq(h->counts[1], 1); /* 0.0002 <= 0.00025 */
    gw_metrics_free(m);
}
