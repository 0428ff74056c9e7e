// iperf3 as the remote suite's baseline: the TCP throughput the same path gives with the same number of
// streams, the server possibly inside a network namespace, data flowing from the server to the client.

import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { inNamespace } from './netns.js';

/** Why iperf3 cannot be used (not installed), or undefined. */
export function iperfUnavailableReason(): string | undefined {
  const r = spawnSync('iperf3', ['--version'], { stdio: 'ignore' });
  return r.error !== undefined || r.status !== 0 ? 'iperf3 is not installed (apt-get install iperf3)' : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

/** Where iperf3 runs. */
export interface IperfPath {
  /** Address the server listens on (and the client connects to). */
  readonly serverAddress: string;
  /** Namespace of the server (default: this one); the client runs here. */
  readonly serverNs?: string;
  readonly streams: number;
  readonly seconds: number;
}

/** What one iperf3 run measured, in GB/s received. */
export interface IperfRates {
  /** Over the whole run. */
  readonly mean: number;
  /** Of its fastest interval (iperf3 reports one per second): comparable to a best-of-N measurement. */
  readonly bestInterval: number;
}

/**
 * Received throughput in GB/s of `iperf3 -R -P streams` (the server sends, as a source daemon does).
 *
 * @throws Error when iperf3 fails or prints no result
 */
export async function iperfThroughput(p: IperfPath): Promise<number> {
  return (await iperfRates(p)).mean;
}

/**
 * {@link iperfThroughput}, with the rate of the fastest one-second interval as well.
 *
 * @throws Error when iperf3 fails or prints no result
 */
export async function iperfRates(p: IperfPath): Promise<IperfRates> {
  const port = await freePort();
  const args = [...inNamespace(p.serverNs), 'iperf3', '-s', '-1', '-B', p.serverAddress, '-p', String(port)];
  const server = spawn(args[0]!, args.slice(1), { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 400));
    const c = spawnSync(
      'iperf3',
      ['-c', p.serverAddress, '-p', String(port), '-R', '-P', String(p.streams), '-t', String(p.seconds), '-J'],
      { encoding: 'utf8', timeout: (p.seconds + 20) * 1000 },
    );
    const j = JSON.parse(c.stdout) as {
      end?: { sum_received?: { bits_per_second: number } };
      intervals?: { sum: { bits_per_second: number } }[];
      error?: string;
    };
    if (j.end?.sum_received === undefined) throw new Error(`iperf3: ${j.error ?? c.stderr}`);
    const mean = j.end.sum_received.bits_per_second / 8 / 1e9;
    const best = Math.max(mean, ...(j.intervals ?? []).map((i) => i.sum.bits_per_second / 8 / 1e9));
    return { mean, bestInterval: best };
  } finally {
    if (server.exitCode === null) server.kill();
  }
}
