/* error.h - Kinesis errors carried as values.
 *
 * The code that detects a problem fills a struct gw_error and returns -1;
 * callers pass -1 up without rewriting it (the first error set is kept). Only
 * error.c turns an error into an HTTP status and a {"__type","message"} body,
 * so handlers can be tested without a socket. */
#ifndef SLUICE_GW_ERROR_H
#define SLUICE_GW_ERROR_H

#include <stdarg.h>
#include <stdbool.h>

/* Keep in step with the table in error.c. */
enum gw_errtype {
    GW_ERR_NONE = 0,
    GW_ERR_INVALID_ARGUMENT,
    GW_ERR_RESOURCE_NOT_FOUND,
    GW_ERR_RESOURCE_IN_USE,
    GW_ERR_LIMIT_EXCEEDED,
    GW_ERR_PROVISIONED_THROUGHPUT_EXCEEDED,
    GW_ERR_EXPIRED_ITERATOR,
    GW_ERR_EXPIRED_NEXT_TOKEN,
    GW_ERR_VALIDATION,
    GW_ERR_SERIALIZATION,
    GW_ERR_UNKNOWN_OPERATION,
    GW_ERR_MISSING_AUTH_TOKEN,
    GW_ERR_INCOMPLETE_SIGNATURE,
    GW_ERR_ACCESS_DENIED,
    GW_ERR_UNRECOGNIZED_CLIENT,
    GW_ERR_INVALID_SIGNATURE,
    GW_ERR_MISDIRECTED,            /* 421: Host not served here (DNS rebinding guard) */
    GW_ERR_REST_MEDIA_TYPE,        /* 415: a REST POST without a non-simple Content-Type */
    GW_ERR_INTERNAL_FAILURE,
    GW_ERR_SERVICE_UNAVAILABLE,
    /* Transport-level errors of the REST door and of HTTP itself. */
    GW_ERR_NOT_FOUND,              /* 404: no such REST route */
    GW_ERR_METHOD_NOT_ALLOWED,     /* 405 */
    GW_ERR_UNSUPPORTED_MEDIA_TYPE, /* 404 UnknownOperationException on the Kinesis door */
    GW_ERR_BAD_REQUEST,            /* 400: malformed HTTP */
    GW_ERR_REQUEST_TIMEOUT,        /* 408 */
    GW_ERR_BODY_TOO_LARGE,         /* 413 */
    GW_ERR_HEADERS_TOO_LARGE,      /* 431 */
    GW_ERR__COUNT
};

struct gw_error {
    enum gw_errtype type;
    char message[4096]; /* long enough to echo every value of a ValidationException */
};

/* Sets "err" unless it already holds an error; printf-style message.
 * Returns -1 so detectors can write `return gw_error_set(...)`. "err" may be
 * NULL (the error is then dropped). */
int gw_error_set(struct gw_error *err, enum gw_errtype type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* gw_error_set() for helpers that take their own printf-style arguments. */
int gw_error_vset(struct gw_error *err, enum gw_errtype type, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static inline void gw_error_clear(struct gw_error *err) { err->type = GW_ERR_NONE; err->message[0] = '\0'; }
static inline bool gw_error_isset(const struct gw_error *err) { return err->type != GW_ERR_NONE; }

/* The wire name ("__type") and the HTTP status of an error type. */
const char *gw_error_name(enum gw_errtype type);
int gw_error_status(enum gw_errtype type);

/* Returns a new NUL-terminated JSON body {"__type":..,"message":..} for "err"
 * (gw_reply_error_body's JSON), for replies written without a request
 * object (HTTP/1.1 framing errors); the caller frees it. Replies to a request
 * use gw_reply_error (reply.h). */
char *gw_error_json(const struct gw_error *err);

#endif
