/* store.c - open/close, directory layout, the stream catalog and its manifest,
 * store_commit(), store_dispatch() and store_tick().
 *
 * Upstream: the gateway (main.c opens the store; its loop calls
 * store_commit once per turn, store_dispatch when store_notify_fd() is
 * readable, store_tick from a timer). Downstream: shard.c (appends, commits),
 * segment.c (recovery), syncer.c (fsync and manifest writes off the loop).
 *
 * Directory layout:
 *
 *   <dir>/LOCK            flock()ed while open
 *   <dir>/MANIFEST        the catalog (JSON, below); replaced atomically
 *   <dir>/MANIFEST.tmp    a manifest being written; ignored and removed at open
 *   <dir>/segments/       every segment file of every shard (segment.c names)
 *
 * MANIFEST: {"version":1, "generation":G, "next_uid":U, "streams":[{"name",
 *   "uid", "arn", "status", "created_ms", "retention_hours", "on_demand", "tags":{k:v},
 *   "consumers":[{"name","arn","status","created_ms"}], "shards":[{"index",
 *   "hash_start","hash_end","start_seq","end_seq"?,"parent"?,"adjacent_parent"?}]}]}
 *
 * Invariant: a generation is persisted (fsync'd manifest) before any sequence
 * number that carries it is handed out, so numbers never repeat across runs.
 * Catalog changes bump catalog_version; the next commit serialises the
 * manifest and hands it to the syncer; catalog-sync waiters fire when the
 * syncer reports that version (or a later one) durable.
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

const char *store_version(void) { return SLUICE_VERSION; }

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
    return err_set(err, STORE_EINVAL,
                   "durability '%.40s': expected always, never or interval:MS (1..3600000)", s);
}

/* ---- catalog ---------------------------------------------------------------------- */

void catalog_changed(struct store *s)
{
    s->catalog_version++;
}

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

static void stream_insert(struct store *s, struct store_stream *st)
{
    int found;
    size_t i = stream_find(s, st->name, &found);
    if (s->nstreams == s->streamcap) {
        s->streamcap = s->streamcap ? s->streamcap * 2 : 16;
        s->streams = xrealloc(s->streams, s->streamcap * sizeof *s->streams);
    }
    memmove(&s->streams[i + 1], &s->streams[i], (s->nstreams - i) * sizeof *s->streams);
    s->streams[i] = st;
    s->nstreams++;
}

static void stream_add_shards(struct store_stream *st, uint32_t n)
{
    struct store *s = st->store;
    st->shards = xcalloc(n, sizeof *st->shards);
    st->nshards = n;
    for (uint32_t i = 0; i < n; i++) {
        struct store_shard *sh = shard_new(s, st, i);
        store_hashkey_even_split(n, i, &sh->hk_start, &sh->hk_end);
        sh->start_seq = (struct store_seq){s->gen, i, 0};
        st->shards[i] = sh;
    }
}

int store_stream_create(struct store *s, const char *name, uint32_t shard_count,
                        struct store_stream **out, struct store_err *err)
{
    if (!name || !stream_name_valid(name))
        return err_set(err, STORE_EINVAL, "invalid stream name: 1..128 of [a-zA-Z0-9_.-]");
    if (shard_count < 1 || shard_count > STORE_MAX_SHARDS)
        return err_set(err, STORE_EINVAL, "shard count %" PRIu32 " outside [1, %d]", shard_count,
                       STORE_MAX_SHARDS);
    int found;
    stream_find(s, name, &found);
    if (found)
        return err_set(err, STORE_EEXISTS, "stream %s already exists", name);
    struct store_stream *st = stream_new(s, name, s->next_uid++);
    st->status = STORE_STREAM_CREATING;
    st->created_ms = store_now(s);
    stream_set_arn(st);
    stream_add_shards(st, shard_count);
    stream_insert(s, st);
    catalog_changed(s);
    if (out) *out = st;
    return 0;
}

