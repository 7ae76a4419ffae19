// Enhanced fan-out consumers through @aws-sdk/client-kinesis (HTTP/2) against
// the real binary: RegisterStreamConsumer, DescribeStreamConsumer,
// ListStreamConsumers, DeregisterStreamConsumer and their errors, the 20
// consumers limit, unique names, a deregistration ending a live subscription,
// DeleteStream EnforceConsumerDeletion, consumers surviving a restart, and the
// REST door's consumer routes.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startSluice, client, send, expectError, validationRe, createActive, streamName, consumerArnRe,
  waitConsumer, waitConsumerGone, registerActive, subscribe, waitGone, waitStatus, rawH1,
} from './lib/harness.mjs';

const SHARD0 = 'shardId-000000000000';
const missingStreamArn = (name) => `arn:aws:kinesis:us-east-1:000000000000:stream/${name}`;

let srv; let c;
before(async () => { srv = await startSluice(); c = client(srv.endpoint); });
after(async () => {
  c?.destroy();
  const st = await srv?.stop();
  if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal} on SIGTERM:\n${srv.stderr().slice(-4000)}`);
});

const newStream = async (prefix = 'cs', shards = 1) => {
  const name = streamName(prefix);
  const { StreamARN } = await createActive(c, name, { ShardCount: shards });
  return { name, arn: StreamARN };
};

describe('RegisterStreamConsumer / DescribeStreamConsumer', () => {
  test('register: CREATING then ACTIVE, ARN <stream ARN>/consumer/<name>:<epoch seconds>', async () => {
    const { arn } = await newStream();
    const t0 = Date.now();
    const r = await send(c, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'app-1' });
    assert.equal(r.$metadata.httpStatusCode, 200);
    const k = r.Consumer;
    assert.equal(k.ConsumerName, 'app-1');
    assert.match(k.ConsumerARN, consumerArnRe(arn, 'app-1'));
    assert.equal(k.ConsumerStatus, 'CREATING');
    assert.ok(k.ConsumerCreationTimestamp instanceof Date);
    assert.ok(Math.abs(k.ConsumerCreationTimestamp.getTime() - t0) < 60000,
      `ConsumerCreationTimestamp ${k.ConsumerCreationTimestamp.toISOString()} (epoch seconds expected)`);
    const epoch = Number(k.ConsumerARN.split(':').pop());
    assert.ok(Math.abs(epoch * 1000 - k.ConsumerCreationTimestamp.getTime()) < 2000, 'ARN suffix is the creation second');
    const d = await waitConsumer(c, k.ConsumerARN, 'ACTIVE');
    assert.deepEqual(d, { ...k, ConsumerStatus: 'ACTIVE', StreamARN: arn });
  });

  test('describe by ConsumerARN, by StreamARN + ConsumerName, and by all three', async () => {
    const { arn } = await newStream();
    const d = await registerActive(c, arn, 'by-name');
    const a = (await send(c, 'DescribeStreamConsumer', { ConsumerARN: d.ConsumerARN })).ConsumerDescription;
    const b = (await send(c, 'DescribeStreamConsumer', { StreamARN: arn, ConsumerName: 'by-name' })).ConsumerDescription;
    const all = (await send(c, 'DescribeStreamConsumer', { StreamARN: arn, ConsumerName: 'by-name', ConsumerARN: d.ConsumerARN })).ConsumerDescription;
    assert.deepEqual(a, d);
    assert.deepEqual(b, d);
    assert.deepEqual(all, d);
    assert.equal(d.StreamARN, arn);
  });

  test('same name twice on one stream: ResourceInUseException; the same name on another stream is fine', async () => {
    const s1 = await newStream();
    const s2 = await newStream();
    const first = await registerActive(c, s1.arn, 'dup');
    await expectError(send(c, 'RegisterStreamConsumer', { StreamARN: s1.arn, ConsumerName: 'dup' }), 'ResourceInUseException', /dup/);
    const other = await registerActive(c, s2.arn, 'dup');
    assert.notEqual(other.ConsumerARN, first.ConsumerARN);
    const list = (await send(c, 'ListStreamConsumers', { StreamARN: s1.arn })).Consumers;
    assert.deepEqual(list.map((x) => x.ConsumerARN), [first.ConsumerARN]);
  });

  test('at most 20 consumers per stream: the 21st is LimitExceededException and is not created', async () => {
    const { arn } = await newStream('lim');
    for (let i = 0; i < 20; i++) await registerActive(c, arn, `c${i}`);
    await expectError(send(c, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'c20' }), 'LimitExceededException', /.+/);
    await expectError(send(c, 'DescribeStreamConsumer', { StreamARN: arn, ConsumerName: 'c20' }), 'ResourceNotFoundException', /.+/);
    const list = (await send(c, 'ListStreamConsumers', { StreamARN: arn, MaxResults: 100 })).Consumers;
    assert.equal(list.length, 20);
    // a slot freed by a deregistration can be used again
    const gone = list.find((x) => x.ConsumerName === 'c7');
    await send(c, 'DeregisterStreamConsumer', { ConsumerARN: gone.ConsumerARN });
    await waitConsumerGone(c, gone.ConsumerARN);
    await registerActive(c, arn, 'c20');
  });

  test('register on a missing stream: ResourceNotFoundException', async () => {
    await expectError(send(c, 'RegisterStreamConsumer', { StreamARN: missingStreamArn(streamName('nope')), ConsumerName: 'x' }),
      'ResourceNotFoundException', /.+/);
  });

  test('register with an invalid ConsumerName: ValidationException', async () => {
    const { arn } = await newStream();
    await expectError(send(c, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'bad name!' }), 'ValidationException',
      validationRe('bad name!', 'consumerName', 'satisfy regular expression pattern: [a-zA-Z0-9_.-]+'));
    const long = 'n'.repeat(129);
    await expectError(send(c, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: long }), 'ValidationException',
      validationRe(long, 'consumerName', 'have length less than or equal to 128'));
    assert.deepEqual((await send(c, 'ListStreamConsumers', { StreamARN: arn })).Consumers, []);
  });

  test('describe a missing consumer (by ARN and by name): ResourceNotFoundException', async () => {
    const { arn } = await newStream();
    await expectError(send(c, 'DescribeStreamConsumer', { ConsumerARN: `${arn}/consumer/ghost:1700000000` }), 'ResourceNotFoundException', /.+/);
    await expectError(send(c, 'DescribeStreamConsumer', { StreamARN: arn, ConsumerName: 'ghost' }), 'ResourceNotFoundException', /.+/);
  });

  test('describe with neither ConsumerARN nor StreamARN + ConsumerName: a 400 client error', async () => {
    const { arn } = await newStream();
    for (const input of [{ StreamARN: arn }, { ConsumerName: 'x' }, {}]) {
      const e = await send(c, 'DescribeStreamConsumer', input).then(() => assert.fail(`accepted ${JSON.stringify(input)}`), (err) => err);
      assert.ok(['InvalidArgumentException', 'ValidationException'].includes(e.name), `${JSON.stringify(input)}: ${e.name}: ${e.message}`);
      assert.equal(e.$metadata.httpStatusCode, 400);
    }
  });
});

describe('ListStreamConsumers', () => {
  test('pagination with MaxResults and NextToken: every consumer once', async () => {
    const { arn } = await newStream('list');
    const arns = [];
    for (let i = 0; i < 12; i++) arns.push((await registerActive(c, arn, `k${String(i).padStart(2, '0')}`)).ConsumerARN);
    const seen = [];
    const pages = [];
    let token;
    for (let i = 0; i < 10; i++) {
      const r = await send(c, 'ListStreamConsumers', token ? { StreamARN: arn, NextToken: token, MaxResults: 5 } : { StreamARN: arn, MaxResults: 5 });
      pages.push(r.Consumers.length);
      for (const k of r.Consumers) {
        assert.equal(k.ConsumerStatus, 'ACTIVE');
        assert.ok(k.ConsumerCreationTimestamp instanceof Date);
        assert.equal(k.StreamARN, undefined, 'list entries are Consumer, not ConsumerDescription');
        seen.push(k.ConsumerARN);
      }
      token = r.NextToken;
      if (!token) break;
    }
    assert.deepEqual(pages, [5, 5, 2]);
    assert.deepEqual([...seen].sort(), [...arns].sort());
    const all = await send(c, 'ListStreamConsumers', { StreamARN: arn });
    assert.equal(all.Consumers.length, 12);
    assert.equal(all.NextToken, undefined);
  });

  test('a stream without consumers: empty list', async () => {
    const { arn } = await newStream();
    const r = await send(c, 'ListStreamConsumers', { StreamARN: arn });
    assert.deepEqual(r.Consumers, []);
    assert.equal(r.NextToken, undefined);
  });

  test('MaxResults out of 1..10000: ValidationException', async () => {
    const { arn } = await newStream();
    await expectError(send(c, 'ListStreamConsumers', { StreamARN: arn, MaxResults: 0 }), 'ValidationException',
      validationRe('0', 'maxResults', 'have value greater than or equal to 1'));
    await expectError(send(c, 'ListStreamConsumers', { StreamARN: arn, MaxResults: 10001 }), 'ValidationException',
      validationRe('10001', 'maxResults', 'have value less than or equal to 10000'));
  });

  test('missing stream: ResourceNotFoundException; garbage NextToken: InvalidArgumentException', async () => {
    await expectError(send(c, 'ListStreamConsumers', { StreamARN: missingStreamArn(streamName('nope')) }), 'ResourceNotFoundException', /.+/);
    const { arn } = await newStream();
    await expectError(send(c, 'ListStreamConsumers', { StreamARN: arn, NextToken: 'not-a-token' }), 'InvalidArgumentException', /.+/);
  });
});

describe('DeregisterStreamConsumer', () => {
  test('by ARN and by StreamARN + ConsumerName: gone afterwards, the name reusable', async () => {
    const { arn } = await newStream();
    const a = await registerActive(c, arn, 'a');
    const b = await registerActive(c, arn, 'b');
    const r = await send(c, 'DeregisterStreamConsumer', { ConsumerARN: a.ConsumerARN });
    assert.equal(r.$metadata.httpStatusCode, 200);
    try {
      const d = (await send(c, 'DescribeStreamConsumer', { ConsumerARN: a.ConsumerARN })).ConsumerDescription;
      assert.equal(d.ConsumerStatus, 'DELETING');
    } catch (e) { assert.equal(e.name, 'ResourceNotFoundException'); }
    await waitConsumerGone(c, a.ConsumerARN);
    await send(c, 'DeregisterStreamConsumer', { StreamARN: arn, ConsumerName: 'b' });
    await waitConsumerGone(c, b.ConsumerARN);
    assert.deepEqual((await send(c, 'ListStreamConsumers', { StreamARN: arn })).Consumers, []);
    await expectError(send(c, 'DeregisterStreamConsumer', { ConsumerARN: a.ConsumerARN }), 'ResourceNotFoundException', /.+/);
    const again = await registerActive(c, arn, 'a');
    assert.match(again.ConsumerARN, consumerArnRe(arn, 'a'));
  });

  test('missing consumer: ResourceNotFoundException', async () => {
    const { arn } = await newStream();
    await expectError(send(c, 'DeregisterStreamConsumer', { StreamARN: arn, ConsumerName: 'ghost' }), 'ResourceNotFoundException', /.+/);
    await expectError(send(c, 'DeregisterStreamConsumer', { ConsumerARN: `${arn}/consumer/ghost:1700000000` }), 'ResourceNotFoundException', /.+/);
  });

  test('ends that consumer\'s live subscription with a ResourceNotFoundException event, and only that one', async () => {
    const { name, arn } = await newStream('dereg');
    const k1 = await registerActive(c, arn, 'doomed');
    const k2 = await registerActive(c, arn, 'kept');
    const s1 = await subscribe(c, { ConsumerARN: k1.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } });
    const s2 = await subscribe(c, { ConsumerARN: k2.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } });
    try {
      await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'p', Data: Buffer.from('before') });
      assert.equal((await s1.until((r) => r.length >= 1)).records.length, 1);
      await send(c, 'DeregisterStreamConsumer', { ConsumerARN: k1.ConsumerARN });
      const end = await s1.until(() => false, 10000);
      assert.ok(end.error, `the subscription ended without an error (end=${end.end})`);
      assert.equal(end.error.name, 'ResourceNotFoundException', `${end.error.name}: ${end.error.message}`);
      // the other consumer goes on
      await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'p', Data: Buffer.from('after') });
      const got = await s2.until((r) => r.length >= 2);
      assert.deepEqual(got.records.map((r) => Buffer.from(r.Data).toString()), ['before', 'after']);
      assert.equal(got.error, undefined);
      await waitConsumerGone(c, k1.ConsumerARN);
      await expectError(send(c, 'SubscribeToShard', { ConsumerARN: k1.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }),
        'ResourceNotFoundException', /.+/);
    } finally { s1.close(); s2.close(); }
  });
});

describe('DeleteStream EnforceConsumerDeletion', () => {
  test('with consumers: refused unless EnforceConsumerDeletion, which removes them and ends their subscriptions', async () => {
    const { name, arn } = await newStream('enf');
    const k = await registerActive(c, arn, 'c1');
    await expectError(send(c, 'DeleteStream', { StreamName: name }), 'ResourceInUseException', /.+/);
    await expectError(send(c, 'DeleteStream', { StreamName: name, EnforceConsumerDeletion: false }), 'ResourceInUseException', /.+/);
    assert.equal((await send(c, 'DescribeStreamConsumer', { ConsumerARN: k.ConsumerARN })).ConsumerDescription.ConsumerStatus, 'ACTIVE');
    const s = await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } });
    try {
      await send(c, 'DeleteStream', { StreamName: name, EnforceConsumerDeletion: true });
      const end = await s.until(() => false, 10000);
      assert.ok(end.error, 'the subscription ended without an error');
      assert.equal(end.error.name, 'ResourceNotFoundException', `${end.error.name}: ${end.error.message}`);
    } finally { s.close(); }
    await waitGone(c, name);
    await expectError(send(c, 'DescribeStreamConsumer', { ConsumerARN: k.ConsumerARN }), 'ResourceNotFoundException', /.+/);
    // a new stream with the same name starts without consumers
    const { StreamARN } = await createActive(c, name, { ShardCount: 1 });
    assert.deepEqual((await send(c, 'ListStreamConsumers', { StreamARN })).Consumers, []);
  });
});

describe('REST door consumer routes', () => {
  const rest = (method, path, body) => rawH1(srv.endpoint, {
    method, path, contentType: 'application/json', ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

  test('POST/GET/GET/DELETE /v1/streams/{stream}/consumers[/{name}]', async () => {
    const { name, arn } = await newStream('rest');
    const reg = await rest('POST', `/v1/streams/${name}/consumers`, { ConsumerName: 'web' });
    assert.equal(reg.status, 200, reg.body);
    assert.equal(reg.json.Consumer.ConsumerName, 'web');
    assert.match(reg.json.Consumer.ConsumerARN, consumerArnRe(arn, 'web'));
    assert.ok(['CREATING', 'ACTIVE'].includes(reg.json.Consumer.ConsumerStatus));
    assert.equal(typeof reg.json.Consumer.ConsumerCreationTimestamp, 'number');
    await waitConsumer(c, reg.json.Consumer.ConsumerARN, 'ACTIVE');
    const desc = await rest('GET', `/v1/streams/${name}/consumers/web`);
    assert.equal(desc.status, 200, desc.body);
    assert.equal(desc.json.ConsumerDescription.ConsumerARN, reg.json.Consumer.ConsumerARN);
    assert.equal(desc.json.ConsumerDescription.StreamARN, arn);
    assert.equal(desc.json.ConsumerDescription.ConsumerStatus, 'ACTIVE');
    const list = await rest('GET', `/v1/streams/${name}/consumers`);
    assert.equal(list.status, 200, list.body);
    assert.deepEqual(list.json.Consumers.map((x) => x.ConsumerName), ['web']);
    const dup = await rest('POST', `/v1/streams/${name}/consumers`, { ConsumerName: 'web' });
    assert.equal(dup.status, 400);
    assert.equal(dup.json.__type, 'ResourceInUseException');
    const del = await rest('DELETE', `/v1/streams/${name}/consumers/web`);
    assert.equal(del.status, 200, del.body);
    await waitConsumerGone(c, reg.json.Consumer.ConsumerARN);
    const gone = await rest('GET', `/v1/streams/${name}/consumers/web`);
    assert.equal(gone.status, 400);
    assert.equal(gone.json.__type, 'ResourceNotFoundException');
    const missing = await rest('GET', `/v1/streams/${streamName('nope')}/consumers`);
    assert.equal(missing.status, 400);
    assert.equal(missing.json.__type, 'ResourceNotFoundException');
  });
});

describe('consumers survive a restart', () => {
  test('registered consumers keep ARN, name, timestamp and ACTIVE; deregistered ones stay gone; subscriptions work', async () => {
    let s2 = await startSluice();
    let c2 = client(s2.endpoint);
    try {
      const name = streamName('persist');
      const { StreamARN: arn } = await createActive(c2, name, { ShardCount: 1 });
      const a = await registerActive(c2, arn, 'alpha');
      const b = await registerActive(c2, arn, 'beta');
      const g = await registerActive(c2, arn, 'gamma');
      await send(c2, 'DeregisterStreamConsumer', { ConsumerARN: g.ConsumerARN });
      await waitConsumerGone(c2, g.ConsumerARN);
      const put = await send(c2, 'PutRecord', { StreamName: name, PartitionKey: 'p', Data: Buffer.from('kept') });
      // a live subscription during the restart: SIGTERM ends it cleanly and promptly
      const live = await subscribe(c2, { ConsumerARN: b.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } });
      const t0 = Date.now();
      try {
        const ending = live.until(() => false, 8000); // keep reading, as a real consumer does
        s2 = await s2.restart();
        const stopMs = Date.now() - t0;
        const end = await ending;
        assert.deepEqual(end.records.map((r) => r.SequenceNumber), [put.SequenceNumber]);
        assert.equal(end.error, undefined, `the subscription failed on SIGTERM: ${end.error?.name}: ${end.error?.message}`);
        assert.ok(end.end);
        assert.ok(stopMs < 5000, `SIGTERM with a live subscription took ${stopMs} ms (waited for --drain-timeout?)`);
      } finally { live.close(); }
      c2.destroy();
      c2 = client(s2.endpoint);
      const list = (await send(c2, 'ListStreamConsumers', { StreamARN: arn })).Consumers;
      assert.deepEqual(list.map((x) => x.ConsumerName).sort(), ['alpha', 'beta']);
      for (const want of [a, b]) {
        const d = (await send(c2, 'DescribeStreamConsumer', { ConsumerARN: want.ConsumerARN })).ConsumerDescription;
        assert.deepEqual(d, want);
      }
      await expectError(send(c2, 'DescribeStreamConsumer', { ConsumerARN: g.ConsumerARN }), 'ResourceNotFoundException', /.+/);
      await expectError(send(c2, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'alpha' }), 'ResourceInUseException', /alpha/);
      const s = await subscribe(c2, { ConsumerARN: a.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } });
      try {
        const got = await s.until((r) => r.length >= 1);
        assert.deepEqual(got.records.map((r) => r.SequenceNumber), [put.SequenceNumber]);
      } finally { s.close(); }
    } finally {
      c2.destroy();
      const st = await s2.stop();
      assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}:\n${s2.stderr().slice(-4000)}`);
    }
  });
});

