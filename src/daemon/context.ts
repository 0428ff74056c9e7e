// What the daemon's parts share: built once by createDaemon and handed to the control routes and the
// data-plane server (no module-level state).

import type { Catalog } from '../catalog/catalog.js';
import type { Logger } from '../core/logger.js';
import type { DaemonMetrics } from '../metrics/metrics.js';
import type { ArtifactStore } from '../store/artifact-store.js';
import type { ViewService } from '../store/view-service.js';
import type { DaemonConfig } from './config.js';
import type { ShmLeases } from './shm-leases.js';

/** The daemon's shared state. */
export interface DaemonContext {
  readonly config: DaemonConfig;
  readonly daemonId: string;
  readonly token: string;
  readonly catalog: Catalog;
  readonly store: ArtifactStore;
  readonly views: ViewService;
  readonly leases: ShmLeases;
  readonly metrics: DaemonMetrics;
  readonly log: Logger;
  /** The data-plane address clients connect to (set once listening). */
  dataAddress: string;
  /** True once shutdown began: new work is refused with TC_ERR_SHUTTING_DOWN. */
  draining: boolean;
}
