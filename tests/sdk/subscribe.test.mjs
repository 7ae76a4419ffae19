// SubscribeToShard (enhanced fan-out) end to end against the real binary:
// the AWS SDK's SubscribeToShardCommand over h2c (its default
// NodeHttp2Handler: a dedicated session, GOAWAY right after the response
// headers) and over h2 with TLS, every record put with the same SDK received
// exactly once and in order, a subscription ending by itself after
// --subscription-ttl and the re-subscription from its last
// ContinuationSequenceNumber, every StartingPosition type, heartbeats, the
// 5-second ResourceInUseException rule and take-over, and the REST door's
// Server-Sent Events (a small EventSource-like client written here, and curl -N),
// including resuming with Last-Event-ID.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import {
  startSluice, client, send, expectError, createActive, streamName, registerActive, subscribe,
  makeTlsCert, sleep, VECTORS,
} from './lib/harness.mjs';

const SHARD0 = 'shardId-000000000000';
const SHARD1 = 'shardId-000000000001';
const TTL_MS = 2000;
const HEARTBEAT_MS = 500;
const RULE_MS = 5000; // a repeat SubscribeToShard within 5 s of a successful one is refused
const seqs = (records) => records.map((r) => r.SequenceNumber);
const text = (r) => Buffer.from(r.Data).toString('utf8');
const isH2Handler = (c) => c.config.requestHandler.constructor.name === 'NodeHttp2Handler'
  && c.config.requestHandler.metadata?.handlerProtocol === 'h2';

// Puts n records with the SDK (PutRecord and PutRecords alternately in
// batches), all on shard 0 of a one-shard stream; resolves to [{ seq, data }].
async function putMany(c, stream, n, tag) {
  const out = [];
  let i = 0;
  while (i < n) {
    if (i % 2 === 0) {
      const data = `${tag}-${i}`;
      const r = await send(c, 'PutRecord', { StreamName: stream, PartitionKey: `pk-${i % 7}`, Data: Buffer.from(data) });
      out.push({ seq: r.SequenceNumber, data });
      i += 1;
    } else {
      const batch = [];
      for (let j = 0; j < 3 && i + j < n; j++) batch.push(`${tag}-${i + j}`);
      const r = await send(c, 'PutRecords', { StreamName: stream, Records: batch.map((d, j) => ({ PartitionKey: `pk-${j}`, Data: Buffer.from(d) })) });
      assert.equal(r.FailedRecordCount ?? 0, 0);
      r.Records.forEach((x, j) => out.push({ seq: x.SequenceNumber, data: batch[j] }));
      i += batch.length;
    }
  }
  return out;
}

// Asserts the received records are exactly `want`, in order, each once.
function assertExactly(records, want, what) {
  assert.deepEqual(seqs(records), want.map((w) => w.seq), `${what}: sequence numbers (received ${records.length}, want ${want.length})`);
  assert.deepEqual(records.map(text), want.map((w) => w.data), `${what}: data`);
  for (let i = 1; i < records.length; i++) assert.ok(BigInt(records[i - 1].SequenceNumber) < BigInt(records[i].SequenceNumber), `${what}: order`);
}

function checkEvents(events) {
  for (const e of events) {
    const ev = e.SubscribeToShardEvent;
    assert.ok(ev, `unexpected event ${Object.keys(e)}`);
    assert.ok(Array.isArray(ev.Records));
    assert.equal(typeof ev.MillisBehindLatest, 'number');
    assert.ok(ev.MillisBehindLatest >= 0);
    assert.match(ev.ContinuationSequenceNumber, /^\d+$/, 'ContinuationSequenceNumber on an open shard');
    if (ev.Records.length) assert.equal(ev.ContinuationSequenceNumber, ev.Records.at(-1).SequenceNumber);
  }
}

// The whole round trip on one client: records put before and during the
// subscription arrive once, in order; the subscription ends cleanly after the
// TTL; records put in between are delivered by the re-subscription from the
// last ContinuationSequenceNumber, with nothing lost or repeated.
async function roundTrip(c) {
  const stream = streamName('rt');
  const { StreamARN } = await createActive(c, stream, { ShardCount: 1 });
  const k = await registerActive(c, StreamARN, 'rt');
  const before = await putMany(c, stream, 20, 'before');
  const t0 = Date.now();
  const sub = await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } });
  let during; let first;
  try {
    assert.equal(sub.res.$metadata.httpStatusCode, 200);
    await sub.until((r) => r.length >= 20);
    during = await putMany(c, stream, 30, 'during');
    first = await sub.until(() => false, TTL_MS + 8000);
  } finally { sub.close(); }
  const elapsed = Date.now() - t0;
  assert.equal(first.error, undefined, `the subscription failed: ${first.error?.name}: ${first.error?.message}`);
  assert.ok(first.end, 'the subscription ended cleanly');
  assert.ok(elapsed >= TTL_MS - 100, `ended after ${elapsed} ms, before --subscription-ttl ${TTL_MS} ms`);
  checkEvents(first.events);
  assertExactly(first.records, [...before, ...during], 'first subscription');
  const cont = first.events.at(-1).SubscribeToShardEvent.ContinuationSequenceNumber;
  assert.equal(cont, during.at(-1).seq, 'last ContinuationSequenceNumber = last record delivered');

  // records put while nobody is subscribed, then after the re-subscription
  const gap = await putMany(c, stream, 7, 'gap');
  await sleep(Math.max(0, t0 + RULE_MS + 300 - Date.now()));
  const sub2 = await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: cont } });
  try {
    const after = await putMany(c, stream, 8, 'after');
    const second = await sub2.until((r) => r.length >= 15);
    // one more event (a heartbeat at the latest) shows nothing else is coming
    await sub2.next(TTL_MS + 5000);
    assert.equal(sub2.error, undefined, `re-subscription failed: ${sub2.error?.name}: ${sub2.error?.message}`);
    checkEvents(sub2.events);
    assertExactly(sub2.records(), [...gap, ...after], 're-subscription');
    void second;
  } finally { sub2.close(); }
}

