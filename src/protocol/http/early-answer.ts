// Answers given before a request's body was read in full (auth failures, unknown upload sessions, a full disk, a
// handshake publish refused from its headers): the connection cannot be reused, since the rest of the body
// would be read as the next request, so the answer says `connection: close`. The socket then closes gracefully ("lingering close", as nginx and
// Apache do): the answer is flushed, our side is shut, and what the client still sends is read and
// discarded for a short while, so the client reads the answer instead of a reset.

import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** How long unread body bytes are discarded after an early answer before the socket is destroyed. */
export const LINGER_MS = 2000;

/** Marks the answer to `req` as the connection's last when the request body was not read in full. */
export function closeIfBodyUnread(req: FastifyRequest, reply: FastifyReply): void {
  if (req.raw.complete) return;
  void reply.header('connection', 'close');
  const socket: Socket = req.raw.socket;
  // Node's HTTP server ends a `connection: close` response with socket.destroySoon(): flush, then destroy.
  socket.destroySoon = function lingeringClose(this: Socket): void {
    this.end();
    this.resume();
    this.once('end', () => this.destroy());
    setTimeout(() => this.destroy(), LINGER_MS).unref();
  };
}
