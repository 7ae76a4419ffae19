/* test_jetstream.c - the store's jetstream backend (store/jetstream.c): two
 * stores in one process on the same JetStream and prefix play two gateways.
 * The catalog converges both ways, racing catalog changes leave exactly one
 * winner and both stores agreeing, and records appended through one are read
 * through the other with the same sequence numbers. Against a real
 * nats-server (nats_server.h); this test plays the loop thread.
 */
#include <openssl/rand.h>
#include <poll.h>

#include "jsbus.h"
#include "nats_server.h"
#include "store.h"

static void setup(void)
{
    server_start();
}

static void teardown(void)
{
    server_stop();
}

TestSuite(jetstream, .init = setup, .fini = teardown, .timeout = 120);

static char prefix[40];
static char removed[256]; /* the last on_remote_removal, "stream" or "stream/consumer" */

static void on_log(void *arg, enum store_log_level lvl, const char *msg)
{
    fprintf(stderr, "[%s %d] %s\n", (const char *)arg, (int)lvl, msg);
}

static void on_removal(void *arg, const char *stream, const char *consumer)
{
    (void)arg;
    snprintf(removed, sizeof removed, "%s%s%s", stream, consumer ? "/" : "", consumer ? consumer : "");
}

static struct store *open_store(const char *name, char *dir)
{
    if (!prefix[0]) {
        unsigned char r[6];
        cr_assert_eq(RAND_bytes(r, sizeof r), 1);
        snprintf(prefix, sizeof prefix, "ut%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4],
                 r[5]);
    }
    strcpy(dir, "/tmp/sluice-js-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct store_opts o;
    store_opts_init(&o);
    o.backend = STORE_BACKEND_JETSTREAM;
    o.nats_url = srv_url;
    o.nats_replicas = 1;
    o.nats_prefix = prefix;
    o.log = on_log;
    o.log_arg = (void *)name;
    o.on_remote_removal = on_removal;
    struct store *s = NULL;
    struct store_err err = {0};
    cr_assert_eq(store_open(dir, &o, &s, &err), 0, "store_open %s: %s", name, err.msg);
    return s;
}

static void close_store(struct store *s, char *dir)
{
    store_close(s);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Plays the loop of both stores for up to "ms", until "cond" holds. */
#define PUMP_UNTIL(a, b, ms, cond)                                                                 \
    do {                                                                                           \
        int64_t d_ = now_ms() + (ms);                                                              \
        while (!(cond) && now_ms() < d_) {                                                         \
            struct pollfd p_[2] = {{.fd = store_notify_fd(a), .events = POLLIN},                   \
                                   {.fd = store_notify_fd(b), .events = POLLIN}};                  \
            poll(p_, 2, 20);                                                                       \
            store_dispatch(a);                                                                     \
            store_dispatch(b);                                                                     \
            store_commit(a);                                                                       \
            store_commit(b);                                                                       \
        }                                                                                          \
    } while (0)

struct done {
    int fired;
    int code;
};

static void on_done(void *arg, const struct store_err *e)
{
    struct done *d = arg;
    d->fired++;
    d->code = e ? e->code : 0;
}

static int has_stream(struct store *s, const char *name)
{
    struct store_stream *st;
    return store_stream_lookup(s, name, &st, NULL) == 0;
}

static int tag_count(struct store *s, const char *name)
{
    struct store_stream *st;
    return store_stream_lookup(s, name, &st, NULL) == 0 ? (int)store_stream_tag_count(st) : -1;
}

/* Waits until B's copy of shard 0 of "name" holds "upto", then reads it from
 * the trim horizon (at most "max" records) with "cur". */
static const struct store_record *read_copy(struct store *a, struct store *b, const char *name,
                                            struct store_seq upto, size_t max,
                                            struct store_cursor *cur, size_t *n)
{
    PUMP_UNTIL(a, b, 10000, has_stream(b, name));
    struct store_stream *sb;
    cr_assert_eq(store_stream_lookup(b, name, &sb, NULL), 0);
    struct store_shard *sh = store_stream_shard(sb, 0);
    int has = 0;
    struct store_seq last;
    PUMP_UNTIL(a, b, 10000, (store_shard_latest(sh, &has, &last), has) &&
                                store_seq_cmp(last, upto) == 0);
    struct store_pos from, next;
    struct store_err err = {0};
    cr_assert_eq(store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &from, &err), 0);
    const struct store_record *recs;
    cr_assert_eq(store_shard_read(sh, cur, &from, max, 1 << 20, &recs, n, &next, NULL, &err), 0,
                 "%s", err.msg);
    return recs;
}

Test(jetstream, catalog_converges_both_ways)
{
    char da[64], db[64];
    struct store *a = open_store("A", da), *b = open_store("B", db);
    struct store_err err = {0};
    struct store_stream *st;
    cr_assert_eq(store_stream_create(a, "orders", 2, &st, &err), 0, "%s", err.msg);
    struct done d = {0};
    store_catalog_sync(a, on_done, &d);
    store_commit(a);
    PUMP_UNTIL(a, b, 10000, d.fired && has_stream(b, "orders"));
    cr_assert_eq(d.fired, 1);
    cr_assert_eq(d.code, 0);
    cr_assert(has_stream(b, "orders"), "B learns of A's stream");
    struct store_stream_info ia, ib;
    store_stream_info(st, &ia);
    cr_assert_eq(store_stream_lookup(b, "orders", &st, NULL), 0);
    store_stream_info(st, &ib);
    cr_assert_str_eq(ia.arn, ib.arn);
    cr_assert_eq(ia.created_ms, ib.created_ms);
    cr_assert_eq(ib.shard_count, 2);

    /* Through B, back to A. */
    struct store_tag t = {"team", "blue"};
    cr_assert_eq(store_stream_tags_add(st, &t, 1, &err), 0, "%s", err.msg);
    store_commit(b);
    PUMP_UNTIL(a, b, 10000, tag_count(a, "orders") == 1);
    cr_assert_eq(tag_count(a, "orders"), 1, "A sees B's tag");

    /* A deletion through A: B lets its handles go first, then the stream. */
    removed[0] = 0;
    cr_assert_eq(store_stream_delete(a, "orders", &err), 0, "%s", err.msg);
    store_commit(a);
    PUMP_UNTIL(a, b, 10000, !has_stream(b, "orders"));
    cr_assert(!has_stream(b, "orders"));
    cr_assert_str_eq(removed, "orders", "B's owner was told before the stream went");
    close_store(a, da);
    close_store(b, db);
}

Test(jetstream, racing_changes_one_wins_and_both_agree)
{
    char da[64], db[64];
    struct store *a = open_store("A", da), *b = open_store("B", db);
    struct store_err err = {0};
    /* Neither has seen the other's change when it sends its own. */
    cr_assert_eq(store_stream_create(a, "from-a", 1, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(store_stream_create(b, "from-b", 1, NULL, &err), 0, "%s", err.msg);
    struct done da_ = {0}, db_ = {0};
    store_catalog_sync(a, on_done, &da_);
    store_catalog_sync(b, on_done, &db_);
    store_commit(a);
    store_commit(b);
    PUMP_UNTIL(a, b, 10000, da_.fired && db_.fired);
    cr_assert_eq(da_.fired, 1);
    cr_assert_eq(db_.fired, 1);
    /* Exactly one won; the other was undone with STORE_ECONFLICT. */
    cr_assert((da_.code == 0) != (db_.code == 0), "A %d, B %d", da_.code, db_.code);
    const char *won = da_.code == 0 ? "from-a" : "from-b";
    const char *lost = da_.code == 0 ? "from-b" : "from-a";
    cr_assert_eq(da_.code == 0 ? db_.code : da_.code, STORE_ECONFLICT);
    PUMP_UNTIL(a, b, 10000, has_stream(a, won) && has_stream(b, won));
    cr_assert(has_stream(a, won) && has_stream(b, won), "both have %s", won);
    cr_assert(!has_stream(a, lost) && !has_stream(b, lost), "neither has %s", lost);
    /* The loser tries again and now wins: nothing was left behind. */
    struct store *l = da_.code == 0 ? b : a;
    struct done again = {0};
    cr_assert_eq(store_stream_create(l, lost, 1, NULL, &err), 0, "%s", err.msg);
    store_catalog_sync(l, on_done, &again);
    store_commit(l);
    PUMP_UNTIL(a, b, 10000, again.fired && has_stream(a, lost) && has_stream(b, lost));
    cr_assert_eq(again.code, 0);
    cr_assert(has_stream(a, lost) && has_stream(b, lost));
    cr_assert_eq(store_stream_count(a), 2);
    cr_assert_eq(store_stream_count(b), 2);
    close_store(a, da);
    close_store(b, db);
}

struct appended {
    struct done d;
    struct store_seq seqs[3];
};

/* Creates stream "name" of one shard through "a"; returns once the creation
 * is durable and "b" knows the stream. */
static struct store_stream *create_seen(struct store *a, struct store *b, const char *name)
{
    struct store_err err = {0};
    struct store_stream *st;
    cr_assert_eq(store_stream_create(a, name, 1, &st, &err), 0, "%s", err.msg);
    struct done created = {0};
    store_catalog_sync(a, on_done, &created);
    store_commit(a);
    PUMP_UNTIL(a, b, 10000, created.fired && has_stream(b, name));
    cr_assert_eq(created.code, 0);
    return st;
}

/* Appends one record "data" (partition key "k") to shard 0 of "st" and
 * waits at most "ms" for its answer, whatever it is, in "ap". */
static void append_wait(struct store *a, struct store *b, struct store_stream *st,
                        const char *data, struct appended *ap, int ms)
{
    struct store_record_in in = {.partition_key = {(const uint8_t *)"k", 1},
                                 .data = {(const uint8_t *)data, strlen(data)}};
    struct store_err err = {0};
    *ap = (struct appended){0};
    cr_assert_eq(store_shard_append(store_stream_shard(st, 0), &in, 1, ap->seqs, on_done, &ap->d,
                                    &err),
                 0, "%s", err.msg);
    PUMP_UNTIL(a, b, ms, ap->d.fired);
}

Test(jetstream, records_through_one_read_through_the_other)
{
    char da[64], db[64];
    struct store *a = open_store("A", da), *b = open_store("B", db);
    struct store_err err = {0};
    struct store_stream *st = create_seen(a, b, "events");
    struct store_record_in in[3];
    static const char *const data[3] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        in[i].partition_key = (struct store_bytes){(const uint8_t *)"p k%", 4};
        in[i].explicit_hash_key = NULL;
        in[i].data = (struct store_bytes){(const uint8_t *)data[i], strlen(data[i])};
    }
    struct appended ap = {0};
    cr_assert_eq(store_shard_append(store_stream_shard(st, 0), in, 3, ap.seqs, on_done, &ap.d,
                                    &err),
                 0, "%s", err.msg);
    store_commit(a);
    PUMP_UNTIL(a, b, 10000, ap.d.fired);
    cr_assert_eq(ap.d.code, 0);
    cr_assert_lt(store_seq_cmp(ap.seqs[0], ap.seqs[1]), 0);
    cr_assert_lt(store_seq_cmp(ap.seqs[1], ap.seqs[2]), 0);

    struct store_cursor *cur = store_cursor_new();
    size_t n = 0;
    const struct store_record *recs = read_copy(a, b, "events", ap.seqs[2], 10, cur, &n);
    cr_assert_eq(n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(store_seq_cmp(recs[i].seq, ap.seqs[i]), 0, "record %d's number", i);
        cr_assert_eq(recs[i].data.len, strlen(data[i]));
        cr_assert_eq(memcmp(recs[i].data.p, data[i], recs[i].data.len), 0);
        cr_assert_eq(recs[i].partition_key.len, 4);
        cr_assert_eq(memcmp(recs[i].partition_key.p, "p k%", 4), 0, "the key survives headers");
    }
    store_cursor_free(cur);
    close_store(a, da);
    close_store(b, db);
}

struct batch {
    struct done d;
    struct store_seq seqs[200];
};

/* Appended in the same loop turn as the stream's creation, before its
 * JetStream stream exists: held, then sent in order (once, retried ones
 * went out in reverse and landed out of order). */
Test(jetstream, appends_before_the_stream_exists_keep_their_order)
{
    char da[64], db[64];
    struct store *a = open_store("A", da), *b = open_store("B", db);
    struct store_err err = {0};
    struct store_stream *st;
    cr_assert_eq(store_stream_create(a, "early", 1, &st, &err), 0, "%s", err.msg);
    static struct batch bt[3];
    static char bufs[600][8];
    struct store_record_in in[200];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 200; i++) {
            snprintf(bufs[k * 200 + i], sizeof bufs[0], "%d", k * 200 + i);
            in[i].partition_key = (struct store_bytes){(const uint8_t *)"k", 1};
            in[i].explicit_hash_key = NULL;
            in[i].data = (struct store_bytes){(const uint8_t *)bufs[k * 200 + i],
                                              strlen(bufs[k * 200 + i])};
        }
        cr_assert_eq(store_shard_append(store_stream_shard(st, 0), in, 200, bt[k].seqs, on_done,
                                        &bt[k].d, &err),
                     0, "%s", err.msg);
    }
    store_commit(a);
    PUMP_UNTIL(a, b, 30000, bt[0].d.fired && bt[1].d.fired && bt[2].d.fired);
    for (int k = 0; k < 3; k++)
        cr_assert_eq(bt[k].d.code, 0, "batch %d: %d", k, bt[k].d.code);
    /* Numbers grow in append order, across the batches too. */
    for (int j = 1; j < 600; j++)
        cr_assert_lt(store_seq_cmp(bt[(j - 1) / 200].seqs[(j - 1) % 200], bt[j / 200].seqs[j % 200]),
                     0, "record %d before record %d", j - 1, j);
    /* And the copy through B reads them in that order. */
    struct store_cursor *cur = store_cursor_new();
    size_t n = 0;
    const struct store_record *recs = read_copy(a, b, "early", bt[2].seqs[199], 1000, cur, &n);
    cr_assert_eq(n, 600);
    for (size_t i = 0; i < n; i++) {
        char want[24];
        snprintf(want, sizeof want, "%zu", i);
        cr_assert_eq(recs[i].data.len, strlen(want));
        cr_assert_eq(memcmp(recs[i].data.p, want, recs[i].data.len), 0, "record %zu", i);
    }
    store_cursor_free(cur);
    close_store(a, da);
    close_store(b, db);
}

