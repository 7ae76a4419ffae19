/* test_http1.c - HTTP/1.1 framing (gateway/http1.c behind server.c) over a
 * bufferevent_pair: the bytes a client sends and the exact bytes it gets
 * back. See framing_harness.h for the server and its dispatcher. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "framing_harness.h"

#include <ctype.h>
#include <http_parser.h>
#include <strings.h>

/* ---- the client end ------------------------------------------------------------ */

static char rx[1 << 20]; /* everything received, in order */
static size_t rx_len;

static void collect(void)
{
    struct evbuffer *in = bufferevent_get_input(client);
    size_t n = evbuffer_get_length(in);
    cr_assert_lt(rx_len + n, sizeof rx);
    evbuffer_remove(in, rx + rx_len, n);
    rx_len += n;
    rx[rx_len] = '\0';
}

static void spin(int n) { spin_io(n, collect); }
static bool spin_until(bool (*pred)(void)) { return spin_until_io(pred, collect, 5.0); }

static void send_str(const char *s) { bufferevent_write(client, s, strlen(s)); }

static void setup(void)
{
    harness_config();
    harness_start();
    rx_len = 0;
    rx[0] = '\0';
}

static void teardown(void) { harness_stop(); }

TestSuite(http1, .init = setup, .fini = teardown);

/* ---- a strict response parser -------------------------------------------------- */

struct resp {
    char version[16];
    int status;
    char reason[64];
    int nh;
    char name[16][64];
    char value[16][256];
    char body[65536];
    size_t body_len;
    int nchunks;          /* chunked: data chunks seen (the last 0 excluded) */
    size_t chunk[32];
};

static const char *hdr(const struct resp *r, const char *name)
{
    for (int i = 0; i < r->nh; i++)
        if (strcmp(r->name[i], name) == 0)
            return r->value[i];
    return NULL;
}

/* Parses one response at rx+*off. "until_close": a body without a length
 * runs to the end of what was received. Returns 1 (complete; *off moves past
 * it), 0 (incomplete) or -1 (malformed, with a reason). */
static int parse_resp(size_t *off, struct resp *r, bool until_close, const char **why)
{
    memset(r, 0, sizeof *r);
    const char *p = rx + *off, *end = rx + rx_len;
    const char *eoh = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
    if (!eoh)
        return 0;
    int n = 0;
    if (sscanf(p, "%15s %d %n", r->version, &r->status, &n) != 2 || n == 0) {
        *why = "status line";
        return -1;
    }
    const char *eol = strstr(p, "\r\n");
    snprintf(r->reason, sizeof r->reason, "%.*s", (int)(eol - (p + n)), p + n);
    for (p = eol + 2; p < eoh + 2; p = eol + 2) {
        eol = strstr(p, "\r\n");
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon[1] != ' ' || r->nh == 16) {
            *why = "header line";
            return -1;
        }
        snprintf(r->name[r->nh], 64, "%.*s", (int)(colon - p), p);
        snprintf(r->value[r->nh], 256, "%.*s", (int)(eol - colon - 2), colon + 2);
        r->nh++;
    }
    p = eoh + 4;
    const char *cl = hdr(r, "content-length"), *te = hdr(r, "transfer-encoding");
    if (cl && te) {
        *why = "both content-length and transfer-encoding";
        return -1;
    }
    if (cl) {
        size_t len = strtoul(cl, NULL, 10);
        if ((size_t)(end - p) < len)
            return 0;
        memcpy(r->body, p, len);
        r->body_len = len;
        p += len;
    } else if (te) {
        if (strcmp(te, "chunked") != 0) {
            *why = "transfer-encoding";
            return -1;
        }
        for (;;) {
            eol = memmem(p, (size_t)(end - p), "\r\n", 2);
            if (!eol)
                return 0;
            char *hend;
            size_t len = strtoul(p, &hend, 16);
            if (hend != eol || hend == p) {
                *why = "chunk size line";
                return -1;
            }
            if ((size_t)(end - (eol + 2)) < len + 2)
                return 0;
            if (memcmp(eol + 2 + len, "\r\n", 2) != 0) {
                *why = "chunk data not followed by CRLF";
                return -1;
            }
            memcpy(r->body + r->body_len, eol + 2, len);
            r->body_len += len;
            p = eol + 2 + len + 2;
            if (len == 0)
                break;
            r->chunk[r->nchunks++] = len;
        }
    } else if (until_close) {
        memcpy(r->body, p, (size_t)(end - p));
        r->body_len = (size_t)(end - p);
        p = end;
    }
    *off = (size_t)(p - rx);
    return 1;
}

