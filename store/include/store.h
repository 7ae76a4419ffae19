/* store.h - the shard store's only public header.
 *
 * The store keeps Kinesis-style streams on local disk: a catalog of streams
 * (shards, hash-key ranges, tags, consumers, retention) in one manifest, and for
 * every shard an append-only log of framed records split into segment files.
 * It knows nothing about HTTP, sockets or libevent; gateway/ includes this
 * header and nothing else from store/.
 *
 * GUARANTEES
 *
 *  - Ordering. Records of one shard are read back in append order. Every record
 *    gets a sequence number that is strictly greater than every sequence number
 *    the shard handed out before, including in earlier runs of the process and
 *    across crashes: each store_open() bumps a persisted generation that forms
 *    the most significant part of the number. Numbers are never reused, but
 *    there may be gaps (failed appends, restarts).
 *  - Durability. A record is acknowledged (its append callback fires with code
 *    0) only when it is as durable as the mode promises:
 *      STORE_DURABILITY_ALWAYS    after an fsync that covers it. One fsync (on
 *                                 the syncer thread) covers every batch written
 *                                 by the same store_commit() and any commits
 *                                 queued while the previous fsync ran
 *                                 (group commit).
 *      STORE_DURABILITY_INTERVAL  after write(2); the syncer fsyncs every
 *                                 interval_ms. A crash may lose that window.
 *      STORE_DURABILITY_NEVER     after write(2); never fsynced by us.
 *    A record becomes readable (store_shard_read, listeners) at the same moment
 *    it is acknowledged, so a reader never sees a record a crash could take back
 *    in mode ALWAYS.
 *  - Crash recovery. store_open() verifies every segment. A torn or corrupt
 *    tail (an incomplete last frame, or a bad last frame, or trailing zeros) is
 *    cut back to the last whole record and logged at WARN; nothing before it is
 *    lost. A bad frame followed by more data is corruption in the middle of a
 *    segment: that shard is taken offline (calls on it fail with
 *    STORE_ECORRUPT), logged at ERROR, and never silently skipped.
 *  - Catalog. Catalog changes take effect in memory at once; each becomes one
 *    record of an append-only catalog log that the syncer appends and fsyncs
 *    after the next store_commit(), compacted now and then into a snapshot
 *    (catalog.c documents the format). store_catalog_sync() tells you when
 *    that has happened. The catalog is ordered before data: records of a
 *    stream whose creation is not yet durable are held back (neither readable
 *    nor acknowledged) until it is, and so are those appended to a stream
 *    whose deletion is pending. If a catalog write fails, every change not
 *    yet durable is undone in memory, newest first (a created stream
 *    disappears and its pending appends fail with STORE_ENOTFOUND, a deleted
 *    one comes back, tags/retention/status/consumers return to their
 *    values), and the waiters get the error. At open, segments of streams the
 *    catalog does not know are moved to <dir>/quarantine/<time>/ and logged
 *    at WARN, never deleted.
 *  - Errors are values. Every failure returns a negative STORE_E* code and fills
 *    a struct store_err with a message. The store never aborts on bad input or
 *    on an I/O error; it aborts only when malloc fails.
 *
 * THREADS
 *
 *  Every function here must be called from one thread, the "loop thread" (the
 *  gateway's libevent thread), except the pure helpers (store_seq_*,
 *  store_hashkey_*, store_pos_*, store_strerror, store_opts_init,
 *  store_durability_parse), which are thread-safe. Internally a syncer thread
 *  runs fsync and manifest writes; it never calls back into user code except
 *  through store_io_ops.fsync. Results come back to the loop thread this way:
 *
 *    - store_notify_fd() becomes readable when the syncer has progress. The
 *      loop watches it (EV_READ|EV_PERSIST) and calls store_dispatch(), which
 *      advances durable watermarks and fires append callbacks, shard listeners,
 *      durable hooks and catalog-sync callbacks.
 *    - store_commit() is called once per loop turn (e.g. from a zero-delay
 *      timer armed by the first append). It writes everything appended since
 *      the last commit and, in modes INTERVAL and NEVER, fires callbacks and
 *      listeners for what it wrote.
 *
 *  Callbacks never run inside store_shard_append() or any catalog call: only
 *  inside store_commit(), store_dispatch() and store_close(). Callbacks may call
 *  any store function, including append and read, but must not call
 *  store_close().
 *
 * CAVEATS
 *
 *  - Borrowed pointers: record views returned by store_shard_read() stay valid
 *    until the next read on the same cursor or store_cursor_free(). Info
 *    structs (store_stream_info etc.) borrow strings that stay valid until the
 *    next catalog change to that stream.
 *  - Deleting a stream invalidates its struct store_stream, struct store_shard
 *    and struct store_listener handles at once; remove listeners and drop
 *    handles first. Pending append callbacks of a deleted stream fire with
 *    STORE_ENOTFOUND.
 *  - Sequence numbers are 41-digit decimal strings (all the same length, so
 *    string order equals numeric order); clients must treat them as opaque.
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ======================================================================== */
/* Errors                                                                   */
/* ======================================================================== */

/* Store error codes. They are negative and live in [-40999, -40000], a range
 * disjoint from errno values (which are positive), as LMDB does. 0 is success. */
