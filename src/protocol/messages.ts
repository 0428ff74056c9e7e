// One codec per data-plane control message (docs/protocol.md): HELLO, WELCOME, LOAD, END and ERROR are
// defined here once, with their JSON schema; the daemon's server and every data-plane client encode and
// parse them through these codecs and never retype a payload.

import { z } from 'zod';
import { errorFromWire, type TensorcastError } from '../core/errors.js';
import { encodeControl, FrameType, parseControl, protocolError, type FrameTypeCode } from './frames.js';
import { FALLBACK_REASONS, ROUTE_CHOICES, ROUTE_KINDS } from './route-kinds.js';

/** A control message: its frame type, its schema, and the codec built from them. */
export interface MessageCodec<T> {
  readonly type: FrameTypeCode;
  readonly name: string;
  /** Encodes a frame carrying `body` for request `requestId` (0 for connection-level messages). */
  encode(requestId: number, body: T): Buffer;
  /** Parses and validates a payload. @throws TC_ERR_PROTOCOL naming the message and the field */
  decode(payload: Uint8Array): T;
}

/** Defines a control message from its frame type, name and schema. */
export function defineMessage<S extends z.ZodType>(type: FrameTypeCode, name: string, schema: S): MessageCodec<z.infer<S>> {
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

/**
 * How a daemon fetching from another daemon wants a LOAD served: `resident` (only from a dense view the
 * source already holds in memory, else NOT_FOUND), `export` (from the source's derived-view export, with
 * begin/end fetch around it), `canonical` (canonical bytes streamed, never cached). `transferId` names the
 * fetch for begin/end fetch (idempotent per id).
 */
export const PEER_MODES = ['resident', 'export', 'canonical'] as const;

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
    /** A consumer's route choice (default auto). */
    route: z.enum(ROUTE_CHOICES).optional(),
    /** Set by a daemon fetching from another daemon. */
    peer: z
      .object({ mode: z.enum(PEER_MODES), transferId: z.string().min(1).max(128) })
      .strict()
      .optional(),
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
    /** Why the load fell back from a preferred route (remote routes only). */
    fallback: z.enum(FALLBACK_REASONS).nullable().optional(),
    /** The daemon the bytes came from (remote routes only). */
    sourceDaemon: z.string().max(256).nullable().optional(),
    /** Bytes this request pulled from other daemons (remote routes only). */
    wireBytes: offset.optional(),
    /** Source bytes read to produce this request's bytes (for amplification), where the daemon knows them. */
    readBytes: offset.optional(),
  }),
);
/** The body of {@link End}. */
export type EndBody = ReturnType<typeof End.decode>;

/** ERROR: a request (request id > 0) or the whole connection (request id 0) failed. */
export const ErrorMessage = defineMessage(
  FrameType.ERROR,
  'ERROR',
  z.object({
    code: z.string().max(128),
    message: z.string().max(64 << 10),
    retryable: z.boolean().optional(),
    /** A machine-readable reason within the code (e.g. a fallback reason), from the error's details.reason. */
    reason: z.string().max(64).optional(),
  }),
);

/** Encodes an ERROR frame for `error`. */
export function encodeError(requestId: number, error: TensorcastError): Buffer {
  const reason = (error.details as { reason?: unknown }).reason;
  return ErrorMessage.encode(requestId, {
    code: error.code,
    message: error.message,
    retryable: error.retryable,
    ...(typeof reason === 'string' ? { reason: reason.slice(0, 64) } : {}),
  });
}

/** Rebuilds the error an ERROR frame reports (the same class as on the peer, with its reason). @throws TC_ERR_PROTOCOL */
export function decodeError(payload: Uint8Array, peer: string): TensorcastError {
  const body = ErrorMessage.decode(payload);
  return errorFromWire(body.code, body.message, `${peer} error`, body.reason === undefined ? {} : { details: { reason: body.reason } });
}

// ---- Objects (docs/protocol.md "Objects") ----

const objectKey = z.string().min(3).max(2048);
const storeToken = z.string().max(4096).optional();
const timeoutMs = z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional();
const version = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * Most bytes of a PUT a client may send right behind the PUT frame, before any CREDIT (the PUT's `eager`):
 * a small put then takes one round trip (PUT + DATA -> DONE).
 */
export const PUT_EAGER_MAX_BYTES = 1 << 20;

/**
 * PUT: store `size` bytes under `key`. The daemon reserves room, then grants CREDIT (daemon -> client);
 * the client sends DATA frames in order from offset 0 within the credit; once `size` bytes landed (and
 * `crc`, the CRC32C of the whole object, matched when given) the put commits, or, with `txn`, waits
 * invisible for the transaction's commit. `ifVersion`: the key's current version must be this (null: the
 * key must not exist) or the put fails with TC_ERR_CONFLICT. `waitForRoom`: wait up to the deadline for
 * the namespace's resident-bytes limit instead of failing with TC_ERR_BACKPRESSURE at once. `eager`: the
 * client sends the first `eager` bytes (at most {@link PUT_EAGER_MAX_BYTES} and `size`) without waiting for
 * CREDIT; they count as granted, and DATA of a put the daemon refuses is dropped.
 */
export const Put = defineMessage(
  FrameType.PUT,
  'PUT',
  z
    .object({
      key: objectKey,
      size: offset,
      crc: z.number().int().nonnegative().max(0xffffffff).optional(),
      txn: z.string().min(1).max(128).optional(),
      ifVersion: version.nullable().optional(),
      ttlMs: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
      waitForRoom: z.boolean().optional(),
      storeToken,
      timeoutMs,
      eager: z.number().int().nonnegative().max(PUT_EAGER_MAX_BYTES).optional(),
    })
    .strict()
    .refine((b) => (b.eager ?? 0) <= b.size, { message: 'eager is larger than size' }),
);
/** The body of {@link Put}. */
export type PutBody = ReturnType<typeof Put.decode>;

/**
 * GET: send the object under `key`. `expectBytes` (the caller's buffer): a different size fails before any
 * byte with TC_ERR_SHORT_READ (object smaller) or TC_ERR_DESTINATION_SIZE (object larger).
 */
export const Get = defineMessage(
  FrameType.GET,
  'GET',
  z.object({ key: objectKey, expectBytes: offset.optional(), credit: offset, storeToken, timeoutMs }).strict(),
);
/** The body of {@link Get}. */
export type GetBody = ReturnType<typeof Get.decode>;

/** INFO: the object a GET sends (before its DATA frames). */
export const Info = defineMessage(FrameType.INFO, 'INFO', z.object({ size: offset, version }));
/** The body of {@link Info}. */
export type InfoBody = ReturnType<typeof Info.decode>;

/** DONE: an object PUT (committed or parked in its transaction) or GET is complete. */
export const Done = defineMessage(FrameType.DONE, 'DONE', z.object({ bytes: offset, version }));
/** The body of {@link Done}. */
export type DoneBody = ReturnType<typeof Done.decode>;
