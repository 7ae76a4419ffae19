/* test_reply.c - the reply writer (reply.c): the content-type rule, each
 * back end's exact bytes, counts enforced, and JSON and CBOR saying the same
 * thing (CBOR decoded with gw_cbor_decode equals the JSON text parsed with
 * jansson). Requests are fakes: a transport that records the send. */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <string.h>

#include "cbor.h"
#include "reply.h"
#include "request-internal.h"

static int sends;
static void t_send(struct gw_req *r) { sends++; }
static void t_nop(struct gw_req *r) {}
static const struct gw_req_transport fake = {t_send, t_nop, t_nop, NULL};
static bool draining;

static struct gw_req *mkreq(const char *path, const char *ct, const char *target)
{
    struct gw_req *r = gw_req_new(GW_PROTO_HTTP1, false, 1, &fake, NULL, &draining);
    gw_req_set_line(r, "POST", 4, path, strlen(path));
    if (ct)
        gw_req_add_header(r, "content-type", 12, ct, strlen(ct), 4096);
    if (target)
        gw_req_add_header(r, "x-amz-target", 12, target, strlen(target), 4096);
    return r;
}

/* The body the fake transport was handed, as a NUL-terminated copy. */
static char *sent_body(struct gw_req *r, size_t *len)
{
    *len = evbuffer_get_length(r->resp.body);
    char *s = malloc(*len + 1);
    evbuffer_copyout(r->resp.body, s, *len);
    s[*len] = '\0';
    return s;
}

static const char *resp_header(struct gw_req *r, const char *name)
{
    for (size_t i = 0; i < r->resp.nhdrs; i++)
        if (strcmp(r->resp.hdrs[i].name, name) == 0)
            return r->resp.hdrs[i].value;
    return NULL;
}

/* ---- the content-type rule ----------------------------------------------------- */

Test(reply, content_type_rule)
{
    cr_expect_eq(gw_reply_format_for("/", "application/x-amz-cbor-1.1", "K.PutRecord"),
                 GW_REPLY_CBOR);
    cr_expect_eq(gw_reply_format_for("/v1/streams", "application/x-amz-cbor-1.1", NULL),
                 GW_REPLY_CBOR);
    cr_expect_eq(gw_reply_format_for("/", "application/x-amz-json-1.1", "K.PutRecord"),
                 GW_REPLY_AMZ_JSON);
    cr_expect_eq(gw_reply_format_for("/", "text/plain", NULL), GW_REPLY_AMZ_JSON);
    cr_expect_eq(gw_reply_format_for("/", NULL, NULL), GW_REPLY_AMZ_JSON);
    cr_expect_eq(gw_reply_format_for("/v1/streams", "application/json", NULL), GW_REPLY_JSON);
    cr_expect_eq(gw_reply_format_for("/v1/streams", NULL, NULL), GW_REPLY_JSON);
    cr_expect_eq(gw_reply_format_for("/v1/x", "application/json", "K.Op"), GW_REPLY_AMZ_JSON);
    /* Media type parameters and case; a longer type is not the type. */
    cr_expect_eq(gw_reply_format_for("/", "Application/X-Amz-Cbor-1.1; charset=x", NULL),
                 GW_REPLY_CBOR);
    cr_expect_eq(gw_reply_format_for("/v1/a", "application/x-amz-cbor-1.10", NULL),
                 GW_REPLY_JSON);
    cr_expect_str_eq(gw_reply_content_type(GW_REPLY_CBOR), "application/x-amz-cbor-1.1");
    cr_expect_str_eq(gw_reply_content_type(GW_REPLY_AMZ_JSON), "application/x-amz-json-1.1");
    cr_expect_str_eq(gw_reply_content_type(GW_REPLY_JSON), "application/json");
}

/* ---- JSON back end --------------------------------------------------------------- */

