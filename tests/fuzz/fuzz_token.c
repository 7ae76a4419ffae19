/* fuzz_token.c - libFuzzer target for the sealed tokens of gateway/ops_*.c:
 * shard iterators (GetRecords, both doors) and the NextTokens of ListStreams,
 * ListShards and ListStreamConsumers, decoded by gw_op_token_open and by the
 * payload parsers behind it (iter_open in ops_records.c, the token structs of
 * ops_streams.c and ops_consumers.c).
 *
 * The operations run in process: a real app and store (gw_app_open in a temp
 * directory, one stream "fz" with 2 shards, 3 consumers, a few records) and
 * requests built with a fake transport, dispatched through the router.
 *
 * The first input byte picks the operation and the mode; the rest is either
 *   mode & 4 == 0  a payload, sealed with the app's key (gw_op_token_make), so
 *                  the fuzzer gets past the HMAC to the payload parsers. A
 *                  payload whose first 8 bytes are zero gets the stream's real
 *                  creation time there (big-endian for iterators, host order
 *                  for the list tokens, as each is made), so seeds can name
 *                  the live stream and reach the reads behind the parse;
 *   mode & 4 != 0  the token text itself (base64url decoding, canonical form,
 *                  MAC check).
 *   op = byte & 3: 0 GetRecords, 1 ListStreams, 2 ListShards, 3 ListStreamConsumers;
 *   byte & 8 with GetRecords: the REST door's ?iterator= instead.
 * Invariants asserted: every request is answered exactly once, synchronously
 * (none of these operations waits), with 200 or a 4xx whose body names a
 * Kinesis error type; never a 5xx, never a crash. */
#include <event2/buffer.h>
#include <ftw.h>
#include <sys/stat.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "log.h"
#include "ops.h"
#include "request-internal.h"
#include "router.h"

#include "fuzz_check.h"

static struct gw_config g_cfg;
static struct gw_app g_app;
static struct event_base *g_base;
static char g_dir[256], g_arn[512];
static int64_t g_created_ms;
static int g_sends;
static bool g_draining;

static void t_send(struct gw_req *r) { (void)r; g_sends++; }
static void t_stream(struct gw_req *r) { (void)r; CHECK(!"no operation here streams"); }
static void t_resume(struct gw_req *r) { (void)r; }
static const struct gw_req_transport fake = {t_send, t_stream, t_resume, NULL};

static void add_header(struct gw_req *r, const char *name, const char *value)
{
    CHECK(gw_req_add_header(r, name, strlen(name), value, strlen(value), 1 << 20) == 0);
}

/* Dispatches one request, runs the loop until it is answered (catalog
 * changes wait for their manifest), returns its status; body into *out. */
