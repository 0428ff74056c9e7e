// Views: per tensor, a box of [start, length) ranges (one per dimension), or several boxes stacked along
// dimension 0 (the sub-blocks of a fused tensor), optionally zero-padded along dimension 0. Normalization
// resolves negative starts, checks ranges and folds identity; equal views get equal view ids.

import { tcError } from '../core/errors.js';
import { sha256Hex } from '../core/hashing.js';
import { compareWriteOrder } from '../format/safetensors-writer.js';
import type { CanonicalIndex, CanonicalTensor } from './canonical-index.js';

/** One dimension's selection: `[start, length]` (a negative start counts from the end), or null for all of it. */
export type DimRange = readonly [start: number, length: number] | null;

/** Several boxes of one tensor stacked along dimension 0, then `padDim0` zero rows. */
export interface PiecesSpec {
  readonly pieces: readonly (readonly DimRange[])[];
  readonly padDim0?: number;
}

/** What a view selects of one tensor: null (all of it), one box, or pieces. */
export type TensorViewSpec = readonly DimRange[] | PiecesSpec | null;

/** A view as a user writes it: tensor name -> selection. Tensors not named are not selected. */
export type ViewSpec = Readonly<Record<string, TensorViewSpec>>;

/** A fully resolved box: `[start, length]` for every dimension. */
export type Box = readonly (readonly [number, number])[];

/** The normalized selection of one tensor. */
export interface NormalizedSelection {
  readonly tensor: CanonicalTensor;
  readonly pieces: readonly Box[];
  readonly padDim0: number;
  /** Shape of the selected tensor. */
  readonly shape: readonly number[];
  /** True when this selects the whole tensor unchanged. */
  readonly whole: boolean;
}

/** A normalized view over one canonical index. */
export interface NormalizedView {
  readonly indexHash: string;
  /** Selections in canonical order (which is also the order of the view's byte space). */
  readonly selections: readonly NormalizedSelection[];
  /** True when the view is the whole artifact unchanged: such a view has no id. */
  readonly isIdentity: boolean;
  /** Deterministic id of a non-identity view: SHA-256 of the normalized spec and the index hash. */
  readonly viewId: string | undefined;
}

function isPieces(spec: TensorViewSpec): spec is PiecesSpec {
  return spec !== null && !Array.isArray(spec);
}

/**
 * Normalizes a view against `index`. With no `spec` and no `tensors` the view is the identity.
 * With `tensors`, exactly those tensors are selected, each by its entry in `spec` or whole;
 * without it, the tensors named in `spec` are selected.
 *
 * @throws TC_ERR_VIEW_UNKNOWN_TENSOR, TC_ERR_VIEW_RANK_MISMATCH, TC_ERR_VIEW_OUT_OF_RANGE, TC_ERR_VIEW_INVALID
 * @example normalizeView(index, { 'model.embed_tokens.weight': [[0, 1000], null] });
 */
export function normalizeView(index: CanonicalIndex, spec?: ViewSpec, tensors?: readonly string[]): NormalizedView {
  const wanted = new Map<string, TensorViewSpec>();
  if (tensors !== undefined) {
    for (const name of tensors) wanted.set(name, spec?.[name] ?? null);
    for (const name of Object.keys(spec ?? {})) {
      if (!wanted.has(name)) throw viewError('TC_ERR_VIEW_INVALID', `view names tensor '${name}', which --tensors does not select`, name);
    }
  } else if (spec !== undefined) {
    for (const [name, s] of Object.entries(spec)) wanted.set(name, s);
  } else {
    for (const t of index.tensors) wanted.set(t.name, null);
  }
  const selections: NormalizedSelection[] = [];
  for (const [name, s] of wanted) {
    const tensor = index.byName.get(name);
    if (tensor === undefined) throw viewError('TC_ERR_VIEW_UNKNOWN_TENSOR', `no tensor named '${name}'`, name);
    selections.push(normalizeSelection(tensor, s));
  }
  selections.sort((a, b) => compareWriteOrder(a.tensor, b.tensor));
  const isIdentity = selections.length === index.tensors.length && selections.every((s) => s.whole);
  const viewId = isIdentity ? undefined : sha256Hex(`${index.indexHash}\n${viewIdentityJson(selections)}`);
  return { indexHash: index.indexHash, selections, isIdentity, viewId };
}

/** The deterministic JSON a view id covers. */
function viewIdentityJson(selections: readonly NormalizedSelection[]): string {
  return JSON.stringify(selections.map((s) => [s.tensor.name, s.whole ? null : s.pieces, s.padDim0]));
}

function normalizeSelection(tensor: CanonicalTensor, spec: TensorViewSpec): NormalizedSelection {
  const shape = tensor.shape;
  const rawPieces = spec === null ? [[]] : isPieces(spec) ? spec.pieces : [spec];
  const padDim0 = isPieces(spec) ? (spec.padDim0 ?? 0) : 0;
  if (!Number.isSafeInteger(padDim0) || padDim0 < 0) {
    throw viewError('TC_ERR_VIEW_INVALID', `padDim0 must be a non-negative integer, got ${padDim0}`, tensor.name);
  }
  if (rawPieces.length === 0) throw viewError('TC_ERR_VIEW_INVALID', 'pieces must not be empty', tensor.name);
  if ((rawPieces.length > 1 || padDim0 > 0) && shape.length === 0) {
    throw viewError('TC_ERR_VIEW_RANK_MISMATCH', 'a scalar cannot be split into pieces or padded', tensor.name);
  }
  const pieces = rawPieces.map((p) => normalizeBox(tensor, p));
  const first = pieces[0]!;
  for (const p of pieces) {
    for (let d = 1; d < shape.length; d++) {
      if (p[d]![1] !== first[d]![1]) {
        throw viewError(
          'TC_ERR_VIEW_INVALID',
          `pieces differ in the length of dimension ${d}; they can only stack along dimension 0`,
          tensor.name,
        );
      }
    }
  }
  const out = first.map(([, len]) => len);
  if (out.length > 0) out[0] = pieces.reduce((n, p) => n + p[0]![1], 0) + padDim0;
  const whole = pieces.length === 1 && padDim0 === 0 && first.every(([s, l], d) => s === 0 && l === shape[d]);
  return { tensor, pieces, padDim0, shape: out, whole };
}