#define STORE_OK 0
#define STORE_ENOTFOUND (-40001) /* stream, shard, consumer or tag not found */
#define STORE_EEXISTS (-40002)   /* name already in use */
#define STORE_EINVAL (-40003)    /* bad argument (range, syntax, wrong shard) */
#define STORE_ELIMIT (-40004)    /* a count limit (tags, consumers) reached */
#define STORE_ESTATE (-40005)    /* object in the wrong state (closed shard) */
#define STORE_ECORRUPT (-40006)  /* on-disk data failed verification */
#define STORE_EIO (-40007)       /* an I/O call failed (message has errno text) */
#define STORE_ENOSPC (-40008)    /* the disk is full */
#define STORE_EUNAVAIL (-40009)  /* the backend cannot be reached now (jetstream: not
                                    connected, no leader, timed out); retry later */
#define STORE_ECONFLICT (-40010) /* a catalog change raced one made through another
                                    gateway and was undone; retry */

/* An error value: "code" is a STORE_E* code, "msg" a one-line explanation
 * (NUL-terminated, no trailing newline). Functions that take a
 * "struct store_err *err" fill it on failure only; err may be NULL. */
struct store_err {
    int code;
    char msg[256];
};

/* Returns a static description of a STORE_E* code ("unknown error" for others). */
const char *store_strerror(int code);

/* ======================================================================== */
/* Small value types                                                        */
/* ======================================================================== */

/* A borrowed byte range; who owns "p" is said where the type is used. */
struct store_bytes {
    const uint8_t *p;
    size_t len;
};

/* A 128-bit hash key, big-endian (be[0] is the most significant byte). */
struct store_hashkey {
    uint8_t be[16];
};

/* Buffer size for a decimal hash key: up to 39 digits plus NUL. */
#define STORE_HASHKEY_STRLEN 40

/* Parses a decimal hash key ("0" .. "340282366920938463463374607431768211455",
 * no sign, no leading zeros except "0" itself). "s" need not be NUL-terminated.
 * Returns 0, or STORE_EINVAL when the text is not a number in that range. */
int store_hashkey_parse(const char *s, size_t len, struct store_hashkey *out,
                        struct store_err *err);

/* Writes "hk" in decimal into "out" (NUL-terminated); returns the length. */
size_t store_hashkey_format(const struct store_hashkey *hk, char out[STORE_HASHKEY_STRLEN]);

/* Sets "out" to the MD5 of "pk" (the partition key's bytes) read as a 128-bit
 * big-endian number, as Kinesis routes partition keys. */
void store_hashkey_from_partition_key(const uint8_t *pk, size_t len, struct store_hashkey *out);

/* Compares two hash keys as numbers: <0, 0 or >0. */
int store_hashkey_cmp(const struct store_hashkey *a, const struct store_hashkey *b);

/* Sets "start"/"end" to the inclusive hash-key range of shard "i" of "n" under
 * the even split: step = floor(2^128 / n), start = i*step, end = (i+1)*step-1,
 * except that the last shard ends at 2^128-1. Requires 0 <= i < n. */
void store_hashkey_even_split(uint32_t n, uint32_t i, struct store_hashkey *start,
                              struct store_hashkey *end);

/* A sequence number. Its decimal form is exactly 41 digits:
 *
 *   "4" | gen (10 digits) | shard index (10 digits) | counter (20 digits)
 *
 * "gen" is the store generation (bumped and persisted by each store_open),
 * "shard" the shard index within its stream, "counter" counts the shard's
 * records within the generation. Numeric order is (gen, shard, counter)
 * order, so per shard it is (gen, counter) order. */
struct store_seq {
    uint32_t gen;
    uint32_t shard;
    uint64_t counter;
};

/* Buffer size for a formatted sequence number: 41 digits plus NUL. */
#define STORE_SEQ_STRLEN 42

/* Writes "seq" in decimal into "out" (NUL-terminated); returns 41. */
size_t store_seq_format(struct store_seq seq, char out[STORE_SEQ_STRLEN]);

/* Parses a sequence number produced by store_seq_format. "s" need not be
 * NUL-terminated. Returns 0, or STORE_EINVAL for any other text (including
 * valid Kinesis numbers from another system, which we cannot interpret). */
int store_seq_parse(const char *s, size_t len, struct store_seq *out, struct store_err *err);

/* Compares two sequence numbers as big integers: <0, 0 or >0. */
int store_seq_cmp(struct store_seq a, struct store_seq b);

/* A read position in a shard: the first record to read is the first one with
 * seq >= "seq" (after == 0) or seq > "seq" (after != 0). Positions are small
 * values; serialise them with store_pos_format to put them into an opaque
 * shard iterator. A position below the shard's trim point reads from the
 * oldest retained record. */
struct store_pos {
    struct store_seq seq;
    int after;
};

/* Buffer size for a formatted position: 'S' or 'A', 41 digits, NUL. */
#define STORE_POS_STRLEN 43

/* Writes "pos" as "S<seq>" (at) or "A<seq>" (after); returns 42. */
size_t store_pos_format(const struct store_pos *pos, char out[STORE_POS_STRLEN]);

/* Parses store_pos_format's output. Returns 0 or STORE_EINVAL. */
int store_pos_parse(const char *s, size_t len, struct store_pos *out, struct store_err *err);

/* ======================================================================== */
/* Options and opening                                                      */
/* ======================================================================== */

enum store_durability {
    STORE_DURABILITY_ALWAYS = 0, /* ack after a covering fsync (group commit) */
    STORE_DURABILITY_INTERVAL,   /* ack after write; fsync every interval_ms */
    STORE_DURABILITY_NEVER       /* ack after write; no fsync */
};

/* Parses "always", "never" or "interval:MS" (1 <= MS <= 3600000) into "mode"
 * and "interval_ms" (left untouched unless interval). Returns 0 or STORE_EINVAL. */
