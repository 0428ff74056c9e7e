// Artifacts on the daemon's disk: `<data-dir>/artifacts/<id>/` holds the safetensors files (as imported,
// never rewritten) and the model's config/tokenizer files. Imports copy into a private staging folder first,
// then validate and hash the copy, so what is stored is exactly what was hashed; a rename publishes it.
// Artifacts with the same weights but other config files share the weight files through hard links
// (`.weights/<weights id>` points at the first artifact that stored them). Headers are parsed, indexed
// and hashed in worker threads (index-jobs.ts): a huge header never stalls the event loop.
// Imports from connector URLs (remote-import.ts) reuse the staging and publishing; lazy artifacts
// (`<data-dir>/artifacts/tcl-<hex>/`, lazy-record.ts) open with a ConnectorSource instead of files.

import { link, mkdir, open, readdir, readlink, realpath, rename, rm, stat, symlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, relative, resolve } from 'node:path';
import { artifactIdOf, MAX_EXTRA_FILE_BYTES } from '../bytes/artifact-id.js';
import type { ByteSource } from '../bytes/byte-source.js';
import { FileSource } from '../bytes/file-source.js';
import { isTensorcastError, tcError, wrapIoError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { CanonicalIndex } from '../layout/canonical-index.js';
import { copyConfined, isUnder, realRoots } from './confined-copy.js';
import type { ArtifactRecord, Catalog } from '../catalog/catalog.js';
import { IndexJobs, type IdentifyResult } from './index-jobs.js';
import { dirName } from './artifact-dirs.js';
import { openLazy } from './lazy-open.js';
import { isLazyId, readLazyFiles, type LazyRecord } from './lazy-record.js';
import { importFromConnector, importLazily, type RemoteImportOptions, type RemoteImportResult } from './remote-import.js';

/** An artifact opened from the daemon's disk (or, lazy, from the connector its folder names). */
export interface StoredArtifact {
  readonly artifactId: string;
  /** The artifact's folder: its files, or for a lazy artifact its descriptor and kept files. */
  readonly dir: string;
  readonly index: CanonicalIndex;
  /** The canonical bytes: the files in `dir` (FileSource), or the connector's objects for a lazy artifact. */
  readonly source: ByteSource & { close(): Promise<void> };
  /** Non-weight files kept with the artifact. */
  readonly files: readonly string[];
  /** The descriptor of a lazy artifact (undefined for a stored one). */
  readonly lazy: LazyRecord | undefined;
}

/** Options of the artifact store. */
export interface ArtifactStoreOptions {
  /** The import roots: the only directories a file:// connector URL may name (imports, lazy sources, pushes). */
  readonly importRoots?: readonly string[];
  /** Hears every ranged read a lazy artifact makes: the URL's scheme and the bytes (metrics). */
  readonly onConnectorRead?: (scheme: string, bytes: number) => void;
}

/** What an import did. */
export interface ImportResult {
  readonly artifactId: string;
  /** False when identical bytes were already stored (nothing was added). */
  readonly created: boolean;
  readonly totalBytes: number;
  readonly tensorCount: number;
}

/**
 * Stores and opens artifacts.
 *
 * @example const { artifactId } = await store.importDirectory('/models/llama', { allowedRoots: ['/models'] });
 */
export class ArtifactStore {
  private readonly opened = new Map<string, Promise<StoredArtifact>>();
  private readonly root: string;
  private readonly jobs = new IndexJobs();

  constructor(
    dataDir: string,
    private readonly catalog: Catalog,
    private readonly log: Logger,
    private readonly options: ArtifactStoreOptions = {},
  ) {
    this.root = join(dataDir, 'artifacts');
  }

  /** The import roots (file:// connector URLs must name a directory under one). */
  get importRoots(): readonly string[] {
    return this.options.importRoots ?? [];
  }

  /**
   * Imports the model a connector URL names: pulled into staging with concurrent ranged reads, then
   * validated, hashed and published as {@link commitStaging} does; or, with `lazy`, registered from its
   * headers alone (remote-import.ts).
   *
   * @throws TC_ERR_FORBIDDEN (a file:// URL outside the import roots); TC_ERR_NOT_FOUND; TC_ERR_FORMAT_*;
   *   TC_ERR_AUTH; TC_ERR_BACKEND; TC_ERR_SOURCE_CHANGED; TC_ERR_INVALID_ARGUMENT (a malformed URL)
   */
  importUrl(url: string, options: Omit<RemoteImportOptions, 'roots'> & { lazy?: boolean } = {}): Promise<RemoteImportResult> {
    const deps = {
      root: this.root,
      catalog: this.catalog,
      log: this.log,
      newStaging: () => this.newStaging(),
      commitStaging: (staging: string) => this.commitStaging(staging),
    };
    const o = { ...options, roots: this.importRoots };
    return options.lazy === true ? importLazily(url, deps, o) : importFromConnector(url, deps, o);
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
      const identity = await this.jobs.identify(staging);
      const { artifactId, totalBytes, tensorCount } = identity;
      // Files too large to keep are not part of the id: leave them out of the artifact too.
      for (const name of identity.skippedFiles) await rm(join(staging, name), { force: true });
      const dest = join(this.root, dirName(artifactId));
      let created = false;
      if (await exists(dest)) {
        await rm(staging, { recursive: true, force: true });
      } else {
        const shared = await this.shareWeights(staging, identity);
        await rename(staging, dest);
        await this.recordWeights(identity, dest);
        created = true;
        if (shared > 0) this.log.info({ artifactId, sharedBytes: shared }, 'weights shared with an artifact already stored');
      }
      const record: ArtifactRecord = {
        artifactId,
        indexHash: identity.indexHash,
        dataHash: identity.dataHash,
        totalBytes,
        tensorCount,
        indexJson: identity.indexJson,
        files: [...identity.files],
        createdAt: Date.now(),
      };
      const isNew = await this.catalog.putArtifact(record);
      this.log.info({ artifactId, created, totalBytes, tensors: tensorCount }, isNew ? 'artifact imported' : 'artifact already present');
      return { artifactId, created: created && isNew, totalBytes, tensorCount };
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
  }

  /** `.weights/<id of the weights alone>`: a link to the first artifact folder holding those weights. */
  private weightsLink(identity: IdentifyResult): string {
    return join(this.root, '.weights', dirName(artifactIdOf(identity.indexHash, identity.dataHash)));
  }

  /**
   * Replaces the staged shard files that are byte-identical to a stored artifact's with hard links to
   * them; returns the bytes shared. Same weights (index and data hash) and the same header bytes of a
   * shard of the same name and size make the whole file identical (headers are followed by exactly the
   * tensor bytes, gap-free). Best effort: any failure keeps the staged copy.
   */
  private async shareWeights(staging: string, identity: IdentifyResult): Promise<number> {
    let other: string;
    try {
      other = join(this.root, '.weights', await readlink(this.weightsLink(identity)));
    } catch {
      return 0;
    }
    let shared = 0;
    for (const shard of identity.shards) {
      const mine = join(staging, shard.file);
      const theirs = join(other, shard.file);
      try {
        if ((await stat(theirs)).size !== shard.fileByteLength || !(await samePrefix(mine, theirs, shard.dataStart))) continue;
        const tmp = `${mine}.link`;
        await link(theirs, tmp);
        await rename(tmp, mine);
        shared += shard.fileByteLength;
      } catch (error) {
        this.log.warn({ err: error, file: shard.file }, 'cannot share a weight file; keeping the copy');
      }
    }
    return shared;
  }

  /** Points the weights link at `dest` unless it already points at a folder that exists. */
  private async recordWeights(identity: IdentifyResult, dest: string): Promise<void> {
    const at = this.weightsLink(identity);
    try {
      await mkdir(join(this.root, '.weights'), { recursive: true });
      if (await exists(join(this.root, '.weights', await readlink(at).catch(() => '\0')))) return;
      const tmp = `${at}.${randomBytes(4).toString('hex')}`;
      await symlink(join('..', relative(this.root, dest)), tmp);
      await rename(tmp, at);
    } catch (error) {
      this.log.warn({ err: error }, 'cannot record the weights link');
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
    if (isLazyId(artifactId)) return this.loadLazy(artifactId);
    const dir = join(this.root, dirName(artifactId));
    // The files on disk are the truth; the catalog's record is a cross-check. While the catalog is
    // unavailable (TC_ERR_BACKEND), a stored artifact still opens (its file list read from its folder).
    const record = await this.catalog.getArtifact(artifactId).catch((error: unknown) => {
      if (!isTensorcastError(error, 'TC_ERR_BACKEND')) throw error;
      this.log.warn({ artifactId, err: error }, 'catalog unavailable: opening the artifact from its folder alone');
      return null;
    });
    if (record === undefined || !(await exists(dir)))
      throw tcError('TC_ERR_NOT_FOUND', `no artifact ${artifactId} on this daemon`, { details: { artifactId } });
    const index = await this.jobs.index(dir);
    if (record !== null && index.indexHash !== record.indexHash) {
      throw tcError('TC_ERR_INTERNAL', `artifact ${artifactId}: stored files do not match the catalog's index`);
    }
    const files =
      record?.files ?? (await readdir(dir)).filter((n) => !n.endsWith('.safetensors') && n !== 'model.safetensors.index.json').sort();
    return { artifactId, dir, index, source: FileSource.fromIndex(dir, index), files, lazy: undefined };
  }

  /** Opens a lazy artifact: its descriptor, and a ConnectorSource on the objects it names. */
  private async loadLazy(artifactId: string): Promise<StoredArtifact> {
    const dir = join(this.root, dirName(artifactId));
    if (!(await exists(dir))) throw tcError('TC_ERR_NOT_FOUND', `no artifact ${artifactId} on this daemon`, { details: { artifactId } });
    const { record, index, source } = await openLazy(dir, {
      roots: this.importRoots,
      log: this.log,
      ...(this.options.onConnectorRead === undefined ? {} : { onRead: this.options.onConnectorRead }),
    });
    return { artifactId, dir, index, source, files: record.files, lazy: record };
  }

  /** The descriptor of a lazy artifact kept here (read afresh: a verification may have changed it), else undefined. */
  async lazyRecord(artifactId: string): Promise<LazyRecord | undefined> {
    if (!isLazyId(artifactId)) return undefined;
    const dir = join(this.root, dirName(artifactId));
    return (await readLazyFiles(dir).catch(() => undefined))?.record;
  }

  /** Ids of the artifacts stored on this daemon's disk (from the folder names). */
  async localIds(): Promise<string[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    return names.filter((n) => /^tc1-[0-9a-f]{64}$/.test(n)).map((n) => n.replace('-', ':'));
  }

  /** Path of a non-weight file of an artifact. @throws TC_ERR_NOT_FOUND */
  async filePath(artifactId: string, name: string): Promise<string> {
    const a = await this.open(artifactId);
    if (!a.files.includes(name)) throw tcError('TC_ERR_NOT_FOUND', `artifact ${artifactId} has no file '${name}'`, { details: { name } });
    return join(a.dir, name);
  }

  /** Closes every open artifact's files. */
  async close(): Promise<void> {
    await this.jobs.close();
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

/** Whether the first `length` bytes of two files are equal (read in 1 MiB pieces). */
async function samePrefix(a: string, b: string, length: number): Promise<boolean> {
  const [fa, fb] = [await open(a, 'r'), await open(b, 'r')];
  try {
    const [ba, bb] = [Buffer.allocUnsafe(1 << 20), Buffer.allocUnsafe(1 << 20)];
    for (let at = 0; at < length; at += ba.length) {
      const n = Math.min(ba.length, length - at);
      const [ra, rb] = await Promise.all([fa.read(ba, 0, n, at), fb.read(bb, 0, n, at)]);
      if (ra.bytesRead !== n || rb.bytesRead !== n || !ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
    }
    return true;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