/* Reads shard "index" of "name" through "s" from the trim horizon until it
 * is at its end (want TO_END: closed, and the copy has everything below the
 * end) or it has read "want" records (at least one read), while both stores
 * run; the records' data, "|"-separated, into "out". */
#define TO_END SIZE_MAX
static size_t read_shard(struct store *a, struct store *b, struct store *s, const char *name,
                         uint32_t index, size_t want, char *out, size_t cap)
{
    struct store_stream *st;
    cr_assert_eq(store_stream_lookup(s, name, &st, NULL), 0);
    struct store_shard *sh = store_stream_shard(st, index);
    cr_assert_not_null(sh);
    struct store_cursor *cur = store_cursor_new();
    struct store_pos pos;
    struct store_err err = {0};
    cr_assert_eq(store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, &err), 0);
    size_t n = 0, len = 0;
    int64_t end = now_ms() + 20000;
    out[0] = 0;
    for (;;) {
        const struct store_record *recs;
        size_t k = 0;
        struct store_pos next;
        cr_assert_eq(store_shard_read(sh, cur, &pos, 1000, 1 << 20, &recs, &k, &next, NULL, &err),
                     0, "%s", err.msg);
        for (size_t i = 0; i < k; i++, n++) {
            cr_assert_lt(len + recs[i].data.len + 2, cap);
            memcpy(out + len, recs[i].data.p, recs[i].data.len);
            len += recs[i].data.len;
            out[len++] = '|';
            out[len] = 0;
        }
        pos = next;
        if (want == TO_END ? store_shard_at_end(sh, &pos) : n >= want)
            break;
        cr_assert_lt(now_ms(), end, "shard %u of %s: %zu records, never %s", index, name, n,
                     want == TO_END ? "its end" : "as many as wanted");
        PUMP_UNTIL(a, b, 20, 0);
    }
    store_cursor_free(cur);
    return n;
}

