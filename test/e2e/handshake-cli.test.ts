// `tensorcast handshake publish|get|ls` against a `handshake serve` process: outputs, exact bytes, exit codes,
// --keep-alive past the TTL; and the Python cross-check: a payload written by Python's `msgpack` is published
// by the CLI, read back by the SDK, and `get --out` decodes in Python to the same dict.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { handshakes } from '../../src/handshake/client/index.js';
import { encodeRankMetadata } from '../../src/handshake/rank-metadata.js';
import { startHandshakeListener, type HandshakeListener } from '../harness/handshake-listener.js';
import { CLI, runCli } from '../helpers/cli.js';
import { rankMeta, waitFor } from '../helpers/handshake.js';
import { missingPython, pythonWith, runPython } from '../helpers/python.js';
import { skipOrFail } from '../helpers/require.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'cli-test-token-42';

async function setup(
  t: TestContext,
  serveArgs: readonly string[] = [],
): Promise<{ dir: string; listener: HandshakeListener; flags: string[] }> {
  const dir = tempDir(t);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const listener = await startHandshakeListener(t, { args: ['--token-file', tokenFile, ...serveArgs] });
  return { dir, listener, flags: ['--url', listener.url, '--token-file', tokenFile] };
}

test('handshake publish, get (summary, --json, --out) and ls (table, --json)', async (t) => {
  const { dir, flags } = await setup(t);
  const meta = { ...rankMeta('cli-engine', 2, 1, { tpSize: 4 }), extra: { model: 'llama-3-8b', layers: 32 } };
  const file = join(dir, 'rank.msgpack');
  writeFileSync(file, encodeRankMetadata(meta));
  const pub = await runCli(['handshake', 'publish', 'cli-engine', '--tp-rank', '2', '--dp-rank', '1', '--file', file, ...flags]);
  assert.equal(pub.code, 0, pub.stderr);
  assert.match(pub.stdout, /^published cli-engine tp 2 dp 1 incarnation inc-1 hash hash-a/);

  const out = join(dir, 'got.msgpack');
  const get = await runCli(['handshake', 'get', 'cli-engine', '--tp-rank', '2', '--dp-rank', '1', '--out', out, ...flags]);
  assert.equal(get.code, 0, get.stderr);
  assert.deepEqual(readFileSync(out), readFileSync(file), '--out writes the published bytes exactly');

  const json = await runCli(['handshake', 'get', 'cli-engine', '--tp-rank', '2', '--dp-rank', '1', '--json', ...flags]);
  assert.equal(json.code, 0, json.stderr);
  const decoded = JSON.parse(json.stdout) as Record<string, unknown>;
  assert.equal(decoded['engine_id'], 'cli-engine');
  assert.equal(decoded['tp_rank'], 2);
  assert.equal(decoded['agent_metadata'], Buffer.from(meta.agentMetadata).toString('base64'));
  assert.deepEqual(decoded['kv_caches_base_addr'], meta.kvCachesBaseAddr.map(String));
  assert.deepEqual(decoded['extra'], { model: 'llama-3-8b', layers: 32 });

  const human = await runCli(['handshake', 'get', 'cli-engine', '--tp-rank', '2', '--dp-rank', '1', '--expect-hash', 'hash-a', ...flags]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /engine\s+cli-engine/);
  assert.match(human.stdout, /tp 2 of 4, dp 1/);
  assert.match(human.stdout, /1024 bytes of agent metadata/);

  const ls = await runCli(['handshake', 'ls', ...flags]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /^ENGINE\s+INCARNATION\s+HASH\s+TP\s+RANKS\s+BYTES\s+EXPIRES/);
  assert.match(ls.stdout, /cli-engine\s+inc-1\s+hash-a\s+4\s+2\/1\s+\d+/);
  const lsJson = JSON.parse((await runCli(['handshake', 'ls', '--json', ...flags])).stdout) as { engines: { engineId: string }[] };
  assert.deepEqual(
    lsJson.engines.map((e) => e.engineId),
    ['cli-engine'],
  );
});

