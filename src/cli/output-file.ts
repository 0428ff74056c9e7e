// Writes a program's output as a safetensors file, staged through a bounded buffer (outputs may exceed
// one Buffer). The output order of a program is the safetensors writer's order, so its bytes are the
// file's data section. Nothing is left at the path unless the file is complete.

import { tcError } from '../core/errors.js';
import { planSafetensors, SafetensorsFileWriter } from '../format/safetensors-writer.js';
import type { ProgramTensor } from '../layout/program.js';
import { ByteProgress } from './progress.js';

/** Largest buffer an output is staged through. */
export const WINDOW_BYTES = 256 << 20;

/** Fills `dest` with bytes `[start, end)` of the output. */
export type FillFn = (start: number, end: number, dest: Uint8Array) => Promise<void>;

/**
 * Writes `tensors` (a program's output layout) to `out`, pulling bytes through `fill` window by window.
 *
 * @throws whatever `fill` throws (the partial file is removed), TC_ERR_IO, TC_ERR_NOT_FOUND (no such folder)
 */
export async function writeOutputFile(
  tensors: readonly ProgramTensor[],
  totalBytes: number,
  out: string,
  sourceMetadata: Readonly<Record<string, string>>,
  fill: FillFn,
  label: string,
): Promise<void> {
  const layout = planSafetensors(tensors, { metadata: { ...sourceMetadata, format: sourceMetadata['format'] ?? 'pt' } });
  layout.tensors.forEach((t, i) => {
    const p = tensors[i]!;
    if (p.name !== t.name || p.offset !== t.begin || p.byteLength !== t.end - t.begin) {
      throw tcError('TC_ERR_INTERNAL', `program order disagrees with the file layout at tensor '${t.name}'`);
    }
  });
  const writer = await SafetensorsFileWriter.create(out, layout);
  const progress = new ByteProgress(label, totalBytes);
  try {
    const window = Buffer.allocUnsafeSlow(Math.max(1, Math.min(totalBytes, WINDOW_BYTES)));
    for (let start = 0; start < totalBytes; start += window.length) {
      const end = Math.min(totalBytes, start + window.length);
      const dest = window.subarray(0, end - start);
      await fill(start, end, dest);
      await writer.write(dest);
      progress.update(end);
    }
    await writer.commit();
  } catch (error) {
    await writer.abort();
    throw error;
  } finally {
    progress.stop();
  }
}
