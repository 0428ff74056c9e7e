// A model on local disk opened as an artifact: its validated files, canonical index and a FileSource over
// the files in place (nothing is copied or rewritten).

import { openModelFiles, type ModelFiles } from '../format/model-files.js';
import { indexModelFiles, type CanonicalIndex } from '../layout/canonical-index.js';
import { FileSource } from './file-source.js';

/** An opened local artifact; close it to release file handles. */
export interface LocalArtifact {
  readonly model: ModelFiles;
  readonly index: CanonicalIndex;
  readonly source: FileSource;
  close(): Promise<void>;
}

/**
 * Opens a .safetensors file or a model directory as an artifact.
 *
 * @throws TC_ERR_NOT_FOUND, TC_ERR_FORMAT_*
 * @example const a = await openLocalArtifact('/models/qwen2'); try { ... } finally { await a.close(); }
 */
export async function openLocalArtifact(path: string): Promise<LocalArtifact> {
  const model = await openModelFiles(path);
  const index = indexModelFiles(model);
  const source = FileSource.fromIndex(model.root, index);
  return { model, index, source, close: () => source.close() };
}
