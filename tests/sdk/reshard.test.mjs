// SplitShard, MergeShards and UpdateShardCount through @aws-sdk/client-kinesis
// against the real binary: lineage and ranges, Kinesis' validation, shard end
// in GetRecords (no NextShardIterator, ChildShards) and in SubscribeToShard (a
// last event with ChildShards and no continuation), ListShards' ShardFilter
// types, every acknowledged record read exactly once and in per-key order by
// a reader that follows lineage while producers write through the reshards,
// and a kill -9 during a split.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  useSluice, startSluice, client, send, expectError, createActive, streamName, waitStatus, registerActive,
  subscribe, dec, sleep, rawH1, JETSTREAM,
} from './lib/harness.mjs';

const MAX = (1n << 128n) - 1n;
const shardId = (i) => `shardId-${String(i).padStart(12, '0')}`;

const h = useSluice();

const listShards = async (cl, StreamName, extra = {}) => {
  const out = [];
  let r = await send(cl, 'ListShards', { StreamName, ...extra });
  out.push(...r.Shards);
  for (let i = 0; i < 100 && r.NextToken; i++) {
    r = await send(cl, 'ListShards', { NextToken: r.NextToken });
    out.push(...r.Shards);
  }
  return out;
};
const range = (s) => [BigInt(s.HashKeyRange.StartingHashKey), BigInt(s.HashKeyRange.EndingHashKey)];
const isOpen = (s) => s.SequenceNumberRange.EndingSequenceNumber === undefined;

// The open shards tile the hash space exactly, in order.
function assertTiles(shards) {
  const open = shards.filter(isOpen).map(range).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  let next = 0n;
  for (const [a, b] of open) {
    assert.equal(a, next, 'open shards are contiguous');
    next = b + 1n;
  }
  assert.equal(next, MAX + 1n, 'open shards cover the hash space');
}

// Reads a shard to its end (GetRecords until no NextShardIterator), or until
// caught up if it is open; returns { records, children }.
async function readShard(cl, StreamName, ShardId, type = 'TRIM_HORIZON') {
  const it = await send(cl, 'GetShardIterator', { StreamName, ShardId, ShardIteratorType: type });
  let iter = it.ShardIterator;
  const records = [];
  for (let i = 0; i < 10000; i++) {
    const r = await send(cl, 'GetRecords', { ShardIterator: iter });
    records.push(...r.Records);
    if (!r.NextShardIterator) return { records, children: r.ChildShards, last: r };
    iter = r.NextShardIterator;
    if (r.Records.length === 0 && r.MillisBehindLatest === 0) return { records, open: true };
  }
  throw new Error(`${ShardId}: no end after 10000 reads`);
}

