/* test_kinesis.c - the Kinesis door end to end with curl: CBOR round trips of
 * every operation (bodies built and answers parsed with libcbor through
 * cbor.c, as the Java SDKs send them), the REST door, durability across a
 * clean restart and across SIGKILL with --durability always. The AWS SDK
 * suite (tests/sdk) covers the JSON door operation by operation. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cbor.h"
#include "harness.h"

static struct srv s;

static void start(void)
{
    memset(&s, 0, sizeof s);
    const char *args[] = {"--durability", "always", NULL};
    srv_start(&s, args);
}

static void stop(void)
{
    if (s.pid > 0)
        cr_expect_eq(srv_stop(&s, 15000), 0);
}

TestSuite(kinesis, .init = start, .fini = stop, .timeout = 180);

/* Sends "req" (a JSON text) to the Kinesis door as CBOR; returns the decoded
 * answer (new) and the HTTP status. */
static json_t *cbor_call(const char *op, const char *req_json, int *status)
{
    json_error_t je;
    json_t *req = json_loads(req_json, 0, &je);
    cr_assert_not_null(req, "bad test JSON: %s", je.text);
    uint8_t *buf;
    size_t n;
    char why[200];
    struct gw_cbor_opts o = {.kind = gw_cbor_kinesis_kind};
    cr_assert_eq(gw_cbor_encode(req, &o, &buf, &n, why, sizeof why), 0, "%s", why);
    json_decref(req);
    char in[400], out[400];
    snprintf(in, sizeof in, "%s/req.cbor", s.dir);
    snprintf(out, sizeof out, "%s/resp.cbor", s.dir);
    FILE *f = fopen(in, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    free(buf);
    char code[64], hdrs[400];
    snprintf(hdrs, sizeof hdrs, "%s/resp.hdrs", s.dir);
    cr_assert_eq(run_cmd(code, sizeof code,
                         "curl -s -o %s -D %s -w '%%{http_code}' -X POST --data-binary @%s "
                         "-H 'Content-Type: application/x-amz-cbor-1.1' "
                         "-H 'X-Amz-Target: Kinesis_20131202.%s' http://127.0.0.1:%d/",
                         out, hdrs, in, op, s.port),
                 0);
    *status = atoi(code);
    char ct[256];
    run_cmd(ct, sizeof ct, "grep -i '^content-type' %s", hdrs);
    cr_expect(strstr(ct, "application/x-amz-cbor-1.1") != NULL, "%s answered %s", op, ct);
    f = fopen(out, "rb");
    uint8_t body[1 << 16];
    size_t len = f ? fread(body, 1, sizeof body, f) : 0;
    if (f)
        fclose(f);
    if (len == 0)
        return json_object();
    json_t *ans;
    cr_assert_eq(gw_cbor_decode(body, len, &o, &ans, why, sizeof why), 0, "%s: %s", op, why);
    return ans;
}

static json_t *cbor_ok(const char *op, const char *req)
{
    int status;
    json_t *ans = cbor_call(op, req, &status);
    char *dump = json_dumps(ans, 0);
    cr_assert_eq(status, 200, "%s -> %d %s", op, status, dump);
    free(dump);
    return ans;
}

static const char *str(json_t *o, const char *path)
{
    json_t *j = json_object_get(o, path);
    cr_assert(json_is_string(j), "missing %s", path);
    return json_string_value(j);
}

Test(kinesis, cbor_every_operation)
{
    json_decref(cbor_ok("CreateStream", "{\"StreamName\":\"c1\",\"ShardCount\":2}"));
    json_t *d = cbor_ok("DescribeStreamSummary", "{\"StreamName\":\"c1\"}");
    json_t *sum = json_object_get(d, "StreamDescriptionSummary");
    cr_expect_str_eq(str(sum, "StreamStatus"), "ACTIVE");
    /* Timestamps come back as CBOR tag 1 + epoch ms; cbor.c turns them into
     * seconds, which must be now-ish. */
    cr_expect_gt(json_number_value(json_object_get(sum, "StreamCreationTimestamp")), 1.6e9);
    json_decref(d);
    json_decref(cbor_ok("DescribeStream", "{\"StreamName\":\"c1\",\"Limit\":1}"));
    json_decref(cbor_ok("ListStreams", "{}"));
    json_decref(cbor_ok("ListShards", "{\"StreamName\":\"c1\"}"));
    json_decref(cbor_ok("DescribeLimits", "{}"));
    json_decref(cbor_ok("AddTagsToStream", "{\"StreamName\":\"c1\",\"Tags\":{\"team\":\"a\"}}"));
    json_t *t = cbor_ok("ListTagsForStream", "{\"StreamName\":\"c1\"}");
    cr_expect_eq(json_array_size(json_object_get(t, "Tags")), 1);
    json_decref(t);
    json_decref(cbor_ok("RemoveTagsFromStream", "{\"StreamName\":\"c1\",\"TagKeys\":[\"team\"]}"));
    json_decref(cbor_ok("IncreaseStreamRetentionPeriod",
                        "{\"StreamName\":\"c1\",\"RetentionPeriodHours\":48}"));
    json_decref(cbor_ok("DecreaseStreamRetentionPeriod",
                        "{\"StreamName\":\"c1\",\"RetentionPeriodHours\":24}"));
    /* Data travels as a CBOR byte string (the JSON tree holds base64). */
    json_t *p = cbor_ok("PutRecord",
                        "{\"StreamName\":\"c1\",\"Data\":\"AAEC/w==\",\"PartitionKey\":\"a\"}");
    char shard[32];
    snprintf(shard, sizeof shard, "%s", str(p, "ShardId"));
    json_decref(p);
    json_t *pr = cbor_ok("PutRecords", "{\"StreamName\":\"c1\",\"Records\":["
                                       "{\"Data\":\"aGk=\",\"PartitionKey\":\"a\"}]}");
    cr_expect_eq(json_integer_value(json_object_get(pr, "FailedRecordCount")), 0);
    json_decref(pr);
    char req[256];
    snprintf(req, sizeof req,
             "{\"StreamName\":\"c1\",\"ShardId\":\"%s\",\"ShardIteratorType\":\"TRIM_HORIZON\"}",
             shard);
    json_t *it = cbor_ok("GetShardIterator", req);
    char body[1024];
    snprintf(body, sizeof body, "{\"ShardIterator\":\"%s\"}", str(it, "ShardIterator"));
    json_decref(it);
    json_t *gr = cbor_ok("GetRecords", body);
    json_t *recs = json_object_get(gr, "Records");
    cr_assert_eq(json_array_size(recs), 2);
    cr_expect_str_eq(str(json_array_get(recs, 0), "Data"), "AAEC/w==");
    cr_expect_str_eq(str(json_array_get(recs, 1), "Data"), "aGk=");
    cr_expect_gt(json_number_value(json_object_get(json_array_get(recs, 0),
                                                   "ApproximateArrivalTimestamp")),
                 1.6e9);
    json_decref(gr);
    json_decref(cbor_ok("DeleteStream", "{\"StreamName\":\"c1\"}"));
}

Test(kinesis, cbor_errors_are_cbor)
{
    int status;
    json_t *e = cbor_call("DescribeStreamSummary", "{\"StreamName\":\"nope\"}", &status);
    cr_expect_eq(status, 400);
    cr_expect_str_eq(str(e, "__type"), "ResourceNotFoundException");
    json_decref(e);
    e = cbor_call("NoSuchOp", "{}", &status);
    cr_expect_eq(status, 400);
    cr_expect_str_eq(str(e, "__type"), "UnknownOperationException");
    json_decref(e);
    e = cbor_call("CreateStream", "{\"StreamName\":\"bad name\",\"ShardCount\":1}", &status);
    cr_expect_str_eq(str(e, "__type"), "ValidationException");
    json_decref(e);
    /* Malformed CBOR. */
    char path[400], out[512];
    snprintf(path, sizeof path, "%s/junk.cbor", s.dir);
    FILE *f = fopen(path, "wb");
    fwrite("\xbf\x61", 1, 2, f);
    fclose(f);
    run_cmd(out, sizeof out,
            "curl -s -w ' %%{http_code}' -X POST --data-binary @%s "
            "-H 'Content-Type: application/x-amz-cbor-1.1' "
            "-H 'X-Amz-Target: Kinesis_20131202.ListStreams' http://127.0.0.1:%d/ | "
            "od -c | head -3",
            path, s.port);
    cr_expect(strstr(out, "S   e   r   i   a   l") != NULL, "%s", out);
}

static void curl_json(char *out, size_t cap, const char *op, const char *body)
{
    run_cmd(out, cap,
            "curl -s -X POST -H 'Content-Type: application/x-amz-json-1.1' "
            "-H 'X-Amz-Target: Kinesis_20131202.%s' -d '%s' http://127.0.0.1:%d/",
            op, body, s.port);
}

Test(kinesis, rest_door_round_trip)
{
    char out[8192];
    run_cmd(out, sizeof out,
            "curl -s -w ' %%{http_code}' -X POST -H 'Content-Type: application/json' "
            "-d '{\"StreamName\":\"r1\",\"ShardCount\":1}' http://127.0.0.1:%d/v1/streams",
            s.port);
    cr_expect_str_eq(out, " 200");
    run_cmd(out, sizeof out, "curl -s http://127.0.0.1:%d/v1/streams/r1", s.port);
    cr_expect(strstr(out, "\"StreamStatus\":\"ACTIVE\"") != NULL, "%s", out);
    run_cmd(out, sizeof out,
            "curl -s -X POST -H 'Content-Type: application/octet-stream' --data-binary 'hello world' "
            "'http://127.0.0.1:%d/v1/streams/r1/records?partitionKey=k1'",
            s.port);
    cr_expect(strstr(out, "\"SequenceNumber\":\"") != NULL, "%s", out);
    run_cmd(out, sizeof out,
            "curl -s -X POST -H 'Content-Type: application/json' "
            "-d '{\"Records\":[{\"Data\":\"Mg==\",\"PartitionKey\":\"k\"}]}' "
            "http://127.0.0.1:%d/v1/streams/r1/records",
            s.port);
    cr_expect(strstr(out, "\"FailedRecordCount\":0") != NULL, "%s", out);
    run_cmd(out, sizeof out,
            "curl -s 'http://127.0.0.1:%d/v1/streams/r1/shards/shardId-000000000000/records"
            "?from=TRIM_HORIZON&limit=10'",
            s.port);
    /* "hello world" in base64, then "2". */
    cr_expect(strstr(out, "\"Data\":\"aGVsbG8gd29ybGQ=\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"Data\":\"Mg==\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"NextShardIterator\":\"") != NULL, "%s", out);
    run_cmd(out, sizeof out, "curl -s http://127.0.0.1:%d/v1/streams/r1/shards", s.port);
    cr_expect(strstr(out, "\"ShardId\":\"shardId-000000000000\"") != NULL, "%s", out);
    run_cmd(out, sizeof out, "curl -s http://127.0.0.1:%d/v1/streams", s.port);
    cr_expect(strstr(out, "\"r1\"") != NULL, "%s", out);
    run_cmd(out, sizeof out, "curl -s -w ' %%{http_code}' -X DELETE http://127.0.0.1:%d/v1/streams/r1",
            s.port);
    cr_expect_str_eq(out, " 200");
    run_cmd(out, sizeof out, "curl -s http://127.0.0.1:%d/v1/streams/r1/shards", s.port);
    cr_expect(strstr(out, "ResourceNotFoundException") != NULL, "%s", out);
    run_cmd(out, sizeof out,
            "curl -s -X POST -H 'Content-Type: application/octet-stream' --data-binary x 'http://127.0.0.1:%d/v1/streams/nope/records?"
            "partitionKey=k'",
            s.port);
    cr_expect(strstr(out, "ResourceNotFoundException") != NULL, "%s", out);
    /* Keys come back inside JSON: bytes that are not UTF-8 are refused. */
    run_cmd(out, sizeof out,
            "curl -s -X POST -H 'Content-Type: application/octet-stream' --data-binary x 'http://127.0.0.1:%d/v1/streams/r1/records?"
            "partitionKey=%%ff%%fe'",
            s.port);
    cr_expect(strstr(out, "SerializationException") != NULL, "%s", out);
}

/* Puts "n" records to stream "name" one PutRecords each; all must succeed. */
static void put_n(const char *name, int n)
{
    char out[4096], body[256];
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body,
                 "{\"StreamName\":\"%s\",\"Records\":[{\"Data\":\"cmVjb3Jk\",\"PartitionKey\":\"p%d\"}]}",
                 name, i);
        curl_json(out, sizeof out, "PutRecords", body);
        cr_assert(strstr(out, "\"FailedRecordCount\":0") != NULL, "%s", out);
    }
}

