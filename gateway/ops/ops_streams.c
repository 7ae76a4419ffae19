/* ops_streams.c - the stream control plane: CreateStream, DeleteStream,
 * DescribeStream, DescribeStreamSummary, ListStreams, ListShards, retention,
 * enhanced monitoring, encryption, UpdateStreamMode, UpdateMaxRecordSize,
 * DescribeLimits. Tags and resource
 * policies are in ops_resources.c.
 *
 * Upstream: router.c (both doors). Downstream: the store catalog (store.h).
 * Each handler: decode and validate the whole request (ValidationException
 * lists every constraint violation), then resolve resources
 * (ResourceNotFoundException), then act. Nothing changes unless the request
 * is valid. Messages follow the service's wording (docs/protocol.md §1.1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "fanout.h"
#include "log.h"
#include "mem.h"
#include "ops.h"
#include "server.h"
#include "transition.h"

#define LIST_MAX 100        /* DescribeStream, ListStreams: at most 100 per page */
#define LIST_SHARDS_MAX 1000
#define TOKEN_TTL_MS 300000 /* NextToken lifetime */

static const char *const modes[] = {"PROVISIONED", "ON_DEMAND", NULL};

struct stream_totals {
    uint32_t open_shards, creating, on_demand;
};

static void add_totals(struct store_stream *s, void *arg)
{
    struct stream_totals *t = arg;
    struct store_stream_info info;
    store_stream_info(s, &info);
    t->open_shards += info.open_shard_count;
    t->creating += info.status == STORE_STREAM_CREATING;
    t->on_demand += info.on_demand ? 1 : 0;
}

static struct stream_totals totals(struct gw_app *app)
{
    struct stream_totals t = {0};
    gw_op_each_stream(app, add_totals, &t);
    return t;
}

uint32_t gw_op_open_shard_total(struct gw_app *app)
{
    return totals(app).open_shards;
}

/* ---- CreateStream ------------------------------------------------------------- */

#define MAX_CREATING 5 /* the service allows five streams in CREATING at once */

int op_create_stream(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                     struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name;
    int64_t count = 0;
    bool has_count;
    json_t *details, *tags;
    int mode = -1;
    if (gw_v_str(&v, body, "StreamName", "streamName", GW_V_REQUIRED, 1, 128, "[a-zA-Z0-9_.-]+",
                 gw_match_name, &name) != 0 ||
        gw_v_int(&v, body, "ShardCount", "shardCount", 0, 1, 1000000, &count, &has_count) != 0 ||
        gw_v_object(&v, body, "StreamModeDetails", "streamModeDetails", 0, &details) != 0 ||
        (details && gw_v_enum(&v, details, "StreamMode", "streamModeDetails.streamMode",
                              GW_V_REQUIRED, modes, &mode) != 0) ||
        gw_v_object(&v, body, "Tags", "tags", 0, &tags) != 0)
        return -1;
    /* Without StreamModeDetails a stream is PROVISIONED and needs a
     * ShardCount (docs/protocol.md §1.1). */
    bool on_demand = details && mode == 1;
    if (!on_demand && mode != 1 && !json_object_get(body, "ShardCount"))
        gw_valid_add(&v, NULL, "shardCount", "not be null");
    if (gw_valid_done(&v) != 0)
        return -1;
    if (on_demand && has_count)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "ShardCount cannot be specified for a stream in ON_DEMAND mode.");
    if (tags && gw_op_tags_validate(&v, tags, err) != 0)
        return -1;
    if (gw_op_permitted(app, name, err) != 0)
        return -1;
    uint32_t shards = on_demand ? app->cfg->on_demand_shards : (uint32_t)count;
    struct stream_totals tot = totals(app);
    uint32_t current = tot.open_shards;
    if (shards > STORE_MAX_SHARDS || current + (uint64_t)shards > app->cfg->shard_limit)
        return gw_error_set(err, GW_ERR_LIMIT_EXCEEDED,
                            "This request would exceed the shard limit for the account %s in %s. "
                            "Current limit of shards is %u, current number of shards is %u, and "
                            "the request would add %u shards.",
                            app->cfg->account, app->cfg->region, app->cfg->shard_limit, current,
                            shards);
    struct store_stream *s;
    if (store_stream_lookup(app->store, name, &s, NULL) == 0)
        return gw_error_set(err, GW_ERR_RESOURCE_IN_USE,
                            "Stream %s under account %s already exists.", name, app->cfg->account);
    if (tot.creating >= MAX_CREATING)
        return gw_error_set(err, GW_ERR_LIMIT_EXCEEDED,
                            "Account %s has %d streams in CREATING state, the most allowed at "
                            "once; retry when one is ACTIVE.",
                            app->cfg->account, MAX_CREATING);
    struct store_err se = {0};
    if (store_stream_create(app->store, name, shards, &s, &se) != 0)
        return gw_op_store_error(&se, err);
    store_stream_set_on_demand(s, on_demand);
    if (tags) {
        size_t n = json_object_size(tags), i = 0;
        struct store_tag *t = xcalloc(n ? n : 1, sizeof *t);
        const char *k;
        json_t *val;
        json_object_foreach(tags, k, val) {
            t[i].key = k;
            t[i].value = json_string_value(val);
            i++;
        }
        int rc = store_stream_tags_add(s, t, n, &se);
        free(t);
        if (rc != 0) {
            store_stream_delete(app->store, name, NULL);
            return gw_op_store_error(&se, err);
        }
    }
    gw_log(GW_LOG_INFO, "stream_created", "stream=%s shards=%u mode=%s", name, shards,
           on_demand ? "ON_DEMAND" : "PROVISIONED");
    /* The stream turns ACTIVE (and so takes writes) only after --stream-delay
     * counted from the moment its creation is durable: records must never be
     * acknowledged for a stream a crash could forget. */
    gw_transition_stream_created(app, name);
    *out = NULL;
    return 0;
}

