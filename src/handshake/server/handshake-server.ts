// The handshake listener (docs/handshake.md): its own fastify server, never the daemon's control API. Bearer
// token on every route but GET /v1/health (constant-time compare), optional TLS with client certificates, a
// per-payload body cap enforced from content-length before a byte is read, HTTP timeouts like the control
// API's, and a timer that sweeps long-expired entries from the store.

import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { tcError, wrapIoError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { isLoopbackHost } from '../../core/net.js';
import { tokenMatches } from '../../core/secrets.js';
import { closeIfBodyUnread } from '../../protocol/http/early-answer.js';
import { clientErrorAnswer, httpError } from '../../protocol/http/error-status.js';
import { HANDSHAKE_HEALTH_PATH, MSGPACK_TYPE } from '../../protocol/http/handshake.js';
import type { HandshakeStore } from '../store/handshake-store.js';
import { engineRoutes } from './engine-routes.js';
import { rankRoutes } from './rank-routes.js';

/** Default cap of one rank payload (bytes). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 4 << 20;
/** Default cap of one engine's live payloads (bytes). */
export const DEFAULT_MAX_ENGINE_BYTES = 64 << 20;
/** Default TTL of a published rank (ms). */
export const DEFAULT_HANDSHAKE_TTL_MS = 60_000;

/** TLS material (PEM). With `clientCa`, clients must present a certificate signed by it (mTLS). */
export interface HandshakeTlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly clientCa?: string | Buffer;
}

/** HTTP timeouts (ms); defaults follow the control API's. */
export interface HandshakeHttpTimeouts {
  /** Complete request headers must arrive within this time (default 30 s). */
  readonly headersTimeoutMs?: number;
  /** The whole request, body included, within this time (default 60 s). */
  readonly requestTimeoutMs?: number;
  /** An idle keep-alive connection closes after this time (default 10 s). */
  readonly keepAliveTimeoutMs?: number;
  /** A socket on which no byte moves for this long is closed (default 60 s). */
  readonly idleTimeoutMs?: number;
}

/** How to start a handshake listener. */
export interface HandshakeServerOptions {
  readonly host: string;
  /** 0: a free port. */
  readonly port: number;
  /** Bearer token for every route but health; required unless `host` is loopback. */
  readonly token?: string;
  readonly tls?: HandshakeTlsOptions;
  readonly store: HandshakeStore;
  /** A rank not re-published or renewed within this time expires (default 60 s). */
  readonly ttlMs?: number;
  /** Cap of one payload (default 4 MiB): larger bodies are 413 TC_ERR_TOO_LARGE. */
  readonly maxPayloadBytes?: number;
  /** Cap of one engine's live payloads together (default 64 MiB). */
  readonly maxEngineBytes?: number;
  readonly timeouts?: HandshakeHttpTimeouts;
  /** Most connections open at once (default 1024). */
  readonly maxConnections?: number;
  readonly log?: Logger;
}

