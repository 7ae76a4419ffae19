/* store.c - open/close, directory layout, the stream catalog (on disk: catalog.c),
 * store_commit(), store_dispatch() and store_tick().
 *
 * Upstream: the gateway (main.c opens the store; its loop calls
 * store_commit once per turn, store_dispatch when store_notify_fd() is
 * readable, store_tick from a timer). Downstream: shard.c (appends, commits),
 * segment.c (every segment file: the recovery scan, quarantine), syncer.c
 * (fsync and catalog writes off the loop).
 *
 * Directory layout:
 *
 *   <dir>/LOCK            flock()ed while open
 *   <dir>/MANIFEST        catalog snapshot; replaced atomically (catalog.c)
 *   <dir>/MANIFEST.tmp    a snapshot being written; ignored and removed at open
 *   <dir>/CATALOG-<n>.log catalog changes since the snapshot (catalog.c)
 *   <dir>/segments/       every segment file of every shard (segment.c names)
 *   <dir>/quarantine/<t>/ segments found at open that belong to no known
 *                         stream, moved aside (never deleted) for an operator
 *
 * Invariant: a generation is persisted (fsync'd snapshot) before any sequence
 * number that carries it is handed out, so numbers never repeat across runs.
 * Each catalog change bumps catalog_version and queues one log record
 * (catalog.c); the next commit hands the records to the syncer before any
 * data; catalog-sync waiters fire when the syncer reports that version (or a
 * later one) durable, and a failure undoes every change not yet durable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "record.h"

const char *store_strerror(int code)
{
    switch (code) {
    case STORE_OK: return "success";
    case STORE_ENOTFOUND: return "not found";
    case STORE_EEXISTS: return "already exists";
    case STORE_EINVAL: return "invalid argument";
    case STORE_ELIMIT: return "limit exceeded";
    case STORE_ESTATE: return "wrong state";
    case STORE_ECORRUPT: return "data corrupt";
    case STORE_EIO: return "I/O error";
    case STORE_ENOSPC: return "no space left on device";
    case STORE_EUNAVAIL: return "backend unavailable";
    case STORE_ECONFLICT: return "concurrent catalog change";
    }
    return "unknown error";
}

void store_opts_init(struct store_opts *o)
{
    memset(o, 0, sizeof *o);
    o->durability = STORE_DURABILITY_ALWAYS;
    o->interval_ms = 1000;
    o->segment_bytes = 64u << 20;
    o->tail_budget_bytes = 64u << 20;
    o->max_consumers = STORE_MAX_CONSUMERS;
    o->retention_check_ms = 60000;
    o->region = "us-east-1";
    o->account = "000000000000";
}

int store_durability_parse(const char *s, enum store_durability *mode, uint32_t *interval_ms,
                           struct store_err *err)
{
    if (strcmp(s, "always") == 0) {
        *mode = STORE_DURABILITY_ALWAYS;
        return 0;
    }
    if (strcmp(s, "never") == 0) {
        *mode = STORE_DURABILITY_NEVER;
        return 0;
    }
    if (strncmp(s, "interval:", 9) == 0) {
        const char *p = s + 9;
        uint64_t v = 0;
        if (!*p || strlen(p) > 7)
            goto bad;
        for (; *p; p++) {
            if (*p < '0' || *p > '9') goto bad;
            v = v * 10 + (uint64_t)(*p - '0');
        }
        if (v < 1 || v > 3600000)
            goto bad;
        *mode = STORE_DURABILITY_INTERVAL;
        *interval_ms = (uint32_t)v;
        return 0;
    }
bad:
    return store_i_err_set(err, STORE_EINVAL,
                           "durability '%.40s': expected always, never or interval:MS (1..3600000)",
                           s);
}

/* ---- catalog ---------------------------------------------------------------------- */

static size_t stream_find(const struct store *s, const char *name, int *found)
{
    size_t lo = 0, hi = s->nstreams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->streams[mid]->name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = 0;
    return lo;
}

void store_i_stream_insert(struct store *s, struct store_stream *st)
{
    int found;
    size_t i = stream_find(s, st->name, &found);
    if (s->nstreams == s->streamcap) {
        s->streamcap = s->streamcap ? s->streamcap * 2 : 16;
        s->streams = store_i_xrealloc(s->streams, s->streamcap * sizeof *s->streams);
    }
    memmove(&s->streams[i + 1], &s->streams[i], (s->nstreams - i) * sizeof *s->streams);
    s->streams[i] = st;
    s->nstreams++;
}

