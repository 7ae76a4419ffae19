// EnableEnhancedMonitoring / DisableEnhancedMonitoring through
// @aws-sdk/client-kinesis against the real binary: the reply's current and
// desired metric sets, "ALL", DescribeStream(Summary) reflecting the set, the
// model's validation, and the set surviving a restart.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startSluice, client, send, expectError, createActive, streamName, notFoundRe,
} from './lib/harness.mjs';

const EVERY = ['IncomingBytes', 'IncomingRecords', 'OutgoingBytes', 'OutgoingRecords',
  'WriteProvisionedThroughputExceeded', 'ReadProvisionedThroughputExceeded',
  'IteratorAgeMilliseconds'];

let srv; let c;
before(async () => { srv = await startSluice(); c = client(srv.endpoint); });
after(async () => {
  c?.destroy();
  const st = await srv?.stop();
  if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}:\n${srv.stderr().slice(-4000)}`);
});

const described = async (name) => {
  const d = (await send(c, 'DescribeStream', { StreamName: name })).StreamDescription;
  const s = (await send(c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
  assert.deepEqual(d.EnhancedMonitoring, s.EnhancedMonitoring, 'both descriptions agree');
  return s.EnhancedMonitoring[0].ShardLevelMetrics;
};

describe('enhanced monitoring', () => {
  test('enable and disable: current before, desired after, in the model order', async () => {
    const name = streamName('mon');
    await createActive(c, name, { ShardCount: 1 });
    assert.deepEqual(await described(name), []);
    let r = await send(c, 'EnableEnhancedMonitoring', {
      StreamName: name, ShardLevelMetrics: ['OutgoingBytes', 'IncomingBytes'],
    });
    assert.equal(r.StreamName, name);
    assert.deepEqual(r.CurrentShardLevelMetrics, []);
    assert.deepEqual(r.DesiredShardLevelMetrics, ['IncomingBytes', 'OutgoingBytes']);
    assert.deepEqual(await described(name), ['IncomingBytes', 'OutgoingBytes']);

    r = await send(c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['ALL'] });
    assert.deepEqual(r.CurrentShardLevelMetrics, ['IncomingBytes', 'OutgoingBytes']);
    assert.deepEqual(r.DesiredShardLevelMetrics, EVERY);

    r = await send(c, 'DisableEnhancedMonitoring', {
      StreamName: name, ShardLevelMetrics: ['IteratorAgeMilliseconds', 'IncomingRecords'],
    });
    assert.deepEqual(r.CurrentShardLevelMetrics, EVERY);
    const left = EVERY.filter((m) => m !== 'IteratorAgeMilliseconds' && m !== 'IncomingRecords');
    assert.deepEqual(r.DesiredShardLevelMetrics, left);
    assert.deepEqual(await described(name), left);

    r = await send(c, 'DisableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['ALL'] });
    assert.deepEqual(r.DesiredShardLevelMetrics, []);
    assert.deepEqual(await described(name), []);
  });

  test('validation and missing streams change nothing', async () => {
    const name = streamName('monv');
    await createActive(c, name, { ShardCount: 1 });
    await send(c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['IncomingBytes'] });
    await expectError(
      send(c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['IncomingBytes', 'Nope'] }),
      'ValidationException',
      /^1 validation error detected: Value '\[IncomingBytes, Nope\]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: \[Member must satisfy enum value set: \[IncomingBytes, .*, ALL\]\]$/,
    );
    await expectError(
      send(c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: [] }),
      'ValidationException', /at 'shardLevelMetrics' failed to satisfy constraint: Member must have length greater than or equal to 1/,
    );
    await expectError(
      send(c, 'DisableEnhancedMonitoring', { StreamName: name }),
      'ValidationException', /at 'shardLevelMetrics' failed to satisfy constraint: Member must not be null/,
    );
    const missing = streamName('monmissing');
    await expectError(
      send(c, 'EnableEnhancedMonitoring', { StreamName: missing, ShardLevelMetrics: ['ALL'] }),
      'ResourceNotFoundException', notFoundRe(missing),
    );
    assert.deepEqual(await described(name), ['IncomingBytes']);
  });

  test('the metric set survives a restart', async () => {
    const name = streamName('monr');
    await createActive(c, name, { ShardCount: 2 });
    await send(c, 'EnableEnhancedMonitoring', {
      StreamName: name, ShardLevelMetrics: ['WriteProvisionedThroughputExceeded', 'IncomingRecords'],
    });
    c.destroy();
    const st = await srv.stop({ keepData: true });
    assert.equal(st.code, 0);
    srv = await startSluice({ dataDir: srv.dataDir });
    c = client(srv.endpoint);
    assert.deepEqual(await described(name), ['IncomingRecords', 'WriteProvisionedThroughputExceeded']);
  });
});
