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

static void crash_image(const char *src, const char *dst);

Test(store, manifest_crash_between_temp_write_and_rename)
{
    char *dir = tmpdir_new(), img[600];
    snprintf(img, sizeof img, "%s.img", dir);
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    make_stream(s, "old", 1);
    cr_assert_eq(catalog_settle(s), 0);
    crash_image(dir, img); /* the state before the compaction below */
    make_stream(s, "new", 1);
    store_close(s);
    /* Reopening compacts: MANIFEST now holds both streams. */
    s = open_store(dir, &o);
    store_close(s);
    char mpath[700], tpath[700];
    snprintf(mpath, sizeof mpath, "%s/MANIFEST", dir);
    snprintf(tpath, sizeof tpath, "%s/MANIFEST.tmp", img);
    size_t newlen;
    char *neu = read_file(mpath, &newlen);

    /* A complete new snapshot was written to the temp file, then the crash:
     * MANIFEST still names the old snapshot and its log. */
    write_file(tpath, neu, newlen);
    struct logcap lc = {0};
    o.log = cap_log;
    o.log_arg = &lc;
    s = open_store(img, &o);
    struct store_stream *st;
    cr_assert_eq(store_stream_lookup(s, "old", &st, NULL), 0);
    cr_assert_eq(store_stream_lookup(s, "new", &st, NULL), STORE_ENOTFOUND);
    cr_assert_eq(access(tpath, F_OK), -1, "temp manifest removed");
    cr_assert_geq(lc.warn, 1);
    store_close(s);

    /* a torn temp file (half written) is just as harmless */
    write_file(tpath, neu, newlen / 2);
    s = open_store(img, &o);
    cr_assert_eq(store_stream_count(s), 1);
    store_close(s);

    /* the generation still moved on: numbers never repeat */
    s = open_store(img, &o);
    struct done_ctr d = {0};
    struct store_seq q1 = append_one(store_stream_shard(get_stream(s, "old"), 0), 1, &d);
    store_close(s);
    s = open_store(img, &o);
    struct store_seq q2 = append_one(store_stream_shard(get_stream(s, "old"), 0), 2, &d);
    cr_assert_gt(store_seq_cmp(q2, q1), 0);
    store_close(s);
    free(neu);
    rm_rf(img);
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

/* A failed catalog write is reported to the waiter and undone: the stream
 * does not exist, not now and not after a reopen; the next change works. */
Test(store, catalog_write_failure_is_reported_and_undone)
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
    struct store_stream *st;
    cr_assert_eq(store_stream_create(s, "a", 1, &st, NULL), 0);
    cr_assert_eq(catalog_settle(s), STORE_EIO);
    cr_assert_geq(lc.error, 1);
    cr_assert_eq(store_stream_lookup(s, "a", &st, NULL), STORE_ENOTFOUND, "creation undone");
    cr_assert_eq(catalog_settle(s), 0, "nothing left pending");
    make_stream(s, "b", 1);
    cr_assert_eq(catalog_settle(s), 0, "the catalog accepts changes again");
    store_close(s);
    s = open_store(dir, &o);
    cr_assert_eq(store_stream_count(s), 1);
    cr_assert_eq(store_stream_lookup(s, "a", &st, NULL), STORE_ENOTFOUND);
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

/* A segment of a stream the catalog does not know (its creation or deletion
 * lost) may hold acknowledged records: it is moved to quarantine/<time>/,
 * byte for byte, and logged at WARN - never deleted. */
Test(store, orphan_segments_quarantined_at_open)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "a", 1);
    struct done_ctr d = {0};
    append_batch(store_stream_shard(st, 0), 0, 3, &d);
    store_close(s);
    char p[512];
    const char *name = "s0000000099-0000000000-0000000001-00000000000000000000.seg";
    snprintf(p, sizeof p, "%s/segments/%s", dir, name);
    write_file(p, "junk", 4);
    struct logcap lc = {0};
    o.log = cap_log;
    o.log_arg = &lc;
    s = open_store(dir, &o);
    cr_assert_eq(access(p, F_OK), -1, "gone from segments/");
    cr_assert_geq(lc.warn, 1);
    cr_assert(strstr(lc.last, name) != NULL || lc.warn >= 1, "%s", lc.last);
    char q[512];
    snprintf(q, sizeof q, "%s/quarantine", dir);
    DIR *qd = opendir(q);
    cr_assert_not_null(qd, "quarantine directory created");
    struct dirent *de;
    int moved = 0;
    while ((de = readdir(qd))) {
        if (de->d_name[0] == '.')
            continue;
        char f[1024];
        snprintf(f, sizeof f, "%s/%s/%s", q, de->d_name, name);
        if (access(f, F_OK) == 0) {
            size_t len;
            char *b = read_file(f, &len);
            cr_assert_eq(len, 4);
            cr_assert(memcmp(b, "junk", 4) == 0);
            free(b);
            moved++;
        }
    }
    closedir(qd);
    cr_assert_eq(moved, 1, "the segment is in quarantine/<time>/");
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
    struct store_stream *st;
    cr_assert_eq(store_stream_create(s, "first", 1, &st, NULL), 0);
    store_catalog_sync(s, on_catalog, &low);
    store_commit(s); /* posts the manifest for "first" only */
    cr_assert_eq(store_stream_create(s, "second", 1, &st, NULL), 0);
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

/* ---- the catalog log (catalog.c) ---------------------------------------------------- */

