/* fuzz_config.c - libFuzzer target for gateway/config.c (argv parsing).
 *
 * The input is split at NUL bytes into argv[1..] (at most 64 arguments).
 * Invariants asserted:
 *   - gw_config_load() returns one of its three results and never crashes;
 *     on an error it has written a message;
 *   - on success every field is set and inside its documented bounds: 1..16
 *     listen addresses that gw_config_split_hostport() accepts, a log level
 *     gw_log_level_parse() accepts, TLS cert and key together, a 12-digit
 *     account, numbers within the option table's limits;
 *   - --print-config round-trips: the printed configuration, given back as
 *     flags, loads to the same configuration (skipped when a string holds a
 *     newline or a listen address a comma, which the printed form cannot
 *     carry, or a string is the literal "(unset)").
 * SLUICE_* environment variables are cleared once so results do not depend
 * on the environment the fuzzer runs in. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

#include "fuzz_check.h"

#define MAXARGS 64

extern char **environ;

static void clear_env(void)
{
    for (;;) {
        char name[128] = "";
        for (char **e = environ; e && *e; e++)
            if (strncmp(*e, "SLUICE_", 7) == 0) {
                size_t n = strcspn(*e, "=");
                if (n < sizeof name) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                }
                break;
            }
        if (!name[0])
            return;
        unsetenv(name);
    }
}

static void check_valid(const struct gw_config *c)
{
    CHECK(c->nlisten >= 1 && c->nlisten <= GW_MAX_LISTEN);
    for (size_t i = 0; i < c->nlisten; i++) {
        char host[256];
        uint16_t port;
        CHECK(c->listen[i] && gw_config_split_hostport(c->listen[i], host, sizeof host, &port) == 0);
    }
    CHECK(c->data_dir && c->log_level && c->durability && c->region && c->account);
    enum gw_log_level l;
    CHECK(gw_log_level_parse(c->log_level, &l) == 0);
    CHECK((c->tls_cert == NULL) == (c->tls_key == NULL));
    CHECK(strlen(c->account) == 12 && strspn(c->account, "0123456789") == 12);
    CHECK(c->max_header_bytes >= 1024 && c->max_header_bytes <= (16u << 20));
    CHECK(c->max_body_bytes >= 1024 && c->max_body_bytes <= (1u << 30));
    CHECK(c->header_timeout_ms >= 10 && c->header_timeout_ms <= 3600 * 1000);
    CHECK(c->max_streams >= 1 && c->max_streams <= (1u << 20));
    CHECK(c->max_connections >= 1 && c->max_connections <= (1u << 20));
    CHECK(c->h2_window >= 65535 && c->h2_window <= (1u << 31) - 1);
    CHECK(c->conn_buffer_bytes >= 16 * 1024);
    CHECK(c->tail_memory >= (1u << 20) && c->segment_bytes >= 64 * 1024);
    CHECK(c->iterator_ttl_ms >= 1 && c->shard_limit >= 1 && c->on_demand_shards >= 1);
    CHECK(c->write_limit <= 1 && c->require_auth <= 1);
    CHECK(c->auth && (strcmp(c->auth, "none") == 0 || strcmp(c->auth, "sigv4") == 0));
    CHECK(c->credentials && c->allowed_hosts && c->cors_origins);
    CHECK(c->tls_min_version &&
          (strcmp(c->tls_min_version, "1.2") == 0 || strcmp(c->tls_min_version, "1.3") == 0));
    CHECK(c->tls_only <= 1 && (!c->tls_only || c->tls_cert));
    /* consumer_rate 0 is the unlimited bucket (benchmarks). */
    CHECK(c->max_consumers >= 1 && c->consumer_rate <= ((size_t)16 << 30) &&
          c->consumer_burst >= 1);
    CHECK(c->subscription_ttl_ms >= 100 && c->heartbeat_ms >= 10);
    CHECK(c->backend &&
          (strcmp(c->backend, "embedded") == 0 || strcmp(c->backend, "jetstream") == 0));
    CHECK(c->nats_replicas >= 1 && c->nats_replicas <= 5);
    CHECK(c->nats_url && c->nats_creds && c->nats_tls_ca && c->nats_prefix);
    size_t plen = strlen(c->nats_prefix);
    CHECK(plen >= 1 && plen <= 32 &&
          strspn(c->nats_prefix,
                 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == plen);
}

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void check_same(const struct gw_config *a, const struct gw_config *b)
{
    CHECK(a->nlisten == b->nlisten);
    for (size_t i = 0; i < a->nlisten; i++)
        CHECK(strcmp(a->listen[i], b->listen[i]) == 0);
    CHECK(str_eq(a->data_dir, b->data_dir) && str_eq(a->tls_cert, b->tls_cert));
    CHECK(str_eq(a->tls_key, b->tls_key) && str_eq(a->log_level, b->log_level));
    CHECK(str_eq(a->durability, b->durability) && str_eq(a->region, b->region));
    CHECK(str_eq(a->account, b->account) && str_eq(a->auth, b->auth));
    CHECK(str_eq(a->credentials, b->credentials) && str_eq(a->allowed_hosts, b->allowed_hosts));
    CHECK(str_eq(a->cors_origins, b->cors_origins));
    CHECK(a->max_header_bytes == b->max_header_bytes && a->max_body_bytes == b->max_body_bytes);
    CHECK(a->header_timeout_ms == b->header_timeout_ms && a->idle_timeout_ms == b->idle_timeout_ms);
    CHECK(a->drain_timeout_ms == b->drain_timeout_ms && a->max_streams == b->max_streams);
    CHECK(a->max_connections == b->max_connections && a->h2_window == b->h2_window);
    CHECK(a->conn_buffer_bytes == b->conn_buffer_bytes && a->conn_body_bytes == b->conn_body_bytes);
    CHECK(a->tail_memory == b->tail_memory && a->segment_bytes == b->segment_bytes);
    CHECK(a->stream_delay_ms == b->stream_delay_ms && a->iterator_ttl_ms == b->iterator_ttl_ms);
    CHECK(a->shard_limit == b->shard_limit && a->on_demand_shards == b->on_demand_shards);
    CHECK(a->write_limit == b->write_limit && a->require_auth == b->require_auth);
    CHECK(a->max_consumers == b->max_consumers && a->consumer_rate == b->consumer_rate);
    CHECK(a->scalings_per_day == b->scalings_per_day);
    CHECK(a->on_demand_window_ms == b->on_demand_window_ms);
    CHECK(a->consumer_burst == b->consumer_burst);
    CHECK(a->subscription_ttl_ms == b->subscription_ttl_ms && a->heartbeat_ms == b->heartbeat_ms);
    CHECK(str_eq(a->tls_min_version, b->tls_min_version) && a->tls_only == b->tls_only);
    CHECK(a->metrics_all_shards == b->metrics_all_shards);
    CHECK(str_eq(a->backend, b->backend) && str_eq(a->nats_url, b->nats_url));
    CHECK(str_eq(a->nats_prefix, b->nats_prefix) && a->nats_replicas == b->nats_replicas);
    CHECK(str_eq(a->nats_creds, b->nats_creds) && str_eq(a->nats_tls_ca, b->nats_tls_ca));
}

