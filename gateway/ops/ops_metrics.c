/* ops_metrics.c - GET /metrics (Prometheus text format) and GET /v1/stats
 * (the console's JSON).
 *
 * A scrape is a streamed reply produced a slice at a time (SCRAPE_SLICE
 * bytes per pull): with 10,000 monitored shards it is megabytes of text,
 * and rendering it in one go would stall the loop for every other client.
 * Between slices the loop serves everyone else; the scrape resumes from a
 * cursor (family, stream name, shard index), so a stream created or deleted
 * meanwhile is simply seen or not, never half-read. Memory per scrape is
 * one slice plus what the peer has not taken (the transport pulls only as
 * the peer reads).
 *
 * Names follow Prometheus' conventions: sluice_ prefix, base units
 * (_seconds, _bytes), counters ending in _total. What CloudWatch calls
 * IncomingRecords, GetRecords.IteratorAgeMilliseconds, MillisBehindLatest...
 * is named in each family's help. */
#include <dirent.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "app.h"
#include "fanout.h"
#include "json.h"
#include "mem.h"
#include "metrics.h"
#include "ops.h"
#include "prom.h"
#include "router.h"
#include "server.h"

#define SCRAPE_SLICE (64u * 1024) /* bytes rendered per pull */
#define NAMES_BATCH 64

/* ---- live subscriptions, by consumer ---------------------------------------- */

struct sub_agg {
    char *arn;
    uint64_t open;
    int64_t worst_behind_ms;
};

struct sub_snapshot {
    struct sub_agg *v;
    size_t n, cap;
    uint64_t by_format[2]; /* event stream, SSE */
    uint64_t tails;
};

static void snap_add(void *arg, const struct gw_fanout_sub_info *info)
{
    struct sub_snapshot *sn = arg;
    sn->by_format[info->fmt == GW_FANOUT_SSE]++;
    if (!*info->consumer_arn) {
        sn->tails++;
        return;
    }
    for (size_t i = 0; i < sn->n; i++)
        if (strcmp(sn->v[i].arn, info->consumer_arn) == 0) {
            sn->v[i].open++;
            if (info->millis_behind > sn->v[i].worst_behind_ms)
                sn->v[i].worst_behind_ms = info->millis_behind;
            return;
        }
    if (sn->n == sn->cap) {
        sn->cap = sn->cap ? sn->cap * 2 : 16;
        sn->v = xrealloc(sn->v, sn->cap * sizeof *sn->v);
    }
    sn->v[sn->n++] = (struct sub_agg){xstrdup(info->consumer_arn), 1, info->millis_behind};
}

static int agg_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sub_agg *)a)->arn, ((const struct sub_agg *)b)->arn);
}

static void snap_take(struct gw_app *app, struct sub_snapshot *sn)
{
    memset(sn, 0, sizeof *sn);
    gw_fanout_each(app->fanout, snap_add, sn);
    if (sn->n)
        qsort(sn->v, sn->n, sizeof *sn->v, agg_cmp);
}

static const struct sub_agg *snap_find(const struct sub_snapshot *sn, const char *arn)
{
    struct sub_agg key = {.arn = (char *)arn};
    return sn->n ? bsearch(&key, sn->v, sn->n, sizeof *sn->v, agg_cmp) : NULL;
}

static void snap_free(struct sub_snapshot *sn)
{
    for (size_t i = 0; i < sn->n; i++)
        free(sn->v[i].arn);
    free(sn->v);
}

/* ---- the process ------------------------------------------------------------ */

struct proc_stats {
    uint64_t rss_bytes, open_fds, max_fds;
    double cpu_seconds;
};

#define FDS_PER_SLICE 1024

/* Counts /proc/self/fd up to FDS_PER_SLICE entries at a time: with the
 * store's descriptor cache full there are thousands, and listing them in
 * one go would hold the loop for milliseconds. Returns true when done
 * (*dir closed). */
static bool count_fds(DIR **dir, uint64_t *n)
{
    if (!*dir)
        return true;
    for (int i = 0; i < FDS_PER_SLICE; i++) {
        struct dirent *e = readdir(*dir);
        if (!e) {
            closedir(*dir);
            *dir = NULL;
            if (*n > 0)
                (*n)--; /* the directory's own descriptor */
            return true;
        }
        if (e->d_name[0] != '.')
            (*n)++;
    }
    return false;
}

/* Everything but the descriptor count (count_fds). */
static void proc_stats(struct proc_stats *p)
{
    memset(p, 0, sizeof *p);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, rss;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &rss) == 2)
            p->rss_bytes = rss * (uint64_t)sysconf(_SC_PAGESIZE);
        fclose(f);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        p->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        p->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static const char *const conn_kind_proto[GW_CONN_KINDS] = {"http/1.1", "http/1.1", "h2c", "h2"};
static const char *const conn_kind_tls[GW_CONN_KINDS] = {"false", "true", "false", "true"};

/* A family of one unlabelled sample. */
static void one_u64(struct evbuffer *out, const char *name, const char *type, const char *help,
                    uint64_t v)
{
    gw_prom_family(out, name, type, help);
    gw_prom_u64(out, name, NULL, 0, v);
}