/* Copies the store directory as it is on disk right now (files and
 * segments/): what a crash at this instant would leave behind. */
static void crash_image(const char *src, const char *dst)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp -a '%s'/. '%s'/ && rm -f '%s'/LOCK",
             dst, dst, src, dst, dst);
    cr_assert_eq(system(cmd), 0);
}

/* The name of the current catalog log in "dir" (exactly one after open). */
static void current_log(const char *dir, char *out, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, "CATALOG-", 8) == 0) {
            snprintf(out, n, "%s/%s", dir, de->d_name);
            found++;
        }
    closedir(d);
    cr_assert_eq(found, 1, "one catalog log");
}

static off_t file_size(const char *path)
{
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    return sb.st_size;
}

/* A consumer's tags (TagResource on a consumer ARN) and resource policies:
 * limits, then log replay after a crash and the snapshot of the clean close. */
Test(store, consumer_tags_and_policies_survive_log_and_snapshot)
{
    char *dir = tmpdir_new(), img[600];
    snprintf(img, sizeof img, "%s.img", dir);
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "ct", 1);
    cr_assert_eq(store_consumer_register(st, "c1", NULL, NULL), 0);
    cr_assert_eq(store_consumer_register(st, "c2", NULL, NULL), 0);
    struct store_tag t[] = {{"team", "data"}, {"env", "dev"}, {"tmp", "x"}};
    struct store_err e;
    cr_assert_eq(store_consumer_tags_add(st, "nobody", t, 1, &e), STORE_ENOTFOUND);
    cr_assert_eq(store_consumer_tags_add(st, "c1", t, 3, NULL), 0);
    const char *rm[] = {"tmp", "absent"};
    cr_assert_eq(store_consumer_tags_remove(st, "c1", rm, 2, NULL), 0);
    struct store_tag many[STORE_MAX_TAGS];
    char keys[STORE_MAX_TAGS][8];
    for (int i = 0; i < STORE_MAX_TAGS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%02d", i);
        many[i] = (struct store_tag){keys[i], ""};
    }
    cr_assert_eq(store_consumer_tags_add(st, "c1", many, STORE_MAX_TAGS, &e), STORE_ELIMIT,
                 "2 + 50 tags are over the limit");
    cr_assert_eq(store_resource_policy_set(st, NULL, "{\"s\":1}", NULL), 0);
    cr_assert_eq(store_resource_policy_set(st, "c2", "{\"c\":2}", NULL), 0);
    cr_assert_eq(store_resource_policy_set(st, "c1", "{\"gone\":1}", NULL), 0);
    cr_assert_eq(store_resource_policy_set(st, "c1", NULL, NULL), 0);
    cr_assert_eq(store_resource_policy_set(st, "nobody", "{}", &e), STORE_ENOTFOUND);
    cr_assert_eq(store_resource_policy_set(st, NULL, "", &e), STORE_EINVAL);
    cr_assert_eq(catalog_settle(s), 0);
    crash_image(dir, img);
    store_close(s);
    /* Pass 0 replays the log; its close compacts, so pass 1 reads a snapshot. */
    for (int pass = 0; pass < 2; pass++) {
        s = open_store(img, &o);
        st = get_stream(s, "ct");
        struct store_tag out[4];
        size_t n = 99;
        cr_assert_eq(store_consumer_tags_list(st, "c1", NULL, out, 4, &n, NULL), 0);
        cr_assert_eq(n, 2, "pass %d", pass);
        cr_assert_str_eq(out[0].key, "env");
        cr_assert_str_eq(out[0].value, "dev");
        cr_assert_str_eq(out[1].key, "team");
        cr_assert_eq(store_consumer_tags_list(st, "c2", NULL, out, 4, &n, NULL), 0);
        cr_assert_eq(n, 0);
        cr_assert_str_eq(store_resource_policy_get(st, NULL), "{\"s\":1}", "pass %d", pass);
        cr_assert_str_eq(store_resource_policy_get(st, "c2"), "{\"c\":2}", "pass %d", pass);
        cr_assert_null(store_resource_policy_get(st, "c1"), "pass %d", pass);
        store_close(s);
    }
    rm_rf(img);
    rm_rf(dir);
    free(dir);
}

/* Enhanced monitoring's metric set and the KMS key id: through log replay
 * after a crash, then through the snapshot the clean close writes. */
