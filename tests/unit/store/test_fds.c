/* test_fds.c - the store's descriptor budget (store_opts.max_fds): read
 * descriptors are closed least-recently-used, idle active segments give
 * their write descriptor back and reopen the same file (O_APPEND), and a
 * shard that cannot open a segment because the process is out of
 * descriptors (EMFILE) fails the append or read with STORE_EIO, stays online
 * and works again once descriptors free up. Descriptors are observed from
 * /proc/self/fd, exhaustion is real: RLIMIT_NOFILE lowered in the test's own
 * process (Criterion runs each test in a fresh child). */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/resource.h>

#include "helpers.h"

/* Cache room = max_fds - 6 (the store's own descriptors, see internal.h). */
#define FIXED 6u

struct segfds {
    int n;          /* open descriptors on segment files of "dir" */
    uint64_t shards; /* bit i: a descriptor on a segment of shard i (i < 64) */
};

/* Lists this process's descriptors on "dir"/segments/ files. */
static struct segfds seg_fds(const char *dir)
{
    struct segfds r = {0, 0};
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s/segments/s", dir);
    size_t pl = strlen(prefix);
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        char lp[300], target[PATH_MAX];
        snprintf(lp, sizeof lp, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(lp, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strncmp(target, prefix, pl) != 0)
            continue;
        /* s<uid 10>-<shard 10>-...: the shard index follows the first dash. */
        const char *dash = strchr(target + pl, '-');
        cr_assert_not_null(dash, "%s", target);
        unsigned long idx = strtoul(dash + 1, NULL, 10);
        r.n++;
        if (idx < 64)
            r.shards |= 1ull << idx;
    }
    closedir(d);
    return r;
}

static int count_files(const char *dir)
{
    char sd[512];
    snprintf(sd, sizeof sd, "%s/segments", dir);
    DIR *d = opendir(sd);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strstr(de->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

static struct store_opts opts_with(enum store_durability mode, uint32_t max_fds,
                                   struct logcap *lc)
{
    struct store_opts o;
    store_opts_init(&o);
    o.durability = mode;
    o.max_fds = max_fds;
    o.log = cap_log;
    o.log_arg = lc;
    return o;
}

/* Reads one record from TRIM_HORIZON of "sh" and, if "want" >= 0, checks it
 * is record number "want" (the view dies with the cursor). Returns the store
 * code. */
static int read_first(struct store_shard *sh, int64_t want)
{
    struct store_cursor *cur = store_cursor_new();
    struct store_pos pos, next;
    struct store_err err;
    int rc = store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, &err);
    const struct store_record *recs;
    size_t n = 0;
    if (rc == 0)
        rc = store_shard_read(sh, cur, &pos, 1, SIZE_MAX, &recs, &n, &next, NULL, &err);
    if (rc == 0) {
        cr_assert_eq(n, 1);
        if (want >= 0)
            check_rec(&recs[0], (uint64_t)want);
    }
    store_cursor_free(cur);
    return rc;
}

/* Writes "per" records to each of "n" shards of a new stream "s1" (one
 * commit per shard), then closes the store: reads after a reopen come from
 * the segment files. */
static void fill_and_close(const char *dir, uint32_t n, int per)
{
    struct logcap lc = {0};
    struct store_opts o = opts_with(STORE_DURABILITY_ALWAYS, 0, &lc);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "s1", n);
    cr_assert_eq(catalog_settle(s), 0);
    struct done_ctr d = {0};
    for (uint32_t k = 0; k < n; k++) {
        for (int i = 0; i < per; i++)
            append_one(store_stream_shard(st, k), (uint64_t)k * 1000 + (uint64_t)i, &d);
        pump_until(s, &d, (int)(k + 1) * per);
    }
    cr_assert_eq(d.failed, 0);
    store_close(s);
}

