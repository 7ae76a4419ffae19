/* nats_server.h - one nats-server with JetStream for the store's unit tests
 * (test_jsbus.c, test_jetstream.c): started by tests/lib/nats-cluster.sh
 * on a free loopback port in a temporary directory, stopped by PID (also
 * when an assertion ends the test process). Static functions: each test
 * program includes it once.
 */
#ifndef SLUICE_TEST_NATS_SERVER_H
#define SLUICE_TEST_NATS_SERVER_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCRIPT SLUICE_SOURCE_DIR "/tests/lib/nats-cluster.sh"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static __attribute__((unused)) void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- the server ---- */

static char srv_dir[256];
static char srv_url[256];
static int srv_up;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Runs the cluster script with "args"; returns its exit status and, if
 * "out" is not NULL, its stdout. */
static int script(const char *args, char *out, size_t outsz)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash %s %s --dir %s", SCRIPT, args, srv_dir);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = 0;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) {
        size_t l = strlen(buf);
        if (out && n + l < outsz) {
            memcpy(out + n, buf, l);
            n += l;
        }
    }
    if (out)
        out[n] = 0;
    return pclose(p);
}

static void server_stop(void)
{
    if (!srv_dir[0])
        return;
    if (srv_up)
        script("stop", NULL, 0);
    srv_up = 0;
    nftw(srv_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    srv_dir[0] = 0;
}

static void server_start(void)
{
    cr_assert_eq(system("command -v nats-server >/dev/null 2>&1"), 0,
                 "nats-server is not installed (apt-get install nats-server)");
    atexit(server_stop); /* also when an assertion exits the test process */
    char out[2048];
    int rc = -1;
    /* A second try in a fresh directory: the script's free-port check is
     * racy against other users of the machine, and it retries only when the
     * bind error made it into the log. */
    for (int attempt = 0; attempt < 2 && rc != 0; attempt++) {
        server_stop();
        char tmpl[] = "/tmp/sluice-nats-test-XXXXXX";
        cr_assert_not_null(mkdtemp(tmpl));
        snprintf(srv_dir, sizeof srv_dir, "%s", tmpl);
        rc = script("up --nodes 1 --timeout 30", out, sizeof out);
    }
    cr_assert_eq(rc, 0, "nats-cluster.sh up failed (%d)", rc);
    srv_up = 1;
    char *u = strstr(out, "NATS_URL=");
    cr_assert_not_null(u, "no NATS_URL in: %s", out);
    u += strlen("NATS_URL=");
    size_t l = strcspn(u, "\n");
    cr_assert_lt(l, sizeof srv_url);
    memcpy(srv_url, u, l);
    srv_url[l] = 0;
}

static __attribute__((unused)) void server_kill(void)
{
    cr_assert_eq(script("kill 1", NULL, 0), 0);
}

static __attribute__((unused)) void server_restart(void)
{
    cr_assert_eq(script("start 1 --timeout 30", NULL, 0), 0);
}

#endif