Test(store, shard_metrics_and_kms_key_survive_log_and_snapshot)
{
    char *dir = tmpdir_new(), img[600];
    snprintf(img, sizeof img, "%s.img", dir);
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "mon", 1);
    struct store_stream_info si;
    store_stream_info(st, &si);
    cr_assert_eq(si.shard_metrics, 0, "none by default");
    store_stream_set_shard_metrics(st, 0x15);
    store_stream_set_shard_metrics(st, 0x1f05); /* bits past ALL are dropped */
    store_stream_info(st, &si);
    cr_assert_eq(si.shard_metrics, 0x05);
    cr_assert_str_eq(si.encryption_type, "NONE");
    cr_assert_null(si.kms_key_id);
    struct store_err e;
    cr_assert_eq(store_stream_set_kms_key(st, "", &e), STORE_EINVAL);
    cr_assert_eq(store_stream_set_kms_key(st, "alias/first", NULL), 0);
    cr_assert_eq(store_stream_set_kms_key(st, "alias/aws/kinesis", NULL), 0);
    store_stream_info(st, &si);
    cr_assert_str_eq(si.encryption_type, "KMS");
    struct store_stream *plain = make_stream(s, "plain", 1);
    cr_assert_eq(store_stream_set_kms_key(plain, "k", NULL), 0);
    cr_assert_eq(store_stream_set_kms_key(plain, NULL, NULL), 0);
    cr_assert_eq(catalog_settle(s), 0);
    crash_image(dir, img);
    store_close(s);

    /* Pass 0 replays the log; its close compacts, so pass 1 reads a snapshot. */
    for (int pass = 0; pass < 2; pass++) {
        s = open_store(img, &o);
        store_stream_info(get_stream(s, "mon"), &si);
        cr_assert_eq(si.shard_metrics, 0x05, "pass %d", pass);
        cr_assert_str_eq(si.encryption_type, "KMS", "pass %d", pass);
        cr_assert_str_eq(si.kms_key_id, "alias/aws/kinesis", "pass %d", pass);
        store_stream_info(get_stream(s, "plain"), &si);
        cr_assert_str_eq(si.encryption_type, "NONE", "pass %d", pass);
        cr_assert_null(si.kms_key_id);
        store_close(s);
    }
    rm_rf(img);
    rm_rf(dir);
    free(dir);
}

/* Every kind of change survives a crash through log replay alone (no
 * snapshot after them), in order: a deregistered consumer stays gone. */
Test(store, catalog_log_replayed_after_crash)
{
    char *dir = tmpdir_new(), img[600];
    snprintf(img, sizeof img, "%s.img", dir);
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "logged", 3);
    make_stream(s, "dropped", 1);
    store_stream_set_status(st, STORE_STREAM_ACTIVE);
    store_stream_set_on_demand(st, 1);
    cr_assert_eq(store_stream_retention_increase(st, 48, NULL), 0);
    struct store_tag t[] = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
    cr_assert_eq(store_stream_tags_add(st, t, 3, NULL), 0);
    const char *rm[] = {"b"};
    store_stream_tags_remove(st, rm, 1);
    for (int i = 0; i < 4; i++) {
        char n[16];
        snprintf(n, sizeof n, "c%d", i);
        cr_assert_eq(store_consumer_register(st, n, NULL, NULL), 0);
    }
    cr_assert_eq(store_consumer_deregister(st, "c1", NULL), 0);
    cr_assert_eq(store_consumer_set_status(st, "c2", STORE_CONSUMER_ACTIVE, NULL), 0);
    cr_assert_eq(store_stream_delete(s, "dropped", NULL), 0);
    cr_assert_eq(catalog_settle(s), 0);
    char log[700];
    current_log(dir, log, sizeof log);
    cr_assert_gt(file_size(log), 16, "the changes are in the log, not a snapshot");
    crash_image(dir, img);
    store_close(s);

    struct logcap lc = {0};
    o.log = cap_log;
    o.log_arg = &lc;
    s = open_store(img, &o);
    cr_assert_eq(store_stream_count(s), 1);
    st = get_stream(s, "logged");
    struct store_stream_info si;
    store_stream_info(st, &si);
    cr_assert_eq(si.status, STORE_STREAM_ACTIVE);
    cr_assert_eq(si.on_demand, 1);
    cr_assert_eq(si.retention_hours, 48);
    cr_assert_eq(si.shard_count, 3);
    cr_assert_eq(si.consumer_count, 3);
    cr_assert_eq(si.consumers_creating, 2);
    struct store_tag out[4];
    cr_assert_eq(store_stream_tags_list(st, NULL, out, 4), 2);
    cr_assert_str_eq(out[0].key, "a");
    cr_assert_str_eq(out[1].key, "c");
    struct store_consumer_info ci[4];
    cr_assert_eq(store_consumer_list(st, 0, ci, 4), 3);
    cr_assert_str_eq(ci[0].name, "c0");
    cr_assert_str_eq(ci[1].name, "c2");
    cr_assert_eq(ci[1].status, STORE_CONSUMER_ACTIVE);
    cr_assert_str_eq(ci[2].name, "c3");
    struct store_shard_info a;
    struct store_hashkey x, y;
    store_shard_info(store_stream_shard(st, 2), &a);
    store_hashkey_even_split(3, 2, &x, &y);
    cr_assert_eq(store_hashkey_cmp(&a.hash_start, &x), 0);
    cr_assert_eq(store_hashkey_cmp(&a.hash_end, &y), 0);
    store_close(s);
    rm_rf(img);
    rm_rf(dir);
    free(dir);
}

/* A crash in the middle of appending a record (after write, before the
 * fsync completed): the torn record is ignored, the change is absent and
 * everything before it is there. A bad record with more after it is
 * corruption, and the store refuses to open. */
