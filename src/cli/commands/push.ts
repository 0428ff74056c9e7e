// `tensorcast push KEY URL`: the daemon writes an artifact to a connector as a model directory (config and
// tokenizer files, the safetensors shards, model.safetensors.index.json last), which the reference
// libraries load after a plain copy to disk.

import type { Command } from 'commander';
import { tcError } from '../../core/errors.js';
import { formatBytes } from '../../core/strings.js';
import { ByteProgress } from '../progress.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';

interface PushFlags extends ClientFlags {
  readonly layout?: string;
  readonly tpSize?: string;
  readonly json?: boolean;
}

/** Registers `push`. */
export function registerPush(program: Command): void {
  withClientFlags(
    program
      .command('push')
      .description(
        'write an artifact to a connector as a model directory (the index last); the daemon writes it with the\n' +
          "credentials the URL carries (never printed or logged). file:// URLs must lie under the daemon's --import-root.",
      )
      .argument('<key>', 'a key (or an artifact id tc1:... / tcl:...)')
      .argument('<url>', 'the destination: file:///dir, redis://[user:pass@]host:port/<model>[?db=N], s3://bucket/prefix[?endpoint=...]')
      .option('--layout <layout>', 'only the default (a model directory) for now')
      .option('--tp-size <n>', 'with --layout sglang (not available yet)')
      .option('--json', 'print one JSON object'),
  ).action(async (key: string, url: string, flags: PushFlags) => {
    if ((flags.layout !== undefined && flags.layout !== 'directory') || flags.tpSize !== undefined) {
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `--layout ${flags.layout ?? '(none)'}${flags.tpSize === undefined ? '' : ` --tp-size ${flags.tpSize}`}: only the model-directory layout can be pushed for now`,
        { details: { reason: 'unsupported_layout' } },
      );
    }
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
  });
}
