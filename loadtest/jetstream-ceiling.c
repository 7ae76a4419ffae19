/* jetstream-ceiling.c - JetStream's own rates from a small libnats client
 * (sluice-bench-jetstream; not a ctest test): the ceiling the JetStream
 * backend of issue 15 is measured against. PutRecords on R3 is to reach
 * 0.8x the async publish rate measured here for the same size and replicas;
 * fan-out send -> receipt p50 at most 2x the publish -> receive p50.
 *
 * It creates a stream of its own (unique name, subjects NAME.>, file
 * storage, --replicas R), runs one or both phases, and deletes the stream:
 *
 *   publish  --count N messages of --size S bytes to NAME.p with
 *            js_PublishAsync, at most --window W without a PubAck (the
 *            context's PublishAsync.MaxPending: a publish stalls until an
 *            ack frees a slot), every PubAck counted in the ack handler. The
 *            clock runs from the first publish to the return of
 *            js_PublishAsyncComplete. msgs/s and MiB/s of payload.
 *            --msg-id: every message carries a unique Nats-Msg-Id header, so
 *            the server keeps its de-duplication window as it does for the
 *            gateway's records. --follow: an ordered push consumer on NAME.p
 *            receives every message during the phase (the clock then also
 *            waits for the last delivery), as each gateway's copy of a
 *            stream does. With both: what the jetstream backend's design
 *            asks of the servers per record, without the gateway.
 *   latency  one publisher at --rate msgs/s (paced on absolute times, async
 *            publish so it never waits for an ack) to NAME.l, an ordered push
 *            consumer on NAME.l receiving; publish -> receive and publish ->
 *            PubAck in µs (p50, p99, max), messages lost and duplicated.
 *            At most --latency-count messages (default rate x duration).
 *
 * Each phase stops at --duration seconds even if its count is not reached
 * (reported as "capped"); every wait for acks or deliveries is bounded too.
 * Payloads carry the publish time (CLOCK_MONOTONIC ns; publisher and
 * subscriber are this one process) and the message's index.
 *
 *   sluice-bench-jetstream [--url nats://127.0.0.1:4222[,nats://...]]
 *       [--replicas R] [--size S] [--count N] [--window W] [--rate R]
 *       [--latency-count N] [--duration SEC] [--mode both|publish|latency]
 *       [--send-asap] [--label TEXT]
 *
 * --send-asap: natsOptions_SetSendAsap, each publish written to the socket
 * by the publishing thread. By default libnats leaves it in its write
 * buffer for its flusher thread, which waits up to 1 ms for more
 * (conn.c, _flusher, v3.4.1): throughput, at a cost of ~0.5 ms of latency
 * on a lone message. The latency ceiling wants --send-asap.
 *
 * Threads: libnats calls the ack handler from the thread delivering the
 * context's reply subscription and the consumer's callback from that
 * subscription's own thread; they write disjoint slots of preallocated
 * arrays and publish progress through atomics, which the main thread reads.
 *
 * Output: a table on stdout, then one JSON line starting with
 * {"bench":"jetstream". Exit status 0 when every message was acknowledged
 * (and, in the latency phase, received exactly once), 1 otherwise, 2 on a
 * setup failure.
 */
#include <inttypes.h>
#include <nats/nats.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_SIZE 16 /* publish ns, index */
#define MAX_URLS 16

static struct {
    const char *url, *label, *mode;
    int replicas, window;
    size_t size, count, latency_count;
    double rate, duration;
    bool send_asap, msg_id, follow;
} opt = {
    .url = "nats://127.0.0.1:4222",
    .label = "",
    .mode = "both",
    .replicas = 1,
    .window = 4096,
    .size = 100,
    .count = 200000,
    .rate = 1000,
    .duration = 30,
};

static natsConnection *conn;
static jsCtx *js;
static char stream[64];
static bool stream_made;

static void usage(void)
{
    fprintf(stderr,
            "usage: sluice-bench-jetstream [--url nats://HOST:PORT[,nats://...]] [--replicas R]\n"
            "  [--size S] [--count N] [--window W] [--rate R] [--latency-count N]\n"
            "  [--duration SEC] [--mode both|publish|latency] [--send-asap] [--msg-id]\n"
            "  [--follow] [--label TEXT]\n");
    exit(2);
}

