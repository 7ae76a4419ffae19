/* test_shard.c - shard.c: sequence numbers (format, parse, order, uniqueness
 * across 1M appends and restarts), append validation, listeners, and a
 * model-based random test against an in-memory array. */
#include "helpers.h"

Test(shard, seq_format_parse_compare)
{
    struct store_seq a = {1, 2, 3}, b;
    char s[STORE_SEQ_STRLEN];
    cr_assert_eq(store_seq_format(a, s), 41);
    cr_assert_str_eq(s, "40000000001000000000200000000000000000003");
    cr_assert_eq(store_seq_parse(s, 41, &b, NULL), 0);
    cr_assert_eq(store_seq_cmp(a, b), 0);
    struct store_seq max = {UINT32_MAX, UINT32_MAX, UINT64_MAX};
    store_seq_format(max, s);
    cr_assert_eq(strlen(s), 41);
    cr_assert_eq(store_seq_parse(s, 41, &b, NULL), 0);
    cr_assert_eq(store_seq_cmp(max, b), 0);
    const char *bad[] = {"", "4", "49570889523503059275381512478863820069782211031140925442",
                         "50000000001000000000200000000000000000003",
                         "40000000001000000000200000000000000000003x",
                         "44294967296000000000200000000000000000003",
                         "40000000001000000000299999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct store_err err;
        cr_assert_eq(store_seq_parse(bad[i], strlen(bad[i]), &b, &err), STORE_EINVAL, "%s", bad[i]);
    }
    /* numeric order == string order == struct order */
    struct store_seq v[] = {{0, 0, 0}, {0, 0, 1}, {0, 0, 10}, {0, 1, 0}, {1, 0, 0}, {2, 0, 5}, {10, 0, 0}};
    for (size_t i = 1; i < sizeof v / sizeof *v; i++) {
        char x[STORE_SEQ_STRLEN], y[STORE_SEQ_STRLEN];
        store_seq_format(v[i - 1], x);
        store_seq_format(v[i], y);
        cr_assert_lt(strcmp(x, y), 0);
        cr_assert_lt(store_seq_cmp(v[i - 1], v[i]), 0);
        cr_assert_gt(store_seq_cmp(v[i], v[i - 1]), 0);
    }
    struct store_pos p = {{3, 4, 5}, 1}, q;
    char ps[STORE_POS_STRLEN];
    store_pos_format(&p, ps);
    cr_assert_eq(ps[0], 'A');
    cr_assert_eq(store_pos_parse(ps, strlen(ps), &q, NULL), 0);
    cr_assert_eq(q.after, 1);
    cr_assert_eq(store_seq_cmp(p.seq, q.seq), 0);
    cr_assert_eq(store_pos_parse("X1", 2, &q, NULL), STORE_EINVAL);
}

Test(shard, append_validation)
{
    char *dir = tmpdir_new();
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "v", 1), 0);
    static uint8_t big[STORE_MAX_RECORD_DATA + 1];
    char pk[STORE_MAX_PARTITION_KEY + 1];
    memset(pk, 'k', sizeof pk);
    struct store_err err;
    struct store_record_in r = {{(const uint8_t *)pk, 0}, NULL, {big, 1}};
    cr_assert_eq(store_shard_append(sh, &r, 1, NULL, NULL, NULL, &err), STORE_EINVAL);
    r.partition_key.len = STORE_MAX_PARTITION_KEY + 1;
    cr_assert_eq(store_shard_append(sh, &r, 1, NULL, NULL, NULL, &err), STORE_EINVAL);
    r.partition_key.len = STORE_MAX_PARTITION_KEY;
    r.data.len = STORE_MAX_RECORD_DATA + 1;
    cr_assert_eq(store_shard_append(sh, &r, 1, NULL, NULL, NULL, &err), STORE_EINVAL);
    cr_assert_eq(store_shard_append(sh, &r, 0, NULL, NULL, NULL, &err), STORE_EINVAL);
    r.data.len = STORE_MAX_RECORD_DATA;
    struct done_ctr d = {0};
    cr_assert_eq(store_shard_append(sh, &r, 1, NULL, on_done, &d, &err), 0);
    cr_assert_eq(d.ok, 0, "no callback inside append");
    store_commit(s);
    cr_assert_eq(d.ok, 1);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* 1M appends in batches of 500 across 4 restarts: strictly increasing within
 * a run and across runs, all readable afterwards. */
