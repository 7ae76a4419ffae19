/* auth.c - SigV4 verification of Kinesis-door requests against a
 * credentials file (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "mem.h"
#include "sigv4.h"

#define SKEW_MS (15 * 60 * 1000)

struct key {
    char *id, *secret;  /* id "token": a bearer token (secret) for the REST door */
    struct gw_principal who;
    /* The signing key of the last scope used: one derivation per day. */
    bool cached;
    char day[9], region[64], service[64];
    uint8_t signing[32];
};

struct gw_auth {
    char *path;
    struct key *keys;
    size_t nkeys;
};

static void key_clear(struct key *k)
{
    for (size_t j = 0; j < k->who.nstreams; j++)
        free(k->who.streams[j]);
    free(k->who.streams);
    free(k->id);
    if (k->secret) {
        OPENSSL_cleanse(k->secret, strlen(k->secret));
        free(k->secret);
    }
    OPENSSL_cleanse(k->signing, sizeof k->signing);
}

static void keys_free(struct key *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        key_clear(&k[i]);
    free(k);
}

#define TOKEN_CHARS                                                                          \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="

/* "a,b,c" into who->streams; -1 if a name is empty or not a stream name. */
static int parse_streams(char *list, struct gw_principal *who)
{
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        t += strspn(t, " \t");
        t[strcspn(t, " \t")] = '\0';
        if (!gw_match_name(t) || strlen(t) > 128)
            return -1;
        who->streams = xrealloc(who->streams, (who->nstreams + 1) * sizeof *who->streams);
        who->streams[who->nstreams++] = xstrdup(t);
    }
    return who->nstreams ? 0 : -1;
}

bool gw_principal_allows(const struct gw_principal *who, const char *stream)
{
    if (!who || who->nstreams == 0)
        return true;
    for (size_t i = 0; i < who->nstreams; i++)
        if (strcmp(who->streams[i], stream) == 0)
            return true;
    return false;
}

/* Reads "path" into a new key list. */
static int load(const char *path, struct key **out, size_t *nout, struct gw_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "--credentials %s: %s", path,
                            strerror(errno));
    struct key *k = NULL;
    size_t n = 0, cap = 0;
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line + strspn(line, " \t");
        if (!*p || *p == '#')
            continue;
        char *colon = strchr(p, ':');
        if (!colon || colon == p || !colon[1]) {
            rc = gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                              "--credentials %s:%d: expected ACCESS_KEY_ID:SECRET_ACCESS_KEY",
                              path, lineno);
            break;
        }
        *colon = '\0';
        char *secret = colon + 1, *list = strchr(secret, ':');
        if (list)
            *list++ = '\0';
        if (strlen(p) > 128 || !*secret) {
            rc = gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                              "--credentials %s:%d: expected ACCESS_KEY_ID:SECRET[:STREAMS] or "
                              "token:TOKEN[:STREAMS] (ids up to 128 characters)",
                              path, lineno);
            break;
        }
        if (strcmp(p, "token") == 0 && strspn(secret, TOKEN_CHARS) != strlen(secret)) {
            rc = gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                              "--credentials %s:%d: a token is letters, digits and -._~+/=",
                              path, lineno);
            break;
        }
        struct key nk = {.id = xstrdup(p), .secret = xstrdup(secret)};
        nk.who.id = nk.id;
        if (list && parse_streams(list, &nk.who) != 0) {
            rc = gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                              "--credentials %s:%d: the streams are a comma-separated list of "
                              "stream names",
                              path, lineno);
            key_clear(&nk);
            break;
        }
        if (n == cap)
            k = xrealloc(k, (cap = cap ? cap * 2 : 8) * sizeof *k);
        k[n++] = nk;
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    if (rc == 0 && n == 0)
        rc = gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "--credentials %s: no keys", path);
    if (rc != 0) {
        keys_free(k, n);
        return -1;
    }
    *out = k;
    *nout = n;
    return 0;
}