Test(fds, read_descriptors_closed_least_recently_used)
{
    char *dir = tmpdir_new();
    fill_and_close(dir, 5, 3);
    struct logcap lc = {0};
    /* Room for three cached descriptors. */
    struct store_opts o = opts_with(STORE_DURABILITY_ALWAYS, FIXED + 3, &lc);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = get_stream(s, "s1");
    cr_assert_eq(seg_fds(dir).n, 0, "nothing is open before the first read");

    for (uint32_t k = 0; k < 3; k++)
        cr_assert_eq(read_first(store_stream_shard(st, k), (int64_t)k * 1000), 0);
    cr_assert_eq(seg_fds(dir).shards, 0x7u, "shards 0, 1, 2 hold read descriptors");
    /* A hit makes shard 0 the most recent: shard 1 is now the oldest. */
    cr_assert_eq(read_first(store_stream_shard(st, 0), 0), 0);
    cr_assert_eq(read_first(store_stream_shard(st, 3), 3000), 0);
    struct segfds f = seg_fds(dir);
    cr_assert_eq(f.n, 3);
    cr_assert_eq(f.shards, 0x1u | 0x4u | 0x8u,
                 "LRU evicts shard 1 (least recently used), not shard 0 (oldest opened): %#llx",
                 (unsigned long long)f.shards);
    cr_assert_eq(read_first(store_stream_shard(st, 4), 4000), 0);
    cr_assert_eq(seg_fds(dir).shards, 0x1u | 0x8u | 0x10u, "then shard 2");

    /* Everything still reads back in full, within the budget throughout. */
    for (int round = 0; round < 3; round++)
        for (uint32_t k = 0; k < 5; k++) {
            cr_assert_eq(read_all_check(store_stream_shard(st, k), (uint64_t)k * 1000, 2), 3);
            cr_assert_leq(seg_fds(dir).n, 3);
        }
    cr_assert_eq(lc.error, 0, "%s", lc.last);
    store_close(s);
    cr_assert_eq(seg_fds(dir).n, 0, "store_close closes every cached descriptor");
    rm_rf(dir);
    free(dir);
}

/* More shards than descriptors: every commit stays within the budget, an
 * evicted active segment is reopened and appended to (one file per shard,
 * not a new segment per reopen), and every record reads back. */
static void write_many_shards(enum store_durability mode)
{
    char *dir = tmpdir_new();
    struct logcap lc = {0};
    const uint32_t shards = 12, room = 4;
    struct store_opts o = opts_with(mode, FIXED + room, &lc);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "w", shards);
    cr_assert_eq(catalog_settle(s), 0);
    struct done_ctr d = {0};
    const int rounds = 5;
    for (int round = 0; round < rounds; round++)
        for (uint32_t k = 0; k < shards; k++) {
            append_one(store_stream_shard(st, k), (uint64_t)k * 1000 + (uint64_t)round, &d);
            pump_until(s, &d, d.ok + d.failed + 1);
            cr_assert_leq(seg_fds(dir).n, (int)room, "round %d shard %u", round, k);
        }
    cr_assert_eq(d.failed, 0, "%s", lc.last);
    cr_assert_eq(count_files(dir), (int)shards, "reopened segments are appended to");
    /* Several shards in one commit: pinned until the syncer has its dups. */
    for (uint32_t k = 0; k < shards; k++)
        append_one(store_stream_shard(st, k), (uint64_t)k * 1000 + rounds, &d);
    pump_until(s, &d, (int)shards * (rounds + 1));
    cr_assert_eq(d.failed, 0, "%s", lc.last);
    cr_assert_leq(seg_fds(dir).n, (int)room, "back within the budget after the commit");
    for (uint32_t k = 0; k < shards; k++) {
        cr_assert_eq(read_all_check(store_stream_shard(st, k), (uint64_t)k * 1000, 3),
                     (size_t)rounds + 1);
        cr_assert_leq(seg_fds(dir).n, (int)room);
    }
    cr_assert_eq(lc.error, 0, "%s", lc.last);
    store_close(s);
    /* And the files are whole: a reopen verifies every frame. */
    s = open_store(dir, &o);
    st = get_stream(s, "w");
    for (uint32_t k = 0; k < shards; k++)
        cr_assert_eq(read_all_check(store_stream_shard(st, k), (uint64_t)k * 1000, 64),
                     (size_t)rounds + 1);
    cr_assert_eq(lc.warn, 0, "no torn tail: %s", lc.last);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

Test(fds, write_descriptors_reopened_never) { write_many_shards(STORE_DURABILITY_NEVER); }
Test(fds, write_descriptors_reopened_always) { write_many_shards(STORE_DURABILITY_ALWAYS); }