static void shard_bury(struct store *s, struct store_shard *sh)
{
    shard_destroy_data(sh);
    sh->deleted = 1;
    sh->stream = NULL;
    sh->znext = s->zombies;
    s->zombies = sh;
}

int store_stream_delete(struct store *s, const char *name, struct store_err *err)
{
    int found;
    size_t i = stream_find(s, name, &found);
    if (!found)
        return err_set(err, STORE_ENOTFOUND, "stream %s not found", name);
    struct store_stream *st = s->streams[i];
    memmove(&s->streams[i], &s->streams[i + 1], (s->nstreams - i - 1) * sizeof *s->streams);
    s->nstreams--;
    for (uint32_t k = 0; k < st->nshards; k++)
        shard_bury(s, st->shards[k]);
    stream_free(st);
    catalog_changed(s);
    return 0;
}

int store_stream_lookup(struct store *s, const char *name, struct store_stream **out,
                        struct store_err *err)
{
    int found;
    size_t i = stream_find(s, name, &found);
    if (!found)
        return err_set(err, STORE_ENOTFOUND, "stream %.128s not found", name);
    *out = s->streams[i];
    return 0;
}

int store_stream_lookup_arn(struct store *s, const char *arn, struct store_stream **out,
                            struct store_err *err)
{
    for (size_t i = 0; i < s->nstreams; i++)
        if (strcmp(s->streams[i]->arn, arn) == 0) {
            *out = s->streams[i];
            return 0;
        }
    return err_set(err, STORE_ENOTFOUND, "stream %.200s not found", arn);
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

/* ---- manifest ------------------------------------------------------------------------ */

static json_t *seq_json(struct store_seq q)
{
    char b[STORE_SEQ_STRLEN];
    store_seq_format(q, b);
    return json_string(b);
}

static json_t *hk_json(const struct store_hashkey *hk)
{
    char b[STORE_HASHKEY_STRLEN];
    store_hashkey_format(hk, b);
    return json_string(b);
}

static char *manifest_dump(struct store *s, size_t *len)
{
    json_t *root = json_object();
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "generation", json_integer(s->gen));
    json_object_set_new(root, "next_uid", json_integer((json_int_t)s->next_uid));
    json_t *arr = json_array();
    for (size_t i = 0; i < s->nstreams; i++) {
        struct store_stream *st = s->streams[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(st->name));
        json_object_set_new(o, "uid", json_integer((json_int_t)st->uid));
        json_object_set_new(o, "arn", json_string(st->arn));
        json_object_set_new(o, "status", json_string(store_stream_status_name(st->status)));
        json_object_set_new(o, "created_ms", json_integer(st->created_ms));
        json_object_set_new(o, "retention_hours", json_integer(st->retention_hours));
        json_object_set_new(o, "on_demand", json_boolean(st->on_demand));
        json_t *tags = json_object();
        for (size_t k = 0; k < st->ntags; k++)
            json_object_set_new(tags, st->tags[k].key, json_string(st->tags[k].value));
        json_object_set_new(o, "tags", tags);
        json_t *cons = json_array();
        for (size_t k = 0; k < st->nconsumers; k++) {
            json_t *c = json_object();
            json_object_set_new(c, "name", json_string(st->consumers[k].name));
            json_object_set_new(c, "arn", json_string(st->consumers[k].arn));
            json_object_set_new(c, "status",
                                json_string(store_consumer_status_name(st->consumers[k].status)));
            json_object_set_new(c, "created_ms", json_integer(st->consumers[k].created_ms));
            json_array_append_new(cons, c);
        }
        json_object_set_new(o, "consumers", cons);
        json_t *shards = json_array();
        for (uint32_t k = 0; k < st->nshards; k++) {
            struct store_shard *sh = st->shards[k];
            json_t *j = json_object();
            json_object_set_new(j, "index", json_integer(sh->index));
            json_object_set_new(j, "hash_start", hk_json(&sh->hk_start));
            json_object_set_new(j, "hash_end", hk_json(&sh->hk_end));
            json_object_set_new(j, "start_seq", seq_json(sh->start_seq));
            if (sh->has_end) json_object_set_new(j, "end_seq", seq_json(sh->end_seq));
            if (sh->parent[0]) json_object_set_new(j, "parent", json_string(sh->parent));
            if (sh->adj_parent[0])
                json_object_set_new(j, "adjacent_parent", json_string(sh->adj_parent));
            json_array_append_new(shards, j);
        }
        json_object_set_new(o, "shards", shards);
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "streams", arr);
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!out) {
        fprintf(stderr, "sluice store: out of memory serialising the manifest\n");
        abort();
    }
    *len = strlen(out);
    return out;
}