static void one_double(struct evbuffer *out, const char *name, const char *type, const char *help,
                       double v)
{
    gw_prom_family(out, name, type, help);
    gw_prom_double(out, name, NULL, 0, v);
}

/* A histogram family of one unlabelled series, from the store's
 * non-cumulative buckets. */
static void one_hist(struct evbuffer *out, const char *name, const char *help, const double *bounds,
                     size_t nbounds, const uint64_t *buckets, double sum)
{
    struct gw_hist h;
    gw_hist_init(&h, bounds, nbounds);
    for (size_t i = 0; i <= nbounds; i++) {
        h.counts[i] = buckets[i];
        h.count += buckets[i];
    }
    h.sum = sum;
    gw_prom_family(out, name, "histogram", help);
    gw_prom_hist(out, name, NULL, 0, &h);
}

/* ---- families of one sample each (or a few) ------------------------------------ */

static void render_process(struct gw_app *app, struct evbuffer *out, uint64_t open_fds)
{
    struct proc_stats p;
    proc_stats(&p);
    p.open_fds = open_fds;
    gw_prom_family(out, "sluice_build_info", "gauge",
                   "Always 1; the labels name the gateway's version and its libraries'.");
    char ssl[64];
    snprintf(ssl, sizeof ssl, "%s", OpenSSL_version(OPENSSL_VERSION));
    const struct gw_prom_label bl[] = {{"version", SLUICE_VERSION},
                                       {"nghttp2", nghttp2_version(0)->version_str},
                                       {"openssl", ssl},
                                       {"libevent", event_get_version()},
                                       {"jansson", JANSSON_VERSION}};
    gw_prom_u64(out, "sluice_build_info", bl, 5, 1);
    one_u64(out, "sluice_process_resident_memory_bytes", "gauge",
            "Resident set size of the gateway process.", p.rss_bytes);
    one_u64(out, "sluice_process_open_fds", "gauge", "Open file descriptors.", p.open_fds);
    one_double(out, "sluice_process_max_fds", "gauge",
               "The descriptor limit (RLIMIT_NOFILE, soft).", (double)p.max_fds);
    one_double(out, "sluice_process_cpu_seconds_total", "counter",
               "User and system CPU time of the process.", p.cpu_seconds);
    gw_prom_family(out, "sluice_scrape_slice_seconds", "histogram",
                   "CPU time each slice of a /metrics scrape held the event loop (a scrape is "
                   "rendered a slice per loop pass).");
    gw_prom_hist(out, "sluice_scrape_slice_seconds", NULL, 0,
                 gw_metrics_scrape_slices(app->metrics));
    one_double(out, "sluice_process_start_time_seconds", "gauge",
               "When the gateway started, seconds since the epoch.",
               (double)app->started_ms / 1000.0);
}

static void render_transport(struct gw_app *app, struct evbuffer *out,
                             const struct sub_snapshot *sn)
{
    struct gw_server_stats s;
    gw_server_stats(app->srv, &s);
    gw_prom_family(out, "sluice_connections", "gauge", "Open connections by protocol.");
    for (int k = 0; k < GW_CONN_KINDS; k++) {
        const struct gw_prom_label l[] = {{"protocol", conn_kind_proto[k]},
                                          {"tls", conn_kind_tls[k]}};
        gw_prom_u64(out, "sluice_connections", l, 2, s.open[k]);
    }
    gw_prom_family(out, "sluice_connections_opened_total", "counter",
                   "Connections that began speaking a protocol, by protocol.");
    for (int k = 0; k < GW_CONN_KINDS; k++) {
        const struct gw_prom_label l[] = {{"protocol", conn_kind_proto[k]},
                                          {"tls", conn_kind_tls[k]}};
        gw_prom_u64(out, "sluice_connections_opened_total", l, 2, s.opened[k]);
    }
    one_u64(out, "sluice_connections_accepted_total", "counter",
            "Connections accepted (before the protocol is known).", s.accepted);
    one_u64(out, "sluice_connections_refused_total", "counter",
            "Connections refused at --max-connections or while draining.", s.refused);
    one_u64(out, "sluice_http2_streams", "gauge", "Open HTTP/2 streams.", s.h2_streams);
    one_u64(out, "sluice_http2_streams_opened_total", "counter", "HTTP/2 streams opened.",
            s.h2_streams_total);
    one_u64(out, "sluice_http2_streams_refused_total", "counter",
            "HTTP/2 streams answered by the transport's limits (body, header or "
            "memory caps) instead of an operation.",
            s.h2_streams_refused);
    one_u64(out, "sluice_received_bytes_total", "counter",
            "HTTP bytes read from clients (after TLS).", s.bytes_in);
    one_u64(out, "sluice_sent_bytes_total", "counter",
            "HTTP bytes written to clients (before TLS).", s.bytes_out);
    gw_prom_family(out, "sluice_subscriptions", "gauge",
                   "Live subscriptions by format: SubscribeToShard event streams, Server-Sent "
                   "Events (consumers' and console tails).");
    const struct gw_prom_label es[] = {{"format", "event-stream"}};
    const struct gw_prom_label sse[] = {{"format", "sse"}};
    gw_prom_u64(out, "sluice_subscriptions", es, 1, sn->by_format[0]);
    gw_prom_u64(out, "sluice_subscriptions", sse, 1, sn->by_format[1]);
}

