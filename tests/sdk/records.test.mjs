// Data plane through @aws-sdk/client-kinesis over HTTP/2: PutRecord(s),
// GetShardIterator (all five types), GetRecords, routing against
// tests/vectors/hashkeys.json, and the errors of each, checking that a
// refused request changes nothing.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  startSluice, client, send, expectError, validationRe, notFoundRe, createActive, streamName,
  readAll, dec, hashVectors, waitGone, reEscape, FLAGS, requireFlag, sleep,
} from './lib/harness.mjs';

const shardId = (i) => `shardId-${String(i).padStart(12, '0')}`;
const MAX = (1n << 128n) - 1n;
const bytes = (s) => new TextEncoder().encode(s);
const seqLt = (a, b) => BigInt(a) < BigInt(b);
const shardOf = (n, hashKey) => {
  const step = (1n << 128n) / BigInt(n);
  const i = hashKey / step;
  return Number(i >= BigInt(n) ? BigInt(n - 1) : i);
};
const md5Key = (pk) => BigInt(`0x${createHash('md5').update(pk, 'utf8').digest('hex')}`);
const recPath = (i, m) => ({ re: `records\\.${i}\\.(member\\.)?${m}` });

let srv; let c;
before(async () => { srv = await startSluice(); c = client(srv.endpoint); });
after(async () => {
  c?.destroy();
  const st = await srv?.stop();
  if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal} on SIGTERM:\n${srv.stderr().slice(-4000)}`);
});

// What GetRecords shows of a shard, for "errors change nothing" checks.
const snapshot = async (name, shards = 1) => {
  const out = [];
  for (let i = 0; i < shards; i++) out.push((await readAll(c, name, shardId(i))).map((r) => r.SequenceNumber));
  return out;
};

describe('produce / consume round trip', () => {
  test('PutRecord then GetRecords: bytes (Uint8Array), keys, order, sequence numbers, timestamps', async () => {
    const name = streamName('rt');
    await createActive(c, name, { ShardCount: 1 });
    const all = new Uint8Array(256).map((_, i) => i);
    const payloads = [bytes('hello'), all, new Uint8Array(0), bytes('snowman ☃ / ключ'), new Uint8Array(100000).fill(0xa5)];
    const t0 = Date.now();
    const puts = [];
    for (let i = 0; i < payloads.length; i++) {
      const r = await send(c, 'PutRecord', { StreamName: name, PartitionKey: `pk-${i}`, Data: payloads[i] });
      assert.equal(r.ShardId, shardId(0));
      assert.match(r.SequenceNumber, /^(0|[1-9]\d{0,128})$/);
      if (r.EncryptionType) assert.equal(r.EncryptionType, 'NONE');
      puts.push(r.SequenceNumber);
    }
    for (let i = 1; i < puts.length; i++) assert.ok(seqLt(puts[i - 1], puts[i]), 'sequence numbers increase');
    const got = await readAll(c, name, shardId(0));
    assert.equal(got.length, payloads.length);
    got.forEach((r, i) => {
      assert.ok(r.Data instanceof Uint8Array);
      assert.deepEqual(Buffer.from(r.Data), Buffer.from(payloads[i]), `record ${i} bytes`);
      assert.equal(r.PartitionKey, `pk-${i}`);
      assert.equal(r.SequenceNumber, puts[i]);
      assert.ok(r.ApproximateArrivalTimestamp instanceof Date);
      const at = r.ApproximateArrivalTimestamp.getTime();
      assert.ok(at >= t0 - 2000 && at <= Date.now() + 2000, `arrival ${r.ApproximateArrivalTimestamp.toISOString()}`);
    });
  });

  test('PutRecords 500 records over 4 shards: per-entry results, routing, order within a shard', async () => {
    const name = streamName('batch');
    await createActive(c, name, { ShardCount: 4 });
    const recs = Array.from({ length: 500 }, (_, i) => ({ PartitionKey: `key-${i}`, Data: bytes(`record ${i}`) }));
    const r = await send(c, 'PutRecords', { StreamName: name, Records: recs });
    assert.equal(r.FailedRecordCount ?? 0, 0);
    assert.equal(r.Records.length, 500);
    r.Records.forEach((e, i) => {
      assert.equal(e.ShardId, shardId(shardOf(4, md5Key(`key-${i}`))), `entry ${i}`);
      assert.match(e.SequenceNumber, /^\d+$/);
      assert.equal(e.ErrorCode, undefined);
    });
    for (let s = 0; s < 4; s++) {
      const got = await readAll(c, name, shardId(s));
      const want = r.Records.map((e, i) => ({ ...e, i })).filter((e) => e.ShardId === shardId(s));
      assert.equal(got.length, want.length, `shard ${s} count`);
      assert.deepEqual(got.map((g) => g.SequenceNumber), want.map((w) => w.SequenceNumber), `shard ${s} order`);
      got.forEach((g, k) => assert.equal(dec(g.Data), `record ${want[k].i}`));
      for (let k = 1; k < got.length; k++) assert.ok(seqLt(got[k - 1].SequenceNumber, got[k].SequenceNumber));
    }
  });

  test('PutRecords and PutRecord by StreamARN', async () => {
    const name = streamName('arnput');
    const { StreamARN: arn } = await createActive(c, name, { ShardCount: 1 });
    const a = await send(c, 'PutRecord', { StreamARN: arn, PartitionKey: 'x', Data: bytes('one') });
    const b = await send(c, 'PutRecords', { StreamARN: arn, Records: [{ PartitionKey: 'y', Data: bytes('two') }] });
    assert.equal(b.Records[0].ShardId, shardId(0));
    const it = await send(c, 'GetShardIterator', { StreamARN: arn, ShardId: shardId(0), ShardIteratorType: 'TRIM_HORIZON' });
    const g = await send(c, 'GetRecords', { ShardIterator: it.ShardIterator, StreamARN: arn });
    assert.deepEqual(g.Records.map((r) => dec(r.Data)), ['one', 'two']);
    assert.deepEqual(g.Records.map((r) => r.SequenceNumber), [a.SequenceNumber, b.Records[0].SequenceNumber]);
  });
});

describe('routing (tests/vectors/hashkeys.json)', () => {
  const hv = hashVectors();
  for (const n of [2, 4]) {
    test(`partition keys and explicit hash keys on ${n} shards`, async () => {
      const name = streamName(`route${n}`);
      await createActive(c, name, { ShardCount: n });
      const ranges = (await send(c, 'ListShards', { StreamName: name })).Shards.map((s) => ({ ShardId: s.ShardId, ...s.HashKeyRange }));
      assert.deepEqual(ranges, hv.ranges[String(n)]);
      for (const v of hv.vectors) {
        const want = shardId(v[`shard_index_${n}_shards`]);
        assert.equal(md5Key(v.partition_key).toString(), v.hash_key_decimal);
        const r = await send(c, 'PutRecord', { StreamName: name, PartitionKey: v.partition_key, Data: bytes(v.partition_key) });
        assert.equal(r.ShardId, want, `PutRecord key ${JSON.stringify(v.partition_key)}`);
        const b = await send(c, 'PutRecords', { StreamName: name, Records: [{ PartitionKey: v.partition_key, Data: bytes('b') }] });
        assert.equal(b.Records[0].ShardId, want, `PutRecords key ${JSON.stringify(v.partition_key)}`);
      }
      for (const v of hv.explicit_hash_key_vectors) {
        const want = shardId(v[`shard_index_${n}_shards`]);
        // the partition key would route elsewhere for some vectors; ExplicitHashKey wins
        const r = await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'a', ExplicitHashKey: v.explicit_hash_key, Data: bytes('e') });
        assert.equal(r.ShardId, want, `PutRecord ExplicitHashKey ${v.explicit_hash_key}`);
        const b = await send(c, 'PutRecords', { StreamName: name, Records: [{ PartitionKey: 'key-8', ExplicitHashKey: v.explicit_hash_key, Data: bytes('e') }] });
        assert.equal(b.Records[0].ShardId, want, `PutRecords ExplicitHashKey ${v.explicit_hash_key}`);
      }
      // the records are where the answers said
      const byKey = {};
      for (let s = 0; s < n; s++) for (const r of await readAll(c, name, shardId(s))) if (dec(r.Data) !== 'b' && dec(r.Data) !== 'e') byKey[r.PartitionKey] = s;
      for (const v of hv.vectors) assert.equal(byKey[v.partition_key], v[`shard_index_${n}_shards`]);
    });
  }

  test('ExplicitHashKey out of range: InvalidArgumentException; PutRecords refused whole', async () => {
    const name = streamName('ehk');
    await createActive(c, name, { ShardCount: 2 });
    await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'a', Data: bytes('keep') });
    const before = await snapshot(name, 2);
    const big = (MAX + 1n).toString();
    const msg = `Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was ${big}`;
    await expectError(send(c, 'PutRecord', { StreamName: name, PartitionKey: 'a', ExplicitHashKey: big, Data: bytes('x') }), 'InvalidArgumentException', msg);
    await expectError(send(c, 'PutRecords', { StreamName: name, Records: [{ PartitionKey: 'a', Data: bytes('ok') }, { PartitionKey: 'a', ExplicitHashKey: big, Data: bytes('x') }] }),
      'InvalidArgumentException', msg);
    // not a decimal number: model pattern → ValidationException
    await expectError(send(c, 'PutRecord', { StreamName: name, PartitionKey: 'a', ExplicitHashKey: '-1', Data: bytes('x') }), 'ValidationException',
      validationRe('-1', 'explicitHashKey', 'satisfy regular expression pattern: 0|([1-9]\\d{0,38})'));
    assert.deepEqual(await snapshot(name, 2), before, 'refused requests stored records');
  });
});

describe('PutRecord', () => {
  test('SequenceNumberForOrdering: the new number is larger', async () => {
    const name = streamName('sfo');
    await createActive(c, name, { ShardCount: 1 });
    const a = await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: bytes('1') });
    const b = await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: bytes('2'), SequenceNumberForOrdering: a.SequenceNumber });
    assert.ok(seqLt(a.SequenceNumber, b.SequenceNumber));
    const d = await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: bytes('3'), SequenceNumberForOrdering: b.SequenceNumber });
    assert.ok(seqLt(b.SequenceNumber, d.SequenceNumber));
    assert.deepEqual((await readAll(c, name, shardId(0))).map((r) => dec(r.Data)), ['1', '2', '3']);
    await expectError(send(c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: bytes('4'), SequenceNumberForOrdering: 'abc' }), 'ValidationException',
      validationRe('abc', 'sequenceNumberForOrdering', 'satisfy regular expression pattern: 0|([1-9]\\d{0,128})'));
  });

  describe('PutRecord validation', () => {
    let name; let before0;
    before(async () => {
      name = streamName('pkval');
      await createActive(c, name, { ShardCount: 1 });
      await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'a'.repeat(256), Data: bytes('256 ok') });
      await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'm', Data: new Uint8Array(1048576 - 1) });
      before0 = await snapshot(name);
    });

    test('partition key of 256 multi-byte characters is accepted (limit counts characters)', async () => {
      const r = await send(c, 'PutRecord', { StreamName: name, PartitionKey: '☃'.repeat(256), Data: bytes('768 bytes of key') });
      const b = await send(c, 'PutRecords', { StreamName: name, Records: [{ PartitionKey: 'ключ'.repeat(64), Data: bytes('x') }] });
      assert.equal(b.FailedRecordCount ?? 0, 0, JSON.stringify(b.Records));
      const got = await readAll(c, name, shardId(0));
      assert.equal(got.find((g) => g.SequenceNumber === r.SequenceNumber)?.PartitionKey, '☃'.repeat(256));
      before0 = await snapshot(name);
    });

    test('ValidationException: partition key length 0', async () => {
      await expectError(send(c, 'PutRecord', { StreamName: name, PartitionKey: '', Data: bytes('x') }), 'ValidationException',
        validationRe('', 'partitionKey', 'have length greater than or equal to 1'));
    });

    test('ValidationException: partition key length 257 (value echoed in full)', async () => {
      const k257 = 'k'.repeat(257);
      await expectError(send(c, 'PutRecord', { StreamName: name, PartitionKey: k257, Data: bytes('x') }), 'ValidationException',
        validationRe(k257, 'partitionKey', 'have length less than or equal to 256'));
    });

    test('ValidationException: data over 1 MiB', async () => {
      await expectError(send(c, 'PutRecord', { StreamName: name, PartitionKey: 'a', Data: new Uint8Array(1048577) }), 'ValidationException',
        validationRe({ re: '[^\']*' }, 'data', 'have length less than or equal to 1048576'));
    });

    test('ValidationException: stream name pattern', async () => {
      await expectError(send(c, 'PutRecord', { StreamName: 'bad/name', PartitionKey: 'a', Data: bytes('x') }), 'ValidationException',
        validationRe('bad/name', 'streamName', 'satisfy regular expression pattern: [a-zA-Z0-9_.-]+'));
    });

    test('the refused PutRecords stored nothing', async () => {
      assert.deepEqual(await snapshot(name), before0);
    });
  });

  test('missing stream: ResourceNotFoundException', async () => {
    const missing = streamName('nope');
    await expectError(send(c, 'PutRecord', { StreamName: missing, PartitionKey: 'a', Data: bytes('x') }), 'ResourceNotFoundException', notFoundRe(missing));
    await expectError(send(c, 'PutRecords', { StreamName: missing, Records: [{ PartitionKey: 'a', Data: bytes('x') }] }), 'ResourceNotFoundException', notFoundRe(missing));
    await expectError(send(c, 'PutRecord', { StreamARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${missing}`, PartitionKey: 'a', Data: bytes('x') }), 'ResourceNotFoundException', /not found/);
  });
});