/* Writes one document with every kind of value. */
static void write_doc(struct gw_reply *w)
{
    static const uint8_t blob[] = {0, 1, 2, 0xfe, 0xff};
    gw_reply_object(w, 9);
    gw_reply_key(w, "S");
    gw_reply_string(w, "a\"b\\c\n\t\x01/\xc3\xa9");
    gw_reply_key(w, "Data");
    gw_reply_blob(w, blob, sizeof blob);
    gw_reply_key(w, "I");
    gw_reply_int(w, INT64_MIN);
    gw_reply_key(w, "J");
    gw_reply_int(w, 1234567890123LL);
    gw_reply_key(w, "B");
    gw_reply_bool(w, true);
    gw_reply_key(w, "N");
    gw_reply_null(w);
    gw_reply_key(w, "R");
    gw_reply_real(w, 0.5);
    gw_reply_key(w, "ApproximateArrivalTimestamp");
    gw_reply_time_ms(w, 1700000000100LL);
    gw_reply_key(w, "A");
    gw_reply_array(w, 3);
    gw_reply_object(w, 0);
    gw_reply_end(w);
    gw_reply_array(w, 0);
    gw_reply_end(w);
    gw_reply_time_ms(w, -1500);
    gw_reply_end(w);
    gw_reply_end(w);
}

static const char doc_json[] =
    "{\"S\":\"a\\\"b\\\\c\\n\\t\\u0001/\xc3\xa9\",\"Data\":\"AAEC/v8=\","
    "\"I\":-9223372036854775808,\"J\":1234567890123,\"B\":true,\"N\":null,\"R\":0.5,"
    "\"ApproximateArrivalTimestamp\":1700000000.100,\"A\":[{},[],-1.500]}";

Test(reply, json_exact_bytes)
{
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, "x", 1); /* appends after what is there */
    struct gw_reply w;
    gw_reply_init_json(&w, out);
    write_doc(&w);
    cr_assert_eq(gw_reply_finish(&w), 0);
    size_t n = evbuffer_get_length(out);
    char *s = calloc(1, n + 1);
    evbuffer_copyout(out, s, n);
    cr_expect_eq(s[0], 'x');
    cr_expect_str_eq(s + 1, doc_json);
    cr_expect(json_loads(s + 1, 0, NULL) != NULL, "not JSON: %s", s + 1);
    free(s);
    evbuffer_free(out);
}

/* The flat sink: the same bytes, from the offset given, whether the block
 * is large enough or has to grow many times over; bytes before the offset
 * are kept; a malformed document frees the block. */
Test(reply, flat_exact_bytes_at_offset)
{
    size_t caps[] = {4096, 9, 1};
    for (size_t k = 0; k < sizeof caps / sizeof *caps; k++) {
        uint8_t *block = malloc(caps[k]);
        block[0] = 'x';
        struct gw_reply w;
        gw_reply_init_flat(&w, block, caps[k], 1);
        write_doc(&w);
        size_t end = 0, cap = 0;
        block = gw_reply_finish_flat(&w, &end, &cap);
        cr_assert_not_null(block, "cap %zu", caps[k]);
        cr_assert_geq(cap, end);
        cr_expect_eq(cap, caps[k] > end ? caps[k] : cap, "a block large enough stays as given");
        cr_assert_eq(end, 1 + strlen(doc_json), "cap %zu: end %zu", caps[k], end);
        cr_expect_eq(block[0], 'x');
        cr_expect_eq(memcmp(block + 1, doc_json, strlen(doc_json)), 0, "cap %zu: %.*s", caps[k],
                     (int)(end - 1), (const char *)block + 1);
        free(block);
    }
    struct gw_reply w;
    gw_reply_init_flat(&w, malloc(64), 64, 0);
    gw_reply_array(&w, 2);
    gw_reply_int(&w, 1);
    gw_reply_end(&w); /* one element short */
    size_t end, cap;
    cr_expect_null(gw_reply_finish_flat(&w, &end, &cap)); /* and freed: ASan would see a leak */
}