static int count_records(const char *name)
{
    char out[1 << 16];
    int total = 0;
    for (int sh = 0; sh < 2; sh++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"StreamName\":\"%s\",\"ShardId\":\"shardId-00000000000%d\","
                 "\"ShardIteratorType\":\"TRIM_HORIZON\"}",
                 name, sh);
        curl_json(out, sizeof out, "GetShardIterator", body);
        json_t *j = json_loads(out, 0, NULL);
        cr_assert_not_null(j, "GetShardIterator: '%s'", out);
        char iter[600];
        snprintf(iter, sizeof iter, "%s", json_string_value(json_object_get(j, "ShardIterator")));
        json_decref(j);
        /* GetRecords may return fewer records than exist (a segment at a
         * time): read until a call returns none, as consumers do. */
        for (int round = 0; round < 50; round++) {
            snprintf(body, sizeof body, "{\"ShardIterator\":\"%s\"}", iter);
            curl_json(out, sizeof out, "GetRecords", body);
            j = json_loads(out, 0, NULL);
            cr_assert_not_null(j, "%s", out);
            size_t got = json_array_size(json_object_get(j, "Records"));
            total += (int)got;
            snprintf(iter, sizeof iter, "%s",
                     json_string_value(json_object_get(j, "NextShardIterator")));
            json_decref(j);
            if (got == 0)
                break;
        }
    }
    return total;
}

