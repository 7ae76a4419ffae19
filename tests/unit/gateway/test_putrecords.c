/* test_putrecords.c - the two PutRecord(s) decoders (gateway/putrecords.c
 * and gateway/putrecords_fast.c).
 *
 * Accept cases: the fast path decodes the body and the general path, fed the
 * same bytes, gives an equal batch. Fall-back cases: the fast path answers 0,
 * and the general path then gives the verdict Kinesis gives (an error type,
 * or acceptance for valid-but-unusual bodies the fast path leaves to it). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "putrecords.h"
#include "request-internal.h"

#define PUT false
#define PUTS true
#define OK GW_ERR_NONE

static struct gw_req *mkreq(const char *body, size_t len)
{
    struct gw_req *r = gw_req_new(GW_PROTO_H2, false, 0, NULL, NULL, NULL);
    if (len)
        cr_assert_eq(gw_req_body_append(r, body, len, SIZE_MAX), 0);
    return r;
}

/* The general path's verdict on "body": GW_ERR_NONE and "*out" filled, or the
 * error type (message into "msg" if not NULL). */
static enum gw_errtype general(struct gw_req *r, bool batch, struct gw_put_batch *out,
                               json_t **root, char *msg)
{
    struct gw_error err;
    gw_error_clear(&err);
    *root = NULL;
    if (gw_body_decode(r, root, &err) == 0 && gw_put_parse_tree(r, *root, batch, out, &err) == 0)
        return GW_ERR_NONE;
    if (msg)
        snprintf(msg, 256, "%s", err.message);
    return err.type;
}

/* Fast accepts; the general path accepts with an equal batch. Returns the
 * fast batch in "*out"; the caller frees "*reqp". */
static void accept_n(const char *body, size_t len, bool batch, struct gw_put_batch *out,
                     struct gw_req **reqp)
{
    struct gw_req *r = mkreq(body, len);
    size_t blen;
    const uint8_t *b = gw_req_body(r, &blen);
    cr_assert_eq(gw_put_parse_fast(r, b, blen, batch, out), 1, "fast path fell back on: %.300s",
                 body);
    struct gw_put_batch slow;
    json_t *root;
    char msg[256] = "";
    enum gw_errtype t = general(r, batch, &slow, &root, msg);
    cr_assert_eq(t, OK, "general path rejected (%s): %.300s", msg, body);
    cr_assert(gw_put_batch_equal(out, &slow), "batches differ: %.300s", body);
    json_decref(root);
    *reqp = r;
}

static struct gw_req *accept(const char *body, bool batch, struct gw_put_batch *out)
{
    struct gw_req *r;
    accept_n(body, strlen(body), batch, out, &r);
    return r;
}

static void accept_both(const char *body)
{
    struct gw_put_batch b;
    gw_req_free(accept(body, PUT, &b));
    gw_req_free(accept(body, PUTS, &b));
}

/* Fast falls back; the general path's verdict is "want". */
static void fallback_n(const char *body, size_t len, bool batch, enum gw_errtype want,
                       const char *msg_part)
{
    struct gw_req *r = mkreq(body, len);
    size_t blen;
    const uint8_t *b = gw_req_body(r, &blen);
    struct gw_put_batch fast, slow;
    cr_expect_eq(gw_put_parse_fast(r, b, blen, batch, &fast), 0, "fast path accepted: %.300s",
                 body);
    json_t *root;
    char msg[256] = "";
    enum gw_errtype t = general(r, batch, &slow, &root, msg);
    cr_expect_eq(t, want, "general verdict %s (%s), want %s: %.300s", gw_error_name(t), msg,
                 gw_error_name(want), body);
    if (msg_part)
        cr_expect(strstr(msg, msg_part) != NULL, "message '%s' lacks '%s'", msg, msg_part);
    json_decref(root);
    gw_req_free(r);
}

static void fallback(const char *body, bool batch, enum gw_errtype want)
{
    fallback_n(body, strlen(body), batch, want, NULL);
}

static void fallback_both(const char *body, enum gw_errtype want)
{
    fallback(body, PUT, want);
    fallback(body, PUTS, want);
}

