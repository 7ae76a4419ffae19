/* cursor.c - read positions (shard iterators) and reads that hand out borrowed
 * record views.
 *
 * Upstream: the gateway's GetShardIterator/GetRecords and the subscription
 * pump call store_shard_position() and store_shard_read(). Downstream: the
 * shard's in-memory tail (shard.c chunks) for recent records, and pread() on
 * segment files through their sparse index (segment.c) for older ones.
 *
 * A position is a value: "at seq" or "after seq". Reads clamp a position below
 * the shard's trim point (its horizon) to the oldest retained record, and never
 * return a record past the last published one. Views from the tail pin their
 * chunk (a reference held by the cursor); views from segments point into the
 * cursor's own buffer. Both stay valid until the next read on the cursor.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "record.h"

#define READ_WINDOW (1u << 20)

struct store_cursor {
    struct store_record *recs;
    size_t reccap;
    uint8_t *buf;
    size_t bufcap;
    struct chunk **refs;
    size_t nrefs, refcap;
};

/* ---- positions ----------------------------------------------------------------- */

size_t store_pos_format(const struct store_pos *pos, char out[STORE_POS_STRLEN])
{
    out[0] = pos->after ? 'A' : 'S';
    store_seq_format(pos->seq, out + 1);
    return 42;
}

int store_pos_parse(const char *s, size_t len, struct store_pos *out, struct store_err *err)
{
    if (len < 1 || (s[0] != 'A' && s[0] != 'S'))
        return store_i_err_set(err, STORE_EINVAL, "invalid position");
    out->after = s[0] == 'A';
    return store_seq_parse(s + 1, len - 1, &out->seq, err);
}

/* Same-shard order: (gen, counter). */
static int scmp(struct store_seq a, struct store_seq b)
{
    if (a.gen != b.gen) return a.gen < b.gen ? -1 : 1;
    if (a.counter != b.counter) return a.counter < b.counter ? -1 : 1;
    return 0;
}

/* Does record "seq" lie at or past position "p"? */
static int seq_at_or_past(struct store_seq seq, const struct store_pos *p)
{
    int c = scmp(seq, p->seq);
    return p->after ? c > 0 : c >= 0;
}

/* Position order: at(x) < after(x) < at(x+1). */
static int pos_cmp(const struct store_pos *a, const struct store_pos *b)
{
    int c = scmp(a->seq, b->seq);
    if (c) return c;
    return (a->after ? 1 : 0) - (b->after ? 1 : 0);
}

struct store_cursor *store_cursor_new(void)
{
    return store_i_xcalloc(1, sizeof(struct store_cursor));
}

static void release_refs(struct store_cursor *cur)
{
    for (size_t i = 0; i < cur->nrefs; i++)
        store_i_chunk_unref(cur->refs[i]);
    cur->nrefs = 0;
}

void store_cursor_release(struct store_cursor *cur)
{
    release_refs(cur);
    /* Keep the small arrays for the next read; a segment read buffer can
     * be large and an idle holder should not keep it. */
    if (cur->bufcap > 65536) {
        free(cur->buf);
        cur->buf = NULL;
        cur->bufcap = 0;
    }
}

void store_cursor_free(struct store_cursor *cur)
{
    if (!cur)
        return;
    release_refs(cur);
    free(cur->refs);
    free(cur->recs);
    free(cur->buf);
    free(cur);
}

static void hold(struct store_cursor *cur, struct chunk *c)
{
    if (cur->nrefs && cur->refs[cur->nrefs - 1] == c)
        return;
    if (cur->nrefs == cur->refcap) {
        cur->refcap = cur->refcap ? cur->refcap * 2 : 8;
        cur->refs = store_i_xrealloc(cur->refs, cur->refcap * sizeof *cur->refs);
    }
    c->refs++;
    cur->refs[cur->nrefs++] = c;
}

