// The web console (/dashboard/) in headless Chromium against the real
// gateway: what it shows (streams, rising counts, consumers and their live
// subscriptions, the live tail) and what it does (create, delete with
// confirmation, errors in the gateway's words). Screenshots, light and
// dark, go to $SLUICE_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startSluice, launchBrowser, newPage, rest, ok, createActive, putRecord, openSse, waitFor,
  assertNoPageErrors, screenshot, streamName, sleep,
} from './lib/harness.mjs';

let srv, browser, page;
const subs = [];

before(async () => {
  srv = await startSluice({ args: ['--heartbeat', '1s'] });
  browser = await launchBrowser();
  page = await newPage(browser);
});

after(async () => {
  for (const s of subs) s.close();
  await browser?.close();
  const st = await srv?.stop();
  if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}:\n${srv.stderr().slice(-3000)}`);
});

const row = (name) => page.locator(`#streams tr[data-stream="${name}"]`);
const cell = (name, col) => row(name).locator(`[data-col="${col}"]`);

async function openConsole() {
  if (!page.url().startsWith(`${srv.endpoint}/dashboard/`)) await page.goto(`${srv.endpoint}/dashboard`);
}

async function selectStream(name) {
  await row(name).getByRole('button', { name: `Show stream ${name}` }).click();
  await page.locator('#detail-heading').getByText(`Stream ${name}`).waitFor();
}

test('the console is served by the binary, with its security headers, and works under its CSP', async () => {
  const res = await page.goto(`${srv.endpoint}/dashboard`);
  assert.equal(new URL(page.url()).pathname, '/dashboard/', '/dashboard redirects to the directory URL');
  assert.equal(res.status(), 200);
  const h = res.headers();
  assert.match(h['content-type'], /^text\/html/);
  assert.equal(h['content-security-policy'],
    "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.equal(h['referrer-policy'], 'no-referrer');
  assert.equal(h['cache-control'], 'no-cache');
  assert.match(h.etag, /^"[0-9a-f]{32}"$/);
  // Revalidation: the same ETag answers 304.
  const again = await rest(srv.endpoint, 'GET', '/dashboard/app.js');
  assert.equal(again.status, 200);
  assert.match(again.headers.get('content-type'), /^text\/javascript/);
  const r304 = await fetch(`${srv.endpoint}/dashboard/app.js`, { headers: { 'if-none-match': again.headers.get('etag') } });
  assert.equal(r304.status, 304);
  const head = await fetch(`${srv.endpoint}/dashboard/uPlot.iife.min.js`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('etag').length, 34);
  assert.ok(Number(head.headers.get('content-length')) > 10000, 'HEAD says the length GET would send');
  const missing = await rest(srv.endpoint, 'GET', '/dashboard/nope.js');
  assert.equal(missing.status, 404);
  assert.equal(missing.json.__type, 'NotFoundException');
  await page.locator('#live').getByText(/^Live/).waitFor();
  assertNoPageErrors(page);
});

test('the page lists a stream created through the API', async () => {
  const name = streamName('api');
  await createActive(srv.endpoint, name, 2);
  await openConsole();
  await row(name).waitFor();
  await row(name).locator('.badge').getByText('ACTIVE').waitFor();
  await waitFor('open/total shards', async () => (await cell(name, 'shards').textContent()) === '2 / 2');
  assert.equal(await cell(name, 'mode').textContent(), 'PROVISIONED');
  assert.equal(await cell(name, 'retention').textContent(), '24 h');
});

test('counts and rates rise after records are put', async () => {
  const name = streamName('count');
  await createActive(srv.endpoint, name, 1);
  await openConsole();
  await row(name).waitFor();
  assert.equal(await cell(name, 'inRec').getAttribute('data-total'), '0');
  // Records over ~3 s: at least one 1-s poll sees a non-zero rate.
  let sawRate = false;
  const watcher = page.waitForFunction((n) => {
    const t = document.querySelector(`#streams tr[data-stream="${n}"] [data-col="inRec"]`)?.textContent;
    return t && t !== '—' && Number(t.replace(/[^0-9.]/g, '')) > 0;
  }, name, { polling: 50, timeout: 15000 }).then(() => { sawRate = true; });
  for (let i = 0; i < 15; i++) {
    await putRecord(srv.endpoint, name, `k${i}`, `record ${i} ${'x'.repeat(200)}`);
    await sleep(200);
  }
  await watcher;
  assert.ok(sawRate, 'the in rec/s cell showed a rate');
  await waitFor('15 records counted', async () => Number(await cell(name, 'inRec').getAttribute('data-total')) >= 15);
  await waitFor('stored bytes', async () => Number(await cell(name, 'stored').getAttribute('data-bytes')) > 0);
  const spark = row(name).locator('[data-col="chart"] canvas');
  assert.equal(await spark.count(), 1, 'a sparkline is drawn');
});

test('a registered consumer appears with its live subscription', async () => {
  const name = streamName('cons');
  await createActive(srv.endpoint, name, 1);
  await ok(srv.endpoint, 'POST', `/v1/streams/${name}/consumers`, { body: { ConsumerName: 'reader' } });
  await waitFor('consumer ACTIVE', async () =>
    (await rest(srv.endpoint, 'GET', `/v1/streams/${name}/consumers/reader`)).json?.ConsumerDescription?.ConsumerStatus === 'ACTIVE');
  const sub = await openSse(srv.endpoint, `/v1/streams/${name}/consumers/reader/shards/shardId-000000000000/subscribe?from=LATEST`);
  subs.push(sub);
  await openConsole();
  await row(name).waitFor();
  await selectStream(name);
  const c = page.locator('#consumers tr[data-consumer="reader"]');
  await c.waitFor();
  await c.locator('.badge').getByText('ACTIVE').waitFor();
  const li = c.locator('li[data-shard="shardId-000000000000"]');
  await li.waitFor();
  await li.getByText('SSE').waitFor();
  await li.getByText(/ms behind/).waitFor();
  assert.equal(await li.locator('meter').count(), 1, 'delivery against the budget is shown');
  await li.getByText(/\/ 2\.00 MiB\/s/).waitFor();
  // Records delivered to it are counted.
  for (let i = 0; i < 5; i++) await putRecord(srv.endpoint, name, 'k', `delivered ${i}`);
  await waitFor('records reached the subscriber', () => sub.events.filter((e) => e.event === 'record').length >= 5);
  await waitFor('out counted', async () => Number(await cell(name, 'outRec').getAttribute('data-total')) >= 5);
});

test('the live tail shows records put after it opened', async () => {
  const name = streamName('tail');
  await createActive(srv.endpoint, name, 1);
  await openConsole();
  await row(name).waitFor();
  await selectStream(name);
  await page.locator('#tail-shard option[value="shardId-000000000000"]').waitFor({ state: 'attached' });
  await page.selectOption('#tail-shard', 'shardId-000000000000');
  await page.selectOption('#tail-from', 'LATEST');
  await page.getByRole('button', { name: 'Start tail' }).click();
  await page.locator('#tail-status').getByText(/^Tailing/).waitFor();
  const json = await putRecord(srv.endpoint, name, 'user-1', JSON.stringify({ order: 17, items: ['a', 'b'] }));
  const text = await putRecord(srv.endpoint, name, 'user-2', 'plain text, with ünïcode');
  const bin = await putRecord(srv.endpoint, name, 'user-3', Buffer.from([0x00, 0xff, 0x10, 0x80]));
  const rowOf = (r) => page.locator(`#tail tr[data-seq="${r.SequenceNumber}"]`);
  await rowOf(bin).waitFor();
  const cells = async (r) => rowOf(r).locator('td').allTextContents();
  const [seq1, key1, at1, data1] = await cells(json);
  assert.equal(seq1, json.SequenceNumber);
  assert.equal(key1, 'user-1');
  assert.match(at1, /^\d\d:\d\d:\d\d\.\d{3}$/);
  assert.match(data1, /^JSON/);
  assert.equal(await rowOf(json).locator('pre').textContent(), JSON.stringify({ order: 17, items: ['a', 'b'] }, null, 2));
  assert.equal(await rowOf(text).locator('pre').textContent(), 'plain text, with ünïcode');
  assert.equal(await rowOf(bin).locator('pre').textContent(), '00 ff 10 80');
  // Newest first.
  const seqs = await page.locator('#tail tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.seq));
  assert.deepEqual(seqs, [bin.SequenceNumber, text.SequenceNumber, json.SequenceNumber]);
  await page.getByRole('button', { name: 'Stop' }).click();
  await page.locator('#tail-status').getByText('Stopped.').waitFor();
});

test('shards show their lineage after a reshard, and per-shard rates once monitored', async () => {
  const name = streamName('shards');
  await createActive(srv.endpoint, name, 1);
  await ok(srv.endpoint, 'PUT', `/v1/streams/${name}/shard-count`, { body: { TargetShardCount: 2, ScalingType: 'UNIFORM_SCALING' } });
  await waitFor(`${name} ACTIVE again`, async () =>
    (await rest(srv.endpoint, 'GET', `/v1/streams/${name}`)).json?.StreamDescriptionSummary?.StreamStatus === 'ACTIVE');
  // Enhanced monitoring is a Kinesis-door operation.
  const mon = await fetch(`${srv.endpoint}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.EnableEnhancedMonitoring' },
    body: JSON.stringify({ StreamName: name, ShardLevelMetrics: ['ALL'] }),
  });
  assert.equal(mon.status, 200, await mon.text());
  await openConsole();
  await row(name).waitFor();
  await selectStream(name);
  const parent = page.locator('#shards tr[data-shard="shardId-000000000000"]');
  await parent.getByText('closed').waitFor();
  const children = page.locator('#shards tbody tr').filter({ hasText: 'open' });
  await waitFor('two open children', async () => (await children.count()) === 2);
  for (const tr of await children.all()) assert.match(await tr.textContent(), /shardId-000000000000/, 'a child names its parent');
  await waitFor('open/total', async () => (await cell(name, 'shards').textContent()) === '2 / 3');
  await page.locator('#shards-note').getByText(/enhanced monitoring is on/).waitFor();
  const inCell = (id) => page.locator(`#shards tr[data-shard="${id}"] td:nth-of-type(5)`);
  const child = await children.first().getAttribute('data-shard');
  const seen = page.waitForFunction((id) => {
    const t = document.querySelector(`#shards tr[data-shard="${id}"] td:nth-of-type(5)`)?.textContent;
    return t && t !== '—' && Number(t.replace(/[^0-9.]/g, '')) > 0;
  }, child, { polling: 50, timeout: 15000 });
  // Keys until one lands in that child, for ~3 s.
  const stop = Date.now() + 3000;
  for (let i = 0; Date.now() < stop; i++) {
    await putRecord(srv.endpoint, name, `key-${i}`, 'per shard');
    await sleep(100);
  }
  await seen;
  assert.notEqual(await inCell(child).textContent(), '—');
});

test('creating a stream from the page works, and a refused one shows the gateway\'s message', async () => {
  const name = streamName('made');
  await openConsole();
  await page.fill('#create-name', name);
  await page.fill('#create-shards', '3');
  await page.getByRole('button', { name: 'Create stream' }).click();
  await row(name).waitFor();
  const d = await waitFor('created', async () => {
    const r = await rest(srv.endpoint, 'GET', `/v1/streams/${name}`);
    return r.json?.StreamDescriptionSummary?.StreamStatus === 'ACTIVE' && r.json.StreamDescriptionSummary;
  });
  assert.equal(d.OpenShardCount, 3);
  // Again: the gateway refuses, and its own words are shown.
  await page.fill('#create-name', name);
  await page.getByRole('button', { name: 'Create stream' }).click();
  const err = page.locator('#error');
  await err.getByText(/ResourceInUseException/).waitFor();
  assert.match(await err.textContent(), new RegExp(name));
  assert.equal(await err.getAttribute('role'), 'alert');
});

test('deleting a stream needs confirmation', async () => {
  const name = streamName('del');
  await createActive(srv.endpoint, name, 1);
  await openConsole();
  await row(name).waitFor();
  await row(name).getByRole('button', { name: `Delete stream ${name}` }).click();
  const dialog = page.locator('#confirm');
  await dialog.waitFor({ state: 'visible' });
  assert.match(await dialog.textContent(), new RegExp(`Delete stream ${name}\\?`));
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await sleep(1500);
  assert.equal((await rest(srv.endpoint, 'GET', `/v1/streams/${name}`)).status, 200, 'cancelled: the stream is still there');
  // Escape cancels too (a native modal dialog).
  await row(name).getByRole('button', { name: `Delete stream ${name}` }).click();
  await dialog.waitFor({ state: 'visible' });
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal((await rest(srv.endpoint, 'GET', `/v1/streams/${name}`)).status, 200);
  await row(name).getByRole('button', { name: `Delete stream ${name}` }).click();
  await dialog.getByRole('button', { name: 'Delete stream' }).click();
  await waitFor('stream gone', async () => (await rest(srv.endpoint, 'GET', `/v1/streams/${name}`)).json?.__type === 'ResourceNotFoundException');
  await row(name).waitFor({ state: 'detached' });
});

test('put a record, register and deregister a consumer from the page', async () => {
  const name = streamName('acts');
  await createActive(srv.endpoint, name, 1);
  await openConsole();
  await row(name).waitFor();
  await selectStream(name);
  await page.fill('#put-key', 'from-page');
  await page.fill('#put-data', 'hello from the console');
  await page.getByRole('button', { name: 'Put record' }).click();
  await page.locator('#put-result').getByText(/^Stored in shardId-000000000000 as \d+\.$/).waitFor();
  const got = await ok(srv.endpoint, 'GET', `/v1/streams/${name}/shards/shardId-000000000000/records?from=TRIM_HORIZON`);
  assert.equal(got.Records.length, 1);
  assert.equal(got.Records[0].PartitionKey, 'from-page');
  assert.equal(Buffer.from(got.Records[0].Data, 'base64').toString(), 'hello from the console');

  await page.fill('#register-name', 'ui-reader');
  await page.getByRole('button', { name: 'Register consumer' }).click();
  await page.locator('#consumers tr[data-consumer="ui-reader"]').waitFor();
  await page.getByRole('button', { name: 'Deregister consumer ui-reader' }).click();
  const dialog = page.locator('#confirm');
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByRole('button', { name: 'Deregister' }).click();
  await waitFor('consumer gone', async () =>
    (await rest(srv.endpoint, 'GET', `/v1/streams/${name}/consumers/ui-reader`)).json?.__type === 'ResourceNotFoundException');
  await page.locator('#consumers tr[data-consumer="ui-reader"]').waitFor({ state: 'detached' });
});

test('screenshots, light and dark, of a busy stream', async () => {
  const name = 'orders';
  await createActive(srv.endpoint, name, 2);
  await ok(srv.endpoint, 'POST', `/v1/streams/${name}/consumers`, { body: { ConsumerName: 'billing' } });
  await waitFor('consumer ACTIVE', async () =>
    (await rest(srv.endpoint, 'GET', `/v1/streams/${name}/consumers/billing`)).json?.ConsumerDescription?.ConsumerStatus === 'ACTIVE');
  for (const shard of ['shardId-000000000000', 'shardId-000000000001']) {
    subs.push(await openSse(srv.endpoint, `/v1/streams/${name}/consumers/billing/shards/${shard}/subscribe?from=LATEST`));
  }
  let n = 0;
  let running = true;
  const producer = (async () => {
    while (running) {
      await putRecord(srv.endpoint, name, `customer-${n % 7}`, JSON.stringify({ order: n, customer: `customer-${n % 7}`, total: Math.round(((n * 7.3) % 100) * 100) / 100 }));
      n++;
      await sleep(40 + (n % 5) * 20);
    }
  })();
  try {
    for (const scheme of ['light', 'dark']) {
      const p = await newPage(browser, { colorScheme: scheme });
      await p.goto(`${srv.endpoint}/dashboard/#stream=${name}`);
      await p.locator(`#consumers tr[data-consumer="billing"] li[data-shard]`).first().waitFor();
      await p.selectOption('#tail-shard', 'shardId-000000000000');
      await p.getByRole('button', { name: 'Start tail' }).click();
      await p.locator('#tail tbody tr').nth(3).waitFor();
      await sleep(5000); // a few points on the charts
      await screenshot(p, `console-${scheme}.png`);
      assertNoPageErrors(p);
      await p.context().close();
    }
  } finally {
    running = false;
    await producer;
  }
});
