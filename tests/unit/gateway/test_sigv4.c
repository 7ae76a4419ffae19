/* test_sigv4.c - sigv4.c against tests/vectors/sigv4.json (signed by the
 * AWS SDK's own signer): every intermediate value, then the mutations a
 * verifier must refuse. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

static json_t *vectors(void)
{
    json_error_t je;
    json_t *root = json_load_file(SLUICE_VECTORS_DIR "/sigv4.json", 0, &je);
    cr_assert_not_null(root, "sigv4.json: %s", je.text);
    return root;
}

static const char *hdr(void *ctx, const char *name)
{
    return json_string_value(json_object_get(ctx, name));
}

static const char *str(json_t *o, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(o, a), b));
}

/* Verifies vector "v" as the gateway would; returns the computed signature
 * in "sig" and checks each intermediate. */
static void check_vector(json_t *v)
{
    const char *name = json_string_value(json_object_get(v, "name"));
    json_t *in = json_object_get(v, "inputs"), *after = json_object_get(v, "headers_after_signing");
    struct gw_sigv4_auth a;
    char why[200];
    cr_assert_eq(gw_sigv4_parse(str(v, "expected", "authorization"), &a, why, sizeof why), 0,
                 "%s: %s", name, why);
    cr_expect_str_eq(a.access_key, "AKIDEXAMPLE");
    cr_expect_str_eq(a.date, "20150830");
    cr_expect_str_eq(a.region, "us-east-1");
    cr_expect_str_eq(a.service, "kinesis");
    cr_expect_str_eq(a.signed_headers, str(v, "expected", "signed_headers"));
    const char *body = json_string_value(json_object_get(in, "body"));
    char payload[65];
    gw_sigv4_sha256_hex(body, strlen(body), payload);
    cr_expect_str_eq(payload, str(v, "intermediate", "payload_sha256_hex"), "%s", name);
    char *creq = gw_sigv4_canonical_request(
        json_string_value(json_object_get(in, "method")), json_string_value(json_object_get(in, "path")),
        json_string_value(json_object_get(in, "query")), false, a.signed_headers, hdr, after, payload, why,
        sizeof why);
    cr_assert_not_null(creq, "%s: %s", name, why);
    cr_expect_str_eq(creq, str(v, "intermediate", "canonical_request"), "%s", name);
    char *sts = gw_sigv4_string_to_sign(str(v, "expected", "x_amz_date"), &a, creq);
    cr_expect_str_eq(sts, str(v, "intermediate", "string_to_sign"), "%s", name);
    uint8_t key[32];
    gw_sigv4_signing_key(json_string_value(json_object_get(in, "secret_access_key")), a.date,
                         a.region, a.service, key);
    char khex[65];
    for (int i = 0; i < 32; i++)
        snprintf(khex + 2 * i, 3, "%02x", key[i]);
    cr_expect_str_eq(khex, str(v, "intermediate", "signing_key_hex"), "%s", name);
    char sig[65];
    gw_sigv4_sign(key, sts, sig);
    cr_expect_str_eq(sig, str(v, "intermediate", "signature"), "%s", name);
    cr_expect(gw_sigv4_equal(sig, a.signature), "%s: the signature verifies", name);
    free(sts);
    free(creq);
}

Test(sigv4, every_vector_verifies_step_by_step)
{
    json_t *root = vectors();
    json_t *list = json_object_get(root, "vectors"), *v;
    size_t i;
    cr_assert_geq(json_array_size(list), 3);
    json_array_foreach(list, i, v)
        check_vector(v);
    json_decref(root);
}

/* Changing anything signed changes the signature; a missing signed header
 * is refused outright. */
