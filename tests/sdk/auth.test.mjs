// --auth sigv4 end to end: the AWS SDK for JavaScript v3 signing with keys
// from the --credentials file works unchanged (HTTP/2 with :authority signed,
// h2 over TLS and HTTP/1.1, SubscribeToShard included); wrong secrets,
// unknown keys, unsigned requests, stale dates and bodies changed after
// signing are refused with Kinesis' errors and change nothing; SIGHUP
// reloads the file. Keys limited to streams get AccessDeniedException for the
// others (and list only theirs); bearer tokens work on the REST door only.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startSluice, client, send, expectError, streamName, waitStatus, waitConsumer, rawH1, sleep,
  makeTlsCert, subscribe,
} from './lib/harness.mjs';

const GOOD = { accessKeyId: 'AKIAGOODEXAMPLE0001', secretAccessKey: 'good/secret+key/EXAMPLEKEY0000000000001' };
const LATER = { accessKeyId: 'AKIALATEREXAMPLE002', secretAccessKey: 'later/secret+key/EXAMPLEKEY000000000002' };
const dir = mkdtempSync(join(tmpdir(), 'sluice-auth-'));
const creds = join(dir, 'credentials');
let srv; let c;

before(async () => {
  writeFileSync(creds, `# keys for the test\n${GOOD.accessKeyId}:${GOOD.secretAccessKey}\n`);
  srv = await startSluice({ args: ['--auth', 'sigv4', '--credentials', creds] });
  c = client(srv.endpoint, { credentials: GOOD });
});
after(async () => {
  c?.destroy();
  const st = await srv?.stop();
  rmSync(dir, { recursive: true, force: true });
  if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}:\n${srv.stderr().slice(-4000)}`);
});

describe('--auth sigv4', () => {
  test('the SDK with a listed key: control plane, records, and SubscribeToShard', async () => {
    const name = streamName('auth');
    await send(c, 'CreateStream', { StreamName: name, ShardCount: 1 });
    await waitStatus(c, name, 'ACTIVE');
    const put = await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: Buffer.from('signed') });
    assert.match(put.SequenceNumber, /^\d+$/);
    const arn = (await send(c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamARN;
    const reg = await send(c, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'r' });
    await waitConsumer(c, reg.Consumer.ConsumerARN);
    const sub = await send(c, 'SubscribeToShard', {
      ConsumerARN: reg.Consumer.ConsumerARN, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'TRIM_HORIZON' },
    });
    let got = null;
    for await (const e of sub.EventStream) {
      const recs = e.SubscribeToShardEvent?.Records ?? [];
      if (recs.length) { got = Buffer.from(recs[0].Data).toString(); break; }
    }
    assert.equal(got, 'signed');
  });

  test('refusals: wrong secret, unknown key, unsigned, stale date; nothing changes', async () => {
    const name = streamName('authx');
    const wrong = client(srv.endpoint, { credentials: { ...GOOD, secretAccessKey: 'not/the/right/secret' } });
    const unknown = client(srv.endpoint, { credentials: LATER });
    try {
      await expectError(send(wrong, 'CreateStream', { StreamName: name, ShardCount: 1 }), 'InvalidSignatureException',
        /^The request signature we calculated does not match the signature you provided/);
      await expectError(send(unknown, 'CreateStream', { StreamName: name, ShardCount: 1 }), 'UnrecognizedClientException',
        'The security token included in the request is invalid.');
      const raw = await rawH1(srv.endpoint, { target: 'Kinesis_20131202.CreateStream', body: JSON.stringify({ StreamName: name, ShardCount: 1 }) });
      assert.equal(raw.status, 400);
      assert.equal(raw.json.__type, 'MissingAuthenticationTokenException');
      // A signature from 20 minutes ago.
      const stale = client(srv.endpoint, { credentials: GOOD, systemClockOffset: -20 * 60 * 1000 });
      await expectError(send(stale, 'ListStreams', {}), 'InvalidSignatureException', /^Signature expired: /);
      stale.destroy();
      const list = await send(c, 'ListStreams', {});
      assert.ok(!list.StreamNames.includes(name), 'no refused call created the stream');
    } finally {
      wrong.destroy();
      unknown.destroy();
    }
  });

  test('the REST door: curl --aws-sigv4 passes, unsigned and wrongly signed calls do not, /healthz stays open', async () => {
    const curl = (...args) => {
      const out = execFileSync('curl', ['-s', '-w', '\n%{http_code}', ...args], { encoding: 'utf8' });
      const i = out.lastIndexOf('\n');
      return { status: Number(out.slice(i + 1)), json: JSON.parse(out.slice(0, i) || 'null') };
    };
    const base = `http://${srv.endpoint.replace(/^https?:\/\//, '')}`;
    const sign = (key) => ['--aws-sigv4', 'aws:amz:us-east-1:kinesis', '--user', `${key.accessKeyId}:${key.secretAccessKey}`];
    const name = streamName('rest');
    let r = curl(...sign(GOOD), '-H', 'content-type: application/json', '-d', JSON.stringify({ StreamName: name, ShardCount: 1 }), `${base}/v1/streams`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    r = curl(...sign(GOOD), `${base}/v1/streams?limit=50`);
    assert.equal(r.status, 200);
    assert.ok(r.json.StreamNames.includes(name));
    r = curl(`${base}/v1/streams`);
    assert.equal(r.json.__type, 'MissingAuthenticationTokenException');
    r = curl(...sign({ ...GOOD, secretAccessKey: 'wrong' }), '-X', 'DELETE', `${base}/v1/streams/${name}`);
    assert.equal(r.json.__type, 'InvalidSignatureException');
    r = curl(`${base}/healthz`);
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'ok');
    await waitStatus(c, name, 'ACTIVE'); // the refused DELETE changed nothing
  });

  test('presigned URLs: the signature in the query, until X-Amz-Expires', async () => {
    // @smithy/signature-v4 is the signer inside the SDK; a Sha256 on node:crypto.
    class Sha256 {
      constructor(secret) { this.h = secret ? createHmac('sha256', secret) : createHash('sha256'); }
      update(d) { this.h.update(d); }
      async digest() { return new Uint8Array(this.h.digest()); }
    }
    const signer = (key) => new SignatureV4({ credentials: key, region: 'us-east-1', service: 'kinesis', sha256: Sha256 });
    const u = new URL(srv.endpoint);
    const get = async (path, key, opts) => {
      const req = { method: 'GET', protocol: 'http:', hostname: u.hostname, port: Number(u.port), path, query: {},
        headers: { host: `${u.hostname}:${u.port}` } };
      const p = await signer(key).presign(req, opts);
      const qs = new URLSearchParams(p.query).toString();
      return new Promise((resolve, reject) => {
        http.get({ host: u.hostname, port: u.port, path: `${path}?${qs}`, agent: false }, (res) => {
          let b = '';
          res.on('data', (d) => { b += d; });
          res.on('end', () => resolve({ status: res.statusCode, json: b ? JSON.parse(b) : null }));
        }).on('error', reject);
      });
    };
    let r = await get('/v1/streams', GOOD, { expiresIn: 300 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.ok(Array.isArray(r.json.StreamNames));
    r = await get('/v1/streams', { ...GOOD, secretAccessKey: 'wrong' }, { expiresIn: 300 });
    assert.equal(r.json.__type, 'InvalidSignatureException');
    // Signed an hour ago for 60 s: expired.
    r = await get('/v1/streams', GOOD, { expiresIn: 60, signingDate: new Date(Date.now() - 3600 * 1000) });
    assert.equal(r.json.__type, 'InvalidSignatureException');
    assert.match(r.json.message, /^Signature expired: the presigned request was valid until /);
  });

  test('SIGHUP reloads the credentials file', async () => {
    const later = client(srv.endpoint, { credentials: LATER });
    try {
      await expectError(send(later, 'ListStreams', {}), 'UnrecognizedClientException');
      writeFileSync(creds, `${GOOD.accessKeyId}:${GOOD.secretAccessKey}\n${LATER.accessKeyId}:${LATER.secretAccessKey}\n`);
      srv.proc.kill('SIGHUP');
      let ok = false;
      for (let i = 0; i < 100 && !ok; i++) {
        try { await send(later, 'ListStreams', {}); ok = true; } catch { await sleep(50); }
      }
      assert.ok(ok, 'the new key works after SIGHUP');
      // A broken file keeps the keys in force.
      writeFileSync(creds, 'garbage without a colon\n');
      srv.proc.kill('SIGHUP');
      await sleep(300);
      await send(later, 'ListStreams', {});
      await send(c, 'ListStreams', {});
    } finally {
      later.destroy();
    }
  });
});

