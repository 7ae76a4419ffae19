/* ops_util.c - helpers shared by the operation handlers: request bodies for
 * both doors, stream resolution, shard JSON, sealed tokens. */
#include <ctype.h>
#include <event2/buffer.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "codec.h"
#include "loop.h"
#include "mem.h"
#include "ops.h"

/* A catalog change's answer, parked until its manifest is durable (or
 * until the store callback the operation chose: gw_op_defer). */
struct parked {
    struct gw_req *req; /* NULL once the client has gone */
    json_t *out;
    bool deferred;
};

/* The parked answer of the mutating operation whose body function is
 * running: body functions run one at a time, on the loop thread. */
static struct parked *running;

/* Who calls the operation that is running, and its name (router.c sets
 * both around each call; operations run one at a time, on the loop thread). */
static const struct gw_principal *caller;
static const char *caller_op;

void gw_op_set_caller(const struct gw_principal *who, const char *op)
{
    caller = who;
    caller_op = op;
}

bool gw_op_caller_restricted(void)
{
    return caller && caller->nstreams > 0;
}

int gw_op_permitted(struct gw_app *app, const char *stream, struct gw_error *err)
{
    if (gw_principal_allows(caller, stream))
        return 0;
    return gw_error_set(err, GW_ERR_ACCESS_DENIED,
                        "User: arn:aws:iam::%s:user/%s is not authorized to perform: kinesis:%s "
                        "on resource: arn:aws:kinesis:%s:%s:stream/%.128s because the key may "
                        "use only the streams listed for it in --credentials",
                        app->cfg->account, caller->id, caller_op ? caller_op : "?",
                        app->cfg->region, app->cfg->account, stream);
}

int gw_op_permitted_arn(struct gw_app *app, const char *arn, struct gw_error *err)
{
    if (!gw_op_caller_restricted() || !arn)
        return 0;
    /* arn:...:stream/NAME, or a consumer's ARN below it. */
    const char *p = strstr(arn, ":stream/");
    char name[STORE_STREAM_NAME_MAX + 1] = "";
    if (p) {
        p += 8;
        size_t n = strcspn(p, "/");
        if (n <= STORE_STREAM_NAME_MAX) {
            memcpy(name, p, n);
            name[n] = '\0';
        }
    }
    return gw_op_permitted(app, name[0] ? name : arn, err);
}

static void on_parked_abort(struct gw_req *req, void *arg)
{
    ((struct parked *)arg)->req = NULL;
}

static void on_catalog_synced(void *arg, const struct store_err *se)
{
    struct parked *p = arg;
    if (p->req) {
        gw_req_on_abort(p->req, NULL, NULL);
        if (se) {
            struct gw_error err = {0};
            gw_error_set(&err, GW_ERR_INTERNAL_FAILURE, "Could not persist the change: %s",
                         se->msg);
            gw_body_error(p->req, &err);
        } else {
            gw_body_reply(p->req, p->out);
        }
    }
    json_decref(p->out);
    free(p);
}

void gw_op_run(struct gw_app *app, struct gw_req *req, gw_op_body_fn fn, bool mutates)
{
    struct gw_error err = {0};
    json_t *body = NULL, *out = NULL;
    struct parked *p = mutates ? xcalloc(1, sizeof *p) : NULL;
    running = p;
    int rc = gw_op_body(req, &body, &err) != 0 || fn(app, req, body, &out, &err) != 0;
    running = NULL;
    json_decref(body);
    if (rc) {
        /* A body function defers only once its store call succeeded. */
        gw_body_error(req, &err);
        json_decref(out);
        free(p);
        return;
    }
    if (!mutates) {
        gw_body_reply(req, out);
        json_decref(out);
        return;
    }
    p->req = req;
    p->out = out;
    gw_req_on_abort(req, on_parked_abort, p);
    /* Store callbacks fire from a later commit or dispatch, never inside the
     * call that registered them: "p" is complete before either runs. */
    if (!p->deferred)
        store_catalog_sync(app->store, on_catalog_synced, p);
    gw_loop_commit_soon(app);
}

void *gw_op_defer(void)
{
    if (running)
        running->deferred = true;
    return running;
}

void gw_op_undefer(void)
{
    if (running)
        running->deferred = false;
}

void gw_op_deferred_done(void *arg, const struct store_err *se)
{
    on_catalog_synced(arg, se);
}