Test(shard, million_appends_unique_across_restarts, .timeout = 120)
{
    const size_t total = UNDER_SANITIZER ? 200000 : 1000000, batch = 500, runs = 4;
    char *dir = tmpdir_new();
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    o.segment_bytes = 16u << 20;
    struct store_seq prev = {0, 0, 0};
    int have_prev = 0;
    uint64_t idx = 0;
    struct store_record_in *recs = calloc(batch, sizeof *recs);
    struct store_seq *seqs = calloc(batch, sizeof *seqs);
    uint8_t (*data)[128] = calloc(batch, 128);
    char (*pks)[32] = calloc(batch, 32);
    for (size_t run = 0; run < runs; run++) {
        struct store *s = open_store(dir, &o);
        struct store_stream *st = run == 0 ? make_stream(s, "m", 1) : get_stream(s, "m");
        struct store_shard *sh = store_stream_shard(st, 0);
        struct done_ctr d = {0};
        int calls = 0;
        for (size_t k = 0; k < total / runs / batch; k++) {
            for (size_t i = 0; i < batch; i++) {
                recs[i].partition_key.p = (const uint8_t *)pks[i];
                recs[i].partition_key.len = rec_pk(idx + i, pks[i]);
                recs[i].data.p = data[i];
                recs[i].data.len = rec_data(idx + i, data[i], 128);
            }
            cr_assert_eq(store_shard_append(sh, recs, batch, seqs, on_done, &d, NULL), 0);
            calls++;
            for (size_t i = 0; i < batch; i++) {
                if (have_prev)
                    cr_assert_lt(store_seq_cmp(prev, seqs[i]), 0, "seq not increasing at %llu",
                                 (unsigned long long)(idx + i));
                prev = seqs[i];
                have_prev = 1;
            }
            idx += batch;
            if (k % 8 == 7)
                store_commit(s);
        }
        store_commit(s);
        cr_assert_eq(d.ok, calls);
        store_close(s);
    }
    /* a final open: everything is there, in order */
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(get_stream(s, "m"), 0);
    cr_assert_eq(read_all_check(sh, 0, 10000), total);
    int has;
    struct store_seq last;
    store_shard_latest(sh, &has, &last);
    cr_assert(has);
    cr_assert_eq(store_seq_cmp(last, prev), 0);
    /* and the next number is bigger than anything before the restart */
    struct done_ctr d = {0};
    struct store_seq next = append_one(sh, 0, &d);
    cr_assert_gt(store_seq_cmp(next, prev), 0);
    store_close(s);
    free(recs);
    free(seqs);
    free(data);
    free(pks);
    rm_rf(dir);
    free(dir);
}

/* ---- listeners ---- */

struct lctx { int calls; struct store_listener *self; int remove_self; };
static void on_readable(void *arg, struct store_shard *sh)
{
    (void)sh;
    struct lctx *l = arg;
    l->calls++;
    if (l->remove_self) {
        store_listener_remove(l->self);
        l->self = NULL;
    }
}

Test(shard, listeners)
{
    char *dir = tmpdir_new();
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "l", 2);
    struct store_shard *sh = store_stream_shard(st, 0), *other = store_stream_shard(st, 1);
    struct lctx a = {0}, b = {0, NULL, 1};
    a.self = store_shard_listen(sh, on_readable, &a);
    b.self = store_shard_listen(sh, on_readable, &b);
    struct done_ctr d = {0};
    append_one(sh, 1, &d);
    append_one(sh, 2, &d);
    cr_assert_eq(a.calls, 0, "never called from inside append");
    store_commit(s);
    cr_assert_eq(a.calls, 1, "once per commit however many batches");
    cr_assert_eq(b.calls, 1);
    append_one(other, 3, &d);
    store_commit(s);
    cr_assert_eq(a.calls, 1, "other shard does not wake us");
    append_one(sh, 4, &d);
    store_commit(s);
    cr_assert_eq(a.calls, 2);
    cr_assert_eq(b.calls, 1, "removed itself");
    store_listener_remove(a.self);
    append_one(sh, 5, &d);
    store_commit(s);
    cr_assert_eq(a.calls, 2);
    store_listener_remove(NULL);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* Listeners fire before the append tickets of the same write (interval)
 * or fsync (always): the gateway pushes to subscribers before it
 * acknowledges the producer. A ticket callback that appends to the shard it
 * completes must not keep the other written shards from being published. */
