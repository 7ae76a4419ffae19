/* app.h - what every operation is handed: the configuration, the store and
 * the gateway's engines, assembled at start and taken down at stop.
 *
 * app.c only assembles; each part has its own file:
 *   loop.c        the store in the event loop; push before acknowledge
 *   fanout.c      enhanced fan-out (live subscriptions)
 *   throttle.c    per-shard write limits
 *   autoscale.c   ON_DEMAND streams growing when their writes are throttled
 *   transition.c  CREATING/DELETING -> ACTIVE/gone after --stream-delay
 *
 * Upstream: main.c opens it; router.c passes it to every handler. */
#ifndef SLUICE_GW_APP_H
#define SLUICE_GW_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "store.h"

struct event_base;
struct gw_server;
struct gw_op;
struct gw_loop;
struct gw_fanout;
struct gw_throttle;
struct gw_autoscale;
struct gw_transitions;
struct gw_auth;
struct gw_scalings;
struct gw_metrics;

struct gw_app {
    const struct gw_config *cfg;
    struct gw_server *srv;
    const struct gw_op *ops; /* the table, terminated by a zeroed row */
    struct event_base *base;
    struct store *store;     /* NULL in tests that need no store */
    enum store_durability durability;
    uint32_t interval_ms;
    uint32_t store_max_fds;  /* store_opts.max_fds, set by main.c (0 = store default) */
    unsigned char iter_key[32]; /* HMAC key for shard iterators and next tokens */
    /* Owned; NULL in tests that run operations without gw_app_open. */
    struct gw_loop *loop;
    struct gw_fanout *fanout;
    struct gw_throttle *throttle;
    struct gw_autoscale *autoscale;
    struct gw_transitions *transitions;
    struct gw_auth *auth;         /* NULL: --auth none */
    struct gw_scalings *scalings; /* UpdateShardCount calls of the last 24 h (ops_reshard.c) */
    struct gw_metrics *metrics;   /* counters for /metrics and /v1/stats */
    int64_t started_ms;           /* wall clock at gw_app_open */
    double store_open_seconds;    /* how long opening (recovering) the store took */
};

/* Opens the store in cfg->data_dir, finishes the transitions a stop
 * interrupted, and hooks everything into "base". Returns 0, or -1 with "err"
 * set (bad --durability, store errors). */
int gw_app_open(struct gw_app *app, struct event_base *base, const struct gw_config *cfg,
                struct gw_error *err);
/* Flushes and closes the store, acknowledges what the last commit made
 * durable, frees the engines. Call after the server is freed. */
void gw_app_close(struct gw_app *app);

/* Wall clock in ms. */
int64_t gw_app_now_ms(void);

/* Maps a store error code to a Kinesis error type. */
enum gw_errtype gw_app_store_errtype(int code);

#endif