/* ---- DeleteStream -------------------------------------------------------------- */

int op_delete_stream(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                     struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn;
    bool enforce = false;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_bool(&v, body, "EnforceConsumerDeletion", "enforceConsumerDeletion", &enforce,
                  NULL) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    if (gw_op_stream_lookup(app, name, arn, &s, err) != 0)
        return -1;
    struct store_stream_info info;
    store_stream_info(s, &info);
    if (info.consumer_count > 0 && !enforce)
        return gw_error_set(err, GW_ERR_RESOURCE_IN_USE,
                            "Stream %s under account %s has registered consumers; deregister "
                            "them or set EnforceConsumerDeletion.",
                            info.name, app->cfg->account);
    gw_log(GW_LOG_INFO, "stream_deleting", "stream=%s", info.name);
    /* Subscriptions hold the stream's shards: end them before it goes. */
    gw_fanout_end(app->fanout, info.name, NULL, "ResourceNotFoundException",
                  "The stream was deleted.");
    gw_transition_stream_delete(app, info.name);
    *out = NULL;
    return 0;
}

/* ---- enhanced monitoring ----------------------------------------------------------- */

/* The model's MetricsName values; the store keeps bit i for metric i. "ALL"
 * stands for all seven and is never stored. */
static const char *const metric_names[] = {
    "IncomingBytes",  "IncomingRecords",
    "OutgoingBytes",  "OutgoingRecords",
    "WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds", "ALL", NULL};
#define METRIC_ALL 7
#define METRICS_EVERY ((1u << METRIC_ALL) - 1)

/* The enabled metrics as a JSON array, in the model's order. Returns new. */
static json_t *metrics_json(uint32_t mask)
{
    json_t *a = json_array();
    for (int i = 0; i < METRIC_ALL; i++)
        if (mask & (1u << i))
            json_array_append_new(a, json_string(metric_names[i]));
    return a;
}

