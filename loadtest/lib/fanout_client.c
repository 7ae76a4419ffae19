/* fanout_client.c - see fanout_client.h.
 *
 * Data path (client side): the bufferevent's read callback hands each chunk
 * of socket input to nghttp2_session_mem_recv(); nghttp2 calls
 * on_data_chunk() per DATA frame piece; for a subscription with a 200 answer
 * the piece goes to sub_feed(), which decodes whole event-stream messages
 * straight from the piece when nothing is pending (no copy) and otherwise
 * from the subscription's pending buffer; handle_message() dispatches on
 * :message-type / :event-type and parses SubscribeToShardEvent payloads.
 * Unary calls and subscriptions share struct fc_sub (a "stream"); unary
 * calls just collect their body. Frames go out through on_send() into a
 * stage buffer that conn_flush() writes to the socket at once when nothing is
 * queued (so a request leaves in the same loop pass, as a latency-minded
 * client does); the rest goes to the bufferevent's output, which stops
 * taking frames past "out_high" bytes (NGHTTP2_ERR_WOULDBLOCK) until the
 * write callback drains it. Reads top up the bufferevent's input straight
 * from the socket (libevent 2.1 reads at most 4 KiB per loop pass).
 *
 * TLS is a thin layer between the socket bufferevent (ciphertext) and
 * nghttp2, not libevent's OpenSSL bufferevent: a BIO takes records from the
 * socket input and puts sealed records into "tout", so TLS gets the same
 * whole-socket reads and same-pass writes as h2c. Otherwise the benchmark's
 * TLS figures would measure bufferevent_openssl's 4 KiB reads and deferred
 * writes on the client, not the gateway.
 */
#include "fanout_client.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "eventstream.h"
#include "json.h"
#include "tls.h"

struct fc_conn {
    struct event_base *base;
    struct bufferevent *bev;
    nghttp2_session *h2;
    struct fc_conn_opts o;
    char authority[64];
    bool failed, in_recv, freeing, paused;
    char err[160];
    struct fc_sub *streams; /* every stream not yet freed, open or closed */
    struct evbuffer *stage; /* frames of one nghttp2_session_send() */
    bool stage_full, connected;
    /* TLS (o.tls): ready once the handshake is done; tout holds sealed
     * records on their way to the socket. */
    SSL *ssl;
    struct evbuffer *tout;
    bool tls_ready;
};

/* A stream: a unary call (is_sub false) or a subscription. */
struct fc_sub {
    struct fc_conn *c;
    struct fc_sub *prev, *next;
    int32_t id;
    bool is_sub, open, exception, cancelled;
    /* request body */
    char *req;
    size_t req_len, req_off;
    /* reply body (unary, or a non-200 subscription) / undecoded input */
    uint8_t *buf;
    size_t len, cap;
    /* unary */
    fc_on_reply cb;
    void *cb_ud;
    int status;
    /* subscription */
    struct fc_sub_opts o;
    struct fc_sub_stats st;
    uint8_t *scratch; /* decoded record data */
    size_t scratch_cap;
};

/* ---- small utilities ----------------------------------------------------- */

int64_t fc_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t fc_now_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int fc_seq_cmp(const char *a, const char *b)
{
    while (*a == '0' && a[1])
        a++;
    while (*b == '0' && b[1])
        b++;
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        abort();
    return q;
}

static void buf_append(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *p, size_t n)
{
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n)
            nc *= 2;
        *buf = xrealloc(*buf, nc);
        *cap = nc;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

static void copy_str(char *dst, size_t cap, const void *src, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* Appends "s" as a JSON string literal (quotes included). */
static void json_quote(char **buf, size_t *len, size_t *cap, const char *s)
{
    buf_append((uint8_t **)buf, len, cap, (const uint8_t *)"\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            buf_append((uint8_t **)buf, len, cap, (const uint8_t *)esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            buf_append((uint8_t **)buf, len, cap, (const uint8_t *)esc, 6);
        } else {
            buf_append((uint8_t **)buf, len, cap, &ch, 1);
        }
    }
    buf_append((uint8_t **)buf, len, cap, (const uint8_t *)"\"", 1);
}

static void append_lit(char **buf, size_t *len, size_t *cap, const char *s)
{
    buf_append((uint8_t **)buf, len, cap, (const uint8_t *)s, strlen(s));
}

/* ---- connection I/O -------------------------------------------------------- */

static void conn_fail(struct fc_conn *c, const char *why);

#define TLS_RECORD 16384

/* Seals the clear bytes in "clear" into records in c->tout, up to a full
 * record per SSL_write. False (connection failed) on an OpenSSL error. */
static bool tls_seal(struct fc_conn *c, struct evbuffer *clear)
{
    while (evbuffer_get_length(clear) > 0) {
        size_t n = evbuffer_get_length(clear);
        if (n > TLS_RECORD)
            n = TLS_RECORD;
        const unsigned char *p = evbuffer_pullup(clear, (ssize_t)n);
        ERR_clear_error(); /* SSL_get_error reads the thread's queue: start clean */
        int w = p ? SSL_write(c->ssl, p, (int)n) : -1;
        if (w <= 0) { /* our BIO takes every write, so this is final */
            conn_fail(c, "SSL_write failed");
            return false;
        }
        evbuffer_drain(clear, (size_t)w);
    }
    return true;
}