static void cleanup(void)
{
    /* The stream is the benchmark's own: never leave it behind on a shared
     * cluster, even when failing. */
    if (stream_made) {
        jsErrCode jerr = 0;
        natsStatus s = js_DeleteStream(js, stream, NULL, &jerr);
        if (s != NATS_OK)
            fprintf(stderr, "sluice-bench-jetstream: deleting stream %s: %s (%d)\n", stream,
                    natsStatus_GetText(s), (int)jerr);
        stream_made = false;
    }
    jsCtx_Destroy(js);
    js = NULL;
    natsConnection_Destroy(conn);
    conn = NULL;
    nats_CloseAndWait(5000);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sluice-bench-jetstream: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    nats_PrintLastErrorStack(stderr);
    cleanup();
    exit(2);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

static void sleep_ms(int ms) { sleep_until(now_ns() + (int64_t)ms * 1000000); }

/* Payload header: publish time and index, native byte order (one process). */
static void stamp(uint8_t *buf, int64_t t, uint64_t idx)
{
    memcpy(buf, &t, 8);
    memcpy(buf + 8, &idx, 8);
}

static bool unstamp(natsMsg *m, int64_t *t, uint64_t *idx)
{
    if (!m || natsMsg_GetDataLength(m) < MIN_SIZE)
        return false;
    const char *d = natsMsg_GetData(m);
    memcpy(t, d, 8);
    memcpy(idx, d + 8, 8);
    return true;
}

/* ---- the ack handler, shared by both phases ------------------------------------ */

struct acks {
    atomic_uint_fast64_t ok, failed;
    /* latency phase only: publish -> PubAck ns per message index */
    int64_t *ack_ns;
    size_t n;
    char first_err[160];
    atomic_bool have_err;
};

static struct acks acks;

static void on_ack(jsCtx *ctx, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct acks *a = closure;
    int64_t t;
    uint64_t idx;
    if (pa && !pa->Duplicate) {
        if (a->ack_ns && unstamp(msg, &t, &idx) && idx < a->n)
            a->ack_ns[idx] = now_ns() - t;
        atomic_fetch_add_explicit(&a->ok, 1, memory_order_release);
    } else {
        /* Only this thread writes first_err; have_err publishes it. */
        if (!atomic_load(&a->have_err)) {
            snprintf(a->first_err, sizeof a->first_err, "%s (%s, code %d)",
                     pae ? pae->ErrText : "duplicate", pae ? natsStatus_GetText(pae->Err) : "",
                     pae ? (int)pae->ErrCode : 0);
            atomic_store(&a->have_err, true);
        }
        atomic_fetch_add_explicit(&a->failed, 1, memory_order_release);
    }
    /* The handler owns the original message (nats.h, jsPubAckHandler). */
    natsMsg_Destroy(msg);
}

/* Publishes one message asynchronously; a full window makes js_PublishAsync
 * stall for StallWait and fail with NATS_TIMEOUT, which is retried until
 * the deadline. */
static bool publish(const char *subj, const uint8_t *buf, size_t len, int64_t deadline,
                    uint64_t idx)
{
    for (;;) {
        natsStatus s;
        if (opt.msg_id) {
            /* Nats-Msg-Id as the gateway sets it: an origin and a counter */
            char id[48];
            snprintf(id, sizeof id, "bench%ld-%" PRIu64, (long)getpid(), idx);
            natsMsg *m = NULL;
            s = natsMsg_Create(&m, subj, NULL, (const char *)buf, (int)len);
            if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
            if (s == NATS_OK)
                s = js_PublishMsgAsync(js, &m, NULL);
            /* on success the library owns "m" and set it to NULL */
            natsMsg_Destroy(m);
        } else {
            s = js_PublishAsync(js, subj, buf, (int)len, NULL);
        }
        if (s == NATS_OK)
            return true;
        if (s != NATS_TIMEOUT)
            die("js_PublishAsync: %s", natsStatus_GetText(s));
        if (now_ns() >= deadline)
            return false;
    }
}

/* Waits (bounded) for the outstanding PubAcks; returns how many are still
 * missing, reclaimed from the library so they are not acked afterwards. */
static size_t complete(int64_t wait_ms)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = wait_ms;
    if (js_PublishAsyncComplete(js, &po) == NATS_OK)
        return 0;
    natsMsgList pending = {0};
    if (js_PublishAsyncGetPendingList(&pending, js) != NATS_OK)
        return 0;
    size_t n = (size_t)pending.Count;
    natsMsgList_Destroy(&pending);
    return n;
}