static void render_store(struct gw_app *app, struct evbuffer *out)
{
    struct store_stats s;
    memset(&s, 0, sizeof s);
    if (app->store)
        store_stats(app->store, &s);
    one_hist(out, "sluice_store_fsync_duration_seconds",
             "Time each segment or directory fsync took.", store_fsync_bounds, STORE_FSYNC_BOUNDS,
             s.fsync_buckets, s.fsync_seconds);
    one_hist(out, "sluice_store_group_commit_records",
             "Records written (and made durable together) by each group commit.",
             store_commit_bounds, STORE_COMMIT_BOUNDS, s.commit_buckets, (double)s.commit_records);
    one_u64(out, "sluice_store_durable_lag_bytes", "gauge",
            "Bytes appended but not yet durable: how far the durable watermark trails "
            "the appends, over every shard.",
            s.durable_lag_bytes);
    one_u64(out, "sluice_store_tail_memory_bytes", "gauge",
            "Memory held by the in-memory tails of the shards.", s.tail_bytes);
    one_u64(out, "sluice_store_tail_memory_limit_bytes", "gauge",
            "The tails' budget (--tail-memory).", app->cfg ? (uint64_t)app->cfg->tail_memory : 0);
    one_u64(out, "sluice_store_segments", "gauge", "Live segment files.", s.segments);
    one_u64(out, "sluice_store_appended_records_total", "counter", "Records appended to the store.",
            s.records_appended);
    one_u64(out, "sluice_store_written_bytes_total", "counter", "Bytes written to segment files.",
            s.bytes_written);
    one_u64(out, "sluice_store_fsyncs_total", "counter",
            "fsync calls (segments, directories and the catalog log).", s.fsyncs);
    one_double(out, "sluice_store_recovery_seconds", "gauge",
               "How long opening the store (recovery included) took at start.",
               app->store_open_seconds);
}

/* Requests: one series per operation label. A label may name several rows
 * of the table (PutRecords on both doors; HEAD and GET of a route count
 * apart, as their labels differ), summed here. */
static void render_requests(struct gw_app *app, struct evbuffer *out)
{
    size_t nops = gw_router_op_count(app->ops);
    char(*labels)[160] = xcalloc(nops + 1, sizeof *labels);
    size_t *group = xcalloc(nops + 1, sizeof *group); /* the first row with the same label */
    for (size_t i = 0; i < nops; i++)
        gw_router_op_label(&app->ops[i], labels[i], sizeof labels[i]);
    snprintf(labels[nops], sizeof labels[nops], "unknown");
    for (size_t i = 0; i <= nops; i++) {
        group[i] = i;
        for (size_t j = 0; j < i; j++)
            if (strcmp(labels[j], labels[i]) == 0) {
                group[i] = j;
                break;
            }
    }
    gw_prom_family(out, "sluice_requests_total", "counter",
                   "Requests answered, by operation and outcome (ok, or the Kinesis error "
                   "type of the answer).");
    for (size_t i = 0; i <= nops; i++) {
        if (group[i] != i)
            continue;
        for (int t = 0; t < GW_ERR__COUNT; t++) {
            uint64_t n = 0;
            for (size_t j = i; j <= nops; j++)
                if (group[j] == i)
                    n += gw_metrics_request_count(app->metrics, j, (size_t)t);
            if (n == 0 && t != 0)
                continue; /* errors appear once they happen; ok is always there */
            const struct gw_prom_label l[] = {{"operation", labels[i]},
                                              {"outcome", t == 0 ? "ok" : gw_error_name(t)}};
            gw_prom_u64(out, "sluice_requests_total", l, 2, n);
        }
    }
    gw_prom_family(out, "sluice_request_duration_seconds", "histogram",
                   "Time from a complete request to the start of its answer, by operation.");
    for (size_t i = 0; i <= nops; i++) {
        if (group[i] != i)
            continue;
        struct gw_hist h;
        gw_hist_init(&h, gw_latency_bounds, gw_latency_nbounds);
        for (size_t j = i; j <= nops; j++) {
            const struct gw_hist *o = gw_metrics_request_latency(app->metrics, j);
            if (!o || group[j] != i)
                continue;
            for (size_t b = 0; b <= h.nbounds; b++)
                h.counts[b] += o->counts[b];
            h.count += o->count;
            h.sum += o->sum;
        }
        const struct gw_prom_label l[] = {{"operation", labels[i]}};
        gw_prom_hist(out, "sluice_request_duration_seconds", l, 1, &h);
    }
    free(group);
    free(labels);
}

/* ---- families over streams, consumers and shards (resumable) ------------------- */

