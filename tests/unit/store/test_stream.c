/* test_stream.c - stream.c: hash keys, even split, routing against
 * testvectors/hashkeys.json, shard ids, tags, consumers, retention. */
#include <jansson.h>

#include "helpers.h"

static json_t *vectors(void)
{
    json_error_t je;
    json_t *j = json_load_file(SLUICE_VECTORS_DIR "/hashkeys.json", 0, &je);
    cr_assert_not_null(j, "hashkeys.json: %s", je.text);
    return j;
}

Test(stream, hashkey_parse_format)
{
    struct store_hashkey hk;
    char buf[STORE_HASHKEY_STRLEN];
    const char *ok[] = {"0", "1", "255", "340282366920938463463374607431768211455",
                        "170141183460469231731687303715884105728"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cr_assert_eq(store_hashkey_parse(ok[i], strlen(ok[i]), &hk, NULL), 0, "%s", ok[i]);
        store_hashkey_format(&hk, buf);
        cr_assert_str_eq(buf, ok[i]);
    }
    const char *bad[] = {"", "-1", "01", "340282366920938463463374607431768211456", "1a",
                         "9999999999999999999999999999999999999999", " 1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct store_err err;
        cr_assert_eq(store_hashkey_parse(bad[i], strlen(bad[i]), &hk, &err), STORE_EINVAL, "%s", bad[i]);
        cr_assert_eq(err.code, STORE_EINVAL);
    }
}

Test(stream, even_split_matches_vectors)
{
    json_t *j = vectors();
    const char *n;
    json_t *arr;
    json_object_foreach(json_object_get(j, "ranges"), n, arr) {
        uint32_t shards = (uint32_t)atoi(n);
        cr_assert_eq(json_array_size(arr), shards);
        for (uint32_t i = 0; i < shards; i++) {
            json_t *r = json_array_get(arr, i);
            struct store_hashkey a, b;
            char sa[STORE_HASHKEY_STRLEN], sb[STORE_HASHKEY_STRLEN];
            store_hashkey_even_split(shards, i, &a, &b);
            store_hashkey_format(&a, sa);
            store_hashkey_format(&b, sb);
            cr_assert_str_eq(sa, json_string_value(json_object_get(r, "StartingHashKey")));
            cr_assert_str_eq(sb, json_string_value(json_object_get(r, "EndingHashKey")));
        }
    }
    json_decref(j);
    /* 3 shards: the AWS CLI example's boundaries */
    struct store_hashkey a, b;
    char s[STORE_HASHKEY_STRLEN];
    store_hashkey_even_split(3, 1, &a, &b);
    store_hashkey_format(&a, s);
    cr_assert_str_eq(s, "113427455640312821154458202477256070485");
    store_hashkey_even_split(3, 2, &a, &b);
    store_hashkey_format(&a, s);
    cr_assert_str_eq(s, "226854911280625642308916404954512140970");
    store_hashkey_format(&b, s);
    cr_assert_str_eq(s, "340282366920938463463374607431768211455");
    /* 1 shard covers everything */
    store_hashkey_even_split(1, 0, &a, &b);
    store_hashkey_format(&a, s);
    cr_assert_str_eq(s, "0");
    store_hashkey_format(&b, s);
    cr_assert_str_eq(s, "340282366920938463463374607431768211455");
}

struct env { char *dir; struct store *s; };

static void env_open(struct env *e)
{
    e->dir = tmpdir_new();
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    e->s = open_store(e->dir, &o);
}

static void env_close(struct env *e)
{
    store_close(e->s);
    rm_rf(e->dir);
    free(e->dir);
}