int store_durability_parse(const char *s, enum store_durability *mode, uint32_t *interval_ms,
                           struct store_err *err);

enum store_backend { STORE_BACKEND_EMBEDDED = 0, STORE_BACKEND_JETSTREAM };

enum store_log_level { STORE_LOG_DEBUG, STORE_LOG_INFO, STORE_LOG_WARN, STORE_LOG_ERROR };

/* Log sink: one event per call, "msg" has no trailing newline and is borrowed
 * for the call. Called on the loop thread only. */
typedef void (*store_log_fn)(void *arg, enum store_log_level level, const char *msg);

/* Wall clock in milliseconds since the epoch (arrival times, creation times). */
typedef int64_t (*store_clock_fn)(void *arg);

/* Segment I/O seam, for fault-injection tests. Each function behaves like the
 * syscall it replaces (return -1 and set errno on failure; write may be short).
 * "write" is called on the loop thread for segments and on the syncer thread
 * for the manifest; "fsync" on the syncer thread (and on the loop thread inside
 * store_open/store_close). Hooks must therefore be thread-safe. */
struct store_io_ops {
    ssize_t (*write)(void *ctx, int fd, const void *buf, size_t len);
    int (*fsync)(void *ctx, int fd);
    void *ctx;
};

struct store_shard;

/* Called (loop thread, from store_dispatch/store_commit) when a shard's
 * durable watermark advances; "durable" is the highest durable sequence number. */
typedef void (*store_durable_fn)(void *arg, struct store_shard *shard, struct store_seq durable);

struct store_opts {
    enum store_durability durability; /* default ALWAYS */
    uint32_t interval_ms;             /* for INTERVAL; default 1000 */
    uint64_t segment_bytes;           /* roll segments past this size; default 64 MiB */
    uint64_t tail_budget_bytes;       /* in-memory tail, all shards together; default 64 MiB */
    int64_t retention_check_ms;       /* store_tick trims at most this often; default 60000 */
    uint32_t max_consumers;           /* per stream; default STORE_MAX_CONSUMERS (Kinesis: 20),
                                         at most STORE_MAX_CONSUMERS_LIMIT */
    uint32_t max_fds;                 /* descriptors the store may hold at once: 6
                                         for itself, segment write and read descriptors
                                         (an LRU cache: idle ones are closed and
                                         reopened on demand) and the syncer's.
                                         Default 0: half the soft RLIMIT_NOFILE at
                                         store_open. At least 9 (else STORE_EINVAL).
                                         A store_commit touching more shards than fit
                                         exceeds it until its fsyncs are queued. */
    const char *region;               /* for ARNs; default "us-east-1" (copied) */
    const char *account;              /* 12 digits; default "000000000000" (copied) */
    store_log_fn log;                 /* default: none */
    void *log_arg;
    store_clock_fn clock; /* default: CLOCK_REALTIME */
    void *clock_arg;
    const struct store_io_ops *io; /* test only; NULL = real syscalls (borrowed
                                      until store_close) */
    store_durable_fn on_durable;   /* optional */
    void *on_durable_arg;
    uint64_t catalog_compact_bytes; /* snapshot the catalog once its log is this
                                       big (and bigger than the last snapshot);
                                       default 1 MiB */

    /* Backend. STORE_BACKEND_EMBEDDED (the default) is everything above.
     * STORE_BACKEND_JETSTREAM keeps the catalog and the records in NATS
     * JetStream (see BACKENDS below); "dir" then holds only a disposable
     * local copy, emptied at every store_open. */
    enum store_backend backend;
    const char *nats_url;     /* "nats://h:p[,nats://h:p...]" (borrowed until store_open returns) */
    uint32_t nats_replicas;   /* replicas of every JetStream stream; default 3 */
    const char *nats_prefix;  /* [A-Za-z0-9_-]{1,32}: names of streams and subjects; default "sluice" */
    const char *nats_creds;   /* NULL or a .creds file */
    const char *nats_tls_ca;  /* NULL or a CA file: TLS to NATS */
    /* Jetstream backend: called (loop thread, from store_dispatch) just
     * before a change made through another gateway takes away a stream
     * ("consumer" NULL) or one consumer, so the caller can drop its handles
     * to it (subscriptions, listeners) first. */
    void (*on_remote_removal)(void *arg, const char *stream, const char *consumer);
    void *on_remote_removal_arg;
    /* Jetstream backend: called (loop thread, from store_dispatch) when
     * another gateway started a subscription of "consumer_arn" to shard
     * "shard" of "stream" after this gateway's (store_sub_claim): the
     * caller ends its own, which was taken over. */
    void (*on_sub_taken)(void *arg, const char *stream, uint32_t shard, const char *consumer_arn);
    void *on_sub_taken_arg;
};

/* Fills "opts" with the defaults above. */
void store_opts_init(struct store_opts *opts);

struct store;

/* Jetstream backend: fills "out" (up to 32 bytes) with key material every
 * store on the same JetStream and prefix shares (made once, at random, by
 * the first) and returns 1. Embedded: returns 0, "out" untouched. */
int store_shared_secret(const struct store *store, uint8_t *out, size_t len);

struct store;

