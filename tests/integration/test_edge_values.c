/* test_edge_values.c - numbers and names past their limits, end to end.
 *
 * Timestamps that fit no integer (1e300, -1e300, NaN, infinities, text) and
 * names longer than the model's 128 characters go to the real sluice binary
 * through the Kinesis door (JSON over h2c with the fan-out test client, CBOR
 * over HTTP/1.1) and the REST door (query parameters of GetRecords and of the
 * SSE SubscribeToShard). Shard iterators whose stream-name field is longer
 * than any stream name are sealed with the server's own key (read from its
 * data directory: what no peer can do) to pin the iterator decoder's bound.
 *
 * Each request gets a clean 400 with its Kinesis error type, and the server
 * keeps serving and exits cleanly. Under ASan+UBSan (SLUICE_SANITIZE) a copy
 * past a bound aborts the server, so the stop status fails the test. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fanout_client.h"
#include "harness.h"

#define SHARD0 "shardId-000000000000"

static struct srv S;
static struct event_base *base;
static struct fc_conn *ctl;
static char stream_arn[256], consumer_arn[512];

/* ---- the Kinesis door over h2c ------------------------------------------------ */

/* Calls "op" with a printf-built body of any length; returns the reply (new). */
static json_t *kcall(int *status, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static json_t *kcall(int *status, const char *op, const char *fmt, ...)
{
    char *body = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&body, fmt, ap);
    va_end(ap);
    cr_assert_geq(n, 0);
    json_t *r = fc_call_sync(ctl, op, body, status, 10000);
    free(body);
    return r;
}

static const char *jstr(json_t *o, const char *a, const char *b)
{
    json_t *j = json_object_get(o, a);
    if (b)
        j = json_object_get(j, b);
    return json_string_value(j);
}

/* Expects a 400 whose __type is "type"; consumes "r". */
static void expect_400(int status, json_t *r, const char *type, const char *what)
{
    const char *t = jstr(r, "__type", NULL);
    cr_expect_eq(status, 400, "%s: status %d (%s)", what, status, t ? t : "no __type");
    cr_expect(t && strcmp(t, type) == 0, "%s: __type %s, expected %s (%s)", what, t ? t : "none",
              type, jstr(r, "message", NULL) ? jstr(r, "message", NULL) : "");
    json_decref(r);
}

static void expect_200(int status, json_t *r, const char *what)
{
    cr_expect_eq(status, 200, "%s: status %d %s %s", what, status,
                 jstr(r, "__type", NULL) ? jstr(r, "__type", NULL) : "",
                 jstr(r, "message", NULL) ? jstr(r, "message", NULL) : "");
    json_decref(r);
}

/* ---- HTTP/1.1 with raw sockets ------------------------------------------------------ */

/* Sends one request with "Connection: close" and reads the answer into
 * "resp" (headers and body, NUL-terminated, at most "cap"-1 bytes, until the
 * server closes or 3 s pass). Returns the status code, 0 if none. */
static int http1(char *resp, size_t cap, const char *method, const char *target,
                 const char *extra_headers, const void *body, size_t blen)
{
    int fd = tcp_connect(S.port, 3000);
    char *head = NULL;
    int n = asprintf(&head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                     "Content-Length: %zu\r\n\r\n",
                     method, target, extra_headers ? extra_headers : "", blen);
    cr_assert_geq(n, 0);
    cr_assert_eq(send_all(fd, head, (size_t)n), 0);
    free(head);
    if (blen)
        cr_assert_eq(send_all(fd, body, blen), 0);
    bool closed;
    recv_until_close(fd, resp, cap, &closed);
    close(fd);
    int status = 0;
    if (strncmp(resp, "HTTP/1.1 ", 9) == 0)
        status = atoi(resp + 9);
    return status;
}

