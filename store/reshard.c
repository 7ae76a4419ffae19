/* reshard.c - SplitShard, MergeShards and UpdateShardCount: shards close and
 * children take over their hash ranges, as one catalog change each.
 *
 * A reshard changes memory at once, like every catalog change: the parents
 * close (appends to them fail with STORE_ESTATE, routing skips them) and the
 * children exist and take appends. What makes it durable is one "reshard"
 * record in the catalog log holding every shard it closed and every shard it
 * added, so a crash leaves the old shards or the new ones, never a mix.
 * Until that record is durable the children's records are held back (neither
 * readable nor acknowledged; see store.c's shard_gated()): a child's record
 * acknowledged before its shard is in the catalog would be quarantined by a
 * crash. If writing the record fails, the children are buried (their
 * pending appends fail with STORE_ENOTFOUND) and the parents reopen.
 *
 * Sequence numbers: a child starts at (generation, its index, 0). Its index
 * is above its parent's, so within a generation every child record sorts
 * after every parent record, as on Kinesis.
 *
 * UpdateShardCount (store_stream_scale) is a list of splits and merges
 * applied together: first every open shard that straddles a target boundary
 * is split there, then the pieces of each target range are merged left to
 * right. Shards created and closed inside one scaling (a piece merged at
 * once) are real shards of the lineage with no records, as AWS's temporary
 * shards are; a reader following ChildShards passes through them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void store_hashkey_uniform_split(uint32_t n, uint32_t i, struct store_hashkey *start,
                                 struct store_hashkey *end)
{
    /* start(j) = floor(j * 2^128 / n). With 2^128 = q*n + r + 1 (q, r from
     * max = 2^128 - 1), j * 2^128 / n = j*q + j*(r+1)/n, and j*(r+1) < 2^64
     * for the shard counts allowed. */
    u128 max = ~(u128)0, q = max / n, r1 = max % n + 1;
    u128 a = q * i + (u128)((uint64_t)i * (uint64_t)r1 / n);
    u128 b = i + 1 == n ? max : q * (i + 1) + (u128)((uint64_t)(i + 1) * (uint64_t)r1 / n) - 1;
    store_i_hk_put(start, a);
    store_i_hk_put(end, b);
}

/* ---- building blocks ------------------------------------------------------------ */

static struct store_shard *child_new(struct store_stream *st, const struct store_hashkey *start,
                                     const struct store_hashkey *end, const char *parent,
                                     const char *adjacent)
{
    struct store *s = st->store;
    if (st->nshards == st->shardcap) {
        st->shardcap = st->shardcap ? st->shardcap * 2 : st->nshards + 8;
        st->shards = store_i_xrealloc(st->shards, st->shardcap * sizeof *st->shards);
    }
    uint32_t idx = st->nshards;
    struct store_shard *sh = store_i_shard_new(s, st, idx);
    sh->hk_start = *start;
    sh->hk_end = *end;
    sh->start_seq = (struct store_seq){s->gen, idx, 0};
    snprintf(sh->parent, sizeof sh->parent, "%s", parent);
    if (adjacent)
        snprintf(sh->adj_parent, sizeof sh->adj_parent, "%s", adjacent);
    sh->pending = 1; /* held back until the reshard record is durable */
    st->shards[st->nshards++] = sh;
    return sh;
}

/* One reshard in the making: the shards it adds are those from "old_n" on,
 * "closed" lists the shards from before it that it closed. */
struct reshard {
    struct store_stream *st;
    uint32_t old_n;
    int64_t now;
    uint32_t *closed;
    size_t nclosed;
};

static void reshard_begin(struct reshard *r, struct store_stream *st)
{
    *r = (struct reshard){.st = st, .old_n = st->nshards, .now = store_i_now(st->store)};
}

/* Closes "sh": its ending sequence number is the last it was ever given
 * (records not yet durable included: if they fail, the number is merely
 * above the last record, never below one), or its starting number if it
 * never held one. */
