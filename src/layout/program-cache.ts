// A bounded LRU of compiled programs keyed by (index hash, view id): compiling is cheap, but a daemon
// serving many ranks of the same model asks for the same few views over and over.

import { compileProgram, type ByteRangeProgram } from './program.js';
import type { NormalizedView } from './view.js';

/**
 * Caches compiled programs.
 *
 * @example const program = cache.get(normalizeView(index, spec));
 */
export class ProgramCache {
  private readonly entries = new Map<string, ByteRangeProgram>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries = 256) {}

  /** The program of `view`, compiled on a miss. */
  get(view: NormalizedView): ByteRangeProgram {
    const key = `${view.indexHash}:${view.viewId ?? 'identity'}`;
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.hits++;
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    this.misses++;
    const program = compileProgram(view);
    this.entries.set(key, program);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return program;
  }

  get size(): number {
    return this.entries.size;
  }
}
