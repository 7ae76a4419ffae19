/* syncer.c - background fsync thread and the durable watermark hand-off.
 *
 * Upstream: store_commit() (store.c/shard.c) posts one sync item per segment it
 * wrote, and the catalog log records (catalog.c) of the changes made since the
 * last commit. Downstream: the records are appended to the catalog log with
 * store_i_cat_writer_append(); results go back through a mutex-protected vector
 * and an eventfd; the loop thread's store_dispatch() takes them with
 * store_i_syncer_take().
 *
 * Group commit: the thread takes every queued item at once, fsyncs each
 * distinct segment once (one fsync covers all writes made before it was taken),
 * fsyncs the segment directory once if any segment is new, and reports the
 * whole batch with one wake-up. Writeback of all files in a batch is started
 * (sync_file_range) before the first fsync, so the fsyncs overlap. In mode
 * INTERVAL items wait for the next tick; in mode NEVER no item is posted, but
 * catalog records are still appended (and fsynced) here: catalog changes are
 * durable in every mode.
 *
 * Invariant: the thread never touches store state. It owns dups of the
 * segment fds it syncs, so the loop may close or unlink segments freely.
 */
#include "syncer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct syncer {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work arrived or stop */
    pthread_cond_t idle_cv; /* queue drained */
    enum store_durability mode;
    uint32_t interval_ms;
    const struct store_io_ops *io;
    char *dir;
    int dir_fd, seg_dir_fd;
    int efd;

    /* under mu */
    struct sync_item_vec in;
    struct sync_result_vec out;
    struct cat_rec *cat;     /* catalog records queued, version order */
    size_t ncat, catcap;
    struct cat_writer *catw; /* used by the thread only, outside mu */
    int cat_failed;          /* a catalog append failed: drop records until reset */
    uint64_t mf_done, mf_failed;
    int mf_errnum;
    int stop;
    int busy;

    uint64_t fsyncs; /* atomic */
    /* Timed fsyncs, by duration (atomic: read by the loop thread). */
    uint64_t fsync_hist[STORE_FSYNC_BOUNDS + 1];
    uint64_t fsync_ns;
};

/* ---- thread --------------------------------------------------------------- */

static void vec_push_result(struct sync_result_vec *v, const struct sync_result *r)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->v = store_i_xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = *r;
}

static void notify(struct syncer *sy)
{
    uint64_t one = 1;
    /* An eventfd counter cannot overflow in practice; EAGAIN only means it is
     * already readable, which is all we need. */
    ssize_t w = write(sy->efd, &one, sizeof one);
    (void)w;
}