/* Wraps one member text into PutRecords (one record) and PutRecord bodies. */
static char *rec_body(bool batch, const char *rec_members)
{
    char *s;
    if (batch)
        cr_assert(asprintf(&s, "{\"StreamName\":\"s\",\"Records\":[{%s}]}", rec_members) > 0);
    else
        cr_assert(asprintf(&s, "{\"StreamName\":\"s\",%s}", rec_members) > 0);
    return s;
}

static void rec_accept(const char *members)
{
    for (int m = 0; m < 2; m++) {
        char *s = rec_body(m, members);
        struct gw_put_batch b;
        gw_req_free(accept(s, m, &b));
        free(s);
    }
}

static void rec_fallback(const char *members, enum gw_errtype want)
{
    for (int m = 0; m < 2; m++) {
        char *s = rec_body(m, members);
        fallback(s, m, want);
        free(s);
    }
}

/* ---- accepted --------------------------------------------------------------- */

Test(putfast, puts_basic)
{
    struct gw_put_batch b;
    struct gw_req *r = accept(
        "{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"aGVsbG8=\",\"PartitionKey\":\"pk\"}]}",
        PUTS, &b);
    cr_expect_str_eq(b.stream_name, "s");
    cr_expect_null(b.stream_arn);
    cr_expect_null(b.seq_for_ordering);
    cr_assert_eq(b.n, 1);
    cr_expect_eq(b.entries[0].data_len, 5);
    cr_expect_eq(memcmp(b.entries[0].data, "hello", 5), 0);
    cr_expect_str_eq(b.entries[0].pk, "pk");
    cr_expect_eq(b.entries[0].pk_len, 2);
    cr_expect_null(b.entries[0].ehk);
    gw_req_free(r);
}

Test(putfast, put_all_members)
{
    struct gw_put_batch b;
    struct gw_req *r = accept(
        "{\"StreamName\":\"my_stream.v-1\",\"Data\":\"AAECAwQFBgcICQ==\",\"PartitionKey\":\"pk\","
        "\"ExplicitHashKey\":\"340282366920938463463374607431768211455\","
        "\"SequenceNumberForOrdering\":\"49590338271490256608559692538361571095921575989136588898\"}",
        PUT, &b);
    cr_assert_eq(b.n, 1);
    cr_expect_str_eq(b.stream_name, "my_stream.v-1");
    cr_expect_eq(b.entries[0].data_len, 10);
    for (int i = 0; i < 10; i++)
        cr_expect_eq(b.entries[0].data[i], i);
    cr_expect_str_eq(b.entries[0].ehk, "340282366920938463463374607431768211455");
    cr_expect_str_eq(b.seq_for_ordering,
                     "49590338271490256608559692538361571095921575989136588898");
    gw_req_free(r);
}

Test(putfast, stream_arn_and_none)
{
    struct gw_put_batch b;
    struct gw_req *r = accept("{\"StreamARN\":\"arn:aws:kinesis:us-east-1:123456789012:stream/"
                              "orders\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"a\"}]}",
                              PUTS, &b);
    cr_expect_null(b.stream_name);
    cr_expect_str_eq(b.stream_arn, "arn:aws:kinesis:us-east-1:123456789012:stream/orders");
    gw_req_free(r);
    /* Neither name nor ARN: the decoders accept, the operation decides. */
    r = accept("{\"Data\":\"AA==\",\"PartitionKey\":\"a\"}", PUT, &b);
    cr_expect_null(b.stream_name);
    cr_expect_null(b.stream_arn);
    gw_req_free(r);
    accept_both("{\"StreamName\":\"s\",\"StreamARN\":\"arn:aws-cn:kinesis:cn-north-1:"
                "123456789012:stream/s\",\"Data\":\"AA==\",\"PartitionKey\":\"a\","
                "\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"a\"}]}");
}