/* ---- percentiles ------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

struct pct {
    double p50, p99, max; /* µs */
};

/* Sorts v[0..n) in place; entries < 0 (never filled) must be left out by
 * the caller. */
static struct pct percentiles(int64_t *v, size_t n)
{
    struct pct p = {0, 0, 0};
    if (!n)
        return p;
    qsort(v, n, sizeof *v, cmp_i64);
    p.p50 = (double)v[(n - 1) / 2] / 1e3;
    p.p99 = (double)v[(size_t)((double)(n - 1) * 0.99)] / 1e3;
    p.max = (double)v[n - 1] / 1e3;
    return p;
}

/* ---- publish phase ----------------------------------------------------------- */

static atomic_uint_fast64_t followed; /* --follow: messages delivered */

static void on_follow(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    atomic_fetch_add_explicit(&followed, 1, memory_order_release);
    natsMsg_Destroy(msg);
}

/* An ordered push consumer on "subj" from its first message (see
 * run_latency for the options). */
static natsSubscription *follow(const char *subj, natsMsgHandler cb, void *arg)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Subscribe(&sub, js, subj, cb, arg, NULL, &so, &jerr);
    if (s != NATS_OK)
        die("js_Subscribe (ordered consumer): %s (%d)", natsStatus_GetText(s), (int)jerr);
    return sub;
}

struct pub_result {
    size_t sent, acked, failed, unacked, followed;
    double seconds, msgs_s, mib_s;
    bool capped;
};

static struct pub_result run_publish(void)
{
    char subj[80];
    snprintf(subj, sizeof subj, "%s.p", stream);
    uint8_t *buf = calloc(1, opt.size);
    if (!buf)
        die("out of memory");
    for (size_t i = MIN_SIZE; i < opt.size; i++)
        buf[i] = (uint8_t)(i * 31 + 7);
    struct pub_result r = {0};
    natsSubscription *sub = opt.follow ? follow(subj, on_follow, NULL) : NULL;
    uint64_t ok0 = atomic_load(&acks.ok), failed0 = atomic_load(&acks.failed);
    int64_t t0 = now_ns(), deadline = t0 + (int64_t)(opt.duration * 1e9);
    for (size_t i = 0; i < opt.count; i++) {
        /* the clock is read once per 256 messages: at 10^6 msgs/s a
         * clock_gettime per message would be a measurable share */
        if ((i & 255) == 0 && now_ns() >= deadline) {
            r.capped = true;
            break;
        }
        stamp(buf, 0, i);
        if (!publish(subj, buf, opt.size, deadline, i)) {
            r.capped = true;
            break;
        }
        r.sent++;
    }
    int64_t left_ms = (deadline - now_ns()) / 1000000;
    r.unacked = complete(left_ms > 10000 ? left_ms : 10000);
    r.acked = (size_t)(atomic_load(&acks.ok) - ok0);
    r.failed = (size_t)(atomic_load(&acks.failed) - failed0);
    if (sub) {
        /* the follower's last delivery trails the last ack: bounded wait */
        int64_t end = now_ns() + 10 * 1000000000LL;
        while (atomic_load_explicit(&followed, memory_order_acquire) < r.acked && now_ns() < end)
            sleep_ms(1);
    }
    int64_t t1 = now_ns();
    if (sub) {
        r.followed = (size_t)atomic_load_explicit(&followed, memory_order_acquire);
        if (natsSubscription_Drain(sub) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(sub, 5000);
        natsSubscription_Destroy(sub);
    }
    r.seconds = (double)(t1 - t0) / 1e9;
    r.msgs_s = (double)r.acked / r.seconds;
    r.mib_s = r.msgs_s * (double)opt.size / (1024.0 * 1024.0);
    free(buf);
    return r;
}

/* ---- latency phase ----------------------------------------------------------- */

struct recv {
    int64_t *recv_ns; /* publish -> receive per index, -1 until received */
    size_t n;
    atomic_uint_fast64_t received, dup, stray;
};

static struct recv rcv;

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct recv *r = closure;
    int64_t t, now = now_ns();
    uint64_t idx;
    if (unstamp(msg, &t, &idx) && idx < r->n) {
        if (r->recv_ns[idx] >= 0) {
            atomic_fetch_add_explicit(&r->dup, 1, memory_order_relaxed);
        } else {
            r->recv_ns[idx] = now - t;
            atomic_fetch_add_explicit(&r->received, 1, memory_order_release);
        }
    } else {
        atomic_fetch_add_explicit(&r->stray, 1, memory_order_relaxed);
    }
    natsMsg_Destroy(msg);
}

