/* server.c - listeners, per-connection sniffing, TLS, lifecycle and drain.
 *
 * Data path: accept (on_accept) -> sniff the first byte: 0x16 is a TLS
 * ClientHello -> TLS over the socket bufferevent (below), ALPN decides h2 or
 * http/1.1; otherwise the first 24 bytes decide: the HTTP/2 preface goes to
 * h2.c (h2c with prior knowledge), anything else to http1.c.
 *
 * TLS is our own thin record layer, not libevent's bufferevent_openssl: the
 * socket bufferevent carries ciphertext, a BIO reads records from its input
 * and writes sealed records to a side buffer (_tout), and the clear text the
 * protocols see is _tin. Owning it gives TLS what clear text has: reads of
 * 256 KiB per pass instead of libevent 2.1's 4 KiB, replies written through
 * to the socket when nothing is queued (one sendmsg for a reply's records),
 * and a close_notify before a lingering close.
 *
 * Invariants: the server owns every connection and frees it only from a
 * fresh loop pass (gw_conn_close schedules it), so protocol callbacks never
 * run on freed memory. Memory per connection is bounded by the bufferevent
 * watermarks (input stops being read past the read limit; producers stop
 * past the output limit) plus what the protocol bounds itself. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "mem.h"
#include "tls.h"

#include <openssl/err.h>

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
#define READ_HIGH_WATERMARK (1u << 20)
#define READ_CHUNK (256u * 1024)

struct gw_server {
    struct event_base *base;
    const struct gw_config *cfg;
    gw_dispatch_fn dispatch;
    void *ctx;
    SSL_CTX *ssl_ctx;
    struct evconnlistener *listeners[GW_MAX_LISTEN];
    int ports[GW_MAX_LISTEN];
    size_t nlisteners;
    struct event *accept_resume;  /* re-enables the listeners after a pause */
    uint64_t accept_pauses;       /* since the last "accept_paused" log line */
    uint64_t accept_logged_ns;    /* when that line was written */
    TAILQ_HEAD(, gw_conn) conns;
    size_t nconns;
    uint64_t next_id;
    bool draining;
    size_t body_limit;            /* --max-body-bytes, or more (gw_server_set_body_limit) */
    struct event *drain_timer;
    void (*on_drained)(void *);
    void *drained_arg;
    struct gw_server_stats stats;
};

static void conn_free(struct gw_conn *c);
static void maybe_drained(struct gw_server *srv);

/* ---- connection helpers used by the protocols --------------------------- */

size_t gw_conn_body_limit(const struct gw_conn *c)
{
    return c->srv->body_limit;
}

void gw_server_set_body_limit(struct gw_server *srv, size_t bytes)
{
    if (srv)
        srv->body_limit = bytes > srv->cfg->max_body_bytes ? bytes : srv->cfg->max_body_bytes;
}

gw_dispatch_fn gw_conn_dispatcher(struct gw_conn *c, void **ctx)
{
    *ctx = c->srv->ctx;
    return c->srv->dispatch;
}

const bool *gw_conn_draining_flag(struct gw_conn *c) { return &c->srv->draining; }
bool gw_conn_draining(struct gw_conn *c) { return c->srv->draining; }

void gw_conn_close(struct gw_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->bev) {
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    }
    if (c->_sniff_ev)
        event_del(c->_sniff_ev);
    if (c->_tls_ev)
        event_del(c->_tls_ev);
    event_del(c->timer);
    /* The free runs from the connection's own kick event on a later pass (no
     * callback is then on the stack with "c"). An event the connection owns,
     * not an event_base_once: gw_server_free() frees it with the connection,
     * so no scheduled free can outlive it. */
    event_active(c->kick, EV_TIMEOUT, 0);
}

