/* config.c - declarative option table (Redis's static_configs[] in config.c).
 *
 * Each option is one row: flag, environment variable, type, bounds, default,
 * target field and help text. --help is generated from the table, so the table
 * is the documentation. Adding an option means adding one row. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

enum opt_type { OPT_STRING, OPT_LISTEN, OPT_SIZE, OPT_DURATION, OPT_UINT, OPT_LOGLEVEL, OPT_BOOL };

struct opt {
    const char *name;   /* --name */
    const char *env;    /* SLUICE_... */
    enum opt_type type;
    size_t offset;      /* into struct gw_config */
    size_t width;       /* sizeof the field: numbers are stored at this width */
    const char *def;    /* default, parsed like user input; NULL = unset */
    uint64_t min, max;  /* numeric bounds (inclusive) */
    const char *help;
};

/* A row's target: offset and width of a struct gw_config field, so numbers
 * land in a uint32_t, size_t or uint64_t field as the field is declared. */
#define FIELD(f) offsetof(struct gw_config, f), sizeof(((struct gw_config *)0)->f)
#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

static const struct opt opts[] = {
    {"listen", "SLUICE_LISTEN", OPT_LISTEN, FIELD(listen), "127.0.0.1:4567", 0, 0,
     "Address to listen on, host:port or [v6]:port; repeatable (env: comma-separated). "
     "Port 0 picks a free port; the bound address is logged as event \"listening\"."},
    {"data-dir", "SLUICE_DATA_DIR", OPT_STRING, FIELD(data_dir), "./data", 0, 0,
     "Directory for the store's segments and manifest."},
    {"tls-cert", "SLUICE_TLS_CERT", OPT_STRING, FIELD(tls_cert), NULL, 0, 0,
     "PEM certificate (chain) for TLS; with --tls-key enables h2 and http/1.1 over TLS on the same port."},
    {"tls-key", "SLUICE_TLS_KEY", OPT_STRING, FIELD(tls_key), NULL, 0, 0,
     "PEM private key for --tls-cert. Both are read again on SIGHUP (new connections get the "
     "new certificate; live ones keep theirs)."},
    {"tls-min-version", "SLUICE_TLS_MIN_VERSION", OPT_STRING, FIELD(tls_min_version), "1.2", 0, 0,
     "Oldest TLS version accepted: 1.2 or 1.3. TLS 1.2 offers only ECDHE key exchange with "
     "AES-GCM or ChaCha20-Poly1305."},
    {"tls-only", "SLUICE_TLS_ONLY", OPT_BOOL, FIELD(tls_only), "off", 0, 1,
     "Refuse clear-text connections: the port speaks only TLS (needs --tls-cert) (on/off)."},
    {"log-level", "SLUICE_LOG_LEVEL", OPT_LOGLEVEL, FIELD(log_level), "info", 0, 0,
     "debug, info, warn or error."},
    {"max-header-bytes", "SLUICE_MAX_HEADER_BYTES", OPT_SIZE, FIELD(max_header_bytes), "64KiB",
     1 * KiB, 16 * MiB, "Largest request line plus headers (431 above it)."},
    {"max-body-bytes", "SLUICE_MAX_BODY_BYTES", OPT_SIZE, FIELD(max_body_bytes), "10MiB",
     1 * KiB, 1 * GiB, "Largest request body (413 above it); must admit a 5 MiB PutRecords in base64."},
    {"header-timeout", "SLUICE_HEADER_TIMEOUT", OPT_DURATION, FIELD(header_timeout_ms), "10s",
     10, 3600 * 1000, "Time allowed from a request's first byte to the end of its headers."},
    {"idle-timeout", "SLUICE_IDLE_TIMEOUT", OPT_DURATION, FIELD(idle_timeout_ms), "120s",
     10, 24 * 3600 * 1000, "Close a connection that has no request in progress, or makes no progress, for this long; "
     "also the deadline of an HTTP/2 request (HEADERS to end of body: 408 and RST_STREAM) and of an "
     "HTTP/2 reply the peer's zero window holds up (RST_STREAM CANCEL)."},
    {"drain-timeout", "SLUICE_DRAIN_TIMEOUT", OPT_DURATION, FIELD(drain_timeout_ms), "10s",
     0, 3600 * 1000, "On SIGTERM/SIGINT, longest wait for in-flight requests before closing."},
    {"max-streams", "SLUICE_MAX_STREAMS", OPT_UINT, FIELD(max_streams), "1000",
     1, 1u << 20, "Concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS)."},
    {"max-connections", "SLUICE_MAX_CONNECTIONS", OPT_UINT, FIELD(max_connections), "10000",
     1, 1u << 20, "Connections held at once; further ones are closed at accept."},
    {"h2-window", "SLUICE_H2_WINDOW", OPT_SIZE, FIELD(h2_window), "16MiB",
     65535, (1u << 31) - 1, "HTTP/2 receive window advertised per stream and per connection."},
    {"conn-buffer-bytes", "SLUICE_CONN_BUFFER_BYTES", OPT_SIZE, FIELD(conn_buffer_bytes), "256KiB",
     16 * KiB, 64 * MiB, "Output buffered per connection before it stops producing (back-pressure)."},
    {"conn-body-bytes", "SLUICE_CONN_BODY_BYTES", OPT_SIZE, FIELD(conn_body_bytes), "64MiB",
     1 * KiB, 16 * GiB, "Request body bytes buffered at once per connection across its HTTP/2 streams (503 above it)."},
    {"conn-reply-bytes", "SLUICE_CONN_REPLY_BYTES", OPT_SIZE, FIELD(conn_reply_bytes), "16MiB",
     64 * KiB, 16 * GiB, "Reply bytes an HTTP/2 connection may hold waiting for its peer's flow-control window; "
     "past it, the connection's further requests wait to run until replies drain."},
    {"max-body-memory", "SLUICE_MAX_BODY_MEMORY", OPT_SIZE, FIELD(max_body_memory), "512MiB",
     64 * KiB, 1024 * GiB, "Request-body buffers held at once across all connections (503 ServiceUnavailable above it); "
     "buffers grow with the bytes received, not from a declared Content-Length."},
    {"backend", "SLUICE_BACKEND", OPT_STRING, FIELD(backend), "embedded", 0, 0,
     "Where streams live: embedded (the store in --data-dir) or jetstream (NATS JetStream at "
     "--nats-url, shared by every gateway pointed at it; --data-dir then holds a local copy "
     "rebuilt at each start)."},
    {"nats-url", "SLUICE_NATS_URL", OPT_STRING, FIELD(nats_url), "nats://127.0.0.1:4222", 0, 0,
     "NATS servers for --backend jetstream: nats://host:port[,nats://host:port...]."},
    {"nats-replicas", "SLUICE_NATS_REPLICAS", OPT_UINT, FIELD(nats_replicas), "3", 1, 5,
     "Replicas of every JetStream stream the gateway creates (1 for a single nats-server)."},
    {"nats-prefix", "SLUICE_NATS_PREFIX", OPT_STRING, FIELD(nats_prefix), "sluice", 0, 0,
     "Prefix of the JetStream streams and subjects ([A-Za-z0-9_-], up to 32): gateways with "
     "the same prefix share streams."},
    {"nats-creds", "SLUICE_NATS_CREDS", OPT_STRING, FIELD(nats_creds), "", 0, 0,
     "NATS credentials file (JWT and NKey seed) for --backend jetstream."},
    {"nats-tls-ca", "SLUICE_NATS_TLS_CA", OPT_STRING, FIELD(nats_tls_ca), "", 0, 0,
     "CA certificate file: connect to NATS over TLS and verify the servers with it."},
    {"durability", "SLUICE_DURABILITY", OPT_STRING, FIELD(durability), "always", 0, 0,
     "When a write is acknowledged: always (after an fsync covering it, grouped), "
     "interval:MS (after write; fsync every MS) or never (after write)."},
    {"tail-memory", "SLUICE_TAIL_MEMORY", OPT_SIZE, FIELD(tail_memory), "64MiB", 1 * MiB, 64 * GiB,
     "Memory for recent records of all shards (pushes and near-tail reads never touch disk)."},
    {"segment-bytes", "SLUICE_SEGMENT_BYTES", OPT_SIZE, FIELD(segment_bytes), "64MiB", 64 * KiB,
     16 * GiB, "Segment files roll past this size (retention deletes whole segments)."},
    {"stream-delay", "SLUICE_STREAM_DELAY", OPT_DURATION, FIELD(stream_delay_ms), "0ms", 0,
     3600 * 1000, "Time a stream spends CREATING, DELETING, and UPDATING after a change (0: until the "
     "next loop turn)."},
    {"iterator-ttl", "SLUICE_ITERATOR_TTL", OPT_DURATION, FIELD(iterator_ttl_ms), "5m", 1,
     24 * 3600 * 1000, "Shard iterator lifetime (ExpiredIteratorException after it)."},
    {"shard-limit", "SLUICE_SHARD_LIMIT", OPT_UINT, FIELD(shard_limit), "10000", 1, 1000000,
     "Open shards across all streams (LimitExceededException above it)."},
    {"on-demand-shards", "SLUICE_ON_DEMAND_SHARDS", OPT_UINT, FIELD(on_demand_shards), "4", 1, 10000,
     "Shards given to an ON_DEMAND stream."},
    {"write-limit", "SLUICE_WRITE_LIMIT", OPT_BOOL, FIELD(write_limit), "off", 0, 1,
     "Per-shard throttling as Kinesis: writes 1 MiB/s and 1000 records/s "
     "(ProvisionedThroughputExceededException per record above it), reads 5 GetRecords calls/s "
     "(ProvisionedThroughputExceededException) (on/off)."},
    {"metrics-all-shards", "SLUICE_METRICS_ALL_SHARDS", OPT_BOOL, FIELD(metrics_all_shards), "off",
     0, 1,
     "Per-shard series on /metrics for every stream; off: only for streams with enhanced "
     "monitoring enabled (EnableEnhancedMonitoring), so the series count stays bounded (on/off)."},
    {"require-auth", "SLUICE_REQUIRE_AUTH", OPT_BOOL, FIELD(require_auth), "off", 0, 1,
     "Deprecated, verifies nothing: only refuses Kinesis-door requests without a well-formed "
     "SigV4 Authorization header. Use --auth sigv4 --credentials FILE (on/off)."},
    {"auth", "SLUICE_AUTH", OPT_STRING, FIELD(auth), "none", 0, 0,
     "none, or sigv4: every Kinesis-door request must carry a valid AWS Signature Version 4 "
     "from a key in --credentials (reloaded on SIGHUP)."},
    {"credentials", "SLUICE_CREDENTIALS", OPT_STRING, FIELD(credentials), "", 0, 0,
     "File of ACCESS_KEY_ID:SECRET_ACCESS_KEY[:STREAM,...] lines (the streams limit the key) "
     "and token:TOKEN[:STREAM,...] lines (REST door bearer tokens), # comments, for --auth sigv4."},
    {"allowed-hosts", "SLUICE_ALLOWED_HOSTS", OPT_STRING, FIELD(allowed_hosts), "", 0, 0,
     "Comma-separated Host names (without port) requests may name besides the loopback ones. "
     "When every --listen address is loopback, or when this is set, other Hosts get 421 "
     "(a guard against DNS rebinding from a browser)."},
    {"cors-origin", "SLUICE_CORS_ORIGIN", OPT_STRING, FIELD(cors_origins), "", 0, 0,
     "Comma-separated origins (scheme://host[:port]) whose web pages may call the gateway "
     "across origins: preflights are answered and replies carry CORS headers for them only. "
     "Off by default."},
    {"on-demand-window", "SLUICE_ON_DEMAND_WINDOW", OPT_DURATION, FIELD(on_demand_window_ms), "60s",
     100, 3600 * 1000,
     "An ON_DEMAND stream whose writes were throttled (--write-limit) during one such window "
     "doubles its shards at the window's end."},
    {"scalings-per-day", "SLUICE_SCALINGS_PER_DAY", OPT_UINT, FIELD(scalings_per_day), "10", 0,
     1000000, "UpdateShardCount calls per stream in a rolling 24 hours (Kinesis: 10; 0: no limit)."},
    {"max-consumers", "SLUICE_MAX_CONSUMERS", OPT_UINT, FIELD(max_consumers), "20", 1, 10000,
     "Registered consumers per stream (Kinesis allows 20; raise it for fan-out load tests)."},
    {"consumer-rate", "SLUICE_CONSUMER_RATE", OPT_SIZE, FIELD(consumer_rate), "2MiB", 0, 16 * GiB,
     "Record bytes per second pushed to each consumer-shard subscription (token bucket); 0: "
     "unlimited, for benchmarks of the fan-out engine only."},
    {"consumer-burst", "SLUICE_CONSUMER_BURST", OPT_SIZE, FIELD(consumer_burst), "2MiB", 1, 16 * GiB,
     "Token bucket depth of each consumer-shard subscription."},
    {"subscription-ttl", "SLUICE_SUBSCRIPTION_TTL", OPT_DURATION, FIELD(subscription_ttl_ms), "5m",
     100, 24 * 3600 * 1000, "A SubscribeToShard stream ends cleanly after this (Kinesis: 5 minutes)."},
    {"heartbeat", "SLUICE_HEARTBEAT", OPT_DURATION, FIELD(heartbeat_ms), "5s", 10, 3600 * 1000,
     "An idle subscription gets an empty event at least this often."},
    {"region", "SLUICE_REGION", OPT_STRING, FIELD(region), "us-east-1", 0, 0,
     "Region written into ARNs."},
    {"account", "SLUICE_ACCOUNT", OPT_STRING, FIELD(account), "000000000000", 0, 0,
     "12-digit account id written into ARNs."},
};

