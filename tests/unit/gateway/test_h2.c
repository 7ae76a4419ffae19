/* test_h2.c - HTTP/2 framing (gateway/h2.c behind server.c) over a
 * bufferevent_pair, with nghttp2 as the client: SETTINGS, requests and
 * replies, concurrency, streamed replies, flow control, the body limit,
 * protocol errors and resets. Raw-byte tests check what nghttp2 as a client
 * would refuse to send. See framing_harness.h for the server side. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "framing_harness.h"

#include <nghttp2/nghttp2.h>

/* ---- the nghttp2 client --------------------------------------------------------- */

struct srec {
    int status;
    int nh;
    char name[16][64];
    char value[16][256];
    char body[65536];
    size_t body_len;
    int ndata;               /* DATA frames */
    size_t data_len[64];
    uint8_t data_flags[64];
    bool end_stream;         /* the server ended its side */
    bool closed;
    uint32_t close_error;
    bool rst;                /* RST_STREAM received */
    uint32_t rst_error;
};

static nghttp2_session *cs;
static struct srec recs[32];
static int settings_frames, settings_acks;
static nghttp2_settings_entry server_iv[16];
static size_t server_niv;
static int goaways;
static uint32_t goaway_error;
static int32_t goaway_last;
static int frame_types[256], nframes; /* every frame received, in order */
static int32_t window_update_stream0;  /* sum of connection WINDOW_UPDATE increments */
static bool client_failed;

static struct srec *rec(int32_t id)
{
    cr_assert(id > 0 && id % 2 == 1 && (id - 1) / 2 < 32, "stream id %d", id);
    return &recs[(id - 1) / 2];
}

static ssize_t cb_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    bufferevent_write(client, data, len);
    return (ssize_t)len;
}

static int cb_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (nframes < 256)
        frame_types[nframes++] = f->hd.type;
    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (f->hd.flags & NGHTTP2_FLAG_ACK) {
            settings_acks++;
        } else {
            settings_frames++;
            server_niv = f->settings.niv < 16 ? f->settings.niv : 16;
            memcpy(server_iv, f->settings.iv, server_niv * sizeof *server_iv);
        }
        break;
    case NGHTTP2_GOAWAY:
        goaways++;
        goaway_error = f->goaway.error_code;
        goaway_last = f->goaway.last_stream_id;
        break;
    case NGHTTP2_WINDOW_UPDATE:
        if (f->hd.stream_id == 0)
            window_update_stream0 += f->window_update.window_size_increment;
        break;
    case NGHTTP2_RST_STREAM:
        rec(f->hd.stream_id)->rst = true;
        rec(f->hd.stream_id)->rst_error = f->rst_stream.error_code;
        break;
    case NGHTTP2_DATA: {
        struct srec *r = rec(f->hd.stream_id);
        if (r->ndata < 64) {
            r->data_len[r->ndata] = f->hd.length;
            r->data_flags[r->ndata] = f->hd.flags;
        }
        r->ndata++;
    }
        /* fall through */
    case NGHTTP2_HEADERS:
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            rec(f->hd.stream_id)->end_stream = true;
        break;
    }
    return 0;
}

static int cb_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    struct srec *r = rec(f->hd.stream_id);
    if (nl == 7 && memcmp(name, ":status", 7) == 0) {
        r->status = atoi((const char *)value);
    } else if (r->nh < 16) {
        snprintf(r->name[r->nh], 64, "%.*s", (int)nl, name);
        snprintf(r->value[r->nh], 256, "%.*s", (int)vl, value);
        r->nh++;
    }
    return 0;
}

static int cb_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    struct srec *r = rec(id);
    cr_assert_lt(r->body_len + len, sizeof r->body);
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int cb_close(nghttp2_session *s, int32_t id, uint32_t error, void *ud)
{
    rec(id)->closed = true;
    rec(id)->close_error = error;
    return 0;
}

/* Feeds what the server wrote to the client session, then lets it write. */
static void h2_io(void)
{
    if (!cs)
        return;
    struct evbuffer *in = bufferevent_get_input(client);
    size_t n = evbuffer_get_length(in);
    if (n > 0) {
        ssize_t rv = nghttp2_session_mem_recv(cs, evbuffer_pullup(in, -1), n);
        if (rv < 0)
            client_failed = true;
        evbuffer_drain(in, n);
    }
    if (nghttp2_session_send(cs) != 0)
        client_failed = true;
}