static size_t rx_off; /* responses parsed so far end here */

static struct resp *want_resp;
static size_t want_off;
static int want_rc;
static const char *want_why;

static bool resp_complete(void)
{
    want_off = rx_off;
    want_rc = parse_resp(&want_off, want_resp, false, &want_why);
    return want_rc != 0;
}

/* Waits (bounded) for the next complete response and parses it. */
static void next_resp(struct resp *r)
{
    want_resp = r;
    want_why = "";
    spin_until(resp_complete);
    cr_assert_eq(want_rc, 1, "no complete response (%s) in: %s", want_why, rx + rx_off);
    rx_off = want_off;
}

static bool date_is_now(const char *v)
{
    struct tm tm = {0};
    const char *e = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!e || *e)
        return false;
    time_t t = timegm(&tm), now = time(NULL);
    return t <= now && now - t < 5;
}

static bool is_request_id(const char *v)
{
    if (strlen(v) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? v[i] != '-' : !isxdigit((unsigned char)v[i]) || isupper((unsigned char)v[i]))
            return false;
    }
    return v[14] == '4' && strchr("89ab", v[19]) != NULL;
}

/* Header names in order, joined with ','. */
static const char *names(const struct resp *r)
{
    static char s[512];
    s[0] = '\0';
    for (int i = 0; i < r->nh; i++) {
        strcat(s, i ? "," : "");
        strcat(s, r->name[i]);
    }
    return s;
}

/* The error body the code writes for "type" and "message". */
static void expect_error(const struct resp *r, int status, const char *reason, const char *type,
                         const char *message)
{
    cr_expect_eq(r->status, status);
    cr_expect_str_eq(r->reason, reason);
    cr_expect_str_eq(names(r), "content-type,x-amzn-errortype,date,content-length,connection");
    cr_expect_str_eq(hdr(r, "content-type"), "application/json");
    cr_expect_str_eq(hdr(r, "x-amzn-errortype"), type);
    cr_expect_str_eq(hdr(r, "connection"), "close");
    cr_expect(date_is_now(hdr(r, "date")));
    char want[512];
    snprintf(want, sizeof want, "{\"__type\":\"%s\",\"message\":\"%s\"}", type, message);
    cr_expect_str_eq(r->body, want);
}

/* ---- requests and replies ------------------------------------------------------- */

Test(http1, simple_get)
{
    send_str("GET /hello?x=1 HTTP/1.1\r\nHost: gw.test\r\nX-Tag: one\r\n\r\n");
    struct resp r;
    next_resp(&r);
    cr_expect_str_eq(r.version, "HTTP/1.1");
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.reason, "OK");
    /* Handler headers first, then date, request id and length, lower-case. */
    cr_expect_str_eq(names(&r), "content-type,date,x-amzn-requestid,content-length");
    cr_expect_str_eq(hdr(&r, "content-type"), "text/plain");
    cr_expect(date_is_now(hdr(&r, "date")), "date: %s", hdr(&r, "date"));
    cr_expect(is_request_id(hdr(&r, "x-amzn-requestid")), "id: %s", hdr(&r, "x-amzn-requestid"));
    cr_expect_str_eq(hdr(&r, "content-length"), "11");
    cr_expect_str_eq(r.body, "hello world");
    cr_expect_eq(rx_off, rx_len, "nothing after the reply");
    cr_assert_eq(dispatched, 1);
    cr_expect_str_eq(seen[0].method, "GET");
    cr_expect_str_eq(seen[0].path, "/hello");
    cr_expect_str_eq(seen[0].query, "x=1");
    cr_expect_str_eq(seen[0].host, "gw.test");
    cr_expect_str_eq(seen[0].tag, "one");
    cr_expect_eq(seen[0].proto, GW_PROTO_HTTP1);
    spin(20);
    cr_expect_eq(gw_server_connections(srv), 1, "HTTP/1.1 keeps the connection open");
}

