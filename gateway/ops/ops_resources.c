/* ops_resources.c - what is attached to a stream or a consumer: tags
 * (AddTagsToStream, RemoveTagsFromStream, ListTagsForStream; TagResource,
 * UntagResource, ListTagsForResource on stream and consumer ARNs) and
 * resource policies (PutResourcePolicy, GetResourcePolicy,
 * DeleteResourcePolicy; stored, not enforced: docs/protocol.md).
 *
 * Upstream: router.c (the Kinesis door). Downstream: the store catalog
 * (store.h: stream and consumer tags, policies). Validation and messages as
 * in ops_streams.c: the whole request first, then resources, then the
 * change, which the reply waits to be durable (gw_op_run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "mem.h"
#include "ops.h"

/* ---- tags ------------------------------------------------------------------------------- */

/* Tag characters the service allows: Unicode letters and digits, white
 * space, and _ . / = + - % @ (non-ASCII UTF-8 is taken as letters). */
static bool tag_chars_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80 || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr(" \t\n\r_./=+-%@:", *p))
            continue;
        return false;
    }
    return true;
}

static size_t chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

int gw_op_tags_validate(struct gw_valid *v, json_t *tags, struct gw_error *err)
{
    size_t n = json_object_size(tags);
    if (n < 1 || n > 200) {
        char text[32];
        snprintf(text, sizeof text, "{%zu entries}", n);
        gw_valid_add(v, text, "tags", "have length %s", n < 1 ? "greater than or equal to 1"
                                                            : "less than or equal to 200");
        return gw_valid_done(v);
    }
    const char *k;
    json_t *val;
    json_object_foreach(tags, k, val) {
        if (!json_is_string(val) && !json_is_null(val))
            return gw_error_set(err, GW_ERR_SERIALIZATION, "Tag values must be strings");
        const char *s = json_is_string(val) ? json_string_value(val) : "";
        if (chars(k) < 1 || chars(k) > 128)
            gw_valid_add(v, k, "tags", "have key length between 1 and 128");
        if (chars(s) > 256)
            gw_valid_add(v, s, "tags", "have value length less than or equal to 256");
        if (!tag_chars_ok(k) || !tag_chars_ok(s))
            return gw_valid_done(v) != 0
                       ? -1
                       : gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                                      "Some tags contain invalid characters. Valid characters: "
                                      "Unicode letters, digits, white space, _ . / = + - %% @.");
    }
    return gw_valid_done(v);
}

int op_add_tags(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn;
    json_t *tags;
    *out = NULL;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_object(&v, body, "Tags", "tags", GW_V_REQUIRED, &tags) != 0 ||
        gw_valid_done(&v) != 0 || gw_op_tags_validate(&v, tags, err) != 0)
        return -1;
    struct store_stream *s;
    if (gw_op_stream_lookup(app, name, arn, &s, err) != 0 || gw_op_stream_active(app, s, err) != 0)
        return -1;
    /* The limit counts tags after the change: overwritten keys do not add. */
    size_t n = json_object_size(tags), added = 0;
    const char *k;
    json_t *val;
    struct store_tag *t = xcalloc(n, sizeof *t);
    size_t i = 0;
    json_object_foreach(tags, k, val) {
        t[i].key = k;
        t[i].value = json_is_string(val) ? json_string_value(val) : "";
        i++;
    }
    size_t have = store_stream_tag_count(s);
    struct store_tag *cur = xcalloc(have ? have : 1, sizeof *cur);
    store_stream_tags_list(s, NULL, cur, have);
    for (i = 0; i < n; i++) {
        bool known = false;
        for (size_t j = 0; j < have && !known; j++)
            known = strcmp(cur[j].key, t[i].key) == 0;
        added += !known;
    }
    free(cur);
    if (have + added > STORE_MAX_TAGS) {
        free(t);
        struct store_stream_info info;
        store_stream_info(s, &info);
        return gw_error_set(err, GW_ERR_LIMIT_EXCEEDED,
                            "Failed to add tags to stream %s under account %s because a given "
                            "stream cannot have more than %d tags.",
                            info.name, app->cfg->account, STORE_MAX_TAGS);
    }
    struct store_err se = {0};
    int rc = store_stream_tags_add(s, t, n, &se);
    free(t);
    return rc == 0 ? 0 : gw_op_store_error(&se, err);
}


/* TagKeys (RemoveTagsFromStream, UntagResource): 1..50 strings of 1..128
 * characters, each violation reported as the service does. */
