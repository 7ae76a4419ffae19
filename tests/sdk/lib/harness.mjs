// Shared helpers for the SDK suite: start the real sluice binary on
// 127.0.0.1:0 with a fresh data dir, build KinesisClients against it, send raw
// requests (HTTP/2 prior knowledge or HTTP/1.1), and assert Kinesis errors.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http2 from 'node:http2';
import http from 'node:http';
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { launch } from '../../lib/process.mjs';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '..', '..', '..');
export const VECTORS = process.env.SLUICE_VECTORS_DIR || join(REPO, 'tests', 'vectors');

const sdk = await import('@aws-sdk/client-kinesis').catch((e) => {
  throw new Error(`cannot load @aws-sdk/client-kinesis (${e.message}); run \`npm ci --prefix tests/sdk\``);
});
export const K = sdk;

export function binPath() {
  const bin = process.env.SLUICE_BIN;
  if (!bin) throw new Error('SLUICE_BIN is not set (path to the sluice binary)');
  if (!existsSync(bin)) throw new Error(`SLUICE_BIN=${bin} does not exist`);
  return bin;
}

let helpCache;
export function helpText() {
  if (helpCache === undefined) helpCache = execFileSync(binPath(), ['--help'], { encoding: 'utf8' });
  return helpCache;
}

// Returns the first "--flag" in `sluice --help` whose name matches re, or null.
export function findFlag(re) {
  for (const m of helpText().matchAll(/^\s*(--[a-z0-9-]+)/gm)) if (re.test(m[1])) return m[1];
  return null;
}

// The flag that sets how long a new stream stays CREATING (issue 4: "delay
// configurable, default short"), the iterator lifetime, and per-shard write
// throttling, as named in `sluice --help`.
export const FLAGS = {
  get createDelay() { return findFlag(/^--stream-delay$|^--(stream-)?creat(e|ion)(-stream)?-delay$/); },
  get iteratorTtl() { return findFlag(/^--iterator-ttl$/); },
  get throttle() { return findFlag(/^--write-limit$|throttl/); },
};

export function requireFlag(name, what) {
  const f = FLAGS[name];
  if (!f) {
    throw new Error(`sluice --help lists no flag for ${what}; the test needs one ` +
      `(looked for ${name === 'iteratorTtl' ? '--iterator-ttl' : name === 'createDelay' ? '--stream-delay' : '--write-limit on|off'})`);
  }
  return f;
}

// The store backend the suite runs against: SLUICE_BACKEND=jetstream (with
// SLUICE_NATS_URL, tests/sdk/run-jetstream.sh sets both) puts every gateway
// this suite starts on NATS JetStream; otherwise the embedded store.
export const BACKEND = process.env.SLUICE_BACKEND || 'embedded';
export const JETSTREAM = BACKEND === 'jetstream';

// Arguments that put a gateway on the backend. On JetStream, a prefix per
// data dir: a gateway restarted on the same dir finds its streams again, and
// files do not see each other's streams.
export function backendArgs(dataDir) {
  if (!JETSTREAM) return [];
  const url = process.env.SLUICE_NATS_URL;
  if (!url) throw new Error('SLUICE_BACKEND=jetstream needs SLUICE_NATS_URL');
  const prefix = 'sdk' + createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  return ['--backend', 'jetstream', '--nats-url', url,
    '--nats-replicas', process.env.SLUICE_NATS_REPLICAS || '3', '--nats-prefix', prefix];
}