/* Sends "buf" (bytes for the wire) now if nothing is queued before it, and
 * queues what the socket did not take. */
static void send_wire(struct fc_conn *c, struct evbuffer *buf)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->connected && evbuffer_get_length(out) == 0 && evbuffer_get_length(buf) > 0)
        (void)evbuffer_write(buf, bufferevent_getfd(c->bev)); /* errors: the bev reports */
    if (evbuffer_get_length(buf) > 0)
        evbuffer_add_buffer(out, buf);
}

/* Lets nghttp2 write what it has. Not from inside mem_recv (the read
 * callback flushes once the whole read is processed). */
static void conn_flush(struct fc_conn *c)
{
    if (c->failed || c->in_recv || c->freeing)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    for (;;) { /* ends when nghttp2 is done or the socket is full (output queued) */
        c->stage_full = false;
        int rv = nghttp2_session_send(c->h2);
        if (!c->o.tls)
            send_wire(c, c->stage);
        else if (c->tls_ready && tls_seal(c, c->stage))
            send_wire(c, c->tout);
        if (c->failed)
            return;
        if (rv != 0) {
            conn_fail(c, nghttp2_strerror(rv));
            return;
        }
        if (c->o.tls && !c->tls_ready)
            return; /* frames wait in the stage; the handshake's end flushes again */
        /* Stopped on a full stage that the kernel took whole: no write
         * callback will come, so continue here. */
        if (!c->stage_full || evbuffer_get_length(out) > 0)
            return;
    }
}

/* Reads what the socket holds (up to 1 MiB) into "in". */
static void read_more(struct fc_conn *c, struct evbuffer *in)
{
    if (evbuffer_get_length(in) < 4096) /* libevent's read emptied the socket */
        return;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    evbuffer_unfreeze(in, 0); /* the bufferevent keeps its input's end frozen */
    for (int i = 0; i < 16 && fd >= 0; i++) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(in, 65536, &v, 1) < 1)
            break;
        if (v.iov_len > 65536)
            v.iov_len = 65536;
        ssize_t n = read(fd, v.iov_base, v.iov_len);
        if (n <= 0) /* EAGAIN, or EOF/error that the bufferevent reports next */
            break;
        v.iov_len = (size_t)n;
        evbuffer_commit_space(in, &v, 1);
        if ((size_t)n < 65536)
            break;
    }
    evbuffer_freeze(in, 0);
}

static ssize_t on_send(nghttp2_session *h, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct fc_conn *c = ud;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) + evbuffer_get_length(c->stage) >= c->o.out_high) {
        c->stage_full = true;
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    evbuffer_add(c->stage, data, len);
    return (ssize_t)len;
}

/* Hands "len" clear bytes to nghttp2 (which takes them all or fails). */
static bool feed_h2(struct fc_conn *c, const uint8_t *p, size_t len)
{
    ssize_t r = nghttp2_session_mem_recv(c->h2, p, len);
    if (r < 0) {
        c->in_recv = false;
        conn_fail(c, nghttp2_strerror((int)r));
        return false;
    }
    return true;
}

/* The TLS side of a read: the handshake, then every whole record in the
 * socket input decrypted and fed to nghttp2. */
static void tls_on_read(struct fc_conn *c)
{
    if (!c->tls_ready) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        send_wire(c, c->tout);
        if (r != 1) {
            if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
                conn_fail(c, "TLS handshake failed");
            return;
        }
        const unsigned char *alpn;
        unsigned alpn_len;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
        if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
            conn_fail(c, "the server did not select ALPN h2");
            return;
        }
        c->tls_ready = true;
    }
    uint8_t clear[TLS_RECORD];
    int n = 0;
    c->in_recv = true;
    while (!c->failed) { /* a callback may fail the connection */
        ERR_clear_error();
        if ((n = SSL_read(c->ssl, clear, sizeof clear)) <= 0)
            break;
        if (!feed_h2(c, clear, (size_t)n))
            return;
    }
    c->in_recv = false;
    if (c->failed)
        return;
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_ZERO_RETURN)
        conn_fail(c, "connection closed by the server (close_notify)");
    else if (e != SSL_ERROR_WANT_READ)
        conn_fail(c, "SSL_read failed");
    else if (evbuffer_get_length(c->tout) > 0) /* e.g. a KeyUpdate answer */
        send_wire(c, c->tout);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct fc_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    read_more(c, in);
    if (c->o.tls) {
        tls_on_read(c);
        conn_flush(c);
        return;
    }
    c->in_recv = true;
    while (!c->failed && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (!feed_h2(c, v.iov_base, v.iov_len))
            return;
        evbuffer_drain(in, v.iov_len);
    }
    c->in_recv = false;
    conn_flush(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    conn_flush(arg);
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    struct fc_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->connected = true;
        if (c->o.tls)
            tls_on_read(c); /* sends the ClientHello */
        else
            conn_flush(c);
        return;
    }
    if (what & BEV_EVENT_EOF)
        conn_fail(c, "connection closed by the server");
    else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_fail(c, strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR() : ECONNRESET));
}

