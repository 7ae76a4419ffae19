/* jetstream.c - the jetstream backend: the catalog and every record live in
 * NATS JetStream; this gateway's store under "dir" is a copy of them.
 *
 * Upstream: store.c (open, close, commit, dispatch, notify fd), shard.c
 * (store_shard_append), stream.c (a stream struct freed). Downstream:
 * jsbus.c (libnats; every reply and delivery comes back on the loop thread
 * through jsbus_dispatch).
 *
 * LAYOUT IN JETSTREAM (P = --nats-prefix)
 *
 *   stream P-catalog   subject P.catalog: the catalog log. One message per
 *                      store_commit of this gateway's catalog changes, a
 *                      "bundle": {"origin": gateway, "id": n, "recs": [..]}
 *                      whose records are catalog.c's change records. Message
 *                      1 is an empty bundle (the "genesis", see below).
 *   stream P-data-U    subjects P.data.U.<shard index>: the records of the
 *                      Kinesis stream whose catalog uid is U (a stream
 *                      deleted and created again gets a new U). Payload =
 *                      the record's data; headers Sluice-Pk (the partition
 *                      key, bytes outside '!'..'~' and '%' as %XX),
 *                      Sluice-Ehk (explicit hash key, decimal, optional),
 *                      Sluice-Arrival (ms since the epoch), Nats-Msg-Id.
 *                      MaxAge = the retention at creation, file storage,
 *                      DenyDelete/DenyPurge, Replicas = --nats-replicas.
 *
 * SEQUENCE NUMBERS: a record's is (gen of its shard's starting number,
 * shard index, JetStream stream sequence). Every gateway derives the same
 * number from the same message, and it grows within a shard because the
 * stream sequence does.
 *
 * THE CATALOG: each gateway keeps the catalog as a JSON tree (the MANIFEST's
 * form) built by replaying P-catalog, and the store's usual in-memory
 * catalog. A change made here is applied in memory at once (as on the
 * embedded backend) and published in the next bundle with
 * Nats-Expected-Last-Sequence = the last catalog message this gateway knows
 * of: JetStream stores it only if nobody else wrote in between (stream-wide
 * compare-and-set, enforced by nats-server 2.9 on clustered streams; the
 * per-subject form is not). Acknowledged = durable: the waiters fire. One
 * bundle is in flight at a time, so a refused one never lets a later one
 * through. A bundle from another gateway (or a refusal) means every change
 * of ours not yet acknowledged lost the race: they are undone in memory,
 * their callers get STORE_ECONFLICT (the gateway answers
 * LimitExceededException, which SDKs retry), the other bundle is applied to
 * the tree, and the streams it names are brought in line with the tree
 * (reconcile). Our own bundles coming back are applied to the tree only.
 * The sequence check does not cover an empty stream (JetStream ignores an
 * expected sequence of 0), hence the genesis message: the first gateway
 * publishes it with a fixed Nats-Msg-Id, so concurrent first starts store
 * one.
 *
 * RECORDS: store_shard_append publishes each record and answers once
 * JetStream acknowledged all of them (stored on a quorum of replicas) and
 * this gateway's copy took them in (so a GetRecords here right after the
 * reply sees them, and a record the copy refused, see RESHARDING, is
 * acknowledged only once stored again elsewhere; undecided after
 * JS_VERDICT_WAIT_MS, the append fails). A
 * publish nobody answered (leader election, lost connection) is sent again
 * with the same Nats-Msg-Id every JS_RETRY_MS until JS_APPEND_DEADLINE_MS:
 * JetStream drops the duplicate if the first one was stored. Every stream's records are copied here by an ordered
 * consumer (jsbus_follow), applied with their sequence numbers, and from
 * there reads, listeners and fan-out work as on the embedded backend.
 *
 * OPEN: the local copy is emptied, the catalog replayed up to its last
 * message, then every stream's records copied up to their last message
 * before store_open returns.
 *
 * PUBLISH WINDOW: at most JS_PUB_WINDOW publishes await their answer; the
 * rest wait in order (JS_QUEUE_BYTES of data, then appends are refused with
 * STORE_EUNAVAIL).
 *
 * SUBSCRIPTIONS ACROSS GATEWAYS: stream P-subs (subject P.subs, kept a
 * minute) carries each gateway's claims and releases of a consumer-shard
 * pair; see store_sub_elsewhere/claim/release.
 *
 * RESHARDING: see "resharding: fences and cancels" below. Data streams
 * also carry P.data.U.fence ({"shards":[closed indices]}) and
 * P.data.U.cancel ({"fence": its stream sequence}); catalog bundles may
 * carry "void": {"uid", "fence"}.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "internal.h"
#include "jsbus.h"

#define JS_RETRY_MS 200
#define JS_APPEND_DEADLINE_MS 20000
/* An acknowledged record is answered once this gateway's copy took it in
 * (or refused it, see RESHARDING); past this, the append fails. */
#define JS_VERDICT_WAIT_MS 20000
/* A fence neither in the catalog nor cancelled this long is voided. */
#define JS_FENCE_GRACE_MS 5000
/* A record for a shard the catalog does not bring this long is skipped. */
#define JS_UNKNOWN_SHARD_MS 30000
#define JS_REQUEST_MS 5000
#define JS_OPEN_TIMEOUT_MS 120000
#define JS_CLOSE_WAIT_MS 5000
#define JS_DUP_WINDOW_NS 120000000000LL
/* Publishes awaiting JetStream's acknowledgement at once. Beyond it they
 * wait in a queue: sent all at once, a burst of PutRecords made tens of
 * thousands outstanding, which JetStream answered only after the publish
 * timeout (and the retries added more). */
#define JS_PUB_WINDOW 4096
/* Record bytes queued behind the window; past it appends are refused with
 * STORE_EUNAVAIL (503) until JetStream catches up. */
#define JS_QUEUE_BYTES (64u << 20)

/* JetStream API error codes (nats-server's errors.json). */
#define JSERR_STREAM_NAME_IN_USE 10058
#define JSERR_WRONG_LAST_SEQUENCE 10071
#define JSERR_STREAM_NOT_FOUND 10059

struct js_batch;

/* One record on its way to JetStream. */
struct js_pub {
    struct js_batch *b;
    size_t i;
    char subject[96];
    char msgid[64];
    char *pk;          /* Sluice-Pk, encoded (inside the block of "data") */
    char ehk[STORE_HASHKEY_STRLEN];
    char arrival[24];
    uint8_t *data;
    size_t len;
    int64_t retry_at;  /* monotonic ms; on the retry list while non-zero */
    int64_t deadline;  /* monotonic ms: stop retrying (set at the first send) */
    int queued;        /* waiting for room in the window */
    int doomed;        /* refused for good: fails at the next timer */
    struct js_pub *rnext;
};

/* One store_shard_append. */
struct js_batch {
    struct store_shard *sh; /* kept allocated by sh->js_refs */
    size_t n, left;
    int failed;
    struct store_err err;
    struct store_seq *seqs;
    struct store_seq max;
    store_done_fn cb;
    void *arg;
    int64_t await_until; /* monotonic ms: fail if the copy has not decided by then */
    int64_t born;        /* monotonic ms of the append */
    uint64_t c0;         /* msg counter of its first record (they are consecutive) */
    int refused;         /* the copy refused a record that cannot be sent again */
    struct js_reroute *rr;       /* its records the copy refused, in stream order */
    size_t rr_left;              /* of them, not yet stored again */
    struct js_pub *pubs;
    struct js_batch *anext;
    struct js_batch *lprev, *lnext; /* every batch not yet answered */
};

/* A record of ours the copy refused (stored after a reshard's fence): sent
 * again, as an append of its own, to the shard its hash key routes to once
 * this gateway knows how the reshard ended (the children, or the same shard
 * after a cancel). The batch owns it until it is sent, then the inner
 * append's callback does if the batch was answered meanwhile (b = NULL). */
struct js_reroute {
    struct js_reroute *next;  /* the batch's */
    struct js_reroute *qnext; /* js->rr_head's, while not sent */
    struct js_batch *b;
    size_t i;                 /* its place in the batch */
    uint8_t *pk, *data;
    size_t pklen, len;
    struct store_hashkey hk;  /* where it routes */
    int has_ehk;
    int sent, done;
    struct store_seq seq;     /* the inner append writes its number here */
};

/* A fence seen in a data stream: shards "idx" take no record stored after
 * "seq", unless a cancel names it. */
struct js_fence {
    uint64_t seq;
    uint32_t *idx;
    size_t n;
    int64_t seen_ms;   /* monotonic */
    int64_t void_at;   /* monotonic ms of our last attempt to void it (0: none) */
    int adopted;       /* the catalog closes its shards at "seq": for good */
};

struct js_feed {
    struct store *s;
    struct store_stream *st; /* NULL once the stream is gone */
    struct jsbus_follow *f;
    uint64_t next_seq;
    int ensuring;            /* a STREAM.CREATE is in flight */
    int ready;               /* the JetStream stream exists: records may go */
    int64_t retry_at;        /* monotonic ms: ensure or follow again (0: not due) */
    char name[80];           /* P-data-U */
    struct js_fence *fences;
    size_t nfences;
    uint64_t tail_min;       /* lowest end of a closed shard still being copied */
    uint64_t paused_at;      /* a record of a shard the catalog does not have yet: copying
                              * stopped before it (0: not paused) */
    uint64_t stuck_seq;      /* that record, and since when it waits */
    int64_t stuck_since;
};

/* A control message in a data stream (a fence or a cancel), sent until
 * JetStream stores it or JS_APPEND_DEADLINE_MS passes. */
enum ctl_kind { CTL_FENCE, CTL_CANCEL };
struct js_ctl {
    struct js_ctl *next;
    struct store *s;
    enum ctl_kind kind;
    uint64_t uid;
    uint64_t version;  /* FENCE: our reshard's catalog change (0 once undone) */
    uint64_t fence;    /* FENCE: its stream sequence once stored; CANCEL: the one cancelled */
    int inflight, acked;
    int64_t deadline, retry_at;
    char subject[96];
    char msgid[96];
    char *body;
};

/* What this gateway knows of the subscriptions of one consumer to one shard
 * across gateways (P-subs). */
struct sub_claim {
    struct sub_claim *next;  /* hash chain */
    char *key;               /* "<uid>.<shard>.<consumer ARN>" */
    char holder[33];         /* origin of the newest claim by another gateway ("": none running) */
    int64_t started_ms;      /* when that one started */
    uint32_t own_pending;    /* our claims sent, not yet seen back */
};

#define SUB_BUCKETS 1024
/* Claims live a minute in JetStream: only the last 5 s of them decide. */
#define JS_SUB_MAX_AGE_NS 60000000000LL

struct cat_ack {
    struct store *s;
    uint64_t id, epoch, version;
    int settled; /* its echo came first and made it durable */
    uint64_t void_uid, void_fence; /* a void bundle: the fence it voids (0: none) */
};