struct gw_auth *gw_auth_new(const struct gw_config *cfg, struct gw_error *err)
{
    const char *mode = cfg->auth ? cfg->auth : "none";
    if (strcmp(mode, "none") == 0)
        return NULL;
    if (strcmp(mode, "sigv4") != 0) {
        gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "--auth %s: expected none or sigv4", mode);
        return NULL;
    }
    if (!cfg->credentials || !*cfg->credentials) {
        gw_error_set(err, GW_ERR_INVALID_ARGUMENT, "--auth sigv4 needs --credentials FILE");
        return NULL;
    }
    struct gw_auth *a = xcalloc(1, sizeof *a);
    a->path = xstrdup(cfg->credentials);
    if (load(a->path, &a->keys, &a->nkeys, err) != 0) {
        gw_auth_free(a);
        return NULL;
    }
    gw_log(GW_LOG_INFO, "auth", "sigv4 with %zu keys from %s", a->nkeys, a->path);
    return a;
}

void gw_auth_free(struct gw_auth *a)
{
    if (!a)
        return;
    keys_free(a->keys, a->nkeys);
    free(a->path);
    free(a);
}

int gw_auth_reload(struct gw_auth *a, struct gw_error *err)
{
    struct key *k;
    size_t n;
    if (load(a->path, &k, &n, err) != 0)
        return -1;
    keys_free(a->keys, a->nkeys);
    a->keys = k;
    a->nkeys = n;
    gw_log(GW_LOG_INFO, "auth", "reloaded %zu keys from %s", n, a->path);
    return 0;
}

size_t gw_auth_keys(const struct gw_auth *a) { return a ? a->nkeys : 0; }

static struct key *find(struct gw_auth *a, const char *id)
{
    for (size_t i = 0; i < a->nkeys; i++)
        if (strcmp(a->keys[i].id, id) == 0 && strcmp(id, "token") != 0)
            return &a->keys[i];
    return NULL;
}

/* A bearer token of the REST door, compared in constant time. */
static struct key *find_token(struct gw_auth *a, const char *token)
{
    struct key *hit = NULL;
    size_t n = strlen(token);
    for (size_t i = 0; i < a->nkeys; i++)
        if (strcmp(a->keys[i].id, "token") == 0 && strlen(a->keys[i].secret) == n &&
            CRYPTO_memcmp(a->keys[i].secret, token, n) == 0)
            hit = &a->keys[i];
    return hit;
}

/* yyyymmddThhmmssZ -> epoch ms; -1 if malformed. */
static int64_t amz_date_ms(const char *s)
{
    struct tm tm = {0};
    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z' || strspn(s, "0123456789") != 8 ||
        strspn(s + 9, "0123456789") != 6)
        return -1;
    if (sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? -1 : (int64_t)t * 1000;
}

static void fmt_amz(int64_t ms, char out[17])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* HTTP/2 requests carry :authority, which the transport files as "host";
 * the SDKs sign it under its own name. */
static const char *header_of(void *ctx, const char *name)
{
    struct gw_req *req = ctx;
    return gw_req_header(req, strcmp(name, ":authority") == 0 ? "host" : name);
}

static const char mismatch[] =
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details.";

static const char *query_of(void *ctx, const char *name)
{
    return gw_req_query_param(ctx, name);
}