// Starts sluice; resolves to { endpoint, port, proc, dataDir, stop(), restart(), stderr() }.
// dataDir: reuse an existing data dir (e.g. after stop({ keepData: true })).
// tls: { cert, key } file paths: adds --tls-cert/--tls-key and the endpoint is https://.
export async function startSluice({ args = [], env = {}, dataDir: reuseDir, tls } = {}) {
  const dataDir = reuseDir ?? mkdtempSync(join(tmpdir(), 'sluice-sdk-'));
  const reuseArgs = args;
  if (tls) args = [...args, '--tls-cert', tls.cert, '--tls-key', tls.key];
  const bin = binPath();
  const fullArgs = ['--listen', '127.0.0.1:0', '--data-dir', dataDir, ...backendArgs(dataDir), ...args];
  const { proc, port, lines, exited } = await launch(bin, fullArgs, { ...process.env, ...env });
  const endpoint = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  let stopped;
  const self = {
    endpoint, port, proc, dataDir,
    stderr: () => lines.join('\n'),
    // SIGTERM drains; resolves to the exit status. The data dir is removed
    // unless keepData (then a later startSluice({ dataDir }) reuses it).
    stop: async ({ keepData = false } = {}) => {
      if (!stopped) {
        stopped = (async () => {
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
          const st = await exited;
          clearTimeout(t);
          if (!keepData) rmSync(dataDir, { recursive: true, force: true });
          return st;
        })();
      }
      return stopped;
    },
    // Stops with SIGTERM (asserting exit 0) and starts a new process with the
    // same arguments on the same data dir (a new port). Resolves to the new server.
    restart: async (more = {}) => {
      const st = await self.stop({ keepData: true });
      assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal} on SIGTERM:\n${lines.slice(-50).join('\n')}`);
      return startSluice({ args: reuseArgs, env, tls, dataDir, ...more });
    },
  };
  return self;
}

// The usual file-wide server: started before the file's tests with `opts`
// (as startSluice takes them) and a client for it; stopped after them,
// asserting a clean exit. Returns { srv, c } filled in by then (tests may
// replace both, e.g. after srv.restart()).
export function useSluice(opts = {}) {
  const h = { srv: undefined, c: undefined };
  before(async () => { h.srv = await startSluice(opts); h.c = client(h.srv.endpoint); });
  after(async () => {
    h.c?.destroy();
    const st = await h.srv?.stop();
    if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}:\n${h.srv.stderr().slice(-4000)}`);
  });
  return h;
}

export function client(endpoint, extra = {}) {
  return new K.KinesisClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
    // One attempt: the SDK would retry LimitExceeded/throttling/5xx and hide them.
    maxAttempts: 1,
    ...extra,
  });
}

// Sends a command by name: send(c, 'PutRecord', {...}).
export function send(c, op, input = {}) {
  const Cmd = K[`${op}Command`];
  if (!Cmd) throw new Error(`no ${op}Command in @aws-sdk/client-kinesis`);
  return c.send(new Cmd(input));
}

// Asserts that p rejects with the Kinesis error `name` (HTTP 400 unless given),
// message matching `message` (RegExp or exact string). Returns the error.
export async function expectError(p, name, message, status = 400) {
  let res;
  try {
    res = await p;
  } catch (e) {
    const got = `${e.name}: ${e.message} (HTTP ${e.$metadata?.httpStatusCode})`;
    assert.equal(e.name, name, `expected ${name}, got ${got}`);
    if (message instanceof RegExp) assert.match(e.message, message, `message of ${name}`);
    else if (typeof message === 'string') assert.equal(e.message, message, `message of ${name}`);
    assert.equal(e.$metadata?.httpStatusCode, status, `HTTP status of ${got}`);
    return e;
  }
  assert.fail(`expected ${name}, but the call succeeded: ${JSON.stringify(res, (k, v) => (k === '$metadata' ? undefined : v)).slice(0, 500)}`);
}

