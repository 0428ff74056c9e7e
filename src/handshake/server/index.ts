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
export {
  DEFAULT_HANDSHAKE_LISTEN,
  parseHandshakeTtl,
  parseListenAddress,
  parsePositiveBytes,
  readHandshakeTls,
  readTokenFile,
  type HandshakeTlsFiles,
} from './listener-settings.js';
