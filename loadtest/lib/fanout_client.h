/* fanout_client.h - a small non-blocking Kinesis client for the fan-out tests
 * and the fan-out benchmark (nghttp2 client sessions on libevent, h2c or TLS).
 *
 * One struct fc_conn is one HTTP/2 connection to the gateway (prior
 * knowledge, or TLS with ALPN h2). On it the caller issues unary Kinesis-door
 * calls (fc_call: JSON 1.1 body in, status and parsed JSON reply out;
 * fc_put_record builds a PutRecord) and opens SubscribeToShard streams (fc_subscribe). Each
 * subscription decodes its application/vnd.amazon.eventstream body
 * incrementally with gw_es_decode() (both CRCs checked there), parses each
 * SubscribeToShardEvent payload with jansson, and calls back once per record
 * and once per event; everything unexpected (initial-response not first, a
 * CRC or framing error, an unknown message type, a malformed payload) is
 * counted in its struct fc_sub_stats rather than asserted, so tests decide.
 *
 * Threading: a connection and its subscriptions belong to the thread that runs
 * their event_base; nothing here locks. Nothing blocks except the *_sync
 * helpers, which run the caller's event_base until their reply arrives and
 * must not be called from inside a callback.
 *
 * Flow control: the client never grants automatic WINDOW_UPDATEs; it consumes
 * each DATA chunk once it has handed it to the decoder. A subscription opened
 * with "stalled" set is never consumed (its stream window stays at the
 * connection's initial window, e.g. 64 KiB, forever), while the connection
 * window is still returned so the connection's other streams keep flowing.
 * fc_conn_pause_reading() stops reading the socket altogether.
 */
#ifndef SLUICE_FANOUT_CLIENT_H
#define SLUICE_FANOUT_CLIENT_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fc_conn;
struct fc_sub;

/* Connection options; zeroes mean the defaults in brackets. */
struct fc_conn_opts {
    uint32_t stream_window; /* SETTINGS_INITIAL_WINDOW_SIZE [1 MiB] */
    uint32_t conn_window;   /* connection receive window [64 MiB] */
    size_t out_high;        /* stop generating frames past this much unsent output [256 KiB] */
    bool tls;               /* TLS with ALPN h2 (the server's certificate is not checked) */
};

/* Opens a connection to "host":"port" (numeric IPv4) on "base" (borrowed
 * for the connection's lifetime). Returns new (fc_conn_free), or NULL if the
 * socket could not be created; a refused connect shows later as
 * fc_conn_failed(). */
struct fc_conn *fc_conn_new(struct event_base *base, const char *host, int port,
                            const struct fc_conn_opts *opts);
/* Closes the connection and frees it and every subscription on it (their
 * on_end is not called). Accepts NULL. */
void fc_conn_free(struct fc_conn *c);
/* True once the connection has failed or the server closed it; the reason
 * is in fc_conn_error(). */
bool fc_conn_failed(const struct fc_conn *c);
const char *fc_conn_error(const struct fc_conn *c);
/* The connection's socket (-1 if none), for tests that look at what has
 * arrived without reading it (FIONREAD). */
int fc_conn_fd(const struct fc_conn *c);
/* Stops (true) or resumes (false) reading the socket: the server then sees
 * TCP back-pressure instead of HTTP/2 flow control. */
void fc_conn_pause_reading(struct fc_conn *c, bool paused);
/* Sends a GOAWAY (last stream 0, NO_ERROR) as the JS SDK does right after
 * a SubscribeToShard response's headers; open streams keep being read. */
int fc_conn_goaway(struct fc_conn *c);

/* ---- unary calls ------------------------------------------------------- */

/* Reply of a unary call: "status" is the HTTP status (0 if the stream was
 * reset or the connection failed), "reply" the parsed JSON body (borrowed for
 * the call; NULL if empty or not JSON), "ud" the caller's pointer. */
typedef void (*fc_on_reply)(int status, json_t *reply, void *ud);

/* Calls Kinesis_20131202."op" with the JSON text "body" ("len" bytes,
 * copied). Returns 0, or -1 if the connection has failed or nghttp2 refused
 * the stream. "cb" may be NULL. */
int fc_call(struct fc_conn *c, const char *op, const char *body, size_t len, fc_on_reply cb,
            void *ud);
/* PutRecord of "len" bytes at "data" (base64-encoded here) with partition key
 * "pk" to stream "stream"; the reply carries SequenceNumber and ShardId. */
int fc_put_record(struct fc_conn *c, const char *stream, const char *pk, const uint8_t *data,
                  size_t len, fc_on_reply cb, void *ud);
/* PutRecords of "n" entries (data[i], len[i], pk[i]); the reply carries
 * Records[i].SequenceNumber or .ErrorCode. */
int fc_put_records(struct fc_conn *c, const char *stream, size_t n, const char *const *pk,
                   const uint8_t *const *data, const size_t *len, fc_on_reply cb, void *ud);

/* Blocking form of fc_call(): runs the connection's event_base until the reply
 * arrives or "timeout_ms" passes. Returns the reply (new, json_decref; NULL if
 * none or not JSON) and sets "*status" (0 on timeout or failure). Not from a
 * callback. */
