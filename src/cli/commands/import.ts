// `tensorcast import <file-or-model-dir | connector-URL> --key KEY [--lazy]`: stores a model in the daemon
// and prints its artifact id. A connector URL (file://, redis://, rediss://, s3://) is pulled by the daemon
// itself, or with --lazy registered from its headers (its bytes stay in the connector).

import type { Command } from 'commander';
import { isConnectorUrl, type ImportInfo } from '../../client/tensorcast-client.js';
import { tcError } from '../../core/errors.js';
import { validateKey } from '../../core/keys.js';
import { formatBytes } from '../../core/strings.js';
import { ByteProgress } from '../progress.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';
import { tuningFromFlags, withConnectorFlags, type ConnectorFlags } from '../connector-flags.js';

interface ImportFlags extends ClientFlags, ConnectorFlags {
  readonly key?: string;
  readonly via?: 'auto' | 'path' | 'upload';
  readonly lazy?: boolean;
  readonly json?: boolean;
}

/** The line printed on stderr after an import. */
function summary(r: ImportInfo): string {
  const what = r.lazy === true ? (r.created ? 'registered lazily' : 'already registered') : r.created ? 'imported' : 'already stored';
  const from = r.source === undefined ? `via ${r.via}` : `from ${r.source}`;
  return `${what}: ${r.tensorCount} tensors, ${formatBytes(r.totalBytes)} (${from})${r.key ? `, key ${r.key.key} v${r.key.version}` : ''}\n`;
}

/** Registers `import`. */
export function registerImport(program: Command): void {
  withConnectorFlags(
    withClientFlags(
      program
        .command('import')
        .description(
          'store a model in the daemon (config and tokenizer files kept with it); prints the artifact id.\n' +
            'A connector URL (file:///dir, redis://[user:pass@]host:port/<model>, s3://bucket/prefix?endpoint=...) is\n' +
            'read by the daemon with the credentials the URL carries; they are never printed, logged or listed.',
        )
        .argument('<path>', 'a .safetensors file, a model directory, or a connector URL')
        .option('--key <key>', 'bind this key to the artifact (e.g. model:llama-8b:v3)')
        .option('--via <how>', 'paths: auto (in place when the daemon may read the path, else upload), path, or upload', 'auto')
        .option('--lazy', 'connector URLs: read only the headers; loads read the bytes they need from the connector')
        .option('--json', 'print one JSON object'),
    ),
  ).action(async (path: string, flags: ImportFlags) => {
    if (flags.key !== undefined) validateKey(flags.key, '--key');
    const url = isConnectorUrl(path);
    if (flags.lazy === true && !url)
      throw tcError('TC_ERR_INVALID_ARGUMENT', '--lazy needs a connector URL (file://, redis://, s3://), not a path');
    const tuning = tuningFromFlags(flags);
    if (!url && Object.keys(tuning).length > 0)
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        '--chunk-bytes and --concurrency go with a connector URL (file://, redis://, s3://), not a path',
      );
    const client = await clientFrom(flags);
    let progress: ByteProgress | undefined;
    let phase: string | undefined;
    try {
      const r = await client.importModel(path, {
        ...(flags.key === undefined ? {} : { key: flags.key }),
        ...(url ? { lazy: flags.lazy === true, ...tuning } : { via: flags.via ?? 'auto' }),
        onProgress: (done, total, p) => {
          if (p !== undefined && p !== phase) {
            progress?.stop();
            progress = undefined;
            phase = p;
          }
          if (total === 0) return;
          progress ??= new ByteProgress(url ? (phase === 'hash' ? 'hash' : 'pull') : 'upload', total);
          progress.update(done);
        },
      });
      progress?.stop();
      if (flags.json === true) process.stdout.write(`${JSON.stringify(r)}\n`);
      else {
        process.stdout.write(`${r.artifactId}\n`);
        process.stderr.write(summary(r));
      }
    } finally {
      progress?.stop();
      await client.close();
    }
  });
}
