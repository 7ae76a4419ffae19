/* test_cbor.c - unit tests for gateway/cbor.c.
 *
 * Request bodies are built two ways: with libcbor's item API (what a Java
 * SDK body looks like: byte-string Data, tag 1 + ms timestamps) and as hex
 * for the corner cases a library would not produce (indefinite chunks,
 * malformed heads, invalid UTF-8, huge declared sizes). Encoder output is
 * checked with libcbor's own cbor_load(), an independent decoder, and every
 * sample body round-trips json -> CBOR -> json. */
#include <cbor/arrays.h>
#include <cbor/bytestrings.h>
#include <cbor/floats_ctrls.h>
#include <cbor/ints.h>
#include <cbor/maps.h>
#include <cbor/serialization.h>
#include <cbor/strings.h>
#include <cbor/tags.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbor.h"

/* libcbor's umbrella header is <cbor.h>, which gateway/cbor.h shadows. */
cbor_item_t *cbor_load(cbor_data source, size_t source_size, struct cbor_load_result *result);

static const struct gw_cbor_opts kinesis = {.kind = gw_cbor_kinesis_kind};

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        cr_assert_eq(sscanf(p, "%2x", &v), 1, "bad hex at '%s'", p);
        out[n++] = (uint8_t)v;
        p += 2;
    }
    return n;
}

/* Decodes "hex"; returns the tree or NULL with the reason in "err". */
static json_t *dec_hex(const char *hex, const struct gw_cbor_opts *o, char *err, size_t errlen)
{
    static uint8_t buf[8192];
    size_t n = unhex(hex, buf);
    uint8_t *exact = malloc(n ? n : 1); /* exact size, so ASan sees over-reads */
    memcpy(exact, buf, n);
    json_t *j = NULL;
    err[0] = '\0';
    int rc = gw_cbor_decode(exact, n, o, &j, err, errlen);
    free(exact);
    cr_assert_eq(rc == 0, j != NULL);
    if (rc != 0)
        cr_assert_neq(err[0], '\0', "failure without a message");
    return j;
}

