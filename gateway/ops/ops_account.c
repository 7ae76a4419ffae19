/* ops_account.c - DescribeAccountSettings and UpdateAccountSettings.
 *
 * The only account setting in the model is the minimum throughput billing
 * commitment. There is no bill here, so Sluice keeps the commitment as a
 * record (persisted in the store's catalog) with the life cycle the model
 * describes: ENABLED from the moment it is turned on, which may not end
 * before EarliestAllowedEndAt (24 hours later); turned off before then it
 * stays ENABLED_UNTIL_EARLIEST_ALLOWED_END, then DISABLED
 * (docs/protocol.md §4).
 *
 * Upstream: router.c (Kinesis door). Downstream: store_account_settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "ops.h"

#define COMMITMENT_MIN_MS (24 * 3600 * 1000LL)

static const char *const in_states[] = {"ENABLED", "DISABLED", NULL};

struct commitment {
    char status[48];
    int64_t started_ms, ended_ms, earliest_end_ms; /* 0: absent */
};

static struct commitment load(struct gw_app *app, int64_t now)
{
    struct commitment c = {.status = "DISABLED"};
    const char *text = store_account_settings(app->store);
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    const char *st = json_string_value(json_object_get(o, "status"));
    if (st && strlen(st) < sizeof c.status) {
        snprintf(c.status, sizeof c.status, "%s", st);
        c.started_ms = json_integer_value(json_object_get(o, "started_ms"));
        c.ended_ms = json_integer_value(json_object_get(o, "ended_ms"));
        c.earliest_end_ms = json_integer_value(json_object_get(o, "earliest_end_ms"));
    }
    json_decref(o);
    /* A commitment set to end reaches its end by the clock alone. */
    if (strcmp(c.status, "ENABLED_UNTIL_EARLIEST_ALLOWED_END") == 0 && now >= c.earliest_end_ms)
        snprintf(c.status, sizeof c.status, "DISABLED");
    return c;
}

static json_t *commitment_json(const struct commitment *c)
{
    json_t *o = json_pack("{s:s}", "Status", c->status);
    if (c->started_ms)
        json_object_set_new(o, "StartedAt", gw_json_time(c->started_ms));
    if (c->ended_ms)
        json_object_set_new(o, "EndedAt", gw_json_time(c->ended_ms));
    if (c->earliest_end_ms)
        json_object_set_new(o, "EarliestAllowedEndAt", gw_json_time(c->earliest_end_ms));
    return o;
}

int op_describe_account_settings(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                                 struct gw_error *err)
{
    struct commitment c = load(app, gw_app_now_ms());
    *out = json_pack("{s:o}", "MinimumThroughputBillingCommitment", commitment_json(&c));
    return 0;
}

int op_update_account_settings(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                               struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    json_t *mtbc;
    int want = -1;
    if (gw_v_object(&v, body, "MinimumThroughputBillingCommitment",
                    "minimumThroughputBillingCommitment", GW_V_REQUIRED, &mtbc) != 0 ||
        (mtbc && gw_v_enum(&v, mtbc, "Status", "minimumThroughputBillingCommitment.status",
                           GW_V_REQUIRED, in_states, &want) != 0) ||
        gw_valid_done(&v) != 0)
        return -1;
    /* An account-wide change is not for a key kept to some streams. */
    if (gw_op_caller_restricted())
        return gw_error_set(err, GW_ERR_ACCESS_DENIED,
                            "A key limited to some streams in --credentials may not change "
                            "account settings.");
    int64_t now = gw_app_now_ms();
    struct commitment c = load(app, now);
    bool on = strcmp(c.status, "ENABLED") == 0 ||
              strcmp(c.status, "ENABLED_UNTIL_EARLIEST_ALLOWED_END") == 0;
    if (want == 0) {
        if (strcmp(c.status, "ENABLED") != 0) {
            /* A new commitment (or one set to end, renewed from now). */
            c = (struct commitment){.status = "ENABLED", .started_ms = on ? c.started_ms : now};
            c.earliest_end_ms = c.started_ms + COMMITMENT_MIN_MS;
            if (c.earliest_end_ms < now)
                c.earliest_end_ms = now;
        }
    } else if (on) {
        if (now < c.earliest_end_ms) {
            snprintf(c.status, sizeof c.status, "ENABLED_UNTIL_EARLIEST_ALLOWED_END");
            c.ended_ms = c.earliest_end_ms;
        } else {
            snprintf(c.status, sizeof c.status, "DISABLED");
            c.ended_ms = now;
        }
    }
    json_t *rec = json_pack("{s:s, s:I, s:I, s:I}", "status", c.status, "started_ms",
                            (json_int_t)c.started_ms, "ended_ms", (json_int_t)c.ended_ms,
                            "earliest_end_ms", (json_int_t)c.earliest_end_ms);
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    struct store_err se = {0};
    int rc = store_account_settings_set(app->store, text, &se);
    free(text);
    if (rc != 0)
        return gw_op_store_error(&se, err);
    gw_log(GW_LOG_INFO, "account_settings", "minimum throughput billing commitment: %s",
           c.status);
    *out = json_pack("{s:o}", "MinimumThroughputBillingCommitment", commitment_json(&c));
    return 0;
}
