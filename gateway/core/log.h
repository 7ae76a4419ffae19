/* log.h - leveled JSON-lines logging on stderr.
 *
 * One line per event: {"ts":"...","level":"info","event":"listening",...}.
 * The level is checked before anything is formatted (Redis's serverLog), so
 * debug lines cost a comparison when off. Never log payloads or credentials. */
#ifndef SLUICE_GW_LOG_H
#define SLUICE_GW_LOG_H

enum gw_log_level { GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR };

extern enum gw_log_level gw_log_min;

/* Parses "debug", "info", "warn", "error"; returns -1 on anything else. */
int gw_log_level_parse(const char *s, enum gw_log_level *out);
const char *gw_log_level_name(enum gw_log_level l);

/* gw_log(level, event, fmt, ...): "event" is a short machine-readable name,
 * the printf-style rest becomes the "msg" field. */
#define gw_log(level, event, ...)                                              \
    do {                                                                       \
        if ((level) >= gw_log_min)                                             \
            gw_log_write((level), (event), __VA_ARGS__);                       \
    } while (0)

void gw_log_write(enum gw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes a line whose extra fields are string pairs: key, value, ..., NULL.
 * Used for machine-read lines such as the "listening" line tests parse. */
void gw_log_fields(enum gw_log_level level, const char *event, ...)
    __attribute__((sentinel));

#endif