/* Opens (creating if needed) the store in directory "dir". Loads the manifest,
 * bumps and persists the generation (synchronously, with fsync), verifies all
 * segments (see CRASH RECOVERY above; a corrupt shard goes offline, the open
 * still succeeds) and starts the syncer thread. "opts" may be NULL (defaults)
 * and is copied. Only one process may open a directory (flock).
 * On success "*out" returns new (free with store_close). Errors: STORE_EINVAL
 * (bad options), STORE_ECORRUPT (unreadable manifest), STORE_EIO, STORE_ENOSPC. */
int store_open(const char *dir, const struct store_opts *opts, struct store **out,
               struct store_err *err);

/* Commits outstanding appends, waits (blocking) for the syncer to finish,
 * fires every outstanding callback, writes the manifest and frees the store.
 * All handles into the store become invalid. Accepts NULL. */
void store_close(struct store *store);

/* ======================================================================== */
/* Loop integration                                                         */
/* ======================================================================== */

/* A file descriptor (eventfd) that becomes readable when the syncer has
 * progress; watch it for reading and call store_dispatch(). Owned by the store. */
int store_notify_fd(struct store *store);

/* Consumes syncer progress: advances durable watermarks and fires append
 * callbacks, listeners, durable hooks and catalog-sync callbacks. Never
 * blocks. Cheap when there is nothing to do. */
void store_dispatch(struct store *store);

/* Writes everything appended since the last commit (group commit) and queues
 * its fsync (mode ALWAYS) and any dirty manifest for the syncer. In modes
 * INTERVAL/NEVER, fires the callbacks and listeners of what it wrote. On a
 * write failure the failed batches' callbacks fire with STORE_EIO/STORE_ENOSPC,
 * the segment is cut back to its last whole record, and later appends work
 * again. Returns 0, or the first error code (already reported via callbacks). */
int store_commit(struct store *store);

/* True if store_commit() has work (appends not yet written, manifest dirty). */
int store_commit_pending(const struct store *store);

/* Periodic housekeeping with injected time "now_ms": at most once per
 * retention_check_ms, deletes whole segments whose newest record is older than
 * the stream's retention. Returns the number of segments deleted (>= 0). */
int store_tick(struct store *store, int64_t now_ms);

/* Completion callback: "err" is NULL on success, else the error (borrowed for
 * the call). */
typedef void (*store_done_fn)(void *arg, const struct store_err *err);

/* Calls "cb" (from a later store_dispatch/store_close) once every catalog
 * change made so far is in a durable manifest, or with the error if writing it
 * failed. */
void store_catalog_sync(struct store *store, store_done_fn cb, void *arg);

/* Histogram bounds (upper, inclusive) of store_stats: fsync latency in
 * seconds, group-commit size in records. */
#define STORE_FSYNC_BOUNDS 14
#define STORE_COMMIT_BOUNDS 12
extern const double store_fsync_bounds[STORE_FSYNC_BOUNDS];
extern const double store_commit_bounds[STORE_COMMIT_BOUNDS];

/* Counters for metrics and benchmarks. */
struct store_stats {
    uint64_t records_appended;
    uint64_t bytes_written; /* segment bytes written */
    uint64_t writes;        /* write(2) calls on segments */
    uint64_t fsyncs;        /* fsync calls by the syncer (segments+dirs) */
    uint64_t tail_bytes;    /* memory held by in-memory tails */
    uint64_t segments;      /* live segment files */
    /* Segment and directory fsyncs by duration; the last slot counts those
     * above every bound (not cumulative). */
    uint64_t fsync_buckets[STORE_FSYNC_BOUNDS + 1];
    double fsync_seconds;
    /* Group commits (store_commit calls that wrote records) by how many
     * records each wrote. */
    uint64_t commit_buckets[STORE_COMMIT_BOUNDS + 1];
    uint64_t commit_records;
    /* Bytes appended but not yet durable, over every shard: how far the
     * durable watermark trails the appends. */
    uint64_t durable_lag_bytes;
};
/* Fills "out"; walks every shard (for durable_lag_bytes). */
void store_stats(const struct store *store, struct store_stats *out);

struct store_stream;

/* What a stream's shards hold on disk: segment bytes and files. */
void store_stream_disk_usage(const struct store_stream *stream, uint64_t *bytes,
                             uint64_t *segments);

/* ======================================================================== */
/* Catalog: streams                                                         */
/* ======================================================================== */

#define STORE_STREAM_NAME_MAX 128
#define STORE_MAX_SHARDS 10000
#define STORE_MAX_TAGS 50
#define STORE_MAX_CONSUMERS 20
#define STORE_MAX_CONSUMERS_LIMIT 10000
#define STORE_RETENTION_MIN_HOURS 24
#define STORE_RETENTION_MAX_HOURS 8760

enum store_stream_status {
    STORE_STREAM_CREATING,
    STORE_STREAM_ACTIVE,
    STORE_STREAM_UPDATING,
    STORE_STREAM_DELETING
};

/* Returns "CREATING", "ACTIVE", "UPDATING" or "DELETING" (static). */
const char *store_stream_status_name(enum store_stream_status st);

struct store_stream;

/* A stream description; strings are borrowed until the next catalog change to
 * this stream (or its deletion). */
struct store_stream_info {
    const char *name;
    const char *arn; /* arn:aws:kinesis:<region>:<account>:stream/<name> */
    enum store_stream_status status;
    int64_t created_ms;
    uint32_t retention_hours;
    int on_demand;        /* capacity mode: 1 ON_DEMAND, 0 PROVISIONED */
    uint32_t shard_count; /* all shards, open and closed */
    uint32_t open_shard_count;
    uint32_t consumer_count;
    uint32_t consumers_creating; /* those in status CREATING */
    const char *encryption_type; /* "NONE", or "KMS" once a key id is recorded */
    const char *kms_key_id;      /* NULL unless "KMS" */
    uint32_t shard_metrics;      /* enhanced monitoring: a set of bits, see below */
    uint32_t max_record_kib;     /* largest record's data in KiB (UpdateMaxRecordSize) */
};

