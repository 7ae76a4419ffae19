/* router.h - both doors to one operation table.
 *
 * Upstream: http1.c/h2.c dispatch each complete request here. Downstream: the
 * Kinesis door maps `POST /` + `X-Amz-Target: Kinesis_20131202.<Op>` to an
 * operation; the REST door maps method + path under /v1 (and /healthz) to the
 * same operation. A new operation is one row in router.c's table and one
 * body function (or, for streamed answers, a handler) in an ops_*.c file. */
#ifndef SLUICE_GW_ROUTER_H
#define SLUICE_GW_ROUTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "app.h"
#include "error.h"
#include "request.h"

/* A handler answers "req" (now or later) through the response API. */
typedef void (*gw_op_fn)(struct gw_app *app, struct gw_req *req);

/* The body of a JSON-in/JSON-out operation: reads "body", sets "*out" (new,
 * NULL for an empty answer) or fails with "err"; gw_op_run decodes, calls
 * it and answers. Declare one as `gw_op_body_t op_name;`. */
typedef int gw_op_body_t(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                         struct gw_error *err);
typedef gw_op_body_t *gw_op_body_fn;

/* An operation is either a handler (it answers by itself: records,
 * subscriptions, health) or a body function run through gw_op_run, which
 * with "mutates" answers only once the change is durable. */
struct gw_op {
    const char *name;        /* Kinesis operation name; NULL for REST-only routes */
    const char *rest_method; /* NULL: no REST route */
    const char *rest_path;   /* e.g. "/v1/streams/{stream}/shards" */
    gw_op_fn handler;
    gw_op_body_fn body; /* when "handler" is NULL */
    bool mutates;
};


/* The default table (router.c). */
extern const struct gw_op gw_ops[];

/* gw_dispatch_fn for the server: "ctx" is a struct gw_app. */
void gw_router_dispatch(void *ctx, struct gw_req *req);

/* Finds the REST route for "method" "path" in "ops"; fills up to 4 path
 * parameters (borrowed into "req"'s arena). Returns the op, or NULL with
 * *method_mismatch set when the path exists under another method. */
const struct gw_op *gw_router_match_rest(const struct gw_op *ops, struct gw_req *req,
                                         const char *method, const char *path,
                                         const char **params, size_t *nparams,
                                         int *method_mismatch);

/* Finds the operation named "name" (Kinesis door). */
const struct gw_op *gw_router_find_op(const struct gw_op *ops, const char *name);

/* Rows in "ops" (before the zeroed one). */
size_t gw_router_op_count(const struct gw_op *ops);

/* The name metrics give "op": its Kinesis name, or "METHOD /path" for a
 * REST-only route. Written into "buf" (truncated to "len"). */
void gw_router_op_label(const struct gw_op *op, char *buf, size_t len);

/* Prints "METHOD /path" for every REST route of "ops", one per line. */
void gw_router_print_routes(const struct gw_op *ops, FILE *out);

#endif
