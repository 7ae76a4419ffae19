/* ops.h - operation handlers, one group per ops_*.c file; each is one row of
 * router.c's table. Shared helpers for handlers live in ops_util.c. */
#ifndef SLUICE_GW_OPS_H
#define SLUICE_GW_OPS_H

#include <jansson.h>

#include "json.h"
#include "reply.h"
#include "router.h"
#include "store.h"

/* ops_admin.c */
void op_healthz(struct gw_app *app, struct gw_req *req);

/* ops_streams.c */
void op_create_stream(struct gw_app *app, struct gw_req *req);
void op_delete_stream(struct gw_app *app, struct gw_req *req);
void op_describe_stream(struct gw_app *app, struct gw_req *req);
void op_describe_stream_summary(struct gw_app *app, struct gw_req *req);
void op_list_streams(struct gw_app *app, struct gw_req *req);
void op_list_shards(struct gw_app *app, struct gw_req *req);
void op_increase_retention(struct gw_app *app, struct gw_req *req);
void op_decrease_retention(struct gw_app *app, struct gw_req *req);
void op_describe_limits(struct gw_app *app, struct gw_req *req);
void op_enable_enhanced_monitoring(struct gw_app *app, struct gw_req *req);
void op_disable_enhanced_monitoring(struct gw_app *app, struct gw_req *req);
void op_start_stream_encryption(struct gw_app *app, struct gw_req *req);
void op_stop_stream_encryption(struct gw_app *app, struct gw_req *req);
void op_update_stream_mode(struct gw_app *app, struct gw_req *req);
void op_update_max_record_size(struct gw_app *app, struct gw_req *req);
/* Sets the server's request body limit for the widest record any stream
 * takes (at start, and after UpdateMaxRecordSize). */
void gw_op_apply_record_limits(struct gw_app *app);
/* Open shards across all streams (the --shard-limit account limit). */
uint32_t gw_op_open_shard_total(struct gw_app *app);

/* ops_records.c */
void op_put_record(struct gw_app *app, struct gw_req *req);
void op_put_records(struct gw_app *app, struct gw_req *req);
void op_get_shard_iterator(struct gw_app *app, struct gw_req *req);
void op_get_records(struct gw_app *app, struct gw_req *req);
/* GET /v1/streams/{stream}/shards/{shard}/records?from=POSITION&limit=N */
void op_rest_get_records(struct gw_app *app, struct gw_req *req);

/* ops_resources.c */
void op_add_tags(struct gw_app *app, struct gw_req *req);
void op_remove_tags(struct gw_app *app, struct gw_req *req);
void op_list_tags(struct gw_app *app, struct gw_req *req);
void op_tag_resource(struct gw_app *app, struct gw_req *req);
void op_untag_resource(struct gw_app *app, struct gw_req *req);
void op_list_tags_for_resource(struct gw_app *app, struct gw_req *req);
void op_put_resource_policy(struct gw_app *app, struct gw_req *req);
void op_get_resource_policy(struct gw_app *app, struct gw_req *req);
void op_delete_resource_policy(struct gw_app *app, struct gw_req *req);
/* A Tags map (CreateStream, AddTagsToStream, TagResource): 1..200 entries,
 * keys 1..128 and values 0..256 characters of the allowed set. */
int gw_op_tags_validate(struct gw_valid *v, json_t *tags, struct gw_error *err);

/* ops_account.c */
void op_describe_account_settings(struct gw_app *app, struct gw_req *req);
void op_update_account_settings(struct gw_app *app, struct gw_req *req);

/* ops_reshard.c */
void op_split_shard(struct gw_app *app, struct gw_req *req);
void op_merge_shards(struct gw_app *app, struct gw_req *req);
void op_update_shard_count(struct gw_app *app, struct gw_req *req);
/* Frees the record of recent scalings (UpdateShardCount's daily limit). */
struct gw_scalings;
void gw_op_scalings_free(struct gw_scalings *s);

/* ops_consumers.c */
void op_register_consumer(struct gw_app *app, struct gw_req *req);
void op_describe_consumer(struct gw_app *app, struct gw_req *req);
void op_list_consumers(struct gw_app *app, struct gw_req *req);
void op_deregister_consumer(struct gw_app *app, struct gw_req *req);

/* ops_subscribe.c */
void op_subscribe_to_shard(struct gw_app *app, struct gw_req *req);
/* GET /v1/streams/{stream}/consumers/{name}/shards/{shard}/subscribe */
void op_rest_subscribe(struct gw_app *app, struct gw_req *req);

/* ---- ops_util.c ------------------------------------------------------------ */

/* The body of a JSON-in/JSON-out operation: reads "body", sets "*out" (new,
 * NULL for an empty answer) or fails with "err". */
