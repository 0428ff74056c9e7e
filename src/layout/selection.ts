// A selection (tensors, a view, or a TP rank under a rule set) resolved into a normalized view: the one
// place where `slice`, `load` and the client SDK agree on what a selection means.

import { tcError } from '../core/errors.js';
import type { CanonicalIndex } from './canonical-index.js';
import { modelDimsFromConfig, tpView } from './tp-layout.js';
import { LLAMA_FAMILY_RULES, type TpRuleSet } from './tp-rules.js';
import { normalizeView, type NormalizedView, type ViewSpec } from './view.js';

/** Which tensors and slices to take. */
export interface Selection {
  /** Only these tensors (whole, unless `view` narrows them). */
  readonly tensors?: readonly string[];
  readonly view?: ViewSpec;
  /** A TP rank: every tensor sliced by the rule set (default: the built-in Llama/Qwen2/Mistral rules). */
  readonly tp?: { readonly size: number; readonly rank: number; readonly rules?: TpRuleSet };
}

/**
 * Resolves `selection` against `index`. `config` is called only for TP selections (the model's config.json).
 *
 * @throws TC_ERR_INVALID_ARGUMENT (view and TP together), TC_ERR_VIEW_*, TC_ERR_LAYOUT_*
 * @example const view = await selectView(index, { tp: { size: 4, rank: 1 } }, () => readModelConfig(dir));
 */
export async function selectView(index: CanonicalIndex, selection: Selection, config: () => Promise<unknown>): Promise<NormalizedView> {
  let spec = selection.view;
  if (selection.tp !== undefined) {
    if (spec !== undefined) throw tcError('TC_ERR_INVALID_ARGUMENT', 'a view and a TP rank select differently; give one of them');
    const full = tpView(index, selection.tp.rules ?? LLAMA_FAMILY_RULES, modelDimsFromConfig(await config()), {
      tpSize: selection.tp.size,
      tpRank: selection.tp.rank,
    });
    spec = selection.tensors === undefined ? full : Object.fromEntries(selection.tensors.map((n) => [n, full[n] ?? null]));
  }
  return normalizeView(index, spec, selection.tensors);
}
