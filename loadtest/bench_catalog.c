/* bench_catalog.c - catalog write cost (sluice-bench-catalog; not a ctest test).
 *
 * Two scenarios, each timed in wall-clock seconds and in CPU seconds of the
 * calling thread (the "loop thread": RUSAGE_THREAD, so the syncer thread's
 * fsyncs and writes are not counted):
 *
 *   consumers  registers N consumers (default 5,000) on one stream, one
 *              catalog change per register followed by store_commit() and a
 *              non-blocking store_dispatch(), as the gateway does per request;
 *              then waits until the catalog is durable.
 *   shards     creates a 10,000-shard stream, sets it ACTIVE, adds a tag
 *              (three catalog changes, each committed), waits until durable.
 *
 *   sluice-bench-catalog [--dir /tmp] [--consumers 5000] [--shards 10000]
 */
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void on_synced(void *arg, const struct store_err *err)
{
    *(int *)arg = err ? -1 : 1;
}

/* Commits and dispatches until every catalog change so far is durable. */
static int settle(struct store *s)
{
    int done = 0;
    store_catalog_sync(s, on_synced, &done);
    store_commit(s);
    for (int i = 0; i < 600000 && !done; i++) {
        struct pollfd p = {store_notify_fd(s), POLLIN, 0};
        poll(&p, 1, 10);
        store_dispatch(s);
        store_commit(s);
    }
    return done == 1 ? 0 : -1;
}

static void turn(struct store *s)
{
    store_commit(s);
    store_dispatch(s);
}

int main(int argc, char **argv)
{
    const char *base = "/tmp";
    unsigned consumers = 5000, shards = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0) base = argv[i + 1];
        else if (strcmp(argv[i], "--consumers") == 0) consumers = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--shards") == 0) shards = (unsigned)atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--dir D] [--consumers N] [--shards N]\n", argv[0]);
            return 2;
        }
    }
    if (consumers > STORE_MAX_CONSUMERS_LIMIT) consumers = STORE_MAX_CONSUMERS_LIMIT;
    if (shards < 1 || shards > STORE_MAX_SHARDS) shards = STORE_MAX_SHARDS;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sluice-bench-catalog-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    struct store_opts o;
    store_opts_init(&o);
    o.durability = STORE_DURABILITY_NEVER;
    o.max_consumers = STORE_MAX_CONSUMERS_LIMIT;
    struct store *s;
    struct store_err err;
    if (store_open(dir, &o, &s, &err) != 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return 1;
    }
    struct store_stream *st;
    if (store_stream_create(s, "consumers", 1, &st, &err) != 0 || settle(s) != 0) {
        fprintf(stderr, "create: %s\n", err.msg);
        return 1;
    }
    double w0 = now_s(), c0 = cpu_s();
    for (unsigned i = 0; i < consumers; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%06u", i);
        if (store_consumer_register(st, name, NULL, &err) != 0) {
            fprintf(stderr, "register %s: %s\n", name, err.msg);
            return 1;
        }
        turn(s);
    }
    double c1 = cpu_s();
    if (settle(s) != 0) {
        fprintf(stderr, "consumer catalog not durable\n");
        return 1;
    }
    double w1 = now_s(), c2 = cpu_s();
    printf("consumers: %u registers  wall %.3f s  loop cpu %.3f s (%.3f s registering, %.1f us "
           "per register)\n",
           consumers, w1 - w0, c2 - c0, c1 - c0, (c1 - c0) / consumers * 1e6);

    w0 = now_s();
    c0 = cpu_s();
    struct store_stream *big;
    if (store_stream_create(s, "big", shards, &big, &err) != 0) {
        fprintf(stderr, "create big: %s\n", err.msg);
        return 1;
    }
    turn(s);
    store_stream_set_status(big, STORE_STREAM_ACTIVE);
    turn(s);
    struct store_tag tag = {"k", "v"};
    store_stream_tags_add(big, &tag, 1, &err);
    turn(s);
    c1 = cpu_s();
    if (settle(s) != 0) {
        fprintf(stderr, "big stream catalog not durable\n");
        return 1;
    }
    w1 = now_s();
    c2 = cpu_s();
    printf("shards: create %u shards + status + tag  wall %.3f s  loop cpu %.3f s (%.3f s in the "
           "three changes)\n",
           shards, w1 - w0, c2 - c0, c1 - c0);
    w0 = now_s();
    store_close(s);
    printf("close: wall %.3f s\n", now_s() - w0);
    w0 = now_s();
    c0 = cpu_s();
    if (store_open(dir, &o, &s, &err) != 0) {
        fprintf(stderr, "reopen: %s\n", err.msg);
        return 1;
    }
    printf("reopen: wall %.3f s  cpu %.3f s\n", now_s() - w0, cpu_s() - c0);
    store_close(s);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