typedef int (*gw_op_body_fn)(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                             struct gw_error *err);
/* Runs such an operation: decodes the body (either door), calls "fn", and
 * answers. With "mutates", the answer waits until the catalog change is in a
 * durable manifest (store_catalog_sync), as an acknowledgement promises. */
void gw_op_run(struct gw_app *app, struct gw_req *req, gw_op_body_fn fn, bool mutates);
/* Inside the body function of a mutating operation whose change completes
 * later than its catalog record (a reshard also waits for the appends to
 * the shards it closes): returns the argument to pass, with
 * gw_op_deferred_done, as the store call's completion; the answer then
 * waits for that callback instead of a catalog sync. If the store call
 * fails, call gw_op_undefer() before returning the error. */
void *gw_op_defer(void);
void gw_op_undefer(void);
void gw_op_deferred_done(void *arg, const struct store_err *se);

/* Calls "fn" for every stream (a copy of the names is taken first, so "fn"
 * may change the catalog). */
void gw_op_each_stream(struct gw_app *app, void (*fn)(struct store_stream *s, void *arg),
                       void *arg);

/* Decodes the request body for operation "req" into "*body" (new), merging
 * REST path parameters ({stream} -> StreamName, {shard} -> ShardId) and, for
 * REST requests without a body, starting from an empty object. */
int gw_op_body(struct gw_req *req, json_t **body, struct gw_error *err);

/* Reads StreamName and StreamARN from "body" into "*name"/"*arn" (borrowed),
 * validating both. With "required", one of them must be present. */
int gw_op_stream_fields(struct gw_valid *v, json_t *body, bool required, const char **name,
                        const char **arn);
/* Finds the stream given by "name" and/or "arn" (they must agree).
 * ResourceNotFoundException in the service's words. */
int gw_op_stream_lookup(struct gw_app *app, const char *name, const char *arn,
                        struct store_stream **out, struct gw_error *err);
/* The stream must be ACTIVE (or UPDATING) for data-plane operations:
 * ResourceNotFoundException otherwise, as Kinesis answers. */
int gw_op_stream_readable(struct gw_app *app, struct store_stream *s, struct gw_error *err);
/* The stream must be ACTIVE for control-plane changes: ResourceInUseException. */
int gw_op_stream_active(struct gw_app *app, struct store_stream *s, struct gw_error *err);

/* A Shard object for DescribeStream/ListShards. Returns new. */
json_t *gw_op_shard_json(const struct store_shard_info *si);
/* ChildShards of a closed shard: an array of {ShardId, ParentShards,
 * HashKeyRange}, as GetRecords and SubscribeToShard end a shard with. */
void gw_op_child_shards(struct gw_reply *w, const struct store_shard *sh);
/* StreamModeDetails. Returns new. */
json_t *gw_op_mode_json(const struct store_stream *s);

/* Opaque, tamper-evident tokens (shard iterators, NextTokens): "kind" tags
 * the use, "payload" is sealed with an HMAC keyed by the app and the issue
 * time. gw_op_token_make returns new text (free()). gw_op_token_open checks
 * the HMAC and the kind, copies the payload (at most "cap" bytes) and its
 * length, and the issue time in ms. Returns 0 or -1 (not a valid token). */
char *gw_op_token_make(struct gw_app *app, char kind, const void *payload, size_t len);
int gw_op_token_open(struct gw_app *app, char kind, const char *token, void *payload, size_t cap,
                     size_t *len, int64_t *issued_ms);

struct evbuffer;
/* Appends bytes "p" as a JSON string (the bytes must be valid UTF-8), as the
 * reply writer's JSON back end writes strings. */
void gw_op_json_string(struct evbuffer *out, const uint8_t *p, size_t n);
/* Writes one Record object ({SequenceNumber, ApproximateArrivalTimestamp,
 * Data (blob), PartitionKey}) as GetRecords answers it, in "w"'s format,
 * without building a jansson tree. */
void gw_op_record(struct gw_reply *w, const struct store_record *r);
/* gw_op_record as JSON text appended to "out": SubscribeToShard's event
 * payloads, which are JSON whatever the request's encoding. */
void gw_op_record_json(struct evbuffer *out, const struct store_record *r);

/* The REST door's "timestamp" query parameter (epoch seconds, a fraction
 * for milliseconds) named "name", in ms. Anything but one finite decimal
 * number within the JSON door's range (|seconds| <= 1e14, see gw_v_time) is
 * a ValidationException: the conversion to an integer is never undefined. */
int gw_op_query_time(const char *text, const char *name, int64_t *ms, struct gw_error *err);

/* Answers a store error as its Kinesis error. */
int gw_op_store_error(const struct store_err *se, struct gw_error *err);

#endif
