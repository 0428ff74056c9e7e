// The data-plane server: a TCP listener whose connections (server-connection.ts) speak the frames of
// src/protocol. It knows frames, tokens, credit and deadlines, not stores: the owner (the daemon) supplies a
// LoadHandler that decides where a view's bytes come from and sends them through a FrameSink, and
// optionally an ObjectHandler for object PUTs and GETs (the daemon's object store, seen through a shape this
// layer defines so transport does not import store).

import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../core/logger.js';
import type { EndBody, GetBody, LoadBody, PutBody } from '../protocol/messages.js';
import type { SessionHandler, SessionOutcome } from './session-serving.js';
import { ServerConnection } from './server-connection.js';

/** One LOAD being served. */
export interface LoadRequest extends LoadBody {
  readonly requestId: number;
  /** Unix ms by which the request must be done (from LOAD.timeoutMs). */
  readonly deadline: number;
}

/** Where a handler sends the bytes of one request. */
export interface FrameSink {
  /**
   * Waits until `bytes` more may be sent from output offset `at`: credit granted, socket not backed up.
   *
   * @throws TC_ERR_ABORTED (cancelled, connection closed), TC_ERR_TIMEOUT (the request's deadline passed)
   */
  ready(at: number, bytes: number): Promise<void>;
  /**
   * Sends one DATA frame for output offset `at` (call after {@link ready}). `crc` is the payload's CRC32C
   * when the caller has it cached. Resolves when the socket no longer holds the payload (written, or the
   * connection died), so the caller may then reuse that memory.
   */
  send(at: number, payload: Uint8Array, crc?: number): Promise<void>;
  /** Closes the connection (a peer that stopped reading): every pending {@link send} then resolves. */
  abandon(): void;
}

/** What the owner of the server does with a LOAD: send `[start, end)` of the view, say how. */
export interface LoadHandler {
  /** Sends the request's bytes; returns the END fields (route, source, view id). Throw a coded error to fail it. */
  serve(request: LoadRequest, sink: FrameSink): Promise<Omit<EndBody, 'bytes'>>;
}

/** One object PUT being served. */
export interface ObjectPutRequest extends PutBody {
  readonly requestId: number;
  /** Unix ms by which the put must be done (from PUT.timeoutMs). */
  readonly deadline: number;
}

/** One object GET being served. */
export interface ObjectGetRequest extends GetBody {
  readonly requestId: number;
  /** Unix ms by which the get must be done (from GET.timeoutMs). */
  readonly deadline: number;
}

/**
 * A put whose room is reserved: where received bytes land, and how it ends. Mirrors the store's PendingPut.
 */
export interface ObjectPutSession {
  /** The memory `[offset, offset + length)` of the object where received bytes land, or undefined (use {@link write}). */
  target(offset: number, length: number): Uint8Array | undefined;
  /** Writes received bytes at `offset` (when {@link target} gave no memory). */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /** Every byte landed: check `crc` (whole object, when given) and commit. @throws a coded error */
  finish(crc?: number): Promise<{ version: number }>;
  /** Drops the put and frees its room (idempotent). */
  abort(): void;
}

/** A read in progress (a fenced lease). Mirrors the store's ReadLease. */
export interface ObjectReadSession {
  readonly size: number;
  readonly version: number;
  /** Bytes `[offset, offset + length)`; may read into `scratch`. @throws TC_ERR_NOT_FOUND once deleted or replaced */
  chunk(offset: number, length: number, scratch?: Uint8Array): Promise<Uint8Array>;
  /** The chunk handed out last has been sent. */
  done(): void;
  /** Ends the lease (idempotent). */
  release(): void;
}

/** What the owner of the server does with object PUTs and GETs. */
export interface ObjectHandler {
  /** Checks the key and token and reserves room (maybe waiting, up to the deadline). @throws a coded error */
  beginPut(request: ObjectPutRequest): Promise<ObjectPutSession>;
  /** Opens a read lease. @throws TC_ERR_NOT_FOUND, TC_ERR_OBJECT_LOST, TC_ERR_AUTH */
  openRead(request: ObjectGetRequest): ObjectReadSession;
}

/** How a served object request ended (for metrics). */
export interface ObjectOutcome {
  readonly op: 'put' | 'get';
  readonly outcome: 'ok' | 'error' | 'cancelled';
  /** Error code when it failed. */
  readonly code: string | undefined;
  readonly bytes: number;
  readonly seconds: number;
}