struct order_log { char ev[16]; int n; struct store_shard *append_to; struct done_ctr d; };
static void order_listener(void *arg, struct store_shard *sh)
{
    (void)sh;
    struct order_log *l = arg;
    if (l->n < 15)
        l->ev[l->n++] = 'L';
}
static void order_ticket(void *arg, const struct store_err *err)
{
    struct order_log *l = arg;
    cr_assert_null(err);
    if (l->n < 15)
        l->ev[l->n++] = 'T';
    if (l->append_to) { /* once: append from inside the callback */
        struct store_shard *sh = l->append_to;
        l->append_to = NULL;
        append_one(sh, 99, &l->d);
    }
}
static void order_run(enum store_durability mode)
{
    char *dir = tmpdir_new();
    struct store_opts o;
    store_opts_init(&o);
    o.durability = mode;
    o.interval_ms = 1;
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "order", 3);
    struct order_log lg[3];
    memset(lg, 0, sizeof lg);
    struct store_listener *ls[3];
    for (int k = 0; k < 3; k++) {
        ls[k] = store_shard_listen(store_stream_shard(st, (uint32_t)k), order_listener, &lg[k]);
        lg[k].append_to = store_stream_shard(st, (uint32_t)k);
    }
    uint8_t data[8] = {1};
    for (int k = 0; k < 3; k++) {
        struct store_record_in r = {{(const uint8_t *)"pk", 2}, NULL, {data, sizeof data}};
        struct store_err err;
        cr_assert_eq(store_shard_append(store_stream_shard(st, (uint32_t)k), &r, 1, NULL, order_ticket,
                                        &lg[k], &err), 0);
    }
    struct done_ctr all = {0};
    for (int i = 0; i < 10000; i++) {
        store_commit(s);
        struct pollfd p = {store_notify_fd(s), POLLIN, 0};
        poll(&p, 1, 1);
        store_dispatch(s);
        int n = 0;
        for (int k = 0; k < 3; k++)
            n += lg[k].n >= 2 && lg[k].d.ok == 1;
        if (n == 3)
            break;
    }
    (void)all;
    for (int k = 0; k < 3; k++) {
        cr_assert_geq(lg[k].n, 2, "shard %d: %s", k, lg[k].ev);
        cr_assert_eq(lg[k].ev[0], 'L', "shard %d: listener first, got %s", k, lg[k].ev);
        cr_assert_eq(lg[k].ev[1], 'T', "shard %d: then the ticket, got %s", k, lg[k].ev);
        cr_assert_eq(lg[k].d.ok, 1, "shard %d: the append made from the callback completed", k);
        store_listener_remove(ls[k]);
    }
    store_close(s);
    rm_rf(dir);
    free(dir);
}
Test(shard, listeners_before_tickets_interval) { order_run(STORE_DURABILITY_INTERVAL); }
Test(shard, listeners_before_tickets_always) { order_run(STORE_DURABILITY_ALWAYS); }

/* A trickle of single-record commits must not keep a whole allocation per
 * record in the tail: written chunks give back their slack. */
Test(shard, tail_holds_what_was_written)
{
    char *dir = tmpdir_new();
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "t", 1), 0);
    struct done_ctr d = {0};
    struct store_stats before, after;
    store_stats(s, &before);
    for (uint64_t i = 0; i < 200; i++) {
        append_one(sh, i, &d);
        store_commit(s);
    }
    cr_assert_eq(d.ok, 200);
    store_stats(s, &after);
    uint64_t written = after.bytes_written - before.bytes_written;
    uint64_t tail = after.tail_bytes - before.tail_bytes;
    cr_assert_gt(written, 0);
    /* frames are ~100-150 bytes here; 4 KiB per record was the old cost */
    cr_assert_leq(tail, written + 200 * 256, "tail %llu bytes for %llu written",
                  (unsigned long long)tail, (unsigned long long)written);
    /* and everything reads back through a cursor that is released, not
     * re-created, between reads */
    struct store_cursor *cur = store_cursor_new();
    struct store_pos pos;
    cr_assert_eq(store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, NULL), 0);
    size_t got = 0;
    for (int i = 0; i < 1000 && got < 200; i++) {
        const struct store_record *recs;
        size_t n;
        struct store_pos next;
        cr_assert_eq(store_shard_read(sh, cur, &pos, 7, 1 << 20, &recs, &n, &next, NULL, NULL), 0);
        for (size_t k = 0; k < n; k++) {
            uint8_t want[128];
            size_t wl = rec_data(got + k, want, sizeof want);
            cr_assert_eq(recs[k].data.len, wl);
            cr_assert_arr_eq(recs[k].data.p, want, wl);
        }
        got += n;
        pos = next;
        store_cursor_release(cur);
    }
    cr_assert_eq(got, 200);
    store_cursor_free(cur);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* ---- model-based random test ---- */