Test(putfast, nulls_are_absent)
{
    struct gw_put_batch b;
    struct gw_req *r = accept("{\"StreamName\":null,\"StreamARN\":null,\"Data\":\"aGk=\","
                              "\"PartitionKey\":\"p\",\"ExplicitHashKey\":null,"
                              "\"SequenceNumberForOrdering\":null}",
                              PUT, &b);
    cr_expect_null(b.stream_name);
    cr_expect_null(b.entries[0].ehk);
    cr_expect_null(b.seq_for_ordering);
    gw_req_free(r);
    rec_accept("\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":null");
}

Test(putfast, whitespace_everywhere)
{
    accept_both(" \r\n\t{ \"StreamName\" : \"s\" ,\n \"Data\"\t:\"aGk=\" , \"PartitionKey\":\"p\","
                "\"Records\" : [ { \"Data\" : \"aGVsbG8=\" , \"PartitionKey\" : \"pk\" } ,\t"
                "{\"Data\":\"aGk=\",\"PartitionKey\":\"q\"}\r] }\n\r\t ");
    accept_both("{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"Records\":[{\"PartitionKey\":\"p\","
                "\"Data\":\"\"}]}");
}

Test(putfast, unknown_members_skipped)
{
    accept_both("{\"StreamName\":\"s\",\"X\":{\"a\":[1,-2,3.5,-0,0.25,true,false,null,"
                "\"s\\n\\t\\\"\\\\\\/\\b\\f\\r\",123456789012345678,-0.123456789],\"b\":{},"
                "\"\":\"\"},\"Records\":[{\"Data\":\"aGVsbG8=\",\"PartitionKey\":\"pk\","
                "\"Extra\":[[],[{}],{\"k\":{\"k\":{\"k\":[]}}}],\"SequenceNumberForOrdering\":"
                "\"x\"}],\"Y\":[],\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"Z\":\"caf\xc3\xa9\","
                "\"\xe6\x97\xa5\":1}");
    /* The same unknown key in different objects is no duplicate. */
    accept_both("{\"X\":{\"a\":1,\"b\":{\"a\":2}},\"a\":3,\"Data\":\"aGk=\",\"PartitionKey\":"
                "\"p\",\"Records\":[{\"a\":1,\"Data\":\"aGk=\",\"PartitionKey\":\"p\"},{\"a\":1,"
                "\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}");
    /* The other operation's members are unknown ones. */
    rec_accept("\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"Records\":5");
    accept_both("{\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"StreamARN\":1,"
                "\"StreamName\":[],\"Records\":{}}],\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}");
}

Test(putfast, unicode_partition_keys)
{
    rec_accept("\"Data\":\"aGk=\",\"PartitionKey\":\"cl\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac-"
               "\xf0\x9f\x98\x80-\xf4\x8f\xbf\xbf-\xee\x80\x80-\x7f\"");
    /* 256 characters of 2, 3 and 4 bytes are within the limit; 257 are not. */
    const char *chars[] = {"\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "a"};
    for (int c = 0; c < 4; c++) {
        for (int n = 256; n <= 257; n++) {
            char pk[1100] = "";
            for (int i = 0; i < n; i++)
                strcat(pk, chars[c]);
            char *members;
            cr_assert(asprintf(&members, "\"Data\":\"aGk=\",\"PartitionKey\":\"%s\"", pk) > 0);
            if (n == 256)
                rec_accept(members);
            else
                rec_fallback(members, GW_ERR_VALIDATION);
            free(members);
        }
    }
}

Test(putfast, base64_forms)
{
    const char *ok[] = {"", "AA==", "AAA=", "AAAA", "aGk=", "aGVsbG8h", "+/+/", "////////",
                        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char m[128];
        snprintf(m, sizeof m, "\"Data\":\"%s\",\"PartitionKey\":\"p\"", ok[i]);
        rec_accept(m);
    }
    struct gw_put_batch b;
    struct gw_req *r = accept("{\"Data\":\"\",\"PartitionKey\":\"p\"}", PUT, &b);
    cr_expect_eq(b.entries[0].data_len, 0);
    gw_req_free(r);
}

Test(putfast, explicit_hash_keys)
{
    const char *ok[] = {"0", "1", "9", "10", "123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char m[128];
        snprintf(m, sizeof m, "\"Data\":\"\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":\"%s\"",
                 ok[i]);
        rec_accept(m);
    }
}

Test(putfast, stream_name_limits)
{
    char name[140];
    memset(name, 'a', 128);
    name[128] = '\0';
    char *s;
    cr_assert(asprintf(&s, "{\"StreamName\":\"%s\",\"Data\":\"\",\"PartitionKey\":\"p\"}", name) >
              0);
    struct gw_put_batch b;
    gw_req_free(accept(s, PUT, &b));
    free(s);
    name[128] = 'a';
    name[129] = '\0';
    cr_assert(asprintf(&s, "{\"StreamName\":\"%s\",\"Data\":\"\",\"PartitionKey\":\"p\"}", name) >
              0);
    fallback(s, PUT, GW_ERR_VALIDATION);
    free(s);
}

/* Builds a PutRecords body of "n" records with "dlen" data bytes each and
 * partition key "pk". */
static char *big_body(size_t n, size_t dlen, const char *pk, size_t *len)
{
    uint8_t *d = malloc(dlen ? dlen : 1);
    for (size_t i = 0; i < dlen; i++)
        d[i] = (uint8_t)(i * 7 + 3);
    size_t blen;
    char *b64 = gw_base64_encode(d, dlen, &blen);
    free(d);
    size_t cap = n * (blen + strlen(pk) + 40) + 64, o = 0;
    char *s = malloc(cap);
    o += (size_t)sprintf(s, "{\"StreamName\":\"s\",\"Records\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(s + o, "%s{\"Data\":\"%s\",\"PartitionKey\":\"%s\"}", i ? "," : "",
                             b64, pk);
    o += (size_t)sprintf(s + o, "]}");
    free(b64);
    *len = o;
    return s;
}

Test(putfast, record_count_limits)
{
    size_t len;
    char *s = big_body(500, 100, "pk", &len);
    struct gw_put_batch b;
    struct gw_req *r;
    accept_n(s, len, PUTS, &b, &r);
    cr_expect_eq(b.n, 500);
    cr_expect_eq(b.entries[499].data_len, 100);
    gw_req_free(r);
    free(s);
    s = big_body(501, 1, "pk", &len);
    fallback_n(s, len, PUTS, GW_ERR_VALIDATION, "less than or equal to 500");
    free(s);
    fallback("{\"StreamName\":\"s\",\"Records\":[]}", PUTS, GW_ERR_VALIDATION);
}

Test(putfast, data_size_limits)
{
    size_t len;
    struct gw_put_batch b;
    struct gw_req *r;
    char *s = big_body(1, GW_PUT_MAX_DATA, "pk", &len);
    accept_n(s, len, PUTS, &b, &r);
    cr_expect_eq(b.entries[0].data_len, GW_PUT_MAX_DATA);
    gw_req_free(r);
    free(s);
    s = big_body(1, GW_PUT_MAX_DATA + 1, "pk", &len);
    fallback_n(s, len, PUTS, GW_ERR_VALIDATION, "less than or equal to 1048576");
    free(s);
}

Test(putfast, batch_size_limit)
{
    /* Decoding admits the model's largest batch: one 10 MiB record and its
     * longest key. */
    size_t len;
    struct gw_put_batch b;
    struct gw_req *r;
    char key[257];
    memset(key, 'k', 256);
    key[256] = '\0';
    char *s = big_body(1, GW_PUT_MAX_DATA, key, &len);
    accept_n(s, len, PUTS, &b, &r);
    gw_req_free(r);
    free(s);
    s = big_body(3, GW_PUT_MAX_DATA * 2 / 5, "k", &len); /* 12 MiB */
    fallback_n(s, len, PUTS, GW_ERR_INVALID_ARGUMENT, "10 MB");
    free(s);
}

/* A stream's own limits, once it is known: records of its MaxRecordSizeInKiB
 * (ValidationException, as the model's limit reads), and 5 MiB of data and
 * keys per request unless one record may be larger. */
Test(putfast, stream_size_limits)
{
    struct gw_put_entry e[5];
    struct gw_put_batch b = {.entries = e, .n = 5};
    for (int i = 0; i < 5; i++)
        e[i] = (struct gw_put_entry){.data_len = (1u << 20) - 1, .pk = "k", .pk_len = 1};
    struct gw_error err;
    gw_error_clear(&err);
    cr_assert_eq(gw_put_check_sizes(&b, true, 1u << 20, &err), 0, "exactly 5 MiB: %s", err.message);
    e[4].pk = "kk";
    e[4].pk_len = 2;
    cr_assert_neq(gw_put_check_sizes(&b, true, 1u << 20, &err), 0);
    cr_assert_eq(err.type, GW_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "5 MB") != NULL, "%s", err.message);
    gw_error_clear(&err);
    cr_assert_eq(gw_put_check_sizes(&b, true, 5u << 20, &err), 0, "5 MiB records: 5 MiB + 1 KiB");
    b.n = 1;
    e[0].data_len = (1u << 20) + 1;
    cr_assert_neq(gw_put_check_sizes(&b, true, 1u << 20, &err), 0);
    cr_assert_eq(err.type, GW_ERR_VALIDATION);
    cr_assert(strstr(err.message, "records.1.member.data") &&
                  strstr(err.message, "less than or equal to 1048576"),
              "%s", err.message);
    gw_error_clear(&err);
    cr_assert_eq(gw_put_check_sizes(&b, false, 2u << 20, &err), 0);
}

/* ---- malformed JSON: SerializationException -------------------------------------- */

Test(putfast, malformed_json)
{
    const char *bad[] = {
        "",
        " ",
        "null",
        "[]",
        "\"s\"",
        "{",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"} x",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}{}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",}",
        "{\"Data\":\"aGk=\" \"PartitionKey\":\"p\"}",
        "{\"Data\" \"aGk=\",\"PartitionKey\":\"p\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":'p'}",
        "{Data:\"aGk=\",\"PartitionKey\":\"p\"}",
        "\xef\xbb\xbf{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":01}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":1.}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":.5}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":-}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":+1}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":1.5e}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":NaN}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":tru}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":true1}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":nul}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":[1,]}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":[1 2]}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":{\"a\"}}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":{1:2}}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":9223372036854775808}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":1e400}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"\\x\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"\\U0041\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"\\u00\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"\\u0000\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"\\u0000\":1}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"\\ud800\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"\\udc00\\ud800\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"a\tb\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"a\nb\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"\x1f\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}\f",
        "{\f\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"Records\":[{\"Data\":\"aGk=\","
        "\"PartitionKey\":\"p\"},]}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"Records\":[{\"Data\":\"aGk=\","
        "\"PartitionKey\":\"p\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        fallback_both(bad[i], GW_ERR_SERIALIZATION);
    /* A NUL byte after the root. */
    const char nul[] = "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}\0";
    fallback_n(nul, sizeof nul - 1, PUT, GW_ERR_SERIALIZATION, NULL);
    /* Nesting past jansson's limit. */
    char deep[4200] = "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":";
    size_t o = strlen(deep);
    memset(deep + o, '[', 2049);
    memset(deep + o + 2049, ']', 2049);
    strcpy(deep + o + 4098, "}");
    fallback(deep, PUT, GW_ERR_SERIALIZATION);
}

