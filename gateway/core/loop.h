/* loop.h - the store in the event loop, and the order of a commit's effects.
 *
 * The store has no loop of its own: the gateway commits appended records
 * once per loop pass (gw_loop_commit_soon), takes the syncer's results when
 * store_notify_fd() is readable, and runs retention every 10 s. What a commit
 * or a sync result makes readable and acknowledgeable is then handled in one
 * fixed order (after_store() in loop.c):
 *
 *   1. push: the fan-out engine writes the new records to every subscription
 *      the store woke (gw_fanout_deliver), onto its connection;
 *   2. acknowledge: the producers' replies queued with gw_loop_ack() run.
 *
 * So a subscriber's event is on its connection before the producer's 200 is
 * written, by construction rather than by the order libevent happens to run
 * events in.
 *
 * Upstream: app.c (start, stop); ops_records.c (commit, acknowledgements);
 * ops_util.c, transition.c (commit after catalog changes). Downstream:
 * store.h, fanout.h. */
#ifndef SLUICE_GW_LOOP_H
#define SLUICE_GW_LOOP_H

struct gw_app;
struct gw_loop;

/* Hooks app->store into app->base. */
struct gw_loop *gw_loop_new(struct gw_app *app);
/* Stops committing and dispatching (before store_close()). */
void gw_loop_stop(struct gw_loop *l);
/* Runs the acknowledgements still queued (store_close() commits and fires
 * the last tickets), then frees. NULL is fine. */
void gw_loop_free(struct gw_loop *l);

/* Arranges one store_commit() on the next loop pass (coalesced). Call after
 * store_shard_append() and after catalog changes. */
void gw_loop_commit_soon(struct gw_app *app);

/* Queues fn(arg), an acknowledgement to a producer, to run after the pushes
 * of the commit that made it durable (step 2 above). Runs at once when the
 * app has no loop (unit tests). */
void gw_loop_ack(struct gw_app *app, void (*fn)(void *), void *arg);

#endif
