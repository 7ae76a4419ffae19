// PutResourcePolicy / GetResourcePolicy / DeleteResourcePolicy through
// @aws-sdk/client-kinesis against the real binary: stream and consumer ARNs,
// the policy stored and returned as given, validation, and persistence.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  useSluice, startSluice, client, send, expectError, createActive, streamName, waitConsumer,
} from './lib/harness.mjs';

const h = useSluice();

const policyOf = async (ResourceARN) => (await send(h.c, 'GetResourcePolicy', { ResourceARN })).Policy;
const doc = (who) => JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::123456789012:role/${who}` }, Action: 'kinesis:GetRecords', Resource: '*' }],
});

describe('resource policies', () => {
  test('stream and consumer ARNs: put, get, replace, delete, restart', async () => {
    const name = streamName('pol');
    await createActive(h.c, name, { ShardCount: 1 });
    const sarn = (await send(h.c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamARN;
    const reg = await send(h.c, 'RegisterStreamConsumer', { StreamARN: sarn, ConsumerName: 'r' });
    const carn = reg.Consumer.ConsumerARN;
    await waitConsumer(h.c, carn);

    assert.equal(await policyOf(sarn), '{}', 'no policy: an empty document');
    await send(h.c, 'PutResourcePolicy', { ResourceARN: sarn, Policy: doc('writer') });
    await send(h.c, 'PutResourcePolicy', { ResourceARN: carn, Policy: doc('reader') });
    assert.equal(await policyOf(sarn), doc('writer'));
    assert.equal(await policyOf(carn), doc('reader'));
    await send(h.c, 'PutResourcePolicy', { ResourceARN: sarn, Policy: doc('other') });
    assert.equal(await policyOf(sarn), doc('other'), 'a put replaces');

    h.c.destroy();
    assert.equal((await h.srv.stop({ keepData: true })).code, 0);
    h.srv = await startSluice({ dataDir: h.srv.dataDir });
    h.c = client(h.srv.endpoint);
    assert.equal(await policyOf(sarn), doc('other'));
    assert.equal(await policyOf(carn), doc('reader'));

    await send(h.c, 'DeleteResourcePolicy', { ResourceARN: carn });
    assert.equal(await policyOf(carn), '{}');
    assert.equal(await policyOf(sarn), doc('other'), 'the stream keeps its own');
    await send(h.c, 'DeleteResourcePolicy', { ResourceARN: carn }); // again: nothing to delete, still fine
  });

  test('errors: malformed policies and unknown resources change nothing', async () => {
    const name = streamName('pole');
    await createActive(h.c, name, { ShardCount: 1 });
    const sarn = (await send(h.c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary.StreamARN;
    await expectError(send(h.c, 'PutResourcePolicy', { ResourceARN: sarn, Policy: 'not json' }), 'InvalidArgumentException', /not a valid JSON policy document/);
    await expectError(send(h.c, 'PutResourcePolicy', { ResourceARN: sarn, Policy: '[1]' }), 'InvalidArgumentException');
    await expectError(send(h.c, 'PutResourcePolicy', { ResourceARN: sarn, Policy: 'x'.repeat(20481) }), 'ValidationException', /at 'policy' failed to satisfy constraint/);
    await expectError(send(h.c, 'GetResourcePolicy', { ResourceARN: `${sarn}-gone` }), 'ResourceNotFoundException');
    await expectError(send(h.c, 'PutResourcePolicy', { ResourceARN: `${sarn}/consumer/none:1`, Policy: '{}' }), 'ResourceNotFoundException');
    assert.equal(await policyOf(sarn), '{}');
  });
});