Test(sigv4, tampering_is_detected)
{
    json_t *root = vectors();
    json_t *v = json_array_get(json_object_get(root, "vectors"), 0);
    json_t *after = json_deep_copy(json_object_get(v, "headers_after_signing"));
    struct gw_sigv4_auth a;
    char why[200], payload[65], sig[65];
    cr_assert_eq(gw_sigv4_parse(str(v, "expected", "authorization"), &a, why, sizeof why), 0);
    const char *body = json_string_value(json_object_get(json_object_get(v, "inputs"), "body"));
    uint8_t key[32];
    gw_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", a.date, a.region,
                         a.service, key);
    const char *bodies[] = {body, "{\"StreamName\":\"s2\",\"Data\":\"aGVsbG8=\",\"PartitionKey\":\"pk-1\"}"};
    for (int t = 0; t < 4; t++) {
        json_t *h = json_deep_copy(after);
        const char *b = bodies[t == 1];
        if (t == 2)
            json_object_set_new(h, "x-amz-target", json_string("Kinesis_20131202.DeleteStream"));
        if (t == 3)
            json_object_set_new(h, "content-type", json_string("application/x-amz-json-1.1 "));
        gw_sigv4_sha256_hex(b, strlen(b), payload);
        char *creq = gw_sigv4_canonical_request("POST", "/", "", false, a.signed_headers, hdr, h, payload,
                                                why, sizeof why);
        cr_assert_not_null(creq);
        char *sts = gw_sigv4_string_to_sign(str(v, "expected", "x_amz_date"), &a, creq);
        gw_sigv4_sign(key, sts, sig);
        if (t == 0 || t == 3) /* trailing blanks are trimmed: still valid */
            cr_expect(gw_sigv4_equal(sig, a.signature), "case %d", t);
        else
            cr_expect(!gw_sigv4_equal(sig, a.signature), "case %d must not verify", t);
        free(sts);
        free(creq);
        json_decref(h);
    }
    json_object_del(after, "x-amz-target");
    cr_expect_null(gw_sigv4_canonical_request("POST", "/", "", false, a.signed_headers, hdr, after,
                                              payload, why, sizeof why));
    cr_expect(strstr(why, "x-amz-target") != NULL, "%s", why);
    json_decref(after);
    json_decref(root);
}

Test(sigv4, canonical_path_and_query)
{
    json_t *h = json_pack("{s:s}", "host", "h");
    char why[200];
    char *c = gw_sigv4_canonical_request("GET", "/v1/streams/a%20b/x y", "b=2&a=2&a=1&c&d=%7e",
                                         false, "host", hdr, h, "e3b0", why, sizeof why);
    cr_assert_not_null(c, "%s", why);
    cr_expect_str_eq(c, "GET\n/v1/streams/a%2520b/x%20y\na=1&a=2&b=2&c=&d=~\nhost:h\n\nhost\ne3b0");
    free(c);
    /* Header values: trimmed, inner runs of blanks folded. */
    json_object_set_new(h, "x-a", json_string("  one   two\t three  "));
    c = gw_sigv4_canonical_request("POST", "/", "", false, "host;x-a", hdr, h, "p", why, sizeof why);
    cr_assert_not_null(c);
    cr_expect(strstr(c, "\nx-a:one two three\n") != NULL, "%s", c);
    free(c);
    /* Out of order or duplicated names are refused. */
    cr_expect_null(gw_sigv4_canonical_request("POST", "/", "", false, "x-a;host", hdr, h, "p", why, sizeof why));
    cr_expect_null(gw_sigv4_canonical_request("POST", "/", "", false, "host;host", hdr, h, "p", why, sizeof why));
    json_decref(h);
}

Test(sigv4, malformed_authorization_headers)
{
    struct gw_sigv4_auth a;
    char why[200];
    const char *bad[] = {
        NULL,
        "Basic dXNlcjpwYXNz",
        "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=AK/2015083/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=" 
        "0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/kinesis/aws5_request, SignedHeaders=host, Signature="
        "0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=XYZ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(gw_sigv4_parse(bad[i], &a, why, sizeof why), -1, "case %zu", i);
    cr_expect_eq(gw_sigv4_parse("AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/kinesis/aws4_request, "
                                "SignedHeaders=host;x-amz-date, Signature="
                                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                &a, why, sizeof why),
                 0, "%s", why);
    cr_expect_str_eq(a.signed_headers, "host;x-amz-date");
}