Test(store, catalog_torn_append_and_corruption)
{
    char *dir = tmpdir_new(), img[600];
    snprintf(img, sizeof img, "%s.img", dir);
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    make_stream(s, "first", 1);
    cr_assert_eq(catalog_settle(s), 0);
    char log[700];
    current_log(dir, log, sizeof log);
    off_t one = file_size(log);
    make_stream(s, "second", 1);
    cr_assert_eq(catalog_settle(s), 0);
    off_t two = file_size(log);
    make_stream(s, "third", 1);
    cr_assert_eq(catalog_settle(s), 0);
    off_t three = file_size(log);
    cr_assert(one < two && two < three);
    crash_image(dir, img);
    char img3[800];
    snprintf(img3, sizeof img3, "%s.3", img);
    crash_image(dir, img3);
    store_close(s);

    /* torn: "third" only partly written */
    char ilog[900];
    snprintf(ilog, sizeof ilog, "%s/%s", img, strrchr(log, '/') + 1);
    cr_assert_eq(truncate(ilog, three - 5), 0);
    char img2[800];
    snprintf(img2, sizeof img2, "%s.2", img);
    crash_image(img, img2);
    struct logcap lc = {0};
    o.log = cap_log;
    o.log_arg = &lc;
    s = open_store(img, &o);
    struct store_stream *st;
    cr_assert_eq(store_stream_count(s), 2);
    cr_assert_eq(store_stream_lookup(s, "second", &st, NULL), 0);
    cr_assert_eq(store_stream_lookup(s, "third", &st, NULL), STORE_ENOTFOUND);
    cr_assert_geq(lc.warn, 1, "the torn record is logged");
    store_close(s);

    /* zeros where the last record should be (a size-extending crash) */
    snprintf(ilog, sizeof ilog, "%s/%s", img2, strrchr(log, '/') + 1);
    cr_assert_eq(truncate(ilog, two), 0);
    cr_assert_eq(truncate(ilog, three), 0);
    s = open_store(img2, &o);
    cr_assert_eq(store_stream_count(s), 2);
    store_close(s);

    /* a flipped byte inside "second" with "third" after it: corruption */
    snprintf(ilog, sizeof ilog, "%s/%s", img3, strrchr(log, '/') + 1);
    size_t len;
    char *b = read_file(ilog, &len);
    cr_assert_eq((off_t)len, three);
    b[one + 12] ^= 0x20;
    write_file(ilog, b, len);
    free(b);
    struct store_err err;
    cr_assert_eq(store_open(img3, &o, &s, &err), STORE_ECORRUPT);
    cr_assert(strstr(err.msg, "corrupt") != NULL, "%s", err.msg);
    rm_rf(img3);
    rm_rf(img2);
    rm_rf(img);
    rm_rf(dir);
    free(dir);
}

static void on_synced_image(void *arg, const struct store_err *err);

struct image_ctx {
    const char *dir, *img;
    struct done_ctr d;
};

/* Taken at the instant of the acknowledgement. */
static void on_ack_image(void *arg, const struct store_err *err)
{
    struct image_ctx *c = arg;
    on_done(&c->d, err);
    if (!err)
        crash_image(c->dir, c->img);
}

static void on_synced_image(void *arg, const struct store_err *err)
{
    on_done(arg, err);
}

/* A record appended to a stream created in the same turn is acknowledged
 * only once the stream is in the catalog on disk: a crash at the moment of
 * the acknowledgement keeps both (before, mode never acknowledged at write
 * time and the manifest followed later, so the record's segment was an
 * orphan at the next open and deleted). Same in mode always, where the
 * syncer used to fsync data before the manifest of the same pass. */
Test(store, ack_only_after_stream_is_in_catalog)
{
    enum store_durability modes[] = {STORE_DURABILITY_NEVER, STORE_DURABILITY_ALWAYS};
    for (int m = 0; m < 2; m++) {
        char *dir = tmpdir_new(), img[600];
        snprintf(img, sizeof img, "%s.img", dir);
        struct store_opts o;
        store_opts_init(&o);
        o.durability = modes[m];
        struct store *s = open_store(dir, &o);
        struct store_stream *st;
        cr_assert_eq(store_stream_create(s, "fresh", 1, &st, NULL), 0);
        struct image_ctx c = {dir, img, {0}};
        uint8_t data[8] = "payload";
        struct store_record_in r = {{(const uint8_t *)"pk", 2}, NULL, {data, 7}};
        cr_assert_eq(store_shard_append(store_stream_shard(st, 0), &r, 1, NULL, on_ack_image, &c,
                                        NULL), 0);
        store_commit(s);
        if (m == 0) {
            cr_assert_eq(c.d.ok, 0, "mode never: held back until the catalog is durable");
            struct store_pos pos;
            const struct store_record *recs;
            size_t n;
            struct store_cursor *cur = store_cursor_new();
            cr_assert_eq(store_shard_position(store_stream_shard(st, 0), STORE_POS_TRIM_HORIZON,
                                              NULL, 0, &pos, NULL), 0);
            cr_assert_eq(store_shard_read(store_stream_shard(st, 0), cur, &pos, 10, SIZE_MAX, &recs,
                                          &n, &pos, NULL, NULL), 0);
            cr_assert_eq(n, 0, "and not readable either");
            store_cursor_free(cur);
        }
        pump_until(s, &c.d, 1);
        cr_assert_eq(c.d.ok, 1);
        store_close(s);
        struct done_ctr unused = {0};
        (void)unused;
        (void)on_synced_image;
        s = open_store(img, &o);
        struct store_stream *st2;
        cr_assert_eq(store_stream_lookup(s, "fresh", &st2, NULL), 0, "mode %d", m);
        store_close(s);
        rm_rf(img);
        rm_rf(dir);
        free(dir);
    }
}

/* A catalog write that fails undoes every change not yet durable: a created
 * stream disappears (its pending append fails with ENOTFOUND, nothing of it
 * is readable), a deleted stream comes back with its data, tags, retention,
 * status and consumers return to their values. And the undo is what a
 * reopen sees. */
