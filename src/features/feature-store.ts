// FeatureStore: per-sample tensors put by producers and got by trainers into their own buffers, over any
// FeatureBackend. Generations in the keys (a re-put writes g+1, then retires g; a ref to g never reads g+1),
// a manifest per sample as the commit point (daemon: one transaction with a compare-and-swap on it;
// connectors: written last), exact byte counts on every read, release with a local tombstone at once and the
// physical free after (failed frees retried by gc(), finished by drain()), resident-bytes backpressure.

import { mapLimit } from '../core/async.js';
import { isTensorcastError, tcError, type TensorcastError } from '../core/errors.js';
import type { BackendVersion, FeatureBackend } from './feature-backend.js';
import { decodeManifest, encodeManifest, MAX_MANIFEST_BYTES, refFromManifest, type SampleManifest } from './manifest.js';
import { packedByteLength, packedPieces, planPacked, readPacked } from './packed-layout.js';
import {
  checkRef,
  checkSampleId,
  checkStoreId,
  parseSampleKey,
  refObjectKeys,
  sampleBytes,
  sampleKeys,
  specsFromTensors,
  type FeatureLayout,
  type FeatureTensor,
  type SampleRef,
  type TensorInput,
} from './sample-ref.js';
import { SampleFrees, type PendingFree } from './sample-frees.js';

/** Reads and writes of one sample kept in flight at once. */
const CONCURRENCY = 8;
/** Passes drain() makes over the pending frees before it reports what is left. */
const DRAIN_PASSES = 3;

/** Options of a {@link FeatureStore}. */
export interface FeatureStoreOptions {
  /** Daemon: the store's namespace token (set when the namespace is created; wrong token -> TC_ERR_AUTH). Connectors refuse it. */
  readonly token?: string;
  /**
   * Bytes the store may hold. Daemon: the namespace's maxBytes, enforced by the daemon across every process.
   * Connectors: checked by this process from a listing before each put (best effort: producers in other
   * processes can overshoot it together).
   */
  readonly maxResidentBytes?: number;
  /** A put over the limit waits this long for room (FIFO on the daemon), then fails with TC_ERR_BACKPRESSURE. Default 0: fail at once. */
  readonly waitForRoomMs?: number;
  /** release() keeps the bytes (multi-epoch runs) until drain() or release(ref, { force: true }). */
  readonly retainOnRelease?: boolean;
  /** Daemon: every object expires this long after its put. Connectors: gc() frees samples older than this. */
  readonly maxHoldAgeMs?: number;
  /** 'per-tensor' (default): one object per tensor; 'packed': one safetensors object per sample. */
  readonly layout?: FeatureLayout;
  /** Deadline of each backend call, in ms. */
  readonly timeoutMs?: number;
}

/** Options of {@link FeatureStore.get}. */
export interface FeatureGetOptions {
  /** Buffers to fill, by tensor name, each exactly the tensor's byteLength; tensors left out are allocated. */
  readonly into?: Readonly<Record<string, Uint8Array>>;
}

/** A free that did not happen. */
export interface FreeFailure {
  readonly key: string;
  readonly code: string;
  readonly message: string;
}

/** What gc() did. */
export interface GcReport {
  /** Objects (and manifests) freed by this pass. */
  readonly freed: number;
  /** Samples freed because they were older than maxHoldAgeMs (connectors). */
  readonly expired: number;
  /** Frees still pending, with their last error. */
  readonly failed: readonly FreeFailure[];
}

/** What drain() did. */
export interface DrainReport {
  readonly freed: number;
  /** Retained samples (retainOnRelease) freed. */
  readonly retainedFreed: number;
  /** What could not be freed: still on the backend. */
  readonly failed: readonly FreeFailure[];
}