static void stream_add_shards(struct store_stream *st, uint32_t n)
{
    struct store *s = st->store;
    st->shards = store_i_xcalloc(n, sizeof *st->shards);
    st->nshards = st->shardcap = n;
    for (uint32_t i = 0; i < n; i++) {
        struct store_shard *sh = store_i_shard_new(s, st, i);
        store_hashkey_even_split(n, i, &sh->hk_start, &sh->hk_end);
        sh->start_seq = (struct store_seq){s->gen, i, 0};
        st->shards[i] = sh;
    }
    store_i_stream_index_open(st);
}

int store_stream_create(struct store *s, const char *name, uint32_t shard_count,
                        struct store_stream **out, struct store_err *err)
{
    if (!name || !store_i_stream_name_valid(name))
        return store_i_err_set(err, STORE_EINVAL, "invalid stream name: 1..128 of [a-zA-Z0-9_.-]");
    if (shard_count < 1 || shard_count > STORE_MAX_SHARDS)
        return store_i_err_set(err, STORE_EINVAL, "shard count %" PRIu32 " outside [1, %d]",
                               shard_count, STORE_MAX_SHARDS);
    int found;
    stream_find(s, name, &found);
    if (found)
        return store_i_err_set(err, STORE_EEXISTS, "stream %s already exists", name);
    struct store_stream *st = store_i_stream_new(s, name, s->next_uid++);
    st->status = STORE_STREAM_CREATING;
    st->created_ms = store_i_now(s);
    store_i_stream_set_arn(st);
    stream_add_shards(st, shard_count);
    st->shard_gen = s->gen;
    store_i_stream_insert(s, st);
    /* Held back until this record is durable: see stream_gated(). */
    st->pending_create = 1;
    json_t *rec = json_pack("{s:s, s:I, s:s, s:s, s:I, s:i, s:b, s:i, s:I}", "op", "create",
                            "uid", (json_int_t)st->uid, "arn", st->arn, "status",
                            store_stream_status_name(st->status), "created_ms",
                            (json_int_t)st->created_ms, "retention_hours",
                            (int)st->retention_hours, "on_demand", st->on_demand, "shard_count",
                            (int)shard_count, "shard_gen", (json_int_t)st->shard_gen);
    store_i_catalog_record(s, CAT_CREATE, st, rec);
    if (out) *out = st;
    return 0;
}

void store_i_shard_bury(struct store *s, struct store_shard *sh)
{
    store_i_shard_destroy_data(sh);
    sh->deleted = 1;
    sh->stream = NULL;
    sh->znext = s->zombies;
    s->zombies = sh;
}

void store_i_stream_detach(struct store *s, struct store_stream *st)
{
    int found;
    size_t i = stream_find(s, st->name, &found);
    if (!found || s->streams[i] != st)
        return;
    memmove(&s->streams[i], &s->streams[i + 1], (s->nstreams - i - 1) * sizeof *s->streams);
    s->nstreams--;
}

void store_i_stream_bury(struct store *s, struct store_stream *st)
{
    for (uint32_t k = 0; k < st->nshards; k++)
        store_i_shard_bury(s, st->shards[k]);
    store_i_stream_free(st);
}

/* A stream's records are held back (not readable, not acknowledged): its
 * creation is not yet durable, or it is being deleted. */
static int stream_gated(const struct store_stream *st)
{
    return st->pending_create || st->deleting;
}

/* A shard's records are held back: its stream's are, or the reshard that
 * created it is not yet durable. */
static int shard_gated(const struct store_shard *sh)
{
    return stream_gated(sh->stream) || sh->pending;
}

static void fire_listeners(struct store *s);

void store_i_stream_release(struct store *s, struct store_stream *st)
{
    if (stream_gated(st))
        return;
    for (uint32_t k = 0; k < st->nshards; k++) {
        struct store_shard *sh = st->shards[k];
        if (!sh->offline && !sh->pending)
            store_i_shard_publish(sh, s->opts.durability == STORE_DURABILITY_ALWAYS
                                          ? sh->lsn_durable
                                          : sh->lsn_written);
    }
    /* As everywhere: push to subscribers, then acknowledge. */
    fire_listeners(s);
    for (uint32_t k = 0; k < st->nshards; k++)
        if (!st->shards[k]->offline && !st->shards[k]->pending)
            store_i_shard_fire_tickets(st->shards[k], st->shards[k]->lsn_published, NULL);
}

void store_i_stream_catalog_durable(struct store *s, struct store_stream *st)
{
    st->pending_create = 0;
    store_i_stream_release(s, st);
    if (s->js)
        store_i_js_stream_ready(s, st);
}