Test(putfast, invalid_utf8)
{
    const char *bad[] = {
        "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xc3", "\xc3(", "\xe0\x80\x80", "\xe0\x9f\xbf",
        "\xed\xa0\x80", "\xed\xbf\xbf", "\xe6\x97", "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf",
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xfe", "\xf0\x9f\x98",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char m[128];
        /* In a partition key, an unknown value, an unknown key, a stream name. */
        snprintf(m, sizeof m, "\"Data\":\"aGk=\",\"PartitionKey\":\"p%s\"", bad[i]);
        rec_fallback(m, GW_ERR_SERIALIZATION);
        snprintf(m, sizeof m, "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"%s\"", bad[i]);
        rec_fallback(m, GW_ERR_SERIALIZATION);
        snprintf(m, sizeof m, "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"%s\":1", bad[i]);
        rec_fallback(m, GW_ERR_SERIALIZATION);
        char *s;
        cr_assert(asprintf(&s, "{\"StreamName\":\"%s\",\"Data\":\"\",\"PartitionKey\":\"p\"}",
                           bad[i]) > 0);
        fallback(s, PUT, GW_ERR_SERIALIZATION);
        free(s);
    }
}

Test(putfast, duplicate_keys)
{
    const char *bad[] = {
        "{\"StreamName\":\"s\",\"StreamName\":\"s\",\"Data\":\"aGk=\",\"PartitionKey\":\"p\","
        "\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
        "{\"StreamName\":null,\"StreamName\":\"s\",\"Data\":\"aGk=\",\"PartitionKey\":\"p\","
        "\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
        "{\"x\":1,\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":2,"
        "\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"y\":{\"a\":1,\"b\":[{\"c\":1,\"c\":1}]},"
        "\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"Records\":[{\"Data\":\"aGk=\","
        "\"PartitionKey\":\"p\",\"PartitionKey\":\"q\"}],\"Data\":\"aGk=\"}",
        "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":1,\"\\u0078\":1,"
        "\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        fallback_both(bad[i], GW_ERR_SERIALIZATION);
    /* Duplicates the other operation reads. */
    fallback("{\"Records\":[],\"Records\":[],\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}", PUT,
             GW_ERR_SERIALIZATION);
    fallback("{\"SequenceNumberForOrdering\":\"1\",\"SequenceNumberForOrdering\":\"1\","
             "\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
             PUTS, GW_ERR_SERIALIZATION);
}

/* ---- wrong types: SerializationException ------------------------------------------ */

Test(putfast, wrong_types)
{
    const char *bad[] = {
        "\"Data\":5,\"PartitionKey\":\"p\"",
        "\"Data\":true,\"PartitionKey\":\"p\"",
        "\"Data\":[],\"PartitionKey\":\"p\"",
        "\"Data\":{},\"PartitionKey\":\"p\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":1",
        "\"Data\":\"aGk=\",\"PartitionKey\":false",
        "\"Data\":\"aGk=\",\"PartitionKey\":[\"p\"]",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        rec_fallback(bad[i], GW_ERR_SERIALIZATION);
    fallback_both("{\"StreamARN\":1,\"Data\":\"aGk=\",\"PartitionKey\":\"p\","
                  "\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
                  GW_ERR_SERIALIZATION);
    fallback_both("{\"StreamName\":1,\"Data\":\"aGk=\",\"PartitionKey\":\"p\","
                  "\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
                  GW_ERR_SERIALIZATION);
    fallback("{\"StreamName\":\"s\",\"Records\":{}}", PUTS, GW_ERR_SERIALIZATION);
    fallback("{\"StreamName\":\"s\",\"Records\":\"x\"}", PUTS, GW_ERR_SERIALIZATION);
    fallback("{\"StreamName\":\"s\",\"Records\":[null]}", PUTS, GW_ERR_SERIALIZATION);
    fallback("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"},1]}",
             PUTS, GW_ERR_SERIALIZATION);
    fallback("{\"StreamName\":\"s\",\"Records\":[[]]}", PUTS, GW_ERR_SERIALIZATION);
    fallback("{\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"SequenceNumberForOrdering\":1}", PUT,
             GW_ERR_SERIALIZATION);
}