export function reEscape(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

// The Kinesis/Coral validation message for exactly one violation.
// value: string (quoted in the message), null (unquoted "null"), or a RegExp
// source fragment via {re: '...'}; path: lower-camel member path or a RegExp source via {re}.
export function validationRe(value, path, constraint) {
  const v = value === null ? 'null' : value && value.re ? `'${value.re}'` : `'${reEscape(String(value))}'`;
  const p = path && path.re ? path.re : reEscape(path);
  return new RegExp(`^1 validation error detected: Value ${v} at '${p}' failed to satisfy constraint: Member must ${reEscape(constraint)}$`, 's');
}

export const ACCOUNT = '\\d{12}';
export const notFoundRe = (stream) => new RegExp(`^Stream ${reEscape(stream)} under account ${ACCOUNT} not found\\.$`);

export async function waitStatus(c, name, want = 'ACTIVE', ms = 15000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    const r = await send(c, 'DescribeStreamSummary', { StreamName: name });
    last = r.StreamDescriptionSummary.StreamStatus;
    if (last === want) return r.StreamDescriptionSummary;
    if (Date.now() > deadline) throw new Error(`stream ${name} still ${last} after ${ms} ms (want ${want})`);
    await new Promise((r2) => setTimeout(r2, 20));
  }
}

