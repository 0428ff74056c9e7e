// The SDK's HTTP side: one undici Agent (keep-alive, TLS and client certificates) per client, the bearer
// token on every request, answers capped in size, error bodies rebuilt into the service's coded errors
// (with their details: a 409 names both hashes). The compatibility check of a rank answer lives here too,
// because it must happen on the headers, before a byte of the body is decoded.

import { Agent, request, type Dispatcher } from 'undici';
import { errorFromWire, isTensorcastError, tcError, type TensorcastError } from '../../core/errors.js';
import { COMPAT_HASH_HEADER, EXPIRES_AT_HEADER, INCARNATION_HEADER, MSGPACK_TYPE, rankPath } from '../../protocol/http/handshake.js';
import { decodeRankMetadata, type RankMetadata } from '../rank-metadata.js';

/** TLS material for https:// listeners (PEM strings or Buffers). */
export interface HandshakeClientTlsOptions {
  /** CA certificate(s) that signed the listener's certificate (default: the system's roots). */
  readonly ca?: string | Buffer;
  /** Client certificate and key, for listeners that require one (mTLS). */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** How to reach a handshake listener. */
export interface HandshakeHttpOptions {
  /** Base URL, `http://host:port` or `https://host:port`. */
  readonly url: string;
  /** Bearer token (every route but health needs it). */
  readonly token?: string;
  readonly tls?: HandshakeClientTlsOptions;
  /** Largest answer body accepted (default 4 MiB plus a margin, the listener's default payload cap). */
  readonly maxAnswerBytes?: number;
}

/** One rank as the listener answered it. */
export interface RankAnswer {
  readonly meta: RankMetadata;
  /** The payload bytes exactly as published. */
  readonly payload: Uint8Array;
  readonly expiresAtMs: number;
}

/**
 * How long a request may take: `timeoutMs` bounds the wait for the answer's headers and each gap in its body
 * (undici's own timers, far cheaper per request than an AbortSignal); `signal` also aborts it.
 */
export interface Deadline {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

const DEFAULT_MAX_ANSWER_BYTES = 4 * 1024 * 1024 + 64 * 1024;

/** Node and undici error codes of a connection that broke before any answer: the request is sent once more. */
const STALE_SOCKET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/**
 * Requests to one handshake listener.
 *
 * @example const http = new HandshakeHttp({ url: 'http://127.0.0.1:7072', token }); await http.json('GET', '/v1/engines');
 */
export class HandshakeHttp {
  private readonly agent: Agent;
  private readonly base: URL;
  private readonly origin: string;
  private readonly maxAnswerBytes: number;