// Splits an event-stream body into messages, checking both CRCs of each;
// resolves to [{ headers: {name: value}, payload (Buffer) }] and the leftover bytes.
function splitMessages(buf) {
  const out = [];
  let off = 0;
  while (buf.length - off >= 16) {
    const total = buf.readUInt32BE(off);
    const hlen = buf.readUInt32BE(off + 4);
    if (buf.length - off < total) break;
    const m = buf.subarray(off, off + total);
    assert.equal(m.readUInt32BE(8), zlib.crc32(m.subarray(0, 8)), 'prelude CRC');
    assert.equal(m.readUInt32BE(total - 4), zlib.crc32(m.subarray(0, total - 4)), 'message CRC');
    const headers = {};
    for (let h = 12; h < 12 + hlen;) {
      const nlen = m[h]; const name = m.toString('utf8', h + 1, h + 1 + nlen); h += 1 + nlen;
      const type = m[h]; h += 1;
      assert.equal(type, 7, `header ${name} is a string`);
      const vlen = m.readUInt16BE(h); headers[name] = m.toString('utf8', h + 2, h + 2 + vlen); h += 2 + vlen;
    }
    out.push({ headers, payload: m.subarray(12 + hlen, total - 4) });
    off += total;
  }
  return { messages: out, rest: buf.subarray(off) };
}