static void spin(int n) { spin_io(n, h2_io); }
static bool spin_until(bool (*pred)(void)) { return spin_until_io(pred, h2_io, 5.0); }

/* Starts the client: the preface and a SETTINGS frame with "iv". With
 * "manual_window", WINDOW_UPDATEs are only those a test submits. */
static void client_start(const nghttp2_settings_entry *iv, size_t niv, bool manual_window)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, cb_send);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, manual_window);
    cr_assert_eq(nghttp2_session_client_new2(&cs, cbs, NULL, opt), 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    cr_assert_eq(nghttp2_submit_settings(cs, NGHTTP2_FLAG_NONE, iv, niv), 0);
}

static void setup(void)
{
    harness_config();
    harness_start();
    memset(recs, 0, sizeof recs);
    settings_frames = settings_acks = goaways = nframes = 0;
    server_niv = 0;
    goaway_error = 0;
    goaway_last = -1;
    window_update_stream0 = 0;
    client_failed = false;
    cs = NULL;
}

static void teardown(void)
{
    nghttp2_session_del(cs);
    cs = NULL;
    harness_stop();
}

TestSuite(h2, .init = setup, .fini = teardown);

/* A request body, served by the data provider. */
struct body_src {
    const char *p;
    size_t len, off;
};
static struct body_src bodies[32];
static int nbodies;

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct body_src *b = src->ptr;
    size_t n = b->len - b->off < length ? b->len - b->off : length;
    memcpy(buf, b->p + b->off, n);
    b->off += n;
    if (b->off == b->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

/* Submits a request; "body" NULL: none (END_STREAM on HEADERS). "extra"
 * headers follow the pseudo-headers. Returns the stream id. */
static int32_t submit(const char *method, const char *path, const char *body, size_t len,
                      const nghttp2_nv *extra, size_t nextra)
{
    nghttp2_nv nva[16] = {NV(":method", method), NV(":path", path), NV(":scheme", "http"),
                          NV(":authority", "gw.test")};
    size_t n = 4;
    for (size_t i = 0; i < nextra && n < 16; i++)
        nva[n++] = extra[i];
    nghttp2_data_provider prd = {.read_callback = body_read};
    if (body) {
        cr_assert_lt(nbodies, 32);
        bodies[nbodies] = (struct body_src){body, len, 0};
        prd.source.ptr = &bodies[nbodies++];
    }
    int32_t id = nghttp2_submit_request(cs, NULL, nva, n, body ? &prd : NULL, NULL);
    cr_assert_gt(id, 0, "submit: %s", nghttp2_strerror(id));
    return id;
}

static const char *hdr(const struct srec *r, const char *name)
{
    for (int i = 0; i < r->nh; i++)
        if (strcmp(r->name[i], name) == 0)
            return r->value[i];
    return NULL;
}

static const char *names(const struct srec *r)
{
    static char s[512];
    s[0] = '\0';
    for (int i = 0; i < r->nh; i++) {
        strcat(s, i ? "," : "");
        strcat(s, r->name[i]);
    }
    return s;
}

static int32_t wait_id;
static bool stream_closed(void) { return rec(wait_id)->closed; }
static bool stream_has_headers(void) { return rec(wait_id)->status != 0; }

static struct srec *wait_closed(int32_t id)
{
    wait_id = id;
    cr_assert(spin_until(stream_closed), "stream %d not closed", id);
    return rec(id);
}

static bool got_settings_ack(void) { return settings_frames > 0 && settings_acks > 0; }
static bool got_goaway(void) { return goaways > 0; }
static bool got_dispatch(void) { return dispatched > 0; }
static bool got_abort(void) { return aborts > 0; }

/* ---- connection setup -------------------------------------------------------------- */

Test(h2, settings_exchange)
{
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 50}};
    client_start(iv, 1, false);
    cr_assert(spin_until(got_settings_ack));
    cr_expect_eq(frame_types[0], NGHTTP2_SETTINGS, "the server's first frame is SETTINGS");
    cr_expect_eq(settings_frames, 1);
    cr_expect_eq(settings_acks, 1, "our SETTINGS acknowledged");
    /* What h2.c advertises, in its order. */
    cr_assert_eq(server_niv, 4);
    cr_expect_eq(server_iv[0].settings_id, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    cr_expect_eq(server_iv[0].value, cfg.max_streams);
    cr_expect_eq(server_iv[1].settings_id, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
    cr_expect_eq(server_iv[1].value, cfg.h2_window);
    cr_expect_eq(server_iv[2].settings_id, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE);
    cr_expect_eq(server_iv[2].value, cfg.max_header_bytes);
    cr_expect_eq(server_iv[3].settings_id, NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES);
    cr_expect_eq(server_iv[3].value, 1);
    /* The connection window is opened to h2_window too. */
    cr_expect_eq(window_update_stream0, (int32_t)cfg.h2_window - 65535);
    cr_expect_eq(nghttp2_session_get_remote_window_size(cs), (int32_t)cfg.h2_window);
    cr_expect_not(client_failed);
    cr_expect_eq(goaways, 0);
    cr_expect_eq(gw_server_connections(srv), 1);
}


/* The server waits for all 24 preface bytes before deciding. */
Test(h2, preface_split_across_writes)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    bufferevent_write(client, preface, 10);
    spin(30);
    cr_expect_eq(evbuffer_get_length(bufferevent_get_input(client)), 0, "undecided: no output");
    bufferevent_write(client, preface + 10, 13);
    spin(30);
    cr_expect_eq(evbuffer_get_length(bufferevent_get_input(client)), 0, "23 bytes: still undecided");
    bufferevent_write(client, preface + 23, 1);
    static const uint8_t empty_settings[9] = {0, 0, 0, NGHTTP2_SETTINGS, 0, 0, 0, 0, 0};
    bufferevent_write(client, empty_settings, 9);
    spin(30);
    struct evbuffer *in = bufferevent_get_input(client);
    cr_assert_geq(evbuffer_get_length(in), 9);
    const uint8_t *p = evbuffer_pullup(in, 9);
    cr_expect_eq(p[3], NGHTTP2_SETTINGS);
    cr_expect_eq(p[4], 0, "not an ACK: the server's own SETTINGS");
    cr_expect_eq(gw_server_connections(srv), 1);
}