enum fam_kind { FAM_STREAM, FAM_CONSUMER, FAM_SHARD };

/* What a family's sample reads. */
enum fam_value {
    V_IN_RECORDS,
    V_IN_BYTES,
    V_OUT_RECORDS, /* GetRecords and pushes, by "api" label */
    V_OUT_BYTES,
    V_WRITE_THROTTLED,
    V_READ_THROTTLED,
    V_ITERATOR_AGE,
    V_OPEN_SHARDS,
    V_SHARDS,
    V_STORED_BYTES,
    V_RETENTION,
    V_STREAM_INFO,
    V_C_SUBS,
    V_C_SUBS_STARTED,
    V_C_RECORDS,
    V_C_BYTES,
    V_C_BEHIND,
    V_C_WAIT,
};

struct family {
    enum fam_kind kind;
    const char *name, *type, *help;
    enum fam_value v;
    int metric_bit; /* shard families: the enhanced-monitoring metric that shows it */
};

static const struct family families[] = {
    {FAM_STREAM, "sluice_stream_info", "gauge",
     "Always 1; the labels carry the stream's status and capacity mode.", V_STREAM_INFO, -1},
    {FAM_STREAM, "sluice_stream_open_shards", "gauge", "Open shards of the stream.", V_OPEN_SHARDS,
     -1},
    {FAM_STREAM, "sluice_stream_shards", "gauge",
     "All shards of the stream, closed parents of a reshard included.", V_SHARDS, -1},
    {FAM_STREAM, "sluice_stream_retention_seconds", "gauge", "The stream's retention period.",
     V_RETENTION, -1},
    {FAM_STREAM, "sluice_stream_stored_bytes", "gauge",
     "Bytes of the stream's segment files on disk.", V_STORED_BYTES, -1},
    {FAM_STREAM, "sluice_stream_incoming_records_total", "counter",
     "Records acknowledged to producers (CloudWatch IncomingRecords).", V_IN_RECORDS, -1},
    {FAM_STREAM, "sluice_stream_incoming_bytes_total", "counter",
     "Data and partition-key bytes of acknowledged records (CloudWatch IncomingBytes).", V_IN_BYTES,
     -1},
    {FAM_STREAM, "sluice_stream_outgoing_records_total", "counter",
     "Records read: api=GetRecords (CloudWatch OutgoingRecords) or pushed, "
     "api=SubscribeToShard (enhanced fan-out, console tails included).",
     V_OUT_RECORDS, -1},
    {FAM_STREAM, "sluice_stream_outgoing_bytes_total", "counter",
     "Data and partition-key bytes read, by api as for records.", V_OUT_BYTES, -1},
    {FAM_STREAM, "sluice_stream_write_throttled_records_total", "counter",
     "Records refused by --write-limit (CloudWatch WriteProvisionedThroughputExceeded).",
     V_WRITE_THROTTLED, -1},
    {FAM_STREAM, "sluice_stream_read_throttled_requests_total", "counter",
     "GetRecords calls refused by --write-limit's read limit (CloudWatch "
     "ReadProvisionedThroughputExceeded).",
     V_READ_THROTTLED, -1},
    {FAM_STREAM, "sluice_stream_iterator_age_seconds", "gauge",
     "Age of the oldest record the last GetRecords of any shard returned; 0 when caught up "
     "(CloudWatch GetRecords.IteratorAgeMilliseconds, Maximum).",
     V_ITERATOR_AGE, -1},
    {FAM_CONSUMER, "sluice_consumer_subscriptions", "gauge",
     "Live SubscribeToShard subscriptions of the consumer.", V_C_SUBS, -1},
    {FAM_CONSUMER, "sluice_consumer_subscriptions_started_total", "counter",
     "Subscriptions the consumer started.", V_C_SUBS_STARTED, -1},
    {FAM_CONSUMER, "sluice_consumer_pushed_records_total", "counter",
     "Records pushed to the consumer.", V_C_RECORDS, -1},
    {FAM_CONSUMER, "sluice_consumer_pushed_bytes_total", "counter",
     "Data and partition-key bytes pushed to the consumer.", V_C_BYTES, -1},
    {FAM_CONSUMER, "sluice_consumer_behind_latest_seconds", "gauge",
     "MillisBehindLatest of the consumer's furthest-behind live subscription, in seconds.",
     V_C_BEHIND, -1},
    {FAM_CONSUMER, "sluice_consumer_throttle_wait_seconds_total", "counter",
     "Time the consumer's subscriptions had records waiting for their token bucket "
     "(--consumer-rate per consumer-shard pair).",
     V_C_WAIT, -1},
    /* Shard level: streams with enhanced monitoring (the metric's bit, as
     * EnableEnhancedMonitoring names them) or all (--metrics-all-shards). */
    {FAM_SHARD, "sluice_shard_incoming_records_total", "counter",
     "Records acknowledged, per shard (IncomingRecords).", V_IN_RECORDS, 1},
    {FAM_SHARD, "sluice_shard_incoming_bytes_total", "counter",
     "Bytes acknowledged, per shard (IncomingBytes).", V_IN_BYTES, 0},
    {FAM_SHARD, "sluice_shard_outgoing_records_total", "counter",
     "Records read, per shard and api (OutgoingRecords).", V_OUT_RECORDS, 3},
    {FAM_SHARD, "sluice_shard_outgoing_bytes_total", "counter",
     "Bytes read, per shard and api (OutgoingBytes).", V_OUT_BYTES, 2},
    {FAM_SHARD, "sluice_shard_write_throttled_records_total", "counter",
     "Records refused by the write limit, per shard (WriteProvisionedThroughputExceeded).",
     V_WRITE_THROTTLED, 4},
    {FAM_SHARD, "sluice_shard_read_throttled_requests_total", "counter",
     "GetRecords calls refused by the read limit, per shard "
     "(ReadProvisionedThroughputExceeded).",
     V_READ_THROTTLED, 5},
    {FAM_SHARD, "sluice_shard_iterator_age_seconds", "gauge",
     "Age of the oldest record the shard's last GetRecords returned (IteratorAgeMilliseconds).",
     V_ITERATOR_AGE, 6},
};
#define NFAMILIES (sizeof families / sizeof families[0])

