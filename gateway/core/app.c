/* app.c - assembles the gateway's parts around the store (see app.h). */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "autoscale.h"
#include "fanout.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "ops.h"
#include "router.h"
#include "throttle.h"
#include "transition.h"

int64_t gw_app_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum gw_errtype gw_app_store_errtype(int code)
{
    switch (code) {
    case STORE_ENOTFOUND: return GW_ERR_RESOURCE_NOT_FOUND;
    case STORE_EEXISTS: return GW_ERR_RESOURCE_IN_USE;
    case STORE_EINVAL: return GW_ERR_INVALID_ARGUMENT;
    case STORE_ELIMIT: return GW_ERR_LIMIT_EXCEEDED;
    case STORE_ESTATE: return GW_ERR_RESOURCE_IN_USE;
    case STORE_EUNAVAIL: return GW_ERR_SERVICE_UNAVAILABLE;
    /* LimitExceededException: SDKs retry it with back-off, which is what a
     * lost race for the shared catalog needs. */
    case STORE_ECONFLICT: return GW_ERR_LIMIT_EXCEEDED;
    default: return GW_ERR_INTERNAL_FAILURE; /* ECORRUPT, EIO, ENOSPC */
    }
}

static void store_log(void *arg, enum store_log_level level, const char *msg)
{
    static const enum gw_log_level map[] = {GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR};
    enum gw_log_level l = (unsigned)level < 4 ? map[level] : GW_LOG_ERROR;
    gw_log(l, "store", "%s", msg);
}

/* Reads the shard-iterator HMAC key from DATA/iterator.key, creating it on
 * first start: iterators then survive restarts, as clients expect of their
 * five minutes. */
static int load_key(struct gw_app *app, const char *dir, struct gw_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/iterator.key", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, app->iter_key, sizeof app->iter_key);
        close(fd);
        if (n == (ssize_t)sizeof app->iter_key)
            return 0;
        gw_log(GW_LOG_WARN, "iterator_key", "%s is damaged; making a new key", path);
    }
    if (RAND_bytes(app->iter_key, sizeof app->iter_key) != 1)
        return gw_error_set(err, GW_ERR_INTERNAL_FAILURE, "RAND_bytes failed");
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, app->iter_key, sizeof app->iter_key) != (ssize_t)sizeof app->iter_key ||
        fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return gw_error_set(err, GW_ERR_INTERNAL_FAILURE, "cannot write %s: %s", path,
                            strerror(e));
    }
    return 0;
}

/* Another gateway on the same JetStream removed a stream or a consumer: end
 * the subscriptions that hold it before the store lets it go, as the local
 * DeleteStream and DeregisterStreamConsumer do. */
static void on_remote_removal(void *arg, const char *stream, const char *consumer)
{
    struct gw_app *app = arg;
    if (!app->fanout) /* still opening: nothing holds a handle yet */
        return;
    if (!consumer) {
        gw_fanout_end(app->fanout, stream, NULL, "ResourceNotFoundException",
                      "The stream was deleted.");
        gw_throttle_forget(app->throttle);
        gw_log(GW_LOG_INFO, "stream_deleted", "stream=%s by=another-gateway", stream);
        return;
    }
    struct store_stream *s;
    struct store_consumer_info ci;
    if (store_stream_lookup(app->store, stream, &s, NULL) != 0 ||
        store_consumer_lookup(s, consumer, &ci, NULL) != 0)
        return;
    gw_fanout_end(app->fanout, stream, ci.arn, "ResourceNotFoundException",
                  "The consumer was deregistered.");
    gw_log(GW_LOG_INFO, "consumer_deregistered", "stream=%s consumer=%s by=another-gateway",
           stream, consumer);
}

static void on_sub_taken(void *arg, const char *stream, uint32_t shard, const char *consumer_arn)
{
    struct gw_app *app = arg;
    gw_fanout_taken(app->fanout, stream, shard, consumer_arn);
}