static bool printable(const struct gw_config *c)
{
    const char *s[] = {c->data_dir,    c->tls_cert,      c->tls_key,      c->log_level,
                       c->durability,  c->region,        c->account,      c->auth,
                       c->credentials, c->allowed_hosts, c->cors_origins, c->tls_min_version,
                       c->backend,     c->nats_url,      c->nats_prefix,  c->nats_creds,
                       c->nats_tls_ca};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        if (s[i] && (strchr(s[i], '\n') || strcmp(s[i], "(unset)") == 0))
            return false;
    for (size_t i = 0; i < c->nlisten; i++)
        if (strchr(c->listen[i], ',') || strchr(c->listen[i], '\n'))
            return false;
    return true;
}

/* --print-config's "name = value" lines back to flags, then load them. */
static void round_trip(const struct gw_config *c, int argc, char **argv, FILE *devnull)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    CHECK(mem != NULL);
    char *pargv[MAXARGS + 2];
    int pargc = 0;
    for (int i = 0; i < argc; i++)
        pargv[pargc++] = argv[i];
    pargv[pargc++] = "--print-config";
    struct gw_config tmp;
    CHECK(gw_config_load(&tmp, pargc, pargv, mem, devnull) == GW_CONFIG_EXIT_OK);
    gw_config_clear(&tmp);
    fclose(mem);

    char *flags[128];
    int nf = 0;
    flags[nf++] = "sluice";
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strstr(line, " = ");
        CHECK(eq != NULL);
        *eq = '\0';
        char *name = line, *val = eq + 3;
        if (strcmp(val, "(unset)") == 0)
            continue;
        if (strcmp(name, "listen") == 0) {
            char *s2 = NULL;
            for (char *a = strtok_r(val, ",", &s2); a; a = strtok_r(NULL, ",", &s2)) {
                CHECK(nf + 2 < 128);
                flags[nf++] = "--listen";
                flags[nf++] = a;
            }
            continue;
        }
        CHECK(nf + 1 < 128);
        /* --name=value keeps a value that starts with "--" a value. */
        size_t n = strlen(name) + strlen(val) + 4;
        char *f = malloc(n);
        snprintf(f, n, "--%s=%s", name, val);
        flags[nf++] = f;
    }
    struct gw_config back;
    CHECK(gw_config_load(&back, nf, flags, devnull, devnull) == GW_CONFIG_OK);
    check_same(c, &back);
    gw_config_clear(&back);
    for (int i = 1; i < nf; i++)
        if (strcmp(flags[i], "--listen") == 0)
            i++;
        else
            free(flags[i]);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    if (!devnull) {
        clear_env();
        devnull = fopen("/dev/null", "w");
        CHECK(devnull != NULL);
    }
    /* One NUL-terminated copy; each argument a pointer into it. */
    char *buf = malloc(size + 1);
    CHECK(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[MAXARGS + 2];
    int argc = 0;
    argv[argc++] = "sluice";
    for (size_t i = 0; i <= size && argc <= MAXARGS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    if (size == 0)
        argc = 1;
    argv[argc] = NULL;

    char *msg = NULL;
    size_t msglen = 0;
    FILE *err = open_memstream(&msg, &msglen);
    CHECK(err != NULL);
    struct gw_config cfg;
    enum gw_config_result r = gw_config_load(&cfg, argc, argv, devnull, err);
    fclose(err);
    switch (r) {
    case GW_CONFIG_OK:
        check_valid(&cfg);
        if (printable(&cfg))
            round_trip(&cfg, argc, argv, devnull);
        break;
    case GW_CONFIG_ERROR:
        CHECK(msglen > 0);
        break;
    case GW_CONFIG_EXIT_OK:
        break;
    default:
        CHECK(!"unknown result");
    }
    gw_config_clear(&cfg);
    free(msg);
    free(buf);
    return 0;
}
