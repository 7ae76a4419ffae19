/* bench_store.c - store micro-benchmark (sluice-bench-store; not a ctest test).
 *
 * Appends 100-byte records in batches of 500 to the 4 shards of one stream,
 * for each durability mode, and reads them back from the in-memory tail.
 * Prints records/s, MB/s of record data (median of 5 runs) and the fsyncs/s
 * each mode needed. The loop imitates the gateway's: appends, one
 * store_commit() per turn, store_dispatch() when store_notify_fd() is
 * readable. In mode always, 8 appenders each keep one batch outstanding and
 * resubmit from their completion callback (group commit shares the fsyncs).
 *
 *   sluice-bench-store [--dir /tmp] [--records N] [--runs 5]
 *
 * Targets (issue 3, 2 cores): never >= 3,000,000 rec/s appended; always with
 * group commit >= 1,000,000 rec/s with 8 appenders; tail reads >= 5,000,000.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define BATCH 500
#define SHARDS 4
#define APPENDERS 8
#define REC_BYTES 100

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

struct appender {
    struct bench *b;
    int id;
    int busy;
};

struct bench {
    struct store *s;
    struct store_shard *shards[SHARDS];
    struct store_record_in recs[BATCH];
    uint64_t target, submitted, acked, failed;
    struct appender app[APPENDERS];
    struct store_seq first_seq[SHARDS];
    int have_first[SHARDS];
};

static void on_acked(void *arg, const struct store_err *err)
{
    struct appender *a = arg;
    a->busy = 0;
    if (err) {
        a->b->failed++;
        fprintf(stderr, "append failed: %s\n", err->msg);
    } else {
        a->b->acked += BATCH;
    }
}

static void submit(struct bench *b, struct appender *a)
{
    uint32_t k = (uint32_t)(b->submitted / BATCH) % SHARDS;
    struct store_seq seqs[BATCH];
    struct store_err err;
    if (store_shard_append(b->shards[k], b->recs, BATCH, b->have_first[k] ? NULL : seqs, on_acked,
                           a, &err) != 0) {
        fprintf(stderr, "append: %s\n", err.msg);
        exit(1);
    }
    if (!b->have_first[k]) {
        b->first_seq[k] = seqs[0];
        b->have_first[k] = 1;
    }
    a->busy = 1;
    b->submitted += BATCH;
}

struct result {
    double rec_s, mb_s, fsync_s, read_rec_s;
};

static struct result run_once(const char *base, enum store_durability mode, uint64_t records,
                              int do_reads)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sluice-bench-store-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    struct store_opts o;
    store_opts_init(&o);
    o.durability = mode;
    o.interval_ms = 100;
    o.segment_bytes = 256u << 20;
    o.tail_budget_bytes = do_reads ? (1ull << 30) : (64u << 20);
    struct bench *b = calloc(1, sizeof *b);
    struct store_err err;
    if (store_open(dir, &o, &b->s, &err) != 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        exit(1);
    }
    struct store_stream *st;
    if (store_stream_create(b->s, "bench", SHARDS, &st, &err) != 0) {
        fprintf(stderr, "create: %s\n", err.msg);
        exit(1);
    }
    for (uint32_t k = 0; k < SHARDS; k++)
        b->shards[k] = store_stream_shard(st, k);
    static uint8_t data[BATCH][REC_BYTES];
    static char pks[BATCH][16];
    for (int i = 0; i < BATCH; i++) {
        for (int j = 0; j < REC_BYTES; j++) data[i][j] = (uint8_t)(i * 7 + j);
        int n = snprintf(pks[i], sizeof pks[i], "pk-%d", i);
        b->recs[i].partition_key.p = (const uint8_t *)pks[i];
        b->recs[i].partition_key.len = (size_t)n;
        b->recs[i].data.p = data[i];
        b->recs[i].data.len = REC_BYTES;
    }
    for (int i = 0; i < APPENDERS; i++) {
        b->app[i].b = b;
        b->app[i].id = i;
    }
    b->target = records;
    struct store_stats s0, s1;
    store_stats(b->s, &s0);
    int fd = store_notify_fd(b->s);
    double t0 = now_s();
    while (b->acked + b->failed * BATCH < b->target) {
        /* one loop turn: every idle appender submits, then one commit */
        for (int i = 0; i < APPENDERS; i++) {
            struct appender *a = &b->app[i];
            if (mode != STORE_DURABILITY_ALWAYS) a->busy = 0; /* acks come from commit */
            if (!a->busy && b->submitted < b->target)
                submit(b, a);
        }
        store_commit(b->s);
        struct pollfd p = {fd, POLLIN, 0};
        int timeout = mode == STORE_DURABILITY_ALWAYS && b->submitted >= b->acked + BATCH ? 10 : 0;
        for (int i = 0; i < APPENDERS && mode == STORE_DURABILITY_ALWAYS; i++)
            if (!b->app[i].busy && b->submitted < b->target) timeout = 0;
        if (poll(&p, 1, timeout) > 0)
            store_dispatch(b->s);
    }
    double t1 = now_s();
    store_stats(b->s, &s1);
    struct result r;
    double el = t1 - t0;
    r.rec_s = (double)b->acked / el;
    r.mb_s = (double)b->acked * REC_BYTES / el / 1e6;
    r.fsync_s = (double)(s1.fsyncs - s0.fsyncs) / el;
    r.read_rec_s = 0;
    if (do_reads) {
        struct store_cursor *cur = store_cursor_new();
        uint64_t got = 0;
        double r0 = now_s();
        for (uint32_t k = 0; k < SHARDS; k++) {
            struct store_pos pos = {b->first_seq[k], 0}, next;
            for (;;) {
                const struct store_record *recs;
                size_t n;
                if (store_shard_read(b->shards[k], cur, &pos, 10000, SIZE_MAX, &recs, &n, &next, NULL,
                                     &err) != 0) {
                    fprintf(stderr, "read: %s\n", err.msg);
                    exit(1);
                }
                if (!n) break;
                /* touch the data like an encoder would */
                volatile uint8_t sink = 0;
                for (size_t i = 0; i < n; i++) sink ^= recs[i].data.p[recs[i].data.len - 1];
                (void)sink;
                got += n;
                pos = next;
            }
        }
        double r1 = now_s();
        if (got != b->acked) {
            fprintf(stderr, "read back %" PRIu64 " of %" PRIu64 " records\n", got, b->acked);
            exit(1);
        }
        r.read_rec_s = (double)got / (r1 - r0);
        store_cursor_free(cur);
    }
    store_close(b->s);
    free(b);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return r;
}

