/* app.c - the store in the event loop, stream status transitions, write
 * throttling (see app.h). */
#include "app.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "ratelimit.h"

#define TICK_MS 10000

int64_t gw_app_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum gw_errtype gw_app_store_errtype(int code)
{
    switch (code) {
    case STORE_ENOTFOUND: return GW_ERR_RESOURCE_NOT_FOUND;
    case STORE_EEXISTS: return GW_ERR_RESOURCE_IN_USE;
    case STORE_EINVAL: return GW_ERR_INVALID_ARGUMENT;
    case STORE_ELIMIT: return GW_ERR_LIMIT_EXCEEDED;
    case STORE_ESTATE: return GW_ERR_RESOURCE_IN_USE;
    default: return GW_ERR_INTERNAL_FAILURE; /* ECORRUPT, EIO, ENOSPC */
    }
}

static void store_log(void *arg, enum store_log_level level, const char *msg)
{
    static const enum gw_log_level map[] = {GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR};
    enum gw_log_level l = (unsigned)level < 4 ? map[level] : GW_LOG_ERROR;
    gw_log(l, "store", "%s", msg);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct gw_app *app = arg;
    store_dispatch(app->store);
}

static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    struct gw_app *app = arg;
    store_commit(app->store);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct gw_app *app = arg;
    int n = store_tick(app->store, gw_app_now_ms());
    if (n > 0)
        gw_log(GW_LOG_INFO, "retention", "deleted %d segments past retention", n);
    if (store_commit_pending(app->store))
        gw_app_commit_soon(app);
}

struct gw_after {
    void (*fn)(void *);
    void *arg;
};

static void run_after(struct gw_app *app)
{
    /* Calls may queue more: take the batch first, loop until empty. */
    while (app->_nafter) {
        size_t n = app->_nafter;
        struct gw_after *v = app->_after;
        app->_after = NULL;
        app->_nafter = app->_capafter = 0;
        for (size_t i = 0; i < n; i++)
            v[i].fn(v[i].arg);
        free(v);
    }
}

static void on_after(evutil_socket_t fd, short what, void *arg) { run_after(arg); }

void gw_app_after(struct gw_app *app, void (*fn)(void *), void *arg)
{
    if (!app->_ev.after) {
        fn(arg);
        return;
    }
    if (app->_nafter == app->_capafter) {
        app->_capafter = app->_capafter ? app->_capafter * 2 : 16;
        app->_after = xrealloc(app->_after, app->_capafter * sizeof *app->_after);
    }
    app->_after[app->_nafter++] = (struct gw_after){fn, arg};
    if (app->_nafter == 1)
        event_active(app->_ev.after, EV_TIMEOUT, 0);
}

void gw_app_commit_soon(struct gw_app *app)
{
    event_active(app->_ev.commit, EV_TIMEOUT, 0);
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

/* Finishes transitions a crash interrupted: CREATING streams become ACTIVE,
 * DELETING ones are deleted. */
static void finish_transitions(struct gw_app *app)
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
            continue;
        struct store_stream_info info;
        store_stream_info(s, &info);
        if (info.status == STORE_STREAM_CREATING || info.status == STORE_STREAM_UPDATING)
            store_stream_set_status(s, STORE_STREAM_ACTIVE);
        if (info.status == STORE_STREAM_DELETING) {
            store_stream_delete(app->store, copy[i], NULL);
        } else {
            /* Consumers likewise: CREATING -> ACTIVE, DELETING -> removed. */
            size_t nc = info.consumer_count;
            struct store_consumer_info *ci = xcalloc(nc ? nc : 1, sizeof *ci);
            nc = store_consumer_list(s, 0, ci, nc);
            char (*cnames)[129] = xcalloc(nc ? nc : 1, sizeof *cnames);
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
        free(copy[i]);
    }
    free(copy);
    free(names);
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
    if (load_key(app, cfg->data_dir, err) != 0)
        return -1;
    if (store_open(cfg->data_dir, &o, &app->store, &se) != 0)
        return gw_error_set(err, GW_ERR_INTERNAL_FAILURE, "cannot open the store in %s: %s",
                            cfg->data_dir, se.msg);
    finish_transitions(app);
    app->_ev.notify = event_new(base, store_notify_fd(app->store), EV_READ | EV_PERSIST,
                                on_notify, app);
    app->_ev.commit = event_new(base, -1, 0, on_commit, app);
    app->_ev.tick = event_new(base, -1, EV_PERSIST, on_tick, app);
    app->_ev.after = event_new(base, -1, 0, on_after, app);
    if (!app->_ev.notify || !app->_ev.commit || !app->_ev.tick || !app->_ev.after)
        abort();
    event_add(app->_ev.notify, NULL);
    struct timeval tv = {TICK_MS / 1000, 0};
    event_add(app->_ev.tick, &tv);
    gw_app_commit_soon(app); /* persist what finish_transitions changed */
    return 0;
}

