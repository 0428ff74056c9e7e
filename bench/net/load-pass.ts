// One measured pass of the remote suite: every rank of a TP size loaded on the destination daemon by one
// route, with what the load results report and what the daemons' metrics, their CPU time and the link's
// counters say happened meanwhile.

import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { TensorcastClient } from '../../src/client/tensorcast-client.js';
import type { RouteChoice } from '../../src/protocol/route-kinds.js';
import { metric, type ClusterDaemon, type Metrics } from './cluster-daemon.js';
import type { RateLimitedLink } from './netns.js';

/** What one pass measured. */
export interface PassStats {
  /** Sum of the loads' wall times (hashing between loads excluded), seconds. */
  readonly seconds: number;
  /** Bytes delivered to the client (the views' bytes). */
  readonly viewBytes: number;
  /** Bytes moved between daemons, as the load results report them (`stats.wireBytes`). */
  readonly wireBytes: number;
  /** Source bytes read per byte delivered, as the load results report it (`stats.amplification`, weighted). */
  readonly amplification: number;
  /** Bytes the destination counted as received from peers (tensorcast_peer_bytes_received_total). */
  readonly peerReceived: number;
  /** Bytes the source read from its files (tensorcast_load_bytes_read_total), exports built included. */
  readonly sourceRead: number;
  /** Data-plane requests the source served (tensorcast_loads_total) and the time they took (s, summed). */
  readonly sourceRequests: number;
  readonly sourceRequestSeconds: number;
  /** Bytes that crossed the rate-limited link towards the destination (headers included), if any. */
  readonly linkBytes: number | undefined;
  /** CPU seconds of the source, the destination and this process (during the load calls only). */
  readonly cpu: { readonly source: number; readonly destination: number; readonly client: number };
  readonly routes: ReadonlySet<string>;
  readonly fallbacks: ReadonlySet<string>;
  readonly sourceDaemons: ReadonlySet<string>;
  /** SHA-1 of each rank's bytes, when hashing was asked for. */
  readonly hashes: readonly string[];
}

/** Who takes part in a pass. */
export interface PassSetup {
  readonly client: TensorcastClient;
  readonly key: string;
  readonly source: ClusterDaemon;
  readonly destination: ClusterDaemon;
  readonly token: string;
  readonly link: RateLimitedLink | undefined;
  readonly connections: number;
  readonly into: Buffer;
}

/**
 * Loads ranks 0..tp-1 one after the other on `setup.destination` by `route`.
 *
 * @throws the load's coded error (a route that cannot be taken)
 */
export async function loadPass(setup: PassSetup, tp: number, route: RouteChoice, hash = false): Promise<PassStats> {
  const { client, key, source, destination, token, link } = setup;
  const [srcBefore, dstBefore] = await Promise.all([source.metrics(token), destination.metrics(token)]);
  const linkBefore = link?.counters().rxBytes ?? 0;
  const cpuBefore = [source.cpuSeconds(), destination.cpuSeconds()] as const;
  let clientCpu = 0;
  let seconds = 0;
  let viewBytes = 0;
  let wireBytes = 0;
  let readBytes = 0;
  const routes = new Set<string>();
  const fallbacks = new Set<string>();
  const sourceDaemons = new Set<string>();
  const hashes: string[] = [];
  for (let rank = 0; rank < tp; rank++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await client.load(key, { tp: { size: tp, rank }, route, into: setup.into, connections: setup.connections });
    seconds += (performance.now() - t0) / 1000;
    const cpu1 = process.cpuUsage(cpu0);
    clientCpu += (cpu1.user + cpu1.system) / 1e6;
    viewBytes += r.stats.bytesDelivered;
    wireBytes += r.stats.wireBytes;
    readBytes += (r.stats.amplification ?? 0) * r.stats.bytesDelivered;
    routes.add(r.stats.route);
    if (r.stats.fallback !== null) fallbacks.add(r.stats.fallback);
    if (r.stats.sourceDaemon !== null) sourceDaemons.add(r.stats.sourceDaemon);
    if (hash) hashes.push(createHash('sha1').update(r.buffer).digest('hex'));
  }
  const cpu = { source: source.cpuSeconds() - cpuBefore[0], destination: destination.cpuSeconds() - cpuBefore[1], client: clientCpu };
  const linkBytes = link === undefined ? undefined : link.counters().rxBytes - linkBefore;
  const [srcAfter, dstAfter] = await Promise.all([source.metrics(token), destination.metrics(token)]);
  const delta = (before: Metrics, after: Metrics, name: string, ...filter: string[]): number =>
    metric(after, name, ...filter) - metric(before, name, ...filter);
  return {
    seconds,
    viewBytes,
    wireBytes,
    amplification: viewBytes > 0 ? readBytes / viewBytes : 0,
    peerReceived: delta(dstBefore, dstAfter, 'tensorcast_peer_bytes_received_total'),
    sourceRead: delta(srcBefore, srcAfter, 'tensorcast_load_bytes_read_total'),
    sourceRequests: delta(srcBefore, srcAfter, 'tensorcast_loads_total'),
    sourceRequestSeconds: delta(srcBefore, srcAfter, 'tensorcast_load_duration_seconds_sum'),
    linkBytes,
    cpu,
    routes,
    fallbacks,
    sourceDaemons,
    hashes,
  };
}
