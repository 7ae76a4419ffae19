/* ops_records.c - the data plane: PutRecord, PutRecords, GetShardIterator,
 * GetRecords.
 *
 * Upstream: router.c. Downstream: putrecords.c decodes (fast path for JSON,
 * general path otherwise), store.h appends and reads.
 *
 * A put is acknowledged only when the store says its records are as durable
 * as the mode promises: the request is parked (gw_req_on_abort) until every
 * per-shard batch's callback has fired, then answered from that callback.
 * Records of one request that route to the same shard are appended as one
 * batch, in request order. */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "autoscale.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "mem.h"
#include "ops.h"
#include "position.h"
#include "putrecords.h"
#include "throttle.h"

#define GET_RECORDS_MAX_BYTES (10u * 1024 * 1024)
#define INTERNAL_FAILURE_MSG "Internal service failure."

enum entry_state { ENTRY_PENDING, ENTRY_OK, ENTRY_THROTTLED, ENTRY_FAILED };

struct put_entry_result {
    enum entry_state state;
    uint32_t shard;          /* index */
    uint32_t bytes;          /* data + partition key, for metrics */
    struct store_seq seq;
};

struct put_ctx;

/* One store batch: the entries of the request that went to one shard. */
struct put_group {
    struct put_ctx *ctx;
    uint32_t shard;
    size_t n;
    size_t *idx;             /* entry indices, request order */
    struct store_seq *seqs;  /* filled by the store by the time on_group_done succeeds */
    uint64_t bytes;          /* data + partition keys, for metrics */
};

struct put_ctx {
    struct gw_app *app;
    struct gw_req *req;      /* NULL once the client has gone */
    bool batch;              /* PutRecords */
    size_t n;
    struct put_entry_result *res;
    struct put_group *groups;
    size_t ngroups;
    size_t pending;          /* groups whose callback has not fired */
    char stream[STORE_STREAM_NAME_MAX + 1];
    bool kms;                /* the stream's encryption when the records were taken */
    char fail_msg[sizeof(((struct store_err *)0)->msg)]; /* store error text for a failed PutRecord */
    size_t unavailable;      /* records failed because the backend could not be reached */
};

static void put_ctx_free(struct put_ctx *ctx)
{
    for (size_t i = 0; i < ctx->ngroups; i++) {
        free(ctx->groups[i].idx);
        free(ctx->groups[i].seqs);
    }
    free(ctx->groups);
    free(ctx->res);
    free(ctx);
}

static void shard_id(uint32_t index, char out[STORE_SHARD_ID_STRLEN])
{
    memcpy(out, "shardId-", 8);
    for (int i = 19; i >= 8; i--) {
        out[i] = (char)('0' + index % 10);
        index /= 10;
    }
    out[20] = '\0';
}

/* One PutRecords result entry: the record's sequence number and shard, or
 * its error. */
static void reply_entry(struct gw_reply *w, const struct put_ctx *ctx,
                        const struct put_entry_result *r)
{
    char sid[STORE_SHARD_ID_STRLEN];
    shard_id(r->shard, sid);
    gw_reply_object(w, 2);
    if (r->state == ENTRY_OK) {
        char seq[STORE_SEQ_STRLEN];
        size_t n = store_seq_format(r->seq, seq);
        gw_reply_key(w, "SequenceNumber");
        gw_reply_string_n(w, seq, n);
        gw_reply_key(w, "ShardId");
        gw_reply_string_n(w, sid, STORE_SHARD_ID_STRLEN - 1);
    } else if (r->state == ENTRY_THROTTLED) {
        char msg[512];
        int k = snprintf(msg, sizeof msg, "Rate exceeded for shard %s in stream %s under account %s.",
                         sid, ctx->stream, ctx->app->cfg->account);
        gw_reply_key(w, "ErrorCode");
        gw_reply_string(w, "ProvisionedThroughputExceededException");
        gw_reply_key(w, "ErrorMessage");
        gw_reply_string_n(w, msg, k < 0 ? 0 : (size_t)k < sizeof msg ? (size_t)k : sizeof msg - 1);
    } else {
        gw_reply_key(w, "ErrorCode");
        gw_reply_string(w, "InternalFailure");
        gw_reply_key(w, "ErrorMessage");
        gw_reply_string(w, INTERNAL_FAILURE_MSG);
    }
    gw_reply_end(w);
}

