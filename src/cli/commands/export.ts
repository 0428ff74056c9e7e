// `tensorcast export KEY DIR [--tp-size N --tp-rank R]`: writes a model directory the reference libraries
// load (config files + safetensors shards + index), or with TP options the rank's slices as
// `model-rank-{rank}-part-{part}.safetensors` (vLLM's sharded_state naming). The directory appears only
// when complete.

import type { Command } from 'commander';
import { mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tcError } from '../../core/errors.js';
import { formatBytes } from '../../core/strings.js';
import { parseByteSize } from '../../core/strings.js';
import type { ProgramTensor } from '../../layout/program.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';
import { writeOutputFile } from '../output-file.js';
import { selectionFromFlags, type SelectionFlags } from '../selection.js';
import { transportFromFlags } from './load.js';

interface ExportFlags extends SelectionFlags, ClientFlags {
  readonly maxShardSize?: string;
  readonly shm?: boolean;
  readonly files?: boolean;
  readonly json?: boolean;
}

/** Splits tensors (in output order) into parts of at most `maxBytes` (a larger tensor gets a part of its own). */
export function splitParts(tensors: readonly ProgramTensor[], maxBytes: number): ProgramTensor[][] {
  const parts: ProgramTensor[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    if (size > 0 && size + t.byteLength > maxBytes) {
      parts.push([]);
      size = 0;
    }
    parts[parts.length - 1]!.push(t);
    size += t.byteLength;
  }
  return parts.filter((p) => p.length > 0);
}

/** Registers `export`. */
export function registerExport(program: Command): void {
  withClientFlags(
    program
      .command('export')
      .description('write an artifact (or one TP rank of it) as a model directory')
      .argument('<key>', 'a key (or an artifact id tc1:...)')
      .argument('<dir>', 'output directory (must not exist or be empty)')
      .option('--tp-size <n>', "tensor-parallel size: write only this rank's slices")
      .option('--tp-rank <r>', 'tensor-parallel rank')
      .option('--tp-layout <layout>', 'auto (built-in rules) or a rules JSON file')
      .option('--max-shard-size <bytes>', 'largest shard file (default 5GB, as transformers)', '5GB')
      .option('--shm', 'same host: receive through shared memory instead of TCP')
      .option('--files', "same host: read the daemon's artifact files in place")
      .option('--json', 'print the result as one JSON object'),
  ).action(async (key: string, dir: string, flags: ExportFlags) => {
    const maxShard = parseByteSize(flags.maxShardSize ?? '5GB');
    if (maxShard === undefined || maxShard < 1)
      throw tcError('TC_ERR_INVALID_ARGUMENT', `--max-shard-size: not a byte size: ${flags.maxShardSize}`);
    const selection = await selectionFromFlags(flags);
    const target = resolve(dir);
    const existing = await readdir(target).catch(() => undefined);
    if (existing !== undefined && existing.length > 0) throw tcError('TC_ERR_INVALID_ARGUMENT', `${target} exists and is not empty`);
    const client = await clientFrom(flags);
    const staging = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const plan = await client.plan(key, selection);
      await mkdir(staging, { recursive: true });
      const files: string[] = [];
      for (const name of plan.files) {
        await writeFile(join(staging, name), await client.file(plan.artifactId, name));
        files.push(name);
      }
      const parts = splitParts(plan.tensors, maxShard);
      const tp = selection.tp;
      const names = parts.map((_, i) =>
        tp !== undefined
          ? `model-rank-${tp.rank}-part-${i}.safetensors`
          : parts.length === 1
            ? 'model.safetensors'
            : `model-${String(i + 1).padStart(5, '0')}-of-${String(parts.length).padStart(5, '0')}.safetensors`,
      );
      const transfer = await client.openTransfer(plan, { transport: transportFromFlags(flags) });
      try {
        for (const [i, part] of parts.entries()) {
          const base = part[0]!.offset;
          const last = part[part.length - 1]!;
          const bytes = last.offset + last.byteLength - base;
          const local = part.map((t) => ({ ...t, offset: t.offset - base }));
          await writeOutputFile(
            local,
            bytes,
            join(staging, names[i]!),
            plan.metadata,
            (s, e, d) => transfer.read(base + s, base + e, d),
            `export ${names[i]}`,
          );
          files.push(names[i]!);
        }
      } finally {
        await transfer.close();
      }
      if (tp === undefined && parts.length > 1) {
        const weightMap: Record<string, string> = {};
        parts.forEach((p, i) => p.forEach((t) => (weightMap[t.name] = names[i]!)));
        const index = { metadata: { total_size: plan.totalBytes }, weight_map: weightMap };
        await writeFile(join(staging, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
        files.push('model.safetensors.index.json');
      }
      if (existing !== undefined) await rmdir(target);
      await rename(staging, target);
      const result = {
        key,
        artifactId: plan.artifactId,
        viewId: plan.viewId ?? null,
        dir: target,
        files,
        bytes: plan.totalBytes,
      };
      if (flags.json === true) process.stdout.write(`${JSON.stringify(result)}\n`);
      else process.stdout.write(`exported ${key} to ${target}: ${files.length} files, ${formatBytes(result.bytes)} of tensors\n`);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    } finally {
      await client.close();
    }
  });
}
