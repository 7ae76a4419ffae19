/* position.h - where a reader starts: GetShardIterator's ShardIteratorType
 * and SubscribeToShard's StartingPosition resolved to a store position.
 *
 * Both operations take the same five types with the same rules (a sequence
 * number of this shard for AT_/AFTER_SEQUENCE_NUMBER, a timestamp not in the
 * future for AT_TIMESTAMP); one resolver serves both, and only the error
 * texts differ, because Kinesis words them differently per operation.
 *
 * Upstream: ops_records.c (GetShardIterator), ops_subscribe.c
 * (SubscribeToShard, the REST subscribe). Downstream: store.h. */
#ifndef SLUICE_GW_POSITION_H
#define SLUICE_GW_POSITION_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

struct gw_app;

enum gw_start_type {
    GW_START_AT_SEQUENCE,
    GW_START_AFTER_SEQUENCE,
    GW_START_TRIM_HORIZON,
    GW_START_LATEST,
    GW_START_AT_TIMESTAMP,
};

/* The wire names, in enum order, NULL-terminated (for gw_v_enum). */
extern const char *const gw_start_type_names[];

/* Whose words an error is given in. */
enum gw_start_caller { GW_START_FOR_ITERATOR, GW_START_FOR_SUBSCRIBE };

struct gw_start {
    enum gw_start_type type;
    const char *seq; /* AT_/AFTER_SEQUENCE_NUMBER: decimal text; NULL if absent */
    bool has_ts;     /* AT_TIMESTAMP */
    int64_t ts_ms;
};

/* Resolves "st" on "shard" of "stream" into "*out". InvalidArgumentException
 * for a missing or foreign sequence number or timestamp, a store error as
 * its Kinesis error. Returns 0 or -1. */
int gw_start_resolve(struct gw_app *app, struct store_stream *stream, struct store_shard *shard,
                     const struct gw_start *st, enum gw_start_caller caller, struct store_pos *out,
                     struct gw_error *err);

#endif
