// Namespaces of the object store: the first segment of a key owns an optional access token (kept as its
// SHA-256, compared in constant time) and an optional resident-bytes limit, plus the byte counters that
// limit and the stats read.

import { createHash, timingSafeEqual } from 'node:crypto';
import { checkNamespace } from '../../core/object-keys.js';
import { tcError } from '../../core/errors.js';
import type { NamespaceSettings, ObjectTier } from './object-store-api.js';

/** Longest store token accepted (characters). */
const MAX_TOKEN_LENGTH = 4096;

/** What the journal keeps of a namespace: the token's hash, never the token. */
export interface NamespaceRecord {
  readonly ns: string;
  readonly tokenHash: string | null;
  readonly maxBytes: number | null;
}

/** A namespace: settings and counters (bytes not yet freed, by tier). */
export class Namespace {
  tokenHash: Buffer | undefined;
  maxBytes: number | null = null;
  /** Bytes not yet freed, by tier: committed, pending and deleted-but-still-read. */
  readonly bytes: Record<ObjectTier, number> = { memory: 0, shm: 0, disk: 0 };
  objects = 0;
  lost = 0;
  pendingPuts = 0;
  pendingBytes = 0;
  pendingFrees = 0;

  constructor(readonly name: string) {}

  /** Committed + pending + not yet freed bytes: what maxBytes limits. */
  get residentBytes(): number {
    return this.bytes.memory + this.bytes.shm + this.bytes.disk;
  }

  /** True when `bytes` more fit under maxBytes. */
  hasRoom(bytes: number): boolean {
    return bytes === 0 || this.maxBytes === null || this.residentBytes + bytes <= this.maxBytes;
  }

  /**
   * Checks the store token of an operation on this namespace.
   *
   * @throws TC_ERR_AUTH
   */
  authorize(storeToken: string | undefined): void {
    if (!this.admits(storeToken))
      throw tcError(
        'TC_ERR_AUTH',
        storeToken === undefined
          ? `object namespace '${this.name}' requires its store token`
          : `wrong store token for object namespace '${this.name}'`,
        { details: { namespace: this.name } },
      );
  }

  /** True when the namespace has no token or `storeToken` is it (constant time). */
  admits(storeToken: string | undefined): boolean {
    if (this.tokenHash === undefined) return true;
    if (storeToken === undefined) return false;
    return timingSafeEqual(hashToken(storeToken), this.tokenHash);
  }

  /** Applies settings already checked by {@link checkSettings}. */
  apply(settings: NamespaceSettings): void {
    if (settings.token !== undefined) this.tokenHash = settings.token === null ? undefined : hashToken(settings.token);
    if (settings.maxBytes !== undefined) this.maxBytes = settings.maxBytes;
  }

  /** The journal's form. */
  record(): NamespaceRecord {
    return { ns: this.name, tokenHash: this.tokenHash?.toString('hex') ?? null, maxBytes: this.maxBytes };
  }

  /** Restores a journaled namespace. */
  static fromRecord(r: NamespaceRecord): Namespace {
    const ns = new Namespace(checkNamespace(r.ns));
    if (r.tokenHash !== null) ns.tokenHash = Buffer.from(r.tokenHash, 'hex');
    ns.maxBytes = r.maxBytes;
    return ns;
  }
}

/**
 * Checks namespace settings from a request.
 *
 * @throws TC_ERR_INVALID_ARGUMENT
 */
export function checkSettings(settings: NamespaceSettings): NamespaceSettings {
  const { token, maxBytes } = settings;
  if (token !== undefined && token !== null && (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `a namespace token must be a string of 1-${MAX_TOKEN_LENGTH} characters (null removes it)`);
  if (maxBytes !== undefined && maxBytes !== null && !(Number.isSafeInteger(maxBytes) && maxBytes >= 0))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `a namespace maxBytes must be a non-negative integer or null, not ${String(maxBytes)}`);
  return settings;
}

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