/* The x-amzn-errortype header of a response, copied into "out" ("" if none). */
static const char *error_type(const char *resp, char *out, size_t cap)
{
    out[0] = '\0';
    const char *h = strcasestr(resp, "\r\nx-amzn-errortype:");
    if (!h)
        return out;
    h += strlen("\r\nx-amzn-errortype:");
    while (*h == ' ')
        h++;
    size_t n = strcspn(h, "\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, h, n);
    out[n] = '\0';
    return out;
}

/* A GET on the REST door: expects a 400 of "type". */
static void rest_expect_400(const char *target, const char *type, const char *what)
{
    static char resp[65536];
    char t[128];
    int st = http1(resp, sizeof resp, "GET", target, NULL, NULL, 0);
    cr_expect_eq(st, 400, "%s: status %d: %.300s", what, st, resp);
    cr_expect_str_eq(error_type(resp, t, sizeof t), type, "%s: %.400s", what, resp);
    cr_expect(strstr(resp, type) != NULL, "%s: the body does not name %s", what, type);
}

/* ---- setup ---------------------------------------------------------------------------- */

/* Polls "op" with the body {"<key>":"<arg>"} until a.b reads "want". */
static void wait_status(const char *op, const char *key, const char *arg, const char *a,
                        const char *b, const char *want)
{
    for (int i = 0; i < 250; i++) {
        int st;
        json_t *r = kcall(&st, op, "{\"%s\":\"%s\"}", key, arg);
        const char *s = jstr(r, a, b);
        bool done = st == 200 && s && strcmp(s, want) == 0;
        json_decref(r);
        if (done)
            return;
        fc_run_for(base, 20);
    }
    cr_assert_fail("%s %s never became %s", op, arg, want);
}

/* A server with stream "s" (1 shard, 3 records) and its ACTIVE consumer "c". */
static void setup(void)
{
    memset(&S, 0, sizeof S);
    srv_start(&S, NULL);
    base = event_base_new();
    ctl = fc_conn_new(base, "127.0.0.1", S.port, NULL);
    cr_assert_not_null(ctl);
    int st;
    json_t *r = kcall(&st, "CreateStream", "{\"StreamName\":\"s\",\"ShardCount\":1}");
    expect_200(st, r, "CreateStream");
    wait_status("DescribeStreamSummary", "StreamName", "s", "StreamDescriptionSummary",
                "StreamStatus", "ACTIVE");
    r = kcall(&st, "DescribeStreamSummary", "{\"StreamName\":\"s\"}");
    snprintf(stream_arn, sizeof stream_arn, "%s",
             jstr(r, "StreamDescriptionSummary", "StreamARN"));
    json_decref(r);
    r = kcall(&st, "RegisterStreamConsumer", "{\"StreamARN\":\"%s\",\"ConsumerName\":\"c\"}",
              stream_arn);
    cr_assert_eq(st, 200);
    snprintf(consumer_arn, sizeof consumer_arn, "%s", jstr(r, "Consumer", "ConsumerARN"));
    json_decref(r);
    wait_status("DescribeStreamConsumer", "ConsumerARN", consumer_arn,
                "ConsumerDescription", "ConsumerStatus", "ACTIVE");
    for (int i = 0; i < 3; i++) {
        r = kcall(&st, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"Data\":\"AAEC\"}");
        expect_200(st, r, "PutRecord");
    }
}

static void teardown(void)
{
    if (S.pid > 0) {
        cr_expect(srv_alive(&S), "the server died (log %s)", S.log);
        cr_expect(healthz_ok(&S), "the server no longer answers");
    }
    fc_conn_free(ctl);
    ctl = NULL;
    if (base)
        event_base_free(base);
    base = NULL;
    if (S.pid > 0)
        cr_expect_eq(srv_stop(&S, 15000), 0, "sluice did not exit cleanly (log %s)", S.log);
}

TestSuite(edge, .init = setup, .fini = teardown, .timeout = 120);

/* ---- timestamps: the Kinesis door, JSON ------------------------------------------------ */

/* Every value is one no int64 of milliseconds can hold, or not a number. */
static const char *const bad_json_ts[] = {
    "1e300", "-1e300", "1e15", "-1e15", "1.7976931348623157e308", "-1.7976931348623157e308",
    "1e400", "NaN", "Infinity", "-Infinity", "\"nan\"", "\"inf\"", "\"1e300\"", "\"\"",
    "\"99999-01-01T00:00:00Z\"", NULL};

Test(edge, json_door_timestamps_out_of_range)
{
    for (int i = 0; bad_json_ts[i]; i++) {
        const char *x = bad_json_ts[i];
        char what[160];
        int st;
        json_t *r;
        snprintf(what, sizeof what, "GetShardIterator Timestamp %s", x);
        r = kcall(&st, "GetShardIterator",
                  "{\"StreamName\":\"s\",\"ShardId\":\"" SHARD0 "\",\"ShardIteratorType\":"
                  "\"AT_TIMESTAMP\",\"Timestamp\":%s}",
                  x);
        expect_400(st, r, "SerializationException", what);
        snprintf(what, sizeof what, "SubscribeToShard Timestamp %s", x);
        r = kcall(&st, "SubscribeToShard",
                  "{\"ConsumerARN\":\"%s\",\"ShardId\":\"" SHARD0 "\",\"StartingPosition\":"
                  "{\"Type\":\"AT_TIMESTAMP\",\"Timestamp\":%s}}",
                  consumer_arn, x);
        expect_400(st, r, "SerializationException", what);
        snprintf(what, sizeof what, "ListShards StreamCreationTimestamp %s", x);
        r = kcall(&st, "ListShards", "{\"StreamName\":\"s\",\"StreamCreationTimestamp\":%s}", x);
        expect_400(st, r, "SerializationException", what);
        snprintf(what, sizeof what, "ListShards ShardFilter.Timestamp %s", x);
        r = kcall(&st, "ListShards",
                  "{\"StreamName\":\"s\",\"ShardFilter\":{\"Type\":\"AT_TIMESTAMP\","
                  "\"Timestamp\":%s}}",
                  x);
        expect_400(st, r, "SerializationException", what);
        snprintf(what, sizeof what, "ListStreamConsumers StreamCreationTimestamp %s", x);
        r = kcall(&st, "ListStreamConsumers",
                  "{\"StreamARN\":\"%s\",\"StreamCreationTimestamp\":%s}", stream_arn, x);
        expect_400(st, r, "SerializationException", what);
    }
    /* In range: the far future is the service's InvalidArgument, the far
     * past starts at the oldest record. */
    int st;
    json_t *r = kcall(&st, "GetShardIterator",
                      "{\"StreamName\":\"s\",\"ShardId\":\"" SHARD0 "\",\"ShardIteratorType\":"
                      "\"AT_TIMESTAMP\",\"Timestamp\":1e13}");
    expect_400(st, r, "InvalidArgumentException", "GetShardIterator Timestamp 1e13");
    r = kcall(&st, "GetShardIterator",
              "{\"StreamName\":\"s\",\"ShardId\":\"" SHARD0 "\",\"ShardIteratorType\":"
              "\"AT_TIMESTAMP\",\"Timestamp\":-1e13}");
    cr_expect_eq(st, 200, "GetShardIterator Timestamp -1e13: %d", st);
    const char *it = jstr(r, "ShardIterator", NULL);
    cr_assert_not_null(it);
    json_t *g = kcall(&st, "GetRecords", "{\"ShardIterator\":\"%s\"}", it);
    json_decref(r);
    cr_expect_eq(st, 200);
    cr_expect_eq(json_array_size(json_object_get(g, "Records")), 3, "all 3 records from -1e13");
    json_decref(g);
}

/* ---- timestamps: the Kinesis door, CBOR ------------------------------------------------- */

static size_t cbor_text(uint8_t *p, const char *s)
{
    size_t n = strlen(s), o = 0;
    if (n < 24) {
        p[o++] = (uint8_t)(0x60 + n);
    } else {
        p[o++] = 0x78;
        p[o++] = (uint8_t)n;
    }
    memcpy(p + o, s, n);
    return o + n;
}

/* GetShardIterator AT_TIMESTAMP in CBOR with "ts" ("tlen" bytes of CBOR) as
 * the Timestamp; returns the status, the error type in "type". */
static int cbor_get_iterator(const uint8_t *ts, size_t tlen, char *type, size_t tcap)
{
    uint8_t body[256];
    size_t n = 0;
    body[n++] = 0xa4; /* map of 4 */
    n += cbor_text(body + n, "StreamName");
    n += cbor_text(body + n, "s");
    n += cbor_text(body + n, "ShardId");
    n += cbor_text(body + n, SHARD0);
    n += cbor_text(body + n, "ShardIteratorType");
    n += cbor_text(body + n, "AT_TIMESTAMP");
    n += cbor_text(body + n, "Timestamp");
    memcpy(body + n, ts, tlen);
    n += tlen;
    static char resp[65536];
    int st = http1(resp, sizeof resp, "POST", "/",
                   "Content-Type: application/x-amz-cbor-1.1\r\n"
                   "X-Amz-Target: Kinesis_20131202.GetShardIterator\r\n",
                   body, n);
    error_type(resp, type, tcap);
    return st;
}

Test(edge, cbor_door_timestamps_out_of_range)
{
    static const struct {
        const char *what;
        uint8_t b[12];
        size_t n;
    } bad[] = {
        {"tag 1, float64 NaN", {0xc1, 0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0}, 10},
        {"tag 1, float64 +inf", {0xc1, 0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0}, 10},
        {"tag 1, float64 -inf", {0xc1, 0xfb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0}, 10},
        {"tag 1, float64 1e300", {0xc1, 0xfb, 0x7e, 0x37, 0xe4, 0x3c, 0x88, 0x00, 0x75, 0x9c}, 10},
        {"float64 -1e300", {0xfb, 0xfe, 0x37, 0xe4, 0x3c, 0x88, 0x00, 0x75, 0x9c}, 9},
        {"float16 NaN", {0xf9, 0x7e, 0x00}, 3},
        {"float32 +inf", {0xfa, 0x7f, 0x80, 0x00, 0x00}, 5},
        {"tag 1, uint64 max", {0xc1, 0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 10},
        {"tag 1, negint -2^64", {0xc1, 0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 10},
        {"uint 2^62 ms", {0x1b, 0x40, 0, 0, 0, 0, 0, 0, 0}, 9},
    };
    char type[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = cbor_get_iterator(bad[i].b, bad[i].n, type, sizeof type);
        cr_expect_eq(st, 400, "CBOR Timestamp %s: status %d", bad[i].what, st);
        cr_expect_str_eq(type, "SerializationException", "CBOR Timestamp %s", bad[i].what);
    }
    /* Control: tag 1, 1000 ms. */
    const uint8_t ok[] = {0xc1, 0x19, 0x03, 0xe8};
    int st = cbor_get_iterator(ok, sizeof ok, type, sizeof type);
    cr_expect_eq(st, 200, "CBOR Timestamp 1000 ms: %d %s", st, type);
}

/* ---- timestamps: the REST door ----------------------------------------------------------- */

/* Query values that are no finite number of seconds within +-1e14. */
static const char *const bad_query_ts[] = {"1e300", "-1e300", "nan", "NaN", "inf", "-inf",
                                           "Infinity", "1e15", "-1e15", "abc", "", "1x",
                                           "0x", "--1", "1e400", NULL};

Test(edge, rest_door_timestamps_out_of_range)
{
    char target[512];
    for (int i = 0; bad_query_ts[i]; i++) {
        char what[160];
        snprintf(target, sizeof target,
                 "/v1/streams/s/shards/" SHARD0 "/records?from=AT_TIMESTAMP&timestamp=%s",
                 bad_query_ts[i]);
        snprintf(what, sizeof what, "REST GetRecords timestamp=%s", bad_query_ts[i]);
        rest_expect_400(target, "ValidationException", what);
        snprintf(target, sizeof target,
                 "/v1/streams/s/consumers/c/shards/" SHARD0 "/subscribe?from=AT_TIMESTAMP"
                 "&timestamp=%s",
                 bad_query_ts[i]);
        snprintf(what, sizeof what, "REST subscribe timestamp=%s", bad_query_ts[i]);
        rest_expect_400(target, "ValidationException", what);
    }
    /* Controls: a valid time reads the records; the subscription starts. */
    static char resp[65536];
    int st = http1(resp, sizeof resp, "GET",
                   "/v1/streams/s/shards/" SHARD0 "/records?from=AT_TIMESTAMP&timestamp=1.5", NULL,
                   NULL, 0);
    cr_expect_eq(st, 200, "%.300s", resp);
    cr_expect(strstr(resp, "\"Records\":[{") != NULL, "%.600s", resp);
    st = http1(resp, sizeof resp, "GET",
               "/v1/streams/s/consumers/c/shards/" SHARD0 "/subscribe?from=AT_TIMESTAMP"
               "&timestamp=1700000000",
               NULL, NULL, 0);
    cr_expect_eq(st, 200, "%.300s", resp);
    cr_expect(strstr(resp, "text/event-stream") != NULL, "%.300s", resp);
    cr_expect(strstr(resp, "event: record") != NULL, "%.600s", resp);
}

/* ---- names longer than 128 ------------------------------------------------------------------ */

Test(edge, names_longer_than_the_model_allows)
{
    static const size_t lens[] = {129, 200, 10000};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t len = lens[k];
        char *nm = malloc(len + 1);
        memset(nm, 'a', len);
        nm[len] = '\0';
        char what[128];
        int st;
        json_t *r;
#define NAMED(fmt) (snprintf(what, sizeof what, fmt " (%zu chars)", len), what)
        r = kcall(&st, "GetShardIterator",
                  "{\"StreamName\":\"%s\",\"ShardId\":\"" SHARD0
                  "\",\"ShardIteratorType\":\"TRIM_HORIZON\"}",
                  nm);
        expect_400(st, r, "ValidationException", NAMED("GetShardIterator StreamName"));
        r = kcall(&st, "GetShardIterator",
                  "{\"StreamName\":\"s\",\"ShardId\":\"%s\",\"ShardIteratorType\":\"LATEST\"}", nm);
        expect_400(st, r, "ValidationException", NAMED("GetShardIterator ShardId"));
        r = kcall(&st, "SubscribeToShard",
                  "{\"ConsumerARN\":\"%s\",\"ShardId\":\"%s\",\"StartingPosition\":"
                  "{\"Type\":\"LATEST\"}}",
                  consumer_arn, nm);
        expect_400(st, r, "ValidationException", NAMED("SubscribeToShard ShardId"));
        /* A consumer name inside an ARN is bounded only by the ARN's 2048. */
        r = kcall(&st, "SubscribeToShard",
                  "{\"ConsumerARN\":\"%s/consumer/%s:1\",\"ShardId\":\"" SHARD0
                  "\",\"StartingPosition\":{\"Type\":\"LATEST\"}}",
                  stream_arn, nm);
        expect_400(st, r, len > 1900 ? "ValidationException" : "ResourceNotFoundException",
                   NAMED("SubscribeToShard ConsumerARN"));
        r = kcall(&st, "DescribeStreamSummary", "{\"StreamName\":\"%s\"}", nm);
        expect_400(st, r, "ValidationException", NAMED("DescribeStreamSummary"));
        r = kcall(&st, "CreateStream", "{\"StreamName\":\"%s\",\"ShardCount\":1}", nm);
        expect_400(st, r, "ValidationException", NAMED("CreateStream"));
        r = kcall(&st, "RegisterStreamConsumer", "{\"StreamARN\":\"%s\",\"ConsumerName\":\"%s\"}",
                  stream_arn, nm);
        expect_400(st, r, "ValidationException", NAMED("RegisterStreamConsumer"));

        char *target = NULL;
        cr_assert_geq(asprintf(&target, "/v1/streams/%s/shards/" SHARD0 "/records", nm), 0);
        rest_expect_400(target, "ValidationException", NAMED("REST GetRecords stream"));
        free(target);
        cr_assert_geq(asprintf(&target, "/v1/streams/s/shards/%s/records", nm), 0);
        rest_expect_400(target, "ValidationException", NAMED("REST GetRecords shard"));
        free(target);
        cr_assert_geq(asprintf(&target, "/v1/streams/%s/consumers/c/shards/" SHARD0 "/subscribe",
                               nm),
                      0);
        rest_expect_400(target, "ValidationException", NAMED("REST subscribe stream"));
        free(target);
        cr_assert_geq(asprintf(&target, "/v1/streams/s/consumers/%s/shards/" SHARD0 "/subscribe",
                               nm),
                      0);
        rest_expect_400(target, "ValidationException", NAMED("REST subscribe consumer"));
        free(target);
        cr_assert_geq(asprintf(&target, "/v1/streams/s/consumers/c/shards/%s/subscribe", nm), 0);
        rest_expect_400(target, "ValidationException", NAMED("REST subscribe shard"));
        free(target);
#undef NAMED
        free(nm);
    }
}

/* ---- sealed iterators with an over-long stream name ----------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_decode(const char *s, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *s; s++) {
        const char *p = strchr(b64url, *s);
        cr_assert_not_null(p, "not base64url: %c", *s);
        acc = (acc << 6) | (uint32_t)(p - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            cr_assert_lt(n, cap);
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

/* Unpadded base64url, the low bits of the last character zero. */
static void b64url_encode(const uint8_t *p, size_t n, char *out)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *out++ = b64url[x >> 18];
        *out++ = b64url[(x >> 12) & 63];
        *out++ = b64url[(x >> 6) & 63];
        *out++ = b64url[x & 63];
    }
    if (i < n) {
        uint32_t x = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *out++ = b64url[x >> 18];
        *out++ = b64url[(x >> 12) & 63];
        if (i + 1 < n)
            *out++ = b64url[(x >> 6) & 63];
    }
    *out = '\0';
}