struct lat_result {
    size_t sent, acked, failed, unacked, received, lost, dup;
    double seconds, rate;
    struct pct recv, ack;
    bool capped;
};

static struct lat_result run_latency(void)
{
    char subj[80];
    snprintf(subj, sizeof subj, "%s.l", stream);
    size_t n = opt.latency_count;
    rcv.n = n;
    rcv.recv_ns = malloc(n * sizeof *rcv.recv_ns);
    int64_t *ack_ns = malloc(n * sizeof *ack_ns);
    uint8_t *buf = calloc(1, opt.size);
    if (!rcv.recv_ns || !ack_ns || !buf)
        die("out of memory");
    for (size_t i = 0; i < n; i++)
        rcv.recv_ns[i] = ack_ns[i] = -1;
    for (size_t i = MIN_SIZE; i < opt.size; i++)
        buf[i] = (uint8_t)(i * 31 + 7);

    /* An ordered consumer (3.4: jsSubOptions.Ordered): ephemeral, no acks,
     * flow control and heartbeats set by the library, which recreates it
     * from the last stream sequence on a gap. The subject is fresh, so
     * DeliverAll starts at the first message published below. */
    natsSubscription *sub = follow(subj, on_msg, &rcv);

    /* The ack handler fills ack_ns from here on (the publish phase, if any,
     * is complete: no ack of it is still in flight). */
    acks.n = n;
    acks.ack_ns = ack_ns;
    uint64_t ok0 = atomic_load(&acks.ok), failed0 = atomic_load(&acks.failed);

    struct lat_result r = {0};
    int64_t period = (int64_t)(1e9 / opt.rate);
    int64_t t0 = now_ns(), deadline = t0 + (int64_t)(opt.duration * 1e9);
    for (size_t i = 0; i < n; i++) {
        int64_t due = t0 + (int64_t)i * period;
        if (due >= deadline) {
            r.capped = true;
            break;
        }
        sleep_until(due);
        stamp(buf, now_ns(), i);
        if (!publish(subj, buf, opt.size, deadline, (uint64_t)1 << 40 | i)) {
            r.capped = true;
            break;
        }
        r.sent++;
    }
    r.seconds = (double)(now_ns() - t0) / 1e9;
    r.rate = (double)r.sent / r.seconds;
    r.unacked = complete(10000);
    /* Deliveries trail the acks by little; wait for them, bounded. */
    int64_t drain_end = now_ns() + 5 * 1000000000LL;
    while (atomic_load_explicit(&rcv.received, memory_order_acquire) < r.sent &&
           now_ns() < drain_end)
        sleep_ms(1);
    r.acked = (size_t)(atomic_load_explicit(&acks.ok, memory_order_acquire) - ok0);
    r.failed = (size_t)(atomic_load(&acks.failed) - failed0);

    /* Drain: the server-side consumer goes, and once the drain completes no
     * callback runs any more, so the arrays are the main thread's alone. */
    bool drained = natsSubscription_Drain(sub) == NATS_OK &&
                   natsSubscription_WaitForDrainCompletion(sub, 5000) == NATS_OK;
    natsSubscription_Destroy(sub);
    acks.ack_ns = NULL;
    acks.n = 0;

