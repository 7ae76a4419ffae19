/* ops_consumers.c - enhanced fan-out consumers: RegisterStreamConsumer,
 * DescribeStreamConsumer, ListStreamConsumers, DeregisterStreamConsumer.
 *
 * Upstream: router.c (both doors). Downstream: the store catalog (consumers
 * persist in the manifest), fanout.c (deregistering ends a consumer's live
 * subscriptions) and transition.c (a consumer is CREATING, then ACTIVE after
 * --stream-delay; deregistered ones go DELETING, then are removed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "fanout.h"
#include "log.h"
#include "mem.h"
#include "ops.h"
#include "transition.h"

#define CONSUMERS_PAGE 100
#define MAX_CONSUMERS_CREATING 5
#define TOKEN_TTL_MS 300000

static json_t *consumer_json(const struct store_consumer_info *ci, const char *stream_arn)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "ConsumerName", ci->name, "ConsumerARN", ci->arn,
                          "ConsumerStatus", store_consumer_status_name(ci->status),
                          "ConsumerCreationTimestamp", gw_json_time(ci->created_ms));
    if (stream_arn)
        json_object_set_new(o, "StreamARN", json_string(stream_arn));
    return o;
}

/* The stream named by StreamARN (the Kinesis door) or the REST path. */
static int stream_from_arn(struct gw_app *app, struct gw_valid *v, json_t *body, bool required,
                           const char **arn, struct gw_error *err)
{
    const char *name = NULL;
    if (gw_v_str(v, body, "StreamARN", "streamARN", required ? GW_V_REQUIRED : 0, 1, 2048,
                 "arn:aws.*:kinesis:.*:\\d{12}:stream/.+", gw_match_stream_arn, arn) != 0)
        return -1;
    (void)name;
    return 0;
}

/* REST requests name the stream in the path: turn it into its ARN. */
static void rest_stream_arn(struct gw_app *app, json_t *body)
{
    json_t *n = json_object_get(body, "StreamName");
    if (!json_is_string(n) || json_object_get(body, "StreamARN"))
        return;
    struct store_stream *s;
    if (store_stream_lookup(app->store, json_string_value(n), &s, NULL) == 0) {
        struct store_stream_info info;
        store_stream_info(s, &info);
        json_object_set_new(body, "StreamARN", json_string(info.arn));
    } else {
        /* Keep the name visible in the not-found message. */
        char arn[400];
        snprintf(arn, sizeof arn, "arn:aws:kinesis:%s:%s:stream/%s", app->cfg->region,
                 app->cfg->account, json_string_value(n));
        json_object_set_new(body, "StreamARN", json_string(arn));
    }
}

static int lookup_stream_arn(struct gw_app *app, const char *arn, struct store_stream **s,
                             struct gw_error *err)
{
    return gw_op_stream_lookup(app, NULL, arn, s, err);
}

/* ---- RegisterStreamConsumer ------------------------------------------------------- */

int op_register_consumer(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                         struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *arn, *name;
    rest_stream_arn(app, body);
    if (stream_from_arn(app, &v, body, true, &arn, err) != 0 ||
        gw_v_str(&v, body, "ConsumerName", "consumerName", GW_V_REQUIRED, 1, 128,
                 "[a-zA-Z0-9_.-]+", gw_match_name, &name) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    if (lookup_stream_arn(app, arn, &s, err) != 0 || gw_op_stream_active(app, s, err) != 0)
        return -1;
    struct store_consumer_info ci;
    if (store_consumer_lookup(s, name, &ci, NULL) == 0)
        return gw_error_set(err, GW_ERR_RESOURCE_IN_USE,
                            "Consumer %s under stream %s already exists for account %s.", name,
                            arn, app->cfg->account);
    /* The store counts CREATING consumers: listing them all here made
     * registering thousands quadratic. */
    struct store_stream_info sinfo;
    store_stream_info(s, &sinfo);
    size_t n = sinfo.consumer_count, creating = sinfo.consumers_creating;
    if (n >= app->cfg->max_consumers)
        return gw_error_set(err, GW_ERR_LIMIT_EXCEEDED,
                            "Stream %s has reached the limit of %u registered consumers.", arn,
                            app->cfg->max_consumers);
    if (creating >= MAX_CONSUMERS_CREATING)
        return gw_error_set(err, GW_ERR_LIMIT_EXCEEDED,
                            "Stream %s has %d consumers in CREATING state, the most allowed at "
                            "once.",
                            arn, MAX_CONSUMERS_CREATING);
    struct store_err se = {0};
    if (store_consumer_register(s, name, &ci, &se) != 0)
        return gw_op_store_error(&se, err);
    struct store_stream_info info;
    store_stream_info(s, &info);
    gw_log(GW_LOG_INFO, "consumer_registered", "stream=%s consumer=%s", info.name, name);
    *out = json_pack("{s:o}", "Consumer", consumer_json(&ci, NULL));
    gw_transition_consumer_registered(app, info.name, name);
    return 0;
}

/* ---- Describe / Deregister: by ConsumerARN, or StreamARN + ConsumerName --------- */

static int resolve_consumer(struct gw_app *app, json_t *body, struct store_stream **stream,
                            struct store_consumer_info *ci, struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *stream_arn, *name, *arn;
    rest_stream_arn(app, body);
    if (stream_from_arn(app, &v, body, false, &stream_arn, err) != 0 ||
        gw_v_str(&v, body, "ConsumerName", "consumerName", 0, 1, 128, "[a-zA-Z0-9_.-]+",
                 gw_match_name, &name) != 0 ||
        gw_v_str(&v, body, "ConsumerARN", "consumerARN", 0, 1, 2048,
                 "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/"
                 "[a-zA-Z0-9_.-]+:[0-9]+",
                 gw_match_consumer_arn, &arn) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    if (arn) {
        if (gw_op_permitted_arn(app, arn, err) != 0)
            return -1;
        if (store_consumer_lookup_arn(app->store, arn, stream, ci, NULL) != 0)
            return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND, "Consumer %s not found.", arn);
        if (name && strcmp(name, ci->name) != 0)
            return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                "ConsumerName %s does not match ConsumerARN %s.", name, arn);
        if (stream_arn) {
            struct store_stream_info info;
            store_stream_info(*stream, &info);
            if (strcmp(info.arn, stream_arn) != 0)
                return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                    "StreamARN %s does not match ConsumerARN %s.", stream_arn, arn);
        }
        return 0;
    }
    if (!stream_arn || !name)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Either ConsumerARN or both StreamARN and ConsumerName must be "
                            "provided.");
    if (lookup_stream_arn(app, stream_arn, stream, err) != 0)
        return -1;
    if (store_consumer_lookup(*stream, name, ci, NULL) != 0)
        return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND,
                            "Consumer %s under stream %s not found.", name, stream_arn);
    return 0;
}

