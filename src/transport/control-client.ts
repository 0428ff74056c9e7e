// The HTTP side of the data path: JSON requests to a daemon's control API with the bearer token (used by
// the SDK, and by a daemon talking to another daemon); error bodies are rebuilt into the same
// TensorcastError classes the daemon threw. Each client owns its connection pool and closes it.

import { createReadStream } from 'node:fs';
import { Agent, fetch, Headers, type RequestInit, type Response } from 'undici';
import { tcError } from '../core/errors.js';
import { errorFromBody } from '../protocol/http/errors.js';
import { NDJSON, type Progress, type ProgressLine } from '../protocol/http/progress.js';

/** Deadline of requests that move or hash a whole model (imports, uploads, commits): 6 hours. */
export const LONG_MS = 6 * 3600_000;

/**
 * Talks to a daemon's control API.
 *
 * @example const info = await new ControlClient('http://127.0.0.1:7070', token).json('GET', '/v1/info');
 */
export class ControlClient {
  /**
   * This client's connections, without undici's own header/body timeouts (300 s by default, too short for
   * importing a large model): every request carries its own deadline instead.
   */
  private readonly agent = new Agent({ headersTimeout: 0, bodyTimeout: 0, connect: { timeout: 10_000 } });

  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 10 * 60_000,
  ) {}

  private async send(method: string, path: string, init: RequestInit = {}, timeoutMs = this.timeoutMs): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.token}`);
    let res: Response;
    const signal = init.signal ?? AbortSignal.timeout(timeoutMs);
    const request = (): Promise<Response> =>
      fetch(new URL(path, this.baseUrl), { ...init, method, headers, dispatcher: this.agent, signal });
    try {
      try {
        res = await request();
      } catch (error) {
        // A pooled connection the daemon closed while idle fails the next request before any answer
        // (UND_ERR_SOCKET, "other side closed"): the request never reached a route, so it is sent once
        // more on a fresh connection, when its body can be sent again (JSON or none; never a stream).
        const code = (error as { cause?: { code?: string } }).cause?.code;
        if (code !== 'UND_ERR_SOCKET' || !(init.body === undefined || typeof init.body === 'string') || signal.aborted) throw error;
        res = await request();
      }
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      if ((error as Error).name === 'TimeoutError') {
        throw tcError('TC_ERR_TIMEOUT', `${method} ${path}: no answer from ${this.baseUrl} in ${timeoutMs} ms`, { cause: error });
      }
      throw tcError(
        'TC_ERR_UNAVAILABLE',
        `cannot reach the daemon at ${this.baseUrl}${cause?.code ? ` (${cause.code})` : ''}: is \`tensorcast serve\` running?`,
        {
          cause: error,
        },
      );
    }
    if (!res.ok) {
      const body: unknown = await res.json().catch(() => undefined);
      throw errorFromBody(body, res.status);
    }
    return res;
  }

  /**
   * A JSON request; resolves with the parsed answer. `timeoutMs` overrides the client's default; `headers`
   * are added to the request (e.g. `x-tensorcast-store-token`).
   */
  async json<T>(method: string, path: string, body?: unknown, timeoutMs?: number, headers?: Readonly<Record<string, string>>): Promise<T> {
    const init: RequestInit = {
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    };
    const res = await this.send(method, path, init, timeoutMs);
    return (await res.json()) as T;
  }

  /**
   * A JSON request answered as a progress stream (progress.ts): `onProgress` hears every progress line;
   * resolves with the closing result, or throws the closing error (rebuilt as the daemon threw it).
   * `timeoutMs` bounds the whole request (default {@link LONG_MS}).
   *
   * @throws TC_ERR_PROTOCOL when the stream ends without a closing line
   */
  async progressJson<T>(method: string, path: string, body: unknown, onProgress: (p: Progress) => void, timeoutMs = LONG_MS): Promise<T> {
    const answer = await this.ndjson(method, path, body, timeoutMs);
    if ('json' in answer) return answer.json as T;
    for await (const value of answer.lines) {
      const line = value as ProgressLine<T>;
      if ('progress' in line) onProgress(line.progress);
      else if ('result' in line) return line.result;
    }
    throw tcError('TC_ERR_PROTOCOL', `${method} ${path}: the daemon's progress stream ended without a result`);
  }

  /**
   * A JSON request that asks for an NDJSON answer: `lines` yields each line's object as it arrives, or, when
   * the daemon answered without a stream, `json` is its one body. An error line (`{"error": ...}`) is thrown
   * by `lines`, rebuilt as the daemon threw it. `timeoutMs` bounds the whole request, stream included.
   *
   * @throws TC_ERR_UNAVAILABLE when the connection breaks mid-stream; TC_ERR_TIMEOUT; the daemon's error
   */
  async ndjson(
    method: string,
    path: string,
    body: unknown,
    timeoutMs = LONG_MS,
  ): Promise<{ readonly json: unknown } | { readonly lines: AsyncGenerator<unknown, void, undefined> }> {
    const res = await this.send(
      method,
      path,
      { body: JSON.stringify(body), headers: { 'content-type': 'application/json', accept: NDJSON } },
      timeoutMs,
    );
    if (!(res.headers.get('content-type') ?? '').includes(NDJSON)) return { json: await res.json() };
    if (res.body === null) throw tcError('TC_ERR_PROTOCOL', `${method} ${path}: the daemon's stream has no body`);
    const chunks = (res.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    const where = `${method} ${path}`;
    const take = (text: string): unknown => {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && 'error' in value) throw errorFromBody(value, res.status);
      return value;
    };
    const baseUrl = this.baseUrl;
    async function* lines(): AsyncGenerator<unknown, void, undefined> {
      let pending = '';
      const decoder = new TextDecoder();
      try {
        for (;;) {
          let next: IteratorResult<Uint8Array>;
          try {
            next = await chunks.next();
          } catch (error) {
            if ((error as Error).name === 'TimeoutError')
              throw tcError('TC_ERR_TIMEOUT', `${where}: the daemon's answer did not end in ${timeoutMs} ms`, { cause: error });
            throw tcError('TC_ERR_UNAVAILABLE', `${where}: the connection to ${baseUrl} broke before the daemon answered`, {
              cause: error,
            });
          }
          if (next.done === true) break;
          pending += decoder.decode(next.value, { stream: true });
          let nl: number;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const text = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (text !== '') yield take(text);
          }
        }
        if (pending.trim() !== '') yield take(pending.trim());
      } finally {
        // A consumer that stops early (or fails) lets the connection go.
        await chunks.return?.();
      }
    }
    return { lines: lines() };
  }

  /** A raw GET (file downloads). */
  async bytes(path: string): Promise<Buffer> {
    const res = await this.send('GET', path);
    return Buffer.from(await res.arrayBuffer());
  }

  /**
   * Streams a local file as the body of a PUT (deadline `timeoutMs`: files can be large); `onBytes` hears
   * about every chunk sent.
   */
  async putFile<T>(path: string, file: string, onBytes?: (bytes: number) => void, timeoutMs = LONG_MS): Promise<T> {
    const body = createReadStream(file, { highWaterMark: 4 << 20 });
    if (onBytes !== undefined) body.on('data', (chunk: string | Buffer) => onBytes(chunk.length));
    const res = await this.send('PUT', path, { body, duplex: 'half', headers: { 'content-type': 'application/octet-stream' } }, timeoutMs);
    return (await res.json()) as T;
  }

  /** Closes this client's connections. */
  close(): Promise<void> {
    return this.agent.close();
  }
}