/* Writes the sample(s) of counters "c" for family "f" with labels "l" (the
 * last slot free for "api"). */
static void counters_sample(struct evbuffer *out, const struct family *f, struct gw_prom_label *l,
                            size_t nl, const struct gw_shard_counters *c, int64_t age_ms)
{
    static const struct gw_shard_counters zero;
    if (!c)
        c = &zero;
    switch (f->v) {
    case V_IN_RECORDS: gw_prom_u64(out, f->name, l, nl, c->in_records); break;
    case V_IN_BYTES: gw_prom_u64(out, f->name, l, nl, c->in_bytes); break;
    case V_OUT_RECORDS:
    case V_OUT_BYTES: {
        bool rec = f->v == V_OUT_RECORDS;
        l[nl] = (struct gw_prom_label){"api", "GetRecords"};
        gw_prom_u64(out, f->name, l, nl + 1, rec ? c->out_records : c->out_bytes);
        l[nl] = (struct gw_prom_label){"api", "SubscribeToShard"};
        gw_prom_u64(out, f->name, l, nl + 1, rec ? c->push_records : c->push_bytes);
        break;
    }
    case V_WRITE_THROTTLED: gw_prom_u64(out, f->name, l, nl, c->write_throttled); break;
    case V_READ_THROTTLED: gw_prom_u64(out, f->name, l, nl, c->read_throttled); break;
    case V_ITERATOR_AGE: gw_prom_double(out, f->name, l, nl, (double)age_ms / 1000.0); break;
    default: break;
    }
}

struct scrape {
    struct gw_app *app;
    struct gw_req *req;
    struct event *next; /* the next slice, on a later loop pass */
    int phase;          /* 0: the small families; 1: the resumable ones; 2: counting
                         * descriptors; 3: the process families, then the end */
    size_t fam;         /* families[fam] */
    bool fam_started;   /* its # HELP/# TYPE are out */
    bool has_cursor;
    char cursor[STORE_STREAM_NAME_MAX + 1]; /* the last stream finished in this family */
    uint32_t shard; /* the next shard of the stream after the cursor (FAM_SHARD) */
    bool all_shards;
    struct sub_snapshot subs;
    DIR *fds; /* /proc/self/fd, counted a slice at a time */
    uint64_t nfds;
};

static bool shard_shown(const struct scrape *sc, const struct store_stream_info *info, int bit)
{
    return sc->all_shards || (info->shard_metrics & (1u << bit));
}

static void stream_sample(struct scrape *sc, struct evbuffer *out, const struct family *f,
                          struct store_stream *st, const struct store_stream_info *info)
{
    const struct gw_stream_counters *c = gw_metrics_stream(sc->app->metrics, info->name);
    struct gw_prom_label l[4] = {{"stream", info->name}};
    switch (f->v) {
    case V_STREAM_INFO:
        l[1] = (struct gw_prom_label){"status", store_stream_status_name(info->status)};
        l[2] = (struct gw_prom_label){"mode", info->on_demand ? "ON_DEMAND" : "PROVISIONED"};
        gw_prom_u64(out, f->name, l, 3, 1);
        break;
    case V_OPEN_SHARDS: gw_prom_u64(out, f->name, l, 1, info->open_shard_count); break;
    case V_SHARDS: gw_prom_u64(out, f->name, l, 1, info->shard_count); break;
    case V_RETENTION:
        gw_prom_u64(out, f->name, l, 1, (uint64_t)info->retention_hours * 3600);
        break;
    case V_STORED_BYTES: {
        uint64_t bytes, segs;
        store_stream_disk_usage(st, &bytes, &segs);
        gw_prom_u64(out, f->name, l, 1, bytes);
        break;
    }
    default:
        counters_sample(out, f, l, 1, c ? &c->total : NULL, c ? gw_metrics_iterator_age(c) : 0);
    }
}

