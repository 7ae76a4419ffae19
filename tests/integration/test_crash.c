/* test_crash.c - acknowledged records survive the process and the disk
 * failing under load, against the real binary with --durability always.
 *
 *   crash.kill9_under_load  producers put records over keep-alive HTTP/1.1
 *       connections while the server is killed with SIGKILL at random moments
 *       (24 times, some right after start-up, i.e. during or just after
 *       recovery) and restarted on the same data directory;
 *   crash.disk_full         the data directory is a 4 MiB tmpfs: puts run
 *       until the disk is full, are refused cleanly (a Kinesis error, the
 *       server keeps serving reads), and succeed again once space is freed;
 *       then the disk fills again and the server is killed while full.
 *
 * After each, every shard is read from TRIM_HORIZON (GetRecords until caught
 * up) and checked: every acknowledged record is there exactly once, byte for
 * byte, with the sequence number and shard its acknowledgement named; sequence
 * numbers increase strictly per shard and never repeat, and per producer and
 * shard follow the order records were sent in; a record the producer
 * was told failed, or got no answer for, appears at most once; nothing appears
 * that was never sent. Each record's data starts with its id (4 bytes LE) and
 * the rest derives from the id, so a read-back record is recognised and
 * compared in full.
 *
 * Producers are threads of this process (no Criterion asserts there: they
 * only record outcomes); the main thread kills, restarts and verifies. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "json.h"

/* ---- records ------------------------------------------------------------------ */

enum rstate { R_UNSENT, R_UNKNOWN, R_ACKED, R_FAILED };

struct rec {
    _Atomic int state;
    int shard;          /* from the acknowledgement */
    int producer;       /* which producer thread sent it (kill9) */
    char seq[48];
};

#define MAX_RECS 200000
static struct rec *recs;
static atomic_uint next_id;       /* ids handed out so far */
static atomic_uint acked_total;   /* acknowledgements so far */
static atomic_uint failed_total;  /* records answered with an error */
static atomic_int cur_port;       /* 0 while the server is down */
static atomic_int stop_producers;
static char protocol_error[512];  /* first answer a producer could not read */
static pthread_mutex_t perr_lock = PTHREAD_MUTEX_INITIALIZER;

