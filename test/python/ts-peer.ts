// The TypeScript side of the Python cross-language tests (python/tests/test_*_cross.py): one command, JSON in
// argv[2], run with the SDK; its result printed as one JSON line. A TensorcastError prints
// {"error": code, "message"} (exit 0), so the tests compare the codes both languages give for the same input.
// Bytes travel as hex, uint64 addresses as decimal strings. Run as `node dist/test/python/ts-peer.js '<json>'`.

import { connect, type SampleRef } from '../../src/index.js';
import { isTensorcastError } from '../../src/core/errors.js';
import type { Dtype } from '../../src/core/dtypes.js';
import { decodeRankMetadata, encodeRankMetadata, handshakes, type RankMetadata } from '../../src/handshake/index.js';

interface WireMeta extends Omit<RankMetadata, 'agentMetadata' | 'kvCachesBaseAddr'> {
  readonly agentMetadata: string;
  readonly kvCachesBaseAddr: readonly string[];
}
interface WireTensor {
  readonly hex: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
}
interface Command {
  readonly op: string;
  readonly url?: string;
  readonly token?: string;
  readonly meta?: WireMeta;
  readonly payload?: string;
  readonly engineId?: string;
  readonly tpRank?: number;
  readonly dpRank?: number;
  readonly expectHash?: string;
  readonly storeId?: string;
  readonly storeToken?: string;
  readonly sampleId?: string;
  readonly tensors?: Readonly<Record<string, WireTensor>>;
  readonly ref?: SampleRef;
  readonly into?: Readonly<Record<string, number>>;
  readonly layout?: 'per-tensor' | 'packed';
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const metaOut = (m: RankMetadata): WireMeta => ({
  ...m,
  agentMetadata: hex(m.agentMetadata),
  kvCachesBaseAddr: m.kvCachesBaseAddr.map((a) => a.toString()),
});
const metaIn = (m: WireMeta): RankMetadata => ({
  ...m,
  agentMetadata: Buffer.from(m.agentMetadata, 'hex'),
  kvCachesBaseAddr: m.kvCachesBaseAddr.map((a) => BigInt(a)),
});

function need<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`ts-peer: '${name}' is required`);
  return value;
}

async function handshakeOp(cmd: Command): Promise<unknown> {
  const url = need(cmd.url, 'url');
  const hs = handshakes({ url, ...(cmd.token === undefined ? {} : { token: cmd.token }), failurePolicy: 'fail', timeoutMs: 10_000 });
  try {
    if (cmd.op === 'hs-publish') {
      const source = cmd.payload === undefined ? metaIn(need(cmd.meta, 'meta')) : Buffer.from(cmd.payload, 'hex');
      return { answer: await hs.publish(source) };
    }
    const r = await hs.fetchRank(need(cmd.engineId, 'engineId'), {
      tpRank: need(cmd.tpRank, 'tpRank'),
      dpRank: need(cmd.dpRank, 'dpRank'),
      ...(cmd.expectHash === undefined ? {} : { expectHash: cmd.expectHash }),
    });
    return { meta: metaOut(r.meta), payload: hex(r.payload) };
  } finally {
    await hs.close();
  }
}

async function featureOp(cmd: Command): Promise<unknown> {
  const client = await connect({ url: need(cmd.url, 'url'), token: need(cmd.token, 'token') });
  try {
    const store = client.features(need(cmd.storeId, 'storeId'), {
      ...(cmd.storeToken === undefined ? {} : { token: cmd.storeToken }),
      ...(cmd.layout === undefined ? {} : { layout: cmd.layout }),
    });
    if (cmd.op === 'fs-put') {
      const tensors = Object.fromEntries(
        Object.entries(need(cmd.tensors, 'tensors')).map(([name, t]) => [
          name,
          { data: Buffer.from(t.hex, 'hex'), dtype: t.dtype, shape: t.shape },
        ]),
      );
      const ref = await store.put(need(cmd.sampleId, 'sampleId'), tensors);
      return { ref, json: JSON.stringify(ref) };
    }
    const ref = need(cmd.ref, 'ref');
    if (cmd.op === 'fs-release') {
      await store.release(ref);
      return { released: true };
    }
    if (cmd.op === 'fs-latest') return { ref: (await store.latest(need(cmd.sampleId, 'sampleId'))) ?? null };
    const into =
      cmd.into === undefined ? undefined : Object.fromEntries(Object.entries(cmd.into).map(([n, size]) => [n, new Uint8Array(size)]));
    const got = await store.get(ref, into === undefined ? {} : { into });
    return {
      tensors: Object.fromEntries(Object.entries(got).map(([name, t]) => [name, { hex: hex(t.data), dtype: t.dtype, shape: t.shape }])),
    };
  } finally {
    await client.close();
  }
}

async function run(cmd: Command): Promise<unknown> {
  switch (cmd.op) {
    case 'hs-encode':
      return { payload: hex(encodeRankMetadata(metaIn(need(cmd.meta, 'meta')))) };
    case 'hs-decode':
      return { meta: metaOut(decodeRankMetadata(Buffer.from(need(cmd.payload, 'payload'), 'hex'))) };
    case 'hs-publish':
    case 'hs-get':
      return handshakeOp(cmd);
    case 'fs-put':
    case 'fs-get':
    case 'fs-release':
    case 'fs-latest':
      return featureOp(cmd);
    default:
      throw new Error(`ts-peer: unknown op ${cmd.op}`);
  }
}

try {
  process.stdout.write(`${JSON.stringify(await run(JSON.parse(process.argv[2] ?? '{}') as Command))}\n`);
} catch (error) {
  if (!isTensorcastError(error)) throw error;
  process.stdout.write(`${JSON.stringify({ error: error.code, message: error.message })}\n`);
}
