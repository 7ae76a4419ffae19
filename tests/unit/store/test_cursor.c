/* test_cursor.c - cursor.c: every position type (from the tail and from
 * segments), timestamps between records, limits, millis-behind, visibility
 * before durability, and borrowed views surviving tail eviction. */
#include "helpers.h"

struct fx {
    char *dir;
    struct fake_clock clk;
    struct store_opts o;
    struct store *s;
    struct store_shard *sh;
    struct store_seq seq[10];
    struct done_ctr d;
    struct store_cursor *cur;
};

/* Records 0..9 arrive at t = 1000, 2000, ..., 10000 (+ base). */
static const int64_t BASE = 1700000000000;

static void fx_open(struct fx *f, enum store_durability mode)
{
    memset(f, 0, sizeof *f);
    f->dir = tmpdir_new();
    f->clk.now = BASE;
    store_opts_init(&f->o);
    f->o.durability = mode;
    f->o.clock = fake_now;
    f->o.clock_arg = &f->clk;
    f->s = open_store(f->dir, &f->o);
    struct store_stream *st = make_stream(f->s, "c", 2);
    f->sh = store_stream_shard(st, 0);
    for (int i = 0; i < 10; i++) {
        f->clk.now = BASE + 1000 * (i + 1);
        f->seq[i] = append_one(f->sh, (uint64_t)i, &f->d);
    }
    pump_until(f->s, &f->d, 10);
    f->cur = store_cursor_new();
}

static void fx_reopen(struct fx *f)
{
    store_close(f->s);
    f->s = open_store(f->dir, &f->o);
    f->sh = store_stream_shard(get_stream(f->s, "c"), 0);
}

static void fx_close(struct fx *f)
{
    store_cursor_free(f->cur);
    store_close(f->s);
    rm_rf(f->dir);
    free(f->dir);
}

/* Reads up to "max" from a position of "type" and checks that the records
 * are exactly first..first+count-1. */
