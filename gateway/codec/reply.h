/* reply.h - the one reply writer: every answer and every error of both doors,
 * JSON or CBOR, through one encoder and one content-type rule.
 *
 * Upstream: operations (ops_*.c), json.c (tree-built answers), router.c and
 * request.c (errors). Downstream: the response API (gw_resp_send_buffer).
 *
 * A reply is written as a stream of calls, the shape of the document:
 *
 *     struct gw_reply w;
 *     gw_reply_init(&w, req);                 // format from the request
 *     gw_reply_object(&w, 2);                 // a map of exactly 2 members
 *     gw_reply_key(&w, "ShardId");
 *     gw_reply_string(&w, sid);
 *     gw_reply_key(&w, "Records");
 *     gw_reply_array(&w, n);                  // exactly n elements
 *     for (...) { ... }
 *     gw_reply_end(&w);                       // closes the array
 *     gw_reply_end(&w);                       // closes the map
 *     gw_reply_send(&w, 200);
 *
 * Counts are given up front so that CBOR maps and arrays are definite-length
 * (what gw_cbor_encode writes and the AWS SDKs expect). Both back ends track
 * them: a member or element past the count, an end before the count is
 * reached, a value where a key is due, or anything left open at send marks
 * the writer failed; gw_reply_send then answers 500 InternalFailure instead
 * of a malformed body (and logs it), so a wrong count shows in any test.
 *
 * The two back ends:
 *   JSON  compact text (no spaces); strings escaped as jansson and Jackson
 *         do ("\n", "\t", "\u001F"; '/' and non-ASCII as is); blobs as
 *         standard padded base64 strings; timestamps as epoch seconds with a
 *         3-digit millisecond fraction (1700000000.123, 1700000000.100).
 *   CBOR  definite-length maps and arrays, shortest integer heads, text
 *         strings, byte strings for blobs, tag 1 + integer epoch milliseconds
 *         for timestamps, doubles for other reals.
 * Bytes are written straight into an evbuffer (reserved space, no copy per
 * value, no allocation per value beyond the buffer's own growth).
 *
 * Strings must be valid UTF-8 (NUL bytes are allowed in the _n forms); the
 * writer does not check. gw_reply_error checks its message, which may echo
 * client input.
 *
 * The content-type rule (gw_reply_format_for) is the only one: every reply
 * and every error takes its Content-Type from it. */
#ifndef SLUICE_GW_REPLY_H
#define SLUICE_GW_REPLY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "request.h"

struct evbuffer;

/* ---- the content-type rule ---------------------------------------------------- */

enum gw_reply_format {
    GW_REPLY_CBOR,     /* application/x-amz-cbor-1.1: a CBOR request, either door */
    GW_REPLY_AMZ_JSON, /* application/x-amz-json-1.1: the Kinesis door (path "/" or
                        * an X-Amz-Target header) */
    GW_REPLY_JSON,     /* application/json: the REST door */
};

#define GW_CT_CBOR "application/x-amz-cbor-1.1"
#define GW_CT_AMZ_JSON "application/x-amz-json-1.1"
#define GW_CT_JSON "application/json"

/* True when Content-Type "ct" (may be NULL) is the media type "type": equal
 * ignoring case, followed by nothing, ';' (parameters) or a blank. */
bool gw_media_type_is(const char *ct, const char *type);

/* The rule, from the request's path (NULL: unknown), Content-Type and
 * X-Amz-Target headers (NULL: absent):
 *   Content-Type application/x-amz-cbor-1.1         -> GW_REPLY_CBOR
 *   otherwise path "/" or an X-Amz-Target header    -> GW_REPLY_AMZ_JSON
 *   otherwise                                       -> GW_REPLY_JSON */
enum gw_reply_format gw_reply_format_for(const char *path, const char *content_type,
                                         const char *target);
/* gw_reply_format_for() of "req". */
enum gw_reply_format gw_reply_format_of(const struct gw_req *req);
/* The Content-Type header value of "f". */
const char *gw_reply_content_type(enum gw_reply_format f);

/* ---- the writer ----------------------------------------------------------------- */

#define GW_REPLY_MAX_DEPTH 32 /* nested maps and arrays (gw_cbor_encode's default) */

/* One open map or array (private to reply.c). */
struct gw_reply_frame {
    size_t left;     /* members (maps) or elements (arrays) still due */
    bool map;
    bool first;      /* nothing written in it yet (JSON commas) */
    bool want_value; /* maps: a member name was written, its value is due */
};