json_t *fc_call_sync(struct fc_conn *c, const char *op, const char *body, int *status,
                     int timeout_ms);

/* ---- subscriptions ----------------------------------------------------- */

/* One record of a SubscribeToShardEvent. Every pointer is borrowed for the
 * duration of the callback; "seq" and "pk" are NUL-terminated. */
struct fc_record {
    const char *seq;
    int64_t arrival_ms; /* ApproximateArrivalTimestamp, rounded to ms */
    const uint8_t *data;
    size_t len;
    const char *pk;
};

/* One SubscribeToShardEvent, reported after its records. "cont_seq" is NULL
 * when the event has no ContinuationSequenceNumber (shard end). */
struct fc_event {
    const char *cont_seq;
    int64_t millis_behind; /* -1 if absent */
    size_t n_records;
    size_t data_bytes; /* decoded record data in this event */
    size_t wire_bytes; /* the whole event-stream message */
};

enum fc_end {
    FC_END_NONE = 0,   /* still open */
    FC_END_CLEAN,      /* 200, END_STREAM, no exception: ttl expiry or drain */
    FC_END_EXCEPTION,  /* 200 then an exception (or error) message */
    FC_END_HTTP_ERROR, /* non-200 answer: stats.error_type names it */
    FC_END_RESET,      /* RST_STREAM from the server */
    FC_END_PROTOCOL,   /* the body did not decode; the client reset the stream */
    FC_END_CONN,       /* the connection failed or closed under it */
    FC_END_CANCELLED,  /* fc_sub_cancel() */
};

/* What a subscription has seen so far; valid until the subscription is
 * freed. */
struct fc_sub_stats {
    int status;                  /* HTTP status, 0 before headers */
    char content_type[64];
    bool got_initial;            /* an initial-response arrived */
    bool initial_not_first;      /* an event preceded it, or it came twice */
    uint64_t messages;           /* all event-stream messages */
    uint64_t events;             /* SubscribeToShardEvent messages */
    uint64_t empty_events;       /* ... with no records */
    uint64_t records;
    uint64_t data_bytes;         /* decoded record data */
    uint64_t wire_bytes;         /* body bytes received */
    uint64_t decode_errors;      /* framing/CRC/payload errors (then the stream is reset) */
    uint64_t unknown_messages;
    char last_cont_seq[160];     /* last ContinuationSequenceNumber seen ("" none) */
    int64_t millis_behind;       /* last MillisBehindLatest (-1 none) */
    enum fc_end end;
    char error_type[96];         /* exception type, :error-code or __type */
    char error_message[256];
    char decode_error[128];
};

typedef void (*fc_on_record_cb)(struct fc_sub *s, const struct fc_record *r, void *ud);
typedef void (*fc_on_event_cb)(struct fc_sub *s, const struct fc_event *e, void *ud);
/* Called once when the subscription ends; the subscription stays allocated
 * (stats readable) until fc_sub_free() or fc_conn_free(). */
typedef void (*fc_on_end_cb)(struct fc_sub *s, enum fc_end how, void *ud);

struct fc_sub_opts {
    const char *consumer_arn; /* borrowed for the call */
    const char *shard_id;
    const char *start_type;   /* TRIM_HORIZON, LATEST, AT_/AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP */
    const char *start_seq;    /* for the sequence-number types */
    double start_ts;          /* AT_TIMESTAMP: epoch seconds */
    bool stalled;             /* never consume this stream's DATA (see top) */
    /* Parse SubscribeToShardEvent payloads with a minimal scanner for
     * exactly the shape Kinesis sends (flat string/number members, Records
     * objects without escapes), falling back to jansson for anything else;
     * for benchmarks, where jansson would dominate the client's CPU. */
    bool fast_json;
    fc_on_record_cb on_record;
    fc_on_event_cb on_event;
    fc_on_end_cb on_end;
    void *ud;
};

/* Opens a SubscribeToShard stream. Returns the subscription (owned by the
 * connection; fc_sub_free() to drop it earlier), or NULL if the connection
 * has failed. */
struct fc_sub *fc_subscribe(struct fc_conn *c, const struct fc_sub_opts *o);
const struct fc_sub_stats *fc_sub_stats(const struct fc_sub *s);
/* Resets the stream (CANCEL) if it is open; stats stay readable. */
void fc_sub_cancel(struct fc_sub *s);
/* Cancels if open and frees. Accepts NULL. */
void fc_sub_free(struct fc_sub *s);

/* ---- helpers ----------------------------------------------------------- */

/* Runs "base" until "*done" becomes true or "timeout_ms" passes; returns
 * *done. Not from a callback. */
bool fc_run_until(struct event_base *base, const bool *done, int timeout_ms);
/* Runs "base" for "ms" milliseconds. Not from a callback. */
void fc_run_for(struct event_base *base, int ms);
/* CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds. */
int64_t fc_now_mono_ns(void);
int64_t fc_now_real_ns(void);
/* Compares two decimal sequence numbers as unsigned integers (<0, 0, >0). */
int fc_seq_cmp(const char *a, const char *b);

#endif
