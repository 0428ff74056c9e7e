// Statistics of one materialization and the diagnostics channel they are published on.

import diagnosticsChannel from 'node:diagnostics_channel';
import type { KernelName } from './gather-kernel.js';

/** Name of the diagnostics channel every materialization publishes its {@link MaterializeStats} on. */
export const MATERIALIZE_CHANNEL = 'tensorcast:materialize';

/** The channel itself. */
export const materializeChannel = diagnosticsChannel.channel(MATERIALIZE_CHANNEL);

/** Exact accounting of one materialization. Times of concurrent reads are summed over the reads. */
export interface MaterializeStats {
  readonly kernel: KernelName;
  /** Bytes written to the destination, padding included. */
  outputBytes: number;
  padBytes: number;
  /** `source.read` calls and the bytes they returned (block reads include the bytes between rows). */
  readonly baseReads: { calls: number; bytes: number };
  /** Bytes copied straight out of source memory (direct copies and direct gathers). */
  directBytes: number;
  /** (bytes read + bytes copied directly) / (bytes delivered excluding padding); 1 when nothing moved. */
  amplification: number;
  /** Runs by path; `sourceGather` runs were copied by the source itself (file pages mapped, gaps never read). */
  readonly runs: { pad: number; contiguous: number; directGather: number; sourceGather: number; blockGather: number; rowCopy: number };
  readonly timesMs: {
    total: number;
    blockPrepare: number;
    blockLoad: number;
    pack: number;
    rowCopy: number;
    directGather: number;
    sourceGather: number;
    contiguous: number;
    pad: number;
  };
}

/** Fresh, zeroed stats. */
export function emptyStats(kernel: KernelName): MaterializeStats {
  return {
    kernel,
    outputBytes: 0,
    padBytes: 0,
    baseReads: { calls: 0, bytes: 0 },
    directBytes: 0,
    amplification: 1,
    runs: { pad: 0, contiguous: 0, directGather: 0, sourceGather: 0, blockGather: 0, rowCopy: 0 },
    timesMs: { total: 0, blockPrepare: 0, blockLoad: 0, pack: 0, rowCopy: 0, directGather: 0, sourceGather: 0, contiguous: 0, pad: 0 },
  };
}
