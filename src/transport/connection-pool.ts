// Idle data-plane connections to one daemon, reused across loads (by the SDK, or by a daemon pulling from
// another daemon).

import { DataConnection } from './data-connection.js';

/** A pool of data-plane connections to one address. */
export class ConnectionPool {
  private readonly idle: DataConnection[] = [];
  private closed = false;

  constructor(
    private readonly address: string,
    private readonly token: string,
    private readonly maxIdle = 16,
  ) {}

  /** An idle, usable connection, or a new one. */
  async acquire(timeoutMs: number): Promise<DataConnection> {
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      if (c.usable) return c;
    }
    return DataConnection.open(this.address, this.token, Math.min(timeoutMs, 10_000));
  }

  /**
   * Returns a connection; broken ones, those beyond `maxIdle` and any returned after {@link close} (a part
   * of a failed load finishing late) are closed, so no socket outlives the pool.
   */
  release(c: DataConnection): void {
    if (!this.closed && c.usable && this.idle.length < this.maxIdle) this.idle.push(c);
    else c.close();
  }

  /** Idle connections kept for reuse. */
  get idleCount(): number {
    return this.idle.length;
  }

  /** Closes every idle connection. */
  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.close();
  }
}