    r.received = (size_t)atomic_load_explicit(&rcv.received, memory_order_acquire);
    r.dup = (size_t)atomic_load(&rcv.dup);
    r.lost = r.sent > r.received ? r.sent - r.received : 0;
    size_t k = 0;
    for (size_t i = 0; i < r.sent; i++)
        if (rcv.recv_ns[i] >= 0)
            rcv.recv_ns[k++] = rcv.recv_ns[i];
    r.recv = percentiles(rcv.recv_ns, k);
    k = 0;
    for (size_t i = 0; i < r.sent; i++)
        if (ack_ns[i] >= 0)
            ack_ns[k++] = ack_ns[i];
    r.ack = percentiles(ack_ns, k);
    /* Not drained: a late callback may still write recv_ns, so it is left
     * allocated (the process ends soon after). */
    if (drained)
        free(rcv.recv_ns);
    else
        fprintf(stderr, "sluice-bench-jetstream: the consumer did not drain in 5 s\n");
    free(ack_ns);
    free(buf);
    return r;
}

/* ---- setup ------------------------------------------------------------------------- */

static void connect_all(void)
{
    /* natsOptions_SetServers takes an array; --url is the NATS_URL form,
     * comma separated. */
    static char urls[1024];
    const char *servers[MAX_URLS];
    int n = 0;
    if (strlen(opt.url) >= sizeof urls)
        die("--url too long");
    strcpy(urls, opt.url);
    for (char *save = NULL, *u = strtok_r(urls, ",", &save); u && n < MAX_URLS;
         u = strtok_r(NULL, ",", &save))
        servers[n++] = u;
    if (!n)
        die("--url is empty");

    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, servers, n);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 5000);
    /* A benchmark that loses its server reports failure rather than
     * hiding a reconnect inside its figures. */
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, opt.send_asap);
    if (s == NATS_OK)
        s = natsConnection_Connect(&conn, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK)
        die("connecting to %s: %s", opt.url, natsStatus_GetText(s));

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000; /* stream create/delete on R3 include a RAFT round */
    jo.PublishAsync.MaxPending = opt.window;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &acks;
    jo.PublishAsync.StallWait = 100;
    s = natsConnection_JetStream(&js, conn, &jo);
    if (s != NATS_OK)
        die("natsConnection_JetStream: %s", natsStatus_GetText(s));

    /* Unique per run: two benchmarks on one cluster never share a stream. */
    snprintf(stream, sizeof stream, "SLUICE_BENCH_%ld_%" PRId64, (long)getpid(), now_ns() / 1000);
    char subjects[80];
    snprintf(subjects, sizeof subjects, "%s.>", stream);
    const char *subj_list[] = {subjects};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = stream;
    sc.Subjects = subj_list;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = opt.replicas;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    s = js_AddStream(&si, js, &sc, NULL, &jerr);
    if (s != NATS_OK)
        die("js_AddStream %s (R%d): %s (%d)", stream, opt.replicas, natsStatus_GetText(s),
            (int)jerr);
    stream_made = true;
    jsStreamInfo_Destroy(si);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (ARG("--url"))
            opt.url = v;
        else if (ARG("--replicas"))
            opt.replicas = atoi(v);
        else if (ARG("--size"))
            opt.size = (size_t)atol(v);
        else if (ARG("--count"))
            opt.count = (size_t)atol(v);
        else if (ARG("--window"))
            opt.window = atoi(v);
        else if (ARG("--rate"))
            opt.rate = atof(v);
        else if (ARG("--latency-count"))
            opt.latency_count = (size_t)atol(v);
        else if (ARG("--duration"))
            opt.duration = atof(v);
        else if (ARG("--mode"))
            opt.mode = v;
        else if (ARG("--label"))
            opt.label = v;
        else if (strcmp(a, "--send-asap") == 0)
            opt.send_asap = true;
        else if (strcmp(a, "--msg-id") == 0)
            opt.msg_id = true;
        else if (strcmp(a, "--follow") == 0)
            opt.follow = true;
        else
            usage();
