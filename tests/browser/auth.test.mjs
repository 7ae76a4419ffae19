// Issue 14 in the browser: with --auth sigv4 the console's files still load
// (they hold no data), the page asks for a bearer token, refuses a wrong
// one, works with the right one (tail included) and forgets it on sign
// out; and a page on another origin cannot make the browser create a
// stream (the REST door's POSTs need a Content-Type that a cross-origin
// page cannot send without a CORS preflight).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startSluice, launchBrowser, newPage, rest, createActive, putRecord, assertNoPageErrors,
  screenshot, sleep,
} from './lib/harness.mjs';

const TOKEN = 'console-token-3f9a';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

describe('--auth sigv4: the sign-in box', () => {
  let srv, dir;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-browser-creds-'));
    const creds = join(dir, 'credentials');
    writeFileSync(creds, `# console test\nAKIDCONSOLETEST:secretsecretsecret\ntoken:${TOKEN}\n`);
    srv = await startSluice({ args: ['--auth', 'sigv4', '--credentials', creds] });
  });
  after(async () => {
    const st = await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
    if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}`);
  });

  test('no token: the login box; a wrong token is refused; the right one works; sign out forgets it', async () => {
    await createActive(srv.endpoint, 'secret-stream', 1, TOKEN);
    assert.equal((await rest(srv.endpoint, 'GET', '/v1/streams')).json.__type, 'MissingAuthenticationTokenException');
    const page = await newPage(browser);
    const res = await page.goto(`${srv.endpoint}/dashboard/`);
    assert.equal(res.status(), 200, 'the console files need no credentials');
    const login = page.locator('#login');
    await login.waitFor({ state: 'visible' });
    await page.locator('#login-error').getByText(/MissingAuthenticationTokenException/).waitFor();
    assert.equal(await page.locator('#streams tr[data-stream="secret-stream"]').count(), 0);
    await screenshot(page, 'console-login.png');

    await page.getByLabel('Token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#login-error').getByText(/UnrecognizedClientException/).waitFor();
    assert.ok(await login.isVisible(), 'still asking');
    await sleep(1500);
    assert.equal(await page.locator('#streams tr[data-stream="secret-stream"]').count(), 0, 'nothing shown with a wrong token');

    await page.getByLabel('Token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await login.waitFor({ state: 'hidden' });
    await page.locator('#streams tr[data-stream="secret-stream"]').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('sluice.token')), TOKEN);

    // The tail sends the token too (fetch, not EventSource).
    await page.getByRole('button', { name: 'Show stream secret-stream' }).click();
    await page.locator('#tail-shard option[value="shardId-000000000000"]').waitFor({ state: 'attached' });
    await page.getByRole('button', { name: 'Start tail' }).click();
    await page.locator('#tail-status').getByText(/^Tailing/).waitFor();
    const put = await putRecord(srv.endpoint, 'secret-stream', 'k', 'behind a token', TOKEN);
    await page.locator(`#tail tr[data-seq="${put.SequenceNumber}"]`).waitFor();

    // A reload keeps the tab's token.
    await page.reload();
    await page.locator('#streams tr[data-stream="secret-stream"]').waitFor();
    assert.ok(!(await login.isVisible()));

    await page.getByRole('button', { name: 'Sign out' }).click();
    await login.waitFor({ state: 'visible' });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('sluice.token')), null);
    assertNoPageErrors(page, [/status of 400/]);
    await page.context().close();
  });
});

describe('another origin cannot change anything', () => {
  let srv, evil;
  before(async () => {
    srv = await startSluice();
  });
  after(async () => {
    evil?.close();
    const st = await srv?.stop();
    if (st) assert.equal(st.code, 0);
  });

  test('a cross-origin fetch (no-cors, text/plain) and form POSTs do not create a stream', async () => {
    const gw = srv.endpoint;
    const html = `<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="f1" method="POST" action="${gw}/v1/streams" target="sink1" enctype="text/plain">
  <input name='{"StreamName":"evil2","ShardCount":1,"x":"' value='"}'>
</form>
<form id="f2" method="POST" action="${gw}/v1/streams" target="sink2">
  <input name="StreamName" value="evil3"><input name="ShardCount" value="1">
</form>
<script>
window.results = {};
fetch('${gw}/v1/streams', { method: 'POST', headers: { 'Content-Type': 'text/plain' },
  body: '{"StreamName":"evil","ShardCount":1}', mode: 'no-cors' })
  .then((r) => { window.results.fetch = r.type; }, (e) => { window.results.fetch = 'error ' + e.message; });
let loads = 0;
for (const n of ['sink1', 'sink2']) document.querySelector('iframe[name=' + n + ']').addEventListener('load', () => { window.results[n] = ++loads; });
document.getElementById('f1').submit();
document.getElementById('f2').submit();
</script></body></html>`;
    evil = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html);
    });
    await new Promise((r) => evil.listen(0, '127.0.0.1', r));
    const evilUrl = `http://127.0.0.1:${evil.address().port}/`;
    const page = await newPage(browser);
    await page.goto(evilUrl);
    await page.waitForFunction(() => window.results.fetch && window.results.sink1 && window.results.sink2, null, { timeout: 15000 });
    const results = await page.evaluate(() => window.results);
    assert.equal(results.fetch, 'opaque', 'the no-cors request was sent (its answer is unreadable)');
    await sleep(500);
    for (const name of ['evil', 'evil2', 'evil3']) {
      const r = await rest(gw, 'GET', `/v1/streams/${name}`);
      assert.equal(r.json?.__type, 'ResourceNotFoundException', `${name} must not exist: ${r.text}`);
    }
    const list = await rest(gw, 'GET', '/v1/streams');
    assert.deepEqual(list.json.StreamNames, []);
    // The same page's console, opened in the browser, is not frameable either.
    const dash = await rest(gw, 'GET', '/dashboard/');
    assert.match(dash.headers.get('content-security-policy'), /frame-ancestors 'none'/);
    await page.context().close();
  });
});