/* PutRecord's and PutRecords' answers, written directly (JSON or CBOR): no
 * tree is built for 500 entries. */
static void reply_put(struct put_ctx *ctx)
{
    struct gw_req *req = ctx->req;
    size_t failed = 0;
    for (size_t i = 0; i < ctx->n; i++)
        failed += ctx->res[i].state != ENTRY_OK;
    struct gw_reply w;
    if (!ctx->batch) {
        const struct put_entry_result *r = &ctx->res[0];
        struct gw_error err = {0};
        if (r->state == ENTRY_THROTTLED) {
            char sid[STORE_SHARD_ID_STRLEN];
            shard_id(r->shard, sid);
            gw_error_set(&err, GW_ERR_PROVISIONED_THROUGHPUT_EXCEEDED,
                         "Rate exceeded for shard %s in stream %s under account %s.", sid,
                         ctx->stream, ctx->app->cfg->account);
            gw_body_error(req, &err);
            return;
        }
        if (r->state != ENTRY_OK) {
            gw_error_set(&err, ctx->unavailable ? GW_ERR_SERVICE_UNAVAILABLE : GW_ERR_INTERNAL_FAILURE,
                         "%s", ctx->fail_msg[0] ? ctx->fail_msg : INTERNAL_FAILURE_MSG);
            gw_body_error(req, &err);
            return;
        }
        char seq[STORE_SEQ_STRLEN], sid[STORE_SHARD_ID_STRLEN];
        size_t seq_len = store_seq_format(r->seq, seq);
        shard_id(r->shard, sid);
        gw_reply_init(&w, req);
        gw_reply_object(&w, 3);
        gw_reply_key(&w, "ShardId");
        gw_reply_string_n(&w, sid, STORE_SHARD_ID_STRLEN - 1);
        gw_reply_key(&w, "SequenceNumber");
        gw_reply_string_n(&w, seq, seq_len);
        gw_reply_key(&w, "EncryptionType");
        gw_reply_string(&w, ctx->kms ? "KMS" : "NONE");
        gw_reply_end(&w);
        gw_reply_send(&w, 200);
        return;
    }
    if (failed && ctx->unavailable == ctx->n) {
        /* Nothing could be stored (JetStream unreachable): the whole request
         * fails with 503, which SDKs retry, rather than 500 per record. */
        struct gw_error err = {0};
        gw_error_set(&err, GW_ERR_SERVICE_UNAVAILABLE, "%s", ctx->fail_msg);
        gw_body_error(req, &err);
        return;
    }
    gw_reply_init(&w, req);
    gw_reply_object(&w, 3);
    gw_reply_key(&w, "FailedRecordCount");
    gw_reply_int(&w, (int64_t)failed);
    gw_reply_key(&w, "Records");
    gw_reply_array(&w, ctx->n);
    for (size_t i = 0; i < ctx->n; i++)
        reply_entry(&w, ctx, &ctx->res[i]);
    gw_reply_end(&w);
    gw_reply_key(&w, "EncryptionType");
    gw_reply_string(&w, ctx->kms ? "KMS" : "NONE");
    gw_reply_end(&w);
    gw_reply_send(&w, 200);
}

static void put_finish(struct put_ctx *ctx)
{
    if (ctx->req) {
        gw_req_on_abort(ctx->req, NULL, NULL);
        reply_put(ctx);
    }
    put_ctx_free(ctx);
}

static void put_finish_cb(void *arg) { put_finish(arg); }

static void on_put_abort(struct gw_req *req, void *arg)
{
    struct put_ctx *ctx = arg;
    ctx->req = NULL; /* the records are still appended; nobody to tell */
}

