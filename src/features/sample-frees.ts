// Local bookkeeping of frees: tombstones (a released ref fails at once in this process, whatever the backend
// still holds), pending frees (physical deletes that failed, retried by gc()/drain()) and retained refs
// (retainOnRelease: kept until drain() or a forced release). One instance per FeatureStore.

import type { TensorcastError } from '../core/errors.js';
import type { BackendVersion } from './feature-backend.js';
import type { SampleRef } from './sample-ref.js';

/**
 * A physical free still to do: a tensor/packed object (only while it still has `version`, when given), or a
 * manifest (only while it still names `generation` with `fences`): a late release of an old ref never
 * deletes a sample put again since.
 */
export type PendingFree =
  | {
      readonly kind: 'object';
      readonly key: string;
      readonly version: BackendVersion | undefined;
      readonly tomb: string | undefined;
      lastError: TensorcastError | undefined;
    }
  | {
      readonly kind: 'manifest';
      readonly key: string;
      readonly sampleId: string;
      readonly generation: number;
      readonly fences: readonly BackendVersion[] | undefined;
      readonly tomb: string | undefined;
      lastError: TensorcastError | undefined;
    };

/** The identity of one generation of a sample as a ref names it (fences included: a re-put at the same generation is another sample). */
export function refIdentity(ref: SampleRef): string {
  return `${ref.sampleId}\u0000${ref.generation}\u0000${(ref.fences ?? []).join('\u0000')}`;
}

/** Tombstones, pending frees and retained refs of one store. */
export class SampleFrees {
  /** identity -> keys whose physical free is not done yet */
  private readonly tombs = new Map<string, Set<string>>();
  private readonly pending = new Map<string, PendingFree>();
  private readonly retainedRefs = new Map<string, SampleRef>();

  /** Marks a ref released; `keys` are the frees that must succeed before the tombstone may go. */
  tombstone(ref: SampleRef, keys: readonly string[]): string {
    const id = refIdentity(ref);
    this.tombs.set(id, new Set(keys));
    this.retainedRefs.delete(id);
    return id;
  }

  isTombstoned(ref: SampleRef): boolean {
    return this.tombs.has(refIdentity(ref));
  }

  /** A free succeeded: forget it, and the tombstone once all of its frees are done. */
  freed(free: { key: string; tomb: string | undefined }): void {
    this.pending.delete(free.key);
    if (free.tomb === undefined) return;
    const keys = this.tombs.get(free.tomb);
    keys?.delete(free.key);
    if (keys?.size === 0) this.tombs.delete(free.tomb);
  }

  /** A free failed: keep it for gc(). */
  failed(free: PendingFree, error: TensorcastError): void {
    free.lastError = error;
    this.pending.set(free.key, free);
  }

  pendingFrees(): PendingFree[] {
    return [...this.pending.values()];
  }

  retain(ref: SampleRef): void {
    this.retainedRefs.set(refIdentity(ref), ref);
  }

  unretain(ref: SampleRef): void {
    this.retainedRefs.delete(refIdentity(ref));
  }

  /** Retained refs of a sample (a re-put retires them). */
  retainedOf(sampleId: string): SampleRef[] {
    return [...this.retainedRefs.values()].filter((r) => r.sampleId === sampleId);
  }

  retained(): SampleRef[] {
    return [...this.retainedRefs.values()];
  }

  get counts(): { tombstones: number; pendingFrees: number; retained: number } {
    return { tombstones: this.tombs.size, pendingFrees: this.pending.size, retained: this.retainedRefs.size };
  }
}
