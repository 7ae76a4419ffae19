/* fuzz_segment.c - libFuzzer target for crash recovery of a segment file
 * (store/segment.c's scan and torn-tail cut, driven by store_open).
 *
 * Each input becomes the one segment file of a one-shard stream in a fresh
 * store directory (a template MANIFEST made once at start-up), then:
 *   open -> read everything from TRIM_HORIZON -> append one record -> close
 *   -> open again -> read everything again.
 * The first input byte picks a mode; the rest is file content:
 *   mode & 1  the file is the template's real segment (header + 3 records)
 *             followed by the input: a torn or garbage tail after good data;
 *             else the input is the whole file (header included);
 *   mode & 2  the input's frames get correct CRCs (fuzz_frames.h);
 *   mode & 4  ... and plausible sequence numbers first (this store's shard 0,
 *             the template's generation, counters increasing), so the scan
 *             accepts them and the reads, index and cut are exercised.
 * Invariants asserted:
 *   - store_open succeeds: a bad segment takes the shard offline, it never
 *     fails the store; an offline shard answers STORE_ECORRUPT, never crashes;
 *   - records read back have strictly increasing sequence numbers of shard 0;
 *     in mode & 1 the first three are the template's, byte for byte;
 *   - after recovery the shard takes an append, and after a restart reads
 *     back exactly what it read before plus that record (the cut left a
 *     consistent file) and is not offline.
 *   Frames forged with a generation at or above the store's are outside what
 *   a crash can produce (numbers come from the store); for those only the
 *   first open is checked. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_frames.h"
#include "store.h"

static char g_base[256], g_run[300], g_segname[256];
static uint8_t *g_manifest, *g_seg;
static size_t g_manifest_len, g_seg_len;
static uint32_t g_gen; /* generation of the template's records */

static int noop_fsync(void *ctx, int fd)
{
    (void)ctx;
    (void)fd;
    return 0; /* the directory is thrown away: durability is not under test */
}
static ssize_t plain_write(void *ctx, int fd, const void *buf, size_t len)
{
    (void)ctx;
    return write(fd, buf, len);
}
static const struct store_io_ops fast_io = {plain_write, noop_fsync, NULL};
static int64_t fixed_clock(void *arg)
{
    (void)arg;
    return 1700000000000LL;
}

static struct store_opts opts(void)
{
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    o.io = &fast_io;
    o.clock = fixed_clock;
    return o;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    CHECK(b && read(fd, b, (size_t)st.st_size) == st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(len == 0 || write(fd, b, len) == (ssize_t)len);
    close(fd);
}

struct done { int ok, failed; };
static void on_done(void *arg, const struct store_err *err)
{
    struct done *d = arg;
    if (err)
        d->failed++;
    else
        d->ok++;
}

static void pump(struct store *s, struct done *d)
{
    store_commit(s);
    for (int i = 0; i < 5000 && d->ok + d->failed == 0; i++) {
        struct pollfd p = {store_notify_fd(s), POLLIN, 0};
        poll(&p, 1, 1);
        store_dispatch(s);
        store_commit(s);
    }
    CHECK(d->ok + d->failed > 0);
}

/* Template record i: key "k<i>", data of 5 + 7 * i bytes. */
static struct store_record_in tpl_rec(int i, char *pk, uint8_t *data)
{
    int pl = snprintf(pk, 16, "k%d", i);
    size_t dl = 5 + 7 * (size_t)i;
    for (size_t k = 0; k < dl; k++)
        data[k] = (uint8_t)(i * 37 + k);
    struct store_record_in r = {{(const uint8_t *)pk, (size_t)pl}, NULL, {data, dl}};
    return r;
}

static void make_template(void)
{
    const char *root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_base, sizeof g_base, "%s/sluice-fuzz-segment-XXXXXX", root);
    CHECK(mkdtemp(g_base) != NULL);
    snprintf(g_run, sizeof g_run, "%s/run", g_base);
    char tpl[300];
    snprintf(tpl, sizeof tpl, "%s/tpl", g_base);
    struct store_opts o = opts();
    struct store *s;
    struct store_err err;
    CHECK(store_open(tpl, &o, &s, &err) == 0);
    struct store_stream *st;
    CHECK(store_stream_create(s, "f", 1, &st, &err) == 0);
    struct store_shard *sh = store_stream_shard(st, 0);
    for (int i = 0; i < 3; i++) {
        char pk[16];
        uint8_t data[64];
        struct store_record_in r = tpl_rec(i, pk, data);
        struct store_seq seq;
        struct done d = {0};
        CHECK(store_shard_append(sh, &r, 1, &seq, on_done, &d, &err) == 0);
        pump(s, &d);
        CHECK(d.ok == 1);
        g_gen = seq.gen;
    }
    struct done d = {0};
    store_catalog_sync(s, on_done, &d);
    pump(s, &d);
    store_close(s);

