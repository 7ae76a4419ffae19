/* bench_putparse.c - micro-benchmark of PutRecord(s) body decoding: the
 * single-pass fast path (gw_put_parse_fast) against the general path
 * (gw_body_decode, i.e. jansson, then gw_put_parse_tree) on the same bytes.
 *
 *   sluice-bench-putparse [records [data_bytes [trials [seconds]]]]
 *
 * Defaults: a PutRecords body of 500 records x 100 data bytes, partition keys
 * like "partition-key-000042", 5 trials of about 1 s per path. Each
 * iteration decodes one body in a fresh request (as the server does); only
 * the decode is timed (request set-up and arena teardown are not, for either
 * path; json_decref is, since it is part of the general path's cost). A
 * third row times json_loadb + json_decref alone, for scale. Prints
 * records/s per trial and the median. One core, no threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "putrecords.h"
#include "request-internal.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *make_body(size_t n, size_t dlen, size_t *len)
{
    uint8_t *d = malloc(dlen ? dlen : 1);
    size_t cap = n * (dlen * 4 / 3 + 80) + 64, o = 0;
    char *s = malloc(cap);
    o += (size_t)snprintf(s, cap, "{\"StreamName\":\"bench\",\"Records\":[");
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < dlen; j++)
            d[j] = (uint8_t)(i * 31 + j * 7);
        size_t blen;
        char *b64 = gw_base64_encode(d, dlen, &blen);
        o += (size_t)snprintf(s + o, cap - o,
                              "%s{\"Data\":\"%s\",\"PartitionKey\":\"partition-key-%06zu\"}",
                              i ? "," : "", b64, i);
        free(b64);
    }
    o += (size_t)snprintf(s + o, cap - o, "]}");
    free(d);
    *len = o;
    return s;
}

/* Decodes the body once in a fresh request; returns the seconds spent
 * decoding, or a negative value if the decode failed. */
enum mode { FAST, GENERAL, JANSSON_ONLY };

static double one(const char *body, size_t len, enum mode mode, size_t *records)
{
    struct gw_req *req = gw_req_new(GW_PROTO_H2, false, 0, NULL, NULL, NULL);
    gw_req_body_append(req, body, len, SIZE_MAX);
    size_t blen;
    const uint8_t *b = gw_req_body(req, &blen);
    struct gw_put_batch batch;
    double t0 = now(), t1;
    int ok;
    if (mode == FAST) {
        ok = gw_put_parse_fast(req, b, blen, true, &batch) == 1;
        t1 = now();
    } else if (mode == JANSSON_ONLY) {
        json_t *root = json_loadb((const char *)b, blen, JSON_REJECT_DUPLICATES, NULL);
        ok = root != NULL;
        batch.n = json_array_size(json_object_get(root, "Records"));
        json_decref(root);
        t1 = now();
    } else {
        struct gw_error err;
        json_t *root;
        ok = gw_body_decode(req, &root, &err) == 0 &&
             gw_put_parse_tree(req, root, true, &batch, &err) == 0;
        json_decref(root);
        t1 = now();
    }
    *records = ok ? batch.n : 0;
    gw_req_free(req);
    return ok ? t1 - t0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs "trials" trials of about "secs" each; returns the median records/s. */
static size_t n_records;

static double run(const char *name, const char *body, size_t len, enum mode mode, int trials,
                  double secs)
{
    double rates[64];
    for (int t = 0; t < trials; t++) {
        double spent = 0;
        size_t recs = 0;
        double start = now();
        while (now() - start < secs) {
            size_t n;
            double d = one(body, len, mode, &n);
            if (d < 0) {
                fprintf(stderr, "%s: decode failed\n", name);
                exit(1);
            }
            spent += d;
            recs += n;
        }
        rates[t] = (double)recs / spent;
        printf("%-8s trial %d: %12.0f records/s (%.1f MB/s of body)\n", name, t + 1, rates[t],
               rates[t] / (double)n_records * (double)len / 1e6);
    }
    qsort(rates, (size_t)trials, sizeof *rates, cmp_double);
    return rates[trials / 2];
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 500;
    size_t dlen = argc > 2 ? strtoul(argv[2], NULL, 10) : 100;
    int trials = argc > 3 ? atoi(argv[3]) : 5;
    double secs = argc > 4 ? atof(argv[4]) : 1.0;
    if (n < 1 || n > GW_PUT_MAX_RECORDS || trials < 1 || trials > 64) {
        fprintf(stderr, "usage: %s [records(1..500) [data_bytes [trials(1..64) [seconds]]]]\n",
                argv[0]);
        return 2;
    }
    size_t len;
    n_records = n;
    char *body = make_body(n, dlen, &len);
    printf("PutRecords body: %zu records x %zu data bytes, %zu bytes of JSON\n", n, dlen, len);
    double fast = run("fast", body, len, FAST, trials, secs);
    double general = run("general", body, len, GENERAL, trials, secs);
    double jansson = run("jansson", body, len, JANSSON_ONLY, trials, secs);
    printf("median of %d: fast %.0f records/s, general %.0f records/s (%.1fx), "
           "json_loadb alone %.0f records/s\n",
           trials, fast, general, fast / general, jansson);
    free(body);
    return 0;
}
