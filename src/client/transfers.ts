// Moving a planned view's bytes into the caller's memory: over the TCP data plane (the range split across
// pooled connections), through a shared-memory lease (a file on tmpfs the daemon fills and pins), or, on
// the daemon's host, by reading the daemon's immutable artifact files in place and materializing here.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSource } from '../bytes/file-source.js';
import { Materializer } from '../bytes/materialize.js';
import { programWindow } from '../layout/program.js';
import { tcError } from '../core/errors.js';
import { verifyChunks, type ChunkChecksums } from '../bytes/chunk-checksums.js';
import { specOfView } from '../layout/view.js';
import type { ConnectionPool } from './connection-pool.js';
import type { ControlClient } from './control-client.js';
import type { LoadPlan } from './tensorcast-client.js';
import type { CanonicalIndex } from '../layout/canonical-index.js';

/** An open transfer of one planned view (see {@link TensorcastClient.openTransfer}). */
export interface Transfer {
  /** Reads `[start, end)` of the view's output into `dest` (exactly that long). */
  read(start: number, end: number, dest: Uint8Array): Promise<void>;
  /** How the daemon produced the bytes so far: replica_hit, materialized or streamed. */
  source(): string;
  readonly connections: number;
  close(): Promise<void>;
}

/** Ranges below this are not split across connections. */
const MIN_PART_BYTES = 16 << 20;

/** A transfer over the data plane: each read is split across up to `parts` pooled connections. */
export function openTcpTransfer(pool: ConnectionPool, plan: LoadPlan, parts: number, remaining: () => number): Transfer {
  const spec = specOfView(plan.view);
  const sources = new Set<string>();
  return {
    read: async (start, end, dest) => {
      const total = end - start;
      if (total === 0) return;
      const n = Math.max(1, Math.min(parts, Math.ceil(total / MIN_PART_BYTES)));
      const step = Math.ceil(total / n / 4096) * 4096;
      const ranges: [number, number][] = [];
      for (let s = start; s < end; s += step) ranges.push([s, Math.min(end, s + step)]);
      await Promise.all(
        ranges.map(async ([s, e]) => {
          const conn = await pool.acquire(remaining());
          try {
            const r = await conn.load(
              { artifactId: plan.artifactId, view: spec, viewId: plan.view.viewId, start: s, end: e, timeoutMs: remaining() },
              dest.subarray(s - start, e - start),
            );
            sources.add(r.source);
          } finally {
            pool.release(conn);
          }
        }),
      );
    },
    source: () => (sources.has('materialized') ? 'materialized' : sources.has('streamed') ? 'streamed' : 'replica_hit'),
    connections: parts,
    close: () => Promise.resolve(),
  };
}

/** What the daemon answers for a shm lease (POST /v1/shm-leases). */
interface ShmLease {
  readonly leaseId: string;
  readonly path: string;
  readonly bytes: number;
  readonly source: string;
  readonly checksums: ChunkChecksums;
}

/**
 * A transfer through a shared-memory lease: taken now, read with positional reads and checked against the
 * lease's per-chunk CRC32C (a chunk only partly wanted is read whole into scratch to be checked), released
 * at close. A failed check releases the lease with `discard=1`, so the daemon rebuilds the replica.
 *
 * @throws TC_ERR_CHECKSUM when the file's bytes differ from what the daemon wrote; TC_ERR_SHORT_READ when it
 *   was truncated; TC_ERR_BUDGET, TC_ERR_TIMEOUT from the daemon.
 */