static int enhanced_monitoring(struct gw_app *app, json_t *body, bool enable, json_t **out,
                               struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn;
    json_t *list;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_array(&v, body, "ShardLevelMetrics", "shardLevelMetrics", GW_V_REQUIRED, 1, 7,
                   &list) != 0)
        return -1;
    uint32_t mask = 0;
    bool bad = false;
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        if (!json_is_string(m))
            return gw_error_set(err, GW_ERR_SERIALIZATION,
                                "ShardLevelMetrics must be an array of strings");
        int k = -1;
        for (int j = 0; metric_names[j]; j++)
            if (strcmp(metric_names[j], json_string_value(m)) == 0)
                k = j;
        if (k < 0)
            bad = true;
        else
            mask |= k == METRIC_ALL ? METRICS_EVERY : 1u << k;
    }
    if (bad) {
        /* Reported as the service does: the whole list, then the set. */
        char text[600] = "[";
        json_array_foreach(list, i, m) {
            size_t len = strlen(text);
            snprintf(text + len, sizeof text - len, "%s%s", i ? ", " : "",
                     json_is_string(m) ? json_string_value(m) : "");
        }
        strncat(text, "]", sizeof text - strlen(text) - 1);
        gw_valid_add(&v, text, "shardLevelMetrics",
                     "satisfy constraint: [Member must satisfy enum value set: [IncomingBytes, "
                     "IncomingRecords, OutgoingBytes, OutgoingRecords, "
                     "WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, "
                     "IteratorAgeMilliseconds, ALL]]");
    }
    if (gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    struct store_stream_info info;
    if (gw_op_active_stream(app, name, arn, &s, &info, err) != 0)
        return -1;
    uint32_t before = info.shard_metrics;
    uint32_t after = enable ? before | mask : before & ~mask;
    store_stream_set_shard_metrics(s, after);
    gw_log(GW_LOG_INFO, "enhanced_monitoring", "stream=%s metrics=0x%x", info.name, after);
    *out = json_pack("{s:s, s:s, s:o, s:o}", "StreamName", info.name, "StreamARN", info.arn,
                     "CurrentShardLevelMetrics", metrics_json(before),
                     "DesiredShardLevelMetrics", metrics_json(after));
    return 0;
}

int op_enable_enhanced_monitoring(struct gw_app *app, struct gw_req *req, json_t *body,
                                  json_t **out, struct gw_error *err)
{
    return enhanced_monitoring(app, body, true, out, err);
}

int op_disable_enhanced_monitoring(struct gw_app *app, struct gw_req *req, json_t *body,
                                   json_t **out, struct gw_error *err)
{
    return enhanced_monitoring(app, body, false, out, err);
}

/* ---- server-side encryption ----------------------------------------------------------- */

/* StartStreamEncryption / StopStreamEncryption. The key id is recorded and
 * reported (DescribeStream, EncryptionType on writes); nothing is encrypted
 * with it (docs/protocol.md). The stream is UPDATING for --stream-delay, as
 * on AWS while the change rolls out. */
static int stream_encryption(struct gw_app *app, json_t *body, bool start, struct gw_error *err)
{
    static const char *const types[] = {"NONE", "KMS", NULL};
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn, *key;
    int type;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_enum(&v, body, "EncryptionType", "encryptionType", GW_V_REQUIRED, types, &type) != 0 ||
        gw_v_str(&v, body, "KeyId", "keyId", GW_V_REQUIRED, 1, STORE_KMS_KEY_ID_MAX, NULL, NULL,
                 &key) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    if (type != 1)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "EncryptionType NONE is not valid for %s; use KMS.",
                            start ? "StartStreamEncryption" : "StopStreamEncryption");
    struct store_stream *s;
    struct store_stream_info info;
    if (gw_op_active_stream(app, name, arn, &s, &info, err) != 0)
        return -1;
    struct store_err se = {0};
    if (store_stream_set_kms_key(s, start ? key : NULL, &se) != 0)
        return gw_op_store_error(&se, err);
    gw_log(GW_LOG_INFO, "stream_encryption", "stream=%s type=%s", info.name,
           start ? "KMS" : "NONE");
    gw_transition_stream_update(app, info.name);
    return 0;
}

int op_start_stream_encryption(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                               struct gw_error *err)
{
    *out = NULL;
    return stream_encryption(app, body, true, err);
}

int op_stop_stream_encryption(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                              struct gw_error *err)
{
    *out = NULL;
    return stream_encryption(app, body, false, err);
}

/* ---- DescribeStream / DescribeStreamSummary ------------------------------------ */

