// The handshake SDK's public surface (re-exported by src/handshake/index.ts and src/index.ts).

export { handshakes, HandshakeClient, type HandshakesOptions, type HandshakeGetOptions, type RankRef } from './handshake-client.js';
export type { HandshakeClientTlsOptions, RankAnswer } from './handshake-http.js';
export { HandshakePublisher, type PublisherOptions, type PublisherStats } from './handshake-publisher.js';
export type { HandshakeStats, EngineHandshakeStats } from './handshake-scheduler.js';
export { DEFAULT_RETRY, type FailurePolicy, type RetryOptions } from './retry-policy.js';