int store_stream_delete(struct store *s, const char *name, struct store_err *err)
{
    int found;
    size_t i = stream_find(s, name, &found);
    if (!found)
        return store_i_err_set(err, STORE_ENOTFOUND, "stream %s not found", name);
    struct store_stream *st = s->streams[i];
    /* Gone from lookups now; its data goes once the deletion is durable
     * (store_i_catalog_durable -> store_i_stream_bury), or it comes back if that fails. */
    store_i_stream_detach(s, st);
    st->deleting = 1;
    store_i_catalog_record(s, CAT_DELETE, st, json_pack("{s:s}", "op", "delete"));
    return 0;
}

int store_stream_lookup(struct store *s, const char *name, struct store_stream **out,
                        struct store_err *err)
{
    int found;
    size_t i = stream_find(s, name, &found);
    if (!found)
        return store_i_err_set(err, STORE_ENOTFOUND, "stream %.128s not found", name);
    *out = s->streams[i];
    return 0;
}

int store_stream_lookup_arn(struct store *s, const char *arn, struct store_stream **out,
                            struct store_err *err)
{
    /* arn:aws:kinesis:<region>:<account>:stream/<name>: look the name up, then
     * compare the whole ARN (region and account must match too). */
    const char *p = strstr(arn, ":stream/");
    if (p && !strchr(p + 8, '/')) {
        int found;
        size_t i = stream_find(s, p + 8, &found);
        if (found && strcmp(s->streams[i]->arn, arn) == 0) {
            *out = s->streams[i];
            return 0;
        }
    }
    return store_i_err_set(err, STORE_ENOTFOUND, "stream %.200s not found", arn);
}

size_t store_stream_count(const struct store *s) { return s->nstreams; }

size_t store_stream_list(const struct store *s, const char *exclusive_start, const char **names,
                         size_t max)
{
    size_t i = 0;
    if (exclusive_start) {
        int found;
        i = stream_find(s, exclusive_start, &found);
        if (found) i++;
    }
    size_t n = 0;
    for (; i < s->nstreams && n < max; i++)
        names[n++] = s->streams[i]->name;
    return n;
}

/* ---- FIFO of written chunks (memory budget) ----------------------------------------------- */

void store_i_fifo_add(struct store *s, struct chunk *c)
{
    c->gprev = s->fifo.tail;
    c->gnext = NULL;
    if (s->fifo.tail) s->fifo.tail->gnext = c;
    else s->fifo.head = c;
    s->fifo.tail = c;
    s->fifo.bytes += c->cap;
}

void store_i_fifo_remove(struct store *s, struct chunk *c)
{
    if (c->gprev) c->gprev->gnext = c->gnext;
    else s->fifo.head = c->gnext;
    if (c->gnext) c->gnext->gprev = c->gprev;
    else s->fifo.tail = c->gprev;
    c->gprev = c->gnext = NULL;
    s->fifo.bytes -= c->cap;
}

static void store_evict(struct store *s)
{
    /* Oldest written chunks first. A chunk not yet readable (waiting for its
     * fsync, or for its stream's catalog record) must stay: publishing needs
     * it. It is stepped over rather than waited for, so one slow or stuck
     * shard does not hold every other shard's tail in memory. A shard's
     * chunks are in the FIFO in its own order and publication is in order,
     * so what is stepped over is always the end of that shard's tail, and
     * what is evicted always its start. */
    struct chunk *c = s->fifo.head;
    while (s->fifo.bytes > s->opts.tail_budget_bytes && c) {
        struct chunk *next = c->gnext;
        struct store_shard *sh = c->shard;
        if (c->published)
            store_i_shard_unlink_chunk(sh, c);
        c = next;
    }
}

/* ---- open / close ----------------------------------------------------------------------- */

struct segfile {
    struct store_shard *sh;
    struct store_seq first;
    char *name;
};

static int segfile_cmp(const void *a, const void *b)
{
    const struct segfile *x = a, *y = b;
    if (x->sh != y->sh) {
        if (x->sh->stream->uid != y->sh->stream->uid)
            return x->sh->stream->uid < y->sh->stream->uid ? -1 : 1;
        return x->sh->index < y->sh->index ? -1 : 1;
    }
    return store_seq_cmp(x->first, y->first);
}

static struct store_shard *find_shard(struct store *s, uint64_t uid, uint32_t idx)
{
    for (size_t i = 0; i < s->nstreams; i++)
        if (s->streams[i]->uid == uid)
            return idx < s->streams[i]->nshards ? s->streams[i]->shards[idx] : NULL;
    return NULL;
}

