/* transition.c - timed status changes of streams and consumers (see
 * transition.h). */
#include "transition.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "loop.h"
#include "mem.h"
#include "throttle.h"

#define CONSUMER_NAME_MAX 128 /* [a-zA-Z0-9_.-]{1,128} */

enum what { STREAM_ACTIVATE, STREAM_DELETE, CONSUMER_ACTIVATE, CONSUMER_REMOVE, STREAM_SETTLE };

/* One pending change: a timer, or a wait for a catalog sync. Every one is on
 * the list so that a stop frees them all. */
struct change {
    struct gw_transitions *owner;
    struct event *ev; /* NULL while waiting for durability */
    enum what what;
    bool orphaned;    /* the owner is gone: a late sync callback only frees */
    char stream[STORE_STREAM_NAME_MAX + 1];
    char consumer[CONSUMER_NAME_MAX + 1];
    struct change *prev, *next;
};

struct gw_transitions {
    struct gw_app *app;
    struct change *list;
};

struct gw_transitions *gw_transitions_new(struct gw_app *app)
{
    struct gw_transitions *t = xcalloc(1, sizeof *t);
    t->app = app;
    return t;
}

static void unlink_change(struct change *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (c->owner)
        c->owner->list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void change_free(struct change *c)
{
    unlink_change(c);
    if (c->ev)
        event_free(c->ev);
    free(c);
}

void gw_transitions_free(struct gw_transitions *t)
{
    if (!t)
        return;
    while (t->list) {
        struct change *c = t->list;
        unlink_change(c);
        if (c->ev) {
            event_free(c->ev);
            free(c);
        } else {
            /* A catalog sync still holds it: its callback frees it. */
            c->owner = NULL;
            c->orphaned = true;
        }
    }
    free(t);
}

static struct change *change_new(struct gw_app *app, enum what what, const char *stream,
                                 const char *consumer)
{
    struct change *c = xcalloc(1, sizeof *c);
    c->owner = app->transitions;
    c->what = what;
    snprintf(c->stream, sizeof c->stream, "%s", stream);
    if (consumer)
        snprintf(c->consumer, sizeof c->consumer, "%s", consumer);
    c->next = c->owner->list;
    if (c->next)
        c->next->prev = c;
    c->owner->list = c;
    return c;
}

static void schedule(struct change *c);

/* Whether the stream or consumer is still in the state the change starts
 * from (CREATING or DELETING): the timer acts only then, and a failed sync
 * that undid the change is retried only then. Sets "*stream". */
static bool still_pending(struct gw_app *app, const struct change *c, struct store_stream **stream)
{
    if (store_stream_lookup(app->store, c->stream, stream, NULL) != 0)
        return false;
    struct store_stream_info info;
    store_stream_info(*stream, &info);
    struct store_consumer_info ci;
    switch (c->what) {
    case STREAM_ACTIVATE: return info.status == STORE_STREAM_CREATING;
    case STREAM_DELETE: return info.status == STORE_STREAM_DELETING;
    case STREAM_SETTLE: return info.status == STORE_STREAM_UPDATING;
    case CONSUMER_ACTIVATE:
        return store_consumer_lookup(*stream, c->consumer, &ci, NULL) == 0 &&
               ci.status == STORE_CONSUMER_CREATING;
    case CONSUMER_REMOVE:
        return store_consumer_lookup(*stream, c->consumer, &ci, NULL) == 0 &&
               ci.status == STORE_CONSUMER_DELETING;
    }
    return false;
}

/* The change itself, when its timer fires. Returns true if the catalog
 * changed (then it must become durable). */
static bool apply(struct gw_app *app, struct change *c)
{
    struct store_stream *s;
    if (!still_pending(app, c, &s))
        return false;
    switch (c->what) {
    case STREAM_ACTIVATE:
    case STREAM_SETTLE: store_stream_set_status(s, STORE_STREAM_ACTIVE); return true;
    case STREAM_DELETE:
        /* Its shards' buckets go with it (the table is keyed by shard). */
        gw_throttle_forget(app->throttle);
        if (store_stream_delete(app->store, c->stream, NULL) != 0)
            return false;
        gw_log(GW_LOG_INFO, "stream_deleted", "stream=%s", c->stream);
        return true;
    case CONSUMER_ACTIVATE:
        return store_consumer_set_status(s, c->consumer, STORE_CONSUMER_ACTIVE, NULL) == 0;
    case CONSUMER_REMOVE: return store_consumer_deregister(s, c->consumer, NULL) == 0;
    }
    return false;
}

/* A change's catalog write can fail to become durable (a full or failing
 * disk): the store then rolls it back and the stream or consumer is again
 * CREATING or DELETING. Try again after another --stream-delay rather than
 * leave it stuck in that state until the next restart. */
static void on_applied_durable(void *arg, const struct store_err *se)
{
    struct change *c = arg;
    if (c->orphaned) {
        free(c);
        return;
    }
    struct gw_app *app = c->owner->app;
    struct store_stream *s;
    if (se && still_pending(app, c, &s)) {
        static const char *const to[] = {"ACTIVE", "deleted", "ACTIVE", "removed", "ACTIVE"};
        if (c->what != CONSUMER_ACTIVATE && c->what != CONSUMER_REMOVE)
            gw_log(GW_LOG_WARN, "stream_transition_retry", "stream=%s to=%s: %s", c->stream,
                   to[c->what], se->msg);
        else
            gw_log(GW_LOG_WARN, "consumer_transition_retry", "stream=%s consumer=%s to=%s: %s",
                   c->stream, c->consumer, to[c->what], se->msg);
        schedule(c);
        return;
    }
    change_free(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct change *c = arg;
    struct gw_app *app = c->owner->app;
    event_free(c->ev);
    c->ev = NULL;
    if (apply(app, c)) {
        store_catalog_sync(app->store, on_applied_durable, c);
        gw_loop_commit_soon(app);
        return;
    }
    change_free(c);
}

static void schedule(struct change *c)
{
    struct gw_app *app = c->owner->app;
    c->ev = evtimer_new(app->base, on_timer, c);
    if (!c->ev)
        abort();
    uint64_t ms = app->cfg->stream_delay_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(c->ev, &tv);
}

/* A creation or registration starts its timer once it is durable; if the
 * write failed the store has undone it (the client's reply, parked on the
 * same sync, reports the error) and there is nothing to activate. */
static void on_start_durable(void *arg, const struct store_err *se)
{
    struct change *c = arg;
    if (c->orphaned) {
        free(c);
        return;
    }
    if (se) {
        change_free(c);
        return;
    }
    schedule(c);
}

void gw_transition_stream_created(struct gw_app *app, const char *name)
{
    struct change *c = change_new(app, STREAM_ACTIVATE, name, NULL);
    store_catalog_sync(app->store, on_start_durable, c);
}

void gw_transition_consumer_registered(struct gw_app *app, const char *stream, const char *name)
{
    struct change *c = change_new(app, CONSUMER_ACTIVATE, stream, name);
    store_catalog_sync(app->store, on_start_durable, c);
}

void gw_transition_stream_delete(struct gw_app *app, const char *name)
{
    struct store_stream *s;
    if (store_stream_lookup(app->store, name, &s, NULL) != 0)
        return;
    store_stream_set_status(s, STORE_STREAM_DELETING);
    gw_loop_commit_soon(app);
    schedule(change_new(app, STREAM_DELETE, name, NULL));
}

void gw_transition_stream_update(struct gw_app *app, const char *name)
{
    struct store_stream *s;
    if (store_stream_lookup(app->store, name, &s, NULL) != 0)
        return;
    store_stream_set_status(s, STORE_STREAM_UPDATING);
    gw_loop_commit_soon(app);
    schedule(change_new(app, STREAM_SETTLE, name, NULL));
}

void gw_transition_consumer_deregister(struct gw_app *app, const char *stream, const char *name)
{
    struct store_stream *s;
    if (store_stream_lookup(app->store, stream, &s, NULL) != 0)
        return;
    store_consumer_set_status(s, name, STORE_CONSUMER_DELETING, NULL);
    gw_loop_commit_soon(app);
    schedule(change_new(app, CONSUMER_REMOVE, stream, name));
}

void gw_transition_recover(struct gw_app *app)
{
    size_t n = store_stream_count(app->store);
    const char **names = xcalloc(n ? n : 1, sizeof *names);
    char **copy = xcalloc(n ? n : 1, sizeof *copy);
    n = store_stream_list(app->store, NULL, names, n);
    for (size_t i = 0; i < n; i++)
        copy[i] = xstrdup(names[i]);
    for (size_t i = 0; i < n; i++) {
        struct store_stream *s;
        if (store_stream_lookup(app->store, copy[i], &s, NULL) != 0)
            goto next;
        struct store_stream_info info;
        store_stream_info(s, &info);
        if (info.status == STORE_STREAM_DELETING) {
            store_stream_delete(app->store, copy[i], NULL);
            goto next;
        }
        if (info.status == STORE_STREAM_CREATING || info.status == STORE_STREAM_UPDATING)
            store_stream_set_status(s, STORE_STREAM_ACTIVE);
        size_t nc = info.consumer_count;
        struct store_consumer_info *ci = xcalloc(nc ? nc : 1, sizeof *ci);
        nc = store_consumer_list(s, 0, ci, nc);
        /* Names are copied first: deregistering frees the listed entries. */
        char (*cnames)[CONSUMER_NAME_MAX + 1] = xcalloc(nc ? nc : 1, sizeof *cnames);
        for (size_t k = 0; k < nc; k++)
            snprintf(cnames[k], sizeof cnames[k], "%s", ci[k].name);
        for (size_t k = 0; k < nc; k++) {
            if (ci[k].status == STORE_CONSUMER_CREATING)
                store_consumer_set_status(s, cnames[k], STORE_CONSUMER_ACTIVE, NULL);
            else if (ci[k].status == STORE_CONSUMER_DELETING)
                store_consumer_deregister(s, cnames[k], NULL);
        }
        free(cnames);
        free(ci);
    next:
        free(copy[i]);
    }
    free(copy);
    free(names);
}