const double store_fsync_bounds[STORE_FSYNC_BOUNDS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int do_fsync(struct syncer *sy, int fd)
{
    __atomic_add_fetch(&sy->fsyncs, 1, __ATOMIC_RELAXED);
    uint64_t t0 = mono_ns();
    errno = 0;
    int rc = sy->io->fsync(sy->io->ctx, fd);
    int e = errno;
    uint64_t ns = mono_ns() - t0;
    size_t b = 0;
    while (b < STORE_FSYNC_BOUNDS && (double)ns / 1e9 > store_fsync_bounds[b])
        b++;
    __atomic_add_fetch(&sy->fsync_hist[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&sy->fsync_ns, ns, __ATOMIC_RELAXED);
    if (rc != 0)
        return e ? e : EIO;
    return 0;
}

static void run_batch(struct syncer *sy, struct sync_item_vec *b)
{
    int dir_err = 0, need_dir = 0;
    for (size_t i = 0; i < b->n; i++)
        need_dir |= b->v[i].dir_sync;
    /* Start writeback of every file first so the devices work on all of them
     * while we wait for each fdatasync in turn: on ext4 this halves the cost
     * of a group commit over several segments. Only a hint; durability still
     * comes from the fsync below. */
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i].fd >= 0)
            sync_file_range(b->v[i].fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (need_dir)
        dir_err = do_fsync(sy, sy->seg_dir_fd);
    for (size_t i = 0; i < b->n; i++) {
        struct sync_item *it = &b->v[i];
        int err = do_fsync(sy, it->fd);
        close(it->fd);
        if (err == 0 && it->dir_sync)
            err = dir_err;
        struct sync_result r = {it->shard, it->epoch, it->lsn, err};
        pthread_mutex_lock(&sy->mu);
        vec_push_result(&sy->out, &r);
        pthread_mutex_unlock(&sy->mu);
    }
    /* One wake-up per batch: acking all appenders together keeps their next
     * batches together, so the next group commit is as large as this one. */
    notify(sy);
    b->n = 0;
}

static void add_ms(struct timespec *ts, uint32_t ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int ts_reached(const struct timespec *now, const struct timespec *dl)
{
    return now->tv_sec > dl->tv_sec || (now->tv_sec == dl->tv_sec && now->tv_nsec >= dl->tv_nsec);
}

static void *syncer_main(void *arg)
{
    struct syncer *sy = arg;
    struct sync_item_vec batch = {0};
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    add_ms(&deadline, sy->interval_ms);

    pthread_mutex_lock(&sy->mu);
    for (;;) {
        int take_items = 0;
        for (;;) {
            if (sy->ncat) break;
            if (sy->in.n && (sy->mode == STORE_DURABILITY_ALWAYS || sy->stop)) {
                take_items = 1;
                break;
            }
            if (sy->stop) break;
            if (sy->mode == STORE_DURABILITY_INTERVAL) {
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (ts_reached(&now, &deadline)) {
                    deadline = now;
                    add_ms(&deadline, sy->interval_ms);
                    if (sy->in.n) {
                        take_items = 1;
                        break;
                    }
                    continue;
                }
                pthread_cond_timedwait(&sy->cv, &sy->mu, &deadline);
            } else {
                pthread_cond_wait(&sy->cv, &sy->mu);
            }
        }
        if (sy->in.n && (sy->stop || sy->mode == STORE_DURABILITY_ALWAYS))
            take_items = 1;
        if (!take_items && !sy->ncat) {
            /* stop with nothing left */
            break;
        }
        struct sync_item_vec tmp = sy->in;
        if (take_items) {
            sy->in = batch;
            batch = tmp;
        }
        struct cat_rec *cat = sy->cat;
        size_t ncat = sy->ncat;
        sy->cat = NULL;
        sy->ncat = sy->catcap = 0;
        sy->busy = 1;
        pthread_mutex_unlock(&sy->mu);

        /* Catalog first: a change (a new stream above all) is durable before
         * any data of this pass is, so no acknowledged record can belong to a
         * stream the catalog on disk does not know. */
        int mf_err = 0;
        if (ncat) {
            mf_err = store_i_cat_writer_append(sy->catw, cat, ncat);
            __atomic_add_fetch(&sy->fsyncs, 1, __ATOMIC_RELAXED);
        }
        if (take_items)
            run_batch(sy, &batch);

        pthread_mutex_lock(&sy->mu);
        if (ncat) {
            if (mf_err == 0) {
                if (cat[ncat - 1].version > sy->mf_done) sy->mf_done = cat[ncat - 1].version;
            } else {
                /* Later records may build on the failed ones: drop them all
                 * until the loop thread has undone its changes. */
                sy->cat_failed = 1;
                sy->mf_failed = cat[ncat - 1].version;
                sy->mf_errnum = mf_err;
                for (size_t i = 0; i < sy->ncat; i++)
                    free(sy->cat[i].data);
                sy->ncat = 0;
            }
            for (size_t i = 0; i < ncat; i++)
                free(cat[i].data);
            free(cat);
        }
        sy->busy = 0;
        if (!sy->in.n && !sy->ncat)
            pthread_cond_broadcast(&sy->idle_cv);
        if (ncat)
            notify(sy);
    }
    sy->busy = 0;
    pthread_cond_broadcast(&sy->idle_cv);
    pthread_mutex_unlock(&sy->mu);
    free(batch.v);
    return NULL;
}

/* ---- API ------------------------------------------------------------------ */

struct syncer *store_i_syncer_new(enum store_durability mode, uint32_t interval_ms,
                                  const struct store_io_ops *io, const char *dir, int dir_fd,
                                  int seg_dir_fd, struct cat_writer *catw, int *errnum)
{
    struct syncer *sy = store_i_xcalloc(1, sizeof *sy);
    sy->catw = catw;
    sy->mode = mode;
    sy->interval_ms = interval_ms ? interval_ms : 1000;
    sy->io = io;
    sy->dir = store_i_xstrdup(dir);
    sy->dir_fd = dir_fd;
    sy->seg_dir_fd = seg_dir_fd;
    sy->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sy->efd < 0) {
        *errnum = errno;
        free(sy->dir);
        free(sy);
        return NULL;
    }
    pthread_mutex_init(&sy->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sy->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&sy->idle_cv, NULL);
    int rc = pthread_create(&sy->th, NULL, syncer_main, sy);
    if (rc != 0) {
        *errnum = rc;
        close(sy->efd);
        free(sy->dir);
        free(sy);
        return NULL;
    }
    return sy;
}

void store_i_syncer_wait_idle(struct syncer *sy)
{
    pthread_mutex_lock(&sy->mu);
    while (sy->in.n || sy->ncat || sy->busy) {
        if (sy->in.n && sy->mode == STORE_DURABILITY_INTERVAL) {
            /* Temporarily behave like ALWAYS so close does not wait a tick. */
            sy->mode = STORE_DURABILITY_ALWAYS;
            pthread_cond_signal(&sy->cv);
        }
        pthread_cond_wait(&sy->idle_cv, &sy->mu);
    }
    pthread_mutex_unlock(&sy->mu);
}

void store_i_syncer_free(struct syncer *sy)
{
    if (!sy)
        return;
    pthread_mutex_lock(&sy->mu);
    sy->stop = 1;
    pthread_cond_signal(&sy->cv);
    pthread_mutex_unlock(&sy->mu);
    pthread_join(sy->th, NULL);
    for (size_t i = 0; i < sy->in.n; i++)
        close(sy->in.v[i].fd);
    free(sy->in.v);
    free(sy->out.v);
    for (size_t i = 0; i < sy->ncat; i++)
        free(sy->cat[i].data);
    free(sy->cat);
    store_i_cat_writer_free(sy->catw);
    free(sy->dir);
    close(sy->efd);
    pthread_mutex_destroy(&sy->mu);
    pthread_cond_destroy(&sy->cv);
    pthread_cond_destroy(&sy->idle_cv);
    free(sy);
}

int store_i_syncer_fd(const struct syncer *sy)
{
    return sy->efd;
}

void store_i_syncer_post(struct syncer *sy, struct sync_item *items, size_t n)
{
    pthread_mutex_lock(&sy->mu);
    for (size_t i = 0; i < n; i++) {
        struct sync_item *it = &items[i];
        struct sync_item *q = NULL;
        it->merged = 0;
        for (size_t j = 0; j < sy->in.n; j++)
            if (sy->in.v[j].seg_id == it->seg_id && sy->in.v[j].shard == it->shard &&
                sy->in.v[j].epoch == it->epoch) {
                q = &sy->in.v[j];
                break;
            }
        if (q) {
            /* Still queued: the pending fsync will cover this write too. */
            if (it->lsn > q->lsn) q->lsn = it->lsn;
            q->dir_sync |= it->dir_sync;
            it->merged = 1;
            continue;
        }
        /* The syncer needs its own descriptor: the segment's may be closed
         * (sealed, trimmed) before the fsync runs. Dup'ing only here, for
         * items not merged into a queued one, saves two syscalls per commit
         * in mode INTERVAL. A failed dup is reported as an fsync failure so
         * no ack goes out for data we could not sync. */
        it->fd = fcntl(it->fd, F_DUPFD_CLOEXEC, 0);
        if (sy->in.n == sy->in.cap) {
            sy->in.cap = sy->in.cap ? sy->in.cap * 2 : 16;
            sy->in.v = store_i_xrealloc(sy->in.v, sy->in.cap * sizeof *sy->in.v);
        }
        sy->in.v[sy->in.n++] = *it;
    }
    if (sy->mode == STORE_DURABILITY_ALWAYS)
        pthread_cond_signal(&sy->cv);
    pthread_mutex_unlock(&sy->mu);
}

void store_i_syncer_post_catalog(struct syncer *sy, struct cat_rec *recs, size_t n)
{
    pthread_mutex_lock(&sy->mu);
    if (sy->cat_failed) {
        /* Posted before the loop thread learnt of the failure: these changes
         * are being undone too. */
        for (size_t i = 0; i < n; i++)
            free(recs[i].data);
    } else {
        if (sy->ncat + n > sy->catcap) {
            sy->catcap = sy->ncat + n > 2 * sy->catcap ? sy->ncat + n : 2 * sy->catcap;
            sy->cat = store_i_xrealloc(sy->cat, sy->catcap * sizeof *sy->cat);
        }
        memcpy(sy->cat + sy->ncat, recs, n * sizeof *recs);
        sy->ncat += n;
        pthread_cond_signal(&sy->cv);
    }
    pthread_mutex_unlock(&sy->mu);
}

void store_i_syncer_catalog_reset(struct syncer *sy)
{
    pthread_mutex_lock(&sy->mu);
    sy->cat_failed = 0;
    pthread_mutex_unlock(&sy->mu);
}

void store_i_syncer_take(struct syncer *sy, struct sync_result_vec *out, uint64_t *mf_done,
                         uint64_t *mf_failed, int *mf_errnum)
{
    uint64_t junk;
    ssize_t r = read(sy->efd, &junk, sizeof junk);
    (void)r;
    pthread_mutex_lock(&sy->mu);
    for (size_t i = 0; i < sy->out.n; i++)
        vec_push_result(out, &sy->out.v[i]);
    sy->out.n = 0;
    *mf_done = sy->mf_done;
    *mf_failed = sy->mf_failed;
    *mf_errnum = sy->mf_errnum;
    sy->mf_failed = 0;
    pthread_mutex_unlock(&sy->mu);
}

void store_i_syncer_fsync_hist(const struct syncer *sy, uint64_t *buckets, double *seconds)
{
    for (size_t i = 0; i <= STORE_FSYNC_BOUNDS; i++)
        buckets[i] += __atomic_load_n(&sy->fsync_hist[i], __ATOMIC_RELAXED);
    *seconds += (double)__atomic_load_n(&sy->fsync_ns, __ATOMIC_RELAXED) / 1e9;
}

uint64_t store_i_syncer_fsyncs(const struct syncer *sy)
{
    return __atomic_load_n(&sy->fsyncs, __ATOMIC_RELAXED);
}
