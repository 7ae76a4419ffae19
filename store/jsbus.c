/* jsbus.c - the store's link to NATS JetStream: libnats threads in, loop
 * thread out (see jsbus.h for the contract).
 *
 * Upstream: the jetstream backend of the store (store_open, the loop's
 * dispatch). Downstream: libnats 3.4 (<nats/nats.h>).
 *
 * Threads and who owns what:
 *
 *   loop thread   the pending-request map, the "immediate failure" list,
 *                 each follow's "last" sequence; runs every callback.
 *   libnats       a reply subscription ("<inbox>.*", one for all async
 *                 requests) and one ordered-consumer subscription per follow;
 *                 their delivery threads only queue (the natsMsg itself, no
 *                 copy) and write the eventfd. Connection events (disconnect,
 *                 reconnect, async errors) arrive on libnats' global callback
 *                 thread and become queued log lines.
 *   worker        creates ordered consumers (js_Subscribe blocks on a
 *                 JetStream API round trip, which the loop must not wait for),
 *                 retries them, and tears them down after jsbus_unfollow.
 *   ticker        writes the eventfd every TICK_MS while requests are
 *                 pending, so timeouts fire without other traffic.
 *
 * b->mu guards the event queue, the follow list and everything in a follow
 * marked "under mu". A follow is reference-counted under mu: one reference
 * for the loop (dropped by jsbus_unfollow), one for the worker while it has
 * no subscription, which passes to the subscription and is dropped by its
 * on-complete callback (libnats calls it after the last message callback has
 * returned, so a follow is never freed under a running callback). The bus
 * itself waits in jsbus_close for every subscription's on-complete.
 *
 * Connection callbacks may run after natsConnection_Close returned (libnats
 * posts them to its global thread and does not wait), so their closure is not
 * the bus but its id, looked up in a process-wide registry that jsbus_close
 * leaves before it frees anything.
 */
#include "jsbus.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_TIMEOUT_MS 5000
#define TICK_MS 50
#define RECONNECT_WAIT_MS 250
#define JS_API_WAIT_MS 5000
#define FOLLOW_HEARTBEAT_MS 1000
#define FOLLOW_RETRY_MS 1000
/* jsbus_close waits this long for libnats to finish with our subscriptions;
 * past it the objects are leaked rather than freed under a running thread. */
#define CLOSE_WAIT_MS 15000

