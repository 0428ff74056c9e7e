// tensorcast/handshake: the handshake service (docs/handshake.md): the SDK, the rank payload codec, the
// heterogeneous-TP rank mapping and the HTTP contract.

export * from './client/index.js';
export { encodeRankMetadata, decodeRankMetadata, RANK_METADATA_VERSION, type RankMetadata } from './rank-metadata.js';
export { mapRanks, headsOfRank, type RankMappingInput, type RankMapping, type RemoteRead, type HeadRange } from './rank-mapping.js';
export type { EngineSummary, EngineList, RankSummary, PublishAnswer, RenewAnswer } from '../protocol/http/handshake.js';
export * from './server/index.js';
export { openHandshakeStore, type OpenHandshakeStoreOptions } from './store/open-handshake-store.js';
export { MemoryHandshakeStore } from './store/memory-handshake-store.js';
export type { HandshakeStore, HandshakeStoreOptions } from './store/handshake-store.js';
