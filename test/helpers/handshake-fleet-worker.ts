// One process of the handshake fleet test (test/e2e/handshake-fleet.test.ts), run as
// `node handshake-fleet-worker.js <json>`:
// - {"role":"publisher", url, token, engineId, tpRank, dpRank, tpSize, hash, incarnation, blobBytes}: publishes
//   one rank with a blob of random bytes and prints `{"published": {tpRank, dpRank, sha256}}`.
// - {"role":"reader", url, token, engineId, localTp, localRank, dpRank, remoteTp, numKvHeads, hash, waves}: maps
//   its local rank to the remote ranks (mapRanks), prints `{"started": true}` once its first gets are parked,
//   then gets each remote rank several times concurrently, in `waves` rounds (the cache dropped between
//   rounds), and prints `{"read": [...], "stats": ...}` with each blob's sha256.

import { createHash, randomBytes } from 'node:crypto';
import { handshakes } from '../../src/handshake/client/index.js';
import { mapRanks } from '../../src/handshake/rank-mapping.js';
import type { RankMetadata } from '../../src/handshake/rank-metadata.js';

interface Common {
  readonly url: string;
  readonly token: string;
  readonly engineId: string;
  readonly hash: string;
}
interface Publisher extends Common {
  readonly role: 'publisher';
  readonly tpRank: number;
  readonly dpRank: number;
  readonly tpSize: number;
  readonly incarnation: string;
  readonly blobBytes: number;
}
interface Reader extends Common {
  readonly role: 'reader';
  readonly localTp: number;
  readonly localRank: number;
  readonly dpRank: number;
  readonly remoteTp: number;
  readonly numKvHeads: number;
  readonly waves: number;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const say = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

const job = JSON.parse(process.argv[2] ?? '{}') as Publisher | Reader;
const hs = handshakes({
  url: job.url,
  token: job.token,
  expectHash: job.hash,
  // Generous: on a loaded 2-core machine, 25 processes start at once; readers wait for publishers.
  timeoutMs: 180_000,
  retry: { maxAttempts: 100_000, baseDelayMs: 20, maxDelayMs: 250 },
});
try {
  if (job.role === 'publisher') {
    const blob = randomBytes(job.blobBytes);
    const meta: RankMetadata = {
      engineId: job.engineId,
      tpRank: job.tpRank,
      dpRank: job.dpRank,
      compatibilityHash: job.hash,
      incarnation: job.incarnation,
      agentMetadata: blob,
      kvCachesBaseAddr: [0x7f00_0000_0000n + BigInt(job.tpRank) * 0x1_0000_0000n],
      blockLens: [32768],
      blockStrides: [32768],
      numBlocks: 4096,
      blockSize: 16,
      kvCacheLayout: 'HND',
      tpSize: job.tpSize,
      deviceId: job.tpRank,
    };
    await hs.publish(meta);
    say({ published: { tpRank: job.tpRank, dpRank: job.dpRank, sha256: sha256(blob) } });
  } else {
    const mapping = mapRanks({ localTp: job.localTp, localRank: job.localRank, remoteTp: job.remoteTp, numKvHeads: job.numKvHeads });
    const remotes = mapping.reads.map((r) => r.remoteRank);
    const read: { wave: number; tpRank: number; dpRank: number; incarnation: string; sha256: string }[] = [];
    for (let wave = 0; wave < job.waves; wave++) {
      if (wave > 0) hs.invalidate(job.engineId);
      // Each remote rank asked by 4 concurrent callers (as a server's requests would): one handshake serves all.
      const calls = remotes.flatMap((tpRank) => Array.from({ length: 4 }, () => hs.get(job.engineId, { tpRank, dpRank: job.dpRank })));
      if (wave === 0) say({ started: true, remotes });
      const got = await Promise.all(calls);
      for (const m of got)
        read.push({ wave, tpRank: m.tpRank, dpRank: m.dpRank, incarnation: m.incarnation, sha256: sha256(m.agentMetadata) });
    }
    say({ read, remotes, stats: hs.stats() });
  }
} finally {
  await hs.close();
}