Test(kinesis, records_survive_restart_and_sigkill)
{
    char out[4096];
    curl_json(out, sizeof out, "CreateStream", "{\"StreamName\":\"d1\",\"ShardCount\":2}");
    put_n("d1", 20);
    cr_assert_eq(srv_stop(&s, 15000), 0);
    /* Same data directory, clean restart. */
    char dir[256];
    snprintf(dir, sizeof dir, "%s", s.dir);
    const char *args[] = {"--durability", "always", NULL};
    srv_start(&s, args);
    cr_expect_eq(count_records("d1"), 20);
    /* Acknowledged under --durability always, then killed without warning. */
    put_n("d1", 10);
    kill(s.pid, SIGKILL);
    waitpid(s.pid, NULL, 0);
    s.pid = 0;
    srv_start(&s, args);
    int after_kill = count_records("d1");
    cr_expect_eq(after_kill, 30, "an acknowledged record was lost by SIGKILL: %d of 30", after_kill);
    /* Sequence numbers keep increasing after the crash. */
    curl_json(out, sizeof out, "PutRecord",
              "{\"StreamName\":\"d1\",\"Data\":\"eA==\",\"PartitionKey\":\"p0\"}");
    cr_expect(strstr(out, "\"SequenceNumber\"") != NULL, "%s", out);
}

