// Standalone handshake listeners for end-to-end tests (`tensorcast handshake serve` as a separate process on
// a free port), raw HTTP(S) requests to them, and sample rank payloads.

import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TestContext } from 'node:test';
import { encodeRankMetadata, type RankMetadata } from '../../src/handshake/rank-metadata.js';
import { CLI } from '../helpers/cli.js';

/** A running `handshake serve` process. */
export interface HandshakeListener {
  readonly url: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the process exited. */
  readonly exited: Promise<number | string | null>;
  /** stdout and stderr so far. */
  output(): string;
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

/** Options of {@link startHandshakeListener}. */
export interface ListenerOptions {
  /** Flags after `handshake serve` (default `--listen 127.0.0.1:0`). */
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** How long to wait for the ready line (default 60 s: a loaded CI machine). */
  readonly readyTimeoutMs?: number;
}

const READY = /^handshake listening on (\S+) \(store (\w+)\)$/m;

/** Starts `tensorcast handshake serve`; it is killed after the test. Resolves once it prints its ready line. */
export async function startHandshakeListener(t: TestContext, opts: ListenerOptions = {}): Promise<HandshakeListener> {
  const args = opts.args ?? [];
  const listen = args.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  const child = spawn(process.execPath, [CLI, 'handshake', 'serve', ...listen, ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`handshake serve not ready in time:\n${out}`)), opts.readyTimeoutMs ?? 60_000);
    const check = (): void => {
      const m = READY.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`handshake serve exited (${String(code)}) before it was ready:\n${out}`));
    });
  });
  return {
    url,
    child,
    exited,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** One answer. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body as JSON when it is JSON. */
  readonly json: unknown;
}

/** Options of {@link rawRequest}. */
export interface RawRequestOptions {
  readonly token?: string;
  readonly headers?: Record<string, string>;
  /** A Buffer is sent as application/msgpack (unless headers say otherwise), anything else as JSON. */
  readonly body?: unknown;
  /** TLS: the CA that signed the server's certificate, and a client certificate. */
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** Sends one request on a fresh connection; the path is sent as given. */
export function rawRequest(baseUrl: string, method: string, path: string, o: RawRequestOptions = {}): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  const isBuffer = o.body instanceof Uint8Array;
  const payload = o.body === undefined ? undefined : o.body instanceof Uint8Array ? o.body : Buffer.from(JSON.stringify(o.body));
  const headers: Record<string, string> = {
    ...(o.token === undefined ? {} : { authorization: `Bearer ${o.token}` }),
    ...(payload === undefined ? {} : { 'content-type': isBuffer ? 'application/msgpack' : 'application/json' }),
    ...o.headers,
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers,
        agent: false,
        ...(o.ca === undefined ? {} : { ca: o.ca }),
        ...(o.cert === undefined ? {} : { cert: o.cert }),
        ...(o.key === undefined ? {} : { key: o.key }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          let json: unknown;
          if (String(res.headers['content-type']).startsWith('application/json')) json = JSON.parse(body.toString('utf8')) as unknown;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The error code of an error answer. */
export const codeOf = (a: RawAnswer): unknown => (a.json as { error?: { code?: unknown } } | undefined)?.error?.code;

/** A valid rank's metadata (override any field). */
export function sampleRank(over: Partial<RankMetadata> = {}): RankMetadata {
  const tpRank = over.tpRank ?? 0;
  return {
    engineId: 'prefill-0',
    tpRank,
    dpRank: 0,
    compatibilityHash: 'hash-a',
    incarnation: 'inc-1',
    agentMetadata: Uint8Array.from({ length: 256 }, (_, i) => (i * 7 + tpRank) & 0xff),
    kvCachesBaseAddr: [0x7f00_0000_0000n, 0xffff_ffff_ffff_fff0n],
    blockLens: [4096, 4096],
    blockStrides: [4096, 4096],
    numBlocks: 1000,
    blockSize: 16,
    kvCacheLayout: 'HND',
    tpSize: 4,
    deviceId: tpRank,
    ...over,
  };
}

/** The PUT request of `meta`: path, headers and body. */
export function publishRequest(meta: RankMetadata): { path: string; headers: Record<string, string>; body: Buffer } {
  return {
    path: `/v1/engines/${encodeURIComponent(meta.engineId)}/ranks/${meta.tpRank}/${meta.dpRank}`,
    headers: { 'x-tensorcast-compat-hash': meta.compatibilityHash, 'x-tensorcast-incarnation': meta.incarnation },
    body: Buffer.from(encodeRankMetadata(meta)),
  };
}
