/* segment.c - segment files, every operation on them: create, reopen,
 * append (write and index), cut back (truncate + fsync), delete, open for
 * reading, scan and tail recovery, quarantine of files no stream owns, and
 * the descriptor cache they share. No other store file opens, writes,
 * truncates, renames or unlinks a segment file; the syncer fsyncs appended
 * data (on dups of the write fds, off the loop thread) and cursor.c preads
 * through descriptors opened here.
 *
 * Upstream: shard.c creates segments, appends chunks to them during
 * store_commit (store_i_segment_append), cuts or deletes them after failures
 * and retention, and opens them for cursor.c's reads (store_i_shard_read_fd);
 * store.c asks store_i_segment_scan to verify every segment at open and
 * store_i_segment_quarantine to move aside those of unknown streams; cursor.c
 * uses the sparse index to pread old records. Downstream: the file system,
 * through store_io_ops for writes and fsyncs (fault injection).
 *
 * File layout:
 *
 *   +------------+---------+---------+---------+---------+-----+---------+
 *   | "SLUICESG" | ver u32 | shard   | frame 0 | frame 1 | ... | frame n |
 *   |  8 bytes   |  (= 1)  |  u32    |         |         |     |         |
 *   +------------+---------+---------+---------+---------+-----+---------+
 *   name: s<stream uid %010>-<shard %010>-<gen %010>-<counter %020>.seg
 *         (the sequence number of its first record, so names sort in log order)
 *
 * Frames are record.c's. Invariant: [SEG_HDR_SIZE, size) holds whole frames
 * whose sequence numbers increase strictly and carry the shard's index.
 * Recovery (store_i_segment_scan) stops at the first frame that is
 * incomplete, fails its CRC, or is followed by zeros only, and cuts the file
 * there (a torn tail);
 * a bad frame followed by other data is corruption in the middle and is
 * reported, never skipped. The sparse index keeps one entry per
 * SEG_INDEX_EVERY bytes of frames (plus the first frame).
 *
 * Descriptors: the store may hold store_opts.max_fds, but a stream may have
 * more shards than that (10,000 shards against a soft limit of 1,024 is
 * common). So every descriptor it keeps between calls - a shard's read fd,
 * an active segment's write fd - is an entry of one LRU cache (fd_cache),
 * and the least recently used one is closed when a new one would not fit.
 * Active segments' write descriptors are evictable too: a shard that stays
 * idle keeps no descriptor, and its next commit reopens the file with
 * O_APPEND (the file's end is seg->size, so frame offsets stay right). The
 * alternative, one pinned write descriptor per shard, would cap the number
 * of writable shards at the limit; the cost of ours is one open(2) per
 * commit to a shard that was evicted, paid only when shards outnumber the
 * budget. The syncer's dups count against the budget while in flight. When
 * the process itself is out of descriptors (EMFILE: connections use the
 * same table), opens give back idle cached descriptors and retry; if none
 * is left the append or read fails with STORE_EIO and the shard stays
 * online, so it works again as soon as descriptors free up.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "record.h"

/* ---- descriptor cache ------------------------------------------------------- */