static void on_group_done(void *arg, const struct store_err *se)
{
    struct put_group *g = arg;
    struct put_ctx *ctx = g->ctx;
    uint64_t n = g->n, bytes = g->bytes;
    for (size_t i = 0; i < g->n; i++) {
        struct put_entry_result *r = &ctx->res[g->idx[i]];
        r->state = se ? ENTRY_FAILED : ENTRY_OK;
        if (!se) {
            r->seq = g->seqs[i];
            /* Where the store put it: on jetstream, a record a reshard
             * closed its shard under is stored again in a child, and
             * counted there. */
            r->shard = g->seqs[i].shard;
            if (r->shard != g->shard) {
                n--;
                bytes -= r->bytes;
                gw_metrics_put(ctx->app->metrics, ctx->stream, r->shard, 1, r->bytes);
            }
        }
    }
    if (!se && n)
        gw_metrics_put(ctx->app->metrics, ctx->stream, g->shard, n, bytes);
    if (se) {
        gw_log(GW_LOG_WARN, "append_failed", "stream=%s shard=%u: %s", ctx->stream, g->shard,
               se->msg);
        snprintf(ctx->fail_msg, sizeof ctx->fail_msg, "%s", se->msg);
        if (se->code == STORE_EUNAVAIL)
            ctx->unavailable += g->n;
    }
    if (--ctx->pending == 0) /* after the pushes this commit woke up */
        gw_loop_ack(ctx->app, put_finish_cb, ctx);
}

/* Decodes the request into "b": REST raw bodies, the JSON fast path, or the
 * general path. */
static int decode_put(struct gw_req *req, bool batch, struct gw_put_batch *b, json_t **tree,
                      struct gw_error *err)
{
    *tree = NULL;
    size_t len;
    const uint8_t *body = gw_req_body(req, &len);
    const char *rest_stream = gw_req_param(req, 0);
    if (rest_stream) {
        /* POST /v1/streams/{stream}/records?partitionKey=K: the raw body is
         * one record, as curl users expect. */
        const char *pk = gw_req_query_param(req, "partitionKey");
        if (pk) {
            memset(b, 0, sizeof *b);
            b->stream_name = rest_stream;
            b->entries = gw_req_alloc(req, sizeof *b->entries);
            memset(b->entries, 0, sizeof *b->entries);
            b->n = 1;
            b->entries[0].data = body;
            b->entries[0].data_len = len;
            b->entries[0].pk = pk;
            b->entries[0].pk_len = strlen(pk);
            b->entries[0].ehk = gw_req_query_param(req, "explicitHashKey");
            /* Keys are JSON strings wherever they are read back: UTF-8 only. */
            size_t pk_len = strlen(pk);
            if (!gw_utf8_valid(pk, pk_len))
                return gw_error_set(err, GW_ERR_SERIALIZATION,
                                    "partitionKey is not valid UTF-8");
            struct gw_valid v;
            gw_valid_init(&v, err);
            size_t c = gw_utf8_chars(pk, pk_len);
            if (c < 1 || c > GW_PUT_MAX_PARTITION_KEY)
                gw_valid_add(&v, pk, "partitionKey", "have length %s",
                             c < 1 ? "greater than or equal to 1" : "less than or equal to 256");
            if (len > GW_PUT_MAX_DATA) {
                char text[96];
                snprintf(text, sizeof text, "java.nio.HeapByteBuffer[pos=0 lim=%zu cap=%zu]", len,
                         len);
                gw_valid_add(&v, text, "data", "have length less than or equal to %d",
                             GW_PUT_MAX_DATA);
            }
            if (b->entries[0].ehk && !gw_match_hashkey(b->entries[0].ehk))
                gw_valid_add(&v, b->entries[0].ehk, "explicitHashKey",
                             "satisfy regular expression pattern: 0|([1-9]\\d{0,38})");
            return gw_valid_done(&v);
        }
    }
    if (!rest_stream && !gw_body_is_cbor(req) && gw_put_parse_fast(req, body, len, batch, b))
        return 0;
    if (gw_op_body(req, tree, err) != 0)
        return -1;
    return gw_put_parse_tree(req, *tree, batch, b, err);
}