/** A store's contents as the backend shows them, and this process's bookkeeping. */
export interface FeatureStats {
  readonly storeId: string;
  readonly backend: string;
  /** Samples with a manifest (committed). */
  readonly samples: number;
  /** Distinct (sample, generation) pairs with bytes on the backend: above `samples` while old generations await their free. */
  readonly generations: number;
  /** Objects under the store's prefix (tensors, packed objects, manifests). */
  readonly objects: number;
  /** Daemon: the namespace's resident bytes (committed + pending); connectors: the sum of the listed objects. */
  readonly residentBytes: number;
  readonly maxResidentBytes: number | null;
  /** Failed physical frees this process will retry (gc()). */
  readonly pendingFrees: number;
  /** Daemon: deleted objects whose bytes a read still holds; null on connectors. */
  readonly backendPendingFrees: number | null;
  readonly tombstones: number;
  readonly retained: number;
}

interface CurrentManifest {
  readonly manifest: SampleManifest;
  readonly version: BackendVersion;
}

/**
 * The feature store.
 *
 * @example
 * const store = new FeatureStore('train', new ConnectorFeatureBackend(await createConnector('file:///tmp/f')));
 * const ref = await store.put('s-1', { hidden: { data: bytes, dtype: 'BF16', shape: [128, 4096] } });
 * const got = await store.get(ref);            // got.hidden.data: 1 MiB, exactly the bytes put
 * await store.release(ref);                    // get(ref) now fails with TC_ERR_NOT_FOUND
 */
export class FeatureStore {
  private readonly frees = new SampleFrees();
  private prepared: Promise<void> | undefined;
  private closed = false;
  /** Stores on other daemons of the cluster (refs put there), by daemon id: their tombstones and frees. */
  private readonly peers = new Map<string, Promise<FeatureStore>>();

