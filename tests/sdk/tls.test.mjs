// TLS settings against the real binary: modern defaults (TLS 1.2+, AEAD
// suites only), --tls-min-version, --tls-only, and the certificate reloaded
// on SIGHUP while a SubscribeToShard over TLS keeps receiving records. Then
// the gateway's own record layer: bodies and replies of megabytes,
// pipelined HTTP/1.1, a reader that stops reading, an error reply sent while
// the client still uploads, and broken records.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import net from 'node:net';
import { copyFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import {
  startSluice, client, send, createActive, streamName, registerActive, subscribe, makeTlsCert, readAll,
  binPath, sleep,
} from './lib/harness.mjs';

// One handshake; resolves to { ok, protocol, cipher, fingerprint } or { ok: false, error }.
function handshake(port, opts = {}) {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'], ...opts });
    s.setTimeout(5000, () => { s.destroy(); resolve({ ok: false, error: 'timeout' }); });
    s.on('secureConnect', () => {
      const r = { ok: true, protocol: s.getProtocol(), cipher: s.getCipher().name, fingerprint: s.getPeerCertificate().fingerprint256 };
      s.end();
      resolve(r);
    });
    s.on('error', (e) => resolve({ ok: false, error: e.code || e.message }));
  });
}

async function withServer(args, tlsFiles, fn) {
  const srv = await startSluice({ tls: tlsFiles, args: ['--stream-delay', '0', ...args] });
  try {
    await fn(srv);
  } finally {
    assert.equal((await srv.stop()).code, 0, srv.stderr().slice(-3000));
  }
}

