// Artifact identity: artifact_id = SHA-256 over the canonical index hash, the content tree root of the
// canonical bytes and, when the model has any, the hash of the files kept beside the weights (config,
// tokenizer: they change how the weights are loaded). Leaves (4 MiB) are read and hashed with bounded
// concurrency; the leaf hashes are kept so any leaf-aligned byte range can be verified later.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { wrapIoError } from '../core/errors.js';
import { hashLeaf, sha256Hex, TREE_LEAF_BYTES, treeRoot } from '../core/hashing.js';
import { compareUtf8 } from '../core/strings.js';
import type { CanonicalIndex } from '../layout/canonical-index.js';
import { readExactly, type ByteSource } from './byte-source.js';

/** The identity of an artifact. */
export interface ArtifactIdentity {
  /** `tc1:` + 64 hex digits. */
  readonly artifactId: string;
  readonly indexHash: string;
  /** Root of the content tree over the canonical bytes. */
  readonly dataHash: string;
  /** Hash of the files kept beside the weights (see {@link hashExtraFiles}); undefined when there are none. */
  readonly filesHash: string | undefined;
  readonly leafBytes: number;
  readonly leafHashes: readonly Uint8Array[];
}

/**
 * The artifact id from an index hash, a data hash and the hash of the kept files. Without kept files the id
 * is what it was before files were covered, so bare .safetensors files keep their ids.
 */
export function artifactIdOf(indexHash: string, dataHash: string, filesHash?: string): string {
  const files = filesHash === undefined ? '' : `\n${filesHash}`;
  return `tc1:${sha256Hex(`tensorcast-artifact-v1\n${indexHash}\n${dataHash}${files}`)}`;
}

/** Largest non-weight file kept with an artifact (config, tokenizer); larger ones are left out. */
export const MAX_EXTRA_FILE_BYTES = 256 << 20;

/** The files kept beside the weights and their hash. */
export interface ExtraFilesHash {
  /** Names kept (at most {@link MAX_EXTRA_FILE_BYTES} each), sorted. */
  readonly files: readonly string[];
  /** Names left out because they are larger than {@link MAX_EXTRA_FILE_BYTES}. */
  readonly skipped: readonly string[];
  /** SHA-256 (hex) of `{"v":1,"files":[[name, bytes, sha256], ...]}`; undefined when no file is kept. */
  readonly filesHash: string | undefined;
}

/**
 * Hashes the non-weight files of a model (`names` relative to `root`, as ModelFiles.extraFiles lists them).
 *
 * @throws TC_ERR_NOT_FOUND, TC_ERR_IO
 * @example const { filesHash } = await hashExtraFiles(model.root, model.extraFiles);
 */
export async function hashExtraFiles(root: string, names: readonly string[]): Promise<ExtraFilesHash> {
  const rows: string[] = [];
  const files: string[] = [];
  const skipped: string[] = [];
  for (const name of [...names].sort(compareUtf8)) {
    const path = join(root, name);
    try {
      const size = (await stat(path)).size;
      if (size > MAX_EXTRA_FILE_BYTES) {
        skipped.push(name);
        continue;
      }
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      rows.push(JSON.stringify([name, bytes, hash.digest('hex')]));
      files.push(name);
    } catch (error) {
      throw wrapIoError(error, 'cannot hash model file', path);
    }
  }
  return { files, skipped, filesHash: files.length === 0 ? undefined : sha256Hex(`{"v":1,"files":[${rows.join(',')}]}`) };
}

/**
 * Hashes the canonical bytes of `index` read from `source` and returns the artifact's identity (covering
 * the kept files when `options.filesHash` is given).
 *
 * @throws TC_ERR_SHORT_READ, TC_ERR_IO
 * @example const { artifactId } = await computeArtifactIdentity(index, source);
 */
export async function computeArtifactIdentity(
  index: CanonicalIndex,
  source: ByteSource,
  options: {
    concurrency?: number;
    onProgress?: (doneBytes: number, totalBytes: number) => void;
    /** Hash of the kept files ({@link hashExtraFiles}); part of the id. */
    filesHash?: string | undefined;
  } = {},
): Promise<ArtifactIdentity> {
  const total = index.totalBytes;
  const leafCount = Math.ceil(total / TREE_LEAF_BYTES);
  const leafHashes = new Array<Uint8Array>(leafCount);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    const buf = Buffer.allocUnsafeSlow(Math.min(TREE_LEAF_BYTES, Math.max(total, 1)));
    while (next < leafCount) {
      const i = next++;
      const start = i * TREE_LEAF_BYTES;
      const leaf = buf.subarray(0, Math.min(TREE_LEAF_BYTES, total - start));
      const direct = source.direct?.(start, leaf.length);
      if (direct !== undefined) leafHashes[i] = await hashLeaf(direct);
      else {
        await readExactly(source, start, leaf);
        leafHashes[i] = await hashLeaf(leaf);
      }
      done += leaf.length;
      options.onProgress?.(done, total);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 4, Math.max(leafCount, 1)) }, worker));
  const dataHash = treeRoot(leafHashes, total);
  return {
    artifactId: artifactIdOf(index.indexHash, dataHash, options.filesHash),
    indexHash: index.indexHash,
    dataHash,
    filesHash: options.filesHash,
    leafBytes: TREE_LEAF_BYTES,
    leafHashes,
  };
}