/* Creates stream "name" ([a-zA-Z0-9_.-]{1,128}) with "shard_count" (1..10000)
 * shards evenly splitting the hash space, status CREATING, retention 24 h,
 * creation time from the clock. "*out" borrows the new stream (valid until it
 * is deleted). Appends are accepted at once but held back (not readable, not
 * acknowledged) until the creation is durable (store_catalog_sync); if
 * writing it fails the stream is undone and they fail with STORE_ENOTFOUND.
 * Errors: STORE_EINVAL, STORE_EEXISTS. */
int store_stream_create(struct store *store, const char *name, uint32_t shard_count,
                        struct store_stream **out, struct store_err *err);

/* Deletes stream "name": it is gone from lookups at once; its segments are
 * removed and its pending appends fail (STORE_ENOTFOUND) once the deletion is
 * durable, or it comes back if writing the catalog fails (see CAVEATS).
 * STORE_ENOTFOUND. */
int store_stream_delete(struct store *store, const char *name, struct store_err *err);

/* Finds stream "name"; "*out" borrows it. STORE_ENOTFOUND. */
int store_stream_lookup(struct store *store, const char *name, struct store_stream **out,
                        struct store_err *err);

/* Finds a stream by ARN. STORE_ENOTFOUND. */
int store_stream_lookup_arn(struct store *store, const char *arn, struct store_stream **out,
                            struct store_err *err);

/* Number of streams. */
size_t store_stream_count(const struct store *store);

/* Lists up to "max" stream names in byte-wise lexical order, starting after
 * "exclusive_start" (NULL = from the first). "names" receives borrowed pointers
 * valid until the next catalog change. Returns how many were written. */
size_t store_stream_list(const struct store *store, const char *exclusive_start, const char **names,
                         size_t max);

/* Fills "out" (borrowing, see struct store_stream_info). */
void store_stream_info(const struct store_stream *stream, struct store_stream_info *out);

/* Sets the status field; the store attaches no behaviour to it (the gateway
 * drives CREATING -> ACTIVE -> DELETING). */
void store_stream_set_status(struct store_stream *stream, enum store_stream_status st);

/* Records the stream's capacity mode (1 ON_DEMAND, 0 PROVISIONED; default 0).
 * The store attaches no behaviour to it; it is persisted in the manifest. */
void store_stream_set_on_demand(struct store_stream *stream, int on_demand);

/* Records server-side encryption (StartStreamEncryption): "key_id" (1..2048
 * bytes, copied) makes the stream's encryption type KMS; NULL makes it NONE
 * again. The store encrypts nothing with it (see docs/protocol.md); it is
 * persisted in the manifest. STORE_EINVAL for a key id of a bad length. */
#define STORE_KMS_KEY_ID_MAX 2048
int store_stream_set_kms_key(struct store_stream *stream, const char *key_id,
                             struct store_err *err);

/* Records which shard-level metrics are enabled (EnableEnhancedMonitoring):
 * a set of bits the gateway assigns, bit i for its i-th metric name, below
 * STORE_SHARD_METRICS_ALL. The store attaches no behaviour to it; it is
 * persisted in the manifest like the retention. */
#define STORE_SHARD_METRICS_ALL 0xffu
void store_stream_set_shard_metrics(struct store_stream *stream, uint32_t mask);

/* Records the stream's largest record (UpdateMaxRecordSize) in KiB,
 * STORE_MAX_RECORD_KIB_MIN (the default) to STORE_MAX_RECORD_KIB_MAX;
 * persisted. The store itself takes records up to STORE_MAX_RECORD_DATA on
 * any stream: the gateway enforces the stream's size. STORE_EINVAL. */
#define STORE_MAX_RECORD_KIB_MIN 1024
#define STORE_MAX_RECORD_KIB_MAX 10240
int store_stream_set_max_record_kib(struct store_stream *stream, uint32_t kib,
                                    struct store_err *err);

/* Raises the retention to "hours". STORE_EINVAL if outside 24..8760 or lower
 * than the current value. */
int store_stream_retention_increase(struct store_stream *stream, uint32_t hours,
                                    struct store_err *err);

/* Lowers the retention to "hours". STORE_EINVAL if outside 24..8760 or higher
 * than the current value. Segments are trimmed by the next store_tick. */
int store_stream_retention_decrease(struct store_stream *stream, uint32_t hours,
                                    struct store_err *err);

/* A tag; strings borrowed (see the function using it). */
struct store_tag {
    const char *key;
    const char *value;
};

/* Adds or overwrites "n" tags atomically (the store copies them). Errors:
 * STORE_EINVAL (key 1..128 bytes, value 0..256 bytes), STORE_ELIMIT (more than
 * 50 tags would result; nothing changes). */
int store_stream_tags_add(struct store_stream *stream, const struct store_tag *tags, size_t n,
                          struct store_err *err);

/* Removes the tags with the given keys; unknown keys are ignored. */
void store_stream_tags_remove(struct store_stream *stream, const char *const *keys, size_t n);

/* Lists up to "max" tags in key order after "exclusive_start" (NULL = first);
 * strings borrowed until the next catalog change. Returns the count written. */
size_t store_stream_tags_list(const struct store_stream *stream, const char *exclusive_start,
                              struct store_tag *out, size_t max);

