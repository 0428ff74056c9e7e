// Serving views: resolve (artifact, view) to a program, and hold the result as a replica so the next
// consumer on this host (or another daemon) reads it from memory: a memory replica (buffers the data plane
// sends from) or a shared-memory replica (a file on tmpfs that same-host clients read or map).

import { mkdir, readFile, rm, readdir, stat, unlink } from 'node:fs/promises';
import { writeFully } from '../format/file-io.js';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CHECKSUM_CHUNK_BYTES, ChunkChecksummer, checksumChunks, type ChunkChecksums } from '../bytes/chunk-checksums.js';
import { Materializer } from '../bytes/materialize.js';
import { isTensorcastError, tcError } from '../core/errors.js';
import { sha256Hex } from '../core/hashing.js';
import type { Logger } from '../core/logger.js';
import { ProgramCache } from '../layout/program-cache.js';
import { programWindow, type ByteRangeProgram } from '../layout/program.js';
import { normalizeView, type NormalizedView, type ViewSpec } from '../layout/view.js';
import type { ArtifactStore, StoredArtifact } from './artifact-store.js';
import type { FillContext, RemoteArtifact, RemoteViews } from './remote-views.js';
import type { RouteChoice } from '../protocol/route-kinds.js';
import { ReplicaCache, type Replica } from './replica-cache.js';
import { StagingPool } from './staging-pool.js';
import { ShmSegment, SEGMENT_WINDOW_BYTES } from './shm-segment.js';
import { ShmSegmentPool } from './shm-segment-pool.js';
import { WindowFill } from './window-fill.js';

/** What replica notifications carry. */
export type ReplicaInfo = Pick<Replica, 'key' | 'artifactId' | 'viewId' | 'tier' | 'bytes'>;
import type { MaterializeStats } from '../bytes/materialize-stats.js';

/** A view resolved against an artifact: stored here (`local`), or only known to the cluster. */
export interface ResolvedView {
  readonly artifact: RemoteArtifact;
  /** The artifact's files on this daemon; undefined when another daemon stores it. */
  readonly local: StoredArtifact | undefined;
  readonly view: NormalizedView;
  readonly program: ByteRangeProgram;
}

/** Hears an shm build as it goes (a progressive lease lets its client read chunks as they are written). */
export interface ShmBuildProgress {
  /** The replica's file exists at `path`, sized to the view; chunks of `chunkBytes` follow. */
  opened(path: string, chunkBytes: number): void;
  /** Chunks `[firstChunk, firstChunk + crcs.length)` are written, with these CRC32C (in order, each once). */
  ready(firstChunk: number, crcs: readonly number[]): void;
}

/** Largest buffer of one memory-replica segment (Node 20 caps a Buffer at 4 GiB); shm windows are as large. */
const SEGMENT_BYTES = SEGMENT_WINDOW_BYTES;
/**
 * An shm build materializes a piece, then checksums it on the pool (and announces it to a progressive
 * lease) while it materializes the next. Pieces start at one checksum chunk, so a client's reads start
 * early, and double up to this size, so per-piece costs stay small.
 */
const SHM_PIECE_MAX_BYTES = 32 << 20;
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
  /** The routing layer: artifacts stored by other daemons, and their bytes (absent: a single-host daemon). */
  readonly remote?: RemoteViews;
  /**
   * Bytes of shm segments allocated ahead of need, under the budget (default {@link defaultShmReserveBytes};
   * 0: none, only segments of dropped replicas are reused).
   */
  readonly shmReserveBytes?: number;
  /** An idle shm segment unused this long is freed (ms, default 10 minutes). */
  readonly shmIdleMs?: number;
}

/**
 * The default shm reserve for a replica budget: an eighth of it, at most 1 GiB (the first shm loads of views
 * up to half that size then write into pages allocated at start instead of faulting in fresh ones).
 */
