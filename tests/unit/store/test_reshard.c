/* test_reshard.c - splits, merges and uniform scaling in the store: range
 * arithmetic, lineage, routing, held-back children, shard end, the catalog
 * record across a reopen, and the undo when that record cannot be written. */
#include "helpers.h"

__extension__ typedef unsigned __int128 u128;

static u128 hk(const struct store_hashkey *k)
{
    u128 v = 0;
    for (int i = 0; i < 16; i++)
        v = (v << 8) | k->be[i];
    return v;
}

static struct store_hashkey hk_of(u128 v)
{
    struct store_hashkey k;
    for (int i = 15; i >= 0; i--) {
        k.be[i] = (uint8_t)v;
        v >>= 8;
    }
    return k;
}

static struct store_opts opts_mode(enum store_durability d)
{
    struct store_opts o;
    store_opts_init(&o);
    o.durability = d;
    return o;
}

/* The open shards, sorted by range, must be exactly the uniform split. */
static void check_uniform(struct store_stream *st, uint32_t target)
{
    struct store_stream_info si;
    store_stream_info(st, &si);
    cr_assert_eq(si.open_shard_count, target);
    uint32_t n = store_stream_shard_count(st), found = 0;
    for (uint32_t j = 0; j < target; j++) {
        struct store_hashkey a, b;
        store_hashkey_uniform_split(target, j, &a, &b);
        struct store_shard *sh = NULL;
        cr_assert_eq(store_stream_route(st, &a, &sh, NULL), 0);
        struct store_shard_info in;
        store_shard_info(sh, &in);
        cr_assert(in.open);
        cr_assert(hk(&in.hash_start) == hk(&a) && hk(&in.hash_end) == hk(&b),
                  "range %u of %u", j, target);
    }
    for (uint32_t i = 0; i < n; i++) {
        struct store_shard_info in;
        store_shard_info(store_stream_shard(st, i), &in);
        found += in.open;
        cr_assert_eq(in.index, i);
        if (!in.open)
            cr_assert(in.has_ending_seq);
    }
    cr_assert_eq(found, target);
}

Test(reshard, uniform_split_is_contiguous_and_within_one)
{
    const u128 max = ~(u128)0;
    for (uint32_t n = 1; n <= 10000; n = n < 2048 ? n + 1 : n * 2 + 1) {
        u128 lo = max, hi = 0, expect = 0;
        for (uint32_t i = 0; i < n; i++) {
            struct store_hashkey a, b;
            store_hashkey_uniform_split(n, i, &a, &b);
            cr_assert(hk(&a) == expect, "n=%u i=%u starts where %u ended", n, i, i - 1);
            cr_assert(hk(&b) >= hk(&a));
            u128 size = hk(&b) - hk(&a); /* size - 1, so 2^128 - 1 fits */
            lo = size < lo ? size : lo;
            hi = size > hi ? size : hi;
            expect = hk(&b) + 1;
        }
        cr_assert(expect == 0, "n=%u: the last range ends at 2^128-1", n);
        cr_assert(hi - lo <= 1, "n=%u: sizes within one of even", n);
    }
}