/** A listening handshake server. The store stays open: its owner closes it. */
export interface HandshakeServer {
  /** `http(s)://host:port` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Starts a handshake listener.
 *
 * @throws TC_ERR_CONFIG for a non-loopback host without a token, an invalid option or unusable TLS material;
 * TC_ERR_ADDRESS_IN_USE or TC_ERR_IO when the address cannot be bound.
 * @example const server = await startHandshakeServer({ host: '127.0.0.1', port: 0, store: new MemoryHandshakeStore() });
 */
export async function startHandshakeServer(options: HandshakeServerOptions): Promise<HandshakeServer> {
  const o = checkOptions(options);
  let app: FastifyInstance;
  try {
    app = buildHandshakeApp(o);
  } catch (error) {
    // Node's TLS context refuses a key that does not match the certificate, or PEM it cannot parse.
    throw tcError('TC_ERR_CONFIG', `cannot set up the handshake listener: ${(error as Error).message}`, { cause: error });
  }
  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (error) {
    await app.close().catch(() => undefined);
    throw wrapIoError(error, 'cannot listen for the handshake service', `${o.host}:${o.port}`);
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : o.port;
  const urlHost = o.host.includes(':') ? `[${o.host}]` : o.host;
  // Once per TTL, but at most once a second (entries are forgotten only after a grace of minutes), at least
  // once a day (a timer cannot wait longer than 2^31 ms), one sweep at a time.
  let sweeping = false;
  const sweep = setInterval(
    () => {
      if (sweeping) return;
      sweeping = true;
      void o.store
        .sweep()
        .catch((error: unknown) => o.log.warn({ err: error }, 'handshake store sweep failed'))
        .finally(() => (sweeping = false));
    },
    Math.min(Math.max(1000, o.ttlMs), 86_400_000),
  );
  sweep.unref();
  let closing: Promise<void> | undefined;
  return {
    url: `${o.tls === undefined ? 'http' : 'https'}://${urlHost}:${port}`,
    host: o.host,
    port,
    close: () => {
      clearInterval(sweep);
      closing ??= app.close();
      return closing;
    },
  };
}

type Checked = Required<Omit<HandshakeServerOptions, 'token' | 'tls' | 'timeouts'>> &
  Pick<HandshakeServerOptions, 'token' | 'tls'> & {
    readonly timeouts: Required<HandshakeHttpTimeouts>;
  };

function checkOptions(options: HandshakeServerOptions): Checked {
  const positive = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v <= 0) throw tcError('TC_ERR_CONFIG', `handshake ${name} must be a positive integer, got ${v}`);
    return v;
  };
  if (options.token !== undefined && options.token.length === 0) throw tcError('TC_ERR_CONFIG', 'the handshake token is empty');
  if (options.token === undefined && !isLoopbackHost(options.host)) {
    throw tcError(
      'TC_ERR_CONFIG',
      `refusing to listen for handshakes on ${options.host}:${options.port} without a token (a non-loopback listener needs --token-file or TENSORCAST_HANDSHAKE_TOKEN)`,
    );
  }
  const t = options.timeouts ?? {};
  return {
    host: options.host,
    port: options.port,
    store: options.store,
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ttlMs: positive('ttlMs', options.ttlMs, DEFAULT_HANDSHAKE_TTL_MS),
    maxPayloadBytes: positive('maxPayloadBytes', options.maxPayloadBytes, DEFAULT_MAX_PAYLOAD_BYTES),
    maxEngineBytes: positive('maxEngineBytes', options.maxEngineBytes, DEFAULT_MAX_ENGINE_BYTES),
    maxConnections: positive('maxConnections', options.maxConnections, 1024),
    timeouts: {
      headersTimeoutMs: positive('headersTimeoutMs', t.headersTimeoutMs, 30_000),
      requestTimeoutMs: positive('requestTimeoutMs', t.requestTimeoutMs, 60_000),
      keepAliveTimeoutMs: positive('keepAliveTimeoutMs', t.keepAliveTimeoutMs, 10_000),
      idleTimeoutMs: positive('idleTimeoutMs', t.idleTimeoutMs, 60_000),
    },
    log: options.log ?? silentLogger,
  };
}