#define TOK_HEAD 10   /* version, kind, issued ms */
#define TOK_MAC 16
#define ITER_FIXED 54 /* created ms 8, shard 4, position 42: then the stream name */

/* "real" (an iterator the server issued) with its stream-name field replaced
 * by "name", sealed again with the server's key. Returns new text. */
static char *reseal(const char *real, const char *name)
{
    uint8_t key[32];
    char path[400];
    snprintf(path, sizeof path, "%s/data/iterator.key", S.dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "no %s", path);
    cr_assert_eq(fread(key, 1, sizeof key, f), sizeof key);
    fclose(f);
    uint8_t raw[1024];
    size_t n = b64url_decode(real, raw, sizeof raw);
    cr_assert_geq(n, TOK_HEAD + ITER_FIXED + TOK_MAC);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, sizeof key, raw, n - TOK_MAC, mac, &ml);
    cr_assert_eq(memcmp(mac, raw + n - TOK_MAC, TOK_MAC), 0, "the key does not open the iterator");
    size_t nl = strlen(name);
    uint8_t *t = malloc(TOK_HEAD + ITER_FIXED + nl + TOK_MAC);
    memcpy(t, raw, TOK_HEAD + ITER_FIXED);
    memcpy(t + TOK_HEAD + ITER_FIXED, name, nl);
    size_t tl = TOK_HEAD + ITER_FIXED + nl;
    HMAC(EVP_sha256(), key, sizeof key, t, tl, mac, &ml);
    memcpy(t + tl, mac, TOK_MAC);
    tl += TOK_MAC;
    char *out = malloc(tl * 4 / 3 + 4);
    b64url_encode(t, tl, out);
    free(t);
    return out;
}

