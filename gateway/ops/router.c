/* router.c - the operation table and the two doors (see router.h).
 *
 * Kinesis door: `POST /` with `X-Amz-Target: Kinesis_20131202.<Op>` and
 * `Content-Type: application/x-amz-json-1.1`. Errors follow kinesalite and
 * kinesis-mock, which follow AWS: an unsupported content type answers
 * 404 UnknownOperationException, a missing or unknown target
 * 400 UnknownOperationException, any method but POST on `/` 405.
 * REST door: resource routes under /v1 plus /healthz; an unknown path is 404
 * and a known path with another method 405 with an Allow header, both with the
 * same {"__type","message"} body. Every answer, errors included, takes its
 * encoding and Content-Type from reply.h's one rule. */
#include "router.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "app.h"
#include "auth.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "reply.h"

#define TARGET_PREFIX "Kinesis_20131202."

/* One row per operation: Kinesis name, REST route (if any), and its handler
 * or its body function (with whether it changes the catalog). The
 * REST routes are the ones docs/protocol.md §3 lists; api/openapi.yaml documents the
 * same set (tests/sdk/openapi.test.mjs checks it against --print-routes). */
const struct gw_op gw_ops[] = {
    {NULL, "GET", "/healthz", .handler = op_healthz},
    {NULL, "HEAD", "/healthz", .handler = op_healthz},
    {NULL, "GET", "/metrics", .handler = op_metrics},
    {NULL, "GET", "/v1/stats", .handler = op_stats},
    /* The web console: static files, no data (they read through /v1). */
    {NULL, "GET", "/dashboard", .handler = op_console},
    {NULL, "HEAD", "/dashboard", .handler = op_console},
    {NULL, "GET", "/dashboard/", .handler = op_console},
    {NULL, "HEAD", "/dashboard/", .handler = op_console},
    {NULL, "GET", "/dashboard/{asset}", .handler = op_console},
    {NULL, "HEAD", "/dashboard/{asset}", .handler = op_console},
    {"CreateStream", "POST", "/v1/streams", .body = op_create_stream, .mutates = true},
    {"ListStreams", "GET", "/v1/streams", .body = op_list_streams},
    {"DescribeStreamSummary", "GET", "/v1/streams/{stream}", .body = op_describe_stream_summary},
    {"DeleteStream", "DELETE", "/v1/streams/{stream}", .body = op_delete_stream, .mutates = true},
    {"ListShards", "GET", "/v1/streams/{stream}/shards", .body = op_list_shards},
    {"PutRecords", "POST", "/v1/streams/{stream}/records", .handler = op_put_records},
    {"GetRecords", NULL, NULL, .handler = op_get_records},
    /* The REST read takes its position from the query, not an iterator. */
    {NULL, "GET", "/v1/streams/{stream}/shards/{shard}/records", .handler = op_rest_get_records},
    {"SplitShard", "POST", "/v1/streams/{stream}/shards/{shardToSplit}/split",
     .body = op_split_shard, .mutates = true},
    {"MergeShards", "POST", "/v1/streams/{stream}/shards/{shardToMerge}/merge",
     .body = op_merge_shards, .mutates = true},
    {"UpdateShardCount", "PUT", "/v1/streams/{stream}/shard-count", .body = op_update_shard_count,
     .mutates = true},
    {"UpdateStreamMode", NULL, NULL, .body = op_update_stream_mode, .mutates = true},
    {"UpdateMaxRecordSize", NULL, NULL, .body = op_update_max_record_size, .mutates = true},
    {"DescribeStream", NULL, NULL, .body = op_describe_stream},
    {"PutRecord", NULL, NULL, .handler = op_put_record},
    {"GetShardIterator", NULL, NULL, .handler = op_get_shard_iterator},
    {"IncreaseStreamRetentionPeriod", NULL, NULL, .body = op_increase_retention, .mutates = true},
    {"DecreaseStreamRetentionPeriod", NULL, NULL, .body = op_decrease_retention, .mutates = true},
    {"AddTagsToStream", NULL, NULL, .body = op_add_tags, .mutates = true},
    {"RemoveTagsFromStream", NULL, NULL, .body = op_remove_tags, .mutates = true},
    {"ListTagsForStream", NULL, NULL, .body = op_list_tags},
    {"DescribeLimits", NULL, NULL, .body = op_describe_limits},
    {"DescribeAccountSettings", NULL, NULL, .body = op_describe_account_settings},
    {"UpdateAccountSettings", NULL, NULL, .body = op_update_account_settings, .mutates = true},
    {"EnableEnhancedMonitoring", NULL, NULL, .body = op_enable_enhanced_monitoring,
     .mutates = true},
    {"DisableEnhancedMonitoring", NULL, NULL, .body = op_disable_enhanced_monitoring,
     .mutates = true},
    {"StartStreamEncryption", NULL, NULL, .body = op_start_stream_encryption, .mutates = true},
    {"StopStreamEncryption", NULL, NULL, .body = op_stop_stream_encryption, .mutates = true},
    {"TagResource", NULL, NULL, .body = op_tag_resource, .mutates = true},
    {"UntagResource", NULL, NULL, .body = op_untag_resource, .mutates = true},
    {"ListTagsForResource", NULL, NULL, .body = op_list_tags_for_resource},
    {"PutResourcePolicy", NULL, NULL, .body = op_put_resource_policy, .mutates = true},
    {"GetResourcePolicy", NULL, NULL, .body = op_get_resource_policy},
    {"DeleteResourcePolicy", NULL, NULL, .body = op_delete_resource_policy, .mutates = true},
    {"RegisterStreamConsumer", "POST", "/v1/streams/{stream}/consumers",
     .body = op_register_consumer, .mutates = true},
    {"ListStreamConsumers", "GET", "/v1/streams/{stream}/consumers", .body = op_list_consumers},
    {"DescribeStreamConsumer", "GET", "/v1/streams/{stream}/consumers/{consumer}",
     .body = op_describe_consumer},
    {"DeregisterStreamConsumer", "DELETE", "/v1/streams/{stream}/consumers/{consumer}",
     .body = op_deregister_consumer, .mutates = true},
    {"SubscribeToShard", NULL, NULL, .handler = op_subscribe_to_shard},
    {NULL, "GET", "/v1/streams/{stream}/consumers/{consumer}/shards/{shard}/subscribe",
     .handler = op_rest_subscribe},
    {NULL, "GET", "/v1/streams/{stream}/shards/{shard}/tail", .handler = op_rest_tail},
    {0},
};