Test(putfast, bad_base64)
{
    const char *bad[] = {"a", "aG", "aGk", "aGVsbG8", "aGk==", "aGl=", "aGVsbG9=", "aA=A", "=AAA",
                         "AA==AAAA", "aG k=", "aGk-", "aGk_", "aGk=\\n", "aGk\xc3\xa9",
                         "\\/\\/\\/\\/", "aGk\\u003d"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char m[128];
        snprintf(m, sizeof m, "\"Data\":\"%s\",\"PartitionKey\":\"p\"", bad[i]);
        /* The last two are valid once unescaped: left to the general path. */
        rec_fallback(m, i + 2 >= sizeof bad / sizeof *bad ? OK : GW_ERR_SERIALIZATION);
    }
}

/* ---- model constraints: ValidationException ----------------------------------------- */

Test(putfast, constraints)
{
    const char *bad[] = {
        "\"PartitionKey\":\"p\"",
        "\"Data\":null,\"PartitionKey\":\"p\"",
        "\"Data\":\"aGk=\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":null",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":\"\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":\"01\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":\"-1\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":\"1a\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":\" 1\"",
        ("\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":"
         "\"1234567890123456789012345678901234567890\""), /* one element, split */
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":\"\xd9\xa1\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        rec_fallback(bad[i], GW_ERR_VALIDATION);
    const char *names[] = {"\"\"", "\"a b\"", "\"a/b\"", "\"caf\xc3\xa9\""};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *s;
        cr_assert(asprintf(&s, "{\"StreamName\":%s,\"Data\":\"aGk=\",\"PartitionKey\":\"p\","
                               "\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
                           names[i]) > 0);
        fallback_both(s, GW_ERR_VALIDATION);
        free(s);
    }
    const char *arns[] = {"\"\"", "\"arn:aws:kinesis:us-east-1:123:stream/s\"",
                          "\"arn:aws:kinesis:us-east-1:123456789012:stream/\"",
                          "\"arn:aws:s3:us-east-1:123456789012:stream/s\""};
    for (size_t i = 0; i < sizeof arns / sizeof *arns; i++) {
        char *s;
        cr_assert(asprintf(&s, "{\"StreamARN\":%s,\"Data\":\"aGk=\",\"PartitionKey\":\"p\","
                               "\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
                           arns[i]) > 0);
        fallback_both(s, GW_ERR_VALIDATION);
        free(s);
    }
    const char *seqs[] = {"\"\"", "\"01\"", "\"x\"", "\"-5\""};
    for (size_t i = 0; i < sizeof seqs / sizeof *seqs; i++) {
        char *s;
        cr_assert(asprintf(&s, "{\"Data\":\"aGk=\",\"PartitionKey\":\"p\","
                               "\"SequenceNumberForOrdering\":%s}",
                           seqs[i]) > 0);
        fallback(s, PUT, GW_ERR_VALIDATION);
        free(s);
    }
    /* Each operation's required members. */
    fallback("{\"StreamName\":\"s\",\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}", PUTS,
             GW_ERR_VALIDATION);
    fallback("{\"StreamName\":\"s\",\"Records\":null}", PUTS, GW_ERR_VALIDATION);
    fallback("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"aGk=\",\"PartitionKey\":\"p\"}]}",
             PUT, GW_ERR_VALIDATION);
    fallback("{\"StreamName\":\"s\",\"Records\":[{}]}", PUTS, GW_ERR_VALIDATION);
    fallback("{}", PUT, GW_ERR_VALIDATION);
    fallback("{}", PUTS, GW_ERR_VALIDATION);
}

