/* subscribe.h - enhanced fan-out: SubscribeToShard pushed over a streamed
 * reply (event stream on the Kinesis door, Server-Sent Events on the REST
 * door), one token bucket per consumer-shard subscription.
 *
 * Upstream: router.c (op_subscribe_to_shard, op_rest_subscribe);
 * ops_consumers.c and ops_streams.c end subscriptions when their consumer or
 * stream goes away. Downstream: store.h (cursor reads, shard listeners),
 * eventstream.c (framing), ratelimit.c (token buckets). */
#ifndef SLUICE_GW_SUBSCRIBE_H
#define SLUICE_GW_SUBSCRIBE_H

#include "router.h"

void op_subscribe_to_shard(struct gw_app *app, struct gw_req *req);
/* GET /v1/streams/{stream}/consumers/{name}/shards/{shard}/subscribe */
void op_rest_subscribe(struct gw_app *app, struct gw_req *req);

/* Ends every live subscription of consumer "consumer_arn" (NULL: of every
 * consumer of stream "stream") with a "exception_type" message, and drops
 * their store handles at once (so the stream may be deleted right after). */
void gw_sub_end(struct gw_app *app, const char *stream, const char *consumer_arn,
                const char *exception_type, const char *message);

/* Live subscriptions (for /healthz and tests). */
size_t gw_sub_count(const struct gw_app *app);

#endif
