// The streaming weight iterator: yields the tensors of a planned load one by one, in plan (index) order, as
// soon as their bytes arrived, reading the plan's output in windows of whole tensors with a bound on the
// bytes fetched but not yet handed to the consumer. The shape engines' loaders consume
// (`for name, tensor in weights_iterator`), without a buffer as large as the whole rank.

import { tcError } from '../core/errors.js';
import type { Dtype } from '../core/dtypes.js';
import type { PlannedTensor } from '../protocol/http/loads.js';
import type { Transfer } from './transfers.js';

/** Default of {@link WeightStreamOptions.maxInFlightBytes}: 256 MiB. */
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 256 * 1024 * 1024;

/** One tensor of the stream. Its `data` is the consumer's to keep: no later read writes into it. */
export interface WeightTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Row-major bytes of the tensor (of the view, for a TP rank or a view). */
  readonly data: Uint8Array;
}

/** Options of {@link streamWeights}. */
export interface WeightStreamOptions {
  /**
   * The most bytes fetched (or being fetched) but not yet handed over: a tensor counts until the consumer
   * asks for the next one after it. Default {@link DEFAULT_MAX_IN_FLIGHT_BYTES}. A tensor larger than this
   * is read alone, with nothing else in flight.
   */
  readonly maxInFlightBytes?: number;
}

/** A run of consecutive tensors read with one transfer read into one buffer. */
interface Window {
  readonly tensors: readonly PlannedTensor[];
  readonly start: number;
  readonly end: number;
}

/**
 * Groups tensors (in output order) into windows of at most `windowBytes` of output each; a tensor larger
 * than that gets a window of its own.
 *
 * @example planWindows(plan.tensors, 64 << 20)
 */
export function planWindows(tensors: readonly PlannedTensor[], windowBytes: number): Window[] {
  const windows: Window[] = [];
  let group: PlannedTensor[] = [];
  const flush = (): void => {
    if (group.length === 0) return;
    const last = group[group.length - 1]!;
    windows.push({ tensors: group, start: group[0]!.offset, end: last.offset + last.byteLength });
    group = [];
  };
  for (const t of tensors) {
    if (group.length > 0 && t.offset + t.byteLength - group[0]!.offset > windowBytes) flush();
    group.push(t);
  }
  flush();
  return windows;
}

/**
 * Yields every tensor of `tensors` (in the order given, which must be output order) read through
 * `transfer`. Windows of about a quarter of `maxInFlightBytes` are fetched ahead while the consumer works,
 * as long as the fetched-but-unconsumed bytes stay within `maxInFlightBytes`. When the consumer stops
 * early (break, return, throw) or a read fails, no new read starts, reads under way are cancelled or
 * waited for, and the transfer is closed; it is closed at the end in every case.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a bad maxInFlightBytes; whatever the transfer's reads throw
 *   (TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE, TC_ERR_CHECKSUM, ...)
 * @example
 * const plan = await client.plan('model:llama:v1', { tp: { size: 4, rank: 0 } });
 * for await (const t of streamWeights(plan.tensors, await client.openTransfer(plan))) engine.load(t.name, t.data);
 */
export async function* streamWeights(
  tensors: readonly PlannedTensor[],
  transfer: Transfer,
  options: WeightStreamOptions = {},
): AsyncGenerator<WeightTensor, void, undefined> {
  const max = options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
  if (!Number.isSafeInteger(max) || max < 1) {
    await transfer.close();
    throw tcError('TC_ERR_INVALID_ARGUMENT', `maxInFlightBytes must be a positive integer, got ${String(max)}`);
  }
  for (let i = 1; i < tensors.length; i++) {
    if (tensors[i]!.offset < tensors[i - 1]!.offset + tensors[i - 1]!.byteLength) {
      await transfer.close();
      throw tcError('TC_ERR_INTERNAL', `the plan's tensors are not in output order at '${tensors[i]!.name}'`);
    }
  }
  const windows = planWindows(tensors, Math.max(1, Math.floor(max / 4)));
  const abort = new AbortController();
  /** Windows started and not yet consumed, in order; each with its read. */
  const ahead: { window: Window; bytes: number; buffer: Uint8Array; read: Promise<void> }[] = [];
  let next = 0;
  let inFlight = 0;
  const startReads = (): void => {
    while (next < windows.length) {
      const w = windows[next]!;
      const bytes = w.end - w.start;
      if (ahead.length > 0 && inFlight + bytes > max) return;
      const buffer = Buffer.allocUnsafeSlow(bytes);
      const read = transfer.read(w.start, w.end, buffer, abort.signal);
      // A read the consumer never reaches (early stop) must not be an unhandled rejection.
      read.catch(() => undefined);
      ahead.push({ window: w, bytes, buffer, read });
      inFlight += bytes;
      next++;
    }
  };
  try {
    while (next < windows.length || ahead.length > 0) {
      startReads();
      const head = ahead[0]!;
      await head.read;
      for (const t of head.window.tensors) {
        const at = t.offset - head.window.start;
        yield { name: t.name, dtype: t.dtype, shape: t.shape, data: head.buffer.subarray(at, at + t.byteLength) };
      }
      ahead.shift();
      inFlight -= head.bytes;
    }
  } finally {
    if (ahead.length > 0) {
      abort.abort(tcError('TC_ERR_ABORTED', 'the weight stream was closed'));
      await Promise.allSettled(ahead.map((a) => a.read));
    }
    await transfer.close();
  }
}