  constructor(private readonly options: HandshakeHttpOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch (error) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `handshake url '${options.url}' is not a URL`, { cause: error });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `handshake url '${options.url}' must be http:// or https://`);
    }
    this.base = base;
    this.origin = base.origin;
    this.maxAnswerBytes = options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
    const tls = options.tls ?? {};
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      // Every request carries its own deadline (an AbortSignal) instead of undici's 300 s defaults.
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: {
        timeout: 10_000,
        ...(tls.ca === undefined ? {} : { ca: tls.ca }),
        ...(tls.cert === undefined ? {} : { cert: tls.cert }),
        ...(tls.key === undefined ? {} : { key: tls.key }),
      },
    });
  }

  /** The listener's base URL. */
  get url(): string {
    return this.base.origin;
  }

  /**
   * Sends one request; resolves with a 2xx answer, or throws the listener's error rebuilt (details kept,
   * plus `status`). A connection found broken before any answer is retried once on a fresh one (every
   * handshake route is idempotent).
   *
   * @throws TC_ERR_UNAVAILABLE (cannot connect, TLS refused), TC_ERR_TIMEOUT / TC_ERR_ABORTED (signal), the listener's error
   */
  async send(
    method: Dispatcher.HttpMethod,
    path: string,
    init: { headers?: Record<string, string>; body?: Uint8Array | string; deadline: Deadline },
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.options.token !== undefined) headers['authorization'] = `Bearer ${this.options.token}`;
    const go = (): Promise<Dispatcher.ResponseData> =>
      request(this.origin + path, {
        method,
        headers,
        dispatcher: this.agent,
        headersTimeout: Math.max(1, Math.ceil(init.deadline.timeoutMs)),
        bodyTimeout: Math.max(1, Math.ceil(init.deadline.timeoutMs)),
        ...(init.deadline.signal === undefined ? {} : { signal: init.deadline.signal }),
        ...(init.body === undefined ? {} : { body: init.body }),
      });
    let res: Dispatcher.ResponseData;
    try {
      try {
        res = await go();
      } catch (error) {
        if (init.deadline.signal?.aborted === true || !STALE_SOCKET_CODES.has(errorCode(error) ?? '')) throw error;
        res = await go();
      }
    } catch (error) {
      throw this.requestError(error, method, path, init.deadline);
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return res;
    const text = await readCapped(res, 64 * 1024, init.deadline)
      .then((b) => Buffer.from(b).toString('utf8'))
      .catch(() => '');
    throw errorFromAnswer(res.statusCode, text, `${method} ${path}`);
  }

  /** A JSON request (body serialized when given); resolves with the parsed answer. */
  async json<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    deadline: Deadline,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<T> {
    const res = await this.send(method, path, {
      deadline,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const bytes = await readCapped(res, this.maxAnswerBytes, deadline);
    try {
      return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
    } catch (error) {
      throw tcError('TC_ERR_PROTOCOL', `${method} ${path}: the listener's answer is not JSON`, { cause: error });
    }
  }

  /**
   * GETs one rank. With `expectHash`, the answer's compatibility header is compared with it before the
   * body is read: a mismatch is TC_ERR_INCOMPATIBLE and the body is discarded undecoded. The decoded
   * payload must then name the rank asked for and agree with the answer's headers.
   *
   * @throws TC_ERR_INCOMPATIBLE (details expected, actual); TC_ERR_MALFORMED; TC_ERR_NOT_FOUND; TC_ERR_EXPIRED; see send()
   */
  async rank(engineId: string, tpRank: number, dpRank: number, expectHash: string | undefined, deadline: Deadline): Promise<RankAnswer> {
    const path = rankPath(engineId, tpRank, dpRank);
    const res = await this.send('GET', path, {
      deadline,
      headers: { accept: MSGPACK_TYPE, ...(expectHash === undefined ? {} : { [COMPAT_HASH_HEADER]: expectHash }) },
    });
    const hash = header(res, COMPAT_HASH_HEADER);
    if (expectHash !== undefined && hash !== expectHash) {
      discard(res);
      throw tcError(
        'TC_ERR_INCOMPATIBLE',
        `engine '${engineId}' rank ${tpRank}/${dpRank} has compatibility hash '${hash ?? '(none)'}', expected '${expectHash}': not decoded`,
        { details: { expected: expectHash, actual: hash ?? '', engineId, tpRank, dpRank } },
      );
    }
    if (hash === undefined) {
      discard(res);
      throw tcError('TC_ERR_PROTOCOL', `GET ${path}: the answer has no ${COMPAT_HASH_HEADER} header`);
    }
    const payload = await readCapped(res, this.maxAnswerBytes, deadline);
    const meta = decodeRankMetadata(payload, this.maxAnswerBytes);
    const incarnation = header(res, INCARNATION_HEADER);
    const mismatch =
      meta.engineId !== engineId
        ? 'engine id'
        : meta.tpRank !== tpRank || meta.dpRank !== dpRank
          ? 'rank'
          : meta.compatibilityHash !== hash
            ? 'compatibility hash'
            : incarnation !== undefined && meta.incarnation !== incarnation
              ? 'incarnation'
              : undefined;
    if (mismatch !== undefined) {
      throw tcError('TC_ERR_MALFORMED', `GET ${path}: the payload's ${mismatch} disagrees with the request or the answer's headers`, {
        details: { engineId, tpRank, dpRank },
      });
    }
    const expires = Number(header(res, EXPIRES_AT_HEADER));
    return { meta, payload, expiresAtMs: Number.isFinite(expires) ? expires : 0 };
  }

  /** Closes the connections once the requests on them are answered. */
  close(): Promise<void> {
    return this.agent.close();
  }

  /** Closes the connections now, failing the requests still on them. */
  destroy(): Promise<void> {
    return this.agent.destroy();
  }

  private requestError(error: unknown, method: string, path: string, deadline: Deadline): TensorcastError {
    if (isTensorcastError(error)) return error;
    const { signal } = deadline;
    if (signal?.aborted === true) {
      const reason: unknown = signal.reason;
      if (isTensorcastError(reason)) return reason;
      if ((reason as Error | undefined)?.name === 'TimeoutError') {
        return tcError('TC_ERR_TIMEOUT', `${method} ${path}: no answer from ${this.url} in time`, { cause: error });
      }
      return tcError('TC_ERR_ABORTED', `${method} ${path}: aborted`, { cause: error });
    }
    if (TIMEOUT_CODES.has(errorCode(error) ?? '')) {
      return tcError('TC_ERR_TIMEOUT', `${method} ${path}: no answer from ${this.url} in ${Math.ceil(deadline.timeoutMs)} ms`, {
        cause: error,
      });
    }
    const code = errorCode(error);
    return tcError('TC_ERR_UNAVAILABLE', `cannot reach the handshake listener at ${this.url}${code === undefined ? '' : ` (${code})`}`, {
      cause: error,
      details: { url: this.url, ...(code === undefined ? {} : { reason: code }) },
    });
  }
}

/** The error a listener answered with: its code, message and details, plus `status`. */
export function errorFromAnswer(status: number, text: string, what: string): TensorcastError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  const details: Record<string, string | number | boolean> = {};
  if (typeof e?.details === 'object' && e.details !== null) {
    for (const [k, v] of Object.entries(e.details)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') details[k] = v;
    }
  }
  details['status'] = status;
  if (e === undefined) {
    // Not one of our error bodies (a proxy, another service): judge by the status alone.
    const code =
      status === 401 ? 'TC_ERR_AUTH' : status === 404 ? 'TC_ERR_NOT_FOUND' : status >= 500 ? 'TC_ERR_UNAVAILABLE' : 'TC_ERR_PROTOCOL';
    return tcError(code, `${what}: the listener answered HTTP ${status}`, { details });
  }
  return errorFromWire(e.code, e.message, `${what}: the listener answered HTTP ${status}`, { details: details });
}

