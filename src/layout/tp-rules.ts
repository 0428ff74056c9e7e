// TP rule sets as data: which tensors are split how across tensor-parallel ranks. A rule set is JSON:
// `{"name": "...", "rules": [{"pattern": "*.q_proj.weight", "split": "column", "heads": "q"}, ...]}`;
// the first rule whose pattern matches a tensor name wins. Sizes may name config values.

import { readFile } from 'node:fs/promises';
import { tcError, wrapIoError } from '../core/errors.js';

/** How a tensor is laid out across ranks. */
export type SplitKind = 'column' | 'row' | 'replicated' | 'vocab';

/** Which attention heads a block or tensor holds: query heads, or key/value heads (replicated when tp > heads). */
export type HeadKind = 'q' | 'kv';

/** One sub-block of a fused tensor, split on its own. */
export interface TpBlock {
  /** Rows of the block: an integer or a config expression such as `"num_key_value_heads*head_dim"`. */
  readonly size: number | string;
  readonly heads?: HeadKind;
  /** Split granularity in rows (default 1; `head_dim` when `heads` is set). */
  readonly unit?: number | string;
}

/** One rule of a TP rule set. */
export interface TpRule {
  /** Glob over the tensor name: `*` matches any run of characters, including dots. */
  readonly pattern: string;
  readonly split: SplitKind;
  /** Dimension to split (column and vocab: 0, row: 1). */
  readonly dim?: number;
  readonly heads?: HeadKind;
  readonly unit?: number | string;
  /** Fused tensor: sub-blocks along dimension 0, each split separately and concatenated. */
  readonly blocks?: readonly TpBlock[];
  /** When the split is uneven: pad each rank to the same size with zero rows (dimension 0 only). */
  readonly pad?: boolean;
  /** Vocab split: round the padded size up to a multiple of this (vLLM uses 64). */
  readonly padTo?: number;
}

/** A named list of rules. */
export interface TpRuleSet {
  readonly name: string;
  readonly rules: readonly TpRule[];
}

const column = (pattern: string, extra: Partial<TpRule> = {}): TpRule => ({ pattern, split: 'column', ...extra });
const replicated = (pattern: string): TpRule => ({ pattern, split: 'replicated' });
const KV = { size: 'num_key_value_heads*head_dim', heads: 'kv' } as const;

/**
 * Built-in rules for the Llama / Qwen2 / Qwen3 / Mistral family, following vLLM's parallel layers:
 * q/k/v and gate/up are column-parallel (KV heads replicated when tp > num_key_value_heads), o/down are
 * row-parallel, embeddings and lm_head are vocab-parallel, norms are replicated; fused qkv_proj and
 * gate_up_proj are split per sub-block.
 */
export const LLAMA_FAMILY_RULES: TpRuleSet = {
  name: 'llama-family',
  rules: [
    { pattern: 'model.embed_tokens.weight', split: 'vocab', pad: true, padTo: 64 },
    { pattern: 'lm_head.weight', split: 'vocab', pad: true, padTo: 64 },
    column('*.self_attn.q_proj.weight', { heads: 'q' }),
    column('*.self_attn.q_proj.bias', { heads: 'q' }),
    column('*.self_attn.k_proj.weight', { heads: 'kv' }),
    column('*.self_attn.k_proj.bias', { heads: 'kv' }),
    column('*.self_attn.v_proj.weight', { heads: 'kv' }),
    column('*.self_attn.v_proj.bias', { heads: 'kv' }),
    column('*.self_attn.qkv_proj.weight', { blocks: [{ size: 'num_attention_heads*head_dim', heads: 'q' }, KV, KV] }),
    column('*.self_attn.qkv_proj.bias', { blocks: [{ size: 'num_attention_heads*head_dim', heads: 'q' }, KV, KV] }),
    { pattern: '*.self_attn.o_proj.weight', split: 'row', heads: 'q' },
    replicated('*.self_attn.o_proj.bias'),
    column('*.mlp.gate_proj.weight'),
    column('*.mlp.gate_proj.bias'),
    column('*.mlp.up_proj.weight'),
    column('*.mlp.up_proj.bias'),
    column('*.mlp.gate_up_proj.weight', { blocks: [{ size: 'intermediate_size' }, { size: 'intermediate_size' }] }),
    column('*.mlp.gate_up_proj.bias', { blocks: [{ size: 'intermediate_size' }, { size: 'intermediate_size' }] }),
    { pattern: '*.mlp.down_proj.weight', split: 'row' },
    replicated('*.mlp.down_proj.bias'),
    replicated('*norm.weight'),
    replicated('*norm.bias'),
    replicated('*.rotary_emb.inv_freq'),
  ],
};