size_t gw_conn_output_len(struct gw_conn *c)
{
    return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

bool gw_conn_output_full(struct gw_conn *c)
{
    return gw_conn_output_len(c) >= c->cfg->conn_buffer_bytes;
}

void gw_server_stats(const struct gw_server *srv, struct gw_server_stats *out)
{
    if (srv)
        *out = srv->stats;
    else
        memset(out, 0, sizeof *out);
}

void gw_conn_count_stream(struct gw_conn *c, int delta)
{
    if (delta > 0) {
        c->srv->stats.h2_streams++;
        c->srv->stats.h2_streams_total++;
    } else if (c->srv->stats.h2_streams > 0) {
        c->srv->stats.h2_streams--;
    }
}

void gw_conn_count_refused_stream(struct gw_conn *c)
{
    c->srv->stats.h2_streams_refused++;
}

/* Bytes through the bufferevent's buffers: what the kernel (or OpenSSL)
 * handed us, and what we queued to send; write_through() counts the bytes
 * that bypass the output buffer. */
static void count_in(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    ((struct gw_server *)arg)->stats.bytes_in += info->n_added;
}

static void count_out(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    ((struct gw_server *)arg)->stats.bytes_out += info->n_added;
}

/* Write-through: with nothing queued ahead, hand the bytes to the kernel now
 * instead of arming EPOLLOUT and writing on the next loop pass. This saves a
 * loop turn and two epoll_ctl calls per reply, which is most of the
 * gateway's share of push latency. Returns how many bytes the kernel took;
 * the caller queues the rest in the bufferevent, which then owns
 * back-pressure, write timeouts and errors (a failed write is left for it to
 * report). TLS records go the same way. MSG_NOSIGNAL: a
 * reset peer must not raise SIGPIPE, whoever embeds us. */
static size_t write_through(struct gw_conn *c, struct iovec *iov, size_t n)
{
    if (n == 0 || evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return 0;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = n};
    ssize_t w = fd >= 0 ? sendmsg(fd, &m, MSG_NOSIGNAL) : -1;
    if (w > 0)
        c->srv->stats.bytes_out += (uint64_t)w;
    return w > 0 ? (size_t)w : 0;
}

/* Socket bytes (clear text, or the records TLS made): through to the kernel
 * if nothing is queued, the rest queued behind. */
#define SEND_IOV 64

static void raw_send_evbuffer(struct gw_conn *c, struct evbuffer *buf)
{
    struct evbuffer_iovec v[SEND_IOV];
    struct iovec iov[SEND_IOV];
    int nv = evbuffer_peek(buf, -1, NULL, v, SEND_IOV);
    if (nv > SEND_IOV)
        nv = SEND_IOV;
    for (int i = 0; i < nv; i++)
        iov[i] = (struct iovec){v[i].iov_base, v[i].iov_len};
    evbuffer_drain(buf, write_through(c, iov, nv > 0 ? (size_t)nv : 0));
    if (evbuffer_get_length(buf) > 0)
        evbuffer_add_buffer(bufferevent_get_output(c->bev), buf);
}

/* ---- TLS record layer ----------------------------------------------------- */

#define TLS_RECORD 16384

static void tls_fail(struct gw_conn *c, const char *what, int rc)
{
    char buf[160] = "";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    gw_log(GW_LOG_DEBUG, "tls_error", "conn=%llu peer=%s %s: ssl_error=%d %s",
           (unsigned long long)c->id, c->peer, what, rc, buf);
    gw_conn_close(c);
}

/* Seals "len" clear bytes into records in _tout. Our BIO never refuses a
 * write, so SSL_write takes everything or fails for good. */
static bool tls_seal(struct gw_conn *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        int n = len > (1u << 30) ? 1 << 30 : (int)len;
        ERR_clear_error();
        int w = SSL_write(c->_ssl, p, n);
        if (w <= 0) {
            tls_fail(c, "SSL_write", SSL_get_error(c->_ssl, w));
            return false;
        }
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/* Small pieces (a head, a chunk marker, a body) are gathered into one record
 * rather than sealed one record each; a piece of a record's size or more is
 * sealed where it lies. */
static void tls_send_evbuffer(struct gw_conn *c, struct evbuffer *buf)
{
    uint8_t rec[TLS_RECORD];
    size_t fill = 0;
    bool ok = true;
    while (ok && evbuffer_get_length(buf) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(buf, -1, NULL, &v, 1) < 1)
            break;
        if (fill == 0 && v.iov_len >= TLS_RECORD) {
            ok = tls_seal(c, v.iov_base, v.iov_len);
            evbuffer_drain(buf, v.iov_len);
            continue;
        }
        size_t take = v.iov_len < TLS_RECORD - fill ? v.iov_len : TLS_RECORD - fill;
        memcpy(rec + fill, v.iov_base, take);
        evbuffer_drain(buf, take);
        fill += take;
        if (fill == TLS_RECORD) {
            ok = tls_seal(c, rec, fill);
            fill = 0;
        }
    }
    if (ok && fill > 0)
        ok = tls_seal(c, rec, fill);
    evbuffer_drain(buf, evbuffer_get_length(buf));
    if (ok)
        raw_send_evbuffer(c, c->_tout);
}

void gw_conn_send_bytes(struct gw_conn *c, const uint8_t *p, size_t len)
{
    if (!c->bev || c->closing || len == 0)
        return;
    if (c->tls) {
        if (tls_seal(c, p, len))
            raw_send_evbuffer(c, c->_tout);
        return;
    }
    struct iovec iov = {(void *)p, len};
    size_t w = write_through(c, &iov, 1);
    if (w < len)
        evbuffer_add(bufferevent_get_output(c->bev), p + w, len - w);
}

void gw_conn_send_evbuffer(struct gw_conn *c, struct evbuffer *buf)
{
    size_t len = evbuffer_get_length(buf);
    if (!c->bev || c->closing || len == 0) {
        evbuffer_drain(buf, len);
        return;
    }
    if (c->tls)
        tls_send_evbuffer(c, buf);
    else
        raw_send_evbuffer(c, buf);
}

struct evbuffer *gw_conn_input(struct gw_conn *c)
{
    return c->tls ? c->_tin : bufferevent_get_input(c->bev);
}

/* Asks for one more decrypt pass if ciphertext waits and the clear input
 * has room (the protocol consumed some, or reading resumed). */
static void tls_want_pump(struct gw_conn *c)
{
    if (c->tls && c->_tls_ready && c->reading && !c->closing && !c->lingering &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 &&
        evbuffer_get_length(c->_tin) < READ_HIGH_WATERMARK)
        event_active(c->_tls_ev, EV_TIMEOUT, 0);
}

static void on_tin_drained(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    if (info->n_deleted > 0)
        tls_want_pump(arg);
}

/* Decrypts into _tin up to the read watermark. Returns the ciphertext bytes
 * consumed, or -1 when the connection failed (closed). */
static ssize_t tls_decrypt(struct gw_conn *c)
{
    struct evbuffer *cin = bufferevent_get_input(c->bev);
    size_t before = evbuffer_get_length(cin);
    while (!c->_tls_eof && evbuffer_get_length(c->_tin) < READ_HIGH_WATERMARK) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(c->_tin, TLS_RECORD, &v, 1) < 1)
            break;
        ERR_clear_error();
        int n = SSL_read(c->_ssl, v.iov_base, (int)(v.iov_len < INT_MAX ? v.iov_len : INT_MAX));
        if (n > 0) {
            v.iov_len = (size_t)n;
            evbuffer_commit_space(c->_tin, &v, 1);
            continue;
        }
        int e = SSL_get_error(c->_ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            c->_tls_eof = true; /* close_notify: what came before it is delivered */
            break;
        }
        tls_fail(c, "SSL_read", e);
        return -1;
    }
    /* Reading can make records too (a TLS 1.3 KeyUpdate answer). */
    if (evbuffer_get_length(c->_tout) > 0)
        raw_send_evbuffer(c, c->_tout);
    return (ssize_t)(before - evbuffer_get_length(cin));
}