static int tag_keys(struct gw_valid *v, json_t *body, json_t **keys, struct gw_error *err)
{
    if (gw_v_array(v, body, "TagKeys", "tagKeys", GW_V_REQUIRED, 1, 50, keys) != 0)
        return -1;
    size_t n = *keys ? json_array_size(*keys) : 0;
    for (size_t i = 0; i < n; i++) {
        json_t *k = json_array_get(*keys, i);
        if (!json_is_string(k))
            return gw_error_set(err, GW_ERR_SERIALIZATION, "TagKeys must be strings");
        size_t c = chars(json_string_value(k));
        if (c < 1 || c > 128) {
            char path[48];
            snprintf(path, sizeof path, "tagKeys.%zu.member", i + 1);
            gw_valid_add(v, json_string_value(k), path, "have length %s",
                         c < 1 ? "greater than or equal to 1" : "less than or equal to 128");
        }
    }
    return 0;
}

int op_remove_tags(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                   struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn;
    json_t *keys;
    *out = NULL;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        tag_keys(&v, body, &keys, err) != 0)
        return -1;
    if (gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    if (gw_op_stream_lookup(app, name, arn, &s, err) != 0 || gw_op_stream_active(app, s, err) != 0)
        return -1;
    size_t n = json_array_size(keys);
    const char **k = xcalloc(n ? n : 1, sizeof *k);
    for (size_t i = 0; i < n; i++)
        k[i] = json_string_value(json_array_get(keys, i));
    store_stream_tags_remove(s, k, n);
    free(k);
    return 0;
}

int op_list_tags(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                 struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *name, *arn, *start;
    int64_t limit = 50;
    if (gw_op_stream_fields(&v, body, true, &name, &arn) != 0 ||
        gw_v_str(&v, body, "ExclusiveStartTagKey", "exclusiveStartTagKey", 0, 1, 128, NULL, NULL,
                 &start) != 0 ||
        gw_v_int(&v, body, "Limit", "limit", 0, 1, 50, &limit, NULL) != 0 ||
        gw_valid_done(&v) != 0)
        return -1;
    struct store_stream *s;
    if (gw_op_stream_lookup(app, name, arn, &s, err) != 0)
        return -1;
    struct store_tag t[STORE_MAX_TAGS + 1];
    size_t n = store_stream_tags_list(s, start, t, (size_t)limit + 1);
    bool more = n > (size_t)limit;
    if (more)
        n = (size_t)limit;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "Key", t[i].key, "Value",
                                             t[i].value ? t[i].value : ""));
    *out = json_pack("{s:o, s:b}", "Tags", arr, "HasMoreTags", more);
    return 0;
}

/* ---- TagResource / UntagResource / ListTagsForResource ------------------------------------ */

/* A taggable resource: a stream, or one of its consumers ("consumer" set). */
struct resource {
    struct store_stream *stream;
    char consumer[STORE_STREAM_NAME_MAX + 1]; /* "" for the stream itself */
};

/* The model's pattern for ResourceARN, arn:aws.*:kinesis:.*:\d{12}:.+ */
static bool match_resource_arn(const char *s)
{
    if (strncmp(s, "arn:aws", 7) != 0)
        return false;
    const char *k = strstr(s, ":kinesis:");
    if (!k)
        return false;
    /* Some ":" + 12 digits + ":" + at least one character after "kinesis:". */
    for (const char *p = k + 8; (p = strchr(p, ':')) != NULL; p++) {
        size_t d = strspn(p + 1, "0123456789");
        if (d == 12 && p[13] == ':' && p[14] != '\0')
            return true;
    }
    return false;
}

/* Reads and resolves ResourceARN: a stream ARN or a consumer ARN. */
static int resource_from_body(struct gw_app *app, struct gw_valid *v, json_t *body,
                              struct resource *r, struct gw_error *err)
{
    const char *arn;
    if (gw_v_str(v, body, "ResourceARN", "resourceARN", GW_V_REQUIRED, 1, 2048,
                 "arn:aws.*:kinesis:.*:\\d{12}:.+", match_resource_arn, &arn) != 0)
        return -1;
    /* StreamId (accounts with stream ids) names the same stream: ignored. */
    const char *ignored;
    if (gw_v_str(v, body, "StreamId", "streamId", 0, 1, 24, NULL, NULL, &ignored) != 0 ||
        gw_valid_done(v) != 0)
        return -1;
    r->consumer[0] = '\0';
    if (gw_match_consumer_arn(arn)) {
        struct store_consumer_info ci;
        if (gw_op_permitted_arn(app, arn, err) != 0)
            return -1;
        if (store_consumer_lookup_arn(app->store, arn, &r->stream, &ci, NULL) != 0)
            return gw_error_set(err, GW_ERR_RESOURCE_NOT_FOUND, "Consumer %s not found.", arn);
        snprintf(r->consumer, sizeof r->consumer, "%s", ci.name);
        return 0;
    }
    if (gw_match_stream_arn(arn))
        return gw_op_stream_lookup(app, NULL, arn, &r->stream, err);
    return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                        "ResourceARN %s is neither a stream nor a consumer ARN.", arn);
}

/* The resource's tags (borrowed until the next catalog change). */
static size_t resource_tags(const struct resource *r, struct store_tag *out, size_t max)
{
    if (!r->consumer[0])
        return store_stream_tags_list(r->stream, NULL, out, max);
    size_t n = 0;
    store_consumer_tags_list(r->stream, r->consumer, NULL, out, max, &n, NULL);
    return n;
}

