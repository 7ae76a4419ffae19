/* subscribe.c - SubscribeToShard: subscription state, wake-ups, and the pull
 * pump.
 *
 * A subscription is (consumer, shard, position, token bucket, streamed
 * reply). Nothing is pushed from the writer's stack: the store calls the
 * shard's listener after an append becomes readable (durable per the mode),
 * the listener resumes every subscription of that shard, and the protocol
 * layer pulls (h2.c's data provider / http1.c's pump) when the peer has
 * window. The pull reads from the subscription's position while it has
 * tokens, frames one event and returns; with nothing to send it defers and a
 * timer brings it back for the heartbeat (an empty event at least every
 * --heartbeat), the token refill, or the end of its lifetime
 * (--subscription-ttl). A slow reader is never pulled, so it costs at most
 * one event of buffering; records are never dropped, the consumer falls
 * behind and MillisBehindLatest says by how much.
 *
 *   event = prelude | headers (:message-type event, :event-type
 *           SubscribeToShardEvent, :content-type application/json) |
 *           {"Records":[...],"ContinuationSequenceNumber":..,"MillisBehindLatest":..} | crc
 *
 * Invariants: a subscription is in its shard's list from creation until it
 * ends; store handles (shard, listener) are dropped before a stream or
 * consumer can be deleted (gw_sub_end). */
#include "subscribe.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "eventstream.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "ops.h"
#include "ratelimit.h"

#define TAKEOVER_MS 5000              /* a second subscription within 5 s is refused */
#define EVENT_MAX_RECORD_BYTES (1u << 20) /* record data per event */
#define EVENT_MAX_RECORDS 10000

enum sub_state { SUB_START, SUB_RUNNING, SUB_ENDING, SUB_DONE };

struct shard_subs;

struct gw_sub {
    struct gw_app *app;
    struct gw_req *req;
    struct shard_subs *ss;
    struct gw_sub *prev, *next; /* in ss->subs */
    bool sse;
    enum sub_state state;
    char consumer_arn[2100];
    struct store_pos pos;       /* next record to send */
    struct store_seq last;      /* ContinuationSequenceNumber */
    struct gw_ratelimit bucket;
    struct store_cursor *cur;
    struct event *timer;
    int64_t started_ms, expires_ms, last_event_ms;
    const char *end_type;       /* exception to send when ENDING */
    char end_msg[256];
};

/* Encode once: the Records JSON of a batch read from position "from", kept so
 * every subscription at the same position (all caught-up consumers, woken by
 * the same append) reuses it instead of reading and encoding it again. */
#define ENC_CACHE 4

struct enc_batch {
    bool valid;
    struct store_pos from, next;
    size_t n;
    uint64_t bytes;         /* record data + partition keys, for the bucket */
    struct store_seq last;
    int64_t behind;
    uint8_t *msg;           /* the whole framed SubscribeToShardEvent */
    size_t len;
};

/* The subscriptions of one shard and the store listener that wakes them. */
struct shard_subs {
    struct gw_app *app;
    struct store_shard *shard;
    char stream[STORE_STREAM_NAME_MAX + 1];
    struct store_listener *listener;
    struct gw_sub *subs;
    struct shard_subs *next;
    struct enc_batch cache[ENC_CACHE];
    unsigned cache_next;
};


static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t gw_sub_count(const struct gw_app *app) { return app->_nsubs; }

/* ---- registry ---------------------------------------------------------------- */

static void on_shard_readable(void *arg, struct store_shard *shard)
{
    struct shard_subs *ss = arg;
    for (struct gw_sub *s = ss->subs; s; s = s->next)
        if (s->req)
            gw_resp_resume(s->req);
}

static struct shard_subs *shard_subs_get(struct gw_app *app, struct store_shard *shard,
                                         const char *stream)
{
    for (struct shard_subs *ss = app->_subs; ss; ss = ss->next)
        if (ss->shard == shard)
            return ss;
    struct shard_subs *ss = xcalloc(1, sizeof *ss);
    ss->app = app;
    ss->shard = shard;
    snprintf(ss->stream, sizeof ss->stream, "%s", stream);
    ss->listener = store_shard_listen(shard, on_shard_readable, ss);
    ss->next = app->_subs;
    app->_subs = ss;
    return ss;
}

