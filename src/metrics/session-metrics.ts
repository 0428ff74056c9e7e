// The session KV cache's metrics (docs/metrics.md "Sessions"): read from the cache's counters when /metrics
// is scraped (one snapshot per scrape), and swap durations observed as swaps finish. Registered only on a
// daemon with sessions enabled.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The counters of one cache instance (SessionCacheStats, src/sessions/session-types.ts). */
export interface SessionCounters {
  readonly hotBytes: number;
  readonly hotBudgetBytes: number;
  readonly hotSessions: number;
  readonly swapsIn: number;
  readonly swapsOut: number;
  readonly swapInBytes: number;
  readonly swapOutBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly leaseConflicts: number;
}

/** What the metrics read at a scrape. */
export interface SessionMetricsSource {
  stats(): Promise<SessionCounters>;
  /** Sessions in the metadata store and their bytes (all of which are in the cold tier: write-through). */
  inventory(): Promise<{ readonly sessions: number; readonly bytes: number }>;
}

interface Snapshot {
  readonly stats: SessionCounters;
  readonly inventory: { readonly sessions: number; readonly bytes: number } | undefined;
}

/** The session metrics of one daemon. */
export class SessionMetrics {
  readonly swapSeconds: Histogram<'direction'>;
  readonly requests: Counter<'op' | 'outcome'>;
  readonly requestBytes: Counter<'op'>;
  readonly requestSeconds: Histogram<'op'>;
  private pending: Promise<Snapshot> | undefined;

  constructor(registry: Registry, source: SessionMetricsSource) {
    const registers = [registry];
    // The gauges and counters of one scrape share one snapshot (collect runs concurrently for all metrics).
    const snapshot = (): Promise<Snapshot> => {
      this.pending ??= (async (): Promise<Snapshot> => {
        const [stats, inventory] = await Promise.all([source.stats(), source.inventory().catch(() => undefined)]);
        return { stats, inventory };
      })().finally(() => setImmediate(() => (this.pending = undefined)));
      return this.pending;
    };
    const gauge = (name: string, help: string, value: (s: Snapshot) => number | undefined): void => {
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const v = value(await snapshot());
          if (v !== undefined) this.set(v);
        },
      });
    };
    gauge('tensorcast_session_hot_bytes', "Bytes of session KV in this daemon's hot tier.", (s) => s.stats.hotBytes);
    gauge('tensorcast_session_hot_budget_bytes', "The hot tier's budget (--sessions-hot-budget).", (s) => s.stats.hotBudgetBytes);
    gauge('tensorcast_session_hot_sessions', "Sessions with bytes in this daemon's hot tier.", (s) => s.stats.hotSessions);
    gauge(
      'tensorcast_session_cold_bytes',
      'Bytes of every session in the metadata store (all in the cold tier).',
      (s) => s.inventory?.bytes,
    );
    gauge(
      'tensorcast_session_cold_sessions',
      'Sessions in the metadata store (shared stores: of every daemon).',
      (s) => s.inventory?.sessions,
    );
    const counter = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      values: (s: SessionCounters) => readonly [Partial<Record<L, string>>, number][],
    ): void => {
      new Counter<L>({
        name,
        help,
        labelNames,
        registers,
        async collect() {
          const { stats } = await snapshot();
          this.reset();
          for (const [labels, v] of values(stats)) this.inc(labels, v);
        },
      });
    };
    counter('tensorcast_session_swaps_total', 'Sessions swapped in (cold to hot) and out (hot copies dropped).', ['direction'], (s) => [
      [{ direction: 'in' }, s.swapsIn],
      [{ direction: 'out' }, s.swapsOut],
    ]);
    counter('tensorcast_session_swap_bytes_total', 'Bytes swapped in and out.', ['direction'], (s) => [
      [{ direction: 'in' }, s.swapInBytes],
      [{ direction: 'out' }, s.swapOutBytes],
    ]);
    counter(
      'tensorcast_session_accesses_total',
      'Appends and reads: hit (hot here) or miss (swapped in or read from cold first).',
      ['result'],
      (s) => [
        [{ result: 'hit' }, s.hits],
        [{ result: 'miss' }, s.misses],
      ],
    );
    counter('tensorcast_session_lease_conflicts_total', 'Session writes refused because another writer held the lease.', [], (s) => [
      [{}, s.leaseConflicts],
    ]);
    this.swapSeconds = new Histogram({
      name: 'tensorcast_session_swap_duration_seconds',
      help: 'Time of one swap, by direction (in: copy from cold and mark hot; out: clear the marks and free).',
      labelNames: ['direction'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.requests = new Counter({
      name: 'tensorcast_session_requests_total',
      help: 'Session appends and reads over the data plane, by outcome (ok, error, cancelled).',
      labelNames: ['op', 'outcome'],
      registers,
    });
    this.requestBytes = new Counter({
      name: 'tensorcast_session_request_bytes_total',
      help: 'KV bytes appended and read over the data plane (completed requests).',
      labelNames: ['op'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'tensorcast_session_request_duration_seconds',
      help: 'Time to serve one session append or read over the data plane.',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
  }

  /** Records a served data-plane append or read. */
  observeRequest(op: 'append' | 'read', outcome: 'ok' | 'error' | 'cancelled', bytes: number, seconds: number): void {
    this.requests.inc({ op, outcome });
    if (outcome === 'ok') this.requestBytes.inc({ op }, bytes);
    this.requestSeconds.observe({ op }, seconds);
  }

  /** Records a finished swap. */
  observeSwap(direction: 'in' | 'out', durationMs: number): void {
    this.swapSeconds.observe({ direction }, durationMs / 1000);
  }
}