/* ---- stream lifecycle ---------------------------------------------------- */

static void stream_link(struct fc_conn *c, struct fc_sub *s)
{
    s->c = c;
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
}

static void stream_unlink(struct fc_sub *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (s->c->streams == s)
        s->c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void stream_release(struct fc_sub *s)
{
    free(s->req);
    free(s->buf);
    free(s->scratch);
    free(s);
}

static void sub_parse_error_body(struct fc_sub *s)
{
    json_error_t je;
    json_t *j = s->len ? json_loadb((const char *)s->buf, s->len, 0, &je) : NULL;
    const char *t = json_string_value(json_object_get(j, "__type"));
    const char *m = json_string_value(json_object_get(j, "message"));
    if (t)
        copy_str(s->st.error_type, sizeof s->st.error_type, t, strlen(t));
    if (m)
        copy_str(s->st.error_message, sizeof s->st.error_message, m, strlen(m));
    json_decref(j);
}

/* The stream "s" is over (closed by nghttp2, or its connection failed):
 * decide how, then tell the owner last, since its callback may free "s". */
static void stream_closed(struct fc_sub *s, uint32_t error_code, bool conn_gone)
{
    if (!s->open)
        return;
    s->open = false;
    if (!s->is_sub) {
        json_t *j = NULL;
        int status = (error_code == 0 && !conn_gone) ? s->status : 0;
        if (s->len) {
            json_error_t je;
            j = json_loadb((const char *)s->buf, s->len, 0, &je);
        }
        fc_on_reply cb = s->cb;
        void *ud = s->cb_ud;
        /* A unary call is freed here: its owner only sees the callback. */
        stream_unlink(s);
        stream_release(s);
        if (cb)
            cb(status, j, ud);
        json_decref(j);
        return;
    }
    struct fc_sub_stats *st = &s->st;
    if (st->end == FC_END_NONE) {
        if (conn_gone)
            st->end = FC_END_CONN;
        else if (error_code != 0 && st->status == 0)
            st->end = FC_END_RESET;
        else if (st->status != 200) {
            st->end = FC_END_HTTP_ERROR;
            sub_parse_error_body(s);
        } else if (s->exception)
            st->end = FC_END_EXCEPTION;
        else if (error_code != 0)
            st->end = FC_END_RESET;
        else if (s->len) {
            st->end = FC_END_PROTOCOL;
            st->decode_errors++;
            snprintf(st->decode_error, sizeof st->decode_error,
                     "stream ended inside a message (%zu bytes pending)", s->len);
        } else
            st->end = FC_END_CLEAN;
    }
    if (s->o.on_end)
        s->o.on_end(s, st->end, s->o.ud);
}

static void conn_fail(struct fc_conn *c, const char *why)
{
    if (c->failed)
        return;
    c->failed = true;
    snprintf(c->err, sizeof c->err, "%s", why);
    ERR_clear_error(); /* this connection's OpenSSL errors are not the thread's others' */
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    /* Callbacks may free their own stream (and unary ones are freed), so
     * restart from the head after each. */
    for (;;) {
        struct fc_sub *s = c->streams;
        while (s && !s->open)
            s = s->next;
        if (!s)
            break;
        stream_closed(s, 0, true);
    }
}

/* ---- the event-stream body -------------------------------------------------- */

static bool hdr_is(const struct gw_es_header *h, const char *v)
{
    size_t n = strlen(v);
    return h->type == GW_ES_TYPE_STRING && h->v.bytes.len == n && memcmp(h->v.bytes.p, v, n) == 0;
}

static void hdr_copy(char *dst, size_t cap, const struct gw_es_message *m, const char *name)
{
    struct gw_es_header h;
    if (gw_es_message_find(m, name, &h) == 0 && h.type == GW_ES_TYPE_STRING)
        copy_str(dst, cap, h.v.bytes.p, h.v.bytes.len);
}

static void sub_protocol_error(struct fc_sub *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sub_protocol_error(struct fc_sub *s, const char *fmt, ...)
{
    s->st.decode_errors++;
    if (!s->st.decode_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->st.decode_error, sizeof s->st.decode_error, fmt, ap);
        va_end(ap);
    }
}

/* Parses one SubscribeToShardEvent payload and calls back. */
static void handle_event(struct fc_sub *s, const struct gw_es_message *m)
{
    struct fc_sub_stats *st = &s->st;
    json_error_t je;
    json_t *j = json_loadb((const char *)m->payload, m->payload_len, 0, &je);
    json_t *recs = json_object_get(j, "Records");
    if (!json_is_object(j) || !json_is_array(recs)) {
        sub_protocol_error(s, "SubscribeToShardEvent payload: %s",
                           j ? "no Records array" : je.text);
        json_decref(j);
        return;
    }
    st->events++;
    struct fc_event ev = {.millis_behind = -1, .wire_bytes = m->total_len};
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        const char *seq = json_string_value(json_object_get(r, "SequenceNumber"));
        const char *pk = json_string_value(json_object_get(r, "PartitionKey"));
        json_t *data = json_object_get(r, "Data");
        json_t *ts = json_object_get(r, "ApproximateArrivalTimestamp");
        if (!seq || !pk || !json_is_string(data) || !json_is_number(ts)) {
            sub_protocol_error(s, "record %zu lacks a member", i);
            continue;
        }
        size_t tl = json_string_length(data);
        size_t need = gw_base64_decoded_len(json_string_value(data), tl);
        if (need > s->scratch_cap) {
            s->scratch = xrealloc(s->scratch, need);
            s->scratch_cap = need;
        }
        long n = gw_base64_decode(json_string_value(data), tl, s->scratch, s->scratch_cap);
        if (n < 0) {
            sub_protocol_error(s, "record %zu: bad base64", i);
            continue;
        }
        struct fc_record rec = {
            .seq = seq,
            .arrival_ms = llround(json_number_value(ts) * 1000.0),
            .data = s->scratch,
            .len = (size_t)n,
            .pk = pk,
        };
        st->records++;
        st->data_bytes += (size_t)n;
        ev.n_records++;
        ev.data_bytes += (size_t)n;
        if (s->o.on_record)
            s->o.on_record(s, &rec, s->o.ud);
        if (s->cancelled)
            break;
    }
    if (ev.n_records == 0)
        st->empty_events++;
    json_t *cs = json_object_get(j, "ContinuationSequenceNumber");
    if (json_is_string(cs)) {
        copy_str(st->last_cont_seq, sizeof st->last_cont_seq, json_string_value(cs),
                 json_string_length(cs));
        ev.cont_seq = st->last_cont_seq;
    }
    json_t *mb = json_object_get(j, "MillisBehindLatest");
    if (json_is_integer(mb)) {
        ev.millis_behind = (int64_t)json_integer_value(mb);
        st->millis_behind = ev.millis_behind;
    }
    if (s->o.on_event && !s->cancelled)
        s->o.on_event(s, &ev, s->o.ud);
    json_decref(j);
}