static void describe_common(struct gw_app *app, struct store_stream *s, json_t *o)
{
    struct store_stream_info info;
    store_stream_info(s, &info);
    json_object_set_new(o, "StreamName", json_string(info.name));
    json_object_set_new(o, "StreamARN", json_string(info.arn));
    json_object_set_new(o, "StreamStatus", json_string(store_stream_status_name(info.status)));
    json_object_set_new(o, "StreamModeDetails", gw_op_mode_json(s));
    json_object_set_new(o, "RetentionPeriodHours", json_integer(info.retention_hours));
    json_object_set_new(o, "StreamCreationTimestamp", gw_json_time(info.created_ms));
    json_object_set_new(o, "EnhancedMonitoring",
                        json_pack("[{s:o}]", "ShardLevelMetrics",
                                  metrics_json(info.shard_metrics)));
    json_object_set_new(o, "EncryptionType", json_string(info.encryption_type));
    json_object_set_new(o, "MaxRecordSizeInKiB", json_integer(info.max_record_kib));
    if (info.kms_key_id)
        json_object_set_new(o, "KeyId", json_string(info.kms_key_id));
}

/* ---- shard lifetimes (ListShards' filters, retention) --------------------------- */

/* When a shard opened (its stream's creation, or when its parents closed)
 * and closed (INT64_MAX while open). */
struct shard_span {
    int64_t start_ms, end_ms;
};

static struct shard_span shard_span(struct store_stream *s, const struct store_stream_info *info,
                                    const struct store_shard_info *si)
{
    struct shard_span sp = {info->created_ms, INT64_MAX};
    struct store_shard *parent;
    if (si->parent_id && store_stream_shard_lookup(s, si->parent_id, &parent, NULL) == 0) {
        struct store_shard_info pi;
        store_shard_info(parent, &pi);
        if (pi.closed_ms > 0)
            sp.start_ms = pi.closed_ms;
    }
    if (!si->open)
        sp.end_ms = si->closed_ms > 0 ? si->closed_ms : sp.start_ms;
    return sp;
}

/* The trim horizon as a time: nothing older is retained, and nothing is
 * older than the stream. */
static int64_t trim_horizon_ms(const struct store_stream_info *info)
{
    int64_t th = gw_app_now_ms() - (int64_t)info->retention_hours * 3600 * 1000;
    return th > info->created_ms ? th : info->created_ms;
}

/* Whether a shard is listed: a closed shard disappears once everything it
 * held has expired, i.e. once it closed before the trim horizon. */
static bool shard_retained(const struct shard_span *sp, int64_t th)
{
    return sp->end_ms >= th;
}

int op_describe_stream(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                       struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn, *start;
    int64_t limit = LIST_MAX;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_int(&v, body, "Limit", "limit", 0, 1, 10000, &limit, NULL) != 0 ||
        gw_v_str(&v, body, "ExclusiveStartShardId", "exclusiveStartShardId", 0, 1, 128,
                 "[a-zA-Z0-9_.-]+", gw_match_name, &start) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    if (limit > LIST_MAX)
        limit = LIST_MAX;
    struct store_stream *s;
    if (gw_op_stream_lookup(app, name, arn, &s, err) != 0)
        return -1;
    uint32_t n = store_stream_shard_count(s), first = 0;
    if (start) {
        /* Shards after the given id, by index; an unknown id lists from the
         * next index it would have. */
        struct store_shard *sh;
        if (store_stream_shard_lookup(s, start, &sh, NULL) == 0) {
            struct store_shard_info si;
            store_shard_info(sh, &si);
            first = si.index + 1;
        } else {
            const char *dash = strrchr(start, '-');
            first = dash ? (uint32_t)strtoul(dash + 1, NULL, 10) + 1 : 0;
        }
    }
    json_t *d = json_object(), *shards = json_array();
    describe_common(app, s, d);
    struct store_stream_info info;
    store_stream_info(s, &info);
    int64_t th = trim_horizon_ms(&info);
    uint32_t i = first;
    for (; i < n && json_array_size(shards) < (size_t)limit; i++) {
        struct store_shard_info si;
        store_shard_info(store_stream_shard(s, i), &si);
        struct shard_span sp = shard_span(s, &info, &si);
        if (shard_retained(&sp, th))
            json_array_append_new(shards, gw_op_shard_json(&si));
    }
    json_object_set_new(d, "Shards", shards);
    json_object_set_new(d, "HasMoreShards", json_boolean(i < n));
    *out = json_pack("{s:o}", "StreamDescription", d);
    return 0;
}