  constructor(
    readonly storeId: string,
    private readonly backend: FeatureBackend,
    private readonly options: FeatureStoreOptions = {},
    private readonly onClose?: () => Promise<void>,
  ) {
    checkStoreId(storeId);
    const o = options;
    for (const [name, v, min] of [
      ['maxResidentBytes', o.maxResidentBytes, 1],
      ['waitForRoomMs', o.waitForRoomMs, 0],
      ['maxHoldAgeMs', o.maxHoldAgeMs, 1],
      ['timeoutMs', o.timeoutMs, 1],
    ] as const) {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < min))
        throw tcError('TC_ERR_INVALID_ARGUMENT', `${name} must be an integer >= ${min}, got ${String(v)}`);
    }
    if (o.layout !== undefined && o.layout !== 'per-tensor' && o.layout !== 'packed')
      throw tcError('TC_ERR_INVALID_ARGUMENT', `layout must be 'per-tensor' or 'packed', got ${JSON.stringify(o.layout)}`);
    if (o.token !== undefined && !backend.capabilities.storeTokens)
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `store '${storeId}' on ${backend.name}: this backend has no store tokens; drop the token option`,
      );
  }

  /** Which guarantees the backend gives (see FeatureBackendCapabilities). */
  get capabilities(): FeatureBackend['capabilities'] {
    return this.backend.capabilities;
  }

  /**
   * Stores a sample: generation 0, or g+1 of the current manifest's g (then g is retired). The sample is
   * visible only once every tensor is stored (the manifest is the commit).
   *
   * @throws TC_ERR_INVALID_ARGUMENT (bad id, name, dtype, shape or byte count); TC_ERR_CONFLICT (a concurrent
   *   put of the same sample committed first; nothing of this put is visible); TC_ERR_BACKPRESSURE
   *   (retryable: maxResidentBytes reached); TC_ERR_AUTH; backend errors
   */
  async put(sampleId: string, tensors: Readonly<Record<string, TensorInput>>): Promise<SampleRef> {
    this.checkOpen();
    checkSampleId(sampleId);
    const specs = specsFromTensors(tensors);
    await this.prepare();
    const layout = this.options.layout ?? 'per-tensor';
    const { current, version, lostKeys } = await this.manifestForPut(sampleId);
    const generation = current !== undefined ? current.manifest.generation + 1 : await this.freshGeneration(sampleId);
    const items =
      layout === 'packed'
        ? [{ key: sampleKeys.packed(this.storeId, sampleId, generation), data: packedPieces(planPacked(specs), tensors) }]
        : specs.map((s) => ({ key: sampleKeys.tensor(this.storeId, sampleId, generation, s.name), data: tensors[s.name]!.data }));
    const bytes = layout === 'packed' ? packedByteLength(planPacked(specs)) : sampleBytes(specs);
    if (!this.backend.capabilities.residentLimit && this.options.maxResidentBytes !== undefined) await this.waitForRoom(bytes);
    const base = { v: 1 as const, sampleId, generation, layout, specs, createdAt: Date.now() };
    const fences = this.backend.capabilities.atomicCommit
      ? await this.putAtomic(sampleId, items, base, version)
      : await this.putInOrder(sampleId, items, base, version);
    const ref: SampleRef = this.stamped({ storeId: this.storeId, sampleId, generation, specs, layout, fences });
    if (current !== undefined) await this.retire(refFromManifest(this.storeId, current.manifest));
    if (lostKeys.length > 0)
      await this.freeKeys(
        lostKeys.map((key): PendingFree => ({ kind: 'object', key, version: undefined, tomb: undefined, lastError: undefined })),
      );
    for (const old of this.frees.retainedOf(sampleId)) if (old.generation < generation) this.frees.unretain(old);
    return ref;
  }

  /** Daemon: tensors and manifest in one transaction, committed if the manifest is still the one read. */
  private async putAtomic(
    sampleId: string,
    items: { key: string; data: Uint8Array | Uint8Array[] }[],
    base: Omit<SampleManifest, 'fences'>,
    manifestVersion: BackendVersion | undefined,
  ): Promise<BackendVersion[]> {
    const txn = this.backend.newTxn();
    const manifestKey = sampleKeys.manifest(this.storeId, sampleId);
    try {
      const fences = await this.backend.put(
        items.map((i) => ({ ...i, ifVersion: null })),
        this.writeOptions(txn),
      );
      await this.backend.put([{ key: manifestKey, data: encodeManifest({ ...base, fences }) }], this.writeOptions(txn));
      await this.backend.commit(txn, [{ key: manifestKey, ifVersion: manifestVersion ?? null }]);
      return fences;
    } catch (error) {
      await this.backend.abort(txn).catch(() => undefined);
      if (isTensorcastError(error, 'TC_ERR_CONFLICT'))
        throw tcError('TC_ERR_CONFLICT', `sample '${sampleId}': a concurrent put committed first; nothing of this put is visible`, {
          cause: error,
          details: { sampleId, generation: base.generation },
        });
      throw error;
    }
  }

  /** Connectors: tensors first, then the manifest (the commit) if nobody changed it meanwhile. */
  private async putInOrder(
    sampleId: string,
    items: { key: string; data: Uint8Array | Uint8Array[] }[],
    base: Omit<SampleManifest, 'fences'>,
    manifestVersion: BackendVersion | undefined,
  ): Promise<BackendVersion[]> {
    const manifestKey = sampleKeys.manifest(this.storeId, sampleId);
    const cleanUp = async (): Promise<void> => {
      await this.freeKeys(
        items.map((i): PendingFree => ({ kind: 'object', key: i.key, version: undefined, tomb: undefined, lastError: undefined })),
      );
    };
    let fences: BackendVersion[];
    try {
      fences = await this.backend.put(items, this.writeOptions(undefined));
    } catch (error) {
      await cleanUp();
      throw error;
    }
    const now = await this.backend.stat(manifestKey);
    if (now?.version !== manifestVersion) {
      const winner = await this.readManifest(sampleId).catch(() => undefined);
      if (winner?.manifest.generation !== base.generation) await cleanUp();
      throw tcError(
        'TC_ERR_CONFLICT',
        `sample '${sampleId}': its manifest changed during the put (a concurrent producer); this put is not visible`,
        {
          details: { sampleId, generation: base.generation },
        },
      );
    }
    try {
      await this.backend.put([{ key: manifestKey, data: encodeManifest({ ...base, fences }) }], this.writeOptions(undefined));
    } catch (error) {
      await cleanUp();
      throw error;
    }
    return fences;
  }

  private writeOptions(txn: string | undefined): { txn?: string; ttlMs?: number; waitForRoomMs?: number; timeoutMs?: number } {
    const o = this.options;
    const caps = this.backend.capabilities;
    return {
      ...(txn === undefined ? {} : { txn }),
      ...(caps.ttl && o.maxHoldAgeMs !== undefined ? { ttlMs: o.maxHoldAgeMs } : {}),
      ...(caps.residentLimit && o.waitForRoomMs !== undefined && o.waitForRoomMs > 0 ? { waitForRoomMs: o.waitForRoomMs } : {}),
      ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
    };
  }

  /**
   * Reads a sample into `into` buffers or new ones. Every tensor is read whole and exactly: a ref that is
   * stale (superseded, released, expired) fails with TC_ERR_NOT_FOUND, never with other bytes.
   *
   * @throws TC_ERR_NOT_FOUND; TC_ERR_SHORT_READ (an `into` buffer larger than the tensor, or a truncated
   *   object); TC_ERR_DESTINATION_SIZE (an `into` buffer smaller than the tensor); TC_ERR_INVALID_ARGUMENT
   */
  async get(ref: SampleRef, options: FeatureGetOptions = {}): Promise<Record<string, FeatureTensor>> {
    this.checkOpen();
    checkRef(ref, this.storeId);
    const peer = await this.peerOf(ref);
    if (peer !== undefined) return peer.get(ref, options);
    if (this.frees.isTombstoned(ref)) throw this.released(ref);
    const dests = this.destinations(ref, options.into);
    const timeoutMs = this.options.timeoutMs;
    const fences = ref.fences;
    try {
      if ((ref.layout ?? 'per-tensor') === 'packed') {
        await readPacked(
          this.backend,
          sampleKeys.packed(this.storeId, ref.sampleId, ref.generation),
          ref.specs,
          dests,
          fences?.[0],
          timeoutMs,
        );
      } else {
        const results = await mapLimit(ref.specs, CONCURRENCY, async (s, i) => {
          try {
            await this.backend.readInto(sampleKeys.tensor(this.storeId, ref.sampleId, ref.generation, s.name), 0, dests.get(s.name)!, {
              ...(fences === undefined ? {} : { version: fences[i]! }),
              ...(timeoutMs === undefined ? {} : { timeoutMs }),
            });
            return undefined;
          } catch (error) {
            return error;
          }
        });
        const errors = results.filter((e) => e !== undefined);
        if (errors.length > 0) throw asTcError(errors.find((e) => isTensorcastError(e, 'TC_ERR_NOT_FOUND')) ?? errors[0]);
      }
    } catch (error) {
      if (isTensorcastError(error, 'TC_ERR_NOT_FOUND'))
        throw tcError(
          'TC_ERR_NOT_FOUND',
          `sample '${ref.sampleId}' generation ${ref.generation}: stale or released sample (${error.message})`,
          {
            cause: error,
            details: { storeId: this.storeId, sampleId: ref.sampleId, generation: ref.generation, reason: 'stale' },
          },
        );
      throw error;
    }
    if (this.frees.isTombstoned(ref)) throw this.released(ref);
    const out: Record<string, FeatureTensor> = {};
    for (const s of ref.specs) out[s.name] = { data: dests.get(s.name)!, dtype: s.dtype, shape: [...s.shape] };
    return out;
  }

  /** The buffer of each tensor: the caller's (checked: exactly the spec's size) or a new one. */
  private destinations(ref: SampleRef, into: Readonly<Record<string, Uint8Array>> | undefined): Map<string, Uint8Array> {
    if (into !== undefined && (typeof into !== 'object' || into === null))
      throw tcError('TC_ERR_INVALID_ARGUMENT', 'into must be an object of tensor name -> Uint8Array');
    const names = new Set(ref.specs.map((s) => s.name));
    for (const name of Object.keys(into ?? {})) {
      if (!names.has(name)) throw tcError('TC_ERR_INVALID_ARGUMENT', `into names '${name}', which sample '${ref.sampleId}' does not hold`);
    }
    const dests = new Map<string, Uint8Array>();
    for (const s of ref.specs) {
      const given = into?.[s.name];
      if (given === undefined) {
        dests.set(s.name, Buffer.allocUnsafeSlow(s.byteLength));
        continue;
      }
      if (!(given instanceof Uint8Array)) throw tcError('TC_ERR_INVALID_ARGUMENT', `into['${s.name}'] must be a Uint8Array`);
      if (given.length > s.byteLength)
        throw tcError(
          'TC_ERR_SHORT_READ',
          `tensor '${s.name}' has ${s.byteLength} bytes; into['${s.name}'] holds ${given.length} and would not be filled`,
          {
            details: { tensor: s.name, expected: s.byteLength, actual: given.length },
          },
        );
      if (given.length < s.byteLength)
        throw tcError(
          'TC_ERR_DESTINATION_SIZE',
          `tensor '${s.name}' has ${s.byteLength} bytes; into['${s.name}'] holds only ${given.length}`,
          {
            details: { tensor: s.name, expected: s.byteLength, actual: given.length },
          },
        );
      dests.set(s.name, given);
    }
    return dests;
  }

  private released(ref: SampleRef): TensorcastError {
    return tcError('TC_ERR_NOT_FOUND', `sample '${ref.sampleId}' generation ${ref.generation} was released`, {
      details: { storeId: this.storeId, sampleId: ref.sampleId, generation: ref.generation, reason: 'released' },
    });
  }

  /**
   * Releases a sample: at once for this store (get of the ref fails), then its objects and manifest are
   * deleted on the backend; a delete that fails is kept for gc(). With retainOnRelease the bytes stay (and
   * the ref stays readable) until drain() or `{ force: true }`.
   */
  async release(ref: SampleRef, options: { readonly force?: boolean } = {}): Promise<void> {
    this.checkOpen();
    checkRef(ref, this.storeId);
    const peer = await this.peerOf(ref);
    if (peer !== undefined) return peer.release(ref, options);
    if (this.options.retainOnRelease === true && options.force !== true) {
      if (!this.frees.isTombstoned(ref)) this.frees.retain(ref);
      return;
    }
    await this.freeRef(ref);
  }

  /** Tombstones `ref` and frees its objects and (when it still names this generation) its manifest. */
  private async freeRef(ref: SampleRef): Promise<number> {
    const objectKeys = refObjectKeys(ref);
    const manifestKey = sampleKeys.manifest(this.storeId, ref.sampleId);
    const fences = ref.fences;
    // The sample was put again at the same generation (released, then put anew): its keys hold the new
    // sample's objects now (an etag may even be equal: S3's is the bytes' MD5), so nothing here is ours to free.
    const current = await this.readManifest(ref.sampleId).catch(() => undefined);
    if (current !== undefined && current.manifest.generation === ref.generation && !sameFences(current.manifest.fences, fences)) {
      this.frees.tombstone(ref, []);
      return 0;
    }
    const tomb = this.frees.tombstone(ref, [...objectKeys, manifestKey]);
    return this.freeKeys([
      { kind: 'manifest', key: manifestKey, sampleId: ref.sampleId, generation: ref.generation, fences, tomb, lastError: undefined },
      ...objectKeys.map((key, i): PendingFree => ({ kind: 'object', key, version: fences?.[i], tomb, lastError: undefined })),
    ]);
  }

  /** A superseded generation: its objects go (the new manifest already replaced the old one). */
  private async retire(old: SampleRef): Promise<void> {
    const keys = refObjectKeys(old);
    const tomb = this.frees.tombstone(old, keys);
    await this.freeKeys(keys.map((key): PendingFree => ({ kind: 'object', key, version: undefined, tomb, lastError: undefined })));
  }

  /** Deletes what `frees` name; failures go to the pending list. Resolves with the number freed. */
  private async freeKeys(frees: readonly PendingFree[]): Promise<number> {
    let freed = 0;
    const toDelete: PendingFree[] = [];
    const fenced = frees.filter((f) => f.kind === 'object' && f.version !== undefined);
    let versions: Map<string, BackendVersion> | undefined;
    if (fenced.length > 0) {
      try {
        versions = await this.currentVersions(fenced.map((f) => f.key));
      } catch (error) {
        for (const f of fenced) this.frees.failed(f, asTcError(error));
      }
    }
    for (const f of frees) {
      if (f.kind === 'object') {
        if (f.version === undefined) toDelete.push(f);
        else if (versions === undefined) continue;
        else if (versions.get(f.key) === f.version) toDelete.push(f);
        else this.frees.freed(f); // gone already, or another put's object now: not ours to delete
        continue;
      }
      try {
        const current = await this.readManifest(f.sampleId);
        if (current !== undefined && current.manifest.generation === f.generation && sameFences(current.manifest.fences, f.fences)) {
          const [result] = await this.backend.delete([f.key]);
          if (result?.error !== undefined) throw result.error;
          freed++;
        }
        this.frees.freed(f);
      } catch (error) {
        this.frees.failed(f, asTcError(error));
      }
    }
    if (toDelete.length === 0) return freed;
    let results;
    try {
      results = await this.backend.delete(toDelete.map((f) => f.key));
    } catch (error) {
      for (const f of toDelete) this.frees.failed(f, asTcError(error));
      return freed;
    }
    toDelete.forEach((f, i) => {
      const error = results[i]?.error;
      if (error === undefined) {
        this.frees.freed(f);
        freed++;
      } else this.frees.failed(f, error);
    });
    return freed;
  }

  /** The backend's versions of `keys` (absent: not there), from one listing per sample. */
  private async currentVersions(keys: readonly string[]): Promise<Map<string, BackendVersion>> {
    const prefixes = new Set(keys.map((k) => k.slice(0, k.indexOf('/', this.storeId.length + 1) + 1)));
    const out = new Map<string, BackendVersion>();
    for (const prefix of prefixes) for (const o of await this.backend.list(prefix)) out.set(o.key, o.version);
    return out;
  }

  /**
   * Retries the pending frees once and, on backends without TTL when maxHoldAgeMs is set, frees the samples
   * put longer ago than that. Never throws for a free that fails: it stays pending and is reported.
   */
  async gc(): Promise<GcReport> {
    this.checkOpen();
    let freed = await this.freeKeys(this.frees.pendingFrees());
    let expired = 0;
    const maxAge = this.options.maxHoldAgeMs;
    if (maxAge !== undefined && !this.backend.capabilities.ttl) {
      const manifests = (await this.backend.list(`${this.storeId}/`)).filter(
        (o) => parseSampleKey(this.storeId, o.key)?.kind === 'manifest',
      );
      const now = Date.now();
      await mapLimit(manifests, CONCURRENCY, async (o) => {
        const sampleId = parseSampleKey(this.storeId, o.key)!.sampleId;
        const current = await this.readManifest(sampleId).catch(() => undefined);
        if (current === undefined || current.manifest.createdAt + maxAge > now) return;
        expired++;
        freed += await this.freeRef(refFromManifest(this.storeId, current.manifest));
      });
    }
    const failed = this.failures();
    for (const peer of await this.peerStores()) {
      const r = await peer.gc();
      freed += r.freed;
      failed.push(...r.failed);
    }
    return { freed, expired, failed };
  }

  /**
   * Shutdown: frees every retained sample and retries every pending free (a few passes), then reports what
   * is still on the backend. The store stays usable.
   */
  async drain(): Promise<DrainReport> {
    this.checkOpen();
    let freed = 0;
    const retained = this.frees.retained();
    for (const ref of retained) freed += await this.freeRef(ref);
    for (let pass = 0; pass < DRAIN_PASSES && this.frees.counts.pendingFrees > 0; pass++)
      freed += await this.freeKeys(this.frees.pendingFrees());
    let retainedFreed = retained.length;
    const failed = this.failures();
    for (const peer of await this.peerStores()) {
      const r = await peer.drain();
      freed += r.freed;
      retainedFreed += r.retainedFreed;
      failed.push(...r.failed);
    }
    return { freed, retainedFreed, failed };
  }

  private failures(): FreeFailure[] {
    return this.frees.pendingFrees().map((f) => ({
      key: f.key,
      code: f.lastError?.code ?? 'TC_ERR_INTERNAL',
      message: f.lastError?.message ?? 'not freed yet',
    }));
  }

  /** The ref of a sample's current generation, or undefined when it has none. */
  async latest(sampleId: string): Promise<SampleRef | undefined> {
    this.checkOpen();
    checkSampleId(sampleId);
    const current = await this.readManifest(sampleId);
    return current === undefined ? undefined : this.stamped(refFromManifest(this.storeId, current.manifest));
  }

  /** Counts of the store on the backend (one listing) and of this process's bookkeeping. */
  async stat(): Promise<FeatureStats> {
    this.checkOpen();
    const [objects, usage] = await Promise.all([this.backend.list(`${this.storeId}/`), this.backend.usage(this.storeId)]);
    let samples = 0;
    let listedBytes = 0;
    const generations = new Set<string>();
    for (const o of objects) {
      listedBytes += o.size;
      const parsed = parseSampleKey(this.storeId, o.key);
      if (parsed === undefined) continue;
      if (parsed.kind === 'manifest') samples++;
      else generations.add(`${parsed.sampleId}/${parsed.generation}`);
    }
    const counts = this.frees.counts;
    return {
      storeId: this.storeId,
      backend: this.backend.name,
      samples,
      generations: generations.size,
      objects: objects.length,
      residentBytes: usage?.residentBytes ?? listedBytes,
      maxResidentBytes: usage !== undefined ? usage.maxBytes : (this.options.maxResidentBytes ?? null),
      pendingFrees: counts.pendingFrees,
      backendPendingFrees: usage?.pendingFrees ?? null,
      tombstones: counts.tombstones,
      retained: counts.retained,
    };
  }

  /** Closes the backend when this store opened it (openFeatureStore); the store is unusable afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.onClose?.();
  }

  /** `ref` with this backend's daemon id (daemon backends). */
  private stamped(ref: SampleRef): SampleRef {
    return this.backend.daemonId === undefined ? ref : { ...ref, daemonId: this.backend.daemonId };
  }

  /**
   * The store on the daemon that holds `ref` when that is another daemon of the cluster; undefined when the
   * ref is this backend's (or names no daemon).
   *
   * @throws TC_ERR_INVALID_ARGUMENT (a daemon's ref given to a connector store); TC_ERR_UNAVAILABLE
   */
  private async peerOf(ref: SampleRef): Promise<FeatureStore | undefined> {
    const id = ref.daemonId;
    if (id === undefined || id === this.backend.daemonId) return undefined;
    const remote = this.backend.remote?.bind(this.backend);
    if (this.backend.daemonId === undefined || remote === undefined)
      throw tcError('TC_ERR_INVALID_ARGUMENT', `sample ref of daemon '${id}' given to store '${this.storeId}' on ${this.backend.name}`);
    let peer = this.peers.get(id);
    if (peer === undefined) {
      // The peer store shares this store's options (token, timeouts); it never puts, so it never prepares.
      peer = remote(id).then((backend) => new FeatureStore(this.storeId, backend, this.options));
      this.peers.set(id, peer);
      // A daemon that cannot be reached now may be later: resolve it again next time.
      peer.catch(() => this.peers.delete(id));
    }
    return peer;
  }

  /** The peer stores resolved so far. */
  private async peerStores(): Promise<FeatureStore[]> {
    const settled = await Promise.allSettled(this.peers.values());
    return settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  private checkOpen(): void {
    if (this.closed) throw tcError('TC_ERR_ABORTED', `feature store '${this.storeId}' is closed`);
  }

  private prepare(): Promise<void> {
    const { token, maxResidentBytes } = this.options;
    this.prepared ??= this.backend
      .prepare(this.storeId, {
        ...(token === undefined ? {} : { token }),
        ...(maxResidentBytes === undefined || !this.backend.capabilities.residentLimit ? {} : { maxBytes: maxResidentBytes }),
      })
      .catch((error: unknown) => {
        this.prepared = undefined;
        throw error;
      });
    return this.prepared;
  }

  /**
   * The manifest a put supersedes and the version its commit is conditioned on. A manifest the daemon lost
   * in a restart (TC_ERR_OBJECT_LOST) is superseded like any other: its version comes from the listing.
   */
  private async manifestForPut(
    sampleId: string,
  ): Promise<{ current: CurrentManifest | undefined; version: BackendVersion | undefined; lostKeys: string[] }> {
    try {
      const current = await this.readManifest(sampleId);
      return { current, version: current?.version, lostKeys: [] };
    } catch (error) {
      if (!isTensorcastError(error, 'TC_ERR_OBJECT_LOST')) throw error;
      const key = sampleKeys.manifest(this.storeId, sampleId);
      const listed = await this.backend.list(sampleKeys.prefix(this.storeId, sampleId));
      // The lost generation's objects are unknown (its manifest is gone): every object of the sample is retired.
      const lostKeys = listed.filter((o) => o.key !== key && parseSampleKey(this.storeId, o.key)?.sampleId === sampleId).map((o) => o.key);
      return { current: undefined, version: listed.find((o) => o.key === key)?.version, lostKeys };
    }
  }

  private async readManifest(sampleId: string): Promise<CurrentManifest | undefined> {
    const key = sampleKeys.manifest(this.storeId, sampleId);
    const got = await this.backend.read(key, MAX_MANIFEST_BYTES);
    if (got === undefined) return undefined;
    const manifest = decodeManifest(got.data, key);
    if (manifest.sampleId !== sampleId) throw tcError('TC_ERR_BACKEND', `${key} names sample '${manifest.sampleId}'`);
    return { manifest, version: got.version };
  }

  /**
   * A sample without a manifest starts at generation 0, unless objects of earlier generations are still on
   * the backend (frees pending): then after the highest, so no key is ever reused while it holds bytes.
   */
  private async freshGeneration(sampleId: string): Promise<number> {
    let next = 0;
    for (const o of await this.backend.list(sampleKeys.prefix(this.storeId, sampleId))) {
      const parsed = parseSampleKey(this.storeId, o.key);
      if (parsed !== undefined && parsed.kind !== 'manifest' && parsed.sampleId === sampleId) next = Math.max(next, parsed.generation + 1);
    }
    return next;
  }

  /** Connectors: waits (up to waitForRoomMs) until the listed bytes plus `bytes` fit under maxResidentBytes. */
  private async waitForRoom(bytes: number): Promise<void> {
    const max = this.options.maxResidentBytes!;
    const deadline = Date.now() + (this.options.waitForRoomMs ?? 0);
    for (let delayMs = 10; ; delayMs = Math.min(delayMs * 2, 250)) {
      const used = (await this.backend.list(`${this.storeId}/`)).reduce((n, o) => n + o.size, 0);
      if (used + bytes <= max) return;
      const left = deadline - Date.now();
      if (left <= 0)
        throw tcError(
          'TC_ERR_BACKPRESSURE',
          `store '${this.storeId}' holds ${used} bytes; ${bytes} more would exceed maxResidentBytes ${max}: release samples, then retry`,
          { details: { storeId: this.storeId, residentBytes: used, requestedBytes: bytes, maxResidentBytes: max } },
        );
      await new Promise((resolve) => setTimeout(resolve, Math.min(delayMs, left)));
    }
  }
}

function sameFences(a: readonly BackendVersion[] | undefined, b: readonly BackendVersion[] | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function asTcError(error: unknown): TensorcastError {
  return isTensorcastError(error) ? error : tcError('TC_ERR_BACKEND', String(error), { cause: error });
}