/* ---- the fast path: a scanner for exactly what Kinesis sends ------------------ */

struct scan {
    const char *p, *end;
};

static void sc_ws(struct scan *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\n' || *sc->p == '\r' || *sc->p == '\t'))
        sc->p++;
}

static bool sc_lit(struct scan *sc, char c)
{
    sc_ws(sc);
    if (sc->p < sc->end && *sc->p == c) {
        sc->p++;
        return true;
    }
    return false;
}

/* A string without escapes: a view of its bytes. */
static bool sc_str(struct scan *sc, const char **v, size_t *n)
{
    if (!sc_lit(sc, '"'))
        return false;
    const char *q = memchr(sc->p, '"', (size_t)(sc->end - sc->p));
    if (!q || memchr(sc->p, '\\', (size_t)(q - sc->p)))
        return false;
    *v = sc->p;
    *n = (size_t)(q - sc->p);
    sc->p = q + 1;
    return true;
}

/* A non-negative number as milliseconds ("scale" 1000) or as an integer
 * ("scale" 1); fractions past the third digit are rounded. */
static bool sc_num(struct scan *sc, int scale, int64_t *out)
{
    sc_ws(sc);
    int64_t ip = 0;
    const char *s0 = sc->p;
    while (sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9' && sc->p - s0 < 15)
        ip = ip * 10 + (*sc->p++ - '0');
    if (sc->p == s0)
        return false;
    int64_t frac = 0;
    int digits = 0;
    bool round_up = false;
    if (sc->p < sc->end && *sc->p == '.') {
        sc->p++;
        while (sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9') {
            if (digits < 3)
                frac = frac * 10 + (*sc->p - '0');
            else if (digits == 3)
                round_up = *sc->p >= '5';
            digits++;
            sc->p++;
        }
    }
    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E'))
        return false;
    if (scale == 1) {
        if (digits)
            return false;
        *out = ip;
        return true;
    }
    for (int d = digits; d < 3; d++)
        frac *= 10;
    *out = ip * 1000 + frac + (round_up ? 1 : 0);
    return true;
}

static bool sc_key(struct scan *sc, const char **k, size_t *n)
{
    return sc_str(sc, k, n) && sc_lit(sc, ':');
}

#define KEY_IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), (n)) == 0)

struct fast_rec {
    const char *seq, *data, *pk;
    size_t seq_len, data_len, pk_len;
    int64_t ms;
};

/* Parses one SubscribeToShardEvent payload and calls back. Returns 0, or -1
 * before any callback when the payload is not in the expected shape (the
 * caller then uses jansson). */
static int fast_event(struct fc_sub *s, const struct gw_es_message *m)
{
    struct scan sc = {(const char *)m->payload, (const char *)m->payload + m->payload_len};
    struct fast_rec stack[64], *recs = stack;
    size_t n = 0, cap = 64;
    const char *cont = NULL;
    size_t cont_len = 0;
    int64_t behind = -1;
    bool have_records = false;
    int rv = -1;
    if (!sc_lit(&sc, '{'))
        goto out;
    if (sc_lit(&sc, '}'))
        goto out;
    do {
        const char *k;
        size_t kl;
        if (!sc_key(&sc, &k, &kl))
            goto out;
        if (KEY_IS(k, kl, "Records")) {
            have_records = true;
            if (!sc_lit(&sc, '['))
                goto out;
            if (sc_lit(&sc, ']'))
                continue;
            do {
                struct fast_rec r = {.ms = -1};
                if (!sc_lit(&sc, '{'))
                    goto out;
                do {
                    const char *rk;
                    size_t rkl;
                    if (!sc_key(&sc, &rk, &rkl))
                        goto out;
                    if (KEY_IS(rk, rkl, "SequenceNumber")) {
                        if (!sc_str(&sc, &r.seq, &r.seq_len))
                            goto out;
                    } else if (KEY_IS(rk, rkl, "Data")) {
                        if (!sc_str(&sc, &r.data, &r.data_len))
                            goto out;
                    } else if (KEY_IS(rk, rkl, "PartitionKey")) {
                        if (!sc_str(&sc, &r.pk, &r.pk_len))
                            goto out;
                    } else if (KEY_IS(rk, rkl, "ApproximateArrivalTimestamp")) {
                        if (!sc_num(&sc, 1000, &r.ms))
                            goto out;
                    } else {
                        const char *v;
                        size_t vl;
                        if (!sc_str(&sc, &v, &vl)) /* EncryptionType and the like */
                            goto out;
                    }
                } while (sc_lit(&sc, ','));
                if (!sc_lit(&sc, '}') || !r.seq || !r.data || !r.pk || r.ms < 0)
                    goto out;
                if (n == cap) {
                    cap *= 2;
                    if (recs == stack) {
                        recs = xrealloc(NULL, cap * sizeof *recs);
                        memcpy(recs, stack, sizeof stack);
                    } else {
                        recs = xrealloc(recs, cap * sizeof *recs);
                    }
                }
                recs[n++] = r;
            } while (sc_lit(&sc, ','));
            if (!sc_lit(&sc, ']'))
                goto out;
        } else if (KEY_IS(k, kl, "ContinuationSequenceNumber")) {
            if (!sc_str(&sc, &cont, &cont_len))
                goto out;
        } else if (KEY_IS(k, kl, "MillisBehindLatest")) {
            if (!sc_num(&sc, 1, &behind))
                goto out;
        } else {
            goto out; /* ChildShards and anything else: jansson */
        }
    } while (sc_lit(&sc, ','));
    if (!sc_lit(&sc, '}') || !have_records)
        goto out;
    sc_ws(&sc);
    if (sc.p != sc.end)
        goto out;

    /* Well-formed: deliver. */
    rv = 0;
    struct fc_sub_stats *st = &s->st;
    st->events++;
    struct fc_event ev = {.millis_behind = behind, .wire_bytes = m->total_len};
    char seq[160], pk[300];
    for (size_t i = 0; i < n && !s->cancelled; i++) {
        struct fast_rec *r = &recs[i];
        size_t need = gw_base64_decoded_len(r->data, r->data_len);
        if (need > s->scratch_cap) {
            s->scratch = xrealloc(s->scratch, need);
            s->scratch_cap = need;
        }
        long dl = gw_base64_decode(r->data, r->data_len, s->scratch, s->scratch_cap);
        if (dl < 0 || r->seq_len >= sizeof seq || r->pk_len >= sizeof pk) {
            sub_protocol_error(s, "record %zu: bad base64 or over-long member", i);
            continue;
        }
        copy_str(seq, sizeof seq, r->seq, r->seq_len);
        copy_str(pk, sizeof pk, r->pk, r->pk_len);
        struct fc_record rec = {seq, r->ms, s->scratch, (size_t)dl, pk};
        st->records++;
        st->data_bytes += (size_t)dl;
        ev.n_records++;
        ev.data_bytes += (size_t)dl;
        if (s->o.on_record)
            s->o.on_record(s, &rec, s->o.ud);
    }
    if (ev.n_records == 0)
        st->empty_events++;
    if (cont) {
        copy_str(st->last_cont_seq, sizeof st->last_cont_seq, cont, cont_len);
        ev.cont_seq = st->last_cont_seq;
    }
    if (behind >= 0)
        st->millis_behind = behind;
    if (s->o.on_event && !s->cancelled)
        s->o.on_event(s, &ev, s->o.ud);
out:
    if (recs != stack)
        free(recs);
    return rv;
}

static void handle_message(struct fc_sub *s, const struct gw_es_message *m)
{
    struct fc_sub_stats *st = &s->st;
    struct gw_es_header mt, et;
    st->messages++;
    if (gw_es_message_find(m, ":message-type", &mt) != 0) {
        st->unknown_messages++;
        return;
    }
    if (hdr_is(&mt, "event")) {
        if (gw_es_message_find(m, ":event-type", &et) != 0) {
            st->unknown_messages++;
        } else if (hdr_is(&et, GW_ES_EVENT_INITIAL_RESPONSE)) {
            if (st->got_initial || st->messages != 1)
                st->initial_not_first = true;
            st->got_initial = true;
        } else if (hdr_is(&et, GW_ES_EVENT_SUBSCRIBE)) {
            if (!st->got_initial)
                st->initial_not_first = true;
            if (!s->o.fast_json || fast_event(s, m) != 0)
                handle_event(s, m);
        } else {
            st->unknown_messages++;
        }
    } else if (hdr_is(&mt, "exception")) {
        s->exception = true;
        hdr_copy(st->error_type, sizeof st->error_type, m, ":exception-type");
        json_error_t je;
        json_t *j = json_loadb((const char *)m->payload, m->payload_len, 0, &je);
        const char *msg = json_string_value(json_object_get(j, "message"));
        if (msg)
            copy_str(st->error_message, sizeof st->error_message, msg, strlen(msg));
        json_decref(j);
    } else if (hdr_is(&mt, "error")) {
        s->exception = true;
        hdr_copy(st->error_type, sizeof st->error_type, m, ":error-code");
        hdr_copy(st->error_message, sizeof st->error_message, m, ":error-message");
    } else {
        st->unknown_messages++;
    }
}

/* Decodes whole messages from "p" ("n" bytes); returns the bytes used, or
 * -1 after a framing error (the stream is then reset). */
static ssize_t sub_decode(struct fc_sub *s, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && !s->cancelled) {
        struct gw_es_message m;
        char err[128];
        ssize_t r = gw_es_decode(p + off, n - off, &m, err, sizeof err);
        if (r == GW_ES_INCOMPLETE)
            break;
        if (r < 0) {
            sub_protocol_error(s, "event stream at byte %llu: %s",
                               (unsigned long long)(s->st.wire_bytes - (n - off)), err);
            return -1;
        }
        handle_message(s, &m);
        off += (size_t)r;
    }
    return (ssize_t)off;
}

