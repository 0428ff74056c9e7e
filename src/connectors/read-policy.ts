// How a connector URL is recognized and how reads of a model in it treat the gaps between the rows of a
// TP slice (shared by the daemon's lazy artifacts and the client's loads straight from a URL).

import type { ConnectorSourceOptions } from './connector-source.js';

/** The scheme of a connector URL, lower case (`s3`, `redis`, `rediss`, `file`), or '' when it has none. */
export function connectorScheme(url: string): string {
  return /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? '';
}

/** True when `text` looks like a connector URL (`scheme://...`) rather than a path. */
export function isConnectorUrl(text: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
}

/**
 * How a lazy artifact's reads treat the gaps between the rows of a TP slice. Object stores pay for every
 * request (tens of milliseconds, a few hundred KiB of transfer time), so an S3 source reads gaps up to
 * 256 KiB through; Redis pipelines small GETRANGEs and a directory serves positional reads cheaply, so
 * those fetch only the rows unless the gaps are under a tenth of a row.
 */
export function readPolicyFor(scheme: string): Pick<ConnectorSourceOptions, 'maxGapBytes' | 'maxGapRatio' | 'concurrency'> {
  if (scheme === 's3') return { maxGapBytes: 256 << 10, maxGapRatio: 0.1, concurrency: 32 };
  return { maxGapBytes: 0, maxGapRatio: 0.1, concurrency: 64 };
}
