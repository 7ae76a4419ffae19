/* test_request.c - struct gw_req and the response API, without sockets: a
 * fake transport records what a protocol would be asked to do. */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <string.h>

#include "request-internal.h"

static int sends, streams, resumes, aborts;
static void t_send(struct gw_req *r) { sends++; }
static void t_stream(struct gw_req *r) { streams++; }
static void t_resume(struct gw_req *r) { resumes++; }
static const struct gw_req_transport fake = {t_send, t_stream, t_resume, NULL};
static bool draining;

static struct gw_req *mkreq(const char *method, const char *target)
{
    struct gw_req *r = gw_req_new(GW_PROTO_HTTP1, false, 7, &fake, NULL, &draining);
    gw_req_set_line(r, method, strlen(method), target, strlen(target));
    return r;
}

static void on_abort(struct gw_req *r, void *ctx) { aborts++; }

Test(request, line_headers_query)
{
    struct gw_req *r = mkreq("GET", "/v1/streams/s1/records?from=TRIM_HORIZON&x=a%2Fb+c&e");
    cr_expect_str_eq(gw_req_method(r), "GET");
    cr_expect_str_eq(gw_req_path(r), "/v1/streams/s1/records");
    cr_expect_str_eq(gw_req_query(r), "from=TRIM_HORIZON&x=a%2Fb+c&e");
    cr_expect_str_eq(gw_req_query_param(r, "from"), "TRIM_HORIZON");
    cr_expect_str_eq(gw_req_query_param(r, "x"), "a/b c");
    cr_expect_str_eq(gw_req_query_param(r, "e"), "");
    cr_expect_null(gw_req_query_param(r, "missing"));
    cr_expect_null(gw_req_query_param(r, "fro"));
    cr_assert_eq(gw_req_add_header(r, "X-Amz-Target", 12, "K.Op", 4, 1024), 0);
    cr_expect_str_eq(gw_req_header(r, "x-amz-target"), "K.Op");
    cr_expect_str_eq(gw_req_header(r, "X-AMZ-TARGET"), "K.Op");
    cr_expect_null(gw_req_header(r, "host"));
    gw_req_free(r);
}

Test(request, bad_percent_escapes_pass_through)
{
    struct gw_req *r = mkreq("GET", "/?a=%zz&b=%4&c=%41");
    cr_expect_str_eq(gw_req_query_param(r, "a"), "%zz");
    cr_expect_str_eq(gw_req_query_param(r, "b"), "%4");
    cr_expect_str_eq(gw_req_query_param(r, "c"), "A");
    gw_req_free(r);
}

Test(request, header_and_body_limits)
{
    struct gw_req *r = mkreq("POST", "/");
    char v[600];
    memset(v, 'v', sizeof v);
    cr_expect_eq(gw_req_add_header(r, "a", 1, v, sizeof v, 1024), 0);
    cr_expect_eq(gw_req_add_header(r, "b", 1, v, sizeof v, 1024), -1, "over the header limit");
    cr_expect_null(gw_req_header(r, "b"));
    cr_expect_eq(gw_req_body_append(r, v, 500, 1000), 0);
    cr_expect_eq(gw_req_body_append(r, v, 500, 1000), 0);
    cr_expect_eq(gw_req_body_append(r, v, 1, 1000), -1, "over the body limit");
    cr_expect_eq(gw_req_body_append(r, v, SIZE_MAX, 1000), -1, "no overflow");
    size_t n;
    gw_req_body(r, &n);
    cr_expect_eq(n, 1000);
    gw_req_free(r);
}

Test(request, one_shot_reply_once)
{
    sends = 0;
    struct gw_req *r = mkreq("GET", "/");
    r->handler_owned = true;
    gw_resp_header(r, "Content-Type", "application/json");
    cr_expect_eq(gw_resp_send(r, 200, "{}", 2), 0);
    cr_expect_eq(sends, 1);
    cr_expect_eq(r->resp.status, 200);
    cr_expect_str_eq(r->resp.hdrs[0].name, "content-type");
    cr_expect_eq(evbuffer_get_length(r->resp.body), 2);
    cr_expect_not(r->handler_owned);
    cr_expect_eq(gw_resp_send(r, 500, "x", 1), -1, "second reply refused");
    cr_expect_eq(sends, 1);
    gw_req_free(r);
}