int op_describe_stream_summary(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                               struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 || gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    if (gw_op_stream_lookup(app, name, arn, &s, err) != 0)
        return -1;
    struct store_stream_info info;
    store_stream_info(s, &info);
    json_t *d = json_object();
    describe_common(app, s, d);
    json_object_set_new(d, "OpenShardCount", json_integer(info.open_shard_count));
    json_object_set_new(d, "ConsumerCount", json_integer(info.consumer_count));
    *out = json_pack("{s:o}", "StreamDescriptionSummary", d);
    return 0;
}

/* ---- ListStreams ----------------------------------------------------------------- */

static int token_error(const char *what, struct gw_error *err)
{
    return gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "Invalid %s.", what);
}

int op_list_streams(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                    struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *start, *token;
    int64_t limit = LIST_MAX;
    if (gw_v_int(&v, body, "Limit", "limit", 0, 1, 10000, &limit, NULL) != 0 ||
        gw_v_str(&v, body, "ExclusiveStartStreamName", "exclusiveStartStreamName", 0, 1, 128,
                 "[a-zA-Z0-9_.-]+", gw_match_name, &start) != 0 ||
        gw_v_str(&v, body, "NextToken", "nextToken", 0, 1, 1048576, NULL, NULL, &token) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    if (limit > LIST_MAX)
        limit = LIST_MAX;
    char after[STORE_STREAM_NAME_MAX + 1] = "";
    if (token) {
        if (start)
            return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                "NextToken and ExclusiveStartStreamName cannot be provided "
                                "together.");
        size_t n;
        int64_t issued;
        if (gw_op_token_open(app, 'L', token, after, sizeof after - 1, &n, &issued) != 0)
            return token_error("NextToken", err);
        after[n] = '\0';
        if (gw_app_now_ms() - issued > TOKEN_TTL_MS)
            return gw_error_set(err, GW_ERR_EXPIRED_NEXT_TOKEN, "The NextToken has expired.");
    } else if (start) {
        snprintf(after, sizeof after, "%s", start);
    }
    const char *names[LIST_MAX + 1];
    size_t n = store_stream_list(app->store, after[0] ? after : NULL, names, (size_t)limit + 1);
    bool more = n > (size_t)limit;
    if (more)
        n = (size_t)limit;
    json_t *arr = json_array(), *sums = json_array();
    for (size_t i = 0; i < n; i++) {
        struct store_stream *s;
        /* A key kept to some streams lists those only. */
        if (gw_op_permitted(app, names[i], NULL) != 0 ||
            store_stream_lookup(app->store, names[i], &s, NULL) != 0)
            continue;
        json_array_append_new(arr, json_string(names[i]));
        struct store_stream_info info;
        store_stream_info(s, &info);
        json_array_append_new(
            sums, json_pack("{s:s, s:s, s:s, s:o, s:o}", "StreamName", info.name, "StreamARN",
                            info.arn, "StreamStatus", store_stream_status_name(info.status),
                            "StreamModeDetails", gw_op_mode_json(s), "StreamCreationTimestamp",
                            gw_json_time(info.created_ms)));
    }
    *out = json_pack("{s:o, s:b, s:o}", "StreamNames", arr, "HasMoreStreams", more,
                     "StreamSummaries", sums);
    if (more) {
        char *t = gw_op_token_make(app, 'L', names[n - 1], strlen(names[n - 1]));
        json_object_set_new(*out, "NextToken", json_string(t));
        free(t);
    }
    return 0;
}

/* ---- ListShards --------------------------------------------------------------------- */

static const char *const filter_types[] = {"AFTER_SHARD_ID", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON",
                                           "AT_LATEST", "AT_TIMESTAMP", "FROM_TIMESTAMP", NULL};

/* The NextToken of ListShards: which stream (name and creation time, so a
 * recreated stream does not continue an old listing) and the next index. */
struct shards_token {
    int64_t created_ms;
    uint32_t next;
    int32_t filter;      /* ShardFilter type, -1 none */
    int64_t filter_ms;   /* its Timestamp */
    char name[STORE_STREAM_NAME_MAX + 1];
};

