// Watching the sources of fetches in flight: a daemon that stops heartbeating (hung, stopped, cut off)
// while this daemon waits on it never fails the fetch by itself; the watch aborts such fetches once the
// catalog shows the source silent past the daemon TTL, so the load reselects instead of waiting out its
// deadline.

import type { Catalog } from '../catalog/catalog.js';
import { tcError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/**
 * Runs work against a source, aborted (with TC_ERR_UNAVAILABLE, reason `source_failed`) when the catalog
 * shows the source's heartbeat older than the daemon TTL. A draining source is not aborted (it finishes
 * the fetches in flight), nor is any fetch while the catalog does not answer.
 *
 * @example await watch.run(daemonId, (signal) => conn.load(req, dest, signal));
 */
export class SourceWatch {
  private readonly watched = new Map<string, Set<AbortController>>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    private readonly catalog: Catalog,
    private readonly daemonTtlMs: number,
    private readonly log: Logger,
  ) {}

  /** Checks the catalog this often while something is watched (ms). */
  private get intervalMs(): number {
    return Math.max(100, Math.floor(this.daemonTtlMs / 3));
  }

  /** Runs `work` with a signal that aborts when `daemonId` is seen dead. */
  async run<T>(daemonId: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    let set = this.watched.get(daemonId);
    if (set === undefined) this.watched.set(daemonId, (set = new Set()));
    set.add(ac);
    this.timer ??= setInterval(() => void this.check(), this.intervalMs).unref();
    try {
      return await work(ac.signal);
    } finally {
      set.delete(ac);
      if (set.size === 0 && this.watched.get(daemonId) === set) this.watched.delete(daemonId);
      if (this.watched.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const daemons = await this.catalog.listDaemons().catch(() => undefined);
      if (daemons === undefined) return;
      const now = Date.now();
      for (const [daemonId, set] of this.watched) {
        const d = daemons.find((x) => x.daemonId === daemonId);
        if (d === undefined || now - d.heartbeatAt <= this.daemonTtlMs) continue;
        this.log.warn(
          { source: daemonId, silentMs: now - d.heartbeatAt, fetches: set.size },
          'source stopped heartbeating: aborting its fetches',
        );
        const error = tcError('TC_ERR_UNAVAILABLE', `source ${daemonId} stopped heartbeating (silent for ${now - d.heartbeatAt} ms)`, {
          details: { reason: 'source_failed', daemonId },
        });
        for (const ac of set) ac.abort(error);
      }
    } finally {
      this.checking = false;
    }
  }
}

/**
 * Resolves as `work` does, or rejects with the signal's reason when it aborts first; a value `work` yields
 * after that is handed to `discard` (a connection to close).
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined, discard?: (value: T) => void): Promise<T> {
  if (signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const onAbort = (): void => {
      done = true;
      reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (done) discard?.(value);
        else resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!done) reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
