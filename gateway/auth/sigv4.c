/* sigv4.c - Signature Version 4 verification pieces (see sigv4.h). */
#include "sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

static int fail(char *why, size_t whylen, const char *msg)
{
    snprintf(why, whylen, "%s", msg);
    return -1;
}

/* Copies the text of "key=" up to "," or the end into "dst" (cap bytes). */
static int field(const char *s, const char *key, char *dst, size_t cap)
{
    const char *p = strstr(s, key);
    if (!p)
        return -1;
    p += strlen(key);
    size_t n = strcspn(p, ", ");
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

int gw_sigv4_parse(const char *value, struct gw_sigv4_auth *out, char *why, size_t whylen)
{
    static const char alg[] = "AWS4-HMAC-SHA256 ";
    memset(out, 0, sizeof *out);
    if (!value || strncmp(value, alg, sizeof alg - 1) != 0)
        return fail(why, whylen, "Authorization header must use the AWS4-HMAC-SHA256 algorithm");
    const char *rest = value + sizeof alg - 1;
    char cred[512];
    if (field(rest, "Credential=", cred, sizeof cred) != 0 ||
        field(rest, "SignedHeaders=", out->signed_headers, sizeof out->signed_headers) != 0 ||
        field(rest, "Signature=", out->signature, sizeof out->signature) != 0)
        return fail(why, whylen,
                    "Authorization header requires 'Credential', 'Signature' and "
                    "'SignedHeaders' parameters");
    /* <key>/<date>/<region>/<service>/aws4_request */
    char *parts[5];
    int n = 0;
    for (char *p = cred, *save = NULL; n < 5 && (p = strtok_r(p, "/", &save)); p = NULL)
        parts[n++] = p;
    if (n != 5 || strcmp(parts[4], "aws4_request") != 0 || strlen(parts[1]) != 8 ||
        strspn(parts[1], "0123456789") != 8 || strlen(parts[0]) >= sizeof out->access_key ||
        strlen(parts[2]) >= sizeof out->region || strlen(parts[3]) >= sizeof out->service)
        return fail(why, whylen,
                    "Credential must be <access key>/<date>/<region>/<service>/aws4_request");
    snprintf(out->access_key, sizeof out->access_key, "%s", parts[0]);
    snprintf(out->date, sizeof out->date, "%s", parts[1]);
    snprintf(out->region, sizeof out->region, "%s", parts[2]);
    snprintf(out->service, sizeof out->service, "%s", parts[3]);
    if (strlen(out->signature) != 64 || strspn(out->signature, "0123456789abcdef") != 64)
        return fail(why, whylen, "Signature must be 64 lower-case hex digits");
    return 0;
}

/* ---- a growing string ------------------------------------------------------------- */

struct sb {
    char *p;
    size_t len, cap;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s) { sb_add(b, s, strlen(s)); }

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 3986 encoding of every byte but the unreserved ones (and '/' when
 * "keep_slash"). */
static void sb_encode(struct sb *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            sb_add(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_add(b, e, 3);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes "n" bytes of "s" into a new string ('+' stays '+'; a '%'
 * not followed by two hex digits stays as it is). */
static char *decode(const char *s, size_t n)
{
    char *o = xmalloc(n + 1), *d = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *d++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *d++ = s[i];
        }
    }
    *d = '\0';
    return o;
}

struct qpair {
    char *k, *v; /* encoded canonically */
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

static char *encoded(const char *raw, size_t n)
{
    char *d = decode(raw, n);
    struct sb b = {0};
    sb_encode(&b, d, strlen(d), false);
    if (!b.p)
        sb_add(&b, "", 0);
    free(d);
    return b.p;
}

static void canonical_query(struct sb *out, const char *query, bool presigned)
{
    size_t n = 0, cap = 8;
    struct qpair *v = xmalloc(cap * sizeof *v);
    for (const char *p = query; p && *p;) {
        size_t len = strcspn(p, "&");
        if (len) {
            size_t eq = strcspn(p, "=");
            if (eq > len)
                eq = len;
            if (n == cap)
                v = xrealloc(v, (cap *= 2) * sizeof *v);
            v[n].k = encoded(p, eq);
            v[n].v = eq < len ? encoded(p + eq + 1, len - eq - 1) : encoded("", 0);
            if (presigned && strcmp(v[n].k, "X-Amz-Signature") == 0) {
                free(v[n].k);
                free(v[n].v);
            } else {
                n++;
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    qsort(v, n, sizeof *v, qpair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_str(out, "&");
        sb_str(out, v[i].k);
        sb_str(out, "=");
        sb_str(out, v[i].v);
        free(v[i].k);
        free(v[i].v);
    }
    free(v);
}

/* A header value trimmed, inner runs of blanks folded to one space. */
static void canonical_value(struct sb *out, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    bool blank = false;
    size_t start = out->len;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            blank = true;
            continue;
        }
        if (blank && out->len > start)
            sb_add(out, " ", 1);
        blank = false;
        sb_add(out, v, 1);
    }
}

char *gw_sigv4_canonical_request(const char *method, const char *path, const char *query,
                                 bool presigned, const char *signed_headers,
                                 gw_sigv4_header_fn header, void *ctx,
                                 const char *payload_hash_hex, char *why, size_t whylen)
{
    struct sb b = {0};
    sb_str(&b, method);
    sb_str(&b, "\n");
    /* The path as received, each byte outside the unreserved set encoded
     * (so "%2F" on the wire becomes "%252F"), as the SDKs' signer does with
     * uriEscapePath for every service but S3. */
    sb_encode(&b, path && *path ? path : "/", path && *path ? strlen(path) : 1, true);
    sb_str(&b, "\n");
    canonical_query(&b, query, presigned);
    sb_str(&b, "\n");
    /* Headers in SignedHeaders order (the signer sorts them; a client that
     * did not would not match its own signature either). */
    char names[1024];
    snprintf(names, sizeof names, "%s", signed_headers);
    char prev[256] = "";
    for (char *p = names, *save = NULL, *name; (name = strtok_r(p, ";", &save)); p = NULL) {
        if (strlen(name) >= sizeof prev || (prev[0] && strcmp(prev, name) >= 0)) {
            free(b.p);
            fail(why, whylen, "SignedHeaders must be lower-case names in order, without duplicates");
            return NULL;
        }
        snprintf(prev, sizeof prev, "%s", name);
        const char *v = header(ctx, name);
        if (!v) {
            free(b.p);
            snprintf(why, whylen, "Signed header %s is not in the request", name);
            return NULL;
        }
        sb_str(&b, name);
        sb_str(&b, ":");
        canonical_value(&b, v);
        sb_str(&b, "\n");
    }
    sb_str(&b, "\n");
    sb_str(&b, signed_headers);
    sb_str(&b, "\n");
    sb_str(&b, payload_hash_hex);
    return b.p;
}

void gw_sigv4_sha256_hex(const void *p, size_t n, char hex[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

char *gw_sigv4_string_to_sign(const char *amz_date, const struct gw_sigv4_auth *a,
                              const char *canonical_request)
{
    char h[65];
    gw_sigv4_sha256_hex(canonical_request, strlen(canonical_request), h);
    size_t n = 64 + strlen(amz_date) + strlen(a->date) + strlen(a->region) +
               strlen(a->service) + 80;
    char *s = xmalloc(n);
    snprintf(s, n, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, a->date,
             a->region, a->service, h);
    return s;
}

static void hmac(const void *key, size_t klen, const char *msg, uint8_t out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len);
}

void gw_sigv4_signing_key(const char *secret, const char *date, const char *region,
                          const char *service, uint8_t key[32])
{
    size_t n = strlen(secret) + 5;
    char *k = xmalloc(n);
    snprintf(k, n, "AWS4%s", secret);
    uint8_t a[32], b[32];
    hmac(k, strlen(k), date, a);
    OPENSSL_cleanse(k, n);
    free(k);
    hmac(a, 32, region, b);
    hmac(b, 32, service, a);
    hmac(a, 32, "aws4_request", key);
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
}

void gw_sigv4_sign(const uint8_t key[32], const char *string_to_sign, char hex[65])
{
    uint8_t sig[32];
    hmac(key, 32, string_to_sign, sig);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sig[i]);
}

bool gw_sigv4_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

int gw_sigv4_parse_query(gw_sigv4_query_fn get, void *ctx, struct gw_sigv4_auth *out,
                         char amz_date[17], long *expires_s, char *why, size_t whylen)
{
    const char *alg = get(ctx, "X-Amz-Algorithm"), *cred = get(ctx, "X-Amz-Credential");
    const char *date = get(ctx, "X-Amz-Date"), *sh = get(ctx, "X-Amz-SignedHeaders");
    const char *sig = get(ctx, "X-Amz-Signature"), *exp = get(ctx, "X-Amz-Expires");
    if (!alg || strcmp(alg, "AWS4-HMAC-SHA256") != 0 || !cred || !date || !sh || !sig || !exp)
        return fail(why, whylen,
                    "A presigned request needs X-Amz-Algorithm=AWS4-HMAC-SHA256, "
                    "X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Expires and "
                    "X-Amz-Signature");
    if (strlen(date) != 16)
        return fail(why, whylen, "X-Amz-Date must be yyyymmddThhmmssZ");
    memcpy(amz_date, date, 17);
    char *end;
    long e = strtol(exp, &end, 10);
    if (!*exp || *end || e < 1 || e > 604800)
        return fail(why, whylen, "X-Amz-Expires must be 1..604800 seconds");
    *expires_s = e;
    /* The same fields as the header form, then the same checks. */
    char header[2048];
    int n = snprintf(header, sizeof header,
                     "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s", cred, sh,
                     sig);
    if (n < 0 || (size_t)n >= sizeof header)
        return fail(why, whylen, "presigned parameters too long");
    return gw_sigv4_parse(header, out, why, whylen);
}
