/* jsbus.h - the store's link to NATS JetStream (jetstream backend only).
 *
 * A thin layer over libnats (3.4) that the jetstream backend of the store is
 * built on. libnats runs its own threads (a reader and a flusher per
 * connection, a delivery thread per subscription, a global timer and
 * callback thread); jsbus turns everything they produce into work for the
 * store's loop thread, so the store itself stays single-threaded:
 *
 *   - request replies, follow deliveries, timeouts and log lines are queued by
 *     the NATS threads (or a small ticker thread) and run by jsbus_dispatch(),
 *     which the loop calls when jsbus_notify_fd() becomes readable;
 *   - nothing here blocks the loop thread except jsbus_open(),
 *     jsbus_request_sync() (both meant for store_open, before the loop runs)
 *     and jsbus_close();
 *   - memory is bounded: a follow queues at most JSBUS_FOLLOW_MAX_MSGS
 *     messages or JSBUS_FOLLOW_MAX_BYTES bytes for the loop (including the
 *     ones being delivered); beyond that its NATS delivery thread waits, and
 *     JetStream flow control stops the server. Request replies are bounded by
 *     the number of requests in flight, which the caller controls.
 *
 * THREADS: every function is for the loop thread (the thread that calls
 * jsbus_dispatch). Callbacks (reply, delivery, log) run on it, only inside
 * jsbus_dispatch() and jsbus_close(), never inside the call that registered
 * them. Several struct jsbus may live in one process and close in any order;
 * jsbus never calls nats_Close() (libnats' global state stays up until exit).
 *
 * ORDERING: replies run in the order they arrive, deliveries of one follow in
 * stream order; the two kinds are not ordered against each other.
 */
#ifndef SLUICE_STORE_JSBUS_H
#define SLUICE_STORE_JSBUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h" /* struct store_err, STORE_E* codes, store_log_fn */

/* Per-follow bound on what waits for the loop thread (see jsbus_follow). */
#define JSBUS_FOLLOW_MAX_MSGS 4096
#define JSBUS_FOLLOW_MAX_BYTES (8u << 20)

struct jsbus;

struct jsbus_opts {
    const char *urls;            /* "nats://h:p[,nats://h:p...]" (required) */
    const char *creds;           /* NULL, or a NATS .creds file */
    const char *tls_ca;          /* NULL, or a CA file: turns TLS on */
    const char *name;            /* connection name, may be NULL */
    int64_t connect_timeout_ms;  /* 0 = 5000 */
    store_log_fn log;            /* may be NULL; called on the loop thread only
                                    (from jsbus_dispatch, jsbus_open, jsbus_close) */
    void *log_arg;
};

/* Connects to "o->urls" (blocking, at most about connect_timeout_ms per
 * server; meant for store_open before the loop runs). The options are copied.
 * After a loss the connection is retried forever; disconnects are logged at
 * WARN and reconnects at INFO. On success "*out" returns new (free with
 * jsbus_close). Errors: STORE_EINVAL (bad options: no URL, unreadable CA
 * file, ...), STORE_EUNAVAIL (no server could be reached, TLS or
 * authorization failed). */
int jsbus_open(const struct jsbus_opts *o, struct jsbus **out, struct store_err *err);

/* Stops everything and frees "b" (NULL is accepted). Blocks until the NATS
 * threads let go of jsbus' objects (at most about the JetStream API timeout
 * when a follow is being set up at that moment). Pending request callbacks
 * fire inside the call with STORE_EUNAVAIL "closed"; they must not call
 * jsbus functions (jsbus_request then fails at once, and its callback never
 * fires). Follow callbacks never fire again, and every struct jsbus_follow
 * of "b" is freed: do not use those handles afterwards. */
void jsbus_close(struct jsbus *b);

/* An eventfd (non-blocking) that becomes readable when NATS threads queued
 * work; the loop watches it (EV_READ|EV_PERSIST) and calls jsbus_dispatch.
 * Owned by "b". */
int jsbus_notify_fd(const struct jsbus *b);

/* Loop thread: clears the notify fd and runs queued log lines, replies,
 * expired request timeouts and follow deliveries. Never blocks; a follow
 * delivers at most what was queued when the call began, and if more is
 * queued the notify fd is readable again on return. Callbacks may call any
 * jsbus function except jsbus_close. */
void jsbus_dispatch(struct jsbus *b);

/* 1 while the connection is up, 0 while libnats is reconnecting. Thread-safe. */
int jsbus_connected(const struct jsbus *b);

/* A message handed to a callback; everything in it is borrowed for the call. */
struct jsbus_msg {
    const char *subject;
    const uint8_t *data;
    size_t len;
    uint64_t stream_seq; /* JetStream stream sequence of a followed message; 0 for request replies */
    int64_t time_ns;     /* JetStream timestamp (ns since the epoch) of a followed message; 0 otherwise */
    void *_priv;         /* the natsMsg (headers) */
};

/* The first value of header "key" (case-sensitive, as libnats 3 matches
 * keys), or NULL. Borrowed: valid while "m" is. */
const char *jsbus_msg_header(const struct jsbus_msg *m, const char *key);

/* The stream sequence and timestamp (ns) a JetStream delivery's reply
 * subject "reply" carries: 1, or 0 if it has neither known form (then
 * libnats' natsMsg_GetMetaData is the judge). Any thread. */