static void shard_close(struct reshard *r, struct store_shard *sh)
{
    sh->has_end = 1;
    sh->closed_ms = r->now;
    if (!store_i_shard_last_assigned(sh, &sh->end_seq))
        sh->end_seq = sh->start_seq;
    /* jetstream: the end is the fence's number, known once JetStream
     * stored the fence (store_i_reshard_fenced). A shard this reshard made
     * and closed at once (a scaling's piece) never held a record. */
    sh->js_tail_open = sh->js_fence_wait = sh->store->js != NULL && sh->index < r->old_n;
    if (sh->index < r->old_n) {
        r->closed = store_i_xrealloc(r->closed, (r->nclosed + 1) * sizeof *r->closed);
        r->closed[r->nclosed++] = sh->index;
    }
}

static void do_split(struct reshard *r, struct store_shard *sh, const struct store_hashkey *k)
{
    struct store_hashkey below;
    store_i_hk_put(&below, store_i_hk_get(k) - 1);
    struct store_hashkey start = sh->hk_start, end = sh->hk_end;
    shard_close(r, sh);
    child_new(r->st, &start, &below, sh->id, NULL);
    child_new(r->st, k, &end, sh->id, NULL);
}

static struct store_shard *do_merge(struct reshard *r, struct store_shard *a,
                                    struct store_shard *b)
{
    int a_first = store_hashkey_cmp(&a->hk_start, &b->hk_start) < 0;
    struct store_hashkey start = a_first ? a->hk_start : b->hk_start;
    struct store_hashkey end = a_first ? b->hk_end : a->hk_end;
    shard_close(r, a);
    shard_close(r, b);
    return child_new(r->st, &start, &end, a->id, b->id);
}

static int adjacent(const struct store_shard *lo, const struct store_shard *hi)
{
    u128 end = store_i_hk_get(&lo->hk_end);
    return end != ~(u128)0 && end + 1 == store_i_hk_get(&hi->hk_start); /* no wrap to 0 */
}

/* ---- the change ------------------------------------------------------------------ */

static json_t *shard_json(const struct store_shard *sh)
{
    char hs[STORE_HASHKEY_STRLEN], he[STORE_HASHKEY_STRLEN], ss[STORE_SEQ_STRLEN];
    store_hashkey_format(&sh->hk_start, hs);
    store_hashkey_format(&sh->hk_end, he);
    store_seq_format(sh->start_seq, ss);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s}", "index", (json_int_t)sh->index, "hash_start", hs,
                          "hash_end", he, "start_seq", ss);
    if (sh->parent[0])
        json_object_set_new(o, "parent", json_string(sh->parent));
    if (sh->adj_parent[0])
        json_object_set_new(o, "adjacent_parent", json_string(sh->adj_parent));
    if (sh->has_end) {
        char es[STORE_SEQ_STRLEN];
        store_seq_format(sh->end_seq, es);
        json_object_set_new(o, "end_seq", json_string(es));
        json_object_set_new(o, "closed_ms", json_integer(sh->closed_ms));
    }
    return o;
}

/* Waits for the record and for the parents' earlier appends, so that the
 * caller's reply comes after every write the parents will ever acknowledge. */
struct reshard_wait {
    int left;
    int failed;
    struct store_err err;
    store_done_fn cb;
    void *arg;
};

static void wait_step(struct reshard_wait *w, const struct store_err *e)
{
    if (e && !w->failed) {
        w->failed = 1;
        w->err = *e;
    }
    if (--w->left > 0)
        return;
    if (w->cb)
        w->cb(w->arg, w->failed ? &w->err : NULL);
    free(w);
}

static void on_catalog(void *arg, const struct store_err *e) { wait_step(arg, e); }

/* A parent's append failing is that append's business, not the reshard's. */
static void on_barrier(void *arg, const struct store_err *e) { wait_step(arg, NULL); }

