// Stream control plane through @aws-sdk/client-kinesis (HTTP/2, NodeHttp2Handler)
// against the real binary: CreateStream, DeleteStream, DescribeStream(Summary),
// ListStreams, ListShards, retention, tags, DescribeLimits, and their errors.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startSluice, client, send, expectError, validationRe, notFoundRe, waitStatus, waitGone,
  createActive, streamName, FLAGS, requireFlag, reEscape, ACCOUNT,
} from './lib/harness.mjs';

const TWO128 = 1n << 128n;
const evenRanges = (n) => {
  const step = TWO128 / BigInt(n);
  return Array.from({ length: n }, (_, i) => ({
    StartingHashKey: String(BigInt(i) * step),
    EndingHashKey: String(i === n - 1 ? TWO128 - 1n : BigInt(i + 1) * step - 1n),
  }));
};
const shardId = (i) => `shardId-${String(i).padStart(12, '0')}`;
const arnRe = (name) => new RegExp(`^arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${reEscape(name)}$`);
const notActiveRe = (name, state) => new RegExp(`^Stream ${reEscape(name)} under account ${ACCOUNT} not ACTIVE, instead in state ${state}$`);

let srv; let c;
before(async () => { srv = await startSluice(); c = client(srv.endpoint); });
after(async () => {
  c?.destroy();
  const st = await srv?.stop();
  if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal} on SIGTERM:\n${srv.stderr().slice(-4000)}`);
});

describe('CreateStream / DescribeStream', () => {
  test('PROVISIONED stream with 3 shards: CREATING→ACTIVE, full StreamDescription', async () => {
    const name = streamName('prov');
    const before = Date.now();
    const r = await send(c, 'CreateStream', { StreamName: name, ShardCount: 3 });
    assert.equal(r.$metadata.httpStatusCode, 200);
    assert.ok(r.$metadata.requestId, 'x-amzn-RequestId on success');
    const s0 = (await send(c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
    assert.ok(['CREATING', 'ACTIVE'].includes(s0.StreamStatus), s0.StreamStatus);
    await waitStatus(c, name, 'ACTIVE');
    const d = (await send(c, 'DescribeStream', { StreamName: name })).StreamDescription;
    assert.equal(d.StreamName, name);
    assert.match(d.StreamARN, arnRe(name));
    assert.equal(d.StreamStatus, 'ACTIVE');
    assert.equal(d.HasMoreShards, false);
    assert.equal(d.RetentionPeriodHours, 24);
    assert.ok(d.StreamCreationTimestamp instanceof Date);
    assert.ok(Math.abs(d.StreamCreationTimestamp.getTime() - before) < 60000, `StreamCreationTimestamp ${d.StreamCreationTimestamp.toISOString()} (epoch seconds expected)`);
    assert.deepEqual(d.EnhancedMonitoring, [{ ShardLevelMetrics: [] }]);
    if (d.StreamModeDetails) assert.equal(d.StreamModeDetails.StreamMode, 'PROVISIONED');
    if (d.EncryptionType) assert.equal(d.EncryptionType, 'NONE');
    assert.equal(d.Shards.length, 3);
    const want = evenRanges(3);
    d.Shards.forEach((s, i) => {
      assert.equal(s.ShardId, shardId(i));
      assert.deepEqual(s.HashKeyRange, want[i]);
      assert.match(s.SequenceNumberRange.StartingSequenceNumber, /^(0|[1-9]\d{0,128})$/);
      assert.equal(s.SequenceNumberRange.EndingSequenceNumber, undefined);
      assert.equal(s.ParentShardId, undefined);
    });
  });

  test('ON_DEMAND stream without ShardCount: mode, shards cover the hash space', async () => {
    const name = streamName('od');
    await send(c, 'CreateStream', { StreamName: name, StreamModeDetails: { StreamMode: 'ON_DEMAND' } });
    const sum = await waitStatus(c, name, 'ACTIVE');
    assert.equal(sum.StreamModeDetails?.StreamMode, 'ON_DEMAND');
    assert.ok(sum.OpenShardCount >= 1);
    const d = (await send(c, 'DescribeStream', { StreamName: name })).StreamDescription;
    assert.equal(d.StreamModeDetails?.StreamMode, 'ON_DEMAND');
    assert.equal(d.Shards.length, sum.OpenShardCount);
    assert.deepEqual(d.Shards.map((s) => s.HashKeyRange), evenRanges(d.Shards.length));
    const lim = await send(c, 'DescribeLimits', {});
    assert.ok(lim.OnDemandStreamCount >= 1, `OnDemandStreamCount ${lim.OnDemandStreamCount}`);
  });

  test('CreateStream with an existing name: ResourceInUseException, stream unchanged', async () => {
    const name = streamName('dup');
    await createActive(c, name, { ShardCount: 2 });
    await expectError(send(c, 'CreateStream', { StreamName: name, ShardCount: 5 }), 'ResourceInUseException',
      new RegExp(`^Stream ${reEscape(name)} under account ${ACCOUNT} already exists\\.$`));
    const s = (await send(c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
    assert.equal(s.OpenShardCount, 2);
    assert.equal(s.StreamStatus, 'ACTIVE');
  });

  describe('CreateStream validation (nothing is created)', () => {
    let namesBefore;
    before(async () => { namesBefore = (await send(c, 'ListStreams', {})).StreamNames; });

    test('ValidationException: stream name pattern', async () => {
      await expectError(send(c, 'CreateStream', { StreamName: 'bad name!', ShardCount: 1 }), 'ValidationException',
        validationRe('bad name!', 'streamName', 'satisfy regular expression pattern: [a-zA-Z0-9_.-]+'));
    });

    test('ValidationException: stream name longer than 128 (value echoed in full)', async () => {
      const long = 'a'.repeat(129);
      await expectError(send(c, 'CreateStream', { StreamName: long, ShardCount: 1 }), 'ValidationException',
        validationRe(long, 'streamName', 'have length less than or equal to 128'));
    });

    test('ValidationException: empty stream name violates length and pattern (2 errors)', async () => {
      const e = await expectError(send(c, 'CreateStream', { StreamName: '', ShardCount: 1 }), 'ValidationException',
        /^2 validation errors detected: Value '' at 'streamName' failed to satisfy constraint: Member must .+; Value '' at 'streamName' failed to satisfy constraint: Member must .+$/);
      assert.match(e.message, /have length greater than or equal to 1/);
      assert.match(e.message, /satisfy regular expression pattern: \[a-zA-Z0-9_\.-\]\+/);
    });

    test('ValidationException: ShardCount 0', async () => {
      await expectError(send(c, 'CreateStream', { StreamName: streamName('zero'), ShardCount: 0 }), 'ValidationException',
        validationRe('0', 'shardCount', 'have value greater than or equal to 1'));
    });

    test('ShardCount rules: PROVISIONED (default) needs one, ON_DEMAND refuses one', async () => {
      let err;
      try { await send(c, 'CreateStream', { StreamName: streamName('odcount'), ShardCount: 3, StreamModeDetails: { StreamMode: 'ON_DEMAND' } }); } catch (e) { err = e; }
      assert.ok(err, 'CreateStream ON_DEMAND with a ShardCount was accepted');
      assert.equal(err.name, 'InvalidArgumentException');
      err = undefined;
      const n = streamName('noshards');
      try { await send(c, 'CreateStream', { StreamName: n }); } catch (e) { err = e; }
      if (!err) { await send(c, 'DeleteStream', { StreamName: n }).catch(() => {}); await waitGone(c, n).catch(() => {}); }
      assert.ok(err, 'CreateStream in PROVISIONED mode without ShardCount was accepted (reference §2.4: ShardCount is needed)');
      assert.ok(['ValidationException', 'InvalidArgumentException'].includes(err.name), `${err.name}: ${err.message}`);
    });

    test('a 128-character name is accepted; the refused calls created nothing', async () => {
      const ok = `m${'x'.repeat(127)}`;
      await createActive(c, ok, { ShardCount: 1 });
      const namesAfter = (await send(c, 'ListStreams', {})).StreamNames;
      assert.deepEqual(namesAfter, [...namesBefore, ok].sort());
      await send(c, 'DeleteStream', { StreamName: ok });
      await waitGone(c, ok);
    });
  });

  test('DescribeStream Limit / ExclusiveStartShardId / HasMoreShards, by name and by ARN', async () => {
    const name = streamName('paged');
    await createActive(c, name, { ShardCount: 5 });
    const full = (await send(c, 'DescribeStream', { StreamName: name })).StreamDescription;
    for (const key of [{ StreamName: name }, { StreamARN: full.StreamARN }]) {
      let d = (await send(c, 'DescribeStream', { ...key, Limit: 2 })).StreamDescription;
      assert.deepEqual(d.Shards.map((s) => s.ShardId), [shardId(0), shardId(1)]);
      assert.equal(d.HasMoreShards, true);
      d = (await send(c, 'DescribeStream', { ...key, Limit: 2, ExclusiveStartShardId: shardId(1) })).StreamDescription;
      assert.deepEqual(d.Shards.map((s) => s.ShardId), [shardId(2), shardId(3)]);
      assert.equal(d.HasMoreShards, true);
      d = (await send(c, 'DescribeStream', { ...key, Limit: 2, ExclusiveStartShardId: shardId(3) })).StreamDescription;
      assert.deepEqual(d.Shards.map((s) => s.ShardId), [shardId(4)]);
      assert.equal(d.HasMoreShards, false);
      d = (await send(c, 'DescribeStream', { ...key, ExclusiveStartShardId: shardId(4) })).StreamDescription;
      assert.deepEqual(d.Shards, []);
      assert.equal(d.HasMoreShards, false);
      assert.equal(d.StreamName, name);
    }
    await expectError(send(c, 'DescribeStream', { StreamName: name, Limit: 0 }), 'ValidationException',
      validationRe('0', 'limit', 'have value greater than or equal to 1'));
    await expectError(send(c, 'DescribeStream', { StreamName: name, Limit: 10001 }), 'ValidationException',
      validationRe('10001', 'limit', 'have value less than or equal to 10000'));
  });

  test('DescribeStreamSummary by name and by ARN', async () => {
    const name = streamName('sum');
    await createActive(c, name, { ShardCount: 2 });
    const a = (await send(c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
    assert.equal(a.StreamName, name);
    assert.match(a.StreamARN, arnRe(name));
    assert.equal(a.StreamStatus, 'ACTIVE');
    assert.equal(a.OpenShardCount, 2);
    assert.equal(a.RetentionPeriodHours, 24);
    assert.ok(a.StreamCreationTimestamp instanceof Date);
    assert.deepEqual(a.EnhancedMonitoring, [{ ShardLevelMetrics: [] }]);
    if (a.ConsumerCount !== undefined) assert.equal(a.ConsumerCount, 0);
    const b = (await send(c, 'DescribeStreamSummary', { StreamARN: a.StreamARN })).StreamDescriptionSummary;
    assert.deepEqual(b, a);
  });
});

describe('ListStreams', () => {
  test('Limit, HasMoreStreams, ExclusiveStartStreamName, NextToken and StreamSummaries', async () => {
    for (let i = 0; i < 5; i++) await createActive(c, `ls-${i}-${process.pid}`, { ShardCount: 1 });
    const all = await send(c, 'ListStreams', {});
    assert.equal(all.HasMoreStreams, false);
    const names = all.StreamNames;
    assert.ok(names.length >= 5);
    assert.deepEqual(names, [...names].sort(), 'names in lexical order');
    if (all.StreamSummaries) {
      assert.deepEqual(all.StreamSummaries.map((s) => s.StreamName), names);
      for (const s of all.StreamSummaries) {
        assert.match(s.StreamARN, arnRe(s.StreamName));
        assert.ok(['CREATING', 'ACTIVE', 'DELETING', 'UPDATING'].includes(s.StreamStatus));
        assert.ok(s.StreamCreationTimestamp instanceof Date);
        assert.ok(['PROVISIONED', 'ON_DEMAND'].includes(s.StreamModeDetails?.StreamMode));
      }
    } else {
      assert.fail('ListStreams returned no StreamSummaries (current SDKs expect them)');
    }
    // ExclusiveStartStreamName paging, 2 at a time
    const viaStart = [];
    let start;
    for (let i = 0; i < 100; i++) {
      const r = await send(c, 'ListStreams', { Limit: 2, ...(start ? { ExclusiveStartStreamName: start } : {}) });
      assert.ok(r.StreamNames.length <= 2);
      viaStart.push(...r.StreamNames);
      if (!r.HasMoreStreams) break;
      assert.equal(r.StreamNames.length, 2);
      start = r.StreamNames.at(-1);
    }
    assert.deepEqual(viaStart, names);
    // NextToken paging, 2 at a time
    const viaToken = [];
    let token;
    let pages = 0;
    for (; pages < 100; pages++) {
      const r = await send(c, 'ListStreams', { Limit: 2, ...(token ? { NextToken: token } : {}) });
      viaToken.push(...r.StreamNames);
      if (r.StreamSummaries) assert.deepEqual(r.StreamSummaries.map((s) => s.StreamName), r.StreamNames);
      if (!r.HasMoreStreams) { assert.equal(r.NextToken, undefined, 'no NextToken on the last page'); break; }
      assert.ok(r.NextToken, 'NextToken when HasMoreStreams');
      token = r.NextToken;
    }
    assert.deepEqual(viaToken, names);
    assert.equal(pages, Math.ceil(names.length / 2) - 1);
    // Limit above 100 is accepted (capped at 100)
    const big = await send(c, 'ListStreams', { Limit: 10000 });
    assert.ok(big.StreamNames.length <= 100);
    await expectError(send(c, 'ListStreams', { Limit: 0 }), 'ValidationException',
      validationRe('0', 'limit', 'have value greater than or equal to 1'));
    await expectError(send(c, 'ListStreams', { Limit: 10001 }), 'ValidationException',
      validationRe('10001', 'limit', 'have value less than or equal to 10000'));
    await expectError(send(c, 'ListStreams', { NextToken: 'not-a-token' }), 'InvalidArgumentException');
  });
});

describe('ListShards', () => {
  let name; let arn; let created;
  before(async () => {
    name = streamName('shards');
    const s = await createActive(c, name, { ShardCount: 4 });
    arn = s.StreamARN;
    created = s.StreamCreationTimestamp;
  });

  test('all shards by StreamName and by StreamARN', async () => {
    for (const key of [{ StreamName: name }, { StreamARN: arn }]) {
      const r = await send(c, 'ListShards', key);
      assert.deepEqual(r.Shards.map((s) => s.ShardId), [0, 1, 2, 3].map(shardId));
      assert.deepEqual(r.Shards.map((s) => s.HashKeyRange), evenRanges(4));
      assert.equal(r.NextToken, undefined);
    }
  });

  test('MaxResults and NextToken paging; NextToken alone continues', async () => {
    let r = await send(c, 'ListShards', { StreamName: name, MaxResults: 3 });
    assert.deepEqual(r.Shards.map((s) => s.ShardId), [0, 1, 2].map(shardId));
    assert.ok(r.NextToken);
    r = await send(c, 'ListShards', { NextToken: r.NextToken, MaxResults: 3 });
    assert.deepEqual(r.Shards.map((s) => s.ShardId), [shardId(3)]);
    assert.equal(r.NextToken, undefined);
    r = await send(c, 'ListShards', { StreamARN: arn, MaxResults: 1 });
    assert.deepEqual(r.Shards.map((s) => s.ShardId), [shardId(0)]);
    r = await send(c, 'ListShards', { NextToken: r.NextToken });
    assert.deepEqual(r.Shards.map((s) => s.ShardId), [1, 2, 3].map(shardId));
  });

  test('ExclusiveStartShardId, StreamCreationTimestamp and ShardFilter types', async () => {
    let r = await send(c, 'ListShards', { StreamName: name, ExclusiveStartShardId: shardId(1) });
    assert.deepEqual(r.Shards.map((s) => s.ShardId), [2, 3].map(shardId));
    r = await send(c, 'ListShards', { StreamName: name, StreamCreationTimestamp: created });
    assert.equal(r.Shards.length, 4);
    r = await send(c, 'ListShards', { StreamName: name, ShardFilter: { Type: 'AFTER_SHARD_ID', ShardId: shardId(2) } });
    assert.deepEqual(r.Shards.map((s) => s.ShardId), [shardId(3)]);
    for (const Type of ['AT_LATEST', 'AT_TRIM_HORIZON', 'FROM_TRIM_HORIZON']) {
      r = await send(c, 'ListShards', { StreamName: name, ShardFilter: { Type } });
      assert.deepEqual(r.Shards.map((s) => s.ShardId), [0, 1, 2, 3].map(shardId), Type);
    }
    for (const Type of ['AT_TIMESTAMP', 'FROM_TIMESTAMP']) {
      r = await send(c, 'ListShards', { StreamName: name, ShardFilter: { Type, Timestamp: new Date() } });
      assert.deepEqual(r.Shards.map((s) => s.ShardId), [0, 1, 2, 3].map(shardId), Type);
    }
  });

  test('rules on StreamName vs NextToken, and errors', async () => {
    const tok = (await send(c, 'ListShards', { StreamName: name, MaxResults: 1 })).NextToken;
    assert.ok(tok);
    await expectError(send(c, 'ListShards', { StreamName: name, NextToken: tok }), 'InvalidArgumentException',
      'NextToken and StreamName cannot be provided together.');
    await expectError(send(c, 'ListShards', {}), 'InvalidArgumentException',
      'Either NextToken or StreamName should be provided.');
    await expectError(send(c, 'ListShards', { NextToken: tok, ExclusiveStartShardId: shardId(0) }), 'InvalidArgumentException');
    await expectError(send(c, 'ListShards', { NextToken: tok, StreamCreationTimestamp: created }), 'InvalidArgumentException');
    await expectError(send(c, 'ListShards', { NextToken: 'garbage-token' }), 'InvalidArgumentException');
    await expectError(send(c, 'ListShards', { StreamName: name, MaxResults: 0 }), 'ValidationException',
      validationRe('0', 'maxResults', 'have value greater than or equal to 1'));
    await expectError(send(c, 'ListShards', { StreamName: name, MaxResults: 10001 }), 'ValidationException',
      validationRe('10001', 'maxResults', 'have value less than or equal to 10000'));
    const missing = streamName('nope');
    await expectError(send(c, 'ListShards', { StreamName: missing }), 'ResourceNotFoundException', notFoundRe(missing));
  });
});

describe('Retention period', () => {
  test('Increase/Decrease by name and ARN; range and direction errors change nothing', async () => {
    const name = streamName('ret');
    const { StreamARN: arn } = await createActive(c, name, { ShardCount: 1 });
    const hours = async () => (await send(c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.RetentionPeriodHours;
    await send(c, 'IncreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 48 });
    assert.equal(await hours(), 48);
    await send(c, 'IncreaseStreamRetentionPeriod', { StreamARN: arn, RetentionPeriodHours: 72 });
    assert.equal(await hours(), 72);
    await expectError(send(c, 'IncreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 48 }),
      'InvalidArgumentException', /can not be shorter than existing retention period \(72 hours\)/);
    await expectError(send(c, 'DecreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 100 }),
      'InvalidArgumentException', /can not be longer than existing retention period \(72 hours\)/);
    await expectError(send(c, 'DecreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 23 }),
      'InvalidArgumentException', /^Minimum allowed retention period is 24 hours\. Requested retention period \(23 hours\) is too short\.$/);
    await expectError(send(c, 'IncreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 8761 }),
      'InvalidArgumentException', /^Maximum allowed retention period is 8760 hours\. Requested retention period \(8761 hours\) is too long\.$/);
    assert.equal(await hours(), 72, 'failed calls changed the retention');
    await send(c, 'IncreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 8760 });
    assert.equal(await hours(), 8760);
    await send(c, 'DecreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 48 });
    await send(c, 'DecreaseStreamRetentionPeriod', { StreamARN: arn, RetentionPeriodHours: 24 });
    assert.equal(await hours(), 24);
    const missing = streamName('nope');
    await expectError(send(c, 'IncreaseStreamRetentionPeriod', { StreamName: missing, RetentionPeriodHours: 48 }), 'ResourceNotFoundException', notFoundRe(missing));
    await expectError(send(c, 'DecreaseStreamRetentionPeriod', { StreamName: missing, RetentionPeriodHours: 24 }), 'ResourceNotFoundException', notFoundRe(missing));
  });
});

describe('Tags', () => {
  test('Add (overwrites) / List (Limit, ExclusiveStartTagKey, HasMoreTags) / Remove, by name and ARN', async () => {
    const name = streamName('tags');
    const { StreamARN: arn } = await createActive(c, name, { ShardCount: 1 });
    let r = await send(c, 'ListTagsForStream', { StreamName: name });
    assert.deepEqual(r.Tags, []);
    assert.equal(r.HasMoreTags, false);
    await send(c, 'AddTagsToStream', { StreamName: name, Tags: { b: '2', a: '1', 'team/x': 'data-eng' } });
    await send(c, 'AddTagsToStream', { StreamARN: arn, Tags: { a: 'one', c: '' } });
    r = await send(c, 'ListTagsForStream', { StreamName: name });
    assert.deepEqual(r.Tags, [{ Key: 'a', Value: 'one' }, { Key: 'b', Value: '2' }, { Key: 'c', Value: '' }, { Key: 'team/x', Value: 'data-eng' }]);
    assert.equal(r.HasMoreTags, false);
    r = await send(c, 'ListTagsForStream', { StreamARN: arn, Limit: 2 });
    assert.deepEqual(r.Tags.map((t) => t.Key), ['a', 'b']);
    assert.equal(r.HasMoreTags, true);
    r = await send(c, 'ListTagsForStream', { StreamName: name, Limit: 2, ExclusiveStartTagKey: 'b' });
    assert.deepEqual(r.Tags.map((t) => t.Key), ['c', 'team/x']);
    assert.equal(r.HasMoreTags, false);
    await send(c, 'RemoveTagsFromStream', { StreamName: name, TagKeys: ['a', 'no-such-key'] });
    await send(c, 'RemoveTagsFromStream', { StreamARN: arn, TagKeys: ['c'] });
    r = await send(c, 'ListTagsForStream', { StreamName: name });
    assert.deepEqual(r.Tags, [{ Key: 'b', Value: '2' }, { Key: 'team/x', Value: 'data-eng' }]);
    await expectError(send(c, 'ListTagsForStream', { StreamName: name, Limit: 0 }), 'ValidationException',
      validationRe('0', 'limit', 'have value greater than or equal to 1'));
    await expectError(send(c, 'ListTagsForStream', { StreamName: name, Limit: 51 }), 'ValidationException',
      validationRe('51', 'limit', 'have value less than or equal to 50'));
  });

  test('more than 50 tags on a stream is refused and changes nothing', async () => {
    const name = streamName('tagmax');
    await createActive(c, name, { ShardCount: 1 });
    const tags = {};
    for (let i = 0; i < 50; i++) tags[`k${String(i).padStart(2, '0')}`] = `v${i}`;
    await send(c, 'AddTagsToStream', { StreamName: name, Tags: tags });
    let err;
    try { await send(c, 'AddTagsToStream', { StreamName: name, Tags: { extra: 'x' } }); } catch (e) { err = e; }
    assert.ok(err, '51st tag accepted');
    assert.ok(['LimitExceededException', 'InvalidArgumentException'].includes(err.name), `${err.name}: ${err.message}`);
    const r = await send(c, 'ListTagsForStream', { StreamName: name });
    assert.equal(r.Tags.length, 50);
    assert.ok(!r.Tags.some((t) => t.Key === 'extra'));
    // overwriting an existing key at the limit is fine
    await send(c, 'AddTagsToStream', { StreamName: name, Tags: { k00: 'new' } });
  });

  test('tag ops on a missing stream: ResourceNotFoundException', async () => {
    const missing = streamName('nope');
    await expectError(send(c, 'AddTagsToStream', { StreamName: missing, Tags: { a: 'b' } }), 'ResourceNotFoundException', notFoundRe(missing));
    await expectError(send(c, 'RemoveTagsFromStream', { StreamName: missing, TagKeys: ['a'] }), 'ResourceNotFoundException', notFoundRe(missing));
    await expectError(send(c, 'ListTagsForStream', { StreamName: missing }), 'ResourceNotFoundException', notFoundRe(missing));
  });
});

describe('DescribeLimits and LimitExceededException', () => {
  test('DescribeLimits counts open shards and on-demand streams', async () => {
    const lim = await send(c, 'DescribeLimits', {});
    for (const k of ['ShardLimit', 'OpenShardCount', 'OnDemandStreamCount', 'OnDemandStreamCountLimit']) {
      assert.equal(typeof lim[k], 'number', k);
    }
    let open = 0; let od = 0;
    const names = (await send(c, 'ListStreams', { Limit: 100 })).StreamNames;
    for (const n of names) {
      const s = (await send(c, 'DescribeStreamSummary', { StreamName: n })).StreamDescriptionSummary;
      open += s.OpenShardCount;
      if (s.StreamModeDetails?.StreamMode === 'ON_DEMAND') od++;
    }
    assert.equal(lim.OpenShardCount, open);
    assert.equal(lim.OnDemandStreamCount, od);
    assert.ok(lim.ShardLimit >= lim.OpenShardCount);
  });

  test('CreateStream beyond the shard limit: LimitExceededException, nothing created', async () => {
    const lim = await send(c, 'DescribeLimits', {});
    const name = streamName('toobig');
    await expectError(send(c, 'CreateStream', { StreamName: name, ShardCount: lim.ShardLimit - lim.OpenShardCount + 1 }),
      'LimitExceededException', /.+/);
    await expectError(send(c, 'DescribeStreamSummary', { StreamName: name }), 'ResourceNotFoundException', notFoundRe(name));
    assert.equal((await send(c, 'DescribeLimits', {})).OpenShardCount, lim.OpenShardCount);
  });
});

describe('DeleteStream', () => {
  test('by name and by ARN: DELETING then gone', async () => {
    const a = streamName('del');
    const b = streamName('del');
    await createActive(c, a, { ShardCount: 1 });
    const { StreamARN: arnB } = await createActive(c, b, { ShardCount: 2 });
    await send(c, 'DeleteStream', { StreamName: a });
    await send(c, 'DeleteStream', { StreamARN: arnB, EnforceConsumerDeletion: true });
    for (const n of [a, b]) {
      try {
        const s = await send(c, 'DescribeStreamSummary', { StreamName: n });
        assert.equal(s.StreamDescriptionSummary.StreamStatus, 'DELETING');
      } catch (e) { assert.equal(e.name, 'ResourceNotFoundException'); }
      await waitGone(c, n);
      await expectError(send(c, 'DescribeStream', { StreamName: n }), 'ResourceNotFoundException', notFoundRe(n));
      assert.ok(!(await send(c, 'ListStreams', {})).StreamNames.includes(n));
    }
    // the name can be reused
    await createActive(c, a, { ShardCount: 1 });
    const d = (await send(c, 'DescribeStream', { StreamName: a })).StreamDescription;
    assert.equal(d.Shards.length, 1);
  });

  test('EnforceConsumerDeletion: consumers block deletion unless true', async () => {
    const name = streamName('cons');
    const { StreamARN: arn } = await createActive(c, name, { ShardCount: 1 });
    await send(c, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'c1' });
    await expectError(send(c, 'DeleteStream', { StreamName: name }), 'ResourceInUseException', /.+/);
    await expectError(send(c, 'DeleteStream', { StreamName: name, EnforceConsumerDeletion: false }), 'ResourceInUseException', /.+/);
    assert.equal((await send(c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamStatus, 'ACTIVE');
    await send(c, 'DeleteStream', { StreamName: name, EnforceConsumerDeletion: true });
    await waitGone(c, name);
  });

  test('missing stream by name: ResourceNotFoundException', async () => {
    const missing = streamName('nope');
    await expectError(send(c, 'DeleteStream', { StreamName: missing }), 'ResourceNotFoundException', notFoundRe(missing));
    await expectError(send(c, 'DescribeStream', { StreamName: missing }), 'ResourceNotFoundException', notFoundRe(missing));
    await expectError(send(c, 'DescribeStreamSummary', { StreamName: missing }), 'ResourceNotFoundException', notFoundRe(missing));
  });

  test('missing stream by ARN: ResourceNotFoundException with the same message', async () => {
    const missing = streamName('nope');
    const missingArn = `arn:aws:kinesis:us-east-1:000000000000:stream/${missing}`;
    await expectError(send(c, 'DeleteStream', { StreamARN: missingArn }), 'ResourceNotFoundException', notFoundRe(missing));
    await expectError(send(c, 'DescribeStreamSummary', { StreamARN: missingArn }), 'ResourceNotFoundException', notFoundRe(missing));
  });
});

describe('StreamARN handling', () => {
  test('StreamName and StreamARN that disagree are refused', async () => {
    const a = streamName('arnA');
    const b = streamName('arnB');
    await createActive(c, a, { ShardCount: 1 });
    const { StreamARN: arnB } = await createActive(c, b, { ShardCount: 1 });
    let err;
    try { await send(c, 'DescribeStreamSummary', { StreamName: a, StreamARN: arnB }); } catch (e) { err = e; }
    assert.ok(err, 'mismatching StreamName/StreamARN accepted');
    assert.ok(['InvalidArgumentException', 'ValidationException'].includes(err.name), `${err.name}: ${err.message}`);
  });
});

describe('CREATING state (server with a long creation delay)', () => {
  let s2; let c2;
  before(async () => {
    const flag = FLAGS.createDelay;
    if (!flag) return;
    s2 = await startSluice({ args: [flag, '2s'] });
    c2 = client(s2.endpoint);
  });
  after(async () => {
    c2?.destroy();
    const st = await s2?.stop();
    if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}:\n${s2.stderr().slice(-4000)}`);
  });

  test('ops on a CREATING stream: ResourceInUseException; writes refused; then ACTIVE', async () => {
    requireFlag('createDelay', 'the stream creation delay (CREATING → ACTIVE)');
    const name = streamName('slow');
    await send(c2, 'CreateStream', { StreamName: name, ShardCount: 1 });
    const s = (await send(c2, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
    assert.equal(s.StreamStatus, 'CREATING');
    await expectError(send(c2, 'CreateStream', { StreamName: name, ShardCount: 1 }), 'ResourceInUseException', /already exists/);
    await expectError(send(c2, 'IncreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 48 }),
      'ResourceInUseException', notActiveRe(name, 'CREATING'));
    await expectError(send(c2, 'DecreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 24 }),
      'ResourceInUseException', notActiveRe(name, 'CREATING'));
    await expectError(send(c2, 'AddTagsToStream', { StreamName: name, Tags: { a: 'b' } }),
      'ResourceInUseException', notActiveRe(name, 'CREATING'));
    await expectError(send(c2, 'RemoveTagsFromStream', { StreamName: name, TagKeys: ['a'] }),
      'ResourceInUseException', notActiveRe(name, 'CREATING'));
    let err;
    try { await send(c2, 'PutRecord', { StreamName: name, PartitionKey: 'a', Data: new Uint8Array([1]) }); } catch (e) { err = e; }
    assert.ok(err, 'PutRecord on a CREATING stream succeeded');
    assert.ok(['ResourceNotFoundException', 'ResourceInUseException'].includes(err.name), `${err.name}: ${err.message}`);
    const act = await waitStatus(c2, name, 'ACTIVE', 10000);
    assert.equal(act.RetentionPeriodHours, 24);
    assert.deepEqual((await send(c2, 'ListTagsForStream', { StreamName: name })).Tags, []);
  });

  test('DELETING: status visible, changes refused, name not reusable until gone', async () => {
    requireFlag('createDelay', 'the stream creation/deletion delay');
    const name = streamName('dying');
    await send(c2, 'CreateStream', { StreamName: name, ShardCount: 1 });
    await waitStatus(c2, name, 'ACTIVE', 10000);
    await send(c2, 'DeleteStream', { StreamName: name });
    const s = (await send(c2, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
    assert.equal(s.StreamStatus, 'DELETING');
    await expectError(send(c2, 'AddTagsToStream', { StreamName: name, Tags: { a: 'b' } }),
      'ResourceInUseException', notActiveRe(name, 'DELETING'));
    await expectError(send(c2, 'IncreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 48 }),
      'ResourceInUseException', notActiveRe(name, 'DELETING'));
    await expectError(send(c2, 'CreateStream', { StreamName: name, ShardCount: 1 }), 'ResourceInUseException', /.+/);
    await waitGone(c2, name, 10000);
  });

  test('at most 5 streams CREATING at once: LimitExceededException', async () => {
    requireFlag('createDelay', 'the stream creation delay (CREATING → ACTIVE)');
    const names = Array.from({ length: 6 }, () => streamName('burst'));
    for (const n of names.slice(0, 5)) await send(c2, 'CreateStream', { StreamName: n, ShardCount: 1 });
    await expectError(send(c2, 'CreateStream', { StreamName: names[5], ShardCount: 1 }), 'LimitExceededException', /.+/);
    for (const n of names.slice(0, 5)) await waitStatus(c2, n, 'ACTIVE', 10000);
    await expectError(send(c2, 'DescribeStreamSummary', { StreamName: names[5] }), 'ResourceNotFoundException');
  });
});
