// Moving a planned view's bytes into the caller's memory: over the TCP data plane (the range split across
// pooled connections), through a shared-memory lease (a file on tmpfs the daemon fills and pins), or, on
// the daemon's host, by reading the daemon's immutable artifact files in place and materializing here.
// Every transfer reports the route the daemon said it took.

import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSource } from '../bytes/file-source.js';
import { Materializer } from '../bytes/materialize.js';
import { checkSums, checksumError, verifyChunks } from '../bytes/chunk-checksums.js';
import { native } from '../bytes/native.js';
import { isTensorcastError, tcError, wrapIoError } from '../core/errors.js';
import type { CanonicalIndex } from '../layout/canonical-index.js';
import { compileProgram, programWindow } from '../layout/program.js';
import { normalizeView } from '../layout/view.js';
import { artifactPath, type Placement } from '../protocol/http/artifacts.js';
import { leasePath, type ShmLeaseRequest, type ShmLeaseResponse } from '../protocol/http/loads.js';
import { ROUTE_KINDS, type FallbackReason, type RouteChoice, type RouteKind } from '../protocol/route-kinds.js';
import type { ConnectionPool } from '../transport/connection-pool.js';
import type { ControlClient } from '../transport/control-client.js';
import type { LoadPlan } from './tensorcast-client.js';