static struct store_record *rec_slot(struct store_cursor *cur, size_t i)
{
    if (i >= cur->reccap) {
        cur->reccap = cur->reccap ? cur->reccap * 2 : 64;
        while (cur->reccap <= i) cur->reccap *= 2;
        cur->recs = store_i_xrealloc(cur->recs, cur->reccap * sizeof *cur->recs);
    }
    return &cur->recs[i];
}

/* ---- segment scanning -------------------------------------------------------------- */

/* A forward reader over one segment's frames. */
struct segreader {
    struct store_shard *sh;
    struct segment *seg;
    int fd;
    uint8_t **buf;
    size_t *cap;
    uint64_t base; /* file offset of (*buf)[0] */
    size_t len;
    uint64_t off;  /* next frame */
};

/* Loads [r->off, ...) into the buffer (dropping what is before r->off). */
static int sr_fill(struct segreader *r, size_t need, struct store_err *err)
{
    uint64_t end = r->seg->size;
    size_t want = need > READ_WINDOW ? need : READ_WINDOW;
    if (r->off + want > end)
        want = (size_t)(end - r->off);
    if (want > *r->cap) {
        *r->cap = want;
        *r->buf = store_i_xrealloc(*r->buf, *r->cap);
    }
    r->base = r->off;
    r->len = 0;
    while (r->len < want) {
        ssize_t n = pread(r->fd, *r->buf + r->len, want - r->len, (off_t)(r->base + r->len));
        if (n < 0) {
            if (errno == EINTR) continue;
            return store_i_err_errno(err, errno, "read segment %s", r->seg->path);
        }
        if (n == 0)
            return store_i_err_set(err, STORE_ECORRUPT, "segment %s shorter than expected",
                                   r->seg->path);
        r->len += (size_t)n;
    }
    return 0;
}

/* Next frame: 1 with "*rec" (views into the buffer), 0 at end of segment,
 * 2 when the frame is not in the buffer and "refill" is 0, or an error code. */
static int sr_next(struct segreader *r, int refill, struct store_record *rec,
                   struct store_err *err)
{
    if (r->off >= r->seg->size)
        return 0;
    /* Up to three looks: the buffer as it is, after a refill of a window
     * from here, after a refill of the whole frame its header announced. */
    for (int tries = 0; tries < 3; tries++) {
        size_t flen = 0;
        const char *reason;
        int inbuf = r->off >= r->base && r->off < r->base + r->len;
        enum record_status st = RECORD_INCOMPLETE;
        if (inbuf)
            st = store_i_record_decode(*r->buf + (r->off - r->base),
                                       (size_t)(r->base + r->len - r->off), 1, rec, &flen, &reason);
        if (st == RECORD_OK) {
            r->off += flen;
            return 1;
        }
        if (st != RECORD_INCOMPLETE)
            return store_i_err_set(err, STORE_ECORRUPT, "segment %s offset %" PRIu64 ": %s",
                                   r->seg->path, r->off, reason);
        if (!refill)
            return 2;
        int rc = sr_fill(r, flen ? flen : RECORD_HDR_SIZE, err);
        if (rc) return rc;
    }
    return store_i_err_set(err, STORE_ECORRUPT,
                           "segment %s offset %" PRIu64 ": frame past end of file", r->seg->path,
                           r->off);
}

static int sr_open(struct segreader *r, struct store_shard *sh, struct segment *seg,
                   uint64_t off, uint8_t **buf, size_t *cap, struct store_err *err)
{
    r->sh = sh;
    r->seg = seg;
    r->buf = buf;
    r->cap = cap;
    r->base = 0;
    r->len = 0;
    r->off = off;
    r->fd = store_i_shard_read_fd(sh, seg, err);
    return r->fd < 0 ? err->code : 0;
}

/* ---- resolving positions --------------------------------------------------------------- */

