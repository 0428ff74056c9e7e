// Finds and validates the safetensors files of a model: one file, a directory with a sharded index,
// or a directory of shards without one. Shards are checked against the index and against each other.

import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { mapLimit } from '../core/async.js';
import { tcError, wrapIoError } from '../core/errors.js';
import { readSafetensorsFile, type SafetensorsFileInfo } from './safetensors-file.js';
import { readShardedIndex, type ShardedIndex } from './sharded-index.js';

/** One shard of a model: its name relative to the model root and its validated header. */
export interface ModelShard extends SafetensorsFileInfo {
  readonly file: string;
}

/** The validated safetensors files of one model. */
export interface ModelFiles {
  /** The model directory (or the directory holding the single file). */
  readonly root: string;
  readonly shards: readonly ModelShard[];
  /** The parsed index, when the model has one. */
  readonly index: ShardedIndex | undefined;
  /** Names of non-weight files beside the weights (config.json, tokenizer files, ...), relative to root. */
  readonly extraFiles: readonly string[];
}

const INDEX_SUFFIX = '.safetensors.index.json';
const OPEN_CONCURRENCY = 16;

/**
 * Opens a model from a .safetensors file or a model directory.
 *
 * @throws TC_ERR_NOT_FOUND, TC_ERR_FORMAT_* (including TC_ERR_FORMAT_SHARD_MISMATCH), TC_ERR_INVALID_ARGUMENT
 * @example const model = await openModelFiles('/models/llama-3-8b');
 */
export async function openModelFiles(path: string): Promise<ModelFiles> {
  let st;
  try {
    st = await stat(path);
  } catch (error) {
    throw wrapIoError(error, 'cannot open model', path);
  }
  if (st.isFile()) {
    const shard = { ...(await readSafetensorsFile(path, basename(path))), file: basename(path) };
    return { root: join(path, '..'), shards: [shard], index: undefined, extraFiles: [] };
  }
  if (!st.isDirectory()) throw tcError('TC_ERR_INVALID_ARGUMENT', `${path}: neither a file nor a directory`);
  const entries = await readdir(path, { withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
  const { indexName, index, shardNames, indexFiles } = chooseShards(path, files);
  if (shardNames.length === 0) throw tcError('TC_ERR_NOT_FOUND', `${path}: no .safetensors files`, { details: { path } });
  const shards = await mapLimit(shardNames, OPEN_CONCURRENCY, async (file) => ({
    ...(await readSafetensorsFile(join(path, file), file)),
    file,
  }));
  checkShards(shards, index, indexName ?? '');
  const weightSet = new Set([...shardNames, ...indexFiles]);
  const extraFiles = files.filter((f) => !weightSet.has(f) && !f.endsWith('.safetensors') && !f.startsWith('.'));
  return { root: path, shards, index, extraFiles };
}

/** Which files of a model directory hold its weights. */
export interface ShardChoice {
  /** The index file used, if any. */
  readonly indexName: string | undefined;
  readonly index: ShardedIndex | undefined;
  /** Every `*.safetensors.index.json` in the directory. */
  readonly indexFiles: readonly string[];
  /** The shard files, in index order (or sorted). */
  readonly shardNames: readonly string[];
}

/**
 * Chooses a model directory's weight files from its file names: the shards listed by
 * `model.safetensors.index.json` (or the only index), else `model.safetensors`, else every `*.safetensors`.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for several indexes and none named model.safetensors.index.json;
 *   TC_ERR_FORMAT_INDEX_INVALID and others from reading the index.
 * @example const { shardNames } = chooseShards('/models/llama', ['config.json', 'model.safetensors']);
 */
export function chooseShards(dir: string, files: readonly string[]): ShardChoice {
  const { indexName, indexFiles, shardNames } = chooseIndex(dir, files);
  if (indexName !== undefined) {
    const index = readShardedIndex(join(dir, indexName), indexName);
    return { indexName, index, indexFiles, shardNames: [...index.shards] };
  }
  return { indexName, index: undefined, indexFiles, shardNames };
}

/**
 * The file-name half of {@link chooseShards}, for models whose files are not on disk (a connector's
 * objects): the index to read, if any, else the shards (`model.safetensors`, else every `*.safetensors`).
 * With an index, `shardNames` is empty: the index names the shards.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for several indexes and none named model.safetensors.index.json
 */
export function chooseIndex(dir: string, files: readonly string[]): Omit<ShardChoice, 'index'> {
  const indexFiles = files.filter((f) => f.endsWith(INDEX_SUFFIX));
  const weightFiles = files.filter((f) => f.endsWith('.safetensors'));
  const indexName = indexFiles.includes(`model${INDEX_SUFFIX}`)
    ? `model${INDEX_SUFFIX}`
    : indexFiles.length === 1
      ? indexFiles[0]
      : undefined;
  if (indexName === undefined && indexFiles.length > 1) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${dir}: several index files (${indexFiles.join(', ')}) and none is model${INDEX_SUFFIX}`);
  }
  if (indexName !== undefined) return { indexName, indexFiles, shardNames: [] };
  const shardNames = weightFiles.includes('model.safetensors') ? ['model.safetensors'] : weightFiles;
  return { indexName, indexFiles, shardNames };
}

/**
 * Checks shards against each other and the index: no tensor in two shards, every tensor where the index
 * places it, every indexed tensor present.
 *
 * @throws TC_ERR_FORMAT_SHARD_MISMATCH
 */
export function checkShards(shards: readonly ModelShard[], index: ShardedIndex | undefined, indexName: string): void {
  const owner = new Map<string, string>();
  for (const shard of shards) {
    for (const t of shard.header.tensors) {
      const prev = owner.get(t.name);
      if (prev !== undefined) {
        throw tcError('TC_ERR_FORMAT_SHARD_MISMATCH', `tensor '${t.name}' is in two shards: ${prev} and ${shard.file}`, {
          details: { tensor: t.name, file: shard.file },
        });
      }
      owner.set(t.name, shard.file);
      const listed = index?.weightMap.get(t.name);
      if (index !== undefined && listed !== shard.file) {
        throw tcError(
          'TC_ERR_FORMAT_SHARD_MISMATCH',
          listed === undefined
            ? `tensor '${t.name}' is in ${shard.file} but not in ${indexName}`
            : `tensor '${t.name}' is in ${shard.file} but ${indexName} places it in ${listed}`,
          { details: { tensor: t.name, file: shard.file } },
        );
      }
    }
  }
  if (index !== undefined) {
    for (const [name, file] of index.weightMap) {
      if (!owner.has(name)) {
        throw tcError('TC_ERR_FORMAT_SHARD_MISMATCH', `${indexName} places tensor '${name}' in ${file}, which does not hold it`, {
          details: { tensor: name, file },
        });
      }
    }
  }
}