/* The change record of a reshard that closed "idx" and added the shards
 * from "old_n" on. */
static json_t *reshard_rec(struct store_stream *st, const uint32_t *idx, size_t nidx,
                           uint32_t old_n, uint32_t new_n)
{
    json_t *closed = json_array(), *added = json_array();
    for (size_t i = 0; i < nidx; i++) {
        struct store_shard *sh = st->shards[idx[i]];
        char es[STORE_SEQ_STRLEN];
        store_seq_format(sh->end_seq, es);
        json_array_append_new(closed, json_pack("{s:I, s:s, s:I}", "index", (json_int_t)sh->index,
                                                "end_seq", es, "closed_ms",
                                                (json_int_t)sh->closed_ms));
    }
    for (uint32_t i = old_n; i < new_n; i++)
        json_array_append_new(added, shard_json(st->shards[i]));
    return json_pack("{s:s, s:o, s:o}", "op", "reshard", "closed", closed, "added", added);
}

/* Records the reshard (the catalog change takes "r->closed") and arranges
 * "on_done". */
static void reshard_commit(struct reshard *r, store_done_fn on_done, void *arg)
{
    struct store_stream *st = r->st;
    struct store *s = st->store;
    store_i_stream_index_open(st);
    json_t *rec = reshard_rec(st, r->closed, r->nclosed, r->old_n, st->nshards);
    struct cat_change *c = store_i_catalog_record(s, CAT_RESHARD, st, rec);
    c->old_int = (int)r->old_n;
    c->new_n = st->nshards;
    c->idx = r->closed;
    c->nidx = r->nclosed;
    if (s->js)
        store_i_js_reshard_fence(s, st, c->version, c->idx, c->nidx);

    struct reshard_wait *w = store_i_xcalloc(1, sizeof *w);
    w->cb = on_done;
    w->arg = arg;
    w->left = 1;
    for (size_t i = 0; i < c->nidx; i++)
        w->left += store_i_shard_barrier(st->shards[c->idx[i]], on_barrier, w);
    store_catalog_sync(s, on_catalog, w);
}

static int check_stream(struct store_stream *st, struct store_err *err)
{
    if (st->deleting)
        return store_i_err_set(err, STORE_ENOTFOUND, "stream %s is being deleted", st->name);
    return 0;
}

static int check_open(const struct store_stream *st, const struct store_shard *sh,
                      struct store_err *err)
{
    if (!sh || sh->stream != st)
        return store_i_err_set(err, STORE_EINVAL, "shard of another stream");
    if (sh->has_end)
        return store_i_err_set(err, STORE_ESTATE, "shard %s is closed", sh->id);
    if (sh->offline)
        return store_shard_check(sh, err);
    return 0;
}

static int check_room(const struct store_stream *st, uint64_t add, struct store_err *err)
{
    if ((uint64_t)st->nshards + add > STORE_MAX_SHARD_TOTAL)
        return store_i_err_set(err, STORE_ELIMIT,
                               "stream %s would have more than %d shards over its life", st->name,
                               STORE_MAX_SHARD_TOTAL);
    return 0;
}


int store_stream_split(struct store_stream *st, struct store_shard *sh,
                       const struct store_hashkey *new_start, store_done_fn on_done, void *arg,
                       struct store_err *err)
{
    int rc = check_stream(st, err);
    if (!rc) rc = check_open(st, sh, err);
    if (!rc) rc = check_room(st, 2, err);
    if (rc)
        return rc;
    if (store_hashkey_cmp(new_start, &sh->hk_start) <= 0 ||
        store_hashkey_cmp(new_start, &sh->hk_end) > 0)
        return store_i_err_set(err, STORE_EINVAL, "split key outside (start, end] of shard %s",
                               sh->id);
    struct reshard r;
    reshard_begin(&r, st);
    do_split(&r, sh, new_start);
    reshard_commit(&r, on_done, arg);
    return 0;
}