int main(int argc, char **argv)
{
    const char *base = "/tmp";
    uint64_t records = 2000000;
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc) base = argv[++i];
        else if (!strcmp(argv[i], "--records") && i + 1 < argc) records = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--records N] [--runs R]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 50) runs = 5;
    records = (records + BATCH * SHARDS - 1) / (BATCH * SHARDS) * (BATCH * SHARDS);
    struct { const char *name; enum store_durability mode; } modes[] = {
        {"never", STORE_DURABILITY_NEVER},
        {"interval:100", STORE_DURABILITY_INTERVAL},
        {"always", STORE_DURABILITY_ALWAYS},
    };
    printf("sluice-bench-store: %" PRIu64 " records of %d bytes, batches of %d, %d shards, "
           "%d appenders, median of %d runs, dir %s\n",
           records, REC_BYTES, BATCH, SHARDS, APPENDERS, runs, base);
    printf("%-14s %14s %10s %10s\n", "mode", "records/s", "MB/s", "fsyncs/s");
    double tail_reads[50];
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        double rs[50], mb[50], fs[50];
        for (int r = 0; r < runs; r++) {
            struct result res = run_once(base, modes[m].mode, records, m == 0);
            rs[r] = res.rec_s;
            mb[r] = res.mb_s;
            fs[r] = res.fsync_s;
            if (m == 0) tail_reads[r] = res.read_rec_s;
        }
        printf("%-14s %14.0f %10.1f %10.0f\n", modes[m].name, median(rs, runs), median(mb, runs),
               median(fs, runs));
        fflush(stdout);
    }
    printf("%-14s %14.0f %10.1f %10s\n", "tail reads", median(tail_reads, runs),
           median(tail_reads, runs) * REC_BYTES / 1e6, "-");
    return 0;
}
