// Turns (model config, TP rule set, tp size, tp rank) into a view over a canonical index, the way vLLM's
// parallel layers shard weights: even splits in units of heads, KV heads replicated when tp exceeds them
// (shard = rank / replicas), fused tensors split per sub-block, vocab splits padded on request.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tcError, wrapIoError } from '../core/errors.js';
import type { CanonicalIndex, CanonicalTensor } from './canonical-index.js';
import { globToRegExp, type HeadKind, type TpBlock, type TpRule, type TpRuleSet } from './tp-rules.js';
import type { DimRange, PiecesSpec, TensorViewSpec, ViewSpec } from './view.js';

/** Numeric model dimensions a rule set may refer to by name. */
export type ModelDims = Readonly<Record<string, number>>;

/** Where a rank is: tp size and tp rank. */
export interface TpPosition {
  readonly tpSize: number;
  readonly tpRank: number;
}

/**
 * Extracts the numeric fields of a HF config.json (top level, else `text_config`) and derives
 * `head_dim` (hidden_size / num_attention_heads) and `num_key_value_heads` (= heads) when absent.
 */
export function modelDimsFromConfig(config: unknown): ModelDims {
  const out: Record<string, number> = {};
  const take = (o: unknown): void => {
    if (typeof o !== 'object' || o === null) return;
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      if (typeof v === 'number' && Number.isSafeInteger(v) && !(k in out)) out[k] = v;
    }
  };
  take(config);
  take((config as { text_config?: unknown } | null)?.text_config);
  const heads = out['num_attention_heads'];
  if (out['head_dim'] === undefined && heads !== undefined && out['hidden_size'] !== undefined && heads > 0) {
    out['head_dim'] = out['hidden_size'] / heads;
  }
  if (out['num_key_value_heads'] === undefined && heads !== undefined) out['num_key_value_heads'] = heads;
  return out;
}

/** Reads config.json from a model directory. @throws TC_ERR_NOT_FOUND when absent. */
export async function readModelConfig(dir: string): Promise<unknown> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw wrapIoError(error, 'cannot read the model config (needed by --tp-layout auto)', path);
  }
  return parseModelConfig(text, path);
}

