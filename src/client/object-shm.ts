// Objects through shared memory on the daemon's host (docs/api.md, "Objects"): a put gets a tmpfs file from
// the daemon, copies the caller's bytes into it once (positional writes, the CRC32C computed alongside on
// another thread) and commits with that CRC; a get copies out of the
// object's segment file under a read lease and checks the CRC the daemon reported. Any failure of a put
// deletes it on the daemon; a get's lease is always released.

import { open } from 'node:fs/promises';
import { crc32c } from '../bytes/crc32c.js';
import { native } from '../bytes/native.js';
import { tcError, wrapIoError } from '../core/errors.js';
import type { ShmGetResponse, ShmPutCommitResponse, ShmPutResponse } from '../protocol/http/objects.js';
import type { ControlClient } from '../transport/control-client.js';

/** The PUT fields an shm put sends along (as the PUT frame's). */
export interface ShmPutFields {
  readonly txn?: string;
  readonly ifVersion?: number | null;
  readonly ttlMs?: number;
  readonly waitForRoom?: boolean;
}

/** How an shm request reaches the daemon. */
export interface ShmContext {
  readonly control: ControlClient;
  /** The store token header, when the client has one. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * `details.reason` of the TC_ERR_FORBIDDEN an shm put rejects with when this process cannot open the file the
 * daemon created (another host, container or user): the caller may use TCP instead.
 */
export const SHM_UNREACHABLE = 'shm_unreachable';

/** Extra time given to an HTTP request over the deadline the daemon enforces itself. */
const SLACK_MS = 5000;

/**
 * Puts `data` under `key` through a daemon-created tmpfs file. With `fallbackOnOpen`, a file this process
 * cannot open rejects with TC_ERR_FORBIDDEN, reason {@link SHM_UNREACHABLE} (after deleting the put), so the
 * caller can use TCP.
 *
 * @throws the daemon's codes (TC_ERR_AUTH, TC_ERR_BACKPRESSURE, TC_ERR_BUDGET, TC_ERR_CONFLICT, TC_ERR_CHECKSUM, ...)
 */
export async function shmPut(
  ctx: ShmContext,
  key: string,
  data: Uint8Array,
  fields: ShmPutFields,
  timeoutMs: number,
  fallbackOnOpen: boolean,
  signal?: AbortSignal,
): Promise<{ key: string; bytes: number; version: number }> {
  const deadline = Date.now() + timeoutMs;
  const left = (): number => {
    const ms = deadline - Date.now();
    if (ms <= 0) throw tcError('TC_ERR_TIMEOUT', `put of '${key}' did not finish within ${timeoutMs} ms`);
    return ms;
  };
  const created = await ctx.control.json<ShmPutResponse>(
    'POST',
    '/v1/objects/shm-puts',
    { key, size: data.length, ...fields, timeoutMs },
    timeoutMs + SLACK_MS,
    ctx.headers,
  );
  const putPath = `/v1/objects/shm-puts/${encodeURIComponent(created.putId)}`;
  try {
    if (created.size !== data.length)
      throw tcError('TC_ERR_PROTOCOL', `shm put of '${key}': the daemon made room for ${created.size} bytes, not ${data.length}`);
    signal?.throwIfAborted();
    const crc = await writeFile(created.path, data, fallbackOnOpen);
    signal?.throwIfAborted();
    return await ctx.control.json<ShmPutCommitResponse>('POST', `${putPath}/commit`, { crc }, left() + SLACK_MS, ctx.headers);
  } catch (error) {
    await ctx.control.json('DELETE', putPath, undefined, 10_000, ctx.headers).catch(() => undefined);
    throw error;
  }
}

/** Copies `data` into the file at `path` (one copy) and returns its CRC32C. */
async function writeFile(path: string, data: Uint8Array, fallbackOnOpen: boolean): Promise<number> {
  const fh = await open(path, 'r+').catch((error: unknown) => {
    if (fallbackOnOpen)
      throw tcError('TC_ERR_FORBIDDEN', `cannot open the daemon's shm file ${path}`, {
        cause: error,
        details: { path, reason: SHM_UNREACHABLE },
      });
    throw wrapIoError(error, 'cannot open the shm put file', path);
  });
  try {
    const st = await fh.stat();
    if (st.size < data.length)
      throw tcError('TC_ERR_INTERNAL', `shm put file ${path} holds ${st.size} bytes, the object needs ${data.length}`);
    if (data.length === 0) return 0;
    // Positional writes (no mapping: a fresh mapping per put costs a page-table fault per page) and, at
    // the same time on another libuv thread, the CRC32C of the source.
    const writing = (async () => {
      for (let at = 0; at < data.length;) {
        const { bytesWritten } = await fh.write(data, at, Math.min(data.length - at, 64 << 20), at);
        at += bytesWritten;
      }
    })();
    let crc: Promise<number>;
    if (native !== undefined) {
      const out = new Uint32Array(1);
      crc = native.crcChunks(data, data.length, out).then(() => out[0]!);
    } else crc = Promise.resolve(crc32c(data));
    const [w, c] = await Promise.allSettled([writing, crc]);
    if (w.status === 'rejected') throw w.reason;
    if (c.status === 'rejected') throw c.reason;
    return c.value;
  } finally {
    await fh.close();
  }
}

/**
 * Reads `key` out of its shm segment (into `into` when given). Rejects with the daemon's TC_ERR_NOT_FOUND
 * (details.reason `not_in_shm` when the object lives elsewhere: use TCP) and never resolves with bytes that
 * failed the CRC check. With `fallbackOnOpen`, a file this process cannot open rejects with
 * TC_ERR_FORBIDDEN, reason {@link SHM_UNREACHABLE} (the lease released), so the caller can use TCP.
 *
 * @throws TC_ERR_NOT_FOUND, TC_ERR_OBJECT_LOST, TC_ERR_AUTH, TC_ERR_SHORT_READ, TC_ERR_DESTINATION_SIZE, TC_ERR_CHECKSUM
 */
export async function shmGet(
  ctx: ShmContext,
  key: string,
  into: Uint8Array | undefined,
  timeoutMs: number,
  fallbackOnOpen: boolean,
): Promise<{ key: string; bytes: number; version: number; data: Uint8Array }> {
  const lease = await ctx.control.json<ShmGetResponse>(
    'POST',
    '/v1/objects/shm-gets',
    { key, ...(into === undefined ? {} : { expectBytes: into.length }) },
    timeoutMs,
    ctx.headers,
  );
  try {
    if (into !== undefined && lease.size < into.length)
      throw tcError('TC_ERR_SHORT_READ', `'${key}' is ${lease.size} bytes; the destination holds ${into.length}`);
    if (into !== undefined && lease.size > into.length)
      throw tcError('TC_ERR_DESTINATION_SIZE', `'${key}' is ${lease.size} bytes; the destination holds only ${into.length}`);
    const data = into ?? Buffer.allocUnsafeSlow(lease.size);
    if (lease.size > 0) await readFile(lease.path, data, lease.crc, key, fallbackOnOpen);
    return { key, bytes: lease.size, version: lease.version, data };
  } finally {
    await ctx.control
      .json('DELETE', `/v1/objects/shm-gets/${encodeURIComponent(lease.leaseId)}`, undefined, 10_000, ctx.headers)
      .catch(() => undefined);
  }
}

/** Reads `dest.length` bytes of the file at `path` into `dest` and checks them against `crc`. */
async function readFile(path: string, dest: Uint8Array, crc: number, key: string, fallbackOnOpen: boolean): Promise<void> {
  const fh = await open(path, 'r').catch((error: unknown) => {
    if (fallbackOnOpen)
      throw tcError('TC_ERR_FORBIDDEN', `cannot open the daemon's shm file ${path}`, {
        cause: error,
        details: { path, reason: SHM_UNREACHABLE },
      });
    throw wrapIoError(error, 'cannot open the shm object file', path);
  });
  try {
    let ok: boolean;
    if (native !== undefined) {
      let bad: number;
      try {
        bad = await native.readChunks(fh.fd, 0, dest, dest.length, Uint32Array.of(crc >>> 0));
      } catch (error) {
        const code = (error as { code?: string }).code === 'TC_ERR_SHORT_READ' ? 'TC_ERR_SHORT_READ' : 'TC_ERR_IO';
        throw tcError(code, `shm object file ${path}: ${(error as Error).message}`, { cause: error });
      }
      ok = bad < 0;
    } else {
      for (let at = 0; at < dest.length;) {
        const { bytesRead } = await fh.read(dest, at, dest.length - at, at);
        if (bytesRead === 0) throw tcError('TC_ERR_SHORT_READ', `shm object file ${path} ended after ${at} of ${dest.length} bytes`);
        at += bytesRead;
      }
      ok = crc32c(dest) === crc >>> 0;
    }
    if (!ok) throw tcError('TC_ERR_CHECKSUM', `'${key}': the bytes read from ${path} do not match the object's CRC32C`);
  } finally {
    await fh.close();
  }
}
