// The handshake listener's public surface (the CLI's and the daemon's setting parsers stay in listener-settings.ts).

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
