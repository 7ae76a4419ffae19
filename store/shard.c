/* shard.c - sequence numbers, the write buffer, the published tail, tickets
 * and listeners of one shard.
 *
 * Upstream: the gateway calls store_shard_append() (after store_stream_route
 * in stream.c); store.c's store_commit() calls store_i_shard_commit(), and
 * store_dispatch() calls store_i_shard_publish()/store_i_shard_sync_failed() with the syncer's
 * results. Downstream: record.c encodes frames, segment.c owns the files.
 *
 * A shard's records live in a list of chunks:
 *
 *   head ... [written, readable] ... unpub -> [written, not yet durable] ...
 *            pending -> [not yet written] ... tail
 *
 * Appends encode into the last pending chunk (never inside a written one, so
 * readers' borrowed views never move). Commit writes pending chunks to the
 * active segment. Publishing (at write in modes NEVER/INTERVAL, at fsync in
 * ALWAYS) moves "unpub" forward and marks the shard for its listeners; then
 * store.c fires the listeners and after them the append tickets, in order, so
 * subscribers get new records before the producer's acknowledgement goes out
 * (both after the same write or fsync). Never user code from append.
 *
 * "lsn" counts frame bytes appended to the shard by this process. Tickets,
 * sync items and publication are all expressed in lsn, so one comparison
 * decides what a write or fsync covered. When written data must be discarded
 * (failed write or fsync), the shard's "epoch" is bumped so stale syncer
 * results are ignored, and the segment is cut back to its durable prefix.
 *
 * Invariants: sequence numbers increase strictly (gen is the store's
 * generation, bumped at each open; counter increases per append); arrival
 * times never decrease; every written chunk is in the store FIFO.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "record.h"

#define CHUNK_TARGET (256u * 1024u)

/* ---- sequence numbers ------------------------------------------------------ */

/* Writes "v" as exactly "width" (even) zero-padded digits (v < 10^width),
 * two digits per division. */
