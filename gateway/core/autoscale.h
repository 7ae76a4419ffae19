/* autoscale.h - ON_DEMAND streams grow with their writes.
 *
 * A documented simplification of AWS's on-demand policy (docs/protocol.md
 * §1.4): when writes to any shard of an ON_DEMAND stream were refused by
 * --write-limit during a window of --on-demand-window, the stream's open
 * shard count doubles (uniform scaling, within 10,000 shards per stream and
 * --shard-limit) when the window ends. Streams never shrink by themselves.
 * Without --write-limit nothing is refused, so nothing grows.
 *
 * Upstream: ops_records.c reports refused writes; app.c owns it.
 * Downstream: the store's uniform scaling, transition.c (UPDATING). */
#ifndef SLUICE_GW_AUTOSCALE_H
#define SLUICE_GW_AUTOSCALE_H

struct gw_app;
struct gw_autoscale;

/* Starts the window timer on app->base. */
struct gw_autoscale *gw_autoscale_new(struct gw_app *app);
void gw_autoscale_free(struct gw_autoscale *a);

/* A write to ON_DEMAND stream "stream" was refused for throughput. */
void gw_autoscale_throttled(struct gw_autoscale *a, const char *stream);

#endif
