/* transition.h - the timed status changes of streams and consumers.
 *
 * Kinesis shows a new stream or consumer as CREATING and a deleted one as
 * DELETING for a while; Sluice does the same for --stream-delay. A change is
 * scheduled only once the catalog change that started it is durable (an
 * undone creation has nothing to activate), and a stop in between is
 * finished by the next start (gw_transition_recover).
 *
 * Upstream: ops_streams.c, ops_consumers.c (the operations), app.c (start and
 * stop). Downstream: store.h (status changes, deletion), loop.h (commit). */
#ifndef SLUICE_GW_TRANSITION_H
#define SLUICE_GW_TRANSITION_H

struct gw_app;
struct gw_transitions;

struct gw_transitions *gw_transitions_new(struct gw_app *app);
/* Drops pending changes (the next start finishes them). NULL is fine. */
void gw_transitions_free(struct gw_transitions *t);

/* At start: CREATING/UPDATING streams become ACTIVE, DELETING ones are
 * deleted; consumers likewise. */
void gw_transition_recover(struct gw_app *app);

/* "name" was created: ACTIVE after --stream-delay, once its creation is
 * durable. */
void gw_transition_stream_created(struct gw_app *app, const char *name);
/* Marks "name" UPDATING now (a change is rolling out) and ACTIVE again after
 * --stream-delay. */
void gw_transition_stream_update(struct gw_app *app, const char *name);
/* Marks "name" DELETING now and deletes it after --stream-delay. */
void gw_transition_stream_delete(struct gw_app *app, const char *name);
/* Consumer "name" of stream "stream" was registered: ACTIVE after
 * --stream-delay, once the registration is durable. */
void gw_transition_consumer_registered(struct gw_app *app, const char *stream, const char *name);
/* Marks the consumer DELETING now and removes it after --stream-delay. */
void gw_transition_consumer_deregister(struct gw_app *app, const char *stream, const char *name);

#endif