Test(stream, routing_matches_vectors)
{
    struct env e;
    env_open(&e);
    struct store_stream *s2 = make_stream(e.s, "two", 2), *s4 = make_stream(e.s, "four", 4);
    json_t *j = vectors();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "vectors"), i, v) {
        const char *pk = json_string_value(json_object_get(v, "partition_key"));
        struct store_hashkey hk;
        char dec[STORE_HASHKEY_STRLEN];
        store_hashkey_from_partition_key((const uint8_t *)pk, strlen(pk), &hk);
        store_hashkey_format(&hk, dec);
        cr_assert_str_eq(dec, json_string_value(json_object_get(v, "hash_key_decimal")), "pk %s", pk);
        struct store_shard *sh;
        struct store_shard_info info;
        cr_assert_eq(store_stream_route(s2, &hk, &sh, NULL), 0);
        store_shard_info(sh, &info);
        cr_assert_eq(info.index, json_integer_value(json_object_get(v, "shard_index_2_shards")));
        cr_assert_eq(store_stream_route(s4, &hk, &sh, NULL), 0);
        store_shard_info(sh, &info);
        cr_assert_eq(info.index, json_integer_value(json_object_get(v, "shard_index_4_shards")));
    }
    json_array_foreach(json_object_get(j, "explicit_hash_key_vectors"), i, v) {
        const char *k = json_string_value(json_object_get(v, "explicit_hash_key"));
        struct store_hashkey hk;
        cr_assert_eq(store_hashkey_parse(k, strlen(k), &hk, NULL), 0);
        struct store_shard *sh;
        struct store_shard_info info;
        cr_assert_eq(store_stream_route(s2, &hk, &sh, NULL), 0);
        store_shard_info(sh, &info);
        cr_assert_eq(info.index, json_integer_value(json_object_get(v, "shard_index_2_shards")), "%s", k);
        cr_assert_eq(store_stream_route(s4, &hk, &sh, NULL), 0);
        store_shard_info(sh, &info);
        cr_assert_eq(info.index, json_integer_value(json_object_get(v, "shard_index_4_shards")), "%s", k);
    }
    json_decref(j);
    env_close(&e);
}

Test(stream, shards_ids_and_ranges)
{
    struct env e;
    env_open(&e);
    struct store_stream *st = make_stream(e.s, "s", 5);
    cr_assert_eq(store_stream_shard_count(st), 5);
    for (uint32_t i = 0; i < 5; i++) {
        struct store_shard_info info;
        store_shard_info(store_stream_shard(st, i), &info);
        char want[32];
        snprintf(want, sizeof want, "shardId-%012u", i);
        cr_assert_str_eq(info.id, want);
        cr_assert(info.open);
        cr_assert_null(info.parent_id);
        cr_assert_eq(info.starting_seq.shard, i);
        cr_assert_eq(info.starting_seq.counter, 0);
        struct store_shard *sh;
        cr_assert_eq(store_stream_shard_lookup(st, want, &sh, NULL), 0);
        cr_assert_eq(sh, store_stream_shard(st, i));
        if (i > 0) {
            struct store_shard_info prev;
            store_shard_info(store_stream_shard(st, i - 1), &prev);
            /* contiguous: prev.end + 1 == start */
            struct store_hashkey x = prev.hash_end;
            for (int b = 15; b >= 0 && ++x.be[b] == 0; b--) {}
            cr_assert_eq(store_hashkey_cmp(&x, &info.hash_start), 0);
        }
    }
    cr_assert_null(store_stream_shard(st, 5));
    struct store_shard *sh;
    struct store_err err;
    cr_assert_eq(store_stream_shard_lookup(st, "shardId-000000000009", &sh, &err), STORE_ENOTFOUND);
    cr_assert_eq(store_stream_shard_lookup(st, "bogus", &sh, &err), STORE_EINVAL);
    env_close(&e);
}

