// A subscription that falls behind: with a tiny --consumer-rate, a reader
// starting at TRIM_HORIZON of a full shard is throttled and more than a
// second behind; the console says both in words (not colour alone).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startSluice, launchBrowser, newPage, ok, rest, createActive, putRecord, openSse, waitFor, sleep,
  assertNoPageErrors, screenshot,
} from './lib/harness.mjs';

let srv, browser, sub;
before(async () => {
  srv = await startSluice({ args: ['--consumer-rate', '2KiB', '--consumer-burst', '2KiB', '--heartbeat', '1s'] });
  browser = await launchBrowser();
});
after(async () => {
  sub?.close();
  await browser?.close();
  const st = await srv?.stop();
  if (st) assert.equal(st.code, 0);
});

test('a lagging, throttled subscription is highlighted with text', async () => {
  const name = 'slow';
  await createActive(srv.endpoint, name, 1);
  await ok(srv.endpoint, 'POST', `/v1/streams/${name}/consumers`, { body: { ConsumerName: 'laggard' } });
  await waitFor('consumer ACTIVE', async () =>
    (await rest(srv.endpoint, 'GET', `/v1/streams/${name}/consumers/laggard`)).json?.ConsumerDescription?.ConsumerStatus === 'ACTIVE');
  // MillisBehindLatest is the arrival gap between the record delivered and
  // the shard's newest: spread the backlog over 2 s.
  for (let i = 0; i < 40; i++) {
    await putRecord(srv.endpoint, name, 'k', 'x'.repeat(1000));
    await sleep(50);
  }
  sub = await openSse(srv.endpoint, `/v1/streams/${name}/consumers/laggard/shards/shardId-000000000000/subscribe?from=TRIM_HORIZON`);
  const page = await newPage(browser);
  await page.goto(`${srv.endpoint}/dashboard/#stream=${name}`);
  const li = page.locator('#consumers tr[data-consumer="laggard"] li[data-shard="shardId-000000000000"]');
  await li.waitFor();
  await li.getByText(/lagging \d/).waitFor();
  await li.getByText('throttled').waitFor();
  assert.match(await li.getAttribute('class'), /\balert\b/);
  await screenshot(page, 'console-lagging.png');
  assertNoPageErrors(page);
  await page.context().close();
});
