/* test_prom.c - the Prometheus text format writer (prom.c): escaping, sample
 * lines, histograms (cumulative buckets, +Inf, _sum and _count). */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "prom.h"

static char *take(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

Test(prom, family_header_escapes_help)
{
    struct evbuffer *b = evbuffer_new();
    gw_prom_family(b, "sluice_x_total", "counter", "a \"quoted\" back\\slash\nnewline");
    char *s = take(b);
    cr_assert_str_eq(s, "# HELP sluice_x_total a \"quoted\" back\\\\slash\\nnewline\n"
                        "# TYPE sluice_x_total counter\n");
    free(s);
    evbuffer_free(b);
}

Test(prom, label_values_are_escaped)
{
    struct evbuffer *b = evbuffer_new();
    const struct gw_prom_label l[] = {{"stream", "a\"b\\c\nd"}, {"shard", "shardId-000000000001"}};
    gw_prom_u64(b, "sluice_y", l, 2, 18446744073709551615ull);
    char *s = take(b);
    cr_assert_str_eq(s, "sluice_y{stream=\"a\\\"b\\\\c\\nd\",shard=\"shardId-000000000001\"} "
                        "18446744073709551615\n");
    free(s);
    evbuffer_free(b);
}

Test(prom, no_labels_no_braces)
{
    struct evbuffer *b = evbuffer_new();
    gw_prom_u64(b, "sluice_z", NULL, 0, 0);
    gw_prom_double(b, "sluice_d", NULL, 0, 0.25);
    gw_prom_double(b, "sluice_inf", NULL, 0, INFINITY);
    gw_prom_double(b, "sluice_nan", NULL, 0, NAN);
    char *s = take(b);
    cr_assert_str_eq(s, "sluice_z 0\nsluice_d 0.25\nsluice_inf +Inf\nsluice_nan NaN\n");
    free(s);
    evbuffer_free(b);
}

Test(prom, doubles_round_trip)
{
    struct evbuffer *b = evbuffer_new();
    gw_prom_double(b, "v", NULL, 0, 0.1);
    char *s = take(b);
    cr_assert_eq(strtod(s + 2, NULL), 0.1);
    free(s);
    evbuffer_free(b);
}

Test(prom, histogram_buckets_are_cumulative)
{
    static const double bounds[] = {0.1, 1, 10};
    struct gw_hist h;
    gw_hist_init(&h, bounds, 3);
    gw_hist_observe(&h, 0.05); /* le 0.1 */
    gw_hist_observe(&h, 0.1);  /* le 0.1: bounds are inclusive */
    gw_hist_observe(&h, 5);    /* le 10 */
    gw_hist_observe(&h, 50);   /* +Inf only */
    struct evbuffer *b = evbuffer_new();
    const struct gw_prom_label l[] = {{"operation", "PutRecords"}};
    gw_prom_hist(b, "sluice_h_seconds", l, 1, &h);
    char *s = take(b);
    cr_assert_str_eq(s, "sluice_h_seconds_bucket{operation=\"PutRecords\",le=\"0.1\"} 2\n"
                        "sluice_h_seconds_bucket{operation=\"PutRecords\",le=\"1\"} 2\n"
                        "sluice_h_seconds_bucket{operation=\"PutRecords\",le=\"10\"} 3\n"
                        "sluice_h_seconds_bucket{operation=\"PutRecords\",le=\"+Inf\"} 4\n"
                        "sluice_h_seconds_sum{operation=\"PutRecords\"} 55.149999999999999\n"
                        "sluice_h_seconds_count{operation=\"PutRecords\"} 4\n");
    free(s);
    evbuffer_free(b);
}

Test(prom, histogram_without_labels)
{
    static const double bounds[] = {1};
    struct gw_hist h;
    gw_hist_init(&h, bounds, 1);
    struct evbuffer *b = evbuffer_new();
    gw_prom_hist(b, "h", NULL, 0, &h);
    char *s = take(b);
    cr_assert_str_eq(s, "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
    free(s);
    evbuffer_free(b);
}
