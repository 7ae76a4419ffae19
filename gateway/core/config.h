/* config.h - the resolved server configuration.
 *
 * Options live in one table in config.c (name, environment variable, type,
 * target field with its width, bounds, default, help): a number is stored at
 * the width its field is declared with below. Precedence: defaults, then SLUICE_* environment
 * variables, then command-line flags. The result is frozen after startup and
 * passed around as `const struct gw_config *`. */
#ifndef SLUICE_GW_CONFIG_H
#define SLUICE_GW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GW_MAX_LISTEN 16

struct gw_config {
    char *listen[GW_MAX_LISTEN]; /* "host:port" or "[v6]:port" */
    size_t nlisten;
    char *data_dir;
    char *tls_cert;
    char *tls_key;
    char *tls_min_version;       /* "1.2" or "1.3" */
    uint32_t tls_only;           /* 1: clear-text connections are refused */
    char *log_level;

    size_t max_header_bytes;     /* request line + headers, per request */
    size_t max_body_bytes;       /* one request body */
    uint64_t header_timeout_ms;  /* first byte to end of headers */
    uint64_t idle_timeout_ms;    /* no request in progress, or no progress at all */
    uint64_t drain_timeout_ms;   /* SIGTERM: longest wait for in-flight work */
    uint32_t max_streams;        /* concurrent HTTP/2 streams per connection */
    uint32_t max_connections;    /* accepted connections at once */
    uint32_t h2_window;          /* HTTP/2 stream and connection receive window */
    size_t conn_buffer_bytes;    /* per-connection output high watermark */
    size_t conn_body_bytes;      /* request bodies buffered at once per connection */
    size_t conn_reply_bytes;     /* one-shot HTTP/2 replies held per connection before new
                                    requests wait */
    size_t max_body_memory;      /* request-body buffers of all connections together */

    /* Kinesis behaviour */
    char *durability;            /* always | interval:MS | never */
    char *backend;               /* embedded | jetstream */
    char *nats_url;              /* jetstream: nats://h:p[,...] */
    uint32_t nats_replicas;      /* jetstream: replicas per JetStream stream */
    char *nats_prefix;           /* jetstream: stream and subject prefix */
    char *nats_creds;            /* jetstream: credentials file ("" none) */
    char *nats_tls_ca;           /* jetstream: CA file, TLS to NATS ("" none) */
    size_t tail_memory;          /* the store's in-memory tail, all shards */
    size_t segment_bytes;        /* segment files roll past this size */
    uint64_t stream_delay_ms;    /* time in CREATING / DELETING */
    uint64_t iterator_ttl_ms;    /* shard iterator lifetime (Kinesis: 5 min) */
    uint32_t shard_limit;        /* open shards across all streams */
    uint32_t on_demand_shards;   /* shards of an ON_DEMAND stream */
    uint32_t write_limit;        /* 1: per-shard 1 MiB/s + 1000 rec/s throttling */
    uint32_t require_auth;       /* 1: Kinesis-door requests must carry SigV4 headers */
    char *auth;                  /* none | sigv4 */
    char *credentials;           /* file of ACCESS_KEY_ID:SECRET lines ("" none) */
    char *allowed_hosts;         /* comma-separated Host names also served ("" none) */
    char *cors_origins;          /* comma-separated origins allowed cross-origin ("" none) */

    /* Enhanced fan-out */
    uint32_t scalings_per_day;    /* UpdateShardCount calls per stream per 24 h (0: no limit) */
    uint64_t on_demand_window_ms; /* ON_DEMAND streams double after throttled writes in one */
    uint32_t metrics_all_shards;  /* 1: per-shard series for every stream on /metrics */
    uint32_t max_consumers;      /* registered consumers per stream (Kinesis: 20) */
    size_t consumer_rate;        /* record bytes/s per consumer-shard subscription */
    size_t consumer_burst;       /* token bucket depth */
    uint64_t subscription_ttl_ms;/* a subscription ends cleanly after this */
    uint64_t heartbeat_ms;       /* an event at least this often when idle */
    char *region;
    char *account;
};

/* Outcome of gw_config_load(). */
enum gw_config_result { GW_CONFIG_OK, GW_CONFIG_EXIT_OK, GW_CONFIG_ERROR };

/* Fills "cfg" from defaults, the environment and argv. On --help or
 * --print-config prints to "out" and returns GW_CONFIG_EXIT_OK; on a bad value
 * writes a message to "err" and returns GW_CONFIG_ERROR. "cfg" owns its
 * strings afterwards: release with gw_config_clear(). */
enum gw_config_result gw_config_load(struct gw_config *cfg, int argc, char **argv,
                                     FILE *out, FILE *err);
void gw_config_clear(struct gw_config *cfg);

/* Parses "host:port" / "[v6]:port" into its parts; returns 0 or -1. "host"
 * receives at most "hostlen" bytes including the NUL. */
int gw_config_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