int store_stream_merge(struct store_stream *st, struct store_shard *sh,
                       struct store_shard *adj, store_done_fn on_done, void *arg,
                       struct store_err *err)
{
    int rc = check_stream(st, err);
    if (!rc) rc = check_open(st, sh, err);
    if (!rc) rc = check_open(st, adj, err);
    if (!rc) rc = check_room(st, 1, err);
    if (rc)
        return rc;
    if (sh == adj || !(adjacent(sh, adj) || adjacent(adj, sh)))
        return store_i_err_set(err, STORE_EINVAL, "shards %s and %s are not adjacent", sh->id,
                               adj->id);
    struct reshard r;
    reshard_begin(&r, st);
    do_merge(&r, sh, adj);
    reshard_commit(&r, on_done, arg);
    return 0;
}

/* The open shard containing "k" (the open index is sorted and covers the
 * space between reshards; during a scaling it is rebuilt after each step). */
static struct store_shard *open_at(struct store_stream *st, u128 k)
{
    struct store_hashkey hk;
    store_i_hk_put(&hk, k);
    struct store_shard *sh = NULL;
    if (store_stream_route(st, &hk, &sh, NULL) != 0)
        return NULL;
    return sh;
}

int store_stream_scale(struct store_stream *st, uint32_t target, store_done_fn on_done,
                       void *arg, struct store_err *err)
{
    int rc = check_stream(st, err);
    if (rc)
        return rc;
    if (target < 1 || target > STORE_MAX_SHARDS)
        return store_i_err_set(err, STORE_EINVAL, "target shard count %" PRIu32 " outside [1, %d]",
                               target, STORE_MAX_SHARDS);
    for (uint32_t i = 0; i < st->nopen; i++)
        if (st->open[i]->offline)
            return store_shard_check(st->open[i], err);
    /* At most one split per target boundary (two shards each) and one merge
     * per piece (one shard each). */
    uint64_t pieces = (uint64_t)st->nopen + target - 1;
    rc = check_room(st, 2 * (uint64_t)(target - 1) + pieces, err);
    if (rc)
        return rc;
    struct reshard r;
    reshard_begin(&r, st);
    struct store_hashkey b, e;
    for (uint32_t j = 1; j < target; j++) {
        store_hashkey_uniform_split(target, j, &b, &e);
        struct store_shard *sh = open_at(st, store_i_hk_get(&b));
        if (sh && store_hashkey_cmp(&sh->hk_start, &b) != 0) {
            do_split(&r, sh, &b);
            store_i_stream_index_open(st);
        }
    }
    for (uint32_t j = 0; j < target; j++) {
        store_hashkey_uniform_split(target, j, &b, &e);
        struct store_shard *acc = open_at(st, store_i_hk_get(&b));
        while (acc && store_hashkey_cmp(&acc->hk_end, &e) < 0) {
            struct store_shard *next = open_at(st, store_i_hk_get(&acc->hk_end) + 1);
            if (!next)
                break;
            acc = do_merge(&r, acc, next);
            store_i_stream_index_open(st);
        }
    }
    if (st->nshards == r.old_n) {
        if (on_done) /* already there: nothing to record, nothing to wait for */
            store_catalog_sync(st->store, on_done, arg);
        return 0;
    }
    reshard_commit(&r, on_done, arg);
    return 0;
}

/* ---- durable / undone ------------------------------------------------------------ */

void store_i_reshard_durable(struct store *s, struct cat_change *c)
{
    struct store_stream *st = c->st;
    for (uint32_t i = (uint32_t)c->old_int; i < c->new_n && i < st->nshards; i++)
        st->shards[i]->pending = 0;
    /* Subscribers caught up on a closed shard wait for new records that
     * will never come: wake them to find the shard's end. */
    for (size_t i = 0; i < c->nidx; i++)
        store_i_shard_mark_notify(st->shards[c->idx[i]]);
    store_i_stream_release(s, st);
    if (s->js)
        store_i_js_reshard_durable(s, c->version);
}