static void consumers_samples(struct scrape *sc, struct evbuffer *out, const struct family *f,
                              struct store_stream *st, const struct store_stream_info *info)
{
    struct store_consumer_info ci[32];
    for (size_t start = 0;;) {
        size_t n = store_consumer_list(st, start, ci, 32);
        for (size_t i = 0; i < n; i++) {
            const struct gw_consumer_counters *c = gw_metrics_consumer(sc->app->metrics, ci[i].arn);
            const struct sub_agg *a = snap_find(&sc->subs, ci[i].arn);
            const struct gw_prom_label l[] = {{"stream", info->name}, {"consumer", ci[i].name}};
            switch (f->v) {
            case V_C_SUBS: gw_prom_u64(out, f->name, l, 2, a ? a->open : 0); break;
            case V_C_SUBS_STARTED:
                gw_prom_u64(out, f->name, l, 2, c ? c->subscriptions_total : 0);
                break;
            case V_C_RECORDS: gw_prom_u64(out, f->name, l, 2, c ? c->push_records : 0); break;
            case V_C_BYTES: gw_prom_u64(out, f->name, l, 2, c ? c->push_bytes : 0); break;
            case V_C_BEHIND:
                gw_prom_double(out, f->name, l, 2, a ? (double)a->worst_behind_ms / 1000.0 : 0);
                break;
            case V_C_WAIT:
                gw_prom_double(out, f->name, l, 2, c ? c->throttle_wait_seconds : 0);
                break;
            default: break;
            }
        }
        if (n < 32)
            break;
        start += n;
    }
}

/* Shards of one stream for family "f" from sc->shard on, until the slice is
 * full. Returns true when the stream is finished. */
static bool shard_samples(struct scrape *sc, struct evbuffer *out, const struct family *f,
                          struct store_stream *st, const struct store_stream_info *info)
{
    const struct gw_stream_counters *c = gw_metrics_stream(sc->app->metrics, info->name);
    uint32_t n = store_stream_shard_count(st);
    for (; sc->shard < n; sc->shard++) {
        if (evbuffer_get_length(out) >= SCRAPE_SLICE)
            return false;
        struct store_shard_info si;
        store_shard_info(store_stream_shard(st, sc->shard), &si);
        const struct gw_shard_counters *sh =
            c && sc->shard < c->nshards ? &c->shards[sc->shard] : NULL;
        struct gw_prom_label l[3] = {{"stream", info->name}, {"shard", si.id}};
        counters_sample(out, f, l, 2, sh, sh ? sh->iterator_age_ms : 0);
    }
    return true;
}

/* Renders the resumable families until the slice is full; true when done. */
static bool render_streams(struct scrape *sc, struct evbuffer *out)
{
    struct store *store = sc->app->store;
    for (; sc->fam < NFAMILIES; sc->fam++) {
        const struct family *f = &families[sc->fam];
        if (!sc->fam_started) {
            gw_prom_family(out, f->name, f->type, f->help);
            sc->fam_started = true;
            sc->has_cursor = false;
            sc->shard = 0;
        }
        for (;;) {
            const char *names[NAMES_BATCH];
            size_t n = store ? store_stream_list(store, sc->has_cursor ? sc->cursor : NULL, names,
                                                 NAMES_BATCH)
                             : 0;
            for (size_t i = 0; i < n; i++) {
                if (evbuffer_get_length(out) >= SCRAPE_SLICE)
                    return false;
                struct store_stream *st;
                if (store_stream_lookup(store, names[i], &st, NULL) != 0)
                    continue;
                struct store_stream_info info;
                store_stream_info(st, &info);
                if (f->kind == FAM_STREAM) {
                    stream_sample(sc, out, f, st, &info);
                } else if (f->kind == FAM_CONSUMER) {
                    consumers_samples(sc, out, f, st, &info);
                } else if (shard_shown(sc, &info, f->metric_bit) &&
                           !shard_samples(sc, out, f, st, &info)) {
                    return false; /* resumes in this stream at sc->shard */
                }
                snprintf(sc->cursor, sizeof sc->cursor, "%s", names[i]);
                sc->has_cursor = true;
                sc->shard = 0;
            }
            if (n < NAMES_BATCH)
                break;
        }
        sc->fam_started = false;
    }
    return true;
}

static void scrape_free(struct scrape *sc)
{
    if (sc->next)
        event_free(sc->next);
    if (sc->fds)
        closedir(sc->fds);
    snap_free(&sc->subs);
    free(sc);
}

static void scrape_abort(struct gw_req *req, void *ctx)
{
    (void)req;
    scrape_free(ctx);
}

static void next_slice(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct scrape *sc = arg;
    gw_resp_resume(sc->req);
}

/* One slice per loop pass: a reader as fast as loopback would otherwise be
 * pulled from again and again within one pass (its socket never fills),
 * and the whole scrape would run before anyone else is served. */