/* Lives on the caller's stack; every field is private to reply.c. */
struct gw_reply {
    struct gw_req *req;  /* NULL for gw_reply_init_json */
    struct evbuffer *out;
    bool own_out;        /* "out" was created by gw_reply_init */
    bool cbor;
    enum gw_reply_format format;
    const char *failed;  /* why the document is malformed; NULL while fine */
    bool root_done;      /* a complete top-level value was written */
    char *base, *p, *end; /* reserved space of "out": [base, end), written up to p */
    size_t chunk;        /* next reservation size */
    uint8_t *flat;       /* gw_reply_init_flat: the caller's block (out is NULL) */
    size_t flat_cap;
    unsigned depth;
    struct gw_reply_frame st[GW_REPLY_MAX_DEPTH];
};

/* Starts the reply to "req" in the format gw_reply_format_of(req) picks. */
void gw_reply_init(struct gw_reply *w, struct gw_req *req);
/* Starts a JSON-only document appended to "out" (borrowed), for bodies that
 * are not replies of their own (event-stream payloads). Do not touch "out"
 * until gw_reply_finish. */
void gw_reply_init_json(struct gw_reply *w, struct evbuffer *out);
/* Ends a gw_reply_init_json document: returns 0, or -1 if it was malformed
 * (what was written stays in "out"). */
int gw_reply_finish(struct gw_reply *w);
/* Starts a JSON-only document written straight into "block" (malloc'd,
 * "cap" bytes, taken) from byte "off": for a payload that must sit at a
 * place in a larger message, with no copy. The block grows (realloc) if the
 * document outgrows it. */
void gw_reply_init_flat(struct gw_reply *w, uint8_t *block, size_t cap, size_t off);
/* Ends a gw_reply_init_flat document: returns the block (perhaps moved and
 * grown; the caller owns it again), sets "*end" to the offset just past the
 * document and "*cap" to the block's size. NULL (and the block freed) if it
 * was malformed. */
uint8_t *gw_reply_finish_flat(struct gw_reply *w, size_t *end, size_t *cap);

/* The bytes gw_reply_string_n writes for "s" in JSON, quotes included. */
size_t gw_reply_json_string_len(const char *s, size_t n);

/* Containers: exactly "n" members / elements follow, then gw_reply_end. */
void gw_reply_object(struct gw_reply *w, size_t n);
void gw_reply_array(struct gw_reply *w, size_t n);
void gw_reply_end(struct gw_reply *w);
/* A map member's name; its value comes next. */
void gw_reply_key_n(struct gw_reply *w, const char *key, size_t n);
/* Values. */
void gw_reply_string_n(struct gw_reply *w, const char *s, size_t n);
/* NUL-terminated forms (inline: a literal's length is a constant). */
static inline void gw_reply_key(struct gw_reply *w, const char *key)
{
    gw_reply_key_n(w, key, strlen(key));
}
static inline void gw_reply_string(struct gw_reply *w, const char *s)
{
    gw_reply_string_n(w, s, strlen(s));
}
void gw_reply_blob(struct gw_reply *w, const void *p, size_t n);
void gw_reply_int(struct gw_reply *w, int64_t v);
void gw_reply_bool(struct gw_reply *w, bool v);
void gw_reply_null(struct gw_reply *w);
/* A finite double: JSON as jansson prints it with 15 significant digits
 * ("0.5", "2.0", "1e20"); CBOR as a double. NaN and infinities fail. */
void gw_reply_real(struct gw_reply *w, double v);
/* A timestamp of epoch milliseconds, at most GW_CBOR_MAX_TIMESTAMP_MS either
 * way (beyond it the writer fails, as gw_cbor_encode did). */
void gw_reply_time_ms(struct gw_reply *w, int64_t ms);
/* Writes the jansson value "v" (borrowed), members in the tree's order, with
 * the Kinesis schema's kinds (gw_cbor_kinesis_kind): a "Data" string is a
 * blob (base64 text in the tree: written as is in JSON, decoded to a byte
 * string in CBOR), a number under a timestamp member (epoch seconds in the
 * tree) is gw_reply_time_ms of its milliseconds, rounded to nearest. */
void gw_reply_tree(struct gw_reply *w, const json_t *v);

/* False once the document is known to be malformed. */
bool gw_reply_ok(const struct gw_reply *w);

/* Sends the reply: "status", the format's Content-Type, the bytes written
 * (none: an empty body). A malformed document is answered 500
 * InternalFailure instead. Returns gw_resp_send_buffer's result. */
int gw_reply_send(struct gw_reply *w, int status);
/* Drops a gw_reply_init reply without sending it. */
void gw_reply_discard(struct gw_reply *w);

/* ---- errors ------------------------------------------------------------------------ */

/* Writes {"__type": <name>, "message": <message>} for "err"; a message that
 * is not valid UTF-8 (it may quote client bytes) is replaced by
 * "(message not printable)", the type is kept. */
void gw_reply_error_body(struct gw_reply *w, const struct gw_error *err);
/* Answers "err": its HTTP status, x-amzn-ErrorType, the error body in the
 * request's format. The one error reply of both doors. */
int gw_reply_error(struct gw_req *req, const struct gw_error *err);

#endif