describe('SubscribeToShard over h2c (SDK default NodeHttp2Handler)', () => {
  let srv; let c;
  before(async () => {
    srv = await startSluice({ args: ['--subscription-ttl', `${TTL_MS}ms`, '--heartbeat', `${HEARTBEAT_MS}ms`] });
    c = client(srv.endpoint);
  });
  after(async () => {
    c?.destroy();
    const st = await srv?.stop();
    if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal} on SIGTERM:\n${srv.stderr().slice(-4000)}`);
  });

  test('records put with the SDK arrive once, in order; ends after the TTL; AFTER_SEQUENCE_NUMBER re-subscription loses and repeats nothing', async () => {
    assert.ok(isH2Handler(c), 'the client uses the SDK default HTTP/2 handler');
    await roundTrip(c);
  });

  test('every StartingPosition type', async () => {
    const stream = streamName('pos');
    const { StreamARN } = await createActive(c, stream, { ShardCount: 1 });
    const ks = {};
    for (const t of ['TRIM_HORIZON', 'LATEST', 'AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER', 'AT_TIMESTAMP']) {
      ks[t] = (await registerActive(c, StreamARN, t.toLowerCase())).ConsumerARN;
    }
    const a = await putMany(c, stream, 5, 'a');
    await sleep(150);
    const T = new Date();
    await sleep(150);
    const b = await putMany(c, stream, 4, 'b');
    const all = [...a, ...b];
    const cases = [
      ['TRIM_HORIZON', {}, all],
      ['AT_SEQUENCE_NUMBER', { SequenceNumber: all[2].seq }, all.slice(2)],
      ['AFTER_SEQUENCE_NUMBER', { SequenceNumber: all[2].seq }, all.slice(3)],
      ['AT_TIMESTAMP', { Timestamp: T }, b],
    ];
    for (const [Type, extra, want] of cases) {
      const sub = await subscribe(c, { ConsumerARN: ks[Type], ShardId: SHARD0, StartingPosition: { Type, ...extra } });
      try {
        await sub.until((r) => r.length >= want.length, 5000);
        // the next event (records or heartbeat) must bring nothing more
        await sub.next(TTL_MS + 2000);
        assert.equal(sub.error, undefined, `${Type}: ${sub.error?.name}: ${sub.error?.message}`);
        checkEvents(sub.events);
        assertExactly(sub.records(), want, Type);
      } finally { sub.close(); }
    }
    // LATEST: nothing already stored, then what is put after the subscription started
    const sub = await subscribe(c, { ConsumerARN: ks.LATEST, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } });
    try {
      const fresh = await putMany(c, stream, 3, 'latest');
      await sub.until((r) => r.length >= 3, 5000);
      await sub.next(TTL_MS + 2000);
      assert.equal(sub.error, undefined, `LATEST: ${sub.error?.name}: ${sub.error?.message}`);
      assertExactly(sub.records(), fresh, 'LATEST');
    } finally { sub.close(); }
  });

  test('errors before the stream: 400 with the named exception', async () => {
    const stream = streamName('err');
    const { StreamARN } = await createActive(c, stream, { ShardCount: 1 });
    const k = await registerActive(c, StreamARN, 'e');
    const [p0] = await putMany(c, stream, 1, 'x');
    const sub = (ShardId, StartingPosition, ConsumerARN = k.ConsumerARN) => send(c, 'SubscribeToShard', { ConsumerARN, ShardId, StartingPosition });
    await expectError(sub('shardId-000000000009', { Type: 'LATEST' }), 'ResourceNotFoundException', /.+/);
    await expectError(sub(SHARD0, { Type: 'LATEST' }, `${StreamARN}/consumer/ghost:1700000000`), 'ResourceNotFoundException', /.+/);
    for (const pos of [{ Type: 'AT_SEQUENCE_NUMBER' }, { Type: 'AFTER_SEQUENCE_NUMBER' }, { Type: 'AT_TIMESTAMP' },
      { Type: 'AT_SEQUENCE_NUMBER', SequenceNumber: 'abc' }]) {
      const e = await sub(SHARD0, pos).then((r) => { r.EventStream?.return?.(); assert.fail(`accepted ${JSON.stringify(pos)}`); }, (err) => err);
      assert.ok(['InvalidArgumentException', 'ValidationException'].includes(e.name), `${JSON.stringify(pos)}: ${e.name}: ${e.message}`);
      assert.equal(e.$metadata?.httpStatusCode, 400, `${JSON.stringify(pos)}: HTTP status`);
    }
    // none of the refusals counts as a subscription: a valid one succeeds right away
    const ok = await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'AT_SEQUENCE_NUMBER', SequenceNumber: p0.seq } });
    try {
      assertExactly((await ok.until((r) => r.length >= 1)).records, [p0], 'after refusals');
    } finally { ok.close(); }
  });

  test('large (1 MB), binary and empty records arrive intact', async () => {
    const stream = streamName('big');
    const { StreamARN } = await createActive(c, stream, { ShardCount: 1 });
    const k = await registerActive(c, StreamARN, 'big');
    const payloads = [Buffer.alloc(1000000, 0x5a), Uint8Array.from({ length: 256 }, (_, i) => i), new Uint8Array(0),
      Buffer.from('snowman ☃ / ключ'), Buffer.alloc(1048576 - 3, 0xc3)];
    const put = [];
    for (const [i, d] of payloads.entries()) put.push((await send(c, 'PutRecord', { StreamName: stream, PartitionKey: `k${i}`, Data: d })).SequenceNumber);
    const sub = await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } });
    try {
      const got = await sub.until((r) => r.length >= payloads.length, 8000);
      assert.equal(got.error, undefined, `${got.error?.name}: ${got.error?.message}`);
      assert.deepEqual(seqs(got.records), put);
      got.records.forEach((r, i) => {
        assert.ok(Buffer.from(r.Data).equals(Buffer.from(payloads[i])), `record ${i}: ${r.Data.length} bytes`);
        assert.equal(r.PartitionKey, `k${i}`);
        assert.ok(r.ApproximateArrivalTimestamp instanceof Date);
      });
      checkEvents(sub.events);
    } finally { sub.close(); }
  });

  test('on the wire (h2c and HTTP/1.1): 200, application/vnd.amazon.eventstream, initial-response byte for byte, CRC-checked events', async () => {
    const stream = streamName('wire');
    const { StreamARN } = await createActive(c, stream, { ShardCount: 1 });
    const [put] = await putMany(c, stream, 1, 'wire');
    const vector = readFileSync(join(VECTORS, 'eventstream', 'initial-response.bin'));
    const check = (status, headers, body, what) => {
      assert.equal(status, 200, what);
      assert.equal(headers['content-type'], 'application/vnd.amazon.eventstream', what);
      assert.ok(headers['x-amzn-requestid'], `${what}: x-amzn-RequestId`);
      assert.equal(headers['content-length'], undefined, `${what}: no Content-Length`);
      assert.ok(body.subarray(0, vector.length).equals(vector), `${what}: the body starts with initial-response.bin`);
      const { messages } = splitMessages(body);
      assert.ok(messages.length >= 2, `${what}: ${messages.length} messages`);
      for (const m of messages.slice(1)) {
        assert.equal(m.headers[':message-type'], 'event', what);
        assert.equal(m.headers[':event-type'], 'SubscribeToShardEvent', what);
      }
      const ev = JSON.parse(messages[1].payload.toString('utf8'));
      assert.equal(ev.Records[0].SequenceNumber, put.seq);
      assert.equal(Buffer.from(ev.Records[0].Data, 'base64').toString(), put.data);
      assert.equal(ev.ContinuationSequenceNumber, put.seq);
    };
    const body = (ConsumerARN) => JSON.stringify({ ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } });
    const reqHeaders = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.SubscribeToShard' };
    const enough = (chunks) => splitMessages(Buffer.concat(chunks)).messages.length >= 2;

    // h2c, behaving like the JS SDK: GOAWAY right after the response headers, then keep reading
    const k1 = await registerActive(c, StreamARN, 'wire-h2');
    const h2 = await new Promise((resolve, reject) => {
      const session = http2.connect(srv.endpoint);
      session.on('error', reject);
      const req = session.request({ ':method': 'POST', ':path': '/', ...reqHeaders });
      const chunks = []; let headers;
      req.on('response', (h) => { headers = h; session.close(); });
      req.on('data', (d) => { chunks.push(d); if (enough(chunks)) { resolve({ status: headers[':status'], headers, body: Buffer.concat(chunks) }); req.close(); session.destroy(); } });
      req.on('error', reject);
      req.on('end', () => resolve({ status: headers?.[':status'], headers: headers ?? {}, body: Buffer.concat(chunks) }));
      req.end(body(k1.ConsumerARN));
    });
    check(h2.status, h2.headers, h2.body, 'h2c');

    // HTTP/1.1 (what boto3 and the AWS CLI use): chunked
    const k2 = await registerActive(c, StreamARN, 'wire-h1');
    const u = new URL(srv.endpoint);
    const h1 = await new Promise((resolve, reject) => {
      const b = body(k2.ConsumerARN);
      const req = http.request({ host: u.hostname, port: u.port, path: '/', method: 'POST', agent: false,
        headers: { ...reqHeaders, 'content-length': Buffer.byteLength(b) } }, (res) => {
        const chunks = [];
        res.on('data', (d) => { chunks.push(d); if (enough(chunks)) { resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }); req.destroy(); } });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', () => {});
      });
      req.on('error', reject);
      req.end(b);
    });
    assert.equal(h1.headers['transfer-encoding'], 'chunked');
    check(h1.status, h1.headers, h1.body, 'HTTP/1.1');
  });

  test(`heartbeat: an empty event at least every --heartbeat ${HEARTBEAT_MS}ms while idle, its ContinuationSequenceNumber resumes correctly`, async () => {
    const stream = streamName('hb');
    const { StreamARN } = await createActive(c, stream, { ShardCount: 1 });
    const k = await registerActive(c, StreamARN, 'hb');
    const k2 = await registerActive(c, StreamARN, 'hb2');
    const sub = await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } });
    const times = [Date.now()];
    try {
      while (Date.now() - times[0] < 1200) {
        const ev = await sub.next(HEARTBEAT_MS + 1500);
        assert.ok(ev.SubscribeToShardEvent, `expected an event, got ${JSON.stringify(ev)}`);
        times.push(Date.now());
      }
    } finally { sub.close(); }
    checkEvents(sub.events);
    assert.ok(sub.events.length >= 2, `${sub.events.length} events in ${times.at(-1) - times[0]} ms`);
    for (const e of sub.events) {
      assert.deepEqual(e.SubscribeToShardEvent.Records, []);
      assert.equal(e.SubscribeToShardEvent.MillisBehindLatest, 0);
    }
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    assert.ok(Math.max(...gaps) <= HEARTBEAT_MS + 500, `gaps between events ${gaps.join(', ')} ms`);
    // the continuation number of an empty shard's heartbeat resumes at its first record
    const cont = sub.events.at(-1).SubscribeToShardEvent.ContinuationSequenceNumber;
    const put = await putMany(c, stream, 3, 'hb');
    const sub2 = await subscribe(c, { ConsumerARN: k2.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: cont } });
    try {
      await sub2.until((r) => r.length >= 3, 5000);
      assertExactly(sub2.records(), put, 'AFTER_SEQUENCE_NUMBER = heartbeat continuation');
    } finally { sub2.close(); }
  });
});

describe('SubscribeToShard over h2 with TLS (certificate made with openssl)', () => {
  let srv; let c;
  before(async () => {
    const tls = makeTlsCert();
    srv = await startSluice({ tls, args: ['--subscription-ttl', `${TTL_MS}ms`, '--heartbeat', `${HEARTBEAT_MS}ms`] });
    assert.match(srv.endpoint, /^https:/);
    // The SDK's own NodeHttp2Handler, trusting the throw-away certificate.
    c = client(srv.endpoint, { requestHandler: { disableConcurrentStreams: true, nodeHttp2ConnectOptions: { ca: tls.pem } } });
  });
  after(async () => {
    c?.destroy();
    const st = await srv?.stop();
    if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal} on SIGTERM:\n${srv.stderr().slice(-4000)}`);
  });

  test('same round trip over https: exactly once, in order, TTL end, re-subscription', async () => {
    assert.ok(isH2Handler(c));
    await roundTrip(c);
  });
});

