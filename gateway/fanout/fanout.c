/* fanout.c - the enhanced fan-out engine (see fanout.h): the registry of
 * live subscriptions by shard, wake-ups and delivery, the encode-once cache,
 * and the pull pump with its token bucket.
 *
 * Nothing is pushed from the writer's stack: the store calls the shard's
 * listener once an append is readable (durable per the mode), the listener
 * queues the shard's subscriptions, and gw_fanout_deliver() resumes each and
 * flushes its connection. The protocol layer pulls (h2.c's data provider,
 * http1.c's pump) while the peer has window. A pull reads from the
 * subscription's position while it has tokens, frames one event and
 * returns; with nothing to send it defers and a timer brings it back for the
 * heartbeat (an empty event at least every --heartbeat), the token refill,
 * or the end of its lifetime (--subscription-ttl).
 *
 *   event = prelude | headers (:message-type event, :event-type
 *           SubscribeToShardEvent, :content-type application/json) |
 *           {"Records":[...],"ContinuationSequenceNumber":..,"MillisBehindLatest":..} | crc
 *
 * Invariants: a subscription is in its shard's list from creation until it
 * ends, and in the woken queue at most once; store handles (shard, listener)
 * are dropped before a stream or consumer can be deleted (gw_fanout_end). */
#include "fanout.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventstream.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "ops.h"
#include "ratelimit.h"
#include "reply.h"

#define TAKEOVER_MS 5000              /* a second subscription within 5 s is refused */
#define EVENT_MAX_RECORD_BYTES (1u << 20) /* record data per event */
#define EVENT_MAX_RECORDS 10000

enum sub_state { SUB_START, SUB_RUNNING, SUB_ENDING, SUB_DONE };

struct shard_subs;

struct gw_sub {
    struct gw_fanout *f;
    struct gw_req *req;
    struct shard_subs *ss;
    struct gw_sub *prev, *next; /* in ss->subs */
    bool woken;                 /* in f's woken queue */
    struct gw_sub *wprev, *wnext;
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
    /* For metrics and the console. */
    uint64_t pushed_records, pushed_bytes;
    int64_t behind_ms;      /* MillisBehindLatest of the last event */
    uint64_t wait_since_ns; /* waiting for tokens since (0: not waiting) */
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
    struct gw_fanout *f;
    struct store_shard *shard;
    char stream[STORE_STREAM_NAME_MAX + 1];
    uint32_t index; /* the shard's */
    struct store_listener *listener;
    struct gw_sub *subs;
    struct shard_subs *next;
    struct enc_batch cache[ENC_CACHE];
    unsigned cache_next;
};
struct gw_fanout {
    struct event_base *base;
    const struct gw_config *cfg;
    struct gw_metrics *metrics;
    struct shard_subs *shards; /* shards with live subscriptions */
    size_t nsubs;
    struct gw_sub *woken, *woken_tail; /* to deliver to, in wake-up order */
};

/* Framed messages are shared, not copied: the encode-once cache and every
 * reply buffer an event was added to (evbuffer_add_reference) each hold a
 * reference, and the last to let go frees it. So an event pushed to ten
 * subscriptions is ten references to one buffer, and its bytes are copied
 * next only by the transport. Loop thread only: no atomics. */
struct msg_head {
    size_t refs;
};

static uint8_t *msg_alloc(size_t size)
{
    struct msg_head *h = xmalloc(sizeof *h + size);
    h->refs = 1;
    return (uint8_t *)(h + 1);
}

static void msg_unref(uint8_t *msg)
{
    if (!msg)
        return;
    struct msg_head *h = (struct msg_head *)msg - 1;
    if (--h->refs == 0)
        free(h);
}

static void msg_cleanup(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    msg_unref(arg);
}

/* Appends "msg" to "out" by reference (copied only if that fails), in
 * pieces of one HTTP/2 DATA frame's payload: h2.c cuts frames at chain ends
 * and moves whole chains to the socket, so the bytes are never copied in
 * user space on their way out. */
#define MSG_PIECE 16384