describe('PutRecords limits (each refused whole; GetRecords unchanged)', () => {
  let name; let before0;
  before(async () => {
    name = streamName('prlim');
    await createActive(c, name, { ShardCount: 1 });
    await send(c, 'PutRecords', { StreamName: name, Records: [{ PartitionKey: 'a', Data: bytes('kept') }] });
    before0 = await snapshot(name);
  });
  const unchanged = async () => assert.deepEqual(await snapshot(name), before0, 'a refused PutRecords changed the shard');

  test('ValidationException: 0 records', async () => {
    await expectError(send(c, 'PutRecords', { StreamName: name, Records: [] }), 'ValidationException',
      validationRe('[]', 'records', 'have length greater than or equal to 1'));
    await unchanged();
  });

  test('ValidationException: 501 records', async () => {
    const r501 = Array.from({ length: 501 }, (_, i) => ({ PartitionKey: `k${i}`, Data: bytes('x') }));
    await expectError(send(c, 'PutRecords', { StreamName: name, Records: r501 }), 'ValidationException',
      validationRe({ re: '\\[.*\\]' }, 'records', 'have length less than or equal to 500'));
    await unchanged();
  });

  test('ValidationException: one entry with an empty partition key', async () => {
    await expectError(send(c, 'PutRecords', { StreamName: name, Records: [{ PartitionKey: 'ok', Data: bytes('x') }, { PartitionKey: '', Data: bytes('y') }] }),
      'ValidationException', validationRe('', recPath(2, 'partitionKey'), 'have length greater than or equal to 1'));
    await unchanged();
  });

  test('ValidationException: one entry with a 257-character partition key', async () => {
    const k257 = 'q'.repeat(257);
    await expectError(send(c, 'PutRecords', { StreamName: name, Records: [{ PartitionKey: k257, Data: bytes('y') }] }),
      'ValidationException', validationRe(k257, recPath(1, 'partitionKey'), 'have length less than or equal to 256'));
    await unchanged();
  });

  test('ValidationException: one entry over 1 MiB', async () => {
    await expectError(send(c, 'PutRecords', { StreamName: name, Records: [{ PartitionKey: 'a', Data: bytes('y') }, { PartitionKey: 'b', Data: new Uint8Array(1048577) }] }),
      'ValidationException', validationRe({ re: '[^\']*' }, recPath(2, 'data'), 'have length less than or equal to 1048576'));
    await unchanged();
  });

  test('over 5 MiB in one request is refused; 5 x 1,000,000 bytes fits', async () => {
    const six = Array.from({ length: 6 }, (_, i) => ({ PartitionKey: `p${i}`, Data: new Uint8Array(1000000) }));
    let err;
    try { await send(c, 'PutRecords', { StreamName: name, Records: six }); } catch (e) { err = e; }
    assert.ok(err, 'a 6,000,000-byte PutRecords was accepted (limit 5 MiB)');
    assert.ok(['InvalidArgumentException', 'ValidationException'].includes(err.name), `${err.name}: ${err.message}`);
    assert.equal(err.$metadata.httpStatusCode, 400);
    await unchanged();
    const five = await send(c, 'PutRecords', { StreamName: name, Records: six.slice(0, 5) });
    assert.equal(five.FailedRecordCount ?? 0, 0);
  });
});

