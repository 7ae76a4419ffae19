/* auth.h - who may call the Kinesis door: --auth none|sigv4.
 *
 * With sigv4 every Kinesis-door request (every protocol, SubscribeToShard
 * included) must carry an AWS Signature Version 4 Authorization header made
 * with a key listed in --credentials:
 *
 *   # comment
 *   ACCESS_KEY_ID:SECRET_ACCESS_KEY[:stream1,stream2]
 *   token:TOKEN[:stream1,stream2]
 *
 * A key or token followed by streams may use only those (AccessDenied
 * otherwise, checked by the operations through gw_principal_allows). Tokens
 * are for the REST door: `Authorization: Bearer TOKEN`.
 *
 * The file is read at start and again on SIGHUP (a reload that fails keeps
 * the keys in use). Signing keys are derived once per key, day, region and
 * service and cached. X-Amz-Date must be within 15 minutes of the clock; the
 * payload hash is the body's SHA-256, and x-amz-content-sha256, when sent,
 * must equal it. Presigned requests (the signature in the query, valid for
 * X-Amz-Expires seconds; the body's hash signed unless X-Amz-Content-Sha256
 * says UNSIGNED-PAYLOAD) are accepted too.
 *
 * Upstream: router.c (the check), main.c (SIGHUP), app.c (lifetime).
 * Downstream: sigv4.h. */
#ifndef SLUICE_GW_AUTH_H
#define SLUICE_GW_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "request.h"

struct gw_auth;

/* Who signed a request: a key id (or "token") and the streams it may use
 * (none listed: all). Borrowed from the auth until its next reload. */
struct gw_principal {
    const char *id;
    char **streams;
    size_t nstreams;
};

/* Whether "who" (NULL: no authentication) may use stream "stream". */
bool gw_principal_allows(const struct gw_principal *who, const char *stream);

/* NULL with "err" unset when cfg->auth is "none"; NULL with "err" set when
 * the mode is unknown or the credentials cannot be read. */
struct gw_auth *gw_auth_new(const struct gw_config *cfg, struct gw_error *err);
void gw_auth_free(struct gw_auth *a);

/* Reads the credentials file again. 0, or -1 with "err" set (the old keys
 * stay in force). */
int gw_auth_reload(struct gw_auth *a, struct gw_error *err);

/* Verifies "req" at wall-clock "now_ms". 0, or -1 with "err" set to the
 * Kinesis error: MissingAuthenticationTokenException (no signature),
 * IncompleteSignatureException (malformed), UnrecognizedClientException
 * (unknown key), InvalidSignatureException (mismatch, or a date more than 15
 * minutes away). */
int gw_auth_check(struct gw_auth *a, struct gw_req *req, int64_t now_ms,
                  const struct gw_principal **who, struct gw_error *err);

/* Keys loaded (for logs and tests). */
size_t gw_auth_keys(const struct gw_auth *a);

#endif
