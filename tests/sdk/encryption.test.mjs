// StartStreamEncryption / StopStreamEncryption through @aws-sdk/client-kinesis
// against the real binary: the key id recorded and reported by
// DescribeStream(Summary) and by every write's EncryptionType, the stream
// UPDATING then ACTIVE, validation, and the key surviving a restart.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  useSluice, startSluice, client, send, expectError, createActive, streamName, waitStatus,
} from './lib/harness.mjs';

const h = useSluice();

const summary = async (name) => (await send(h.c, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
const data = new TextEncoder().encode('secret');
const writes = async (name) => {
  const one = await send(h.c, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: data });
  const many = await send(h.c, 'PutRecords', { StreamName: name, Records: [{ PartitionKey: 'k', Data: data }] });
  assert.equal(one.EncryptionType, many.EncryptionType, 'PutRecord and PutRecords agree');
  return one.EncryptionType;
};

describe('stream encryption', () => {
  test('start then stop: KeyId and EncryptionType everywhere, UPDATING then ACTIVE', async () => {
    const name = streamName('enc');
    await createActive(h.c, name, { ShardCount: 1 });
    let s = await summary(name);
    assert.equal(s.EncryptionType, 'NONE');
    assert.equal(s.KeyId, undefined);
    assert.equal(await writes(name), 'NONE');

    const r = await send(h.c, 'StartStreamEncryption', { StreamName: name, EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' });
    assert.equal(r.$metadata.httpStatusCode, 200);
    await waitStatus(h.c, name, 'ACTIVE');
    s = await summary(name);
    assert.equal(s.EncryptionType, 'KMS');
    assert.equal(s.KeyId, 'alias/aws/kinesis');
    const d = (await send(h.c, 'DescribeStream', { StreamName: name })).StreamDescription;
    assert.equal(d.EncryptionType, 'KMS');
    assert.equal(d.KeyId, 'alias/aws/kinesis');
    assert.equal(await writes(name), 'KMS');

    await send(h.c, 'StopStreamEncryption', { StreamName: name, EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' });
    await waitStatus(h.c, name, 'ACTIVE');
    s = await summary(name);
    assert.equal(s.EncryptionType, 'NONE');
    assert.equal(s.KeyId, undefined);
    assert.equal(await writes(name), 'NONE');
  });

  test('the stream is UPDATING while the change rolls out', async () => {
    const s2 = await startSluice({ args: ['--stream-delay', '1500ms'] });
    const c2 = client(s2.endpoint);
    try {
      const name = streamName('encu');
      await send(c2, 'CreateStream', { StreamName: name, ShardCount: 1 });
      await waitStatus(c2, name, 'ACTIVE');
      await send(c2, 'StartStreamEncryption', { StreamName: name, EncryptionType: 'KMS', KeyId: 'k1' });
      const st = (await send(c2, 'DescribeStreamSummary', { StreamName: name })).StreamDescriptionSummary;
      assert.equal(st.StreamStatus, 'UPDATING');
      // Writes keep working; control-plane changes wait.
      await send(c2, 'PutRecord', { StreamName: name, PartitionKey: 'k', Data: data });
      await expectError(
        send(c2, 'StopStreamEncryption', { StreamName: name, EncryptionType: 'KMS', KeyId: 'k1' }),
        'ResourceInUseException',
      );
      await waitStatus(c2, name, 'ACTIVE');
    } finally {
      c2.destroy();
      await s2.stop();
    }
  });

  test('validation: KMS only, KeyId required, missing streams', async () => {
    const name = streamName('encv');
    await createActive(h.c, name, { ShardCount: 1 });
    await expectError(
      send(h.c, 'StartStreamEncryption', { StreamName: name, EncryptionType: 'NONE', KeyId: 'k' }),
      'InvalidArgumentException', /NONE is not valid for StartStreamEncryption/,
    );
    await expectError(
      send(h.c, 'StartStreamEncryption', { StreamName: name, EncryptionType: 'KMS' }),
      'ValidationException', /at 'keyId' failed to satisfy constraint: Member must not be null/,
    );
    await expectError(
      send(h.c, 'StartStreamEncryption', { StreamName: name, EncryptionType: 'AES', KeyId: 'k' }),
      'ValidationException', /at 'encryptionType' failed to satisfy constraint: Member must satisfy enum value set: \[NONE, KMS\]/,
    );
    await expectError(
      send(h.c, 'StartStreamEncryption', { StreamName: streamName('nope'), EncryptionType: 'KMS', KeyId: 'k' }),
      'ResourceNotFoundException',
    );
    assert.equal((await summary(name)).EncryptionType, 'NONE');
  });

  test('the key survives a restart', async () => {
    const name = streamName('encr');
    await createActive(h.c, name, { ShardCount: 1 });
    await send(h.c, 'StartStreamEncryption', { StreamName: name, EncryptionType: 'KMS', KeyId: 'arn:aws:kms:us-east-1:123456789012:key/abc' });
    await waitStatus(h.c, name, 'ACTIVE');
    h.c.destroy();
    const st = await h.srv.stop({ keepData: true });
    assert.equal(st.code, 0);
    h.srv = await startSluice({ dataDir: h.srv.dataDir });
    h.c = client(h.srv.endpoint);
    const s = await summary(name);
    assert.equal(s.EncryptionType, 'KMS');
    assert.equal(s.KeyId, 'arn:aws:kms:us-east-1:123456789012:key/abc');
    assert.equal(s.StreamStatus, 'ACTIVE');
  });
});
