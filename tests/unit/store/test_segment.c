/* test_segment.c - segment.c: recovery cuts a torn tail at every byte offset
 * of the last record (earlier records checked byte for byte), a bit flip in
 * the middle is STORE_ECORRUPT, and retention trims whole segments. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "helpers.h"
#include "record.h"

/* Path of the only (or last, by name) segment file in "dir"/segments. */
static void last_segment(const char *dir, char *out, size_t outlen)
{
    char sd[512];
    snprintf(sd, sizeof sd, "%s/segments", dir);
    DIR *d = opendir(sd);
    cr_assert_not_null(d);
    struct dirent *de;
    char best[256] = "";
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".seg") && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", de->d_name);
    closedir(d);
    cr_assert(best[0], "no segment in %s", sd);
    snprintf(out, outlen, "%s/%s", sd, best);
}

static int count_segments(const char *dir)
{
    char sd[512];
    snprintf(sd, sizeof sd, "%s/segments", dir);
    DIR *d = opendir(sd);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) n += strstr(de->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    struct stat st;
    fstat(fd, &st);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    cr_assert_eq(read(fd, b, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, b, len), (ssize_t)len);
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return st.st_size;
}

static struct store_opts never_opts(struct logcap *lc)
{
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    o.log = cap_log;
    o.log_arg = lc;
    return o;
}

Test(segment, torn_tail_every_offset, .timeout = 120)
{
    char *dir = tmpdir_new();
    struct logcap lc = {0};
    struct store_opts o = never_opts(&lc);
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "t", 1), 0);
    struct done_ctr d = {0};
    const int N = 20;
    struct store_seq seqs[20];
    for (int i = 0; i < N - 1; i++)
        seqs[i] = append_one(sh, (uint64_t)i, &d);
    /* the last record carries an explicit hash key, to cover that layout too */
    uint8_t data[128];
    char pk[32];
    struct store_hashkey hk;
    memset(hk.be, 0x5A, 16);
    struct store_record_in r = {{(const uint8_t *)pk, rec_pk(N - 1, pk)}, &hk,
                                {data, rec_data(N - 1, data, sizeof data)}};
    cr_assert_eq(store_shard_append(sh, &r, 1, &seqs[N - 1], NULL, NULL, NULL), 0);
    store_close(s);

    char path[1024];
    last_segment(dir, path, sizeof path);
    size_t len;
    uint8_t *orig = slurp(path, &len);
    size_t last_len = record_frame_size(r.partition_key.len, r.data.len, 1);
    size_t start = len - last_len;

    for (size_t cut = start; cut < len; cut++) {
        spit(path, orig, cut);
        lc.warn = 0;
        s = open_store(dir, &o);
        sh = store_stream_shard(get_stream(s, "t"), 0);
        cr_assert_eq(lc.warn, cut > start ? 1 : 0, "cut %zu: torn tail must be logged", cut);
        cr_assert_eq(read_all_check(sh, 0, 7), (size_t)N - 1, "cut %zu", cut);
        int has;
        struct store_seq last;
        store_shard_latest(sh, &has, &last);
        cr_assert_eq(store_seq_cmp(last, seqs[N - 2]), 0);
        cr_assert_eq(file_size(path), (off_t)start, "cut %zu: file cut back", cut);
        store_close(s);
    }
    /* the complete file recovers all N, then new appends go on top */
    spit(path, orig, len);
    s = open_store(dir, &o);
    sh = store_stream_shard(get_stream(s, "t"), 0);
    cr_assert_eq(read_all_check(sh, 0, 100), (size_t)N);
    struct store_seq more = append_one(sh, N, &d);
    cr_assert_gt(store_seq_cmp(more, seqs[N - 1]), 0);
    store_commit(s);
    cr_assert_eq(read_all_check(sh, 0, 100), (size_t)N + 1);
    store_close(s);
    free(orig);
    rm_rf(dir);
    free(dir);
}

Test(segment, zero_filled_tail_is_torn)
{
    char *dir = tmpdir_new();
    struct logcap lc = {0};
    struct store_opts o = never_opts(&lc);
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "z", 1), 0);
    struct done_ctr d = {0};
    for (int i = 0; i < 10; i++) append_one(sh, (uint64_t)i, &d);
    store_close(s);
    char path[1024];
    last_segment(dir, path, sizeof path);
    off_t good = file_size(path);
    cr_assert_eq(truncate(path, good + 4096), 0); /* the fs grew the file; data never came */
    s = open_store(dir, &o);
    sh = store_stream_shard(get_stream(s, "z"), 0);
    cr_assert_eq(lc.warn, 1);
    cr_assert_eq(read_all_check(sh, 0, 100), 10);
    cr_assert_eq(file_size(path), good);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

