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

/* ops_console.c: the web console's embedded files, GET/HEAD /dashboard,
 * /dashboard/ and /dashboard/{asset} (served without credentials). */
void op_console(struct gw_app *app, struct gw_req *req);

/* ops_streams.c */
gw_op_body_t op_create_stream;
gw_op_body_t op_delete_stream;
gw_op_body_t op_describe_stream;
gw_op_body_t op_describe_stream_summary;
gw_op_body_t op_list_streams;
gw_op_body_t op_list_shards;
gw_op_body_t op_increase_retention;
gw_op_body_t op_decrease_retention;
gw_op_body_t op_describe_limits;
gw_op_body_t op_enable_enhanced_monitoring;
gw_op_body_t op_disable_enhanced_monitoring;
gw_op_body_t op_start_stream_encryption;
gw_op_body_t op_stop_stream_encryption;
gw_op_body_t op_update_stream_mode;
gw_op_body_t op_update_max_record_size;
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
gw_op_body_t op_add_tags;
gw_op_body_t op_remove_tags;
gw_op_body_t op_list_tags;
gw_op_body_t op_tag_resource;
gw_op_body_t op_untag_resource;
gw_op_body_t op_list_tags_for_resource;
gw_op_body_t op_put_resource_policy;
gw_op_body_t op_get_resource_policy;
gw_op_body_t op_delete_resource_policy;
/* A Tags map (CreateStream, AddTagsToStream, TagResource): 1..200 entries,
 * keys 1..128 and values 0..256 characters of the allowed set. */
int gw_op_tags_validate(struct gw_valid *v, json_t *tags, struct gw_error *err);

/* ops_account.c */
gw_op_body_t op_describe_account_settings;
gw_op_body_t op_update_account_settings;

/* ops_reshard.c */
gw_op_body_t op_split_shard;
gw_op_body_t op_merge_shards;
gw_op_body_t op_update_shard_count;
/* Frees the record of recent scalings (UpdateShardCount's daily limit). */
struct gw_scalings;
void gw_op_scalings_free(struct gw_scalings *s);

/* ops_consumers.c */
gw_op_body_t op_register_consumer;
gw_op_body_t op_describe_consumer;
gw_op_body_t op_list_consumers;
gw_op_body_t op_deregister_consumer;

/* ops_subscribe.c */
void op_subscribe_to_shard(struct gw_app *app, struct gw_req *req);
/* GET /v1/streams/{stream}/consumers/{name}/shards/{shard}/subscribe */
void op_rest_subscribe(struct gw_app *app, struct gw_req *req);
/* GET /v1/streams/{stream}/shards/{shard}/tail: a shard's records as
 * Server-Sent Events without a consumer (the console's live tail). */
void op_rest_tail(struct gw_app *app, struct gw_req *req);

/* ops_metrics.c: GET /metrics (Prometheus) and GET /v1/stats (console). */
void op_metrics(struct gw_app *app, struct gw_req *req);
void op_stats(struct gw_app *app, struct gw_req *req);

/* ---- ops_util.c ------------------------------------------------------------ */

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

/* The caller of the operation about to run (router.c; NULL: none, or no
 * authentication) and the operation's name, for gw_op_permitted. */
struct gw_principal;
void gw_op_set_caller(const struct gw_principal *who, const char *op);
/* Whether the caller may use stream "stream": 0, or -1 with
 * AccessDeniedException in "err". gw_op_stream_lookup asks it; operations
 * that find streams otherwise (by consumer ARN, by a new name) ask it too. */
int gw_op_permitted(struct gw_app *app, const char *stream, struct gw_error *err);
/* The same for the stream a stream or consumer ARN names. */
int gw_op_permitted_arn(struct gw_app *app, const char *arn, struct gw_error *err);
/* True when the caller may use only some streams. */
bool gw_op_caller_restricted(void);

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

/* gw_op_stream_lookup, then gw_op_stream_active, then the stream's info:
 * the start of every control-plane change. */
int gw_op_active_stream(struct gw_app *app, const char *name, const char *arn,
                        struct store_stream **out, struct store_stream_info *info,
                        struct gw_error *err);
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
