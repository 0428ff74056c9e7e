// Baselines of the daemon suite, measured in the same run on the same bytes: a plain page-cache read of
// the daemon's artifact files, the executor materializing a view in this process from those files, and
// iperf3 over loopback with as many streams as the load used.

import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadPlan, TensorcastClient } from '../src/client/tensorcast-client.js';
import { FileSource } from '../src/bytes/file-source.js';
import { Materializer } from '../src/bytes/materialize.js';
import { compileProgram } from '../src/layout/program.js';
import { normalizeView } from '../src/layout/view.js';
import { artifactPath, type Placement } from '../src/protocol/http/artifacts.js';
import { bestOf } from './measure.js';
import { iperfRates, iperfUnavailableReason, type IperfRates } from './net/iperf.js';

const IPERF_SECONDS = 3;

/** The daemon's stored files of one artifact (the files its loads read), in shard order. */
export interface DaemonFiles {
  readonly paths: readonly string[];
  readonly placement: Placement;
}

/** Where the daemon keeps the artifact's files (it copies imports into its data directory). */
export async function daemonFiles(client: TensorcastClient, artifactId: string): Promise<DaemonFiles> {
  const placement = await client.control.json<Placement>('GET', artifactPath(artifactId, '/placement'));
  return { paths: placement.shards.map((s) => join(placement.dir, s.file)), placement };
}

/** Plain read of `dest.length` bytes from the start of `paths` (one after another), one reader, 8 MiB reads. */
function plainRead(paths: readonly string[], dest: Uint8Array): void {
  let done = 0;
  for (const path of paths) {
    const fd = openSync(path, 'r');
    try {
      for (;;) {
        if (done >= dest.length) return;
        const n = readSync(fd, dest, done, Math.min(8 << 20, dest.length - done), null);
        if (n === 0) break;
        done += n;
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** Best time (s) of a plain read of `dest.length` bytes of the daemon's files from the page cache. */
export function pageCacheReadSeconds(files: DaemonFiles, dest: Uint8Array, repeats: number): Promise<number> {
  return bestOf(repeats, () => plainRead(files.paths, dest));
}

/**
 * Best time (s) of the executor materializing the planned view in this process from the daemon's files
 * (page cache warm) into `dest` (pre-faulted): what a first load could reach if the link were free.
 */
export async function materializeSeconds(
  client: TensorcastClient,
  files: DaemonFiles,
  plan: LoadPlan,
  dest: Uint8Array,
  repeats: number,
): Promise<number> {
  const index = await client.index(plan.artifactId);
  const program = compileProgram(normalizeView(index, plan.view));
  const where = new Map(files.placement.tensors.map(([name, shard, position]) => [name, { shard, position }]));
  const source = new FileSource(
    index.tensors.map((t) => {
      const p = where.get(t.name)!;
      return { offset: t.offset, length: t.byteLength, path: files.paths[p.shard]!, position: p.position };
    }),
  );
  try {
    const m = new Materializer();
    return await bestOf(repeats, () => m.run(program, source, dest.subarray(0, program.totalBytes)));
  } finally {
    await source.close();
  }
}

/** iperf3 over loopback, measured once per stream count and remembered; undefined without iperf3. */
export class LoopbackLink {
  private readonly rates = new Map<number, Promise<IperfRates | undefined>>();
  /** Why there is no link baseline (iperf3 missing or failed), once known. */
  unavailable: string | undefined = iperfUnavailableReason();

  /** GB/s of `iperf3 -R -P streams` over 127.0.0.1 (data flows from the server, as from a daemon). */
  rate(streams: number): Promise<IperfRates | undefined> {
    let r = this.rates.get(streams);
    if (r === undefined) {
      r =
        this.unavailable !== undefined
          ? Promise.resolve(undefined)
          : iperfRates({ serverAddress: '127.0.0.1', streams, seconds: IPERF_SECONDS }).catch((error: unknown) => {
              this.unavailable = `iperf3 failed: ${(error as Error).message}`;
              return undefined;
            });
      this.rates.set(streams, r);
    }
    return r;
  }
}
