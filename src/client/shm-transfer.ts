// A transfer through a shared-memory lease: the daemon fills a file on tmpfs and pins it; this client reads
// it and checks every chunk against the CRC32C the daemon computed. A first load is progressive: the daemon
// hands the lease out as soon as the file exists and announces chunks as it writes them, so the reads here
// run while the daemon still materializes the rest.

import { open, type FileHandle } from 'node:fs/promises';
import { checksumError, verifyChunks } from '../bytes/chunk-checksums.js';
import { FileSource } from '../bytes/file-source.js';
import { Materializer } from '../bytes/materialize.js';
import { native } from '../bytes/native.js';
import { isTensorcastError, tcError, wrapIoError } from '../core/errors.js';
import { leasePath, type ShmLeaseRequest } from '../protocol/http/loads.js';
import type { ControlClient } from '../transport/control-client.js';
import { LeaseChunks } from './lease-chunks.js';
import type { LeaseMapping, ShmMappings } from './shm-mappings.js';
import type { LoadPlan } from './tensorcast-client.js';
import type { Transfer } from './transfers.js';

/**
 * Checksum chunks per group (read, then verified, as one), and groups in flight (with the addon, each group
 * is read and verified in one pass on the libuv pool, so groups in flight use several cores).
 */
const CHUNKS_PER_GROUP = 4;
const GROUPS_IN_FLIGHT = native === undefined ? 3 : 4;

/** Reads whole chunks `[start, start + bytes.length)` of the lease file into `bytes` and checks them. */
type CheckedRead = (start: number, bytes: Uint8Array) => Promise<void>;

/**
 * A transfer through a shared-memory lease: taken now, read with positional reads and checked against the
 * lease's per-chunk CRC32C (a chunk only partly wanted is read whole into scratch to be checked; a chunk of
 * a lease still being built is read once the daemon announced it), released at close. A failed check
 * releases the lease with `discard=1`, so the daemon rebuilds the replica.
 *
 * @throws TC_ERR_CHECKSUM when the file's bytes differ from what the daemon wrote; TC_ERR_SHORT_READ when it
 *   was truncated; TC_ERR_BUDGET, TC_ERR_TIMEOUT from the daemon.
 */