/* ---- requests and replies ------------------------------------------------------------ */

Test(h2, get_and_post)
{
    client_start(NULL, 0, false);
    nghttp2_nv tag[] = {NV("x-tag", "get")};
    int32_t g = submit("GET", "/hello?q=1", NULL, 0, tag, 1);
    static char big[1000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('A' + i % 26);
    int32_t p = submit("POST", "/echo", big, sizeof big, NULL, 0);
    struct srec *r = wait_closed(g);
    cr_expect_eq(r->status, 200);
    cr_expect_str_eq(names(r), "content-type,date,x-amzn-requestid,content-length");
    cr_expect_str_eq(hdr(r, "content-type"), "text/plain");
    cr_expect_str_eq(hdr(r, "content-length"), "11");
    cr_expect_eq(strlen(hdr(r, "x-amzn-requestid")), 36);
    cr_expect_str_eq(r->body, "hello world");
    cr_expect(r->end_stream);
    cr_expect_eq(r->close_error, NGHTTP2_NO_ERROR);
    cr_expect_not(r->rst);
    r = wait_closed(p);
    cr_expect_eq(r->status, 200);
    cr_expect_str_eq(hdr(r, "x-method"), "POST");
    cr_expect_str_eq(hdr(r, "content-length"), "1000");
    cr_assert_eq(r->body_len, sizeof big);
    cr_expect_eq(memcmp(r->body, big, sizeof big), 0);
    cr_assert_eq(dispatched, 2);
    cr_expect_str_eq(seen[0].method, "GET");
    cr_expect_str_eq(seen[0].path, "/hello");
    cr_expect_str_eq(seen[0].query, "q=1");
    cr_expect_str_eq(seen[0].host, "gw.test", ":authority is the host header");
    cr_expect_str_eq(seen[0].tag, "get");
    cr_expect_eq(seen[0].proto, GW_PROTO_H2);
    cr_expect_str_eq(seen[1].method, "POST");
    cr_expect_eq(seen[1].body_len, sizeof big);
    cr_expect_not(client_failed);
    cr_expect_eq(gw_server_connections(srv), 1);
}

Test(h2, empty_reply_has_no_data_frame)
{
    client_start(NULL, 0, false);
    int32_t id = submit("POST", "/echo", NULL, 0, NULL, 0);
    struct srec *r = wait_closed(id);
    cr_expect_eq(r->status, 200);
    cr_expect_str_eq(hdr(r, "content-length"), "0");
    cr_expect_eq(r->ndata, 0, "END_STREAM on HEADERS");
    cr_expect(r->end_stream);
}

Test(h2, concurrent_streams)
{
    client_start(NULL, 0, false);
    int32_t hold = submit("GET", "/hold", NULL, 0, NULL, 0);
    static char body[6][32];
    int32_t ids[6];
    for (int i = 0; i < 6; i++) {
        snprintf(body[i], sizeof body[i], "body of request %d", i);
        ids[i] = submit("PUT", "/echo", body[i], strlen(body[i]), NULL, 0);
    }
    for (int i = 0; i < 6; i++) {
        struct srec *r = wait_closed(ids[i]);
        cr_expect_eq(r->status, 200);
        cr_expect_str_eq(r->body, body[i]);
    }
    cr_expect_not(rec(hold)->closed, "the held stream is still open");
    cr_expect_eq(rec(hold)->status, 0);
    cr_expect_eq(dispatched, 7);
    answer_held(201, "held reply");
    struct srec *r = wait_closed(hold);
    cr_expect_eq(r->status, 201);
    cr_expect_str_eq(r->body, "held reply");
    cr_expect_eq(aborts, 0);
    cr_expect_not(client_failed);
}

/* ---- streamed replies ----------------------------------------------------------------- */

Test(h2, streamed_reply_data_frames_in_order)
{
    client_start(NULL, 0, false);
    int32_t id = submit("GET", "/stream?n=4", NULL, 0, NULL, 0);
    struct srec *r = wait_closed(id);
    cr_expect_eq(r->status, 200);
    cr_expect_str_eq(names(r), "content-type,date,x-amzn-requestid", "no content-length");
    cr_expect_str_eq(r->body, "chunk-1chunk-2chunk-3chunk-4");
    /* One DATA frame per pull; END_STREAM on the last only. */
    cr_assert_eq(r->ndata, 4);
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(r->data_len[i], 7);
        cr_expect_eq(r->data_flags[i] & NGHTTP2_FLAG_END_STREAM, i == 3 ? NGHTTP2_FLAG_END_STREAM : 0,
                     "frame %d", i);
    }
    cr_expect_eq(pulls, 4);
    cr_expect_eq(aborts, 0);
    cr_expect_not(r->rst);
}