static void shard_after_scan(struct store_shard *sh)
{
    struct segment *seg = sh->seg.tail;
    if (seg && seg->nrec) {
        sh->has_pub = 1;
        sh->last_pub = seg->last;
        sh->last_pub_arrival = seg->last_arrival;
        sh->last_arrival = seg->last_arrival;
        sh->has_durable = 1;
        sh->last_durable = seg->last;
    }
}

static int recover_segments(struct store *s, struct store_err *err)
{
    DIR *d = opendir(s->segdir);
    if (!d)
        return store_i_err_errno(err, errno, "open %s", s->segdir);
    struct segfile *files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int qfd = -1;
    while ((de = readdir(d))) {
        uint64_t uid;
        uint32_t idx;
        struct store_seq first;
        if (store_i_segment_parse_name(de->d_name, &uid, &idx, &first) != 0)
            continue;
        struct store_shard *sh = find_shard(s, uid, idx);
        if (!sh) {
            /* A stream whose deletion was durable before its segments were
             * gone, or one whose creation never reached the catalog. */
            int rc = store_i_segment_quarantine(s, &qfd, de->d_name, err);
            if (rc) {
                closedir(d);
                close(qfd);
                for (size_t i = 0; i < n; i++)
                    free(files[i].name);
                free(files);
                return rc;
            }
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            files = store_i_xrealloc(files, cap * sizeof *files);
        }
        files[n].sh = sh;
        files[n].first = first;
        files[n].name = store_i_xstrdup(de->d_name);
        n++;
    }
    closedir(d);
    if (qfd >= 0)
        store_i_segment_quarantine_done(s, qfd);
    if (n)
        qsort(files, n, sizeof *files, segfile_cmp);
    /* later_data[i]: a later segment of the same shard holds more than a
     * header, so segment i was complete once and may not end torn. */
    unsigned char *later_data = store_i_xcalloc(n ? n : 1, 1);
    for (size_t i = n; i-- > 1;) {
        if (files[i - 1].sh != files[i].sh)
            continue;
        int big = store_i_segment_file_has_data(s, files[i].name);
        later_data[i - 1] = later_data[i] || big;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_shard *sh = files[i].sh;
        if (sh->offline)
            continue;
        struct segment *seg = store_i_xcalloc(1, sizeof *seg);
        size_t pl = strlen(s->segdir) + strlen(files[i].name) + 2;
        seg->path = store_i_xmalloc(pl);
        snprintf(seg->path, pl, "%s/%s", s->segdir, files[i].name);
        seg->fd = -1;
        seg->id = ++s->next_seg_id;
        struct store_err e;
        struct segment *prev = sh->seg.tail;
        enum scan_outcome so = store_i_segment_scan(
            sh, seg, prev != NULL, prev ? prev->last : seg->first, !later_data[i], &e);
        if (so == SCAN_OK) {
            seg->prev = sh->seg.tail;
            if (sh->seg.tail) sh->seg.tail->next = seg;
            else sh->seg.head = seg;
            sh->seg.tail = seg;
            sh->seg.n++;
            s->stats.segments++;
            continue;
        }
        if (so == SCAN_EMPTY) {
            store_i_segment_delete_file(seg);
        } else {
            sh->offline = 1;
            sh->offline_err = e;
            store_i_log(s, STORE_LOG_ERROR, "shard=%s offline: %s", sh->id, e.msg);
        }
        store_i_segment_free(seg);
    }
    for (size_t i = 0; i < s->nstreams; i++)
        for (uint32_t k = 0; k < s->streams[i]->nshards; k++)
            shard_after_scan(s->streams[i]->shards[k]);
    for (size_t i = 0; i < n; i++)
        free(files[i].name);
    free(files);
    free(later_data);
    return 0;
}

static void free_all(struct store *s)
{
    store_i_js_close(s);
    store_i_catalog_free(s);
    for (size_t i = 0; i < s->nstreams; i++) {
        struct store_stream *st = s->streams[i];
        for (uint32_t k = 0; k < st->nshards; k++)
            store_i_shard_free(st->shards[k]);
        store_i_stream_free(st);
    }
    free(s->streams);
    free(s->account_settings);
    while (s->zombies) {
        struct store_shard *z = s->zombies;
        s->zombies = z->znext;
        store_i_shard_free(z);
    }
    free(s->waiters);
    if (s->seg_dir_fd >= 0) close(s->seg_dir_fd);
    if (s->dir_fd >= 0) close(s->dir_fd);
    if (s->lock_fd >= 0) close(s->lock_fd);
    free(s->dir);
    free(s->segdir);
    free(s);
}