test('handshake CLI exit codes: 2 for bad input and not found, 1 for incompatible and auth; the TC_ERR code on stderr', async (t) => {
  const { dir, flags, listener } = await setup(t);
  const file = join(dir, 'rank.msgpack');
  writeFileSync(file, encodeRankMetadata(rankMeta('exit-engine', 0, 0)));
  assert.equal(
    (await runCli(['handshake', 'publish', 'exit-engine', '--tp-rank', '0', '--dp-rank', '0', '--file', file, ...flags])).code,
    0,
  );
  const cases: { args: string[]; code: number; error: string }[] = [
    { args: ['get', 'no-such-engine', '--tp-rank', '0', '--dp-rank', '0'], code: 2, error: 'TC_ERR_NOT_FOUND' },
    { args: ['get', 'exit-engine', '--tp-rank', '0', '--dp-rank', '0', '--expect-hash', 'hash-z'], code: 1, error: 'TC_ERR_INCOMPATIBLE' },
    { args: ['get', 'exit-engine', '--tp-rank', 'x', '--dp-rank', '0'], code: 2, error: 'TC_ERR_INVALID_ARGUMENT' },
    // The flags must agree with the payload.
    { args: ['publish', 'other-engine', '--tp-rank', '0', '--dp-rank', '0', '--file', file], code: 2, error: 'TC_ERR_INVALID_ARGUMENT' },
    {
      args: ['publish', 'exit-engine', '--tp-rank', '0', '--dp-rank', '0', '--file', join(dir, 'missing')],
      code: 2,
      error: 'TC_ERR_NOT_FOUND',
    },
  ];
  const garbage = join(dir, 'garbage.msgpack');
  writeFileSync(garbage, Buffer.from([0x82, 0xa1, 0x76, 0xc1]));
  cases.push({
    args: ['publish', 'exit-engine', '--tp-rank', '0', '--dp-rank', '0', '--file', garbage],
    code: 2,
    error: 'TC_ERR_MALFORMED',
  });
  for (const c of cases) {
    const r = await runCli(['handshake', ...c.args, ...flags]);
    assert.equal(r.code, c.code, `${c.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error ${c.error}:`), c.args.join(' '));
  }
  const wrongToken = join(dir, 'wrong');
  writeFileSync(wrongToken, 'not-the-token');
  const auth = await runCli(['handshake', 'ls', '--url', listener.url, '--token-file', wrongToken]);
  assert.equal(auth.code, 1);
  assert.match(auth.stderr, /^error TC_ERR_AUTH:/);
  // The token from the environment works as the flag does.
  const env = await runCli(['handshake', 'ls', '--url', listener.url], { TENSORCAST_HANDSHAKE_TOKEN: TOKEN });
  assert.equal(env.code, 0, env.stderr);
  const unreachable = await runCli(['handshake', 'ls', '--url', 'http://127.0.0.1:1']);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /^error TC_ERR_UNAVAILABLE:/);
});

