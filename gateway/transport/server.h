/* server.h - listeners, connection lifecycle and graceful drain.
 *
 * Upstream: main.c creates the server on its event_base. Downstream: each
 * accepted connection is sniffed (TLS ClientHello? HTTP/2 preface? otherwise
 * HTTP/1.1) and handed to tls.c, h2.c or http1.c, which produce requests for
 * the dispatcher given here (router.c in the real binary). */
#ifndef SLUICE_GW_SERVER_H
#define SLUICE_GW_SERVER_H

#include <stddef.h>

#include "config.h"
#include "error.h"
#include "request.h"

struct bufferevent;
struct event_base;
struct gw_server;

/* Returns a new server bound to nothing yet. "cfg" and "ctx" are borrowed for
 * the server's life. Loads TLS material when cfg has it; on failure returns
 * NULL with "err" set. */
struct gw_server *gw_server_new(struct event_base *base, const struct gw_config *cfg,
                                gw_dispatch_fn dispatch, void *ctx, struct gw_error *err);
/* Binds and listens on every cfg->listen address, logging one "listening"
 * line per socket with the bound address (port 0 resolved). 0 or -1. */
int gw_server_listen(struct gw_server *srv, struct gw_error *err);
/* Starts a graceful drain: stop accepting, let in-flight requests finish,
 * GOAWAY HTTP/2 sessions, and call "on_done" once every connection has closed
 * or cfg->drain_timeout_ms has passed (then the rest are closed). */
void gw_server_drain(struct gw_server *srv, void (*on_done)(void *arg), void *arg);
/* Closes everything at once; NULL is fine. */
void gw_server_free(struct gw_server *srv);
/* Admits request bodies of up to "bytes" (never below --max-body-bytes):
 * streams whose records may exceed 1 MiB (UpdateMaxRecordSize) need more.
 * Accepts NULL. */
void gw_server_set_body_limit(struct gw_server *srv, size_t bytes);
/* The port listener "i" (in cfg->listen order) is bound to, 0 if none. */
int gw_server_port(const struct gw_server *srv, size_t i);
/* Reads --tls-cert and --tls-key again (SIGHUP). New connections use them;
 * live ones, subscriptions included, keep the certificate they began with.
 * On failure (-1, "err" set) the certificate in use stays. 0 without TLS. */
int gw_server_reload_tls(struct gw_server *srv, struct gw_error *err);

/* Number of open connections (for /healthz and tests). */
size_t gw_server_connections(const struct gw_server *srv);

/* Transport counters for metrics. Connections are counted by the protocol
 * they speak once it is known (before that, only in "accepted"). */
enum gw_conn_kind { GW_CONN_HTTP1, GW_CONN_HTTP1_TLS, GW_CONN_H2C, GW_CONN_H2, GW_CONN_KINDS };
struct gw_server_stats {
    uint64_t open[GW_CONN_KINDS];   /* connections open now, by protocol */
    uint64_t opened[GW_CONN_KINDS]; /* since start, by protocol */
    uint64_t accepted;              /* connections accepted (any protocol) */
    uint64_t refused;               /* refused: connection limit or draining */
    uint64_t h2_streams;            /* HTTP/2 streams open now */
    uint64_t h2_streams_total;      /* since start */
    uint64_t h2_streams_refused;    /* answered by the transport itself (limits) */
    uint64_t bytes_in, bytes_out;   /* HTTP bytes (after TLS) read and queued/written */
};
/* Copies the counters (srv NULL: zeroes). */
void gw_server_stats(const struct gw_server *srv, struct gw_server_stats *out);

/* Test seam: serves an already-connected plaintext bufferevent (typically
 * one end of a bufferevent_pair, so protocol tests need no sockets) as if
 * it had just been accepted: the same limits, sniffing (HTTP/2 preface or
 * HTTP/1.1) and http1.c/h2.c code. TLS is not sniffed (there is no fd to
 * peek at). On success the server owns "bev" (freed with the connection)
 * and returns 0; refused (draining, connection limit) returns -1 and
 * leaves "bev" to the caller. "peer" (may be NULL) names it in logs. */
int gw_server_adopt(struct gw_server *srv, struct bufferevent *bev, const char *peer);

#endif
