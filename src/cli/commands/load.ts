// `tensorcast load KEY --out FILE.safetensors`: the same selection and output as `slice`, served by the
// daemon over TCP (default) or shared memory (--shm). Prints the route and stats.

import type { Command } from 'commander';
import { performance } from 'node:perf_hooks';
import { formatBytes, parseDuration } from '../../core/strings.js';
import { ROUTE_CHOICES, type RouteChoice } from '../../protocol/route-kinds.js';
import { parseIntegerFlag, selectionFromFlags, type SelectionFlags } from '../selection.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';
import { tuningFromFlags, withConnectorFlags, type ConnectorFlags } from '../connector-flags.js';
import { writeOutputFile } from '../output-file.js';
import { tcError } from '../../core/errors.js';
import type { LoadPlan, TensorcastClient, Transport } from '../../client/tensorcast-client.js';
import type { Transfer } from '../../client/transfers.js';
import { openUrlModel } from '../../client/url-model.js';
import { isConnectorUrl } from '../../connectors/read-policy.js';
import type { Selection } from '../../layout/selection.js';

interface LoadFlags extends SelectionFlags, ClientFlags, ConnectorFlags {
  readonly out: string;
  readonly shm?: boolean;
  readonly files?: boolean;
  readonly json?: boolean;
  readonly connections?: string;
  readonly timeout?: string;
  readonly route?: string;
}

/** The route choice of `--route`. @throws TC_ERR_INVALID_ARGUMENT */
export function routeFromFlag(value: string | undefined): RouteChoice {
  if (value === undefined) return 'auto';
  const r = ROUTE_CHOICES.find((c) => c === value);
  if (r === undefined) throw tcError('TC_ERR_INVALID_ARGUMENT', `--route: expected one of ${ROUTE_CHOICES.join(', ')}, got '${value}'`);
  return r;
}

/** The deadline of `--timeout`: a duration ("30s", "2m", "500ms") or milliseconds. @throws TC_ERR_INVALID_ARGUMENT */
export function timeoutFromFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0)
    throw tcError('TC_ERR_INVALID_ARGUMENT', `--timeout: expected a duration like 30s, 2m or 500ms, got '${value}'`);
  return ms;
}

/** The transport the flags ask for. @throws TC_ERR_INVALID_ARGUMENT for --shm with --files */
export function transportFromFlags(flags: { readonly shm?: boolean; readonly files?: boolean }): Transport {
  if (flags.shm === true && flags.files === true)
    throw tcError('TC_ERR_INVALID_ARGUMENT', '--shm and --files are two different transports; give one');
  return flags.shm === true ? 'shm' : flags.files === true ? 'files' : 'tcp';
}

