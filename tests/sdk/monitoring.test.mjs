// EnableEnhancedMonitoring / DisableEnhancedMonitoring through
// @aws-sdk/client-kinesis against the real binary: the reply's current and
// desired metric sets, "ALL", DescribeStream(Summary) reflecting the set, the
// model's validation, and the set surviving a restart.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  useSluice, startSluice, client, send, expectError, createActive, streamName, notFoundRe,
} from './lib/harness.mjs';

const EVERY = ['IncomingBytes', 'IncomingRecords', 'OutgoingBytes', 'OutgoingRecords',
  'WriteProvisionedThroughputExceeded', 'ReadProvisionedThroughputExceeded',
  'IteratorAgeMilliseconds'];

const h = useSluice();

const described = async (name) => {
  const d = (await send(h.c, 'DescribeStream', { StreamName: name })).StreamDescription;
  const s = (await send(h.c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
  assert.deepEqual(d.EnhancedMonitoring, s.EnhancedMonitoring, 'both descriptions agree');
  return s.EnhancedMonitoring[0].ShardLevelMetrics;
};

describe('enhanced monitoring', () => {
  test('enable and disable: current before, desired after, in the model order', async () => {
    const name = streamName('mon');
    await createActive(h.c, name, { ShardCount: 1 });
    assert.deepEqual(await described(name), []);
    let r = await send(h.c, 'EnableEnhancedMonitoring', {
      StreamName: name, ShardLevelMetrics: ['OutgoingBytes', 'IncomingBytes'],
    });
    assert.equal(r.StreamName, name);
    assert.deepEqual(r.CurrentShardLevelMetrics, []);
    assert.deepEqual(r.DesiredShardLevelMetrics, ['IncomingBytes', 'OutgoingBytes']);
    assert.deepEqual(await described(name), ['IncomingBytes', 'OutgoingBytes']);

    r = await send(h.c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['ALL'] });
    assert.deepEqual(r.CurrentShardLevelMetrics, ['IncomingBytes', 'OutgoingBytes']);
    assert.deepEqual(r.DesiredShardLevelMetrics, EVERY);

    r = await send(h.c, 'DisableEnhancedMonitoring', {
      StreamName: name, ShardLevelMetrics: ['IteratorAgeMilliseconds', 'IncomingRecords'],
    });
    assert.deepEqual(r.CurrentShardLevelMetrics, EVERY);
    const left = EVERY.filter((m) => m !== 'IteratorAgeMilliseconds' && m !== 'IncomingRecords');
    assert.deepEqual(r.DesiredShardLevelMetrics, left);
    assert.deepEqual(await described(name), left);

    r = await send(h.c, 'DisableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['ALL'] });
    assert.deepEqual(r.DesiredShardLevelMetrics, []);
    assert.deepEqual(await described(name), []);
  });

  test('validation and missing streams change nothing', async () => {
    const name = streamName('monv');
    await createActive(h.c, name, { ShardCount: 1 });
    await send(h.c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['IncomingBytes'] });
    await expectError(
      send(h.c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['IncomingBytes', 'Nope'] }),
      'ValidationException',
      /^1 validation error detected: Value '\[IncomingBytes, Nope\]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: \[Member must satisfy enum value set: \[IncomingBytes, .*, ALL\]\]$/,
    );
    await expectError(
      send(h.c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: [] }),
      'ValidationException', /at 'shardLevelMetrics' failed to satisfy constraint: Member must have length greater than or equal to 1/,
    );
    await expectError(
      send(h.c, 'DisableEnhancedMonitoring', { StreamName: name }),
      'ValidationException', /at 'shardLevelMetrics' failed to satisfy constraint: Member must not be null/,
    );
    const missing = streamName('monmissing');
    await expectError(
      send(h.c, 'EnableEnhancedMonitoring', { StreamName: missing, ShardLevelMetrics: ['ALL'] }),
      'ResourceNotFoundException', notFoundRe(missing),
    );
    assert.deepEqual(await described(name), ['IncomingBytes']);
  });

  test('the metric set survives a restart', async () => {
    const name = streamName('monr');
    await createActive(h.c, name, { ShardCount: 2 });
    await send(h.c, 'EnableEnhancedMonitoring', {
      StreamName: name, ShardLevelMetrics: ['WriteProvisionedThroughputExceeded', 'IncomingRecords'],
    });
    h.c.destroy();
    const st = await h.srv.stop({ keepData: true });
    assert.equal(st.code, 0);
    h.srv = await startSluice({ dataDir: h.srv.dataDir });
    h.c = client(h.srv.endpoint);
    assert.deepEqual(await described(name), ['IncomingRecords', 'WriteProvisionedThroughputExceeded']);
  });
});
