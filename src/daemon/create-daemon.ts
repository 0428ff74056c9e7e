// The composition root: createDaemon(config) wires the parts; start() locks the data directory, opens the
// catalog, prepares the shared-memory folder and listens (a failed start closes all it opened and releases
// the lock); stop() drains in-flight work within the deadline.

import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { openCatalog } from '../catalog/open-catalog.js';
import type { Catalog } from '../catalog/catalog.js';
import { wrapIoError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { DaemonMetrics } from '../metrics/metrics.js';
import { ArtifactStore } from '../store/artifact-store.js';
import { ViewService } from '../store/view-service.js';
import type { DaemonConfig } from './config.js';
import { DataServer } from '../transport/data-server.js';
import { buildControlServer } from './control/control-server.js';
import type { Lifecycle } from './control/lifecycle.js';
import { FRAME_BYTES, ViewLoadHandler } from './data-plane/load-handler.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { ShmLeases } from './shm-leases.js';
import { loadOrCreateToken } from './token.js';

/** Where a started daemon listens. */
export interface DaemonAddresses {
  readonly controlUrl: string;
  readonly dataAddress: string;
  readonly daemonId: string;
  /** True when the token was generated into the token file by this start. */
  readonly tokenGenerated: boolean;
}

/** A daemon. */
export interface Daemon {
  readonly config: DaemonConfig;
  start(): Promise<DaemonAddresses>;
  /** Refuses new work, waits for work in flight (up to drainTimeoutMs), then closes everything. */
  stop(): Promise<void>;
}

/** Options for embedding. */
export interface CreateDaemonOptions {
  /** Logger (default: pino JSON lines on stderr at config.logLevel). */
  readonly logger?: Logger;
}

/**
 * Builds a daemon from a validated config. Nothing is opened or bound until `start()`.
 *
 * @example
 * const daemon = createDaemon(resolveConfig([{ dataDir: '/tmp/tc' }]));
 * const { controlUrl } = await daemon.start();
 * process.once('SIGTERM', () => void daemon.stop());
 */
export function createDaemon(config: DaemonConfig, options: CreateDaemonOptions = {}): Daemon {
  const log: Logger = options.logger ?? pino({ level: config.logLevel, base: { component: 'tensorcast-daemon' } }, pino.destination(2));
  const lifecycle: Lifecycle = { draining: false, dataAddress: '' };
  let leases: ShmLeases | undefined;
  let control: FastifyInstance | undefined;
  let data: DataServer | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let catalog: Catalog | undefined;

  let store: ArtifactStore | undefined;
  let views: ViewService | undefined;
  let lock: DataDirLock | undefined;

  const open = async (): Promise<DaemonAddresses> => {
    const { token, generated } = await loadOrCreateToken(config.tokenFile, config.token);
    const daemonId = await loadDaemonId(config.dataDir);
    catalog = await openCatalog(config.catalog, { log });
    const cat = catalog;
    // Memory and shm replicas die with their process: rows left by one that was killed are stale.
    const stale = await cat.removeDaemonReplicas(daemonId, ['memory', 'shm']);
    if (stale > 0) log.info({ daemonId, replicas: stale }, 'removed replica rows left by a previous run');
    store = new ArtifactStore(config.dataDir, catalog, log);
    await store.init();
    // The gauges read the view service lazily, when /metrics is scraped.
    const metrics: DaemonMetrics = new DaemonMetrics(
      () => vs.cache.bytesByTier(),
      () => vs.cache.stats.evictions,
    );
    const vs: ViewService = new ViewService({
      store,
      budgetBytes: config.memoryBudget,
      stagingBytes: config.stagingBudget,
      shmDir: config.shmDir,
      admission: config.replicaAdmission,
      log,
      onReplica: (r, present) => {
        const rec = { artifactId: r.artifactId, viewId: r.viewId, daemonId, tier: r.tier } as const;
        void (present ? cat.putReplica({ ...rec, bytes: r.bytes }) : cat.removeReplica(rec)).catch((e: unknown) =>
          log.warn({ err: e }, 'replica registry update failed'),
        );
      },
      onMaterialize: (m) => {
        metrics.bytesRead.inc(m.baseReads.bytes + m.directBytes);
        metrics.amplification.observe(m.amplification);
        for (const [phase, ms] of Object.entries(m.timesMs))
          if (phase !== 'total' && ms > 0) metrics.phaseSeconds.inc({ phase }, ms / 1000);
      },
    });
    views = vs;
    await vs.init();
    leases = new ShmLeases(vs, config.leaseTtlMs);
    data = new DataServer({
      token,
      daemonId,
      log,
      handler: new ViewLoadHandler(vs),
      frameBytes: FRAME_BYTES,
      draining: () => lifecycle.draining,
      onConnection: (delta) => metrics.connections.inc(delta),
      onProtocolError: () => metrics.protocolErrors.inc(),
      onLoad: (o) => {
        metrics.loads.inc({ route: o.route, transport: 'tcp', source: o.source, outcome: o.outcome });
        metrics.loadSeconds.observe({ transport: 'tcp' }, o.seconds);
        if (o.outcome === 'ok') metrics.bytesDelivered.inc({ transport: 'tcp' }, o.bytes);
      },
    });
    const dl = config.dataListen;
    lifecycle.dataAddress = await data.listen(dl.host, dl.port).catch((e: unknown) => {
      throw wrapIoError(e, 'cannot listen for the data plane', `${dl.host}:${dl.port}`);
    });
    control = buildControlServer({ config, daemonId, token, catalog, store, views: vs, leases, metrics, log, lifecycle });
    const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
    await control.listen({ host: config.listen.host, port: config.listen.port }).catch((e: unknown) => {
      throw wrapIoError(e, 'cannot listen for the control API', `${config.listen.host}:${config.listen.port}`);
    });
    const addr = control.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : config.listen.port;
    const controlUrl = `http://${host}:${port}`;
    const dataAddress = lifecycle.dataAddress;
    // Until --advertise exists, the control host is the address peers would use.
    const advertiseHost = config.listen.host;
    const beat = (): void =>
      void cat
        .upsertDaemon({ daemonId, controlUrl, dataAddress, advertiseHost, state: 'up', heartbeatAt: Date.now() })
        .catch(() => undefined);
    beat();
    heartbeat = setInterval(beat, 10_000);
    heartbeat.unref();
    log.info({ controlUrl, dataAddress, daemonId, dataDir: config.dataDir, memoryBudget: config.memoryBudget }, 'daemon ready');
    return { controlUrl, dataAddress, daemonId, tokenGenerated: generated };
  };

  /** Closes whatever is open, in reverse order of opening, and releases the data directory last. */
  const closeAll = async (drainMs: number): Promise<void> => {
    if (heartbeat !== undefined) clearInterval(heartbeat);
    await data?.close(drainMs);
    await control?.close();
    leases?.close();
    await views?.close();
    await store?.close();
    await catalog?.close();
    await lock?.release();
    lock = undefined;
  };

  const start = async (): Promise<DaemonAddresses> => {
    // Before anything in the data directory is read or changed: another daemon may be using it.
    lock = await lockDataDir(config.dataDir, log);
    try {
      return await open();
    } catch (error) {
      await closeAll(0).catch((e: unknown) => log.warn({ err: e }, 'cleanup after a failed start failed'));
      throw error;
    }
  };

  const stop = async (): Promise<void> => {
    lifecycle.draining = true;
    log.info({ drainTimeoutMs: config.drainTimeoutMs }, 'daemon draining');
    await closeAll(config.drainTimeoutMs);
    log.info({}, 'daemon stopped');
  };

  return { config, start, stop };
}

/** The daemon's stable id, kept in the data directory. */
async function loadDaemonId(dataDir: string): Promise<string> {
  const path = join(dataDir, 'daemon-id');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    const id = `d-${randomBytes(6).toString('hex')}`;
    await writeFile(path, `${id}\n`, { mode: 0o600 });
    return id;
  }
}
