/* fanout.c - the enhanced fan-out benchmark (sluice-bench-fanout; not a ctest
 * test): what h2load cannot measure.
 *
 * It starts its own gateway (--sluice BIN on 127.0.0.1:0 with a fresh data
 * directory; flags passed through with --gw-arg) unless --endpoint is given,
 * creates K single- or multi-shard streams, registers C consumers on each,
 * opens S SubscribeToShard subscriptions spread over N h2c connections, and
 * runs a producer (its own thread and event loop, its own h2c connections)
 * at a target rate or flat out for a bounded time. Each record carries its
 * send time (CLOCK_REALTIME ns), its stream and its index in that stream, so
 * the subscribers (the main thread, lib/fanout_client.c)
 * measure send -> receipt (every delivery), send -> first receipt (the first
 * subscription to get each record) and PutRecord acknowledgement -> receipt,
 * and detect records lost (acknowledged, never delivered) and duplicated.
 *
 * Kinesis allows one live subscription per consumer-shard, so S <= K x
 * shards x C. Past 20 consumers per stream the gateway needs
 * --max-consumers, which is added when the benchmark starts the gateway:
 * "1000 subscriptions on one shard" is --consumers 1000 --conns 10; --rate
 * applies to each stream.
 *
 *   sluice-bench-fanout [--sluice BIN | --endpoint HOST:PORT] [--gw-arg ARG]...
 *       [--streams K] [--shards N] [--consumers C] [--subs S] [--conns N]
 *       [--rate R (records/s per stream; 0 = flat out)] [--size BYTES]
 *       [--batch B (records per PutRecords; 1 = PutRecord)] [--inflight M]
 *       [--producer-conns P] [--duration SEC] [--drain SEC]
 *       [--max-records N (per stream)] [--label TEXT] [--jansson] [--one-thread]
 *       [--tls (TLS, ALPN h2: the gateway needs --tls-cert/--tls-key, e.g.
 *        through --gw-arg, or an --endpoint that has them)]
 *
 * --one-thread runs the producer on the subscribers' event loop instead of its
 * own thread: the client is then one thread, so on a 2-core machine the
 * gateway and the client each have a core, and latency measures the gateway
 * and loopback rather than three threads taking turns on two cores.
 *
 * Event payloads are parsed with the client's minimal scanner (fast_json;
 * --jansson for the general parser), so that at 100,000 deliveries/s the
 * client, which shares the machine, stays cheaper than the gateway.
 *
 * Output: a table on stdout, then one JSON line starting with {"bench":"fanout".
 * Exit status 0 when nothing was lost or duplicated and every subscription
 * held, 1 otherwise, 2 on a setup failure.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fanout_client.h"

#ifndef SLUICE_BIN_DEFAULT
#define SLUICE_BIN_DEFAULT "sluice"
#endif

#define MAX_GW_ARGS 32
#define MIN_SIZE 24 /* send ns, index, stream */

/* ---- options ------------------------------------------------------------------ */

static struct {
    const char *sluice, *endpoint, *label;
    const char *gw_args[MAX_GW_ARGS];
    int n_gw_args;
    int streams, shards, consumers, subs, conns, producer_conns, batch, inflight;
    double rate, duration, drain;
    bool jansson; /* parse events with jansson rather than the client's scanner */
    bool one_thread; /* producer on the subscribers' loop (no producer thread) */
    bool tls;        /* every connection over TLS (ALPN h2) instead of h2c */
    size_t size, max_records;
} opt = {
    .sluice = SLUICE_BIN_DEFAULT,
    .label = "",
    .streams = 1,
    .shards = 1,
    .consumers = 10,
    .subs = 0,
    .conns = 1,
    .producer_conns = 1,
    .batch = 1,
    .inflight = 64,
    .rate = 1000,
    .duration = 10,
    .drain = 10,
    .size = 100,
};

static void usage(void)
{
    fprintf(stderr,
            "usage: sluice-bench-fanout [--sluice BIN | --endpoint HOST:PORT] [--gw-arg ARG]...\n"
            "  [--streams K] [--shards N] [--consumers C] [--subs S] [--conns N]\n"
            "  [--rate R] [--size B] [--batch B] [--inflight M] [--producer-conns P]\n"
            "  [--duration SEC] [--drain SEC] [--max-records N] [--label TEXT] [--jansson]\n"
            "  [--one-thread] [--tls]\n");
    exit(2);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void kill_gateway(void);

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sluice-bench-fanout: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    kill_gateway();
    exit(2);
}

/* ---- latency histograms (log-linear, ~1.6% resolution) ------------------------ */

#define H_SUB 64
#define H_BUCKETS (128 + 50 * H_SUB)

struct hist {
    uint64_t n;
    uint64_t b[H_BUCKETS];
    int64_t max;
};

static int h_index(uint64_t v)
{
    if (v < 128)
        return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 6;
    int idx = 128 + (msb - 7) * H_SUB + (int)((v >> shift) & (H_SUB - 1));
    return idx < H_BUCKETS ? idx : H_BUCKETS - 1;
}

/* Middle of bucket "i". */
static double h_value(int i)
{
    if (i < 128)
        return i;
    int msb = (i - 128) / H_SUB + 7, sub = (i - 128) % H_SUB;
    double lo = ldexp(1.0, msb) + (double)sub * ldexp(1.0, msb - 6);
    return lo + ldexp(1.0, msb - 7);
}