/* Number of tags. */
size_t store_stream_tag_count(const struct store_stream *stream);

/* A resource policy (PutResourcePolicy): a JSON text of 1..STORE_POLICY_MAX
 * bytes, copied, on the stream ("consumer" NULL) or on one of its consumers;
 * NULL removes it. The store enforces nothing with it; it is persisted.
 * STORE_ENOTFOUND (no such consumer), STORE_EINVAL (length, not UTF-8). */
#define STORE_POLICY_MAX 20480
int store_resource_policy_set(struct store_stream *stream, const char *consumer,
                              const char *policy, struct store_err *err);
/* The policy (borrowed until the next catalog change), NULL if none or if
 * "consumer" is not registered. */
const char *store_resource_policy_get(const struct store_stream *stream, const char *consumer);

/* Account-wide settings the gateway keeps (UpdateAccountSettings): a text
 * of 1..STORE_POLICY_MAX bytes of UTF-8 the store does not interpret,
 * copied and persisted in the catalog like any change; NULL removes them.
 * STORE_EINVAL (length, not UTF-8). */
int store_account_settings_set(struct store *store, const char *text, struct store_err *err);
/* The settings (borrowed until the next change), NULL if none. */
const char *store_account_settings(const struct store *store);

/* The same for a consumer's tags (TagResource on a consumer ARN), with the
 * same limits. STORE_ENOTFOUND if "consumer" is not registered on "stream". */
int store_consumer_tags_add(struct store_stream *stream, const char *consumer,
                            const struct store_tag *tags, size_t n, struct store_err *err);
int store_consumer_tags_remove(struct store_stream *stream, const char *consumer,
                               const char *const *keys, size_t n, struct store_err *err);
/* Lists into "out" (at most "max"; "*count" written). */
int store_consumer_tags_list(const struct store_stream *stream, const char *consumer,
                             const char *exclusive_start, struct store_tag *out, size_t max,
                             size_t *count, struct store_err *err);

/* ======================================================================== */
/* Catalog: consumers                                                       */
/* ======================================================================== */

enum store_consumer_status {
    STORE_CONSUMER_CREATING,
    STORE_CONSUMER_ACTIVE,
    STORE_CONSUMER_DELETING
};

/* Returns "CREATING", "ACTIVE" or "DELETING" (static). */
const char *store_consumer_status_name(enum store_consumer_status st);

/* A consumer description; strings borrowed until the next catalog change. */
struct store_consumer_info {
    const char *name;
    const char *arn; /* <stream ARN>/consumer/<name>:<creation epoch s> */
    enum store_consumer_status status;
    int64_t created_ms;
};

/* Registers consumer "name" ([a-zA-Z0-9_.-]{1,128}) with status CREATING and
 * the clock's time. Errors: STORE_EINVAL, STORE_EEXISTS, STORE_ELIMIT (20). */
int store_consumer_register(struct store_stream *stream, const char *name,
                            struct store_consumer_info *out, struct store_err *err);

/* Removes consumer "name". STORE_ENOTFOUND. */
int store_consumer_deregister(struct store_stream *stream, const char *name, struct store_err *err);

/* Finds consumer "name". STORE_ENOTFOUND. */
int store_consumer_lookup(const struct store_stream *stream, const char *name,
                          struct store_consumer_info *out, struct store_err *err);

/* Finds a consumer by ARN across all streams; "*stream_out" may be NULL.
 * STORE_ENOTFOUND. */
int store_consumer_lookup_arn(struct store *store, const char *arn,
                              struct store_stream **stream_out, struct store_consumer_info *out,
                              struct store_err *err);

/* Sets a consumer's status. STORE_ENOTFOUND. */
int store_consumer_set_status(struct store_stream *stream, const char *name,
                              enum store_consumer_status st, struct store_err *err);

/* Lists up to "max" consumers (registration order) from index "start".
 * Returns the count written. */
size_t store_consumer_list(const struct store_stream *stream, size_t start,
                           struct store_consumer_info *out, size_t max);

/* ======================================================================== */
/* Shards and routing                                                       */
/* ======================================================================== */

/* Buffer size for a shard id: "shardId-" + 12 digits + NUL. */
#define STORE_SHARD_ID_STRLEN 21

/* A shard description; strings borrowed until the stream is deleted. */
struct store_shard_info {
    const char *id; /* shardId-%012u */
    uint32_t index;
    struct store_hashkey hash_start; /* inclusive */
    struct store_hashkey hash_end;   /* inclusive */
    struct store_seq starting_seq;
    int has_ending_seq; /* closed shards only */
    struct store_seq ending_seq;
    const char *parent_id;          /* NULL if none */
    const char *adjacent_parent_id; /* NULL if none */
    int open;
    int64_t closed_ms;              /* when a reshard closed it; 0 while open */
};

/* Number of shards (open and closed). */
uint32_t store_stream_shard_count(const struct store_stream *stream);

/* Returns shard "index" (borrowed), or NULL if out of range. */
struct store_shard *store_stream_shard(struct store_stream *stream, uint32_t index);

/* Finds a shard by its id "shardId-NNNNNNNNNNNN" (also accepts a shorter
 * zero-padded or unpadded number after the dash). STORE_ENOTFOUND/EINVAL. */
int store_stream_shard_lookup(struct store_stream *stream, const char *shard_id,
                              struct store_shard **out, struct store_err *err);

/* Routes a hash key to the open shard whose range contains it. Cannot fail for
 * a stream whose open shards cover the space; STORE_ENOTFOUND otherwise. */
