// tensorcast/bytes: byte sources, the materialize executor and its kernels, artifact identity.
export type { ByteSource } from './byte-source.js';
export { MemorySource } from './memory-source.js';
export { FileSource } from './file-source.js';
export { Materializer, materialize, DEFAULT_DIRECT_THRESHOLDS, SEED_DIRECT_THRESHOLDS, type MaterializeOptions } from './materialize.js';
export { MATERIALIZE_CHANNEL, type MaterializeStats } from './materialize-stats.js';
export { activeKernel } from './gather-kernel.js';
export { computeArtifactIdentity, type ArtifactIdentity } from './artifact-id.js';
export { openLocalArtifact, type LocalArtifact } from './local-artifact.js';
