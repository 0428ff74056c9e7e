// One codec per data-plane control message (docs/protocol.md): HELLO, WELCOME, LOAD, END and ERROR are
// defined here once, with their JSON schema; the daemon's server and every data-plane client encode and
// parse them through these codecs and never retype a payload.

import { z } from 'zod';
import { errorFromWire, type TensorcastError } from '../core/errors.js';
import { encodeControl, FrameType, parseControl, protocolError, type FrameTypeCode } from './frames.js';
import { ROUTE_KINDS } from './route-kinds.js';

/** A control message: its frame type, its schema, and the codec built from them. */
export interface MessageCodec<T> {
  readonly type: FrameTypeCode;
  readonly name: string;
  /** Encodes a frame carrying `body` for request `requestId` (0 for connection-level messages). */
  encode(requestId: number, body: T): Buffer;
  /** Parses and validates a payload. @throws TC_ERR_PROTOCOL naming the message and the field */
  decode(payload: Uint8Array): T;
}

function defineMessage<S extends z.ZodType>(type: FrameTypeCode, name: string, schema: S): MessageCodec<z.infer<S>> {
  return {
    type,
    name,
    encode: (requestId, body) => encodeControl(type, requestId, body),
    decode: (payload) => {
      const r = schema.safeParse(parseControl(payload, name));
      if (!r.success) {
        const problems = r.error.issues.map((i) => `${i.path.join('.') || 'payload'}: ${i.message}`);
        throw protocolError(`${name} frame: ${problems.join('; ')}`);
      }
      return r.data;
    },
  };
}

const offset = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** HELLO: the first frame of a connection, client to daemon. */
export const Hello = defineMessage(
  FrameType.HELLO,
  'HELLO',
  z.object({ version: z.number().int(), token: z.string().max(4096), client: z.string().max(256).optional() }),
);
/** The body of {@link Hello}. */
export type HelloBody = ReturnType<typeof Hello.decode>;

/** WELCOME: the daemon accepted the token. */
export const Welcome = defineMessage(
  FrameType.WELCOME,
  'WELCOME',
  z.object({ daemonId: z.string(), version: z.number().int(), frameBytes: z.number().int().positive() }),
);

/** LOAD: send bytes `[start, end)` of a view's output; `credit` is the initial window in bytes. */
export const Load = defineMessage(
  FrameType.LOAD,
  'LOAD',
  z.object({
    artifactId: z.string().min(1).max(256),
    view: z.record(z.string(), z.unknown()).nullable(),
    viewId: z.string().max(256).nullable(),
    start: offset,
    end: offset,
    credit: offset,
    timeoutMs: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  }),
);
/** The body of {@link Load}. */
export type LoadBody = ReturnType<typeof Load.decode>;

/** END: the request is complete; says which route served it and how the bytes were produced. */
export const End = defineMessage(
  FrameType.END,
  'END',
  z.object({
    bytes: offset,
    route: z.enum(ROUTE_KINDS),
    source: z.string().max(64),
    viewId: z.string().max(256).nullable(),
  }),
);
/** The body of {@link End}. */
export type EndBody = ReturnType<typeof End.decode>;

/** ERROR: a request (request id > 0) or the whole connection (request id 0) failed. */
export const ErrorMessage = defineMessage(
  FrameType.ERROR,
  'ERROR',
  z.object({ code: z.string().max(128), message: z.string().max(64 << 10), retryable: z.boolean().optional() }),
);

/** Encodes an ERROR frame for `error`. */
export function encodeError(requestId: number, error: TensorcastError): Buffer {
  return ErrorMessage.encode(requestId, { code: error.code, message: error.message, retryable: error.retryable });
}

/** Rebuilds the error an ERROR frame reports (the same class as on the peer). @throws TC_ERR_PROTOCOL */
export function decodeError(payload: Uint8Array, peer: string): TensorcastError {
  const body = ErrorMessage.decode(payload);
  return errorFromWire(body.code, body.message, `${peer} error`);
}
