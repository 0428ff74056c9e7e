// Serving views: resolve (artifact, view) to a program, and hold the result as a replica so the next
// consumer on this host (or another daemon) reads it from memory: a memory replica (buffers the data plane
// sends from) or a shared-memory replica (a file on tmpfs that same-host clients read or map).

import { open, mkdir, rm, readdir, stat, unlink } from 'node:fs/promises';
import { writeFully } from '../format/file-io.js';
import { join } from 'node:path';
import { ChunkChecksummer } from '../bytes/chunk-checksums.js';
import { Materializer } from '../bytes/materialize.js';
import { isTensorcastError, tcError } from '../core/errors.js';
import { sha256Hex } from '../core/hashing.js';
import type { Logger } from '../core/logger.js';
import { ProgramCache } from '../layout/program-cache.js';
import { programWindow, type ByteRangeProgram } from '../layout/program.js';
import { normalizeView, type NormalizedView, type ViewSpec } from '../layout/view.js';
import type { ArtifactStore, StoredArtifact } from './artifact-store.js';
import { ReplicaCache, type Replica } from './replica-cache.js';
import { StagingPool } from './staging-pool.js';
import { WindowFill } from './window-fill.js';

/** What replica notifications carry. */
export type ReplicaInfo = Pick<Replica, 'key' | 'artifactId' | 'viewId' | 'tier' | 'bytes'>;
import type { MaterializeStats } from '../bytes/materialize-stats.js';

/** A view resolved against a stored artifact. */
export interface ResolvedView {
  readonly artifact: StoredArtifact;
  readonly view: NormalizedView;
  readonly program: ByteRangeProgram;
}

/** Largest buffer of one memory-replica segment (Node 20 caps a Buffer at 4 GiB). */
const SEGMENT_BYTES = 1 << 30;
/** How long a load may wait by default when its caller gave no deadline (ms). */
const DEFAULT_WAIT_MS = 30_000;

/** Options of the view service. */
export interface ViewServiceOptions {
  readonly store: ArtifactStore;
  readonly budgetBytes: number;
  /** Folder on tmpfs for shared-memory replicas (cleared at start). */
  readonly shmDir: string;
  readonly log: Logger;
  /** Called when a replica appears or goes (to keep the catalog's replica registry current). */
  readonly onReplica?: (replica: ReplicaInfo, present: boolean) => void;
  /** Called after every materialization (metrics). */
  readonly onMaterialize?: (stats: MaterializeStats) => void;
  /**
   * When a data-plane read earns a memory replica: 'reuse' (default) once bytes of the view are read a
   * second time (a view read once streams through pooled buffers and leaves the cache alone), 'always' on
   * the first read.
   */
  readonly admission?: 'reuse' | 'always';
  /**
   * Bound of the staging pool (bytes): buffers that stream uncached ranges and write shm replicas, outside
   * the replica budget (default {@link defaultStagingBytes} of the budget).
   */
  readonly stagingBytes?: number;
}

/**
 * The default staging bound for a replica budget: an eighth of it, at least 64 MiB (two streams of two
 * 16 MiB stages) and at most 1 GiB.
 */
export function defaultStagingBytes(budgetBytes: number): number {
  return Math.min(1 << 30, Math.max(64 << 20, Math.floor(budgetBytes / 8)));
}

/** Views whose reads are remembered for admission. */
const ADMISSION_MEMORY = 4096;

/**
 * Resolves views and keeps their replicas.
 *
 * @example const rv = await views.resolve(artifactId, spec, viewId); const r = await views.memoryReplica(rv);
 */
export class ViewService {
  readonly cache: ReplicaCache;
  readonly programs = new ProgramCache(256);
  /** Staging buffers for streamed ranges and shm builds, under their own bound. */
  readonly stages: StagingPool;
  private readonly materializer = new Materializer();
  /** Shm files get a fresh name per build, so removing a dropped replica's file never hits its successor. */
  private shmBuilds = 0;
  /** Per view key: the byte ranges already read once (sorted, merged). */
  private readonly seen = new Map<string, [number, number][]>();
  private readonly opts: ViewServiceOptions;

  constructor(opts: ViewServiceOptions) {
    this.opts = opts;
    this.stages = new StagingPool({ boundBytes: opts.stagingBytes ?? defaultStagingBytes(opts.budgetBytes) });
    this.cache = new ReplicaCache(opts.budgetBytes, (r, reason) => {
      opts.log.debug({ key: r.key, tier: r.tier, bytes: r.bytes, reason }, 'replica dropped');
      if (r.path !== undefined) void unlink(r.path).catch(() => undefined);
      opts.onReplica?.(r, false);
    });
  }

