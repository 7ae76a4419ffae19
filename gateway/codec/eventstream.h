/* eventstream.h - application/vnd.amazon.eventstream framing (pure codec).
 *
 * The body of a SubscribeToShard response is a sequence of event-stream
 * messages (docs/protocol.md §2). subscribe.c builds each message with the
 * encoder below straight into a buffer of the message's size; the test
 * client and the fuzz target use the decoder. Nothing here touches
 * sockets, files or clocks, allocates memory, or keeps state between calls.
 *
 * Encoding is reserve/fill/commit:
 *
 *     struct gw_es_headers hs;
 *     gw_es_headers_event(&hs, GW_ES_EVENT_SUBSCRIBE);
 *     size_t total, off;
 *     if (gw_es_message_size(hs.h, hs.n, json_len, &total, err, sizeof err) != 0) ...
 *     uint8_t *dst = <reserve total bytes>;
 *     gw_es_encode_head(hs.h, hs.n, json_len, dst, total, &off, err, sizeof err);
 *     <write json_len payload bytes at dst + off>
 *     gw_es_encode_finish(dst, total);        (message CRC over all of it)
 *     <commit total bytes>
 *
 * or gw_es_encode() when the payload already sits in memory (one memcpy).
 * The encoding of a message is canonical, so decode-then-encode reproduces
 * the input bytes exactly.
 */
#ifndef GW_EVENTSTREAM_H
#define GW_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Size of the prelude (total length, headers length, prelude CRC). */
#define GW_ES_PRELUDE_LEN 12
/* Smallest message: prelude + message CRC, no headers, no payload. */
#define GW_ES_MIN_MESSAGE_LEN 16
/* Caps from the AWS C event-stream runtime; both directions enforce them. */
#define GW_ES_MAX_MESSAGE_LEN (16u * 1024 * 1024)
#define GW_ES_MAX_HEADERS_LEN (128u * 1024)
/* A header name is 1..255 bytes (length is one byte; empty names rejected). */
#define GW_ES_MAX_HEADER_NAME_LEN 255
/* Byte-array and string values carry a uint16 length. */
#define GW_ES_MAX_HEADER_VALUE_LEN 65535

/* gw_es_decode() result when more input is needed (not an error). */
#define GW_ES_INCOMPLETE (-2)

/* Header value types, numbered as on the wire (§5.2). */
enum gw_es_type {
    GW_ES_TYPE_BOOL_TRUE = 0,
    GW_ES_TYPE_BOOL_FALSE = 1,
    GW_ES_TYPE_BYTE = 2,      /* int8 */
    GW_ES_TYPE_SHORT = 3,     /* int16 */
    GW_ES_TYPE_INT = 4,       /* int32 */
    GW_ES_TYPE_LONG = 5,      /* int64 */
    GW_ES_TYPE_BYTES = 6,     /* uint16 length + bytes */
    GW_ES_TYPE_STRING = 7,    /* uint16 length + UTF-8 (not validated) */
    GW_ES_TYPE_TIMESTAMP = 8, /* int64 milliseconds since the epoch */
    GW_ES_TYPE_UUID = 9,      /* 16 raw bytes */
};

/* One header. Every pointer is borrowed: on encode from the caller for the
 * duration of the call, on decode from the decoded input buffer (names and
 * strings are not NUL-terminated then). The boolean's value is its type. */
struct gw_es_header {
    const char *name;
    size_t name_len;
    enum gw_es_type type;
    union {
        int64_t i; /* BYTE, SHORT, INT, LONG, TIMESTAMP */
        struct {
            const uint8_t *p;
            size_t len;
        } bytes;          /* BYTES, STRING */
        uint8_t uuid[16]; /* UUID */
    } v;
};

/* A decoded message: views into the input buffer passed to gw_es_decode(),
 * valid as long as that buffer is. The header block has been validated, so
 * iterating it with gw_es_header_next() cannot fail. */
struct gw_es_message {
    uint32_t total_len;
    uint32_t headers_len;
    const uint8_t *headers; /* raw header block, headers_len bytes */
    size_t n_headers;
    const uint8_t *payload;
    size_t payload_len;
};

/* Cursor over a decoded header block. */
struct gw_es_header_iter {
    const uint8_t *_p;
    const uint8_t *_end;
};

/* ---- encoding ---------------------------------------------------------- */

/* Exact encoded size of a message with "headers" (n_headers of them) and a
 * payload of "payload_len" bytes, into "*size". Returns 0, or -1 with a
 * reason in "errbuf" when a header is malformed (empty or over-long name,
 * unknown type, integer out of its type's range, value over 65535 bytes) or a
 * cap (GW_ES_MAX_HEADERS_LEN, GW_ES_MAX_MESSAGE_LEN) is exceeded. Borrows
 * everything. */
