/* fuzz_putrecords.c - differential libFuzzer target for the PutRecord(s)
 * decoders: gateway/putrecords_fast.c against the general path
 * (gw_body_decode, i.e. json_loadb with JSON_REJECT_DUPLICATES and an object
 * root, then gw_put_parse_tree).
 *
 * Input: a request body. For both PutRecord and PutRecords, invariants:
 *   - the fast path answers 0 (fall back) or 1 (decoded);
 *   - when it answers 1, the general path accepts the same bytes too, and
 *     both batches are equal (gw_put_batch_equal), and the fast batch is
 *     self-consistent (pk_len == strlen(pk), limits respected).
 * The fast path may fall back on valid bodies; it may never accept one the
 * general path rejects, nor decode it differently. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "putrecords.h"
#include "request-internal.h"

/* Always on, unlike assert() (release builds define NDEBUG). */
#include "fuzz_check.h"

static void check_batch(const struct gw_put_batch *b, bool batch)
{
    CHECK(b->n >= 1 && b->n <= (batch ? GW_PUT_MAX_RECORDS : 1));
    CHECK(batch || b->seq_for_ordering == NULL || gw_match_seqnum(b->seq_for_ordering));
    CHECK(!batch || b->seq_for_ordering == NULL);
    size_t total = 0;
    for (size_t i = 0; i < b->n; i++) {
        const struct gw_put_entry *e = &b->entries[i];
        CHECK(e->pk && strlen(e->pk) == e->pk_len && e->pk_len >= 1);
        CHECK(e->data_len <= GW_PUT_MAX_DATA && (e->data || e->data_len == 0));
        CHECK(!e->ehk || gw_match_hashkey(e->ehk));
        total += e->data_len + e->pk_len;
    }
    CHECK(total <= GW_PUT_MAX_BATCH_BYTES);
}

static void one_mode(const uint8_t *in, size_t size, bool batch)
{
    struct gw_req *req = gw_req_new(GW_PROTO_H2, false, 0, NULL, NULL, NULL);
    if (size)
        CHECK(gw_req_body_append(req, in, size, SIZE_MAX) == 0);
    struct gw_put_batch fast;
    int rc = gw_put_parse_fast(req, in, size, batch, &fast);
    CHECK(rc == 0 || rc == 1);
    if (rc == 1) {
        check_batch(&fast, batch);
        struct gw_error err;
        gw_error_clear(&err);
        json_t *root = NULL;
        CHECK(gw_body_decode(req, &root, &err) == 0);
        struct gw_put_batch slow;
        int grc = gw_put_parse_tree(req, root, batch, &slow, &err);
        if (grc != 0)
            fprintf(stderr, "general path: %s: %s\n", gw_error_name(err.type), err.message);
        CHECK(grc == 0);
        CHECK(gw_put_batch_equal(&fast, &slow));
        json_decref(root);
    }
    gw_req_free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copy so over-reads trip ASan even under replay. */
    uint8_t *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    one_mode(in, size, false);
    one_mode(in, size, true);
    free(in);
    return 0;
}
