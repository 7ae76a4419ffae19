/* catalog.c - the catalog on disk: a snapshot (MANIFEST) plus an append-only
 * change log (CATALOG-<n>.log), recovery, compaction, and the loop thread's
 * list of changes not yet durable (with what undoes each).
 *
 * Upstream: store.c (open, commit, dispatch), stream.c (every mutation calls
 * store_i_catalog_record()). Downstream: syncer.c runs store_i_cat_writer_append() on its
 * thread; the loop thread never serialises the whole catalog after open.
 *
 * ON DISK
 *
 *   <dir>/MANIFEST         snapshot, JSON, replaced atomically (MANIFEST.tmp,
 *                          fsync, rename, fsync of the directory):
 *     {"version":2, "generation":G, "next_uid":U, "log":N,
 *      "streams":{"<name>":{"uid", "arn", "status", "created_ms",
 *        "retention_hours", "on_demand", "shard_metrics"?, "max_record_kib"?, "kms_key_id"?,
 *        "policy"?, "tags":{k:v},
 *        "consumers":{"<name>":{"arn","status","created_ms","tags"?:{k:v},
 *        "policy"?}}
 *        (registration order),
 *        "shard_count":C, "shard_gen":g}}}
 *     Shards are the even split of the hash space into C with start sequence
 *     (g, i, 0), until the stream's first reshard. From then on every shard
 *     is spelt out: "shards":[{"index", "hash_start", "hash_end",
 *     "start_seq", "end_seq"?, "closed_ms"?, "parent"?, "adjacent_parent"?}]
 *     (decimal strings; end_seq and closed_ms for closed shards). Version 1
 *     (the format before this log existed: "streams" and "consumers" are
 *     arrays, every shard spelt out as above) is still read; a version-1
 *     stream whose shards are the even split is written back in the short
 *     form.
 *   <dir>/CATALOG-<N>.log  changes made after the snapshot, N as in "log":
 *     header  8 bytes "SLUICECL", u32 LE format version (1), u32 LE 0
 *     records u32 LE len | u32 LE crc | len bytes of JSON
 *             crc = CRC32C over the 4 length bytes and the JSON, so a
 *             damaged length is caught like damaged content.
 *     One record per catalog change, {"op": ..., "stream": name, ...}:
 *       create (the stream fields above), delete, status {"status"},
 *       on_demand {"on_demand"}, shard_metrics {"mask"}, max_record {"kib"}, kms_key {"key_id"
 *       (null: none)}, retention {"hours"},
 *       tags_put {"tags":{k:v}},
 *       tags_remove {"keys":[..]}, consumer_put {"consumer","arn","status",
 *       "created_ms"}, consumer_del {"consumer"}, consumer_status
 *       {"consumer","status"}, consumer_tags_put {"consumer","tags":{k:v}},
 *       consumer_tags_remove {"consumer","keys":[..]}, policy {"consumer"?,
 *       "policy" (null: removed)}, account {"settings" (a JSON text, null:
 *       none); no "stream": kept as "account_settings" at the top level},
 *       reshard {"closed":[{"index","end_seq",
 *       "closed_ms"}], "added":[shard objects as in "shards"]}.
 *
 * store_close compacts too, so a cleanly closed store is one MANIFEST and an
 * empty log.
 *
 * RECOVERY (store_open): load MANIFEST (absent = empty), replay CATALOG-N.log
 * and then CATALOG-(N+1).log if it exists (a compaction that created the next
 * log but crashed before its snapshot was renamed into place). A last record
 * that is short, or whose CRC fails and that reaches the end of the file, or
 * trailing zeros, is a torn append: ignored (the change was never
 * acknowledged). A bad record followed by more data, or a length no record
 * can have (0 before non-zero bytes, over 1 MiB), is corruption:
 * STORE_ECORRUPT, the store does not open. Then the generation is bumped and a
 * fresh snapshot pointing at a new empty log is written (this also persists
 * the generation before any sequence number carries it); other logs are
 * removed.
 *
 * WRITING: every change is applied in memory at once and queued with its undo.
 * store_commit hands the records to the syncer thread, which appends them to
 * the log, fsyncs, and only then applies them to its own JSON tree of the
 * catalog (a copy it owns; the loop thread never sees it). When the log
 * outgrows both compact_bytes and the last snapshot, the syncer writes a new
 * snapshot from that tree: create CATALOG-(N+1).log, write MANIFEST with
 * "log":N+1, remove CATALOG-N.log. So the loop thread pays per change only for
 * a record of a few hundred bytes, and compaction costs are amortised O(1) per
 * change on the syncer thread. If an append fails, the log is cut back to
 * where it was (or, if that fails, replaced by a fresh snapshot), the syncer
 * drops every queued record, and the loop thread undoes every change not yet
 * durable, newest first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "record.h"

#define LOG_MAGIC "SLUICECL"
#define LOG_HDR 16u
/* No record comes near it: the largest, a scaling from 5,000 to 10,000
 * shards, adds up to 15,000 shards of about 200 bytes each (3 MiB). */
#define LOG_REC_MAX (16u << 20)

static const char *const sst[] = {"CREATING", "ACTIVE", "UPDATING", "DELETING"};
static const char *const cst[] = {"CREATING", "ACTIVE", "DELETING"};

