// Positional file writes that finish: Node may write fewer bytes than asked, and one call must stay below 2^31.

import type { FileHandle } from 'node:fs/promises';

/** Largest single write. */
const MAX_WRITE_BYTES = 1 << 30;

/** Writes all of `bytes` at `position`; resolves with the byte count. */
export async function writeFully(fh: FileHandle, bytes: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.length - done, MAX_WRITE_BYTES), position + done);
    done += bytesWritten;
  }
  return done;
}
