/* app.h - what every operation shares: configuration, the server, the store
 * and its loop integration, the shard-iterator key.
 *
 * Upstream: main.c opens it; router.c passes it to every handler.
 * Downstream: store.h. The store is called on the loop thread only; the app
 * watches the store's notify fd (store_dispatch), commits appends once per
 * loop turn (gw_app_commit_soon), runs retention ticks, and drives the
 * CREATING -> ACTIVE and DELETING -> gone transitions of streams. */
#ifndef SLUICE_GW_APP_H
#define SLUICE_GW_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "store.h"

struct event_base;
struct event;
struct gw_server;
struct gw_op;
struct gw_throttle;
struct gw_transition;
struct shard_subs;
struct gw_after;

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
    struct {
        struct event *notify; /* store_notify_fd readable */
        struct event *commit; /* zero-delay, armed by gw_app_commit_soon */
        struct event *tick;   /* retention */
        struct event *after;  /* runs the gw_app_after() queue */
    } _ev;
    struct gw_after *_after; /* queued gw_app_after() calls */
    size_t _nafter, _capafter;
    struct gw_throttle *_throttle; /* per-shard write limits, when enabled */
    struct gw_transition *_transitions; /* pending status changes */
    bool _closing; /* set by gw_app_close: late catalog callbacks only free */
    struct shard_subs *_subs; /* subscribe.c: shards with live subscriptions */
    size_t _nsubs;
};

/* Opens the store in cfg->data_dir and hooks it into "base". Returns 0, or -1
 * with "err" set (bad --durability, store errors). */
int gw_app_open(struct gw_app *app, struct event_base *base, const struct gw_config *cfg,
                struct gw_error *err);
/* Flushes and closes the store; frees events. */
void gw_app_close(struct gw_app *app);

/* Arranges one store_commit() on the next loop pass (coalesced). Call after
 * store_shard_append(). */
void gw_app_commit_soon(struct gw_app *app);

/* Runs fn(arg) later in this loop pass, after the events already pending
 * (in order of calls). Put acknowledgements go through it so that the pushes
 * a commit woke up (already pending) are written first. Runs at once when
 * the app has no loop (tests); pending calls run in gw_app_close(). */
void gw_app_after(struct gw_app *app, void (*fn)(void *), void *arg);

/* Schedules "name"'s CREATING -> ACTIVE after cfg->stream_delay_ms. */
void gw_app_stream_created(struct gw_app *app, const char *name);
/* Marks "name" DELETING and deletes it after cfg->stream_delay_ms. */
void gw_app_stream_delete(struct gw_app *app, const char *name);

/* Wall clock in ms. */
int64_t gw_app_now_ms(void);

/* Per-shard write throttling (--write-limit): takes "records" and "bytes"
 * from "shard"'s buckets; false if that would exceed 1000 records/s or
 * 1 MiB/s. Always true when the limit is off. */
bool gw_app_throttle_take(struct gw_app *app, struct store_shard *shard, uint32_t records,
                          uint64_t bytes);

/* Maps a store error code to a Kinesis error type. */
enum gw_errtype gw_app_store_errtype(int code);

#endif