static void put(struct gw_app *app, struct gw_req *req, bool batch)
{
    struct gw_error err = {0};
    json_t *tree = NULL;
    struct gw_put_batch b;
    struct put_ctx *ctx = NULL;
    if (decode_put(req, batch, &b, &tree, &err) != 0)
        goto fail;
    if (!b.stream_name && !b.stream_arn) {
        struct gw_valid v;
        gw_valid_init(&v, &err);
        gw_valid_add(&v, NULL, "streamName", "not be null");
        gw_valid_done(&v);
        goto fail;
    }
    struct store_stream *s;
    if (gw_op_stream_lookup(app, b.stream_name, b.stream_arn, &s, &err) != 0 ||
        gw_op_stream_readable(app, s, &err) != 0)
        goto fail;
    struct store_stream_info info;
    store_stream_info(s, &info);
    if (gw_put_check_sizes(&b, batch, (size_t)info.max_record_kib * 1024, &err) != 0)
        goto fail;

    ctx = xcalloc(1, sizeof *ctx);
    ctx->app = app;
    ctx->req = req;
    ctx->batch = batch;
    ctx->n = b.n;
    ctx->res = xcalloc(b.n, sizeof *ctx->res);
    snprintf(ctx->stream, sizeof ctx->stream, "%s", info.name);
    ctx->kms = info.kms_key_id != NULL;

    /* Route every entry first: a bad ExplicitHashKey fails the whole request
     * before anything is appended. */
    struct store_shard **shard_of = gw_req_alloc(req, b.n * sizeof *shard_of);
    for (size_t i = 0; i < b.n; i++) {
        struct store_hashkey hk;
        const struct gw_put_entry *e = &b.entries[i];
        if (e->ehk) {
            if (store_hashkey_parse(e->ehk, strlen(e->ehk), &hk, NULL) != 0) {
                gw_error_set(&err, GW_ERR_INVALID_ARGUMENT,
                             "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: "
                             "[0, 2^128-1]. Specified value was %s",
                             e->ehk);
                goto fail;
            }
        } else {
            store_hashkey_from_partition_key((const uint8_t *)e->pk, e->pk_len, &hk);
        }
        struct store_err se = {0};
        if (store_stream_route(s, &hk, &shard_of[i], &se) != 0) {
            gw_op_store_error(&se, &err);
            goto fail;
        }
        struct store_shard_info si;
        store_shard_info(shard_of[i], &si);
        ctx->res[i].shard = si.index;
        ctx->res[i].bytes = (uint32_t)(e->data_len + e->pk_len);
        if (!gw_throttle_take(app->throttle, shard_of[i], 1, e->data_len + e->pk_len)) {
            ctx->res[i].state = ENTRY_THROTTLED;
            gw_metrics_write_throttled(app->metrics, info.name, si.index);
            if (info.on_demand)
                gw_autoscale_throttled(app->autoscale, info.name);
        }
    }
    if (!batch && ctx->res[0].state == ENTRY_THROTTLED) {
        ctx->req = req;
        put_finish(ctx);
        json_decref(tree);
        return;
    }

    /* Group by shard, keeping request order inside each group. */
    ctx->groups = xcalloc(b.n, sizeof *ctx->groups);
    for (size_t i = 0; i < b.n; i++) {
        if (ctx->res[i].state == ENTRY_THROTTLED)
            continue;
        struct put_group *g = NULL;
        for (size_t k = 0; k < ctx->ngroups && !g; k++)
            if (ctx->groups[k].shard == ctx->res[i].shard)
                g = &ctx->groups[k];
        if (!g) {
            g = &ctx->groups[ctx->ngroups++];
            g->ctx = ctx;
            g->shard = ctx->res[i].shard;
            g->idx = xcalloc(b.n, sizeof *g->idx);
        }
        g->idx[g->n++] = i;
    }
    struct store_record_in *recs = gw_req_alloc(req, b.n * sizeof *recs);
    struct store_hashkey *hks = gw_req_alloc(req, b.n * sizeof *hks);
    for (size_t k = 0; k < ctx->ngroups; k++) {
        struct put_group *g = &ctx->groups[k];
        for (size_t j = 0; j < g->n; j++) {
            const struct gw_put_entry *e = &b.entries[g->idx[j]];
            recs[j].partition_key = (struct store_bytes){(const uint8_t *)e->pk, e->pk_len};
            recs[j].data = (struct store_bytes){e->data, e->data_len};
            g->bytes += e->data_len + e->pk_len;
            recs[j].explicit_hash_key = NULL;
            if (e->ehk && store_hashkey_parse(e->ehk, strlen(e->ehk), &hks[j], NULL) == 0)
                recs[j].explicit_hash_key = &hks[j];
        }
        struct store_err se = {0};
        struct store_shard *shard = shard_of[g->idx[0]];
        /* The context's, not the request's: the client may go before the
         * store learns the numbers (a replicated backend learns them late). */
        g->seqs = xcalloc(g->n, sizeof *g->seqs);
        if (store_shard_append(shard, recs, g->n, g->seqs, on_group_done, g, &se) != 0) {
            for (size_t j = 0; j < g->n; j++)
                ctx->res[g->idx[j]].state = ENTRY_FAILED;
            snprintf(ctx->fail_msg, sizeof ctx->fail_msg, "%s", se.msg);
            if (se.code == STORE_EUNAVAIL)
                ctx->unavailable += g->n;
            gw_log(GW_LOG_WARN, "append_refused", "stream=%s shard=%u: %s", ctx->stream, g->shard,
                   se.msg);
            continue;
        }
        ctx->pending++;
    }
    json_decref(tree);
    if (ctx->pending == 0) {
        put_finish(ctx);
        return;
    }
    gw_req_on_abort(req, on_put_abort, ctx);
    gw_loop_commit_soon(app);
    return;
fail:
    if (ctx)
        put_ctx_free(ctx);
    json_decref(tree);
    gw_body_error(req, &err);
}

