// Answers a long request (an import from a connector, a push, a verification) either as one JSON body, or,
// when the client asks for `application/x-ndjson`, as a progress stream: progress lines (at most a few a
// second, and one at least every HEARTBEAT_MS so the idle timeout never cuts a long hash), then one line
// with the result or the error. A client that goes away aborts the work.

import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../core/logger.js';
import { NDJSON, type Progress } from '../../protocol/http/progress.js';
import { httpError } from '../../protocol/http/error-status.js';

/** Longest silence of a progress stream. */
const HEARTBEAT_MS = 5000;
/** Shortest time between two progress lines. */
const MIN_INTERVAL_MS = 250;

/** The work behind a long request: reports progress, stops when `signal` aborts. */
export type ProgressWork<T> = (onProgress: (p: Progress) => void, signal: AbortSignal) => Promise<T>;

/** True when the client asked for a progress stream. */
export const wantsProgress = (req: FastifyRequest): boolean => (req.headers.accept ?? '').includes(NDJSON);

/**
 * Runs `work` and answers with its result: as one JSON body (errors through the error handler), or as a
 * progress stream when the client asked for one. Returns what the route handler should return.
 *
 * @example app.post('/v1/pushes', (req, reply) => answerWithProgress(req, reply, log, (onProgress, signal) => push(...)));
 */
export async function answerWithProgress<T>(
  req: FastifyRequest,
  reply: FastifyReply,
  log: Logger,
  work: ProgressWork<T>,
): Promise<T | FastifyReply> {
  const abort = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort(new Error('the client went away'));
  });
  if (!wantsProgress(req)) return work(() => undefined, abort.signal);
  const out = new PassThrough();
  const line = (value: unknown): void => void out.write(`${JSON.stringify(value)}\n`);
  let last: Progress = { phase: 'open', doneBytes: 0, totalBytes: 0 };
  let lastAt = 0;
  const report = (p: Progress): void => {
    const samePhase = p.phase === last.phase;
    last = p;
    const now = Date.now();
    if (now - lastAt < MIN_INTERVAL_MS && p.doneBytes < p.totalBytes && samePhase) return;
    lastAt = now;
    line({ progress: p });
  };
  const heartbeat = setInterval(() => {
    if (Date.now() - lastAt >= HEARTBEAT_MS) {
      lastAt = Date.now();
      line({ progress: last });
    }
  }, HEARTBEAT_MS / 5);
  heartbeat.unref();
  void reply.code(200).header('content-type', NDJSON).header('cache-control', 'no-store').send(out);
  line({ progress: last });
  lastAt = Date.now();
  void work(report, abort.signal).then(
    (result) => {
      clearInterval(heartbeat);
      line({ result });
      out.end();
    },
    (error: unknown) => {
      clearInterval(heartbeat);
      const { status, body } = httpError(error);
      if (status >= 500) log.error({ err: error, url: req.url }, 'control request failed');
      line(body);
      out.end();
    },
  );
  return reply;
}