describe('the 5-second rule (default --subscription-ttl)', () => {
  let srv; let c;
  before(async () => { srv = await startSluice({ args: ['--heartbeat', `${HEARTBEAT_MS}ms`] }); c = client(srv.endpoint); });
  after(async () => {
    c?.destroy();
    const st = await srv?.stop();
    if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal} on SIGTERM:\n${srv.stderr().slice(-4000)}`);
  });

  test('a repeat within 5 s: ResourceInUseException (400); after 5 s it takes over and the old one ends with a ResourceInUseException event', async () => {
    const stream = streamName('rule');
    const { StreamARN } = await createActive(c, stream, { ShardCount: 2 });
    const k = await registerActive(c, StreamARN, 'k');
    const other = await registerActive(c, StreamARN, 'other');
    const t0 = Date.now();
    const first = await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } });
    const side = [];
    try {
      await expectError(send(c, 'SubscribeToShard', { ConsumerARN: k.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } }),
        'ResourceInUseException', /.+/);
      // the same consumer on another shard, and another consumer on the same shard, are independent
      side.push(await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: SHARD1, StartingPosition: { Type: 'LATEST' } }));
      side.push(await subscribe(c, { ConsumerARN: other.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }));
      // the refused call did not disturb the first subscription
      const [r1] = (await send(c, 'PutRecords', { StreamName: stream, Records: [{ PartitionKey: 'a', ExplicitHashKey: '0', Data: Buffer.from('one') }] })).Records;
      assert.deepEqual(seqs((await first.until((r) => r.length >= 1, 5000)).records), [r1.SequenceNumber]);
      await sleep(Math.max(0, t0 + RULE_MS + 300 - Date.now()));
      const second = await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: r1.SequenceNumber } });
      try {
        const end = await first.until(() => false, 5000);
        assert.ok(end.error, `the old subscription did not fail (end=${end.end})`);
        assert.equal(end.error.name, 'ResourceInUseException', `${end.error.name}: ${end.error.message}`);
        const [r2] = (await send(c, 'PutRecords', { StreamName: stream, Records: [{ PartitionKey: 'a', ExplicitHashKey: '0', Data: Buffer.from('two') }] })).Records;
        assert.deepEqual(seqs((await second.until((r) => r.length >= 1, 5000)).records), [r2.SequenceNumber]);
        assert.deepEqual(seqs((await side[1].until((r) => r.length >= 2, 5000)).records), [r1.SequenceNumber, r2.SequenceNumber]);
        assert.equal(side[0].error, undefined);
        assert.equal(second.error, undefined);
      } finally { second.close(); }
    } finally { first.close(); for (const s of side) s.close(); }
  });
});

describe('per consumer-shard rate limit (--consumer-rate 256KiB --consumer-burst 64KiB)', () => {
  let srv; let c;
  before(async () => {
    srv = await startSluice({ args: ['--consumer-rate', '256KiB', '--consumer-burst', '64KiB', '--heartbeat', `${HEARTBEAT_MS}ms`] });
    c = client(srv.endpoint);
  });
  after(async () => {
    c?.destroy();
    const st = await srv?.stop();
    if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal} on SIGTERM:\n${srv.stderr().slice(-4000)}`);
  });

  test('two consumers each get every record at about the rate, independently, and fall behind meanwhile', async () => {
    const stream = streamName('rate');
    const { StreamARN } = await createActive(c, stream, { ShardCount: 1 });
    const ks = [await registerActive(c, StreamARN, 'r1'), await registerActive(c, StreamARN, 'r2')];
    const rec = (i) => ({ PartitionKey: 'p', Data: Buffer.alloc(64 * 1024 - 1, i) });
    const put = [];
    for (const half of [0, 1]) {
      const r = await send(c, 'PutRecords', { StreamName: stream, Records: Array.from({ length: 6 }, (_, i) => rec(half * 6 + i)) });
      put.push(...r.Records.map((x) => x.SequenceNumber));
      if (!half) await sleep(300);
    }
    const total = 12 * 64 * 1024;  // record data and keys, about 768 KiB
    const ideal = (total - 64 * 1024) / (256 * 1024) * 1000;
    const t0 = Date.now();
    const subs = await Promise.all(ks.map((k) => subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } })));
    try {
      const took = await Promise.all(subs.map(async (s) => {
        const got = await s.until((r) => r.length >= 12, 20000);
        assert.equal(got.error, undefined, `${got.error?.name}: ${got.error?.message}`);
        assert.deepEqual(seqs(got.records), put);
        return Date.now() - t0;
      }));
      for (const ms of took) {
        assert.ok(ms >= ideal * 0.8, `a consumer received ${total} bytes in ${ms} ms: faster than 256 KiB/s (ideal ${ideal} ms)`);
        assert.ok(ms <= ideal + 1750, `a consumer took ${ms} ms (ideal ${ideal} ms): the consumers do not have independent budgets or the pump stalls`);
      }
      for (const s of subs) {
        const behind = s.events.map((e) => e.SubscribeToShardEvent.MillisBehindLatest);
        assert.ok(Math.max(...behind) >= 200, `MillisBehindLatest while throttled: ${behind.join(', ')}`);
      }
      // caught up: the next event says 0
      const ev = await subs[0].next(HEARTBEAT_MS + 2000);
      assert.equal(ev.SubscribeToShardEvent?.MillisBehindLatest, 0, JSON.stringify(ev));
    } finally { for (const s of subs) s.close(); }
  });
});

