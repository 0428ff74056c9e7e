// `tensorcast handshake get ENGINE_ID --tp-rank R --dp-rank D [--expect-hash H] [--json] [--out FILE]`: one
// rank's metadata from a handshake listener: a summary for people, the decoded payload as JSON, or the
// payload's exact bytes in a file.

import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { wrapIoError } from '../../../core/errors.js';
import type { RankMetadata } from '../../../handshake/rank-metadata.js';
import { handshakeClientFrom, rankFlag, withHandshakeClientFlags, type HandshakeClientFlags } from './handshake-client-flags.js';

interface GetFlags extends HandshakeClientFlags {
  readonly tpRank: string;
  readonly dpRank: string;
  readonly expectHash?: string;
  readonly json?: boolean;
  readonly out?: string;
}

/** Registers `handshake get`. */
export function registerHandshakeGet(group: Command): void {
  withHandshakeClientFlags(
    group
      .command('get')
      .description("fetch one rank's KV-transfer metadata from a handshake listener")
      .argument('<engineId>', 'the engine')
      .requiredOption('--tp-rank <r>', 'the TP rank')
      .requiredOption('--dp-rank <d>', 'the DP rank')
      .option('--expect-hash <hash>', 'the compatibility hash expected: another one is refused (TC_ERR_INCOMPATIBLE) undecoded')
      .option('--json', 'print the decoded payload as JSON (snake_case keys; agent_metadata base64, addresses decimal strings)')
      .option('--out <file>', 'write the payload bytes exactly as published to <file>'),
  ).action(async (engineId: string, flags: GetFlags) => {
    const tpRank = rankFlag('--tp-rank', flags.tpRank);
    const dpRank = rankFlag('--dp-rank', flags.dpRank);
    const hs = await handshakeClientFrom(flags);
    try {
      const answer = await hs.fetchRank(engineId, {
        tpRank,
        dpRank,
        ...(flags.expectHash === undefined ? {} : { expectHash: flags.expectHash }),
      });
      if (flags.out !== undefined) {
        const out = flags.out;
        await writeFile(out, answer.payload).catch((e: unknown) => Promise.reject(wrapIoError(e, 'cannot write --out', out)));
      }
      if (flags.json === true) process.stdout.write(`${JSON.stringify(rankJson(answer.meta), null, 2)}\n`);
      else if (flags.out === undefined) process.stdout.write(summary(answer.meta, answer.payload.byteLength, answer.expiresAtMs));
      else process.stdout.write(`wrote ${answer.payload.byteLength} bytes to ${flags.out}\n`);
    } finally {
      await hs.close();
    }
  });
}

/** The payload as JSON, under its wire keys: bytes base64, uint64 addresses as decimal strings. */
export function rankJson(meta: RankMetadata): Record<string, unknown> {
  return {
    v: 1,
    engine_id: meta.engineId,
    tp_rank: meta.tpRank,
    dp_rank: meta.dpRank,
    compatibility_hash: meta.compatibilityHash,
    incarnation: meta.incarnation,
    agent_metadata: Buffer.from(meta.agentMetadata).toString('base64'),
    kv_caches_base_addr: meta.kvCachesBaseAddr.map(String),
    block_lens: meta.blockLens,
    block_strides: meta.blockStrides,
    num_blocks: meta.numBlocks,
    block_size: meta.blockSize,
    kv_cache_layout: meta.kvCacheLayout,
    tp_size: meta.tpSize,
    device_id: meta.deviceId,
    ...(meta.extra === undefined ? {} : { extra: jsonSafe(meta.extra) }),
  };
}

function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return String(value);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), jsonSafe(v)]));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  return value;
}

function summary(meta: RankMetadata, bytes: number, expiresAtMs: number): string {
  const regions = meta.kvCachesBaseAddr
    .map(
      (addr, i) =>
        `  region ${i}: base 0x${addr.toString(16)}, block ${meta.blockLens[i] ?? '?'} B, stride ${meta.blockStrides[i] ?? '?'} B`,
    )
    .join('\n');
  return (
    `engine       ${meta.engineId}\n` +
    `rank         tp ${meta.tpRank} of ${meta.tpSize}, dp ${meta.dpRank}, device ${meta.deviceId}\n` +
    `incarnation  ${meta.incarnation}\n` +
    `hash         ${meta.compatibilityHash}\n` +
    `agent        ${meta.agentMetadata.byteLength} bytes of agent metadata\n` +
    `blocks       ${meta.numBlocks} x ${meta.blockSize} tokens, layout ${meta.kvCacheLayout}\n` +
    `regions      ${meta.kvCachesBaseAddr.length}\n${regions}${regions === '' ? '' : '\n'}` +
    `payload      ${bytes} bytes${expiresAtMs > 0 ? `, expires ${new Date(expiresAtMs).toISOString()}` : ''}\n`
  );
}