function buildHandshakeApp(o: Checked): FastifyInstance {
  const t = o.timeouts;
  const httpOptions = {
    headersTimeout: t.headersTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(5000, Math.floor(t.headersTimeoutMs / 10))),
  };
  const token = o.token;
  /** True (and the 401 sent) when a token is configured and the request does not carry it. */
  const refuseUnauthenticated = async (req: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    if (token === undefined) return false;
    const header = req.headers.authorization;
    const presented = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (tokenMatches(presented, token)) return false;
    const { body } = httpError(tcError('TC_ERR_AUTH', presented === undefined ? 'missing bearer token' : 'wrong token'));
    closeIfBodyUnread(req, reply);
    await reply.code(401).header('www-authenticate', 'Bearer').send(body);
    return true;
  };
  const serverOptions = {
    logger: false,
    // URLs the router refuses before any hook runs (a broken percent-escape, a parameter above maxParamLength):
    // the same coded answers as every route, 401 first without a valid token.
    frameworkErrors: (error: Error, req: FastifyRequest, reply: FastifyReply) => {
      void (async () => {
        if (await refuseUnauthenticated(req, reply)) return;
        const coded = tcError('TC_ERR_INVALID_ARGUMENT', `request path ${req.url.slice(0, 256)}: ${error.message.slice(0, 256)}`, {
          cause: error,
          details: { field: 'path' },
        });
        closeIfBodyUnread(req, reply);
        await reply.code(httpError(coded).status).send(httpError(coded).body);
      })();
    },
    // Requests Node's parser refuses (headers too large, a malformed length): a coded body, then close.
    clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) socket.write(clientErrorAnswer(error));
      socket.destroy();
    },
    bodyLimit: o.maxPayloadBytes,
    forceCloseConnections: true,
    // Long enough that most malformed ids reach the routes, which name the rule broken; longer ones get
    // the same coded 400 from frameworkErrors.
    routerOptions: { maxParamLength: 1024 },
    requestTimeout: t.requestTimeoutMs,
    keepAliveTimeout: t.keepAliveTimeoutMs,
    connectionTimeout: t.idleTimeoutMs,
  } satisfies FastifyServerOptions;
  const tls = o.tls;
  const app = (tls === undefined
    ? Fastify({ ...serverOptions, http: httpOptions })
    : Fastify({
        ...serverOptions,
        https: {
          ...httpOptions,
          cert: tls.cert,
          key: tls.key,
          ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }),
        },
      })) as unknown as FastifyInstance;
  app.server.maxConnections = o.maxConnections;
  // Rank payloads as Buffers; JSON for renew; nothing else (a text body is refused, not read as a string).
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser([MSGPACK_TYPE, 'application/octet-stream'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.addHook('onRequest', async (req, reply) => {
    // A stalled body or a client that stopped reading its answer loses the connection.
    reply.raw.on('timeout', () => {
      if (reply.raw.headersSent || !req.raw.complete) req.raw.socket.destroy();
    });
    return Promise.resolve();
  });
  if (token !== undefined) {
    app.addHook('onRequest', async (req, reply) => {
      if ((req.method === 'GET' || req.method === 'HEAD') && req.routeOptions.url === HANDSHAKE_HEALTH_PATH) return;
      await refuseUnauthenticated(req, reply);
    });
  }
  // Refused from its declared length before it is read; a chunked body is cut at bodyLimit by the parser.
  app.addHook('onRequest', async (req) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > o.maxPayloadBytes) {
      return Promise.reject(
        tcError('TC_ERR_TOO_LARGE', `request body of ${declared} bytes is above the cap of ${o.maxPayloadBytes}`, {
          details: { bytes: declared, cap: o.maxPayloadBytes },
        }),
      );
    }
    return Promise.resolve();
  });
  app.setErrorHandler(async (error, req, reply) => {
    const { status, body } = httpError(translateFastifyError(error, o.maxPayloadBytes));
    if (status >= 500) o.log.error({ err: error, method: req.method, url: req.url }, 'handshake request failed');
    closeIfBodyUnread(req, reply);
    await reply.code(status).send(body);
  });
  app.setNotFoundHandler(async (req, reply) => {
    // Unknown routes answer 401 without a valid token (the auth hook ran first), 404 with one.
    await reply.code(404).send(httpError(tcError('TC_ERR_NOT_FOUND', `no route ${req.method} ${req.url.slice(0, 256)}`)).body);
  });
  void app.register(engineRoutes, { store: o.store, ttlMs: o.ttlMs });
  void app.register(rankRoutes, { store: o.store, ttlMs: o.ttlMs, maxPayloadBytes: o.maxPayloadBytes, maxEngineBytes: o.maxEngineBytes });
  return app;
}

/** fastify's own body errors become the handshake codes (a cut body is TOO_LARGE, an unparsable one MALFORMED). */
function translateFastifyError(error: unknown, cap: number): unknown {
  const code = (error as { code?: unknown }).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return tcError('TC_ERR_TOO_LARGE', `request body is above the cap of ${cap} bytes`, { cause: error, details: { cap } });
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return tcError('TC_ERR_MALFORMED', `content-type must be ${MSGPACK_TYPE} (rank payloads) or application/json (renew)`, {
      cause: error,
    });
  }
  if (typeof code === 'string' && code.startsWith('FST_ERR_CTP_')) {
    return tcError('TC_ERR_MALFORMED', `request body: ${(error as Error).message}`, { cause: error });
  }
  if (error instanceof SyntaxError)
    return tcError('TC_ERR_MALFORMED', `request body is not valid JSON: ${error.message}`, { cause: error });
  return error;
}
