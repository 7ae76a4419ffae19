/* main.c - argv and environment to config, signals, the event loop.
 *
 * Startup: load config (config.c), raise the descriptor limit and split it
 * between the store and connections, create the data directory, create the
 * server (server.c) with the router (router.c) as its dispatcher, listen, run.
 * SIGTERM/SIGINT start a graceful drain: stop accepting, finish in-flight
 * requests, GOAWAY HTTP/2 sessions, exit 0 once all connections are closed or
 * the drain timeout has passed. A second signal exits at once. */
#include <errno.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "app.h"
#include "auth.h"
#include "config.h"
#include "log.h"
#include "ops.h"
#include "router.h"
#include "server.h"

struct run {
    struct event_base *base;
    struct gw_server *srv;
    int signals;
};

static void on_drained(void *arg)
{
    struct run *r = arg;
    gw_log(GW_LOG_INFO, "stopped", "all connections closed");
    event_base_loopexit(r->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct run *r = arg;
    if (r->signals++ > 0) {
        gw_log(GW_LOG_WARN, "stop_now", "second signal %d: exiting without drain", (int)sig);
        event_base_loopbreak(r->base);
        return;
    }
    gw_log(GW_LOG_INFO, "signal", "signal %d: draining", (int)sig);
    gw_server_drain(r->srv, on_drained, r);
}

/* SIGHUP: read --credentials and the TLS certificate and key again (a bad
 * file keeps what is in use). */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct gw_app *app = arg;
    struct gw_error err = {0};
    if (app->cfg->tls_cert) {
        if (gw_server_reload_tls(app->srv, &err) != 0)
            gw_log(GW_LOG_ERROR, "tls_reload", "%s (the certificate in use stays)", err.message);
        else
            gw_log(GW_LOG_INFO, "tls_reload", "%s reloaded", app->cfg->tls_cert);
    }
    memset(&err, 0, sizeof err);
    if (!app->auth) {
        if (!app->cfg->tls_cert)
            gw_log(GW_LOG_INFO, "signal", "SIGHUP: nothing to reload (--auth none, no TLS)");
        return;
    }
    if (gw_auth_reload(app->auth, &err) != 0)
        gw_log(GW_LOG_ERROR, "auth_reload", "%s (the previous keys stay in force)", err.message);
}

/* Descriptors kept out of the split below for the process itself: stdio,
 * epoll, the signal pipe, listeners, the key file, the store's own few. */
#define FD_RESERVE 64u
/* Never give the store less: a handful of shards stay cached. */
#define STORE_FDS_MIN 32u

/* Raises the soft RLIMIT_NOFILE to the hard one and returns the limit in
 * force. Every connection costs a descriptor and so does every shard that
 * is written or read (store_opts.max_fds); the usual soft limit of 1,024
 * sits far below the defaults of 10,000 connections and 10,000 shards,
 * while hard limits are commonly much higher. */
static uint64_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        gw_log(GW_LOG_WARN, "nofile", "getrlimit: %s; assuming 1024", strerror(errno));
        return 1024;
    }
    uint64_t before = (uint64_t)rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        int rc = setrlimit(RLIMIT_NOFILE, &want);
        if (rc != 0 && rl.rlim_max == RLIM_INFINITY) {
            /* Linux refuses more than fs.nr_open even when the hard limit
             * says unlimited; 2^20 is its default. */
            want.rlim_cur = 1u << 20;
            rc = setrlimit(RLIMIT_NOFILE, &want);
        }
        if (rc == 0)
            rl.rlim_cur = want.rlim_cur;
        else
            gw_log(GW_LOG_WARN, "nofile", "cannot raise the soft limit %llu: %s",
                   (unsigned long long)before, strerror(errno));
    }
    uint64_t now = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : (uint64_t)rl.rlim_cur;
    char hard[24] = "unlimited";
    if (rl.rlim_max != RLIM_INFINITY)
        snprintf(hard, sizeof hard, "%llu", (unsigned long long)rl.rlim_max);
    gw_log(GW_LOG_INFO, "nofile", "descriptor limit %llu (soft was %llu, hard %s)",
           (unsigned long long)now, (unsigned long long)before, hard);
    return now;
}

/* The store's share of "limit" (store_opts.max_fds). It needs at most a
 * write and a read descriptor per shard plus the syncer's dups (about one
 * more per shard), connections one each. When both fit, each gets what it
 * needs; when not, the store gets what connections leave, and at least
 * half: the store closes idle descriptors to stay within its share (an
 * LRU), while a connection beyond the rest is simply not accepted until
 * one closes (server.c pauses accepting at EMFILE). */
