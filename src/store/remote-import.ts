// Imports from a connector URL. Full: the model's objects are pulled into a staging folder with concurrent
// ranged reads, then validated, hashed and published exactly as a local import (commitStaging). Lazy: only
// the listing, the index and the shard headers are read (plus the small kept files, config and tokenizer),
// and the artifact is registered under a lazy id with the objects' sizes and etags; its bytes are read
// from the connector when a view needs them (lazy-open.ts). Nothing is left behind by a failed import: no
// staging folder, no catalog row.

import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hashExtraFiles, MAX_EXTRA_FILE_BYTES } from '../bytes/artifact-id.js';
import type { Catalog } from '../catalog/catalog.js';
import type { Logger } from '../core/logger.js';
import type { Connector } from '../connectors/connector.js';
import { downloadObjects } from '../connectors/download-objects.js';
import { indexRemoteModel, openRemoteModel, type RemoteModel } from '../connectors/remote-model.js';
import type { ConnectorTuning } from '../protocol/http/connector-tuning.js';
import type { Progress } from '../protocol/http/progress.js';
import { dirName } from './artifact-dirs.js';
import { confineFileObjects, connectorScheme, openDaemonConnector } from './connector-access.js';
import { serializeIndex } from './index-worker.js';
import { lazyIdOf, objectsHashOf, tensorRows, writeLazyFiles, type LazyRecord } from './lazy-record.js';

/** What an import from a connector did. */
export interface RemoteImportResult {
  readonly artifactId: string;
  readonly created: boolean;
  readonly totalBytes: number;
  readonly tensorCount: number;
  /** True for a lazy artifact. */
  readonly lazy: boolean;
  /** The connector URL, redacted. */
  readonly source: string;
}

/** The parts of the artifact store an import from a connector uses. */
export interface RemoteImportDeps {
  /** `<data-dir>/artifacts`. */
  readonly root: string;
  readonly catalog: Catalog;
  readonly log: Logger;
  newStaging(): Promise<string>;
  commitStaging(staging: string): Promise<{ artifactId: string; created: boolean; totalBytes: number; tensorCount: number }>;
}

/** Options of an import from a connector. */
export interface RemoteImportOptions {
  /** The daemon's import roots (the only directories a file:// URL may name). */
  readonly roots: readonly string[];
  readonly onProgress?: (progress: Progress) => void;
  readonly signal?: AbortSignal;
  /** The client's `chunkBytes` / `concurrency` for the source connector (the import's reads only). */
  readonly tuning?: ConnectorTuning;
}