struct js_state {
    struct jsbus *bus;
    int epfd, tfd;
    int64_t timer_at;         /* armed for this monotonic ms; 0 none */
    char prefix[33];
    uint32_t replicas;
    char origin[33];          /* this gateway's bundles, random per open */
    uint8_t secret[32];       /* SHA-256 of the genesis message's secret */
    int has_secret;
    uint64_t msg_counter, bundle_counter;
    json_t *tree;
    uint64_t cat_seq;         /* last catalog message applied to the tree */
    uint64_t cat_expect;      /* the last we know of: our next bundle expects it */
    struct jsbus_follow *cat_follow;
    int inflight;             /* a bundle awaits its acknowledgement */
    struct cat_ack *flying;   /* that bundle (NULL once settled) */
    uint64_t epoch;           /* bumped by every rollback: older acks are void */
    uint64_t *echo;           /* ids of acknowledged bundles not yet seen back */
    size_t necho, echocap;
    int opening;
    int closing;
    struct js_pub *retry, *rtail; /* publishes waiting to be sent again, in order */
    struct js_pub *qhead, *qtail; /* publishes waiting for room in the window */
    struct js_pub *hhead, *htail; /* held: their stream's JetStream stream is not ready */
    size_t inflight_pubs;     /* sent, not yet answered */
    size_t queued_bytes;      /* data of the queued ones */
    struct js_batch *await;   /* acknowledged, waiting for the local copy */
    struct jsbus_follow *sub_follow;
    struct sub_claim *claims[SUB_BUCKETS];
    struct js_ctl *ctl;       /* fences and cancels on their way */
    struct js_batch *batches; /* every append not yet answered (for refusals) */
    /* refused records not yet sent again, in the order the copy refused
     * them (their stream order): sent in that order */
    struct js_reroute *rr_head, *rr_tail;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void arm(struct js_state *js, int64_t at)
{
    if (js->timer_at && js->timer_at <= at)
        return;
    js->timer_at = at;
    struct itimerspec its = {0};
    its.it_value.tv_sec = at / 1000;
    its.it_value.tv_nsec = (at % 1000) * 1000000;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    timerfd_settime(js->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Parses a JetStream API reply: 0 and "*out" (new reference), or the error
 * with "*api_code" (err_code, 0 if none). */
static int api_reply(const struct jsbus_msg *m, const struct store_err *e, json_t **out,
                     int *api_code, struct store_err *err)
{
    *api_code = 0;
    *out = NULL;
    if (e) {
        if (err) *err = *e;
        return e->code;
    }
    json_error_t je;
    json_t *r = json_loadb((const char *)m->data, m->len, 0, &je);
    if (!r)
        return store_i_err_set(err, STORE_EUNAVAIL, "JetStream reply is not JSON: %s", je.text);
    json_t *jerr = json_object_get(r, "error");
    if (jerr) {
        *api_code = (int)json_integer_value(json_object_get(jerr, "err_code"));
        int code = (int)json_integer_value(json_object_get(jerr, "code"));
        const char *d = json_string_value(json_object_get(jerr, "description"));
        int rc = store_i_err_set(err, code == 400 || code == 413 ? STORE_EINVAL : STORE_EUNAVAIL,
                                 "JetStream: %s (%d/%d)", d ? d : "error", code, *api_code);
        json_decref(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* A PubAck's stream sequence without building a JSON tree: every record
 * gets one, and jansson's parse (object, keys, values) was a measurable share
 * of the loop thread's allocations. Returns 0 when the reply is not a plain
 * {"stream":...,"seq":N...} without an "error" member: api_reply decides. */
static uint64_t puback_seq(const struct jsbus_msg *m)
{
    static const char key[] = "\"seq\":";
    const char *d = (const char *)m->data, *end = d + m->len;
    if (m->len < 10 || memcmp(d, "{\"stream\":", 10) != 0 ||
        memmem(d, m->len, "\"error\"", 7) != NULL)
        return 0;
    const char *k = memmem(d, m->len, key, sizeof key - 1);
    if (!k)
        return 0;
    const char *p = k + sizeof key - 1;
    uint64_t v = 0;
    int digits = 0;
    for (; p < end && *p >= '0' && *p <= '9' && digits < 19; p++, digits++)
        v = v * 10 + (uint64_t)(*p - '0');
    if (!digits || p == end || (*p != ',' && *p != '}'))
        return 0;
    return v;
}

static int prefix_valid(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    return n >= 1 && n <= 32 &&
           strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* ---- configs ------------------------------------------------------------------ */

static char *stream_config(struct js_state *js, const char *name, const char *subject,
                           int64_t max_age_ns)
{
    json_t *c = json_pack("{s:s, s:[s], s:s, s:s, s:i, s:s, s:b, s:b, s:I, s:I}", "name", name,
                          "subjects", subject, "retention", "limits", "storage", "file",
                          "num_replicas", (int)js->replicas, "discard", "old", "deny_delete", 1,
                          "deny_purge", 1, "duplicate_window",
                          (json_int_t)(max_age_ns > 0 && max_age_ns < JS_DUP_WINDOW_NS
                                           ? max_age_ns
                                           : JS_DUP_WINDOW_NS),
                          "max_age", (json_int_t)max_age_ns);
    char *s = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return s;
}

static void data_name(struct js_state *js, uint64_t uid, char *out, size_t n)
{
    snprintf(out, n, "%s-data-%" PRIu64, js->prefix, uid);
}

/* ---- the local copy ----------------------------------------------------------- */

/* Percent-encodes a partition key for a header (NATS headers are text lines)
 * into "out", which has room for n * 3 + 1 bytes. */
static void pk_encode(char *out, const uint8_t *p, size_t n)
{
    char *o = out;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        if (p[i] > 0x20 && p[i] < 0x7f && p[i] != '%') {
            *o++ = (char)p[i];
        } else {
            *o++ = '%';
            *o++ = hex[p[i] >> 4];
            *o++ = hex[p[i] & 15];
        }
    }
    *o = 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes into "out" (at least strlen(s) bytes); the length, or -1. */
static long pk_decode(const char *s, uint8_t *out)
{
    size_t n = 0;
    for (; *s; s++) {
        if (*s == '%') {
            int a = hexval(s[1]), b = a < 0 ? -1 : hexval(s[2]);
            if (b < 0)
                return -1;
            out[n++] = (uint8_t)(a * 16 + b);
            s += 2;
        } else {
            out[n++] = (uint8_t)*s;
        }
    }
    return (long)n;
}

static void feed_follow(struct js_feed *fd);
static void release_held(struct store *s, const struct store_stream *gone);

/* Closed shards whose end this gateway's copy has now passed have all their
 * records here: readers may learn they are at the end. */
static void feed_tails(struct js_feed *fd)
{
    struct store_stream *st = fd->st;
    fd->tail_min = UINT64_MAX;
    for (uint32_t i = 0; st && i < st->nshards; i++) {
        struct store_shard *sh = st->shards[i];
        if (!sh->js_tail_open || sh->js_fence_wait)
            continue;
        if (fd->next_seq > sh->end_seq.counter) {
            sh->js_tail_open = 0;
            store_i_shard_mark_notify(sh);
        } else if (sh->end_seq.counter < fd->tail_min) {
            fd->tail_min = sh->end_seq.counter;
        }
    }
}

/* Whether the record stored at "seq" in shard "sh" is refused: its shard
 * was closed before it, by a fence (every gateway sees the same fences in
 * the same place, so all refuse the same records) or by the catalog. */
static int record_refused(const struct store_shard *sh, uint64_t seq)
{
    if (sh->has_end && !sh->js_fence_wait && seq > sh->end_seq.counter)
        return 1;
    return sh->js_fenced_at && seq > sh->js_fenced_at;
}

/* Sets sh->js_fenced_at from the fences in force. */
static void fence_apply(const struct js_feed *fd, struct store_shard *sh)
{
    sh->js_fenced_at = 0;
    for (size_t i = 0; i < fd->nfences; i++) {
        const struct js_fence *f = &fd->fences[i];
        for (size_t k = 0; k < f->n; k++)
            if (f->idx[k] == sh->index && (!sh->js_fenced_at || f->seq < sh->js_fenced_at))
                sh->js_fenced_at = f->seq;
    }
}

/* After fence "f" came or went: the shards it names. */
static void fence_apply_to(const struct js_feed *fd, const struct js_fence *f)
{
    for (size_t k = 0; k < f->n; k++) {
        struct store_shard *sh = store_stream_shard(fd->st, f->idx[k]);
        if (sh)
            fence_apply(fd, sh);
    }
}

static void fence_seen(struct js_feed *fd, const struct jsbus_msg *m)
{
    json_t *j = json_loadb((const char *)m->data, m->len, 0, NULL);
    json_t *a = json_object_get(j, "shards"), *v;
    size_t i;
    if (!json_is_array(a) || json_array_size(a) > STORE_MAX_SHARD_TOTAL) {
        store_i_log(fd->s, STORE_LOG_ERROR, "jetstream: message %" PRIu64 " of %s: bad fence",
                    m->stream_seq, fd->name);
        json_decref(j);
        return;
    }
    fd->fences = store_i_xrealloc(fd->fences, (fd->nfences + 1) * sizeof *fd->fences);
    struct js_fence *f = &fd->fences[fd->nfences++];
    /* Its age counts from when JetStream stored it: a gateway starting
     * after its author died need not wait the whole grace again. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age = ((int64_t)now.tv_sec * 1000000000LL + now.tv_nsec - m->time_ns) / 1000000;
    if (m->time_ns <= 0 || age < 0)
        age = 0;
    if (age > JS_FENCE_GRACE_MS)
        age = JS_FENCE_GRACE_MS;
    *f = (struct js_fence){.seq = m->stream_seq, .seen_ms = mono_ms() - age};
    f->idx = store_i_xmalloc((json_array_size(a) + 1) * sizeof *f->idx);
    json_array_foreach(a, i, v) {
        if (json_is_integer(v) && json_integer_value(v) >= 0 &&
            json_integer_value(v) < STORE_MAX_SHARD_TOTAL)
            f->idx[f->n++] = (uint32_t)json_integer_value(v);
    }
    json_decref(j);
    fence_apply_to(fd, f);
    arm(fd->s->js, f->seen_ms + JS_FENCE_GRACE_MS);
}

static void fence_cancelled(struct js_feed *fd, const struct jsbus_msg *m)
{
    json_t *j = json_loadb((const char *)m->data, m->len, 0, NULL);
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(j, "fence"));
    json_decref(j);
    for (size_t i = 0; i < fd->nfences; i++) {
        if (fd->fences[i].seq != seq)
            continue;
        struct js_fence gone = fd->fences[i];
        fd->fences[i] = fd->fences[--fd->nfences];
        fence_apply_to(fd, &gone);
        free(gone.idx);
        return;
    }
}

/* Our record number "counter" (from its Nats-Msg-Id), or 0 if not ours. */
static uint64_t own_counter(const struct js_state *js, const struct jsbus_msg *m)
{
    const char *id = jsbus_msg_header(m, "Nats-Msg-Id");
    size_t n = strlen(js->origin);
    if (!id || strncmp(id, js->origin, n) != 0 || id[n] != '-' || id[n + 1] < '1' ||
        id[n + 1] > '9')
        return 0;
    char *end;
    unsigned long long c = strtoull(id + n + 1, &end, 10);
    return *end ? 0 : (uint64_t)c;
}

/* Keeps what record "i" of "b" needs to be sent again from the refused
 * message itself (the publish freed its copy at the acknowledgement). */
static void reroute_keep(struct js_state *js, struct js_batch *b, size_t i,
                         const struct jsbus_msg *m)
{
    struct js_reroute **tail = &b->rr;
    for (; *tail; tail = &(*tail)->next)
        if ((*tail)->i == i)
            return; /* stored twice (a retry past the duplicate window) */
    const char *pk = jsbus_msg_header(m, "Sluice-Pk");
    const char *ehk = jsbus_msg_header(m, "Sluice-Ehk");
    struct js_reroute *r = store_i_xcalloc(1, sizeof *r);
    r->pk = store_i_xmalloc(pk ? strlen(pk) + 1 : 1);
    long pklen = pk ? pk_decode(pk, r->pk) : -1;
    if (pklen < 1 || (ehk && store_hashkey_parse(ehk, strlen(ehk), &r->hk, NULL) != 0)) {
        free(r->pk);
        free(r);
        b->refused = 1; /* not a record of ours after all: nothing to send again */
        return;
    }
    r->pklen = (size_t)pklen;
    r->has_ehk = ehk != NULL;
    if (!ehk)
        store_hashkey_from_partition_key(r->pk, r->pklen, &r->hk);
    r->len = m->len;
    r->data = store_i_xmalloc(m->len ? m->len : 1);
    memcpy(r->data, m->data, m->len);
    r->b = b;
    r->i = i;
    *tail = r;
    b->rr_left++;
    if (js->rr_tail)
        js->rr_tail->qnext = r;
    else
        js->rr_head = r;
    js->rr_tail = r;
}

static void reroute_free(struct js_reroute *r)
{
    free(r->pk);
    free(r->data);
    free(r);
}

/* One record: 0 when done with (applied or refused), -1 when copying must
 * wait for the catalog. */
static int feed_record(struct js_feed *fd, const struct jsbus_msg *m, const char *kind)
{
    struct store *s = fd->s;
    char *end;
    unsigned long idx = strtoul(kind, &end, 10);
    int numeric = *kind >= '0' && *kind <= '9' && *end == 0 && idx < STORE_MAX_SHARD_TOTAL;
    struct store_shard *sh = numeric ? store_stream_shard(fd->st, (uint32_t)idx) : NULL;
    if (numeric && !sh) {
        /* A shard a reshard added: its records can arrive before the
         * catalog bundle that adds it. Copying stops here until it does. */
        int64_t now = mono_ms();
        if (fd->stuck_seq != m->stream_seq) {
            fd->stuck_seq = m->stream_seq;
            fd->stuck_since = now;
        }
        if (now - fd->stuck_since < JS_UNKNOWN_SHARD_MS) {
            fd->paused_at = m->stream_seq;
            jsbus_unfollow(fd->f); /* safe inside its own delivery */
            fd->f = NULL;
            fd->retry_at = now + 500;
            arm(s->js, fd->retry_at);
            return -1;
        }
    }
    if (sh && record_refused(sh, m->stream_seq)) {
        /* Rare (a reshard raced the append): the batch is looked for here,
         * so that nothing is done per record or per answer otherwise. */
        uint64_t c = own_counter(s->js, m);
        for (struct js_batch *b = s->js->batches; c && b; b = b->lnext)
            if (c >= b->c0 && c < b->c0 + b->n) {
                reroute_keep(s->js, b, (size_t)(c - b->c0), m);
                break;
            }
        return 0;
    }
    const char *pk = jsbus_msg_header(m, "Sluice-Pk");
    const char *ehk = jsbus_msg_header(m, "Sluice-Ehk");
    const char *arr = jsbus_msg_header(m, "Sluice-Arrival");
    uint8_t pkbuf[STORE_MAX_PARTITION_KEY * 3 + 1];
    long pklen = pk && strlen(pk) <= STORE_MAX_PARTITION_KEY * 3 ? pk_decode(pk, pkbuf) : -1;
    struct store_hashkey hk;
    struct store_record_in r = {0};
    r.partition_key = (struct store_bytes){pkbuf, pklen > 0 ? (size_t)pklen : 0};
    r.data = (struct store_bytes){m->data, m->len};
    if (ehk && store_hashkey_parse(ehk, strlen(ehk), &hk, NULL) == 0)
        r.explicit_hash_key = &hk;
    struct store_err e = {0};
    if (!sh || pklen < 1 || !arr ||
        store_i_shard_apply(sh, &r, (struct store_seq){sh->start_seq.gen, sh->index, m->stream_seq},
                            strtoll(arr, NULL, 10), &e) != 0)
        store_i_log(s, STORE_LOG_ERROR,
                    "jetstream: message %" PRIu64 " of %s (%s) is not a record of stream %s: %s",
                    m->stream_seq, fd->name, m->subject, fd->st->name,
                    e.msg[0] ? e.msg : "bad subject or headers");
    return 0;
}

static void feed_deliver(void *arg, const struct jsbus_msg *m)
{
    struct js_feed *fd = arg;
    if (!fd->st || fd->paused_at || m->stream_seq < fd->next_seq)
        return;
    const char *dot = strrchr(m->subject, '.');
    const char *kind = dot ? dot + 1 : "";
    if (strcmp(kind, "fence") == 0)
        fence_seen(fd, m);
    else if (strcmp(kind, "cancel") == 0)
        fence_cancelled(fd, m);
    else if (feed_record(fd, m, kind) != 0)
        return;
    fd->next_seq = m->stream_seq + 1;
    if (fd->next_seq > fd->tail_min)
        feed_tails(fd);
}

/* Copying stopped before a record of a shard unknown here: go on (the
 * catalog may have brought it; if not, it stops there again). */
static void feed_resume(struct js_feed *fd)
{
    if (!fd->paused_at || !fd->st)
        return;
    fd->paused_at = 0;
    fd->retry_at = 0;
    feed_follow(fd);
}

static void feed_free(struct js_feed *fd)
{
    for (size_t i = 0; i < fd->nfences; i++)
        free(fd->fences[i].idx);
    free(fd->fences);
    free(fd);
}

static void on_ensure(void *arg, const struct jsbus_msg *m, const struct store_err *e)
{
    struct js_feed *fd = arg;
    fd->ensuring = 0;
    if (!fd->st) {
        feed_free(fd);
        return;
    }
    struct store *s = fd->s;
    json_t *r;
    int api;
    struct store_err err;
    if (api_reply(m, e, &r, &api, &err) != 0 && api != JSERR_STREAM_NAME_IN_USE) {
        store_i_log(s, STORE_LOG_WARN, "jetstream: creating %s for stream %s: %s (retrying)",
                    fd->name, fd->st->name, err.msg);
        fd->retry_at = mono_ms() + 1000;
        arm(s->js, fd->retry_at);
        return;
    }
    json_decref(r);
    store_i_log(s, STORE_LOG_DEBUG, "jetstream: %s is there for stream %s", fd->name, fd->st->name);
    fd->ready = 1;
    release_held(s, NULL);
    feed_follow(fd);
}

static void on_retention(void *arg, const struct jsbus_msg *m, const struct store_err *e)
{
    struct store *s = arg;
    json_t *r;
    int api;
    struct store_err err;
    if (api_reply(m, e, &r, &api, &err) != 0)
        store_i_log(s, STORE_LOG_WARN, "jetstream: retention not applied to JetStream: %s",
                    err.msg);
    json_decref(r);
}

void store_i_js_stream_retention(struct store *s, struct store_stream *st)
{
    struct js_state *js = s->js;
    char name[80], subj[160], api[160];
    data_name(js, st->uid, name, sizeof name);
    snprintf(subj, sizeof subj, "%s.data.%" PRIu64 ".*", js->prefix, st->uid);
    snprintf(api, sizeof api, "$JS.API.STREAM.UPDATE.%s", name);
    char *cfg = stream_config(js, name, subj, (int64_t)st->retention_hours * 3600 * 1000000000LL);
    jsbus_request(js->bus, api, NULL, 0, cfg, strlen(cfg), JS_REQUEST_MS, on_retention, s, NULL);
    free(cfg);
}

static void feed_ensure(struct js_feed *fd)
{
    struct store *s = fd->s;
    struct js_state *js = s->js;
    char subj[160], api[160];
    snprintf(subj, sizeof subj, "%s.data.%" PRIu64 ".*", js->prefix, fd->st->uid);
    snprintf(api, sizeof api, "$JS.API.STREAM.CREATE.%s", fd->name);
    char *cfg = stream_config(js, fd->name, subj,
                              (int64_t)fd->st->retention_hours * 3600 * 1000000000LL);
    struct store_err e;
    fd->retry_at = 0;
    if (jsbus_request(js->bus, api, NULL, 0, cfg, strlen(cfg), JS_REQUEST_MS, on_ensure, fd, &e) ==
        0) {
        fd->ensuring = 1;
    } else {
        fd->retry_at = mono_ms() + 1000;
        arm(js, fd->retry_at);
    }
    free(cfg);
}

static void feed_follow(struct js_feed *fd)
{
    struct store_err e;
    fd->f = jsbus_follow(fd->s->js->bus, fd->name, NULL, fd->next_seq, feed_deliver, fd, &e);
    if (!fd->f) {
        store_i_log(fd->s, STORE_LOG_WARN, "jetstream: following %s: %s (retrying)", fd->name,
                    e.msg);
        fd->retry_at = mono_ms() + 1000;
        arm(fd->s->js, fd->retry_at);
    }
}

/* Starts copying a stream's records here (the stream's creation is durable). */
static void feed_start(struct store *s, struct store_stream *st)
{
    if (st->feed || !s->js)
        return;
    struct js_feed *fd = store_i_xcalloc(1, sizeof *fd);
    fd->s = s;
    fd->st = st;
    fd->next_seq = 1;
    fd->tail_min = UINT64_MAX;
    data_name(s->js, st->uid, fd->name, sizeof fd->name);
    st->feed = fd;
    feed_tails(fd); /* closed shards adopted while opening, before any feed */
    feed_ensure(fd);
}

void store_i_js_stream_free(struct store_stream *st)
{
    if (st->store->js)
        release_held(st->store, st); /* they fail: the stream is going */
    struct js_feed *fd = st->feed;
    if (!fd)
        return;
    st->feed = NULL;
    jsbus_unfollow(fd->f);
    fd->f = NULL;
    fd->st = NULL;
    if (!fd->ensuring)
        feed_free(fd);
}

/* ---- appends ------------------------------------------------------------------ */

static void batch_finish(struct store *s, struct js_batch *b, const struct store_err *e)
{
    if (b->lprev)
        b->lprev->lnext = b->lnext;
    else
        s->js->batches = b->lnext;
    if (b->lnext)
        b->lnext->lprev = b->lprev;
    b->sh->js_refs--;
    for (struct js_reroute *r = b->rr, *nx; r; r = nx) {
        nx = r->next;
        if (!r->sent) { /* leaves the queue (a rare walk: failed or closing) */
            struct js_reroute *prev = NULL;
            for (struct js_reroute **pp = &s->js->rr_head; *pp; prev = *pp, pp = &(*pp)->qnext)
                if (*pp == r) {
                    *pp = r->qnext;
                    if (s->js->rr_tail == r)
                        s->js->rr_tail = prev;
                    break;
                }
        }
        if (r->sent && !r->done)
            r->b = NULL; /* its inner append's callback frees it */
        else
            reroute_free(r);
    }
    if (b->cb)
        b->cb(b->arg, e);
    free(b->pubs);
    free(b);
}

static int batch_readable(const struct js_batch *b)
{
    const struct store_shard *sh = b->sh;
    return sh->has_pub && store_seq_cmp(sh->last_pub, b->max) >= 0;
}

/* Every record of "b" is in the copy, or was refused by it: the copy has
 * passed the last of them. Not for a deleted stream's shard. */
static int batch_decided(const struct js_batch *b)
{
    const struct js_feed *fd = b->sh->stream->feed;
    return batch_readable(b) || (b->rr && fd && fd->next_seq > b->max.counter);
}

static void on_reroute_done(void *arg, const struct store_err *e)
{
    struct js_reroute *r = arg;
    struct js_batch *b = r->b;
    if (!b) {
        reroute_free(r);
        return;
    }
    r->done = 1;
    b->rr_left--;
    if (e && !b->failed) {
        b->failed = 1;
        b->err = *e;
    } else if (!e && b->seqs) {
        b->seqs[r->i] = r->seq;
    }
    free(r->data);
    r->data = NULL;
    /* The batch waits on the await list: look at it after this dispatch. */
    arm(b->sh->store->js, mono_ms());
}

/* Sends again, in the order they were refused, the refused records whose
 * destination is known: the shard their hash key routes to now, unless that
 * is still the fenced one (this gateway has not yet seen how the reshard
 * ended); stops at the first that must wait, so that records appended to
 * one shard in some order are stored again in that order. Returns whether
 * some wait. */
static int reroute_pump(struct store *s)
{
    struct js_state *js = s->js;
    while (js->rr_head) {
        struct js_reroute *r = js->rr_head;
        struct js_batch *b = r->b;
        struct store_shard *t = NULL;
        struct store_err e;
        int routed = !b->sh->deleted && store_stream_route(b->sh->stream, &r->hk, &t, &e) == 0;
        if (routed && t == b->sh && t->js_fenced_at)
            return 1;
        js->rr_head = r->qnext;
        if (!js->rr_head)
            js->rr_tail = NULL;
        r->qnext = NULL;
        r->sent = 1;
        if (!routed) {
            store_i_err_set(&e, STORE_EUNAVAIL,
                            "a record refused by a reshard found no shard to go to: %s",
                            b->sh->deleted ? "the stream was deleted" : e.msg);
        } else {
            struct store_record_in in = {.partition_key = {r->pk, r->pklen},
                                         .data = {r->data, r->len},
                                         .explicit_hash_key = r->has_ehk ? &r->hk : NULL};
            if (store_i_js_append(t, &in, 1, &r->seq, on_reroute_done, r, &e) == 0) {
                store_i_log(s, STORE_LOG_DEBUG,
                            "jetstream: a record of shard %s refused by a reshard goes to %s",
                            b->sh->id, t->id);
                continue;
            }
        }
        r->done = 1;
        b->rr_left--;
        if (!b->failed) {
            b->failed = 1;
            b->err = e;
        }
    }
    return 0;
}

/* The answer for an acknowledged batch, once the copy decided; 0 while it
 * has not. */
static int batch_verdict(const struct js_state *js, const struct js_batch *b, struct store_err *e)
{
    if (b->sh->deleted)
        return store_i_err_set(e, STORE_ENOTFOUND, "the stream was deleted");
    if (b->refused) /* stored in JetStream, in no shard (a fence came before it) */
        return store_i_err_set(e, STORE_EUNAVAIL,
                               "shard %s was closed by a reshard while the records were on their "
                               "way; retry",
                               b->sh->id);
    if (b->failed) { /* a record sent again after a refusal failed */
        *e = b->err;
        return -1;
    }
    if (batch_decided(b) && !b->rr_left)
        return 1;
    if (js->closing)
        return store_i_err_set(e, STORE_EUNAVAIL, "store closed before its copy had the records");
    return 0;
}

static void pub_free(struct js_pub *p)
{
    free(p->data); /* p->pk lies in the same block */
    p->pk = NULL;
    p->data = NULL;
}

static void pub_done(struct store *s, struct js_pub *p, const struct store_err *e)
{
    struct js_batch *b = p->b;
    pub_free(p);
    if (e && !b->failed) {
        b->failed = 1;
        b->err = *e;
    }
    if (--b->left)
        return;
    struct store_err ve;
    int v;
    if (b->failed) {
        batch_finish(s, b, &b->err);
    } else if ((v = batch_verdict(s->js, b, &ve)) != 0) {
        batch_finish(s, b, v > 0 ? NULL : &ve);
    } else {
        /* Acknowledged = durable, but answered only once this gateway's
         * copy took the records in: a reshard's fence may come first and
         * then no shard holds them. */
        b->await_until = mono_ms() + JS_VERDICT_WAIT_MS;
        b->anext = s->js->await;
        s->js->await = b;
        arm(s->js, b->await_until);
    }
}

/* Appends "p" to the list (*head .. *tail): the retry, window and hold
 * lists all keep append order. */
static void pub_push(struct js_pub **head, struct js_pub **tail, struct js_pub *p)
{
    p->rnext = NULL;
    if (*head)
        (*tail)->rnext = p;
    else
        *head = p;
    *tail = p;
}

static void pub_send(struct store *s, struct js_pub *p);
static void on_pub_answer(struct store *s, struct js_pub *p, const struct jsbus_msg *m,
                          const struct store_err *e);

static void pub_retry(struct store *s, struct js_pub *p, const struct store_err *e)
{
    int64_t now = mono_ms();
    if (!p->doomed && (now + JS_RETRY_MS >= p->deadline || s->js->closing)) {
        pub_done(s, p, e);
        return;
    }
    p->retry_at = p->doomed ? now : now + JS_RETRY_MS;
    /* At the tail: retries go out in the order they failed, which is the
     * order they were appended when a whole run failed together. */
    pub_push(&s->js->retry, &s->js->rtail, p);
    arm(s->js, p->retry_at);
}

/* Sends queued publishes while the window has room. */
static void pub_drain(struct store *s)
{
    struct js_state *js = s->js;
    while (js->qhead && js->inflight_pubs < JS_PUB_WINDOW) {
        struct js_pub *p = js->qhead;
        js->qhead = p->rnext;
        if (!js->qhead)
            js->qtail = NULL;
        p->queued = 0;
        js->queued_bytes -= p->len;
        p->deadline = mono_ms() + JS_APPEND_DEADLINE_MS; /* its turn: no queueing again */
        pub_send(s, p);
    }
}

static void on_pub_ack(void *arg, const struct jsbus_msg *m, const struct store_err *e)
{
    struct js_pub *p = arg;
    struct js_batch *b = p->b;
    struct store *s = b->sh->store;
    s->js->inflight_pubs--;
    on_pub_answer(s, p, m, e);
    pub_drain(s);
}

static void on_pub_answer(struct store *s, struct js_pub *p, const struct jsbus_msg *m,
                          const struct store_err *e)
{
    struct js_batch *b = p->b;
    json_t *r;
    int api;
    struct store_err err;
    json_int_t seq = e ? 0 : (json_int_t)puback_seq(m);
    if (seq < 1) {
        if (api_reply(m, e, &r, &api, &err) != 0) {
            if (err.code == STORE_EUNAVAIL && !b->sh->deleted)
                pub_retry(s, p, &err);
            else
                pub_done(s, p, &err);
            return;
        }
        seq = json_integer_value(json_object_get(r, "seq"));
        json_decref(r);
    }
    if (seq < 1) {
        store_i_err_set(&err, STORE_EUNAVAIL, "JetStream acknowledgement without a sequence");
        pub_done(s, p, &err);
        return;
    }
    struct store_seq q = {b->sh->start_seq.gen, b->sh->index, (uint64_t)seq};
    if (b->seqs)
        b->seqs[p->i] = q;
    if (store_seq_cmp(q, b->max) > 0)
        b->max = q;
    pub_done(s, p, NULL);
}

static void pub_send(struct store *s, struct js_pub *p)
{
    struct js_state *js = s->js;
    if (js->inflight_pubs >= JS_PUB_WINDOW || (js->qhead && !p->deadline)) {
        /* Behind others: keeps records in the order they were appended. */
        p->queued = 1;
        pub_push(&js->qhead, &js->qtail, p);
        js->queued_bytes += p->len;
        return;
    }
    if (!p->deadline)
        p->deadline = mono_ms() + JS_APPEND_DEADLINE_MS;
    struct jsbus_hdr h[4] = {{"Nats-Msg-Id", p->msgid},
                             {"Sluice-Pk", p->pk},
                             {"Sluice-Arrival", p->arrival},
                             {"Sluice-Ehk", p->ehk}};
    struct store_err e;
    if (p->b->sh->deleted) {
        store_i_err_set(&e, STORE_ENOTFOUND, "the stream was deleted");
        pub_done(s, p, &e);
        return;
    }
    int rc = jsbus_request(s->js->bus, p->subject, h, p->ehk[0] ? 4 : 3, p->data, p->len,
                           JS_REQUEST_MS, on_pub_ack, p, &e);
    if (rc == 0)
        js->inflight_pubs++;
    else if (rc == STORE_EUNAVAIL)
        pub_retry(s, p, &e);
    else { /* e.g. larger than the servers' max_payload: no retry helps */
        /* Failed from the timer, not here: this may run inside
         * store_shard_append, which fires no callback. */
        if (!p->b->failed) {
            p->b->failed = 1;
            p->b->err = e;
        }
        p->doomed = 1;
        p->deadline = 0;
        pub_retry(s, p, &e);
    }
}

int store_i_js_append(struct store_shard *sh, const struct store_record_in *recs, size_t n,
                      struct store_seq *seqs, store_done_fn on_done, void *arg,
                      struct store_err *err)
{
    struct store *s = sh->store;
    struct js_state *js = s->js;
    if (sh->offline)
        return store_shard_check(sh, err);
    if (sh->has_end)
        return store_i_err_set(err, STORE_ESTATE, "shard %s is closed", sh->id);
    if (n == 0 || n > STORE_MAX_BATCH)
        return store_i_err_set(err, STORE_EINVAL, "batch of %zu records (1..%d allowed)", n,
                               STORE_MAX_BATCH);
    for (size_t i = 0; i < n; i++) {
        if (recs[i].partition_key.len < 1 || recs[i].partition_key.len > STORE_MAX_PARTITION_KEY)
            return store_i_err_set(err, STORE_EINVAL,
                                   "record %zu: partition key length %zu (1..%d)", i,
                                   recs[i].partition_key.len, STORE_MAX_PARTITION_KEY);
        if (recs[i].data.len > STORE_MAX_RECORD_DATA)
            return store_i_err_set(err, STORE_EINVAL, "record %zu: data length %zu (max %d)", i,
                                   recs[i].data.len, STORE_MAX_RECORD_DATA);
    }
    if (!jsbus_connected(js->bus))
        return store_i_err_set(err, STORE_EUNAVAIL, "not connected to NATS");
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += recs[i].data.len;
    if (js->queued_bytes && js->queued_bytes + bytes > JS_QUEUE_BYTES)
        return store_i_err_set(err, STORE_EUNAVAIL,
                               "JetStream is behind: %zu bytes of records wait to be sent",
                               js->queued_bytes);
    struct js_batch *b = store_i_xcalloc(1, sizeof *b);
    b->sh = sh;
    b->n = b->left = n;
    b->seqs = seqs;
    b->cb = on_done;
    b->arg = arg;
    b->born = mono_ms();
    b->c0 = js->msg_counter + 1;
    b->lnext = js->batches;
    if (js->batches)
        js->batches->lprev = b;
    js->batches = b;
    b->pubs = store_i_xcalloc(n, sizeof *b->pubs);
    sh->js_refs++;
    /* formatted once: every record of the batch has the same */
    char subject[sizeof b->pubs->subject], arrival[sizeof b->pubs->arrival];
    size_t subject_n = (size_t)snprintf(subject, sizeof subject, "%s.data.%" PRIu64 ".%" PRIu32,
                                        js->prefix, sh->stream->uid, sh->index) + 1;
    size_t arrival_n = (size_t)snprintf(arrival, sizeof arrival, "%" PRId64, store_i_now(s)) + 1;
    if (subject_n > sizeof subject)
        subject_n = sizeof subject;
    if (arrival_n > sizeof arrival)
        arrival_n = sizeof arrival;
    for (size_t i = 0; i < n; i++) {
        struct js_pub *p = &b->pubs[i];
        const struct store_record_in *r = &recs[i];
        p->b = b;
        p->i = i;
        memcpy(p->subject, subject, subject_n);
        memcpy(p->arrival, arrival, arrival_n);
        snprintf(p->msgid, sizeof p->msgid, "%s-%" PRIu64, js->origin, ++js->msg_counter);
        if (r->explicit_hash_key)
            store_hashkey_format(r->explicit_hash_key, p->ehk);
        /* one block per record: the data, then its encoded partition key */
        p->len = r->data.len;
        p->data = store_i_xmalloc(p->len + r->partition_key.len * 3 + 1);
        memcpy(p->data, r->data.p, p->len);
        p->pk = (char *)p->data + p->len;
        pk_encode(p->pk, r->partition_key.p, r->partition_key.len);
    }
    /* Until the stream's JetStream stream exists a publish would find no
     * responder and be retried, and records retried after later ones had
     * gone through would be stored out of order: they wait, in order. So
     * do those of a shard whose reshard is not yet in the catalog (if that
     * loses a race, another gateway's shard may get the same index). */
    int hold = !sh->stream->feed || !sh->stream->feed->ready || sh->pending;
    for (size_t i = 0; i < n; i++) {
        struct js_pub *p = &b->pubs[i];
        if (!hold) {
            pub_send(s, p);
            continue;
        }
        pub_push(&js->hhead, &js->htail, p);
        js->queued_bytes += p->len;
    }
    if (hold)
        arm(js, b->born + JS_APPEND_DEADLINE_MS);
    return 0;
}

/* Goes through the held publishes in the order they were appended: those
 * whose JetStream stream exists and whose shard is in the catalog go, those
 * of a shard gone (or of "gone", a stream being freed) or held longer than
 * JS_APPEND_DEADLINE_MS fail, the rest stay. */
/* Whether a held publish of shard "sh" may go now. */
static int held_may_go(const struct store_shard *sh)
{
    return sh->stream->feed && sh->stream->feed->ready && !sh->pending;
}

static void release_held(struct store *s, const struct store_stream *gone)
{
    int64_t old = mono_ms() - JS_APPEND_DEADLINE_MS;
    struct js_state *js = s->js;
    struct js_pub *mine = NULL, **tail = &mine, **pp = &js->hhead;
    js->htail = NULL;
    while (*pp) {
        struct js_pub *p = *pp;
        const struct store_shard *sh = p->b->sh;
        if (sh->deleted || sh->stream == gone || held_may_go(sh) || p->b->born <= old) {
            *pp = p->rnext;
            p->rnext = NULL;
            *tail = p;
            tail = &p->rnext;
        } else {
            js->htail = p;
            pp = &p->rnext;
        }
    }
    while (mine) {
        struct js_pub *p = mine;
        mine = p->rnext;
        js->queued_bytes -= p->len;
        const struct store_shard *sh = p->b->sh;
        struct store_err e;
        if (sh->deleted || sh->stream == gone) {
            store_i_err_set(&e, STORE_ENOTFOUND, "shard %s is gone (stream deleted or reshard "
                            "undone)", sh->id);
            pub_done(s, p, &e);
        } else if (held_may_go(sh)) {
            pub_send(s, p);
        } else {
            store_i_err_set(&e, STORE_EUNAVAIL, "JetStream did not make room for the records "
                            "in time");
            pub_done(s, p, &e);
        }
    }
}

void store_i_js_after(struct store *s)
{
    struct js_state *js = s->js;
    if (!js || (!js->await && !js->rr_head))
        return;
    int64_t now = mono_ms();
    if (js->rr_head && !js->closing && reroute_pump(s))
        arm(js, now + JS_RETRY_MS); /* look again for where they go */
    struct js_batch **pp = &js->await, *ready = NULL;
    while (*pp) {
        struct js_batch *b = *pp;
        struct store_err ve;
        int v = batch_verdict(js, b, &ve);
        if (v == 0 && now >= b->await_until)
            v = store_i_err_set(&ve, STORE_EUNAVAIL,
                                "records stored, but this gateway's copy did not take them in "
                                "within %d s",
                                JS_VERDICT_WAIT_MS / 1000);
        if (v != 0) {
            *pp = b->anext;
            b->anext = ready;
            ready = b;
            b->failed = v < 0;
            b->err = ve;
        } else {
            pp = &b->anext;
        }
    }
    while (ready) {
        struct js_batch *b = ready;
        ready = b->anext;
        batch_finish(s, b, b->failed ? &b->err : NULL);
    }
}

/* ---- resharding: fences and cancels ---------------------------------------------
 *
 * A reshard of ours closes its shards in memory at once (as on the embedded
 * backend) and publishes a fence naming them in the stream's data stream;
 * the catalog bundle carrying the reshard waits for the fence's stream
 * sequence F, which becomes the closed shards' ending number. Every copy
 * refuses records of a fenced shard stored after F, so a record another
 * gateway published to a closed shard is either below the end or in no
 * shard at all; its gateway then sends it again (struct js_reroute) to the
 * shard its key goes to once it knows how the reshard ended, and answers
 * with that record's number. If the bundle loses a race, or the
 * reshard is undone, a cancel lifts the fence. A fence left by a gateway
 * that died before either is voided by any gateway after JS_FENCE_GRACE_MS:
 * a "void" bundle in the catalog (which a late bundle of the dead one can
 * no longer follow), then a cancel. */

static void cat_fail(struct store *s, const struct store_err *e);
static void ctl_send(struct js_ctl *c);

static struct js_ctl *ctl_new(struct store *s, enum ctl_kind kind, uint64_t uid, char *body)
{
    struct js_state *js = s->js;
    struct js_ctl *c = store_i_xcalloc(1, sizeof *c);
    c->s = s;
    c->kind = kind;
    c->uid = uid;
    c->body = body;
    c->deadline = mono_ms() + JS_APPEND_DEADLINE_MS;
    snprintf(c->subject, sizeof c->subject, "%s.data.%" PRIu64 ".%s", js->prefix, uid,
             kind == CTL_FENCE ? "fence" : "cancel");
    c->next = js->ctl;
    js->ctl = c;
    return c;
}

static void ctl_free(struct js_ctl *c)
{
    struct js_state *js = c->s->js;
    for (struct js_ctl **pp = &js->ctl; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    free(c->body);
    free(c);
}

/* Lifts fence "fence" of stream "uid" (the same message id from every
 * gateway: JetStream keeps one). */
static void ctl_cancel(struct store *s, uint64_t uid, uint64_t fence)
{
    char *body = store_i_xmalloc(48);
    snprintf(body, 48, "{\"fence\":%" PRIu64 "}", fence);
    struct js_ctl *c = ctl_new(s, CTL_CANCEL, uid, body);
    c->fence = fence;
    snprintf(c->msgid, sizeof c->msgid, "%s-cancel-%" PRIu64 "-%" PRIu64, s->js->prefix, uid,
             fence);
    ctl_send(c);
}

static struct js_ctl *ctl_fence_of(struct js_state *js, uint64_t version)
{
    for (struct js_ctl *c = js->ctl; c; c = c->next)
        if (c->kind == CTL_FENCE && c->version == version)
            return c;
    return NULL;
}

/* A reshard of ours waits for its fence: no bundle goes before it. */
static int fence_waiting(const struct js_state *js)
{
    for (const struct js_ctl *c = js->ctl; c; c = c->next)
        if (c->kind == CTL_FENCE && c->version && !c->acked)
            return 1;
    return 0;
}

static struct store_stream *stream_by_uid(struct store *s, uint64_t uid)
{
    for (size_t i = 0; i < s->nstreams; i++)
        if (s->streams[i]->uid == uid)
            return s->streams[i];
    return NULL;
}

/* Not stored, for good (deadline, refusal): a fence's reshard is undone. */
static void ctl_give_up(struct js_ctl *c, const struct store_err *e)
{
    struct store *s = c->s;
    store_i_log(s, STORE_LOG_WARN, "jetstream: %s of stream %" PRIu64 " not stored: %s",
                c->kind == CTL_FENCE ? "reshard fence" : "fence cancel", c->uid, e->msg);
    int undo = c->kind == CTL_FENCE && c->version;
    ctl_free(c);
    if (undo)
        cat_fail(s, e); /* undoes every pending change, this reshard among them */
}

static void ctl_retry(struct js_ctl *c, const struct store_err *e)
{
    int64_t now = mono_ms();
    if (now + JS_RETRY_MS >= c->deadline || c->s->js->closing) {
        ctl_give_up(c, e);
        return;
    }
    c->retry_at = now + JS_RETRY_MS;
    arm(c->s->js, c->retry_at);
}

static void on_ctl_ack(void *arg, const struct jsbus_msg *m, const struct store_err *e)
{
    struct js_ctl *c = arg;
    struct store *s = c->s;
    c->inflight = 0;
    if (s->js->closing == 2) {
        ctl_free(c);
        return;
    }
    json_t *r;
    int api;
    struct store_err err;
    if (api_reply(m, e, &r, &api, &err) != 0) {
        if (err.code == STORE_EUNAVAIL)
            ctl_retry(c, &err);
        else
            ctl_give_up(c, &err);
        return;
    }
    json_int_t seq = json_integer_value(json_object_get(r, "seq"));
    json_decref(r);
    if (c->kind == CTL_CANCEL || seq < 1) {
        ctl_free(c);
        return;
    }
    c->acked = 1;
    c->fence = (uint64_t)seq;
    if (!c->version || store_i_reshard_fenced(s, c->version, c->fence) != 0) {
        /* Undone while the fence travelled: lift it again. */
        uint64_t uid = c->uid, fence = c->fence;
        ctl_free(c);
        ctl_cancel(s, uid, fence);
        return;
    }
    struct store_stream *st = stream_by_uid(s, c->uid);
    if (st && st->feed)
        feed_tails(st->feed);
    /* store_i_js_dispatch commits next: the bundle goes. */
}

static void ctl_send(struct js_ctl *c)
{
    struct js_state *js = c->s->js;
    struct jsbus_hdr h[1] = {{"Nats-Msg-Id", c->msgid}};
    struct store_err e;
    c->retry_at = 0;
    if (jsbus_request(js->bus, c->subject, h, 1, c->body, strlen(c->body), JS_REQUEST_MS,
                      on_ctl_ack, c, &e) == 0) {
        c->inflight = 1;
        return;
    }
    /* From the timer, never here: this may run inside a store call that
     * fires no callback. */
    c->retry_at = mono_ms() + JS_RETRY_MS;
    arm(js, c->retry_at);
}

void store_i_js_reshard_fence(struct store *s, struct store_stream *st, uint64_t version,
                              const uint32_t *idx, size_t nidx)
{
    struct js_state *js = s->js;
    json_t *a = json_array();
    for (size_t i = 0; i < nidx; i++)
        json_array_append_new(a, json_integer(idx[i]));
    json_t *j = json_pack("{s:o, s:s}", "shards", a, "origin", js->origin);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct js_ctl *c = ctl_new(s, CTL_FENCE, st->uid, body);
    c->version = version;
    snprintf(c->msgid, sizeof c->msgid, "%s-fence-%" PRIu64, js->origin, ++js->msg_counter);
    ctl_send(c);
}

void store_i_js_reshard_durable(struct store *s, uint64_t version)
{
    struct js_ctl *c = ctl_fence_of(s->js, version);
    if (c)
        ctl_free(c);
    /* The new shards' held appends go, from the timer (no callback here). */
    if (s->js->hhead)
        arm(s->js, mono_ms());
}

void store_i_js_reshard_undone(struct store *s, uint64_t version)
{
    struct js_ctl *c = ctl_fence_of(s->js, version);
    if (c && c->acked) {
        uint64_t uid = c->uid, fence = c->fence;
        ctl_free(c);
        ctl_cancel(s, uid, fence);
    } else if (c) {
        c->version = 0; /* its acknowledgement cancels it */
    }
    if (s->js->hhead) /* the buried shards' held appends fail */
        arm(s->js, mono_ms());
}

/* Another gateway's reshards of "st", as the tree object "o" has them: the
 * shards they closed close here, those they added are added. */
static void adopt_shards(struct store *s, struct store_stream *st, json_t *o)
{
    json_t *shards = json_object_get(o, "shards");
    if (!json_is_array(shards))
        return; /* never resharded */
    int changed = 0;
    for (size_t j = 0; j < json_array_size(shards); j++) {
        json_t *v = json_array_get(shards, j);
        struct store_shard *sh;
        if (j >= st->nshards) {
            struct store_err e;
            sh = store_i_reshard_add(st, v, &e);
            if (!sh) {
                store_i_log(s, STORE_LOG_ERROR, "jetstream: %s", e.msg);
                break;
            }
            sh->js_tail_open = sh->has_end;
            if (st->feed) /* a fence may name it already */
                fence_apply(st->feed, sh);
            changed = 1;
            continue;
        }
        sh = st->shards[j];
        const char *es = json_string_value(json_object_get(v, "end_seq"));
        struct store_seq end;
        if (!es || sh->has_end || store_seq_parse(es, strlen(es), &end, NULL) != 0)
            continue;
        sh->has_end = 1;
        sh->end_seq = end;
        sh->closed_ms = json_integer_value(json_object_get(v, "closed_ms"));
        sh->js_tail_open = 1;
        changed = 1;
    }
    if (!changed)
        return;
    store_i_stream_index_open(st);
    if (st->feed) {
        feed_tails(st->feed);
        feed_resume(st->feed);
    }
}

/* Whether the catalog closed every shard of fence "f" at it. */
static int fence_adopted(const struct store_stream *st, const struct js_fence *f)
{
    for (size_t k = 0; k < f->n; k++) {
        const struct store_shard *sh = f->idx[k] < st->nshards ? st->shards[f->idx[k]] : NULL;
        if (!sh || !sh->has_end || sh->js_fence_wait || sh->end_seq.counter != f->seq)
            return 0;
    }
    return 1;
}

/* Whether fence "seq" of stream "uid" may be one of our reshards still
 * under way (its own path ends it). */
static int fence_ours_pending(const struct js_state *js, uint64_t uid, uint64_t seq)
{
    for (const struct js_ctl *c = js->ctl; c; c = c->next)
        if (c->kind == CTL_FENCE && c->uid == uid && (!c->acked || c->fence == seq))
            return 1;
    return 0;
}

static void bundle_send(struct store *s, const char *buf, size_t len, struct cat_ack *a);

/* Voids the fences nobody finished; the next monotonic ms to look again. */
static int64_t fences_check(struct store *s, int64_t now)
{
    struct js_state *js = s->js;
    int64_t next = 0;
    for (size_t i = 0; i < s->nstreams; i++) {
        struct store_stream *st = s->streams[i];
        struct js_feed *fd = st->feed;
        for (size_t k = 0; fd && k < fd->nfences; k++) {
            struct js_fence *f = &fd->fences[k];
            if (f->adopted || (f->adopted = fence_adopted(st, f)) != 0 ||
                fence_ours_pending(js, st->uid, f->seq))
                continue;
            int64_t due = (f->void_at ? f->void_at : f->seen_ms) + JS_FENCE_GRACE_MS;
            if (now >= due && !js->inflight && !s->cat.n && !fence_waiting(js)) {
                store_i_log(s, STORE_LOG_WARN,
                            "jetstream: stream %s: fence %" PRIu64 " was neither committed nor "
                            "cancelled in %d s: voiding it",
                            st->name, f->seq, JS_FENCE_GRACE_MS / 1000);
                char buf[256];
                struct cat_ack *a = store_i_xcalloc(1, sizeof *a);
                a->s = s;
                a->id = ++js->bundle_counter;
                a->epoch = js->epoch;
                a->void_uid = st->uid;
                a->void_fence = f->seq;
                int n = snprintf(buf, sizeof buf,
                                 "{\"origin\":\"%s\",\"id\":%" PRIu64 ",\"recs\":[],\"void\":{"
                                 "\"uid\":%" PRIu64 ",\"fence\":%" PRIu64 "}}",
                                 js->origin, a->id, st->uid, f->seq);
                f->void_at = now;
                bundle_send(s, buf, (size_t)n, a);
                due = now + JS_FENCE_GRACE_MS;
            } else if (now >= due) {
                due = now + JS_RETRY_MS; /* after what is in flight */
            }
            if (!next || due < next)
                next = due;
        }
    }
    return next;
}

/* ---- the catalog -------------------------------------------------------------- */

static int status_index(const char *name, int n, const char *(*fn)(int))
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(fn(i), name) == 0)
            return i;
    return -1;
}

static const char *stream_status_fn(int i)
{
    return store_stream_status_name((enum store_stream_status)i);
}

static const char *consumer_status_fn(int i)
{
    return store_consumer_status_name((enum store_consumer_status)i);
}

static char *dup_or_null(const char *v)
{
    return v ? store_i_xstrdup(v) : NULL;
}

/* Brings an existing stream's catalog fields in line with its tree object. */
static void refresh_stream(struct store *s, struct store_stream *st, json_t *o)
{
    int k = status_index(json_string_value(json_object_get(o, "status")), 4, stream_status_fn);
    if (k >= 0)
        st->status = (enum store_stream_status)k;
    json_int_t v = json_integer_value(json_object_get(o, "retention_hours"));
    if (v >= STORE_RETENTION_MIN_HOURS && v <= STORE_RETENTION_MAX_HOURS)
        st->retention_hours = (uint32_t)v;
    st->on_demand = json_is_true(json_object_get(o, "on_demand"));
    st->shard_metrics = (uint32_t)json_integer_value(json_object_get(o, "shard_metrics")) &
                        STORE_SHARD_METRICS_ALL;
    v = json_integer_value(json_object_get(o, "max_record_kib"));
    st->max_record_kib = v >= STORE_MAX_RECORD_KIB_MIN && v <= STORE_MAX_RECORD_KIB_MAX
                             ? (uint32_t)v
                             : STORE_MAX_RECORD_KIB_MIN;
    free(st->kms_key_id);
    st->kms_key_id = dup_or_null(json_string_value(json_object_get(o, "kms_key_id")));
    free(st->policy);
    st->policy = dup_or_null(json_string_value(json_object_get(o, "policy")));
    json_t *cons = json_object_get(o, "consumers"), *cv, *tv;
    /* Consumers that went away: the gateway lets go of them first. */
    for (size_t i = 0; i < st->nconsumers; i++)
        if (!json_object_get(cons, st->consumers[i].name) && s->opts.on_remote_removal &&
            !s->js->opening)
            s->opts.on_remote_removal(s->opts.on_remote_removal_arg, st->name,
                                      st->consumers[i].name);
    adopt_shards(s, st, o);
    store_i_stream_catalog_reset(st);
    const char *key, *tk;
    json_object_foreach(json_object_get(o, "tags"), key, tv) {
        store_i_stream_tag_put(st, key, json_is_string(tv) ? json_string_value(tv) : "");
    }
    json_object_foreach(cons, key, cv) {
        int cs = status_index(json_string_value(json_object_get(cv, "status")), 3,
                              consumer_status_fn);
        const char *arn = json_string_value(json_object_get(cv, "arn"));
        if (cs < 0 || !arn)
            continue;
        store_i_stream_consumer_put(st, key, arn, (enum store_consumer_status)cs,
                                    json_integer_value(json_object_get(cv, "created_ms")));
        const char *pol = json_string_value(json_object_get(cv, "policy"));
        if (pol)
            store_i_stream_consumer_policy_put(st, key, pol);
        json_object_foreach(json_object_get(cv, "tags"), tk, tv) {
            store_i_stream_consumer_tag_put(st, key, tk,
                                            json_is_string(tv) ? json_string_value(tv) : "");
        }
    }
}

/* The stream "name" lookups find. A deletion of ours not yet durable is not
 * among them, and needs no care here: a bundle from another gateway undoes
 * our pending changes before it is applied. */
static struct store_stream *find_stream(struct store *s, const char *name)
{
    struct store_stream *st;
    return store_stream_lookup(s, name, &st, NULL) == 0 ? st : NULL;
}

/* Makes stream "name" in memory what the tree says it is. */
static void reconcile_stream(struct store *s, const char *name)
{
    struct js_state *js = s->js;
    json_t *o = json_object_get(json_object_get(js->tree, "streams"), name);
    struct store_stream *st = find_stream(s, name);
    if (st && (!o || (uint64_t)json_integer_value(json_object_get(o, "uid")) != st->uid)) {
        if (s->opts.on_remote_removal && !js->opening) /* nobody holds it while opening */
            s->opts.on_remote_removal(s->opts.on_remote_removal_arg, name, NULL);
        store_i_stream_detach(s, st);
        store_i_stream_bury(s, st);
        st = NULL;
    }
    if (!o)
        return;
    if (st) {
        refresh_stream(s, st, o);
        return;
    }
    struct store_err e;
    if (store_i_catalog_build_stream(s, name, o, "the JetStream catalog", &st, &e) != 0) {
        store_i_log(s, STORE_LOG_ERROR, "jetstream: stream %s: %s", name, e.msg);
        return;
    }
    uint64_t next = (uint64_t)json_integer_value(json_object_get(js->tree, "next_uid"));
    if (next > s->next_uid)
        s->next_uid = next;
    if (!js->opening)
        feed_start(s, st);
}

static void reconcile_record(struct store *s, json_t *rec)
{
    const char *op = json_string_value(json_object_get(rec, "op"));
    if (op && strcmp(op, "account") == 0) {
        free(s->account_settings);
        s->account_settings =
            dup_or_null(json_string_value(json_object_get(s->js->tree, "account_settings")));
        return;
    }
    const char *name = json_string_value(json_object_get(rec, "stream"));
    if (name)
        reconcile_stream(s, name);
}

static void cat_fail(struct store *s, const struct store_err *e)
{
    struct js_state *js = s->js;
    js->epoch++;
    js->inflight = 0;
    js->flying = NULL;
    if (s->cat.n)
        store_i_log(s, STORE_LOG_WARN, "jetstream: undoing %zu catalog changes: %s", s->cat.n,
                    e->msg);
    store_i_catalog_failed(s, e);
}

/* The bundle in flight is stored at "seq": its changes are durable. */
static void bundle_durable(struct store *s, struct cat_ack *a, uint64_t seq)
{
    struct js_state *js = s->js;
    js->inflight = 0;
    js->flying = NULL;
    if (seq > js->cat_expect)
        js->cat_expect = seq;
    if (a->version > s->manifest_done) {
        s->manifest_done = a->version;
        store_i_catalog_durable(s, a->version);
    }
    if (a->void_fence) /* no late bundle can adopt the fence now: lift it */
        ctl_cancel(s, a->void_uid, a->void_fence);
    store_i_js_commit_catalog(s); /* what was made while this one flew */
}

static void on_cat_ack(void *arg, const struct jsbus_msg *m, const struct store_err *e)
{
    struct cat_ack *a = arg;
    struct store *s = a->s;
    struct js_state *js = s->js;
    if (!js || a->epoch != js->epoch || a->settled) { /* undone, or its echo settled it */
        free(a);
        return;
    }
    json_t *r;
    int api;
    struct store_err err;
    if (api_reply(m, e, &r, &api, &err) != 0) {
        if (api == JSERR_WRONG_LAST_SEQUENCE)
            store_i_err_set(&err, STORE_ECONFLICT,
                            "the catalog changed through another gateway; retry");
        free(a);
        cat_fail(s, &err);
        return;
    }
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(r, "seq"));
    json_decref(r);
    if (a->settled) { /* its echo was faster */
        free(a);
        return;
    }
    if (js->necho == js->echocap) {
        js->echocap = js->echocap ? js->echocap * 2 : 8;
        js->echo = store_i_xrealloc(js->echo, js->echocap * sizeof *js->echo);
    }
    js->echo[js->necho++] = a->id;
    bundle_durable(s, a, seq);
    free(a);
}

void store_i_js_commit_catalog(struct store *s)
{
    struct js_state *js = s->js;
    if (js->inflight || js->closing == 2 || s->catalog_version <= s->manifest_posted ||
        fence_waiting(js))
        return;
    struct cat_rec *recs;
    size_t n = store_i_catalog_take_unposted(s, &recs);
    s->manifest_posted = s->catalog_version;
    if (!n) {
        free(recs);
        return;
    }
    size_t len = 96;
    for (size_t i = 0; i < n; i++)
        len += recs[i].len + 1;
    char *buf = store_i_xmalloc(len), *p = buf;
    uint64_t id = ++js->bundle_counter;
    p += sprintf(p, "{\"origin\":\"%s\",\"id\":%" PRIu64 ",\"recs\":[", js->origin, id);
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, recs[i].data, recs[i].len);
        p += recs[i].len;
        free(recs[i].data);
    }
    p += sprintf(p, "]}");
    struct cat_ack *a = store_i_xcalloc(1, sizeof *a);
    a->s = s;
    a->id = id;
    a->epoch = js->epoch;
    a->version = recs[n - 1].version;
    free(recs);
    bundle_send(s, buf, (size_t)(p - buf), a);
    free(buf);
}

/* Publishes a bundle, expecting the catalog's last message to be the last
 * we know of; one at a time. */
static void bundle_send(struct store *s, const char *buf, size_t len, struct cat_ack *a)
{
    struct js_state *js = s->js;
    char expect[24], subj[64];
    snprintf(expect, sizeof expect, "%" PRIu64, js->cat_expect);
    snprintf(subj, sizeof subj, "%s.catalog", js->prefix);
    struct jsbus_hdr h[1] = {{"Nats-Expected-Last-Sequence", expect}};
    struct store_err e;
    js->inflight = 1;
    js->flying = a;
    if (jsbus_request(js->bus, subj, h, 1, buf, len, JS_REQUEST_MS, on_cat_ack, a, &e) != 0) {
        free(a);
        cat_fail(s, &e);
    }
}

static void cat_deliver(void *arg, const struct jsbus_msg *m)
{
    struct store *s = arg;
    struct js_state *js = s->js;
    if (m->stream_seq <= js->cat_seq)
        return;
    json_error_t je;
    json_t *b = json_loadb((const char *)m->data, m->len, 0, &je);
    json_t *recs = json_object_get(b, "recs");
    const char *origin = json_string_value(json_object_get(b, "origin"));
    uint64_t id = (uint64_t)json_integer_value(json_object_get(b, "id"));
    js->cat_seq = m->stream_seq;
    if (js->cat_expect < js->cat_seq)
        js->cat_expect = js->cat_seq;
    if (!json_is_array(recs)) {
        store_i_log(s, STORE_LOG_ERROR, "jetstream: catalog message %" PRIu64 " is no bundle",
                    m->stream_seq);
        json_decref(b);
        return;
    }
    const char *secret = json_string_value(json_object_get(b, "secret"));
    if (origin && strcmp(origin, "genesis") == 0 && secret) {
        SHA256((const unsigned char *)secret, strlen(secret), js->secret);
        js->has_secret = 1;
    }
    int mine = origin && strcmp(origin, js->origin) == 0;
    int own = mine && js->necho && js->echo[0] == id;
    if (own) {
        memmove(js->echo, js->echo + 1, (--js->necho) * sizeof *js->echo);
    } else if (mine && js->flying && js->flying->id == id) {
        /* Our bundle in flight, back before its acknowledgement (the two
         * travel separately): stored, so durable. */
        own = 1;
        js->flying->settled = 1;
        bundle_durable(s, js->flying, m->stream_seq);
    } else if ((json_array_size(recs) || json_object_get(b, "void")) &&
               (s->cat.n || js->inflight)) {
        /* Ours, not yet acknowledged, cannot follow this one any more (a
         * void counts: a reshard of ours must not commit a voided fence). */
        struct store_err e;
        store_i_err_set(&e, STORE_ECONFLICT, "the catalog changed through another gateway; retry");
        cat_fail(s, &e);
    }
    size_t i;
    json_t *rec;
    json_array_foreach(recs, i, rec) {
        char why[200];
        if (store_i_catalog_tree_apply(js->tree, rec, why, sizeof why) != 0) {
            store_i_log(s, STORE_LOG_ERROR, "jetstream: catalog message %" PRIu64 ": %s",
                        m->stream_seq, why);
            continue;
        }
        if (!own)
            reconcile_record(s, rec);
    }
    json_decref(b);
}

void store_i_js_stream_ready(struct store *s, struct store_stream *st)
{
    feed_start(s, st);
}

static void on_ignored(void *arg, const struct jsbus_msg *m, const struct store_err *e)
{
    (void)arg;
    (void)m;
    (void)e;
}

void store_i_js_stream_deleted(struct store *s, struct store_stream *st)
{
    /* The deleting gateway removes the records (once: a missing stream is
     * fine); the others only stop copying them. */
    char name[80], api[160];
    data_name(s->js, st->uid, name, sizeof name);
    snprintf(api, sizeof api, "$JS.API.STREAM.DELETE.%s", name);
    jsbus_request(s->js->bus, api, NULL, 0, "", 0, JS_REQUEST_MS, on_ignored, NULL, NULL);
}

/* ---- subscriptions across gateways ---------------------------------------------- */

static void claim_key(const struct store_shard *sh, const char *arn, char *out, size_t n)
{
    snprintf(out, n, "%" PRIu64 ".%" PRIu32 ".%s", sh->stream ? sh->stream->uid : 0, sh->index,
             arn);
}

static struct sub_claim *claim_get(struct js_state *js, const char *key, int create)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    struct sub_claim **pp = &js->claims[h % SUB_BUCKETS];
    for (struct sub_claim *c = *pp; c; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    if (!create)
        return NULL;
    struct sub_claim *c = store_i_xcalloc(1, sizeof *c);
    c->key = store_i_xstrdup(key);
    c->next = *pp;
    *pp = c;
    return c;
}

int store_sub_elsewhere(const struct store_shard *sh, const char *arn, int64_t since_ms)
{
    struct js_state *js = sh->store->js;
    if (!js || !sh->stream)
        return 0;
    char key[2300];
    claim_key(sh, arn, key, sizeof key);
    const struct sub_claim *c = claim_get(js, key, 0);
    return c && c->holder[0] && c->started_ms >= since_ms;
}

static void sub_announce(struct store_shard *sh, const char *arn, int64_t started_ms, int release)
{
    struct store *s = sh->store;
    struct js_state *js = s->js;
    if (!js || !sh->stream || js->closing)
        return;
    char key[2300], subj[64];
    claim_key(sh, arn, key, sizeof key);
    if (!release)
        claim_get(js, key, 1)->own_pending++;
    json_t *m = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:b}", "o", js->origin, "k", key, "s",
                          sh->stream->name, "i", (json_int_t)sh->index, "a", arn, "t",
                          (json_int_t)started_ms, "r", release);
    char *body = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    snprintf(subj, sizeof subj, "%s.subs", js->prefix);
    /* Best effort: a lost claim only weakens the rule for 5 s. */
    jsbus_request(js->bus, subj, NULL, 0, body, strlen(body), JS_REQUEST_MS, on_ignored, NULL,
                  NULL);
    free(body);
}

void store_sub_claim(struct store_shard *sh, const char *arn, int64_t started_ms)
{
    sub_announce(sh, arn, started_ms, 0);
}

void store_sub_release(struct store_shard *sh, const char *arn)
{
    sub_announce(sh, arn, 0, 1);
}

static void sub_deliver(void *arg, const struct jsbus_msg *m)
{
    struct store *s = arg;
    struct js_state *js = s->js;
    json_t *j = json_loadb((const char *)m->data, m->len, 0, NULL);
    const char *o = json_string_value(json_object_get(j, "o"));
    const char *key = json_string_value(json_object_get(j, "k"));
    const char *stream = json_string_value(json_object_get(j, "s"));
    const char *arn = json_string_value(json_object_get(j, "a"));
    json_int_t idx = json_integer_value(json_object_get(j, "i"));
    int release = json_is_true(json_object_get(j, "r"));
    if (!o || !key || !stream || !arn || strlen(o) >= sizeof ((struct sub_claim *)0)->holder) {
        json_decref(j);
        return;
    }
    struct sub_claim *c = claim_get(js, key, 1);
    if (strcmp(o, js->origin) == 0) {
        if (!release && c->own_pending)
            c->own_pending--;
    } else if (release) {
        if (strcmp(c->holder, o) == 0)
            c->holder[0] = 0;
    } else {
        strcpy(c->holder, o);
        c->started_ms = json_integer_value(json_object_get(j, "t"));
        /* Ours, if one is still on its way, comes later in the stream and
         * wins; otherwise this one took ours over. */
        if (!c->own_pending && s->opts.on_sub_taken && !js->opening)
            s->opts.on_sub_taken(s->opts.on_sub_taken_arg, stream, (uint32_t)idx, arn);
    }
    json_decref(j);
}

/* ---- dispatch ----------------------------------------------------------------- */

static void run_timers(struct store *s)
{
    struct js_state *js = s->js;
    uint64_t ticks;
    /* Only when the timer went off: every reply and delivery dispatches, and
     * the scans below (every stream's feed among them) are not for each. */
    if (read(js->tfd, &ticks, sizeof ticks) <= 0)
        return;
    js->timer_at = 0;
    int64_t now = mono_ms(), next = 0;
    struct js_pub *due = NULL, **due_tail = &due, **pp = &js->retry;
    while (*pp) {
        struct js_pub *p = *pp;
        if (p->retry_at <= now) {
            *pp = p->rnext;
            p->rnext = NULL;
            *due_tail = p;
            due_tail = &p->rnext;
        } else {
            if (!next || p->retry_at < next)
                next = p->retry_at;
            js->rtail = p;
            pp = &p->rnext;
        }
    }
    while (due) {
        struct js_pub *p = due;
        due = p->rnext;
        p->retry_at = 0;
        if (p->doomed)
            pub_done(s, p, &p->b->err);
        else
            pub_send(s, p);
    }
    for (size_t i = 0; i < s->nstreams; i++) {
        struct js_feed *fd = s->streams[i]->feed;
        if (!fd || !fd->retry_at)
            continue;
        if (fd->retry_at <= now) {
            fd->retry_at = 0;
            if (fd->paused_at)
                feed_resume(fd);
            else if (fd->f == NULL && !fd->ensuring)
                feed_ensure(fd);
        } else if (!next || fd->retry_at < next) {
            next = fd->retry_at;
        }
    }
    for (struct js_batch *b = js->await; b; b = b->anext)
        if (!next || b->await_until < next)
            next = b->await_until;
    /* Control messages due again (a give-up may free others: restart). */
    for (int again = 1; again;) {
        again = 0;
        for (struct js_ctl *c = js->ctl; c; c = c->next) {
            if (!c->retry_at || c->inflight)
                continue;
            if (c->retry_at <= now) {
                if (now >= c->deadline) {
                    struct store_err e;
                    store_i_err_set(&e, STORE_EUNAVAIL, "JetStream did not answer in %d s",
                                    JS_APPEND_DEADLINE_MS / 1000);
                    ctl_give_up(c, &e);
                    again = 1;
                    break;
                }
                ctl_send(c);
            }
            if (c->retry_at && (!next || c->retry_at < next))
                next = c->retry_at;
        }
    }
    int64_t fnext = fences_check(s, now);
    if (fnext && (!next || fnext < next))
        next = fnext;
    if (js->hhead) {
        release_held(s, NULL); /* released, gone, or held too long */
        if (js->hhead && (!next || js->hhead->b->born + JS_APPEND_DEADLINE_MS < next))
            next = js->hhead->b->born + JS_APPEND_DEADLINE_MS;
    }
    if (next)
        arm(js, next);
}

void store_i_js_dispatch(struct store *s)
{
    if (!s->js)
        return;
    jsbus_dispatch(s->js->bus);
    run_timers(s);
    if (s->commit_list || store_commit_pending(s))
        store_commit(s);
}

int store_shared_secret(const struct store *s, uint8_t *out, size_t len)
{
    if (!s->js || !s->js->has_secret)
        return 0;
    memcpy(out, s->js->secret, len < sizeof s->js->secret ? len : sizeof s->js->secret);
    return 1;
}

int store_i_js_notify_fd(struct store *s)
{
    return s->js->epfd;
}

/* ---- open and close ----------------------------------------------------------- */

/* Runs the loop's part (replies, deliveries, commits) until "done" says so. */
static int pump(struct store *s, int (*done)(struct store *, void *), void *arg, int64_t timeout_ms,
                const char *what, struct store_err *err)
{
    int64_t end = mono_ms() + timeout_ms;
    while (!done(s, arg)) {
        if (mono_ms() > end)
            return store_i_err_set(err, STORE_EUNAVAIL, "jetstream: timed out %s", what);
        struct pollfd p = {.fd = jsbus_notify_fd(s->js->bus), .events = POLLIN};
        poll(&p, 1, 50);
        store_i_js_dispatch(s);
    }
    return 0;
}

/* A JetStream API call during open. A fresh or busy cluster may take a
 * while to place a replicated stream or to elect its leader: timeouts, no
 * responders and 503 answers are retried until JS_OPEN_TIMEOUT_MS. */
static int sync_api(struct store *s, const char *subject, const char *body, json_t **out,
                    int *api, struct store_err *err)
{
    int64_t end = mono_ms() + JS_OPEN_TIMEOUT_MS;
    for (int attempt = 1;; attempt++) {
        json_t *r = NULL;
        *api = 0;
        int rc = jsbus_request_sync(s->js->bus, subject, body, strlen(body), JS_REQUEST_MS, &r,
                                    err);
        int retry = rc == STORE_EUNAVAIL;
        json_t *jerr = rc ? NULL : json_object_get(r, "error");
        if (jerr) {
            *api = (int)json_integer_value(json_object_get(jerr, "err_code"));
            int code = (int)json_integer_value(json_object_get(jerr, "code"));
            const char *d = json_string_value(json_object_get(jerr, "description"));
            rc = store_i_err_set(err, STORE_EUNAVAIL, "JetStream %s: %s (%d)", subject,
                                 d ? d : "error", *api);
            retry = code == 503 || code == 408;
            json_decref(r);
        }
        if (!rc) {
            *out = r;
            return 0;
        }
        if (!retry || mono_ms() + 500 > end)
            return rc;
        if (attempt == 1 || (attempt & (attempt - 1)) == 0)
            store_i_log(s, STORE_LOG_WARN, "jetstream: %s (attempt %d, retrying)",
                        err ? err->msg : "request failed", attempt);
        struct timespec ts = {0, 500 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

struct genesis {
    int done;
    struct store_err err;
};

static void on_genesis(void *arg, const struct jsbus_msg *m, const struct store_err *e)
{
    struct genesis *g = arg;
    json_t *r;
    int api;
    if (api_reply(m, e, &r, &api, &g->err) == 0)
        json_decref(r);
    g->done = 1;
}

static int genesis_done(struct store *s, void *arg)
{
    (void)s;
    return ((struct genesis *)arg)->done;
}

static int catalog_caught_up(struct store *s, void *arg)
{
    return s->js->cat_seq >= *(uint64_t *)arg;
}

struct catchup {
    size_t n;
    char **names;
    uint64_t *last;
};

static int data_caught_up(struct store *s, void *arg)
{
    struct catchup *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        struct store_stream *st = find_stream(s, c->names[i]);
        if (st && st->feed && st->feed->next_seq <= c->last[i])
            return 0;
    }
    return 1;
}

static uint64_t stream_last_seq(struct store *s, const char *name, struct store_err *err, int *rc)
{
    char api[160];
    snprintf(api, sizeof api, "$JS.API.STREAM.INFO.%s", name);
    json_t *r = NULL;
    int code;
    *rc = sync_api(s, api, "", &r, &code, err);
    if (*rc && code == JSERR_STREAM_NOT_FOUND) {
        *rc = 0;
        return 0;
    }
    if (*rc)
        return 0;
    json_t *state = json_object_get(r, "state");
    uint64_t last = json_integer_value(json_object_get(state, "messages")) > 0
                        ? (uint64_t)json_integer_value(json_object_get(state, "last_seq"))
                        : 0;
    json_decref(r);
    return last;
}

/* Empties the local copy: it is rebuilt from JetStream, and anything left
 * from an earlier run could disagree with it. */
static int wipe(const char *dir, struct store_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : store_i_err_errno(err, errno, "open %s", dir);
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) && !rc) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR)
            rc = wipe(p, err);
        if (!rc && remove(p) != 0 && errno != ENOENT)
            rc = store_i_err_errno(err, errno, "remove %s", p);
    }
    closedir(d);
    return rc;
}