Test(store, catalog_failure_rolls_back)
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
    struct store_stream *keep = make_stream(s, "keep", 1);
    struct store_tag t1 = {"k", "v1"};
    cr_assert_eq(store_stream_tags_add(keep, &t1, 1, NULL), 0);
    cr_assert_eq(store_consumer_register(keep, "c0", NULL, NULL), 0);
    cr_assert_eq(store_consumer_register(keep, "c1", NULL, NULL), 0);
    struct store_tag ct = {"owner", "ops"};
    cr_assert_eq(store_consumer_tags_add(keep, "c0", &ct, 1, NULL), 0);
    struct done_ctr d = {0};
    append_batch(store_stream_shard(keep, 0), 0, 3, &d);
    pump_until(s, &d, 1);
    cr_assert_eq(catalog_settle(s), 0);
    cr_assert_eq(d.ok, 1);

    __atomic_store_n(&f.fsync_fail_errno, EIO, __ATOMIC_RELEASE);
    __atomic_store_n(&f.fsync_fail_count, 1, __ATOMIC_RELEASE);
    struct store_stream *fresh;
    cr_assert_eq(store_stream_create(s, "fresh", 1, &fresh, NULL), 0);
    struct done_ctr late = {0};
    append_batch(store_stream_shard(fresh, 0), 0, 2, &late);
    struct store_tag t2[] = {{"k", "v2"}, {"new", "x"}};
    cr_assert_eq(store_stream_tags_add(keep, t2, 2, NULL), 0);
    cr_assert_eq(store_stream_retention_increase(keep, 72, NULL), 0);
    store_stream_set_shard_metrics(keep, 0x3);
    cr_assert_eq(store_stream_set_kms_key(keep, "alias/undone", NULL), 0);
    cr_assert_eq(store_resource_policy_set(keep, NULL, "{}", NULL), 0);
    cr_assert_eq(store_resource_policy_set(keep, "c1", "{}", NULL), 0);
    struct store_tag ct2 = {"undone", "1"};
    cr_assert_eq(store_consumer_tags_add(keep, "c1", &ct2, 1, NULL), 0);
    store_stream_set_status(keep, STORE_STREAM_ACTIVE);
    cr_assert_eq(store_consumer_deregister(keep, "c0", NULL), 0);
    cr_assert_eq(store_consumer_set_status(keep, "c1", STORE_CONSUMER_ACTIVE, NULL), 0);
    cr_assert_eq(store_consumer_register(keep, "c2", NULL, NULL), 0);
    cr_assert_eq(store_stream_delete(s, "keep", NULL), 0);
    cr_assert_eq(catalog_settle(s), STORE_EIO);
    cr_assert_geq(lc.error, 1);
    pump_until(s, &late, 1);
    cr_assert_eq(late.failed, 1);
    cr_assert_eq(late.last_code, STORE_ENOTFOUND);

    for (int pass = 0; pass < 2; pass++) {
        struct store_stream *st;
        cr_assert_eq(store_stream_lookup(s, "fresh", &st, NULL), STORE_ENOTFOUND, "pass %d", pass);
        keep = get_stream(s, "keep");
        struct store_stream_info si;
        store_stream_info(keep, &si);
        cr_assert_eq(si.status, STORE_STREAM_CREATING);
        cr_assert_eq(si.retention_hours, 24);
        cr_assert_eq(si.shard_metrics, 0, "pass %d: the metric set is undone", pass);
        cr_assert_null(si.kms_key_id, "pass %d: the key is undone", pass);
        struct store_tag cto[2];
        size_t ctn = 99;
        cr_assert_eq(store_consumer_tags_list(keep, "c1", NULL, cto, 2, &ctn, NULL), 0);
        cr_assert_eq(ctn, 0, "pass %d: c1's tag is undone", pass);
        cr_assert_null(store_resource_policy_get(keep, NULL), "pass %d", pass);
        cr_assert_null(store_resource_policy_get(keep, "c1"), "pass %d", pass);
        cr_assert_eq(store_consumer_tags_list(keep, "c0", NULL, cto, 2, &ctn, NULL), 0,
                     "pass %d: c0's deregistration is undone", pass);
        cr_assert_eq(ctn, 1, "pass %d: c0 is back with its tag", pass);
        cr_assert_str_eq(cto[0].key, "owner");
        cr_assert_eq(si.consumer_count, 2);
        cr_assert_eq(si.consumers_creating, 2);
        struct store_consumer_info ci[3];
        cr_assert_eq(store_consumer_list(keep, 0, ci, 3), 2);
        cr_assert_str_eq(ci[0].name, "c0");
        cr_assert_str_eq(ci[1].name, "c1");
        cr_assert_eq(store_consumer_lookup(keep, "c2", &ci[2], NULL), STORE_ENOTFOUND);
        cr_assert_eq(store_consumer_lookup(keep, "c0", &ci[2], NULL), 0);
        struct store_tag out[3];
        cr_assert_eq(store_stream_tags_list(keep, NULL, out, 3), 1);
        cr_assert_str_eq(out[0].value, "v1");
        cr_assert_eq(read_all_check(store_stream_shard(keep, 0), 0, 100), 3);
        /* the catalog works again, and the log holds exactly the undone state */
        if (pass == 0) {
            cr_assert_eq(catalog_settle(s), 0);
            store_close(s);
            s = open_store(dir, &o);
        }
    }
    make_stream(s, "after", 1);
    cr_assert_eq(catalog_settle(s), 0);
    store_close(s);
    s = open_store(dir, &o);
    cr_assert_eq(store_stream_count(s), 2);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* The log is compacted into a snapshot on the syncer thread once it outgrows
 * catalog_compact_bytes; a crash image taken afterwards (snapshot + newer
 * log) has every change, and the old log is gone. */