static void attach(struct gw_conn *c, int which);
static void sniff_plain(struct gw_conn *c);

/* The handshake; once done, ALPN decides the protocol (or the first bytes
 * do). Returns false while it is not done (or failed). */
static bool tls_handshake(struct gw_conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->_ssl);
    if (evbuffer_get_length(c->_tout) > 0)
        raw_send_evbuffer(c, c->_tout);
    if (r != 1) {
        int e = SSL_get_error(c->_ssl, r);
        if (e != SSL_ERROR_WANT_READ)
            tls_fail(c, "handshake", e);
        return false;
    }
    c->_tls_ready = true;
    int alpn = gw_tls_alpn(c->_ssl);
    gw_log(GW_LOG_DEBUG, "tls_ready", "conn=%llu alpn=%d %s", (unsigned long long)c->id, alpn,
           SSL_get_version(c->_ssl));
    if (alpn)
        attach(c, alpn);
    return true;
}

/* Ciphertext arrived (or the protocol made room): handshake, decrypt,
 * deliver, and again while ciphertext remains and each pass consumes some. */
static void tls_on_read(struct gw_conn *c)
{
    if (!c->_tls_ready && !tls_handshake(c))
        return;
    for (int pass = 0; pass < 64 && !c->closing; pass++) {
        ssize_t used = tls_decrypt(c);
        if (used < 0)
            return;
        if (evbuffer_get_length(c->_tin) > 0) {
            if (c->proto)
                c->proto->on_read(c);
            else
                sniff_plain(c);
        }
        if (c->closing || !c->reading || used == 0 ||
            evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            break;
    }
    if (c->_tls_eof && !c->closing && !c->close_on_flush) {
        gw_log(GW_LOG_DEBUG, "conn_eof", "conn=%llu peer=%s close_notify",
               (unsigned long long)c->id, c->peer);
        gw_conn_close(c);
    }
}

static void on_tls_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct gw_conn *c = arg;
    if (!c->closing && !c->lingering && c->reading)
        tls_on_read(c);
}

/* The TLS state of a connection that starts with a ClientHello; its socket
 * bufferevent exists already (the BIO reads records from its input). */