// Keys and tokens kept to some streams, and bearer tokens on the REST door.
describe('--credentials restrictions and bearer tokens', () => {
  const LIMITED = { accessKeyId: 'AKIALIMITEDEXAMPLE3', secretAccessKey: 'limited/secret+key/EXAMPLEKEY00000003' };
  const TOKEN = 'tok-all.0123456789abcdef';
  const TOKEN_LIMITED = 'tok-limited~0123456789';
  let s2; let admin; let limited; let dir2;
  const mine = streamName('mine'), theirs = streamName('theirs');
  before(async () => {
    dir2 = mkdtempSync(join(tmpdir(), 'sluice-auth2-'));
    const f = join(dir2, 'credentials');
    writeFileSync(f, [
      `${GOOD.accessKeyId}:${GOOD.secretAccessKey}`,
      `${LIMITED.accessKeyId}:${LIMITED.secretAccessKey}:${mine}, other-stream`,
      `token:${TOKEN}`,
      `token:${TOKEN_LIMITED}:${mine}`,
    ].join('\n') + '\n');
    s2 = await startSluice({ args: ['--auth', 'sigv4', '--credentials', f] });
    admin = client(s2.endpoint, { credentials: GOOD });
    limited = client(s2.endpoint, { credentials: LIMITED });
    for (const n of [mine, theirs]) await send(admin, 'CreateStream', { StreamName: n, ShardCount: 1 });
    await waitStatus(admin, mine);
    await waitStatus(admin, theirs);
  });
  after(async () => {
    admin?.destroy();
    limited?.destroy();
    const st = await s2?.stop();
    rmSync(dir2, { recursive: true, force: true });
    if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}`);
  });

  test('a key limited to streams uses those and learns nothing of the others', async () => {
    await send(limited, 'PutRecord', { StreamName: mine, PartitionKey: 'k', Data: Buffer.from('ok') });
    const denied = new RegExp(`^User: arn:aws:iam::\\d{12}:user/${LIMITED.accessKeyId} is not authorized to perform: kinesis:PutRecord on resource: arn:aws:kinesis:[^:]+:\\d{12}:stream/${theirs}`);
    await expectError(send(limited, 'PutRecord', { StreamName: theirs, PartitionKey: 'k', Data: Buffer.from('no') }),
      'AccessDeniedException', denied);
    await expectError(send(limited, 'DescribeStreamSummary', { StreamName: 'never-created' }), 'AccessDeniedException');
    await expectError(send(limited, 'CreateStream', { StreamName: 'not-mine', ShardCount: 1 }), 'AccessDeniedException');
    const arn = (await send(admin, 'DescribeStreamSummary', { StreamName: theirs })).StreamDescriptionSummary.StreamARN;
    await expectError(send(limited, 'ListShards', { StreamARN: arn }), 'AccessDeniedException');
    await expectError(send(limited, 'AddTagsToStream', { StreamName: theirs, Tags: { a: 'b' } }), 'AccessDeniedException');
    const reg = await send(admin, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'theirs-c' });
    await waitConsumer(admin, reg.Consumer.ConsumerARN);
    await expectError(send(limited, 'DescribeStreamConsumer', { ConsumerARN: reg.Consumer.ConsumerARN }), 'AccessDeniedException');
    await expectError(send(limited, 'SubscribeToShard', {
      ConsumerARN: reg.Consumer.ConsumerARN, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' },
    }), 'AccessDeniedException');
    await expectError(send(limited, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'ENABLED' } }),
      'AccessDeniedException');
    const listed = await send(limited, 'ListStreams', {});
    assert.deepEqual(listed.StreamNames, [mine], 'lists its streams only');
    // Nothing changed: the refused tag and record are not there.
    const tags = await send(admin, 'ListTagsForStream', { StreamName: theirs });
    assert.deepEqual(tags.Tags, []);
    const all = await send(admin, 'ListStreams', {});
    assert.ok(all.StreamNames.includes(theirs) && !all.StreamNames.includes('not-mine'));
  });

  const rest = (path, { method = 'GET', token, body } = {}) => new Promise((resolve, reject) => {
    const u = new URL(path, s2.endpoint);
    const headers = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) };
    const r = http.request(u, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, json: text ? JSON.parse(text) : null }));
    });
    r.on('error', reject);
    if (body) r.write(JSON.stringify(body));
    r.end();
  });

  test('bearer tokens on the REST door: valid, wrong, limited; not on the Kinesis door', async () => {
    let r = await rest('/v1/streams', { token: TOKEN });
    assert.equal(r.status, 200);
    assert.ok(r.json.StreamNames.includes(theirs));
    r = await rest('/v1/streams', { token: 'tok-wrong' });
    assert.equal(r.status, 400);
    assert.equal(r.json.__type, 'UnrecognizedClientException');
    r = await rest('/v1/streams');
    assert.equal(r.json.__type, 'MissingAuthenticationTokenException');
    r = await rest(`/v1/streams/${mine}/records`, { method: 'POST', token: TOKEN_LIMITED, body: { Records: [{ PartitionKey: 'b', Data: Buffer.from('bearer').toString('base64') }] } });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.FailedRecordCount, 0);
    r = await rest(`/v1/streams/${theirs}`, { token: TOKEN_LIMITED });
    assert.equal(r.json.__type, 'AccessDeniedException');
    r = await rest(`/v1/streams/${theirs}`, { method: 'DELETE', token: TOKEN_LIMITED });
    assert.equal(r.json.__type, 'AccessDeniedException');
    const k = await rawH1(s2.endpoint, { target: 'Kinesis_20131202.ListStreams', body: '{}', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(k.status, 400);
    assert.match(k.body, /IncompleteSignatureException/);
    await waitStatus(admin, theirs); // still there
  });
});

// Every protocol signs the same way: h2 over TLS (SubscribeToShard included),
// HTTP/1.1 unary through the SDK's NodeHttpHandler; a body changed after
// signing is refused; bearer tokens carry the REST door's SSE routes.
describe('--auth sigv4 over TLS and HTTP/1.1', () => {
  const TOKEN = 'tok-sse.0123456789';
  let s3; let dir3; let tls;
  before(async () => {
    dir3 = mkdtempSync(join(tmpdir(), 'sluice-auth3-'));
    const f = join(dir3, 'credentials');
    writeFileSync(f, `${GOOD.accessKeyId}:${GOOD.secretAccessKey}\ntoken:${TOKEN}\n`);
    tls = makeTlsCert();
    s3 = await startSluice({ tls, args: ['--auth', 'sigv4', '--credentials', f, '--stream-delay', '0'] });
  });
  after(async () => {
    const st = await s3?.stop();
    rmSync(dir3, { recursive: true, force: true });
    if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}:\n${s3.stderr().slice(-4000)}`);
  });

  test('h2 over TLS with SubscribeToShard, HTTP/1.1 unary, a tampered body refused', async () => {
    const h2 = client(s3.endpoint, { credentials: GOOD, requestHandler: { disableConcurrentStreams: true, nodeHttp2ConnectOptions: { ca: tls.pem } } });
    const h1 = client(s3.endpoint, { credentials: GOOD, requestHandler: new NodeHttpHandler({ httpsAgent: new (await import('node:https')).Agent({ ca: tls.pem }) }) });
    try {
      const name = streamName('tlsauth');
      await send(h1, 'CreateStream', { StreamName: name, ShardCount: 1 });
      await waitStatus(h1, name, 'ACTIVE');
      const arn = (await send(h2, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamARN;
      const reg = await send(h2, 'RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'tls-c' });
      await waitConsumer(h2, reg.Consumer.ConsumerARN);
      const sub = await subscribe(h2, { ConsumerARN: reg.Consumer.ConsumerARN, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'TRIM_HORIZON' } });
      await send(h1, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: Buffer.from('over http/1.1') });
      const { records } = await sub.until((r) => r.length >= 1);
      assert.equal(Buffer.from(records[0].Data).toString(), 'over http/1.1');
      sub.close();

      // A body changed after signing: the payload hash no longer matches.
      const tamper = client(s3.endpoint, { credentials: GOOD, requestHandler: new NodeHttpHandler({ httpsAgent: new (await import('node:https')).Agent({ ca: tls.pem }) }) });
      tamper.middlewareStack.add((next) => async (args) => {
        const body = typeof args.request.body === 'string' ? args.request.body : Buffer.from(args.request.body).toString();
        assert.ok(body.includes(`${name}-a`));
        args.request.body = body.replace(`${name}-a`, `${name}-b`);
        return next(args);
      }, { step: 'deserialize', priority: 'low', name: 'tamperAfterSigning' });
      try {
        await expectError(send(tamper, 'CreateStream', { StreamName: `${name}-a`, ShardCount: 1 }), 'InvalidSignatureException', /.+/);
      } finally {
        tamper.destroy();
      }
      const names = (await send(h1, 'ListStreams', {})).StreamNames;
      assert.ok(!names.includes(`${name}-a`) && !names.includes(`${name}-b`), 'the tampered call created nothing');

      // Bearer tokens on the SSE routes (consumer subscription and tail).
      await send(h1, 'PutRecord', { StreamName: name, PartitionKey: 'k2', Data: Buffer.from('second') });
      const sse = async (path, token) => {
        const { request } = await import('node:https');
        return new Promise((resolve, reject) => {
          const r = request(`${s3.endpoint}${path}`, { ca: tls.pem, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
            let text = '';
            res.on('data', (d) => {
              text += d;
              if ((text.match(/event: record/g) || []).length >= 2 || res.statusCode !== 200) { res.destroy(); resolve({ status: res.statusCode, text }); }
            });
            res.on('end', () => resolve({ status: res.statusCode, text }));
          });
          r.on('error', reject);
          r.end();
        });
      };
      for (const path of [`/v1/streams/${name}/consumers/tls-c/shards/shardId-000000000000/subscribe?from=TRIM_HORIZON`,
        `/v1/streams/${name}/shards/shardId-000000000000/tail?from=TRIM_HORIZON`]) {
        const ok = await sse(path, TOKEN);
        assert.equal(ok.status, 200, ok.text);
        assert.match(ok.text, /"PartitionKey":"k2"/);
        const no = await sse(path, null);
        assert.equal(no.status, 400);
        assert.match(no.text, /MissingAuthenticationTokenException/);
      }
    } finally {
      h1.destroy();
      h2.destroy();
    }
  });
});
