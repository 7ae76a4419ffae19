/* ops_admin.c - operational endpoints: GET /healthz.
 *
 * /healthz answers {"status":"ok"|"draining","version":..,"protocol":..} so a
 * load balancer or Docker healthcheck can tell a live, accepting server; the
 * protocol field says which HTTP version carried the request. */
#include <stdio.h>

#include "app.h"
#include "fanout.h"
#include "ops.h"
#include "reply.h"
#include "server.h"

void op_healthz(struct gw_app *app, struct gw_req *req)
{
    const char *proto = gw_req_proto(req) == GW_PROTO_H2 ? (gw_req_tls(req) ? "h2" : "h2c")
                                                         : "http/1.1";
    struct gw_reply w;
    gw_reply_init(&w, req);
    gw_reply_object(&w, 6);
    gw_reply_key(&w, "status");
    gw_reply_string(&w, gw_req_draining(req) ? "draining" : "ok");
    gw_reply_key(&w, "version");
    gw_reply_string(&w, SLUICE_VERSION);
    gw_reply_key(&w, "protocol");
    gw_reply_string(&w, proto);
    gw_reply_key(&w, "tls");
    gw_reply_bool(&w, gw_req_tls(req));
    gw_reply_key(&w, "connections");
    gw_reply_int(&w, (int64_t)gw_server_connections(app->srv));
    gw_reply_key(&w, "subscriptions");
    gw_reply_int(&w, (int64_t)gw_fanout_count(app->fanout));
    gw_reply_end(&w);
    gw_reply_send(&w, gw_req_draining(req) ? 503 : 200);
}