static enum gw_pull scrape_pull(struct gw_req *req, void *ctx, struct evbuffer *out, size_t max)
{
    (void)req;
    (void)max;
    struct scrape *sc = ctx;
    struct timespec t0, t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    switch (sc->phase) {
    case 0:
        snap_take(sc->app, &sc->subs);
        render_transport(sc->app, out, &sc->subs);
        render_store(sc->app, out);
        render_requests(sc->app, out);
        sc->fds = opendir("/proc/self/fd");
        sc->phase = 1;
        break;
    case 1:
        if (render_streams(sc, out))
            sc->phase = 2;
        break;
    case 2:
        if (count_fds(&sc->fds, &sc->nfds))
            sc->phase = 3;
        break;
    default:
        /* The slice histogram as of the slices before this one. */
        render_process(sc->app, out, sc->nfds);
        scrape_free(sc);
        return GW_PULL_EOF;
    }
    /* CPU time of the loop thread, so a busy machine does not inflate it. */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    gw_metrics_scrape_slice(sc->app->metrics, (double)(t1.tv_sec - t0.tv_sec) +
                                                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    event_active(sc->next, 0, 0);
    return GW_PULL_DEFER;
}

static int stream_alive(void *arg, const char *name)
{
    struct store_stream *st;
    return store_stream_lookup(arg, name, &st, NULL) == 0;
}

static int consumer_alive(void *arg, const char *arn)
{
    struct store_stream *st;
    struct store_consumer_info ci;
    return store_consumer_lookup_arn(arg, arn, &st, &ci, NULL) == 0;
}

void op_metrics(struct gw_app *app, struct gw_req *req)
{
    if (gw_op_caller_restricted()) {
        struct gw_error err = {0};
        gw_error_set(&err, GW_ERR_ACCESS_DENIED,
                     "/metrics shows every stream: it needs a key or token not limited to "
                     "some streams in --credentials");
        gw_body_error(req, &err);
        return;
    }
    /* Counters of streams and consumers that are gone go now. */
    if (app->store)
        gw_metrics_prune(app->metrics, stream_alive, consumer_alive, app->store);
    struct scrape *sc = xcalloc(1, sizeof *sc);
    sc->app = app;
    sc->req = req;
    sc->next = event_new(app->base, -1, 0, next_slice, sc);
    if (!sc->next)
        abort();
    sc->all_shards = app->cfg && app->cfg->metrics_all_shards;
    gw_req_on_abort(req, scrape_abort, sc);
    gw_resp_header(req, "content-type", GW_PROM_CONTENT_TYPE);
    gw_resp_header(req, "cache-control", "no-store");
    gw_resp_stream(req, 200, scrape_pull, sc);
}

/* ---- GET /v1/stats ------------------------------------------------------------- */

static json_t *counters_json(const struct gw_shard_counters *c, int64_t age_ms)
{
    static const struct gw_shard_counters zero;
    if (!c)
        c = &zero;
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "incoming_records",
                     (json_int_t)c->in_records, "incoming_bytes", (json_int_t)c->in_bytes,
                     "outgoing_records", (json_int_t)(c->out_records + c->push_records),
                     "outgoing_bytes", (json_int_t)(c->out_bytes + c->push_bytes), "pushed_records",
                     (json_int_t)c->push_records, "pushed_bytes", (json_int_t)c->push_bytes,
                     "write_throttled", (json_int_t)c->write_throttled, "read_throttled",
                     (json_int_t)c->read_throttled, "iterator_age_ms", (json_int_t)age_ms);
}

struct subs_json {
    json_t *by_arn; /* consumer ARN -> array of subscriptions */
    json_t *tails;  /* stream -> count */
};

static void subs_json_add(void *arg, const struct gw_fanout_sub_info *info)
{
    struct subs_json *sj = arg;
    if (!*info->consumer_arn) {
        json_t *n = json_object_get(sj->tails, info->stream);
        json_object_set_new(sj->tails, info->stream,
                            json_integer(n ? json_integer_value(n) + 1 : 1));
        return;
    }
    json_t *a = json_object_get(sj->by_arn, info->consumer_arn);
    if (!a) {
        a = json_array();
        json_object_set_new(sj->by_arn, info->consumer_arn, a);
    }
    char sid[STORE_SHARD_ID_STRLEN];
    snprintf(sid, sizeof sid, "shardId-%012u", info->shard);
    json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:b}", "shard", sid, "format",
                                       info->fmt == GW_FANOUT_SSE ? "sse" : "event-stream",
                                       "started", (json_int_t)info->started_ms, "pushed_records",
                                       (json_int_t)info->pushed_records, "pushed_bytes",
                                       (json_int_t)info->pushed_bytes, "millis_behind_latest",
                                       (json_int_t)info->millis_behind, "rate_limit_bytes_per_s",
                                       (json_int_t)info->rate_bytes_per_s, "throttled",
                                       info->throttled));
}