static void add_shared(struct evbuffer *out, uint8_t *msg, size_t len)
{
    struct msg_head *h = (struct msg_head *)msg - 1;
    for (size_t off = 0; off < len; off += MSG_PIECE) {
        size_t n = len - off < MSG_PIECE ? len - off : MSG_PIECE;
        h->refs++;
        if (evbuffer_add_reference(out, msg + off, n, msg_cleanup, msg) != 0) {
            h->refs--;
            evbuffer_add(out, msg + off, n);
        }
    }
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t gw_fanout_count(const struct gw_fanout *f) { return f ? f->nsubs : 0; }

struct gw_fanout *gw_fanout_new(struct event_base *base, const struct gw_config *cfg,
                                struct gw_metrics *metrics)
{
    struct gw_fanout *f = xcalloc(1, sizeof *f);
    f->base = base;
    f->cfg = cfg;
    f->metrics = metrics;
    return f;
}

void gw_fanout_free(struct gw_fanout *f)
{
    if (!f)
        return;
    /* Subscriptions end with their requests, which the server (freed
     * first) aborts; nothing is left to free here. */
    if (f->nsubs)
        gw_log(GW_LOG_ERROR, "fanout", "%zu subscriptions outlive the engine", f->nsubs);
    free(f);
}

/* ---- registry ---------------------------------------------------------------- */

static void wake(struct gw_sub *s)
{
    struct gw_fanout *f = s->f;
    if (s->woken || !s->req)
        return;
    s->woken = true;
    s->wnext = NULL;
    s->wprev = f->woken_tail;
    if (f->woken_tail)
        f->woken_tail->wnext = s;
    else
        f->woken = s;
    f->woken_tail = s;
}

static void unwake(struct gw_sub *s)
{
    struct gw_fanout *f = s->f;
    if (!s->woken)
        return;
    if (s->wprev)
        s->wprev->wnext = s->wnext;
    else
        f->woken = s->wnext;
    if (s->wnext)
        s->wnext->wprev = s->wprev;
    else
        f->woken_tail = s->wprev;
    s->woken = false;
    s->wprev = s->wnext = NULL;
}

/* Called by the store inside its commit or dispatch: only queue, so that
 * nothing here reads the store or frees a listener while it iterates them. */
static void on_shard_readable(void *arg, struct store_shard *shard)
{
    struct shard_subs *ss = arg;
    for (struct gw_sub *s = ss->subs; s; s = s->next)
        wake(s);
}

struct flush_target {
    uint64_t conn;
    struct gw_req *req;
};

static int by_conn(const void *a, const void *b)
{
    const struct flush_target *x = a, *y = b;
    return x->conn < y->conn ? -1 : x->conn > y->conn;
}

void gw_fanout_deliver(struct gw_fanout *f)
{
    if (!f || !f->woken)
        return;
    /* Resume every woken subscription first, then flush each connection
     * once: one write per connection however many of its streams woke. A
     * resume frees nothing; a flush may end streams of its own connection
     * only, so the first request of each connection is still alive when its
     * turn comes (requests are grouped by connection id). */
    size_t n = 0, cap = 16;
    struct flush_target *t = xmalloc(cap * sizeof *t);
    while (f->woken) {
        struct gw_sub *s = f->woken;
        unwake(s);
        if (!s->req)
            continue;
        gw_resp_resume(s->req);
        if (n == cap) {
            cap *= 2;
            t = xrealloc(t, cap * sizeof *t);
        }
        t[n++] = (struct flush_target){gw_req_conn_id(s->req), s->req};
    }
    qsort(t, n, sizeof *t, by_conn);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || t[i].conn != t[i - 1].conn)
            gw_resp_flush(t[i].req);
    free(t);
}

static struct shard_subs *shard_subs_find(struct gw_fanout *f, const struct store_shard *shard)
{
    for (struct shard_subs *ss = f->shards; ss; ss = ss->next)
        if (ss->shard == shard)
            return ss;
    return NULL;
}