describe('TLS', () => {
  test('defaults: TLS 1.2 and 1.3, forward-secret AEAD suites only', async () => {
    const cert = makeTlsCert();
    await withServer([], cert, async (srv) => {
      const v13 = await handshake(srv.port);
      assert.ok(v13.ok, v13.error);
      assert.equal(v13.protocol, 'TLSv1.3');
      const v12 = await handshake(srv.port, { maxVersion: 'TLSv1.2' });
      assert.ok(v12.ok, v12.error);
      assert.equal(v12.protocol, 'TLSv1.2');
      assert.match(v12.cipher, /^ECDHE-ECDSA-(AES\d+-GCM|CHACHA20-POLY1305)/);
      for (const weak of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384', 'AES128-GCM-SHA256']) {
        const r = await handshake(srv.port, { maxVersion: 'TLSv1.2', ciphers: weak });
        assert.equal(r.ok, false, `${weak} was accepted`);
      }
      const v11 = await handshake(srv.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
      assert.equal(v11.ok, false, 'TLS 1.1 was accepted');
      // Clear text still works on the same port without --tls-only.
      assert.equal((await fetch(`http://127.0.0.1:${srv.port}/healthz`)).status, 200);
    });
  });

  test('--tls-min-version 1.3 refuses TLS 1.2', async () => {
    const cert = makeTlsCert();
    await withServer(['--tls-min-version', '1.3'], cert, async (srv) => {
      assert.equal((await handshake(srv.port, { maxVersion: 'TLSv1.2' })).ok, false);
      assert.equal((await handshake(srv.port)).protocol, 'TLSv1.3');
    });
    const bad = spawnSync(binPath(), ['--tls-min-version', '1.1', '--print-config'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--tls-min-version must be 1\.2 or 1\.3/);
  });

  test('--tls-only closes clear-text connections, serves TLS', async () => {
    const cert = makeTlsCert();
    await withServer(['--tls-only', 'on'], cert, async (srv) => {
      await assert.rejects(fetch(`http://127.0.0.1:${srv.port}/healthz`));
      // An HTTP/2 preface in clear text gets the connection closed, no bytes back.
      const got = await new Promise((resolve) => {
        const s = net.connect(srv.port, '127.0.0.1', () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
        let n = 0;
        s.on('data', (d) => { n += d.length; });
        s.on('close', () => resolve(n));
        s.on('error', () => {});
      });
      assert.equal(got, 0);
      const c = client(srv.endpoint, { requestHandler: { nodeHttp2ConnectOptions: { ca: cert.pem } } });
      try {
        const name = streamName('tlsonly');
        await createActive(c, name, { ShardCount: 1 });
      } finally {
        c.destroy();
      }
      assert.match(srv.stderr(), /"event":"cleartext_refused"/);
    });
    const bad = spawnSync(binPath(), ['--tls-only', 'on', '--print-config'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--tls-only needs --tls-cert/);
  });

  test('SIGHUP reloads the certificate; a live subscription over TLS keeps going', async () => {
    const first = makeTlsCert();
    const second = makeTlsCert();
    // The gateway reads the files at these paths; the test swaps their contents.
    const live = makeTlsCert();
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    await withServer([], { cert: live.cert, key: live.key }, async (srv) => {
      const before = await handshake(srv.port);
      const c = client(srv.endpoint, { requestHandler: { disableConcurrentStreams: true, nodeHttp2ConnectOptions: { ca: [first.pem, second.pem] } } });
      try {
        const name = streamName('hup');
        const { StreamARN } = await createActive(c, name, { ShardCount: 1 });
        const k = await registerActive(c, StreamARN, 'hup-c');
        const sub = await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' } });
        await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'a', Data: Buffer.from('before') });
        await sub.until((r) => r.length >= 1);

        copyFileSync(second.cert, live.cert);
        copyFileSync(second.key, live.key);
        srv.proc.kill('SIGHUP');
        let after;
        for (let i = 0; i < 50; i++) {
          after = await handshake(srv.port);
          if (after.fingerprint !== before.fingerprint) break;
          await sleep(100);
        }
        assert.ok(after.ok && after.fingerprint !== before.fingerprint, 'new connections get the new certificate');
        // The line is written after the swap: the handshake can see the new
        // certificate before this process has read the gateway's stderr.
        for (let i = 0; i < 50 && !/"event":"tls_reload"/.test(srv.stderr()); i++) await sleep(100);
        assert.match(srv.stderr(), /"event":"tls_reload"/);

        // The subscription began on the old certificate and is still live.
        await send(c, 'PutRecord', { StreamName: name, PartitionKey: 'b', Data: Buffer.from('after') });
        const { records } = await sub.until((r) => r.length >= 2);
        assert.deepEqual(records.map((r) => Buffer.from(r.Data).toString()), ['before', 'after']);
        assert.equal(sub.ended, false);
        sub.close();

        // A broken file keeps the certificate in use.
        copyFileSync(first.cert, live.key); // a certificate where the key should be
        srv.proc.kill('SIGHUP');
        for (let i = 0; i < 50 && !/certificate in use stays/.test(srv.stderr()); i++) await sleep(100);
        assert.match(srv.stderr(), /certificate in use stays/);
        assert.equal((await handshake(srv.port)).fingerprint, after.fingerprint);
      } finally {
        c.destroy();
      }
    });
  });

  // One HTTP/1.1-over-TLS exchange: writes "chunks" (with "pauseMs" between
  // them), collects everything until the server closes or "until" is true.
  function h1Tls(port, chunks, { until, pauseMs = 0, readDelayMs = 0, timeoutMs = 20000 } = {}) {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
      const got = [];
      let n = 0;
      let done = false;
      const finish = (how) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        s.destroy();
        resolve({ text: Buffer.concat(got).toString('latin1'), how });
      };
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      s.on('secureConnect', async () => {
        if (readDelayMs) s.pause();
        for (const c of chunks) {
          if (done) return;
          s.write(c);
          if (pauseMs) await sleep(pauseMs);
        }
        if (readDelayMs) setTimeout(() => s.resume(), readDelayMs);
      });
      s.on('data', (d) => {
        got.push(d);
        n += d.length;
        if (until && until(Buffer.concat(got))) finish('until');
      });
      s.on('end', () => finish('end'));
      s.on('error', (e) => (got.length ? finish(`error ${e.code}`) : reject(e)));
    });
  }

  test('record layer: megabyte bodies and replies, pipelining, a stalled reader, broken records', async () => {
    const cert = makeTlsCert();
    await withServer(['--max-body-bytes', '6291456'], cert, async (srv) => {
      const c = client(srv.endpoint, { requestHandler: { nodeHttp2ConnectOptions: { ca: cert.pem } } });
      try {
        // ~4.6 MB of PutRecords over h2+TLS (hundreds of records of 16 KiB
        // each), then the same bytes back through GetRecords.
        const name = streamName('tlsbig');
        await createActive(c, name, { ShardCount: 1 });
        const Records = [];
        for (let i = 0; i < 280; i++) {
          const d = Buffer.alloc(16384, i & 0xff);
          d.writeUInt32BE(i, 0);
          Records.push({ PartitionKey: `k${i}`, Data: d });
        }
        const put = await send(c, 'PutRecords', { StreamName: name, Records });
        assert.equal(put.FailedRecordCount, 0);
        const { ShardIterator } = await send(c, 'GetShardIterator', { StreamName: name, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' });
        const got = await readAll(c, name, 'shardId-000000000000');
        assert.equal(got.length, 280);
        got.forEach((r, i) => assert.ok(Buffer.from(r.Data).equals(Records[i].Data), `record ${i}`));

        // And pushed over h2+TLS: events of megabytes, in DATA frames cut
        // from the shared event, sealed into records, checked by the SDK's
        // event-stream decoder (CRCs) and here byte for byte.
        const { StreamARN } = await send(c, 'DescribeStreamSummary', { StreamName: name }).then((r) => r.StreamDescriptionSummary);
        const k = await registerActive(c, StreamARN, 'tlsbig-c');
        const sub = await subscribe(c, { ConsumerARN: k.ConsumerARN, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'TRIM_HORIZON' } });
        const pushed = (await sub.until((r) => r.length >= 280)).records;
        sub.close();
        assert.equal(pushed.length, 280);
        pushed.forEach((r, i) => assert.ok(Buffer.from(r.Data).equals(Records[i].Data), `pushed record ${i}`));

        // Five GetRecords replies of ~1.4 MB of JSON each, pipelined over
        // HTTP/1.1+TLS to a reader that reads nothing for a second:
        // back-pressure, then every byte of every reply.
        const body = JSON.stringify({ ShardIterator });
        const req = (last) => `POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-amz-json-1.1\r\n` +
          `x-amz-target: Kinesis_20131202.GetRecords\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `${last ? 'connection: close\r\n' : ''}\r\n${body}`;
        const slow = await h1Tls(srv.port, [req(false).repeat(4) + req(true)], { readDelayMs: 1000 });
        assert.equal(slow.how, 'end');
        let rest = slow.text;
        for (let i = 0; i < 5; i++) {
          const end = rest.indexOf('\r\n\r\n');
          const head = rest.slice(0, end);
          assert.match(head, /^HTTP\/1\.1 200 /, `reply ${i}`);
          const len = Number(/content-length: (\d+)/i.exec(head)[1]);
          assert.ok(len > 1_000_000, `reply ${i} of ${len} bytes`);
          const json = JSON.parse(rest.slice(end + 4, end + 4 + len));
          assert.equal(json.Records[0].Data, Records[0].Data.toString('base64'));
          rest = rest.slice(end + 4 + len);
        }
        assert.equal(rest, '');

        // 40 pipelined requests in one write, and again one byte per write.
        const one = 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n';
        const count = (t) => (t.match(/HTTP\/1\.1 200 /g) || []).length;
        const burst = await h1Tls(srv.port, [one.repeat(40)], { until: (b) => count(b.toString('latin1')) >= 40 });
        assert.equal(count(burst.text), 40, burst.how);
        const bytes = [...(one.repeat(3))].map((ch) => ch);
        const trickle = await h1Tls(srv.port, bytes, { until: (b) => count(b.toString('latin1')) >= 3 });
        assert.equal(count(trickle.text), 3, trickle.how);

        // A 413 sent while the client is still uploading arrives whole: the
        // gateway ends TLS with close_notify and a lingering close, not a
        // reset that would destroy the reply in flight.
        const big = `POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-amz-json-1.1\r\n` +
          `x-amz-target: Kinesis_20131202.PutRecord\r\ntransfer-encoding: chunked\r\n\r\n`;
        const chunk = Buffer.alloc(1 << 20, 0x61);
        const chunks = [big];
        for (let i = 0; i < 8; i++) chunks.push(`100000\r\n`, chunk, '\r\n');
        const refused = await h1Tls(srv.port, chunks, { pauseMs: 20 });
        assert.match(refused.text, /^HTTP\/1\.1 413 [^]*\r\n\r\n\{[^]*\}$/, refused.how);

        // Broken TLS: a record of garbage after a ClientHello header, and a
        // handshake cut short; the gateway closes those and serves on.
        for (const junk of [Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), Buffer.alloc(512, 0x41)]),
          Buffer.from([0x16, 0x03, 0x03, 0x00, 0x05, 0x01])]) {
          const closed = await new Promise((resolve) => {
            const s = net.connect(srv.port, '127.0.0.1', () => { s.write(junk); if (junk.length < 10) s.end(); });
            s.on('data', () => {});
            s.on('close', () => resolve(true));
            s.on('error', () => {});
            setTimeout(() => { s.destroy(); resolve(false); }, 10000);
          });
          assert.ok(closed, 'connection closed');
        }
        assert.equal((await handshake(srv.port)).ok, true);
        assert.equal((await send(c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamName, name);
      } finally {
        c.destroy();
      }
    });
  });
});
