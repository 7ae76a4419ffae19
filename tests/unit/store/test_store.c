/* test_store.c - store.c: open/close, the catalog and its manifest (persisted,
 * atomic across a crash between temp write and rename, corrupt manifest
 * refused), stream deletion, the directory lock, error codes. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "helpers.h"

static struct store_opts opts_never(void)
{
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    return o;
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    struct stat st;
    fstat(fd, &st);
    char *b = malloc((size_t)st.st_size + 1);
    cr_assert_eq(read(fd, b, (size_t)st.st_size), st.st_size);
    b[st.st_size] = 0;
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

Test(store, error_codes)
{
    int codes[] = {STORE_ENOTFOUND, STORE_EEXISTS, STORE_EINVAL, STORE_ELIMIT, STORE_ESTATE,
                   STORE_ECORRUPT, STORE_EIO, STORE_ENOSPC};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        cr_assert_lt(codes[i], -40000 + 1);
        cr_assert_gt(codes[i], -41000);
        cr_assert_str_neq(store_strerror(codes[i]), "unknown error");
        for (size_t j = 0; j < i; j++) cr_assert_neq(codes[i], codes[j]);
    }
    cr_assert_str_eq(store_strerror(12345), "unknown error");
}

Test(store, catalog_persists_across_reopen)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_never();
    o.region = "eu-west-1";
    o.account = "123456789012";
    struct store *s = open_store(dir, &o);
    const char *names[] = {"zeta", "alpha", "mid.dle", "Beta_1"};
    for (int i = 0; i < 4; i++) make_stream(s, names[i], (uint32_t)i + 1);
    struct store_err err;
    struct store_stream *st;
    cr_assert_eq(store_stream_create(s, "alpha", 1, &st, &err), STORE_EEXISTS);
    cr_assert_eq(store_stream_create(s, "bad/name", 1, &st, &err), STORE_EINVAL);
    cr_assert_eq(store_stream_create(s, "x", 0, &st, &err), STORE_EINVAL);
    st = get_stream(s, "alpha");
    store_stream_set_status(st, STORE_STREAM_ACTIVE);
    cr_assert_eq(store_stream_retention_increase(st, 100, NULL), 0);
    struct store_tag t[] = {{"team", "data"}, {"env", ""}};
    cr_assert_eq(store_stream_tags_add(st, t, 2, NULL), 0);
    struct store_consumer_info ci;
    cr_assert_eq(store_consumer_register(st, "reader", &ci, NULL), 0);
    char carn[256];
    snprintf(carn, sizeof carn, "%s", ci.arn);
    struct store_stream_info si;
    store_stream_info(st, &si);
    cr_assert_str_eq(si.arn, "arn:aws:kinesis:eu-west-1:123456789012:stream/alpha");
    int64_t created = si.created_ms;
    cr_assert_eq(catalog_settle(s), 0);
    store_close(s);

    s = open_store(dir, &o);
    cr_assert_eq(store_stream_count(s), 4);
    const char *list[10];
    size_t n = store_stream_list(s, NULL, list, 10);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(list[0], "Beta_1"); /* byte order: uppercase first */
    cr_assert_str_eq(list[1], "alpha");
    cr_assert_str_eq(list[2], "mid.dle");
    cr_assert_str_eq(list[3], "zeta");
    n = store_stream_list(s, "alpha", list, 1);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(list[0], "mid.dle");
    st = get_stream(s, "alpha");
    store_stream_info(st, &si);
    cr_assert_eq(si.status, STORE_STREAM_ACTIVE);
    cr_assert_eq(si.retention_hours, 100);
    cr_assert_eq(si.created_ms, created);
    cr_assert_eq(si.shard_count, 2);
    cr_assert_eq(si.open_shard_count, 2);
    cr_assert_eq(si.consumer_count, 1);
    struct store_tag out[4];
    cr_assert_eq(store_stream_tags_list(st, NULL, out, 4), 2);
    cr_assert_str_eq(out[0].key, "env");
    cr_assert_str_eq(out[0].value, "");
    cr_assert_str_eq(out[1].value, "data");
    struct store_stream *found;
    cr_assert_eq(store_consumer_lookup_arn(s, carn, &found, &ci, NULL), 0);
    cr_assert_eq(found, st);
    cr_assert_eq(store_stream_lookup_arn(s, si.arn, &found, NULL), 0);
    cr_assert_eq(found, st);
    /* shard ranges survive */
    struct store_shard_info a, b;
    store_shard_info(store_stream_shard(get_stream(s, "Beta_1"), 3), &a);
    struct store_hashkey x, y;
    store_hashkey_even_split(4, 3, &x, &y);
    cr_assert_eq(store_hashkey_cmp(&a.hash_start, &x), 0);
    cr_assert_eq(store_hashkey_cmp(&a.hash_end, &y), 0);
    (void)b;
    store_close(s);
    rm_rf(dir);
    free(dir);
}

