/* ops_reshard.c - SplitShard, MergeShards and UpdateShardCount.
 *
 * Upstream: router.c (both doors). Downstream: the store's resharding calls
 * (store.h), transition.c (the stream is UPDATING for --stream-delay, then
 * ACTIVE again).
 *
 * Each answers only once the reshard is durable and every append made to
 * the shards it closed has been acknowledged (the store's on_done, through
 * gw_op_defer): a write acknowledged after the reply is therefore never in
 * a closed shard. Reads and writes go on meanwhile; writes route to the new
 * shards at once. Messages follow the service's wording
 * (docs/protocol.md §1.1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "mem.h"
#include "ops.h"
#include "transition.h"

#define DAY_MS (24 * 3600 * 1000LL)

static const char *const scaling_types[] = {"UNIFORM_SCALING", NULL};

/* A shard of "s" by id: ResourceNotFoundException in the service's words. */
static int shard_find(struct gw_app *app, struct store_stream *s, const char *id,
                      struct store_shard **out, struct store_shard_info *si, struct gw_error *err)
{
    struct store_stream_info info;
    store_stream_info(s, &info);
    if (store_stream_shard_lookup(s, id, out, NULL) != 0)
        return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND,
                            "Could not find shard %s in stream %s under account %s.", id,
                            info.name, app->cfg->account);
    store_shard_info(*out, si);
    return 0;
}

static int not_open(struct gw_app *app, const char *stream, const struct store_shard_info *si,
                    const char *what, struct gw_error *err)
{
    return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                        "Shard %s in stream %s under account %s has already been merged or split, "
                        "and thus is not eligible for %s.",
                        si->id, stream, app->cfg->account, what);
}

/* Adding "add" open shards must stay within --shard-limit. */
static int shard_room(struct gw_app *app, uint32_t add, struct gw_error *err)
{
    uint32_t current = gw_op_open_shard_total(app);
    if ((uint64_t)current + add <= app->cfg->shard_limit)
        return 0;
    return gw_error_set(err, GW_ERR_LIMIT_EXCEEDED,
                        "This request would exceed the shard limit for the account %s in %s. "
                        "Current limit of shards is %u, current number of shards is %u, and the "
                        "request would add %u shards.",
                        app->cfg->account, app->cfg->region, app->cfg->shard_limit, current, add);
}

/* Starts the store call through "start" with the deferred reply; on
 * success the stream turns UPDATING for --stream-delay. */
static int reshard_started(struct gw_app *app, const char *stream, int rc,
                           const struct store_err *se, struct gw_error *err)
{
    if (rc != 0) {
        gw_op_undefer();
        return gw_op_store_error(se, err);
    }
    gw_transition_stream_update(app, stream);
    return 0;
}

/* ---- SplitShard ------------------------------------------------------------------ */

int op_split_shard(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                   struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn, *shard_id, *key;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_str(&v, body, "ShardToSplit", "shardToSplit", GW_V_REQUIRED, 1, 128,
                 "[a-zA-Z0-9_.-]+", gw_match_name, &shard_id) != 0 ||
        gw_v_str(&v, body, "NewStartingHashKey", "newStartingHashKey", GW_V_REQUIRED, 1, 39,
                 "0|([1-9]\\d{0,38})", gw_match_hashkey, &key) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    struct store_stream_info info;
    if (gw_op_active_stream(app, name, arn, &s, &info, err) != 0)
        return -1;
    struct store_shard *sh;
    struct store_shard_info si;
    if (shard_find(app, s, shard_id, &sh, &si, err) != 0)
        return -1;
    if (!si.open)
        return not_open(app, info.name, &si, "splitting", err);
    struct store_hashkey k, lo;
    char a[STORE_HASHKEY_STRLEN], b[STORE_HASHKEY_STRLEN];
    store_hashkey_format(&si.hash_start, a);
    store_hashkey_format(&si.hash_end, b);
    /* Both children must hold a key, and the lower one more than one: the
     * service wants start + 1 < key <= end. "key" is at most 2^128-1 as a
     * number only if it parses. */
    int bad = store_hashkey_parse(key, strlen(key), &k, NULL) != 0;
    if (!bad) {
        lo = si.hash_start;
        for (int i = 15; i >= 0 && ++lo.be[i] == 0; i--) /* lo = start + 1 (no overflow: */
            ;                                            /* an open shard ends above it) */
        bad = store_hashkey_cmp(&k, &lo) <= 0 || store_hashkey_cmp(&k, &si.hash_end) > 0;
    }
    if (bad)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "NewStartingHashKey %s used in SplitShard() on shard %s in stream %s "
                            "under account %s is not both greater than one plus the shard's "
                            "StartingHashKey %s and at most the shard's EndingHashKey %s.",
                            key, si.id, info.name, app->cfg->account, a, b);
    if (shard_room(app, 1, err) != 0)
        return -1;
    struct store_err se = {0};
    int rc = store_stream_split(s, sh, &k, gw_op_deferred_done, gw_op_defer(), &se);
    if (reshard_started(app, info.name, rc, &se, err) != 0)
        return -1;
    gw_log(GW_LOG_INFO, "shard_split", "stream=%s shard=%s key=%s", info.name, si.id, key);
    *out = NULL;
    return 0;
}

/* ---- MergeShards ----------------------------------------------------------------- */