static void sub_feed(struct fc_sub *s, const uint8_t *p, size_t n)
{
    ssize_t used;
    if (s->len == 0) {
        used = sub_decode(s, p, n);
        if (used >= 0 && (size_t)used < n && !s->cancelled)
            buf_append(&s->buf, &s->len, &s->cap, p + used, n - (size_t)used);
    } else {
        buf_append(&s->buf, &s->len, &s->cap, p, n);
        used = sub_decode(s, s->buf, s->len);
        if (used > 0) {
            memmove(s->buf, s->buf + used, s->len - (size_t)used);
            s->len -= (size_t)used;
        }
    }
    if (used < 0) {
        s->st.end = FC_END_PROTOCOL;
        s->len = 0;
        fc_sub_cancel(s);
        s->st.end = FC_END_PROTOCOL;
    }
}

/* ---- nghttp2 callbacks ------------------------------------------------------ */

static int on_header(nghttp2_session *h, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud)
{
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct fc_sub *s = nghttp2_session_get_stream_user_data(h, frame->hd.stream_id);
    if (!s)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        s->status = st;
        s->st.status = st;
    } else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
        copy_str(s->st.content_type, sizeof s->st.content_type, value, valuelen);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *h, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    struct fc_sub *s = nghttp2_session_get_stream_user_data(h, stream_id);
    if (!s || !s->open) {
        nghttp2_session_consume_connection(h, len);
        return 0;
    }
    if (s->is_sub && s->o.stalled)
        nghttp2_session_consume_connection(h, len);
    else
        nghttp2_session_consume(h, stream_id, len);
    if (!s->is_sub || s->st.status != 200) {
        if (s->len + len <= (4u << 20)) /* an error body is small */
            buf_append(&s->buf, &s->len, &s->cap, data, len);
        return 0;
    }
    s->st.wire_bytes += len;
    if (!s->cancelled)
        sub_feed(s, data, len);
    return 0;
}

