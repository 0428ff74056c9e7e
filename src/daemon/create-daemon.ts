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
import { ExportCache } from '../store/export-cache.js';
import { ViewService, type ResolvedView } from '../store/view-service.js';
import { ClusterRouter } from '../routing/cluster-router.js';
import { Peers } from '../routing/peers.js';
import { ClusterMembership } from './cluster-membership.js';
import { delay, faultsFromEnv } from './faults.js';
import { exportBuilder } from './control/export-routes.js';
import type { DaemonConfig } from './config.js';
import { DataServer } from '../transport/data-server.js';
import { buildControlServer } from './control/control-server.js';
import { redactUrl } from './control/cluster-routes.js';
import type { Lifecycle } from './control/lifecycle.js';
import { FRAME_BYTES, ViewLoadHandler } from './data-plane/load-handler.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { ShmLeases } from './shm-leases.js';
import { ObjectStore } from '../store/objects/object-store.js';
import { objectHandler } from './data-plane/object-handler.js';
import { ObjectShmHandoff } from './objects/shm-handoff.js';
import { PooledObjectSegments } from './objects/pooled-segments.js';
import { ShmObjectSegments } from '../store/objects/shm-segments.js';
import { loadOrCreateToken } from './token.js';
import { startDaemonHandshake, type DaemonHandshake } from './handshake-listener.js';
import { openSessionService, type SessionService } from './sessions/session-service.js';

/** Where a started daemon listens. */
export interface DaemonAddresses {
  readonly controlUrl: string;
  readonly dataAddress: string;
  readonly daemonId: string;
  /** True when the token was generated into the token file by this start. */
  readonly tokenGenerated: boolean;
  /** The handshake listener's URL (--handshake-listen), or undefined when none runs. */
  readonly handshakeUrl: string | undefined;
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
  let membership: ClusterMembership | undefined;
  let catalog: Catalog | undefined;
  let peers: Peers | undefined;
  let exports: ExportCache | undefined;
  let objects: ObjectStore | undefined;
  let handoff: ObjectShmHandoff | undefined;
  let handshake: DaemonHandshake | undefined;
  let sessions: SessionService | undefined;

  let store: ArtifactStore | undefined;
  let views: ViewService | undefined;
  let lock: DataDirLock | undefined;