static void expect_read(struct fx *f, enum store_pos_type type, const struct store_seq *seq,
                        int64_t ts, size_t max, int first, size_t count)
{
    struct store_pos pos, next;
    struct store_err err;
    cr_assert_eq(store_shard_position(f->sh, type, seq, ts, &pos, &err), 0, "%s", err.msg);
    const struct store_record *recs;
    size_t n;
    cr_assert_eq(store_shard_read(f->sh, f->cur, &pos, max, SIZE_MAX, &recs, &n, &next, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(n, count, "type %d first %d: got %zu records", type, first, n);
    for (size_t i = 0; i < n; i++) {
        check_rec(&recs[i], (uint64_t)first + i);
        cr_assert_eq(store_seq_cmp(recs[i].seq, f->seq[first + i]), 0);
        cr_assert_eq(recs[i].arrival_ms, BASE + 1000 * (first + (int64_t)i + 1));
    }
}

static void all_positions(struct fx *f)
{
    expect_read(f, STORE_POS_TRIM_HORIZON, NULL, 0, 100, 0, 10);
    expect_read(f, STORE_POS_TRIM_HORIZON, NULL, 0, 3, 0, 3);
    expect_read(f, STORE_POS_LATEST, NULL, 0, 100, 0, 0);
    expect_read(f, STORE_POS_AT_SEQUENCE, &f->seq[4], 0, 100, 4, 6);
    expect_read(f, STORE_POS_AFTER_SEQUENCE, &f->seq[4], 0, 100, 5, 5);
    expect_read(f, STORE_POS_AT_SEQUENCE, &f->seq[0], 0, 2, 0, 2);
    expect_read(f, STORE_POS_AFTER_SEQUENCE, &f->seq[9], 0, 100, 0, 0);
    /* timestamps: exactly on a record, between two records, before all, after all */
    expect_read(f, STORE_POS_AT_TIMESTAMP, NULL, BASE + 3000, 100, 2, 8);
    expect_read(f, STORE_POS_AT_TIMESTAMP, NULL, BASE + 3500, 100, 3, 7);
    expect_read(f, STORE_POS_AT_TIMESTAMP, NULL, BASE + 2999, 1, 2, 1);
    expect_read(f, STORE_POS_AT_TIMESTAMP, NULL, 0, 100, 0, 10);
    expect_read(f, STORE_POS_AT_TIMESTAMP, NULL, BASE + 10001, 100, 0, 0);
    expect_read(f, STORE_POS_AT_TIMESTAMP, NULL, BASE + 10000, 100, 9, 1);
    /* a sequence number between two records (a gap) starts at the next one */
    struct store_seq gap = f->seq[4];
    gap.counter++; /* seq[4] and seq[5] are adjacent counters: use AFTER semantics */
    expect_read(f, STORE_POS_AT_SEQUENCE, &gap, 0, 100, 5, 5);
    /* other shard's numbers are rejected */
    struct store_seq other = f->seq[0];
    other.shard = 1;
    struct store_pos pos;
    struct store_err err;
    cr_assert_eq(store_shard_position(f->sh, STORE_POS_AT_SEQUENCE, &other, 0, &pos, &err), STORE_EINVAL);
    cr_assert_eq(store_shard_position(f->sh, STORE_POS_AT_SEQUENCE, NULL, 0, &pos, &err), STORE_EINVAL);
    pos.seq = other;
    pos.after = 0;
    const struct store_record *recs;
    size_t n;
    struct store_pos next;
    cr_assert_eq(store_shard_read(f->sh, f->cur, &pos, 1, SIZE_MAX, &recs, &n, &next, NULL, &err),
                 STORE_EINVAL);
}

Test(cursor, positions_from_tail)
{
    struct fx f;
    fx_open(&f, STORE_DURABILITY_NEVER);
    all_positions(&f);
    fx_close(&f);
}

Test(cursor, positions_from_segments)
{
    struct fx f;
    fx_open(&f, STORE_DURABILITY_NEVER);
    fx_reopen(&f);
    all_positions(&f);
    fx_close(&f);
}

Test(cursor, positions_always_mode)
{
    struct fx f;
    fx_open(&f, STORE_DURABILITY_ALWAYS);
    all_positions(&f);
    fx_close(&f);
}

Test(cursor, latest_then_new_records_and_paging)
{
    struct fx f;
    fx_open(&f, STORE_DURABILITY_NEVER);
    struct store_pos pos, next;
    cr_assert_eq(store_shard_position(f.sh, STORE_POS_LATEST, NULL, 0, &pos, NULL), 0);
    struct done_ctr d = {0};
    for (int i = 10; i < 25; i++) {
        f.clk.now = BASE + 1000 * (i + 1);
        append_one(f.sh, (uint64_t)i, &d);
    }
    store_commit(f.s);
    const struct store_record *recs;
    size_t n, total = 0;
    int64_t behind;
    for (;;) {
        cr_assert_eq(store_shard_read(f.sh, f.cur, &pos, 4, SIZE_MAX, &recs, &n, &next, &behind, NULL), 0);
        if (!n) {
            break;
        }
        for (size_t i = 0; i < n; i++) check_rec(&recs[i], 10 + total + i);
        total += n;
        /* newest record arrived at 25000; the last one read at (10+total)*1000 */
        cr_assert_eq(behind, (int64_t)(25 - (10 + total)) * 1000, "behind after %zu", total);
        pos = next;
    }
    cr_assert_eq(total, 15);
    cr_assert_eq(behind, 0);
    fx_close(&f);
}

Test(cursor, byte_limit_returns_at_least_one)
{
    struct fx f;
    fx_open(&f, STORE_DURABILITY_NEVER);
    struct store_pos pos, next;
    cr_assert_eq(store_shard_position(f.sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, NULL), 0);
    const struct store_record *recs;
    size_t n;
    cr_assert_eq(store_shard_read(f.sh, f.cur, &pos, 100, 1, &recs, &n, &next, NULL, NULL), 0);
    cr_assert_eq(n, 1);
    size_t two = recs[0].data.len + recs[0].partition_key.len;
    cr_assert_eq(store_shard_read(f.sh, f.cur, &pos, 100, SIZE_MAX, &recs, &n, &next, NULL, NULL), 0);
    two += recs[1].data.len + recs[1].partition_key.len;
    cr_assert_eq(store_shard_read(f.sh, f.cur, &pos, 100, two, &recs, &n, &next, NULL, NULL), 0);
    cr_assert_eq(n, 2);
    fx_reopen(&f); /* same from segments */
    cr_assert_eq(store_shard_read(f.sh, f.cur, &pos, 100, two, &recs, &n, &next, NULL, NULL), 0);
    cr_assert_eq(n, 2);
    fx_close(&f);
}

Test(cursor, not_readable_before_durable)
{
    struct fx f;
    fx_open(&f, STORE_DURABILITY_ALWAYS);
    struct store_pos pos, next;
    cr_assert_eq(store_shard_position(f.sh, STORE_POS_LATEST, NULL, 0, &pos, NULL), 0);
    struct done_ctr d = {0};
    append_one(f.sh, 10, &d);
    store_commit(f.s); /* written, fsync pending: no dispatch yet */
    const struct store_record *recs;
    size_t n;
    cr_assert_eq(store_shard_read(f.sh, f.cur, &pos, 10, SIZE_MAX, &recs, &n, &next, NULL, NULL), 0);
    cr_assert_eq(n, 0, "an unacknowledged record must not be readable");
    cr_assert_eq(d.ok, 0);
    pump_until(f.s, &d, 1);
    cr_assert_eq(store_shard_read(f.sh, f.cur, &pos, 10, SIZE_MAX, &recs, &n, &next, NULL, NULL), 0);
    cr_assert_eq(n, 1);
    check_rec(&recs[0], 10);
    fx_close(&f);
}

Test(cursor, views_survive_eviction_until_next_read)
{
    char *dir = tmpdir_new();
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    o.tail_budget_bytes = 16384;
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "e", 1), 0);
    struct done_ctr d = {0};
    append_batch(sh, 0, 10, &d);
    store_commit(s);
    struct store_cursor *cur = store_cursor_new();
    struct store_pos pos, next;
    cr_assert_eq(store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, NULL), 0);
    pos.seq.gen = 1; /* start inside the tail rather than below it */
    const struct store_record *recs;
    size_t n;
    cr_assert_eq(store_shard_read(sh, cur, &pos, 10, SIZE_MAX, &recs, &n, &next, NULL, NULL), 0);
    cr_assert_eq(n, 10);
    for (uint64_t k = 0; k < 50; k++) {
        append_batch(sh, 100 + k * 10, 10, &d);
        store_commit(s);
    }
    struct store_stats st;
    store_stats(s, &st);
    cr_assert_leq(st.tail_bytes, 16384 + 8192);
    for (size_t i = 0; i < n; i++) check_rec(&recs[i], i); /* ASan would flag a freed chunk */
    store_cursor_free(cur);
    store_close(s);
    rm_rf(dir);
    free(dir);
}
