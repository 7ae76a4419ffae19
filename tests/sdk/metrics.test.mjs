// GET /metrics (Prometheus text format), GET /v1/stats (the console's JSON)
// and the console's tail route, against the real binary driven by
// @aws-sdk/client-kinesis: every scrape passes Debian's `promtool check
// metrics`, counters move with the traffic that drives them, shard series
// follow EnableEnhancedMonitoring, and credentials guard all of it.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  useSluice, startSluice, client, send, createActive, streamName, registerActive, subscribe,
  expectError, sleep, JETSTREAM,
} from './lib/harness.mjs';

const h = useSluice({ args: ['--stream-delay', '0'] });

// Parses the text format into [{ name, labels, value }] (escapes undone).
function parse(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparsable sample line: ${line}`);
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function promtool(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.error, undefined, `promtool could not run (install Debian's prometheus package): ${r.error}`);
  assert.equal(r.status, 0, `promtool check metrics failed:\n${r.stdout}${r.stderr}`);
}

async function scrape(srv = h.srv, headers = {}) {
  const r = await fetch(`${srv.endpoint}/metrics`, { headers });
  assert.equal(r.status, 200, await r.clone().text());
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  promtool(text);
  return { text, samples: parse(text) };
}

const pick = (samples, name, labels = {}) => samples.filter((s) => s.name === name
  && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const one = (samples, name, labels = {}) => {
  const got = pick(samples, name, labels);
  assert.equal(got.length, 1, `${name} ${JSON.stringify(labels)}: ${got.length} samples`);
  return got[0].value;
};

const records = (n, tag) => Array.from({ length: n }, (_, i) => ({
  PartitionKey: `${tag}-${i}`, Data: Buffer.from(`${tag} record ${i}`),
}));

describe('/metrics', () => {
  test('stream, consumer, request, transport, store and process families move with traffic', async () => {
    const name = streamName('met');
    await createActive(h.c, name, { ShardCount: 2 });
    const { StreamDescriptionSummary: sum } = await send(h.c, 'DescribeStreamSummary', { StreamName: name });
    const consumer = await registerActive(h.c, sum.StreamARN, 'met-c');

    const before = (await scrape()).samples;
    const put = await send(h.c, 'PutRecords', { StreamName: name, Records: records(40, 'a') });
    assert.equal(put.FailedRecordCount, 0);
    const bytes = records(40, 'a').reduce((n, r) => n + r.PartitionKey.length + r.Data.length, 0);

    // Read shard 0 with GetRecords, push shard 1 to the consumer.
    const it = await send(h.c, 'GetShardIterator', { StreamName: name, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' });
    const got = await send(h.c, 'GetRecords', { ShardIterator: it.ShardIterator });
    const n1 = put.Records.filter((r) => r.ShardId === 'shardId-000000000001').length;
    const sub = await subscribe(h.c, { ConsumerARN: consumer.ConsumerARN, ShardId: 'shardId-000000000001', StartingPosition: { Type: 'TRIM_HORIZON' } });
    await sub.until((recs) => recs.length >= n1);
    await expectError(send(h.c, 'DescribeStreamSummary', { StreamName: `${name}-missing` }), 'ResourceNotFoundException');

    const s = (await scrape()).samples;
    const L = { stream: name };
    assert.equal(one(s, 'sluice_stream_incoming_records_total', L), 40);
    assert.equal(one(s, 'sluice_stream_incoming_bytes_total', L), bytes);
    assert.equal(one(s, 'sluice_stream_outgoing_records_total', { ...L, api: 'GetRecords' }), got.Records.length);
    assert.equal(one(s, 'sluice_stream_outgoing_records_total', { ...L, api: 'SubscribeToShard' }), n1);
    assert.equal(one(s, 'sluice_stream_open_shards', L), 2);
    assert.equal(one(s, 'sluice_stream_info', { ...L, status: 'ACTIVE', mode: 'PROVISIONED' }), 1);
    assert.ok(one(s, 'sluice_stream_stored_bytes', L) > bytes, 'segments hold at least the records');
    assert.equal(one(s, 'sluice_stream_retention_seconds', L), 24 * 3600);
    assert.ok(one(s, 'sluice_stream_iterator_age_seconds', L) >= 0);
    const C = { stream: name, consumer: 'met-c' };
    assert.equal(one(s, 'sluice_consumer_subscriptions', C), 1);
    assert.equal(one(s, 'sluice_consumer_pushed_records_total', C), n1);
    assert.equal(one(s, 'sluice_consumer_subscriptions_started_total', C), 1);
    assert.ok(one(s, 'sluice_consumer_behind_latest_seconds', C) >= 0);

    // Requests: by operation and outcome, and the latency histogram agrees.
    const ok = (op) => one(s, 'sluice_requests_total', { operation: op, outcome: 'ok' });
    assert.equal(ok('PutRecords') - one(before, 'sluice_requests_total', { operation: 'PutRecords', outcome: 'ok' }), 1);
    assert.ok(ok('GetRecords') >= 1 && ok('SubscribeToShard') >= 1);
    assert.ok(one(s, 'sluice_requests_total', { operation: 'DescribeStreamSummary', outcome: 'ResourceNotFoundException' }) >= 1);
    const total = pick(s, 'sluice_requests_total', { operation: 'DescribeStreamSummary' }).reduce((n, x) => n + x.value, 0);
    assert.equal(one(s, 'sluice_request_duration_seconds_count', { operation: 'DescribeStreamSummary' }), total);
    assert.equal(one(s, 'sluice_request_duration_seconds_bucket', { operation: 'DescribeStreamSummary', le: '+Inf' }), total);

    // Transport: the SDK's subscription is an HTTP/2 stream on an h2c connection.
    assert.ok(one(s, 'sluice_connections', { protocol: 'h2c', tls: 'false' }) >= 1);
    assert.ok(one(s, 'sluice_http2_streams') >= 1);
    assert.ok(one(s, 'sluice_received_bytes_total') > bytes);
    assert.ok(one(s, 'sluice_sent_bytes_total') > 0);
    assert.equal(one(s, 'sluice_subscriptions', { format: 'event-stream' }), 1);

    // Store and process.
    // On JetStream, durability is JetStream's: the local copy is never fsynced.
    if (JETSTREAM) assert.equal(one(s, 'sluice_store_fsync_duration_seconds_count'), 0);
    else assert.ok(one(s, 'sluice_store_fsync_duration_seconds_count') > 0, 'default durability fsyncs');
    assert.ok(one(s, 'sluice_store_group_commit_records_sum') >= 40);
    assert.ok(one(s, 'sluice_store_appended_records_total') >= 40);
    assert.ok(one(s, 'sluice_store_recovery_seconds') >= 0);
    assert.ok(one(s, 'sluice_process_resident_memory_bytes') > 1e6);
    assert.ok(one(s, 'sluice_process_open_fds') > 3);
    assert.ok(one(s, 'sluice_process_max_fds') >= one(s, 'sluice_process_open_fds'));
    assert.equal(pick(s, 'sluice_build_info').length, 1);
    sub.close();
  });

  test('counters never go down between scrapes; every family is lint-clean under load', async () => {
    const name = streamName('mono');
    await createActive(h.c, name, { ShardCount: 4 });
    const first = (await scrape()).samples;
    // A bounded load: 20 rounds of PutRecords, scraping while they run.
    const load = (async () => {
      for (let i = 0; i < 20; i++) await send(h.c, 'PutRecords', { StreamName: name, Records: records(100, `m${i}`) });
    })();
    const during = [];
    while (during.length < 5) during.push((await scrape()).samples);
    await load;
    const last = (await scrape()).samples;
    const key = (x) => `${x.name}${JSON.stringify(x.labels)}`;
    for (const later of [...during, last]) {
      const m = new Map(later.map((x) => [key(x), x.value]));
      for (const x of first) {
        if (!/_total$|_bucket$|_count$|_sum$/.test(x.name)) continue;
        if (!m.has(key(x))) continue;
        assert.ok(m.get(key(x)) >= x.value, `${key(x)} went from ${x.value} to ${m.get(key(x))}`);
      }
    }
    assert.equal(one(last, 'sluice_stream_incoming_records_total', { stream: name }), 2000);
  });

  test('shard series only for streams with enhanced monitoring, per metric; gone with the stream', async () => {
    const name = streamName('shm');
    const quiet = streamName('shq');
    await createActive(h.c, name, { ShardCount: 3 });
    await createActive(h.c, quiet, { ShardCount: 2 });
    await send(h.c, 'PutRecords', { StreamName: name, Records: records(30, 's') });
    let s = (await scrape()).samples;
    assert.equal(pick(s, 'sluice_shard_incoming_bytes_total', { stream: name }).length, 0, 'not monitored yet');

    await send(h.c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['IncomingRecords', 'IteratorAgeMilliseconds'] });
    s = (await scrape()).samples;
    const perShard = pick(s, 'sluice_shard_incoming_records_total', { stream: name });
    assert.deepEqual(perShard.map((x) => x.labels.shard).sort(), ['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000002']);
    assert.equal(perShard.reduce((n, x) => n + x.value, 0), 30, 'shards sum to the stream (counted before monitoring too)');
    assert.equal(pick(s, 'sluice_shard_iterator_age_seconds', { stream: name }).length, 3);
    assert.equal(pick(s, 'sluice_shard_incoming_bytes_total', { stream: name }).length, 0, 'IncomingBytes was not enabled');
    assert.equal(pick(s, 'sluice_shard_incoming_records_total', { stream: quiet }).length, 0);

    await send(h.c, 'DeleteStream', { StreamName: name });
    for (let i = 0; i < 50 && pick(s, 'sluice_stream_info', { stream: name }).length; i++) {
      await sleep(100);
      s = (await scrape()).samples;
    }
    assert.equal(pick(s, 'sluice_stream_info', { stream: name }).length, 0);
    assert.equal(pick(s, 'sluice_shard_incoming_records_total', { stream: name }).length, 0);
  });

  test('--metrics-all-shards shows every shard of every stream; names with quotes stay parseable', async () => {
    const srv = await startSluice({ args: ['--stream-delay', '0', '--metrics-all-shards', 'on'] });
    const c = client(srv.endpoint);
    try {
      const name = streamName('all');
      await createActive(c, name, { ShardCount: 5 });
      await send(c, 'PutRecords', { StreamName: name, Records: records(10, 'x') });
      const { samples } = await scrape(srv);
      for (const fam of ['sluice_shard_incoming_records_total', 'sluice_shard_incoming_bytes_total', 'sluice_shard_write_throttled_records_total', 'sluice_shard_iterator_age_seconds']) {
        assert.equal(pick(samples, fam, { stream: name }).length, 5, fam);
      }
      assert.equal(pick(samples, 'sluice_shard_outgoing_records_total', { stream: name }).length, 10, 'two apis per shard');
    } finally {
      c.destroy();
      assert.equal((await srv.stop()).code, 0);
    }
  });

  test('throttled writes and reads are counted (--write-limit)', async () => {
    const srv = await startSluice({ args: ['--stream-delay', '0', '--write-limit', 'on'] });
    const c = client(srv.endpoint);
    try {
      const name = streamName('thr');
      await createActive(c, name, { ShardCount: 1 });
      // 1,000 records/s per shard: 1,500 at once, some refused. Sent together:
      // one after the other, a slow backend (R3 JetStream) refills the bucket.
      let refused = 0;
      const rs = await Promise.all([0, 1, 2].map((i) =>
        send(c, 'PutRecords', { StreamName: name, Records: records(500, `t${i}`) })));
      for (const r of rs) refused += r.FailedRecordCount;
      assert.ok(refused > 0, 'the write limit refused some records');
      // 5 GetRecords calls/s per shard: the 6th in a burst is refused.
      const it = await send(c, 'GetShardIterator', { StreamName: name, ShardId: 'shardId-000000000000', ShardIteratorType: 'LATEST' });
      let readRefused = 0;
      for (let i = 0; i < 8; i++) {
        try {
          await send(c, 'GetRecords', { ShardIterator: it.ShardIterator });
        } catch (e) {
          assert.equal(e.name, 'ProvisionedThroughputExceededException');
          assert.match(e.message, /^Rate exceeded for Shard - shardId-000000000000 in stream /);
          readRefused++;
        }
      }
      assert.ok(readRefused >= 2, `${readRefused} reads refused`);
      const { samples } = await scrape(srv);
      assert.equal(one(samples, 'sluice_stream_write_throttled_records_total', { stream: name }), refused);
      assert.equal(one(samples, 'sluice_stream_read_throttled_requests_total', { stream: name }), readRefused);
      assert.equal(one(samples, 'sluice_requests_total', { operation: 'GetRecords', outcome: 'ProvisionedThroughputExceededException' }), readRefused);
    } finally {
      c.destroy();
      assert.equal((await srv.stop()).code, 0);
    }
  });

  test('a scrape of 2,000 monitored shards arrives whole while other requests are served', async () => {
    const name = streamName('big');
    await createActive(h.c, name, { ShardCount: 2000 });
    await send(h.c, 'EnableEnhancedMonitoring', { StreamName: name, ShardLevelMetrics: ['ALL'] });
    const health = [];
    const [{ text, samples }] = await Promise.all([
      scrape(),
      (async () => { for (let i = 0; i < 5; i++) health.push((await fetch(`${h.srv.endpoint}/healthz`)).status); })(),
    ]);
    assert.deepEqual(health, [200, 200, 200, 200, 200]);
    assert.ok(text.length > 1e6, `${text.length} bytes`);
    assert.equal(pick(samples, 'sluice_shard_outgoing_bytes_total', { stream: name }).length, 4000);
    assert.equal(pick(samples, 'sluice_shard_iterator_age_seconds', { stream: name }).length, 2000);
    await send(h.c, 'DeleteStream', { StreamName: name });
  });
});

describe('/v1/stats and the tail route', () => {
  test('stats: streams with counters, consumers with live subscriptions', async () => {
    const name = streamName('st');
    await createActive(h.c, name, { ShardCount: 1 });
    const { StreamDescriptionSummary: sum } = await send(h.c, 'DescribeStreamSummary', { StreamName: name });
    const consumer = await registerActive(h.c, sum.StreamARN, 'st-c');
    await send(h.c, 'PutRecords', { StreamName: name, Records: records(7, 'st') });
    const sub = await subscribe(h.c, { ConsumerARN: consumer.ConsumerARN, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'TRIM_HORIZON' } });
    await sub.until((r) => r.length >= 7);
    const r = await fetch(`${h.srv.endpoint}/v1/stats`);
    assert.equal(r.status, 200);
    const st = await r.json();
    assert.ok(st.now >= st.started);
    const s = st.streams.find((x) => x.name === name);
    assert.equal(s.incoming_records, 7);
    assert.equal(s.pushed_records, 7);
    assert.equal(s.status, 'ACTIVE');
    assert.equal(s.open_shards, 1);
    assert.equal(s.monitored, false);
    assert.equal(s.shard_stats, undefined);
    const c = st.consumers.find((x) => x.arn === consumer.ConsumerARN);
    assert.equal(c.name, 'st-c');
    assert.equal(c.pushed_records, 7);
    assert.equal(c.subscriptions.length, 1);
    assert.equal(c.subscriptions[0].shard, 'shardId-000000000000');
    assert.equal(c.subscriptions[0].format, 'event-stream');
    assert.equal(c.subscriptions[0].rate_limit_bytes_per_s, 2 * 1024 * 1024);
    sub.close();
  });

  test('tail: SSE of a shard without a consumer, any number at once, not counted for consumers', async () => {
    const name = streamName('tail');
    await createActive(h.c, name, { ShardCount: 1 });
    const read = async (signal) => {
      const r = await fetch(`${h.srv.endpoint}/v1/streams/${name}/shards/shardId-000000000000/tail?from=TRIM_HORIZON`, { signal });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'text/event-stream');
      const dec = new TextDecoder();
      let text = '';
      for await (const chunk of r.body) {
        text += dec.decode(chunk, { stream: true });
        if ((text.match(/event: record/g) || []).length >= 3) return text;
      }
      return text;
    };
    const ac = new AbortController();
    const both = Promise.all([read(ac.signal), read(ac.signal)]);
    await sleep(200);
    await send(h.c, 'PutRecords', { StreamName: name, Records: records(3, 'tl') });
    const texts = await both;
    ac.abort();
    for (const t of texts) {
      const data = [...t.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1])).filter((d) => d.PartitionKey);
      assert.deepEqual(data.map((d) => d.PartitionKey), ['tl-0', 'tl-1', 'tl-2']);
      assert.equal(Buffer.from(data[0].Data, 'base64').toString(), 'tl record 0');
    }
    const bad = await fetch(`${h.srv.endpoint}/v1/streams/${name}/shards/shardId-000000000009/tail`);
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).__type, 'ResourceNotFoundException');
  });
});

