// Progress of long control requests (imports from a connector, pushes, verifications) as NDJSON: a client
// that sends `accept: application/x-ndjson` gets one JSON object a line: progress lines while the daemon
// works (at least one every few seconds, so an idle timeout never cuts a long hash), then exactly one
// closing line with the result or the error. Without that header the same routes answer one JSON body.

import type { ErrorBody } from './errors.js';

/** The media type of a progress stream. */
export const NDJSON = 'application/x-ndjson';

/** What the daemon is doing: listing and reading headers, copying bytes, hashing, writing to a connector. */
export type ProgressPhase = 'open' | 'download' | 'hash' | 'upload';

/** One progress report. */
export interface Progress {
  readonly phase: ProgressPhase;
  readonly doneBytes: number;
  readonly totalBytes: number;
}

/** One line of a progress stream. */
export type ProgressLine<T> = { readonly progress: Progress } | { readonly result: T } | ErrorBody;