  const open = async (): Promise<DaemonAddresses> => {
    const { token, generated } = await loadOrCreateToken(config.tokenFile, config.token);
    const daemonId = await loadDaemonId(config.dataDir);
    catalog = await openCatalog(config.catalog, { log });
    const cat = catalog;
    // Memory, shm and export replicas die with their process: rows left by one that was killed are stale.
    const stale = await cat.removeDaemonReplicas(daemonId, ['memory', 'shm', 'export']);
    if (stale > 0) log.info({ daemonId, replicas: stale }, 'removed replica rows left by a previous run');
    store = new ArtifactStore(config.dataDir, catalog, log, {
      importRoots: config.importRoots,
      onConnectorRead: (scheme, bytes) => metrics.connectorBytesRead.inc({ scheme }, bytes),
    });
    await store.init();
    const st = store;
    // Where peers reach this daemon: filled in once both planes listen.
    const advertised = { controlUrl: '', dataAddress: '' };
    const m: ClusterMembership = new ClusterMembership({
      catalog: cat,
      record: () => ({ daemonId, ...advertised, advertiseHost: config.advertise, state: lifecycle.draining ? 'draining' : 'up' }),
      daemonTtlMs: config.daemonTtlMs,
      log,
      resync: () => resync(),
      onStatus: (up) => metrics.catalogUp.set(up ? 1 : 0),
      onFailure: (operation) => metrics.catalogFailures.inc({ operation }),
    });
    membership = m;
    /** Catalog writes on behalf of this daemon: a failure marks the catalog unavailable and schedules a resync. */
    const registry = (operation: string, work: Promise<unknown>): void => void work.catch((e: unknown) => m.failed(operation, e));
    // The gauges read the view service and the export cache lazily, when /metrics is scraped.
    const metrics: DaemonMetrics = new DaemonMetrics(
      () => vs.cache.bytesByTier(),
      () => vs.cache.stats.evictions,
      () => ex.stats(),
    );
    metrics.catalogUp.set(1);
    peers = new Peers(token);
    const router = new ClusterRouter({
      catalog: cat,
      peers,
      selfId: daemonId,
      daemonTtlMs: config.daemonTtlMs,
      log,
      events: {
        routeSelected: (route) => metrics.routesSelected.inc({ route }),
        fallback: (reason) => metrics.fallbacks.inc({ reason }),
        reselection: (reason) => metrics.reselections.inc({ reason }),
        wireBytes: (route, bytes) => metrics.peerBytesReceived.inc({ route }, bytes),
      },
    });
    const vs: ViewService = new ViewService({
      store,
      budgetBytes: config.memoryBudget,
      stagingBytes: config.stagingBudget,
      shmDir: config.shmDir,
      shmReserveBytes: config.shmReserve,
      admission: config.replicaAdmission,
      log,
      remote: router,
      onReplica: (r, present) => {
        const rec = { artifactId: r.artifactId, viewId: r.viewId, daemonId, tier: r.tier } as const;
        registry('replica_registry', present ? cat.putReplica({ ...rec, bytes: r.bytes }) : cat.removeReplica(rec));
      },
      onMaterialize: (mat) => {
        metrics.bytesRead.inc(mat.baseReads.bytes + mat.directBytes);
        metrics.amplification.observe(mat.amplification);
        for (const [phase, ms] of Object.entries(mat.timesMs))
          if (phase !== 'total' && ms > 0) metrics.phaseSeconds.inc({ phase }, ms / 1000);
      },
    });
    views = vs;
    await vs.init();
    const preparing = new Map<string, ResolvedView>();
    const build = exportBuilder(vs, preparing);
    const faults = faultsFromEnv();
    if (faults.exportBuildDelayMs > 0 || faults.peerServeDelayMs > 0) log.warn({ faults }, 'fault injection is on (tests only)');
    const exportRow = (e: { artifactId: string; viewId: string }) => ({
      artifactId: e.artifactId,
      viewId: e.viewId,
      daemonId,
      tier: 'export' as const,
    });
    const ex: ExportCache = new ExportCache({
      budgetBytes: config.exportBudget,
      ttlMs: config.exportTtlMs,
      drainTimeoutMs: config.drainTimeoutMs,
      build: async (key, bytes, deadline) => {
        await delay(faults.exportBuildDelayMs);
        return build(key, bytes, deadline);
      },
      publish: (e) => cat.putReplica({ ...exportRow(e), bytes: e.bytes }),
      withdraw: async (e) => void (await cat.setReplicaState(exportRow(e), 'retiring')),
      unregister: (e) => cat.removeReplica(exportRow(e)),
      onEvent: (name, e, detail) => {
        metrics.exportEvents.inc({ event: name });
        const reason = (detail as { reason?: unknown } | undefined)?.reason;
        if (name === 'retire' && typeof reason === 'string') metrics.exportRetirements.inc({ reason });
      },
      log,
    });
    exports = ex;
    /** Re-registers everything this daemon holds (after a catalog outage). */
    const resync = async (): Promise<void> => {
      await cat.removeDaemonReplicas(daemonId, ['memory', 'shm', 'export', 'disk']);
      for (const id of await st.localIds()) {
        const a = await st.open(id).catch(() => undefined);
        if (a !== undefined) await cat.putReplica({ artifactId: id, viewId: undefined, daemonId, tier: 'disk', bytes: a.index.totalBytes });
      }
      for (const r of vs.cache.list())
        await cat.putReplica({ artifactId: r.artifactId, viewId: r.viewId, daemonId, tier: r.tier, bytes: r.bytes });
      for (const e of ex.list()) if (e.state === 'ready') await cat.putReplica({ ...exportRow(e), bytes: e.bytes });
    };
    leases = new ShmLeases(vs, config.leaseTtlMs);
    // After the view service emptied the shm folder: object segments live in a folder of their own in it.
    const shmObjects = new PooledObjectSegments(
      vs.segments,
      new ShmObjectSegments(join(config.shmDir, '.objects'), Math.min(Math.floor(config.objectMemory / 4), 1 << 30)),
    );
    const os = new ObjectStore({
      memoryBytes: config.objectMemory,
      spillDir: config.objectSpill ? join(config.dataDir, 'objects') : undefined,
      txnTtlMs: config.objectTxnTtlMs,
      // Same-host puts write into pre-faulted pool segments when the pool has one that fits.
      shm: shmObjects,
      log,
    });
    objects = os;
    await shmObjects.init();
    await os.init();
    handoff = new ObjectShmHandoff(os, {
      // A same-host put whose writer died is abandoned like a transaction: its lease ends after the same time.
      ttlMs: config.objectTxnTtlMs,
      onCommit: (bytes) => {
        metrics.objectRequests.inc({ op: 'put', transport: 'shm', outcome: 'ok' });
        metrics.objectBytes.inc({ op: 'put', transport: 'shm' }, bytes);
      },
      onGet: (bytes) => {
        metrics.objectRequests.inc({ op: 'get', transport: 'shm', outcome: 'ok' });
        metrics.objectBytes.inc({ op: 'get', transport: 'shm' }, bytes);
      },
    });
    // Sessions (--sessions-cold): a cache whose leases and hot marks name this daemon.
    sessions = await openSessionService(config, daemonId, log, metrics);
    data = new DataServer({
      token,
      daemonId,
      log,
      handler: new ViewLoadHandler(vs, ex, {
        onPeerSent: (mode, bytes) => metrics.peerBytesSent.inc({ mode }, bytes),
        delayMs: faults.peerServeDelayMs,
      }),
      objects: objectHandler(os),
      ...(sessions === undefined ? {} : { sessions: sessions.engine }),
      frameBytes: FRAME_BYTES,
      draining: () => lifecycle.draining,
      onConnection: (delta) => metrics.connections.inc(delta),
      onProtocolError: () => metrics.protocolErrors.inc(),
      onLoad: (o) => {
        metrics.loads.inc({ route: o.route, transport: 'tcp', source: o.source, outcome: o.outcome });
        metrics.loadSeconds.observe({ transport: 'tcp' }, o.seconds);
        if (o.outcome === 'ok') metrics.bytesDelivered.inc({ transport: 'tcp' }, o.bytes);
      },
      onSession: (o) => metrics.sessions?.observeRequest(o.op, o.outcome, o.bytes, o.seconds),
      onObject: (o) => {
        metrics.objectRequests.inc({ op: o.op, transport: 'tcp', outcome: o.outcome });
        if (o.outcome === 'ok') metrics.objectBytes.inc({ op: o.op, transport: 'tcp' }, o.bytes);
      },
    });
    const dl = config.dataListen;
    lifecycle.dataAddress = await data.listen(dl.host, dl.port).catch((e: unknown) => {
      throw wrapIoError(e, 'cannot listen for the data plane', `${dl.host}:${dl.port}`);
    });
    control = buildControlServer({
      config,
      daemonId,
      token,
      catalog,
      store,
      views: vs,
      leases,
      objects: os,
      handoff,
      sessions: sessions?.engine,
      sessionMeta: sessions?.meta,
      metrics,
      log,
      lifecycle,
      exports: ex,
      preparing,
      catalogStatus: () => m.status,
    });
    const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
    await control.listen({ host: config.listen.host, port: config.listen.port }).catch((e: unknown) => {
      throw wrapIoError(e, 'cannot listen for the control API', `${config.listen.host}:${config.listen.port}`);
    });
    const addr = control.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : config.listen.port;
    const controlUrl = `http://${host}:${port}`;
    const dataAddress = lifecycle.dataAddress;
    const adv = config.advertise.includes(':') ? `[${config.advertise}]` : config.advertise;
    advertised.controlUrl = `http://${adv}:${port}`;
    advertised.dataAddress = `${adv}:${dataAddress.slice(dataAddress.lastIndexOf(':') + 1)}`;
    if (config.handshakeListen !== undefined) {
      handshake = await startDaemonHandshake(config, token, log);
      lifecycle.handshakeUrl = handshake.url;
    }
    await m.start();
    log.info(
      {
        controlUrl,
        dataAddress,
        daemonId,
        advertise: advertised,
        dataDir: config.dataDir,
        memoryBudget: config.memoryBudget,
        exportBudget: config.exportBudget,
        objectMemory: config.objectMemory,
        objectSpill: config.objectSpill,
        handshakeUrl: handshake?.url,
        sessions:
          sessions === undefined
            ? 'off'
            : { cold: redactUrl(config.sessionsCold ?? ''), meta: redactUrl(config.sessionsMeta), hotBudget: config.sessionsHotBudget },
      },
      'daemon ready',
    );
    return { controlUrl, dataAddress, daemonId, tokenGenerated: generated, handshakeUrl: handshake?.url };
  };

  /** Closes whatever is open, in reverse order of opening, and releases the data directory last. */
  const closeAll = async (drainMs: number): Promise<void> => {
    // Peers stop routing here first; exports retire in order (withdraw, refuse, wait for fetches, free)
    // while the data plane finishes the requests in flight.
    await membership?.stop(drainMs > 0);
    await Promise.all([exports?.close(drainMs > 0 ? 'drain' : 'shutdown'), data?.close(drainMs)]);
    await control?.close();
    await handshake?.close();
    handshake = undefined;
    await peers?.close();
    leases?.close();
    handoff?.close();
    // After the data plane and the control API closed: no append or read is in flight any more.
    await sessions?.close().catch((e: unknown) => log.warn({ err: e }, 'closing the session cache failed'));
    sessions = undefined;
    await objects?.close();
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
