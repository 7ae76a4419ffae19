/* test_syncer.c - syncer.c and the durability paths: group commit, the three
 * modes, durable hooks, and injected write/fsync failures (EIO, ENOSPC, short
 * writes) that must leave the log consistent and let later appends succeed. */
#include <dirent.h>
#include <sys/stat.h>

#include "helpers.h"

struct fx {
    char *dir;
    struct faults f;
    struct store_io_ops io;
    struct logcap lc;
    struct store_opts o;
    struct store *s;
    struct store_shard *sh;
};

static void fx_open(struct fx *x, enum store_durability mode)
{
    memset(x, 0, sizeof *x);
    x->dir = tmpdir_new();
    x->io.write = fault_write;
    x->io.fsync = fault_fsync;
    x->io.ctx = &x->f;
    store_opts_init(&x->o);
    x->o.durability = mode;
    x->o.interval_ms = 20;
    x->o.io = &x->io;
    x->o.log = cap_log;
    x->o.log_arg = &x->lc;
    x->s = open_store(x->dir, &x->o);
    x->sh = store_stream_shard(make_stream(x->s, "f", 1), 0);
}

static void fx_reopen(struct fx *x)
{
    store_close(x->s);
    x->s = open_store(x->dir, &x->o);
    x->sh = store_stream_shard(get_stream(x->s, "f"), 0);
}

static void fx_close(struct fx *x)
{
    store_close(x->s);
    rm_rf(x->dir);
    free(x->dir);
}

static off_t seg_bytes(const char *dir)
{
    char sd[512];
    snprintf(sd, sizeof sd, "%s/segments", dir);
    DIR *d = opendir(sd);
    struct dirent *de;
    off_t total = 0;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".seg")) continue;
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", sd, de->d_name);
        stat(p, &st);
        total += st.st_size;
    }
    closedir(d);
    return total;
}

/* Reads everything and checks it equals records[] of the given indices. */
static void expect_log(struct store_shard *sh, const uint64_t *idx, size_t n)
{
    struct store_cursor *cur = store_cursor_new();
    struct store_pos pos, next;
    cr_assert_eq(store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, NULL), 0);
    const struct store_record *recs;
    size_t got = 0, k;
    for (;;) {
        cr_assert_eq(store_shard_read(sh, cur, &pos, 100, SIZE_MAX, &recs, &k, &next, NULL, NULL), 0);
        if (!k) break;
        for (size_t i = 0; i < k; i++) {
            cr_assert_lt(got + i, n, "extra record");
            check_rec(&recs[i], idx[got + i]);
        }
        got += k;
        pos = next;
    }
    cr_assert_eq(got, n);
    store_cursor_free(cur);
}

static void write_failures(enum store_durability mode)
{
    struct fx x;
    fx_open(&x, mode);
    struct done_ctr a = {0}, b = {0}, c = {0}, e = {0};
    append_batch(x.sh, 0, 5, &a);
    pump_until(x.s, &a, 1);
    cr_assert_eq(a.ok, 1);
    cr_assert_eq(catalog_settle(x.s), 0); /* the manifest writer shares the hook */
    off_t good = seg_bytes(x.dir);

    /* ENOSPC on write: the batch fails cleanly, inside commit, nothing visible */
    x.f.write_fail_errno = ENOSPC;
    append_batch(x.sh, 5, 5, &b);
    cr_assert_eq(store_commit(x.s), STORE_ENOSPC);
    cr_assert_eq(b.failed, 1);
    cr_assert_eq(b.last_code, STORE_ENOSPC);
    cr_assert_eq(seg_bytes(x.dir), good);

    /* a short write then EIO: the partial frame is cut back */
    x.f.write_short = 1;
    x.f.write_fail_errno = EIO;
    append_batch(x.sh, 10, 5, &c);
    cr_assert_eq(store_commit(x.s), STORE_EIO);
    cr_assert_eq(c.failed, 1);
    cr_assert_eq(c.last_code, STORE_EIO);
    cr_assert_eq(seg_bytes(x.dir), good);

    /* space is back: appends work again */
    x.f.write_fail_errno = 0;
    append_batch(x.sh, 15, 5, &e);
    pump_until(x.s, &e, 1);
    cr_assert_eq(e.ok, 1);
    uint64_t want[] = {0, 1, 2, 3, 4, 15, 16, 17, 18, 19};
    expect_log(x.sh, want, 10);
    fx_reopen(&x);
    expect_log(x.sh, want, 10);
    cr_assert_geq(x.lc.error, 0);
    fx_close(&x);
}

Test(syncer, write_failure_always) { write_failures(STORE_DURABILITY_ALWAYS); }
Test(syncer, write_failure_never) { write_failures(STORE_DURABILITY_NEVER); }
Test(syncer, write_failure_interval) { write_failures(STORE_DURABILITY_INTERVAL); }

Test(syncer, write_failure_on_new_segment)
{
    struct fx x;
    fx_open(&x, STORE_DURABILITY_NEVER);
    struct done_ctr a = {0};
    cr_assert_eq(catalog_settle(x.s), 0);
    x.f.write_fail_errno = ENOSPC; /* the segment header write fails */
    append_batch(x.sh, 0, 3, &a);
    cr_assert_eq(store_commit(x.s), STORE_ENOSPC);
    cr_assert_eq(a.failed, 1);
    cr_assert_eq(seg_bytes(x.dir), 0, "no half-made segment left behind");
    x.f.write_fail_errno = 0;
    append_batch(x.sh, 3, 3, &a);
    store_commit(x.s);
    cr_assert_eq(a.ok, 1);
    uint64_t want[] = {3, 4, 5};
    expect_log(x.sh, want, 3);
    fx_close(&x);
}

