/* test_catalog_order.c - a stream takes writes only once its creation is on
 * disk, end to end.
 *
 * With --stream-delay 0 a new stream turns ACTIVE as soon as it may, and an
 * ACTIVE stream takes PutRecords whose acknowledgement promises the record
 * survives a crash - which it cannot if the catalog on disk does not know the
 * stream (its segments would be orphans at the next start). So whenever a
 * client first sees a stream ACTIVE, the catalog files in the data directory
 * must already name it. A second connection polls DescribeStreamSummary flat
 * out while the first creates the stream, and checks the disk in the very
 * callback that first reports ACTIVE; a PutRecord sent while it was CREATING
 * answers ResourceNotFoundException, as Kinesis does (or, if the stream
 * turned ACTIVE meanwhile, succeeds with the stream on disk). Before the
 * fix the ACTIVE timer was armed at creation, so the flip could come before
 * the manifest write (one fsync) finished. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout_client.h"
#include "harness.h"

#define ROUNDS 100 /* the catalog log stays far below its compaction size */

static struct srv S;
static struct event_base *base;
static struct fc_conn *a, *b;

static void fini(void)
{
    fc_conn_free(a);
    fc_conn_free(b);
    a = b = NULL;
    if (base)
        event_base_free(base);
    base = NULL;
    if (S.pid > 0)
        cr_expect_eq(srv_stop(&S, 15000), 0, "sluice did not exit cleanly (log %s)", S.log);
}

TestSuite(catalog_order, .fini = fini, .timeout = 120);

/* Does any catalog file of the data directory (MANIFEST, CATALOG-*.log)
 * contain "\"<name>\""? */
static bool on_disk(const char *name)
{
    char dir[400], needle[160];
    snprintf(dir, sizeof dir, "%s/data", S.dir);
    snprintf(needle, sizeof needle, "\"%s\"", name);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *de;
    bool found = false;
    while (!found && (de = readdir(d))) {
        if (strcmp(de->d_name, "MANIFEST") != 0 && strncmp(de->d_name, "CATALOG-", 8) != 0)
            continue;
        char p[800];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        static char buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Log records are length-prefixed: search past embedded NULs. */
        for (size_t off = 0; off < n && !found; off += strlen(buf + off) + 1)
            found = strstr(buf + off, needle) != NULL;
    }
    closedir(d);
    return found;
}

struct round {
    char name[32];
    bool created, active, done;
    bool disk_at_active;
    int polls;
    int put_status;
    char put_type[96];
    bool put_pending;
    bool disk_at_put;
};

static void poll_status(struct round *r);

static void on_put(int status, json_t *reply, void *ud)
{
    struct round *r = ud;
    r->put_pending = false;
    if (r->put_status)
        return; /* keep the first answer while CREATING */
    const char *t = json_string_value(json_object_get(reply, "__type"));
    r->put_status = status;
    snprintf(r->put_type, sizeof r->put_type, "%s", t ? t : "");
    /* It may have turned ACTIVE since the poll: then the acknowledged
     * record needs its stream on disk, like any other. */
    r->disk_at_put = status == 200 && on_disk(r->name);
}

static void on_describe(int status, json_t *reply, void *ud)
{
    struct round *r = ud;
    r->polls++;
    const char *st = json_string_value(
        json_object_get(json_object_get(reply, "StreamDescriptionSummary"), "StreamStatus"));
    if (status == 200 && st && strcmp(st, "ACTIVE") == 0) {
        /* No further poll: the round ends when both replies are in. */
        r->active = true;
        r->disk_at_active = on_disk(r->name);
        r->done = r->created;
        return;
    }
    if (status == 200 && st && !r->put_pending && !r->put_status) {
        /* CREATING: a write must be refused. */
        char body[200];
        int n = snprintf(body, sizeof body,
                         "{\"StreamName\":\"%s\",\"PartitionKey\":\"k\",\"Data\":\"AA==\"}", r->name);
        r->put_pending = true;
        cr_assert_eq(fc_call(b, "PutRecord", body, (size_t)n, on_put, r), 0);
    }
    if (r->polls > 200000) {
        r->done = true;
        return;
    }
    poll_status(r);
}

static void poll_status(struct round *r)
{
    char body[100];
    int n = snprintf(body, sizeof body, "{\"StreamName\":\"%s\"}", r->name);
    cr_assert_eq(fc_call(b, "DescribeStreamSummary", body, (size_t)n, on_describe, r), 0);
}

static void on_created(int status, json_t *reply, void *ud)
{
    struct round *r = ud;
    (void)reply;
    cr_assert_eq(status, 200, "CreateStream %s", r->name);
    r->created = true;
    r->done = r->active;
}

Test(catalog_order, active_only_once_creation_is_on_disk)
{
    const char *args[] = {"--stream-delay", "0", "--durability", "always", NULL};
    srv_start(&S, args);
    base = event_base_new();
    a = fc_conn_new(base, "127.0.0.1", S.port, NULL);
    b = fc_conn_new(base, "127.0.0.1", S.port, NULL);
    cr_assert(a && b);
    int early = 0, refused = 0;
    for (int i = 0; i < ROUNDS; i++) {
        struct round r = {0};
        snprintf(r.name, sizeof r.name, "order-%d", i);
        /* The stream does not exist yet: the first polls answer 400, and the
         * poller keeps asking until it is ACTIVE. */
        poll_status(&r);
        char body[100];
        int n = snprintf(body, sizeof body, "{\"StreamName\":\"%s\",\"ShardCount\":1}", r.name);
        cr_assert_eq(fc_call(a, "CreateStream", body, (size_t)n, on_created, &r), 0);
        cr_assert(fc_run_until(base, &r.done, 30000), "round %d did not finish", i);
        for (int k = 0; k < 2000 && r.put_pending; k++)
            fc_run_for(base, 5);
        cr_assert(!r.put_pending, "round %d: PutRecord unanswered", i);
        cr_assert(r.active, "round %d: never ACTIVE after %d polls", i, r.polls);
        early += !r.disk_at_active;
        if (r.put_status == 200) {
            early += !r.disk_at_put;
        } else if (r.put_status) {
            cr_assert_eq(r.put_status, 400, "round %d: PutRecord while CREATING: %d", i,
                         r.put_status);
            cr_assert_str_eq(r.put_type, "ResourceNotFoundException");
            refused++;
        }
        /* Keep under the five-streams-CREATING limit and the shard limit. */
        n = snprintf(body, sizeof body, "{\"StreamName\":\"%s\"}", r.name);
        int st;
        json_t *j = fc_call_sync(a, "DeleteStream", body, &st, 10000);
        json_decref(j);
        cr_assert_eq(st, 200);
    }
    cr_assert_eq(early, 0,
                 "%d times a stream was ACTIVE or took a record before the catalog on disk "
                 "named it (%d rounds)", early, ROUNDS);
    cr_log_info("%d rounds, %d PutRecords refused while CREATING", ROUNDS, refused);
}
