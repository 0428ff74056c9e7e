// Copies objects of a connector into files of a local directory with concurrent ranged reads: every object
// is cut into parts, a few parts of any object are in flight at once (each read pinned to the etag the
// listing saw, so an object rewritten meanwhile fails with TC_ERR_SOURCE_CHANGED), and each part is
// written at its place in the file. Used by the daemon to pull a model into its staging folder.

import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { tcError, wrapIoError } from '../core/errors.js';
import { writeFully } from '../format/file-io.js';
import type { Connector, ObjectInfo } from './connector.js';

/** Options of {@link downloadObjects}. */
export interface DownloadOptions {
  /** Bytes of one ranged read (default 8 MiB). */
  readonly partBytes?: number;
  /** Parts in flight (default 8); each holds a buffer of partBytes. */
  readonly concurrency?: number;
  /** Hears the bytes written so far and the total. */
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
  readonly signal?: AbortSignal;
}

interface Part {
  readonly object: ObjectInfo;
  readonly offset: number;
  readonly length: number;
}

/**
 * Writes each object to `dir/<key>` (keys must be plain names: no '/'). Files are created with mode 0600.
 * On failure some files may be partly written: the caller removes `dir`.
 *
 * @throws the connector's errors (TC_ERR_NOT_FOUND, TC_ERR_SOURCE_CHANGED, TC_ERR_SHORT_READ, TC_ERR_AUTH,
 *   TC_ERR_BACKEND); TC_ERR_NO_SPACE, TC_ERR_IO writing; TC_ERR_ABORTED
 * @example await downloadObjects(connector, model.objects, stagingDir, { onProgress: (d, t) => log(d / t) });
 */
export async function downloadObjects(
  connector: Connector,
  objects: readonly ObjectInfo[],
  dir: string,
  options: DownloadOptions = {},
): Promise<void> {
  const partBytes = Math.max(1, options.partBytes ?? 8 << 20);
  const total = objects.reduce((n, o) => n + o.size, 0);
  const parts: Part[] = [];
  for (const object of objects) {
    if (object.key.includes('/')) throw tcError('TC_ERR_INVALID_ARGUMENT', `object '${object.key}' is not a plain file name`);
    for (let offset = 0; offset < object.size; offset += partBytes)
      parts.push({ object, offset, length: Math.min(partBytes, object.size - offset) });
  }
  const bufferBytes = Math.max(
    1,
    Math.min(
      partBytes,
      objects.reduce((n, o) => Math.max(n, o.size), 0),
    ),
  );
  const handles = new Map<string, Promise<FileHandle>>();
  const handle = (key: string): Promise<FileHandle> => {
    let h = handles.get(key);
    if (h === undefined) {
      const path = join(dir, key);
      h = open(path, 'w', 0o600).catch((error: unknown) => {
        throw wrapIoError(error, 'cannot create file', path);
      });
      handles.set(key, h);
    }
    return h;
  };
  let next = 0;
  let done = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    const buffer = Buffer.allocUnsafeSlow(bufferBytes);
    while (failure === undefined && next < parts.length) {
      const part = parts[next++]!;
      try {
        if (options.signal?.aborted === true) throw tcError('TC_ERR_ABORTED', `${connector.displayUrl}: download aborted`);
        const bytes = buffer.subarray(0, part.length);
        await connector.readInto(part.object.key, part.offset, bytes, {
          etag: part.object.etag,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        });
        const fh = await handle(part.object.key);
        await writeFully(fh, bytes, part.offset).catch((error: unknown) => {
          throw wrapIoError(error, 'cannot write file', join(dir, part.object.key));
        });
        done += part.length;
        options.onProgress?.(done, total);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  try {
    // Empty objects are files too.
    for (const o of objects) if (o.size === 0) await handle(o.key);
    await Promise.all(Array.from({ length: Math.min(Math.max(1, options.concurrency ?? 8), Math.max(1, parts.length)) }, worker));
  } finally {
    await Promise.all([...handles.values()].map(async (h) => (await h.catch(() => undefined))?.close()));
  }
  if (failure !== undefined) throw failure instanceof Error ? failure : tcError('TC_ERR_INTERNAL', 'download failed', { cause: failure });
  options.onProgress?.(done, total);
}