/* Whether ShardFilter type "f" (index into filter_types, -1 none) with
 * timestamp "t" lists the shard, as the service defines the types. */
static bool filter_keeps(int f, int64_t t, const struct shard_span *sp, int64_t th)
{
    switch (f) {
    case 1: /* AT_TRIM_HORIZON: open at the trim horizon */
        return sp->start_ms <= th && sp->end_ms >= th;
    case 3: /* AT_LATEST: open now */
        return sp->end_ms == INT64_MAX;
    case 4: /* AT_TIMESTAMP: open at t */
        return sp->start_ms <= t && sp->end_ms >= t;
    case 5: /* FROM_TIMESTAMP: open at t or later (t below the horizon is the horizon) */
        return sp->end_ms >= (t > th ? t : th);
    default: /* none, AFTER_SHARD_ID, FROM_TRIM_HORIZON: everything retained */
        return shard_retained(sp, th);
    }
}

int op_list_shards(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                   struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn, *token, *start, *filter_shard = NULL;
    int64_t max = LIST_SHARDS_MAX, created = 0;
    bool has_created, has_filter_ts = false;
    int64_t filter_ts = 0;
    json_t *filter;
    int ftype = -1;
    if (gw_op_stream_fields(&v, body, false, &name, &arn) != 0 ||
        gw_v_str(&v, body, "NextToken", "nextToken", 0, 1, 1048576, NULL, NULL, &token) != 0 ||
        gw_v_str(&v, body, "ExclusiveStartShardId", "exclusiveStartShardId", 0, 1, 128,
                 "[a-zA-Z0-9_.-]+", gw_match_name, &start) != 0 ||
        gw_v_int(&v, body, "MaxResults", "maxResults", 0, 1, 10000, &max, NULL) != 0 ||
        gw_v_time(&v, body, "StreamCreationTimestamp", "streamCreationTimestamp", 0, &created,
                  &has_created) != 0 ||
        gw_v_object(&v, body, "ShardFilter", "shardFilter", 0, &filter) != 0)
        return -1;
    if (filter &&
        (gw_v_enum(&v, filter, "Type", "shardFilter.type", GW_V_REQUIRED, filter_types, &ftype) !=
             0 ||
         gw_v_str(&v, filter, "ShardId", "shardFilter.shardId", 0, 1, 128, "[a-zA-Z0-9_.-]+",
                  gw_match_name, &filter_shard) != 0 ||
         gw_v_time(&v, filter, "Timestamp", "shardFilter.timestamp", 0, &filter_ts,
                   &has_filter_ts) != 0))
        return -1;
    if (gw_valid_done(&v) != 0)
        return -1;
    if (max > LIST_SHARDS_MAX)
        max = LIST_SHARDS_MAX;
    bool named = name || arn;
    if (token && named)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "NextToken and StreamName cannot be provided together.");
    if (!token && !named)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Either NextToken or StreamName should be provided.");
    if (token && (start || has_created))
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "NextToken cannot be provided together with %s.",
                            start ? "ExclusiveStartShardId" : "StreamCreationTimestamp");
    if (ftype == 0 && !filter_shard)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "ShardFilter of type AFTER_SHARD_ID requires a ShardId.");
    if ((ftype == 4 || ftype == 5) && !has_filter_ts)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "ShardFilter of type %s requires a Timestamp.", filter_types[ftype]);
    struct store_stream *s;
    uint32_t first = 0;
    if (token) {
        struct shards_token t;
        size_t n;
        int64_t issued;
        if (gw_op_token_open(app, 'S', token, &t, sizeof t, &n, &issued) != 0 || n != sizeof t)
            return token_error("NextToken", err);
        t.name[STORE_STREAM_NAME_MAX] = '\0';
        if (gw_app_now_ms() - issued > TOKEN_TTL_MS)
            return gw_error_set(err, GW_ERR_EXPIRED_NEXT_TOKEN, "The NextToken has expired.");
        if (gw_op_stream_lookup(app, t.name, NULL, &s, err) != 0)
            return -1;
        struct store_stream_info info;
        store_stream_info(s, &info);
        if (info.created_ms != t.created_ms)
            return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND,
                                "Stream %s under account %s not found.", t.name,
                                app->cfg->account);
        first = t.next;
        ftype = t.filter;
        filter_ts = t.filter_ms;
        has_filter_ts = true;
    } else {
        if (gw_op_stream_lookup(app, name, arn, &s, err) != 0)
            return -1;
        struct store_stream_info info;
        store_stream_info(s, &info);
        if (has_created && info.created_ms / 1000 != created / 1000)
            return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND,
                                "Stream %s under account %s created at that time not found.",
                                info.name, app->cfg->account);
        const char *after = start ? start : (ftype == 0 ? filter_shard : NULL);
        if (after) {
            const char *dash = strrchr(after, '-');
            first = dash ? (uint32_t)strtoul(dash + 1, NULL, 10) + 1 : 0;
        }
    }
    struct store_stream_info info;
    store_stream_info(s, &info);
    int64_t th = trim_horizon_ms(&info);
    uint32_t n = store_stream_shard_count(s), i = first;
    json_t *arr = json_array();
    for (; i < n && json_array_size(arr) < (size_t)max; i++) {
        struct store_shard_info si;
        store_shard_info(store_stream_shard(s, i), &si);
        struct shard_span sp = shard_span(s, &info, &si);
        if (filter_keeps(ftype, has_filter_ts ? filter_ts : 0, &sp, th))
            json_array_append_new(arr, gw_op_shard_json(&si));
    }
    *out = json_pack("{s:o}", "Shards", arr);
    if (i < n) {
        struct shards_token t = {.created_ms = info.created_ms,
                                 .next = i,
                                 .filter = ftype,
                                 .filter_ms = has_filter_ts ? filter_ts : 0};
        snprintf(t.name, sizeof t.name, "%s", info.name);
        char *tok = gw_op_token_make(app, 'S', &t, sizeof t);
        json_object_set_new(*out, "NextToken", json_string(tok));
        free(tok);
    }
    return 0;
}