Test(store, catalog_compaction)
{
    char *dir = tmpdir_new(), img[600];
    snprintf(img, sizeof img, "%s.img", dir);
    struct store_opts o = opts_never();
    o.catalog_compact_bytes = 2048;
    o.max_consumers = 1000;
    struct store *s = open_store(dir, &o);
    char log0[700], log1[700];
    current_log(dir, log0, sizeof log0);
    struct store_stream *st = make_stream(s, "many", 2);
    for (int i = 0; i < 300; i++) {
        char n[16];
        snprintf(n, sizeof n, "c%03d", i);
        cr_assert_eq(store_consumer_register(st, n, NULL, NULL), 0);
        if (i % 3 == 0) store_commit(s);
        if (i % 7 == 0)
            cr_assert_eq(store_consumer_set_status(st, n, STORE_CONSUMER_ACTIVE, NULL), 0);
    }
    cr_assert_eq(store_consumer_deregister(st, "c005", NULL), 0);
    cr_assert_eq(catalog_settle(s), 0);
    current_log(dir, log1, sizeof log1);
    cr_assert_str_neq(log0, log1, "compacted at least once");
    cr_assert_eq(access(log0, F_OK), -1);
    size_t mlen;
    char mp[700];
    snprintf(mp, sizeof mp, "%s/MANIFEST", dir);
    char *m = read_file(mp, &mlen);
    cr_assert(strstr(m, "\"c100\"") != NULL, "the snapshot holds consumers");
    free(m);
    crash_image(dir, img);
    store_close(s);
    s = open_store(img, &o);
    st = get_stream(s, "many");
    struct store_stream_info si;
    store_stream_info(st, &si);
    cr_assert_eq(si.consumer_count, 299);
    struct store_consumer_info ci;
    cr_assert_eq(store_consumer_lookup(st, "c005", &ci, NULL), STORE_ENOTFOUND);
    cr_assert_eq(store_consumer_lookup(st, "c007", &ci, NULL), 0);
    cr_assert_eq(ci.status, STORE_CONSUMER_ACTIVE);
    cr_assert_eq(store_consumer_lookup(st, "c299", &ci, NULL), 0);
    cr_assert_eq(ci.status, STORE_CONSUMER_CREATING);
    struct store_consumer_info list[2];
    cr_assert_eq(store_consumer_list(st, 5, list, 2), 2);
    cr_assert_str_eq(list[0].name, "c006", "registration order kept");
    store_close(s);
    rm_rf(img);
    rm_rf(dir);
    free(dir);
}

/* A data directory from before the log (MANIFEST version 1: arrays, every
 * shard spelt out) opens, and keeps its streams, consumers and shards. */
Test(store, manifest_v1_upgrades)
{
    char *dir = tmpdir_new();
    char seg[600];
    snprintf(seg, sizeof seg, "%s/segments", dir);
    mkdir(seg, 0755);
    struct store_hashkey a0, a1, b0, b1;
    store_hashkey_even_split(2, 0, &a0, &a1);
    store_hashkey_even_split(2, 1, &b0, &b1);
    char h[4][STORE_HASHKEY_STRLEN], q0[STORE_SEQ_STRLEN], q1[STORE_SEQ_STRLEN];
    store_hashkey_format(&a0, h[0]);
    store_hashkey_format(&a1, h[1]);
    store_hashkey_format(&b0, h[2]);
    store_hashkey_format(&b1, h[3]);
    store_seq_format((struct store_seq){3, 0, 0}, q0);
    store_seq_format((struct store_seq){3, 1, 0}, q1);
    char m[4096];
    snprintf(m, sizeof m,
             "{\"version\":1,\"generation\":7,\"next_uid\":5,\"streams\":[{\"name\":\"old\","
             "\"uid\":4,\"arn\":\"arn:aws:kinesis:us-east-1:000000000000:stream/old\","
             "\"status\":\"ACTIVE\",\"created_ms\":1000,\"retention_hours\":30,\"tags\":{\"t\":\"v\"},"
             "\"consumers\":[{\"name\":\"r\",\"arn\":\"arn:aws:kinesis:us-east-1:000000000000:"
             "stream/old/consumer/r:1\",\"status\":\"ACTIVE\",\"created_ms\":1000}],"
             "\"shards\":[{\"index\":0,\"hash_start\":\"%s\",\"hash_end\":\"%s\",\"start_seq\":\"%s\"},"
             "{\"index\":1,\"hash_start\":\"%s\",\"hash_end\":\"%s\",\"start_seq\":\"%s\"}]}]}",
             h[0], h[1], q0, h[2], h[3], q1);
    char mp[700];
    snprintf(mp, sizeof mp, "%s/MANIFEST", dir);
    write_file(mp, m, strlen(m));
    struct store_opts o = opts_never();
    for (int pass = 0; pass < 2; pass++) {
        struct store *s = open_store(dir, &o);
        struct store_stream *st = get_stream(s, "old");
        struct store_stream_info si;
        store_stream_info(st, &si);
        cr_assert_eq(si.shard_count, 2);
        cr_assert_eq(si.retention_hours, 30);
        cr_assert_eq(si.consumer_count, 1);
        struct store_consumer_info ci;
        struct store_stream *f;
        cr_assert_eq(store_consumer_lookup_arn(
                         s, "arn:aws:kinesis:us-east-1:000000000000:stream/old/consumer/r:1", &f,
                         &ci, NULL), 0);
        struct store_shard_info sh;
        store_shard_info(store_stream_shard(st, 1), &sh);
        cr_assert_eq(store_hashkey_cmp(&sh.hash_start, &b0), 0);
        cr_assert_eq(store_seq_cmp(sh.starting_seq, (struct store_seq){3, 1, 0}), 0);
        /* the generation moved on from 7 */
        struct done_ctr d = {0};
        struct store_seq q = append_one(store_stream_shard(st, 0), 1, &d);
        cr_assert_gt(q.gen, 7);
        pump_until(s, &d, 1);
        store_close(s);
    }
    rm_rf(dir);
    free(dir);
}

