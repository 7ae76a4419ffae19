/* transition.c - timed status changes of streams and consumers (see
 * transition.h). */
#include "transition.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* A stream or consumer seen in a timed state (CREATING, UPDATING,
 * DELETING) by the orphan sweep, and since when. */
struct seen {
    char key[STORE_STREAM_NAME_MAX + CONSUMER_NAME_MAX + 2]; /* "stream" or "stream/consumer" */
    int64_t since_ms;
    bool live; /* seen in this sweep */
};

struct gw_transitions {
    struct gw_app *app;
    struct change *list;
    struct event *sweep; /* jetstream backend only; NULL otherwise */
    struct seen *seen;
    size_t nseen, capseen;
};

/* On the jetstream backend a timed change is made by the gateway that took
 * the request; if that gateway dies first, the others finish it once it
 * has been pending ORPHAN_GRACE_MS beyond --stream-delay. */
#define SWEEP_MS 1000
#define ORPHAN_GRACE_MS 10000

static void on_sweep(evutil_socket_t fd, short what, void *arg);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct gw_transitions *gw_transitions_new(struct gw_app *app)
{
    struct gw_transitions *t = xcalloc(1, sizeof *t);
    t->app = app;
    if (app->cfg->backend && strcmp(app->cfg->backend, "jetstream") == 0) {
        t->sweep = event_new(app->base, -1, EV_PERSIST, on_sweep, t);
        if (!t->sweep)
            abort();
        struct timeval tv = {SWEEP_MS / 1000, (SWEEP_MS % 1000) * 1000};
        event_add(t->sweep, &tv);
    }
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
    if (t->sweep)
        event_free(t->sweep);
    free(t->seen);
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

/* The streams' names, copied (changes made while going through them free
 * the store's); free with free_names. */
static char **stream_names(struct gw_app *app, size_t *n)
{
    size_t k = store_stream_count(app->store);
    const char **names = xcalloc(k ? k : 1, sizeof *names);
    char **copy = xcalloc(k ? k : 1, sizeof *copy);
    k = store_stream_list(app->store, NULL, names, k);
    for (size_t i = 0; i < k; i++)
        copy[i] = xstrdup(names[i]);
    free(names);
    *n = k;
    return copy;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void gw_transition_recover(struct gw_app *app)
{
    size_t n;
    char **copy = stream_names(app, &n);
    for (size_t i = 0; i < n; i++) {
        struct store_stream *s;
        if (store_stream_lookup(app->store, copy[i], &s, NULL) != 0)
            continue;
        struct store_stream_info info;
        store_stream_info(s, &info);
        if (info.status == STORE_STREAM_DELETING) {
            store_stream_delete(app->store, copy[i], NULL);
            continue;
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
    }
    free_names(copy, n);
}

/* ---- orphans (jetstream backend) ---------------------------------------- */

/* Whether this gateway has a change of kind "what" for the item pending. */
static bool have_change(const struct gw_transitions *t, enum what what, const char *stream,
                        const char *consumer)
{
    for (const struct change *c = t->list; c; c = c->next)
        if (c->what == what && strcmp(c->stream, stream) == 0 &&
            strcmp(c->consumer, consumer ? consumer : "") == 0)
            return true;
    return false;
}

/* Notes the item in a timed state; true once it has been so, unattended
 * here, for longer than --stream-delay plus ORPHAN_GRACE_MS. */
static bool orphaned(struct gw_transitions *t, const char *stream, const char *consumer,
                     int64_t now)
{
    char key[sizeof t->seen->key];
    snprintf(key, sizeof key, "%s%s%s", stream, consumer ? "/" : "", consumer ? consumer : "");
    for (size_t i = 0; i < t->nseen; i++) {
        if (strcmp(t->seen[i].key, key) != 0)
            continue;
        t->seen[i].live = true;
        return now - t->seen[i].since_ms >
               (int64_t)t->app->cfg->stream_delay_ms + ORPHAN_GRACE_MS;
    }
    if (t->nseen == t->capseen) {
        t->capseen = t->capseen ? t->capseen * 2 : 16;
        t->seen = xrealloc(t->seen, t->capseen * sizeof *t->seen);
    }
    struct seen *e = &t->seen[t->nseen++];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->since_ms = now;
    e->live = true;
    return false;
}

/* Finishes the change now, as its own gateway's timer would have. */
static void adopt(struct gw_transitions *t, enum what what, const char *stream,
                  const char *consumer)
{
    struct gw_app *app = t->app;
    if (have_change(t, what, stream, consumer))
        return;
    gw_log(GW_LOG_WARN, "orphaned_transition", "stream=%s%s%s: finishing a change another "
           "gateway started", stream, consumer ? " consumer=" : "", consumer ? consumer : "");
    struct change *c = change_new(app, what, stream, consumer);
    if (apply(app, c)) {
        store_catalog_sync(app->store, on_applied_durable, c);
        gw_loop_commit_soon(app);
        return;
    }
    change_free(c);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_transitions *t = arg;
    struct gw_app *app = t->app;
    int64_t now = mono_ms();
    for (size_t i = 0; i < t->nseen; i++)
        t->seen[i].live = false;
    size_t n;
    char **copy = stream_names(app, &n);
    for (size_t i = 0; i < n; i++) {
        struct store_stream *s;
        struct store_stream_info info;
        if (store_stream_lookup(app->store, copy[i], &s, NULL) != 0)
            continue;
        store_stream_info(s, &info);
        enum what sw = info.status == STORE_STREAM_CREATING   ? STREAM_ACTIVATE
                       : info.status == STORE_STREAM_UPDATING ? STREAM_SETTLE
                                                              : STREAM_DELETE;
        if (info.status != STORE_STREAM_ACTIVE && orphaned(t, copy[i], NULL, now)) {
            adopt(t, sw, copy[i], NULL);
            continue; /* its consumers next sweep, if it is still there */
        }
        size_t nc = info.consumer_count;
        struct store_consumer_info *ci = xcalloc(nc ? nc : 1, sizeof *ci);
        nc = store_consumer_list(s, 0, ci, nc);
        char (*cn)[CONSUMER_NAME_MAX + 1] = xcalloc(nc ? nc : 1, sizeof *cn);
        enum store_consumer_status *st = xcalloc(nc ? nc : 1, sizeof *st);
        for (size_t k = 0; k < nc; k++) {
            snprintf(cn[k], sizeof cn[k], "%s", ci[k].name);
            st[k] = ci[k].status;
        }
        for (size_t k = 0; k < nc; k++)
            if (st[k] != STORE_CONSUMER_ACTIVE && orphaned(t, copy[i], cn[k], now))
                adopt(t, st[k] == STORE_CONSUMER_CREATING ? CONSUMER_ACTIVATE : CONSUMER_REMOVE,
                      copy[i], cn[k]);
        free(st);
        free(cn);
        free(ci);
    }
    free_names(copy, n);
    /* Forget what is no longer in a timed state. */
    size_t k = 0;
    for (size_t i = 0; i < t->nseen; i++)
        if (t->seen[i].live)
            t->seen[k++] = t->seen[i];
    t->nseen = k;
}