static void flip_and_reopen(size_t record, size_t byte_in_record, int expect_corrupt)
{
    char *dir = tmpdir_new();
    struct logcap lc = {0};
    struct store_opts o = never_opts(&lc);
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "f", 2);
    struct done_ctr d = {0};
    const size_t N = 50;
    size_t offs[50], off = 16;
    for (size_t i = 0; i < N; i++) {
        append_one(store_stream_shard(st, 0), i, &d);
        uint8_t data[128];
        char pk[32];
        offs[i] = off;
        off += record_frame_size(rec_pk(i, pk), rec_data(i, data, 128), 0);
    }
    append_one(store_stream_shard(st, 1), 0, &d);
    store_close(s);

    char sd[512], path[1024];
    snprintf(sd, sizeof sd, "%s/segments", dir);
    DIR *dd = opendir(sd);
    struct dirent *de;
    while ((de = readdir(dd)))
        if (strstr(de->d_name, "-0000000000-") == de->d_name + 11) /* shard 0 */
            snprintf(path, sizeof path, "%s/%s", sd, de->d_name);
    closedir(dd);
    size_t len;
    uint8_t *b = slurp(path, &len);
    cr_assert_eq(len, off);
    b[offs[record] + byte_in_record] ^= 0x10;
    spit(path, b, len);
    free(b);

    s = open_store(dir, &o);
    st = get_stream(s, "f");
    struct store_shard *sh0 = store_stream_shard(st, 0), *sh1 = store_stream_shard(st, 1);
    struct store_err err;
    if (expect_corrupt) {
        cr_assert_geq(lc.error, 1, "corruption must be logged at error");
        cr_assert_eq(store_shard_check(sh0, &err), STORE_ECORRUPT);
        cr_assert(strstr(err.msg, "offset") != NULL, "message names the offset: %s", err.msg);
        uint8_t x = 1;
        struct store_record_in r = {{&x, 1}, NULL, {&x, 1}};
        cr_assert_eq(store_shard_append(sh0, &r, 1, NULL, NULL, NULL, &err), STORE_ECORRUPT);
        struct store_pos pos;
        cr_assert_eq(store_shard_position(sh0, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, &err),
                     STORE_ECORRUPT);
        struct store_cursor *cur = store_cursor_new();
        const struct store_record *recs;
        size_t n;
        struct store_pos next;
        pos.seq.shard = 0;
        cr_assert_eq(store_shard_read(sh0, cur, &pos, 10, SIZE_MAX, &recs, &n, &next, NULL, &err),
                     STORE_ECORRUPT);
        store_cursor_free(cur);
        /* the file was not "repaired" */
        cr_assert_eq(file_size(path), (off_t)len);
    } else {
        cr_assert_eq(store_shard_check(sh0, &err), 0);
        cr_assert_eq(read_all_check(sh0, 0, 100), N - 1);
    }
    /* the other shard is unaffected */
    cr_assert_eq(store_shard_check(sh1, &err), 0);
    cr_assert_eq(read_all_check(sh1, 0, 100), 1);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

Test(segment, bit_flip_in_middle_data_is_corrupt) { flip_and_reopen(10, 60, 1); }
Test(segment, bit_flip_in_middle_length_is_corrupt) { flip_and_reopen(25, 1, 1); }
Test(segment, bit_flip_in_middle_seq_is_corrupt) { flip_and_reopen(25, 17, 1); }
Test(segment, bit_flip_in_first_record_is_corrupt) { flip_and_reopen(0, 50, 1); }
/* A bad last frame is indistinguishable from a torn write: cut, not offline. */
Test(segment, bit_flip_in_last_record_is_torn_tail) { flip_and_reopen(49, 50, 0); }

