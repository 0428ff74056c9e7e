// A read of one object version (ReadLease): pinned by version, fenced by the object's state. It never holds
// a delete back: it only counts the chunk it is copying, and a deleted or replaced object fails its next chunk.

import { open, type FileHandle } from 'node:fs/promises';
import { tcError, wrapIoError } from '../../core/errors.js';
import { checkSegmentHolds, type ObjectBody } from './object-body.js';
import type { ObjectTier, ReadLease } from './object-store-api.js';

/** What a lease asks of its store. */
export interface LeaseHost {
  /** A chunk of `body` was sent (the copying count drops; a pending free may run). */
  chunkDone(body: ObjectBody): void;
  /** The lease ended. */
  ended(lease: ObjectReadLease): void;
  /** First read of a recovered disk object: true when its CRC matches (else it is marked lost). */
  verify(body: ObjectBody): Promise<boolean>;
}

/** A read lease of the object store. */
export class ObjectReadLease implements ReadLease {
  private inFlight = 0;
  private ended = false;
  private expired = false;
  private file: Promise<FileHandle> | undefined;

  constructor(
    readonly body: ObjectBody,
    /** Unix ms: past it the lease expires (the sweep ends it). */
    readonly deadline: number,
    private readonly host: LeaseHost,
  ) {}

  get key(): string {
    return this.body.key;
  }
  get size(): number {
    return this.body.size;
  }
  get version(): number {
    return this.body.version;
  }
  get crc(): number {
    return this.body.crc;
  }
  get tier(): ObjectTier {
    return this.body.tier;
  }
  get path(): string | undefined {
    return this.body.tier === 'shm' ? this.body.path : undefined;
  }

  async chunk(offset: number, length: number, scratch?: Uint8Array): Promise<Uint8Array> {
    this.check();
    if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= this.size))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `bytes [${offset}, +${length}) are outside object '${this.key}' of ${this.size} bytes`);
    if (!this.body.crcChecked && !(await this.host.verify(this.body)))
      throw tcError('TC_ERR_OBJECT_LOST', `object '${this.key}' failed its CRC32C check after a restart: its bytes are lost`);
    this.check();
    // A segment file someone truncated: fail the read rather than fault on its mapping.
    if (this.body.tier === 'shm' && this.body.path !== undefined && length > 0 && this.body.view(offset, length) !== undefined) {
      await checkSegmentHolds(this.body.path, offset + length);
      this.check();
    }
    const view = this.body.view(offset, length);
    this.inFlight++;
    this.body.copying++;
    if (view !== undefined) return view;
    try {
      const into = scratch !== undefined && scratch.length >= length ? scratch.subarray(0, length) : Buffer.allocUnsafe(length);
      await this.readFile(offset, into);
      this.check();
      return into;
    } catch (error) {
      this.done();
      // A fence or the deadline explains the failure better than the I/O error it caused.
      this.check();
      throw error;
    }
  }

  done(): void {
    if (this.inFlight === 0) return;
    this.inFlight--;
    this.host.chunkDone(this.body);
  }

  release(): void {
    if (this.ended) return;
    this.ended = true;
    this.drop();
  }

  /** The deadline passed: chunks in flight no longer hold the bytes; later chunks fail with TC_ERR_TIMEOUT. */
  expire(): void {
    if (this.ended) return;
    this.expired = true;
    this.ended = true;
    this.drop();
  }

  private drop(): void {
    while (this.inFlight > 0) this.done();
    const file = this.file;
    this.file = undefined;
    if (file !== undefined) void file.then((f) => f.close()).catch(() => undefined);
    this.host.ended(this);
  }

  private check(): void {
    if (this.expired) throw tcError('TC_ERR_TIMEOUT', `read of '${this.key}' passed its deadline`);
    if (this.ended) throw tcError('TC_ERR_INVALID_ARGUMENT', `read of '${this.key}' was released`);
    if (this.body.fenced)
      throw tcError('TC_ERR_NOT_FOUND', `object '${this.key}' (version ${this.version}) was deleted or replaced during the read`, {
        details: { key: this.key, version: this.version },
      });
  }

  private async readFile(offset: number, into: Uint8Array): Promise<void> {
    const path = this.body.path ?? '';
    try {
      this.file ??= open(path, 'r');
      const file = await this.file;
      for (let at = 0; at < into.length;) {
        const { bytesRead } = await file.read(into, at, Math.min(into.length - at, 1 << 30), offset + at);
        if (bytesRead === 0) throw tcError('TC_ERR_IO', `object file ${path} ends before byte ${offset + at}`);
        at += bytesRead;
      }
    } catch (error) {
      throw wrapIoError(error, `cannot read object '${this.key}'`, path);
    }
  }
}
