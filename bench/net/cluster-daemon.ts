// A daemon of the remote suite's cluster: `tensorcast serve` as a child process, in the root namespace or
// inside a network namespace (`ip netns exec`), on a shared catalog and cluster token file; with what the
// suite reads off it: its /metrics and the CPU time its process used.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CLI_PATH } from '../../src/cli/spawn-daemon.js';
import { inNamespace } from './netns.js';

/** Options of {@link startClusterDaemon}. */
export interface ClusterDaemonOptions {
  readonly name: string;
  readonly dataDir: string;
  /** The shared catalog URL and cluster token file. */
  readonly catalog: string;
  readonly tokenFile: string;
  /** Address to listen on (control and data plane, free ports) and to advertise. */
  readonly host: string;
  /** Network namespace to run in (default: this one). */
  readonly ns?: string;
  readonly extraArgs?: readonly string[];
}

/** A started daemon. */
export interface ClusterDaemon {
  readonly name: string;
  readonly controlUrl: string;
  readonly daemonId: string;
  readonly child: ChildProcess;
  /** Its /metrics, parsed: `name{labels}` -> value. */
  metrics(token: string): Promise<Metrics>;
  /** User + system CPU seconds of the daemon's process so far. */
  cpuSeconds(): number;
  /** SIGTERM, then the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/** Prometheus samples by `name{labels}` (labels as printed). */
export type Metrics = ReadonlyMap<string, number>;

/** Sum of the samples of `name` whose labels contain every `filter` (e.g. `route="canonical"`). */
export function metric(m: Metrics, name: string, ...filter: string[]): number {
  let sum = 0;
  for (const [k, v] of m) {
    const brace = k.indexOf('{');
    const base = brace < 0 ? k : k.slice(0, brace);
    if (base === name && filter.every((f) => k.includes(f))) sum += v;
  }
  return sum;
}

function parseMetrics(text: string): Metrics {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

function cpuOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime), counted from the state field (3).
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/**
 * Runs `node <cli> serve` (inside `ns` when given; `ip netns exec` execs node, so the child is the daemon
 * itself) and resolves once it printed its ready line.
 *
 * @throws Error when it exits first or stays silent for 30 s
 */
export function startClusterDaemon(o: ClusterDaemonOptions): Promise<ClusterDaemon> {
  const args = [
    ...inNamespace(o.ns),
    process.execPath,
    CLI_PATH,
    'serve',
    '--data-dir',
    o.dataDir,
    '--listen',
    `${o.host}:0`,
    '--data-listen',
    `${o.host}:0`,
    '--advertise',
    o.host,
    '--catalog',
    o.catalog,
    '--token-file',
    o.tokenFile,
    '--log-level',
    'warn',
    ...(o.extraArgs ?? []),
  ];
  const env = { ...process.env, TENSORCAST_TOKEN: '', TENSORCAST_TOKEN_FILE: '', TENSORCAST_DAEMON: '' };
  const child = spawn(args[0]!, args.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bench remote: daemon ${o.name} was not ready in 30 s: ${err.slice(-2000)}`));
    }, 30_000);
    const early = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`bench remote: daemon ${o.name} exited with ${code} before it was ready: ${err.slice(-2000)}`));
    };
    child.once('exit', early);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^tensorcast ready (\S+) data (\S+) daemon (\S+)/m.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      child.off('exit', early);
      const controlUrl = m[1]!;
      resolve({
        name: o.name,
        controlUrl,
        daemonId: m[3]!,
        child,
        metrics: async (token) => {
          const res = await fetch(`${controlUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
          if (!res.ok) throw new Error(`bench remote: GET ${controlUrl}/metrics: HTTP ${res.status}`);
          return parseMetrics(await res.text());
        },
        cpuSeconds: () => cpuOf(child.pid),
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(kill);
        },
      });
    });
  });
}
