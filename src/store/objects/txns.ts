// Open transactions: the puts parked in each (landing or landed, invisible until the commit) and when it
// was last used, so an abandoned one is aborted after txnTtlMs.

import { tcError } from '../../core/errors.js';

/** Longest transaction id (characters). */
const MAX_TXN_LENGTH = 256;

/** A put as a transaction sees it. */
export interface TxnPut {
  readonly namespace: string;
}

/** One open transaction. */
export interface Txn<P extends TxnPut> {
  readonly id: string;
  readonly puts: Set<P>;
  lastUsed: number;
}

/**
 * The open transactions.
 *
 * @example const txn = txns.use(id, now); txn.puts.add(put);
 */
export class TxnTable<P extends TxnPut> {
  private readonly open = new Map<string, Txn<P>>();

  /** The open transaction `id`, created when new; marks it used. @throws TC_ERR_INVALID_ARGUMENT */
  use(id: string, now: number): Txn<P> {
    checkTxnId(id);
    let txn = this.open.get(id);
    if (txn === undefined) {
      txn = { id, puts: new Set(), lastUsed: now };
      this.open.set(id, txn);
    }
    txn.lastUsed = now;
    return txn;
  }

  get(id: string): Txn<P> | undefined {
    return this.open.get(id);
  }

  /** Forgets `id` (committed or aborted). */
  remove(id: string): void {
    this.open.delete(id);
  }

  /** Transactions unused since `cutoff` (Unix ms). */
  idleSince(cutoff: number): Txn<P>[] {
    return [...this.open.values()].filter((t) => t.lastUsed <= cutoff);
  }

  all(): Txn<P>[] {
    return [...this.open.values()];
  }

  /** Open transactions with a put in `namespace`. */
  countFor(namespace: string): number {
    let n = 0;
    for (const t of this.open.values()) if ([...t.puts].some((p) => p.namespace === namespace)) n++;
    return n;
  }
}

/** Checks a transaction id: 1-256 printable characters. @throws TC_ERR_INVALID_ARGUMENT */
export function checkTxnId(id: string): string {
  // eslint-disable-next-line no-control-regex
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_TXN_LENGTH || /[\u0000-\u001f\u007f]/.test(id))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `a transaction id must be 1-${MAX_TXN_LENGTH} printable characters`);
  return id;
}
