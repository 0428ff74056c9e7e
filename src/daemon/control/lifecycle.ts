// The daemon's run state that routes read: whether it is draining, where its data plane (and handshake
// listener) listens. One object per daemon, owned by createDaemon and handed to the plugins that need it.

import { tcError } from '../../core/errors.js';

/** Mutable run state of one daemon. */
export interface Lifecycle {
  /** True once shutdown began: new work is refused with TC_ERR_SHUTTING_DOWN. */
  draining: boolean;
  /** The data-plane address clients connect to (set once listening). */
  dataAddress: string;
  /** The handshake listener's URL when the daemon runs one (--handshake-listen). */
  handshakeUrl?: string;
}

/** Throws TC_ERR_SHUTTING_DOWN while the daemon drains. */
export function refuseWhileDraining(lifecycle: Lifecycle): void {
  if (lifecycle.draining) throw tcError('TC_ERR_SHUTTING_DOWN', 'the daemon is shutting down');
}
