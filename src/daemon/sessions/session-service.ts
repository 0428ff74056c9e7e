// The daemon's session KV cache (docs/sessions.md "On the daemon"): opened at start when --sessions-cold is
// set, with the daemon's id as the cache's owner (its leases and hot marks name this daemon), handed to the
// control routes and the data plane, shut down on stop. Its counters feed /metrics.

import { createConnector } from '../../connectors/create-connector.js';
import type { Connector } from '../../connectors/connector.js';
import { tcError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { DaemonMetrics } from '../../metrics/metrics.js';
import { openSessionMetaStore } from '../../sessions/meta/open-session-meta-store.js';
import type { SessionMetaStore } from '../../sessions/meta/session-meta-store.js';
import type { SessionCacheEngine } from '../../sessions/session-cache-api.js';
import { createSessionCache } from '../../sessions/session-cache.js';
import type { SwapEvent } from '../../sessions/swap.js';
import type { DaemonConfig } from '../config.js';
import { sessionInventory } from './session-inventory.js';

/** The daemon's session cache and the metadata store it runs on. */
export interface SessionService {
  readonly engine: SessionCacheEngine;
  readonly meta: SessionMetaStore;
  /** Shuts the cache down and closes the metadata store and the cold connector (idempotent). */
  close(): Promise<void>;
}

/** Builds the cache on an opened cold tier and metadata store (the session cache's factory). */
export type SessionCacheFactory = (options: {
  readonly cold: Connector;
  readonly meta: SessionMetaStore;
  readonly owner: string;
  readonly budgetBytes: number;
  readonly leaseTtlMs: number;
  readonly onSwap: (event: SwapEvent) => void;
}) => Promise<SessionCacheEngine>;

/**
 * Opens the session cache the config asks for, or undefined when sessions are not enabled. What it opened
 * is closed again when a later step fails.
 *
 * @throws TC_ERR_CONFIG when the cold tier or the metadata store URL is unusable; TC_ERR_BACKEND when its
 *   server cannot be reached
 */
export async function openSessionService(
  config: DaemonConfig,
  daemonId: string,
  log: Logger,
  metrics: DaemonMetrics,
  factory: SessionCacheFactory = defaultFactory,
): Promise<SessionService | undefined> {
  if (config.sessionsCold === undefined) return undefined;
  const undo: (() => Promise<void>)[] = [];
  try {
    const cold = await createConnector(config.sessionsCold, { log }).catch((e: unknown) => {
      throw asConfigError(e, '--sessions-cold');
    });
    undo.push(() => cold.close());
    const meta = await openSessionMetaStore(config.sessionsMeta, { log });
    undo.push(() => meta.close());
    // The metrics exist before the cache (it reports swaps as they finish); they read it only at a scrape.
    const opened: { engine?: SessionCacheEngine } = {};
    const sessionMetrics = metrics.enableSessions({
      stats: () => (opened.engine === undefined ? Promise.reject(new Error('the session cache is not open')) : opened.engine.stats()),
      inventory: sessionInventory(meta),
    });
    const engine = await factory({
      cold,
      meta,
      owner: daemonId,
      budgetBytes: config.sessionsHotBudget,
      leaseTtlMs: config.sessionsLeaseTtlMs,
      onSwap: (e) => sessionMetrics.observeSwap(e.direction, e.durationMs),
    });
    opened.engine = engine;
    undo.push(() => engine.shutdown());
    let closing: Promise<void> | undefined;
    return {
      engine,
      meta,
      close: () => (closing ??= closeAll(undo)),
    };
  } catch (error) {
    await closeAll(undo).catch((e: unknown) => log.warn({ err: e }, 'cleanup after a failed session cache start failed'));
    throw error;
  }
}

/** Runs `undo` last to first; every step runs, the first failure is thrown after. */
async function closeAll(undo: readonly (() => Promise<void>)[]): Promise<void> {
  let first: unknown;
  for (const step of [...undo].reverse()) {
    try {
      await step();
    } catch (error) {
      first ??= error;
    }
  }
  if (first !== undefined) throw first instanceof Error ? first : new Error(`closing the session cache failed: ${JSON.stringify(first)}`);
}

/** A connector URL refused as an argument is a configuration error of the daemon. */
function asConfigError(error: unknown, flag: string): Error {
  const e = error as { code?: unknown; message?: unknown };
  if (!(error instanceof Error)) return new Error(String(error));
  if (e.code === 'TC_ERR_INVALID_ARGUMENT')
    return tcError('TC_ERR_CONFIG', `invalid configuration:\n  ${flag}: ${String(e.message)}`, { cause: error });
  return error;
}

const defaultFactory: SessionCacheFactory = (o) =>
  createSessionCache({
    hot: { budgetBytes: o.budgetBytes },
    cold: o.cold,
    meta: o.meta,
    owner: o.owner,
    leaseTtlMs: o.leaseTtlMs,
    onSwap: o.onSwap,
  });