struct rbatch {
    struct done d;
    struct store_seq seqs[20];
};

/* A splits the shard B is writing to. B's appends stored before the fence
 * are in the parent, below its end, in both copies; those stored after it
 * are refused there and sent again to the child their key goes to: every
 * append succeeds, and B adopts the split. */
Test(jetstream, reshard_while_the_other_gateway_appends)
{
    char da[64], db[64];
    struct store *a = open_store("A", da), *b = open_store("B", db);
    struct store_err err = {0};
    struct store_stream *sa, *sb;
    sa = create_seen(a, b, "split");
    cr_assert_eq(store_stream_lookup(b, "split", &sb, NULL), 0);

    static struct rbatch bt[400];
    static char bufs[400 * 20][12];
    struct store_record_in in[20];
    struct done split = {0};
    int nb = 0, b_closed = 0, split_called = 0;
    int64_t end = now_ms() + 60000;
    while (now_ms() < end) {
        if (nb < 400 && !b_closed) {
            for (int i = 0; i < 20; i++) {
                char *d = bufs[nb * 20 + i];
                snprintf(d, sizeof bufs[0], "b%d.%d", nb, i);
                /* two keys: each child gets some */
                in[i] = (struct store_record_in){
                    .partition_key = {(const uint8_t *)(i % 2 ? "k" : "j"), 1},
                    .data = {(const uint8_t *)d, strlen(d)}};
            }
            int rc = store_shard_append(store_stream_shard(sb, 0), in, 20, bt[nb].seqs, on_done,
                                        &bt[nb].d, &err);
            if (rc == 0)
                nb++;
            else {
                cr_assert_eq(rc, STORE_ESTATE, "B's append: %s", err.msg);
                b_closed = 1; /* B learnt of the split */
            }
        }
        if (nb == 10 && !split_called) {
            struct store_hashkey k;
            cr_assert_eq(store_hashkey_parse("170141183460469231731687303715884105728", 39, &k,
                                             NULL),
                         0);
            cr_assert_eq(store_stream_split(sa, store_stream_shard(sa, 0), &k, on_done, &split,
                                            &err),
                         0, "%s", err.msg);
            split_called = 1;
        }
        int fired = 0;
        for (int i = 0; i < nb; i++)
            fired += bt[i].d.fired;
        if ((b_closed || nb == 400) && split.fired && fired == nb)
            break;
        PUMP_UNTIL(a, b, 5, 0);
    }
    cr_assert_eq(split.fired, 1, "the split answered");
    cr_assert_eq(split.code, 0);
    cr_assert(b_closed, "B closed its shard 0 (adopted the split)");
    cr_assert_eq(store_stream_shard_count(sb), 3, "B has the children");

    /* The parent's end is the same through both. */
    struct store_shard_info ia, ib;
    PUMP_UNTIL(a, b, 10000, (store_shard_info(store_stream_shard(sb, 0), &ib), ib.has_ending_seq));
    store_shard_info(store_stream_shard(sa, 0), &ia);
    cr_assert(ia.has_ending_seq && ib.has_ending_seq);
    cr_assert_eq(store_seq_cmp(ia.ending_seq, ib.ending_seq), 0, "one end");

    /* Every append succeeded, and what B was told is what both copies
     * hold, in B's order: in the parent below its end, or, stored after the
     * fence and sent again, in the child its key goes to. */
    static char want[3][400 * 20 * 12], got_a[400 * 20 * 12], got_b[400 * 20 * 12];
    size_t wl[3] = {0}, wn[3] = {0};
    for (int k = 0; k < nb; k++) {
        cr_assert_eq(bt[k].d.fired, 1, "batch %d answered once", k);
        cr_assert_eq(bt[k].d.code, 0, "batch %d: %d", k, bt[k].d.code);
        for (int i = 0; i < 20; i++) {
            uint32_t x = bt[k].seqs[i].shard;
            cr_assert(x <= 2, "b%d.%d: shard %u", k, i, x);
            if (x == 0)
                cr_assert_lt(store_seq_cmp(bt[k].seqs[i], ia.ending_seq), 0, "below the end");
            else
                cr_assert_eq(x, i % 2 ? 2u : 1u, "b%d.%d in the child its key goes to", k, i);
            wl[x] += (size_t)sprintf(want[x] + wl[x], "b%d.%d|", k, i);
            wn[x]++;
        }
    }
    cr_assert_gt(wn[0], 0);
    for (uint32_t x = 0; x <= 2; x++) {
        size_t na = read_shard(a, b, a, "split", x, x ? wn[x] : TO_END, got_a, sizeof got_a);
        size_t nbr = read_shard(a, b, b, "split", x, x ? wn[x] : TO_END, got_b, sizeof got_b);
        cr_assert_eq(na, wn[x], "shard %u through A: %zu records, %zu acknowledged", x, na, wn[x]);
        cr_assert_eq(nbr, wn[x], "shard %u through B", x);
        cr_assert_str_eq(got_a, want[x], "shard %u through A: B's records, in order", x);
        cr_assert_str_eq(got_b, want[x], "shard %u through B", x);
    }
    fprintf(stderr, "reshard race: %d batches, %zu records in the parent, %zu sent again to a child\n",
            nb, wn[0], wn[1] + wn[2]);
    close_store(a, da);
    close_store(b, db);
}