/** Drops an answer's body unread (its connection is closed rather than drained). */
function discard(res: Dispatcher.ResponseData): void {
  res.body.on('error', () => undefined);
  res.body.destroy();
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function errorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Reads an answer body, refusing it above `cap` bytes (declared or observed). */
export async function readCapped(res: Dispatcher.ResponseData, cap: number, deadline: Deadline): Promise<Uint8Array> {
  const declared = Number(header(res, 'content-length'));
  if (Number.isFinite(declared) && declared > cap) {
    discard(res);
    throw tcError('TC_ERR_TOO_LARGE', `the listener's answer of ${declared} bytes is above the cap of ${cap}`, {
      details: { bytes: declared, cap },
    });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    // The common case, a declared length within the cap: undici's own consumer (faster than iterating).
    if (Number.isFinite(declared)) return Buffer.from(await res.body.arrayBuffer());
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (total > cap) {
        discard(res);
        throw tcError('TC_ERR_TOO_LARGE', `the listener's answer is above the cap of ${cap} bytes`, { details: { cap } });
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (isTensorcastError(error)) throw error;
    const { signal } = deadline;
    if (signal?.aborted === true && isTensorcastError(signal.reason)) throw signal.reason;
    if (signal?.aborted === true || TIMEOUT_CODES.has(errorCode(error) ?? '')) {
      throw tcError('TC_ERR_TIMEOUT', `the listener's answer did not arrive in time`, { cause: error });
    }
    throw tcError('TC_ERR_UNAVAILABLE', `the connection broke while the listener's answer was read`, { cause: error });
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}