// ---------------------------------------------------------------------------
// REST door: Server-Sent Events

// A minimal EventSource: GET with Accept: text/event-stream over HTTP/1.1
// (node:http) or h2c (node:http2), parsed as the HTML spec's event-stream
// format. next(ms) resolves to the next dispatched { id, event, data } (data
// JSON-parsed), or { end: true } when the server finished the response.
function eventSource(endpoint, path, { headers = {}, h2 = false } = {}) {
  const queue = []; const waiters = [];
  const es = { status: undefined, headers: undefined, lastEventId: '', events: [], ended: false, raw: '' };
  const push = (v) => { const w = waiters.shift(); if (w) w(v); else queue.push(v); };
  let buf = ''; let data = []; let type = ''; let id;
  const line = (l) => {
    if (l === '') {
      if (id !== undefined) es.lastEventId = id;
      if (data.length) {
        const ev = { id: es.lastEventId, event: type || 'message', data: data.join('\n') };
        try { ev.json = JSON.parse(ev.data); } catch { /* not JSON */ }
        es.events.push(ev);
        push(ev);
      }
      data = []; type = ''; id = undefined;
      return;
    }
    if (l.startsWith(':')) return;
    const i = l.indexOf(':');
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? '' : l.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') type = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
  };
  const feed = (chunk) => {
    es.raw += chunk;
    buf += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(buf);
      if (!m || (m[0] === '\r' && m.index === buf.length - 1)) break;
      line(buf.slice(0, m.index));
      buf = buf.slice(m.index + m[0].length);
    }
  };
  const end = () => { es.ended = true; push({ end: true }); };
  const reqHeaders = { accept: 'text/event-stream', ...headers };
  es.opened = new Promise((resolve, reject) => {
    if (h2) {
      const session = http2.connect(endpoint);
      session.on('error', reject);
      const req = session.request({ ':method': 'GET', ':path': path, ...reqHeaders });
      req.setEncoding('utf8');
      req.on('response', (h) => { es.status = h[':status']; es.headers = h; resolve(es); });
      req.on('data', feed);
      req.on('end', () => { end(); session.close(); });
      req.on('error', (e) => { end(); reject(e); });
      es.close = () => { req.close(); session.destroy(); };
    } else {
      const u = new URL(endpoint);
      const req = http.request({ host: u.hostname, port: u.port, path, method: 'GET', headers: reqHeaders, agent: false }, (res) => {
        es.status = res.statusCode; es.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', feed);
        res.on('end', end);
        res.on('error', end);
        resolve(es);
      });
      req.on('error', (e) => { end(); reject(e); });
      req.end();
      es.close = () => req.destroy();
    }
  });
  es.next = (ms = 10000) => {
    if (queue.length) return Promise.resolve(queue.shift());
    if (es.ended) return Promise.resolve({ end: true });
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { waiters.splice(waiters.indexOf(w), 1); reject(new Error(`no SSE event within ${ms} ms (raw so far: ${es.raw.slice(-300)})`)); }, ms);
      const w = (v) => { clearTimeout(t); resolve(v); };
      waiters.push(w);
    });
  };
  // Reads until n record events were received (or the response ended).
  es.records = async (n, ms = 10000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const recs = es.events.filter((e) => e.event === 'record');
      if (recs.length >= n) return recs;
      const ev = await es.next(Math.max(1, deadline - Date.now()));
      if (ev.end) return es.events.filter((e) => e.event === 'record');
    }
  };
  return es;
}

