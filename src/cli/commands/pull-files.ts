// `tensorcast pull-files URL DIR [--allow GLOB]... [--ignore GLOB]...`: copies a model's config and
// tokenizer files (or any files the patterns pick) from a connector into a local directory, each file
// atomically; no daemon involved. Progress on a TTY.

import type { Command } from 'commander';
import { pullFiles } from '../../client/pull-files.js';
import { formatBytes } from '../../core/strings.js';
import { ByteProgress } from '../progress.js';
import { tuningFromFlags, withConnectorFlags, type ConnectorFlags } from '../connector-flags.js';

interface PullFilesFlags extends ConnectorFlags {
  readonly allow?: string[];
  readonly ignore?: string[];
  readonly json?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Registers `pull-files`. */
export function registerPullFiles(program: Command): void {
  withConnectorFlags(
    program
      .command('pull-files')
      .description(
        'copy files of a model in a connector (file://, redis://, s3://) into DIR, each one complete or not at all; ' +
          'by default every file but the weights (*.safetensors, *.bin, *.pt, *.pth)',
      )
      .argument(
        '<url>',
        'connector URL: file:///dir, redis://[user:pass@]host:port/<model>[?db=N], rediss://..., s3://bucket/prefix[?endpoint=...]',
      )
      .argument('<dir>', 'local directory to write into (created when missing)')
      .option('--allow <glob>', "pull only files matching (repeatable; '*.json', 'tokenizer/**'); weights then need no other flag", collect)
      .option('--ignore <glob>', 'skip files matching (repeatable)', collect)
      .option('--json', 'print the result as one JSON object')
      .addHelpText(
        'after',
        "\nA pattern without '/' matches a file's base name, one with '/' its whole key. `--allow '*'` pulls everything, weights included.",
      ),
  ).action(async (url: string, dir: string, flags: PullFilesFlags) => {
    const tuning = tuningFromFlags(flags);
    let progress: ByteProgress | undefined;
    try {
      const info = await pullFiles(url, {
        dest: dir,
        ...(flags.allow === undefined ? {} : { allow: flags.allow }),
        ...(flags.ignore === undefined ? {} : { ignore: flags.ignore }),
        connector: tuning,
        onProgress: (done, total) => {
          progress ??= new ByteProgress('pull-files', total);
          progress.update(done);
        },
      });
      progress?.stop();
      if (flags.json === true) process.stdout.write(`${JSON.stringify(info)}\n`);
      else process.stdout.write(`pulled ${info.files.length} files (${formatBytes(info.bytes)}) from ${info.url} to ${info.dest}\n`);
    } finally {
      progress?.stop();
    }
  });
}
