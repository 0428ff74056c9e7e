// The handshake listener's public surface.

export {
  DEFAULT_HANDSHAKE_TTL_MS,
  DEFAULT_MAX_ENGINE_BYTES,
  DEFAULT_MAX_PAYLOAD_BYTES,
  startHandshakeServer,
  type HandshakeHttpTimeouts,
  type HandshakeServer,
  type HandshakeServerOptions,
  type HandshakeTlsOptions,
} from './handshake-server.js';