  /** Creates the shm folder and removes files a previous run left behind. */
  async init(): Promise<void> {
    await mkdir(this.opts.shmDir, { recursive: true });
    for (const name of await readdir(this.opts.shmDir)) await rm(join(this.opts.shmDir, name), { force: true, recursive: true });
  }

  /**
   * Resolves `spec` (undefined = the whole artifact) against a stored artifact. When `expectedViewId` is
   * given it must match the id computed here (client and daemon agree on the view).
   *
   * @throws TC_ERR_NOT_FOUND, TC_ERR_VIEW_*, TC_ERR_INVALID_ARGUMENT on a view id mismatch
   */
  async resolve(artifactId: string, spec: ViewSpec | undefined, expectedViewId?: string | null): Promise<ResolvedView> {
    const artifact = await this.opts.store.open(artifactId);
    const view = normalizeView(artifact.index, spec);
    if (expectedViewId !== undefined && (expectedViewId ?? undefined) !== view.viewId) {
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `view id mismatch: the client computed ${expectedViewId ?? 'identity'}, the daemon ${view.viewId ?? 'identity'}`,
      );
    }
    return { artifact, view, program: this.programs.get(view) };
  }

  /** True when a replica of `rv` is already held on `tier`. */
  hasReplica(rv: ResolvedView, tier: 'memory' | 'shm'): boolean {
    return this.cache.has(this.key(rv, tier));
  }

  /**
   * Whether a read of `[start, end)` should be served from a memory replica (building one if needed): true
   * when the view already has one, under 'always', or when part of the range was read before.
   */
  admit(rv: ResolvedView, start: number, end: number): boolean {
    if (this.opts.admission === 'always' || this.hasReplica(rv, 'memory')) return true;
    const key = this.key(rv, 'memory');
    const read = this.seen.get(key) ?? [];
    this.seen.delete(key);
    if (this.seen.size >= ADMISSION_MEMORY) this.seen.delete(this.seen.keys().next().value!);
    const again = read.some(([s, e]) => s < end && start < e);
    this.seen.set(key, mergeInterval(read, start, end));
    return again;
  }

  private key(rv: ResolvedView, tier: string): string {
    return `${rv.artifact.artifactId}/${rv.view.viewId ?? 'canonical'}/${tier}`;
  }

  /**
   * A memory replica of the view (reference taken: release it). It is allocated at once and filled on
   * demand in windows: `replica.ready(start, end, deadline)` fills the windows a reader needs (several
   * readers fill different windows in parallel, and wait for windows another reader is filling). Undefined
   * when the view cannot fit the budget now; the caller then streams windows with {@link materializeRange}.
   *
   * @throws TC_ERR_TIMEOUT when a build of the same replica in flight outlasts `deadline` (Unix ms).
   */
  memoryReplica(rv: ResolvedView, deadline = Date.now() + DEFAULT_WAIT_MS): Promise<Replica | undefined> {
    const bytes = rv.program.totalBytes;
    const key = this.key(rv, 'memory');
    return this.cache.acquireIfFits(
      key,
      bytes,
      () => {
        const segments: Buffer[] = [];
        for (let start = 0; start < bytes; start += SEGMENT_BYTES)
          segments.push(Buffer.allocUnsafeSlow(Math.min(SEGMENT_BYTES, bytes - start)));
        const fill = new WindowFill(bytes, async (start, end) => {
          const seg = segments[Math.floor(start / SEGMENT_BYTES)]!;
          const at = start % SEGMENT_BYTES;
          this.opts.onMaterialize?.(
            await this.materializer.run(programWindow(rv.program, start, end), rv.artifact.source, seg.subarray(at, at + end - start)),
          );
        });
        const built = {
          key,
          artifactId: rv.artifact.artifactId,
          viewId: rv.view.viewId,
          tier: 'memory' as const,
          bytes,
          segments,
          path: undefined,
          ready: fill.ready,
        };
        this.opts.onReplica?.(built, true);
        return Promise.resolve(built);
      },
      deadline,
    );
  }

  /**
   * A shared-memory replica (a file under the shm folder holding the view's bytes, with CRC32C per chunk),
   * built on first use from the memory replica when there is one, else from the artifact's files. A held
   * replica whose file was deleted or truncated is dropped and rebuilt. When the budget is full of replicas
   * being read, waits for room until `deadline` (Unix ms).
   *
   * @throws TC_ERR_BUDGET when the view is larger than the whole budget, or no room came before the
   *   deadline; TC_ERR_TIMEOUT when a stage or a build in flight outlasts the deadline.
   */
  async shmReplica(rv: ResolvedView, deadline = Date.now() + DEFAULT_WAIT_MS): Promise<Replica> {
    const bytes = rv.program.totalBytes;
    if (bytes > this.cache.budgetBytes) {
      throw tcError(
        'TC_ERR_BUDGET',
        `the view is ${bytes} bytes, more than the whole memory budget (${this.cache.budgetBytes}); load it over TCP instead`,
      );
    }
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      let replica: Replica;
      try {
        replica = await this.cache.acquire(this.key(rv, 'shm'), bytes, () => this.buildShm(rv, deadline), deadline);
      } catch (error) {
        if (!isTensorcastError(error, 'TC_ERR_BUDGET') || Date.now() + wait > deadline) throw error;
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      if (await this.shmFileIntact(replica)) return replica;
      this.cache.discard(replica);
      this.cache.release(replica);
      if (Date.now() > deadline) throw tcError('TC_ERR_TIMEOUT', `the shm replica of ${replica.key} kept being damaged until the deadline`);
    }
  }

  /** Drops a replica found broken (a client saw its bytes fail their checksum); the next use rebuilds it. */
  discard(replica: Replica): void {
    this.opts.log.warn({ key: replica.key, tier: replica.tier }, 'replica dropped: its bytes were found changed');
    this.cache.discard(replica);
  }

  /** True when the replica's file still exists with its full length. */
  private async shmFileIntact(replica: Replica): Promise<boolean> {
    const st = await stat(replica.path!).catch(() => undefined);
    if (st?.isFile() === true && st.size === replica.bytes) return true;
    this.opts.log.warn(
      { key: replica.key, path: replica.path, size: st?.size ?? null, bytes: replica.bytes },
      'shm replica file missing or truncated: rebuilding',
    );
    return false;
  }

  private async buildShm(rv: ResolvedView, deadline: number): Promise<Omit<Replica, 'refs' | 'lastUsed'>> {
    const bytes = rv.program.totalBytes;
    const key = this.key(rv, 'shm');
    const path = join(this.opts.shmDir, `${sha256Hex(key).slice(0, 32)}-${this.shmBuilds++}.bin`);
    const sums = new ChunkChecksummer();
    const fh = await open(path, 'w', 0o600);
    try {
      const mem = this.cache.get(this.key(rv, 'memory'));
      try {
        if (mem !== undefined) {
          await mem.ready(0, mem.bytes, deadline);
          let at = 0;
          for (const seg of mem.segments) {
            sums.push(seg);
            at += await writeFully(fh, seg, at);
          }
        } else {
          const stage = await this.stages.acquire(deadline, `building the shm replica of ${key}`);
          try {
            for (let start = 0; start < bytes; start += stage.length) {
              const end = Math.min(bytes, start + stage.length);
              const part = stage.subarray(0, end - start);
              this.opts.onMaterialize?.(await this.materializer.run(programWindow(rv.program, start, end), rv.artifact.source, part));
              sums.push(part);
              await writeFully(fh, part, start);
            }
          } finally {
            this.stages.release(stage);
          }
        }
      } finally {
        if (mem !== undefined) this.cache.release(mem);
      }
    } catch (error) {
      await fh.close();
      await unlink(path).catch(() => undefined);
      throw error;
    }
    await fh.close();
    const built = {
      key,
      artifactId: rv.artifact.artifactId,
      viewId: rv.view.viewId,
      tier: 'shm' as const,
      bytes,
      segments: [],
      path,
      ready: () => Promise.resolve(),
      checksums: sums.finish(),
    };
    this.opts.onReplica?.(built, true);
    return built;
  }

  /** Materializes `[start, end)` of the view into `dest` without keeping a replica. */
  async materializeRange(rv: ResolvedView, start: number, end: number, dest: Uint8Array): Promise<void> {
    this.opts.onMaterialize?.(await this.materializer.run(programWindow(rv.program, start, end), rv.artifact.source, dest));
  }

  /** Drops every replica, frees the staging pool and removes the shm folder (shutdown). */
  async close(): Promise<void> {
    this.stages.close();
    this.cache.clear();
    await rm(this.opts.shmDir, { recursive: true, force: true });
  }
}

/** Adds `[start, end)` to sorted, disjoint intervals, merging what touches. */
function mergeInterval(list: readonly [number, number][], start: number, end: number): [number, number][] {
  const out: [number, number][] = [];
  let s = start;
  let e = end;
  for (const [a, b] of list) {
    if (b < s || a > e) out.push([a, b]);
    else {
      s = Math.min(s, a);
      e = Math.max(e, b);
    }
  }
  out.push([s, e]);
  return out.sort((x, y) => x[0] - y[0]);
}