static int on_stream_close(nghttp2_session *h, int32_t stream_id, uint32_t error_code, void *ud)
{
    struct fc_conn *c = ud;
    struct fc_sub *s = nghttp2_session_get_stream_user_data(h, stream_id);
    if (!s || c->freeing)
        return 0;
    nghttp2_session_set_stream_user_data(h, stream_id, NULL);
    stream_closed(s, error_code, false);
    return 0;
}

static ssize_t read_body(nghttp2_session *h, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
    struct fc_sub *s = source->ptr;
    size_t n = s->req_len - s->req_off;
    if (n > length)
        n = length;
    memcpy(buf, s->req + s->req_off, n);
    s->req_off += n;
    if (s->req_off == s->req_len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        free(s->req);
        s->req = NULL;
    }
    return (ssize_t)n;
}

/* ---- connections ---------------------------------------------------------------- */

/* One context for every connection, made once whichever thread comes first
 * (the benchmark opens connections from two); the certificate is a test one. */
static SSL_CTX *tls_ctx;
static pthread_once_t tls_ctx_once = PTHREAD_ONCE_INIT;

static void tls_ctx_init(void)
{
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx || SSL_CTX_set_alpn_protos(tls_ctx, (const unsigned char *)"\x02h2", 3) != 0)
        abort();
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
}

/* A client SSL over "c"'s buffers. */
static SSL *tls_new(struct fc_conn *c)
{
    pthread_once(&tls_ctx_once, tls_ctx_init);
    SSL *ssl = SSL_new(tls_ctx);
    if (!ssl)
        abort();
    /* The gateway's BIO: ciphertext from the socket input, records to tout. */
    BIO *bio = gw_tls_evbuffer_bio(bufferevent_get_input(c->bev), c->tout);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_connect_state(ssl);
    return ssl;
}