describe('GetShardIterator', () => {
  let name; let arn; let seqs; let recs;
  before(async () => {
    name = streamName('iter');
    arn = (await createActive(c, name, { ShardCount: 2 })).StreamARN;
    seqs = [];
    for (let i = 0; i < 6; i++) {
      // ExplicitHashKey 0 → shard 0
      const r = await send(c, 'PutRecord', { StreamName: name, PartitionKey: `p${i}`, ExplicitHashKey: '0', Data: bytes(`r${i}`) });
      seqs.push(r.SequenceNumber);
      if (i === 2) await sleep(15); // distinct arrival times around record 3 for AT_TIMESTAMP
    }
    await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'other', ExplicitHashKey: MAX.toString(), Data: bytes('s1') });
    recs = await readAll(c, name, shardId(0));
  });
  const first = async (input, limit = 10) => {
    const it = await send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ...input });
    assert.match(it.ShardIterator, /^.{1,512}$/s);
    return (await send(c, 'GetRecords', { ShardIterator: it.ShardIterator, Limit: limit })).Records.map((r) => dec(r.Data));
  };

  test('TRIM_HORIZON, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP', async () => {
    assert.deepEqual(await first({ ShardIteratorType: 'TRIM_HORIZON' }), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    assert.deepEqual(await first({ ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: seqs[2] }), ['r2', 'r3', 'r4', 'r5']);
    assert.deepEqual(await first({ ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: seqs[2] }), ['r3', 'r4', 'r5']);
    assert.deepEqual(await first({ ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: seqs[5] }), []);
    const ts = recs[3].ApproximateArrivalTimestamp;
    const want = recs.filter((r) => r.ApproximateArrivalTimestamp.getTime() >= ts.getTime()).map((r) => dec(r.Data));
    assert.ok(want.length >= 3 && want[0] !== 'r0');
    assert.deepEqual(await first({ ShardIteratorType: 'AT_TIMESTAMP', Timestamp: ts }), want);
    assert.deepEqual(await first({ ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(Date.now() - 3600e3) }), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    // LATEST: nothing now, then exactly what is written after it
    const it = await send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'LATEST' });
    let g = await send(c, 'GetRecords', { ShardIterator: it.ShardIterator });
    assert.deepEqual(g.Records, []);
    assert.equal(g.MillisBehindLatest, 0);
    await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'late', ExplicitHashKey: '1', Data: bytes('after-latest') });
    g = await send(c, 'GetRecords', { ShardIterator: g.NextShardIterator });
    assert.deepEqual(g.Records.map((r) => dec(r.Data)), ['after-latest']);
    recs = await readAll(c, name, shardId(0));
  });

  test('by StreamARN', async () => {
    const it = await send(c, 'GetShardIterator', { StreamARN: arn, ShardId: shardId(1), ShardIteratorType: 'TRIM_HORIZON' });
    const g = await send(c, 'GetRecords', { ShardIterator: it.ShardIterator, StreamARN: arn });
    assert.deepEqual(g.Records.map((r) => dec(r.Data)), ['s1']);
  });

  test('InvalidArgumentException: missing/extra StartingSequenceNumber, sequence number of another shard', async () => {
    await expectError(send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'AT_SEQUENCE_NUMBER' }),
      'InvalidArgumentException', /StartingSequenceNumber/);
    // (kinesalite also refuses TRIM_HORIZON/LATEST *with* a StartingSequenceNumber; the
    // reference does not require it, so that case is not asserted here.)
    await expectError(send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'AT_TIMESTAMP' }), 'InvalidArgumentException');
    const s1 = (await readAll(c, name, shardId(1)))[0].SequenceNumber;
    await expectError(send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: s1 }),
      'InvalidArgumentException', new RegExp(`^Invalid StartingSequenceNumber\\. It encodes ${shardId(1)}, while it was used in a call to a shard with ${shardId(0)}$`));
    await expectError(send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(1), ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: seqs[0] }),
      'InvalidArgumentException', /^Invalid StartingSequenceNumber\. It encodes shardId-000000000000/);
    await expectError(send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'NOT_A_TYPE' }), 'ValidationException',
      validationRe('NOT_A_TYPE', 'shardIteratorType', 'satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]'));
  });

  test('ResourceNotFoundException: missing shard, missing stream', async () => {
    await expectError(send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(7), ShardIteratorType: 'TRIM_HORIZON' }),
      'ResourceNotFoundException', new RegExp(`^Shard ${shardId(7)} in stream ${reEscape(name)} under account \\d{12} does not exist$`));
    const missing = streamName('nope');
    await expectError(send(c, 'GetShardIterator', { StreamName: missing, ShardId: shardId(0), ShardIteratorType: 'TRIM_HORIZON' }), 'ResourceNotFoundException', /.+/);
  });
});

