/* prom.h - the Prometheus text exposition format (version 0.0.4), written
 * into an evbuffer: # HELP / # TYPE lines, samples with escaped label
 * values, histograms as cumulative _bucket series with _sum and _count.
 *
 * The writer checks nothing about names (they are the gateway's own
 * constants); it escapes what comes from users: label values (stream names,
 * consumer ARNs, error types) and help text.
 *
 * Upstream: ops_metrics.c. Downstream: metrics.h (struct gw_hist). */
#ifndef SLUICE_GW_PROM_H
#define SLUICE_GW_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

struct evbuffer;

struct gw_prom_label {
    const char *name;
    const char *value;
};

/* The content type a scrape is answered with. */
#define GW_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help\n# TYPE name type\n"; type is counter, gauge,
 * histogram or untyped. */
void gw_prom_family(struct evbuffer *out, const char *name, const char *type, const char *help);

/* One sample line: name{l1="v1",...} value. */
void gw_prom_u64(struct evbuffer *out, const char *name, const struct gw_prom_label *labels,
                 size_t nlabels, uint64_t v);
void gw_prom_double(struct evbuffer *out, const char *name, const struct gw_prom_label *labels,
                    size_t nlabels, double v);

/* A histogram's samples: name_bucket{...,le="b"} for every bound and +Inf
 * (cumulative), name_sum and name_count. "labels" may hold up to 7. */
void gw_prom_hist(struct evbuffer *out, const char *name, const struct gw_prom_label *labels,
                  size_t nlabels, const struct gw_hist *h);

/* Appends "s" escaped as a label value (\\, \" and \n). */
void gw_prom_escape_value(struct evbuffer *out, const char *s);

#endif