int store_open(const char *dir, const struct store_opts *opts, struct store **out,
               struct store_err *err)
{
    struct store *s = store_i_xcalloc(1, sizeof *s);
    s->dir_fd = s->seg_dir_fd = s->lock_fd = -1;
    if (opts) s->opts = *opts;
    else store_opts_init(&s->opts);
    struct store_opts def;
    store_opts_init(&def);
    if (!s->opts.segment_bytes) s->opts.segment_bytes = def.segment_bytes;
    if (!s->opts.tail_budget_bytes) s->opts.tail_budget_bytes = def.tail_budget_bytes;
    if (!s->opts.max_consumers || s->opts.max_consumers > STORE_MAX_CONSUMERS_LIMIT)
        s->opts.max_consumers = def.max_consumers;
    if (s->opts.retention_check_ms <= 0) s->opts.retention_check_ms = def.retention_check_ms;
    if (!s->opts.interval_ms) s->opts.interval_ms = def.interval_ms;
    if (!s->opts.max_fds) {
        struct rlimit rl;
        rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        s->opts.max_fds = soft / 2 > UINT32_MAX ? UINT32_MAX : (uint32_t)(soft / 2);
    }
    store_i_fdc_init(&s->fds,
                     s->opts.max_fds > STORE_FIXED_FDS ? s->opts.max_fds - STORE_FIXED_FDS : 0);
    if (!s->opts.catalog_compact_bytes) s->opts.catalog_compact_bytes = 1u << 20;
    struct cat_writer *catw = NULL;
    const char *region = s->opts.region ? s->opts.region : def.region;
    const char *account = s->opts.account ? s->opts.account : def.account;
    int rc;
    if (s->opts.max_fds < STORE_MIN_FDS) {
        rc = store_i_err_set(err, STORE_EINVAL, "max_fds %" PRIu32 " is below the minimum %u",
                             s->opts.max_fds, STORE_MIN_FDS);
        goto fail;
    }
    if (strlen(region) >= sizeof s->region || strlen(account) != 12 ||
        strspn(account, "0123456789") != 12 || s->opts.durability > STORE_DURABILITY_NEVER) {
        rc = store_i_err_set(err, STORE_EINVAL,
                             "bad store options (region, 12-digit account, durability)");
        goto fail;
    }
    strcpy(s->region, region);
    strcpy(s->account, account);
    s->opts.region = s->region;
    s->opts.account = s->account;
    s->io = s->opts.io ? *s->opts.io : store_i_default_io;
    s->dir = store_i_xstrdup(dir);
    size_t n = strlen(dir) + 32;
    s->segdir = store_i_xmalloc(n);
    snprintf(s->segdir, n, "%s/segments", dir);

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = store_i_err_errno(err, errno, "mkdir %s", dir);
        goto fail;
    }
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        rc = store_i_err_errno(err, errno, "open %s", dir);
        goto fail;
    }
    s->lock_fd = openat(s->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        rc = store_i_err_errno(err, errno, "open %s/LOCK", dir);
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = store_i_err_set(err, STORE_EIO, "store %s is in use by another process", dir);
        goto fail;
    }
    if (mkdir(s->segdir, 0755) != 0 && errno != EEXIST) {
        rc = store_i_err_errno(err, errno, "mkdir %s", s->segdir);
        goto fail;
    }
    s->seg_dir_fd = open(s->segdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->seg_dir_fd < 0) {
        rc = store_i_err_errno(err, errno, "open %s", s->segdir);
        goto fail;
    }
    if (s->opts.backend != STORE_BACKEND_JETSTREAM &&
        faccessat(s->dir_fd, STORE_JS_MARKER, F_OK, 0) == 0) {
        rc = store_i_err_set(err, STORE_EINVAL,
                             "%s is a jetstream backend's copy, not an embedded store: give "
                             "the embedded store another --data-dir (or remove it)",
                             dir);
        goto fail;
    }
    if (s->opts.backend == STORE_BACKEND_JETSTREAM) {
        /* A copy of JetStream, rebuilt at every open: nothing on disk needs
         * to survive a crash, so nothing is fsynced. */
        s->opts.durability = STORE_DURABILITY_NEVER;
        rc = store_i_js_wipe(s, err);
        if (rc)
            goto fail;
    }
    if (unlinkat(s->dir_fd, "MANIFEST.tmp", 0) == 0)
        store_i_log(s, STORE_LOG_WARN, "removed MANIFEST.tmp left by an interrupted write");

    /* Loads the snapshot and replays the log, bumps the generation and
     * writes a fresh snapshot (catalog.c). */
    rc = store_i_catalog_open(s, &catw, err);
    if (rc)
        goto fail;
    /* The segments directory entry must be durable before segments are. */
    if (s->io.fsync(s->io.ctx, s->seg_dir_fd) != 0) {
        rc = store_i_err_errno(err, errno, "fsync %s", s->segdir);
        goto fail;
    }
    rc = recover_segments(s, err);
    if (rc)
        goto fail;
    int errnum = 0;
    s->syncer = store_i_syncer_new(s->opts.durability, s->opts.interval_ms, &s->io, s->dir,
                                   s->dir_fd, s->seg_dir_fd, catw, &errnum);
    if (!s->syncer) {
        rc = store_i_err_errno(err, errnum, "start syncer thread");
        goto fail;
    }
    catw = NULL; /* the syncer's now */
    if (s->opts.backend == STORE_BACKEND_JETSTREAM && (rc = store_i_js_open(s, err)) != 0) {
        store_i_js_close(s);
        store_i_syncer_free(s->syncer);
        s->syncer = NULL;
        goto fail;
    }
    store_i_log(s, STORE_LOG_INFO, "store %s open: generation %" PRIu32 ", %zu streams", dir,
                s->gen, s->nstreams);
    *out = s;
    return 0;