describe('CREATING state (server with --stream-delay 800ms)', () => {
  let slow; let cs;
  before(async () => { slow = await startSluice({ args: ['--stream-delay', '800ms'] }); cs = client(slow.endpoint); });
  after(async () => { cs?.destroy(); await slow?.stop(); });

  test('CREATING for a while, SubscribeToShard refused until ACTIVE; DELETING after deregistration', async () => {
    const name = streamName('slow');
    await send(cs, 'CreateStream', { StreamName: name, ShardCount: 1 });
    const { StreamARN: arn } = await waitStatus(cs, name, 'ACTIVE');
    const r = await send(cs, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'late' });
    const d0 = (await send(cs, 'DescribeStreamConsumer', { ConsumerARN: r.Consumer.ConsumerARN })).ConsumerDescription;
    assert.equal(d0.ConsumerStatus, 'CREATING');
    await expectError(send(cs, 'SubscribeToShard', { ConsumerARN: r.Consumer.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } }),
      'ResourceInUseException', /.+/);
    await waitConsumer(cs, r.Consumer.ConsumerARN, 'ACTIVE');
    await send(cs, 'DeregisterStreamConsumer', { ConsumerARN: r.Consumer.ConsumerARN });
    const d1 = (await send(cs, 'DescribeStreamConsumer', { ConsumerARN: r.Consumer.ConsumerARN })).ConsumerDescription;
    assert.equal(d1.ConsumerStatus, 'DELETING');
    await waitConsumerGone(cs, r.Consumer.ConsumerARN);
  });

  test('at most 5 consumers CREATING at once: the 6th is LimitExceededException', async () => {
    const name = streamName('burst');
    await send(cs, 'CreateStream', { StreamName: name, ShardCount: 1 });
    await waitStatus(cs, name, 'ACTIVE');
    const arn = (await send(cs, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamARN;
    const t0 = Date.now();
    const arns = [];
    for (let i = 0; i < 5; i++) arns.push((await send(cs, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: `b${i}` })).Consumer.ConsumerARN);
    const e = await send(cs, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'b5' }).then(() => null, (err) => err);
    if (Date.now() - t0 < 700) {
      assert.ok(e, 'a 6th consumer was registered while 5 were CREATING');
      assert.equal(e.name, 'LimitExceededException', `${e.name}: ${e.message}`);
    } // else too slow a machine to tell: the first ones may be ACTIVE already
    for (const a of arns) await waitConsumer(cs, a, 'ACTIVE');
    if (e) await send(cs, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'b5' });
  });
});