Test(fds, max_fds_below_minimum_is_invalid)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_with(STORE_DURABILITY_NEVER, FIXED + 2, NULL);
    struct store *s = NULL;
    struct store_err err;
    cr_assert_eq(store_open(dir, &o, &s, &err), STORE_EINVAL);
    cr_assert_null(s);
    o.max_fds = FIXED + 3;
    cr_assert_eq(store_open(dir, &o, &s, &err), 0, "%s", err.msg);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* ---- descriptor exhaustion ---------------------------------------------------- */

struct hog {
    int fds[4096];
    int n;
};

/* Opens /dev/null until EMFILE, under a soft limit of 256. */
static void hog_all(struct hog *h)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur > 256) {
        rl.rlim_cur = 256;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    h->n = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            cr_assert_eq(errno, EMFILE);
            break;
        }
        cr_assert_lt(h->n, 4096);
        h->fds[h->n++] = fd;
    }
}

static void hog_release(struct hog *h, int n)
{
    while (n-- > 0 && h->n > 0)
        close(h->fds[--h->n]);
}

Test(fds, emfile_fails_append_and_read_cleanly_then_recovers)
{
    char *dir = tmpdir_new();
    fill_and_close(dir, 2, 3);
    struct logcap lc = {0};
    struct store_opts o = opts_with(STORE_DURABILITY_ALWAYS, 64, &lc);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = get_stream(s, "s1");
    struct store_shard *sh = store_stream_shard(st, 0);
    struct store_err err;

    /* Nothing cached yet (fresh open), so nothing to give back. */
    struct hog h;
    hog_all(&h);
    struct done_ctr d = {0};
    append_one(sh, 50, &d);
    pump_until(s, &d, 1);
    cr_assert_eq(d.failed, 1, "no segment could be created");
    cr_assert_eq(d.last_code, STORE_EIO);
    cr_assert(strstr(lc.last, "Too many open files") != NULL, "%s", lc.last);
    cr_assert_eq(store_shard_check(sh, &err), 0, "EMFILE must not take the shard offline");
    cr_assert_eq(read_first(sh, -1), STORE_EIO, "the read cannot open its segment either");

    /* Descriptors free up: the same shard writes and reads again. */
    hog_release(&h, h.n);
    append_one(sh, 3, &d);
    pump_until(s, &d, 2);
    cr_assert_eq(d.ok, 1, "%s", lc.last);
    cr_assert_eq(read_all_check(sh, 0, 10), 4, "records 0-2, then 3; the failed one is not there");
    store_close(s);

    /* Durable as acknowledged: a reopen finds exactly those. */
    s = open_store(dir, &o);
    cr_assert_eq(read_all_check(store_stream_shard(get_stream(s, "s1"), 0), 0, 10), 4);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* With cached descriptors the store gives its own idle ones back first:
 * under EMFILE an append to a shard without an open segment succeeds. */
Test(fds, emfile_evicts_cached_descriptors_first)
{
    char *dir = tmpdir_new();
    struct logcap lc = {0};
    struct store_opts o = opts_with(STORE_DURABILITY_ALWAYS, 64, &lc);
    /* A still clock: the "recently out of descriptors" window cannot lapse
     * between the appends below, however slow the machine. */
    struct fake_clock clk = {1700000000000};
    o.clock = fake_now;
    o.clock_arg = &clk;
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "e", 4);
    cr_assert_eq(catalog_settle(s), 0);
    struct done_ctr d = {0};
    for (uint32_t k = 0; k < 3; k++)
        append_one(store_stream_shard(st, k), (uint64_t)k * 1000, &d);
    pump_until(s, &d, 3);
    cr_assert_eq(d.ok, 3);
    cr_assert_eq(seg_fds(dir).n, 3, "three active segments cached");

    struct hog h;
    hog_all(&h);
    /* Shard 3 needs a new segment: the open evicts a cached one; its fsync
     * needs one more for the syncer's dup, which evicts another. */
    append_one(store_stream_shard(st, 3), 3000, &d);
    pump_until(s, &d, 4);
    cr_assert_eq(d.ok, 4, "%s", lc.last);
    /* And the shards whose descriptors went still append (reopen). */
    for (uint32_t k = 0; k < 3; k++) {
        append_one(store_stream_shard(st, k), (uint64_t)k * 1000 + 1, &d);
        pump_until(s, &d, 5 + (int)k);
        cr_assert_eq(d.ok, 5 + (int)k, "shard %u: %s", k, lc.last);
    }
    hog_release(&h, h.n);
    cr_assert_eq(count_files(dir), 4, "no segment was abandoned");
    for (uint32_t k = 0; k < 3; k++)
        cr_assert_eq(read_all_check(store_stream_shard(st, k), (uint64_t)k * 1000, 10), 2);
    cr_assert_eq(read_all_check(store_stream_shard(st, 3), 3000, 10), 1);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* The worst case: one commit touches more shards than the process has
 * descriptors for, so the cache runs out of unpinned entries mid-commit.
 * Every append is then either acknowledged (and readable, and durable) or
 * failed with STORE_EIO (and absent); no shard goes offline; and after the
 * descriptors come back every shard takes appends again. */
Test(fds, emfile_in_a_commit_wider_than_the_budget)
{
    char *dir = tmpdir_new();
    const uint32_t shards = 24;
    struct logcap lc = {0};
    struct store_opts o = opts_with(STORE_DURABILITY_ALWAYS, FIXED + 4, &lc);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "p", shards);
    cr_assert_eq(catalog_settle(s), 0);
    struct done_ctr d = {0};
    for (uint32_t k = 0; k < shards; k++) {
        append_one(store_stream_shard(st, k), (uint64_t)k * 1000, &d);
        pump_until(s, &d, (int)k + 1);
    }
    cr_assert_eq(d.ok, (int)shards);

    struct hog h;
    hog_all(&h);
    hog_release(&h, 6); /* a few, fewer than the shards of the next commit */
    struct done_ctr per[24];
    memset(per, 0, sizeof per);
    for (uint32_t k = 0; k < shards; k++)
        append_one(store_stream_shard(st, k), (uint64_t)k * 1000 + 1, &per[k]);
    store_commit(s);
    for (int i = 0; i < 10000; i++) {
        int all = 1;
        for (uint32_t k = 0; k < shards; k++)
            all &= per[k].ok + per[k].failed == 1;
        if (all)
            break;
        struct pollfd p = {store_notify_fd(s), POLLIN, 0};
        poll(&p, 1, 1);
        store_dispatch(s);
        store_commit(s);
    }
    int ok = 0, failed = 0;
    struct store_err err;
    for (uint32_t k = 0; k < shards; k++) {
        cr_assert_eq(per[k].ok + per[k].failed, 1, "shard %u: no answer", k);
        if (per[k].failed)
            cr_assert_eq(per[k].last_code, STORE_EIO, "shard %u", k);
        ok += per[k].ok;
        failed += per[k].failed;
        cr_assert_eq(store_shard_check(store_stream_shard(st, k), &err), 0, "shard %u: %s", k,
                     err.msg);
    }
    cr_assert_gt(failed, 0, "the scenario must run out of descriptors");
    hog_release(&h, h.n);

    /* Recovery: every shard appends again; acknowledged records are there,
     * failed ones are not, now and after a reopen. */
    struct done_ctr d2 = {0};
    for (uint32_t k = 0; k < shards; k++)
        append_one(store_stream_shard(st, k), (uint64_t)k * 1000 + 2, &d2);
    pump_until(s, &d2, (int)shards);
    cr_assert_eq(d2.ok, (int)shards, "%s", lc.last);
    store_close(s);
    s = open_store(dir, &o);
    st = get_stream(s, "p");
    for (uint32_t k = 0; k < shards; k++) {
        /* A read stops at a segment boundary: read until nothing comes. */
        struct store_shard *sh = store_stream_shard(st, k);
        struct store_cursor *cur = store_cursor_new();
        struct store_pos pos, next;
        cr_assert_eq(store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, &err), 0);
        uint64_t want[3] = {(uint64_t)k * 1000, (uint64_t)k * 1000 + 1, (uint64_t)k * 1000 + 2};
        size_t nwant = 0, got = 0;
        want[nwant++] = (uint64_t)k * 1000;
        if (per[k].ok)
            want[nwant++] = (uint64_t)k * 1000 + 1;
        want[nwant++] = (uint64_t)k * 1000 + 2;
        for (;;) {
            const struct store_record *recs;
            size_t n;
            cr_assert_eq(store_shard_read(sh, cur, &pos, 10, SIZE_MAX, &recs, &n, &next, NULL,
                                          &err), 0, "%s", err.msg);
            if (n == 0)
                break;
            for (size_t q = 0; q < n; q++, got++) {
                cr_assert_lt(got, nwant, "shard %u: a record that was not acknowledged", k);
                check_rec(&recs[q], want[got]);
            }
            pos = next;
        }
        cr_assert_eq(got, nwant, "shard %u: %zu of %zu records", k, got, nwant);
        store_cursor_free(cur);
    }
    cr_log_info("one commit over %u shards with 6 descriptors free: %d acknowledged, %d failed",
                shards, ok, failed);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* ---- a segment rolled inside a commit ------------------------------------------ */