static void shard_subs_release(struct shard_subs *ss)
{
    struct gw_app *app = ss->app;
    if (ss->subs)
        return;
    store_listener_remove(ss->listener);
    for (int i = 0; i < ENC_CACHE; i++)
        free(ss->cache[i].msg);
    for (struct shard_subs **p = &app->_subs; *p; p = &(*p)->next)
        if (*p == ss) {
            *p = ss->next;
            break;
        }
    free(ss);
}

static void unlink_sub(struct gw_sub *s)
{
    struct shard_subs *ss = s->ss;
    if (!ss)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        ss->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->ss = NULL;
    s->prev = s->next = NULL;
    shard_subs_release(ss);
}

static void sub_free(struct gw_sub *s)
{
    struct gw_app *app = s->app;
    unlink_sub(s);
    if (s->timer)
        event_free(s->timer);
    store_cursor_free(s->cur);
    app->_nsubs--;
    free(s);
}

static void on_abort(struct gw_req *req, void *arg)
{
    struct gw_sub *s = arg;
    gw_log(GW_LOG_DEBUG, "sub_abort", "consumer=%s peer went away", s->consumer_arn);
    sub_free(s);
}

/* Ends "s" with an exception message; the pull sends it and finishes. The
 * store handles are dropped now. */
static void end_with(struct gw_sub *s, const char *type, const char *msg)
{
    if (s->state == SUB_ENDING || s->state == SUB_DONE)
        return;
    s->state = SUB_ENDING;
    s->end_type = type;
    snprintf(s->end_msg, sizeof s->end_msg, "%s", msg);
    unlink_sub(s);
    if (s->req)
        gw_resp_resume(s->req);
}

void gw_sub_end(struct gw_app *app, const char *stream, const char *consumer_arn,
                const char *exception_type, const char *message)
{
    for (struct shard_subs *ss = app->_subs, *next; ss; ss = next) {
        next = ss->next;
        if (strcmp(ss->stream, stream) != 0)
            continue;
        /* end_with() may free "ss" once its last subscription leaves. */
        for (struct gw_sub *s = ss->subs, *sn; s; s = sn) {
            sn = s->next;
            if (!consumer_arn || strcmp(s->consumer_arn, consumer_arn) == 0)
                end_with(s, exception_type, message);
        }
    }
}

/* ---- the pump ------------------------------------------------------------------ */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct gw_sub *s = arg;
    if (s->req)
        gw_resp_resume(s->req);
}

static void arm(struct gw_sub *s, int64_t ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(s->timer, &tv);
}

/* After an event that reached the newest readable record: nothing more to
 * send until the store's listener (new records) or the heartbeat/expiry
 * timer. Saying so with the data (GW_PULL_DEFER) spares the transport a
 * second, empty pull per push. */
static enum gw_pull sent(struct gw_sub *s, int64_t now)
{
    int has = 0;
    struct store_seq tip;
    store_shard_latest(s->ss->shard, &has, &tip);
    if (!has || store_seq_cmp(s->last, tip) < 0)
        return GW_PULL_MORE;
    /* A timer still pending fires no later than this push's heartbeat
     * would be due; the pull it triggers re-arms for what is then left. So
     * only an idle timer is armed: no timer-heap update per push. */
    if (!evtimer_pending(s->timer, NULL)) {
        int64_t wake = s->last_event_ms + (int64_t)s->app->cfg->heartbeat_ms;
        if (s->expires_ms < wake)
            wake = s->expires_ms;
        arm(s, wake - now);
    }
    return GW_PULL_DEFER;
}

/* The sequence number just before "pos": what AFTER_SEQUENCE_NUMBER resumes
 * from to reach "pos" again, for events sent before any record. */
static struct store_seq before(struct store_pos pos)
{
    struct store_seq q = pos.seq;
    if (pos.after)
        return q;
    if (q.counter > 0) {
        q.counter--;
    } else if (q.gen > 0) {
        q.gen--;
        q.counter = UINT64_MAX;
    }
    return q;
}