/** Registers `load`. */
export function registerLoad(program: Command): void {
  withConnectorFlags(
    withClientFlags(
      program
        .command('load')
        .description('load a selection of an artifact from the daemon into a safetensors file')
        .argument(
          '<key>',
          'a key, an artifact id (tc1:...), or a connector URL (file://, redis://, s3://: loads straight from it, no daemon)',
        )
        .requiredOption('--out <file>', 'output .safetensors file')
        .option('--tensors <names>', 'comma-separated tensor names to keep')
        .option('--view <json>', 'view JSON {"<tensor>": [[start, length] | null, ...]} or @file')
        .option('--tp-size <n>', 'tensor-parallel size')
        .option('--tp-rank <r>', 'tensor-parallel rank')
        .option('--tp-layout <layout>', "auto (built-in rules, the artifact's config.json) or a rules JSON file")
        .option('--shm', 'same host: receive through shared memory instead of TCP')
        .option('--files', "same host: read the daemon's artifact files in place and slice here (no copy by the daemon)")
        .option('--connections <n>', 'data-plane connections (default 4)')
        .option('--timeout <duration>', 'deadline for the whole load: 30s, 2m, 500ms (a bare number is milliseconds)')
        .option('--route <route>', 'auto (default), resident_view, derived_view or canonical: force a remote route (diagnosis)')
        .option('--json', 'print the result as one JSON object'),
    ),
  ).action(async (key: string, flags: LoadFlags) => {
    const selection = await selectionFromFlags(flags);
    const fromUrl = isConnectorUrl(key);
    if (fromUrl && (flags.shm === true || flags.files === true || flags.route !== undefined || flags.connections !== undefined)) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', '--shm, --files, --route and --connections go with a daemon; a connector URL is read here');
    }
    const tuning = tuningFromFlags(flags);
    if (!fromUrl && Object.keys(tuning).length > 0) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', '--chunk-bytes and --concurrency go with a connector URL (file://, redis://, s3://)');
    }
    // A connector URL loads straight from the connector, here, without a daemon or an import.
    const client = fromUrl ? undefined : await clientFrom(flags);
    try {
      const t0 = performance.now();
      const timeoutMs = timeoutFromFlag(flags.timeout);
      const route = routeFromFlag(flags.route);
      const connections = flags.connections === undefined ? undefined : parseIntegerFlag(flags.connections, '--connections', 1);
      // The deadline covers planning and the transfer.
      const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
      const transport = fromUrl ? 'connector' : transportFromFlags(flags);
      const { plan, transfer } =
        client === undefined
          ? await withTimeout(openUrlModel(key, selection, tuning), timeoutMs, `load ${key}`)
          : await planAndOpen(client, key, selection, { transport: transportFromFlags(flags), route, deadline, connections });
      const t1 = performance.now();
      try {
        await writeOutputFile(
          plan.tensors,
          plan.totalBytes,
          flags.out,
          plan.metadata,
          (s, e, d) => withTimeout(transfer.read(s, e, d), deadline === undefined ? undefined : deadline - Date.now(), `load ${key}`),
          `load ${key}`,
        );
      } finally {
        await transfer.close();
      }
      const t2 = performance.now();
      const bytes = plan.totalBytes;
      const remote = transfer.remote();
      const result = {
        key,
        artifactId: plan.artifactId,
        viewId: plan.viewId ?? null,
        out: flags.out,
        tensors: plan.tensors.length,
        bytes,
        route: transfer.route(),
        transport,
        source: transfer.source(),
        fallback: remote.fallback,
        sourceDaemon: remote.sourceDaemon,
        wireBytes: remote.wireBytes,
        amplification: remote.readBytes > 0 && bytes > 0 ? remote.readBytes / bytes : null,
        connections: transfer.connections,
        timesMs: { plan: t1 - t0, transfer: t2 - t1, total: t2 - t0 },
        gbps: bytes / Math.max(1e-9, (t2 - t1) / 1000) / 1e9,
      };
      if (flags.json === true) process.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        process.stdout.write(
          `wrote ${flags.out}: ${result.tensors} tensors, ${formatBytes(bytes)} | route ${result.route} via ${result.transport} (${result.source})` +
            (result.sourceDaemon === null ? '' : ` from ${result.sourceDaemon}, ${formatBytes(result.wireBytes)} on the wire`) +
            (result.fallback === null ? '' : `, fallback ${result.fallback}`) +
            (result.amplification === null ? '' : `, amplification ${result.amplification.toFixed(2)}`) +
            ` | ` +
            `${result.timesMs.transfer.toFixed(1)} ms, ${result.gbps.toFixed(2)} GB/s\n`,
        );
      }
    } finally {
      await client?.close();
    }
  });
}

/** Plans `key` on the daemon and opens its transfer, both within the deadline. */
async function planAndOpen(
  client: TensorcastClient,
  key: string,
  selection: Selection,
  o: { transport: Transport; route: RouteChoice; deadline: number | undefined; connections: number | undefined },
): Promise<{ plan: LoadPlan; transfer: Transfer }> {
  const left = (): number | undefined => (o.deadline === undefined ? undefined : Math.max(1, o.deadline - Date.now()));
  const plan = await client.plan(key, selection, left());
  const timeoutMs = left();
  const transfer = await client.openTransfer(plan, {
    transport: o.transport,
    route: o.route,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(o.connections === undefined ? {} : { connections: o.connections }),
  });
  return { plan, transfer };
}

/** `work`, or TC_ERR_TIMEOUT after `ms` (no bound when undefined). */
function withTimeout<T>(work: Promise<T>, ms: number | undefined, what: string): Promise<T> {
  if (ms === undefined) return work;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(tcError('TC_ERR_TIMEOUT', `${what}: the deadline passed`)), Math.max(0, ms));
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
