// The daemon's session KV cache (docs/sessions.md "On the daemon"): opened at start when --sessions-cold is
// set, with the daemon's id as the cache's owner (its leases and hot marks name this daemon), handed to the
// control routes and the data plane, shut down on stop. Its counters feed /metrics.

import type { Logger } from '../../core/logger.js';
import { tcError } from '../../core/errors.js';
import type { DaemonMetrics } from '../../metrics/metrics.js';
import type { SessionCacheEngine } from '../../sessions/session-cache-api.js';
import type { SessionMetaStore } from '../../sessions/meta/session-meta-store.js';
import type { DaemonConfig } from '../config.js';

/** The daemon's session cache and the metadata store it runs on. */
export interface SessionService {
  readonly engine: SessionCacheEngine;
  readonly meta: SessionMetaStore;
  /** Shuts the cache down and closes the metadata store and the cold connector (idempotent). */
  close(): Promise<void>;
}

/**
 * Opens the session cache the config asks for, or undefined when sessions are not enabled.
 *
 * @throws TC_ERR_CONFIG when the cold tier or the metadata store cannot be opened; TC_ERR_BACKEND when its
 *   server cannot be reached
 */
export function openSessionService(
  config: DaemonConfig,
  daemonId: string,
  log: Logger,
  metrics: DaemonMetrics,
): Promise<SessionService | undefined> {
  if (config.sessionsCold === undefined) return Promise.resolve(undefined);
  void daemonId;
  void log;
  void metrics;
  // Replaced by createSessionCache once the cache lands (h/ss-cache).
  return Promise.reject(tcError('TC_ERR_INTERNAL', 'the session cache is not built yet'));
}