static int status_parse(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (s && strcmp(s, names[i]) == 0) return i;
    return -1;
}

static int manifest_load(struct store *s, const char *path, struct store_err *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        if (access(path, F_OK) != 0 && errno == ENOENT)
            return 0; /* a fresh store */
        return err_set(err, STORE_ECORRUPT, "manifest %s unreadable: %s (line %d)", path, je.text,
                       je.line);
    }
    static const char *const sst[] = {"CREATING", "ACTIVE", "UPDATING", "DELETING"};
    static const char *const cst[] = {"CREATING", "ACTIVE", "DELETING"};
    int rc = 0;
    json_int_t version = 0, gen = 0, next_uid = 0;
    json_t *streams = NULL;
    if (json_unpack_ex(root, &je, 0, "{s:I, s:I, s:I, s:o}", "version", &version, "generation",
                       &gen, "next_uid", &next_uid, "streams", &streams) != 0 ||
        version != 1 || gen < 0 || gen >= UINT32_MAX || !json_is_array(streams)) {
        rc = err_set(err, STORE_ECORRUPT, "manifest %s: bad top level (%s)", path, je.text);
        goto done;
    }
    s->gen = (uint32_t)gen;
    s->next_uid = (uint64_t)next_uid;
    size_t i;
    json_t *o;
    json_array_foreach(streams, i, o) {
        const char *name, *arn, *status;
        json_int_t uid, created, retention;
        json_t *tags, *cons, *shards;
        if (json_unpack_ex(o, &je, 0, "{s:s, s:I, s:s, s:s, s:I, s:I, s:o, s:o, s:o}", "name", &name,
                           "uid", &uid, "arn", &arn, "status", &status, "created_ms", &created,
                           "retention_hours", &retention, "tags", &tags, "consumers", &cons,
                           "shards", &shards) != 0 ||
            !json_is_object(tags) || !json_is_array(cons) || !json_is_array(shards) ||
            json_array_size(shards) < 1 || json_array_size(shards) > STORE_MAX_SHARDS ||
            status_parse(status, sst, 4) < 0 || !stream_name_valid(name)) {
            rc = err_set(err, STORE_ECORRUPT, "manifest %s: bad stream %zu (%s)", path, i, je.text);
            goto done;
        }
        struct store_stream *st = stream_new(s, name, (uint64_t)uid);
        st->arn = xstrdup(arn);
        st->status = (enum store_stream_status)status_parse(status, sst, 4);
        st->created_ms = created;
        st->retention_hours = (uint32_t)retention;
        /* Optional: manifests written before capacity modes existed lack it. */
        st->on_demand = json_is_true(json_object_get(o, "on_demand"));
        stream_insert(s, st);
        const char *k;
        json_t *v;
        json_object_foreach(tags, k, v) stream_tag_put(st, k, json_is_string(v) ? json_string_value(v) : "");
        size_t j;
        json_array_foreach(cons, j, v) {
            const char *cn, *ca, *cs;
            json_int_t cc;
            if (json_unpack(v, "{s:s, s:s, s:s, s:I}", "name", &cn, "arn", &ca, "status", &cs,
                            "created_ms", &cc) != 0 || status_parse(cs, cst, 3) < 0) {
                rc = err_set(err, STORE_ECORRUPT, "manifest %s: bad consumer in %s", path, name);
                goto done;
            }
            stream_consumer_put(st, cn, ca, (enum store_consumer_status)status_parse(cs, cst, 3), cc);
        }
        st->nshards = (uint32_t)json_array_size(shards);
        st->shards = xcalloc(st->nshards, sizeof *st->shards);
        json_array_foreach(shards, j, v) {
            json_int_t idx;
            const char *hs, *he, *ss, *es = NULL, *par = NULL, *apar = NULL;
            struct store_shard *sh;
            if (json_unpack(v, "{s:I, s:s, s:s, s:s, s?s, s?s, s?s}", "index", &idx, "hash_start",
                            &hs, "hash_end", &he, "start_seq", &ss, "end_seq", &es, "parent", &par,
                            "adjacent_parent", &apar) != 0 || idx != (json_int_t)j) {
                rc = err_set(err, STORE_ECORRUPT, "manifest %s: bad shard %zu in %s", path, j, name);
                goto done;
            }
            sh = shard_new(s, st, (uint32_t)idx);
            st->shards[j] = sh;
            if (store_hashkey_parse(hs, strlen(hs), &sh->hk_start, NULL) ||
                store_hashkey_parse(he, strlen(he), &sh->hk_end, NULL) ||
                store_seq_parse(ss, strlen(ss), &sh->start_seq, NULL) ||
                (es && store_seq_parse(es, strlen(es), &sh->end_seq, NULL)) ||
                (par && strlen(par) >= sizeof sh->parent) ||
                (apar && strlen(apar) >= sizeof sh->adj_parent)) {
                rc = err_set(err, STORE_ECORRUPT, "manifest %s: bad shard %zu in %s", path, j, name);
                goto done;
            }
            sh->has_end = es != NULL;
            if (par) strcpy(sh->parent, par);
            if (apar) strcpy(sh->adj_parent, apar);
        }
    }
