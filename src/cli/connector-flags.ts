// The connector tuning flags of every command that opens a connector (load URL, pull-files, push, import
// URL): `--chunk-bytes BYTES` (Redis chunk size of stored objects; S3 part and ranged-GET size) and
// `--concurrency N` (ranged requests in flight).

import type { Command } from 'commander';
import { tcError } from '../core/errors.js';
import { formatBytes, parseByteSize } from '../core/strings.js';
import {
  CHUNK_BYTES_LIMIT,
  MAX_TUNING_CONCURRENCY,
  MIN_TUNING_CHUNK_BYTES,
  type ConnectorTuning,
} from '../protocol/http/connector-tuning.js';
import { parseIntegerFlag } from './selection.js';

/** The raw values of the flags. */
export interface ConnectorFlags {
  readonly chunkBytes?: string;
  readonly concurrency?: string;
}

/** Adds `--chunk-bytes` and `--concurrency` to `cmd`. */
export function withConnectorFlags(cmd: Command): Command {
  return cmd
    .option(
      '--chunk-bytes <bytes>',
      'connector chunk size: Redis stores an object above it as chunks of it (default 64MiB); S3 ranged GET and upload part size (default 8MiB). 1MiB to under 512MiB',
    )
    .option('--concurrency <n>', `connector ranged requests in flight (default 16; 1 to ${MAX_TUNING_CONCURRENCY})`);
}

/**
 * The tuning the flags ask for (unset flags left out).
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a size that does not parse, is below 1 MiB or is 512 MiB or more, or a
 *   concurrency outside 1..256
 * @example tuningFromFlags({ chunkBytes: '16MiB' }) // { chunkBytes: 16777216 }
 */
export function tuningFromFlags(flags: ConnectorFlags): ConnectorTuning {
  let chunkBytes: number | undefined;
  if (flags.chunkBytes !== undefined) {
    chunkBytes = parseByteSize(flags.chunkBytes);
    if (chunkBytes === undefined || chunkBytes < MIN_TUNING_CHUNK_BYTES || chunkBytes >= CHUNK_BYTES_LIMIT) {
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `--chunk-bytes: expected a size from ${formatBytes(MIN_TUNING_CHUNK_BYTES)} to under ${formatBytes(CHUNK_BYTES_LIMIT)} (e.g. 16MiB), got '${flags.chunkBytes}'`,
        { details: { flag: '--chunk-bytes' } },
      );
    }
  }
  let concurrency: number | undefined;
  if (flags.concurrency !== undefined) {
    concurrency = parseIntegerFlag(flags.concurrency, '--concurrency', 1);
    if (concurrency > MAX_TUNING_CONCURRENCY) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `--concurrency: expected 1 to ${MAX_TUNING_CONCURRENCY}, got '${flags.concurrency}'`, {
        details: { flag: '--concurrency' },
      });
    }
  }
  return { ...(chunkBytes === undefined ? {} : { chunkBytes }), ...(concurrency === undefined ? {} : { concurrency }) };
}
