/* test_json.c - the Kinesis door's member validators (gateway/json.c) and
 * the validating helpers of ops_util.c, each with valid, boundary and
 * invalid input, asserting the error type and the exact message.
 *
 * Two kinds of error (json.h): a wrong JSON type or malformed input is a
 * SerializationException at once (the getter returns -1); a broken model
 * constraint is collected and reported as one ValidationException by
 * gw_valid_done(). test_putrecords.c covers the PutRecord(s) decoders
 * (error types per member); this file covers the getters themselves and
 * gw_body_decode(). Answers (gw_body_reply/gw_body_error) go through the
 * reply writer (reply.c) and are left to its own tests. */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ops.h"
#include "request-internal.h"

static struct gw_error err;
static struct gw_valid v;

static void setup(void)
{
    gw_error_clear(&err);
    gw_valid_init(&v, &err);
}

TestSuite(valid, .init = setup);
TestSuite(match, .init = setup);
TestSuite(getters, .init = setup);
TestSuite(body, .init = setup);
TestSuite(ops_util, .init = setup);

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    cr_assert_not_null(j, "%s: %s", text, je.text);
    return j;
}

/* The ValidationException gw_valid_done() reports. */
static void expect_validation(const char *message)
{
    cr_expect_eq(gw_valid_done(&v), -1);
    cr_expect_eq(err.type, GW_ERR_VALIDATION, "type %s", gw_error_name(err.type));
    cr_expect_str_eq(err.message, message);
}

static void expect_valid(void)
{
    cr_expect_eq(v.count, 0, "violations: %s", v.msg);
    cr_expect_eq(gw_valid_done(&v), 0);
    cr_expect_eq(err.type, GW_ERR_NONE);
}

static void expect_serialization(int rc, const char *message)
{
    cr_expect_eq(rc, -1);
    cr_expect_eq(err.type, GW_ERR_SERIALIZATION, "type %s", gw_error_name(err.type));
    cr_expect_str_eq(err.message, message);
}