static struct shard_subs *shard_subs_get(struct gw_fanout *f, struct store_shard *shard,
                                         const char *stream)
{
    struct shard_subs *ss = shard_subs_find(f, shard);
    if (ss)
        return ss;
    ss = xcalloc(1, sizeof *ss);
    ss->f = f;
    ss->shard = shard;
    snprintf(ss->stream, sizeof ss->stream, "%s", stream);
    struct store_shard_info si;
    store_shard_info(shard, &si);
    ss->index = si.index;
    ss->listener = store_shard_listen(shard, on_shard_readable, ss);
    ss->next = f->shards;
    f->shards = ss;
    return ss;
}

static void shard_subs_release(struct shard_subs *ss)
{
    struct gw_fanout *f = ss->f;
    if (ss->subs)
        return;
    store_listener_remove(ss->listener);
    for (int i = 0; i < ENC_CACHE; i++)
        msg_unref(ss->cache[i].msg);
    for (struct shard_subs **p = &f->shards; *p; p = &(*p)->next)
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
    if (s->consumer_arn[0])
        store_sub_release(ss->shard, s->consumer_arn); /* other gateways may take it at once */
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

/* Time spent waiting for tokens ends (a push went out, or the subscription
 * ended): it counts toward the consumer's throttle wait. */
static void wait_end(struct gw_sub *s, uint64_t tnow)
{
    if (!s->wait_since_ns)
        return;
    if (tnow > s->wait_since_ns)
        gw_metrics_throttle_wait(s->f->metrics, s->consumer_arn,
                                 (double)(tnow - s->wait_since_ns) / 1e9);
    s->wait_since_ns = 0;
}

static void wait_begin(struct gw_sub *s, uint64_t tnow)
{
    if (!s->wait_since_ns)
        s->wait_since_ns = tnow ? tnow : 1;
}

/* "n" records of "bytes" went out on "s" (the SSE door and console tails
 * count too: they are reads of the stream). */
static void count_push(struct gw_sub *s, uint64_t n, uint64_t bytes, int64_t behind, uint64_t tnow)
{
    s->pushed_records += n;
    s->pushed_bytes += bytes;
    s->behind_ms = behind > 0 ? behind : 0;
    wait_end(s, tnow);
    if (s->ss)
        gw_metrics_push(s->f->metrics, s->ss->stream, s->ss->index, s->consumer_arn, n, bytes);
}

static void sub_free(struct gw_sub *s)
{
    struct gw_fanout *f = s->f;
    wait_end(s, mono_ns());
    unwake(s);
    unlink_sub(s);
    if (s->timer)
        event_free(s->timer);
    store_cursor_free(s->cur);
    f->nsubs--;
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

void gw_fanout_end(struct gw_fanout *f, const char *stream, const char *consumer_arn,
                   const char *exception_type, const char *message)
{
    if (!f)
        return;
    for (struct shard_subs *ss = f->shards, *next; ss; ss = next) {
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

void gw_fanout_taken(struct gw_fanout *f, const char *stream, uint32_t shard,
                     const char *consumer_arn)
{
    if (!f)
        return;
    for (struct shard_subs *ss = f->shards, *next; ss; ss = next) {
        next = ss->next;
        if (ss->index != shard || strcmp(ss->stream, stream) != 0)
            continue;
        for (struct gw_sub *s = ss->subs, *sn; s; s = sn) {
            sn = s->next;
            if (strcmp(s->consumer_arn, consumer_arn) == 0)
                end_with(s, "ResourceInUseException",
                         "The subscription was taken over by a newer SubscribeToShard call.");
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
    if (store_shard_at_end(s->ss->shard, &s->pos))
        return GW_PULL_MORE; /* the final event goes next */
    int has = 0;
    struct store_seq tip;
    store_shard_latest(s->ss->shard, &has, &tip);
    if (!has || store_seq_cmp(s->last, tip) < 0)
        return GW_PULL_MORE;
    /* A timer still pending fires no later than this push's heartbeat
     * would be due; the pull it triggers re-arms for what is then left. So
     * only an idle timer is armed: no timer-heap update per push. */
    if (!evtimer_pending(s->timer, NULL)) {
        int64_t wake = s->last_event_ms + (int64_t)s->f->cfg->heartbeat_ms;
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

/* A new buffer holding the prelude and headers of a message with "plen"
 * bytes of payload; the caller writes the payload at "*off" and calls
 * gw_es_encode_finish(msg, *size). NULL (logged) if it cannot be framed.
 * The buffer is a shared message (msg_unref when done). */
static uint8_t *frame_begin(const struct gw_es_headers *hs, size_t plen, size_t *size,
                            size_t *off)
{
    char why[128];
    if (gw_es_message_size(hs->h, hs->n, plen, size, why, sizeof why) != 0) {
        gw_log(GW_LOG_ERROR, "eventstream", "cannot frame a %zu-byte event: %s", plen, why);
        return NULL;
    }
    uint8_t *msg = msg_alloc(*size);
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
    msg_unref(msg);
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

/* How many of the "n" records read (n > 1) a reader should send so that its
 * batch ends where a cached batch starts: a reader behind the others then
 * finds their framed events from its next event on, instead of framing
 * batches of its own boundaries for as long as it lags. "n" if no cached
 * batch starts inside. */
static size_t cache_align(const struct shard_subs *ss, const struct store_record *recs, size_t n)
{
    size_t cut = n;
    for (int i = 0; i < ENC_CACHE; i++) {
        const struct enc_batch *b = &ss->cache[i];
        if (!b->valid || !b->from.after || store_seq_cmp(b->from.seq, recs[0].seq) < 0 ||
            store_seq_cmp(b->from.seq, recs[cut - 1].seq) >= 0)
            continue;
        /* the batch starts after b->from.seq: is that record among ours? */
        size_t lo = 0, hi = cut - 1;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (store_seq_cmp(recs[mid].seq, b->from.seq) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (store_seq_cmp(recs[lo].seq, b->from.seq) == 0)
            cut = lo + 1;
    }
    return cut;
}

/* Caches the framed event "msg" (taken over). Every subscription at "from"
 * would frame the very same bytes: records, continuation (the batch's last
 * record) and MillisBehindLatest. */
static void cache_put(struct shard_subs *ss, const struct store_pos *from,
                      const struct store_pos *next, size_t n, uint64_t bytes, struct store_seq last,
                      int64_t behind, uint8_t *msg, size_t len)
{
    struct enc_batch *b = &ss->cache[ss->cache_next++ % ENC_CACHE];
    msg_unref(b->msg);
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

/* SubscribeToShardEvent messages, each framed once into one shared buffer:
 * no intermediate evbuffers or printf on the push path. The framers return
 * NULL only if the event cannot be framed (logged). */

/* The event's text after its Records array, into "tail" (room for
 * TAIL_MAX): the continuation and how far behind. Returns its length. */
#define TAIL_MAX (64 + STORE_SEQ_STRLEN + 24)
static size_t event_tail(const struct gw_sub *s, int64_t behind, char *tail)
{
    static const char k1[] = ",\"ContinuationSequenceNumber\":\"",
                      k2[] = "\",\"MillisBehindLatest\":";
    char *t = tail;
    memcpy(t, k1, sizeof k1 - 1);
    t += sizeof k1 - 1;
    t += store_seq_format(s->last, t);
    memcpy(t, k2, sizeof k2 - 1);
    t += sizeof k2 - 1;
    t += gw_fmt_u64(t, behind > 0 ? (uint64_t)behind : 0);
    *t++ = '}';
    return (size_t)(t - tail);
}

static const char event_head[] = "{\"Records\":";

/* The event carrying "recs" (none: a heartbeat): the Records array (its
 * base64 included) is written straight into the shared message, after room
 * left for the event-stream prelude and headers (their length does not
 * depend on the payload's), which are filled in once the payload's length is
 * known. The block is sized from an upper bound, so it is not copied to
 * grow. */
static uint8_t *frame_records(struct gw_sub *s, const struct store_record *recs, size_t n,
                              int64_t behind, size_t *len)
{
    char why[128];
    struct gw_es_headers hs;
    gw_es_headers_event(&hs, GW_ES_EVENT_SUBSCRIBE);
    size_t empty, size;
    if (gw_es_message_size(hs.h, hs.n, 0, &empty, why, sizeof why) != 0) {
        gw_log(GW_LOG_ERROR, "eventstream", "cannot frame an event: %s", why);
        return NULL;
    }
    size_t off = empty - 4; /* prelude and headers; the message CRC ends it */
    size_t at = sizeof(struct msg_head) + off, hlen = sizeof event_head - 1;
    /* A record as gw_op_record writes it: these names, a sequence number,
     * a time (at most 24 characters), the Data and the PartitionKey. */
    static const char names[] = "{\"SequenceNumber\":\"\",\"ApproximateArrivalTimestamp\":,"
                                "\"Data\":\"\",\"PartitionKey\":}";
    size_t bound = at + hlen + 2 + n + TAIL_MAX + 4;
    for (size_t i = 0; i < n; i++)
        bound += sizeof names - 1 + STORE_SEQ_STRLEN + 24 +
                 gw_base64_encoded_len(recs[i].data.len) +
                 gw_reply_json_string_len((const char *)recs[i].partition_key.p,
                                          recs[i].partition_key.len);
    uint8_t *block = xmalloc(bound);
    memcpy(block + at, event_head, hlen);
    struct gw_reply w;
    gw_reply_init_flat(&w, block, bound, at + hlen);
    gw_reply_array(&w, n);
    for (size_t i = 0; i < n; i++)
        gw_op_record(&w, &recs[i]);
    gw_reply_end(&w);
    size_t end, cap;
    block = gw_reply_finish_flat(&w, &end, &cap);
    if (!block)
        return NULL;
    char tail[TAIL_MAX];
    size_t tlen = event_tail(s, behind, tail);
    /* The bound is tight (under 1% over for 1,000-byte records), so the
     * block stays as it is; it grows only if the bound was wrong. */
    if (end + tlen + 4 > cap)
        block = xrealloc(block, end + tlen + 4);
    memcpy(block + end, tail, tlen);
    size_t plen = end + tlen - at;
    ((struct msg_head *)block)->refs = 1;
    uint8_t *msg = block + sizeof(struct msg_head);
    size_t poff = 0;
    int bad = gw_es_message_size(hs.h, hs.n, plen, &size, why, sizeof why) != 0 ||
              gw_es_encode_head(hs.h, hs.n, plen, msg, size, &poff, why, sizeof why) != 0;
    if (bad || poff != off) {
        gw_log(GW_LOG_ERROR, "eventstream", "cannot frame a %zu-byte event: %s", plen,
               bad ? why : "header length changed");
        free(block);
        return NULL;
    }
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
    uint8_t *msg = frame_records(s, NULL, 0, behind, &len);
    if (msg) {
        evbuffer_add(out, msg, len);
        msg_unref(msg);
    }
}

static enum gw_pull finish(struct gw_sub *s)
{
    s->state = SUB_DONE;
    s->req = NULL; /* the protocol owns it again once we return EOF */
    sub_free(s);
    return GW_PULL_EOF;
}

/* Everything of a closed shard has gone out: a last event naming the
 * children and without a ContinuationSequenceNumber (KCL, Flink and Beam
 * detect the shard's end exactly by that), then the stream ends cleanly.
 * The SSE door sends an "end" event with the children. */
static enum gw_pull shard_end(struct gw_sub *s, struct evbuffer *out)
{
    struct evbuffer *p = evbuffer_new();
    struct gw_reply w;
    gw_reply_init_json(&w, p);
    if (s->sse) {
        gw_reply_object(&w, 1);
    } else {
        gw_reply_object(&w, 3);
        gw_reply_key(&w, "Records");
        gw_reply_array(&w, 0);
        gw_reply_end(&w);
        gw_reply_key(&w, "MillisBehindLatest");
        gw_reply_int(&w, 0);
    }
    gw_reply_key(&w, "ChildShards");
    gw_op_child_shards(&w, s->ss->shard);
    gw_reply_end(&w);
    gw_reply_finish(&w);
    if (s->sse) {
        evbuffer_add(out, "event: end\ndata: ", 17);
        evbuffer_add_buffer(out, p);
        evbuffer_add(out, "\n\n", 2);
    } else {
        add_message(out, false, GW_ES_EVENT_SUBSCRIBE, p);
    }
    evbuffer_free(p);
    gw_log(GW_LOG_DEBUG, "sub_shard_end", "consumer=%s", s->consumer_arn);
    return finish(s);
}

static enum gw_pull pull_once(struct gw_req *req, void *ctx, struct evbuffer *out, size_t max)
{
    struct gw_sub *s = ctx;
    const struct gw_config *cfg = s->f->cfg;
    int64_t now = now_ms();

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
    if (store_shard_at_end(s->ss->shard, &s->pos))
        return shard_end(s, out);

    uint64_t tnow = mono_ns();
    uint64_t tokens = gw_ratelimit_available(&s->bucket, tnow);
    if (!s->sse && tokens > 0) {
        const struct enc_batch *b = cache_find(s->ss, &s->pos, tokens);
        if (b) {
            gw_ratelimit_take(&s->bucket, tnow, b->bytes);
            count_push(s, b->n, b->bytes, b->behind, tnow);
            s->last = b->last;
            s->pos = b->next;
            s->last_event_ms = now;
            add_shared(out, b->msg, b->len);
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
    if (n > 1 && !s->sse) {
        size_t cut = cache_align(s->ss, recs, n);
        if (cut < n) {
            /* as far behind as the last record sent */
            behind += recs[n - 1].arrival_ms - recs[cut - 1].arrival_ms;
            n = cut;
            next = (struct store_pos){recs[n - 1].seq, 1};
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
            wait_begin(s, tnow);
            arm(s, (int64_t)(gw_ratelimit_wait_ns(&s->bucket, tnow, need) / 1000000) + 1);
            return GW_PULL_DEFER;
        }
        gw_ratelimit_take(&s->bucket, tnow, bytes);
        count_push(s, n, bytes, behind, tnow);
        if (s->sse) {
            for (size_t i = 0; i < n; i++) {
                char seq[STORE_SEQ_STRLEN];
                store_seq_format(recs[i].seq, seq);
                evbuffer_add_printf(out, "id: %s\nevent: record\ndata: ", seq);
                gw_op_record_json(out, &recs[i]);
                evbuffer_add(out, "\n\n", 2);
            }
        } else {
            /* The Records array through the reply writer, as GetRecords
             * writes it: one document, no per-record set-up. */
            s->last = recs[n - 1].seq;
            size_t len;
            uint8_t *msg = frame_records(s, recs, n, behind, &len);
            if (!msg) {
                /* Never skip records: the subscription ends instead, and the
                 * consumer resumes from its last continuation. */
                end_with(s, "InternalFailureException", "Internal service failure.");
                return pull_once(req, ctx, out, max);
            }
            add_shared(out, msg, len);
            if (s->ss->subs && s->ss->subs->next) /* more than one reader of this shard */
                cache_put(s->ss, &s->pos, &next, n, bytes, s->last, behind, msg, len);
            else
                msg_unref(msg);
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
        s->behind_ms = behind > 0 ? behind : 0;
        add_heartbeat(s, out, behind);
        s->last_event_ms = now;
        return GW_PULL_MORE;
    }
    int64_t wake = due;
    if (s->expires_ms < wake)
        wake = s->expires_ms;
    if (tokens == 0) {
        /* Records waiting while the bucket is empty: the consumer is
         * throttled from now until its next push. */
        if (store_shard_read(s->ss->shard, s->cur, &s->pos, 1, 1, &recs, &n, &next, &behind,
                             NULL) == 0 &&
            n > 0)
            wait_begin(s, tnow);
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

/* A live subscription of the same consumer to the same shard: refused within
 * TAKEOVER_MS of its start, taken over after (the old one gets
 * ResourceInUseException). */
static int check_takeover(struct gw_fanout *f, struct store_shard *shard, const char *consumer_arn,
                          struct gw_error *err)
{
    if (!*consumer_arn) /* console tails are not consumers: any number may run */
        return 0;
    /* The same rule across gateways sharing a JetStream (the store knows of
     * their subscriptions). */
    if (store_sub_elsewhere(shard, consumer_arn, now_ms() - TAKEOVER_MS))
        return gw_error_set(err, GW_ERR_RESOURCE_IN_USE,
                            "Another active subscription exists for this consumer: %s",
                            consumer_arn);
    struct shard_subs *ss = shard_subs_find(f, shard);
    if (!ss)
        return 0;
    for (struct gw_sub *s = ss->subs; s; s = s->next)
        if (strcmp(s->consumer_arn, consumer_arn) == 0 && s->state < SUB_ENDING &&
            now_ms() - s->started_ms < TAKEOVER_MS)
            return gw_error_set(err, GW_ERR_RESOURCE_IN_USE,
                                "Another active subscription exists for this consumer: %s",
                                consumer_arn);
    /* A shard has one entry, and end_with() frees it once its last
     * subscription leaves: nothing of "ss" is read after the last end_with(). */
    for (struct gw_sub *s = ss->subs, *next; s; s = next) {
        next = s->next;
        if (strcmp(s->consumer_arn, consumer_arn) == 0 && s->state < SUB_ENDING)
            end_with(s, "ResourceInUseException",
                     "The subscription was taken over by a newer SubscribeToShard call.");
    }
    return 0;
}

int gw_fanout_subscribe(struct gw_fanout *f, struct gw_req *req, enum gw_fanout_format fmt,
                        const char *stream, struct store_shard *shard, const char *consumer_arn,
                        struct store_pos start, struct gw_error *err)
{
    if (!consumer_arn)
        consumer_arn = "";
    if (check_takeover(f, shard, consumer_arn, err) != 0)
        return -1;
    gw_metrics_subscribed(f->metrics, consumer_arn);
    const struct gw_config *cfg = f->cfg;
    struct gw_sub *s = xcalloc(1, sizeof *s);
    s->f = f;
    s->req = req;
    s->sse = fmt == GW_FANOUT_SSE;
    snprintf(s->consumer_arn, sizeof s->consumer_arn, "%s", consumer_arn);
    s->pos = start;
    s->last = before(start);
    s->cur = store_cursor_new();
    s->timer = evtimer_new(f->base, on_timer, s);
    if (!s->timer)
        abort();
    s->started_ms = now_ms();
    s->expires_ms = s->started_ms + (int64_t)cfg->subscription_ttl_ms;
    if (*consumer_arn)
        store_sub_claim(shard, consumer_arn, s->started_ms);
    gw_ratelimit_init(&s->bucket, cfg->consumer_rate, cfg->consumer_burst, mono_ns());
    struct shard_subs *ss = shard_subs_get(f, shard, stream);
    s->ss = ss;
    s->next = ss->subs;
    if (s->next)
        s->next->prev = s;
    ss->subs = s;
    f->nsubs++;
    gw_req_on_abort(req, on_abort, s);
    if (s->sse) {
        gw_resp_header(req, "content-type", "text/event-stream");
        gw_resp_header(req, "cache-control", "no-cache");
    } else {
        gw_resp_header(req, "content-type", "application/vnd.amazon.eventstream");
    }
    if (!s->sse)
        gw_resp_shared_pieces(req); /* events go by reference (add_shared) */
    gw_resp_stream(req, 200, pull, s);
    return 0;
}

void gw_fanout_each(const struct gw_fanout *f,
                    void (*fn)(void *arg, const struct gw_fanout_sub_info *info), void *arg)
{
    if (!f)
        return;
    for (const struct shard_subs *ss = f->shards; ss; ss = ss->next)
        for (const struct gw_sub *s = ss->subs; s; s = s->next) {
            if (s->state >= SUB_ENDING)
                continue;
            struct gw_fanout_sub_info info = {
                .stream = ss->stream,
                .shard = ss->index,
                .consumer_arn = s->consumer_arn,
                .fmt = s->sse ? GW_FANOUT_SSE : GW_FANOUT_EVENT_STREAM,
                .started_ms = s->started_ms,
                .pushed_records = s->pushed_records,
                .pushed_bytes = s->pushed_bytes,
                .millis_behind = s->behind_ms,
                .rate_bytes_per_s = f->cfg->consumer_rate,
                .throttled = s->wait_since_ns != 0,
            };
            fn(arg, &info);
        }
}