/* Consumer lookup by name and ARN across thousands of consumers (hashed). */
Test(store, many_consumers_lookup)
{
    char *dir = tmpdir_new();
    struct store_opts o = opts_never();
    o.max_consumers = STORE_MAX_CONSUMERS_LIMIT;
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "fan", 1);
    for (int i = 0; i < 3000; i++) {
        char n[16];
        snprintf(n, sizeof n, "c%d", i);
        cr_assert_eq(store_consumer_register(st, n, NULL, NULL), 0);
        cr_assert_eq(store_consumer_register(st, n, NULL, NULL), STORE_EEXISTS);
    }
    for (int i = 0; i < 3000; i += 2) {
        char n[16];
        snprintf(n, sizeof n, "c%d", i);
        cr_assert_eq(store_consumer_deregister(st, n, NULL), 0);
    }
    struct store_consumer_info ci, ci2;
    cr_assert_eq(store_consumer_lookup(st, "c2", &ci, NULL), STORE_ENOTFOUND);
    cr_assert_eq(store_consumer_lookup(st, "c2999", &ci, NULL), 0);
    struct store_stream *f;
    cr_assert_eq(store_consumer_lookup_arn(s, ci.arn, &f, &ci2, NULL), 0);
    cr_assert_str_eq(ci2.name, "c2999");
    char bad[600];
    snprintf(bad, sizeof bad, "%sx", ci.arn);
    cr_assert_eq(store_consumer_lookup_arn(s, bad, &f, &ci2, NULL), STORE_ENOTFOUND);
    store_stream_info(st, &(struct store_stream_info){0});
    cr_assert_eq(catalog_settle(s), 0);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* Changes through a handle of a stream whose deletion is pending are refused:
 * logged after the deletion they would make the log unreplayable (a change
 * to an unknown stream is corruption at open). */
Test(store, change_through_stale_handle_after_delete_refused)
{
    char *dir = tmpdir_new(), img[600];
    snprintf(img, sizeof img, "%s.img", dir);
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "gone", 1);
    cr_assert_eq(store_consumer_register(st, "c", NULL, NULL), 0);
    cr_assert_eq(store_stream_delete(s, "gone", NULL), 0);
    /* the deletion is not durable yet: the handle is still allocated */
    struct store_tag t = {"k", "v"};
    struct store_err err;
    cr_assert_eq(store_stream_tags_add(st, &t, 1, &err), STORE_ENOTFOUND);
    cr_assert_eq(store_stream_retention_increase(st, 48, &err), STORE_ENOTFOUND);
    cr_assert_eq(store_consumer_register(st, "d", NULL, &err), STORE_ENOTFOUND);
    cr_assert_eq(store_consumer_set_status(st, "c", STORE_CONSUMER_ACTIVE, &err), STORE_ENOTFOUND);
    cr_assert_eq(store_consumer_deregister(st, "c", &err), STORE_ENOTFOUND);
    store_stream_set_status(st, STORE_STREAM_ACTIVE);
    store_stream_set_on_demand(st, 1);
    const char *keys[] = {"k"};
    store_stream_tags_remove(st, keys, 1);
    cr_assert_eq(catalog_settle(s), 0);
    make_stream(s, "other", 1);
    crash_image(dir, img);
    store_close(s);
    s = open_store(img, &o);
    cr_assert_eq(store_stream_count(s), 1);
    get_stream(s, "other");
    store_close(s);
    rm_rf(img);
    rm_rf(dir);
    free(dir);
}

/* A compaction that crashed while creating the next log (the file exists,
 * its header never written) leaves an empty CATALOG-<N+1>.log next to the
 * log MANIFEST names: harmless, the store opens with every change. */
Test(store, empty_next_log_from_interrupted_compaction)
{
    char *dir = tmpdir_new(), img[600];
    snprintf(img, sizeof img, "%s.img", dir);
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    make_stream(s, "kept", 1);
    char log[700];
    current_log(dir, log, sizeof log);
    crash_image(dir, img);
    store_close(s);
    unsigned long long n = strtoull(strrchr(log, '-') + 1, NULL, 10);
    char next[800];
    snprintf(next, sizeof next, "%s/CATALOG-%llu.log", img, n + 1);
    write_file(next, "", 0);
    s = open_store(img, &o);
    get_stream(s, "kept");
    store_close(s);
    rm_rf(img);
    rm_rf(dir);
    free(dir);
}