/* Frames "payload" as one event-stream message of "kind" into "out". */
/* A new buffer holding the prelude and headers of a message with "plen"
 * bytes of payload; the caller writes the payload at "*off" and calls
 * gw_es_encode_finish(msg, *size). NULL (logged) if it cannot be framed. */
static uint8_t *frame_begin(const struct gw_es_headers *hs, size_t plen, size_t *size,
                            size_t *off)
{
    char why[128];
    if (gw_es_message_size(hs->h, hs->n, plen, size, why, sizeof why) != 0) {
        gw_log(GW_LOG_ERROR, "eventstream", "cannot frame a %zu-byte event: %s", plen, why);
        return NULL;
    }
    uint8_t *msg = xmalloc(*size);
    gw_es_encode_head(hs->h, hs->n, plen, msg, *size, off, why, sizeof why);
    return msg;
}

/* Frames "payload" (drained) as one event or exception message into "out":
 * initial-response and the exceptions that end a subscription. */
static void add_message(struct evbuffer *out, bool exception, const char *type,
                        struct evbuffer *payload)
{
    size_t plen = evbuffer_get_length(payload);
    struct gw_es_headers hs;
    if (exception)
        gw_es_headers_exception(&hs, type);
    else
        gw_es_headers_event(&hs, type);
    size_t size, off;
    uint8_t *msg = frame_begin(&hs, plen, &size, &off);
    if (!msg)
        return;
    evbuffer_remove(payload, msg + off, plen);
    gw_es_encode_finish(msg, size);
    evbuffer_add(out, msg, size);
    free(msg);
}

static bool pos_eq(const struct store_pos *a, const struct store_pos *b)
{
    return a->after == b->after && store_seq_cmp(a->seq, b->seq) == 0;
}

/* A cached batch starting at "from" that fits in "tokens", or NULL. */
static const struct enc_batch *cache_find(const struct shard_subs *ss, const struct store_pos *from,
                                          uint64_t tokens)
{
    for (int i = 0; i < ENC_CACHE; i++) {
        const struct enc_batch *b = &ss->cache[i];
        if (b->valid && pos_eq(&b->from, from) && b->bytes <= tokens)
            return b;
    }
    return NULL;
}

/* Caches the framed event "msg" (taken over). Every subscription at "from"
 * would frame the very same bytes: records, continuation (the batch's last
 * record) and MillisBehindLatest. */
static void cache_put(struct shard_subs *ss, const struct store_pos *from,
                      const struct store_pos *next, size_t n, uint64_t bytes, struct store_seq last,
                      int64_t behind, uint8_t *msg, size_t len)
{
    struct enc_batch *b = &ss->cache[ss->cache_next++ % ENC_CACHE];
    free(b->msg);
    b->len = len;
    b->msg = msg;
    b->valid = true;
    b->from = *from;
    b->next = *next;
    b->n = n;
    b->bytes = bytes;
    b->last = last;
    b->behind = behind;
}

/* Frames a SubscribeToShardEvent whose Records are the comma-joined JSON in
 * "records" (drained; NULL for none) into one new buffer, straight: no
 * intermediate evbuffers or printf on the push path. NULL only if the event
 * cannot be framed (logged). */
static uint8_t *frame_event(struct gw_sub *s, struct evbuffer *records, int64_t behind,
                            size_t *len)
{
    static const char k1[] = "],\"ContinuationSequenceNumber\":\"",
                      k2[] = "\",\"MillisBehindLatest\":";
    char tail[sizeof k1 + STORE_SEQ_STRLEN + sizeof k2 + 24], *t = tail;
    memcpy(t, k1, sizeof k1 - 1);
    t += sizeof k1 - 1;
    t += store_seq_format(s->last, t);
    memcpy(t, k2, sizeof k2 - 1);
    t += sizeof k2 - 1;
    t += gw_op_fmt_u64(t, behind > 0 ? (uint64_t)behind : 0);
    *t++ = '}';
    size_t tlen = (size_t)(t - tail);
    size_t rlen = records ? evbuffer_get_length(records) : 0;
    size_t plen = 12 + rlen + tlen;
    struct gw_es_headers hs;
    gw_es_headers_event(&hs, GW_ES_EVENT_SUBSCRIBE);
    size_t size, off;
    uint8_t *msg = frame_begin(&hs, plen, &size, &off);
    if (!msg)
        return NULL;
    memcpy(msg + off, "{\"Records\":[", 12);
    if (rlen)
        evbuffer_remove(records, msg + off + 12, rlen);
    memcpy(msg + off + 12 + rlen, tail, tlen);
    gw_es_encode_finish(msg, size);
    *len = size;
    return msg;
}