describe('GetRecords', () => {
  test('Limit, NextShardIterator chain, MillisBehindLatest', async () => {
    const name = streamName('gr');
    await createActive(c, name, { ShardCount: 1 });
    await send(c, 'PutRecords', { StreamName: name, Records: Array.from({ length: 10 }, (_, i) => ({ PartitionKey: 'p', Data: bytes(`g${i}`) })) });
    let it = (await send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
    const seen = [];
    for (const want of [3, 3, 3, 1, 0, 0]) {
      const g = await send(c, 'GetRecords', { ShardIterator: it, Limit: 3 });
      assert.equal(g.Records.length, want);
      assert.ok(g.NextShardIterator, 'NextShardIterator on an open shard');
      assert.equal(typeof g.MillisBehindLatest, 'number');
      assert.ok(g.MillisBehindLatest >= 0);
      if (seen.length + g.Records.length === 10) assert.equal(g.MillisBehindLatest, 0, 'caught up');
      assert.equal(g.ChildShards, undefined, 'ChildShards only at the end of a closed shard');
      seen.push(...g.Records.map((r) => dec(r.Data)));
      it = g.NextShardIterator;
    }
    assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => `g${i}`));
    // default Limit reads everything; the old iterator is still valid (reads are idempotent)
    const it0 = (await send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
    assert.equal((await send(c, 'GetRecords', { ShardIterator: it0 })).Records.length, 10);
    assert.equal((await send(c, 'GetRecords', { ShardIterator: it0, Limit: 10000 })).Records.length, 10);
  });

  describe('GetRecords errors', () => {
    let name; let it;
    before(async () => {
      name = streamName('grerr');
      await createActive(c, name, { ShardCount: 1 });
      await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'p', Data: bytes('x') });
      it = (await send(c, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
    });

    test('ValidationException: Limit 0 and 10001', async () => {
      await expectError(send(c, 'GetRecords', { ShardIterator: it, Limit: 0 }), 'ValidationException',
        validationRe('0', 'limit', 'have value greater than or equal to 1'));
      await expectError(send(c, 'GetRecords', { ShardIterator: it, Limit: 10001 }), 'ValidationException',
        validationRe('10001', 'limit', 'have value less than or equal to 10000'));
    });

    test('InvalidArgumentException: malformed and tampered iterators', async () => {
      await expectError(send(c, 'GetRecords', { ShardIterator: 'AAAAAAAAAAFnotAnIterator' }), 'InvalidArgumentException', 'Invalid ShardIterator.');
      await expectError(send(c, 'GetRecords', { ShardIterator: 'x' }), 'InvalidArgumentException', 'Invalid ShardIterator.');
      for (const pos of [0, Math.floor(it.length / 2), it.length - 1]) {
        const flipped = it.slice(0, pos) + (it[pos] === 'A' ? 'B' : 'A') + it.slice(pos + 1);
        await expectError(send(c, 'GetRecords', { ShardIterator: flipped }), 'InvalidArgumentException', 'Invalid ShardIterator.');
      }
      assert.equal((await send(c, 'GetRecords', { ShardIterator: it })).Records.length, 1, 'the genuine iterator still works');
    });

    test('ValidationException: iterator longer than 512 (value echoed in full)', async () => {
      await expectError(send(c, 'GetRecords', { ShardIterator: 'A'.repeat(513) }), 'ValidationException',
        validationRe({ re: 'A{513}' }, 'shardIterator', 'have length less than or equal to 512'));
    });

    test('ResourceNotFoundException: iterator of a deleted stream', async () => {
      await send(c, 'DeleteStream', { StreamName: name });
      await waitGone(c, name);
      await expectError(send(c, 'GetRecords', { ShardIterator: it }), 'ResourceNotFoundException', /.+/);
    });
  });
});

