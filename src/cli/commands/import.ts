// `tensorcast import <file-or-model-dir> --key KEY`: stores a model in the daemon and prints its artifact id.

import type { Command } from 'commander';
import { validateKey } from '../../core/keys.js';
import { formatBytes } from '../../core/strings.js';
import { ByteProgress } from '../progress.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';

interface ImportFlags extends ClientFlags {
  readonly key?: string;
  readonly via?: 'auto' | 'path' | 'upload';
  readonly json?: boolean;
}

/** Registers `import`. */
export function registerImport(program: Command): void {
  withClientFlags(
    program
      .command('import')
      .description('store a model in the daemon (config and tokenizer files kept with it); prints the artifact id')
      .argument('<path>', 'a .safetensors file or a model directory')
      .option('--key <key>', 'bind this key to the artifact (e.g. model:llama-8b:v3)')
      .option('--via <how>', 'auto (in place when the daemon may read the path, else upload), path, or upload', 'auto')
      .option('--json', 'print one JSON object'),
  ).action(async (path: string, flags: ImportFlags) => {
    if (flags.key !== undefined) validateKey(flags.key, '--key');
    const client = await clientFrom(flags);
    let progress: ByteProgress | undefined;
    try {
      const r = await client.importModel(path, {
        ...(flags.key === undefined ? {} : { key: flags.key }),
        via: flags.via ?? 'auto',
        onProgress: (sent, total) => {
          progress ??= new ByteProgress(`upload ${path}`, total);
          progress.update(sent);
        },
      });
      progress?.stop();
      if (flags.json === true) process.stdout.write(`${JSON.stringify(r)}\n`);
      else {
        process.stdout.write(`${r.artifactId}\n`);
        process.stderr.write(
          `${r.created ? 'imported' : 'already stored'}: ${r.tensorCount} tensors, ${formatBytes(r.totalBytes)} (via ${r.via})${r.key ? `, key ${r.key.key} v${r.key.version}` : ''}\n`,
        );
      }
    } finally {
      progress?.stop();
      await client.close();
    }
  });
}
