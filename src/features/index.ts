// The feature store: per-sample tensors over the daemon (client.features()) or a connector (openFeatureStore).
export {
  FeatureStore,
  type FeatureStoreOptions,
  type FeatureGetOptions,
  type FeatureStats,
  type GcReport,
  type DrainReport,
  type FreeFailure,
} from './feature-store.js';
export type {
  FeatureBackend,
  FeatureBackendCapabilities,
  BackendObject,
  BackendPutItem,
  BackendPutOptions,
  BackendReadOptions,
  BackendUsage,
  BackendVersion,
  BackendDeleteResult,
} from './feature-backend.js';
export { ConnectorFeatureBackend } from './connector-backend.js';
export { openFeatureStore } from './open-feature-store.js';
export {
  checkSampleId,
  checkTensorName,
  sampleKeys,
  type SampleRef,
  type FeatureSpec,
  type TensorInput,
  type FeatureTensor,
  type FeatureLayout,
} from './sample-ref.js';
