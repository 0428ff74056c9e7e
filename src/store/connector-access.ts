// How the daemon opens connectors on a client's behalf: file:// URLs name directories on the daemon's own
// host, so they are held to the import roots exactly as path imports are (TC_ERR_FORBIDDEN outside them,
// symbolic links resolved); redis:// and s3:// reach the network with the credentials the URL carries.
// Also the per-scheme read policy of lazy artifacts (when gaps between a TP slice's rows are read through).

import { realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tcError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Connector, ObjectInfo } from '../connectors/connector.js';
import { redactConnectorUrl } from '../connectors/connector-errors.js';
import { createConnector } from '../connectors/create-connector.js';
import { sourceChanged } from '../connectors/connector-keys.js';
import { fileRoot } from '../connectors/file/file-paths.js';
import type { ConnectorTuning } from '../protocol/http/connector-tuning.js';
import { isUnder, realRoots } from './confined-copy.js';

export { connectorScheme, isConnectorUrl, readPolicyFor } from '../connectors/read-policy.js';
import { connectorScheme } from '../connectors/read-policy.js';

/** Options of {@link openDaemonConnector}. */
export interface DaemonConnectorOptions {
  /** The daemon's import roots: the only places a file:// URL may name. */
  readonly roots: readonly string[];
  readonly log?: Logger;
  /** A client's `chunkBytes` / `concurrency` for this connector (push, import); default: the connector's. */
  readonly tuning?: ConnectorTuning;
}

/**
 * Opens the connector of `url` for the daemon. A file:// URL must name a directory under an import root
 * (once symbolic links are resolved; for a directory that does not exist yet, its nearest existing parent).
 *
 * @throws TC_ERR_FORBIDDEN for a file:// URL outside the roots (or any, without roots); the errors of
 *   createConnector (TC_ERR_INVALID_ARGUMENT, TC_ERR_AUTH, TC_ERR_BACKEND)
 * @example const c = await openDaemonConnector('s3://models/llama?endpoint=http://10.0.0.5:9000', { roots });
 */
export async function openDaemonConnector(url: string, options: DaemonConnectorOptions): Promise<Connector> {
  if (typeof url !== 'string') throw tcError('TC_ERR_INVALID_ARGUMENT', 'a connector URL must be a string');
  if (connectorScheme(url) === 'file') await checkFileUrl(url, options.roots);
  return createConnector(url, { ...(options.log === undefined ? {} : { log: options.log }), ...tuningOptions(options.tuning) });
}

/** The set fields of `tuning`, as connector options. */
export function tuningOptions(
  tuning: { readonly chunkBytes?: number | undefined; readonly concurrency?: number | undefined } | undefined,
): ConnectorTuning {
  return {
    ...(tuning?.chunkBytes === undefined ? {} : { chunkBytes: tuning.chunkBytes }),
    ...(tuning?.concurrency === undefined ? {} : { concurrency: tuning.concurrency }),
  };
}

/**
 * For a file:// URL: checks that every object is, once symbolic links are resolved, a file under an import
 * root, and the very file the listing saw (its etag names the inode, so reads pinned to it cannot be
 * redirected later by swapping a link). Other schemes: nothing to check.
 *
 * @throws TC_ERR_FORBIDDEN for an object leading outside the roots; TC_ERR_SOURCE_CHANGED when the file
 *   behind a name changed since the listing
 */
export async function confineFileObjects(url: string, objects: readonly ObjectInfo[], roots: readonly string[]): Promise<void> {
  if (connectorScheme(url) !== 'file') return;
  const dir = resolve(fileRoot(url));
  const realRootList = await realRoots(roots);
  for (const o of objects) {
    const path = join(dir, ...o.key.split('/'));
    const real = await realpath(path).catch(() => path);
    if (!realRootList.some((r) => isUnder(real, r))) {
      throw tcError('TC_ERR_FORBIDDEN', `${path} leads outside the import roots (${roots.join(', ')}) through a symbolic link`, {
        details: { path },
      });
    }
    // The etag of the resolved file, through the connector's own stat.
    const there = await createConnector(pathToFileURL(dirname(real)).toString());
    try {
      const now = await there.stat(basename(real));
      if (now.etag !== o.etag) throw sourceChanged(redactConnectorUrl(url), o.key, o.etag, now.etag);
    } finally {
      await there.close();
    }
  }
}

async function checkFileUrl(url: string, roots: readonly string[]): Promise<void> {
  const dir = resolve(fileRoot(url));
  const forbidden = (what: string): Error =>
    tcError(
      'TC_ERR_FORBIDDEN',
      roots.length === 0
        ? `connector URL '${redactConnectorUrl(url)}' names a directory on the daemon's host, which is allowed only under an import root (start the daemon with --import-root)`
        : `${what} is outside the import roots (${roots.join(', ')})`,
      { details: { path: dir } },
    );
  if (!roots.some((r) => isUnder(dir, resolve(r)))) throw forbidden(dir);
  const real = await nearestRealPath(dir);
  const realRootList = await realRoots(roots);
  if (!realRootList.some((r) => isUnder(real, r))) throw forbidden(`${dir} (through a symbolic link)`);
}

/** The real path of `path`, or of its nearest existing parent joined with the rest. */
async function nearestRealPath(path: string): Promise<string> {
  const real = await realpath(path).catch(() => undefined);
  if (real !== undefined) return real;
  const parent = dirname(path);
  if (parent === path) return path;
  return resolve(await nearestRealPath(parent), path.slice(parent.length + 1));
}