/* ---- retention ------------------------------------------------------------------------ */

static int retention(struct gw_app *app, json_t *body, bool increase, struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn;
    int64_t hours = 0;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_int(&v, body, "RetentionPeriodHours", "retentionPeriodHours", GW_V_REQUIRED,
                 INT32_MIN, INT32_MAX, &hours, NULL) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    struct store_stream_info info;
    if (gw_op_active_stream(app, name, arn, &s, &info, err) != 0)
        return -1;
    if (hours < STORE_RETENTION_MIN_HOURS)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Minimum allowed retention period is %d hours. Requested retention "
                            "period (%lld hours) is too short.",
                            STORE_RETENTION_MIN_HOURS, (long long)hours);
    if (hours > STORE_RETENTION_MAX_HOURS)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Maximum allowed retention period is %d hours. Requested retention "
                            "period (%lld hours) is too long.",
                            STORE_RETENTION_MAX_HOURS, (long long)hours);
    if (increase && hours < info.retention_hours)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Requested retention period (%lld hours) for stream %s can not be "
                            "shorter than existing retention period (%u hours). Use "
                            "DecreaseRetentionPeriod API.",
                            (long long)hours, info.name, info.retention_hours);
    if (!increase && hours > info.retention_hours)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Requested retention period (%lld hours) for stream %s can not be "
                            "longer than existing retention period (%u hours). Use "
                            "IncreaseRetentionPeriod API.",
                            (long long)hours, info.name, info.retention_hours);
    struct store_err se = {0};
    int rc = increase ? store_stream_retention_increase(s, (uint32_t)hours, &se)
                      : store_stream_retention_decrease(s, (uint32_t)hours, &se);
    return rc == 0 ? 0 : gw_op_store_error(&se, err);
}

int op_increase_retention(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                          struct gw_error *err)
{
    *out = NULL;
    return retention(app, body, true, err);
}

int op_decrease_retention(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                          struct gw_error *err)
{
    *out = NULL;
    return retention(app, body, false, err);
}

/* ---- UpdateStreamMode ------------------------------------------------------------------- */

#define ON_DEMAND_STREAMS_MAX 50 /* the service's default OnDemandStreamCountLimit */