Test(request, error_reply_shape)
{
    struct gw_req *r = mkreq("POST", "/");
    gw_req_add_header(r, "content-type", 12, "application/x-amz-json-1.1", 26, 4096);
    struct gw_error err = {0};
    cr_expect_eq(gw_error_set(&err, GW_ERR_RESOURCE_NOT_FOUND, "Stream %s not found", "s1"), -1);
    gw_error_set(&err, GW_ERR_INTERNAL_FAILURE, "second error is ignored");
    gw_resp_error(r, &err);
    cr_expect_eq(r->resp.status, 400);
    char body[256] = {0};
    evbuffer_copyout(r->resp.body, body, sizeof body - 1);
    cr_expect_str_eq(body, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Stream s1 not found\"}");
    bool ct = false, et = false;
    for (size_t i = 0; i < r->resp.nhdrs; i++) {
        ct |= !strcmp(r->resp.hdrs[i].name, "content-type") &&
              !strcmp(r->resp.hdrs[i].value, "application/x-amz-json-1.1");
        et |= !strcmp(r->resp.hdrs[i].name, "x-amzn-errortype") &&
              !strcmp(r->resp.hdrs[i].value, "ResourceNotFoundException");
    }
    cr_expect(ct && et);
    gw_req_free(r);
}

Test(request, error_statuses)
{
    cr_expect_eq(gw_error_status(GW_ERR_INTERNAL_FAILURE), 500);
    cr_expect_eq(gw_error_status(GW_ERR_SERVICE_UNAVAILABLE), 503);
    cr_expect_eq(gw_error_status(GW_ERR_UNSUPPORTED_MEDIA_TYPE), 404);
    cr_expect_str_eq(gw_error_name(GW_ERR_UNSUPPORTED_MEDIA_TYPE), "UnknownOperationException");
    cr_expect_eq(gw_error_status(GW_ERR_BODY_TOO_LARGE), 413);
    cr_expect_eq(gw_error_status(GW_ERR_HEADERS_TOO_LARGE), 431);
    for (int t = GW_ERR_INVALID_ARGUMENT; t < GW_ERR__COUNT; t++)
        cr_expect_not_null(gw_error_name((enum gw_errtype)t));
}

Test(request, abort_runs_only_while_handler_holds)
{
    aborts = 0;
    struct gw_req *r = mkreq("GET", "/");
    r->handler_owned = true;
    gw_req_on_abort(r, on_abort, NULL);
    gw_req_free(r);
    cr_expect_eq(aborts, 1, "peer went away while the handler held the request");

    r = mkreq("GET", "/");
    r->handler_owned = true;
    gw_req_on_abort(r, on_abort, NULL);
    gw_resp_send(r, 200, NULL, 0);
    gw_req_free(r);
    cr_expect_eq(aborts, 1, "no abort after the handler answered");
}

static int pulls;
static enum gw_pull pull_three(struct gw_req *r, void *ctx, struct evbuffer *out, size_t max)
{
    pulls++;
    evbuffer_add(out, "abc", 3);
    return pulls < 3 ? GW_PULL_MORE : GW_PULL_EOF;
}

Test(request, streamed_reply_releases_on_eof)
{
    streams = resumes = pulls = 0;
    struct gw_req *r = mkreq("GET", "/");
    r->handler_owned = true;
    cr_expect_eq(gw_resp_stream(r, 200, pull_three, NULL), 0);
    cr_expect_eq(streams, 1);
    cr_expect_eq(gw_req_pull(r, 100), GW_PULL_MORE);
    gw_resp_resume(r);
    cr_expect_eq(resumes, 1);
    cr_expect_eq(gw_req_pull(r, 100), GW_PULL_MORE);
    cr_expect_eq(gw_req_pull(r, 100), GW_PULL_EOF);
    cr_expect_not(r->handler_owned);
    cr_expect_eq(gw_req_pull(r, 100), GW_PULL_EOF, "no pull after EOF");
    cr_expect_eq(pulls, 3);
    gw_resp_resume(r);
    cr_expect_eq(resumes, 1, "resume after EOF is a no-op");
    cr_expect_eq(evbuffer_get_length(r->resp.body), 9);
    gw_req_free(r);
}

Test(request, request_ids_unique_uuid_v4)
{
    struct gw_req *a = mkreq("GET", "/"), *b = mkreq("GET", "/");
    cr_expect_eq(strlen(a->request_id), 36);
    cr_expect_eq(a->request_id[14], '4');
    cr_expect_str_neq(a->request_id, b->request_id);
    gw_req_free(a);
    gw_req_free(b);
}