static bool tls_begin(struct gw_conn *c)
{
    SSL *ssl = SSL_new(c->srv->ssl_ctx);
    if (!ssl)
        return false;
    c->_tin = evbuffer_new();
    c->_tout = evbuffer_new();
    c->_tls_ev = event_new(c->srv->base, -1, 0, on_tls_ev, c);
    if (!c->_tin || !c->_tout || !c->_tls_ev)
        abort();
    /* Records come from the socket bufferevent's input and go to _tout. */
    BIO *bio = gw_tls_evbuffer_bio(bufferevent_get_input(c->bev), c->_tout);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_accept_state(ssl);
    c->_ssl = ssl;
    evbuffer_add_cb(c->_tin, on_tin_drained, c);
    c->tls = true;
    return true;
}

#define LINGER_MS 2000

static void linger_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void linger_event(struct bufferevent *bev, short what, void *arg)
{
    gw_conn_close(arg);
}

/* Closing a socket with unread input makes the kernel send RST, and an RST
 * can destroy the tail of our last reply in the peer's receive queue (a 413
 * sent while the peer still uploads, the end of a stream closed by a drain).
 * So, like nginx's lingering close: shut our write side (FIN after the reply),
 * then read and discard until the peer closes or LINGER_MS pass. */
static void begin_linger(struct gw_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (c->tls && !(SSL_get_shutdown(c->_ssl) & SSL_SENT_SHUTDOWN)) {
        /* close_notify first, so the peer knows the reply is whole; the FIN
         * follows once it is written (on_write calls us again). */
        ERR_clear_error();
        SSL_shutdown(c->_ssl);
        ERR_clear_error();
        raw_send_evbuffer(c, c->_tout);
        if (gw_conn_output_len(c) > 0)
            return;
    }
    if (fd < 0 || shutdown(fd, SHUT_WR) != 0) {
        gw_conn_close(c);
        return;
    }
    c->lingering = true;
    bufferevent_setcb(c->bev, linger_read, NULL, linger_event, c);
    bufferevent_enable(c->bev, EV_READ);
    struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
    event_add(c->timer, &tv);
}

void gw_conn_close_after_flush(struct gw_conn *c)
{
    if (c->closing || c->lingering)
        return;
    c->close_on_flush = true;
    gw_conn_pause_read(c);
    if (gw_conn_output_len(c) == 0)
        begin_linger(c);
}

