// Upload sessions: a client streams a model's files into a private staging folder, then commits it.
// Idle sessions are removed after an hour; a file that cannot be written in full discards its session.

import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream';
import type { Readable } from 'node:stream';
import { tcError, wrapIoError } from '../core/errors.js';
import type { ArtifactStore, ImportResult } from '../store/artifact-store.js';

interface Session {
  readonly dir: string;
  lastUsed: number;
  busy: number;
}

const IDLE_MS = 60 * 60 * 1000;
const NAME = /^[A-Za-z0-9._-]{1,200}$/;

/** Tracks upload sessions. */
export class UploadSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly store: ArtifactStore) {
    this.sweeper = setInterval(() => void this.sweep(), 60_000);
    this.sweeper.unref();
  }

  /** Opens a session. */
  async create(): Promise<string> {
    const id = randomBytes(12).toString('base64url');
    this.sessions.set(id, { dir: await this.store.newStaging(), lastUsed: Date.now(), busy: 0 });
    return id;
  }

  private get(id: string): Session {
    const s = this.sessions.get(id);
    if (s === undefined) throw tcError('TC_ERR_NOT_FOUND', `no upload session '${id}' (committed, aborted or expired)`);
    s.lastUsed = Date.now();
    return s;
  }

  /**
   * Writes one file of the session from `body`. A file that cannot be written in full (disk full, the body
   * broke off or stalled) discards the whole session and its staging folder.
   *
   * @throws TC_ERR_INVALID_ARGUMENT for a bad file name; TC_ERR_NOT_FOUND for an unknown session;
   *   TC_ERR_NO_SPACE when the disk is full; TC_ERR_IO when the body broke off
   */
  async putFile(id: string, name: string, body: Readable): Promise<number> {
    if (!NAME.test(name) || name === '.' || name === '..') {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `file name '${name}' is not a plain file name (letters, digits, '.', '_', '-')`);
    }
    const s = this.get(id);
    s.busy++;
    const path = join(s.dir, name);
    try {
      return await writeBody(body, path);
    } catch (error) {
      if (this.sessions.get(id) === s) this.sessions.delete(id);
      await rm(s.dir, { recursive: true, force: true });
      throw wrapIoError(error, `upload '${id}' discarded: cannot write ${name}`, path);
    } finally {
      s.busy--;
    }
  }

  /** Validates, hashes and stores the uploaded model. */
  async commit(id: string): Promise<ImportResult> {
    const s = this.get(id);
    if (s.busy > 0) throw tcError('TC_ERR_CONFLICT', `upload '${id}' still has files in flight`);
    this.sessions.delete(id);
    return this.store.commitStaging(s.dir);
  }

  /** Discards a session. */
  async abort(id: string): Promise<void> {
    const s = this.get(id);
    this.sessions.delete(id);
    await rm(s.dir, { recursive: true, force: true });
  }

  private async sweep(): Promise<void> {
    for (const [id, s] of this.sessions) {
      if (s.busy === 0 && Date.now() - s.lastUsed > IDLE_MS) {
        this.sessions.delete(id);
        await rm(s.dir, { recursive: true, force: true });
      }
    }
  }

  /** Stops the sweeper and removes every open session. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.sessions.values()].map((s) => rm(s.dir, { recursive: true, force: true })));
    this.sessions.clear();
  }
}

/**
 * Streams `body` into a new file at `path`; resolves with the byte count once the file is written. On a
 * write error the body is not destroyed (unlike stream.pipeline, which would reset the connection before
 * the error can be answered): it is unpiped and left draining, so the client reads the coded answer.
 */
function writeBody(body: Readable, path: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const out = createWriteStream(path, { mode: 0o600 });
    let bytes = 0;
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      body.unpipe(out);
      body.resume();
      out.destroy();
      reject(error);
    };
    body.on('data', (c: Buffer) => (bytes += c.length));
    finished(body, (error) => {
      if (error !== undefined && error !== null) fail(error);
    });
    out.once('error', fail);
    // 'close' comes after the last write and the file's close: the file is complete on disk.
    out.once('close', () => {
      if (!out.writableFinished) return fail(new Error('the file was closed before the body was written'));
      if (settled) return;
      settled = true;
      resolve(bytes);
    });
    body.pipe(out);
  });
}