static void h_add(struct hist *h, int64_t v)
{
    if (v < 0)
        v = 0;
    h->b[h_index((uint64_t)v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

/* A signed distribution: "neg" holds -v for v < 0. */
struct shist {
    struct hist pos, neg;
};

static void sh_add(struct shist *h, int64_t v)
{
    if (v < 0)
        h_add(&h->neg, -v);
    else
        h_add(&h->pos, v);
}

/* The "q" quantile (0..1) in ns. */
static double sh_quantile(const struct shist *h, double q)
{
    uint64_t n = h->pos.n + h->neg.n;
    if (n == 0)
        return NAN;
    uint64_t rank = (uint64_t)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = H_BUCKETS - 1; i >= 0; i--) { /* most negative first */
        seen += h->neg.b[i];
        if (seen >= rank)
            return -h_value(i);
    }
    for (int i = 0; i < H_BUCKETS; i++) {
        seen += h->pos.b[i];
        if (seen >= rank)
            return i == h_index((uint64_t)h->pos.max) ? (double)h->pos.max : h_value(i);
    }
    return (double)h->pos.max;
}

static double sh_max(const struct shist *h)
{
    return h->pos.n ? (double)h->pos.max : -(double)0;
}

/* ---- shared state -------------------------------------------------------------- */

struct bstream {
    char name[64];
    char arn[256];
    char (*consumer_arn)[512];
    char shard_ids[64][32];
    /* Written by the producer thread, read by the subscriber thread. */
    _Atomic int64_t *ack_ns; /* per index: ack time (0 = not acked) */
    uint8_t *shard_of;       /* per index: shard number, valid once acked */
    uint8_t *first;          /* per index bit: some subscription received it */
    atomic_size_t sent, acked, failed;
};

static struct bstream *streams;
static int64_t epoch_real_ns; /* producer start */

struct consumer_stats {
    uint64_t deliveries, bytes, dups, lost, foreign;
};

struct bsub {
    int stream, shard, consumer, conn;
    struct fc_sub *sub;
    uint8_t *seen; /* bitmap over the stream's indices */
    size_t seen_bits;
    uint64_t deliveries, dups, out_of_order, foreign;
    char last_seq[160];
    int resubscribes;
    bool failed;
    char error[600];
    struct event *retry;
};

static struct bsub *subs;
static struct consumer_stats *cstats; /* [stream * consumers + consumer] */
static struct shist lat_send, lat_ack;
/* Send -> the first subscription's receipt of each record: the gateway's
 * push latency without the client's own serial work on the other nine. */
static struct shist lat_first;
static int64_t last_receipt_real_ns;

struct pending_ack {
    uint32_t stream;
    uint32_t idx;
    int64_t t;
};
static struct pending_ack *pend;
static size_t n_pend, cap_pend, pend_dropped;
#define PEND_MAX ((size_t)8 << 20)

static struct event_base *base;
static struct fc_conn **sub_conns;
static pid_t gw_pid;
static char gw_dir[256];
static char host[64] = "127.0.0.1";
static int port;

/* ---- the gateway process ------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void kill_gateway(void)
{
    if (gw_pid > 0) {
        kill(gw_pid, SIGTERM);
        for (int i = 0; i < 1000; i++) {
            if (waitpid(gw_pid, NULL, WNOHANG) == gw_pid) {
                gw_pid = 0;
                break;
            }
            usleep(10000);
        }
        if (gw_pid > 0) {
            kill(gw_pid, SIGKILL);
            waitpid(gw_pid, NULL, 0);
            gw_pid = 0;
        }
    }
    if (gw_dir[0]) {
        nftw(gw_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        gw_dir[0] = 0;
    }
}

static void start_gateway(void)
{
    snprintf(gw_dir, sizeof gw_dir, "/tmp/sluice-bench-fanout-XXXXXX");
    if (!mkdtemp(gw_dir))
        die("mkdtemp: %s", strerror(errno));
    char data[320], logp[320];
    snprintf(data, sizeof data, "%s/data", gw_dir);
    snprintf(logp, sizeof logp, "%s/sluice.log", gw_dir);
    const char *argv[MAX_GW_ARGS + 8];
    int n = 0;
    argv[n++] = opt.sluice;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--data-dir";
    argv[n++] = data;
    for (int i = 0; i < opt.n_gw_args; i++)
        argv[n++] = opt.gw_args[i];
    argv[n] = NULL;
    gw_pid = fork();
    if (gw_pid < 0)
        die("fork: %s", strerror(errno));
    if (gw_pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 1000 && !port; i++) {
        FILE *f = fopen(logp, "r");
        char line[2048];
        while (f && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "\"event\":\"listening\"");
            const char *q = p ? strstr(line, "\"port\":\"") : NULL;
            if (q) {
                port = atoi(q + 8);
                break;
            }
        }
        if (f)
            fclose(f);
        if (!port) {
            if (waitpid(gw_pid, NULL, WNOHANG) == gw_pid) {
                gw_pid = 0;
                char cmd[400];
                snprintf(cmd, sizeof cmd, "tail -5 %s >&2", logp);
                if (system(cmd) != 0) {
                }
                die("%s exited during startup", opt.sluice);
            }
            usleep(10000);
        }
    }
    if (!port)
        die("no listening line from %s", opt.sluice);
}

struct proc_sample {
    double cpu_s; /* utime + stime */
    long rss_kb, hwm_kb;
};

static struct proc_sample proc_sample(void)
{
    struct proc_sample s = {-1, -1, -1};
    if (gw_pid <= 0)
        return s;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)gw_pid);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        const char *p = strrchr(buf, ')');
        unsigned long ut = 0, st = 0;
        /* fields after ")": state(3) ... utime(14) stime(15) */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            s.cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    snprintf(path, sizeof path, "/proc/%d/status", (int)gw_pid);
    f = fopen(path, "r");
    while (f && fgets(buf, sizeof buf, f)) {
        if (strncmp(buf, "VmRSS:", 6) == 0)
            s.rss_kb = atol(buf + 6);
        else if (strncmp(buf, "VmHWM:", 6) == 0)
            s.hwm_kb = atol(buf + 6);
    }
    if (f)
        fclose(f);
    return s;
}

/* ---- control plane -------------------------------------------------------------- */