describe('ExpiredIteratorException (server with a short iterator lifetime)', () => {
  test('an iterator older than the lifetime is refused; a fresh NextShardIterator works', async () => {
    const flag = requireFlag('iteratorTtl', 'the shard iterator lifetime (--iterator-ttl)');
    const s2 = await startSluice({ args: [flag, '500ms'] });
    const c2 = client(s2.endpoint);
    try {
      const name = streamName('exp');
      await createActive(c2, name, { ShardCount: 1 });
      await send(c2, 'PutRecord', { StreamName: name, PartitionKey: 'p', Data: bytes('x') });
      const it = (await send(c2, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
      const g = await send(c2, 'GetRecords', { ShardIterator: it });
      assert.equal(g.Records.length, 1);
      await sleep(1200); // wait out the configured lifetime (a time bound, not synchronisation)
      await expectError(send(c2, 'GetRecords', { ShardIterator: it }), 'ExpiredIteratorException', /^Iterator expired\./);
      const fresh = (await send(c2, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
      assert.equal((await send(c2, 'GetRecords', { ShardIterator: fresh })).Records.length, 1);
    } finally {
      c2.destroy();
      const st = await s2.stop();
      assert.equal(st.code, 0, s2.stderr().slice(-4000));
    }
  });
});

describe('per-shard write throttling (behind a flag)', () => {
  test('PutRecords reports per-record ProvisionedThroughputExceededException; only successes are stored', async () => {
    const flag = requireFlag('throttle', 'per-shard write throttling');
    const s2 = await startSluice({ args: [flag, 'on'] });
    const c2 = client(s2.endpoint);
    try {
      const name = streamName('thr');
      await createActive(c2, name, { ShardCount: 1 });
      // 5 x 1,000,000 bytes to one shard at once: 1 MiB/s admits one, the rest fail
      const recs = Array.from({ length: 5 }, (_, i) => ({ PartitionKey: `p${i}`, Data: new Uint8Array(1000000).fill(i) }));
      const r = await send(c2, 'PutRecords', { StreamName: name, Records: recs });
      assert.equal(r.Records.length, 5);
      const failed = r.Records.filter((e) => e.ErrorCode);
      assert.equal(r.FailedRecordCount, failed.length);
      assert.ok(failed.length >= 1 && failed.length < 5, `FailedRecordCount ${failed.length}`);
      for (const e of failed) {
        assert.equal(e.ErrorCode, 'ProvisionedThroughputExceededException');
        assert.match(e.ErrorMessage, /^Rate exceeded for shard shardId-000000000000 in stream \S+ under account \d{12}\.$/);
        assert.equal(e.SequenceNumber, undefined);
        assert.equal(e.ShardId, undefined);
      }
      const ok = r.Records.filter((e) => !e.ErrorCode);
      const got = await (async () => {
        const it = (await send(c2, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
        return (await send(c2, 'GetRecords', { ShardIterator: it })).Records;
      })();
      assert.deepEqual(got.map((g) => g.SequenceNumber), ok.map((e) => e.SequenceNumber));
      // A single PutRecord over the budget gets the error itself. The reads
      // above took a while (the bucket refills at 1 MiB/s), so send 1 MB
      // records back to back until one is refused: the third at the latest.
      let refused;
      for (let i = 0; i < 3 && !refused; i++) {
        refused = await send(c2, 'PutRecord', { StreamName: name, PartitionKey: 'z', Data: new Uint8Array(1000000) })
          .then(() => undefined, (e) => e);
      }
      assert.ok(refused, 'three 1 MB PutRecords in a row were all admitted at 1 MiB/s');
      assert.equal(refused.name, 'ProvisionedThroughputExceededException');
      assert.match(refused.message, /^Rate exceeded for shard/);
    } finally {
      c2.destroy();
      const st = await s2.stop();
      assert.equal(st.code, 0, s2.stderr().slice(-4000));
    }
  });
});
