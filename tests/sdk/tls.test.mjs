// TLS settings against the real binary: modern defaults (TLS 1.2+, AEAD
// suites only), --tls-min-version, --tls-only, and the certificate reloaded
// on SIGHUP while a SubscribeToShard over TLS keeps receiving records.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import net from 'node:net';
import { copyFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import {
  startSluice, client, send, createActive, streamName, registerActive, subscribe, makeTlsCert,
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
});
