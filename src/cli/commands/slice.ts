// `tensorcast slice <path> --out <file>`: materializes a selection of a local model (no daemon) into a
// valid safetensors file; nothing is left at --out on failure.

import type { Command } from 'commander';
import { formatBytes } from '../../core/strings.js';
import { openLocalArtifact } from '../../bytes/local-artifact.js';
import { Materializer } from '../../bytes/materialize.js';
import { emptyStats, type MaterializeStats } from '../../bytes/materialize-stats.js';
import { compileProgram, programWindow, type ByteRangeProgram } from '../../layout/program.js';
import type { ByteSource } from '../../bytes/byte-source.js';
import { writeOutputFile } from '../output-file.js';
import { localConfig, selectionFromFlags, type SelectionFlags } from '../selection.js';
import { selectView } from '../../layout/selection.js';

interface SliceFlags extends SelectionFlags {
  readonly out: string;
  readonly json?: boolean;
}

/** Registers `slice`. */
export function registerSlice(program: Command): void {
  program
    .command('slice')
    .description('write a selection of a local model (tensors, a view, or a TP rank) to a safetensors file')
    .argument('<path>', 'a .safetensors file or a model directory')
    .requiredOption('--out <file>', 'output .safetensors file')
    .option('--tensors <names>', 'comma-separated tensor names to keep')
    .option('--view <json>', 'view JSON {"<tensor>": [[start, length] | null, ...]} or @file')
    .option('--tp-size <n>', 'tensor-parallel size')
    .option('--tp-rank <r>', 'tensor-parallel rank')
    .option('--tp-layout <layout>', 'auto (built-in rules, config.json beside the model) or a rules JSON file')
    .option('--json', 'print the result as one JSON object')
    .action(async (path: string, flags: SliceFlags) => {
      const artifact = await openLocalArtifact(path);
      try {
        const view = await selectView(artifact.index, await selectionFromFlags(flags), localConfig(artifact.model.root));
        const program = compileProgram(view);
        const t0 = performance.now();
        const stats = await writeProgram(program, artifact.source, flags.out, artifact.index.metadata);
        const seconds = (performance.now() - t0) / 1000;
        const summary = {
          out: flags.out,
          tensors: program.tensors.length,
          bytes: program.totalBytes,
          viewId: view.viewId ?? null,
          seconds,
          stats,
        };
        if (flags.json === true) process.stdout.write(`${JSON.stringify(summary)}\n`);
        else {
          process.stdout.write(
            `wrote ${flags.out}: ${program.tensors.length} tensors, ${formatBytes(program.totalBytes)} in ${seconds.toFixed(2)} s ` +
              `(read ${formatBytes(stats.baseReads.bytes + stats.directBytes)}, amplification ${stats.amplification.toFixed(2)}, kernel ${stats.kernel})\n`,
          );
        }
      } finally {
        await artifact.close();
      }
    });
}

/** Materializes `program` from `source` into the file `out`; returns the summed executor stats. */
export async function writeProgram(
  program: ByteRangeProgram,
  source: ByteSource,
  out: string,
  sourceMetadata: Readonly<Record<string, string>>,
): Promise<MaterializeStats> {
  const total = emptyStats('js');
  const materializer = new Materializer();
  await writeOutputFile(
    program.tensors,
    program.totalBytes,
    out,
    sourceMetadata,
    async (start, end, dest) => {
      addStats(total, await materializer.run(programWindow(program, start, end), source, dest));
    },
    `slice ${out}`,
  );
  total.outputBytes = program.totalBytes;
  const useful = program.totalBytes - total.padBytes;
  total.amplification = useful > 0 ? (total.baseReads.bytes + total.directBytes) / useful : 1;
  return total;
}

function addStats(into: MaterializeStats, s: MaterializeStats): void {
  (into as { kernel: string }).kernel = s.kernel;
  into.padBytes += s.padBytes;
  into.baseReads.calls += s.baseReads.calls;
  into.baseReads.bytes += s.baseReads.bytes;
  into.directBytes += s.directBytes;
  for (const k of Object.keys(into.runs) as (keyof MaterializeStats['runs'])[]) into.runs[k] += s.runs[k];
  for (const k of Object.keys(into.timesMs) as (keyof MaterializeStats['timesMs'])[]) into.timesMs[k] += s.timesMs[k];
}
