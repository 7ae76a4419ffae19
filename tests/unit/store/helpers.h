/* helpers.h - fixtures shared by the store's unit tests: temp directories, a
 * fake clock, a loop "pump" that commits and dispatches until appends
 * complete, a fault-injecting store_io_ops, and deterministic record data. */
#ifndef SLUICE_TEST_STORE_HELPERS_H
#define SLUICE_TEST_STORE_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

#define UNUSED __attribute__((unused))

static UNUSED int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static UNUSED void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static UNUSED char *tmpdir_new(void)
{
    char tmpl[] = "/tmp/sluice-store-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    cr_assert_not_null(d);
    return strdup(d);
}

/* ---- clock ---- */
struct fake_clock { int64_t now; };
static UNUSED int64_t fake_now(void *arg) { return ((struct fake_clock *)arg)->now; }

/* ---- log capture ---- */
struct logcap { int warn, error; char last[512]; };
static UNUSED void cap_log(void *arg, enum store_log_level lvl, const char *msg)
{
    struct logcap *c = arg;
    if (!c) return;
    if (lvl == STORE_LOG_WARN) c->warn++;
    if (lvl == STORE_LOG_ERROR) c->error++;
    snprintf(c->last, sizeof c->last, "%s", msg);
}

/* ---- fault-injecting I/O ---- */
struct faults {
    int write_fail_errno;   /* next write fails with this (0 = none) */
    int write_ok_left;      /* with write_fail_errno: writes that still succeed first */
    int write_short;        /* next write writes only half, then fails */
    int fsync_fail_errno;   /* next fsync fails (atomic: syncer thread) */
    int fsync_fail_count;   /* how many fsyncs fail */
    int block_catalog_fsync; /* atomic: fsyncs of CATALOG-* files wait while set */
    int catalog_fsyncs_ok;   /* atomic: fsyncs of CATALOG-* files that returned success */
};

/* True if "fd" is one of the catalog log files. */
static UNUSED int fd_is_catalog(int fd)
{
    char link[64], path[512];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = 0;
    return strstr(path, "/CATALOG-") != NULL;
}

static UNUSED ssize_t fault_write(void *ctx, int fd, const void *buf, size_t len)
{
    struct faults *f = ctx;
    if (f->write_short && len > 1) {
        f->write_short = 0;
        return write(fd, buf, len / 2);
    }
    if (f->write_fail_errno) {
        if (f->write_ok_left > 0) {
            f->write_ok_left--;
            return write(fd, buf, len);
        }
        errno = f->write_fail_errno;
        return -1;
    }
    return write(fd, buf, len);
}

static UNUSED int fault_fsync(void *ctx, int fd)
{
    struct faults *f = ctx;
    /* Bounded: a test that forgets to clear the flag still ends. */
    for (int i = 0; i < 2000 && __atomic_load_n(&f->block_catalog_fsync, __ATOMIC_ACQUIRE) &&
                    fd_is_catalog(fd); i++) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (__atomic_load_n(&f->fsync_fail_count, __ATOMIC_ACQUIRE) > 0) {
        __atomic_sub_fetch(&f->fsync_fail_count, 1, __ATOMIC_ACQ_REL);
        errno = __atomic_load_n(&f->fsync_fail_errno, __ATOMIC_ACQUIRE);
        return -1;
    }
    int rc = fdatasync(fd);
    if (rc == 0 && fd_is_catalog(fd))
        __atomic_add_fetch(&f->catalog_fsyncs_ok, 1, __ATOMIC_ACQ_REL);
    return rc;
}

/* ---- completion counting ---- */
struct done_ctr { int ok, failed, last_code; };
static UNUSED void on_done(void *arg, const struct store_err *err)
{
    struct done_ctr *d = arg;
    if (err) {
        d->failed++;
        d->last_code = err->code;
    } else {
        d->ok++;
    }
}

/* Commits, then dispatches until "d" has seen "want" completions (or 10 s). */
static UNUSED void pump_until(struct store *s, struct done_ctr *d, int want)
{
    store_commit(s);
    for (int i = 0; i < 10000 && d->ok + d->failed < want; i++) {
        struct pollfd p = {store_notify_fd(s), POLLIN, 0};
        poll(&p, 1, 1);
        store_dispatch(s);
        store_commit(s);
    }
    cr_assert_geq(d->ok + d->failed, want, "appends did not complete");
}

/* Waits until every catalog change so far is in a durable manifest;
 * returns the error code the sync reported (0 on success). */
static UNUSED void on_catalog(void *arg, const struct store_err *err)
{
    struct done_ctr *d = arg;
    on_done(d, err);
}
static UNUSED int catalog_settle(struct store *s)
{
    struct done_ctr d = {0};
    store_catalog_sync(s, on_catalog, &d);
    pump_until(s, &d, 1);
    return d.failed ? d.last_code : 0;
}