Test(h2, streamed_reply_waits_for_resume)
{
    client_start(NULL, 0, false);
    int32_t id = submit("GET", "/defer", NULL, 0, NULL, 0);
    wait_id = id;
    cr_assert(spin_until(stream_has_headers));
    cr_assert_not_null(deferred);
    int before = pulls;
    spin(50);
    cr_expect_eq(rec(id)->ndata, 0);
    cr_expect_eq(pulls, before, "a deferred stream is not pulled again by itself");
    defer_push("first", false);
    spin(30);
    cr_expect_eq(rec(id)->ndata, 1);
    cr_expect_str_eq(rec(id)->body, "first");
    cr_expect_not(rec(id)->end_stream);
    defer_push("last", true);
    struct srec *r = wait_closed(id);
    cr_expect_str_eq(r->body, "firstlast");
    cr_expect(r->end_stream);
    cr_expect_eq(aborts, 0);
}

/* A pull that aborts resets the stream (INTERNAL_ERROR); the connection lives. */
Test(h2, streamed_reply_abort_resets_the_stream)
{
    client_start(NULL, 0, false);
    int32_t id = submit("GET", "/stream-abort", NULL, 0, NULL, 0);
    struct srec *r = wait_closed(id);
    cr_expect_eq(r->status, 200);
    cr_expect(r->rst);
    cr_expect_eq(r->rst_error, NGHTTP2_INTERNAL_ERROR);
    cr_expect_not(r->end_stream);
    cr_expect_str_eq(r->body, "partial");
    int32_t next = submit("GET", "/hello", NULL, 0, NULL, 0);
    cr_expect_str_eq(wait_closed(next)->body, "hello world");
}

/* ---- flow control --------------------------------------------------------------------- */