void gw_conn_timer(struct gw_conn *c, uint64_t ms)
{
    /* Once lingering, the linger deadline owns the timer (protocols may
     * still ask, e.g. freeing a stream re-arms the idle timer). */
    if (c->closing || c->lingering)
        return;
    if (ms == 0) {
        event_del(c->timer);
        return;
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(c->timer, &tv);
}

void gw_conn_kick(struct gw_conn *c)
{
    if (!c->closing && !c->lingering)
        event_active(c->kick, EV_TIMEOUT, 0);
}

void gw_conn_pause_read(struct gw_conn *c)
{
    if (c->reading && c->bev) {
        bufferevent_disable(c->bev, EV_READ);
        c->reading = false;
    }
}

void gw_conn_resume_read(struct gw_conn *c)
{
    if (!c->reading && c->bev && !c->closing && !c->close_on_flush) {
        bufferevent_enable(c->bev, EV_READ);
        c->reading = true;
        /* Ciphertext read before the pause raises no read callback. */
        tls_want_pump(c);
    }
}

/* ---- bufferevent callbacks ------------------------------------------------ */


/* libevent 2.1's evbuffer_read() takes at most 4 KiB per call whatever
 * bufferevent_set_max_single_read() says (the limit became configurable in
 * 2.2), so a 200 KiB PutRecords body cost 50 loop passes. So top the input
 * (clear text, or TLS records) up straight from the socket, up to the read
 * high watermark and READ_CHUNK per pass. EAGAIN ends it; EOF and errors are left for the
 * bufferevent's next read to report. */
static void read_more(struct gw_conn *c, struct evbuffer *in)
{
    /* The bufferevent reads min(bytes waiting, 4 KiB): with less than that
     * in the buffer, its read emptied the socket, so skip a read that would
     * only return EAGAIN (one syscall per small request). */
    if (evbuffer_get_length(in) < 4096)
        return;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    size_t taken = 0;
    /* A socket bufferevent keeps its input's end frozen against writers
     * other than itself; its own read does this same unfreeze/freeze. */
    evbuffer_unfreeze(in, 0);
    while (fd >= 0 && taken < READ_CHUNK) {
        size_t have = evbuffer_get_length(in);
        if (have >= READ_HIGH_WATERMARK)
            break;
        size_t want = READ_HIGH_WATERMARK - have;
        if (want > 65536)
            want = 65536;
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(in, (ev_ssize_t)want, &v, 1) < 1)
            break;
        if (v.iov_len > want)
            v.iov_len = want;
        ssize_t n = read(fd, v.iov_base, v.iov_len);
        if (n <= 0)
            break;
        v.iov_len = (size_t)n;
        evbuffer_commit_space(in, &v, 1);
        taken += (size_t)n;
        if ((size_t)n < want)
            break;
    }
    evbuffer_freeze(in, 0);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct gw_conn *c = arg;
    read_more(c, bufferevent_get_input(bev));
    if (c->tls)
        tls_on_read(c);
    else if (c->proto)
        c->proto->on_read(c);
    else
        sniff_plain(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct gw_conn *c = arg;
    if (c->close_on_flush) {
        if (gw_conn_output_len(c) == 0)
            begin_linger(c);
        return;
    }
    if (c->proto)
        c->proto->on_write(c);
}

static void attach(struct gw_conn *c, int which)
{
    c->_kind = which == 2 ? (c->tls ? GW_CONN_H2 : GW_CONN_H2C)
                          : (c->tls ? GW_CONN_HTTP1_TLS : GW_CONN_HTTP1);
    c->srv->stats.open[c->_kind]++;
    c->srv->stats.opened[c->_kind]++;
    if (which == 2)
        gw_h2_attach(c);
    else
        gw_http1_attach(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct gw_conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        gw_log(GW_LOG_DEBUG, "conn_timeout", "conn=%llu peer=%s write stalled",
               (unsigned long long)c->id, c->peer);
    } else if (what & BEV_EVENT_ERROR) {
        gw_log(GW_LOG_DEBUG, "conn_error", "conn=%llu peer=%s errno=%d",
               (unsigned long long)c->id, c->peer, EVUTIL_SOCKET_ERROR());
    }
    gw_conn_close(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    if (c->lingering) {
        gw_conn_close(c);
        return;
    }
    if (c->proto) {
        c->proto->on_timer(c);
        return;
    }
    gw_log(GW_LOG_DEBUG, "conn_timeout", "conn=%llu peer=%s no request before the header timeout",
           (unsigned long long)c->id, c->peer);
    gw_conn_close(c);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    if (c->closing) {
        conn_free(c); /* scheduled by gw_conn_close() */
        return;
    }
    if (c->proto && !c->lingering)
        c->proto->on_kick(c);
}

static void setup_bev(struct gw_conn *c)
{
    const struct gw_config *cfg = c->cfg;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    evbuffer_add_cb(bufferevent_get_input(c->bev), count_in, c->srv);
    evbuffer_add_cb(bufferevent_get_output(c->bev), count_out, c->srv);
    /* The write callback runs once output drains to a quarter of the limit. */
    bufferevent_setwatermark(c->bev, EV_WRITE, cfg->conn_buffer_bytes / 4, 0);
    bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATERMARK);
    /* Up to READ_CHUNK per callback (but see read_more: libevent 2.1 itself
     * still stops at 4 KiB). */
    bufferevent_set_max_single_read(c->bev, READ_CHUNK);
    /* A peer that stops reading for the idle timeout is cut off. */
    struct timeval wt = {(time_t)(cfg->idle_timeout_ms / 1000),
                         (suseconds_t)((cfg->idle_timeout_ms % 1000) * 1000)};
    bufferevent_set_timeouts(c->bev, NULL, &wt);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->reading = true;
}

/* Decides h2 (preface) vs HTTP/1.1 from the first bytes in the input. */
static void sniff_plain(struct gw_conn *c)
{
    struct evbuffer *in = gw_conn_input(c);
    size_t n = evbuffer_get_length(in);
    unsigned char buf[H2_PREFACE_LEN];
    size_t k = n < H2_PREFACE_LEN ? n : H2_PREFACE_LEN;
    if (k == 0)
        return;
    evbuffer_copyout(in, buf, k);
    if (memcmp(buf, H2_PREFACE, k) != 0)
        attach(c, 1);
    else if (k == H2_PREFACE_LEN)
        attach(c, 2);
    /* else: a prefix of the preface; wait for more (the timer bounds it). */
}

/* Closes the accepted socket that never got a bufferevent, and the
 * connection with it. */
static void drop_fd(struct gw_conn *c)
{
    close(c->_fd);
    c->_fd = -1;
    gw_conn_close(c);
}

static void on_sniff(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    unsigned char b;
    ssize_t r = recv(fd, &b, 1, MSG_PEEK);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0) {
        gw_conn_close(c);
        return;
    }
    event_free(c->_sniff_ev);
    c->_sniff_ev = NULL;
    if (b != 0x16 && c->srv->cfg->tls_only) {
        /* --tls-only: whatever this is, it is not a TLS handshake. */
        gw_log(GW_LOG_INFO, "cleartext_refused", "conn=%llu peer=%s: --tls-only",
               (unsigned long long)c->id, c->peer);
        drop_fd(c);
        return;
    }
    if (b == 0x16) {
        if (!c->srv->ssl_ctx) {
            gw_log(GW_LOG_INFO, "tls_refused",
                   "conn=%llu peer=%s TLS ClientHello but no --tls-cert/--tls-key configured",
                   (unsigned long long)c->id, c->peer);
            drop_fd(c);
            return;
        }
    }
    /* Clear text or ciphertext, the socket's bufferevent is a plain one (the
     * TLS records are ours, see the top of this file). */
    c->bev = bufferevent_socket_new(c->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        drop_fd(c);
        return;
    }
    c->_fd = -1; /* the bufferevent owns the descriptor now */
    if (b == 0x16 && !tls_begin(c)) {
        gw_conn_close(c);
        return;
    }
    setup_bev(c);
}