Test(reshard, split_closes_parent_routes_to_children_and_survives_reopen)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_mode(STORE_DURABILITY_ALWAYS);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "s", 1);
    struct store_shard *p = store_stream_shard(st, 0);
    struct done_ctr d = {0};
    struct store_seq last;
    for (int i = 0; i < 5; i++)
        last = append_one(p, (uint64_t)i, &d);
    pump_until(s, &d, 5);

    struct store_err err;
    struct store_hashkey k = hk_of((u128)1 << 127), zero = hk_of(0), over = hk_of(~(u128)0);
    cr_assert_eq(store_stream_split(st, p, &zero, NULL, NULL, &err), STORE_EINVAL,
                 "the split key must be above the start");
    struct done_ctr split = {0};
    cr_assert_eq(store_stream_split(st, p, &k, on_done, &split, &err), 0, "%s", err.msg);
    cr_assert_eq(store_stream_split(st, p, &over, NULL, NULL, &err), STORE_ESTATE,
                 "a closed shard cannot be split again");
    cr_assert_eq(store_stream_shard_count(st), 3);
    struct store_shard_info pi, ai, bi;
    store_shard_info(p, &pi);
    store_shard_info(store_stream_shard(st, 1), &ai);
    store_shard_info(store_stream_shard(st, 2), &bi);
    cr_assert(!pi.open && pi.has_ending_seq);
    cr_assert_eq(store_seq_cmp(pi.ending_seq, last), 0, "ends at its last record");
    cr_assert(hk(&ai.hash_start) == 0 && hk(&ai.hash_end) == ((u128)1 << 127) - 1);
    cr_assert(hk(&bi.hash_start) == (u128)1 << 127 && hk(&bi.hash_end) == ~(u128)0);
    cr_assert_str_eq(ai.parent_id, "shardId-000000000000");
    cr_assert_str_eq(bi.parent_id, "shardId-000000000000");
    cr_assert_null(ai.adjacent_parent_id);
    cr_assert_gt(store_seq_cmp(ai.starting_seq, last), 0, "children sort after the parent");

    /* Writes: the parent refuses, routing picks the child. */
    cr_assert_eq(store_shard_append(p, &(struct store_record_in){{(const uint8_t *)"k", 1}, NULL,
                                                                 {NULL, 0}},
                                    1, NULL, NULL, NULL, &err),
                 STORE_ESTATE);
    struct store_shard *r = NULL;
    cr_assert_eq(store_stream_route(st, &k, &r, NULL), 0);
    cr_assert_eq(r, store_stream_shard(st, 2));
    struct done_ctr cd = {0};
    append_one(r, 100, &cd);
    store_commit(s);
    int has = 1;
    store_shard_latest(r, &has, NULL);
    pump_until(s, &split, 1);
    cr_assert_eq(split.ok, 1);
    pump_until(s, &cd, 1);
    cr_assert_eq(cd.ok, 1);
    cr_assert_eq(read_all_check(r, 100, 10), 1);

    /* Shard end: past the last record, and LATEST at once. */
    const struct store_shard *kids[4];
    cr_assert_eq(store_shard_children(p, kids, 4), 2);
    cr_assert_eq(kids[0], store_stream_shard(st, 1));
    struct store_pos pos;
    cr_assert_eq(store_shard_position(p, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, NULL), 0);
    cr_assert_not(store_shard_at_end(p, &pos));
    cr_assert_eq(read_all_check(p, 0, 2), 5);
    cr_assert_eq(store_shard_position(p, STORE_POS_LATEST, NULL, 0, &pos, NULL), 0);
    cr_assert(store_shard_at_end(p, &pos));
    cr_assert_eq(store_shard_position(r, STORE_POS_LATEST, NULL, 0, &pos, NULL), 0);
    cr_assert_not(store_shard_at_end(r, &pos), "an open shard never ends");

    store_close(s);
    s = open_store(dir, &o);
    st = get_stream(s, "s");
    cr_assert_eq(store_stream_shard_count(st), 3);
    p = store_stream_shard(st, 0);
    store_shard_info(p, &pi);
    cr_assert(!pi.open && pi.has_ending_seq);
    cr_assert_eq(store_seq_cmp(pi.ending_seq, last), 0);
    cr_assert_gt(pi.closed_ms, 0);
    store_shard_info(store_stream_shard(st, 2), &bi);
    cr_assert_str_eq(bi.parent_id, "shardId-000000000000");
    cr_assert_eq(read_all_check(p, 0, 3), 5);
    cr_assert_eq(read_all_check(store_stream_shard(st, 2), 100, 3), 1);
    cr_assert_eq(store_stream_route(st, &zero, &r, NULL), 0);
    cr_assert_eq(r, store_stream_shard(st, 1));
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* Before the split's record is durable the children hold their records
 * back; the split's callback waits for the parent's earlier appends. */