static uint32_t store_fd_share(const struct gw_config *cfg, uint64_t limit)
{
    uint64_t avail = limit > FD_RESERVE + 2 * STORE_FDS_MIN ? limit - FD_RESERVE : 2 * STORE_FDS_MIN;
    uint64_t need = 3 * (uint64_t)cfg->shard_limit + 16;
    uint64_t share = avail / 2;
    if (avail > cfg->max_connections && avail - cfg->max_connections > share)
        share = avail - cfg->max_connections;
    if (share > need)
        share = need;
    if (share < STORE_FDS_MIN)
        share = STORE_FDS_MIN;
    if (share > UINT32_MAX)
        share = UINT32_MAX;
    uint64_t conns = avail > share ? avail - share : 0;
    gw_log(GW_LOG_INFO, "nofile", "store descriptors %llu, connections %llu (max-connections %u)",
           (unsigned long long)share, (unsigned long long)conns, cfg->max_connections);
    if (conns < cfg->max_connections)
        gw_log(GW_LOG_WARN, "nofile",
               "max-connections %u exceeds the %llu descriptors left for connections: past "
               "them, accepting pauses until connections close (raise the hard RLIMIT_NOFILE)",
               cfg->max_connections, (unsigned long long)conns);
    return (uint32_t)share;
}

/* mkdir -p for the data directory. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--print-routes") == 0) {
            gw_router_print_routes(gw_ops, stdout);
            return 0;
        }
    struct gw_config cfg;
    switch (gw_config_load(&cfg, argc, argv, stdout, stderr)) {
    case GW_CONFIG_EXIT_OK:
        gw_config_clear(&cfg);
        return 0;
    case GW_CONFIG_ERROR:
        gw_config_clear(&cfg);
        return 2;
    case GW_CONFIG_OK:
        break;
    }
    gw_log_level_parse(cfg.log_level, &gw_log_min);
    signal(SIGPIPE, SIG_IGN);
    uint32_t store_fds = store_fd_share(&cfg, raise_nofile());
    /* No evthread_use_pthreads(): only the loop thread touches libevent (the
     * store's syncer thread reports through an eventfd the loop watches),
     * and libevent's locks cost a mutex round trip per event operation. */

    int rc = 1;
    struct run r = {0};
    struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
    struct gw_error err = {0};
    struct gw_app app = {0};
    if (make_dirs(cfg.data_dir) != 0) {
        gw_log(GW_LOG_ERROR, "data_dir", "cannot create %s: %s", cfg.data_dir, strerror(errno));
        goto out;
    }
    r.base = event_base_new();
    if (!r.base) {
        gw_log(GW_LOG_ERROR, "startup", "event_base_new failed");
        goto out;
    }
    /* Signals first: a SIGTERM that arrives as soon as the "listening" line
     * is out must drain, not kill. */
    sigterm = evsignal_new(r.base, SIGTERM, on_signal, &r);
    sigint = evsignal_new(r.base, SIGINT, on_signal, &r);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    app.ops = gw_ops;
    app.store_max_fds = store_fds;
    if (gw_app_open(&app, r.base, &cfg, &err) != 0) {
        gw_log(GW_LOG_ERROR, "startup", "%s", err.message);
        goto out;
    }
    r.srv = gw_server_new(r.base, &cfg, gw_router_dispatch, &app, &err);
    if (!r.srv) {
        gw_log(GW_LOG_ERROR, "startup", "%s", err.message);
        goto out;
    }
    app.srv = r.srv;
    gw_op_apply_record_limits(&app);
    sighup = evsignal_new(r.base, SIGHUP, on_hup, &app);
    evsignal_add(sighup, NULL);
    if (gw_server_listen(r.srv, &err) != 0) {
        gw_log(GW_LOG_ERROR, "startup", "%s", err.message);
        goto out;
    }
    gw_log(GW_LOG_INFO, "ready", "sluice %s data_dir=%s", SLUICE_VERSION, cfg.data_dir);
    event_base_dispatch(r.base);
    rc = 0;
out:
    /* Shutting down already: a repeated SIGTERM (a supervisor's, a test's)
     * must not turn the clean exit into a kill. Freeing libevent's signal
     * events restores the default handlers, so block the signals across
     * that, then ignore them (a pending blocked signal is discarded once
     * ignored). */
    {
        sigset_t set, old;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigprocmask(SIG_BLOCK, &set, &old);
        if (sigterm)
            event_free(sigterm);
        if (sigint)
            event_free(sigint);
        if (sighup)
            event_free(sighup);
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    gw_server_free(r.srv);
    gw_app_close(&app);
    if (r.base)
        event_base_free(r.base);
    gw_config_clear(&cfg);
    return rc;
}
