// Error mapping on the control API of a real daemon: a full disk during an upload is TC_ERR_NO_SPACE
// (HTTP 507, retryable) and the SDK's next request answers at once; a deeply nested JSON body and a NUL
// byte in an import path are TC_ERR_INVALID_ARGUMENT (400).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { ControlClient } from '../../src/transport/control-client.js';
import { connect } from '../../src/client/tensorcast-client.js';

async function post(d: TestDaemon, path: string, body: string): Promise<{ status: number; code: string | undefined }> {
  const res = await fetch(`${d.controlUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
    body,
  });
  const json = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: json.error?.code };
}

/** A valid safetensors file of one U8 tensor of `bytes` bytes (sparse on disk). */
function bigSafetensors(path: string, bytes: number): void {
  let header = Buffer.from(JSON.stringify({ w: { dtype: 'U8', shape: [bytes], data_offsets: [0, bytes] } }));
  header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(path, Buffer.concat([prefix, header]));
  truncateSync(path, 8 + header.length + bytes);
}

test('deep JSON nesting and a NUL byte in an import path are TC_ERR_INVALID_ARGUMENT (400)', async (t) => {
  const dir = tempDir(t);
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir] });
  const deepView = `{"artifactId":"tc1:x","viewId":null,"view":{"t":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`;
  assert.deepEqual(await post(d, '/v1/shm-leases', deepView), { status: 400, code: 'TC_ERR_INVALID_ARGUMENT' });
  const deepObject = `{"path":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`;
  assert.deepEqual(await post(d, '/v1/imports', deepObject), { status: 400, code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.deepEqual(await post(d, '/v1/imports', JSON.stringify({ path: `${dir}/a\u0000b` })), {
    status: 400,
    code: 'TC_ERR_INVALID_ARGUMENT',
  });
  assert.deepEqual(await post(d, '/v1/imports', '{"path": '), { status: 400, code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.equal((await fetch(`${d.controlUrl}/healthz`)).status, 200);
});

test('a failed upload answered early closes its connection: the next request on the SDK answers at once', async (t) => {
  const dir = tempDir(t);
  const d = await startDaemon(t);
  const file = join(dir, 'big.bin');
  bigSafetensors(file, 256 << 20);
  const control = new ControlClient(d.controlUrl, d.token);
  for (let i = 0; i < 3; i++) {
    // An unknown session: the daemon answers 404 before reading the 256 MB body.
    await assert.rejects(control.putFile('/v1/uploads/no-such-upload/files/x.safetensors', file), { code: 'TC_ERR_NOT_FOUND' });
    const t0 = Date.now();
    await control.json('GET', '/v1/info', undefined, 30_000);
    assert.ok(Date.now() - t0 < 2000, `the request after a failed upload took ${Date.now() - t0} ms`);
  }
});

test('ENOSPC during an upload: TC_ERR_NO_SPACE (507, retryable), staging removed, the next request answers at once', async (t) => {
  const dir = tempDir(t);
  const dataDir = mkdtempSync(join(tmpdir(), 'tensorcast-nospace-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', dataDir], { stdio: 'pipe' });
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    t.skip(`SKIPPED LOUDLY: cannot mount an 8 MB tmpfs to fill the disk (needs root): ${(error as Error).message.split('\n')[0]}`);
    return;
  }
  const started: { daemon?: TestDaemon } = {};
  t.after(async () => {
    await started.daemon?.stop('SIGKILL');
    execFileSync('umount', ['-l', dataDir]);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const d = await startDaemon(t, { dataDir });
  started.daemon = d;
  const model = join(dir, 'm');
  mkdirSync(model);
  bigSafetensors(join(model, 'model.safetensors'), 64 << 20);
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  await assert.rejects(client.importModel(model, { via: 'upload' }), (e: { code?: string; retryable?: boolean }) => {
    assert.equal(e.code, 'TC_ERR_NO_SPACE');
    assert.equal(e.retryable, true);
    return true;
  });
  const t0 = Date.now();
  await client.listArtifacts();
  assert.ok(Date.now() - t0 < 2000, `the request after ENOSPC took ${Date.now() - t0} ms`);
  assert.deepEqual(
    readdirSync(join(dataDir, 'artifacts')).filter((n) => n.startsWith('.staging-')),
    [],
  );
  // The raw status of the same failure.
  const { uploadId } = await client.control.json<{ uploadId: string }>('POST', '/v1/uploads');
  const res = await fetch(`${d.controlUrl}/v1/uploads/${uploadId}/files/model.safetensors`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/octet-stream' },
    body: Buffer.alloc(16 << 20),
  });
  assert.equal(res.status, 507);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'TC_ERR_NO_SPACE');
});