static json_t *call(struct fc_conn *c, int *st, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static json_t *call(struct fc_conn *c, int *st, const char *op, const char *fmt, ...)
{
    char body[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return fc_call_sync(c, op, body, st, 10000);
}

static const char *jstr2(json_t *o, const char *a, const char *b)
{
    json_t *j = json_object_get(o, a);
    return json_string_value(b ? json_object_get(j, b) : j);
}

static void setup_stream(struct fc_conn *c, int k)
{
    struct bstream *s = &streams[k];
    int st;
    snprintf(s->name, sizeof s->name, "fanout-%d", k);
    json_t *r = call(c, &st, "CreateStream", "{\"StreamName\":\"%s\",\"ShardCount\":%d}", s->name,
                     opt.shards);
    if (st != 200)
        die("CreateStream %s: %d %s", s->name, st, jstr2(r, "message", NULL));
    json_decref(r);
    for (int i = 0;; i++) {
        r = call(c, &st, "DescribeStreamSummary", "{\"StreamName\":\"%s\"}", s->name);
        const char *status = jstr2(r, "StreamDescriptionSummary", "StreamStatus");
        if (st == 200 && status && strcmp(status, "ACTIVE") == 0) {
            snprintf(s->arn, sizeof s->arn, "%s", jstr2(r, "StreamDescriptionSummary", "StreamARN"));
            json_decref(r);
            break;
        }
        json_decref(r);
        if (i > 1000)
            die("stream %s never became ACTIVE", s->name);
        fc_run_for(base, 10);
    }
    for (int sh = 0; sh < opt.shards; sh++)
        snprintf(s->shard_ids[sh], sizeof s->shard_ids[sh], "shardId-%012d", sh);
    s->consumer_arn = calloc((size_t)opt.consumers, sizeof *s->consumer_arn);
    for (int ci = 0; ci < opt.consumers; ci++) {
        for (int i = 0;; i++) {
            r = call(c, &st, "RegisterStreamConsumer",
                     "{\"StreamARN\":\"%s\",\"ConsumerName\":\"c%d\"}", s->arn, ci);
            if (st == 200)
                break;
            const char *t = jstr2(r, "__type", NULL);
            if (!t || strcmp(t, "LimitExceededException") != 0 || i > 200)
                die("RegisterStreamConsumer: %d %s %s", st, t ? t : "", jstr2(r, "message", NULL));
            json_decref(r);
            fc_run_for(base, 50);
        }
        snprintf(s->consumer_arn[ci], 512, "%s", jstr2(r, "Consumer", "ConsumerARN"));
        json_decref(r);
        for (int i = 0;; i++) {
            r = call(c, &st, "DescribeStreamConsumer", "{\"ConsumerARN\":\"%s\"}",
                     s->consumer_arn[ci]);
            const char *status = jstr2(r, "ConsumerDescription", "ConsumerStatus");
            bool active = st == 200 && status && strcmp(status, "ACTIVE") == 0;
            json_decref(r);
            if (active)
                break;
            if (i > 1000)
                die("consumer never became ACTIVE");
            fc_run_for(base, 10);
        }
    }
}

/* ---- subscribers (main thread) -------------------------------------------------- */

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void on_record(struct fc_sub *fs, const struct fc_record *r, void *ud)
{
    struct bsub *b = ud;
    int64_t now = fc_now_real_ns();
    if (r->len < MIN_SIZE) {
        b->foreign++;
        return;
    }
    int64_t sent = (int64_t)rd64(r->data);
    uint64_t idx = rd64(r->data + 8);
    uint32_t sidx = (uint32_t)rd64(r->data + 16);
    if (sidx != (uint32_t)b->stream || idx >= opt.max_records) {
        b->foreign++;
        return;
    }
    if (idx >= b->seen_bits) {
        size_t nb = b->seen_bits ? b->seen_bits : 4096;
        while (nb <= idx)
            nb *= 2;
        b->seen = realloc(b->seen, nb / 8);
        memset(b->seen + b->seen_bits / 8, 0, (nb - b->seen_bits) / 8);
        b->seen_bits = nb;
    }
    if (b->seen[idx / 8] & (1u << (idx % 8))) {
        b->dups++;
        cstats[b->stream * opt.consumers + b->consumer].dups++;
        return;
    }
    b->seen[idx / 8] |= (uint8_t)(1u << (idx % 8));
    if (b->last_seq[0] && fc_seq_cmp(r->seq, b->last_seq) <= 0)
        b->out_of_order++;
    size_t sl = strnlen(r->seq, sizeof b->last_seq - 1);
    memcpy(b->last_seq, r->seq, sl);
    b->last_seq[sl] = '\0';
    b->deliveries++;
    struct consumer_stats *cs = &cstats[b->stream * opt.consumers + b->consumer];
    cs->deliveries++;
    cs->bytes += r->len;
    sh_add(&lat_send, now - sent);
    uint8_t *fb = &streams[b->stream].first[idx / 8];
    if (!(*fb & (1u << (idx % 8)))) {
        *fb |= (uint8_t)(1u << (idx % 8));
        sh_add(&lat_first, now - sent);
    }
    int64_t ack = atomic_load_explicit(&streams[b->stream].ack_ns[idx], memory_order_acquire);
    if (ack)
        sh_add(&lat_ack, now - ack);
    else if (n_pend < PEND_MAX) {
        if (n_pend == cap_pend) {
            cap_pend = cap_pend ? cap_pend * 2 : 4096;
            pend = realloc(pend, cap_pend * sizeof *pend);
        }
        pend[n_pend++] = (struct pending_ack){(uint32_t)b->stream, (uint32_t)idx, now};
    } else
        pend_dropped++;
    if (now > last_receipt_real_ns)
        last_receipt_real_ns = now;
}

static void sub_open(struct bsub *b);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    sub_open(arg);
}

static void on_end(struct fc_sub *fs, enum fc_end how, void *ud)
{
    struct bsub *b = ud;
    const struct fc_sub_stats *st = fc_sub_stats(fs);
    if (how == FC_END_CLEAN && b->resubscribes < 100) {
        /* --subscription-ttl expired: continue where it ended, as KCL does. */
        b->resubscribes++;
        struct timeval tv = {0, 0};
        evtimer_add(b->retry, &tv);
        return;
    }
    if (how == FC_END_HTTP_ERROR && strcmp(st->error_type, "ResourceInUseException") == 0 &&
        b->resubscribes < 100) {
        b->resubscribes++;
        struct timeval tv = {1, 0};
        evtimer_add(b->retry, &tv);
        return;
    }
    b->failed = true;
    snprintf(b->error, sizeof b->error, "end %d: %s %s %s", (int)how, st->error_type,
             st->error_message, st->decode_error);
}

static void sub_open(struct bsub *b)
{
    char after[160] = "";
    if (b->sub) {
        snprintf(after, sizeof after, "%s", fc_sub_stats(b->sub)->last_cont_seq);
        fc_sub_free(b->sub);
        b->sub = NULL;
    }
    struct bstream *s = &streams[b->stream];
    struct fc_sub_opts o = {
        .consumer_arn = s->consumer_arn[b->consumer],
        .shard_id = s->shard_ids[b->shard],
        .start_type = after[0] ? "AFTER_SEQUENCE_NUMBER" : "TRIM_HORIZON",
        .start_seq = after[0] ? after : NULL,
        .fast_json = !opt.jansson,
        .on_record = on_record,
        .on_end = on_end,
        .ud = b,
    };
    b->sub = fc_subscribe(sub_conns[b->conn], &o);
    if (!b->sub) {
        b->failed = true;
        snprintf(b->error, sizeof b->error, "connection failed: %s",
                 fc_conn_error(sub_conns[b->conn]));
    }
}

/* ---- the producer (its own thread and event loop) ------------------------------ */

struct producer {
    struct event_base *base;
    struct fc_conn **conns;
    struct event *tick;
    int64_t t0_mono, stop_mono;
    uint64_t sent_total;
    int inflight;
    int next_stream, next_conn;
    atomic_bool stopped;
    uint8_t *buf; /* batch data */
    uint64_t put_calls, put_errors;
    char first_error[200];
};

static struct producer prod;

struct put_ctx {
    int stream;
    size_t first, n;
};

static void on_put(int status, json_t *reply, void *ud)
{
    struct put_ctx *pc = ud;
    struct bstream *s = &streams[pc->stream];
    int64_t now = fc_now_real_ns();
    prod.inflight--;
    json_t *recs = json_object_get(reply, "Records");
    bool single = opt.batch == 1;
    if (status != 200 || (!single && json_array_size(recs) != pc->n)) {
        atomic_fetch_add(&s->failed, pc->n);
        prod.put_errors++;
        if (!prod.first_error[0])
            snprintf(prod.first_error, sizeof prod.first_error, "%d %s: %s", status,
                     jstr2(reply, "__type", NULL) ? jstr2(reply, "__type", NULL) : "",
                     jstr2(reply, "message", NULL) ? jstr2(reply, "message", NULL) : "");
    } else {
        for (size_t i = 0; i < pc->n; i++) {
            json_t *e = single ? reply : json_array_get(recs, i);
            const char *sh = jstr2(e, "ShardId", NULL);
            if (!sh) {
                atomic_fetch_add(&s->failed, 1);
                continue;
            }
            s->shard_of[pc->first + i] = (uint8_t)atoi(sh + 8);
            atomic_store_explicit(&s->ack_ns[pc->first + i], now, memory_order_release);
            atomic_fetch_add(&s->acked, 1);
        }
    }
    free(pc);
}

/* Sends one PutRecord(s) of up to "want" records to the next stream. */
static bool prod_send_one(size_t want)
{
    int k = prod.next_stream;
    struct bstream *s = &streams[k];
    size_t first = atomic_load(&s->sent);
    if (first >= opt.max_records)
        return false;
    size_t n = want;
    if (n > (size_t)opt.batch)
        n = (size_t)opt.batch;
    if (n > opt.max_records - first)
        n = opt.max_records - first;
    prod.next_stream = (k + 1) % opt.streams;
    const char *pk[500];
    const uint8_t *data[500];
    size_t len[500];
    char keys[500][24];
    int64_t now = fc_now_real_ns();
    for (size_t i = 0; i < n; i++) {
        uint8_t *d = prod.buf + i * opt.size;
        wr64(d, (uint64_t)now);
        wr64(d + 8, first + i);
        wr64(d + 16, (uint64_t)k);
        data[i] = d;
        len[i] = opt.size;
        snprintf(keys[i], sizeof keys[i], "k%zu", (first + i) * 2654435761u % 1000003);
        pk[i] = keys[i];
    }
    struct put_ctx *pc = malloc(sizeof *pc);
    *pc = (struct put_ctx){k, first, n};
    struct fc_conn *c = prod.conns[prod.next_conn];
    prod.next_conn = (prod.next_conn + 1) % opt.producer_conns;
    int rv = n == 1 && opt.batch == 1
                 ? fc_put_record(c, s->name, pk[0], data[0], len[0], on_put, pc)
                 : fc_put_records(c, s->name, n, pk, data, len, on_put, pc);
    if (rv != 0) {
        free(pc);
        prod.put_errors++;
        return false;
    }
    atomic_fetch_add(&s->sent, n);
    prod.sent_total += n;
    prod.inflight++;
    prod.put_calls++;
    return true;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = fc_now_mono_ns();
    if (now >= prod.stop_mono) {
        atomic_store(&prod.stopped, true);
        event_base_loopexit(prod.base, NULL);
        return;
    }
    if (opt.rate > 0) {
        double due = opt.rate * opt.streams * (double)(now - prod.t0_mono) / 1e9;
        while ((double)prod.sent_total + 0.5 < due && prod.inflight < opt.inflight) {
            size_t want = (size_t)(due - (double)prod.sent_total + 0.5);
            if (want < 1)
                want = 1;
            if (!prod_send_one(want))
                break;
        }
    } else {
        while (prod.inflight < opt.inflight)
            if (!prod_send_one((size_t)opt.batch))
                break;
    }
}

static void producer_start(void)
{
    struct timeval tv = {0, 1000}; /* 1 ms: enough for 1,000 rec/s one by one */
    if (opt.rate <= 0 || opt.rate * opt.streams > 20000)
        tv.tv_usec = 200;
    prod.tick = event_new(prod.base, -1, EV_PERSIST, on_tick, NULL);
    event_add(prod.tick, &tv);
    prod.t0_mono = fc_now_mono_ns();
    prod.stop_mono = prod.t0_mono + (int64_t)(opt.duration * 1e9);
}

static void *producer_main(void *arg)
{
    producer_start();
    event_base_dispatch(prod.base);
    /* Collect the outstanding acknowledgements (bounded). */
    event_del(prod.tick);
    int64_t end = fc_now_mono_ns() + 10 * 1000000000LL;
    while (prod.inflight > 0 && fc_now_mono_ns() < end)
        fc_run_for(prod.base, 10);
    return NULL;
}

/* ---- report ----------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (ARG("--sluice"))
            opt.sluice = v;
        else if (ARG("--endpoint"))
            opt.endpoint = v;
        else if (ARG("--gw-arg")) {
            if (opt.n_gw_args == MAX_GW_ARGS)
                usage();
            opt.gw_args[opt.n_gw_args++] = v;
        } else if (ARG("--streams"))
            opt.streams = atoi(v);
        else if (ARG("--shards"))
            opt.shards = atoi(v);
        else if (ARG("--consumers"))
            opt.consumers = atoi(v);
        else if (ARG("--subs"))
            opt.subs = atoi(v);
        else if (ARG("--conns"))
            opt.conns = atoi(v);
        else if (ARG("--producer-conns"))
            opt.producer_conns = atoi(v);
        else if (ARG("--rate"))
            opt.rate = atof(v);
        else if (ARG("--size"))
            opt.size = (size_t)atol(v);
        else if (ARG("--batch"))
            opt.batch = atoi(v);
        else if (ARG("--inflight"))
            opt.inflight = atoi(v);
        else if (ARG("--duration"))
            opt.duration = atof(v);
        else if (ARG("--drain"))
            opt.drain = atof(v);
        else if (ARG("--max-records"))
            opt.max_records = (size_t)atol(v);
        else if (ARG("--label"))
            opt.label = v;
        else if (strcmp(a, "--one-thread") == 0)
            opt.one_thread = true;
        else if (strcmp(a, "--jansson") == 0)
            opt.jansson = true;
        else if (strcmp(a, "--tls") == 0)
            opt.tls = true;
        else
            usage();
#undef ARG
    }
    int max_subs = opt.streams * opt.shards * opt.consumers;
    if (opt.subs <= 0)
        opt.subs = max_subs;
    if (opt.streams < 1 || opt.streams > 1000 || opt.shards < 1 || opt.shards > 64 ||
        opt.consumers < 1 || opt.consumers > 10000 || opt.conns < 1 || opt.conns > 1000 ||
        opt.producer_conns < 1 || opt.producer_conns > 64 || opt.batch < 1 || opt.batch > 500 ||
        opt.inflight < 1 || opt.size < MIN_SIZE || opt.size > 1000000 || opt.duration <= 0 ||
        opt.duration > 3600 || opt.drain < 0 || opt.drain > 600)
        die("option out of range (consumers <= 10000 per stream, size >= %d, batch <= 500, "
            "duration <= 3600 s)",
            MIN_SIZE);
    if (opt.subs > max_subs)
        die("%d subscriptions need %d consumer-shard pairs; there are %d (Kinesis: one live "
            "subscription per consumer-shard: add --consumers or --streams)",
            opt.subs, opt.subs, max_subs);
    if (opt.size * (size_t)opt.batch > (4u << 20))
        die("--size x --batch must stay under 4 MiB (PutRecords limit 5 MiB)");
    if (!opt.max_records)
        opt.max_records = opt.rate > 0 ? (size_t)(opt.rate * opt.duration * 1.2) + 1000 : 5000000;
    signal(SIGPIPE, SIG_IGN);
    json_object_seed(0);

    if (opt.endpoint) {
        const char *colon = strrchr(opt.endpoint, ':');
        if (!colon || (size_t)(colon - opt.endpoint) >= sizeof host)
            die("--endpoint HOST:PORT (numeric IPv4)");
        memcpy(host, opt.endpoint, (size_t)(colon - opt.endpoint));
        host[colon - opt.endpoint] = 0;
        port = atoi(colon + 1);
    } else {
        static char maxc[16];
        if (opt.consumers > 20 && opt.n_gw_args + 2 <= MAX_GW_ARGS) {
            snprintf(maxc, sizeof maxc, "%d", opt.consumers);
            opt.gw_args[opt.n_gw_args++] = "--max-consumers";
            opt.gw_args[opt.n_gw_args++] = maxc;
        }
        start_gateway();
    }
    struct fc_conn_opts copts = {.tls = opt.tls};
    /* Precise clocks: libevent's default CLOCK_MONOTONIC_COARSE ticks every
     * 4 ms here, which made the 1 ms pacing timer send bursts of 4-8
     * PutRecords at once instead of one per millisecond. */
    struct event_config *pcfg = event_config_new();
    event_config_set_flag(pcfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    base = event_base_new_with_config(pcfg);
    struct fc_conn *ctl = fc_conn_new(base, host, port, &copts);
    if (!ctl)
        die("cannot connect to %s:%d", host, port);

    /* Streams, consumers. */
    int64_t t_setup = fc_now_mono_ns();
    streams = calloc((size_t)opt.streams, sizeof *streams);
    for (int k = 0; k < opt.streams; k++) {
        setup_stream(ctl, k);
        streams[k].ack_ns = calloc(opt.max_records, sizeof *streams[k].ack_ns);
        streams[k].shard_of = calloc(opt.max_records, 1);
        streams[k].first = calloc(opt.max_records / 8 + 1, 1);
        if (!streams[k].ack_ns || !streams[k].shard_of)
            die("out of memory for %zu records per stream", opt.max_records);
    }
    cstats = calloc((size_t)(opt.streams * opt.consumers), sizeof *cstats);

    struct proc_sample p_base = proc_sample(); /* streams and consumers, no subscriptions */

    /* Subscriptions: sub t is consumer t % C of shard (t / C) % shards of
     * stream t / (C x shards), on connection t % N. */
    sub_conns = calloc((size_t)opt.conns, sizeof *sub_conns);
    for (int i = 0; i < opt.conns; i++)
        sub_conns[i] = fc_conn_new(base, host, port, &copts);
    subs = calloc((size_t)opt.subs, sizeof *subs);
    for (int t = 0; t < opt.subs; t++) {
        struct bsub *b = &subs[t];
        b->consumer = t % opt.consumers;
        b->shard = (t / opt.consumers) % opt.shards;
        b->stream = t / (opt.consumers * opt.shards);
        b->conn = t % opt.conns;
        b->retry = evtimer_new(base, on_retry, b);
        sub_open(b);
    }
    int64_t wait_end = fc_now_mono_ns() + 60 * 1000000000LL;
    for (;;) {
        int ready = 0, failed = 0;
        for (int t = 0; t < opt.subs; t++) {
            ready += subs[t].sub && fc_sub_stats(subs[t].sub)->got_initial;
            failed += subs[t].failed;
        }
        if (failed)
            for (int t = 0; t < opt.subs; t++)
                if (subs[t].failed)
                    die("subscription %d: %s", t, subs[t].error);
        if (ready == opt.subs)
            break;
        if (fc_now_mono_ns() > wait_end)
            die("only %d of %d subscriptions started within 60 s", ready, opt.subs);
        fc_run_for(base, 10);
    }
    double setup_s = (double)(fc_now_mono_ns() - t_setup) / 1e9;
    struct proc_sample p_idle = proc_sample();

    /* Produce. */
    prod.base = opt.one_thread ? base : event_base_new_with_config(pcfg);
    event_config_free(pcfg);
    prod.conns = calloc((size_t)opt.producer_conns, sizeof *prod.conns);
    for (int i = 0; i < opt.producer_conns; i++)
        prod.conns[i] = fc_conn_new(prod.base, host, port, &copts);
    prod.buf = malloc(opt.size * (size_t)opt.batch);
    memset(prod.buf, 'x', opt.size * (size_t)opt.batch);
    struct proc_sample p0 = proc_sample();
    int64_t t0 = fc_now_mono_ns();
    epoch_real_ns = fc_now_real_ns();
    pthread_t th;
    if (opt.one_thread)
        producer_start();
    else
        pthread_create(&th, NULL, producer_main, NULL);
    long rss_max = p0.rss_kb;
    int64_t hard_end = t0 + (int64_t)((opt.duration + 15) * 1e9);
    /* Receive while the producer runs. */
    for (;;) {
        fc_run_for(base, 100);
        struct proc_sample ps = proc_sample();
        if (ps.rss_kb > rss_max)
            rss_max = ps.rss_kb;
        if (atomic_load_explicit(&prod.stopped, memory_order_relaxed) ||
            fc_now_mono_ns() > hard_end)
            break;
        if ((double)(fc_now_mono_ns() - t0) / 1e9 > opt.duration + 0.05)
            break;
    }
    if (opt.one_thread)
        event_del(prod.tick); /* outstanding acks arrive in the drain below */
    else
        pthread_join(th, NULL);
    int64_t t_prod_end = fc_now_mono_ns();
    struct proc_sample p1 = proc_sample();
    int64_t drain_end = fc_now_mono_ns() + (int64_t)(opt.drain * 1e9);
    /* Every PutRecords answered first (with --one-thread the last ones are
     * answered here): a record acknowledged during the drain is one the
     * subscriptions must be waited for too, not counted lost. */
    for (bool answered = false; !answered && fc_now_mono_ns() <= drain_end;) {
        answered = true;
        for (int k = 0; k < opt.streams; k++)
            if (atomic_load(&streams[k].acked) + atomic_load(&streams[k].failed) <
                atomic_load(&streams[k].sent))
                answered = false;
        if (!answered)
            fc_run_for(base, 20);
    }
    /* Drain: until every subscription holds every acked record of its shard. */
    size_t *acked_per_shard = calloc((size_t)(opt.streams * opt.shards), sizeof *acked_per_shard);
    for (int k = 0; k < opt.streams; k++)
        for (size_t i = 0; i < atomic_load(&streams[k].sent); i++)
            if (atomic_load(&streams[k].ack_ns[i]))
                acked_per_shard[k * opt.shards + streams[k].shard_of[i]]++;
    for (;;) {
        bool all = true;
        for (int t = 0; t < opt.subs && all; t++)
            if (!subs[t].failed &&
                subs[t].deliveries < acked_per_shard[subs[t].stream * opt.shards + subs[t].shard])
                all = false;
        if (all || fc_now_mono_ns() > drain_end)
            break;
        fc_run_for(base, 20);
        struct proc_sample ps = proc_sample();
        if (ps.rss_kb > rss_max)
            rss_max = ps.rss_kb;
    }
    fc_run_for(base, 200); /* late duplicates */
    struct proc_sample p2 = proc_sample();
    double prod_s = (double)(t_prod_end - t0) / 1e9;

    /* Late acks. */
    for (size_t i = 0; i < n_pend; i++) {
        int64_t a = atomic_load(&streams[pend[i].stream].ack_ns[pend[i].idx]);
        if (a)
            sh_add(&lat_ack, pend[i].t - a);
    }

    /* Loss: acked records of its shard a subscription never saw. */
    uint64_t lost = 0, dups = 0, ooo = 0, foreign = 0, failed_subs = 0, resubs = 0;
    uint64_t acked_total = 0, sent_total = 0, put_failed = 0;
    for (int k = 0; k < opt.streams; k++) {
        acked_total += atomic_load(&streams[k].acked);
        sent_total += atomic_load(&streams[k].sent);
        put_failed += atomic_load(&streams[k].failed);
    }
    for (int t = 0; t < opt.subs; t++) {
        struct bsub *b = &subs[t];
        struct bstream *s = &streams[b->stream];
        uint64_t l = 0;
        size_t n = atomic_load(&s->sent);
        for (size_t i = 0; i < n; i++)
            if (atomic_load(&s->ack_ns[i]) && s->shard_of[i] == b->shard &&
                (i >= b->seen_bits || !(b->seen[i / 8] & (1u << (i % 8)))))
                l++;
        lost += l;
        cstats[b->stream * opt.consumers + b->consumer].lost += l;
        cstats[b->stream * opt.consumers + b->consumer].foreign += b->foreign;
        dups += b->dups;
        ooo += b->out_of_order;
        foreign += b->foreign;
        failed_subs += b->failed;
        resubs += (uint64_t)b->resubscribes;
    }

    /* Per-consumer rates over [first send, last receipt]. */
    double span_s = (double)(last_receipt_real_ns - epoch_real_ns) / 1e9;
    if (span_s <= 0)
        span_s = prod_s;
    int nc = opt.streams * opt.consumers;
    uint64_t *dv = malloc((size_t)nc * sizeof *dv);
    for (int i = 0; i < nc; i++)
        dv[i] = cstats[i].deliveries;
    qsort(dv, (size_t)nc, sizeof *dv, cmp_u64);
    double cpu_pct = p1.cpu_s >= 0 ? 100.0 * (p1.cpu_s - p0.cpu_s) / prod_s : -1;
    const double us = 1000.0;
    double q[] = {0.5, 0.9, 0.99, 0.999};
    double ls[4], la[4], lf[4];
    for (int i = 0; i < 4; i++) {
        lf[i] = sh_quantile(&lat_first, q[i]) / us;
        ls[i] = sh_quantile(&lat_send, q[i]) / us;
        la[i] = sh_quantile(&lat_ack, q[i]) / us;
    }

    /* Human table. */
    printf("sluice-bench-fanout %s\n", opt.label);
    printf("  %d stream(s) x %d shard(s), %d consumers/stream, %d subscriptions over %d "
           "connection(s); producer %s%.0f rec/s/stream, %zu B records, batch %d, %d conn(s), "
           "%.1f s (setup %.1f s)\n",
           opt.streams, opt.shards, opt.consumers, opt.subs, opt.conns,
           opt.rate > 0 ? "" : "flat out, measured ",
           opt.rate > 0 ? opt.rate : (double)sent_total / prod_s / opt.streams, opt.size,
           opt.batch, opt.producer_conns, prod_s, setup_s);
    printf("  produced %" PRIu64 " records (%.0f rec/s, %.2f MiB/s), acked %" PRIu64
           ", failed %" PRIu64 "%s%s\n",
           sent_total, (double)sent_total / prod_s,
           (double)sent_total * (double)opt.size / prod_s / 1048576.0, acked_total, put_failed,
           prod.first_error[0] ? ": " : "", prod.first_error);
    if (nc <= 40) {
        printf("  %-16s %12s %10s %10s %8s %8s\n", "stream/consumer", "delivered", "rec/s",
               "MiB/s", "lost", "dup");
        for (int i = 0; i < nc; i++)
            printf("  %5d/c%-9d %12" PRIu64 " %10.0f %10.3f %8" PRIu64 " %8" PRIu64 "\n",
                   i / opt.consumers, i % opt.consumers, cstats[i].deliveries,
                   (double)cstats[i].deliveries / span_s,
                   (double)cstats[i].bytes / span_s / 1048576.0, cstats[i].lost, cstats[i].dups);
    }
    printf("  per consumer delivered: min %" PRIu64 " median %" PRIu64 " max %" PRIu64
           " (%.0f rec/s median)\n",
           dv[0], dv[nc / 2], dv[nc - 1], (double)dv[nc / 2] / span_s);
    printf("  latency send->receipt  us: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  (n=%" PRIu64
           ")\n",
           ls[0], ls[1], ls[2], ls[3], sh_max(&lat_send) / us, lat_send.pos.n + lat_send.neg.n);
    printf("  latency send->first    us: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  (n=%" PRIu64
           ", the first subscription to get each record)\n",
           lf[0], lf[1], lf[2], lf[3], sh_max(&lat_first) / us, lat_first.pos.n + lat_first.neg.n);
    printf("  latency ack->receipt   us: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  (n=%" PRIu64
           ", %" PRIu64 " before the ack)\n",
           la[0], la[1], la[2], la[3], sh_max(&lat_ack) / us, lat_ack.pos.n + lat_ack.neg.n,
           lat_ack.neg.n);
    printf("  lost %" PRIu64 "  duplicated %" PRIu64 "  out of order %" PRIu64 "  foreign %" PRIu64
           "  failed subscriptions %" PRIu64 "  re-subscribes %" PRIu64 "\n",
           lost, dups, ooo, foreign, failed_subs, resubs);
    double per_sub = p_idle.rss_kb > 0 && p_base.rss_kb > 0
                         ? (double)(p_idle.rss_kb - p_base.rss_kb) / opt.subs
                         : -1.0;
    printf("  gateway: CPU %.0f%% while producing; RSS before subscribing %ld KiB, subscribed and "
           "idle %ld KiB (%.1f KiB per subscription), max %ld KiB, end %ld KiB, VmHWM %ld KiB\n",
           cpu_pct, p_base.rss_kb, p_idle.rss_kb, per_sub, rss_max, p2.rss_kb, p2.hwm_kb);
    for (int t = 0, shown = 0; t < opt.subs && shown < 5; t++)
        if (subs[t].failed) {
            printf("  subscription %d failed: %s\n", t, subs[t].error);
            shown++;
        }

    /* JSON line. */
    json_t *j = json_pack(
        "{s:s, s:s, s:{s:i, s:i, s:i, s:i, s:i, s:f, s:I, s:i, s:i, s:f, s:o}, "
        "s:I, s:I, s:I, s:f, s:f, s:f}",
        "bench", "fanout", "label", opt.label, "config", "streams", opt.streams, "shards",
        opt.shards, "consumers_per_stream", opt.consumers, "subscriptions", opt.subs, "connections",
        opt.conns, "rate_per_stream", opt.rate, "record_bytes", (json_int_t)opt.size, "batch",
        opt.batch, "producer_conns", opt.producer_conns, "duration_s", opt.duration, "gw_args",
        json_array(), "produced", (json_int_t)sent_total, "acked", (json_int_t)acked_total,
        "put_failed", (json_int_t)put_failed, "produce_s", prod_s, "produced_rec_s",
        (double)sent_total / prod_s, "span_s", span_s);
    for (int i = 0; i < opt.n_gw_args; i++)
        json_array_append_new(json_object_get(json_object_get(j, "config"), "gw_args"),
                              json_string(opt.gw_args[i]));
    json_object_set_new(json_object_get(j, "config"), "one_thread", json_boolean(opt.one_thread));
    json_t *cons = json_array();
    for (int i = 0; i < nc && nc <= 100; i++)
        json_array_append_new(
            cons, json_pack("{s:i, s:i, s:I, s:f, s:f, s:I, s:I}", "stream", i / opt.consumers,
                            "consumer", i % opt.consumers, "delivered",
                            (json_int_t)cstats[i].deliveries, "rec_s",
                            (double)cstats[i].deliveries / span_s, "mib_s",
                            (double)cstats[i].bytes / span_s / 1048576.0, "lost",
                            (json_int_t)cstats[i].lost, "dup", (json_int_t)cstats[i].dups));
    json_object_set_new(j, "consumers", cons);
    json_object_set_new(j, "delivered_per_consumer",
                        json_pack("{s:I, s:I, s:I, s:f}", "min", (json_int_t)dv[0], "median",
                                  (json_int_t)dv[nc / 2], "max", (json_int_t)dv[nc - 1],
                                  "median_rec_s", (double)dv[nc / 2] / span_s));
    const char *qn[] = {"p50", "p90", "p99", "p999"};
    json_t *js = json_object(), *ja = json_object(), *jf = json_object();
    for (int i = 0; i < 4; i++) {
        json_object_set_new(jf, qn[i], json_real(isnan(lf[i]) ? -1 : lf[i]));
        json_object_set_new(js, qn[i], json_real(isnan(ls[i]) ? -1 : ls[i]));
        json_object_set_new(ja, qn[i], json_real(isnan(la[i]) ? -1 : la[i]));
    }
    json_object_set_new(js, "max", json_real(sh_max(&lat_send) / us));
    json_object_set_new(ja, "max", json_real(sh_max(&lat_ack) / us));
    json_object_set_new(js, "n", json_integer((json_int_t)(lat_send.pos.n + lat_send.neg.n)));
    json_object_set_new(ja, "n", json_integer((json_int_t)(lat_ack.pos.n + lat_ack.neg.n)));
    json_object_set_new(ja, "before_ack", json_integer((json_int_t)lat_ack.neg.n));
    json_object_set_new(jf, "max", json_real(sh_max(&lat_first) / us));
    json_object_set_new(jf, "n", json_integer((json_int_t)(lat_first.pos.n + lat_first.neg.n)));
    json_object_set_new(j, "latency_send_us", js);
    json_object_set_new(j, "latency_first_us", jf);
    json_object_set_new(j, "latency_ack_us", ja);
    json_object_set_new(
        j, "integrity",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "lost", (json_int_t)lost, "duplicated",
                  (json_int_t)dups, "out_of_order", (json_int_t)ooo, "foreign",
                  (json_int_t)foreign, "failed_subscriptions", (json_int_t)failed_subs,
                  "resubscribes", (json_int_t)resubs));
    json_object_set_new(j, "gateway",
                        json_pack("{s:f, s:I, s:I, s:f, s:I, s:I, s:I, s:b}", "cpu_pct", cpu_pct,
                                  "rss_base_kb", (json_int_t)p_base.rss_kb,
                                  "rss_idle_kb", (json_int_t)p_idle.rss_kb, "rss_per_sub_kb",
                                  per_sub,
                                  "rss_max_kb", (json_int_t)rss_max, "rss_end_kb",
                                  (json_int_t)p2.rss_kb, "vmhwm_kb", (json_int_t)p2.hwm_kb,
                                  "started_here", opt.endpoint == NULL));
    char *line = json_dumps(j, JSON_COMPACT);
    printf("%s\n", line);
    free(line);
    json_decref(j);
    fflush(stdout);

    /* Teardown. */
    for (int i = 0; i < opt.producer_conns; i++)
        fc_conn_free(prod.conns[i]);
    event_free(prod.tick);
    if (!opt.one_thread)
        event_base_free(prod.base);
    for (int t = 0; t < opt.subs; t++) {
        event_free(subs[t].retry);
        free(subs[t].seen);
    }
    for (int i = 0; i < opt.conns; i++)
        fc_conn_free(sub_conns[i]);
    fc_conn_free(ctl);
    event_base_free(base);
    for (int k = 0; k < opt.streams; k++) {
        free(streams[k].ack_ns);
        free(streams[k].shard_of);
        free(streams[k].first);
        free(streams[k].consumer_arn);
    }
    kill_gateway();
    bool ok = lost == 0 && dups == 0 && ooo == 0 && foreign == 0 && failed_subs == 0 && put_failed == 0;
    free(streams);
    free(subs);
    free(cstats);
    free(sub_conns);
    free(prod.conns);
    free(prod.buf);
    free(pend);
    free(acked_per_shard);
    free(dv);
    return ok ? 0 : 1;
}