#define NOPTS (sizeof opts / sizeof opts[0])

/* Stores "n" in a numeric field of "width" bytes; "n" has been checked
 * against the field's maximum (field_max()). Numeric fields are uint32_t,
 * size_t or uint64_t: a row naming any other width is a bug in the table,
 * and every row with a default goes through here on every start. */
static void store_num(void *field, size_t width, uint64_t n)
{
    if (width == sizeof(uint32_t)) {
        uint32_t v = (uint32_t)n;
        memcpy(field, &v, sizeof v);
    } else if (width == sizeof(uint64_t)) {
        memcpy(field, &n, sizeof n);
    } else {
        abort();
    }
}

static uint64_t load_num(const void *field, size_t width)
{
    if (width == sizeof(uint32_t)) {
        uint32_t v;
        memcpy(&v, field, sizeof v);
        return v;
    }
    uint64_t n;
    memcpy(&n, field, sizeof n);
    return n;
}

/* The largest value a numeric field of "width" bytes holds: where size_t is
 * 32 bits, a size above 4 GiB is refused instead of truncated. */
static uint64_t field_max(size_t width)
{
    return width == sizeof(uint32_t) ? UINT32_MAX : UINT64_MAX;
}

/* Parses a number with an optional unit; "units" maps suffix to multiplier. */
struct unit {
    const char *suffix;
    uint64_t mult;
};

