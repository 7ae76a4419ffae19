/* internal.h - the store's private types, shared by its .c files only.
 *
 * Never included from gateway/. Holds the definitions behind the opaque
 * handles of store.h (struct store, store_stream, store_shard, store_cursor's
 * helpers) plus the in-memory pieces they are built from: segments (one file
 * each), chunks (the in-memory tail) and append tickets. Functions are grouped
 * by the .c file that defines them. All of it is touched by the loop thread
 * only; the syncer thread sees nothing but syncer.h's queues and the catalog
 * writer (struct cat_writer, catalog.c), which it owns after store_open.
 */
#ifndef SLUICE_STORE_INTERNAL_H
#define SLUICE_STORE_INTERNAL_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "syncer.h"

/* ---- util.c --------------------------------------------------------------- */

void *store_i_xmalloc(size_t n);
void *store_i_xcalloc(size_t n, size_t size);
void *store_i_xrealloc(void *p, size_t n);
char *store_i_xstrdup(const char *s);

/* Fills "err" (if not NULL) with "code" and a formatted message; returns code. */
int store_i_err_set(struct store_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps an errno value to STORE_ENOSPC (ENOSPC, EDQUOT) or STORE_EIO. */
int store_i_err_from_errno(int errnum);
/* store_i_err_set with code store_i_err_from_errno(errnum) and ": strerror" appended. */
int store_i_err_errno(struct store_err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void store_i_log(struct store *s, enum store_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Formats one log event (up to 511 bytes) and hands it to "fn" (NULL: none). */
void store_i_logv(store_log_fn fn, void *arg, enum store_log_level lvl, const char *fmt,
                  va_list ap) __attribute__((format(printf, 4, 0)));
int64_t store_i_now(struct store *s);

/* Real syscalls behind struct store_io_ops. */
extern const struct store_io_ops store_i_default_io;

/* Writes all "len" bytes (retrying short writes) through "io"; 0 or errno. */
int store_i_io_write_all(const struct store_io_ops *io, int fd, const void *buf, size_t len);

/* ---- segment.c: the descriptor cache --------------------------------------- */

/* Descriptors the store keeps open between calls (a segment's write fd, a
 * shard's read fd) are cache entries: the store may hold at most
 * store_opts.max_fds descriptors, and a shard count beyond that must not make
 * appends or reads fail. An entry is a node in one of two circular lists: the
 * LRU (least recently used first, evictable) or "pinned" (in use by the
 * running store_commit: a sync item borrows the segment's write fd until
 * store_i_syncer_post dups it, so it must not be closed before then). Eviction closes
 * the descriptor and sets the owner's field ("*fdp") to -1; the owner reopens
 * by path when it needs it again. */
struct fd_node {
    struct fd_node *prev, *next;
    int *fdp;               /* the owner's descriptor field */
    struct fd_cache *cache; /* NULL while not cached (descriptor closed) */
    int pinned;             /* on the pinned list */
    int close_on_unpin;     /* sealed while pinned: close, not cache, at unpin */
};

struct fd_cache {
    struct fd_node lru;     /* sentinel; lru.next is the eviction candidate */
    struct fd_node pinned;  /* sentinel */
    uint32_t open;          /* descriptors in both lists */
    uint32_t syncing;       /* dups held by the syncer (unmerged items in flight) */
    uint32_t budget;        /* open + syncing stays at or below this between calls */
    uint64_t evictions;
    int starved;            /* an open or a dup failed with EMFILE/ENFILE */
    int pressure;           /* pressure_ms is set */
    int64_t pressure_ms;    /* when starvation was last noticed (store clock) */
};

/* Descriptors the store holds outside the cache: the data directory, the
 * segments directory, LOCK, the syncer's eventfd, and the syncer's catalog
 * or manifest file while it writes one (two, with the directory it syncs). */
#define STORE_FIXED_FDS 6u
/* The smallest store_opts.max_fds: the fixed ones plus one write and one
 * read descriptor, with one to spare for a scan or a manifest write. */
#define STORE_MIN_FDS (STORE_FIXED_FDS + 3u)

void store_i_fdc_init(struct fd_cache *c, uint32_t budget);
/* Caches "*fdp" (open) under node "n", most recently used. */
void store_i_fdc_add(struct fd_cache *c, struct fd_node *n, int *fdp);
/* Marks a use: moves "n" to the most-recently-used end (pinned stays pinned). */
void store_i_fdc_touch(struct fd_node *n);
/* Protects "n" from eviction until store_i_fdc_unpin_all. */
void store_i_fdc_pin(struct fd_node *n);
/* Returns every pinned entry to the LRU (most recent end), then evicts down
 * to the budget. */
void store_i_fdc_unpin_all(struct fd_cache *c);
/* Closes the entry's descriptor (if open) and forgets it. Safe on a node
 * that is not cached. */
void store_i_fdc_close(struct fd_node *n);
/* Before store_commit hands "n" sync items to the syncer (which dups each
 * descriptor): room in the budget, and after a recent EMFILE, room in the
 * process too. */
void store_i_fdc_before_post(struct store *s, uint32_t n);

/* ---- segment.c ------------------------------------------------------------ */

#define SEG_MAGIC "SLUICESG"
#define SEG_HDR_SIZE 16u
#define SEG_INDEX_EVERY 65536u /* one sparse-index entry per this many bytes */

struct seg_index_ent {
    struct store_seq seq;
    int64_t arrival;
    uint64_t off; /* file offset of the frame */
};

/* One segment file of one shard. Frames in [SEG_HDR_SIZE, size) are whole. */
struct segment {
    struct segment *prev, *next; /* shard's list, in sequence order */
    char *path;
    uint64_t id;             /* unique within the store (syncer dedupe) */
    int fd;                  /* write fd while active and cached, else -1 */
    struct fd_node fdn;      /* fd's entry in the store's descriptor cache */
    uint64_t size;           /* file size: header + whole frames */
    uint64_t nrec;
    struct store_seq first, last;
    int64_t first_arrival, last_arrival;
    struct seg_index_ent *idx;
    size_t nidx, idxcap;
    uint64_t next_idx_off;   /* the next frame at/after this offset gets an entry */
    int has_lsn;             /* written by this process: lsn_start is meaningful */
    uint64_t lsn_start;      /* shard lsn of the first frame byte */
};

struct store_shard;

/* Creates the segment file for a shard whose first record will be "first",
 * writes its header and opens it for appending. Errors: STORE_EIO/ENOSPC. */
int store_i_segment_create(struct store_shard *sh, struct store_seq first, struct segment **out,
                           struct store_err *err);
/* Writes "len" bytes of whole frames (offsets "offs", "n" of them) at the end
 * of "seg" through its write fd (open), then indexes them and advances
 * seg->size. Returns 0, or the errno of a failed write: then seg is unchanged
 * in memory but the file may hold part of the frames, so the caller cuts it
 * back to seg->size (store_i_segment_cut). */
int store_i_segment_append(struct store *s, struct segment *seg, const uint8_t *buf, size_t len,
                           const uint32_t *offs, uint32_t n);
/* Reopens the active segment's evicted write fd (O_APPEND: writes land at
 * the end, which is seg->size). Errors: STORE_EIO (EMFILE included). */
int store_i_segment_reopen(struct store_shard *sh, struct segment *seg, struct store_err *err);
/* Cuts "seg" back to "size" bytes, then fsyncs it (the cut is durable before
 * anything relies on it). Returns 0 or -1 (errno set). */
int store_i_segment_cut(struct store *s, struct segment *seg, uint64_t size);
/* Deletes the segment's file; the struct stays (store_i_segment_free). */
void store_i_segment_delete_file(const struct segment *seg);
/* Opens "seg"'s file read-only through the descriptor cache: the fd, or -1
 * with "err" set. */
int store_i_segment_open_read(struct store *s, const struct segment *seg, struct store_err *err);
/* 1 if segment file "name" (in the segments directory) is longer than its
 * header, judged by its size alone; 0 if not or if it cannot be stat'ed. */
int store_i_segment_file_has_data(struct store *s, const char *name);
/* Moves segment file "name" (one no stream owns, found at open) into
 * <dir>/quarantine/<open time ms>-g<generation>/, created and fsynced on
 * first use; "*qfd" (-1 at first) caches that directory. Logged at WARN.
 * Errors: STORE_EIO/ENOSPC. */
int store_i_segment_quarantine(struct store *s, int *qfd, const char *name,
                               struct store_err *err);
/* After the last store_i_segment_quarantine: fsyncs the quarantine and
 * segments directories (the moves become durable) and closes "qfd". */
void store_i_segment_quarantine_done(struct store *s, int qfd);
/* Closes the write fd (the file stays). While a sync item of the running
 * commit borrows it (pinned), the close waits for store_i_fdc_unpin_all. */
void store_i_segment_seal(struct segment *seg);
/* Frees memory (closes the fd, leaves the file). Accepts NULL. */
void store_i_segment_free(struct segment *seg);

enum scan_outcome { SCAN_OK, SCAN_EMPTY, SCAN_CORRUPT, SCAN_IOERR };
/* Verifies every frame of "seg" (path set, fd -1), builds its metadata and
 * index, cuts a torn tail (logged) if "may_tear". "prev_last"/"has_prev"
 * order-checks against the previous segment. Only a shard's last segment
 * (no records after it) can have been cut short by a crash; a damaged end of
 * any other is SCAN_CORRUPT and the file is left intact. SCAN_EMPTY: no
 * frames (caller deletes the file). */
enum scan_outcome store_i_segment_scan(struct store_shard *sh, struct segment *seg, int has_prev,
                                       struct store_seq prev_last, int may_tear,
                                       struct store_err *err);
/* Offset of the last indexed frame with seq <= "seq" (or the first frame). */
uint64_t store_i_segment_index_seq(const struct segment *seg, struct store_seq seq);
/* Offset of the last indexed frame with arrival < "ts" (or the first frame). */
uint64_t store_i_segment_index_time(const struct segment *seg, int64_t ts);
/* Parses a segment file name; 0 on success, -1 if it is not one. */
int store_i_segment_parse_name(const char *name, uint64_t *uid, uint32_t *shard,
                               struct store_seq *first);

/* ---- shard.c -------------------------------------------------------------- */

/* A run of encoded frames: the write buffer before store_commit, then part of
 * the in-memory tail. Views handed to readers borrow "buf"; "refs" counts the
 * tail's own reference plus each cursor holding views into it. */
struct chunk {
    struct chunk *prev, *next;   /* shard tail list, sequence order */
    struct chunk *gprev, *gnext; /* store-wide FIFO of written chunks (eviction) */
    struct store_shard *shard;   /* NULL once detached */
    int refs;
    int written;
    int published;               /* readable: store_i_shard_publish passed it */
    int new_segment;             /* writing it must start a new segment */
    uint64_t lsn;                /* shard lsn of buf[0] */
    uint8_t *buf;
    size_t len, cap;
    uint32_t *off;               /* frame offsets in buf */
    uint32_t n, offcap;
    struct store_seq first, last;
    int64_t first_arrival, last_arrival;
};

void store_i_chunk_unref(struct chunk *c);

struct ticket {
    uint64_t lsn_end;
    store_done_fn cb;
    void *arg;
};

struct store_listener {
    struct store_listener *prev, *next;
    struct store_shard *shard;
    store_listener_fn fn;
    void *arg;
};

struct store_shard {
    struct store *store;
    struct store_stream *stream;
    uint32_t index;
    char id[STORE_SHARD_ID_STRLEN];
    struct store_hashkey hk_start, hk_end;
    struct store_seq start_seq;
    int has_end;
    struct store_seq end_seq;
    char parent[STORE_SHARD_ID_STRLEN], adj_parent[STORE_SHARD_ID_STRLEN];
    int64_t closed_ms;            /* when a reshard closed it (0 while open) */
    int pending;                  /* created by a reshard not yet durable: held back */
    /* jetstream: closed, but this gateway's copy may still lack records
     * below its end (the copy has not passed it yet) */
    int js_tail_open;
    /* jetstream: closed by a reshard of ours whose fence JetStream has not
     * acknowledged yet: end_seq is not known */
    int js_fence_wait;
    /* jetstream: stream sequence of the lowest fence in force naming it (0:
     * none): its copy refuses records stored after it */
    uint64_t js_fenced_at;
    int offline;
    struct store_err offline_err;

    /* assignment */
    uint64_t next_counter;
    int64_t last_arrival;

    struct {
        struct segment *head, *tail, *active;
        size_t n;
        uint64_t fill;            /* bytes in the active segment incl. pending */
    } seg;

    struct {
        struct chunk *head, *tail;
        struct chunk *unpub;      /* first chunk not yet readable (or NULL) */
        struct chunk *pending;    /* first chunk not yet written (or NULL) */
        uint64_t bytes;           /* memory of chunks in this list */
    } tail;

    /* lsn = bytes of frames appended by this process to this shard */
    uint64_t lsn_appended, lsn_written, lsn_durable, lsn_published;
    uint64_t epoch;               /* bumped when written data is discarded */

    struct {
        struct ticket *v;
        size_t head, len, cap;
    } tickets;

    int has_pub;
    struct store_seq last_pub;
    int64_t last_pub_arrival;
    struct store_pos horizon;     /* records below it are trimmed */
    int has_durable;
    struct store_seq last_durable;

    struct store_listener *listeners;
    int inflight;                 /* sync items in the syncer for this shard */
    int deleted;
    struct store_shard *znext;    /* store zombie list */
    int notify_marked;
    struct store_shard *notify_next;
    int commit_marked;
    struct store_shard *commit_next;
    int js_refs;                  /* jetstream appends in flight (keeps a zombie) */
    size_t chunk_hint;            /* bytes of the last chunk written: a new one's size */
    struct store_shard *done_next; /* store_commit's list of written shards: a
                                    * callback's append may relink commit_next */

    int rfd;                      /* read fd of rfd_seg (-1 once evicted) */
    struct segment *rfd_seg;
    struct fd_node rfdn;          /* rfd's entry in the store's descriptor cache */
};

struct store_shard *store_i_shard_new(struct store *s, struct store_stream *st, uint32_t index);
/* The last sequence number "sh" handed out (records not yet durable
 * included, trimmed ones too); 0 if it never held a record. */
int store_i_shard_last_assigned(const struct store_shard *sh, struct store_seq *out);
/* Queues "cb" to fire (with NULL, or an error if they fail) once every
 * append made to "sh" so far is acknowledged. Returns 1, or 0 (nothing
 * queued, "cb" never fires) when nothing is outstanding. */
int store_i_shard_barrier(struct store_shard *sh, store_done_fn cb, void *arg);
/* Frees a shard (fails its tickets with STORE_ENOTFOUND first). */
void store_i_shard_free(struct store_shard *sh);
/* Stream deletion: drops the in-memory tail and deletes the segment files.
 * The tickets fail later, in store_i_shard_free (the shard is a zombie till
 * then). */
void store_i_shard_destroy_data(struct store_shard *sh);
/* Writes a shard's pending chunks (store_commit). Returns 0 or error code. */
int store_i_shard_commit(struct store_shard *sh, struct sync_item_vec *items);
/* Publishes up to "lsn" and marks listeners; the caller fires the tickets
 * (store_i_shard_fire_tickets up to lsn_published) after the listeners. */
void store_i_shard_publish(struct store_shard *sh, uint64_t lsn);
void store_i_shard_fire_tickets(struct store_shard *sh, uint64_t lsn, const struct store_err *err);
/* Handles an fsync failure: discard everything past lsn_durable. */
void store_i_shard_sync_failed(struct store_shard *sh, int errnum);
void store_i_shard_fire_listeners(struct store_shard *sh);
/* Queues the shard's listeners for the next firing (store.c fires the
 * queue): readers of a shard that just closed must learn of its end. */
void store_i_shard_mark_notify(struct store_shard *sh);
/* Deletes expired segments; returns the count. */
int store_i_shard_trim(struct store_shard *sh, int64_t cutoff_ms);
/* Opens (cached) a read fd for "seg"; -1 with err on failure. An open that
 * fails for want of descriptors leaves the shard usable: the next read
 * retries. */
int store_i_shard_read_fd(struct store_shard *sh, struct segment *seg, struct store_err *err);
void store_i_shard_unlink_chunk(struct store_shard *sh, struct chunk *c);

/* ---- stream.c ------------------------------------------------------------- */

__extension__ typedef unsigned __int128 u128;
/* A hash key as a number and back. */
u128 store_i_hk_get(const struct store_hashkey *hk);
void store_i_hk_put(struct store_hashkey *hk, u128 v);

struct tag {
    char *key, *value;
};

struct consumer {
    char *name, *arn;
    enum store_consumer_status status;
    int64_t created_ms;
    struct tag *tags; /* sorted by key */
    size_t ntags;
    char *policy;     /* resource policy (PutResourcePolicy); NULL none */
};

struct store_stream {
    struct store *store;
    char *name, *arn;
    uint64_t uid;
    enum store_stream_status status;
    int64_t created_ms;
    uint32_t retention_hours;
    int on_demand;                /* capacity mode: ON_DEMAND (1) or PROVISIONED */
    uint32_t shard_metrics;       /* enhanced monitoring bits (store_stream_set_shard_metrics) */
    uint32_t max_record_kib;      /* UpdateMaxRecordSize (store_stream_set_max_record_kib) */
    char *kms_key_id;             /* NULL: encryption NONE */
    char *policy;                 /* resource policy (PutResourcePolicy); NULL none */
    struct store_shard **shards;  /* by index: shards[i]->index == i */
    uint32_t nshards, shardcap;
    struct store_shard **open;    /* the open shards by hash range (routing) */
    uint32_t nopen;
    struct tag *tags;             /* sorted by key */
    size_t ntags;
    struct consumer *consumers;   /* registration order */
    size_t nconsumers, consumercap;
    uint32_t *chash;              /* open addressing: index+1 into consumers, 0 empty */
    size_t chashcap;              /* power of two, > 2 * nconsumers */
    uint32_t consumers_creating;
    uint32_t shard_gen;           /* generation of the shards' start sequence numbers */
    int pending_create;           /* its creation is not yet durable (catalog.c) */
    int deleting;                 /* deleted, the deletion not yet durable */
    struct js_feed *feed;         /* jetstream backend: what copies its records here */
};

struct store_stream *store_i_stream_new(struct store *s, const char *name, uint64_t uid);
void store_i_stream_free(struct store_stream *st);
int store_i_stream_name_valid(const char *name);
void store_i_stream_set_arn(struct store_stream *st);
/* Rebuilds st->open from the shards (after any change to which are open). */
void store_i_stream_index_open(struct store_stream *st);
void store_i_stream_tag_put(struct store_stream *st, const char *key, const char *value);
/* Sets a tag of consumer "name" (manifest loading; nothing recorded). */
void store_i_stream_consumer_tag_put(struct store_stream *st, const char *name, const char *key,
                                     const char *value);
void store_i_tags_free(struct tag *tags, size_t ntags);
void store_i_stream_consumer_policy_put(struct store_stream *st, const char *name,
                                        const char *policy);
/* Frees what a consumer owns (name, ARN, tags, policy), not the struct. */
void store_i_consumer_clear(struct consumer *c);
void store_i_stream_consumer_put(struct store_stream *st, const char *name, const char *arn,
                                 enum store_consumer_status status, int64_t created_ms);
/* Forgets every tag and consumer (a replicated catalog rebuilds them). */
void store_i_stream_catalog_reset(struct store_stream *st);
struct cat_change;
/* Undoes one catalog change (store_i_catalog_rollback, newest first). */
void store_i_stream_undo(struct store *s, struct cat_change *c);

/* ---- catalog.c ------------------------------------------------------------ */

enum cat_kind {
    CAT_CREATE, CAT_DELETE, CAT_STATUS, CAT_ON_DEMAND, CAT_RETENTION, CAT_TAGS,
    CAT_CONSUMER_ADD, CAT_CONSUMER_DEL, CAT_CONSUMER_STATUS, CAT_SHARD_METRICS,
    CAT_KMS_KEY, CAT_CONSUMER_TAGS, CAT_POLICY, CAT_RESHARD, CAT_ACCOUNT, CAT_MAX_RECORD
};

/* A catalog change not yet durable: its log record until handed to the
 * syncer, and what undoes it in memory. */
struct cat_change {
    uint64_t version;
    enum cat_kind kind;
    struct store_stream *st;     /* kept alive while a DELETE is pending; NULL for ACCOUNT */
    char *rec;                   /* NULL once posted */
    size_t len;
    int old_int;                 /* STATUS, ON_DEMAND, RETENTION, CONSUMER_STATUS,
                                  * SHARD_METRICS, MAX_RECORD */
    char *old_str;               /* KMS_KEY, POLICY, ACCOUNT: the value before (owned; NULL none) */
    struct tag *old_tags;        /* TAGS, CONSUMER_TAGS: the whole tag set before */
    size_t old_ntags;
    struct consumer cons;        /* CONSUMER_DEL: the removed consumer (owned) */
    size_t cons_index;
    char *cname;                 /* CONSUMER_ADD, CONSUMER_STATUS */
    uint32_t new_n;              /* RESHARD: shard count after (old_int: before) */
    uint32_t *idx;               /* RESHARD: the shards it closed (owned) */
    size_t nidx;
};

struct cat_q {
    struct cat_change *v;
    size_t head, n, cap;
};

/* A record handed to the syncer (it frees "data"). */
struct cat_rec {
    char *data;
    size_t len;
    uint64_t version;
};

struct cat_writer;

/* Loads MANIFEST and the logs into "s" (streams, generation bumped), writes a
 * fresh snapshot and returns the writer for the syncer thread. */
int store_i_catalog_open(struct store *s, struct cat_writer **out, struct store_err *err);
/* Queues a change (bumping catalog_version); takes "rec" (the "stream" field
 * is added). Returns the entry so the caller can fill in the undo. */
struct cat_change *store_i_catalog_record(struct store *s, enum cat_kind kind,
                                          struct store_stream *st, json_t *rec);
/* Replaces the change's serialised record with "rec" (taken). */
void store_i_catalog_change_rec(struct cat_change *c, json_t *rec);
/* Moves the records not yet handed to the syncer into "*out" (new array). */
size_t store_i_catalog_take_unposted(struct store *s, struct cat_rec **out);
/* Drops the undo of changes up to "version" (now durable). */
void store_i_catalog_durable(struct store *s, uint64_t version);
/* Undoes every change not yet durable, newest first. */
/* store.c: a catalog write failed: waiters of durable changes succeed, the
 * rest is undone and its waiters get "e". */
void store_i_catalog_failed(struct store *s, const struct store_err *e);
void store_i_catalog_rollback(struct store *s);
void store_i_catalog_free(struct store *s);
/* Applies one change record to a catalog tree (the MANIFEST's form); -1 with
 * "why" when it does not fit. */
int store_i_catalog_tree_apply(json_t *tree, json_t *rec, char *why, size_t whylen);
/* A stream object's "shards" array, spelt out first if it is in the short
 * even-split form; NULL if malformed. */
json_t *store_i_catalog_tree_shards(json_t *st);
/* Builds stream "name" from its tree object "o" and inserts it into the
 * store ("*out", may be NULL, borrows it). STORE_ECORRUPT names "path". */
int store_i_catalog_build_stream(struct store *s, const char *name, json_t *o, const char *path,
                                 struct store_stream **out, struct store_err *err);
/* Syncer thread: appends and fsyncs "n" records, applies them to its tree,
 * compacts when due. errno or 0; on failure the log is as before. */
int store_i_cat_writer_append(struct cat_writer *w, struct cat_rec *recs, size_t n);
void store_i_cat_writer_free(struct cat_writer *w);

/* ---- store.c -------------------------------------------------------------- */

struct catalog_waiter {
    uint64_t version;
    store_done_fn cb;
    void *arg;
};

struct store {
    char *dir, *segdir;
    int dir_fd, seg_dir_fd, lock_fd;
    struct store_opts opts;
    char region[64], account[16];
    struct store_io_ops io;
    uint32_t gen;
    uint64_t next_uid;
    uint64_t next_seg_id;

    struct store_stream **streams; /* sorted by name */
    size_t nstreams, streamcap;

    struct {
        struct chunk *head, *tail;
        uint64_t bytes;
    } fifo;

    struct store_shard *commit_list;
    struct store_shard *notify_list;
    struct store_shard *zombies;

    struct syncer *syncer;

    uint64_t catalog_version;    /* bumped by each catalog change */
    uint64_t manifest_posted;    /* version handed to the syncer */
    uint64_t manifest_done;      /* version known durable */
    struct cat_q cat;            /* changes not yet durable (catalog.c) */
    struct catalog_waiter *waiters;
    size_t nwaiters, waitercap;

    char *account_settings;      /* store_account_settings_set (NULL none) */
    int64_t last_trim;
    struct store_stats stats;
    uint64_t uncommitted_records; /* appended since the last store_commit */
    struct fd_cache fds;         /* segment descriptors (segment.c) */
    struct js_state *js;         /* jetstream backend (jetstream.c); NULL: embedded */
};

void store_i_stream_insert(struct store *s, struct store_stream *st);
/* Removes "st" from the name index (it stays allocated). */
void store_i_stream_detach(struct store *s, struct store_stream *st);
/* Publishes what the shards of "st" held back while its creation (or its
 * deletion) was not durable, firing listeners and tickets. */
void store_i_stream_release(struct store *s, struct store_stream *st);
/* The creation of "st" became durable: releases what its shards held back. */
void store_i_stream_catalog_durable(struct store *s, struct store_stream *st);
/* Buries the shards of a deleted stream (their segments deleted at once,
 * their tickets failed when the zombies are reaped) and frees it. */
void store_i_stream_bury(struct store *s, struct store_stream *st);
/* Buries one shard: its data deleted now, the struct freed (tickets failed
 * with STORE_ENOTFOUND) when the zombies are reaped. */
void store_i_shard_bury(struct store *s, struct store_shard *sh);
void store_i_fifo_add(struct store *s, struct chunk *c);
void store_i_fifo_remove(struct store *s, struct chunk *c);

/* ---- jetstream.c: the jetstream backend ----------------------------------
 *
 * The catalog and the records live in NATS JetStream; the store under "dir"
 * is this gateway's copy, filled from JetStream and read as usual. */

struct js_state;
struct js_feed;

/* At the end of store_open: connects, loads the catalog, copies every
 * stream's records and follows both. */
int store_i_js_open(struct store *s, struct store_err *err);
void store_i_js_close(struct store *s);
int store_i_js_notify_fd(struct store *s);
/* From store_dispatch: NATS replies and deliveries, retries, catalog. */
void store_i_js_dispatch(struct store *s);
/* From store_commit: publishes catalog changes not yet sent. */
void store_i_js_commit_catalog(struct store *s);
/* From after_callbacks: answers appends whose records are now readable. */
void store_i_js_after(struct store *s);
int store_i_js_append(struct store_shard *sh, const struct store_record_in *recs, size_t n,
                      struct store_seq *seqs, store_done_fn on_done, void *arg,
                      struct store_err *err);
/* Marks a data directory as the jetstream backend's copy (never an
 * embedded store's data: neither backend opens the other's). */
#define STORE_JS_MARKER "JETSTREAM-COPY"
/* Empties the local copy before store_open loads it (keeps LOCK,
 * iterator.key and the marker); STORE_EINVAL if "dir" holds an embedded
 * store. */
int store_i_js_wipe(struct store *s, struct store_err *err);
/* A stream's creation is durable: start copying its records. */
void store_i_js_stream_ready(struct store *s, struct store_stream *st);
/* This gateway's deletion of "st" is durable: remove its JetStream stream. */
void store_i_js_stream_deleted(struct store *s, struct store_stream *st);
/* This gateway's retention change of "st" is durable: JetStream's MaxAge follows. */
void store_i_js_stream_retention(struct store *s, struct store_stream *st);
/* A stream struct is being freed: stop copying its records. */
void store_i_js_stream_free(struct store_stream *st);
/* A reshard of ours was recorded as change "version", closing the shards
 * "idx": publishes its fence (the bundle waits for it). */
void store_i_js_reshard_fence(struct store *s, struct store_stream *st, uint64_t version,
                              const uint32_t *idx, size_t nidx);
/* The reshard change "version" became durable / was undone. */
void store_i_js_reshard_durable(struct store *s, uint64_t version);
void store_i_js_reshard_undone(struct store *s, uint64_t version);
/* Appends one record with a sequence number JetStream gave it (shard.c). */
int store_i_shard_apply(struct store_shard *sh, const struct store_record_in *r,
                        struct store_seq seq, int64_t arrival_ms, struct store_err *err);

/* ---- reshard.c ------------------------------------------------------------ */

/* The reshard change "c" became durable: its new shards are released. */
void store_i_reshard_durable(struct store *s, struct cat_change *c);
/* Undoes the reshard change "c" (store_i_catalog_rollback, newest first). */
void store_i_reshard_undo(struct store *s, struct cat_change *c);
/* jetstream: the fence of the pending reshard change "version" is stored at
 * stream sequence "fence": the shards it closed end there, and its record
 * says so. -1 if no such change is pending (it was undone). */
int store_i_reshard_fenced(struct store *s, uint64_t version, uint64_t fence);
/* Fills "sh" (index set) from a catalog tree shard object: 0, or -1 if a
 * field is missing or bad (catalog.c). */
int store_i_catalog_shard_fields(struct store_shard *sh, json_t *v);
/* Adds shard "v" (a catalog tree shard object) to "st" (a reshard of
 * another gateway); NULL with "err" if it does not fit. */
struct store_shard *store_i_reshard_add(struct store_stream *st, json_t *v, struct store_err *err);

#endif