test('handshake publish --keep-alive keeps the rank past its TTL and stops cleanly on SIGTERM', async (t) => {
  const { dir, flags, listener } = await setup(t, ['--handshake-ttl', '1']);
  const file = join(dir, 'rank.msgpack');
  const meta = rankMeta('alive-engine', 0, 0);
  writeFileSync(file, encodeRankMetadata(meta));
  const child = spawn(
    process.execPath,
    [
      CLI,
      'handshake',
      'publish',
      'alive-engine',
      '--tp-rank',
      '0',
      '--dp-rank',
      '0',
      '--file',
      file,
      '--keep-alive',
      '--renew-every',
      '200',
      ...flags,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  t.after(() => child.kill('SIGKILL'));
  await waitFor('the published line', () => out.includes('published alive-engine'), 60_000);
  const hs = handshakes({ url: listener.url, token: TOKEN, failurePolicy: 'fail' });
  t.after(() => hs.close());
  const first = await hs.engine('alive-engine');
  const firstExpiry = first.ranks[0]!.expiresAtMs;
  // Wait past the first expiry (polled, no timing asserted): the rank is still live, with a later expiry.
  await waitFor('the first expiry to pass', () => Date.now() > firstExpiry + 300, 60_000);
  assert.deepEqual(await hs.fetchRank('alive-engine', { tpRank: 0, dpRank: 0 }).then((a) => a.meta), meta);
  assert.ok((await hs.engine('alive-engine')).ranks[0]!.expiresAtMs > firstExpiry);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, out);
  assert.match(out, /stopped on SIGTERM: \d+ renewals/);
});

const PY_WRITE = `
import msgpack, sys, os
blob = bytes(range(256)) * 256  # 64 KiB, every byte value
payload = {
  "v": 1, "engine_id": "py-engine", "tp_rank": 1, "dp_rank": 0,
  "compatibility_hash": "vllm-0.9.2+nixl-abc123", "incarnation": "py-inc-7",
  "agent_metadata": blob,
  "kv_caches_base_addr": [0x7f3a00000000, 0xfffffffffffffff0],
  "block_lens": [65536, 65536], "block_strides": [131072, 131072],
  "num_blocks": 2048, "block_size": 16, "kv_cache_layout": "HND",
  "tp_size": 2, "device_id": 1,
  "extra": {"attn_backend": "FLASH_ATTN", "num_layers": 32},
}
open(sys.argv[1], "wb").write(msgpack.packb(payload, use_bin_type=True))
`;

const PY_COMPARE = `
import msgpack, sys
ours = msgpack.unpackb(open(sys.argv[1], "rb").read(), raw=False)
back = msgpack.unpackb(open(sys.argv[2], "rb").read(), raw=False)
assert ours == back, (ours, back)
sdk = msgpack.unpackb(open(sys.argv[3], "rb").read(), raw=False)
assert sdk["agent_metadata"] == bytes(range(256)) * 4, "SDK blob"
assert sdk["kv_caches_base_addr"] == [2**64 - 1, 0], sdk["kv_caches_base_addr"]
assert sdk["extra"] == {"note": "from typescript"}, sdk["extra"]
print("ok", len(back["agent_metadata"]))
`;

test('python cross-check: a payload written by msgpack in Python, published by the CLI, read by the SDK and by Python', async (t) => {
  const py = pythonWith(['msgpack']);
  if (py === undefined) return skipOrFail(t, missingPython(['msgpack']));
  const { dir, flags, listener } = await setup(t);
  const written = join(dir, 'py.msgpack');
  runPython(py, PY_WRITE, [written]);
  const pub = await runCli(['handshake', 'publish', 'py-engine', '--tp-rank', '1', '--dp-rank', '0', '--file', written, ...flags]);
  assert.equal(pub.code, 0, pub.stderr);

  const hs = handshakes({ url: listener.url, token: TOKEN, expectHash: 'vllm-0.9.2+nixl-abc123' });
  t.after(() => hs.close());
  const meta = await hs.get('py-engine', { tpRank: 1, dpRank: 0 });
  assert.equal(meta.incarnation, 'py-inc-7');
  assert.deepEqual(
    Buffer.from(meta.agentMetadata),
    Buffer.concat(Array.from({ length: 256 }, () => Buffer.from(Array.from({ length: 256 }, (_, i) => i)))),
  );
  assert.deepEqual(meta.kvCachesBaseAddr, [0x7f3a00000000n, 0xfffffffffffffff0n]);
  assert.deepEqual(meta.blockStrides, [131072, 131072]);
  assert.deepEqual(meta.extra, { attn_backend: 'FLASH_ATTN', num_layers: 32 });

  const back = join(dir, 'back.msgpack');
  const get = await runCli(['handshake', 'get', 'py-engine', '--tp-rank', '1', '--dp-rank', '0', '--out', back, ...flags]);
  assert.equal(get.code, 0, get.stderr);
  // And the other way: a payload the SDK encodes decodes in Python to the values given.
  const sdkFile = join(dir, 'sdk.msgpack');
  writeFileSync(
    sdkFile,
    encodeRankMetadata({
      ...rankMeta('ts-engine', 0, 0),
      agentMetadata: Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256)),
      kvCachesBaseAddr: [2n ** 64n - 1n, 0n],
      extra: { note: 'from typescript' },
    }),
  );
  assert.equal(runPython(py, PY_COMPARE, [written, back, sdkFile]).trim(), 'ok 65536');
});