/* A heartbeat: an event without records (MillisBehindLatest up to date). */
static void add_heartbeat(struct gw_sub *s, struct evbuffer *out, int64_t behind)
{
    if (s->sse) {
        /* Records went out one SSE event each (see pull). */
        char cont[STORE_SEQ_STRLEN];
        store_seq_format(s->last, cont);
        evbuffer_add_printf(out, "event: heartbeat\ndata: {\"ContinuationSequenceNumber\":\"%s\","
                                 "\"MillisBehindLatest\":%lld}\n\n",
                            cont, (long long)behind);
        return;
    }
    size_t len;
    uint8_t *msg = frame_event(s, NULL, behind, &len);
    if (msg) {
        evbuffer_add(out, msg, len);
        free(msg);
    }
}

static enum gw_pull finish(struct gw_sub *s)
{
    s->state = SUB_DONE;
    s->req = NULL; /* the protocol owns it again once we return EOF */
    sub_free(s);
    return GW_PULL_EOF;
}

static enum gw_pull pull_once(struct gw_req *req, void *ctx, struct evbuffer *out, size_t max)
{
    struct gw_sub *s = ctx;
    const struct gw_config *cfg = s->app->cfg;
    int64_t now = gw_app_now_ms();

    if (s->state == SUB_START) {
        s->state = SUB_RUNNING;
        s->last_event_ms = now;
        if (s->sse) {
            evbuffer_add(out, "retry: 1000\n\n", 13);
        } else {
            struct evbuffer *p = evbuffer_new();
            evbuffer_add(p, "{}", 2);
            add_message(out, false, GW_ES_EVENT_INITIAL_RESPONSE, p);
            evbuffer_free(p);
        }
        return GW_PULL_MORE;
    }
    if (s->state == SUB_ENDING) {
        if (s->sse) {
            evbuffer_add_printf(out, "event: error\ndata: {\"__type\":\"%s\",\"message\":", s->end_type);
            gw_op_json_string(out, (const uint8_t *)s->end_msg, strlen(s->end_msg));
            evbuffer_add(out, "}\n\n", 3);
        } else {
            struct evbuffer *p = evbuffer_new();
            evbuffer_add(p, "{\"message\":", 11);
            gw_op_json_string(p, (const uint8_t *)s->end_msg, strlen(s->end_msg));
            evbuffer_add(p, "}", 1);
            add_message(out, true, s->end_type, p);
            evbuffer_free(p);
        }
        return finish(s);
    }
    if (gw_req_draining(req) || now >= s->expires_ms)
        return finish(s); /* clean end: the client re-subscribes from its continuation */