function assertSseRecords(events, want, what) {
  assert.deepEqual(events.map((e) => e.id), want.map((w) => w.seq), `${what}: ids`);
  for (const [i, e] of events.entries()) {
    assert.equal(e.json.SequenceNumber, want[i].seq, `${what}: SequenceNumber`);
    assert.equal(Buffer.from(e.json.Data, 'base64').toString('utf8'), want[i].data, `${what}: Data`);
    assert.equal(typeof e.json.PartitionKey, 'string');
    assert.equal(typeof e.json.ApproximateArrivalTimestamp, 'number');
    assert.ok(Math.abs(e.json.ApproximateArrivalTimestamp * 1000 - Date.now()) < 120000, 'ApproximateArrivalTimestamp in epoch seconds');
  }
}

describe('REST door: Server-Sent Events', () => {
  let srv; let c;
  before(async () => {
    srv = await startSluice({ args: ['--subscription-ttl', `${TTL_MS}ms`, '--heartbeat', `${HEARTBEAT_MS}ms`] });
    c = client(srv.endpoint);
  });
  after(async () => {
    c?.destroy();
    const st = await srv?.stop();
    if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal} on SIGTERM:\n${srv.stderr().slice(-4000)}`);
  });

  const setup = async (prefix, consumers) => {
    const stream = streamName(prefix);
    const { StreamARN } = await createActive(c, stream, { ShardCount: 1 });
    for (const n of consumers) await registerActive(c, StreamARN, n);
    return stream;
  };
  const url = (stream, consumer, query) => `/v1/streams/${stream}/consumers/${consumer}/shards/${SHARD0}/subscribe?${query}`;

  test('EventSource-like client: one `record` event per record (id = sequence number), heartbeats when idle', async () => {
    const stream = await setup('sse', ['web']);
    const before = await putMany(c, stream, 4, 'pre');
    const es = eventSource(srv.endpoint, url(stream, 'web', 'from=TRIM_HORIZON'));
    try {
      await es.opened;
      assert.equal(es.status, 200);
      assert.match(es.headers['content-type'], /^text\/event-stream/);
      await es.records(4, 5000);
      const live = await putMany(c, stream, 5, 'live');
      const recs = await es.records(9, 5000);
      assertSseRecords(recs, [...before, ...live], 'SSE');
      assert.equal(es.lastEventId, live.at(-1).seq);
      // idle: a heartbeat arrives within --heartbeat (plus slack)
      const t = Date.now();
      let hb;
      while (!hb) { const ev = await es.next(HEARTBEAT_MS + 1500); assert.ok(!ev.end, 'ended before a heartbeat'); if (ev.event === 'heartbeat') hb = ev; }
      assert.ok(Date.now() - t <= HEARTBEAT_MS + 1500);
      assert.equal(typeof hb.json.MillisBehindLatest, 'number');
      assert.equal(es.events.filter((e) => e.event === 'record').length, 9, 'no record twice');
    } finally { es.close(); }
  });

  test('resume with Last-Event-ID: exactly the records after it (overrides from=), then the live ones', async () => {
    const stream = await setup('sse-resume', ['web']);
    const put = await putMany(c, stream, 10, 'r');
    const t0 = Date.now();
    const es1 = eventSource(srv.endpoint, url(stream, 'web', 'from=TRIM_HORIZON'));
    let last;
    try {
      await es1.opened;
      const first = (await es1.records(5, 5000)).slice(0, 5);
      assertSseRecords(first, put.slice(0, 5), 'before the drop');
      last = first.at(-1).id;
    } finally { es1.close(); }
    // reconnect like EventSource does, same consumer (after the 5-second rule's window)
    await sleep(Math.max(0, t0 + RULE_MS + 300 - Date.now()));
    const es2 = eventSource(srv.endpoint, url(stream, 'web', 'from=LATEST'), { headers: { 'last-event-id': last } });
    try {
      await es2.opened;
      assert.equal(es2.status, 200);
      await es2.records(5, 5000);
      const more = await putMany(c, stream, 2, 'more');
      const recs = await es2.records(7, 5000);
      // a heartbeat or the end shows nothing else is coming
      await es2.next(TTL_MS + 2000);
      assertSseRecords(es2.events.filter((e) => e.event === 'record'), [...put.slice(5), ...more], 'after Last-Event-ID');
      void recs;
    } finally { es2.close(); }
  });

  test('the subscription ends after --subscription-ttl; EventSource-style reconnection with Last-Event-ID continues exactly', async () => {
    const stream = await setup('sse-ttl', ['web']);
    const t0 = Date.now();
    const es = eventSource(srv.endpoint, url(stream, 'web', 'from=TRIM_HORIZON'));
    let put;
    try {
      await es.opened;
      put = await putMany(c, stream, 6, 'ttl');
      await es.records(6, 5000);
      for (;;) { const ev = await es.next(TTL_MS + 5000); if (ev.end) break; }
      assert.ok(Date.now() - t0 >= TTL_MS - 100, `ended after ${Date.now() - t0} ms`);
      assertSseRecords(es.events.filter((e) => e.event === 'record'), put, 'first connection');
    } finally { es.close(); }
    const gap = await putMany(c, stream, 3, 'gap');
    await sleep(Math.max(0, t0 + RULE_MS + 300 - Date.now()));
    const es2 = eventSource(srv.endpoint, url(stream, 'web', 'from=TRIM_HORIZON'), { headers: { 'Last-Event-ID': es.lastEventId } });
    try {
      await es2.opened;
      assert.equal(es2.status, 200);
      await es2.records(3, 5000);
      await es2.next(TTL_MS + 2000);
      assertSseRecords(es2.events.filter((e) => e.event === 'record'), gap, 'after reconnection');
    } finally { es2.close(); }
  });

  test('AT_SEQUENCE_NUMBER / AFTER_SEQUENCE_NUMBER / AT_TIMESTAMP / LATEST query positions', async () => {
    const stream = await setup('sse-pos', ['at', 'after', 'ts', 'latest']);
    const a = await putMany(c, stream, 3, 'a');
    await sleep(150);
    const T = Date.now() / 1000;
    await sleep(150);
    const b = await putMany(c, stream, 3, 'b');
    const all = [...a, ...b];
    for (const [name, q, want] of [
      ['at', `from=AT_SEQUENCE_NUMBER&sequenceNumber=${all[1].seq}`, all.slice(1)],
      ['after', `from=AFTER_SEQUENCE_NUMBER&sequenceNumber=${all[1].seq}`, all.slice(2)],
      ['ts', `from=AT_TIMESTAMP&timestamp=${T.toFixed(3)}`, b],
    ]) {
      const es = eventSource(srv.endpoint, url(stream, name, q));
      try {
        await es.opened;
        assert.equal(es.status, 200, `${q}: ${es.raw}`);
        await es.records(want.length, 5000);
        await es.next(TTL_MS + 2000);
        assertSseRecords(es.events.filter((e) => e.event === 'record'), want, q);
      } finally { es.close(); }
    }
    const es = eventSource(srv.endpoint, url(stream, 'latest', 'from=LATEST'));
    try {
      await es.opened;
      const fresh = await putMany(c, stream, 2, 'fresh');
      await es.records(2, 5000);
      await es.next(TTL_MS + 2000);
      assertSseRecords(es.events.filter((e) => e.event === 'record'), fresh, 'LATEST');
    } finally { es.close(); }
  });

  test('over h2c too (node:http2 client)', async () => {
    const stream = await setup('sse-h2', ['web']);
    const put = await putMany(c, stream, 3, 'h2');
    const es = eventSource(srv.endpoint, url(stream, 'web', 'from=TRIM_HORIZON'), { h2: true });
    try {
      await es.opened;
      assert.equal(es.status, 200);
      assert.match(es.headers['content-type'], /^text\/event-stream/);
      assertSseRecords((await es.records(3, 5000)).slice(0, 3), put, 'h2c');
    } finally { es.close(); }
  });

  test('unknown consumer or shard: a JSON 400 ResourceNotFoundException, not an event stream', async () => {
    const stream = await setup('sse-err', ['web']);
    for (const path of [url(stream, 'ghost', 'from=LATEST'), `/v1/streams/${stream}/consumers/web/shards/shardId-000000000007/subscribe?from=LATEST`,
      url(streamName('nope'), 'web', 'from=LATEST')]) {
      const es = eventSource(srv.endpoint, path);
      try {
        await es.opened;
        assert.equal(es.status, 400, path);
        await es.next(5000).catch(() => {});
        assert.equal(JSON.parse(es.raw).__type, 'ResourceNotFoundException', `${path}: ${es.raw}`);
      } finally { es.close(); }
    }
  });

  test('deregistering the consumer ends its SSE subscription with an `error` event (ResourceNotFoundException)', async () => {
    const stream = await setup('sse-dereg', ['gone']);
    const es = eventSource(srv.endpoint, url(stream, 'gone', 'from=TRIM_HORIZON'));
    try {
      await es.opened;
      assert.equal(es.status, 200);
      const [p] = await putMany(c, stream, 1, 'd');
      await es.records(1, 5000);
      await send(c, 'DeregisterStreamConsumer', { StreamARN: (await send(c, 'DescribeStreamSummary', { StreamName: stream })).StreamDescriptionSummary.StreamARN, ConsumerName: 'gone' });
      let err;
      for (;;) {
        const ev = await es.next(5000);
        if (ev.end) break;
        if (ev.event === 'error') err = ev;
      }
      assert.ok(err, `no error event before the end:\n${es.raw}`);
      assert.equal(err.json?.__type, 'ResourceNotFoundException', err.data);
      assertSseRecords(es.events.filter((e) => e.event === 'record'), [p], 'before the deregistration');
    } finally { es.close(); }
  });

  test('curl -N receives the records as they are put', async () => {
    const stream = await setup('sse-curl', ['cli']);
    const pre = await putMany(c, stream, 2, 'pre');
    const curl = spawn('curl', ['-sS', '-N', '--max-time', '10', `${srv.endpoint}${url(stream, 'cli', 'from=TRIM_HORIZON')}`],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    curl.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    curl.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
    const exited = new Promise((r) => curl.on('exit', r));
    const waitFor = async (pred, ms) => {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`curl output so far:\n${out}\nstderr: ${err}`);
        await sleep(20);
      }
    };
    try {
      await waitFor(() => pre.every((p) => out.includes(`id: ${p.seq}\n`)), 5000);
      const live = await putMany(c, stream, 2, 'live');
      await waitFor(() => live.every((p) => out.includes(`id: ${p.seq}\n`)), 5000);
      for (const p of [...pre, ...live]) {
        const m = new RegExp(`id: ${p.seq}\nevent: record\ndata: (\\{.*\\})\n\n`).exec(out);
        assert.ok(m, `record ${p.seq} framed as id/event/data:\n${out}`);
        assert.equal(Buffer.from(JSON.parse(m[1]).Data, 'base64').toString(), p.data);
      }
      assert.equal(out.match(/^event: record$/gm).length, 4, 'each record once');
    } finally { curl.kill('SIGTERM'); await exited; }
  });
});
