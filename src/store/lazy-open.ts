// Opens a lazy artifact from its folder: the descriptor gives the canonical index with each tensor's place
// in its shard object, the URL file the connector, and the result is a ConnectorSource pinned to the
// objects' etags, read with the scheme's read policy (connector-access.ts). No remote call but the
// connector's own connect (Redis).

import type { Logger } from '../core/logger.js';
import { ConnectorSource } from '../connectors/connector-source.js';
import type { CanonicalIndex } from '../layout/canonical-index.js';
import { connectorScheme, openDaemonConnector, readPolicyFor } from './connector-access.js';
import { indexOfRecord, readLazyFiles, type LazyRecord } from './lazy-record.js';

/** An opened lazy artifact. */
export interface OpenedLazy {
  readonly record: LazyRecord;
  readonly index: CanonicalIndex;
  readonly source: ConnectorSource;
}

/** Options of {@link openLazy}. */
export interface OpenLazyOptions {
  /** The daemon's import roots: a file:// source is checked against them again at every open. */
  readonly roots: readonly string[];
  readonly log: Logger;
  /** Hears every ranged read of the source: the URL's scheme and the bytes. */
  readonly onRead?: (scheme: string, bytes: number) => void;
}

/**
 * Opens the lazy artifact kept in `dir`.
 *
 * @throws TC_ERR_NOT_FOUND (no descriptor); TC_ERR_INTERNAL (a damaged one); TC_ERR_FORBIDDEN (a file://
 *   source no longer under an import root); TC_ERR_AUTH, TC_ERR_BACKEND (connecting)
 */
export async function openLazy(dir: string, o: OpenLazyOptions): Promise<OpenedLazy> {
  const { record, url } = await readLazyFiles(dir);
  const index = indexOfRecord(record);
  const scheme = connectorScheme(url);
  const connector = await openDaemonConnector(url, { roots: o.roots, log: o.log });
  const source = ConnectorSource.fromIndex(
    connector,
    index,
    record.shards.map((s) => s.etag),
    { ...readPolicyFor(scheme), ...(o.onRead === undefined ? {} : { onRead: (bytes: number) => o.onRead!(scheme, bytes) }) },
  );
  return { record, index, source };
}