static int name_index(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (s && strcmp(s, names[i]) == 0) return i;
    return -1;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void log_path(char *buf, size_t n, const char *dir, uint64_t logno)
{
    snprintf(buf, n, "%s/CATALOG-%" PRIu64 ".log", dir, logno);
}

/* ---- the JSON tree ------------------------------------------------------------- */

static int tree_fail(char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tree_fail(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* A stream still in the short form (shard_count, shard_gen) gets its
 * shards spelt out, so a reshard can close and add some. */
json_t *store_i_catalog_tree_shards(json_t *st)
{
    json_t *shards = json_object_get(st, "shards");
    if (shards)
        return json_is_array(shards) ? shards : NULL;
    json_int_t n = json_integer_value(json_object_get(st, "shard_count"));
    json_int_t g = json_integer_value(json_object_get(st, "shard_gen"));
    if (n < 1 || n > STORE_MAX_SHARDS || g < 0 || g >= UINT32_MAX)
        return NULL;
    shards = json_array();
    for (json_int_t i = 0; i < n; i++) {
        struct store_hashkey a, b;
        char hs[STORE_HASHKEY_STRLEN], he[STORE_HASHKEY_STRLEN], ss[STORE_SEQ_STRLEN];
        store_hashkey_even_split((uint32_t)n, (uint32_t)i, &a, &b);
        store_hashkey_format(&a, hs);
        store_hashkey_format(&b, he);
        store_seq_format((struct store_seq){(uint32_t)g, (uint32_t)i, 0}, ss);
        json_array_append_new(shards, json_pack("{s:I, s:s, s:s, s:s}", "index", i, "hash_start",
                                                hs, "hash_end", he, "start_seq", ss));
    }
    json_object_set_new(st, "shards", shards);
    json_object_del(st, "shard_count");
    json_object_del(st, "shard_gen");
    return shards;
}

static int tree_reshard(json_t *st, json_t *rec)
{
    json_t *closed = json_object_get(rec, "closed"), *added = json_object_get(rec, "added"), *v;
    json_t *shards = store_i_catalog_tree_shards(st);
    size_t i;
    if (!shards || !json_is_array(closed) || !json_is_array(added))
        return -1;
    json_array_foreach(closed, i, v) {
        json_t *o = json_array_get(shards, (size_t)json_integer_value(json_object_get(v, "index")));
        json_t *es = json_object_get(v, "end_seq"), *cm = json_object_get(v, "closed_ms");
        if (!json_is_object(o) || !json_is_string(es) || !json_is_integer(cm))
            return -1;
        json_object_set(o, "end_seq", es);
        json_object_set(o, "closed_ms", cm);
    }
    json_array_foreach(added, i, v) {
        if (json_integer_value(json_object_get(v, "index")) != (json_int_t)json_array_size(shards))
            return -1;
        json_array_append(shards, v);
    }
    return 0;
}

/* Applies one change record to the tree. -1 with "why" if it does not fit
 * (unknown stream, duplicate, bad field): the log is not this catalog's. */
int store_i_catalog_tree_apply(json_t *tree, json_t *rec, char *why, size_t whylen)
{
    json_t *streams = json_object_get(tree, "streams");
    const char *op = json_string_value(json_object_get(rec, "op"));
    const char *name = json_string_value(json_object_get(rec, "stream"));
    if (op && strcmp(op, "account") == 0) {
        json_t *v = json_object_get(rec, "settings");
        if (json_is_string(v))
            json_object_set(tree, "account_settings", v);
        else if (json_is_null(v))
            json_object_del(tree, "account_settings");
        else
            return tree_fail(why, whylen, "bad account record");
        return 0;
    }
    if (!op || !name || !json_is_object(streams))
        return tree_fail(why, whylen, "record without op/stream");
    json_t *st = json_object_get(streams, name);
    if (strcmp(op, "create") == 0) {
        json_t *uid = json_object_get(rec, "uid");
        if (st || !json_is_integer(uid) || !json_is_integer(json_object_get(rec, "shard_count")))
            return tree_fail(why, whylen, "bad create of stream %s", name);
        json_t *o = json_deep_copy(rec);
        json_object_del(o, "op");
        json_object_del(o, "stream");
        json_object_set_new(o, "tags", json_object());
        json_object_set_new(o, "consumers", json_object());
        json_object_set_new(streams, name, o);
        json_int_t next = json_integer_value(json_object_get(tree, "next_uid"));
        if (json_integer_value(uid) >= next)
            json_object_set_new(tree, "next_uid", json_integer(json_integer_value(uid) + 1));
        return 0;
    }
    if (!st)
        return tree_fail(why, whylen, "change to unknown stream %s", name);
    if (strcmp(op, "delete") == 0) {
        json_object_del(streams, name);
    } else if (strcmp(op, "status") == 0 || strcmp(op, "on_demand") == 0) {
        json_t *v = json_object_get(rec, op);
        if (!v) return tree_fail(why, whylen, "bad %s record", op);
        json_object_set(st, op, v);
    } else if (strcmp(op, "policy") == 0) {
        json_t *v = json_object_get(rec, "policy"), *target = st;
        const char *cn = json_string_value(json_object_get(rec, "consumer"));
        if (!json_is_string(v) && !json_is_null(v))
            return tree_fail(why, whylen, "bad %s record", op);
        if (cn) {
            target = json_object_get(json_object_get(st, "consumers"), cn);
            if (!target) return tree_fail(why, whylen, "change to unknown consumer %s", cn);
        }
        if (json_is_string(v))
            json_object_set(target, "policy", v);
        else
            json_object_del(target, "policy");
    } else if (strcmp(op, "kms_key") == 0) {
        json_t *v = json_object_get(rec, "key_id");
        if (!json_is_string(v) && !json_is_null(v))
            return tree_fail(why, whylen, "bad %s record", op);
        if (json_is_string(v))
            json_object_set(st, "kms_key_id", v);
        else
            json_object_del(st, "kms_key_id");
    } else if (strcmp(op, "reshard") == 0) {
        if (tree_reshard(st, rec) != 0)
            return tree_fail(why, whylen, "bad %s record", op);
    } else if (strcmp(op, "shard_metrics") == 0) {
        json_t *v = json_object_get(rec, "mask");
        if (!json_is_integer(v)) return tree_fail(why, whylen, "bad %s record", op);
        json_object_set(st, "shard_metrics", v);
    } else if (strcmp(op, "max_record") == 0) {
        json_t *v = json_object_get(rec, "kib");
        if (!json_is_integer(v)) return tree_fail(why, whylen, "bad %s record", op);
        json_object_set(st, "max_record_kib", v);
    } else if (strcmp(op, "retention") == 0) {
        json_t *v = json_object_get(rec, "hours");
        if (!json_is_integer(v)) return tree_fail(why, whylen, "bad %s record", op);
        json_object_set(st, "retention_hours", v);
    } else if (strcmp(op, "tags_put") == 0) {
        json_t *tags = json_object_get(st, "tags"), *in = json_object_get(rec, "tags");
        if (!json_is_object(tags) || !json_is_object(in))
            return tree_fail(why, whylen, "bad %s record", op);
        json_object_update(tags, in);
    } else if (strcmp(op, "tags_remove") == 0) {
        json_t *tags = json_object_get(st, "tags"), *keys = json_object_get(rec, "keys"), *k;
        size_t i;
        if (!json_is_object(tags) || !json_is_array(keys))
            return tree_fail(why, whylen, "bad %s record", op);
        json_array_foreach(keys, i, k) {
            if (json_is_string(k))
                json_object_del(tags, json_string_value(k));
        }
    } else if (strncmp(op, "consumer_", 9) == 0) {
        json_t *cons = json_object_get(st, "consumers");
        const char *cn = json_string_value(json_object_get(rec, "consumer"));
        if (!json_is_object(cons) || !cn)
            return tree_fail(why, whylen, "bad %s record", op);
        json_t *c = json_object_get(cons, cn);
        if (strcmp(op, "consumer_put") == 0) {
            if (c) return tree_fail(why, whylen, "consumer %s registered twice", cn);
            json_t *o = json_deep_copy(rec);
            json_object_del(o, "op");
            json_object_del(o, "stream");
            json_object_del(o, "consumer");
            json_object_set_new(cons, cn, o);
        } else if (!c) {
            return tree_fail(why, whylen, "change to unknown consumer %s", cn);
        } else if (strcmp(op, "consumer_del") == 0) {
            json_object_del(cons, cn);
        } else if (strcmp(op, "consumer_status") == 0) {
            json_t *v = json_object_get(rec, "status");
            if (!v) return tree_fail(why, whylen, "bad %s record", op);
            json_object_set(c, "status", v);
        } else if (strcmp(op, "consumer_tags_put") == 0) {
            json_t *in = json_object_get(rec, "tags"), *tags = json_object_get(c, "tags");
            if (!json_is_object(in)) return tree_fail(why, whylen, "bad %s record", op);
            if (!json_is_object(tags)) {
                tags = json_object();
                json_object_set_new(c, "tags", tags);
            }
            json_object_update(tags, in);
        } else if (strcmp(op, "consumer_tags_remove") == 0) {
            json_t *keys = json_object_get(rec, "keys"), *tags = json_object_get(c, "tags"), *k;
            size_t i;
            if (!json_is_array(keys)) return tree_fail(why, whylen, "bad %s record", op);
            json_array_foreach(keys, i, k) {
                if (json_is_object(tags) && json_is_string(k))
                    json_object_del(tags, json_string_value(k));
            }
        } else {
            return tree_fail(why, whylen, "unknown op %s", op);
        }
    } else {
        return tree_fail(why, whylen, "unknown op %s", op);
    }
    return 0;
}

/* A version-1 shard array that is exactly the even split from one generation
 * becomes shard_count/shard_gen; anything else is kept as it is. */
static void shards_compact(json_t *o)
{
    json_t *shards = json_object_get(o, "shards"), *v;
    size_t n = json_array_size(shards), i;
    if (!json_is_array(shards) || n < 1 || n > STORE_MAX_SHARDS)
        return;
    uint32_t gen = 0;
    json_array_foreach(shards, i, v) {
        const char *hs = json_string_value(json_object_get(v, "hash_start"));
        const char *he = json_string_value(json_object_get(v, "hash_end"));
        const char *ss = json_string_value(json_object_get(v, "start_seq"));
        struct store_hashkey a, b, ea, eb;
        struct store_seq q;
        if (!hs || !he || !ss || json_object_get(v, "end_seq") || json_object_get(v, "parent") ||
            json_object_get(v, "adjacent_parent") ||
            json_integer_value(json_object_get(v, "index")) != (json_int_t)i ||
            store_hashkey_parse(hs, strlen(hs), &a, NULL) ||
            store_hashkey_parse(he, strlen(he), &b, NULL) ||
            store_seq_parse(ss, strlen(ss), &q, NULL))
            return;
        store_hashkey_even_split((uint32_t)n, (uint32_t)i, &ea, &eb);
        if (i == 0) gen = q.gen;
        if (store_hashkey_cmp(&a, &ea) || store_hashkey_cmp(&b, &eb) || q.gen != gen ||
            q.shard != i || q.counter != 0)
            return;
    }
    json_object_del(o, "shards");
    json_object_set_new(o, "shard_count", json_integer((json_int_t)n));
    json_object_set_new(o, "shard_gen", json_integer(gen));
}

/* Turns a loaded MANIFEST (version 1 or 2) into the version-2 tree. */
static int tree_normalise(json_t *root, const char *path, struct store_err *err)
{
    json_error_t je;
    json_int_t version = 0, gen = 0, next_uid = 0;
    json_t *streams = NULL;
    if (json_unpack_ex(root, &je, 0, "{s:I, s:I, s:I, s:o}", "version", &version, "generation",
                       &gen, "next_uid", &next_uid, "streams", &streams) != 0 ||
        (version != 1 && version != 2) || gen < 0 || gen >= UINT32_MAX || next_uid < 0 ||
        (version == 1 && !json_is_array(streams)) || (version == 2 && !json_is_object(streams)) ||
        (version == 2 && !json_is_integer(json_object_get(root, "log"))))
        return store_i_err_set(err, STORE_ECORRUPT, "manifest %s: bad top level (%s)", path,
                               je.text);
    if (version == 2)
        return 0;
    json_t *obj = json_object(), *o;
    size_t i;
    json_array_foreach(streams, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        json_t *cons = json_object_get(o, "consumers"), *c;
        if (!name || !json_is_array(cons) || json_object_get(obj, name)) {
            json_decref(obj);
            return store_i_err_set(err, STORE_ECORRUPT, "manifest %s: bad stream %zu", path, i);
        }
        json_t *co = json_object();
        size_t j;
        json_array_foreach(cons, j, c) {
            const char *cn = json_string_value(json_object_get(c, "name"));
            if (!cn || json_object_get(co, cn)) {
                json_decref(co);
                json_decref(obj);
                return store_i_err_set(err, STORE_ECORRUPT, "manifest %s: bad consumer in %s", path,
                                       name);
            }
            json_t *cc = json_deep_copy(c);
            json_object_del(cc, "name");
            json_object_set_new(co, cn, cc);
        }
        json_t *so = json_deep_copy(o);
        json_object_del(so, "name");
        json_object_set_new(so, "consumers", co);
        shards_compact(so);
        json_object_set_new(obj, name, so);
    }
    json_object_set_new(root, "streams", obj);
    json_object_set_new(root, "version", json_integer(2));
    json_object_set_new(root, "log", json_integer(0));
    return 0;
}

/* ---- building the store from the tree ------------------------------------------------ */

static int build_shards(struct store *s, struct store_stream *st, json_t *o, const char *path,
                        const char *name, struct store_err *err)
{
    json_t *shards = json_object_get(o, "shards");
    if (!shards) {
        json_int_t n = json_integer_value(json_object_get(o, "shard_count"));
        json_int_t g = json_integer_value(json_object_get(o, "shard_gen"));
        if (n < 1 || n > STORE_MAX_SHARDS || g < 0 || g >= UINT32_MAX)
            return store_i_err_set(err, STORE_ECORRUPT, "manifest %s: bad shards of %s", path,
                                   name);
        st->nshards = st->shardcap = (uint32_t)n;
        st->shards = store_i_xcalloc(st->nshards, sizeof *st->shards);
        st->shard_gen = (uint32_t)g;
        for (uint32_t i = 0; i < st->nshards; i++) {
            struct store_shard *sh = store_i_shard_new(s, st, i);
            store_hashkey_even_split(st->nshards, i, &sh->hk_start, &sh->hk_end);
            sh->start_seq = (struct store_seq){(uint32_t)g, i, 0};
            st->shards[i] = sh;
        }
        store_i_stream_index_open(st);
        return 0;
    }
    if (!json_is_array(shards) || json_array_size(shards) < 1 ||
        json_array_size(shards) > STORE_MAX_SHARD_TOTAL)
        return store_i_err_set(err, STORE_ECORRUPT, "manifest %s: bad shards of %s", path, name);
    st->nshards = st->shardcap = (uint32_t)json_array_size(shards);
    st->shards = store_i_xcalloc(st->nshards, sizeof *st->shards);
    size_t j;
    json_t *v;
    json_array_foreach(shards, j, v) {
        json_int_t idx = json_integer_value(json_object_get(v, "index"));
        if (idx != (json_int_t)j)
            return store_i_err_set(err, STORE_ECORRUPT, "manifest %s: bad shard %zu in %s", path, j,
                                   name);
        struct store_shard *sh = store_i_shard_new(s, st, (uint32_t)idx);
        st->shards[j] = sh;
        if (store_i_catalog_shard_fields(sh, v) != 0)
            return store_i_err_set(err, STORE_ECORRUPT, "manifest %s: bad shard %zu in %s", path, j,
                                   name);
    }
    store_i_stream_index_open(st);
    return 0;
}

int store_i_catalog_shard_fields(struct store_shard *sh, json_t *v)
{
    json_int_t idx;
    const char *hs, *he, *ss, *es = NULL, *par = NULL, *apar = NULL;
    if (json_unpack(v, "{s:I, s:s, s:s, s:s, s?s, s?s, s?s}", "index", &idx, "hash_start", &hs,
                    "hash_end", &he, "start_seq", &ss, "end_seq", &es, "parent", &par,
                    "adjacent_parent", &apar) != 0 || idx != (json_int_t)sh->index)
        return -1;
    if (store_hashkey_parse(hs, strlen(hs), &sh->hk_start, NULL) ||
        store_hashkey_parse(he, strlen(he), &sh->hk_end, NULL) ||
        store_seq_parse(ss, strlen(ss), &sh->start_seq, NULL) ||
        (es && store_seq_parse(es, strlen(es), &sh->end_seq, NULL)) ||
        (par && strlen(par) >= sizeof sh->parent) ||
        (apar && strlen(apar) >= sizeof sh->adj_parent))
        return -1;
    sh->has_end = es != NULL;
    /* Absent in version-1 manifests: closed at an unknown time. */
    sh->closed_ms = json_integer_value(json_object_get(v, "closed_ms"));
    if (par) strcpy(sh->parent, par);
    if (apar) strcpy(sh->adj_parent, apar);
    return 0;
}

int store_i_catalog_build_stream(struct store *s, const char *name, json_t *o, const char *path,
                                 struct store_stream **out, struct store_err *err)
{
    {
        json_error_t je;
        const char *arn, *status;
        json_int_t uid, created, retention;
        json_t *tags, *cons;
        if (json_unpack_ex(o, &je, 0, "{s:I, s:s, s:s, s:I, s:I, s:o, s:o}", "uid", &uid, "arn",
                           &arn, "status", &status, "created_ms", &created, "retention_hours",
                           &retention, "tags", &tags, "consumers", &cons) != 0 ||
            !json_is_object(tags) || !json_is_object(cons) || name_index(status, sst, 4) < 0 ||
            !store_i_stream_name_valid(name) || uid < 0)
            return store_i_err_set(err, STORE_ECORRUPT, "manifest %s: bad stream %s (%s)", path,
                                   name, je.text);
        struct store_stream *st = store_i_stream_new(s, name, (uint64_t)uid);
        st->arn = store_i_xstrdup(arn);
        st->status = (enum store_stream_status)name_index(status, sst, 4);
        st->created_ms = created;
        st->retention_hours = (uint32_t)retention;
        /* Optional: manifests written before capacity modes existed lack it. */
        st->on_demand = json_is_true(json_object_get(o, "on_demand"));
        /* Absent in manifests written before enhanced monitoring: none. */
        json_int_t metrics = json_integer_value(json_object_get(o, "shard_metrics"));
        st->shard_metrics = (uint32_t)metrics & STORE_SHARD_METRICS_ALL;
        /* Absent before UpdateMaxRecordSize existed: the default. */
        json_int_t kib = json_integer_value(json_object_get(o, "max_record_kib"));
        if (kib >= STORE_MAX_RECORD_KIB_MIN && kib <= STORE_MAX_RECORD_KIB_MAX)
            st->max_record_kib = (uint32_t)kib;
        store_i_stream_insert(s, st); /* owned by the store from here, errors included */
        const char *kms = json_string_value(json_object_get(o, "kms_key_id"));
        if (kms && (!*kms || strlen(kms) > STORE_KMS_KEY_ID_MAX))
            return store_i_err_set(err, STORE_ECORRUPT, "manifest %s: bad kms_key_id of %s", path,
                                   name);
        st->kms_key_id = kms ? store_i_xstrdup(kms) : NULL;
        const char *pol = json_string_value(json_object_get(o, "policy"));
        st->policy = pol ? store_i_xstrdup(pol) : NULL;
        const char *k;
        json_t *v;
        json_object_foreach(tags, k, v) {
            store_i_stream_tag_put(st, k, json_is_string(v) ? json_string_value(v) : "");
        }
        json_object_foreach(cons, k, v) {
            const char *ca, *cs;
            json_int_t cc;
            if (json_unpack(v, "{s:s, s:s, s:I}", "arn", &ca, "status", &cs, "created_ms",
                            &cc) != 0 || name_index(cs, cst, 3) < 0)
                return store_i_err_set(err, STORE_ECORRUPT, "manifest %s: bad consumer in %s", path,
                                       name);
            store_i_stream_consumer_put(st, k, ca,
                                        (enum store_consumer_status)name_index(cs, cst, 3), cc);
            const char *cpol = json_string_value(json_object_get(v, "policy"));
            if (cpol)
                store_i_stream_consumer_policy_put(st, k, cpol);
            /* Optional: consumers without tags (and older manifests) lack it. */
            json_t *ctags = json_object_get(v, "tags"), *tv;
            const char *tk;
            json_object_foreach(ctags, tk, tv) {
                store_i_stream_consumer_tag_put(st, k, tk,
                                                json_is_string(tv) ? json_string_value(tv) : "");
            }
        }
        if (out)
            *out = st;
        return build_shards(s, st, o, path, name, err);
    }
}

static int tree_build(struct store *s, json_t *tree, const char *path, struct store_err *err)
{
    s->gen = (uint32_t)json_integer_value(json_object_get(tree, "generation"));
    s->next_uid = (uint64_t)json_integer_value(json_object_get(tree, "next_uid"));
    const char *acct = json_string_value(json_object_get(tree, "account_settings"));
    free(s->account_settings);
    s->account_settings = acct ? store_i_xstrdup(acct) : NULL;
    const char *name;
    json_t *o;
    json_object_foreach(json_object_get(tree, "streams"), name, o) {
        int rc = store_i_catalog_build_stream(s, name, o, path, NULL, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the log -------------------------------------------------------------------------- */

/* Replays "path" into "tree". 0 if it does not exist. "next" marks log N+1,
 * which a crash inside log_create may have left without its header. */
static int log_replay(struct store *s, json_t *tree, const char *path, int next,
                      struct store_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        return store_i_err_errno(err, errno, "open %s", path);
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return store_i_err_errno(err, e, "stat %s", path);
    }
    size_t size = (size_t)sb.st_size;
    uint8_t *buf = store_i_xmalloc(size ? size : 1);
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            free(buf);
            return store_i_err_errno(err, e, "read %s", path);
        }
        got += (size_t)r;
    }
    close(fd);
    int rc = 0;
    if (next && (size < LOG_HDR || memcmp(buf, "\0\0\0\0\0\0\0\0", 8) == 0)) {
        store_i_log(s, STORE_LOG_WARN, "catalog log %s: created but never used, ignored", path);
        goto out;
    }
    if (size < LOG_HDR || memcmp(buf, LOG_MAGIC, 8) != 0 || get_le32(buf + 8) != 1) {
        /* A log is created with its header and fsynced before any snapshot
         * names it, so a short or foreign header is damage, not a torn write. */
        rc = store_i_err_set(err, STORE_ECORRUPT, "catalog log %s: bad header", path);
        goto out;
    }
    size_t off = LOG_HDR, nrec = 0;
    while (off < size) {
        size_t left = size - off;
        if (left < 8) {
            store_i_log(s, STORE_LOG_WARN, "catalog log %s: torn last record at %zu ignored", path,
                        off);
            break;
        }
        /* A torn append leaves its length right or zero, never implausible:
         * a length no record can have is damage, even near the end. */
        uint32_t len = get_le32(buf + off);
        int zeros = 1;
        for (size_t i = off; i < size && zeros; i++) zeros = buf[i] == 0;
        if ((len == 0 || len > LOG_REC_MAX) && !zeros) {
            rc = store_i_err_set(err, STORE_ECORRUPT,
                                 "catalog log %s: record at offset %zu is corrupt", path, off);
            goto out;
        }
        if (zeros || (uint64_t)len + 8 > left) {
            store_i_log(s, STORE_LOG_WARN, "catalog log %s: torn last record at %zu ignored", path,
                        off);
            break;
        }
        uint32_t crc = store_i_record_crc32c(0, buf + off, 4);
        crc = store_i_record_crc32c(crc, buf + off + 8, len);
        if (crc != get_le32(buf + off + 4)) {
            if (off + 8 + len == size) {
                store_i_log(s, STORE_LOG_WARN, "catalog log %s: torn last record at %zu ignored",
                            path, off);
                break;
            }
            rc = store_i_err_set(err, STORE_ECORRUPT,
                                 "catalog log %s: record at offset %zu is corrupt", path, off);
            goto out;
        }
        json_error_t je;
        json_t *rec = json_loadb((const char *)buf + off + 8, len, 0, &je);
        char why[256];
        if (!rec || store_i_catalog_tree_apply(tree, rec, why, sizeof why) != 0) {
            rc = store_i_err_set(err, STORE_ECORRUPT, "catalog log %s: record at %zu: %s", path,
                                 off, rec ? why : je.text);
            json_decref(rec);
            goto out;
        }
        json_decref(rec);
        nrec++;
        off += 8 + len;
    }
    if (nrec)
        store_i_log(s, STORE_LOG_INFO, "catalog log %s: %zu changes replayed", path, nrec);
out:
    free(buf);
    return rc;
}

/* Creates an empty log "logno", fsynced (file and directory). errno or 0. */
static int log_create(const char *dir, int dir_fd, uint64_t logno, const struct store_io_ops *io,
                      int *fd_out)
{
    char path[4200];
    log_path(path, sizeof path, dir, logno);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    uint8_t hdr[LOG_HDR] = {0};
    memcpy(hdr, LOG_MAGIC, 8);
    put_le32(hdr + 8, 1);
    int rc = store_i_io_write_all(io, fd, hdr, sizeof hdr);
    if (rc == 0 && io->fsync(io->ctx, fd) != 0)
        rc = errno ? errno : EIO;
    if (rc == 0 && io->fsync(io->ctx, dir_fd) != 0)
        rc = errno ? errno : EIO;
    if (rc) {
        close(fd);
        unlink(path);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

/* ---- the writer (syncer thread after open) ------------------------------------------------- */

struct cat_writer {
    json_t *tree;
    char *dir;
    int dir_fd;
    int fd;              /* the current log, O_APPEND */
    uint64_t logno;
    uint64_t bytes;      /* current log size */
    uint64_t snap_bytes; /* size of the last snapshot */
    uint64_t compact_bytes;
    int broken;          /* errno: the log could not be repaired after a failure */
    const struct store_io_ops *io;
};

/* Writes "data" as MANIFEST (temp file, fsync, rename, fsync of the
 * directory). "*renamed" tells whether the rename happened, so the caller
 * knows which log a crash could leave MANIFEST naming. errno or 0. */
static int snapshot_write(struct cat_writer *w, const char *data, size_t len, int *renamed)
{
    char tmp[4200], dst[4200];
    snprintf(tmp, sizeof tmp, "%s/MANIFEST.tmp", w->dir);
    snprintf(dst, sizeof dst, "%s/MANIFEST", w->dir);
    *renamed = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    int rc = store_i_io_write_all(w->io, fd, data, len);
    if (rc == 0 && w->io->fsync(w->io->ctx, fd) != 0)
        rc = errno ? errno : EIO;
    if (close(fd) != 0 && rc == 0)
        rc = errno;
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = errno;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    *renamed = 1;
    if (w->io->fsync(w->io->ctx, w->dir_fd) != 0)
        return errno ? errno : EIO;
    return 0;
}

/* Starts log logno+1, writes the snapshot naming it, drops log logno. */
static int writer_compact(struct cat_writer *w)
{
    int nfd = -1;
    int rc = log_create(w->dir, w->dir_fd, w->logno + 1, w->io, &nfd);
    if (rc)
        return rc;
    json_object_set_new(w->tree, "log", json_integer((json_int_t)(w->logno + 1)));
    char *snap = json_dumps(w->tree, JSON_COMPACT);
    if (!snap) {
        fprintf(stderr, "sluice store: out of memory serialising the catalog\n");
        abort();
    }
    size_t len = strlen(snap);
    int renamed;
    rc = snapshot_write(w, snap, len, &renamed);
    free(snap);
    if (!renamed) {
        /* MANIFEST still names log N: keep appending there; N+1 stays empty
         * (replayed as empty if a crash comes first). */
        json_object_set_new(w->tree, "log", json_integer((json_int_t)w->logno));
        close(nfd);
        return rc;
    }
    /* Renamed: from now on changes go to N+1. If the directory fsync failed,
     * a crash may still leave MANIFEST naming N; recovery replays N and then
     * N+1, so N must stay until a later snapshot is certainly durable (open
     * removes leftovers). */
    char oldp[4200];
    log_path(oldp, sizeof oldp, w->dir, w->logno);
    if (w->fd >= 0) close(w->fd);
    if (rc == 0) unlink(oldp);
    w->fd = nfd;
    w->logno++;
    w->bytes = LOG_HDR;
    w->snap_bytes = len;
    return rc;
}

int store_i_cat_writer_append(struct cat_writer *w, struct cat_rec *recs, size_t n)
{
    if (w->broken)
        return w->broken;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += 8 + recs[i].len;
    uint8_t *buf = store_i_xmalloc(total ? total : 1);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        put_le32(buf + off, (uint32_t)recs[i].len);
        memcpy(buf + off + 8, recs[i].data, recs[i].len);
        uint32_t crc = store_i_record_crc32c(0, buf + off, 4);
        put_le32(buf + off + 4, store_i_record_crc32c(crc, recs[i].data, recs[i].len));
        off += 8 + recs[i].len;
    }
    errno = 0;
    int rc = store_i_io_write_all(w->io, w->fd, buf, total);
    free(buf);
    if (rc == 0 && w->io->fsync(w->io->ctx, w->fd) != 0)
        rc = errno ? errno : EIO;
    if (rc) {
        /* The records may be partly or wholly in the file: cut them off, or a
         * crash would bring back changes the loop thread is about to undo. If
         * even that fails, start over from a snapshot of the tree (which
         * never saw them). */
        if (ftruncate(w->fd, (off_t)w->bytes) != 0 || w->io->fsync(w->io->ctx, w->fd) != 0) {
            if (writer_compact(w) != 0)
                w->broken = rc;
        }
        return rc;
    }
    w->bytes += total;
    for (size_t i = 0; i < n; i++) {
        json_error_t je;
        json_t *rec = json_loadb(recs[i].data, recs[i].len, 0, &je);
        char why[256];
        if (!rec || store_i_catalog_tree_apply(w->tree, rec, why, sizeof why) != 0) {
            /* Cannot happen: the loop thread made these from a catalog the
             * tree mirrors. Refuse further writes rather than diverge. */
            fprintf(stderr, "sluice store: catalog record does not apply: %.*s\n",
                    (int)(recs[i].len > 200 ? 200 : recs[i].len), recs[i].data);
            w->broken = EIO;
        }
        json_decref(rec);
    }
    if (w->bytes >= w->compact_bytes && w->bytes >= w->snap_bytes)
        writer_compact(w); /* a failure leaves the log growing; retried next time */
    return 0;
}

void store_i_cat_writer_free(struct cat_writer *w)
{
    if (!w)
        return;
    /* A clean close leaves a self-contained snapshot and an empty log. A
     * failure is harmless: the log still holds every durable change. */
    if (w->fd >= 0 && !w->broken && w->bytes > LOG_HDR)
        writer_compact(w);
    json_decref(w->tree);
    if (w->fd >= 0) close(w->fd);
    free(w->dir);
    free(w);
}

/* ---- open ------------------------------------------------------------------------------ */

int store_i_catalog_open(struct store *s, struct cat_writer **out, struct store_err *err)
{
    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/MANIFEST", s->dir);
    json_error_t je;
    json_t *tree = json_load_file(mpath, 0, &je);
    int rc;
    if (!tree) {
        if (access(mpath, F_OK) == 0 || errno != ENOENT)
            return store_i_err_set(err, STORE_ECORRUPT, "manifest %s unreadable: %s (line %d)",
                                   mpath, je.text, je.line);
        tree = json_pack("{s:i, s:i, s:i, s:i, s:o}", "version", 2, "generation", 0, "next_uid", 0,
                         "log", 0, "streams", json_object());
    } else if ((rc = tree_normalise(tree, mpath, err)) != 0) {
        json_decref(tree);
        return rc;
    }
    uint64_t logno = (uint64_t)json_integer_value(json_object_get(tree, "log"));
    char lp[4200];
    for (uint64_t k = logno; k <= logno + 1; k++) {
        log_path(lp, sizeof lp, s->dir, k);
        if ((rc = log_replay(s, tree, lp, k > logno, err)) != 0) {
            json_decref(tree);
            return rc;
        }
    }
    json_int_t gen = json_integer_value(json_object_get(tree, "generation"));
    if (gen >= UINT32_MAX - 1) {
        json_decref(tree);
        return store_i_err_set(err, STORE_EINVAL, "store generation exhausted");
    }
    json_object_set_new(tree, "generation", json_integer(gen + 1));
    if ((rc = tree_build(s, tree, mpath, err)) != 0) {
        json_decref(tree);
        return rc;
    }
    /* A fresh snapshot naming a new empty log: persists the generation and
     * keeps the log from growing across restarts. */
    struct cat_writer *w = store_i_xcalloc(1, sizeof *w);
    w->tree = tree;
    w->dir = store_i_xstrdup(s->dir);
    w->dir_fd = s->dir_fd;
    w->io = &s->io;
    w->fd = -1;
    w->logno = logno + 1;
    w->compact_bytes = s->opts.catalog_compact_bytes;
    /* Snapshot the replayed tree, naming a new empty log N+2 (log N+1, if
     * any, was replayed; it is removed only once the snapshot is in place). */
    int e = writer_compact(w);
    if (e) {
        store_i_cat_writer_free(w);
        return store_i_err_errno(err, e, "write %s", mpath);
    }
    /* Every other log is older than the snapshot. */
    DIR *d = opendir(s->dir);
    if (d) {
        struct dirent *de;
        char keep[64];
        snprintf(keep, sizeof keep, "CATALOG-%" PRIu64 ".log", w->logno);
        while ((de = readdir(d)))
            if (strncmp(de->d_name, "CATALOG-", 8) == 0 && strcmp(de->d_name, keep) != 0)
                unlinkat(s->dir_fd, de->d_name, 0);
        closedir(d);
    }
    *out = w;
    return 0;
}

/* ---- loop side: records and undo -------------------------------------------------------- */

struct cat_change *store_i_catalog_record(struct store *s, enum cat_kind kind,
                                          struct store_stream *st, json_t *rec)
{
    struct cat_q *q = &s->cat;
    if (q->head + q->n == q->cap) {
        if (q->head > q->cap / 2) {
            memmove(q->v, q->v + q->head, q->n * sizeof *q->v);
            q->head = 0;
        } else {
            q->cap = q->cap ? q->cap * 2 : 16;
            q->v = store_i_xrealloc(q->v, q->cap * sizeof *q->v);
        }
    }
    struct cat_change *c = &q->v[q->head + q->n++];
    memset(c, 0, sizeof *c);
    c->version = ++s->catalog_version;
    c->kind = kind;
    c->st = st;
    if (st) /* NULL: an account-wide change */
        json_object_set_new(rec, "stream", json_string(st->name));
    store_i_catalog_change_rec(c, rec);
    return c;
}

void store_i_catalog_change_rec(struct cat_change *c, json_t *rec)
{
    free(c->rec);
    c->rec = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    if (!c->rec) {
        fprintf(stderr, "sluice store: out of memory serialising a catalog change\n");
        abort();
    }
    c->len = strlen(c->rec);
}

static void change_free(struct cat_change *c)
{
    free(c->rec);
    free(c->old_str);
    store_i_tags_free(c->old_tags, c->old_ntags);
    if (c->cons.name)
        store_i_consumer_clear(&c->cons);
    free(c->cname);
    free(c->idx);
}

size_t store_i_catalog_take_unposted(struct store *s, struct cat_rec **out)
{
    struct cat_q *q = &s->cat;
    size_t k = 0;
    *out = NULL;
    for (size_t i = 0; i < q->n; i++) {
        struct cat_change *c = &q->v[q->head + i];
        if (!c->rec)
            continue;
        if (!*out)
            *out = store_i_xmalloc((q->n - i) * sizeof **out);
        (*out)[k].data = c->rec;
        (*out)[k].len = c->len;
        (*out)[k].version = c->version;
        c->rec = NULL; /* the syncer owns it now */
        k++;
    }
    return k;
}

/* A change is durable: drop its undo, finish what waited for it. */
static void change_durable(struct store *s, struct cat_change *c)
{
    if (c->kind == CAT_CREATE)
        store_i_stream_catalog_durable(s, c->st);
    else if (c->kind == CAT_DELETE) {
        if (s->js)
            store_i_js_stream_deleted(s, c->st);
        store_i_stream_bury(s, c->st);
    }
    else if (c->kind == CAT_RESHARD)
        store_i_reshard_durable(s, c);
    else if (c->kind == CAT_RETENTION && s->js)
        store_i_js_stream_retention(s, c->st);
}

void store_i_catalog_durable(struct store *s, uint64_t version)
{
    struct cat_q *q = &s->cat;
    while (q->n && q->v[q->head].version <= version) {
        struct cat_change c = q->v[q->head];
        q->head++;
        q->n--;
        change_durable(s, &c);
        change_free(&c);
    }
    if (!q->n)
        q->head = 0;
}

void store_i_catalog_rollback(struct store *s)
{
    struct cat_q *q = &s->cat;
    while (q->n) {
        struct cat_change c = q->v[q->head + q->n - 1];
        q->n--;
        store_i_stream_undo(s, &c);
        change_free(&c);
    }
    q->head = 0;
}

void store_i_catalog_free(struct store *s)
{
    /* Only at close/failed open: whatever is pending is neither durable nor
     * worth undoing; a deleted stream still held here is freed. */
    struct cat_q *q = &s->cat;
    for (size_t i = 0; i < q->n; i++) {
        struct cat_change *c = &q->v[q->head + i];
        if (c->kind == CAT_DELETE)
            store_i_stream_bury(s, c->st);
        change_free(c);
    }
    free(q->v);
    memset(q, 0, sizeof *q);
}
