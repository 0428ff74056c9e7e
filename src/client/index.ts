// tensorcast/client: the client SDK.
export * from './tensorcast-client.js';
export { resolveConnect, DEFAULT_DAEMON_URL, type ConnectOptions, type ResolvedConnect } from './connect-options.js';
export { DataConnection } from '../transport/data-connection.js';
export { TRANSPORTS } from './load-options.js';
export { pullFiles, fileFilter, DEFAULT_IGNORE, type PullFilesOptions, type PullFilesInfo, type PulledFile } from './pull-files.js';
export { streamWeights, DEFAULT_MAX_IN_FLIGHT_BYTES, type WeightStreamOptions } from './weight-stream.js';
export type { PushResponse } from '../protocol/http/pushes.js';
export type { LazyInfo, VerifyResponse } from '../protocol/http/artifacts.js';
export type { Progress, ProgressPhase } from '../protocol/http/progress.js';
export { openUrlModel, weightsFromUrl, type UrlModel } from './url-model.js';
export { ObjectsClient, SHM_MIN_BYTES, type GetItem, type PutItem } from './objects.js';
export type * from './object-types.js';
export { RemoteSessions, type SessionsOptions } from './sessions.js';
export { DaemonFeatureBackend } from './feature-backend.js';
export {
  FeatureStore,
  ConnectorFeatureBackend,
  openFeatureStore,
  type FeatureStoreOptions,
  type FeatureGetOptions,
  type FeatureStats,
  type GcReport,
  type DrainReport,
  type FreeFailure,
  type FeatureBackend,
  type SampleRef,
  type FeatureSpec,
  type TensorInput,
  type FeatureTensor,
  type FeatureLayout,
} from '../features/index.js';
export type { SessionGeometry } from '../sessions/geometry.js';
export type {
  SessionCacheApi,
  CreateSessionOptions,
  SessionOpOptions,
  AppendResult,
  TokenRange,
  ReadResult,
} from '../sessions/session-cache-api.js';
export type { SessionEntry, SessionStat, SwapResult, GcResult, SessionCacheStats } from '../sessions/session-types.js';