export async function openShmTransfer(control: ControlClient, plan: LoadPlan, remaining: () => number): Promise<Transfer> {
  // The daemon waits for room or a build up to the load's deadline; the request itself is bounded by it too.
  const timeoutMs = Math.min(remaining(), 2 ** 31 - 1);
  const lease = await control.json<ShmLease>(
    'POST',
    '/v1/shm-leases',
    { artifactId: plan.artifactId, view: specOfView(plan.view) ?? null, viewId: plan.view.viewId ?? null, timeoutMs },
    timeoutMs + 5000,
  );
  let discard = false;
  const release = (): Promise<unknown> =>
    control.json('DELETE', `/v1/shm-leases/${encodeURIComponent(lease.leaseId)}${discard ? '?discard=1' : ''}`).catch(() => undefined);
  const total = lease.bytes;
  if (total !== plan.program.totalBytes) {
    await release();
    throw tcError('TC_ERR_INTERNAL', `shm lease holds ${total} bytes, expected ${plan.program.totalBytes}`);
  }
  const sums = lease.checksums;
  const chunk = sums.chunkBytes;
  // The lease file is one contiguous byte space: the executor reads it in pieces, several in flight.
  const file = FileSource.fromFile(lease.path, total);
  const materializer = new Materializer();
  const readAt = (src: number, dest: Uint8Array): Promise<unknown> =>
    materializer.run(
      { runs: dest.length > 0 ? [{ kind: 'contiguous', dst: 0, src, length: dest.length }] : [], totalBytes: dest.length },
      file,
      dest,
    );
  const chunkEnd = (c: number): number => Math.min(total, (c + 1) * chunk);
  const check = (start: number, bytes: Uint8Array): void => {
    try {
      verifyChunks(sums, total, start, bytes, `shm lease ${lease.path}`);
    } catch (error) {
      discard = true;
      throw error;
    }
  };
  return {
    read: async (start, end, dest) => {
      if (end <= start) return;
      // Chunks wholly inside [start, end) are read straight into dest; at most two edge chunks via scratch.
      const whole = (c: number): boolean => c * chunk >= start && chunkEnd(c) <= end;
      const first = Math.floor(start / chunk);
      const last = Math.ceil(end / chunk);
      let a = first;
      while (a < last && !whole(a)) a++;
      let b = last;
      while (b > a && !whole(b - 1)) b--;
      const edges = [first, last - 1].filter((c, i, all) => (c < a || c >= b) && all.indexOf(c) === i);
      const reads = await Promise.allSettled([
        a < b ? readAt(a * chunk, dest.subarray(a * chunk - start, chunkEnd(b - 1) - start)) : undefined,
        ...edges.map(async (c) => {
          const scratch = Buffer.allocUnsafe(chunkEnd(c) - c * chunk);
          await readAt(c * chunk, scratch);
          check(c * chunk, scratch);
          const from = Math.max(start, c * chunk);
          const to = Math.min(end, chunkEnd(c));
          dest.set(scratch.subarray(from - c * chunk, to - c * chunk), from - start);
        }),
      ]);
      // Every read finished before failing, so nothing writes into dest after the promise settles.
      for (const r of reads) if (r.status === 'rejected') throw r.reason;
      if (a < b) check(a * chunk, dest.subarray(a * chunk - start, chunkEnd(b - 1) - start));
      remaining();
    },
    source: () => lease.source,
    connections: 1,
    close: async () => {
      await file.close();
      await release();
    },
  };
}

/** Where a daemon keeps an artifact's files (GET /v1/artifacts/:id/placement). */
interface Placement {
  readonly dir: string;
  readonly shards: readonly { readonly file: string; readonly bytes: number }[];
  readonly tensors: readonly (readonly [string, number, number])[];
}

/**
 * A transfer that reads the daemon's artifact files in place (same host, readable by this process) and
 * runs the executor here: the daemon copies nothing, strided slices come straight from the page cache.
 *
 * @throws TC_ERR_FORBIDDEN when this process cannot read the daemon's files (use 'shm' or 'tcp' then).
 */
export async function openFileTransfer(
  control: ControlClient,
  plan: LoadPlan,
  index: CanonicalIndex,
  remaining: () => number,
): Promise<Transfer> {
  remaining();
  const placement = await control.json<Placement>('GET', `/v1/artifacts/${encodeURIComponent(plan.artifactId)}/placement`);
  for (const s of placement.shards) {
    const path = join(placement.dir, s.file);
    const st = await stat(path).catch((error: unknown) => {
      throw tcError(
        'TC_ERR_FORBIDDEN',
        `cannot read the daemon's file ${path} (is the daemon on this host, readable by this user?); use --shm or TCP`,
        { cause: error },
      );
    });
    if (st.size !== s.bytes) throw tcError('TC_ERR_INTERNAL', `${path}: ${st.size} bytes on disk, the daemon says ${s.bytes}`);
  }
  const where = new Map(placement.tensors.map(([name, shard, position]) => [name, { shard, position }]));
  const source = new FileSource(
    index.tensors.map((t) => {
      const p = where.get(t.name);
      if (p === undefined) throw tcError('TC_ERR_INTERNAL', `the daemon's placement lacks tensor '${t.name}'`);
      return { offset: t.offset, length: t.byteLength, path: join(placement.dir, placement.shards[p.shard]!.file), position: p.position };
    }),
  );
  const materializer = new Materializer();
  return {
    read: async (start, end, dest) => {
      await materializer.run(programWindow(plan.program, start, end), source, dest);
      remaining();
    },
    source: () => 'client_materialized',
    connections: 0,
    close: () => source.close(),
  };
}
