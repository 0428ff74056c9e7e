// Connections to other daemons: per peer, a data-plane connection pool and a control API client, made on
// first use with the cluster token and kept until the peer's address changes or this daemon stops.

import type { DaemonRecord } from '../catalog/catalog.js';
import { ConnectionPool } from '../transport/connection-pool.js';
import { ControlClient } from '../transport/control-client.js';

/** One peer's clients. */
export interface PeerClients {
  readonly daemonId: string;
  readonly data: ConnectionPool;
  readonly control: ControlClient;
}

/**
 * The peers this daemon talks to.
 *
 * @example const { data } = peers.of(daemonRecord); const c = await data.acquire(timeoutMs);
 */
export class Peers {
  private readonly byId = new Map<string, PeerClients & { readonly controlUrl: string; readonly dataAddress: string }>();

  /** @param token the cluster token: every daemon of the cluster accepts it on both planes. */
  constructor(private readonly token: string) {}

  /** The clients of `daemon`, made on first use (and again when its addresses changed). */
  of(daemon: DaemonRecord): PeerClients {
    const known = this.byId.get(daemon.daemonId);
    if (known !== undefined && known.controlUrl === daemon.controlUrl && known.dataAddress === daemon.dataAddress) return known;
    if (known !== undefined) this.drop(known.daemonId);
    const made = {
      daemonId: daemon.daemonId,
      controlUrl: daemon.controlUrl,
      dataAddress: daemon.dataAddress,
      data: new ConnectionPool(daemon.dataAddress, this.token),
      control: new ControlClient(daemon.controlUrl, this.token),
    };
    this.byId.set(daemon.daemonId, made);
    return made;
  }

  private drop(daemonId: string): void {
    const p = this.byId.get(daemonId);
    if (p === undefined) return;
    this.byId.delete(daemonId);
    p.data.close();
    void p.control.close();
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    const all = [...this.byId.values()];
    this.byId.clear();
    for (const p of all) p.data.close();
    await Promise.all(all.map((p) => p.control.close()));
  }
}