Test(edge, sealed_iterator_with_an_overlong_stream_name)
{
    int st;
    json_t *r = kcall(&st, "GetShardIterator",
                      "{\"StreamName\":\"s\",\"ShardId\":\"" SHARD0
                      "\",\"ShardIteratorType\":\"TRIM_HORIZON\"}");
    cr_assert_eq(st, 200);
    char real[1024];
    snprintf(real, sizeof real, "%s", jstr(r, "ShardIterator", NULL));
    json_decref(r);

    /* Control: resealed with its own name it still reads the records, so the
     * cases below differ from it only in the name field. */
    char *tok = reseal(real, "s");
    r = kcall(&st, "GetRecords", "{\"ShardIterator\":\"%s\"}", tok);
    cr_expect_eq(st, 200, "resealed iterator: %d %s", st, jstr(r, "__type", NULL));
    cr_expect_eq(json_array_size(json_object_get(r, "Records")), 3);
    json_decref(r);
    free(tok);

    /* 128 characters: a name the model allows, of no stream here. */
    char name[256];
    memset(name, 'a', 128);
    name[128] = '\0';
    tok = reseal(real, name);
    r = kcall(&st, "GetRecords", "{\"ShardIterator\":\"%s\"}", tok);
    expect_400(st, r, "ResourceNotFoundException", "iterator naming a 128-char stream");
    free(tok);

    /* Longer than any stream name: not an iterator this server issued. */
    static const size_t over[] = {129, 130, 200};
    static char resp[65536];
    for (size_t k = 0; k < sizeof over / sizeof over[0]; k++) {
        memset(name, 'a', over[k]);
        name[over[k]] = '\0';
        tok = reseal(real, name);
        char what[96];
        snprintf(what, sizeof what, "iterator naming a %zu-char stream", over[k]);
        r = kcall(&st, "GetRecords", "{\"ShardIterator\":\"%s\"}", tok);
        cr_expect_str_eq(jstr(r, "message", NULL) ? jstr(r, "message", NULL) : "",
                         "Invalid ShardIterator.", "%s", what);
        expect_400(st, r, "InvalidArgumentException", what);
        char *target = NULL;
        cr_assert_geq(asprintf(&target, "/v1/streams/s/shards/" SHARD0 "/records?iterator=%s", tok),
                      0);
        char t[128];
        int hs = http1(resp, sizeof resp, "GET", target, NULL, NULL, 0);
        cr_expect_eq(hs, 400, "REST %s: %d", what, hs);
        cr_expect_str_eq(error_type(resp, t, sizeof t), "InvalidArgumentException", "REST %s", what);
        free(target);
        free(tok);
    }
}