/* ---- per-shard write throttling ---------------------------------------------- */

struct throttle_slot {
    const struct store_shard *shard;
    struct gw_ratelimit bytes, records;
};

struct gw_throttle {
    struct throttle_slot *slots;
    size_t cap, used;
};

static struct throttle_slot *throttle_slot(struct gw_app *app, const struct store_shard *shard)
{
    struct gw_throttle *t = app->_throttle;
    if (!t)
        t = app->_throttle = xcalloc(1, sizeof *t);
    if (t->used * 2 >= t->cap) {
        /* Grow and rehash (open addressing on the shard pointer). */
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct throttle_slot *ns = xcalloc(ncap, sizeof *ns);
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slots[i].shard)
                continue;
            size_t h = ((uintptr_t)t->slots[i].shard >> 4) & (ncap - 1);
            while (ns[h].shard)
                h = (h + 1) & (ncap - 1);
            ns[h] = t->slots[i];
        }
        free(t->slots);
        t->slots = ns;
        t->cap = ncap;
    }
    size_t h = ((uintptr_t)shard >> 4) & (t->cap - 1);
    while (t->slots[h].shard && t->slots[h].shard != shard)
        h = (h + 1) & (t->cap - 1);
    if (!t->slots[h].shard) {
        uint64_t now = mono_ns();
        t->slots[h].shard = shard;
        gw_ratelimit_init(&t->slots[h].bytes, 1024 * 1024, 1024 * 1024, now);
        gw_ratelimit_init(&t->slots[h].records, 1000, 1000, now);
        t->used++;
    }
    return &t->slots[h];
}

bool gw_app_throttle_take(struct gw_app *app, struct store_shard *shard, uint32_t records,
                          uint64_t bytes)
{
    if (!app->cfg->write_limit)
        return true;
    struct throttle_slot *s = throttle_slot(app, shard);
    uint64_t now = mono_ns();
    if (gw_ratelimit_available(&s->records, now) < records ||
        gw_ratelimit_available(&s->bytes, now) < bytes)
        return false;
    gw_ratelimit_take_all(&s->records, now, records);
    gw_ratelimit_take_all(&s->bytes, now, bytes);
    return true;
}

/* Deleted shards leave their slots behind; a stream's deletion clears the
 * table (rare, and buckets simply start full again). */
static void throttle_reset(struct gw_app *app)
{
    if (!app->_throttle)
        return;
    free(app->_throttle->slots);
    free(app->_throttle);
    app->_throttle = NULL;
}

/* ---- stream transitions ------------------------------------------------------ */

struct gw_transition {
    struct gw_app *app;
    struct event *ev;
    bool delete;
    struct gw_transition *prev, *next;
    char name[STORE_STREAM_NAME_MAX + 1];
};

static void transition_free(struct gw_transition *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        t->app->_transitions = t->next;
    if (t->next)
        t->next->prev = t->prev;
    event_free(t->ev);
    free(t);
}

