// tensorcast/format: safetensors reading, validation and writing; sharded indexes; model directories.
export {
  parseSafetensorsHeader,
  readHeaderLength,
  MAX_HEADER_BYTES,
  type SafetensorsHeader,
  type HeaderTensorInfo,
} from './safetensors-header.js';
export { readSafetensorsFile, type SafetensorsFileInfo } from './safetensors-file.js';
export {
  planSafetensors,
  saveSafetensors,
  serializeSafetensors,
  SafetensorsFileWriter,
  tensorByteLength,
  type TensorDescriptor,
  type TensorWithData,
} from './safetensors-writer.js';
export { readShardedIndex, parseShardedIndex, type ShardedIndex } from './sharded-index.js';
export { openModelFiles, type ModelFiles, type ModelShard } from './model-files.js';
export { writeSyntheticModel, TINY_LLAMA, type SyntheticModelOptions } from './synthetic-model.js';
