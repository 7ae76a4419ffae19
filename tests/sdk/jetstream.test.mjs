// Two gateways on one JetStream (the jetstream backend): what one gateway
// changes the other serves, and no acknowledged record is lost while a NATS
// server is killed and a gateway dies and comes back. Runs only under
// tests/sdk/run-jetstream.sh (SLUICE_BACKEND=jetstream, NATS_DIR naming the
// cluster it started); the node kill needs 3 nodes (R3).
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { launch } from '../lib/process.mjs';
import {
  startSluice, client, send, streamName, subscribe, sleep, waitStatus, expectError, JETSTREAM,
  REPO, binPath, backendArgs,
} from './lib/harness.mjs';

const CLUSTER = join(REPO, 'tests', 'lib', 'nats-cluster.sh');
const NODES = Number(process.env.NODES || 1);
const nats = (...a) => execFileSync('bash', [CLUSTER, ...a, '--dir', process.env.NATS_DIR],
  { encoding: 'utf8', timeout: 60000 });

const natsAsync = (...a) => promisify(execFile)('bash', [CLUSTER, ...a, '--dir', process.env.NATS_DIR],
  { timeout: 90000 });

const shardId = (i) => `shardId-${String(i).padStart(12, '0')}`;

async function until(what, fn, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

// Reads a shard from TRIM_HORIZON to its tip through one gateway.
async function readAll(c, StreamName, ShardId) {
  let it = (await send(c, 'GetShardIterator', { StreamName, ShardId, ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
  const out = [];
  for (let i = 0; i < 1000 && it; i++) {
    const r = await send(c, 'GetRecords', { ShardIterator: it, Limit: 10000 });
    out.push(...r.Records);
    if (r.Records.length === 0 && r.MillisBehindLatest === 0) break;
    it = r.NextShardIterator;
  }
  return out;
}

describe('two gateways on one JetStream', { skip: !JETSTREAM && 'jetstream backend only' }, () => {
  const prefix = `two${randomBytes(6).toString('hex')}`;
  const args = ['--nats-prefix', prefix, '--stream-delay', '0'];
  const servers = [];
  const clients = [];
  const start = async () => {
    const s = await startSluice({ args });
    servers.push(s);
    const c = client(s.endpoint);
    clients.push(c);
    return { s, c };
  };
  after(async () => {
    for (const c of clients) c.destroy();
    for (const s of servers) await s.stop();
  });
  // A failing test prints the last log lines of the gateways it started:
  // a failure in CI must be diagnosable from its output alone.
  const logged = (name, fn) => test(name, async () => {
    const first = servers.length;
    try {
      await fn();
    } catch (e) {
      for (const s of servers.slice(first)) {
        const tail = s.stderr().split('\n').slice(-60).map((l) => `#   ${l}`).join('\n');
        console.log(`# gateway on port ${s.port}, its last log lines:\n${tail}`);
      }
      throw e;
    }
  });

  logged('a stream made through A serves through B, and B sees A\'s changes within a second', async () => {
    const A = await start();
    const B = await start();
    const name = streamName('two');
    await send(A.c, 'CreateStream', { StreamName: name, ShardCount: 2 });
    await waitStatus(A.c, name, 'ACTIVE');
    const seen = await until('B sees the stream ACTIVE', async () => {
      const d = await send(B.c, 'DescribeStreamSummary', { StreamName: name });
      return d.StreamDescriptionSummary.StreamStatus === 'ACTIVE' && d;
    }, 1000);
    assert.equal(seen.StreamDescriptionSummary.OpenShardCount, 2);
    await send(A.c, 'AddTagsToStream', { StreamName: name, Tags: { team: 'a' } });
    await until('B sees the tag', async () => {
      const t = await send(B.c, 'ListTagsForStream', { StreamName: name });
      return t.Tags.some((x) => x.Key === 'team' && x.Value === 'a');
    }, 1000);
    // Written through B, read through A with B's iterator and with its own.
    const put = await send(B.c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: Buffer.from('via B') });
    const it = (await send(B.c, 'GetShardIterator', { StreamName: name, ShardId: put.ShardId,
      ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: put.SequenceNumber })).ShardIterator;
    // Not within a second: each gateway copies the new stream once its own
    // STREAM.CREATE is answered, and JetStream answers the first of the two
    // only after the stream's first leader election, a duplicate at once
    // (seen 0.4 s apart here; B may write and answer before A follows).
    const r = await until('A reads B\'s record', async () => {
      const g = await send(A.c, 'GetRecords', { ShardIterator: it });
      return g.Records.length === 1 && g;
    }, 5000);
    assert.equal(Buffer.from(r.Records[0].Data).toString(), 'via B');
    assert.equal(r.Records[0].SequenceNumber, put.SequenceNumber);
    // A retention change reaches JetStream's MaxAge (nats-server's monitoring port says).
    await send(B.c, 'IncreaseStreamRetentionPeriod', { StreamName: name, RetentionPeriodHours: 48 });
    const monitor = process.env.NATS_MONITOR.split(',')[0];
    await until('MaxAge 48 h in JetStream', async () => {
      const jsz = await (await fetch(`${monitor}/jsz?accounts=true&streams=true&config=true`)).json();
      const streams = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
      const mine = streams.filter((x) => x.name.startsWith(`${prefix}-data-`));
      return mine.length === 1 && mine[0].config.max_age === 48 * 3600 * 1e9;
    }, 5000);
    // Deleted through B: gone through A.
    await send(B.c, 'DeleteStream', { StreamName: name });
    await until('A no longer lists it', async () => {
      const l = await send(A.c, 'ListStreams', {});
      return !l.StreamNames.includes(name);
    }, 2000);
  });

  logged('reshards through A while B writes: every acknowledged record once, where its answer said, in per-key order, the same through both', async () => {
    const A = await start();
    const B = await start();
    const name = streamName('rsw');
    await send(A.c, 'CreateStream', { StreamName: name, ShardCount: 2 });
    await waitStatus(A.c, name, 'ACTIVE');
    await waitStatus(B.c, name, 'ACTIVE');
    // B: rounds of one record per key, each after the last was answered.
    const KEYS = 20;
    const acked = new Map(); // data -> { shard, seq }
    const order = Array.from({ length: KEYS }, () => []); // per key: acknowledged data in send order
    let stop = false;
    let failed = 0, throttled = 0;
    const failures = [];
    let rounds = 0;
    const producer = (async () => {
      for (let n = 0; n < 2000 && !stop; n++, rounds++) {
        const Records = Array.from({ length: KEYS }, (_, k) => ({ PartitionKey: `k${k}`, Data: Buffer.from(`k${k}:${n}`) }));
        let r;
        try {
          r = await send(B.c, 'PutRecords', { StreamName: name, Records });
        } catch (e) {
          failed += KEYS;
          failures.push(`round ${n}: ${e.name}: ${e.message}`);
          continue;
        }
        r.Records.forEach((x, k) => {
          if (x.ErrorCode === 'ProvisionedThroughputExceededException') { throttled++; return; }
          if (x.ErrorCode) { failed++; failures.push(`round ${n} k${k}: ${x.ErrorCode}: ${x.ErrorMessage}`); return; }
          const d = `k${k}:${n}`;
          acked.set(d, { shard: x.ShardId, seq: x.SequenceNumber });
          order[k].push(d);
        });
      }
    })();
    try {
      await sleep(300);
      await send(A.c, 'SplitShard', { StreamName: name, ShardToSplit: shardId(0), NewStartingHashKey: String(1n << 126n) });
      await waitStatus(A.c, name, 'ACTIVE');
      await sleep(300);
      // Shards 2 and 3 are 0's children; 3 and 1 are adjacent.
      await send(A.c, 'MergeShards', { StreamName: name, ShardToMerge: shardId(3), AdjacentShardToMerge: shardId(1) });
      await waitStatus(A.c, name, 'ACTIVE');
      await sleep(300);
      await send(A.c, 'UpdateShardCount', { StreamName: name, TargetShardCount: 3, ScalingType: 'UNIFORM_SCALING' });
      await waitStatus(A.c, name, 'ACTIVE');
      await sleep(300);
    } finally {
      stop = true;
      await producer;
    }
    assert.ok(acked.size > 0, 'records were acknowledged');
    // A record stored in a shard after its fence is sent again to the shard
    // its key goes to now: a reshard costs producers nothing, as on the
    // embedded store.
    assert.deepEqual(failures.slice(0, 5), [], `${failed} records failed`);

    // The same shards, the same records, through both gateways.
    const shardsOf = async (c) => (await send(c, 'ListShards', { StreamName: name })).Shards;
    const shardsA = await shardsOf(A.c);
    const shardsB = await until('B has every shard A has, closed alike', async () => {
      const sb = await shardsOf(B.c);
      return JSON.stringify(sb) === JSON.stringify(shardsA) && sb;
    }, 5000);
    const parents = new Map(shardsA.map((x) => [x.ShardId, [x.ParentShardId, x.AdjacentParentShardId].filter(Boolean)]));
    // An open shard up to its tip; a closed one up to its end (no
    // NextShardIterator), which every gateway must reach.
    const readShard = async (c, x) => {
      const closed = x.SequenceNumberRange.EndingSequenceNumber !== undefined;
      let it = (await send(c, 'GetShardIterator', { StreamName: name, ShardId: x.ShardId, ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
      const out = [];
      const deadline = Date.now() + 10000;
      for (;;) {
        const r = await send(c, 'GetRecords', { ShardIterator: it, Limit: 10000 });
        out.push(...r.Records.map((y) => `${Buffer.from(y.Data).toString()}@${y.SequenceNumber}`));
        if (!r.NextShardIterator) return out;
        if (!closed && r.Records.length === 0 && r.MillisBehindLatest === 0) return out;
        if (Date.now() > deadline) throw new Error(`${x.ShardId}: closed, but its end never came`);
        it = r.NextShardIterator;
        if (r.Records.length === 0) await sleep(20);
      }
    };
    const where = new Map(); // data -> { shard, seq } as read
    for (const x of shardsB) {
      const viaA = await readShard(A.c, x);
      const viaB = await until(`B's copy of ${x.ShardId} as A's`, async () => {
        const v = await readShard(B.c, x);
        return v.length === viaA.length && v;
      }, 5000);
      assert.deepEqual(viaB, viaA, `${x.ShardId}: the same records through both`);
      for (const e of viaA) {
        const [d, seq] = e.split('@');
        assert.ok(!where.has(d), `${d} is in one shard, once`);
        where.set(d, { shard: x.ShardId, seq });
      }
    }
    for (const [d, a] of acked) {
      assert.deepEqual(where.get(d), a, `${d}: readable where its answer said`);
    }
    // A gateway started after the reshards (its copy built from JetStream)
    // serves the same shards and records, closed shards to their end.
    const C = await start();
    assert.equal(JSON.stringify(await shardsOf(C.c)), JSON.stringify(shardsA), 'C: the same shards');
    for (const x of shardsA) {
      const viaC = await readShard(C.c, x);
      assert.equal(viaC.length, viaC.filter((e) => where.get(e.split('@')[0])?.shard === x.ShardId).length,
        `${x.ShardId} through C: only records A and B hold there`);
      assert.equal(viaC.length, [...where.values()].filter((w) => w.shard === x.ShardId).length,
        `${x.ShardId} through C: every record A and B hold there`);
    }
    // Per key: a later record is later in its shard, or in a descendant of it.
    const descends = (child, anc) => {
      const todo = [child];
      while (todo.length) {
        const c = todo.pop();
        if (c === anc) return true;
        todo.push(...(parents.get(c) ?? []));
      }
      return false;
    };
    for (const list of order) {
      for (let i = 1; i < list.length; i++) {
        const p = acked.get(list[i - 1]), q = acked.get(list[i]);
        if (p.shard === q.shard) assert.ok(BigInt(p.seq) < BigInt(q.seq), `${list[i - 1]} before ${list[i]}`);
        else assert.ok(descends(q.shard, p.shard), `${list[i]} is in a descendant of ${list[i - 1]}'s shard`);
      }
    }
    // B's write metrics count each record under the shard that holds it
    // (a record sent again after a fence under the child, not the parent).
    await send(A.c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['IncomingRecords'] });
    const sorted = (o) => JSON.stringify(Object.entries(o).sort());
    const wantCounts = {};
    for (const a of acked.values()) wantCounts[a.shard] = (wantCounts[a.shard] ?? 0) + 1;
    let gotCounts;
    await until('B\'s per-shard IncomingRecords match where the records are', async () => {
      const text = await (await fetch(`${B.s.endpoint}/metrics`)).text();
      gotCounts = {};
      for (const m of text.matchAll(/^sluice_shard_incoming_records_total\{([^}]*)\} (\d+)$/gm)) {
        const shard = /shard="([^"]+)"/.exec(m[1])?.[1];
        if (m[1].includes(`stream="${name}"`) && shard && Number(m[2])) gotCounts[shard] = Number(m[2]);
      }
      return sorted(gotCounts) === sorted(wantCounts);
    }, 5000).catch((e) => assert.fail(`${e.message}: ${sorted(gotCounts)} vs ${sorted(wantCounts)}`));
    console.log(`# reshards under B's writes: ${rounds} rounds, ${acked.size} records acknowledged, ${throttled} throttled, ${shardsA.length} shards`);
  });

  logged('a gateway that dies with changes under way: another gateway finishes them', async () => {
    // A makes every change wait an hour; B waits nothing.
    const slow = await startSluice({ args: ['--nats-prefix', prefix, '--stream-delay', '3600s'] });
    servers.push(slow);
    const A = { s: slow, c: client(slow.endpoint) };
    clients.push(A.c);
    const B = await start();
    const made = streamName('orph');
    const doomed = streamName('orphdel');
    await send(B.c, 'CreateStream', { StreamName: doomed, ShardCount: 1 });
    await waitStatus(B.c, doomed, 'ACTIVE');
    const arn = (await send(B.c, 'DescribeStreamSummary', { StreamName: doomed })).StreamDescriptionSummary.StreamARN;
    const cons = await send(B.c, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'c1' });
    await until('c1 ACTIVE', async () => (await send(B.c, 'DescribeStreamConsumer', {
      ConsumerARN: cons.Consumer.ConsumerARN })).ConsumerDescription.ConsumerStatus === 'ACTIVE');
    // Through A: a creation, a registration and a deletion, each durable and
    // left in its timed state; then A is killed.
    await send(A.c, 'CreateStream', { StreamName: made, ShardCount: 1 });
    const madeArn = (await send(A.c, 'DescribeStreamSummary', { StreamName: made })).StreamDescriptionSummary.StreamARN;
    await send(A.c, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'c2' });
    await send(A.c, 'DeregisterStreamConsumer', { StreamARN: arn, ConsumerName: 'c1' });
    await until('B sees A\'s changes', async () => {
      const d = await send(B.c, 'DescribeStreamSummary', { StreamName: made });
      const l = await send(B.c, 'ListStreamConsumers', { StreamARN: arn });
      const st = Object.fromEntries(l.Consumers.map((x) => [x.ConsumerName, x.ConsumerStatus]));
      return d.StreamDescriptionSummary.StreamStatus === 'CREATING' && st.c1 === 'DELETING' && st.c2 === 'CREATING';
    }, 2000);
    slow.proc.kill('SIGKILL');
    // B finishes them within its grace (10 s beyond its --stream-delay).
    await until('B makes the stream ACTIVE', async () => (await send(B.c, 'DescribeStreamSummary', {
      StreamName: made })).StreamDescriptionSummary.StreamStatus === 'ACTIVE', 20000);
    await until('B finishes both consumers', async () => {
      const l = await send(B.c, 'ListStreamConsumers', { StreamARN: arn });
      return l.Consumers.length === 1 && l.Consumers[0].ConsumerName === 'c2' && l.Consumers[0].ConsumerStatus === 'ACTIVE';
    }, 20000);
    // And a deletion left DELETING by a gateway that died.
    const slow2 = await startSluice({ args: ['--nats-prefix', prefix, '--stream-delay', '3600s'] });
    servers.push(slow2);
    const A2 = client(slow2.endpoint);
    clients.push(A2);
    await send(A2, 'DeleteStream', { StreamName: made });
    await until('B sees it DELETING', async () => (await send(B.c, 'DescribeStreamSummary', {
      StreamName: made })).StreamDescriptionSummary.StreamStatus === 'DELETING', 2000);
    slow2.proc.kill('SIGKILL');
    await until('B deletes it', async () => !(await send(B.c, 'ListStreams', {})).StreamNames.includes(made), 20000);
    assert.ok(madeArn);
  });

  logged('one subscription per consumer and shard across gateways: refused within 5 s, taken over after', async () => {
    const A = await start();
    const B = await start();
    const name = streamName('lease');
    await send(A.c, 'CreateStream', { StreamName: name, ShardCount: 1 });
    await waitStatus(A.c, name, 'ACTIVE');
    const arn = (await send(A.c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamARN;
    const { Consumer } = await send(A.c, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'one' });
    await until('B sees the consumer ACTIVE', async () => {
      const d = await send(B.c, 'DescribeStreamConsumer', { ConsumerARN: Consumer.ConsumerARN });
      return d.ConsumerDescription.ConsumerStatus === 'ACTIVE';
    }, 3000);
    const input = { ConsumerARN: Consumer.ConsumerARN, ShardId: shardId(0), StartingPosition: { Type: 'LATEST' } };
    const t0 = Date.now();
    const onA = await subscribe(A.c, input);
    await sleep(300); // B learns of A's subscription
    await expectError(subscribe(B.c, input), 'ResourceInUseException', /Another active subscription/);
    // After 5 s, B takes it over and A's ends with ResourceInUseException.
    await sleep(Math.max(0, 5200 - (Date.now() - t0)));
    const onB = await subscribe(B.c, input);
    const endA = await onA.until(() => false, 5000);
    assert.equal(endA.error?.name, 'ResourceInUseException', `A's subscription ended with ${endA.error?.name ?? 'no error'}`);
    // B's is the one that pushes.
    await send(A.c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: Buffer.from('to B') });
    const gotB = await onB.until((r) => r.length >= 1, 5000);
    assert.equal(Buffer.from(gotB.records[0].Data).toString(), 'to B');
    onB.close();
  });

  logged('every acknowledged record is pushed once per consumer and readable through both, across a NATS node kill and a gateway restart', async () => {
    const A = await start();
    let B = await start();
    const name = streamName('fault');
    const SHARDS = 2;
    await send(A.c, 'CreateStream', { StreamName: name, ShardCount: SHARDS });
    await waitStatus(A.c, name, 'ACTIVE');
    const arn = (await send(A.c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamARN;
    const reg = await send(A.c, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'fan' });
    const ConsumerARN = reg.Consumer.ConsumerARN;
    await until('B sees the consumer ACTIVE', async () => {
      const d = await send(B.c, 'DescribeStreamConsumer', { ConsumerARN });
      return d.ConsumerDescription.ConsumerStatus === 'ACTIVE';
    }, 3000);

    // One subscriber per shard, on B; each remembers the last number it got.
    const got = new Map(); // seq -> data
    const last = new Array(SHARDS).fill(undefined);
    const subs = new Array(SHARDS);
    const pumps = new Array(SHARDS);
    const subscribeAll = async (c) => {
      for (let i = 0; i < SHARDS; i++) {
        const StartingPosition = last[i]
          ? { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: last[i] }
          : { Type: 'TRIM_HORIZON' };
        // A gateway that died ended nothing: its subscriptions count for 5 s
        // from their start (ResourceInUseException), then are taken over.
        const sub = await until('subscribed', () => subscribe(c, { ConsumerARN, ShardId: shardId(i), StartingPosition })
          .catch((e) => { if (e.name !== 'ResourceInUseException') throw e; return undefined; }), 8000);
        subs[i] = sub;
        pumps[i] = (async () => {
          for (;;) {
            const ev = await sub.next(60000).catch((e) => ({ error: e }));
            if (ev.end || ev.error) return;
            for (const rec of ev.SubscribeToShardEvent?.Records ?? []) {
              got.set(rec.SequenceNumber, Buffer.from(rec.Data).toString());
              last[i] = rec.SequenceNumber;
            }
          }
        })();
      }
    };
    const closeAll = async () => {
      for (const s of subs) s?.close();
      await Promise.all(pumps);
    };
    await subscribeAll(B.c);

    // The producer, through A: 60 batches of 20; what is acknowledged counts.
    const acked = new Map();
    let n = 0;
    const produce = async (batches) => {
      for (let b = 0; b < batches; b++) {
        const Records = [];
        for (let k = 0; k < 20; k++, n++) Records.push({ PartitionKey: `pk${n % 7}`, Data: Buffer.from(`r${n}`) });
        const r = await send(A.c, 'PutRecords', { StreamName: name, Records }).catch(() => undefined);
        if (!r) continue;
        r.Records.forEach((x, k) => { if (x.SequenceNumber) acked.set(x.SequenceNumber, Buffer.from(Records[k].Data).toString()); });
      }
    };
    await produce(15);
    if (NODES >= 3) nats('kill', '2');
    try {
      await produce(15);
      // Gateway B dies: its subscribers move to A, from where they were.
      B.s.proc.kill('SIGKILL');
      await B.s.stop();
      await closeAll();
      await subscribeAll(A.c);
      await produce(15);
      // B comes back (a new process, its copy rebuilt from JetStream); the
      // subscribers move back.
      B = await start();
      await closeAll();
      await subscribeAll(B.c);
    } finally {
      // Back even if the test failed: the next test needs every node.
      if (NODES >= 3) nats('start', '2');
    }
    await produce(15);

    assert.ok(acked.size >= 600, `only ${acked.size} of ${n} records acknowledged`);
    await until('every acknowledged record pushed', async () => [...acked.keys()].every((q) => got.has(q)), 30000)
      .catch((e) => {
        const missing = [...acked.keys()].filter((q) => !got.has(q));
        throw new Error(`${e.message}: ${missing.length} missing, first ${missing.slice(0, 3)}`);
      });
    for (const [q, d] of acked) assert.equal(got.get(q), d, `record ${q}`);
    await closeAll();
    // Readable through both gateways, in order, each once.
    for (const c of [A.c, B.c]) {
      const all = [];
      for (let i = 0; i < SHARDS; i++) {
        const recs = await readAll(c, name, shardId(i));
        const seqs = recs.map((r) => r.SequenceNumber);
        assert.equal(new Set(seqs).size, seqs.length, 'no record twice');
        const sorted = [...seqs].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
        assert.deepEqual(seqs, sorted, 'in sequence order');
        all.push(...recs);
      }
      const bySeq = new Map(all.map((r) => [r.SequenceNumber, Buffer.from(r.Data).toString()]));
      for (const [q, d] of acked) assert.equal(bySeq.get(q), d, `record ${q} readable`);
    }
  });

  logged('neither backend opens the other\'s data directory (the jetstream one empties its copy at start)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-mix-'));
    try {
      // The suite's environment names the jetstream backend (SLUICE_BACKEND).
      const env = { ...process.env, SLUICE_BACKEND: 'embedded' };
      const embedded = await launch(binPath(), ['--listen', '127.0.0.1:0', '--data-dir', dir], env);
      embedded.proc.kill('SIGTERM');
      assert.equal((await embedded.exited).code, 0);
      await assert.rejects(launch(binPath(), ['--listen', '127.0.0.1:0', '--data-dir', dir, ...backendArgs(dir)]),
        /holds an embedded store, which the jetstream backend would empty/);
      assert.ok(existsSync(join(dir, 'MANIFEST')), 'the embedded store is left alone');
      const other = mkdtempSync(join(tmpdir(), 'sluice-mix-'));
      try {
        const js = await launch(binPath(), ['--listen', '127.0.0.1:0', '--data-dir', other, ...backendArgs(other)]);
        js.proc.kill('SIGTERM');
        assert.equal((await js.exited).code, 0);
        await assert.rejects(launch(binPath(), ['--listen', '127.0.0.1:0', '--data-dir', other], env),
          /is a jetstream backend's copy, not an embedded store/);
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Last: it stops the whole cluster.
  logged('with NATS gone, writes fail with 503 ServiceUnavailable at once; once it is back they work again', async () => {
    const A = await start();
    const name = streamName('down');
    await send(A.c, 'CreateStream', { StreamName: name, ShardCount: 1 });
    await waitStatus(A.c, name, 'ACTIVE');
    const first = await send(A.c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: Buffer.from('before') });
    for (let i = 1; i <= NODES; i++) {
      try { nats('kill', String(i)); } catch { /* already down */ }
    }
    const t0 = Date.now();
    await until('a 503', async () => {
      const e = await send(A.c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: Buffer.from('x') })
        .then(() => undefined, (err) => err);
      return e?.name === 'ServiceUnavailable' && e.$metadata?.httpStatusCode === 503 && e;
    }, 5000);
    assert.ok(Date.now() - t0 < 5000);
    // Reads still come from this gateway's copy.
    const it = (await send(A.c, 'GetShardIterator', { StreamName: name, ShardId: shardId(0), ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
    assert.equal((await send(A.c, 'GetRecords', { ShardIterator: it })).Records[0].SequenceNumber, first.SequenceNumber);
    // Back (all nodes at once: one alone has no quorum); the gateway reconnects by itself.
    await Promise.all(Array.from({ length: NODES }, (_, i) => natsAsync('start', String(i + 1))));
    const after = await until('a write after NATS came back', () =>
      send(A.c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: Buffer.from('after') }), 60000);
    const all = await until('both records readable', async () => {
      const r = await readAll(A.c, name, shardId(0));
      return r.some((x) => x.SequenceNumber === after.SequenceNumber) && r;
    }, 10000);
    assert.deepEqual(all.map((r) => Buffer.from(r.Data).toString()).filter((d) => d !== 'x'), ['before', 'after']);
  });
});
