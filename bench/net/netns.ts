// A rate-limited link for the remote suite: a network namespace joined to the root namespace by a veth
// pair, with a rate limit on both ends (netem, else tbf when the kernel has no netem), so bytes on the
// wire cost time as they do between hosts.
// Needs root and iproute2; removed on close, and on process exit when the bench fails half-way.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A namespace, the veth pair into it and the addresses of both ends. */
export interface RateLimitedLink {
  /** Name of the namespace (`ip netns exec <ns> ...`). */
  readonly ns: string;
  /** Address of the end inside the namespace. */
  readonly nsAddress: string;
  /** Address of the end in the root namespace. */
  readonly rootAddress: string;
  /** The veth in the root namespace (its counters: bytes that crossed the link). */
  readonly rootDevice: string;
  readonly rate: string;
  /** The qdisc that limits the rate, as added (`netem rate 2gbit` or `tbf rate 2gbit ...`). */
  readonly qdisc: string;
  /** Bytes received from / sent into the namespace over the link so far (root end's counters, headers included). */
  counters(): { readonly rxBytes: number; readonly txBytes: number };
  /** Removes the namespace and the veth pair (idempotent). */
  close(): void;
}

/** Why the link cannot be made here, or undefined when it can (root, `ip` and `tc` on PATH). */
export function linkUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  for (const tool of ['ip', 'tc']) {
    const r = spawnSync(tool, ['-V'], { stdio: 'ignore' });
    if (r.error !== undefined || r.status !== 0) return `'${tool}' (iproute2) is not available`;
  }
  return undefined;
}

function run(args: readonly string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`bench remote: '${args.join(' ')}' failed: ${r.error?.message ?? r.stderr.trim()}`);
  }
}

/**
 * Creates namespace `tcb<pid>-ns` with a veth pair (10.213.77.1 inside, 10.213.77.2 outside) limited to
 * `rate` each way. Throws (after cleaning up) when a step fails.
 *
 * @example const link = createRateLimitedLink('2gbit'); try { ... } finally { link.close(); }
 */
export function createRateLimitedLink(rate: string): RateLimitedLink {
  const tag = `tcb${process.pid}`;
  const ns = `${tag}-ns`;
  const inner = `${tag}a`;
  const outer = `${tag}b`;
  const nsAddress = '10.213.77.1';
  const rootAddress = '10.213.77.2';
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    process.off('exit', close);
    // Deleting the namespace destroys the end inside it and with it the pair; the outer end is removed
    // explicitly in case the pair never made it into the namespace.
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    spawnSync('ip', ['link', 'del', outer], { stdio: 'ignore' });
  };
  process.once('exit', close);
  let qdisc = ['netem', 'rate', rate];
  try {
    run(['ip', 'netns', 'add', ns]);
    run(['ip', 'link', 'add', outer, 'type', 'veth', 'peer', 'name', inner]);
    run(['ip', 'link', 'set', inner, 'netns', ns]);
    run(['ip', 'addr', 'add', `${rootAddress}/30`, 'dev', outer]);
    run(['ip', 'link', 'set', outer, 'up']);
    const inNs = (args: readonly string[]): void => run(['ip', 'netns', 'exec', ns, ...args]);
    inNs(['ip', 'link', 'set', 'lo', 'up']);
    inNs(['ip', 'addr', 'add', `${nsAddress}/30`, 'dev', inner]);
    inNs(['ip', 'link', 'set', inner, 'up']);
    try {
      run(['tc', 'qdisc', 'add', 'dev', outer, 'root', ...qdisc]);
    } catch {
      // No sch_netem in this kernel: a token bucket of the same rate (burst above rate/HZ, queue of 20 ms).
      qdisc = ['tbf', 'rate', rate, 'burst', '512kb', 'latency', '20ms'];
      run(['tc', 'qdisc', 'add', 'dev', outer, 'root', ...qdisc]);
    }
    inNs(['tc', 'qdisc', 'add', 'dev', inner, 'root', ...qdisc]);
  } catch (error) {
    close();
    throw error;
  }
  const stat = (name: string): number => Number(readFileSync(`/sys/class/net/${outer}/statistics/${name}`, 'utf8'));
  return {
    ns,
    nsAddress,
    rootAddress,
    rootDevice: outer,
    rate,
    qdisc: qdisc.join(' '),
    counters: () => ({ rxBytes: stat('rx_bytes'), txBytes: stat('tx_bytes') }),
    close,
  };
}

/** The command prefix that runs a program inside `ns` (empty for the root namespace). */
export function inNamespace(ns: string | undefined): string[] {
  return ns === undefined ? [] : ['ip', 'netns', 'exec', ns];
}