fail:
    store_i_cat_writer_free(catw);
    free_all(s);
    return rc;
}

/* ---- commit / dispatch -------------------------------------------------------------------- */

static void fire_waiters(struct store *s, uint64_t upto, const struct store_err *e)
{
    /* One pass: waiters at or below `upto` move to `fire`, the rest are
     * compacted in place (k never passes i, so nothing unread is overwritten).
     * Collect first, then call: callbacks may register new waiters. */
    size_t k = 0, f = 0;
    struct catalog_waiter *fire = NULL;
    for (size_t i = 0; i < s->nwaiters; i++) {
        if (s->waiters[i].version <= upto) {
            if (!fire)
                fire = store_i_xmalloc((s->nwaiters - i) * sizeof *fire);
            fire[f++] = s->waiters[i];
        } else {
            s->waiters[k++] = s->waiters[i];
        }
    }
    s->nwaiters = k;
    for (size_t i = 0; i < f; i++)
        fire[i].cb(fire[i].arg, e);
    free(fire);
}

void store_catalog_sync(struct store *s, store_done_fn cb, void *arg)
{
    if (s->nwaiters == s->waitercap) {
        s->waitercap = s->waitercap ? s->waitercap * 2 : 8;
        s->waiters = store_i_xrealloc(s->waiters, s->waitercap * sizeof *s->waiters);
    }
    s->waiters[s->nwaiters].version = s->catalog_version;
    s->waiters[s->nwaiters].cb = cb;
    s->waiters[s->nwaiters].arg = arg;
    s->nwaiters++;
}

static void fire_listeners(struct store *s)
{
    struct store_shard *sh;
    while ((sh = s->notify_list)) {
        s->notify_list = sh->notify_next;
        sh->notify_marked = 0;
        if (!sh->deleted)
            store_i_shard_fire_listeners(sh);
    }
}

static void reap(struct store *s)
{
    struct store_shard **pp = &s->zombies;
    while (*pp) {
        struct store_shard *z = *pp;
        if (z->inflight == 0 && z->js_refs == 0 && !z->commit_marked && !z->notify_marked) {
            *pp = z->znext;
            store_i_shard_free(z);
        } else {
            pp = &z->znext;
        }
    }
}

static void after_callbacks(struct store *s)
{
    if (s->js)
        store_i_js_after(s);
    fire_waiters(s, s->manifest_done, NULL);
    fire_listeners(s);
    store_evict(s);
    reap(s);
}

