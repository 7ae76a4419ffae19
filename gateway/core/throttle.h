/* throttle.h - per-shard limits (--write-limit): 1,000 records/s and
 * 1 MiB/s of writes, and 5 GetRecords calls/s, per shard, as Kinesis
 * enforces them, with token buckets.
 *
 * Upstream: ops_records.c (PutRecord/PutRecords ask before appending),
 * transition.c (a deleted stream's shards are forgotten). Downstream:
 * ratelimit.h. */
#ifndef SLUICE_GW_THROTTLE_H
#define SLUICE_GW_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

struct store_shard;
struct gw_throttle;

/* With "enabled" false every take succeeds and nothing is allocated. */
struct gw_throttle *gw_throttle_new(bool enabled);
void gw_throttle_free(struct gw_throttle *t);

/* Takes "records" and "bytes" from "shard"'s buckets; false (nothing taken)
 * if that would exceed either limit. */
bool gw_throttle_take(struct gw_throttle *t, const struct store_shard *shard, uint32_t records,
                      uint64_t bytes);

/* Takes one GetRecords call from "shard"'s read bucket; false if there is
 * none left this second. */
bool gw_throttle_read(struct gw_throttle *t, const struct store_shard *shard);

/* Forgets every shard (a stream was deleted: its shard pointers may be
 * reused). Buckets start full again. */
void gw_throttle_forget(struct gw_throttle *t);

#endif