    char p[800];
    snprintf(p, sizeof p, "%s/MANIFEST", tpl);
    g_manifest = slurp(p, &g_manifest_len);
    snprintf(p, sizeof p, "%s/segments", tpl);
    DIR *dir = opendir(p);
    CHECK(dir != NULL);
    struct dirent *de;
    while ((de = readdir(dir)))
        if (strstr(de->d_name, ".seg"))
            snprintf(g_segname, sizeof g_segname, "%s", de->d_name);
    closedir(dir);
    CHECK(g_segname[0]);
    snprintf(p, sizeof p, "%s/segments/%s", tpl, g_segname);
    g_seg = slurp(p, &g_seg_len);
    nftw(tpl, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
    if (g_base[0])
        nftw(g_base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Gives the frames of "p" this store's shard, the template's generation and
 * increasing counters after the template's (mode & 4). */
static void plausible_seqs(uint8_t *p, size_t n)
{
    uint64_t counter = 100;
    size_t off = 0;
    while (n - off >= RECORD_HDR_SIZE) {
        uint8_t *f = p + off;
        uint32_t len = fz_get32(f);
        if (len < RECORD_HDR_SIZE || len > n - off)
            break;
        counter += 1 + (f[16] & 3); /* gaps are allowed, going back is not */
        fz_put32(f + 8, g_gen);
        fz_put32(f + 12, 0);
        fz_put32(f + 16, (uint32_t)counter);
        fz_put32(f + 20, (uint32_t)(counter >> 32));
        off += len;
    }
}

struct copy {
    struct store_seq seq;
    size_t pl, dl;
    uint8_t *bytes; /* key then data */
};

/* Reads the whole shard; returns the count (copies in *out), or -1 when the
 * shard is offline (STORE_ECORRUPT, the only error allowed). */
static long read_all(struct store_shard *sh, struct copy **out)
{
    struct store_err err;
    struct store_pos pos, next;
    *out = NULL;
    int rc = store_shard_position(sh, STORE_POS_TRIM_HORIZON, NULL, 0, &pos, &err);
    if (rc != 0) {
        CHECK(rc == STORE_ECORRUPT);
        return -1;
    }
    struct store_cursor *cur = store_cursor_new();
    size_t total = 0, cap = 0;
    struct copy *v = NULL;
    for (;;) {
        const struct store_record *recs;
        size_t n;
        rc = store_shard_read(sh, cur, &pos, 7, 1 << 20, &recs, &n, &next, NULL, &err);
        if (rc != 0) {
            CHECK(rc == STORE_ECORRUPT || rc == STORE_EIO);
            store_cursor_free(cur);
            for (size_t i = 0; i < total; i++)
                free(v[i].bytes);
            free(v);
            return -1;
        }
        if (n == 0)
            break;
        for (size_t k = 0; k < n; k++) {
            const struct store_record *r = &recs[k];
            CHECK(r->seq.shard == 0);
            CHECK(total == 0 || store_seq_cmp(v[total - 1].seq, r->seq) < 0);
            if (total == cap) {
                cap = cap ? cap * 2 : 16;
                v = realloc(v, cap * sizeof *v);
                CHECK(v != NULL);
            }
            struct copy *c = &v[total++];
            c->seq = r->seq;
            c->pl = r->partition_key.len;
            c->dl = r->data.len;
            c->bytes = malloc(c->pl + c->dl + 1);
            CHECK(c->bytes != NULL);
            memcpy(c->bytes, r->partition_key.p, c->pl);
            memcpy(c->bytes + c->pl, r->data.p, c->dl);
        }
        pos = next;
    }
    store_cursor_free(cur);
    *out = v;
    return (long)total;
}

static int same(const struct copy *c, struct store_seq seq, const struct store_record_in *r)
{
    return store_seq_cmp(c->seq, seq) == 0 && c->pl == r->partition_key.len &&
           c->dl == r->data.len && memcmp(c->bytes, r->partition_key.p, c->pl) == 0 &&
           memcmp(c->bytes + c->pl, r->data.p, c->dl) == 0;
}

static void free_copies(struct copy *v, long n)
{
    for (long i = 0; i < n; i++)
        free(v[i].bytes);
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_manifest) {
        make_template();
        atexit(cleanup);
    }
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const uint8_t *in = data + 1;
    size_t inlen = size - 1;

    nftw(g_run, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    CHECK(mkdir(g_run, 0755) == 0);
    char p[800];
    snprintf(p, sizeof p, "%s/segments", g_run);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/MANIFEST", g_run);
    spit(p, g_manifest, g_manifest_len);

    size_t pre = (mode & 1) ? g_seg_len : 0;
    uint8_t *file = malloc(pre + inlen + 1);
    CHECK(file != NULL);
    memcpy(file, g_seg, pre);
    memcpy(file + pre, in, inlen);
    if (mode & 4)
        plausible_seqs(file + pre, inlen);
    if (mode & 6)
        fz_fix_crcs(file + pre, inlen);
    snprintf(p, sizeof p, "%s/segments/%s", g_run, g_segname);
    spit(p, file, pre + inlen);
    free(file);

    struct store_opts o = opts();
    struct store *s;
    struct store_err err;
    CHECK(store_open(g_run, &o, &s, &err) == 0);
    struct store_stream *st;
    CHECK(store_stream_lookup(s, "f", &st, &err) == 0);
    struct store_shard *sh = store_stream_shard(st, 0);
    CHECK(sh != NULL);
    struct copy *v;
    long n = read_all(sh, &v);

    char pk[16];
    uint8_t recdata[64];
    struct store_record_in extra = tpl_rec(5, pk, recdata);
    struct store_seq seq;
    if (n < 0) {
        /* Offline: appends are refused with the same error, nothing else. */
        CHECK(store_shard_append(sh, &extra, 1, &seq, on_done, NULL, &err) == STORE_ECORRUPT);
        store_close(s);
        return 0;
    }
    if (mode & 1) {
        CHECK(n >= 3);
        for (int i = 0; i < 3; i++) {
            char tpk[16];
            uint8_t tdata[64];
            struct store_record_in r = tpl_rec(i, tpk, tdata);
            CHECK(same(&v[i], v[i].seq, &r));
        }
    }
    struct done d = {0};
    CHECK(store_shard_append(sh, &extra, 1, &seq, on_done, &d, &err) == 0);
    pump(s, &d);
    CHECK(d.ok == 1);
    store_close(s);
    if (n > 0 && store_seq_cmp(v[n - 1].seq, seq) >= 0) {
        free_copies(v, n); /* forged future generation: see the header comment */
        return 0;
    }

    CHECK(store_open(g_run, &o, &s, &err) == 0);
    CHECK(store_stream_lookup(s, "f", &st, &err) == 0);
    sh = store_stream_shard(st, 0);
    struct copy *w;
    long m = read_all(sh, &w);
    CHECK(m == n + 1);
    for (long i = 0; i < n; i++) {
        struct store_record_in r = {{w[i].bytes, w[i].pl}, NULL, {w[i].bytes + w[i].pl, w[i].dl}};
        CHECK(same(&v[i], w[i].seq, &r));
    }
    CHECK(same(&w[n], seq, &extra));
    store_close(s);
    free_copies(v, n);
    free_copies(w, m);
    return 0;
}