/* ---- valid but unusual: the fast path leaves them to the general path --------------- */

Test(putfast, unusual_but_valid)
{
    const char *ok[] = {
        /* escapes in members we read */
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\\\"q\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"\\u00e9\\ud83d\\ude00\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"a\\/b\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"ExplicitHashKey\":\"\\u0031\"",
        /* escapes in keys */
        "\"Data\":\"aGk=\",\"\\u0050artitionKey\":\"p\"",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"a\\nb\":1",
        /* \u escapes in unknown members */
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":\"\\u0041\\ud83d\\ude00\"",
        /* numbers outside the narrow set */
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":1e5",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":-2.5E-3",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":1234567890123456789",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":-9223372036854775808",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":1e-400",
        /* deep nesting and many unknown keys */
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "\"Data\":\"aGk=\",\"PartitionKey\":\"p\",\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,"
        "\"g\":1,\"h\":1,\"i\":1,\"j\":1,\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        rec_fallback(ok[i], OK);
}

/* ---- the batch itself --------------------------------------------------------------- */

Test(putfast, batch_equal)
{
    struct gw_put_entry e1 = {(const uint8_t *)"ab", 2, "k", 1, NULL};
    struct gw_put_entry e2 = {(const uint8_t *)"ab", 2, "k", 1, "5"};
    struct gw_put_batch a = {"s", NULL, &e1, 1, NULL}, b = a;
    cr_expect(gw_put_batch_equal(&a, &b));
    b.entries = &e2;
    cr_expect_not(gw_put_batch_equal(&a, &b));
    b.entries = &e1;
    b.stream_arn = "x";
    cr_expect_not(gw_put_batch_equal(&a, &b));
    b.stream_arn = NULL;
    b.seq_for_ordering = "1";
    cr_expect_not(gw_put_batch_equal(&a, &b));
}