done:
    json_decref(root);
    return rc;
}

/* ---- FIFO of written chunks (memory budget) ----------------------------------------------- */

void store_fifo_add(struct store *s, struct chunk *c)
{
    c->gprev = s->fifo.tail;
    c->gnext = NULL;
    if (s->fifo.tail) s->fifo.tail->gnext = c;
    else s->fifo.head = c;
    s->fifo.tail = c;
    s->fifo.bytes += c->cap;
}

void store_fifo_remove(struct store *s, struct chunk *c)
{
    if (c->gprev) c->gprev->gnext = c->gnext;
    else s->fifo.head = c->gnext;
    if (c->gnext) c->gnext->gprev = c->gprev;
    else s->fifo.tail = c->gprev;
    c->gprev = c->gnext = NULL;
    s->fifo.bytes -= c->cap;
}

void store_evict(struct store *s)
{
    struct chunk *c;
    while (s->fifo.bytes > s->opts.tail_budget_bytes && (c = s->fifo.head)) {
        struct store_shard *sh = c->shard;
        /* Written but not yet readable chunks stay: publishing needs them. */
        if (c == sh->tail.unpub)
            break;
        shard_unlink_chunk(sh, c);
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
        return err_errno(err, errno, "open %s", s->segdir);
    struct segfile *files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t uid;
        uint32_t idx;
        struct store_seq first;
        if (segment_parse_name(de->d_name, &uid, &idx, &first) != 0)
            continue;
        struct store_shard *sh = find_shard(s, uid, idx);
        if (!sh) {
            /* A stream deleted (or never committed to the manifest) before a crash. */
            store_log(s, STORE_LOG_INFO, "removing orphan segment %s", de->d_name);
            unlinkat(s->seg_dir_fd, de->d_name, 0);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            files = xrealloc(files, cap * sizeof *files);
        }
        files[n].sh = sh;
        files[n].first = first;
        files[n].name = xstrdup(de->d_name);
        n++;
    }
    closedir(d);
    if (n)
        qsort(files, n, sizeof *files, segfile_cmp);
    for (size_t i = 0; i < n; i++) {
        struct store_shard *sh = files[i].sh;
        if (sh->offline)
            continue;
        struct segment *seg = xcalloc(1, sizeof *seg);
        size_t pl = strlen(s->segdir) + strlen(files[i].name) + 2;
        seg->path = xmalloc(pl);
        snprintf(seg->path, pl, "%s/%s", s->segdir, files[i].name);
        seg->fd = -1;
        seg->id = ++s->next_seg_id;
        struct store_err e;
        struct segment *prev = sh->seg.tail;
        enum scan_outcome so = segment_scan(sh, seg, prev != NULL, prev ? prev->last : seg->first, &e);
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
            unlink(seg->path);
        } else {
            sh->offline = 1;
            sh->offline_err = e;
            store_log(s, STORE_LOG_ERROR, "shard=%s offline: %s", sh->id, e.msg);
        }
        segment_free(seg);
    }
    for (size_t i = 0; i < s->nstreams; i++)
        for (uint32_t k = 0; k < s->streams[i]->nshards; k++)
            shard_after_scan(s->streams[i]->shards[k]);
    for (size_t i = 0; i < n; i++)
        free(files[i].name);
    free(files);
    return 0;
}