static const struct unit size_units[] = {
    {"", 1}, {"b", 1}, {"k", KiB}, {"kb", KiB}, {"kib", KiB}, {"m", MiB}, {"mb", MiB},
    {"mib", MiB}, {"g", GiB}, {"gb", GiB}, {"gib", GiB}, {NULL, 0}};
static const struct unit time_units[] = {
    {"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000}, {NULL, 0}};

static int parse_num(const char *s, const struct unit *units, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    for (const struct unit *u = units; u->suffix; u++) {
        if (strcasecmp(end, u->suffix) == 0) {
            if (u->mult && v > UINT64_MAX / u->mult)
                return -1;
            *out = v * u->mult;
            return 0;
        }
    }
    return -1;
}

int gw_config_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    uint64_t p;
    if (parse_num(colon + 1, (const struct unit[]){{"", 1}, {NULL, 0}}, &p) != 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* Applies one value; "from" names its source for error messages. */
static int apply(struct gw_config *cfg, const struct opt *o, const char *val, const char *from,
                 FILE *err)
{
    void *field = (char *)cfg + o->offset;
    uint64_t n;
    switch (o->type) {
    case OPT_STRING: {
        char **p = field;
        free(*p);
        *p = xstrdup(val);
        return 0;
    }
    case OPT_LOGLEVEL: {
        enum gw_log_level l;
        if (gw_log_level_parse(val, &l) != 0) {
            fprintf(err, "sluice: %s: bad log level '%s' (debug, info, warn, error)\n", from, val);
            return -1;
        }
        char **p = field;
        free(*p);
        *p = xstrdup(val);
        return 0;
    }
    case OPT_LISTEN: {
        char host[256];
        uint16_t port;
        if (gw_config_split_hostport(val, host, sizeof host, &port) != 0) {
            fprintf(err, "sluice: %s: bad listen address '%s' (host:port or [v6]:port)\n", from, val);
            return -1;
        }
        if (cfg->nlisten == GW_MAX_LISTEN) {
            fprintf(err, "sluice: %s: at most %d listen addresses\n", from, GW_MAX_LISTEN);
            return -1;
        }
        cfg->listen[cfg->nlisten++] = xstrdup(val);
        return 0;
    }
    case OPT_BOOL:
        if (!strcmp(val, "on") || !strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "yes"))
            store_num(field, o->width, 1);
        else if (!strcmp(val, "off") || !strcmp(val, "false") || !strcmp(val, "0") ||
                 !strcmp(val, "no"))
            store_num(field, o->width, 0);
        else {
            fprintf(err, "sluice: %s: --%s takes on or off, got '%s'\n", from, o->name, val);
            return -1;
        }
        return 0;
    case OPT_SIZE:
    case OPT_DURATION:
    case OPT_UINT:
        if (parse_num(val, o->type == OPT_DURATION ? time_units
                           : o->type == OPT_SIZE   ? size_units
                                                   : (const struct unit[]){{"", 1}, {NULL, 0}},
                      &n) != 0) {
            fprintf(err, "sluice: %s: bad value '%s' for --%s\n", from, val, o->name);
            return -1;
        }
        if (n < o->min || n > o->max) {
            fprintf(err, "sluice: %s: --%s must be between %" PRIu64 " and %" PRIu64 ", got '%s'\n",
                    from, o->name, o->min, o->max, val);
            return -1;
        }
        if (n > field_max(o->width)) {
            fprintf(err, "sluice: %s: --%s must be at most %" PRIu64 " on this platform, got '%s'\n",
                    from, o->name, field_max(o->width), val);
            return -1;
        }
        store_num(field, o->width, n);
        return 0;
    }
    return -1;
}

/* Region names as AWS spells them: lower-case letters, digits and dashes. */
static bool gw_match_region(const char *s)
{
    return *s && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(s) && strlen(s) < 32;
}

static void clear_listen(struct gw_config *cfg)
{
    for (size_t i = 0; i < cfg->nlisten; i++)
        free(cfg->listen[i]);
    cfg->nlisten = 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sluice [options]\n"
            "Sluice %s: a streaming gateway that speaks the Kinesis Data Streams API over\n"
            "HTTP/1.1, h2c and h2 (TLS) on one port.\n\n"
            "Options (each also read from its environment variable; flags win):\n",
            SLUICE_VERSION);
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        fprintf(out, "  --%-20s %s\n", o->name, o->help);
        fprintf(out, "                         env %s", o->env);
        if (o->def)
            fprintf(out, ", default %s", o->def);
        fputc('\n', out);
    }
    fprintf(out, "  --%-20s %s\n", "print-config", "Print the resolved configuration and exit.");
    fprintf(out, "  --%-20s %s\n", "print-routes", "Print the REST door's routes (METHOD /path) and exit.");
    fprintf(out, "  --%-20s %s\n", "help", "Show this help and exit.");
}

