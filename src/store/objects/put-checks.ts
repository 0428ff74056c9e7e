// Checks of put requests and conditions, and the journal's form of a committed object.

import { tcError } from '../../core/errors.js';
import type { JournalObject } from './journal.js';
import type { ObjectBody } from './object-body.js';
import type { PutRequest } from './object-store-api.js';
import { checkTxnId } from './txns.js';

/** The journal's form of a committed body. */
export function journalObject(body: ObjectBody): JournalObject {
  const base = {
    key: body.key,
    version: body.version,
    size: body.size,
    crc: body.crc,
    tier: body.tier,
    createdAt: body.createdAt,
    expiresAt: body.expiresAt,
  };
  const path = body.storage?.tier === 'disk' ? body.storage.path : undefined;
  return path === undefined ? base : { ...base, file: path.slice(path.lastIndexOf('/') + 1) };
}

/** Checks a put request's fields (the key is checked by the store). @throws TC_ERR_INVALID_ARGUMENT */
export function checkPutRequest(r: PutRequest): void {
  const bad = (what: string): never => {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `put of '${r.key}': ${what}`);
  };
  if (!(Number.isSafeInteger(r.size) && r.size >= 0)) bad(`size must be a non-negative integer, not ${String(r.size)}`);
  if (typeof r.deadline !== 'number' || !Number.isFinite(r.deadline)) bad('deadline must be a Unix ms time');
  if (r.crc !== undefined && !(Number.isInteger(r.crc) && r.crc >= 0 && r.crc <= 0xffffffff)) bad('crc must be a 32-bit unsigned integer');
  if (r.ttlMs !== undefined && !(Number.isSafeInteger(r.ttlMs) && r.ttlMs > 0))
    bad(`ttlMs must be a positive integer, not ${String(r.ttlMs)}`);
  if (r.txn !== undefined) checkTxnId(r.txn);
  if (r.ifVersion !== undefined) checkIfVersion(r.ifVersion);
  if (r.placement !== undefined && r.placement !== 'default' && r.placement !== 'shm') bad(`unknown placement '${String(r.placement)}'`);
}

/** Checks a condition's version: a positive integer, or null (absent). @throws TC_ERR_INVALID_ARGUMENT */
export function checkIfVersion(v: number | null): void {
  if (v !== null && !(Number.isSafeInteger(v) && v > 0))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `ifVersion must be a positive integer or null, not ${String(v)}`);
}
