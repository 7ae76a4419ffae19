/* request.h - one request model above HTTP/1.1, h2c and h2.
 *
 * Upstream: http1.c and h2.c build a struct gw_req and hand it to the
 * dispatcher (router.c). Downstream: operations read the request through the
 * accessors below and answer through the response API. Operations never see
 * nghttp2 or the HTTP/1.1 parser; protocol code never sees operations.
 *
 * Ownership. The protocol layer owns the request. A handler *borrows* it from
 * dispatch until it answers:
 *   - gw_resp_send(): one-shot reply. The handler must not touch the request
 *     afterwards. It may be called later, from another callback (a PutRecords
 *     reply parked until its records are durable); until then the handler
 *     keeps the request and must register an abort callback.
 *   - gw_resp_stream(): long-lived reply pulled by the protocol layer as the
 *     peer has room (HTTP/2 flow control, socket back-pressure). The handler
 *     keeps the request until its pull returns GW_PULL_EOF or its abort
 *     callback runs.
 * The abort callback runs when the peer resets the stream, the connection
 * closes, or the server stops; the request is freed right after it returns. */
#ifndef SLUICE_GW_REQUEST_H
#define SLUICE_GW_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct gw_req;
struct evbuffer;

enum gw_proto { GW_PROTO_HTTP1 = 1, GW_PROTO_H2 = 2 };

/* ---- reading the request --------------------------------------------------- */

/* All strings are NUL-terminated and borrowed from the request's arena. */
const char *gw_req_method(const struct gw_req *req);
const char *gw_req_path(const struct gw_req *req);   /* without the query, not decoded */
const char *gw_req_query(const struct gw_req *req);  /* after '?', "" if none */
/* Case-insensitive lookup of the first header "name"; NULL if absent. */
const char *gw_req_header(const struct gw_req *req, const char *name);
/* The whole body; borrowed, valid while the request lives. Never NULL. */
const uint8_t *gw_req_body(const struct gw_req *req, size_t *len);
enum gw_proto gw_req_proto(const struct gw_req *req);
bool gw_req_tls(const struct gw_req *req);
uint64_t gw_req_conn_id(const struct gw_req *req);
/* Decodes query parameter "name" (percent- and '+'-decoding) into the
 * request's arena; NULL if absent. */
const char *gw_req_query_param(struct gw_req *req, const char *name);
/* Allocates "n" bytes that live as long as the request. */
void *gw_req_alloc(struct gw_req *req, size_t n);

/* Per-request slot for the dispatcher (router.c): which operation, path
 * parameters. Opaque to the protocol layer. */
void gw_req_set_route(struct gw_req *req, const void *op, const char *const *params, size_t n);
const void *gw_req_op(const struct gw_req *req);
const char *gw_req_param(const struct gw_req *req, size_t i);

/* ---- answering ------------------------------------------------------------- */

/* Adds a response header (copied). Call before gw_resp_send/gw_resp_stream.
 * Names are sent lower-case on HTTP/2. Content-Length, Date and
 * x-amzn-RequestId are added by the protocol layer. */
void gw_resp_header(struct gw_req *req, const char *name, const char *value);

/* One-shot reply: "body" is copied. Returns 0, or -1 if the request was
 * already answered. */
int gw_resp_send(struct gw_req *req, int status, const void *body, size_t len);

/* One-shot reply whose body is moved out of "body" (left empty); no copy. */
int gw_resp_send_buffer(struct gw_req *req, int status, struct evbuffer *body);

/* Answers "err" as {"__type","message"} with its HTTP status and
 * x-amzn-ErrorType, in the format and Content-Type of the one content-type
 * rule (reply.h; gw_reply_error): CBOR for CBOR requests. */
int gw_resp_error(struct gw_req *req, const struct gw_error *err);

enum gw_pull {
    GW_PULL_MORE = 0,  /* data may have been added; call again when there is room */
    GW_PULL_DEFER = 1, /* nothing now; the handler calls gw_resp_resume() later */
    GW_PULL_EOF = 2,   /* data added (if any) is the last; the reply ends */
    GW_PULL_ABORT = 3, /* end the reply abnormally (reset the stream / close) */
};

/* Pull callback: append at most "max" bytes to "out". Called on the loop
 * thread only when the peer can take more. */
typedef enum gw_pull (*gw_pull_fn)(struct gw_req *req, void *ctx, struct evbuffer *out,
                                   size_t max);
/* Abort callback: the request is going away before the handler finished. */
typedef void (*gw_abort_fn)(struct gw_req *req, void *ctx);

/* Starts a streamed reply with "status" and the headers set so far; the body
 * is produced by "pull" (HTTP/1.1: chunked; HTTP/2: DATA frames). */
int gw_resp_stream(struct gw_req *req, int status, gw_pull_fn pull, void *ctx);
/* Says the stream's pull adds large shared pieces to the body by reference
 * (evbuffer_add_reference, one HTTP/2 DATA frame's payload each): HTTP/2
 * then sends those chains from where they are instead of copying them. */
void gw_resp_shared_pieces(struct gw_req *req);
/* Tells the protocol layer a deferred pull has data (or EOF) now. Cheap and
 * safe to call repeatedly. */
void gw_resp_resume(struct gw_req *req);
/* Pulls and writes the pending output of "req"'s connection (all its
 * requests) now instead of on the next loop pass: the fan-out engine pushes
 * with it before producers are acknowledged (loop.h). May end streams of
 * that connection and free their requests, "req" included; never frees the
 * connection, and touches no other connection. Call it outside protocol
 * callbacks only (from the loop's own events). */
void gw_resp_flush(struct gw_req *req);
/* Registers "fn" to run if the request dies before the handler is done with
 * it (see the top of this file). One callback per request; NULL clears it. */
void gw_req_on_abort(struct gw_req *req, gw_abort_fn fn, void *ctx);
/* Observer of the answer (metrics): called once, when the reply starts (a
 * one-shot send or a stream's start), with its status and the Kinesis error
 * type noted with gw_req_note_error() (GW_ERR_NONE if none). It must not
 * touch the response. One observer per request; NULL clears it. */
typedef void (*gw_reply_observer_fn)(struct gw_req *req, void *ctx, int status,
                                     enum gw_errtype type);
void gw_req_observe(struct gw_req *req, gw_reply_observer_fn fn, void *ctx);
/* Notes the error type the reply carries (reply.c, with x-amzn-ErrorType). */
void gw_req_note_error(struct gw_req *req, enum gw_errtype type);
/* CLOCK_MONOTONIC nanoseconds when the request was handed to the dispatcher. */
uint64_t gw_req_dispatched_ns(const struct gw_req *req);
/* True once the server is draining (SIGTERM): long-lived replies should end. */
bool gw_req_draining(const struct gw_req *req);

/* The process-wide cap on request-body buffers (--max-body-memory), set by
 * the server at startup; no cap until set. Past it a request is refused with
 * 503 ServiceUnavailableException (see gw_req_body_append). */
void gw_req_set_body_memory_limit(size_t bytes);

/* The dispatcher: called once per complete request. */
typedef void (*gw_dispatch_fn)(void *ctx, struct gw_req *req);

#endif
