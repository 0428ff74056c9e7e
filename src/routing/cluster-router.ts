// The routing layer: where a daemon gets the bytes of a view it does not hold. It reads the catalog (live
// daemons, replica rows), picks a route in the order of preference (resident_view, then
// derived_view_from_canonical, then canonical), pulls the window over the data plane, and reselects when a
// source fails, all within the caller's deadline. Decisions are kept per (artifact, view, choice) while in
// use, so the windows of one load share one route and one source preparation.

import { Materializer } from '../bytes/materialize.js';
import type { Catalog, ReplicaKey } from '../catalog/catalog.js';
import { isTensorcastError, tcError, type TensorcastError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { parseIndexJson } from '../layout/canonical-index.js';
import { programWindow } from '../layout/program.js';
import { specOfView } from '../layout/view.js';
import type { ExportRequest, ExportResponse } from '../protocol/http/exports.js';
import { FALLBACK_REASONS, type FallbackReason, type RouteChoice, type RouteKind } from '../protocol/route-kinds.js';
import { withDeadline } from '../store/deadline.js';
import type { FillContext, RemoteArtifact, RemoteFillRequest, RemoteViews } from '../store/remote-views.js';
import { PeerCanonicalSource, pullRange } from './peer-fetch.js';
import { abortable, SourceWatch } from './source-watch.js';
import type { PeerClients, Peers } from './peers.js';
import { canonicalSources, residentSources, type SelectionContext, type SourceCandidate } from './source-selection.js';

/** What the router reports (metrics and logs). */
export interface RoutingEvents {
  routeSelected?(route: RouteKind, fallback: FallbackReason | undefined): void;
  fallback?(reason: FallbackReason): void;
  reselection?(reason: FallbackReason): void;
  wireBytes?(route: RouteKind, bytes: number): void;
}

/** Options of the router. */
export interface ClusterRouterOptions {
  readonly catalog: Catalog;
  readonly peers: Peers;
  readonly selfId: string;
  /** A daemon silent for longer than this is not routed to (ms). */
  readonly daemonTtlMs: number;
  readonly log: Logger;
  readonly events?: RoutingEvents;
}

/** A decided route for the windows of one view. */
interface Plan {
  readonly route: Exclude<RouteKind, 'local'>;
  readonly source: SourceCandidate;
  readonly peer: PeerClients;
}

/**
 * How long a route decision outlives its last window (ms): long enough for the windows of one load (and
 * the ranks loaded right after it) to share it, short enough that a source that failed or restarted, or an
 * export that expired, is looked up afresh by the next load.
 */
const SESSION_IDLE_MS = 5_000;
/** Materializer settings for canonical bytes pulled over the wire: large blocks, few requests. */
const REMOTE_MATERIALIZE = { blockTargetBytes: 32 << 20, readChunkBytes: 32 << 20 };
/** Sessions kept at most (the oldest idle ones go first). */
const MAX_SESSIONS = 1024;

/** Codes that mean the source failed (the load reselects), as opposed to errors no other source can fix. */
const SOURCE_FAILURES = new Set([
  'TC_ERR_UNAVAILABLE',
  'TC_ERR_CHECKSUM',
  'TC_ERR_PROTOCOL',
  'TC_ERR_SHUTTING_DOWN',
  'TC_ERR_IO',
  'TC_ERR_SHORT_READ',
  'TC_ERR_BACKEND',
  'TC_ERR_BUDGET',
  'TC_ERR_INTERNAL',
]);

/**
 * Pulls views from other daemons.
 *
 * @example const router = new ClusterRouter({ catalog, peers, selfId, daemonTtlMs: 30_000, log });
 */
export class ClusterRouter implements RemoteViews {
  private readonly artifacts = new Map<string, Promise<RemoteArtifact>>();
  private readonly sessions = new Map<string, RouteSession>();
  /** Small files of remote artifacts (config.json, tokenizer files), fetched once. */
  private readonly files = new Map<string, Promise<Buffer>>();
  /** Aborts fetches from sources that stop heartbeating. */
  private readonly watch: SourceWatch;

  constructor(private readonly opts: ClusterRouterOptions) {
    this.watch = new SourceWatch(opts.catalog, opts.daemonTtlMs, opts.log);
  }

  artifact(artifactId: string): Promise<RemoteArtifact> {
    let p = this.artifacts.get(artifactId);
    if (p === undefined) {
      p = this.opts.catalog.getArtifact(artifactId).then((record) => {
        if (record === undefined)
          throw tcError('TC_ERR_NOT_FOUND', `no artifact ${artifactId} in the cluster`, { details: { artifactId } });
        return { artifactId, index: parseIndexJson(record.indexJson), files: record.files };
      });
      this.artifacts.set(artifactId, p);
      p.catch(() => this.artifacts.delete(artifactId));
      if (this.artifacts.size > 256) this.artifacts.delete(this.artifacts.keys().next().value!);
    }
    return p;
  }

  async file(artifactId: string, name: string): Promise<Buffer> {
    const key = `${artifactId}/${name}`;
    let p = this.files.get(key);
    if (p === undefined) {
      p = this.fetchFile(artifactId, name);
      this.files.set(key, p);
      p.catch(() => this.files.delete(key));
      if (this.files.size > 256) this.files.delete(this.files.keys().next().value!);
    }
    return p;
  }

  /** Fetches a file from the first live daemon storing the artifact that answers (a hung one is given up at its TTL). */
  private async fetchFile(artifactId: string, name: string): Promise<Buffer> {
    const { catalog, peers, selfId, daemonTtlMs } = this.opts;
    const [daemons, replicas] = await Promise.all([catalog.listDaemons(), catalog.listReplicas(artifactId)]);
    const sources = canonicalSources(daemons, replicas, { selfId, now: Date.now(), daemonTtlMs, excluded: new Set() });
    let last: unknown = tcError('TC_ERR_UNAVAILABLE', `no live daemon stores ${artifactId} (to read its ${name})`, {
      details: { reason: 'no_source' },
    });
    for (const s of sources) {
      try {
        const control = peers.of(s.daemon).control;
        const path = `/v1/artifacts/${encodeURIComponent(artifactId)}/files/${encodeURIComponent(name)}`;
        // A source that hangs is given up once it stops heartbeating: the next one is asked.
        return await this.watch.run(s.daemon.daemonId, (signal) => abortable(control.bytes(path), signal));
      } catch (error) {
        if (isTensorcastError(error, 'TC_ERR_AUTH')) throw error;
        last = error;
      }
    }
    throw last;
  }

  async fill(req: RemoteFillRequest, dest: Uint8Array, ctx: FillContext): Promise<void> {
    const key = `${req.artifactId}/${req.view.viewId ?? 'identity'}/${req.choice}`;
    this.prune(key);
    let session = this.sessions.get(key);
    if (session === undefined || session.closed) {
      session = new RouteSession(this.opts, this.watch, req);
      this.sessions.set(key, session);
    }
    session.active++;
    try {
      await session.fill(req, dest, ctx);
    } finally {
      session.active--;
      session.lastUsed = Date.now();
    }
  }

  /** Forgets sessions idle for a while (and the oldest idle ones beyond the cap); `keep` is about to be used. */
  private prune(keep: string): void {
    const now = Date.now();
    for (const [k, s] of this.sessions) if (k !== keep && s.active === 0 && now - s.lastUsed > SESSION_IDLE_MS) this.sessions.delete(k);
    for (const [k, s] of this.sessions) {
      if (this.sessions.size < MAX_SESSIONS) break;
      if (k !== keep && s.active === 0) this.sessions.delete(k);
    }
  }
}

/** The route decision for one (artifact, view, choice), shared by the windows that fill it. */
class RouteSession {
  lastUsed = Date.now();
  /** Windows being filled through this session now. */
  active = 0;
  /** Set when a fill failed: the router starts a new session for the next fill. */
  closed = false;
  private plan: Promise<Plan> | undefined;
  /** Why the session left a preferred route (sticky: later windows report it too). */
  private fallback: FallbackReason | undefined;
  /** Daemons that failed: never asked again in this session. */
  private readonly excluded = new Set<string>();
  /** Daemons whose resident view went away, or whose export cannot be had. */
  private readonly noResident = new Set<string>();
  private readonly noDerived = new Set<string>();
  /**
   * Daemons whose export went away between its prepare and a fetch (retired by TTL or pressure): prepared
   * again once; lost again before a fetch succeeded, the source's derived route is given up.
   */
  private readonly exportLost = new Set<string>();
  private readonly materializer = new Materializer(REMOTE_MATERIALIZE);

  constructor(
    private readonly opts: ClusterRouterOptions,
    private readonly watch: SourceWatch,
    private readonly first: RemoteFillRequest,
  ) {}

  async fill(req: RemoteFillRequest, dest: Uint8Array, ctx: FillContext): Promise<void> {
    try {
      await this.fillWindow(req, dest, ctx);
    } catch (error) {
      // A failed load leaves nothing behind: the next one chooses afresh, without this session's exclusions
      // and fallback (a source excluded here may be back, or another one may have appeared).
      this.closed = true;
      throw error;
    }
  }

  private async fillWindow(req: RemoteFillRequest, dest: Uint8Array, ctx: FillContext): Promise<void> {
    for (;;) {
      if (Date.now() >= req.deadline) throw timeout(req, 'before a source was found');
      const planned = (this.plan ??= this.choose(req.deadline));
      let plan: Plan;
      try {
        plan = await withDeadline(planned, req.deadline, `choosing a source for ${req.artifactId}`);
      } catch (error) {
        if (this.plan === planned) this.plan = undefined;
        throw error;
      }
      try {
        await this.pull(plan, req, dest, ctx);
        this.exportLost.delete(plan.source.daemon.daemonId);
        ctx.route = plan.route;
        ctx.sourceDaemon = plan.source.daemon.daemonId;
        if (this.fallback !== undefined) ctx.fallback = this.fallback;
        return;
      } catch (error) {
        // Only the caller's deadline makes the load time out; a source's own timeout (a handshake it never
        // answered) is a failure of that source.
        if (Date.now() >= req.deadline) throw asTimeout(error, req);
        const failure = this.failureReason(error, plan);
        if (failure === undefined) throw error;
        const { reason, sameRoute } = failure;
        this.opts.log.warn(
          {
            artifactId: req.artifactId,
            viewId: req.view.viewId ?? null,
            route: plan.route,
            source: plan.source.daemon.daemonId,
            reason,
            err: error,
          },
          'source failed: reselecting',
        );
        this.opts.events?.reselection?.(reason);
        // An export prepared again on the same source is no fallback: the load keeps its route.
        if (!sameRoute) this.fallback = reason;
        if (this.plan === planned) this.plan = undefined;
      }
    }
  }

  /**
   * Why a pull failed (and what to avoid next), or undefined when no reselection can help. `sameRoute`:
   * the next plan takes the same route from the same source (an export retired since it was prepared).
   */
  private failureReason(error: unknown, plan: Plan): { reason: FallbackReason; sameRoute: boolean } | undefined {
    if (!isTensorcastError(error)) return undefined;
    const id = plan.source.daemon.daemonId;
    const reason = FALLBACK_REASONS.find((r) => r === (error.details as { reason?: unknown }).reason);
    if (error.code === 'TC_ERR_EXPORT_UNAVAILABLE') {
      // Retired by TTL or pressure between its prepare and this fetch: prepare it again, once.
      if (plan.route === 'derived_view_from_canonical' && !this.exportLost.has(id)) {
        this.exportLost.add(id);
        return { reason: reason ?? 'drain_attach_closed', sameRoute: true };
      }
      this.noDerived.add(id);
      return { reason: reason ?? 'source_prepare_unavailable', sameRoute: false };
    }
    if (error.code === 'TC_ERR_NOT_FOUND' && plan.route === 'resident_view') {
      this.noResident.add(id);
      return { reason: 'view_probe_unavailable', sameRoute: false };
    }
    if (SOURCE_FAILURES.has(error.code) || error.code === 'TC_ERR_TIMEOUT') {
      this.excluded.add(id);
      return { reason: 'source_failed', sameRoute: false };
    }
    return undefined;
  }

  private async choose(deadline: number): Promise<Plan> {
    const { catalog, peers, selfId, daemonTtlMs, log, events } = this.opts;
    const req = this.first;
    const [daemons, replicas] = await Promise.all([catalog.listDaemons(), catalog.listReplicas(req.artifactId)]);
    const ctx: SelectionContext = { selfId, now: Date.now(), daemonTtlMs, excluded: this.excluded };
    const choice: RouteChoice = req.choice;
    const decided = (route: Plan['route'], source: SourceCandidate): Plan => {
      log.info(
        {
          event: 'route_selected',
          artifactId: req.artifactId,
          viewId: req.view.viewId ?? null,
          route,
          source: source.daemon.daemonId,
          fallback: this.fallback ?? null,
        },
        'route selected',
      );
      events?.routeSelected?.(route, this.fallback);
      return { route, source, peer: peers.of(source.daemon) };
    };
    const noteFallback = (reason: FallbackReason): void => {
      this.fallback = reason;
      events?.fallback?.(reason);
    };
    if (choice === 'auto' || choice === 'resident_view') {
      const resident = residentSources(daemons, replicas, req.view.viewId, ctx).filter((c) => !this.noResident.has(c.daemon.daemonId));
      if (resident[0] !== undefined) return decided('resident_view', resident[0]);
      if (choice === 'resident_view') throw noSource(req, 'holds this view resident');
    }
    const canonical = canonicalSources(daemons, replicas, ctx);
    if (choice === 'derived_view' && req.view.viewId === undefined) {
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `the whole artifact is its canonical bytes: there is no view to derive (use route canonical)`,
      );
    }
    // The identity view is the canonical bytes themselves: nothing to derive.
    if ((choice === 'auto' || choice === 'derived_view') && req.view.viewId !== undefined) {
      // A source that cannot be asked tries the next one; a full export budget goes to canonical (its
      // bytes are still there, only the room to derive is not).
      let refused: TensorcastError | undefined;
      for (const source of canonical.filter((c) => !this.noDerived.has(c.daemon.daemonId))) {
        const prepared = await this.prepare(source, deadline);
        if (prepared === true) {
          // Another source derived it: the route held, but say why the preferred source was left.
          if (refused !== undefined) noteFallback(reasonOf(refused));
          return decided('derived_view_from_canonical', source);
        }
        this.noDerived.add(source.daemon.daemonId);
        refused = prepared;
        if (reasonOf(prepared) === 'export_budget_exhausted') break;
      }
      if (refused !== undefined) {
        if (choice === 'derived_view') throw refused;
        noteFallback(reasonOf(refused));
      }
      if (choice === 'derived_view') throw noSource(req, 'stores the artifact (to derive the view)');
    }
    if (choice === 'derived_view' || canonical[0] === undefined) {
      if (this.fallback !== 'source_failed') noteFallback('no_source');
      throw noSource(req, 'stores the artifact');
    }
    return decided('canonical', canonical[0]);
  }

  /**
   * Asks a source to prepare the view into its export cache. Resolves true when it is ready, or with the
   * error that sends the load to the next route; a deadline that runs out is thrown (no late fallback).
   */
  private async prepare(source: SourceCandidate, deadline: number): Promise<true | TensorcastError> {
    const req = this.first;
    const left = deadline - Date.now();
    if (left <= 0) throw timeout(req, 'before the source could prepare the view');
    const body: ExportRequest = {
      artifactId: req.artifactId,
      view: specOfView(req.view) as Record<string, unknown>,
      viewId: req.view.viewId!,
      timeoutMs: Math.min(left, 2 ** 31 - 1),
    };
    try {
      const control = this.opts.peers.of(source.daemon).control;
      await this.watch.run(source.daemon.daemonId, (signal) =>
        abortable(control.json<ExportResponse>('POST', '/v1/exports', body, left), signal),
      );
      return true;
    } catch (error) {
      if (Date.now() >= deadline) throw asTimeout(error, req);
      if (isTensorcastError(error, 'TC_ERR_AUTH')) throw error;
      this.opts.log.warn({ source: source.daemon.daemonId, artifactId: req.artifactId, err: error }, 'source could not prepare the view');
      return isTensorcastError(error)
        ? error
        : tcError('TC_ERR_UNAVAILABLE', `source ${source.daemon.daemonId}: ${String(error)}`, {
            details: { reason: 'source_prepare_unavailable' },
          });
    }
  }

  private async pull(plan: Plan, req: RemoteFillRequest, dest: Uint8Array, ctx: FillContext): Promise<void> {
    const n = req.end - req.start;
    const row: ReplicaKey = {
      artifactId: plan.source.replica.artifactId,
      viewId: plan.source.replica.viewId,
      daemonId: plan.source.daemon.daemonId,
      tier: plan.source.replica.tier,
    };
    // The source's counter steers other destinations elsewhere while this fetch runs (best effort).
    const counted = this.opts.catalog.adjustReplicaFetches(row, 1).then(
      () => true,
      () => false,
    );
    try {
      // A source that stops heartbeating mid-fetch is given up (the load reselects) rather than waited for.
      await this.watch.run(plan.source.daemon.daemonId, async (signal) => {
        if (plan.route === 'canonical') {
          const source = new PeerCanonicalSource(plan.peer, req.artifactId, req.canonicalBytes, req.deadline, signal);
          try {
            await this.materializer.run(programWindow(req.program, req.start, req.end), source, dest);
          } finally {
            ctx.wireBytes += source.wireBytes;
            ctx.readBytes += source.wireBytes;
            this.opts.events?.wireBytes?.(plan.route, source.wireBytes);
          }
          return;
        }
        const spec = specOfView(req.view);
        await pullRange(
          plan.peer,
          {
            artifactId: req.artifactId,
            view: spec,
            viewId: req.view.viewId,
            start: req.start,
            end: req.end,
            mode: plan.route === 'resident_view' ? 'resident' : 'export',
            deadline: req.deadline,
          },
          dest,
          signal,
        );
        ctx.wireBytes += n;
        ctx.readBytes += n;
        this.opts.events?.wireBytes?.(plan.route, n);
      });
    } finally {
      if (await counted) void this.opts.catalog.adjustReplicaFetches(row, -1).catch(() => undefined);
    }
  }
}

function reasonOf(error: TensorcastError): FallbackReason {
  const reason = (error.details as { reason?: unknown }).reason;
  return FALLBACK_REASONS.find((r) => r === reason) ?? 'source_prepare_unavailable';
}

function timeout(req: RemoteFillRequest, what: string): TensorcastError {
  return tcError('TC_ERR_TIMEOUT', `load of ${req.artifactId}: the deadline passed ${what}`, { details: { deadline: req.deadline } });
}

function asTimeout(error: unknown, req: RemoteFillRequest): TensorcastError {
  return isTensorcastError(error, 'TC_ERR_TIMEOUT') ? error : timeout(req, `(${(error as Error).message})`);
}

function noSource(req: RemoteFillRequest, what: string): TensorcastError {
  return tcError('TC_ERR_UNAVAILABLE', `no live daemon ${what} for ${req.artifactId}`, {
    details: { reason: 'no_source', artifactId: req.artifactId },
  });
}