Test(syncer, fsync_failure_always_discards_unacked)
{
    struct fx x;
    fx_open(&x, STORE_DURABILITY_ALWAYS);
    struct done_ctr a = {0}, b = {0}, c = {0};
    append_batch(x.sh, 0, 5, &a);
    pump_until(x.s, &a, 1);
    cr_assert_eq(catalog_settle(x.s), 0); /* no manifest write may eat the fault */
    off_t good = seg_bytes(x.dir);

    __atomic_store_n(&x.f.fsync_fail_errno, EIO, __ATOMIC_RELEASE);
    __atomic_store_n(&x.f.fsync_fail_count, 1, __ATOMIC_RELEASE);
    append_batch(x.sh, 5, 5, &b);
    pump_until(x.s, &b, 1);
    cr_assert_eq(b.failed, 1);
    cr_assert_eq(b.last_code, STORE_EIO);
    cr_assert_eq(seg_bytes(x.dir), good, "unacknowledged bytes are cut back");
    cr_assert_geq(x.lc.error, 1);
    uint64_t want1[] = {0, 1, 2, 3, 4};
    expect_log(x.sh, want1, 5);

    __atomic_store_n(&x.f.fsync_fail_errno, ENOSPC, __ATOMIC_RELEASE);
    __atomic_store_n(&x.f.fsync_fail_count, 1, __ATOMIC_RELEASE);
    append_batch(x.sh, 10, 5, &b);
    pump_until(x.s, &b, 2);
    cr_assert_eq(b.last_code, STORE_ENOSPC);

    append_batch(x.sh, 20, 5, &c);
    pump_until(x.s, &c, 1);
    cr_assert_eq(c.ok, 1);
    uint64_t want[] = {0, 1, 2, 3, 4, 20, 21, 22, 23, 24};
    expect_log(x.sh, want, 10);
    fx_reopen(&x);
    expect_log(x.sh, want, 10);
    fx_close(&x);
}

Test(syncer, group_commit_shares_fsyncs)
{
    char *dir = tmpdir_new();
    struct store_opts o;
    store_opts_init(&o);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "g", 4);
    struct done_ctr d = {0};
    /* warm up: create the segments */
    for (uint32_t k = 0; k < 4; k++) append_batch(store_stream_shard(st, k), 0, 1, &d);
    pump_until(s, &d, 4);
    cr_assert_eq(catalog_settle(s), 0);
    struct store_stats before, after;
    store_stats(s, &before);
    for (int round = 0; round < 10; round++) {
        for (int b = 0; b < 8; b++)
            append_batch(store_stream_shard(st, (uint32_t)b % 4), (uint64_t)b * 10, 10, &d);
        int want = d.ok + 8;
        pump_until(s, &d, want);
    }
    store_stats(s, &after);
    cr_assert_eq(d.failed, 0);
    /* 80 batches; at most one fsync per shard per round */
    cr_assert_leq(after.fsyncs - before.fsyncs, 40, "fsyncs: %llu",
                  (unsigned long long)(after.fsyncs - before.fsyncs));
    store_close(s);
    rm_rf(dir);
    free(dir);
}

struct dur { int calls; struct store_seq last; };
static void on_durable(void *arg, struct store_shard *sh, struct store_seq seq)
{
    (void)sh;
    struct dur *d = arg;
    d->calls++;
    d->last = seq;
}

Test(syncer, interval_acks_after_write_and_syncs_later)
{
    char *dir = tmpdir_new();
    struct dur du = {0};
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_INTERVAL;
    o.interval_ms = 10;
    o.on_durable = on_durable;
    o.on_durable_arg = &du;
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "i", 1), 0);
    struct done_ctr d = {0};
    struct store_seq first = append_batch(sh, 0, 3, &d);
    store_commit(s);
    cr_assert_eq(d.ok, 1, "interval mode acks after write");
    for (int i = 0; i < 2000 && du.calls == 0; i++) {
        struct pollfd p = {store_notify_fd(s), POLLIN, 0};
        poll(&p, 1, 5);
        store_dispatch(s);
    }
    cr_assert_geq(du.calls, 1, "durable hook fires after the interval fsync");
    first.counter += 2;
    cr_assert_eq(store_seq_cmp(du.last, first), 0);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

Test(syncer, always_durable_hook)
{
    char *dir = tmpdir_new();
    struct dur du = {0};
    struct store_opts o;
    store_opts_init(&o);
    o.on_durable = on_durable;
    o.on_durable_arg = &du;
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "a", 1), 0);
    struct done_ctr d = {0};
    append_batch(sh, 0, 3, &d);
    store_commit(s);
    cr_assert_eq(d.ok, 0, "always mode waits for the fsync");
    pump_until(s, &d, 1);
    cr_assert_eq(du.calls, 1);
    cr_assert_eq(du.last.counter, 2);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

Test(syncer, durability_parse)
{
    enum store_durability m;
    uint32_t ms = 0;
    cr_assert_eq(store_durability_parse("always", &m, &ms, NULL), 0);
    cr_assert_eq(m, STORE_DURABILITY_ALWAYS);
    cr_assert_eq(store_durability_parse("never", &m, &ms, NULL), 0);
    cr_assert_eq(m, STORE_DURABILITY_NEVER);
    cr_assert_eq(store_durability_parse("interval:250", &m, &ms, NULL), 0);
    cr_assert_eq(m, STORE_DURABILITY_INTERVAL);
    cr_assert_eq(ms, 250);
    const char *bad[] = {"", "sometimes", "interval:", "interval:0", "interval:x", "interval:3600001"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(store_durability_parse(bad[i], &m, &ms, NULL), STORE_EINVAL, "%s", bad[i]);
}