Test(reshard, children_held_back_and_reply_after_parent_acks)
{
    char *dir = tmpdir_new();
    struct faults f = {0};
    struct store_io_ops io = {fault_write, fault_fsync, &f};
    struct store_opts o = opts_mode(STORE_DURABILITY_NEVER);
    o.io = &io;
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "s", 1);
    __atomic_store_n(&f.block_catalog_fsync, 1, __ATOMIC_RELEASE);
    struct store_hashkey k = hk_of((u128)1 << 100);
    struct done_ctr split = {0};
    cr_assert_eq(store_stream_split(st, store_stream_shard(st, 0), &k, on_done, &split, NULL), 0);
    struct done_ctr cd = {0};
    append_one(store_stream_shard(st, 1), 7, &cd);
    store_commit(s);
    store_dispatch(s);
    cr_assert_eq(cd.ok + cd.failed, 0, "not acknowledged before the split is durable");
    int has = 1;
    store_shard_latest(store_stream_shard(st, 1), &has, NULL);
    cr_assert_eq(has, 0, "not readable before the split is durable");
    __atomic_store_n(&f.block_catalog_fsync, 0, __ATOMIC_RELEASE);
    pump_until(s, &cd, 1);
    pump_until(s, &split, 1);
    cr_assert_eq(cd.ok, 1);
    cr_assert_eq(split.ok, 1);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

static int order_n;
struct ordered {
    int at;
};
static void on_ordered(void *arg, const struct store_err *err)
{
    ((struct ordered *)arg)->at = ++order_n;
}

Test(reshard, split_callback_after_parent_appends)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_mode(STORE_DURABILITY_ALWAYS);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "s", 2);
    struct ordered a = {0}, b = {0};
    uint8_t data[16] = {0};
    struct store_record_in rec = {{(const uint8_t *)"pk", 2}, NULL, {data, sizeof data}};
    cr_assert_eq(store_shard_append(store_stream_shard(st, 0), &rec, 1, NULL, on_ordered, &a, NULL),
                 0);
    struct store_hashkey k = hk_of(12345);
    cr_assert_eq(store_stream_split(st, store_stream_shard(st, 0), &k, on_ordered, &b, NULL), 0);
    for (int i = 0; i < 10000 && !b.at; i++) {
        store_commit(s);
        struct pollfd pl = {store_notify_fd(s), POLLIN, 0};
        poll(&pl, 1, 1);
        store_dispatch(s);
    }
    cr_assert(a.at && b.at && a.at < b.at, "append %d, split %d", a.at, b.at);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

Test(reshard, merge_checks_adjacency_and_records_both_parents)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_mode(STORE_DURABILITY_NEVER);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "s", 3);
    struct store_err err;
    struct store_shard *s0 = store_stream_shard(st, 0), *s1 = store_stream_shard(st, 1),
                       *s2 = store_stream_shard(st, 2);
    cr_assert_eq(store_stream_merge(st, s0, s2, NULL, NULL, &err), STORE_EINVAL);
    cr_assert_eq(store_stream_merge(st, s1, s1, NULL, NULL, &err), STORE_EINVAL);
    /* Either order: ShardToMerge is the parent, the other the adjacent one. */
    cr_assert_eq(store_stream_merge(st, s2, s1, NULL, NULL, &err), 0, "%s", err.msg);
    struct store_shard_info ci, i1, i2;
    store_shard_info(store_stream_shard(st, 3), &ci);
    store_shard_info(s1, &i1);
    store_shard_info(s2, &i2);
    cr_assert_str_eq(ci.parent_id, "shardId-000000000002");
    cr_assert_str_eq(ci.adjacent_parent_id, "shardId-000000000001");
    cr_assert(hk(&ci.hash_start) == hk(&i1.hash_start) && hk(&ci.hash_end) == hk(&i2.hash_end));
    cr_assert_eq(store_stream_merge(st, s0, s1, NULL, NULL, &err), STORE_ESTATE);
    cr_assert_eq(catalog_settle(s), 0);
    store_close(s);
    s = open_store(dir, &o);
    st = get_stream(s, "s");
    store_shard_info(store_stream_shard(st, 3), &ci);
    cr_assert_str_eq(ci.adjacent_parent_id, "shardId-000000000001");
    struct store_stream_info si;
    store_stream_info(st, &si);
    cr_assert_eq(si.open_shard_count, 2);
    cr_assert_eq(si.shard_count, 4);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

