// The client SDK: connect to a daemon, import models, list, and load (key, view) into memory the caller
// owns, over the TCP data plane (several connections) or a shared-memory hand-off on the same host.

import { constants as bufferConstants } from 'node:buffer';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isTensorcastError, tcError } from '../core/errors.js';
import { isArtifactIdLike, validateKey } from '../core/keys.js';
import { isLoopbackHost } from '../core/net.js';
import { openModelFiles } from '../format/model-files.js';
import { parseIndexJson, type CanonicalIndex } from '../layout/canonical-index.js';
import type { Selection } from '../layout/selection.js';
import type { TpRuleSet } from '../layout/tp-rules.js';
import type { ViewSpec } from '../layout/view.js';
import type { ArtifactDetail, ArtifactSummary, VerifyResponse } from '../protocol/http/artifacts.js';
import type { ProgressPhase } from '../protocol/http/progress.js';
import type { PushResponse } from '../protocol/http/pushes.js';
import { artifactPath } from '../protocol/http/artifacts.js';
import type { ImportResponse, UploadCreated } from '../protocol/http/imports.js';
import { keyPath, type KeyBindingInfo } from '../protocol/http/keys.js';
import type { PlannedTensor, PlanRequest, PlanResponse } from '../protocol/http/loads.js';
import type { DaemonInfo } from '../protocol/http/system.js';
import type { FallbackReason, RouteChoice, RouteKind } from '../protocol/route-kinds.js';
import type { ClusterInfo } from '../protocol/http/cluster.js';
import { ConnectionPool } from '../transport/connection-pool.js';
import { ControlClient, LONG_MS } from '../transport/control-client.js';
import { resolveConnect, withTokenSource, type ConnectOptions } from './connect-options.js';
import { ObjectsClient } from './objects.js';
import { RemoteSessions, type SessionsOptions } from './sessions.js';
import type { ObjectsOptions } from './object-types.js';
import { FeatureStore, type FeatureStoreOptions } from '../features/feature-store.js';
import { DaemonFeatureBackend, type DaemonPlace } from './feature-backend.js';
import { checkLoadOptions, checkSelection, checkTransferOptions, checkWeightsOptions } from './load-options.js';
import { ShmMappings } from './shm-mappings.js';
import { openShmTransfer } from './shm-transfer.js';
import { openFileTransfer, openTcpTransfer, type Transfer } from './transfers.js';
import { streamWeights, type WeightStreamOptions, type WeightTensor } from './weight-stream.js';

/** Largest Buffer Node can allocate (4 GiB on Node 20). */
const MAX_BUFFER_BYTES = bufferConstants.MAX_LENGTH;

/**
 * How the bytes travel: 'tcp' (the data plane; works across hosts), 'shm' (same host: the daemon fills a
 * file on tmpfs and leases it), 'files' (same host: this process reads the daemon's immutable artifact
 * files in place and materializes the view itself; the daemon copies nothing).
 */
export type Transport = 'tcp' | 'shm' | 'files';

export type { DaemonInfo };

/** What an import returns. */
export interface ImportInfo extends ImportResponse {
  /**
   * 'path' when the daemon read the files itself, 'upload' when the client sent them, 'url' when the
   * daemon pulled them from a connector (or, lazy, registered them).
   */
  readonly via: 'path' | 'upload' | 'url';
}

/** Options of {@link TensorcastClient.importModel}. */
export interface ImportOptions {
  /** Bind this key to the artifact. */
  readonly key?: string;
  /** Paths: 'auto' (in place when the daemon may read the path, else upload), 'path' or 'upload'. */
  readonly via?: 'auto' | 'path' | 'upload';
  /** Connector URLs: register the artifact from its headers; its bytes are read from the connector when loaded. */
  readonly lazy?: boolean;
  /** Hears bytes sent (uploads) or copied (connector imports), with the phase of a connector import. */
  readonly onProgress?: (doneBytes: number, totalBytes: number, phase?: ProgressPhase) => void;
  /** Connector URLs: the chunk size (Redis) / part size (S3) of the connector the daemon opens (1 MiB to < 512 MiB). */
  readonly chunkBytes?: number;
  /** Connector URLs: ranged requests the daemon's connector keeps in flight (1..256). */
  readonly concurrency?: number;
}