static void free_all(struct store *s)
{
    for (size_t i = 0; i < s->nstreams; i++) {
        struct store_stream *st = s->streams[i];
        for (uint32_t k = 0; k < st->nshards; k++)
            shard_free(st->shards[k]);
        stream_free(st);
    }
    free(s->streams);
    while (s->zombies) {
        struct store_shard *z = s->zombies;
        s->zombies = z->znext;
        shard_free(z);
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
    struct store *s = xcalloc(1, sizeof *s);
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
    fdc_init(&s->fds, s->opts.max_fds > STORE_FIXED_FDS ? s->opts.max_fds - STORE_FIXED_FDS : 0);
    const char *region = s->opts.region ? s->opts.region : def.region;
    const char *account = s->opts.account ? s->opts.account : def.account;
    int rc;
    if (s->opts.max_fds < STORE_MIN_FDS) {
        rc = err_set(err, STORE_EINVAL, "max_fds %" PRIu32 " is below the minimum %u",
                     s->opts.max_fds, STORE_MIN_FDS);
        goto fail;
    }
    if (strlen(region) >= sizeof s->region || strlen(account) != 12 ||
        strspn(account, "0123456789") != 12 || s->opts.durability > STORE_DURABILITY_NEVER) {
        rc = err_set(err, STORE_EINVAL, "bad store options (region, 12-digit account, durability)");
        goto fail;
    }
    strcpy(s->region, region);
    strcpy(s->account, account);
    s->opts.region = s->region;
    s->opts.account = s->account;
    s->io = s->opts.io ? *s->opts.io : store_default_io;
    s->dir = xstrdup(dir);
    size_t n = strlen(dir) + 32;
    s->segdir = xmalloc(n);
    snprintf(s->segdir, n, "%s/segments", dir);

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = err_errno(err, errno, "mkdir %s", dir);
        goto fail;
    }
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        rc = err_errno(err, errno, "open %s", dir);
        goto fail;
    }
    s->lock_fd = openat(s->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        rc = err_errno(err, errno, "open %s/LOCK", dir);
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = err_set(err, STORE_EIO, "store %s is in use by another process", dir);
        goto fail;
    }
    if (mkdir(s->segdir, 0755) != 0 && errno != EEXIST) {
        rc = err_errno(err, errno, "mkdir %s", s->segdir);
        goto fail;
    }
    s->seg_dir_fd = open(s->segdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->seg_dir_fd < 0) {
        rc = err_errno(err, errno, "open %s", s->segdir);
        goto fail;
    }
    if (unlinkat(s->dir_fd, "MANIFEST.tmp", 0) == 0)
        store_log(s, STORE_LOG_WARN, "removed MANIFEST.tmp left by an interrupted write");

    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/MANIFEST", dir);
    rc = manifest_load(s, mpath, err);
    if (rc)
        goto fail;
    if (s->gen == UINT32_MAX - 1) {
        rc = err_set(err, STORE_EINVAL, "store generation exhausted");
        goto fail;
    }
    s->gen++;
    {
        size_t len;
        char *json = manifest_dump(s, &len);
        int e = manifest_write_atomic(s->dir, s->dir_fd, json, len, &s->io);
        free(json);
        if (e) {
            rc = err_errno(err, e, "write %s", mpath);
            goto fail;
        }
        /* The segments directory entry must be durable before segments are. */
        if (s->io.fsync(s->io.ctx, s->seg_dir_fd) != 0) {
            rc = err_errno(err, errno, "fsync %s", s->segdir);
            goto fail;
        }
    }
    rc = recover_segments(s, err);
    if (rc)
        goto fail;
    int errnum = 0;
    s->syncer = syncer_new(s->opts.durability, s->opts.interval_ms, &s->io, s->dir, s->dir_fd,
                           s->seg_dir_fd, &errnum);
    if (!s->syncer) {
        rc = err_errno(err, errnum, "start syncer thread");
        goto fail;
    }
    store_log(s, STORE_LOG_INFO, "store %s open: generation %" PRIu32 ", %zu streams", dir, s->gen,
              s->nstreams);
    *out = s;
    return 0;
