// `tensorcast push KEY URL [--layout directory|sglang --tp-size N]`: writes an artifact to a connector.
// The default layout is a model directory written by the daemon (config and tokenizer files, the
// safetensors shards, model.safetensors.index.json last), which the reference libraries load after a plain
// copy to disk. `--layout sglang` writes the per-rank Redis layout SGLang's RemoteModelLoader reads
// (src/client/sglang-layout.ts). Progress on a TTY.

import type { Command } from 'commander';
import { pushSglangLayout } from '../../client/sglang-layout.js';
import { tcError } from '../../core/errors.js';
import { formatBytes } from '../../core/strings.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';
import { tuningFromFlags, withConnectorFlags, type ConnectorFlags } from '../connector-flags.js';
import { ByteProgress } from '../progress.js';
import { parseIntegerFlag } from '../selection.js';
import { transportFromFlags } from './load.js';

interface PushFlags extends ClientFlags, ConnectorFlags {
  readonly layout?: string;
  readonly tpSize?: string;
  readonly shm?: boolean;
  readonly json?: boolean;
}

/** `directory` (a model directory; `plain` is the same) or `sglang`. */
const LAYOUTS = ['directory', 'plain', 'sglang'] as const;

/** Registers `push`. */
export function registerPush(program: Command): void {
  withConnectorFlags(
    withClientFlags(
      program
        .command('push')
        .description(
          'write an artifact to a connector: a model directory (the index last; the daemon writes it with the ' +
            "credentials the URL carries, never printed or logged; file:// URLs must lie under the daemon's --import-root), " +
            "or with --layout sglang SGLang's per-rank Redis layout (<model>/keys/rank_<r>/<param>, <model>/files/<name>)",
        )
        .argument('<key>', 'a key (or an artifact id tc1:... / tcl:...)')
        .argument('<url>', 'the destination: file:///dir, redis://[user:pass@]host:port/<model>[?db=N], s3://bucket/prefix[?endpoint=...]')
        .option('--layout <layout>', 'directory (default: a model directory) or sglang (per-rank parameters, Redis only)', 'directory')
        .option('--tp-size <n>', 'sglang: the tensor-parallel size SGLang will run with (ranks 0..n-1 are written)')
        .option('--shm', 'sglang, same host: receive the ranks through shared memory instead of TCP')
        .option('--json', 'print the result as one JSON object'),
    ),
  ).action(async (key: string, url: string, flags: PushFlags) => {
    const layout = LAYOUTS.find((l) => l === flags.layout);
    if (layout === undefined) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `--layout: expected directory or sglang, got '${String(flags.layout)}'`);
    }
    if (layout !== 'sglang' && (flags.tpSize !== undefined || flags.shm === true)) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', '--tp-size and --shm go with --layout sglang; a model directory holds the whole model');
    }
    if (layout === 'sglang' && flags.tpSize === undefined)
      throw tcError('TC_ERR_INVALID_ARGUMENT', '--layout sglang needs --tp-size N (the TP size SGLang runs with)');
    const tuning = tuningFromFlags(flags);
    // SGLang's keys are plain values (SGLang GETs them whole): nothing is chunked.
    if (layout === 'sglang' && tuning.chunkBytes !== undefined)
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        '--chunk-bytes does not apply to --layout sglang (its keys are plain values, never chunked)',
      );
    const client = await clientFrom(flags);
    let progress: ByteProgress | undefined;
    const onProgress = (done: number, total: number): void => {
      if (total === 0) return;
      progress ??= new ByteProgress('push', total);
      progress.update(done);
    };
    try {
      if (layout !== 'sglang') {
        const r = await client.push(key, url, { onProgress, ...tuning });
        progress?.stop();
        if (flags.json === true) process.stdout.write(`${JSON.stringify(r)}\n`);
        else
          process.stderr.write(`pushed ${r.artifactId}: ${r.objects.length} objects, ${formatBytes(r.totalBytes)} to ${r.destination}\n`);
        return;
      }
      const tpSize = parseIntegerFlag(flags.tpSize!, '--tp-size', 1);
      const transport = transportFromFlags({ ...(flags.shm === undefined ? {} : { shm: flags.shm }) });
      const info = await pushSglangLayout(client, key, url, {
        tpSize,
        transport,
        onProgress,
        ...(tuning.concurrency === undefined ? {} : { concurrency: tuning.concurrency }),
      });
      progress?.stop();
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify({ key, layout, ...info })}\n`);
      } else {
        process.stdout.write(
          `pushed ${key} to ${info.url} (sglang layout, tp ${tpSize}): ${info.keys} parameter keys, ${formatBytes(info.bytes)}, ` +
            `${info.files.length} files${info.removed > 0 ? `; ${info.removed} old keys removed` : ''}\n`,
        );
        if (info.skippedFiles.length > 0) {
          process.stderr.write(`not pushed (not UTF-8 text, which SGLang stores files as): ${info.skippedFiles.join(', ')}\n`);
        }
      }
    } finally {
      progress?.stop();
      await client.close();
    }
  });
}