int store_commit(struct store *s)
{
    int rc = 0;
    struct sync_item_vec items = {0};
    struct store_shard *list = s->commit_list, *done = NULL;
    s->commit_list = NULL;
    /* Catalog records go to the syncer before this commit's data (see
     * syncer.c: a pass appends the catalog log first). */
    if (s->js) {
        store_i_js_commit_catalog(s);
    } else if (s->catalog_version > s->manifest_posted) {
        struct cat_rec *recs;
        size_t nrec = store_i_catalog_take_unposted(s, &recs);
        if (nrec)
            store_i_syncer_post_catalog(s->syncer, recs, nrec);
        free(recs);
        s->manifest_posted = s->catalog_version;
    }
    /* One group commit: every record appended since the last one. */
    if (s->uncommitted_records) {
        size_t b = 0;
        while (b < STORE_COMMIT_BOUNDS && (double)s->uncommitted_records > store_commit_bounds[b])
            b++;
        s->stats.commit_buckets[b]++;
        s->stats.commit_records += s->uncommitted_records;
        s->uncommitted_records = 0;
    }
    while (list) {
        struct store_shard *sh = list;
        list = sh->commit_next;
        sh->commit_marked = 0;
        if (sh->deleted || sh->offline)
            continue;
        int r = store_i_shard_commit(sh, &items);
        if (r && !rc) rc = r;
        sh->done_next = done;
        done = sh;
    }
    if (items.n) {
        store_i_fdc_before_post(s, (uint32_t)items.n); /* room for the syncer's dups */
        store_i_syncer_post(s->syncer, items.v, items.n);
        for (size_t i = 0; i < items.n; i++)
            if (!items.v[i].merged) {
                ((struct store_shard *)items.v[i].shard)->inflight++;
                s->fds.syncing++;
                if (items.v[i].fd < 0)
                    s->fds.starved = 1; /* its dup failed */
            }
    }
    store_i_fdc_unpin_all(&s->fds); /* the syncer has its dups: the write fds may go */
    free(items.v);
    if (s->opts.durability != STORE_DURABILITY_ALWAYS) {
        for (struct store_shard *sh = done; sh; sh = sh->done_next)
            if (!sh->deleted && !shard_gated(sh))
                store_i_shard_publish(sh, sh->lsn_written);
        /* Listeners before tickets: the push to subscribers is written before
         * the producer's acknowledgement (see shard.c). Deleted shards stay
         * allocated (zombies) until reap(), so "done" stays walkable. */
        fire_listeners(s);
        for (struct store_shard *sh = done; sh; sh = sh->done_next)
            if (!sh->deleted)
                store_i_shard_fire_tickets(sh, sh->lsn_published, NULL);
    }
    after_callbacks(s);
    return rc;
}

int store_commit_pending(const struct store *s)
{
    return s->commit_list != NULL || s->catalog_version > s->manifest_posted;
}

int store_notify_fd(struct store *s)
{
    if (s->js)
        return store_i_js_notify_fd(s);
    return store_i_syncer_fd(s->syncer);
}

static void durable_advanced(struct store *s, struct store_shard *sh)
{
    /* Find the newest chunk wholly durable to name the watermark. */
    struct chunk *c = sh->tail.tail;
    while (c && !(c->written && c->lsn + c->len <= sh->lsn_durable))
        c = c->prev;
    if (c && (!sh->has_durable || store_seq_cmp(c->last, sh->last_durable) > 0)) {
        sh->has_durable = 1;
        sh->last_durable = c->last;
        if (s->opts.on_durable)
            s->opts.on_durable(s->opts.on_durable_arg, sh, c->last);
    }
}

/* The syncer could not make a catalog change durable. Every change not yet
 * durable is undone (the syncer dropped them all), so memory matches the
 * catalog on disk again; their waiters, and any registered since, get the
 * error. */
void store_i_catalog_failed(struct store *s, const struct store_err *e)
{
    /* Waiters of changes that did become durable (reported in the same
     * take) succeed; the rest share the error. */
    fire_waiters(s, s->manifest_done, NULL);
    store_i_catalog_rollback(s);
    s->manifest_posted = s->manifest_done = s->catalog_version;
    fire_waiters(s, s->catalog_version, e);
}

static void catalog_failed(struct store *s, int errnum)
{
    struct store_err e;
    store_i_err_errno(&e, errnum, "write catalog log");
    store_i_log(s, STORE_LOG_ERROR, "%s: undoing %zu catalog changes not yet durable", e.msg,
                s->cat.n);
    store_i_syncer_catalog_reset(s->syncer);
    store_i_catalog_failed(s, &e);
}

