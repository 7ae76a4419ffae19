/* ops.h - operation handlers, one group per ops_*.c file; each is one row of
 * router.c's table. */
#ifndef SLUICE_GW_OPS_H
#define SLUICE_GW_OPS_H

#include "router.h"

/* ops_admin.c */
void op_healthz(struct gw_app *app, struct gw_req *req);

#endif