int op_describe_consumer(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                         struct gw_error *err)
{
    struct store_stream *s;
    struct store_consumer_info ci;
    if (resolve_consumer(app, body, &s, &ci, err) != 0)
        return -1;
    struct store_stream_info info;
    store_stream_info(s, &info);
    *out = json_pack("{s:o}", "ConsumerDescription", consumer_json(&ci, info.arn));
    return 0;
}

int op_deregister_consumer(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                           struct gw_error *err)
{
    struct store_stream *s;
    struct store_consumer_info ci;
    if (resolve_consumer(app, body, &s, &ci, err) != 0)
        return -1;
    struct store_stream_info info;
    store_stream_info(s, &info);
    char name[129], arn[2100];
    snprintf(name, sizeof name, "%s", ci.name);
    snprintf(arn, sizeof arn, "%s", ci.arn);
    gw_fanout_end(app->fanout, info.name, arn, "ResourceNotFoundException",
                  "The consumer was deregistered.");
    gw_transition_consumer_deregister(app, info.name, name);
    gw_log(GW_LOG_INFO, "consumer_deregistered", "stream=%s consumer=%s", info.name, name);
    *out = NULL;
    return 0;
}

/* ---- ListStreamConsumers ------------------------------------------------------------- */

/* Names the stream incarnation (name + creation time) and the next index;
 * small enough for a sealed token. */
struct consumers_token {
    int64_t created_ms;
    uint32_t next;
    char name[STORE_STREAM_NAME_MAX + 1];
};

int op_list_consumers(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                      struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *arn, *token;
    int64_t max = CONSUMERS_PAGE, created = 0;
    bool has_created;
    rest_stream_arn(app, body);
    if (stream_from_arn(app, &v, body, true, &arn, err) != 0 ||
        gw_v_str(&v, body, "NextToken", "nextToken", 0, 1, 1048576, NULL, NULL, &token) != 0 ||
        gw_v_int(&v, body, "MaxResults", "maxResults", 0, 1, 10000, &max, NULL) != 0 ||
        gw_v_time(&v, body, "StreamCreationTimestamp", "streamCreationTimestamp", 0, &created,
                  &has_created) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    if (max > CONSUMERS_PAGE)
        max = CONSUMERS_PAGE;
    struct store_stream *s;
    if (lookup_stream_arn(app, arn, &s, err) != 0)
        return -1;
    struct store_stream_info info;
    store_stream_info(s, &info);
    if (has_created && created / 1000 != info.created_ms / 1000)
        return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND,
                            "Stream %s created at that time not found.", arn);
    uint32_t first = 0;
    if (token) {
        struct consumers_token t;
        size_t n;
        int64_t issued;
        if (gw_op_token_open(app, 'C', token, &t, sizeof t, &n, &issued) != 0 || n != sizeof t)
            return gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "Invalid NextToken.");
        t.name[sizeof t.name - 1] = '\0';
        if (gw_app_now_ms() - issued > TOKEN_TTL_MS)
            return gw_error_set(err, GW_ERR_EXPIRED_NEXT_TOKEN, "The NextToken has expired.");
        if (strcmp(t.name, info.name) != 0 || t.created_ms != info.created_ms)
            return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                "NextToken does not belong to stream %s.", arn);
        first = t.next;
    }
    struct store_consumer_info *list = xcalloc((size_t)max + 1, sizeof *list);
    size_t n = store_consumer_list(s, first, list, (size_t)max + 1);
    bool more = n > (size_t)max;
    if (more)
        n = (size_t)max;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, consumer_json(&list[i], NULL));
    free(list);
    *out = json_pack("{s:o}", "Consumers", arr);
    if (more) {
        struct consumers_token t = {.created_ms = info.created_ms, .next = first + (uint32_t)n};
        snprintf(t.name, sizeof t.name, "%s", info.name);
        char *tok = gw_op_token_make(app, 'C', &t, sizeof t);
        json_object_set_new(*out, "NextToken", json_string(tok));
        free(tok);
    }
    return 0;
}
