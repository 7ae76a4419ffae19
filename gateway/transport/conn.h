/* conn.h - one accepted connection, shared by server.c, http1.c and h2.c.
 *
 * server.c owns the connection: it accepts, sniffs the protocol, owns the
 * bufferevent (plain or TLS) and frees everything. The protocol attached to
 * it (http1 or h2) gets the callbacks below and never frees the connection
 * itself: it calls gw_conn_close() and the free happens on a later loop pass,
 * so no callback ever runs on a freed connection. */
#ifndef SLUICE_GW_CONN_H
#define SLUICE_GW_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "config.h"
#include "request.h"

struct bufferevent;
struct event;
struct gw_server;
struct gw_conn;

struct gw_conn_proto {
    const char *name;
    /* Input is waiting in the bufferevent (and output has room). */
    void (*on_read)(struct gw_conn *c);
    /* Output drained below the low watermark: produce more, resume reading. */
    void (*on_write)(struct gw_conn *c);
    /* The connection's timer fired (header, idle or drain deadline). */
    void (*on_timer)(struct gw_conn *c);
    /* A gathered-work pass requested with gw_conn_kick(). */
    void (*on_kick)(struct gw_conn *c);
    /* The server began draining. */
    void (*on_drain)(struct gw_conn *c);
    /* The connection is being freed: release requests (aborting them). */
    void (*on_free)(struct gw_conn *c);
};

struct gw_conn {
    struct gw_server *srv;
    const struct gw_config *cfg;
    struct bufferevent *bev;
    uint64_t id;
    bool tls;
    bool closing;        /* gw_conn_close() was called */
    bool close_on_flush; /* close once output is written */
    bool lingering;      /* write side shut; discarding input until EOF */
    bool reading;        /* EV_READ enabled */
    const struct gw_conn_proto *proto;
    void *proto_state;
    struct event *timer;
    struct event *kick;
    char peer[64];
    TAILQ_ENTRY(gw_conn) link;
    /* Private to server.c. */
    int _kind; /* enum gw_conn_kind once attached, else -1 */
    struct event *_sniff_ev;
    int _fd;
    /* TLS (server.c's own record layer over the plain socket bufferevent,
     * whose buffers then carry ciphertext): the session, the clear text
     * decrypted and not yet consumed, the records made and not yet sent, and
     * the event that decrypts more once the protocol has consumed some. */
    struct ssl_st *_ssl;
    struct evbuffer *_tin;
    struct evbuffer *_tout;
    struct event *_tls_ev;
    bool _tls_ready; /* handshake done */
    bool _tls_eof;   /* close_notify received */
};

/* The server's dispatcher and its draining flag, for new requests. */
/* The largest request body the server admits now (gw_server_set_body_limit). */
size_t gw_conn_body_limit(const struct gw_conn *c);
gw_dispatch_fn gw_conn_dispatcher(struct gw_conn *c, void **ctx);
const bool *gw_conn_draining_flag(struct gw_conn *c);
bool gw_conn_draining(struct gw_conn *c);

/* Schedules the free of "c" (idempotent). Output not yet written is dropped. */
void gw_conn_close(struct gw_conn *c);
/* Closes "c" once its output buffer has been written. */
void gw_conn_close_after_flush(struct gw_conn *c);
/* Arms the connection timer "ms" from now; 0 disarms it. */
void gw_conn_timer(struct gw_conn *c, uint64_t ms);
/* Requests one on_kick pass on the next loop iteration (coalesced). */
void gw_conn_kick(struct gw_conn *c);
/* The clear-text bytes received and not yet consumed (the protocol drains
 * what it parses). */
struct evbuffer *gw_conn_input(struct gw_conn *c);
/* Bytes waiting in the output buffer; and whether that is over the limit. */
size_t gw_conn_output_len(struct gw_conn *c);
bool gw_conn_output_full(struct gw_conn *c);
/* Sends "len" bytes at "p": written to the socket at once when no output is
 * queued, the rest copied to the output buffer. On TLS the bytes are sealed
 * into records first (16 KiB records for bulk, one small record for a small
 * reply), and the records are written through the same way. */
void gw_conn_send_bytes(struct gw_conn *c, const uint8_t *p, size_t len);
/* The same for the bytes in "buf" (emptied). */
struct evbuffer;
void gw_conn_send_evbuffer(struct gw_conn *c, struct evbuffer *buf);
/* Metrics: an HTTP/2 stream opened (+1) or closed (-1); one answered by
 * the transport's own limits. */
void gw_conn_count_stream(struct gw_conn *c, int delta);
void gw_conn_count_refused_stream(struct gw_conn *c);

/* Stops/resumes reading the socket (back-pressure). */
void gw_conn_pause_read(struct gw_conn *c);
void gw_conn_resume_read(struct gw_conn *c);

/* Protocol entry points, called by server.c once the protocol is known. Any
 * bytes already read are in the bufferevent's input. */
void gw_http1_attach(struct gw_conn *c);
void gw_h2_attach(struct gw_conn *c);

#endif