describe('split and merge', () => {
  test('lineage, ranges, routing and the parent at its end', async () => {
    const name = streamName('split');
    await createActive(h.c, name, { ShardCount: 2 });
    const put = await send(h.c, 'PutRecord', { StreamName: name, PartitionKey: 'p', Data: Buffer.from('before'), ExplicitHashKey: '5' });
    assert.equal(put.ShardId, shardId(0));
    const [s0] = await listShards(h.c, name);
    const [lo, hi] = range(s0);
    const k = (lo + hi) / 2n;
    assert.deepEqual(await send(h.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: String(k) }).then((r) => Object.keys(r).filter((x) => x !== '$metadata')), []);
    await waitStatus(h.c, name, 'ACTIVE');
    const shards = await listShards(h.c, name);
    assert.deepEqual(shards.map((s) => s.ShardId), [0, 1, 2, 3].map(shardId));
    const [p, , a, b] = shards;
    assert.ok(!isOpen(p) && p.SequenceNumberRange.EndingSequenceNumber >= put.SequenceNumber, 'the parent ends at or after its last record');
    assert.equal(a.ParentShardId, shardId(0));
    assert.equal(b.ParentShardId, shardId(0));
    assert.deepEqual(range(a), [lo, k - 1n]);
    assert.deepEqual(range(b), [k, hi]);
    assertTiles(shards);
    const summary = (await send(h.c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
    assert.equal(summary.OpenShardCount, 3);
    const desc = (await send(h.c, 'DescribeStream', { StreamName: name })).StreamDescription;
    assert.equal(desc.Shards.length, 4);

    // Writes go to the children; the parent's records stay readable.
    const r1 = await send(h.c, 'PutRecord', { StreamName: name, PartitionKey: 'p', Data: Buffer.from('lo'), ExplicitHashKey: String(lo) });
    const r2 = await send(h.c, 'PutRecord', { StreamName: name, PartitionKey: 'p', Data: Buffer.from('k'), ExplicitHashKey: String(k) });
    assert.equal(r1.ShardId, shardId(2));
    assert.equal(r2.ShardId, shardId(3));
    assert.ok(r1.SequenceNumber > put.SequenceNumber, 'children sort after the parent');
    const end = await readShard(h.c, name, shardId(0));
    assert.deepEqual(end.records.map((r) => dec(r.Data)), ['before']);
    assert.deepEqual(end.children.map((x) => x.ShardId), [shardId(2), shardId(3)]);
    for (const ch of end.children) assert.deepEqual(ch.ParentShards, [shardId(0)]);
    assert.deepEqual(end.children.map((x) => [x.HashKeyRange.StartingHashKey, x.HashKeyRange.EndingHashKey]),
      [[String(lo), String(k - 1n)], [String(k), String(hi)]]);
    // LATEST on a closed shard is its end at once; so is AFTER its last record.
    const latest = await readShard(h.c, name, shardId(0), 'LATEST');
    assert.equal(latest.records.length, 0);
    assert.equal(latest.children.length, 2);
    assert.equal(latest.last.NextShardIterator, undefined);

    // Merge the two children back: one child with both parents.
    await send(h.c, 'MergeShards', { StreamName: name, ShardToMerge: shardId(3), AdjacentShardToMerge: shardId(2) });
    await waitStatus(h.c, name, 'ACTIVE');
    const after = await listShards(h.c, name);
    const m = after.find((s) => s.ShardId === shardId(4));
    assert.equal(m.ParentShardId, shardId(3));
    assert.equal(m.AdjacentParentShardId, shardId(2));
    assert.deepEqual(range(m), [lo, hi]);
    assertTiles(after);
    const endB = await readShard(h.c, name, shardId(3));
    assert.deepEqual(endB.records.map((r) => dec(r.Data)), ['k']);
    assert.deepEqual(endB.children.map((x) => x.ShardId), [shardId(4)]);
    assert.deepEqual(endB.children[0].ParentShards, [shardId(3), shardId(2)]);
  });

  test('validation: keys, closed shards, adjacency, missing shards', async () => {
    const name = streamName('bad');
    await createActive(h.c, name, { ShardCount: 3 });
    const shards = await listShards(h.c, name);
    const [lo] = range(shards[0]);
    await expectError(send(h.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: String(lo + 1n) }),
      'InvalidArgumentException', /is not both greater than one plus the shard's StartingHashKey/);
    await expectError(send(h.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: String(range(shards[1])[0]) }),
      'InvalidArgumentException', /NewStartingHashKey/);
    await expectError(send(h.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: 'x1' }),
      'ValidationException', /newStartingHashKey/);
    await expectError(send(h.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(9), NewStartingHashKey: '100' }),
      'ResourceNotFoundException', /Could not find shard shardId-000000000009/);
    await expectError(send(h.c, 'MergeShards', { StreamName: name, ShardToMerge: shardId(0), AdjacentShardToMerge: shardId(2) }),
      'InvalidArgumentException', /not an adjacent pair of shards eligible for merging/);
    await expectError(send(h.c, 'UpdateShardCount', { StreamName: name, TargetShardCount: 7, ScalingType: 'UNIFORM_SCALING' }),
      'InvalidArgumentException', /at most double/);
    await expectError(send(h.c, 'UpdateShardCount', { StreamName: name, TargetShardCount: 1, ScalingType: 'UNIFORM_SCALING' }),
      'InvalidArgumentException', /at least half/);
    await send(h.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: String(lo + 1000n) });
    await waitStatus(h.c, name, 'ACTIVE');
    await expectError(send(h.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: String(lo + 2000n) }),
      'InvalidArgumentException', /has already been merged or split, and thus is not eligible for splitting/);
    await expectError(send(h.c, 'MergeShards', { StreamName: name, ShardToMerge: shardId(0), AdjacentShardToMerge: shardId(1) }),
      'InvalidArgumentException', /not eligible for merging/);
    // Nothing of the refused calls changed anything.
    const now = await listShards(h.c, name);
    assert.equal(now.length, 5);
    assert.equal(now.filter(isOpen).length, 4);
  });

  test('a stream that is not ACTIVE answers ResourceInUseException', async () => {
    const slow = await startSluice({ args: ['--stream-delay', '1500ms'] });
    const cs = client(slow.endpoint);
    try {
      const name = streamName('busy');
      await send(cs, 'CreateStream', { StreamName: name, ShardCount: 2 });
      await expectError(send(cs, 'UpdateShardCount', { StreamName: name, TargetShardCount: 3, ScalingType: 'UNIFORM_SCALING' }),
        'ResourceInUseException', /not ACTIVE, instead in state CREATING/);
      await waitStatus(cs, name, 'ACTIVE');
      await send(cs, 'MergeShards', { StreamName: name, ShardToMerge: shardId(0), AdjacentShardToMerge: shardId(1) });
      assert.equal((await send(cs, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamStatus, 'UPDATING');
      await expectError(send(cs, 'SplitShard', { StreamName: name, ShardToSplit: shardId(2), NewStartingHashKey: '1000' }),
        'ResourceInUseException', /not ACTIVE, instead in state UPDATING/);
      // Reads and writes go on while UPDATING.
      const w = await send(cs, 'PutRecord', { StreamName: name, PartitionKey: 'x', Data: Buffer.from('u') });
      assert.equal(w.ShardId, shardId(2));
      await waitStatus(cs, name, 'ACTIVE');
    } finally {
      cs.destroy();
      await slow.stop();
    }
  });
});