Test(h2, zero_window_holds_data_until_window_update)
{
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0}};
    client_start(iv, 1, true);
    int32_t id = submit("GET", "/hello", NULL, 0, NULL, 0);
    wait_id = id;
    cr_assert(spin_until(stream_has_headers));
    spin(100);
    struct srec *r = rec(id);
    cr_expect_eq(r->status, 200);
    cr_expect_str_eq(hdr(r, "content-length"), "11");
    cr_expect_eq(r->ndata, 0, "no DATA while the stream window is 0");
    cr_expect_not(r->closed);
    cr_assert_eq(nghttp2_submit_window_update(cs, NGHTTP2_FLAG_NONE, id, 5), 0);
    spin(50);
    cr_expect_eq(r->ndata, 1);
    cr_expect_str_eq(r->body, "hello", "exactly the 5 bytes the window allows");
    cr_expect_not(r->end_stream);
    cr_assert_eq(nghttp2_submit_window_update(cs, NGHTTP2_FLAG_NONE, id, 100), 0);
    r = wait_closed(id);
    cr_expect_str_eq(r->body, "hello world");
    cr_expect_eq(r->ndata, 2);
    cr_expect(r->end_stream);
    cr_expect_not(client_failed);
}

Test(h2, zero_window_streamed_reply_is_not_pulled_ahead)
{
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0}};
    client_start(iv, 1, true);
    int32_t id = submit("GET", "/stream?n=3", NULL, 0, NULL, 0);
    wait_id = id;
    cr_assert(spin_until(stream_has_headers));
    spin(100);
    cr_expect_eq(pulls, 0, "nothing pulled without window");
    cr_assert_eq(nghttp2_submit_window_update(cs, NGHTTP2_FLAG_NONE, id, 7), 0);
    spin(50);
    cr_expect_eq(rec(id)->ndata, 1);
    cr_expect_str_eq(rec(id)->body, "chunk-1");
    cr_expect_eq(pulls, 1, "one pull per frame the window allows");
    cr_assert_eq(nghttp2_submit_window_update(cs, NGHTTP2_FLAG_NONE, id, 1000), 0);
    struct srec *r = wait_closed(id);
    cr_expect_str_eq(r->body, "chunk-1chunk-2chunk-3");
}

/* ---- limits ------------------------------------------------------------------------------ */

static void expect_413(struct srec *r, const char *message)
{
    cr_expect_eq(r->status, 413);
    cr_expect_str_eq(hdr(r, "content-type"), "application/json");
    cr_expect_str_eq(hdr(r, "x-amzn-errortype"), "RequestEntityTooLargeException");
    char want[256];
    snprintf(want, sizeof want, "{\"__type\":\"RequestEntityTooLargeException\",\"message\":\"%s\"}",
             message);
    cr_expect_str_eq(r->body, want);
    char len[16];
    snprintf(len, sizeof len, "%zu", strlen(want));
    cr_expect_str_eq(hdr(r, "content-length"), len);
    cr_expect(r->end_stream);
    /* The rest of the upload is discarded, not reset (see h2s.rejected). */
    cr_expect_not(r->rst);
    cr_expect_eq(r->close_error, NGHTTP2_NO_ERROR);
}

Test(h2, body_at_the_limit_accepted)
{
    client_start(NULL, 0, false);
    static char body[MAX_BODY_BYTES];
    memset(body, 'x', sizeof body);
    int32_t id = submit("POST", "/echo", body, sizeof body, NULL, 0);
    struct srec *r = wait_closed(id);
    cr_expect_eq(r->status, 200);
    cr_expect_eq(r->body_len, MAX_BODY_BYTES);
}

Test(h2, declared_body_over_the_limit_413)
{
    client_start(NULL, 0, false);
    static char body[2000];
    memset(body, 'x', sizeof body);
    nghttp2_nv cl[] = {NV("content-length", "2000")};
    int32_t id = submit("POST", "/echo", body, sizeof body, cl, 1);
    expect_413(wait_closed(id), "Request body of 2000 bytes exceeds the limit");
    cr_expect_eq(dispatched, 0);
    /* The connection goes on. */
    int32_t next = submit("GET", "/hello", NULL, 0, NULL, 0);
    cr_expect_str_eq(wait_closed(next)->body, "hello world");
    cr_expect_not(client_failed);
}

Test(h2, undeclared_body_over_the_limit_413)
{
    client_start(NULL, 0, false);
    static char body[MAX_BODY_BYTES + 1];
    memset(body, 'y', sizeof body);
    int32_t id = submit("POST", "/echo", body, sizeof body, NULL, 0);
    expect_413(wait_closed(id), "Request body exceeds the limit");
    cr_expect_eq(dispatched, 0);
}

