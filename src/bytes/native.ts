// The native addon (native/*.c, built by `npm install` with node-gyp): the strided-gather and CRC32C
// kernels. Loaded once; undefined when it was not built or `TENSORCAST_NATIVE=0`, and every caller then
// runs its TypeScript (or npm package) fallback, which gives identical results.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatherFileFn, GatherFn } from './gather-kernel.js';

/** What the addon exports. */
export interface NativeModule {
  readonly gather: GatherFn;
  readonly gatherFile: GatherFileFn;
  readonly crc32c: (data: Uint8Array, initial?: number) => number;
  readonly crc32cAsync: (data: Uint8Array, initial?: number) => Promise<number>;
  /** The portable table kernel alone (tests check it on machines whose CPU has the instruction). */
  readonly crc32cPortable: (data: Uint8Array, initial?: number) => number;
  /** True when CRC32C runs on the CPU's instruction (SSE4.2), false for the portable table kernel. */
  readonly crc32cHardware: boolean;
}

function load(): NativeModule | undefined {
  if (process.env['TENSORCAST_NATIVE'] === '0') return undefined;
  // dist/src/bytes -> package root
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  const path = join(dir, 'build', 'Release', 'tensorcast_native.node');
  if (!existsSync(path)) return undefined;
  try {
    const m = createRequire(import.meta.url)(path) as Partial<NativeModule>;
    // An addon built from an older checkout lacks the newer kernels: use the fallbacks rather than half of it.
    return typeof m.crc32c === 'function' && typeof m.gatherFile === 'function' ? (m as NativeModule) : undefined;
  } catch {
    return undefined;
  }
}

/** The addon, when built and enabled. */
export const native: NativeModule | undefined = load();
