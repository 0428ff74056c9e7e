// The Redis connector's keys and manifest. Under the URL's prefix P (a model name), an object K is
//   P/.tc/m/K              its manifest: JSON {v, size, chunkBytes, chunks, version}, written last;
//   P/.tc/c/<version>/<i>  its chunks 0..chunks-1, each chunkBytes long but the last.
// The version (random, 128 bits) is the etag. Chunk keys are never rewritten: a rewrite writes chunks under
// a new version, swaps the manifest, then deletes the old chunks, so a reader sees one version's bytes or
// a missing chunk, never a mix. Everything else under P (SGLang's `keys/`, `files/`) is left alone.

import { randomBytes } from 'node:crypto';
import { tcError } from '../../core/errors.js';

/** The manifest format this connector writes and reads. */
export const MANIFEST_VERSION = 1;

/** What a manifest records. */
export interface Manifest {
  readonly size: number;
  readonly chunkBytes: number;
  readonly chunks: number;
  /** Random hex; the object's etag, and part of its chunk keys. */
  readonly version: string;
}

/** A fresh object version (32 hex digits). */
export const newVersion = (): string => randomBytes(16).toString('hex');

/** Escapes the glob characters of SCAN MATCH (`* ? [ ] \`) in `text`. */
export const escapeGlob = (text: string): string => text.replace(/[*?[\]\\]/g, '\\$&');

/** The keys of one connector prefix. */
export class RedisLayout {
  private readonly manifests: string;
  private readonly chunks: string;

  constructor(prefix: string) {
    const base = prefix === '' ? '' : `${prefix}/`;
    this.manifests = `${base}.tc/m/`;
    this.chunks = `${base}.tc/c/`;
  }

  /** The manifest key of object `key`. */
  manifest(key: string): string {
    return this.manifests + key;
  }

  /** The object key of a manifest key found by SCAN, or undefined for a key outside the manifests. */
  objectKey(manifestKey: string): string | undefined {
    return manifestKey.startsWith(this.manifests) ? manifestKey.slice(this.manifests.length) : undefined;
  }

  /** The SCAN MATCH pattern of the manifests of objects whose key starts with `prefix`. */
  manifestPattern(prefix: string): string {
    return `${escapeGlob(this.manifests + prefix)}*`;
  }

  /** The key of chunk `index` of version `version`. */
  chunk(version: string, index: number): string {
    return `${this.chunks}${version}/${index}`;
  }

  /** Every chunk key of a manifest. */
  chunkKeys(m: Manifest): string[] {
    return Array.from({ length: m.chunks }, (_, i) => this.chunk(m.version, i));
  }
}

/** The manifest of an object of `size` bytes in chunks of `chunkBytes`, under a fresh version. */
export function makeManifest(size: number, chunkBytes: number, version = newVersion()): Manifest {
  return { size, chunkBytes, chunks: Math.ceil(size / chunkBytes), version };
}

/** The stored form of a manifest. */
export function encodeManifest(m: Manifest): string {
  return JSON.stringify({ v: MANIFEST_VERSION, size: m.size, chunkBytes: m.chunkBytes, chunks: m.chunks, version: m.version });
}

const isCount = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/**
 * Parses a stored manifest.
 *
 * @throws TC_ERR_BACKEND (details.reason 'bad_manifest') for a value that is not a manifest of this
 *   format, or whose fields disagree.
 */
export function decodeManifest(text: string, where: string, key: string): Manifest {
  let m: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) m = parsed as Record<string, unknown>;
  } catch {
    m = undefined;
  }
  const ok =
    m !== undefined &&
    m.v === MANIFEST_VERSION &&
    isCount(m.size, 0) &&
    isCount(m.chunkBytes, 1) &&
    isCount(m.chunks, 0) &&
    typeof m.version === 'string' &&
    /^[0-9a-f]{32}$/.test(m.version) &&
    m.chunks === Math.ceil(m.size / m.chunkBytes);
  if (!ok || m === undefined) {
    throw tcError('TC_ERR_BACKEND', `${where}: the manifest of object '${key}' is not a tensorcast manifest (format ${MANIFEST_VERSION})`, {
      details: { connector: where, key, reason: 'bad_manifest' },
    });
  }
  return { size: m.size as number, chunkBytes: m.chunkBytes as number, chunks: m.chunks as number, version: m.version as string };
}