void op_put_record(struct gw_app *app, struct gw_req *req) { put(app, req, false); }

void op_put_records(struct gw_app *app, struct gw_req *req)
{
    /* The REST door's raw-body form is one record, answered as PutRecord. */
    bool raw = gw_req_param(req, 0) && gw_req_query_param(req, "partitionKey");
    put(app, req, !raw);
}

/* ---- shard iterators ------------------------------------------------------------
 *
 *   payload: created_ms 8 | shard index 4 | position 42 ("S"/"A" + seq) | name n
 *
 * sealed by gw_op_token_make('I', ...): tamper-evident, expires after
 * --iterator-ttl, names the stream incarnation (its creation time), so an
 * iterator of a deleted and re-created stream is not silently valid. */

struct iter {
    int64_t created_ms;
    uint32_t shard;
    struct store_pos pos;
    char name[STORE_STREAM_NAME_MAX + 1];
};

#define ITER_HEAD (8 + 4 + STORE_POS_STRLEN - 1) /* the payload before the name */

static char *iter_make(struct gw_app *app, const struct iter *it)
{
    unsigned char p[ITER_HEAD + STORE_STREAM_NAME_MAX];
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((uint64_t)it->created_ms >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        p[8 + i] = (unsigned char)(it->shard >> (24 - 8 * i));
    char pos[STORE_POS_STRLEN];
    store_pos_format(&it->pos, pos);
    memcpy(p + 12, pos, STORE_POS_STRLEN - 1);
    size_t nl = strlen(it->name);
    memcpy(p + ITER_HEAD, it->name, nl);
    return gw_op_token_make(app, 'I', p, ITER_HEAD + nl);
}

static int iter_open(struct gw_app *app, const char *token, struct iter *it, int64_t *issued,
                     struct gw_error *err)
{
    /* Room for one byte more than the longest name iter_make() seals, so
     * that a longer name field is seen and refused, never copied. */
    unsigned char p[ITER_HEAD + STORE_STREAM_NAME_MAX + 1];
    size_t n;
    if (gw_op_token_open(app, 'I', token, p, sizeof p, &n, issued) != 0 || n < ITER_HEAD + 1 ||
        n - ITER_HEAD > STORE_STREAM_NAME_MAX)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "Invalid ShardIterator.");
    uint64_t c = 0;
    for (int i = 0; i < 8; i++)
        c = (c << 8) | p[i];
    it->created_ms = (int64_t)c;
    it->shard = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
    if (store_pos_parse((const char *)p + 12, STORE_POS_STRLEN - 1, &it->pos, NULL) != 0)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "Invalid ShardIterator.");
    size_t nl = n - ITER_HEAD;
    memcpy(it->name, p + ITER_HEAD, nl);
    it->name[nl] = '\0';
    return 0;
}