/* ======================================================================== */
/* Small helpers                                                            */
/* ======================================================================== */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_ts(struct timespec *ts, int64_t ms_from_now)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms_from_now / 1000;
    ts->tv_nsec += (ms_from_now % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* libnats' thread-local error text for the last failure, or its status text. */
static const char *nats_err_text(natsStatus s)
{
    const char *t = nats_GetLastError(NULL);
    return (t && *t) ? t : natsStatus_GetText(s);
}

/* ======================================================================== */
/* Types                                                                    */
/* ======================================================================== */

enum ev_kind { EV_REPLY, EV_LOG };

/* Work queued by a NATS thread for the loop. */
struct ev {
    struct ev *next;
    enum ev_kind kind;
    natsMsg *msg;              /* EV_REPLY: taken */
    enum store_log_level level; /* EV_LOG */
    char *text;                /* EV_LOG: taken */
};

/* A pending async request (loop thread only). */
struct req {
    struct req *next; /* hash chain, or the immediate list */
    uint64_t id;
    int64_t deadline; /* mono ms */
    jsbus_reply_fn cb;
    void *arg;
    char subject[64]; /* for error texts; may be truncated */
    struct store_err err; /* immediate failures only */
};

struct reqmap {
    struct req **slot;
    size_t mask, n;
};

/* One message waiting for the loop. */
struct fq_ent {
    natsMsg *m;
    uint64_t seq;
    int64_t ts;
    size_t size;
};

enum follow_state {
    F_NEED_SUB, /* the worker should (re)try js_Subscribe */
    F_ACTIVE,   /* subscribed; "sub" set */
    F_TEARING,  /* the worker unsubscribed; waiting for on-complete */
    F_DONE      /* no subscription and none to come */
};

struct jsbus_follow {
    struct jsbus *b;
    char *stream, *filter;
    uint64_t start_seq;
    jsbus_deliver_fn cb;
    void *arg;

    /* loop thread */
    uint64_t last;
    int unfollowed;
    uint64_t delivered, dropped;

    /* under mu */
    struct jsbus_follow *prev, *next;
    int refs;
    int stop;
    enum follow_state state;
    natsSubscription *sub;
    int64_t retry_at;
    unsigned fails;
    uint64_t subscribes;
    unsigned round;
    struct fq_ent *ring; /* queued, not yet taken by dispatch */
    size_t ring_cap, ring_head, ring_n;
    size_t acct_msgs, acct_bytes; /* ring + the batch being delivered */
    size_t peak_msgs, peak_bytes;
    pthread_cond_t space;

    /* read without mu by the delivery callback's fast path */
    atomic_int stopping;
};

struct jsbus {
    uint64_t id; /* registry key, the closure of connection callbacks */
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *inbox_sub;
    char *prefix; /* "_INBOX.<nuid>" */
    size_t prefix_len;
    int efd;
    store_log_fn log;
    void *log_arg;

    pthread_mutex_t mu;
    /* under mu */
    struct ev *ev_head, *ev_tail;
    int notified; /* the eventfd was written since the last dispatch began */
    int closing;
    struct jsbus_follow *follows;
    int subs_live; /* subscriptions whose on-complete has not run */
    pthread_cond_t subs_cond, work_cond, tick_cond;

    /* loop thread */
    uint64_t next_id;
    struct reqmap pending;
    int64_t next_deadline;
    struct req *imm_head, *imm_tail;
    unsigned round;
    struct fq_ent *batch; /* JSBUS_FOLLOW_MAX_MSGS entries */
    int in_close;

    atomic_size_t npending; /* for the ticker */
    pthread_t worker, ticker;
    int threads;
};

/* ======================================================================== */
/* Registry: connection callbacks find their bus by id                     */
/* ======================================================================== */

struct reg_ent {
    struct reg_ent *next;
    uint64_t id;
    struct jsbus *b;
};
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct reg_ent *reg_head;
static uint64_t reg_next_id = 1;

static void reg_add(struct jsbus *b)
{
    struct reg_ent *e = store_i_xcalloc(1, sizeof *e);
    pthread_mutex_lock(&reg_mu);
    b->id = reg_next_id++;
    e->id = b->id;
    e->b = b;
    e->next = reg_head;
    reg_head = e;
    pthread_mutex_unlock(&reg_mu);
}

static void reg_remove(struct jsbus *b)
{
    pthread_mutex_lock(&reg_mu);
    for (struct reg_ent **p = &reg_head; *p; p = &(*p)->next) {
        if ((*p)->b == b) {
            struct reg_ent *e = *p;
            *p = e->next;
            free(e);
            break;
        }
    }
    pthread_mutex_unlock(&reg_mu);
}

/* Returns the bus with "id" with reg_mu held (NULL, and unlocked, if gone).
 * The caller unlocks reg_mu when done; jsbus_close cannot free it meanwhile. */
static struct jsbus *reg_lookup_lock(void *closure)
{
    uint64_t id = (uint64_t)(uintptr_t)closure;
    pthread_mutex_lock(&reg_mu);
    for (struct reg_ent *e = reg_head; e; e = e->next)
        if (e->id == id)
            return e->b;
    pthread_mutex_unlock(&reg_mu);
    return NULL;
}

/* ======================================================================== */
/* Queue and notification (NATS threads -> loop)                            */
/* ======================================================================== */

/* With mu held: make the eventfd readable unless it already is. */
static void notify_locked(struct jsbus *b)
{
    if (!b->notified) {
        uint64_t one = 1;
        b->notified = 1;
        /* EAGAIN means the counter is saturated: readable anyway. */
        ssize_t n = write(b->efd, &one, sizeof one);
        (void)n;
    }
}

static void push_ev_locked(struct jsbus *b, struct ev *e)
{
    e->next = NULL;
    if (b->ev_tail)
        b->ev_tail->next = e;
    else
        b->ev_head = e;
    b->ev_tail = e;
    notify_locked(b);
}

static void queue_log_locked(struct jsbus *b, enum store_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A log event for the loop to hand on (store_i_logv's sink). */
static void queue_log_line(void *arg, enum store_log_level lvl, const char *msg)
{
    struct jsbus *b = arg;
    struct ev *e = store_i_xcalloc(1, sizeof *e);
    e->kind = EV_LOG;
    e->level = lvl;
    e->text = store_i_xstrdup(msg);
    push_ev_locked(b, e);
}

static void queue_log_locked(struct jsbus *b, enum store_log_level lvl, const char *fmt, ...)
{
    if (!b->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    store_i_logv(queue_log_line, b, lvl, fmt, ap);
    va_end(ap);
}

/* Loop thread (open/close): log directly. */
static void log_now(struct jsbus *b, enum store_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_now(struct jsbus *b, enum store_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    store_i_logv(b->log, b->log_arg, lvl, fmt, ap);
    va_end(ap);
}

/* ---- libnats connection callbacks (libnats' global callback thread) ---- */

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    struct jsbus *b = reg_lookup_lock(closure);
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    if (!b->closing)
        queue_log_locked(b, STORE_LOG_WARN, "jsbus: disconnected from NATS; reconnecting");
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_unlock(&reg_mu);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    struct jsbus *b = reg_lookup_lock(closure);
    if (!b)
        return;
    char url[256] = "";
    if (natsConnection_GetConnectedUrl(nc, url, sizeof url) != NATS_OK)
        url[0] = 0;
    pthread_mutex_lock(&b->mu);
    queue_log_locked(b, STORE_LOG_INFO, "jsbus: reconnected to %s", url[0] ? url : "NATS");
    /* follows waiting for a connection can be retried now */
    pthread_cond_signal(&b->work_cond);
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_unlock(&reg_mu);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
    (void)nc;
    (void)sub;
    struct jsbus *b = reg_lookup_lock(closure);
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    /* Missed heartbeats and ordered-consumer re-creation failures are
     * retried by libnats itself; they are worth a line, not an error. */
    if (!b->closing)
        queue_log_locked(b, STORE_LOG_WARN, "jsbus: NATS async error: %s", natsStatus_GetText(s));
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_unlock(&reg_mu);
}

/* ---- reply subscription (its delivery thread) ---- */

static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    struct jsbus *b = closure;
    struct ev *e = store_i_xcalloc(1, sizeof *e);
    e->kind = EV_REPLY;
    e->msg = msg;
    pthread_mutex_lock(&b->mu);
    push_ev_locked(b, e);
    pthread_mutex_unlock(&b->mu);
}

static void on_inbox_complete(void *closure)
{
    struct jsbus *b = closure;
    pthread_mutex_lock(&b->mu);
    b->subs_live--;
    pthread_cond_broadcast(&b->subs_cond);
    pthread_mutex_unlock(&b->mu);
}

/* ======================================================================== */
/* Pending requests (loop thread)                                           */
/* ======================================================================== */

static void map_put(struct reqmap *m, struct req *r)
{
    if (!m->slot || m->n + 1 > m->mask + 1) {
        size_t cap = m->slot ? (m->mask + 1) * 2 : 64;
        struct req **slot = store_i_xcalloc(cap, sizeof *slot);
        for (size_t i = 0; m->slot && i <= m->mask; i++) {
            struct req *q = m->slot[i];
            while (q) {
                struct req *nx = q->next;
                q->next = slot[q->id & (cap - 1)];
                slot[q->id & (cap - 1)] = q;
                q = nx;
            }
        }
        free(m->slot);
        m->slot = slot;
        m->mask = cap - 1;
    }
    /* ids are a counter: the low bits spread them evenly */
    size_t i = r->id & m->mask;
    r->next = m->slot[i];
    m->slot[i] = r;
    m->n++;
}

static struct req *map_take(struct reqmap *m, uint64_t id)
{
    if (!m->slot)
        return NULL;
    for (struct req **p = &m->slot[id & m->mask]; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            struct req *r = *p;
            *p = r->next;
            r->next = NULL;
            m->n--;
            return r;
        }
    }
    return NULL;
}

static void fire_err(struct req *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fire_err(struct req *r, int code, const char *fmt, ...)
{
    struct store_err e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    r->cb(r->arg, NULL, &e);
    free(r);
}

/* A reply arrived for "msg"'s request: run its callback (unknown ids are
 * late replies to requests that timed out: dropped). Takes "msg". */
static void handle_reply(struct jsbus *b, natsMsg *msg)
{
    const char *subj = natsMsg_GetSubject(msg);
    struct req *r = NULL;
    if (strncmp(subj, b->prefix, b->prefix_len) == 0 && subj[b->prefix_len] == '.') {
        char *end;
        errno = 0;
        unsigned long long id = strtoull(subj + b->prefix_len + 1, &end, 10);
        if (errno == 0 && *end == 0)
            r = map_take(&b->pending, id);
    }
    if (!r) {
        natsMsg_Destroy(msg);
        return;
    }
    atomic_fetch_sub(&b->npending, 1);
    const char *status = NULL;
    if (natsMsg_IsNoResponders(msg)) {
        fire_err(r, STORE_EUNAVAIL, "no responders on %s", r->subject);
    } else if (natsMsgHeader_Get(msg, "Status", &status) == NATS_OK && status && *status) {
        const char *desc = NULL;
        if (natsMsgHeader_Get(msg, "Description", &desc) != NATS_OK || !desc)
            desc = "";
        fire_err(r, STORE_EUNAVAIL, "status %s%s%s from %s", status, *desc ? " " : "", desc,
                 r->subject);
    } else {
        struct jsbus_msg m = {
            .subject = subj,
            .data = (const uint8_t *)natsMsg_GetData(msg),
            .len = (size_t)natsMsg_GetDataLength(msg),
            ._priv = msg,
        };
        r->cb(r->arg, &m, NULL);
        free(r);
    }
    natsMsg_Destroy(msg);
}

/* Fires every pending request whose deadline passed. */
static void expire_requests(struct jsbus *b, int64_t now)
{
    if (b->pending.n == 0 || now < b->next_deadline)
        return;
    struct req *expired = NULL, **tail = &expired;
    int64_t next = INT64_MAX;
    for (size_t i = 0; i <= b->pending.mask; i++) {
        for (struct req **p = &b->pending.slot[i]; *p;) {
            struct req *r = *p;
            if (r->deadline <= now) {
                *p = r->next;
                r->next = NULL;
                *tail = r;
                tail = &r->next;
                b->pending.n--;
                atomic_fetch_sub(&b->npending, 1);
            } else {
                if (r->deadline < next)
                    next = r->deadline;
                p = &r->next;
            }
        }
    }
    b->next_deadline = next;
    /* callbacks may add requests: the map is consistent before the first runs */
    while (expired) {
        struct req *r = expired;
        expired = r->next;
        fire_err(r, STORE_EUNAVAIL, "timed out waiting for a reply from %s", r->subject);
    }
}

/* ======================================================================== */
/* Open / close                                                             */
/* ======================================================================== */

static void *ticker_main(void *arg);
static void *worker_main(void *arg);

int jsbus_open(const struct jsbus_opts *o, struct jsbus **out, struct store_err *err)
{
    *out = NULL;
    if (!o || !o->urls || !*o->urls)
        return store_i_err_set(err, STORE_EINVAL, "jsbus: no NATS URL");
    if (o->connect_timeout_ms < 0)
        return store_i_err_set(err, STORE_EINVAL, "jsbus: negative connect timeout");

    struct jsbus *b = store_i_xcalloc(1, sizeof *b);
    int rc = 0;
    natsStatus s;
    char **urls = NULL;
    int nurls = 0;
    b->log = o->log;
    b->log_arg = o->log_arg;
    b->next_id = 1;
    b->next_deadline = INT64_MAX;
    b->batch = store_i_xcalloc(JSBUS_FOLLOW_MAX_MSGS, sizeof *b->batch);
    pthread_mutex_init(&b->mu, NULL);
    cond_init_mono(&b->subs_cond);
    cond_init_mono(&b->work_cond);
    cond_init_mono(&b->tick_cond);
    b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->efd < 0) {
        rc = store_i_err_errno(err, errno, "jsbus: eventfd");
        goto fail;
    }
    reg_add(b);

    /* "a,b,c" -> servers; libnats wants an array */
    {
        char *copy = store_i_xstrdup(o->urls), *save = NULL;
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
            urls = store_i_xrealloc(urls, (size_t)(nurls + 1) * sizeof *urls);
            urls[nurls++] = store_i_xstrdup(t);
        }
        free(copy);
    }
    if (nurls == 0) {
        rc = store_i_err_set(err, STORE_EINVAL, "jsbus: no NATS URL in \"%s\"", o->urls);
        goto fail;
    }

    void *closure = (void *)(uintptr_t)b->id;
    int64_t cto = o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
    s = natsOptions_Create(&b->opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(b->opts, (const char **)urls, nurls);
    if (s == NATS_OK && o->name)
        s = natsOptions_SetName(b->opts, o->name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(b->opts, cto);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(b->opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(b->opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(b->opts, RECONNECT_WAIT_MS);
    /* libnats' default (2 min, 2 pings out) would notice a silently dead
     * server after minutes; a dead process is seen at once anyway (RST). */
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(b->opts, 5000);
    /* Each publish goes out at once: libnats' flusher otherwise waits up to
     * a millisecond for more, which a record's push latency would pay. The
     * store bounds publishes in flight, so the writes stay small. */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(b->opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(b->opts, on_disconnected, closure);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(b->opts, on_reconnected, closure);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(b->opts, on_async_error, closure);
    if (s == NATS_OK && o->creds)
        s = natsOptions_SetUserCredentialsFromFiles(b->opts, o->creds, NULL);
    if (s == NATS_OK && o->tls_ca) {
        s = natsOptions_SetSecure(b->opts, true);
        if (s == NATS_OK)
            s = natsOptions_LoadCATrustedCertificates(b->opts, o->tls_ca);
    }
    if (s != NATS_OK) {
        rc = store_i_err_set(err, STORE_EINVAL, "jsbus: bad NATS options: %s", nats_err_text(s));
        goto fail;
    }

    s = natsConnection_Connect(&b->nc, b->opts);
    if (s != NATS_OK) {
        b->nc = NULL;
        rc = store_i_err_set(err, STORE_EUNAVAIL, "jsbus: cannot connect to %s: %s", o->urls,
                             nats_err_text(s));
        goto fail;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JS_API_WAIT_MS;
    s = natsConnection_JetStream(&b->js, b->nc, &jo);
    natsInbox *inbox = NULL;
    if (s == NATS_OK)
        s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        b->prefix = store_i_xstrdup(inbox);
        b->prefix_len = strlen(b->prefix);
        natsInbox_Destroy(inbox);
        char wild[128];
        snprintf(wild, sizeof wild, "%s.*", b->prefix);
        s = natsConnection_Subscribe(&b->inbox_sub, b->nc, wild, on_reply, b);
    }
    if (s == NATS_OK) {
        /* never drop a reply: that would turn an answered request into a timeout */
        s = natsSubscription_SetPendingLimits(b->inbox_sub, -1, -1);
    }
    if (s == NATS_OK) {
        s = natsSubscription_SetOnCompleteCB(b->inbox_sub, on_inbox_complete, b);
        if (s == NATS_OK)
            b->subs_live = 1;
    }
    if (s != NATS_OK) {
        rc = store_i_err_set(err, STORE_EUNAVAIL, "jsbus: setting up on %s: %s", o->urls,
                             nats_err_text(s));
        goto fail;
    }
    if (pthread_create(&b->worker, NULL, worker_main, b) != 0) {
        rc = store_i_err_set(err, STORE_EIO, "jsbus: cannot start a thread");
        goto fail;
    }
    if (pthread_create(&b->ticker, NULL, ticker_main, b) != 0) {
        pthread_mutex_lock(&b->mu);
        b->closing = 1;
        pthread_cond_signal(&b->work_cond);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->worker, NULL);
        rc = store_i_err_set(err, STORE_EIO, "jsbus: cannot start a thread");
        goto fail;
    }
    b->threads = 1;
    for (int i = 0; i < nurls; i++)
        free(urls[i]);
    free(urls);
    char url[256] = "";
    natsConnection_GetConnectedUrl(b->nc, url, sizeof url);
    log_now(b, STORE_LOG_INFO, "jsbus: connected to %s", url);
    *out = b;
    return 0;

fail:
    for (int i = 0; i < nurls; i++)
        free(urls[i]);
    free(urls);
    jsbus_close(b);
    return rc;
}

int jsbus_notify_fd(const struct jsbus *b)
{
    return b->efd;
}

int jsbus_connected(const struct jsbus *b)
{
    return b->nc && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

static void follow_unref_locked(struct jsbus_follow *f);
static void drain_ring_locked(struct jsbus_follow *f, natsMsg ***out, size_t *nout);

void jsbus_close(struct jsbus *b)
{
    if (!b)
        return;
    b->in_close = 1;
    /* Stop every follow first, so no delivery thread stays blocked on a
     * full queue, then let the worker tear the subscriptions down. */
    pthread_mutex_lock(&b->mu);
    b->closing = 1;
    for (struct jsbus_follow *f = b->follows; f; f = f->next) {
        f->stop = 1;
        atomic_store(&f->stopping, 1);
        pthread_cond_broadcast(&f->space);
    }
    pthread_cond_broadcast(&b->work_cond);
    pthread_cond_broadcast(&b->tick_cond);
    pthread_mutex_unlock(&b->mu);
    if (b->threads) {
        pthread_join(b->worker, NULL);
        pthread_join(b->ticker, NULL);
    }
    if (b->nc)
        natsConnection_Close(b->nc);
    /* every subscription is closed now; wait until their delivery threads
     * have left our callbacks */
    int leak = 0;
    pthread_mutex_lock(&b->mu);
    struct timespec until;
    deadline_ts(&until, CLOSE_WAIT_MS);
    while (b->subs_live > 0) {
        if (pthread_cond_timedwait(&b->subs_cond, &b->mu, &until) == ETIMEDOUT) {
            leak = 1;
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
    reg_remove(b);

    /* Callbacks (pending requests, queued log lines) run from here on with
     * the bus still whole; what they call fails with STORE_EUNAVAIL. */
    struct ev *evs = b->ev_head;
    b->ev_head = b->ev_tail = NULL;
    while (evs) {
        struct ev *e = evs;
        evs = e->next;
        if (e->kind == EV_LOG && b->log)
            b->log(b->log_arg, e->level, e->text);
        if (e->msg)
            natsMsg_Destroy(e->msg);
        free(e->text);
        free(e);
    }
    for (size_t i = 0; b->pending.slot && i <= b->pending.mask; i++) {
        while (b->pending.slot[i]) {
            struct req *r = b->pending.slot[i];
            b->pending.slot[i] = r->next;
            b->pending.n--;
            fire_err(r, STORE_EUNAVAIL, "closed");
        }
    }
    while (b->imm_head) {
        struct req *r = b->imm_head;
        b->imm_head = r->next;
        fire_err(r, STORE_EUNAVAIL, "closed");
    }
    b->imm_tail = NULL;

    if (leak) {
        log_now(b, STORE_LOG_ERROR,
                "jsbus: NATS threads still hold %d subscription(s) after %d ms; leaking them",
                b->subs_live, CLOSE_WAIT_MS);
        return;
    }
    /* the loop's references to follows the caller did not unfollow */
    pthread_mutex_lock(&b->mu);
    while (b->follows) {
        struct jsbus_follow *f = b->follows;
        natsMsg **drop = NULL;
        size_t ndrop = 0;
        drain_ring_locked(f, &drop, &ndrop);
        for (size_t i = 0; i < ndrop; i++)
            natsMsg_Destroy(drop[i]);
        free(drop);
        /* only the loop's reference is left: the worker and the
         * subscriptions have let go */
        f->refs = 1;
        follow_unref_locked(f);
    }
    pthread_mutex_unlock(&b->mu);

    if (b->inbox_sub)
        natsSubscription_Destroy(b->inbox_sub);
    if (b->js)
        jsCtx_Destroy(b->js);
    if (b->nc)
        natsConnection_Destroy(b->nc);
    if (b->opts)
        natsOptions_Destroy(b->opts);
    if (b->efd >= 0)
        close(b->efd);
    free(b->pending.slot);
    free(b->batch);
    free(b->prefix);
    pthread_cond_destroy(&b->subs_cond);
    pthread_cond_destroy(&b->work_cond);
    pthread_cond_destroy(&b->tick_cond);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* Wakes the loop every TICK_MS while requests are pending, so their
 * deadlines are checked even when nothing else arrives. */
static void *ticker_main(void *arg)
{
    struct jsbus *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->closing) {
        struct timespec until;
        deadline_ts(&until, TICK_MS);
        pthread_cond_timedwait(&b->tick_cond, &b->mu, &until);
        if (!b->closing && atomic_load(&b->npending) > 0)
            notify_locked(b);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ======================================================================== */
/* Requests                                                                 */
/* ======================================================================== */

int jsbus_request(struct jsbus *b, const char *subject, const struct jsbus_hdr *hdrs, size_t nhdrs,
                  const void *data, size_t len, int64_t timeout_ms, jsbus_reply_fn cb, void *arg,
                  struct store_err *err)
{
    if (!b || !subject || !*subject || !cb || (nhdrs && !hdrs) || (len && !data) ||
        timeout_ms < 0 || len > INT32_MAX)
        return store_i_err_set(err, STORE_EINVAL, "jsbus_request: bad arguments");
    for (size_t i = 0; i < nhdrs; i++)
        if (!hdrs[i].key || !*hdrs[i].key)
            return store_i_err_set(err, STORE_EINVAL, "jsbus_request: header without a key");
    if (b->in_close)
        return store_i_err_set(err, STORE_EUNAVAIL, "jsbus_request: closed");

    struct req *r = store_i_xcalloc(1, sizeof *r);
    r->id = b->next_id++;
    r->cb = cb;
    r->arg = arg;
    snprintf(r->subject, sizeof r->subject, "%s", subject);
    if (!jsbus_connected(b)) {
        store_i_err_set(&r->err, STORE_EUNAVAIL, "not connected to NATS");
        goto immediate;
    }

    char reply[160];
    snprintf(reply, sizeof reply, "%s.%" PRIu64, b->prefix, r->id);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, reply, data, (int)len);
    for (size_t i = 0; s == NATS_OK && i < nhdrs; i++)
        s = natsMsgHeader_Set(m, hdrs[i].key, hdrs[i].value ? hdrs[i].value : "");
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        free(r);
        return store_i_err_set(err, STORE_EINVAL, "jsbus_request: %s", nats_err_text(s));
    }
    s = natsConnection_PublishMsg(b->nc, m);
    natsMsg_Destroy(m);
    if (s == NATS_MAX_PAYLOAD) {
        free(r);
        return store_i_err_set(err, STORE_EINVAL, "jsbus_request: %s", nats_err_text(s));
    }
    if (s != NATS_OK) {
        store_i_err_set(&r->err, STORE_EUNAVAIL, "publish to %s: %s", subject, nats_err_text(s));
        goto immediate;
    }
    r->deadline = mono_ms() + (timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
    if (r->deadline < b->next_deadline)
        b->next_deadline = r->deadline;
    map_put(&b->pending, r);
    atomic_fetch_add(&b->npending, 1);
    return 0;

immediate:
    /* the callback must not run inside this call: the next dispatch fires it */
    if (b->imm_tail)
        b->imm_tail->next = r;
    else
        b->imm_head = r;
    b->imm_tail = r;
    pthread_mutex_lock(&b->mu);
    notify_locked(b);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

int jsbus_request_sync(struct jsbus *b, const char *subject, const void *data, size_t len,
                       int64_t timeout_ms, json_t **reply, struct store_err *err)
{
    *reply = NULL;
    if (!b || !subject || !*subject || (len && !data) || timeout_ms < 0 || len > INT32_MAX)
        return store_i_err_set(err, STORE_EINVAL, "jsbus_request_sync: bad arguments");
    if (!jsbus_connected(b))
        return store_i_err_set(err, STORE_EUNAVAIL, "%s: not connected to NATS", subject);
    natsMsg *m = NULL;
    natsStatus s = natsConnection_Request(&m, b->nc, subject, data, (int)len,
                                          timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
    if (s == NATS_NO_RESPONDERS)
        return store_i_err_set(err, STORE_EUNAVAIL, "no responders on %s", subject);
    if (s == NATS_TIMEOUT)
        return store_i_err_set(err, STORE_EUNAVAIL, "timed out waiting for a reply from %s",
                               subject);
    if (s != NATS_OK)
        return store_i_err_set(err, STORE_EUNAVAIL, "%s: %s", subject, nats_err_text(s));
    const char *status = NULL;
    if (natsMsgHeader_Get(m, "Status", &status) == NATS_OK && status && *status) {
        int rc = store_i_err_set(err, STORE_EUNAVAIL, "status %s from %s", status, subject);
        natsMsg_Destroy(m);
        return rc;
    }
    json_error_t je;
    json_t *j = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &je);
    natsMsg_Destroy(m);
    if (!j)
        return store_i_err_set(err, STORE_EUNAVAIL, "reply from %s is not JSON: %s", subject,
                               je.text);
    *reply = j;
    return 0;
}

const char *jsbus_msg_header(const struct jsbus_msg *m, const char *key)
{
    const char *v = NULL;
    if (!m || !m->_priv || !key)
        return NULL;
    if (natsMsgHeader_Get((natsMsg *)m->_priv, key, &v) != NATS_OK)
        return NULL;
    return v;
}

/* ======================================================================== */
/* Follows                                                                  */
/* ======================================================================== */

/* With mu held: drops one reference; the last one unlinks and frees "f"
 * (its ring must be empty). */
static void follow_unref_locked(struct jsbus_follow *f)
{
    if (--f->refs > 0)
        return;
    struct jsbus *b = f->b;
    if (f->prev)
        f->prev->next = f->next;
    else
        b->follows = f->next;
    if (f->next)
        f->next->prev = f->prev;
    pthread_cond_destroy(&f->space);
    free(f->ring);
    free(f->stream);
    free(f->filter);
    free(f);
}

/* With mu held: empties the ring into "*out" (returns new array of messages
 * to destroy outside the lock) and gives its room back. */
static void drain_ring_locked(struct jsbus_follow *f, natsMsg ***out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (f->ring_n == 0)
        return;
    natsMsg **v = store_i_xmalloc(f->ring_n * sizeof *v);
    for (size_t i = 0; i < f->ring_n; i++) {
        struct fq_ent *e = &f->ring[(f->ring_head + i) % f->ring_cap];
        v[i] = e->m;
        f->acct_msgs--;
        f->acct_bytes -= e->size;
    }
    *out = v;
    *nout = f->ring_n;
    f->ring_n = 0;
    f->ring_head = 0;
    pthread_cond_broadcast(&f->space);
}

/* JetStream writes the reply subject as $JS.ACK.<stream>.<consumer>.
 * <delivered>.<stream seq>.<consumer seq>.<ns>.<pending> (9 tokens) or, with
 * a domain and account hash after ACK, 12 or more. natsMsg_GetMetaData
 * reads the same but allocates the names, for every message delivered. */
int jsbus_ack_meta(const char *r, uint64_t *seq, int64_t *ts)
{
    const char *tok[13];
    size_t len[13];
    int n = 0;
    if (!r || strncmp(r, "$JS.ACK.", 8) != 0)
        return 0;
    for (const char *p = r;; n++) {
        if (n == 13)
            return 0;
        const char *dot = strchr(p, '.');
        tok[n] = p;
        len[n] = dot ? (size_t)(dot - p) : strlen(p);
        if (!dot)
            break;
        p = dot + 1;
    }
    n++;
    int base = n == 9 ? 0 : n >= 12 ? 2 : -1;
    if (base < 0)
        return 0;
    /* delivered, stream seq, consumer seq, time, pending: all numbers within
     * int64, as libnats requires (nats_ParseInt64) */
    uint64_t v[5] = {0};
    for (int k = 0; k < 5; k++) {
        const char *t = tok[4 + base + k];
        size_t l = len[4 + base + k];
        if (l < 1 || l > 19)
            return 0;
        for (size_t i = 0; i < l; i++) {
            if (t[i] < '0' || t[i] > '9')
                return 0;
            v[k] = v[k] * 10 + (uint64_t)(t[i] - '0');
        }
        if (v[k] > (uint64_t)INT64_MAX)
            return 0;
    }
    *seq = v[1];
    *ts = (int64_t)v[3];
    return 1;
}

/* The ordered consumer's delivery thread: queue "msg" for the loop, waiting
 * while the follow's queue is full. */
static void on_follow_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    struct jsbus_follow *f = closure;
    struct jsbus *b = f->b;
    if (atomic_load(&f->stopping)) {
        natsMsg_Destroy(msg);
        return;
    }
    struct fq_ent ent = {
        .m = msg,
        .size = (size_t)natsMsg_GetDataLength(msg) + strlen(natsMsg_GetSubject(msg)),
    };
    if (!jsbus_ack_meta(natsMsg_GetReply(msg), &ent.seq, &ent.ts)) {
        jsMsgMetaData *md = NULL;
        if (natsMsg_GetMetaData(&md, msg) != NATS_OK) {
            /* not a stream message (libnats handles control messages itself) */
            natsMsg_Destroy(msg);
            return;
        }
        ent.seq = md->Sequence.Stream;
        ent.ts = md->Timestamp;
        jsMsgMetaData_Destroy(md);
    }

    pthread_mutex_lock(&b->mu);
    /* Back-pressure: waiting here holds back libnats' flow-control reply,
     * so the server stops sending once its window is out. */
    while (!f->stop && (f->acct_msgs >= JSBUS_FOLLOW_MAX_MSGS ||
                        (f->acct_msgs > 0 && f->acct_bytes + ent.size > JSBUS_FOLLOW_MAX_BYTES)))
        pthread_cond_wait(&f->space, &b->mu);
    if (f->stop) {
        pthread_mutex_unlock(&b->mu);
        natsMsg_Destroy(msg);
        return;
    }
    if (f->ring_n == f->ring_cap) {
        size_t cap = f->ring_cap ? f->ring_cap * 2 : 64;
        if (cap > JSBUS_FOLLOW_MAX_MSGS)
            cap = JSBUS_FOLLOW_MAX_MSGS;
        struct fq_ent *ring = store_i_xmalloc(cap * sizeof *ring);
        for (size_t i = 0; i < f->ring_n; i++)
            ring[i] = f->ring[(f->ring_head + i) % f->ring_cap];
        free(f->ring);
        f->ring = ring;
        f->ring_cap = cap;
        f->ring_head = 0;
    }
    f->ring[(f->ring_head + f->ring_n) % f->ring_cap] = ent;
    f->ring_n++;
    f->acct_msgs++;
    f->acct_bytes += ent.size;
    if (f->acct_msgs > f->peak_msgs)
        f->peak_msgs = f->acct_msgs;
    if (f->acct_bytes > f->peak_bytes)
        f->peak_bytes = f->acct_bytes;
    notify_locked(b);
    pthread_mutex_unlock(&b->mu);
}

/* libnats: the subscription is closed and its last callback returned. */
static void on_follow_complete(void *closure)
{
    struct jsbus_follow *f = closure;
    struct jsbus *b = f->b;
    pthread_mutex_lock(&b->mu);
    /* Whoever takes "sub" under mu releases our handle on it: the worker
     * after unfollow, or this callback when natsConnection_Close (in
     * jsbus_close) closed the subscription first. The delivery thread holds
     * its own reference until it returns, so releasing here is safe. */
    natsSubscription *sub = f->sub;
    f->sub = NULL;
    f->state = F_DONE;
    follow_unref_locked(f);
    b->subs_live--;
    pthread_cond_broadcast(&b->subs_cond);
    pthread_mutex_unlock(&b->mu);
    if (sub)
        natsSubscription_Destroy(sub);
}

struct jsbus_follow *jsbus_follow(struct jsbus *b, const char *stream, const char *filter,
                                  uint64_t start_seq, jsbus_deliver_fn cb, void *arg,
                                  struct store_err *err)
{
    if (!b || !stream || !*stream || (filter && !*filter) || start_seq == 0 || !cb) {
        store_i_err_set(err, STORE_EINVAL, "jsbus_follow: bad arguments");
        return NULL;
    }
    if (b->in_close) {
        store_i_err_set(err, STORE_EUNAVAIL, "jsbus_follow: closed");
        return NULL;
    }
    struct jsbus_follow *f = store_i_xcalloc(1, sizeof *f);
    f->b = b;
    f->stream = store_i_xstrdup(stream);
    f->filter = filter ? store_i_xstrdup(filter) : NULL;
    f->start_seq = start_seq;
    f->cb = cb;
    f->arg = arg;
    f->refs = 2; /* the loop's and the worker's */
    f->state = F_NEED_SUB;
    pthread_cond_init(&f->space, NULL);
    atomic_init(&f->stopping, 0);
    pthread_mutex_lock(&b->mu);
    f->next = b->follows;
    if (b->follows)
        b->follows->prev = f;
    b->follows = f;
    pthread_cond_signal(&b->work_cond);
    pthread_mutex_unlock(&b->mu);
    return f;
}

void jsbus_unfollow(struct jsbus_follow *f)
{
    if (!f)
        return;
    struct jsbus *b = f->b;
    natsMsg **drop;
    size_t ndrop;
    f->unfollowed = 1;
    pthread_mutex_lock(&b->mu);
    f->stop = 1;
    atomic_store(&f->stopping, 1);
    drain_ring_locked(f, &drop, &ndrop);
    pthread_cond_broadcast(&f->space);
    pthread_cond_signal(&b->work_cond);
    follow_unref_locked(f);
    pthread_mutex_unlock(&b->mu);
    for (size_t i = 0; i < ndrop; i++)
        natsMsg_Destroy(drop[i]);
    free(drop);
}

uint64_t jsbus_follow_last(const struct jsbus_follow *f)
{
    return f->last;
}

void jsbus_follow_stats(const struct jsbus_follow *f, struct jsbus_follow_stats *out)
{
    pthread_mutex_lock(&f->b->mu);
    out->queued_msgs = f->acct_msgs;
    out->queued_bytes = f->acct_bytes;
    out->peak_msgs = f->peak_msgs;
    out->peak_bytes = f->peak_bytes;
    out->subscribes = f->subscribes;
    pthread_mutex_unlock(&f->b->mu);
    out->delivered = f->delivered;
    out->dropped = f->dropped;
}

/* Worker, unlocked: creates the ordered consumer of "f". */
static natsStatus follow_subscribe(struct jsbus *b, struct jsbus_follow *f, natsSubscription **sub,
                                   jsErrCode *jerr)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = f->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = f->start_seq;
    so.Config.Heartbeat = (int64_t)FOLLOW_HEARTBEAT_MS * 1000000;
    /* libnats always sets the subject as the consumer's filter; ">" is
     * every subject (the server accepts it for any stream). */
    natsStatus s = js_Subscribe(sub, b->js, f->filter ? f->filter : ">", on_follow_msg, f, NULL,
                                &so, jerr);
    if (s != NATS_OK)
        return s;
    /* Never let libnats drop a message of this subscription: it has already
     * counted it in the ordered consumer's sequence by then, so the drop
     * would be a silent gap. Flow control bounds what it buffers instead. */
    s = natsSubscription_SetPendingLimits(*sub, -1, -1);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(*sub, on_follow_complete, f);
    return s;
}

static void *worker_main(void *arg)
{
    struct jsbus *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        int64_t now = mono_ms(), wake = now + 1000;
        struct jsbus_follow *job = NULL;
        int connected = b->closing ? 0 : jsbus_connected(b);
        for (struct jsbus_follow *f = b->follows, *nx; f; f = nx) {
            nx = f->next;
            if (f->stop && f->state == F_NEED_SUB) {
                f->state = F_DONE;
                follow_unref_locked(f); /* the worker's reference */
                continue;
            }
            /* While closing, natsConnection_Close closes what is left:
             * unsubscribing here would wait on a consumer deletion per
             * follow, seconds each when the server is gone. The server
             * drops the ephemeral consumers once they are idle. */
            if (f->stop && f->state == F_ACTIVE && !b->closing) {
                job = f;
                break;
            }
            if (!f->stop && f->state == F_NEED_SUB && connected) {
                if (f->retry_at <= now) {
                    job = f;
                    break;
                }
                if (f->retry_at < wake)
                    wake = f->retry_at;
            }
        }
        if (!job) {
            if (b->closing)
                break;
            struct timespec until;
            deadline_ts(&until, wake - now);
            pthread_cond_timedwait(&b->work_cond, &b->mu, &until);
            continue;
        }
        if (job->state == F_ACTIVE) {
            natsSubscription *sub = job->sub;
            job->sub = NULL;
            job->state = F_TEARING;
            pthread_mutex_unlock(&b->mu);
            /* deletes the ephemeral consumer too (a JetStream API round trip) */
            natsSubscription_Unsubscribe(sub);
            natsSubscription_Destroy(sub);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        /* F_NEED_SUB: the worker's reference keeps "job" alive unlocked */
        pthread_mutex_unlock(&b->mu);
        natsSubscription *sub = NULL;
        jsErrCode jerr = 0;
        int64_t t0 = mono_ms();
        natsStatus s = follow_subscribe(b, job, &sub, &jerr);
        const char *why = s == NATS_OK ? "" : nats_err_text(s);
        pthread_mutex_lock(&b->mu);
        if (s == NATS_OK) {
            job->sub = sub;
            job->state = F_ACTIVE;
            job->subscribes++;
            b->subs_live++;
            queue_log_locked(b, job->fails ? STORE_LOG_INFO : STORE_LOG_DEBUG,
                             "jsbus: following stream=%s from seq %" PRIu64 " (%" PRId64 " ms)",
                             job->stream, job->start_seq, mono_ms() - t0);
            job->fails = 0;
        } else {
            if (sub) {
                /* subscribed, but the on-complete hook did not take: the
                 * subscription was closed under us (only close does that).
                 * Leak "job" rather than risk freeing it under a callback. */
                job->state = F_DONE;
                job->refs++;
            } else {
                job->fails++;
                job->retry_at = mono_ms() + FOLLOW_RETRY_MS;
                /* 1st, 2nd, 4th, 8th... failure: enough to see, not a flood */
                if ((job->fails & (job->fails - 1)) == 0)
                    queue_log_locked(b, STORE_LOG_WARN,
                                     "jsbus: stream=%s: cannot create the consumer (attempt %u, "
                                     "retrying): %s (%d)",
                                     job->stream, job->fails, why, (int)jerr);
            }
        }
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ======================================================================== */
/* Dispatch (loop thread)                                                   */
/* ======================================================================== */

/* Delivers what "f" had queued when taken, dropping re-sent sequences. */
static void deliver_batch(struct jsbus_follow *f, struct fq_ent *batch, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        natsMsg *m = batch[i].m;
        uint64_t next = f->last ? f->last + 1 : f->start_seq;
        if (f->unfollowed || batch[i].seq < next) {
            if (!f->unfollowed)
                f->dropped++;
            natsMsg_Destroy(m);
            continue;
        }
        f->last = batch[i].seq;
        f->delivered++;
        struct jsbus_msg jm = {
            .subject = natsMsg_GetSubject(m),
            .data = (const uint8_t *)natsMsg_GetData(m),
            .len = (size_t)natsMsg_GetDataLength(m),
            .stream_seq = batch[i].seq,
            .time_ns = batch[i].ts,
            ._priv = m,
        };
        f->cb(f->arg, &jm);
        natsMsg_Destroy(m);
    }
}

void jsbus_dispatch(struct jsbus *b)
{
    uint64_t v;
    while (read(b->efd, &v, sizeof v) > 0) {
    }

    pthread_mutex_lock(&b->mu);
    b->notified = 0;
    struct ev *evs = b->ev_head;
    b->ev_head = b->ev_tail = NULL;
    pthread_mutex_unlock(&b->mu);

    while (evs) {
        struct ev *e = evs;
        evs = e->next;
        if (e->kind == EV_LOG) {
            if (b->log)
                b->log(b->log_arg, e->level, e->text);
            free(e->text);
        } else {
            handle_reply(b, e->msg);
        }
        free(e);
    }

    /* failures decided at call time; only those queued before this point,
     * so a callback that retries while disconnected cannot spin here */
    struct req *imm = b->imm_head;
    b->imm_head = b->imm_tail = NULL;
    while (imm) {
        struct req *r = imm;
        imm = r->next;
        r->cb(r->arg, NULL, &r->err);
        free(r);
    }

    expire_requests(b, mono_ms());

    /* Follows: one batch each. The list may change while a batch is
     * delivered (callbacks follow and unfollow), so the scan restarts from
     * the head and "round" marks who has had its turn. */
    unsigned round = ++b->round;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        struct jsbus_follow *f = b->follows;
        while (f && (f->round == round || f->ring_n == 0 || f->stop))
            f = f->next;
        if (!f) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        f->round = round;
        size_t n = f->ring_n, bytes = 0;
        for (size_t i = 0; i < n; i++) {
            b->batch[i] = f->ring[(f->ring_head + i) % f->ring_cap];
            bytes += b->batch[i].size;
        }
        f->ring_head = 0;
        f->ring_n = 0;
        f->refs++;
        pthread_mutex_unlock(&b->mu);

        /* the batch stays counted against the bound until delivered */
        deliver_batch(f, b->batch, n);

        pthread_mutex_lock(&b->mu);
        f->acct_msgs -= n;
        f->acct_bytes -= bytes;
        pthread_cond_broadcast(&f->space);
        follow_unref_locked(f);
        pthread_mutex_unlock(&b->mu);
    }
}
