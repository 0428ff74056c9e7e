// Each change of a session as one decision over its record read under a lock: what to write (put the new
// record, delete it, or nothing) and what to answer. The SQLite and PostgreSQL stores run these inside one
// transaction on the locked row, so every change is one atomic step with the rules of session-meta-rules.ts.

import { tcError } from '../../core/errors.js';
import type { SessionLease, SessionRecord } from '../session-types.js';
import {
  checkChange,
  checkLease,
  checkOwner,
  checkRemove,
  checkSessionId,
  checkTtl,
  decideAcquire,
  decideRenew,
  decideUpdate,
  isCurrentLease,
  sessionNotFound,
} from './session-meta-rules.js';
import type { SessionChange } from './session-meta-store.js';

/** What one change does to the locked record. */
export type MetaStep<T> =
  | { readonly write: 'none'; readonly result: T }
  | { readonly write: 'put'; readonly record: SessionRecord; readonly result: T }
  | { readonly write: 'delete'; readonly result: T };

/** A change: the session it locks, the arguments checked up front, then the decision at the store's `nowMs`. */
export interface MetaChange<T> {
  readonly sessionId: string;
  decide(record: SessionRecord | undefined, nowMs: number): MetaStep<T>;
}

function existing(sessionId: string, record: SessionRecord | undefined): SessionRecord {
  if (record === undefined) throw sessionNotFound(sessionId);
  return record;
}

/** @throws TC_ERR_INVALID_ARGUMENT at once; TC_ERR_NOT_FOUND, TC_ERR_CONFLICT when decided */
export function acquireChange(sessionId: string, owner: string, ttlMs: number): MetaChange<SessionLease> {
  checkSessionId(sessionId);
  checkOwner(owner);
  checkTtl(ttlMs);
  return {
    sessionId,
    decide: (record, nowMs) => {
      const next = decideAcquire(existing(sessionId, record), owner, ttlMs, nowMs);
      return { write: 'put', record: next, result: next.lease as SessionLease };
    },
  };
}

/** @throws TC_ERR_INVALID_ARGUMENT at once; TC_ERR_NOT_FOUND, TC_ERR_CONFLICT when decided */
export function renewChange(lease: SessionLease, ttlMs: number): MetaChange<SessionLease> {
  checkLease(lease);
  checkTtl(ttlMs);
  return {
    sessionId: lease.sessionId,
    decide: (record, nowMs) => {
      const next = decideRenew(existing(lease.sessionId, record), lease, ttlMs, nowMs);
      return { write: 'put', record: next, result: next.lease as SessionLease };
    },
  };
}

/** @throws TC_ERR_INVALID_ARGUMENT at once */
export function releaseChange(lease: SessionLease): MetaChange<void> {
  checkLease(lease);
  return {
    sessionId: lease.sessionId,
    decide: (record) =>
      record !== undefined && isCurrentLease(record, lease)
        ? { write: 'put', record: { ...record, lease: null }, result: undefined }
        : { write: 'none', result: undefined },
  };
}

/** @throws TC_ERR_INVALID_ARGUMENT at once; TC_ERR_NOT_FOUND, TC_ERR_CONFLICT when decided */
export function updateChange(lease: SessionLease, expectedVersion: number, change: SessionChange): MetaChange<SessionRecord> {
  checkLease(lease);
  const entries = checkChange(change);
  return {
    sessionId: lease.sessionId,
    decide: (record, nowMs) => {
      const next = decideUpdate(existing(lease.sessionId, record), lease, expectedVersion, entries, nowMs);
      return { write: 'put', record: next, result: next };
    },
  };
}

/** @throws TC_ERR_INVALID_ARGUMENT at once; TC_ERR_CONFLICT when decided */
export function removeChange(sessionId: string, lease: SessionLease | undefined): MetaChange<SessionRecord | undefined> {
  checkSessionId(sessionId);
  if (lease !== undefined) {
    checkLease(lease);
    if (lease.sessionId !== sessionId)
      throw tcError('TC_ERR_INVALID_ARGUMENT', `the lease is for session '${lease.sessionId}', not '${sessionId}'`);
  }
  return {
    sessionId,
    decide: (record, nowMs) => {
      if (record === undefined) return { write: 'none', result: undefined };
      checkRemove(record, lease, nowMs);
      return { write: 'delete', result: record };
    },
  };
}
