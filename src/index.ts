// The tensorcast SDK: what applications import. Subpaths (`tensorcast/format`, `/layout`, `/bytes`,
// `/client`, `/daemon`) expose the lower layers for tools that need them.

export { connect, TensorcastClient } from './client/tensorcast-client.js';
export type {
  DaemonInfo,
  ImportInfo,
  LoadOptions,
  LoadResult,
  LoadStats,
  LoadedTensor,
  LoadPlan,
  Selection,
  Transfer,
  WeightsOptions,
  WeightTensor,
} from './client/tensorcast-client.js';
export { pullFiles, type PullFilesOptions, type PullFilesInfo } from './client/pull-files.js';
export { ObjectsClient, type GetItem, type PutItem } from './client/objects.js';
export type {
  BatchOptions,
  CommitCondition,
  GetOptions,
  GetResult,
  ItemResult,
  ListOptions,
  NamespaceInfo,
  NamespaceSettings,
  ObjectMeta,
  ObjectsOptions,
  ObjectTier,
  ObjectTransport,
  PutOptions,
  PutResult,
} from './client/object-types.js';
export type { ConnectOptions } from './client/connect-options.js';
export { TensorcastError, isTensorcastError } from './core/errors.js';
export { ERROR_CODES, type ErrorCode } from './core/error-codes.js';
export type { Dtype } from './core/dtypes.js';
export type { ViewSpec, DimRange, TensorViewSpec } from './layout/view.js';
export type { TpRuleSet, TpRule } from './layout/tp-rules.js';
export { LLAMA_FAMILY_RULES, parseRuleSet } from './layout/tp-rules.js';
export { FeatureStore, openFeatureStore, ConnectorFeatureBackend } from './features/index.js';
export type {
  FeatureStoreOptions,
  FeatureGetOptions,
  FeatureStats,
  GcReport,
  DrainReport,
  FeatureBackend,
  SampleRef,
  FeatureSpec,
  TensorInput,
  FeatureTensor,
} from './features/index.js';
export { handshakes, HandshakeClient, HandshakePublisher, mapRanks, encodeRankMetadata, decodeRankMetadata } from './handshake/index.js';
export type {
  HandshakesOptions,
  HandshakeGetOptions,
  HandshakeStats,
  HandshakeClientTlsOptions,
  FailurePolicy,
  RetryOptions,
  RankMetadata,
  RankMapping,
  RankMappingInput,
  EngineSummary,
} from './handshake/index.js';
export {
  createSessionCache,
  SessionCache,
  bytesPerToken,
  geometryHash,
  openSessionMetaStore,
  SESSION_ID_PATTERN,
} from './sessions/index.js';
export type {
  SessionCacheOptions,
  AppendResult,
  CreateSessionOptions,
  OpenRead,
  PendingAppend,
  ReadResult,
  SessionCacheApi,
  SessionCacheEngine,
  SessionOpOptions,
  TokenRange,
  SessionGeometry,
  GcResult,
  SessionCacheStats,
  SessionEntry,
  SessionStat,
  SwapResult,
  SessionMetaStore,
  SwapEvent,
} from './sessions/index.js';
