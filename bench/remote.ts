// remote suite (issue 8, section 8): daemons on one catalog. Every rank of TP=4 and TP=2 of a ~300 MB bf16
// model loaded on B from A by derived_view_from_canonical (A prepares the dense view, the wire carries only
// it) against a forced canonical route (canonical ranges on the wire, sliced on B): bytes on the wire, time,
// amplification. Then a view a third daemon C holds, fetched by B (resident_view), against iperf3 with the
// same number of streams. Over loopback, then, as root with iproute2, across a veth pair into a network
// namespace (A and C inside it) rate-limited to 2 Gbit/s, so that bytes cost what they cost between hosts.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TensorcastClient } from '../src/client/tensorcast-client.js';
import { DEMO_MODEL } from '../src/cli/commands/demo.js';
import { writeSyntheticModel } from '../src/format/synthetic-model.js';
import type { BenchResult } from './measure.js';
import { metric, startClusterDaemon, type ClusterDaemon } from './net/cluster-daemon.js';
import { iperfThroughput, iperfUnavailableReason } from './net/iperf.js';
import { loadPass, type PassSetup, type PassStats } from './net/load-pass.js';
import { createRateLimitedLink, linkUnavailableReason, type RateLimitedLink } from './net/netns.js';

const KEY = 'bench:remote';
/** Data-plane connections per load (the SDK's default), and iperf3's streams. */
const CONNECTIONS = 4;
/**
 * A's export TTL: long enough that the warm pass (right after the cold one) finds every export of the TP
 * size still there, short enough that the next repeat waits little for them to retire.
 */
const EXPORT_TTL = '5s';
const LINK_RATE = '2gbit';
const IPERF_SECONDS = 3;

/** What the printed numbers are. */
const LEGEND = [
  "wire = bytes moved between daemons as the load results report them (stats.wireBytes), checked against B's tensorcast_peer_bytes_received_total and, on the link, the veth counter",
  'amplification = source bytes read per view byte (stats.amplification); "source read" = A\'s tensorcast_load_bytes_read_total over the view bytes',
  'cold = no export on A when the pass starts (each load includes A preparing the view); warm = the same loads again at once (exports still on A)',
  'bytes ratio = canonical wire / derived wire; time ratio = canonical time / derived time (above 1: derived is faster)',
  "second load = B fetches views C already holds in memory (forced resident_view), against iperf3 -R with as many streams from C's host to B's",
];

/** Where the daemons of one part of the suite listen. */
interface Setting {
  readonly name: string;
  /** A and C (the sources): inside the namespace when there is a link. */
  readonly sourceHost: string;
  readonly ns: string | undefined;
  /** B (the destination) and the bench's clients. */
  readonly destHost: string;
  readonly link: RateLimitedLink | undefined;
}

/** What every part shares. */
interface Shared {
  readonly work: string;
  readonly modelDir: string;
  readonly tokenFile: string;
  readonly token: string;
  readonly into: Buffer;
  readonly repeats: number;
}

/** The host's 1-minute load against its cores: other work on the host skews these times. */
const loadLine = (): string => `load average ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores`;
const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
const sec = (s: number): string => `${(s * 1000).toFixed(0)} ms`;

/** One line saying everything a pass measured. */
function describe(setting: Setting, label: string, p: PassStats): void {
  const perRequest = p.sourceRequests > 0 ? p.sourceRequests : 1;
  console.log(
    [
      `remote  ${setting.name}, ${label}: ${sec(p.seconds)} for ${mb(p.viewBytes)} of views (${(p.viewBytes / p.seconds / 1e9).toFixed(2)} GB/s)`,
      `wire ${mb(p.wireBytes)} reported, ${mb(p.peerReceived)} by B's peer-bytes metric${p.linkBytes === undefined ? '' : `, ${mb(p.linkBytes)} crossed the link (headers and control included)`}`,
      `amplification ${p.amplification.toFixed(2)} reported, source read ${(p.sourceRead / p.viewBytes).toFixed(2)} bytes per view byte`,
      `source served ${p.sourceRequests} LOADs (${(p.wireBytes / perRequest / 2 ** 20).toFixed(2)} MiB, ${sec(p.sourceRequestSeconds / perRequest)} each)`,
      `CPU s: source ${p.cpu.source.toFixed(2)}, B ${p.cpu.destination.toFixed(2)}, bench client ${p.cpu.client.toFixed(2)}`,
      `route ${[...p.routes].join('/')}${p.fallbacks.size > 0 ? ` fallback ${[...p.fallbacks].join('/')}` : ''}`,
    ].join('; '),
  );
}