int store_i_js_wipe(struct store *s, struct store_err *err)
{
    int rc = 0;
    static const char *const keep[] = {"LOCK", "iterator.key", STORE_JS_MARKER};
    /* Never the embedded store's data: only a directory this backend made. */
    if (faccessat(s->dir_fd, "MANIFEST", F_OK, 0) == 0 &&
        faccessat(s->dir_fd, STORE_JS_MARKER, F_OK, 0) != 0)
        return store_i_err_set(err, STORE_EINVAL,
                               "%s holds an embedded store, which the jetstream backend would "
                               "empty: give it another --data-dir",
                               s->dir);
    int mfd = openat(s->dir_fd, STORE_JS_MARKER, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (mfd < 0)
        return store_i_err_errno(err, errno, "create %s/%s", s->dir, STORE_JS_MARKER);
    close(mfd);
    DIR *d = opendir(s->dir);
    if (!d)
        return store_i_err_errno(err, errno, "open %s", s->dir);
    struct dirent *de;
    while ((de = readdir(d)) && !rc) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, keep[0]) == 0 ||
            strcmp(de->d_name, keep[1]) == 0 || strcmp(de->d_name, keep[2]) == 0)
            continue;
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", s->dir, de->d_name);
        if (de->d_type == DT_DIR)
            rc = wipe(p, err);
        if (!rc && de->d_type != DT_DIR && remove(p) != 0 && errno != ENOENT)
            rc = store_i_err_errno(err, errno, "remove %s", p);
    }
    closedir(d);
    return rc;
}