static void node_unlink(struct fd_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Inserts "n" before sentinel "head", i.e. at the most-recently-used end. */
static void node_push(struct fd_node *head, struct fd_node *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

void store_i_fdc_init(struct fd_cache *c, uint32_t budget)
{
    memset(c, 0, sizeof *c);
    c->lru.prev = c->lru.next = &c->lru;
    c->pinned.prev = c->pinned.next = &c->pinned;
    c->budget = budget;
}

void store_i_fdc_close(struct fd_node *n)
{
    if (!n->cache)
        return;
    node_unlink(n);
    n->cache->open--;
    n->cache = NULL;
    n->pinned = 0;
    n->close_on_unpin = 0;
    if (*n->fdp >= 0)
        close(*n->fdp);
    *n->fdp = -1;
}

/* Closes the least recently used unpinned descriptor; 0 if there is none. */
static int evict_one(struct fd_cache *c)
{
    if (c->lru.next == &c->lru)
        return 0;
    store_i_fdc_close(c->lru.next);
    c->evictions++;
    return 1;
}

/* Evicts unpinned entries until "extra" more descriptors fit the budget. */
static void fdc_reserve(struct fd_cache *c, uint32_t extra)
{
    while ((uint64_t)c->open + c->syncing + extra > c->budget && evict_one(c))
        ;
}

/* open(2) for a descriptor the store will hold: first evicts LRU entries
 * until one more fits the budget, and if the process is out of descriptors
 * (EMFILE/ENFILE) evicts more and retries while there is anything to evict.
 * Returns the fd, or -1 with errno set. Static: every descriptor of a
 * segment file is opened in this file. */
static int fdc_open(struct fd_cache *c, const char *path, int flags, mode_t mode)
{
    fdc_reserve(c, 1);
    for (;;) {
        int fd = open(path, flags, mode);
        if (fd >= 0)
            return fd;
        /* The budget is our share; the process limit is shared with the
         * connections. When it is exhausted, our own idle descriptors are
         * the ones we can give back. */
        if (errno != EMFILE && errno != ENFILE)
            return -1;
        c->starved = 1;
        if (!evict_one(c))
            return -1;
    }
}

void store_i_fdc_before_post(struct store *s, uint32_t n)
{
    struct fd_cache *c = &s->fds;
    int64_t now = store_i_now(s);
    if (c->starved) {
        c->starved = 0;
        c->pressure = 1;
        c->pressure_ms = now;
    }
    fdc_reserve(c, n);
    /* The budget is no help when the process as a whole is out of
     * descriptors (connections took them): a dup that fails turns into a
     * failed fsync, and in mode ALWAYS into failed appends. For a while after
     * we last saw EMFILE, give back one idle descriptor per dup to come. */
    if (c->pressure && now - c->pressure_ms < 1000 && now >= c->pressure_ms)
        for (uint32_t i = 0; i < n && evict_one(c); i++)
            ;
}

void store_i_fdc_add(struct fd_cache *c, struct fd_node *n, int *fdp)
{
    n->cache = c;
    n->fdp = fdp;
    node_push(&c->lru, n);
    c->open++;
}

void store_i_fdc_touch(struct fd_node *n)
{
    struct fd_cache *c = n->cache;
    if (!c || n->pinned || n->next == &c->lru)
        return; /* not cached, pinned, or already the most recent */
    node_unlink(n);
    node_push(&c->lru, n);
}

void store_i_fdc_pin(struct fd_node *n)
{
    if (!n->cache || n->pinned)
        return;
    node_unlink(n);
    node_push(&n->cache->pinned, n);
    n->pinned = 1;
}

void store_i_fdc_unpin_all(struct fd_cache *c)
{
    struct fd_node *n;
    while ((n = c->pinned.next) != &c->pinned) {
        node_unlink(n);
        n->pinned = 0;
        node_push(&c->lru, n);
        if (n->close_on_unpin)
            store_i_fdc_close(n);
    }
    fdc_reserve(c, 0);
}

/* Builds "dir/s<uid>-<shard>-<gen>-<counter>.seg" (returns new). */
static char *segment_path(const char *dir, uint64_t uid, uint32_t shard, struct store_seq first)
{
    size_t n = strlen(dir) + 80;
    char *p = store_i_xmalloc(n);
    snprintf(p, n, "%s/s%010" PRIu64 "-%010" PRIu32 "-%010" PRIu32 "-%020" PRIu64 ".seg", dir, uid,
             shard, first.gen, first.counter);
    return p;
}

int store_i_segment_parse_name(const char *name, uint64_t *uid, uint32_t *shard,
                               struct store_seq *first)
{
    /* s + 10 + - + 10 + - + 10 + - + 20 + .seg */
    if (strlen(name) != 1 + 10 + 1 + 10 + 1 + 10 + 1 + 20 + 4 || name[0] != 's' ||
        strcmp(name + 54, ".seg") != 0)
        return -1;
    for (int i = 1; i < 54; i++) {
        int dash = (i == 11 || i == 22 || i == 33);
        if (dash ? name[i] != '-' : (name[i] < '0' || name[i] > '9'))
            return -1;
    }
    unsigned long long u, sh, g, c;
    if (sscanf(name, "s%10llu-%10llu-%10llu-%20llu", &u, &sh, &g, &c) != 4)
        return -1;
    if (sh > UINT32_MAX || g > UINT32_MAX)
        return -1;
    *uid = u;
    *shard = (uint32_t)sh;
    first->gen = (uint32_t)g;
    first->shard = (uint32_t)sh;
    first->counter = c;
    return 0;
}

int store_i_segment_create(struct store_shard *sh, struct store_seq first, struct segment **out,
                           struct store_err *err)
{
    struct store *s = sh->store;
    char *path = segment_path(s->segdir, sh->stream->uid, sh->index, first);
    int fd = fdc_open(&s->fds, path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        store_i_err_errno(err, e, "create segment %s", path);
        free(path);
        return store_i_err_from_errno(e);
    }
    uint8_t hdr[SEG_HDR_SIZE];
    memcpy(hdr, SEG_MAGIC, 8);
    uint32_t ver = 1, idx = sh->index;
    for (int i = 0; i < 4; i++) {
        hdr[8 + i] = (uint8_t)(ver >> (8 * i));
        hdr[12 + i] = (uint8_t)(idx >> (8 * i));
    }
    int e = store_i_io_write_all(&s->io, fd, hdr, sizeof hdr);
    if (e) {
        store_i_err_errno(err, e, "write segment header %s", path);
        close(fd);
        unlink(path);
        free(path);
        return store_i_err_from_errno(e);
    }
    struct segment *seg = store_i_xcalloc(1, sizeof *seg);
    seg->path = path;
    seg->id = ++s->next_seg_id;
    seg->fd = fd;
    store_i_fdc_add(&s->fds, &seg->fdn, &seg->fd);
    seg->size = SEG_HDR_SIZE;
    seg->first = first;
    seg->next_idx_off = SEG_HDR_SIZE;
    s->stats.segments++;
    *out = seg;
    return 0;
}

int store_i_segment_reopen(struct store_shard *sh, struct segment *seg, struct store_err *err)
{
    struct store *s = sh->store;
    int fd = fdc_open(&s->fds, seg->path, O_WRONLY | O_APPEND | O_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        store_i_err_errno(err, e, "reopen segment %s", seg->path);
        return store_i_err_from_errno(e);
    }
    seg->fd = fd;
    store_i_fdc_add(&s->fds, &seg->fdn, &seg->fd);
    return 0;
}

/* Cuts "seg" back to "size" bytes and makes the cut durable. Without the
 * fsync, frames of a batch reported failed could reappear after a crash and
 * be read as records. Returns 0 or -1 (errno set). */
int store_i_segment_cut(struct store *s, struct segment *seg, uint64_t size)
{
    int fd = seg->fd >= 0 ? seg->fd : open(seg->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = ftruncate(fd, (off_t)size) == 0 && s->io.fsync(s->io.ctx, fd) == 0 ? 0 : -1;
    if (fd != seg->fd) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return rc;
}

void store_i_segment_delete_file(const struct segment *seg)
{
    unlink(seg->path);
}

int store_i_segment_open_read(struct store *s, const struct segment *seg, struct store_err *err)
{
    int fd = fdc_open(&s->fds, seg->path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        store_i_err_errno(err, errno, "open segment %s", seg->path);
    return fd;
}

/* ---- segment files found at open ------------------------------------------- */

int store_i_segment_file_has_data(struct store *s, const char *name)
{
    struct stat st;
    return fstatat(s->seg_dir_fd, name, &st, 0) == 0 && (uint64_t)st.st_size > SEG_HDR_SIZE;
}

/* A segment the catalog does not know may still hold acknowledged records (a
 * catalog that lost a change), so it is moved aside for an operator rather
 * than deleted. */
int store_i_segment_quarantine(struct store *s, int *qfd, const char *name,
                               struct store_err *err)
{
    char q[4200];
    if (*qfd < 0) {
        if (mkdirat(s->dir_fd, "quarantine", 0755) != 0 && errno != EEXIST)
            return store_i_err_errno(err, errno, "mkdir %s/quarantine", s->dir);
        snprintf(q, sizeof q, "quarantine/%" PRId64 "-g%" PRIu32, store_i_now(s), s->gen);
        if (mkdirat(s->dir_fd, q, 0755) != 0 && errno != EEXIST)
            return store_i_err_errno(err, errno, "mkdir %s/%s", s->dir, q);
        *qfd = openat(s->dir_fd, q, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (*qfd < 0)
            return store_i_err_errno(err, errno, "open %s/%s", s->dir, q);
        /* The new directories must survive a crash along with the move. */
        int pfd = openat(s->dir_fd, "quarantine", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd >= 0) {
            s->io.fsync(s->io.ctx, pfd);
            close(pfd);
        }
        s->io.fsync(s->io.ctx, s->dir_fd);
    }
    if (renameat(s->seg_dir_fd, name, *qfd, name) != 0)
        return store_i_err_errno(err, errno, "move segment %s to quarantine", name);
    store_i_log(s, STORE_LOG_WARN,
                "segment %s belongs to no stream in the catalog: moved to %s/quarantine", name,
                s->dir);
    return 0;
}

void store_i_segment_quarantine_done(struct store *s, int qfd)
{
    /* Both directories' entries changed: the moves are durable only once
     * each is fsynced. */
    s->io.fsync(s->io.ctx, qfd);
    s->io.fsync(s->io.ctx, s->seg_dir_fd);
    close(qfd);
}

static void index_push(struct segment *seg, struct store_seq seq, int64_t arrival, uint64_t off)
{
    if (seg->nidx == seg->idxcap) {
        seg->idxcap = seg->idxcap ? seg->idxcap * 2 : 16;
        seg->idx = store_i_xrealloc(seg->idx, seg->idxcap * sizeof *seg->idx);
    }
    seg->idx[seg->nidx].seq = seq;
    seg->idx[seg->nidx].arrival = arrival;
    seg->idx[seg->nidx].off = off;
    seg->nidx++;
    seg->next_idx_off = off + SEG_INDEX_EVERY;
}

static void note_one(struct segment *seg, struct store_seq seq, int64_t arrival, uint64_t off)
{
    if (seg->nrec == 0) {
        seg->first = seq;
        seg->first_arrival = arrival;
    }
    seg->last = seq;
    seg->last_arrival = arrival;
    seg->nrec++;
    if (off >= seg->next_idx_off)
        index_push(seg, seq, arrival, off);
}

/* Records "n" frames of "buf" (offsets "offs") written at file offset "at". */
static void note_frames(struct segment *seg, const uint8_t *buf, const uint32_t *offs, uint32_t n,
                        uint64_t at)
{
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *f = buf + offs[i];
        note_one(seg, store_i_record_peek_seq(f), store_i_record_peek_arrival(f), at + offs[i]);
    }
}

int store_i_segment_append(struct store *s, struct segment *seg, const uint8_t *buf, size_t len,
                           const uint32_t *offs, uint32_t n)
{
    uint64_t at = seg->size;
    int e = store_i_io_write_all(&s->io, seg->fd, buf, len);
    if (e)
        return e; /* seg->size still ends the last whole frame: the cut point */
    note_frames(seg, buf, offs, n, at);
    seg->size = at + len;
    return 0;
}

void store_i_segment_seal(struct segment *seg)
{
    if (seg->fdn.pinned) {
        /* A segment rolled within a commit: its sync item still borrows the
         * descriptor, and closing it now would hand its number to the next
         * segment's open, so the syncer would fsync the wrong file. */
        seg->fdn.close_on_unpin = 1;
        return;
    }
    if (seg->fdn.cache)
        store_i_fdc_close(&seg->fdn);
    else if (seg->fd >= 0)
        close(seg->fd);
    seg->fd = -1;
}

void store_i_segment_free(struct segment *seg)
{
    if (!seg)
        return;
    /* Unconditionally: a freed segment must leave no node in the cache. (A
     * commit frees only a segment it failed to write, which no sync item
     * borrows.) */
    store_i_fdc_close(&seg->fdn);
    if (seg->fd >= 0)
        close(seg->fd);
    seg->fd = -1;
    free(seg->path);
    free(seg->idx);
    free(seg);
}

static int seq_lt(struct store_seq a, struct store_seq b)
{
    return a.gen < b.gen || (a.gen == b.gen && a.counter < b.counter);
}

uint64_t store_i_segment_index_seq(const struct segment *seg, struct store_seq seq)
{
    size_t lo = 0, hi = seg->nidx; /* find last entry with idx.seq <= seq */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (!seq_lt(seq, seg->idx[mid].seq))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? SEG_HDR_SIZE : seg->idx[lo - 1].off;
}

uint64_t store_i_segment_index_time(const struct segment *seg, int64_t ts)
{
    size_t lo = 0, hi = seg->nidx; /* last entry with arrival < ts */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (seg->idx[mid].arrival < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? SEG_HDR_SIZE : seg->idx[lo - 1].off;
}

/* ---- recovery scan --------------------------------------------------------- */

/* Enough to hold any frame's header, hash key and partition key. */
#define SCAN_HEAD (RECORD_HDR_SIZE + 16u + STORE_MAX_PARTITION_KEY)

struct scanbuf {
    int fd;
    uint8_t *p;
    size_t cap, len;
    uint64_t base; /* file offset of p[0] */
    uint64_t size; /* file size */
};

/* Makes [off, off+need) available (clamped to the file size); 0 or errno. */
static int sb_ensure(struct scanbuf *sb, uint64_t off, size_t need)
{
    if (off + need > sb->size)
        need = (size_t)(sb->size - off);
    if (off >= sb->base && off + need <= sb->base + sb->len)
        return 0;
    if (need > sb->cap) {
        sb->cap = need;
        sb->p = store_i_xrealloc(sb->p, sb->cap);
    }
    sb->base = off;
    sb->len = 0;
    size_t want = sb->cap;
    if (off + want > sb->size)
        want = (size_t)(sb->size - off);
    while (sb->len < want) {
        ssize_t r = pread(sb->fd, sb->p + sb->len, want - sb->len, (off_t)(off + sb->len));
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (r == 0) return EIO; /* file shrank under us */
        sb->len += (size_t)r;
    }
    return 0;
}

/* 1 if [off, size) is all zero bytes, 0 if not, -errno on read failure. */
static int rest_is_zero(struct scanbuf *sb, uint64_t off)
{
    while (off < sb->size) {
        size_t n = sb->size - off > (1u << 20) ? (1u << 20) : (size_t)(sb->size - off);
        int e = sb_ensure(sb, off, n);
        if (e) return -e;
        const uint8_t *p = sb->p + (off - sb->base);
        for (size_t i = 0; i < n; i++)
            if (p[i]) return 0;
        off += n;
    }
    return 1;
}

enum scan_outcome store_i_segment_scan(struct store_shard *sh, struct segment *seg, int has_prev,
                                       struct store_seq prev_last, int may_tear,
                                       struct store_err *err)
{
    struct store *s = sh->store;
    enum scan_outcome out = SCAN_OK;
    struct scanbuf sb = {.fd = -1};
    seg->nrec = 0;
    seg->nidx = 0;
    seg->next_idx_off = SEG_HDR_SIZE;
    sb.fd = fdc_open(&s->fds, seg->path, O_RDONLY | O_CLOEXEC, 0);
    if (sb.fd < 0) {
        store_i_err_errno(err, errno, "open segment %s", seg->path);
        return SCAN_IOERR;
    }
    struct stat st;
    if (fstat(sb.fd, &st) != 0) {
        store_i_err_errno(err, errno, "stat segment %s", seg->path);
        out = SCAN_IOERR;
        goto done;
    }
    sb.size = (uint64_t)st.st_size;
    /* Up to 4 MiB at a time, but no more than the file: a store with
     * thousands of small segments opens without gigabytes of malloc churn. */
    sb.cap = sb.size < (4u << 20) ? (size_t)sb.size + 1 : 4u << 20;
    sb.p = store_i_xmalloc(sb.cap);
    if (sb.size < SEG_HDR_SIZE) {
        store_i_log(s, STORE_LOG_WARN,
                    "shard=%s segment=%s: torn header (%" PRIu64 " bytes), removed", sh->id,
                    seg->path, sb.size);
        out = SCAN_EMPTY;
        goto done;
    }
    int e = sb_ensure(&sb, 0, SEG_HDR_SIZE);
    if (e) {
        store_i_err_errno(err, e, "read segment %s", seg->path);
        out = SCAN_IOERR;
        goto done;
    }
    uint32_t ver = (uint32_t)sb.p[8] | (uint32_t)sb.p[9] << 8 | (uint32_t)sb.p[10] << 16 |
                   (uint32_t)sb.p[11] << 24;
    uint32_t idx = (uint32_t)sb.p[12] | (uint32_t)sb.p[13] << 8 | (uint32_t)sb.p[14] << 16 |
                   (uint32_t)sb.p[15] << 24;
    if (memcmp(sb.p, SEG_MAGIC, 8) != 0 || ver != 1 || idx != sh->index) {
        if (sb.size == SEG_HDR_SIZE && rest_is_zero(&sb, 0) == 1) {
            out = SCAN_EMPTY;
            goto done;
        }
        store_i_err_set(err, STORE_ECORRUPT, "segment %s: bad header", seg->path);
        out = SCAN_CORRUPT;
        goto done;
    }

    uint64_t off = SEG_HDR_SIZE;
    struct store_seq last = prev_last;
    int have_last = has_prev;
    const char *torn = NULL;
    while (off < sb.size) {
        /* A header first, then (if it says the frame runs past the window)
         * the whole frame: asking for the largest possible frame at every
         * record would re-read the window at every record once frames may
         * be 10 MiB. */
        e = sb_ensure(&sb, off, SCAN_HEAD);
        struct store_record rec;
        size_t flen = 0;
        const char *reason;
        enum record_status rs = RECORD_INCOMPLETE;
        for (int pass = 0; pass < 2 && !e; pass++) {
            const uint8_t *p = sb.p + (off - sb.base);
            size_t avail = (size_t)(sb.base + sb.len - off);
            rs = store_i_record_decode(p, avail, 1, &rec, &flen, &reason);
            if (rs != RECORD_INCOMPLETE || flen <= avail || off + flen > sb.size)
                break;
            e = sb_ensure(&sb, off, flen);
        }
        if (e) {
            store_i_err_errno(err, e, "read segment %s", seg->path);
            out = SCAN_IOERR;
            goto done;
        }
        if (rs == RECORD_OK) {
            if (rec.seq.shard != sh->index || (have_last && !seq_lt(last, rec.seq))) {
                store_i_err_set(err, STORE_ECORRUPT,
                                "segment %s offset %" PRIu64 ": sequence number out of order",
                                seg->path, off);
                out = SCAN_CORRUPT;
                goto done;
            }
            note_one(seg, rec.seq, rec.arrival_ms, off);
            last = rec.seq;
            have_last = 1;
            off += flen;
            continue;
        }
        if (rs == RECORD_INCOMPLETE) {
            torn = reason; /* the frame runs past the end of the file */
            break;
        }
        if (rs == RECORD_BAD_DATA && off + flen == sb.size) {
            torn = reason; /* the last frame's payload never fully reached disk */
            break;
        }
        if (rs == RECORD_BAD_HEADER) {
            int z = rest_is_zero(&sb, off);
            if (z < 0) {
                store_i_err_errno(err, -z, "read segment %s", seg->path);
                out = SCAN_IOERR;
                goto done;
            }
            if (z == 1) {
                torn = "zero-filled tail";
                break;
            }
        }
        store_i_err_set(err, STORE_ECORRUPT, "segment %s offset %" PRIu64 ": corrupt record (%s)",
                        seg->path, off, reason);
        out = SCAN_CORRUPT;
        goto done;
    }
    if (torn && !may_tear) {
        /* Records follow in a later segment, so this end was written
         * completely once: it is damage, not a crash mid-write. */
        store_i_err_set(err, STORE_ECORRUPT,
                        "segment %s offset %" PRIu64
                        ": damaged record in a sealed segment (%s; %" PRIu64
                        " bytes from there, file left intact)",
                        seg->path, off, torn, sb.size - off);
        out = SCAN_CORRUPT;
        goto done;
    }
    if (torn) {
        store_i_log(s, STORE_LOG_WARN,
                    "shard=%s segment=%s: torn tail cut at offset %" PRIu64 " (%" PRIu64
                    " bytes dropped: %s)",
                    sh->id, seg->path, off, sb.size - off, torn);
        int wfd = fdc_open(&s->fds, seg->path, O_WRONLY | O_CLOEXEC, 0);
        if (wfd < 0 || ftruncate(wfd, (off_t)off) != 0 || s->io.fsync(s->io.ctx, wfd) != 0) {
            store_i_err_errno(err, errno, "truncate segment %s", seg->path);
            if (wfd >= 0) close(wfd);
            out = SCAN_IOERR;
            goto done;
        }
        close(wfd);
    }
    seg->size = off;
    if (seg->nrec == 0)
        out = SCAN_EMPTY;
done:
    if (sb.fd >= 0) close(sb.fd);
    free(sb.p);
    return out;
}