struct mrec { struct store_seq seq; uint64_t idx; int64_t arrival; };

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void model_run(enum store_durability mode, uint64_t seed, int steps)
{
    rng_state = seed;
    char *dir = tmpdir_new();
    struct fake_clock clk = {1700000000000};
    struct store_opts o;
    store_opts_init(&o);
    o.durability = mode;
    o.segment_bytes = 8192;        /* many segments */
    o.tail_budget_bytes = 32768;   /* most reads go to disk */
    o.clock = fake_now;
    o.clock_arg = &clk;
    o.retention_check_ms = 1;
    struct store *s = open_store(dir, &o);
    make_stream(s, "model", 1);
    struct store_shard *sh = store_stream_shard(get_stream(s, "model"), 0);
    struct mrec *m = calloc((size_t)steps * 20 + 10, sizeof *m);
    size_t mlen = 0, mstart = 0; /* model = m[mstart, mlen) */
    uint64_t next_idx = 0;
    struct store_cursor *cur = store_cursor_new();
    struct done_ctr d = {0};
    int want = 0;
    for (int step = 0; step < steps; step++) {
        uint64_t op = rnd() % 100;
        if (op < 45) { /* append a batch */
            size_t n = 1 + rnd() % 20;
            struct store_record_in recs[20];
            uint8_t data[20][128];
            char pks[20][32];
            struct store_seq seqs[20];
            for (size_t i = 0; i < n; i++) {
                recs[i].partition_key.p = (const uint8_t *)pks[i];
                recs[i].partition_key.len = rec_pk(next_idx + i, pks[i]);
                recs[i].explicit_hash_key = NULL;
                recs[i].data.p = data[i];
                recs[i].data.len = rec_data(next_idx + i, data[i], 128);
            }
            cr_assert_eq(store_shard_append(sh, recs, n, seqs, on_done, &d, NULL), 0);
            want++;
            for (size_t i = 0; i < n; i++) {
                m[mlen].seq = seqs[i];
                m[mlen].idx = next_idx + i;
                m[mlen].arrival = clk.now;
                mlen++;
            }
            next_idx += n;
            if (rnd() % 3 == 0) clk.now += (int64_t)(rnd() % 5000);
        } else if (op < 55) {
            pump_until(s, &d, want);
        } else if (op < 90) { /* read from a random position and compare */
            pump_until(s, &d, want);
            struct store_pos pos;
            size_t expect; /* model index of the first record expected */
            uint64_t kind = rnd() % 4;
            if (kind == 0 || mlen == mstart) {
                cr_assert_eq(store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, NULL), 0);
                expect = mstart;
            } else {
                size_t k = mstart + rnd() % (mlen - mstart);
                int after = kind == 2;
                cr_assert_eq(store_shard_position(sh, after ? STORE_POS_AFTER_SEQUENCE
                                                            : STORE_POS_AT_SEQUENCE,
                                                  &m[k].seq, 0, &pos, NULL), 0);
                expect = k + (after ? 1 : 0);
                if (kind == 3) { /* by timestamp */
                    int64_t ts = m[k].arrival;
                    cr_assert_eq(store_shard_position(sh, STORE_POS_AT_TIMESTAMP, NULL, ts, &pos, NULL), 0);
                    expect = k;
                    while (expect > mstart && m[expect - 1].arrival >= ts) expect--;
                }
            }
            size_t max = 1 + rnd() % 50;
            const struct store_record *recs;
            size_t n;
            struct store_pos next;
            struct store_err err;
            for (int pass = 0; pass < 3; pass++) {
                cr_assert_eq(store_shard_read(sh, cur, &pos, max, SIZE_MAX, &recs, &n, &next, NULL, &err),
                             0, "read: %s", err.msg);
                size_t avail = mlen - expect;
                cr_assert(n > 0 || avail == 0, "step %d: empty read with %zu available", step, avail);
                cr_assert_leq(n, avail);
                for (size_t i = 0; i < n; i++) {
                    cr_assert_eq(store_seq_cmp(recs[i].seq, m[expect + i].seq), 0,
                                 "step %d rec %zu seq mismatch", step, i);
                    check_rec(&recs[i], m[expect + i].idx);
                    cr_assert_eq(recs[i].arrival_ms, m[expect + i].arrival);
                }
                expect += n;
                pos = next;
            }
        } else if (op < 95) { /* retention trim */
            pump_until(s, &d, want);
            clk.now += 3600 * 1000;
            int64_t cutoff = clk.now - 24 * 3600 * 1000LL + (int64_t)(rnd() % (3600 * 1000));
            store_tick(s, cutoff + 24 * 3600 * 1000LL);
            struct store_pos pos;
            cr_assert_eq(store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, NULL), 0);
            const struct store_record *recs;
            size_t n;
            struct store_pos next;
            cr_assert_eq(store_shard_read(sh, cur, &pos, 1, SIZE_MAX, &recs, &n, &next, NULL, NULL), 0);
            size_t first = mlen;
            if (n) {
                for (first = mstart; first < mlen && store_seq_cmp(m[first].seq, recs[0].seq) != 0; first++) {}
                cr_assert_lt(first, mlen, "trim horizon record not in the model");
            }
            for (size_t k = mstart; k < first; k++)
                cr_assert_lt(m[k].arrival, cutoff, "record %zu trimmed before its time", k);
            mstart = first;
        } else { /* restart */
            pump_until(s, &d, want);
            store_close(s);
            s = open_store(dir, &o);
            sh = store_stream_shard(get_stream(s, "model"), 0);
        }
    }
    store_cursor_free(cur);
    store_close(s);
    free(m);
    rm_rf(dir);
    free(dir);
}