void gw_op_each_stream(struct gw_app *app, void (*fn)(struct store_stream *s, void *arg),
                       void *arg)
{
    size_t n = store_stream_count(app->store);
    const char **names = xcalloc(n ? n : 1, sizeof *names);
    n = store_stream_list(app->store, NULL, names, n);
    char **copy = xcalloc(n ? n : 1, sizeof *copy);
    for (size_t i = 0; i < n; i++)
        copy[i] = xstrdup(names[i]);
    free(names);
    for (size_t i = 0; i < n; i++) {
        struct store_stream *s;
        if (store_stream_lookup(app->store, copy[i], &s, NULL) == 0)
            fn(s, arg);
        free(copy[i]);
    }
    free(copy);
}

int gw_op_body(struct gw_req *req, json_t **body, struct gw_error *err)
{
    size_t len;
    gw_req_body(req, &len);
    bool rest = gw_req_param(req, 0) != NULL || strcmp(gw_req_path(req), "/") != 0;
    if (rest && len == 0) {
        *body = json_object();
    } else if (gw_body_decode(req, body, err) != 0) {
        return -1;
    }
    /* REST path parameters become the Kinesis members they name, in the
     * order the route's pattern lists them. */
    const struct gw_op *op = gw_req_op(req);
    if (!rest || !op || !op->rest_path)
        return 0;
    static const struct {
        const char *param, *member;
    } names[] = {{"{stream}", "StreamName"},
                 {"{shard}", "ShardId"},
                 {"{shardToSplit}", "ShardToSplit"},
                 {"{shardToMerge}", "ShardToMerge"},
                 {"{consumer}", "ConsumerName"}};
    size_t i = 0;
    for (const char *p = strchr(op->rest_path, '{'); p && gw_req_param(req, i);
         p = strchr(p + 1, '{'), i++)
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (strncmp(p, names[k].param, strlen(names[k].param)) == 0)
                json_object_set_new(*body, names[k].member, json_string(gw_req_param(req, i)));
    return 0;
}

int gw_op_stream_fields(struct gw_valid *v, json_t *body, bool required, const char **name,
                        const char **arn)
{
    if (gw_v_str(v, body, "StreamName", "streamName", 0, 1, 128, "[a-zA-Z0-9_.-]+",
                 gw_match_name, name) != 0 ||
        gw_v_str(v, body, "StreamARN", "streamARN", 0, 1, 2048,
                 "arn:aws.*:kinesis:.*:\\d{12}:stream/.+", gw_match_stream_arn, arn) != 0)
        return -1;
    if (required && !json_is_string(json_object_get(body, "StreamName")) &&
        !json_is_string(json_object_get(body, "StreamARN")))
        gw_valid_add(v, NULL, "streamName", "not be null");
    return 0;
}

int gw_op_stream_lookup(struct gw_app *app, const char *name, const char *arn,
                        struct store_stream **out, struct gw_error *err)
{
    struct store_stream *by_name = NULL, *by_arn = NULL;
    /* A key kept to some streams learns nothing of the others, not even
     * whether they exist. */
    if ((name && gw_op_permitted(app, name, err) != 0) || gw_op_permitted_arn(app, arn, err) != 0)
        return -1;
    if (name && store_stream_lookup(app->store, name, &by_name, NULL) != 0)
        return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND, "Stream %s under account %s not found.",
                            name, app->cfg->account);
    if (arn && store_stream_lookup_arn(app->store, arn, &by_arn, NULL) != 0) {
        /* Same words as by name: "Stream NAME under account ACCOUNT". */
        const char *sn = strstr(arn, ":stream/");
        char acct[16] = "";
        const char *colon = sn ? sn : arn;
        const char *p = colon;
        while (p > arn && p[-1] != ':')
            p--;
        if (colon - p == 12)
            memcpy(acct, p, 12);
        return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND, "Stream %s under account %s not found.",
                            sn ? sn + 8 : arn, acct[0] ? acct : app->cfg->account);
    }
    if (by_name && by_arn && by_name != by_arn)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "StreamARN %s does not name stream %s.", arn, name);
    *out = by_name ? by_name : by_arn;
    if (!*out)
        return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND, "Stream not found.");
    return 0;
}

int gw_op_stream_readable(struct gw_app *app, struct store_stream *s, struct gw_error *err)
{
    struct store_stream_info info;
    store_stream_info(s, &info);
    if (info.status == STORE_STREAM_ACTIVE || info.status == STORE_STREAM_UPDATING)
        return 0;
    return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND, "Stream %s under account %s not found.",
                        info.name, app->cfg->account);
}