/* Resolves GetShardIterator's members in "body" to an iterator position. */
static int iterator_from_body(struct gw_app *app, json_t *body, struct iter *it,
                              struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn, *shard_name;
    int type;
    struct gw_start st = {0};
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_str(&v, body, "ShardId", "shardId", GW_V_REQUIRED, 1, 128, "[a-zA-Z0-9_.-]+",
                 gw_match_name, &shard_name) != 0 ||
        gw_v_enum(&v, body, "ShardIteratorType", "shardIteratorType", GW_V_REQUIRED,
                  gw_start_type_names, &type) != 0 ||
        gw_v_str(&v, body, "StartingSequenceNumber", "startingSequenceNumber", 0, 0, SIZE_MAX,
                 "0|([1-9]\\d{0,128})", gw_match_seqnum, &st.seq) != 0 ||
        gw_v_time(&v, body, "Timestamp", "timestamp", 0, &st.ts_ms, &st.has_ts) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    st.type = (enum gw_start_type)type;
    struct store_stream *s;
    if (gw_op_stream_lookup(app, name, arn, &s, err) != 0 ||
        gw_op_stream_readable(app, s, err) != 0)
        return -1;
    struct store_stream_info info;
    store_stream_info(s, &info);
    struct store_shard *shard;
    if (store_stream_shard_lookup(s, shard_name, &shard, NULL) != 0)
        return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND,
                            "Shard %s in stream %s under account %s does not exist", shard_name,
                            info.name, app->cfg->account);
    struct store_shard_info si;
    store_shard_info(shard, &si);
    *it = (struct iter){.created_ms = info.created_ms, .shard = si.index};
    if (gw_start_resolve(app, s, shard, &st, GW_START_FOR_ITERATOR, &it->pos, err) != 0)
        return -1;
    snprintf(it->name, sizeof it->name, "%s", info.name);
    return 0;
}

void op_get_shard_iterator(struct gw_app *app, struct gw_req *req)
{
    struct gw_error err = {0};
    json_t *body = NULL;
    struct iter it;
    if (gw_op_body(req, &body, &err) != 0 || iterator_from_body(app, body, &it, &err) != 0) {
        json_decref(body);
        gw_body_error(req, &err);
        return;
    }
    char *tok = iter_make(app, &it);
    json_t *out = json_pack("{s:s}", "ShardIterator", tok);
    free(tok);
    gw_body_reply(req, out);
    json_decref(out);
    json_decref(body);
}

/* Reads from iterator "it" (issued at "issued") and answers GetRecords. */
static void read_records(struct gw_app *app, struct gw_req *req, struct iter *it, int64_t issued,
                         int64_t limit)
{
    struct gw_error err = {0};
    struct store_cursor *cur = NULL;
    int64_t now = gw_app_now_ms();
    if (now - issued > (int64_t)app->cfg->iterator_ttl_ms) {
        gw_error_set(&err, GW_ERR_EXPIRED_ITERATOR,
                     "Iterator expired. The iterator was created at time %lld while right now it "
                     "is %lld which is further in the future than the tolerated delay of %llu "
                     "milliseconds.",
                     (long long)issued, (long long)now,
                     (unsigned long long)app->cfg->iterator_ttl_ms);
        goto fail;
    }
    struct store_stream *s;
    if (gw_op_stream_lookup(app, it->name, NULL, &s, &err) != 0 ||
        gw_op_stream_readable(app, s, &err) != 0)
        goto fail;
    struct store_stream_info info;
    store_stream_info(s, &info);
    struct store_shard *shard = store_stream_shard(s, it->shard);
    if (info.created_ms != it->created_ms || !shard) {
        gw_error_set(&err, GW_ERR_RESOURCE_NOT_FOUND,
                     "Shard %s in stream %s under account %s does not exist", "of this iterator",
                     it->name, app->cfg->account);
        goto fail;
    }
    if (!gw_throttle_read(app->throttle, shard)) {
        gw_metrics_read_throttled(app->metrics, info.name, it->shard);
        char sid[STORE_SHARD_ID_STRLEN];
        shard_id(it->shard, sid);
        gw_error_set(&err, GW_ERR_PROVISIONED_THROUGHPUT_EXCEEDED,
                     "Rate exceeded for Shard - %s in stream %s under account %s.", sid, it->name,
                     app->cfg->account);
        goto fail;
    }
    cur = store_cursor_new();
    const struct store_record *recs;
    size_t n;
    struct store_pos next;
    int64_t behind = 0;
    struct store_err se = {0};
    if (store_shard_read(shard, cur, &it->pos, (size_t)limit, GET_RECORDS_MAX_BYTES, &recs, &n,
                         &next, &behind, &se) != 0) {
        gw_op_store_error(&se, &err);
        goto fail;
    }
    it->pos = next;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += recs[i].data.len + recs[i].partition_key.len;
    /* Iterator age: how old the oldest record of this answer is (CloudWatch's
     * GetRecords.IteratorAgeMilliseconds); 0 once a read comes back empty. */
    gw_metrics_get(app->metrics, info.name, it->shard, n, bytes,
                   n > 0 && now > recs[0].arrival_ms ? now - recs[0].arrival_ms : 0);
    /* At the end of a closed shard there is nothing to continue from: no
     * NextShardIterator, and the children to go on with instead (KCL hands
     * over from parent to child on exactly that). */
    bool ended = store_shard_at_end(shard, &next);
    /* Written directly (JSON or CBOR): up to 10,000 records, and a tree would
     * cost more than the read itself. */
    struct gw_reply w;
    gw_reply_init(&w, req);
    gw_reply_object(&w, 3);
    gw_reply_key(&w, "Records");
    gw_reply_array(&w, n);
    for (size_t i = 0; i < n; i++)
        gw_op_record(&w, &recs[i]);
    gw_reply_end(&w);
    if (!ended) {
        char *tok = iter_make(app, it);
        gw_reply_key(&w, "NextShardIterator");
        gw_reply_string(&w, tok);
        free(tok);
    }
    gw_reply_key(&w, "MillisBehindLatest");
    gw_reply_int(&w, behind > 0 ? behind : 0);
    if (ended) {
        gw_reply_key(&w, "ChildShards");
        gw_op_child_shards(&w, shard);
    }
    gw_reply_end(&w);
    gw_reply_send(&w, 200);
    store_cursor_free(cur);
    return;
fail:
    store_cursor_free(cur);
    gw_body_error(req, &err);
}

