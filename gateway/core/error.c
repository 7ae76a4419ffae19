/* error.c - the Kinesis error table: wire name and HTTP status per type.
 *
 * Every modeled Kinesis error is a client fault and answers 400; the server
 * faults are InternalFailure (500) and ServiceUnavailable (503). The transport
 * rows (404/405/408/413/431) are for the REST door and for HTTP framing
 * errors; their bodies keep the same {"__type","message"} shape, written by
 * the reply writer (reply.h). */
#include "error.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "mem.h"
#include "reply.h"

static const struct {
    const char *name;
    int status;
} table[GW_ERR__COUNT] = {
    [GW_ERR_NONE] = {"InternalFailure", 500},
    [GW_ERR_INVALID_ARGUMENT] = {"InvalidArgumentException", 400},
    [GW_ERR_RESOURCE_NOT_FOUND] = {"ResourceNotFoundException", 400},
    [GW_ERR_RESOURCE_IN_USE] = {"ResourceInUseException", 400},
    [GW_ERR_LIMIT_EXCEEDED] = {"LimitExceededException", 400},
    [GW_ERR_PROVISIONED_THROUGHPUT_EXCEEDED] = {"ProvisionedThroughputExceededException", 400},
    [GW_ERR_EXPIRED_ITERATOR] = {"ExpiredIteratorException", 400},
    [GW_ERR_EXPIRED_NEXT_TOKEN] = {"ExpiredNextTokenException", 400},
    [GW_ERR_VALIDATION] = {"ValidationException", 400},
    [GW_ERR_SERIALIZATION] = {"SerializationException", 400},
    [GW_ERR_UNKNOWN_OPERATION] = {"UnknownOperationException", 400},
    [GW_ERR_MISSING_AUTH_TOKEN] = {"MissingAuthenticationTokenException", 400},
    [GW_ERR_INCOMPLETE_SIGNATURE] = {"IncompleteSignatureException", 400},
    [GW_ERR_ACCESS_DENIED] = {"AccessDeniedException", 400},
    [GW_ERR_UNRECOGNIZED_CLIENT] = {"UnrecognizedClientException", 400},
    [GW_ERR_INVALID_SIGNATURE] = {"InvalidSignatureException", 400},
    [GW_ERR_MISDIRECTED] = {"MisdirectedRequest", 421},
    [GW_ERR_REST_MEDIA_TYPE] = {"UnsupportedMediaType", 415},
    [GW_ERR_INTERNAL_FAILURE] = {"InternalFailure", 500},
    [GW_ERR_SERVICE_UNAVAILABLE] = {"ServiceUnavailable", 503},
    [GW_ERR_NOT_FOUND] = {"NotFoundException", 404},
    [GW_ERR_METHOD_NOT_ALLOWED] = {"MethodNotAllowedException", 405},
    /* Kinesis (and kinesalite/kinesis-mock) answer an unsupported content
     * type on the Kinesis door as 404 UnknownOperationException. */
    [GW_ERR_UNSUPPORTED_MEDIA_TYPE] = {"UnknownOperationException", 404},
    [GW_ERR_BAD_REQUEST] = {"SerializationException", 400},
    [GW_ERR_REQUEST_TIMEOUT] = {"RequestTimeoutException", 408},
    [GW_ERR_BODY_TOO_LARGE] = {"RequestEntityTooLargeException", 413},
    [GW_ERR_HEADERS_TOO_LARGE] = {"RequestHeaderFieldsTooLargeException", 431},
};

int gw_error_vset(struct gw_error *err, enum gw_errtype type, const char *fmt, va_list ap)
{
    if (!err || err->type != GW_ERR_NONE)
        return -1;
    err->type = type;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    return -1;
}

int gw_error_set(struct gw_error *err, enum gw_errtype type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_error_vset(err, type, fmt, ap);
    va_end(ap);
    return -1;
}

const char *gw_error_name(enum gw_errtype type)
{
    return (unsigned)type < GW_ERR__COUNT ? table[type].name : "InternalFailure";
}

int gw_error_status(enum gw_errtype type)
{
    return (unsigned)type < GW_ERR__COUNT ? table[type].status : 500;
}

char *gw_error_json(const struct gw_error *err)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        abort();
    struct gw_reply w;
    gw_reply_init_json(&w, b);
    gw_reply_error_body(&w, err);
    gw_reply_finish(&w);
    size_t n = evbuffer_get_length(b);
    char *s = xmalloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}