#undef ARG
    }
    bool do_pub = strcmp(opt.mode, "both") == 0 || strcmp(opt.mode, "publish") == 0;
    bool do_lat = strcmp(opt.mode, "both") == 0 || strcmp(opt.mode, "latency") == 0;
    if (!do_pub && !do_lat)
        usage();
    if (!opt.latency_count)
        opt.latency_count = opt.rate * opt.duration >= 1 ? (size_t)(opt.rate * opt.duration) : 1;
    if (opt.replicas < 1 || opt.replicas > 5 || opt.size < MIN_SIZE || opt.size > (8u << 20) ||
        opt.count < 1 || opt.count > 100000000 || opt.window < 1 || opt.window > 1000000 ||
        opt.rate <= 0 || opt.rate > 1e6 || opt.latency_count > 10000000 || opt.duration <= 0 ||
        opt.duration > 3600) {
        fprintf(stderr,
                "sluice-bench-jetstream: option out of range (replicas 1..5, size %d.."
                "8 MiB, window >= 1, rate > 0, duration <= 3600 s)\n",
                MIN_SIZE);
        return 2;
    }

    connect_all();
    struct pub_result p = {0};
    struct lat_result l = {0};
    if (do_pub)
        p = run_publish();
    if (do_lat)
        l = run_latency();
    char err[sizeof acks.first_err] = "";
    if (atomic_load(&acks.have_err))
        memcpy(err, acks.first_err, sizeof err);
    cleanup();

    printf("JetStream %s R%d, %zu-byte messages%s\n", opt.url, opt.replicas, opt.size,
           opt.send_asap ? ", send asap" : "");
    if (do_pub)
        printf("publish%s%s: %zu sent, %zu acked, %zu failed, %zu unacked%s in %.2f s%s: "
               "%.0f msgs/s, %.1f MiB/s (window %d)\n",
               opt.msg_id ? " with Nats-Msg-Id" : "", opt.follow ? ", followed" : "", p.sent,
               p.acked, p.failed, p.unacked,
               opt.follow && p.followed < p.acked ? " (not all delivered)" : "", p.seconds,
               p.capped ? " (capped)" : "", p.msgs_s, p.mib_s, opt.window);
    if (do_lat)
        printf("latency: %zu sent at %.0f/s%s, %zu received, %zu lost, %zu duplicated; "
               "publish->receive p50 %.0f p99 %.0f max %.0f us; publish->ack p50 %.0f "
               "p99 %.0f max %.0f us\n",
               l.sent, l.rate, l.capped ? " (capped)" : "", l.received, l.lost, l.dup, l.recv.p50,
               l.recv.p99, l.recv.max, l.ack.p50, l.ack.p99, l.ack.max);
    if (err[0])
        printf("first publish error: %s\n", err);

    printf("{\"bench\":\"jetstream\",\"label\":\"%s\",\"replicas\":%d,\"size\":%zu,"
           "\"send_asap\":%s",
           opt.label, opt.replicas, opt.size, opt.send_asap ? "true" : "false");
    if (do_pub)
        printf(",\"publish\":{\"count\":%zu,\"sent\":%zu,\"acked\":%zu,\"failed\":%zu,"
               "\"unacked\":%zu,\"window\":%d,\"seconds\":%.3f,\"capped\":%s,"
               "\"msgs_per_s\":%.0f,\"mib_per_s\":%.2f,\"msg_id\":%s,\"follow\":%s,"
               "\"followed\":%zu}",
               opt.count, p.sent, p.acked, p.failed, p.unacked, opt.window, p.seconds,
               p.capped ? "true" : "false", p.msgs_s, p.mib_s, opt.msg_id ? "true" : "false",
               opt.follow ? "true" : "false", p.followed);
    if (do_lat)
        printf(",\"latency\":{\"rate\":%.0f,\"sent\":%zu,\"acked\":%zu,\"failed\":%zu,"
               "\"received\":%zu,\"lost\":%zu,\"dup\":%zu,\"capped\":%s,"
               "\"recv_p50_us\":%.1f,\"recv_p99_us\":%.1f,\"recv_max_us\":%.1f,"
               "\"ack_p50_us\":%.1f,\"ack_p99_us\":%.1f,\"ack_max_us\":%.1f}",
               l.rate, l.sent, l.acked, l.failed, l.received, l.lost, l.dup,
               l.capped ? "true" : "false", l.recv.p50, l.recv.p99, l.recv.max, l.ack.p50,
               l.ack.p99, l.ack.max);
    printf("}\n");

    bool bad = (do_pub && (p.acked != p.sent || p.failed || p.unacked ||
                           (opt.follow && p.followed < p.acked))) ||
               (do_lat && (l.acked != l.sent || l.lost || l.dup || l.failed || l.unacked));
    return bad ? 1 : 0;
}
