// DescribeAccountSettings / UpdateAccountSettings through
// @aws-sdk/client-kinesis against the real binary: the minimum throughput
// billing commitment's life cycle, validation, and persistence across a
// restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSluice, client, send, expectError } from './lib/harness.mjs';

const DAY = 24 * 3600 * 1000;
let srv; let c;
before(async () => { srv = await startSluice(); c = client(srv.endpoint); });
after(async () => {
  c?.destroy();
  const st = await srv?.stop();
  if (st) assert.equal(st.code, 0, `sluice exited with ${st.code ?? st.signal}:\n${srv.stderr().slice(-4000)}`);
});

test('the commitment: off, on, set to end, kept across a restart', async () => {
  let r = await send(c, 'DescribeAccountSettings', {});
  assert.deepEqual(r.MinimumThroughputBillingCommitment, { Status: 'DISABLED' });
  await expectError(send(c, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'MAYBE' } }),
    'ValidationException', /minimumThroughputBillingCommitment.status/);
  const t0 = Date.now();
  r = await send(c, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'ENABLED' } });
  const m = r.MinimumThroughputBillingCommitment;
  assert.equal(m.Status, 'ENABLED');
  assert.ok(Math.abs(m.StartedAt.getTime() - t0) < 5000);
  assert.equal(m.EarliestAllowedEndAt.getTime() - m.StartedAt.getTime(), DAY);
  r = await send(c, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'ENABLED' } });
  assert.equal(r.MinimumThroughputBillingCommitment.StartedAt.getTime(), m.StartedAt.getTime(), 'enabling again changes nothing');
  r = await send(c, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'DISABLED' } });
  assert.equal(r.MinimumThroughputBillingCommitment.Status, 'ENABLED_UNTIL_EARLIEST_ALLOWED_END');
  assert.equal(r.MinimumThroughputBillingCommitment.EndedAt.getTime(), m.EarliestAllowedEndAt.getTime());
  c.destroy();
  srv = await srv.restart();
  c = client(srv.endpoint);
  r = await send(c, 'DescribeAccountSettings', {});
  assert.equal(r.MinimumThroughputBillingCommitment.Status, 'ENABLED_UNTIL_EARLIEST_ALLOWED_END', 'persisted');
  assert.equal(r.MinimumThroughputBillingCommitment.StartedAt.getTime(), m.StartedAt.getTime());
  r = await send(c, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'ENABLED' } });
  assert.equal(r.MinimumThroughputBillingCommitment.Status, 'ENABLED', 'renewed');
  assert.equal(r.MinimumThroughputBillingCommitment.EndedAt, undefined);
});