export function defaultShmReserveBytes(budgetBytes: number): number {
  return Math.min(1 << 30, Math.floor(budgetBytes / 8));
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
  /**
   * For lazy artifacts (a connector's objects): more and larger reads in flight, since each is a network
   * request; TP slices along dim 1 are fetched row by row by the source (readRows).
   */
  private readonly remoteMaterializer = new Materializer({ concurrency: 8, readChunkBytes: 16 << 20, blockTargetBytes: 16 << 20 });
  /** Shm files get a fresh name per build, so removing a dropped replica's file never hits its successor. */
  private shmBuilds = 0;
  /** Idle shm segments kept for reuse (counted under the budget as spare). */
  readonly segments: ShmSegmentPool;
  /** The segment of each shm replica, by its file's path. */
  private readonly shmSegments = new Map<string, ShmSegment>();
  /** Segments being freed (waited for at close). */
  private readonly closing = new Set<Promise<void>>();
  /** Per view key: the byte ranges already read once (sorted, merged). */
  private readonly seen = new Map<string, [number, number][]>();
  private readonly opts: ViewServiceOptions;

  constructor(opts: ViewServiceOptions) {
    this.opts = opts;
    this.stages = new StagingPool({ boundBytes: opts.stagingBytes ?? defaultStagingBytes(opts.budgetBytes) });
    this.segments = new ShmSegmentPool({
      dir: join(opts.shmDir, '.pool'),
      reserveBytes: opts.shmReserveBytes ?? defaultShmReserveBytes(opts.budgetBytes),
      ...(opts.shmIdleMs === undefined ? {} : { idleMs: opts.shmIdleMs }),
      room: () => this.cache.budgetBytes - this.cache.usedBytes,
      log: opts.log,
    });
    this.cache = new ReplicaCache(
      opts.budgetBytes,
      (r, reason) => {
        opts.log.debug({ key: r.key, tier: r.tier, bytes: r.bytes, reason }, 'replica dropped');
        if (r.path !== undefined) this.dropShmFile(r.path, reason === 'closed');
        opts.onReplica?.(r, false);
      },
      this.segments,
    );
  }

  /** Creates the shm folder, removes files a previous run left behind, and starts filling the shm reserve. */
  async init(): Promise<void> {
    await mkdir(this.opts.shmDir, { recursive: true });
    for (const name of await readdir(this.opts.shmDir)) await rm(join(this.opts.shmDir, name), { force: true, recursive: true });
    await this.segments.init();
  }

  /** A dropped shm replica's file: its segment goes back to the pool (or is freed at close). */
  private dropShmFile(path: string, closing: boolean): void {
    const seg = this.shmSegments.get(path);
    this.shmSegments.delete(path);
    if (seg === undefined) {
      void unlink(path).catch(() => undefined);
    } else if (closing) {
      const done = seg.close();
      this.closing.add(done);
      void done.finally(() => this.closing.delete(done));
    } else {
      this.segments.give(seg);
    }
  }

  /**
   * Resolves `spec` (undefined = the whole artifact) against an artifact. When `expectedViewId` is given it
   * must match the id computed here (client and daemon agree on the view). An artifact this daemon does not
   * store is resolved from the cluster's catalog (its bytes then come through the routing layer).
   *
   * @throws TC_ERR_NOT_FOUND, TC_ERR_VIEW_*, TC_ERR_INVALID_ARGUMENT on a view id mismatch
   */
  async resolve(artifactId: string, spec: ViewSpec | undefined, expectedViewId?: string | null): Promise<ResolvedView> {
    const { artifact, local } = await this.artifact(artifactId);
    const view = normalizeView(artifact.index, spec);
    if (expectedViewId !== undefined && (expectedViewId ?? undefined) !== view.viewId) {
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `view id mismatch: the client computed ${expectedViewId ?? 'identity'}, the daemon ${view.viewId ?? 'identity'}`,
      );
    }
    return { artifact, local, view, program: this.programs.get(view) };
  }

  /**
   * Produces `[start, end)` of the view's output into `dest`: materialized from the artifact's files here,
   * or pulled from other daemons by the routing layer (by the route `choice` allows).
   */
  private async produce(
    rv: ResolvedView,
    start: number,
    end: number,
    dest: Uint8Array,
    deadline: number,
    ctx: FillContext | undefined,
    choice: RouteChoice = 'auto',
  ): Promise<void> {
    if (rv.local !== undefined && choice === 'auto') {
      const m = rv.local.lazy === undefined ? this.materializer : this.remoteMaterializer;
      const stats = await m.run(programWindow(rv.program, start, end), rv.local.source, dest);
      if (ctx !== undefined) ctx.readBytes += stats.baseReads.bytes + stats.directBytes;
      this.opts.onMaterialize?.(stats);
      return;
    }
    if (this.opts.remote === undefined) throw tcError('TC_ERR_NOT_FOUND', `no artifact ${rv.artifact.artifactId} on this daemon`);
    const request = {
      artifactId: rv.artifact.artifactId,
      view: rv.view,
      program: rv.program,
      canonicalBytes: rv.artifact.index.totalBytes,
      choice,
      start,
      end,
      deadline,
    };
    await this.opts.remote.fill(request, dest, ctx ?? { wireBytes: 0, readBytes: 0 });
  }

  /**
   * An artifact stored here (`local`), else as the cluster's catalog knows it.
   *
   * @throws TC_ERR_NOT_FOUND when neither this daemon nor the cluster has it
   */
  async artifact(artifactId: string): Promise<{ artifact: RemoteArtifact; local: StoredArtifact | undefined }> {
    const local = await this.opts.store.open(artifactId).catch((error: unknown) => {
      if (this.opts.remote !== undefined && isTensorcastError(error, 'TC_ERR_NOT_FOUND')) return undefined;
      throw error;
    });
    return { artifact: local ?? (await this.opts.remote!.artifact(artifactId)), local };
  }

  /**
   * A non-weight file kept with an artifact (config.json, tokenizer files): read here, or fetched from a
   * daemon that stores the artifact.
   *
   * @throws TC_ERR_NOT_FOUND
   */
  async file(artifactId: string, name: string): Promise<Buffer> {
    const { artifact, local } = await this.artifact(artifactId);
    if (!artifact.files.includes(name))
      throw tcError('TC_ERR_NOT_FOUND', `artifact ${artifactId} has no file '${name}'`, { details: { name } });
    if (local !== undefined) return readFile(join(local.dir, name));
    return this.opts.remote!.file(artifactId, name);
  }

  /** True when a replica of `rv` is already held on `tier`. */
  hasReplica(rv: ResolvedView, tier: 'memory' | 'shm'): boolean {
    return this.cache.has(this.key(rv, tier));
  }

  /**
   * Whether a read of `[start, end)` should be served from a memory replica (building one if needed): true
   * when the view already has one, under 'always', for views of artifacts other daemons store, or when part
   * of the range was read before.
   */
  admit(rv: ResolvedView, start: number, end: number): boolean {
    // Bytes pulled from other daemons or from a lazy artifact's connector are kept (under the budget): the
    // next load here is local, and other daemons can fetch the view from here (fan-out grows the set of sources).
    if (this.opts.admission === 'always' || rv.local === undefined || rv.local.lazy !== undefined || this.hasReplica(rv, 'memory'))
      return true;
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
        const fill = new WindowFill(bytes, async (start, end, fillDeadline, ctx) => {
          const seg = segments[Math.floor(start / SEGMENT_BYTES)]!;
          const at = start % SEGMENT_BYTES;
          await this.produce(rv, start, end, seg.subarray(at, at + end - start), fillDeadline, ctx);
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
          filled: fill.filled,
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
   * `progress` hears the build when this call is the one that starts it (not a hit, not a build joined).
   *
   * @throws TC_ERR_BUDGET when the view is larger than the whole budget, or no room came before the
   *   deadline; TC_ERR_TIMEOUT when a stage or a build in flight outlasts the deadline.
   */
  async shmReplica(
    rv: ResolvedView,
    deadline = Date.now() + DEFAULT_WAIT_MS,
    ctx?: FillContext,
    progress?: ShmBuildProgress,
  ): Promise<Replica> {
    const bytes = rv.program.totalBytes;
    if (bytes > this.cache.budgetBytes) {
      throw tcError(
        'TC_ERR_BUDGET',
        `the view is ${bytes} bytes, more than the whole memory budget (${this.cache.budgetBytes}); load it over TCP instead`,
      );
    }
    let listener = progress;
    const build = (): ReturnType<ViewService['buildShm']> => {
      // Only the first build is heard: a rebuild would announce a second file.
      const heard = listener;
      listener = undefined;
      return this.buildShm(rv, deadline, ctx, heard);
    };
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      let replica: Replica;
      try {
        replica = await this.cache.acquire(this.key(rv, 'shm'), bytes, build, deadline, true);
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

  /**
   * Builds an shm replica into a segment: one the pool holds (pages allocated: the build only overwrites) or
   * a new file. The segment is claimed before the first await, as the cache counted on it when it made room.
   */
  private async buildShm(
    rv: ResolvedView,
    deadline: number,
    ctx: FillContext | undefined,
    progress: ShmBuildProgress | undefined,
  ): Promise<Omit<Replica, 'refs' | 'lastUsed'>> {
    const bytes = rv.program.totalBytes;
    const key = this.key(rv, 'shm');
    const path = join(this.opts.shmDir, `${sha256Hex(key).slice(0, 32)}-${this.shmBuilds++}.bin`);
    const reused = this.segments.claim(bytes);
    const t0 = performance.now();
    let seg = reused;
    let checksums: ChunkChecksums;
    try {
      let trimming: Promise<void> | undefined;
      if (seg !== undefined) {
        await seg.moveTo(path);
        // A larger segment is cut to the view: no byte of its former content stays readable past the view's
        // end. The kernel frees the tail while the head is being filled.
        trimming = seg.resize(bytes);
        if (seg.bytes !== bytes) await trimming;
      } else seg = await ShmSegment.create(path, bytes);
      progress?.opened(path, CHECKSUM_CHUNK_BYTES);
      const mem = this.cache.get(this.key(rv, 'memory'));
      try {
        if (mem !== undefined) await mem.ready(0, mem.bytes, deadline, ctx);
        // Only guarded native copies write into the mapping: a plain store into a page of a file another
        // process truncated would kill the daemon with SIGBUS. A view produced here goes through staging
        // first, so without the memory replica the mapped path needs a stage of at least one chunk.
        const filling =
          seg.mapped && (mem !== undefined || this.stages.stageBytes >= CHECKSUM_CHUNK_BYTES)
            ? this.fillMapped(rv, seg, mem, deadline, ctx, progress)
            : this.fillWritten(rv, seg, mem, deadline, ctx, progress);
        const [sums] = await Promise.all([filling, trimming]);
        checksums = sums;
      } finally {
        if (mem !== undefined) this.cache.release(mem);
      }
    } catch (error) {
      // The segment's bytes are half written: never a replica; its pages serve the next build.
      if (seg !== undefined) this.segments.give(seg);
      throw error;
    } finally {
      // The reserve was drawn on (or is still short): top it up in the background, for the next view.
      this.segments.fill();
    }
    this.opts.log.debug({ key, bytes, reused: reused !== undefined, ms: Math.round(performance.now() - t0) }, 'shm replica built');
    this.shmSegments.set(path, seg);
    const built = {
      key,
      artifactId: rv.artifact.artifactId,
      viewId: rv.view.viewId,
      tier: 'shm' as const,
      bytes,
      segments: [],
      path,
      ready: () => Promise.resolve(),
      checksums,
    };
    this.opts.onReplica?.(built, true);
    return built;
  }

  /**
   * Fills a mapped segment: each piece is materialized into a staging buffer (or taken from the memory
   * replica) and copied into the mapping with its chunks' CRC32C in one guarded pass on the libuv pool (a
   * truncated file is TC_ERR_SHORT_READ, not SIGBUS), while the next piece is materialized into the other stage.
   */
  private async fillMapped(
    rv: ResolvedView,
    seg: ShmSegment,
    mem: Replica | undefined,
    deadline: number,
    ctx: FillContext | undefined,
    progress: ShmBuildProgress | undefined,
  ): Promise<ChunkChecksums> {
    const bytes = rv.program.totalBytes;
    const windows = seg.windows();
    const crcs = new Uint32Array(Math.ceil(bytes / CHECKSUM_CHUNK_BYTES));
    const into = (start: number, end: number): Buffer =>
      windows[Math.floor(start / SEGMENT_BYTES)]!.subarray(start % SEGMENT_BYTES, (start % SEGMENT_BYTES) + end - start);
    const sums = (start: number, end: number): Uint32Array =>
      crcs.subarray(start / CHECKSUM_CHUNK_BYTES, Math.ceil(end / CHECKSUM_CHUNK_BYTES));
    const announce = (start: number, end: number): void => progress?.ready(start / CHECKSUM_CHUNK_BYTES, Array.from(sums(start, end)));
    let summing: Promise<void> | undefined;
    // Stages for views produced here: one waited for, a second (overlap) only when free. Pieces are whole
    // chunks that fit a stage.
    const stages: Buffer[] = [];
    if (mem === undefined) {
      stages.push(await this.stages.acquire(deadline, `building the shm replica of ${this.key(rv, 'shm')}`));
      const second = this.stages.tryAcquire();
      if (second !== undefined) stages.push(second);
    }
    const maxPiece = mem === undefined ? Math.floor(stages[0]!.length / CHECKSUM_CHUNK_BYTES) * CHECKSUM_CHUNK_BYTES : SHM_PIECE_MAX_BYTES;
    let which = 0;
    try {
      for (let start = 0, piece = CHECKSUM_CHUNK_BYTES; start < bytes; start += piece, piece = Math.min(2 * piece, maxPiece)) {
        // Pieces are whole chunks and never straddle a window or a memory segment (1 GiB each).
        piece = Math.min(piece, maxPiece, SEGMENT_BYTES - (start % SEGMENT_BYTES));
        const end = Math.min(bytes, start + piece);
        const dest = into(start, end);
        if (mem !== undefined) {
          const src = mem.segments[Math.floor(start / SEGMENT_BYTES)]!.subarray(
            start % SEGMENT_BYTES,
            (start % SEGMENT_BYTES) + end - start,
          );
          await summing;
          summing = checksumChunks(src, CHECKSUM_CHUNK_BYTES, sums(start, end), dest).then(() => announce(start, end));
          // Awaited at the next piece; until then a failure (a file cut under the copy) must not count as unhandled.
          summing.catch(() => undefined);
        } else {
          // With one stage, the copy out of it must finish before it is produced into again.
          if (stages.length === 1) await summing;
          const stage = stages[which]!.subarray(0, end - start);
          which = (which + 1) % stages.length;
          await this.produce(rv, start, end, stage, deadline, ctx);
          await summing;
          summing = checksumChunks(stage, CHECKSUM_CHUNK_BYTES, sums(start, end), dest).then(() => announce(start, end));
          // Awaited at the next piece; until then a failure (a file cut under the copy) must not count as unhandled.
          summing.catch(() => undefined);
        }
      }
      await summing;
    } finally {
      // Nothing may still read or write the mapping (or the stages) once this returns.
      await summing?.catch(() => undefined);
      for (const stage of stages) this.stages.release(stage);
    }
    return { algorithm: 'crc32c', chunkBytes: CHECKSUM_CHUNK_BYTES, crcs: Array.from(crcs) };
  }

  /** Fills a segment with positional writes (no addon): through a staging buffer, or from the memory replica. */
  private async fillWritten(
    rv: ResolvedView,
    seg: ShmSegment,
    mem: Replica | undefined,
    deadline: number,
    ctx: FillContext | undefined,
    progress: ShmBuildProgress | undefined,
  ): Promise<ChunkChecksums> {
    const bytes = rv.program.totalBytes;
    const sums = new ChunkChecksummer();
    let announced = 0;
    // Chunks whose bytes are in the file now: every whole chunk summed so far (all of them at the end).
    const announce = (crcs: readonly number[]): void => {
      if (crcs.length > announced) progress?.ready(announced, crcs.slice(announced));
      announced = crcs.length;
    };
    if (mem !== undefined) {
      let at = 0;
      for (const part of mem.segments) {
        sums.push(part);
        at += await writeFully(seg.file, part, at);
        announce(sums.completed);
      }
    } else {
      const stage = await this.stages.acquire(deadline, `building the shm replica of ${this.key(rv, 'shm')}`);
      try {
        for (let start = 0; start < bytes; start += stage.length) {
          const end = Math.min(bytes, start + stage.length);
          const part = stage.subarray(0, end - start);
          await this.produce(rv, start, end, part, deadline, ctx);
          sums.push(part);
          await writeFully(seg.file, part, start);
          announce(sums.completed);
        }
      } finally {
        this.stages.release(stage);
      }
    }
    const all = sums.finish();
    announce(all.crcs);
    return all;
  }

  /**
   * Produces `[start, end)` of the view into `dest` without keeping a replica: from the artifact's files,
   * or from other daemons (always, when `choice` forces a remote route).
   */
  materializeRange(
    rv: ResolvedView,
    start: number,
    end: number,
    dest: Uint8Array,
    deadline = Date.now() + DEFAULT_WAIT_MS,
    ctx?: FillContext,
    choice: RouteChoice = 'auto',
  ): Promise<void> {
    return this.produce(rv, start, end, dest, deadline, ctx, choice);
  }

  /** Drops every replica, frees the staging pool and the shm segments, and removes the shm folder (shutdown). */
  async close(): Promise<void> {
    this.stages.close();
    this.cache.clear();
    await this.segments.close();
    while (this.closing.size > 0) await Promise.all([...this.closing]);
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