size_t gw_router_op_count(const struct gw_op *ops)
{
    size_t n = 0;
    while (ops[n].handler || ops[n].body)
        n++;
    return n;
}

void gw_router_op_label(const struct gw_op *op, char *buf, size_t len)
{
    if (op->name)
        snprintf(buf, len, "%s", op->name);
    else
        snprintf(buf, len, "%s %s", op->rest_method, op->rest_path);
}

void gw_router_print_routes(const struct gw_op *ops, FILE *out)
{
    for (const struct gw_op *op = ops; op->handler || op->body; op++)
        if (op->rest_path)
            fprintf(out, "%s %s\n", op->rest_method, op->rest_path);
}

const struct gw_op *gw_router_find_op(const struct gw_op *ops, const char *name)
{
    for (const struct gw_op *op = ops; op->handler || op->body; op++)
        if (op->name && strcmp(op->name, name) == 0)
            return op;
    return NULL;
}

/* Matches "path" against "pattern" segment by segment; "{x}" captures one
 * non-empty segment. */
static int match_path(const char *pattern, const char *path, struct gw_req *req,
                      const char **params, size_t *nparams)
{
    size_t n = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            size_t len = strcspn(s, "/");
            if (!pe || len == 0 || n == 4)
                return 0;
            char *v = gw_req_alloc(req, len + 1);
            memcpy(v, s, len);
            v[len] = '\0';
            params[n++] = v;
            p = pe + 1;
            s += len;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    if (*p || *s)
        return 0;
    *nparams = n;
    return 1;
}

const struct gw_op *gw_router_match_rest(const struct gw_op *ops, struct gw_req *req,
                                         const char *method, const char *path,
                                         const char **params, size_t *nparams,
                                         int *method_mismatch)
{
    *method_mismatch = 0;
    for (const struct gw_op *op = ops; op->handler || op->body; op++) {
        if (!op->rest_path || !match_path(op->rest_path, path, req, params, nparams))
            continue;
        if (strcmp(op->rest_method, method) == 0)
            return op;
        *method_mismatch = 1;
    }
    return NULL;
}