function normalizeBox(tensor: CanonicalTensor, ranges: readonly DimRange[]): Box {
  const shape = tensor.shape;
  if (!Array.isArray(ranges)) throw viewError('TC_ERR_VIEW_INVALID', 'a box must be an array of ranges', tensor.name);
  if (ranges.length > shape.length) {
    throw viewError(
      'TC_ERR_VIEW_RANK_MISMATCH',
      `view gives ${ranges.length} dimensions but the tensor has ${shape.length} (shape [${shape.join(', ')}])`,
      tensor.name,
    );
  }
  return shape.map((size, d) => {
    const r: unknown = ranges[d] ?? null;
    if (r === null) return [0, size] as const;
    if (!Array.isArray(r) || r.length !== 2 || !Number.isSafeInteger(r[0]) || !Number.isSafeInteger(r[1])) {
      throw viewError('TC_ERR_VIEW_INVALID', `dimension ${d}: a range is [start, length] of integers or null`, tensor.name);
    }
    const [first, length] = r as [number, number];
    const start = first < 0 ? size + first : first;
    if (start < 0 || start > size || length < 0 || start + length > size) {
      throw viewError(
        'TC_ERR_VIEW_OUT_OF_RANGE',
        `dimension ${d}: range [${first}, ${length}] falls outside size ${size} (shape [${shape.join(', ')}])`,
        tensor.name,
      );
    }
    return [start, length] as const;
  });
}

function viewError(
  code: 'TC_ERR_VIEW_INVALID' | 'TC_ERR_VIEW_UNKNOWN_TENSOR' | 'TC_ERR_VIEW_RANK_MISMATCH' | 'TC_ERR_VIEW_OUT_OF_RANGE',
  message: string,
  tensor: string,
): Error {
  return tcError(code, `tensor '${tensor}': ${message}`, { details: { tensor } });
}

/**
 * Parses the JSON form of a view: `{"<tensor>": [[start, length] | null, ...], ...}`, where a tensor's
 * value may also be null (the whole tensor) or `{"pieces": [[...], ...], "padDim0": n}`.
 *
 * @throws TC_ERR_VIEW_INVALID naming what is wrong.
 */
export function parseViewJson(text: string, what = '--view'): ViewSpec {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw tcError('TC_ERR_VIEW_INVALID', `${what}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw tcError('TC_ERR_VIEW_INVALID', `${what}: expected an object mapping tensor names to ranges`);
  }
  const out: Record<string, TensorViewSpec> = {};
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    out[name] = parseTensorSpec(v, `${what}: tensor '${name}'`);
  }
  return out;
}

function parseTensorSpec(v: unknown, where: string): TensorViewSpec {
  if (v === null) return null;
  if (Array.isArray(v)) return v.map((r, d) => parseRange(r, `${where} dimension ${d}`));
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => k !== 'pieces' && k !== 'padDim0');
    if (extra.length > 0 || !Array.isArray(o['pieces'])) {
      throw tcError('TC_ERR_VIEW_INVALID', `${where}: expected a list of ranges, null, or {"pieces": [...], "padDim0": n}`);
    }
    const pieces = (o['pieces'] as unknown[]).map((p, i) => {
      if (!Array.isArray(p)) throw tcError('TC_ERR_VIEW_INVALID', `${where} piece ${i}: expected a list of ranges`);
      return p.map((r, d) => parseRange(r, `${where} piece ${i} dimension ${d}`));
    });
    const pad = o['padDim0'];
    if (pad !== undefined && (typeof pad !== 'number' || !Number.isSafeInteger(pad) || pad < 0)) {
      throw tcError('TC_ERR_VIEW_INVALID', `${where}: padDim0 must be a non-negative integer`);
    }
    return pad === undefined ? { pieces } : { pieces, padDim0: pad };
  }
  throw tcError('TC_ERR_VIEW_INVALID', `${where}: expected a list of ranges or null`);
}

function parseRange(r: unknown, where: string): DimRange {
  if (r === null) return null;
  if (Array.isArray(r) && r.length === 2 && r.every((x) => typeof x === 'number' && Number.isSafeInteger(x))) {
    return [r[0] as number, r[1] as number];
  }
  throw tcError('TC_ERR_VIEW_INVALID', `${where}: expected [start, length] of integers or null, got ${JSON.stringify(r)}`);
}

/**
 * The spec that normalizes back to `view` (undefined for the identity): how a client sends a view it
 * computed to a daemon, which normalizes it again and checks the view id.
 */
export function specOfView(view: NormalizedView): ViewSpec | undefined {
  if (view.isIdentity) return undefined;
  const out: Record<string, TensorViewSpec> = {};
  for (const s of view.selections) {
    out[s.tensor.name] = s.whole ? null : { pieces: s.pieces.map((box) => box.map(([a, b]) => [a, b] as const)), padDim0: s.padDim0 };
  }
  return out;
}
