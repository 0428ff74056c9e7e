// Security and bad input, against a real daemon process: every control route needs the token; the data
// plane refuses a wrong token; malformed and oversized frames close only that connection; bad requests get
// clear coded errors and the daemon keeps serving.

import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon, startDaemonWithModel, type TestDaemon } from '../harness/daemon.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { encodeControl, encodeHeader, FrameType, HEADER_BYTES } from '../../src/protocol/frames.js';
import { DataConnection } from '../../src/transport/data-connection.js';

/** Every control route, with a sample path. */
const ROUTES: [string, string][] = [
  ['GET', '/v1/info'],
  ['GET', '/v1/replicas'],
  ['GET', '/metrics'],
  ['GET', '/v1/artifacts'],
  ['GET', '/v1/artifacts/tc1:x'],
  ['GET', '/v1/artifacts/tc1:x/files/config.json'],
  ['GET', '/v1/artifacts/tc1:x/placement'],
  ['GET', '/v1/keys'],
  ['GET', '/v1/keys/k'],
  ['PUT', '/v1/keys/k'],
  ['DELETE', '/v1/keys/k'],
  ['POST', '/v1/imports'],
  ['POST', '/v1/uploads'],
  ['PUT', '/v1/uploads/u/files/f.safetensors'],
  ['POST', '/v1/uploads/u/commit'],
  ['DELETE', '/v1/uploads/u'],
  ['POST', '/v1/plans'],
  ['POST', '/v1/shm-leases'],
  ['DELETE', '/v1/shm-leases/l'],
  ['GET', '/v1/no-such-route'],
];

/** Sends raw bytes to the data plane; resolves with everything the daemon wrote back before closing. */
function raw(d: TestDaemon, bytes: Buffer): Promise<Buffer> {
  const [host, port] = [
    d.dataAddress.slice(0, d.dataAddress.lastIndexOf(':')),
    Number(d.dataAddress.slice(d.dataAddress.lastIndexOf(':') + 1)),
  ];
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = netConnect({ host, port }, () => s.write(bytes));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
    setTimeout(() => s.destroy(), 8000).unref();
  });
}

/** The codes of the ERROR frames in a byte stream from the daemon. */
function errorCodes(stream: Buffer): string[] {
  const codes: string[] = [];
  for (let at = 0; at + HEADER_BYTES <= stream.length;) {
    const type = stream[at + 5];
    const len = stream.readUInt32LE(at + 12);
    if (type === FrameType.ERROR)
      codes.push((JSON.parse(stream.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len).toString()) as { code: string }).code);
    at += HEADER_BYTES + len;
  }
  return codes;
}

test('auth: every control route answers 401 without a token or with a wrong one; /healthz is public', async (t) => {
  const d = await startDaemon(t);
  for (const [method, path] of ROUTES) {
    for (const header of [undefined, 'Bearer wrong-token-wrong-token', `Basic ${d.token}`, `Bearer ${d.token}x`]) {
      const res = await fetch(d.controlUrl + path, { method, headers: header === undefined ? {} : { authorization: header } });
      assert.equal(res.status, 401, `${method} ${path} with ${header ?? 'no header'}`);
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'TC_ERR_AUTH');
    }
  }
  const health = await fetch(`${d.controlUrl}/healthz`);
  assert.equal(health.status, 200);
  const ok = await fetch(`${d.controlUrl}/v1/info`, { headers: { authorization: `Bearer ${d.token}` } });
  assert.equal(ok.status, 200);
  // The CLI with a wrong token: a coded error, exit 2 is for bad input, auth is a failure (1).
  const dir = tempDir(t);
  writeFileSync(join(dir, 'token'), 'not-the-token-at-all\n');
  const r = await runCli(['ls', '--daemon', d.controlUrl, '--token-file', join(dir, 'token')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /TC_ERR_AUTH/);
});

