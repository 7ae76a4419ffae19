/* prom.c - the Prometheus text format. See prom.h. */
#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

void gw_prom_escape_value(struct evbuffer *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = NULL;
        switch (*s) {
        case '\\': esc = "\\\\"; break;
        case '"': esc = "\\\""; break;
        case '\n': esc = "\\n"; break;
        default: continue;
        }
        evbuffer_add(out, run, (size_t)(s - run));
        evbuffer_add(out, esc, 2);
        run = s + 1;
    }
    evbuffer_add(out, run, (size_t)(s - run));
}

/* Help text escapes only \\ and \n (quotes are literal there). */
static void escape_help(struct evbuffer *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        if (*s != '\\' && *s != '\n')
            continue;
        evbuffer_add(out, run, (size_t)(s - run));
        evbuffer_add(out, *s == '\\' ? "\\\\" : "\\n", 2);
        run = s + 1;
    }
    evbuffer_add(out, run, (size_t)(s - run));
}

void gw_prom_family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s ", name);
    escape_help(out, help);
    evbuffer_add_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void labels_add(struct evbuffer *out, const struct gw_prom_label *labels, size_t n,
                       const char *le)
{
    if (n == 0 && !le)
        return;
    evbuffer_add(out, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            evbuffer_add(out, ",", 1);
        evbuffer_add_printf(out, "%s=\"", labels[i].name);
        gw_prom_escape_value(out, labels[i].value ? labels[i].value : "");
        evbuffer_add(out, "\"", 1);
    }
    if (le)
        evbuffer_add_printf(out, "%sle=\"%s\"", n ? "," : "", le);
    evbuffer_add(out, "}", 1);
}

void gw_prom_u64(struct evbuffer *out, const char *name, const struct gw_prom_label *labels,
                 size_t nlabels, uint64_t v)
{
    evbuffer_add(out, name, strlen(name));
    labels_add(out, labels, nlabels, NULL);
    evbuffer_add_printf(out, " %llu\n", (unsigned long long)v);
}

/* Go's ParseFloat reads all of these; %.17g round-trips every double. */
static void add_double(struct evbuffer *out, double v)
{
    if (isnan(v))
        evbuffer_add(out, "NaN", 3);
    else if (isinf(v))
        evbuffer_add_printf(out, "%cInf", v > 0 ? '+' : '-');
    else
        evbuffer_add_printf(out, "%.17g", v);
}

void gw_prom_double(struct evbuffer *out, const char *name, const struct gw_prom_label *labels,
                    size_t nlabels, double v)
{
    evbuffer_add(out, name, strlen(name));
    labels_add(out, labels, nlabels, NULL);
    evbuffer_add(out, " ", 1);
    add_double(out, v);
    evbuffer_add(out, "\n", 1);
}

void gw_prom_hist(struct evbuffer *out, const char *name, const struct gw_prom_label *labels,
                  size_t nlabels, const struct gw_hist *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        char le[32];
        cum += h->counts[i];
        if (i < h->nbounds)
            snprintf(le, sizeof le, "%g", h->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        evbuffer_add_printf(out, "%s_bucket", name);
        labels_add(out, labels, nlabels, le);
        evbuffer_add_printf(out, " %llu\n", (unsigned long long)cum);
    }
    evbuffer_add_printf(out, "%s_sum", name);
    labels_add(out, labels, nlabels, NULL);
    evbuffer_add(out, " ", 1);
    add_double(out, h->sum);
    evbuffer_add_printf(out, "\n%s_count", name);
    labels_add(out, labels, nlabels, NULL);
    evbuffer_add_printf(out, " %llu\n", (unsigned long long)h->count);
}