static void expect_json(const char *hex, const struct gw_cbor_opts *o, const char *want)
{
    char err[256];
    json_t *got = dec_hex(hex, o, err, sizeof err);
    cr_assert_not_null(got, "%s: %s", hex, err);
    json_error_t je;
    json_t *w = json_loads(want, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    cr_assert_not_null(w, "bad expectation %s: %s", want, je.text);
    char *s = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert(json_equal(got, w), "%s decoded to %s, want %s", hex, s, want);
    free(s);
    json_decref(got);
    json_decref(w);
}

static void expect_error(const char *hex, const struct gw_cbor_opts *o, const char *needle)
{
    char err[256];
    json_t *got = dec_hex(hex, o, err, sizeof err);
    char *s = got ? json_dumps(got, JSON_COMPACT) : NULL;
    cr_assert_null(got, "%s: expected error '%s', got %s", hex, needle, s);
    cr_assert_not_null(strstr(err, needle), "%s: error '%s' lacks '%s'", hex, err, needle);
}

/* ---- libcbor-built bodies ---------------------------------------------- */

static void map_add(cbor_item_t *map, const char *key, cbor_item_t *v)
{
    cr_assert(cbor_map_add(map, (struct cbor_pair){.key = cbor_move(cbor_build_string(key)),
                                                   .value = cbor_move(v)}));
}

static cbor_item_t *record(const char *data, const char *pk)
{
    cbor_item_t *r = cbor_new_definite_map(2);
    map_add(r, "Data", cbor_build_bytestring((cbor_data)data, strlen(data)));
    map_add(r, "PartitionKey", cbor_build_string(pk));
    return r;
}

static json_t *decode_item(cbor_item_t *item, const struct gw_cbor_opts *o, char *err)
{
    unsigned char *buf = NULL;
    size_t cap = 0;
    size_t n = cbor_serialize_alloc(item, &buf, &cap);
    cr_assert_gt(n, 0);
    json_t *j = NULL;
    gw_cbor_decode(buf, n, o, &j, err, 256);
    free(buf);
    return j;
}

Test(cbor, java_style_put_records)
{
    cbor_item_t *body = cbor_new_definite_map(2);
    map_add(body, "StreamName", cbor_build_string("s1"));
    cbor_item_t *recs = cbor_new_definite_array(3);
    cr_assert(cbor_array_push(recs, cbor_move(record("hello", "pk-1"))));
    cr_assert(cbor_array_push(recs, cbor_move(record("", "pk-2"))));
    cr_assert(cbor_array_push(recs, cbor_move(record("ab", "pk-3"))));
    map_add(body, "Records", recs);
    char err[256];
    json_t *got = decode_item(body, &kinesis, err);
    cbor_decref(&body);
    cr_assert_not_null(got, "%s", err);
    json_t *want = json_loads("{\"StreamName\":\"s1\",\"Records\":["
                              "{\"Data\":\"aGVsbG8=\",\"PartitionKey\":\"pk-1\"},"
                              "{\"Data\":\"\",\"PartitionKey\":\"pk-2\"},"
                              "{\"Data\":\"YWI=\",\"PartitionKey\":\"pk-3\"}]}",
                              0, NULL);
    cr_assert(json_equal(got, want));
    json_decref(got);
    json_decref(want);
}

Test(cbor, java_style_timestamps)
{
    /* GetShardIterator AT_TIMESTAMP as the Java SDK writes it: tag 1 + ms. */
    cbor_item_t *body = cbor_new_definite_map(3);
    map_add(body, "ShardIteratorType", cbor_build_string("AT_TIMESTAMP"));
    map_add(body, "Timestamp", cbor_build_tag(1, cbor_move(cbor_build_uint64(1700000001123))));
    map_add(body, "Other", cbor_build_tag(1, cbor_move(cbor_build_uint32(1500))));
    char err[256];
    for (int pass = 0; pass < 2; pass++) {
        json_t *got = decode_item(body, pass ? &kinesis : NULL, err);
        cr_assert_not_null(got, "%s", err);
        json_t *ts = json_object_get(got, "Timestamp");
        cr_assert(json_is_real(ts));
        cr_assert_eq(json_real_value(ts), 1700000001.123);
        cr_assert_eq(json_real_value(json_object_get(got, "Other")), 1.5, "tag 1 always converts");
        json_decref(got);
    }
    cbor_decref(&body);
}

/* ---- hex corner cases --------------------------------------------------- */

Test(cbor, scalars)
{
    /* {"a": <x>} is a1 61 61 <x> */
    struct {
        const char *x, *json;
    } ok[] = {
        {"00", "0"},
        {"17", "23"},
        {"18 18", "24"},
        {"19 ffff", "65535"},
        {"1a 00010000", "65536"},
        {"1b 7fffffffffffffff", "9223372036854775807"},
        {"20", "-1"},
        {"37", "-24"},
        {"38 18", "-25"},
        {"3b 7fffffffffffffff", "-9223372036854775808"},
        {"f9 3c00", "1.0"},
        {"f9 c000", "-2.0"},
        {"fa 3fc00000", "1.5"},
        {"fb 3ff199999999999a", "1.1"},
        {"f4", "false"},
        {"f5", "true"},
        {"f6", "null"},
        {"60", "\"\""},
        {"63 c3a96c", "\"\xc3\xa9l\""},
        {"64 f09f9880", "\"\xf0\x9f\x98\x80\""},
        {"40", "\"\""},
        {"43 000102", "\"AAEC\""},
        {"44 deadbeef", "\"3q2+7w==\""},
        {"80", "[]"},
        {"a0", "{}"},
        {"82 01 a1 61 62 02", "[1,{\"b\":2}]"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char hex[256], want[256];
        snprintf(hex, sizeof hex, "a1 6161 %s", ok[i].x);
        snprintf(want, sizeof want, "{\"a\":%s}", ok[i].json);
        expect_json(hex, NULL, want);
    }
}

Test(cbor, scalars_rejected)
{
    struct {
        const char *x, *err;
    } bad[] = {
        {"1b 8000000000000000", "out of range"},
        {"1b ffffffffffffffff", "out of range"},
        {"3b 8000000000000000", "out of range"},
        {"f9 7e00", "non-finite"},
        {"f9 7c00", "non-finite"},
        {"fa ff800000", "non-finite"},
        {"fb 7ff8000000000000", "non-finite"},
        {"f7", "undefined"},
        {"f0", "malformed"},
        {"f8 20", "malformed"},
        {"1c", "malformed"},
        {"ff", "unexpected break"},
        {"c2 41 01", "unsupported tag 2"},
        {"c0 60", "unsupported tag 0"},
        {"c1 60", "tag 1 (epoch time) must wrap a number"},
        {"c1 a0", "tag 1 (epoch time) must wrap a number"},
        {"c1 c1 01", "tag 1 (epoch time) must wrap a number"},
        {"61 ff", "not valid UTF-8"},
        {"62 c0af", "not valid UTF-8"},       /* overlong '/' */
        {"63 eda080", "not valid UTF-8"},     /* surrogate */
        {"64 f4908080", "not valid UTF-8"},   /* > U+10FFFF */
        {"62 e282", "not valid UTF-8"},       /* truncated sequence */
        {"61 00", "U+0000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char hex[256];
        snprintf(hex, sizeof hex, "a1 6161 %s", bad[i].x);
        expect_error(hex, NULL, bad[i].err);
    }
    struct gw_cbor_opts nul = {.flags = GW_CBOR_ALLOW_NUL};
    expect_json("a1 6161 63 610062", &nul, "{\"a\":\"a\\u0000b\"}");
}

Test(cbor, untagged_timestamps_follow_the_schema)
{
    /* {"Timestamp": 1700000001123, "Limit": 5, "StreamCreationTimestamp": 1.5e12} */
    const char *hex = "a3 69 54696d657374616d70 1b 0000018bcfe56c63"
                      " 65 4c696d6974 05"
                      " 77 53747265616d4372656174696f6e54696d657374616d70 fb 4275d3ef79800000";
    expect_json(hex, &kinesis,
                "{\"Timestamp\":1700000001.123,\"Limit\":5,\"StreamCreationTimestamp\":1500000000.0}");
    /* Beyond 2^50 ms a timestamp would not survive ms -> s -> ms. */
    expect_error("a1 69 54696d657374616d70 1b 0004000000000001", &kinesis, "timestamp out of range");
    expect_json("a1 69 54696d657374616d70 3b 0003ffffffffffff", &kinesis,
                "{\"Timestamp\":-1125899906842.624}");
    expect_error("a1 6161 c1 fb 4330000000000001", NULL, "timestamp out of range");
    expect_json(hex, NULL,
                "{\"Timestamp\":1700000001123,\"Limit\":5,\"StreamCreationTimestamp\":1500000000000.0}");
    /* A blob sent as a text string passes through (base64 text, as Jackson
     * reads it); the operation validates it like JSON input. */
    expect_json("a1 64 44617461 64 5a6d3976", &kinesis, "{\"Data\":\"Zm9v\"}");
}

Test(cbor, indefinite_lengths)
{
    /* {_ "a": [_ 1, 2], (_ "k","ey"): (_ "v","al"), "b": (_ h'0102', h'03') } */
    expect_json("bf 6161 9f 01 02 ff 7f 616b 626579 ff 7f 6176 62616c ff"
                " 6162 5f 420102 4103 ff ff",
                NULL, "{\"a\":[1,2],\"key\":\"val\",\"b\":\"AQID\"}");
    /* Empty indefinite containers and strings. */
    expect_json("bf 6161 9f ff 6162 bf ff 6163 7f ff 6164 5f ff ff", NULL,
                "{\"a\":[],\"b\":{},\"c\":\"\",\"d\":\"\"}");
    /* UTF-8 split across chunks is fine once joined. */
    expect_json("a1 6161 7f 61c3 61a9 ff", NULL, "{\"a\":\"\xc3\xa9\"}");
    expect_error("a1 6161 7f 6161 4162 ff", NULL, "chunk of another type");
    expect_error("a1 6161 5f 4161 6162 ff", NULL, "chunk of another type");
    expect_error("a1 6161 7f 7f ff ff", NULL, "chunk of another type");
    expect_error("a1 6161 7f 01 ff", NULL, "chunk of another type");
    expect_error("a1 6161 7f 61ff ff", NULL, "not valid UTF-8");
    expect_error("bf 6161 ff", NULL, "map key without a value");
    expect_error("bf 6161 01", NULL, "truncated body");
    expect_error("a1 6161 9f 01", NULL, "truncated body");
    expect_error("a1 6161 81 ff", NULL, "unexpected break");
}

Test(cbor, structure_rejected)
{
    expect_error("", NULL, "empty body");
    expect_error("80", NULL, "body must be a CBOR map");
    expect_error("01", NULL, "body must be a CBOR map");
    expect_error("6161", NULL, "body must be a CBOR map");
    expect_error("c1 01", NULL, "body must be a CBOR map");
    expect_error("ff", NULL, "body must be a CBOR map");
    expect_error("a0 00", NULL, "1 trailing bytes");
    expect_error("a0 a0", NULL, "1 trailing bytes");
    expect_error("a1 01 02", NULL, "map key is not a text string");
    expect_error("a1 4161 02", NULL, "map key is not a text string");
    expect_error("a1 c1 6161 02", NULL, "map key is not a text string");
    expect_error("a1 f6 02", NULL, "map key is not a text string");
    expect_error("a1 a0 02", NULL, "map key is not a text string");
    expect_error("a2 6161 01 6161 02", NULL, "duplicate map key \"a\"");
    expect_error("bf 6161 01 7f 6161 ff 02 ff", NULL, "duplicate map key");
    expect_error("a1 6100 01", NULL, "map key contains U+0000");
    expect_error("a1 61ff 01", NULL, "not valid UTF-8");
    expect_error("a2 6161 01", NULL, "truncated body");
    expect_error("a1 6161 78", NULL, "truncated item");
    expect_error("a1 6161 7b ffffffffffffffff", NULL, "truncated item");
    expect_error("a1 6161 5a ffffffff 00", NULL, "truncated item");
    /* Declared counts are checked against the item budget before anything
     * is built. */
    expect_error("a1 6161 9b ffffffffffffffff", NULL, "exceeds the item limit");
    expect_error("bb ffffffffffffffff", NULL, "exceeds the item limit");
    expect_error("a1 6161 ba 7fffffff", NULL, "exceeds the item limit");
    /* Self-described CBOR prefix is fine, and the error offset is reported. */
    expect_json("d9d9f7 a1 6161 01", NULL, "{\"a\":1}");
    expect_error("a1 6161 f7", NULL, "at byte 3");
}

Test(cbor, every_prefix_of_a_body_fails_cleanly)
{
    const char *hex = "bf 6161 9f 01 fb 3ff199999999999a ff 7f 616b 626579 ff c1 1b 0000018bcfe56c63"
                      " 6162 5f 420102 4103 ff 6163 a2 6178 f5 6179 f6 ff";
    uint8_t buf[256];
    size_t n = unhex(hex, buf);
    json_t *j = NULL;
    char err[256];
    cr_assert_eq(gw_cbor_decode(buf, n, NULL, &j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, buf, cut);
        cr_assert_eq(gw_cbor_decode(p, cut, NULL, &j, err, sizeof err), -1, "cut %zu", cut);
        cr_assert_null(j);
        free(p);
    }
}

Test(cbor, limits)
{
    /* Depth: the root map is level 1. 31 nested arrays -> depth 32: ok. */
    char hex[512] = "a1 6161 ";
    for (int i = 0; i < 31; i++)
        strcat(hex, "81 ");
    strcat(hex, "01");
    char err[256];
    json_t *j = dec_hex(hex, NULL, err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    json_decref(j);
    char deeper[512] = "a1 6161 81 ";
    strcat(deeper, hex + 8);
    expect_error(deeper, NULL, "nesting deeper than 32");
    struct gw_cbor_opts shallow = {.max_depth = 2};
    expect_json("a1 6161 81 01", &shallow, "{\"a\":[1]}");
    expect_error("a1 6161 81 81 01", &shallow, "nesting deeper than 2");
    expect_error("a1 6161 81 9f ff", &shallow, "nesting deeper than 2");
    /* An indefinite string at the deepest level still has room. */
    expect_json("a1 6161 81 7f 6161 ff", &shallow, "{\"a\":[\"a\"]}");

    struct gw_cbor_opts few = {.max_items = 5};
    expect_json("a2 6161 01 6162 02", &few, "{\"a\":1,\"b\":2}");
    expect_error("a2 6161 01 6162 9f 02 ff", &few, "more than 5 data items");
    expect_error("a1 6161 84 01 02 03 04", &few, "exceeds the item limit");

    struct gw_cbor_opts small = {.max_size = 4};
    expect_json("a1 6161 01", &small, "{\"a\":1}");
    expect_error("a1 6161 18 20", &small, "exceeds the limit of 4");
}

/* ---- encoding ----------------------------------------------------------- */

static uint8_t *enc(const char *json, const struct gw_cbor_opts *o, size_t *n, char *err)
{
    json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
    cr_assert_not_null(j, "bad JSON %s", json);
    uint8_t *out = NULL;
    int rc = gw_cbor_encode(j, o, &out, n, err, 256);
    json_decref(j);
    cr_assert_eq(rc == 0, out != NULL);
    return out;
}

static void expect_bytes(const char *json, const struct gw_cbor_opts *o, const char *hex)
{
    uint8_t want[512];
    size_t wn = unhex(hex, want), n;
    char err[256];
    uint8_t *got = enc(json, o, &n, err);
    cr_assert_not_null(got, "%s: %s", json, err);
    cr_assert_eq(n, wn, "%s: %zu bytes, want %zu", json, n, wn);
    cr_assert(memcmp(got, want, n) == 0, "%s: bytes differ", json);
    free(got);
}

Test(cbor, encode_forms)
{
    expect_bytes("{}", NULL, "a0");
    expect_bytes("{\"a\":[0,23,24,-1,-25,65536,true,false,null,\"\"]}", NULL,
                 "a1 6161 8a 00 17 1818 20 3818 1a00010000 f5 f4 f6 60");
    expect_bytes("{\"a\":1.5}", NULL, "a1 6161 fb 3ff8000000000000");
    expect_bytes("{\"a\":-9223372036854775808}", NULL, "a1 6161 3b 7fffffffffffffff");
    /* Kinesis kinds: blob -> bytes, timestamp -> tag 1 + integer ms. */
    expect_bytes("{\"Data\":\"aGVsbG8=\",\"ApproximateArrivalTimestamp\":1700000001.123}", &kinesis,
                 "a2 64 44617461 45 68656c6c6f"
                 " 78 1b 417070726f78696d6174654172726976616c54696d657374616d70 c1 1b 0000018bcfe56c63");
    expect_bytes("{\"Timestamp\":1700000001}", &kinesis, "a1 69 54696d657374616d70 c1 1b 0000018bcfe56be8");
    expect_bytes("{\"Timestamp\":[1,-1]}", &kinesis, "a1 69 54696d657374616d70 82 c1 1903e8 c1 3903e7");
    /* Without a schema the same members stay text and reals. */
    expect_bytes("{\"Data\":\"aGk=\"}", NULL, "a1 64 44617461 64 61476b3d");
    /* Non-string blob members and non-number timestamps are left alone. */
    expect_bytes("{\"Data\":null,\"Timestamp\":\"x\"}", &kinesis,
                 "a2 64 44617461 f6 69 54696d657374616d70 61 78");
}

Test(cbor, encode_checked_by_libcbor)
{
    const char *resp = "{\"Records\":[{\"SequenceNumber\":\"4964\",\"ApproximateArrivalTimestamp\":"
                       "1700000001.456,\"Data\":\"d29ybGQ=\",\"PartitionKey\":\"pk-2\"}],"
                       "\"NextShardIterator\":\"it\",\"MillisBehindLatest\":0}";
    size_t n;
    char err[256];
    uint8_t *b = enc(resp, &kinesis, &n, err);
    cr_assert_not_null(b, "%s", err);
    struct cbor_load_result lr;
    cbor_item_t *root = cbor_load(b, n, &lr);
    cr_assert_not_null(root);
    cr_assert_eq(lr.read, n);
    cr_assert(cbor_isa_map(root));
    cr_assert_eq(cbor_map_size(root), 3);
    struct cbor_pair *kv = cbor_map_handle(root);
    cbor_item_t *recs = kv[0].value;
    cr_assert(cbor_isa_array(recs));
    cbor_item_t *rec = cbor_array_handle(recs)[0];
    struct cbor_pair *rkv = cbor_map_handle(rec);
    cbor_item_t *ts = rkv[1].value, *data = rkv[2].value;
    cr_assert(cbor_isa_tag(ts));
    cr_assert_eq(cbor_tag_value(ts), 1);
    cbor_item_t *ms = cbor_tag_item(ts);
    cr_assert_eq(cbor_get_int(ms), 1700000001456);
    cbor_decref(&ms);
    cr_assert(cbor_isa_bytestring(data));
    cr_assert_eq(cbor_bytestring_length(data), 5);
    cr_assert(memcmp(cbor_bytestring_handle(data), "world", 5) == 0);
    cbor_decref(&root);
    free(b);
}

Test(cbor, encode_errors)
{
    size_t n;
    char err[256];
    const char *bad_b64[] = {"\"aGVsbG8\"", "\"aGVsbG8==\"", "\"aGV sbG8=\"", "\"=AAA\"",
                             "\"aGVsbG9=\"", "\"A===\"", "\"aGVs\\nbG8=\""};
    for (size_t i = 0; i < sizeof bad_b64 / sizeof bad_b64[0]; i++) {
        char json[64];
        snprintf(json, sizeof json, "{\"Records\":[{\"Data\":%s}]}", bad_b64[i]);
        cr_assert_null(enc(json, &kinesis, &n, err), "%s", json);
        cr_assert_not_null(strstr(err, "member \"Data\" is not valid base64"), "%s", err);
    }
    cr_assert_null(enc("{\"Timestamp\":1e17}", &kinesis, &n, err));
    cr_assert_not_null(strstr(err, "out of range"));
    cr_assert_null(enc("{\"Timestamp\":9223372036854775807}", &kinesis, &n, err));
    cr_assert_not_null(strstr(err, "out of range"));
    uint8_t *ok = enc("{\"Timestamp\":1125899906842}", &kinesis, &n, err);
    cr_assert_not_null(ok, "%s", err);
    free(ok);
    cr_assert_null(enc("{\"Timestamp\":1125899906843}", &kinesis, &n, err));
    cr_assert_not_null(strstr(err, "out of range"));
    struct gw_cbor_opts shallow = {.max_depth = 2};
    ok = enc("{\"a\":[1]}", &shallow, &n, err);
    cr_assert_not_null(ok, "%s", err);
    free(ok);
    cr_assert_null(enc("{\"a\":[[1]]}", &shallow, &n, err));
    cr_assert_not_null(strstr(err, "nesting deeper than 2"));
    struct gw_cbor_opts small = {.max_size = 8};
    ok = enc("{\"a\":\"1234\"}", &small, &n, err);
    cr_assert_not_null(ok, "%s", err);
    free(ok);
    cr_assert_eq(n, 8);
    cr_assert_null(enc("{\"a\":\"12345\"}", &small, &n, err));
    cr_assert_not_null(strstr(err, "exceeds 8 bytes"));
    cr_assert_eq(gw_cbor_encode(NULL, NULL, &(uint8_t *){NULL}, &n, err, sizeof err), -1);
}

/* ---- round trips -------------------------------------------------------- */

static void round_trip(const char *json, const struct gw_cbor_opts *o)
{
    json_t *j = json_loads(json, 0, NULL);
    cr_assert_not_null(j, "%s", json);
    uint8_t *b;
    size_t n;
    char err[256];
    cr_assert_eq(gw_cbor_encode(j, o, &b, &n, err, sizeof err), 0, "%s: %s", json, err);
    json_t *back = NULL;
    cr_assert_eq(gw_cbor_decode(b, n, o, &back, err, sizeof err), 0, "%s: %s", json, err);
    char *s = json_dumps(back, JSON_COMPACT);
    cr_assert(json_equal(j, back), "%s came back as %s", json, s);
    free(s);
    free(b);
    json_decref(j);
    json_decref(back);
}

Test(cbor, round_trips)
{
    const char *bodies[] = {
        "{\"StreamName\":\"s1\",\"Data\":\"aGVsbG8=\",\"PartitionKey\":\"pk\","
        "\"ExplicitHashKey\":\"340282366920938463463374607431768211455\"}",
        "{\"Records\":[{\"Data\":\"\",\"PartitionKey\":\"a\"},{\"Data\":\"/+/+AA==\",\"PartitionKey\":\"\xc3\xa9\"}],"
        "\"StreamARN\":\"arn:aws:kinesis:us-east-1:123456789012:stream/s1\"}",
        "{\"ShardIteratorType\":\"AT_TIMESTAMP\",\"Timestamp\":1700000001.123,\"ShardId\":\"shardId-000000000000\"}",
        "{\"StreamDescription\":{\"StreamName\":\"s\",\"StreamCreationTimestamp\":1700000000.0,"
        "\"Shards\":[{\"HashKeyRange\":{\"StartingHashKey\":\"0\",\"EndingHashKey\":\"1\"}}],"
        "\"HasMoreShards\":false,\"RetentionPeriodHours\":24,\"EncryptionType\":\"NONE\"}}",
        "{\"Consumer\":{\"ConsumerName\":\"c\",\"ConsumerCreationTimestamp\":1.5,\"ConsumerStatus\":\"ACTIVE\"}}",
        "{\"__type\":\"SerializationException\",\"message\":\"CBOR: truncated body at byte 3\"}",
        "{\"a\":null,\"b\":true,\"c\":[1.25,-3,[],{}],\"d\":-9223372036854775808,\"e\":9223372036854775807}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        round_trip(bodies[i], &kinesis);
        round_trip(bodies[i], NULL);
    }
    /* Every millisecond timestamp of a realistic range survives ms -> s -> ms. */
    for (int64_t ms = 1700000000000; ms < 1700000000000 + 5000; ms += 7) {
        char json[96];
        snprintf(json, sizeof json, "{\"Timestamp\":%.3f}", (double)ms / 1000.0);
        round_trip(json, &kinesis);
    }
}