static int find_time_in_segments(struct store_shard *sh, int64_t ts, struct store_pos *out,
                                 int *found, struct store_err *err)
{
    *found = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (struct segment *seg = sh->seg.head; seg && !*found; seg = seg->next) {
        if (!seg->nrec || seg->last_arrival < ts)
            continue;
        struct segreader r;
        rc = sr_open(&r, sh, seg, store_i_segment_index_time(seg, ts), &buf, &cap, err);
        if (rc) break;
        struct store_record rec;
        while ((rc = sr_next(&r, 1, &rec, err)) == 1) {
            if (rec.arrival_ms >= ts) {
                out->seq = rec.seq;
                out->after = 0;
                *found = 1;
                break;
            }
        }
        if (rc < 0) break;
        rc = 0;
    }
    free(buf);
    return rc;
}

int store_shard_position(struct store_shard *sh, enum store_pos_type type,
                         const struct store_seq *seq, int64_t ts_ms, struct store_pos *out,
                         struct store_err *err)
{
    if (sh->offline)
        return store_shard_check(sh, err);
    switch (type) {
    case STORE_POS_TRIM_HORIZON:
        *out = sh->horizon;
        return 0;
    case STORE_POS_LATEST:
        if (sh->has_pub) {
            out->seq = sh->last_pub;
            out->after = 1;
        } else {
            *out = sh->horizon;
        }
        return 0;
    case STORE_POS_AT_SEQUENCE:
    case STORE_POS_AFTER_SEQUENCE:
        if (!seq)
            return store_i_err_set(err, STORE_EINVAL, "a sequence number is required");
        if (seq->shard != sh->index)
            return store_i_err_set(err, STORE_EINVAL,
                                   "sequence number belongs to another shard than %s", sh->id);
        out->seq = *seq;
        out->after = type == STORE_POS_AFTER_SEQUENCE;
        return 0;
    case STORE_POS_AT_TIMESTAMP: {
        if (!sh->has_pub || sh->last_pub_arrival < ts_ms)
            return store_shard_position(sh, STORE_POS_LATEST, NULL, 0, out, err);
        /* The tail answers if its oldest readable record is older than ts. */
        struct chunk *h = sh->tail.head;
        if (h && h != sh->tail.unpub && h->first_arrival < ts_ms) {
            for (struct chunk *c = h; c && c != sh->tail.unpub; c = c->next) {
                if (c->last_arrival < ts_ms)
                    continue;
                uint32_t lo = 0, hi = c->n;
                while (lo < hi) {
                    uint32_t mid = (lo + hi) / 2;
                    if (store_i_record_peek_arrival(c->buf + c->off[mid]) < ts_ms)
                        lo = mid + 1;
                    else hi = mid;
                }
                out->seq = store_i_record_peek_seq(c->buf + c->off[lo]);
                out->after = 0;
                return 0;
            }
        }
        int found;
        int rc = find_time_in_segments(sh, ts_ms, out, &found, err);
        if (rc) return rc;
        if (!found)
            return store_shard_position(sh, STORE_POS_LATEST, NULL, 0, out, err);
        if (pos_cmp(out, &sh->horizon) < 0)
            *out = sh->horizon;
        return 0;
    }
    }
    return store_i_err_set(err, STORE_EINVAL, "unknown position type %d", (int)type);
}

/* ---- reading ----------------------------------------------------------------------- */

struct readlim {
    size_t max_records, max_bytes, bytes, n;
};

/* May one more record of "sz" bytes be returned? */
static int lim_take(struct readlim *l, size_t sz)
{
    if (l->n >= l->max_records) return 0;
    if (l->n > 0 && l->bytes + sz > l->max_bytes) return 0;
    l->bytes += sz;
    l->n++;
    return 1;
}

