// A put whose room is reserved and whose bytes are landing (PendingPut): where received bytes go, and the
// running CRC of in-order writes (disk puts then need no second pass over the file).

import type { FileHandle } from 'node:fs/promises';
import { crc32c } from '../../bytes/crc32c.js';
import { tcError, wrapIoError, type TensorcastError } from '../../core/errors.js';
import type { ObjectBody } from './object-body.js';
import type { ObjectTier, PendingPut } from './object-store-api.js';

/** What a pending put asks of its store. */
export interface PutHost {
  finish(put: ObjectPut, crc: number | undefined): Promise<{ version: number }>;
  abort(put: ObjectPut, error: TensorcastError): void;
}

/** `landing`: bytes arriving; `finishing`: CRC and commit under way; `parked`: landed, waiting for its txn. */
export type PutState = 'landing' | 'finishing' | 'parked' | 'committed' | 'aborted';

/** The request facts a put keeps until it commits. */
export interface PutTerms {
  readonly crc: number | undefined;
  readonly txn: string | undefined;
  readonly ifVersion: number | null | undefined;
  readonly ttlMs: number | undefined;
  readonly deadline: number;
}

/** A pending put of the object store. */
export class ObjectPut implements PendingPut {
  state: PutState = 'landing';
  /** Why it was aborted (thrown by later calls). */
  abortError: TensorcastError | undefined;
  /** Write handle of a file-backed put (disk tier, unmapped shm). */
  file: FileHandle | undefined;
  private readonly writes = new Set<Promise<void>>();
  /** CRC of bytes [0, crcNext) written in order through {@link write}; undefined once out of order. */
  private running: { crc: number; next: number } | undefined = { crc: 0, next: 0 };

  constructor(
    readonly id: string,
    readonly body: ObjectBody,
    readonly terms: PutTerms,
    private readonly host: PutHost,
  ) {}

  get key(): string {
    return this.body.key;
  }

  get namespace(): string {
    return this.body.ns.name;
  }

  get size(): number {
    return this.body.size;
  }

  get tier(): ObjectTier {
    return this.body.tier;
  }

  get path(): string | undefined {
    return this.body.tier === 'shm' ? this.body.path : undefined;
  }

  target(offset: number, length: number): Uint8Array | undefined {
    this.checkWritable(offset, length);
    const view = this.body.view(offset, length);
    if (view !== undefined) this.running = undefined;
    return view;
  }

  write(offset: number, bytes: Uint8Array): Promise<void> {
    try {
      this.checkWritable(offset, bytes.length);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const r = this.running;
    if (r !== undefined) {
      if (offset === r.next) {
        r.crc = crc32c(bytes, r.crc);
        r.next += bytes.length;
      } else this.running = undefined;
    }
    const view = this.body.view(offset, bytes.length);
    if (view !== undefined) {
      view.set(bytes);
      return Promise.resolve();
    }
    const file = this.file;
    if (file === undefined) return Promise.reject(tcError('TC_ERR_INTERNAL', `put of '${this.key}' has no file to write`));
    const op = (async () => {
      for (let at = 0; at < bytes.length;) {
        const { bytesWritten } = await file.write(bytes, at, Math.min(bytes.length - at, 1 << 30), offset + at);
        at += bytesWritten;
      }
    })().catch((error: unknown) => {
      const e = wrapIoError(error, `cannot write object '${this.key}'`, this.body.path ?? '');
      this.host.abort(this, e);
      throw e;
    });
    this.writes.add(op);
    void op.then(
      () => this.writes.delete(op),
      () => this.writes.delete(op),
    );
    return op;
  }

  finish(crc?: number): Promise<{ version: number }> {
    return this.host.finish(this, crc);
  }

  abort(): void {
    this.host.abort(this, tcError('TC_ERR_NOT_FOUND', `put of '${this.key}' was aborted`));
  }

  /** Waits for file writes under way (they may fail: the put is then aborted). */
  async settle(): Promise<void> {
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }

  /** CRC of the in-order writes when they covered the whole object. */
  get streamedCrc(): number | undefined {
    return this.running !== undefined && this.running.next === this.size && this.size > 0 ? this.running.crc : undefined;
  }

  private checkWritable(offset: number, length: number): void {
    if (this.state !== 'landing')
      throw this.abortError ?? tcError('TC_ERR_INVALID_ARGUMENT', `put of '${this.key}' takes no more bytes (${this.state})`);
    if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= this.size))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `bytes [${offset}, +${length}) are outside object '${this.key}' of ${this.size} bytes`);
  }
}
