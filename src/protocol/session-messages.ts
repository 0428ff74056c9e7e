// The data-plane messages of the session KV cache (docs/protocol.md "Sessions"): SAPPEND and SREAD (client ->
// daemon), and the INFO and DONE bodies the daemon answers them with. The bytes move as for object PUT and GET:
// an append's DATA within the daemon's CREDIT, a read's DATA within the client's. The JSON bodies are those of
// SessionAppendRequest / SessionReadRequest (src/protocol/http/sessions.ts), plus an append's `eager`.

import { z } from 'zod';
import { FrameType } from './frames.js';
import { defineMessage, PUT_EAGER_MAX_BYTES } from './messages.js';

const offset = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** Session ids are checked by the cache (SESSION_ID_PATTERN); here only bounded. */
const sessionId = z.string().min(1).max(128);
const expectHash = z.string().min(1).max(64).optional();
const timeoutMs = z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional();

/**
 * SAPPEND: append `size` bytes (whole tokens) to `sessionId` at `tokenOffset` (the session's end). The daemon
 * validates and reserves (errors before any CREDIT), grants CREDIT, lands the DATA frames (in order, each
 * with its CRC32C, within the credit) in the reserved hot memory, commits (write-through to the cold tier,
 * one metadata update) and answers DONE `{bytes, tokens, version}`. `eager`: as for PUT, the first `eager`
 * bytes (at most 1 MiB and `size`) go right behind the SAPPEND without waiting for CREDIT.
 */
export const SAppend = defineMessage(
  FrameType.SAPPEND,
  'SAPPEND',
  z
    .object({
      sessionId,
      tokenOffset: offset,
      size: offset,
      expectHash,
      timeoutMs,
      eager: z.number().int().nonnegative().max(PUT_EAGER_MAX_BYTES).optional(),
    })
    .strict()
    .refine((b) => (b.eager ?? 0) <= b.size, { message: 'eager is larger than size' }),
);
/** The body of {@link SAppend}. */
export type SAppendBody = ReturnType<typeof SAppend.decode>;

/**
 * SREAD: send the KV bytes of tokens `[tokenStart, tokenEnd)` of `sessionId`. `expectBytes` (the caller's
 * buffer) must equal the range's bytes (else TC_ERR_DESTINATION_SIZE before INFO); `credit` as for GET.
 */
export const SRead = defineMessage(
  FrameType.SREAD,
  'SREAD',
  z.object({ sessionId, tokenStart: offset, tokenEnd: offset, expectBytes: offset, credit: offset, expectHash, timeoutMs }).strict(),
);
/** The body of {@link SRead}. */
export type SReadBody = ReturnType<typeof SRead.decode>;

/** INFO of an SREAD: the bytes about to be sent, and whether the session was hot on this daemon. */
export const SessionInfo = defineMessage(FrameType.INFO, 'INFO', z.object({ size: offset, hit: z.boolean() }));
/** The body of {@link SessionInfo}. */
export type SessionInfoBody = ReturnType<typeof SessionInfo.decode>;

/**
 * DONE of an SAPPEND (`tokens`: the session's tokens after it; `version`: its record's version) or an SREAD
 * (`bytes` only).
 */
export const SessionDone = defineMessage(
  FrameType.DONE,
  'DONE',
  z.object({ bytes: offset, tokens: offset.optional(), version: offset.optional() }),
);
/** The body of {@link SessionDone}. */
export type SessionDoneBody = ReturnType<typeof SessionDone.decode>;
