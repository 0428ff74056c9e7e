// Writes an artifact to a connector as an ordinary model directory: the kept files (config, tokenizer)
// first, then the safetensors shards exactly as they were imported, and `model.safetensors.index.json`
// LAST (for a model of one shard without an index, the shard is the last object written). A reader that
// finds the index (or the single shard) finds the model complete. A lazy artifact's shards are copied from
// its own connector, each read pinned to the etag recorded at import.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { tcError, wrapIoError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Connector, WriteData } from '../connectors/connector.js';
import type { ConnectorSource } from '../connectors/connector-source.js';
import type { ConnectorTuning } from '../protocol/http/connector-tuning.js';
import type { Progress } from '../protocol/http/progress.js';
import type { StoredArtifact } from './artifact-store.js';
import { openDaemonConnector } from './connector-access.js';

/** The index file name of a sharded model. */
const INDEX_NAME = 'model.safetensors.index.json';
/** Bytes of one read when a lazy artifact's shard is copied. */
const COPY_PART_BYTES = 8 << 20;

/** What a push wrote. */
export interface PushResult {
  readonly artifactId: string;
  /** The destination URL, redacted. */
  readonly destination: string;
  /** Objects written, in the order written. */
  readonly objects: readonly { readonly key: string; readonly bytes: number }[];
  readonly totalBytes: number;
}

/** Options of {@link pushArtifact}. */
export interface PushOptions {
  /** The daemon's import roots (a file:// destination must lie under one). */
  readonly roots: readonly string[];
  readonly log: Logger;
  readonly onProgress?: (progress: Progress) => void;
  readonly signal?: AbortSignal;
  /** The client's `chunkBytes` / `concurrency` for the destination connector. */
  readonly tuning?: ConnectorTuning;
}

/** One object to write: its key, size and bytes. */
interface Planned {
  readonly key: string;
  readonly size: number;
  readonly data: () => WriteData;
}

/**
 * Writes `a` to the connector `url` names.
 *
 * @throws TC_ERR_FORBIDDEN (a file:// destination outside the import roots); TC_ERR_AUTH; TC_ERR_BACKEND;
 *   TC_ERR_NO_SPACE; TC_ERR_SOURCE_CHANGED (a lazy artifact's object rewritten at its source)
 * @example await pushArtifact(await store.open(id), 's3://models/llama?endpoint=...', { roots, log });
 */
export async function pushArtifact(a: StoredArtifact, url: string, o: PushOptions): Promise<PushResult> {
  const planned = await plan(a);
  const total = planned.reduce((n, p) => n + p.size, 0);
  const connector = await openDaemonConnector(url, { roots: o.roots, log: o.log, ...(o.tuning === undefined ? {} : { tuning: o.tuning }) });
  const destination = connector.displayUrl;
  try {
    let done = 0;
    o.onProgress?.({ phase: 'upload', doneBytes: 0, totalBytes: total });
    const written: { key: string; bytes: number }[] = [];
    for (const p of planned) {
      const info = await connector.write(p.key, p.data(), {
        size: p.size,
        onBytes: (n) => {
          done += n;
          o.onProgress?.({ phase: 'upload', doneBytes: done, totalBytes: total });
        },
        ...(o.signal === undefined ? {} : { signal: o.signal }),
      });
      if (info.size !== p.size) {
        throw tcError('TC_ERR_SHORT_READ', `${destination}: '${p.key}' was written with ${info.size} of its ${p.size} bytes`, {
          details: { key: p.key },
        });
      }
      written.push({ key: p.key, bytes: p.size });
    }
    o.log.info({ artifactId: a.artifactId, destination, objects: written.length, bytes: total }, 'artifact pushed to a connector');
    return { artifactId: a.artifactId, destination, objects: written, totalBytes: total };
  } finally {
    await connector.close().catch(() => undefined);
  }
}

/** The objects to write, in order: kept files, shards, then the index. */
async function plan(a: StoredArtifact): Promise<Planned[]> {
  const local = (name: string, size: number): Planned => ({
    key: name,
    size,
    data: () => createReadStream(join(a.dir, name), { highWaterMark: 4 << 20 }),
  });
  const sizeOf = async (name: string): Promise<number> => {
    try {
      return (await stat(join(a.dir, name))).size;
    } catch (error) {
      throw wrapIoError(error, 'cannot read artifact file', join(a.dir, name));
    }
  };
  const out: Planned[] = [];
  for (const name of a.files) out.push(local(name, await sizeOf(name)));
  const source = a.lazy === undefined ? undefined : (a.source as ConnectorSource);
  a.index.shards.forEach((s, i) => {
    if (source === undefined) out.push(local(s.file, s.fileByteLength));
    else
      out.push({
        key: s.file,
        size: s.fileByteLength,
        data: () => copyObject(source.connector, s.file, s.fileByteLength, a.lazy!.shards[i]!.etag),
      });
  });
  const hasIndex =
    a.lazy === undefined
      ? await stat(join(a.dir, INDEX_NAME)).then(
          () => true,
          () => false,
        )
      : false;
  const indexObject = a.lazy?.objects.find((x) => x.key === INDEX_NAME);
  if (hasIndex) out.push(local(INDEX_NAME, await sizeOf(INDEX_NAME)));
  else if (source !== undefined && indexObject !== undefined) {
    out.push({
      key: INDEX_NAME,
      size: indexObject.size,
      data: () => copyObject(source.connector, INDEX_NAME, indexObject.size, indexObject.etag),
    });
  } else if (a.index.shards.length > 1) {
    const bytes = Buffer.from(generatedIndex(a));
    out.push({ key: INDEX_NAME, size: bytes.length, data: () => bytes });
  }
  return out;
}

/** An index for shards imported without one: weight_map from the canonical index's placement. */
function generatedIndex(a: StoredArtifact): string {
  const weightMap: Record<string, string> = {};
  for (const t of [...a.index.tensors].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))) {
    weightMap[t.name] = a.index.shards[t.shard]!.file;
  }
  return `${JSON.stringify({ metadata: { total_size: a.index.totalBytes }, weight_map: weightMap }, null, 2)}\n`;
}

/** The bytes of object `key` of `connector`, read in parts pinned to `etag`. */
async function* copyObject(connector: Connector, key: string, size: number, etag: string): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < size; at += COPY_PART_BYTES) {
    const part = Buffer.allocUnsafe(Math.min(COPY_PART_BYTES, size - at));
    await connector.readInto(key, at, part, { etag });
    yield part;
  }
}