static void print_config(const struct gw_config *cfg, FILE *out)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        const void *field = (const char *)cfg + o->offset;
        fprintf(out, "%s = ", o->name);
        switch (o->type) {
        case OPT_STRING:
        case OPT_LOGLEVEL: {
            const char *s = *(char *const *)field;
            fprintf(out, "%s\n", s ? s : "(unset)");
            break;
        }
        case OPT_LISTEN:
            for (size_t j = 0; j < cfg->nlisten; j++)
                fprintf(out, "%s%s", j ? "," : "", cfg->listen[j]);
            fputc('\n', out);
            break;
        case OPT_DURATION:
            fprintf(out, "%" PRIu64 "ms\n", load_num(field, o->width));
            break;
        case OPT_SIZE:
        case OPT_UINT:
            fprintf(out, "%" PRIu64 "\n", load_num(field, o->width));
            break;
        case OPT_BOOL:
            fprintf(out, "%s\n", load_num(field, o->width) ? "on" : "off");
            break;
        }
    }
}

enum gw_config_result gw_config_load(struct gw_config *cfg, int argc, char **argv,
                                     FILE *out, FILE *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].def && apply(cfg, &opts[i], opts[i].def, "default", err) != 0)
            return GW_CONFIG_ERROR;

    for (size_t i = 0; i < NOPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (!v || !*v)
            continue;
        if (opts[i].type == OPT_LISTEN) {
            clear_listen(cfg);
            char *copy = xstrdup(v), *save = NULL;
            int rc = 0;
            for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save))
                rc = apply(cfg, &opts[i], t, opts[i].env, err);
            free(copy);
            if (rc != 0)
                return GW_CONFIG_ERROR;
        } else if (apply(cfg, &opts[i], v, opts[i].env, err) != 0) {
            return GW_CONFIG_ERROR;
        }
    }

    bool listen_from_flags = false, want_print = false;
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(out);
            return GW_CONFIG_EXIT_OK;
        }
        if (strcmp(arg, "--print-config") == 0) {
            want_print = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(err, "sluice: unexpected argument '%s' (see --help)\n", arg);
            return GW_CONFIG_ERROR;
        }
        const char *name = arg + 2, *val = NULL;
        size_t namelen = strcspn(name, "=");
        if (name[namelen] == '=')
            val = name + namelen + 1;
        const struct opt *o = NULL;
        for (size_t i = 0; i < NOPTS; i++)
            if (strlen(opts[i].name) == namelen && strncmp(opts[i].name, name, namelen) == 0)
                o = &opts[i];
        if (!o) {
            fprintf(err, "sluice: unknown option '%s' (see --help)\n", arg);
            return GW_CONFIG_ERROR;
        }
        if (!val) {
            if (a + 1 >= argc) {
                fprintf(err, "sluice: --%s needs a value\n", o->name);
                return GW_CONFIG_ERROR;
            }
            val = argv[++a];
        }
        if (o->type == OPT_LISTEN && !listen_from_flags) {
            /* The first --listen replaces the default/env list; more append. */
            clear_listen(cfg);
            listen_from_flags = true;
        }
        if (apply(cfg, o, val, "command line", err) != 0)
            return GW_CONFIG_ERROR;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        fprintf(err, "sluice: --tls-cert and --tls-key go together\n");
        return GW_CONFIG_ERROR;
    }
    if (strlen(cfg->account) != 12 || strspn(cfg->account, "0123456789") != 12) {
        fprintf(err, "sluice: --account must be 12 digits\n");
        return GW_CONFIG_ERROR;
    }
    if (strcmp(cfg->tls_min_version, "1.2") != 0 && strcmp(cfg->tls_min_version, "1.3") != 0) {
        fprintf(err, "sluice: --tls-min-version must be 1.2 or 1.3\n");
        return GW_CONFIG_ERROR;
    }
    if (cfg->tls_only && !cfg->tls_cert) {
        fprintf(err, "sluice: --tls-only needs --tls-cert and --tls-key\n");
        return GW_CONFIG_ERROR;
    }
    if (strcmp(cfg->auth, "none") != 0 && strcmp(cfg->auth, "sigv4") != 0) {
        fprintf(err, "sluice: --auth must be none or sigv4\n");
        return GW_CONFIG_ERROR;
    }
    if (!gw_match_region(cfg->region)) {
        fprintf(err, "sluice: --region must be like us-east-1\n");
        return GW_CONFIG_ERROR;
    }
    if (strcmp(cfg->backend, "embedded") != 0 && strcmp(cfg->backend, "jetstream") != 0) {
        fprintf(err, "sluice: --backend must be embedded or jetstream\n");
        return GW_CONFIG_ERROR;
    }
    size_t plen = strlen(cfg->nats_prefix);
    if (plen < 1 || plen > 32 ||
        strspn(cfg->nats_prefix,
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != plen) {
        fprintf(err, "sluice: --nats-prefix must be 1 to 32 of [A-Za-z0-9_-]\n");
        return GW_CONFIG_ERROR;
    }
    if (want_print) {
        print_config(cfg, out);
        return GW_CONFIG_EXIT_OK;
    }
    return GW_CONFIG_OK;
}

void gw_config_clear(struct gw_config *cfg)
{
    clear_listen(cfg);
    free(cfg->data_dir);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->tls_min_version);
    free(cfg->log_level);
    free(cfg->durability);
    free(cfg->backend);
    free(cfg->nats_url);
    free(cfg->nats_prefix);
    free(cfg->nats_creds);
    free(cfg->nats_tls_ca);
    free(cfg->auth);
    free(cfg->credentials);
    free(cfg->allowed_hosts);
    free(cfg->cors_origins);
    free(cfg->region);
    free(cfg->account);
    memset(cfg, 0, sizeof *cfg);
}
