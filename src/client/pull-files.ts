// pullFiles: downloads the files of a model in a connector (config, tokenizer, ...) into a local directory
// without a daemon, as SGLang's pull_files does for a remote model: list, filter by glob patterns, then read
// each object (etag-checked) into a temporary file that is renamed into place, so a file in the directory
// is always complete.

import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import picomatch from 'picomatch';
import { tcError, wrapIoError } from '../core/errors.js';
import type { Connector, ObjectInfo } from '../connectors/connector.js';
import type { ConnectorOptions } from '../connectors/connector-options.js';
import { createConnector } from '../connectors/create-connector.js';
import { writeFully } from '../format/file-io.js';

/** Weights, left out unless an `allow` pattern is given (SGLang's pull_files ignores the same by default). */
export const DEFAULT_IGNORE: readonly string[] = ['*.safetensors', '*.bin', '*.pt', '*.pth'];

/** Bytes read per ranged read while copying one object. */
const PIECE_BYTES = 16 * 1024 * 1024;

/** Options of {@link pullFiles}. */
export interface PullFilesOptions {
  /** The directory to write into (created when missing). */
  readonly dest: string;
  /**
   * Glob patterns (picomatch syntax) a file must match, one of them at least; default: every file. A pattern
   * without '/' matches the file's base name (`*.json` also matches `tokenizer/vocab.json`), a pattern
   * with '/' the whole key (`tokenizer/**`).
   */
  readonly allow?: readonly string[];
  /**
   * Glob patterns that drop a file even when allowed. Unless `allow` is given, {@link DEFAULT_IGNORE}
   * (the weight files) is dropped as well, so the default pulls the config and tokenizer files only.
   */
  readonly ignore?: readonly string[];
  /** Hears about bytes written, for progress. */
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
  readonly signal?: AbortSignal;
  /** Passed to {@link createConnector} (credentials stay in the URL or the standard chains). */
  readonly connector?: ConnectorOptions;
}

/** One file pulled. */
export interface PulledFile {
  /** The object key, which is also the path under `dest`. */
  readonly name: string;
  readonly bytes: number;
}

/** What {@link pullFiles} did. */
export interface PullFilesInfo {
  /** The connector URL, credentials redacted. */
  readonly url: string;
  readonly dest: string;
  readonly files: readonly PulledFile[];
  readonly bytes: number;
}

/**
 * A filter of object keys by allow and ignore patterns (see {@link PullFilesOptions}).
 *
 * @throws TC_ERR_INVALID_ARGUMENT for an empty pattern.
 * @example fileFilter({})('config.json') // true; ('model.safetensors') // false
 */
export function fileFilter(options: Pick<PullFilesOptions, 'allow' | 'ignore'>): (key: string) => boolean {
  const compile = (patterns: readonly string[], what: string): ((key: string) => boolean) => {
    for (const p of patterns) {
      if (typeof p !== 'string' || p === '') throw tcError('TC_ERR_INVALID_ARGUMENT', `${what}: a glob pattern must be a non-empty string`);
    }
    const matchers = patterns.map((p) => picomatch(p, { dot: true, basename: !p.includes('/') }));
    return (key) => matchers.some((m) => m(key));
  };
  const allowed = options.allow === undefined ? () => true : compile(options.allow, 'allow');
  const ignored = compile([...(options.ignore ?? []), ...(options.allow === undefined ? DEFAULT_IGNORE : [])], 'ignore');
  return (key) => allowed(key) && !ignored(key);
}

/**
 * Downloads the files of the connector at `url` that pass the patterns into `options.dest`, each one
 * atomically (a temporary file beside it, renamed when complete; removed on failure). Subfolders of keys
 * become subfolders of `dest`. Files already there are replaced.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a bad URL or pattern; TC_ERR_NOT_FOUND when no file passes the
 *   patterns; TC_ERR_SOURCE_CHANGED when an object changes while it is read; TC_ERR_AUTH, TC_ERR_BACKEND
 *   from the connector; TC_ERR_IO when `dest` cannot be written.
 * @example
 * const { files } = await pullFiles('s3://models/llama-3-8b', { dest: '/tmp/llama', allow: ['*.json', 'tokenizer.model'] });
 */
export async function pullFiles(url: string, options: PullFilesOptions): Promise<PullFilesInfo> {
  const keep = fileFilter(options);
  const dest = resolve(options.dest);
  const connector = await createConnector(url, options.connector ?? {});
  try {
    const wanted = (await connector.list('')).filter((o) => keep(o.key));
    if (wanted.length === 0) {
      throw tcError('TC_ERR_NOT_FOUND', `${connector.displayUrl}: no file matches the patterns`, {
        details: { connector: connector.displayUrl, allow: (options.allow ?? ['*']).join(' '), ignore: (options.ignore ?? []).join(' ') },
      });
    }
    const total = wanted.reduce((n, o) => n + o.size, 0);
    let done = 0;
    const onBytes = (n: number): void => {
      done += n;
      options.onProgress?.(done, total);
    };
    options.onProgress?.(0, total);
    for (const object of wanted) await pullOne(connector, object, targetPath(dest, object.key), onBytes, options.signal);
    return { url: connector.displayUrl, dest, files: wanted.map((o) => ({ name: o.key, bytes: o.size })), bytes: total };
  } finally {
    await connector.close();
  }
}

/** Where object `key` lands under `dest`; a key that would land outside it is refused. */
function targetPath(dest: string, key: string): string {
  const path = resolve(dest, ...key.split('/'));
  const rel = relative(dest, path);
  if (rel === '' || rel.startsWith('..') || rel.split(sep).includes('..')) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `object key ${JSON.stringify(key)} does not name a file under ${dest}`, { details: { key } });
  }
  return path;
}

/** Copies one object into `path` through a temporary file beside it. */
async function pullOne(
  connector: Connector,
  object: ObjectInfo,
  path: string,
  onBytes: (n: number) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true }).catch((error: unknown) => {
    throw wrapIoError(error, 'cannot create folder', dir);
  });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx', 0o644).catch((error: unknown) => {
      throw wrapIoError(error, 'cannot create file', temp);
    });
    const piece = Buffer.allocUnsafe(Math.min(PIECE_BYTES, object.size));
    for (let offset = 0; offset < object.size; offset += piece.length) {
      const bytes = piece.subarray(0, Math.min(piece.length, object.size - offset));
      await connector.readInto(object.key, offset, bytes, { etag: object.etag, ...(signal === undefined ? {} : { signal }) });
      await writeFully(handle, bytes, offset).catch((error: unknown) => {
        throw wrapIoError(error, 'cannot write file', path);
      });
      onBytes(bytes.length);
    }
    const h = handle;
    handle = undefined;
    await h
      .sync()
      .then(() => h.close())
      .catch(async (error: unknown) => {
        await h.close().catch(() => undefined);
        throw wrapIoError(error, 'cannot finish file', path);
      });
    await rename(temp, path).catch((error: unknown) => {
      throw wrapIoError(error, 'cannot move file into place', path);
    });
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}