export async function openShmTransfer(
  control: ControlClient,
  plan: LoadPlan,
  remaining: () => number,
  mappings?: ShmMappings,
): Promise<Transfer> {
  // The daemon waits for room or a build up to the load's deadline; the request itself is bounded by it too.
  const timeoutMs = Math.min(remaining(), 2 ** 31 - 1);
  const request: ShmLeaseRequest = {
    artifactId: plan.artifactId,
    view: (plan.view as Record<string, unknown> | undefined) ?? null,
    viewId: plan.viewId ?? null,
    timeoutMs,
  };
  const answer = await control.ndjson('POST', '/v1/shm-leases', request, timeoutMs + 5000);
  let lease: LeaseChunks;
  try {
    lease = await LeaseChunks.open(answer, plan.totalBytes);
  } catch (error) {
    // A lease whose answer made no sense is released (a daemon error came before any lease existed).
    if ('lines' in answer) await answer.lines.return();
    const json = 'json' in answer ? (answer.json as { leaseId?: unknown }) : undefined;
    if (typeof json?.leaseId === 'string') await control.json('DELETE', leasePath(json.leaseId)).catch(() => undefined);
    throw error;
  }
  const { leaseId, path, bytes: total, chunkBytes: chunk } = lease.opening;
  let discard = false;
  const release = async (): Promise<void> => {
    // A progressive answer ends right after its last chunk; its lease is complete (and pinned) by then.
    await lease.ended;
    await control.json('DELETE', `${leasePath(leaseId)}${discard ? '?discard=1' : ''}`).catch(() => undefined);
  };
  const where = `shm lease ${path}`;
  let checkedRead: CheckedRead;
  let closeFile: () => Promise<void>;
  try {
    if (native !== undefined && mappings !== undefined) {
      const mapping = await mappings.acquire(path, total);
      checkedRead = mappedCheckedRead(mapping, lease.crcs, chunk, where);
      closeFile = () => Promise.resolve(mappings.release(mapping));
    } else if (native !== undefined) {
      const fh = await open(path, 'r').catch((error: unknown) => {
        throw wrapIoError(error, 'cannot open the shm lease file', path);
      });
      checkedRead = nativeCheckedRead(fh, lease.crcs, chunk, where);
      closeFile = () => fh.close();
    } else {
      // The lease file is one contiguous byte space: the executor reads it in pieces, several in flight.
      const file = FileSource.fromFile(path, total);
      const materializer = new Materializer();
      checkedRead = async (start, bytes) => {
        const run = { kind: 'contiguous' as const, dst: 0, src: start, length: bytes.length };
        await materializer.run({ runs: bytes.length > 0 ? [run] : [], totalBytes: bytes.length }, file, bytes);
        verifyChunks(lease.sums, total, start, bytes, where);
      };
      closeFile = () => file.close();
    }
  } catch (error) {
    await release();
    throw error;
  }
  const chunkEnd = (c: number): number => Math.min(total, (c + 1) * chunk);
  // Chunks [first, last) once the daemon announced them, read and checked.
  const readAndCheck = async (first: number, last: number, bytes: Uint8Array): Promise<void> => {
    await lease.until(last);
    try {
      await checkedRead(first * chunk, bytes);
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
      // Whole chunks are read in groups, several in flight, in order (a lease still being built fills in
      // order): each group is checked as soon as it landed.
      const groups: [number, number][] = [];
      for (let g = a; g < b; g += CHUNKS_PER_GROUP) groups.push([g, Math.min(b, g + CHUNKS_PER_GROUP)]);
      let failed = false;
      const worker = async (): Promise<void> => {
        for (let group = groups.shift(); group !== undefined && !failed; group = groups.shift()) {
          try {
            await readAndCheck(group[0], group[1], dest.subarray(group[0] * chunk - start, chunkEnd(group[1] - 1) - start));
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
          await readAndCheck(c, c + 1, scratch);
          const from = Math.max(start, c * chunk);
          const to = Math.min(end, chunkEnd(c));
          dest.set(scratch.subarray(from - c * chunk, to - c * chunk), from - start);
        }),
      ]);
      // Every read finished before failing, so nothing writes into dest after the promise settles.
      for (const r of reads) if (r.status === 'rejected') throw r.reason;
      remaining();
    },
    // A progressive lease is a build (its closing answer comes right after the last chunk).
    source: () => lease.result?.source ?? 'materialized',
    route: () => lease.result?.route ?? 'local',
    remote: () => ({ fallback: null, sourceDaemon: null, wireBytes: 0, readBytes: 0 }),
    connections: 1,
    close: async () => {
      await closeFile();
      await release();
    },
  };
}

/** The addon's result of a checked read (the first bad chunk, or -1), as the transfer's errors. */
async function checked(run: () => Promise<number>, start: number, length: number, chunk: number, where: string): Promise<void> {
  let bad: number;
  try {
    bad = await run();
  } catch (error) {
    const code = (error as { code?: string }).code === 'TC_ERR_SHORT_READ' ? 'TC_ERR_SHORT_READ' : 'TC_ERR_IO';
    throw tcError(code, `${where}: ${(error as Error).message}`, { cause: error });
  }
  if (bad >= 0) throw checksumError(where, start + bad * chunk, Math.min(chunk, length - bad * chunk));
}

/**
 * Reads whole chunks of a lease file with the addon: each group is read and checked against its CRC32C in one
 * pass on the libuv pool (the bytes are checked while still in cache, and this thread stays free).
 */
function nativeCheckedRead(fh: FileHandle, crcs: Uint32Array, chunk: number, where: string): CheckedRead {
  return (start, bytes) => {
    const sums = crcs.subarray(start / chunk, start / chunk + Math.ceil(bytes.length / chunk));
    return checked(() => native!.readChunks(fh.fd, start, bytes, chunk, sums), start, bytes.length, chunk, where);
  };
}

/** The same, copying from a mapping the client keeps (a file truncated under it is TC_ERR_SHORT_READ). */
function mappedCheckedRead(mapping: LeaseMapping, crcs: Uint32Array, chunk: number, where: string): CheckedRead {
  return (start, bytes) => {
    const sums = crcs.subarray(start / chunk, start / chunk + Math.ceil(bytes.length / chunk));
    return checked(() => native!.copyChunks(mapping.handle, start, bytes, chunk, sums), start, bytes.length, chunk, where);
  };
}