/* Publishes "body" on <prefix>.data.<uid>.<kind> of the one data stream
 * there is, straight into JetStream (a gateway that died, or a hostile
 * client of the NATS servers); asserts JetStream stored it. */
static void publish_raw(const char *kind, const char *body)
{
    struct jsbus *bus;
    struct jsbus_opts o = {.urls = srv_url};
    struct store_err err = {0};
    cr_assert_eq(jsbus_open(&o, &bus, &err), 0, "%s", err.msg);
    char req[128], subj[160];
    snprintf(req, sizeof req, "{\"subject\":\"%s.data.>\"}", prefix);
    json_t *r = NULL;
    cr_assert_eq(jsbus_request_sync(bus, "$JS.API.STREAM.NAMES", req, strlen(req), 0, &r, &err), 0,
                 "%s", err.msg);
    json_t *names = json_object_get(r, "streams");
    cr_assert_eq(json_array_size(names), 1, "one data stream");
    const char *dname = json_string_value(json_array_get(names, 0));
    snprintf(subj, sizeof subj, "%s.data.%s.%s", prefix, strrchr(dname, '-') + 1, kind);
    json_decref(r);
    r = NULL;
    cr_assert_eq(jsbus_request_sync(bus, subj, body, strlen(body), 0, &r, &err), 0, "%s", err.msg);
    cr_assert_gt(json_integer_value(json_object_get(r, "seq")), 0, "%s is stored", subj);
    json_decref(r);
    jsbus_close(bus);
}