struct fc_conn *fc_conn_new(struct event_base *base, const char *host, int port,
                            const struct fc_conn_opts *opts)
{
    struct fc_conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->base = base;
    if (opts)
        c->o = *opts;
    if (!c->o.stream_window)
        c->o.stream_window = 1u << 20;
    if (!c->o.conn_window)
        c->o.conn_window = 64u << 20;
    if (!c->o.out_high)
        c->o.out_high = 256u << 10;
    snprintf(c->authority, sizeof c->authority, "%s:%d", host, port);

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        free(c);
        return NULL;
    }
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    c->stage = evbuffer_new();
    c->tout = evbuffer_new();
    if (!c->bev || !c->stage || !c->tout) {
        if (c->bev)
            bufferevent_free(c->bev);
        if (c->stage)
            evbuffer_free(c->stage);
        if (c->tout)
            evbuffer_free(c->tout);
        free(c);
        return NULL;
    }
    if (c->o.tls)
        c->ssl = tls_new(c);
    bufferevent_setcb(c->bev, on_read, on_write, on_bev_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, c->o.out_high / 2, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);

    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_client_new2(&c->h2, cbs, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);

    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 10000},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->o.stream_window},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 3);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, (int32_t)c->o.conn_window);

    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin, sizeof sin) != 0)
        conn_fail(c, "connect failed");
    conn_flush(c);
    return c;
}

void fc_conn_free(struct fc_conn *c)
{
    if (!c)
        return;
    c->freeing = true;
    while (c->streams) {
        struct fc_sub *s = c->streams;
        stream_unlink(s);
        stream_release(s);
    }
    nghttp2_session_del(c->h2);
    SSL_free(c->ssl); /* and its BIO */
    bufferevent_free(c->bev);
    evbuffer_free(c->stage);
    evbuffer_free(c->tout);
    free(c);
}

bool fc_conn_failed(const struct fc_conn *c) { return c->failed; }
const char *fc_conn_error(const struct fc_conn *c) { return c->err; }
int fc_conn_fd(const struct fc_conn *c) { return c->bev ? (int)bufferevent_getfd(c->bev) : -1; }

void fc_conn_pause_reading(struct fc_conn *c, bool paused)
{
    if (c->failed)
        return;
    c->paused = paused;
    if (paused)
        bufferevent_disable(c->bev, EV_READ);
    else
        bufferevent_enable(c->bev, EV_READ);
}

int fc_conn_goaway(struct fc_conn *c)
{
    if (c->failed)
        return -1;
    int rv = nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    conn_flush(c);
    return rv == 0 ? 0 : -1;
}

/* Submits "s" (linked, body in s->req) as POST / with target "op". */
static int stream_submit(struct fc_conn *c, struct fc_sub *s, const char *op)
{
    char target[96], clen[24];
    snprintf(target, sizeof target, "Kinesis_20131202.%s", op);
    snprintf(clen, sizeof clen, "%zu", s->req_len);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {
        NV(":method", "POST"),
        NV(":scheme", "http"),
        NV(":authority", c->authority),
        NV(":path", "/"),
        NV("content-type", "application/x-amz-json-1.1"),
        NV("x-amz-target", target),
        NV("content-length", clen),
    };
#undef NV
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(c->h2, NULL, nva, sizeof nva / sizeof nva[0], &dp, s);
    if (id < 0)
        return -1;
    s->id = id;
    s->open = true;
    stream_link(c, s);
    conn_flush(c);
    return 0;
}

int fc_call(struct fc_conn *c, const char *op, const char *body, size_t len, fc_on_reply cb,
            void *ud)
{
    if (c->failed)
        return -1;
    struct fc_sub *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->req = xrealloc(NULL, len);
    memcpy(s->req, body, len);
    s->req_len = len;
    s->cb = cb;
    s->cb_ud = ud;
    if (stream_submit(c, s, op) != 0) {
        stream_release(s);
        return -1;
    }
    return 0;
}

static int put(struct fc_conn *c, const char *stream, size_t n, const char *const *pk,
               const uint8_t *const *data, const size_t *len, bool single, fc_on_reply cb,
               void *ud);

int fc_put_record(struct fc_conn *c, const char *stream, const char *pk, const uint8_t *data,
                  size_t len, fc_on_reply cb, void *ud)
{
    return put(c, stream, 1, &pk, &data, &len, true, cb, ud);
}

/* Builds a PutRecord ("single", n == 1) or PutRecords body and sends it. */
static int put(struct fc_conn *c, const char *stream, size_t n, const char *const *pk,
               const uint8_t *const *data, const size_t *len, bool single, fc_on_reply cb,
               void *ud)
{
    char *b = NULL;
    size_t bl = 0, bc = 0;
    append_lit(&b, &bl, &bc, "{\"StreamName\":");
    json_quote(&b, &bl, &bc, stream);
    if (!single)
        append_lit(&b, &bl, &bc, ",\"Records\":[");
    for (size_t i = 0; i < n; i++) {
        append_lit(&b, &bl, &bc, single ? "," : (i ? ",{" : "{"));
        append_lit(&b, &bl, &bc, "\"PartitionKey\":");
        json_quote(&b, &bl, &bc, pk[i]);
        append_lit(&b, &bl, &bc, ",\"Data\":\"");
        size_t el;
        char *enc = gw_base64_encode(data[i], len[i], &el);
        buf_append((uint8_t **)&b, &bl, &bc, (const uint8_t *)enc, el);
        free(enc);
        append_lit(&b, &bl, &bc, single ? "\"" : "\"}");
    }
    append_lit(&b, &bl, &bc, single ? "}" : "]}");
    int rv = fc_call(c, single ? "PutRecord" : "PutRecords", b, bl, cb, ud);
    free(b);
    return rv;
}

