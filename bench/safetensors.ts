// safetensors suite: parsing and validating a 25 MB header (the huggingface.js bound) against JSON.parse
// of the same bytes (which validates nothing).

import { parseSafetensorsHeader } from '../src/format/safetensors-header.js';
import { planSafetensors } from '../src/format/safetensors-writer.js';
import { bestOf, type BenchResult } from './measure.js';

/** Runs the safetensors suite. */
export async function safetensorsSuite(repeats: number): Promise<BenchResult[]> {
  const tensors = [];
  for (let i = 0; tensors.length < 210_000; i++) {
    for (let e = 0; e < 64; e++)
      tensors.push({ name: `model.layers.${i}.mlp.experts.${e}.down_proj.weight_scale_inv`, dtype: 'F32' as const, shape: [1] });
  }
  const layout = planSafetensors(tensors, { metadata: { format: 'pt' } });
  const headerBytes = layout.header.length;
  const file = Buffer.concat([layout.header, Buffer.alloc(layout.dataByteLength)]);
  const json = layout.header.subarray(8);
  let count = 0;
  const ours = await bestOf(repeats, () => (count = parseSafetensorsHeader(file, file.length, 'bench').tensors.length));
  const base = await bestOf(repeats, () => JSON.parse(json.toString('utf8')) as unknown);
  const mb = headerBytes / 1e6;
  return [
    {
      suite: 'safetensors',
      case: `${mb.toFixed(1)} MB header, ${count} tensors`,
      ours: 'parse + validate',
      baseline: 'JSON.parse only',
      oursRate: headerBytes / ours / 1e9,
      baselineRate: headerBytes / base / 1e9,
      ratio: base / ours,
      unit: 'GB/s',
      note: `ours ${(ours * 1000).toFixed(0)} ms, JSON.parse ${(base * 1000).toFixed(0)} ms`,
    },
  ];
}