fail:
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
                fire = xmalloc((s->nwaiters - i) * sizeof *fire);
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
        s->waiters = xrealloc(s->waiters, s->waitercap * sizeof *s->waiters);
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
            shard_fire_listeners(sh);
    }
}

static void reap(struct store *s)
{
    struct store_shard **pp = &s->zombies;
    while (*pp) {
        struct store_shard *z = *pp;
        if (z->inflight == 0 && !z->commit_marked && !z->notify_marked) {
            *pp = z->znext;
            shard_free(z);
        } else {
            pp = &z->znext;
        }
    }
}

static void after_callbacks(struct store *s)
{
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
    while (list) {
        struct store_shard *sh = list;
        list = sh->commit_next;
        sh->commit_marked = 0;
        if (sh->deleted || sh->offline)
            continue;
        int r = shard_commit(sh, &items);
        if (r && !rc) rc = r;
        sh->done_next = done;
        done = sh;
    }
    if (items.n) {
        fdc_before_post(s, (uint32_t)items.n); /* room for the syncer's dups */
        syncer_post(s->syncer, items.v, items.n);
        for (size_t i = 0; i < items.n; i++)
            if (!items.v[i].merged) {
                ((struct store_shard *)items.v[i].shard)->inflight++;
                s->fds.syncing++;
                if (items.v[i].fd < 0)
                    s->fds.starved = 1; /* its dup failed */
            }
    }
    fdc_unpin_all(&s->fds); /* the syncer has its dups: the write fds may go */
    free(items.v);
    if (s->opts.durability != STORE_DURABILITY_ALWAYS) {
        for (struct store_shard *sh = done; sh; sh = sh->done_next)
            if (!sh->deleted)
                shard_publish(sh, sh->lsn_written);
        /* Listeners before tickets: the push to subscribers is written before
         * the producer's acknowledgement (see shard.c). Deleted shards stay
         * allocated (zombies) until reap(), so "done" stays walkable. */
        fire_listeners(s);
        for (struct store_shard *sh = done; sh; sh = sh->done_next)
            if (!sh->deleted)
                shard_fire_tickets(sh, sh->lsn_published, NULL);
    }
    if (s->catalog_version > s->manifest_posted) {
        size_t len;
        char *json = manifest_dump(s, &len);
        syncer_post_manifest(s->syncer, json, len, s->catalog_version);
        s->manifest_posted = s->catalog_version;
    }
    after_callbacks(s);
    return rc;
}

