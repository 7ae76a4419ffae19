/* ops_subscribe.c - SubscribeToShard on the Kinesis door (an event stream)
 * and GET /v1/streams/{stream}/consumers/{name}/shards/{shard}/subscribe on
 * the REST door (Server-Sent Events).
 *
 * Each validates its request, finds the ACTIVE consumer and the shard,
 * resolves the starting position (position.h, shared with GetShardIterator)
 * and hands the request to the fan-out engine (fanout.h), which streams the
 * reply from then on.
 *
 * Upstream: router.c. Downstream: position.h, fanout.h, store.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "fanout.h"
#include "json.h"
#include "ops.h"
#include "position.h"

/* Finds the consumer and its stream; it must be ACTIVE. */
static int find_consumer(struct gw_app *app, const char *arn, struct store_stream **stream,
                         struct store_consumer_info *ci, struct gw_error *err)
{
    if (gw_op_permitted_arn(app, arn, err) != 0)
        return -1;
    if (store_consumer_lookup_arn(app->store, arn, stream, ci, NULL) != 0)
        return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND, "Consumer %s not found.", arn);
    if (ci->status != STORE_CONSUMER_ACTIVE)
        return gw_error_set(err, GW_ERR_RESOURCE_IN_USE, "Consumer %s is not ACTIVE, instead in %s.",
                            arn, store_consumer_status_name(ci->status));
    return 0;
}

void op_subscribe_to_shard(struct gw_app *app, struct gw_req *req)
{
    struct gw_error err = {0};
    json_t *body = NULL, *sp;
    struct gw_valid v;
    gw_valid_init(&v, &err);
    const char *arn, *shard_id;
    int type = -1;
    struct gw_start st = {0};
    if (gw_op_body(req, &body, &err) != 0 ||
        gw_v_str(&v, body, "ConsumerARN", "consumerARN", GW_V_REQUIRED, 1, 2048,
                 "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/"
                 "[a-zA-Z0-9_.-]+:[0-9]+",
                 gw_match_consumer_arn, &arn) != 0 ||
        gw_v_str(&v, body, "ShardId", "shardId", GW_V_REQUIRED, 1, 128, "[a-zA-Z0-9_.-]+",
                 gw_match_name, &shard_id) != 0 ||
        gw_v_object(&v, body, "StartingPosition", "startingPosition", GW_V_REQUIRED, &sp) != 0)
        goto fail;
    if (sp && (gw_v_enum(&v, sp, "Type", "startingPosition.type", GW_V_REQUIRED,
                         gw_start_type_names, &type) != 0 ||
               gw_v_str(&v, sp, "SequenceNumber", "startingPosition.sequenceNumber", 0, 0,
                        SIZE_MAX, "0|([1-9]\\d{0,128})", gw_match_seqnum, &st.seq) != 0 ||
               gw_v_time(&v, sp, "Timestamp", "startingPosition.timestamp", 0, &st.ts_ms,
                         &st.has_ts) != 0))
        goto fail;
    if (gw_valid_done(&v) != 0)
        goto fail;
    struct store_stream *stream;
    struct store_consumer_info ci;
    if (find_consumer(app, arn, &stream, &ci, &err) != 0 ||
        gw_op_stream_readable(app, stream, &err) != 0)
        goto fail;
    struct store_shard *shard;
    if (store_stream_shard_lookup(stream, shard_id, &shard, NULL) != 0) {
        struct store_stream_info info;
        store_stream_info(stream, &info);
        gw_error_set(&err, GW_ERR_RESOURCE_NOT_FOUND,
                     "Shard %s in stream %s under account %s does not exist", shard_id, info.name,
                     app->cfg->account);
        goto fail;
    }
    st.type = (enum gw_start_type)type;
    struct store_stream_info info;
    store_stream_info(stream, &info);
    struct store_pos pos;
    if (gw_start_resolve(app, stream, shard, &st, GW_START_FOR_SUBSCRIBE, &pos, &err) != 0 ||
        gw_fanout_subscribe(app->fanout, req, GW_FANOUT_EVENT_STREAM, info.name, shard, arn, pos,
                            &err) != 0) /* copies "arn" from "body" */
        goto fail;
    json_decref(body);
    return;
fail:
    json_decref(body);
    gw_body_error(req, &err);
}

