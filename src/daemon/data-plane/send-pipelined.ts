// Sending a range that is produced on the way (a view streamed through staging buffers): the range is cut
// into blocks, several blocks are produced at once (reads on the libuv pool) into a few slots, each
// block's frame CRCs are computed as it lands, and blocks go out strictly in order as soon as they are
// ready, so reading and sending overlap instead of taking turns.

import { Limiter } from '../../core/async.js';
import { tcError } from '../../core/errors.js';
import { withDeadline } from '../../store/deadline.js';
import type { FrameSink } from '../../transport/data-server.js';

/** What {@link sendPipelined} sends, and how. */
export interface PipelineOptions {
  /** Output range `[start, end)` to send. */
  readonly start: number;
  readonly end: number;
  /**
   * Memory the blocks are produced into, reused round robin (each at least `blockBytes` long): the
   * pipeline holds no more than these. A slot is produced into again only once the socket no longer
   * holds any frame sent from it.
   */
  readonly slots: readonly Uint8Array[];
  /** Output bytes per block (one production). */
  readonly blockBytes: number;
  /** Payload bytes per DATA frame (a block is sent as one or more frames). */
  readonly frameBytes: number;
  /** Productions running at once (capped at the number of slots). */
  readonly maxInFlight: number;
  /** Unix ms: every wait ends by then with TC_ERR_TIMEOUT. */
  readonly deadline: number;
  /** Names the request in error messages. */
  readonly what: string;
  /** Fills `dest` with output bytes `[start, end)`; a rejection fails the send with its error. */
  produce(start: number, end: number, dest: Uint8Array): Promise<void>;
  /** CRC32C of one frame's payload (may run off the event loop). */
  crc(payload: Uint8Array): Promise<number>;
}

/** A produced block: its frames with their CRCs. */
interface Produced {
  readonly at: number;
  readonly frames: readonly Uint8Array[];
  readonly crcs: readonly number[];
}

/**
 * Sends `[start, end)` through `sink`, producing it block by block with up to `maxInFlight` productions
 * under way. Frames leave in output order; credit and socket backpressure come from `sink.ready`.
 *
 * On any failure (a block's production, a cancel, the deadline) nothing after the failed point is sent,
 * and when this settles no production is still writing into a slot and the socket holds no byte of one
 * (a peer that stops reading until the deadline loses its connection), so the caller may reuse the slots.
 *
 * @throws the first production error with its code; TC_ERR_ABORTED, TC_ERR_TIMEOUT from the sink or a wait.
 * @example await sendPipelined({ start, end, slots, blockBytes: 4 << 20, frameBytes: 4 << 20, maxInFlight: 4,
 *   deadline, what: 'request 7', produce, crc: crc32cAsync }, sink);
 */
export async function sendPipelined(o: PipelineOptions, sink: FrameSink): Promise<void> {
  if (o.slots.length === 0 || o.blockBytes < 1 || o.frameBytes < 1)
    throw tcError('TC_ERR_INTERNAL', 'sendPipelined: no slot or an empty block');
  for (const s of o.slots) if (s.length < o.blockBytes) throw tcError('TC_ERR_INTERNAL', 'sendPipelined: a slot is smaller than a block');
  const blocks = Math.ceil((o.end - o.start) / o.blockBytes);
  const k = o.slots.length;
  const limiter = new Limiter(Math.max(1, Math.min(o.maxInFlight, k)));
  /** Per slot: resolves when the socket no longer holds any frame of the block last sent from it. */
  const flushed: Promise<void>[] = o.slots.map(() => Promise.resolve());
  const started: Promise<Produced>[] = [];
  let stopped = false;
  /** What a block the send stopped before gets (never reaches the caller: the send already failed). */
  const skipped = (): Error => tcError('TC_ERR_ABORTED', `${o.what}: the send stopped before this block`);
  let stop: () => void = () => undefined;
  /** Resolves once the send stopped: blocks still waiting for their slot give up at once. */
  const stopping = new Promise<void>((resolve) => (stop = resolve));

  const start = (b: number): void => {
    const slot = o.slots[b % k]!;
    const previous = flushed[b % k]!;
    const from = o.start + b * o.blockBytes;
    const to = Math.min(o.end, from + o.blockBytes);
    const block = (async (): Promise<Produced> => {
      await Promise.race([withDeadline(previous, o.deadline, `${o.what}: waiting for the peer to read`), stopping]);
      if (stopped) throw skipped();
      const dest = slot.subarray(0, to - from);
      await limiter.run(async () => {
        if (stopped) throw skipped();
        await o.produce(from, to, dest);
      });
      if (stopped) throw skipped();
      const frames: Uint8Array[] = [];
      for (let at = 0; at < dest.length; at += o.frameBytes) frames.push(dest.subarray(at, Math.min(dest.length, at + o.frameBytes)));
      return { at: from, frames, crcs: await Promise.all(frames.map((f) => o.crc(f))) };
    })();
    // Settled in the finally below when the send stops before it reaches this block.
    block.catch(() => undefined);
    started.push(block);
  };

  try {
    for (let b = 0; b < blocks; b++) {
      // Keep every slot busy: block b + k - 1 goes into the slot block b - 1 was just sent from.
      while (started.length < Math.min(blocks, b + k)) start(started.length);
      const block = await withDeadline(started[b]!, o.deadline, `${o.what}: producing bytes [${o.start + b * o.blockBytes}, ...)`);
      const sent: Promise<void>[] = [];
      let at = block.at;
      for (let f = 0; f < block.frames.length; f++) {
        const payload = block.frames[f]!;
        await sink.ready(at, payload.length);
        sent.push(sink.send(at, payload, block.crcs[f]));
        at += payload.length;
      }
      flushed[b % k] = Promise.all(sent).then(() => undefined);
    }
  } finally {
    stopped = true;
    stop();
    // No production may write into a slot once the caller has it back.
    await Promise.allSettled(started);
    // A peer that stops reading past the deadline loses its connection, which lets go of the bytes.
    await withDeadline(Promise.all(flushed), o.deadline, `${o.what}: flushing`).catch(() => {
      sink.abandon();
      return Promise.all(flushed);
    });
  }
}