/* A gateway that died between its fence and its catalog bundle: the fence
 * alone is in the data stream. A record stored after it is refused by the
 * copies until a gateway voids the fence (5 s); then it is sent again to the
 * same shard, and its append succeeds. The refused message is in no copy. */
Test(jetstream, a_fence_nobody_finishes_is_voided)
{
    char da[64], db[64];
    struct store *a = open_store("A", da), *b = open_store("B", db);
    struct store_stream *sa = create_seen(a, b, "fenced");
    /* Its first record makes sure the JetStream stream exists. */
    struct appended ap;
    append_wait(a, b, sa, "before", &ap, 10000);
    cr_assert_eq(ap.d.code, 0);

    publish_raw("fence", "{\"shards\":[0]}");

    /* Stored after the fence: refused by both copies, sent again once the
     * fence is voided (within its grace of 5 s, and a little). */
    struct appended refused;
    int64_t t0 = now_ms();
    append_wait(a, b, sa, "refused", &refused, 30000);
    cr_assert_eq(refused.d.code, 0, "sent again after the void");
    cr_assert_eq(refused.seqs[0].shard, 0u);
    cr_assert_geq(now_ms() - t0, 4000, "not before the fence was voided");
    /* before, the fence, the refused message, the cancel, then this */
    cr_assert_gt(refused.seqs[0].counter, ap.seqs[0].counter + 3, "stored again, after the cancel");
    struct appended after;
    append_wait(a, b, sa, "after", &after, 10000);
    cr_assert_eq(after.d.code, 0);
    struct store_cursor *cur = store_cursor_new();
    size_t n = 0;
    const struct store_record *recs = read_copy(a, b, "fenced", after.seqs[0], 100, cur, &n);
    cr_assert_eq(n, 3, "before, the record sent again and after; never the refused message");
    cr_assert_eq(memcmp(recs[0].data.p, "before", 6), 0);
    cr_assert_eq(memcmp(recs[1].data.p, "refused", 7), 0);
    cr_assert_eq(store_seq_cmp(recs[1].seq, refused.seqs[0]), 0, "at the number it was given");
    cr_assert_eq(memcmp(recs[2].data.p, "after", 5), 0);
    store_cursor_free(cur);
    close_store(a, da);
    close_store(b, db);
}

