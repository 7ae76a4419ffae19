/* json.h - the Kinesis door's request and response bodies as jansson trees,
 * and typed member getters that validate as Kinesis does.
 *
 * Upstream: operations (ops_*.c) call gw_body_decode() on their request and
 * read members with gw_v_*(); downstream they answer with gw_body_reply() or
 * gw_body_error(), which write through the one reply writer (reply.h). The
 * request's encoding (JSON 1.1 or CBOR 1.1) is read here, at the edge, from
 * its Content-Type: operations see one json_t tree whichever arrived (blobs
 * as base64 strings, timestamps as epoch seconds). Answers that are too big
 * for a tree (records) are written with the reply writer directly.
 *
 * Validation follows the service's two error kinds:
 *   - a member of the wrong JSON type, malformed JSON/CBOR, bad base64:
 *     SerializationException, at once;
 *   - a value outside a model constraint (length, range, pattern, enum, a
 *     missing required member): collected, then reported together as one
 *     ValidationException "N validation error(s) detected: Value '...' at
 *     'member' failed to satisfy constraint: Member must ...".
 * Getters return -1 only for the first kind (err is set); constraint
 * violations return 0 and are recorded in the struct gw_valid. */
#ifndef SLUICE_GW_JSON_H
#define SLUICE_GW_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h" /* base64 for blobs; callers of json.h have long used it from here */
#include "error.h"
#include "request.h"

/* ---- bodies at the edge ------------------------------------------------------ */

/* True when the request is CBOR (Content-Type application/x-amz-cbor-1.1,
 * parameters allowed): the content-type rule of reply.h. */
bool gw_body_is_cbor(const struct gw_req *req);

/* Decodes the request body into a new object tree "*out" (json_decref it).
 * An empty body is SerializationException, as for Kinesis. */
int gw_body_decode(struct gw_req *req, json_t **out, struct gw_error *err);

/* Answers 200 with "out" (borrowed; NULL = empty body) written through the
 * reply writer (gw_reply_tree): CBOR for CBOR requests, JSON otherwise, the
 * Content-Type of reply.h's rule. */
void gw_body_reply(struct gw_req *req, const json_t *out);

/* Answers "err": gw_reply_error (CBOR errors for CBOR requests). */
void gw_body_error(struct gw_req *req, const struct gw_error *err);

/* Epoch milliseconds as the wire's timestamp (epoch seconds, millisecond
 * fraction). Returns new. */
json_t *gw_json_time(int64_t ms);

/* ---- validation ----------------------------------------------------------------- */

struct gw_valid {
    struct gw_error *err;
    int count;       /* constraint violations seen */
    size_t len;
    char msg[4000];  /* the first ten, joined with "; " (bounded by gw_error) */
};

enum { GW_V_REQUIRED = 1 };

void gw_valid_init(struct gw_valid *v, struct gw_error *err);
/* Records one violation: value text "value" (NULL prints null), member path
 * "path", constraint "Member must ...". */
void gw_valid_add(struct gw_valid *v, const char *value, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Returns 0 if nothing was recorded, else sets the ValidationException and
 * returns -1. */
int gw_valid_done(struct gw_valid *v);

/* Pattern checkers for the model's string shapes. */
bool gw_match_name(const char *s);        /* [a-zA-Z0-9_.-]+ */
bool gw_match_hashkey(const char *s);     /* 0|([1-9]\d{0,38}) */
bool gw_match_seqnum(const char *s);      /* 0|([1-9]\d{0,128}) */
bool gw_match_stream_arn(const char *s);  /* arn:aws.*:kinesis:.*:\d{12}:stream/.+ */
bool gw_match_consumer_arn(const char *s);

/* A string member "key" of "obj" (JSON name, e.g. "StreamName"), reported at
 * "path" (e.g. "streamName"). Length counts characters. "pattern" (display
 * text) and "match" may be NULL. "*out" is NULL when absent or invalid; it
 * borrows from "obj". */
int gw_v_str(struct gw_valid *v, json_t *obj, const char *key, const char *path, unsigned flags,
             size_t min, size_t max, const char *pattern, bool (*match)(const char *),
             const char **out);
/* An integer member in [min, max]; "*present" (may be NULL) says whether it
 * was given and valid. */
int gw_v_int(struct gw_valid *v, json_t *obj, const char *key, const char *path, unsigned flags,
             int64_t min, int64_t max, int64_t *out, bool *present);
int gw_v_bool(struct gw_valid *v, json_t *obj, const char *key, const char *path, bool *out,
              bool *present);
/* A timestamp: epoch seconds (integer or fraction) or an ISO-8601 string. */
int gw_v_time(struct gw_valid *v, json_t *obj, const char *key, const char *path,
              unsigned flags, int64_t *ms, bool *present);
/* One of "values" (NULL-terminated); "*out" is its index or -1. */
int gw_v_enum(struct gw_valid *v, json_t *obj, const char *key, const char *path,
              unsigned flags, const char *const *values, int *out);
/* A blob: strict standard base64, decoded into "req"'s arena; at most "max"
 * decoded bytes. */
int gw_v_blob(struct gw_valid *v, struct gw_req *req, json_t *obj, const char *key,
              const char *path, unsigned flags, size_t max, const uint8_t **data, size_t *len,
              bool *present);
/* An object or array member; "*out" borrowed, NULL if absent. */
int gw_v_object(struct gw_valid *v, json_t *obj, const char *key, const char *path,
                unsigned flags, json_t **out);
int gw_v_array(struct gw_valid *v, json_t *obj, const char *key, const char *path,
               unsigned flags, size_t min, size_t max, json_t **out);

#endif