    uint64_t tnow = mono_ns();
    uint64_t tokens = gw_ratelimit_available(&s->bucket, tnow);
    if (!s->sse && tokens > 0) {
        const struct enc_batch *b = cache_find(s->ss, &s->pos, tokens);
        if (b) {
            gw_ratelimit_take(&s->bucket, tnow, b->bytes);
            s->last = b->last;
            s->pos = b->next;
            s->last_event_ms = now;
            evbuffer_add(out, b->msg, b->len);
            return sent(s, now);
        }
    }
    const struct store_record *recs = NULL;
    size_t n = 0;
    int64_t behind = 0;
    struct store_pos next = s->pos;
    if (tokens > 0) {
        size_t budget = tokens < EVENT_MAX_RECORD_BYTES ? (size_t)tokens : EVENT_MAX_RECORD_BYTES;
        struct store_err se = {0};
        if (store_shard_read(s->ss->shard, s->cur, &s->pos, EVENT_MAX_RECORDS, budget, &recs, &n,
                             &next, &behind, &se) != 0) {
            gw_log(GW_LOG_ERROR, "sub_read", "consumer=%s: %s", s->consumer_arn, se.msg);
            end_with(s, "InternalFailureException", "Internal service failure.");
            return pull_once(req, ctx, out, max);
        }
    }
    if (n > 0) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += recs[i].data.len + recs[i].partition_key.len;
        /* The store returns at least one record even over the budget; a
         * record larger than the bucket goes once the bucket is full. */
        uint64_t need = bytes < cfg->consumer_burst ? bytes : cfg->consumer_burst;
        if (tokens < need) {
            arm(s, (int64_t)(gw_ratelimit_wait_ns(&s->bucket, tnow, need) / 1000000) + 1);
            return GW_PULL_DEFER;
        }
        gw_ratelimit_take(&s->bucket, tnow, bytes);
        if (s->sse) {
            for (size_t i = 0; i < n; i++) {
                char seq[STORE_SEQ_STRLEN];
                store_seq_format(recs[i].seq, seq);
                evbuffer_add_printf(out, "id: %s\nevent: record\ndata: ", seq);
                gw_op_record_json(out, &recs[i]);
                evbuffer_add(out, "\n\n", 2);
            }
        } else {
            struct evbuffer *rb = evbuffer_new();
            for (size_t i = 0; i < n; i++) {
                if (i)
                    evbuffer_add(rb, ",", 1);
                gw_op_record_json(rb, &recs[i]);
            }
            s->last = recs[n - 1].seq;
            size_t len;
            uint8_t *msg = frame_event(s, rb, behind, &len);
            evbuffer_free(rb);
            if (msg) {
                evbuffer_add(out, msg, len);
                if (s->ss->subs && s->ss->subs->next) /* more than one reader of this shard */
                    cache_put(s->ss, &s->pos, &next, n, bytes, s->last, behind, msg, len);
                else
                    free(msg);
            }
        }
        s->last = recs[n - 1].seq;
        s->pos = next;
        s->last_event_ms = now;
        return sent(s, now);
    }
    /* Nothing to send: heartbeat when due, else sleep until the next due
     * time (heartbeat, refill or expiry) or a store wake-up. */
    int64_t due = s->last_event_ms + (int64_t)cfg->heartbeat_ms;
    if (now >= due) {
        /* Throttled with records waiting: say how far behind they are. */
        if (tokens == 0 &&
            store_shard_read(s->ss->shard, s->cur, &s->pos, 1, 1, &recs, &n, &next, &behind, NULL) !=
                0)
            behind = 0;
        add_heartbeat(s, out, behind);
        s->last_event_ms = now;
        return GW_PULL_MORE;
    }
    int64_t wake = due;
    if (s->expires_ms < wake)
        wake = s->expires_ms;
    if (tokens == 0) {
        int64_t refill = now + (int64_t)(gw_ratelimit_wait_ns(&s->bucket, tnow, 1) / 1000000) + 1;
        if (refill < wake)
            wake = refill;
    }
    arm(s, wake - now);
    return GW_PULL_DEFER;
}

/* The pull callback. Record views pin the store's tail chunks until the next
 * read on their cursor; a subscription that then stalls must not keep them
 * pinned, so every pull ends by releasing the cursor's views. */
static enum gw_pull pull(struct gw_req *req, void *ctx, struct evbuffer *out, size_t max)
{
    struct gw_sub *s = ctx;
    enum gw_pull r = pull_once(req, ctx, out, max);
    if (r == GW_PULL_MORE || r == GW_PULL_DEFER) /* on EOF "s" is gone */
        store_cursor_release(s->cur);
    return r;
}

/* ---- starting a subscription ------------------------------------------------------ */

static const char *const pos_types[] = {"AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER",
                                        "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", NULL};