static void reply_error(struct gw_req *req, enum gw_errtype type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(struct gw_req *req, enum gw_errtype type, const char *fmt, ...)
{
    struct gw_error err = {0};
    va_list ap;
    va_start(ap, fmt);
    gw_error_vset(&err, type, fmt, ap);
    va_end(ap);
    /* In the request's format: CBOR clients (the Java SDKs) parse every
     * answer as CBOR. */
    gw_reply_error(req, &err);
}

/* Allow header for a path that exists under other methods. */
static void set_allow(const struct gw_op *ops, struct gw_req *req, const char *path)
{
    char allow[128] = "";
    const char *params[4];
    size_t np;
    for (const struct gw_op *op = ops; op->handler || op->body; op++) {
        if (!op->rest_path || !match_path(op->rest_path, path, req, params, &np))
            continue;
        if (strstr(allow, op->rest_method))
            continue;
        if (allow[0])
            strncat(allow, ", ", sizeof allow - strlen(allow) - 1);
        strncat(allow, op->rest_method, sizeof allow - strlen(allow) - 1);
    }
    gw_resp_header(req, "allow", allow);
}

/* --require-auth: the request must carry a well-formed SigV4 Authorization
 * header (or a presigned query), as Kinesis requires; the signature itself is
 * not verified. */
static int check_auth(struct gw_req *req)
{
    const char *auth = gw_req_header(req, "authorization");
    if (!auth && gw_req_query_param(req, "X-Amz-Signature"))
        return 0;
    if (!auth) {
        reply_error(req, GW_ERR_MISSING_AUTH_TOKEN, "Missing Authentication Token");
        return -1;
    }
    if (strncmp(auth, "AWS4-HMAC-SHA256 ", 17) != 0 || !strstr(auth, "Credential=") ||
        !strstr(auth, "SignedHeaders=") || !strstr(auth, "Signature=")) {
        reply_error(req, GW_ERR_INCOMPLETE_SIGNATURE,
                    "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
                    "parameters with the AWS4-HMAC-SHA256 algorithm.");
        return -1;
    }
    return 0;
}

/* ---- browser safety ------------------------------------------------------------------- */

/* The host part of "host:port", "[v6]:port" or "host" into "out". */
static void host_part(const char *hp, char *out, size_t cap)
{
    size_t n;
    if (hp[0] == '[') {
        const char *e = strchr(hp, ']');
        n = e ? (size_t)(e - hp) + 1 : strlen(hp);
    } else {
        const char *c = strrchr(hp, ':');
        n = c ? (size_t)(c - hp) : strlen(hp);
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, hp, n);
    out[n] = '\0';
}

static bool is_loopback(const char *h)
{
    return strcasecmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0 ||
           strncmp(h, "127.", 4) == 0;
}

/* A web page on another site can make a browser send requests to a gateway
 * on 127.0.0.1 through a DNS name it controls (DNS rebinding); such requests
 * carry that name in Host. So when the gateway listens on loopback only (or
 * --allowed-hosts names its names), Host must be a loopback name or one of
 * those. Gateways bound to other addresses serve any Host unless told. */
static bool host_allowed(const struct gw_config *cfg, struct gw_req *req)
{
    bool loopback_only = cfg->nlisten > 0;
    for (size_t i = 0; i < cfg->nlisten && loopback_only; i++) {
        char h[300];
        host_part(cfg->listen[i], h, sizeof h);
        loopback_only = is_loopback(h);
    }
    bool listed = cfg->allowed_hosts && *cfg->allowed_hosts;
    if (!loopback_only && !listed)
        return true;
    const char *hv = gw_req_header(req, "host");
    if (!hv)
        return true; /* HTTP/1.0 without Host: not a browser */
    char h[300];
    host_part(hv, h, sizeof h);
    if (is_loopback(h))
        return true;
    if (listed) {
        const char *p = cfg->allowed_hosts;
        while (*p) {
            size_t n = strcspn(p, ",");
            if (n == strlen(h) && strncasecmp(p, h, n) == 0)
                return true;
            p += n;
            if (*p == ',')
                p++;
        }
    }
    return false;
}

/* A POST a browser may send across origins without asking first (a "simple"
 * request: text/plain, form types, no custom headers) must not change
 * anything: the REST door's POSTs take JSON, CBOR, or a raw record as
 * application/octet-stream, all of which need a CORS preflight. */
static bool rest_media_ok(struct gw_req *req)
{
    if (strcmp(gw_req_method(req), "POST") != 0)
        return true;
    const char *ct = gw_req_header(req, "content-type");
    return gw_media_type_is(ct, GW_CT_JSON) || gw_media_type_is(ct, GW_CT_CBOR) ||
           gw_media_type_is(ct, GW_CT_AMZ_JSON) ||
           gw_media_type_is(ct, "application/octet-stream");
}

/* Whether "item" is one of the comma-separated "list" (exact, case-sensitive:
 * origins are compared as browsers serialise them). */
static bool in_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, item, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

/* CORS, off unless --cors-origin names the page's origin. A request from an
 * allowed origin gets the headers that let its page read the reply (set
 * before the handler runs, so streamed replies carry them too); a preflight
 * is answered here. Returns true when the request was a preflight (answered). */
static bool cors(const struct gw_config *cfg, struct gw_req *req)
{
    const char *origin = gw_req_header(req, "origin");
    bool allowed = origin && cfg->cors_origins && in_list(cfg->cors_origins, origin);
    bool preflight = strcmp(gw_req_method(req), "OPTIONS") == 0 &&
                     gw_req_header(req, "access-control-request-method");
    if (allowed) {
        gw_resp_header(req, "access-control-allow-origin", origin);
        gw_resp_header(req, "vary", "Origin");
        gw_resp_header(req, "access-control-expose-headers",
                       "x-amzn-RequestId, x-amzn-ErrorType, Date");
    }
    if (!preflight)
        return false;
    if (!allowed) {
        reply_error(req, GW_ERR_ACCESS_DENIED, "Origin '%.200s' is not allowed (--cors-origin)",
                    origin ? origin : "(none)");
        return true;
    }
    const char *hdrs = gw_req_header(req, "access-control-request-headers");
    gw_resp_header(req, "access-control-allow-methods", "GET, HEAD, POST, PUT, DELETE");
    if (hdrs)
        gw_resp_header(req, "access-control-allow-headers", hdrs);
    gw_resp_header(req, "access-control-max-age", "600");
    gw_resp_send(req, 204, NULL, 0);
    return true;
}

/* --auth sigv4: false (the refusal answered) unless "req" is signed by a
 * listed key. */
static bool authorized(struct gw_app *app, struct gw_req *req, const struct gw_principal **who)
{
    struct gw_error err = {0};
    if (gw_auth_check(app->auth, req, gw_app_now_ms(), who, &err) == 0)
        return true;
    gw_log(GW_LOG_INFO, "auth_refused", "conn=%llu %s %s: %s: %s",
           (unsigned long long)gw_req_conn_id(req), gw_req_method(req), gw_req_path(req),
           gw_error_name(err.type), err.message);
    gw_reply_error(req, &err);
    return false;
}

/* Runs the operation a route found, its handler or its body function, as
 * "who" (NULL: no authentication): operations ask gw_op_permitted. */
static void run(struct gw_app *app, struct gw_req *req, const struct gw_op *op,
                const struct gw_principal *who)
{
    gw_op_set_caller(who, op->name ? op->name : gw_req_path(req));
    if (op->handler)
        op->handler(app, req);
    else
        gw_op_run(app, req, op->body, op->mutates);
    gw_op_set_caller(NULL, NULL);
}

static void kinesis_door(struct gw_app *app, struct gw_req *req)
{
    if (strcmp(gw_req_method(req), "POST") != 0) {
        gw_resp_header(req, "allow", "POST");
        reply_error(req, GW_ERR_METHOD_NOT_ALLOWED,
                    "The Kinesis API takes POST on /, not %s", gw_req_method(req));
        return;
    }
    const char *ct = gw_req_header(req, "content-type");
    if (!gw_media_type_is(ct, GW_CT_AMZ_JSON) && !gw_media_type_is(ct, GW_CT_CBOR) &&
        !gw_media_type_is(ct, GW_CT_JSON)) {
        reply_error(req, GW_ERR_UNSUPPORTED_MEDIA_TYPE,
                    "Unsupported Content-Type '%s'; use application/x-amz-json-1.1",
                    ct ? ct : "(none)");
        return;
    }
    const char *target = gw_req_header(req, "x-amz-target");
    if (!target) {
        reply_error(req, GW_ERR_UNKNOWN_OPERATION, "Missing X-Amz-Target header");
        return;
    }
    const char *name = strncmp(target, TARGET_PREFIX, sizeof TARGET_PREFIX - 1) == 0
                           ? target + sizeof TARGET_PREFIX - 1
                           : NULL;
    const struct gw_op *op = name && *name ? gw_router_find_op(app->ops, name) : NULL;
    if (!op) {
        reply_error(req, GW_ERR_UNKNOWN_OPERATION, "Operation %s is not supported", target);
        return;
    }
    const struct gw_principal *who = NULL;
    if (app->auth) {
        if (!authorized(app, req, &who))
            return;
    } else if (app->cfg && app->cfg->require_auth && check_auth(req) != 0) {
        return;
    }
    gw_req_set_route(req, op, NULL, 0);
    run(app, req, op, who);
}

/* Counts every answered request by operation (its row in the table; the
 * slot after the last for requests no row matched) and outcome, and times
 * it from dispatch to the reply's start. */
static void observe_reply(struct gw_req *req, void *ctx, int status, enum gw_errtype type)
{
    (void)status;
    struct gw_app *app = ctx;
    const struct gw_op *op = gw_req_op(req);
    /* Past the table (no row matched) is clamped to the "unknown" slot. */
    size_t idx = op ? (size_t)(op - app->ops) : SIZE_MAX;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t t0 = gw_req_dispatched_ns(req);
    gw_metrics_request(app->metrics, idx, (size_t)type, now > t0 ? (double)(now - t0) / 1e9 : 0);
}

void gw_router_dispatch(void *ctx, struct gw_req *req)
{
    struct gw_app *app = ctx;
    if (app->metrics)
        gw_req_observe(req, observe_reply, app);
    const char *path = gw_req_path(req);
    const char *method = gw_req_method(req);
    gw_log(GW_LOG_DEBUG, "request", "conn=%llu %s %s target=%s",
           (unsigned long long)gw_req_conn_id(req), method, path,
           gw_req_header(req, "x-amz-target") ? gw_req_header(req, "x-amz-target") : "-");
    if (app->cfg && !host_allowed(app->cfg, req)) {
        reply_error(req, GW_ERR_MISDIRECTED,
                    "Host '%.200s' is not served here; add it with --allowed-hosts",
                    gw_req_header(req, "host"));
        return;
    }
    if (app->cfg && cors(app->cfg, req))
        return;
    if (strcmp(path, "/") == 0) {
        kinesis_door(app, req);
        return;
    }
    const char *params[4];
    size_t np = 0;
    int mismatch;
    const struct gw_op *op =
        gw_router_match_rest(app->ops, req, method, path, params, &np, &mismatch);
    if (op) {
        /* The REST door is signed the same way (curl --aws-sigv4); only the
         * health check stays open, for load balancers and Docker, and the
         * console's static files, which hold no data (the page then calls
         * /v1 with the user's token). */
        const struct gw_principal *who = NULL;
        bool open = op->handler == op_healthz || op->handler == op_console;
        if (app->auth && !open && !authorized(app, req, &who))
            return;
        if (!rest_media_ok(req)) {
            const char *ct = gw_req_header(req, "content-type");
            reply_error(req, GW_ERR_REST_MEDIA_TYPE,
                        "POST %s needs Content-Type application/json (or "
                        "application/octet-stream for a raw record), not '%.100s'",
                        path, ct ? ct : "(none)");
            return;
        }
        gw_req_set_route(req, op, params, np);
        run(app, req, op, who);
        return;
    }
    if (mismatch) {
        set_allow(app->ops, req, path);
        reply_error(req, GW_ERR_METHOD_NOT_ALLOWED, "Method %s is not allowed on %s", method,
                    path);
        return;
    }
    reply_error(req, GW_ERR_NOT_FOUND, "No route for %s %s", method, path);
}