static void put_digits(char *out, uint64_t v, int width)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    for (int i = width - 2; i >= 0; i -= 2) {
        memcpy(out + i, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
}

size_t store_seq_format(struct store_seq seq, char out[STORE_SEQ_STRLEN])
{
    /* Hand-rolled: every acknowledged record is formatted once per reply and
     * snprintf with three padded fields dominated PutRecords' profile. */
    out[0] = '4';
    put_digits(out + 1, seq.gen, 10);
    put_digits(out + 11, seq.shard, 10);
    put_digits(out + 21, seq.counter, 20);
    out[41] = '\0';
    return 41;
}

static int parse_digits(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int store_seq_parse(const char *s, size_t len, struct store_seq *out, struct store_err *err)
{
    uint64_t g, sh, c;
    if (len != 41 || s[0] != '4' || parse_digits(s + 1, 10, UINT32_MAX, &g) != 0 ||
        parse_digits(s + 11, 10, UINT32_MAX, &sh) != 0 ||
        parse_digits(s + 21, 20, UINT64_MAX, &c) != 0)
        return store_i_err_set(err, STORE_EINVAL, "invalid sequence number '%.*s'",
                               (int)(len > 60 ? 60 : len), s);
    out->gen = (uint32_t)g;
    out->shard = (uint32_t)sh;
    out->counter = c;
    return 0;
}

int store_seq_cmp(struct store_seq a, struct store_seq b)
{
    if (a.gen != b.gen) return a.gen < b.gen ? -1 : 1;
    if (a.shard != b.shard) return a.shard < b.shard ? -1 : 1;
    if (a.counter != b.counter) return a.counter < b.counter ? -1 : 1;
    return 0;
}

/* ---- chunks --------------------------------------------------------------- */

static struct chunk *chunk_new(struct store_shard *sh, size_t cap)
{
    struct chunk *c = store_i_xcalloc(1, sizeof *c);
    c->shard = sh;
    c->refs = 1;
    c->cap = cap;
    c->buf = store_i_xmalloc(cap);
    return c;
}

void store_i_chunk_unref(struct chunk *c)
{
    if (c && --c->refs == 0) {
        free(c->buf);
        free(c->off);
        free(c);
    }
}

void store_i_shard_unlink_chunk(struct store_shard *sh, struct chunk *c)
{
    if (c->prev) c->prev->next = c->next;
    else sh->tail.head = c->next;
    if (c->next) c->next->prev = c->prev;
    else sh->tail.tail = c->prev;
    if (sh->tail.unpub == c) sh->tail.unpub = c->next;
    if (sh->tail.pending == c) sh->tail.pending = c->next;
    sh->tail.bytes -= c->cap;
    if (c->written)
        store_i_fifo_remove(sh->store, c);
    c->prev = c->next = NULL;
    c->shard = NULL;
    store_i_chunk_unref(c);
}

/* ---- tickets -------------------------------------------------------------- */

static void ticket_push(struct store_shard *sh, uint64_t lsn_end, store_done_fn cb, void *arg)
{
    if (sh->tickets.len == sh->tickets.cap) {
        size_t ncap = sh->tickets.cap ? sh->tickets.cap * 2 : 16;
        struct ticket *v = store_i_xmalloc(ncap * sizeof *v);
        for (size_t i = 0; i < sh->tickets.len; i++)
            v[i] = sh->tickets.v[(sh->tickets.head + i) % sh->tickets.cap];
        free(sh->tickets.v);
        sh->tickets.v = v;
        sh->tickets.cap = ncap;
        sh->tickets.head = 0;
    }
    struct ticket *t = &sh->tickets.v[(sh->tickets.head + sh->tickets.len) % sh->tickets.cap];
    t->lsn_end = lsn_end;
    t->cb = cb;
    t->arg = arg;
    sh->tickets.len++;
}

/* Fires, in order, tickets ending at or below "lsn" (all if lsn == UINT64_MAX)
 * with "err". Each ticket is removed before its callback runs, so callbacks
 * may append to this shard. */
void store_i_shard_fire_tickets(struct store_shard *sh, uint64_t lsn, const struct store_err *err)
{
    while (sh->tickets.len) {
        struct ticket t = sh->tickets.v[sh->tickets.head];
        if (t.lsn_end > lsn)
            break;
        sh->tickets.head = (sh->tickets.head + 1) % sh->tickets.cap;
        sh->tickets.len--;
        if (t.cb)
            t.cb(t.arg, err);
    }
}

/* Fails the tickets of appends past "lsn" (the newest ones), oldest first.
 * A batch never spans chunks, so a ticket ends at or before the last good
 * write, or covers records that were never written. */
static void fail_tickets_after(struct store_shard *sh, uint64_t lsn, const struct store_err *err)
{
    size_t keep = 0;
    while (keep < sh->tickets.len &&
           sh->tickets.v[(sh->tickets.head + keep) % sh->tickets.cap].lsn_end <= lsn)
        keep++;
    size_t nfail = sh->tickets.len - keep;
    if (!nfail)
        return;
    /* Collect first: a callback may append (and so push tickets) again. */
    struct ticket *fail = store_i_xmalloc(nfail * sizeof *fail);
    for (size_t i = 0; i < nfail; i++)
        fail[i] = sh->tickets.v[(sh->tickets.head + keep + i) % sh->tickets.cap];
    sh->tickets.len = keep;
    for (size_t i = 0; i < nfail; i++)
        if (fail[i].cb)
            fail[i].cb(fail[i].arg, err);
    free(fail);
}

/* ---- lifecycle -------------------------------------------------------------- */

struct store_shard *store_i_shard_new(struct store *s, struct store_stream *st, uint32_t index)
{
    struct store_shard *sh = store_i_xcalloc(1, sizeof *sh);
    sh->store = s;
    sh->stream = st;
    sh->index = index;
    snprintf(sh->id, sizeof sh->id, "shardId-%012" PRIu32, index);
    sh->horizon.seq.shard = index;
    sh->rfd = -1;
    return sh;
}

int store_i_shard_last_assigned(const struct store_shard *sh, struct store_seq *out)
{
    if (sh->tail.tail && sh->tail.tail->n) {
        *out = sh->tail.tail->last;
        return 1;
    }
    if (sh->seg.tail && sh->seg.tail->nrec) {
        *out = sh->seg.tail->last;
        return 1;
    }
    if (sh->has_pub) {
        *out = sh->last_pub;
        return 1;
    }
    if (sh->horizon.after) { /* every record trimmed */
        *out = sh->horizon.seq;
        return 1;
    }
    return 0;
}

int store_i_shard_barrier(struct store_shard *sh, store_done_fn cb, void *arg)
{
    /* Tickets fire in order: one at lsn_appended fires with the last one. */
    if (sh->tickets.len == 0)
        return 0;
    ticket_push(sh, sh->lsn_appended, cb, arg);
    return 1;
}

/* Closes the cached read descriptor, if any. */
static void close_rfd(struct store_shard *sh)
{
    store_i_fdc_close(&sh->rfdn);
    sh->rfd = -1;
    sh->rfd_seg = NULL;
}

static void drop_segments(struct store_shard *sh, int delete_files)
{
    struct segment *seg = sh->seg.head;
    while (seg) {
        struct segment *next = seg->next;
        if (delete_files)
            store_i_segment_delete_file(seg);
        sh->store->stats.segments--;
        store_i_segment_free(seg);
        seg = next;
    }
    sh->seg.head = sh->seg.tail = sh->seg.active = NULL;
    sh->seg.n = 0;
    close_rfd(sh);
}

void store_i_shard_destroy_data(struct store_shard *sh)
{
    while (sh->tail.head)
        store_i_shard_unlink_chunk(sh, sh->tail.head);
    drop_segments(sh, 1);
}

void store_i_shard_free(struct store_shard *sh)
{
    if (!sh)
        return;
    if (sh->tickets.len) {
        struct store_err e;
        store_i_err_set(&e, STORE_ENOTFOUND, "stream deleted before the append completed");
        store_i_shard_fire_tickets(sh, UINT64_MAX, &e);
    }
    while (sh->tail.head)
        store_i_shard_unlink_chunk(sh, sh->tail.head);
    drop_segments(sh, 0);
    struct store_listener *l = sh->listeners;
    while (l) {
        struct store_listener *n = l->next;
        free(l);
        l = n;
    }
    free(sh->tickets.v);
    free(sh);
}

/* ---- append ---------------------------------------------------------------- */

static void mark_commit(struct store_shard *sh)
{
    if (!sh->commit_marked) {
        sh->commit_marked = 1;
        sh->commit_next = sh->store->commit_list;
        sh->store->commit_list = sh;
    }
}

int store_shard_check(const struct store_shard *sh, struct store_err *err)
{
    if (sh->offline) {
        if (err) *err = sh->offline_err;
        return sh->offline_err.code;
    }
    return 0;
}

/* "given" (NULL: assign) carries the sequence numbers of records a
 * replicated backend already stored elsewhere, arriving at "given_arrival". */
static int append_impl(struct store_shard *sh, const struct store_record_in *recs, size_t n,
                       const struct store_seq *given, int64_t given_arrival,
                       struct store_seq *seqs, store_done_fn on_done, void *arg,
                       struct store_err *err)
{
    struct store *s = sh->store;
    if (sh->offline)
        return store_shard_check(sh, err);
    if (sh->has_end && !given)
        return store_i_err_set(err, STORE_ESTATE, "shard %s is closed", sh->id);
    if (n == 0 || n > STORE_MAX_BATCH)
        return store_i_err_set(err, STORE_EINVAL, "batch of %zu records (1..%d allowed)", n,
                               STORE_MAX_BATCH);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct store_record_in *r = &recs[i];
        if (r->partition_key.len < 1 || r->partition_key.len > STORE_MAX_PARTITION_KEY)
            return store_i_err_set(err, STORE_EINVAL,
                                   "record %zu: partition key length %zu (1..%d)", i,
                                   r->partition_key.len, STORE_MAX_PARTITION_KEY);
        if (r->data.len > STORE_MAX_RECORD_DATA)
            return store_i_err_set(err, STORE_EINVAL, "record %zu: data length %zu (max %d)", i,
                                   r->data.len, STORE_MAX_RECORD_DATA);
        total += record_frame_size(r->partition_key.len, r->data.len, r->explicit_hash_key != NULL);
    }

    int64_t now = given ? given_arrival : store_i_now(s);
    if (now < sh->last_arrival)
        now = sh->last_arrival;
    sh->last_arrival = now;

    struct chunk *c = sh->tail.tail;
    int roll = sh->seg.fill > 0 && sh->seg.fill >= s->opts.segment_bytes;
    if (!c || c->written || roll || (c->len > 0 && c->len + total > CHUNK_TARGET)) {
        /* Sized for this append (commit trims what stays unused): one record
         * per loop turn is the common case of a trickle. Under load, as large
         * as the last chunk written: growing by doubling copied every byte
         * about twice more (5% of the gateway's CPU in a PutRecords run). */
        size_t cap = total > 1024 ? total : 1024;
        size_t hint = sh->chunk_hint < CHUNK_TARGET ? sh->chunk_hint : CHUNK_TARGET;
        if (cap < hint)
            cap = hint;
        c = chunk_new(sh, cap);
        c->new_segment = roll;
        if (roll)
            sh->seg.fill = 0;
        c->lsn = sh->lsn_appended;
        c->prev = sh->tail.tail;
        if (sh->tail.tail) sh->tail.tail->next = c;
        else sh->tail.head = c;
        sh->tail.tail = c;
        if (!sh->tail.pending) sh->tail.pending = c;
        if (!sh->tail.unpub) sh->tail.unpub = c;
        sh->tail.bytes += c->cap;
    }
    if (c->len + total > c->cap) {
        /* Safe: an unwritten chunk is not readable, so nobody borrows from it. */
        size_t ncap = c->cap * 2;
        while (ncap < c->len + total) ncap *= 2;
        if (ncap > CHUNK_TARGET && c->len + total <= CHUNK_TARGET) ncap = CHUNK_TARGET;
        sh->tail.bytes += ncap - c->cap;
        c->buf = store_i_xrealloc(c->buf, ncap);
        c->cap = ncap;
    }
    if (c->n + n > c->offcap) {
        uint32_t ncap = c->offcap ? c->offcap : 64;
        while (ncap < c->n + n) ncap *= 2;
        c->off = store_i_xrealloc(c->off, ncap * sizeof *c->off);
        c->offcap = ncap;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_seq seq = {s->gen, sh->index, sh->next_counter++};
        if (given) {
            seq = given[i];
            sh->next_counter = seq.counter + 1;
        }
        const struct store_record_in *r = &recs[i];
        store_i_record_encode(c->buf + c->len, seq, now, r);
        if (c->n == 0) {
            c->first = seq;
            c->first_arrival = now;
        }
        c->off[c->n++] = (uint32_t)c->len;
        c->len += record_frame_size(r->partition_key.len, r->data.len, r->explicit_hash_key != NULL);
        if (seqs) seqs[i] = seq;
    }
    c->last = given ? given[n - 1] : (struct store_seq){s->gen, sh->index, sh->next_counter - 1};
    c->last_arrival = now;
    sh->lsn_appended += total;
    sh->seg.fill += total;
    ticket_push(sh, sh->lsn_appended, on_done, arg);
    s->stats.records_appended += n;
    s->uncommitted_records += n;
    mark_commit(sh);
    return 0;
}

int store_shard_append(struct store_shard *sh, const struct store_record_in *recs, size_t n,
                       struct store_seq *seqs, store_done_fn on_done, void *arg,
                       struct store_err *err)
{
    if (sh->store->js)
        return store_i_js_append(sh, recs, n, seqs, on_done, arg, err);
    return append_impl(sh, recs, n, NULL, 0, seqs, on_done, arg, err);
}

int store_i_shard_apply(struct store_shard *sh, const struct store_record_in *r,
                        struct store_seq seq, int64_t arrival_ms, struct store_err *err)
{
    return append_impl(sh, r, 1, &seq, arrival_ms, NULL, NULL, NULL, err);
}

/* ---- commit ---------------------------------------------------------------- */

static void push_item(struct sync_item_vec *items, struct store_shard *sh, struct segment *seg,
                      int is_new)
{
    if (items->n && items->v[items->n - 1].shard == sh && items->v[items->n - 1].seg_id == seg->id) {
        items->v[items->n - 1].lsn = sh->lsn_written;
        items->v[items->n - 1].dir_sync |= is_new;
        return;
    }
    if (items->n == items->cap) {
        items->cap = items->cap ? items->cap * 2 : 16;
        items->v = store_i_xrealloc(items->v, items->cap * sizeof *items->v);
    }
    struct sync_item *it = &items->v[items->n++];
    it->shard = sh;
    it->epoch = sh->epoch;
    it->lsn = sh->lsn_written;
    it->seg_id = seg->id;
    it->fd = seg->fd; /* borrowed: store_i_syncer_post dups it if it queues this item */
    it->dir_sync = is_new;
    it->merged = 0;
}

static void link_segment(struct store_shard *sh, struct segment *seg)
{
    seg->prev = sh->seg.tail;
    seg->next = NULL;
    if (sh->seg.tail) sh->seg.tail->next = seg;
    else sh->seg.head = seg;
    sh->seg.tail = seg;
    sh->seg.n++;
}

/* Takes "seg" out of the shard's list and frees it (the file is the
 * caller's business: store_i_segment_delete_file first, or kept). */
static void forget_segment(struct store_shard *sh, struct segment *seg)
{
    if (seg->prev) seg->prev->next = seg->next;
    else sh->seg.head = seg->next;
    if (seg->next) seg->next->prev = seg->prev;
    else sh->seg.tail = seg->prev;
    sh->seg.n--;
    if (sh->seg.active == seg) sh->seg.active = NULL;
    if (sh->rfd_seg == seg)
        close_rfd(sh);
    sh->store->stats.segments--;
    store_i_segment_free(seg);
}

static void go_offline(struct store_shard *sh, int code, const char *what)
{
    sh->offline = 1;
    store_i_err_set(&sh->offline_err, code, "shard %s offline: %s", sh->id, what);
    store_i_log(sh->store, STORE_LOG_ERROR, "shard=%s offline: %s", sh->id, what);
}

/* Discards every chunk from "from" on (unwritten or unpublished), fails their
 * tickets with "err", and resets the lsn counters to lsn_written. Tickets of
 * batches already written (up to lsn_written) are left alone: those records
 * will be fsynced and published, so failing them would report as failed a
 * record that becomes readable (and the producer's retry would duplicate it). */
static void discard_from(struct store_shard *sh, struct chunk *from, const struct store_err *err)
{
    while (from) {
        struct chunk *next = from->next;
        store_i_shard_unlink_chunk(sh, from);
        from = next;
    }
    sh->lsn_appended = sh->lsn_written;
    sh->seg.fill = sh->seg.active ? sh->seg.active->size - SEG_HDR_SIZE : 0;
    fail_tickets_after(sh, sh->lsn_written, err);
}

int store_i_shard_commit(struct store_shard *sh, struct sync_item_vec *items)
{
    struct store *s = sh->store;
    int want_sync = s->opts.durability != STORE_DURABILITY_NEVER;
    struct chunk *c;
    while ((c = sh->tail.pending)) {
        struct store_err e;
        int is_new = 0;
        struct segment *seg = sh->seg.active;
        if (!seg || c->new_segment) {
            if (seg) {
                store_i_segment_seal(seg);
                sh->seg.active = NULL;
            }
            int rc = store_i_segment_create(sh, c->first, &seg, &e);
            if (rc) {
                store_i_log(s, STORE_LOG_ERROR, "shard=%s append failed: %s", sh->id, e.msg);
                discard_from(sh, c, &e);
                return rc;
            }
            seg->has_lsn = 1;
            seg->lsn_start = c->lsn;
            link_segment(sh, seg);
            sh->seg.active = seg;
            is_new = 1;
        } else if (seg->fd < 0) {
            /* Its descriptor was evicted while the shard was idle. A failure
             * here (EMFILE) fails this commit's appends with a retryable
             * error; the shard stays online and the next commit retries. */
            int rc = store_i_segment_reopen(sh, seg, &e);
            if (rc) {
                store_i_log(s, STORE_LOG_ERROR, "shard=%s append failed: %s", sh->id, e.msg);
                discard_from(sh, c, &e);
                return rc;
            }
        }
        /* A sync item borrows seg->fd until store_commit hands it to the
         * syncer (which dups it): keep it open until then. */
        if (want_sync)
            store_i_fdc_pin(&seg->fdn);
        else
            store_i_fdc_touch(&seg->fdn);
        int werr = store_i_segment_append(s, seg, c->buf, c->len, c->off, c->n);
        s->stats.writes++;
        if (werr) {
            int code = store_i_err_errno(&e, werr, "write segment %s", seg->path);
            store_i_log(s, STORE_LOG_ERROR, "shard=%s append failed: %s", sh->id, e.msg);
            /* Cut the partial frame(s) so the file ends with a whole record. */
            if (store_i_segment_cut(s, seg, seg->size) != 0) {
                go_offline(sh, STORE_EIO, "cannot cut segment back after a failed write");
            } else if (seg->nrec == 0) {
                store_i_segment_delete_file(seg);
                forget_segment(sh, seg);
            }
            discard_from(sh, c, &e);
            return code;
        }
        s->stats.bytes_written += c->len;
        sh->chunk_hint = c->len;
        /* A written chunk never grows again: give back its slack before it
         * becomes readable (nobody borrows from it yet, so it may move).
         * Without this a trickle of single records kept ~1-4 KiB of heap per
         * ~150-byte record in the tail. */
        if (c->len > 0 && c->cap - c->len >= 256) {
            sh->tail.bytes -= c->cap - c->len;
            c->buf = store_i_xrealloc(c->buf, c->len);
            c->cap = c->len;
        }
        c->written = 1;
        sh->lsn_written = c->lsn + c->len;
        sh->tail.pending = c->next;
        store_i_fifo_add(s, c);
        if (want_sync)
            push_item(items, sh, seg, is_new);
    }
    return 0;
}

/* ---- publish ------------------------------------------------------------------ */

void store_i_shard_mark_notify(struct store_shard *sh)
{
    if (sh->listeners && !sh->notify_marked) {
        sh->notify_marked = 1;
        sh->notify_next = sh->store->notify_list;
        sh->store->notify_list = sh;
    }
}

void store_i_shard_publish(struct store_shard *sh, uint64_t lsn)
{
    if (lsn <= sh->lsn_published && sh->lsn_published)
        return;
    if (lsn > sh->lsn_written)
        lsn = sh->lsn_written;
    int advanced = 0;
    struct chunk *c;
    while ((c = sh->tail.unpub) && c->written && c->lsn + c->len <= lsn) {
        sh->last_pub = c->last;
        sh->last_pub_arrival = c->last_arrival;
        sh->has_pub = 1;
        sh->tail.unpub = c->next;
        c->published = 1;
        advanced = 1;
    }
    sh->lsn_published = lsn;
    if (advanced)
        store_i_shard_mark_notify(sh);
}

void store_i_shard_fire_listeners(struct store_shard *sh)
{
    struct store_listener *l = sh->listeners;
    while (l) {
        /* The callback may remove "l" itself (handled: we read next first) but
         * must not remove other listeners of this shard; see store.h. */
        struct store_listener *next = l->next;
        l->fn(l->arg, sh);
        l = next;
    }
}

struct store_listener *store_shard_listen(struct store_shard *sh, store_listener_fn fn, void *arg)
{
    struct store_listener *l = store_i_xcalloc(1, sizeof *l);
    l->shard = sh;
    l->fn = fn;
    l->arg = arg;
    l->next = sh->listeners;
    if (sh->listeners) sh->listeners->prev = l;
    sh->listeners = l;
    return l;
}

void store_listener_remove(struct store_listener *l)
{
    if (!l)
        return;
    struct store_shard *sh = l->shard;
    if (l->prev) l->prev->next = l->next;
    else sh->listeners = l->next;
    if (l->next) l->next->prev = l->prev;
    free(l);
}

/* ---- failures -------------------------------------------------------------------- */

void store_i_shard_sync_failed(struct store_shard *sh, int errnum)
{
    struct store *s = sh->store;
    struct store_err e;
    store_i_err_errno(&e, errnum, "fsync of shard %s", sh->id);
    store_i_log(s, STORE_LOG_ERROR, "shard=%s %s; discarding unacknowledged records", sh->id,
                e.msg);
    sh->epoch++;
    uint64_t L = sh->lsn_durable;
    /* Segments holding only non-durable data go; the one straddling L is cut. */
    struct segment *seg = sh->seg.tail;
    while (seg && seg->has_lsn && seg->lsn_start >= L) {
        struct segment *prev = seg->prev;
        store_i_segment_delete_file(seg);
        forget_segment(sh, seg);
        seg = prev;
    }
    if (seg && seg->has_lsn && seg->size > SEG_HDR_SIZE + (L - seg->lsn_start)) {
        uint64_t keep = SEG_HDR_SIZE + (L - seg->lsn_start);
        struct store_err se;
        int ok = store_i_segment_cut(s, seg, keep) == 0;
        if (ok) {
            store_i_segment_seal(seg);
            struct store_seq prev_last = seg->prev ? seg->prev->last : (struct store_seq){0, 0, 0};
            enum scan_outcome so =
                store_i_segment_scan(sh, seg, seg->prev != NULL, prev_last, 1, &se);
            ok = so == SCAN_OK;
        }
        if (!ok)
            go_offline(sh, STORE_EIO, "cannot cut segment back after a failed fsync");
    }
    if (sh->seg.active) {
        store_i_segment_seal(sh->seg.active);
        sh->seg.active = NULL;
    }
    sh->lsn_written = L;
    discard_from(sh, sh->tail.unpub, &e);
    sh->seg.fill = 0;
}

/* ---- retention ---------------------------------------------------------------- */

int store_i_shard_trim(struct store_shard *sh, int64_t cutoff_ms)
{
    int n = 0;
    struct segment *seg;
    while ((seg = sh->seg.head)) {
        if (seg->nrec && seg->last_arrival >= cutoff_ms)
            break;
        /* Only whole segments that are fully readable and durable as promised. */
        if (seg->nrec && (!sh->has_pub || store_seq_cmp(seg->last, sh->last_pub) > 0))
            break;
        if (seg == sh->seg.active) {
            if (sh->tail.pending)
                break;
            store_i_segment_seal(seg);
            sh->seg.active = NULL;
            sh->seg.fill = 0;
        }
        struct chunk *c;
        while ((c = sh->tail.head) && c->written && c != sh->tail.unpub &&
               store_seq_cmp(c->last, seg->last) <= 0)
            store_i_shard_unlink_chunk(sh, c);
        if (seg->nrec) {
            sh->horizon.seq = seg->last;
            sh->horizon.after = 1;
        }
        store_i_log(sh->store, STORE_LOG_INFO, "shard=%s retention: removed segment %s", sh->id,
                    seg->path);
        store_i_segment_delete_file(seg);
        forget_segment(sh, seg);
        n++;
    }
    return n;
}

int store_i_shard_read_fd(struct store_shard *sh, struct segment *seg, struct store_err *err)
{
    if (sh->rfd >= 0 && sh->rfd_seg == seg) {
        store_i_fdc_touch(&sh->rfdn);
        return sh->rfd;
    }
    close_rfd(sh);
    int fd = store_i_segment_open_read(sh->store, seg, err);
    if (fd < 0)
        return -1;
    sh->rfd = fd;
    sh->rfd_seg = seg;
    store_i_fdc_add(&sh->store->fds, &sh->rfdn, &sh->rfd);
    return sh->rfd;
}

void store_shard_latest(const struct store_shard *sh, int *has_readable,
                        struct store_seq *last_readable)
{
    if (has_readable) *has_readable = sh->has_pub;
    if (last_readable && sh->has_pub) *last_readable = sh->last_pub;
}