/* One dispatch learns that version 1 became durable and that version 2
 * failed: the first waiter succeeds, only the second gets the error (and only
 * the second change is undone). */
Test(store, durable_and_failed_catalog_in_one_dispatch)
{
    char *dir = tmpdir_new();
    struct faults f = {0};
    struct store_io_ops io = {fault_write, fault_fsync, &f};
    struct store_opts o = opts_never();
    o.io = &io;
    struct store *s = open_store(dir, &o);
    struct store_stream *st = make_stream(s, "s", 1);
    struct done_ctr w1 = {0}, w2 = {0};
    struct store_tag t1 = {"one", "1"}, t2 = {"two", "2"};
    cr_assert_eq(store_stream_tags_add(st, &t1, 1, NULL), 0);
    store_catalog_sync(s, on_catalog, &w1);
    int synced = __atomic_load_n(&f.catalog_fsyncs_ok, __ATOMIC_ACQUIRE);
    store_commit(s);
    /* Version 1's own fsync must be over before the fault is armed: the
     * notify descriptor alone may still be readable from the stream's
     * creation, and then version 1 and 2 could share one (failing) fsync
     * (seen under ThreadSanitizer). */
    for (int i = 0; i < 10000 && __atomic_load_n(&f.catalog_fsyncs_ok, __ATOMIC_ACQUIRE) == synced;
         i++)
        usleep(1000);
    cr_assert_neq(__atomic_load_n(&f.catalog_fsyncs_ok, __ATOMIC_ACQUIRE), synced,
                  "version 1 fsynced");
    struct pollfd p = {store_notify_fd(s), POLLIN, 0};
    cr_assert_eq(poll(&p, 1, 10000), 1, "first append reported");
    __atomic_store_n(&f.fsync_fail_errno, EIO, __ATOMIC_RELEASE);
    __atomic_store_n(&f.fsync_fail_count, 1, __ATOMIC_RELEASE);
    cr_assert_eq(store_stream_tags_add(st, &t2, 1, NULL), 0);
    store_catalog_sync(s, on_catalog, &w2);
    store_commit(s);
    for (int i = 0; i < 10000 && __atomic_load_n(&f.fsync_fail_count, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    usleep(50000); /* let the syncer record the failure: one take sees both */
    store_dispatch(s);
    pump_until(s, &w2, 1);
    cr_assert_eq(w1.ok, 1, "the durable change's waiter succeeds");
    cr_assert_eq(w1.failed, 0);
    cr_assert_eq(w2.failed, 1);
    struct store_tag out[3];
    cr_assert_eq(store_stream_tags_list(st, NULL, out, 3), 1);
    cr_assert_str_eq(out[0].key, "one");
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* A damaged length in the middle of the log is corruption, not a torn tail:
 * treating it as the end would silently drop every later (acknowledged)
 * change. */
Test(store, catalog_bad_length_in_middle_is_corruption)
{
    char *dir = tmpdir_new(), img[600];
    snprintf(img, sizeof img, "%s.img", dir);
    struct store_opts o = opts_never();
    struct store *s = open_store(dir, &o);
    char log[700];
    current_log(dir, log, sizeof log);
    off_t start = file_size(log);
    make_stream(s, "a", 1);
    make_stream(s, "b", 1);
    crash_image(dir, img);
    store_close(s);
    char ilog[900];
    snprintf(ilog, sizeof ilog, "%s/%s", img, strrchr(log, '/') + 1);
    size_t len;
    char *b = read_file(ilog, &len);
    b[start + 3] = 0x40; /* the first record now claims 1 GiB */
    write_file(ilog, b, len);
    free(b);
    struct store_err err;
    cr_assert_eq(store_open(img, &o, &s, &err), STORE_ECORRUPT);
    rm_rf(img);
    rm_rf(dir);
    free(dir);
}

/* Account settings: kept across a reopen, undone when the catalog write
 * fails, removed with NULL. */
Test(store, account_settings_persist_and_undo)
{
    char *dir = tmpdir_new();
    struct faults f = {0};
    struct store_io_ops io = {fault_write, fault_fsync, &f};
    struct store_opts o = opts_never();
    o.io = &io;
    struct store *s = open_store(dir, &o);
    cr_assert_null(store_account_settings(s));
    cr_assert_eq(store_account_settings_set(s, "", NULL), STORE_EINVAL);
    cr_assert_eq(store_account_settings_set(s, "{\"a\":1}", NULL), 0);
    cr_assert_eq(catalog_settle(s), 0);
    __atomic_store_n(&f.fsync_fail_errno, EIO, __ATOMIC_RELEASE);
    __atomic_store_n(&f.fsync_fail_count, 1, __ATOMIC_RELEASE);
    cr_assert_eq(store_account_settings_set(s, "{\"a\":2}", NULL), 0);
    cr_assert_str_eq(store_account_settings(s), "{\"a\":2}");
    cr_assert_eq(catalog_settle(s), STORE_EIO);
    cr_assert_str_eq(store_account_settings(s), "{\"a\":1}", "undone");
    store_close(s);
    s = open_store(dir, &o);
    cr_assert_str_eq(store_account_settings(s), "{\"a\":1}");
    cr_assert_eq(store_account_settings_set(s, NULL, NULL), 0);
    cr_assert_eq(catalog_settle(s), 0);
    store_close(s);
    s = open_store(dir, &o);
    cr_assert_null(store_account_settings(s));
    store_close(s);
    rm_rf(dir);
    free(dir);
}
