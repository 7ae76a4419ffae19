"""boto3 (Debian's python3-boto3) against the real binary with --auth sigv4:
the right key works unchanged (streams, records, a consumer), a wrong secret
and an unknown key are refused with Kinesis' errors and change nothing.

    SLUICE_BIN=build/gateway/sluice /usr/bin/python3 tests/cli/boto3_auth.py
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.config
import botocore.exceptions

KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def fail(msg, log=None):
    print("FAIL:", msg, file=sys.stderr)
    if log:
        print(open(log).read()[-3000:], file=sys.stderr)
    sys.exit(1)


def main():
    tmp = tempfile.mkdtemp(prefix="sluice-boto3-")
    creds = os.path.join(tmp, "credentials")
    with open(creds, "w") as f:
        f.write(f"# boto3 test\n{KEY}:{SECRET}\n")
    log = os.path.join(tmp, "log")
    proc = subprocess.Popen(
        [os.environ["SLUICE_BIN"], "--listen", "127.0.0.1:0", "--data-dir", os.path.join(tmp, "data"),
         "--stream-delay", "0", "--auth", "sigv4", "--credentials", creds],
        stderr=open(log, "w"))
    try:
        port = None
        for _ in range(200):
            m = re.search(r'"event":"listening".*"port":"(\d+)"', open(log).read())
            if m:
                port = int(m.group(1))
                break
            if proc.poll() is not None:
                fail("the gateway exited during startup", log)
            time.sleep(0.05)
        if not port:
            fail("no listening line", log)
        endpoint = f"http://127.0.0.1:{port}"
        cfg = botocore.config.Config(retries={"max_attempts": 1})

        def kinesis(key=KEY, secret=SECRET):
            return boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                                aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)

        good = kinesis()
        good.create_stream(StreamName="b3", ShardCount=1)
        good.get_waiter("stream_exists").wait(StreamName="b3", WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
        put = good.put_record(StreamName="b3", PartitionKey="k", Data=b"from boto3")
        it = good.get_shard_iterator(StreamName="b3", ShardId=put["ShardId"],
                                     ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        recs = good.get_records(ShardIterator=it)["Records"]
        if [r["Data"] for r in recs] != [b"from boto3"]:
            fail(f"read back {recs}")
        arn = good.describe_stream_summary(StreamName="b3")["StreamDescriptionSummary"]["StreamARN"]
        good.register_stream_consumer(StreamARN=arn, ConsumerName="b3c")

        for key, secret, want in [(KEY, "wrong-secret", "InvalidSignatureException"),
                                  ("AKIAUNKNOWNKEY000000", SECRET, "UnrecognizedClientException")]:
            try:
                kinesis(key, secret).create_stream(StreamName="refused", ShardCount=1)
                fail(f"{want}: the call succeeded")
            except botocore.exceptions.ClientError as e:
                if e.response["Error"]["Code"] != want:
                    fail(f"expected {want}, got {e.response['Error']}")
        if good.list_streams()["StreamNames"] != ["b3"]:
            fail("a refused call changed the streams")
        print("boto3 with --auth sigv4: ok")
    finally:
        proc.send_signal(signal.SIGTERM)
        if proc.wait(timeout=15) != 0:
            fail(f"exit status {proc.returncode}", log)


if __name__ == "__main__":
    main()