int jsbus_ack_meta(const char *reply, uint64_t *seq, int64_t *ts);

struct jsbus_hdr {
    const char *key, *value;
};

/* Called exactly once per accepted request, on the loop thread: with the
 * reply (borrowed for the call) and "err" NULL, or "reply" NULL and "err"
 * set. */
typedef void (*jsbus_reply_fn)(void *arg, const struct jsbus_msg *reply, const struct store_err *err);

/* Async request (a JetStream publish whose reply is the PubAck, a
 * $JS.API.* call): publishes "data" ("len" bytes, may be 0; copied) with
 * "nhdrs" headers (copied) to "subject", with a reply subject of jsbus' own,
 * and calls "cb" exactly once from a later jsbus_dispatch (or jsbus_close).
 * Failures reach "cb" as STORE_EUNAVAIL: not connected at call time, "no
 * responders" (the 503 status NATS sends when nobody listens: a JetStream
 * leader election, a missing stream), any other status reply (its code and
 * description in the text), no reply within "timeout_ms" (0 = 5000; checked
 * every ~50 ms, with or without other traffic), jsbus_close.
 * Returns 0, or STORE_EINVAL for bad arguments (NULL/empty subject, NULL cb,
 * a header without key) and STORE_EUNAVAIL while jsbus_close runs; then "cb"
 * never fires. */
int jsbus_request(struct jsbus *b, const char *subject, const struct jsbus_hdr *hdrs, size_t nhdrs,
                  const void *data, size_t len, int64_t timeout_ms, jsbus_reply_fn cb, void *arg,
                  struct store_err *err);

/* Blocking request for store_open (before the loop runs): the reply parsed
 * as JSON into "*reply" (returns new: json_decref it). A JetStream API error
 * object in the reply ({"error":{...}}) is left for the caller to read.
 * Errors: STORE_EINVAL (bad arguments), STORE_EUNAVAIL (not connected, no
 * responders, timeout after "timeout_ms" (0 = 5000), a reply that is not
 * JSON). */
int jsbus_request_sync(struct jsbus *b, const char *subject, const void *data, size_t len,
                       int64_t timeout_ms, json_t **reply, struct store_err *err);

/* ---- follows ------------------------------------------------------------ */

struct jsbus_follow;

/* A followed message, borrowed for the call. */
typedef void (*jsbus_deliver_fn)(void *arg, const struct jsbus_msg *m);

/* Follows JetStream stream "stream" from stream sequence "start_seq" (>= 1),
 * filtered on subject "filter" (NULL = every subject of the stream), through
 * libnats' ordered push consumer (ephemeral, in memory, no acks, flow
 * control, 1 s heartbeats; libnats re-creates it after a gap, missed
 * heartbeats or a reconnect). Returns at once: the consumer is created by a
 * jsbus thread, and retried every second (logged at WARN) while that fails
 * (not connected, stream missing, JetStream unavailable).
 *
 * "cb" runs on the loop thread from jsbus_dispatch, once per message, in
 * stream order, never twice for one sequence and never for one below
 * "start_seq": jsbus remembers the last sequence it delivered and drops
 * whatever a consumer re-creation sends again. libnats never drops a
 * message of the subscription (its pending limits are off) so nothing is
 * skipped while the connection holds; what JetStream itself no longer has
 * (retention) is skipped, as any consumer would.
 *
 * Bounded: at most JSBUS_FOLLOW_MAX_MSGS messages or JSBUS_FOLLOW_MAX_BYTES
 * bytes (data and subject; one bigger message is let through alone) wait for
 * the loop; beyond that the NATS delivery thread waits for jsbus_dispatch,
 * and flow control stops the server.
 *
 * Returns new (free with jsbus_unfollow, or jsbus_close), or NULL with
 * STORE_EINVAL (NULL/empty stream, empty filter, start_seq 0, NULL cb) or
 * STORE_EUNAVAIL (jsbus_close is running). */
struct jsbus_follow *jsbus_follow(struct jsbus *b, const char *stream, const char *filter,
                                  uint64_t start_seq, jsbus_deliver_fn cb, void *arg,
                                  struct store_err *err);

/* Stops a follow: "cb" never fires after this returns (what is queued is
 * dropped); the consumer is removed in the background. Safe from inside its
 * own cb (and from any other jsbus callback). NULL is accepted. */
void jsbus_unfollow(struct jsbus_follow *f);

/* The last stream sequence delivered through "f" (0 if none). */
uint64_t jsbus_follow_last(const struct jsbus_follow *f);

/* Counters of one follow, for tests and metrics. */
struct jsbus_follow_stats {
    size_t queued_msgs, queued_bytes; /* waiting for (or in) delivery now */
    size_t peak_msgs, peak_bytes;     /* the most ever waiting at once */
    uint64_t delivered;               /* callbacks made */
    uint64_t dropped;                 /* re-sent messages dropped (seq <= last, or < start_seq) */
    uint64_t subscribes;              /* consumers created by jsbus (1 unless retried) */
};

/* Fills "out" with the counters of "f" (takes jsbus' lock briefly). */
void jsbus_follow_stats(const struct jsbus_follow *f, struct jsbus_follow_stats *out);

#endif