/** How a served request ended (for metrics). */
export interface LoadOutcome {
  readonly route: string;
  readonly source: string;
  readonly outcome: 'ok' | 'error' | 'cancelled';
  readonly bytes: number;
  readonly seconds: number;
}

/** Options of a {@link DataServer}. */
export interface DataServerOptions {
  readonly token: string;
  readonly daemonId: string;
  readonly handler: LoadHandler;
  /** Serves object PUTs and GETs; without it they fail with TC_ERR_UNAVAILABLE. */
  readonly objects?: ObjectHandler;
  /**
   * Serves session SAPPENDs and SREADs (the daemon's SessionCache: SessionCacheEngine has this shape); without
   * it they fail with TC_ERR_NOT_FOUND (sessions are not enabled).
   */
  readonly sessions?: SessionHandler;
  readonly log: Logger;
  /** Payload bytes per DATA frame (default 4 MiB). */
  readonly frameBytes?: number;
  /** Time a new connection has to authenticate (default 5 s). */
  readonly helloTimeoutMs?: number;
  /** Largest frame accepted before authentication (default 8 KiB: a HELLO fits). */
  readonly preAuthFrameBytes?: number;
  /** Open connections beyond which new ones are refused (default 1024). */
  readonly maxConnections?: number;
  /**
   * A request whose peer takes no byte out of the socket for this long loses its connection (default 30 s):
   * a client that stopped reading must not hold staging buffers and replicas until its deadline.
   */
  readonly stallTimeoutMs?: number;
  /** LOADs queued on one connection beyond which it is closed as abusive (default 64). */
  readonly maxQueuedLoads?: number;
  /** True once the owner is shutting down: new LOADs fail with TC_ERR_SHUTTING_DOWN. */
  readonly draining?: () => boolean;
  readonly onConnection?: (delta: 1 | -1) => void;
  readonly onProtocolError?: () => void;
  readonly onLoad?: (outcome: LoadOutcome) => void;
  readonly onObject?: (outcome: ObjectOutcome) => void;
  readonly onSession?: (outcome: SessionOutcome) => void;
}

/** The options every connection reads (defaults filled in). */
export type ConnectionOptions = Required<Omit<DataServerOptions, 'onConnection' | 'maxConnections' | 'objects' | 'sessions'>> & {
  readonly objects: ObjectHandler | undefined;
  readonly sessions: SessionHandler | undefined;
};

/**
 * The data-plane listener.
 *
 * @example
 * const server = new DataServer({ token, daemonId, handler, log });
 * const address = await server.listen('127.0.0.1', 7071);
 */
export class DataServer {
  private readonly server: Server;
  private readonly connections = new Set<ServerConnection>();
  private readonly connOpts: ConnectionOptions;
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private closing = false;

  constructor(private readonly opts: DataServerOptions) {
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.maxConnections = opts.maxConnections ?? 1024;
    this.connOpts = {
      token: opts.token,
      daemonId: opts.daemonId,
      handler: opts.handler,
      objects: opts.objects,
      sessions: opts.sessions,
      log: opts.log,
      frameBytes: opts.frameBytes ?? 4 << 20,
      helloTimeoutMs: opts.helloTimeoutMs ?? 5000,
      preAuthFrameBytes: opts.preAuthFrameBytes ?? 8 << 10,
      maxQueuedLoads: opts.maxQueuedLoads ?? 64,
      stallTimeoutMs: opts.stallTimeoutMs ?? 30_000,
      draining: () => this.closing || (opts.draining?.() ?? false),
      onProtocolError: opts.onProtocolError ?? (() => undefined),
      onLoad: opts.onLoad ?? (() => undefined),
      onObject: opts.onObject ?? (() => undefined),
      onSession: opts.onSession ?? (() => undefined),
    };
  }

  /** Starts listening; resolves with the bound address (`host:port`, IPv6 in brackets). */
  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const a = this.server.address();
        resolve(typeof a === 'object' && a !== null ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : String(a));
      });
    });
  }

  /** Stops accepting; waits up to `deadlineMs` for requests in flight, then closes every connection. */
  async close(deadlineMs: number): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.active > 0) {
      await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), new Promise<void>((r) => setTimeout(r, deadlineMs).unref())]);
    }
    for (const c of this.connections) c.destroy();
    await closed;
  }

  private accept(socket: Socket): void {
    const conn = new ServerConnection(socket, this.connOpts, (delta) => {
      this.active += delta;
      if (this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
    this.connections.add(conn);
    this.opts.onConnection?.(1);
    socket.once('close', () => {
      this.connections.delete(conn);
      this.opts.onConnection?.(-1);
      conn.closed();
    });
  }
}
