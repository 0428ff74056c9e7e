// `tensorcast push KEY URL`: the daemon writes an artifact to a connector as a model directory (config and
// tokenizer files, the safetensors shards, model.safetensors.index.json last), which the reference
// libraries load after a plain copy to disk. `--layout sglang --tp-size N` instead writes it to Redis in the
// per-rank layout SGLang's RemoteModelLoader reads (src/client/sglang-layout.ts). Progress on a TTY.

import type { Command } from 'commander';
import { pushSglangLayout } from '../../client/sglang-layout.js';
import { tcError } from '../../core/errors.js';
import { formatBytes } from '../../core/strings.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';
import { ByteProgress } from '../progress.js';
import { parseIntegerFlag } from '../selection.js';
import { transportFromFlags } from './load.js';

interface PushFlags extends ClientFlags {
  readonly layout?: string;
  readonly tpSize?: string;
  readonly shm?: boolean;
  readonly json?: boolean;
}

const LAYOUTS = ['plain', 'sglang'] as const;

/** Registers `push`. */
export function registerPush(program: Command): void {
  withClientFlags(
    program
      .command('push')
      .description(
        "write an artifact to a connector URL; --layout sglang writes SGLang's per-rank Redis layout " +
          '(<model>/keys/rank_<r>/<param>, <model>/files/<name>) for `--load-format remote`',
      )
      .argument('<key>', 'a key (or an artifact id tc1:... / tcl:...)')
      .argument('<url>', 'connector URL; for --layout sglang: redis://[user:pass@]host:port/<model>[?db=N] or rediss://')
      .option('--layout <layout>', 'plain (a model directory) or sglang (per-rank parameters, Redis only)', 'plain')
      .option('--tp-size <n>', 'sglang: the tensor-parallel size SGLang will run with (ranks 0..n-1 are written)')
      .option('--shm', 'same host: receive the ranks through shared memory instead of TCP')
      .option('--json', 'print the result as one JSON object'),
  ).action(async (key: string, url: string, flags: PushFlags) => {
    const layout = LAYOUTS.find((l) => l === flags.layout);
    if (layout === undefined) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `--layout: expected ${LAYOUTS.join(' or ')}, got '${String(flags.layout)}'`);
    }
    if (layout === 'plain') {
      if (flags.tpSize !== undefined) throw tcError('TC_ERR_INVALID_ARGUMENT', '--tp-size goes with --layout sglang only');
      await pushDirectory(key, url, flags);
      return;
    }
    if (flags.tpSize === undefined)
      throw tcError('TC_ERR_INVALID_ARGUMENT', '--layout sglang needs --tp-size N (the TP size SGLang runs with)');
    const tpSize = parseIntegerFlag(flags.tpSize, '--tp-size', 1);
    const transport = transportFromFlags({ ...(flags.shm === undefined ? {} : { shm: flags.shm }) });
    const client = await clientFrom(flags);
    let progress: ByteProgress | undefined;
    try {
      const info = await pushSglangLayout(client, key, url, {
        tpSize,
        transport,
        onProgress: (done, total) => {
          progress ??= new ByteProgress('push', total);
          progress.update(done);
        },
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

/** The plain layout: the daemon writes the model directory (with the credentials the URL carries, never printed). */
async function pushDirectory(key: string, url: string, flags: PushFlags): Promise<void> {
  const client = await clientFrom(flags);
  let progress: ByteProgress | undefined;
  try {
    const r = await client.push(key, url, {
      onProgress: (done, total) => {
        if (total === 0) return;
        progress ??= new ByteProgress('push', total);
        progress.update(done);
      },
    });
    progress?.stop();
    if (flags.json === true) process.stdout.write(`${JSON.stringify(r)}\n`);
    else process.stderr.write(`pushed ${r.artifactId}: ${r.objects.length} objects, ${formatBytes(r.totalBytes)} to ${r.destination}\n`);
  } finally {
    progress?.stop();
    await client.close();
  }
}