test('data plane: wrong token, malformed and oversized frames close that connection only; the daemon keeps serving', async (t) => {
  const { model, daemon: d, client } = await startDaemonWithModel(t);
  await client.importModel(model, { key: 'm' });
  await assert.rejects(DataConnection.open(d.dataAddress, 'wrong-token-0123456789'), { code: 'TC_ERR_AUTH' });
  assert.deepEqual(errorCodes(await raw(d, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(64)))), ['TC_ERR_PROTOCOL']);
  const hello = encodeControl(FrameType.HELLO, 0, { version: 1, token: d.token });
  assert.deepEqual(errorCodes(await raw(d, Buffer.concat([hello, encodeHeader(FrameType.LOAD, 1, 1 << 30)]))), ['TC_ERR_PROTOCOL']);
  assert.deepEqual(errorCodes(await raw(d, Buffer.concat([hello, encodeHeader(FrameType.DATA, 1, 100), Buffer.alloc(100)]))), [
    'TC_ERR_PROTOCOL',
  ]);
  assert.deepEqual(
    errorCodes(await raw(d, encodeControl(FrameType.LOAD, 1, { artifactId: 'x' }))),
    ['TC_ERR_PROTOCOL'],
    'LOAD before HELLO',
  );
  const badLoad = await raw(d, Buffer.concat([hello, encodeControl(FrameType.LOAD, 1, { artifactId: 5 })]));
  assert.deepEqual(errorCodes(badLoad), ['TC_ERR_PROTOCOL']);
  // Fine-grained request errors keep the connection: an unknown artifact, then a good load on the same connection.
  const conn = await DataConnection.open(d.dataAddress, d.token);
  await assert.rejects(
    conn.load({ artifactId: 'tc1:nope', view: undefined, viewId: undefined, start: 0, end: 10, timeoutMs: 5000 }, new Uint8Array(10)),
    {
      code: 'TC_ERR_NOT_FOUND',
    },
  );
  const plan = await client.plan('m', { tensors: ['model.norm.weight'] });
  const spec = { 'model.norm.weight': null };
  await assert.rejects(
    conn.load(
      { artifactId: plan.artifactId, view: spec, viewId: plan.viewId, start: 0, end: 1 << 20, timeoutMs: 5000 },
      new Uint8Array(1 << 20),
    ),
    {
      code: 'TC_ERR_INVALID_ARGUMENT',
    },
  );
  await assert.rejects(
    conn.load(
      { artifactId: plan.artifactId, view: spec, viewId: 'f'.repeat(64), start: 0, end: 512, timeoutMs: 5000 },
      new Uint8Array(512),
    ),
    {
      code: 'TC_ERR_INVALID_ARGUMENT',
    },
  );
  const ok = await conn.load(
    { artifactId: plan.artifactId, view: spec, viewId: plan.viewId, start: 0, end: 512, timeoutMs: 5000 },
    new Uint8Array(512),
  );
  assert.equal(ok.bytes, 512);
  conn.close();
  const loaded = await client.load('m', { tp: { size: 2, rank: 1 } });
  assert.equal(loaded.tensors.length, 21);
  const metrics = await fetch(`${d.controlUrl}/metrics`, { headers: { authorization: `Bearer ${d.token}` } }).then((r) => r.text());
  assert.match(metrics, /tensorcast_protocol_errors_total [4-9]/);
});

test('bad input through the CLI: unknown key, bad views, malformed models, bad config; clear codes, nothing written', async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'm');
  await writeSyntheticModel(model, TINY_LLAMA);
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir] });
  assert.equal((await runCli(['import', model, '--key', 'm', ...d.clientArgs])).code, 0);
  const out = join(dir, 'out');
  mkdirSync(out);
  const cases: [string[], number, RegExp][] = [
    [['load', 'no-such-key', '--out', join(out, 'x.safetensors')], 2, /TC_ERR_NOT_FOUND.*no-such-key/],
    [['load', 'm', '--out', join(out, 'x.safetensors'), '--view', '{"model.norm.weight": [[0, 9999]]}'], 2, /TC_ERR_VIEW_OUT_OF_RANGE/],
    [['load', 'm', '--out', join(out, 'x.safetensors'), '--view', '{"ghost": null}'], 2, /TC_ERR_VIEW_UNKNOWN_TENSOR.*ghost/],
    [['load', 'm', '--out', join(out, 'x.safetensors'), '--tp-size', '3', '--tp-rank', '0'], 2, /TC_ERR_LAYOUT_NOT_DIVISIBLE/],
    [['load', 'm', '--out', join(out, 'x.safetensors'), '--tp-size', '2'], 2, /TC_ERR_INVALID_ARGUMENT/],
    [['import', join(dir, 'missing'), '--key', 'x'], 2, /TC_ERR_NOT_FOUND/],
  ];
  const bad = join(dir, 'bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'model.safetensors'), Buffer.concat([Buffer.from([12, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a":[1,2]} ')]));
  cases.push([['import', bad, '--key', 'x'], 2, /TC_ERR_FORMAT_INVALID_ENTRY.*model\.safetensors/]);
  for (const [args, code, pattern] of cases) {
    const r = await runCli([...args, ...d.clientArgs]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
  }
  assert.deepEqual((await import('node:fs')).readdirSync(out), []);
  // The daemon refuses in-place imports outside its roots, over the API too.
  const res = await fetch(`${d.controlUrl}/v1/imports`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ path: '/etc' }),
  });
  assert.equal(res.status, 403);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'TC_ERR_FORBIDDEN');
  const traversal = await fetch(`${d.controlUrl}/v1/imports`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ path: `${dir}/../../etc` }),
  });
  assert.equal(traversal.status, 403);
  // Bad daemon configuration: every violation at once, exit 2; a public bind without a token is refused.
  const cfg = await runCli(['serve', '--listen', 'nowhere', '--memory-budget', 'lots', '--data-dir', join(dir, 'dd')]);
  assert.equal(cfg.code, 2);
  assert.match(cfg.stderr, /TC_ERR_CONFIG[\s\S]*listen: expected HOST:PORT[\s\S]*memoryBudget: expected a byte size/);
  const pub = await runCli(['serve', '--listen', '0.0.0.0:0', '--data-dir', join(dir, 'dd2')], { TENSORCAST_TOKEN: '' });
  assert.equal(pub.code, 2);
  assert.match(pub.stderr, /refusing to listen on 0\.0\.0\.0/);
});
