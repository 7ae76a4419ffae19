// What the SDK cannot send: malformed bodies (SerializationException), unknown
// targets (UnknownOperationException), strict base64, JSON member types, and
// the wire shape of answers (empty body, epoch-second timestamps, headers),
// over raw HTTP/2 (prior knowledge, as the SDK) and HTTP/1.1 (as the CLI).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startSluice, client, send, createActive, streamName, readAll, rawH2, rawH1, dec,
} from './lib/harness.mjs';

const T = (op) => `Kinesis_20131202.${op}`;
const JSON_CT = 'application/x-amz-json-1.1';
let srv; let c;
before(async () => { srv = await startSluice(); c = client(srv.endpoint); });
after(async () => {
  c?.destroy();
  const st = await srv?.stop();
  if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal} on SIGTERM:\n${srv.stderr().slice(-4000)}`);
});

function assertKinesisError(res, name, message) {
  assert.equal(res.status, 400, `status for ${name}: ${res.status} ${res.body}`);
  assert.ok(res.json, `error body is JSON: ${res.body}`);
  assert.equal(res.json.__type, name, `__type: ${res.body}`);
  assert.equal(typeof res.json.message, 'string', `message: ${res.body}`);
  if (message instanceof RegExp) assert.match(res.json.message, message);
  else if (message !== undefined) assert.equal(res.json.message, message);
  assert.ok(String(res.headers['content-type']).startsWith(JSON_CT), `content-type ${res.headers['content-type']}`);
  assert.ok(res.headers['x-amzn-requestid'], 'x-amzn-RequestId');
}

const transports = { h2c: rawH2, 'http/1.1': rawH1 };

describe('SerializationException', () => {
  for (const [tname, raw] of Object.entries(transports)) {
    test(`malformed bodies over ${tname}`, async () => {
      const cases = [
        ['truncated JSON', T('ListStreams'), '{"Limit":'],
        ['not JSON', T('ListStreams'), 'hello'],
        ['empty body', T('ListStreams'), ''],
        ['top-level array', T('ListStreams'), '[]'],
        ['trailing garbage', T('ListStreams'), '{} x'],
        ['string for an integer', T('ListStreams'), '{"Limit":"5"}'],
        ['number for a string', T('DescribeStreamSummary'), '{"StreamName":5}'],
        ['object for a list', T('PutRecords'), '{"StreamName":"s","Records":{}}'],
        ['string for a boolean', T('DeleteStream'), '{"StreamName":"s","EnforceConsumerDeletion":"yes"}'],
        ['string for a structure', T('CreateStream'), '{"StreamName":"s","StreamModeDetails":"ON_DEMAND"}'],
      ];
      for (const [what, target, body] of cases) {
        const res = await raw(srv.endpoint, { target, body });
        try { assertKinesisError(res, 'SerializationException'); } catch (e) { e.message = `${what}: ${e.message}`; throw e; }
      }
    });
  }

  test('bad base64 in Data is a SerializationException and stores nothing', async () => {
    const name = streamName('b64');
    await createActive(c, name, { ShardCount: 1 });
    await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'a', Data: new TextEncoder().encode('ok') });
    const before = (await readAll(c, name, 'shardId-000000000000')).map((r) => r.SequenceNumber);
    for (const data of ['!!!!', 'QQ=', 'QQ', 'Q===', 'aGVsbG8=x', 'aGVs bG8=', 5]) {
      const res = await rawH2(srv.endpoint, { target: T('PutRecord'), body: JSON.stringify({ StreamName: name, PartitionKey: 'a', Data: data }) });
      try { assertKinesisError(res, 'SerializationException'); } catch (e) { e.message = `Data ${JSON.stringify(data)}: ${e.message}`; throw e; }
      const res2 = await rawH2(srv.endpoint, { target: T('PutRecords'), body: JSON.stringify({ StreamName: name, Records: [{ PartitionKey: 'a', Data: 'b2s=' }, { PartitionKey: 'a', Data: data }] }) });
      try { assertKinesisError(res2, 'SerializationException'); } catch (e) { e.message = `PutRecords Data ${JSON.stringify(data)}: ${e.message}`; throw e; }
    }
    assert.deepEqual((await readAll(c, name, 'shardId-000000000000')).map((r) => r.SequenceNumber), before);
    // valid padded base64 is accepted and decoded exactly
    const ok = await rawH2(srv.endpoint, { target: T('PutRecord'), body: JSON.stringify({ StreamName: name, PartitionKey: 'a', Data: '/+8=' }) });
    assert.equal(ok.status, 200, ok.body);
    const last = (await readAll(c, name, 'shardId-000000000000')).at(-1);
    assert.deepEqual([...last.Data], [0xff, 0xef]);
  });
});

describe('UnknownOperationException', () => {
  for (const [tname, raw] of Object.entries(transports)) {
    test(`unknown or missing X-Amz-Target over ${tname}`, async () => {
      let res = await raw(srv.endpoint, { target: T('NoSuchOperation'), body: '{}' });
      assertKinesisError(res, 'UnknownOperationException');
      res = await raw(srv.endpoint, { target: 'Other_20131202.ListStreams', body: '{}' });
      assertKinesisError(res, 'UnknownOperationException');
      res = await raw(srv.endpoint, { body: '{}' });
      assertKinesisError(res, 'UnknownOperationException');
    });
  }
});

describe('transport', () => {
  test('the SDK client uses its default NodeHttp2Handler and reaches sluice over h2c', async () => {
    const s2 = await startSluice({ args: ['--log-level', 'debug'] });
    const c2 = client(s2.endpoint);
    try {
      assert.equal(c2.config.requestHandler?.constructor?.name, 'NodeHttp2Handler');
      await send(c2, 'ListStreams', {});
      await send(c2, 'DescribeLimits', {});
    } finally {
      c2.destroy();
      const st = await s2.stop();
      assert.equal(st.code, 0);
    }
    const protos = s2.stderr().split('\n').map((l) => { try { return JSON.parse(l); } catch { return null; } })
      .filter((e) => e && e.event === 'proto').map((e) => e.msg.split(' ').at(-1));
    assert.ok(protos.length >= 1, `no "proto" log event at debug level:\n${s2.stderr().slice(0, 2000)}`);
    assert.deepEqual([...new Set(protos)], ['h2'], `protocols seen: ${protos}`);
  });
});

describe('wire shapes', () => {
  test('operations without output answer 200 with an empty body', async () => {
    const name = streamName('wire');
    for (const raw of [rawH1, rawH2]) {
      const n = `${name}-${raw === rawH1 ? 'h1' : 'h2'}`;
      const res = await raw(srv.endpoint, { target: T('CreateStream'), body: JSON.stringify({ StreamName: n, ShardCount: 1 }) });
      assert.equal(res.status, 200, res.body);
      assert.ok(res.body === '' || res.body === '{}', `CreateStream body: ${JSON.stringify(res.body)}`);
      assert.ok(res.headers['x-amzn-requestid']);
      assert.ok(res.headers.date, 'Date header');
    }
  });

  test('timestamps are epoch seconds with a fraction; Data is base64; unknown members ignored', async () => {
    const name = streamName('shape');
    await createActive(c, name, { ShardCount: 1 });
    let res = await rawH1(srv.endpoint, { target: T('DescribeStreamSummary'), body: JSON.stringify({ StreamName: name, SomeFutureMember: { x: 1 } }) });
    assert.equal(res.status, 200, res.body);
    assert.ok(String(res.headers['content-type']).startsWith(JSON_CT));
    const ts = res.json.StreamDescriptionSummary.StreamCreationTimestamp;
    assert.equal(typeof ts, 'number');
    assert.ok(Math.abs(ts - Date.now() / 1000) < 120, `StreamCreationTimestamp ${ts} is not epoch seconds`);
    res = await rawH1(srv.endpoint, { target: T('PutRecord'), body: JSON.stringify({ StreamName: name, PartitionKey: 'p', Data: Buffer.from('raw bytes').toString('base64') }) });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(Object.keys(res.json).filter((k) => k !== 'EncryptionType').sort(), ['SequenceNumber', 'ShardId']);
    res = await rawH1(srv.endpoint, { target: T('GetShardIterator'), body: JSON.stringify({ StreamName: name, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }) });
    const it = res.json.ShardIterator;
    res = await rawH1(srv.endpoint, { target: T('GetRecords'), body: JSON.stringify({ ShardIterator: it }) });
    assert.equal(res.status, 200, res.body);
    const rec = res.json.Records[0];
    assert.equal(rec.Data, Buffer.from('raw bytes').toString('base64'));
    assert.equal(typeof rec.ApproximateArrivalTimestamp, 'number');
    assert.ok(Math.abs(rec.ApproximateArrivalTimestamp - Date.now() / 1000) < 120);
    assert.equal(typeof res.json.MillisBehindLatest, 'number');
    // the request's timestamps are accepted as seconds (JS v3 sends ms/1000)
    res = await rawH1(srv.endpoint, { target: T('GetShardIterator'), body: JSON.stringify({ StreamName: name, ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_TIMESTAMP', Timestamp: Math.floor(Date.now() / 1000) - 60 }) });
    assert.equal(res.status, 200, res.body);
    res = await rawH1(srv.endpoint, { target: T('GetRecords'), body: JSON.stringify({ ShardIterator: res.json.ShardIterator }) });
    assert.deepEqual(res.json.Records.map((r) => Buffer.from(r.Data, 'base64').toString()), ['raw bytes']);
    // and the SDK sees the same record
    assert.equal(dec((await readAll(c, name, 'shardId-000000000000'))[0].Data), 'raw bytes');
  });

  test('errors also carry x-amzn-ErrorType (if sent) equal to __type', async () => {
    const res = await rawH2(srv.endpoint, { target: T('DescribeStreamSummary'), body: JSON.stringify({ StreamName: streamName('none') }) });
    assertKinesisError(res, 'ResourceNotFoundException');
    const h = res.headers['x-amzn-errortype'];
    if (h !== undefined) assert.equal(String(h).split(':')[0], 'ResourceNotFoundException');
  });
});
