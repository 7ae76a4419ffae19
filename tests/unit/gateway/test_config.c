/* test_config.c - the option table: defaults, environment, flags, bounds. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static enum gw_config_result load(struct gw_config *cfg, int argc, const char **argv)
{
    FILE *out = fopen("/dev/null", "w"), *err = fopen("/dev/null", "w");
    enum gw_config_result r = gw_config_load(cfg, argc, (char **)argv, out, err);
    fclose(out);
    fclose(err);
    return r;
}

Test(config, defaults)
{
    struct gw_config cfg;
    const char *argv[] = {"sluice"};
    cr_assert_eq(load(&cfg, 1, argv), GW_CONFIG_OK);
    cr_expect_eq(cfg.nlisten, 1);
    cr_expect_str_eq(cfg.listen[0], "127.0.0.1:4567");
    cr_expect_str_eq(cfg.data_dir, "./data");
    cr_expect_null(cfg.tls_cert);
    cr_expect_eq(cfg.max_body_bytes, 10u << 20, "must admit a 5 MiB PutRecords in base64");
    cr_expect_eq(cfg.h2_window, 16u << 20);
    cr_expect_eq(cfg.header_timeout_ms, 10000);
    cr_expect_str_eq(cfg.backend, "embedded");
    cr_expect_str_eq(cfg.nats_prefix, "sluice");
    cr_expect_eq(cfg.nats_replicas, 3);
    gw_config_clear(&cfg);
}

Test(config, flags_override_env_and_listen_repeats)
{
    setenv("SLUICE_LISTEN", "127.0.0.1:1,127.0.0.1:2", 1);
    setenv("SLUICE_DATA_DIR", "/env/dir", 1);
    setenv("SLUICE_MAX_BODY_BYTES", "2MiB", 1);
    struct gw_config cfg;
    const char *argv[] = {"sluice", "--data-dir=/flag/dir", "--listen", "[::1]:0",
                          "--listen", "127.0.0.1:0", "--idle-timeout", "1500ms"};
    cr_assert_eq(load(&cfg, 8, argv), GW_CONFIG_OK);
    cr_expect_str_eq(cfg.data_dir, "/flag/dir");
    cr_expect_eq(cfg.nlisten, 2, "flags replace the env list, then append");
    cr_expect_str_eq(cfg.listen[0], "[::1]:0");
    cr_expect_str_eq(cfg.listen[1], "127.0.0.1:0");
    cr_expect_eq(cfg.max_body_bytes, 2u << 20);
    cr_expect_eq(cfg.idle_timeout_ms, 1500);
    gw_config_clear(&cfg);
}

Test(config, env_listen_list)
{
    setenv("SLUICE_LISTEN", "127.0.0.1:1,127.0.0.1:2", 1);
    struct gw_config cfg;
    const char *argv[] = {"sluice"};
    cr_assert_eq(load(&cfg, 1, argv), GW_CONFIG_OK);
    cr_expect_eq(cfg.nlisten, 2);
    gw_config_clear(&cfg);
}

Test(config, rejects_bad_values)
{
    const char *cases[][3] = {
        {"sluice", "--max-body-bytes", "12"},         /* below the 1 KiB minimum */
        {"sluice", "--max-body-bytes", "lots"},
        {"sluice", "--idle-timeout", "-5s"},
        {"sluice", "--listen", "nohostport"},
        {"sluice", "--listen", "[::1]4567"},
        {"sluice", "--listen", "127.0.0.1:70000"},
        {"sluice", "--log-level", "chatty"},
        {"sluice", "--no-such-option", "x"},
        {"sluice", "--max-streams", "0"},
        {"sluice", "--tls-cert", "only-cert.pem"},    /* cert without key */
        {"sluice", "--auth", "n\nA"},                 /* found by fuzz_config */
        {"sluice", "--auth", "SIGV4"},
        {"sluice", "--backend", "nats"},
        {"sluice", "--nats-replicas", "0"},
        {"sluice", "--nats-replicas", "6"},
        {"sluice", "--nats-prefix", "a.b"},           /* a subject token separator */
        {"sluice", "--nats-prefix", ""},
        {"sluice", "--nats-prefix", "x23456789012345678901234567890123"}, /* 33 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gw_config cfg;
        cr_expect_eq(load(&cfg, 3, cases[i]), GW_CONFIG_ERROR, "%s %s", cases[i][1], cases[i][2]);
        gw_config_clear(&cfg);
    }
    struct gw_config cfg;
    const char *missing[] = {"sluice", "--listen"};
    cr_expect_eq(load(&cfg, 2, missing), GW_CONFIG_ERROR);
    gw_config_clear(&cfg);
}

Test(config, units)
{
    struct gw_config cfg;
    const char *argv[] = {"sluice", "--max-header-bytes", "16k", "--header-timeout", "2m",
                          "--drain-timeout", "250ms", "--h2-window", "1MiB"};
    cr_assert_eq(load(&cfg, 9, argv), GW_CONFIG_OK);
    cr_expect_eq(cfg.max_header_bytes, 16384);
    cr_expect_eq(cfg.header_timeout_ms, 120000);
    cr_expect_eq(cfg.drain_timeout_ms, 250);
    cr_expect_eq(cfg.h2_window, 1u << 20);
    gw_config_clear(&cfg);
}

/* Each number lands in its field at the field's own width: 32-bit fields next
 * to 64-bit ones keep their neighbours intact, sizes above 4 GiB survive, and
 * --print-config shows what was stored. */