const SPLITS = new Set<string>(['column', 'row', 'replicated', 'vocab']);

/**
 * Validates a rule set given as parsed JSON.
 *
 * @throws TC_ERR_LAYOUT_INVALID_RULES naming the rule and field.
 */
export function parseRuleSet(value: unknown, what = 'rule set'): TpRuleSet {
  const bad = (msg: string): Error => tcError('TC_ERR_LAYOUT_INVALID_RULES', `${what}: ${msg}`);
  if (typeof value !== 'object' || value === null || !Array.isArray((value as { rules?: unknown }).rules)) {
    throw bad('expected {"rules": [...]}');
  }
  const v = value as { name?: unknown; rules: unknown[] };
  const rules = v.rules.map((raw, i): TpRule => {
    const where = `rule ${i}`;
    if (typeof raw !== 'object' || raw === null) throw bad(`${where}: expected an object`);
    const r = raw as Record<string, unknown>;
    for (const k of Object.keys(r)) {
      if (!['pattern', 'split', 'dim', 'heads', 'unit', 'blocks', 'pad', 'padTo'].includes(k)) throw bad(`${where}: unknown field '${k}'`);
    }
    if (typeof r['pattern'] !== 'string' || r['pattern'] === '') throw bad(`${where}: pattern must be a non-empty string`);
    if (typeof r['split'] !== 'string' || !SPLITS.has(r['split'])) throw bad(`${where}: split must be column, row, replicated or vocab`);
    if (r['dim'] !== undefined && !(Number.isSafeInteger(r['dim']) && (r['dim'] as number) >= 0))
      throw bad(`${where}: dim must be a non-negative integer`);
    if (r['heads'] !== undefined && r['heads'] !== 'q' && r['heads'] !== 'kv') throw bad(`${where}: heads must be "q" or "kv"`);
    if (r['unit'] !== undefined) checkSize(r['unit'], `${where}.unit`, bad);
    if (r['pad'] !== undefined && typeof r['pad'] !== 'boolean') throw bad(`${where}: pad must be a boolean`);
    if (r['padTo'] !== undefined && !(Number.isSafeInteger(r['padTo']) && (r['padTo'] as number) >= 1))
      throw bad(`${where}: padTo must be a positive integer`);
    if (r['blocks'] !== undefined) {
      if (!Array.isArray(r['blocks']) || r['blocks'].length === 0) throw bad(`${where}: blocks must be a non-empty list`);
      (r['blocks'] as unknown[]).forEach((b, j) => {
        if (typeof b !== 'object' || b === null) throw bad(`${where}.blocks[${j}]: expected an object`);
        const bb = b as Record<string, unknown>;
        checkSize(bb['size'], `${where}.blocks[${j}].size`, bad);
        if (bb['unit'] !== undefined) checkSize(bb['unit'], `${where}.blocks[${j}].unit`, bad);
        if (bb['heads'] !== undefined && bb['heads'] !== 'q' && bb['heads'] !== 'kv')
          throw bad(`${where}.blocks[${j}]: heads must be "q" or "kv"`);
      });
    }
    return r as unknown as TpRule;
  });
  return { name: typeof v.name === 'string' ? v.name : what, rules };
}

function checkSize(v: unknown, where: string, bad: (m: string) => Error): void {
  const ok =
    (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) || (typeof v === 'string' && /^[A-Za-z0-9_]+(\*[A-Za-z0-9_]+)*$/.test(v));
  if (!ok) throw bad(`${where}: expected a positive integer or a config expression like "num_key_value_heads*head_dim"`);
}

/** Loads and validates a rule set from a JSON file. */
export async function loadRuleSet(path: string): Promise<TpRuleSet> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw wrapIoError(error, 'cannot read TP rules', path);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw tcError('TC_ERR_LAYOUT_INVALID_RULES', `${path}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return parseRuleSet(value, path);
}

/** Compiles a glob into a RegExp anchored at both ends. */
export function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}