int gw_op_stream_active(struct gw_app *app, struct store_stream *s, struct gw_error *err)
{
    struct store_stream_info info;
    store_stream_info(s, &info);
    if (info.status == STORE_STREAM_ACTIVE)
        return 0;
    return gw_error_set(err, GW_ERR_RESOURCE_IN_USE,
                        "Stream %s under account %s not ACTIVE, instead in state %s", info.name,
                        app->cfg->account, store_stream_status_name(info.status));
}

int gw_op_active_stream(struct gw_app *app, const char *name, const char *arn,
                        struct store_stream **out, struct store_stream_info *info,
                        struct gw_error *err)
{
    if (gw_op_stream_lookup(app, name, arn, out, err) != 0 ||
        gw_op_stream_active(app, *out, err) != 0)
        return -1;
    store_stream_info(*out, info);
    return 0;
}

json_t *gw_op_shard_json(const struct store_shard_info *si)
{
    char a[STORE_HASHKEY_STRLEN], b[STORE_HASHKEY_STRLEN], seq[STORE_SEQ_STRLEN];
    store_hashkey_format(&si->hash_start, a);
    store_hashkey_format(&si->hash_end, b);
    json_t *o = json_object();
    json_object_set_new(o, "ShardId", json_string(si->id));
    if (si->parent_id)
        json_object_set_new(o, "ParentShardId", json_string(si->parent_id));
    if (si->adjacent_parent_id)
        json_object_set_new(o, "AdjacentParentShardId", json_string(si->adjacent_parent_id));
    json_object_set_new(o, "HashKeyRange",
                        json_pack("{s:s, s:s}", "StartingHashKey", a, "EndingHashKey", b));
    store_seq_format(si->starting_seq, seq);
    json_t *range = json_pack("{s:s}", "StartingSequenceNumber", seq);
    if (si->has_ending_seq) {
        store_seq_format(si->ending_seq, seq);
        json_object_set_new(range, "EndingSequenceNumber", json_string(seq));
    }
    json_object_set_new(o, "SequenceNumberRange", range);
    return o;
}

#define CHILDREN_MAX 16 /* a split has two children, a merge one */

void gw_op_child_shards(struct gw_reply *w, const struct store_shard *sh)
{
    const struct store_shard *kids[CHILDREN_MAX];
    size_t n = store_shard_children(sh, kids, CHILDREN_MAX);
    gw_reply_array(w, n);
    for (size_t i = 0; i < n; i++) {
        struct store_shard_info ci;
        store_shard_info(kids[i], &ci);
        char a[STORE_HASHKEY_STRLEN], b[STORE_HASHKEY_STRLEN];
        store_hashkey_format(&ci.hash_start, a);
        store_hashkey_format(&ci.hash_end, b);
        gw_reply_object(w, 3);
        gw_reply_key(w, "ShardId");
        gw_reply_string(w, ci.id);
        gw_reply_key(w, "ParentShards");
        gw_reply_array(w, ci.adjacent_parent_id ? 2 : 1);
        gw_reply_string(w, ci.parent_id);
        if (ci.adjacent_parent_id)
            gw_reply_string(w, ci.adjacent_parent_id);
        gw_reply_end(w);
        gw_reply_key(w, "HashKeyRange");
        gw_reply_object(w, 2);
        gw_reply_key(w, "StartingHashKey");
        gw_reply_string(w, a);
        gw_reply_key(w, "EndingHashKey");
        gw_reply_string(w, b);
        gw_reply_end(w);
        gw_reply_end(w);
    }
    gw_reply_end(w);
}

json_t *gw_op_mode_json(const struct store_stream *s)
{
    struct store_stream_info info;
    store_stream_info(s, &info);
    return json_pack("{s:s}", "StreamMode", info.on_demand ? "ON_DEMAND" : "PROVISIONED");
}

int gw_op_query_time(const char *text, const char *name, int64_t *ms, struct gw_error *err)
{
    /* strtod alone would take leading blanks, "nan", "inf", C99 hexadecimal
     * floats ("0x10") and 1e300 (whose product with 1000 does not fit an
     * int64_t): only the characters of a decimal number are allowed, and the
     * value must be finite and in range. */
    char *end = NULL;
    double sec = 0;
    bool ok = text && (isdigit((unsigned char)text[0]) || text[0] == '-' || text[0] == '+' ||
                       text[0] == '.') &&
              text[strspn(text, "0123456789+-.eE")] == '\0';
    if (ok) {
        sec = strtod(text, &end);
        ok = end != text && *end == '\0' && isfinite(sec) && fabs(sec) <= 1e14;
    }
    if (ok) {
        *ms = (int64_t)llround(sec * 1000.0);
        return 0;
    }
    struct gw_valid v;
    gw_valid_init(&v, err);
    gw_valid_add(&v, text ? text : "", name,
                 "be a number of seconds since the epoch between -1e14 and 1e14");
    return gw_valid_done(&v);
}