static void schedule(struct gw_app *app, const char *name, bool del);

/* A transition's catalog change can fail to become durable (a full or failing
 * disk): the store then rolls it back, and the stream is again CREATING or
 * DELETING. Try again after another --stream-delay rather than leave the
 * stream stuck in that state until the next restart. */
struct transition_sync {
    struct gw_app *app;
    bool delete;
    char name[STORE_STREAM_NAME_MAX + 1];
};

static void on_transition_durable(void *arg, const struct store_err *se)
{
    struct transition_sync *ts = arg;
    struct gw_app *app = ts->app;
    struct store_stream *s;
    if (se && !app->_closing && store_stream_lookup(app->store, ts->name, &s, NULL) == 0) {
        struct store_stream_info info;
        store_stream_info(s, &info);
        enum store_stream_status from = ts->delete ? STORE_STREAM_DELETING : STORE_STREAM_CREATING;
        if (info.status == from) {
            gw_log(GW_LOG_WARN, "stream_transition_retry", "stream=%s to=%s: %s", ts->name,
                   ts->delete ? "deleted" : "ACTIVE", se->msg);
            schedule(app, ts->name, ts->delete);
        }
    }
    free(ts);
}

static void on_transition(evutil_socket_t fd, short what, void *arg)
{
    struct gw_transition *t = arg;
    struct gw_app *app = t->app;
    struct store_stream *s;
    if (store_stream_lookup(app->store, t->name, &s, NULL) == 0) {
        struct store_stream_info info;
        store_stream_info(s, &info);
        bool changed = false;
        if (t->delete && info.status == STORE_STREAM_DELETING) {
            throttle_reset(app);
            changed = store_stream_delete(app->store, t->name, NULL) == 0;
            if (changed)
                gw_log(GW_LOG_INFO, "stream_deleted", "stream=%s", t->name);
        } else if (!t->delete && info.status == STORE_STREAM_CREATING) {
            store_stream_set_status(s, STORE_STREAM_ACTIVE);
            changed = true;
        }
        if (changed) {
            struct transition_sync *ts = xcalloc(1, sizeof *ts);
            ts->app = app;
            ts->delete = t->delete;
            memcpy(ts->name, t->name, sizeof ts->name);
            store_catalog_sync(app->store, on_transition_durable, ts);
        }
        gw_app_commit_soon(app);
    }
    transition_free(t);
}

static void schedule(struct gw_app *app, const char *name, bool del)
{
    struct gw_transition *t = xcalloc(1, sizeof *t);
    t->app = app;
    t->delete = del;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ev = evtimer_new(app->base, on_transition, t);
    if (!t->ev)
        abort();
    t->next = app->_transitions;
    if (t->next)
        t->next->prev = t;
    app->_transitions = t;
    uint64_t ms = app->cfg->stream_delay_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(t->ev, &tv);
}

void gw_app_stream_created(struct gw_app *app, const char *name)
{
    schedule(app, name, false);
}

void gw_app_stream_delete(struct gw_app *app, const char *name)
{
    struct store_stream *s;
    if (store_stream_lookup(app->store, name, &s, NULL) != 0)
        return;
    store_stream_set_status(s, STORE_STREAM_DELETING);
    gw_app_commit_soon(app);
    schedule(app, name, true);
}

void gw_app_close(struct gw_app *app)
{
    app->_closing = true;
    /* Pending transitions are finished by the next start (finish_transitions). */
    while (app->_transitions)
        transition_free(app->_transitions);
    if (app->_ev.notify)
        event_free(app->_ev.notify);
    if (app->_ev.commit)
        event_free(app->_ev.commit);
    if (app->_ev.tick)
        event_free(app->_ev.tick);
    store_close(app->store);
    app->store = NULL;
    run_after(app); /* acknowledgements the close's commit queued */
    if (app->_ev.after)
        event_free(app->_ev.after);
    app->_ev.after = NULL;
    throttle_reset(app);
}
