// One range pulled from a peer's data plane into the caller's buffer, on a pooled connection; and the
// canonical bytes of a peer as a ByteSource, so the canonical route runs the same materializer as local
// loads (block reads over the wire, packed here).

import { randomUUID } from 'node:crypto';
import { tcError } from '../core/errors.js';
import type { ByteSource } from '../bytes/byte-source.js';
import type { ViewSpec } from '../layout/view.js';
import type { LoadBody } from '../protocol/messages.js';
import type { RangeEnd } from '../transport/data-connection.js';
import type { PeerClients } from './peers.js';
import { abortable } from './source-watch.js';

/** What to pull. */
export interface PeerRange {
  readonly artifactId: string;
  readonly view: ViewSpec | undefined;
  readonly viewId: string | undefined;
  readonly start: number;
  readonly end: number;
  readonly mode: NonNullable<LoadBody['peer']>['mode'];
  readonly deadline: number;
}

/**
 * Pulls `[start, end)` of a view from `peer` into `dest`. Every DATA frame is checked against its CRC32C
 * by the connection before its bytes count. When `signal` aborts, the pull is cancelled and rejects with
 * its reason once no further byte can reach `dest`.
 *
 * @throws TC_ERR_TIMEOUT at the deadline; the peer's coded error; TC_ERR_UNAVAILABLE when the connection breaks
 */
export async function pullRange(peer: PeerClients, range: PeerRange, dest: Uint8Array, signal?: AbortSignal): Promise<RangeEnd> {
  const left = range.deadline - Date.now();
  if (left <= 0) throw tcError('TC_ERR_TIMEOUT', `pulling from ${peer.daemonId}: the deadline passed`);
  const conn = await abortable(peer.data.acquire(left), signal, (c) => c.close());
  try {
    return await conn.load(
      {
        artifactId: range.artifactId,
        view: range.view,
        viewId: range.viewId,
        start: range.start,
        end: range.end,
        timeoutMs: Math.max(1, range.deadline - Date.now()),
        peer: { mode: range.mode, transferId: randomUUID() },
      },
      dest,
      signal,
    );
  } finally {
    peer.data.release(conn);
  }
}

/**
 * A peer's canonical bytes (the identity view of an artifact it stores), read over the data plane.
 * `wireBytes` counts what came over the wire.
 */
export class PeerCanonicalSource implements ByteSource {
  wireBytes = 0;

  constructor(
    private readonly peer: PeerClients,
    private readonly artifactId: string,
    readonly byteLength: number,
    private readonly deadline: number,
    private readonly signal?: AbortSignal,
  ) {}

  async read(offset: number, dest: Uint8Array): Promise<number> {
    const n = Math.min(dest.length, this.byteLength - offset);
    if (n <= 0) return 0;
    await pullRange(
      this.peer,
      {
        artifactId: this.artifactId,
        view: undefined,
        viewId: undefined,
        start: offset,
        end: offset + n,
        mode: 'canonical',
        deadline: this.deadline,
      },
      dest.subarray(0, n),
      this.signal,
    );
    this.wireBytes += n;
    return n;
  }
}