/* gw_reply_json_string_len says what the writer writes: every byte value
 * alone, and a mix. */
Test(reply, json_string_len_matches_the_writer)
{
    char str[300];
    for (int c = 0; c < 256 + 1; c++) {
        size_t n = 0;
        if (c < 256) {
            str[n++] = (char)c;
        } else {
            const char mix[] = "a\"b\\c\n\x01\x1f\x7f\xc3\xa9 \t";
            memcpy(str, mix, sizeof mix - 1);
            n = sizeof mix - 1;
        }
        struct evbuffer *out = evbuffer_new();
        struct gw_reply w;
        gw_reply_init_json(&w, out);
        gw_reply_string_n(&w, str, n);
        cr_assert_eq(gw_reply_finish(&w), 0);
        cr_expect_eq(gw_reply_json_string_len(str, n), evbuffer_get_length(out), "byte %d", c);
        evbuffer_free(out);
    }
}

Test(reply, json_reals_print_as_jansson)
{
    const double v[] = {2.0, 0.1, 1e20, 1.5e-7, -3.25, 123456789012345.0};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct evbuffer *out = evbuffer_new();
        struct gw_reply w;
        gw_reply_init_json(&w, out);
        gw_reply_real(&w, v[i]);
        cr_assert_eq(gw_reply_finish(&w), 0);
        char got[64] = {0};
        evbuffer_copyout(out, got, sizeof got - 1);
        json_t *j = json_real(v[i]);
        char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        cr_expect_str_eq(got, want, "%.17g", v[i]);
        free(want);
        json_decref(j);
        evbuffer_free(out);
    }
}

/* ---- counts and shape are enforced -------------------------------------------------- */

static int finish_of(void (*fn)(struct gw_reply *w))
{
    struct evbuffer *out = evbuffer_new();
    struct gw_reply w;
    gw_reply_init_json(&w, out);
    fn(&w);
    int rc = gw_reply_finish(&w);
    evbuffer_free(out);
    return rc;
}

static void too_few_members(struct gw_reply *w)
{
    gw_reply_object(w, 2);
    gw_reply_key(w, "a");
    gw_reply_int(w, 1);
    gw_reply_end(w);
}
static void too_many_elements(struct gw_reply *w)
{
    gw_reply_array(w, 1);
    gw_reply_int(w, 1);
    gw_reply_int(w, 2);
    gw_reply_end(w);
}
static void value_for_key(struct gw_reply *w)
{
    gw_reply_object(w, 1);
    gw_reply_int(w, 1);
    gw_reply_end(w);
}
static void key_in_array(struct gw_reply *w)
{
    gw_reply_array(w, 1);
    gw_reply_key(w, "a");
    gw_reply_int(w, 1);
    gw_reply_end(w);
}
static void left_open(struct gw_reply *w)
{
    gw_reply_object(w, 1);
    gw_reply_key(w, "a");
    gw_reply_array(w, 0);
    gw_reply_end(w);
}
static void two_roots(struct gw_reply *w)
{
    gw_reply_int(w, 1);
    gw_reply_int(w, 2);
}
static void nan_real(struct gw_reply *w) { gw_reply_real(w, 0.0 / 0.0); }
static void far_time(struct gw_reply *w) { gw_reply_time_ms(w, GW_CBOR_MAX_TIMESTAMP_MS + 1); }
static void fine(struct gw_reply *w)
{
    gw_reply_object(w, 1);
    gw_reply_key(w, "a");
    gw_reply_time_ms(w, GW_CBOR_MAX_TIMESTAMP_MS);
    gw_reply_end(w);
}

Test(reply, wrong_shapes_fail)
{
    cr_expect_eq(finish_of(fine), 0);
    cr_expect_eq(finish_of(too_few_members), -1);
    cr_expect_eq(finish_of(too_many_elements), -1);
    cr_expect_eq(finish_of(value_for_key), -1);
    cr_expect_eq(finish_of(key_in_array), -1);
    cr_expect_eq(finish_of(left_open), -1);
    cr_expect_eq(finish_of(two_roots), -1);
    cr_expect_eq(finish_of(nan_real), -1);
    cr_expect_eq(finish_of(far_time), -1);
}

