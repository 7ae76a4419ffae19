/* cbor.h - application/x-amz-cbor-1.1 bodies <-> jansson trees (pure).
 *
 * The Java SDKs (and so the KCL) talk CBOR to Kinesis by default
 * (docs/protocol.md §1.1). The Kinesis door converts a CBOR request body
 * into the same json_t tree the JSON door would have produced and runs the
 * operation, whose reply reply.c writes as CBOR. Operations never see CBOR.
 * gw_cbor_encode (tree -> CBOR) serves tests and fuzz targets that build
 * CBOR requests. Parsing and encoding of CBOR items is done by
 * libcbor (streaming decoder, encoding helpers); this module maps the items
 * and enforces limits.
 *
 * Representation (decode; encode is the inverse):
 *
 *   CBOR                         json_t
 *   map (text keys only)         object       duplicate keys rejected
 *   array                        array
 *   text string                  string       must be valid UTF-8; no U+0000
 *                                             unless GW_CBOR_ALLOW_NUL
 *   byte string                  string       standard, padded base64 (the JSON
 *                                             door's form of blobs)
 *   unsigned / negative int      integer      must fit int64
 *   half/single/double float     real         NaN and infinities rejected
 *   true, false, null            true, false, null
 *   tag 1 + number (epoch ms)    real         epoch SECONDS (ms / 1000), the
 *                                             JSON door's timestamp form
 *   untagged number in a member  real         seconds, likewise, when the kind
 *   whose kind is TIMESTAMP                   callback names it a timestamp
 *
 * AWS's CBOR puts epoch MILLISECONDS under tag 1 (the Java SDK writes tag 1 +
 * an integer of ms), unlike RFC 8949's seconds; a float under tag 1 is taken
 * as ms too. Tag 55799 (self-described CBOR) is ignored; any other tag is
 * rejected, as are undefined and unassigned simple values. Indefinite-length
 * strings, arrays and maps are accepted. A text string where a blob is
 * expected is passed through unchanged: like Jackson, we read it as base64
 * text, and the operation decodes it strictly as it does for JSON.
 *
 * All input sizes are bounded by struct gw_cbor_opts before anything is
 * allocated; errors come back as one line of text (the gateway turns it into
 * a SerializationException).
 */
#ifndef GW_CBOR_H
#define GW_CBOR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults used for zero fields of struct gw_cbor_opts. */
#define GW_CBOR_DEFAULT_MAX_DEPTH 32
#define GW_CBOR_DEFAULT_MAX_ITEMS (1u << 18)
#define GW_CBOR_DEFAULT_MAX_SIZE (16u * 1024 * 1024)
/* Hard cap on max_depth (the decoder's stack is allocated from it). */
#define GW_CBOR_MAX_DEPTH_LIMIT 1024

/* Largest timestamp magnitude, in epoch milliseconds, either way (about
 * 35,000 years): within it ms -> seconds (double) -> ms is exact. */
#define GW_CBOR_MAX_TIMESTAMP_MS (INT64_C(1) << 50)

/* Accept U+0000 inside text strings (jansson's JSON_ALLOW_NUL). */
#define GW_CBOR_ALLOW_NUL 0x1u

/* How a member's value is represented; see gw_cbor_kind_fn. */
enum gw_cbor_kind {
    GW_CBOR_PLAIN = 0,
    GW_CBOR_BLOB,      /* JSON base64 string <-> CBOR byte string */
    GW_CBOR_TIMESTAMP, /* JSON epoch seconds <-> CBOR tag 1 + integer epoch ms */
};

/* Says which kind the member called "key" ("key_len" bytes, not necessarily
 * NUL-terminated; borrowed for the call) has, wherever it appears. The kind
 * applies to the member's value and, if that is an array, to its elements.
 * "ctx" is gw_cbor_opts.kind_ctx. */
typedef enum gw_cbor_kind (*gw_cbor_kind_fn)(void *ctx, const char *key, size_t key_len);

/* Options for both directions; a NULL pointer or zero fields mean defaults. */
struct gw_cbor_opts {
    size_t max_depth; /* nesting of arrays and maps; root map is depth 1 */
    size_t max_items; /* data items in total, keys and string chunks included */
    size_t max_size;  /* bytes of CBOR input (decode) or output (encode) */
    unsigned flags;   /* GW_CBOR_ALLOW_NUL */
    gw_cbor_kind_fn kind; /* NULL: every member is GW_CBOR_PLAIN */
    void *kind_ctx;
};

/* The Kinesis schema: "Data" is a blob; "ApproximateArrivalTimestamp",
 * "StreamCreationTimestamp", "ConsumerCreationTimestamp" and "Timestamp" are
 * timestamps (every blob and timestamp member of kinesis-2013-12-02). */
enum gw_cbor_kind gw_cbor_kinesis_kind(void *ctx, const char *key, size_t key_len);

/* Decodes the CBOR body "buf" ("len" bytes, borrowed), which must be exactly
 * one map, into "*out": returns new (json_decref it). Returns 0, or -1 with
 * "*out" NULL and a reason in "errbuf": malformed or truncated CBOR, trailing
 * bytes, a limit exceeded, a root that is not a map, a non-text or duplicate
 * map key, invalid UTF-8, an integer outside int64, a non-finite float, an
 * unsupported tag or simple value, a timestamp beyond GW_CBOR_MAX_TIMESTAMP_MS.
 * "opts" may be NULL. */
int gw_cbor_decode(const uint8_t *buf, size_t len, const struct gw_cbor_opts *opts,
                   json_t **out, char *errbuf, size_t errlen);

/* Encodes "root" (borrowed; usually an object, any json_t is accepted) as
 * CBOR into "*out" ("*out_len" bytes): returns new (free() it). Members of
 * kind GW_CBOR_BLOB that are strings are base64-decoded into byte strings;
 * members of kind GW_CBOR_TIMESTAMP that are numbers (epoch seconds) become
 * tag 1 + integer milliseconds (rounded to nearest). Maps and arrays are
 * definite-length, integers use their shortest form, reals are doubles.
 * Returns 0, or -1 with "*out" NULL and a reason: invalid base64 in a blob
 * member, a timestamp beyond GW_CBOR_MAX_TIMESTAMP_MS, nesting deeper than
 * max_depth, output over max_size. "opts" may be NULL. */
int gw_cbor_encode(const json_t *root, const struct gw_cbor_opts *opts, uint8_t **out,
                   size_t *out_len, char *errbuf, size_t errlen);

#endif /* GW_CBOR_H */