export async function waitGone(c, name, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await send(c, 'DescribeStreamSummary', { StreamName: name });
    } catch (e) {
      if (e.name === 'ResourceNotFoundException') return;
      throw e;
    }
    if (Date.now() > deadline) throw new Error(`stream ${name} still present after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function createActive(c, name, input = { ShardCount: 1 }) {
  await send(c, 'CreateStream', { StreamName: name, ...input });
  return waitStatus(c, name, 'ACTIVE');
}

// Reads every record of a shard from TRIM_HORIZON until caught up.
export async function readAll(c, stream, shardId, { limit } = {}) {
  const it = await send(c, 'GetShardIterator', { StreamName: stream, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' });
  let iter = it.ShardIterator;
  const out = [];
  for (let i = 0; i < 1000 && iter; i++) {
    const r = await send(c, 'GetRecords', { ShardIterator: iter, ...(limit ? { Limit: limit } : {}) });
    out.push(...r.Records);
    iter = r.NextShardIterator;
    if (r.Records.length === 0 && r.MillisBehindLatest === 0) break;
  }
  return out;
}

export const dec = (u8) => Buffer.from(u8).toString('utf8');

// Raw Kinesis-door request over h2c (prior knowledge), like the SDK's transport.
// Returns { status, headers, body (string), json (parsed or undefined) }.
export function rawH2(endpoint, { target, body, contentType = 'application/x-amz-json-1.1', headers = {}, path = '/', method = 'POST' }) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(endpoint);
    session.on('error', reject);
    const h = { ':method': method, ':path': path, 'content-type': contentType, ...headers };
    if (target) h['x-amz-target'] = target;
    const req = session.request(h);
    const chunks = [];
    let resHeaders;
    req.on('response', (hh) => { resHeaders = hh; });
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      session.close();
      const text = Buffer.concat(chunks).toString('utf8');
      let json;
      try { json = JSON.parse(text); } catch { /* not json */ }
      resolve({ status: resHeaders[':status'], headers: resHeaders, body: text, json });
    });
    req.on('error', (e) => { session.destroy(); reject(e); });
    if (body !== undefined) req.end(body); else req.end();
  });
}

// The same over HTTP/1.1.
export function rawH1(endpoint, { target, body, contentType = 'application/x-amz-json-1.1', headers = {}, path = '/', method = 'POST' }) {
  return new Promise((resolve, reject) => {
    const u = new URL(endpoint);
    const h = { 'content-type': contentType, ...headers };
    if (target) h['x-amz-target'] = target;
    if (body !== undefined) h['content-length'] = Buffer.byteLength(body);
    const req = http.request({ host: u.hostname, port: u.port, path, method, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { /* not json */ }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function hashVectors() {
  return JSON.parse(readFileSync(join(VECTORS, 'hashkeys.json'), 'utf8'));
}

let uniq = 0;
export function streamName(prefix = 's') { return `${prefix}-${process.pid}-${++uniq}`; }

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A throw-away self-signed certificate for 127.0.0.1/localhost, made with the
// openssl CLI. Resolves to { cert, key (paths), pem (certificate text), dir }.
export function makeTlsCert() {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: ['ignore', 'ignore', 'pipe'] });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return { cert, key, pem: readFileSync(cert, 'utf8'), dir };
}

// ---- enhanced fan-out consumers ----

export const consumerArnRe = (streamArn, name) => new RegExp(`^${reEscape(streamArn)}/consumer/${reEscape(name)}:\\d+$`);

// Describes by ARN until ConsumerStatus is `want`.
export async function waitConsumer(c, ConsumerARN, want = 'ACTIVE', ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const d = (await send(c, 'DescribeStreamConsumer', { ConsumerARN })).ConsumerDescription;
    if (d.ConsumerStatus === want) return d;
    if (Date.now() > deadline) throw new Error(`consumer ${ConsumerARN} still ${d.ConsumerStatus} after ${ms} ms (want ${want})`);
    await sleep(20);
  }
}

export async function waitConsumerGone(c, ConsumerARN, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await send(c, 'DescribeStreamConsumer', { ConsumerARN });
    } catch (e) {
      if (e.name === 'ResourceNotFoundException') return;
      throw e;
    }
    if (Date.now() > deadline) throw new Error(`consumer ${ConsumerARN} still present after ${ms} ms`);
    await sleep(20);
  }
}

// Registers a consumer and waits until it is ACTIVE; resolves to its description.
export async function registerActive(c, StreamARN, ConsumerName) {
  const r = await send(c, 'RegisterStreamConsumer', { StreamARN, ConsumerName });
  return waitConsumer(c, r.Consumer.ConsumerARN, 'ACTIVE');
}

// SubscribeToShard through the SDK. Resolves (after the 200 and the
// initial-response) to a subscription whose next(ms) yields the next decoded
// event ({ SubscribeToShardEvent } or { end: true } or { error }), with
// everything received kept in `events`. close() aborts it (RST_STREAM).
export async function subscribe(c, input) {
  const ac = new AbortController();
  const res = await c.send(new K.SubscribeToShardCommand(input), { abortSignal: ac.signal });
  const it = res.EventStream[Symbol.asyncIterator]();
  const sub = {
    res, events: [], ended: false, error: undefined,
    // Resolves to the next event, { end: true } when the stream finished
    // cleanly, { error } when it failed; rejects after ms without either.
    next(ms = 10000) {
      if (!sub.pending) {
        if (sub.ended) return Promise.resolve(sub.error ? { error: sub.error } : { end: true });
        sub.pending = it.next().then(({ value, done }) => {
          if (done) { sub.ended = true; return { end: true }; }
          sub.events.push(value);
          return value;
        }, (error) => { sub.ended = true; sub.error = error; return { error }; });
      }
      const p = sub.pending;
      let timer;
      const timeout = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`no event within ${ms} ms`)), ms); });
      return Promise.race([p, timeout]).then((v) => { if (sub.pending === p) sub.pending = undefined; return v; })
        .finally(() => clearTimeout(timer));
    },
    // Reads events until enough(records so far) is true or the stream ends;
    // resolves to { records, events, end, error } (records: every Record received).
    async until(enough, ms = 10000) {
      const deadline = Date.now() + ms;
      for (;;) {
        if (enough(sub.records())) return sub.summary();
        const left = deadline - Date.now();
        const why = () => `condition not met within ${ms} ms (${sub.records().length} records, ${sub.events.length} events, ended: ${sub.ended})`;
        if (left <= 0) throw new Error(why());
        const ev = await sub.next(left).catch((e) => { throw new Error(`${why()}: ${e.message}`); });
        if (ev.end || ev.error) return sub.summary();
      }
    },
    records: () => sub.events.flatMap((e) => e.SubscribeToShardEvent?.Records ?? []),
    summary: () => ({ records: sub.records(), events: sub.events, end: sub.ended && !sub.error, error: sub.error }),
    close() {
      if (!sub.ended) { ac.abort(); sub.ended = true; }
      it.return?.().catch(() => {});
    },
  };
  return sub;
}