/* Resolves a starting position of "type" (index into pos_types). */
static int resolve_position(struct gw_app *app, struct store_shard *shard, int type,
                            const char *seq_text, bool has_ts, int64_t ts, struct store_pos *out,
                            struct gw_error *err)
{
    static const enum store_pos_type map[] = {STORE_POS_AT_SEQUENCE, STORE_POS_AFTER_SEQUENCE,
                                              STORE_POS_TRIM_HORIZON, STORE_POS_LATEST,
                                              STORE_POS_AT_TIMESTAMP};
    struct store_shard_info si;
    store_shard_info(shard, &si);
    struct store_seq seq = {0};
    if (type <= 1) {
        if (!seq_text)
            return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                "StartingPosition.SequenceNumber must be provided for type %s.",
                                pos_types[type]);
        if (store_seq_parse(seq_text, strlen(seq_text), &seq, NULL) != 0 || seq.shard != si.index)
            return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                "Invalid StartingSequenceNumber %s for shard %s.", seq_text, si.id);
    }
    if (type == 4) {
        if (!has_ts)
            return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                "StartingPosition.Timestamp must be provided for type AT_TIMESTAMP.");
        if (ts > gw_app_now_ms())
            return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                "StartingPosition.Timestamp cannot be in the future.");
    }
    struct store_err se = {0};
    if (store_shard_position(shard, map[type], type <= 1 ? &seq : NULL, ts, out, &se) != 0)
        return gw_op_store_error(&se, err);
    return 0;
}

/* Starts the stream reply for a validated subscription. */
static void start(struct gw_app *app, struct gw_req *req, bool sse, struct store_stream *stream,
                  struct store_shard *shard, const char *consumer_arn, struct store_pos pos)
{
    struct store_stream_info info;
    store_stream_info(stream, &info);
    struct gw_sub *s = xcalloc(1, sizeof *s);
    s->app = app;
    s->req = req;
    s->sse = sse;
    snprintf(s->consumer_arn, sizeof s->consumer_arn, "%s", consumer_arn);
    s->pos = pos;
    s->last = before(pos);
    s->cur = store_cursor_new();
    s->timer = evtimer_new(app->base, on_timer, s);
    s->started_ms = gw_app_now_ms();
    s->expires_ms = s->started_ms + (int64_t)app->cfg->subscription_ttl_ms;
    gw_ratelimit_init(&s->bucket, app->cfg->consumer_rate, app->cfg->consumer_burst, mono_ns());
    struct shard_subs *ss = shard_subs_get(app, shard, info.name);
    s->ss = ss;
    s->next = ss->subs;
    if (s->next)
        s->next->prev = s;
    ss->subs = s;
    app->_nsubs++;
    gw_req_on_abort(req, on_abort, s);
    if (sse) {
        gw_resp_header(req, "content-type", "text/event-stream");
        gw_resp_header(req, "cache-control", "no-cache");
    } else {
        gw_resp_header(req, "content-type", "application/vnd.amazon.eventstream");
    }
    gw_resp_stream(req, 200, pull, s);
}

/* A live subscription of the same consumer to the same shard: refused within
 * 5 s of its start, taken over after (the old one gets ResourceInUse). */
static int check_takeover(struct gw_app *app, struct store_shard *shard,
                          const char *consumer_arn, struct gw_error *err)
{
    struct shard_subs *ss = app->_subs;
    while (ss && ss->shard != shard)
        ss = ss->next;
    if (!ss)
        return 0;
    /* A shard has one entry. end_with() frees it once its last subscription
     * leaves, so nothing of "ss" is read after the loop's last end_with(). */
    for (struct gw_sub *s = ss->subs, *next; s; s = next) {
        next = s->next;
        if (strcmp(s->consumer_arn, consumer_arn) != 0 || s->state >= SUB_ENDING)
            continue;
        if (gw_app_now_ms() - s->started_ms < TAKEOVER_MS)
            return gw_error_set(err, GW_ERR_RESOURCE_IN_USE,
                                "Another active subscription exists for this consumer: %s",
                                consumer_arn);
        end_with(s, "ResourceInUseException",
                 "The subscription was taken over by a newer SubscribeToShard call.");
    }
    return 0;
}