/** An open transfer of one planned view (see {@link TensorcastClient.openTransfer}). */
export interface Transfer {
  /**
   * Reads `[start, end)` of the view's output into `dest` (exactly that long). `signal` cancels a read over
   * the data plane (it then rejects with the signal's reason, and nothing lands in `dest` afterwards); the
   * same-host transports finish the read they started.
   */
  read(start: number, end: number, dest: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** How the daemon produced the bytes so far: replica_hit, materialized, streamed or client_materialized. */
  source(): string;
  /** The route the daemon reported (the least preferred one when reads took several). */
  route(): RouteKind;
  /** What the daemon reported of bytes it pulled from other daemons for this transfer. */
  remote(): TransferRemote;
  readonly connections: number;
  close(): Promise<void>;
}

/** Bytes a daemon pulled from other daemons for a transfer, and from where. */
export interface TransferRemote {
  /** Why the load fell back from a preferred route, when it did. */
  readonly fallback: FallbackReason | null;
  /** The daemon the bytes came from (remote routes). */
  readonly sourceDaemon: string | null;
  /** Bytes that crossed between daemons. */
  readonly wireBytes: number;
  /** Source bytes read to produce the delivered bytes (0 when the daemon did not say). */
  readonly readBytes: number;
}

const NO_REMOTE: TransferRemote = { fallback: null, sourceDaemon: null, wireBytes: 0, readBytes: 0 };

/** Ranges below this are not split across connections. */
const MIN_PART_BYTES = 16 << 20;
/**
 * shm reads: checksum chunks per group (read, then verified, as one), and groups in flight (with the addon,
 * each group is read and verified in one pass on the libuv pool, so groups in flight use several cores).
 */
const CHUNKS_PER_GROUP = 4;
const GROUPS_IN_FLIGHT = native === undefined ? 3 : 4;

/**
 * A transfer over the data plane: each read is split across up to `parts` pooled connections. When one
 * part fails, the others are cancelled before the read rejects, so no byte lands in `dest` afterwards.
 */
export function openTcpTransfer(
  pool: ConnectionPool,
  plan: LoadPlan,
  parts: number,
  remaining: () => number,
  route: RouteChoice = 'auto',
): Transfer {
  const sources = new Set<string>();
  const routes = new Set<RouteKind>();
  const remote = { fallback: null as FallbackReason | null, sourceDaemon: null as string | null, wireBytes: 0, readBytes: 0 };
  return {
    read: async (start, end, dest, signal) => {
      const total = end - start;
      if (total === 0) return;
      signal?.throwIfAborted();
      const n = Math.max(1, Math.min(parts, Math.ceil(total / MIN_PART_BYTES)));
      const step = Math.ceil(total / n / 4096) * 4096;
      const ranges: [number, number][] = [];
      for (let s = start; s < end; s += step) ranges.push([s, Math.min(end, s + step)]);
      const abort = new AbortController();
      const cancel = (): void => abort.abort(signal?.reason);
      signal?.addEventListener('abort', cancel, { once: true });
      const results = await Promise.allSettled(
        ranges.map(async ([s, e]) => {
          try {
            const conn = await pool.acquire(remaining());
            try {
              const r = await conn.load(
                {
                  artifactId: plan.artifactId,
                  view: plan.view,
                  viewId: plan.viewId,
                  start: s,
                  end: e,
                  timeoutMs: remaining(),
                  ...(route === 'auto' ? {} : { route }),
                },
                dest.subarray(s - start, e - start),
                abort.signal,
              );
              sources.add(r.source);
              routes.add(r.route);
              remote.fallback ??= r.fallback ?? null;
              remote.sourceDaemon ??= r.sourceDaemon ?? null;
              remote.wireBytes += r.wireBytes ?? 0;
              remote.readBytes += r.readBytes ?? 0;
            } finally {
              pool.release(conn);
            }
          } catch (error) {
            // The first failure cancels every other part (their later frames are dropped, not written).
            if (!abort.signal.aborted) abort.abort(tcError('TC_ERR_ABORTED', 'another part of this load failed', { cause: error }));
            throw error;
          }
        }),
      );
      signal?.removeEventListener('abort', cancel);
      // Report the failure that started it, not the aborts it caused in the other parts.
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      const first = rejected.find((r) => !isSiblingAbort(r.reason, abort)) ?? rejected[0];
      if (first !== undefined) throw signal?.aborted === true ? signal.reason : first.reason;
    },
    source: () => (sources.has('materialized') ? 'materialized' : sources.has('streamed') ? 'streamed' : 'replica_hit'),
    route: () => leastPreferred(routes),
    remote: () => ({ ...remote }),
    connections: parts,
    close: () => Promise.resolve(),
  };
}

/** True when `reason` is the abort this transfer raised itself (so the original failure is reported). */
function isSiblingAbort(reason: unknown, abort: AbortController): boolean {
  return abort.signal.aborted && reason === abort.signal.reason;
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
  const request: ShmLeaseRequest = {
    artifactId: plan.artifactId,
    view: (plan.view as Record<string, unknown> | undefined) ?? null,
    viewId: plan.viewId ?? null,
    timeoutMs,
  };
  const lease = await control.json<ShmLeaseResponse>('POST', '/v1/shm-leases', request, timeoutMs + 5000);
  let discard = false;
  const release = (): Promise<unknown> =>
    control.json('DELETE', `${leasePath(lease.leaseId)}${discard ? '?discard=1' : ''}`).catch(() => undefined);
  const total = lease.bytes;
  if (total !== plan.totalBytes) {
    await release();
    throw tcError('TC_ERR_INTERNAL', `shm lease holds ${total} bytes, expected ${plan.totalBytes}`);
  }
  const sums = lease.checksums;
  const chunk = sums.chunkBytes;
  const where = `shm lease ${lease.path}`;
  let checkedRead: (start: number, bytes: Uint8Array) => Promise<void>;
  let closeFile: () => Promise<void>;
  try {
    checkSums(sums, total, where);
    if (native !== undefined) {
      const fh = await open(lease.path, 'r').catch((error: unknown) => {
        throw wrapIoError(error, 'cannot open the shm lease file', lease.path);
      });
      checkedRead = nativeCheckedRead(fh, sums, where);
      closeFile = () => fh.close();
    } else {
      // The lease file is one contiguous byte space: the executor reads it in pieces, several in flight.
      const file = FileSource.fromFile(lease.path, total);
      const materializer = new Materializer();
      checkedRead = async (start, bytes) => {
        const run = { kind: 'contiguous' as const, dst: 0, src: start, length: bytes.length };
        await materializer.run({ runs: bytes.length > 0 ? [run] : [], totalBytes: bytes.length }, file, bytes);
        verifyChunks(sums, total, start, bytes, where);
      };
      closeFile = () => file.close();
    }
  } catch (error) {
    await release();
    throw error;
  }
  const chunkEnd = (c: number): number => Math.min(total, (c + 1) * chunk);
  const readAndCheck = async (start: number, bytes: Uint8Array): Promise<void> => {
    try {
      await checkedRead(start, bytes);
    } catch (error) {
      if (isTensorcastError(error, 'TC_ERR_CHECKSUM')) discard = true;
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
      // Whole chunks are read in groups, several in flight, and each group is checked as soon as it landed:
      // the CRC32C of one group (on this thread) overlaps the reads of the next (on the libuv pool).
      const groups: [number, number][] = [];
      for (let g = a; g < b; g += CHUNKS_PER_GROUP) groups.push([g, Math.min(b, g + CHUNKS_PER_GROUP)]);
      let failed = false;
      const worker = async (): Promise<void> => {
        for (let group = groups.shift(); group !== undefined && !failed; group = groups.shift()) {
          const bytes = dest.subarray(group[0] * chunk - start, chunkEnd(group[1] - 1) - start);
          try {
            await readAndCheck(group[0] * chunk, bytes);
          } catch (error) {
            failed = true;
            throw error;
          }
        }
      };
      const reads = await Promise.allSettled([
        ...Array.from({ length: Math.min(GROUPS_IN_FLIGHT, groups.length) }, worker),
        ...edges.map(async (c) => {
          const scratch = Buffer.allocUnsafe(chunkEnd(c) - c * chunk);
          await readAndCheck(c * chunk, scratch);
          const from = Math.max(start, c * chunk);
          const to = Math.min(end, chunkEnd(c));
          dest.set(scratch.subarray(from - c * chunk, to - c * chunk), from - start);
        }),
      ]);
      // Every read finished before failing, so nothing writes into dest after the promise settles.
      for (const r of reads) if (r.status === 'rejected') throw r.reason;
      remaining();
    },
    source: () => lease.source,
    route: () => lease.route,
    remote: () => NO_REMOTE,
    connections: 1,
    close: async () => {
      await closeFile();
      await release();
    },
  };
}

/**
 * Reads whole chunks of a lease file with the addon: each group is read and checked against its CRC32C in one
 * pass on the libuv pool (the bytes are checked while still in cache, and this thread stays free).
 */
function nativeCheckedRead(
  fh: FileHandle,
  sums: ShmLeaseResponse['checksums'],
  where: string,
): (start: number, bytes: Uint8Array) => Promise<void> {
  const expected = Uint32Array.from(sums.crcs);
  const chunk = sums.chunkBytes;
  return async (start, bytes) => {
    const first = start / chunk;
    let bad: number;
    try {
      bad = await native!.readChunks(fh.fd, start, bytes, chunk, expected.subarray(first, first + Math.ceil(bytes.length / chunk)));
    } catch (error) {
      const code = (error as { code?: string }).code === 'TC_ERR_SHORT_READ' ? 'TC_ERR_SHORT_READ' : 'TC_ERR_IO';
      throw tcError(code, `${where}: ${(error as Error).message}`, { cause: error });
    }
    if (bad >= 0) throw checksumError(where, start + bad * chunk, Math.min(chunk, bytes.length - bad * chunk));
  };
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
  const placement = await control.json<Placement>('GET', artifactPath(plan.artifactId, '/placement'));
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
  // The daemon planned the view; compile it here against the same index (the view id must agree).
  const view = normalizeView(index, plan.view);
  if ((view.viewId ?? undefined) !== plan.viewId)
    throw tcError(
      'TC_ERR_INTERNAL',
      `view id mismatch: the daemon planned ${plan.viewId ?? 'identity'}, this client computed ${view.viewId ?? 'identity'}`,
    );
  const program = compileProgram(view);
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
      await materializer.run(programWindow(program, start, end), source, dest);
      remaining();
    },
    source: () => 'client_materialized',
    route: () => placement.route,
    remote: () => NO_REMOTE,
    connections: 0,
    close: () => source.close(),
  };
}

/** Of the routes reads took, the least preferred (the one that says most about how the load was served). */
function leastPreferred(routes: ReadonlySet<RouteKind>): RouteKind {
  return [...ROUTE_KINDS].reverse().find((r) => routes.has(r)) ?? ROUTE_KINDS[0];
}
