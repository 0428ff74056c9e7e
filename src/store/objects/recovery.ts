// What a restart brings back from the spill folder: disk objects whose file is there with its size (their
// CRC is checked by their first read), memory and shm objects reported lost, and nothing else: files no
// committed object names (puts cut short by the crash) are removed.

import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../core/logger.js';
import { JOURNAL_FILE, type JournalObject, type JournalState } from './journal.js';

/** A journaled object and what the restart found of it. */
export interface RecoveredObject {
  readonly object: JournalObject;
  /** True when its bytes are gone (memory/shm tier, or its file missing or the wrong size). */
  readonly lost: boolean;
}

/**
 * Checks each journaled object against the folder and removes files no object names.
 *
 * @example const recovered = await recoverObjects(dir, state, log);
 */
export async function recoverObjects(dir: string, state: JournalState, log: Logger): Promise<RecoveredObject[]> {
  const out: RecoveredObject[] = [];
  const keep = new Set<string>([JOURNAL_FILE]);
  for (const object of state.objects.values()) {
    if (object.tier !== 'disk' || object.file === undefined) {
      out.push({ object, lost: true });
      continue;
    }
    const path = join(dir, object.file);
    const size = await stat(path).then(
      (s) => (s.isFile() ? s.size : -1),
      () => -1,
    );
    if (size !== object.size) {
      log.warn({ key: object.key, path, size, expected: object.size }, 'object file missing or of the wrong size after a restart: lost');
      out.push({ object, lost: true });
      continue;
    }
    keep.add(object.file);
    out.push({ object, lost: false });
  }
  let removed = 0;
  for (const name of await readdir(dir)) {
    if (keep.has(name)) continue;
    await unlink(join(dir, name)).then(
      () => removed++,
      () => undefined,
    );
  }
  if (removed > 0) log.info({ dir, removed }, 'removed object files of puts a restart cut short');
  return out;
}
