// One contender of the catalog race (catalog-contract.ts): a worker thread with its own catalog connection
// that, every round, waits at a shared barrier and then tries the round's compare-and-swap at once with
// the others. Posts one outcome per round: 'won' or the error code.

import { parentPort, workerData } from 'node:worker_threads';
import { openCatalog } from '../../src/catalog/open-catalog.js';

/** What the test hands each worker. */
export interface RaceWorkerData {
  readonly url: string;
  readonly rounds: number;
  readonly workers: number;
  /** Two Int32 slots: arrivals in this round, round generation. */
  readonly barrier: SharedArrayBuffer;
  readonly artifacts: readonly [string, string];
}

const BARRIER_TIMEOUT_MS = 20_000;

/** Blocks until every worker reached the barrier (a generation counter; throws after the deadline). */
function arrive(slots: Int32Array, workers: number): void {
  const generation = Atomics.load(slots, 1);
  if (Atomics.add(slots, 0, 1) === workers - 1) {
    Atomics.store(slots, 0, 0);
    Atomics.add(slots, 1, 1);
    Atomics.notify(slots, 1);
    return;
  }
  while (Atomics.load(slots, 1) === generation) {
    if (Atomics.wait(slots, 1, generation, BARRIER_TIMEOUT_MS) === 'timed-out') throw new Error('race barrier: timed out');
  }
}

async function main(): Promise<void> {
  const data = workerData as RaceWorkerData;
  const slots = new Int32Array(data.barrier);
  const catalog = await openCatalog(data.url);
  const outcomes: string[] = [];
  try {
    for (let round = 0; round < data.rounds; round++) {
      arrive(slots, data.workers);
      // Round 0 races create-only binds; round r > 0 races compare-and-swaps from version r.
      const expected = round === 0 ? null : round;
      try {
        await catalog.bindKey('race', data.artifacts[round % 2]!, expected);
        outcomes.push('won');
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        outcomes.push(code === 'TC_ERR_CONFLICT' ? code : `${typeof code === 'string' ? code : 'uncoded'}: ${(error as Error).message}`);
      }
    }
  } finally {
    await catalog.close();
  }
  parentPort!.postMessage(outcomes);
}

await main();