Test(shard, model_random_never) { model_run(STORE_DURABILITY_NEVER, 0x9E3779B97F4A7C15ull, UNDER_SANITIZER ? 1500 : 4000); }
Test(shard, model_random_always) { model_run(STORE_DURABILITY_ALWAYS, 0xD1B54A32D192ED03ull, UNDER_SANITIZER ? 800 : 2000); }

/* Two batches in flight in one commit, in two chunks: A is written, B's write
 * fails (ENOSPC). A must be acknowledged (it is in the file and becomes
 * readable, also after a restart); only B fails, and B is never readable.
 * Failing A too once made producers retry records that were stored. */
#include "internal.h"
static void failed_write_after_good_one(enum store_durability mode)
{
    char *dir = tmpdir_new();
    struct faults f = {0};
    struct store_io_ops io = {fault_write, fault_fsync, &f};
    struct store_opts o;
    store_opts_init(&o);
    o.durability = mode;
    o.interval_ms = 5;
    o.io = &io;
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "w", 1), 0);
    struct done_ctr d0 = {0}, da = {0}, db = {0};
    append_one(sh, 0, &d0);
    pump_until(s, &d0, 1); /* the segment exists; the next commit only appends */
    cr_assert_eq(d0.ok, 1);

    /* A: batches while they share one chunk; B: the batch that opens the next. */
    struct chunk *first = NULL;
    uint64_t next = 1;
    int na = 0;
    for (;;) {
        append_batch(sh, next, 64, &da);
        if (!first)
            first = sh->tail.tail;
        if (sh->tail.tail != first)
            break; /* this batch went into a new chunk: it is B's first */
        next += 64;
        na++;
        cr_assert_lt(na, 1000);
    }
    /* The batch that opened the new chunk counts in "da" (so da expects
     * na successes and one failure); a second batch in the failing chunk
     * counts in "db". */
    append_batch(sh, next + 64, 64, &db);
    f.write_ok_left = 1;
    f.write_fail_errno = ENOSPC;
    pump_until(s, &db, 1);
    for (int i = 0; i < 2000 && da.ok + da.failed < na + 1; i++) {
        struct pollfd p = {store_notify_fd(s), POLLIN, 0};
        poll(&p, 1, 1);
        store_dispatch(s);
        store_commit(s);
    }
    cr_assert_eq(da.ok, na, "every written batch is acknowledged (%d of %d, %d failed)", da.ok,
                 na, da.failed);
    cr_assert_eq(da.failed, 1, "the batch in the failed chunk fails");
    cr_assert_eq(db.failed, 1);
    cr_assert_eq(db.ok, 0);
    f.write_fail_errno = 0;
    size_t readable = read_all_check(sh, 0, 100);
    cr_assert_eq(readable, 1 + (size_t)na * 64, "exactly the acknowledged records are readable");
    store_close(s);
    s = open_store(dir, &o);
    sh = store_stream_shard(get_stream(s, "w"), 0);
    cr_assert_eq(read_all_check(sh, 0, 100), 1 + (size_t)na * 64, "and after a restart");
    store_close(s);
    rm_rf(dir);
    free(dir);
}
Test(shard, failed_write_spares_written_batch_never) { failed_write_after_good_one(STORE_DURABILITY_NEVER); }
Test(shard, failed_write_spares_written_batch_interval) { failed_write_after_good_one(STORE_DURABILITY_INTERVAL); }
Test(shard, failed_write_spares_written_batch_always) { failed_write_after_good_one(STORE_DURABILITY_ALWAYS); }

