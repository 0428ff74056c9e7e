// Moving a planned view's bytes into the caller's memory: over the TCP data plane (the range split across
// pooled connections), through a shared-memory lease (shm-transfer.ts: a file on tmpfs the daemon fills and
// pins), or, on the daemon's host, by reading the daemon's immutable artifact files in place and
// materializing here. Every transfer reports the route the daemon said it took.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSource } from '../bytes/file-source.js';
import { Materializer } from '../bytes/materialize.js';
import { tcError } from '../core/errors.js';
import type { CanonicalIndex } from '../layout/canonical-index.js';
import { compileProgram, programWindow } from '../layout/program.js';
import { normalizeView } from '../layout/view.js';
import { artifactPath, type Placement } from '../protocol/http/artifacts.js';
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
