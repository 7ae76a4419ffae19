/* ops_admin.c - operational endpoints: GET /healthz.
 *
 * /healthz answers {"status":"ok"|"draining","version":..,"protocol":..} so a
 * load balancer or Docker healthcheck can tell a live, accepting server; the
 * protocol field says which HTTP version carried the request. */
#include <stdio.h>

#include "ops.h"
#include "server.h"
#include "subscribe.h"

void op_healthz(struct gw_app *app, struct gw_req *req)
{
    char body[256];
    const char *proto = gw_req_proto(req) == GW_PROTO_H2 ? (gw_req_tls(req) ? "h2" : "h2c")
                                                         : "http/1.1";
    snprintf(body, sizeof body,
             "{\"status\":\"%s\",\"version\":\"%s\",\"protocol\":\"%s\",\"tls\":%s,"
             "\"connections\":%zu,\"subscriptions\":%zu}",
             gw_req_draining(req) ? "draining" : "ok", SLUICE_VERSION, proto,
             gw_req_tls(req) ? "true" : "false", gw_server_connections(app->srv),
             gw_sub_count(app));
    gw_reply_json(req, gw_req_draining(req) ? 503 : 200, body);
}