Test(segment, retention_trims_whole_segments)
{
    char *dir = tmpdir_new();
    struct fake_clock clk = {1000LL * 3600 * 1000};
    const int64_t H = 3600 * 1000;
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    o.segment_bytes = 1; /* every batch starts a new segment */
    o.clock = fake_now;
    o.clock_arg = &clk;
    o.retention_check_ms = 60000;
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "r", 1), 0);
    struct done_ctr d = {0};
    struct store_seq first_of_hour[30];
    int64_t t0 = clk.now;
    for (int h = 0; h < 30; h++) {
        clk.now = t0 + h * H;
        first_of_hour[h] = append_batch(sh, (uint64_t)(h * 5), 5, &d);
        store_commit(s);
    }
    cr_assert_eq(count_segments(dir), 30);
    /* at hour 30, retention 24 h: hours 0..5 have only records older than 24 h */
    int64_t now = t0 + 30 * H;
    cr_assert_eq(store_tick(s, now), 6);
    cr_assert_eq(count_segments(dir), 24);
    cr_assert_eq(store_tick(s, now + 1000), 0, "rate-limited by retention_check_ms");
    cr_assert_eq(read_all_check(sh, 30, 1000), 24 * 5);

    /* a sequence number below the trim point reads from the oldest record */
    struct store_pos pos, next;
    struct store_cursor *cur = store_cursor_new();
    const struct store_record *recs;
    size_t n;
    cr_assert_eq(store_shard_position(sh, STORE_POS_AT_SEQUENCE, &first_of_hour[0], 0, &pos, NULL), 0);
    cr_assert_eq(store_shard_read(sh, cur, &pos, 1, SIZE_MAX, &recs, &n, &next, NULL, NULL), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(store_seq_cmp(recs[0].seq, first_of_hour[6]), 0);
    cr_assert_eq(store_shard_position(sh, STORE_POS_AT_TIMESTAMP, NULL, t0 + H, &pos, NULL), 0);
    cr_assert_eq(store_shard_read(sh, cur, &pos, 1, SIZE_MAX, &recs, &n, &next, NULL, NULL), 0);
    cr_assert_eq(store_seq_cmp(recs[0].seq, first_of_hour[6]), 0);

    /* raising retention keeps everything; lowering is applied at the next tick */
    struct store_stream *st = get_stream(s, "r");
    cr_assert_eq(store_stream_retention_increase(st, 48, NULL), 0);
    cr_assert_eq(store_tick(s, now + 2 * 60000), 0);
    cr_assert_eq(store_stream_retention_decrease(st, 24, NULL), 0);
    cr_assert_eq(store_tick(s, now + H), 1);

    /* reopen: trimmed data stays gone, the rest is intact */
    store_cursor_free(cur);
    store_close(s);
    s = open_store(dir, &o);
    sh = store_stream_shard(get_stream(s, "r"), 0);
    cr_assert_eq(read_all_check(sh, 35, 1000), 23 * 5);

    /* everything expires, the active segment included; the shard keeps working */
    clk.now = t0 + 100 * H;
    cr_assert_eq(store_tick(s, clk.now), 23);
    cr_assert_eq(count_segments(dir), 0);
    cr_assert_eq(read_all_check(sh, 0, 1000), 0);
    cr_assert_eq(store_shard_position(sh, STORE_POS_LATEST, NULL, 0, &pos, NULL), 0);
    append_one(sh, 500, &d);
    store_commit(s);
    cur = store_cursor_new();
    cr_assert_eq(store_shard_read(sh, cur, &pos, 10, SIZE_MAX, &recs, &n, &next, NULL, NULL), 0);
    cr_assert_eq(n, 1);
    check_rec(&recs[0], 500);
    store_cursor_free(cur);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* The end of a segment that later segments follow was written completely
 * once: a bad last frame there is damage, not a crash mid-write. The shard
 * goes offline with the file and offset named and the file left intact
 * (it was once cut as a torn tail, silently dropping a record in the middle
 * of the shard). The same damage in the shard's last segment is still cut. */
static void damage_segment_end(int which_from_last)
{
    char *dir = tmpdir_new();
    struct logcap lc = {0};
    struct store_opts o = never_opts(&lc);
    o.segment_bytes = 2048;
    struct store *s = open_store(dir, &o);
    struct store_shard *sh = store_stream_shard(make_stream(s, "g", 1), 0);
    struct done_ctr d = {0};
    const size_t N = 60;
    for (size_t i = 0; i < N; i++) {
        append_one(sh, i, &d);
        store_commit(s);
    }
    cr_assert_eq(d.ok, (int)N);
    store_close(s);

    char sd[512], names[64][256];
    int n = 0;
    snprintf(sd, sizeof sd, "%s/segments", dir);
    DIR *dd = opendir(sd);
    struct dirent *de;
    while ((de = readdir(dd)))
        if (strstr(de->d_name, ".seg") && n < 64)
            snprintf(names[n++], sizeof names[0], "%s", de->d_name);
    closedir(dd);
    cr_assert_geq(n, 3, "expected several segments, got %d", n);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", sd, names[n - 1 - which_from_last]);
    size_t len;
    uint8_t *b = slurp(path, &len);
    b[len - 10] ^= 0x10; /* inside the last frame's data */
    spit(path, b, len);
    free(b);

    lc.error = lc.warn = 0;
    s = open_store(dir, &o);
    sh = store_stream_shard(get_stream(s, "g"), 0);
    struct store_err err;
    if (which_from_last > 0) {
        cr_assert_eq(store_shard_check(sh, &err), STORE_ECORRUPT, "a damaged sealed segment was cut");
        cr_assert(strstr(err.msg, "offset") && strstr(err.msg, names[n - 1 - which_from_last]),
                  "the message names file and offset: %s", err.msg);
        cr_assert_geq(lc.error, 1);
        cr_assert_eq(file_size(path), (off_t)len, "the file was changed");
    } else {
        cr_assert_eq(store_shard_check(sh, &err), 0);
        cr_assert_eq(read_all_check(sh, 0, 100), N - 1);
        cr_assert_geq(lc.warn, 1);
    }
    store_close(s);
    rm_rf(dir);
    free(dir);
}
Test(segment, bad_last_frame_of_sealed_segment_is_corrupt) { damage_segment_end(1); }
Test(segment, bad_last_frame_of_earlier_segment_is_corrupt) { damage_segment_end(2); }
Test(segment, bad_last_frame_of_last_segment_is_torn_tail) { damage_segment_end(0); }