/* "n" copies of "unit". */
static char *rep(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

/* ---- collecting violations ------------------------------------------------------- */

Test(valid, none_is_success)
{
    cr_expect_eq(gw_valid_done(&v), 0);
    cr_expect_eq(err.type, GW_ERR_NONE);
}

Test(valid, one_violation_singular)
{
    gw_valid_add(&v, "abc", "streamName", "have length less than or equal to %d", 2);
    expect_validation("1 validation error detected: Value 'abc' at 'streamName' failed to "
                      "satisfy constraint: Member must have length less than or equal to 2");
}

Test(valid, null_value_and_plural)
{
    gw_valid_add(&v, NULL, "shardId", "not be null");
    gw_valid_add(&v, "0", "limit", "have value greater than or equal to 1");
    expect_validation("2 validation errors detected: Value null at 'shardId' failed to satisfy "
                      "constraint: Member must not be null; Value '0' at 'limit' failed to "
                      "satisfy constraint: Member must have value greater than or equal to 1");
}

Test(valid, at_most_ten_listed_all_counted)
{
    for (int i = 1; i <= 12; i++) {
        char val[8];
        snprintf(val, sizeof val, "%d", i);
        gw_valid_add(&v, val, "m", "x");
    }
    cr_expect_eq(gw_valid_done(&v), -1);
    cr_expect_eq(strncmp(err.message, "12 validation errors detected: Value '1' at 'm'", 47), 0,
                 "%s", err.message);
    cr_expect_not_null(strstr(err.message, "Value '10' at 'm'"));
    cr_expect_null(strstr(err.message, "Value '11'"), "only the first ten are listed");
    const char *tail = "; Value '10' at 'm' failed to satisfy constraint: Member must x";
    cr_expect_str_eq(err.message + strlen(err.message) - strlen(tail), tail);
}

Test(valid, first_error_is_kept)
{
    gw_error_set(&err, GW_ERR_SERIALIZATION, "first");
    gw_valid_add(&v, "x", "m", "y");
    cr_expect_eq(gw_valid_done(&v), -1);
    cr_expect_eq(err.type, GW_ERR_SERIALIZATION);
    cr_expect_str_eq(err.message, "first");
}

/* ---- the model's string patterns ------------------------------------------------------- */

Test(match, names)
{
    /* [a-zA-Z0-9_.-]+, ASCII only */
    const char *ok[] = {"a", "Z", "0", "_", ".", "-", "my-stream_v1.2", "..", "ABCxyz789"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        cr_expect(gw_match_name(ok[i]), "%s", ok[i]);
    const char *bad[] = {"", " ", "a b", "a/b", "a:b", "a+b", "caf\xc3\xa9", "a\tb", "tab\n",
                         "\xd9\xa1", "a*", "(a)"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_not(gw_match_name(bad[i]), "%s", bad[i]);
}

Test(match, hash_keys)
{
    /* 0|([1-9]\d{0,38}) */
    char *max = rep("9", 39), *over = rep("9", 40);
    const char *ok[] = {"0", "1", "9", "10", "340282366920938463463374607431768211455", max};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        cr_expect(gw_match_hashkey(ok[i]), "%s", ok[i]);
    const char *bad[] = {"", "00", "01", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x1", "a", over};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_not(gw_match_hashkey(bad[i]), "%s", bad[i]);
    free(max);
    free(over);
}

Test(match, sequence_numbers)
{
    /* 0|([1-9]\d{0,128}) */
    char *max = rep("1", 129), *over = rep("1", 130);
    cr_expect(gw_match_seqnum("0"));
    cr_expect(gw_match_seqnum("49590338271490256608559692538361571095921575989136588898"));
    cr_expect(gw_match_seqnum(max));
    cr_expect_not(gw_match_seqnum(over));
    cr_expect_not(gw_match_seqnum(""));
    cr_expect_not(gw_match_seqnum("007"));
    cr_expect_not(gw_match_seqnum("-5"));
    cr_expect_not(gw_match_seqnum("12a"));
    free(max);
    free(over);
}

Test(match, stream_arns)
{
    /* ^arn:aws.*:kinesis:.*:[0-9]{12}:stream/.+$ */
    const char *ok[] = {
        "arn:aws:kinesis:us-east-1:123456789012:stream/s",
        "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/orders.v2",
        "arn:aws-us-gov:kinesis:us-gov-west-1:000000000000:stream/a",
        "arn:aws:kinesis::123456789012:stream/no-region",
        "arn:aws:kinesis:us-east-1:123456789012:stream/a/b",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        cr_expect(gw_match_stream_arn(ok[i]), "%s", ok[i]);
    const char *bad[] = {
        "",
        "arn:aws:kinesis:us-east-1:12345678901:stream/s",   /* 11 digits */
        "arn:aws:kinesis:us-east-1:1234567890123:stream/s", /* 13 digits */
        "arn:aws:kinesis:us-east-1:12345678901a:stream/s",
        "arn:aws:kinesis:us-east-1:123456789012:stream/",
        "arn:aws:kinesis:us-east-1:123456789012:streams/s",
        "arn:aws:s3:us-east-1:123456789012:stream/s",
        "arn:azure:kinesis:us-east-1:123456789012:stream/s",
        " arn:aws:kinesis:us-east-1:123456789012:stream/s",
        "s",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_not(gw_match_stream_arn(bad[i]), "%s", bad[i]);
}

Test(match, consumer_arns)
{
    const char *ok[] = {
        "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1700000000",
        "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/a.b-c_d/consumer/app-1:1",
        /* The model's pattern has no end anchor (as the service's): what
         * follows the creation timestamp is not checked. */
        "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1700000000/extra",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        cr_expect(gw_match_consumer_arn(ok[i]), "%s", ok[i]);
    const char *bad[] = {
        "",
        "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c",   /* no :timestamp */
        "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/:1",  /* no name */
        "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c d:1",
        "arn:aws:kinesis:us-east-1:123456789012:stream//consumer/c:1",
        "arn:aws:kinesis:us-east-1:12345678901:stream/s/consumer/c:1",
        "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumers/c:1",
        "arn:aws:kinesis:us-east-1:123456789012:stream/s:1",
        "x arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_not(gw_match_consumer_arn(bad[i]), "%s", bad[i]);
}

/* ---- gw_v_str -------------------------------------------------------------------------- */

#define NAME_PATTERN "[a-zA-Z0-9_.-]+"

static int stream_name(json_t *o, unsigned flags, const char **out)
{
    return gw_v_str(&v, o, "StreamName", "streamName", flags, 1, 128, NAME_PATTERN, gw_match_name,
                    out);
}

Test(getters, str_present_absent_null)
{
    json_t *o = parse("{\"StreamName\":\"orders\",\"Other\":1}");
    const char *s = "sentinel";
    cr_expect_eq(stream_name(o, GW_V_REQUIRED, &s), 0);
    cr_expect_str_eq(s, "orders");
    json_decref(o);
    /* Absent and optional: nothing; absent or null and required: not null. */
    o = parse("{\"Other\":\"x\"}");
    cr_expect_eq(stream_name(o, 0, &s), 0);
    cr_expect_null(s);
    expect_valid();
    json_decref(o);
    o = parse("{\"StreamName\":null}");
    cr_expect_eq(stream_name(o, 0, &s), 0);
    cr_expect_null(s);
    expect_valid();
    cr_expect_eq(stream_name(o, GW_V_REQUIRED, &s), 0);
    cr_expect_null(s);
    expect_validation("1 validation error detected: Value null at 'streamName' failed to "
                      "satisfy constraint: Member must not be null");
    json_decref(o);
}

Test(getters, str_length_bounds_and_pattern)
{
    char *max = rep("n", 128), *over = rep("n", 129);
    char text[512];
    snprintf(text, sizeof text, "{\"A\":\"%s\",\"B\":\"%s\",\"C\":\"a b\",\"D\":\"\"}", max, over);
    json_t *o = parse(text);
    const char *s;
    cr_expect_eq(gw_v_str(&v, o, "A", "a", 0, 1, 128, NAME_PATTERN, gw_match_name, &s), 0);
    cr_expect_str_eq(s, max);
    expect_valid();
    cr_expect_eq(gw_v_str(&v, o, "B", "b", 0, 1, 128, NAME_PATTERN, gw_match_name, &s), 0);
    cr_expect_null(s, "an invalid value is not given out");
    cr_expect_eq(gw_v_str(&v, o, "C", "c", 0, 1, 128, NAME_PATTERN, gw_match_name, &s), 0);
    cr_expect_null(s);
    /* Empty breaks two constraints: both are reported. */
    cr_expect_eq(gw_v_str(&v, o, "D", "d", 0, 1, 128, NAME_PATTERN, gw_match_name, &s), 0);
    char want[1024];
    snprintf(want, sizeof want,
             "4 validation errors detected: Value '%s' at 'b' failed to satisfy constraint: "
             "Member must have length less than or equal to 128; Value 'a b' at 'c' failed to "
             "satisfy constraint: Member must satisfy regular expression pattern: " NAME_PATTERN
             "; Value '' at 'd' failed to satisfy constraint: Member must have length greater "
             "than or equal to 1; Value '' at 'd' failed to satisfy constraint: Member must "
             "satisfy regular expression pattern: " NAME_PATTERN,
             over);
    expect_validation(want);
    json_decref(o);
    free(max);
    free(over);
}

Test(getters, str_length_counts_characters_not_bytes)
{
    /* ExclusiveStartTagKey: 1..128, no pattern. 128 characters of 2, 3 and
     * 4 bytes pass; 129 do not. */
    const char *units[] = {"\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80"};
    for (size_t u = 0; u < 3; u++) {
        for (size_t n = 128; n <= 129; n++) {
            setup();
            char *val = rep(units[u], n);
            json_t *o = json_pack("{s:s}", "ExclusiveStartTagKey", val);
            const char *s;
            cr_assert_eq(gw_v_str(&v, o, "ExclusiveStartTagKey", "exclusiveStartTagKey", 0, 1, 128,
                                  NULL, NULL, &s),
                         0);
            if (n == 128) {
                cr_expect_str_eq(s, val);
                expect_valid();
            } else {
                cr_expect_null(s);
                cr_expect_eq(v.count, 1, "unit %zu", u);
                cr_expect_not_null(strstr(v.msg, "Member must have length less than or equal to 128"));
            }
            json_decref(o);
            free(val);
        }
    }
}

Test(getters, str_embedded_nul_breaks_the_pattern)
{
    /* Only a tree built from CBOR with GW_CBOR_ALLOW_NUL (or by hand) can
     * hold one; the pattern check sees the whole length. */
    json_t *o = json_object();
    json_object_set_new(o, "StreamName", json_stringn("ab\0c", 4));
    const char *s;
    cr_expect_eq(stream_name(o, 0, &s), 0);
    cr_expect_null(s);
    expect_validation("1 validation error detected: Value 'ab' at 'streamName' failed to "
                      "satisfy constraint: Member must satisfy regular expression pattern: "
                      NAME_PATTERN);
    json_decref(o);
}

Test(getters, str_wrong_types)
{
    static const struct {
        const char *json, *message;
    } cases[] = {
        {"{\"StreamName\":1}", "StreamName must be a string, not an integer"},
        {"{\"StreamName\":1.5}", "StreamName must be a string, not a number"},
        {"{\"StreamName\":true}", "StreamName must be a string, not a boolean"},
        {"{\"StreamName\":false}", "StreamName must be a string, not a boolean"},
        {"{\"StreamName\":[\"s\"]}", "StreamName must be a string, not an array"},
        {"{\"StreamName\":{}}", "StreamName must be a string, not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        setup();
        json_t *o = parse(cases[i].json);
        const char *s = "sentinel";
        expect_serialization(stream_name(o, GW_V_REQUIRED, &s), cases[i].message);
        cr_expect_null(s);
        json_decref(o);
    }
}

/* ---- gw_v_int ------------------------------------------------------------------------------ */

static int limit(json_t *o, int64_t *out, bool *present)
{
    return gw_v_int(&v, o, "Limit", "limit", 0, 1, 10000, out, present);
}

Test(getters, int_bounds)
{
    static const struct {
        const char *json;
        int64_t want;
    } ok[] = {
        {"{\"Limit\":1}", 1},
        {"{\"Limit\":10000}", 10000},
        {"{\"Limit\":500}", 500},
        {"{\"Limit\":5.9}", 5},     /* a fraction is truncated */
        {"{\"Limit\":1e3}", 1000},  /* jansson reads an exponent as a real */
        {"{\"Limit\":10000.99}", 10000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        setup();
        json_t *o = parse(ok[i].json);
        int64_t x = -7;
        bool present = false;
        cr_expect_eq(limit(o, &x, &present), 0);
        cr_expect_eq(x, ok[i].want, "%s", ok[i].json);
        cr_expect(present);
        expect_valid();
        json_decref(o);
    }
    static const struct {
        const char *json, *message;
    } bad[] = {
        {"{\"Limit\":0}", "Value '0' at 'limit' failed to satisfy constraint: Member must have "
                          "value greater than or equal to 1"},
        {"{\"Limit\":-3}", "Value '-3' at 'limit' failed to satisfy constraint: Member must have "
                           "value greater than or equal to 1"},
        {"{\"Limit\":0.99}", "Value '0' at 'limit' failed to satisfy constraint: Member must "
                             "have value greater than or equal to 1"},
        {"{\"Limit\":10001}", "Value '10001' at 'limit' failed to satisfy constraint: Member "
                              "must have value less than or equal to 10000"},
        {"{\"Limit\":9223372036854775807}",
         "Value '9223372036854775807' at 'limit' failed to satisfy constraint: Member must have "
         "value less than or equal to 10000"},
        {"{\"Limit\":-9223372036854775808}",
         "Value '-9223372036854775808' at 'limit' failed to satisfy constraint: Member must "
         "have value greater than or equal to 1"},
        {"{\"Limit\":9.1e18}", "Value '9100000000000000000' at 'limit' failed to satisfy "
                               "constraint: Member must have value less than or equal to 10000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setup();
        json_t *o = parse(bad[i].json);
        int64_t x = -7;
        bool present = true;
        cr_expect_eq(limit(o, &x, &present), 0);
        cr_expect_eq(x, -7, "not written when out of range");
        cr_expect_not(present);
        char want[512];
        snprintf(want, sizeof want, "1 validation error detected: %s", bad[i].message);
        expect_validation(want);
        json_decref(o);
    }
}

Test(getters, int_absent_required_and_types)
{
    json_t *o = parse("{}");
    int64_t x = -7;
    bool present = true;
    cr_expect_eq(limit(o, &x, &present), 0);
    cr_expect_not(present);
    cr_expect_eq(x, -7);
    expect_valid();
    cr_expect_eq(gw_v_int(&v, o, "RetentionPeriodHours", "retentionPeriodHours", GW_V_REQUIRED,
                          24, 8760, &x, NULL),
                 0);
    expect_validation("1 validation error detected: Value null at 'retentionPeriodHours' failed "
                      "to satisfy constraint: Member must not be null");
    json_decref(o);
    static const struct {
        const char *json, *message;
    } bad[] = {
        {"{\"Limit\":\"5\"}", "Limit must be an integer, not a string"},
        {"{\"Limit\":true}", "Limit must be an integer, not a boolean"},
        {"{\"Limit\":[5]}", "Limit must be an integer, not an array"},
        {"{\"Limit\":{}}", "Limit must be an integer, not an object"},
        /* Reals that no int64_t holds are a type error, not a range one. */
        {"{\"Limit\":1e19}", "Limit must be an integer, not a number"},
        {"{\"Limit\":-1e19}", "Limit must be an integer, not a number"},
        {"{\"Limit\":9.3e18}", "Limit must be an integer, not a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setup();
        o = parse(bad[i].json);
        expect_serialization(limit(o, &x, &present), bad[i].message);
        json_decref(o);
    }
}

/* ---- gw_v_bool, gw_v_time, gw_v_enum ---------------------------------------------------------- */

Test(getters, bool_values)
{
    json_t *o = parse("{\"T\":true,\"F\":false,\"N\":null,\"S\":\"true\",\"I\":1}");
    bool b = false, present = false;
    cr_expect_eq(gw_v_bool(&v, o, "T", "t", &b, &present), 0);
    cr_expect(b && present);
    cr_expect_eq(gw_v_bool(&v, o, "F", "f", &b, &present), 0);
    cr_expect(!b && present);
    b = true;
    cr_expect_eq(gw_v_bool(&v, o, "N", "n", &b, &present), 0);
    cr_expect(b && !present, "null is absent; the output is left alone");
    cr_expect_eq(gw_v_bool(&v, o, "Missing", "m", &b, &present), 0);
    cr_expect_not(present);
    expect_valid();
    expect_serialization(gw_v_bool(&v, o, "S", "s", &b, &present), "S must be a boolean, not a string");
    setup();
    expect_serialization(gw_v_bool(&v, o, "I", "i", &b, &present), "I must be a boolean, not an integer");
    json_decref(o);
}

static int timestamp(const char *json, int64_t *ms)
{
    json_t *o = parse(json);
    bool present = false;
    *ms = -7;
    int rc = gw_v_time(&v, o, "Timestamp", "timestamp", 0, ms, &present);
    cr_expect_eq(present, rc == 0 && json_object_get(o, "Timestamp") &&
                              !json_is_null(json_object_get(o, "Timestamp")));
    json_decref(o);
    return rc;
}

Test(getters, time_forms)
{
    static const struct {
        const char *json;
        int64_t ms;
    } ok[] = {
        {"{\"Timestamp\":1700000000}", 1700000000000},
        {"{\"Timestamp\":1700000000.123}", 1700000000123},
        {"{\"Timestamp\":0}", 0},
        {"{\"Timestamp\":-1.5}", -1500},
        {"{\"Timestamp\":1e14}", 100000000000000000},
        {"{\"Timestamp\":-1e14}", -100000000000000000},
        {"{\"Timestamp\":\"2023-11-14T22:13:20Z\"}", 1700000000000},
        {"{\"Timestamp\":\"2023-11-14T22:13:20.5Z\"}", 1700000000500},
        {"{\"Timestamp\":\"2023-11-14T22:13:20.123456Z\"}", 1700000000123},
        {"{\"Timestamp\":\"2023-11-14T22:13:20.12+00:00\"}", 1700000000120},
        {"{\"Timestamp\":\"2023-11-14T22:13:20\"}", 1700000000000},
        {"{\"Timestamp\":\"1970-01-01T00:00:00Z\"}", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        setup();
        int64_t ms;
        cr_expect_eq(timestamp(ok[i].json, &ms), 0, "%s: %s", ok[i].json, err.message);
        cr_expect_eq(ms, ok[i].ms, "%s: %lld", ok[i].json, (long long)ms);
    }
    int64_t ms;
    setup();
    cr_expect_eq(timestamp("{\"Timestamp\":null}", &ms), 0);
    cr_expect_eq(ms, -7);
    expect_valid();
}

Test(getters, time_refused)
{
    static const struct {
        const char *json, *message;
    } bad[] = {
        {"{\"Timestamp\":1.00000001e14}", "Timestamp is not a valid timestamp"},
        {"{\"Timestamp\":-2e14}", "Timestamp is not a valid timestamp"},
        {"{\"Timestamp\":\"yesterday\"}", "Timestamp is not a valid timestamp: 'yesterday'"},
        {"{\"Timestamp\":\"2023-11-14T22:13:20+01:00\"}",
         "Timestamp is not a valid timestamp: '2023-11-14T22:13:20+01:00'"},
        {"{\"Timestamp\":\"2023-11-14T22:13:20Zjunk\"}",
         "Timestamp is not a valid timestamp: '2023-11-14T22:13:20Zjunk'"},
        {"{\"Timestamp\":\"2023-11-14\"}", "Timestamp is not a valid timestamp: '2023-11-14'"},
        {"{\"Timestamp\":\"1700000000\"}", "Timestamp is not a valid timestamp: '1700000000'"},
        {"{\"Timestamp\":true}", "Timestamp must be a timestamp, not a boolean"},
        {"{\"Timestamp\":[]}", "Timestamp must be a timestamp, not an array"},
        {"{\"Timestamp\":{}}", "Timestamp must be a timestamp, not an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setup();
        int64_t ms;
        expect_serialization(timestamp(bad[i].json, &ms), bad[i].message);
    }
    /* Required and absent: a constraint, not a type error. */
    setup();
    json_t *o = parse("{}");
    int64_t ms;
    cr_expect_eq(gw_v_time(&v, o, "Timestamp", "timestamp", GW_V_REQUIRED, &ms, NULL), 0);
    expect_validation("1 validation error detected: Value null at 'timestamp' failed to satisfy "
                      "constraint: Member must not be null");
    json_decref(o);
}

static const char *const iter_types[] = {"AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER",
                                         "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", NULL};

Test(getters, enum_values)
{
    for (int i = 0; iter_types[i]; i++) {
        setup();
        json_t *o = json_pack("{s:s}", "ShardIteratorType", iter_types[i]);
        int idx = -2;
        cr_expect_eq(gw_v_enum(&v, o, "ShardIteratorType", "shardIteratorType", GW_V_REQUIRED,
                               iter_types, &idx),
                     0);
        cr_expect_eq(idx, i);
        expect_valid();
        json_decref(o);
    }
    const char *bad[] = {"latest", "LATEST ", "", "TRIM-HORIZON"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setup();
        json_t *o = json_pack("{s:s}", "ShardIteratorType", bad[i]);
        int idx = -2;
        cr_expect_eq(gw_v_enum(&v, o, "ShardIteratorType", "shardIteratorType", GW_V_REQUIRED,
                               iter_types, &idx),
                     0);
        cr_expect_eq(idx, -1);
        char want[512];
        snprintf(want, sizeof want,
                 "1 validation error detected: Value '%s' at 'shardIteratorType' failed to "
                 "satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, "
                 "AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
                 bad[i]);
        expect_validation(want);
        json_decref(o);
    }
    setup();
    json_t *o = parse("{\"ShardIteratorType\":3}");
    int idx;
    expect_serialization(gw_v_enum(&v, o, "ShardIteratorType", "shardIteratorType",
                                   GW_V_REQUIRED, iter_types, &idx),
                         "ShardIteratorType must be a string, not an integer");
    json_decref(o);
    setup();
    o = parse("{}");
    cr_expect_eq(gw_v_enum(&v, o, "ShardIteratorType", "shardIteratorType", GW_V_REQUIRED,
                           iter_types, &idx),
                 0);
    cr_expect_eq(idx, -1);
    expect_validation("1 validation error detected: Value null at 'shardIteratorType' failed to "
                      "satisfy constraint: Member must not be null");
    json_decref(o);
}

/* ---- gw_v_object, gw_v_array --------------------------------------------------------------- */

Test(getters, object_member)
{
    json_t *o = parse("{\"Tags\":{\"k\":\"v\"},\"Bad\":[1]}"), *t;
    cr_expect_eq(gw_v_object(&v, o, "Tags", "tags", GW_V_REQUIRED, &t), 0);
    cr_expect_eq(t, json_object_get(o, "Tags"));
    cr_expect_eq(gw_v_object(&v, o, "None", "none", 0, &t), 0);
    cr_expect_null(t);
    expect_valid();
    expect_serialization(gw_v_object(&v, o, "Bad", "bad", 0, &t), "Bad must be an object, not an array");
    cr_expect_null(t);
    json_decref(o);
}

Test(getters, array_bounds)
{
    json_t *o = json_object(), *a50 = json_array(), *a51 = json_array(), *out;
    for (int i = 0; i < 50; i++)
        json_array_append_new(a50, json_string("k"));
    for (int i = 0; i < 51; i++)
        json_array_append_new(a51, json_string("k"));
    json_object_set_new(o, "A50", a50);
    json_object_set_new(o, "A51", a51);
    json_object_set_new(o, "Empty", json_array());
    json_object_set_new(o, "Obj", json_object());
    cr_expect_eq(gw_v_array(&v, o, "A50", "tagKeys", GW_V_REQUIRED, 1, 50, &out), 0);
    cr_expect_eq(out, a50);
    expect_valid();
    cr_expect_eq(gw_v_array(&v, o, "A51", "tagKeys", GW_V_REQUIRED, 1, 50, &out), 0);
    cr_expect_null(out);
    cr_expect_eq(gw_v_array(&v, o, "Empty", "tagKeys", GW_V_REQUIRED, 1, 50, &out), 0);
    cr_expect_null(out);
    cr_expect_eq(gw_v_array(&v, o, "Missing", "records", GW_V_REQUIRED, 1, 500, &out), 0);
    expect_validation("3 validation errors detected: Value '[51 items]' at 'tagKeys' failed to "
                      "satisfy constraint: Member must have length less than or equal to 50; "
                      "Value '[]' at 'tagKeys' failed to satisfy constraint: Member must have "
                      "length greater than or equal to 1; Value null at 'records' failed to "
                      "satisfy constraint: Member must not be null");
    setup();
    expect_serialization(gw_v_array(&v, o, "Obj", "tagKeys", 0, 1, 50, &out),
                         "Obj must be an array, not an object");
    json_decref(o);
}

/* ---- gw_v_blob ------------------------------------------------------------------------------- */

static struct gw_req *bare_req(void)
{
    return gw_req_new(GW_PROTO_H2, false, 0, NULL, NULL, NULL);
}

Test(getters, blob_decode_and_size)
{
    struct gw_req *req = bare_req();
    json_t *o = parse("{\"Three\":\"YWJj\",\"Four\":\"YWJjZA==\",\"Empty\":\"\",\"Null\":null}");
    const uint8_t *d;
    size_t n;
    bool present;
    cr_expect_eq(gw_v_blob(&v, req, o, "Three", "data", GW_V_REQUIRED, 3, &d, &n, &present), 0);
    cr_expect(present);
    cr_assert_eq(n, 3);
    cr_expect_eq(memcmp(d, "abc", 3), 0);
    cr_expect_eq(gw_v_blob(&v, req, o, "Empty", "data", GW_V_REQUIRED, 3, &d, &n, &present), 0);
    cr_expect(present);
    cr_expect_eq(n, 0);
    cr_expect_not_null(d);
    expect_valid();
    /* Past "max" decoded bytes: reported as the service's Java buffer. */
    cr_expect_eq(gw_v_blob(&v, req, o, "Four", "data", GW_V_REQUIRED, 3, &d, &n, &present), 0);
    cr_expect_not(present);
    cr_expect_null(d);
    cr_expect_eq(gw_v_blob(&v, req, o, "Null", "records.1.member.data", GW_V_REQUIRED, 3, &d, &n,
                           &present),
                 0);
    expect_validation("2 validation errors detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=4 "
                      "cap=4]' at 'data' failed to satisfy constraint: Member must have length "
                      "less than or equal to 3; Value null at 'records.1.member.data' failed to "
                      "satisfy constraint: Member must not be null");
    json_decref(o);
    gw_req_free(req);
}

Test(getters, blob_refused)
{
    struct gw_req *req = bare_req();
    static const struct {
        const char *json, *message;
    } bad[] = {
        {"{\"Data\":\"YWJ\"}", "Data is not valid base64 (standard alphabet, padded)"},
        {"{\"Data\":\"YW Jj\"}", "Data is not valid base64 (standard alphabet, padded)"},
        {"{\"Data\":\"YWJ-\"}", "Data is not valid base64 (standard alphabet, padded)"},
        {"{\"Data\":\"YR==\"}", "Data is not valid base64 (standard alphabet, padded)"},
        {"{\"Data\":5}", "Data must be a base64 string, not an integer"},
        {"{\"Data\":[]}", "Data must be a base64 string, not an array"},
        {"{\"Data\":true}", "Data must be a base64 string, not a boolean"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setup();
        json_t *o = parse(bad[i].json);
        const uint8_t *d;
        size_t n;
        expect_serialization(gw_v_blob(&v, req, o, "Data", "data", GW_V_REQUIRED, 1024, &d, &n,
                                       NULL),
                             bad[i].message);
        cr_expect_null(d);
        json_decref(o);
    }
    gw_req_free(req);
}

/* ---- bodies at the edge ---------------------------------------------------------------------- */

static void t_noop(struct gw_req *r) {}
static const struct gw_req_transport capture = {.on_send = t_noop, .on_stream = t_noop,
                                                .on_resume = t_noop};

static struct gw_req *body_req(const char *content_type, const void *body, size_t len)
{
    struct gw_req *r = gw_req_new(GW_PROTO_HTTP1, false, 1, &capture, NULL, NULL);
    if (content_type)
        gw_req_add_header(r, "content-type", 12, content_type, strlen(content_type), 4096);
    if (len)
        cr_assert_eq(gw_req_body_append(r, body, len, SIZE_MAX), 0);
    return r;
}

static void decode_fails(const char *ct, const char *body, size_t len, const char *message)
{
    setup();
    struct gw_req *r = body_req(ct, body, len);
    json_t *j = (json_t *)1;
    expect_serialization(gw_body_decode(r, &j, &err), message);
    cr_expect_null(j);
    gw_req_free(r);
}

Test(body, decode_json)
{
    const char *ct = "application/x-amz-json-1.1";
    struct gw_req *r = body_req(ct, "{\"StreamName\":\"s\"}", 18);
    json_t *j = NULL;
    cr_assert_eq(gw_body_decode(r, &j, &err), 0, "%s", err.message);
    cr_expect_str_eq(json_string_value(json_object_get(j, "StreamName")), "s");
    cr_expect_not(gw_body_is_cbor(r));
    json_decref(j);
    gw_req_free(r);
    /* No content type at all is read as JSON too. */
    r = body_req(NULL, "{}", 2);
    cr_assert_eq(gw_body_decode(r, &j, &err), 0);
    json_decref(j);
    gw_req_free(r);

    decode_fails(ct, "", 0, "The request body is empty");
    decode_fails(ct, "[1]", 3, "The request body must be a JSON object");
    /* jansson itself wants an object or array at the root. */
    decode_fails(ct, "\"s\"", 3,
                 "Malformed JSON request body at line 1 column 3: '[' or '{' expected near "
                 "'\"s\"'");
    decode_fails(ct, "{\"a\":1", 6,
                 "Malformed JSON request body at line 1 column 6: '}' expected near end of file");
    decode_fails(ct, "{\"a\":1,\"a\":2}", 13,
                 "Malformed JSON request body at line 1 column 10: duplicate object key near "
                 "'\"a\"'");
    decode_fails(ct, "{\"a\":\"\\u0000\"}", 14,
                 "Malformed JSON request body at line 1 column 13: \\u0000 is not allowed "
                 "without JSON_ALLOW_NUL near '\"\\u0000\"'");
}

Test(body, decode_cbor)
{
    const char *ct = "application/x-amz-cbor-1.1";
    /* {"StreamName": "s"} */
    static const uint8_t ok[] = {0xa1, 0x6a, 'S', 't', 'r', 'e', 'a', 'm', 'N', 'a', 'm', 'e', 0x61, 's'};
    struct gw_req *r = body_req(ct, ok, sizeof ok);
    cr_expect(gw_body_is_cbor(r));
    json_t *j = NULL;
    cr_assert_eq(gw_body_decode(r, &j, &err), 0, "%s", err.message);
    cr_expect_str_eq(json_string_value(json_object_get(j, "StreamName")), "s");
    json_decref(j);
    gw_req_free(r);
    /* The content type matches by prefix and case-insensitively. */
    r = body_req("Application/X-Amz-Cbor-1.1; charset=x", ok, sizeof ok);
    cr_expect(gw_body_is_cbor(r));
    gw_req_free(r);
    setup();
    r = body_req(ct, "\xa1\x61", 2);
    j = (json_t *)1;
    cr_expect_eq(gw_body_decode(r, &j, &err), -1);
    cr_expect_eq(err.type, GW_ERR_SERIALIZATION);
    cr_expect_eq(strncmp(err.message, "Malformed CBOR request body: ", 29), 0, "%s", err.message);
    cr_expect_null(j);
    gw_req_free(r);
}

/* ---- ops_util.c ------------------------------------------------------------------------------ */

static int stream_fields(const char *json, bool required, const char **name, const char **arn)
{
    json_t *o = parse(json);
    int rc = gw_op_stream_fields(&v, o, required, name, arn);
    if (rc == 0 && *name)
        *name = strdup(*name);
    if (rc == 0 && *arn)
        *arn = strdup(*arn);
    json_decref(o);
    return rc;
}

Test(ops_util, stream_fields)
{
    const char *name, *arn;
    cr_expect_eq(stream_fields("{\"StreamName\":\"s1\"}", true, &name, &arn), 0);
    cr_expect_str_eq(name, "s1");
    cr_expect_null(arn);
    free((char *)name);
    expect_valid();
    const char *a = "arn:aws:kinesis:us-east-1:123456789012:stream/s1";
    char text[256];
    snprintf(text, sizeof text, "{\"StreamARN\":\"%s\",\"StreamName\":null}", a);
    cr_expect_eq(stream_fields(text, true, &name, &arn), 0);
    cr_expect_null(name);
    cr_expect_str_eq(arn, a);
    free((char *)arn);
    expect_valid();
    /* Neither: required reports the name as missing; optional is fine. */
    cr_expect_eq(stream_fields("{}", false, &name, &arn), 0);
    expect_valid();
    cr_expect_eq(stream_fields("{\"StreamName\":null}", true, &name, &arn), 0);
    expect_validation("1 validation error detected: Value null at 'streamName' failed to satisfy "
                      "constraint: Member must not be null");
}

Test(ops_util, stream_fields_invalid)
{
    const char *name, *arn;
    /* Both given and both invalid: two violations, no "not null". */
    cr_expect_eq(stream_fields("{\"StreamName\":\"a b\",\"StreamARN\":\"arn:aws:kinesis:x:1:stream/s\"}",
                               true, &name, &arn),
                 0);
    cr_expect_null(name);
    cr_expect_null(arn);
    expect_validation("2 validation errors detected: Value 'a b' at 'streamName' failed to "
                      "satisfy constraint: Member must satisfy regular expression pattern: "
                      "[a-zA-Z0-9_.-]+; Value 'arn:aws:kinesis:x:1:stream/s' at 'streamARN' "
                      "failed to satisfy constraint: Member must satisfy regular expression "
                      "pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/.+");
    setup();
    char *longname = rep("s", 129);
    char text[512];
    snprintf(text, sizeof text, "{\"StreamName\":\"%s\"}", longname);
    cr_expect_eq(stream_fields(text, true, &name, &arn), 0);
    char want[512];
    snprintf(want, sizeof want,
             "1 validation error detected: Value '%s' at 'streamName' failed to satisfy "
             "constraint: Member must have length less than or equal to 128",
             longname);
    expect_validation(want);
    free(longname);
    setup();
    expect_serialization(stream_fields("{\"StreamARN\":7}", true, &name, &arn),
                         "StreamARN must be a string, not an integer");
}

static void query_time_ok(const char *text, int64_t want)
{
    setup();
    int64_t ms = -7;
    cr_expect_eq(gw_op_query_time(text, "timestamp", &ms, &err), 0, "%s: %s", text, err.message);
    cr_expect_eq(ms, want, "%s: %lld", text, (long long)ms);
}

static void query_time_bad(const char *text)
{
    setup();
    int64_t ms = -7;
    cr_expect_eq(gw_op_query_time(text, "timestamp", &ms, &err), -1, "accepted: '%s' as %lld",
                 text ? text : "(null)", (long long)ms);
    cr_expect_eq(ms, -7);
    cr_expect_eq(err.type, GW_ERR_VALIDATION);
    char want[256];
    snprintf(want, sizeof want,
             "1 validation error detected: Value '%s' at 'timestamp' failed to satisfy "
             "constraint: Member must be a number of seconds since the epoch between -1e14 "
             "and 1e14",
             text ? text : "");
    cr_expect_str_eq(err.message, want);
}

Test(ops_util, query_time)
{
    query_time_ok("1700000000", 1700000000000);
    query_time_ok("1700000000.5", 1700000000500);
    query_time_ok("0", 0);
    query_time_ok("-1", -1000);
    query_time_ok("+2", 2000);
    query_time_ok(".25", 250);
    query_time_ok("1e3", 1000000);
    query_time_ok("100000000000000", 100000000000000000);
    query_time_ok("-1e14", -100000000000000000);
    const char *bad[] = {"", " 1", "1 ", "1x", "abc", "nan", "-nan", "inf", "-inf", "infinity",
                         "1e300", "1.0000001e14", "-2e14", "+", "-", ".", "1,5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        query_time_bad(bad[i]);
    query_time_bad(NULL);
}

/* strtod() also reads C99 hexadecimal floats: the REST door once took
 * timestamp=0x10 as 16 s and 0x1p3 as 8 s. */
Test(ops_util, query_time_refuses_hexadecimal)
{
    query_time_bad("0x10");
    query_time_bad("0x1p3");
    query_time_bad("-0x1");
}
