// The parameters of SGLang's Llama-family models (LlamaForCausalLM, Qwen2, Mistral, ...) built from a
// rank's checkpoint tensors, as SGLang's `model.state_dict()` holds them and its RemoteModelLoader expects
// them: q/k/v projections fused into `self_attn.qkv_proj` and gate/up into `mlp.gate_up_proj` (dim 0, in
// that order: SGLang's stacked_params_mapping), rotary caches dropped, and with tied embeddings the one
// shared tensor under `lm_head.weight` (the name SGLang's state-dict filter keeps of the two). Plus the
// value SGLang's RedisConnector stores per parameter: `safetensors.torch.save({"tensor_bytes": t})`.

import { tcError } from '../core/errors.js';
import type { Dtype } from '../core/dtypes.js';
import { planSafetensors } from '../format/safetensors-writer.js';
import type { WeightTensor } from './weight-stream.js';

/** One SGLang parameter: its name, dtype, shape, and its bytes as pieces to concatenate (dim 0). */
export interface SglangParam {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly parts: readonly Uint8Array[];
}

/** The name of the one tensor in each value, as SGLang's SafeSerializer writes it. */
export const SGLANG_TENSOR_NAME = 'tensor_bytes';

/** Checkpoint tensors SGLang's Llama loader skips (buffers, not parameters). */
const SKIPPED = /(^|\.)rotary_emb\.(inv_freq|cos_cached|sin_cached)$/;
/** Fused parameters: checkpoint names that SGLang stacks, in stacking order. */
const FUSED: readonly { readonly pattern: RegExp; readonly fused: string; readonly order: readonly string[] }[] = [
  { pattern: /^(.*\.self_attn\.)(q|k|v)_proj\.(weight|bias)$/, fused: 'qkv_proj', order: ['q', 'k', 'v'] },
  { pattern: /^(.*\.mlp\.)(gate|up)_proj\.(weight|bias)$/, fused: 'gate_up_proj', order: ['gate', 'up'] },
];

interface Pending {
  readonly order: readonly string[];
  readonly members: Map<string, WeightTensor>;
}

/**
 * Turns a rank's checkpoint tensors, in any order, into SGLang parameters: feed every tensor to
 * {@link add} (it returns the parameters it completed), then call {@link finish}.
 *
 * @example
 * const params = new SglangParams({ tieWordEmbeddings: false });
 * for await (const t of client.weights(key, { tp: { size: 2, rank: 0 } })) for (const p of params.add(t)) write(p);
 * params.finish();
 */
export class SglangParams {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly options: { readonly tieWordEmbeddings: boolean }) {}

  /**
   * The parameters `tensor` completes (none while a fused parameter waits for its other parts).
   *
   * @throws TC_ERR_INVALID_ARGUMENT when parts of a fused parameter disagree in dtype or trailing shape.
   */
  add(tensor: WeightTensor): SglangParam[] {
    const name = tensor.name;
    if (SKIPPED.test(name)) return [];
    if (this.options.tieWordEmbeddings) {
      // SGLang ignores a checkpoint's lm_head when the embeddings are tied; the shared tensor is lm_head.weight.
      if (name === 'lm_head.weight') return [];
      if (name === 'model.embed_tokens.weight') return [single({ ...tensor, name: 'lm_head.weight' })];
    }
    for (const f of FUSED) {
      const m = f.pattern.exec(name);
      if (m === null) continue;
      const fusedName = `${m[1]!}${f.fused}.${m[3]!}`;
      let p = this.pending.get(fusedName);
      if (p === undefined) {
        p = { order: f.order, members: new Map() };
        this.pending.set(fusedName, p);
      }
      p.members.set(m[2]!, tensor);
      if (p.members.size < p.order.length) return [];
      this.pending.delete(fusedName);
      return [
        fuse(
          fusedName,
          p.order.map((k) => p.members.get(k)!),
        ),
      ];
    }
    return [single(tensor)];
  }

  /**
   * Checks that no fused parameter is left incomplete.
   *
   * @throws TC_ERR_INVALID_ARGUMENT naming the parameter and the parts it lacks.
   */
  finish(): void {
    for (const [name, p] of this.pending) {
      const missing = p.order.filter((k) => !p.members.has(k));
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `cannot build SGLang's '${name}': the checkpoint lacks its ${missing.map((k) => `${k}_proj`).join(', ')} part`,
        { details: { param: name } },
      );
    }
  }
}

const single = (t: WeightTensor): SglangParam => ({ name: t.name, dtype: t.dtype, shape: t.shape, parts: [t.data] });

/** Concatenates tensors along dimension 0. */
function fuse(name: string, parts: readonly WeightTensor[]): SglangParam {
  const first = parts[0]!;
  for (const p of parts) {
    if (p.dtype !== first.dtype || p.shape.length !== first.shape.length || p.shape.slice(1).some((d, i) => d !== first.shape[i + 1])) {
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `cannot fuse '${p.name}' (${p.dtype} [${p.shape.join(', ')}]) with '${first.name}' (${first.dtype} [${first.shape.join(', ')}]) into '${name}'`,
        { details: { param: name } },
      );
    }
  }
  const rows = parts.reduce((n, p) => n + (p.shape[0] ?? 1), 0);
  return { name, dtype: first.dtype, shape: [rows, ...first.shape.slice(1)], parts: parts.map((p) => p.data) };
}

/**
 * The bytes SGLang's RedisConnector stores for a parameter: a safetensors file holding one tensor named
 * `tensor_bytes` and no metadata, byte for byte what `safetensors.torch.save({"tensor_bytes": t})` writes.
 *
 * @example const value = sglangValue(param); await redis.set(`${model}/keys/rank_0/${param.name}`, value);
 */
export function sglangValue(param: SglangParam): Buffer {
  const layout = planSafetensors([{ name: SGLANG_TENSOR_NAME, dtype: param.dtype, shape: param.shape }]);
  const bytes = param.parts.reduce((n, p) => n + p.length, 0);
  if (bytes !== layout.dataByteLength) {
    throw tcError('TC_ERR_INTERNAL', `'${param.name}': ${bytes} bytes for a shape that needs ${layout.dataByteLength}`);
  }
  const out = Buffer.allocUnsafe(layout.header.length + bytes);
  layout.header.copy(out, 0);
  let at = layout.header.length;
  for (const p of param.parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