/* A malformed reply is never sent as such: 500 InternalFailure instead. */
Test(reply, malformed_reply_answers_500)
{
    struct gw_req *r = mkreq("/", "application/x-amz-json-1.1", "Kinesis_20131202.X");
    struct gw_reply w;
    gw_reply_init(&w, r);
    too_few_members(&w);
    sends = 0;
    gw_reply_send(&w, 200);
    cr_assert_eq(sends, 1);
    cr_expect_eq(r->resp.status, 500);
    size_t n;
    char *b = sent_body(r, &n);
    cr_expect_str_eq(b, "{\"__type\":\"InternalFailure\",\"message\":\"encode error\"}");
    cr_expect_str_eq(resp_header(r, "x-amzn-errortype"), "InternalFailure");
    free(b);
    gw_req_free(r);
}

/* ---- CBOR back end ---------------------------------------------------------------------- */

Test(reply, cbor_exact_bytes)
{
    struct gw_req *r = mkreq("/", "application/x-amz-cbor-1.1", "Kinesis_20131202.X");
    struct gw_reply w;
    gw_reply_init(&w, r);
    gw_reply_object(&w, 4);
    gw_reply_key(&w, "a");
    gw_reply_int(&w, 24); /* one-byte argument */
    gw_reply_key(&w, "b");
    gw_reply_int(&w, -1);
    gw_reply_key(&w, "Data");
    gw_reply_blob(&w, "xyz", 3);
    gw_reply_key(&w, "t");
    gw_reply_time_ms(&w, 1000);
    gw_reply_end(&w);
    gw_reply_send(&w, 200);
    static const uint8_t want[] = {0xa4, 0x61, 'a', 0x18, 24, 0x61, 'b', 0x20, 0x64, 'D', 'a',
                                   't', 'a', 0x43, 'x', 'y', 'z', 0x61, 't', 0xc1, 0x19, 0x03, 0xe8};
    size_t n;
    char *b = sent_body(r, &n);
    cr_assert_eq(n, sizeof want, "%zu bytes", n);
    cr_expect_eq(memcmp(b, want, n), 0);
    cr_expect_str_eq(resp_header(r, "content-type"), "application/x-amz-cbor-1.1");
    free(b);
    gw_req_free(r);
}

/* The same calls through both back ends describe the same document. */
Test(reply, cbor_and_json_agree)
{
    struct gw_req *r = mkreq("/", "application/x-amz-cbor-1.1", "Kinesis_20131202.X");
    struct gw_reply w;
    gw_reply_init(&w, r);
    write_doc(&w);
    gw_reply_send(&w, 200);
    size_t n;
    char *b = sent_body(r, &n);
    json_t *from_cbor = NULL;
    char why[200];
    struct gw_cbor_opts o = {.kind = gw_cbor_kinesis_kind};
    cr_assert_eq(gw_cbor_decode((const uint8_t *)b, n, &o, &from_cbor, why, sizeof why), 0, "%s",
                 why);
    json_t *from_json = json_loads(doc_json, 0, NULL);
    cr_assert_not_null(from_json);
    char *a = json_dumps(from_cbor, JSON_COMPACT | JSON_SORT_KEYS);
    char *c = json_dumps(from_json, JSON_COMPACT | JSON_SORT_KEYS);
    cr_expect(json_equal(from_cbor, from_json), "CBOR says %s\nJSON says %s", a, c);
    free(a);
    free(c);
    json_decref(from_cbor);
    json_decref(from_json);
    free(b);
    gw_req_free(r);
}

/* A jansson tree goes through the same writer: in JSON it prints as
 * jansson would (reals aside), in CBOR blobs and timestamps get their kinds. */