int store_i_js_open(struct store *s, struct store_err *err)
{
    struct store_err local;
    if (!err)
        err = &local;
    const struct store_opts *o = &s->opts;
    if (!o->nats_url || !*o->nats_url)
        return store_i_err_set(err, STORE_EINVAL, "jetstream backend: no NATS URL");
    const char *prefix = o->nats_prefix ? o->nats_prefix : "sluice";
    if (!prefix_valid(prefix))
        return store_i_err_set(err, STORE_EINVAL,
                               "NATS prefix %s: 1..32 of [A-Za-z0-9_-] expected", prefix);
    uint32_t replicas = o->nats_replicas ? o->nats_replicas : 3;
    if (replicas > 5)
        return store_i_err_set(err, STORE_EINVAL, "NATS replicas %" PRIu32 ": 1..5 expected",
                               replicas);
    struct js_state *js = store_i_xcalloc(1, sizeof *js);
    s->js = js;
    js->epfd = js->tfd = -1;
    snprintf(js->prefix, sizeof js->prefix, "%s", prefix);
    js->replicas = replicas;
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return store_i_err_set(err, STORE_EIO, "no random bytes for the gateway's name");
    for (int i = 0; i < 16; i++)
        sprintf(js->origin + 2 * i, "%02x", rnd[i]);
    js->tree = json_pack("{s:{}, s:i}", "streams", "next_uid", 0);
    struct jsbus_opts bo = {.urls = o->nats_url,
                            .creds = o->nats_creds,
                            .tls_ca = o->nats_tls_ca,
                            .name = "sluice",
                            .log = o->log,
                            .log_arg = o->log_arg};
    int rc = jsbus_open(&bo, &js->bus, err);
    if (rc)
        return rc;
    js->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    js->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (js->tfd < 0 || js->epfd < 0)
        return store_i_err_errno(err, errno, "timerfd/epoll");
    int fds[3] = {store_i_syncer_fd(s->syncer), jsbus_notify_fd(js->bus), js->tfd};
    for (int i = 0; i < 3; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        if (epoll_ctl(js->epfd, EPOLL_CTL_ADD, fds[i], &ev) != 0)
            return store_i_err_errno(err, errno, "epoll_ctl");
    }

    /* The catalog stream, and its first message. */
    char name[80], subj[80], api[160];
    snprintf(name, sizeof name, "%s-catalog", js->prefix);
    snprintf(subj, sizeof subj, "%s.catalog", js->prefix);
    snprintf(api, sizeof api, "$JS.API.STREAM.CREATE.%s", name);
    char *cfg = stream_config(js, name, subj, 0);
    json_t *r = NULL;
    int code;
    rc = sync_api(s, api, cfg, &r, &code, err);
    free(cfg);
    json_decref(r);
    if (rc && code != JSERR_STREAM_NAME_IN_USE)
        return rc;
    uint64_t last = stream_last_seq(s, name, err, &rc);
    if (rc)
        return rc;
    if (last == 0) {
        char gid[80];
        snprintf(gid, sizeof gid, "%s-genesis", js->prefix);
        struct jsbus_hdr h[1] = {{"Nats-Msg-Id", gid}};
        unsigned char rs[32];
        char body[160], hex[65];
        if (RAND_bytes(rs, sizeof rs) != 1)
            return store_i_err_set(err, STORE_EIO, "no random bytes for the shared secret");
        for (int i = 0; i < 32; i++)
            sprintf(hex + 2 * i, "%02x", rs[i]);
        snprintf(body, sizeof body, "{\"origin\":\"genesis\",\"id\":0,\"secret\":\"%s\",\"recs\":[]}",
                 hex);
        /* Retried like sync_api: the new stream may still be electing a leader. */
        int64_t end = mono_ms() + JS_OPEN_TIMEOUT_MS;
        for (;;) {
            struct genesis g = {0};
            rc = jsbus_request(js->bus, subj, h, 1, body, strlen(body), JS_REQUEST_MS, on_genesis,
                               &g, err);
            if (!rc)
                rc = pump(s, genesis_done, &g, JS_REQUEST_MS * 2,
                          "writing the catalog's first message", err);
            if (!rc && g.err.code)
                rc = store_i_err_set(err, g.err.code, "%s", g.err.msg);
            if (!rc)
                break;
            if (rc != STORE_EUNAVAIL || mono_ms() + 500 > end)
                return rc;
            struct timespec ts = {0, 500 * 1000000L};
            nanosleep(&ts, NULL);
        }
        last = stream_last_seq(s, name, err, &rc);
        if (rc)
            return rc;
    }
    /* Subscriptions across gateways: claims, kept a minute. */
    char sname[80], ssubj[80];
    snprintf(sname, sizeof sname, "%s-subs", js->prefix);
    snprintf(ssubj, sizeof ssubj, "%s.subs", js->prefix);
    snprintf(api, sizeof api, "$JS.API.STREAM.CREATE.%s", sname);
    cfg = stream_config(js, sname, ssubj, JS_SUB_MAX_AGE_NS);
    r = NULL;
    rc = sync_api(s, api, cfg, &r, &code, err);
    free(cfg);
    json_decref(r);
    if (rc && code != JSERR_STREAM_NAME_IN_USE)
        return rc;
    js->sub_follow = jsbus_follow(js->bus, sname, NULL, 1, sub_deliver, s, err);
    if (!js->sub_follow)
        return err->code;
    js->opening = 1;
    js->cat_follow = jsbus_follow(js->bus, name, NULL, 1, cat_deliver, s, err);
    if (!js->cat_follow)
        return err ? err->code : STORE_EUNAVAIL;
    rc = pump(s, catalog_caught_up, &last, JS_OPEN_TIMEOUT_MS, "reading the catalog", err);
    if (rc)
        return rc;
    js->opening = 0;

    /* Every stream's records, up to what they held a moment ago. */
    struct catchup c = {0};
    c.names = store_i_xcalloc(s->nstreams + 1, sizeof *c.names);
    c.last = store_i_xcalloc(s->nstreams + 1, sizeof *c.last);
    for (size_t i = 0; i < s->nstreams && !rc; i++) {
        struct store_stream *st = s->streams[i];
        data_name(js, st->uid, name, sizeof name);
        c.names[c.n] = store_i_xstrdup(st->name);
        c.last[c.n++] = stream_last_seq(s, name, err, &rc);
        feed_start(s, st);
    }
    if (!rc)
        rc = pump(s, data_caught_up, &c, JS_OPEN_TIMEOUT_MS, "copying the records", err);
    for (size_t i = 0; i < c.n; i++)
        free(c.names[i]);
    free(c.names);
    free(c.last);
    if (rc)
        return rc;
    store_i_log(s, STORE_LOG_INFO,
                "jetstream backend: %s (prefix %s, %" PRIu32 " replicas): %zu streams, catalog "
                "at %" PRIu64,
                o->nats_url, js->prefix, js->replicas, s->nstreams, js->cat_seq);
    return 0;
}

