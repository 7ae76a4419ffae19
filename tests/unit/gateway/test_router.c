/* test_router.c - both doors to one table: matching, parameters, and the
 * error paths, driven with fake-transport requests (no sockets). */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <string.h>

#include "request-internal.h"
#include "router.h"

static void t_send(struct gw_req *r) {}
static void t_nop(struct gw_req *r) {}
static const struct gw_req_transport fake = {t_send, t_nop, t_nop, NULL};
static bool draining;

static const char *called;
static void h_put(struct gw_app *app, struct gw_req *req)
{
    called = "PutRecords";
    gw_resp_send(req, 200, "{}", 2);
}
static void h_list(struct gw_app *app, struct gw_req *req)
{
    called = "ListShards";
    gw_resp_send(req, 200, "{}", 2);
}
static void h_shard(struct gw_app *app, struct gw_req *req)
{
    called = "GetRecords";
    gw_resp_send(req, 200, "{}", 2);
}

static const struct gw_op table[] = {
    {"PutRecords", "POST", "/v1/streams/{stream}/records", .handler = h_put},
    {"ListShards", "GET", "/v1/streams/{stream}/shards", .handler = h_list},
    {"GetRecords", "GET", "/v1/streams/{stream}/shards/{shard}/records", .handler = h_shard},
    {0},
};

static struct gw_app app = {.ops = table};

static struct gw_req *mk(const char *method, const char *target, const char *ct, const char *tgt)
{
    struct gw_req *r = gw_req_new(GW_PROTO_H2, false, 1, &fake, NULL, &draining);
    gw_req_set_line(r, method, strlen(method), target, strlen(target));
    if (ct)
        gw_req_add_header(r, "content-type", 12, ct, strlen(ct), 1 << 20);
    if (tgt)
        gw_req_add_header(r, "x-amz-target", 12, tgt, strlen(tgt), 1 << 20);
    r->handler_owned = true;
    called = NULL;
    gw_router_dispatch(&app, r);
    return r;
}

static const char *body(struct gw_req *r)
{
    static char buf[512];
    size_t n = evbuffer_copyout(r->resp.body, buf, sizeof buf - 1);
    buf[n] = '\0';
    return buf;
}

static const char *resp_header(struct gw_req *r, const char *name)
{
    for (size_t i = 0; i < r->resp.nhdrs; i++)
        if (!strcmp(r->resp.hdrs[i].name, name))
            return r->resp.hdrs[i].value;
    return NULL;
}

Test(router, kinesis_door_dispatches_by_target)
{
    struct gw_req *r = mk("POST", "/", "application/x-amz-json-1.1", "Kinesis_20131202.ListShards");
    cr_expect_str_eq(called, "ListShards");
    cr_expect_eq(gw_req_op(r), &table[1]);
    gw_req_free(r);
}

Test(router, rest_door_dispatches_with_params)
{
    struct gw_req *r = mk("GET", "/v1/streams/orders/shards/shardId-000000000001/records?from=x",
                          NULL, NULL);
    cr_expect_str_eq(called, "GetRecords");
    cr_expect_str_eq(gw_req_param(r, 0), "orders");
    cr_expect_str_eq(gw_req_param(r, 1), "shardId-000000000001");
    cr_expect_null(gw_req_param(r, 2));
    gw_req_free(r);
    r = mk("POST", "/v1/streams/orders/records", "application/json", NULL);
    cr_expect_str_eq(called, "PutRecords");
    gw_req_free(r);
    r = mk("POST", "/v1/streams/orders/records", "application/octet-stream", NULL);
    cr_expect_str_eq(called, "PutRecords");
    gw_req_free(r);
}

/* A POST a browser could send across origins without a preflight never
 * reaches a handler. */
Test(router, rest_post_needs_a_non_simple_content_type)
{
    const char *bad[] = {NULL, "text/plain", "text/plain; charset=utf-8",
                         "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gw_req *r = mk("POST", "/v1/streams/orders/records", bad[i], NULL);
        cr_expect_null(called, "%s reached the handler", bad[i] ? bad[i] : "(none)");
        cr_expect_eq(r->resp.status, 415, "%s", bad[i] ? bad[i] : "(none)");
        cr_expect(strstr(body(r), "UnsupportedMediaType") != NULL, "%s", body(r));
        gw_req_free(r);
    }
}

Test(router, rest_door_near_misses_are_404)
{
    const char *paths[] = {"/v1/streams//shards", "/v1/streams/a/shards/", "/v1/streams/a",
                           "/v1/streams/a/shardsX", "/v1", "/healthz"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct gw_req *r = mk("GET", paths[i], NULL, NULL);
        cr_expect_null(called, "%s", paths[i]);
        cr_expect_eq(r->resp.status, 404, "%s", paths[i]);
        cr_expect(strstr(body(r), "\"__type\":\"NotFoundException\"") != NULL, "%s", body(r));
        gw_req_free(r);
    }
}

Test(router, rest_door_wrong_method_is_405_with_allow)
{
    struct gw_req *r = mk("DELETE", "/v1/streams/a/records", NULL, NULL);
    cr_expect_eq(r->resp.status, 405);
    cr_expect_str_eq(resp_header(r, "allow"), "POST");
    gw_req_free(r);
}

Test(router, kinesis_door_errors)
{
    struct gw_req *r = mk("POST", "/", "application/x-amz-json-1.1", "Kinesis_20131202.Nope");
    cr_expect_eq(r->resp.status, 400);
    cr_expect(strstr(body(r), "UnknownOperationException") != NULL);
    cr_expect_str_eq(resp_header(r, "content-type"), "application/x-amz-json-1.1");
    gw_req_free(r);

    r = mk("POST", "/", "application/x-amz-json-1.1", "Other_20131202.ListShards");
    cr_expect_eq(r->resp.status, 400, "foreign target prefix");
    gw_req_free(r);

    r = mk("POST", "/", "application/x-amz-json-1.1", "Kinesis_20131202.");
    cr_expect_eq(r->resp.status, 400, "empty operation name");
    gw_req_free(r);

    r = mk("POST", "/", "application/x-amz-json-1.1", NULL);
    cr_expect_eq(r->resp.status, 400);
    cr_expect(strstr(body(r), "Missing X-Amz-Target") != NULL);
    gw_req_free(r);

    r = mk("POST", "/", "text/plain", "Kinesis_20131202.ListShards");
    cr_expect_eq(r->resp.status, 404);
    cr_expect(strstr(body(r), "\"__type\":\"UnknownOperationException\"") != NULL);
    cr_expect_null(called);
    gw_req_free(r);

    r = mk("POST", "/", "application/x-amz-json-1.10", "Kinesis_20131202.ListShards");
    cr_expect_eq(r->resp.status, 404, "content type prefix is not enough");
    gw_req_free(r);

    r = mk("GET", "/", NULL, "Kinesis_20131202.ListShards");
    cr_expect_eq(r->resp.status, 405);
    cr_expect_str_eq(resp_header(r, "allow"), "POST");
    gw_req_free(r);

    r = mk("POST", "/", "application/x-amz-json-1.1; charset=utf-8", "Kinesis_20131202.ListShards");
    cr_expect_str_eq(called, "ListShards", "parameters after the media type are fine");
    gw_req_free(r);
}

Test(router, default_table_serves_healthz)
{
    const struct gw_op *op = NULL;
    for (const struct gw_op *o = gw_ops; o->handler || o->body; o++)
        if (o->rest_path && !strcmp(o->rest_path, "/healthz") && !strcmp(o->rest_method, "GET"))
            op = o;
    cr_expect_not_null(op);
}