Test(reply, tree_both_ways)
{
    const char *text = "{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":"
                       "\"k\",\"ApproximateArrivalTimestamp\":1700000000.5}],\"Count\":3,"
                       "\"Open\":false,\"Tags\":{}}";
    json_t *t = json_loads(text, 0, NULL);
    cr_assert_not_null(t);
    struct evbuffer *out = evbuffer_new();
    struct gw_reply w;
    gw_reply_init_json(&w, out);
    gw_reply_tree(&w, t);
    cr_assert_eq(gw_reply_finish(&w), 0);
    char got[512] = {0};
    evbuffer_copyout(out, got, sizeof got - 1);
    cr_expect_str_eq(got, "{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":"
                          "\"k\",\"ApproximateArrivalTimestamp\":1700000000.500}],\"Count\":3,"
                          "\"Open\":false,\"Tags\":{}}");
    evbuffer_free(out);

    struct gw_req *r = mkreq("/", "application/x-amz-cbor-1.1", "Kinesis_20131202.X");
    gw_reply_init(&w, r);
    gw_reply_tree(&w, t);
    gw_reply_send(&w, 200);
    size_t n;
    char *b = sent_body(r, &n);
    /* The blob is a byte string, the timestamp tag 1 + ms. */
    cr_expect_not_null(memmem(b, n, "\x42hi", 3), "no byte string 'hi'");
    cr_expect_not_null(memmem(b, n, "\xc1\x1b\x00\x00\x01\x8b\xcf\xe5\x69\xf4", 10),
                       "no tag 1 + 1700000000500");
    json_t *back = NULL;
    char why[200];
    struct gw_cbor_opts o = {.kind = gw_cbor_kinesis_kind};
    cr_assert_eq(gw_cbor_decode((const uint8_t *)b, n, &o, &back, why, sizeof why), 0, "%s", why);
    cr_expect(json_equal(back, t));
    json_decref(back);
    free(b);
    gw_req_free(r);
    json_decref(t);
}

/* ---- errors ------------------------------------------------------------------------------- */

Test(reply, errors_on_each_door)
{
    struct gw_error err = {0};
    gw_error_set(&err, GW_ERR_RESOURCE_NOT_FOUND, "Stream x not found.");
    const struct {
        const char *path, *ct, *target, *want_ct;
    } c[] = {
        {"/", "application/x-amz-json-1.1", "Kinesis_20131202.X", "application/x-amz-json-1.1"},
        {"/v1/streams/x", NULL, NULL, "application/json"},
        {"/", "application/x-amz-cbor-1.1", "Kinesis_20131202.X", "application/x-amz-cbor-1.1"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        struct gw_req *r = mkreq(c[i].path, c[i].ct, c[i].target);
        gw_reply_error(r, &err);
        cr_expect_eq(r->resp.status, 400);
        cr_expect_str_eq(resp_header(r, "content-type"), c[i].want_ct);
        cr_expect_str_eq(resp_header(r, "x-amzn-errortype"), "ResourceNotFoundException");
        size_t n;
        char *b = sent_body(r, &n);
        if (i < 2)
            cr_expect_str_eq(b, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Stream "
                                "x not found.\"}");
        else
            cr_expect_eq(b[0], (char)0xa2, "a CBOR map of 2");
        free(b);
        gw_req_free(r);
    }
}

/* A message quoting invalid UTF-8 from a client keeps its type, not the quote. */
Test(reply, unprintable_error_message)
{
    struct gw_error err = {0};
    gw_error_set(&err, GW_ERR_VALIDATION, "Value '\xff\xfe' is bad");
    struct gw_req *r = mkreq("/", "application/x-amz-json-1.1", "Kinesis_20131202.X");
    gw_reply_error(r, &err);
    size_t n;
    char *b = sent_body(r, &n);
    cr_expect_str_eq(b, "{\"__type\":\"ValidationException\",\"message\":\"(message not "
                        "printable)\"}");
    free(b);
    gw_req_free(r);
}