int gw_op_store_error(const struct store_err *se, struct gw_error *err)
{
    return gw_error_set(err, gw_app_store_errtype(se->code), "%s", se->msg);
}

/* ---- records and JSON text, through the reply writer ----------------------- */

void gw_op_json_string(struct evbuffer *out, const uint8_t *p, size_t n)
{
    struct gw_reply w;
    gw_reply_init_json(&w, out);
    gw_reply_string_n(&w, (const char *)p, n);
    gw_reply_finish(&w);
}

void gw_op_record(struct gw_reply *w, const struct store_record *r)
{
    char seq[STORE_SEQ_STRLEN];
    size_t seq_len = store_seq_format(r->seq, seq);
    gw_reply_object(w, 4);
    gw_reply_key(w, "SequenceNumber");
    gw_reply_string_n(w, seq, seq_len);
    gw_reply_key(w, "ApproximateArrivalTimestamp");
    gw_reply_time_ms(w, r->arrival_ms);
    gw_reply_key(w, "Data");
    gw_reply_blob(w, r->data.p, r->data.len);
    gw_reply_key(w, "PartitionKey");
    gw_reply_string_n(w, (const char *)r->partition_key.p, r->partition_key.len);
    gw_reply_end(w);
}

void gw_op_record_json(struct evbuffer *out, const struct store_record *r)
{
    struct gw_reply w;
    gw_reply_init_json(&w, out);
    gw_op_record(&w, r);
    gw_reply_finish(&w);
}

/* ---- tokens -------------------------------------------------------------------
 *
 *   base64url( version 1 | kind 1 | issued ms 8 | payload n | hmac-sha256[0..16) )
 *
 * The MAC covers everything before it; 16 bytes of it are plenty for tokens
 * that live minutes. */

#define TOKEN_MAC 16
#define TOKEN_MAX_PAYLOAD 300

static void mac(struct gw_app *app, const unsigned char *data, size_t len, unsigned char *out)
{
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), app->iter_key, sizeof app->iter_key, data, len, full, &n);
    memcpy(out, full, TOKEN_MAC);
}

char *gw_op_token_make(struct gw_app *app, char kind, const void *payload, size_t len)
{
    unsigned char raw[10 + TOKEN_MAX_PAYLOAD + TOKEN_MAC];
    if (len > TOKEN_MAX_PAYLOAD)
        len = TOKEN_MAX_PAYLOAD;
    int64_t now = gw_app_now_ms();
    raw[0] = 1;
    raw[1] = (unsigned char)kind;
    for (int i = 0; i < 8; i++)
        raw[2 + i] = (unsigned char)((uint64_t)now >> (56 - 8 * i));
    memcpy(raw + 10, payload, len);
    mac(app, raw, 10 + len, raw + 10 + len);
    size_t n = 10 + len + TOKEN_MAC;
    char *out = xmalloc(gw_base64url_encoded_len(n) + 1);
    out[gw_base64url_encode_to(raw, n, out)] = '\0';
    return out;
}

int gw_op_token_open(struct gw_app *app, char kind, const char *token, void *payload, size_t cap,
                     size_t *len, int64_t *issued_ms)
{
    unsigned char raw[10 + TOKEN_MAX_PAYLOAD + TOKEN_MAC];
    size_t tl = strlen(token);
    if (tl > sizeof raw * 4 / 3 + 4)
        return -1;
    long dl = gw_base64url_decode(token, tl, raw, sizeof raw);
    if (dl < 0)
        return -1;
    size_t n = (size_t)dl;
    if (n < 10 + TOKEN_MAC || raw[0] != 1 || raw[1] != (unsigned char)kind)
        return -1;
    unsigned char want[TOKEN_MAC];
    mac(app, raw, n - TOKEN_MAC, want);
    if (CRYPTO_memcmp(want, raw + n - TOKEN_MAC, TOKEN_MAC) != 0)
        return -1;
    size_t plen = n - 10 - TOKEN_MAC;
    if (plen > cap)
        return -1;
    memcpy(payload, raw + 10, plen);
    *len = plen;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = (t << 8) | raw[2 + i];
    *issued_ms = (int64_t)t;
    return 0;
}