/* Header bytes per stream as h2.c counts them: name + value + 32 for every
 * field, pseudo-headers included, and :authority once more as "host". */
static void header_limit_case(size_t pad, int want_status)
{
    client_start(NULL, 0, false);
    char *v = malloc(pad + 1);
    memset(v, 'h', pad);
    v[pad] = '\0';
    nghttp2_nv x[] = {{(uint8_t *)"x-pad", (uint8_t *)v, 5, pad, NGHTTP2_NV_FLAG_NONE}};
    int32_t id = submit("GET", "/hello", NULL, 0, x, 1);
    struct srec *r = wait_closed(id);
    free(v);
    cr_expect_eq(r->status, want_status);
    if (want_status == 431) {
        cr_expect_str_eq(hdr(r, "x-amzn-errortype"), "RequestHeaderFieldsTooLargeException");
        cr_expect_str_eq(r->body, "{\"__type\":\"RequestHeaderFieldsTooLargeException\","
                                  "\"message\":\"Request headers exceed the configured bytes\"}");
        cr_expect_eq(dispatched, 0);
    } else {
        cr_expect_eq(dispatched, 1);
    }
}

/* :method GET 42, :path /hello 43, :scheme http 43, :authority gw.test 49,
 * host gw.test 43, x-pad 37 + pad: 257 + pad. */
Test(h2, headers_at_the_limit_accepted) { header_limit_case(MAX_HEADER_BYTES - 257, 200); }
Test(h2, headers_over_the_limit_431) { header_limit_case(MAX_HEADER_BYTES - 256, 431); }

/* ---- protocol errors (raw bytes) ---------------------------------------------------------- */

struct frame {
    uint32_t len;
    uint8_t type, flags;
    uint32_t sid;
    const uint8_t *payload;
};

