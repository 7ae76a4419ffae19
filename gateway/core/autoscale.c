/* autoscale.c - ON_DEMAND streams double their shards after a window in
 * which writes were refused for throughput (see autoscale.h). */
#include "autoscale.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "mem.h"
#include "ops.h"
#include "transition.h"

/* The streams with refused writes in the current window. */
struct hot {
    struct hot *next;
    char stream[STORE_STREAM_NAME_MAX + 1];
};

struct gw_autoscale {
    struct gw_app *app;
    struct event *timer;
    struct hot *hot;
};

static void grow(struct gw_app *app, const char *name)
{
    struct store_stream *s;
    if (store_stream_lookup(app->store, name, &s, NULL) != 0)
        return;
    struct store_stream_info info;
    store_stream_info(s, &info);
    /* A stream busy with another change waits for the next window. */
    if (!info.on_demand || info.status != STORE_STREAM_ACTIVE)
        return;
    uint64_t target = 2 * (uint64_t)info.open_shard_count;
    uint32_t total = gw_op_open_shard_total(app);
    uint64_t room = app->cfg->shard_limit > total ? app->cfg->shard_limit - total : 0;
    if (target > info.open_shard_count + room)
        target = info.open_shard_count + room;
    if (target > STORE_MAX_SHARDS)
        target = STORE_MAX_SHARDS;
    if (target <= info.open_shard_count) {
        gw_log(GW_LOG_WARN, "on_demand_limit",
               "stream=%s writes are throttled but the shard limits allow no more shards "
               "(open=%u, --shard-limit %u)",
               name, info.open_shard_count, app->cfg->shard_limit);
        return;
    }
    struct store_err se = {0};
    if (store_stream_scale(s, (uint32_t)target, NULL, NULL, &se) != 0) {
        gw_log(GW_LOG_WARN, "on_demand_scale", "stream=%s: %s", name, se.msg);
        return;
    }
    gw_transition_stream_update(app, name);
    gw_log(GW_LOG_INFO, "on_demand_scale", "stream=%s from=%u to=%llu (writes were throttled)",
           name, info.open_shard_count, (unsigned long long)target);
}

static void on_window(evutil_socket_t fd, short what, void *arg)
{
    struct gw_autoscale *a = arg;
    struct hot *h = a->hot;
    a->hot = NULL;
    while (h) {
        struct hot *next = h->next;
        grow(a->app, h->stream);
        free(h);
        h = next;
    }
}

struct gw_autoscale *gw_autoscale_new(struct gw_app *app)
{
    struct gw_autoscale *a = xcalloc(1, sizeof *a);
    a->app = app;
    a->timer = event_new(app->base, -1, EV_PERSIST, on_window, a);
    if (!a->timer)
        abort();
    uint64_t ms = app->cfg->on_demand_window_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(a->timer, &tv);
    return a;
}

void gw_autoscale_free(struct gw_autoscale *a)
{
    if (!a)
        return;
    event_free(a->timer);
    while (a->hot) {
        struct hot *next = a->hot->next;
        free(a->hot);
        a->hot = next;
    }
    free(a);
}

void gw_autoscale_throttled(struct gw_autoscale *a, const char *stream)
{
    if (!a)
        return;
    for (struct hot *h = a->hot; h; h = h->next)
        if (strcmp(h->stream, stream) == 0)
            return;
    struct hot *h = xcalloc(1, sizeof *h);
    snprintf(h->stream, sizeof h->stream, "%s", stream);
    h->next = a->hot;
    a->hot = h;
}