int fc_put_records(struct fc_conn *c, const char *stream, size_t n, const char *const *pk,
                   const uint8_t *const *data, const size_t *len, fc_on_reply cb, void *ud)
{
    return put(c, stream, n, pk, data, len, false, cb, ud);
}

/* ---- subscriptions ------------------------------------------------------------ */

struct fc_sub *fc_subscribe(struct fc_conn *c, const struct fc_sub_opts *o)
{
    if (c->failed)
        return NULL;
    struct fc_sub *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->is_sub = true;
    s->o = *o;
    s->o.consumer_arn = s->o.shard_id = s->o.start_type = s->o.start_seq = NULL;
    s->st.millis_behind = -1;
    char *b = NULL;
    size_t bl = 0, bc = 0;
    append_lit(&b, &bl, &bc, "{\"ConsumerARN\":");
    json_quote(&b, &bl, &bc, o->consumer_arn);
    append_lit(&b, &bl, &bc, ",\"ShardId\":");
    json_quote(&b, &bl, &bc, o->shard_id);
    append_lit(&b, &bl, &bc, ",\"StartingPosition\":{\"Type\":");
    json_quote(&b, &bl, &bc, o->start_type);
    if (o->start_seq) {
        append_lit(&b, &bl, &bc, ",\"SequenceNumber\":");
        json_quote(&b, &bl, &bc, o->start_seq);
    }
    if (strcmp(o->start_type, "AT_TIMESTAMP") == 0) {
        char ts[48];
        snprintf(ts, sizeof ts, ",\"Timestamp\":%.3f", o->start_ts);
        append_lit(&b, &bl, &bc, ts);
    }
    append_lit(&b, &bl, &bc, "}}");
    s->req = b;
    s->req_len = bl;
    if (stream_submit(c, s, "SubscribeToShard") != 0) {
        stream_release(s);
        return NULL;
    }
    return s;
}

const struct fc_sub_stats *fc_sub_stats(const struct fc_sub *s) { return &s->st; }

void fc_sub_cancel(struct fc_sub *s)
{
    if (!s->open || s->cancelled)
        return;
    s->cancelled = true;
    if (s->st.end == FC_END_NONE)
        s->st.end = FC_END_CANCELLED;
    if (!s->c->failed) {
        nghttp2_submit_rst_stream(s->c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        conn_flush(s->c);
    }
}

void fc_sub_free(struct fc_sub *s)
{
    if (!s)
        return;
    struct fc_conn *c = s->c;
    if (s->open) {
        s->open = false;
        if (!c->failed) {
            nghttp2_session_set_stream_user_data(c->h2, s->id, NULL);
            if (!s->cancelled)
                nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
            conn_flush(c);
        }
    }
    stream_unlink(s);
    stream_release(s);
}

/* ---- running the loop ---------------------------------------------------------- */

static void on_deadline(evutil_socket_t fd, short what, void *arg) {}

bool fc_run_until(struct event_base *base, const bool *done, int timeout_ms)
{
    int64_t end = fc_now_mono_ns() + (int64_t)timeout_ms * 1000000;
    struct event *t = evtimer_new(base, on_deadline, NULL);
    while (!*done) {
        int64_t left = end - fc_now_mono_ns();
        if (left <= 0)
            break;
        struct timeval tv = {(time_t)(left / 1000000000), (suseconds_t)(left % 1000000000 / 1000)};
        evtimer_add(t, &tv);
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(t);
    return *done;
}

void fc_run_for(struct event_base *base, int ms)
{
    bool never = false;
    fc_run_until(base, &never, ms);
}

struct sync_call {
    bool done;
    int status;
    json_t *reply;
};

static void on_sync_reply(int status, json_t *reply, void *ud)
{
    struct sync_call *sc = ud;
    sc->done = true;
    sc->status = status;
    sc->reply = json_incref(reply);
}

json_t *fc_call_sync(struct fc_conn *c, const char *op, const char *body, int *status,
                     int timeout_ms)
{
    /* Heap-allocated: a timed-out call may still answer later. */
    struct sync_call *sc = calloc(1, sizeof *sc);
    if (!sc)
        abort();
    *status = 0;
    if (fc_call(c, op, body, strlen(body), on_sync_reply, sc) != 0) {
        free(sc);
        return NULL;
    }
    if (!fc_run_until(c->base, &sc->done, timeout_ms))
        return NULL; /* leaks "sc" on purpose: the late reply writes into it */
    *status = sc->status;
    json_t *r = sc->reply;
    free(sc);
    return r;
}
