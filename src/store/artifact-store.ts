// Artifacts on the daemon's disk: `<data-dir>/artifacts/<id>/` holds the safetensors files (as imported,
// never rewritten) and the model's config/tokenizer files. Imports copy into a private staging folder first,
// then validate and hash the copy, so what is stored is exactly what was hashed; a rename publishes it.

import { mkdir, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { computeArtifactIdentity } from '../bytes/artifact-id.js';
import { FileSource } from '../bytes/file-source.js';
import { tcError, wrapIoError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { openModelFiles } from '../format/model-files.js';
import { copyConfined, isUnder, realRoots } from './confined-copy.js';
import { identityJson, indexModelFiles, type CanonicalIndex } from '../layout/canonical-index.js';
import type { ArtifactRecord, Catalog } from '../catalog/catalog.js';

/** An artifact opened from the daemon's disk. */
export interface StoredArtifact {
  readonly artifactId: string;
  readonly dir: string;
  readonly index: CanonicalIndex;
  readonly source: FileSource;
  /** Non-weight files kept with the artifact. */
  readonly files: readonly string[];
}

/** What an import did. */
export interface ImportResult {
  readonly artifactId: string;
  /** False when identical bytes were already stored (nothing was added). */
  readonly created: boolean;
  readonly totalBytes: number;
  readonly tensorCount: number;
}

/** Largest non-weight file kept with an artifact (config, tokenizer). */
const MAX_EXTRA_FILE_BYTES = 256 << 20;

/** The directory name of an artifact id (`tc1:<hex>` -> `tc1-<hex>`). */
const dirName = (artifactId: string): string => artifactId.replace(':', '-');

/**
 * Stores and opens artifacts.
 *
 * @example const { artifactId } = await store.importDirectory('/models/llama', { allowedRoots: ['/models'] });
 */
export class ArtifactStore {
  private readonly opened = new Map<string, Promise<StoredArtifact>>();
  private readonly root: string;

  constructor(
    dataDir: string,
    private readonly catalog: Catalog,
    private readonly log: Logger,
  ) {
    this.root = join(dataDir, 'artifacts');
  }

  /** Creates the folders and removes staging left by a crash. */
  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    for (const name of await readdir(this.root)) {
      if (name.startsWith('.staging-')) await rm(join(this.root, name), { recursive: true, force: true });
    }
  }

  /** A fresh staging folder for an upload or import. */
  async newStaging(): Promise<string> {
    const dir = join(this.root, `.staging-${randomBytes(8).toString('hex')}`);
    await mkdir(dir);
    return dir;
  }

  /**
   * Imports a model that lies on this host. `path` must be inside one of `allowedRoots`, and so must every
   * file read for it once symbolic links are resolved (checked on the opened file, see confined-copy.ts);
   * files are copied, so later changes to the source do not touch the stored artifact.
   *
   * @throws TC_ERR_FORBIDDEN outside the roots (naming the path or the file that leads outside);
   *   TC_ERR_INVALID_ARGUMENT for a malformed path; TC_ERR_NOT_FOUND; TC_ERR_FORMAT_*
   */
  async importPath(path: string, allowedRoots: readonly string[]): Promise<ImportResult> {
    if (path.includes('\0')) throw tcError('TC_ERR_INVALID_ARGUMENT', `import path ${JSON.stringify(path)} contains a NUL byte`);
    const abs = resolve(path);
    const forbidden = (what: string): Error =>
      tcError(
        'TC_ERR_FORBIDDEN',
        allowedRoots.length === 0
          ? `importing from a path on the daemon's host is disabled (start the daemon with --import-root); upload the files instead`
          : `${what} is outside the import roots (${allowedRoots.join(', ')})`,
        { details: { path: abs } },
      );
    if (!allowedRoots.some((r) => isUnder(abs, resolve(r)))) throw forbidden(abs);
    const roots = await realRoots(allowedRoots);
    const real = await realpath(abs).catch((e: unknown) => {
      throw wrapIoError(e, 'cannot open model', abs);
    });
    if (!roots.some((r) => isUnder(real, r))) throw forbidden(`${abs} (through a symbolic link)`);
    const staging = await this.newStaging();
    try {
      await copyConfined(real, staging, { roots, maxExtraFileBytes: MAX_EXTRA_FILE_BYTES });
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
    return this.commitStaging(staging);
  }

  /**
   * Validates, hashes and publishes a staging folder (files uploaded or copied into it). Identical bytes
   * already stored make this a no-op returning the same id.
   */
  async commitStaging(staging: string): Promise<ImportResult> {
    try {
      const model = await openModelFiles(staging);
      const index = indexModelFiles(model);
      const source = FileSource.fromIndex(staging, index);
      let identity;
      try {
        identity = await computeArtifactIdentity(index, source);
      } finally {
        await source.close();
      }
      const { artifactId } = identity;
      const dest = join(this.root, dirName(artifactId));
      let created = false;
      if (await exists(dest)) {
        await rm(staging, { recursive: true, force: true });
      } else {
        await rename(staging, dest);
        created = true;
      }
      const record: ArtifactRecord = {
        artifactId,
        indexHash: identity.indexHash,
        dataHash: identity.dataHash,
        totalBytes: index.totalBytes,
        tensorCount: index.tensors.length,
        indexJson: serializeIndex(index),
        files: model.extraFiles.filter((f) => !f.startsWith('.')),
        createdAt: Date.now(),
      };
      const isNew = await this.catalog.putArtifact(record);
      this.log.info(
        { artifactId, created, totalBytes: index.totalBytes, tensors: index.tensors.length },
        isNew ? 'artifact imported' : 'artifact already present',
      );
      return { artifactId, created: created && isNew, totalBytes: index.totalBytes, tensorCount: index.tensors.length };
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
  }

  /** Opens a stored artifact (cached; file handles stay open). @throws TC_ERR_NOT_FOUND */
  open(artifactId: string): Promise<StoredArtifact> {
    let p = this.opened.get(artifactId);
    if (p === undefined) {
      p = this.load(artifactId);
      this.opened.set(artifactId, p);
      p.catch(() => this.opened.delete(artifactId));
    }
    return p;
  }

  private async load(artifactId: string): Promise<StoredArtifact> {
    const record = await this.catalog.getArtifact(artifactId);
    const dir = join(this.root, dirName(artifactId));
    if (record === undefined || !(await exists(dir)))
      throw tcError('TC_ERR_NOT_FOUND', `no artifact ${artifactId} on this daemon`, { details: { artifactId } });
    const model = await openModelFiles(dir);
    const index = indexModelFiles(model);
    if (index.indexHash !== record.indexHash) {
      throw tcError('TC_ERR_INTERNAL', `artifact ${artifactId}: stored files do not match the catalog's index`);
    }
    return { artifactId, dir, index, source: FileSource.fromIndex(dir, index), files: record.files };
  }

  /** Path of a non-weight file of an artifact. @throws TC_ERR_NOT_FOUND */
  async filePath(artifactId: string, name: string): Promise<string> {
    const a = await this.open(artifactId);
    if (!a.files.includes(name)) throw tcError('TC_ERR_NOT_FOUND', `artifact ${artifactId} has no file '${name}'`, { details: { name } });
    return join(a.dir, name);
  }

  /** Closes every open artifact's files. */
  async close(): Promise<void> {
    const all = [...this.opened.values()];
    this.opened.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.source.close()));
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The canonical index as the catalog and clients see it: identity rows plus metadata. */
export function serializeIndex(index: CanonicalIndex): string {
  const identity = identityJson(index.tensors);
  return `${identity.slice(0, -1)},"metadata":${JSON.stringify(index.metadata)}}`;
}