int gw_es_message_size(const struct gw_es_header *headers, size_t n_headers,
                       size_t payload_len, size_t *size, char *errbuf, size_t errlen);

/* Writes the prelude and the header block of a message whose payload will be
 * "payload_len" bytes into "dst" ("dstlen" bytes, at least the size reported
 * by gw_es_message_size()), and sets "*payload_off" to where the payload
 * goes. The caller then writes the payload and calls gw_es_encode_finish().
 * Returns 0, or -1 with a reason (as gw_es_message_size(), or "dstlen" too
 * small) and nothing useful in "dst". Borrows everything. */
int gw_es_encode_head(const struct gw_es_header *headers, size_t n_headers,
                      size_t payload_len, uint8_t *dst, size_t dstlen,
                      size_t *payload_off, char *errbuf, size_t errlen);

/* Writes the message CRC into the last 4 bytes of the "size"-byte message at
 * "dst" whose head and payload are already in place. "size" must be the
 * value gw_es_message_size() reported. */
void gw_es_encode_finish(uint8_t *dst, size_t size);

/* Encodes a whole message into "dst" ("dstlen" bytes) and sets "*written".
 * "payload" may be NULL when "payload_len" is 0. Returns 0, or -1 with a
 * reason as gw_es_encode_head(). Borrows everything. */
int gw_es_encode(const struct gw_es_header *headers, size_t n_headers,
                 const uint8_t *payload, size_t payload_len, uint8_t *dst,
                 size_t dstlen, size_t *written, char *errbuf, size_t errlen);

/* Header constructors; they borrow "name" and "value" (NUL-terminated). */
struct gw_es_header gw_es_header_string(const char *name, const char *value);
struct gw_es_header gw_es_header_int(const char *name, enum gw_es_type type, int64_t value);

/* ---- the messages Kinesis sends (§5.3) ---------------------------------- */

#define GW_ES_EVENT_INITIAL_RESPONSE "initial-response"
#define GW_ES_EVENT_SUBSCRIBE "SubscribeToShardEvent"
/* Bytes a SubscribeToShardEvent message adds around its JSON payload:
 * prelude 12 + headers 91 + message CRC 4. */
#define GW_ES_SUBSCRIBE_EVENT_OVERHEAD 107
/* The whole initial-response message (payload "{}"). */
#define GW_ES_INITIAL_RESPONSE_LEN 104

/* The header set of one Kinesis message, in the order AWS sends them. */
struct gw_es_headers {
    struct gw_es_header h[3];
    size_t n;
};

/* :message-type event, :event-type "event_type", :content-type
 * application/json. Borrows "event_type" for as long as "hs" is used. */
void gw_es_headers_event(struct gw_es_headers *hs, const char *event_type);

/* :message-type exception, :exception-type "exception_type" (e.g.
 * "ResourceNotFoundException"), :content-type application/json; the payload
 * is {"message":"..."}. Borrows "exception_type". */
void gw_es_headers_exception(struct gw_es_headers *hs, const char *exception_type);

/* ---- decoding ---------------------------------------------------------- */

/* Decodes the message at the start of "src" ("len" bytes). Returns:
 *   > 0               bytes consumed (the message's total length); "*msg"
 *                     holds views into "src";
 *   GW_ES_INCOMPLETE  "src" holds a valid prefix of a message; call again with
 *                     more bytes. If the 12-byte prelude was there (and its
 *                     CRC checked), "msg->total_len" says how many bytes the
 *                     whole message needs, else it is 0;
 *   -1                invalid: lengths out of range, a CRC mismatch, a
 *                     malformed or truncated header; "errbuf" says which.
 * A bad prelude is reported as soon as its 12 bytes are in, so a corrupt
 * length never makes the caller wait for data. Never reads past src+len. */
ssize_t gw_es_decode(const uint8_t *src, size_t len, struct gw_es_message *msg,
                     char *errbuf, size_t errlen);

/* Starts iterating over the headers of "msg" (borrowed). */
void gw_es_header_iter_init(struct gw_es_header_iter *it, const struct gw_es_message *msg);

/* Fills "*h" with the next header (views into the message) and returns 1,
 * or returns 0 at the end. */
int gw_es_header_next(struct gw_es_header_iter *it, struct gw_es_header *h);

/* Finds the first header called "name" (NUL-terminated) in "msg"; fills "*h"
 * and returns 0, or returns -1 if there is none. */
int gw_es_message_find(const struct gw_es_message *msg, const char *name,
                       struct gw_es_header *h);

/* CRC-32 (IEEE, as zlib's crc32()) of "len" bytes at "p", continuing from
 * "crc" (0 to start). */
uint32_t gw_es_crc32(uint32_t crc, const uint8_t *p, size_t len);

#endif /* GW_EVENTSTREAM_H */