Test(store, manifest_crash_between_temp_write_and_rename)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    make_stream(s, "old", 1);
    store_close(s);
    char mpath[512], tpath[512];
    snprintf(mpath, sizeof mpath, "%s/MANIFEST", dir);
    snprintf(tpath, sizeof tpath, "%s/MANIFEST.tmp", dir);
    size_t oldlen;
    char *old = read_file(mpath, &oldlen);

    /* A complete new manifest was written to the temp file, then the crash:
     * MANIFEST still holds the old catalog. Build the "new" one for real. */
    s = open_store(dir, &o);
    make_stream(s, "new", 1);
    store_close(s);
    size_t newlen;
    char *neu = read_file(mpath, &newlen);
    write_file(mpath, old, oldlen);
    write_file(tpath, neu, newlen);

    struct logcap lc = {0};
    o.log = cap_log;
    o.log_arg = &lc;
    s = open_store(dir, &o);
    struct store_stream *st;
    cr_assert_eq(store_stream_lookup(s, "old", &st, NULL), 0);
    cr_assert_eq(store_stream_lookup(s, "new", &st, NULL), STORE_ENOTFOUND);
    cr_assert_eq(access(tpath, F_OK), -1, "temp manifest removed");
    cr_assert_geq(lc.warn, 1);
    store_close(s);

    /* a torn temp file (half written) is just as harmless */
    write_file(tpath, neu, newlen / 2);
    s = open_store(dir, &o);
    cr_assert_eq(store_stream_count(s), 1);
    store_close(s);

    /* the generation still moved on: numbers never repeat */
    s = open_store(dir, &o);
    struct done_ctr d = {0};
    struct store_seq q1 = append_one(store_stream_shard(get_stream(s, "old"), 0), 1, &d);
    store_close(s);
    s = open_store(dir, &o);
    struct store_seq q2 = append_one(store_stream_shard(get_stream(s, "old"), 0), 2, &d);
    cr_assert_gt(store_seq_cmp(q2, q1), 0);
    store_close(s);
    free(old);
    free(neu);
    rm_rf(dir);
    free(dir);
}

Test(store, corrupt_manifest_refused)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    make_stream(s, "a", 1);
    store_close(s);
    char mpath[512];
    snprintf(mpath, sizeof mpath, "%s/MANIFEST", dir);
    write_file(mpath, "{\"version\":1,", 13);
    struct store_err err;
    cr_assert_eq(store_open(dir, &o, &s, &err), STORE_ECORRUPT);
    cr_assert(strstr(err.msg, "MANIFEST") != NULL, "%s", err.msg);
    const char *v2 = "{\"version\":2,\"generation\":1,\"next_uid\":0,\"streams\":[]}";
    write_file(mpath, v2, strlen(v2));
    cr_assert_eq(store_open(dir, &o, &s, &err), STORE_ECORRUPT);
    rm_rf(dir);
    free(dir);
}

Test(store, manifest_write_failure_is_reported_and_retried)
{
    char *dir = tmpdir_new();
    struct faults f = {0};
    struct store_io_ops io = {fault_write, fault_fsync, &f};
    struct store_opts o = opts_never();
    o.io = &io;
    struct logcap lc = {0};
    o.log = cap_log;
    o.log_arg = &lc;
    struct store *s = open_store(dir, &o);
    __atomic_store_n(&f.fsync_fail_errno, EIO, __ATOMIC_RELEASE);
    __atomic_store_n(&f.fsync_fail_count, 1, __ATOMIC_RELEASE);
    make_stream(s, "a", 1);
    cr_assert_eq(catalog_settle(s), STORE_EIO);
    cr_assert_geq(lc.error, 1);
    cr_assert_eq(catalog_settle(s), 0, "the next commit writes it again");
    store_close(s);
    s = open_store(dir, &o);
    cr_assert_eq(store_stream_count(s), 1);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

Test(store, second_open_is_locked_out)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o), *s2 = NULL;
    struct store_err err;
    cr_assert_neq(store_open(dir, &o, &s2, &err), 0);
    cr_assert_null(s2);
    store_close(s);
    s = open_store(dir, &o);
    store_close(s);
    struct store_opts bad = opts_never();
    bad.account = "12";
    cr_assert_eq(store_open(dir, &bad, &s2, &err), STORE_EINVAL);
    rm_rf(dir);
    free(dir);
}

