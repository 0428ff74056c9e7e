// Turns the selection flags shared by `slice` and `load` (--tensors, --view, --tp-size/--tp-rank,
// --tp-layout) into a normalized view.

import { readFile } from 'node:fs/promises';
import { tcError, wrapIoError } from '../core/errors.js';
import type { Selection } from '../layout/selection.js';
import { readModelConfig } from '../layout/tp-layout.js';
import { loadRuleSet } from '../layout/tp-rules.js';
import { parseViewJson, type ViewSpec } from '../layout/view.js';

/** The selection flags as commander hands them over. */
export interface SelectionFlags {
  readonly tensors?: string;
  readonly view?: string;
  readonly tpSize?: string;
  readonly tpRank?: string;
  readonly tpLayout?: string;
}

/** Parses a non-negative integer flag. @throws TC_ERR_INVALID_ARGUMENT */
export function parseIntegerFlag(value: string, flag: string, min = 0): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${flag} expects an integer >= ${min}, got '${value}'`);
  }
  return Number(value);
}

/** Reads `--view`: inline JSON, or `@path` to a JSON file. */
export async function readViewFlag(value: string): Promise<ViewSpec> {
  if (!value.startsWith('@')) return parseViewJson(value);
  const path = value.slice(1);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw wrapIoError(error, 'cannot read --view file', path);
  }
  return parseViewJson(text, path);
}

/**
 * Turns the selection flags into a selection. `--tp-layout auto` (the default) means the built-in rules.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for flags that do not go together; TC_ERR_VIEW_INVALID; TC_ERR_LAYOUT_INVALID_RULES
 */
export async function selectionFromFlags(flags: SelectionFlags): Promise<Selection> {
  const hasTp = flags.tpSize !== undefined || flags.tpRank !== undefined;
  if (hasTp && (flags.tpSize === undefined || flags.tpRank === undefined))
    throw tcError('TC_ERR_INVALID_ARGUMENT', '--tp-size and --tp-rank go together');
  if (!hasTp && flags.tpLayout !== undefined) throw tcError('TC_ERR_INVALID_ARGUMENT', '--tp-layout needs --tp-size and --tp-rank');
  if (hasTp && flags.view !== undefined)
    throw tcError('TC_ERR_INVALID_ARGUMENT', '--view and --tp-size/--tp-rank select differently; give one of them');
  const out: { tensors?: string[]; view?: ViewSpec; tp?: NonNullable<Selection['tp']> } = {};
  if (flags.tensors !== undefined) out.tensors = splitNames(flags.tensors);
  if (flags.view !== undefined) out.view = await readViewFlag(flags.view);
  if (hasTp) {
    const size = parseIntegerFlag(flags.tpSize!, '--tp-size', 1);
    const rank = parseIntegerFlag(flags.tpRank!, '--tp-rank');
    const layout = flags.tpLayout ?? 'auto';
    out.tp = layout === 'auto' ? { size, rank } : { size, rank, rules: await loadRuleSet(layout) };
  }
  return out;
}

function splitNames(list: string): string[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0) throw tcError('TC_ERR_INVALID_ARGUMENT', '--tensors needs at least one tensor name');
  return names;
}

/** The config loader for a local model: config.json beside the weights. */
export function localConfig(root: string): () => Promise<unknown> {
  return () => readModelConfig(root);
}