/** Opens the connector and the model (validated from its headers); closes the connector on failure. */
async function openModel(
  url: string,
  deps: RemoteImportDeps,
  o: RemoteImportOptions,
): Promise<{ connector: Connector; model: RemoteModel }> {
  const connector = await openDaemonConnector(url, {
    roots: o.roots,
    log: deps.log,
    ...(o.tuning === undefined ? {} : { tuning: o.tuning }),
  });
  try {
    o.onProgress?.({ phase: 'open', doneBytes: 0, totalBytes: 0 });
    const model = await openRemoteModel(connector, {
      maxExtraFileBytes: MAX_EXTRA_FILE_BYTES,
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
    await confineFileObjects(url, model.objects, o.roots);
    return { connector, model };
  } catch (error) {
    await connector.close().catch(() => undefined);
    throw error;
  }
}

/**
 * Pulls the model at `url` into a staging folder and imports it as a local import would.
 *
 * @throws TC_ERR_FORBIDDEN (a file:// URL outside the import roots); TC_ERR_NOT_FOUND; TC_ERR_FORMAT_*;
 *   TC_ERR_AUTH; TC_ERR_BACKEND; TC_ERR_SOURCE_CHANGED; TC_ERR_NO_SPACE
 */
export async function importFromConnector(url: string, deps: RemoteImportDeps, o: RemoteImportOptions): Promise<RemoteImportResult> {
  const { connector, model } = await openModel(url, deps, o);
  const source = connector.displayUrl;
  try {
    const staging = await deps.newStaging();
    try {
      await downloadObjects(connector, model.objects, staging, {
        concurrency: connectorScheme(url) === 's3' ? 16 : 8,
        onProgress: (doneBytes, totalBytes) => o.onProgress?.({ phase: 'download', doneBytes, totalBytes }),
        ...(o.signal === undefined ? {} : { signal: o.signal }),
      });
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
    deps.log.info({ source, bytes: model.totalObjectBytes, objects: model.objects.length }, 'model pulled from a connector; hashing');
    // Hashing reports no progress of its own (a total of 0: no bar), only that it is under way.
    o.onProgress?.({ phase: 'hash', doneBytes: 0, totalBytes: 0 });
    const r = await deps.commitStaging(staging);
    return { ...r, lazy: false, source };
  } finally {
    await connector.close().catch(() => undefined);
  }
}

/**
 * Registers the model at `url` as a lazy artifact: headers and index read, kept files copied, the URL kept
 * in the artifact's folder (0600). Its id (`tcl:...`) covers the index, the objects' versions and the kept
 * files (lazy-record.ts).
 *
 * @throws as {@link importFromConnector}
 */
export async function importLazily(url: string, deps: RemoteImportDeps, o: RemoteImportOptions): Promise<RemoteImportResult> {
  const { connector, model } = await openModel(url, deps, o);
  const source = connector.displayUrl;
  try {
    const index = indexRemoteModel(model);
    const staging = await deps.newStaging();
    let created = false;
    let artifactId: string;
    try {
      await downloadObjects(connector, model.extraObjects, staging, {
        onProgress: (doneBytes, totalBytes) => o.onProgress?.({ phase: 'download', doneBytes, totalBytes }),
        ...(o.signal === undefined ? {} : { signal: o.signal }),
      });
      const extra = await hashExtraFiles(staging, model.extraFiles);
      const objects = [...model.shards.map((s) => ({ key: s.file, size: s.fileByteLength, etag: s.etag }))];
      if (model.indexObject !== undefined) objects.push(model.indexObject);
      const objectsHash = objectsHashOf(objects);
      artifactId = lazyIdOf(index.indexHash, objectsHash, extra.filesHash);
      const record: LazyRecord = {
        v: 1,
        artifactId,
        source,
        objects,
        shards: index.shards.map((s, i) => ({ key: s.file, size: s.fileByteLength, etag: model.shards[i]!.etag })),
        indexHash: index.indexHash,
        tensors: tensorRows(index),
        metadata: index.metadata,
        files: [...extra.files],
        filesHash: extra.filesHash,
        createdAt: Date.now(),
      };
      await writeLazyFiles(staging, record, url);
      const dest = join(deps.root, dirName(artifactId));
      if (await exists(dest)) await rm(staging, { recursive: true, force: true });
      else {
        await rename(staging, dest);
        created = true;
      }
      const isNew = await deps.catalog
        .putArtifact({
          artifactId,
          indexHash: index.indexHash,
          dataHash: `lazy:${objectsHash}`,
          totalBytes: index.totalBytes,
          tensorCount: index.tensors.length,
          indexJson: serializeIndex(index),
          files: [...extra.files],
          createdAt: record.createdAt,
        })
        .catch(async (error: unknown) => {
          // A folder without its catalog row would be an artifact no one can name: remove what this import added.
          if (created) await rm(dest, { recursive: true, force: true });
          throw error;
        });
      created &&= isNew;
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
    deps.log.info({ artifactId, source, created, totalBytes: index.totalBytes, tensors: index.tensors.length }, 'lazy artifact registered');
    return { artifactId, created, totalBytes: index.totalBytes, tensorCount: index.tensors.length, lazy: true, source };
  } finally {
    await connector.close().catch(() => undefined);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
