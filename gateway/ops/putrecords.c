/* putrecords.c - the general (jansson) decoder of PutRecord(s) requests, and
 * batch comparison. The fast path lives in putrecords_fast.c. See
 * putrecords.h for the contract between the two. */
#include "putrecords.h"

#include <stdio.h>
#include <string.h>

#include "json.h"


/* Reads one record's members from "o"; "prefix" is "" for PutRecord and
 * "records.N." for entries. */
static int parse_entry(struct gw_valid *v, struct gw_req *req, json_t *o, const char *prefix,
                       struct gw_put_entry *e)
{
    char path[96];
    snprintf(path, sizeof path, "%sdata", prefix);
    if (gw_v_blob(v, req, o, "Data", path, GW_V_REQUIRED, GW_PUT_MAX_DATA, &e->data, &e->data_len,
                  NULL) != 0)
        return -1;
    snprintf(path, sizeof path, "%spartitionKey", prefix);
    if (gw_v_str(v, o, "PartitionKey", path, GW_V_REQUIRED, 1, GW_PUT_MAX_PARTITION_KEY, NULL,
                 NULL, &e->pk) != 0)
        return -1;
    e->pk_len = e->pk ? strlen(e->pk) : 0;
    snprintf(path, sizeof path, "%sexplicitHashKey", prefix);
    if (gw_v_str(v, o, "ExplicitHashKey", path, 0, 0, SIZE_MAX, "0|([1-9]\\d{0,38})",
                 gw_match_hashkey, &e->ehk) != 0)
        return -1;
    return 0;
}

int gw_put_parse_tree(struct gw_req *req, json_t *root, bool batch, struct gw_put_batch *out,
                      struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    memset(out, 0, sizeof *out);
    if (gw_v_str(&v, root, "StreamName", "streamName", 0, 1, 128, "[a-zA-Z0-9_.-]+",
                 gw_match_name, &out->stream_name) != 0 ||
        gw_v_str(&v, root, "StreamARN", "streamARN", 0, 1, 2048,
                 "arn:aws.*:kinesis:.*:\\d{12}:stream/.+", gw_match_stream_arn,
                 &out->stream_arn) != 0)
        return -1;
    if (!batch) {
        out->entries = gw_req_alloc(req, sizeof *out->entries);
        memset(out->entries, 0, sizeof *out->entries);
        out->n = 1;
        if (parse_entry(&v, req, root, "", &out->entries[0]) != 0)
            return -1;
        if (gw_v_str(&v, root, "SequenceNumberForOrdering", "sequenceNumberForOrdering", 0, 0,
                     SIZE_MAX, "0|([1-9]\\d{0,128})", gw_match_seqnum,
                     &out->seq_for_ordering) != 0)
            return -1;
        return gw_valid_done(&v);
    }
    json_t *records;
    if (gw_v_array(&v, root, "Records", "records", GW_V_REQUIRED, 1, GW_PUT_MAX_RECORDS,
                   &records) != 0)
        return -1;
    if (records) {
        size_t n = json_array_size(records);
        out->entries = gw_req_alloc(req, n * sizeof *out->entries);
        memset(out->entries, 0, n * sizeof *out->entries);
        out->n = n;
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_array_get(records, i);
            if (!json_is_object(o))
                return gw_error_set(err, GW_ERR_SERIALIZATION,
                                    "Records[%zu] must be an object", i);
            char prefix[48];
            snprintf(prefix, sizeof prefix, "records.%zu.member.", i + 1);
            if (parse_entry(&v, req, o, prefix, &out->entries[i]) != 0)
                return -1;
        }
    }
    if (gw_valid_done(&v) != 0)
        return -1;
    return gw_put_check_sizes(out, batch, GW_PUT_MAX_DATA, err);
}

int gw_put_check_sizes(const struct gw_put_batch *b, bool batch, size_t max_data,
                       struct gw_error *err)
{
    struct gw_valid v;
    gw_valid_init(&v, err);
    size_t total = 0;
    for (size_t i = 0; i < b->n; i++) {
        const struct gw_put_entry *e = &b->entries[i];
        total += e->data_len + e->pk_len;
        if (e->data_len > max_data) {
            /* The service reports blobs the way its Java ByteBuffer prints. */
            char text[96], path[64];
            snprintf(text, sizeof text, "java.nio.HeapByteBuffer[pos=0 lim=%zu cap=%zu]",
                     e->data_len, e->data_len);
            if (batch)
                snprintf(path, sizeof path, "records.%zu.member.data", i + 1);
            else
                snprintf(path, sizeof path, "data");
            gw_valid_add(&v, text, path, "have length less than or equal to %zu", max_data);
        }
    }
    if (gw_valid_done(&v) != 0)
        return -1;
    /* A partition key is at most 256 characters, 1 KiB of UTF-8. */
    size_t limit = max_data + 1024 > GW_PUT_DEFAULT_BATCH_BYTES ? max_data + 1024
                                                                : GW_PUT_DEFAULT_BATCH_BYTES;
    if (total > limit)
        return gw_error_set(err, GW_ERR_INVALID_ARGUMENT,
                            "Records size exceeds %zu MB limit (%zu bytes of data and partition "
                            "keys)",
                            limit >> 20, total);
    return 0;
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool gw_put_batch_equal(const struct gw_put_batch *a, const struct gw_put_batch *b)
{
    if (!str_eq(a->stream_name, b->stream_name) || !str_eq(a->stream_arn, b->stream_arn) ||
        !str_eq(a->seq_for_ordering, b->seq_for_ordering) || a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct gw_put_entry *x = &a->entries[i], *y = &b->entries[i];
        if (x->data_len != y->data_len || (x->data_len && memcmp(x->data, y->data, x->data_len)) ||
            x->pk_len != y->pk_len || memcmp(x->pk, y->pk, x->pk_len) || !str_eq(x->ehk, y->ehk))
            return false;
    }
    return true;
}