static int quiet(struct store *s, void *arg)
{
    (void)arg;
    struct js_state *js = s->js;
    if (js->inflight || js->retry || js->await || js->qhead || js->hhead || js->inflight_pubs ||
        js->ctl)
        return 0;
    for (size_t i = 0; i < s->nstreams; i++)
        for (uint32_t k = 0; k < s->streams[i]->nshards; k++)
            if (s->streams[i]->shards[k]->js_refs)
                return 0;
    return 1;
}

void store_i_js_close(struct store *s)
{
    struct js_state *js = s->js;
    if (!js)
        return;
    if (js->bus && !js->closing) {
        /* Let what is in flight finish (bounded), then fail the rest. */
        struct store_err e;
        pump(s, quiet, NULL, JS_CLOSE_WAIT_MS, "closing", &e);
        js->closing = 1;
        store_i_err_set(&e, STORE_EUNAVAIL, "store closed before JetStream confirmed it");
        while (js->retry) {
            struct js_pub *p = js->retry;
            js->retry = p->rnext;
            pub_done(s, p, &e);
        }
        while (js->qhead) {
            struct js_pub *p = js->qhead;
            js->qhead = p->rnext;
            js->queued_bytes -= p->len;
            pub_done(s, p, &e);
        }
        js->qtail = NULL;
        while (js->hhead) {
            struct js_pub *p = js->hhead;
            js->hhead = p->rnext;
            js->queued_bytes -= p->len;
            pub_done(s, p, &e);
        }
        js->htail = NULL;
        store_i_js_after(s);
        if (s->cat.n) {
            store_i_err_set(&e, STORE_EUNAVAIL, "store closed before JetStream confirmed it");
            cat_fail(s, &e);
        }
        js->closing = 2;
    }
    js->closing = 2;
    /* Control messages not in flight go now; the others when jsbus_close
     * fails their requests (on_ctl_ack). */
    for (struct js_ctl *c = js->ctl, *n; c; c = n) {
        n = c->next;
        if (!c->inflight)
            ctl_free(c);
    }
    for (size_t i = 0; i < s->nstreams; i++)
        store_i_js_stream_free(s->streams[i]);
    jsbus_unfollow(js->cat_follow);
    js->cat_follow = NULL;
    jsbus_unfollow(js->sub_follow);
    js->sub_follow = NULL;
    for (size_t i = 0; i < SUB_BUCKETS; i++)
        while (js->claims[i]) {
            struct sub_claim *c = js->claims[i];
            js->claims[i] = c->next;
            free(c->key);
            free(c);
        }
    /* Fires what is still pending with STORE_EUNAVAIL (feeds' ensures too). */
    jsbus_close(js->bus);
    js->bus = NULL;
    if (js->epfd >= 0) close(js->epfd);
    if (js->tfd >= 0) close(js->tfd);
    json_decref(js->tree);
    free(js->echo);
    free(js);
    s->js = NULL;
}