static void read_tail(struct store_shard *sh, struct store_cursor *cur, const struct store_pos *pos,
                      struct readlim *lim)
{
    struct chunk *end = sh->tail.unpub;
    struct chunk *c = end ? end->prev : sh->tail.tail;
    while (c && c->prev && scmp(c->first, pos->seq) > 0)
        c = c->prev;
    uint32_t lo = 0, hi = c->n; /* first record at or past pos */
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (!seq_at_or_past(store_i_record_peek_seq(c->buf + c->off[mid]), pos))
            lo = mid + 1;
        else hi = mid;
    }
    uint32_t i = lo;
    for (; c && c != end; c = c->next, i = 0) {
        for (; i < c->n; i++) {
            struct store_record *r = rec_slot(cur, lim->n);
            size_t flen;
            const char *reason;
            store_i_record_decode(c->buf + c->off[i], c->len - c->off[i], 0, r, &flen, &reason);
            if (!lim_take(lim, r->partition_key.len + r->data.len))
                return;
            hold(cur, c);
        }
    }
}

static int read_segments(struct store_shard *sh, struct store_cursor *cur,
                         const struct store_pos *pos, struct readlim *lim, struct store_err *err)
{
    struct segment *seg = sh->seg.head;
    while (seg && seg->next && scmp(seg->next->first, pos->seq) <= 0)
        seg = seg->next;
    for (; seg; seg = seg->next) {
        if (!seg->nrec || !seq_at_or_past(seg->last, pos))
            continue;
        struct segreader r;
        int rc = sr_open(&r, sh, seg, store_i_segment_index_seq(seg, pos->seq), &cur->buf,
                         &cur->bufcap, err);
        if (rc) return rc;
        for (;;) {
            struct store_record tmp;
            rc = sr_next(&r, lim->n == 0, &tmp, err);
            if (rc < 0) {
                store_i_log(sh->store, STORE_LOG_ERROR, "shard=%s read: %s", sh->id, err->msg);
                return rc;
            }
            if (rc != 1)
                break; /* end of segment, or we hold views and would have to move the buffer */
            if (!seq_at_or_past(tmp.seq, pos))
                continue;
            if (!sh->has_pub || scmp(tmp.seq, sh->last_pub) > 0)
                return 0;
            if (!lim_take(lim, tmp.partition_key.len + tmp.data.len))
                return 0;
            *rec_slot(cur, lim->n - 1) = tmp;
        }
        if (lim->n)
            return 0;
    }
    return 0;
}

int store_shard_read(struct store_shard *sh, struct store_cursor *cur, const struct store_pos *from,
                     size_t max_records, size_t max_bytes, const struct store_record **records,
                     size_t *n, struct store_pos *next, int64_t *millis_behind,
                     struct store_err *err)
{
    release_refs(cur);
    *n = 0;
    *records = cur->recs;
    if (sh->offline)
        return store_shard_check(sh, err);
    if (from->seq.shard != sh->index)
        return store_i_err_set(err, STORE_EINVAL, "position belongs to another shard than %s",
                               sh->id);
    if (max_records == 0)
        max_records = 1;
    struct store_pos pos = *from;
    if (pos_cmp(&pos, &sh->horizon) < 0)
        pos = sh->horizon;
    *next = pos;
    if (millis_behind)
        *millis_behind = 0;
    if (!sh->has_pub || !seq_at_or_past(sh->last_pub, &pos))
        return 0;

    struct readlim lim = {max_records, max_bytes, 0, 0};
    struct chunk *h = sh->tail.head;
    if (h && h != sh->tail.unpub && scmp(pos.seq, h->first) >= 0) {
        read_tail(sh, cur, &pos, &lim);
    } else {
        int rc = read_segments(sh, cur, &pos, &lim, err);
        if (rc) {
            release_refs(cur);
            return rc;
        }
    }
    *records = cur->recs;
    *n = lim.n;
    if (lim.n) {
        const struct store_record *last = &cur->recs[lim.n - 1];
        next->seq = last->seq;
        next->after = 1;
        if (millis_behind && scmp(last->seq, sh->last_pub) < 0) {
            int64_t d = sh->last_pub_arrival - last->arrival_ms;
            *millis_behind = d > 0 ? d : 0;
        }
    }
    return 0;
}
