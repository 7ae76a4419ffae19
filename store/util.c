/* util.c - allocation, error values, logging and the default I/O seam.
 *
 * Shared by every store file. Allocation failure aborts (like h2o_mem_alloc):
 * every size that comes from a client is checked against a named limit in
 * store.h before we allocate. Everything else reports errors as values.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static void oom(size_t n)
{
    fprintf(stderr, "sluice store: out of memory allocating %zu bytes\n", n);
    abort();
}

void *store_i_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *store_i_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *store_i_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *store_i_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = store_i_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

int store_i_err_set(struct store_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int store_i_err_from_errno(int errnum)
{
    return (errnum == ENOSPC || errnum == EDQUOT) ? STORE_ENOSPC : STORE_EIO;
}

int store_i_err_errno(struct store_err *err, int errnum, const char *fmt, ...)
{
    int code = store_i_err_from_errno(errnum);
    if (err) {
        char buf[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        err->code = code;
        snprintf(err->msg, sizeof err->msg, "%s: %s", buf, strerror(errnum));
    }
    return code;
}

void store_i_logv(store_log_fn fn, void *arg, enum store_log_level lvl, const char *fmt,
                  va_list ap)
{
    if (!fn)
        return;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    fn(arg, lvl, buf);
}

void store_i_log(struct store *s, enum store_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    store_i_logv(s->opts.log, s->opts.log_arg, lvl, fmt, ap);
    va_end(ap);
}

int64_t store_i_now(struct store *s)
{
    if (s->opts.clock)
        return s->opts.clock(s->opts.clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t real_write(void *ctx, int fd, const void *buf, size_t len)
{
    (void)ctx;
    return write(fd, buf, len);
}

static int real_fsync(void *ctx, int fd)
{
    (void)ctx;
    return fdatasync(fd);
}

const struct store_io_ops store_i_default_io = {real_write, real_fsync, NULL};

int store_i_io_write_all(const struct store_io_ops *io, int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        errno = 0;
        ssize_t w = io->write(io->ctx, fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno ? errno : EIO;
        }
        if (w == 0)
            return EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}