static void note_protocol_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_protocol_error(const char *fmt, ...)
{
    pthread_mutex_lock(&perr_lock);
    if (!protocol_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(protocol_error, sizeof protocol_error, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&perr_lock);
}

/* Record "id"'s data: its id, then bytes derived from it; 4.."maxlen" bytes. */
static size_t rec_data(uint32_t id, uint8_t *buf, size_t maxlen)
{
    size_t len = 4 + (size_t)((id * 2654435761u) % (uint32_t)(maxlen - 3));
    if (len > maxlen)
        len = maxlen;
    buf[0] = (uint8_t)id;
    buf[1] = (uint8_t)(id >> 8);
    buf[2] = (uint8_t)(id >> 16);
    buf[3] = (uint8_t)(id >> 24);
    for (size_t k = 4; k < len; k++)
        buf[k] = (uint8_t)(id * 31 + k * 7 + (id >> 8));
    return len;
}

static size_t g_maxlen = 300; /* data bytes per record (disk_full uses more) */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a minimal HTTP/1.1 client (no asserts: producer threads use it) ---------- */

static int connect_port(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one Kinesis-door request on "fd" and reads the answer. Returns the
 * HTTP status with "*body" (new, NUL-terminated), or -1 on any I/O failure
 * (the connection is then unusable). */
static int http_call(int fd, const char *op, const char *json, char **body)
{
    size_t jl = strlen(json);
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/x-amz-json-1.1\r\n"
                      "X-Amz-Target: Kinesis_20131202.%s\r\nContent-Length: %zu\r\n\r\n",
                      op, jl);
    *body = NULL;
    if (send_all(fd, head, (size_t)hl) != 0 || send_all(fd, json, jl) != 0)
        return -1;
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    char *end = NULL;
    while (!end) {
        if (n + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            free(buf);
            return -1;
        }
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) {
        free(buf);
        return -1;
    }
    size_t clen = 0;
    for (char *p = strstr(buf, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, "content-length:", 15) == 0)
            clen = strtoul(p + 17, NULL, 10);
    size_t hdr = (size_t)(end + 4 - buf);
    if (hdr + clen + 1 > cap)
        buf = realloc(buf, cap = hdr + clen + 1);
    while (n < hdr + clen) {
        ssize_t r = recv(fd, buf + n, hdr + clen - n, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            free(buf);
            return -1;
        }
        n += (size_t)r;
    }
    buf[hdr + clen] = '\0';
    *body = strdup(buf + hdr);
    free(buf);
    return status;
}

/* One request on a fresh connection, from the main thread. */
static int call(int port, const char *op, const char *json, char **body)
{
    int fd = connect_port(port, 20000);
    cr_assert_geq(fd, 0, "connect to %d: %s", port, strerror(errno));
    int st = http_call(fd, op, json, body);
    close(fd);
    return st;
}

static int shard_index(const char *shard_id)
{
    const char *dash = shard_id ? strrchr(shard_id, '-') : NULL;
    return dash ? atoi(dash + 1) : -1;
}

/* ---- producers ------------------------------------------------------------------ */

static const char *g_stream;

/* Builds a PutRecords body for ids [first, first+n). */
static char *put_body(uint32_t first, int n)
{
    json_t *arr = json_array();
    uint8_t *data = malloc(g_maxlen);
    for (int i = 0; i < n; i++) {
        uint32_t id = first + (uint32_t)i;
        size_t len = rec_data(id, data, g_maxlen), bl;
        char *b64 = gw_base64_encode(data, len, &bl);
        char pk[32];
        snprintf(pk, sizeof pk, "pk-%u", id % 17);
        json_array_append_new(arr, json_pack("{s:s, s:s}", "Data", b64, "PartitionKey", pk));
        free(b64);
    }
    free(data);
    json_t *req = json_pack("{s:s, s:o}", "StreamName", g_stream, "Records", arr);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return text;
}

/* Applies a PutRecords answer to records [first, first+n). */
static void apply_answer(uint32_t first, int n, int status, const char *body)
{
    if (status != 200) {
        for (int i = 0; i < n; i++)
            atomic_store(&recs[first + i].state, R_FAILED);
        atomic_fetch_add(&failed_total, (unsigned)n);
        return;
    }
    json_error_t je;
    json_t *root = json_loads(body, 0, &je);
    json_t *arr = root ? json_object_get(root, "Records") : NULL;
    if (!json_is_array(arr) || json_array_size(arr) != (size_t)n) {
        note_protocol_error("PutRecords answer without %d matching Records", n);
        json_decref(root);
        return; /* the records stay UNKNOWN: checked as at most once */
    }
    for (int i = 0; i < n; i++) {
        json_t *r = json_array_get(arr, (size_t)i);
        struct rec *rc = &recs[first + i];
        const char *seq = json_string_value(json_object_get(r, "SequenceNumber"));
        const char *sh = json_string_value(json_object_get(r, "ShardId"));
        if (json_object_get(r, "ErrorCode") || !seq || !sh) {
            atomic_store(&rc->state, R_FAILED);
            atomic_fetch_add(&failed_total, 1);
            continue;
        }
        snprintf(rc->seq, sizeof rc->seq, "%s", seq);
        rc->shard = shard_index(sh);
        atomic_store(&rc->state, R_ACKED);
        atomic_fetch_add(&acked_total, 1);
    }
    json_decref(root);
}

#define BATCH 8

static void *producer(void *arg)
{
    int me = (int)(intptr_t)arg;
    int fd = -1, fd_port = 0;
    while (!atomic_load(&stop_producers)) {
        int port = atomic_load(&cur_port);
        if (port == 0) {
            sleep_ms(2);
            continue;
        }
        if (fd < 0 || fd_port != port) {
            if (fd >= 0)
                close(fd);
            fd = connect_port(port, 15000);
            fd_port = port;
            if (fd < 0) {
                sleep_ms(5);
                continue;
            }
        }
        uint32_t first = atomic_fetch_add(&next_id, BATCH);
        if (first + BATCH > MAX_RECS) {
            atomic_fetch_sub(&next_id, BATCH);
            break;
        }
        for (int i = 0; i < BATCH; i++) {
            recs[first + i].producer = me;
            atomic_store(&recs[first + i].state, R_UNKNOWN);
        }
        char *req = put_body(first, BATCH), *body = NULL;
        int st = http_call(fd, "PutRecords", req, &body);
        free(req);
        if (st < 0) {
            close(fd); /* no answer: the batch stays UNKNOWN */
            fd = -1;
            continue;
        }
        apply_answer(first, BATCH, st, body);
        free(body);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* The server of the running test, killed by the fini if an assertion ends
 * the test early (a failed test must not leave a server behind). */
static struct srv *live;

static void kill_live(void)
{
    atomic_store(&stop_producers, 1);
    if (live && live->pid > 0) {
        kill(live->pid, SIGKILL);
        waitpid(live->pid, NULL, 0);
        live->pid = 0;
    }
    live = NULL;
}

#define PRODUCERS_MAX 8
#define SHARDS_MAX 4

/* ---- stream set-up and read-back ------------------------------------------------- */

static void create_stream(int port, const char *name, int shards)
{
    char req[256], *out;
    snprintf(req, sizeof req, "{\"StreamName\":\"%s\",\"ShardCount\":%d}", name, shards);
    int st = call(port, "CreateStream", req, &out);
    cr_assert_eq(st, 200, "CreateStream: %d %s", st, out);
    free(out);
    snprintf(req, sizeof req, "{\"StreamName\":\"%s\"}", name);
    for (int i = 0; i < 500; i++) {
        st = call(port, "DescribeStreamSummary", req, &out);
        bool active = st == 200 && strstr(out, "\"StreamStatus\":\"ACTIVE\"");
        free(out);
        if (active)
            return;
        sleep_ms(10);
    }
    cr_assert_fail("stream %s never became ACTIVE", name);
}

struct seen {
    uint32_t id;
    int shard;
    char seq[48];
};

static int seen_by_seq(const void *a, const void *b)
{
    return strcmp(((const struct seen *)a)->seq, ((const struct seen *)b)->seq);
}

/* Reads every shard of "name" from TRIM_HORIZON and checks the record table
 * (see the top of the file). Returns how many records were read. */
static size_t verify(int port, const char *name, int shards, const char *when)
{
    uint32_t issued = atomic_load(&next_id);
    uint8_t *seen_flag = calloc(issued ? issued : 1, 1);
    size_t nseen = 0, capseen = 1024;
    struct seen *all = malloc(capseen * sizeof *all);
    uint8_t *want = malloc(g_maxlen), *got = malloc(g_maxlen + 8);
    for (int sh = 0; sh < shards; sh++) {
        char req[512], *out;
        snprintf(req, sizeof req,
                 "{\"StreamName\":\"%s\",\"ShardId\":\"shardId-%012d\","
                 "\"ShardIteratorType\":\"TRIM_HORIZON\"}",
                 name, sh);
        int st = call(port, "GetShardIterator", req, &out);
        cr_assert_eq(st, 200, "%s: GetShardIterator: %d %s", when, st, out);
        json_t *root = json_loads(out, 0, NULL);
        free(out);
        char *it = strdup(json_string_value(json_object_get(root, "ShardIterator")));
        json_decref(root);
        char last[48] = "";
        for (int round = 0; round < 100000; round++) {
            json_t *q = json_pack("{s:s, s:i}", "ShardIterator", it, "Limit", 1000);
            char *qt = json_dumps(q, JSON_COMPACT);
            json_decref(q);
            st = call(port, "GetRecords", qt, &out);
            free(qt);
            cr_assert_eq(st, 200, "%s: GetRecords shard %d: %d %s", when, sh, st, out);
            root = json_loads(out, 0, NULL);
            free(out);
            json_t *arr = json_object_get(root, "Records");
            cr_assert(json_is_array(arr));
            size_t n = json_array_size(arr);
            for (size_t i = 0; i < n; i++) {
                json_t *r = json_array_get(arr, i);
                const char *seq = json_string_value(json_object_get(r, "SequenceNumber"));
                const char *b64 = json_string_value(json_object_get(r, "Data"));
                cr_assert(seq && b64 && strlen(seq) < sizeof last);
                cr_assert(strlen(seq) == 41 && strcmp(seq, last) > 0,
                          "%s: shard %d: sequence %s after %s", when, sh, seq, last);
                snprintf(last, sizeof last, "%s", seq);
                long len = gw_base64_decode(b64, strlen(b64), got, g_maxlen + 8);
                cr_assert_geq(len, 4, "%s: shard %d: record %s: bad data", when, sh, seq);
                uint32_t id = (uint32_t)got[0] | (uint32_t)got[1] << 8 | (uint32_t)got[2] << 16 |
                              (uint32_t)got[3] << 24;
                cr_assert_lt(id, issued, "%s: shard %d: record %s was never sent", when, sh, seq);
                size_t wl = rec_data(id, want, g_maxlen);
                cr_assert(wl == (size_t)len && memcmp(want, got, wl) == 0,
                          "%s: record %u (%s) differs from what was sent", when, id, seq);
                cr_assert_eq(seen_flag[id], 0, "%s: record %u appears twice (again as %s)", when,
                             id, seq);
                seen_flag[id] = 1;
                struct rec *rc = &recs[id];
                int state = atomic_load(&rc->state);
                cr_assert_neq(state, R_UNSENT);
                if (state == R_ACKED) {
                    cr_assert(strcmp(rc->seq, seq) == 0 && rc->shard == sh,
                              "%s: record %u acknowledged as %s in shard %d, read as %s in %d",
                              when, id, rc->seq, rc->shard, seq, sh);
                }
                if (nseen == capseen)
                    all = realloc(all, (capseen *= 2) * sizeof *all);
                all[nseen].id = id;
                all[nseen].shard = sh;
                snprintf(all[nseen].seq, sizeof all[nseen].seq, "%s", seq);
                nseen++;
            }
            const char *next = json_string_value(json_object_get(root, "NextShardIterator"));
            json_int_t behind = json_integer_value(json_object_get(root, "MillisBehindLatest"));
            free(it);
            it = next ? strdup(next) : NULL;
            json_decref(root);
            if (!it || (n == 0 && behind == 0))
                break;
        }
        free(it);
    }
    uint32_t lost = 0, first_lost = 0;
    for (uint32_t id = 0; id < issued; id++)
        if (atomic_load(&recs[id].state) == R_ACKED && !seen_flag[id]) {
            if (!lost)
                first_lost = id;
            lost++;
        }
    cr_assert_eq(lost, 0, "%s: %u acknowledged records lost (first: id %u, %s)", when, lost,
                 first_lost, recs[first_lost].seq);
    /* Per producer and shard, acknowledged numbers follow the order the
     * records were sent in (a producer sends one batch at a time, and a
     * batch's records in one shard are numbered in their order). */
    static char last_acked[PRODUCERS_MAX][SHARDS_MAX][48];
    memset(last_acked, 0, sizeof last_acked);
    for (uint32_t id = 0; id < issued; id++) {
        struct rec *rc = &recs[id];
        if (atomic_load(&rc->state) != R_ACKED)
            continue;
        cr_assert(rc->producer >= 0 && rc->producer < PRODUCERS_MAX && rc->shard >= 0 &&
                  rc->shard < SHARDS_MAX);
        char *last = last_acked[rc->producer][rc->shard];
        cr_assert_gt(strcmp(rc->seq, last), 0,
                     "%s: producer %d, shard %d: record %u acknowledged as %s after %s", when,
                     rc->producer, rc->shard, id, rc->seq, last);
        snprintf(last, 48, "%s", rc->seq);
    }
    /* No sequence number twice, across shards too. */
    qsort(all, nseen, sizeof *all, seen_by_seq);
    for (size_t i = 1; i < nseen; i++)
        cr_assert_neq(strcmp(all[i - 1].seq, all[i].seq), 0, "%s: sequence %s twice", when,
                      all[i].seq);
    free(all);
    free(seen_flag);
    free(want);
    free(got);
    return nseen;
}

static void reset_table(void)
{
    if (!recs)
        recs = calloc(MAX_RECS, sizeof *recs);
    memset(recs, 0, MAX_RECS * sizeof *recs);
    atomic_store(&next_id, 0);
    atomic_store(&acked_total, 0);
    atomic_store(&failed_total, 0);
    atomic_store(&cur_port, 0);
    atomic_store(&stop_producers, 0);
    protocol_error[0] = '\0';
}

/* ---- kill -9 under load ---------------------------------------------------------- */

#define KILLS 24
#define PRODUCERS 4

Test(crash, kill9_under_load, .timeout = 150, .fini = kill_live)
{
    reset_table();
    g_stream = "crash";
    g_maxlen = 300;
    static struct srv s;
    memset(&s, 0, sizeof s);
    live = &s;
    const char *args[] = {"--durability", "always", NULL};
    srv_start(&s, args);
    create_stream(s.port, "crash", 2);

    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    pthread_t th[PRODUCERS];
    atomic_store(&cur_port, s.port);
    for (int i = 0; i < PRODUCERS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, producer, (void *)(intptr_t)i), 0);

    int64_t t0 = now_ms();
    int kills = 0, early = 0;
    for (; kills < KILLS && now_ms() - t0 < 45000; kills++) {
        /* Every fourth kill comes as soon as the server listens (recovery
         * just done, producers reconnecting); the others once it has
         * acknowledged something since the restart, after a random delay. */
        if (kills % 4 != 3) {
            unsigned base = atomic_load(&acked_total);
            for (int i = 0; i < 1000 && atomic_load(&acked_total) == base; i++)
                sleep_ms(5);
            sleep_ms(rand() % 120);
        } else {
            early++;
        }
        atomic_store(&cur_port, 0);
        kill(s.pid, SIGKILL);
        waitpid(s.pid, NULL, 0);
        s.pid = 0;
        srv_start(&s, args);
        atomic_store(&cur_port, s.port);
    }
    /* Let the producers run against the last incarnation, then stop them. */
    sleep_ms(200);
    atomic_store(&stop_producers, 1);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(kills, KILLS, "only %d kills in 45 s (seed %u)", kills, seed);
    cr_assert_eq(protocol_error[0], '\0', "%s", protocol_error);
    unsigned acked = atomic_load(&acked_total);
    cr_assert_gt(acked, 0, "nothing was acknowledged");

    size_t n = verify(s.port, "crash", 2, "after the last SIGKILL");
    /* A clean restart reads the same. */
    cr_expect_eq(srv_stop(&s, 15000), 0);
    srv_start(&s, args);
    size_t again = verify(s.port, "crash", 2, "after a clean restart");
    cr_expect_eq(again, n, "records read: %zu, then %zu after a clean restart", n, again);
    cr_log_info("kill9: %d kills (%d early), %u ids sent, %u acknowledged, %u failed, %zu read "
                "back (seed %u)",
                kills, early, atomic_load(&next_id), acked, atomic_load(&failed_total), n, seed);
    cr_expect_eq(srv_stop(&s, 15000), 0);
}

/* ---- the disk fills up -------------------------------------------------------------- */

static char full_mnt[400];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void full_fini(void)
{
    kill_live();
    if (full_mnt[0]) {
        umount2(full_mnt, MNT_DETACH);
        full_mnt[0] = '\0';
    }
}

/* Puts batches of "n" records until one is answered as failed; returns the
 * number of requests made (at most "max"). */
static int put_until_failure(int port, int n, int max)
{
    int fd = connect_port(port, 30000);
    cr_assert_geq(fd, 0);
    int reqs = 0;
    for (; reqs < max && atomic_load(&failed_total) == 0; reqs++) {
        uint32_t first = atomic_fetch_add(&next_id, (unsigned)n);
        cr_assert_leq(first + (uint32_t)n, MAX_RECS);
        for (int i = 0; i < n; i++)
            atomic_store(&recs[first + i].state, R_UNKNOWN);
        char *req = put_body(first, n), *body = NULL;
        int st = http_call(fd, "PutRecords", req, &body);
        free(req);
        cr_assert_geq(st, 0, "no answer to PutRecords while filling the disk");
        if (st != 200 || strstr(body, "\"ErrorCode\"")) {
            /* Refused cleanly: a Kinesis error type with a message, as
             * Kinesis answers its own internal failures (the cause is for
             * the operator's log, checked by the caller). */
            cr_assert(strstr(body, "InternalFailure") || strstr(body, "ServiceUnavailable"),
                      "disk full answered as %d %s", st, body);
            cr_assert(strstr(body, "essage\":\""), "an error without a message: %d %s", st, body);
        }
        apply_answer(first, n, st, body);
        free(body);
    }
    close(fd);
    return reqs;
}

Test(crash, disk_full, .timeout = 120, .fini = full_fini)
{
    if (geteuid() != 0)
        cr_skip_test("mounting a small tmpfs needs root");
    reset_table();
    g_stream = "full";
    g_maxlen = 4000;
    static struct srv s;
    memset(&s, 0, sizeof s);
    live = &s;
    snprintf(s.dir, sizeof s.dir, "/tmp/sluice-test-XXXXXX");
    cr_assert_not_null(mkdtemp(s.dir));
    snprintf(s.log, sizeof s.log, "%s/server.log", s.dir);
    snprintf(full_mnt, sizeof full_mnt, "%s/data", s.dir);
    cr_assert_eq(mkdir(full_mnt, 0755), 0);
    if (mount("tmpfs", full_mnt, "tmpfs", 0, "size=4m") != 0) {
        full_mnt[0] = '\0';
        cr_skip_test("cannot mount a tmpfs: %s", strerror(errno));
    }
    /* Ballast takes half the disk; deleting it is "space frees up". */
    char ballast[450];
    snprintf(ballast, sizeof ballast, "%s/ballast", full_mnt);
    int bfd = open(ballast, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(bfd, 0);
    static char chunk[64 * 1024];
    memset(chunk, 0xb1, sizeof chunk);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(write(bfd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    close(bfd);

    const char *args[] = {"--durability", "always", "--segment-bytes", "64KiB", NULL};
    srv_start(&s, args);
    create_stream(s.port, "full", 2);

    /* ~32 KiB per request: the 2 MiB left fill within ~70 requests. */
    int reqs = put_until_failure(s.port, 16, 400);
    unsigned acked_before = atomic_load(&acked_total);
    cr_assert_gt(atomic_load(&failed_total), 0, "the disk never filled (%d requests)", reqs);
    cr_assert_gt(acked_before, 0, "nothing was acknowledged before the disk filled");
    cr_assert(srv_alive(&s), "the server died on ENOSPC (log %s)", s.log);
    cr_assert_gt(srv_log_count(&s, "No space left on device"), 0,
                 "the log does not name the cause (%s)", s.log);
    /* Still full: still refused, still serving reads. */
    atomic_store(&failed_total, 0);
    put_until_failure(s.port, 16, 3);
    cr_assert_gt(atomic_load(&failed_total), 0, "a put succeeded on a full disk");
    cr_assert(healthz_ok(&s));
    verify(s.port, "full", 2, "while the disk is full");

    /* Space frees up: the next puts succeed. */
    cr_assert_eq(unlink(ballast), 0);
    atomic_store(&failed_total, 0);
    unsigned acked_mid = atomic_load(&acked_total);
    put_until_failure(s.port, 16, 10);
    cr_assert_eq(atomic_load(&failed_total), 0,
                 "puts still fail after space was freed (ENOSPC is sticky)");
    cr_assert_eq(atomic_load(&acked_total), acked_mid + 10 * 16);

    size_t n = verify(s.port, "full", 2, "after space was freed");
    cr_expect_eq(srv_stop(&s, 15000), 0);
    srv_start(&s, args);
    size_t again = verify(s.port, "full", 2, "after a restart");
    cr_expect_eq(again, n);

    /* Full again, and killed while full (failed writes may have left partial
     * frames behind): the restart after space frees up recovers every
     * acknowledged record and takes writes. */
    bfd = open(ballast, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(bfd, 0);
    while (write(bfd, chunk, sizeof chunk) > 0)
        ;
    close(bfd);
    atomic_store(&failed_total, 0);
    put_until_failure(s.port, 16, 400);
    cr_assert_gt(atomic_load(&failed_total), 0, "the disk did not fill again");
    kill(s.pid, SIGKILL);
    waitpid(s.pid, NULL, 0);
    s.pid = 0;
    cr_assert_eq(unlink(ballast), 0);
    srv_start(&s, args);
    verify(s.port, "full", 2, "after SIGKILL on a full disk");
    atomic_store(&failed_total, 0);
    acked_mid = atomic_load(&acked_total);
    put_until_failure(s.port, 16, 5);
    cr_assert_eq(atomic_load(&failed_total), 0, "puts fail after a crash on a full disk");
    cr_assert_eq(atomic_load(&acked_total), acked_mid + 5 * 16);
    n = verify(s.port, "full", 2, "after writes resumed");
    cr_log_info("disk_full: %u acknowledged before the disk filled, %zu records read back",
                acked_before, n);
    cr_expect_eq(srv_stop(&s, 15000), 0);
    umount2(full_mnt, MNT_DETACH);
    full_mnt[0] = '\0';
    nftw(s.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