/* ---- accept ---------------------------------------------------------------- */

/* New connections are refused while draining or at the connection limit. */
static bool refuse_new(struct gw_server *srv)
{
    if (!srv->draining && srv->nconns < srv->cfg->max_connections)
        return false;
    srv->stats.refused++;
    gw_log(GW_LOG_WARN, "conn_refused", "%s: %zu connections open (max %u)",
           srv->draining ? "draining" : "connection limit", srv->nconns,
           srv->cfg->max_connections);
    return true;
}

/* A new connection on "fd" (-1: none, see gw_server_adopt) from "peer",
 * counted and listed, its timer and kick events made; no bufferevent yet. */
static struct gw_conn *conn_new(struct gw_server *srv, evutil_socket_t fd, const char *peer)
{
    struct gw_conn *c = xcalloc(1, sizeof *c);
    c->srv = srv;
    c->cfg = srv->cfg;
    c->id = ++srv->next_id;
    c->_fd = fd;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->timer = evtimer_new(srv->base, on_timer, c);
    c->kick = event_new(srv->base, -1, 0, on_kick, c);
    if (!c->timer || !c->kick)
        abort();
    TAILQ_INSERT_TAIL(&srv->conns, c, link);
    srv->nconns++;
    srv->stats.accepted++;
    c->_kind = -1;
    return c;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct gw_server *srv = arg;
    if (refuse_new(srv)) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char host[INET6_ADDRSTRLEN] = "?", peer[64];
    int port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        port = ntohs(s4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        port = ntohs(s6->sin6_port);
    }
    snprintf(peer, sizeof peer, "%s:%d", host, port);
    struct gw_conn *c = conn_new(srv, fd, peer);
    c->_sniff_ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_sniff, c);
    if (!c->_sniff_ev)
        abort();
    event_add(c->_sniff_ev, NULL);
    gw_conn_timer(c, srv->cfg->header_timeout_ms);
    gw_log(GW_LOG_DEBUG, "conn_open", "conn=%llu peer=%s", (unsigned long long)c->id, c->peer);
}

/* The test seam (see server.h). An accepted socket goes through on_sniff
 * first only to tell TLS from plaintext by peeking at the fd (MSG_PEEK); a
 * bufferevent with no fd (one end of a bufferevent_pair) cannot be peeked
 * and carries plaintext, so it joins the path at the next step: the same
 * setup_bev() an accepted plaintext socket gets, after which on_read ->
 * sniff_plain() tells the HTTP/2 preface from HTTP/1.1 and attaches the real
 * h2.c or http1.c, byte for byte as for a socket. Taking the protocol as a
 * parameter would have skipped sniff_plain; peeking the bufferevent's input
 * for 0x16 would have needed a TLS path no pair can use. With no fd,
 * write_through and read_more do nothing and a lingering close is an
 * immediate close (begin_linger), which is what a test can observe. */
int gw_server_adopt(struct gw_server *srv, struct bufferevent *bev, const char *peer)
{
    if (refuse_new(srv))
        return -1;
    struct gw_conn *c = conn_new(srv, -1, peer ? peer : "adopted");
    c->bev = bev;
    setup_bev(c);
    gw_conn_timer(c, srv->cfg->header_timeout_ms);
    gw_log(GW_LOG_DEBUG, "conn_open", "conn=%llu peer=%s", (unsigned long long)c->id, c->peer);
    /* Bytes already waiting raise no read callback: sniff them now. */
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        sniff_plain(c);
    return 0;
}

/* accept(2) failed with something libevent does not retry by itself. At
 * EMFILE/ENFILE (or ENOBUFS/ENOMEM) the pending connection stays in the
 * backlog, so the listener stays readable and the loop would spin at 100%
 * CPU retrying it. Instead, as nginx does, stop accepting for
 * ACCEPT_PAUSE_MS: the connections we have keep being served, and one of
 * them closing (or the store giving back descriptors) makes room. Pending
 * clients wait in the kernel's backlog meanwhile. Logged at most every
 * ACCEPT_LOG_EVERY_MS, with the number of pauses since. */