void store_dispatch(struct store *s)
{
    if (s->js)
        store_i_js_dispatch(s);
    struct sync_result_vec res = {0};
    uint64_t mf_done, mf_failed;
    int mf_err;
    store_i_syncer_take(s->syncer, &res, &mf_done, &mf_failed, &mf_err);
    for (size_t i = 0; i < res.n; i++) {
        struct sync_result *r = &res.v[i];
        struct store_shard *sh = r->shard;
        sh->inflight--;
        s->fds.syncing--;
        /* An offline shard's results still count: records whose fsync
         * succeeded are durable and their producers are owed the answer. */
        if (sh->deleted || r->epoch != sh->epoch)
            continue;
        if (r->err == 0) {
            if (r->lsn > sh->lsn_durable) {
                sh->lsn_durable = r->lsn;
                if (s->opts.durability == STORE_DURABILITY_ALWAYS && !shard_gated(sh))
                    store_i_shard_publish(sh, r->lsn); /* tickets fired below */
                durable_advanced(s, sh);
            }
        } else if (s->opts.durability == STORE_DURABILITY_ALWAYS) {
            store_i_shard_sync_failed(sh, r->err);
        } else {
            store_i_log(s, STORE_LOG_ERROR,
                        "shard=%s fsync failed: %s (records already acknowledged)", sh->id,
                        strerror(r->err));
        }
    }
    if (s->opts.durability == STORE_DURABILITY_ALWAYS) {
        /* As in store_commit: push to subscribers, then acknowledge. */
        fire_listeners(s);
        for (size_t i = 0; i < res.n; i++) {
            struct store_shard *sh = res.v[i].shard;
            if (!sh->deleted && res.v[i].epoch == sh->epoch)
                store_i_shard_fire_tickets(sh, sh->lsn_published, NULL);
        }
    }
    free(res.v);
    if (mf_done > s->manifest_done) {
        s->manifest_done = mf_done;
        store_i_catalog_durable(s, mf_done);
    }
    if (mf_failed > s->manifest_done)
        catalog_failed(s, mf_err);
    after_callbacks(s);
}

int store_tick(struct store *s, int64_t now_ms)
{
    if (s->last_trim && now_ms - s->last_trim < s->opts.retention_check_ms && now_ms >= s->last_trim)
        return 0;
    s->last_trim = now_ms;
    int n = 0;
    for (size_t i = 0; i < s->nstreams; i++) {
        struct store_stream *st = s->streams[i];
        int64_t cutoff = now_ms - (int64_t)st->retention_hours * 3600 * 1000;
        for (uint32_t k = 0; k < st->nshards; k++)
            if (!st->shards[k]->offline)
                n += store_i_shard_trim(st->shards[k], cutoff);
    }
    return n;
}

const double store_commit_bounds[STORE_COMMIT_BOUNDS] = {1,   2,   5,   10,   25,   50,
                                                         100, 250, 500, 1000, 5000, 10000};

void store_stats(const struct store *s, struct store_stats *out)
{
    *out = s->stats;
    out->fsyncs = s->syncer ? store_i_syncer_fsyncs(s->syncer) : 0;
    if (s->syncer)
        store_i_syncer_fsync_hist(s->syncer, out->fsync_buckets, &out->fsync_seconds);
    out->tail_bytes = s->fifo.bytes;
    out->durable_lag_bytes = 0;
    for (size_t i = 0; i < s->nstreams; i++)
        for (uint32_t k = 0; k < s->streams[i]->nshards; k++) {
            const struct store_shard *sh = s->streams[i]->shards[k];
            out->durable_lag_bytes += sh->lsn_appended - sh->lsn_durable;
        }
}

void store_stream_disk_usage(const struct store_stream *st, uint64_t *bytes, uint64_t *segments)
{
    *bytes = *segments = 0;
    for (uint32_t k = 0; k < st->nshards; k++)
        for (const struct segment *g = st->shards[k]->seg.head; g; g = g->next) {
            *bytes += g->size;
            (*segments)++;
        }
}

void store_close(struct store *s)
{
    if (!s)
        return;
    store_commit(s);
    store_i_js_close(s); /* waits (bounded) for JetStream's answers, fails the rest */
    store_i_syncer_wait_idle(s->syncer);
    store_dispatch(s);
    /* The commit above posted every catalog change and the dispatch took the
     * outcome (durable, or undone with its waiters failed). */
    fire_waiters(s, UINT64_MAX, NULL);
    store_i_syncer_free(s->syncer);
    s->syncer = NULL;
    /* Whatever is still unacknowledged (only possible after fsync trouble)
     * fails now rather than silently. */
    struct store_err e;
    store_i_err_set(&e, STORE_EIO, "store closed before the append completed");
    for (size_t i = 0; i < s->nstreams; i++)
        for (uint32_t k = 0; k < s->streams[i]->nshards; k++)
            store_i_shard_fire_tickets(s->streams[i]->shards[k], UINT64_MAX, &e);
    while (s->fifo.head) {
        struct chunk *c = s->fifo.head;
        store_i_shard_unlink_chunk(c->shard, c);
    }
    free_all(s);
}
