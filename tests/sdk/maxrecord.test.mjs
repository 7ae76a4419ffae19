// UpdateMaxRecordSize through @aws-sdk/client-kinesis against the real
// binary: the default 1 MiB, raising a stream's limit up to 10 MiB (a 10 MiB
// record written and read back whole, the request body limit following),
// the per-stream limit in errors, the model's range, and persistence.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  useSluice, startSluice, client, send, expectError, createActive, streamName, waitStatus, validationRe, readAll,
} from './lib/harness.mjs';

const MiB = 1024 * 1024;
const h = useSluice();

const pattern = (n) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 10)) & 0xff; return b; };

test('raise a stream to 10 MiB records; other streams keep 1 MiB; kept across a restart', async () => {
  const big = streamName('big'), small = streamName('small');
  const { StreamARN } = await createActive(h.c, big, { ShardCount: 1 });
  await createActive(h.c, small, { ShardCount: 1 });
  let d = (await send(h.c, 'DescribeStreamSummary', { StreamName: big })).StreamDescriptionSummary;
  assert.equal(d.MaxRecordSizeInKiB, 1024);
  await expectError(send(h.c, 'PutRecord', { StreamName: big, PartitionKey: 'a', Data: new Uint8Array(MiB + 1) }), 'ValidationException',
    validationRe({ re: '[^\']*' }, 'data', 'have length less than or equal to 1048576'));
  await expectError(send(h.c, 'UpdateMaxRecordSize', { StreamARN, MaxRecordSizeInKiB: 512 }), 'ValidationException',
    validationRe(512, 'maxRecordSizeInKiB', 'have value greater than or equal to 1024'));
  await expectError(send(h.c, 'UpdateMaxRecordSize', { StreamARN, MaxRecordSizeInKiB: 10241 }), 'ValidationException',
    /maxRecordSizeInKiB/);
  d = (await send(h.c, 'DescribeStreamSummary', { StreamName: big })).StreamDescriptionSummary;
  assert.equal(d.MaxRecordSizeInKiB, 1024, 'refused changes changed nothing');
  assert.equal(d.StreamStatus, 'ACTIVE');

  await send(h.c, 'UpdateMaxRecordSize', { StreamARN, MaxRecordSizeInKiB: 4096 });
  d = await waitStatus(h.c, big, 'ACTIVE');
  assert.equal(d.MaxRecordSizeInKiB, 4096);
  const three = pattern(3 * MiB);
  await send(h.c, 'PutRecord', { StreamName: big, PartitionKey: 'a', Data: three });
  await expectError(send(h.c, 'PutRecord', { StreamName: big, PartitionKey: 'a', Data: new Uint8Array(4 * MiB + 1) }), 'ValidationException',
    validationRe({ re: '[^\']*' }, 'data', 'have length less than or equal to 4194304'));
  await expectError(send(h.c, 'PutRecord', { StreamName: small, PartitionKey: 'a', Data: new Uint8Array(MiB + 1) }), 'ValidationException',
    /less than or equal to 1048576/);

  await send(h.c, 'UpdateMaxRecordSize', { StreamARN, MaxRecordSizeInKiB: 10240 });
  await waitStatus(h.c, big, 'ACTIVE');
  const ten = pattern(10 * MiB);
  const r = await send(h.c, 'PutRecords', { StreamName: big, Records: [{ PartitionKey: 'b', Data: ten }] });
  assert.equal(r.FailedRecordCount, 0);
  let got = await readAll(h.c, big, 'shardId-000000000000');
  assert.equal(got.length, 2);
  assert.ok(Buffer.from(got[0].Data).equals(three));
  assert.ok(Buffer.from(got[1].Data).equals(ten), 'the 10 MiB record reads back whole');

  h.c.destroy();
  h.srv = await h.srv.restart();
  h.c = client(h.srv.endpoint);
  d = (await send(h.c, 'DescribeStreamSummary', { StreamName: big })).StreamDescriptionSummary;
  assert.equal(d.MaxRecordSizeInKiB, 10240, 'persisted');
  await send(h.c, 'PutRecord', { StreamName: big, PartitionKey: 'c', Data: ten });
  got = await readAll(h.c, big, 'shardId-000000000000');
  assert.equal(got.length, 3, 'and the body limit follows after a restart');
});