/** Options of {@link TensorcastClient.push}. */
export interface PushOptions {
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Redis: objects above it are stored as chunks of this size (default 64 MiB); S3: the multipart part size. */
  readonly chunkBytes?: number;
  /** Ranged requests / parts the daemon's connector keeps in flight (default 16). */
  readonly concurrency?: number;
}

/** The `chunkBytes` / `concurrency` fields of a request body, when set. */
function tuningBody(o: { readonly chunkBytes?: number; readonly concurrency?: number }): { chunkBytes?: number; concurrency?: number } {
  return {
    ...(o.chunkBytes === undefined ? {} : { chunkBytes: o.chunkBytes }),
    ...(o.concurrency === undefined ? {} : { concurrency: o.concurrency }),
  };
}

/** True when `text` is a connector URL (`file://`, `redis://`, `rediss://`, `s3://`, ...) rather than a path. */
export const isConnectorUrl = (text: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(text);

export type { Selection, Transfer };

/** Options of {@link TensorcastClient.load}. */
export interface LoadOptions extends Selection {
  /** 'tcp' (default), 'shm' or 'files' (same host; see {@link Transport}). */
  readonly transport?: Transport;
  /** A buffer to fill (at least the output size); default: a new one. */
  readonly into?: Uint8Array;
  /** Deadline for the whole load, in ms from now. */
  readonly timeoutMs?: number;
  /** The same as `timeoutMs` (the caller's deadline, in ms from now); give one of them. */
  readonly deadlineMs?: number;
  /** Data-plane connections for this load. */
  readonly connections?: number;
  /**
   * Which route the daemon takes when it lacks the bytes: 'auto' (default: resident view, then derived
   * view, then canonical), or one forced for diagnosis ('resident_view', 'derived_view', 'canonical'; tcp only).
   */
  readonly route?: RouteChoice;
}

/** One loaded tensor: a view into the result buffer. */
export interface LoadedTensor extends PlannedTensor {
  readonly data: Uint8Array;
}

/** Statistics of one load. */
export interface LoadStats {
  /** Route kind the daemon reported (docs/architecture.md section 5). */
  readonly route: RouteKind;
  readonly transport: Transport;
  /** How the daemon produced the bytes: replica_hit, materialized or streamed. */
  readonly source: string;
  /** Why the daemon fell back from a preferred route (remote loads), else null. */
  readonly fallback: FallbackReason | null;
  /** The daemon the bytes came from (remote routes), else null. */
  readonly sourceDaemon: string | null;
  /** Bytes moved between daemons for this load. */
  readonly wireBytes: number;
  /** Source bytes read (or pulled) per byte delivered, when the daemon reported it (1.00: exactly the view). */
  readonly amplification: number | null;
  readonly bytesDelivered: number;
  readonly connections: number;
  readonly timesMs: { readonly plan: number; readonly transfer: number; readonly total: number };
  /** Delivered bytes per second of transfer, in GB/s. */
  readonly gbps: number;
}

/** The result of a load. */
export interface LoadResult {
  readonly artifactId: string;
  readonly viewId: string | undefined;
  readonly buffer: Uint8Array;
  readonly tensors: readonly LoadedTensor[];
  readonly stats: LoadStats;
}

/**
 * A planned load: what would be loaded, before any byte moves. The daemon plans it (POST /v1/plans): the
 * normalized view to ask for, its id, and where each tensor lands in the dense output.
 */
export interface LoadPlan {
  readonly artifactId: string;
  /** The key binding that was resolved, when a key was given. */
  readonly key: { readonly key: string; readonly version: number } | undefined;
  /** The normalized view spec (undefined: the whole artifact) and its id. */
  readonly view: ViewSpec | undefined;
  readonly viewId: string | undefined;
  readonly totalBytes: number;
  readonly tensors: readonly PlannedTensor[];
  /** The artifact's safetensors `__metadata__`. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Non-weight files kept with the artifact (config.json, tokenizer files). */
  readonly files: readonly string[];
}

/** Options of {@link TensorcastClient.openTransfer}. */
export interface TransferOptions {
  readonly transport?: Transport;
  readonly connections?: number;
  readonly timeoutMs?: number;
  /** See {@link LoadOptions.route}. */
  readonly route?: RouteChoice;
  /**
   * Deadline of each read (each data-plane request, a lease), in ms, within `timeoutMs`; default: no
   * separate bound. A stream whose consumer sets the pace uses it in place of a whole-stream deadline.
   */
  readonly readTimeoutMs?: number;
}

/** Options of {@link TensorcastClient.weights}: a selection, how bytes travel, and the memory bound. */
export interface WeightsOptions extends Selection, WeightStreamOptions {
  readonly transport?: Transport;
  readonly connections?: number;
  /**
   * Deadline of the whole stream, in ms from now; the consumer's time counts. Default: none (about 24
   * days, the longest timer Node has), since the consumer sets the pace.
   */
  readonly timeoutMs?: number;
  /** Deadline of planning and of each read of a window, in ms; default the client's `timeoutMs` (10 min). */
  readonly readTimeoutMs?: number;
  /** See {@link LoadOptions.route}. */
  readonly route?: RouteChoice;
}

/** The longest timer Node keeps (2^31-1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export type { WeightTensor };

/**
 * Connects to a daemon (checks the token).
 *
 * @throws TC_ERR_UNAVAILABLE; TC_ERR_AUTH (saying where a rejected token came from); TC_ERR_NOT_FOUND when a
 *   token file named by option or TENSORCAST_TOKEN_FILE does not exist
 * @example
 * const client = await connect();                    // TENSORCAST_DAEMON / ~/.tensorcast/token
 * const rank = await client.load('model:llama:v1', { tp: { size: 4, rank: 1 } });
 * console.log(rank.tensors.length, rank.stats.gbps);
 * await client.close();
 */
export async function connect(options: ConnectOptions = {}): Promise<TensorcastClient> {
  const { url, token, tokenSource } = await resolveConnect(options);
  const control = new ControlClient(url, token);
  try {
    const info = await control.json<DaemonInfo>('GET', '/v1/info');
    return new TensorcastClient(control, token, info, options);
  } catch (error) {
    await control.close();
    throw withTokenSource(error, tokenSource);
  }
}

/** A connected client. Create with {@link connect}. */
export class TensorcastClient {
  private readonly pool: ConnectionPool;
  private readonly indexes = new Map<string, Promise<CanonicalIndex>>();
  /** Mappings of shm lease files kept between loads (a view loaded again is a memcpy). */
  private readonly shmMappings = new ShmMappings();
  private readonly defaultConnections: number;
  private readonly defaultTimeoutMs: number;
  /** Clients of the other daemons of the cluster (feature refs put there), by daemon id. */
  private readonly peers = new Map<string, Promise<TensorcastClient>>();

  constructor(
    readonly control: ControlClient,
    private readonly token: string,
    readonly info: DaemonInfo,
    private readonly options: ConnectOptions,
  ) {
    this.defaultConnections = Math.max(1, options.connections ?? 4);
    this.pool = new ConnectionPool(info.dataAddress, token);
    this.defaultTimeoutMs = options.timeoutMs ?? 10 * 60_000;
  }

  /**
   * Imports a .safetensors file or model directory, or the model a connector URL names. For a path, tries
   * an in-place import (the daemon reads the path, allowed under its --import-root) and falls back to
   * uploading the files. For a URL, the daemon pulls the model from the connector (its credentials travel
   * to the daemon in the URL and stay there), or with `lazy` registers it from its headers alone.
   * Identical bytes return the same id without storing anything.
   *
   * @throws TC_ERR_NOT_FOUND, TC_ERR_FORMAT_*, TC_ERR_FORBIDDEN; for URLs also TC_ERR_AUTH, TC_ERR_BACKEND,
   *   TC_ERR_SOURCE_CHANGED
   * @example const { artifactId } = await client.importModel('./llama', { key: 'model:llama:v1' });
   * @example await client.importModel('s3://models/llama?endpoint=http://10.0.0.5:9000', { key: 'model:llama:v1', lazy: true });
   */
  async importModel(path: string, options: ImportOptions = {}): Promise<ImportInfo> {
    if (isConnectorUrl(path)) return this.importUrl(path, options);
    if (options.lazy === true)
      throw tcError('TC_ERR_INVALID_ARGUMENT', 'lazy imports need a connector URL (file://, redis://, s3://), not a path');
    // 'auto' asks the daemon to read the path only when it runs on this host: on another host the same
    // path could name a different file.
    const via = options.via ?? (isLoopbackHost(new URL(this.control.baseUrl).hostname) ? 'auto' : 'upload');
    if (options.key !== undefined) validateKey(options.key);
    const key = options.key === undefined ? {} : { key: options.key };
    // Validate locally first: bad input fails before any byte is sent.
    const model = await openModelFiles(path);
    if (via !== 'upload') {
      try {
        const r = await this.control.json<ImportResponse>('POST', '/v1/imports', { path: resolvePath(path), ...key }, LONG_MS);
        return { ...r, via: 'path' };
      } catch (error) {
        if (via === 'path' || !isTensorcastError(error, 'TC_ERR_FORBIDDEN')) throw error;
      }
    }
    const { uploadId } = await this.control.json<UploadCreated>('POST', '/v1/uploads');
    try {
      const names = [...model.shards.map((s) => s.file), ...model.extraFiles];
      if (model.index !== undefined) names.push('model.safetensors.index.json');
      const sizes = await Promise.all(names.map(async (n) => (await stat(join(model.root, n))).size));
      const total = sizes.reduce((a, b) => a + b, 0);
      let sent = 0;
      const onBytes = (n: number): void => {
        sent += n;
        options.onProgress?.(sent, total);
      };
      for (const name of names) {
        await this.control.putFile(`/v1/uploads/${uploadId}/files/${encodeURIComponent(name)}`, join(model.root, name), onBytes);
      }
      const r = await this.control.json<ImportResponse>('POST', `/v1/uploads/${uploadId}/commit`, key, LONG_MS);
      return { ...r, via: 'upload' };
    } catch (error) {
      await this.control.json('DELETE', `/v1/uploads/${uploadId}`).catch(() => undefined);
      throw error;
    }
  }

  private async importUrl(url: string, options: ImportOptions): Promise<ImportInfo> {
    if (options.key !== undefined) validateKey(options.key);
    const body = {
      url,
      ...(options.key === undefined ? {} : { key: options.key }),
      ...(options.lazy === true ? { lazy: true } : {}),
      ...tuningBody(options),
    };
    const r = await this.control.progressJson<ImportResponse>('POST', '/v1/imports', body, (p) =>
      options.onProgress?.(p.doneBytes, p.totalBytes, p.phase),
    );
    return { ...r, via: 'url' };
  }

  /**
   * Writes an artifact to a connector as a model directory (config and tokenizer files, the safetensors
   * shards, and model.safetensors.index.json last). The daemon does the writing, with the URL's credentials.
   *
   * @throws TC_ERR_NOT_FOUND, TC_ERR_FORBIDDEN (file:// outside the daemon's import roots), TC_ERR_AUTH, TC_ERR_BACKEND,
   *   TC_ERR_INVALID_ARGUMENT (chunkBytes or concurrency out of bounds)
   * @example await client.push('model:llama:v1', 'redis://:secret@10.0.0.5:6379/llama-3-8b', { chunkBytes: 16 << 20 });
   */
  async push(keyOrId: string, url: string, options: PushOptions = {}): Promise<PushResponse> {
    const body = { ...(isArtifactIdLike(keyOrId) ? { artifactId: keyOrId } : { key: validateKey(keyOrId) }), url, ...tuningBody(options) };
    return this.control.progressJson<PushResponse>('POST', '/v1/pushes', body, (p) => options.onProgress?.(p.doneBytes, p.totalBytes));
  }

  /**
   * Hashes every canonical byte of an artifact on the daemon: a stored artifact's files must still give its
   * id (`matches`); a lazy artifact's bytes are streamed from its connector and its content id is recorded.
   *
   * @throws TC_ERR_NOT_FOUND, TC_ERR_SOURCE_CHANGED (a lazy artifact's object rewritten), TC_ERR_AUTH, TC_ERR_BACKEND
   * @example const { contentId } = await client.verify('model:llama:lazy');
   */
  async verify(keyOrId: string, options: { onProgress?: (doneBytes: number, totalBytes: number) => void } = {}): Promise<VerifyResponse> {
    const id = await this.resolve(keyOrId);
    return this.control.progressJson<VerifyResponse>('POST', artifactPath(id, '/verify'), {}, (p) =>
      options.onProgress?.(p.doneBytes, p.totalBytes),
    );
  }

  /** Artifacts with their keys and replicas. */
  async listArtifacts(): Promise<readonly ArtifactSummary[]> {
    return (await this.control.json<{ artifacts: ArtifactSummary[] }>('GET', '/v1/artifacts')).artifacts;
  }

  /** Resolves a key (or passes an artifact id through). @throws TC_ERR_NOT_FOUND */
  async resolve(keyOrId: string): Promise<string> {
    if (isArtifactIdLike(keyOrId)) return keyOrId;
    return (await this.control.json<KeyBindingInfo>('GET', keyPath(validateKey(keyOrId)))).artifactId;
  }

  /** The canonical index of an artifact (cached). */
  index(artifactId: string): Promise<CanonicalIndex> {
    let p = this.indexes.get(artifactId);
    if (p === undefined) {
      p = this.control.json<ArtifactDetail>('GET', artifactPath(artifactId)).then((r) => parseIndexJson(r.index));
      this.indexes.set(artifactId, p);
      p.catch(() => this.indexes.delete(artifactId));
    }
    return p;
  }

  /** A non-weight file kept with the artifact (config.json, tokenizer files). */
  file(artifactId: string, name: string): Promise<Buffer> {
    return this.control.bytes(artifactPath(artifactId, `/files/${encodeURIComponent(name)}`));
  }

  /**
   * Asks the daemon to plan a load of `selection` (one round trip, within `timeoutMs` when given): the
   * view it will serve and where each tensor lands in the output.
   *
   * @throws TC_ERR_NOT_FOUND, TC_ERR_INVALID_ARGUMENT, TC_ERR_VIEW_*, TC_ERR_LAYOUT_*
   */
  async plan(keyOrId: string, selection: Selection = {}, timeoutMs?: number): Promise<LoadPlan> {
    checkSelection(selection);
    const body: PlanRequest = {
      ...(isArtifactIdLike(keyOrId) ? { artifactId: keyOrId } : { key: validateKey(keyOrId) }),
      ...(selection.tensors === undefined ? {} : { tensors: [...selection.tensors] }),
      ...(selection.view === undefined ? {} : { view: selection.view }),
      ...(selection.tp === undefined ? {} : { tp: selection.tp }),
    };
    const r = await this.control.json<PlanResponse>('POST', '/v1/plans', body, timeoutMs);
    return {
      artifactId: r.artifactId,
      key: r.key ?? undefined,
      view: (r.view ?? undefined) as ViewSpec | undefined,
      viewId: r.viewId ?? undefined,
      totalBytes: r.totalBytes,
      tensors: r.tensors,
      metadata: r.metadata,
      files: r.files,
    };
  }

  /**
   * Loads a selection of an artifact into memory the caller owns.
   *
   * @throws TC_ERR_NOT_FOUND, TC_ERR_VIEW_*, TC_ERR_LAYOUT_*, TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE (retryable), TC_ERR_CHECKSUM
   * @example const { tensors } = await client.load('model:qwen:v2', { view: { 'lm_head.weight': [[0, 1024], null] } });
   */
  async load(keyOrId: string, options: LoadOptions = {}): Promise<LoadResult> {
    checkLoadOptions(options);
    const t0 = performance.now();
    if (options.timeoutMs !== undefined && options.deadlineMs !== undefined && options.timeoutMs !== options.deadlineMs)
      throw tcError('TC_ERR_INVALID_ARGUMENT', 'timeoutMs and deadlineMs are the same setting; give one');
    const deadline = Date.now() + (options.deadlineMs ?? options.timeoutMs ?? this.defaultTimeoutMs);
    const { tensors: names, view, tp } = options;
    // The caller's deadline covers planning too.
    const plan = await this.plan(
      keyOrId,
      {
        ...(names === undefined ? {} : { tensors: names }),
        ...(view === undefined ? {} : { view }),
        ...(tp === undefined ? {} : { tp }),
      },
      Math.max(1, deadline - Date.now()),
    );
    const total = plan.totalBytes;
    if (options.into === undefined && total > MAX_BUFFER_BYTES) {
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `the selection is ${total} bytes, more than one Buffer holds (${MAX_BUFFER_BYTES}); use openTransfer() and read it in windows`,
      );
    }
    const buffer = options.into ?? Buffer.allocUnsafeSlow(total);
    if (buffer.length < total)
      throw tcError('TC_ERR_DESTINATION_SIZE', `destination holds ${buffer.length} bytes but the load needs ${total}`);
    const dest = buffer.subarray(0, total);
    const t1 = performance.now();
    const transport = options.transport ?? 'tcp';
    const transfer = await this.openTransfer(plan, {
      transport,
      timeoutMs: Math.max(1, deadline - Date.now()),
      ...(options.connections === undefined ? {} : { connections: options.connections }),
      ...(options.route === undefined ? {} : { route: options.route }),
    });
    try {
      await transfer.read(0, total, dest);
    } finally {
      await transfer.close();
    }
    const source = transfer.source();
    const route = transfer.route();
    const remote = transfer.remote();
    const connections =
      transport === 'tcp' ? Math.max(1, Math.min(transfer.connections, Math.ceil(total / (16 << 20)))) : transfer.connections;
    const t2 = performance.now();
    const tensors = plan.tensors.map((t) => ({ ...t, data: dest.subarray(t.offset, t.offset + t.byteLength) }));
    return {
      artifactId: plan.artifactId,
      viewId: plan.viewId,
      buffer: dest,
      tensors,
      stats: {
        route,
        transport,
        source,
        fallback: remote.fallback,
        sourceDaemon: remote.sourceDaemon,
        wireBytes: remote.wireBytes,
        amplification: remote.readBytes > 0 && total > 0 ? remote.readBytes / total : null,
        bytesDelivered: total,
        connections,
        timesMs: { plan: t1 - t0, transfer: t2 - t1, total: t2 - t0 },
        gbps: total / Math.max(1e-9, (t2 - t1) / 1000) / 1e9,
      },
    };
  }

  /**
   * Streams the tensors of a selection (a TP rank, a view, named tensors, or the whole artifact) one by one
   * in index order, each as soon as its bytes arrived, holding at most `maxInFlightBytes` (default 256 MiB)
   * fetched but not yet consumed: a rank of any size passes through bounded memory. Stopping early
   * (`break`) cancels the reads under way and closes the transfer. Each tensor's `data` is its own.
   *
   * @throws as {@link plan} and {@link load}; TC_ERR_INVALID_ARGUMENT for a bad maxInFlightBytes
   * @example
   * for await (const t of client.weights('model:llama:v1', { tp: { size: 4, rank: 2 } })) {
   *   engine.copyParam(t.name, t.dtype, t.shape, t.data);
   * }
   */
  async *weights(keyOrId: string, options: WeightsOptions = {}): AsyncGenerator<WeightTensor, void, undefined> {
    checkWeightsOptions(options);
    const { tensors, view, tp, maxInFlightBytes, transport, connections, timeoutMs, readTimeoutMs, route } = options;
    const deadline = Date.now() + Math.min(timeoutMs ?? MAX_TIMER_MS, MAX_TIMER_MS);
    const perRead = readTimeoutMs ?? this.defaultTimeoutMs;
    const plan = await this.plan(
      keyOrId,
      {
        ...(tensors === undefined ? {} : { tensors }),
        ...(view === undefined ? {} : { view }),
        ...(tp === undefined ? {} : { tp }),
      },
      Math.max(1, Math.min(perRead, deadline - Date.now())),
    );
    const transfer = await this.openTransfer(plan, {
      timeoutMs: Math.max(1, deadline - Date.now()),
      readTimeoutMs: perRead,
      ...(transport === undefined ? {} : { transport }),
      ...(connections === undefined ? {} : { connections }),
      ...(route === undefined ? {} : { route }),
    });
    yield* streamWeights(plan.tensors, transfer, maxInFlightBytes === undefined ? {} : { maxInFlightBytes });
  }

  /** Loads what TP rank `rank` of `size` needs, under `rules` (default: the built-in rules). */
  loadRank(
    keyOrId: string,
    size: number,
    rank: number,
    options: Omit<LoadOptions, 'tp'> & { rules?: TpRuleSet } = {},
  ): Promise<LoadResult> {
    const { rules, ...rest } = options;
    return this.load(keyOrId, { ...rest, tp: rules === undefined ? { size, rank } : { size, rank, rules } });
  }

  /**
   * Opens a transfer of a planned view: read any `[start, end)` of its output into a buffer, as often as
   * needed, then close. Lets a caller move outputs larger than one Buffer (4 GiB) through a window.
   * For 'shm' the daemon's lease is taken at open and released at close.
   */
  openTransfer(plan: LoadPlan, options: TransferOptions = {}): Promise<Transfer> {
    checkTransferOptions(options);
    const deadline = Date.now() + (options.timeoutMs ?? this.defaultTimeoutMs);
    const perRead = options.readTimeoutMs ?? Number.POSITIVE_INFINITY;
    const remaining = (): number => {
      const left = deadline - Date.now();
      if (left <= 0) throw tcError('TC_ERR_TIMEOUT', `load of ${plan.artifactId} ran out of its deadline`);
      return Math.min(left, perRead);
    };
    if (options.route !== undefined && options.route !== 'auto' && options.transport !== undefined && options.transport !== 'tcp')
      return Promise.reject(tcError('TC_ERR_INVALID_ARGUMENT', `a forced route ('${options.route}') needs the tcp transport`));
    if (options.transport === 'shm') return openShmTransfer(this.control, plan, remaining, this.shmMappings);
    if (options.transport === 'files')
      return this.index(plan.artifactId).then((index) => openFileTransfer(this.control, plan, index, remaining));
    return Promise.resolve(
      openTcpTransfer(this.pool, plan, Math.max(1, options.connections ?? this.defaultConnections), remaining, options.route ?? 'auto'),
    );
  }

  /**
   * The daemon's object store: byte objects under `<namespace>/<name>` keys, put and read over this
   * client's data-plane connections (or shared memory on the daemon's host). `storeToken` is the token
   * of the namespaces used (sent with every object request).
   *
   * @example
   * const objects = client.objects({ storeToken: 's3cret' });
   * await objects.ensureNamespace('cache', { token: 's3cret', maxBytes: 4 << 30 });
   * const { version } = await objects.put('cache/prompt-17', bytes);
   */
  objects(options: ObjectsOptions = {}): ObjectsClient {
    const sameHost = isLoopbackHost(new URL(this.control.baseUrl).hostname) && this.info.shmDir !== '' && existsSync(this.info.shmDir);
    return new ObjectsClient(
      { pool: this.pool, control: this.control, connections: this.defaultConnections, timeoutMs: this.defaultTimeoutMs, sameHost },
      options,
    );
  }

  /**
   * The daemon's session KV cache (docs/sessions.md; the daemon runs with --sessions-cold): the same API as
   * the embedded `createSessionCache`, appends and reads over this client's data-plane connections.
   *
   * @example
   * const sessions = client.sessions();
   * const s = await sessions.create({ geometry });
   * await sessions.append(s.sessionId, 0, kvOfPrompt);
   * await sessions.read(s.sessionId, { tokenStart: 0, tokenEnd: 512 }, { into: buffer });
   */
  sessions(options: SessionsOptions = {}): RemoteSessions {
    return new RemoteSessions({ pool: this.pool, control: this.control, timeoutMs: this.defaultTimeoutMs }, options);
  }

  /**
   * A feature store on the daemon (namespace `storeId`): per-sample tensors with generations, atomic
   * samples, exact get-into and backpressure (docs/api.md, "Feature store"). `token` is the namespace's
   * store token (the namespace is created with it on the first put); `maxResidentBytes` becomes its maxBytes.
   *
   * @example
   * const store = client.features('train', { token: 's3cret', maxResidentBytes: 8 << 30, waitForRoomMs: 30_000 });
   * const ref = await store.put('sample-17', { hidden: { data, dtype: 'BF16', shape: [512, 4096] } });
   * const { hidden } = await store.get(ref, { into: { hidden: myBuffer } });
   */
  features(storeId: string, options: FeatureStoreOptions = {}): FeatureStore {
    const objectsOptions = options.token === undefined ? {} : { storeToken: options.token };
    const place: DaemonPlace = {
      daemonId: this.info.daemonId,
      peerObjects: async (daemonId) => (await this.peer(daemonId)).objects(objectsOptions),
      forgetPeer: (daemonId) => this.forgetPeer(daemonId),
    };
    return new FeatureStore(storeId, new DaemonFeatureBackend(this.objects(objectsOptions), place), options);
  }

  /**
   * A client of another daemon of this daemon's cluster, found in GET /v1/cluster and connected with this
   * client's token (the cluster shares one), cached until {@link forgetPeer}.
   *
   * @throws TC_ERR_UNAVAILABLE (retryable) when the catalog lists no live daemon of that id, or it does not answer
   */
  private peer(daemonId: string): Promise<TensorcastClient> {
    let peer = this.peers.get(daemonId);
    if (peer === undefined) {
      peer = this.connectPeer(daemonId);
      this.peers.set(daemonId, peer);
      peer.catch(() => {
        if (this.peers.get(daemonId) === peer) this.peers.delete(daemonId);
      });
    }
    return peer;
  }

  private async connectPeer(daemonId: string): Promise<TensorcastClient> {
    const cluster = await this.cluster();
    const d = cluster.daemons.find((x) => x.daemonId === daemonId);
    if (d === undefined || !d.alive)
      throw tcError(
        'TC_ERR_UNAVAILABLE',
        d === undefined
          ? `daemon '${daemonId}' is not in the cluster of daemon '${this.info.daemonId}' (catalog ${cluster.catalog.url})`
          : `daemon '${daemonId}' is not alive (last heartbeat ${new Date(d.heartbeatAt).toISOString()})`,
        { details: { daemonId, reason: d === undefined ? 'unknown_daemon' : 'not_alive' } },
      );
    try {
      const { connections, timeoutMs } = this.options;
      return await connect({
        url: d.controlUrl,
        token: this.token,
        ...(connections === undefined ? {} : { connections }),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      });
    } catch (error) {
      if (isTensorcastError(error, 'TC_ERR_UNAVAILABLE')) throw error;
      throw tcError('TC_ERR_UNAVAILABLE', `daemon '${daemonId}' at ${d.controlUrl}: ${(error as Error).message}`, {
        cause: error,
        details: { daemonId, reason: 'unreachable' },
      });
    }
  }

  /** Drops (and closes) the cached client of a peer daemon whose connection failed. */
  private forgetPeer(daemonId: string): void {
    const peer = this.peers.get(daemonId);
    if (peer === undefined) return;
    this.peers.delete(daemonId);
    peer.then((c) => c.close()).catch(() => undefined);
  }

  /** The cluster as the daemon's catalog lists it: daemons (alive or not) and, per artifact, the replicas. */
  cluster(): Promise<ClusterInfo> {
    return this.control.json<ClusterInfo>('GET', '/v1/cluster');
  }

  /** Closes pooled data-plane connections and the control connections. Idempotent: later calls wait for the first. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private closing: Promise<void> | undefined;

  private async closeOnce(): Promise<void> {
    const peers = [...this.peers.values()];
    this.peers.clear();
    await Promise.all(peers.map((p) => p.then((c) => c.close()).catch(() => undefined)));
    this.pool.close();
    this.shmMappings.close();
    await this.control.close();
  }
}
