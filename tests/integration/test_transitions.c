/* test_transitions.c - a stream's timed status change (CREATING -> ACTIVE,
 * DELETING -> gone, after --stream-delay) whose catalog write fails on a full
 * disk is tried again, instead of leaving the stream stuck until a restart.
 *
 * The data directory is a small tmpfs (needs root, as in test_crash). tmpfs
 * refuses a write only when it needs a new page, so the test first pads the
 * catalog log with tag changes on another stream until the log's last page
 * has too little room for the delete record, then fills the disk. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct srv s;
static char mnt[400];

static void fini(void)
{
    if (s.pid > 0) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, NULL, 0);
        s.pid = 0;
    }
    if (mnt[0]) {
        umount2(mnt, MNT_DETACH);
        mnt[0] = '\0';
    }
}

static void call(char *out, size_t cap, const char *op, const char *body)
{
    run_cmd(out, cap,
            "curl -s -X POST -H 'Content-Type: application/x-amz-json-1.1' "
            "-H 'X-Amz-Target: Kinesis_20131202.%s' -d '%s' http://127.0.0.1:%d/",
            op, body, s.port);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (at most "ms") until DescribeStreamSummary of "name" contains "want". */
static bool wait_for(const char *name, const char *want, int ms)
{
    char out[4096], body[256];
    snprintf(body, sizeof body, "{\"StreamName\":\"%s\"}", name);
    for (int waited = 0; waited <= ms; waited += 50) {
        call(out, sizeof out, "DescribeStreamSummary", body);
        if (strstr(out, want))
            return true;
        sleep_ms(50);
    }
    return false;
}

/* Size of the (only) catalog log in the data directory. */
static long log_size(void)
{
    DIR *d = opendir(mnt);
    cr_assert_not_null(d);
    struct dirent *e;
    long size = -1;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "CATALOG-", 8) != 0)
            continue;
        char p[700];
        snprintf(p, sizeof p, "%s/%s", mnt, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0)
            size = (long)st.st_size;
    }
    closedir(d);
    cr_assert_geq(size, 0, "no catalog log in %s", mnt);
    return size;
}

static void tag(int vlen)
{
    char out[2048], body[600], v[300];
    cr_assert(vlen >= 1 && vlen <= 256);
    memset(v, 'v', (size_t)vlen);
    v[vlen] = '\0';
    snprintf(body, sizeof body, "{\"StreamName\":\"pad\",\"Tags\":{\"k\":\"%s\"}}", v);
    call(out, sizeof out, "AddTagsToStream", body);
    cr_assert_str_eq(out, "", "AddTagsToStream: %s", out);
}

/* Pads the catalog log so that fewer than "room" bytes are left in its last
 * page (a delete record is larger than that). */
static void pad_log(long page, long room)
{
    long before = log_size();
    tag(1);
    long overhead = log_size() - before - 1; /* a tag record is overhead + vlen */
    cr_assert_gt(overhead, 0);
    for (int i = 0; i < 1000; i++) {
        long left = page - log_size() % page;
        if (left < room && left > 0)
            return;
        long want = left - room / 2 - overhead; /* leaves about room/2 */
        if (want < 1)
            want = page - room / 2 - overhead + left; /* into the next page */
        tag((int)(want > 256 ? 256 : want));
    }
    cr_assert_fail("could not pad the catalog log");
}

Test(transitions, delete_retried_after_disk_full, .timeout = 120, .fini = fini)
{
    if (geteuid() != 0)
        cr_skip_test("mounting a small tmpfs needs root");
    memset(&s, 0, sizeof s);
    snprintf(s.dir, sizeof s.dir, "/tmp/sluice-test-XXXXXX");
    cr_assert_not_null(mkdtemp(s.dir));
    snprintf(s.log, sizeof s.log, "%s/server.log", s.dir);
    snprintf(mnt, sizeof mnt, "%s/data", s.dir);
    cr_assert_eq(mkdir(mnt, 0755), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=2m") != 0) {
        mnt[0] = '\0';
        cr_skip_test("cannot mount a tmpfs: %s", strerror(errno));
    }
    const char *args[] = {"--durability", "always", "--stream-delay", "1500ms", NULL};
    srv_start(&s, args);
    char out[4096];
    call(out, sizeof out, "CreateStream", "{\"StreamName\":\"victim\",\"ShardCount\":1}");
    call(out, sizeof out, "CreateStream", "{\"StreamName\":\"pad\",\"ShardCount\":1}");
    cr_assert(wait_for("victim", "\"ACTIVE\"", 10000));
    cr_assert(wait_for("pad", "\"ACTIVE\"", 10000));

    /* DELETING is durable; the deletion itself is due 1.5 s later. */
    call(out, sizeof out, "DeleteStream", "{\"StreamName\":\"victim\"}");
    cr_assert_str_eq(out, "", "DeleteStream: %s", out);
    long page = sysconf(_SC_PAGESIZE);
    pad_log(page, 24);

    char ballast[450];
    snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
    int fd = open(ballast, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    static char chunk[4096];
    memset(chunk, 0xb1, sizeof chunk);
    while (write(fd, chunk, sizeof chunk) > 0)
        ;
    cr_assert_eq(errno, ENOSPC);
    close(fd);

    /* The deletion fails (no page for its record) and is rolled back: the
     * stream is still there, DELETING, and the gateway says it will retry. */
    for (int i = 0; i < 100 && srv_log_count(&s, "undoing") == 0; i++)
        sleep_ms(50);
    cr_assert_gt(srv_log_count(&s, "undoing"), 0,
                 "the deletion's catalog write did not fail (log %s)", s.log);
    cr_assert(wait_for("victim", "\"DELETING\"", 0), "the stream should still be DELETING");
    cr_expect_gt(srv_log_count(&s, "stream_transition_retry"), 0,
                 "no retry logged for the failed deletion (log %s)", s.log);

    /* Space frees up: the next attempt deletes the stream. */
    cr_assert_eq(unlink(ballast), 0);
    cr_assert(wait_for("victim", "ResourceNotFoundException", 8000),
              "the stream stayed DELETING after space was freed");
    cr_assert(wait_for("pad", "\"ACTIVE\"", 0));
    cr_assert(srv_alive(&s));
    cr_expect_eq(srv_stop(&s, 15000), 0);
    /* And the deletion is durable. */
    srv_start(&s, args);
    cr_assert(wait_for("victim", "ResourceNotFoundException", 0));
    cr_expect_eq(srv_stop(&s, 15000), 0);
}
