/* position.c - starting positions of readers (see position.h). */
#include "position.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "ops.h"

const char *const gw_start_type_names[] = {"AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER",
                                           "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", NULL};

static const enum store_pos_type store_type[] = {
    [GW_START_AT_SEQUENCE] = STORE_POS_AT_SEQUENCE,
    [GW_START_AFTER_SEQUENCE] = STORE_POS_AFTER_SEQUENCE,
    [GW_START_TRIM_HORIZON] = STORE_POS_TRIM_HORIZON,
    [GW_START_LATEST] = STORE_POS_LATEST,
    [GW_START_AT_TIMESTAMP] = STORE_POS_AT_TIMESTAMP,
};

static int check_seq(struct gw_app *app, const struct store_stream_info *info,
                     const struct store_shard_info *si, const struct gw_start *st,
                     enum gw_start_caller caller, struct store_seq *seq, struct gw_error *err)
{
    const char *type = gw_start_type_names[st->type];
    if (!st->seq)
        return caller == GW_START_FOR_ITERATOR
                   ? gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                  "StartingSequenceNumber must be provided for ShardIteratorType "
                                  "%s.",
                                  type)
                   : gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                  "StartingPosition.SequenceNumber must be provided for type %s.",
                                  type);
    bool parsed = store_seq_parse(st->seq, strlen(st->seq), seq, NULL) == 0;
    if (caller == GW_START_FOR_SUBSCRIBE) {
        if (!parsed || seq->shard != si->index)
            return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                "Invalid StartingSequenceNumber %s for shard %s.", st->seq, si->id);
        return 0;
    }
    if (!parsed)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "StartingSequenceNumber %s used in GetShardIterator on shard %s in "
                            "stream %s under account %s is invalid.",
                            st->seq, si->id, info->name, app->cfg->account);
    if (seq->shard != si->index)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Invalid StartingSequenceNumber. It encodes shardId-%012u, while it "
                            "was used in a call to a shard with %s",
                            (unsigned)seq->shard, si->id);
    return 0;
}

static int check_time(const struct gw_start *st, enum gw_start_caller caller,
                      struct gw_error *err)
{
    bool iter = caller == GW_START_FOR_ITERATOR;
    if (!st->has_ts)
        return iter ? gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                   "Must specify timestampInMillis parameter for iterator of type "
                                   "AT_TIMESTAMP. Current request has no timestamp parameter.")
                    : gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                   "StartingPosition.Timestamp must be provided for type "
                                   "AT_TIMESTAMP.");
    int64_t now = gw_app_now_ms();
    if (st->ts_ms <= now)
        return 0;
    return iter ? gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                               "The timestampInMillis parameter cannot be greater than the "
                               "currentTimestampInMillis. timestampInMillis: %lld, "
                               "currentTimestampInMillis: %lld",
                               (long long)st->ts_ms, (long long)now)
                : gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                               "StartingPosition.Timestamp cannot be in the future.");
}

int gw_start_resolve(struct gw_app *app, struct store_stream *stream, struct store_shard *shard,
                     const struct gw_start *st, enum gw_start_caller caller, struct store_pos *out,
                     struct gw_error *err)
{
    struct store_stream_info info;
    struct store_shard_info si;
    store_stream_info(stream, &info);
    store_shard_info(shard, &si);
    struct store_seq seq = {0};
    bool by_seq = st->type == GW_START_AT_SEQUENCE || st->type == GW_START_AFTER_SEQUENCE;
    if (by_seq && check_seq(app, &info, &si, st, caller, &seq, err) != 0)
        return -1;
    if (st->type == GW_START_AT_TIMESTAMP && check_time(st, caller, err) != 0)
        return -1;
    struct store_err se = {0};
    if (store_shard_position(shard, store_type[st->type], by_seq ? &seq : NULL, st->ts_ms, out,
                             &se) != 0)
        return gw_op_store_error(&se, err);
    return 0;
}
