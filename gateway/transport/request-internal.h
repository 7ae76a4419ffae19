/* request-internal.h - struct gw_req and the seam between a request and the
 * protocol that carries it. Included by request.c, http1.c and h2.c only. */
#ifndef SLUICE_GW_REQUEST_INTERNAL_H
#define SLUICE_GW_REQUEST_INTERNAL_H

#include "mem.h"
#include "request.h"

/* What a protocol implements for its requests. Each is called on the loop
 * thread from the response API; none may free the request. */
struct gw_req_transport {
    void (*on_send)(struct gw_req *req);   /* one-shot reply ready */
    void (*on_stream)(struct gw_req *req); /* streamed reply started */
    void (*on_resume)(struct gw_req *req); /* a deferred pull may have data */
    /* Produce and write the connection's pending output now, every stream
     * of it, rather than on the next loop pass. NULL: nothing to do. */
    void (*on_flush)(struct gw_req *req);
};

struct gw_hdr {
    const char *name; /* lower-case */
    const char *value;
};

enum gw_resp_state { GW_RESP_NONE, GW_RESP_ONESHOT, GW_RESP_STREAM };

struct gw_req {
    struct gw_arena arena;
    const struct gw_req_transport *tp;
    void *tp_ctx; /* the protocol's per-request state (h1 conn, h2 stream) */
    enum gw_proto proto;
    bool tls;
    uint64_t conn_id;
    const bool *draining; /* the server's flag */

    const char *method, *path, *query;
    struct gw_hdr *hdrs;
    size_t nhdrs, caphdrs;
    size_t header_bytes; /* counted against max_header_bytes */

    uint8_t *body; /* malloc'd, grown as bytes arrive, up to the body limit */
    size_t body_len, body_cap;
    size_t body_hint; /* declared Content-Length (0: unknown); growth stops there */

    struct {
        const void *op;
        const char *params[4];
        size_t nparams;
    } route;

    struct {
        enum gw_resp_state state;
        int status;
        struct gw_hdr *hdrs;
        size_t nhdrs, caphdrs;
        struct evbuffer *body; /* one-shot body, or pulled stream bytes not yet sent */
        gw_pull_fn pull;
        void *pull_ctx;
        bool eof; /* the pull returned EOF: body holds the last bytes */
        bool shared; /* the pull adds shared pieces (gw_resp_shared_pieces) */
    } resp;

    /* True while a handler holds the request (from dispatch until it answers
     * one-shot or its stream ends); an abort then must tell it. */
    bool handler_owned;
    gw_abort_fn abort_fn;
    void *abort_ctx;

    char request_id[37];

    uint64_t dispatched_ns;
    gw_reply_observer_fn observer;
    void *observer_ctx;
    enum gw_errtype errtype; /* noted by the reply writer */
};

/* Returns a new request; the caller (a protocol) frees it with gw_req_free. */
struct gw_req *gw_req_new(enum gw_proto proto, bool tls, uint64_t conn_id,
                          const struct gw_req_transport *tp, void *tp_ctx, const bool *draining);
/* Frees "req" (NULL is fine). If a handler still holds it, its abort callback
 * runs first. */
void gw_req_free(struct gw_req *req);

void gw_req_set_line(struct gw_req *req, const char *method, size_t mlen, const char *target,
                     size_t tlen);
/* Adds a request header; the name is lower-cased. Returns -1 if the total
 * would pass "limit" bytes (the header is then not stored). */
int gw_req_add_header(struct gw_req *req, const char *name, size_t nlen, const char *value,
                      size_t vlen, size_t limit);
/* Appends body bytes. The buffer grows with the bytes received (doubling,
 * never past the declared length), never from a declared length alone: a
 * Content-Length costs nothing until its bytes arrive. Every request body's
 * buffer counts against one process-wide total (gw_req_set_body_memory_limit).
 * Returns 0; GW_BODY_TOO_LARGE if the body would pass "limit";
 * GW_BODY_NO_MEMORY if growing it would pass the total (nothing changes). */
enum { GW_BODY_TOO_LARGE = -1, GW_BODY_NO_MEMORY = -2 };
int gw_req_body_append(struct gw_req *req, const void *data, size_t len, size_t limit);
/* The same, when "avail" >= "len" bytes of this body (from "data" on) have
 * been received already (HTTP/1.1: in the connection's input): the buffer
 * may grow at once to hold them, up to the declared length. */
int gw_req_body_append_avail(struct gw_req *req, const void *data, size_t len, size_t limit,
                             size_t avail);
/* Records the declared Content-Length ("n" <= the body limit, checked by the
 * caller) so the buffer's last growth stops exactly there. Allocates nothing. */
void gw_req_body_expect(struct gw_req *req, size_t n);
/* Frees the body buffer (a request refused before dispatch: its bytes will
 * never be read, so they stop counting at once). */
void gw_req_body_drop(struct gw_req *req);

/* Hands a complete request to "dispatch"; marks it handler-owned. */
void gw_req_dispatch(struct gw_req *req, gw_dispatch_fn dispatch, void *ctx);

/* Streams: asks the handler for up to "max" more bytes into req->resp.body.
 * Returns the handler's verdict; GW_PULL_EOF/ABORT release the handler. */
enum gw_pull gw_req_pull(struct gw_req *req, size_t max);

/* Formats an RFC 1123 date for "now" into "buf" (at least 30 bytes). */
void gw_http_date(char *buf, size_t len);
/* Reason phrase for a status code. */
const char *gw_http_reason(int status);

#endif
