// `tensorcast inspect <path> [--json]`: validates a safetensors file or model directory and lists its tensors.

import type { Command } from 'commander';
import { computeArtifactIdentity, hashExtraFiles, type ArtifactIdentity } from '../../bytes/artifact-id.js';
import { FileSource } from '../../bytes/file-source.js';
import { openModelFiles, type ModelFiles } from '../../format/model-files.js';
import { indexModelFiles, type CanonicalIndex } from '../../layout/canonical-index.js';
import { ByteProgress } from '../progress.js';
import { compareUtf8 } from '../../core/strings.js';

interface InspectRow {
  name: string;
  dtype: string;
  shape: readonly number[];
  bytes: number;
  shard: string;
  offset: number;
}

/** Registers `inspect`. */
export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('validate a .safetensors file or model directory and list its tensors (name, dtype, shape, bytes, shard)')
    .argument('<path>', 'a .safetensors file or a model directory (with or without model.safetensors.index.json)')
    .option('--json', 'print one JSON object instead of lines')
    .option('--id', 'also hash every byte and print the artifact id (last line, or "artifactId" with --json)')
    .action(async (path: string, opts: { json?: boolean; id?: boolean }) => {
      const model = await openModelFiles(path);
      const index = indexModelFiles(model);
      const identity = opts.id === true ? await identify(model, index) : undefined;
      const rows: InspectRow[] = index.tensors.map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        bytes: t.byteLength,
        shard: index.shards[t.shard]!.file,
        offset: t.filePosition,
      }));
      rows.sort((a, b) => compareUtf8(a.name, b.name));
      if (opts.json === true) {
        const totalBytes = rows.reduce((n, r) => n + r.bytes, 0);
        const shards = model.shards.map((s) => ({
          file: s.file,
          bytes: s.fileByteLength,
          tensors: s.header.tensors.length,
          metadata: s.header.metadata,
        }));
        const ids =
          identity === undefined
            ? {}
            : {
                artifactId: identity.artifactId,
                indexHash: identity.indexHash,
                dataHash: identity.dataHash,
                ...(identity.filesHash === undefined ? {} : { filesHash: identity.filesHash }),
              };
        process.stdout.write(`${JSON.stringify({ path, valid: true, tensors: rows, shards, totalBytes, ...ids })}\n`);
        return;
      }
      const lines = rows.map((r) => [r.name, r.dtype, `[${r.shape.join(',')}]`, String(r.bytes), r.shard]);
      process.stdout.write(formatTable(lines));
      if (identity !== undefined) process.stdout.write(`artifact ${identity.artifactId}\n`);
    });
}

/** The id the daemon gives the same model: weights and the config/tokenizer files it keeps with them. */
async function identify(model: ModelFiles, index: CanonicalIndex): Promise<ArtifactIdentity> {
  const { filesHash } = await hashExtraFiles(model.root, model.extraFiles);
  const source = FileSource.fromIndex(model.root, index);
  const progress = new ByteProgress('hashing', index.totalBytes);
  try {
    return await computeArtifactIdentity(index, source, { filesHash, onProgress: (done) => progress.update(done) });
  } finally {
    progress.stop();
    await source.close();
  }
}

/** Left-aligned columns separated by two spaces. */
export function formatTable(lines: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const l of lines) l.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return (
    lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') +
    (lines.length > 0 ? '\n' : '')
  );
}