int store_i_reshard_fenced(struct store *s, uint64_t version, uint64_t fence)
{
    struct cat_q *q = &s->cat;
    for (size_t i = 0; i < q->n; i++) {
        struct cat_change *c = &q->v[q->head + i];
        if (c->version != version)
            continue;
        if (c->kind != CAT_RESHARD || !c->rec)
            return -1;
        struct store_stream *st = c->st;
        for (size_t k = 0; k < c->nidx; k++) {
            struct store_shard *sh = st->shards[c->idx[k]];
            /* Above every record the shard will ever hold: JetStream refuses
             * it those stored after the fence (jetstream.c). */
            sh->end_seq = (struct store_seq){sh->start_seq.gen, sh->index, fence};
            sh->js_fence_wait = 0;
        }
        json_t *rec = reshard_rec(st, c->idx, c->nidx, (uint32_t)c->old_int, c->new_n);
        json_object_set_new(rec, "stream", json_string(st->name));
        store_i_catalog_change_rec(c, rec);
        return 0;
    }
    return -1;
}

struct store_shard *store_i_reshard_add(struct store_stream *st, json_t *v, struct store_err *err)
{
    if (st->nshards >= STORE_MAX_SHARD_TOTAL) {
        store_i_err_set(err, STORE_ELIMIT, "stream %s: too many shards", st->name);
        return NULL;
    }
    struct store_shard *sh = store_i_shard_new(st->store, st, st->nshards);
    if (store_i_catalog_shard_fields(sh, v) != 0) {
        store_i_err_set(err, STORE_ECORRUPT, "stream %s: bad shard %" PRIu32 " in a reshard",
                        st->name, st->nshards);
        store_i_shard_free(sh);
        return NULL;
    }
    if (st->nshards == st->shardcap) {
        st->shardcap = st->shardcap ? st->shardcap * 2 : st->nshards + 8;
        st->shards = store_i_xrealloc(st->shards, st->shardcap * sizeof *st->shards);
    }
    st->shards[st->nshards++] = sh;
    return sh;
}

void store_i_reshard_undo(struct store *s, struct cat_change *c)
{
    struct store_stream *st = c->st;
    uint32_t old_n = (uint32_t)c->old_int;
    /* Newest change first, so the shards above old_n are this change's. */
    while (st->nshards > old_n)
        store_i_shard_bury(s, st->shards[--st->nshards]);
    for (size_t i = 0; i < c->nidx; i++) {
        struct store_shard *sh = st->shards[c->idx[i]];
        sh->has_end = 0;
        sh->closed_ms = 0;
        sh->js_tail_open = sh->js_fence_wait = 0;
        memset(&sh->end_seq, 0, sizeof sh->end_seq);
    }
    store_i_stream_index_open(st);
    if (s->js)
        store_i_js_reshard_undone(s, c->version);
}

/* ---- readers ----------------------------------------------------------------------- */

int store_shard_at_end(const struct store_shard *sh, const struct store_pos *pos)
{
    /* Closed, and nothing appended still waits to become readable (an
     * append never reaches a closed shard, so what is readable is all). */
    if (!sh->has_end || sh->tail.unpub || sh->pending || sh->js_tail_open)
        return 0;
    if (!sh->has_pub)
        return 1;
    int c = store_seq_cmp(pos->seq, sh->last_pub);
    return pos->after ? c >= 0 : c > 0;
}

size_t store_shard_children(const struct store_shard *sh, const struct store_shard **out,
                            size_t max)
{
    const struct store_stream *st = sh->stream;
    size_t n = 0;
    if (!st)
        return 0;
    for (uint32_t i = sh->index + 1; i < st->nshards && n < max; i++) {
        const struct store_shard *c = st->shards[i];
        if (strcmp(c->parent, sh->id) == 0 || strcmp(c->adj_parent, sh->id) == 0)
            out[n++] = c;
    }
    return n;
}
