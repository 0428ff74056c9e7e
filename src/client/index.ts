// tensorcast/client: the client SDK.
export * from './tensorcast-client.js';
export { resolveConnect, DEFAULT_DAEMON_URL, type ConnectOptions, type ResolvedConnect } from './connect-options.js';
export { DataConnection } from '../transport/data-connection.js';
export { TRANSPORTS } from './load-options.js';
export type { PushResponse } from '../protocol/http/pushes.js';
export type { LazyInfo, VerifyResponse } from '../protocol/http/artifacts.js';
export type { Progress, ProgressPhase } from '../protocol/http/progress.js';