Test(http1, pipelined_requests_answered_in_order)
{
    send_str("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
             "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde"
             "GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n");
    struct resp r1, r2, r3;
    next_resp(&r1);
    next_resp(&r2);
    next_resp(&r3);
    cr_expect_eq(r1.status, 200);
    cr_expect_str_eq(r1.body, "hello world");
    cr_expect_eq(r2.status, 200);
    cr_expect_str_eq(hdr(&r2, "x-method"), "POST");
    cr_expect_str_eq(r2.body, "abcde");
    cr_expect_eq(r3.status, 404);
    cr_expect_str_eq(r3.reason, "Not Found");
    cr_expect_str_eq(r3.body, "no route");
    cr_expect_str_neq(hdr(&r1, "x-amzn-requestid"), hdr(&r2, "x-amzn-requestid"));
    cr_assert_eq(dispatched, 3);
    cr_expect_str_eq(seen[0].path, "/hello");
    cr_expect_str_eq(seen[1].path, "/echo");
    cr_expect_str_eq(seen[2].path, "/nowhere");
    cr_expect_eq(gw_server_connections(srv), 1);
}

/* One request at a time: a pipelined request is not parsed (nor
 * dispatched) before the one ahead of it is answered. */
Test(http1, pipelined_request_waits_for_the_reply_ahead)
{
    send_str("GET /hold HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    spin(50);
    cr_assert_eq(dispatched, 1);
    cr_expect_eq(rx_len, 0, "nothing answered yet: %s", rx);
    answer_held(202, "later");
    struct resp r1, r2;
    next_resp(&r1);
    next_resp(&r2);
    cr_expect_eq(r1.status, 202);
    cr_expect_str_eq(r1.reason, "Unknown", "202 has no reason phrase in gw_http_reason");
    cr_expect_str_eq(r1.body, "later");
    cr_expect_eq(r2.status, 200);
    cr_expect_str_eq(r2.body, "hello world");
    cr_expect_eq(dispatched, 2);
}

Test(http1, request_split_byte_by_byte)
{
    const char *req = "POST /echo?k=v HTTP/1.1\r\nHost: split.test\r\nX-Tag: t\r\n"
                      "Content-Length: 11\r\n\r\nhello there";
    size_t n = strlen(req);
    for (size_t i = 0; i < n; i++) {
        bufferevent_write(client, req + i, 1);
        spin(3);
        cr_assert_eq(dispatched, i + 1 == n ? 1 : 0, "dispatch after byte %zu of %zu", i + 1, n);
    }
    struct resp r;
    next_resp(&r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "hello there");
    cr_expect_str_eq(seen[0].query, "k=v");
    cr_expect_str_eq(seen[0].host, "split.test");
    cr_expect_str_eq(seen[0].tag, "t");
    cr_expect_eq(seen[0].body_len, 11);
}

Test(http1, chunked_request_body)
{
    send_str("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
    struct resp r;
    next_resp(&r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "hello world");
    cr_expect_str_eq(hdr(&r, "content-length"), "11");
    cr_expect_eq(seen[0].body_len, 11);
    cr_expect_eq(gw_server_connections(srv), 1);
}

Test(http1, expect_100_continue)
{
    send_str("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    spin(20);
    cr_expect_str_eq(rx, "HTTP/1.1 100 Continue\r\n\r\n");
    cr_expect_eq(dispatched, 0);
    rx_off = rx_len;
    send_str("abc");
    struct resp r;
    next_resp(&r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "abc");
}

Test(http1, head_reply_has_length_but_no_body)
{
    send_str("HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    spin(30);
    cr_assert_eq(dispatched, 2);
    cr_expect_str_eq(seen[0].method, "HEAD");
    const char *head_end = strstr(rx, "\r\n\r\n");
    cr_assert_not_null(head_end);
    cr_expect_not_null(memmem(rx, (size_t)(head_end + 2 - rx), "\r\ncontent-length: 11\r\n", 22),
                       "HEAD reply declares the GET length: %s", rx);
    /* The next reply starts right after the empty line: no body bytes. */
    cr_expect_eq(strncmp(head_end + 4, "HTTP/1.1 200 OK\r\n", 17), 0, "%s", rx);
    rx_off = (size_t)(head_end + 4 - rx);
    struct resp r;
    next_resp(&r);
    cr_expect_str_eq(r.body, "hello world");
}

/* ---- limits ------------------------------------------------------------------------ */

/* Request line and headers: the URL, header names and values count (not the
 * method, version, separators or CRLFs) against max_header_bytes. */
static char *request_with_header_bytes(size_t total)
{
    /* url "/hello" (6) + "X-Pad" (5) + value */
    size_t v = total - 11;
    char *pad = malloc(v + 1);
    memset(pad, 'p', v);
    pad[v] = '\0';
    char *s;
    cr_assert(asprintf(&s, "GET /hello HTTP/1.1\r\nX-Pad: %s\r\n\r\n", pad) > 0);
    free(pad);
    return s;
}

Test(http1, headers_at_the_limit_accepted)
{
    char *s = request_with_header_bytes(MAX_HEADER_BYTES);
    send_str(s);
    free(s);
    struct resp r;
    next_resp(&r);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(gw_server_connections(srv), 1);
}

Test(http1, headers_over_the_limit_431_and_close)
{
    char *s = request_with_header_bytes(MAX_HEADER_BYTES + 1);
    send_str(s);
    free(s);
    send_str("GET /hello HTTP/1.1\r\n\r\n"); /* never read */
    struct resp r;
    next_resp(&r);
    expect_error(&r, 431, "Request Header Fields Too Large", "RequestHeaderFieldsTooLargeException",
                 "Request line and headers exceed 1024 bytes");
    cr_expect(spin_until(conn_closed), "connection closed after the 431");
    cr_expect_eq(rx_off, rx_len, "nothing after the 431");
    cr_expect_eq(dispatched, 0);
}

Test(http1, body_at_the_limit_accepted)
{
    char *body = malloc(MAX_BODY_BYTES + 1);
    memset(body, 'b', MAX_BODY_BYTES);
    body[MAX_BODY_BYTES] = '\0';
    char *s;
    cr_assert(asprintf(&s, "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", MAX_BODY_BYTES,
                       body) > 0);
    send_str(s);
    free(s);
    struct resp r;
    next_resp(&r);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.body_len, MAX_BODY_BYTES);
    cr_expect_eq(memcmp(r.body, body, MAX_BODY_BYTES), 0);
    free(body);
}

Test(http1, declared_body_over_the_limit_413_and_close)
{
    /* Refused from the Content-Length alone, before any body byte. */
    send_str("POST /echo HTTP/1.1\r\nContent-Length: 1025\r\n\r\n");
    struct resp r;
    next_resp(&r);
    expect_error(&r, 413, "Payload Too Large", "RequestEntityTooLargeException",
                 "Request body of 1025 bytes exceeds the limit of 1024 bytes");
    cr_expect(spin_until(conn_closed));
    cr_expect_eq(dispatched, 0);
}

Test(http1, chunked_body_over_the_limit_413_and_close)
{
    char chunk[600];
    memset(chunk, 'c', sizeof chunk);
    send_str("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 2; i++) { /* 1200 bytes in two chunks */
        send_str("258\r\n");
        bufferevent_write(client, chunk, sizeof chunk);
        send_str("\r\n");
    }
    send_str("0\r\n\r\n");
    struct resp r;
    next_resp(&r);
    expect_error(&r, 413, "Payload Too Large", "RequestEntityTooLargeException",
                 "Request body exceeds the limit of 1024 bytes");
    cr_expect(spin_until(conn_closed));
    cr_expect_eq(dispatched, 0);
}

static void expect_malformed(const char *req, enum http_errno e)
{
    send_str(req);
    struct resp r;
    next_resp(&r);
    char msg[256];
    snprintf(msg, sizeof msg, "Malformed HTTP/1.1 request: %s", http_errno_description(e));
    /* GW_ERR_BAD_REQUEST goes on the wire as SerializationException. */
    expect_error(&r, 400, "Bad Request", "SerializationException", msg);
    cr_expect(spin_until(conn_closed), "closed after: %s", req);
    cr_expect_eq(dispatched, 0);
}

Test(http1, malformed_method_400) { expect_malformed("GARBAGE / HTTP/1.1\r\n\r\n", HPE_INVALID_METHOD); }
Test(http1, malformed_version_400) { expect_malformed("GET / HTTP/x.1\r\n\r\n", HPE_INVALID_VERSION); }
Test(http1, malformed_header_400)
{
    expect_malformed("GET / HTTP/1.1\r\nNo Colon Here\r\n\r\n", HPE_INVALID_HEADER_TOKEN);
}
Test(http1, malformed_content_length_400)
{
    expect_malformed("POST /echo HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
                     HPE_INVALID_CONTENT_LENGTH);
}
Test(http1, malformed_chunk_size_400)
{
    expect_malformed("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                     HPE_INVALID_CHUNK_SIZE);
}

/* A near-miss of the HTTP/2 preface is not HTTP/2: it goes to http1.c. */
Test(http1, broken_h2_preface_is_http1_400)
{
    expect_malformed("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", HPE_INVALID_METHOD);
}

/* ---- streamed replies ------------------------------------------------------------- */

Test(http1, streamed_reply_is_chunked_and_ends_with_zero_chunk)
{
    send_str("GET /stream?n=3 HTTP/1.1\r\nHost: a\r\n\r\n");
    struct resp r;
    next_resp(&r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(names(&r), "content-type,date,x-amzn-requestid,transfer-encoding");
    cr_expect_str_eq(hdr(&r, "transfer-encoding"), "chunked");
    /* One chunk per pull, exactly these bytes on the wire. */
    const char *body = strstr(rx, "\r\n\r\n") + 4;
    cr_expect_str_eq(body, "7\r\nchunk-1\r\n7\r\nchunk-2\r\n7\r\nchunk-3\r\n0\r\n\r\n");
    cr_expect_eq(r.nchunks, 3);
    cr_expect_str_eq(r.body, "chunk-1chunk-2chunk-3");
    cr_expect_eq(pulls, 3);
    cr_expect_eq(aborts, 0);
    /* Keep-alive after a streamed reply. */
    send_str("GET /hello HTTP/1.1\r\n\r\n");
    next_resp(&r);
    cr_expect_str_eq(r.body, "hello world");
}

Test(http1, streamed_reply_empty)
{
    send_str("GET /stream?n=0 HTTP/1.1\r\n\r\n");
    struct resp r;
    next_resp(&r);
    cr_expect_str_eq(strstr(rx, "\r\n\r\n") + 4, "0\r\n\r\n");
    cr_expect_eq(r.body_len, 0);
}

Test(http1, streamed_reply_to_http10_is_raw_and_closes)
{
    send_str("GET /stream?n=2 HTTP/1.0\r\n\r\n");
    cr_assert(spin_until(conn_closed));
    struct resp r;
    size_t off = 0;
    const char *why = "";
    cr_assert_eq(parse_resp(&off, &r, true, &why), 1, "%s", why);
    cr_expect_str_eq(r.version, "HTTP/1.1");
    cr_expect_str_eq(names(&r), "content-type,date,x-amzn-requestid,connection");
    cr_expect_str_eq(hdr(&r, "connection"), "close");
    cr_expect_str_eq(r.body, "chunk-1chunk-2", "no chunk framing for HTTP/1.0");
}

Test(http1, streamed_reply_waits_for_resume)
{
    send_str("GET /defer HTTP/1.1\r\n\r\n");
    spin(20);
    cr_assert_not_null(deferred);
    const char *head_end = strstr(rx, "\r\n\r\n");
    cr_assert_not_null(head_end, "head sent at once: %s", rx);
    cr_expect_str_eq(head_end + 4, "", "no body before the handler has data");
    int before = pulls;
    spin(50);
    cr_expect_eq(pulls, before, "a deferred stream is not pulled again by itself");
    defer_push("first", false);
    spin(20);
    cr_expect_str_eq(strstr(rx, "\r\n\r\n") + 4, "5\r\nfirst\r\n");
    defer_push("last", true);
    struct resp r;
    next_resp(&r);
    cr_expect_str_eq(r.body, "firstlast");
    cr_expect_eq(aborts, 0);
    cr_expect_eq(gw_server_connections(srv), 1);
}

Test(http1, streamed_reply_abort_cuts_the_connection)
{
    send_str("GET /stream-abort HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    cr_assert(spin_until(conn_closed));
    /* The head and the chunk before the abort, then nothing: no 0 chunk. */
    cr_expect_str_eq(strstr(rx, "\r\n\r\n") + 4, "7\r\npartial\r\n");
    cr_expect_eq(dispatched, 1, "the pipelined request is dropped");
    cr_expect_eq(aborts, 0, "the handler ended the stream itself");
}

/* ---- connection lifetime ---------------------------------------------------------- */

Test(http1, connection_close_honoured)
{
    send_str("GET /hello HTTP/1.1\r\nConnection: close\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    cr_assert(spin_until(conn_closed));
    struct resp r;
    next_resp(&r);
    cr_expect_str_eq(names(&r), "content-type,date,x-amzn-requestid,content-length,connection");
    cr_expect_str_eq(hdr(&r, "connection"), "close");
    cr_expect_str_eq(r.body, "hello world");
    cr_expect_eq(rx_off, rx_len, "the request after Connection: close is not answered");
    cr_expect_eq(dispatched, 1);
}

Test(http1, http10_closes_unless_keep_alive)
{
    send_str("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    struct resp r;
    next_resp(&r);
    cr_expect_null(hdr(&r, "connection"));
    spin(20);
    cr_expect_eq(gw_server_connections(srv), 1);
    send_str("GET /hello HTTP/1.0\r\n\r\n");
    next_resp(&r);
    cr_expect_str_eq(hdr(&r, "connection"), "close");
    cr_expect(spin_until(conn_closed));
}

/* The peer going away while a handler holds its request aborts it. */
Test(http1, peer_eof_aborts_the_held_request)
{
    send_str("GET /hold HTTP/1.1\r\n\r\n");
    spin(20);
    cr_assert_not_null(held);
    bufferevent_flush(client, EV_WRITE, BEV_FINISHED); /* EOF to the server */
    cr_assert(spin_until(conn_closed));
    cr_expect_eq(aborts, 1);
    cr_expect_str_eq(abort_paths[0], "/hold");
    cr_expect_null(held);
}

Test(http1, drain_closes_idle_and_finishes_in_flight_with_close)
{
    send_str("GET /hold HTTP/1.1\r\n\r\n");
    spin(20);
    cr_assert_not_null(held);
    gw_server_drain(srv, NULL, NULL);
    spin(20);
    cr_expect_eq(gw_server_connections(srv), 1, "in-flight request keeps it open");
    answer_held(200, "done");
    struct resp r;
    next_resp(&r);
    cr_expect_str_eq(r.body, "done");
    cr_expect_str_eq(hdr(&r, "connection"), "close");
    cr_expect(spin_until(conn_closed));
    cr_expect_eq(aborts, 0);
}

Test(http1, header_timeout_408)
{
    harness_stop();
    harness_config();
    cfg.header_timeout_ms = 100;
    harness_start();
    send_str("GET /hello HTTP/1.1\r\nHost: slow");
    double t0 = now_s();
    struct resp r;
    next_resp(&r);
    cr_expect_geq(now_s() - t0, 0.09);
    expect_error(&r, 408, "Request Timeout", "RequestTimeoutException",
                 "Request not received within 100 ms");
    cr_expect(spin_until(conn_closed));
}