int store_stream_route(struct store_stream *stream, const struct store_hashkey *hk,
                       struct store_shard **out, struct store_err *err);

/* Fills "out" (borrowing). */
void store_shard_info(const struct store_shard *shard, struct store_shard_info *out);

/* Returns 0 if the shard is usable, or its error (STORE_ECORRUPT when it was
 * taken offline at open), filling "err". */
int store_shard_check(const struct store_shard *shard, struct store_err *err);

/* ======================================================================== */
/* Resharding                                                               */
/* ======================================================================== */

/* Shards one stream may have over its life, open and closed (indices are
 * never reused). */
#define STORE_MAX_SHARD_TOTAL 1000000

/* Each call below is one catalog change, in memory at once: the shards it
 * closes refuse appends (STORE_ESTATE) and routing skips them; the shards it
 * adds take the next free indices, start at (generation, index, 0), and take
 * appends at once, held back (neither readable nor acknowledged) until the
 * change is durable. A crash leaves the old shards or the new ones, never a
 * mix. A closed shard keeps its records (until retention) and gets an
 * ending sequence number: the last it handed out, or its starting one if it
 * never held a record. "on_done" (may be NULL) fires once the change is
 * durable and every append made to the closed shards before the call has
 * been acknowledged (or has failed), so a reply sent from it comes after
 * every record the closed shards will ever acknowledge; or with the error if
 * the catalog write failed (then the change is undone: the new shards
 * vanish, their pending appends fail with STORE_ENOTFOUND, the closed ones
 * reopen). On the jetstream backend the ending number is the stream
 * sequence of the reshard's fence (known a moment after the call), appends
 * racing the reshard (from any gateway) are acknowledged only if stored
 * below it and fail with STORE_EUNAVAIL otherwise, and the change fails with
 * STORE_ECONFLICT if another gateway's catalog change came first. Errors
 * (nothing changed): STORE_EINVAL, STORE_ESTATE (a shard is closed),
 * STORE_ECORRUPT (a shard is offline), STORE_ELIMIT (STORE_MAX_SHARD_TOTAL),
 * STORE_ENOTFOUND (the stream is being deleted). */

/* Splits open "shard" at "new_start" (start < new_start <= end): children
 * [start, new_start-1] and [new_start, end], both with parent "shard". */
int store_stream_split(struct store_stream *stream, struct store_shard *shard,
                       const struct store_hashkey *new_start, store_done_fn on_done, void *arg,
                       struct store_err *err);

/* Merges open "shard" with open "adjacent" (contiguous ranges, either
 * order): one child with the union, parent "shard", adjacent parent
 * "adjacent". */
int store_stream_merge(struct store_stream *stream, struct store_shard *shard,
                       struct store_shard *adjacent, store_done_fn on_done, void *arg,
                       struct store_err *err);

/* Reaches exactly "target" (1..STORE_MAX_SHARDS) open shards whose ranges
 * are store_hashkey_uniform_split's, by splits and merges done together
 * (shards created and closed within the call hold no records). Already
 * there: nothing changes, "on_done" fires after the catalog sync. */
int store_stream_scale(struct store_stream *stream, uint32_t target, store_done_fn on_done,
                       void *arg, struct store_err *err);

/* Range "i" of "n" under the uniform split used by store_stream_scale:
 * start = floor(i * 2^128 / n), so sizes differ by at most one. */
void store_hashkey_uniform_split(uint32_t n, uint32_t i, struct store_hashkey *start,
                                 struct store_hashkey *end);

/* 1 if "shard" is closed and a read from "pos" will never return a record:
 * every record it holds is readable and "pos" is past the last. */
int store_shard_at_end(const struct store_shard *shard, const struct store_pos *pos);

/* The shards created from "shard" by a split or merge (at most "max",
 * borrowed); returns how many. */
size_t store_shard_children(const struct store_shard *shard, const struct store_shard **out,
                            size_t max);

/* ======================================================================== */
/* Append                                                                   */
/* ======================================================================== */

/* Bytes: Kinesis allows 256 characters, which UTF-8 may spend 4 bytes each on. */
#define STORE_MAX_PARTITION_KEY 1024
#define STORE_MAX_RECORD_DATA (STORE_MAX_RECORD_KIB_MAX * 1024)
#define STORE_MAX_BATCH 10000

/* One record to append; everything is borrowed for the duration of the call. */
struct store_record_in {
    struct store_bytes partition_key;              /* 1..1024 bytes */
    const struct store_hashkey *explicit_hash_key; /* NULL if none; stored, not checked */
    struct store_bytes data;                       /* 0..1 MiB */
};

/* Appends "n" records (1..STORE_MAX_BATCH) to "shard" as one batch. Sequence
 * numbers are written to "seqs" (n entries; may be NULL) at the latest when
 * "on_done" fires without error, so "seqs" must stay valid until then: the
 * embedded backend assigns them at once, the jetstream backend learns them
 * from JetStream's acknowledgements. Arrival time is the clock's time, kept
 * non-decreasing per shard.
 * Nothing is written until store_commit(). "on_done" (may be NULL) fires once,
 * from store_commit/store_dispatch/store_close, when the batch is acknowledged
 * per the durability mode (err NULL) or has failed (STORE_EIO, STORE_ENOSPC,
 * STORE_ENOTFOUND if the stream was deleted; jetstream: STORE_EUNAVAIL when
 * JetStream did not confirm it in time, STORE_EINVAL when it refused it); a
 * failed batch is never readable (jetstream: unless JetStream kept a record
 * whose confirmation was lost, as with any at-least-once producer). Immediate errors (nothing appended, no callback): STORE_EINVAL (a
 * limit above), STORE_ESTATE (shard closed), STORE_ECORRUPT (shard offline). */
