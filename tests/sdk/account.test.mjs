// DescribeAccountSettings / UpdateAccountSettings through
// @aws-sdk/client-kinesis against the real binary: the minimum throughput
// billing commitment's life cycle, validation, and persistence across a
// restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useSluice, startSluice, client, send, expectError } from './lib/harness.mjs';

const DAY = 24 * 3600 * 1000;
const h = useSluice();

test('the commitment: off, on, set to end, kept across a restart', async () => {
  let r = await send(h.c, 'DescribeAccountSettings', {});
  assert.deepEqual(r.MinimumThroughputBillingCommitment, { Status: 'DISABLED' });
  await expectError(send(h.c, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'MAYBE' } }),
    'ValidationException', /minimumThroughputBillingCommitment.status/);
  assert.deepEqual((await send(h.c, 'DescribeAccountSettings', {})).MinimumThroughputBillingCommitment,
    { Status: 'DISABLED' }, 'the refused update changed nothing');
  const t0 = Date.now();
  r = await send(h.c, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'ENABLED' } });
  const m = r.MinimumThroughputBillingCommitment;
  assert.equal(m.Status, 'ENABLED');
  assert.ok(Math.abs(m.StartedAt.getTime() - t0) < 5000);
  assert.equal(m.EarliestAllowedEndAt.getTime() - m.StartedAt.getTime(), DAY);
  r = await send(h.c, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'ENABLED' } });
  assert.equal(r.MinimumThroughputBillingCommitment.StartedAt.getTime(), m.StartedAt.getTime(), 'enabling again changes nothing');
  r = await send(h.c, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'DISABLED' } });
  assert.equal(r.MinimumThroughputBillingCommitment.Status, 'ENABLED_UNTIL_EARLIEST_ALLOWED_END');
  assert.equal(r.MinimumThroughputBillingCommitment.EndedAt.getTime(), m.EarliestAllowedEndAt.getTime());
  h.c.destroy();
  h.srv = await h.srv.restart();
  h.c = client(h.srv.endpoint);
  r = await send(h.c, 'DescribeAccountSettings', {});
  assert.equal(r.MinimumThroughputBillingCommitment.Status, 'ENABLED_UNTIL_EARLIEST_ALLOWED_END', 'persisted');
  assert.equal(r.MinimumThroughputBillingCommitment.StartedAt.getTime(), m.StartedAt.getTime());
  r = await send(h.c, 'UpdateAccountSettings', { MinimumThroughputBillingCommitment: { Status: 'ENABLED' } });
  assert.equal(r.MinimumThroughputBillingCommitment.Status, 'ENABLED', 'renewed');
  assert.equal(r.MinimumThroughputBillingCommitment.EndedAt, undefined);
});
