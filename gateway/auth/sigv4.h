/* sigv4.h - AWS Signature Version 4, the verifier's half (pure: no I/O, no
 * clock, no credentials store).
 *
 * A signed request carries
 *   Authorization: AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/
 *                  <service>/aws4_request, SignedHeaders=<a;b;c>, Signature=<hex>
 * and X-Amz-Date. The verifier rebuilds the canonical request from the
 * headers named in SignedHeaders only, exactly as the SDKs' signer builds it
 * (path segments URI-encoded once more, query pairs encoded and sorted,
 * header values trimmed with inner runs of blanks folded), hashes it into the
 * string to sign, derives the signing key from the secret and the scope, and
 * compares the HMAC in constant time.
 *
 * Upstream: auth.c (the credentials and the request). Downstream: OpenSSL
 * (SHA-256, HMAC-SHA256, CRYPTO_memcmp). tests/vectors/sigv4.json holds
 * every intermediate value for unit tests. */
#ifndef SLUICE_GW_SIGV4_H
#define SLUICE_GW_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed Authorization header. */
struct gw_sigv4_auth {
    char access_key[129];
    char date[9];          /* yyyymmdd of the scope */
    char region[64];
    char service[64];
    char signed_headers[1024]; /* as sent: lower-case names joined by ';' */
    char signature[65];    /* lower-case hex */
};

/* Parses an Authorization header value. Returns 0, or -1 with a reason in
 * "why" (the header is not AWS4-HMAC-SHA256 with Credential, SignedHeaders
 * and Signature, or a part is malformed or too long). */
int gw_sigv4_parse(const char *value, struct gw_sigv4_auth *out, char *why, size_t whylen);

/* The value of header "name" (lower-case; ":authority" included) or NULL. */
typedef const char *(*gw_sigv4_header_fn)(void *ctx, const char *name);

/* Builds the canonical request: "method\ncanonical path\ncanonical
 * query\ncanonical headers\n\nsigned headers\npayload hash". "path" and
 * "query" are as received (percent-encoded, query without '?'); a signed
 * header that is absent is an error. A presigned request's X-Amz-Signature
 * query parameter is left out of the canonical query, as the signer did not
 * have it (pass "presigned"). Returns a malloc'd string, or NULL with "why"
 * set. */
char *gw_sigv4_canonical_request(const char *method, const char *path, const char *query,
                                 bool presigned, const char *signed_headers,
                                 gw_sigv4_header_fn header, void *ctx,
                                 const char *payload_hash_hex, char *why, size_t whylen);

/* A presigned request's query (X-Amz-Algorithm, X-Amz-Credential,
 * X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Signature, X-Amz-Expires) into "out"
 * and "*amz_date" (16 chars + NUL), "*expires_s". Returns 0, or -1 with
 * "why" set when a parameter is missing or malformed. "get" returns the
 * decoded value of a query parameter or NULL. */
typedef const char *(*gw_sigv4_query_fn)(void *ctx, const char *name);
int gw_sigv4_parse_query(gw_sigv4_query_fn get, void *ctx, struct gw_sigv4_auth *out,
                         char amz_date[17], long *expires_s, char *why, size_t whylen);

/* "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical request>"
 * into a malloc'd string; scope = date/region/service/aws4_request. */
char *gw_sigv4_string_to_sign(const char *amz_date, const struct gw_sigv4_auth *a,
                              const char *canonical_request);

/* kSigning = HMAC chain of "AWS4"+secret over date, region, service,
 * "aws4_request". */
void gw_sigv4_signing_key(const char *secret, const char *date, const char *region,
                          const char *service, uint8_t key[32]);

/* Lower-case hex HMAC-SHA256 of "string_to_sign" under "key". */
void gw_sigv4_sign(const uint8_t key[32], const char *string_to_sign, char hex[65]);

/* Lower-case hex SHA-256 of "n" bytes. */
void gw_sigv4_sha256_hex(const void *p, size_t n, char hex[65]);

/* Constant-time equality of two NUL-terminated hex signatures. */
bool gw_sigv4_equal(const char *a, const char *b);

#endif