describe('UpdateShardCount', () => {
  test('uniform ranges, the reply, and scaling back down', async () => {
    const name = streamName('scale');
    await createActive(h.c, name, { ShardCount: 3 });
    for (const [from, to] of [[3, 5], [5, 8], [8, 4], [4, 7], [7, 4]]) {
      const r = await send(h.c, 'UpdateShardCount', { StreamName: name, TargetShardCount: to, ScalingType: 'UNIFORM_SCALING' });
      assert.equal(r.StreamName, name);
      assert.equal(r.CurrentShardCount, from);
      assert.equal(r.TargetShardCount, to);
      await waitStatus(h.c, name, 'ACTIVE');
      const shards = await listShards(h.c, name);
      assertTiles(shards);
      const open = shards.filter(isOpen).map(range);
      assert.equal(open.length, to);
      const sizes = open.map(([a, b]) => b - a);
      const min = sizes.reduce((x, y) => (y < x ? y : x)), max = sizes.reduce((x, y) => (y > x ? y : x));
      assert.ok(max - min <= 1n, `sizes within one of even at ${to}`);
      assert.equal((await send(h.c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.OpenShardCount, to);
    }
  });

  test('--scalings-per-day limits scalings', async () => {
    const lim = await startSluice({ args: ['--scalings-per-day', '2', '--stream-delay', '0'] });
    const cl = client(lim.endpoint);
    try {
      const name = streamName('lim');
      await createActive(cl, name, { ShardCount: 1 });
      await send(cl, 'UpdateShardCount', { StreamName: name, TargetShardCount: 2, ScalingType: 'UNIFORM_SCALING' });
      await waitStatus(cl, name, 'ACTIVE');
      await send(cl, 'UpdateShardCount', { StreamName: name, TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' });
      await waitStatus(cl, name, 'ACTIVE');
      await expectError(send(cl, 'UpdateShardCount', { StreamName: name, TargetShardCount: 8, ScalingType: 'UNIFORM_SCALING' }),
        'LimitExceededException', /scaled 2 times in the last 24 hours/);
      await expectError(send(cl, 'UpdateShardCount', { StreamName: name, TargetShardCount: 0, ScalingType: 'UNIFORM_SCALING' }),
        'ValidationException', /targetShardCount/);
      await expectError(send(cl, 'UpdateShardCount', { StreamName: name, TargetShardCount: 2, ScalingType: 'LOPSIDED' }),
        'ValidationException', /scalingType/);
      const d = (await send(cl, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
      assert.equal(d.OpenShardCount, 4, 'refused scalings changed nothing');
      assert.equal(d.StreamStatus, 'ACTIVE');
    } finally {
      cl.destroy();
      await lim.stop();
    }
  });
});

describe('ListShards ShardFilter', () => {
  test('AT_LATEST, AFTER_SHARD_ID, trim horizon and timestamps over lineage', async () => {
    const name = streamName('filter');
    await createActive(h.c, name, { ShardCount: 1 });
    const t0 = new Date();
    await sleep(30);
    await send(h.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: String(1n << 127n) });
    await waitStatus(h.c, name, 'ACTIVE');
    await sleep(30);
    const t1 = new Date();
    const ids = async (filter, extra = {}) => (await listShards(h.c, name, { ShardFilter: filter, ...extra })).map((s) => s.ShardId);
    assert.deepEqual(await ids({ Type: 'AT_LATEST' }), [shardId(1), shardId(2)]);
    assert.deepEqual(await ids({ Type: 'FROM_TRIM_HORIZON' }), [0, 1, 2].map(shardId));
    assert.deepEqual(await ids({ Type: 'AT_TRIM_HORIZON' }), [shardId(0)]);
    assert.deepEqual(await ids({ Type: 'AFTER_SHARD_ID', ShardId: shardId(0) }), [shardId(1), shardId(2)]);
    assert.deepEqual(await ids({ Type: 'AT_TIMESTAMP', Timestamp: t0 }), [shardId(0)]);
    assert.deepEqual(await ids({ Type: 'AT_TIMESTAMP', Timestamp: t1 }), [shardId(1), shardId(2)]);
    assert.deepEqual(await ids({ Type: 'FROM_TIMESTAMP', Timestamp: t0 }), [0, 1, 2].map(shardId));
    assert.deepEqual(await ids({ Type: 'FROM_TIMESTAMP', Timestamp: t1 }), [shardId(1), shardId(2)]);
    // Paging keeps the filter.
    assert.deepEqual(await ids({ Type: 'AT_LATEST' }, { MaxResults: 1 }), [shardId(1), shardId(2)]);
    await expectError(send(h.c, 'ListShards', { StreamName: name, ShardFilter: { Type: 'AFTER_SHARD_ID' } }),
      'InvalidArgumentException', /requires a ShardId/);
    await expectError(send(h.c, 'ListShards', { StreamName: name, ShardFilter: { Type: 'AT_TIMESTAMP' } }),
      'InvalidArgumentException', /requires a Timestamp/);
    const page = await send(h.c, 'ListShards', { StreamName: name, MaxResults: 1 });
    await expectError(send(h.c, 'ListShards', { StreamName: name, NextToken: page.NextToken }),
      'InvalidArgumentException', /NextToken and StreamName cannot be provided together/);
  });
});

// Producers write with keys k0..k7 (one write in flight per key, so the
// acknowledgement order is the key's order) while the stream is split,
// merged and scaled, and a live SubscribeToShard reader follows lineage as
// it goes. Afterwards a GetRecords reader follows lineage from the roots (a
// shard once all its parents are done). Both must see every acknowledged
// record exactly once, each key's records in acknowledgement order.
describe('readers follow lineage', () => {
  test('every acknowledged record exactly once, in per-key order, across reshards', async () => {
    const name = streamName('lineage');
    const { StreamARN } = await createActive(h.c, name, { ShardCount: 2 });
    const acked = new Map();
    let stop = false;

    // A live reader, as KCL reads with enhanced fan-out: one subscription
    // per shard; at a shard's end (ChildShards, no continuation) each child
    // whose parents have all ended is subscribed to from TRIM_HORIZON.
    const { ConsumerARN } = await registerActive(h.c, StreamARN, 'follower');
    const live = new Map();
    const ended = new Set(), started = new Set(), subs = [], following = [];
    const follow = async (ShardId) => {
      const sub = await subscribe(h.c, { ConsumerARN, ShardId, StartingPosition: { Type: 'TRIM_HORIZON' } });
      subs.push(sub);
      for (;;) {
        const ev = await sub.next(60000);
        if (ev.end || ev.error) return;
        const e = ev.SubscribeToShardEvent;
        for (const r of e.Records) {
          const d = dec(r.Data);
          const k = d.split(':')[0];
          if (!live.has(k)) live.set(k, []);
          live.get(k).push(d);
        }
        if (e.ContinuationSequenceNumber === undefined) {
          ended.add(ShardId);
          for (const ch of e.ChildShards ?? []) {
            if (ch.ParentShards.every((p) => ended.has(p)) && !started.has(ch.ShardId)) {
              started.add(ch.ShardId);
              following.push(follow(ch.ShardId));
            }
          }
          return;
        }
      }
    };
    for (const id of [shardId(0), shardId(1)]) { started.add(id); following.push(follow(id)); }
    const producer = async (key) => {
      const list = [];
      acked.set(key, list);
      // At least 30 writes per key whatever the machine's speed (an
      // AddressSanitizer build is slow), at most 400.
      for (let i = 0; i < 400 && !(stop && i >= 30); i++) {
        const data = `${key}:${i}`;
        const r = await send(h.c, 'PutRecords', { StreamName: name, Records: [{ PartitionKey: key, Data: Buffer.from(data) }] });
        if (r.FailedRecordCount === 0) list.push({ data, seq: r.Records[0].SequenceNumber, shard: r.Records[0].ShardId });
      }
    };
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    const producing = Promise.all(keys.map(producer));
    await sleep(100);
    await send(h.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: String(1n << 126n) });
    await waitStatus(h.c, name, 'ACTIVE');
    await sleep(100);
    await send(h.c, 'MergeShards', { StreamName: name, ShardToMerge: shardId(2), AdjacentShardToMerge: shardId(3) });
    await waitStatus(h.c, name, 'ACTIVE');
    await sleep(100);
    await send(h.c, 'UpdateShardCount', { StreamName: name, TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' });
    await waitStatus(h.c, name, 'ACTIVE');
    await sleep(100);
    stop = true;
    await producing;

    const shards = await listShards(h.c, name);
    const byId = new Map(shards.map((s) => [s.ShardId, s]));
    const done = new Set();
    const seen = new Map(keys.map((k) => [k, []]));
    const order = [];
    for (let pass = 0; pass < shards.length + 1 && done.size < shards.length; pass++) {
      for (const s of shards) {
        if (done.has(s.ShardId)) continue;
        const parents = [s.ParentShardId, s.AdjacentParentShardId].filter((p) => p && byId.has(p));
        if (!parents.every((p) => done.has(p))) continue;
        const r = await readShard(h.c, name, s.ShardId);
        assert.equal(!r.children, isOpen(s), `${s.ShardId}: ChildShards exactly at the end of a closed shard`);
        for (const rec of r.records) {
          const d = dec(rec.Data);
          seen.get(d.split(':')[0]).push(d);
        }
        done.add(s.ShardId);
        order.push(s.ShardId);
      }
    }
    assert.equal(done.size, shards.length, `every shard read (${order.join(' ')})`);
    let total = 0;
    for (const k of keys) {
      const want = acked.get(k).map((x) => x.data);
      total += want.length;
      assert.deepEqual(seen.get(k), want, `key ${k}: every acknowledged record once, in order`);
    }
    assert.ok(total > 100, `producers wrote through the reshards (${total} records)`);

    // The live reader gets the same, in the same order, once it catches up.
    const deadline = Date.now() + 30000;
    const caughtUp = () => keys.every((k) => (live.get(k)?.length ?? 0) >= acked.get(k).length);
    while (!caughtUp() && Date.now() < deadline) await sleep(50);
    for (const sub of subs) sub.close();
    await Promise.allSettled(following);
    for (const k of keys) {
      assert.deepEqual(live.get(k) ?? [], acked.get(k).map((x) => x.data),
        `key ${k}: the live reader saw every acknowledged record once, in order`);
    }
    assert.ok(ended.size >= 3, `the live reader went through shard ends (${[...ended].join(' ')})`);
    const shardsUsed = new Set([...acked.values()].flat().map((x) => x.shard));
    assert.ok(shardsUsed.size >= 4, `writes landed in parents and children (${[...shardsUsed].join(' ')})`);
  });
});

describe('SubscribeToShard at shard end', () => {
  test('a subscriber of the parent gets its records, then ChildShards and no continuation', async () => {
    const name = streamName('subend');
    const { StreamARN } = await createActive(h.c, name, { ShardCount: 1 });
    const k = await registerActive(h.c, StreamARN, 'ender');
    await send(h.c, 'PutRecord', { StreamName: name, PartitionKey: 'a', Data: Buffer.from('one') });
    const sub = await subscribe(h.c, { ConsumerARN: k.ConsumerARN, ShardId: shardId(0), StartingPosition: { Type: 'TRIM_HORIZON' } });
    try {
      await sub.until((recs) => recs.length >= 1);
      await send(h.c, 'PutRecord', { StreamName: name, PartitionKey: 'a', Data: Buffer.from('two') });
      await sub.until((recs) => recs.length >= 2);
      await send(h.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: String(1n << 127n) });
      const s = await sub.until(() => false, 15000);
      assert.ok(s.end, `the stream ends cleanly (${s.error})`);
      assert.deepEqual(s.records.map((r) => dec(r.Data)), ['one', 'two']);
      const last = s.events.at(-1).SubscribeToShardEvent;
      assert.equal(last.ContinuationSequenceNumber, undefined, 'no continuation at shard end');
      assert.deepEqual(last.ChildShards.map((x) => x.ShardId), [shardId(1), shardId(2)]);
      assert.deepEqual(last.ChildShards[0].ParentShards, [shardId(0)]);
      for (const e of s.events.slice(0, -1)) assert.ok(e.SubscribeToShardEvent.ContinuationSequenceNumber, 'earlier events continue');
    } finally { sub.res.EventStream.return?.(); }
    // Subscribing to the closed parent again ends at once; children take over.
    await sleep(5100); // the consumer-shard lease of the ended subscription (5 s)
    const again = await subscribe(h.c, { ConsumerARN: k.ConsumerARN, ShardId: shardId(0), StartingPosition: { Type: 'LATEST' } });
    const s2 = await again.until(() => false, 10000);
    assert.ok(s2.end);
    assert.equal(s2.records.length, 0);
    assert.equal(s2.events.at(-1).SubscribeToShardEvent.ChildShards.length, 2);
    await send(h.c, 'PutRecord', { StreamName: name, PartitionKey: 'a', Data: Buffer.from('three'), ExplicitHashKey: '1' });
    const child = await subscribe(h.c, { ConsumerARN: k.ConsumerARN, ShardId: shardId(1), StartingPosition: { Type: 'TRIM_HORIZON' } });
    try {
      const s3 = await child.until((recs) => recs.length >= 1);
      assert.deepEqual(s3.records.map((r) => dec(r.Data)), ['three']);
    } finally { child.res.EventStream.return?.(); }
  });
});

describe('crash during a split', () => {
  test('kill -9 leaves the old shards or the new ones, never a mix, and no acknowledged record is lost', async () => {
    for (let round = 0; round < 3; round++) {
      const s = await startSluice({ args: ['--stream-delay', '0'] });
      const cl = client(s.endpoint);
      const name = streamName('crash');
      await createActive(cl, name, { ShardCount: 1 });
      const acked = [];
      for (let i = 0; i < 20; i++) {
        await send(cl, 'PutRecord', { StreamName: name, PartitionKey: `p${i}`, Data: Buffer.from(`r${i}`) });
        acked.push(`r${i}`);
      }
      // The split and more writes in flight, then SIGKILL at a varying moment.
      const split = send(cl, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: String(1n << 127n) })
        .then(() => true, () => false);
      const writes = Array.from({ length: 20 }, (_, i) => send(cl, 'PutRecord', { StreamName: name, PartitionKey: `q${i}`, Data: Buffer.from(`w${i}`) })
        .then(() => acked.push(`w${i}`), () => {}));
      await sleep(round * 3);
      s.proc.kill('SIGKILL');
      const splitAcked = await split;
      await Promise.all(writes);
      cl.destroy();
      await s.stop({ keepData: true });

      const s2 = await startSluice({ dataDir: s.dataDir });
      const c2 = client(s2.endpoint);
      try {
        await waitStatus(c2, name, 'ACTIVE');
        const shards = await listShards(c2, name);
        const ids = shards.map((x) => x.ShardId);
        if (ids.length === 1) {
          assert.ok(!splitAcked, 'an acknowledged split survives');
          assert.ok(isOpen(shards[0]), 'the old shard is open again');
        } else {
          assert.deepEqual(ids, [0, 1, 2].map(shardId), 'all the new shards, not some');
          assert.ok(!isOpen(shards[0]) && isOpen(shards[1]) && isOpen(shards[2]));
        }
        assertTiles(shards);
        const got = new Set();
        for (const x of shards) for (const r of (await readShard(c2, name, x.ShardId)).records) got.add(dec(r.Data));
        for (const a of acked) assert.ok(got.has(a), `round ${round}: acknowledged ${a} survives`);
        // And the stream takes writes again. On the jetstream backend a
        // split whose catalog change died with its gateway leaves the old
        // shard fenced until another gateway voids the fence (5 s): a write
        // stored after the fence waits for that and is stored again.
        await send(c2, 'PutRecord', { StreamName: name, PartitionKey: 'z', Data: Buffer.from('z') });
      } finally {
        c2.destroy();
        await s2.stop();
      }
    }
  });
});

describe('UpdateStreamMode', () => {
  test('switches modes (persisted), and an ON_DEMAND stream grows when its writes are throttled', async () => {
    let s = await startSluice({ args: ['--write-limit', 'on', '--on-demand-window', '300ms', '--stream-delay', '0'] });
    let cl = client(s.endpoint);
    try {
      const name = streamName('mode');
      const { StreamARN } = await createActive(cl, name, { ShardCount: 1 });
      await send(cl, 'UpdateStreamMode', { StreamARN, StreamModeDetails: { StreamMode: 'ON_DEMAND' } });
      let d = await waitStatus(cl, name, 'ACTIVE');
      assert.equal(d.StreamModeDetails.StreamMode, 'ON_DEMAND');
      assert.equal(d.OpenShardCount, 1, 'the shards stay as they were');
      await expectError(send(cl, 'UpdateStreamMode', { StreamARN, StreamModeDetails: { StreamMode: 'ON_DEMAND' } }),
        'InvalidArgumentException', /already in ON_DEMAND mode/);
      await expectError(send(cl, 'UpdateStreamMode', { StreamARN, StreamModeDetails: { StreamMode: 'FAST' } }),
        'ValidationException', /streamModeDetails.streamMode/);
      // More than 1,000 records/s to one shard: some are refused, and the
      // stream doubles at the end of the window.
      let throttled = 0;
      for (let i = 0; i < 4; i++) {
        const r = await send(cl, 'PutRecords', { StreamName: name, Records: Array.from({ length: 500 }, (_, j) => ({ PartitionKey: `k${j}`, Data: Buffer.from('x') })) });
        throttled += r.Records.filter((x) => x.ErrorCode === 'ProvisionedThroughputExceededException').length;
      }
      assert.ok(throttled > 0, 'writes were throttled');
      const deadline = Date.now() + 10000;
      for (;;) {
        d = (await send(cl, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
        if (d.OpenShardCount === 2 && d.StreamStatus === 'ACTIVE') break;
        assert.ok(Date.now() < deadline, `still ${d.OpenShardCount} open shards (${d.StreamStatus})`);
        await sleep(50);
      }
      assertTiles(await listShards(cl, name));
      await send(cl, 'UpdateStreamMode', { StreamARN, StreamModeDetails: { StreamMode: 'PROVISIONED' } });
      await waitStatus(cl, name, 'ACTIVE');
      cl.destroy();
      s = await s.restart();
      cl = client(s.endpoint);
      d = (await send(cl, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
      assert.equal(d.StreamModeDetails.StreamMode, 'PROVISIONED', 'the mode survives a restart');
      assert.equal(d.OpenShardCount, 2);
    } finally {
      cl.destroy();
      await s.stop();
    }
  });
});

describe('the REST door', () => {
  test('POST .../split, POST .../merge, PUT .../shard-count; refusals change nothing', async () => {
    const rest = (method, path, body, contentType = 'application/json') => rawH1(h.srv.endpoint, {
      method, path, contentType, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const name = streamName('rest');
    await createActive(h.c, name, { ShardCount: 1 });
    const base = `/v1/streams/${name}/shards`;
    let r = await rest('POST', `${base}/${shardId(0)}/split`, { NewStartingHashKey: String(1n << 127n) }, 'text/plain');
    assert.equal(r.status, 415, r.body);
    r = await rest('POST', `${base}/${shardId(0)}/split`, {});
    assert.equal(r.status, 400);
    assert.equal(r.json.__type, 'ValidationException');
    r = await rest('POST', `${base}/${shardId(7)}/split`, { NewStartingHashKey: '1000' });
    assert.equal(r.json.__type, 'ResourceNotFoundException');
    assert.equal((await listShards(h.c, name)).length, 1, 'refusals changed nothing');

    r = await rest('POST', `${base}/${shardId(0)}/split`, { NewStartingHashKey: String(1n << 127n) });
    assert.equal(r.status, 200, r.body);
    await waitStatus(h.c, name, 'ACTIVE');
    r = await rest('POST', `${base}/${shardId(1)}/merge`, { AdjacentShardToMerge: shardId(2) });
    assert.equal(r.status, 200, r.body);
    await waitStatus(h.c, name, 'ACTIVE');
    let shards = await listShards(h.c, name);
    assert.equal(shards[3].ParentShardId, shardId(1));
    assert.equal(shards[3].AdjacentParentShardId, shardId(2));
    r = await rest('PUT', `/v1/streams/${name}/shard-count`, { TargetShardCount: 2, ScalingType: 'UNIFORM_SCALING' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.CurrentShardCount, 1);
    assert.equal(r.json.TargetShardCount, 2);
    await waitStatus(h.c, name, 'ACTIVE');
    shards = await listShards(h.c, name);
    assert.equal(shards.filter(isOpen).length, 2);
    assertTiles(shards);
  });
});
