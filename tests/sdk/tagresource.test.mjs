// TagResource / UntagResource / ListTagsForResource through
// @aws-sdk/client-kinesis against the real binary, on stream ARNs (the same
// tags as AddTagsToStream) and consumer ARNs, with limits, errors, and
// consumer tags surviving a restart.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  useSluice, startSluice, client, send, expectError, createActive, streamName, waitConsumer,
} from './lib/harness.mjs';

const h = useSluice();

const tagsOf = async (ResourceARN) => (await send(h.c, 'ListTagsForResource', { ResourceARN })).Tags;
const streamArn = async (name) => (await send(h.c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamARN;
const consumer = async (StreamARN, ConsumerName) => {
  const r = await send(h.c, 'RegisterStreamConsumer', { StreamARN, ConsumerName });
  await waitConsumer(h.c, r.Consumer.ConsumerARN);
  return r.Consumer.ConsumerARN;
};

describe('TagResource', () => {
  test('a stream ARN: the same tags as AddTagsToStream / ListTagsForStream', async () => {
    const name = streamName('tr');
    await createActive(h.c, name, { ShardCount: 1 });
    const arn = await streamArn(name);
    await send(h.c, 'TagResource', { ResourceARN: arn, Tags: { team: 'data', env: 'dev' } });
    await send(h.c, 'AddTagsToStream', { StreamName: name, Tags: { owner: 'me' } });
    assert.deepEqual(await tagsOf(arn), [
      { Key: 'env', Value: 'dev' }, { Key: 'owner', Value: 'me' }, { Key: 'team', Value: 'data' }]);
    const viaStream = (await send(h.c, 'ListTagsForStream', { StreamName: name })).Tags;
    assert.deepEqual(viaStream, await tagsOf(arn));
    await send(h.c, 'UntagResource', { ResourceARN: arn, TagKeys: ['env', 'absent'] });
    assert.deepEqual((await tagsOf(arn)).map((t) => t.Key), ['owner', 'team']);
  });

  test('a consumer ARN: its own tags, apart from the stream', async () => {
    const name = streamName('trc');
    await createActive(h.c, name, { ShardCount: 1 });
    const sarn = await streamArn(name);
    const carn = await consumer(sarn, 'reader');
    assert.deepEqual(await tagsOf(carn), []);
    await send(h.c, 'TagResource', { ResourceARN: carn, Tags: { app: 'billing' } });
    await send(h.c, 'TagResource', { ResourceARN: carn, Tags: { app: 'billing-v2', tier: 'gold' } });
    assert.deepEqual(await tagsOf(carn), [{ Key: 'app', Value: 'billing-v2' }, { Key: 'tier', Value: 'gold' }]);
    assert.deepEqual(await tagsOf(sarn), [], 'the stream keeps its own (no) tags');
    await send(h.c, 'UntagResource', { ResourceARN: carn, TagKeys: ['tier'] });
    assert.deepEqual(await tagsOf(carn), [{ Key: 'app', Value: 'billing-v2' }]);

    // Limits: 50 tags per resource, LimitExceededException past it; nothing changes.
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']));
    await expectError(send(h.c, 'TagResource', { ResourceARN: carn, Tags: many }), 'LimitExceededException');
    assert.equal((await tagsOf(carn)).length, 1);

    // Survives a restart.
    h.c.destroy();
    assert.equal((await h.srv.stop({ keepData: true })).code, 0);
    h.srv = await startSluice({ dataDir: h.srv.dataDir });
    h.c = client(h.srv.endpoint);
    assert.deepEqual(await tagsOf(carn), [{ Key: 'app', Value: 'billing-v2' }]);
  });

  test('errors: bad ARNs, unknown resources, bad tags', async () => {
    await expectError(send(h.c, 'ListTagsForResource', { ResourceARN: 'nope' }), 'ValidationException',
      /Value 'nope' at 'resourceARN' failed to satisfy constraint: Member must satisfy regular expression pattern/);
    await expectError(send(h.c, 'ListTagsForResource', { ResourceARN: 'arn:aws:kinesis:us-east-1:123456789012:table/x' }),
      'InvalidArgumentException');
    await expectError(send(h.c, 'TagResource', { ResourceARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${streamName('gone')}`, Tags: { a: 'b' } }),
      'ResourceNotFoundException');
    await expectError(send(h.c, 'UntagResource', { ResourceARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/x/consumer/y:1', TagKeys: ['a'] }),
      'ResourceNotFoundException');
    const name = streamName('tre');
    await createActive(h.c, name, { ShardCount: 1 });
    const arn = await streamArn(name);
    await expectError(send(h.c, 'TagResource', { ResourceARN: arn, Tags: {} }), 'ValidationException', /at 'tags' failed to satisfy constraint/);
    await expectError(send(h.c, 'UntagResource', { ResourceARN: arn, TagKeys: [] }), 'ValidationException', /at 'tagKeys' failed to satisfy constraint/);
    assert.deepEqual(await tagsOf(arn), []);
  });
});
