import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectorError, redactConnectorUrl, scrubSecrets, urlSecrets } from './connector-errors.js';
import { createConnector } from './create-connector.js';

test('connector URLs: passwords and secret query values are redacted, the rest stays as written', () => {
  const cases: [string, string][] = [
    ['redis://:hunter22@10.0.0.5:6379/llama?db=2', 'redis://:***@10.0.0.5:6379/llama?db=2'],
    ['rediss://user:p%40ss@h/m', 'rediss://user:***@h/m'],
    ['redis://127.0.0.1:6379/m', 'redis://127.0.0.1:6379/m'],
    [
      's3://b/p?endpoint=http://127.0.0.1:9000&accessKeyId=AK&secretAccessKey=hunter22&sessionToken=tok123',
      's3://b/p?endpoint=http://127.0.0.1:9000&accessKeyId=AK&secretAccessKey=***&sessionToken=***',
    ],
    ['s3://b/p?SECRETACCESSKEY=hunter22', 's3://b/p?SECRETACCESSKEY=***'],
    ['s3://b/p?%73ecretAccessKey=hunter22', 's3://b/p?%73ecretAccessKey=***'],
    ['file:///var/models', 'file:///var/models'],
  ];
  for (const [url, redacted] of cases) assert.equal(redactConnectorUrl(url), redacted, url);
  assert.ok(!redactConnectorUrl('weird://u:hunter22@h%zz/x').includes('hunter22'));
  assert.deepEqual(urlSecrets('s3://b/p?accessKeyId=AK&secretAccessKey=hunter22').sort(), ['hunter22']);
  assert.equal(scrubSecrets('auth hunter22 failed (hunter22)', ['hunter22']), 'auth *** failed (***)');
});

test('connector errors: a driver message is scrubbed, and the driver error is kept only without secrets', () => {
  const driver = new Error('WRONGPASS hunter22 rejected');
  const withSecret = connectorError('TC_ERR_AUTH', 'redis://:***@h/m', 'connect', driver, ['hunter22']);
  assert.equal(withSecret.code, 'TC_ERR_AUTH');
  assert.equal(withSecret.message, 'redis://:***@h/m: connect: WRONGPASS *** rejected');
  assert.equal(withSecret.cause, undefined);
  assert.equal(connectorError('TC_ERR_BACKEND', 'redis://h/m', 'get', driver, []).cause, driver);
});

test('createConnector: an unknown scheme or a non-URL is TC_ERR_INVALID_ARGUMENT without the password', async () => {
  for (const url of ['ftp://u:hunter22@h/x', 'hunter22', '', 'gs://b/x?secretAccessKey=hunter22']) {
    await assert.rejects(createConnector(url), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'TC_ERR_INVALID_ARGUMENT');
      assert.ok(!e.message.includes('hunter22') || url === 'hunter22', e.message);
      return true;
    });
  }
  await assert.rejects(createConnector('s3://b/p', { concurrency: 0 }), { code: 'TC_ERR_INVALID_ARGUMENT' });
  await assert.rejects(createConnector('s3://b/p', { chunkBytes: 1.5 }), { code: 'TC_ERR_INVALID_ARGUMENT' });
  await assert.rejects(createConnector('s3://b/p', { retry: { attempts: 0 } }), { code: 'TC_ERR_INVALID_ARGUMENT' });
});