/** Parses the text of a model's config.json. @throws TC_ERR_LAYOUT_CONFIG when it is not JSON */
export function parseModelConfig(text: string | Uint8Array, where = 'config.json'): unknown {
  try {
    return JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8')) as unknown;
  } catch (error) {
    throw tcError('TC_ERR_LAYOUT_CONFIG', `${where}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The view rank `tpRank` of `tpSize` loads: every tensor of `index`, sliced by the first matching rule.
 *
 * @throws TC_ERR_LAYOUT_INVALID_RANK, TC_ERR_LAYOUT_NO_RULE, TC_ERR_LAYOUT_NOT_DIVISIBLE, TC_ERR_LAYOUT_CONFIG
 * @example const spec = tpView(index, LLAMA_FAMILY_RULES, modelDimsFromConfig(config), { tpSize: 4, tpRank: 1 });
 */
export function tpView(index: CanonicalIndex, rules: TpRuleSet, dims: ModelDims, pos: TpPosition): ViewSpec {
  if (
    !Number.isSafeInteger(pos.tpSize) ||
    pos.tpSize < 1 ||
    !Number.isSafeInteger(pos.tpRank) ||
    pos.tpRank < 0 ||
    pos.tpRank >= pos.tpSize
  ) {
    throw tcError('TC_ERR_LAYOUT_INVALID_RANK', `tp rank ${pos.tpRank} of tp size ${pos.tpSize} is out of range (need 0 <= rank < size)`);
  }
  const compiled = rules.rules.map((r) => ({ rule: r, re: globToRegExp(r.pattern) }));
  const spec: Record<string, TensorViewSpec> = {};
  for (const t of index.tensors) {
    const hit = compiled.find((c) => c.re.test(t.name));
    if (hit === undefined) {
      throw tcError('TC_ERR_LAYOUT_NO_RULE', `tensor '${t.name}': no rule of '${rules.name}' matches it`, { details: { tensor: t.name } });
    }
    spec[t.name] = pos.tpSize === 1 ? null : sliceTensor(t, hit.rule, dims, pos);
  }
  return spec;
}

interface Piece {
  readonly start: number;
  readonly length: number;
  readonly pad: number;
}

function sliceTensor(t: CanonicalTensor, rule: TpRule, dims: ModelDims, pos: TpPosition): TensorViewSpec {
  if (rule.split === 'replicated') return null;
  const dim = rule.dim ?? (rule.split === 'row' ? 1 : 0);
  const fail = (code: 'TC_ERR_LAYOUT_NOT_DIVISIBLE' | 'TC_ERR_LAYOUT_INVALID_RULES' | 'TC_ERR_LAYOUT_CONFIG', msg: string): Error =>
    tcError(code, `tensor '${t.name}' (shape [${t.shape.join(', ')}], rule '${rule.pattern}'): ${msg}`, { details: { tensor: t.name } });
  if (dim >= t.shape.length) throw fail('TC_ERR_LAYOUT_INVALID_RULES', `cannot split dimension ${dim}`);
  const size = t.shape[dim]!;
  const ctx: SplitContext = { dims, pos, fail };
  let pieces: Piece[];
  if (rule.blocks !== undefined) {
    if (dim !== 0) throw fail('TC_ERR_LAYOUT_INVALID_RULES', 'fused blocks can only be split along dimension 0');
    pieces = [];
    let at = 0;
    for (const block of rule.blocks) {
      const rows = evalSize(block.size, ctx);
      const p = splitRange(rows, block, false, undefined, ctx);
      pieces.push({ start: at + p.start, length: p.length, pad: 0 });
      at += rows;
    }
    if (at !== size) throw fail('TC_ERR_LAYOUT_NOT_DIVISIBLE', `blocks add up to ${at} rows but dimension 0 has ${size}`);
  } else {
    pieces = [splitRange(size, rule, rule.pad ?? false, rule.split === 'vocab' ? (rule.padTo ?? 64) : undefined, ctx)];
  }
  const pad = pieces.reduce((n, p) => n + p.pad, 0);
  if (pad > 0 && dim !== 0) throw fail('TC_ERR_LAYOUT_INVALID_RULES', 'padding is only possible along dimension 0');
  const box = (p: Piece): DimRange[] => t.shape.map((_, d) => (d === dim ? ([p.start, p.length] as const) : null));
  if (pieces.length === 1 && pad === 0) return box(pieces[0]!);
  const out: PiecesSpec = { pieces: pieces.map(box), padDim0: pad };
  return out;
}

interface SplitContext {
  readonly dims: ModelDims;
  readonly pos: TpPosition;
  readonly fail: (code: 'TC_ERR_LAYOUT_NOT_DIVISIBLE' | 'TC_ERR_LAYOUT_INVALID_RULES' | 'TC_ERR_LAYOUT_CONFIG', msg: string) => Error;
}

/** The rows of `size` this rank takes, in units; `padTo` marks a vocab split. */
function splitRange(
  size: number,
  spec: { readonly heads?: HeadKind; readonly unit?: number | string } | TpBlock,
  pad: boolean,
  padTo: number | undefined,
  ctx: SplitContext,
): Piece {
  const { tpSize, tpRank } = ctx.pos;
  const unit = spec.unit !== undefined ? evalSize(spec.unit, ctx) : spec.heads !== undefined ? evalSize('head_dim', ctx) : 1;
  if (size % unit !== 0) throw ctx.fail('TC_ERR_LAYOUT_NOT_DIVISIBLE', `${size} rows are not a whole number of ${unit}-row units`);
  const units = size / unit;
  if (spec.heads === 'kv' && tpSize > units) {
    // More ranks than KV heads: each head is replicated on tpSize / heads ranks (vLLM: shard = rank / replicas).
    if (tpSize % units !== 0)
      throw ctx.fail('TC_ERR_LAYOUT_NOT_DIVISIBLE', `${units} KV heads cannot be replicated evenly over ${tpSize} ranks`);
    const shard = Math.floor(tpRank / (tpSize / units));
    return { start: shard * unit, length: unit, pad: 0 };
  }
  // A padded vocab split is vLLM's layout even when the size divides: the size is rounded up to padTo first.
  const padded = pad && padTo !== undefined ? Math.ceil(units / padTo) * padTo : units;
  if (units % tpSize === 0 && padded === units) {
    const per = (units / tpSize) * unit;
    return { start: tpRank * per, length: per, pad: 0 };
  }
  if (!pad)
    throw ctx.fail(
      'TC_ERR_LAYOUT_NOT_DIVISIBLE',
      `${units} ${spec.heads !== undefined ? 'heads' : 'units'} do not split evenly over ${tpSize} ranks`,
    );
  // Padded and split evenly when the padded size divides (vLLM); else ceil(units / tp) per rank (vLLM refuses).
  const perUnits = padded % tpSize === 0 ? padded / tpSize : Math.ceil(units / tpSize);
  const per = perUnits * unit;
  const start = Math.min(tpRank * per, size);
  const length = Math.min(per, size - start);
  return { start, length, pad: per - length };
}

function evalSize(expr: number | string, ctx: SplitContext): number {
  if (typeof expr === 'number') return expr;
  let v = 1;
  for (const term of expr.split('*')) {
    const n = /^\d+$/.test(term) ? Number(term) : ctx.dims[term];
    if (n === undefined) throw ctx.fail('TC_ERR_LAYOUT_CONFIG', `the model config has no '${term}'`);
    v *= n;
  }
  return v;
}
