// Every metric name tensorcast exports, in one place (docs/metrics.md lists them). Each daemon gets its
// own registry (no global state); GET /metrics serves it in the Prometheus text format.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { SessionMetrics, type SessionMetricsSource } from './session-metrics.js';

/** The daemon's metrics. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly loads: Counter<'route' | 'transport' | 'source' | 'outcome'>;
  readonly bytesDelivered: Counter<'transport'>;
  readonly bytesRead: Counter;
  readonly connectorBytesRead: Counter<'scheme'>;
  readonly loadSeconds: Histogram<'transport'>;
  readonly phaseSeconds: Counter<'phase'>;
  readonly amplification: Histogram;
  readonly replicaBytes: Gauge<'tier'>;
  readonly evictions: Counter;
  readonly connections: Gauge;
  readonly protocolErrors: Counter;
  readonly httpRequests: Counter<'method' | 'status'>;
  readonly catalogUp: Gauge;
  readonly catalogFailures: Counter<'operation'>;
  readonly routesSelected: Counter<'route'>;
  readonly fallbacks: Counter<'reason'>;
  readonly reselections: Counter<'reason'>;
  readonly peerBytesReceived: Counter<'route'>;
  readonly peerBytesSent: Counter<'mode'>;
  readonly exportEvents: Counter<'event'>;
  readonly exportRetirements: Counter<'reason'>;
  readonly exportEntries: Gauge<'state'>;
  readonly exportBytes: Gauge<'state'>;
  readonly objectRequests: Counter<'op' | 'transport' | 'outcome'>;
  readonly objectBytes: Counter<'op' | 'transport'>;
  /** The session cache's metrics, once enabled (a daemon with --sessions-cold). */
  sessions: SessionMetrics | undefined = undefined;

  constructor(
    replicaBytes: () => Record<string, number>,
    evictions: () => number,
    exports: () => { entries: Record<string, number>; bytes: Record<string, number> } = () => ({ entries: {}, bytes: {} }),
  ) {
    const registers = [this.registry];
    this.loads = new Counter({
      name: 'tensorcast_loads_total',
      help: 'Loads served, by route, transport, byte source and outcome.',
      labelNames: ['route', 'transport', 'source', 'outcome'],
      registers,
    });
    this.bytesDelivered = new Counter({
      name: 'tensorcast_load_bytes_delivered_total',
      help: 'Bytes delivered to clients.',
      labelNames: ['transport'],
      registers,
    });
    this.bytesRead = new Counter({
      name: 'tensorcast_load_bytes_read_total',
      help: 'Source bytes read (or copied from memory) to materialize views.',
      registers,
    });
    this.connectorBytesRead = new Counter({
      name: 'tensorcast_connector_bytes_read_total',
      help: 'Bytes fetched from connectors by lazy artifacts (ranged reads, gaps read through included), by URL scheme.',
      labelNames: ['scheme'],
      registers,
    });
    this.loadSeconds = new Histogram({
      name: 'tensorcast_load_duration_seconds',
      help: 'Time to serve one load request (data plane: one range; shm: until the lease is handed out).',
      labelNames: ['transport'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.phaseSeconds = new Counter({
      name: 'tensorcast_materialize_phase_seconds_total',
      help: 'Executor time by phase (summed over concurrent reads).',
      labelNames: ['phase'],
      registers,
    });
    this.amplification = new Histogram({
      name: 'tensorcast_materialize_amplification',
      help: 'Bytes read / bytes delivered per materialization.',
      buckets: [1, 1.1, 1.5, 2, 4, 8, 16],
      registers,
    });
    this.replicaBytes = new Gauge({
      name: 'tensorcast_replica_bytes',
      help: 'Bytes held by view replicas, by tier.',
      labelNames: ['tier'],
      registers,
      collect() {
        for (const [tier, bytes] of Object.entries(replicaBytes())) this.set({ tier }, bytes);
      },
    });
    this.evictions = new Counter({
      name: 'tensorcast_replica_evictions_total',
      help: 'Replicas evicted under memory pressure.',
      registers,
      collect() {
        this.reset();
        this.inc(evictions());
      },
    });
    this.connections = new Gauge({ name: 'tensorcast_data_connections_active', help: 'Open data-plane connections.', registers });
    this.protocolErrors = new Counter({
      name: 'tensorcast_protocol_errors_total',
      help: 'Data-plane connections closed for a protocol violation.',
      registers,
    });
    this.catalogUp = new Gauge({
      name: 'tensorcast_catalog_up',
      help: '1 while the catalog answers, 0 while it is unavailable.',
      registers,
    });
    this.catalogFailures = new Counter({
      name: 'tensorcast_catalog_failures_total',
      help: 'Catalog calls that failed (heartbeat, replica registry), by operation.',
      labelNames: ['operation'],
      registers,
    });
    this.routesSelected = new Counter({
      name: 'tensorcast_routes_selected_total',
      help: 'Remote route decisions, by route kind.',
      labelNames: ['route'],
      registers,
    });
    this.fallbacks = new Counter({
      name: 'tensorcast_route_fallbacks_total',
      help: 'Fallbacks from a preferred route, by reason (a closed set, docs/metrics.md).',
      labelNames: ['reason'],
      registers,
    });
    this.reselections = new Counter({
      name: 'tensorcast_source_reselections_total',
      help: 'Sources dropped mid-load and reselected, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.peerBytesReceived = new Counter({
      name: 'tensorcast_peer_bytes_received_total',
      help: 'Bytes pulled from other daemons, by route kind.',
      labelNames: ['route'],
      registers,
    });
    this.peerBytesSent = new Counter({
      name: 'tensorcast_peer_bytes_sent_total',
      help: 'Bytes sent to other daemons, by peer mode (resident, export, canonical).',
      labelNames: ['mode'],
      registers,
    });
    this.exportEvents = new Counter({
      name: 'tensorcast_export_events_total',
      help: 'Export cache lifecycle events (create, reuse, ttl_refresh, fetch_begin, fetch_end, eviction, drain_start, drain_complete, retire).',
      labelNames: ['event'],
      registers,
    });
    this.exportRetirements = new Counter({
      name: 'tensorcast_export_retirements_total',
      help: 'Exports retired, by reason (ttl_expired, pressure, drain, shutdown).',
      labelNames: ['reason'],
      registers,
    });
    this.exportEntries = new Gauge({
      name: 'tensorcast_export_entries',
      help: 'Export cache entries by state.',
      labelNames: ['state'],
      registers,
      collect() {
        for (const [state, n] of Object.entries(exports().entries)) this.set({ state }, n);
      },
    });
    this.exportBytes = new Gauge({
      name: 'tensorcast_export_bytes',
      help: 'Export cache bytes by state.',
      labelNames: ['state'],
      registers,
      collect() {
        for (const [state, n] of Object.entries(exports().bytes)) this.set({ state }, n);
      },
    });
    this.objectRequests = new Counter({
      name: 'tensorcast_object_requests_total',
      help: 'Object puts and gets, by transport (tcp, shm) and outcome (ok, error, cancelled).',
      labelNames: ['op', 'transport', 'outcome'],
      registers,
    });
    this.objectBytes = new Counter({
      name: 'tensorcast_object_bytes_total',
      help: 'Object bytes put and got, by transport.',
      labelNames: ['op', 'transport'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'tensorcast_http_requests_total',
      help: 'Control API requests by method and status.',
      labelNames: ['method', 'status'],
      registers,
    });
  }

  /** Registers the session cache's metrics, read from `source` at each scrape. */
  enableSessions(source: SessionMetricsSource): SessionMetrics {
    this.sessions ??= new SessionMetrics(this.registry, source);
    return this.sessions;
  }
}