int gw_auth_check(struct gw_auth *a, struct gw_req *req, int64_t now_ms,
                  const struct gw_principal **who, struct gw_error *err)
{
    const char *authz = gw_req_header(req, "authorization");
    *who = NULL;
    if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
        /* Browsers and curl users on the REST door need not sign. */
        if (strcmp(gw_req_path(req), "/") == 0)
            return gw_error_set(err, GW_ERR_INCOMPLETE_SIGNATURE,
                                "Bearer tokens are accepted on the REST door only; sign "
                                "Kinesis requests with AWS Signature Version 4.");
        struct key *t = find_token(a, authz + 7 + strspn(authz + 7, " "));
        if (!t)
            return gw_error_set(err, GW_ERR_UNRECOGNIZED_CLIENT,
                                "The security token included in the request is invalid.");
        *who = &t->who;
        return 0;
    }
    bool presigned = !authz && gw_req_query_param(req, "X-Amz-Signature");
    if (!authz && !presigned)
        return gw_error_set(err, GW_ERR_MISSING_AUTH_TOKEN, "Missing Authentication Token");
    struct gw_sigv4_auth sa;
    char why[200], qdate[17];
    const char *date;
    long expires_s = 0;
    if (presigned) {
        /* A presigned URL (query-string signature): what a browser or curl
         * can use without computing signatures itself. */
        if (gw_sigv4_parse_query(query_of, req, &sa, qdate, &expires_s, why, sizeof why) != 0)
            return gw_error_set(err, GW_ERR_INCOMPLETE_SIGNATURE, "%s", why);
        date = qdate;
    } else {
        if (gw_sigv4_parse(authz, &sa, why, sizeof why) != 0)
            return gw_error_set(err, GW_ERR_INCOMPLETE_SIGNATURE, "%s", why);
        date = gw_req_header(req, "x-amz-date");
        if (!date)
            return gw_error_set(err, GW_ERR_INCOMPLETE_SIGNATURE,
                                "Authorization header requires existence of a 'X-Amz-Date' "
                                "header.");
    }
    int64_t when = amz_date_ms(date);
    if (when < 0 || strncmp(date, sa.date, 8) != 0)
        return gw_error_set(err, GW_ERR_INCOMPLETE_SIGNATURE,
                            "X-Amz-Date '%.20s' is not yyyymmddThhmmssZ of the credential's "
                            "date %s",
                            date, sa.date);
    struct key *k = find(a, sa.access_key);
    if (!k)
        return gw_error_set(err, GW_ERR_UNRECOGNIZED_CLIENT,
                            "The security token included in the request is invalid.");
    char now_text[17], bound[17];
    fmt_amz(now_ms, now_text);
    if (presigned && now_ms > when + (int64_t)expires_s * 1000) {
        fmt_amz(when + (int64_t)expires_s * 1000, bound);
        return gw_error_set(err, GW_ERR_INVALID_SIGNATURE,
                            "Signature expired: the presigned request was valid until %s, it is "
                            "now %s",
                            bound, now_text);
    }
    if (!presigned && when < now_ms - SKEW_MS) {
        fmt_amz(now_ms - SKEW_MS, bound);
        return gw_error_set(err, GW_ERR_INVALID_SIGNATURE,
                            "Signature expired: %s is now earlier than %s (%s - 15 min.)", date,
                            bound, now_text);
    }
    if (when > now_ms + SKEW_MS) {
        fmt_amz(now_ms + SKEW_MS, bound);
        return gw_error_set(err, GW_ERR_INVALID_SIGNATURE,
                            "Signature not yet current: %s is still later than %s (%s + 15 min.)",
                            date, bound, now_text);
    }
    size_t blen;
    const uint8_t *body = gw_req_body(req, &blen);
    char payload[65];
    gw_sigv4_sha256_hex(body ? (const void *)body : "", body ? blen : 0, payload);
    const char *claimed = presigned ? gw_req_query_param(req, "X-Amz-Content-Sha256")
                                    : gw_req_header(req, "x-amz-content-sha256");
    /* The signature covers the body's hash, as the SDKs' signer computes it
     * for every service but S3; only a presigned URL may say
     * UNSIGNED-PAYLOAD (X-Amz-Content-Sha256), as S3-style signers do. */
    const char *hash = payload;
    if (presigned && claimed && strcmp(claimed, "UNSIGNED-PAYLOAD") == 0)
        hash = "UNSIGNED-PAYLOAD";
    else if (claimed && strcmp(claimed, payload) != 0)
        return gw_error_set(err, GW_ERR_INVALID_SIGNATURE,
                            "The provided 'x-amz-content-sha256' header does not match what was "
                            "computed.");
    char *creq = gw_sigv4_canonical_request(gw_req_method(req), gw_req_path(req),
                                            gw_req_query(req), presigned, sa.signed_headers,
                                            header_of, req, hash, why, sizeof why);
    if (!creq)
        return gw_error_set(err, GW_ERR_INCOMPLETE_SIGNATURE, "%s", why);
    char *sts = gw_sigv4_string_to_sign(date, &sa, creq);
    if (!k->cached || strcmp(k->day, sa.date) != 0 || strcmp(k->region, sa.region) != 0 ||
        strcmp(k->service, sa.service) != 0) {
        gw_sigv4_signing_key(k->secret, sa.date, sa.region, sa.service, k->signing);
        snprintf(k->day, sizeof k->day, "%s", sa.date);
        snprintf(k->region, sizeof k->region, "%s", sa.region);
        snprintf(k->service, sizeof k->service, "%s", sa.service);
        k->cached = true;
    }
    char sig[65];
    gw_sigv4_sign(k->signing, sts, sig);
    free(sts);
    free(creq);
    if (!gw_sigv4_equal(sig, sa.signature))
        return gw_error_set(err, GW_ERR_INVALID_SIGNATURE, "%s", mismatch);
    *who = &k->who;
    return 0;
}