/* ---- deterministic records ---- */
static UNUSED size_t rec_data(uint64_t i, uint8_t *buf, size_t max)
{
    size_t len = (size_t)((i * 2654435761u) % 97) + 3;
    if (len > max) len = max;
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i * 31 + k * 7 + (i >> 8));
    return len;
}

static UNUSED size_t rec_pk(uint64_t i, char *buf)
{
    return (size_t)snprintf(buf, 32, "pk-%llu", (unsigned long long)i);
}

/* Appends record number "i" (its content derives from i) as a batch of one. */
static UNUSED struct store_seq append_one(struct store_shard *sh, uint64_t i, struct done_ctr *d)
{
    uint8_t data[128];
    char pk[32];
    struct store_record_in r = {{(const uint8_t *)pk, rec_pk(i, pk)}, NULL,
                                {data, rec_data(i, data, sizeof data)}};
    struct store_seq seq;
    struct store_err err;
    int rc = store_shard_append(sh, &r, 1, &seq, on_done, d, &err);
    cr_assert_eq(rc, 0, "append: %s", err.msg);
    return seq;
}

/* Appends records first..first+n-1 (n <= 64) as one batch; returns the first seq. */
static UNUSED struct store_seq append_batch(struct store_shard *sh, uint64_t first, size_t n,
                                            struct done_ctr *d)
{
    static uint8_t data[64][128];
    static char pk[64][32];
    struct store_record_in r[64];
    struct store_seq seqs[64];
    cr_assert_leq(n, 64);
    for (size_t i = 0; i < n; i++) {
        r[i].partition_key.p = (const uint8_t *)pk[i];
        r[i].partition_key.len = rec_pk(first + i, pk[i]);
        r[i].explicit_hash_key = NULL;
        r[i].data.p = data[i];
        r[i].data.len = rec_data(first + i, data[i], 128);
    }
    struct store_err err;
    cr_assert_eq(store_shard_append(sh, r, n, seqs, on_done, d, &err), 0, "append: %s", err.msg);
    return seqs[0];
}

/* Checks that view "r" holds record number "i". */
static UNUSED void check_rec(const struct store_record *r, uint64_t i)
{
    uint8_t data[128];
    char pk[32];
    size_t dl = rec_data(i, data, sizeof data), pl = rec_pk(i, pk);
    cr_assert_eq(r->data.len, dl, "record %llu data length", (unsigned long long)i);
    cr_assert(memcmp(r->data.p, data, dl) == 0, "record %llu data bytes", (unsigned long long)i);
    cr_assert_eq(r->partition_key.len, pl);
    cr_assert(memcmp(r->partition_key.p, pk, pl) == 0, "record %llu key", (unsigned long long)i);
}

static UNUSED struct store *open_store(const char *dir, struct store_opts *o)
{
    struct store *s = NULL;
    struct store_err err;
    int rc = store_open(dir, o, &s, &err);
    cr_assert_eq(rc, 0, "store_open: %s", err.msg);
    return s;
}

/* Creates a stream and waits until its creation is durable: before that the
 * store holds its records back (neither readable nor acknowledged). */
static UNUSED struct store_stream *make_stream(struct store *s, const char *name, uint32_t n)
{
    struct store_stream *st;
    struct store_err err;
    cr_assert_eq(store_stream_create(s, name, n, &st, &err), 0, "create: %s", err.msg);
    cr_assert_eq(catalog_settle(s), 0, "catalog of %s not durable", name);
    return st;
}

static UNUSED struct store_stream *get_stream(struct store *s, const char *name)
{
    struct store_stream *st;
    struct store_err err;
    cr_assert_eq(store_stream_lookup(s, name, &st, &err), 0, "lookup: %s", err.msg);
    return st;
}

/* Reads every readable record from TRIM_HORIZON into a count and checks each
 * against "first_index + k"; returns the count. */
static UNUSED size_t read_all_check(struct store_shard *sh, uint64_t first_index, size_t batch)
{
    struct store_cursor *cur = store_cursor_new();
    struct store_pos pos, next;
    struct store_err err;
    cr_assert_eq(store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, &err), 0);
    size_t total = 0;
    for (;;) {
        const struct store_record *recs;
        size_t n;
        int rc = store_shard_read(sh, cur, &pos, batch, SIZE_MAX, &recs, &n, &next, NULL, &err);
        cr_assert_eq(rc, 0, "read: %s", err.msg);
        if (n == 0) break;
        for (size_t k = 0; k < n; k++)
            check_rec(&recs[k], first_index + total + k);
        total += n;
        pos = next;
    }
    store_cursor_free(cur);
    return total;
}

#endif