Test(stream, tags_consumers_retention)
{
    struct env e;
    env_open(&e);
    struct store_stream *st = make_stream(e.s, "s", 1);
    struct store_err err;
    struct store_stream_info si;
    store_stream_info(st, &si);
    cr_assert_str_eq(si.arn, "arn:aws:kinesis:us-east-1:000000000000:stream/s");
    cr_assert_eq(si.retention_hours, 24);
    cr_assert_eq(si.status, STORE_STREAM_CREATING);
    cr_assert_str_eq(si.encryption_type, "NONE");

    /* tags: overwrite, order, limit of 50 is atomic */
    struct store_tag t[50];
    char keys[50][16];
    for (int i = 0; i < 50; i++) {
        snprintf(keys[i], sizeof keys[i], "k%02d", 49 - i);
        t[i].key = keys[i];
        t[i].value = "v";
    }
    cr_assert_eq(store_stream_tags_add(st, t, 49, &err), 0);
    struct store_tag extra[2] = {{"zz1", "a"}, {"zz2", "b"}};
    cr_assert_eq(store_stream_tags_add(st, extra, 2, &err), STORE_ELIMIT);
    cr_assert_eq(store_stream_tag_count(st), 49);
    struct store_tag over = {"k10", "new"};
    cr_assert_eq(store_stream_tags_add(st, &over, 1, &err), 0);
    cr_assert_eq(store_stream_tags_add(st, extra, 1, &err), 0);
    cr_assert_eq(store_stream_tag_count(st), 50);
    struct store_tag out[60];
    size_t n = store_stream_tags_list(st, NULL, out, 60);
    cr_assert_eq(n, 50);
    for (size_t i = 1; i < n; i++) cr_assert(strcmp(out[i - 1].key, out[i].key) < 0);
    n = store_stream_tags_list(st, "k10", out, 1);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(out[0].key, "k11");
    const char *rm[] = {"k10", "nope"};
    store_stream_tags_remove(st, rm, 2);
    cr_assert_eq(store_stream_tag_count(st), 49);

    /* consumers */
    struct store_consumer_info ci;
    cr_assert_eq(store_consumer_register(st, "c1", &ci, &err), 0);
    cr_assert_eq(ci.status, STORE_CONSUMER_CREATING);
    char want[256];
    snprintf(want, sizeof want, "%s/consumer/c1:%lld", si.arn, (long long)(ci.created_ms / 1000));
    cr_assert_str_eq(ci.arn, want);
    cr_assert_eq(store_consumer_register(st, "c1", &ci, &err), STORE_EEXISTS);
    cr_assert_eq(store_consumer_register(st, "bad name", &ci, &err), STORE_EINVAL);
    for (int i = 2; i <= 20; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "c%d", i);
        cr_assert_eq(store_consumer_register(st, nm, NULL, &err), 0);
    }
    cr_assert_eq(store_consumer_register(st, "c21", NULL, &err), STORE_ELIMIT);
    struct store_stream *found;
    cr_assert_eq(store_consumer_lookup_arn(e.s, want, &found, &ci, &err), 0);
    cr_assert_eq(found, st);
    cr_assert_eq(store_consumer_set_status(st, "c1", STORE_CONSUMER_ACTIVE, &err), 0);
    cr_assert_eq(store_consumer_lookup(st, "c1", &ci, &err), 0);
    cr_assert_eq(ci.status, STORE_CONSUMER_ACTIVE);
    cr_assert_eq(store_consumer_deregister(st, "c1", &err), 0);
    cr_assert_eq(store_consumer_deregister(st, "c1", &err), STORE_ENOTFOUND);
    struct store_consumer_info list[30];
    cr_assert_eq(store_consumer_list(st, 0, list, 30), 19);
    cr_assert_str_eq(list[0].name, "c2");

    /* retention */
    cr_assert_eq(store_stream_retention_increase(st, 23, &err), STORE_EINVAL);
    cr_assert_eq(store_stream_retention_increase(st, 8761, &err), STORE_EINVAL);
    cr_assert_eq(store_stream_retention_increase(st, 48, &err), 0);
    cr_assert_eq(store_stream_retention_increase(st, 24, &err), STORE_EINVAL);
    cr_assert_eq(store_stream_retention_decrease(st, 72, &err), STORE_EINVAL);
    cr_assert_eq(store_stream_retention_decrease(st, 24, &err), 0);
    cr_assert_eq(store_stream_retention_increase(st, 8760, &err), 0);
    store_stream_info(st, &si);
    cr_assert_eq(si.retention_hours, 8760);
    env_close(&e);
}
