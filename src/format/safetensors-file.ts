// Opens a safetensors file and validates it from its first 8 + N bytes and its size: two reads, no data scan.

import { open } from 'node:fs/promises';
import { tcError, wrapIoError } from '../core/errors.js';
import { parseSafetensorsHeader, readHeaderLength, type SafetensorsHeader } from './safetensors-header.js';

/** A validated safetensors file on disk. */
export interface SafetensorsFileInfo {
  readonly path: string;
  readonly fileByteLength: number;
  readonly header: SafetensorsHeader;
}

/**
 * Reads and validates the header of the safetensors file at `path`.
 *
 * @throws TC_ERR_NOT_FOUND when the file is missing; TC_ERR_FORMAT_* when it is malformed; TC_ERR_IO otherwise.
 * @example const info = await readSafetensorsFile('model.safetensors'); console.log(info.header.tensors.length);
 */
export async function readSafetensorsFile(path: string, displayName = path): Promise<SafetensorsFileInfo> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw wrapIoError(error, 'cannot open safetensors file', path);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw tcError('TC_ERR_INVALID_ARGUMENT', `${displayName}: not a regular file`, { details: { path } });
    const fileByteLength = stat.size;
    const prefix = Buffer.alloc(8);
    const got = fileByteLength >= 8 ? (await handle.read(prefix, 0, 8, 0)).bytesRead : 0;
    const headerByteLength = readHeaderLength(prefix.subarray(0, got), fileByteLength, displayName);
    const bytes = Buffer.allocUnsafe(8 + headerByteLength);
    prefix.copy(bytes, 0, 0, 8);
    let done = 8;
    while (done < bytes.length) {
      const { bytesRead } = await handle.read(bytes, done, bytes.length - done, done);
      if (bytesRead === 0) {
        throw tcError('TC_ERR_SHORT_READ', `${displayName}: file shrank while its header was read`, { details: { path } });
      }
      done += bytesRead;
    }
    return { path, fileByteLength, header: parseSafetensorsHeader(bytes, fileByteLength, displayName) };
  } catch (error) {
    throw wrapIoError(error, 'cannot read safetensors file', path);
  } finally {
    await handle.close();
  }
}
