// TagResource / UntagResource / ListTagsForResource through
// @aws-sdk/client-kinesis against the real binary, on stream ARNs (the same
// tags as AddTagsToStream) and consumer ARNs, with limits, errors, and
// consumer tags surviving a restart.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startSluice, client, send, expectError, createActive, streamName, waitConsumer,
} from './lib/harness.mjs';

let srv; let c;
before(async () => { srv = await startSluice(); c = client(srv.endpoint); });
after(async () => {
  c?.destroy();
  const st = await srv?.stop();
  if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}:\n${srv.stderr().slice(-4000)}`);
});

const tagsOf = async (ResourceARN) => (await send(c, 'ListTagsForResource', { ResourceARN })).Tags;
const streamArn = async (name) => (await send(c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamARN;
const consumer = async (StreamARN, ConsumerName) => {
  const r = await send(c, 'RegisterStreamConsumer', { StreamARN, ConsumerName });
  await waitConsumer(c, r.Consumer.ConsumerARN);
  return r.Consumer.ConsumerARN;
};

describe('TagResource', () => {
  test('a stream ARN: the same tags as AddTagsToStream / ListTagsForStream', async () => {
    const name = streamName('tr');
    await createActive(c, name, { ShardCount: 1 });
    const arn = await streamArn(name);
    await send(c, 'TagResource', { ResourceARN: arn, Tags: { team: 'data', env: 'dev' } });
    await send(c, 'AddTagsToStream', { StreamName: name, Tags: { owner: 'me' } });
    assert.deepEqual(await tagsOf(arn), [
      { Key: 'env', Value: 'dev' }, { Key: 'owner', Value: 'me' }, { Key: 'team', Value: 'data' }]);
    const viaStream = (await send(c, 'ListTagsForStream', { StreamName: name })).Tags;
    assert.deepEqual(viaStream, await tagsOf(arn));
    await send(c, 'UntagResource', { ResourceARN: arn, TagKeys: ['env', 'absent'] });
    assert.deepEqual((await tagsOf(arn)).map((t) => t.Key), ['owner', 'team']);
  });

  test('a consumer ARN: its own tags, apart from the stream', async () => {
    const name = streamName('trc');
    await createActive(c, name, { ShardCount: 1 });
    const sarn = await streamArn(name);
    const carn = await consumer(sarn, 'reader');
    assert.deepEqual(await tagsOf(carn), []);
    await send(c, 'TagResource', { ResourceARN: carn, Tags: { app: 'billing' } });
    await send(c, 'TagResource', { ResourceARN: carn, Tags: { app: 'billing-v2', tier: 'gold' } });
    assert.deepEqual(await tagsOf(carn), [{ Key: 'app', Value: 'billing-v2' }, { Key: 'tier', Value: 'gold' }]);
    assert.deepEqual(await tagsOf(sarn), [], 'the stream keeps its own (no) tags');
    await send(c, 'UntagResource', { ResourceARN: carn, TagKeys: ['tier'] });
    assert.deepEqual(await tagsOf(carn), [{ Key: 'app', Value: 'billing-v2' }]);

    // Limits: 50 tags per resource, LimitExceededException past it; nothing changes.
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']));
    await expectError(send(c, 'TagResource', { ResourceARN: carn, Tags: many }), 'LimitExceededException');
    assert.equal((await tagsOf(carn)).length, 1);

    // Survives a restart.
    c.destroy();
    assert.equal((await srv.stop({ keepData: true })).code, 0);
    srv = await startSluice({ dataDir: srv.dataDir });
    c = client(srv.endpoint);
    assert.deepEqual(await tagsOf(carn), [{ Key: 'app', Value: 'billing-v2' }]);
  });

  test('errors: bad ARNs, unknown resources, bad tags', async () => {
    await expectError(send(c, 'ListTagsForResource', { ResourceARN: 'nope' }), 'ValidationException',
      /Value 'nope' at 'resourceARN' failed to satisfy constraint: Member must satisfy regular expression pattern/);
    await expectError(send(c, 'ListTagsForResource', { ResourceARN: 'arn:aws:kinesis:us-east-1:123456789012:table/x' }),
      'InvalidArgumentException');
    await expectError(send(c, 'TagResource', { ResourceARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${streamName('gone')}`, Tags: { a: 'b' } }),
      'ResourceNotFoundException');
    await expectError(send(c, 'UntagResource', { ResourceARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/x/consumer/y:1', TagKeys: ['a'] }),
      'ResourceNotFoundException');
    const name = streamName('tre');
    await createActive(c, name, { ShardCount: 1 });
    const arn = await streamArn(name);
    await expectError(send(c, 'TagResource', { ResourceARN: arn, Tags: {} }), 'ValidationException', /at 'tags' failed to satisfy constraint/);
    await expectError(send(c, 'UntagResource', { ResourceARN: arn, TagKeys: [] }), 'ValidationException', /at 'tagKeys' failed to satisfy constraint/);
    assert.deepEqual(await tagsOf(arn), []);
  });
});