void op_get_records(struct gw_app *app, struct gw_req *req)
{
    struct gw_error err = {0};
    json_t *body = NULL;
    struct gw_valid v;
    gw_valid_init(&v, &err);
    const char *token;
    int64_t limit = 10000;
    struct iter it;
    int64_t issued;
    if (gw_op_body(req, &body, &err) != 0 ||
        gw_v_str(&v, body, "ShardIterator", "shardIterator", GW_V_REQUIRED, 1, 512, NULL, NULL,
                 &token) != 0 ||
        gw_v_int(&v, body, "Limit", "limit", 0, 1, 10000, &limit, NULL) != 0 ||
        gw_valid_done(&v) != 0 || iter_open(app, token, &it, &issued, &err) != 0) {
        json_decref(body);
        gw_body_error(req, &err);
        return;
    }
    json_decref(body);
    read_records(app, req, &it, issued, limit);
}

/* The REST door's read: GET .../shards/{shard}/records?from=TYPE[&sequenceNumber=N]
 * [&timestamp=SECONDS][&limit=N], or ?iterator=NEXT to continue. */
void op_rest_get_records(struct gw_app *app, struct gw_req *req)
{
    struct gw_error err = {0};
    json_t *body = json_object();
    struct iter it;
    int64_t issued = gw_app_now_ms(), limit = 10000;
    const char *lim = gw_req_query_param(req, "limit");
    const char *iterator = gw_req_query_param(req, "iterator");
    if (lim) {
        char *end;
        long long l = strtoll(lim, &end, 10);
        if (*end || l < 1 || l > 10000) {
            struct gw_valid v;
            gw_valid_init(&v, &err);
            gw_valid_add(&v, lim, "limit", "have value between 1 and 10000");
            gw_valid_done(&v);
            goto fail;
        }
        limit = l;
    }
    if (iterator) {
        if (iter_open(app, iterator, &it, &issued, &err) != 0)
            goto fail;
    } else {
        const char *from = gw_req_query_param(req, "from");
        json_object_set_new(body, "StreamName", json_string(gw_req_param(req, 0)));
        json_object_set_new(body, "ShardId", json_string(gw_req_param(req, 1)));
        json_object_set_new(body, "ShardIteratorType", json_string(from ? from : "TRIM_HORIZON"));
        const char *seq = gw_req_query_param(req, "sequenceNumber");
        if (seq)
            json_object_set_new(body, "StartingSequenceNumber", json_string(seq));
        const char *ts = gw_req_query_param(req, "timestamp");
        int64_t ts_ms;
        if (ts) {
            if (gw_op_query_time(ts, "timestamp", &ts_ms, &err) != 0)
                goto fail;
            json_object_set_new(body, "Timestamp", gw_json_time(ts_ms));
        }
        if (iterator_from_body(app, body, &it, &err) != 0)
            goto fail;
    }
    json_decref(body);
    read_records(app, req, &it, issued, limit);
    return;
fail:
    json_decref(body);
    gw_body_error(req, &err);
}
