/* log.c - JSON-lines logger (see log.h). Lines are built in a stack buffer
 * and written with one write(2) so lines from the syncer thread and the loop
 * never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum gw_log_level gw_log_min = GW_LOG_INFO;

static const char *const names[] = {"debug", "info", "warn", "error"};

int gw_log_level_parse(const char *s, enum gw_log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum gw_log_level)i;
            return 0;
        }
    if (strcmp(s, "warning") == 0) {
        *out = GW_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *gw_log_level_name(enum gw_log_level l)
{
    return (unsigned)l < 4 ? names[l] : "?";
}

struct line {
    char buf[2048];
    size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > sizeof l->buf - 8 - l->len)
        n = sizeof l->buf - 8 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Appends "s" as the inside of a JSON string. */
static void put_escaped(struct line *l, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        if (*p == '"' || *p == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*p;
            put(l, tmp, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            int n = snprintf(tmp, sizeof tmp, "\\u%04x", *p);
            put(l, tmp, (size_t)n);
        } else {
            put(l, (const char *)p, 1);
        }
    }
}

static void put_field(struct line *l, const char *k, const char *v)
{
    put(l, ",\"", 2);
    put_escaped(l, k);
    put(l, "\":\"", 3);
    put_escaped(l, v);
    put(l, "\"", 1);
}

static void begin(struct line *l, enum gw_log_level level, const char *event)
{
    struct timeval tv;
    struct tm tm;
    char ts[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    l->len = 0;
    put(l, "{\"ts\":\"", 7);
    put(l, ts, strlen(ts));
    put(l, "\",\"level\":\"", 11);
    put(l, gw_log_level_name(level), strlen(gw_log_level_name(level)));
    put(l, "\"", 1);
    put_field(l, "event", event);
}

static void end(struct line *l)
{
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    ssize_t r = write(STDERR_FILENO, l->buf, l->len);
    (void)r; /* nowhere to report a failed log write */
}

void gw_log_write(enum gw_log_level level, const char *event, const char *fmt, ...)
{
    struct line l;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    begin(&l, level, event);
    put_field(&l, "msg", msg);
    end(&l);
}

void gw_log_fields(enum gw_log_level level, const char *event, ...)
{
    if (level < gw_log_min)
        return;
    struct line l;
    va_list ap;
    begin(&l, level, event);
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        put_field(&l, k, v ? v : "");
    }
    va_end(ap);
    end(&l);
}