Test(reshard, uniform_scaling_up_to_2048_and_back, .timeout = 300)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_mode(STORE_DURABILITY_NEVER);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "s", 1);
    struct store_err err;
    for (uint32_t n = 2; n <= 2048; n *= 2) {
        cr_assert_eq(store_stream_scale(st, n, NULL, NULL, &err), 0, "%u: %s", n, err.msg);
        check_uniform(st, n);
    }
    cr_assert_eq(catalog_settle(s), 0);
    store_close(s);
    s = open_store(dir, &o);
    st = get_stream(s, "s");
    check_uniform(st, 2048);
    for (uint32_t n = 1024; n >= 1; n /= 2) {
        cr_assert_eq(store_stream_scale(st, n, NULL, NULL, &err), 0, "%u: %s", n, err.msg);
        check_uniform(st, n);
    }
    /* Counts that do not divide each other. */
    static const uint32_t odd[] = {3, 5, 4, 7, 13, 8, 2, 1};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        cr_assert_eq(store_stream_scale(st, odd[i], NULL, NULL, &err), 0, "%s", err.msg);
        check_uniform(st, odd[i]);
    }
    cr_assert_eq(catalog_settle(s), 0);
    uint32_t total = store_stream_shard_count(st);
    store_close(s);
    s = open_store(dir, &o);
    st = get_stream(s, "s");
    check_uniform(st, 1);
    cr_assert_eq(store_stream_shard_count(st), total);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* A reshard whose record cannot be written is undone: the children are gone
 * (their appends fail), the parent is open again, now and after a reopen. */
Test(reshard, catalog_failure_undoes_the_split)
{
    char *dir = tmpdir_new();
    struct faults f = {0};
    struct store_io_ops io = {fault_write, fault_fsync, &f};
    struct store_opts o = opts_mode(STORE_DURABILITY_NEVER);
    o.io = &io;
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "s", 1);
    __atomic_store_n(&f.fsync_fail_errno, EIO, __ATOMIC_RELEASE);
    __atomic_store_n(&f.fsync_fail_count, 1, __ATOMIC_RELEASE);
    struct store_hashkey k = hk_of((u128)1 << 127);
    struct done_ctr split = {0}, cd = {0};
    cr_assert_eq(store_stream_split(st, store_stream_shard(st, 0), &k, on_done, &split, NULL), 0);
    append_one(store_stream_shard(st, 2), 1, &cd);
    pump_until(s, &split, 1);
    cr_assert_eq(split.failed, 1);
    cr_assert_eq(split.last_code, STORE_EIO);
    pump_until(s, &cd, 1);
    cr_assert_eq(cd.failed, 1);
    cr_assert_eq(cd.last_code, STORE_ENOTFOUND);
    for (int pass = 0; pass < 2; pass++) {
        st = get_stream(s, "s");
        cr_assert_eq(store_stream_shard_count(st), 1, "pass %d", pass);
        struct store_shard *r = NULL;
        cr_assert_eq(store_stream_route(st, &k, &r, NULL), 0);
        cr_assert_eq(r, store_stream_shard(st, 0));
        struct done_ctr d = {0};
        append_one(r, 2, &d);
        pump_until(s, &d, 1);
        cr_assert_eq(d.ok, 1, "the parent takes appends again");
        cr_assert_eq(catalog_settle(s), 0);
        store_close(s);
        s = open_store(dir, &o);
    }
    store_close(s);
    rm_rf(dir);
    free(dir);
}
