/* syncer.h - the background fsync thread and its queues (see syncer.c). */
#ifndef SLUICE_STORE_SYNCER_H
#define SLUICE_STORE_SYNCER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* "Make segment seg_id durable up to shard lsn": posted by the loop thread
 * after store_commit wrote it. "shard" is an opaque token returned in the result. */
struct sync_item {
    void *shard;
    uint64_t epoch, lsn, seg_id;
    int fd;        /* a dup of the segment's fd, taken by store_i_syncer_post */
    int dir_sync;  /* the segment file is new: fsync the directory too */
    int merged;    /* out: set by store_i_syncer_post when folded into a queued item
                      (no separate result will come back for it) */
};

struct sync_item_vec {
    struct sync_item *v;
    size_t n, cap;
};

/* Outcome of one item: err is 0 or an errno value. */
struct sync_result {
    void *shard;
    uint64_t epoch, lsn;
    int err;
};

struct sync_result_vec {
    struct sync_result *v;
    size_t n, cap;
};

struct syncer;
struct cat_writer;
struct cat_rec;

/* Starts the thread. "io" and "dir_fd" are borrowed until store_i_syncer_free; "dir"
 * is copied; "catw" (the catalog writer) is taken and freed by store_i_syncer_free. Returns NULL
 * with "*errnum" set on failure. */
struct syncer *store_i_syncer_new(enum store_durability mode, uint32_t interval_ms,
                                  const struct store_io_ops *io, const char *dir, int dir_fd,
                                  int seg_dir_fd, struct cat_writer *catw, int *errnum);

/* Stops the thread after it has drained every queued item and catalog record,
 * joins it, and frees the syncer. Results not yet taken are lost, so take them
 * first with store_i_syncer_take(). Accepts NULL. */
void store_i_syncer_free(struct syncer *sy);

/* The eventfd that becomes readable when results are ready. */
int store_i_syncer_fd(const struct syncer *sy);

/* Queues items, taking their fds; an item for a segment that is still queued
 * is folded into it (its fd closed, "merged" set). In mode ALWAYS wakes the
 * thread; in mode INTERVAL the thread picks them up at its next tick. */
void store_i_syncer_post(struct syncer *sy, struct sync_item *items, size_t n);

/* Queues catalog records (their "data" is taken; the array is copied). The
 * thread appends them to the catalog log before it syncs any data of the same
 * pass. After a failure every record is dropped until store_i_syncer_catalog_reset. */
void store_i_syncer_post_catalog(struct syncer *sy, struct cat_rec *recs, size_t n);
/* The loop thread has undone the failed changes: accept records again. */
void store_i_syncer_catalog_reset(struct syncer *sy);

/* Moves finished results into "out" (appending) and reports the newest
 * durable catalog version and the newest failed one (0 if none) with its
 * errno. Clears the eventfd. */
void store_i_syncer_take(struct syncer *sy, struct sync_result_vec *out, uint64_t *mf_done,
                         uint64_t *mf_failed, int *mf_errnum);

/* Blocks until every queued item and catalog record is finished (store_close). */
void store_i_syncer_wait_idle(struct syncer *sy);

/* Number of fsync calls made so far. */
uint64_t store_i_syncer_fsyncs(const struct syncer *sy);
/* Adds the timed fsyncs by duration (store_fsync_bounds) into "buckets"
 * and their total time into "*seconds". */
void store_i_syncer_fsync_hist(const struct syncer *sy, uint64_t *buckets, double *seconds);

#endif
