// The acceptance test of issue 12 section 4: one `handshake serve` process; 8 publisher processes (one engine,
// tp 4 x dp 2, each rank its own process, 64 KiB blobs of random bytes) and 16 reader processes with
// heterogeneous TP (local TP 1, 1, 2, 4 and 8, each local rank its own process) that map their rank to the
// remote ranks with mapRanks. Readers start first (their handshakes park and retry until the publishers are
// there). Every reader must get the right ranks with byte-identical blobs, and each reader's stats must show
// at most one handshake in flight with the engine at any time.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { mapRanks } from '../../src/handshake/rank-mapping.js';
import type { HandshakeStats } from '../../src/handshake/client/index.js';
import { startHandshakeListener } from '../harness/handshake-listener.js';
import { tempDir } from '../helpers/tmp.js';

const WORKER = join(import.meta.dirname, '..', 'helpers', 'handshake-fleet-worker.js');
const ENGINE = 'prefill-fleet';
const REMOTE_TP = 4;
const DP = 2;
const KV_HEADS = 8;
const HASH = 'vllm-fleet-hash';
const WAVES = 3;

interface Worker {
  readonly lines: Promise<unknown[]>;
  /** Resolves with the first line that has `key`. */
  line(key: string): Promise<Record<string, unknown>>;
}

function worker(job: Record<string, unknown>): Worker {
  const child = spawn(process.execPath, [WORKER, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { key: string; resolve: (o: Record<string, unknown>) => void }[] = [];
  const parsed: Record<string, unknown>[] = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const o = JSON.parse(out.slice(0, nl)) as Record<string, unknown>;
      out = out.slice(nl + 1);
      parsed.push(o);
      for (const w of waiters.filter((w) => w.key in o)) w.resolve(o);
    }
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const lines = new Promise<unknown[]>((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve(parsed) : reject(new Error(`worker ${JSON.stringify(job)} exited ${code}: ${err}`)))),
  );
  return {
    lines,
    line: (key) => {
      const found = parsed.find((o) => key in o);
      if (found !== undefined) return Promise.resolve(found);
      return Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiters.push({ key, resolve })),
        lines.then(() => Promise.reject(new Error(`worker ended without a '${key}' line`))),
      ]);
    },
  };
}

test(
  'fleet: 8 publishers (tp 4 x dp 2) and 16 heterogeneous-TP readers, concurrently, through one listener',
  { timeout: 600_000 },
  async (t) => {
    const dir = tempDir(t);
    const tokenFile = join(dir, 'token');
    const token = 'fleet-token-0123456789';
    writeFileSync(tokenFile, `${token}\n`);
    const listener = await startHandshakeListener(t, { args: ['--token-file', tokenFile] });
    const common = { url: listener.url, token, engineId: ENGINE, hash: HASH };

    // Readers: local TP 1 (twice), 2, 4 and 8, one process per local rank; dp rank = reader index % 2.
    const layouts = [1, 1, 2, 4, 8].flatMap((localTp) => Array.from({ length: localTp }, (_, localRank) => ({ localTp, localRank })));
    assert.equal(layouts.length, 16);
    const readers = layouts.map((l, i) =>
      worker({ role: 'reader', ...common, ...l, dpRank: i % DP, remoteTp: REMOTE_TP, numKvHeads: KV_HEADS, waves: WAVES }),
    );
    // Publishers start once every reader has its first gets parked, so the park/retry path runs.
    await Promise.all(readers.map((r) => r.line('started')));
    const publishers = Array.from({ length: REMOTE_TP * DP }, (_, i) =>
      worker({
        role: 'publisher',
        ...common,
        tpRank: i % REMOTE_TP,
        dpRank: Math.floor(i / REMOTE_TP),
        tpSize: REMOTE_TP,
        incarnation: 'inc-1',
        blobBytes: 64 * 1024,
      }),
    );
    const published = new Map<string, string>();
    for (const p of publishers) {
      const o = (await p.line('published'))['published'] as { tpRank: number; dpRank: number; sha256: string };
      published.set(`${o.tpRank}/${o.dpRank}`, o.sha256);
    }
    await Promise.all(publishers.map((p) => p.lines));
    assert.equal(published.size, 8);
    assert.equal(new Set(published.values()).size, 8, 'every blob is distinct');

    let totalRetries = 0;
    let totalHandshakes = 0;
    for (const [i, r] of readers.entries()) {
      const { localTp, localRank } = layouts[i]!;
      const dpRank = i % DP;
      const done = await r.line('read');
      const read = done['read'] as { wave: number; tpRank: number; dpRank: number; incarnation: string; sha256: string }[];
      const stats = done['stats'] as HandshakeStats;
      const expected = mapRanks({ localTp, localRank, remoteTp: REMOTE_TP, numKvHeads: KV_HEADS }).reads.map((x) => x.remoteRank);
      const who = `reader ${i} (local tp ${localTp} rank ${localRank}, dp ${dpRank})`;
      assert.deepEqual(done['remotes'], expected, `${who} read the ranks mapRanks gives`);
      assert.equal(read.length, expected.length * 4 * WAVES, who);
      for (const x of read) {
        assert.equal(x.dpRank, dpRank, who);
        assert.ok(expected.includes(x.tpRank), `${who} got rank ${x.tpRank}`);
        assert.equal(x.incarnation, 'inc-1');
        assert.equal(x.sha256, published.get(`${x.tpRank}/${x.dpRank}`), `${who}: blob of ${x.tpRank}/${x.dpRank} is byte-identical`);
      }
      // Single flight, counted by the reader: never two handshakes with the engine at once.
      assert.equal(stats.engines[ENGINE]?.maxInFlight, 1, `${who}: ${JSON.stringify(stats)}`);
      assert.equal(stats.engines[ENGINE]?.inFlight, 0, who);
      assert.equal(stats.maxInFlightPerEngine, 1, who);
      // One handshake per wave (each fetched all of the reader's remote ranks for 4 callers each).
      assert.equal(stats.handshakesStarted, WAVES, `${who}: ${JSON.stringify(stats)}`);
      assert.equal(stats.parked, expected.length * 4 * WAVES, who);
      totalRetries += stats.retries;
      totalHandshakes += stats.handshakesStarted;
    }
    assert.ok(totalRetries > 0, 'readers came before the publishers and retried');
    assert.equal(totalHandshakes, 16 * WAVES);
    assert.equal(await listener.stop(), 0);
  },
);