#define ACCEPT_PAUSE_MS 200
#define ACCEPT_LOG_EVERY_MS 5000

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    struct gw_server *srv = arg;
    if (srv->draining)
        return; /* the listeners are gone */
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_enable(srv->listeners[i]);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct gw_server *srv = arg;
    int e = EVUTIL_SOCKET_ERROR();
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_disable(srv->listeners[i]);
    static const struct timeval delay = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(srv->accept_resume, &delay);
    srv->accept_pauses++;
    uint64_t now = mono_ns();
    if (srv->accept_logged_ns == 0 ||
        now - srv->accept_logged_ns >= (uint64_t)ACCEPT_LOG_EVERY_MS * 1000000u) {
        gw_log(GW_LOG_WARN, "accept_paused",
               "accept: %s; not accepting for %d ms (%zu connections open, %llu pauses in the "
               "last %d s)",
               strerror(e), ACCEPT_PAUSE_MS, srv->nconns, (unsigned long long)srv->accept_pauses,
               ACCEPT_LOG_EVERY_MS / 1000);
        srv->accept_logged_ns = now;
        srv->accept_pauses = 0;
    }
}

static void conn_free(struct gw_conn *c)
{
    struct gw_server *srv = c->srv;
    if (c->proto && c->proto->on_free)
        c->proto->on_free(c);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->_fd >= 0 && !c->bev)
        close(c->_fd);
    if (c->_ssl) {
        SSL_free(c->_ssl); /* and its BIO */
        evbuffer_free(c->_tin);
        evbuffer_free(c->_tout);
        event_free(c->_tls_ev);
    }
    if (c->_sniff_ev)
        event_free(c->_sniff_ev);
    event_free(c->timer);
    event_free(c->kick);
    TAILQ_REMOVE(&srv->conns, c, link);
    srv->nconns--;
    if (c->_kind >= 0)
        srv->stats.open[c->_kind]--;
    gw_log(GW_LOG_DEBUG, "conn_close", "conn=%llu", (unsigned long long)c->id);
    free(c);
    maybe_drained(srv);
}

/* ---- listening ------------------------------------------------------------- */

struct gw_server *gw_server_new(struct event_base *base, const struct gw_config *cfg,
                                gw_dispatch_fn dispatch, void *ctx, struct gw_error *err)
{
    struct gw_server *srv = xcalloc(1, sizeof *srv);
    srv->base = base;
    srv->cfg = cfg;
    srv->body_limit = cfg->max_body_bytes;
    srv->dispatch = dispatch;
    srv->ctx = ctx;
    TAILQ_INIT(&srv->conns);
    gw_req_set_body_memory_limit(cfg->max_body_memory);
    srv->accept_resume = evtimer_new(base, on_accept_resume, srv);
    if (!srv->accept_resume)
        abort();
    if (cfg->tls_cert) {
        srv->ssl_ctx = gw_tls_ctx_new(cfg->tls_cert, cfg->tls_key, cfg->tls_min_version, err);
        if (srv->ssl_ctx)
            gw_tls_log_capabilities();
        if (!srv->ssl_ctx) {
            event_free(srv->accept_resume);
            free(srv);
            return NULL;
        }
    }
    return srv;
}

static int listen_one(struct gw_server *srv, const char *addr, struct gw_error *err)
{
    char host[256], port[8];
    uint16_t p;
    if (gw_config_split_hostport(addr, host, sizeof host, &p) != 0)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "bad listen address %s", addr);
    snprintf(port, sizeof port, "%u", p);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "cannot resolve %s: %s", addr,
                            gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return gw_error_set(err, GW_ERR_INTERNAL_FAILURE, "socket: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        freeaddrinfo(res);
        close(fd);
        return gw_error_set(err, GW_ERR_INTERNAL_FAILURE, "cannot listen on %s: %s", addr,
                            strerror(e));
    }
    freeaddrinfo(res);

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char hbuf[INET6_ADDRSTRLEN], bound[INET6_ADDRSTRLEN + 16], portbuf[8];
    unsigned bport;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, hbuf, sizeof hbuf);
        bport = ntohs(s6->sin6_port);
        snprintf(bound, sizeof bound, "[%s]:%u", hbuf, bport);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, hbuf, sizeof hbuf);
        bport = ntohs(s4->sin_port);
        snprintf(bound, sizeof bound, "%s:%u", hbuf, bport);
    }
    snprintf(portbuf, sizeof portbuf, "%u", bport);

    struct evconnlistener *l =
        evconnlistener_new(srv->base, on_accept, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                           -1, fd);
    if (!l) {
        close(fd);
        return gw_error_set(err, GW_ERR_INTERNAL_FAILURE, "evconnlistener_new failed");
    }
    evconnlistener_set_error_cb(l, on_accept_error);
    srv->ports[srv->nlisteners] = (int)bport;
    srv->listeners[srv->nlisteners++] = l;
    gw_log_fields(GW_LOG_INFO, "listening", "addr", bound, "port", portbuf, "tls",
                  srv->ssl_ctx ? "available" : "off", NULL);
    bool loopback = ss.ss_family == AF_INET6
                        ? IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr)
                        : (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (!loopback && (!srv->cfg->auth || strcmp(srv->cfg->auth, "sigv4") != 0))
        gw_log(GW_LOG_WARN, "unauthenticated",
               "listening on %s without --auth sigv4: anyone who can reach this address can "
               "read, write and delete every stream; use --auth sigv4 --credentials FILE, or "
               "listen on loopback only",
               bound);
    return 0;
}