int store_commit_pending(const struct store *s)
{
    return s->commit_list != NULL || s->catalog_version > s->manifest_posted;
}

int store_notify_fd(struct store *s) { return syncer_fd(s->syncer); }

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

void store_dispatch(struct store *s)
{
    struct sync_result_vec res = {0};
    uint64_t mf_done, mf_failed;
    int mf_err;
    syncer_take(s->syncer, &res, &mf_done, &mf_failed, &mf_err);
    for (size_t i = 0; i < res.n; i++) {
        struct sync_result *r = &res.v[i];
        struct store_shard *sh = r->shard;
        sh->inflight--;
        s->fds.syncing--;
        if (sh->deleted || sh->offline || r->epoch != sh->epoch)
            continue;
        if (r->err == 0) {
            if (r->lsn > sh->lsn_durable) {
                sh->lsn_durable = r->lsn;
                if (s->opts.durability == STORE_DURABILITY_ALWAYS)
                    shard_publish(sh, r->lsn); /* tickets fired below */
                durable_advanced(s, sh);
            }
        } else if (s->opts.durability == STORE_DURABILITY_ALWAYS) {
            shard_sync_failed(sh, r->err);
        } else {
            store_log(s, STORE_LOG_ERROR, "shard=%s fsync failed: %s (records already acknowledged)",
                      sh->id, strerror(r->err));
        }
    }
    if (s->opts.durability == STORE_DURABILITY_ALWAYS) {
        /* As in store_commit: push to subscribers, then acknowledge. */
        fire_listeners(s);
        for (size_t i = 0; i < res.n; i++) {
            struct store_shard *sh = res.v[i].shard;
            if (!sh->deleted && !sh->offline && res.v[i].epoch == sh->epoch)
                shard_fire_tickets(sh, sh->lsn_published, NULL);
        }
    }
    free(res.v);
    if (mf_failed > s->manifest_done) {
        struct store_err e;
        err_errno(&e, mf_err, "write manifest");
        store_log(s, STORE_LOG_ERROR, "%s", e.msg);
        /* Re-post with the next commit; fail the waiters of that version. */
        if (s->manifest_posted <= mf_failed)
            s->manifest_posted = s->manifest_done;
        fire_waiters(s, mf_failed, &e);
    }
    if (mf_done > s->manifest_done)
        s->manifest_done = mf_done;
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
                n += shard_trim(st->shards[k], cutoff);
    }
    return n;
}

void store_stats(const struct store *s, struct store_stats *out)
{
    *out = s->stats;
    out->fsyncs = s->syncer ? syncer_fsyncs(s->syncer) : 0;
    out->tail_bytes = s->fifo.bytes;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    store_commit(s);
    syncer_wait_idle(s->syncer);
    store_dispatch(s);
    if (s->catalog_version > s->manifest_done) {
        size_t len;
        char *json = manifest_dump(s, &len);
        int e = manifest_write_atomic(s->dir, s->dir_fd, json, len, &s->io);
        free(json);
        if (e) {
            struct store_err er;
            err_errno(&er, e, "write manifest at close");
            store_log(s, STORE_LOG_ERROR, "%s", er.msg);
            fire_waiters(s, UINT64_MAX, &er);
        } else {
            s->manifest_done = s->catalog_version;
        }
    }
    fire_waiters(s, UINT64_MAX, NULL);
    syncer_free(s->syncer);
    s->syncer = NULL;
    /* Whatever is still unacknowledged (only possible after fsync trouble)
     * fails now rather than silently. */
    struct store_err e;
    err_set(&e, STORE_EIO, "store closed before the append completed");
    for (size_t i = 0; i < s->nstreams; i++)
        for (uint32_t k = 0; k < s->streams[i]->nshards; k++)
            shard_fire_tickets(s->streams[i]->shards[k], UINT64_MAX, &e);
    while (s->fifo.head) {
        struct chunk *c = s->fifo.head;
        shard_unlink_chunk(c->shard, c);
    }
    free_all(s);
}
