// Helpers for the console's browser suite: start the real sluice binary on
// 127.0.0.1:0 with a fresh data dir, call its REST door from node, open SSE
// subscriptions, and drive Debian's Chromium with playwright-core.
// The process start is tests/lib/process.mjs, shared with the SDK suite
// (this suite has its own node_modules and must not need the SDK's).
import { mkdtempSync, mkdirSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import assert from 'node:assert/strict';
import { launch } from '../../lib/process.mjs';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '..', '..', '..');
export const CHROMIUM = process.env.SLUICE_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.SLUICE_ARTIFACTS || join(REPO, 'build', 'tests', 'browser');

const pw = await import('playwright-core').catch((e) => {
  throw new Error(`cannot load playwright-core (${e.message}); run \`bash tests/browser/install.sh\``);
});

export function binPath() {
  const bin = process.env.SLUICE_BIN;
  if (!bin) throw new Error('SLUICE_BIN is not set (path to the sluice binary)');
  if (!existsSync(bin)) throw new Error(`SLUICE_BIN=${bin} does not exist`);
  return bin;
}

// Starts sluice; resolves to { endpoint, port, stop(), stderr() }.
export async function startSluice({ args = [] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-browser-'));
  const fullArgs = ['--listen', '127.0.0.1:0', '--data-dir', dataDir, ...args];
  const { proc, port, lines, exited } = await launch(binPath(), fullArgs);
  let stopped;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stderr: () => lines.join('\n'),
    stop() {
      stopped ??= (async () => {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        const st = await exited;
        clearTimeout(t);
        rmSync(dataDir, { recursive: true, force: true });
        return st;
      })();
      return stopped;
    },
  };
}

// One REST call from node. body: object (JSON) or Buffer/string with
// contentType. Resolves to { status, headers, json, text }.
export async function rest(endpoint, method, path, { body, contentType, token } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    if (Buffer.isBuffer(body) || typeof body === 'string') {
      payload = body;
      headers['content-type'] = contentType || 'application/octet-stream';
    } else {
      payload = JSON.stringify(body);
      headers['content-type'] = contentType || 'application/json';
    }
  }
  const res = await fetch(endpoint + path, { method, headers, body: payload });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

// REST call that must succeed; returns the JSON body.
export async function ok(endpoint, method, path, opts) {
  const r = await rest(endpoint, method, path, opts);
  assert.equal(r.status, 200, `${method} ${path}: ${r.status} ${r.text}`);
  return r.json ?? {};
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, fn, ms = 15000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(50);
  }
}

export async function createActive(endpoint, name, shards = 1, token) {
  await ok(endpoint, 'POST', '/v1/streams', { body: { StreamName: name, ShardCount: shards }, token });
  await waitFor(`${name} ACTIVE`, async () => {
    const r = await rest(endpoint, 'GET', `/v1/streams/${name}`, { token });
    return r.json?.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
  });
}

// A raw record; resolves to PutRecord's answer ({ShardId, SequenceNumber}).
export function putRecord(endpoint, stream, key, data, token) {
  return ok(endpoint, 'POST', `/v1/streams/${stream}/records?partitionKey=${encodeURIComponent(key)}`,
    { body: Buffer.isBuffer(data) ? data : Buffer.from(data), contentType: 'application/octet-stream', token });
}

// Opens a Server-Sent Events GET; resolves once the 200 headers arrive to
// { events, close() } (events: parsed {event, data} as they come).
export function openSse(endpoint, path) {
  return new Promise((resolve, reject) => {
    const u = new URL(endpoint + path);
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search, agent: false,
      headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        let t = '';
        res.on('data', (d) => { t += d; });
        res.on('end', () => reject(new Error(`GET ${path}: ${res.statusCode} ${t}`)));
        return;
      }
      const events = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = { event: 'message', data: '' };
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) ev.event = line.slice(6).trim();
            else if (line.startsWith('data:')) ev.data += line.slice(5).trim();
          }
          events.push(ev);
        }
      });
      res.on('error', () => {});
      resolve({ events, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

// Debian's Chromium, headless, driven by playwright-core.
export async function launchBrowser() {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (bash .ci/deps test)`);
  return pw.chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 30000 });
}

// A page that records console errors and uncaught exceptions (CSP
// violations show up there), for assertNoPageErrors.
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, ...opts });
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  page.on('pageerror', (e) => page.errors.push(`uncaught: ${e.message}`));
  page.setDefaultTimeout(15000);
  return page;
}

export function assertNoPageErrors(page, allow = []) {
  const bad = page.errors.filter((e) => !allow.some((re) => re.test(e)));
  assert.deepEqual(bad, [], 'errors in the page console');
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export function writeArtifact(name, text) {
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(join(ARTIFACTS, name), text);
}

let uniq = 0;
export function streamName(prefix = 's') { return `${prefix}-${process.pid % 10000}-${++uniq}`; }