Test(auth, require_auth_refuses_unsigned_requests, .timeout = 60)
{
    struct srv t = {0};
    const char *args[] = {"--require-auth", "on", NULL};
    srv_start(&t, args);
    char out[2048];
    run_cmd(out, sizeof out,
            "curl -s -w ' %%{http_code}' -X POST -H 'Content-Type: application/x-amz-json-1.1' "
            "-H 'X-Amz-Target: Kinesis_20131202.ListStreams' -d '{}' http://127.0.0.1:%d/",
            t.port);
    cr_expect(strstr(out, "\"__type\":\"MissingAuthenticationTokenException\"") != NULL, "%s", out);
    cr_expect(strstr(out, " 400") != NULL, "%s", out);
    run_cmd(out, sizeof out,
            "curl -s -X POST -H 'Content-Type: application/x-amz-json-1.1' "
            "-H 'Authorization: Basic Zm9vOmJhcg==' "
            "-H 'X-Amz-Target: Kinesis_20131202.ListStreams' -d '{}' http://127.0.0.1:%d/",
            t.port);
    cr_expect(strstr(out, "\"__type\":\"IncompleteSignatureException\"") != NULL, "%s", out);
    run_cmd(out, sizeof out,
            "curl -s -X POST -H 'Content-Type: application/x-amz-json-1.1' "
            "-H 'Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/"
            "kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc' "
            "-H 'X-Amz-Target: Kinesis_20131202.ListStreams' -d '{}' http://127.0.0.1:%d/",
            t.port);
    cr_expect(strstr(out, "\"StreamNames\":[]") != NULL, "%s", out);
    /* The REST door and /healthz stay open for curl and load balancers. */
    cr_expect(healthz_ok(&t));
    cr_expect_eq(srv_stop(&t, 10000), 0);
}