/** Resolves once `a` holds no export (so the next derived-view load prepares it anew). */
async function exportsRetired(a: ClusterDaemon, token: string): Promise<void> {
  const until = Date.now() + 60_000;
  while (metric(await a.metrics(token), 'tensorcast_export_entries') > 0) {
    if (Date.now() > until) throw new Error('bench remote: the exports on A did not retire within 60 s');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The fastest of `passes`. */
const fastest = (passes: readonly PassStats[]): PassStats => passes.reduce((a, b) => (b.seconds < a.seconds ? b : a));

/** Checks that every route delivered the same bytes for a rank; prints what differs. */
class ByteCheck {
  private readonly seen = new Map<string, { hash: string; route: string }>();
  mismatches = 0;

  add(tp: number, route: string, p: PassStats): void {
    p.hashes.forEach((hash, rank) => {
      const k = `TP=${tp} rank ${rank}`;
      const prev = this.seen.get(k);
      if (prev === undefined) this.seen.set(k, { hash, route });
      else if (prev.hash !== hash) {
        this.mismatches++;
        console.log(`remote  BYTES DIFFER: ${k} by ${route} is not what ${prev.route} delivered`);
      }
    });
  }
}

async function runSetting(s: Setting, sh: Shared): Promise<BenchResult[]> {
  const dir = join(sh.work, s.link === undefined ? 'loopback' : 'link');
  mkdirSync(dir);
  const base = { catalog: `sqlite://${join(dir, 'catalog.db')}`, tokenFile: sh.tokenFile };
  const daemons: ClusterDaemon[] = [];
  const clients: TensorcastClient[] = [];
  const out: BenchResult[] = [];
  const check = new ByteCheck();
  // Interrupted or failing half-way: no daemon outlives the bench (the namespace could not go otherwise).
  const killAll = (): void => {
    for (const d of daemons) d.child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const start = async (name: string, host: string, ns: string | undefined, extraArgs: readonly string[]) => {
    const d = await startClusterDaemon({ ...base, name, dataDir: join(dir, name), host, ...(ns === undefined ? {} : { ns }), extraArgs });
    daemons.push(d);
    const client = await connect({ url: d.controlUrl, token: sh.token });
    clients.push(client);
    return { d, client };
  };
  const stop = async (m: { d: ClusterDaemon; client: TensorcastClient }): Promise<void> => {
    await m.client.close();
    await m.d.stop();
    clients.splice(clients.indexOf(m.client), 1);
    daemons.splice(daemons.indexOf(m.d), 1);
  };
  console.log(`remote  ${s.name}: ${loadLine()} at the start`);
  try {
    const a = await start('a', s.sourceHost, s.ns, ['--import-root', sh.work, '--export-ttl', EXPORT_TTL]);
    await a.client.importModel(sh.modelDir, { key: KEY });
    const startB = () => start('b', s.destHost, undefined, ['--memory-budget', '2GiB']);
    const setupOf = (source: ClusterDaemon, b: { d: ClusterDaemon; client: TensorcastClient }): PassSetup => ({
      client: b.client,
      key: KEY,
      source,
      destination: b.d,
      token: sh.token,
      link: s.link,
      connections: CONNECTIONS,
      into: sh.into,
    });

    for (const tp of [4, 2]) {
      const cold: PassStats[] = [];
      const warm: PassStats[] = [];
      const canonical: PassStats[] = [];
      for (let rep = 0; rep < sh.repeats; rep++) {
        // Cold on both sides: no export on A, and a fresh B (B keeps its route decisions per view while in use).
        await exportsRetired(a.d, sh.token);
        const b = await startB();
        try {
          const setup = setupOf(a.d, b);
          // B's first load pays for its start (JIT, staging buffers, connections): a canonical one, which
          // leaves no export on A, takes that.
          await loadPass(setup, 1, 'canonical');
          const hash = rep === 0;
          cold.push(await loadPass(setup, tp, 'derived_view', hash));
          warm.push(await loadPass(setup, tp, 'derived_view', hash));
          canonical.push(await loadPass(setup, tp, 'canonical', hash));
          if (hash) {
            check.add(tp, 'canonical', canonical[rep]!);
            check.add(tp, 'derived_view (cold)', cold[rep]!);
            check.add(tp, 'derived_view (warm)', warm[rep]!);
          }
          console.log(
            `remote  ${s.name}, TP=${tp} repeat ${rep + 1}: derived cold ${sec(cold[rep]!.seconds)}, warm ${sec(warm[rep]!.seconds)}, canonical ${sec(canonical[rep]!.seconds)}`,
          );
        } finally {
          await stop(b);
        }
      }
      const [c, w, k] = [fastest(cold), fastest(warm), fastest(canonical)];
      describe(s, `TP=${tp} all ranks, derived_view (cold: A prepares each export)`, c);
      describe(s, `TP=${tp} all ranks, derived_view (warm: exports already on A)`, w);
      describe(s, `TP=${tp} all ranks, canonical (forced)`, k);
      const bytesRatio = k.wireBytes / c.wireBytes;
      // Exactly the view: as reported, as B counted it, and as A read it to build the exports.
      const exact =
        c.wireBytes === c.viewBytes &&
        w.wireBytes === w.viewBytes &&
        c.peerReceived === c.viewBytes &&
        Math.abs(c.amplification - 1) < 0.005 &&
        Math.abs(c.sourceRead / c.viewBytes - 1) < 0.005;
      out.push({
        suite: 'remote',
        case: `${s.name} TP=${tp}: wire bytes`,
        ours: 'derived_view',
        baseline: 'canonical (forced)',
        oursRate: c.viewBytes / c.wireBytes,
        baselineRate: k.viewBytes / k.wireBytes,
        ratio: bytesRatio,
        unit: 'view B/wire B',
        note: `ratio = canonical/derived wire bytes: ${mb(k.wireBytes)} / ${mb(c.wireBytes)} for ${mb(c.viewBytes)} of views; amplification derived ${c.amplification.toFixed(2)} (A read ${(c.sourceRead / c.viewBytes).toFixed(2)}), canonical ${k.amplification.toFixed(2)}`,
        target: 'derived wire = view bytes, amplification 1.00',
        met: exact,
      });
      for (const [label, d] of [
        ['cold export', c],
        ['warm export', w],
      ] as const) {
        const timeRatio = k.seconds / d.seconds;
        const gated = s.link !== undefined && label === 'cold export';
        out.push({
          suite: 'remote',
          case: `${s.name} TP=${tp}: time, ${label}`,
          ours: `derived_view, ${label === 'cold export' ? 'cold' : 'warm'}`,
          baseline: 'canonical (forced)',
          oursRate: d.viewBytes / d.seconds / 1e9,
          baselineRate: k.viewBytes / k.seconds / 1e9,
          ratio: timeRatio,
          unit: 'GB/s',
          note: `ratio = canonical/derived time: ${sec(k.seconds)} / ${sec(d.seconds)}; bytes ratio ${bytesRatio.toFixed(2)}, time/bytes ${(timeRatio / bytesRatio).toFixed(2)}`,
          ...(gated ? { target: `>= 0.8 x bytes ratio = ${(0.8 * bytesRatio).toFixed(2)}`, met: timeRatio >= 0.8 * bytesRatio } : {}),
        });
      }
    }

    // The second load: C (beside A) holds the views, B (across the link) fetches them as they are.
    const c = await start('c', s.sourceHost, s.ns, ['--memory-budget', '2GiB']);
    for (const tp of [1, 2, 4]) {
      for (let rank = 0; rank < tp; rank++) {
        const r = await c.client.load(KEY, { tp: { size: tp, rank }, into: sh.into });
        if (r.stats.route === 'local')
          console.log(`remote  note: C's first load of TP=${tp} rank ${rank} was local (expected a remote route)`);
      }
    }
    const b = await startB();
    try {
      const setup = setupOf(c.d, b);
      await loadPass(setup, 1, 'resident_view'); // warm-up, as above
      const ip =
        iperfUnavailableReason() === undefined
          ? await iperfThroughput({
              serverAddress: s.sourceHost,
              streams: CONNECTIONS,
              seconds: IPERF_SECONDS,
              ...(s.ns === undefined ? {} : { serverNs: s.ns }),
            }).catch((error: unknown) => {
              console.log(`remote  iperf3 failed (${String(error)}): the resident-view comparison has no baseline`);
              return undefined;
            })
          : undefined;
      for (const tp of [1, 2, 4]) {
        const passes: PassStats[] = [];
        for (let rep = 0; rep < sh.repeats; rep++) passes.push(await loadPass(setup, tp, 'resident_view', rep === 0));
        check.add(tp, 'resident_view', passes[0]!);
        const p = fastest(passes);
        describe(s, `TP=${tp} all ranks, resident_view from C`, p);
        if (![...p.sourceDaemons].every((id) => id === c.d.daemonId))
          console.log(`remote  note: resident_view was served by ${[...p.sourceDaemons].join(', ')}, not C`);
        if (ip === undefined) continue;
        const rate = p.viewBytes / p.seconds / 1e9;
        out.push({
          suite: 'remote',
          case: `${s.name} TP=${tp}: second load`,
          ours: 'resident_view C->B',
          baseline: `iperf3 -R -P ${CONNECTIONS}`,
          oursRate: rate,
          baselineRate: ip,
          ratio: rate / ip,
          unit: 'GB/s',
          note: `${mb(p.viewBytes)} in ${sec(p.seconds)} (load wall time, plan included) on B's client`,
          target: '>= 0.90',
          met: rate / ip >= 0.9,
        });
      }
    } finally {
      await stop(b);
    }
    console.log(`remote  ${s.name}: ${loadLine()} at the end`);
    if (check.mismatches > 0)
      console.log(`remote  ${s.name}: ${check.mismatches} rank(s) delivered different bytes by different routes (see above)`);
    return out;
  } finally {
    for (const client of clients) await client.close().catch(() => undefined);
    for (const d of daemons.reverse()) await d.stop();
    process.off('exit', killAll);
  }
}

/** Runs the remote suite. */
export async function remoteSuite(repeats: number): Promise<BenchResult[]> {
  const work = mkdtempSync(join(tmpdir(), 'tensorcast-bench-remote-'));
  // Ctrl-C: exit through the 'exit' listeners, which stop the daemons and remove the namespace.
  const interrupted = (): void => process.exit(130);
  const removeWork = (): void => rmSync(work, { recursive: true, force: true });
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  process.once('exit', removeWork);
  try {
    const modelDir = join(work, 'model');
    const total = await writeSyntheticModel(modelDir, DEMO_MODEL);
    const token = randomBytes(24).toString('hex');
    const tokenFile = join(work, 'cluster-token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const sh: Shared = { work, modelDir, tokenFile, token, into: Buffer.allocUnsafeSlow(total).fill(0), repeats };
    console.log(
      `remote: ${mb(total)} bf16 model; B loads from A (forced routes keep nothing on B); A's export TTL ${EXPORT_TTL}; ${CONNECTIONS} data connections; times are sums of the load calls' wall times, best of ${repeats}`,
    );
    for (const line of LEGEND) console.log(`remote: ${line}`);
    if (iperfUnavailableReason() !== undefined) console.log(`remote: ${iperfUnavailableReason()}: the resident-view comparison is skipped`);
    const out = await runSetting({ name: 'loopback', sourceHost: '127.0.0.1', destHost: '127.0.0.1', ns: undefined, link: undefined }, sh);
    const why = linkUnavailableReason();
    if (why !== undefined) {
      console.log(`remote: the rate-limited link part is skipped: ${why}`);
      return out;
    }
    let link: RateLimitedLink;
    try {
      link = createRateLimitedLink(LINK_RATE);
    } catch (error) {
      console.log(`remote: the rate-limited link part is skipped: ${(error as Error).message}`);
      return out;
    }
    console.log(`remote: A and C in namespace ${link.ns} (${link.nsAddress}), B at ${link.rootAddress}; both veth ends: ${link.qdisc}`);
    try {
      out.push(
        ...(await runSetting({ name: `${LINK_RATE} link`, sourceHost: link.nsAddress, destHost: link.rootAddress, ns: link.ns, link }, sh)),
      );
    } finally {
      link.close();
    }
    return out;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    process.off('exit', removeWork);
    removeWork();
  }
}