/* Records the file behind every descriptor the syncer fsyncs. */
struct synclog {
    pthread_mutex_t mu;
    char paths[64][PATH_MAX];
    int n;
};

static ssize_t plain_write(void *ctx, int fd, const void *buf, size_t len)
{
    (void)ctx;
    return write(fd, buf, len);
}

static int logging_fsync(void *ctx, int fd)
{
    struct synclog *l = ctx;
    char lp[64], target[PATH_MAX];
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(lp, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    pthread_mutex_lock(&l->mu);
    if (l->n < 64)
        snprintf(l->paths[l->n++], PATH_MAX, "%s", target);
    pthread_mutex_unlock(&l->mu);
    return fdatasync(fd);
}

/* Two appends in one loop turn where the second starts a new segment: the
 * commit writes the first segment, seals it, creates the next. The sync item
 * of the first borrows its descriptor until store_commit hands it to the
 * syncer; sealing used to close it right away, and the new segment's open
 * took the same descriptor number, so the first segment was never fsynced
 * (its successor twice) and its record was acknowledged in mode ALWAYS
 * without being durable. */
Test(fds, segment_rolled_in_a_commit_is_the_one_fsynced)
{
    char *dir = tmpdir_new();
    struct synclog log = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct store_io_ops io = {plain_write, logging_fsync, &log};
    struct logcap lc = {0};
    struct store_opts o = opts_with(STORE_DURABILITY_ALWAYS, 0, &lc);
    o.io = &io;
    o.segment_bytes = 1; /* every append after the first starts a segment */
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "r", 1);
    cr_assert_eq(catalog_settle(s), 0);
    struct store_shard *sh = store_stream_shard(st, 0);
    struct done_ctr d = {0};
    append_one(sh, 0, &d);
    append_one(sh, 1, &d); /* same loop turn: one commit writes both segments */
    pthread_mutex_lock(&log.mu);
    log.n = 0;
    pthread_mutex_unlock(&log.mu);
    pump_until(s, &d, 2);
    cr_assert_eq(d.ok, 2, "%s", lc.last);
    cr_assert_eq(count_files(dir), 2);

    char seg0[PATH_MAX], seg1[PATH_MAX];
    int found0 = 0, found1 = 0;
    snprintf(seg0, sizeof seg0, "-00000000000000000000.seg");
    snprintf(seg1, sizeof seg1, "-00000000000000000001.seg");
    pthread_mutex_lock(&log.mu);
    for (int i = 0; i < log.n; i++) {
        size_t L = strlen(log.paths[i]);
        if (L > 25 && strcmp(log.paths[i] + L - 25, seg0) == 0) found0++;
        if (L > 25 && strcmp(log.paths[i] + L - 25, seg1) == 0) found1++;
    }
    pthread_mutex_unlock(&log.mu);
    cr_assert_eq(found0, 1, "the first segment is fsynced once (%d)", found0);
    cr_assert_eq(found1, 1, "the second segment is fsynced once (%d)", found1);
    cr_assert_leq(seg_fds(dir).n, 1, "the sealed segment's descriptor is closed after the commit");
    store_close(s);
    rm_rf(dir);
    free(dir);
}