/* Parses the frames the server sent so far; returns how many. */
static int raw_frames(struct frame *f, int max)
{
    struct evbuffer *in = bufferevent_get_input(client);
    size_t n = evbuffer_get_length(in);
    const uint8_t *p = evbuffer_pullup(in, -1);
    int k = 0;
    size_t off = 0;
    while (k < max && off + 9 <= n) {
        uint32_t len = (uint32_t)p[off] << 16 | (uint32_t)p[off + 1] << 8 | p[off + 2];
        if (off + 9 + len > n)
            break;
        f[k] = (struct frame){len, p[off + 3], p[off + 4],
                              ((uint32_t)p[off + 5] << 24 | (uint32_t)p[off + 6] << 16 |
                               (uint32_t)p[off + 7] << 8 | p[off + 8]) & 0x7fffffffu,
                              p + off + 9};
        k++;
        off += 9 + len;
    }
    return k;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Sends "bytes" after the preface; the server must answer GOAWAY with
 * "error" (its last frame) and close. */
static void expect_goaway(const void *bytes, size_t len, uint32_t error)
{
    bufferevent_write(client, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    bufferevent_write(client, bytes, len);
    cr_assert(spin_until_io(conn_closed, NULL, 5.0), "connection not closed");
    struct frame f[16];
    int n = raw_frames(f, 16);
    cr_assert_geq(n, 2);
    cr_expect_eq(f[0].type, NGHTTP2_SETTINGS);
    cr_assert_eq(f[n - 1].type, NGHTTP2_GOAWAY, "last frame type %d", f[n - 1].type);
    cr_assert_geq(f[n - 1].len, 8);
    cr_expect_eq(f[n - 1].sid, 0);
    cr_expect_eq(be32(f[n - 1].payload) & 0x7fffffffu, 0, "last stream id");
    cr_expect_eq(be32(f[n - 1].payload + 4), error, "error code %u",
                 be32(f[n - 1].payload + 4));
    cr_expect_eq(dispatched, 0);
}

Test(h2, garbage_after_preface_goaway)
{
    static const char junk[] = "this is not an HTTP/2 frame at all";
    expect_goaway(junk, sizeof junk - 1, NGHTTP2_PROTOCOL_ERROR);
}

Test(h2, data_on_stream_zero_goaway)
{
    static const uint8_t b[] = {0, 0, 0, NGHTTP2_SETTINGS, 0, 0, 0, 0, 0, /* empty SETTINGS */
                                0, 0, 1, NGHTTP2_DATA, 0, 0, 0, 0, 0, 'x'};
    expect_goaway(b, sizeof b, NGHTTP2_PROTOCOL_ERROR);
}

Test(h2, headers_on_even_stream_goaway)
{
    /* HEADERS on stream 2 (client streams are odd): ":method GET" indexed. */
    static const uint8_t b[] = {0, 0, 0, NGHTTP2_SETTINGS, 0, 0, 0, 0, 0,
                                0, 0, 1, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
                                0, 0, 0, 2, 0x82};
    expect_goaway(b, sizeof b, NGHTTP2_PROTOCOL_ERROR);
}

Test(h2, oversized_frame_goaway)
{
    /* A PING must be 8 bytes. */
    static const uint8_t b[] = {0, 0, 0, NGHTTP2_SETTINGS, 0, 0, 0, 0, 0,
                                0, 0, 9, NGHTTP2_PING, 0, 0, 0, 0, 0,
                                1, 2, 3, 4, 5, 6, 7, 8, 9};
    expect_goaway(b, sizeof b, NGHTTP2_FRAME_SIZE_ERROR);
}

/* ---- resets and teardown ---------------------------------------------------------------- */

Test(h2, rst_stream_aborts_the_handler)
{
    client_start(NULL, 0, false);
    int32_t id = submit("GET", "/hold", NULL, 0, NULL, 0);
    cr_assert(spin_until(got_dispatch));
    cr_assert_not_null(held);
    spin(20);
    cr_expect_eq(aborts, 0);
    cr_assert_eq(nghttp2_submit_rst_stream(cs, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
    cr_assert(spin_until(got_abort));
    spin(10);
    cr_expect_eq(aborts, 1, "exactly once");
    cr_expect_str_eq(abort_paths[0], "/hold");
    cr_expect_null(held);
    /* Only that stream: the connection serves the next one. */
    int32_t next = submit("GET", "/hello", NULL, 0, NULL, 0);
    cr_expect_str_eq(wait_closed(next)->body, "hello world");
    cr_expect_eq(gw_server_connections(srv), 1);
}

Test(h2, rst_stream_aborts_a_streamed_reply)
{
    client_start(NULL, 0, false);
    int32_t id = submit("GET", "/defer", NULL, 0, NULL, 0);
    wait_id = id;
    cr_assert(spin_until(stream_has_headers));
    defer_push("some", false);
    spin(20);
    cr_expect_str_eq(rec(id)->body, "some");
    cr_assert_eq(nghttp2_submit_rst_stream(cs, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
    cr_assert(spin_until(got_abort));
    cr_expect_str_eq(abort_paths[0], "/defer");
    cr_expect_null(deferred);
}

Test(h2, peer_eof_aborts_every_held_request)
{
    client_start(NULL, 0, false);
    submit("GET", "/hold", NULL, 0, NULL, 0);
    int32_t d = submit("GET", "/defer", NULL, 0, NULL, 0);
    wait_id = d;
    cr_assert(spin_until(stream_has_headers));
    cr_assert_not_null(held);
    bufferevent_flush(client, EV_WRITE, BEV_FINISHED);
    cr_assert(spin_until(conn_closed));
    cr_expect_eq(aborts, 2);
    cr_expect_null(held);
    cr_expect_null(deferred);
}

static bool drained_flag;
static void on_drained(void *arg) { drained_flag = true; }
static bool is_drained(void) { return drained_flag; }

Test(h2, drain_sends_goaway_and_finishes_in_flight)
{
    client_start(NULL, 0, false);
    int32_t id = submit("GET", "/hold", NULL, 0, NULL, 0);
    cr_assert(spin_until(got_dispatch));
    drained_flag = false;
    gw_server_drain(srv, on_drained, NULL);
    cr_assert(spin_until(got_goaway));
    cr_expect_eq(goaway_error, NGHTTP2_NO_ERROR);
    cr_expect_eq(goaway_last, id, "the held stream will still be answered");
    spin(20);
    cr_expect_eq(gw_server_connections(srv), 1);
    cr_expect_not(drained_flag);
    answer_held(200, "bye");
    struct srec *r = wait_closed(id);
    cr_expect_eq(r->status, 200);
    cr_expect_str_eq(r->body, "bye");
    cr_expect(spin_until(is_drained), "drain done once the stream ended");
    cr_expect_eq(gw_server_connections(srv), 0);
    cr_expect_eq(aborts, 0);
}