Test(config, numbers_stored_at_field_width)
{
    struct gw_config cfg;
    const char *argv[] = {"sluice",
                          "--max-connections", "1048576",  /* uint32_t */
                          "--h2-window", "2147483647",     /* uint32_t, parsed as a size */
                          "--conn-buffer-bytes", "64MiB",  /* size_t */
                          "--conn-body-bytes", "16GiB",    /* size_t above 4 GiB */
                          "--max-body-memory", "1024GiB",
                          "--stream-delay", "3600s",       /* uint64_t */
                          "--write-limit", "on",           /* uint32_t flag */
                          "--require-auth", "off",
                          "--max-consumers", "10000",
                          "--consumer-rate", "16GiB",
                          "--print-config"};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len), *err = fopen("/dev/null", "w");
    cr_assert_eq(gw_config_load(&cfg, (int)(sizeof argv / sizeof *argv), (char **)argv, out, err),
                 GW_CONFIG_EXIT_OK);
    fclose(out);
    fclose(err);
    cr_expect_eq(cfg.max_connections, 1048576);
    cr_expect_eq(cfg.h2_window, 2147483647u);
    cr_expect_eq(cfg.conn_buffer_bytes, (size_t)64 << 20);
    cr_expect_eq(cfg.conn_body_bytes, (size_t)16 << 30);
    cr_expect_eq(cfg.max_body_memory, (size_t)1024 << 30);
    cr_expect_eq(cfg.stream_delay_ms, 3600000);
    cr_expect_eq(cfg.write_limit, 1);
    cr_expect_eq(cfg.require_auth, 0);
    cr_expect_eq(cfg.max_consumers, 10000);
    cr_expect_eq(cfg.consumer_rate, (size_t)16 << 30);
    cr_expect_eq(cfg.consumer_burst, (size_t)2 << 20, "untouched default");
    cr_expect_eq(cfg.shard_limit, 10000, "untouched default");
    const char *lines[] = {"max-connections = 1048576\n", "h2-window = 2147483647\n",
                           "conn-buffer-bytes = 67108864\n", "conn-body-bytes = 17179869184\n",
                           "max-body-memory = 1099511627776\n", "stream-delay = 3600000ms\n",
                           "write-limit = on\n", "require-auth = off\n",
                           "consumer-rate = 17179869184\n", "consumer-burst = 2097152\n"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        cr_expect(strstr(text, lines[i]) != NULL, "--print-config lacks %s", lines[i]);
    free(text);
    gw_config_clear(&cfg);
}

Test(config, consumer_rate_zero_lifts_the_bucket)
{
    struct gw_config cfg;
    const char *argv[] = {"sluice", "--consumer-rate", "0", "--print-config"};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len), *err = fopen("/dev/null", "w");
    cr_assert_eq(gw_config_load(&cfg, 4, (char **)argv, out, err), GW_CONFIG_EXIT_OK);
    fclose(out);
    fclose(err);
    cr_expect_eq(cfg.consumer_rate, 0);
    cr_expect(strstr(text, "consumer-rate = 0\n") != NULL, "%s", text);
    free(text);
    gw_config_clear(&cfg);
}

Test(config, tls_versions_and_tls_only)
{
    struct gw_config cfg;
    FILE *out = fopen("/dev/null", "w"), *err = fopen("/dev/null", "w");
    const char *bad_version[] = {"sluice", "--tls-min-version", "1.1"};
    cr_expect_eq(gw_config_load(&cfg, 3, (char **)bad_version, out, err), GW_CONFIG_ERROR);
    gw_config_clear(&cfg);
    const char *only_without_cert[] = {"sluice", "--tls-only", "on"};
    cr_expect_eq(gw_config_load(&cfg, 3, (char **)only_without_cert, out, err), GW_CONFIG_ERROR);
    gw_config_clear(&cfg);
    const char *good[] = {"sluice", "--tls-min-version", "1.3", "--tls-only", "on",
                          "--tls-cert", "c.pem", "--tls-key", "k.pem"};
    cr_assert_eq(gw_config_load(&cfg, 9, (char **)good, out, err), GW_CONFIG_OK);
    cr_expect_str_eq(cfg.tls_min_version, "1.3");
    cr_expect_eq(cfg.tls_only, 1);
    gw_config_clear(&cfg);
    fclose(out);
    fclose(err);
}

Test(config, help_and_print_exit_ok)
{
    struct gw_config cfg;
    const char *help[] = {"sluice", "--help"};
    cr_expect_eq(load(&cfg, 2, help), GW_CONFIG_EXIT_OK);
    gw_config_clear(&cfg);
    const char *print[] = {"sluice", "--print-config"};
    cr_expect_eq(load(&cfg, 2, print), GW_CONFIG_EXIT_OK);
    gw_config_clear(&cfg);
}

Test(config, split_hostport)
{
    char host[64];
    uint16_t port;
    cr_assert_eq(gw_config_split_hostport("[::1]:4567", host, sizeof host, &port), 0);
    cr_expect_str_eq(host, "::1");
    cr_expect_eq(port, 4567);
    cr_assert_eq(gw_config_split_hostport("localhost:0", host, sizeof host, &port), 0);
    cr_expect_str_eq(host, "localhost");
    cr_expect_eq(port, 0);
    cr_expect_eq(gw_config_split_hostport(":80", host, sizeof host, &port), -1);
    cr_expect_eq(gw_config_split_hostport("h:", host, sizeof host, &port), -1);
    cr_expect_eq(gw_config_split_hostport("[::1:80", host, sizeof host, &port), -1);
    cr_expect_eq(gw_config_split_hostport("h:80x", host, sizeof host, &port), -1);
}