/* Finds the consumer and its stream; it must be ACTIVE. */
static int find_consumer(struct gw_app *app, const char *arn, struct store_stream **stream,
                         struct store_consumer_info *ci, struct gw_error *err)
{
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
    const char *arn, *shard_id, *seq = NULL;
    int type = -1;
    int64_t ts = 0;
    bool has_ts = false;
    if (gw_op_body(req, &body, &err) != 0 ||
        gw_v_str(&v, body, "ConsumerARN", "consumerARN", GW_V_REQUIRED, 1, 2048,
                 "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/"
                 "[a-zA-Z0-9_.-]+:[0-9]+",
                 gw_match_consumer_arn, &arn) != 0 ||
        gw_v_str(&v, body, "ShardId", "shardId", GW_V_REQUIRED, 1, 128, "[a-zA-Z0-9_.-]+",
                 gw_match_name, &shard_id) != 0 ||
        gw_v_object(&v, body, "StartingPosition", "startingPosition", GW_V_REQUIRED, &sp) != 0)
        goto fail;
    if (sp && (gw_v_enum(&v, sp, "Type", "startingPosition.type", GW_V_REQUIRED, pos_types,
                         &type) != 0 ||
               gw_v_str(&v, sp, "SequenceNumber", "startingPosition.sequenceNumber", 0, 0,
                        SIZE_MAX, "0|([1-9]\\d{0,128})", gw_match_seqnum, &seq) != 0 ||
               gw_v_time(&v, sp, "Timestamp", "startingPosition.timestamp", 0, &ts, &has_ts) != 0))
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
    struct store_pos pos;
    if (resolve_position(app, shard, type, seq, has_ts, ts, &pos, &err) != 0 ||
        check_takeover(app, shard, arn, &err) != 0)
        goto fail;
    start(app, req, false, stream, shard, arn, pos); /* copies "arn" from "body" */
    json_decref(body);
    return;
fail:
    json_decref(body);
    gw_body_error(req, &err);
}

void op_rest_subscribe(struct gw_app *app, struct gw_req *req)
{
    struct gw_error err = {0};
    /* The path's names become the members they name (gw_op_body) and are
     * validated as the Kinesis door's are: 1..128 characters of the model's
     * pattern, whatever length arrived. */
    json_t *body = NULL;
    struct gw_valid v;
    gw_valid_init(&v, &err);
    const char *stream_name, *stream_arn, *consumer, *shard_id;
    if (gw_op_body(req, &body, &err) != 0 ||
        gw_op_stream_fields(&v, body, true, &stream_name, &stream_arn) != 0 ||
        gw_v_str(&v, body, "ConsumerName", "consumerName", GW_V_REQUIRED, 1, 128,
                 "[a-zA-Z0-9_.-]+", gw_match_name, &consumer) != 0 ||
        gw_v_str(&v, body, "ShardId", "shardId", GW_V_REQUIRED, 1, 128, "[a-zA-Z0-9_.-]+",
                 gw_match_name, &shard_id) != 0 ||
        gw_valid_done(&v) != 0)
        goto fail;
    struct store_stream *stream;
    struct store_consumer_info ci;
    if (gw_op_stream_lookup(app, stream_name, NULL, &stream, &err) != 0 ||
        gw_op_stream_readable(app, stream, &err) != 0)
        goto fail;
    if (store_consumer_lookup(stream, consumer, &ci, NULL) != 0) {
        gw_error_set(&err, GW_ERR_RESOURCE_NOT_FOUND, "Consumer %s of stream %s not found.",
                     consumer, stream_name);
        goto fail;
    }
    if (ci.status != STORE_CONSUMER_ACTIVE) {
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
    int type = 2;
    if (last_id && *last_id) {
        type = 1;
        seq = last_id;
    } else if (from) {
        type = -1;
        for (int i = 0; pos_types[i]; i++)
            if (strcmp(pos_types[i], from) == 0)
                type = i;
        if (type < 0) {
            gw_error_set(&err, GW_ERR_VALIDATION,
                         "1 validation error detected: Value '%s' at 'from' failed to satisfy "
                         "constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, "
                         "AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
                         from);
            goto fail;
        }
    }
    int64_t ts = 0;
    if (ts_text && gw_op_query_time(ts_text, "timestamp", &ts, &err) != 0)
        goto fail;
    struct store_pos pos;
    if (resolve_position(app, shard, type, seq, ts_text != NULL, ts, &pos, &err) != 0 ||
        check_takeover(app, shard, ci.arn, &err) != 0)
        goto fail;
    start(app, req, true, stream, shard, ci.arn, pos);
    json_decref(body);
    return;
fail:
    json_decref(body);
    gw_body_error(req, &err);
}