int gw_server_listen(struct gw_server *srv, struct gw_error *err)
{
    for (size_t i = 0; i < srv->cfg->nlisten; i++)
        if (listen_one(srv, srv->cfg->listen[i], err) != 0)
            return -1;
    return 0;
}

size_t gw_server_connections(const struct gw_server *srv) { return srv->nconns; }

int gw_server_reload_tls(struct gw_server *srv, struct gw_error *err)
{
    if (!srv->ssl_ctx)
        return 0;
    SSL_CTX *ctx =
        gw_tls_ctx_new(srv->cfg->tls_cert, srv->cfg->tls_key, srv->cfg->tls_min_version, err);
    if (!ctx)
        return -1;
    /* Live connections hold their own reference (SSL_new takes one), so
     * they finish on the old certificate; new ones get the new. */
    SSL_CTX_free(srv->ssl_ctx);
    srv->ssl_ctx = ctx;
    return 0;
}

int gw_server_port(const struct gw_server *srv, size_t i)
{
    return i < GW_MAX_LISTEN ? srv->ports[i] : 0;
}

/* ---- drain ----------------------------------------------------------------- */

static void finish_drain(struct gw_server *srv)
{
    void (*cb)(void *) = srv->on_drained;
    srv->on_drained = NULL;
    if (srv->drain_timer)
        event_del(srv->drain_timer);
    if (cb)
        cb(srv->drained_arg);
}

static void maybe_drained(struct gw_server *srv)
{
    if (srv->draining && srv->nconns == 0)
        finish_drain(srv);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct gw_server *srv = arg;
    gw_log(GW_LOG_WARN, "drain_timeout", "closing %zu connections still open", srv->nconns);
    struct gw_conn *c;
    TAILQ_FOREACH(c, &srv->conns, link)
        gw_conn_close(c);
    /* The frees run on the next pass; finish then or now if none are left. */
    if (srv->nconns == 0)
        finish_drain(srv);
}

static void on_drain_start(evutil_socket_t fd, short what, void *arg)
{
    maybe_drained(arg);
}

void gw_server_drain(struct gw_server *srv, void (*on_done)(void *arg), void *arg)
{
    if (srv->draining)
        return;
    srv->draining = true;
    srv->on_drained = on_done;
    srv->drained_arg = arg;
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_free(srv->listeners[i]);
    srv->nlisteners = 0;
    gw_log(GW_LOG_INFO, "draining", "connections=%zu timeout_ms=%llu", srv->nconns,
           (unsigned long long)srv->cfg->drain_timeout_ms);
    struct gw_conn *c, *next;
    for (c = TAILQ_FIRST(&srv->conns); c; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->lingering)
            continue; /* already closing */
        if (c->proto && c->proto->on_drain)
            c->proto->on_drain(c);
        else
            gw_conn_close(c);
    }
    srv->drain_timer = evtimer_new(srv->base, on_drain_timeout, srv);
    uint64_t ms = srv->cfg->drain_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(srv->drain_timer, &tv);
    static const struct timeval zero = {0, 0};
    event_base_once(srv->base, -1, EV_TIMEOUT, on_drain_start, srv, &zero);
}

void gw_server_free(struct gw_server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_free(srv->listeners[i]);
    srv->on_drained = NULL;
    struct gw_conn *c;
    while ((c = TAILQ_FIRST(&srv->conns)) != NULL) {
        c->closing = true;
        conn_free(c);
    }
    if (srv->drain_timer)
        event_free(srv->drain_timer);
    event_free(srv->accept_resume);
    SSL_CTX_free(srv->ssl_ctx);
    free(srv);
}