int op_update_stream_mode(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                          struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn;
    json_t *details;
    int mode = -1;
    int64_t warm;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_object(&v, body, "StreamModeDetails", "streamModeDetails", GW_V_REQUIRED,
                    &details) != 0 ||
        (details && gw_v_enum(&v, details, "StreamMode", "streamModeDetails.streamMode",
                              GW_V_REQUIRED, modes, &mode) != 0) ||
        gw_v_int(&v, body, "WarmThroughputMiBps", "warmThroughputMiBps", 0, 0, INT32_MAX, &warm,
                 NULL) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    struct store_stream_info info;
    if (gw_op_active_stream(app, name, arn, &s, &info, err) != 0)
        return -1;
    bool on_demand = mode == 1;
    if (on_demand == (info.on_demand != 0))
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Stream %s under account %s is already in %s mode.", info.name,
                            app->cfg->account, modes[mode]);
    if (on_demand && totals(app).on_demand >= ON_DEMAND_STREAMS_MAX)
        return gw_error_set(err, GW_ERR_LIMIT_EXCEEDED,
                            "Account %s already has %d streams in ON_DEMAND mode, the most "
                            "allowed.",
                            app->cfg->account, ON_DEMAND_STREAMS_MAX);
    /* The shards stay as they are; an ON_DEMAND stream then grows when its
     * writes are throttled (autoscale.c). */
    store_stream_set_on_demand(s, on_demand);
    gw_transition_stream_update(app, info.name);
    gw_log(GW_LOG_INFO, "stream_mode", "stream=%s mode=%s", info.name, modes[mode]);
    *out = NULL;
    return 0;
}

/* ---- UpdateMaxRecordSize ---------------------------------------------------------------- */

/* The largest request body a record of "kib" KiB needs: a PutRecords of
 * max(5 MiB, the record) in base64, and 500 entries' keys and members,
 * escaped at worst. */
static size_t body_for_record(uint32_t kib)
{
    size_t data = (size_t)kib * 1024;
    if (data < 5u << 20)
        data = 5u << 20;
    return (data + 2) / 3 * 4 + 500 * 4096;
}

static void widest_record(struct store_stream *s, void *arg)
{
    struct store_stream_info info;
    store_stream_info(s, &info);
    uint32_t *kib = arg;
    if (info.max_record_kib > *kib)
        *kib = info.max_record_kib;
}

void gw_op_apply_record_limits(struct gw_app *app)
{
    uint32_t kib = STORE_MAX_RECORD_KIB_MIN;
    gw_op_each_stream(app, widest_record, &kib);
    /* Streams at the default keep --max-body-bytes as it is. */
    gw_server_set_body_limit(app->srv, kib > STORE_MAX_RECORD_KIB_MIN ? body_for_record(kib) : 0);
}

int op_update_max_record_size(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                              struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn;
    int64_t kib = 0;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_int(&v, body, "MaxRecordSizeInKiB", "maxRecordSizeInKiB", GW_V_REQUIRED,
                 STORE_MAX_RECORD_KIB_MIN, STORE_MAX_RECORD_KIB_MAX, &kib, NULL) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    struct store_stream_info info;
    if (gw_op_active_stream(app, name, arn, &s, &info, err) != 0)
        return -1;
    struct store_err se = {0};
    if (store_stream_set_max_record_kib(s, (uint32_t)kib, &se) != 0)
        return gw_op_store_error(&se, err);
    gw_op_apply_record_limits(app);
    gw_transition_stream_update(app, info.name);
    gw_log(GW_LOG_INFO, "max_record_size", "stream=%s kib=%lld", info.name, (long long)kib);
    *out = NULL;
    return 0;
}

/* ---- DescribeLimits ---------------------------------------------------------------------- */

int op_describe_limits(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                       struct gw_error *err)
{
    struct stream_totals t = totals(app);
    *out = json_pack("{s:i, s:i, s:i, s:i}", "ShardLimit", (json_int_t)app->cfg->shard_limit,
                     "OpenShardCount", (json_int_t)t.open_shards, "OnDemandStreamCount",
                     (json_int_t)t.on_demand, "OnDemandStreamCountLimit", (json_int_t)50);
    return 0;
}
