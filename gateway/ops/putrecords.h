/* putrecords.h - decoding PutRecord and PutRecords requests into a batch.
 *
 * Two decoders, one verdict. gw_put_parse_tree() is the general path: it reads
 * the jansson tree gw_body_decode() built (JSON or CBOR) and applies every
 * model constraint with Kinesis's error types and messages.
 * gw_put_parse_fast() is the hot path for JSON bodies: a single pass over the
 * bytes that builds no tree. It accepts only what it can decode completely and
 * validly, and otherwise answers "fall back" (never an error), so the general
 * path alone decides every rejection and its message. When the fast path
 * accepts, the general path must produce the same batch from the same bytes;
 * tests/fuzz/fuzz_putrecords.c checks exactly that.
 *
 * Upstream: ops_records.c. Downstream: nothing (pure; memory from the
 * request's arena). */
#ifndef SLUICE_GW_PUTRECORDS_H
#define SLUICE_GW_PUTRECORDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "request.h"

#define GW_PUT_MAX_RECORDS 500
/* The model's limits, checked while decoding. A stream's own (smaller)
 * limits are checked once it is known: gw_put_check_sizes. */
#define GW_PUT_MAX_DATA (10 * 1024 * 1024)        /* one record's data, decoded */
#define GW_PUT_MAX_BATCH_BYTES (GW_PUT_MAX_DATA + 1024) /* data + keys: the largest record */
#define GW_PUT_DEFAULT_BATCH_BYTES (5 * 1024 * 1024)
#define GW_PUT_MAX_PARTITION_KEY 256           /* characters */

struct gw_put_entry {
    const uint8_t *data; /* decoded; borrowed from the request's arena */
    size_t data_len;
    const char *pk;      /* UTF-8, NUL-terminated */
    size_t pk_len;       /* bytes */
    const char *ehk;     /* ExplicitHashKey as given (decimal), or NULL */
};

struct gw_put_batch {
    const char *stream_name; /* NULL if absent */
    const char *stream_arn;  /* NULL if absent */
    struct gw_put_entry *entries;
    size_t n;
    const char *seq_for_ordering; /* PutRecord only; NULL if absent */
};

/* General path. "batch" selects PutRecords (Records array) over PutRecord
 * (Data, PartitionKey, ExplicitHashKey, SequenceNumberForOrdering at the top
 * level). On success fills "out" (pointers into "root" and the arena of
 * "req"; valid while both live) and returns 0; otherwise -1 with "err" set:
 * SerializationException (wrong types, bad base64), ValidationException (model
 * constraints), InvalidArgumentException (the 5 MiB batch limit). Neither
 * StreamName nor StreamARN being present is left to the caller. */
int gw_put_parse_tree(struct gw_req *req, json_t *root, bool batch, struct gw_put_batch *out,
                      struct gw_error *err);

/* Fast path over a JSON body. Returns 1 with "out" filled (pointers into the
 * arena of "req"), or 0 when the body is anything it does not fully decode
 * (then call gw_body_decode + gw_put_parse_tree). */
int gw_put_parse_fast(struct gw_req *req, const uint8_t *body, size_t len, bool batch,
                      struct gw_put_batch *out);

/* True when two batches are identical (fuzzing and tests). */
bool gw_put_batch_equal(const struct gw_put_batch *a, const struct gw_put_batch *b);

/* The stream's limits on a decoded batch: each record's data at most
 * "max_data" bytes (the stream's MaxRecordSizeInKiB; ValidationException as
 * the model's limit is reported), and data plus keys at most the larger of
 * 5 MiB and one largest record with its key (InvalidArgumentException). */
int gw_put_check_sizes(const struct gw_put_batch *b, bool batch, size_t max_data,
                       struct gw_error *err);

#endif
