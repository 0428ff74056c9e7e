// The daemon's object store: named byte objects in namespaces, on memory (one Buffer each, under their own
// budget), shm segment files or disk (spill), with two-phase puts, atomic transactions, read leases fenced
// by version that never hold a delete back, backpressure waiters, TTLs and a journal that survives restarts.

import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { tcError, wrapIoError, type TensorcastError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { checkNamespace, parseObjectKey } from '../../core/object-keys.js';
import { BufferPool, POOL_MIN_BYTES, poolCapacity } from './buffer-pool.js';
import { ObjectBody, type ObjectSegmentProvider } from './object-body.js';
import { ObjectJournal, type JournalObject, type JournalState } from './journal.js';
import { Namespace, checkSettings } from './namespaces.js';
import type {
  DeleteResult,
  NamespaceInfo,
  NamespaceSettings,
  ObjectMeta,
  ObjectStoreApi,
  PendingPut,
  PutRequest,
  ReadLease,
} from './object-store-api.js';
import { ObjectPut, type PutHost } from './pending-put.js';
import { ObjectReadLease, type LeaseHost } from './read-lease.js';
import { recoverObjects } from './recovery.js';
import { ObjectRoom } from './object-room.js';
import { checkIfVersion, checkPutRequest, journalObject } from './put-checks.js';
export { MAX_MEMORY_OBJECT_BYTES } from './object-room.js';
import { ShmObjectSegments } from './shm-segments.js';
import { TxnTable, checkTxnId } from './txns.js';
import { compareUtf8 } from '../../core/strings.js';

/** Journal lines beyond twice the live records before it is rewritten. */
const JOURNAL_SLACK_LINES = 10_000;
/** Objects a list returns at most. */
export const MAX_LIST_LIMIT = 10_000;

/** Options of an {@link ObjectStore}. */
export interface ObjectStoreOptions {
  /** Budget of memory-tier and shm-tier bytes (committed, pending, deleted but still read). */
  readonly memoryBytes: number;
  /** Spill folder (`<dataDir>/objects` when objectSpill is on): puts that do not fit go to disk, commits are journaled. */
  readonly spillDir?: string | undefined;
  /** Folder of shm segment files for placement 'shm' (used when `shm` is not given). */
  readonly shmDir?: string | undefined;
  /** Makes shm segment files (e.g. over the daemon's ShmSegmentPool). */
  readonly shm?: ObjectSegmentProvider | undefined;
  readonly log: Logger;
  /** A transaction unused this long is aborted (ms, default 60 s). */
  readonly txnTtlMs?: number;
  /** Period of the sweep: TTLs, idle transactions, expired puts and reads (ms, default 1 s). */
  readonly sweepMs?: number;
  /** Clock (Unix ms; tests). */
  readonly now?: () => number;
  /**
   * Most bytes of freed memory-tier buffers kept for reuse (default: a quarter of memoryBytes, at most 1 GiB;
   * 0 turns reuse off). Idle pooled bytes count inside memoryBytes and are dropped whenever a put needs them.
   */
  readonly poolBytes?: number;
}

/**
 * The object store.
 *
 * @example
 * const store = new ObjectStore({ memoryBytes: 1 << 30, spillDir: join(dataDir, 'objects'), log });
 * await store.init();
 * const put = await store.beginPut({ key: 'ns/a', size: 3, deadline: Date.now() + 30_000 });
 * await put.write(0, new Uint8Array([1, 2, 3]));
 * const { version } = await put.finish();
 * const lease = store.openRead('ns/a', undefined, Date.now() + 30_000);
 * const bytes = await lease.chunk(0, 3); lease.done(); lease.release();
 */
export class ObjectStore implements ObjectStoreApi {
  private readonly objects = new Map<string, ObjectBody>();
  private readonly spaces = new Map<string, Namespace>();
  private readonly puts = new Map<string, ObjectPut>();
  private readonly txns = new TxnTable<ObjectPut>();
  private readonly leases = new Set<ObjectReadLease>();
  /** Deleted or replaced bodies whose bytes a read is copying. */
  private readonly dying = new Set<ObjectBody>();
  /** Live bodies with an expiresAt. */
  private readonly expiring = new Set<ObjectBody>();
  private readonly room: ObjectRoom;
  private readonly background = new Set<Promise<void>>();
  private readonly now: () => number;
  private readonly txnTtlMs: number;
  private readonly shm: ObjectSegmentProvider | undefined;
  private journal: ObjectJournal | undefined;
  /** Freed memory-tier buffers kept for reuse (their idle bytes count inside the budget). */
  private readonly pool: BufferPool;
  private lastVersion = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly putHost: PutHost = {
    finish: (put, crc) => this.finishPut(put, crc),
    abort: (put, error) => this.abortPut(put, error),
  };
  private readonly leaseHost: LeaseHost = {
    chunkDone: (body) => this.chunkDone(body),
    ended: (lease) => this.leases.delete(lease),
    verify: (body) => this.verifyBody(body),
  };

  constructor(private readonly opts: ObjectStoreOptions) {
    if (!(Number.isSafeInteger(opts.memoryBytes) && opts.memoryBytes >= 0))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `objectMemory must be a non-negative integer, not ${String(opts.memoryBytes)}`);
    this.now = opts.now ?? Date.now;
    this.txnTtlMs = opts.txnTtlMs ?? 60_000;
    const poolBytes = opts.poolBytes ?? Math.min(Math.floor(opts.memoryBytes / 4), 1 << 30);
    if (!(Number.isSafeInteger(poolBytes) && poolBytes >= 0))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `poolBytes must be a non-negative integer, not ${String(opts.poolBytes)}`);
    this.pool = new BufferPool(poolBytes);
    this.shm = opts.shm ?? (opts.shmDir === undefined ? undefined : new ShmObjectSegments(opts.shmDir, poolBytes));
    this.room = new ObjectRoom(opts.memoryBytes, this.now, {
      idleBytes: () => this.pool.idleBytes + (this.shm?.idleBytes ?? 0),
      evict: (bytes) => {
        const released = this.pool.evict(bytes);
        if (released < bytes) this.shm?.evictIdle?.(bytes - released);
      },
      cost: (tier, size) => (tier === 'memory' ? this.memoryCost(size) : tier === 'shm' ? size : 0),
    });
  }

  /**
   * Replays the journal (spill on): disk objects come back, memory ones are reported lost, files of
   * unfinished puts are removed; versions continue above every version ever handed out. Starts the sweep.
   *
   * @throws TC_ERR_IO, TC_ERR_NO_SPACE
   */
  async init(): Promise<void> {
    // Without a journal, the clock keeps versions from repeating across restarts (1000 versions per ms).
    this.lastVersion = Math.max(this.lastVersion, Math.floor(this.now()) * 1000);
    if (this.shm instanceof ShmObjectSegments) await this.shm.init();
    const dir = this.opts.spillDir;
    if (dir !== undefined) {
      const { journal, state } = await ObjectJournal.open(dir, this.opts.log);
      this.journal = journal;
      this.lastVersion = Math.max(this.lastVersion, state.maxVersion);
      for (const r of state.namespaces.values()) this.spaces.set(r.ns, Namespace.fromRecord(r));
      for (const { object, lost } of await recoverObjects(dir, state, this.opts.log)) this.restore(object, lost, dir);
      const lost = [...this.objects.values()].filter((b) => b.state === 'lost').length;
      this.opts.log.info({ dir, objects: this.objects.size, lost }, 'object store recovered from its journal');
    }
    this.sweeper = setInterval(() => this.sweep(), this.opts.sweepMs ?? 1000);
    this.sweeper.unref();
  }

  /**
   * Stops the sweep, fails waiters and puts, ends reads and frees memory and shm objects (their files go);
   * committed disk objects stay for the next start.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    const closing = tcError('TC_ERR_SHUTTING_DOWN', 'the object store is closing');
    this.room.failAll(closing);
    for (const put of [...this.puts.values()]) this.abortPut(put, closing);
    for (const lease of [...this.leases]) lease.expire();
    for (const body of [...this.objects.values(), ...this.dying]) {
      // A committed disk object stays on disk for the next start (the journal names it).
      if (body.state === 'live' && body.tier === 'disk') body.storage = undefined;
      this.free(body);
    }
    this.objects.clear();
    this.pool.clear();
    this.journal?.close();
    while (this.background.size > 0) await Promise.all([...this.background]);
    // After the frees above: segments they recycled are removed too.
    await this.shm?.drainIdle?.();
  }

  async beginPut(request: PutRequest): Promise<PendingPut> {
    this.checkOpen();
    const { namespace } = parseObjectKey(request.key);
    checkPutRequest(request);
    if (request.placement === 'shm' && this.shm === undefined)
      throw tcError('TC_ERR_INVALID_ARGUMENT', 'this daemon has no shm folder for same-host puts: use TCP', {
        details: { reason: 'no_shm' },
      });
    this.existing(namespace)?.authorize(request.storeToken);
    if (request.txn === undefined && request.ifVersion !== undefined) this.checkCondition(request.key, request.ifVersion);
    const ns = this.namespace(namespace);
    const tier = await this.room.reserve(request, ns, this.journal !== undefined);
    const body = new ObjectBody(request.key, ns, request.size, tier);
    const put = new ObjectPut(
      randomBytes(12).toString('hex'),
      body,
      { crc: request.crc, txn: request.txn, ifVersion: request.ifVersion, ttlMs: request.ttlMs, deadline: request.deadline },
      this.putHost,
    );
    // The room was charged by reserve, synchronously with the decision.
    ns.pendingPuts++;
    ns.pendingBytes += body.size;
    this.puts.set(put.id, put);
    if (request.txn !== undefined) this.txns.use(request.txn, this.now()).puts.add(put);
    let failure: unknown;
    await this.allocate(put).catch((error: unknown) => {
      failure = error;
    });
    if (failure !== undefined || put.state !== 'landing') {
      // Failed, or aborted (closed, deadline) while its storage was being made: that storage goes too.
      const e = put.abortError ?? wrapIoError(failure, `cannot make room for object '${request.key}'`, this.opts.spillDir ?? '');
      this.abortPut(put, e);
      const file = put.file;
      put.file = undefined;
      await file?.close().catch(() => undefined);
      await body.release();
      throw e;
    }
    return put;
  }

  openRead(key: string, storeToken: string | undefined, deadline: number): ReadLease {
    const body = this.visible(key, storeToken);
    const lease = new ObjectReadLease(body, deadline, this.leaseHost);
    this.leases.add(lease);
    return lease;
  }

  commitTxn(
    txn: string,
    conditions: readonly { key: string; ifVersion: number | null }[],
    storeToken: string | undefined,
  ): Record<string, number> {
    this.checkOpen();
    checkTxnId(txn);
    const t = this.txns.get(txn);
    if (t === undefined) throw tcError('TC_ERR_NOT_FOUND', `unknown or expired transaction '${txn}'`, { details: { txn } });
    const given: unknown = conditions;
    if (!Array.isArray(given)) throw tcError('TC_ERR_INVALID_ARGUMENT', 'conditions must be an array');
    const all = [...conditions.map((c) => ({ key: c.key, ifVersion: c.ifVersion }))];
    for (const c of all) {
      parseObjectKey(c.key);
      checkIfVersion(c.ifVersion);
    }
    const puts = [...t.puts];
    for (const p of puts) if (p.terms.ifVersion !== undefined) all.push({ key: p.key, ifVersion: p.terms.ifVersion });
    // Every namespace touched must admit the token; a wrong token leaves the transaction as it was.
    const names = new Set([...all.map((c) => parseObjectKey(c.key).namespace), ...puts.map((p) => p.namespace)]);
    for (const name of names) this.existing(name)?.authorize(storeToken);
    const landing = puts.filter((p) => p.state !== 'parked');
    if (landing.length > 0)
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `transaction '${txn}' has ${landing.length} put(s) not finished (first: '${landing[0]!.key}')`,
      );
    try {
      for (const c of all) this.checkCondition(c.key, c.ifVersion);
    } catch (error) {
      this.abortTxn(txn, error as TensorcastError);
      throw error;
    }
    puts.sort((a, b) => a.body.version - b.body.version);
    this.publish(puts);
    this.txns.remove(txn);
    const versions: Record<string, number> = {};
    for (const p of puts) versions[p.key] = p.body.version;
    return versions;
  }

  abortTxn(txn: string, reason?: TensorcastError): void {
    const t = this.txns.get(txn);
    if (t === undefined) return;
    this.txns.remove(txn);
    const error = reason ?? tcError('TC_ERR_NOT_FOUND', `transaction '${txn}' was aborted`, { details: { txn } });
    for (const put of t.puts) this.abortPut(put, error);
  }

  delete(keys: readonly string[], storeToken: string | undefined): DeleteResult[] {
    this.checkOpen();
    const results: DeleteResult[] = [];
    const doomed = new Set<ObjectBody>();
    for (const key of keys) {
      try {
        const { namespace } = parseObjectKey(key);
        this.existing(namespace)?.authorize(storeToken);
        const body = this.objects.get(key);
        if (body !== undefined) doomed.add(body);
        results.push({ key, ok: true, existed: body !== undefined });
      } catch (error) {
        const e = error as TensorcastError;
        results.push({ key, ok: false, code: e.code, message: e.message });
      }
    }
    try {
      this.journalDeletes([...doomed]);
    } catch (error) {
      const e = error as TensorcastError;
      return results.map((r) => (r.ok && r.existed ? { key: r.key, ok: false, code: e.code, message: e.message } : r));
    }
    for (const body of doomed) this.unlink(body);
    this.compactJournal();
    return results;
  }

  stat(key: string, storeToken: string | undefined): ObjectMeta {
    return this.visible(key, storeToken).meta();
  }

  list(
    prefix: string,
    options: { after?: string; limit?: number; storeToken?: string | undefined },
  ): { objects: ObjectMeta[]; next: string | null } {
    if (typeof prefix !== 'string') throw tcError('TC_ERR_INVALID_ARGUMENT', 'a list prefix must be a string');
    const limit = options.limit ?? 1000;
    if (!(Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_LIST_LIMIT))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `a list limit must be 1-${MAX_LIST_LIMIT}, not ${String(limit)}`);
    const admitted = new Map<Namespace, boolean>();
    const keys: string[] = [];
    for (const [key, body] of this.objects) {
      if (!key.startsWith(prefix) || (options.after !== undefined && compareUtf8(key, options.after) <= 0)) continue;
      let ok = admitted.get(body.ns);
      if (ok === undefined) admitted.set(body.ns, (ok = body.ns.admits(options.storeToken)));
      if (ok) keys.push(key);
    }
    keys.sort(compareUtf8);
    const page = keys.slice(0, limit);
    return { objects: page.map((k) => this.objects.get(k)!.meta()), next: keys.length > limit ? page[page.length - 1]! : null };
  }

  configureNamespace(namespace: string, settings: NamespaceSettings, storeToken: string | undefined): NamespaceInfo {
    this.checkOpen();
    checkNamespace(namespace);
    checkSettings(settings);
    const existing = this.existing(namespace);
    existing?.authorize(storeToken);
    const ns = existing ?? new Namespace(namespace);
    const next = new Namespace(namespace);
    next.tokenHash = ns.tokenHash;
    next.maxBytes = ns.maxBytes;
    next.apply(settings);
    this.journal?.append({ t: 'ns', ...next.record() });
    ns.apply(settings);
    this.spaces.set(namespace, ns);
    this.room.pump();
    return this.info(ns);
  }

  namespaceInfo(namespace: string, storeToken: string | undefined): NamespaceInfo {
    const ns = this.existing(checkNamespace(namespace));
    if (ns === undefined) throw tcError('TC_ERR_NOT_FOUND', `no object namespace '${namespace}'`, { details: { namespace } });
    ns.authorize(storeToken);
    return this.info(ns);
  }

  namespaces(): NamespaceInfo[] {
    return [...this.spaces.values()].sort((a, b) => compareUtf8(a.name, b.name)).map((ns) => this.info(ns));
  }

  /**
   * Memory-tier and shm-tier bytes held now by objects (all namespaces; a pooled memory object counts its
   * buffer's capacity, at most 1/8 above its size). Idle pooled buffers are {@link pooledBytes}.
   */
  get memoryBytesUsed(): number {
    return this.room.memoryUsed;
  }

  /** Bytes of freed buffers kept for reuse, and how often a put found one (they count inside the budget). */
  get pooledBytes(): { idleBytes: number; hits: number; misses: number; idleShmBytes: number } {
    return { ...this.pool.stats, idleShmBytes: this.shm?.idleBytes ?? 0 };
  }

  /**
   * One sweep now (the timer runs it every sweepMs): expired objects are deleted, idle transactions
   * aborted, puts past their deadline aborted, reads past their deadline ended.
   */
  sweep(): void {
    if (this.closed) return;
    const now = this.now();
    const expired = [...this.expiring].filter((b) => b.expiresAt !== null && b.expiresAt <= now);
    if (expired.length > 0) {
      try {
        this.journalDeletes(expired);
        for (const body of expired) this.unlink(body);
        this.compactJournal();
      } catch (error) {
        this.opts.log.warn({ err: error }, 'cannot journal the deletion of expired objects: retried next sweep');
      }
    }
    // A transaction with a put still landing is in use (a large put may take longer than the TTL): its idle
    // time counts from when its last put landed. A landing put has its own deadline (below).
    for (const t of this.txns.idleSince(now - this.txnTtlMs)) {
      if ([...t.puts].some((p) => p.state === 'landing')) {
        t.lastUsed = now;
        continue;
      }
      this.abortTxn(t.id, tcError('TC_ERR_NOT_FOUND', `transaction '${t.id}' expired after ${this.txnTtlMs} ms unused`));
    }
    for (const put of [...this.puts.values()])
      if (put.state === 'landing' && put.terms.deadline <= now)
        this.abortPut(put, tcError('TC_ERR_TIMEOUT', `put of '${put.key}' passed its deadline before its last byte landed`));
    for (const lease of [...this.leases]) if (lease.deadline <= now) lease.expire();
  }

  // ---- puts

  /** Gives a reserved put its storage. */
  private async allocate(put: ObjectPut): Promise<void> {
    const body = put.body;
    switch (body.tier) {
      case 'memory':
        try {
          body.storage = { tier: 'memory', buffer: this.memoryBuffer(body.size) };
        } catch (error) {
          // The process could not get the memory the budget allowed.
          throw tcError('TC_ERR_BUDGET', `cannot allocate ${body.size} bytes for object '${body.key}'`, { cause: error });
        }
        return;
      case 'shm': {
        const segment = await this.shm!.create(body.size);
        body.storage = { tier: 'shm', segment };
        if (segment.buffer === undefined) put.file = await open(segment.path, 'r+');
        return;
      }
      case 'disk': {
        const path = join(this.opts.spillDir!, `o-${put.id}.bin`);
        const file = await open(path, 'wx', 0o600);
        body.storage = { tier: 'disk', path };
        put.file = file;
        await file.truncate(body.size);
        return;
      }
    }
  }

  private async finishPut(put: ObjectPut, crc: number | undefined): Promise<{ version: number }> {
    if (put.state !== 'landing') throw put.abortError ?? tcError('TC_ERR_INVALID_ARGUMENT', `put of '${put.key}' was already finished`);
    put.state = 'finishing';
    await put.settle();
    let actual: number;
    try {
      if (put.state !== 'finishing') throw put.abortError!;
      const file = put.file;
      put.file = undefined;
      await file?.close();
      actual = put.streamedCrc ?? (await put.body.computeCrc());
    } catch (error) {
      const e = wrapIoError(error, `cannot finish the put of '${put.key}'`, put.body.path ?? '');
      this.abortPut(put, e);
      throw e;
    }
    if (put.state !== 'finishing') throw put.abortError!;
    for (const expected of [crc, put.terms.crc]) {
      if (expected !== undefined && expected >>> 0 !== actual) {
        const e = tcError('TC_ERR_CHECKSUM', `object '${put.key}' has CRC32C ${actual}, the put said ${expected >>> 0}: put aborted`, {
          details: { key: put.key },
        });
        this.abortPut(put, e);
        throw e;
      }
    }
    put.body.crc = actual;
    const txnId = put.terms.txn;
    if (txnId !== undefined) {
      const txn = this.txns.get(txnId);
      if (txn === undefined || !txn.puts.has(put)) {
        const e = tcError('TC_ERR_NOT_FOUND', `transaction '${txnId}' of the put of '${put.key}' is gone (aborted or expired)`);
        this.abortPut(put, e);
        throw e;
      }
      txn.lastUsed = this.now();
      put.body.version = this.nextVersion();
      put.state = 'parked';
      return { version: put.body.version };
    }
    try {
      if (put.terms.ifVersion !== undefined) this.checkCondition(put.key, put.terms.ifVersion);
      put.body.version = this.nextVersion();
      this.publish([put]);
    } catch (error) {
      this.abortPut(put, error as TensorcastError);
      throw error;
    }
    return { version: put.body.version };
  }

  /** Makes landed puts visible at once (journaled first, on one line). @throws TC_ERR_IO, TC_ERR_NO_SPACE */
  private publish(puts: readonly ObjectPut[]): void {
    const now = this.now();
    for (const { body, terms } of puts) {
      body.createdAt = now;
      body.expiresAt = terms.ttlMs === undefined ? null : now + terms.ttlMs;
    }
    this.journal?.append({ t: 'put', o: puts.map((p) => journalObject(p.body)) });
    for (const put of puts) {
      const { body } = put;
      put.state = 'committed';
      this.puts.delete(put.id);
      body.ns.pendingPuts--;
      body.ns.pendingBytes -= body.size;
      const old = this.objects.get(body.key);
      if (old !== undefined) this.unlink(old);
      body.state = 'live';
      body.ns.objects++;
      this.objects.set(body.key, body);
      if (body.expiresAt !== null) this.expiring.add(body);
    }
    this.compactJournal();
  }

  private abortPut(put: ObjectPut, error: TensorcastError): void {
    if (put.state === 'committed' || put.state === 'aborted') return;
    put.state = 'aborted';
    put.abortError = error;
    this.puts.delete(put.id);
    if (put.terms.txn !== undefined) this.txns.get(put.terms.txn)?.puts.delete(put);
    const { body } = put;
    body.ns.pendingPuts--;
    body.ns.pendingBytes -= body.size;
    const file = put.file;
    put.file = undefined;
    if (file !== undefined) this.track(file.close().catch(() => undefined));
    this.free(body);
  }

  // ---- reads, deletes, frees

  /** The live object `key` for a read or stat. @throws TC_ERR_NOT_FOUND, TC_ERR_OBJECT_LOST, TC_ERR_AUTH */
  private visible(key: string, storeToken: string | undefined): ObjectBody {
    const { namespace } = parseObjectKey(key);
    const ns = this.existing(namespace);
    ns?.authorize(storeToken);
    const body = this.objects.get(key);
    if (body === undefined) throw tcError('TC_ERR_NOT_FOUND', `no object '${key}'`, { details: { key } });
    if (body.state === 'lost')
      throw tcError(
        'TC_ERR_OBJECT_LOST',
        `object '${key}' (version ${body.version}) was lost: its bytes were in ${body.tier === 'disk' ? 'a damaged file' : 'memory'} when the daemon stopped`,
        {
          details: { key, version: body.version },
        },
      );
    return body;
  }

  /** Removes a visible object: new readers miss it at once; its bytes go when no chunk is being copied. */
  private unlink(body: ObjectBody): void {
    if (this.objects.get(body.key) === body) this.objects.delete(body.key);
    this.expiring.delete(body);
    if (body.state === 'lost') {
      body.ns.lost--;
      body.state = 'freed';
      return;
    }
    if (body.state !== 'live') return;
    body.ns.objects--;
    body.state = 'dying';
    if (body.copying === 0) this.free(body);
    else {
      body.ns.pendingFrees++;
      this.dying.add(body);
    }
  }

  private chunkDone(body: ObjectBody): void {
    body.copying--;
    if (body.state === 'dying' && body.copying === 0 && this.dying.delete(body)) {
      body.ns.pendingFrees--;
      this.free(body);
    }
  }

  /** Gives the bytes back (accounting at once, files in the background) and serves waiters. */
  private free(body: ObjectBody): void {
    if (body.state === 'freed' || body.state === 'lost') return;
    body.state = 'freed';
    if (this.dying.delete(body)) body.ns.pendingFrees--;
    const s = body.storage;
    // Only a body whose bytes all landed is reused: an aborted put's buffer may still be a decoder's target.
    if (s?.tier === 'memory' && body.version > 0 && body.size >= POOL_MIN_BYTES && this.pool.maxIdleBytes > 0) {
      body.storage = undefined;
      this.pool.give(Buffer.from(s.buffer.buffer, s.buffer.byteOffset, poolCapacity(body.size)));
    } else if (s?.tier === 'shm' && body.version > 0 && s.segment.recycle !== undefined) {
      // Its pages stay for the next put of the same size (the client wrote every byte before the commit).
      body.storage = undefined;
      this.track(s.segment.recycle());
    } else this.track(body.release());
    // After the pool took the buffer: the waiters this serves see its bytes as idle (inside the budget).
    this.room.uncharge(body.ns, body.tier, body.size);
  }

  /** What a memory-tier object of `size` bytes takes of the budget: its buffer's capacity when pooled. */
  private memoryCost(size: number): number {
    return this.pool.maxIdleBytes > 0 ? poolCapacity(size) : size;
  }

  /** A buffer for a memory-tier object: a pooled one when an idle one of its class is there. */
  private memoryBuffer(size: number): Buffer {
    if (size === 0) return Buffer.alloc(0);
    if (this.pool.maxIdleBytes === 0) return Buffer.allocUnsafe(size);
    const cap = poolCapacity(size);
    const buf = this.pool.take(size) ?? (cap === size ? Buffer.allocUnsafe(size) : Buffer.allocUnsafeSlow(cap));
    return buf.length === size ? buf : buf.subarray(0, size);
  }

  private verifyBody(body: ObjectBody): Promise<boolean> {
    return (body.verify ??= (async () => {
      const ok = await body.computeCrc().then(
        (crc) => crc === body.crc,
        () => false,
      );
      if (ok) {
        body.crcChecked = true;
        return true;
      }
      this.opts.log.warn({ key: body.key, version: body.version }, 'object file failed its CRC32C check after a restart: lost');
      if (this.objects.get(body.key) === body && body.state === 'live') {
        body.ns.objects--;
        body.ns.lost++;
        this.expiring.delete(body);
        body.state = 'lost';
        this.room.uncharge(body.ns, 'disk', body.size);
        this.track(body.release());
      }
      return false;
    })());
  }

  private journalDeletes(bodies: readonly ObjectBody[]): void {
    if (bodies.length > 0) this.journal?.append({ t: 'del', k: bodies.map((b) => [b.key, b.version] as const) });
  }

  /** Rewrites the journal once its lines far outnumber the live records (after the change it holds is applied). */
  private compactJournal(): void {
    const journal = this.journal;
    if (journal === undefined || journal.lines <= 2 * (this.objects.size + this.spaces.size) + JOURNAL_SLACK_LINES) return;
    const state: JournalState = {
      objects: new Map([...this.objects.values()].map((b) => [b.key, journalObject(b)])),
      namespaces: new Map([...this.spaces.values()].map((ns) => [ns.name, ns.record()])),
      maxVersion: this.lastVersion,
      dropped: 0,
    };
    try {
      journal.rewrite(state);
    } catch (error) {
      this.opts.log.warn({ err: error }, 'cannot compact the object journal: it keeps growing until the next try');
    }
  }

  // ---- namespaces, versions, recovery

  private existing(namespace: string): Namespace | undefined {
    return this.spaces.get(namespace);
  }

  private namespace(namespace: string): Namespace {
    let ns = this.spaces.get(namespace);
    if (ns === undefined) this.spaces.set(namespace, (ns = new Namespace(namespace)));
    return ns;
  }

  private info(ns: Namespace): NamespaceInfo {
    return {
      namespace: ns.name,
      hasToken: ns.tokenHash !== undefined,
      maxBytes: ns.maxBytes,
      objects: ns.objects,
      residentBytes: ns.residentBytes,
      memoryBytes: ns.bytes.memory,
      shmBytes: ns.bytes.shm,
      diskBytes: ns.bytes.disk,
      pendingPuts: ns.pendingPuts,
      pendingBytes: ns.pendingBytes,
      pendingFrees: ns.pendingFrees,
      lost: ns.lost,
      openTxns: this.txns.countFor(ns.name),
    };
  }

  /** @throws TC_ERR_CONFLICT */
  private checkCondition(key: string, ifVersion: number | null): void {
    const current = this.objects.get(key)?.version ?? null;
    if (current !== ifVersion)
      throw tcError(
        'TC_ERR_CONFLICT',
        `object '${key}' is at ${current === null ? 'no version (absent)' : `version ${current}`}, the condition wants ${ifVersion === null ? 'it absent' : `version ${ifVersion}`}`,
        { details: { key, version: current ?? undefined } },
      );
  }

  private nextVersion(): number {
    if (this.lastVersion >= Number.MAX_SAFE_INTEGER) throw tcError('TC_ERR_INTERNAL', 'object versions exhausted');
    return ++this.lastVersion;
  }

  private restore(o: JournalObject, lost: boolean, dir: string): void {
    const ns = this.namespace(o.key.slice(0, o.key.indexOf('/')));
    const body = new ObjectBody(o.key, ns, o.size, o.tier);
    body.version = o.version;
    body.crc = o.crc;
    body.createdAt = o.createdAt;
    body.expiresAt = o.expiresAt;
    this.objects.set(o.key, body);
    if (lost) {
      body.state = 'lost';
      ns.lost++;
      return;
    }
    body.state = 'live';
    body.storage = { tier: 'disk', path: join(dir, o.file!) };
    // Its CRC is checked by the first read (lazily: a restart does not read every file).
    body.crcChecked = false;
    this.room.charge(body.ns, body.tier, body.size);
    ns.objects++;
    if (body.expiresAt !== null) this.expiring.add(body);
  }

  private checkOpen(): void {
    if (this.closed) throw tcError('TC_ERR_SHUTTING_DOWN', 'the object store is closed');
  }

  private track(p: Promise<void>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }
}
