// The session side of the data-plane server (docs/protocol.md "Sessions"): the shape of the session cache the
// server is given (transport does not import sessions: SessionCacheEngine has this shape), and the receiver a
// SAPPEND's DATA lands through. A SAPPEND is served like an object PUT (credit, in-order DATA straight into the
// reserved hot memory, abort on any failure), an SREAD like a GET (INFO, DATA within the client's credit, DONE).

import { tcError } from '../core/errors.js';
import { SESSIONS_DISABLED_MESSAGE } from '../protocol/http/sessions.js';
import { Done } from '../protocol/messages.js';
import { SessionDone, type SAppendBody } from '../protocol/session-messages.js';
import type { ObjectPutSession } from './data-server.js';

/** The error SAPPEND and SREAD get from a daemon without sessions (message and `reason` as the control routes give them). */
export function sessionsNotEnabled(): Error {
  return tcError('TC_ERR_NOT_FOUND', SESSIONS_DISABLED_MESSAGE, { details: { reason: 'sessions_disabled' } });
}

/** Options the server passes to the cache with each request. */
export interface SessionServeOptions {
  readonly expectHash?: string;
  readonly timeoutMs?: number;
}

/** An append whose room is reserved: its bytes land in `dest`. The session cache's PendingAppend. */
export interface SessionAppendLanding {
  /** Exactly the append's size. */
  readonly dest: Uint8Array;
  /** Writes through to the cold tier and records the entry. */
  commit(): Promise<{ readonly tokens: number; readonly version: number }>;
  /** Gives the room back (idempotent). */
  abort(): void;
}

/** A read in progress, the session pinned until `close`. The session cache's OpenRead. */
export interface SessionReadSource {
  readonly bytes: number;
  readonly hit: boolean;
  /** The range's bytes in order; the views stay valid until `close`. */
  chunks(): AsyncIterable<Uint8Array>;
  close(): void;
}

/** The session cache as the data plane sees it (the daemon passes its SessionCache). */
export interface SessionHandler {
  /** @throws the cache's coded errors (gap, overlap, partial token, conflict, incompatible, not found) */
  prepareAppend(sessionId: string, tokenOffset: number, size: number, options?: SessionServeOptions): Promise<SessionAppendLanding>;
  /** @throws TC_ERR_SOURCE_RANGE, TC_ERR_INCOMPATIBLE, TC_ERR_NOT_FOUND, ... */
  openRead(
    sessionId: string,
    range: { readonly tokenStart: number; readonly tokenEnd: number },
    options?: SessionServeOptions,
  ): Promise<SessionReadSource>;
}

/** How a served session request ended (for metrics). */
export interface SessionOutcome {
  readonly op: 'append' | 'read';
  readonly outcome: 'ok' | 'error' | 'cancelled';
  readonly code: string | undefined;
  readonly bytes: number;
  readonly seconds: number;
}

/**
 * Where the DATA of a PUT or a SAPPEND lands and how it ends: `finish` commits and answers the DONE frame.
 * For an object, its store's pending put; for a session append, the cache's hot memory.
 */
export interface Receiver {
  target(offset: number, length: number): Uint8Array | undefined;
  write(offset: number, bytes: Uint8Array): Promise<void>;
  finish(): Promise<Buffer>;
  abort(): void;
}

/** A receiver on an object store's pending put (`crc`: the whole object's, checked at the end). */
export function objectReceiver(requestId: number, size: number, crc: number | undefined, s: ObjectPutSession): Receiver {
  return {
    target: (offset, length) => s.target(offset, length),
    write: (offset, bytes) => s.write(offset, bytes),
    finish: async () => Done.encode(requestId, { bytes: size, version: (await s.finish(crc)).version }),
    abort: () => s.abort(),
  };
}

/**
 * Validates and reserves a session append (the cache's errors come before any CREDIT) and answers the
 * receiver its DATA lands through: straight in the reserved hot memory.
 *
 * @throws TC_ERR_NOT_FOUND (no sessions here), the cache's coded errors
 */
export async function appendReceiver(handler: SessionHandler | undefined, requestId: number, body: SAppendBody): Promise<Receiver> {
  if (handler === undefined) throw sessionsNotEnabled();
  const pending = await handler.prepareAppend(body.sessionId, body.tokenOffset, body.size, serveOptions(body));
  if (pending.dest.length !== body.size) {
    pending.abort();
    throw tcError('TC_ERR_INTERNAL', `session ${body.sessionId}: append memory of ${pending.dest.length} bytes for ${body.size}`);
  }
  return {
    target: (offset, length) => pending.dest.subarray(offset, offset + length),
    write: () => Promise.reject(tcError('TC_ERR_INTERNAL', 'a session append lands in memory only')),
    finish: async () => {
      const r = await pending.commit();
      return SessionDone.encode(requestId, { bytes: body.size, tokens: r.tokens, version: r.version });
    },
    abort: () => pending.abort(),
  };
}

/** The cache options of a request body. */
export function serveOptions(body: {
  readonly expectHash?: string | undefined;
  readonly timeoutMs?: number | undefined;
}): SessionServeOptions {
  return {
    ...(body.expectHash === undefined ? {} : { expectHash: body.expectHash }),
    ...(body.timeoutMs === undefined ? {} : { timeoutMs: body.timeoutMs }),
  };
}

/**
 * Cuts the read's chunks into DATA payloads of at most `frameBytes`: views of the chunks, never copies.
 *
 * @example for await (const payload of framesOf(source.chunks(), 4 << 20)) send(payload);
 */
export async function* framesOf(chunks: AsyncIterable<Uint8Array>, frameBytes: number): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.length; at += frameBytes) yield chunk.subarray(at, Math.min(chunk.length, at + frameBytes));
  }
}
