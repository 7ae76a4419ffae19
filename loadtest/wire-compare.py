#!/usr/bin/env python3
# wire-compare.py OLD_BINARY NEW_BINARY - runs the same 31 calls (both doors,
# JSON and CBOR, successes and errors) against two sluice builds and prints
# the replies that differ, with request ids, dates, sequence numbers,
# timestamps (keeping their digit count) and tokens masked. For changes that
# must not alter the wire: build the commit before yours in another
# directory and compare. Starts each gateway on 127.0.0.1 with a temporary
# data directory, one after the other; stops them. Needs python3 only.
import base64, http.client, json, os, re, shutil, subprocess, sys, tempfile, time
def free_port():
    import socket
    with socket.socket() as so:
        so.bind(('127.0.0.1', 0))
        return so.getsockname()[1]

def start(binary, port, d):
    shutil.rmtree(d, ignore_errors=True)
    p = subprocess.Popen([binary, '--listen', f'127.0.0.1:{port}', '--data-dir', d, '--durability', 'interval:100'], stderr=subprocess.DEVNULL)
    time.sleep(0.6); return p
def call(port, op, body, ct='application/x-amz-json-1.1', path='/', method='POST', target=True):
    c = http.client.HTTPConnection('127.0.0.1', port)
    h = {'Content-Type': ct} if ct else {}
    if target: h['X-Amz-Target'] = 'Kinesis_20131202.' + op
    c.request(method, path, body=body if isinstance(body, (bytes,type(None))) else body.encode(), headers=h)
    r = c.getresponse(); data = r.read()
    hs = [(k.lower(), v) for k, v in r.getheaders() if k.lower() not in ('date', 'x-amzn-requestid')]
    return r.status, hs, data
def norm(b):
    s = b.decode('latin1')
    s = re.sub(r'\d{40,}', 'SEQ', s)
    s = re.sub(r'\d{10}(\.\d+)?', lambda m: 'TS' + ('.' + str(len(m.group(1))-1) if m.group(1) else ''), s)
    s = re.sub(r'"(ShardIterator|NextShardIterator|NextToken)":"[^"]*"', r'"\1":"TOK"', s)
    s = re.sub(r'consumer/oc:\d+', 'consumer/oc:N', s)
    return s
def script(port):
    out = []
    def rec(*a, **k):
        st, hs, d = call(port, *a, **k); out.append((a[0], st, hs, norm(d)))
        return d
    rec('CreateStream', '{"StreamName":"w","ShardCount":2}')
    time.sleep(0.3)
    rec('DescribeStreamSummary', '{"StreamName":"w"}')
    rec('DescribeStream', '{"StreamName":"w"}')
    rec('ListShards', '{"StreamName":"w"}')
    rec('ListStreams', '{}')
    rec('PutRecord', '{"StreamName":"w","PartitionKey":"a","Data":"aGVsbG8="}')
    rec('PutRecords', '{"StreamName":"w","Records":[{"PartitionKey":"a","Data":"aGk="},{"PartitionKey":"b\\u00e9\\n","Data":""}]}')
    rec('PutRecords', '{"StreamName":"w","Records":[]}')
    it = json.loads(call(port, 'GetShardIterator', '{"StreamName":"w","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}')[2])['ShardIterator']
    time.sleep(0.2)
    rec('GetRecords', json.dumps({"ShardIterator": it}))
    it = json.loads(call(port, 'GetShardIterator', '{"StreamName":"w","ShardId":"shardId-000000000001","ShardIteratorType":"TRIM_HORIZON"}')[2])['ShardIterator']
    rec('GetRecords', json.dumps({"ShardIterator": it}))
    rec('RegisterStreamConsumer', '{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/w","ConsumerName":"oc"}')
    rec('ListStreamConsumers', '{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/w"}')
    rec('AddTagsToStream', '{"StreamName":"w","Tags":{"k":"v\\u2603"}}')
    rec('ListTagsForStream', '{"StreamName":"w"}')
    rec('DescribeLimits', '{}')
    rec('DescribeStream', '{"StreamName":"nope"}')
    rec('PutRecord', '{"StreamName":"w"}')
    rec('PutRecord', '{bad json')
    rec('PutRecord', '{"StreamName":"w","PartitionKey":"a","Data":"!!"}')
    rec('Nope', '{}')
    rec('PutRecord', '{}', ct='text/plain')
    rec('GET-healthz', None, ct=None, path='/healthz', method='GET', target=False)
    rec('REST-list', None, ct=None, path='/v1/streams', method='GET', target=False)
    rec('REST-describe', None, ct=None, path='/v1/streams/w', method='GET', target=False)
    rec('REST-missing', None, ct=None, path='/v1/streams/zz', method='GET', target=False)
    rec('REST-put', '{"partitionKey":"a","data":"aGk="}', ct='application/json', path='/v1/streams/w/records', target=False)
    rec('REST-records', None, ct=None, path='/v1/streams/w/shards/shardId-000000000000/records?from=TRIM_HORIZON', method='GET', target=False)
    rec('REST-404', None, ct=None, path='/v1/nothing', method='GET', target=False)
    # CBOR: PutRecord then GetRecords
    cb = bytes.fromhex('a3') + b'\x6aStreamName' + b'\x61w' + b'\x6cPartitionKey' + b'\x61a' + b'\x64Data' + b'\x43abc'
    rec('CBOR-PutRecord', cb, ct='application/x-amz-cbor-1.1')
    rec('CBOR-bad', b'\xff', ct='application/x-amz-cbor-1.1')
    cb = bytes.fromhex('a1') + b'\x6aStreamName' + b'\x61w'
    rec('CBOR-DescribeStreamSummary', cb, ct='application/x-amz-cbor-1.1')
    return out
a, b = sys.argv[1], sys.argv[2]
pa_port, pb_port = free_port(), free_port()
da, db = tempfile.mkdtemp(), tempfile.mkdtemp()
pa = start(a, pa_port, da); ra = script(pa_port); pa.terminate(); pa.wait()
pb = start(b, pb_port, db); rb = script(pb_port); pb.terminate(); pb.wait()
shutil.rmtree(da, ignore_errors=True); shutil.rmtree(db, ignore_errors=True)
diffs = 0
for x, y in zip(ra, rb):
    if x != y:
        diffs += 1
        print('DIFF', x[0]); print('  old', x[1], x[2], x[3][:400]); print('  new', y[1], y[2], y[3][:400])
print(len(ra), 'calls,', diffs, 'differ')