int op_tag_resource(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                    struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    json_t *tags;
    struct resource r;
    *out = NULL;
    if (gw_v_object(&v, body, "Tags", "tags", GW_V_REQUIRED, &tags) != 0 ||
        resource_from_body(app, &v, body, &r, err) != 0 || gw_op_tags_validate(&v, tags, err) != 0)
        return -1;
    if (gw_op_stream_active(app, r.stream, err) != 0)
        return -1;
    size_t n = json_object_size(tags), i = 0;
    struct store_tag *t = xcalloc(n, sizeof *t);
    const char *k;
    json_t *val;
    json_object_foreach(tags, k, val) {
        t[i].key = k;
        t[i].value = json_is_string(val) ? json_string_value(val) : "";
        i++;
    }
    struct store_err se = {0};
    int rc = r.consumer[0] ? store_consumer_tags_add(r.stream, r.consumer, t, n, &se)
                           : store_stream_tags_add(r.stream, t, n, &se);
    free(t);
    if (rc == STORE_ELIMIT)
        return gw_error_set(err, GW_ERR_LIMIT_EXCEEDED,
                            "Failed to add tags to %s because a resource cannot have more "
                            "than %d tags.",
                            json_string_value(json_object_get(body, "ResourceARN")),
                            STORE_MAX_TAGS);
    return rc == 0 ? 0 : gw_op_store_error(&se, err);
}

int op_untag_resource(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                      struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    json_t *keys;
    struct resource r;
    *out = NULL;
    if (tag_keys(&v, body, &keys, err) != 0)
        return -1;
    if (resource_from_body(app, &v, body, &r, err) != 0 ||
        gw_op_stream_active(app, r.stream, err) != 0)
        return -1;
    size_t n = json_array_size(keys);
    const char **k = xcalloc(n ? n : 1, sizeof *k);
    for (size_t i = 0; i < n; i++)
        k[i] = json_string_value(json_array_get(keys, i));
    struct store_err se = {0};
    int rc = 0;
    if (r.consumer[0])
        rc = store_consumer_tags_remove(r.stream, r.consumer, k, n, &se);
    else
        store_stream_tags_remove(r.stream, k, n);
    free(k);
    return rc == 0 ? 0 : gw_op_store_error(&se, err);
}

int op_list_tags_for_resource(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                              struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    struct resource r;
    if (resource_from_body(app, &v, body, &r, err) != 0)
        return -1;
    struct store_tag t[STORE_MAX_TAGS];
    size_t n = resource_tags(&r, t, STORE_MAX_TAGS);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "Key", t[i].key, "Value",
                                             t[i].value ? t[i].value : ""));
    *out = json_pack("{s:o}", "Tags", arr);
    return 0;
}

/* ---- PutResourcePolicy / GetResourcePolicy / DeleteResourcePolicy -------------------------- */

/* A policy is stored and returned, not enforced (docs/protocol.md): it must
 * be a JSON object, as IAM's policy grammar begins. */
int op_put_resource_policy(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                           struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    const char *policy;
    struct resource r;
    *out = NULL;
    if (gw_v_str(&v, body, "Policy", "policy", GW_V_REQUIRED, 1, STORE_POLICY_MAX, NULL, NULL,
                 &policy) != 0 ||
        resource_from_body(app, &v, body, &r, err) != 0)
        return -1;
    json_error_t je;
    json_t *doc = json_loads(policy, JSON_REJECT_DUPLICATES, &je);
    bool parsed = doc != NULL, object = json_is_object(doc);
    json_decref(doc);
    if (!object)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Policy is not a valid JSON policy document: %s",
                            parsed ? "not a JSON object" : je.text);
    struct store_err se = {0};
    if (store_resource_policy_set(r.stream, r.consumer[0] ? r.consumer : NULL, policy, &se) != 0)
        return gw_op_store_error(&se, err);
    return 0;
}

int op_get_resource_policy(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                           struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    struct resource r;
    if (resource_from_body(app, &v, body, &r, err) != 0)
        return -1;
    const char *p = store_resource_policy_get(r.stream, r.consumer[0] ? r.consumer : NULL);
    /* No policy attached: an empty document, so Policy is always a string. */
    *out = json_pack("{s:s}", "Policy", p ? p : "{}");
    return 0;
}

int op_delete_resource_policy(struct gw_app *app, struct gw_req *req, json_t *body, json_t **out,
                              struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    struct resource r;
    *out = NULL;
    if (resource_from_body(app, &v, body, &r, err) != 0)
        return -1;
    struct store_err se = {0};
    if (store_resource_policy_set(r.stream, r.consumer[0] ? r.consumer : NULL, NULL, &se) != 0)
        return gw_op_store_error(&se, err);
    return 0;
}