/* Control messages nobody sane sent (bad JSON, wrong types, shard indices
 * out of range, cancels of fences that never were, a record on a subject
 * that names no shard) change nothing: appends go through and both copies
 * hold exactly the records appended. */
Test(jetstream, hostile_control_messages_change_nothing)
{
    char da[64], db[64];
    struct store *a = open_store("A", da), *b = open_store("B", db);
    struct store_stream *sa = create_seen(a, b, "hostile");
    struct appended ap;
    append_wait(a, b, sa, "before", &ap, 10000);
    cr_assert_eq(ap.d.code, 0);

    publish_raw("fence", "not json");
    publish_raw("fence", "{\"shards\":\"0\"}");
    publish_raw("fence", "{\"shards\":[-1, 99999999, \"0\", 1.5]}");
    publish_raw("cancel", "{}");
    publish_raw("cancel", "{\"fence\":123456789}");
    publish_raw("cancel", "[]");
    publish_raw("abc", "no shard");

    struct appended after;
    append_wait(a, b, sa, "after", &after, 30000);
    cr_assert_eq(after.d.code, 0, "the append after them: %d", after.d.code);
    struct store_cursor *cur = store_cursor_new();
    size_t n = 0;
    const struct store_record *recs = read_copy(a, b, "hostile", after.seqs[0], 100, cur, &n);
    cr_assert_eq(n, 2, "before and after, nothing else");
    cr_assert_eq(memcmp(recs[0].data.p, "before", 6), 0);
    cr_assert_eq(memcmp(recs[1].data.p, "after", 5), 0);
    store_cursor_free(cur);
    struct store_shard_info info;
    store_shard_info(store_stream_shard(sa, 0), &info);
    cr_assert(info.open, "shard 0 is still open");
    close_store(a, da);
    close_store(b, db);
}
