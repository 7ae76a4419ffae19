/* json.c - request/response bodies at the edge and Kinesis-style member
 * validation (see json.h). */
#include "json.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cbor.h"
#include "mem.h"
#include "reply.h"

/* ---- bodies ------------------------------------------------------------------ */

bool gw_body_is_cbor(const struct gw_req *req)
{
    return gw_reply_format_of(req) == GW_REPLY_CBOR;
}

int gw_body_decode(struct gw_req *req, json_t **out, struct gw_error *err)
{
    size_t len;
    const uint8_t *body = gw_req_body(req, &len);
    *out = NULL;
    if (len == 0)
        return gw_error_set(err, GW_ERR_SERIALIZATION, "The request body is empty");
    if (gw_body_is_cbor(req)) {
        char why[200];
        struct gw_cbor_opts o = {.kind = gw_cbor_kinesis_kind};
        if (gw_cbor_decode(body, len, &o, out, why, sizeof why) != 0)
            return gw_error_set(err, GW_ERR_SERIALIZATION, "Malformed CBOR request body: %s", why);
        return 0;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return gw_error_set(err, GW_ERR_SERIALIZATION,
                            "Malformed JSON request body at line %d column %d: %s", je.line,
                            je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return gw_error_set(err, GW_ERR_SERIALIZATION,
                            "The request body must be a JSON object");
    }
    *out = root;
    return 0;
}

void gw_body_reply(struct gw_req *req, const json_t *out)
{
    struct gw_reply w;
    gw_reply_init(&w, req);
    if (out)
        gw_reply_tree(&w, out);
    gw_reply_send(&w, 200);
}

void gw_body_error(struct gw_req *req, const struct gw_error *err)
{
    gw_reply_error(req, err);
}

json_t *gw_json_time(int64_t ms)
{
    return json_real((double)ms / 1000.0);
}

/* ---- validation ------------------------------------------------------------------- */

void gw_valid_init(struct gw_valid *v, struct gw_error *err)
{
    v->err = err;
    v->count = 0;
    v->len = 0;
    v->msg[0] = '\0';
}

void gw_valid_add(struct gw_valid *v, const char *value, const char *path, const char *fmt, ...)
{
    v->count++;
    if (v->count > 10)
        return; /* the service lists at most ten */
    char constraint[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(constraint, sizeof constraint, fmt, ap);
    va_end(ap);
    /* Values are echoed in full, as the service does; every value here is
     * bounded by a limit checked before (header and body caps). */
    char value_text[1200];
    if (value) {
        snprintf(value_text, sizeof value_text, "'%s'", value);
    } else {
        snprintf(value_text, sizeof value_text, "null");
    }
    int w = snprintf(v->msg + v->len, sizeof v->msg - v->len,
                     "%sValue %s at '%s' failed to satisfy constraint: Member must %s",
                     v->count > 1 ? "; " : "", value_text, path, constraint);
    if (w > 0)
        v->len = v->len + (size_t)w >= sizeof v->msg ? sizeof v->msg - 1 : v->len + (size_t)w;
}

int gw_valid_done(struct gw_valid *v)
{
    if (v->count == 0)
        return 0;
    return gw_error_set(v->err, GW_ERR_VALIDATION, "%d validation error%s detected: %s", v->count,
                        v->count == 1 ? "" : "s", v->msg);
}

bool gw_match_name(const char *s)
{
    if (!*s)
        return false;
    /* ASCII only, whatever the locale (isalnum would follow it). */
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool match_decimal(const char *s, size_t max_digits)
{
    if (strcmp(s, "0") == 0)
        return true;
    if (*s < '1' || *s > '9')
        return false;
    size_t n = 0;
    for (; *s; s++, n++)
        if (*s < '0' || *s > '9')
            return false;
    return n <= max_digits;
}

bool gw_match_hashkey(const char *s) { return match_decimal(s, 39); }
bool gw_match_seqnum(const char *s) { return match_decimal(s, 129); }

static bool regex_match(regex_t *re, bool *ready, const char *pattern, const char *s)
{
    if (!*ready) {
        if (regcomp(re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
            return false;
        *ready = true;
    }
    return regexec(re, s, 0, NULL, 0) == 0;
}

bool gw_match_stream_arn(const char *s)
{
    static regex_t re;
    static bool ready;
    return regex_match(&re, &ready, "^arn:aws.*:kinesis:.*:[0-9]{12}:stream/.+$", s);
}

bool gw_match_consumer_arn(const char *s)
{
    static regex_t re;
    static bool ready;
    return regex_match(&re, &ready,
                       "^(arn):aws.*:kinesis:.*:[0-9]{12}:.*stream/[a-zA-Z0-9_.-]+/consumer/"
                       "[a-zA-Z0-9_.-]+:[0-9]+",
                       s);
}

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static int wrong_type(struct gw_valid *v, const char *key, const json_t *j, const char *want)
{
    return gw_error_set(v->err, GW_ERR_SERIALIZATION, "%s must be %s, not %s", key, want,
                        type_name(j));
}

/* Looks up "key"; JSON null counts as absent (SDKs may send it). */
static json_t *member(json_t *obj, const char *key)
{
    json_t *j = json_object_get(obj, key);
    return j && !json_is_null(j) ? j : NULL;
}

static void missing(struct gw_valid *v, const char *path)
{
    gw_valid_add(v, NULL, path, "not be null");
}

/* The member "key", or NULL when absent or null (recorded as a violation
 * when GW_V_REQUIRED): the start of every gw_v_* check. */
static json_t *field(struct gw_valid *v, json_t *obj, const char *key, const char *path,
                     unsigned flags)
{
    json_t *j = member(obj, key);
    if (!j && (flags & GW_V_REQUIRED))
        missing(v, path);
    return j;
}

int gw_v_str(struct gw_valid *v, json_t *obj, const char *key, const char *path, unsigned flags,
             size_t min, size_t max, const char *pattern, bool (*match)(const char *),
             const char **out)
{
    *out = NULL;
    json_t *j = field(v, obj, key, path, flags);
    if (!j)
        return 0;
    if (!json_is_string(j))
        return wrong_type(v, key, j, "a string");
    const char *s = json_string_value(j);
    size_t chars = gw_utf8_chars(s, json_string_length(j));
    bool ok = true;
    if (chars < min) {
        gw_valid_add(v, s, path, "have length greater than or equal to %zu", min);
        ok = false;
    }
    if (chars > max) {
        gw_valid_add(v, s, path, "have length less than or equal to %zu", max);
        ok = false;
    }
    /* The pattern is a separate constraint: an empty name breaks both. */
    if (match && strlen(s) != json_string_length(j)) {
        gw_valid_add(v, s, path, "satisfy regular expression pattern: %s", pattern);
        ok = false;
    } else if (match && !match(s)) {
        gw_valid_add(v, s, path, "satisfy regular expression pattern: %s", pattern);
        ok = false;
    }
    if (ok)
        *out = s;
    return 0;
}

int gw_v_int(struct gw_valid *v, json_t *obj, const char *key, const char *path, unsigned flags,
             int64_t min, int64_t max, int64_t *out, bool *present)
{
    if (present)
        *present = false;
    json_t *j = field(v, obj, key, path, flags);
    if (!j)
        return 0;
    int64_t x;
    if (json_is_integer(j)) {
        x = json_integer_value(j);
    } else if (json_is_real(j)) {
        double d = json_real_value(j);
        if (!isfinite(d) || d > 9.2e18 || d < -9.2e18)
            return wrong_type(v, key, j, "an integer");
        x = (int64_t)d; /* truncated, as the service does */
    } else {
        return wrong_type(v, key, j, "an integer");
    }
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)x);
    if (x < min) {
        gw_valid_add(v, text, path, "have value greater than or equal to %lld", (long long)min);
        return 0;
    }
    if (x > max) {
        gw_valid_add(v, text, path, "have value less than or equal to %lld", (long long)max);
        return 0;
    }
    *out = x;
    if (present)
        *present = true;
    return 0;
}

int gw_v_bool(struct gw_valid *v, json_t *obj, const char *key, const char *path, bool *out,
              bool *present)
{
    if (present)
        *present = false;
    json_t *j = member(obj, key);
    if (!j)
        return 0;
    if (!json_is_boolean(j))
        return wrong_type(v, key, j, "a boolean");
    *out = json_is_true(j);
    if (present)
        *present = true;
    return 0;
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z" (or "+00:00"); returns 0 or -1. */
static int parse_iso8601(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0 && *p != '\0')
        return -1;
    time_t t = timegm(&tm);
    *ms = (int64_t)t * 1000 + frac;
    return 0;
}

int gw_v_time(struct gw_valid *v, json_t *obj, const char *key, const char *path,
              unsigned flags, int64_t *ms, bool *present)
{
    if (present)
        *present = false;
    json_t *j = field(v, obj, key, path, flags);
    if (!j)
        return 0;
    if (json_is_number(j)) {
        double sec = json_number_value(j);
        if (!isfinite(sec) || fabs(sec) > 1e14)
            return gw_error_set(v->err, GW_ERR_SERIALIZATION, "%s is not a valid timestamp", key);
        *ms = (int64_t)llround(sec * 1000.0);
    } else if (json_is_string(j)) {
        if (parse_iso8601(json_string_value(j), ms) != 0)
            return gw_error_set(v->err, GW_ERR_SERIALIZATION,
                                "%s is not a valid timestamp: '%s'", key, json_string_value(j));
    } else {
        return wrong_type(v, key, j, "a timestamp");
    }
    if (present)
        *present = true;
    return 0;
}

int gw_v_enum(struct gw_valid *v, json_t *obj, const char *key, const char *path,
              unsigned flags, const char *const *values, int *out)
{
    *out = -1;
    const char *s;
    if (gw_v_str(v, obj, key, path, flags, 0, SIZE_MAX, NULL, NULL, &s) != 0)
        return -1;
    if (!s)
        return 0;
    for (int i = 0; values[i]; i++)
        if (strcmp(values[i], s) == 0) {
            *out = i;
            return 0;
        }
    char set[512] = "";
    for (int i = 0; values[i]; i++) {
        strncat(set, i ? ", " : "", sizeof set - strlen(set) - 1);
        strncat(set, values[i], sizeof set - strlen(set) - 1);
    }
    gw_valid_add(v, s, path, "satisfy enum value set: [%s]", set);
    return 0;
}

int gw_v_object(struct gw_valid *v, json_t *obj, const char *key, const char *path,
                unsigned flags, json_t **out)
{
    *out = NULL;
    json_t *j = field(v, obj, key, path, flags);
    if (!j)
        return 0;
    if (!json_is_object(j))
        return wrong_type(v, key, j, "an object");
    *out = j;
    return 0;
}

int gw_v_array(struct gw_valid *v, json_t *obj, const char *key, const char *path,
               unsigned flags, size_t min, size_t max, json_t **out)
{
    *out = NULL;
    json_t *j = field(v, obj, key, path, flags);
    if (!j)
        return 0;
    if (!json_is_array(j))
        return wrong_type(v, key, j, "an array");
    size_t n = json_array_size(j);
    char text[32];
    snprintf(text, sizeof text, n ? "[%zu items]" : "[]", n);
    if (n < min) {
        gw_valid_add(v, text, path, "have length greater than or equal to %zu", min);
        return 0;
    }
    if (n > max) {
        gw_valid_add(v, text, path, "have length less than or equal to %zu", max);
        return 0;
    }
    *out = j;
    return 0;
}

int gw_v_blob(struct gw_valid *v, struct gw_req *req, json_t *obj, const char *key,
              const char *path, unsigned flags, size_t max, const uint8_t **data, size_t *len,
              bool *present)
{
    *data = NULL;
    *len = 0;
    if (present)
        *present = false;
    json_t *j = field(v, obj, key, path, flags);
    if (!j)
        return 0;
    if (!json_is_string(j))
        return wrong_type(v, key, j, "a base64 string");
    const char *s = json_string_value(j);
    size_t slen = json_string_length(j);
    size_t need = gw_base64_decoded_len(s, slen);
    if (need > max) {
        /* The service reports blobs the way its Java ByteBuffer prints. */
        char text[96];
        snprintf(text, sizeof text, "java.nio.HeapByteBuffer[pos=0 lim=%zu cap=%zu]", need, need);
        gw_valid_add(v, text, path, "have length less than or equal to %zu", max);
        return 0;
    }
    uint8_t *buf = gw_req_alloc(req, need + 1);
    long n = gw_base64_decode(s, slen, buf, need);
    if (n < 0)
        return gw_error_set(v->err, GW_ERR_SERIALIZATION,
                            "%s is not valid base64 (standard alphabet, padded)", key);
    *data = buf;
    *len = (size_t)n;
    if (present)
        *present = true;
    return 0;
}