void op_stats(struct gw_app *app, struct gw_req *req)
{
    struct gw_server_stats ss;
    gw_server_stats(app->srv, &ss);
    struct subs_json sj = {json_object(), json_object()};
    gw_fanout_each(app->fanout, subs_json_add, &sj);
    json_t *streams = json_array(), *consumers = json_array();
    const char *names[NAMES_BATCH];
    char cursor[STORE_STREAM_NAME_MAX + 1] = "";
    for (bool more = app->store != NULL; more;) {
        size_t n = store_stream_list(app->store, *cursor ? cursor : NULL, names, NAMES_BATCH);
        more = n == NAMES_BATCH;
        for (size_t i = 0; i < n; i++) {
            struct store_stream *st;
            if (store_stream_lookup(app->store, names[i], &st, NULL) != 0)
                continue;
            snprintf(cursor, sizeof cursor, "%s", names[i]);
            /* A key limited to some streams sees only those. */
            if (gw_op_permitted(app, names[i], NULL) != 0)
                continue;
            struct store_stream_info info;
            store_stream_info(st, &info);
            const struct gw_stream_counters *c = gw_metrics_stream(app->metrics, info.name);
            json_t *o = counters_json(c ? &c->total : NULL, c ? gw_metrics_iterator_age(c) : 0);
            uint64_t bytes, segs;
            store_stream_disk_usage(st, &bytes, &segs);
            bool monitored = info.shard_metrics != 0 || (app->cfg && app->cfg->metrics_all_shards);
            json_t *tails = json_object_get(sj.tails, info.name);
            json_t *more_fields = json_pack(
                "{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:I}", "name", info.name, "status",
                store_stream_status_name(info.status), "mode",
                info.on_demand ? "ON_DEMAND" : "PROVISIONED", "shards",
                (json_int_t)info.shard_count, "open_shards", (json_int_t)info.open_shard_count,
                "retention_hours", (json_int_t)info.retention_hours, "consumers",
                (json_int_t)info.consumer_count, "stored_bytes", (json_int_t)bytes, "created",
                (json_int_t)info.created_ms, "monitored", monitored, "tails",
                tails ? json_integer_value(tails) : (json_int_t)0);
            json_object_update(o, more_fields);
            json_decref(more_fields);
            if (monitored) {
                json_t *sa = json_array();
                uint32_t nsh = store_stream_shard_count(st);
                for (uint32_t k = 0; k < nsh; k++) {
                    struct store_shard_info si;
                    store_shard_info(store_stream_shard(st, k), &si);
                    const struct gw_shard_counters *sc = c && k < c->nshards ? &c->shards[k] : NULL;
                    json_t *so = counters_json(sc, sc ? sc->iterator_age_ms : 0);
                    json_object_set_new(so, "id", json_string(si.id));
                    json_object_set_new(so, "open", json_boolean(si.open));
                    json_array_append_new(sa, so);
                }
                json_object_set_new(o, "shard_stats", sa);
            }
            json_array_append_new(streams, o);

            struct store_consumer_info ci[32];
            for (size_t start = 0;;) {
                size_t k = store_consumer_list(st, start, ci, 32);
                for (size_t j = 0; j < k; j++) {
                    const struct gw_consumer_counters *cc =
                        gw_metrics_consumer(app->metrics, ci[j].arn);
                    json_t *subs = json_object_get(sj.by_arn, ci[j].arn);
                    int64_t worst = 0;
                    size_t idx;
                    json_t *v;
                    json_array_foreach(subs, idx, v)
                    {
                        json_int_t b =
                            json_integer_value(json_object_get(v, "millis_behind_latest"));
                        if (b > worst)
                            worst = b;
                    }
                    json_array_append_new(
                        consumers,
                        json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:f,s:I,s:o}", "stream", info.name,
                                  "name", ci[j].name, "arn", ci[j].arn, "status",
                                  store_consumer_status_name(ci[j].status), "pushed_records",
                                  (json_int_t)(cc ? cc->push_records : 0), "pushed_bytes",
                                  (json_int_t)(cc ? cc->push_bytes : 0), "subscriptions_started",
                                  (json_int_t)(cc ? cc->subscriptions_total : 0),
                                  "throttle_wait_seconds", cc ? cc->throttle_wait_seconds : 0.0,
                                  "millis_behind_latest", (json_int_t)worst, "subscriptions",
                                  subs ? json_incref(subs) : json_array()));
                }
                if (k < 32)
                    break;
                start += k;
            }
        }
    }
    json_t *out = json_pack(
        "{s:I,s:I,s:s,s:{s:I,s:I,s:I},s:I,s:o,s:o}", "now", (json_int_t)gw_app_now_ms(), "started",
        (json_int_t)app->started_ms, "version", SLUICE_VERSION, "connections", "http/1.1",
        (json_int_t)(ss.open[GW_CONN_HTTP1] + ss.open[GW_CONN_HTTP1_TLS]), "h2c",
        (json_int_t)ss.open[GW_CONN_H2C], "h2", (json_int_t)ss.open[GW_CONN_H2], "subscriptions",
        (json_int_t)gw_fanout_count(app->fanout), "streams", streams, "consumers", consumers);
    json_decref(sj.by_arn);
    json_decref(sj.tails);
    gw_resp_header(req, "cache-control", "no-store");
    gw_body_reply(req, out);
    json_decref(out);
}