static int call(const char *method, const char *target, const char *op, const char *body,
                char **out)
{
    struct gw_req *r = gw_req_new(GW_PROTO_HTTP1, false, 1, &fake, NULL, &g_draining);
    gw_req_set_line(r, method, strlen(method), target, strlen(target));
    if (op) {
        char t[128];
        snprintf(t, sizeof t, "Kinesis_20131202.%s", op);
        add_header(r, "x-amz-target", t);
        add_header(r, "content-type", "application/x-amz-json-1.1");
    }
    if (body)
        CHECK(gw_req_body_append(r, body, strlen(body), 1 << 20) == 0);
    int before = g_sends;
    gw_req_dispatch(r, gw_router_dispatch, &g_app);
    for (int i = 0; i < 2000 && g_sends == before; i++) {
        event_base_loop(g_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (g_sends == before)
            usleep(1000);
    }
    CHECK(g_sends == before + 1);
    int status = r->resp.status;
    if (out) {
        size_t n = evbuffer_get_length(r->resp.body);
        *out = malloc(n + 1);
        evbuffer_copyout(r->resp.body, *out, n);
        (*out)[n] = '\0';
    }
    gw_req_free(r);
    return status;
}

static void call_ok(const char *op, const char *body)
{
    char *out;
    int st = call("POST", "/", op, body, &out);
    if (st != 200)
        fprintf(stderr, "fuzz_token setup: %s -> %d %s\n", op, st, out);
    CHECK(st == 200);
    free(out);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void teardown(void)
{
    gw_app_close(&g_app);
    event_base_free(g_base);
    gw_config_clear(&g_cfg);
    nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    const char *root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/sluice-fuzz-token-XXXXXX", root);
    CHECK(mkdtemp(g_dir) != NULL);
    char *argv[] = {"sluice", "--data-dir", g_dir, "--durability", "never", "--log-level", "error",
                    "--stream-delay", "0ms", NULL};
    CHECK(gw_config_load(&g_cfg, 9, argv, stdout, stderr) == GW_CONFIG_OK);
    gw_log_level_parse(g_cfg.log_level, &gw_log_min);
    g_base = event_base_new();
    CHECK(g_base != NULL);
    g_app.ops = gw_ops;
    struct gw_error err = {0};
    CHECK(gw_app_open(&g_app, g_base, &g_cfg, &err) == 0);

    call_ok("CreateStream", "{\"StreamName\":\"fz\",\"ShardCount\":2}");
    call_ok("CreateStream", "{\"StreamName\":\"fz2\",\"ShardCount\":1}");
    /* CREATING -> ACTIVE happens on a later loop turn. */
    struct store_stream *s = NULL;
    struct store_stream_info info;
    for (int i = 0; i < 2000; i++) {
        event_base_loop(g_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        CHECK(store_stream_lookup(g_app.store, "fz", &s, NULL) == 0);
        store_stream_info(s, &info);
        if (info.status == STORE_STREAM_ACTIVE)
            break;
        usleep(1000);
    }
    CHECK(info.status == STORE_STREAM_ACTIVE);
    g_created_ms = info.created_ms;
    snprintf(g_arn, sizeof g_arn, "%s", info.arn);
    char body[1024];
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof body, "{\"StreamARN\":\"%s\",\"ConsumerName\":\"c%d\"}", g_arn, i);
        call_ok("RegisterStreamConsumer", body);
    }
    call_ok("PutRecords", "{\"StreamName\":\"fz\",\"Records\":["
                          "{\"Data\":\"AA==\",\"PartitionKey\":\"a\"},"
                          "{\"Data\":\"AQI=\",\"PartitionKey\":\"b\"},"
                          "{\"Data\":\"AQID\",\"PartitionKey\":\"c\"},"
                          "{\"Data\":\"\",\"PartitionKey\":\"d\",\"ExplicitHashKey\":\"0\"}]}");
    atexit(teardown);
}

/* Percent-encodes "s" for a query value. */
static char *pct(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(3 * n + 1), *q = o;
    for (size_t i = 0; i < n; i++)
        q += sprintf(q, "%%%02X", (unsigned char)s[i]);
    *q = '\0';
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_base)
        setup();
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    int op = sel & 3;
    static const char kinds[] = {'I', 'L', 'S', 'C'};
    const uint8_t *rest = data + 1;
    size_t n = size - 1;

    char *token;
    if (sel & 4) {
        /* Token text as a client could send it: a JSON string (valid UTF-8,
         * no NUL); bytes that are not are folded to ASCII. */
        token = malloc(n + 1);
        memcpy(token, rest, n);
        token[n] = '\0';
        json_t *probe = json_stringn(token, n);
        if (!probe || memchr(rest, 0, n))
            for (size_t i = 0; i < n; i++)
                token[i] = (char)((rest[i] & 0x7f) ? (rest[i] & 0x7f) : 'A');
        json_decref(probe);
    } else {
        uint8_t payload[512];
        size_t pl = n < sizeof payload ? n : sizeof payload;
        memcpy(payload, rest, pl);
        static const uint8_t zero[8];
        if (pl >= 8 && memcmp(payload, zero, 8) == 0) {
            if (op == 0) {
                for (int i = 0; i < 8; i++)
                    payload[i] = (uint8_t)((uint64_t)g_created_ms >> (56 - 8 * i));
            } else {
                memcpy(payload, &g_created_ms, 8);
            }
        }
        token = gw_op_token_make(&g_app, kinds[op], payload, pl);
    }

    json_t *body = json_object();
    json_t *tj = json_string(token);
    CHECK(tj != NULL);
    const char *op_name[] = {"GetRecords", "ListStreams", "ListShards", "ListStreamConsumers"};
    const char *field = op == 0 ? "ShardIterator" : "NextToken";
    json_object_set_new(body, field, tj);
    if (op == 3)
        json_object_set_new(body, "StreamARN", json_string(g_arn));
    if (op == 1 || op == 3)
        json_object_set_new(body, op == 1 ? "Limit" : "MaxResults", json_integer(1));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    char *out = NULL;
    int status;
    if (op == 0 && (sel & 8)) {
        char *q = pct(token);
        size_t tl = strlen(q) + 128;
        char *target = malloc(tl);
        snprintf(target, tl, "/v1/streams/fz/shards/shardId-000000000000/records?iterator=%s", q);
        status = call("GET", target, NULL, NULL, &out);
        free(target);
        free(q);
    } else {
        status = call("POST", "/", op_name[op], text, &out);
    }
    CHECK(status == 200 || (status >= 400 && status < 500));
    if (status != 200)
        CHECK(strstr(out, "\"__type\"") != NULL || strstr(out, "\"message\"") != NULL);
    free(out);
    free(text);
    free(token);
    return 0;
}