int store_shard_append(struct store_shard *shard, const struct store_record_in *recs, size_t n,
                       struct store_seq *seqs, store_done_fn on_done, void *arg,
                       struct store_err *err);

/* ======================================================================== */
/* Listeners                                                                */
/* ======================================================================== */

/* Called from store_commit/store_dispatch after new records of "shard" became
 * readable (once per shard per call, however many batches). */
typedef void (*store_listener_fn)(void *arg, struct store_shard *shard);

struct store_listener;

/* Attaches a listener; returns new (detach with store_listener_remove).
 * A shard without listeners pays nothing for notification. */
struct store_listener *store_shard_listen(struct store_shard *shard, store_listener_fn fn,
                                          void *arg);

/* Detaches and frees a listener; safe inside its own callback. Accepts NULL. */
void store_listener_remove(struct store_listener *l);

/* ======================================================================== */
/* Read                                                                     */
/* ======================================================================== */

enum store_pos_type {
    STORE_POS_TRIM_HORIZON,
    STORE_POS_LATEST,
    STORE_POS_AT_SEQUENCE,
    STORE_POS_AFTER_SEQUENCE,
    STORE_POS_AT_TIMESTAMP
};

/* A record view. "partition_key" and "data" are borrowed: valid until the
 * next store_shard_read on the same cursor or store_cursor_free. */
struct store_record {
    struct store_seq seq;
    int64_t arrival_ms;
    struct store_bytes partition_key;
    struct store_bytes data;
    int has_explicit_hash_key;
    struct store_hashkey explicit_hash_key;
};

struct store_cursor;

/* Returns a new cursor (a read buffer); free with store_cursor_free. A cursor
 * may be used on any shard, one read at a time. */
struct store_cursor *store_cursor_new(void);

/* Frees a cursor and releases what its views borrow. Accepts NULL. */
void store_cursor_free(struct store_cursor *cur);

/* Releases what the cursor's views borrow (they become invalid), keeping the
 * cursor for further reads: what a reader that may stall for long calls after
 * each read, so it pins no tail memory meanwhile. */
void store_cursor_release(struct store_cursor *cur);

/* Resolves a position of "type" in "shard":
 *   TRIM_HORIZON          the oldest retained record;
 *   LATEST                just after the newest readable record;
 *   AT_/AFTER_SEQUENCE    "seq" (must carry this shard's index, else
 *                         STORE_EINVAL); below the trim point = oldest record;
 *   AT_TIMESTAMP          the first readable record with arrival >= "ts_ms",
 *                         or LATEST if there is none.
 * "seq" is ignored unless AT_/AFTER_SEQUENCE (then non-NULL). Errors:
 * STORE_EINVAL, STORE_ECORRUPT (offline shard), STORE_EIO (segment read). */
int store_shard_position(struct store_shard *shard, enum store_pos_type type,
                         const struct store_seq *seq, int64_t ts_ms, struct store_pos *out,
                         struct store_err *err);

/* Reads up to "max_records" records (>= 1) from position "from", stopping
 * before the partition-key+data total would exceed "max_bytes" (but always
 * returning at least one record if one is readable). "*records" borrows an
 * array of "*n" views (see struct store_record). "*next" is the position to
 * continue from (equal to "from" when nothing was read). "*millis_behind"
 * (may be NULL) is how far the newest readable record's arrival is ahead of the
 * last record returned (0 at the tip). Returns 0 with *n == 0 when nothing new
 * is readable. Recent records come from memory; older ones from segments.
 * Errors: STORE_ECORRUPT, STORE_EIO, STORE_EINVAL (position of another shard). */
int store_shard_read(struct store_shard *shard, struct store_cursor *cur,
                     const struct store_pos *from, size_t max_records, size_t max_bytes,
                     const struct store_record **records, size_t *n, struct store_pos *next,
                     int64_t *millis_behind, struct store_err *err);

/* Watermarks of a shard: "*has_readable" is 0 if the shard has no readable
 * record; otherwise "*last_readable" is the newest readable sequence number.
 * Either output may be NULL. */
void store_shard_latest(const struct store_shard *shard, int *has_readable,
                        struct store_seq *last_readable);

/* ======================================================================== */
/* Subscriptions across gateways                                            */
/* ======================================================================== */

/* One SubscribeToShard per consumer and shard holds across gateways sharing
 * a JetStream: each gateway announces the subscriptions it starts and ends,
 * and learns of the others'. On the embedded backend these do nothing (one
 * gateway sees all its subscriptions itself). */

/* 1 if another gateway runs a subscription of "consumer_arn" to "shard" that
 * it started at or after "since_ms" (wall clock) and has not ended; else 0. */
int store_sub_elsewhere(const struct store_shard *shard, const char *consumer_arn,
                        int64_t since_ms);

/* This gateway started a subscription of "consumer_arn" to "shard" at
 * "started_ms": another gateway's subscription of the same pair ends there
 * (store_opts.on_sub_taken), unless it started later. */
void store_sub_claim(struct store_shard *shard, const char *consumer_arn, int64_t started_ms);

/* This gateway's subscription of "consumer_arn" to "shard" ended. */
void store_sub_release(struct store_shard *shard, const char *consumer_arn);

#endif