static int seg_count(const char *dir)
{
    char sd[512];
    snprintf(sd, sizeof sd, "%s/segments", dir);
    DIR *d = opendir(sd);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) n += strstr(de->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

Test(store, delete_stream)
{
    char *dir = tmpdir_new();
    struct store_opts o;
    store_opts_init(&o); /* always: a pending ack when the stream goes */
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "gone", 2);
    struct done_ctr d = {0}, late = {0};
    append_batch(store_stream_shard(st, 0), 0, 5, &d);
    append_batch(store_stream_shard(st, 1), 0, 5, &d);
    pump_until(s, &d, 2);
    cr_assert_eq(seg_count(dir), 2);
    append_batch(store_stream_shard(st, 0), 5, 5, &late);
    store_commit(s); /* written, fsync in flight */
    struct store_err err;
    cr_assert_eq(store_stream_delete(s, "gone", &err), 0);
    cr_assert_eq(late.ok + late.failed, 0, "no callback inside a catalog call");
    pump_until(s, &late, 1);
    cr_assert_eq(late.failed, 1);
    cr_assert_eq(late.last_code, STORE_ENOTFOUND);
    cr_assert_eq(seg_count(dir), 0);
    cr_assert_eq(store_stream_delete(s, "gone", &err), STORE_ENOTFOUND);
    /* the name can be reused; the old data does not come back */
    st = make_stream(s, "gone", 1);
    cr_assert_eq(read_all_check(store_stream_shard(st, 0), 0, 100), 0);
    store_close(s);
    s = open_store(dir, &o);
    cr_assert_eq(read_all_check(store_stream_shard(get_stream(s, "gone"), 0), 0, 100), 0);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

Test(store, orphan_segments_removed_at_open)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "a", 1);
    struct done_ctr d = {0};
    append_batch(store_stream_shard(st, 0), 0, 3, &d);
    store_close(s);
    char p[512];
    snprintf(p, sizeof p, "%s/segments/s0000000099-0000000000-0000000001-00000000000000000000.seg", dir);
    write_file(p, "junk", 4);
    s = open_store(dir, &o);
    cr_assert_eq(access(p, F_OK), -1);
    cr_assert_eq(read_all_check(store_stream_shard(get_stream(s, "a"), 0), 0, 100), 3);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* Two catalog changes in flight: the first manifest is durable while the
 * second is not yet posted. Only the lower waiter may fire, exactly once, and
 * the others must survive intact (the partition once overran its buffer and
 * lost the lower waiter). */
Test(store, catalog_waiters_at_two_versions)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    struct done_ctr low = {0}, high[4] = {{0}};
    make_stream(s, "first", 1);
    store_catalog_sync(s, on_catalog, &low);
    store_commit(s); /* posts the manifest for "first" only */
    make_stream(s, "second", 1);
    for (int i = 0; i < 4; i++)
        store_catalog_sync(s, on_catalog, &high[i]);
    /* Dispatch without committing, so the second manifest is not posted. */
    for (int i = 0; i < 10000 && low.ok + low.failed == 0; i++) {
        struct pollfd p = {store_notify_fd(s), POLLIN, 0};
        poll(&p, 1, 1);
        store_dispatch(s);
    }
    cr_assert_eq(low.ok, 1, "the durable waiter fires once");
    for (int i = 0; i < 4; i++)
        cr_assert_eq(high[i].ok + high[i].failed, 0, "waiter %d fired early", i);
    cr_assert_eq(catalog_settle(s), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(high[i].ok, 1, "waiter %d fires once after its manifest", i);
    cr_assert_eq(low.ok, 1);
    store_close(s);
    rm_rf(dir);
    free(dir);
}
