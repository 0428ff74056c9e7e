// Another process truncating shm files while the daemon builds replicas into them (strided TP slices): the
// daemon writes into the mapped pages only through guarded copies, so it stays up and every load either
// delivers the right bytes or fails with a coded error (before: SIGBUS killed the daemon, or an unhandled
// rejection of a copy that failed while the next piece was being produced).

import assert from 'node:assert/strict';
import { readdirSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon } from '../harness/daemon.js';
import { writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { connect } from '../../src/client/tensorcast-client.js';
import { resolveConfig } from '../../src/daemon/config.js';

/** About 60 MB: strided TP ranks of several 4 MiB chunks each. */
const MODEL = { hiddenSize: 1024, intermediateSize: 2816, numLayers: 4, numHeads: 8, numKvHeads: 2, vocabSize: 8192, shards: 1 };

/** Every `.bin` under `dir` (replica files and the pool's idle segments). */
function shmFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile() && e.name.endsWith('.bin')) out.push(join(e.parentPath, e.name));
  return out;
}

test(
  'shm files truncated during builds: the daemon stays up; loads give the right bytes or a coded error',
  { timeout: 180_000 },
  async (t) => {
    const dir = tempDir(t);
    const model = join(dir, 'model');
    await writeSyntheticModel(model, MODEL);
    const d = await startDaemon(t, { extraArgs: ['--import-root', dir, '--memory-budget', '256MiB'] });
    const shmDir = resolveConfig([{ dataDir: d.dataDir }]).shmDir;
    const client = await connect({ url: d.controlUrl, token: d.token });
    t.after(() => client.close());
    await client.importModel(model, { key: 'm' });
    const ranks = [
      { size: 4, rank: 2 },
      { size: 2, rank: 1 },
      { size: 4, rank: 0 },
    ];
    const want = await Promise.all(ranks.map(async (tp) => Buffer.from((await client.load('m', { tp, transport: 'tcp' })).buffer)));
    let cuts = 0;
    const cutter = setInterval(() => {
      for (const f of shmFiles(shmDir)) {
        try {
          if (statSync(f).size > 4096) {
            truncateSync(f, 4096);
            cuts++;
          }
        } catch {
          // gone between listing and cutting: fine
        }
      }
    }, 3);
    const outcomes = new Map<string, number>();
    try {
      for (let round = 0; round < 6; round++) {
        for (const [i, tp] of ranks.entries()) {
          try {
            const got = Buffer.from((await client.load('m', { tp, transport: 'shm' })).buffer);
            assert.ok(got.equals(want[i]!), `TP ${tp.size} rank ${tp.rank}: delivered bytes differ`);
            outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
          } catch (error) {
            const code = (error as { code?: string }).code ?? String(error);
            assert.ok(['TC_ERR_SHORT_READ', 'TC_ERR_NOT_FOUND', 'TC_ERR_CHECKSUM'].includes(code), `unexpected failure: ${String(error)}`);
            outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
          }
          assert.equal(d.child.exitCode, null, `daemon exited: ${d.stderr().slice(-2000)}`);
          assert.equal(d.child.signalCode, null, `daemon killed by ${d.child.signalCode}`);
        }
      }
    } finally {
      clearInterval(cutter);
    }
    t.diagnostic(`truncations ${cuts}, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
    assert.ok(cuts > 0);
    // Left alone again, the daemon rebuilds and serves every rank.
    for (const [i, tp] of ranks.entries())
      assert.ok(Buffer.from((await client.load('m', { tp, transport: 'shm' })).buffer).equals(want[i]!));
  },
);