/* The SSE door: a consumer's subscription, or ("tail") a console's live
 * view of a shard that needs no consumer and takes nothing from one. */
static void rest_sse(struct gw_app *app, struct gw_req *req, bool tail)
{
    struct gw_error err = {0};
    /* The path's names become the members they name (gw_op_body) and are
     * validated as the Kinesis door's are: 1..128 characters of the model's
     * pattern, whatever length arrived. */
    json_t *body = NULL;
    struct gw_valid v;
    gw_valid_init(&v, &err);
    const char *stream_name, *stream_arn, *consumer = NULL, *shard_id;
    if (gw_op_body(req, &body, &err) != 0 ||
        gw_op_stream_fields(&v, body, true, &stream_name, &stream_arn) != 0 ||
        (!tail && gw_v_str(&v, body, "ConsumerName", "consumerName", GW_V_REQUIRED, 1, 128,
                           "[a-zA-Z0-9_.-]+", gw_match_name, &consumer) != 0) ||
        gw_v_str(&v, body, "ShardId", "shardId", GW_V_REQUIRED, 1, 128, "[a-zA-Z0-9_.-]+",
                 gw_match_name, &shard_id) != 0 ||
        gw_valid_done(&v) != 0)
        goto fail;
    struct store_stream *stream;
    struct store_consumer_info ci;
    if (gw_op_stream_lookup(app, stream_name, NULL, &stream, &err) != 0 ||
        gw_op_stream_readable(app, stream, &err) != 0)
        goto fail;
    if (tail) {
        ci.arn = NULL;
    } else if (store_consumer_lookup(stream, consumer, &ci, NULL) != 0) {
        gw_error_set(&err, GW_ERR_RESOURCE_NOT_FOUND, "Consumer %s of stream %s not found.",
                     consumer, stream_name);
        goto fail;
    }
    if (!tail && ci.status != STORE_CONSUMER_ACTIVE) {
        gw_error_set(&err, GW_ERR_RESOURCE_IN_USE, "Consumer %s is not ACTIVE.", consumer);
        goto fail;
    }
    struct store_shard *shard;
    if (store_stream_shard_lookup(stream, shard_id, &shard, NULL) != 0) {
        gw_error_set(&err, GW_ERR_RESOURCE_NOT_FOUND, "Shard %s in stream %s does not exist",
                     shard_id, stream_name);
        goto fail;
    }
    /* EventSource resumes with Last-Event-ID: continue after that record. */
    const char *last_id = gw_req_header(req, "last-event-id");
    const char *from = gw_req_query_param(req, "from");
    const char *seq = gw_req_query_param(req, "sequenceNumber");
    const char *ts_text = gw_req_query_param(req, "timestamp");
    struct gw_start st = {.type = GW_START_TRIM_HORIZON, .seq = seq};
    if (last_id && *last_id) {
        st.type = GW_START_AFTER_SEQUENCE;
        st.seq = last_id;
    } else if (from) {
        int type = -1;
        for (int i = 0; gw_start_type_names[i]; i++)
            if (strcmp(gw_start_type_names[i], from) == 0)
                type = i;
        st.type = (enum gw_start_type)type;
        if (type < 0) {
            gw_error_set(&err, GW_ERR_VALIDATION,
                         "1 validation error detected: Value '%s' at 'from' failed to satisfy "
                         "constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, "
                         "AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
                         from);
            goto fail;
        }
    }
    st.has_ts = ts_text != NULL;
    if (ts_text && gw_op_query_time(ts_text, "timestamp", &st.ts_ms, &err) != 0)
        goto fail;
    struct store_stream_info info;
    store_stream_info(stream, &info);
    struct store_pos pos;
    if (gw_start_resolve(app, stream, shard, &st, GW_START_FOR_SUBSCRIBE, &pos, &err) != 0 ||
        gw_fanout_subscribe(app->fanout, req, GW_FANOUT_SSE, info.name, shard, ci.arn, pos,
                            &err) != 0)
        goto fail;
    json_decref(body);
    return;
fail:
    json_decref(body);
    gw_body_error(req, &err);
}

void op_rest_subscribe(struct gw_app *app, struct gw_req *req)
{
    rest_sse(app, req, false);
}

void op_rest_tail(struct gw_app *app, struct gw_req *req)
{
    rest_sse(app, req, true);
}