describe('credentials', () => {
  test('with --auth sigv4: /metrics and /v1/stats need a token; a token limited to streams sees only those', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-met-'));
    const creds = join(dir, 'credentials');
    const mine = streamName('mine');
    writeFileSync(creds, `AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\ntoken:tok-all\ntoken:tok-one:${mine}\n`);
    const srv = await startSluice({ args: ['--stream-delay', '0', '--auth', 'sigv4', '--credentials', creds] });
    const c = client(srv.endpoint);
    try {
      await createActive(c, mine, { ShardCount: 1 });
      const other = streamName('other');
      await createActive(c, other, { ShardCount: 1 });
      let r = await fetch(`${srv.endpoint}/metrics`);
      assert.equal(r.status, 400);
      assert.equal((await r.json()).__type, 'MissingAuthenticationTokenException');
      r = await fetch(`${srv.endpoint}/metrics`, { headers: { authorization: 'Bearer tok-wrong' } });
      assert.equal(r.status, 400);
      assert.equal((await r.json()).__type, 'UnrecognizedClientException');
      const { samples } = await scrape(srv, { authorization: 'Bearer tok-all' });
      assert.equal(pick(samples, 'sluice_stream_info', { stream: other }).length, 1);
      r = await fetch(`${srv.endpoint}/metrics`, { headers: { authorization: 'Bearer tok-one' } });
      assert.equal(r.status, 400);
      assert.equal((await r.json()).__type, 'AccessDeniedException');
      r = await fetch(`${srv.endpoint}/v1/stats`, { headers: { authorization: 'Bearer tok-one' } });
      assert.equal(r.status, 200);
      assert.deepEqual((await r.json()).streams.map((s) => s.name), [mine]);
      r = await fetch(`${srv.endpoint}/v1/streams/${other}/shards/shardId-000000000000/tail`, { headers: { authorization: 'Bearer tok-one' } });
      assert.equal((await r.json()).__type, 'AccessDeniedException');
    } finally {
      c.destroy();
      assert.equal((await srv.stop()).code, 0);
    }
  });
});