/* A shard whose records cannot be published yet (here: its stream's catalog
 * record is stuck behind a blocked fsync) sits at the head of the eviction
 * FIFO. Eviction must step over it: the other shards' tails stay within the
 * budget. It once stopped there, and tail memory grew without bound. */
Test(shard, eviction_steps_over_an_unpublished_shard, .timeout = 60)
{
    char *dir = tmpdir_new();
    struct faults f = {0};
    struct store_io_ops io = {fault_write, fault_fsync, &f};
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    o.tail_budget_bytes = 256 * 1024;
    o.io = &io;
    struct store *s = open_store(dir, &o);
    struct store_shard *ok = store_stream_shard(make_stream(s, "ok", 1), 0);

    __atomic_store_n(&f.block_catalog_fsync, 1, __ATOMIC_RELEASE);
    struct store_stream *held_st;
    struct store_err err;
    cr_assert_eq(store_stream_create(s, "held", 1, &held_st, &err), 0, "%s", err.msg);
    struct store_shard *held = store_stream_shard(held_st, 0);
    struct done_ctr dh = {0}, dk = {0};
    append_batch(held, 0, 64, &dh);
    store_commit(s); /* written, first in the FIFO, not publishable yet */
    cr_assert_eq(dh.ok + dh.failed, 0);

    /* 4 MiB through the other shard: 16 times the budget. */
    uint64_t i = 0;
    for (int b = 0; b < 400; b++, i += 64) {
        append_batch(ok, i, 64, &dk);
        store_commit(s);
        store_dispatch(s);
    }
    cr_assert_eq(dk.ok, 400);
    struct store_stats st;
    store_stats(s, &st);
    cr_assert_leq(st.tail_bytes, o.tail_budget_bytes + 2 * 256 * 1024,
                  "tail %llu bytes with a budget of %llu",
                  (unsigned long long)st.tail_bytes, (unsigned long long)o.tail_budget_bytes);
    cr_assert_eq(read_all_check(ok, 0, 500), (size_t)i, "the other shard reads back from disk");

    /* The catalog record lands: the held records are acknowledged and read. */
    __atomic_store_n(&f.block_catalog_fsync, 0, __ATOMIC_RELEASE);
    pump_until(s, &dh, 1);
    cr_assert_eq(dh.ok, 1);
    cr_assert_eq(read_all_check(held, 0, 100), 64);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* After a failed fsync the shard cuts its segment back to the durable point;
 * the cut itself must be made durable, or the discarded (failed) records
 * could come back after a crash. Here the fsync of the cut fails too: the
 * shard must go offline rather than carry on with a cut it cannot trust. */
Test(shard, cut_after_failed_fsync_is_fsynced, .timeout = 60)
{
    char *dir = tmpdir_new();
    struct faults f = {0};
    struct store_io_ops io = {fault_write, fault_fsync, &f};
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_ALWAYS;
    o.io = &io;
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "c", 1), 0);
    struct done_ctr d0 = {0}, d1 = {0};
    append_batch(sh, 0, 10, &d0);
    pump_until(s, &d0, 1);
    cr_assert_eq(d0.ok, 1);
    /* The data fsync fails, then the fsync of the cut. */
    __atomic_store_n(&f.fsync_fail_errno, EIO, __ATOMIC_RELEASE);
    __atomic_store_n(&f.fsync_fail_count, 2, __ATOMIC_RELEASE);
    append_batch(sh, 10, 10, &d1);
    pump_until(s, &d1, 1);
    cr_assert_eq(d1.failed, 1);
    cr_assert_eq(__atomic_load_n(&f.fsync_fail_count, __ATOMIC_ACQUIRE), 0,
                 "the cut was not fsynced");
    struct store_err err;
    cr_assert_neq(store_shard_check(sh, &err), 0, "a cut that failed to sync leaves the shard online");
    store_close(s);
    /* After a restart the shard holds exactly the acknowledged batch. */
    s = open_store(dir, &o);
    sh = store_stream_shard(get_stream(s, "c"), 0);
    cr_assert_eq(read_all_check(sh, 0, 100), 10);
    store_close(s);
    rm_rf(dir);
    free(dir);
}