int op_merge_shards(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                    struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn, *id1, *id2;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_str(&v, body, "ShardToMerge", "shardToMerge", GW_V_REQUIRED, 1, 128,
                 "[a-zA-Z0-9_.-]+", gw_match_name, &id1) != 0 ||
        gw_v_str(&v, body, "AdjacentShardToMerge", "adjacentShardToMerge", GW_V_REQUIRED, 1, 128,
                 "[a-zA-Z0-9_.-]+", gw_match_name, &id2) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    struct store_stream_info info;
    if (gw_op_active_stream(app, name, arn, &s, &info, err) != 0)
        return -1;
    struct store_shard *a, *b;
    struct store_shard_info ai, bi;
    if (shard_find(app, s, id1, &a, &ai, err) != 0 || shard_find(app, s, id2, &b, &bi, err) != 0)
        return -1;
    if (!ai.open)
        return not_open(app, info.name, &ai, "merging", err);
    if (!bi.open)
        return not_open(app, info.name, &bi, "merging", err);
    struct store_err se = {0};
    int rc = a == b ? STORE_EINVAL
                    : store_stream_merge(s, a, b, gw_op_deferred_done, gw_op_defer(), &se);
    if (rc == STORE_EINVAL) {
        gw_op_undefer();
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Shards %s and %s in stream %s under account %s are not an adjacent "
                            "pair of shards eligible for merging",
                            ai.id, bi.id, info.name, app->cfg->account);
    }
    if (reshard_started(app, info.name, rc, &se, err) != 0)
        return -1;
    gw_log(GW_LOG_INFO, "shards_merged", "stream=%s shard=%s adjacent=%s", info.name, ai.id,
           bi.id);
    *out = NULL;
    return 0;
}

/* ---- UpdateShardCount ------------------------------------------------------------ */

/* The times of each stream's recent scalings (in memory: a restart forgets
 * them, which only ever allows more). */
struct gw_scalings {
    struct gw_scalings *next;
    char stream[STORE_STREAM_NAME_MAX + 1];
    int64_t *at; /* oldest first */
    size_t n;
};

void gw_op_scalings_free(struct gw_scalings *s)
{
    while (s) {
        struct gw_scalings *next = s->next;
        free(s->at);
        free(s);
        s = next;
    }
}

static struct gw_scalings *scalings_of(struct gw_app *app, const char *stream, int64_t now)
{
    struct gw_scalings *s = app->scalings;
    while (s && strcmp(s->stream, stream) != 0)
        s = s->next;
    if (!s) {
        s = xcalloc(1, sizeof *s);
        snprintf(s->stream, sizeof s->stream, "%s", stream);
        s->next = app->scalings;
        app->scalings = s;
    }
    size_t drop = 0;
    while (drop < s->n && now - s->at[drop] >= DAY_MS)
        drop++;
    if (drop) {
        memmove(s->at, s->at + drop, (s->n - drop) * sizeof *s->at);
        s->n -= drop;
    }
    return s;
}

int op_update_shard_count(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                          struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn;
    int64_t target = 0;
    int type;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_int(&v, body, "TargetShardCount", "targetShardCount", GW_V_REQUIRED, 1, INT32_MAX,
                 &target, NULL) != 0 ||
        gw_v_enum(&v, body, "ScalingType", "scalingType", GW_V_REQUIRED, scaling_types, &type) !=
            0 ||
        gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    struct store_stream_info info;
    if (gw_op_active_stream(app, name, arn, &s, &info, err) != 0)
        return -1;
    uint32_t current = info.open_shard_count;
    if (target > 2 * (int64_t)current || target * 2 < (int64_t)current)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "UpdateShardCount cannot scale the stream %s under account %s from "
                            "%u to %lld shards: the target must be at least half and at most "
                            "double the current count.",
                            info.name, app->cfg->account, current, (long long)target);
    if (target > STORE_MAX_SHARDS)
        return gw_error_set(err, GW_ERR_LIMIT_EXCEEDED,
                            "UpdateShardCount cannot scale the stream %s under account %s to "
                            "%lld shards: at most %d shards per stream.",
                            info.name, app->cfg->account, (long long)target, STORE_MAX_SHARDS);
    if (target > current && shard_room(app, (uint32_t)target - current, err) != 0)
        return -1;
    int64_t now = gw_app_now_ms();
    struct gw_scalings *hist = scalings_of(app, info.name, now);
    if (app->cfg->scalings_per_day && hist->n >= app->cfg->scalings_per_day)
        return gw_error_set(err, GW_ERR_LIMIT_EXCEEDED,
                            "Stream %s under account %s has been scaled %zu times in the last "
                            "24 hours, the most allowed (--scalings-per-day).",
                            info.name, app->cfg->account, hist->n);
    struct store_err se = {0};
    int rc = store_stream_scale(s, (uint32_t)target, gw_op_deferred_done, gw_op_defer(), &se);
    if (reshard_started(app, info.name, rc, &se, err) != 0)
        return -1;
    hist->at = xrealloc(hist->at, (hist->n + 1) * sizeof *hist->at);
    hist->at[hist->n++] = now;
    gw_log(GW_LOG_INFO, "shard_count_updated", "stream=%s from=%u to=%lld", info.name, current,
           (long long)target);
    *out = json_pack("{s:s, s:s, s:I, s:I}", "StreamName", info.name, "StreamARN", info.arn,
                     "CurrentShardCount", (json_int_t)current, "TargetShardCount",
                     (json_int_t)target);
    return 0;
}
