/* loop.c - the store in the event loop; push before acknowledge (see
 * loop.h). */
#include "loop.h"

#include <event2/event.h>
#include <stdlib.h>

#include "app.h"
#include "fanout.h"
#include "log.h"
#include "mem.h"

#define TICK_MS 10000

struct ack {
    void (*fn)(void *);
    void *arg;
};

struct gw_loop {
    struct gw_app *app;
    struct event *notify; /* store_notify_fd readable */
    struct event *commit; /* zero-delay, armed by gw_loop_commit_soon */
    struct event *tick;   /* retention */
    struct event *acks_ev; /* acknowledgements queued outside after_store() */
    struct ack *acks;
    size_t nacks, capacks;
};

static void run_acks(struct gw_loop *l)
{
    /* An acknowledgement may queue more: take the batch, loop until empty. */
    while (l->nacks) {
        size_t n = l->nacks;
        struct ack *v = l->acks;
        l->acks = NULL;
        l->nacks = l->capacks = 0;
        for (size_t i = 0; i < n; i++)
            v[i].fn(v[i].arg);
        free(v);
    }
}

/* Everything a commit or a sync result decided, in order: pushes first,
 * then the producers' acknowledgements. */
static void after_store(struct gw_loop *l)
{
    gw_fanout_deliver(l->app->fanout);
    run_acks(l);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct gw_loop *l = arg;
    store_dispatch(l->app->store);
    after_store(l);
}

static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    struct gw_loop *l = arg;
    store_commit(l->app->store);
    after_store(l);
}

static void on_acks(evutil_socket_t fd, short what, void *arg) { after_store(arg); }

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct gw_loop *l = arg;
    int n = store_tick(l->app->store, gw_app_now_ms());
    if (n > 0)
        gw_log(GW_LOG_INFO, "retention", "deleted %d segments past retention", n);
    if (store_commit_pending(l->app->store))
        gw_loop_commit_soon(l->app);
}

struct gw_loop *gw_loop_new(struct gw_app *app)
{
    struct gw_loop *l = xcalloc(1, sizeof *l);
    l->app = app;
    l->notify = event_new(app->base, store_notify_fd(app->store), EV_READ | EV_PERSIST, on_notify,
                          l);
    l->commit = event_new(app->base, -1, 0, on_commit, l);
    l->tick = event_new(app->base, -1, EV_PERSIST, on_tick, l);
    l->acks_ev = event_new(app->base, -1, 0, on_acks, l);
    if (!l->notify || !l->commit || !l->tick || !l->acks_ev)
        abort();
    event_add(l->notify, NULL);
    struct timeval tv = {TICK_MS / 1000, 0};
    event_add(l->tick, &tv);
    return l;
}

void gw_loop_stop(struct gw_loop *l)
{
    if (!l)
        return;
    if (l->notify)
        event_free(l->notify);
    if (l->commit)
        event_free(l->commit);
    if (l->tick)
        event_free(l->tick);
    l->notify = l->commit = l->tick = NULL;
}

void gw_loop_free(struct gw_loop *l)
{
    if (!l)
        return;
    gw_loop_stop(l);
    run_acks(l);
    event_free(l->acks_ev);
    free(l);
}

void gw_loop_commit_soon(struct gw_app *app)
{
    if (app->loop && app->loop->commit)
        event_active(app->loop->commit, EV_TIMEOUT, 0);
}

void gw_loop_ack(struct gw_app *app, void (*fn)(void *), void *arg)
{
    struct gw_loop *l = app->loop;
    if (!l) {
        fn(arg);
        return;
    }
    if (l->nacks == l->capacks) {
        l->capacks = l->capacks ? l->capacks * 2 : 16;
        l->acks = xrealloc(l->acks, l->capacks * sizeof *l->acks);
    }
    l->acks[l->nacks++] = (struct ack){fn, arg};
    /* Queued from a store callback, after_store() runs it before this
     * callback returns; queued anywhere else (a failed append answered at
     * once), this event does, pushes first as well. */
    if (l->nacks == 1)
        event_active(l->acks_ev, EV_TIMEOUT, 0);
}