int gw_app_open(struct gw_app *app, struct event_base *base, const struct gw_config *cfg,
                struct gw_error *err)
{
    app->base = base;
    app->cfg = cfg;
    struct store_err se = {0};
    struct store_opts o;
    store_opts_init(&o);
    if (store_durability_parse(cfg->durability, &o.durability, &o.interval_ms, &se) != 0)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "--durability: %s", se.msg);
    app->durability = o.durability;
    app->interval_ms = o.interval_ms;
    o.tail_budget_bytes = cfg->tail_memory;
    o.max_consumers = cfg->max_consumers;
    o.segment_bytes = cfg->segment_bytes;
    o.max_fds = app->store_max_fds;
    o.region = cfg->region;
    o.account = cfg->account;
    o.log = store_log;
    if (strcmp(cfg->backend, "jetstream") == 0) {
        o.backend = STORE_BACKEND_JETSTREAM;
        o.nats_url = cfg->nats_url;
        o.nats_replicas = cfg->nats_replicas;
        o.nats_prefix = cfg->nats_prefix;
        o.nats_creds = *cfg->nats_creds ? cfg->nats_creds : NULL;
        o.nats_tls_ca = *cfg->nats_tls_ca ? cfg->nats_tls_ca : NULL;
        o.on_remote_removal = on_remote_removal;
        o.on_remote_removal_arg = app;
        o.on_sub_taken = on_sub_taken;
        o.on_sub_taken_arg = app;
    }
    app->auth = gw_auth_new(cfg, err);
    if (!app->auth && gw_error_isset(err))
        return -1;
    if (cfg->require_auth)
        gw_log(GW_LOG_WARN, "deprecated",
               app->auth ? "--require-auth is ignored: --auth sigv4 verifies signatures"
                         : "--require-auth checks only that a SigV4 header is present and "
                           "well-formed, it verifies nothing: use --auth sigv4 --credentials "
                           "FILE");
    if (load_key(app, cfg->data_dir, err) != 0)
        return -1;
    app->started_ms = gw_app_now_ms();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (store_open(cfg->data_dir, &o, &app->store, &se) != 0)
        return gw_error_set(err, GW_ERR_INTERNAL_FAILURE, "cannot open the store in %s: %s",
                            cfg->data_dir, se.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    app->store_open_seconds =
        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* Gateways sharing a JetStream accept each other's iterators. */
    store_shared_secret(app->store, app->iter_key, sizeof app->iter_key);
    app->metrics = gw_metrics_new();
    gw_metrics_requests_init(app->metrics, gw_router_op_count(app->ops ? app->ops : gw_ops),
                             GW_ERR__COUNT - 1);
    gw_transition_recover(app);
    app->throttle = gw_throttle_new(cfg->write_limit);
    app->autoscale = gw_autoscale_new(app);
    app->transitions = gw_transitions_new(app);
    app->fanout = gw_fanout_new(base, cfg, app->metrics);
    app->loop = gw_loop_new(app);
    gw_loop_commit_soon(app); /* persist what gw_transition_recover changed */
    return 0;
}

void gw_app_close(struct gw_app *app)
{
    /* Pending transitions are finished by the next start. */
    gw_transitions_free(app->transitions);
    app->transitions = NULL;
    gw_loop_stop(app->loop);
    gw_fanout_free(app->fanout);
    app->fanout = NULL;
    store_close(app->store);
    app->store = NULL;
    gw_loop_free(app->loop); /* acknowledgements the close's commit queued */
    app->loop = NULL;
    gw_throttle_free(app->throttle);
    app->throttle = NULL;
    gw_metrics_free(app->metrics);
    app->metrics = NULL;
    gw_autoscale_free(app->autoscale);
    app->autoscale = NULL;
    gw_auth_free(app->auth);
    app->auth = NULL;
    gw_op_scalings_free(app->scalings);
    app->scalings = NULL;
}
